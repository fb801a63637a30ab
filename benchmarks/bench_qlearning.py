"""Benchmark of qlearning_frozenlake.py: wall time to the optimum, and the full 10-seed learning sweep.

Checks (exit status 1 when one is missed):
  1. FrozenLake 4x4 slippery, default flags, seed 1: V(π)/V* ≥ 0.99 within 15 s.
  2. FrozenLake 8x8 slippery with the README's flags, seed 1: V(π)/V* ≥ 0.99 within 60 s.
  3. Seeds 1..10 of 4x4 slippery, 4x4 not slippery, Taxi-v4 (default flags) and 8x8 slippery (the README's flags):
     V(π)/V* ≥ 0.99 for every seed, printed per seed. tests/test_qlearning.py keeps all of these but 8x8, of
     which it runs seeds 1 and 2 only.
The timed runs go one at a time, alone; the wall time is that of `main()` (training, exact scoring, TensorBoard,
pictures), not of Python's start-up. Runs are written to a temporary folder and deleted.

Run:  python benchmarks/bench_qlearning.py                  (about 4 minutes, one process)
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
    max_seconds_8x8: float = 60.0
    """the wall-time goal for 8x8 slippery"""
    min_value_ratio: float = 0.99
    """V(π)/V* a run must reach"""


def run(flags: dict, seed: int, runs_dir: str) -> tuple[float, float, int]:
    """(V(π)/V*, wall seconds of main(), env steps) of one quiet run."""
    with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet):
        start = time.perf_counter()
        result = ql.main(ql.Args(seed=seed, runs_dir=runs_dir, **flags))
        seconds = time.perf_counter() - start
    return result.evaluation.value_ratio, seconds, result.steps


def main(bench: BenchArgs) -> int:
    failures = []
    with tempfile.TemporaryDirectory() as runs_dir:
        for name, flags, limit in (("4x4 slippery", FOUR_BY_FOUR, bench.max_seconds_4x4),
                                   ("8x8 slippery", EIGHT_BY_EIGHT, bench.max_seconds_8x8)):
            ratio, seconds, steps = run(flags, 1, runs_dir)
            ok = ratio >= bench.min_value_ratio and seconds <= limit
            print(f"{name:13s} seed 1: V(π)/V* {ratio:.6f}  wall {seconds:5.1f} s (goal ≤ {limit:.0f} s)  "
                  f"{steps:,} steps ({steps / seconds:,.0f} steps/s)  {'ok' if ok else 'MISSED'}", flush=True)
            if not ok:
                failures.append(name)
        if bench.sweep_seeds > 0:
            seeds = list(range(1, bench.sweep_seeds + 1))
            jobs = [(case, seed) for case in SWEEP for seed in seeds]
            start = time.perf_counter()
            if bench.workers > 1:
                with ProcessPoolExecutor(max_workers=bench.workers, mp_context=multiprocessing.get_context("fork")) as pool:
                    results = list(pool.map(run, [SWEEP[c] for c, _ in jobs], [s for _, s in jobs], [runs_dir] * len(jobs)))
            else:
                results = [run(SWEEP[case], seed, runs_dir) for case, seed in jobs]
            print(f"sweep, {len(seeds)} seeds per case on {bench.workers} process(es) ({time.perf_counter() - start:.0f} s):")
            for (case, seed), (ratio, seconds, _) in zip(jobs, results):
                ok = ratio >= bench.min_value_ratio
                print(f"  {case:16s} seed {seed:2d}: V(π)/V* {ratio:.6f}  wall {seconds:5.1f} s  {'ok' if ok else 'MISSED'}")
                if not ok:
                    failures.append(f"{case} seed {seed}")
    print("all goals met" if not failures else f"missed: {', '.join(failures)}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(tyro.cli(BenchArgs)))
