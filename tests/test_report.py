"""benchmarks/report.py: the numbers of report.md and the panels of its figures, on event files with known values;
which runs it pools; one line for every input it cannot use.

The runs folder built here (like a sweep's): Breakout and Pong, dqn_atari and double_dqn_atari, seeds 1-4, with
final returns chosen so that their human-normalized scores are round numbers; FrozenLake with the tabular script,
seeds 1-2; a fifth Breakout seed of dqn_atari that did not finish; the value estimates on Breakout only; the random
policy's games on Breakout.
"""

import dataclasses
import errno
import itertools
import json
import re
import struct
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from helpers import ROOT, load_script
from torch.utils.tensorboard import SummaryWriter

report = load_script("benchmarks/report")
random_policy = load_script("benchmarks/random_policy")

STEPS = (0, 1000, 2000)  # evaluations; the return grows linearly to the final one
# human-normalized final score per seed 1..4: (score − random) / (human − random)
NORMALIZED = {
    ("BreakoutNoFrameskip-v4", "dqn_atari"): [0.1, 0.2, 0.3, 0.4],
    ("PongNoFrameskip-v4", "dqn_atari"): [0.5, 0.6, 0.7, 2.0],
    ("BreakoutNoFrameskip-v4", "double_dqn_atari"): [0.01, 0.02, 0.03, 0.04],
    ("PongNoFrameskip-v4", "double_dqn_atari"): [0.55, 0.65, 0.75, 0.85],
}
# human and random scores (REFERENCE §7; Dopamine's)
HUMAN_RANDOM = {"BreakoutNoFrameskip-v4": (30.5, 1.7), "PongNoFrameskip-v4": (14.6, -20.7),
                "BoxingNoFrameskip-v4": (12.1, 0.1), "FreewayNoFrameskip-v4": (29.6, 0.0)}
ATARI_FLAGS = {"total_timesteps": 100000, "eval_episodes": 30, "eval_epsilon": 0.05}  # the Atari 100k recipe's
RANDOM_SCORES = [0.0, 1.0, 2.0, 5.0]  # the random policy's games on Breakout
VALUE_RATIOS = [0.5, 1.0]  # FrozenLake-v1, qlearning_frozenlake, seeds 1 and 2
TABULAR_STEPS = [STEPS, (0, 1500, 2500)]  # the tabular script evaluates every N episodes: at different steps


def write_random_policy(runs_dir, env_id: str, scores: list[float], commit: str = "abc123") -> Path:
    """The random policy's record of one game, as benchmarks/random_policy.py writes it."""
    path = runs_dir / report.RANDOM_POLICY / f"{env_id}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"env_id": env_id, "seed": 1, "scores": scores, "commit": commit}))
    return path


def raw_score(env_id: str, normalized: float) -> float:
    """The game score whose human-normalized score is `normalized`."""
    human, random = HUMAN_RANDOM[env_id]
    return random + normalized * (human - random)


def write_run(runs_dir, env_id: str, script: str, seed: int, scalars: dict, finished: bool = True, steps=STEPS,
              flags: dict | None = None, name: str | None = None):
    """A run folder (`name`, default `{env_id}__{script}__{seed}`) as the scripts and the sweep write it: the
    hyperparameters text (env_id, exp_name, seed, and the other `flags`: flag -> value), the scalars (tag -> values
    at `steps`) and, if finished, the sweep's done marker. Returns the folder."""
    folder = runs_dir / (name or f"{env_id}__{script}__{seed}")
    table = {"env_id": env_id, "exp_name": script, "seed": seed} | (flags or {})
    with SummaryWriter(str(folder)) as writer:
        writer.add_text("hyperparameters",
                        "|param|value|\n|-|-|\n" + "\n".join(f"|{flag}|{value}|" for flag, value in table.items()))
        for tag, values in scalars.items():
            for step, value in zip(steps, values):
                writer.add_scalar(tag, value, step)
    if finished:
        (folder / report.DONE_MARKER).write_text(json.dumps({"exit_status": 0}))
    return folder


def script_flags(script: str, **changes) -> dict:
    """Every flag of `script` (its Args with `changes`) as its hyperparameters table holds them, but the ones
    write_run writes itself (env_id, exp_name, seed)."""
    flags = dataclasses.asdict(load_script(script).Args(**changes))
    return {flag: value for flag, value in flags.items() if flag not in ("env_id", "exp_name", "seed")}


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
            write_run(runs_dir, env_id, script, seed, scalars, flags=ATARI_FLAGS)
    write_run(runs_dir, "BreakoutNoFrameskip-v4", "dqn_atari", 5, {"eval/episodic_return": [0.0, 1.0]}, finished=False,
              flags=ATARI_FLAGS)
    write_random_policy(runs_dir, "BreakoutNoFrameskip-v4", RANDOM_SCORES)
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
    return {(cell.env, cell.method): cell for cell in built.cells}


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
    assert [(run.env_id, run.exp_name, run.seed) for run in unfinished] == [("BreakoutNoFrameskip-v4", "dqn_atari", 5)]


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
    assert [run.finished for run in report.load_runs(tmp_path, [])] == [finished]


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
    assert [line.get_label() for line in report.report_figure(built).axes[0].lines] == [
        "double_dqn_atari, 1 seed", "dqn_atari, 1 seed"]


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


def learning_curve_panels(built) -> dict:
    """The top row of report.png, by title."""
    return {axes.get_title(): axes for axes in report.report_figure(built).axes[:3]}


def labelled(axes) -> dict:
    """The lines of a panel that have a legend entry, by label."""
    return {line.get_label(): line for line in axes.lines if not line.get_label().startswith("_")}


def test_report_png_has_a_learning_curve_panel_per_env_with_a_mean_line_per_script(built):
    panels = learning_curve_panels(built)
    assert sorted(panels) == ["BreakoutNoFrameskip-v4", "FrozenLake-v1", "PongNoFrameskip-v4"]
    pong = labelled(panels["PongNoFrameskip-v4"])
    assert list(pong) == ["double_dqn_atari, mean of 4 seeds (band: 95% bootstrap CI)",
                          "dqn_atari, mean of 4 seeds (band: 95% bootstrap CI)"]
    finals = [raw_score("PongNoFrameskip-v4", value) for value in NORMALIZED[("PongNoFrameskip-v4", "dqn_atari")]]
    expected = np.mean([learning_curve(final) for final in finals], axis=0)
    assert pong["dqn_atari, mean of 4 seeds (band: 95% bootstrap CI)"].get_ydata() == pytest.approx(expected, rel=1e-5)
    # seeds evaluated at different steps: interpolated onto every step logged, within the steps both cover
    mean = labelled(panels["FrozenLake-v1"])["qlearning_frozenlake, mean of 2 seeds (thin: each seed)"]
    assert list(mean.get_xdata()) == [0, 1000, 1500, 2000]
    assert mean.get_ydata()[-1] == pytest.approx((0.5 + 1.0 * 2000 / 2500) / 2)


def test_learning_curves_of_atari_runs_are_their_training_games_returns_averaged_over_the_last_20(tmp_path):
    """As CleanRL plots them: a curve even when a run is evaluated only at its end."""
    steps = [100 * game for game in range(1, 41)]
    for seed, offset in ((1, 0.0), (2, 10.0)):
        write_run(tmp_path, "BreakoutNoFrameskip-v4", "dqn_atari", seed,
                  {"charts/episodic_return": [game + offset for game in range(40)], "eval/episodic_return": [7.0]},
                  steps=steps)
    built = report.build_report(tmp_path)
    (line,) = labelled(report.report_figure(built).axes[0]).values()
    # at the last game: the mean of games 20..39 of seed 1 (29.5) and of seed 2 (39.5); at the first, the first game
    assert (line.get_ydata()[0], line.get_ydata()[-1]) == (pytest.approx(5.0), pytest.approx(34.5))
    assert report.report_figure(built).axes[0].get_ylabel() == (
        "training games' raw score, mean of the last 20\n[charts/episodic_return]")


def test_report_png_labels_its_axes_with_what_they_measure_then_the_tag(built):
    figure = report.report_figure(built)
    value_ratio = "V(π) / V* of the greedy policy (1 = optimal)\n[eval/value_ratio]"
    game_score = "episodic return (raw game score)\n[eval/episodic_return]"
    assert [axes.get_ylabel() for axes in figure.axes] == [game_score, value_ratio, game_score] * 2  # curves, finals


def two_frozenlake_maps(runs_dir):
    """A random 2x2 map and the built-in 4x4, both seed 1, the 2x2 map's run reaching V(π)/V* 1.0, the 4x4's 0.5."""
    write_run(runs_dir, "FrozenLake-v1", "qlearning_frozenlake", 1, {"eval/value_ratio": [0.0, 0.5, 1.0]},
              flags=script_flags("qlearning_frozenlake", map_size=2), name="random_2x2")
    write_run(runs_dir, "FrozenLake-v1", "qlearning_frozenlake", 1, {"eval/value_ratio": [0.0, 0.2, 0.5]},
              flags=script_flags("qlearning_frozenlake"), name="builtin_4x4")


def test_report_png_titles_name_each_frozenlake_map(tmp_path):
    two_frozenlake_maps(tmp_path)
    figure = report.report_figure(report.build_report(tmp_path))
    assert [axes.get_title() for axes in figure.axes] == [
        "FrozenLake-v1 (map_size=0)", "FrozenLake-v1 (map_size=2)",
        "FrozenLake-v1 (map_size=0): final scores", "FrozenLake-v1 (map_size=2): final scores"]


def test_below_four_seeds_each_seed_is_drawn_at_its_own_steps_and_the_mean_without_markers(built):
    """The two FrozenLake seeds are evaluated at different steps: neither is drawn at the other's."""
    panel = learning_curve_panels(built)["FrozenLake-v1"]
    seeds = [line for line in panel.lines if line.get_label().startswith("_")]  # no legend entry of their own
    assert [list(line.get_xdata()) for line in seeds] == [list(steps) for steps in TABULAR_STEPS]
    assert [list(line.get_ydata()) for line in seeds] == [
        pytest.approx(learning_curve(ratio, steps)) for ratio, steps in zip(VALUE_RATIOS, TABULAR_STEPS)]
    assert [line.get_marker() for line in seeds] == [".", "."]
    (mean,) = labelled(panel).values()
    assert (mean.get_marker(), len(panel.collections)) == ("None", 0)  # no band


def test_from_four_seeds_a_band_shows_the_95_percent_bootstrap_ci_of_the_mean(built):
    panel = learning_curve_panels(built)["PongNoFrameskip-v4"]
    assert (len(panel.lines), len(panel.collections)) == (2, 2)  # a mean and a band per script, no seed's own line
    finals = [raw_score("PongNoFrameskip-v4", value) for value in NORMALIZED[("PongNoFrameskip-v4", "dqn_atari")]]
    band = panel.collections[1].get_paths()[0].vertices  # dqn_atari's
    assert sorted(set(band[band[:, 0] == STEPS[-1], 1])) == pytest.approx(percentile_bootstrap(np.array(finals)))


@pytest.mark.parametrize("seeds", [2, 3, 4])
def test_a_95_percent_bootstrap_ci_of_2_or_3_seeds_is_their_range_which_is_why_the_curves_show_them(seeds):
    """One seed resampled alone is 1/4 or 1/27 of the resamples, over 2.5%; with 4 seeds 1/256."""
    low, high = report.bootstrap_ci(np.arange(1.0, seeds + 1))  # seeds scoring 1, 2, ...
    assert ((low, high) == (1.0, seeds)) == (seeds < report.SEED_LINES_BELOW) == (seeds < 4)


@pytest.mark.parametrize("name", ["report.png", "overestimation.png"])
def test_every_legend_sits_below_its_axes_and_x_label_inside_the_figure(built, name):
    figure = report.report_figure(built) if name == "report.png" else report.overestimation_figure(built.runs)
    figure.draw_without_rendering()  # lays the figure out: places are known after it
    legends = [(axes, axes.get_legend()) for axes in figure.axes if axes.get_legend()]
    assert len(legends) == {"report.png": 3, "overestimation.png": 1}[name]  # one per learning curve panel
    for axes, legend in legends:
        box = legend.get_window_extent()
        assert box.y1 < axes.xaxis.label.get_window_extent().y0 < axes.get_window_extent().y0
        assert figure.bbox.x0 <= box.x0 and box.x1 <= figure.bbox.x1 and figure.bbox.y0 <= box.y0


def test_report_png_shows_below_each_env_the_final_scores_the_random_policy_and_the_published_agents(built):
    finals = {axes.get_title(): axes for axes in report.report_figure(built).axes[3:]}  # the bottom row
    breakout = finals["BreakoutNoFrameskip-v4: final scores"]
    assert [label.get_text() for label in breakout.get_xticklabels()] == [
        "double_dqn_atari", "dqn_atari", "random policy (ours)", "DER (published)", "OTRainbow (published)",
        "DrQ (published)", "DrQ(eps) (published)", "SPR (published)"]
    _, seeds, random_games = [line.get_ydata() for line in breakout.lines if line.get_marker() == "o"]  # samples
    assert list(seeds) == pytest.approx([raw_score("BreakoutNoFrameskip-v4", value) for value in (0.1, 0.2, 0.3, 0.4)])
    assert list(random_games) == RANDOM_SCORES
    published = [(line.get_xdata()[0], line.get_ydata()[0]) for line in breakout.lines if line.get_marker() == "D"]
    assert published == [(3, 9.2), (4, 8.1), (5, 15.4), (6, 19.8), (7, 19.6)]  # DER ... SPR, at their positions
    frozenlake = finals["FrozenLake-v1: final scores"]
    assert [label.get_text() for label in frozenlake.get_xticklabels()] == ["qlearning_frozenlake"]


def test_runs_evaluated_once_show_each_scripts_q_estimate_beside_its_discounted_return(tmp_path):
    """A line through one step shows nothing: Atari 100k's runs evaluate only at their end."""
    for script, seed in itertools.product(("dqn_atari", "double_dqn_atari"), (1, 2)):
        write_run(tmp_path, "BreakoutNoFrameskip-v4", script, seed, {"eval/episodic_return": [1.0],
                  "eval/q_estimate": [seed * 2.0], "eval/discounted_return": [seed * 0.5]}, steps=[100])
    (axes,) = report.overestimation_figure(report.load_runs(tmp_path, [])).axes
    assert axes.get_title() == "BreakoutNoFrameskip-v4: at the final evaluation"
    assert [label.get_text() for label in axes.get_xticklabels()] == [
        "double_dqn_atari:\nQ estimate", "double_dqn_atari:\ndiscounted return", "dqn_atari:\nQ estimate",
        "dqn_atari:\ndiscounted return"]
    seeds = [line.get_ydata().tolist() for line in axes.lines if line.get_marker() == "o"]
    assert seeds == [[2.0, 4.0], [0.5, 1.0], [2.0, 4.0], [0.5, 1.0]]
    means = [line.get_ydata().tolist() for line in axes.lines if line.get_marker() == "s"]
    assert means == [[3.0], [0.75], [3.0], [0.75]]


def test_overestimation_png_has_a_panel_per_env_that_logs_the_value_estimates(runs):
    figure = report.overestimation_figure(runs)
    (axes,) = figure.axes
    assert axes.get_title() == "BreakoutNoFrameskip-v4"
    assert [(line.get_label(), line.get_linestyle()) for line in axes.lines] == [
        ("double_dqn_atari: Q estimate, mean of 4 seeds (band: 95% bootstrap CI)", "-"),
        ("double_dqn_atari: discounted return, mean of 4 seeds (band: 95% bootstrap CI)", "--"),
        ("dqn_atari: Q estimate, mean of 4 seeds (band: 95% bootstrap CI)", "-"),
        ("dqn_atari: discounted return, mean of 4 seeds (band: 95% bootstrap CI)", "--")]
    assert axes.lines[0].get_ydata()[-1] == pytest.approx(2.0 * (1 + 2 + 3 + 4) / 4)


def test_the_pngs_are_written_with_one_panel_width_per_env(written):
    widths = {name: int.from_bytes((written / name).read_bytes()[16:20], "big")  # the PNG header's width
              for name in ("report.png", "overestimation.png")}
    assert widths == {"report.png": 3 * 600, "overestimation.png": 600}


# ---- Which runs are pooled -----------------------------------------------------------------------------------------
def pooled(runs_dir) -> dict:
    """{(env, method): (seeds, mean final score)} of the runs under `runs_dir` (without the aggregates' bootstraps)."""
    cells = report.final_scores(report.load_runs(runs_dir, []), report.read_published(report.PUBLISHED), [])
    return {(cell.env, cell.method): (cell.seeds, cell.estimate.value) for cell in cells}


def test_runs_of_different_frozenlake_maps_are_not_pooled_and_each_is_named_by_its_map(tmp_path):
    """Two envs of one seed each, not one cell of seeds (1, 1)."""
    two_frozenlake_maps(tmp_path)
    assert pooled(tmp_path) == {("FrozenLake-v1 (map_size=0)", "qlearning_frozenlake"): ([1], pytest.approx(0.5)),
                                ("FrozenLake-v1 (map_size=2)", "qlearning_frozenlake"): ([1], pytest.approx(1.0))}
    cells = report.final_scores(report.load_runs(tmp_path, []), report.read_published(report.PUBLISHED), [])
    (games, seeds, _), = report.normalized_matrices(cells)[report.TABULAR].values()  # the aggregate over envs
    assert (games, seeds) == (["FrozenLake-v1 (map_size=0)", "FrozenLake-v1 (map_size=2)"], [1])


@pytest.mark.parametrize("flag, value, method", [("learning_rate", 0.001, "dqn_atari (learning_rate=0.001)"),
                                                 ("num_envs", 4, "dqn_atari (num_envs=4)"),
                                                 ("eval_epsilon", 0.001, "dqn_atari (eval_epsilon=0.001)")])
def test_a_flag_that_changes_what_is_learned_or_measured_keeps_runs_apart_and_names_them(tmp_path, flag, value,
                                                                                          method):
    """The learning rate and the number of envs change what is learned, the evaluation's ε what the score measures."""
    for seed in (1, 2):
        write_run(tmp_path, "BreakoutNoFrameskip-v4", "dqn_atari", seed, {"eval/episodic_return": [0.0, 1.0, 2.0]},
                  flags=script_flags("dqn_atari"), name=f"default_{seed}")
        write_run(tmp_path, "BreakoutNoFrameskip-v4", "dqn_atari", seed, {"eval/episodic_return": [0.0, 1.0, 4.0]},
                  flags=script_flags("dqn_atari", **{flag: value}), name=f"changed_{seed}")
    default = f"dqn_atari ({flag}={getattr(load_script('dqn_atari').Args(), flag)})"
    assert pooled(tmp_path) == {("BreakoutNoFrameskip-v4", default): ([1, 2], pytest.approx(2.0)),
                                ("BreakoutNoFrameskip-v4", method): ([1, 2], pytest.approx(4.0))}


def test_a_flag_missing_from_a_runs_table_keeps_it_apart_and_reads_as_unknown(tmp_path):
    """A run of an older version of the script, before --loss existed: its loss is not known to be the same."""
    write_run(tmp_path, "BreakoutNoFrameskip-v4", "dqn_atari", 1, {"eval/episodic_return": [0.0, 1.0, 2.0]},
              flags=script_flags("dqn_atari"), name="now")
    older = {flag: value for flag, value in script_flags("dqn_atari").items() if flag != "loss"}
    write_run(tmp_path, "BreakoutNoFrameskip-v4", "dqn_atari", 2, {"eval/episodic_return": [0.0, 1.0, 4.0]},
              flags=older, name="older")
    assert pooled(tmp_path) == {("BreakoutNoFrameskip-v4", "dqn_atari (loss=mse)"): ([1], pytest.approx(2.0)),
                                ("BreakoutNoFrameskip-v4", "dqn_atari (loss=?)"): ([2], pytest.approx(4.0))}


def test_runs_that_differ_only_in_the_seed_and_bookkeeping_flags_are_pooled(tmp_path):
    """Where a run is written, when it logs and checkpoints, on which device it runs: the same experiment."""
    write_run(tmp_path, "BreakoutNoFrameskip-v4", "dqn_atari", 1, {"eval/episodic_return": [0.0, 1.0, 2.0]},
              flags=script_flags("dqn_atari"))
    write_run(tmp_path, "BreakoutNoFrameskip-v4", "dqn_atari", 2, {"eval/episodic_return": [0.0, 1.0, 4.0]},
              flags=script_flags("dqn_atari", run_name="other", runs_dir="elsewhere", cuda=False, compile=True,
                                 torch_deterministic=False, eval_frequency=1000, checkpoint_frequency=500,
                                 capture_video=True, save_model=True, track=True, wandb_entity="me"))
    assert pooled(tmp_path) == {("BreakoutNoFrameskip-v4", "dqn_atari"): ([1, 2], pytest.approx(3.0))}


def test_every_bookkeeping_and_map_flag_is_a_flag_of_a_script():
    """A name that no script has would be dead: the flag it meant would keep runs apart (or name the method)."""
    flags = {field.name for script in ("dqn_atari", "double_dqn_atari", "qlearning_frozenlake")
             for field in dataclasses.fields(load_script(script).Args)}
    assert report.BOOKKEEPING - flags == set() and report.GAME_FLAGS - flags == set()


def test_the_same_seed_twice_with_the_same_flags_is_refused_in_one_line(tmp_path, capsys):
    first = write_run(tmp_path, "FrozenLake-v1", "qlearning_frozenlake", 1, {"eval/value_ratio": [0.0, 1.0]},
                      name="first")
    again = write_run(tmp_path, "FrozenLake-v1", "qlearning_frozenlake", 1, {"eval/value_ratio": [0.0, 0.5]},
                      name="again")
    with pytest.raises(SystemExit) as exit_:
        report.load_runs(tmp_path, [])
    assert (exit_.value.code, capsys.readouterr().err) == (2, (
        f"error: {again} and {first}: the same run twice (FrozenLake-v1, qlearning_frozenlake, seed 1); a seed "
        f"counted twice would make the CI too narrow: move one of them out of {tmp_path}\n"))


# ---- One line for every input the report cannot use ----------------------------------------------------------------
@pytest.mark.parametrize("table, reason", [
    (None, "no hyperparameters text table"),
    ("|param|value|\n|-|-|\n|exp_name|ppo|\n|seed|1|", "its hyperparameters table has no env_id"),
    ("|param|value|\n|-|-|\n|env_id|CartPole-v1|\n|exp_name|ppo|\n|seed|one|",
     "the seed in its hyperparameters table, 'one', is not an integer")])
def test_a_tensorboard_folder_that_is_not_a_run_is_left_out_with_one_warning_line_and_a_note(tmp_path, capsys, table,
                                                                                             reason):
    """An ordinary TensorBoard log kept beside the runs is not the report's to count, nor a reason to refuse."""
    write_run(tmp_path, "BreakoutNoFrameskip-v4", "dqn_atari", 1, {"eval/episodic_return": [0.0, 1.0]})
    with SummaryWriter(str(tmp_path / "other_logs")) as writer:
        if table is not None:
            writer.add_text("hyperparameters", table)
        writer.add_scalar("eval/episodic_return", 500.0, 0)
    built = report.build_report(tmp_path)
    assert [run.folder.name for run in built.runs] == ["BreakoutNoFrameskip-v4__dqn_atari__1"]
    warning = f"{tmp_path / 'other_logs'}: not a run of these scripts ({reason}); left out"
    assert capsys.readouterr().err == f"warning: {warning}\n"
    assert f"`other_logs`: not a run of these scripts ({reason}); left out" in built.notes


def event_records(path) -> list[tuple[int, int]]:
    """(offset, length of the data) of each record of an event file: its length (8 bytes), the length's checksum
    (4), the data, the data's checksum (4)."""
    data, records, offset = path.read_bytes(), [], 0
    while offset < len(data):
        (length,) = struct.unpack_from("<Q", data, offset)
        records.append((offset, length))
        offset += 12 + length + 4
    return records


def test_an_event_file_with_a_damaged_record_is_one_error_line_naming_where(tmp_path, capsys):
    """TensorBoard's reader would stop at the damage without a word: the run would look shorter than it is."""
    write_run(tmp_path, "BreakoutNoFrameskip-v4", "dqn_atari", 1, {"eval/episodic_return": [0.0, 1.0, 2.0]})
    (path,) = (tmp_path / "BreakoutNoFrameskip-v4__dqn_atari__1").glob("events.out.tfevents.*")
    offset, length = event_records(path)[-2]  # the second-to-last evaluation
    data = bytearray(path.read_bytes())
    data[offset + 12 + length // 2] ^= 0xFF
    path.write_bytes(data)
    with pytest.raises(SystemExit) as exit_:
        report.build_report(tmp_path)
    assert (exit_.value.code, capsys.readouterr().err) == (2, (
        f"error: {path}: damaged at byte {offset:,} (a record fails its checksum): TensorBoard reads the run only up "
        f"to there, so it would look shorter; move the run out of {tmp_path}\n"))


def test_a_last_record_cut_short_is_what_a_killed_run_leaves_and_the_rest_is_read(tmp_path):
    write_run(tmp_path, "BreakoutNoFrameskip-v4", "dqn_atari", 1, {"eval/episodic_return": [0.0, 1.0, 2.0]})
    (path,) = (tmp_path / "BreakoutNoFrameskip-v4__dqn_atari__1").glob("events.out.tfevents.*")
    path.write_bytes(path.read_bytes()[:-5])
    # the last evaluation, 2.0, was in the record cut short
    assert pooled(tmp_path) == {("BreakoutNoFrameskip-v4", "dqn_atari"): ([1], pytest.approx(1.0))}


def test_an_event_file_that_cannot_be_read_is_one_error_line_with_exit_status_1(tmp_path, capsys):
    """A fault, not bad input (here a folder with an event file's name: root reads every file, whatever its mode)."""
    folder = write_run(tmp_path, "BreakoutNoFrameskip-v4", "dqn_atari", 1, {"eval/episodic_return": [0.0, 1.0]})
    (folder / "events.out.tfevents.0.host").mkdir()
    with pytest.raises(SystemExit) as exit_:
        report.build_report(tmp_path)
    assert (exit_.value.code, capsys.readouterr().err) == (
        1, f"error: {folder / 'events.out.tfevents.0.host'}: cannot read it (Is a directory)\n")


@pytest.mark.parametrize("runs_dir, message", [
    ("nope", "nope: no such folder"),
    ("a_file", "a_file: not a folder"),
    ("empty", "empty: no run folders (folders directly under it whose TensorBoard event files hold the scripts' "
              "hyperparameters table)"),
    ("runs/one_run", "runs/one_run: no run folders, but event files in it: give the folder that holds the run "
                     "folders (its parent, if it is one run's folder)")])
def test_a_runs_dir_that_is_missing_or_holds_no_run_folders_is_one_line_saying_which(tmp_path, monkeypatch, capsys,
                                                                                     runs_dir, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a_file").write_text("")
    (tmp_path / "empty").mkdir()
    write_run(tmp_path / "runs", "BreakoutNoFrameskip-v4", "dqn_atari", 1, {"eval/episodic_return": [0.0]},
              name="one_run")
    with pytest.raises(SystemExit) as exit_:
        report.main([runs_dir])
    assert (exit_.value.code, capsys.readouterr().err) == (2, f"error: {message}\n")
    assert not (tmp_path / runs_dir / "report").exists()


def test_a_command_line_without_runs_dir_is_one_error_line(capsys):
    with pytest.raises(SystemExit) as exit_:
        report.main([])
    assert (exit_.value.code, capsys.readouterr().err) == (2, "error: the following arguments are required: RUNS_DIR\n")


@pytest.mark.parametrize("out, message", [("taken", "--out taken: taken is a file, not a folder"),
                                          ("taken/report", "--out taken/report: taken is a file, not a folder")])
def test_an_out_that_cannot_be_a_folder_is_one_error_line_before_the_runs_are_read(tmp_path, monkeypatch, capsys,
                                                                                     out, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "taken").write_text("mine")
    write_run(tmp_path / "runs", "BreakoutNoFrameskip-v4", "dqn_atari", 1, {"eval/episodic_return": [0.0]})
    monkeypatch.setattr(report, "build_report", None)  # reading the runs would fail: it must not start
    with pytest.raises(SystemExit) as exit_:
        report.main(["runs", "--out", out])
    assert (exit_.value.code, capsys.readouterr().err, (tmp_path / "taken").read_text()) == (
        2, f"error: {message}\n", "mine")


def test_a_fault_while_writing_the_report_is_one_line_naming_the_cause_with_exit_status_1(tmp_path, monkeypatch,
                                                                                            capsys):
    """A full disk (or a read-only folder) while the figures are saved."""
    write_run(tmp_path / "runs", "BreakoutNoFrameskip-v4", "dqn_atari", 1, {"eval/episodic_return": [0.0, 1.0]})

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(report.Figure, "savefig", full_disk)
    with pytest.raises(SystemExit) as exit_:
        report.main([str(tmp_path / "runs"), "--out", str(tmp_path / "out")])
    assert (exit_.value.code, capsys.readouterr().err) == (
        1, f"error: cannot write the report into {tmp_path / 'out'}: [Errno 28] No space left on device\n")


def test_ctrl_c_while_reading_the_runs_is_one_line_with_exit_status_130(tmp_path, monkeypatch, capsys):
    write_run(tmp_path, "BreakoutNoFrameskip-v4", "dqn_atari", 1, {"eval/episodic_return": [0.0, 1.0]})

    def ctrl_c(runs_dir):
        raise KeyboardInterrupt

    monkeypatch.setattr(report, "build_report", ctrl_c)
    with pytest.raises(SystemExit) as exit_:
        report.main([str(tmp_path)])
    assert (exit_.value.code, capsys.readouterr().err) == (
        130, "error: interrupted (Ctrl-C) while reading the runs; nothing written\n")


# ---- The literature: the published agents and the random policy beside ours --------------------------------------
def normalized(env_id: str, score: float) -> float:
    """(score − random) / (human − random)."""
    human, random = HUMAN_RANDOM[env_id]
    return (score - random) / (human - random)


def test_the_published_file_gives_per_game_random_human_and_agent_means_and_the_26_game_aggregates():
    published = report.read_published(report.PUBLISHED)
    assert published.agents == ["DER", "OTRainbow", "DrQ", "DrQ(eps)", "SPR"]
    breakout = published.games["Breakout"]
    assert (breakout.random, breakout.human, breakout.scores["DER"]) == (1.7, 30.5, 9.2)
    assert breakout.sds == {"DrQ(eps)": 15.0}
    assert published.games["SpaceInvaders"].scores == {}  # normalized, but not an Atari 100k game
    assert published.all_games["IQM over 26 games"]["DER"] == 0.183


def test_per_game_report_md_places_the_published_agents_and_the_random_policy_beside_ours(written, cells):
    text = (written / "report.md").read_text()
    cell = cells[("BreakoutNoFrameskip-v4", "dqn_atari")]
    assert (f"| BreakoutNoFrameskip-v4 | dqn_atari (ours) | {cell.estimate} | 4 seeds, 30 games at ε 0.05 each | "
            f"{cell.normalized} |") in text
    mean, (low, high) = np.mean(RANDOM_SCORES), percentile_bootstrap(np.array(RANDOM_SCORES))
    breakout = [normalized("BreakoutNoFrameskip-v4", score) for score in (mean, low, high, 9.2)]
    assert (f"| BreakoutNoFrameskip-v4 | random policy (ours) | {mean:.3f} [{low:.3f}, {high:.3f}] | 4 games | "
            f"{breakout[0]:.3f} [{breakout[1]:.3f}, {breakout[2]:.3f}] |") in text
    assert f"| BreakoutNoFrameskip-v4 | DER (published) | 9.2 | published | {breakout[3]:.3f} |" in text
    assert (f"| PongNoFrameskip-v4 | DrQ(eps) (published) | -9.1 (sd 9.2) | published | "
            f"{normalized('PongNoFrameskip-v4', -9.1):.3f} |") in text
    assert "random and human scores of `benchmarks/atari100k_published.csv` for every game" in text


def test_the_published_agents_iqm_and_mean_are_over_our_games_from_their_per_game_means(built, written):
    der = built.published_summary[("BreakoutNoFrameskip-v4", "PongNoFrameskip-v4")]["DER"]
    # over two games the IQM trims nothing: it is the mean
    expected = (normalized("BreakoutNoFrameskip-v4", 9.2) + normalized("PongNoFrameskip-v4", -9.7)) / 2
    assert der == {"IQM": pytest.approx(expected), "mean": pytest.approx(expected)}
    assert (f"| DER (published) | BreakoutNoFrameskip-v4, PongNoFrameskip-v4 | its per-game means | {expected:.3f} | "
            f"{expected:.3f} |") in (written / "report.md").read_text()
    assert "| DER | 0.183 | 0.189 | 0.350 |" in (written / "report.md").read_text()  # over all 26 games, labelled


def test_over_four_games_a_published_agents_iqm_drops_the_lowest_and_highest_per_game_mean():
    games = ["BreakoutNoFrameskip-v4", "PongNoFrameskip-v4", "BoxingNoFrameskip-v4", "FreewayNoFrameskip-v4"]
    matrices = {report.ATARI: {"dqn_atari": (games, [1], np.zeros((1, 4)))}}
    der = report.published_aggregates(matrices, report.read_published(report.PUBLISHED))[tuple(games)]["DER"]
    # DER's 9.2, -9.7, -0.3, 20.9 normalized: 0.26, 0.31, -0.03, 0.71: Boxing's and Freeway's are dropped
    scores = [normalized(game, score) for game, score in zip(games, (9.2, -9.7, -0.3, 20.9))]
    assert der == {"IQM": pytest.approx((scores[0] + scores[1]) / 2), "mean": pytest.approx(np.mean(scores))}


def test_a_game_the_published_file_lacks_is_not_normalized_and_is_noted(tmp_path):
    write_run(tmp_path, "EnduroNoFrameskip-v4", "dqn_atari", 1, {"eval/episodic_return": [0.0, 50.0]})
    notes = []
    (cell,) = report.final_scores(report.load_runs(tmp_path, []), report.read_published(report.PUBLISHED), notes)
    assert cell.normalized is None
    assert notes == ["EnduroNoFrameskip-v4: not a game of `benchmarks/atari100k_published.csv`: its scores are not "
                     "human-normalized"]


def test_a_script_that_trained_another_number_of_steps_is_noted_beside_the_published_agents(tmp_path):
    write_run(tmp_path, "BreakoutNoFrameskip-v4", "dqn_atari", 1, {"eval/episodic_return": [0.0, 5.0]},
              flags={"total_timesteps": 150000})
    write_run(tmp_path, "BreakoutNoFrameskip-v4", "double_dqn_atari", 1, {"eval/episodic_return": [0.0, 5.0]},
              flags={"total_timesteps": 100000})
    runs = report.load_runs(tmp_path, [])
    cells = report.final_scores(runs, report.read_published(report.PUBLISHED), [])
    assert report.protocol_notes(runs, cells) == [
        "dqn_atari trained total_timesteps=150000 agent steps, not Atari 100k's 100,000: the published agents beside "
        "it ran another protocol"]


@pytest.mark.parametrize("content, message", [
    ("{", "damaged, not JSON (JSONDecodeError); write it again with benchmarks/random_policy.py"),
    ('{"env_id": "BreakoutNoFrameskip-v4", "scores": []}',
     "not a record of benchmarks/random_policy.py (it needs env_id and a list of scores)")])
def test_a_random_policy_file_that_cannot_be_read_as_one_is_one_error_line(tmp_path, capsys, content, message):
    path = write_random_policy(tmp_path, "BreakoutNoFrameskip-v4", [1.0])
    path.write_text(content)
    with pytest.raises(SystemExit) as exit_:
        report.load_random_policies(tmp_path, report.read_published(report.PUBLISHED))
    assert (exit_.value.code, capsys.readouterr().err) == (2, f"error: {path}: {message}\n")


def test_a_second_random_policy_file_for_one_env_is_one_error_line(tmp_path, capsys):
    """Its games would count twice (a copy under another name)."""
    write_random_policy(tmp_path, "BreakoutNoFrameskip-v4", [1.0])
    copy = tmp_path / report.RANDOM_POLICY / "copy.json"
    copy.write_text((tmp_path / report.RANDOM_POLICY / "BreakoutNoFrameskip-v4.json").read_text())
    with pytest.raises(SystemExit) as exit_:
        report.load_random_policies(tmp_path, report.read_published(report.PUBLISHED))
    assert (exit_.value.code, capsys.readouterr().err) == (2, (
        f"error: {copy}: a second random policy for BreakoutNoFrameskip-v4; its games would count twice: move one of "
        f"them out of {copy.parent}\n"))


# ---- The commits pooled, and a report.md that is the same whenever it is made ------------------------------------
def test_runs_of_different_commits_are_pooled_and_report_md_lists_each_commit_with_its_runs(tmp_path):
    """The commit of the script is bookkeeping: listed, never a reason to split a group (absent: unknown)."""
    for seed, commit in ((1, "aaa"), (2, "bbb-dirty"), (3, None)):
        write_run(tmp_path, "BreakoutNoFrameskip-v4", "dqn_atari", seed, {"eval/episodic_return": [0.0, seed]},
                  flags={"script": "dqn_atari.py"} | ({"commit": commit} if commit else {}))
    built = report.build_report(tmp_path)
    assert [(cell.method, cell.seeds) for cell in built.cells] == [("dqn_atari", [1, 2, 3])]
    text = report.markdown(built)
    assert ("| dqn_atari | dqn_atari.py | aaa | 1: BreakoutNoFrameskip-v4 seeds 1 |\n"
            "| dqn_atari | dqn_atari.py | bbb-dirty | 1: BreakoutNoFrameskip-v4 seeds 2 |\n"
            "| dqn_atari | dqn_atari.py | unknown | 1: BreakoutNoFrameskip-v4 seeds 3 |\n") in text
    assert "dqn_atari: runs of 3 commits are pooled." in text


def test_two_scripts_run_with_one_exp_name_are_kept_apart_and_named_by_their_script_row(tmp_path):
    for script, final in (("dqn_atari.py", 2.0), ("double_dqn_atari.py", 4.0)):
        write_run(tmp_path, "BreakoutNoFrameskip-v4", "dqn", 1, {"eval/episodic_return": [0.0, final]},
                  flags={"script": script}, name=script)
    assert pooled(tmp_path) == {("BreakoutNoFrameskip-v4", "dqn (script=double_dqn_atari.py)"): ([1], 4.0),
                                ("BreakoutNoFrameskip-v4", "dqn (script=dqn_atari.py)"): ([1], 2.0)}


def two_seeds_of_breakout(runs_dir):
    for seed in (1, 2):
        write_run(runs_dir, "BreakoutNoFrameskip-v4", "dqn_atari", seed, {"eval/episodic_return": [0.0, 3.0 * seed]})


def test_report_md_made_again_from_the_same_runs_is_the_same_byte_for_byte(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    two_seeds_of_breakout(tmp_path / "runs")
    report.main(["runs", "--out", "first"])
    report.main(["runs", "--out", "second"])
    assert (tmp_path / "first" / "report.md").read_bytes() == (tmp_path / "second" / "report.md").read_bytes()
    assert (tmp_path / "first" / "report.md").read_text().startswith("# Benchmark report: `runs`\n")


def test_report_md_names_no_absolute_path_of_this_machine(tmp_path):
    two_seeds_of_breakout(tmp_path / "runs")
    report.main([str(tmp_path / "runs"), "--out", str(tmp_path / "out")])
    text = (tmp_path / "out" / "report.md").read_text()
    assert text.startswith("# Benchmark report\n") and str(tmp_path) not in text


def test_a_report_without_atari_runs_explains_no_human_normalized_score_nor_an_overestimation_png(tmp_path):
    for seed in (1, 2):
        write_run(tmp_path, "FrozenLake-v1", "qlearning_frozenlake", seed, {"eval/value_ratio": [0.0, 1.0]})
    report.main([str(tmp_path), "--out", str(tmp_path / "out")])
    text = (tmp_path / "out" / "report.md").read_text()
    assert re.findall(r"(?i)human|overestimation|atari", text) == []
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == ["report.md", "report.png"]


@pytest.fixture(scope="module")
def optimal_and_not(tmp_path_factory) -> str:
    """report.md of FrozenLake-v1 with two scripts: qlearning_frozenlake's seeds 1 and 2 both reach V(π)/V* 1.0,
    sarsa_frozenlake's 0.5 and 0.6."""
    runs_dir = tmp_path_factory.mktemp("optimal_and_not")
    for script, finals in (("qlearning_frozenlake", (1.0, 1.0)), ("sarsa_frozenlake", (0.5, 0.6))):
        for seed, final in enumerate(finals, start=1):
            write_run(runs_dir, "FrozenLake-v1", script, seed, {"eval/value_ratio": [0.0, final]})
    return report.markdown(report.build_report(runs_dir))


def test_a_ci_of_one_point_because_every_seed_scored_the_same_says_so(optimal_and_not):
    assert ("| FrozenLake-v1 | qlearning_frozenlake | eval/value_ratio | 1.000 (all seeds 1.000: no spread) | "
            "2 (1, 2) |") in optimal_and_not
    assert ("| qlearning_frozenlake | FrozenLake-v1 | 1, 2 | 1.000 (all seeds × games 1.000: no spread) | 1.000 (all "
            "seeds × games 1.000: no spread) |") in optimal_and_not
    assert "[1.000, 1.000]" not in optimal_and_not


def test_a_probability_of_improvement_with_a_ci_of_one_point_says_every_resample_gave_it(optimal_and_not):
    """Every run of one script beat every run of the other: P = 1 in every resample, though the seeds differ."""
    assert ("| qlearning_frozenlake | sarsa_frozenlake | 1.000 (every bootstrap resample 1.000: no spread) |"
            in optimal_and_not)


def test_a_random_policy_that_scores_the_same_in_every_game_says_so(tmp_path):
    write_random_policy(tmp_path, "PongNoFrameskip-v4", [-21.0, -21.0, -21.0])  # Pong's lowest score, every game
    (policy,) = report.load_random_policies(tmp_path, report.read_published(report.PUBLISHED)).values()
    assert str(policy.estimate) == "-21.000 (all games -21.000: no spread)"


def test_report_md_says_that_a_ci_over_2_or_3_seeds_is_their_range_only_when_it_shows_one(written, tmp_path):
    sentence = ("With 2 or 3 seeds such a CI is the lowest and highest seed's score (one seed resampled alone is over "
                "2.5% of the resamples): read it as their range.")
    assert sentence in (written / "report.md").read_text()  # FrozenLake-v1: 2 seeds
    for seed in (1, 2, 3, 4):
        write_run(tmp_path, "FrozenLake-v1", "qlearning_frozenlake", seed, {"eval/value_ratio": [0.0, seed / 4]})
    assert sentence not in report.markdown(report.build_report(tmp_path))


ATARI100K = ROOT / "benchmarks" / "results" / "atari100k"


def test_the_committed_atari100k_report_md_is_what_the_committed_runs_give(tmp_path, monkeypatch):
    """The command of the README, made again into a temporary folder, against the committed report.md."""
    if not any(ATARI100K.glob("*/events.out.tfevents.*")):
        pytest.skip("no Atari 100k runs committed under benchmarks/results/atari100k yet")
    if not (ATARI100K / "report.md").exists():
        pytest.skip("Atari 100k runs are committed, but no report.md beside them yet")
    monkeypatch.chdir(ROOT)
    report.main(["benchmarks/results/atari100k", "--out", str(tmp_path)])
    assert (tmp_path / "report.md").read_text() == (ATARI100K / "report.md").read_text()


# ---- benchmarks/random_policy.py ---------------------------------------------------------------------------------
def test_the_report_reads_the_folder_the_random_policy_writes():
    assert report.RANDOM_POLICY == random_policy.FOLDER


def random_policy_scores(runs_dir, env_id: str, *flags: str) -> dict:
    random_policy.main(["--env-ids", env_id, "--results-dir", str(runs_dir), *flags])
    return json.loads((runs_dir / "random_policy" / f"{env_id}.json").read_text())


class ActionSum(gym.Env):
    """Ten steps a game, each rewarded with the number of the action taken: a game scores the sum of its actions,
    45 in expectation when the actions are drawn uniformly from 0-8."""

    def __init__(self):
        self.observation_space = gym.spaces.Box(0, 255, (84, 84), np.uint8)
        self.action_space = gym.spaces.Discrete(9)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.steps = 0
        return np.zeros((84, 84), np.uint8), {}

    def step(self, action):
        self.steps += 1
        return np.zeros((84, 84), np.uint8), float(action), self.steps == 10, False, {}


def test_the_random_policy_plays_whole_evaluation_games_uniformly_at_random_and_repeats_with_its_seed(tmp_path,
                                                                                                     monkeypatch):
    """ActionSum in place of Pong's pipeline; the policy must ask for the evaluation env (training=False: whole
    games, raw scores)."""
    asked = []

    def make_action_sum_env(env_id, seed, idx, training=True, render_mode=None):
        asked.append(training)

        def thunk():
            env = gym.wrappers.RecordEpisodeStatistics(ActionSum())
            env.action_space.seed(seed + idx)
            return env

        return thunk

    monkeypatch.setattr(load_script("dqn_atari"), "make_env", make_action_sum_env)
    first = random_policy_scores(tmp_path / "a", "PongNoFrameskip-v4", "--games", "30")
    assert (first["env_id"], first["seed"], len(first["scores"])) == ("PongNoFrameskip-v4", 1, 30)
    # uniform actions: 30 games score 45 on average with a standard error of sqrt(10 · 80/12 / 30) = 1.5
    assert 40 < np.mean(first["scores"]) < 50 and set(asked) == {False}
    assert re.fullmatch(r"[0-9a-f]{40}(-dirty)?|unknown", first["commit"])
    again = random_policy_scores(tmp_path / "b", "PongNoFrameskip-v4", "--games", "30")
    other_seed = random_policy_scores(tmp_path / "c", "PongNoFrameskip-v4", "--games", "30", "--seed", "2")
    assert again["scores"] == first["scores"] != other_seed["scores"]


def test_the_random_policy_plays_breakout_through_the_scripts_atari_pipeline(tmp_path):
    record = random_policy_scores(tmp_path, "BreakoutNoFrameskip-v4", "--games", "2")
    assert len(record["scores"]) == 2 and all(score >= 0 and score == int(score) for score in record["scores"])


@pytest.mark.parametrize("flags, message", [
    (["--env-ids", "BreakoutNoFrameskip-v4", "--games", "0"], "--games 0: must be at least 1"),
    (["--env-ids", "BreakoutNoFrameskip-v4", "CartPole-v1"],
     "--env-ids CartPole-v1: not an Atari game of ale-py (try BreakoutNoFrameskip-v4)")])
def test_a_random_policy_with_a_bad_flag_is_one_error_line_before_any_game(tmp_path, capsys, flags, message):
    with pytest.raises(SystemExit) as exit_:
        random_policy.main(flags + ["--results-dir", str(tmp_path)])
    assert (exit_.value.code, capsys.readouterr().err, list(tmp_path.iterdir())) == (2, f"error: {message}\n", [])
