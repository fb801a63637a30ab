"""Throughput of the DQN scripts on this machine.

Measures, for each script: the time of one gradient update (sampling a batch of 32 included), of one greedy
action, and of one env step through the full Atari pipeline; the compute bound they imply,
1 / (t_update / train_frequency + t_act + t_env); and the learning-phase SPS of the script's real training loop
over a few thousand steps. Prints a table and exits 1 when SPS / bound is below --min-ratio or an update takes
longer than --max-update-ms. The update is timed again after the loop: when the two timings differ by more than 10%,
the machine's speed changed during the run (a shared host, a clock change), and a warning says so.

The distance to the physical limit: the update's FLOP, counted by torch's FlopCounterMode from the operations that
really run (convolutions and matrix products, forward and backward), its achieved FLOP/s, this machine's peak
fp32 matrix-multiply speed measured in the same run (the faster of MKL's sgemm and oneDNN's 1×1 convolution), the
ratio of the two, the floor (the update's FLOP at the peak), and the share of the peak that an update meeting
--max-update-ms would need.

Two more figures, for the record: the update time when the replay holds --large-memory transitions (sampling
gets slower as the memory outgrows the caches), and the env time of ale-py's C++ `AtariVectorEnv` in place of
the scripts' gymnasium `SyncVectorEnv`, with the bound it would give.

    python benchmarks/bench_dqn_throughput.py                       # both scripts, 1 env
    python benchmarks/bench_dqn_throughput.py --num-envs 8 --scripts dqn_atari
    python benchmarks/bench_dqn_throughput.py --compile             # the scripts' --compile
"""

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from helpers import load_script, step_and_store  # noqa: E402


def per_call(fn, repeats: int, warmup: int = 20) -> float:
    """Seconds per call of fn(), after a few warm-up calls."""
    for _ in range(warmup):
        fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def env_time(envs, rb, num_envs: int) -> float:
    """Seconds per agent step of stepping `envs` with random actions and storing the transitions in `rb`."""
    obs, _ = envs.reset(seed=0)
    rb.new_episode[:] = True  # every env begins an episode
    steps = 2000 // num_envs
    start = time.perf_counter()
    for _ in range(steps):
        obs, _ = step_and_store(envs, rb, obs, envs.action_space.sample())
    t_env = (time.perf_counter() - start) / steps / num_envs
    envs.close()
    return t_env


def ale_vector_env(env_id: str, num_envs: int):
    """ale-py's threaded C++ vector env with the closest settings to the scripts' pipeline (its semantics
    differ: see the README), e.g. BreakoutNoFrameskip-v4 -> the ROM "breakout"."""
    from ale_py.vector_env import AtariVectorEnv

    game = re.sub(r"(?<!^)(?=[A-Z])", "_", env_id.removesuffix("NoFrameskip-v4")).lower()
    return AtariVectorEnv(game, num_envs, episodic_life=True, autoreset_mode="SameStep")


def component_times(m, env_id: str, num_envs: int, device, large_memory: int, compile: bool) -> tuple:
    """t_env (per agent step), t_act (per agent step) and t_update (per update) with the script's own pieces,
    set up as its main() sets them up; t_env_ale with AtariVectorEnv in place of the script's envs;
    t_update_large with --large-memory transitions in the replay. Also returns the timed update, to time it again."""
    import gymnasium as gym

    envs = gym.vector.SyncVectorEnv([m.make_env(env_id, 0, i) for i in range(num_envs)],
                                    autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    n_actions = envs.single_action_space.n
    rb = m.ReplayBuffer(10_000, num_envs, device, seed=0, storage=m.replay_storage(10_000, device))
    times = {"t_env": env_time(envs, rb, num_envs)}
    times["t_env_ale"] = env_time(ale_vector_env(env_id, num_envs), rb, num_envs)
    q_network = m.QNetwork(n_actions).to(device)
    target_network = m.QNetwork(n_actions).to(device)
    optimizer = torch.optim.Adam(q_network.parameters(), lr=1e-4, fused=True)
    compiled = lambda f: torch.compile(f, mode="reduce-overhead" if device.type == "cuda" else None)  # noqa: E731
    policy, loss_of = (compiled(q_network), compiled(m.td_loss)) if compile else (q_network, m.td_loss)
    obs = rb.sample(num_envs).next_observations.cpu()  # a batch of real stacks

    def act():
        with torch.no_grad():
            policy(obs.to(device)).argmax(dim=1).cpu().numpy()

    def update(replay):
        loss, _ = loss_of(q_network, target_network, replay.sample(32), 0.99, "mse")
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        loss.item()  # the training loop checks the loss for finiteness every update

    times |= {"t_act": per_call(act, 1000) / num_envs, "t_update": per_call(lambda: update(rb), 300)}
    with FlopCounterMode(display=False) as flops:  # counted from the shapes of the operations that really run
        update(rb)
    times["update_flop"] = flops.get_total_flops()
    # a large memory: the frames of the real transitions, repeated (sampling cost depends on size, not content)
    large = m.ReplayBuffer(large_memory, num_envs, device, seed=0, storage=m.replay_storage(large_memory, device))
    stacks, zeros = obs.numpy(), np.zeros(num_envs, np.int64)
    for _ in range(large_memory // num_envs):
        large.add(stacks, stacks, zeros, zeros.astype(np.float32), zeros.astype(bool), zeros.astype(bool))
    times["t_update_large"] = per_call(lambda: update(large), 300)
    return times, lambda: update(rb)


def matrix_flops_per_second(device, n: int = 2048, blocks: int = 5) -> dict:
    """This machine's fp32 matrix-multiply speed, the physical limit the update is measured against: an n×n by n×n
    product (2·n³ FLOP) through `torch.mm` (the BLAS that runs the linear layers: MKL's sgemm on x86) and as a 1×1
    convolution (oneDNN, which runs the convolutions; either may be the faster on a given CPU). The best of `blocks`
    timings of each, since a busy or throttled moment can only slow a block down."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    # the same product as a convolution: n pixels (n/256 images of 16×16) of n channels, and n filters of 1×1
    images = a.reshape(n // 256, 16, 16, n).permute(0, 3, 1, 2)  # channels_last: a's rows are the pixels
    filters = b.t()[:, :, None, None].contiguous(memory_format=torch.channels_last)
    products = {"sgemm": lambda: torch.mm(a, b).sum().item(),
                "1x1 conv": lambda: torch.conv2d(images, filters).sum().item()}
    return {name: 2 * n**3 / min(per_call(product, 10, warmup=3) for _ in range(blocks))
            for name, product in products.items()}


def learning_phase_sps(m, env_id: str, num_envs: int, steps: int, compile: bool) -> float:
    """SPS of the script's main() after learning starts, from the wall times of its charts/SPS points."""
    learning_starts = 2000
    with tempfile.TemporaryDirectory() as runs_dir:
        m.main(m.Args(env_id=env_id, num_envs=num_envs, total_timesteps=learning_starts + steps,
                      learning_starts=learning_starts, buffer_size=learning_starts + steps, eval_episodes=1,
                      compile=compile, runs_dir=runs_dir))
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
    parser.add_argument("--min-ratio", type=float, default=0.9, help="goal: loop SPS / compute bound")
    parser.add_argument("--max-update-ms", type=float, default=17.0, help="goal: one update, sampling included")
    parser.add_argument("--large-memory", type=int, default=200_000, help="replay size of the t_update_large figure")
    parser.add_argument("--compile", action="store_true", help="time the scripts with their --compile")
    options = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    name = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {name}; env {options.env_id}; {options.num_envs} env(s); train_frequency 4; batch 32"
          f"{'; --compile' if options.compile else ''}")
    print(f"{'script':<18}{'t_update ms':>12}{'t_act ms':>10}{'t_env ms':>10}{'bound SPS':>11}{'loop SPS':>10}"
          f"{'ratio':>7}{'t_update ms after the loop':>28}"
          f"  | {'t_update ms, ' + f'{options.large_memory:,} in replay':>30}"
          f"{'t_env ms, AtariVectorEnv':>26}{'its bound':>11}")
    failed, flop_rows, drifts = False, [], []
    matrix = matrix_flops_per_second(device)
    peak = max(matrix.values())
    for script in options.scripts:
        m = load_script(script)
        t, update = component_times(m, options.env_id, options.num_envs, device, options.large_memory, options.compile)
        bound, ale_bound = (1 / (t["t_update"] / 4 + t["t_act"] + t[env]) for env in ("t_env", "t_env_ale"))
        sps = learning_phase_sps(m, options.env_id, options.num_envs, options.steps, options.compile)
        t_update_after = per_call(update, 300)  # the same update once more: did the machine's speed change meanwhile?
        drifts.append(abs(t_update_after / t["t_update"] - 1))
        ratio = sps / bound
        failed |= ratio < options.min_ratio or 1e3 * t["t_update"] > options.max_update_ms
        achieved = t["update_flop"] / t["t_update"]
        needed = t["update_flop"] / (options.max_update_ms / 1e3)  # the FLOP/s of an update that meets the goal
        flop_rows.append(f"{script:<18}{t['update_flop'] / 1e9:>13.2f}{achieved / 1e9:>18.1f}{achieved / peak:>15.2f}"
                         f"{t['update_flop'] / peak * 1e3:>10.2f}{needed / peak:>19.2f}")
        print(f"{script:<18}{1e3 * t['t_update']:>12.2f}{1e3 * t['t_act']:>10.3f}{1e3 * t['t_env']:>10.3f}"
              f"{bound:>11.0f}{sps:>10.0f}{ratio:>7.2f}{1e3 * t_update_after:>28.2f}"
              f"  | {1e3 * t['t_update_large']:>30.2f}"
              f"{1e3 * t['t_env_ale']:>26.3f}{ale_bound:>11.0f}")
    speeds = ", ".join(f"{name} {flops / 1e9:.1f}" for name, flops in matrix.items())
    print(f"\nfp32 matrix-multiply speed, the best block of each: {speeds} GFLOP/s; the peak is the faster")
    print(f"{'script':<18}{'update GFLOP':>13}{'achieved GFLOP/s':>18}{'of the peak':>15}{'floor ms':>10}"
          f"{'goal needs of it':>19}")
    print("\n".join(flop_rows))
    print("FAIL" if failed else "ok", f"(goals: SPS / bound >= {options.min_ratio}, t_update <= {options.max_update_ms} ms)")
    if max(drifts) > 0.1:
        print(f"warning: the update's time changed by up to {100 * max(drifts):.0f}% between before and after the "
              "loop: the machine's speed changed during the run, so its ratio compares figures of different speeds")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
