"""benchmarks/report.py: the numbers of report.md and the panels of its figures, on event files with known values.

The runs folder built here (like a sweep's): Breakout and Pong, dqn_atari and double_dqn_atari, seeds 1-4, with
final returns chosen so that their human-normalized scores are round numbers; FrozenLake with the tabular script,
seeds 1-2; a fifth Breakout seed of dqn_atari that did not finish; the value estimates on Breakout only.
"""

import json
import re

import numpy as np
import pytest
from helpers import load_script
from torch.utils.tensorboard import SummaryWriter

report = load_script("benchmarks/report")

STEPS = (0, 1000, 2000)  # evaluations; the return grows linearly to the final one
# human-normalized final score per seed 1..4: (score − random) / (human − random)
NORMALIZED = {
    ("BreakoutNoFrameskip-v4", "dqn_atari"): [0.1, 0.2, 0.3, 0.4],
    ("PongNoFrameskip-v4", "dqn_atari"): [0.5, 0.6, 0.7, 2.0],
    ("BreakoutNoFrameskip-v4", "double_dqn_atari"): [0.01, 0.02, 0.03, 0.04],
    ("PongNoFrameskip-v4", "double_dqn_atari"): [0.55, 0.65, 0.75, 0.85],
}
HUMAN_RANDOM = {"BreakoutNoFrameskip-v4": (30.5, 1.7), "PongNoFrameskip-v4": (14.6, -20.7)}
VALUE_RATIOS = [0.5, 1.0]  # FrozenLake-v1, qlearning_frozenlake, seeds 1 and 2
TABULAR_STEPS = [STEPS, (0, 1500, 2500)]  # the tabular script evaluates every N episodes: at different steps


def raw_score(env_id: str, normalized: float) -> float:
    """The game score whose human-normalized score is `normalized`."""
    human, random = HUMAN_RANDOM[env_id]
    return random + normalized * (human - random)


def write_run(runs_dir, env_id: str, script: str, seed: int, scalars: dict, finished: bool = True, steps=STEPS):
    """A run folder as the scripts and the sweep write it: the hyperparameters text, the scalars (tag -> values
    at `steps`) and, if finished, the sweep's done marker."""
    folder = runs_dir / f"{env_id}__{script}__{seed}"
    with SummaryWriter(str(folder)) as writer:
        writer.add_text("hyperparameters",
                        f"|param|value|\n|-|-|\n|env_id|{env_id}|\n|exp_name|{script}|\n|seed|{seed}|")
        for tag, values in scalars.items():
            for step, value in zip(steps, values):
                writer.add_scalar(tag, value, step)
    if finished:
        (folder / report.DONE_MARKER).write_text(json.dumps({"exit_status": 0}))


def learning_curve(final: float, steps=STEPS) -> list[float]:
    """Values at `steps` rising linearly from 0 to `final`."""
    return [final * step / steps[-1] for step in steps]


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory):
    runs_dir = tmp_path_factory.mktemp("bench_runs")
    for (env_id, script), normalized in NORMALIZED.items():
        for seed, value in enumerate(normalized, start=1):
            scalars = {"eval/episodic_return": learning_curve(raw_score(env_id, value))}
            if env_id.startswith("Breakout"):
                scalars |= {"eval/q_estimate": learning_curve(2.0 * seed),
                            "eval/discounted_return": learning_curve(1.0)}
            write_run(runs_dir, env_id, script, seed, scalars)
    write_run(runs_dir, "BreakoutNoFrameskip-v4", "dqn_atari", 5, {"eval/episodic_return": [0.0, 1.0]}, finished=False)
    for seed, (ratio, steps) in enumerate(zip(VALUE_RATIOS, TABULAR_STEPS), start=1):
        write_run(runs_dir, "FrozenLake-v1", "qlearning_frozenlake", seed,
                  {"eval/value_ratio": learning_curve(ratio, steps)}, steps=steps)
    (runs_dir / "sweep_logs").mkdir()  # not a run: no event files
    return runs_dir


@pytest.fixture(scope="module")
def built(runs_dir):
    """The report's numbers (the bootstraps take seconds: computed once)."""
    return report.build_report(runs_dir)


@pytest.fixture(scope="module")
def runs(built):
    return built.runs


@pytest.fixture(scope="module")
def cells(built):
    return {(cell.env_id, cell.script): cell for cell in built.cells}


@pytest.fixture(scope="module")
def written(built, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    report.save_report(built, out)
    return out


def percentile_bootstrap(samples: np.ndarray, reps: int = 2000, seed: int = 0) -> tuple[float, float]:
    """The 95% CI of the mean: resample with replacement `reps` times, take the 2.5th and 97.5th percentiles."""
    rng = np.random.default_rng(seed)
    means = np.array([samples[rng.integers(0, len(samples), len(samples))].mean() for _ in range(reps)])
    return tuple(np.percentile(means, [2.5, 97.5]))


def test_runs_are_identified_by_their_hyperparameters_and_a_run_without_the_marker_is_unfinished(runs):
    assert len(runs) == 4 * 4 + 1 + 2
    unfinished = [run for run in runs if not run.finished]
    assert [(run.env_id, run.script, run.seed) for run in unfinished] == [("BreakoutNoFrameskip-v4", "dqn_atari", 5)]


def test_the_report_reads_the_file_names_the_sweep_writes():
    """The two scripts share no code: the names of the done marker and of the logs folder are written in both."""
    sweep = load_script("benchmarks/sweep")
    assert (report.DONE_MARKER, report.SWEEP_LOGS) == (sweep.DONE_MARKER, sweep.LOGS)


@pytest.mark.parametrize("sweep_logs, finished", [(True, False), (False, True)])
def test_in_a_sweep_with_no_run_ended_yet_every_run_is_unfinished(tmp_path, sweep_logs, finished):
    """A sweep's folder (it has sweep_logs/) before its first run ends; a hand-made folder counts every run."""
    write_run(tmp_path, "BreakoutNoFrameskip-v4", "dqn_atari", 1, {"eval/episodic_return": [0.0, 1.0]}, finished=False)
    if sweep_logs:
        (tmp_path / "sweep_logs").mkdir()
    assert [run.finished for run in report.load_runs(tmp_path)] == [finished]


def test_with_one_seed_a_score_its_aggregates_and_the_improvement_probability_show_no_interval(tmp_path):
    """A bootstrap over one seed measures no spread: no degenerate [x, x] interval anywhere in the report."""
    write_run(tmp_path, "BreakoutNoFrameskip-v4", "dqn_atari", 1, {"eval/episodic_return": [0.0, 1.0, 4.58]})
    write_run(tmp_path, "BreakoutNoFrameskip-v4", "double_dqn_atari", 1, {"eval/episodic_return": [0.0, 1.0, 7.46]})
    built = report.build_report(tmp_path)
    text = report.markdown(built)
    assert "| dqn_atari | eval/episodic_return | 4.580 (one seed: no CI) | 1 (1) | 0.100 (one seed: no CI) |" in text
    assert "| dqn_atari | BreakoutNoFrameskip-v4 | 1 | 0.100 (one seed: no CI) | 0.100 (one seed: no CI) |" in text
    assert "| double_dqn_atari | dqn_atari | 1.000 (one seed: no CI) |" in text
    assert not re.search(r"\[-?\d+\.\d+, ", text)  # no interval [low, high] anywhere
    assert [line.get_label() for line in report.curves_figure(built.runs).axes[0].lines] == [
        "double_dqn_atari (1 seed)", "dqn_atari (1 seed)"]


def test_the_final_score_is_the_mean_over_seeds_of_the_last_evaluation(cells):
    cell = cells[("BreakoutNoFrameskip-v4", "dqn_atari")]
    expected = np.mean([raw_score("BreakoutNoFrameskip-v4", value) for value in (0.1, 0.2, 0.3, 0.4)])
    assert cell.seeds == [1, 2, 3, 4]  # the unfinished seed 5 is left out
    assert cell.estimate.value == pytest.approx(expected, rel=1e-6)
    assert cells[("FrozenLake-v1", "qlearning_frozenlake")].tag == "eval/value_ratio"
    assert cells[("FrozenLake-v1", "qlearning_frozenlake")].estimate.value == pytest.approx(0.75)


def test_the_confidence_interval_is_a_percentile_bootstrap_over_seeds(cells):
    cell = cells[("PongNoFrameskip-v4", "dqn_atari")]
    low, high = percentile_bootstrap(cell.scores)
    assert (cell.estimate.low, cell.estimate.high) == (pytest.approx(low), pytest.approx(high))
    assert cell.scores.min() < low < cell.estimate.value < high < cell.scores.max()


def test_the_human_normalized_score_is_score_minus_random_over_human_minus_random(cells):
    cell = cells[("BreakoutNoFrameskip-v4", "dqn_atari")]
    assert cell.normalized.value == pytest.approx((0.1 + 0.2 + 0.3 + 0.4) / 4, rel=1e-5)
    assert cell.normalized.low == pytest.approx((cell.estimate.low - 1.7) / (30.5 - 1.7))
    assert cells[("FrozenLake-v1", "qlearning_frozenlake")].normalized is None


def test_iqm_and_mean_over_games_of_the_normalized_scores(built):
    estimates = built.summary[report.ATARI]
    # dqn_atari's eight normalized scores 0.1 0.2 0.3 0.4 | 0.5 0.6 0.7 2.0: the IQM drops the lowest and highest two
    assert estimates["IQM"]["dqn_atari"].value == pytest.approx((0.3 + 0.4 + 0.5 + 0.6) / 4, rel=1e-5)
    assert estimates["mean"]["dqn_atari"].value == pytest.approx((1.0 + 3.8) / 8, rel=1e-5)
    assert estimates["IQM"]["dqn_atari"].low < 0.45 < estimates["IQM"]["dqn_atari"].high
    assert built.summary[report.TABULAR]["mean"]["qlearning_frozenlake"].value == pytest.approx(0.75)


def test_the_probability_of_improvement_averages_over_games(built):
    (pair, estimate), = built.probabilities[report.ATARI].items()
    # P(double > dqn): Breakout 0 of 16 pairs; Pong 0.55 beats 0.5, 0.65 beats 0.5 and 0.6, 0.75 and 0.85 beat 3 each
    assert pair == ("double_dqn_atari", "dqn_atari")
    assert estimate.value == pytest.approx((0 / 16 + (1 + 2 + 3 + 3) / 16) / 2)
    assert estimate.low <= estimate.value <= estimate.high


def test_report_md_holds_the_table_and_lists_the_unfinished_seed_and_missing_tags(written, cells):
    text = (written / "report.md").read_text()
    cell = cells[("BreakoutNoFrameskip-v4", "dqn_atari")]
    assert f"| BreakoutNoFrameskip-v4 | dqn_atari | eval/episodic_return | {cell.estimate} | 4 (1, 2, 3, 4); " \
           f"not finished: 5 | {cell.normalized} |" in text
    assert "`BreakoutNoFrameskip-v4__dqn_atari__5` (no sweep_done.json): reached step 1,000" in text
    assert "PongNoFrameskip-v4, dqn_atari: no eval/q_estimate and eval/discounted_return" in text
    assert "| double_dqn_atari | dqn_atari | " in text


def test_report_png_has_a_panel_per_env_with_a_mean_line_per_script(runs):
    figure = report.curves_figure(runs)
    panels = {axes.get_title(): axes for axes in figure.axes}
    assert sorted(panels) == ["BreakoutNoFrameskip-v4", "FrozenLake-v1", "PongNoFrameskip-v4"]
    assert [line.get_label() for line in panels["PongNoFrameskip-v4"].lines] == [
        "double_dqn_atari (4 seeds)", "dqn_atari (4 seeds)"]
    finals = [raw_score("PongNoFrameskip-v4", value) for value in NORMALIZED[("PongNoFrameskip-v4", "dqn_atari")]]
    expected = np.mean([learning_curve(final) for final in finals], axis=0)
    assert panels["PongNoFrameskip-v4"].lines[1].get_ydata() == pytest.approx(expected, rel=1e-5)
    assert panels["FrozenLake-v1"].get_ylabel() == "eval/value_ratio"
    # seeds evaluated at different steps: interpolated onto every step logged, within the steps both cover
    (tabular,) = panels["FrozenLake-v1"].lines
    assert list(tabular.get_xdata()) == [0, 1000, 1500, 2000]
    assert tabular.get_ydata()[-1] == pytest.approx((0.5 + 1.0 * 2000 / 2500) / 2)
    assert len(panels["PongNoFrameskip-v4"].collections) == 2  # a confidence band per script


def test_overestimation_png_has_a_panel_per_env_that_logs_the_value_estimates(runs):
    figure = report.overestimation_figure(runs)
    (axes,) = figure.axes
    assert axes.get_title() == "BreakoutNoFrameskip-v4"
    assert [(line.get_label(), line.get_linestyle()) for line in axes.lines] == [
        ("double_dqn_atari: Q estimate", "-"), ("double_dqn_atari: discounted return", "--"),
        ("dqn_atari: Q estimate", "-"), ("dqn_atari: discounted return", "--")]
    assert axes.lines[0].get_ydata()[-1] == pytest.approx(2.0 * (1 + 2 + 3 + 4) / 4)


def test_the_pngs_are_written_with_one_panel_width_per_env(written):
    widths = {name: int.from_bytes((written / name).read_bytes()[16:20], "big")  # the PNG header's width
              for name in ("report.png", "overestimation.png")}
    assert widths == {"report.png": 3 * 600, "overestimation.png": 600}
