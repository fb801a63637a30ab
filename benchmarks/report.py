"""Report of a benchmark sweep, from its TensorBoard logs, offline: learning curves with confidence bands, final
scores with confidence intervals, human-normalized aggregates beside the published Atari 100k agents, and the
overestimation figure of Double DQN.

    python benchmarks/report.py benchmarks/results/atari100k --out benchmarks/results/atari100k

reads every run folder directly under RUNS_DIR (e.g. the sweep's) and writes into --out:

- `report.md`: the git commits of the scripts it pooled; the final score (the last evaluation) per script × env:
  mean over seeds, 95% CI, the seeds, and for Atari games the human-normalized score; per Atari game, ours beside
  the uniformly random policy we measured and the published agents; over games, the interquartile mean (IQM) and
  the mean with 95% stratified-bootstrap CIs, beside the published agents' on the same games, and the probability
  that one script improves on another (rliable: Agarwal et al. 2021, "Deep RL at the edge of the statistical
  precipice"); runs not finished; notes.
- `report.png`: per env a column, titled with the env's name (a FrozenLake map's flags included). On top the learning
  curves, a colour per script: for runs scored by a game's return, the raw game scores of the training games
  (`charts/episodic_return`, each point the mean of the last 20 games, as CleanRL plots them); for tabular runs
  V(π)/V* (`eval/value_ratio`). A thick line is the mean over seeds; with fewer than 4 seeds thin lines show each seed
  at its own steps (a 95% bootstrap CI over 2 or 3 seeds would be their lowest and highest), from 4 seeds a band
  shows the 95% bootstrap CI. Below, the final scores: each seed's, their mean with its 95% CI, the random policy we
  measured and the published agents.
- `overestimation.png`: per env, each script's value estimate `eval/q_estimate` (solid) and the discounted return
  it actually obtained `eval/discounted_return` (dashed) against global_step: van Hasselt et al. (2016),
  Figure 3; seeds shown as in report.png. Where every run evaluated once (at its end), the two side by side per
  script instead: each seed's value and their mean with its 95% CI. Written only when some run logs them.

The literature. `benchmarks/atari100k_published.csv` is the one source of the random and human scores that
normalize every Atari score of a report, (score − random) / (human − random), and of the published agents' mean
final scores on Atari 100k (100,000 agent steps per game; 100 runs of each agent); the file names its sources. A
published agent's IQM and mean over the report's games are computed from its per-game means: its runs are not in
the file, so there is no CI, and this IQM is not the paper's IQM over 100 runs per game. The random policy's scores
are read from `RUNS_DIR/random_policy/*.json`, which benchmarks/random_policy.py writes.

Which runs are pooled. A run is a folder whose event files hold the `hyperparameters` text table the scripts write
as they start (`|flag|value|`, every flag). Its seed is pooled with the seeds of the runs whose tables agree on
everything that changes what is learned or what the score measures: the env id, the script (exp_name and, where the
table has it, the `script` row: the file that ran, so two scripts that share --exp-name stay apart) and every flag
but the seed and BOOKKEEPING (where a run is written, when it logs, on which device it runs). The `commit` row (the
git commit of the script) does not keep runs apart either: report.md lists each script's commits, "unknown" where a
table has none. Each group is named by its env id and script, followed by the flags that tell it apart from the
other runs of that env id or script: `FrozenLake-v1 (map_size=2)` beside `FrozenLake-v1 (map_size=0)` for two maps
(the map flags, GAME_FLAGS, name the env, and the aggregates over envs count each map as one env),
`dqn_atari (learning_rate=0.001)` beside `dqn_atari (learning_rate=0.0001)`; a flag missing from a run's table reads
`?`. Two finished runs of one seed in one group are refused: a seed counted twice would make the CI too narrow.

In a folder the sweep wrote (it has `sweep_logs/`, or some run has `sweep_done.json`), a run without that marker is
not finished: it is listed with the step it reached and left out of the scores and curves. Every CI is a percentile
bootstrap with 2,000 resamples and a fixed seed, and report.md names RUNS_DIR only as given relative to the current
folder (an absolute path is left out), so the same runs give the same report.md byte for byte. A score, aggregate or
probability that rests on one seed shows no CI (a bootstrap over one seed measures no spread).

A folder with event files but no table naming env_id, exp_name and an integer seed (an ordinary TensorBoard log
kept beside the runs) is left out with one `warning:` line and a note. Anything else that stops the report is one
`error:` line: exit status 2 for bad input (RUNS_DIR missing or a run's own folder, --out naming a file, a damaged
event file or random-policy file, a seed counted twice), 1 for a fault (a file that cannot be read or written, a
damaged published-scores file), 130 for Ctrl-C.
"""

import argparse
import csv
import itertools
import json
import re
import struct
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.transforms import offset_copy
from rliable import library as rly
from rliable import metrics
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c  # the one TensorBoard writes with

ROOT = Path(__file__).resolve().parent.parent
# Per Atari game: the random and human scores that normalize scores, and the published Atari 100k agents' means
PUBLISHED = ROOT / "benchmarks" / "atari100k_published.csv"
RANDOM_POLICY = "random_policy"  # RUNS_DIR/random_policy/*.json: written by benchmarks/random_policy.py
ATARI_100K_STEPS = 100_000  # the protocol of the published agents: 100,000 agent steps (400,000 frames) per game
SCORE_TAGS = ("eval/episodic_return", "eval/value_ratio")  # the first one a run has is its score (DQN, tabular)
TRAINING_RETURN = "charts/episodic_return"  # the raw score of each training game (the DQN scripts)
TRAINING_WINDOW = 20  # a learning curve's point: the mean return of the last 20 training games
CURVE_POINTS = 200  # at most this many steps per curve: a band over a training return per game would be noise
# Below this many seeds the curves show each seed instead of a band: a 95% percentile-bootstrap CI of the mean of 2 or
# 3 seeds is their lowest and highest value (a resample of one seed alone is 1/4 or 1/27 of them, over 2.5%)
SEED_LINES_BELOW = 4
# What a tag measures, as the figures' axes name it (the tag follows, to find it in TensorBoard)
AXIS_LABELS = {
    "eval/value_ratio": "V(π) / V* of the greedy policy (1 = optimal)",
    "eval/episodic_return": "episodic return (raw game score)",
    TRAINING_RETURN: f"training games' raw score, mean of the last {TRAINING_WINDOW}",
}
LEGEND_DROP = 40  # points between an axes' bottom edge and a legend below it: room for the tick labels and x label
OVERESTIMATION_TAGS = ("eval/q_estimate", "eval/discounted_return")
DONE_MARKER = "sweep_done.json"  # written by benchmarks/sweep.py when a run exits with status 0
SWEEP_LOGS = "sweep_logs"  # the folder of the runs' console output, written by benchmarks/sweep.py
BOOTSTRAP_REPS = 2000
BOOTSTRAP_SEED = 0
ATARI = "Atari (human-normalized)"
TABULAR = "tabular (eval/value_ratio)"
# Flags of the hyperparameters table that change neither what a run learns nor what its score measures: runs that
# differ only in these and the seed are pooled. Every other flag, known or not, keeps runs apart; so do the
# evaluation's ε and number of games (eval_epsilon, eval_episodes): they change the score, not the learning.
BOOKKEEPING = {
    # where the run is written, what is kept besides the logs, and whether it continued an earlier start
    "runs_dir", "run_name", "save_model", "capture_video", "checkpoint_frequency", "resume", "track",
    "wandb_project_name", "wandb_entity",
    # when the logs are written, not what they hold: the last evaluation, the final score, is always at the end
    "log_frequency", "eval_frequency",
    # where and how the same arithmetic runs: the device, compiled kernels, cuDNN's choice of algorithm
    "cuda", "compile", "torch_deterministic",
    # --eval-only plays a saved model and logs no scalars: a training run's table has them unset
    "eval_only", "model_path",
}
# The row of the table with the git commit of the script that ran (`-dirty` if the file differed from it). Not a
# flag: runs of two commits are pooled (a commit that changed nothing the run does would otherwise split a sweep)
# and report.md lists every commit it pooled, so a reader sees when one script's runs come from two versions.
COMMIT = "commit"
# The tabular script's FrozenLake flags: with the env id they make the env a run plays (its map and ice), so they
# name the env, and the aggregates over envs count each map as one env. Other envs ignore them.
GAME_FLAGS = {"map_name", "map_size", "map_p", "map_seed", "is_slippery"}
IDENTITY = ("env_id", "exp_name", "seed")  # the rows a table must have to be a run of these scripts


@dataclass
class RunData:
    """One run folder: who it is, whether it finished, and its scalars (tag -> (steps, values))."""

    folder: Path
    env_id: str
    exp_name: str
    seed: int
    commit: str  # the git commit of the script that ran, "unknown" if its table does not say
    flags: dict[str, str]  # the rest of its hyperparameters table, less BOOKKEEPING: flag -> value as logged
    finished: bool
    scalars: dict[str, tuple[np.ndarray, np.ndarray]]
    env: str = ""  # the env id and the GAME_FLAGS that differ between runs of it (see name_runs)
    method: str = ""  # the exp_name and the other flags that differ between runs of it (see name_runs)


class NotARun(Exception):
    """A folder with event files that is not a run of these scripts; the message says why."""


@dataclass
class Estimate:
    """A point estimate with its 95% confidence interval; None for both ends when it rests on one seed (a
    bootstrap over one seed measures no spread). A CI that is one point is printed as what made it one, not as
    [x, x], which reads like a measured spread."""

    value: float
    low: float | None
    high: float | None
    # which samples all scored `value`, if they did ("all seeds", "all games", "all seeds × games"); None: the samples
    # differ, and a CI of one point means every bootstrap resample gave the same value (P(X > Y) = 1 when every run
    # of one script beat every run of the other)
    alike: str | None = None

    def __str__(self) -> str:
        if self.low is None:
            return f"{self.value:.3f} (one seed: no CI)"
        if self.low == self.high:
            return f"{self.value:.3f} ({self.alike or 'every bootstrap resample'} {self.value:.3f}: no spread)"
        return f"{self.value:.3f} [{self.low:.3f}, {self.high:.3f}]"


@dataclass
class PublishedGame:
    """One game's row of the published-scores file."""

    random: float  # the random and human scores that normalize this game's scores
    human: float
    scores: dict[str, float]  # agent -> its mean final score over its runs (only the agents the file has for it)
    sds: dict[str, float]  # agent -> the standard deviation of its runs' scores, where the file gives it


@dataclass
class Published:
    """The published-scores file: per game its row, and the aggregates over all Atari 100k games."""

    agents: list[str]  # in the file's order
    games: dict[str, PublishedGame]  # "Breakout" -> its row
    all_games: dict[str, dict[str, float]]  # "IQM over 26 games" -> agent -> human-normalized value


@dataclass
class RandomPolicy:
    """The scores of the uniformly random policy we measured on one game (benchmarks/random_policy.py)."""

    env_id: str
    scores: np.ndarray  # one per game played
    commit: str
    estimate: Estimate  # the mean over the games played
    normalized: Estimate | None


@dataclass
class FinalScore:
    """The final scores of one method on one env over its finished seeds."""

    env_id: str
    env: str  # RunData.env: the env id and the map flags that tell it apart
    method: str  # RunData.method: the script and the flags that tell it apart
    tag: str
    seeds: list[int]
    scores: np.ndarray  # one per seed, in the order of `seeds`
    estimate: Estimate  # the mean over seeds
    normalized_scores: np.ndarray | None  # human-normalized, one per seed (Atari games in the published file)
    normalized: Estimate | None  # their mean and CI


@dataclass
class Report:
    """Everything the report shows, computed once from a runs folder."""

    runs_dir: Path
    runs: list[RunData]
    cells: list[FinalScore]
    published: Published
    random_policies: dict[str, RandomPolicy]  # env id -> the random policy we measured
    matrices: dict  # see normalized_matrices
    summary: dict  # see aggregates
    published_summary: dict  # see published_aggregates
    probabilities: dict  # see improvement_probabilities
    notes: list[str]


# ---- Statistics --------------------------------------------------------------------------------------------------
def bootstrap_ci(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """95% percentile-bootstrap CI of the mean over axis 0 (the seeds): resample the seeds with replacement
    BOOTSTRAP_REPS times (numpy Generator seeded BOOTSTRAP_SEED), take the 2.5th and 97.5th percentiles."""
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    resamples = rng.integers(0, len(samples), size=(BOOTSTRAP_REPS, len(samples)))
    means = samples[resamples].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5], axis=0)
    return low, high


def mean_estimate(samples: np.ndarray, kind: str = "seeds") -> Estimate:
    """The mean of the samples (`kind`: "seeds", or "games" played) and its 95% bootstrap CI; no CI for one
    sample."""
    low, high = (float(bound) for bound in bootstrap_ci(samples)) if len(samples) > 1 else (None, None)
    return Estimate(float(samples.mean()), low, high, alike=f"all {kind}" if np.ptp(samples) == 0 else None)


def human_normalized(published: Published, env_id: str, scores):
    """(score − random) / (human − random) for an Atari game of the published file (a number or an array of
    them); None for any other env."""
    game = published.games.get(atari_game(env_id))
    if game is None:
        return None
    return (scores - game.random) / (game.human - game.random)


def atari_game(env_id: str) -> str:
    """The game of an Atari env id: BreakoutNoFrameskip-v4 and ALE/Breakout-v5 -> Breakout."""
    return re.sub(r"(NoFrameskip|Deterministic)?-v\d+$", "", env_id.removeprefix("ALE/"))


def rliable_estimates(score_dict: dict, func) -> dict[str, Estimate]:
    """rliable's point estimates and 95% stratified-bootstrap CIs of `func` for each key (a runs × games matrix,
    or a pair of them for the probability of improvement; no CI where a matrix has one run). rliable draws from
    numpy's global generator, so it is seeded here for a reproducible report."""
    np.random.seed(BOOTSTRAP_SEED)
    points, intervals = rly.get_interval_estimates(score_dict, func, reps=BOOTSTRAP_REPS)
    estimates = {}
    for key, scores in score_dict.items():
        matrices = scores if isinstance(scores, list) else [scores]  # a pair for the probability of improvement
        low, high = (None, None) if min(map(len, matrices)) == 1 else (float(np.squeeze(b)) for b in intervals[key])
        # an IQM or mean over one matrix whose scores are all the same; never a probability (its value is not a score)
        alike = "all seeds × games" if len(matrices) == 1 and np.ptp(matrices[0]) == 0 else None
        estimates[key] = Estimate(float(np.squeeze(points[key])), low, high, alike)
    return estimates


# ---- Reading the published scores and the random policy ----------------------------------------------------------
def read_published(path: Path) -> Published:
    """The published-scores file: `#` comments (its sources), then a CSV table. Columns: game, random, human, one
    per agent, and `{agent} sd` for an agent's standard deviation over runs. A row with no random and human holds
    aggregates over all Atari 100k games, named in its game column. An empty cell: the file has no such number."""
    try:
        lines = [line for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]
    except OSError as error:
        fail(f"{path}: cannot read the published scores ({error.strerror})", status=1)
    table = list(csv.DictReader(lines))
    columns = list(table[0]) if table else []
    if columns[:3] != ["game", "random", "human"]:
        fail(f"{path}: damaged: its table must start with the columns game, random, human", status=1)
    agents = [column for column in columns[3:] if not column.endswith(" sd")]
    games, all_games = {}, {}
    for line, row in enumerate(table, start=2):  # line 1 of the table is its header
        numbers = {column: published_number(path, line, column, row[column]) for column in columns[1:]}
        scores = {agent: numbers[agent] for agent in agents if numbers[agent] is not None}
        if numbers["random"] is None and numbers["human"] is None:
            all_games[row["game"]] = scores
        else:
            sds = {agent: numbers[f"{agent} sd"] for agent in agents if numbers.get(f"{agent} sd") is not None}
            games[row["game"]] = PublishedGame(numbers["random"], numbers["human"], scores, sds)
    return Published(agents, games, all_games)


def published_number(path: Path, line: int, column: str, text: str | None) -> float | None:
    """One cell of the published-scores file as a number; None if it is empty."""
    if not text or not text.strip():
        return None
    try:
        return float(text)
    except ValueError:
        fail(f"{path}: damaged: {column} in line {line} of its table is {text!r}, not a number", status=1)


def load_random_policies(runs_dir: Path, published: Published) -> dict[str, RandomPolicy]:
    """The random policy's scores per env id, from RUNS_DIR/random_policy/*.json (see benchmarks/random_policy.py);
    one error line for a file that is not such a record, or a second file for one env id."""
    policies = {}
    for path in sorted((runs_dir / RANDOM_POLICY).glob("*.json")):
        try:
            record = json.loads(path.read_text())
        except OSError as error:
            fail(f"{path}: cannot read it ({error.strerror})", status=1)
        except ValueError as error:  # not JSON, or not UTF-8
            fail(f"{path}: damaged, not JSON ({type(error).__name__}); write it again with benchmarks/random_policy.py")
        scores = record.get("scores") if isinstance(record, dict) else None
        if not (isinstance(record, dict) and isinstance(record.get("env_id"), str) and isinstance(scores, list)
                and scores and all(isinstance(score, (int, float)) for score in scores)):
            fail(f"{path}: not a record of benchmarks/random_policy.py (it needs env_id and a list of scores)")
        env_id = record["env_id"]
        if env_id in policies:
            fail(f"{path}: a second random policy for {env_id}; its games would count twice: move one of them out of "
                 f"{path.parent}")
        scores = np.array(scores, dtype=float)
        estimate = mean_estimate(scores, "games")
        normalized = human_normalized(published, env_id, scores)
        policies[env_id] = RandomPolicy(env_id, scores, str(record.get("commit", "unknown")), estimate,
                                        None if normalized is None else mean_estimate(normalized, "games"))
    return policies


# ---- Reading the runs --------------------------------------------------------------------------------------------
def load_runs(runs_dir: Path, notes: list[str]) -> list[RunData]:
    """Every run folder directly under `runs_dir`, named (see name_runs) and sorted by env, method, seed. A folder
    with event files that is not a run is left out with a warning on stderr and a note."""
    folders = sorted({path.parent for path in runs_dir.glob("*/events.out.tfevents.*")})
    # the sweep writes sweep_logs/ as it starts a run and the marker when one ends: a sweep with no run ended yet
    written_by_sweep = (runs_dir / SWEEP_LOGS).is_dir() or any((folder / DONE_MARKER).exists() for folder in folders)
    runs = []
    for folder in folders:
        try:
            runs.append(load_run(folder, finished=(folder / DONE_MARKER).exists() or not written_by_sweep))
        except NotARun as reason:  # an ordinary TensorBoard log beside the runs: not ours to count, nor to refuse
            print(f"warning: {folder}: not a run of these scripts ({reason}); left out", file=sys.stderr)
            notes.append(f"`{folder.name}`: not a run of these scripts ({reason}); left out")
    name_runs(runs)
    check_each_seed_once(runs)
    return sorted(runs, key=lambda run: (run.env, run.method, run.seed))


def load_run(folder: Path, finished: bool) -> RunData:
    """One run's identity, flags and scalars (TensorBoard drops the points a resumed run logged again)."""
    for path in sorted(folder.glob("events.out.tfevents.*")):
        check_event_file(path)
    events = EventAccumulator(str(folder), size_guidance={"scalars": 0, "tensors": 0})
    events.Reload()
    table = run_table(events)
    flags = {flag: value for flag, value in table.items()
             if flag not in IDENTITY and flag not in BOOKKEEPING and flag != COMMIT}
    scalars = {tag: (np.array([point.step for point in events.Scalars(tag)]),
                     np.array([point.value for point in events.Scalars(tag)]))
               for tag in events.Tags()["scalars"]}
    return RunData(folder, table["env_id"], table["exp_name"], int(table["seed"]), table.get(COMMIT, "unknown"), flags,
                   finished, scalars)


def run_table(events: EventAccumulator) -> dict[str, str]:
    """The run's `hyperparameters` text table, `|flag|value|` rows as {flag: value}. NotARun if there is none or it
    does not name env_id, exp_name and an integer seed. The folder's name is not enough: it tells neither the map
    nor any other flag, so a run known by its name alone could be pooled with runs that learned something else."""
    if "hyperparameters/text_summary" not in events.Tags()["tensors"]:
        raise NotARun("no hyperparameters text table")
    text = b"".join(events.Tensors("hyperparameters/text_summary")[0].tensor_proto.string_val).decode(errors="replace")
    table = dict(re.findall(r"^\|(\w+)\|(.*)\|$", text, flags=re.MULTILINE))
    table.pop("param", None)  # the header row, |param|value|
    missing = [row for row in IDENTITY if row not in table]
    if missing:
        raise NotARun(f"its hyperparameters table has no {' and no '.join(missing)}")
    if not re.fullmatch(r"-?\d+", table["seed"]):
        raise NotARun(f"the seed in its hyperparameters table, {table['seed']!r}, is not an integer")
    return table


def check_event_file(path: Path) -> None:
    """One error line if a record of the event file fails its checksum: TensorBoard's reader stops there without a
    word, so the run would pass for a shorter one (an early evaluation for its final score)."""
    try:
        data = path.read_bytes()
    except OSError as error:
        fail(f"{path}: cannot read it ({error.strerror})", status=1)
    offset = first_damaged_record(data)
    if offset is not None:
        fail(f"{path}: damaged at byte {offset:,} (a record fails its checksum): TensorBoard reads the run only up to "
             f"there, so it would look shorter; move the run out of {path.parent.parent}")


def first_damaged_record(data: bytes) -> int | None:
    """The offset of the first record whose checksum fails, None if none does. A record is its length (8 bytes), the
    length's masked CRC-32C (4 bytes), the data, and the data's masked CRC-32C (4 bytes)."""
    offset = 0
    while offset + 12 <= len(data):  # a whole length and its checksum are left
        length, length_crc = struct.unpack_from("<QI", data, offset)
        if masked_crc32c(data[offset:offset + 8]) != length_crc:
            return offset
        record_end = offset + 12 + length + 4
        # the last record cut short is not damage: a run killed while writing leaves one (a resumed run starts a
        # new file); TensorBoard reads the records before it
        if record_end > len(data):
            return None
        (data_crc,) = struct.unpack_from("<I", data, record_end - 4)
        if masked_crc32c(data[offset + 12:record_end - 4]) != data_crc:
            return offset
        offset = record_end
    return None


def name_runs(runs: list[RunData]) -> None:
    """Give each run its `env` and `method`: the env id and the exp_name, each followed by the flags whose values
    differ between the runs of that env id (GAME_FLAGS: the map and ice) or of that exp_name (the other flags, the
    `script` row among them: two scripts run with one --exp-name are named by their files). Two runs share both
    names only if they played the same env with the same flags, so only then are they pooled."""
    for run in runs:
        same_env = [other for other in runs if other.env_id == run.env_id]
        same_exp_name = [other for other in runs if other.exp_name == run.exp_name]
        run.env = with_differing_flags(run.env_id, run, same_env, game=True)
        run.method = with_differing_flags(run.exp_name, run, same_exp_name, game=False)


def with_differing_flags(name: str, run: RunData, peers: list[RunData], game: bool) -> str:
    """`name (flag=value, ...)`: the run's value of each game flag (game=True) or other flag (game=False) whose value
    differs between the peers; `name` alone if none does. A flag missing from a run's table reads `?`."""
    flags = sorted({flag for peer in peers for flag in peer.flags if (flag in GAME_FLAGS) == game})
    differing = [flag for flag in flags if len({peer.flags.get(flag, "?") for peer in peers}) > 1]
    if not differing:
        return name
    return f"{name} (" + ", ".join(f"{flag}={run.flags.get(flag, '?')}" for flag in differing) + ")"


def check_each_seed_once(runs: list[RunData]) -> None:
    """One error line if two finished runs have the same env, method and seed: the same run twice, whose seed would
    count twice and make the CI too narrow. (An unfinished one beside a finished one is counted once: it is left
    out of the scores.)"""
    first = {}
    for run in runs:
        if not run.finished:
            continue
        key = (run.env, run.method, run.seed)
        if key in first:
            fail(f"{first[key].folder} and {run.folder}: the same run twice ({run.env}, {run.method}, seed "
                 f"{run.seed}); a seed counted twice would make the CI too narrow: move one of them out of "
                 f"{run.folder.parent}")
        first[key] = run


def score_tag(runs: list[RunData]) -> str | None:
    """The score tag of these runs: the first of SCORE_TAGS that one of them logs."""
    return next((tag for tag in SCORE_TAGS if any(tag in run.scalars for run in runs)), None)


def by_env_and_method(runs: list[RunData]) -> dict[str, dict[str, list[RunData]]]:
    """The finished runs, grouped by env, then method (see name_runs): the runs of a group differ only in the seed
    and in BOOKKEEPING flags."""
    groups = {}
    for run in runs:
        if run.finished:
            groups.setdefault(run.env, {}).setdefault(run.method, []).append(run)
    return groups


def learning_curve_tag(runs: list[RunData]) -> str | None:
    """What the runs' learning curves show: for runs scored by a game's return, the returns of their training games
    (charts/episodic_return), as CleanRL plots them: a curve even for runs evaluated only at their end. For the
    others, their score (the tabular value ratio: exact, and evaluated periodically)."""
    tag = score_tag(runs)
    if tag == "eval/episodic_return" and any(TRAINING_RETURN in run.scalars for run in runs):
        return TRAINING_RETURN
    return tag


def run_curve(run: RunData, tag: str) -> tuple[np.ndarray, np.ndarray]:
    """A run's curve of `tag`: its points; for the training games' returns, at the end of each game the mean of the
    last TRAINING_WINDOW games (one game's return swings too much to read a trend from)."""
    steps, values = run.scalars[tag]
    if tag == TRAINING_RETURN:
        values = np.array([values[max(0, game + 1 - TRAINING_WINDOW):game + 1].mean() for game in range(len(values))])
    return steps, values


def mean_curve(curves: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(steps, mean, CI low, CI high) over the curves, each (steps, values). Curves logged at different steps (the
    tabular script evaluates every N episodes, a training game ends at any step) are interpolated linearly onto
    every step any of them logged, within the steps all of them cover; onto CURVE_POINTS evenly spaced steps where
    those are more."""
    first, last = max(steps[0] for steps, _ in curves), min(steps[-1] for steps, _ in curves)
    steps = np.unique(np.concatenate([steps for steps, _ in curves]))
    steps = steps[(steps >= first) & (steps <= last)]
    if len(steps) > CURVE_POINTS:
        steps = np.linspace(first, last, CURVE_POINTS)
    values = np.array([np.interp(steps, *curve) for curve in curves])
    low, high = bootstrap_ci(values)
    return steps, values.mean(axis=0), low, high


# ---- The table and the aggregates --------------------------------------------------------------------------------
def final_scores(runs: list[RunData], published: Published, notes: list[str]) -> list[FinalScore]:
    """The last evaluation of each finished run, summarized per env × method, human-normalized for the Atari games
    of the published file; runs lacking the tag, and envs scored by a return that the file cannot normalize, are
    noted."""
    cells = []
    for env, methods in by_env_and_method(runs).items():
        tag = score_tag([run for group in methods.values() for run in group])
        env_id = next(iter(methods.values()))[0].env_id
        if tag == "eval/episodic_return" and human_normalized(published, env_id, 0.0) is None:
            notes.append(f"{env}: not a game of `{display_path(PUBLISHED)}`: its scores are not human-normalized")
        for method, group in methods.items():
            scored = [run for run in group if tag in run.scalars]
            notes.extend(f"{run.folder.name}: no {tag or ' or '.join(SCORE_TAGS)}; left out of the scores"
                         for run in group if run not in scored)
            if not scored:
                continue
            scores = np.array([run.scalars[tag][1][-1] for run in scored])
            normalized = human_normalized(published, env_id, scores) if tag == "eval/episodic_return" else None
            cells.append(FinalScore(env_id, env, method, tag, [run.seed for run in scored], scores,
                                    mean_estimate(scores), normalized,
                                    None if normalized is None else mean_estimate(normalized)))
    return cells


def normalized_matrices(cells: list[FinalScore]) -> dict[str, dict[str, tuple[list[str], list[int], np.ndarray]]]:
    """Per kind of score (Atari human-normalized, tabular V(π)/V*) and method: (games, seeds, seeds × games matrix)
    of the normalized final scores, over the seeds the method finished on every one of its games (a game is an env
    as named by name_runs: each FrozenLake map is one)."""
    matrices = {}
    for kind in (ATARI, TABULAR):
        kind_cells = [cell for cell in cells if cell_kind(cell) == kind]
        for method in sorted({cell.method for cell in kind_cells}):
            method_cells = [cell for cell in kind_cells if cell.method == method]
            seeds = sorted(set.intersection(*(set(cell.seeds) for cell in method_cells)))
            if not seeds:  # no seed finished every game: nothing to aggregate
                continue
            matrix = np.array([[normalized_score(cell, seed) for cell in method_cells] for seed in seeds])
            matrices.setdefault(kind, {})[method] = ([cell.env for cell in method_cells], seeds, matrix)
    return matrices


def cell_kind(cell: FinalScore) -> str | None:
    """Which aggregate a cell's scores join: Atari games with human and random scores, tabular value ratios."""
    if cell.normalized is not None:
        return ATARI
    return TABULAR if cell.tag == "eval/value_ratio" else None


def normalized_score(cell: FinalScore, seed: int) -> float:
    """One seed's final score, human-normalized for Atari (value ratios are normalized already)."""
    scores = cell.normalized_scores if cell_kind(cell) == ATARI else cell.scores
    return float(scores[cell.seeds.index(seed)])


def aggregates(matrices: dict) -> dict[str, dict[str, dict[str, Estimate]]]:
    """Per kind and script: the IQM and the mean over runs and games, with stratified-bootstrap CIs."""
    return {kind: {"IQM": rliable_estimates({script: matrix for script, (_, _, matrix) in scripts.items()},
                                            metrics.aggregate_iqm),
                   "mean": rliable_estimates({script: matrix for script, (_, _, matrix) in scripts.items()},
                                             metrics.aggregate_mean)}
            for kind, scripts in matrices.items()}


def published_aggregates(matrices: dict, published: Published) -> dict[tuple[str, ...], dict[str, dict[str, float]]]:
    """Per set of Atari games a script of the report was aggregated over: the IQM and the mean over those games of
    each published agent's human-normalized per-game means (a 1 × games matrix, by rliable's same functions), for
    the agents the file has on every one of those games."""
    summary = {}
    for games, _, _ in matrices.get(ATARI, {}).values():
        rows = [published.games[atari_game(game)] for game in games]  # an Atari aggregate holds only the file's games
        for agent in published.agents:
            if all(agent in row.scores for row in rows):
                means = np.array([[human_normalized(published, game, row.scores[agent]) for game, row in
                                   zip(games, rows)]])
                summary.setdefault(tuple(games), {})[agent] = {"IQM": float(metrics.aggregate_iqm(means)),
                                                               "mean": float(metrics.aggregate_mean(means))}
    return summary


def improvement_probabilities(matrices: dict) -> dict[str, dict[tuple[str, str], Estimate]]:
    """Per kind, for each pair of scripts (X, Y) that ran the same games: P(X > Y), the probability that a run of X
    scores higher than a run of Y on a game, averaged over the games, with a stratified-bootstrap CI."""
    probabilities = {}
    for kind, scripts in matrices.items():
        for x, y in itertools.combinations(sorted(scripts), 2):
            if scripts[x][0] == scripts[y][0]:
                key = f"{x},{y}"
                estimate = rliable_estimates({key: [scripts[x][2], scripts[y][2]]},
                                             metrics.probability_of_improvement)[key]
                probabilities.setdefault(kind, {})[(x, y)] = estimate
    return probabilities


# ---- Figures -----------------------------------------------------------------------------------------------------
def report_figure(report: Report) -> Figure:
    """A column per env, titled with its name: on top the learning curves (see learning_curve_tag), a colour per
    method (see plot_seeds); below the final scores (see final_scores_panel)."""
    groups = {env: methods for env, methods in by_env_and_method(report.runs).items()
              if score_tag([run for group in methods.values() for run in group])}
    figure = Figure(figsize=(6 * max(1, len(groups)), 9), layout="constrained")
    panels = figure.subplots(2, max(1, len(groups)), squeeze=False)
    colors = method_colors(report.runs)
    for column, (env, methods) in enumerate(groups.items()):
        curves, finals = panels[0][column], panels[1][column]
        tag = learning_curve_tag([run for group in methods.values() for run in group])
        for method, group in sorted(methods.items()):
            logged = [run for run in group if tag in run.scalars]
            if logged:
                plot_seeds(curves, [run_curve(run, tag) for run in logged], method, colors[method], linestyle="-")
        curves.set(title=env, xlabel="global step", ylabel=axis_label(tag))
        legend_below(curves)
        final_scores_panel(finals, env, report, colors)
    return figure


def final_scores_panel(axes, env: str, report: Report, colors: dict[str, str]):
    """The final scores on one env, an x position each: every method's seeds (dots) and their mean with its 95% CI
    (a bar); the random policy we measured (its games); the published agents' means (black diamonds)."""
    cells = [cell for cell in report.cells if cell.env == env]
    labels = []
    for cell in cells:
        plot_final(axes, len(labels), cell.scores, cell.estimate, colors[cell.method])
        labels.append(cell.method)
    env_id = cells[0].env_id if cells else env
    if env_id in report.random_policies:
        policy = report.random_policies[env_id]
        plot_final(axes, len(labels), policy.scores, policy.estimate, "grey")
        labels.append("random policy (ours)")
    published = report.published.games.get(atari_game(env_id)) if cells and cells[0].normalized else None
    for agent, score in (published.scores if published else {}).items():
        axes.plot(len(labels), score, "D", color="black")
        labels.append(f"{agent} (published)")
    axes.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
    axes.set_xlim(-0.5, len(labels) - 0.5)  # a position's dots and bar stay beside each other, even for one position
    axes.set(title=f"{env}: final scores", ylabel=axis_label(cells[0].tag) if cells else "")


def plot_final(axes, x: int, samples: np.ndarray, estimate: Estimate, color: str):
    """Each sample as a dot at `x`, and beside it their mean with its 95% CI as an error bar."""
    axes.plot(np.full(len(samples), x - 0.1), samples, "o", color=color, alpha=0.4, markersize=4)
    error = None if estimate.low is None else [[estimate.value - estimate.low], [estimate.high - estimate.value]]
    axes.errorbar(x + 0.1, estimate.value, yerr=error, fmt="s", color=color, capsize=4)


def overestimation_figure(runs: list[RunData]) -> Figure | None:
    """One panel per env that logs the value estimates: each method's eval/q_estimate (solid) and
    eval/discounted_return (dashed) against global_step (see plot_seeds). None if no run logs them."""
    groups = {env: {method: logged for method, group in methods.items()
                    if (logged := [run for run in group if logs_value_estimates(run)])}
              for env, methods in by_env_and_method(runs).items()}
    groups = {env: methods for env, methods in groups.items() if methods}
    if not groups:
        return None
    figure = Figure(figsize=(6 * len(groups), 5.5), layout="constrained")
    for axes, (env, methods) in zip(figure.subplots(1, len(groups), squeeze=False)[0], groups.items()):
        runs_here = [run for group in methods.values() for run in group]
        if all(len(run.scalars[tag][0]) == 1 for run in runs_here for tag in OVERESTIMATION_TAGS):
            final_values_panel(axes, env, methods, method_colors(runs))  # one evaluation per run: no curve to draw
            continue
        for method, group in sorted(methods.items()):
            color = method_colors(runs)[method]
            plot_seeds(axes, [run.scalars["eval/q_estimate"] for run in group], f"{method}: Q estimate", color,
                       linestyle="-")
            plot_seeds(axes, [run.scalars["eval/discounted_return"] for run in group],
                       f"{method}: discounted return", color, linestyle="--")
        axes.set(title=env, xlabel="global step", ylabel="value: discounted return of clipped rewards")
        legend_below(axes)
    return figure


def final_values_panel(axes, env: str, methods: dict[str, list[RunData]], colors: dict[str, str]):
    """Runs with one evaluation each: per method, its Q estimate beside the discounted return that followed, each
    as the seeds' dots and their mean with a 95% CI (plot_final)."""
    labels = []
    for method, group in sorted(methods.items()):
        for tag, what in zip(OVERESTIMATION_TAGS, ("Q estimate", "discounted return")):
            samples = np.array([run.scalars[tag][1][-1] for run in group])
            plot_final(axes, len(labels), samples, mean_estimate(samples), colors[method])
            labels.append(f"{method}:\n{what}")
    axes.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
    axes.set_xlim(-0.5, len(labels) - 0.5)
    axes.set(title=f"{env}: at the final evaluation", ylabel="value: discounted return of clipped rewards")


def logs_value_estimates(run: RunData) -> bool:
    return all(tag in run.scalars for tag in OVERESTIMATION_TAGS)


def plot_seeds(axes, curves: list[tuple[np.ndarray, np.ndarray]], name: str, color: str, linestyle: str):
    """The seeds' curves (steps, values) of one method, labelled with what they show: one seed as its points; the
    mean over seeds (see mean_curve) as a thick line without markers (its steps are no seed's own), with each seed's
    points at their own steps as thin lines below SEED_LINES_BELOW seeds, or else the 95% bootstrap band."""
    marker = "." if max(len(steps) for steps, _ in curves) < 50 else None  # a curve of one point shows too
    if len(curves) == 1:
        axes.plot(*curves[0], label=f"{name}, 1 seed", color=color, linestyle=linestyle, marker=marker)
        return
    steps, mean, low, high = mean_curve(curves)
    if len(curves) < SEED_LINES_BELOW:
        for seed_steps, values in curves:
            axes.plot(seed_steps, values, color=color, linestyle=linestyle, marker=marker, linewidth=0.8, alpha=0.5)
        spread = "thin: each seed"
    else:
        axes.fill_between(steps, low, high, color=color, alpha=0.2)
        spread = "band: 95% bootstrap CI"
    axes.plot(steps, mean, label=f"{name}, mean of {len(curves)} seeds ({spread})", color=color,
              linestyle=linestyle, linewidth=2, marker="." if len(steps) == 1 else None)  # one step shows too


def axis_label(tag: str) -> str:
    """What a tag measures, then the tag itself (how TensorBoard names it)."""
    return f"{AXIS_LABELS[tag]}\n[{tag}]" if tag in AXIS_LABELS else tag


def legend_below(axes):
    """The legend under the axes' x label, centred, where it covers no data."""
    below = offset_copy(axes.transAxes, fig=axes.figure, y=-LEGEND_DROP, units="points")
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, 0), bbox_transform=below, fontsize="small")


def method_colors(runs: list[RunData]) -> dict[str, str]:
    """One colour per method, the same in every panel and figure."""
    return {method: f"C{index}" for index, method in enumerate(sorted({run.method for run in runs}))}


# ---- report.md ---------------------------------------------------------------------------------------------------
def markdown(report: Report) -> str:
    """The report's text: what it read, the scripts' commits, final scores, the published agents beside ours,
    aggregates, improvement probabilities, unfinished runs, notes."""
    lines = (header_lines(report) + commit_lines(report) + final_score_lines(report) + literature_lines(report)
             + aggregate_lines(report) + probability_lines(report) + unfinished_lines(report)
             + ["", "## Notes", ""] + [f"- {note}" for note in report.notes or ["None."]])
    return "\n".join(lines) + "\n"


def header_lines(report: Report) -> list[str]:
    """The title (RUNS_DIR as given, if relative: an absolute path is this machine's) and how scores are made."""
    where = "" if report.runs_dir.is_absolute() else f": `{report.runs_dir.as_posix()}`"
    text = (f"{len(report.runs)} run folders. Final score = the last evaluation of a run. 95% CIs: percentile "
            f"bootstrap over seeds ({BOOTSTRAP_REPS:,} resamples); aggregates: rliable's stratified bootstrap.")
    if any(1 < len(cell.seeds) < SEED_LINES_BELOW for cell in report.cells):
        text += (" With 2 or 3 seeds such a CI is the lowest and highest seed's score (one seed resampled alone is "
                 "over 2.5% of the resamples): read it as their range.")
    if any(cell.normalized for cell in report.cells):
        text += (" Human-normalized = (score − random) / (human − random), with the random and human scores of "
                 f"`{display_path(PUBLISHED)}` for every game (its sources are named in it).")
    return [f"# Benchmark report{where}", "", text]


def commit_lines(report: Report) -> list[str]:
    """Per script: the file that ran and each git commit it ran at, with the finished runs of that commit."""
    pooled = {}
    for run in report.runs:
        if run.finished:
            pooled.setdefault((run.method, run.flags.get("script", "unknown"), run.commit), []).append(run)
    lines = ["", "## Scripts and commits", "", "| script | file | commit | finished runs |", "|-|-|-|-|"]
    for (method, file, commit), runs in sorted(pooled.items()):
        seeds = {}
        for run in runs:
            seeds.setdefault(run.env, []).append(str(run.seed))
        where = "; ".join(f"{env} seeds {', '.join(env_seeds)}" for env, env_seeds in seeds.items())
        lines.append(f"| {method} | {file} | {commit} | {len(runs)}: {where} |")
    lines += [f"| random policy | benchmarks/random_policy.py | {policy.commit} | {env_id}: {len(policy.scores)} "
              f"games |" for env_id, policy in report.random_policies.items()]
    methods = [method for method, _, _ in pooled]
    for method in sorted(set(methods)):
        if methods.count(method) > 1:
            lines += ["", f"{method}: runs of {methods.count(method)} commits are pooled."]
    return lines


def final_score_lines(report: Report) -> list[str]:
    """The final score per env × method; human-normalized where the report has Atari games to normalize."""
    atari = any(cell.normalized for cell in report.cells)
    lines = ["", "## Final scores", "", "| env | script | tag | mean [95% CI] | seeds |"
             + (" human-normalized mean [95% CI] |" if atari else ""), "|-|-|-|-|-|" + ("-|" if atari else "")]
    unfinished = [run for run in report.runs if not run.finished]
    for cell in report.cells:
        missing = [run.seed for run in unfinished if (run.env, run.method) == (cell.env, cell.method)]
        seeds = f"{len(cell.seeds)} ({', '.join(map(str, cell.seeds))})" + (
            f"; not finished: {', '.join(map(str, missing))}" if missing else "")
        lines.append(f"| {cell.env} | {cell.method} | {cell.tag} | {cell.estimate} | {seeds} |"
                     + (f" {cell.normalized or '–'} |" if atari else ""))
    return lines


def literature_lines(report: Report) -> list[str]:
    """Per Atari game of the published file: each of our methods, the random policy we measured and the published
    agents, as scores and human-normalized."""
    envs = list(dict.fromkeys(cell.env for cell in report.cells if cell.normalized))
    if not envs:
        return []
    flags = {run.method: run.flags for run in report.runs}
    lines = ["", "## Ours beside the published Atari 100k agents", "",
             f"Published: each agent's mean final score over its runs on Atari 100k ({ATARI_100K_STEPS:,} agent "
             f"steps per game), from `{display_path(PUBLISHED)}`, which names its sources and their protocol; sd: the "
             "standard deviation over the agent's runs, where the file gives it. Ours: the mean over seeds of each "
             "run's last evaluation. The random policy: ours, benchmarks/random_policy.py (full games with uniformly "
             "random actions through the scripts' evaluation pipeline).", "",
             "Random and human scores (normalized: 0 and 1): " + "; ".join(
                 f"{env} {game.random:g} and {game.human:g}"
                 for env in envs if (game := report.published.games[atari_game(env)])) + ".", "",
             "| game | agent | score: mean [95% CI] | runs | human-normalized |", "|-|-|-|-|-|"]
    for env in envs:
        for cell in (cell for cell in report.cells if cell.env == env):
            evaluation = (f"{flags[cell.method].get('eval_episodes', '?')} games at ε "
                          f"{flags[cell.method].get('eval_epsilon', '?')} each")
            lines.append(f"| {env} | {cell.method} (ours) | {cell.estimate} | {len(cell.seeds)} seeds, "
                         f"{evaluation} | {cell.normalized} |")
        env_id = next(cell.env_id for cell in report.cells if cell.env == env)
        if env_id in report.random_policies:
            policy = report.random_policies[env_id]
            lines.append(f"| {env} | random policy (ours) | {policy.estimate} | {len(policy.scores)} games | "
                         f"{policy.normalized} |")
        game = report.published.games[atari_game(env_id)]
        for agent, score in game.scores.items():
            sd = f" (sd {game.sds[agent]:.1f})" if agent in game.sds else ""
            lines.append(f"| {env} | {agent} (published) | {score:.1f}{sd} | published | "
                         f"{human_normalized(report.published, env_id, score):.3f} |")
    return lines


def aggregate_lines(report: Report) -> list[str]:
    """Per kind of normalized score: each method's IQM and mean over games; for Atari, the published agents' on the
    same games (from their per-game means) and over all their games."""
    lines = ["", "## Aggregates over games", ""]
    if not report.matrices:
        lines.append("None: no run's score can be normalized.")
    for kind, scripts in report.matrices.items():
        estimates = report.summary[kind]
        lines += [f"**{kind}**", "", "| script | games | seeds | IQM [95% CI] | mean [95% CI] |", "|-|-|-|-|-|"]
        lines += [f"| {script} | {', '.join(games)} | {', '.join(map(str, seeds))} | {estimates['IQM'][script]} | "
                  f"{estimates['mean'][script]} |" for script, (games, seeds, _) in scripts.items()]
        if kind == ATARI:
            lines += published_aggregate_lines(report)
        lines.append("")
    return lines


def published_aggregate_lines(report: Report) -> list[str]:
    """The published agents' rows of the Atari aggregate table, what they are, and their aggregates over all the
    Atari 100k games."""
    lines = [f"| {agent} (published) | {', '.join(games)} | its per-game means | {values['IQM']:.3f} | "
             f"{values['mean']:.3f} |" for games, agents in report.published_summary.items()
             for agent, values in agents.items()]
    if not lines:
        return []
    trimmed = {len(games): int(0.25 * len(games)) for games in report.published_summary}
    lines += ["", "Published rows: the IQM and the mean over the same games of each agent's human-normalized "
              "per-game means. The agents' runs are not in the file, so there is no CI, and this IQM is not the "
              "paper's, which pools every run. The IQM (rliable: scipy's trim_mean, 25% cut at each end) of " +
              ", of ".join(f"{games} per-game means drops {cut or 'none'} at each end" + (": it is their mean" if not
                           cut else "") for games, cut in trimmed.items())
              + "; ours drops a quarter of the seeds × games scores at each end."]
    if report.published.all_games:
        statistics = list(report.published.all_games)
        lines += ["", "Over all the Atari 100k games (the file's aggregates, every run pooled; not the games above):",
                  "", "| agent | " + " | ".join(statistics) + " |", "|-|" + "-|" * len(statistics)]
        lines += [f"| {agent} | " + " | ".join(f"{report.published.all_games[statistic].get(agent, float('nan')):.3f}"
                                               for statistic in statistics) + " |"
                  for agent in report.published.agents]
    return lines


def probability_lines(report: Report) -> list[str]:
    """P(X > Y) for each pair of scripts that ran the same games."""
    lines = ["", "## Probability of improvement", ""]
    if not report.probabilities:
        lines.append("Needs two scripts that ran the same games.")
    for kind, pairs in report.probabilities.items():
        lines += [f"**{kind}**", "", "| X | Y | P(X > Y) [95% CI] |", "|-|-|-|"]
        lines += [f"| {x} | {y} | {estimate} |" for (x, y), estimate in pairs.items()]
        lines.append("")
    return lines


def unfinished_lines(report: Report) -> list[str]:
    """Each run without the sweep's done marker, and the step it reached."""
    unfinished = [run for run in report.runs if not run.finished]
    return ["", "## Runs not finished", ""] + ([
        f"- `{run.folder.name}` (no {DONE_MARKER}): reached step "
        f"{max((int(steps[-1]) for steps, _ in run.scalars.values() if len(steps)), default=0):,}; "
        "left out of the scores and curves" for run in unfinished] or ["None."])


def display_path(path: Path) -> str:
    """A file of the repository as report.md names it: relative to the repository's root."""
    return path.relative_to(ROOT).as_posix()


# ---- Building and saving the report ------------------------------------------------------------------------------
def build_report(runs_dir: Path) -> Report:
    """Read the runs, the published scores and the random policy, and compute every number of the report."""
    notes = []
    runs = load_runs(runs_dir, notes)
    if not runs and any(runs_dir.glob("events.out.tfevents.*")):
        fail(f"{runs_dir}: no run folders, but event files in it: give the folder that holds the run folders (its "
             "parent, if it is one run's folder)")
    if not runs:
        fail(f"{runs_dir}: no run folders (folders directly under it whose TensorBoard event files hold the scripts' "
             "hyperparameters table)")
    published = read_published(PUBLISHED)
    random_policies = load_random_policies(runs_dir, published)
    cells = final_scores(runs, published, notes)
    matrices = normalized_matrices(cells)
    notes += protocol_notes(runs, cells) + overestimation_notes(runs)
    return Report(runs_dir, runs, cells, published, random_policies, matrices, aggregates(matrices),
                  published_aggregates(matrices, published), improvement_probabilities(matrices), notes)


def save_report(report: Report, out: Path) -> list[Path]:
    """Write report.png, overestimation.png (if some run logs the value estimates) and report.md into `out`;
    returns the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    figures = {"report.png": report_figure(report), "overestimation.png": overestimation_figure(report.runs)}
    for name, figure in figures.items():
        if figure is not None:
            figure.savefig(out / name, dpi=100)
    (out / "report.md").write_text(markdown(report))
    return [out / name for name, figure in figures.items() if figure is not None] + [out / "report.md"]


def protocol_notes(runs: list[RunData], cells: list[FinalScore]) -> list[str]:
    """One note per method with Atari scores that did not train the 100,000 agent steps of the published agents."""
    atari = {cell.method for cell in cells if cell.normalized}
    steps = {run.method: run.flags.get("total_timesteps", "?") for run in runs if run.method in atari}
    return [f"{method} trained total_timesteps={value} agent steps, not Atari 100k's {ATARI_100K_STEPS:,}: the "
            "published agents beside it ran another protocol" for method, value in sorted(steps.items())
            if value != str(ATARI_100K_STEPS)]


def overestimation_notes(runs: list[RunData]) -> list[str]:
    """One note per env × method whose finished runs do not log both value-estimate tags, when overestimation.png
    is written (some run logs them)."""
    if not any(logs_value_estimates(run) for run in runs if run.finished):
        return []
    return [f"{env}, {method}: no {' and '.join(OVERESTIMATION_TAGS)}; not in overestimation.png"
            for env, methods in by_env_and_method(runs).items() for method, group in methods.items()
            if not any(logs_value_estimates(run) for run in group)]


def check_paths(runs_dir: Path, out: Path) -> None:
    """One error line, before anything is read or written, for a RUNS_DIR that is not a folder or an --out that
    cannot become one."""
    if not runs_dir.exists():
        fail(f"{runs_dir}: no such folder")
    if not runs_dir.is_dir():
        fail(f"{runs_dir}: not a folder")
    existing = next(path for path in (out, *out.parents) if path.exists())  # what mkdir would start from
    if not existing.is_dir():
        fail(f"--out {out}: {existing} is a file, not a folder")


class OneLineParser(argparse.ArgumentParser):
    """argparse, with one `error:` line for a bad command line instead of the usage and a line."""

    def error(self, message: str):
        fail(message)


def fail(message: str, status: int = 2):
    """Stop with one line on stderr, never a traceback: exit status 2 for bad input, 1 for a fault (a file that
    cannot be read or written), 130 for Ctrl-C."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(status)


def main(argv: list[str]):
    parser = OneLineParser(
        description=__doc__.split("\n\n")[0],
        epilog="Example: python benchmarks/report.py benchmarks/results/atari100k --out benchmarks/results/atari100k. "
               "Writes report.md, report.png and, when some run logs the value estimates, overestimation.png. Atari "
               "scores are human-normalized with the random and human scores of benchmarks/atari100k_published.csv "
               "and shown beside the published Atari 100k agents of that file and the random policy of "
               "RUNS_DIR/random_policy/ (benchmarks/random_policy.py writes it). Runs are pooled over seeds only "
               "when their env id, script and flags agree (all flags but the seed and the bookkeeping ones: where a "
               "run is written, when it logs, on which device it runs, and the git commit, which report.md lists); a "
               "flag that differs is added to the env's or the script's name. One seed twice with the same flags is "
               "refused. Exit status: 0 when the report is written, 2 for bad input, 1 for a file that cannot be "
               "read or written, 130 for Ctrl-C.")
    parser.add_argument("runs_dir", type=Path, metavar="RUNS_DIR",
                        help="the folder that holds the run folders (the sweep's --results-dir or --runs-dir); a "
                             "folder in it whose event files hold no hyperparameters table is left out with a "
                             "warning. report.md names it only when it is given as a relative path")
    parser.add_argument("--out", type=Path, help="the folder the report goes into (made if missing); unset: "
                                                 "RUNS_DIR/report")
    args = parser.parse_args(argv)
    out = args.out or args.runs_dir / "report"
    check_paths(args.runs_dir, out)
    try:
        report = build_report(args.runs_dir)
    except KeyboardInterrupt:
        fail("interrupted (Ctrl-C) while reading the runs; nothing written", status=130)
    try:
        paths = save_report(report, out)
    except KeyboardInterrupt:
        fail(f"interrupted (Ctrl-C) while writing the report: {out} holds a part of it", status=130)
    except OSError as error:  # a read-only folder, a full disk: the cause in one line
        fail(f"cannot write the report into {out}: {error}", status=1)
    for path in paths:
        print(f"wrote {path}")


if __name__ == "__main__":
    main(sys.argv[1:])
