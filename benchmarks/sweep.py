"""Run a benchmark sweep on Ray: every script × env id × seed as one run, each run one Ray task.

Each run is the command a user would type, started as a subprocess on whichever node Ray picks:

    python SCRIPT --runs-dir RUNS_DIR --run-name NAME --env-id ENV --seed SEED [--checkpoint-frequency K] FLAGS...

with NAME = `{env id, '/' -> '_'}__{script name}__{seed}`, so a run's folder does not depend on when it started, and
RUNS_DIR relative to the folder the sweep was started in, where the runs start too (the scripts write their flags
into the event file, and a path of this machine there would go wherever the event file goes). Everything after
`--run-name NAME` is the run's flags: what decides what it computes.

Fault tolerance. Scripts that checkpoint (the DQN scripts; the sweep asks each script's `--help`) get
`--checkpoint-frequency K`. When a run's process dies by a signal (SIGKILL, the out-of-memory killer), or the Ray
worker or node that ran it dies, Ray retries the task (up to `--max-retries` times), and the retry continues
the run with `python SCRIPT --resume RUNS_DIR/NAME FLAGS...` from its last checkpoint (the script checks the
flags against it); the script drops the TensorBoard points logged after that checkpoint, so no step appears twice.
A script without checkpoints (the tabular one: a run takes seconds) restarts from scratch in a fresh folder. A run
that exits with a non-zero status by itself is not retried, and never counts as finished: status 130 (someone
pressed Ctrl-C in it) is reported as interrupted, any other (a bad flag, a full disk) as failed; the other runs go on.

Re-running the same command continues the sweep: a finished run has `RUNS_DIR/NAME/sweep_done.json` (its flags,
exit status, wall time, the node that ran it) and is skipped; an unfinished one resumes from its checkpoint. A run
counts for a sweep only if it ran with exactly the flags this sweep gives it: the flags a run started with are kept
in `RUNS_DIR/sweep_logs/NAME.json`, and a run folder that finished, or would be resumed, with other flags stops the
sweep with one line before Ray starts (a new sweep needs a new `--runs-dir`). The runs' console output goes to
`RUNS_DIR/sweep_logs/NAME.log` (each attempt appended).

Results that last. With `--results-dir DIR`, the sweep copies each finished run's TensorBoard event files to
`DIR/NAME/` (TensorBoard's file names kept, so `tensorboard --logdir DIR` shows every run under its name), with
`DIR/NAME/run.json`: the script, the flags the sweep gave the run, its exit status and the wall time of its last
attempt. Nothing else goes there: no checkpoint, model, picture or video, and run.json names no path, host or node of
this machine, so DIR can be committed. A run whose folder is in DIR with the same flags is skipped; one with other
flags stops the sweep with one line. So the same command on another machine, with an empty RUNS_DIR and DIR as
committed, goes on where the last session stopped. The sweep commits nothing itself: it prints a line for every run it
copies, and a second shell commits them as they come (`git commit DIR` commits DIR only; with nothing new it says so
and the loop goes on):

    while sleep 300; do git add DIR && git commit -q -m "sweep: finished runs" DIR; done

Where Ray runs. Without `--address` Ray starts on this machine with every process on 127.0.0.1 (nothing listens on
another address, no dashboard). With `--address HOST:PORT` the sweep joins an existing cluster (`ray start --head`
on one node, `ray start --address HOST:PORT` on the others); RUNS_DIR and the scripts must then be at the same
paths on every node (a shared filesystem).

Run (from the repository root):
    python benchmarks/sweep.py --scripts dqn_atari.py double_dqn_atari.py \\
        --env-ids BreakoutNoFrameskip-v4 PongNoFrameskip-v4 --seeds 1 2 3 --runs-dir bench_runs \\
        --results-dir benchmarks/results/atari100k -- --total-timesteps 100000 --learning-starts 10000
    python benchmarks/sweep.py --scripts qlearning_frozenlake.py --env-ids FrozenLake-v1 --seeds 1 2 3 \\
        --runs-dir bench_runs -- --total-episodes 2000
    python benchmarks/report.py bench_runs --out bench_runs/report

Prints one line per finished, interrupted or failed run (with the node's IP when the cluster has more than one node)
and, at the end, every run's folder and status. Exit status 0 when every run has finished (and, with --results-dir,
its results were copied), 1 when one has not, 2 for a bad command line, 130 after Ctrl-C (which stops the
unfinished runs at their last checkpoints: the same command continues them). A bad command line stops with one
`error:` line before Ray starts: a flag after `--` that the sweep sets itself (in any spelling the scripts accept:
`--env_id=X` is `--env-id X`), a script, env id or seed given twice, a negative count, a run size (`--cpus-per-run`,
`--gpus-per-run`) that no node has, so that Ray would wait for it forever (a cluster is judged by the nodes it has
when the sweep joins it, after connecting and before any run starts), a --results-dir that is the --runs-dir.
"""

import argparse
import ctypes
import functools
import ipaddress
import json
import logging
import math
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import ray
from ray._private.resource_and_label_spec import ResourceAndLabelSpec

DONE_MARKER = "sweep_done.json"
RESULTS_RECORD = "run.json"  # in a run's results folder, beside its event files
EVENT_FILES = "events.out.tfevents.*"  # TensorBoard's names for the files that hold a run's curves
CHECKPOINT = "checkpoint.pt"
LOGS = "sweep_logs"
# Flags the sweep sets itself for every run; passing them after `--` would contradict it
RESERVED_FLAGS = ("--env-id", "--seed", "--runs-dir", "--run-name", "--resume", "--checkpoint-frequency")
INTERRUPTED = 130  # the scripts' exit status after Ctrl-C: the run stopped before its end
PR_SET_PDEATHSIG = 1  # prctl(2) option: the signal the kernel sends a process when its parent dies


@dataclass(frozen=True)
class Run:
    """One script × env id × seed of the sweep: everything a Ray worker needs to start or continue it."""

    script: str  # absolute path
    env_id: str
    seed: int
    runs_dir: str  # absolute path
    common_flags: tuple[str, ...]  # the flags after `--`, passed to every run
    checkpoint_frequency: int | None  # None: the script has no checkpoints, so a retry starts it again
    cwd: str  # the folder the sweep was started in: the runs start there, as if typed in the same shell

    @property
    def name(self) -> str:
        return run_name(self.env_id, self.script, self.seed)

    @property
    def folder(self) -> Path:
        return Path(self.runs_dir) / self.name

    @property
    def flags(self) -> list[str]:
        """Every flag the run is given but where it writes (--runs-dir, --run-name): what decides what it computes.
        Its done marker records them, and a finished run counts for a sweep only if they are this sweep's."""
        flags = ["--env-id", self.env_id, "--seed", str(self.seed)]
        if self.checkpoint_frequency is not None:
            flags += ["--checkpoint-frequency", str(self.checkpoint_frequency)]
        return flags + list(self.common_flags)


def run_name(env_id: str, script: str, seed: int) -> str:
    """A run's folder name, the same whenever it runs: `{env id, '/' -> '_'}__{script name}__{seed}`."""
    return f"{env_id.replace('/', '_')}__{Path(script).stem}__{seed}"


class RunKilled(Exception):
    """The run's process died by a signal: Ray retries the task, and the retry resumes from the checkpoint."""


# ---- The sweep ---------------------------------------------------------------------------------------------------
def run_sweep(runs: list[Run], finished: dict[str, dict], cpus_per_run: float, gpus_per_run: float,
              max_retries: int, results_dir: str | None) -> list[dict]:
    """Run every run not in `finished` (the records of the runs an earlier sweep finished, by name) as a Ray task
    (Ray must be connected) and wait for all of them; print one line per run as it ends, and copy the results of
    every finished run to `results_dir` (unless None). Returns one record per run, in the order of `runs`."""
    records = {}
    for run in runs:
        if run.name in finished:
            print(progress_line(finished[run.name]))
            records[run.name] = keep_results(run, finished[run.name], results_dir)
    task = ray.remote(execute_run).options(
        num_cpus=cpus_per_run, num_gpus=gpus_per_run, max_retries=max_retries, retry_exceptions=[RunKilled],
        scheduling_strategy="SPREAD")  # long runs: fill the nodes evenly rather than the driver's node first
    pending = {task.remote(run): run for run in runs if run.name not in records}
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)  # back every second, so Ctrl-C is seen
        for ref in ready:
            run = pending.pop(ref)
            record = task_record(ref, run)
            print(progress_line(record, node_ip=several_nodes()), flush=True)
            records[run.name] = keep_results(run, record, results_dir)
    return [records[run.name] for run in runs]


def execute_run(run: Run) -> dict:
    """The Ray task: run `run` to its end as a subprocess, continuing its checkpoint if an earlier attempt left
    one. Returns the run's record (also written as the done marker when it exits with status 0)."""
    resume = can_resume(run)
    log_file(run).parent.mkdir(parents=True, exist_ok=True)
    if not resume:  # an earlier attempt left nothing to continue; the script refuses a --run-name that exists
        shutil.rmtree(run.folder, ignore_errors=True)
        # kept until a later sweep asks: it continues this run only with the same flags
        started_record(run).write_text(json.dumps({"flags": run.flags}))
    command = run_command(run, resume)
    started = time.time()
    with open(log_file(run), "a") as log:
        log.write(f"$ {' '.join(command)}\n")
        log.flush()
        process = subprocess.run(command, cwd=run.cwd, stdout=log, stderr=subprocess.STDOUT,
                                 preexec_fn=die_with_parent_hook())
    if process.returncode < 0:
        raise RunKilled(f"{run.name}: killed by {signal.Signals(-process.returncode).name}")
    # only status 0 is a finished run; after Ctrl-C in the run (130) it is unfinished, and a checkpoint is its last
    status = {0: "finished", INTERRUPTED: "interrupted"}.get(process.returncode, "failed")
    record = dict(name=run.name, folder=str(run.folder), status=status, exit_status=process.returncode,
                  flags=run.flags, wall_time_s=round(time.time() - started, 1), resumed=resume, command=command,
                  log=str(log_file(run)), node_id=ray.get_runtime_context().get_node_id(),
                  node_ip=ray.util.get_node_ip_address(), hostname=socket.gethostname(), worker_pid=os.getpid())
    if status == "finished":
        (run.folder / DONE_MARKER).write_text(json.dumps(record, indent=1))
    return record


def can_resume(run: Run) -> bool:
    """Whether the run continues from a checkpoint an earlier attempt left, rather than starting again."""
    return run.checkpoint_frequency is not None and (run.folder / CHECKPOINT).exists()


def log_file(run: Run) -> Path:
    """Where the run's console output goes, every attempt appended."""
    return Path(run.runs_dir) / LOGS / f"{run.name}.log"


def started_record(run: Run) -> Path:
    """Where the flags a run started with are kept: a resumed run must go on with them."""
    return Path(run.runs_dir) / LOGS / f"{run.name}.json"


def run_command(run: Run, resume: bool) -> list[str]:
    """The command line of one attempt: a fresh start, or `--resume` of the run folder (the script checks the
    flags, passed again, against its checkpoint). Its folders are relative to the folder the run starts in: the
    scripts keep their flags in the event file, which --results-dir copies to be committed."""
    runs_dir = os.path.relpath(run.runs_dir, run.cwd)
    if resume:
        where = ["--resume", os.path.join(runs_dir, run.name)]
    else:
        where = ["--runs-dir", runs_dir, "--run-name", run.name]
    return [sys.executable, run.script] + where + run.flags


def die_with_parent_hook():
    """On Linux, a function for the child to call before it starts the script: the kernel then kills the run
    when the Ray worker waiting on it dies, so a retry never meets the old process still writing to the folder.
    None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved here, in the parent: the child only calls it
    return functools.partial(prctl, PR_SET_PDEATHSIG, signal.SIGKILL)


def task_record(ref: ray.ObjectRef, run: Run) -> dict:
    """The record a finished task returned, or a failed record when the task raised after its last retry (the
    process killed every time, the worker or node lost every time)."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayError as error:
        cause = str(error).strip().splitlines()[-1]
        return dict(name=run.name, folder=str(run.folder), status="failed", exit_status=None, error=cause,
                    log=str(log_file(run)))


def progress_line(record: dict, node_ip: bool = False) -> str:
    """One line for one run: its name, status and exit status, wall time (and, if `node_ip`, the IP of the node
    that ran it: worth a word only when the cluster has more than one) or error."""
    if record.get("exit_status") is None:
        detail = record["error"]
    else:
        detail = f"exit {record['exit_status']}, {record['wall_time_s']:.0f} s"
        detail += f", node {record['node_ip']}" if node_ip else ""
    return f"{record['status']:>11}  {record['name']}  ({detail})"


def several_nodes() -> bool:
    """Whether the Ray cluster (connected) has more than one node alive."""
    return sum(node["Alive"] for node in ray.nodes()) > 1


def print_summary(records: list[dict]):
    """Every run's folder and status; where a run did not finish, where its output is."""
    finished = sum(is_finished(record) for record in records)
    print(f"\nsummary: {finished} of {len(records)} runs finished")
    for record in records:
        exit_status = "-" if record.get("exit_status") is None else record["exit_status"]
        log = "" if is_finished(record) else f"  (output: {record['log']})"
        print(f"  {record['status']:<26} exit {exit_status!s:<4} {record['folder']}{log}")


def is_finished(record: dict) -> bool:
    return record["status"] in ("finished", "skipped (finished before)", "skipped (results kept)")


# ---- Results that last: a finished run's event files and flags, in a folder meant to be committed ----------------
def keep_results(run: Run, record: dict, results_dir: str | None) -> dict:
    """Copy the results of a finished run to `results_dir/NAME/` (unless `results_dir` is None or they are there
    already) and print where they went. Returns the run's record; a copy that failed (a full disk) makes it
    unfinished, so the sweep exits 1 and the same command copies it again."""
    if results_dir is None or not is_finished(record) or (Path(results_dir) / run.name).exists():
        return record
    try:
        folder = copy_results(run, record, Path(results_dir))
    except OSError as error:
        print(f"{'not copied':>11}  {run.name}  ({error.strerror}: {error.filename})", flush=True)
        return record | dict(status="finished, not copied")
    print(f"{'copied':>11}  {run.name}  (its event files and {RESULTS_RECORD} to {folder})", flush=True)
    return record


def copy_results(run: Run, record: dict, results_dir: Path) -> Path:
    """Copy the run's TensorBoard event files (their names and subfolders kept) and a record of what ran to
    `results_dir/NAME/`, and return that folder. Nothing else: a checkpoint or model is large, pictures and videos are
    in the event files already; and the record names no path, host or node of this machine."""
    folder = results_dir / run.name
    # made under another name and renamed when complete: a copy cut short is never taken for a run's results
    copying = results_dir / f"{run.name}.copying"
    shutil.rmtree(copying, ignore_errors=True)
    copying.mkdir(parents=True)
    for event_file in sorted(run.folder.rglob(EVENT_FILES)):
        target = copying / event_file.relative_to(run.folder)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(event_file, target)
    kept = dict(script=Path(run.script).name, flags=run.flags, exit_status=record["exit_status"],
                wall_time_s=record["wall_time_s"], resumed=record["resumed"])
    (copying / RESULTS_RECORD).write_text(json.dumps(kept, indent=1) + "\n")
    copying.rename(folder)
    return folder


def check_kept_results(runs: list[Run], results_dir: str) -> dict[str, dict]:
    """The records of the runs whose results are in `results_dir` (an earlier session's, committed), by name, marked
    as skipped. A results folder of a run with other flags than this sweep gives it stops the sweep with one line:
    its curves would be counted as this sweep's."""
    kept = {}
    for run in runs:
        folder = Path(results_dir) / run.name
        if not folder.exists():
            continue
        fields = {"flags": list, "exit_status": int, "wall_time_s": (int, float)}
        record = read_record(folder / RESULTS_RECORD, fields, "--results-dir")
        if difference := flag_difference(record["flags"], run.flags):
            fail(f"{folder} holds the results of a run with other flags than this sweep gives it ({difference}); "
                 f"a new sweep needs a new --results-dir")
        kept[run.name] = record | dict(name=run.name, folder=str(folder), status="skipped (results kept)")
    return kept


# ---- Earlier sweeps in the same --runs-dir: reuse or continue a run only with the same flags --------------------
def check_earlier_attempts(runs: list[Run]) -> dict[str, dict]:
    """The records of the runs an earlier sweep finished, by name, marked as skipped. A run folder that finished,
    or that would be resumed, with other flags than this sweep gives it stops the sweep with one line: its results
    would be counted as this sweep's, or one run would mix two sweeps' flags."""
    finished = {}
    for run in runs:
        if (run.folder / DONE_MARKER).exists():
            fields = {"flags": list, "exit_status": int, "wall_time_s": (int, float), "resumed": bool}
            record, state = read_record(run.folder / DONE_MARKER, fields), "finished"
        elif can_resume(run):
            record, state = read_record(started_record(run), {"flags": list}), "started"
        else:  # nothing to reuse: the run starts again in a fresh folder
            continue
        if difference := flag_difference(record["flags"], run.flags):
            fail(f"{run.folder} {state} with other flags than this sweep gives it ({difference}); "
                 f"a new sweep needs a new --runs-dir")
        if state == "finished":
            finished[run.name] = record | dict(name=run.name, folder=str(run.folder),
                                               status="skipped (finished before)")
    return finished


def read_record(path: Path, fields: dict[str, type | tuple], folder_flag: str = "--runs-dir") -> dict:
    """A JSON object the sweep wrote (a done marker, a run's start record, a results record) with `fields` of these
    types; one line and exit status 2 if it is missing or damaged, since then nobody can tell what the run ran with.
    `folder_flag` names the sweep's folder it is in: a new sweep needs a new one."""
    remedy = f"a new sweep needs a new {folder_flag}"
    try:
        record = json.loads(path.read_text())
    except (FileNotFoundError, NotADirectoryError):
        fail(f"{path}: missing, so the flags the run started with are unknown; {remedy}")
    except OSError as error:
        fail(f"{path}: cannot read it ({error.strerror})", status=1)
    except ValueError as error:  # not JSON, or not UTF-8
        fail(f"{path}: damaged, not JSON ({type(error).__name__}); {remedy}")
    if not isinstance(record, dict) or not all(isinstance(record.get(key), kind) for key, kind in fields.items()):
        fail(f"{path}: not a record of this sweep (it needs {', '.join(fields)}); {remedy}")
    if not all(isinstance(flag, str) for flag in record["flags"]):
        fail(f"{path}: damaged, its flags are not all text; {remedy}")
    return record


def flag_difference(earlier: list[str], now: list[str]) -> str | None:
    """None when two command lines' flags are the same as the scripts read them: the same flags with the same
    values in the same order (order decides which of two values of one flag wins), whatever the spelling. Otherwise
    the flags that differ, in words."""
    earlier_flags, now_flags = flag_groups(earlier), flag_groups(now)
    if earlier_flags == now_flags:
        return None
    only_earlier = [shlex.join(flag) for flag in earlier_flags if flag not in now_flags]
    only_now = [shlex.join(flag) for flag in now_flags if flag not in earlier_flags]
    if not only_earlier and not only_now:
        return "the same flags in another order"
    return f"it ran with [{' '.join(only_earlier)}], the sweep now gives [{' '.join(only_now)}]"


def flag_groups(flags: list[str]) -> list[list[str]]:
    """The flags as the scripts' parser (tyro) reads them: each flag with the values after it, spelled one way
    (`--env_id=X` is `--env-id X`)."""
    groups = []
    for token in flags:
        if token.startswith("--"):
            name, equals, value = token.partition("=")
            groups.append([flag_name(name)] + ([value] if equals else []))
        elif groups:
            groups[-1].append(token)
        else:  # a value before any flag: the script refuses it, the comparison keeps it
            groups.append([token])
    return groups


def flag_name(token: str) -> str:
    """The flag a `--` token names as tyro reads it: `--env_id=X` names `--env-id`."""
    return token.partition("=")[0].replace("_", "-")


# ---- Plumbing: connecting to Ray, the command line, main() -------------------------------------------------------
def start_ray(args: argparse.Namespace):
    """Start Ray on this machine, or join the cluster at --address, refusing up front a run size (--cpus-per-run,
    --gpus-per-run) that no node has: Ray would wait for such a node forever."""
    if args.address is None:
        where = "this machine's Ray" + ("" if args.num_cpus is None else f" (--num-cpus {args.num_cpus})")
        check_schedulable([local_node_resources(args.num_cpus)], args.cpus_per_run, args.gpus_per_run, where)
    connect(args.address, args.num_cpus)
    if args.address is not None:  # the cluster's nodes are known once the sweep has joined it
        nodes = [node["Resources"] for node in ray.nodes() if node["Alive"]]
        check_schedulable(nodes, args.cpus_per_run, args.gpus_per_run, f"the cluster at {args.address}")


def local_node_resources(num_cpus: int | None) -> dict:
    """The resources `ray.init` gives this machine's node (with --num-cpus, that many CPUs), worked out as Ray does
    it (its CPU count honours a container's limit, its GPU count CUDA_VISIBLE_DEVICES), without starting Ray."""
    return ResourceAndLabelSpec(num_cpus=num_cpus).resolve(is_head=True, node_ip_address="127.0.0.1").to_resource_dict()


def check_schedulable(nodes: list[dict], cpus_per_run: float, gpus_per_run: float, where: str):
    """Refuse a run that no node (its Ray resources: {"CPU": 2.0, "GPU": 1.0, ...}) can ever take."""
    if any(node.get("CPU", 0) >= cpus_per_run and node.get("GPU", 0) >= gpus_per_run for node in nodes):
        return
    for flag, asked, resource in (("--cpus-per-run", cpus_per_run, "CPU"), ("--gpus-per-run", gpus_per_run, "GPU")):
        most = max((node.get(resource, 0) for node in nodes), default=0)
        if most < asked:
            fail(f"{flag} {asked:g}: no node of {where} has that many {resource}s (at most {most:g}), so no run "
                 f"could ever start")
    fail(f"--cpus-per-run {cpus_per_run:g} --gpus-per-run {gpus_per_run:g}: no node of {where} has both, so no run "
         f"could ever start")


def connect(address: str | None, num_cpus: int | None):
    """Start Ray on this machine on 127.0.0.1 only, or join the cluster at `address`."""
    if address is None or is_loopback(address):
        keep_ray_on_loopback()
    if address is None:  # "local": a new instance, never one that `ray start` left running on this machine
        # Ray 2.60 warns that it turned token authentication on, as it does by default for a new local instance:
        # news only to someone who would turn it off. Its other warnings still show.
        logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
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
    """Every script × env id × seed, seed by seed: a sweep that stops early has every script and game at its first
    seeds (Ray starts the runs in this order)."""
    checkpoints = {script: args.checkpoint_frequency if has_checkpoints(script) else None for script in args.scripts}
    return [Run(script=str(Path(script).resolve()), env_id=env_id, seed=seed,
                runs_dir=str(Path(args.runs_dir).resolve()), common_flags=tuple(flags),
                checkpoint_frequency=checkpoints[script], cwd=os.getcwd())
            for seed in args.seeds for env_id in args.env_ids for script in args.scripts]


def has_checkpoints(script: str) -> bool:
    """Whether the script has a `--checkpoint-frequency` flag (asks its `--help`)."""
    help_text = subprocess.run([sys.executable, script, "--help"], capture_output=True, text=True).stdout
    return "--checkpoint-frequency" in help_text


USAGE = "%(prog)s --scripts SCRIPT ... --env-ids ENV_ID ... [options] [-- FLAGS ...]"
EPILOG = f"""FLAGS, everything after `--`, go to every run as they are: the scripts' own flags (the sweep sets
{', '.join(RESERVED_FLAGS)} itself).

example, from the repository root:
  python benchmarks/sweep.py --scripts dqn_atari.py double_dqn_atari.py --env-ids BreakoutNoFrameskip-v4 \\
      --seeds 1 2 3 --results-dir benchmarks/results/atari100k -- --total-timesteps 100000"""


class OneLineParser(argparse.ArgumentParser):
    """argparse, with one `error:` line for a bad command line instead of the usage and a line."""

    def error(self, message: str):
        fail(message)


def fail(message: str, status: int = 2):
    """Stop with one line on stderr, never a traceback: exit status 2 for a bad command line, 1 for a fault."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(status)


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """The sweep's own flags, and the flags after `--` that go to every run; refuses what could never make a sweep."""
    own, flags = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    parser = OneLineParser(description=__doc__.split("\n")[0], usage=USAGE, epilog=EPILOG,
                           formatter_class=argparse.RawDescriptionHelpFormatter)  # the epilog's lines kept
    parser.add_argument("--scripts", nargs="+", required=True, metavar="SCRIPT",
                        help="the scripts to run, e.g. dqn_atari.py (required)")
    parser.add_argument("--env-ids", nargs="+", required=True, metavar="ENV_ID",
                        help="the env ids every script runs on (required)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3], metavar="SEED",
                        help="the seeds of every script × env id (default: 1 2 3)")
    parser.add_argument("--runs-dir", default="bench_runs", metavar="DIR",
                        help="the folder for the run folders and their logs (default: %(default)s)")
    parser.add_argument("--results-dir", metavar="DIR",
                        help="where each finished run's event files and run.json are copied, to be committed; a run "
                             "with results there is skipped (default: none, nothing copied)")
    parser.add_argument("--address", metavar="HOST:PORT",
                        help="an existing Ray cluster to join (default: none, Ray starts on this machine, 127.0.0.1)")
    parser.add_argument("--num-cpus", type=int, metavar="N",
                        help="CPUs the Ray on this machine offers, without --address (default: all of them)")
    parser.add_argument("--cpus-per-run", type=float, default=1.0, metavar="N",
                        help="CPUs one run reserves (default: %(default)g)")
    parser.add_argument("--gpus-per-run", type=float, default=0.0, metavar="N",
                        help="GPUs one run reserves, may be fractional (default: %(default)g)")
    parser.add_argument("--checkpoint-frequency", type=int, default=10_000, metavar="K",
                        help="agent steps between checkpoints, for the scripts that have them (default: %(default)s)")
    parser.add_argument("--max-retries", type=int, default=3, metavar="N",
                        help="how often Ray retries a run whose process or worker died (default: %(default)s)")
    args = parser.parse_args(own)
    check_args(args, flags)
    return args, flags


def check_args(args: argparse.Namespace, flags: list[str]):
    """Refuse, with one line, a command line that could never make a sweep, before anything is written or run."""
    for script in args.scripts:
        if not Path(script).is_file():
            fail(f"--scripts {script}: no such file")
    for flag in flags:
        if flag in ("-h", "--help"):
            fail(f"{flag} after `--`: every run would print its help and exit 0, as if finished; ask a script itself")
        if flag.startswith("--") and flag_name(flag) in RESERVED_FLAGS:
            fail(f"{flag} after `--`: the sweep sets {', '.join(RESERVED_FLAGS)} itself (in any spelling)")
    # every run has a folder of its own, named after its env id, script and seed: two values of one list that name
    # the same folder (`--seeds 1 1`, one script by two paths) would make two runs take turns in it, each deleting
    # the last
    first_env_id, first_script, first_seed = args.env_ids[0], args.scripts[0], args.seeds[0]
    for flag, values, names in (
            ("--scripts", args.scripts, [run_name(first_env_id, script, first_seed) for script in args.scripts]),
            ("--env-ids", args.env_ids, [run_name(env_id, first_script, first_seed) for env_id in args.env_ids]),
            ("--seeds", args.seeds, [run_name(first_env_id, first_script, seed) for seed in args.seeds])):
        if clash := same_folder(values, names):
            fail(f"{flag} {clash[0]} {clash[1]}: both would run in the folder {clash[2]}, which holds one run")
    for seed in args.seeds:
        if not 0 <= seed < 2**32:
            fail(f"--seeds {seed}: must be in [0, 2**32), the scripts' seed range")
    counts = [("--checkpoint-frequency", args.checkpoint_frequency, 1), ("--max-retries", args.max_retries, 0),
              ("--num-cpus", args.num_cpus, 0)]
    for flag, value, least in counts:
        if value is not None and value < least:
            fail(f"{flag} {value}: must be {least} or more")
    for flag, value in (("--cpus-per-run", args.cpus_per_run), ("--gpus-per-run", args.gpus_per_run)):
        if not (math.isfinite(value) and value >= 0 and round(value, 4) == value):
            fail(f"{flag} {value:g}: must be 0 or more, in Ray's steps of 0.0001")
    if args.address is not None and args.num_cpus is not None:
        fail(f"--num-cpus {args.num_cpus}: only for the Ray this sweep starts; a cluster's nodes say theirs "
             f"(`ray start --num-cpus`)")
    if args.address == "":
        fail("--address '': empty; leave it out to start Ray on this machine")
    for flag, folder in (("--runs-dir", args.runs_dir), ("--results-dir", args.results_dir)):
        if folder == "":
            fail(f"{flag} '': empty; name a folder")
        if folder is None:
            continue
        existing = next(path for path in [Path(folder), *Path(folder).parents] if path.exists())  # at worst "." or "/"
        if not existing.is_dir():
            fail(f"{flag} {folder}: {existing} is not a folder")
    if args.results_dir is not None and Path(args.results_dir).resolve() == Path(args.runs_dir).resolve():
        fail(f"--results-dir {args.results_dir}: the --runs-dir itself; the results are copies kept apart from the "
             f"runs")


def same_folder(values: list, names: list[str]) -> tuple | None:
    """The first two of `values` whose runs would have the same folder name (`names`, in the same order), and that
    name; None if every name differs."""
    for index, name in enumerate(names):
        if name in names[:index]:
            return values[names.index(name)], values[index], name
    return None


def main(argv: list[str]) -> int:
    """Plan the runs, run the unfinished ones on Ray, print the summary; returns the exit status."""
    args, flags = parse_args(argv)
    runs = plan_runs(args, flags)
    finished = check_earlier_attempts(runs)
    if args.results_dir is not None:  # a run whose results are kept is not run again, whatever RUNS_DIR holds
        finished |= check_kept_results(runs, args.results_dir)
    if len(finished) < len(runs):  # a sweep that has nothing left to run starts no Ray
        start_ray(args)
    try:
        records = run_sweep(runs, finished, args.cpus_per_run, args.gpus_per_run, args.max_retries,
                            args.results_dir)
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
