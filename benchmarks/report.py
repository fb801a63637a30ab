"""Report of a benchmark sweep, from its TensorBoard logs, offline: learning curves with confidence bands, final
scores with confidence intervals, human-normalized aggregates, and the overestimation figure of Double DQN.

    python benchmarks/report.py bench_runs --out bench_runs/report

reads every run folder under `bench_runs` (any folder with TensorBoard event files, e.g. the sweep's) and writes:

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

A run is grouped by the env id, script (exp_name) and seed of its `hyperparameters` text (the folder name
`{env}__{script}__{seed}...` when there is none). In a folder the sweep wrote (it has `sweep_logs/`, or some run
has `sweep_done.json`), a run without that marker is not finished: it is listed with the step it reached and left
out of the scores and curves. Every CI is a percentile bootstrap with 2,000 resamples and a fixed seed, so a report
is reproducible; a score, aggregate or probability that rests on one seed shows no CI (a bootstrap over one seed
measures no spread).
"""

import argparse
import itertools
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from rliable import library as rly
from rliable import metrics
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

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


@dataclass
class RunData:
    """One run folder: who it is, whether it finished, and its scalars (tag -> (steps, values))."""

    folder: Path
    env_id: str
    script: str
    seed: int
    finished: bool
    scalars: dict[str, tuple[np.ndarray, np.ndarray]]


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
    """The final scores of one script on one env over its finished seeds."""

    env_id: str
    script: str
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
def load_runs(runs_dir: Path) -> list[RunData]:
    """Every folder directly under `runs_dir` that holds TensorBoard event files, sorted by env, script, seed."""
    folders = sorted({path.parent for path in runs_dir.glob("*/events.out.tfevents.*")})
    # the sweep writes sweep_logs/ as it starts a run and the marker when one ends: a sweep with no run ended yet
    written_by_sweep = (runs_dir / SWEEP_LOGS).is_dir() or any((folder / DONE_MARKER).exists() for folder in folders)
    runs = [load_run(folder, finished=(folder / DONE_MARKER).exists() or not written_by_sweep) for folder in folders]
    return sorted(runs, key=lambda run: (run.env_id, run.script, run.seed))


def load_run(folder: Path, finished: bool) -> RunData:
    """One run's scalars (TensorBoard drops the points a resumed run logged again) and its identity."""
    events = EventAccumulator(str(folder), size_guidance={"scalars": 0, "tensors": 0})
    events.Reload()
    scalars = {tag: (np.array([point.step for point in events.Scalars(tag)]),
                     np.array([point.value for point in events.Scalars(tag)]))
               for tag in events.Tags()["scalars"]}
    env_id, script, seed = run_identity(folder, events)
    return RunData(folder, env_id, script, seed, finished, scalars)


def run_identity(folder: Path, events: EventAccumulator) -> tuple[str, str, int]:
    """(env id, script, seed) from the run's `hyperparameters` table (`|env_id|...|` rows), else from its name."""
    if "hyperparameters/text_summary" in events.Tags()["tensors"]:
        text = events.Tensors("hyperparameters/text_summary")[0].tensor_proto.string_val[0].decode()
        table = dict(re.findall(r"^\|(\w+)\|(.*)\|$", text, flags=re.MULTILINE))
        return table["env_id"], table["exp_name"], int(table["seed"])
    env_id, script, seed = folder.name.split("__")[:3]
    return env_id, script, int(seed)


def score_tag(runs: list[RunData]) -> str | None:
    """The score tag of these runs: the first of SCORE_TAGS that one of them logs."""
    return next((tag for tag in SCORE_TAGS if any(tag in run.scalars for run in runs)), None)


def by_env_and_script(runs: list[RunData]) -> dict[str, dict[str, list[RunData]]]:
    """The finished runs, grouped by env id, then script."""
    groups = {}
    for run in runs:
        if run.finished:
            groups.setdefault(run.env_id, {}).setdefault(run.script, []).append(run)
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
    """The last evaluation of each finished run, summarized per env × script; runs lacking the tag are noted."""
    cells = []
    for env_id, scripts in by_env_and_script(runs).items():
        tag = score_tag([run for group in scripts.values() for run in group])
        for script, group in scripts.items():
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
            cells.append(FinalScore(env_id, script, tag, [run.seed for run in scored], scores, estimate, normalized))
    return cells


def normalized_matrices(cells: list[FinalScore]) -> dict[str, dict[str, tuple[list[str], list[int], np.ndarray]]]:
    """Per kind of score (Atari human-normalized, tabular V(π)/V*) and script: (games, seeds, seeds × games matrix)
    of the normalized final scores, over the seeds the script finished on every one of its games."""
    matrices = {}
    for kind in (ATARI, TABULAR):
        kind_cells = [cell for cell in cells if cell_kind(cell) == kind]
        for script in sorted({cell.script for cell in kind_cells}):
            script_cells = [cell for cell in kind_cells if cell.script == script]
            seeds = sorted(set.intersection(*(set(cell.seeds) for cell in script_cells)))
            if not seeds:  # no seed finished every game: nothing to aggregate
                continue
            matrix = np.array([[normalized_score(cell, seed) for cell in script_cells] for seed in seeds])
            matrices.setdefault(kind, {})[script] = ([cell.env_id for cell in script_cells], seeds, matrix)
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
    """One panel per env: the score tag against global_step, mean over seeds and 95% band, a colour per script."""
    groups = {env_id: scripts for env_id, scripts in by_env_and_script(runs).items()
              if score_tag([run for group in scripts.values() for run in group])}
    figure = Figure(figsize=(6 * max(1, len(groups)), 4.5), layout="constrained")
    for axes, (env_id, scripts) in zip(figure.subplots(1, max(1, len(groups)), squeeze=False)[0], groups.items()):
        tag = score_tag([run for group in scripts.values() for run in group])
        for script, group in sorted(scripts.items()):
            scored = [run for run in group if tag in run.scalars]
            if scored:
                label = f"{script} ({len(scored)} seed{'s' if len(scored) > 1 else ''})"
                plot_mean(axes, scored, tag, label, color=script_colors(runs)[script], linestyle="-")
        axes.set(title=env_id, xlabel="global step", ylabel=tag)
        axes.legend()
    return figure


def overestimation_figure(runs: list[RunData]) -> Figure | None:
    """One panel per env that logs the value estimates: each script's eval/q_estimate (solid) and
    eval/discounted_return (dashed) against global_step, mean over seeds and 95% band. None if no run logs them."""
    groups = {env_id: {script: logged for script, group in scripts.items()
                       if (logged := [run for run in group if all(tag in run.scalars for tag in OVERESTIMATION_TAGS)])}
              for env_id, scripts in by_env_and_script(runs).items()}
    groups = {env_id: scripts for env_id, scripts in groups.items() if scripts}
    if not groups:
        return None
    figure = Figure(figsize=(6 * len(groups), 4.5), layout="constrained")
    for axes, (env_id, scripts) in zip(figure.subplots(1, len(groups), squeeze=False)[0], groups.items()):
        for script, group in sorted(scripts.items()):
            color = script_colors(runs)[script]
            plot_mean(axes, group, "eval/q_estimate", f"{script}: Q estimate", color=color, linestyle="-")
            plot_mean(axes, group, "eval/discounted_return", f"{script}: discounted return", color=color,
                      linestyle="--")
        axes.set(title=env_id, xlabel="global step", ylabel="value (mean over seeds)")
        axes.legend()
    return figure


def plot_mean(axes, runs: list[RunData], tag: str, label: str, **line_style):
    """The mean of `tag` over the runs as a line, and its 95% bootstrap band."""
    steps, mean, low, high = mean_curve(runs, tag)
    axes.plot(steps, mean, label=label, marker=".", **line_style)  # a marker per evaluation: one is visible too
    axes.fill_between(steps, low, high, color=line_style["color"], alpha=0.2)


def script_colors(runs: list[RunData]) -> dict[str, str]:
    """One colour per script, the same in every panel and figure."""
    return {script: f"C{index}" for index, script in enumerate(sorted({run.script for run in runs}))}


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
        missing = [run.seed for run in unfinished if (run.env_id, run.script) == (cell.env_id, cell.script)]
        seeds = f"{len(cell.seeds)} ({', '.join(map(str, cell.seeds))})" + (
            f"; not finished: {', '.join(map(str, missing))}" if missing else "")
        lines.append(f"| {cell.env_id} | {cell.script} | {cell.tag} | {cell.estimate} | {seeds} | "
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
    runs = load_runs(runs_dir)
    if not runs:
        raise SystemExit(f"error: {runs_dir}: no run folders with TensorBoard event files")
    notes = []
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
    """One note per env × script whose finished runs do not log both value-estimate tags."""
    return [f"{env_id}, {script}: no {' and '.join(OVERESTIMATION_TAGS)}; not in overestimation.png"
            for env_id, scripts in by_env_and_script(runs).items() for script, group in scripts.items()
            if not any(all(tag in run.scalars for tag in OVERESTIMATION_TAGS) for run in group)]


def main(argv: list[str]):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs_dir", type=Path, help="the folder that holds the run folders (e.g. the sweep's)")
    parser.add_argument("--out", type=Path, help="where the report goes; unset: RUNS_DIR/report")
    args = parser.parse_args(argv)
    for path in save_report(build_report(args.runs_dir), args.out or args.runs_dir / "report"):
        print(f"wrote {path}")


if __name__ == "__main__":
    main(sys.argv[1:])
