"""Benchmark of qlearning_frozenlake.py: wall time to the optimum, and the full 10-seed learning sweep.

Checks (exit status 1 when one is missed):
  1. FrozenLake 4x4 slippery, default flags, seed 1: V(π)/V* ≥ 0.99 within 15 s.
  2. FrozenLake 8x8 slippery with the README's flags, seed 1: V(π)/V* ≥ 0.99 within 120 s.
  3. Seeds 1..10 of 4x4 slippery, 4x4 not slippery, Taxi-v4 (default flags) and 8x8 slippery (the README's flags):
     V(π)/V* ≥ 0.99 for every seed, printed per seed. tests/test_qlearning.py runs three seeds of each 4x4 case
     and one of Taxi; the 8x8 case is checked here only.
The timed runs go one at a time; the wall time is that of `main()` (training, exact scoring, TensorBoard,
pictures), not of Python's start-up, and the CPU time beside it is this process's, which another job on the same
cores inflates less than the wall time. Runs are written to a temporary folder and deleted.

Run:  python benchmarks/bench_qlearning.py                  (about 12 minutes, one process)
      python benchmarks/bench_qlearning.py --workers 2      (the sweep on 2 processes)
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

import tyro

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from helpers import load_script  # noqa: E402

ql = load_script("qlearning_frozenlake")

# The README's commands, as flags
FOUR_BY_FOUR = dict()
EIGHT_BY_EIGHT = dict(map_name="8x8", total_episodes=100_000)
SWEEP = {"4x4 slippery": FOUR_BY_FOUR, "4x4 not slippery": dict(is_slippery=False), "Taxi-v4": dict(env_id="Taxi-v4"),
         "8x8 slippery": EIGHT_BY_EIGHT}


@dataclass
class BenchArgs:
    sweep_seeds: int = 10
    """how many seeds of every case of the sweep (0 skips it)"""
    workers: int = 1
    """processes for the sweep (1: one run at a time; don't share the cores with timings)"""
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
        for name, flags, limit in (("4x4 slippery", FOUR_BY_FOUR, bench.max_seconds_4x4),
                                   ("8x8 slippery", EIGHT_BY_EIGHT, bench.max_seconds_8x8)):
            ratio, seconds, cpu_seconds, steps = run(flags, 1, runs_dir)
            ok = ratio >= bench.min_value_ratio and seconds <= limit
            print(f"{name:13s} seed 1: V(π)/V* {ratio:.6f}  wall {seconds:5.1f} s (goal ≤ {limit:.0f} s)  "
                  f"CPU {cpu_seconds:5.1f} s  {steps:,} steps ({steps / seconds:,.0f} steps/s)  "
                  f"{'ok' if ok else 'MISSED'}", flush=True)
            if not ok:
                failures.append(name)
        if bench.sweep_seeds > 0:
            seeds = list(range(1, bench.sweep_seeds + 1))
            jobs = [(case, seed) for case in SWEEP for seed in seeds]
            start = time.perf_counter()
            print(f"sweep, {len(seeds)} seeds per case on {bench.workers} process(es):", flush=True)
            arguments = ([SWEEP[case] for case, _ in jobs], [seed for _, seed in jobs], [runs_dir] * len(jobs))
            fork = multiprocessing.get_context("fork")
            pool = ProcessPoolExecutor(bench.workers, mp_context=fork) if bench.workers > 1 else None
            results = pool.map(run, *arguments) if pool else map(run, *arguments)  # in order, each as soon as done
            for (case, seed), (ratio, seconds, cpu_seconds, _) in zip(jobs, results):
                ok = ratio >= bench.min_value_ratio
                print(f"  {case:16s} seed {seed:2d}: V(π)/V* {ratio:.6f}  wall {seconds:5.1f} s  "
                      f"CPU {cpu_seconds:5.1f} s  {'ok' if ok else 'MISSED'}", flush=True)
                if not ok:
                    failures.append(f"{case} seed {seed}")
            if pool:
                pool.shutdown()
            print(f"sweep: {time.perf_counter() - start:.0f} s")
    print("all goals met" if not failures else f"missed: {', '.join(failures)}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(tyro.cli(BenchArgs)))
