"""The score of a uniformly random policy on Atari games, played through the DQN scripts' own pipeline: the
baseline that benchmarks/report.py shows beside the scripts' scores.

Each game is a full game of `dqn_atari.py`'s evaluation env (`make_env(..., training=False)`: no-op starts, action
repeat 4, FIRE on reset, raw game score of all lives, no life-loss terminals, the 108,000-frame cap), every action
drawn uniformly at random. The published "Random" scores (benchmarks/atari100k_published.csv) were measured by
others, with another pipeline; this one is ours, measured as our agents are.

    python benchmarks/random_policy.py --env-ids BreakoutNoFrameskip-v4 PongNoFrameskip-v4 \
        BoxingNoFrameskip-v4 --games 30 --results-dir benchmarks/results/atari100k

writes `DIR/random_policy/{env id, '/' -> '_'}.json` per game, in the folder that benchmarks/report.py reads: the
env id, the seed, each game's score and the git commit of the code that played it (`-dirty` when dqn_atari.py or
this file differs from it). A file that is there is replaced: the same command with the same seed plays the same
games.
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from helpers import ROOT, load_script  # noqa: E402

FOLDER = "random_policy"  # under --results-dir; benchmarks/report.py reads it there
PIPELINE = "dqn_atari"  # the script whose make_env plays the games


def play_random_games(make_env, env_id: str, seed: int, games: int) -> list[float]:
    """The raw score of `games` full games with uniformly random actions (the action space is seeded by make_env,
    the first reset by `seed`)."""
    env = make_env(env_id, seed, 0, training=False)()
    scores = []
    for game in range(games):
        env.reset(seed=seed if game == 0 else None)
        terminated = truncated = False
        while not (terminated or truncated):
            _, _, terminated, truncated, info = env.step(env.action_space.sample())
        scores.append(float(info["episode"]["r"]))
    env.close()
    return scores


def git_commit(paths: list[Path]) -> str:
    """The repository's HEAD commit, with `-dirty` when one of `paths` differs from it (or is not committed);
    "unknown" without git."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True)
        status = subprocess.run(["git", "status", "--porcelain", "--", *map(str, paths)], cwd=ROOT,
                                capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head.stdout.strip() + ("-dirty" if status.stdout.strip() else "")


def result_path(results_dir: Path, env_id: str) -> Path:
    return results_dir / FOLDER / f"{env_id.replace('/', '_')}.json"


class OneLineParser(argparse.ArgumentParser):
    """argparse, with one `error:` line for a bad command line instead of the usage and a line."""

    def error(self, message: str):
        fail(message)


def fail(message: str, status: int = 2):
    """Stop with one line on stderr, never a traceback."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(status)


def main(argv: list[str]):
    parser = OneLineParser(
        description=__doc__.split("\n\n")[0],
        epilog="Writes DIR/random_policy/{env id}.json per game (benchmarks/report.py DIR shows it). Exit "
               "status: 0 when every game's file is written, 2 for a bad flag, 1 for a file that cannot be written, "
               "130 for Ctrl-C.")
    parser.add_argument("--env-ids", nargs="+", required=True, help="Atari env ids, e.g. BreakoutNoFrameskip-v4")
    parser.add_argument("--games", type=int, default=30, help="full games per env id (default 30)")
    parser.add_argument("--seed", type=int, default=1, help="seeds the first reset and the random actions (default 1)")
    parser.add_argument("--results-dir", type=Path, required=True, metavar="DIR",
                        help="the folder of the runs that benchmarks/report.py reads, e.g. the sweep's --results-dir "
                             "benchmarks/results/atari100k; the scores go into its random_policy/ folder")
    args = parser.parse_args(argv)
    if args.games < 1:
        fail(f"--games {args.games}: must be at least 1")
    pipeline = load_script(PIPELINE)  # importing it registers the ALE's env ids with gymnasium
    for env_id in args.env_ids:
        spec = gym.registry.get(env_id)
        if spec is None or spec.entry_point != "ale_py.env:AtariEnv":
            fail(f"--env-ids {env_id}: not an Atari game of ale-py (try BreakoutNoFrameskip-v4)")
    commit = git_commit([ROOT / f"{PIPELINE}.py", Path(__file__).resolve()])
    for env_id in args.env_ids:
        started = time.time()
        try:
            scores = play_random_games(pipeline.make_env, env_id, args.seed, args.games)
        except KeyboardInterrupt:
            fail(f"interrupted (Ctrl-C) while playing {env_id}; nothing written for it", status=130)
        path = result_path(args.results_dir, env_id)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({"env_id": env_id, "seed": args.seed, "scores": scores, "commit": commit},
                                       indent=1) + "\n")
        except OSError as error:
            fail(f"cannot write {path}: {error}", status=1)
        print(f"{env_id}: mean {sum(scores) / len(scores):.2f} over {len(scores)} games (min {min(scores):g}, max "
              f"{max(scores):g}), {time.time() - started:.1f} s; wrote {path}")


if __name__ == "__main__":
    main(sys.argv[1:])
