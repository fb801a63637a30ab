"""benchmarks/sweep.py, run as a user runs it: a local sweep, its re-run, a failed run, a run killed with SIGKILL,
and a two-node cluster on this machine; every Ray process listens on 127.0.0.1 only.

Ray starts slowly (about 10 s here), so the cluster tests share one two-node cluster (ray.cluster_utils.Cluster,
a head and a second node with 1 CPU each, both on 127.0.0.1), and the local sweep runs once for three tests.
"""

import ipaddress
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import ROOT, load_script
from ray.cluster_utils import Cluster
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

sweep = load_script("benchmarks/sweep")

TABULAR = ["--scripts", "qlearning_frozenlake.py", "--env-ids", "FrozenLake-v1"]
TABULAR_FLAGS = ["--", "--total-episodes", "2000"]
# a DQN run of a few seconds that checkpoints every 100 steps
DQN = ["--scripts", "dqn_atari.py", "--env-ids", "BreakoutNoFrameskip-v4", "--seeds", "1", "--checkpoint-frequency",
       "100", "--", "--total-timesteps", "600", "--learning-starts", "100", "--buffer-size", "1000", "--batch-size",
       "8", "--eval-episodes", "1", "--eval-epsilon", "1.0"]
TIMEOUT = 300


def sweep_command(runs_dir: Path, *args: str) -> list[str]:
    return [sys.executable, str(ROOT / "benchmarks" / "sweep.py"), "--runs-dir", str(runs_dir), *args]


def run_sweep(command: list[str], output: Path, baseline: set, until=None) -> tuple[int, str, set]:
    """Run a sweep to its end, meanwhile calling `until(process)` (if given) and watching the listening sockets.
    Returns its exit status, its output, and the sockets that listened outside loopback and not in `baseline`."""
    with open(output, "w") as out:
        process = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    deadline, seen = time.time() + TIMEOUT, set()
    while process.poll() is None and time.time() < deadline:
        seen |= non_loopback_listeners()
        if until:
            until(process)
        time.sleep(0.2)
    process.kill()  # a no-op unless it ran past the deadline
    return process.wait(), output.read_text(), seen - baseline


def non_loopback_listeners() -> set[tuple[str, int]]:
    """(address, port) of every TCP socket of this machine that listens on an address other than loopback."""
    listeners = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            if state != "0A":  # not LISTEN
                continue
            address_hex, port_hex = local.split(":")
            # the kernel prints the address as 32-bit words in host (little-endian) byte order
            address = ipaddress.ip_address(b"".join(bytes.fromhex(address_hex[i:i + 8])[::-1]
                                                    for i in range(0, len(address_hex), 8)))
            address = getattr(address, "ipv4_mapped", None) or address
            if not address.is_loopback:
                listeners.add((str(address), int(port_hex, 16)))
    return listeners


def markers(runs_dir: Path) -> dict[str, dict]:
    """The done marker of every run folder, by run name."""
    return {path.parent.name: json.loads(path.read_text()) for path in runs_dir.glob(f"*/{sweep.DONE_MARKER}")}


def scalars(run_dir: Path) -> dict[str, list]:
    """Every scalar tag's points (step, value) as TensorBoard reads the run."""
    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    events.Reload()
    return {tag: events.Scalars(tag) for tag in events.Tags()["scalars"]}


class KillAfterFirstCheckpoint:
    """Called while the sweep runs: once `run_dir/checkpoint.pt` exists, SIGKILL the run's process (found by its
    --runs-dir, so never another sweep's run of the same name), once."""

    def __init__(self, run_dir: Path):
        self.run_dir = run_dir
        self.killed_pid = None

    def __call__(self, sweep_process):
        if self.killed_pid or not (self.run_dir / sweep.CHECKPOINT).exists():
            return
        for pid in run_pids(self.run_dir.parent)[:1]:
            self.killed_pid = pid
            os.kill(pid, signal.SIGKILL)


def run_pids(runs_dir: Path) -> list[int]:
    """The processes of the runs started with --runs-dir `runs_dir` (so never another sweep's)."""
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            arguments = cmdline.read_bytes().split(b"\0")
        except OSError:  # the process has just ended
            continue
        if str(runs_dir).encode() in arguments and b"--run-name" in arguments:
            pids.append(int(cmdline.parent.name))
    return pids


@pytest.fixture(scope="module")
def tabular_sweep(tmp_path_factory):
    """A local sweep (no --address) of the tabular script over seeds 1-3: (runs dir, exit status, output, sockets
    listening outside loopback meanwhile)."""
    runs_dir = tmp_path_factory.mktemp("local") / "bench_runs"
    command = sweep_command(runs_dir, *TABULAR, "--seeds", "1", "2", "3", *TABULAR_FLAGS)
    return runs_dir, *run_sweep(command, runs_dir.parent / "sweep.out", baseline=non_loopback_listeners())


@pytest.fixture(scope="module")
def cluster():
    """A two-node Ray cluster on this machine, both nodes on 127.0.0.1 with 1 CPU each: (address, the sockets that
    listened outside loopback before it started)."""
    baseline = non_loopback_listeners()
    sweep.keep_ray_on_loopback()
    cluster = Cluster(initialize_head=True, head_node_args=dict(node_ip_address="127.0.0.1", num_cpus=1,
                                                                include_dashboard=False))
    cluster.add_node(node_ip_address="127.0.0.1", num_cpus=1)
    cluster.wait_for_nodes()
    yield cluster.address, baseline
    cluster.shutdown()


def test_a_local_sweep_runs_every_seed_to_a_complete_run_folder(tabular_sweep):
    runs_dir, status, output, _ = tabular_sweep
    names = [f"FrozenLake-v1__qlearning_frozenlake__{seed}" for seed in (1, 2, 3)]
    assert status == 0, output
    assert sorted(markers(runs_dir)) == names
    for name in names:
        assert markers(runs_dir)[name]["exit_status"] == 0
        assert scalars(runs_dir / name)["charts/episodes"][-1].value == 2000  # the run logged its last episode
        assert f"finished  {name}  (exit 0" in output
    assert "summary: 3 of 3 runs finished" in output


def test_a_local_sweep_keeps_every_ray_process_on_loopback(tabular_sweep):
    runs_dir, _, _, listening_elsewhere = tabular_sweep
    assert listening_elsewhere == set()
    assert {record["node_ip"] for record in markers(runs_dir).values()} == {"127.0.0.1"}


def test_rerunning_a_finished_sweep_skips_every_run(tabular_sweep):
    runs_dir, _, _, _ = tabular_sweep
    before = {path: path.stat().st_mtime_ns for path in runs_dir.rglob("*")}
    result = subprocess.run(sweep_command(runs_dir, *TABULAR, "--seeds", "1", "2", "3", *TABULAR_FLAGS), cwd=ROOT,
                            capture_output=True, text=True, timeout=TIMEOUT)
    assert result.returncode == 0
    assert result.stdout.count("skipped (finished before)  FrozenLake-v1__qlearning_frozenlake__") == 3
    assert "Started a local Ray instance" not in result.stdout + result.stderr  # nothing to run: no Ray
    assert {path: path.stat().st_mtime_ns for path in runs_dir.rglob("*")} == before


def test_a_failed_run_does_not_stop_the_others_and_the_sweep_exits_1(cluster, tmp_path):
    address, baseline = cluster
    command = sweep_command(tmp_path / "runs", "--address", address, "--scripts", "qlearning_frozenlake.py",
                            "--env-ids", "FrozenLake-v1", "NoSuchEnv-v0", "--seeds", "1", *TABULAR_FLAGS)
    status, output, _ = run_sweep(command, tmp_path / "sweep.out", baseline)
    assert status == 1, output
    assert list(markers(tmp_path / "runs")) == ["FrozenLake-v1__qlearning_frozenlake__1"]
    assert "failed  NoSuchEnv-v0__qlearning_frozenlake__1  (exit 2" in output
    assert "summary: 1 of 2 runs finished" in output
    assert "sweep_logs/NoSuchEnv-v0__qlearning_frozenlake__1.log" in output


def test_a_run_killed_with_sigkill_is_retried_and_resumes_from_its_checkpoint(cluster, tmp_path):
    address, baseline = cluster
    run_dir = tmp_path / "runs" / "BreakoutNoFrameskip-v4__dqn_atari__1"
    kill = KillAfterFirstCheckpoint(run_dir)
    status, output, _ = run_sweep(sweep_command(tmp_path / "runs", "--address", address, *DQN),
                                  tmp_path / "sweep.out", baseline, until=kill)
    assert kill.killed_pid is not None, "the run ended before it could be killed"
    assert status == 0, output
    assert markers(tmp_path / "runs")[run_dir.name]["resumed"] is True
    assert torch.load(run_dir / sweep.CHECKPOINT, weights_only=True)["global_step"] == 600
    steps = {tag: [point.step for point in points] for tag, points in scalars(run_dir).items()}
    for tag in steps:
        assert len(steps[tag]) == len(set(steps[tag])), f"{tag} has a step twice: {steps[tag]}"
    assert steps["eval/episodic_return"][-1] == 600


class CtrlCAfterFirstCheckpoint:
    """Called while the sweep runs: once `run_dir/checkpoint.pt` exists, send the sweep SIGINT, once."""

    def __init__(self, run_dir: Path):
        self.run_dir = run_dir
        self.sent = False

    def __call__(self, sweep_process):
        if not self.sent and (self.run_dir / sweep.CHECKPOINT).exists():
            sweep_process.send_signal(signal.SIGINT)
            self.sent = True


def test_ctrl_c_stops_the_sweep_and_its_runs_which_keep_their_checkpoints(tmp_path):
    run_dir = tmp_path / "runs" / "BreakoutNoFrameskip-v4__dqn_atari__1"
    ctrl_c = CtrlCAfterFirstCheckpoint(run_dir)
    long_run = DQN[:DQN.index("--total-timesteps") + 1] + ["100000"] + DQN[DQN.index("--total-timesteps") + 2:]
    status, output, _ = run_sweep(sweep_command(tmp_path / "runs", *long_run), tmp_path / "sweep.out", set(),
                                  until=ctrl_c)
    assert ctrl_c.sent and status == 130, output
    assert output.rstrip().splitlines()[-1].startswith("interrupted (Ctrl-C): ")
    deadline = time.time() + 30  # the run dies with its Ray worker
    while run_pids(tmp_path / "runs") and time.time() < deadline:
        time.sleep(0.2)
    assert run_pids(tmp_path / "runs") == []
    assert torch.load(run_dir / sweep.CHECKPOINT, weights_only=True)["global_step"] >= 100


def test_a_two_node_cluster_runs_the_sweep_on_both_nodes_on_loopback(cluster, tmp_path):
    address, baseline = cluster
    command = sweep_command(tmp_path / "runs", "--address", address, *TABULAR, "--seeds", "1", "2", *TABULAR_FLAGS)
    status, output, listening_elsewhere = run_sweep(command, tmp_path / "sweep.out", baseline)
    assert status == 0, output
    records = markers(tmp_path / "runs").values()
    assert len({record["node_id"] for record in records}) == 2
    assert {record["node_ip"] for record in records} == {"127.0.0.1"}
    assert listening_elsewhere == set()
