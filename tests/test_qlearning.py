"""Specification of qlearning_frozenlake.py: the Q-learning pieces on a tiny MDP worked out by hand, exact scoring
against Monte-Carlo, learning to the optimum, what a run writes, checkpoints and --resume, and how bad flags are
refused."""

import contextlib
import glob
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import cv2
import gymnasium as gym
import numpy as np
import pytest
from helpers import ROOT, load_script
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

ql = load_script("qlearning_frozenlake")

# A tiny MDP in gymnasium's P format. States 0, 1 and the terminal state 2 (absorbing, like a FrozenLake hole).
#   s0: a0 stays (r 0); a1 moves to s1 (r 0)
#   s1: a0 ends with reward 1 w.p. 1/2, else back to s0 (r 0); a1 stays with reward 0.1
# With γ = 1/2:  V1 = Q(1,0) = 1/2 + 1/2·γ·V0 and V0 = γ·V1  →  V1 = 1/2 + V1/8 = 4/7,  V0 = 2/7,
#   Q(0,0) = γ·V0 = 1/7,  Q(0,1) = γ·V1 = 2/7,  Q(1,1) = 0.1 + γ·V1 = 0.1 + 2/7 < 4/7.
TINY_P = {
    0: {0: [(1.0, 0, 0.0, False)], 1: [(1.0, 1, 0.0, False)]},
    1: {0: [(0.5, 2, 1.0, True), (0.5, 0, 0.0, False)], 1: [(1.0, 1, 0.1, False)]},
    2: {0: [(1.0, 2, 0.0, True)], 1: [(1.0, 2, 0.0, True)]},
}
TINY_GAMMA = 0.5


@pytest.fixture(scope="module")
def tiny_model():
    return ql.tabular_model(TINY_P, n_states=3, n_actions=2)


# ---------------------------------------------------------------------------------------------------------------
# The pieces of Q-learning
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "terminated, expected",
    [
        # Q(0,1) = 0.2, r = 1, max Q(s'=1) = 0.6, α = 0.5, γ = 0.5: 0.2 + 0.5·(1 + 0.5·0.6 − 0.2) = 0.75
        (False, 0.75),
        # terminated: no bootstrap, 0.2 + 0.5·(1 − 0.2) = 0.6
        (True, 0.6),
    ],
)
def test_td_update_moves_q_towards_the_target_and_bootstraps_only_without_termination(terminated, expected):
    q_table = [[0.0, 0.2], [0.6, -0.4]]
    ql.td_update(q_table, obs=0, action=1, reward=1.0, next_obs=1, terminated=terminated, alpha=0.5, gamma=0.5)
    assert q_table == [[0.0, pytest.approx(expected)], [0.6, -0.4]]


@pytest.mark.parametrize(
    "learning_rate, visit_count, omega, expected",
    [(1.0, 4, 0.5, 0.5), (1.0, 1, 0.6, 1.0), (0.5, 32, 0.6, 0.5 / 8), (0.1, 1000, 0.0, 0.1)],  # 32^0.6 = 2^3
)
def test_step_size_is_learning_rate_over_visit_count_to_the_omega(learning_rate, visit_count, omega, expected):
    assert ql.step_size(learning_rate, visit_count, omega) == pytest.approx(expected)


def test_greedy_action_breaks_ties_uniformly_among_the_best_actions_only():
    q_values = [1.0, 3.0, 3.0, 0.5, 3.0]  # the best value 3.0 is shared by actions 1, 2 and 4
    us = (np.arange(300) + 0.5) / 300  # an even grid over [0, 1): each third of it should pick one tied action
    counts = np.bincount([ql.greedy_action(q_values, u) for u in us], minlength=5)
    assert counts.tolist() == [0, 100, 100, 0, 100]


def test_greedy_action_without_ties_is_the_argmax_whatever_the_random_number():
    assert {ql.greedy_action([0.1, -2.0, 0.7, 0.3], u) for u in (0.0, 0.5, 0.999)} == {2}


@pytest.mark.parametrize("t, expected", [(0, 1.0), (250, 0.7625), (500, 0.525), (1000, 0.05), (5000, 0.05)])
def test_epsilon_falls_linearly_then_stays_at_end_e(t, expected):
    # slope (0.05 − 1)/1000 = −0.00095 per episode: t = 250 → 1 − 0.2375 = 0.7625
    assert ql.linear_schedule(1.0, 0.05, 1000, t) == pytest.approx(expected)


@pytest.mark.parametrize(
    "env_id, kwargs",
    # time limits short enough for random actions to meet them (Taxi's own is 200 steps)
    [("FrozenLake-v1", dict(map_name="4x4", is_slippery=True, max_episode_steps=8)),
     ("FrozenLake-v1", dict(map_name="8x8", is_slippery=True, max_episode_steps=20)),
     ("Taxi-v4", dict()), ("CliffWalking-v1", dict(is_slippery=True, max_episode_steps=30))],
)
def test_make_step_gives_the_same_transitions_as_env_step_from_the_same_seed(env_id, kwargs):
    reference, env = gym.make(env_id, **kwargs), gym.make(env_id, **kwargs)
    step = ql.make_step(env)
    actions = np.random.default_rng(0).integers(0, env.action_space.n, 20_000).tolist()
    expected, got = [], []
    ref_obs, _ = reference.reset(seed=11)
    obs, _ = env.reset(seed=11)
    steps_taken = 0
    for action in actions:
        ref_obs, reward, terminated, truncated, _ = reference.step(action)
        expected.append((ref_obs, reward, terminated, truncated))
        obs, reward, terminated, truncated = step(obs, action, steps_taken)
        got.append((obs, reward, terminated, truncated))
        steps_taken += 1
        if terminated or truncated:
            ref_obs, _ = reference.reset()
            obs, _ = env.reset()
            steps_taken = 0
    assert got == expected
    assert any(tr for _, _, _, tr in expected)  # time limits were met, and (but on CliffWalking, whose cliff
    assert any(te for _, _, te, _ in expected) or env_id == "CliffWalking-v1"  # only sends back) terminations


def test_make_step_leaves_randomness_outside_the_model_to_env_step():
    env = gym.make("Taxi-v4", fickle_passenger=True)  # the passenger may change destination: not in P
    env.reset(seed=0)
    calls = []
    env.step = lambda action: calls.append(action) or (0, 0.0, False, False, {})
    ql.make_step(env)(0, 3, 0)
    assert calls == [3]


def test_uniform_stream_continues_exactly_from_a_saved_position_across_blocks():
    expected = np.random.default_rng(9).random(1_000).tolist()  # blocks of 64 give the same numbers as one draw
    stream = ql.UniformStream(np.random.default_rng(9), block=64)
    first = [next(stream.numbers) for _ in range(300)]
    position = json.loads(json.dumps(stream.position()))  # as a checkpoint stores it
    resumed = ql.UniformStream(np.random.default_rng(123), block=64, position=position)
    rest = [next(resumed.numbers) for _ in range(700)]
    assert first + rest == expected


def test_uniform_stream_position_at_a_block_end_continues_with_the_next_block():
    expected = np.random.default_rng(9).random(200).tolist()
    stream = ql.UniformStream(np.random.default_rng(9), block=64)
    first = [next(stream.numbers) for _ in range(128)]  # exactly two blocks used up
    resumed = ql.UniformStream(np.random.default_rng(0), block=64, position=stream.position())
    assert first + [next(resumed.numbers) for _ in range(72)] == expected


# ---------------------------------------------------------------------------------------------------------------
# The exact model and scoring
# ---------------------------------------------------------------------------------------------------------------
def test_tabular_model_drops_transitions_into_termination_and_keeps_expected_rewards(tiny_model):
    T, R = tiny_model
    np.testing.assert_allclose(T[1, 0], [0.5, 0.0, 0.0])  # the terminating half leads nowhere
    np.testing.assert_allclose(T[2], np.zeros((2, 3)))  # the terminal state has no future
    np.testing.assert_allclose(R, [[0.0, 0.0], [0.5, 0.1], [0.0, 0.0]])


def test_value_iteration_finds_the_optimal_q_worked_out_by_hand(tiny_model):
    q_star = ql.value_iteration(*tiny_model, gamma=TINY_GAMMA)
    np.testing.assert_allclose(q_star, [[1 / 7, 2 / 7], [4 / 7, 0.1 + 2 / 7], [0.0, 0.0]], atol=1e-10)


def test_policy_value_solves_the_bellman_equation_of_a_fixed_policy(tiny_model):
    # π = (a1, a1): s1 collects 0.1 forever, V1 = 0.1/(1 − γ) = 0.2; V0 = γ·V1 = 0.1
    v = ql.policy_value(*tiny_model, np.array([1, 1, 0]), gamma=TINY_GAMMA)
    np.testing.assert_allclose(v, [0.1, 0.2, 0.0])


def test_absorption_value_gives_zero_where_the_policy_never_terminates(tiny_model):
    # π = (a0, a0): s0 stays forever → 0; s1 ends with reward 1 w.p. 1/2, else goes to s0 → 0.5
    np.testing.assert_allclose(ql.absorption_value(*tiny_model, np.array([0, 0, 0])), [0.0, 0.5, 0.0])


def test_absorption_value_is_one_when_the_policy_always_ends_rewarded(tiny_model):
    # π = (a1, a0): s0 → s1 → (end with reward 1, or back to s0): terminates surely, always with reward 1
    np.testing.assert_allclose(ql.absorption_value(*tiny_model, np.array([1, 0, 0])), [1.0, 1.0, 0.0])


@pytest.mark.parametrize("v_pi, v_star, expected", [(0.5, 1.0, 0.5), (1.0, 1.0, 1.0), (-15.0, -10.0, 0.5)])
def test_value_ratio_is_one_minus_regret_over_the_optimum(v_pi, v_star, expected):
    assert ql.value_ratio(v_pi, v_star) == pytest.approx(expected)


@pytest.fixture(scope="module")
def monte_carlo_4x4():
    """A fixed policy (the optimal one) on 4x4 slippery: its exact values and 4,000 sampled episodes."""
    env = gym.make("FrozenLake-v1", map_name="4x4", is_slippery=True, max_episode_steps=2_000)  # γ^2000 ≈ 0
    T, R = ql.tabular_model(env.unwrapped.P, 16, 4)
    gamma = 0.95
    policy = ql.value_iteration(T, R, gamma).argmax(axis=1)
    start = env.unwrapped.initial_state_distrib
    exact_value = start @ ql.policy_value(T, R, policy, gamma)
    exact_goal = start @ ql.absorption_value(T, R, policy)
    discounted, reached = [], []
    obs, _ = env.reset(seed=123)
    for _ in range(4_000):
        ret, discount = 0.0, 1.0
        while True:
            obs, reward, terminated, truncated, _ = env.step(int(policy[obs]))
            ret += discount * reward
            discount *= gamma
            if terminated or truncated:
                break
        discounted.append(ret)
        reached.append(reward > 0)
        obs, _ = env.reset()
    return exact_value, exact_goal, np.array(discounted), np.array(reached, dtype=float)


def test_exact_policy_value_agrees_with_monte_carlo_within_three_standard_errors(monte_carlo_4x4):
    exact_value, _, discounted, _ = monte_carlo_4x4
    assert abs(discounted.mean() - exact_value) < 3 * discounted.std(ddof=1) / np.sqrt(len(discounted))


def test_exact_goal_probability_agrees_with_monte_carlo_within_three_standard_errors(monte_carlo_4x4):
    _, exact_goal, _, reached = monte_carlo_4x4
    assert abs(reached.mean() - exact_goal) < 3 * reached.std(ddof=1) / np.sqrt(len(reached))


# ---------------------------------------------------------------------------------------------------------------
# Learning: default hyperparameters reach the optimum
# ---------------------------------------------------------------------------------------------------------------
# One process, one run at a time (CI has 2 cores and other tests). 10 seeds of 8x8 slippery with the README's
# 100,000 episodes take ~2.5 minutes alone, so the test keeps 2 of them; `python benchmarks/bench_qlearning.py`
# runs the full sweep, 10 seeds of every case, and prints V(π)/V* per seed.
SEEDS = range(1, 11)
EIGHT_BY_EIGHT_SEEDS = range(1, 3)
LEARNING_CASES = {
    "4x4 slippery": dict(map_name="4x4", is_slippery=True),
    "4x4 not slippery": dict(map_name="4x4", is_slippery=False),
    "Taxi-v4": dict(env_id="Taxi-v4"),
    "8x8 slippery, README flags": dict(map_name="8x8", is_slippery=True, total_episodes=100_000),  # as the README
}


def _learned_value_ratio(case: str, seed: int, runs_dir: str) -> float:
    with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet):
        result = ql.main(ql.Args(seed=seed, runs_dir=runs_dir, **LEARNING_CASES[case]))
    return result.evaluation.value_ratio


@pytest.mark.slow
@pytest.mark.parametrize("case", list(LEARNING_CASES))
def test_default_hyperparameters_learn_an_optimal_greedy_policy_for_every_seed(case, tmp_path):
    """V(π)/V* ≥ 0.99 for seeds 1..10 (8x8: seeds 1..2 here; all 10 in benchmarks/bench_qlearning.py)."""
    seeds = EIGHT_BY_EIGHT_SEEDS if "8x8" in case else SEEDS
    ratios = [_learned_value_ratio(case, seed, str(tmp_path)) for seed in seeds]
    assert min(ratios) >= 0.99, f"{case}: V(π)/V* per seed {np.round(ratios, 4).tolist()}"


# ---------------------------------------------------------------------------------------------------------------
# What a run writes
# ---------------------------------------------------------------------------------------------------------------
SMALL_RUN = dict(total_episodes=1_000, log_frequency=100, eval_frequency=500, seed=7)


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    runs_dir = tmp_path_factory.mktemp("runs")
    result = ql.main(ql.Args(runs_dir=str(runs_dir), save_model=True, capture_video=True, **SMALL_RUN))
    events = EventAccumulator(result.run_dir, size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    events.Reload()
    return result, events


def test_run_folder_is_named_like_cleanrl_under_the_given_runs_dir(small_run):
    result, _ = small_run
    env_id, exp_name, seed, stamp = Path(result.run_dir).name.split("__")
    assert (env_id, exp_name, seed, stamp.isdigit()) == ("FrozenLake-v1", "qlearning_frozenlake", "7", True)


@pytest.mark.parametrize(
    "tag", ["charts/episodic_return", "charts/episodic_length", "charts/success_rate", "charts/epsilon"]
)
def test_episode_charts_are_logged_every_log_frequency_episodes(small_run, tag):
    _, events = small_run
    assert [e.step for e in events.Scalars(tag)] == list(range(100, 1_001, 100))


def test_logged_epsilon_is_the_schedule_value_of_the_logged_episode(small_run):
    _, events = small_run
    # ε 1 → 0.1 over 500 episodes (half of 1,000): the 100th episode (index 99) has ε = 1 − 0.9·99/500 = 0.8218
    assert events.Scalars("charts/epsilon")[0].value == pytest.approx(0.8218, abs=1e-6)


def test_value_ratio_is_logged_at_start_every_eval_frequency_and_at_the_end(small_run):
    result, events = small_run
    logged = events.Scalars("eval/value_ratio")
    assert [e.step for e in logged] == [0, 500, 1_000]
    assert logged[-1].value == pytest.approx(result.evaluation.value_ratio, abs=1e-6)


def test_hyperparameters_are_logged_as_a_markdown_table_and_as_hparams(small_run):
    _, events = small_run
    text = events.Tensors("hyperparameters/text_summary")[0].tensor_proto.string_val[0].decode()
    assert "|total_episodes|1000|" in text and "|seed|7|" in text
    assert "_hparams_/experiment" in events.PluginTagToContent("hparams")


# 4x4 map: 4 cells of 72 px. Heatmap: 16 rows of min(22, 1200 // 16) = 22 px under a 24 px header; 40 px of
# state labels and 4 action columns of 64 px.
@pytest.mark.parametrize("name, shape", [("greedy_policy", (288, 288, 3)), ("q_table", (24 + 16 * 22, 40 + 4 * 64, 3))])
def test_pictures_are_logged_as_images_and_saved_as_png(small_run, name, shape):
    result, events = small_run
    image = events.Images(f"images/{name}")[-1]
    png = cv2.imread(os.path.join(result.run_dir, f"{name}.png"))
    assert (image.height, image.width) == shape[:2] and png.shape == shape


def test_save_model_writes_the_learned_q_table(small_run):
    result, _ = small_run
    np.testing.assert_array_equal(np.load(os.path.join(result.run_dir, "qlearning_frozenlake.npy")), result.q_table)


def test_capture_video_writes_an_mp4_of_greedy_episodes(small_run):
    result, _ = small_run
    video = cv2.VideoCapture(glob.glob(os.path.join(result.run_dir, "videos", "*.mp4"))[0])
    ok, frame = video.read()
    assert video.get(cv2.CAP_PROP_FRAME_COUNT) > 0 and ok and frame.shape == (288, 288, 3)


def test_the_same_seed_learns_the_same_q_table_and_another_seed_does_not(tmp_path):
    def q_table(seed):
        return ql.main(ql.Args(runs_dir=str(tmp_path), **{**SMALL_RUN, "seed": seed})).q_table

    first, again, other = q_table(3), q_table(3), q_table(4)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


# ---------------------------------------------------------------------------------------------------------------
# Checkpoints and --resume
# ---------------------------------------------------------------------------------------------------------------
RESUMABLE_RUN = dict(total_episodes=2_000, checkpoint_frequency=1_000, log_frequency=100, eval_frequency=500, seed=5)


class Killed(BaseException):
    """Stands for a kill (SIGKILL, power cut): nothing in the script catches it."""


def quiet_main(**flags) -> "ql.Result":
    with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet):
        return ql.main(ql.Args(**flags))


def ctrl_c_after_checkpoint(monkeypatch, at_episode: int, saved: list | None = None):
    """Make the checkpoint of `at_episode` press Ctrl-C right after it is written (and record every saved state)."""
    real_save = ql.save_checkpoint

    def save_then_ctrl_c(state, path):
        real_save(state, path)
        if saved is not None:
            saved.append(state)
        if state["episode"] == at_episode:
            signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(ql, "save_checkpoint", save_then_ctrl_c)


@pytest.fixture(scope="module")
def uninterrupted_run(tmp_path_factory):
    return quiet_main(runs_dir=str(tmp_path_factory.mktemp("uninterrupted")), **{**RESUMABLE_RUN, "checkpoint_frequency": 0})


def test_ctrl_c_stops_after_the_episode_and_leaves_a_checkpoint_of_it(tmp_path, monkeypatch, capsys):
    ctrl_c_after_checkpoint(monkeypatch, at_episode=1_000)
    result = ql.main(ql.Args(runs_dir=str(tmp_path), **RESUMABLE_RUN))
    checkpoint, _ = ql.load_checkpoint(result.run_dir)
    assert (result.episodes, checkpoint["episode"]) == (1_000, 1_000)
    np.testing.assert_array_equal(checkpoint["q_table"], result.q_table)
    out = capsys.readouterr().out
    assert "training stopped after episode 1,000 and nothing learned is lost" in out and f"--resume {result.run_dir}" in out
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handler is given back


def test_interrupted_and_resumed_run_learns_exactly_the_q_table_of_an_uninterrupted_run(tmp_path, monkeypatch,
                                                                                           uninterrupted_run):
    """Episodes are the boundaries of tabular Q-learning: at the end of one, the Q-table, the visit counts and three
    RNG states (the agent's, the env's, its action space's) are the whole state, so a resumed run must compute the
    same numbers, not merely similar ones."""
    ctrl_c_after_checkpoint(monkeypatch, at_episode=1_000)
    stopped = quiet_main(runs_dir=str(tmp_path), **RESUMABLE_RUN)
    monkeypatch.undo()
    resumed = quiet_main(resume=stopped.run_dir)
    assert (stopped.episodes, resumed.episodes, resumed.run_dir) == (1_000, 2_000, stopped.run_dir)
    assert resumed.steps == uninterrupted_run.steps
    np.testing.assert_array_equal(resumed.q_table, uninterrupted_run.q_table)


def test_a_resumed_run_restores_q_table_counts_statistics_and_every_rng_exactly(tmp_path, monkeypatch):
    """The resumed run's first checkpoint, one episode after the one it resumed from, equals the checkpoint an
    uninterrupted run writes at that episode, field by field: a Q-table, a count, a statistic or an RNG state
    (the agent's stream, the env's, its action space's) restored wrongly would show there."""
    ctrl_c_after_checkpoint(monkeypatch, at_episode=1_000)
    stopped = quiet_main(runs_dir=str(tmp_path / "a"), **RESUMABLE_RUN)
    resumed_states, uninterrupted_states = [], []
    ctrl_c_after_checkpoint(monkeypatch, at_episode=1_001, saved=resumed_states)
    quiet_main(resume=stopped.run_dir, checkpoint_frequency=1_001)
    ctrl_c_after_checkpoint(monkeypatch, at_episode=1_001, saved=uninterrupted_states)
    quiet_main(runs_dir=str(tmp_path / "b"), **{**RESUMABLE_RUN, "checkpoint_frequency": 1_001})
    resumed, uninterrupted = resumed_states[0], uninterrupted_states[0]
    assert resumed["episode"] == uninterrupted["episode"] == 1_001
    for key in ("q_table", "visits", "returns", "lengths", "successes", "global_step"):
        np.testing.assert_array_equal(resumed[key], uninterrupted[key], err_msg=key)
    assert json.loads(resumed["rng"]) == json.loads(uninterrupted["rng"])
    ignored = {"runs_dir": None, "resume": None}  # the two runs live in different folders; one was resumed
    assert {**json.loads(resumed["args"]), **ignored} == {**json.loads(uninterrupted["args"]), **ignored}


def test_a_kill_while_writing_a_checkpoint_leaves_the_previous_one_loadable(tmp_path, monkeypatch):
    real_savez = np.savez

    def half_a_file_then_killed(file, **arrays):
        if int(arrays["episode"]) < 1_000:
            return real_savez(file, **arrays)
        whole = io.BytesIO()
        real_savez(whole, **arrays)
        file.write(whole.getvalue()[: len(whole.getvalue()) // 2])
        raise Killed

    monkeypatch.setattr(ql.np, "savez", half_a_file_then_killed)
    with pytest.raises(Killed):
        quiet_main(runs_dir=str(tmp_path), **{**RESUMABLE_RUN, "checkpoint_frequency": 500})
    monkeypatch.undo()
    (run_dir,) = glob.glob(str(tmp_path / "*"))
    assert os.path.getsize(os.path.join(run_dir, "checkpoint.npz.tmp")) > 0  # the half-written file
    checkpoint, _ = ql.load_checkpoint(run_dir)
    assert checkpoint["episode"] == 500 and checkpoint["q_table"].shape == (16, 4)
    assert quiet_main(resume=run_dir).episodes == 2_000


def test_tensorboard_after_a_kill_and_resume_has_every_point_once_and_no_gap(tmp_path, monkeypatch, uninterrupted_run):
    """Killed at episode 1,250, after the points of 1,100 and 1,200 reached the disk, then resumed from the
    checkpoint of 1,000: TensorBoard must show the resumed run's points there, once each, every log interval."""
    writers = []

    class RecordedWriter(ql.SummaryWriter):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            writers.append(self)

    real_schedule = ql.linear_schedule

    def killed_at_1250(start_e, end_e, duration, t):
        if t == 1_250:
            writers[-1].flush()  # the worst case: everything logged after the checkpoint is on disk
            raise Killed
        return real_schedule(start_e, end_e, duration, t)

    monkeypatch.setattr(ql, "SummaryWriter", RecordedWriter)
    monkeypatch.setattr(ql, "linear_schedule", killed_at_1250)
    with pytest.raises(Killed):
        quiet_main(runs_dir=str(tmp_path), **RESUMABLE_RUN)
    writers[-1].close()
    monkeypatch.setattr(ql, "linear_schedule", real_schedule)
    (run_dir,) = glob.glob(str(tmp_path / "*"))
    resumed = quiet_main(resume=run_dir)
    np.testing.assert_array_equal(resumed.q_table, uninterrupted_run.q_table)

    def scalars(path):
        events = EventAccumulator(path, size_guidance={"scalars": 0})
        events.Reload()
        return {tag: events.Scalars(tag) for tag in events.Tags()["scalars"]}

    logged, reference = scalars(run_dir), scalars(uninterrupted_run.run_dir)
    assert set(logged) == set(reference)
    for tag, points in logged.items():
        steps = [p.step for p in points]
        interval = RESUMABLE_RUN["eval_frequency"] if tag.startswith("eval/") else RESUMABLE_RUN["log_frequency"]
        assert all(0 < b - a <= interval for a, b in zip(steps, steps[1:])), f"{tag}: {steps}"
        assert steps == [p.step for p in reference[tag]], tag
        if tag != "charts/SPS":  # a wall-clock rate
            assert [p.value for p in points] == [p.value for p in reference[tag]], tag


# ---------------------------------------------------------------------------------------------------------------
# Bad flags: one line, exit status 2, nothing written
# ---------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def finished_checkpoint(tmp_path_factory):
    """A run folder with a checkpoint at episode 200 (4x4 slippery, γ 0.95)."""
    return quiet_main(runs_dir=str(tmp_path_factory.mktemp("checkpointed")), total_episodes=200,
                      checkpoint_frequency=100).run_dir


def folder_fingerprint(path) -> dict:
    return {p: hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in sorted(glob.glob(f"{path}/**", recursive=True))
            if os.path.isfile(p)}


@pytest.mark.parametrize(
    "flags, expected",
    [
        (dict(total_episodes=0), "--total-episodes 0: must be a positive"),
        (dict(total_episodes=-5), "--total-episodes -5: must be a positive"),
        (dict(learning_rate=1.5), "--learning-rate 1.5: must be in (0, 1]"),
        (dict(learning_rate=0.0), "--learning-rate 0.0: must be in (0, 1]"),
        (dict(gamma=1.0), "--gamma 1.0: must be in [0, 1)"),
        (dict(gamma=-0.1), "--gamma -0.1: must be in [0, 1)"),
        (dict(end_e=0.5, start_e=0.1), "--end-e 0.5: larger than --start-e 0.1"),
        (dict(log_frequency=0), "--log-frequency 0: must be positive"),
        (dict(eval_frequency=-1), "--eval-frequency -1: must be positive"),
        (dict(checkpoint_frequency=-1), "--checkpoint-frequency -1: must be 0"),
        (dict(map_name="5x5"), "--map-name 5x5"),
        (dict(map_size=1), "--map-size 1: must be 0"),
        (dict(env_id="NoSuchEnv-v0"), "--env-id NoSuchEnv-v0: not a registered"),
        (dict(env_id="CartPole-v1"), "--env-id CartPole-v1: observation space"),
        (dict(resume="{tmp}/nowhere"), "--resume {tmp}/nowhere: no checkpoint there"),
        (dict(resume="{tmp}/corrupt.npz"), "--resume {tmp}/corrupt.npz: not a readable checkpoint"),
        (dict(resume="{run}", gamma=0.9), "--gamma 0.9: the checkpoint's run used 0.95"),
        (dict(resume="{run}", seed=2), "--seed 2: the checkpoint's run used 1"),
        (dict(resume="{run}", total_episodes=150), "--total-episodes 150: the checkpoint is at episode 200"),
    ],
)
def test_bad_flags_are_refused_with_one_line_naming_flag_and_value_and_nothing_written(
        tmp_path, capsys, finished_checkpoint, flags, expected):
    (tmp_path / "corrupt.npz").write_bytes(Path(finished_checkpoint, "checkpoint.npz").read_bytes()[:300])
    before, checkpoint_before = folder_fingerprint(tmp_path), folder_fingerprint(finished_checkpoint)
    flags = {k: v.format(tmp=tmp_path, run=finished_checkpoint) if isinstance(v, str) else v for k, v in flags.items()}
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        ql.main(ql.Args(runs_dir=str(tmp_path / "runs"), **flags))
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert err.count("\n") == 1 and err.startswith("error: " + expected.format(tmp=tmp_path, run=finished_checkpoint))
    assert folder_fingerprint(tmp_path) == before and folder_fingerprint(finished_checkpoint) == checkpoint_before


@pytest.mark.parametrize("argv, flag", [(["--gamma", "1.0"], "--gamma 1.0"), (["--env-id", "CartPole-v1"], "--env-id CartPole-v1"),
                                        (["--resume", "nowhere"], "--resume nowhere")])
def test_command_line_refuses_a_bad_flag_with_one_line_and_exit_status_2(tmp_path, argv, flag):
    done = subprocess.run([sys.executable, str(ROOT / "qlearning_frozenlake.py"), *argv], cwd=tmp_path,
                          capture_output=True, text=True)
    lines = done.stderr.strip().splitlines()
    assert (done.returncode, len(lines), lines[0].startswith(f"error: {flag}:")) == (2, 1, True)
    assert list(tmp_path.iterdir()) == []
