"""Tabular Q-learning (Watkins 1989; Watkins & Dayan 1992, "Q-learning", Machine Learning 8:279-292) on FrozenLake
and any gymnasium env with discrete states and actions, scored exactly.

Idea: keep a table Q(s, a) of action values. Act ε-greedily; after every step move the visited entry towards
the one-step TD target:

    Q(s, a) += α · (r + γ · max_a' Q(s', a') · (1 − terminated) − Q(s, a))

A terminal transition (a hole or the goal) has no future; a time-limit truncation does, so it still bootstraps.
Q-learning converges to Q* when every (s, a) is tried infinitely often and Σα = ∞, Σα² < ∞ (Watkins & Dayan).
A constant α never settles on slippery ice, so here α = learning_rate / n(s, a)^ω, n(s, a) the visit count
(Even-Dar & Mansour 2003: ω ∈ (1/2, 1) converges polynomially fast; ω = 1, the running average, is too slow).
ε falls from 1 to 0 over the first 65% of the episodes; the rest refine the values of the greedy actions. A run
lasts 1,250 episodes per state on FrozenLake (it pays only at the goal, and its ice is noisy: 20,000 episodes on
4x4, 80,000 on 8x8), 20 per state elsewhere (Taxi, CliffWalking: a step costs −1, which already drives exploration).

Scoring is exact, not sampled: value iteration on the env's own model `env.unwrapped.P` gives Q*, and the greedy
policy π is evaluated by solving (I − γ P_π) V = R_π: V(π)/V* from the start distribution and, on FrozenLake,
the probability that π reaches the goal. The agent itself never reads P. Every chart is against env steps.

Run:  python qlearning_frozenlake.py [--map-name 8x8 | --map-size 6 --map-seed 3 | --env-id Taxi-v4] [--track]
A bad flag: one `error:` line, status 2, nothing written; a fault (full disk): status 1; Ctrl-C: where it stopped, 130.
"""

import importlib.util
import itertools
import os
import re
import signal
import sys
import threading
import time
import warnings
from collections import deque, namedtuple
from dataclasses import dataclass
from pathlib import Path

import cv2
import gymnasium as gym
import numpy as np
import tyro
from gymnasium.envs.toy_text import CliffWalkingEnv, FrozenLakeEnv, TaxiEnv
from gymnasium.envs.toy_text.frozen_lake import is_valid
from gymnasium.utils import seeding
from tensorboard.compat.proto.summary_pb2 import Summary
from tensorboard.plugins.hparams import api_pb2, metadata as hparams_metadata
from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData
from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import hparams


@dataclass
class Args:
    # Algorithm
    env_id: str = "FrozenLake-v1"
    """a gymnasium env with Discrete states and actions and a model P: FrozenLake-v1, FrozenLake8x8-v1, Taxi-v4, ..."""
    total_episodes: int | None = None
    """number of training episodes; unset: 1,250 per state on FrozenLake (20,000 on 4x4), else 20 per state"""
    learning_rate: float = 1.0
    """the step size α0 in α = α0 / n(s, a)^ω; with --lr-decay-exponent 0 it is a constant step size"""
    lr_decay_exponent: float = 0.6
    """ω in α = α0 / n(s, a)^ω, n(s, a) the visit count: (1/2, 1] converges on slippery ice, 0 is a constant α"""
    gamma: float = 0.95
    """the discount factor γ (the training objective and the exact scoring both use it)"""
    start_e: float = 1.0
    """the starting ε for exploration"""
    end_e: float = 0.0
    """the final ε for exploration (0: the last episodes refine the values of the greedy actions)"""
    exploration_fraction: float = 0.65
    """the fraction of `total_episodes` over which ε falls linearly from start-e to end-e"""
    # FrozenLake's map (other envs ignore these)
    map_name: str | None = None
    """the built-in map, "4x4" or "8x8"; unset: the env's own, 4x4 for FrozenLake-v1, 8x8 for FrozenLake8x8-v1"""
    map_size: int = 0
    """if > 0, a random N×N map, gymnasium's `generate_random_map` (not --map-name); scoring needs 56·N⁴ bytes"""
    map_p: float = 0.8
    """probability that a cell of a random map is frozen (safe); a map without a path from S to G is drawn again"""
    map_seed: int = 0
    """seed of the random map (kept apart from --seed so a seed sweep plays one map)"""
    is_slippery: bool = True
    """slippery ice moves in the intended direction with probability 1/3, else to either side"""
    # Run management
    exp_name: str = os.path.basename(__file__)[: -len(".py")]
    """the name of this experiment, part of the run folder's default name and the model's file name"""
    seed: int = 1
    """seed of the agent's numpy Generator (ε coin, exploring action, ties) and of the env's first reset"""
    log_frequency: int = 100
    """log the means over the last this many episodes every this many episodes, at the step the last one ended"""
    eval_frequency: int = 500
    """score the greedy policy exactly (linear solve, logged as eval/value_ratio) every this many episodes"""
    save_model: bool = False
    """whether to save the learned Q-table as `{runs_dir}/{run_name}/{exp_name}.npy`"""
    capture_video: bool = False
    """whether to record 3 greedy episodes as `{runs_dir}/{run_name}/videos/greedy.mp4` and in TensorBoard"""
    runs_dir: str = "runs"
    """folder that holds the run folders (TensorBoard logs, pictures, model, videos), made if missing"""
    run_name: str | None = None
    """the run folder's name, refused if taken; unset: `{env_id}__{exp_name}__{seed}__{unix time}` (then -2, -3, ...)"""
    track: bool = False
    """if toggled, the run is also tracked with Weights & Biases (every TensorBoard scalar, the flags, the code)"""
    wandb_project_name: str = "cleanRL"
    """the Weights & Biases project of --track"""
    wandb_entity: str | None = None
    """the Weights & Biases entity (user or team) of --track; unset: your default entity"""


def epsilon_greedy_action(q_row: np.ndarray, epsilon: float, rng: np.random.Generator) -> int:
    """Explore (a uniformly random action) with probability ε, else exploit: argmax_a Q(s, a), ties broken at random."""
    if rng.random() < epsilon:
        return int(rng.integers(len(q_row)))
    return int(rng.choice(np.flatnonzero(q_row == q_row.max())))  # an all-zero row must not always pick action 0


def td_update(q_table: np.ndarray, obs: int, action: int, reward: float, next_obs: int,
              terminated: bool, alpha: float, gamma: float) -> None:
    """One Q-learning step on the table, in place. Only termination stops the bootstrap: a time-limit truncation
    leaves the next state's value intact, so the caller passes `terminated`, never `truncated`."""
    # TD target: y = r + γ · max_a' Q(s', a') · (1 − terminated)
    td_target = reward + gamma * q_table[next_obs].max() * (1 - terminated)
    q_table[obs, action] += alpha * (td_target - q_table[obs, action])


def linear_schedule(start_e: float, end_e: float, duration: float, t: int) -> float:
    """ε falls linearly from start_e at t = 0 to end_e at t = duration, then stays there (CleanRL's schedule)."""
    slope = (end_e - start_e) / duration
    return max(slope * t + start_e, end_e)


def train(args: Args) -> "Result":
    env = make_env(args)  # a bad --env-id stops here, with one error line, before anything is written
    scorer = ExactScorer(env, args.gamma)  # value iteration on env.unwrapped.P: for scoring only
    if args.total_episodes is None:  # more states need more episodes, and FrozenLake's noisy ice many per state
        args.total_episodes = (1_250 if scorer.is_frozenlake else 20) * int(env.observation_space.n)
    writer = open_run(args, env)  # the run folder, --track's W&B run, TensorBoard with the hyperparameters
    # one Generator for every random choice of the agent; the env's own comes from its first reset: same seed, same Q
    rng = np.random.default_rng(args.seed)
    q_table = np.zeros((env.observation_space.n, env.action_space.n))
    visits = np.zeros(q_table.shape, dtype=np.int64)  # n(s, a), for the step size
    returns, lengths, successes = (deque(maxlen=args.log_frequency) for _ in range(3))  # of the latest episodes
    global_step, start_time = 0, time.time()  # global_step: env steps so far, the x axis of every chart
    writer.add_scalar("charts/epsilon", args.start_e, global_step)
    log_evaluation(writer, global_step, scorer.evaluate(q_table))
    with StopOnCtrlC() as ctrl_c:
        for episode in range(args.total_episodes):
            epsilon = linear_schedule(args.start_e, args.end_e, args.exploration_fraction * args.total_episodes,
                                      episode)
            obs, _ = env.reset(seed=args.seed if episode == 0 else None)  # seeded once: later resets go on from there
            episode_return, episode_length, terminated, truncated = 0.0, 0, False, False
            while not (terminated or truncated):
                action = epsilon_greedy_action(q_table[obs], epsilon, rng)
                next_obs, reward, terminated, truncated, _ = env.step(action)
                visits[obs, action] += 1
                alpha = args.learning_rate / visits[obs, action] ** args.lr_decay_exponent  # α = α0 / n(s, a)^ω
                td_update(q_table, obs, action, reward, next_obs, terminated, alpha, args.gamma)
                episode_return += reward
                episode_length += 1
                obs = next_obs
            global_step += episode_length
            returns.append(episode_return)
            lengths.append(episode_length)
            successes.append(terminated and (reward > 0 or not scorer.is_frozenlake))  # FrozenLake: the goal
            episodes_done, sps = episode + 1, global_step / (time.time() - start_time)
            if episodes_done % args.log_frequency == 0:  # means over the last log_frequency episodes
                writer.add_scalar("charts/episodic_return", np.mean(returns), global_step)
                writer.add_scalar("charts/episodic_length", np.mean(lengths), global_step)
                if not scorer.is_frozenlake:  # FrozenLake pays 1 at the goal only: there it is charts/episodic_return
                    writer.add_scalar("charts/success_rate", np.mean(successes), global_step)
                writer.add_scalar("charts/epsilon", epsilon, global_step)
                writer.add_scalar("charts/SPS", sps, global_step)
                writer.add_scalar("charts/episodes", episodes_done, global_step)
            if episodes_done % args.eval_frequency == 0 or episodes_done == args.total_episodes:
                log_evaluation(writer, global_step, scorer.evaluate(q_table))
            if episodes_done % max(1, args.total_episodes // 10) == 0:
                eta = (args.total_episodes / episodes_done - 1) * (time.time() - start_time)
                print(f"episode {episodes_done} | SPS {sps:,.0f} | ETA {eta:.0f} s | "
                      f"V(π)/V* {scorer.evaluate(q_table).value_ratio:.4f}")
            if ctrl_c.pressed:  # one line saying where the run stopped; what was logged stays
                writer.close()
                fail(f"interrupted (Ctrl-C) after episode {episode + 1:,} of {args.total_episodes:,}, at env step "
                     f"{global_step:,}; the logs so far are in {writer.log_dir}", status=130)
    result = Result(q_table, writer.log_dir, global_step, time.time() - start_time, float(np.mean(successes)),
                    scorer.evaluate(q_table), env_name(args, env))
    finish_run(args, env, writer, result)  # pictures, model, video, the end of the W&B run
    return result


# ---- Plumbing: the env, exact scoring, logging, pictures and video, argument checks, main() -------------------
def fail(message: str, status: int = 2):
    """Stop with one line on stderr, never a traceback: status 2 for bad input, 1 for a fault, 130 for Ctrl-C."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(status)


class StopOnCtrlC:
    """Inside `with StopOnCtrlC() as ctrl_c:`, Ctrl-C sets `ctrl_c.pressed` and later ones are ignored. A flag, not
    a KeyboardInterrupt: one raised inside TensorBoard's writer can leave it waiting forever when it is closed."""

    def __enter__(self):
        self.pressed, self.previous_handler = False, signal.signal(signal.SIGINT, self.press)
        return self

    def press(self, signum, frame):
        self.pressed = True
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    def __exit__(self, *exception):
        if not self.pressed:
            signal.signal(signal.SIGINT, self.previous_handler)


def make_env(args: Args, render_mode: str | None = None) -> gym.Env:
    """The env, or one error line naming --env-id if it is unknown, not tabular, or has no model P."""
    kwargs = {}
    if args.env_id.startswith("FrozenLake"):  # a map only when one is asked for: FrozenLake8x8-v1 keeps its own
        kwargs["is_slippery"] = args.is_slippery
        if args.map_size > 0:
            kwargs["desc"] = random_map(args.map_size, args.map_p, args.map_seed)
        elif args.map_name is not None:
            kwargs["map_name"] = args.map_name
    try:
        with warnings.catch_warnings(action="ignore"):  # its warnings ("out of date") say less than its errors
            env = gym.make(args.env_id, render_mode=render_mode, **kwargs)
    except (gym.error.Error, ImportError) as e:  # unknown, deprecated (Taxi-v3), or needing a missing package (jax)
        fail(f"--env-id {args.env_id}: gymnasium cannot make it: {e}")
    if env.spec.id != args.env_id.split(":")[-1]:  # "Taxi": gymnasium plays its latest version, which may change
        fail(f"--env-id {args.env_id}: name the version; gymnasium would play {env.spec.id}")
    spaces = (env.observation_space, env.action_space)
    if not all(isinstance(space, gym.spaces.Discrete) for space in spaces):
        fail(f"--env-id {args.env_id}: observation and action spaces {spaces}; a Q-table needs both Discrete")
    if not hasattr(env.unwrapped, "P"):
        fail(f"--env-id {args.env_id}: has no transition model env.unwrapped.P for exact scoring")
    return env


def random_map(size: int, p: float, seed: int, max_tries: int = 10_000) -> list[str]:
    """gymnasium's `generate_random_map(size, p, seed)`, draw for draw (the same maps), giving up after `max_tries`."""
    np_random, _ = seeding.np_random(seed)
    for _ in range(max_tries):
        board = np_random.choice(["F", "H"], (size, size), p=[p, 1 - p])
        board[0][0], board[-1][-1] = "S", "G"
        if is_valid(board, size):  # generate_random_map's own path check (not exported): it has no bounded version
            return ["".join(row) for row in board]
    fail(f"--map-p {p}: no {size}x{size} map with a path from S to G in {max_tries:,} draws; raise --map-p")


def env_name(args: Args, env: gym.Env) -> str:
    """The env as played; FrozenLake names the map it got: "FrozenLake-v1 (map random 6x6 p=0.8 seed=3, slippery)"."""
    if not isinstance(env.unwrapped, FrozenLakeEnv):
        return args.env_id
    rows, cols = env.unwrapped.desc.shape
    played = f"random {rows}x{cols} p={args.map_p} seed={args.map_seed}" if args.map_size else f"{rows}x{cols}"
    return f"{args.env_id} (map {played}, {'slippery' if args.is_slippery else 'not slippery'})"


def tabular_model(P: dict, n_states: int, n_actions: int) -> tuple[np.ndarray, np.ndarray]:
    """From gymnasium's P[s][a] = [(prob, next_state, reward, terminated), ...]: the expected reward
    R[s, a] = Σ prob · reward and T[s, a, s'] = Σ prob · (1 − terminated) (a terminal transition leads nowhere)."""
    T, R = np.zeros((n_states, n_actions, n_states)), np.zeros((n_states, n_actions))
    for s, a in itertools.product(range(n_states), range(n_actions)):
        for prob, next_state, reward, terminated in P[s][a]:
            T[s, a, next_state] += prob * (1 - terminated)
            R[s, a] += prob * reward
    return T, R


def value_iteration(T: np.ndarray, R: np.ndarray, gamma: float, tol: float = 1e-12) -> np.ndarray:
    """Q*(s, a) = R[s, a] + γ · Σ_s' T[s, a, s'] · max_a' Q*(s', a'), iterated to a fixed point (γ-contraction)."""
    q = np.zeros_like(R)
    while True:
        new_q = R + gamma * T @ q.max(axis=1)
        if np.abs(new_q - q).max() < tol:
            return new_q
        q = new_q


def policy_value(T: np.ndarray, R: np.ndarray, policy: np.ndarray, gamma: float) -> np.ndarray:
    """V_π for a deterministic policy, exactly: solve (I − γ P_π) V = R_π, P_π[s, s'] = T[s, π(s), s']."""
    states = np.arange(len(policy))
    return np.linalg.solve(np.eye(len(policy)) - gamma * T[states, policy], R[states, policy])


def absorption_value(T: np.ndarray, R: np.ndarray, policy: np.ndarray) -> np.ndarray:
    """The undiscounted (γ = 1) return of a deterministic policy, on FrozenLake (reward 1 at the goal only) the
    probability of ever reaching the goal. States that never terminate get 0; on the others I − P_π is invertible."""
    states = np.arange(len(policy))
    P_pi, R_pi = T[states, policy], R[states, policy]
    can_end = P_pi.sum(axis=1) < 1 - 1e-12  # terminates in one step with positive probability
    for _ in range(len(policy)):  # grow backwards (n rounds reach every state that can end): states that can reach
        can_end = can_end | (P_pi[:, can_end].sum(axis=1) > 0)  # one that can end, with positive probability
    value, idx = np.zeros(len(policy)), np.flatnonzero(can_end)
    value[idx] = np.linalg.solve(np.eye(len(idx)) - P_pi[np.ix_(idx, idx)], R_pi[idx])
    return value


def value_ratio(v_pi: float, v_star: float) -> float:
    """1 − (V* − V(π)) / |V*|: V(π)/V* if V* > 0 (FrozenLake, Taxi), still "1 is optimal" if V* < 0 (CliffWalking).
    V* = 0 (γ = 0 on FrozenLake: no reward one step from the start) leaves π optimal (1) or worse than any ratio."""
    if v_star == 0:
        return 1.0 if v_pi >= 0 else float("-inf")
    return 1 - (v_star - v_pi) / abs(v_star)


# π's score from the start: value_ratio (V(π)/V* if V* > 0), V(π), V*; P(reach goal) of π and argmax Q* (FrozenLake)
Evaluation = namedtuple("Evaluation", "value_ratio v_pi v_star goal_probability optimal_goal_probability")
# What main() returns (wall_time: of the loop; success_rate: of the last log_frequency episodes)
Result = namedtuple("Result", "q_table run_dir steps wall_time success_rate evaluation env_name")


class ExactScorer:
    """Scores the greedy policy of a Q-table exactly, from the env's model P (worked out once per run)."""

    def __init__(self, env: gym.Env, gamma: float):
        self.T, self.R = tabular_model(env.unwrapped.P, env.observation_space.n, env.action_space.n)
        self.q_star, self.gamma = value_iteration(self.T, self.R, gamma), gamma
        self.start = np.asarray(env.unwrapped.initial_state_distrib, dtype=float)  # the start distribution
        self.is_frozenlake = isinstance(env.unwrapped, FrozenLakeEnv)
        self.optimal_goal = self.goal_probability(self.q_star.argmax(axis=1))  # that of the optimal policy

    def goal_probability(self, policy: np.ndarray) -> float | None:
        """FrozenLake only (its sole reward is the goal's): the probability that `policy` ever reaches the goal."""
        return float(self.start @ absorption_value(self.T, self.R, policy)) if self.is_frozenlake else None

    def evaluate(self, q_table: np.ndarray) -> Evaluation:
        """The greedy policy's score; ties go to the lowest action (np.argmax), so it is one well-defined policy."""
        policy = q_table.argmax(axis=1)
        v_pi = float(self.start @ policy_value(self.T, self.R, policy, self.gamma))
        v_star = float(self.start @ self.q_star.max(axis=1))
        return Evaluation(value_ratio(v_pi, v_star), v_pi, v_star, self.goal_probability(policy), self.optimal_goal)


def default_run_name(args: Args) -> str:
    """CleanRL's `{env_id}__{exp_name}__{seed}__{unix time}` ('/' made '_'), FrozenLake's id with its map: `-8x8`."""
    env_id = args.env_id.replace("/", "_")
    if args.env_id.startswith("FrozenLake"):  # --map-size's random map, --map-name's, or the env's own
        own_map = gym.registry[args.env_id].kwargs["map_name"] if args.env_id in gym.registry else None
        env_id += f"-random{args.map_size}x{args.map_size}" if args.map_size else f"-{args.map_name or own_map}"
    return f"{env_id}__{args.exp_name}__{args.seed}__{int(time.time())}"


def open_run(args: Args, env: gym.Env) -> SummaryWriter:
    """W&B first (it mirrors every scalar; if it cannot start, nothing is written), the run folder, the writer."""
    if args.track:
        import wandb  # only with --track; check_args made sure it is installed
        try:
            wandb.init(project=args.wandb_project_name, entity=args.wandb_entity, sync_tensorboard=True,
                       config=vars(args), monitor_gym=True, save_code=True)
        except wandb.errors.Error as e:  # not logged in (no API key, no terminal to ask for one), no network, ...
            fail(f"--track True: Weights & Biases did not start: {e}",  # a setup to fix (log in): 2; a fault: 1
                 status=2 if isinstance(e, wandb.errors.UsageError) else 1)
    name = args.run_name or default_run_name(args)
    for attempt in itertools.count(1):  # a default name taken in the same second gets -2, -3, ...
        run_dir = os.path.join(args.runs_dir, name if attempt == 1 else f"{name}-{attempt}")
        try:
            os.makedirs(run_dir)
            break
        except FileExistsError:
            if args.run_name:
                fail(f"--run-name {name}: {run_dir} already exists (choose another name)")
    if args.track:
        wandb.run.name = os.path.basename(run_dir)  # named once the folder's name is known
    writer = SummaryWriter(run_dir)
    table = "\n".join(f"|{key}|{value}|" for key, value in vars(args).items())
    writer.add_text("hyperparameters", f"|param|value|\n|-|-|\n{table}")
    # the HPARAMS tab: its layout, then this run's values of its columns, and its end
    experiment = api_pb2.Experiment(
        hparam_infos=[api_pb2.HParamInfo(name=name, differs=name in HPARAMS_COLUMNS[:5]) for name in HPARAMS_COLUMNS],
        metric_infos=[api_pb2.MetricInfo(name=api_pb2.MetricName(tag=tag)) for tag in HPARAMS_METRICS])
    layout = hparams_metadata.create_summary_metadata(HParamsPluginData(experiment=experiment))
    writer.file_writer.add_summary(Summary(value=[Summary.Value(tag=hparams_metadata.EXPERIMENT_TAG, metadata=layout)]))
    values = {name: getattr(args, name) for name in HPARAMS_COLUMNS if hasattr(args, name)}
    for session_record in hparams(values | {"env": env_name(args, env)}, {})[1:]:
        writer.file_writer.add_summary(session_record)
    return writer


# The HPARAMS tab's columns and metrics, the same in the three scripts: TensorBoard takes the first layout it finds, so
# a folder mixing their runs shows all their flags. It ticks the first five of each: the results, what tells runs apart.
HPARAMS_COLUMNS = ("exp_name", "env_id", "env", "seed", "learning_rate", "gamma", "total_timesteps", "total_episodes",
                   "lr_decay_exponent", "start_e", "end_e", "exploration_fraction", "buffer_size", "batch_size",
                   "target_network_frequency", "tau", "learning_starts", "train_frequency", "loss", "num_envs")
HPARAMS_METRICS = ("eval/episodic_return", "eval/value_ratio", "eval/goal_probability", "eval/q_estimate",
                   "eval/discounted_return", "charts/episodic_return", "charts/success_rate", "charts/SPS")


def log_evaluation(writer: SummaryWriter, global_step: int, evaluation: Evaluation) -> None:
    writer.add_scalar("eval/value_ratio", evaluation.value_ratio, global_step)
    if evaluation.goal_probability is not None:
        writer.add_scalar("eval/goal_probability", evaluation.goal_probability, global_step)


def finish_run(args: Args, env: gym.Env, writer: SummaryWriter, result: Result) -> None:
    """The pictures (in TensorBoard and as PNG), model and video; the end of the W&B run."""
    layout, pictures = grid_layout(env), {}  # neither a grid nor Taxi: no picture
    if isinstance(env.unwrapped, TaxiEnv):  # 500 states, 3,000 values: its greedy policy, 20 maps of the taxi's cells
        pictures = {"greedy_policy": draw_taxi_policy(result.q_table, env.unwrapped.locs)}
    elif layout:
        pictures = {"q_table": draw_policy_map(*layout, result.q_table, q_values=True),
                    "greedy_policy": draw_policy_map(*layout, result.q_table)}
    for name, img in pictures.items():
        Path(result.run_dir, f"{name}.png").write_bytes(cv2.imencode(".png", img)[1].tobytes())  # a full disk raises
        writer.add_image(f"images/{name}", img[:, :, ::-1], result.steps, dataformats="HWC")  # BGR → RGB
    if args.save_model:
        np.save(os.path.join(result.run_dir, f"{args.exp_name}.npy"), result.q_table)
    if args.capture_video:
        os.makedirs(os.path.join(result.run_dir, "videos"))
        record_video(args, result.q_table, writer, os.path.join(result.run_dir, "videos", "greedy.mp4"), result.steps)
    writer.close()
    env.close()
    if args.track:
        import wandb
        wandb.finish()


def grid_layout(env: gym.Env):
    """(the cells' letters, a string per row; each action's move (dx, dy), y down) for grid envs; None for others."""
    u = env.unwrapped
    if isinstance(u, FrozenLakeEnv):  # S start, F frozen, H hole, G goal; left, down, right, up
        return [b"".join(row).decode() for row in u.desc], [(-1, 0), (0, 1), (1, 0), (0, -1)]
    if isinstance(u, CliffWalkingEnv):  # S and G at the bottom corners, the cliff C between them; up, right, down, left
        rows, cols = u.shape
        return ["F" * cols] * (rows - 1) + ["S" + "C" * (cols - 2) + "G"], [(0, -1), (1, 0), (0, 1), (-1, 0)]
    return None


def viridis(values: np.ndarray) -> np.ndarray:
    """BGR colours for `values` scaled to their range: viridis, dark low, yellow high."""
    scaled = (values - values.min()) / (np.ptp(values) or 1)  # all values equal: all the lowest colour
    return cv2.applyColorMap(np.uint8(np.round(255 * scaled)), cv2.COLORMAP_VIRIDIS).reshape(*values.shape, 3)


def ink_on(colour) -> tuple:
    """Black on light colours, white on dark ones."""
    return (0, 0, 0) if sum(map(int, colour)) > 400 else (255, 255, 255)


def filled_box(img: np.ndarray, x0: int, y0: int, w: int, h: int, colour, text: str, scale=0.4, thickness=1):
    """A w × h box of `colour` with `text` at its top left, in ink_on(colour)."""
    cv2.rectangle(img, (x0, y0), (x0 + w - 1, y0 + h - 1), tuple(map(int, colour)), -1)
    ink, text_height = ink_on(colour), cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)[0][1]
    cv2.putText(img, text, (x0 + 4, y0 + min(h - 5, text_height + 6)), cv2.FONT_HERSHEY_SIMPLEX, scale, ink,
                thickness, cv2.LINE_AA)
    return ink


WHITE = (255, 255, 255)
CELLS = {"H": ("hole", (30, 30, 30)), "C": ("cliff", (40, 40, 140)), "G": ("goal", (180, 105, 255))}  # BGR


def colour_bar(label: str, low: float, high: float, width: int, height: int = 26) -> np.ndarray:
    """A legend strip `width` px wide: "`label` low", viridis() from low to high, "high"."""
    strip = np.full((height, width, 3), 255, np.uint8)
    texts = (f"{label}: {low:.2f}", f"{high:.2f}")
    left, right = (cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.4, 1)[0][0] + 8 for text in texts)
    strip[6:-6, left:width - right] = viridis(np.arange(width - left - right, dtype=float))
    filled_box(strip, 0, 0, left, height, WHITE, texts[0])
    filled_box(strip, width - right, 0, right, height, WHITE, texts[1])
    return strip


def draw_policy_map(cells: list[str], moves, q_table: np.ndarray, agent=None, cell=None, q_values=False):
    """The map: each cell shaded by max_a Q(s, a), its letter, an arrow the way argmax_a Q(s, a) moves, `agent` red;
    with `q_values`, Q(s, a) itself (draw_q_triangles). Cells of `cell` px, else at most 72 and the map 320 px wide."""
    n_rows, n_cols = len(cells), len(cells[0])
    cell = cell or min(72, 320 // n_cols)  # TensorBoard's image cards: at least 335 px wide, 303 px inside
    font = (0.7, 2) if cell >= 60 else (cell / 100, 1)  # the cells' letters
    shown = q_table if q_values else q_table.max(axis=1)  # what the colours and the colour bar show
    img, shades = np.full((n_rows * cell, n_cols * cell, 3), 255, np.uint8), viridis(shown)  # white: grid lines
    for s in range(n_rows * n_cols):
        row, col = divmod(s, n_cols)
        letter, centre = cells[row][col], (col * cell + cell // 2, row * cell + cell // 2)
        if letter in CELLS:  # a hole, the goal, the cliff: no action to take
            filled_box(img, col * cell + 1, row * cell + 1, cell - 2, cell - 2, CELLS[letter][1], letter, *font)
        elif q_values:
            draw_q_triangles(img, centre, cell, q_table[s], moves, shades[s])
        else:
            ink = filled_box(img, col * cell + 1, row * cell + 1, cell - 2, cell - 2, shades[s], letter, *font)
            dx, dy = moves[q_table[s].argmax()]
            tip = (centre[0] + int(dx * cell * 0.38), centre[1] + int(dy * cell * 0.38))
            cv2.arrowedLine(img, centre, tip, ink, 2, cv2.LINE_AA, tipLength=0.35)
        if s == agent:
            cv2.circle(img, centre, cell // 5, (0, 0, 255), -1, cv2.LINE_AA)
    swatches = np.full((26, img.shape[1], 3), 255, np.uint8)
    for i, letter in enumerate(letter for letter in CELLS if any(letter in row for row in cells)):
        filled_box(swatches, 4 + 80 * i, 4, 18, 18, CELLS[letter][1], "")
        filled_box(swatches, 24 + 80 * i, 0, 56, 26, WHITE, CELLS[letter][0])
    bar = colour_bar("Q(s, a)" if q_values else "max Q", shown.min(), shown.max(), img.shape[1])
    return np.vstack([img, swatches, bar])


def draw_q_triangles(img: np.ndarray, centre, cell: int, q_row: np.ndarray, moves, shades: np.ndarray) -> None:
    """Q(s, a): a triangle per action toward the side it moves to, shaded (labelled from 64 px), argmax outlined red."""
    half, triangles = cell // 2 - 1, []
    for a, (dx, dy) in enumerate(moves):
        side, along = np.array([dx, dy]) * half, np.array([-dy, dx]) * half  # to the middle of that side; along it
        triangles.append(np.int32([centre, centre + side + along, centre + side - along]))
        cv2.fillConvexPoly(img, triangles[-1], tuple(map(int, shades[a])))
        if cell >= 64:  # the label centred 0.6 of the way to that side
            (w, h), _ = cv2.getTextSize(f"{q_row[a]:.2f}", cv2.FONT_HERSHEY_SIMPLEX, 0.35, 1)
            origin = np.int32(centre + 0.6 * side + (-w / 2, h / 2))
            cv2.putText(img, f"{q_row[a]:.2f}", origin, cv2.FONT_HERSHEY_SIMPLEX, 0.35, ink_on(shades[a]), 1)
    if q_row.max() > q_row.min():  # last, over the sides it shares with the other triangles
        cv2.polylines(img, [triangles[q_row.argmax()]], True, (0, 0, 255), 1)


def draw_taxi_policy(q_table: np.ndarray, places: list) -> np.ndarray:
    """Taxi's 500 states: a 5 × 5 map of the taxi's cells per passenger place (rows) and destination (columns), each
    cell shaded by max_a Q with its greedy action (arrow, P pickup, D dropoff; none if all equal), places outlined."""
    q = q_table.reshape(5, 5, 5, 4, 6)  # taxi row, taxi column, passenger, destination, action: gymnasium's encode()
    cell, panel, label = 12, 64, 56  # a panel: 5 cells and a 4 px gap
    img = np.full((20 + 5 * panel, label + 4 * panel, 3), 255, np.uint8)
    shades = viridis(q_table.max(axis=1)).reshape(5, 5, 5, 4, 3)  # in q's order
    for i, name in enumerate(["at R", "at G", "at Y", "at B", "in taxi"]):  # first: the outlines reach into them
        filled_box(img, 0, 20 + i * panel, label, panel, WHITE, name)
    for i, name in enumerate("RGYB"):
        filled_box(img, label + i * panel, 0, panel, 20, WHITE, f"to {name}")
    for p, d, row, col in itertools.product(range(5), range(4), range(5), range(5)):
        q_row, x0, y0 = q[row, col, p, d], label + d * panel + col * cell, 20 + p * panel + row * cell
        a = q_row.argmax() if q_row.max() > q_row.min() else None  # south, north, east, west, pickup, dropoff
        ink = filled_box(img, x0, y0, cell - 1, cell - 1, shades[row, col, p, d], "")
        if a in (4, 5):
            cv2.putText(img, "PD"[a - 4], (x0 + 2, y0 + 9), cv2.FONT_HERSHEY_SIMPLEX, 0.32, ink, 1, cv2.LINE_AA)
        elif a is not None:
            centre, move = np.array([x0 + 5, y0 + 5]), 4 * np.array([(0, 1), (0, -1), (1, 0), (-1, 0)][a])  # y down
            cv2.arrowedLine(img, centre - move, centre + move, ink, 1, tipLength=0.5)
        for place, colour in ((places[p] if p < 4 else None, (255, 80, 0)), (places[d], (200, 0, 200))):  # p 4: in taxi
            if (row, col) == place:  # the passenger's place outlined blue, then the destination magenta (BGR)
                cv2.rectangle(img, (x0 - 1, y0 - 1), (x0 + cell - 1, y0 + cell - 1), colour, 1)
    return np.vstack([img, colour_bar("max Q", q_table.max(axis=1).min(), q_table.max(), img.shape[1])])


def draw_ansi(text: str, rows: int = 10, cols: int = 24) -> np.ndarray:
    """A text render (render_mode="ansi": Taxi) on a fixed grid of rows × cols characters (one frame size for a video)
    with gymnasium's colours as boxes: passenger blue, destination magenta, taxi yellow (empty) or green (full)."""
    colours = {"34": (255, 80, 0), "35": (200, 0, 200), "42": (0, 200, 0), "43": (0, 220, 255)}  # BGR
    img = np.full((rows * 24, cols * 14, 3), 255, np.uint8)
    for r, line in enumerate(text.strip("\n").split("\n")[:rows]):
        c, style = 0, ""
        for i, token in enumerate(re.split(r"\x1b\[([0-9;]*)m", line)):  # text, code, text, code, ...
            if i % 2:  # an escape code: "0" resets, else a colour
                style = "" if token == "0" else token.split(";")[0]
                continue
            for char in token[: max(0, cols - c)]:
                filled_box(img, c * 14, r * 24, 14, 24, colours.get(style, WHITE), char, 0.5)
                c += 1
    return img


def record_video(args: Args, q_table: np.ndarray, writer: SummaryWriter, path: str, step: int) -> None:
    """3 greedy episodes (argmax, as scored) as an mp4 and, in TensorBoard, a GIF (no moviepy needed), drawn by OpenCV:
    the map with the agent in red, or the ANSI render (Taxi), under the episode, its step and, last, how it ended."""
    env = make_env(args, render_mode="ansi")  # the text render, drawn for envs that are not a grid (Taxi)
    layout, frames, durations = grid_layout(env), [], []
    for episode in range(3):
        obs, _ = env.reset(seed=args.seed + episode)
        terminated, truncated, episode_return = False, False, 0.0
        for t in range(201):  # at most 200 steps: CliffWalking has no time limit
            picture = draw_policy_map(*layout, q_table, agent=obs) if layout else draw_ansi(env.render())
            end = "terminated" if terminated else "time limit" if truncated or t == 200 else None
            frames.append(np.vstack([np.full((24, picture.shape[1], 3), 255, np.uint8), picture]))
            caption = f"episode {episode + 1} of 3, step {t}" + (f": {end}, return {episode_return:g}" if end else "")
            filled_box(frames[-1], 0, 0, picture.shape[1], 24, WHITE, caption)
            durations.append(2000 if end else 250)  # 4 frames a second, as the mp4; an episode's end held 2 s
            if end:
                break
            obs, reward, terminated, truncated, _ = env.step(int(q_table[obs].argmax()))
            episode_return += reward
    env.close()
    height, width = frames[0].shape[:2]
    # VP9 (fourcc "vp09") in mp4, 4 frames a second: a codec that browsers play and OpenCV's wheel encodes
    video = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"vp09"), 4, (width, height))
    for frame in frames:
        video.write(frame)
    video.release()
    if not cv2.VideoCapture(path).read()[0]:  # OpenCV's video writer does not raise when it cannot write
        raise OSError(f"the video {path} could not be written (is the disk full?)")
    animation = cv2.Animation()
    animation.frames, animation.durations = frames, durations
    gif = cv2.imencodeanimation(".gif", animation, [cv2.IMWRITE_GIF_DITHER, 3])[1].tobytes()  # 3: no dithering
    image = Summary.Image(height=height, width=width, colorspace=3, encoded_image_string=gif)
    writer.file_writer.add_summary(Summary(value=[Summary.Value(tag="videos/greedy", image=image)]), step)


def is_name(name: str) -> bool:
    """A name for one file or folder: not '', '.' or '..', no '/', and within the 255 bytes file systems allow."""
    return name not in ("", ".", "..") and "/" not in name and len(name.encode()) <= 255


def check_args(args: Args) -> None:
    """Reject impossible flag values before anything is written. NaN and ±inf fail every range below."""
    map_bytes = 8 * args.map_size**4 * (4 + 3)  # T (n² × 4 actions, n = size² states) and the solve's n × n matrices
    meminfo = Path("/proc/meminfo")  # Linux; MemAvailable counts the caches the OS can give back
    available = int(re.search(r"MemAvailable:\s+(\d+)", meminfo.read_text())[1]) * 1024 if meminfo.exists() else 2**63
    # the run folder is made under the nearest part of --runs-dir that exists, which must then be a folder
    runs_base = next(p for p in (Path(args.runs_dir), *Path(args.runs_dir).parents) if os.path.exists(p))
    checks = [
        ("total_episodes", args.total_episodes is None or args.total_episodes > 0, "must be a positive number"),
        ("learning_rate", 0 < args.learning_rate <= 1, "must be in (0, 1]"),
        ("lr_decay_exponent", 0 <= args.lr_decay_exponent <= 1, "must be in [0, 1]"),
        ("gamma", 0 <= args.gamma < 1, "must be in [0, 1)"),
        ("start_e", 0 <= args.start_e <= 1, "must be in [0, 1]"),
        ("end_e", 0 <= args.end_e <= args.start_e, f"must be in [0, --start-e {args.start_e}]"),
        ("exploration_fraction", 0 < args.exploration_fraction <= 1, "must be in (0, 1]"),
        ("map_name", args.map_name in (None, "4x4", "8x8"), 'must be "4x4" or "8x8"'),
        ("map_size", args.map_size == 0 or args.map_size >= 2, "must be 0 (no random map) or at least 2"),
        ("map_size", map_bytes <= 0.9 * available, f"exact scoring on that map needs {map_bytes / 2**30:,.1f} GiB of "
                                                   f"memory, over 90% of the {available / 2**30:,.1f} GiB available"),
        ("map_p", 0 < args.map_p <= 1, "must be in (0, 1]"),
        ("seed", 0 <= args.seed < 2**32, "must be in [0, 2**32): numpy's seed range"),
        ("map_seed", 0 <= args.map_seed < 2**32, "must be in [0, 2**32): numpy's seed range"),
        ("log_frequency", args.log_frequency > 0, "must be positive"),
        ("eval_frequency", args.eval_frequency > 0, "must be positive"),
        ("exp_name", is_name(args.exp_name) and is_name(default_run_name(args) + "-99"),  # with room for -2, -3, ...
         "must be a file name (not '', '.' or '..', no '/') short enough for the run folder's default name (255 B)"),
        ("run_name", args.run_name is None or is_name(args.run_name),
         "must be a folder name: not '', '.' or '..', no '/', at most 255 bytes"),
        ("runs_dir", args.runs_dir != "" and os.path.isdir(runs_base), "must name a folder, or where one can be made"),
        ("track", not args.track or importlib.util.find_spec("wandb"), "needs Weights & Biases: pip install wandb"),
    ]
    for flag, ok, reason in checks:
        if not ok:
            fail(f"--{flag.replace('_', '-')} {getattr(args, flag)}: {reason}")


def quiet_writer_thread(hook: threading.ExceptHookArgs):
    """A failed write (a full disk) in TensorBoard's writer thread: main() reports it in one line, not this thread."""
    if not issubclass(hook.exc_type, OSError):
        threading.__excepthook__(hook)


def main(args: Args) -> Result:
    """Check the flags, train, print the summary. Ctrl-C in the training loop says where it stopped (train())."""
    check_args(args)
    threading.excepthook = quiet_writer_thread
    try:
        result = train(args)
    except OSError as error:  # a full disk, a read-only folder: the cause in one line
        fail(f"cannot write the run under {args.runs_dir}: {error}", status=1)
    except KeyboardInterrupt:  # while setting up or finishing the run: where it stopped is not known here
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        fail("interrupted (Ctrl-C) outside the training loop: any run folder it made is incomplete", 130)
    e = result.evaluation
    goal = "-" if e.goal_probability is None else f"{e.goal_probability:.4f} (optimal {e.optimal_goal_probability:.4f})"
    rows = {"env": result.env_name, "episodes, env steps": f"{args.total_episodes:,}, {result.steps:,}",
            "wall time of the loop": f"{result.wall_time:.1f} s",
            f"success rate (last {args.log_frequency} episodes)": f"{result.success_rate:.3f}",
            "V(π) / V* (exact, from start)": f"{e.value_ratio:.6f} (V(π) {e.v_pi:.6f}, V* {e.v_star:.6f})",
            "P(reach goal) of π (FrozenLake)": goal, "run folder": result.run_dir}
    print("\n" + "\n".join(f"  {key:<32} {value}" for key, value in rows.items()))
    return result


if __name__ == "__main__":
    main(tyro.cli(Args))
