"""benchmarks/report.py: the numbers of report.md and the panels of its figures, on event files with known values;
which runs it pools; one line for every input it cannot use.

The runs folder built here (like a sweep's): Breakout and Pong, dqn_atari and double_dqn_atari, seeds 1-4, with
final returns chosen so that their human-normalized scores are round numbers; FrozenLake with the tabular script,
seeds 1-2; a fifth Breakout seed of dqn_atari that did not finish; the value estimates on Breakout only.
"""

import dataclasses
import errno
import json
import re
import struct

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


# ---- Which runs are pooled -----------------------------------------------------------------------------------------
def pooled(runs_dir) -> dict:
    """{(env, method): (seeds, mean final score)} of the runs under `runs_dir` (without the aggregates' bootstraps)."""
    cells = report.final_scores(report.load_runs(runs_dir, []), [])
    return {(cell.env, cell.method): (cell.seeds, cell.estimate.value) for cell in cells}


def test_runs_of_different_frozenlake_maps_are_not_pooled_and_each_is_named_by_its_map(tmp_path):
    """A random 2x2 map and the built-in 4x4, both seed 1: two envs of one seed each, not one cell of seeds (1, 1)."""
    write_run(tmp_path, "FrozenLake-v1", "qlearning_frozenlake", 1, {"eval/value_ratio": [0.0, 0.5, 1.0]},
              flags=script_flags("qlearning_frozenlake", map_size=2), name="random_2x2")
    write_run(tmp_path, "FrozenLake-v1", "qlearning_frozenlake", 1, {"eval/value_ratio": [0.0, 0.2, 0.5]},
              flags=script_flags("qlearning_frozenlake"), name="builtin_4x4")
    assert pooled(tmp_path) == {("FrozenLake-v1 (map_size=0)", "qlearning_frozenlake"): ([1], pytest.approx(0.5)),
                                ("FrozenLake-v1 (map_size=2)", "qlearning_frozenlake"): ([1], pytest.approx(1.0))}
    cells = report.final_scores(report.load_runs(tmp_path, []), [])
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
