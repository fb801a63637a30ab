"""Nothing lost, nothing silent: every fault a user can cause or meet ends in one line, and the run stays intact."""

import functools
import operator
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
import zipfile

import gymnasium as gym
import numpy as np
import pytest
import torch
from fixture_envs import make_pixel_env
from helpers import catch_args, catch_run, load_script, mounted_tmpfs, one_error_line, run_dir_of, run_script
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def error_line(capsys, stop, status: int = 2) -> str:
    """The one error line of a run that stopped with exit `status`."""
    assert stop.value.code == status
    return one_error_line(capsys.readouterr().err)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """One finished Catch run of 270 steps (seed 2) with a checkpoint at its end, made once: tests resume copies."""
    dqn, runs_dir = load_script("dqn_atari"), tmp_path_factory.mktemp("finished")
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(dqn, "make_env", make_pixel_env)
        catch_run(dqn, runs_dir, total_timesteps=270, checkpoint_frequency=270, seed=2)
    return run_dir_of(runs_dir)


@pytest.fixture
def run_copy(finished_run, tmp_path):
    return shutil.copytree(finished_run, tmp_path / finished_run.name)


def resume_refused(dqn, run_dir, capsys, *flags) -> str:
    """The one error line (exit 2) with which resuming `run_dir` stops; nothing is written into the run folder."""
    before = sorted(path.name for path in run_dir.iterdir())
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        dqn.main(dqn.parse_args(["--resume", str(run_dir), *(flags or ["--total-timesteps", "360"])]))
    assert sorted(path.name for path in run_dir.iterdir()) == before  # no new event file
    return error_line(capsys, stop)


# ------------------------------------------------------------------ resume: the checkpoint's run, nothing else
def test_a_checkpoint_of_the_other_script_is_refused(run_copy, capsys):
    other = load_script("double_dqn_atari")
    assert "written by dqn_atari.py; continue it with that script" in resume_refused(other, run_copy, capsys)


def test_a_saved_model_is_not_a_checkpoint(dqn, tmp_path, capsys):
    torch.save(dqn.QNetwork(3).state_dict(), tmp_path / "model.pt")
    with pytest.raises(SystemExit) as stop:
        dqn.parse_args(["--resume", str(tmp_path / "model.pt")])
    assert "not a checkpoint (a model saved with --save-model is for --eval-only" in error_line(capsys, stop)


def test_a_bare_checkpoint_file_name_resumes_in_its_own_run_folder(dqn, pixel_games, run_copy, monkeypatch):
    monkeypatch.chdir(run_copy)
    dqn.main(dqn.parse_args(["--resume", "checkpoint.pt", "--total-timesteps", "360"]))
    assert not (run_copy / "runs").exists() and [p.name for p in run_copy.parent.iterdir()] == [run_copy.name]
    events = EventAccumulator(str(run_copy))
    events.Reload()
    assert events.Scalars("eval/episodic_return")[-1].step == 360


def test_flags_not_given_on_resume_take_the_checkpoints_values_and_the_checks_see_them(dqn, finished_run):
    args = dqn.parse_args(["--resume", str(finished_run), "--total-timesteps", "800"])
    dqn.check_args(args)  # learning_starts 100, far below the default 80,000
    assert (args.learning_starts, args.total_timesteps, args.env_id, args.seed) == (100, 800, "Catch", 2)


@pytest.mark.parametrize("flags, message", [
    (["--seed", "1"], "--seed 1: the checkpoint's run used 2"),  # typed, though it equals the default
    (["--gamma", "0.5"], "--gamma 0.5: the checkpoint's run used 0.99"),
    (["--total-timesteps", "200"], "--total-timesteps 200: the checkpoint is at step 270"),
])
def test_resume_refuses_a_typed_flag_that_contradicts_the_checkpoint(dqn, pixel_games, run_copy, capsys, flags,
                                                                    message):
    assert message in resume_refused(dqn, run_copy, capsys, *flags)


def test_a_run_with_several_envs_ends_at_the_first_multiple_of_num_envs_and_resumes_as_its_own(dqn, pixel_games,
                                                                                               tmp_path):
    catch_run(dqn, tmp_path, total_timesteps=301, num_envs=3, checkpoint_frequency=150)
    run_dir = run_dir_of(tmp_path)
    assert torch.load(run_dir / "checkpoint.pt", weights_only=True)["global_step"] == 303  # 101 steps of 3 envs
    dqn.main(dqn.parse_args(["--resume", str(run_dir)]))  # its own flags: nothing to do
    events = EventAccumulator(str(run_dir))
    events.Reload()
    assert [e.step for e in events.Scalars("eval/episodic_return")] == [303]


# ------------------------------------------------------------------ a damaged or foreign checkpoint is never resumed


def test_a_checkpoint_with_a_damaged_weight_record_is_refused_not_resumed(dqn, pixel_games, run_copy, capsys):
    path = run_copy / "checkpoint.pt"
    with zipfile.ZipFile(path) as archive:  # the online network's 3136×512 layer, the first record of that size
        record = next(info for info in archive.infolist() if info.file_size == 3136 * 512 * 4)
    with open(path, "r+b") as file:  # flip 64 bytes in its middle: the record no longer matches its CRC
        file.seek(record.header_offset + 26)  # the local header's name and extra lengths; the data follows them
        name_length, extra_length = struct.unpack("<HH", file.read(4))
        file.seek(record.header_offset + 30 + name_length + extra_length + record.file_size // 2)
        flipped = bytes(byte ^ 0xFF for byte in file.read(64))
        file.seek(-64, os.SEEK_CUR)
        file.write(flipped)
    assert f"damaged ({record.filename} fails its CRC check)" in resume_refused(dqn, run_copy, capsys)


DELETED = object()  # (a part of the checkpoint to delete)
DAMAGED_CHECKPOINTS = [  # (the keys to a part of the checkpoint, what it becomes, the error line's words)
    (("rng", "envs"), DELETED, "does not fit this script (another version, or damaged): KeyError 'envs'"),
    (("rng", "action_space"), DELETED, "KeyError 'action_space'"),
    (("replay", "rng"), DELETED, "KeyError 'rng'"),
    (("rng", "envs"), [], "ValueError zip() argument 2 is shorter than argument 1"),  # fewer envs than the run's
    (("q_network", "network.9.weight"), torch.zeros(4, 512), "size mismatch for network.9.weight"),  # 4 actions
    (("args", "foo"), 1, "its flags are not this script's"),
    (("args", "tau"), DELETED, "its flags are not this script's"),
    (("args",), [], "its flags are not this script's"),
    (("args", "loss"), "foo", "its --loss 'foo' is not a value of that flag"),
    (("args", "batch_size"), 32.0, "its --batch-size 32.0 is not a value of that flag"),
    (("global_step",), "270", "its step '270' is not a step count"),
    (("wandb_id",), 7, "its W&B run id 7 is not one"),
    (("q_network", "network.0.bias"), torch.full((32,), float("nan")), "weights (or optimizer state) are not finite"),
    (("optimizer", "state", 0, "exp_avg"), torch.full((32, 4, 8, 8), float("inf")), "are not finite"),
]


@pytest.mark.parametrize("keys, value, message", DAMAGED_CHECKPOINTS, ids=[
    "/".join(map(str, keys)) + (" deleted" if value is DELETED else f" {type(value).__name__}")
    for keys, value, _ in DAMAGED_CHECKPOINTS])
def test_a_checkpoint_of_another_version_or_damaged_is_one_line_and_writes_nothing(dqn, pixel_games, run_copy, capsys,
                                                                                   keys, value, message):
    path = run_copy / "checkpoint.pt"
    checkpoint = torch.load(path, weights_only=True)
    part = functools.reduce(operator.getitem, keys[:-1], checkpoint)
    if value is DELETED:
        del part[keys[-1]]
    else:
        part[keys[-1]] = value
    torch.save(checkpoint, path)
    assert message in resume_refused(dqn, run_copy, capsys)


# ------------------------------------------------------------------ run folders are never shared
def test_runs_started_in_the_same_second_get_distinct_folders(dqn, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(time, "time", lambda: 1_800_000_000.0)
    args = dqn.Args(env_id="Catch", runs_dir=str(tmp_path))
    folders = [os.path.basename(dqn.new_run_dir(args)) for _ in range(3)]
    assert folders == [f"Catch__{args.exp_name}__1__1800000000{suffix}" for suffix in ("", "-2", "-3")]
    with pytest.raises(SystemExit) as stop:
        dqn.new_run_dir(dqn.Args(runs_dir=str(tmp_path), run_name=folders[0]))
    assert "already exists (choose another name)" in error_line(capsys, stop)  # no checkpoint to resume


BAD_NAMES = [
    ({"exp_name": "a/b"}, "--exp-name 'a/b': must fit in the run folder's and the model's names"),
    ({"exp_name": "x" * 240}, "must fit in the run folder's"),  # the default run folder's name passes 255 bytes
    ({"run_name": "a/b"}, "--run-name 'a/b': must be a folder's name"),
    ({"run_name": "/elsewhere"}, "--run-name '/elsewhere': must be a folder's name"),
    ({"run_name": ""}, "--run-name '': must be a folder's name"),
    ({"run_name": ".."}, "--run-name '..': must be a folder's name: not '', '.' or '..'"),
    ({"run_name": "x" * 256}, "at most 255 bytes"),
    ({"resume": ""}, "--resume '': must name a run folder or its checkpoint file"),
    ({"runs_dir": "a_file"}, "--runs-dir 'a_file': is, or is inside, a file: it must be a folder"),
    ({"runs_dir": "a_file/runs"}, "--runs-dir 'a_file/runs': is, or is inside, a file"),
]


@pytest.mark.parametrize("flags, message", BAD_NAMES, ids=[message.split(":")[0] for _, message in BAD_NAMES])
def test_a_name_or_folder_that_cannot_hold_the_run_is_refused_before_anything_runs(dqn, pixel_games, tmp_path,
                                                                                   monkeypatch, capsys, flags, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a_file").write_text("")
    with pytest.raises(SystemExit) as stop:
        catch_run(dqn, tmp_path / "runs", **flags)
    assert message in error_line(capsys, stop)
    assert [path.name for path in tmp_path.iterdir()] == ["a_file"]


# ------------------------------------------------------------------ nothing starts that cannot finish
@pytest.mark.parametrize("argv, line", [
    (["--buffer-size", "1e12"], "error: --buffer-size: invalid literal for int() with base 10: '1e12' (see --help)"),
    (["--bogus", "3"], "error: unrecognized: --bogus 3 (see --help)"),
    (["--loss", "foo"], "error: --loss: 'foo' is not one of mse, huber"),
    (["--seed"], "error: --seed: the value is missing (see --help)"),
])
def test_a_flag_tyro_cannot_parse_is_one_error_line(dqn, capsys, argv, line):
    with pytest.raises(SystemExit) as stop:
        dqn.parse_args(argv)
    assert error_line(capsys, stop) == line


def test_a_minibatch_the_device_cannot_hold_is_refused_before_the_run_starts(dqn, monkeypatch, capsys):
    cuda = torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (16 * 2**30, 80 * 2**30))  # 16 GiB free
    assert dqn.replay_storage(100_000, cuda, batch_size=32) == cuda  # 0.7 GB of frames and a minibatch of 32
    with pytest.raises(SystemExit) as stop:  # 100,000 samples of ~321 KB (two float32 stacks at 113 KB each, ...)
        dqn.replay_storage(100_000, cuda, batch_size=100_000)
    assert ("--batch-size 100000: an update needs 29.9 GiB (321 KB per sample) but 12.8 GiB is free for it on cuda"
            in error_line(capsys, stop))  # 80% of the 16 GiB
    with pytest.raises(SystemExit) as stop:  # 3 TB: more than any host
        dqn.replay_storage(100_000, torch.device("cpu"), batch_size=10**7)
    assert "--batch-size 10000000: an update needs 2991.7 GiB" in error_line(capsys, stop)


def test_track_when_wandb_cannot_start_is_one_line_and_leaves_nothing(dqn, pixel_games, tmp_path, monkeypatch, capsys):
    wandb = pytest.importorskip("wandb")

    def not_logged_in(**kwargs):  # what wandb.init raises without an API key and a terminal (wandb 0.31, by hand)
        raise wandb.errors.UsageError("No API key configured. Use `wandb login` to log in.")

    monkeypatch.setattr(wandb, "init", not_logged_in)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stop:
        catch_run(dqn, tmp_path / "runs", track=True)
    assert error_line(capsys, stop) == ("error: --track: Weights & Biases did not start: No API key configured. "
                                        "Use `wandb login` to log in.")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ nothing broken is ever saved
@pytest.mark.parametrize("flags, step", [({"checkpoint_frequency": 200}, 200), ({"save_model": True}, 400)])
def test_non_finite_weights_are_never_saved(dqn, pixel_games, tmp_path, monkeypatch, capsys, flags, step):
    real_update, steps_copied = dqn.update_target, iter(range(50, 401, 50))  # a target copy every 50 steps

    def poison_when_saved(target_network, q_network, tau):
        real_update(target_network, q_network, tau)
        if next(steps_copied) == step:  # right before the save: the online weights become NaN
            with torch.no_grad():
                next(q_network.parameters()).fill_(float("nan"))

    monkeypatch.setattr(dqn, "update_target", poison_when_saved)
    with pytest.raises(SystemExit) as stop:
        catch_run(dqn, tmp_path, **flags)
    assert f"weights became non-finite by step {step}" in error_line(capsys, stop, 1)
    assert [p.name for p in run_dir_of(tmp_path).iterdir() if not p.name.startswith("events")] == []


@pytest.fixture
def tmpfs(tmp_path):
    """A 24 MiB tmpfs (root only): room for one Catch checkpoint (~16 MB) and not for a second beside it."""
    with mounted_tmpfs(tmp_path / "disk", "size=24m") as mount:
        yield mount


def test_a_full_disk_at_a_checkpoint_is_one_line_and_keeps_the_previous_checkpoint(dqn, pixel_games, tmpfs, capsys):
    with pytest.raises(SystemExit) as stop:
        catch_run(dqn, tmpfs, checkpoint_frequency=100)
    assert "MiB free there" in error_line(capsys, stop, 1)
    run_dir = run_dir_of(tmpfs)
    assert not list(run_dir.glob("*.tmp"))
    assert torch.load(run_dir / "checkpoint.pt", weights_only=True)["global_step"] == 100


def test_a_read_only_runs_folder_is_one_line_and_exit_1(tmpfs):
    subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)
    result = run_script("dqn_atari.py", tmpfs.parent, "--runs-dir", str(tmpfs / "runs"), "--total-timesteps", "100",
                        "--learning-starts", "50", "--buffer-size", "100")
    assert result.returncode == 1 and "Read-only file system" in one_error_line(result.stderr)


# ------------------------------------------------------------------ Ctrl-C
class CtrlCAtStep(gym.Wrapper):
    """An env that raises SIGINT (as Ctrl-C does) during its `at`-th step and counts the steps from then on."""

    def __init__(self, env, at, counts):
        super().__init__(env)
        self.at, self.counts, self.steps = at, counts, 0

    def step(self, action):
        self.steps += 1
        if self.steps == self.at:
            signal.raise_signal(signal.SIGINT)
            self.counts.append(0)
        if self.counts:
            self.counts[-1] += 1
        return self.env.step(action)


@pytest.mark.parametrize("checkpoint_frequency, then", [
    (100, "continue it with --resume {run_dir}"),
    (0, "no checkpoint (--checkpoint-frequency 0), the logs so far are in {run_dir}"),
])
def test_a_first_ctrl_c_exits_130_says_interrupted_and_saves_no_model(dqn, tmp_path, monkeypatch, capsys,
                                                                      checkpoint_frequency, then):
    def ctrl_c_at_step_150(env_id, seed, idx, training=True, render_mode=None):
        thunk = make_pixel_env(env_id, seed, idx)
        return (lambda: CtrlCAtStep(thunk(), 150, [])) if training else thunk

    monkeypatch.setattr(dqn, "make_env", ctrl_c_at_step_150)
    args = catch_args(dqn, 400, learning_starts=100, eval_episodes=2, runs_dir=str(tmp_path), save_model=True,
                      checkpoint_frequency=checkpoint_frequency)
    with pytest.raises(SystemExit) as stop:
        dqn.main(args)
    run_dir, (out, err) = run_dir_of(tmp_path), capsys.readouterr()
    assert stop.value.code == 130 and "done" not in out
    assert one_error_line(err) == f"error: interrupted (Ctrl-C) at step 150 of 400; {then.format(run_dir=run_dir)}"
    assert not (run_dir / f"{args.exp_name}.pt").exists()  # the half-trained network is not the run's model
    if checkpoint_frequency:
        assert torch.load(run_dir / "checkpoint.pt", weights_only=True)["global_step"] == 150


def test_ctrl_c_at_start_up_is_exit_130_and_claims_no_checkpoint(dqn, tmp_path):
    ctrl_c_when_the_envs_are_made = (
        "import runpy, signal, sys, gymnasium\n"
        "gymnasium.vector.SyncVectorEnv = lambda *args, **kwargs: signal.raise_signal(signal.SIGINT)\n"
        "sys.argv = sys.argv[1:]\n"
        "runpy.run_path(sys.argv[0], run_name='__main__')\n")
    result = subprocess.run([sys.executable, "-c", ctrl_c_when_the_envs_are_made, dqn.__file__], cwd=tmp_path,
                            capture_output=True, text=True)
    assert result.returncode == 130 and result.stderr == (
        "error: interrupted (Ctrl-C) outside the training loop, or a second time; what was already saved is intact\n")
    assert list(tmp_path.iterdir()) == []


def test_ctrl_c_during_an_evaluation_stops_within_one_agent_step_and_a_resume_plays_it(dqn, run_copy, monkeypatch,
                                                                                      capsys):
    steps_after_ctrl_c = []

    def ctrl_c_at_evaluation_step_5(env_id, seed, idx, training=True, render_mode=None):
        thunk = make_pixel_env(env_id, seed, idx)
        return thunk if training else lambda: CtrlCAtStep(thunk(), 5, steps_after_ctrl_c)

    monkeypatch.setattr(dqn, "make_env", ctrl_c_at_evaluation_step_5)
    args = dqn.parse_args(["--resume", str(run_copy), "--total-timesteps", "360", "--eval-episodes", "50"])
    with pytest.raises(SystemExit) as stop:  # without its final evaluation the run is not done
        dqn.main(args)
    assert stop.value.code == 130 and steps_after_ctrl_c == [1]  # the step in progress when Ctrl-C came, no other
    assert "evaluation at step 360 interrupted: not logged\n" in capsys.readouterr().out
    events = EventAccumulator(str(run_copy))
    events.Reload()
    assert [e.step for e in events.Scalars("eval/episodic_return")] == [270]  # the interrupted one is not logged
    checkpoint = torch.load(run_copy / "checkpoint.pt", weights_only=True)
    assert (checkpoint["global_step"], checkpoint["evaluation_pending"]) == (360, True)

    # the resume (nothing left to train) plays the final evaluation Ctrl-C abandoned, as the run would have
    monkeypatch.setattr(dqn, "make_env", make_pixel_env)
    q_network = dqn.main(dqn.parse_args(["--resume", str(run_copy)]))
    expected = dqn.evaluate(q_network, "Catch", args.seed + 360, 50, args.eval_epsilon, torch.device("cpu"))
    events.Reload()
    assert [(e.step, e.value) for e in events.Scalars("eval/episodic_return")][1:] == [
        (360, pytest.approx(np.mean(expected.returns)))]
    assert torch.load(run_copy / "checkpoint.pt", weights_only=True)["evaluation_pending"] is False


def test_a_second_ctrl_c_during_a_checkpoint_write_stops_at_once_and_keeps_the_last_checkpoint(dqn, pixel_games,
                                                                                              tmp_path, monkeypatch):
    real_save, saves = torch.save, []

    def save_with_two_ctrl_c(state, path):
        saves.append(path)
        if len(saves) == 2:  # the second checkpoint: Ctrl-C, then Ctrl-C again, before the write ends
            signal.raise_signal(signal.SIGINT)
            signal.raise_signal(signal.SIGINT)
        real_save(state, path)

    monkeypatch.setattr(torch, "save", save_with_two_ctrl_c)
    with pytest.raises(KeyboardInterrupt):  # the command line turns it into one line, exit status 130
        catch_run(dqn, tmp_path, checkpoint_frequency=100)
    run_dir = run_dir_of(tmp_path)
    assert not list(run_dir.glob("*.tmp"))
    assert torch.load(run_dir / "checkpoint.pt", weights_only=True)["global_step"] == 100


# ------------------------------------------------------------------ the smallest sizes the checks allow
def test_the_smallest_replay_the_checks_allow_trains(dqn, pixel_games, tmp_path):
    catch_run(dqn, tmp_path, total_timesteps=60, buffer_size=5, batch_size=4, learning_starts=10, train_frequency=1)
    events = EventAccumulator(str(run_dir_of(tmp_path)))
    events.Reload()
    assert [e.step for e in events.Scalars("eval/episodic_return")] == [60]
