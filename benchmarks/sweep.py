"""Run a benchmark sweep on Ray: every script × env id × seed as one run, each run one Ray task.

Each run is the command a user would type, started as a subprocess on whichever node Ray picks:

    python SCRIPT --env-id ENV --seed SEED --runs-dir RUNS_DIR --run-name NAME [--checkpoint-frequency K] FLAGS...

with NAME = `{env id, '/' -> '_'}__{script name}__{seed}`, so a run's folder does not depend on when it started.

Fault tolerance. Scripts that checkpoint (the DQN scripts; the sweep asks each script's `--help`) get
`--checkpoint-frequency K`. When a run's process dies by a signal (SIGKILL, the out-of-memory killer), or the Ray
worker or node that ran it dies, Ray retries the task (up to `--max-retries` times), and the retry continues
the run with `python SCRIPT --resume RUNS_DIR/NAME FLAGS...` from its last checkpoint; the script drops the
TensorBoard points logged after that checkpoint, so no step appears twice. A script without checkpoints (the
tabular one: a run takes seconds) restarts from scratch in a fresh folder. A run that exits with a non-zero status
by itself (a bad flag, a full disk) is not retried: it is reported as failed and the other runs go on.

Re-running the same command continues the sweep: a finished run has `RUNS_DIR/NAME/sweep_done.json` (exit status,
wall time, the node that ran it) and is skipped; an unfinished one resumes from its checkpoint. The runs' console
output goes to `RUNS_DIR/sweep_logs/NAME.log` (each attempt appended).

Where Ray runs. Without `--address` Ray starts on this machine with every process on 127.0.0.1 (nothing listens on
another address, no dashboard). With `--address HOST:PORT` the sweep joins an existing cluster (`ray start --head`
on one node, `ray start --address HOST:PORT` on the others); RUNS_DIR and the scripts must then be at the same
paths on every node (a shared filesystem).

Run (from the repository root):
    python benchmarks/sweep.py --scripts dqn_atari.py double_dqn_atari.py \\
        --env-ids BreakoutNoFrameskip-v4 PongNoFrameskip-v4 --seeds 1 2 3 --runs-dir bench_runs \\
        -- --total-timesteps 150000 --learning-starts 10000
    python benchmarks/sweep.py --scripts qlearning_frozenlake.py --env-ids FrozenLake-v1 --seeds 1 2 3 \\
        --runs-dir bench_runs -- --total-episodes 2000
    python benchmarks/report.py bench_runs --out bench_runs/report

Prints one line per finished or failed run and, at the end, every run's folder and status. Exit status 0 when
every run has finished, 1 when one has not, 2 for a bad command line, 130 after Ctrl-C (which stops the unfinished
runs at their last checkpoints: the same command continues them).
"""

import argparse
import ctypes
import functools
import ipaddress
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import ray

DONE_MARKER = "sweep_done.json"
CHECKPOINT = "checkpoint.pt"
LOGS = "sweep_logs"
# Flags the sweep sets itself for every run; passing them after `--` would contradict it
SWEEP_FLAGS = ("--env-id", "--seed", "--runs-dir", "--run-name", "--resume", "--checkpoint-frequency")
PR_SET_PDEATHSIG = 1  # prctl(2) option: the signal the kernel sends a process when its parent dies


@dataclass(frozen=True)
class Run:
    """One script × env id × seed of the sweep: everything a Ray worker needs to start or continue it."""

    script: str  # absolute path
    env_id: str
    seed: int
    runs_dir: str  # absolute path
    flags: tuple[str, ...]  # passed to every run
    checkpoint_frequency: int | None  # None: the script has no checkpoints, so a retry starts it again
    cwd: str  # the folder the sweep was started in: the runs start there, as if typed in the same shell

    @property
    def name(self) -> str:
        return f"{self.env_id.replace('/', '_')}__{Path(self.script).stem}__{self.seed}"

    @property
    def folder(self) -> Path:
        return Path(self.runs_dir) / self.name


class RunKilled(Exception):
    """The run's process died by a signal: Ray retries the task, and the retry resumes from the checkpoint."""


# ---- The sweep ---------------------------------------------------------------------------------------------------
def run_sweep(runs: list[Run], cpus_per_run: float, gpus_per_run: float, max_retries: int) -> list[dict]:
    """Run every unfinished run as a Ray task (Ray must be connected) and wait for all of them; print one line per
    run as it ends. Returns one record per run, in the order of `runs`."""
    records = {}
    for run in runs:
        if record := done_record(run):
            records[run.name] = record
            print(progress_line(record))
    task = ray.remote(execute_run).options(
        num_cpus=cpus_per_run, num_gpus=gpus_per_run, max_retries=max_retries, retry_exceptions=[RunKilled],
        scheduling_strategy="SPREAD")  # long runs: fill the nodes evenly rather than the driver's node first
    pending = {task.remote(run): run for run in runs if run.name not in records}
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)  # back every second, so Ctrl-C is seen
        for ref in ready:
            run = pending.pop(ref)
            records[run.name] = task_record(ref, run)
            print(progress_line(records[run.name]), flush=True)
    return [records[run.name] for run in runs]


def execute_run(run: Run) -> dict:
    """The Ray task: run `run` to its end as a subprocess, continuing its checkpoint if an earlier attempt left
    one. Returns the run's record (also written as the done marker when it exits with status 0)."""
    resume = run.checkpoint_frequency is not None and (run.folder / CHECKPOINT).exists()
    if not resume:  # an earlier attempt left nothing to continue; the script refuses a --run-name that exists
        shutil.rmtree(run.folder, ignore_errors=True)
    command = run_command(run, resume)
    log_path = Path(run.runs_dir) / LOGS / f"{run.name}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.time()
    with open(log_path, "a") as log:
        log.write(f"$ {' '.join(command)}\n")
        log.flush()
        process = subprocess.run(command, cwd=run.cwd, stdout=log, stderr=subprocess.STDOUT,
                                 preexec_fn=die_with_parent_hook())
    if process.returncode < 0:
        raise RunKilled(f"{run.name}: killed by {signal.Signals(-process.returncode).name}")
    record = dict(name=run.name, folder=str(run.folder), status="finished" if process.returncode == 0 else "failed",
                  exit_status=process.returncode, wall_time_s=round(time.time() - started, 1), resumed=resume,
                  command=command, log=str(log_path), node_id=ray.get_runtime_context().get_node_id(),
                  node_ip=ray.util.get_node_ip_address(), hostname=socket.gethostname(), worker_pid=os.getpid())
    if process.returncode == 0:
        (run.folder / DONE_MARKER).write_text(json.dumps(record, indent=1))
    return record


def run_command(run: Run, resume: bool) -> list[str]:
    """The command line of one attempt: a fresh start, or `--resume` of the run folder (the checkpoint holds the
    env id, seed and folder; the flags are passed again, which the scripts accept)."""
    python = [sys.executable, run.script]
    checkpoints = [] if run.checkpoint_frequency is None else ["--checkpoint-frequency", str(run.checkpoint_frequency)]
    if resume:
        return python + ["--resume", str(run.folder)] + checkpoints + list(run.flags)
    return python + ["--env-id", run.env_id, "--seed", str(run.seed), "--runs-dir", run.runs_dir,
                     "--run-name", run.name] + checkpoints + list(run.flags)


def die_with_parent_hook():
    """On Linux, a function for the child to call before it starts the script: the kernel then kills the run
    when the Ray worker waiting on it dies, so a retry never meets the old process still writing to the folder.
    None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved here, in the parent: the child only calls it
    return functools.partial(prctl, PR_SET_PDEATHSIG, signal.SIGKILL)


def done_record(run: Run) -> dict | None:
    """The record of a run an earlier sweep finished (its done marker), marked as skipped; None if unfinished."""
    marker = run.folder / DONE_MARKER
    if not marker.exists():
        return None
    return {**json.loads(marker.read_text()), "status": "skipped (finished before)"}


def task_record(ref: ray.ObjectRef, run: Run) -> dict:
    """The record a finished task returned, or a failed record when the task raised after its last retry (the
    process killed every time, the worker or node lost every time)."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayError as error:
        cause = str(error).strip().splitlines()[-1]
        return dict(name=run.name, folder=str(run.folder), status="failed", exit_status=None, error=cause,
                    log=str(Path(run.runs_dir) / LOGS / f"{run.name}.log"))


def progress_line(record: dict) -> str:
    """One line for one run: its name, status and exit status, wall time or error."""
    detail = (f"exit {record['exit_status']}, {record['wall_time_s']:.0f} s, node {record['node_id'][:8]}"
              if record.get("exit_status") is not None else record["error"])
    return f"{record['status']:>9}  {record['name']}  ({detail})"


def print_summary(records: list[dict]):
    """Every run's folder and status; where a run failed, where its output is."""
    finished = sum(is_finished(record) for record in records)
    print(f"\nsummary: {finished} of {len(records)} runs finished")
    for record in records:
        exit_status = "-" if record.get("exit_status") is None else record["exit_status"]
        log = "" if is_finished(record) else f"  (output: {record['log']})"
        print(f"  {record['status']:<26} exit {exit_status!s:<4} {record['folder']}{log}")


def is_finished(record: dict) -> bool:
    return record["status"] in ("finished", "skipped (finished before)")


# ---- Plumbing: connecting to Ray, the command line, main() -------------------------------------------------------
def connect(address: str | None, num_cpus: int | None):
    """Start Ray on this machine on 127.0.0.1 only, or join the cluster at `address`."""
    if address is None or is_loopback(address):
        keep_ray_on_loopback()
    if address is None:  # "local": a new instance, never one that `ray start` left running on this machine
        ray.init(address="local", _node_ip_address="127.0.0.1", include_dashboard=False, num_cpus=num_cpus)
    else:
        ray.init(address=address)


def keep_ray_on_loopback():
    """Make this process, and the Ray processes it starts, keep 127.0.0.1 as the node address. Ray 2.60 replaces a
    node address of 127.0.0.1 by the machine's external IP, and its servers then listen there and on every
    interface, unless its switch for single-machine clusters (meant for Windows and macOS) is set: in the
    environment for the processes Ray starts, and in `ray_constants`, which read it when this process imported ray.
    A multi-node cluster must not use it (`ray start --address` refuses to join with it)."""
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    ray._private.ray_constants.ENABLE_RAY_CLUSTER = False


def is_loopback(address: str) -> bool:
    """Whether HOST:PORT names this machine's loopback interface."""
    host = address.rsplit(":", 1)[0].strip("[]")
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name
        return host == "localhost"


def plan_runs(args: argparse.Namespace, flags: list[str]) -> list[Run]:
    """Every script × env id × seed, in that order."""
    checkpoints = {script: args.checkpoint_frequency if has_checkpoints(script) else None for script in args.scripts}
    return [Run(script=str(Path(script).resolve()), env_id=env_id, seed=seed,
                runs_dir=str(Path(args.runs_dir).resolve()), flags=tuple(flags),
                checkpoint_frequency=checkpoints[script], cwd=os.getcwd())
            for script in args.scripts for env_id in args.env_ids for seed in args.seeds]


def has_checkpoints(script: str) -> bool:
    """Whether the script has a `--checkpoint-frequency` flag (asks its `--help`)."""
    help_text = subprocess.run([sys.executable, script, "--help"], capture_output=True, text=True).stdout
    return "--checkpoint-frequency" in help_text


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """The sweep's own flags, and the flags after `--` that go to every run."""
    own, flags = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scripts", nargs="+", required=True, help="the scripts to run, e.g. dqn_atari.py")
    parser.add_argument("--env-ids", nargs="+", required=True, help="the env ids every script runs on")
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3], help="the seeds of every script × env id")
    parser.add_argument("--runs-dir", default="bench_runs", help="the folder that holds the sweep's run folders")
    parser.add_argument("--address", help="HOST:PORT of an existing Ray cluster; unset: Ray starts on 127.0.0.1")
    parser.add_argument("--num-cpus", type=int, help="CPUs the local Ray offers (without --address); unset: all")
    parser.add_argument("--cpus-per-run", type=float, default=1.0, help="CPUs one run reserves")
    parser.add_argument("--gpus-per-run", type=float, default=0.0, help="GPUs one run reserves (may be fractional)")
    parser.add_argument("--checkpoint-frequency", type=int, default=10_000,
                        help="agent steps between checkpoints, for the scripts that have them")
    parser.add_argument("--max-retries", type=int, default=3,
                        help="how often Ray retries a run whose process or worker died")
    args = parser.parse_args(own)
    for script in args.scripts:
        if not Path(script).is_file():
            parser.exit(2, f"error: --scripts {script}: no such file\n")
    for flag in flags:
        if flag.split("=")[0] in SWEEP_FLAGS:
            parser.exit(2, f"error: {flag} after `--`: the sweep sets {', '.join(SWEEP_FLAGS)} itself\n")
    if args.checkpoint_frequency < 1:
        parser.exit(2, f"error: --checkpoint-frequency {args.checkpoint_frequency}: must be positive\n")
    return args, flags


def main(argv: list[str]) -> int:
    """Plan the runs, run the unfinished ones on Ray, print the summary; returns the exit status."""
    args, flags = parse_args(argv)
    runs = plan_runs(args, flags)
    if not all(done_record(run) for run in runs):  # a sweep that has nothing left to run starts no Ray
        connect(args.address, args.num_cpus)
    try:
        records = run_sweep(runs, args.cpus_per_run, args.gpus_per_run, args.max_retries)
    except KeyboardInterrupt:
        ray.shutdown()  # stops the workers, and with them their runs (die_with_parent_hook)
        print("\ninterrupted (Ctrl-C): the unfinished runs stopped and keep their last checkpoints; "
              "run the same command again to continue", flush=True)
        return 130
    print_summary(records)
    ray.shutdown()
    return 0 if all(is_finished(record) for record in records) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
