"""Specification shared by the DQN scripts: the Atari pipeline, the replay memory, the learning rules, whole runs and
the evaluation. The `dqn` fixture is dqn_atari.py; test_double_dqn.py pins the pair."""

import copy
import importlib.util
import re
import shutil
import subprocess
import tracemalloc
from dataclasses import fields
from types import SimpleNamespace

import cv2
import gymnasium as gym
import numpy as np
import pytest
import torch
from fixture_envs import RandomFrames
from helpers import (FixedQ, batch_of, catch_args, catch_run, catch_score_after_learning, hparams_layout, load_script,
                     one_error_line, run_dir_of, run_script, step_and_store, wandb_config_and_history)
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.custom_scalar import layout_pb2
from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData

FIRE = 1  # in Breakout's and SpaceInvaders' minimal action sets


# ------------------------------------------------------------------ the Atari pipeline, on the real ALE
class Recorder(gym.Wrapper):
    """Sits right on the ALE, under the whole pipeline, and keeps every raw action, frame and reward."""

    def __init__(self, env):
        super().__init__(env)
        self.actions, self.frames, self.rewards, self.resets = [], [], [], 0

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        self.actions, self.frames, self.rewards, self.resets = [], [obs], [], self.resets + 1
        return obs, info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.actions.append(int(action))
        self.frames.append(obs)
        self.rewards.append(reward)
        return obs, reward, terminated, truncated, info


@pytest.fixture
def atari(dqn, monkeypatch):
    """build(env_id, **make_env_kwargs) → (the script's env, the Recorder under it)."""
    real_make, recorders = gym.make, []

    def make(*args, **kwargs):
        recorders.append(Recorder(real_make(*args, **kwargs)))
        return recorders[-1]

    monkeypatch.setattr(gym, "make", make)

    def build(env_id="BreakoutNoFrameskip-v4", **kwargs):
        env = dqn.make_env(env_id, 0, 0, **kwargs)()
        return env, recorders[-1]

    return build


def play_until(env, rng, condition, max_steps=5000):
    """Random actions until condition(terminated, truncated, info) holds; returns that step's results."""
    for _ in range(max_steps):
        obs, reward, terminated, truncated, info = env.step(int(rng.integers(env.action_space.n)))
        if condition(terminated, truncated, info):
            return obs, reward, terminated, truncated, info
    raise AssertionError("condition never met")


def test_a_real_reset_plays_1_to_30_noops_then_fire(atari):
    env, rec = atari(training=False)  # (a training env's reset continues the game unless it is over)
    noop_counts = []
    for seed in range(40):
        env.reset(seed=seed)
        k = rec.actions.index(FIRE)
        assert rec.actions == [0] * k + [FIRE] * 4
        noop_counts.append(k)
    assert 1 <= min(noop_counts) and max(noop_counts) <= 30
    assert len(set(noop_counts)) >= 12  # uniform over 30 values, not a constant


def test_luminance_is_the_y_channel_at_84x84(dqn):
    frame = np.empty((210, 160, 3), np.uint8)
    frame[:] = (200, 100, 50)
    assert dqn.luminance_84x84(frame).shape == (84, 84)
    assert (dqn.luminance_84x84(frame) == round(0.299 * 200 + 0.587 * 100 + 0.114 * 50)).all()


def test_an_observation_is_the_max_of_the_last_two_raw_frames(atari, dqn):
    env, rec = atari()
    obs, _ = env.reset(seed=0)
    rng, max_differs_from_last = np.random.default_rng(0), False
    for _ in range(200):
        previous = obs
        obs, _, terminated, truncated, _ = env.step(int(rng.integers(4)))
        expected = dqn.luminance_84x84(np.maximum(rec.frames[-2], rec.frames[-1]))
        np.testing.assert_array_equal(obs[-1], expected)
        np.testing.assert_array_equal(obs[:3], previous[1:])
        max_differs_from_last |= not np.array_equal(expected, dqn.luminance_84x84(rec.frames[-1]))
        if terminated or truncated:
            obs, _ = env.reset()
    assert max_differs_from_last


def test_observations_are_stacks_of_four_84x84_uint8_frames_padded_at_reset(atari):
    env, _ = atari()
    obs, _ = env.reset(seed=0)
    assert env.observation_space.shape == obs.shape == (4, 84, 84) and obs.dtype == np.uint8
    assert all(np.array_equal(frame, obs[-1]) for frame in obs)


def test_a_life_loss_is_terminal_but_the_game_continues(atari):
    env, rec = atari()
    env.reset(seed=0)
    ale = env.unwrapped.ale
    _, _, terminated, truncated, _ = play_until(env, np.random.default_rng(0), lambda te, tr, i: te or tr)
    assert terminated and not truncated and ale.lives() == 4 and not ale.game_over()
    frame_number, actions_so_far = ale.getEpisodeFrameNumber(), len(rec.actions)
    env.reset()
    assert rec.resets == 1  # the ALE was not reset: same game, same score
    assert ale.getEpisodeFrameNumber() == frame_number + 8 and ale.lives() == 4
    assert rec.actions[actions_so_far:] == [0] * 4 + [FIRE] * 4  # one no-op step, then FIRE


def test_training_rewards_are_clipped_but_the_logged_return_is_the_raw_score(atari):
    env, rec = atari("SpaceInvadersNoFrameskip-v4")
    env.reset(seed=0)
    rng, raw_step_rewards = np.random.default_rng(0), []
    while True:
        seen = len(rec.rewards)
        _, reward, terminated, truncated, info = env.step(int(rng.integers(env.action_space.n)))
        raw = sum(rec.rewards[seen:])
        raw_step_rewards.append(raw)
        assert reward == np.sign(raw)
        if "episode" in info:
            break
        if terminated or truncated:
            env.reset()
    assert max(raw_step_rewards) > 1  # the clipping was exercised
    assert info["episode"]["r"] == sum(rec.rewards)  # the whole game, all lives, unclipped


def test_a_game_is_truncated_at_the_frame_cap(atari):
    env, _ = atari("PongNoFrameskip-v4", training=False, max_frames_per_episode=400)
    env.reset(seed=0)
    ale = env.unwrapped.ale
    _, _, terminated, truncated, _ = play_until(env, np.random.default_rng(0), lambda te, tr, i: te or tr)
    assert truncated and not terminated and ale.getEpisodeFrameNumber() == 400
    assert atari()[0].unwrapped.ale.getInt("max_num_frames_per_episode") == 108_000  # the default: 27,000 steps


@pytest.mark.parametrize("flags, named", [
    (["--env-id", "CartPole-v1"], "--env-id 'CartPole-v1'"),
    (["--buffer-size", str(10**9)], "--buffer-size 1000000000"),
])
def test_bad_input_gets_one_error_line_and_writes_nothing(tmp_path, flags, named):
    result = run_script("dqn_atari.py", tmp_path, *flags)
    assert result.returncode == 2 and named in one_error_line(result.stderr)
    assert list(tmp_path.iterdir()) == []


def test_an_ale_v5_id_trains_end_to_end_at_4_frames_per_agent_step_with_sticky_actions(dqn, tmp_path, monkeypatch):
    real_make, made = gym.make, []

    def make(*args, **kwargs):
        made.append(real_make(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(gym, "make", make)
    dqn.main(dqn.Args(env_id="ALE/Pong-v5", total_timesteps=200, learning_starts=150, buffer_size=200,
                      eval_episodes=1, runs_dir=str(tmp_path)))
    events = EventAccumulator(str(run_dir_of(tmp_path)))
    events.Reload()
    assert run_dir_of(tmp_path).name.startswith("ALE_Pong-v5__dqn_atari__1__")
    assert [e.step for e in events.Scalars("eval/episodic_return")] == [200]
    training, _ = made  # the training env, then the evaluation game's
    assert all(env.unwrapped.ale.getFloat("repeat_action_probability") == 0.25 for env in made)
    # 4 frames per agent step (the v5 default frameskip of 4 would make it 16), plus the one real reset's 1–30
    # no-ops and its FIRE step of 4 frames (a Pong game outlasts 200 agent steps)
    assert 4 * 200 + 5 <= training.unwrapped.ale.getFrameNumber() <= 4 * 200 + 34


# ------------------------------------------------------------------ the replay memory
def naive_stream_check(dqn, capacity, num_envs, steps=400):
    """Feed the script's replay, as its training loop does, and a naive list of full stacks from the same vector
    env; every sampled transition must equal the naive one with the same (unique) reward, and be among the
    newest `capacity`."""
    envs = gym.vector.SyncVectorEnv(
        [lambda i=i: gym.wrappers.FrameStackObservation(RandomFrames(first_reward=i * 100_000), 4)
         for i in range(num_envs)],
        autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    rb = dqn.ReplayBuffer(capacity * num_envs, num_envs, torch.device("cpu"), seed=0)
    naive = [[] for _ in range(num_envs)]
    obs, _ = envs.reset(seed=0)
    rng, sampled = np.random.default_rng(0), set()
    for step in range(steps):
        obs, transitions = step_and_store(envs, rb, obs, rng.integers(4, size=num_envs))
        for e in range(num_envs):
            naive[e].append(tuple(part[e] for part in transitions))
        if step < 20:
            continue
        batch = rb.sample(16)
        by_reward = {t[2]: (e, t) for e in range(num_envs) for t in naive[e][-capacity:]}
        for b in range(16):
            e, (o, a, r, n, term) = by_reward[batch.rewards[b].item()]
            np.testing.assert_array_equal(batch.observations[b].numpy(), o)
            np.testing.assert_array_equal(batch.next_observations[b].numpy(), n)
            assert (batch.actions[b, 0].item(), batch.terminations[b].item()) == (a, float(term))
            sampled.add(r)
    return sampled


@pytest.mark.parametrize("capacity, num_envs", [(10, 1), (50, 1), (1000, 1), (30, 3)])
def test_replay_samples_equal_a_naive_memory_of_full_stacks(dqn, capacity, num_envs):
    sampled = naive_stream_check(dqn, capacity, num_envs)
    # wrap-around happened (400 steps > capacity, except for the largest), and most transitions get sampled
    assert len(sampled) >= min(capacity * num_envs, 400 * num_envs) // 2


def test_replay_samples_every_stored_transition_equally_often_whatever_its_stream(dqn):
    # env 0 plays one long episode; in env 1 every step ends an episode, so half its slots hold first frames (no
    # step led to them): both store 20 transitions, env 1 in twice as many slots
    rb = dqn.ReplayBuffer(2 * 100, 2, torch.device("cpu"), seed=0)
    stacks, ends = np.zeros((2, 4, 84, 84), np.uint8), np.array([False, True])
    for t in range(20):
        rb.add(stacks, stacks, np.zeros(2, np.int64), np.array([t, 100 + t], np.float32), ends, ends)
    rewards = np.concatenate([rb.sample(1000).rewards.numpy() for _ in range(40)])
    transitions, counts = np.unique(rewards, return_counts=True)
    assert transitions.tolist() == list(range(20)) + list(range(100, 120))
    # uniform: 1,000 draws each of 40,000 (standard deviation 31). Picking an env first, then a slot, draws env 0's
    # transitions 1,312 times each and env 1's 689
    assert counts.min() > 880 and counts.max() < 1120


def test_replay_takes_at_most_7100_bytes_per_transition(dqn):
    rb, rng = dqn.ReplayBuffer(1000, 1, torch.device("cpu"), seed=0), np.random.default_rng(0)
    for _ in range(1200):  # filled, and wrapped around
        stack = rng.integers(0, 256, (1, 4, 84, 84), dtype=np.uint8)
        rb.add(stack, stack, np.zeros(1, np.int64), np.ones(1, np.float32), np.zeros(1, bool), np.zeros(1, bool))
    allocated = sum(value.nbytes for value in vars(rb).values() if isinstance(value, (np.ndarray, torch.Tensor)))
    assert allocated <= 7100 * 1000
    # the figure the memory check uses is what is allocated (up to the per-stream counters)
    assert allocated - (rb.FRAME_BYTES + rb.STEP_BYTES) * 1000 < 100


def test_replay_frames_go_to_the_gpu_only_when_they_fit(dqn, monkeypatch):
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (10 * 2**30, 80 * 2**30))  # 10 GiB free
    assert dqn.replay_storage(1_000_000, cuda) == cuda  # 7.06 GB of frames ≤ 80% of 10 GiB
    assert dqn.replay_storage(1_300_000, cuda) == cpu  # 9.17 GB > 80% of 10 GiB
    assert dqn.replay_storage(1_000_000, cpu) == cpu


def test_the_host_memory_check_leaves_out_frames_kept_on_the_gpu(dqn, monkeypatch):
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (2**50, 2**50))  # a GPU of 1 PiB
    cuda = torch.device("cuda")
    assert dqn.replay_storage(10**8, cuda) == cuda  # 0.7 GB of actions, rewards and flags on the host
    with pytest.raises(SystemExit):
        dqn.replay_storage(10**8, torch.device("cpu"))  # 706 GB of frames on the host


# ------------------------------------------------------------------ learning rules
@pytest.mark.parametrize("loss, expected", [
    # q_sa = [1, 6, 0], y = [1 + 0.9·5, 0 + 0.9·6, -1 (terminal)] = [5.5, 5.4, -1]; errors = [-4.5, 0.6, 1]
    ("mse", (4.5**2 + 0.6**2 + 1**2) / 3),
    ("huber", ((4.5 - 0.5) + 0.5 * 0.6**2 + 0.5 * 1**2) / 3),  # quadratic below 1, linear above
])
def test_td_loss_on_a_fixed_batch_equals_the_hand_computation(dqn, loss, expected):
    # the online and the target network agree on the best next action: DQN and Double DQN targets coincide
    table = [[1, 5, 2], [3, 6, 4], [0, 7, 7]]
    data = batch_of(dqn, [0, 1, 2], [0, 1, 0], [0, 1, 2], [1.0, 0.0, -1.0], [0.0, 0.0, 1.0])
    value, q_sa = dqn.td_loss(FixedQ(table), FixedQ(table), data, 0.9, loss)
    assert q_sa.tolist() == [1, 6, 0]
    assert value.item() == pytest.approx(expected)


class PlainQ(torch.nn.Module):
    """The Nature CNN as written in the paper's code: weights and inputs in the default (NCHW) memory layout."""

    def __init__(self, network):
        super().__init__()
        self.network = copy.deepcopy(network).to(memory_format=torch.contiguous_format)

    def forward(self, x):
        return self.network(x / 255.0)


def test_channels_last_and_fused_adam_compute_what_plain_adam_computes(dqn):
    torch.manual_seed(0)
    fast, fast_target = dqn.QNetwork(4), dqn.QNetwork(4)  # channels_last, as in train()
    plain, plain_target = PlainQ(fast.network), PlainQ(fast_target.network)
    initial = copy.deepcopy(fast.state_dict())
    fast_adam = torch.optim.Adam(fast.parameters(), lr=1e-4, fused=True)
    plain_adam = torch.optim.Adam(plain.parameters(), lr=1e-4)  # the default single-tensor loop
    rng = np.random.default_rng(0)
    for _ in range(10):
        data = batch_of(dqn, rng.integers(256, size=8), rng.integers(4, size=8), rng.integers(256, size=8),
                        rng.normal(size=8).astype(np.float32), np.zeros(8, np.float32))
        for q, target, adam in ((fast, fast_target, fast_adam), (plain, plain_target, plain_adam)):
            loss, _ = dqn.td_loss(q, target, data, 0.99, "mse")
            adam.zero_grad()
            loss.backward()
            adam.step()
    assert fast.network[0].weight.is_contiguous(memory_format=torch.channels_last)
    for a, b in zip(fast.state_dict().values(), plain.state_dict().values()):
        # The same arithmetic summed in another order: float32 rounding apart. Adam divides by √v, so a rounding
        # difference of a near-zero gradient can move a weight by up to a step (lr = 1e-4): 1e-5 is 10% of a step.
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5)
    # and the 10 updates moved every layer far more than that: the two agree on learning, not on standing still
    assert all((fast.state_dict()[name] - initial[name]).abs().max() > 20 * 1e-5 for name in initial)


@pytest.mark.parametrize("tau", [1.0, 0.5])
def test_target_update_moves_the_target_tau_of_the_way_to_the_online_network(dqn, tau):
    online, target = torch.nn.Linear(2, 1), torch.nn.Linear(2, 1)
    torch.nn.init.constant_(online.weight, 4.0), torch.nn.init.constant_(target.weight, 2.0)
    dqn.update_target(target, online, tau)
    assert target.weight.tolist() == [[2.0 + tau * 2.0] * 2]


@pytest.mark.parametrize("global_step, num_envs, expected", [
    (99, 1, 0), (100, 1, 1), (101, 1, 0),  # one env: fires at the multiples of 100
    (99, 3, 0), (102, 3, 1), (105, 3, 0),  # 3 envs step from 99 to 102, over 100: it fires once
    (400, 400, 4),  # a step of 400 envs passes 4 multiples: 4 updates at once
    (2, 4, 0),  # a step from 0 (or less: learning starts) to 2 passes no multiple
])
def test_a_schedule_fires_once_per_multiple_of_its_frequency_whatever_the_number_of_envs(
        dqn, global_step, num_envs, expected):
    assert dqn.times_due(global_step, 100, num_envs) == expected
    assert dqn.is_due(global_step, 100, num_envs) == (expected > 0)
    assert not dqn.is_due(global_step, 0, num_envs)  # every = 0 is "never"


def test_epsilon_decays_linearly_then_stays(dqn):
    values = [dqn.linear_schedule(1.0, 0.1, 100, t) for t in (0, 50, 100, 500)]
    assert values == pytest.approx([1.0, 0.55, 0.1, 0.1])


# ------------------------------------------------------------------ whole runs
def test_a_seeded_cpu_run_is_reproducible(dqn, pixel_games, tmp_path):
    first, second = (catch_run(dqn, tmp_path / str(i)) for i in range(2))
    for a, b in zip(first.state_dict().values(), second.state_dict().values()):
        assert torch.equal(a, b)


@pytest.mark.slow
def test_compile_trains_the_same_weights_as_eager(dqn, pixel_games, tmp_path, monkeypatch):
    compiled, real_compile = [], torch.compile
    monkeypatch.setattr(torch, "compile", lambda f, **kw: compiled.append(f) or real_compile(f, **kw))
    eager, graphs = (dqn.main(catch_args(dqn, 600, compile=c, runs_dir=str(tmp_path / str(c)))) for c in (False, True))
    assert len(compiled) == 2 and dqn.td_loss in compiled  # the greedy action and the TD loss (50 updates)
    for a, b in zip(eager.state_dict().values(), graphs.state_dict().values()):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5)  # the same arithmetic, summed in another order


@pytest.mark.slow
def test_it_learns_catch_from_pixels(dqn, pixel_games, tmp_path):
    """Learning from several envs: test_double_dqn.py."""
    assert catch_score_after_learning(dqn, tmp_path) >= 0.8


@pytest.fixture(scope="module")
def breakout_run(tmp_path_factory):
    """A short Breakout run with evaluations, video and a saved model: (args, run folder, events). It evaluates with
    random play, which presses FIRE often: short games, little video to encode."""
    dqn, runs_dir = load_script("dqn_atari"), tmp_path_factory.mktemp("breakout")
    args = dqn.Args(total_timesteps=1000, learning_starts=700, buffer_size=1000, save_model=True, capture_video=True,
                    eval_frequency=500, eval_episodes=1, eval_epsilon=1.0, runs_dir=str(runs_dir))
    dqn.main(args)
    events = EventAccumulator(str(run_dir_of(runs_dir)))
    events.Reload()
    return args, run_dir_of(runs_dir), events


def test_a_short_breakout_run_writes_every_tag_a_video_and_a_loadable_model(dqn, breakout_run):
    args, run_dir, events = breakout_run
    assert {"charts/episodic_return", "charts/episodic_length", "charts/epsilon", "charts/SPS", "losses/td_loss",
            "losses/q_values", "eval/episodic_return", "eval/q_estimate", "eval/discounted_return",
            } <= set(events.Tags()["scalars"])
    assert "hyperparameters/text_summary" in events.Tags()["tensors"]
    _, gif = cv2.imdecodeanimation(np.frombuffer(events.Images("videos/eval")[0].encoded_image_string, np.uint8))
    wall = gif.frames[5][40:185, 1:7, :3]  # Breakout's grey left wall, flat on the screen: no dithering speckle
    assert wall.max() - wall.min() <= 10
    video = cv2.VideoCapture(str(run_dir / "videos" / "step-1000.mp4"))
    assert video.read()[0] and int(video.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little") == b"VP90"  # browsers play it
    state_dict = torch.load(run_dir / f"{args.exp_name}.pt", weights_only=True)
    dqn.QNetwork(4).load_state_dict(state_dict)


def test_epsilon_is_charted_from_step_0_at_start_e(dqn, breakout_run):
    args, _, events = breakout_run
    first, second = events.Scalars("charts/epsilon")[:2]
    assert (first.step, first.value, second.step) == (0, args.start_e, 100)
    assert second.value == pytest.approx(dqn.linear_schedule(args.start_e, args.end_e, 100, 99))  # ε of step 100


def test_every_evaluation_is_logged_once_the_last_one_too(breakout_run):
    _, _, events = breakout_run
    for tag in ("eval/episodic_return", "eval/q_estimate", "eval/discounted_return"):
        assert [e.step for e in events.Scalars(tag)] == [500, 1000]
    assert [image.step for image in events.Images("videos/eval")] == [500, 1000]


def test_one_chart_lays_the_q_estimate_over_the_discounted_return(breakout_run):
    _, _, events = breakout_run
    layout = layout_pb2.Layout.FromString(events.Tensors("custom_scalars__config__")[0].tensor_proto.string_val[0])
    charts = [chart for category in layout.category for chart in category.chart]
    assert [list(chart.multiline.tag) for chart in charts] == [["eval/q_estimate", "eval/discounted_return"]]


def test_the_video_panel_draws_each_actions_q_value_as_a_bar_from_one_zero_line(dqn):
    q_values = np.array([0.5, -0.25, 1.0, 0.0])
    frame = dqn.with_values(np.zeros((210, 160, 3), np.uint8), q_values, 2, [0.8, 1.0], ["A", "B", "C", "D"])
    panel = frame[:, 160:, 0]  # the screen is left, the panel right
    zero = int(np.flatnonzero(panel[:105, 0] == 70)[0])  # the zero line, where no bar covers it
    lit = np.isin(panel[:105], (110, 255))  # the bars: grey, the action taken white
    centres = [40 * action + 20 for action in range(4)]
    heights = np.array([lit[15:zero, c].sum() - lit[zero + 1:, c].sum() for c in centres])  # up minus down
    assert heights / heights.max() == pytest.approx(q_values / q_values.max(), abs=0.03)
    assert [panel[zero, c] for c in centres] == [110, 110, 255, 110]


def test_the_video_panel_draws_a_long_games_max_q_trace_with_at_most_one_point_per_column(dqn, monkeypatch):
    """A frame's cost must not grow with the game: 27,000 steps (the frame cap) still give a trace of 160 points."""
    drawn = []
    monkeypatch.setattr(dqn.cv2, "polylines", lambda img, points, *args: drawn.append(points[0]))
    trace = list(np.linspace(0.0, 2.0, 27_000))
    dqn.with_values(np.zeros((210, 160, 3), np.uint8), np.array([0.5, 2.0]), 1, trace, ["A", "B"])
    (points,) = drawn
    half, trace_zero = 210 // 4 - 14, 3 * 210 // 4 + 6
    assert len(points) == 160
    assert points[0].tolist() == [0, trace_zero] and points[-1].tolist() == [159, trace_zero - half]  # first, last


def test_the_gif_of_a_long_game_keeps_max_frames_evenly_spaced_frames_and_only_those_in_memory(dqn, tmp_path):
    path, frame_bytes = str(tmp_path / "game.mp4"), 210 * 480 * 3  # a recorded frame: the screen and the value panel
    video = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"vp09"), 15, (480, 210))
    for i in range(400):
        video.write(np.full((210, 480, 3), 37 * i % 256, np.uint8))  # frame i: grey 37·i mod 256, unlike its neighbours
    video.release()
    logged = []
    writer = SimpleNamespace(file_writer=SimpleNamespace(add_summary=lambda summary, step: logged.append(summary)))
    tracemalloc.start()
    dqn.log_video(writer, "videos/eval", path, 0, max_frames=20)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 30 * frame_bytes  # the 20 frames kept and the GIF; all 400 frames would take 121 MB
    _, gif = cv2.imdecodeanimation(np.frombuffer(logged[0].value[0].image.encoded_image_string, np.uint8))
    greys = [round(frame[..., :3].mean()) for frame in gif.frames]
    assert greys == pytest.approx([37 * 20 * k % 256 for k in range(20)], abs=6)  # frames 0, 20, ..., 380


def test_the_hparams_record_holds_the_algorithms_flags_the_exp_name_and_the_seed_with_their_values(dqn, breakout_run):
    args, _, events = breakout_run
    content = events.PluginTagToContent("hparams")
    start = HParamsPluginData.FromString(content["_hparams_/session_start_info"]).session_start_info
    recorded = {name: getattr(value, value.WhichOneof("kind")) for name, value in start.hparams.items()}
    # Args lists the algorithm's flags first, then the run's: of those, only the run's name and seed tell one run's
    # learning from another's (where it is written, when it logs and on which device it runs do not)
    flags = [field.name for field in fields(dqn.Args)]
    learning = flags[:flags.index("exp_name")] + ["exp_name", "seed"]
    assert recorded == {name: getattr(args, name) for name in learning}
    # the HPARAMS tab's layout is in the run (tests/test_qlearning.py checks it is the same in the three scripts)
    columns, ticked, metrics = hparams_layout(events)
    assert (columns, ticked, metrics) == (list(dqn.HPARAMS_COLUMNS), columns[:5], list(dqn.HPARAMS_METRICS))


def test_the_hyperparameters_table_holds_every_flag_the_script_and_its_commit(dqn, breakout_run):
    args, _, events = breakout_run
    text = b"".join(events.Tensors("hyperparameters/text_summary")[0].tensor_proto.string_val).decode()
    rows = dict(re.findall(r"^\|(\w+)\|(.*)\|$", text, re.MULTILINE))
    assert rows.keys() == {field.name for field in fields(dqn.Args)} | {"param", "script", "commit"}
    assert rows["script"] == "dqn_atari.py" and rows["learning_rate"] == str(args.learning_rate)
    assert re.fullmatch(r"[0-9a-f]{40}(-dirty)?|unknown", rows["commit"])


def test_the_commit_is_the_script_folders_head_dirty_once_the_file_differs_and_unknown_outside_git(dqn, tmp_path,
                                                                                                   monkeypatch):
    def git(*argv):
        return subprocess.run(["git", *argv], cwd=tmp_path, capture_output=True, text=True, check=True).stdout.strip()

    monkeypatch.setattr(dqn, "__file__", str(shutil.copy(dqn.__file__, tmp_path)))  # a copy, outside any repository
    assert dqn.git_commit() == "unknown"
    git("init", "--quiet")
    git("add", "dqn_atari.py")
    git("-c", "user.name=test", "-c", "user.email=test@example.com", "commit", "--quiet", "-m", "the script")
    assert dqn.git_commit() == git("rev-parse", "HEAD")
    (tmp_path / "dqn_atari.py").write_text("# changed\n")
    assert dqn.git_commit() == git("rev-parse", "HEAD") + "-dirty"


def test_the_progress_line_counts_to_the_step_where_the_run_ends(dqn, pixel_games, tmp_path, capsys):
    catch_run(dqn, tmp_path, total_timesteps=31, num_envs=3, learning_starts=10, batch_size=4)
    progress = [line for line in capsys.readouterr().out.splitlines() if line.startswith("step ")]
    # 11 steps of 3 envs: the run ends at agent step 33, the first multiple of 3 at or past 31 (see --help)
    assert progress[-1].startswith("step 33/33 (100.0%) | ")


def test_track_mirrors_the_config_and_every_scalar_to_an_offline_wandb_run_that_a_resume_continues(
        dqn, pixel_games, offline_wandb):
    catch_run(dqn, offline_wandb / "runs", total_timesteps=300, track=True, seed=7, checkpoint_frequency=300)
    config, history = wandb_config_and_history(offline_wandb)
    assert (config["seed"], config["env_id"], config["track"]) == (7, "Catch", True)
    logged = {tag for row in history for tag in row}
    assert {"charts/epsilon", "charts/SPS", "losses/td_loss", "losses/q_values"} <= logged
    # the final evaluation's points, the last ones written, reach W&B: the run finishes after them, not before
    final = [row for row in history if "eval/episodic_return" in row]
    assert [(row["global_step"], "eval/q_estimate" in row, "eval/discounted_return" in row) for row in final] == [
        (300, True, True)]
    # resumed (here, not in a test of its own: every W&B start is slow), it goes on in the same W&B run
    run_dir = run_dir_of(offline_wandb / "runs")
    wandb_id = torch.load(run_dir / "checkpoint.pt", weights_only=True)["wandb_id"]
    dqn.main(dqn.parse_args(["--resume", str(run_dir), "--total-timesteps", "360"]))
    runs = sorted(path.name for path in (offline_wandb / "wandb").glob("offline-run-*"))  # one folder per start
    assert len(runs) == 2 and all(name.endswith(f"-{wandb_id}") for name in runs), (runs, wandb_id)


def test_track_without_wandb_installed_is_one_line_before_anything_is_written(dqn, tmp_path, monkeypatch, capsys):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "wandb" else real_find_spec(name))
    with pytest.raises(SystemExit) as stop:
        dqn.main(dqn.Args(track=True, runs_dir=str(tmp_path / "runs")))
    assert stop.value.code == 2
    assert one_error_line(capsys.readouterr().err) == "error: --track True: needs Weights & Biases: pip install wandb"
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ evaluation: the overestimation figure's values
def test_discounted_returns_are_worked_backwards_and_cut_where_a_life_is_lost(dqn):
    # G3 = −1; G2 = 1 + 0.5·G3 = 0.5; step 1 loses a life: G1 = 0 + 0.5·G2·0 = 0; G0 = 1 + 0.5·G1 = 1
    assert dqn.discounted_returns([1.0, 0.0, 1.0, -1.0], [False, True, False, False], 0.5) == [1.0, 0.0, 0.5, -1.0]


def test_evaluation_measures_the_q_estimate_and_the_discounted_return_of_the_visited_states(dqn, pixel_games):
    fixed = FixedQ([[0.2, 0.7, -0.1]] * 256)  # the same Q-values whatever the first pixel
    evaluation = dqn.evaluate(fixed, "Catch", 3, 4, 0.0, torch.device("cpu"), gamma=0.9)
    assert evaluation.q_estimate == pytest.approx(0.7)  # max_a Q(s, a) in every state
    # a Catch game: 9 steps, the ±1 only at the last; G_t = 0.9^(8 − t) · r, averaged over the 9 states of each game
    expected = np.mean(evaluation.returns) * sum(0.9**k for k in range(9)) / 9
    assert evaluation.discounted_return == pytest.approx(expected)


def test_the_evaluations_discounted_return_stops_at_each_lost_life_of_the_game(dqn, pixel_games):
    # LosingLives: 3 lives of 2 steps, 2 points a step (clipped to 1), a life lost at every second step. Cut there,
    # each life's two states have G = 1 + 0.5 · 1 and G = 1; uncut, the game's 6 would average 1.67
    evaluation = dqn.evaluate(FixedQ([[0.0, 1.0]] * 7), "LosingLives", 0, 2, 0.0, torch.device("cpu"), gamma=0.5)
    assert evaluation.returns == [12.0, 12.0]  # the raw score of the whole game
    assert evaluation.discounted_return == pytest.approx((1.5 + 1.0) / 2)
