"""Shared test helpers: import a top-level script as a module so tests can reach its functions."""

import importlib.util
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def load_script(name: str):
    """Import `ROOT/{name}.py` as a module (cached), without running its `__main__` block."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def step_and_store(envs, rb, obs, actions):
    """One step of a DQN script's training loop without the learning: step the vector env (same-step autoreset)
    and store the transitions in the replay memory `rb` as train() does. Returns the next observations."""
    next_obs, rewards, terminations, truncations, infos = envs.step(actions)
    real_next_obs = next_obs.copy()
    for env in np.flatnonzero(terminations | truncations):
        real_next_obs[env] = infos["final_obs"][env]
    rb.add(obs, real_next_obs, actions, rewards, terminations)
    rb.start_episodes(where=terminations | truncations)
    return next_obs
