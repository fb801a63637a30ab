"""Specification of qlearning_frozenlake.py: the Q-learning pieces on a tiny MDP worked out by hand, exact scoring
against Monte-Carlo, learning to the optimum, what a run writes (against env steps), pictures that show the greedy
policy, the env's own map, how bad flags, faults and Ctrl-C end a run in one line, and --track."""

import contextlib
import glob
import hashlib
import importlib.util
import os
import re
import signal
import sys
from pathlib import Path

import cv2
import gymnasium as gym
import numpy as np
import pytest
from helpers import (hparams_layout, load_script, mounted_tmpfs, one_error_line, run_script, wandb_config_and_history,
                     wandb_offline_records)
from gymnasium.envs.toy_text.frozen_lake import generate_random_map
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import metadata

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


def quiet_main(**flags) -> "ql.Result":
    with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet):
        return ql.main(ql.Args(**flags))


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
    q_table = np.array([[0.0, 0.2], [0.6, -0.4]])
    ql.td_update(q_table, obs=0, action=1, reward=1.0, next_obs=1, terminated=terminated, alpha=0.5, gamma=0.5)
    np.testing.assert_allclose(q_table, [[0.0, expected], [0.6, -0.4]])


class StepRecorder(gym.Wrapper):
    """Keeps (terminated, truncated) of every env step."""

    def __init__(self, env):
        super().__init__(env)
        self.ends = []

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.ends.append((terminated, truncated))
        return obs, reward, terminated, truncated, info


def test_the_training_loop_stops_the_bootstrap_on_termination_only_never_on_truncation(monkeypatch, tmp_path):
    recorders, real_make_env, td_terminated = [], ql.make_env, []

    def recorded_env(args, **kwargs):
        recorders.append(StepRecorder(real_make_env(args, **kwargs)))
        return recorders[-1]

    def recorded_td_update(q_table, obs, action, reward, next_obs, terminated, alpha, gamma):
        td_terminated.append(terminated)

    monkeypatch.setattr(ql, "make_env", recorded_env)
    monkeypatch.setattr(ql, "td_update", recorded_td_update)
    # ε = 1 throughout on an 8x8 map without holes: random play often runs into the 100-step limit
    quiet_main(total_episodes=50, start_e=1.0, end_e=1.0, map_size=8, map_p=1.0, runs_dir=str(tmp_path))
    ends = recorders[0].ends
    assert sum(truncated for _, truncated in ends) > 0  # truncations happened
    assert td_terminated == [terminated for terminated, _ in ends]


@pytest.mark.parametrize("learning_rate, omega", [(0.5, 0.6), (0.1, 0.0)])  # ω = 0: a constant step size
def test_the_nth_update_of_a_state_action_pair_has_step_size_learning_rate_over_n_to_the_omega(monkeypatch, tmp_path,
                                                                                             learning_rate, omega):
    updates = []

    def recorded_td_update(q_table, obs, action, reward, next_obs, terminated, alpha, gamma):
        updates.append(((obs, action), alpha))

    monkeypatch.setattr(ql, "td_update", recorded_td_update)
    quiet_main(total_episodes=30, learning_rate=learning_rate, lr_decay_exponent=omega, runs_dir=str(tmp_path))
    visits, expected = {}, []
    for pair, _ in updates:  # the n-th update of (s, a) has α = α0 / n^ω
        visits[pair] = visits.get(pair, 0) + 1
        expected.append(learning_rate / visits[pair] ** omega)
    assert max(visits.values()) > 10  # some pair was updated often enough for α to have fallen
    assert [alpha for _, alpha in updates] == pytest.approx(expected)


class NeverExplores:
    """Stands for a numpy Generator whose ε coin never comes up (random() is 1) and whose choice() keeps the actions
    it is offered and picks the last."""

    def __init__(self):
        self.offered = []

    def random(self):
        return 1.0

    def choice(self, actions):
        self.offered.append(list(actions))
        return actions[-1]


def test_the_greedy_action_is_chosen_among_the_tied_best_actions_only():
    rng = NeverExplores()
    assert ql.epsilon_greedy_action(np.array([1.0, 3.0, 3.0, 0.5, 3.0]), 0.5, rng) == 4
    assert rng.offered == [[1, 2, 4]]  # the best value 3.0 is shared by actions 1, 2 and 4


def test_the_greedy_action_without_ties_is_the_argmax_for_every_seed():
    q_row = np.array([0.1, -2.0, 0.7, 0.3])
    assert {ql.epsilon_greedy_action(q_row, 0.0, np.random.default_rng(seed)) for seed in range(50)} == {2}


@pytest.mark.parametrize("q_row, tied", [(np.zeros(4), [0, 1, 2, 3]),  # an untrained row: every action
                                         (np.array([1.0, 3.0, 3.0, 0.5, 3.0]), [1, 2, 4])])
def test_the_greedy_action_breaks_ties_uniformly_with_a_seeded_generator(q_row, tied):
    rng, draws = np.random.default_rng(0), 30_000
    counts = np.bincount([ql.epsilon_greedy_action(q_row, 0.0, rng) for _ in range(draws)], minlength=len(q_row))
    # each tied count is binomial(30,000, 1/k): within 5 standard deviations √(30,000 · 1/k · (1 − 1/k)) of its mean
    mean, sd = draws / len(tied), np.sqrt(draws / len(tied) * (1 - 1 / len(tied)))
    assert np.all(np.abs(counts[tied] - mean) < 5 * sd) and counts.sum() == counts[tied].sum(), counts


def test_epsilon_greedy_takes_the_greedy_action_with_probability_one_minus_epsilon_plus_epsilon_over_n():
    rng, draws = np.random.default_rng(1), 40_000
    q_row = np.array([0.0, 1.0, 0.5, 0.2])
    counts = np.bincount([ql.epsilon_greedy_action(q_row, 0.2, rng) for _ in range(draws)], minlength=4)
    # ε = 0.2 over 4 actions: the greedy action 1 w.p. 0.8 + 0.2/4 = 0.85, each other action w.p. 0.05
    expected = draws * np.array([0.05, 0.85, 0.05, 0.05])
    assert np.all(np.abs(counts - expected) < 5 * np.sqrt(expected * (1 - expected / draws))), counts


def test_epsilon_greedy_with_epsilon_zero_never_explores():
    rng, q_row = np.random.default_rng(2), np.array([0.0, 1.0, 0.5, 0.2])
    assert {ql.epsilon_greedy_action(q_row, 0.0, rng) for _ in range(2_000)} == {1}


@pytest.mark.parametrize("t, expected", [(0, 1.0), (250, 0.7625), (500, 0.525), (1000, 0.05), (5000, 0.05)])
def test_epsilon_falls_linearly_then_stays_at_end_e(t, expected):
    # slope (0.05 − 1)/1000 = −0.00095 per episode: t = 250 → 1 − 0.2375 = 0.7625
    assert ql.linear_schedule(1.0, 0.05, 1000, t) == pytest.approx(expected)


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


@pytest.mark.parametrize("v_pi, expected", [(0.0, 1.0), (-0.5, float("-inf"))])
def test_value_ratio_when_the_optimum_is_zero_is_one_for_an_optimal_policy_and_minus_infinity_otherwise(v_pi, expected):
    # V* = 0: γ = 0 on FrozenLake (no reward one step from the start), or an env whose best is to score nothing
    assert ql.value_ratio(v_pi, 0.0) == expected


def test_exact_scorer_gives_the_optimal_q_table_a_ratio_of_one_on_the_slippery_map():
    scorer = ql.ExactScorer(ql.make_env(ql.Args()), gamma=0.95)
    # the linear solve of argmax Q* must give back value iteration's V*
    assert scorer.evaluate(scorer.q_star).value_ratio == pytest.approx(1.0, abs=1e-9)


def test_exact_scorer_on_ice_without_slipping_gives_the_shortest_path_its_value_and_a_wall_walker_nothing():
    scorer = ql.ExactScorer(ql.make_env(ql.Args(is_slippery=False)), gamma=0.95)
    # the optimal policy walks the 6 steps from S to G for sure: the reward 1 comes on the 6th step, V* = γ^5
    optimal = scorer.evaluate(scorer.q_star)
    assert (optimal.v_star, optimal.v_pi) == (pytest.approx(0.95**5), pytest.approx(0.95**5))
    assert (optimal.goal_probability, optimal.optimal_goal_probability) == (pytest.approx(1.0), pytest.approx(1.0))
    # always left (action 0): from S it walks into the wall forever, never reaching the goal
    left = scorer.evaluate(np.tile([1.0, 0.0, 0.0, 0.0], (16, 1)))
    assert (left.value_ratio, left.v_pi, left.goal_probability, left.optimal_goal_probability) == (0.0, 0.0, 0.0,
                                                                                                  pytest.approx(1.0))


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
# CI runs a few seeds of the cheap cases (the suite's time is bounded); `python benchmarks/bench_qlearning.py` runs
# 20 seeds of 4x4 and 8x8 slippery, a random 6x6 map, Taxi-v4 and CliffWalking-v1. Seed 1 of 4x4 slippery, the
# default run, is checked by test_docs.py: the README quotes its V(π)/V*, 1.000000.
LEARNING_CASES = {
    "4x4 slippery": (dict(), range(2, 4)),
    "4x4 not slippery": (dict(is_slippery=False), range(1, 4)),
    "Taxi-v4": (dict(env_id="Taxi-v4"), range(1, 2)),
    "CliffWalking-v1": (dict(env_id="CliffWalking-v1"), range(1, 3)),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(LEARNING_CASES))
def test_default_hyperparameters_learn_an_optimal_greedy_policy_for_every_seed(case, tmp_path):
    """V(π)/V* ≥ 0.99 for every seed tried here (20 seeds of each case in benchmarks/bench_qlearning.py)."""
    flags, seeds = LEARNING_CASES[case]
    ratios = [quiet_main(seed=seed, runs_dir=str(tmp_path), **flags).evaluation.value_ratio for seed in seeds]
    assert min(ratios) >= 0.99, f"{case}: V(π)/V* per seed {np.round(ratios, 4).tolist()}"


class StopBeforeTheRun(Exception):
    pass


@pytest.mark.parametrize("flags, episodes", [(dict(), 1_250 * 16), (dict(map_name="8x8"), 1_250 * 64),
                                             (dict(map_size=6), 1_250 * 36), (dict(env_id="Taxi-v4"), 20 * 500),
                                             (dict(env_id="CliffWalking-v1"), 20 * 48),
                                             (dict(env_id="Taxi-v4", total_episodes=7), 7)])
def test_unset_total_episodes_are_1250_per_state_on_frozenlake_and_20_per_state_elsewhere(monkeypatch, flags,
                                                                                          episodes):
    def stop(args, env):  # open_run is the first thing after the run's length is set
        raise StopBeforeTheRun(args.total_episodes)

    monkeypatch.setattr(ql, "open_run", stop)
    with pytest.raises(StopBeforeTheRun) as stopped:
        ql.train(ql.Args(**flags))
    assert stopped.value.args == (episodes,)


# ---------------------------------------------------------------------------------------------------------------
# What a run writes
# ---------------------------------------------------------------------------------------------------------------
SMALL_RUN = dict(total_episodes=1_000, log_frequency=100, eval_frequency=500, seed=7)


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    runs_dir = tmp_path_factory.mktemp("runs")
    result = quiet_main(runs_dir=str(runs_dir), save_model=True, capture_video=True, **SMALL_RUN)
    events = EventAccumulator(result.run_dir, size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    events.Reload()
    return result, events


def test_run_folder_is_named_like_cleanrl_under_the_given_runs_dir(small_run):
    result, _ = small_run
    env_id, exp_name, seed, stamp = Path(result.run_dir).name.split("__")
    assert (env_id, exp_name, seed, stamp.isdigit()) == ("FrozenLake-v1-4x4", "qlearning_frozenlake", "7", True)


# Two FrozenLake runs must be told apart in a chart's legend, which cuts the name off after the env: it names the map
@pytest.mark.parametrize("flags, env_part", [(dict(), "FrozenLake-v1-4x4"), (dict(map_name="8x8"), "FrozenLake-v1-8x8"),
                                             (dict(env_id="FrozenLake8x8-v1"), "FrozenLake8x8-v1-8x8"),
                                             (dict(env_id="FrozenLake8x8-v1", map_name="4x4"), "FrozenLake8x8-v1-4x4"),
                                             (dict(map_size=6, map_seed=3), "FrozenLake-v1-random6x6"),
                                             (dict(env_id="Taxi-v4", map_name="8x8"), "Taxi-v4")])
def test_the_default_run_name_of_frozenlake_names_the_map_it_plays(monkeypatch, flags, env_part):
    monkeypatch.setattr(ql.time, "time", lambda: 1_700_000_000.25)
    assert ql.default_run_name(ql.Args(seed=2, **flags)) == f"{env_part}__qlearning_frozenlake__2__1700000000"


def logged_steps(events, tag) -> list[int]:
    return [e.step for e in events.Scalars(tag)]


def episode_ends(events) -> list[int]:
    """The env step at which every 100th episode ended, from the logged mean lengths: 100 episodes of mean length
    L take 100 · L steps, so the k-th log point is at 100 · (L1 + ... + Lk)."""
    return np.cumsum([round(100 * e.value) for e in events.Scalars("charts/episodic_length")]).tolist()


@pytest.mark.parametrize("tag", ["charts/episodic_return", "charts/episodic_length", "charts/SPS", "charts/episodes"])
def test_episode_charts_are_logged_every_log_frequency_episodes_at_the_env_step_the_last_one_ended(small_run, tag):
    result, events = small_run
    assert logged_steps(events, tag) == episode_ends(events)
    assert episode_ends(events)[-1] == result.steps  # the 1,000th episode ended at the run's last step


def test_frozenlake_logs_no_success_rate_beside_the_return_that_is_the_same_curve(small_run):
    _, events = small_run
    tags = events.Tags()["scalars"]
    assert "charts/episodic_return" in tags and "charts/success_rate" not in tags


@pytest.fixture(scope="module")
def taxi_run(tmp_path_factory):
    """Taxi after 1,000 episodes, with a video of 3 greedy episodes (ANSI frames)."""
    result = quiet_main(env_id="Taxi-v4", total_episodes=1000, capture_video=True, seed=1,
                        runs_dir=str(tmp_path_factory.mktemp("runs")))
    events = EventAccumulator(result.run_dir, size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    return result, events


def test_where_success_differs_from_the_return_the_success_rate_is_logged_every_log_frequency_episodes(taxi_run):
    _, events = taxi_run  # Taxi: a step costs -1, a delivery pays 20; success: the delivery that ends the episode
    assert logged_steps(events, "charts/success_rate") == logged_steps(events, "charts/episodic_return")
    assert len(events.Scalars("charts/success_rate")) == 10


def test_the_episode_count_is_a_chart_of_its_own(small_run):
    _, events = small_run
    assert [e.value for e in events.Scalars("charts/episodes")] == list(range(100, 1_001, 100))


def test_epsilon_starts_at_start_e_at_step_0_then_is_the_schedule_value_of_each_logged_episode(small_run):
    _, events = small_run
    logged = events.Scalars("charts/epsilon")
    assert [e.step for e in logged] == [0] + episode_ends(events)
    # ε 1 → 0 over 650 episodes (65% of 1,000): the 100th episode (index 99) has ε = 1 − 99/650
    assert (logged[0].value, logged[1].value) == (1.0, pytest.approx(1 - 99 / 650, abs=1e-6))


def test_logged_episodic_length_is_the_mean_over_the_last_log_frequency_episodes(small_run):
    result, events = small_run
    # every env step belongs to one episode: the ten logged means of 100 episodes add up to steps / 100
    total = sum(e.value for e in events.Scalars("charts/episodic_length"))
    assert total == pytest.approx(result.steps / 100, rel=1e-6)


@pytest.mark.parametrize("tag", ["eval/value_ratio", "eval/goal_probability"])
def test_exact_scores_are_logged_at_step_0_every_eval_frequency_episodes_and_once_at_the_end(small_run, tag):
    result, events = small_run
    logged = events.Scalars(tag)
    ends = episode_ends(events)  # the 500th and 1,000th episodes ended at ends[4] and ends[9]
    assert [e.step for e in logged] == [0, ends[4], ends[9]]
    final = {"eval/value_ratio": result.evaluation.value_ratio,
             "eval/goal_probability": result.evaluation.goal_probability}
    assert logged[-1].value == pytest.approx(final[tag], abs=1e-6)


def test_every_flag_is_in_the_hyperparameters_text_table(small_run):
    _, events = small_run
    text = events.Tensors("hyperparameters/text_summary")[0].tensor_proto.string_val[0].decode()
    assert "|total_episodes|1000|" in text and "|seed|7|" in text and "|capture_video|True|" in text


def test_hparams_session_holds_the_learning_hyperparameters_and_the_env_as_played(small_run):
    _, events = small_run
    content = events.PluginTagToContent("hparams")
    session = metadata.parse_session_start_info_plugin_data(content["_hparams_/session_start_info"])
    hparams = {name: value.string_value or value.number_value for name, value in session.hparams.items()}
    assert hparams == {"exp_name": "qlearning_frozenlake", "env_id": "FrozenLake-v1", "seed": 7,
                       "total_episodes": 1_000, "learning_rate": 1.0, "lr_decay_exponent": 0.6, "gamma": 0.95,
                       "start_e": 1.0, "end_e": 0.0, "exploration_fraction": 0.65,
                       "env": "FrozenLake-v1 (map 4x4, slippery)"}


def test_the_hparams_layout_is_the_three_scripts_one_with_the_results_ticked_first(small_run):
    # TensorBoard takes the first layout it finds in runs/: if the scripts' layouts differed, a folder that mixes
    # their runs would hide some scripts' flags. It ticks the first five metrics, and the five columns that "differ".
    result, events = small_run
    scripts = (ql, load_script("dqn_atari"), load_script("double_dqn_atari"))
    assert len({(script.HPARAMS_COLUMNS, script.HPARAMS_METRICS) for script in scripts}) == 1
    columns, ticked, metrics = hparams_layout(events)
    assert (columns, metrics) == (list(ql.HPARAMS_COLUMNS), list(ql.HPARAMS_METRICS))
    assert metrics[:5] == ["eval/episodic_return", "eval/value_ratio", "eval/goal_probability", "eval/q_estimate",
                           "eval/discounted_return"]
    assert ticked == ["exp_name", "env_id", "env", "seed", "learning_rate"]
    assert "_hparams_/session_end_info" in events.PluginTagToContent("hparams")
    assert events.Scalars("eval/value_ratio")[-1].step == result.steps  # the metric's last value: the final score


# 4x4 map: 4 cells of 72 px over two legend strips of 26 px, the policy and the Q-table alike
@pytest.mark.parametrize("name", ["greedy_policy", "q_table"])
def test_pictures_are_logged_as_images_at_the_last_step_and_saved_as_png(small_run, name):
    result, events = small_run
    image = events.Images(f"images/{name}")[-1]
    png = cv2.imread(os.path.join(result.run_dir, f"{name}.png"))
    assert (image.step, image.height, image.width) == (result.steps, 288 + 2 * 26, 288)
    assert png.shape == (288 + 2 * 26, 288, 3)


# Taxi's 500 states: 20 maps of 5 × 5 cells of 12 px (panels of 64 px) right of 56 px of labels, under 20 px of
# labels, over a 26 px colour bar; no Q-table picture (3,000 values)
def test_taxi_has_its_greedy_policy_as_20_maps_that_fit_a_card_and_no_q_table_picture(taxi_run):
    result, events = taxi_run
    image = events.Images("images/greedy_policy")[-1]
    assert (image.height, image.width) == (20 + 5 * 64 + 26, 56 + 4 * 64) and image.width <= 320
    assert "images/q_table" not in events.Tags()["images"]


# TensorBoard's image cards are at least 335 px wide, 303 px inside: a picture about 320 px wide is shown at its size
@pytest.mark.parametrize("flags, cell", [(dict(), 72), (dict(map_name="8x8"), 40), (dict(map_size=6), 53),
                                         (dict(env_id="CliffWalking-v1"), 26)])
@pytest.mark.parametrize("q_values", [False, True])
def test_map_pictures_fit_a_tensorboard_card_with_cells_of_at_most_72_px(flags, cell, q_values):
    cells, moves = ql.grid_layout(ql.make_env(ql.Args(**flags)))
    q_table = q_table_greedy_on(np.zeros(len(cells) * len(cells[0]), int), 4)
    img = ql.draw_policy_map(cells, moves, q_table, q_values=q_values)
    assert img.shape == (len(cells) * cell + 2 * 26, len(cells[0]) * cell, 3) and img.shape[1] <= 320


def test_save_model_writes_the_learned_q_table(small_run):
    result, _ = small_run
    np.testing.assert_array_equal(np.load(os.path.join(result.run_dir, "qlearning_frozenlake.npy")), result.q_table)


def test_capture_video_writes_an_mp4_of_greedy_episodes(small_run):
    result, _ = small_run
    video = cv2.VideoCapture(glob.glob(os.path.join(result.run_dir, "videos", "*.mp4"))[0])
    ok, frame = video.read()
    assert video.get(cv2.CAP_PROP_FRAME_COUNT) > 0 and ok and frame.shape == (24 + 288 + 2 * 26, 288, 3)  # 24: caption
    assert int(video.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little") == b"VP90"  # VP9: browsers play it (mp4v: no)


@pytest.mark.parametrize("run", ["small_run", "taxi_run"])
def test_capture_video_shows_every_frame_of_the_greedy_episodes_in_tensorboard_as_an_animated_gif(run, request):
    result, events = request.getfixturevalue(run)
    video = cv2.VideoCapture(os.path.join(result.run_dir, "videos", "greedy.mp4"))
    (image,) = events.Images("videos/greedy")
    ok, animation = cv2.imdecodeanimation(np.frombuffer(image.encoded_image_string, np.uint8))
    assert image.encoded_image_string[:6] == b"GIF89a" and image.step == result.steps
    assert ok and len(animation.frames) == video.get(cv2.CAP_PROP_FRAME_COUNT)
    assert animation.frames[0].shape[:2] == (image.height, image.width) == (video.get(cv2.CAP_PROP_FRAME_HEIGHT),
                                                                             video.get(cv2.CAP_PROP_FRAME_WIDTH))


class TextRecorder:
    """Stands for cv2.putText: draws, and keeps every text drawn."""

    def __init__(self):
        self.texts, self.draw = [], cv2.putText

    def __call__(self, img, text, *args, **kwargs):
        self.texts.append(text)
        return self.draw(img, text, *args, **kwargs)


# 4x4 without slipping: argmax Q* walks the 6 steps to the goal; always left walks into the wall until the time limit
# (100 steps, made 40 here: 3 × 41 frames are quicker to encode, and more than a cap of 100 frames would keep)
@pytest.mark.parametrize("policy, steps, end", [("optimal", 6, "terminated, return 1"),
                                                ("left", 40, "time limit, return 0")])
def test_the_video_captions_each_frame_with_its_episode_and_step_and_holds_each_episodes_end_two_seconds(
        tmp_path, monkeypatch, policy, steps, end):
    args, make_env = ql.Args(is_slippery=False), ql.make_env
    optimal_q = ql.ExactScorer(make_env(args), args.gamma).q_star
    q_table = optimal_q if policy == "optimal" else np.tile([1.0, 0.0, 0.0, 0.0], (16, 1))
    monkeypatch.setattr(ql, "make_env", lambda *argv, **kwargs: gym.wrappers.TimeLimit(make_env(*argv, **kwargs), 40))
    recorder = TextRecorder()
    monkeypatch.setattr(ql.cv2, "putText", recorder)
    with ql.SummaryWriter(str(tmp_path)) as writer:
        ql.record_video(args, q_table, writer, str(tmp_path / "greedy.mp4"), 0)
    captions = [text for text in recorder.texts if text.startswith("episode ")]
    assert captions == [f"episode {episode} of 3, step {t}" + (f": {end}" if t == steps else "")
                        for episode in (1, 2, 3) for t in range(steps + 1)]
    events = EventAccumulator(str(tmp_path), size_guidance={"images": 0})
    events.Reload()
    gif = events.Images("videos/greedy")[0].encoded_image_string
    ok, animation = cv2.imdecodeanimation(np.frombuffer(gif, np.uint8))
    assert ok and list(animation.durations) == ([250] * steps + [2000]) * 3  # 4 frames a second; an episode's end 2 s


def test_the_same_seed_learns_the_same_q_table_and_another_seed_does_not(tmp_path):
    def q_table(seed):
        return quiet_main(runs_dir=str(tmp_path), **{**SMALL_RUN, "seed": seed}).q_table

    first, again, other = q_table(3), q_table(3), q_table(4)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


# ---------------------------------------------------------------------------------------------------------------
# The pictures show the greedy policy
# ---------------------------------------------------------------------------------------------------------------
# The way each action moves, (dx, dy) with y down, from gymnasium's documentation of each env
DIRECTIONS = {
    "FrozenLake-v1": {0: (-1, 0), 1: (0, 1), 2: (1, 0), 3: (0, -1)},  # left, down, right, up
    "CliffWalking-v1": {0: (0, -1), 1: (1, 0), 2: (0, 1), 3: (-1, 0)},  # up, right, down, left
}


def q_table_greedy_on(greedy: np.ndarray, n_actions: int) -> np.ndarray:
    """A Q-table whose row s has its maximum (1 + s/100, so the cells' shades differ) in column greedy[s]."""
    q_table = np.random.default_rng(0).uniform(0.0, 0.9, (len(greedy), n_actions))
    q_table[np.arange(len(greedy)), greedy] = 1 + np.arange(len(greedy)) / 100
    return q_table


@pytest.mark.parametrize("env_id", list(DIRECTIONS))
def test_policy_map_draws_each_cells_arrow_from_its_centre_the_way_its_greedy_action_moves(env_id):
    cells, moves = ql.grid_layout(ql.make_env(ql.Args(env_id=env_id)))
    n_rows, n_cols, cell = len(cells), len(cells[0]), 72
    greedy = np.arange(n_rows * n_cols) % 4  # every action appears, in every row of the map
    img = ql.draw_policy_map(cells, moves, q_table_greedy_on(greedy, 4), cell=cell).astype(int)
    checked = 0
    for s in range(n_rows * n_cols):
        if cells[s // n_cols][s % n_cols] in "HGC":  # terminal cells and the cliff have no arrow
            continue
        x, y = (s % n_cols) * cell + cell // 2, (s // n_cols) * cell + cell // 2
        background = img[y + cell // 3, x - cell // 3]  # bottom left of the cell: no letter, no arrow
        for action, (dx, dy) in DIRECTIONS[env_id].items():
            # pixels 8 to 22 px from the centre along the action's direction: all ink for the greedy action, none else
            differs = [np.abs(img[y + d * dy, x + d * dx] - background).sum() > 100 for d in range(8, 23)]
            assert all(differs) if action == greedy[s] else not any(differs), (env_id, s, action)
        checked += 1
    assert checked == {"FrozenLake-v1": 11, "CliffWalking-v1": 37}[env_id]  # 16 − 4 holes − goal; 48 − 10 cliff − goal


def taxi_cell(s: int) -> tuple[int, int]:
    """The top-left pixel (x, y) of Taxi state s's cell in draw_taxi_policy's picture."""
    row, col, passenger, destination = np.unravel_index(s, (5, 5, 5, 4))  # gymnasium's Taxi encode()
    return 56 + 64 * destination + 12 * col, 20 + 64 * passenger + 12 * row


def test_taxi_picture_shades_each_cell_by_max_q_and_marks_its_greedy_action_unless_all_are_equal(monkeypatch):
    recorder = TextRecorder()
    monkeypatch.setattr(ql.cv2, "putText", recorder)
    q_table = q_table_greedy_on(np.arange(500) % 6, 6)
    q_table[::7] = 0.5  # rows of equal values: no mark
    img, shades = ql.draw_taxi_policy(q_table, gym.make("Taxi-v4").unwrapped.locs), ql.viridis(q_table.max(axis=1))
    moves = [(0, 1), (0, -1), (1, 0), (-1, 0)]  # south, north, east, west
    for s in range(500):
        x, y = taxi_cell(s)
        cell = img[y:y + 11, x:x + 11].astype(int)
        assert cell[0, 0].tolist() == shades[s].tolist(), s  # a corner: no mark reaches it
        ink = np.argwhere(np.abs(cell - shades[s]).sum(axis=2) > 100)  # (y, x) of the mark's pixels
        if s % 7 == 0:
            assert len(ink) == 0, s
        elif s % 6 < 4:  # an arrow, its head at the end it points to: its ink leans that way from the centre
            lean = np.sign(np.round(ink.mean(axis=0)[::-1] - 5, 1)).astype(int).tolist()
            assert lean == list(moves[s % 6]), s
    marked = [s for s in range(500) if s % 7 and s % 6 >= 4]
    texts = [text for text in recorder.texts if text in ("P", "D")]  # drawn map by map, row by row, cell by cell
    assert texts == ["PD"[s % 6 - 4] for s in sorted(marked, key=lambda s: (s // 4 % 5, s % 4, s // 100, s // 20 % 5))]


def test_taxi_picture_outlines_the_passengers_place_blue_and_the_destination_magenta():
    env = gym.make("Taxi-v4").unwrapped
    img = ql.draw_taxi_policy(np.zeros((500, 6)), env.locs)
    for passenger, destination in [(0, 1), (2, 3), (3, 0), (4, 2)]:  # 4: in the taxi, not on the map
        for place, (row, col) in enumerate(env.locs):
            x, y = taxi_cell(env.encode(row, col, passenger, destination))
            colour = {passenger: [255, 80, 0], destination: [200, 0, 200]}.get(place, [255, 255, 255])  # BGR
            assert img[y + 5, x - 1].tolist() == colour, (passenger, destination, place)  # the outline's left side


@pytest.mark.parametrize("env_id, legend", [("FrozenLake-v1", ["H", "G"]), ("CliffWalking-v1", ["C", "G"])])
def test_policy_map_legend_shows_each_unshaded_cells_colour_under_the_map(env_id, legend):
    cells, moves = ql.grid_layout(ql.make_env(ql.Args(env_id=env_id)))
    img = ql.draw_policy_map(cells, moves, q_table_greedy_on(np.zeros(len(cells) * len(cells[0]), int), 4))
    cell = img.shape[1] // len(cells[0])
    swatch_centres = img[len(cells) * cell + 13, [4 + 80 * i + 9 for i in range(len(legend))]]
    assert swatch_centres.tolist() == [list(ql.CELLS[letter][1]) for letter in legend]


@pytest.mark.parametrize("env_id", list(DIRECTIONS))
def test_q_table_picture_shades_the_triangle_toward_each_actions_move_by_its_q_and_outlines_argmax_in_red(env_id):
    cells, moves = ql.grid_layout(ql.make_env(ql.Args(env_id=env_id)))
    n_cols, cell = len(cells[0]), 72
    q_table = q_table_greedy_on(np.arange(len(cells) * n_cols) % 4, 4)
    q_table[0] = 0.5  # a row of equal values: no argmax to outline
    img, shades = ql.draw_policy_map(cells, moves, q_table, cell=cell, q_values=True), ql.viridis(q_table)
    checked = 0
    for s in range(len(cells) * n_cols):
        if cells[s // n_cols][s % n_cols] in "HGC":  # terminal cells and the cliff: their own colour
            continue
        x, y = (s % n_cols) * cell + cell // 2, (s // n_cols) * cell + cell // 2
        for action, (dx, dy) in DIRECTIONS[env_id].items():
            # 32 px from the centre toward the move: inside the triangle, beyond its label; 35 px: its outer side
            assert img[y + 32 * dy, x + 32 * dx].tolist() == shades[s, action].tolist(), (env_id, s, action)
            red = img[y + 35 * dy, x + 35 * dx].tolist() == [0, 0, 255]
            assert red == (s > 0 and action == q_table[s].argmax()), (env_id, s, action)
        checked += 1
    assert checked == {"FrozenLake-v1": 11, "CliffWalking-v1": 37}[env_id]


def test_pictures_write_every_value_with_two_decimals(monkeypatch):
    recorder = TextRecorder()
    monkeypatch.setattr(ql.cv2, "putText", recorder)
    cells, moves = ql.grid_layout(ql.make_env(ql.Args()))
    q_table = np.tile([2.91e-05, 0.000247, 0.0417, 0.5], (16, 1)) * np.linspace(1, 1.5, 16)[:, None]
    ql.draw_policy_map(cells, moves, q_table, q_values=True)
    ql.draw_policy_map(cells, moves, q_table)
    ql.draw_taxi_policy(np.resize(q_table, (500, 6)), gym.make("Taxi-v4").unwrapped.locs)
    # every text with a digit; a colour bar's low end is "label: value"
    values = [text.split(": ")[-1] for text in recorder.texts if re.search(r"\d", text)]
    assert len(values) == 11 * 4 + 2 + 2 + 2  # the 4x4 map's 11 cells that are not H or G; three colour bars
    assert all(re.fullmatch(r"\d\.\d\d", value) for value in values), values


# ---------------------------------------------------------------------------------------------------------------
# The map played is the env's own unless one is asked for
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "flags, shape, max_steps",
    [
        (dict(), (4, 4), 100),
        (dict(env_id="FrozenLake8x8-v1"), (8, 8), 200),  # was the 4x4 map: --map-name 4x4 used to be passed always
        (dict(map_name="8x8"), (8, 8), 100),
        (dict(env_id="FrozenLake8x8-v1", map_name="4x4"), (4, 4), 200),
        (dict(map_size=6, map_seed=3), (6, 6), 100),
    ],
)
def test_frozenlake_plays_its_own_map_unless_a_map_is_asked_for(flags, shape, max_steps):
    env = ql.make_env(ql.Args(**flags))
    assert (env.unwrapped.desc.shape, env.spec.max_episode_steps) == (shape, max_steps)


def test_frozenlake8x8_run_learns_a_64_state_table_and_its_summary_names_the_8x8_map(tmp_path, capsys):
    result = ql.main(ql.Args(env_id="FrozenLake8x8-v1", total_episodes=200, runs_dir=str(tmp_path)))
    summary = capsys.readouterr().out
    assert result.q_table.shape == (64, 4)
    assert "FrozenLake8x8-v1 (map 8x8, slippery)" in summary and "4x4" not in summary


@pytest.mark.parametrize("size, p, seed", [(4, 0.8, 0), (6, 0.8, 3), (8, 0.5, 1), (10, 0.6, 12)])
def test_random_maps_are_those_of_gymnasiums_generate_random_map(size, p, seed):
    assert ql.random_map(size, p, seed) == generate_random_map(size, p, seed)


# ---------------------------------------------------------------------------------------------------------------
# Bad flags: one line, exit status 2, nothing written
# ---------------------------------------------------------------------------------------------------------------
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
        (dict(lr_decay_exponent=1.5), "--lr-decay-exponent 1.5: must be in [0, 1]"),
        (dict(gamma=1.0), "--gamma 1.0: must be in [0, 1)"),
        (dict(gamma=-0.1), "--gamma -0.1: must be in [0, 1)"),
        (dict(end_e=0.5, start_e=0.1), "--end-e 0.5: must be in [0, --start-e 0.1]"),
        (dict(exploration_fraction=0.0), "--exploration-fraction 0.0: must be in (0, 1]"),
        (dict(log_frequency=0), "--log-frequency 0: must be positive"),
        (dict(eval_frequency=-1), "--eval-frequency -1: must be positive"),
        (dict(map_name="5x5"), '--map-name 5x5: must be "4x4" or "8x8"'),
        (dict(map_size=1), "--map-size 1: must be 0"),
        (dict(map_p=0.0), "--map-p 0.0: must be in (0, 1]"),
        (dict(env_id="NoSuchEnv-v0"), "--env-id NoSuchEnv-v0: gymnasium cannot make it: Environment `NoSuch"),
        # an old version is deprecated, not unknown: gymnasium names the one to use; no version at all is refused
        (dict(env_id="Taxi-v3"), "--env-id Taxi-v3: gymnasium cannot make it: Environment version v3 for `Taxi` is "
                                 "deprecated. Please use `Taxi-v4` instead."),
        (dict(env_id="CliffWalking-v0"), "--env-id CliffWalking-v0: gymnasium cannot make it: Environment version v0 "
                                         "for `CliffWalking` is deprecated. Please use `CliffWalking-v1` instead."),
        (dict(env_id="FrozenLake8x8-v0"), "--env-id FrozenLake8x8-v0: gymnasium cannot make it: Environment vers"),
        (dict(env_id="Taxi"), "--env-id Taxi: name the version; gymnasium would play Taxi-v4"),
        (dict(env_id="CartPole-v1"), "--env-id CartPole-v1: observation and action spaces"),
        # NaN and infinity fail every range
        (dict(gamma=float("nan")), "--gamma nan: must be in [0, 1)"),
        (dict(start_e=float("nan")), "--start-e nan: must be in [0, 1]"),
        (dict(end_e=float("nan")), "--end-e nan: must be in [0, --start-e 1.0]"),
        (dict(learning_rate=float("inf")), "--learning-rate inf: must be in (0, 1]"),
        (dict(lr_decay_exponent=float("-inf")), "--lr-decay-exponent -inf: must be in [0, 1]"),
        (dict(exploration_fraction=float("nan")), "--exploration-fraction nan: must be in (0, 1]"),
        (dict(map_p=float("inf")), "--map-p inf: must be in (0, 1]"),
        # seeds in numpy's range; sizes that fit in memory; a random map that exists
        (dict(seed=-1), "--seed -1: must be in [0, 2**32): numpy's seed range"),
        (dict(seed=2**32), "--seed 4294967296: must be in [0, 2**32)"),
        (dict(map_seed=-1), "--map-seed -1: must be in [0, 2**32)"),
        (dict(map_size=1000), "--map-size 1000: exact scoring on that map needs 52,154.1 GiB"),  # 8 · 1000⁴ · 7 B
        (dict(map_size=8, map_p=0.01), "--map-p 0.01: no 8x8 map with a path from S to G in 10,000 draws"),
        (dict(run_name="a/b"), "--run-name a/b: must be a folder name: not '', '.' or '..', no '/'"),
        (dict(run_name=".."), "--run-name ..: must be a folder name"),
        # names are checked before anything runs: a bad --exp-name used to lose the Q-table after training
        (dict(exp_name="a/b", save_model=True, total_episodes=10), "--exp-name a/b: must be a file name"),
        (dict(exp_name="", save_model=True, total_episodes=10), "--exp-name : must be a file name"),
        (dict(exp_name="..", save_model=True, total_episodes=10), "--exp-name ..: must be a file name"),
        # file systems allow 255 bytes in a name: the default run folder's name holds --exp-name
        (dict(run_name="x" * 300), f"--run-name {'x' * 300}: must be a folder name: not '', '.' or '..', no '/', at "
                                   "most 255 bytes"),
        (dict(exp_name="x" * 240), f"--exp-name {'x' * 240}: must be a file name (not '', '.' or '..', no '/') short "
                                   "enough for the run folder's default name (255 B)"),
    ],
)
def test_bad_flags_are_refused_with_one_line_naming_flag_and_value_and_nothing_written(tmp_path, capsys, flags,
                                                                                       expected):
    before = folder_fingerprint(tmp_path)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        ql.main(ql.Args(runs_dir=str(tmp_path / "runs"), **flags))
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert err.count("\n") == 1 and err.startswith("error: " + expected)
    assert folder_fingerprint(tmp_path) == before


@pytest.mark.skipif(importlib.util.find_spec("jax") is not None, reason="with jax installed the env can be made")
def test_a_registered_env_that_needs_a_missing_package_is_refused_with_one_line_naming_it(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        ql.main(ql.Args(env_id="tabular/CliffWalking-v0", runs_dir=str(tmp_path / "runs")))
    message = "error: --env-id tabular/CliffWalking-v0: gymnasium cannot make it: No module named 'jax'\n"
    assert (exit_.value.code, capsys.readouterr().err) == (2, message)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("runs_dir", ["a_file", "a_file/runs", ""])
def test_a_runs_dir_that_cannot_be_a_folder_is_refused_before_anything_runs(tmp_path, capsys, monkeypatch, runs_dir):
    monkeypatch.chdir(tmp_path)
    Path("a_file").write_text("not a folder")
    with pytest.raises(SystemExit) as exit_:
        ql.main(ql.Args(runs_dir=runs_dir, total_episodes=10))
    message = f"error: --runs-dir {runs_dir}: must name a folder, or where one can be made\n"
    assert (exit_.value.code, capsys.readouterr().err) == (2, message)
    assert os.listdir(tmp_path) == ["a_file"]


SCRIPT = "qlearning_frozenlake.py"


# What only the command line shows (the in-process cases above check each message): the exit status, and that
# gymnasium's warning lines on Taxi-v3 and Taxi are not printed beside the one error line. runs/taken exists before.
@pytest.mark.parametrize("argv", [["--seed", "-1"], ["--env-id", "Taxi-v3"], ["--env-id", "Taxi"]])
def test_command_line_refuses_a_bad_flag_with_one_line_exit_status_2_and_no_new_run_folder(tmp_path, argv):
    (tmp_path / "runs" / "taken").mkdir(parents=True)
    done = run_script(SCRIPT, tmp_path, *argv)
    assert done.returncode == 2  # the line names the last flag
    assert one_error_line(done.stderr).startswith(f"error: {argv[-2]} {argv[-1]}: ")
    assert os.listdir(tmp_path / "runs") == ["taken"] and os.listdir(tmp_path / "runs" / "taken") == []


def test_two_runs_in_the_same_second_get_distinct_folders_the_second_with_suffix_2(tmp_path, monkeypatch):
    monkeypatch.setattr(ql.time, "time", lambda: 1_700_000_000.25)  # every run starts in the same second
    args = ql.Args(runs_dir=str(tmp_path), seed=3, total_episodes=10)
    writers = [ql.open_run(args, ql.make_env(args)) for _ in range(3)]
    for writer in writers:
        writer.close()
    name = "FrozenLake-v1-4x4__qlearning_frozenlake__3__1700000000"
    assert [writer.log_dir for writer in writers] == [str(tmp_path / name), str(tmp_path / f"{name}-2"),
                                                      str(tmp_path / f"{name}-3")]
    assert sorted(os.listdir(tmp_path)) == [name, f"{name}-2", f"{name}-3"]


def test_run_name_names_the_folder_and_a_taken_one_is_refused_leaving_that_run_intact(tmp_path, capsys):
    first = quiet_main(run_name="mine", total_episodes=100, runs_dir=str(tmp_path))
    assert first.run_dir == str(tmp_path / "mine")
    before = folder_fingerprint(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        ql.main(ql.Args(run_name="mine", total_episodes=100, runs_dir=str(tmp_path)))
    message = f"error: --run-name mine: {tmp_path / 'mine'} already exists (choose another name)\n"
    assert (exit_.value.code, capsys.readouterr().err) == (2, message)
    assert folder_fingerprint(tmp_path) == before


# 64 kB hold the start of the TensorBoard log but not the pictures and the video; a read-only tmpfs holds nothing
# (root writes through chmod, not through a read-only mount)
@pytest.mark.parametrize("options, cause", [("size=64k", "[Errno 28] No space left on device"),
                                            ("ro,size=64k", "[Errno 30] Read-only file system")])
def test_a_full_or_read_only_disk_ends_the_run_with_one_line_naming_the_cause_and_exit_status_1(tmp_path, options,
                                                                                                cause):
    with mounted_tmpfs(tmp_path / "disk", options) as disk:
        done = run_script(SCRIPT, tmp_path, "--total-episodes", "2000", "--capture-video", "--runs-dir", str(disk))
    assert done.returncode == 1
    assert one_error_line(done.stderr).startswith(f"error: cannot write the run under {disk}: {cause}")


def test_ctrl_c_twice_inside_a_tensorboard_write_lets_it_finish_and_stops_after_the_episode_in_one_line(
        tmp_path, capsys, monkeypatch):
    add_scalar, pressed_at = ql.SummaryWriter.add_scalar, []

    def add_scalar_pressing_ctrl_c_twice(writer, tag, value, step):
        if tag == "charts/SPS" and not pressed_at:  # the first log point: the end of episode 100
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)
            pressed_at.append(step)  # not reached if Ctrl-C raised KeyboardInterrupt inside the write
        add_scalar(writer, tag, value, step)

    monkeypatch.setattr(ql.SummaryWriter, "add_scalar", add_scalar_pressing_ctrl_c_twice)
    monkeypatch.chdir(tmp_path)  # the message names the run folder as given: runs/...
    with pytest.raises(SystemExit) as exit_:  # (conftest gives this process its Ctrl-C back afterwards)
        ql.main(ql.Args(total_episodes=10_000, log_frequency=100, runs_dir="runs"))
    (run_dir,) = glob.glob("runs/*")
    message = (f"error: interrupted (Ctrl-C) after episode 100 of 10,000, at env step {pressed_at[0]:,}; the logs so "
               f"far are in {run_dir}\n")
    assert (exit_.value.code, capsys.readouterr().err) == (130, message)
    events = EventAccumulator(run_dir)
    events.Reload()
    assert [point.step for point in events.Scalars("charts/SPS")] == pressed_at  # written, then flushed


def test_ctrl_c_while_setting_up_says_the_run_is_incomplete_and_names_no_run_folder(tmp_path, capsys, monkeypatch):
    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(ql, "ExactScorer", interrupted)  # Ctrl-C during value iteration, before any folder is made
    monkeypatch.setattr(ql.signal, "signal", lambda *args: None)  # this test process keeps its Ctrl-C
    with pytest.raises(SystemExit) as exit_:
        ql.main(ql.Args(runs_dir=str(tmp_path / "runs")))
    message = "error: interrupted (Ctrl-C) outside the training loop: any run folder it made is incomplete\n"
    assert (exit_.value.code, capsys.readouterr().err) == (130, message)
    assert list(tmp_path.iterdir()) == []


def test_track_without_wandb_installed_is_refused_with_one_line_saying_how_to_install_it(tmp_path, capsys,
                                                                                          monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # `import wandb` now fails as if it were not installed
    with pytest.raises(SystemExit) as exit_:
        ql.main(ql.Args(track=True, runs_dir=str(tmp_path / "runs")))
    message = "error: --track True: needs Weights & Biases: pip install wandb\n"
    assert (exit_.value.code, capsys.readouterr().err) == (2, message)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("runs_dir_existed", [False, True])
def test_track_when_wandb_cannot_start_a_run_stops_with_one_line_and_leaves_no_folder_behind(tmp_path, capsys,
                                                                                             monkeypatch,
                                                                                             runs_dir_existed):
    wandb = pytest.importorskip("wandb")
    no_key = "No API key configured. Use `wandb login` to log in."  # without a key, and no terminal to ask for one

    def not_logged_in(**kwargs):
        raise wandb.errors.UsageError(no_key)

    monkeypatch.setattr(wandb, "init", not_logged_in)
    if runs_dir_existed:
        (tmp_path / "runs").mkdir()
    with pytest.raises(SystemExit) as exit_:
        ql.main(ql.Args(track=True, total_episodes=10, runs_dir=str(tmp_path / "runs")))
    assert (exit_.value.code, capsys.readouterr().err) == (2, f"error: --track True: Weights & Biases did not start: "
                                                              f"{no_key}\n")
    assert os.listdir(tmp_path) == (["runs"] if runs_dir_existed else []) and not glob.glob(f"{tmp_path}/runs/*")


def test_track_offline_writes_a_wandb_run_named_like_the_run_folder_with_the_flags_and_the_scalars(tmp_path):
    pytest.importorskip("wandb")
    offline = {**os.environ, "WANDB_MODE": "offline", "WANDB_DIR": str(tmp_path), "WANDB_SILENT": "true"}
    done = run_script(SCRIPT, tmp_path, "--track", "--total-episodes", "500", "--seed", "5", env=offline)
    assert done.returncode == 0, done.stderr
    run = [record.run for record in wandb_offline_records(tmp_path) if record.HasField("run")][-1]  # its last name
    config, history = wandb_config_and_history(tmp_path)
    (run_dir,) = os.listdir(tmp_path / "runs")
    assert (config["seed"], config["env_id"], config["total_episodes"], run.display_name) == (5, "FrozenLake-v1", 500,
                                                                                              run_dir)
    epsilon = [(row["global_step"], row["charts/epsilon"]) for row in history if "charts/epsilon" in row]
    assert epsilon[0] == (0, 1.0)  # TensorBoard's first ε point, start_e at step 0
    # every evaluation (500 episodes, --eval-frequency 500: at the start and at the end), the last one written last
    ends = [row["global_step"] for row in history if "charts/episodes" in row]
    assert [row["global_step"] for row in history if "eval/value_ratio" in row] == [0, ends[-1]]
