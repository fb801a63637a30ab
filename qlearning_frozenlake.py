"""Tabular Q-learning on FrozenLake (and any gymnasium env with discrete states and actions), scored exactly.

Algorithm: Q-learning (Watkins 1989; Watkins & Dayan 1992, "Q-learning", Machine Learning 8:279-292).

Idea: keep a table Q(s, a) of action values. Act ε-greedily; after every step move the visited entry towards
the one-step TD target:

    Q(s, a) += α · (r + γ · max_a' Q(s', a') · (1 − terminated) − Q(s, a))

A terminal transition (a hole or the goal) has no future; a time-limit truncation does, so it still
bootstraps. Q-learning converges to the optimal Q* when every (s, a) is tried infinitely often and the step
sizes satisfy Σα = ∞, Σα² < ∞ (Watkins & Dayan). A constant α never settles on slippery (stochastic) ice,
so the default step size is α = learning_rate / n(s, a)^ω with n(s, a) the visit count and ω = 0.6
(Even-Dar & Mansour 2003 show ω ∈ (1/2, 1) converges polynomially fast; ω = 1 is the running average and
too slow). ω = 0 gives the constant step size of most tutorials.

Scoring is exact, not sampled: the env's own model `env.unwrapped.P` gives Q* by value iteration, and the
learned greedy policy π is evaluated by solving (I − γ P_π) V = R_π. We report V(π)/V* from the start
distribution and, on FrozenLake, the probability that π reaches the goal.

Run:
    python qlearning_frozenlake.py                                             # 4x4 slippery, 20k episodes
    python qlearning_frozenlake.py --map-name 8x8 --total-episodes 100000      # 8x8 slippery
    python qlearning_frozenlake.py --map-size 6 --map-seed 3 --no-is-slippery  # a random 6x6 map
    python qlearning_frozenlake.py --env-id Taxi-v4
    python qlearning_frozenlake.py --checkpoint-frequency 5000      # Ctrl-C stops after the episode in progress,
    python qlearning_frozenlake.py --resume runs/<run folder>       # ... and this continues the same run exactly
    tensorboard --logdir runs
"""

import importlib.util
import json
import os
import re
import signal
import sys
import time
from operator import length_hint
from dataclasses import asdict, dataclass

import cv2
import gymnasium as gym
import numpy as np
import tyro
from gymnasium.envs.toy_text import CliffWalkingEnv, FrozenLakeEnv, TaxiEnv
from gymnasium.envs.toy_text.frozen_lake import generate_random_map
from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import hparams


@dataclass
class Args:
    exp_name: str = os.path.basename(__file__)[: -len(".py")]
    """the name of this experiment"""
    seed: int = 1
    """seed of the experiment: the numpy Generator (exploration, tie-breaking), the env reset and its action space"""
    capture_video: bool = False
    """whether to record greedy episodes of the learned policy as mp4 (in `runs/{run_name}/videos`)"""
    video_episodes: int = 3
    """how many greedy episodes to record with --capture-video"""
    save_model: bool = False
    """whether to save the learned Q-table as `runs/{run_name}/{exp_name}.npy`"""
    runs_dir: str = "runs"
    """folder that holds the run folders (TensorBoard logs, pictures, model, videos)"""

    # Environment
    env_id: str = "FrozenLake-v1"
    """the id of a gymnasium env with Discrete observation and action spaces (FrozenLake-v1, Taxi-v4, CliffWalking-v1)"""
    map_name: str = "4x4"
    """FrozenLake only: the built-in map, "4x4" or "8x8" (ignored when --map-size is set)"""
    map_size: int = 0
    """FrozenLake only: if > 0, play a random N×N map from `generate_random_map` instead of --map-name"""
    map_p: float = 0.8
    """FrozenLake only: probability that a cell of a random map is frozen (safe)"""
    map_seed: int = 0
    """FrozenLake only: seed of the random map (kept apart from --seed so a seed sweep plays one map)"""
    is_slippery: bool = True
    """FrozenLake only: slippery ice moves in the intended direction with probability 1/3, else sideways"""

    # Algorithm
    total_episodes: int = 20_000
    """number of training episodes (8x8 slippery needs more: the README uses 100,000)"""
    learning_rate: float = 1.0
    """the step size α0 in α = α0 / n(s, a)^ω; with --lr-decay-exponent 0 it is a constant step size"""
    lr_decay_exponent: float = 0.6
    """ω in α = α0 / n(s, a)^ω, n the visit count of (s, a); ω in (1/2, 1] converges on stochastic envs, 0 = constant α"""
    gamma: float = 0.95
    """the discount factor γ (the training objective and the exact scoring both use it)"""
    start_e: float = 1.0
    """the starting ε for exploration"""
    end_e: float = 0.1
    """the final ε for exploration (0.1, not 0.05: with 0.05 one of 10 seeds of 4x4 slippery stopped at V(π)/V* 0.91,
    as rarely visited states kept noisy values)"""
    exploration_fraction: float = 0.5
    """the fraction of `total_episodes` over which ε falls linearly from start-e to end-e"""

    # Logging and evaluation
    log_frequency: int = 100
    """log episode statistics (means over the last `log_frequency` episodes) every this many episodes"""
    eval_frequency: int = 500
    """score the greedy policy exactly (linear solve, logged as eval/value_ratio) every this many episodes"""

    # Checkpoints
    checkpoint_frequency: int = 0
    """episodes between checkpoints (Q-table, visit counts, RNGs, episode statistics) in the run folder; 0 = none"""
    resume: str | None = None
    """a run folder or checkpoint file to continue; flags left at their defaults take the checkpoint's values"""


def fail(message: str):
    """Stop with one line on stderr and exit status 2: bad input never gives a traceback."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def check_args(args: Args) -> None:
    """Reject impossible flag values before anything is written."""
    checks = [
        ("total_episodes", args.total_episodes > 0, "must be a positive number of episodes"),
        ("learning_rate", 0 < args.learning_rate <= 1, "must be in (0, 1]"),
        ("lr_decay_exponent", 0 <= args.lr_decay_exponent <= 1, "must be in [0, 1]"),
        ("gamma", 0 <= args.gamma < 1, "must be in [0, 1)"),
        ("start_e", 0 <= args.start_e <= 1, "must be in [0, 1]"),
        ("end_e", 0 <= args.end_e, "must be in [0, start-e]"),
        ("end_e", args.end_e <= args.start_e, f"larger than --start-e {args.start_e}"),
        ("exploration_fraction", 0 < args.exploration_fraction <= 1, "must be in (0, 1]"),
        ("log_frequency", args.log_frequency > 0, "must be positive"),
        ("eval_frequency", args.eval_frequency > 0, "must be positive"),
        ("checkpoint_frequency", args.checkpoint_frequency >= 0, "must be 0 (no checkpoints) or more"),
        ("video_episodes", args.video_episodes > 0, "must be positive"),
        ("map_name", args.map_name in ("4x4", "8x8"), 'must be "4x4" or "8x8"'),
        ("map_size", args.map_size == 0 or args.map_size >= 2, "must be 0 (use --map-name) or at least 2"),
        ("map_p", 0 < args.map_p <= 1, "must be in (0, 1]"),
    ]
    for flag, ok, reason in checks:
        if not ok:
            fail(f"--{flag.replace('_', '-')} {getattr(args, flag)}: {reason}")


# ---------------------------------------------------------------------------------------------------------------
# Environment
# ---------------------------------------------------------------------------------------------------------------
def make_env(args: Args, render_mode: str | None = None) -> gym.Env:
    """The env, or one error line naming --env-id if it is unknown, not tabular, or has no model P."""
    kwargs = {}
    if args.env_id.startswith("FrozenLake"):
        kwargs["is_slippery"] = args.is_slippery
        if args.map_size > 0:
            kwargs["desc"] = generate_random_map(size=args.map_size, p=args.map_p, seed=args.map_seed)
        else:
            kwargs["map_name"] = args.map_name
    try:
        env = gym.make(args.env_id, render_mode=render_mode, **kwargs)
    except gym.error.Error as e:
        fail(f"--env-id {args.env_id}: not a registered gymnasium env ({type(e).__name__})")
    for name, space in (("observation", env.observation_space), ("action", env.action_space)):
        if not isinstance(space, gym.spaces.Discrete):
            env.close()
            fail(f"--env-id {args.env_id}: {name} space {space} is not Discrete; tabular Q-learning needs both Discrete")
    if not hasattr(env.unwrapped, "P"):
        env.close()
        fail(f"--env-id {args.env_id}: has no transition model env.unwrapped.P for exact scoring")
    return env


def make_step(env: gym.Env):
    """`step(obs, action, steps_taken) -> (next_obs, reward, terminated, truncated)`, the same as `env.step(action)`
    but, for gymnasium's own toy-text envs, ~5x faster. Their step is one categorical draw from the model:
    `P[s][a][i]` for the first i whose cumulative probability exceeds `np_random.random()` (gymnasium's
    `categorical_sample`, index 0 if none does), and the TimeLimit wrapper truncates at `max_episode_steps`. Doing
    exactly that here, with the cumulative sums computed by np.cumsum as gymnasium does and the same one draw from
    the env's own RNG per step, gives the same transitions number for number without the wrappers' and the env's
    per-step overhead (Taxi's step also decodes states and builds an action mask nobody reads). Other envs, and Taxi
    with its fickle passenger (randomness outside P), go through env.step. The env's `s` is not updated: the
    training loop never reads it, and every episode starts with env.reset()."""
    u = env.unwrapped
    exact = isinstance(u, (FrozenLakeEnv, CliffWalkingEnv)) or (isinstance(u, TaxiEnv) and not u.fickle_passenger)
    if not exact:
        return lambda obs, action, steps_taken: env.step(action)[:4]
    outcomes = [  # outcomes[s][a] = [(cumulative probability, next_state, reward, terminated), ...]
        [[(float(c), int(next_state), reward, terminated)
          for c, (_, next_state, reward, terminated) in zip(np.cumsum([t[0] for t in u.P[s][a]]), u.P[s][a])]
         for a in range(env.action_space.n)]
        for s in range(env.observation_space.n)
    ]
    max_steps = env.spec.max_episode_steps if env.spec is not None and env.spec.max_episode_steps else float("inf")

    def step(obs: int, action: int, steps_taken: int):
        x = u.np_random.random()  # read at each call: a checkpoint restore replaces the env's RNG state, not the object
        for c, next_obs, reward, terminated in outcomes[obs][action]:
            if c > x:
                break
        else:  # rounding left the last cumulative sum below x: np.argmax of all-False picks index 0
            _, next_obs, reward, terminated = outcomes[obs][action][0]
        return next_obs, reward, terminated, steps_taken + 1 >= max_steps

    return step


# ---------------------------------------------------------------------------------------------------------------
# The Q-table and the ε-greedy policy
# ---------------------------------------------------------------------------------------------------------------
# During training the table is a list of rows, each a plain Python list of floats: a step touches two rows of
# 4-6 numbers, and Python scalar ops on them are ~10x faster than numpy's per-call overhead. It is copied into
# a numpy array (states × actions) for scoring, pictures and saving.
def greedy_action(q_values: list[float], u: float) -> int:
    """argmax_a Q(s, a), ties broken uniformly at random by u ~ U[0, 1): an untrained (all-zero) row must not
    always pick action 0, or the agent never explores what the tie hides."""
    best = max(q_values)
    ties = [a for a, q in enumerate(q_values) if q == best]
    return ties[int(u * len(ties))]


class UniformStream:
    """U[0, 1) numbers from `rng`, drawn in blocks: one numpy call per 65k numbers instead of one per step. Blocks
    drawn one after another give the same numbers as one long draw, so where a block ends changes nothing.
    `position()` is what a checkpoint needs, (the RNG state before the current block, numbers used from it);
    `UniformStream(rng, position=...)` continues exactly there. The loop takes numbers with `next(stream.numbers)`."""

    def __init__(self, rng: np.random.Generator, block: int = 65_536, position: tuple[dict, int] | None = None):
        self.rng, self.block = rng, block
        skip = 0
        if position is not None:
            rng.bit_generator.state, skip = position
        self._next_block(skip)
        self.numbers = self._draw()

    def _next_block(self, skip: int = 0):
        self.block_state = self.rng.bit_generator.state
        self.current = iter(self.rng.random(self.block).tolist())
        for _ in range(skip):
            next(self.current)

    def _draw(self):
        while True:
            yield from self.current
            self._next_block()

    def position(self) -> tuple[dict, int]:
        return self.block_state, self.block - length_hint(self.current)  # the list iterator knows what is left


def step_size(learning_rate: float, visit_count: int, omega: float) -> float:
    """α = α0 / n(s, a)^ω: Σα = ∞ and Σα² < ∞ for ω in (1/2, 1], so the noise of slippery ice averages out."""
    return learning_rate / visit_count**omega


def td_update(q_table: list[list[float]], obs: int, action: int, reward: float, next_obs: int,
              terminated: bool, alpha: float, gamma: float) -> None:
    """One Q-learning step on the table, in place. Only termination stops the bootstrap: a time-limit truncation
    leaves the next state's value intact, so the caller passes `terminated`, never `truncated`."""
    # TD target: y = r + γ · max_a' Q(s', a') · (1 − terminated)
    td_target = reward + gamma * max(q_table[next_obs]) * (1 - terminated)
    q_table[obs][action] += alpha * (td_target - q_table[obs][action])


def linear_schedule(start_e: float, end_e: float, duration: int, t: int) -> float:
    """ε falls linearly from start_e at t = 0 to end_e at t = duration, then stays there (CleanRL's schedule)."""
    slope = (end_e - start_e) / duration
    return max(slope * t + start_e, end_e)


# ---------------------------------------------------------------------------------------------------------------
# Exact evaluation from the env's model P
# ---------------------------------------------------------------------------------------------------------------
def tabular_model(P: dict, n_states: int, n_actions: int) -> tuple[np.ndarray, np.ndarray]:
    """From gymnasium's P[s][a] = [(prob, next_state, reward, terminated), ...] build
    T[s, a, s'] = Σ prob · (1 − terminated)  (a terminal transition leads nowhere: value 0 beyond it) and
    R[s, a]     = Σ prob · reward            (the expected immediate reward).
    Terminal states themselves (FrozenLake's holes and goal loop onto themselves with terminated=True) get
    all-zero rows: value 0, as the agent never acts there."""
    T = np.zeros((n_states, n_actions, n_states))
    R = np.zeros((n_states, n_actions))
    for s in range(n_states):
        for a in range(n_actions):
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
    P_pi, R_pi = T[states, policy], R[states, policy]
    return np.linalg.solve(np.eye(len(policy)) - gamma * P_pi, R_pi)


def absorption_value(T: np.ndarray, R: np.ndarray, policy: np.ndarray) -> np.ndarray:
    """The undiscounted (γ = 1) expected return of a deterministic policy when all reward comes on terminating
    transitions: on FrozenLake (reward 1 only at the goal) this is the probability of ever reaching the goal.
    States from which π can never terminate (e.g. walking into a wall forever) collect nothing: value 0. On
    the others I − P_π is invertible (the chain leaks to termination), so a linear solve gives the rest."""
    states = np.arange(len(policy))
    P_pi, R_pi = T[states, policy], R[states, policy]
    can_end = P_pi.sum(axis=1) < 1 - 1e-12  # terminates in one step with positive probability
    while True:  # grow backwards: states that reach a terminating state with positive probability
        grown = can_end | (P_pi[:, can_end].sum(axis=1) > 0)
        if (grown == can_end).all():
            break
        can_end = grown
    value = np.zeros(len(policy))
    idx = np.flatnonzero(can_end)
    value[idx] = np.linalg.solve(np.eye(len(idx)) - P_pi[np.ix_(idx, idx)], R_pi[idx])
    return value


def value_ratio(v_pi: float, v_star: float) -> float:
    """1 − (V* − V(π)) / |V*|: the regret as a fraction of the optimum. It is V(π)/V* whenever V* > 0 (FrozenLake,
    Taxi at γ = 0.95) and stays a "1 is optimal, less is worse" score where V* < 0 (CliffWalking)."""
    if v_star == 0:
        return 1.0 if v_pi >= 0 else float("-inf")
    return 1 - (v_star - v_pi) / abs(v_star)


@dataclass
class Evaluation:
    value_ratio: float
    """1 − (V* − V(π)) / |V*| from the start distribution (= V(π)/V* when V* > 0)"""
    v_pi: float
    """V(π) of the greedy policy from the start distribution"""
    v_star: float
    """V* from the start distribution"""
    goal_probability: float | None
    """FrozenLake only: probability that the greedy policy ever reaches the goal (None for other envs)"""
    optimal: bool
    """V(π) equals V* to within 1e-6 relative (the greedy policy is optimal from the start distribution)"""


def evaluate(q_table: np.ndarray, T: np.ndarray, R: np.ndarray, q_star: np.ndarray, start: np.ndarray,
             gamma: float, is_frozenlake: bool) -> Evaluation:
    """Score the greedy policy of `q_table` exactly. Evaluation breaks ties deterministically with np.argmax
    (the lowest action index), so the scored policy is one well-defined policy; an unvisited all-zero row
    therefore means action 0."""
    policy = q_table.argmax(axis=1)
    v_pi = float(start @ policy_value(T, R, policy, gamma))
    v_star = float(start @ q_star.max(axis=1))
    goal = float(start @ absorption_value(T, R, policy)) if is_frozenlake else None
    return Evaluation(value_ratio(v_pi, v_star), v_pi, v_star, goal, abs(v_star - v_pi) <= 1e-6 * max(1.0, abs(v_star)))


# ---------------------------------------------------------------------------------------------------------------
# Pictures (OpenCV, BGR) and video
# ---------------------------------------------------------------------------------------------------------------
# Grid moves (dx, dy) of each action, for the envs whose states are cells of a grid, row-major.
FROZENLAKE_MOVES = [(-1, 0), (0, 1), (1, 0), (0, -1)]  # 0 left, 1 down, 2 right, 3 up
CLIFFWALKING_MOVES = [(0, -1), (1, 0), (0, 1), (-1, 0)]  # 0 up, 1 right, 2 down, 3 left


def grid_layout(env: gym.Env):
    """(cell letters as an n_rows × n_cols list of str, moves) for grid envs; None for others (Taxi)."""
    u = env.unwrapped
    if hasattr(u, "desc") and u.desc.ndim == 2 and u.desc.size == u.observation_space.n:  # FrozenLake
        return [[c.decode() for c in row] for row in u.desc], FROZENLAKE_MOVES
    if hasattr(u, "_cliff") and hasattr(u, "shape"):  # CliffWalking: S start, G goal, C cliff, F floor
        cells = [["C" if u._cliff[r, c] else "F" for c in range(u.shape[1])] for r in range(u.shape[0])]
        cells[u.shape[0] - 1][0], cells[u.shape[0] - 1][u.shape[1] - 1] = "S", "G"
        return cells, CLIFFWALKING_MOVES
    return None


def _shade(x: float) -> tuple[int, int, int]:
    """A viridis colour (BGR) for x in [0, 1]."""
    return tuple(int(c) for c in cv2.applyColorMap(np.uint8([[round(255 * x)]]), cv2.COLORMAP_VIRIDIS)[0, 0])


def _normalise(v: np.ndarray) -> np.ndarray:
    span = v.max() - v.min()
    return (v - v.min()) / span if span > 0 else np.zeros_like(v)


def draw_policy_map(cells: list[list[str]], moves, q_table: np.ndarray, agent: int | None = None, cell: int = 72) -> np.ndarray:
    """The map, each cell shaded by its learned value V(s) = max_a Q(s, a) (viridis: dark low, yellow high),
    with an arrow for the greedy action (argmax, as scored) and its letter (S start, F frozen, H hole, G goal,
    C cliff). Terminal cells (H, G) have no action and are drawn flat. `agent`: a state to mark with a red dot."""
    n_rows, n_cols = len(cells), len(cells[0])
    values = _normalise(q_table.max(axis=1))
    policy = q_table.argmax(axis=1)
    img = np.zeros((n_rows * cell, n_cols * cell, 3), np.uint8)
    for r in range(n_rows):
        for c in range(n_cols):
            s, letter = r * n_cols + c, cells[r][c]
            x0, y0 = c * cell, r * cell
            colour = {"H": (60, 40, 30), "C": (40, 40, 120), "G": (0, 200, 255)}.get(letter, _shade(values[s]))
            cv2.rectangle(img, (x0, y0), (x0 + cell - 1, y0 + cell - 1), colour, -1)
            cv2.rectangle(img, (x0, y0), (x0 + cell - 1, y0 + cell - 1), (255, 255, 255), 1)
            ink = (0, 0, 0) if sum(colour) > 400 else (255, 255, 255)
            cv2.putText(img, letter, (x0 + 4, y0 + 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, ink, 1, cv2.LINE_AA)
            if letter in "HGC":  # terminal, or a cliff the agent never stands on
                continue
            dx, dy = moves[policy[s]]
            centre = (x0 + cell // 2, y0 + cell // 2)
            tip = (centre[0] + int(dx * cell * 0.32), centre[1] + int(dy * cell * 0.32))
            tail = (centre[0] - int(dx * cell * 0.22), centre[1] - int(dy * cell * 0.22))
            cv2.arrowedLine(img, tail, tip, ink, 2, cv2.LINE_AA, tipLength=0.35)
    if agent is not None:
        centre = ((agent % n_cols) * cell + cell // 2, (agent // n_cols) * cell + cell // 2)
        cv2.circle(img, centre, cell // 5, (0, 0, 255), -1, cv2.LINE_AA)
    return img


def draw_q_heatmap(q_table: np.ndarray, action_names: list[str]) -> np.ndarray:
    """Q(s, a) as a heatmap: one row per state, one column per action, viridis over the table's range, the greedy
    action (argmax) outlined in red. Values are written in the cells when the rows are tall enough."""
    n_states, n_actions = q_table.shape
    h, w, header, label = max(2, min(22, 1200 // n_states)), 64, 24, 40
    img = np.full((header + n_states * h, label + n_actions * w, 3), 255, np.uint8)
    shades = cv2.applyColorMap(np.uint8(np.round(255 * _normalise(q_table))), cv2.COLORMAP_VIRIDIS)
    greedy = q_table.argmax(axis=1)
    for a, name in enumerate(action_names):
        cv2.putText(img, name, (label + a * w + 4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    for s in range(n_states):
        y0 = header + s * h
        if h >= 12:
            cv2.putText(img, str(s), (2, y0 + h - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 1, cv2.LINE_AA)
        for a in range(n_actions):
            x0 = label + a * w
            colour = tuple(int(c) for c in shades[s, a])
            cv2.rectangle(img, (x0, y0), (x0 + w - 1, y0 + h - 1), colour, -1)
            if h >= 14:
                ink = (0, 0, 0) if sum(colour) > 400 else (255, 255, 255)
                cv2.putText(img, f"{q_table[s, a]:.3g}", (x0 + 4, y0 + h - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.35, ink, 1, cv2.LINE_AA)
        if h >= 6:
            x0 = label + greedy[s] * w
            cv2.rectangle(img, (x0, y0), (x0 + w - 1, y0 + h - 1), (0, 0, 255), 1)
    return img


def action_names(env: gym.Env) -> list[str]:
    n = env.action_space.n
    known = {"FrozenLake": ["left", "down", "right", "up"], "CliffWalking": ["up", "right", "down", "left"],
             "Taxi": ["south", "north", "east", "west", "pickup", "dropoff"]}
    for prefix, names in known.items():
        if env.spec is not None and env.spec.id.startswith(prefix) and len(names) == n:
            return names
    return [f"a{a}" for a in range(n)]


ANSI_COLOURS = {"34": (255, 80, 0), "35": (200, 0, 200), "42": (0, 200, 0), "43": (0, 220, 255)}  # BGR


def draw_ansi(text: str, rows: int = 10, cols: int = 24, cw: int = 14, ch: int = 24) -> np.ndarray:
    """A text render (render_mode="ansi", e.g. Taxi) as a picture of a fixed rows × cols character grid (a video
    needs one frame size; longer text is cut), with the ANSI colours gymnasium uses (blue/magenta letters:
    passenger and destination; yellow/green background: the taxi, empty/full)."""
    lines, current, style = [], [], ""
    parts = re.split(r"\x1b\[([0-9;]*)m", text.strip("\n"))
    for i, part in enumerate(parts):
        if i % 2 == 1:  # an escape code: "0" resets, else a colour
            style = "" if part == "0" else part.split(";")[0]
            continue
        for char in part:
            if char == "\n":
                lines.append(current)
                current = []
            else:
                current.append((char, style))
    lines.append(current)
    img = np.full((rows * ch + 8, cols * cw + 8, 3), 255, np.uint8)
    for r, line in enumerate(lines[:rows]):
        for c, (char, style) in enumerate(line[:cols]):
            x0, y0 = 4 + c * cw, 4 + r * ch
            if style in ("42", "43"):
                cv2.rectangle(img, (x0, y0), (x0 + cw - 1, y0 + ch - 1), ANSI_COLOURS[style], -1)
            ink = ANSI_COLOURS.get(style, (0, 0, 0)) if style in ("34", "35") else (0, 0, 0)
            cv2.putText(img, char, (x0 + 2, y0 + ch - 7), cv2.FONT_HERSHEY_SIMPLEX, 0.5, ink, 1, cv2.LINE_AA)
    return img


def record_video(args: Args, q_table: np.ndarray, path: str, max_steps: int = 200) -> int:
    """Play `video_episodes` greedy episodes (argmax, as scored) and write them to an mp4; returns the frame
    count. Episodes are capped at `max_steps` (CliffWalking has no time limit and a bad policy may loop).
    Frames come from render_mode="rgb_array" when pygame (gymnasium's toy-text renderer) is installed; it is not
    in requirements.txt, so otherwise OpenCV draws them: the policy map with the agent as a red dot for grid envs,
    the env's ANSI text render for others (Taxi)."""
    layout = grid_layout(make_env(args))
    if importlib.util.find_spec("pygame") is not None:
        env = make_env(args, render_mode="rgb_array")
        draw = lambda obs: cv2.cvtColor(env.render(), cv2.COLOR_RGB2BGR)  # noqa: E731
    elif layout is not None:
        env = make_env(args)
        draw = lambda obs: draw_policy_map(*layout, q_table, agent=obs)  # noqa: E731
    else:
        env = make_env(args, render_mode="ansi")
        draw = lambda obs: draw_ansi(env.render())  # noqa: E731
    writer, frames = None, 0
    for episode in range(args.video_episodes):
        obs, _ = env.reset(seed=args.seed + episode)
        for t in range(max_steps + 1):
            frame = draw(obs)
            if writer is None:
                writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), 4, (frame.shape[1], frame.shape[0]))
            writer.write(frame)
            frames += 1
            if t == max_steps:
                break
            obs, _, terminated, truncated, _ = env.step(int(q_table[obs].argmax()))
            if terminated or truncated:
                writer.write(draw(obs))
                frames += 1
                break
    writer.release()
    env.close()
    return frames


# ---------------------------------------------------------------------------------------------------------------
# Checkpoints: everything a run needs to continue, in one .npz written atomically
# ---------------------------------------------------------------------------------------------------------------
# Tabular Q-learning has no state between episodes beyond the table, the visit counts and the RNGs, so a checkpoint
# taken at an episode boundary lets a resumed run compute exactly what the uninterrupted run would have.
CHECKPOINT = "checkpoint.npz"
# What a resumed run may change. Note that --total-episodes also stretches the ε schedule (exploration_fraction of it).
CHANGEABLE_ON_RESUME = {"total_episodes", "checkpoint_frequency", "log_frequency", "eval_frequency", "capture_video",
                        "video_episodes", "save_model", "resume", "runs_dir"}


def save_checkpoint(state: dict, path: str):
    """Write to a temporary file, then rename: a kill during the write leaves the previous checkpoint intact."""
    with open(path + ".tmp", "wb") as f:
        np.savez(f, **state)
        f.flush()
        os.fsync(f.fileno())
    os.replace(path + ".tmp", path)


def load_checkpoint(path: str) -> tuple[dict, str]:
    """The checkpoint in a run folder or file, read whole; one error line if it is missing or unreadable."""
    path = os.path.join(path, CHECKPOINT) if os.path.isdir(path) else path
    if not os.path.isfile(path):
        fail(f"--resume {path}: no checkpoint there")
    try:
        with np.load(path, allow_pickle=False) as saved:
            checkpoint = {key: saved[key] for key in saved.files}
        for key in ("args", "rng"):
            checkpoint[key] = json.loads(str(checkpoint[key]))
        for key in ("episode", "global_step"):
            checkpoint[key] = int(checkpoint[key])
        if set(checkpoint["args"]) != set(asdict(Args())):
            raise KeyError("args")
        checkpoint["q_table"], checkpoint["visits"], checkpoint["returns"]  # noqa: B018 (all there?)
    except Exception as error:  # a truncated or foreign file: zipfile, numpy and json raise various types
        fail(f"--resume {path}: not a readable checkpoint of this script ({type(error).__name__})")
    return checkpoint, path


def resumed_args(saved: dict, given: Args) -> Args:
    """The checkpoint's flags, with those given on the command line (differing from the defaults) applied
    where a run may change them; any other difference is an error."""
    merged, defaults = dict(saved), asdict(Args())
    for name, value in asdict(given).items():
        if value == defaults[name] or value == saved[name]:
            continue
        if name not in CHANGEABLE_ON_RESUME:
            fail(f"--{name.replace('_', '-')} {value}: the checkpoint's run used {saved[name]}, and only "
                 f"{', '.join('--' + n.replace('_', '-') for n in sorted(CHANGEABLE_ON_RESUME))} may change on --resume")
        merged[name] = value
    return Args(**merged)


# ---------------------------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------------------------
@dataclass
class Result:
    q_table: np.ndarray
    """the learned Q-table, states × actions"""
    run_dir: str
    episodes: int
    """episodes completed (fewer than total_episodes after Ctrl-C)"""
    steps: int
    wall_time: float
    success_rate: float
    """fraction of successful episodes among the last `log_frequency` (FrozenLake: reached the goal; others: terminated)"""
    evaluation: Evaluation
    optimal_goal_probability: float | None
    """FrozenLake: the goal probability of the optimal greedy policy argmax Q*, for comparison"""


def main(args: Args) -> Result:
    check_args(args)
    checkpoint = None
    if args.resume:
        checkpoint, checkpoint_path = load_checkpoint(args.resume)
        args = resumed_args(checkpoint["args"], args)
        check_args(args)
        if args.total_episodes < checkpoint["episode"]:
            fail(f"--total-episodes {args.total_episodes}: the checkpoint is at episode {checkpoint['episode']} already")
    env = make_env(args)  # one error line for a bad --env-id, before anything is written
    n_states, n_actions = env.observation_space.n, env.action_space.n
    is_frozenlake = args.env_id.startswith("FrozenLake")
    step = make_step(env)

    # The exact model, the optimum and the start distribution, for scoring
    T, R = tabular_model(env.unwrapped.P, n_states, n_actions)
    q_star = value_iteration(T, R, args.gamma)
    start = np.asarray(env.unwrapped.initial_state_distrib, dtype=float)

    # Seeding: one numpy Generator for every random choice of the agent; the env's own randomness (slippery
    # ice, Taxi's start) from reset(seed=...). Same seed → same Q-table.
    rng = np.random.default_rng(args.seed)
    env.action_space.seed(args.seed)
    obs, _ = env.reset(seed=args.seed)

    q_table = [[0.0] * n_actions for _ in range(n_states)]
    visits = [[0] * n_actions for _ in range(n_states)]
    returns, lengths, successes = (np.zeros(args.total_episodes) for _ in range(3))
    first_episode = global_step = 0
    if checkpoint:
        first_episode, global_step = checkpoint["episode"], checkpoint["global_step"]
        q_table, visits = checkpoint["q_table"].tolist(), checkpoint["visits"].tolist()
        for saved, array in zip((checkpoint["returns"], checkpoint["lengths"], checkpoint["successes"]),
                                (returns, lengths, successes)):
            array[:first_episode] = saved
        state, used = checkpoint["rng"]["exploration"]
        uniforms = UniformStream(rng, position=(state, used))
        env.unwrapped.np_random.bit_generator.state = checkpoint["rng"]["env"]
        env.action_space.np_random.bit_generator.state = checkpoint["rng"]["action_space"]
        run_dir = os.path.dirname(checkpoint_path)
        print(f"resumed {run_dir} at episode {first_episode:,}")
    else:
        uniforms = UniformStream(rng)
        run_name = f"{args.env_id}__{args.exp_name}__{args.seed}__{int(time.time())}"
        run_dir = os.path.join(args.runs_dir, run_name)
    # a resumed writer hides the points the stopped run logged after its checkpoint (TensorBoard's purge)
    writer = SummaryWriter(run_dir, purge_step=first_episode + 1 if first_episode else None)
    if not checkpoint:
        writer.add_text(
            "hyperparameters",
            "|param|value|\n|-|-|\n%s" % ("\n".join([f"|{key}|{value}|" for key, value in vars(args).items()])),
        )
    alpha0, omega, gamma = args.learning_rate, args.lr_decay_exponent, args.gamma
    exploration_episodes = args.exploration_fraction * args.total_episodes
    uniform = uniforms.numbers
    scored = {}  # the last greedy policy scored and its Evaluation: a policy that did not change needs no new solve

    def score() -> Evaluation:
        policy = np.array(q_table).argmax(axis=1)
        if scored.get("policy") is None or not np.array_equal(policy, scored["policy"]):
            scored["policy"] = policy
            scored["evaluation"] = evaluate(np.array(q_table), T, R, q_star, start, gamma, is_frozenlake)
        return scored["evaluation"]

    def log_evaluation(episode: int) -> Evaluation:
        evaluation = score()
        writer.add_scalar("eval/value_ratio", evaluation.value_ratio, episode)
        if evaluation.goal_probability is not None:
            writer.add_scalar("eval/goal_probability", evaluation.goal_probability, episode)
        return evaluation

    checkpoint_episode = first_episode if checkpoint else None  # the episode of the last checkpoint on disk

    def write_checkpoint(episode: int):
        nonlocal checkpoint_episode
        writer.flush()  # every point up to the checkpoint is on disk; a resume drops those after it
        save_checkpoint({
            "args": json.dumps(asdict(args)), "episode": episode, "global_step": global_step,
            "q_table": np.array(q_table), "visits": np.array(visits, dtype=np.int64),
            "returns": returns[:episode], "lengths": lengths[:episode], "successes": successes[:episode],
            "rng": json.dumps({"exploration": uniforms.position(), "env": env.unwrapped.np_random.bit_generator.state,
                               "action_space": env.action_space.np_random.bit_generator.state}),
        }, os.path.join(run_dir, CHECKPOINT))
        checkpoint_episode = episode

    interrupted = False

    def stop_after_this_episode(signum, frame):  # so that what is saved is a consistent state
        nonlocal interrupted
        interrupted = True
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a second Ctrl-C stops at once

    previous_sigint_handler = signal.signal(signal.SIGINT, stop_after_this_episode)
    start_time = last_print = last_log_time = time.time()
    start_step = last_log_step = global_step
    episode = first_episode
    evaluation = log_evaluation(0) if not checkpoint else None
    try:
        for episode in range(first_episode, args.total_episodes):
            if interrupted:
                break
            epsilon = linear_schedule(args.start_e, args.end_e, exploration_episodes, episode)
            if episode > 0:
                obs, _ = env.reset()
            episode_return, episode_length = 0.0, 0
            while True:
                # ε-greedy: explore with probability ε, else the greedy action with random tie-breaking
                coin, u = next(uniform), next(uniform)  # always two numbers a step, so a checkpoint knows its place
                action = int(u * n_actions) if coin < epsilon else greedy_action(q_table[obs], u)
                next_obs, reward, terminated, truncated = step(obs, action, episode_length)

                # Q(s, a) += α · (r + γ · max_a' Q(s', a') · (1 − terminated) − Q(s, a)), α = α0 / n(s, a)^ω
                visits[obs][action] += 1
                alpha = step_size(alpha0, visits[obs][action], omega)
                td_update(q_table, obs, action, reward, next_obs, terminated, alpha, gamma)

                episode_return += reward
                episode_length += 1
                obs = next_obs
                if terminated or truncated:
                    break
            global_step += episode_length
            returns[episode], lengths[episode] = episode_return, episode_length
            successes[episode] = terminated and (reward > 0 or not is_frozenlake)
            done = episode + 1

            if done % args.log_frequency == 0:
                window = slice(max(0, done - args.log_frequency), done)
                now = time.time()
                writer.add_scalar("charts/episodic_return", returns[window].mean(), done)
                writer.add_scalar("charts/episodic_length", lengths[window].mean(), done)
                writer.add_scalar("charts/success_rate", successes[window].mean(), done)
                writer.add_scalar("charts/epsilon", epsilon, done)
                writer.add_scalar("charts/SPS", (global_step - last_log_step) / max(now - last_log_time, 1e-9), done)
                last_log_step, last_log_time = global_step, now
            if done % args.eval_frequency == 0:
                evaluation = log_evaluation(done)
            if args.checkpoint_frequency and done % args.checkpoint_frequency == 0:  # last: every point is logged
                write_checkpoint(done)
            if time.time() - last_print >= 2.0:
                last_print = now = time.time()
                rate = (done - first_episode) / (now - start_time)
                print(
                    f"episode {done}/{args.total_episodes} ({100 * done / args.total_episodes:.0f}%) "
                    f"{rate:,.0f} episodes/s {(global_step - start_step) / (now - start_time):,.0f} steps/s "
                    f"ETA {(args.total_episodes - done) / rate:.0f}s | "
                    f"success {successes[max(0, done - args.log_frequency):done].mean():.2f} "
                    f"ε {epsilon:.3f} V(π)/V* {evaluation.value_ratio if evaluation else float('nan'):.4f}",
                    flush=True,
                )
        else:
            episode = args.total_episodes
        if interrupted:
            print(f"\ninterrupted: the episode in progress at Ctrl-C was played to its end, so training stopped after "
                  f"episode {episode:,} and nothing learned is lost; finishing the run with it", flush=True)
        if args.checkpoint_frequency and checkpoint_episode != episode:
            write_checkpoint(episode)
        if args.checkpoint_frequency:
            print(f"checkpoint at episode {episode:,}: continue (or extend) the run with --resume {run_dir}")
    except KeyboardInterrupt:  # a second Ctrl-C: the episode in progress is cut short and not checkpointed
        last = f"; the last checkpoint is at episode {checkpoint_episode:,}" if checkpoint_episode is not None else ""
        print(f"\nstopped at once during episode {episode + 1:,}: it is lost{last}", flush=True)
    finally:
        signal.signal(signal.SIGINT, previous_sigint_handler)
    wall_time = time.time() - start_time
    env.close()

    # Final score, pictures, hyperparameters, model and video
    learned = np.array(q_table)
    if evaluation is None or episode % args.eval_frequency:  # else it was scored at the end of the loop
        # (a resumed run that played no episode only scores: its checkpoint's run logged this episode already)
        evaluation = log_evaluation(episode) if episode > first_episode or not checkpoint else score()
    optimal_goal = float(start @ absorption_value(T, R, q_star.argmax(axis=1))) if is_frozenlake else None
    success_rate = float(successes[max(0, episode - args.log_frequency):episode].mean()) if episode else 0.0

    pictures = {"q_table": draw_q_heatmap(learned, action_names(env))}
    layout = grid_layout(env)
    if layout is not None:  # Taxi's states are not cells of one grid: no map picture
        pictures["greedy_policy"] = draw_policy_map(*layout, learned)
    for name, img in pictures.items():
        cv2.imwrite(os.path.join(run_dir, f"{name}.png"), img)
        writer.add_image(f"images/{name}", cv2.cvtColor(img, cv2.COLOR_BGR2RGB), episode, dataformats="HWC")

    hparam_dict = {k: (v if isinstance(v, (int, float, str, bool)) else str(v)) for k, v in asdict(args).items()}
    for summary in hparams(hparam_dict, {"eval/value_ratio": evaluation.value_ratio}):
        writer.file_writer.add_summary(summary)  # into this run's folder (add_hparams would make a sub-run)

    if args.save_model:
        model_path = os.path.join(run_dir, f"{args.exp_name}.npy")
        np.save(model_path, learned)
        print(f"model saved to {model_path}")
    if args.capture_video:
        os.makedirs(os.path.join(run_dir, "videos"), exist_ok=True)
        record_video(args, learned, os.path.join(run_dir, "videos", "greedy.mp4"))
    writer.close()

    rows = [
        ("env", args.env_id + (f" ({args.map_size}x{args.map_size} random)" if is_frozenlake and args.map_size else
                               f" ({args.map_name}{', slippery' if args.is_slippery else ''})" if is_frozenlake else "")),
        ("episodes", f"{episode:,} / {args.total_episodes:,}"),
        ("env steps", f"{global_step:,}"),
        ("wall time", f"{wall_time:.1f} s"),
        (f"success rate (last {args.log_frequency} episodes)", f"{success_rate:.3f}"),
        ("V(π) / V* (exact, from start)", f"{evaluation.value_ratio:.6f}"),
        ("V(π)  vs  V*", f"{evaluation.v_pi:.6f}  vs  {evaluation.v_star:.6f}"),
    ]
    if is_frozenlake:
        rows.append(("P(reach goal): π  vs  argmax Q*", f"{evaluation.goal_probability:.4f}  vs  {optimal_goal:.4f}"))
    rows += [("optimal policy reached?", "yes" if evaluation.optimal else "no"), ("run folder", run_dir)]
    width = max(len(k) for k, _ in rows)
    print("\n" + "\n".join(f"  {k:<{width}}  {v}" for k, v in rows))
    return Result(learned, run_dir, episode, global_step, wall_time, success_rate, evaluation, optimal_goal)


if __name__ == "__main__":
    main(tyro.cli(Args))
