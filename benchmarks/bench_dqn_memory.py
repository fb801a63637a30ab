"""Memory of a DQN run: fill a DQN script's replay memory with real Atari transitions, then report the bytes per
transition (read from the arrays) and the process's peak RSS, extrapolated to the default 1M-transition memory.
Exits 1 when a goal is missed (≤ 7,100 B/transition, a default run's peak RSS ≤ 8.5 GB).

    python benchmarks/bench_dqn_memory.py --transitions 100000
"""

import argparse
import resource
import sys
from pathlib import Path

import gymnasium as gym
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from helpers import load_script, step_and_store  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--script", default="dqn_atari")
    parser.add_argument("--env-id", default="BreakoutNoFrameskip-v4")
    parser.add_argument("--transitions", type=int, default=100_000)
    options = parser.parse_args()
    m = load_script(options.script)
    default_size = m.Args().buffer_size

    # everything a run holds besides the replay: networks, optimizer state after a few updates, the env
    envs = gym.vector.SyncVectorEnv([m.make_env(options.env_id, 0, 0)],
                                    autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    rb = m.ReplayBuffer(options.transitions, 1, torch.device("cpu"), seed=0)
    q_network, target_network = m.QNetwork(envs.single_action_space.n), m.QNetwork(envs.single_action_space.n)
    optimizer = torch.optim.Adam(q_network.parameters(), lr=1e-4)
    obs, _ = envs.reset(seed=0)  # (a new replay memory begins an episode in every env)
    for step in range(options.transitions):
        obs, _ = step_and_store(envs, rb, obs, envs.action_space.sample())
        if step % 20_000 == 1_000:
            loss, _ = m.td_loss(q_network, target_network, rb.sample(32), 0.99, "mse")
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    replay_bytes = sum(getattr(rb, name).nbytes for name in rb.ARRAYS)
    per_transition = replay_bytes / options.transitions
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB
    extrapolated = peak_rss - replay_bytes + per_transition * default_size

    goals = [("bytes per transition", per_transition, 7_100), ("peak RSS at 1M, GB", extrapolated / 1e9, 8.5)]
    print(f"{options.script}: {options.transitions:,} real {options.env_id} transitions in the replay")
    print(f"  replay arrays           {replay_bytes / 2**20:10.1f} MiB")
    print(f"  peak RSS (measured)     {peak_rss / 2**20:10.1f} MiB")
    failed = False
    for label, value, bound in goals:
        ok = value <= bound
        failed |= not ok
        print(f"  {label:<24}{value:10.2f}   goal <= {bound}: {'ok' if ok else 'FAIL'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
