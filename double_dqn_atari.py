"""Double DQN on Atari: van Hasselt, Guez, Silver (2016), "Deep Reinforcement Learning with Double Q-learning".

The idea in one paragraph: DQN's target r + γ · max_a' Q(s', a'; θ⁻) uses the same values both to choose the
next action and to value it, so any noise in the estimates is picked up by the max and the values are
overestimated. Double DQN decouples the two: the online network chooses the next action and the target network
values it, y = r + γ · Q(s', argmax_a' Q(s', a'; θ); θ⁻). Everything else is DQN (Mnih et al. 2015):
experience replay, a target network refreshed every C steps, ε-greedy actions with a linear decay. This file
is a copy of dqn_atari.py that differs only there: `diff dqn_atari.py double_dqn_atari.py` shows it.

The paper's "tuned" Double DQN is these flags: `--target-network-frequency 7500` (30,000 frames) and
`--end-e 0.01`, with evaluation at ε 0.001; its one shared bias for all action values is not reproduced here.

The environment follows the DeepMind protocol exactly: up to 30 no-ops at a real reset, each action repeated for
4 frames with the pixel-wise max of the last two, a life loss ends the learning episode but not the game, FIRE
after every reset where the game has it, rewards clipped to their sign for learning only, 84×84 luminance
frames, a stack of 4, and games truncated (not terminated) at 108,000 frames. The replay memory stores each
frame once and rebuilds the stacks when it samples, so a 1M-transition memory takes ~7 GB instead of ~28 GB.

Run:
    python double_dqn_atari.py --env-id BreakoutNoFrameskip-v4
    python double_dqn_atari.py --help        # every flag, with the paper's value where ours differs
    tensorboard --logdir runs
"""

import os
import random
import signal
import sys
import time
from collections import deque
from dataclasses import asdict, dataclass
from typing import Literal, NamedTuple

import ale_py
import cv2
import gymnasium as gym
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import tyro
from tensorboard.compat.proto.summary_pb2 import Summary
from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import hparams

gym.register_envs(ale_py)  # makes the ALE ids known to gym.make
ale_py.ALEInterface.setLoggerMode(ale_py.LoggerMode.Error)  # no banner on every env start


@dataclass
class Args:
    exp_name: str = os.path.basename(__file__)[: -len(".py")]
    """the name of this experiment (part of the run folder's name)"""
    seed: int = 1
    """seed of the experiment: python, numpy, torch, the envs and their action spaces"""
    torch_deterministic: bool = True
    """if toggled, `torch.backends.cudnn.deterministic=True`"""
    cuda: bool = True
    """if toggled, cuda is used when available"""
    track: bool = False
    """accepted so CleanRL commands run unchanged; Weights & Biases is not used here (TensorBoard only)"""
    wandb_project_name: str = "cleanRL"
    """accepted for CleanRL compatibility; unused"""
    wandb_entity: str | None = None
    """accepted for CleanRL compatibility; unused"""
    capture_video: bool = False
    """whether to record evaluation games as mp4 in `runs/{run_name}/videos/` (and as GIFs in TensorBoard)"""
    save_model: bool = False
    """whether to save the online network's state_dict into the run folder (`{exp_name}.pt`)"""
    upload_model: bool = False
    """accepted for CleanRL compatibility; unused (no Hugging Face Hub upload)"""
    hf_entity: str = ""
    """accepted for CleanRL compatibility; unused"""

    env_id: str = "BreakoutNoFrameskip-v4"
    """the id of the Atari game: `*NoFrameskip-v4` (no sticky actions) or `ALE/*-v5` (sticky actions 0.25)"""
    total_timesteps: int = 10_000_000
    """total agent steps (each one 4 frames), summed over all envs; the paper trained for 50M"""
    learning_rate: float = 1e-4
    """the learning rate of Adam (the paper: RMSProp, lr 0.00025)"""
    num_envs: int = 1
    """the number of parallel game environments"""
    buffer_size: int = 1_000_000
    """the replay memory's capacity N in transitions (~7,063 bytes each)"""
    gamma: float = 0.99
    """the discount factor γ"""
    tau: float = 1.0
    """the target network update rate: θ⁻ ← τ·θ + (1−τ)·θ⁻ (1.0 = the paper's hard copy)"""
    target_network_frequency: int = 1000
    """the number of agent steps C between target network updates (the paper: 10,000 updates = 40,000 steps)"""
    batch_size: int = 32
    """the minibatch size sampled from the replay memory"""
    start_e: float = 1
    """the starting ε for exploration"""
    end_e: float = 0.01
    """the final ε for exploration (the paper: 0.1)"""
    exploration_fraction: float = 0.10
    """the fraction of `total_timesteps` over which ε decays linearly (the paper: 1M steps)"""
    learning_starts: int = 80000
    """the agent step at which learning starts (the paper: 50,000)"""
    train_frequency: int = 4
    """the number of agent steps between two gradient updates"""
    loss: Literal["mse", "huber"] = "mse"
    """the TD loss: `mse` (CleanRL) or `huber` (the paper's TD error clipped to [-1, 1])"""
    compile: bool = False
    """if toggled, the TD loss and the greedy action run as torch.compile graphs (on CUDA with CUDA graphs)"""

    checkpoint_frequency: int = 0
    """agent steps between checkpoints (weights, optimizer, replay, RNGs) in the run folder; 0 = none"""
    resume: str | None = None
    """a run folder or checkpoint file to continue; flags left at their defaults take the checkpoint's values"""
    eval_frequency: int = 0
    """agent steps between evaluations (`eval/episodic_return`); 0 = only at the end of training"""
    eval_episodes: int = 10
    """the number of full games per evaluation"""
    eval_epsilon: float = 0.05
    """ε during evaluation (the Nature protocol: 0.05; the Double DQN paper: 0.001)"""
    eval_only: bool = False
    """evaluate (and with --capture-video, record) the model at --model-path without training"""
    model_path: str | None = None
    """the saved state_dict that --eval-only plays"""


def fail(message: str):
    """Stop with one line on stderr and exit status 2: bad input never gives a traceback."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def check_args(args: Args):
    """Reject flag values that cannot make a sensible run, before anything is written."""
    def flag(name):
        return f"--{name.replace('_', '-')} {getattr(args, name)}"
    for name in ("total_timesteps", "num_envs", "buffer_size", "batch_size", "target_network_frequency",
                 "train_frequency", "eval_episodes", "learning_rate", "exploration_fraction"):
        if getattr(args, name) <= 0:
            fail(f"{flag(name)}: must be positive")
    for name in ("learning_starts", "checkpoint_frequency", "eval_frequency"):
        if getattr(args, name) < 0:
            fail(f"{flag(name)}: must be 0 or more")
    if args.buffer_size < args.batch_size:
        fail(f"{flag('buffer_size')}: smaller than --batch-size {args.batch_size}")
    if args.buffer_size // args.num_envs < 5:
        fail(f"{flag('buffer_size')}: fewer than 5 slots per env with --num-envs {args.num_envs}")
    if not args.eval_only and args.learning_starts >= args.total_timesteps:
        fail(f"{flag('learning_starts')}: learning would never start (--total-timesteps {args.total_timesteps})")
    if not 0 < args.tau <= 1:
        fail(f"{flag('tau')}: must be in (0, 1]")
    if not 0 <= args.gamma < 1:
        fail(f"{flag('gamma')}: must be in [0, 1)")
    if args.end_e > args.start_e:
        fail(f"{flag('end_e')}: larger than --start-e {args.start_e}")
    if not 0 <= args.eval_epsilon <= 1:
        fail(f"{flag('eval_epsilon')}: must be in [0, 1]")
    if args.eval_only and not args.model_path:
        fail("--eval-only needs --model-path (a state_dict saved with --save-model)")


# ---------------------------------------------------------------------------------------------------------
# Environment: the DeepMind Atari pipeline. Gymnasium provides reward clipping, frame stacking and episode
# statistics; the four wrappers below are written out because gymnasium's AtariPreprocessing differs in two
# details (it takes the max after converting to grayscale, and its life-loss terminal restarts the game).
# ---------------------------------------------------------------------------------------------------------
class NoopReset(gym.Wrapper):
    """On a real reset, play a uniform random number of no-ops in [1, noop_max]: varied starting states."""

    def __init__(self, env, noop_max: int = 30):
        super().__init__(env)
        self.noop_max = noop_max

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        for _ in range(self.unwrapped.np_random.integers(1, self.noop_max + 1)):
            obs, _, terminated, truncated, info = self.env.step(0)
            if terminated or truncated:
                obs, info = self.env.reset()
        return obs, info


class MaxAndSkip(gym.Wrapper):
    """Repeat each action for `skip` frames and sum the rewards. The observation is the pixel-wise max of the
    last two raw RGB frames: some Atari sprites are drawn only every other frame."""

    def __init__(self, env, skip: int = 4):
        super().__init__(env)
        self.skip = skip

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        self.last_frame = obs
        return obs, info

    def step(self, action):
        total_reward = 0.0
        for _ in range(self.skip):
            previous_frame = self.last_frame
            self.last_frame, reward, terminated, truncated, info = self.env.step(action)
            total_reward += reward
            if terminated or truncated:
                break
        return np.maximum(previous_frame, self.last_frame), total_reward, terminated, truncated, info


class EpisodicLife(gym.Wrapper):
    """A lost life ends the learning episode (`terminated=True`, no bootstrap) but not the game: the next
    reset continues from where the life was lost with one no-op step. Only game over truly resets."""

    def __init__(self, env):
        super().__init__(env)
        self.lives = 0
        self.game_over = True

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.game_over = terminated or truncated
        lives = self.unwrapped.ale.lives()
        if 0 < lives < self.lives:
            terminated = True
        self.lives = lives
        return obs, reward, terminated, truncated, info

    def reset(self, **kwargs):
        if self.game_over:
            obs, info = self.env.reset(**kwargs)
        else:
            obs, _, terminated, truncated, info = self.env.step(0)
            self.game_over = terminated or truncated
            if self.game_over:  # the no-op step itself ended the game
                obs, info = self.env.reset(**kwargs)
        self.game_over = False
        self.lives = self.unwrapped.ale.lives()
        return obs, info


class FireReset(gym.Wrapper):
    """Press FIRE after every reset: games such as Breakout wait for it before they start (or continue after a
    lost life)."""

    def __init__(self, env):
        super().__init__(env)
        self.fire_action = env.unwrapped.get_action_meanings().index("FIRE")

    def reset(self, **kwargs):
        self.env.reset(**kwargs)
        obs, _, terminated, truncated, info = self.env.step(self.fire_action)
        if terminated or truncated:  # rare: the FIRE step itself lost a life
            obs, info = self.env.reset()
        return obs, info


def luminance_84x84(frame: np.ndarray) -> np.ndarray:
    """RGB frame → luminance (Y of YUV), resized to 84×84 by pixel-area averaging."""
    return cv2.resize(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), (84, 84), interpolation=cv2.INTER_AREA)


def check_atari_id(env_id: str):
    """One clear line for an id that is not an Atari game of ale-py."""
    try:
        spec = gym.spec(env_id)
    except gym.error.Error:
        spec = None
    if spec is None or spec.entry_point != "ale_py.env:AtariEnv":
        fail(f"--env-id {env_id!r} is not an Atari game of ale-py (try BreakoutNoFrameskip-v4 or ALE/Pong-v5)")


def make_env(env_id: str, seed: int, idx: int, training: bool = True, max_frames_per_episode: int = 108_000,
             render_mode: str | None = None):
    """A thunk that builds one Atari env. `training=False` gives the evaluation env: full games (no life-loss
    terminals) and raw rewards. Episodes are truncated after `max_frames_per_episode` emulator frames."""
    check_atari_id(env_id)

    def thunk():
        # frameskip=1: MaxAndSkip does the skipping. v5 ids keep their sticky actions (Machado et al. 2018).
        env = gym.make(env_id, frameskip=1, max_num_frames_per_episode=max_frames_per_episode,
                       render_mode=render_mode)
        env = NoopReset(env, noop_max=30)
        env = MaxAndSkip(env, skip=4)
        env = gym.wrappers.RecordEpisodeStatistics(env)  # raw score and length (agent steps) of the whole game
        if training:
            env = EpisodicLife(env)
        if "FIRE" in env.unwrapped.get_action_meanings():
            env = FireReset(env)
        env = gym.wrappers.TransformObservation(
            env, luminance_84x84, gym.spaces.Box(0, 255, (84, 84), np.uint8))
        if training:
            env = gym.wrappers.TransformReward(env, np.sign)
        env = gym.wrappers.FrameStackObservation(env, 4)
        env.action_space.seed(seed + idx)
        return env

    return thunk


# ---------------------------------------------------------------------------------------------------------
# The Nature CNN
# ---------------------------------------------------------------------------------------------------------
class QNetwork(nn.Module):
    def __init__(self, n_actions: int):
        super().__init__()
        self.network = nn.Sequential(
            nn.Conv2d(4, 32, 8, stride=4),
            nn.ReLU(),
            nn.Conv2d(32, 64, 4, stride=2),
            nn.ReLU(),
            nn.Conv2d(64, 64, 3, stride=1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(3136, 512),
            nn.ReLU(),
            nn.Linear(512, n_actions),
        )

    def forward(self, x):
        return self.network(x / 255.0)


# ---------------------------------------------------------------------------------------------------------
# Replay memory D: one 84×84 frame per transition
# ---------------------------------------------------------------------------------------------------------
class ReplayBatch(NamedTuple):
    observations: torch.Tensor  # uint8 (B, 4, 84, 84)
    actions: torch.Tensor  # int64 (B, 1)
    next_observations: torch.Tensor  # uint8 (B, 4, 84, 84)
    rewards: torch.Tensor  # float32 (B,)
    terminations: torch.Tensor  # float32 (B,)


class ReplayBuffer:
    """Each env writes its own stream of slots. A slot holds the newest frame of an observation and, unless it
    is the first frame of an episode, the transition that led to it: (action, reward, terminated). A transition
    at slot i is (stack ending at i−1, action, reward, stack ending at i, terminated). A stack reaching back past
    an episode's first frame repeats that frame, as gymnasium's FrameStackObservation pads at reset, so a stack
    never mixes two episodes. Memory: 84·84 + 7 = 7,063 bytes per slot.
    The frames are a torch tensor on `storage`: on the GPU when they fit there (see `replay_storage`), so a
    minibatch is gathered where the network runs and never copied from the host. The rest stays in numpy."""

    ARRAYS = ("frames", "actions", "rewards", "terminations", "first")

    def __init__(self, buffer_size: int, num_envs: int, device: torch.device, seed: int, frame_shape=(84, 84),
                 storage=torch.device("cpu")):
        self.num_envs = num_envs
        self.capacity = buffer_size // num_envs  # slots per env stream
        shape = (num_envs, self.capacity)
        self.frames = torch.zeros(shape + frame_shape, dtype=torch.uint8, device=storage)
        self.actions = np.zeros(shape, dtype=np.uint8)
        self.rewards = np.zeros(shape, dtype=np.float32)
        self.terminations = np.zeros(shape, dtype=bool)
        self.first = np.zeros(shape, dtype=bool)  # the slot holds an episode's first frame: no transition
        self.pos = np.zeros(num_envs, dtype=np.int64)  # next slot to write, per stream
        self.size = np.zeros(num_envs, dtype=np.int64)  # slots written, per stream (≤ capacity)
        self.device = device
        self.rng = np.random.default_rng(seed)

    @staticmethod
    def frame_nbytes_for(buffer_size: int, frame_shape=(84, 84)) -> int:
        """The bytes the frames of a memory of `buffer_size` transitions take (the part that may be on the GPU)."""
        return buffer_size * int(np.prod(frame_shape))

    @staticmethod
    def nbytes_for(buffer_size: int, frame_shape=(84, 84)) -> int:
        """The bytes all the arrays of a memory of `buffer_size` transitions take."""
        return ReplayBuffer.frame_nbytes_for(buffer_size, frame_shape) + buffer_size * (1 + 4 + 1 + 1)

    def _write(self, envs, frames, actions, rewards, terminations, first: bool):
        slots = self.pos[envs]
        self.frames[torch.from_numpy(envs), torch.from_numpy(slots)] = torch.from_numpy(frames).to(self.frames.device)
        self.actions[envs, slots] = actions
        self.rewards[envs, slots] = rewards
        self.terminations[envs, slots] = terminations
        self.first[envs, slots] = first
        self.pos[envs] = (slots + 1) % self.capacity
        self.size[envs] = np.minimum(self.size[envs] + 1, self.capacity)

    def start_episodes(self, obs: np.ndarray, envs=None):
        """Store the first observation of a new episode in each of `envs` (default: all). A first frame that no
        transition follows (an episode cut off by an interruption) is overwritten rather than kept."""
        envs = np.arange(self.num_envs) if envs is None else envs
        newest = (self.pos[envs] - 1) % self.capacity
        unused = (self.size[envs] > 0) & self.first[envs, newest]
        self.pos[envs] = np.where(unused, newest, self.pos[envs])
        self.size[envs] -= unused
        self._write(envs, obs[envs, -1], 0, 0.0, False, first=True)

    def add(self, next_obs, actions, rewards, terminations, truncations, infos):
        """Store one step of the vector env (same-step autoreset): for an env whose episode ended, `next_obs`
        already is the next episode's first observation, and the real last one is in infos["final_obs"]."""
        done = np.flatnonzero(terminations | truncations)
        last_frames = next_obs[:, -1].copy()
        for env in done:
            last_frames[env] = infos["final_obs"][env][-1]
        self._write(np.arange(self.num_envs), last_frames, actions, rewards, terminations, first=False)
        if len(done):
            self.start_episodes(next_obs, done)

    def _transition_slots(self, envs, newest):
        """Slot indices (B, 5) of the frames of the transitions at `newest`: obs = [:, :4], next_obs = [:, 1:].
        Going back, a stack stops at an episode's first frame and repeats it."""
        slots = np.empty((len(newest), 5), dtype=np.int64)
        slots[:, 4] = newest
        for k in (3, 2, 1, 0):
            later = slots[:, k + 1]
            slots[:, k] = np.where(self.first[envs, later], later, (later - 1) % self.capacity)
        return slots

    def sample(self, batch_size: int) -> ReplayBatch:
        """A uniform minibatch of complete transitions, their stacks rebuilt from the stored frames."""
        envs, slots = np.empty(0, np.int64), np.empty((0, 5), np.int64)
        for _ in range(1000):
            e = self.rng.integers(self.num_envs, size=2 * batch_size)
            age = self.rng.integers(self.size[e])  # 0 = the newest slot of that stream
            s = self._transition_slots(e, (self.pos[e] - 1 - age) % self.capacity)
            # a transition ends at a slot that is no episode's start, and all its frames are younger than the oldest
            back = (s[:, 4] - s[:, 0]) % self.capacity
            valid = ~self.first[e, s[:, 4]] & (age + back < self.size[e])
            envs, slots = np.concatenate([envs, e[valid]]), np.concatenate([slots, s[valid]])
            if len(envs) >= batch_size:
                break
        else:
            raise RuntimeError("the replay memory holds no complete transition yet")
        envs, slots = envs[:batch_size], slots[:batch_size]
        newest = slots[:, 4]
        to = lambda a: torch.from_numpy(a).to(self.device)  # noqa: E731
        rows = self.frames.flatten(0, 1)  # one row per slot; the gather runs where the frames are (GPU or host)
        index = torch.from_numpy(envs[:, None] * self.capacity + slots).flatten().to(rows.device)
        stacks = rows.index_select(0, index).unflatten(0, slots.shape).to(self.device)  # (B, 5, 84, 84)
        return ReplayBatch(
            observations=stacks[:, :4],
            actions=to(self.actions[envs, newest].astype(np.int64)[:, None]),
            next_observations=stacks[:, 1:],
            rewards=to(self.rewards[envs, newest]),
            terminations=to(self.terminations[envs, newest].astype(np.float32)),
        )

    def state_dict(self) -> dict:
        """The written part of the memory as raw tensors (fast to save and to load), and the sampling RNG."""
        written = int(self.size.max())
        state = {name: torch.from_numpy(np.ascontiguousarray(getattr(self, name)[:, :written]))
                 for name in self.ARRAYS if name != "frames"}
        frames = self.frames[:, :written]  # from the GPU: a compact copy; on the host: no copy of a full memory
        state["frames"] = frames.cpu() if frames.is_cuda else torch.from_numpy(np.ascontiguousarray(frames.numpy()))
        return state | {"pos": torch.from_numpy(self.pos), "size": torch.from_numpy(self.size),
                        "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict):
        written = state["frames"].shape[1]
        for name in self.ARRAYS:
            getattr(self, name)[:, :written] = state[name]
        self.pos[:], self.size[:] = state["pos"].numpy(), state["size"].numpy()
        self.rng.bit_generator.state = state["rng"]


def available_memory_bytes() -> int:
    """Memory the OS can still give this process (Linux: MemAvailable; elsewhere: free physical pages)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def replay_storage(buffer_size: int, device: torch.device) -> torch.device:
    """Where the replay frames live: on the GPU when they take at most 80% of its free memory (the rest is for
    the networks and their workspace), else in host memory."""
    if device.type == "cuda" and ReplayBuffer.frame_nbytes_for(buffer_size) <= 0.8 * torch.cuda.mem_get_info(device)[0]:
        return device
    return torch.device("cpu")


def check_replay_fits(buffer_size: int, storage: torch.device):
    """Refuse at once, rather than be killed hours later when the host memory has filled up."""
    frames_elsewhere = ReplayBuffer.frame_nbytes_for(buffer_size) if storage.type == "cuda" else 0
    needed, available = ReplayBuffer.nbytes_for(buffer_size) - frames_elsewhere, available_memory_bytes()
    if needed > 0.9 * available:
        fail(f"--buffer-size {buffer_size} needs {needed / 2**30:.1f} GiB of replay memory but only "
             f"{available / 2**30:.1f} GiB is available; lower --buffer-size")


# ---------------------------------------------------------------------------------------------------------
# Learning
# ---------------------------------------------------------------------------------------------------------
def linear_schedule(start_e: float, end_e: float, duration: float, t: int) -> float:
    """ε decays linearly from start_e to end_e over `duration` steps, then stays at end_e."""
    slope = (end_e - start_e) / duration
    return max(slope * t + start_e, end_e)


def td_target(q_network, target_network, data: ReplayBatch, gamma: float):
    """The regression target of a minibatch, computed without gradient."""
    with torch.no_grad():
        # Double DQN target: y = r + γ · Q_target(s', argmax_a' Q(s', a')), and no bootstrap past a terminal state
        next_actions = q_network(data.next_observations).argmax(dim=1, keepdim=True)
        next_q = target_network(data.next_observations).gather(1, next_actions).squeeze(1)
        return data.rewards + gamma * next_q * (1 - data.terminations)


def td_loss(q_network, target_network, data: ReplayBatch, gamma: float, loss: str):
    """The TD loss of a minibatch, and the Q(s, a) it regresses toward the target."""
    y = td_target(q_network, target_network, data, gamma)
    q_sa = q_network(data.observations).gather(1, data.actions).squeeze(1)
    loss_fn = F.mse_loss if loss == "mse" else F.smooth_l1_loss  # Huber = the paper's TD error clipped to ±1
    return loss_fn(q_sa, y), q_sa


def update_target(target_network, q_network, tau: float):
    """θ⁻ ← τ·θ + (1−τ)·θ⁻; τ = 1 is the paper's periodic hard copy."""
    for target_param, param in zip(target_network.parameters(), q_network.parameters()):
        target_param.data.copy_(tau * param.data + (1.0 - tau) * target_param.data)


def evaluate(q_network, make_env, env_id: str, seed: int, eval_episodes: int, epsilon: float, device,
             video_paths=()):
    """Play `eval_episodes` full games ε-greedily (no life-loss terminals, raw scores) and return their scores.
    The first games are recorded as mp4, one path per game in `video_paths`: the screen after the reset and
    after every agent step."""
    env = make_env(env_id, seed, 0, training=False, render_mode="rgb_array" if video_paths else None)()
    returns = []
    for episode in range(eval_episodes):
        obs, _ = env.reset(seed=seed if episode == 0 else None)
        video = None
        if episode < len(video_paths):
            height, width, _ = env.render().shape
            video = cv2.VideoWriter(video_paths[episode], cv2.VideoWriter_fourcc(*"mp4v"), 15, (width, height))
            video.write(cv2.cvtColor(env.render(), cv2.COLOR_RGB2BGR))
        terminated = truncated = False
        while not (terminated or truncated):
            if env.np_random.random() < epsilon:
                action = env.action_space.sample()
            else:
                with torch.no_grad():
                    action = q_network(torch.from_numpy(obs).to(device)[None]).argmax(dim=1).item()
            obs, _, terminated, truncated, info = env.step(action)
            if video is not None:
                video.write(cv2.cvtColor(env.render(), cv2.COLOR_RGB2BGR))
        returns.append(float(info["episode"]["r"]))
        if video is not None:
            video.release()
    env.close()
    return returns


def log_video(writer: SummaryWriter, tag: str, path: str, step: int, max_frames: int = 300):
    """Show an mp4 in TensorBoard as an animated GIF (OpenCV encodes it; no moviepy), at most `max_frames`."""
    capture, frames = cv2.VideoCapture(path), []
    while (grabbed := capture.read())[0]:
        frames.append(grabbed[1])
    capture.release()
    animation = cv2.Animation()
    animation.frames = frames[:: max(1, -(-len(frames) // max_frames))]
    animation.durations = [1000 * len(frames) // (15 * len(animation.frames))] * len(animation.frames)
    _, gif = cv2.imencodeanimation(".gif", animation)
    height, width = frames[0].shape[:2]
    image = Summary.Image(height=height, width=width, colorspace=3, encoded_image_string=gif.tobytes())
    writer.file_writer.add_summary(Summary(value=[Summary.Value(tag=tag, image=image)]), step)


def log_hyperparameters(writer: SummaryWriter, args: Args):
    """The flags as a markdown table (CleanRL's "hyperparameters" text) and in TensorBoard's HPARAMS tab."""
    flags = {k: (v if isinstance(v, (int, float, str, bool)) else str(v)) for k, v in asdict(args).items()}
    writer.add_text("hyperparameters", "|param|value|\n|-|-|\n" + "\n".join(f"|{k}|{v}|" for k, v in flags.items()))
    for summary in hparams(flags, {"charts/episodic_return": 0.0, "eval/episodic_return": 0.0}):
        writer.file_writer.add_summary(summary)


def format_duration(seconds: float) -> str:
    hours, rest = divmod(int(seconds), 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"


# ---------------------------------------------------------------------------------------------------------
# Checkpoints: everything a run needs to continue, in one file written atomically
# ---------------------------------------------------------------------------------------------------------
CHECKPOINT = "checkpoint.pt"
CHANGEABLE_ON_RESUME = {"total_timesteps", "checkpoint_frequency", "eval_frequency", "eval_episodes", "eval_epsilon",
                        "capture_video", "save_model", "resume", "cuda", "compile", "track", "upload_model"}


def save_checkpoint(state: dict, path: str):
    """Write to a temporary file, then rename: a kill during the write leaves the previous checkpoint intact."""
    torch.save(state, path + ".tmp")
    os.replace(path + ".tmp", path)


def load_checkpoint(path: str) -> tuple[dict, str]:
    """The checkpoint in a run folder or file, memory-mapped; one error line if it is missing or unreadable."""
    path = os.path.join(path, CHECKPOINT) if os.path.isdir(path) else path
    if not os.path.isfile(path):
        fail(f"--resume {path}: no checkpoint there")
    try:
        return torch.load(path, weights_only=True, mmap=True), path
    except Exception as error:  # a truncated or foreign file: torch raises various types
        fail(f"--resume {path}: not a readable checkpoint ({type(error).__name__})")


def resumed_args(saved: dict, given: Args) -> Args:
    """The checkpoint's flags, with those given on the command line (differing from the defaults) applied
    where a run may change them; any other difference is an error."""
    merged, defaults = dict(saved), asdict(Args())
    for name, value in asdict(given).items():
        if value == defaults[name] or value == saved[name]:
            continue
        if name not in CHANGEABLE_ON_RESUME:
            fail(f"--{name.replace('_', '-')} {value}: the checkpoint's run used {saved[name]}, and only "
                 f"{', '.join(sorted(CHANGEABLE_ON_RESUME))} may change on --resume")
        merged[name] = value
    return Args(**merged)


def load_model(path: str, n_actions: int, device) -> QNetwork:
    if not os.path.isfile(path):
        fail(f"--model-path {path}: no such file")
    q_network = QNetwork(n_actions).to(device)
    try:
        q_network.load_state_dict(torch.load(path, map_location=device, weights_only=True))
    except Exception as error:
        fail(f"--model-path {path}: not a state_dict of this QNetwork ({type(error).__name__})")
    return q_network


def main(args: Args, make_env=make_env, runs_dir: str = "runs"):
    """Train (or with --eval-only, evaluate) and return the online network. `make_env` can be swapped for
    another pixel env (tests do)."""
    check_args(args)
    checkpoint = None
    if args.resume:
        checkpoint, checkpoint_path = load_checkpoint(args.resume)
        args = resumed_args(checkpoint["args"], args)
    for flag in ("track", "upload_model"):
        if getattr(args, flag):
            print(f"warning: --{flag.replace('_', '-')} is accepted for CleanRL compatibility but does nothing here")
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.backends.cudnn.deterministic = args.torch_deterministic
    device = torch.device("cuda" if torch.cuda.is_available() and args.cuda else "cpu")
    run_name = f"{args.env_id.replace('/', '_')}__{args.exp_name}__{args.seed}__{int(time.time())}"
    run_dir = os.path.dirname(checkpoint_path) if checkpoint else os.path.join(runs_dir, run_name)

    if args.eval_only:
        n_actions = make_env(args.env_id, args.seed, 0, training=False)().action_space.n
        q_network = load_model(args.model_path, n_actions, device)
        video_paths = []
        if args.capture_video:
            os.makedirs(os.path.join(run_dir, "videos"))
            video_paths = [os.path.join(run_dir, "videos", f"eval-{i}.mp4") for i in range(args.eval_episodes)]
        returns = evaluate(q_network, make_env, args.env_id, args.seed, args.eval_episodes, args.eval_epsilon,
                           device, video_paths)
        for i, episodic_return in enumerate(returns):
            print(f"eval game {i}: return {episodic_return:g}")
        print(f"mean return over {len(returns)} games: {np.mean(returns):.2f}" +
              (f" (videos in {os.path.dirname(video_paths[0])})" if video_paths else ""))
        return q_network

    storage = replay_storage(args.buffer_size, device)
    check_replay_fits(args.buffer_size, storage)
    envs = gym.vector.SyncVectorEnv(
        [make_env(args.env_id, args.seed, i) for i in range(args.num_envs)],
        autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,  # no transition crosses an episode boundary
    )
    assert isinstance(envs.single_action_space, gym.spaces.Discrete), "only discrete action spaces are supported"
    envs.action_space.seed(args.seed)
    rb = ReplayBuffer(args.buffer_size, args.num_envs, device, args.seed, storage=storage)

    q_network = QNetwork(envs.single_action_space.n).to(device)
    # on CUDA, Adam's fused kernel: the same update in one launch instead of one per parameter and operation
    optimizer = torch.optim.Adam(q_network.parameters(), lr=args.learning_rate, fused=device.type == "cuda")
    target_network = QNetwork(envs.single_action_space.n).to(device)
    target_network.load_state_dict(q_network.state_dict())
    compiled = lambda f: torch.compile(f, mode="reduce-overhead" if device.type == "cuda" else None)  # noqa: E731
    policy, loss_of = (compiled(q_network), compiled(td_loss)) if args.compile else (q_network, td_loss)

    rng = np.random.default_rng(args.seed)
    recent_returns = deque(maxlen=20)
    global_step, num_updates, next_target_update = 0, 0, args.target_network_frequency
    reset_seed = args.seed
    if checkpoint:
        q_network.load_state_dict(checkpoint["q_network"])
        target_network.load_state_dict(checkpoint["target_network"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        rb.load_state_dict(checkpoint["replay"])
        global_step, num_updates, next_target_update = (checkpoint[k] for k in ("global_step", "num_updates",
                                                                                  "next_target_update"))
        recent_returns.extend(checkpoint["recent_returns"])
        random.setstate(checkpoint["rng"]["python"])
        torch.set_rng_state(checkpoint["rng"]["torch"])
        rng.bit_generator.state = checkpoint["rng"]["exploration"]
        envs.action_space.np_random.bit_generator.state = checkpoint["rng"]["action_space"]
        for env, state in zip(envs.envs, checkpoint["rng"]["envs"]):
            env.unwrapped.np_random.bit_generator.state = state
        reset_seed = None  # the env RNGs continue where the checkpoint left them
        del checkpoint  # release the memory-mapped replay
        print(f"resumed {run_dir} at step {global_step:,}: the games in progress at the interruption are lost, "
              "the envs start new ones")
    # a resumed writer hides the points the killed run logged after its checkpoint (TensorBoard's purge)
    writer = SummaryWriter(run_dir, purge_step=global_step + 1 if global_step else None)
    if global_step == 0:
        log_hyperparameters(writer, args)
    print(f"run folder: {run_dir}  (device: {device}, replay frames on: {storage})")

    checkpoint_step = None  # the step of the last checkpoint this process wrote

    def write_checkpoint():
        nonlocal checkpoint_step
        writer.flush()  # every point up to the checkpoint is on disk; a resume drops those after it
        checkpoint_step = global_step
        save_checkpoint({
            "args": asdict(args), "global_step": global_step, "num_updates": num_updates,
            "next_target_update": next_target_update, "recent_returns": list(recent_returns),
            "q_network": q_network.state_dict(), "target_network": target_network.state_dict(),
            "optimizer": optimizer.state_dict(), "replay": rb.state_dict(),
            "rng": {"python": random.getstate(), "torch": torch.get_rng_state(),
                    "exploration": rng.bit_generator.state,
                    "action_space": envs.action_space.np_random.bit_generator.state, "envs": env_rng_states},
        }, os.path.join(run_dir, CHECKPOINT))

    def evaluate_and_log():
        video_paths = []
        if args.capture_video:
            os.makedirs(os.path.join(run_dir, "videos"), exist_ok=True)
            video_paths = [os.path.join(run_dir, "videos", f"step-{global_step}.mp4")]
        returns = evaluate(q_network, make_env, args.env_id, args.seed + global_step, args.eval_episodes,
                           args.eval_epsilon, device, video_paths)
        writer.add_scalar("eval/episodic_return", np.mean(returns), global_step)
        if video_paths:
            log_video(writer, "videos/eval", video_paths[0], global_step)
        print(f"eval at step {global_step:,}: mean return {np.mean(returns):.2f} over {len(returns)} games")

    env_rng_states = [env.unwrapped.np_random.bit_generator.state for env in envs.envs]
    obs, _ = envs.reset(seed=reset_seed)
    rb.start_episodes(obs)
    next_checkpoint = (global_step // args.checkpoint_frequency + 1) * args.checkpoint_frequency \
        if args.checkpoint_frequency else None
    next_eval = (global_step // args.eval_frequency + 1) * args.eval_frequency if args.eval_frequency else None
    start_time = window_time = time.time()
    start_step = window_step = global_step
    interrupted = False

    def stop_after_this_step(signum, frame):  # so that what is saved is a consistent state
        nonlocal interrupted
        interrupted = True
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a second Ctrl-C stops at once

    previous_sigint_handler = signal.signal(signal.SIGINT, stop_after_this_step)
    try:
        while global_step < args.total_timesteps and not interrupted:
            # ε-greedy, each env tossing its own coin
            epsilon = linear_schedule(args.start_e, args.end_e, args.exploration_fraction * args.total_timesteps,
                                      global_step)
            actions = envs.action_space.sample()
            greedy = rng.random(args.num_envs) >= epsilon
            if greedy.any():
                with torch.no_grad():
                    q_values = policy(torch.from_numpy(obs).to(device))
                actions = np.where(greedy, q_values.argmax(dim=1).cpu().numpy(), actions)

            # a checkpoint keeps the env RNGs as they are before the step, so a resumed run replays its resets
            env_rng_states = [env.unwrapped.np_random.bit_generator.state for env in envs.envs]
            next_obs, rewards, terminations, truncations, infos = envs.step(actions)
            global_step += args.num_envs

            if "final_info" in infos and "episode" in infos["final_info"]:
                episodes = infos["final_info"]["episode"]
                for env in np.flatnonzero(infos["final_info"]["_episode"]):
                    recent_returns.append(float(episodes["r"][env]))
                    writer.add_scalar("charts/episodic_return", episodes["r"][env], global_step)
                    writer.add_scalar("charts/episodic_length", episodes["l"][env], global_step)

            rb.add(next_obs, actions, rewards, terminations, truncations, infos)
            obs = next_obs

            # one gradient update per `train_frequency` agent steps, summed over the envs
            while num_updates < max(0, global_step - args.learning_starts) // args.train_frequency:
                data = rb.sample(args.batch_size)
                loss, q_sa = loss_of(q_network, target_network, data, args.gamma, args.loss)
                if not torch.isfinite(loss):
                    print(f"error: the TD loss became {loss.item()} at step {global_step:,}; training stopped "
                          "before the weights were touched (lower --learning-rate?)", file=sys.stderr)
                    raise SystemExit(1)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                num_updates += 1
                if num_updates % 25 == 0:
                    writer.add_scalar("losses/td_loss", loss.item(), global_step)
                    writer.add_scalar("losses/q_values", q_sa.mean().item(), global_step)

            if global_step >= next_target_update:
                update_target(target_network, q_network, args.tau)
                next_target_update += args.target_network_frequency

            if next_eval and global_step >= next_eval:
                evaluate_and_log()
                next_eval += args.eval_frequency
            now = time.time()
            if now - window_time >= 5 or global_step >= args.total_timesteps:
                sps = (global_step - window_step) / (now - window_time)
                writer.add_scalar("charts/SPS", sps, global_step)
                writer.add_scalar("charts/epsilon", epsilon, global_step)
                mean_return = f"{np.mean(recent_returns):.1f}" if recent_returns else "-"
                print(f"step {global_step:,}/{args.total_timesteps:,} ({100 * global_step / args.total_timesteps:.1f}%)"
                      f" | SPS {sps:.0f} | ETA {format_duration((args.total_timesteps - global_step) / sps)}"
                      f" | return {mean_return} (last {len(recent_returns)} games) | ε {epsilon:.3f}", flush=True)
                window_time, window_step = now, global_step

            if next_checkpoint and global_step >= next_checkpoint:  # last: every point of this step is logged
                write_checkpoint()
                next_checkpoint += args.checkpoint_frequency
        if interrupted:
            print(f"interrupted at step {global_step:,}")
        elif global_step > start_step:  # (a resumed run with no steps left was evaluated already)
            evaluate_and_log()
        if args.checkpoint_frequency and checkpoint_step != global_step:
            write_checkpoint()
        if args.checkpoint_frequency:
            print(f"checkpoint at step {global_step:,}: continue (or extend) the run with --resume {run_dir}")
    finally:
        signal.signal(signal.SIGINT, previous_sigint_handler)
        if args.save_model:
            model_path = os.path.join(run_dir, f"{args.exp_name}.pt")
            torch.save(q_network.state_dict(), model_path)
            print(f"model saved to {model_path}")
        envs.close()
        writer.close()
    print(f"done: {global_step:,} steps in {format_duration(time.time() - start_time)}")
    return q_network


if __name__ == "__main__":
    main(tyro.cli(Args))
