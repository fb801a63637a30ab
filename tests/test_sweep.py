"""benchmarks/sweep.py, run as a user runs it: a local sweep, its re-run, a failed run, a run killed with SIGKILL,
and a two-node cluster on this machine; every Ray process listens on 127.0.0.1 only. The command lines the sweep
refuses, and the earlier runs it refuses to reuse, are checked in this process: they stop before Ray starts.

Ray starts slowly (about 10 s here), so the cluster tests share one two-node cluster (ray.cluster_utils.Cluster,
a head and a second node with 1 CPU each, both on 127.0.0.1), and the local sweep runs once for five tests.
"""

import ipaddress
import json
import os
import re
import shlex
import signal
import socket
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
RESERVED = "the sweep sets --env-id, --seed, --runs-dir, --run-name, --resume, --checkpoint-frequency itself"


def sweep_command(runs_dir: Path, *args: str) -> list[str]:
    return [sys.executable, str(ROOT / "benchmarks" / "sweep.py"), "--runs-dir", str(runs_dir), *args]


def run_sweep(command: list[str], output: Path, baseline: set, until=None, cwd: Path = ROOT) -> tuple[int, str, set]:
    """Run a sweep to its end in `cwd`, meanwhile calling `until(process)` (if given) and watching the listening
    sockets. Returns its exit status, its output, and the sockets that listened outside loopback and not in
    `baseline`."""
    with open(output, "w") as out:
        process = subprocess.Popen(command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
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
    """The processes of the runs started with --runs-dir `runs_dir` (so never another sweep's); the sweep gives it
    relative to the folder the run starts in."""
    pids = []
    for process in Path("/proc").glob("[0-9]*"):
        try:
            arguments = [os.fsdecode(argument) for argument in (process / "cmdline").read_bytes().split(b"\0")]
            cwd = os.readlink(process / "cwd")
        except OSError:  # the process has just ended
            continue
        if "--run-name" in arguments and "--runs-dir" in arguments[:-1]:
            if Path(cwd, arguments[arguments.index("--runs-dir") + 1]).resolve() == runs_dir.resolve():
                pids.append(int(process.name))
    return pids


@pytest.fixture(scope="module")
def tabular_sweep(tmp_path_factory):
    """A local sweep (no --address) of the tabular script over seeds 1-3, started in a folder of its own that holds
    its runs dir (`bench_runs`) and results dir (`results`), as a user starts it in the repository: (runs dir, exit
    status, output, sockets listening outside loopback meanwhile)."""
    started_in = tmp_path_factory.mktemp("local")
    runs_dir = started_in / "bench_runs"
    command = sweep_command(runs_dir, "--scripts", str(ROOT / "qlearning_frozenlake.py"), *TABULAR[2:], "--seeds",
                            "1", "2", "3", "--results-dir", str(started_in / "results"), *TABULAR_FLAGS)
    return runs_dir, *run_sweep(command, started_in / "sweep.out", non_loopback_listeners(), cwd=started_in)


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
        # one node: where a run ran says nothing, so the line does not say it
        assert re.search(rf"^   finished  {name}  \(exit 0, \d+ s\)$", output, re.MULTILINE), output
    assert "summary: 3 of 3 runs finished" in output
    assert "WARNING" not in output  # Ray's news that it turned token authentication on, as it always does


def test_a_finished_run_s_curves_and_flags_are_copied_to_the_results_dir_and_nothing_else(tabular_sweep):
    runs_dir, _, output, _ = tabular_sweep
    results_dir = runs_dir.parent / "results"
    names = [f"FrozenLake-v1__qlearning_frozenlake__{seed}" for seed in (1, 2, 3)]
    assert sorted(path.name for path in results_dir.iterdir()) == names
    for seed, name in enumerate(names, start=1):
        event_files = sorted(path.name for path in (runs_dir / name).glob(sweep.EVENT_FILES))
        assert len(event_files) == 1  # beside them in the run folder: sweep_done.json, q_table.png, greedy_policy.png
        assert sorted(path.name for path in (results_dir / name).iterdir()) == event_files + ["run.json"]
        assert scalars(results_dir / name) == scalars(runs_dir / name)  # TensorBoard shows the same curves
        assert json.loads((results_dir / name / "run.json").read_text()) == {
            "script": "qlearning_frozenlake.py", "flags": ["--env-id", "FrozenLake-v1", "--seed", str(seed),
                                                           "--total-episodes", "2000"],
            "exit_status": 0, "wall_time_s": markers(runs_dir)[name]["wall_time_s"], "resumed": False}
        for path in (results_dir / name).iterdir():  # the event file holds the run's flags, --runs-dir among them
            assert str(runs_dir.parent).encode() not in path.read_bytes()
            assert str(ROOT).encode() not in path.read_bytes()
        assert socket.gethostname() not in (results_dir / name / "run.json").read_text()
        assert f"     copied  {name}  (its event files and run.json to {results_dir / name})" in output


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


def refusal(capsys, call) -> str:
    """What `call()` wrote on stderr as it stopped with exit status 2 (the test fails if it did not stop so)."""
    with pytest.raises(SystemExit) as stop:
        call()
    assert stop.value.code == 2
    return capsys.readouterr().err


@pytest.fixture
def ray_must_not_start(monkeypatch):
    """Starting or joining Ray fails the test at once: a refusal must come first (and a hang cannot happen)."""
    def refuse(*args, **kwargs):
        raise AssertionError("Ray started")

    monkeypatch.setattr(sweep.ray, "init", refuse)
    monkeypatch.chdir(ROOT)  # the scripts are named as from the repository root, as the user does


def test_a_finished_run_with_other_flags_is_refused_not_reused(tabular_sweep, capsys, ray_must_not_start):
    runs_dir, _, _, _ = tabular_sweep  # finished with --total-episodes 2000
    before = {path: path.stat().st_mtime_ns for path in runs_dir.rglob("*")}
    other_flags = ["--", "--total-episodes", "5000", "--gamma", "0.5", "--no-is-slippery"]
    error = refusal(capsys, lambda: sweep.main(["--runs-dir", str(runs_dir), *TABULAR, *other_flags]))
    assert error == (f"error: {runs_dir / 'FrozenLake-v1__qlearning_frozenlake__1'} finished with other flags than "
                     f"this sweep gives it (it ran with [--total-episodes 2000], the sweep now gives "
                     f"[--total-episodes 5000 --gamma 0.5 --no-is-slippery]); a new sweep needs a new --runs-dir\n")
    assert {path: path.stat().st_mtime_ns for path in runs_dir.rglob("*")} == before


def test_flags_are_compared_as_the_scripts_read_them():
    assert sweep.flag_difference(["--total-episodes", "50", "--no-is-slippery"],
                                 ["--total_episodes=50", "--no_is_slippery"]) is None  # tyro's other spelling
    assert sweep.flag_difference(["--gamma", "0.5"], ["--gamma", "0.50"]) == (
        "it ran with [--gamma 0.5], the sweep now gives [--gamma 0.50]")  # values are compared as typed
    assert sweep.flag_difference(["--gamma", "0.5"], []) == "it ran with [--gamma 0.5], the sweep now gives []"
    # the last of two values of one flag wins, so the order counts
    assert sweep.flag_difference(["--is-slippery", "--no-is-slippery"], ["--no-is-slippery", "--is-slippery"]) == (
        "the same flags in another order")


def finished_dqn_run(tmp_path: Path) -> tuple:
    """A DQN run of a sweep, as it is when it has finished after a resume: its folder holds two attempts' event
    files, a checkpoint, a model, a video and the done marker. Returns the run and the record the sweep made."""
    run = sweep.Run(script=str(ROOT / "dqn_atari.py"), env_id="BreakoutNoFrameskip-v4", seed=1,
                    runs_dir=str(tmp_path / "runs"), common_flags=("--total-timesteps", "600", "--save-model"),
                    checkpoint_frequency=100, cwd=str(ROOT))
    (run.folder / "videos").mkdir(parents=True)
    for name in ("events.out.tfevents.1796204598.host.41.0", "events.out.tfevents.1796204661.host.57.0",
                 sweep.CHECKPOINT, "dqn_atari.pt", "videos/step-600.mp4"):
        (run.folder / name).write_text(f"the bytes of {name}")
    record = dict(name=run.name, folder=str(run.folder), status="finished", exit_status=0, flags=run.flags,
                  wall_time_s=812.4, resumed=True, command=sweep.run_command(run, resume=True),
                  log=str(sweep.log_file(run)), node_id="3bb2026c5e0f", node_ip="10.0.0.7",
                  hostname=socket.gethostname(), worker_pid=41)
    (run.folder / sweep.DONE_MARKER).write_text(json.dumps(record))
    return run, record


def test_the_results_of_a_finished_run_are_its_event_files_and_a_record_without_paths_of_this_machine(tmp_path,
                                                                                                     capsys):
    run, record = finished_dqn_run(tmp_path)
    assert sweep.keep_results(run, record, str(tmp_path / "results")) == record
    kept = tmp_path / "results" / run.name
    assert sorted(str(path.relative_to(kept)) for path in kept.rglob("*")) == [
        "events.out.tfevents.1796204598.host.41.0", "events.out.tfevents.1796204661.host.57.0", "run.json"]
    for event_file in kept.glob(sweep.EVENT_FILES):
        assert event_file.read_text() == f"the bytes of {event_file.name}"
    flags = ["--env-id", "BreakoutNoFrameskip-v4", "--seed", "1", "--checkpoint-frequency", "100", "--total-timesteps",
             "600", "--save-model"]
    assert json.loads((kept / "run.json").read_text()) == {
        "script": "dqn_atari.py", "flags": flags, "exit_status": 0, "wall_time_s": 812.4, "resumed": True}
    assert capsys.readouterr().out == f"     copied  {run.name}  (its event files and run.json to {kept})\n"


def test_results_that_cannot_be_copied_leave_the_run_unfinished_and_say_why(tmp_path, capsys):
    run, record = finished_dqn_run(tmp_path)
    (tmp_path / "results").write_text("")  # a file where the results folder would go
    assert sweep.keep_results(run, record, str(tmp_path / "results"))["status"] == "finished, not copied"
    assert capsys.readouterr().out == (f" not copied  {run.name}  (Not a directory: "
                                       f"{tmp_path / 'results' / run.name}.copying)\n")


def keep_tabular_results(results_dir: Path, seed: int, flags: list[str]) -> Path:
    """A results folder of the tabular script's run with `seed`, as an earlier session committed it."""
    folder = results_dir / f"FrozenLake-v1__qlearning_frozenlake__{seed}"
    folder.mkdir(parents=True)
    (folder / "events.out.tfevents.1796204598.host.41.0").write_text("curves")
    (folder / "run.json").write_text(json.dumps({"script": "qlearning_frozenlake.py", "flags": flags,
                                                 "exit_status": 0, "wall_time_s": 812.4, "resumed": False}))
    return folder


def test_a_run_whose_results_are_kept_is_skipped_with_an_empty_runs_dir(tmp_path, capsys, ray_must_not_start):
    for seed in (1, 2):  # the same flags, one in tyro's other spelling
        keep_tabular_results(tmp_path / "results", seed, ["--env_id=FrozenLake-v1", "--seed", str(seed),
                                                          "--total_episodes=2000"])
    before = {path: path.stat().st_mtime_ns for path in tmp_path.rglob("*")}
    status = sweep.main(["--runs-dir", str(tmp_path / "runs"), "--results-dir", str(tmp_path / "results"), *TABULAR,
                         "--seeds", "1", "2", *TABULAR_FLAGS])
    assert status == 0
    assert capsys.readouterr().out.splitlines()[:2] == [
        f"skipped (results kept)  FrozenLake-v1__qlearning_frozenlake__{seed}  (exit 0, 812 s)" for seed in (1, 2)]
    assert {path: path.stat().st_mtime_ns for path in tmp_path.rglob("*")} == before  # not even the runs dir made


def test_a_results_folder_of_a_run_with_other_flags_is_refused(tmp_path, capsys, ray_must_not_start):
    folder = keep_tabular_results(tmp_path / "results", 1, ["--env-id", "FrozenLake-v1", "--seed", "1",
                                                            "--total-episodes", "5000"])
    error = refusal(capsys, lambda: sweep.main(["--runs-dir", str(tmp_path / "runs"), "--results-dir",
                                                str(tmp_path / "results"), *TABULAR, *TABULAR_FLAGS]))
    assert error == (f"error: {folder} holds the results of a run with other flags than this sweep gives it (it ran "
                     f"with [--total-episodes 5000], the sweep now gives [--total-episodes 2000]); a new sweep needs a "
                     f"new --results-dir\n")


def test_a_results_folder_without_its_record_is_one_error_line(tmp_path, capsys, ray_must_not_start):
    folder = tmp_path / "results" / "FrozenLake-v1__qlearning_frozenlake__1"
    folder.mkdir(parents=True)  # someone's folder, or a run's event files without the record of what ran
    error = refusal(capsys, lambda: sweep.main(["--runs-dir", str(tmp_path / "runs"), "--results-dir",
                                                str(tmp_path / "results"), *TABULAR, *TABULAR_FLAGS]))
    assert error == (f"error: {folder / 'run.json'}: missing, so the flags the run started with are unknown; a new "
                     f"sweep needs a new --results-dir\n")


def test_a_progress_line_gives_the_node_s_ip_only_when_the_cluster_has_several_nodes():
    record = dict(status="finished", name="PongNoFrameskip-v4__dqn_atari__1", exit_status=0, wall_time_s=812.4,
                  node_id="3bb2026c5e0f", node_ip="10.0.0.7")
    assert sweep.progress_line(record) == "   finished  PongNoFrameskip-v4__dqn_atari__1  (exit 0, 812 s)"
    assert sweep.progress_line(record, node_ip=True) == (
        "   finished  PongNoFrameskip-v4__dqn_atari__1  (exit 0, 812 s, node 10.0.0.7)")


def test_help_shows_every_option_with_its_default_the_flags_after_the_dashes_and_an_example(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)  # the example names the scripts from the repository root
    with pytest.raises(SystemExit) as stop:
        sweep.parse_args(["--help"])
    assert stop.value.code == 0
    text = capsys.readouterr().out
    entries = re.findall(r"^  (--[a-z-]+)(.*?)(?=^  -|^\S|\Z)", text, re.MULTILINE | re.DOTALL)
    assert {option: " ".join(entry.split()).rpartition(" (")[2] for option, entry in entries} == {
        "--scripts": "required)", "--env-ids": "required)", "--seeds": "default: 1 2 3)",
        "--runs-dir": "default: bench_runs)", "--results-dir": "default: none, nothing copied)",
        "--address": "default: none, Ray starts on this machine, 127.0.0.1)", "--num-cpus": "default: all of them)",
        "--cpus-per-run": "default: 1)", "--gpus-per-run": "default: 0)", "--checkpoint-frequency": "default: 10000)",
        "--max-retries": "default: 3)"}
    assert text.splitlines()[0].endswith("[-- FLAGS ...]")
    assert "FLAGS, everything after `--`, go to every run as they are" in text
    example = text[text.index("python benchmarks/sweep.py"):].replace("\\\n", " ")
    args, flags = sweep.parse_args(shlex.split(example)[2:])  # a command the sweep takes
    assert (args.results_dir, flags) == ("benchmarks/results/atari100k", ["--total-timesteps", "100000"])


def test_the_runs_start_seed_by_seed_so_a_sweep_stopped_early_has_every_script_and_game(tmp_path):
    runs = sweep.plan_runs(*sweep.parse_args(["--runs-dir", str(tmp_path), "--scripts", "dqn_atari.py",
                                              "double_dqn_atari.py", "--env-ids", "A", "B", "--seeds", "1", "2"]))
    assert [(run.seed, run.env_id, Path(run.script).name) for run in runs] == [
        (seed, env_id, script) for seed in (1, 2) for env_id in "AB"
        for script in ("dqn_atari.py", "double_dqn_atari.py")]


def test_an_unfinished_run_that_started_with_other_flags_is_not_resumed(tmp_path, capsys, ray_must_not_start):
    (run,) = sweep.plan_runs(*sweep.parse_args(["--runs-dir", str(tmp_path), *DQN]))
    run.folder.mkdir()
    (run.folder / sweep.CHECKPOINT).touch()  # a sweep of 100,000 steps stopped at a checkpoint
    started_with = run.flags
    started_with[started_with.index("--total-timesteps") + 1] = "100000"
    sweep.started_record(run).parent.mkdir()
    sweep.started_record(run).write_text(json.dumps({"flags": started_with}))
    error = refusal(capsys, lambda: sweep.main(["--runs-dir", str(tmp_path), *DQN]))
    assert error == (f"error: {run.folder} started with other flags than this sweep gives it (it ran with "
                     f"[--total-timesteps 100000], the sweep now gives [--total-timesteps 600]); a new sweep needs "
                     f"a new --runs-dir\n")


@pytest.mark.parametrize("marker, problem", [
    ("{not json", "damaged, not JSON (JSONDecodeError)"),
    ('{"exit_status": 0, "wall_time_s": 1.0, "node_id": "ab"}',  # an older sweep's: no flags recorded
     "not a record of this sweep (it needs flags, exit_status, wall_time_s, resumed)")])
def test_a_damaged_done_marker_is_one_error_line(tmp_path, capsys, ray_must_not_start, marker, problem):
    folder = tmp_path / "FrozenLake-v1__qlearning_frozenlake__1"
    folder.mkdir()
    (folder / sweep.DONE_MARKER).write_text(marker)
    error = refusal(capsys, lambda: sweep.main(["--runs-dir", str(tmp_path), *TABULAR, "--seeds", "1"]))
    assert error == f"error: {folder / sweep.DONE_MARKER}: {problem}; a new sweep needs a new --runs-dir\n"


@pytest.mark.parametrize("flag", [["--env_id", "Taxi-v4"], ["--env-id=Taxi-v4"], ["--env_id=Taxi-v4"],
                                  ["--run_name", "other"], ["--runs_dir=elsewhere"], ["--checkpoint_frequency", "5"]])
def test_a_flag_the_sweep_sets_is_refused_in_every_spelling_tyro_accepts(capsys, ray_must_not_start, flag):
    error = refusal(capsys, lambda: sweep.parse_args([*TABULAR, "--", "--total-episodes", "50", *flag]))
    assert error == f"error: {flag[0]} after `--`: {RESERVED} (in any spelling)\n"


@pytest.mark.parametrize("lists, line", [
    (["--scripts", "dqn_atari.py", "dqn_atari.py", "--env-ids", "PongNoFrameskip-v4"],
     "--scripts dqn_atari.py dqn_atari.py: both would run in the folder PongNoFrameskip-v4__dqn_atari__1"),
    (["--scripts", "dqn_atari.py", "./dqn_atari.py", "--env-ids", "PongNoFrameskip-v4"],  # one script, two paths
     "--scripts dqn_atari.py ./dqn_atari.py: both would run in the folder PongNoFrameskip-v4__dqn_atari__1"),
    (["--scripts", "dqn_atari.py", "--env-ids", "ALE/Pong-v5", "ALE_Pong-v5"],  # '/' becomes '_' in a name
     "--env-ids ALE/Pong-v5 ALE_Pong-v5: both would run in the folder ALE_Pong-v5__dqn_atari__1"),
    (["--scripts", "dqn_atari.py", "--env-ids", "PongNoFrameskip-v4", "--seeds", "1", "2", "1"],
     "--seeds 1 1: both would run in the folder PongNoFrameskip-v4__dqn_atari__1")])
def test_a_script_env_id_or_seed_given_twice_is_refused(capsys, ray_must_not_start, lists, line):
    assert refusal(capsys, lambda: sweep.parse_args(lists)) == f"error: {line}, which holds one run\n"


@pytest.mark.parametrize("options, line", [
    (["--cpus-per-run", "-1"], "--cpus-per-run -1: must be 0 or more, in Ray's steps of 0.0001"),
    (["--gpus-per-run", "nan"], "--gpus-per-run nan: must be 0 or more, in Ray's steps of 0.0001"),
    (["--max-retries", "-5"], "--max-retries -5: must be 0 or more"),
    (["--num-cpus", "-1"], "--num-cpus -1: must be 0 or more"),
    (["--checkpoint-frequency", "0"], "--checkpoint-frequency 0: must be 1 or more"),
    (["--seeds", "-1"], "--seeds -1: must be in [0, 2**32), the scripts' seed range"),
    (["--seeds", "x"], "argument --seeds: invalid int value: 'x'"),  # argparse's words, without its usage lines
    (["--runs-dir", "README.md"], "--runs-dir README.md: README.md is not a folder"),
    (["--runs-dir", "README.md/runs"], "--runs-dir README.md/runs: README.md is not a folder"),
    (["--results-dir", "README.md"], "--results-dir README.md: README.md is not a folder"),
    (["--runs-dir", "runs", "--results-dir", "./runs"],
     "--results-dir ./runs: the --runs-dir itself; the results are copies kept apart from the runs"),
    (["--address", "127.0.0.1:6379", "--num-cpus", "2"],
     "--num-cpus 2: only for the Ray this sweep starts; a cluster's nodes say theirs (`ray start --num-cpus`)"),
    (["--", "--help"], "--help after `--`: every run would print its help and exit 0, as if finished; ask a script "
                       "itself")])
def test_a_bad_sweep_option_is_one_error_line_and_exit_2(capsys, ray_must_not_start, options, line):
    assert refusal(capsys, lambda: sweep.parse_args([*TABULAR, *options])) == f"error: {line}\n"


@pytest.mark.parametrize("options, line", [
    (["--gpus-per-run", "1"],
     "--gpus-per-run 1: no node of this machine's Ray has that many GPUs (at most 0), so no run could ever start"),
    (["--num-cpus", "0"], "--cpus-per-run 1: no node of this machine's Ray (--num-cpus 0) has that many CPUs (at "
                          "most 0), so no run could ever start"),
    (["--num-cpus", "2", "--cpus-per-run", "3"], "--cpus-per-run 3: no node of this machine's Ray (--num-cpus 2) has "
                                                 "that many CPUs (at most 2), so no run could ever start")])
def test_a_run_size_this_machine_cannot_give_is_refused_before_ray_starts(tmp_path, capsys, monkeypatch,
                                                                         ray_must_not_start, options, line):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # no GPU for Ray, whatever this machine has
    error = refusal(capsys, lambda: sweep.main(["--runs-dir", str(tmp_path), *TABULAR, *options, *TABULAR_FLAGS]))
    assert error == f"error: {line}\n"


def test_a_run_size_no_node_of_a_cluster_has_is_refused(capsys):
    nodes = [{"CPU": 8.0, "memory": 1e9}, {"CPU": 2.0, "GPU": 1.0}]  # as ray.nodes() gives their "Resources"
    sweep.check_schedulable(nodes, 2, 1, "the cluster at HEAD:6379")  # the second node can take it
    assert refusal(capsys, lambda: sweep.check_schedulable(nodes, 4, 1, "the cluster at HEAD:6379")) == (
        "error: --cpus-per-run 4 --gpus-per-run 1: no node of the cluster at HEAD:6379 has both, so no run could "
        "ever start\n")
    assert refusal(capsys, lambda: sweep.check_schedulable(nodes, 1, 2, "the cluster at HEAD:6379")) == (
        "error: --gpus-per-run 2: no node of the cluster at HEAD:6379 has that many GPUs (at most 1), so no run "
        "could ever start\n")


INTERRUPTED_SCRIPT = """import os, sys
# a run that makes its folder as the scripts do, then stops as they do after Ctrl-C
os.makedirs(os.path.join(sys.argv[sys.argv.index("--runs-dir") + 1], sys.argv[sys.argv.index("--run-name") + 1]))
print("interrupted (Ctrl-C) at step 5")
sys.exit(130)
"""


def test_a_run_that_exits_130_is_reported_interrupted_and_never_marked_finished(cluster, tmp_path):
    address, baseline = cluster
    script = tmp_path / "interrupted_run.py"
    script.write_text(INTERRUPTED_SCRIPT)
    command = sweep_command(tmp_path / "runs", "--address", address, "--scripts", str(script), "--env-ids",
                            "FrozenLake-v1", "--seeds", "1")
    status, output, _ = run_sweep(command, tmp_path / "sweep.out", baseline)
    assert status == 1, output
    assert (tmp_path / "runs" / "FrozenLake-v1__interrupted_run__1").is_dir()
    assert markers(tmp_path / "runs") == {}
    assert "interrupted  FrozenLake-v1__interrupted_run__1  (exit 130" in output
    assert "summary: 0 of 1 runs finished" in output


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
    command = sweep_command(tmp_path / "runs", "--address", address, "--results-dir", str(tmp_path / "results"), *DQN)
    status, output, _ = run_sweep(command, tmp_path / "sweep.out", baseline, until=kill)
    assert kill.killed_pid is not None, "the run ended before it could be killed"
    assert status == 0, output
    assert markers(tmp_path / "runs")[run_dir.name]["resumed"] is True
    assert torch.load(run_dir / sweep.CHECKPOINT, weights_only=True)["global_step"] == 600
    steps = {tag: [point.step for point in points] for tag, points in scalars(run_dir).items()}
    for tag in steps:
        assert len(steps[tag]) == len(set(steps[tag])), f"{tag} has a step twice: {steps[tag]}"
    assert steps["eval/episodic_return"][-1] == 600
    # both attempts' event files go to the results, the checkpoint does not; TensorBoard reads the same curves
    event_files = sorted(path.name for path in run_dir.glob(sweep.EVENT_FILES))
    assert len(event_files) == 2
    assert sorted(path.name for path in (tmp_path / "results" / run_dir.name).iterdir()) == event_files + ["run.json"]
    assert scalars(tmp_path / "results" / run_dir.name) == scalars(run_dir)
    assert json.loads((tmp_path / "results" / run_dir.name / "run.json").read_text())["resumed"] is True


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
    for seed in (1, 2):  # more than one node: each line says which ran the run
        name = f"FrozenLake-v1__qlearning_frozenlake__{seed}"
        assert re.search(rf"^   finished  {name}  \(exit 0, \d+ s, node 127\.0\.0\.1\)$", output, re.MULTILINE), output
