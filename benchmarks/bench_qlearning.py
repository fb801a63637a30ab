"""Benchmark of qlearning_frozenlake.py with its default flags: wall time to the optimum, and a 20-seed learning sweep.

Checks (exit status 1 when one is missed):
  1. FrozenLake 4x4 slippery, seed 1: V(π)/V* ≥ 0.99 within 15 s.
  2. FrozenLake 8x8 slippery (--map-name 8x8), seed 1: V(π)/V* ≥ 0.99 within 120 s.
  3. Seeds 1..20 of FrozenLake 4x4 and 8x8 slippery, a random 6x6 map (--map-size 6, map seed 0), Taxi-v4 and
     CliffWalking-v1: V(π)/V* ≥ 0.99 for at least 19 seeds of each case. Every run is printed, then a table per case:
     how many seeds reached 0.99, the lowest V(π)/V*, and the mean wall time and env steps of a run.
     tests/test_qlearning.py runs a few seeds of the cheap cases only.
The wall time is that of `main()` (training, exact scoring, TensorBoard, pictures), not of Python's start-up, and the
CPU time beside it is this process's, which another job on the same cores inflates less than the wall time. Runs are
written to a temporary folder and deleted.

Run:  python benchmarks/bench_qlearning.py                  (about 40 minutes, one process)
      python benchmarks/bench_qlearning.py --workers 2      (the sweep on 2 processes; its times are then shared)
      python benchmarks/bench_qlearning.py --sweep-seeds 0  (the two timed runs only)
"""

import contextlib
import multiprocessing
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tyro

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from helpers import load_script  # noqa: E402

ql = load_script("qlearning_frozenlake")

CASES = {"4x4 slippery": dict(), "8x8 slippery": dict(map_name="8x8"), "random 6x6": dict(map_size=6, map_seed=0),
         "Taxi-v4": dict(env_id="Taxi-v4"), "CliffWalking-v1": dict(env_id="CliffWalking-v1")}


@dataclass
class BenchArgs:
    sweep_seeds: int = 20
    """how many seeds (1, 2, ...) of every case of the sweep (0 skips it)"""
    max_misses: int = 1
    """how many seeds of a case may end below --min-value-ratio"""
    workers: int = 1
    """processes for the sweep (1: one run at a time; more share the cores, and the wall times with them)"""
    max_seconds_4x4: float = 15.0
    """the wall-time goal for 4x4 slippery"""
    max_seconds_8x8: float = 120.0
    """the wall-time goal for 8x8 slippery"""
    min_value_ratio: float = 0.99
    """V(π)/V* a run must reach"""


def run(flags: dict, seed: int, runs_dir: str) -> tuple[float, float, float, int]:
    """(V(π)/V*, wall seconds of main(), CPU seconds of main(), env steps) of one quiet run."""
    with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = ql.main(ql.Args(seed=seed, runs_dir=runs_dir, **flags))
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - start_cpu
    return result.evaluation.value_ratio, seconds, cpu_seconds, result.steps


def main(bench: BenchArgs) -> int:
    failures = []
    with tempfile.TemporaryDirectory() as runs_dir:
        for name, limit in (("4x4 slippery", bench.max_seconds_4x4), ("8x8 slippery", bench.max_seconds_8x8)):
            ratio, seconds, cpu_seconds, steps = run(CASES[name], 1, runs_dir)
            ok = ratio >= bench.min_value_ratio and seconds <= limit
            print(f"{name:13s} seed 1: V(π)/V* {ratio:.6f}  wall {seconds:5.1f} s (goal ≤ {limit:.0f} s)  "
                  f"CPU {cpu_seconds:5.1f} s  {steps:,} steps ({steps / seconds:,.0f} steps/s)  "
                  f"{'ok' if ok else 'MISSED'}", flush=True)
            if not ok:
                failures.append(name)
        if bench.sweep_seeds > 0:
            seeds = list(range(1, bench.sweep_seeds + 1))
            jobs = [(case, seed) for case in CASES for seed in seeds]
            start = time.perf_counter()
            print(f"sweep, {len(seeds)} seeds per case on {bench.workers} process(es):", flush=True)
            arguments = ([CASES[case] for case, _ in jobs], [seed for _, seed in jobs], [runs_dir] * len(jobs))
            fork = multiprocessing.get_context("fork")
            pool = ProcessPoolExecutor(bench.workers, mp_context=fork) if bench.workers > 1 else None
            results = pool.map(run, *arguments) if pool else map(run, *arguments)  # in order, each as soon as done
            by_case = {case: [] for case in CASES}
            for (case, seed), (ratio, seconds, cpu_seconds, steps) in zip(jobs, results):
                by_case[case].append((ratio, seconds, steps))
                print(f"  {case:16s} seed {seed:2d}: V(π)/V* {ratio:.6f}  wall {seconds:5.1f} s  "
                      f"CPU {cpu_seconds:5.1f} s  {'ok' if ratio >= bench.min_value_ratio else 'missed'}", flush=True)
            if pool:
                pool.shutdown()
            print(f"sweep: {time.perf_counter() - start:.0f} s\n")
            header = f"≥ {bench.min_value_ratio}"
            print(f"  {'case':16s} {header:>8s} {'min V(π)/V*':>12s} {'s/run':>7s} {'steps/run':>10s}")
            for case, runs in by_case.items():
                ratios, seconds, steps = (np.array(column) for column in zip(*runs))
                count = int((ratios >= bench.min_value_ratio).sum())
                print(f"  {case:16s} {f'{count}/{len(runs)}':>8s} {ratios.min():12.6f} {seconds.mean():7.1f} "
                      f"{steps.mean():10,.0f}")
                if count < len(runs) - bench.max_misses:
                    failures.append(f"{case} ({count}/{len(runs)} seeds reached {bench.min_value_ratio})")
    print("all goals met" if not failures else f"missed: {', '.join(failures)}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(tyro.cli(BenchArgs)))
