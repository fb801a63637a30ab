"""Specification shared by the DQN scripts (the `dqn` fixture runs each test for every one of them)."""

import copy
import importlib.util
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import cv2
import gymnasium as gym
import numpy as np
import pytest
import torch
from fixture_envs import RandomFrames, make_catch_env
from conftest import DQN_SCRIPTS
from helpers import ROOT, load_script, wandb_config_and_scalars
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
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


def script_command(dqn, *flags):
    return [sys.executable, str(ROOT / Path(dqn.__file__).name), *flags]


def run_script(dqn, cwd, *flags):
    return subprocess.run(script_command(dqn, *flags), cwd=cwd, capture_output=True, text=True)


@pytest.mark.parametrize("flags, named", [
    (["--env-id", "CartPole-v1"], "--env-id 'CartPole-v1'"),
    (["--buffer-size", str(10**9)], "--buffer-size 1000000000"),
])
def test_bad_input_gets_one_error_line_and_writes_nothing(dqn, tmp_path, flags, named):
    result = run_script(dqn, tmp_path, *flags)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and named in result.stderr
    assert list(tmp_path.iterdir()) == []


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
    rb.start_episodes()
    rng, sampled = np.random.default_rng(0), set()
    for step in range(steps):
        actions = rng.integers(4, size=num_envs)
        next_obs, rewards, terminations, truncations, infos = envs.step(actions)
        real_next_obs = np.array([infos["final_obs"][e] if terminations[e] or truncations[e] else next_obs[e]
                                  for e in range(num_envs)])
        for e in range(num_envs):
            naive[e].append((obs[e], actions[e], rewards[e], real_next_obs[e], terminations[e]))
        rb.add(obs, real_next_obs, actions, rewards, terminations)
        rb.start_episodes(where=terminations | truncations)
        obs = next_obs
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


def test_replay_takes_at_most_7100_bytes_per_transition(dqn):
    rb, rng = dqn.ReplayBuffer(1000, 1, torch.device("cpu"), seed=0), np.random.default_rng(0)
    rb.start_episodes()
    for _ in range(1200):  # filled, and wrapped around
        stack = rng.integers(0, 256, (1, 4, 84, 84), dtype=np.uint8)
        rb.add(stack, stack, np.zeros(1, np.int64), np.ones(1, np.float32), np.zeros(1, bool))
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
class FixedQ(torch.nn.Module):
    """A 'network' whose Q-values are rows of a table, chosen by the first pixel of the observation."""

    def __init__(self, table):
        super().__init__()
        self.table = torch.tensor(table, dtype=torch.float32)

    def forward(self, x):
        return self.table[x[:, 0, 0, 0].long()]


def batch_of(dqn, obs_rows, actions, next_rows, rewards, terminations):
    pixels = lambda rows: torch.tensor(rows, dtype=torch.uint8)[:, None, None, None].expand(-1, 4, 84, 84)
    return dqn.ReplayBatch(pixels(obs_rows), torch.tensor(actions)[:, None], pixels(next_rows),
                           torch.tensor(rewards), torch.tensor(terminations))


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
    assert not torch.equal(fast.network[0].weight, PlainQ(dqn.QNetwork(4).network).network[0].weight)


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
    (3, 1, 0),  # every = 0 is "never"
])
def test_a_schedule_fires_once_per_multiple_of_its_frequency_whatever_the_number_of_envs(
        dqn, global_step, num_envs, expected):
    every = 0 if global_step == 3 else 100
    assert dqn.times_due(global_step, every, num_envs) == expected


def test_epsilon_decays_linearly_then_stays(dqn):
    values = [dqn.linear_schedule(1.0, 0.1, 100, t) for t in (0, 50, 100, 500)]
    assert values == pytest.approx([1.0, 0.55, 0.1, 0.1])


# ------------------------------------------------------------------ whole runs
def catch_args(dqn, total_timesteps, **overrides):
    """Catch settings: the Huber loss (the paper's clipped TD error) with Adam at 5e-4, one update per step, a
    target copy every 250 steps. (MSE at 2.5e-4 learned Catch in 4,000 steps on only 3 of 4 seeds.)"""
    flags = dict(env_id="Catch", total_timesteps=total_timesteps, learning_starts=500, train_frequency=1,
                 learning_rate=5e-4, loss="huber", target_network_frequency=250, buffer_size=total_timesteps,
                 exploration_fraction=0.25)
    return dqn.Args(**flags | overrides)


def test_a_seeded_cpu_run_is_reproducible(dqn, tmp_path):
    args = catch_args(dqn, 700)
    first, second = (dqn.main(replace(args, runs_dir=str(tmp_path / str(i))), make_env=make_catch_env)
                     for i in range(2))
    for a, b in zip(first.state_dict().values(), second.state_dict().values()):
        assert torch.equal(a, b)


@pytest.mark.slow
def test_compile_trains_the_same_weights_as_eager(dqn, tmp_path, monkeypatch):
    compiled, real_compile = [], torch.compile
    monkeypatch.setattr(torch, "compile", lambda f, **kw: compiled.append(f) or real_compile(f, **kw))
    eager, graphs = (dqn.main(catch_args(dqn, 600, compile=c, runs_dir=str(tmp_path / str(c))),
                              make_env=make_catch_env) for c in (False, True))
    assert len(compiled) == 2 and dqn.td_loss in compiled  # the greedy action and the TD loss (100 updates)
    for a, b in zip(eager.state_dict().values(), graphs.state_dict().values()):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5)  # the same arithmetic, summed in another order


def assert_learns_catch(dqn, tmp_path, total_timesteps, **overrides):
    q_network = dqn.main(catch_args(dqn, total_timesteps, runs_dir=str(tmp_path), **overrides), make_env=make_catch_env)
    evaluation = dqn.evaluate(q_network, make_catch_env, "Catch", seed=123, eval_episodes=100, epsilon=0.0,
                              device=torch.device("cpu"))
    assert np.mean(evaluation.returns) >= 0.8  # uniformly random play: below 0


@pytest.mark.slow
def test_it_learns_catch_from_pixels(dqn, tmp_path):
    """4,000 steps, 3,500 updates. Greedy means over seeds 1–4 with these settings, one thread, by hand: DQN 1.0
    for all four, Double DQN 1.0 for all four; 3,000 steps were not enough (DQN 1.0 and 0.76 on seeds 1–2).
    (MSE at 2.5e-4 gave 0.60–0.88 at 3,000 steps, before and after the reference-first redesign alike, and
    DQN 1.0, 0.84, 1.0, 0.76 at 4,000.) CI runs seed 1."""
    assert_learns_catch(dqn, tmp_path, 4000)


@pytest.mark.slow
def test_it_learns_catch_from_pixels_with_4_envs(tmp_path):
    """With 4 envs and these settings, by hand: 1.0 on seeds 1 and 2. The two scripts run this loop line for
    line, so DQN stands for both here, which keeps CI time down."""
    assert_learns_catch(load_script("dqn_atari"), tmp_path, 4000, num_envs=4)


@pytest.fixture(scope="module")
def breakout_run(tmp_path_factory):
    """A short Breakout run of each script, with evaluations, video and a saved model: (args, run folder, events)."""
    runs = {}
    for name in DQN_SCRIPTS:
        dqn, runs_dir = load_script(name), tmp_path_factory.mktemp(name)
        args = dqn.Args(total_timesteps=1500, learning_starts=1000, buffer_size=2000, save_model=True,
                        capture_video=True, eval_frequency=500, eval_episodes=1, runs_dir=str(runs_dir))
        dqn.main(args)
        (run_dir,) = runs_dir.iterdir()
        events = EventAccumulator(str(run_dir))
        events.Reload()
        runs[name] = args, run_dir, events
    return runs


def test_a_short_breakout_run_writes_every_tag_a_video_and_a_loadable_model(dqn, breakout_run):
    args, run_dir, events = breakout_run[dqn.__name__]
    assert {"charts/episodic_return", "charts/episodic_length", "charts/epsilon", "charts/SPS", "losses/td_loss",
            "losses/q_values", "eval/episodic_return", "eval/q_estimate", "eval/discounted_return",
            } <= set(events.Tags()["scalars"])
    assert "hyperparameters/text_summary" in events.Tags()["tensors"]
    assert events.Images("videos/eval")[0].encoded_image_string.startswith(b"GIF8")
    assert cv2.VideoCapture(str(run_dir / "videos" / "step-1500.mp4")).read()[0]
    state_dict = torch.load(run_dir / f"{args.exp_name}.pt", weights_only=True)
    dqn.QNetwork(4).load_state_dict(state_dict)


def test_epsilon_is_charted_from_step_0_at_start_e(dqn, breakout_run):
    args, _, events = breakout_run[dqn.__name__]
    first, second = events.Scalars("charts/epsilon")[:2]
    assert (first.step, first.value, second.step) == (0, args.start_e, 100)
    assert second.value == pytest.approx(dqn.linear_schedule(args.start_e, args.end_e, 150, 99))  # ε of step 100


def test_every_evaluation_is_logged_once_the_last_one_too(dqn, breakout_run):
    _, _, events = breakout_run[dqn.__name__]
    for tag in ("eval/episodic_return", "eval/q_estimate", "eval/discounted_return"):
        assert [e.step for e in events.Scalars(tag)] == [500, 1000, 1500]
    assert [image.step for image in events.Images("videos/eval")] == [500, 1000, 1500]


def test_the_hparams_record_holds_the_learning_hyperparameters_only(dqn, breakout_run):
    args, _, events = breakout_run[dqn.__name__]
    content = events.PluginTagToContent("hparams")
    start = HParamsPluginData.FromString(content["_hparams_/session_start_info"]).session_start_info
    assert set(start.hparams) == set(dqn.HPARAMS) and {"seed", "learning_rate", "gamma", "tau"} <= set(start.hparams)
    assert "capture_video" not in start.hparams and "checkpoint_frequency" not in start.hparams  # bookkeeping
    assert start.hparams["learning_rate"].number_value == args.learning_rate
    assert start.hparams["exp_name"].string_value == dqn.__name__
    # no experiment record: TensorBoard then takes its columns (and metrics, eval/ ones included) from every run
    assert "_hparams_/experiment" not in content


def test_track_mirrors_the_config_and_every_scalar_to_an_offline_wandb_run(dqn, offline_wandb):
    dqn.main(catch_args(dqn, 300, learning_starts=100, eval_episodes=2, track=True, seed=7,
                        runs_dir=str(offline_wandb / "runs")), make_env=make_catch_env)
    config, scalars = wandb_config_and_scalars(offline_wandb)
    assert (config["seed"], config["env_id"], config["track"]) == ("7", '"Catch"', "true")
    # (not the last evaluation's points: W&B's TensorBoard sync may still be reading them when the run finishes)
    assert {"charts/epsilon", "charts/SPS", "losses/td_loss", "losses/q_values"} <= scalars


def test_track_without_wandb_installed_is_one_line_before_anything_is_written(dqn, tmp_path, monkeypatch, capsys):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "wandb" else real_find_spec(name))
    with pytest.raises(SystemExit) as stop:
        dqn.main(dqn.Args(track=True, runs_dir=str(tmp_path / "runs")))
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err == "error: --track True: needs Weights & Biases: pip install wandb\n"
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ evaluation: the overestimation figure's values
def test_discounted_returns_are_worked_backwards_and_cut_where_a_life_is_lost(dqn):
    # G3 = −1; G2 = 1 + 0.5·G3 = 0.5; step 1 loses a life: G1 = 0 + 0.5·G2·0 = 0; G0 = 1 + 0.5·G1 = 1
    assert dqn.discounted_returns([1.0, 0.0, 1.0, -1.0], [False, True, False, False], 0.5) == [1.0, 0.0, 0.5, -1.0]


def test_evaluation_measures_the_q_estimate_and_the_discounted_return_of_the_visited_states(dqn):
    fixed = FixedQ([[0.2, 0.7, -0.1]] * 256)  # the same Q-values whatever the first pixel
    evaluation = dqn.evaluate(fixed, make_catch_env, "Catch", 3, 4, 0.0, torch.device("cpu"), gamma=0.9)
    assert evaluation.q_estimate == pytest.approx(0.7)  # max_a Q(s, a) in every state
    # a Catch game: 9 steps, the ±1 only at the last; G_t = 0.9^(8 − t) · r, averaged over the 9 states of each game
    expected = np.mean(evaluation.returns) * sum(0.9**k for k in range(9)) / 9
    assert evaluation.discounted_return == pytest.approx(expected)
