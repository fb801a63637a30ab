"""Shared test helpers: import a top-level script as a module so tests can reach its functions."""

import importlib.util
import struct
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


def wandb_config_and_scalars(wandb_dir) -> tuple[dict, set]:
    """An offline W&B run's config ({flag: JSON text}) and the names of the scalars in its history."""
    config, scalars = {}, set()
    for record in wandb_offline_records(wandb_dir):
        kind = record.WhichOneof("record_type")
        if kind in ("run", "config"):
            updates = record.run.config.update if kind == "run" else record.config.update
            config |= {item.key: item.value_json for item in updates}
        elif kind == "history":
            scalars |= {item.key or "/".join(item.nested_key) for item in record.history.item}
    return config, scalars
