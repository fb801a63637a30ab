"""Small pixel environments that stand in for Atari in the DQN scripts' tests."""

import gymnasium as gym
import numpy as np


class Catch(gym.Env):
    """84×84 Catch. A ball falls one row per step from the top of a 10×10 grid; the agent moves a paddle on the
    bottom row left, not at all, or right. When the ball reaches the bottom row the episode ends: +1 if the
    paddle is under it, −1 otherwise. Uniformly random play scores below zero."""

    ROWS, COLS, CELL = 10, 10, 8

    def __init__(self):
        self.observation_space = gym.spaces.Box(0, 255, (84, 84), np.uint8)
        self.action_space = gym.spaces.Discrete(3)

    def _obs(self):
        frame = np.zeros((84, 84), np.uint8)
        c = self.CELL
        frame[self.ball_row * c:(self.ball_row + 1) * c, self.ball_col * c:(self.ball_col + 1) * c] = 255
        frame[(self.ROWS - 1) * c:self.ROWS * c, self.paddle * c:(self.paddle + 1) * c] = 128
        return frame

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.ball_row, self.ball_col = 0, int(self.np_random.integers(self.COLS))
        self.paddle = self.COLS // 2
        return self._obs(), {}

    def step(self, action):
        self.paddle = int(np.clip(self.paddle + action - 1, 0, self.COLS - 1))
        self.ball_row += 1
        terminated = self.ball_row == self.ROWS - 1
        reward = (1.0 if self.paddle == self.ball_col else -1.0) if terminated else 0.0
        return self._obs(), reward, terminated, False, {}

    def render(self):
        """The screen as RGB, for videos."""
        return np.repeat(self._obs()[:, :, None], 3, axis=2)

    def get_action_meanings(self):
        """The actions' names, as an ALE game gives them (the evaluation video labels the action taken)."""
        return ["LEFT", "NOOP", "RIGHT"]


class RandomFrames(gym.Env):
    """Random 84×84 frames, episodes of random length (1–12 steps) ending in termination or truncation.
    Each reward is a number never used before, so a sampled transition can be identified by its reward."""

    def __init__(self, first_reward: int):
        self.observation_space = gym.spaces.Box(0, 255, (84, 84), np.uint8)
        self.action_space = gym.spaces.Discrete(4)
        self.next_reward = first_reward

    def _frame(self):
        return self.np_random.integers(0, 256, (84, 84), dtype=np.uint8)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.steps_left = int(self.np_random.integers(1, 13))
        return self._frame(), {}

    def step(self, action):
        self.steps_left -= 1
        self.next_reward += 1
        ended = self.steps_left == 0
        terminated = ended and bool(self.np_random.random() < 0.5)
        return self._frame(), float(self.next_reward), terminated, ended and not terminated, {}


class LosingLives(gym.Env):
    """A game of 3 lives, 2 steps each, that reports them as the ALE does (`info["lives"]`): every step scores 2
    points, the second step of each life loses it, the last one ends the game. The first pixel of an observation
    is the step count."""

    def __init__(self):
        self.observation_space = gym.spaces.Box(0, 255, (84, 84), np.uint8)
        self.action_space = gym.spaces.Discrete(2)

    def _obs(self):
        return np.full((84, 84), self.steps, np.uint8)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.steps = 0
        return self._obs(), {"lives": 3}

    def step(self, action):
        self.steps += 1
        return self._obs(), 2.0, self.steps == 6, False, {"lives": 3 - self.steps // 2}


GAMES = {"Catch": Catch, "LosingLives": LosingLives}


def make_pixel_env(env_id, seed, idx, training=True, render_mode=None):
    """Drop-in for a DQN script's `make_env`: the game `env_id` names (Catch, LosingLives), with episode statistics
    and a stack of 4 frames."""

    def thunk():
        env = gym.wrappers.FrameStackObservation(gym.wrappers.RecordEpisodeStatistics(GAMES[env_id]()), 4)
        env.action_space.seed(seed + idx)
        return env

    return thunk
