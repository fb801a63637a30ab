"""Shared test helpers: import a top-level script as a module, run a script as a user does, read its one error
line, mount a small disk; and the DQN scripts' test tools (a Catch run, hand-made Q-networks and minibatches)."""

import contextlib
import importlib.util
import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from tensorboard.plugins.hparams import metadata

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


def script_command(script: str, *argv) -> list[str]:
    """The command line that runs `ROOT/{script}` (a file name: "dqn_atari.py") with this Python."""
    return [sys.executable, str(ROOT / script), *argv]


def run_script(script: str, cwd, *argv, env=None) -> subprocess.CompletedProcess:
    """Run a script as a user would, in `cwd`, and capture what it prints."""
    return subprocess.run(script_command(script, *argv), cwd=cwd, capture_output=True, text=True, env=env)


def one_error_line(stderr: str) -> str:
    """The single line a failed run printed on stderr: `error: ...`, and nothing else (no traceback)."""
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    return lines[0]


@contextlib.contextmanager
def mounted_tmpfs(path: Path, options: str):
    """A tmpfs mounted at `path` with mount's `options` (root only, else the test is skipped), always unmounted
    (lazily: a file closed a moment ago may still count as in use)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    path.mkdir()
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True, text=True)
    if mount.returncode:
        pytest.skip(f"mount -t tmpfs failed: {mount.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "--lazy", str(path)], check=True)


# ---- The DQN scripts ---------------------------------------------------------------------------------------------
def step_and_store(envs, rb, obs, actions):
    """One step of a DQN script's training loop without the learning: step the vector env (same-step autoreset)
    and store the transitions in the replay memory `rb` as train() does. Returns the next observations and the
    stored transitions (s, a, r, s', terminated), one row per env."""
    next_obs, rewards, terminations, truncations, infos = envs.step(actions)
    real_next_obs = next_obs.copy()
    for env in np.flatnonzero(terminations | truncations):
        real_next_obs[env] = infos["final_obs"][env]
    rb.add(obs, real_next_obs, actions, rewards, terminations, terminations | truncations)
    return next_obs, (obs, actions, rewards, real_next_obs, terminations)


def catch_args(dqn, total_timesteps, **overrides):
    """Catch settings that learn it: the Huber loss (the paper's clipped TD error) with Adam at 1e-3, one update every
    2 steps, a target copy every 250 steps, the whole run in the replay memory."""
    flags = dict(env_id="Catch", total_timesteps=total_timesteps, learning_starts=500, train_frequency=2,
                 learning_rate=1e-3, loss="huber", target_network_frequency=250, buffer_size=total_timesteps,
                 exploration_fraction=0.25)
    return dqn.Args(**flags | overrides)


def catch_run(dqn, folder, total_timesteps=400, **overrides):
    """A short Catch run in `folder` (learning from step 100, one update every 4 steps, a target copy every 50 steps,
    2 evaluation games); returns the online network. The test patches the script's make_env (`pixel_games`)."""
    args = catch_args(dqn, total_timesteps, **({"learning_starts": 100, "train_frequency": 4,
                                                  "target_network_frequency": 50, "eval_episodes": 2,
                                                  "runs_dir": str(folder)} | overrides))
    return dqn.main(args)


def catch_score_after_learning(dqn, runs_dir, **overrides) -> float:
    """Learn Catch for 4,000 agent steps with catch_args (1,750 updates), then play 100 greedy games: their mean score
    (uniformly random play: below 0). The test patches the script's make_env."""
    q_network = dqn.main(catch_args(dqn, 4000, runs_dir=str(runs_dir), **overrides))
    return np.mean(dqn.evaluate(q_network, "Catch", seed=123, eval_episodes=100, epsilon=0.0,
                                device=torch.device("cpu")).returns)


def run_dir_of(runs_dir: Path) -> Path:
    """The one run folder in `runs_dir`."""
    (run_dir,) = runs_dir.iterdir()
    return run_dir


class FixedQ(torch.nn.Module):
    """A 'network' whose Q-values are rows of a table, chosen by the first pixel of the observation."""

    def __init__(self, table):
        super().__init__()
        self.table = torch.tensor(table, dtype=torch.float32)

    def forward(self, x):
        return self.table[x[:, 0, 0, 0].long()]


def batch_of(dqn, obs_rows, actions, next_rows, rewards, terminations):
    """A ReplayBatch whose stacks are filled with one pixel value each: the row of a FixedQ table."""
    pixels = lambda rows: torch.tensor(rows, dtype=torch.uint8)[:, None, None, None].expand(-1, 4, 84, 84)
    return dqn.ReplayBatch(pixels(obs_rows), torch.tensor(actions)[:, None], pixels(next_rows),
                           torch.tensor(rewards), torch.tensor(terminations))


def wandb_offline_records(wandb_dir) -> list:
    """The records of the one offline W&B run under `wandb_dir` (`wandb/offline-run-*/run-*.wandb`), as protobuf
    messages. The file is a LevelDB-style log after a 7-byte header: 32 KiB blocks of chunks, each with a crc32,
    a length and a type (1 a whole record, 2 its first part, 3 a middle one, 4 its last)."""
    from wandb.proto.wandb_internal_pb2 import Record

    (path,) = Path(wandb_dir).glob("wandb/offline-run-*/run-*.wandb")
    data, records, pos, pending = path.read_bytes(), [], 7, b""
    while pos + 7 <= len(data):
        if 32768 - pos % 32768 < 7:  # a block's tail too short for a chunk header is padding
            pos += 32768 - pos % 32768
            continue
        length, kind = struct.unpack("<HB", data[pos + 4:pos + 7])
        pending += data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):
            records.append(Record.FromString(pending))
            pending = b""
    return records


def wandb_config_and_history(wandb_dir) -> tuple[dict, list[dict]]:
    """An offline W&B run's config ({flag: its value}) and its history (a {name: value} dict per row)."""
    config, history = {}, []
    for record in wandb_offline_records(wandb_dir):
        kind = record.WhichOneof("record_type")
        if kind in ("run", "config"):
            updates = record.run.config.update if kind == "run" else record.config.update
            config |= {item.key: json.loads(item.value_json) for item in updates}
        elif kind == "history":
            history.append({item.key or "/".join(item.nested_key): json.loads(item.value_json)
                            for item in record.history.item})
    return config, history


def hparams_layout(events) -> tuple[list, list, list]:
    """A run's HPARAMS layout (its experiment record): the columns, those ticked (marked `differs`), the metrics."""
    experiment = metadata.parse_experiment_plugin_data(events.PluginTagToContent("hparams")["_hparams_/experiment"])
    columns, metrics = experiment.hparam_infos, experiment.metric_infos
    return [c.name for c in columns], [c.name for c in columns if c.differs], [m.name.tag for m in metrics]
