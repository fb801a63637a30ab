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

import importlib.util
import math
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import zipfile
from collections import deque
from dataclasses import asdict, dataclass, fields
from datetime import timedelta
from pathlib import Path
from typing import Literal, NamedTuple, get_args, get_origin

import ale_py
import cv2
import gymnasium as gym
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import tyro
from tensorboard.compat.proto.summary_pb2 import Summary
from tensorboard.plugins.hparams import api_pb2, metadata as hparams_metadata
from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData
from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import hparams

gym.register_envs(ale_py)  # makes the ALE ids known to gym.make
ale_py.ALEInterface.setLoggerMode(ale_py.LoggerMode.Error)  # no banner on every env start


@dataclass
class Args:
    # The algorithm (CleanRL's names and defaults)
    env_id: str = "BreakoutNoFrameskip-v4"
    """the id of the Atari game: `*NoFrameskip-v4` (no sticky actions) or `ALE/*-v5` (sticky actions 0.25)"""
    total_timesteps: int = 10_000_000
    """agent steps summed over all envs, each 4 frames (the paper: 50M frames = 12.5M steps); the run ends at the first
    multiple of `num_envs` at or past it"""
    learning_rate: float = 1e-4
    """the learning rate of Adam (the paper: RMSProp, lr 0.00025)"""
    num_envs: int = 1
    """the number of parallel game environments"""
    buffer_size: int = 1_000_000
    """the replay memory's capacity N in transitions (7,063 bytes each)"""
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

    # The run
    exp_name: str = os.path.basename(__file__)[: -len(".py")]
    """the name of this experiment (part of the run folder's name)"""
    seed: int = 1
    """seed of the experiment: python, numpy, torch, the envs and their action spaces"""
    torch_deterministic: bool = True
    """if toggled, `torch.backends.cudnn.deterministic=True`"""
    cuda: bool = True
    """if toggled, cuda is used when available"""
    compile: bool = False
    """if toggled, the TD loss and the greedy action run as torch.compile graphs (on CUDA with CUDA graphs)"""
    track: bool = False
    """if toggled, the run is also tracked with Weights & Biases (every TensorBoard scalar, the flags, the code)"""
    wandb_project_name: str = "cleanRL"
    """the Weights & Biases project of --track"""
    wandb_entity: str | None = None
    """the Weights & Biases entity (user or team) of --track; unset: your default entity"""
    runs_dir: str = "runs"
    """the folder that holds the run folders"""
    run_name: str | None = None
    """the run folder's name; unset: `{env_id}__{exp_name}__{seed}__{unix time}` (with -2, -3, ... if taken)"""
    capture_video: bool = False
    """whether to record evaluation games as mp4 in `{runs_dir}/{run_name}/videos/` (and as GIFs in TensorBoard)"""
    save_model: bool = False
    """whether to save the online network's state_dict into the run folder (`{exp_name}.pt`)"""
    checkpoint_frequency: int = 0
    """agent steps between checkpoints (weights, optimizer, replay, RNGs) in the run folder; 0 = none"""
    resume: str | None = None
    """a run folder or checkpoint file to continue; the flags not given take the checkpoint's values"""
    eval_frequency: int = 0
    """agent steps between evaluations (`eval/episodic_return`, `eval/q_estimate`); 0 = only at the end"""
    eval_episodes: int = 10
    """the number of full games per evaluation"""
    eval_epsilon: float = 0.05
    """ε during evaluation (the Nature protocol: 0.05; the Double DQN paper: 0.001)"""
    eval_only: bool = False
    """evaluate (and with --capture-video, record) the model at --model-path without training"""
    model_path: str | None = None
    """the saved state_dict that --eval-only plays"""


# ---- The Nature CNN ---------------------------------------------------------------------------------------------
class QNetwork(nn.Module):
    def __init__(self, n_actions: int):
        super().__init__()
        self.network = nn.Sequential(
            nn.Conv2d(4, 32, 8, stride=4), nn.ReLU(),  # 4×84×84 → 32×20×20
            nn.Conv2d(32, 64, 4, stride=2), nn.ReLU(),  # → 64×9×9
            nn.Conv2d(64, 64, 3, stride=1), nn.ReLU(),  # → 64×7×7
            nn.Flatten(),  # → 3136
            nn.Linear(3136, 512), nn.ReLU(),
            nn.Linear(512, n_actions),
        )
        # channels_last (N, H, W, C in memory) for the weights and the input: the layout in which the convolution
        # kernels of CPU (oneDNN) and GPU (cuDNN) run fastest. The same numbers, stored in another order.
        self.to(memory_format=torch.channels_last)

    def forward(self, x):
        # the uint8 pixels as floats in [0, 1]: converted and laid out channels_last in one copy, then divided in place
        return self.network(x.to(torch.float32, memory_format=torch.channels_last).div_(255.0))


# ---- Learning rules ---------------------------------------------------------------------------------------------
class ReplayBatch(NamedTuple):
    observations: torch.Tensor  # uint8 (B, 4, 84, 84)
    actions: torch.Tensor  # int64 (B, 1)
    next_observations: torch.Tensor  # uint8 (B, 4, 84, 84)
    rewards: torch.Tensor  # float32 (B,)
    terminations: torch.Tensor  # float32 (B,)


def td_target(q_network, target_network, data: ReplayBatch, gamma: float):
    with torch.no_grad():
        # Double DQN target: y = r + γ · Q_target(s', argmax_a' Q(s', a')), and no bootstrap past a terminal state
        next_actions = q_network(data.next_observations).argmax(dim=1, keepdim=True)
        next_q = target_network(data.next_observations).gather(1, next_actions).squeeze(1)
        return data.rewards + gamma * next_q * (1 - data.terminations)


def td_loss(q_network, target_network, data: ReplayBatch, gamma: float, kind: str):
    """The TD loss of a minibatch (`kind`: "mse" or "huber", the --loss flag), and the Q(s, a) it regresses."""
    y = td_target(q_network, target_network, data, gamma)
    q_sa = q_network(data.observations).gather(1, data.actions).squeeze(1)
    if kind == "huber":  # the paper's TD error clipped to ±1: quadratic below 1, linear above
        return F.smooth_l1_loss(q_sa, y), q_sa
    return F.mse_loss(q_sa, y), q_sa


def linear_schedule(start_e: float, end_e: float, duration: float, t: int) -> float:
    """ε decays linearly from start_e to end_e over `duration` steps, then stays at end_e."""
    slope = (end_e - start_e) / duration
    return max(slope * t + start_e, end_e)


def update_target(target_network, q_network, tau: float):
    """θ⁻ ← τ·θ + (1−τ)·θ⁻; τ = 1 is the paper's periodic hard copy."""
    for target_param, param in zip(target_network.parameters(), q_network.parameters()):
        target_param.data.copy_(tau * param.data + (1.0 - tau) * target_param.data)


def times_due(step: int, every: int, num_envs: int) -> int:
    """How many multiples of `every` the vector env passed in its step to `step` (from step − num_envs, or 0)."""
    return step // every - max(step - num_envs, 0) // every


def is_due(step: int, every: int, num_envs: int) -> bool:
    """Whether a schedule of once per `every` agent steps (0: never) fires at `step`."""
    return every > 0 and times_due(step, every, num_envs) > 0


# ---- Replay memory D: one 84×84 frame per transition ------------------------------------------------------------
class ReplayBuffer:
    """The last `buffer_size` transitions, one 84×84 frame each (7,063 bytes; two 4-frame stacks take 56,448), in a
    stream of slots per env. A slot holds the newest frame of an observation and, unless that observation begins an
    episode, the step that led to it: (action, reward, terminated). The transition ending at slot i is (s = the
    stack ending at slot i−1, a, r, s' = the stack ending at slot i, terminated). The frames are a torch tensor on
    `storage` (the GPU when they fit there), gathered where the network runs; the rest stays in numpy."""

    FRAME_BYTES, STEP_BYTES = 84 * 84, 1 + 4 + 1 + 1  # per slot: the frame; action, reward, terminated, episode_start
    ARRAYS = ("frames", "actions", "rewards", "terminations", "episode_start")

    def __init__(self, buffer_size: int, num_envs: int, device: torch.device, seed: int, storage=torch.device("cpu")):
        self.num_envs, self.capacity = num_envs, buffer_size // num_envs  # (capacity: slots per stream)
        shape = (num_envs, self.capacity)
        self.frames = torch.zeros(shape + (84, 84), dtype=torch.uint8, device=storage)
        self.actions = np.zeros(shape, dtype=np.uint8)
        self.rewards = np.zeros(shape, dtype=np.float32)
        self.terminations = np.zeros(shape, dtype=bool)
        self.episode_start = np.zeros(shape, dtype=bool)  # the slot holds an episode's first frame: no step led to it
        self.pos = np.zeros(num_envs, dtype=np.int64)  # the next slot to write, per stream
        self.size = np.zeros(num_envs, dtype=np.int64)  # slots written, per stream (at most capacity)
        self.new_episode = np.ones(num_envs, dtype=bool)  # per stream: the next s begins an episode (at first, all)
        self.device, self.rng = device, np.random.default_rng(seed)

    def add(self, obs, next_obs, actions, rewards, terminations, episode_ends):
        """Store the transition (s, a, r, s', terminated) of every env. s is already in the memory as the previous
        transition's s', except where an episode begins: there its newest frame is stored first. Where
        `episode_ends` (terminated or truncated), the env's next transition begins a new episode."""
        beginning = np.flatnonzero(self.new_episode)
        self._write(beginning, obs[beginning, -1], 0, 0.0, False, episode_start=True)
        self._write(np.arange(self.num_envs), next_obs[:, -1], actions, rewards, terminations, episode_start=False)
        self.new_episode = np.array(episode_ends, dtype=bool)

    def _write(self, envs, frames, actions, rewards, terminations, episode_start: bool):
        slots = self.pos[envs]
        self.frames[torch.from_numpy(envs), torch.from_numpy(slots)] = torch.from_numpy(frames).to(self.frames.device)
        self.actions[envs, slots] = actions
        self.rewards[envs, slots] = rewards
        self.terminations[envs, slots] = terminations
        self.episode_start[envs, slots] = episode_start
        self.pos[envs] = (slots + 1) % self.capacity
        self.size[envs] = np.minimum(self.size[envs] + 1, self.capacity)

    def frame_slots(self, envs, newest):
        """The 5 slots whose frames make the transition ending at `newest`: s = [:, :4], s' = [:, 1:]. Going back, a
        stack stops at its episode's first frame and repeats it (as FrameStackObservation pads at a reset)."""
        slots = np.empty((len(newest), 5), dtype=np.int64)
        slots[:, 4] = newest
        for k in (3, 2, 1, 0):
            later = slots[:, k + 1]
            slots[:, k] = np.where(self.episode_start[envs, later], later, (later - 1) % self.capacity)
        return slots

    def sample(self, batch_size: int) -> ReplayBatch:
        """A minibatch drawn uniformly from the transitions stored in all streams, stacks rebuilt from the frames."""
        # rejection sampling: draw written slots uniformly over all streams, keep those that end a stored transition.
        # It ends: the newest slot of every stream always does (a first frame is only ever written with the step
        # after it). The written slots are numbered stream after stream, each stream's newest first.
        stream_end = np.cumsum(self.size)
        stream_start = stream_end - self.size
        envs, slots = np.empty(0, np.int64), np.empty((0, 5), np.int64)
        while len(envs) < batch_size:
            drawn = self.rng.integers(stream_end[-1], size=batch_size)
            drawn_envs = np.searchsorted(stream_end, drawn, side="right")  # the stream whose numbers hold it
            written_after = drawn - stream_start[drawn_envs]  # how many slots its stream wrote after it
            drawn_slots = self.frame_slots(drawn_envs, (self.pos[drawn_envs] - 1 - written_after) % self.capacity)
            # a step led to s': its frame is not an episode's first frame
            ends_a_step = ~self.episode_start[drawn_envs, drawn_slots[:, 4]]
            # every frame of s is still stored: the oldest, `oldest_offset` slots before s', was not overwritten
            oldest_offset = (drawn_slots[:, 4] - drawn_slots[:, 0]) % self.capacity
            valid = ends_a_step & (written_after + oldest_offset < self.size[drawn_envs])
            envs, slots = np.concatenate([envs, drawn_envs[valid]]), np.concatenate([slots, drawn_slots[valid]])
        envs, slots = envs[:batch_size], slots[:batch_size]
        newest = slots[:, 4]
        # gathered where the frames are (GPU or host) as rows of the flattened (num_envs · capacity, 84, 84) frames:
        # index_select takes 0.07 ms for a minibatch of 32 on a 2-core CPU, frames[envs[:, None], slots] 0.30 ms
        frame_rows = self.frames.flatten(0, 1)
        row_of_slot = torch.from_numpy(envs[:, None] * self.capacity + slots).flatten().to(frame_rows.device)
        stacks = frame_rows.index_select(0, row_of_slot).unflatten(0, slots.shape).to(self.device)  # (B, 5, 84, 84)
        return ReplayBatch(
            observations=stacks[:, :4],
            actions=torch.from_numpy(self.actions[envs, newest].astype(np.int64)[:, None]).to(self.device),
            next_observations=stacks[:, 1:],
            rewards=torch.from_numpy(self.rewards[envs, newest]).to(self.device),
            terminations=torch.from_numpy(self.terminations[envs, newest].astype(np.float32)).to(self.device),
        )

    def state_dict(self) -> dict:
        """The written part of the memory as host tensors (fast to save and to load), and the sampling RNG."""
        written = int(self.size.max())
        state = {name: torch.as_tensor(getattr(self, name)[:, :written]).cpu().contiguous() for name in self.ARRAYS}
        return state | {"pos": torch.from_numpy(self.pos), "size": torch.from_numpy(self.size),
                        "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict):
        written = state["frames"].shape[1]
        for name in self.ARRAYS:
            getattr(self, name)[:, :written] = state[name]
        self.pos[:], self.size[:] = state["pos"].numpy(), state["size"].numpy()
        self.rng.bit_generator.state = state["rng"]


# ---- Training ---------------------------------------------------------------------------------------------------
def train(args: Args, run_dir: str | None, checkpoint: dict | None) -> QNetwork:
    """Train the online network Q(s, a; θ) in `run_dir` (continuing `checkpoint` if given) and return it."""
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.backends.cudnn.deterministic = args.torch_deterministic
    device = torch.device("cuda" if torch.cuda.is_available() and args.cuda else "cpu")
    envs = EnvRngsBeforeStep(gym.vector.SyncVectorEnv(  # (the RNG states are for a checkpoint)
        [make_env(args.env_id, args.seed, i) for i in range(args.num_envs)],
        autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,  # an episode's last observation comes in infos
    ))
    envs.action_space.seed(args.seed)
    n_actions = envs.single_action_space.n
    rb = ReplayBuffer(args.buffer_size, args.num_envs, device, args.seed,
                      replay_storage(args.buffer_size, device, args.batch_size))

    q_network = QNetwork(n_actions).to(device)
    # Adam's fused kernel (CPU and CUDA): the same update in one pass instead of ~10 elementwise operations
    optimizer = torch.optim.Adam(q_network.parameters(), lr=args.learning_rate, fused=True)
    target_network = QNetwork(n_actions).to(device)
    target_network.load_state_dict(q_network.state_dict())
    rng = np.random.default_rng(args.seed)  # the exploration coins

    global_step = 0
    if checkpoint:
        global_step = restore_checkpoint(checkpoint, args, q_network, target_network, optimizer, rb, rng, envs)
    obs, _ = envs.reset(seed=None if checkpoint else args.seed)
    run_dir, tracking = start_run(args, run_dir, checkpoint["wandb_id"] if checkpoint else None)
    with SummaryWriter(run_dir, purge_step=global_step + 1 if checkpoint else None) as writer, \
            StopOnCtrlC() as ctrl_c:
        print(f"run folder: {run_dir}  (device: {device})")
        if not checkpoint:
            log_hyperparameters(writer, args)
            writer.add_scalar("charts/epsilon", args.start_e, 0)  # ε of the first step: the chart starts at start_e
        evaluation_pending = checkpoint["evaluation_pending"] if checkpoint else False
        if evaluation_pending:  # Ctrl-C abandoned the evaluation due at the checkpoint's step: play it now
            evaluation_pending = not evaluate_and_log(writer, args, q_network, global_step, device, ctrl_c)
        mode = "reduce-overhead" if device.type == "cuda" else None  # --compile: on CUDA as CUDA graphs
        acting_network = torch.compile(q_network, mode=mode) if args.compile else q_network
        compute_td_loss = torch.compile(td_loss, mode=mode) if args.compile else td_loss
        start_time = window_time = time.time()  # the SPS of the console line and the chart: since its last line
        window_step, recent_returns = global_step, deque(maxlen=20)
        while global_step < args.total_timesteps and not ctrl_c.pressed:
            # ε-greedy: each env takes a random action with probability ε, else argmax_a Q(s, a)
            epsilon = linear_schedule(args.start_e, args.end_e, args.exploration_fraction * args.total_timesteps,
                                      global_step)
            actions = envs.action_space.sample()
            greedy = rng.random(args.num_envs) >= epsilon
            if greedy.any():
                with torch.no_grad():
                    q_values = acting_network(torch.from_numpy(obs).to(device))
                actions = np.where(greedy, q_values.argmax(dim=1).cpu().numpy(), actions)

            next_obs, rewards, terminations, truncations, infos = envs.step(actions)
            global_step += args.num_envs
            if "episode" in infos.get("final_info", {}):  # games that ended: their raw score and length in steps
                games = infos["final_info"]["episode"]
                for env in np.flatnonzero(infos["final_info"]["_episode"]):
                    writer.add_scalar("charts/episodic_return", games["r"][env], global_step)
                    writer.add_scalar("charts/episodic_length", games["l"][env], global_step)
                    recent_returns.append(float(games["r"][env]))

            # CRUCIAL: where an episode ended, next_obs already is the next episode's first observation (same-step
            # autoreset); the transition's real s' is the episode's last observation, kept in infos["final_obs"]
            real_next_obs = next_obs.copy()
            for env in np.flatnonzero(terminations | truncations):
                real_next_obs[env] = infos["final_obs"][env]
            rb.add(obs, real_next_obs, actions, rewards, terminations, terminations | truncations)
            obs = next_obs

            # learning: one gradient update per `train_frequency` agent steps, once learning has started
            if global_step > args.learning_starts:
                for _ in range(times_due(global_step - args.learning_starts, args.train_frequency, args.num_envs)):
                    data = rb.sample(args.batch_size)
                    loss, q_sa = compute_td_loss(q_network, target_network, data, args.gamma, args.loss)
                    if not torch.isfinite(loss):  # stop before it reaches the weights
                        fail(f"TD loss became {loss.item()} at step {global_step:,}; lower --learning-rate", status=1)
                    if is_due(global_step, 100, args.num_envs):
                        writer.add_scalar("losses/td_loss", loss.item(), global_step)
                        writer.add_scalar("losses/q_values", q_sa.mean().item(), global_step)
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
            # the target network follows the online network every C = `target_network_frequency` agent steps
            if is_due(global_step, args.target_network_frequency, args.num_envs):
                update_target(target_network, q_network, args.tau)

            sps = (global_step - window_step) / max(time.time() - window_time, 1e-9)
            if is_due(global_step, 100, args.num_envs):
                writer.add_scalar("charts/epsilon", epsilon, global_step)
                writer.add_scalar("charts/SPS", sps, global_step)
            if time.time() - window_time >= 5 or global_step >= args.total_timesteps:
                print_progress(args, global_step, sps, recent_returns, epsilon)
                window_time, window_step = time.time(), global_step

            if is_due(global_step, args.eval_frequency, args.num_envs) or global_step >= args.total_timesteps:
                # a checkpoint records whether Ctrl-C abandoned it
                evaluation_pending = not evaluate_and_log(writer, args, q_network, global_step, device, ctrl_c)
            if is_due(global_step, args.checkpoint_frequency, args.num_envs) and global_step < args.total_timesteps:
                save_checkpoint(writer, args, global_step, q_network, target_network, optimizer, rb, rng, envs,
                                evaluation_pending, tracking)

        if args.checkpoint_frequency:  # the end, or where Ctrl-C stopped: --resume continues (or extends) from here
            save_checkpoint(writer, args, global_step, q_network, target_network, optimizer, rb, rng, envs,
                            evaluation_pending, tracking)
    envs.close()
    finish_run(args, run_dir, q_network, global_step, ctrl_c.pressed, tracking, start_time)
    return q_network


# ================================================================================================================
# Plumbing: the run's record and console, the Atari pipeline, evaluation and videos, checkpoints, the command line
# ================================================================================================================
def log_hyperparameters(writer: SummaryWriter, args: Args):
    """CleanRL's "hyperparameters" table (every flag, the script, its git commit), the HPARAMS tab (layout and this
    run's values) and the CUSTOM SCALARS chart of overestimation (Q estimate over the return that followed)."""
    writer.add_custom_scalars({"eval": {"overestimation: eval/q_estimate against eval/discounted_return": [
        "Multiline", ["eval/q_estimate", "eval/discounted_return"]]}})
    rows = asdict(args) | {"script": os.path.basename(__file__), "commit": git_commit()}
    writer.add_text("hyperparameters", "|param|value|\n|-|-|\n" + "\n".join(f"|{k}|{v}|" for k, v in rows.items()))
    experiment = api_pb2.Experiment(
        hparam_infos=[api_pb2.HParamInfo(name=name, differs=name in HPARAMS_COLUMNS[:5]) for name in HPARAMS_COLUMNS],
        metric_infos=[api_pb2.MetricInfo(name=api_pb2.MetricName(tag=tag)) for tag in HPARAMS_METRICS])
    layout = hparams_metadata.create_summary_metadata(HParamsPluginData(experiment=experiment))
    writer.file_writer.add_summary(Summary(value=[Summary.Value(tag=hparams_metadata.EXPERIMENT_TAG, metadata=layout)]))
    values = {name: getattr(args, name) for name in HPARAMS_COLUMNS if hasattr(args, name)}
    for session_record in hparams(values, {})[1:]:
        writer.file_writer.add_summary(session_record)


# The HPARAMS tab's columns and metrics, the same in the three scripts: TensorBoard takes the first layout it finds, so
# a folder mixing their runs shows all their flags. It ticks the first five of each: the results, what tells runs apart.
HPARAMS_COLUMNS = ("exp_name", "env_id", "env", "seed", "learning_rate", "gamma", "total_timesteps", "total_episodes",
                   "lr_decay_exponent", "start_e", "end_e", "exploration_fraction", "buffer_size", "batch_size",
                   "target_network_frequency", "tau", "learning_starts", "train_frequency", "loss", "num_envs")
HPARAMS_METRICS = ("eval/episodic_return", "eval/value_ratio", "eval/goal_probability", "eval/q_estimate",
                   "eval/discounted_return", "charts/episodic_return", "charts/success_rate", "charts/SPS")


def git_commit() -> str:
    """The git commit of this script's folder, `-dirty` if this file differs from it; "unknown" outside git."""
    folder, name = os.path.split(os.path.abspath(__file__))
    git = {"cwd": folder, "capture_output": True, "text": True, "check": True, "timeout": 10}
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], **git).stdout.strip()
        changed = subprocess.run(["git", "status", "--porcelain", "--", name], **git).stdout.strip()
    except (OSError, subprocess.SubprocessError):  # no git, not a repository, or git did not answer
        return "unknown"
    return head + ("-dirty" if changed else "")


def print_progress(args: Args, global_step: int, sps: float, recent_returns: deque, epsilon: float):
    """The console line, counted to the step where the run ends (the first multiple of num_envs at or past
    total_timesteps): the speed, the time left, the mean score of the last games and ε."""
    last_step = math.ceil(args.total_timesteps / args.num_envs) * args.num_envs
    mean_return = f"{np.mean(recent_returns):.1f}" if recent_returns else "-"
    print(f"step {global_step:,}/{last_step:,} ({100 * global_step / last_step:.1f}%) | SPS {sps:.0f} | "
          f"ETA {timedelta(seconds=round((last_step - global_step) / max(sps, 1e-9)))} | return {mean_return} "
          f"(last {len(recent_returns)} games) | ε {epsilon:.3f}", flush=True)


def finish_run(args: Args, run_dir: str, q_network, global_step: int, interrupted: bool, tracking, start_time: float):
    """Close W&B; a run that Ctrl-C stopped ends with one error line and exit status 130 (so it never looks finished,
    to a sweep either); a finished one saves the model with --save-model and says how to extend it."""
    if tracking:
        tracking.finish()
    if interrupted:
        fail(f"interrupted (Ctrl-C) at step {global_step:,} of {args.total_timesteps:,}; " + (
            f"continue it with --resume {run_dir}" if args.checkpoint_frequency else
            f"no checkpoint (--checkpoint-frequency 0), the logs so far are in {run_dir}"), status=130)
    if args.save_model:  # the online network's state_dict, what --eval-only --model-path plays
        save_atomically(q_network.state_dict(), os.path.join(run_dir, f"{args.exp_name}.pt"), global_step)
        print(f"model saved to {os.path.join(run_dir, args.exp_name)}.pt")
    if args.checkpoint_frequency:
        print(f"checkpoint at step {global_step:,}: extend it with --resume {run_dir} --total-timesteps N")
    print(f"done: {global_step:,} steps in {timedelta(seconds=round(time.time() - start_time))}")


class StopOnCtrlC:
    """Inside `with StopOnCtrlC() as ctrl_c:`, a first Ctrl-C sets `ctrl_c.pressed` (the loop ends after its step,
    so what is saved is a consistent state); a second one stops at once (KeyboardInterrupt)."""

    def __enter__(self):
        self.pressed, self.previous_handler = False, signal.signal(signal.SIGINT, self.press)
        return self

    def press(self, signum, frame):
        self.pressed = True
        signal.signal(signal.SIGINT, signal.default_int_handler)

    def __exit__(self, *exception):
        signal.signal(signal.SIGINT, self.previous_handler)


# ---- The DeepMind Atari pipeline --------------------------------------------------------------------------------
# Gymnasium provides reward clipping, frame stacking and episode statistics. These four wrappers are written out
# because gymnasium's AtariPreprocessing differs in two details: it takes the max after converting to grayscale,
# and its life-loss terminal restarts the game.
class NoopReset(gym.Wrapper):
    """On a real reset, play a uniform random number of no-ops, 1 to 30: varied starting states."""

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        for _ in range(self.unwrapped.np_random.integers(1, 30 + 1)):
            obs, _, terminated, truncated, info = self.env.step(0)
            if terminated or truncated:
                obs, info = self.env.reset()
        return obs, info


class MaxAndSkip(gym.Wrapper):
    """Repeat an action 4 frames, summing the rewards; observe the max of the last two frames (sprites flicker)."""

    def reset(self, **kwargs):
        self.last_frame, info = self.env.reset(**kwargs)
        return self.last_frame, info

    def step(self, action):
        total_reward = 0.0
        for _ in range(4):
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
        self.lives, self.game_over = 0, True

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
            if terminated or truncated:  # the no-op step itself ended the game
                obs, info = self.env.reset(**kwargs)
        self.lives, self.game_over = self.unwrapped.ale.lives(), False
        return obs, info


class FireReset(gym.Wrapper):
    """Press FIRE after every reset: games such as Breakout wait for it to start, or to go on after a lost life."""

    def reset(self, **kwargs):
        self.env.reset(**kwargs)
        obs, _, terminated, truncated, info = self.env.step(self.unwrapped.get_action_meanings().index("FIRE"))
        if terminated or truncated:  # rare: the FIRE step itself lost a life
            obs, info = self.env.reset()
        return obs, info


def luminance_84x84(frame: np.ndarray) -> np.ndarray:
    """RGB frame → luminance (Y of YUV), resized to 84×84 by pixel-area averaging."""
    return cv2.resize(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), (84, 84), interpolation=cv2.INTER_AREA)


def make_env(env_id: str, seed: int, idx: int, training: bool = True, max_frames_per_episode: int = 108_000,
             render_mode: str | None = None):
    """A thunk that builds one Atari env. `training=False` gives the evaluation env: full games (no life-loss
    terminals) and raw rewards. Episodes are truncated after `max_frames_per_episode` emulator frames."""
    spec = gym.registry.get(env_id)
    if spec is None or spec.entry_point != "ale_py.env:AtariEnv":
        fail(f"--env-id {env_id!r} is not an Atari game of ale-py (try BreakoutNoFrameskip-v4 or ALE/Pong-v5)")

    def thunk():
        # frameskip=1: MaxAndSkip does the skipping. v5 ids keep their sticky actions (Machado et al. 2018).
        env = gym.make(env_id, frameskip=1, max_num_frames_per_episode=max_frames_per_episode, render_mode=render_mode)
        env = NoopReset(env)
        env = MaxAndSkip(env)
        env = gym.wrappers.RecordEpisodeStatistics(env)  # raw score and length (agent steps) of the whole game
        if training:
            env = EpisodicLife(env)
        if "FIRE" in env.unwrapped.get_action_meanings():
            env = FireReset(env)
        env = gym.wrappers.TransformObservation(env, luminance_84x84, gym.spaces.Box(0, 255, (84, 84), np.uint8))
        if training:
            env = gym.wrappers.TransformReward(env, np.sign)
        env = gym.wrappers.FrameStackObservation(env, 4)
        env.action_space.seed(seed + idx)
        return env

    return thunk


# What an update holds per sample of its minibatch, where the networks run: the sample's 5 frames (uint8), one
# float32 stack at a time (s', then s) and the ReLU outputs the gradient needs, with their gradients: 321 KB.
UPDATE_BYTES = 5 * 84 * 84 + 4 * 84 * 84 * 4 + 2 * 4 * (32 * 20 * 20 + 64 * 9 * 9 + 64 * 7 * 7 + 512)


def replay_storage(buffer_size: int, device: torch.device, batch_size: int = 0) -> torch.device:
    """Where the replay frames live: on the GPU if they and an update of `batch_size` fit in 80% of its free memory,
    else in host memory. A memory or a minibatch that does not fit is refused now, not hours later."""
    frame_bytes, batch_bytes = buffer_size * ReplayBuffer.FRAME_BYTES, batch_size * UPDATE_BYTES
    gpu_free = torch.cuda.mem_get_info(device)[0] if device.type == "cuda" else 0
    on_gpu = frame_bytes + batch_bytes <= 0.8 * gpu_free
    host_bytes = buffer_size * ReplayBuffer.STEP_BYTES + (0 if on_gpu else frame_bytes)
    meminfo = Path("/proc/meminfo")  # Linux; MemAvailable counts the caches the OS can give back
    available = int(re.search(r"MemAvailable:\s+(\d+)", meminfo.read_text())[1]) * 1024 if meminfo.exists() else 2**63
    if host_bytes > 0.9 * available:
        fail(f"--buffer-size {buffer_size} needs {host_bytes / 2**30:.1f} GiB of host memory but only "
             f"{available / 2**30:.1f} GiB is available; lower --buffer-size")
    room = 0.8 * gpu_free if device.type == "cuda" else 0.9 * available - host_bytes
    if batch_bytes > room:
        fail(f"--batch-size {batch_size}: an update needs {batch_bytes / 2**30:.1f} GiB ({UPDATE_BYTES / 1e3:.0f} KB "
             f"per sample) but {room / 2**30:.1f} GiB is free for it on {device.type}; lower --batch-size")
    return device if on_gpu else torch.device("cpu")


# ---- Evaluation and videos --------------------------------------------------------------------------------------
class Evaluation(NamedTuple):
    returns: list[float]  # each game's score
    q_estimate: float  # the mean of max_a Q(s, a) over the states the games visited
    discounted_return: float  # the mean over the same states of the discounted return that followed each of them


def evaluate(q_network, env_id: str, seed: int, eval_episodes: int, epsilon: float, device, video_paths=(),
             gamma: float = 0.99, ctrl_c=None) -> Evaluation | None:
    """Play `eval_episodes` full games ε-greedily (no life-loss terminals, raw scores). Next to the scores: the value
    the network expects, max_a Q(s, a), and what followed: the discounted return from the same states as the TD target
    defines it (clipped rewards, cut at a lost life), van Hasselt et al.'s overestimation figure. The first games are
    recorded as mp4, one per path in `video_paths`, the values beside the screen. None if Ctrl-C was pressed."""
    with make_env(env_id, seed, 0, training=False, render_mode="rgb_array" if video_paths else None)() as env:
        returns, q_max, discounted = [], [], []
        for episode in range(eval_episodes):
            obs, info = env.reset(seed=seed if episode == 0 else None)
            video = None
            if episode < len(video_paths):
                height, width, _ = env.render().shape
                os.makedirs(os.path.dirname(video_paths[episode]), exist_ok=True)
                # VP9 ("vp09") in mp4: a codec that browsers, W&B and GitHub play, and that OpenCV's wheel encodes
                video = cv2.VideoWriter(video_paths[episode], cv2.VideoWriter_fourcc(*"vp09"), 15,
                                        (width + 160, height))  # the screen and the values' panel beside it
            rewards, lives_lost, game_start = [], [], len(q_max)
            terminated = truncated = False
            while not (terminated or truncated or (ctrl_c is not None and ctrl_c.pressed)):
                with torch.no_grad():
                    q_values = q_network(torch.from_numpy(obs).to(device)[None])[0]
                explore = env.np_random.random() < epsilon
                action = env.action_space.sample() if explore else q_values.argmax().item()
                q_max.append(q_values.max().item())
                if video is not None:
                    frame = with_values(env.render(), q_values.cpu().numpy(), action, q_max[game_start:],
                                        env.unwrapped.get_action_meanings())
                    video.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
                lives = info.get("lives", 0)  # the ALE reports lives; other envs have none to lose
                obs, reward, terminated, truncated, info = env.step(action)
                rewards.append(np.sign(reward))
                lives_lost.append(info.get("lives", 0) < lives)
            if video is not None:
                video.release()
            if ctrl_c is not None and ctrl_c.pressed:  # stopped within one agent step: no partial evaluation
                return None
            returns.append(float(info["episode"]["r"]))
            discounted += discounted_returns(rewards, lives_lost, gamma)
    return Evaluation(returns, float(np.mean(q_max)), float(np.mean(discounted)))


def discounted_returns(rewards: list[float], ends: list[bool], gamma: float) -> list[float]:
    """G_t = r_t + γ · G_{t+1}, cut where a learning episode ends (`ends`): what Q(s_t, a_t) estimates."""
    g, returns = 0.0, []
    for reward, end in zip(reversed(rewards), reversed(ends)):
        g = reward + gamma * g * (1 - end)
        returns.append(g)
    return returns[::-1]


def with_values(screen: np.ndarray, q_values: np.ndarray, action: int, max_q_trace: list[float],
                action_names: list[str]) -> np.ndarray:
    """The screen and the values the agent sees: Q(s, a) of each action as a bar (the action taken white), and below
    max_a Q(s, a) over the game so far, on one scale: the game's largest |value| at full height."""
    height, trace_values = screen.shape[0], np.asarray(max_q_trace)
    panel = np.zeros((height, 160, 3), np.uint8)
    scale, half = max(np.abs(trace_values).max(), np.abs(q_values).max(), 1e-6), height // 4 - 14
    bar_zero, trace_zero, width = height // 4 + 6, 3 * height // 4 + 6, 160 // len(q_values)
    for zero in (bar_zero, trace_zero):
        cv2.line(panel, (0, zero), (159, zero), (70, 70, 70))
    for a, q in enumerate(q_values):
        top = bar_zero - round(q / scale * half)
        cv2.rectangle(panel, (a * width + 1, min(top, bar_zero)), ((a + 1) * width - 2, max(top, bar_zero)),
                      (255, 255, 255) if a == action else (110, 110, 110), cv2.FILLED)
    steps = np.linspace(0, len(trace_values) - 1, min(len(trace_values), 160)).round().astype(int)  # ≤ 1 per column
    trace = np.stack([steps * 159 // max(len(trace_values) - 1, 1),
                      trace_zero - np.round(trace_values[steps] / scale * half)], axis=1)
    cv2.polylines(panel, [trace.astype(np.int32)], False, (255, 200, 0))
    for text, y, colour in ((f"{action_names[action]} {q_values[action]:.2f}", 10, (255, 255, 255)),
                            (f"max Q {max_q_trace[-1]:.2f}", height // 2 + 10, (255, 200, 0))):
        cv2.putText(panel, text, (2, y), cv2.FONT_HERSHEY_PLAIN, 0.8, colour)
    return np.hstack([screen, panel])


def evaluate_and_log(writer: SummaryWriter, args: Args, q_network, global_step: int, device, ctrl_c) -> bool:
    """Evaluate the online network and log `eval/episodic_return` (the mean score), `eval/q_estimate` and
    `eval/discounted_return` (with --capture-video, the first game too). Ctrl-C abandons it: returns False."""
    video_paths = [os.path.join(writer.log_dir, "videos", f"step-{global_step}.mp4")] if args.capture_video else []
    evaluation = evaluate(q_network, args.env_id, args.seed + global_step, args.eval_episodes, args.eval_epsilon,
                          device, video_paths, args.gamma, ctrl_c)
    if evaluation is None:
        print(f"evaluation at step {global_step:,} interrupted: not logged")
        return False
    writer.add_scalar("eval/episodic_return", np.mean(evaluation.returns), global_step)
    writer.add_scalar("eval/q_estimate", evaluation.q_estimate, global_step)
    writer.add_scalar("eval/discounted_return", evaluation.discounted_return, global_step)
    if video_paths:
        log_video(writer, "videos/eval", video_paths[0], global_step)
    print(f"eval at step {global_step:,}: mean return {np.mean(evaluation.returns):.2f} ({args.eval_episodes} games) | "
          f"Q estimate {evaluation.q_estimate:.3f}, discounted return {evaluation.discounted_return:.3f}")
    return True


def log_video(writer: SummaryWriter, tag: str, path: str, step: int, max_frames: int = 300):
    """Show an mp4 in TensorBoard as an animated GIF (OpenCV encodes it; no moviepy) of at most `max_frames` evenly
    spaced frames, the only ones held in memory: a game of 27,000 steps would take 8 GB."""
    capture, frames = cv2.VideoCapture(path), []
    n_frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    every = math.ceil(n_frames / max_frames)
    for i in range(n_frames):
        capture.grab()  # decodes the frame; retrieve() gives it, for the frames kept
        if i % every == 0:
            frames.append(capture.retrieve()[1])
    capture.release()
    animation = cv2.Animation()
    animation.frames, animation.durations = frames, [1000 * n_frames // (15 * len(frames))] * len(frames)
    _, gif = cv2.imencodeanimation(".gif", animation, [cv2.IMWRITE_GIF_DITHER, 3])  # 3: no dither, no speckle
    height, width = frames[0].shape[:2]
    image = Summary.Image(height=height, width=width, colorspace=3, encoded_image_string=gif.tobytes())
    writer.file_writer.add_summary(Summary(value=[Summary.Value(tag=tag, image=image)]), step)


def eval_only(args: Args) -> QNetwork:
    """--eval-only: play the saved model, print each game's score and the mean (with --capture-video, record)."""
    if not os.path.isfile(args.model_path):
        fail(f"--model-path {args.model_path}: no such file")
    device = torch.device("cuda" if torch.cuda.is_available() and args.cuda else "cpu")
    with make_env(args.env_id, args.seed, 0, training=False)() as env:  # only to count the game's actions
        q_network = QNetwork(env.action_space.n).to(device)
    try:
        q_network.load_state_dict(torch.load(args.model_path, map_location=device, weights_only=True))
    except Exception as error:  # a foreign file or another network: torch raises various types
        fail(f"--model-path {args.model_path}: not a state_dict of this QNetwork ({type(error).__name__})")
    video_folder = os.path.join(new_run_dir(args), "videos") if args.capture_video else ""
    video_paths = [os.path.join(video_folder, f"eval-{i}.mp4") for i in range(args.eval_episodes) if video_folder]
    with StopOnCtrlC() as ctrl_c:
        evaluation = evaluate(q_network, args.env_id, args.seed, args.eval_episodes, args.eval_epsilon, device,
                              video_paths, args.gamma, ctrl_c)
    if evaluation is None:
        fail("interrupted (Ctrl-C) before the games ended", status=130)
    for i, episodic_return in enumerate(evaluation.returns):
        print(f"eval game {i}: return {episodic_return:g}")
    print(f"mean return over {args.eval_episodes} games: {np.mean(evaluation.returns):.2f}"
          + (f" (videos in {video_folder})" if video_folder else ""))
    return q_network


# ---- Checkpoints: everything a run needs to continue, in one file written atomically ----------------------------
CHECKPOINT = "checkpoint.pt"
CHANGEABLE_ON_RESUME = {"total_timesteps", "checkpoint_frequency", "eval_frequency", "eval_episodes", "eval_epsilon",
                        "capture_video", "save_model", "resume", "cuda", "compile", "track", "wandb_project_name",
                        "wandb_entity"}
CHECKPOINT_KEYS = {"script", "args", "global_step", "q_network", "target_network", "optimizer", "replay", "rng",
                   "evaluation_pending", "wandb_id"}


class EnvRngsBeforeStep(gym.vector.VectorWrapper):
    """Keeps the envs' RNG states (no-op counts, game starts) as they were before the last step or reset. The games
    in progress cannot be saved, so a resumed run starts new ones from these: the resets of the checkpoint's step
    are made again, and a run resumed where every episode ended goes on as if it had never stopped."""

    def reset(self, **kwargs):
        self.rng_states = [env.unwrapped.np_random.bit_generator.state for env in self.env.envs]
        return self.env.reset(**kwargs)

    def step(self, actions):
        self.rng_states = [env.unwrapped.np_random.bit_generator.state for env in self.env.envs]
        return self.env.step(actions)


def save_checkpoint(writer: SummaryWriter, args: Args, global_step: int, q_network, target_network, optimizer,
                    rb: ReplayBuffer, rng, envs: EnvRngsBeforeStep, evaluation_pending: bool, tracking):
    """Write the run's state to `{run folder}/checkpoint.pt`, with the name of the script that can continue it,
    whether the evaluation due at this step is still to be played (Ctrl-C abandoned it) and the W&B run's id."""
    writer.flush()  # every point up to the checkpoint is on disk; a resume drops those after it
    save_atomically({
        "script": os.path.basename(__file__), "args": asdict(args), "global_step": global_step,
        "q_network": q_network.state_dict(), "target_network": target_network.state_dict(),
        "optimizer": optimizer.state_dict(), "replay": rb.state_dict(), "evaluation_pending": evaluation_pending,
        "wandb_id": tracking.id if tracking else None,  # --resume --track continues this W&B run
        "rng": {"python": random.getstate(), "torch": torch.get_rng_state(), "exploration": rng.bit_generator.state,
                "envs": envs.rng_states, "action_space": envs.action_space.np_random.bit_generator.state},
    }, os.path.join(writer.log_dir, CHECKPOINT), global_step)


def save_atomically(state: dict, path: str, global_step: int):
    """torch.save to a temporary file, then rename: a kill, a full disk or a second Ctrl-C during the write leaves
    the previous file intact and (except after a kill) no temporary file behind. A failed write is one line, and
    so is a state with a number that is not finite: a broken network is never saved."""
    if not all_finite(state):
        fail(f"the weights became non-finite by step {global_step:,} (lower --learning-rate?); nothing was saved, "
             "what was saved before is intact", status=1)
    try:
        torch.save(state, path + ".tmp")
        os.replace(path + ".tmp", path)
    except BaseException as error:
        Path(path + ".tmp").unlink(missing_ok=True)
        if isinstance(error, (OSError, RuntimeError)):  # torch reports a failed write (a full disk) as a RuntimeError
            free = shutil.disk_usage(os.path.dirname(path)).free / 2**20
            fail(f"could not write {path} ({free:.0f} MiB free there; {str(error).splitlines()[0]}); any previous "
                 "one is intact", status=1)
        raise


def all_finite(value) -> bool:
    """Whether every floating-point tensor inside nested dicts, lists and tuples (a checkpoint) is finite."""
    if isinstance(value, torch.Tensor):
        return not value.is_floating_point() or bool(torch.isfinite(value).all())
    items = value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple)) else ()
    return all(all_finite(item) for item in items)


def load_checkpoint(path: str) -> tuple[dict, str]:
    """The checkpoint in a run folder or file (memory-mapped) and its run folder; one error line if it is missing,
    unreadable, damaged, not a checkpoint, written by another script or version, or holds non-finite numbers."""
    path = os.path.join(path, CHECKPOINT) if os.path.isdir(path) else path
    if not os.path.isfile(path):
        fail(f"--resume {path}: no checkpoint there")
    try:
        damaged = zipfile.ZipFile(path).testzip()  # torch.load does not check the CRCs: a damaged record loads
        checkpoint = torch.load(path, weights_only=True, mmap=True)  # as wrong numbers
    except Exception as error:  # a truncated or foreign file: zipfile and torch raise various types
        fail(f"--resume {path}: not a readable checkpoint ({type(error).__name__})")
    if damaged:
        fail(f"--resume {path}: damaged ({damaged} fails its CRC check); resume an intact copy or start anew")
    if not isinstance(checkpoint, dict) or not CHECKPOINT_KEYS <= checkpoint.keys():
        fail(f"--resume {path}: not a checkpoint (a model saved with --save-model is for --eval-only --model-path)")
    if checkpoint["script"] != os.path.basename(__file__):
        fail(f"--resume {path}: written by {checkpoint['script']}; continue it with that script")
    flags, saved = {field.name: field.type for field in fields(Args)}, checkpoint["args"]
    if not isinstance(saved, dict) or saved.keys() != flags.keys():
        fail(f"--resume {path}: its flags are not this script's (written by another version, or damaged)")
    for name, value in saved.items():  # tyro checks the types of the flags typed; these come from a file
        if not has_type(value, flags[name]):
            fail(f"--resume {path}: its --{name.replace('_', '-')} {value!r} is not a value of that flag")
    if type(checkpoint["global_step"]) is not int or checkpoint["global_step"] < 0:
        fail(f"--resume {path}: its step {checkpoint['global_step']!r} is not a step count")
    if not isinstance(checkpoint["wandb_id"], str | None):
        fail(f"--resume {path}: its W&B run id {checkpoint['wandb_id']!r} is not one")
    if not all_finite(checkpoint):
        fail(f"--resume {path}: the checkpoint's weights (or optimizer state) are not finite; resume an earlier copy")
    return checkpoint, os.path.dirname(os.path.abspath(path))  # (a bare "checkpoint.pt" is in the folder ".")


def has_type(value, annotation) -> bool:
    """Whether a flag's value has its field's type: a Literal's values; an int for a float, not a bool for an int."""
    if get_origin(annotation) is Literal:
        return value in get_args(annotation)
    types = get_args(annotation) or (annotation,)  # `str | None` → (str, NoneType)
    return isinstance(value, types + ((int,) if float in types else ())) and isinstance(value, bool) == (bool in types)


def restore_checkpoint(checkpoint: dict, args: Args, q_network, target_network, optimizer, rb: ReplayBuffer, rng,
                       envs: EnvRngsBeforeStep) -> int:
    """Put the checkpoint's state into the run's objects; returns its global_step. A checkpoint that does not fit
    them (a missing key, a layer of another shape: another version, or damaged) is one error line."""
    try:
        q_network.load_state_dict(checkpoint["q_network"])
        target_network.load_state_dict(checkpoint["target_network"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        rb.load_state_dict(checkpoint["replay"])
        random.setstate(checkpoint["rng"]["python"])
        torch.set_rng_state(checkpoint["rng"]["torch"])
        rng.bit_generator.state = checkpoint["rng"]["exploration"]
        envs.action_space.np_random.bit_generator.state = checkpoint["rng"]["action_space"]
        for env, state in zip(envs.unwrapped.envs, checkpoint["rng"]["envs"], strict=True):
            env.unwrapped.np_random.bit_generator.state = state
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, RuntimeError) as error:
        fail(f"--resume {args.resume}: the checkpoint does not fit this script (another version, or damaged): "
             f"{type(error).__name__} {' '.join(str(error).split())}")
    print(f"resumed at step {checkpoint['global_step']:,}; the games in progress then are lost: new ones start")
    return checkpoint["global_step"]


def check_resume(checkpoint: dict, args: Args):
    """A resumed run is the checkpoint's: only CHANGEABLE_ON_RESUME flags may differ, and it must end past its step."""
    for name, saved in checkpoint["args"].items():
        if name not in CHANGEABLE_ON_RESUME and getattr(args, name) != saved:
            fail(f"--{name.replace('_', '-')} {getattr(args, name)}: the checkpoint's run used {saved}, and only "
                 f"{', '.join(sorted(CHANGEABLE_ON_RESUME))} may change on --resume")
    if checkpoint["global_step"] - args.num_envs >= args.total_timesteps:  # the run would have ended before it
        fail(f"--total-timesteps {args.total_timesteps}: the checkpoint is at step {checkpoint['global_step']:,}")


# ---- The command line, argument checks and main() ---------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> Args:
    """The flags of the command line. With --resume, those not given take the checkpoint's values (tyro's
    `default=`), so every flag given is one the run is checked against, even if it equals the default. A parse
    error is one error line instead of tyro's box (the hook in tyro._errors is private: requirements.txt pins tyro)."""
    with tyro._errors.on_parse_error(one_line_parse_error):
        args = tyro.cli(Args, args=argv)
        if args.resume:
            saved = load_checkpoint(args.resume)[0]["args"]
            args = tyro.cli(Args, args=argv, default=Args(**saved | {"resume": args.resume}))
    return args


def one_line_parse_error(event):
    """Called by tyro before it draws its box: one error line, naming the flag. Other errors: tyro's box."""
    flag = f"{event.argument.display_name()}: " if getattr(event, "argument", None) else ""
    if isinstance(event, tyro._errors.InstantiationFailure):  # a value of the wrong type: "1e12" for an int
        fail(f"{flag}{event.message} (see --help)")
    if isinstance(event, tyro._errors.InvalidChoice):
        fail(f"{flag}{event.value!r} is not one of {', '.join(event.choices)}")
    if isinstance(event, tyro._errors.UnrecognizedArgs):
        fail(f"unrecognized: {' '.join(event.tokens)} (see --help)")
    if isinstance(event, tyro._errors.BadValue) and event.reason == "too_few_values":
        fail(f"{flag}the value is missing (see --help)")


def fail(message: str, status: int = 2):
    """One line on stderr, no traceback; exit status 2: bad input, 1: a fault (full disk, NaN weights), 130: Ctrl-C."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(status)


def check_args(args: Args):
    """Before anything is written, report the first rule a flag's value breaks (NaN breaks every comparison)."""
    rules = [  # (flag, whether its value can make a sensible run, why not)
        ("total_timesteps", args.total_timesteps > 0, "must be positive"),
        ("learning_rate", 0 < args.learning_rate < math.inf, "must be positive and finite"),
        ("num_envs", args.num_envs > 0, "must be positive"),
        ("batch_size", args.batch_size > 0, "must be positive"),
        ("buffer_size", args.buffer_size >= args.batch_size, f"smaller than --batch-size {args.batch_size}"),
        ("buffer_size", args.buffer_size >= 5 * args.num_envs, f"under 5 slots per env (--num-envs {args.num_envs})"),
        ("gamma", 0 <= args.gamma < 1, "must be in [0, 1)"),
        ("tau", 0 < args.tau <= 1, "must be in (0, 1]"),
        ("target_network_frequency", args.target_network_frequency > 0, "must be positive"),
        ("start_e", 0 <= args.start_e <= 1, "must be in [0, 1]"),
        ("end_e", 0 <= args.end_e <= args.start_e, f"must be in [0, --start-e {args.start_e}]"),
        ("exploration_fraction", 0 < args.exploration_fraction <= 1, "must be in (0, 1]"),
        ("learning_starts", args.learning_starts >= 0, "must be 0 or more"),
        ("learning_starts", args.eval_only or args.learning_starts < args.total_timesteps,
         f"learning would never start (--total-timesteps {args.total_timesteps})"),
        ("train_frequency", args.train_frequency > 0, "must be positive"),
        ("seed", 0 <= args.seed < 2**32, "must be in [0, 2**32): numpy's seed range"),
        ("checkpoint_frequency", args.checkpoint_frequency >= 0, "must be 0 or more"),
        ("eval_frequency", args.eval_frequency >= 0, "must be 0 or more"),
        ("eval_episodes", args.eval_episodes > 0, "must be positive"),
        ("eval_epsilon", 0 <= args.eval_epsilon <= 1, "must be in [0, 1]"),
        ("model_path", args.model_path or not args.eval_only, "--eval-only needs one (saved with --save-model)"),
        ("track", not args.track or importlib.util.find_spec("wandb"), "needs Weights & Biases: pip install wandb"),
        ("resume", args.resume != "", "must name a run folder or its checkpoint file"),
        ("run_name", args.run_name is None or is_file_name(args.run_name), f"must be a folder's name: {NAME_RULE}"),
        ("exp_name", args.exp_name and is_file_name(f"{args.exp_name}.pt") and is_file_name(run_folder_name(args)),
         f"must fit in the run folder's and the model's names: {NAME_RULE}"),
        ("runs_dir", all(os.path.isdir(p) for p in (args.runs_dir, *Path(args.runs_dir).parents) if os.path.exists(p)),
         "is, or is inside, a file: it must be a folder"),
    ]
    for name, ok, reason in rules:
        if not ok:
            fail(f"--{name.replace('_', '-')} {getattr(args, name)!r}: {reason}")


NAME_RULE = "not '', '.' or '..', no '/', at most 255 bytes"


def is_file_name(name: str) -> bool:
    """Whether `name` names one file or folder inside a folder: the NAME_RULE (and no NUL byte)."""
    return name not in ("", ".", "..") and "/" not in name and "\0" not in name and len(os.fsencode(name)) <= 255


def run_folder_name(args: Args) -> str:
    return args.run_name or f"{args.env_id.replace('/', '_')}__{args.exp_name}__{args.seed}__{int(time.time())}"


def new_run_dir(args: Args) -> str:
    """Create the run folder, exclusively, so that two runs never share one: a default name already taken (two runs
    started in the same second) gets -2, -3, ...; a --run-name already taken is refused."""
    name, attempt = run_folder_name(args), 1
    while True:
        run_dir = os.path.join(args.runs_dir, name if attempt == 1 else f"{name}-{attempt}")
        try:
            os.makedirs(run_dir)
            return run_dir
        except FileExistsError:
            if args.run_name:
                fail(f"--run-name {name}: {run_dir} already exists (" + (
                    f"continue it with --resume {run_dir})" if os.path.isfile(os.path.join(run_dir, CHECKPOINT))
                    else "choose another name)"))
            attempt += 1


def start_run(args: Args, run_dir: str | None, wandb_id: str | None):
    """The run folder (`run_dir` when resumed, else a new one) and, with --track, CleanRL's Weights & Biases run
    (else None; when resumed, the run `wandb_id` again), made before the SummaryWriter so that every scalar is
    mirrored. W&B starts first: if it cannot (not logged in, no network), one line and nothing is written."""
    tracking = None
    if args.track:
        import wandb  # only with --track; check_args made sure it is installed
        try:
            tracking = wandb.init(project=args.wandb_project_name, entity=args.wandb_entity, sync_tensorboard=True,
                                  config=vars(args), monitor_gym=True, save_code=True, id=wandb_id, resume="allow")
        except wandb.errors.Error as error:  # UsageError: not logged in, a bad entity (bad input); else a fault
            fail(f"--track: Weights & Biases did not start: {' '.join(str(error).split())}",
                 status=2 if isinstance(error, wandb.errors.UsageError) else 1)
    run_dir = run_dir or new_run_dir(args)
    if tracking:
        tracking.name = os.path.basename(run_dir)  # named once the folder's name is known (-2 if it was taken)
    return run_dir, tracking


def main(args: Args) -> QNetwork:
    """Check the flags (merged by parse_args on --resume), then train (or with --eval-only, evaluate); returns Q."""
    check_args(args)
    make_env(args.env_id, args.seed, 0)  # a bad --env-id stops here, before anything is written
    if args.eval_only:
        return eval_only(args)
    checkpoint, run_dir = load_checkpoint(args.resume) if args.resume else (None, None)
    if checkpoint:
        check_resume(checkpoint, args)
    return train(args, run_dir, checkpoint)


def quiet_writer_thread(hook):
    """TensorBoard's writer thread stays quiet on an OSError (a full disk): the main thread reports it in one line."""
    if not issubclass(hook.exc_type, OSError):
        threading.__excepthook__(hook)


if __name__ == "__main__":
    threading.excepthook = quiet_writer_thread
    try:
        main(parse_args())
    except OSError as error:  # a full disk, a read-only folder: the cause in one line (a checkpoint is never partial)
        fail(str(error), status=1)
    except KeyboardInterrupt:  # Ctrl-C outside the training loop, or a second one (the first stops after its step)
        fail("interrupted (Ctrl-C) outside the training loop, or a second time; what was already saved is intact",
             status=130)
