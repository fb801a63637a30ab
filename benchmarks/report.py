"""Report of a benchmark sweep, from its TensorBoard logs, offline: learning curves with confidence bands, final
scores with confidence intervals, human-normalized aggregates, and the overestimation figure of Double DQN.

    python benchmarks/report.py bench_runs --out bench_runs/report

reads every run folder directly under `bench_runs` (e.g. the sweep's) and writes:

- `report.png`: per env a panel, `eval/episodic_return` (tabular runs: `eval/value_ratio`) against global_step,
  the mean over seeds with a 95% bootstrap confidence band, one colour per script.
- `report.md`: the final score (the last evaluation) per script × env: mean over seeds, 95% CI, the seeds; for
  Atari games also human-normalized, (score − random) / (human − random); the interquartile mean (IQM) and the
  mean over games with 95% stratified-bootstrap CIs, and the probability that one script improves on the other
  (rliable, Agarwal et al. 2021, "Deep RL at the edge of the statistical precipice"); runs not finished; notes
  on missing tags.
- `overestimation.png`: per env, each script's value estimate `eval/q_estimate` (solid) and the discounted return
  it actually obtained `eval/discounted_return` (dashed) against global_step: van Hasselt et al. (2016),
  Figure 3. Written only when some run logs them.

Which runs are pooled. A run is a folder whose event files hold the `hyperparameters` text table the scripts write
as they start (`|flag|value|`, every flag). Its seed is pooled with the seeds of the runs whose tables agree on
everything that changes what is learned or what the score measures: the env id, the script (exp_name) and every
flag but the seed and BOOKKEEPING (where a run is written, when it logs, on which device it runs). Each group is named
by its env id and script, followed by the flags that tell it apart from the other runs of that env id or script:
`FrozenLake-v1 (map_size=2)` beside `FrozenLake-v1 (map_size=0)` for two maps (the map flags, GAME_FLAGS, name the
env, and the aggregates over envs count each map as one env), `dqn_atari (learning_rate=0.001)` beside
`dqn_atari (learning_rate=0.0001)`; a flag missing from a run's table reads `?`. Two finished runs of one seed in one
group are refused: a seed counted twice would make the CI too narrow.

In a folder the sweep wrote (it has `sweep_logs/`, or some run has `sweep_done.json`), a run without that marker is
not finished: it is listed with the step it reached and left out of the scores and curves. Every CI is a percentile
bootstrap with 2,000 resamples and a fixed seed, so a report is reproducible; a score, aggregate or probability that
rests on one seed shows no CI (a bootstrap over one seed measures no spread).

A folder with event files but no table naming env_id, exp_name and an integer seed (an ordinary TensorBoard log
kept beside the runs) is left out with one `warning:` line and a note. Anything else that stops the report is one
`error:` line: exit status 2 for bad input (RUNS_DIR missing or a run's own folder, --out naming a file, a damaged
event file, a seed counted twice), 1 for a fault (a file that cannot be read or written), 130 for Ctrl-C.
"""

import argparse
import itertools
import re
import struct
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from rliable import library as rly
from rliable import metrics
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c  # the one TensorBoard writes with

# Per-game episodic return (raw game score, all lives) of a human tester and of a uniformly random policy:
# Mnih et al. (2015), "Human-level control through deep reinforcement learning", Nature 518, Extended Data Table 2,
# as gathered in the project's ../shared/REFERENCE.md, section 3.
HUMAN_RANDOM = {
    "Breakout": (30.5, 1.7),
    "Pong": (14.6, -20.7),
    "BeamRider": (16926.5, 363.9),
    "SpaceInvaders": (1668.7, 148.0),
    "Seaquest": (42054.7, 68.4),
}
SCORE_TAGS = ("eval/episodic_return", "eval/value_ratio")  # the first one a run has is its score (DQN, tabular)
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
# The tabular script's FrozenLake flags: with the env id they make the env a run plays (its map and ice), so they
# name the env, and the aggregates over envs count each map as one env. Other envs ignore them.
GAME_FLAGS = {"map_name", "map_size", "map_p", "map_seed", "is_slippery"}
IDENTITY = ("env_id", "exp_name", "seed")  # the rows a table must have to be a run of these scripts


@dataclass
class RunData:
    """One run folder: who it is, whether it finished, and its scalars (tag -> (steps, values))."""

    folder: Path
    env_id: str
    script: str
    seed: int
    flags: dict[str, str]  # the rest of its hyperparameters table, less BOOKKEEPING: flag -> value as logged
    finished: bool
    scalars: dict[str, tuple[np.ndarray, np.ndarray]]
    env: str = ""  # the env id and the GAME_FLAGS that differ between runs of it (see name_runs)
    method: str = ""  # the script and the other flags that differ between runs of it (see name_runs)


class NotARun(Exception):
    """A folder with event files that is not a run of these scripts; the message says why."""


@dataclass
class Estimate:
    """A point estimate with its 95% confidence interval; None for both ends when it rests on one seed (a
    bootstrap over one seed measures no spread)."""

    value: float
    low: float | None
    high: float | None

    def __str__(self) -> str:
        if self.low is None:
            return f"{self.value:.3f} (one seed: no CI)"
        return f"{self.value:.3f} [{self.low:.3f}, {self.high:.3f}]"


@dataclass
class FinalScore:
    """The final scores of one method on one env over its finished seeds."""

    env_id: str  # for the human and random scores
    env: str  # RunData.env: the env id and the map flags that tell it apart
    method: str  # RunData.method: the script and the flags that tell it apart
    tag: str
    seeds: list[int]
    scores: np.ndarray  # one per seed, in the order of `seeds`
    estimate: Estimate  # the mean over seeds
    normalized: Estimate | None  # human-normalized (Atari games in HUMAN_RANDOM), else None


@dataclass
class Report:
    """Everything the report shows, computed once from a runs folder."""

    runs_dir: Path
    runs: list[RunData]
    cells: list[FinalScore]
    matrices: dict  # see normalized_matrices
    summary: dict  # see aggregates
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


def human_normalized(env_id: str, score: float) -> float | None:
    """(score − random) / (human − random) for an Atari game in HUMAN_RANDOM; None for any other env."""
    game = atari_game(env_id)
    if game not in HUMAN_RANDOM:
        return None
    human, random = HUMAN_RANDOM[game]
    return (score - random) / (human - random)


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
        estimates[key] = Estimate(float(np.squeeze(points[key])), low, high)
    return estimates


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
    flags = {flag: value for flag, value in table.items() if flag not in IDENTITY and flag not in BOOKKEEPING}
    scalars = {tag: (np.array([point.step for point in events.Scalars(tag)]),
                     np.array([point.value for point in events.Scalars(tag)]))
               for tag in events.Tags()["scalars"]}
    return RunData(folder, table["env_id"], table["exp_name"], int(table["seed"]), flags, finished, scalars)


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
    """Give each run its `env` and `method`: the env id and the script, each followed by the flags whose values
    differ between the runs of that env id (GAME_FLAGS: the map and ice) or of that script (the other flags). Two
    runs share both names only if they played the same env with the same flags, so only then are they pooled."""
    for run in runs:
        same_env = [other for other in runs if other.env_id == run.env_id]
        same_script = [other for other in runs if other.script == run.script]
        run.env = with_differing_flags(run.env_id, run, same_env, game=True)
        run.method = with_differing_flags(run.script, run, same_script, game=False)


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


def mean_curve(runs: list[RunData], tag: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(steps, mean, CI low, CI high) of `tag` over the runs. Runs that evaluated at different steps (the tabular
    script evaluates every N episodes, a varying number of steps) are interpolated linearly onto every step any
    of them logged, within the steps all of them cover."""
    first, last = max(run.scalars[tag][0][0] for run in runs), min(run.scalars[tag][0][-1] for run in runs)
    steps = np.unique(np.concatenate([run.scalars[tag][0] for run in runs]))
    steps = steps[(steps >= first) & (steps <= last)]
    values = np.array([np.interp(steps, *run.scalars[tag]) for run in runs])
    low, high = bootstrap_ci(values)
    return steps, values.mean(axis=0), low, high


# ---- The table and the aggregates --------------------------------------------------------------------------------
def final_scores(runs: list[RunData], notes: list[str]) -> list[FinalScore]:
    """The last evaluation of each finished run, summarized per env × method; runs lacking the tag are noted."""
    cells = []
    for env, methods in by_env_and_method(runs).items():
        tag = score_tag([run for group in methods.values() for run in group])
        for method, group in methods.items():
            env_id = group[0].env_id
            scored = [run for run in group if tag in run.scalars]
            notes.extend(f"{run.folder.name}: no {tag or ' or '.join(SCORE_TAGS)}; left out of the scores"
                         for run in group if run not in scored)
            if not scored:
                continue
            scores = np.array([run.scalars[tag][1][-1] for run in scored])
            low, high = (float(bound) for bound in bootstrap_ci(scores)) if len(scores) > 1 else (None, None)
            estimate = Estimate(float(scores.mean()), low, high)
            normalized = (Estimate(*(value if value is None else human_normalized(env_id, value)
                                     for value in (estimate.value, low, high)))
                          if tag == "eval/episodic_return" and human_normalized(env_id, 0.0) is not None else None)
            cells.append(FinalScore(env_id, env, method, tag, [run.seed for run in scored], scores, estimate,
                                    normalized))
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
    score = float(cell.scores[cell.seeds.index(seed)])
    return human_normalized(cell.env_id, score) if cell_kind(cell) == ATARI else score


def aggregates(matrices: dict) -> dict[str, dict[str, dict[str, Estimate]]]:
    """Per kind and script: the IQM and the mean over runs and games, with stratified-bootstrap CIs."""
    return {kind: {"IQM": rliable_estimates({script: matrix for script, (_, _, matrix) in scripts.items()},
                                            metrics.aggregate_iqm),
                   "mean": rliable_estimates({script: matrix for script, (_, _, matrix) in scripts.items()},
                                             metrics.aggregate_mean)}
            for kind, scripts in matrices.items()}


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
def curves_figure(runs: list[RunData]) -> Figure:
    """One panel per env: the score tag against global_step, mean over seeds and 95% band, a colour per method."""
    groups = {env: methods for env, methods in by_env_and_method(runs).items()
              if score_tag([run for group in methods.values() for run in group])}
    figure = Figure(figsize=(6 * max(1, len(groups)), 4.5), layout="constrained")
    for axes, (env, methods) in zip(figure.subplots(1, max(1, len(groups)), squeeze=False)[0], groups.items()):
        tag = score_tag([run for group in methods.values() for run in group])
        for method, group in sorted(methods.items()):
            scored = [run for run in group if tag in run.scalars]
            if scored:
                label = f"{method} ({len(scored)} seed{'s' if len(scored) > 1 else ''})"
                plot_mean(axes, scored, tag, label, color=method_colors(runs)[method], linestyle="-")
        axes.set(title=env, xlabel="global step", ylabel=tag)
        axes.legend()
    return figure


def overestimation_figure(runs: list[RunData]) -> Figure | None:
    """One panel per env that logs the value estimates: each method's eval/q_estimate (solid) and
    eval/discounted_return (dashed) against global_step, mean over seeds and 95% band. None if no run logs them."""
    groups = {env: {method: logged for method, group in methods.items()
                    if (logged := [run for run in group if all(tag in run.scalars for tag in OVERESTIMATION_TAGS)])}
              for env, methods in by_env_and_method(runs).items()}
    groups = {env: methods for env, methods in groups.items() if methods}
    if not groups:
        return None
    figure = Figure(figsize=(6 * len(groups), 4.5), layout="constrained")
    for axes, (env, methods) in zip(figure.subplots(1, len(groups), squeeze=False)[0], groups.items()):
        for method, group in sorted(methods.items()):
            color = method_colors(runs)[method]
            plot_mean(axes, group, "eval/q_estimate", f"{method}: Q estimate", color=color, linestyle="-")
            plot_mean(axes, group, "eval/discounted_return", f"{method}: discounted return", color=color,
                      linestyle="--")
        axes.set(title=env, xlabel="global step", ylabel="value (mean over seeds)")
        axes.legend()
    return figure


def plot_mean(axes, runs: list[RunData], tag: str, label: str, **line_style):
    """The mean of `tag` over the runs as a line, and its 95% bootstrap band."""
    steps, mean, low, high = mean_curve(runs, tag)
    axes.plot(steps, mean, label=label, marker=".", **line_style)  # a marker per evaluation: one is visible too
    axes.fill_between(steps, low, high, color=line_style["color"], alpha=0.2)


def method_colors(runs: list[RunData]) -> dict[str, str]:
    """One colour per method, the same in every panel and figure."""
    return {method: f"C{index}" for index, method in enumerate(sorted({run.method for run in runs}))}


# ---- report.md ---------------------------------------------------------------------------------------------------
def markdown(report: Report) -> str:
    """The report's text: final scores, aggregates, improvement probabilities, unfinished runs, notes."""
    lines = [f"# Benchmark report: `{report.runs_dir}`", "",
             f"{len(report.runs)} run folders. Final score = the last evaluation of a run. 95% CIs: percentile "
             f"bootstrap over seeds ({BOOTSTRAP_REPS:,} resamples); aggregates: rliable's stratified bootstrap. "
             "Human-normalized = (score − random) / (human − random), human and random scores of Mnih et al. "
             "(2015), Extended Data Table 2.", "", "## Final scores", "",
             "| env | script | tag | mean [95% CI] | seeds | human-normalized mean [95% CI] |", "|-|-|-|-|-|-|"]
    unfinished = [run for run in report.runs if not run.finished]
    for cell in report.cells:
        missing = [run.seed for run in unfinished if (run.env, run.method) == (cell.env, cell.method)]
        seeds = f"{len(cell.seeds)} ({', '.join(map(str, cell.seeds))})" + (
            f"; not finished: {', '.join(map(str, missing))}" if missing else "")
        lines.append(f"| {cell.env} | {cell.method} | {cell.tag} | {cell.estimate} | {seeds} | "
                     f"{cell.normalized or '–'} |")
    lines += ["", "## Aggregates over games", ""]
    if not report.matrices:
        lines.append("No normalized scores (no Atari game with human and random scores, no tabular value ratio).")
    for kind, scripts in report.matrices.items():
        estimates = report.summary[kind]
        lines += [f"**{kind}**", "", "| script | games | seeds | IQM [95% CI] | mean [95% CI] |", "|-|-|-|-|-|"]
        lines += [f"| {script} | {', '.join(games)} | {', '.join(map(str, seeds))} | {estimates['IQM'][script]} | "
                  f"{estimates['mean'][script]} |" for script, (games, seeds, _) in scripts.items()]
        lines.append("")
    lines += ["## Probability of improvement", ""]
    if not report.probabilities:
        lines.append("Needs two scripts that ran the same games.")
    for kind, pairs in report.probabilities.items():
        lines += [f"**{kind}**", "", "| X | Y | P(X > Y) [95% CI] |", "|-|-|-|"]
        lines += [f"| {x} | {y} | {estimate} |" for (x, y), estimate in pairs.items()]
        lines.append("")
    lines += ["", "## Runs not finished", ""]
    lines += [f"- `{run.folder.name}` (no {DONE_MARKER}): reached step "
              f"{max((int(steps[-1]) for steps, _ in run.scalars.values() if len(steps)), default=0):,}; "
              "left out of the scores and curves" for run in unfinished] or ["None."]
    lines += ["", "## Notes", ""] + [f"- {note}" for note in report.notes or ["None."]]
    return "\n".join(lines) + "\n"


def build_report(runs_dir: Path) -> Report:
    """Read the runs and compute every number of the report."""
    notes = []
    runs = load_runs(runs_dir, notes)
    if not runs and any(runs_dir.glob("events.out.tfevents.*")):
        fail(f"{runs_dir}: no run folders, but event files in it: give the folder that holds the run folders (its "
             "parent, if it is one run's folder)")
    if not runs:
        fail(f"{runs_dir}: no run folders (folders directly under it whose TensorBoard event files hold the scripts' "
             "hyperparameters table)")
    cells = final_scores(runs, notes)
    matrices = normalized_matrices(cells)
    notes += overestimation_notes(runs)
    return Report(runs_dir, runs, cells, matrices, aggregates(matrices), improvement_probabilities(matrices), notes)


def save_report(report: Report, out: Path) -> list[Path]:
    """Write report.png, overestimation.png (if some run logs the value estimates) and report.md into `out`;
    returns the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    figures = {"report.png": curves_figure(report.runs), "overestimation.png": overestimation_figure(report.runs)}
    for name, figure in figures.items():
        if figure is not None:
            figure.savefig(out / name, dpi=100)
    (out / "report.md").write_text(markdown(report))
    return [out / name for name, figure in figures.items() if figure is not None] + [out / "report.md"]


def overestimation_notes(runs: list[RunData]) -> list[str]:
    """One note per env × method whose finished runs do not log both value-estimate tags."""
    return [f"{env}, {method}: no {' and '.join(OVERESTIMATION_TAGS)}; not in overestimation.png"
            for env, methods in by_env_and_method(runs).items() for method, group in methods.items()
            if not any(all(tag in run.scalars for tag in OVERESTIMATION_TAGS) for run in group)]


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


def fail(message: str, status: int = 2):
    """Stop with one line on stderr, never a traceback: exit status 2 for bad input, 1 for a fault (a file that
    cannot be read or written), 130 for Ctrl-C."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(status)


def main(argv: list[str]):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Runs are pooled over seeds only when their env id, script and flags agree (all flags but the seed and "
               "the bookkeeping ones: where a run is written, when it logs, on which device it runs); a flag that "
               "differs is added to the env's or the script's name. One seed twice with the same flags is refused. "
               "Exit status: 0, 2 for bad input, 1 for a file that cannot be read or written, 130 for Ctrl-C.")
    parser.add_argument("runs_dir", type=Path,
                        help="the folder that holds the run folders (e.g. the sweep's); a folder in it whose event "
                             "files hold no hyperparameters table is left out with a warning")
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
