"""Side by side with CleanRL: the wall time of this project's dqn_atari.py and of CleanRL's dqn_atari.py, run one
after the other on the same machine with the same flags, alternating which goes first. Prints every repetition
and the ratio of the medians, and exits 1 when that ratio is above --max-ratio.

CleanRL's script is not part of this repository: pass its path. Its current version imports stable-baselines3
(`pip install --no-deps stable-baselines3`) and needs, on gymnasium 1.x, the renames listed in the README.

    python benchmarks/bench_vs_cleanrl.py --cleanrl /path/to/cleanrl/dqn_atari.py

Both are timed as whole processes (start-up, training and whatever each does at the end: ours plays its
10-game final evaluation, CleanRL's nothing without --save-model), each in a fresh folder for its runs/.
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

OURS = Path(__file__).resolve().parent.parent / "dqn_atari.py"
FLAGS = ["--env-id", "BreakoutNoFrameskip-v4", "--total-timesteps", "12000", "--learning-starts", "2000",
         "--buffer-size", "100000", "--seed", "1"]


def wall_time(script: Path, flags: list[str]) -> float:
    """Seconds the script takes as a subprocess in a fresh folder; exits with its output if it fails."""
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        process = subprocess.run([sys.executable, str(script), *flags], cwd=folder, capture_output=True, text=True)
        seconds = time.perf_counter() - start
    if process.returncode != 0:
        sys.exit(f"error: {script} exited with {process.returncode}:\n{process.stdout[-2000:]}{process.stderr[-2000:]}")
    return seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cleanrl", type=Path, required=True, help="path of CleanRL's dqn_atari.py")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each script")
    parser.add_argument("--max-ratio", type=float, default=0.7, help="goal: our wall time / CleanRL's")
    options = parser.parse_args()
    if not options.cleanrl.is_file():
        parser.exit(2, f"error: --cleanrl {options.cleanrl}: no such file\n")
    print(f"flags of both: {' '.join(FLAGS)}")
    print(f"{'repeat':<8}{'ours s':>10}{'CleanRL s':>12}")
    times = {"ours": [], "cleanrl": []}
    for repeat in range(options.repeats):
        order = [("ours", OURS), ("cleanrl", options.cleanrl)]
        for name, script in order if repeat % 2 == 0 else order[::-1]:
            times[name].append(wall_time(script, FLAGS))
        print(f"{repeat + 1:<8}{times['ours'][-1]:>10.1f}{times['cleanrl'][-1]:>12.1f}", flush=True)
    ratio = statistics.median(times["ours"]) / statistics.median(times["cleanrl"])
    print(f"ratio of the medians (ours / CleanRL): {ratio:.2f}  goal <= {options.max_ratio}:",
          "ok" if ratio <= options.max_ratio else "FAIL")
    return 0 if ratio <= options.max_ratio else 1


if __name__ == "__main__":
    sys.exit(main())
