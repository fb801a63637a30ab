"""Throughput of the DQN scripts on this machine.

Measures, for each script: the time of one gradient update (sampling a batch of 32 included), of one greedy
action, and of one env step through the full Atari pipeline; the compute bound they imply,
1 / (t_update / train_frequency + t_act + t_env); and the learning-phase SPS of the script's real training loop
over a few thousand steps. Prints a table and exits 1 when SPS / bound is below --min-ratio.

    python benchmarks/bench_dqn_throughput.py                       # both scripts, 1 env
    python benchmarks/bench_dqn_throughput.py --num-envs 8 --scripts dqn_atari
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from helpers import load_script  # noqa: E402


def per_call(fn, repeats: int, warmup: int = 20) -> float:
    """Seconds per call of fn(), after a few warm-up calls."""
    for _ in range(warmup):
        fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def component_times(m, env_id: str, num_envs: int, device) -> dict:
    """t_env (per agent step), t_act (per agent step) and t_update (per update) with the script's own pieces."""
    import gymnasium as gym

    envs = gym.vector.SyncVectorEnv([m.make_env(env_id, 0, i) for i in range(num_envs)],
                                    autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    rb = m.ReplayBuffer(10_000, num_envs, device, seed=0)
    obs, _ = envs.reset(seed=0)
    rb.start_episodes(obs)
    state = {"obs": obs}

    def env_step():
        next_obs, rewards, terminations, truncations, infos = envs.step(envs.action_space.sample())
        rb.add(next_obs, envs.action_space.sample(), rewards, terminations, truncations, infos)
        state["obs"] = next_obs

    t_env = per_call(env_step, 2000 // num_envs) / num_envs  # stepping and storing, per agent step
    q_network = m.QNetwork(envs.single_action_space.n).to(device)
    target_network = m.QNetwork(envs.single_action_space.n).to(device)
    optimizer = torch.optim.Adam(q_network.parameters(), lr=1e-4)

    def act():
        with torch.no_grad():
            q_network(torch.from_numpy(state["obs"]).to(device)).argmax(dim=1).cpu().numpy()

    def update():
        loss, _ = m.td_loss(q_network, target_network, rb.sample(32), 0.99, "mse")
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        loss.item()  # the training loop checks the loss for finiteness every update

    times = {"t_env": t_env, "t_act": per_call(act, 1000) / num_envs, "t_update": per_call(update, 300)}
    envs.close()
    return times


def learning_phase_sps(m, env_id: str, num_envs: int, steps: int) -> float:
    """SPS of the script's main() after learning starts, from the wall times of its charts/SPS points."""
    learning_starts = 2000
    args = m.Args(env_id=env_id, num_envs=num_envs, total_timesteps=learning_starts + steps,
                  learning_starts=learning_starts, buffer_size=learning_starts + steps, eval_episodes=1)
    with tempfile.TemporaryDirectory() as runs_dir:
        m.main(args, runs_dir=runs_dir)
        (run_dir,) = Path(runs_dir).iterdir()
        events = EventAccumulator(str(run_dir))
        events.Reload()
        points = [p for p in events.Scalars("charts/SPS") if p.step > learning_starts]
    first, last = points[0], points[-1]  # the first window may include steps before learning: start after it
    return (last.step - first.step) / (last.wall_time - first.wall_time)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scripts", nargs="+", default=["dqn_atari", "double_dqn_atari"])
    parser.add_argument("--env-id", default="BreakoutNoFrameskip-v4")
    parser.add_argument("--num-envs", type=int, default=1)
    parser.add_argument("--steps", type=int, default=5000, help="learning-phase steps of the real loop")
    parser.add_argument("--min-ratio", type=float, default=0.9)
    options = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    name = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {name}; env {options.env_id}; {options.num_envs} env(s); train_frequency 4; batch 32")
    print(f"{'script':<18}{'t_update ms':>12}{'t_act ms':>10}{'t_env ms':>10}{'bound SPS':>11}{'loop SPS':>10}"
          f"{'ratio':>7}")
    failed = False
    for script in options.scripts:
        m = load_script(script)
        times = component_times(m, options.env_id, options.num_envs, device)
        bound = 1 / (times["t_update"] / 4 + times["t_act"] + times["t_env"])
        sps = learning_phase_sps(m, options.env_id, options.num_envs, options.steps)
        ratio = sps / bound
        failed |= ratio < options.min_ratio
        print(f"{script:<18}{1e3 * times['t_update']:>12.2f}{1e3 * times['t_act']:>10.3f}"
              f"{1e3 * times['t_env']:>10.3f}{bound:>11.0f}{sps:>10.0f}{ratio:>7.2f}")
    print("FAIL" if failed else "ok", f"(goal: SPS / bound >= {options.min_ratio})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
