"""Nothing lost, nothing silent: every fault a user can cause or meet ends in one line, and the run stays intact."""

import os
import signal
import subprocess
import time

import numpy as np
import pytest
import torch
from fixture_envs import make_catch_env
from helpers import load_script
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from test_dqn_long_runs import catch_run, run_dir_of
from test_dqn_scripts import run_script


@pytest.fixture
def dqn():
    """DQN stands for both scripts here: what these tests reach is the same text in both (test_double_dqn.py pins
    the pair), which halves their time."""
    return load_script("dqn_atari")


def one_error_line(capsys, status, stop) -> str:
    """The single stderr line of a run that stopped with `status`."""
    err = capsys.readouterr().err
    assert stop.value.code == status and err.count("\n") == 1 and err.startswith("error: "), err
    return err


def checkpointed_run(dqn, tmp_path, **overrides):
    """A finished 270-step Catch run with a checkpoint at its end; returns its run folder."""
    catch_run(dqn, tmp_path, total_timesteps=270, checkpoint_frequency=270, **overrides)
    return run_dir_of(tmp_path)


# ------------------------------------------------------------------ resume: the checkpoint's run, nothing else
def test_a_checkpoint_of_the_other_script_is_refused(dqn, tmp_path, capsys):
    run_dir = checkpointed_run(dqn, tmp_path)
    other = load_script("double_dqn_atari")
    with pytest.raises(SystemExit) as stop:
        other.main(other.parse_args(["--resume", str(run_dir)]), make_env=make_catch_env)
    assert f"written by {dqn.__name__}.py; continue it with that script" in one_error_line(capsys, 2, stop)


def test_a_saved_model_is_not_a_checkpoint(dqn, tmp_path, capsys):
    torch.save(dqn.QNetwork(3).state_dict(), tmp_path / "model.pt")
    with pytest.raises(SystemExit) as stop:
        dqn.parse_args(["--resume", str(tmp_path / "model.pt")])
    assert "not a checkpoint (a model saved with --save-model is for --eval-only" in one_error_line(capsys, 2, stop)


def test_a_bare_checkpoint_file_name_resumes_in_its_own_run_folder(dqn, tmp_path, monkeypatch):
    run_dir = checkpointed_run(dqn, tmp_path)
    monkeypatch.chdir(run_dir)
    args = dqn.parse_args(["--resume", "checkpoint.pt", "--total-timesteps", "360"])
    dqn.main(args, make_env=make_catch_env)
    assert not (run_dir / "runs").exists() and [p.name for p in tmp_path.iterdir()] == [run_dir.name]
    events = EventAccumulator(str(run_dir))
    events.Reload()
    assert events.Scalars("eval/episodic_return")[-1].step == 360


def test_flags_not_given_on_resume_take_the_checkpoints_values_and_the_checks_see_them(dqn, tmp_path):
    run_dir = checkpointed_run(dqn, tmp_path)  # learning_starts 100, far below the default 80,000
    args = dqn.parse_args(["--resume", str(run_dir), "--total-timesteps", "800"])
    dqn.check_args(args)
    assert (args.learning_starts, args.total_timesteps, args.env_id) == (100, 800, "Catch")


@pytest.mark.parametrize("flags, message", [
    (["--seed", "1"], "--seed 1: the checkpoint's run used 2"),  # typed, though it equals the default
    (["--total-timesteps", "200"], "--total-timesteps 200: the checkpoint is at step 270"),
])
def test_resume_refuses_a_typed_flag_that_contradicts_the_checkpoint(dqn, tmp_path, capsys, flags, message):
    run_dir = checkpointed_run(dqn, tmp_path, seed=2)
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        dqn.main(dqn.parse_args(["--resume", str(run_dir), *flags]), make_env=make_catch_env)
    assert message in one_error_line(capsys, 2, stop)


# ------------------------------------------------------------------ run folders are never shared
def test_runs_started_in_the_same_second_get_distinct_folders(dqn, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(time, "time", lambda: 1_800_000_000.0)
    args = dqn.Args(env_id="Catch", runs_dir=str(tmp_path))
    folders = [os.path.basename(dqn.new_run_dir(args)) for _ in range(3)]
    assert folders == [f"Catch__{args.exp_name}__1__1800000000{suffix}" for suffix in ("", "-2", "-3")]
    with pytest.raises(SystemExit) as stop:
        dqn.new_run_dir(dqn.Args(runs_dir=str(tmp_path), run_name=folders[0]))
    assert "already exists (continue it with --resume" in one_error_line(capsys, 2, stop)


# ------------------------------------------------------------------ nothing broken is ever saved
@pytest.mark.parametrize("flags, step", [({"checkpoint_frequency": 200}, 200), ({"save_model": True}, 400)])
def test_non_finite_weights_are_never_saved(dqn, tmp_path, monkeypatch, capsys, flags, step):
    real_update, steps_copied = dqn.update_target, iter(range(50, 401, 50))  # a target copy every 50 steps

    def poison_when_saved(target_network, q_network, tau):
        real_update(target_network, q_network, tau)
        if next(steps_copied) == step:  # right before the save: the online weights become NaN
            with torch.no_grad():
                next(q_network.parameters()).fill_(float("nan"))

    monkeypatch.setattr(dqn, "update_target", poison_when_saved)
    with pytest.raises(SystemExit) as stop:
        catch_run(dqn, tmp_path, **flags)
    assert f"weights became non-finite by step {step}" in one_error_line(capsys, 1, stop)
    assert [p.name for p in run_dir_of(tmp_path).iterdir() if not p.name.startswith("events")] == []


@pytest.fixture
def tmpfs(tmp_path):
    """A 24 MiB tmpfs (root only): room for one Catch checkpoint (~16 MB) and not for a second beside it."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount)]).returncode:
        pytest.skip("mounting a small tmpfs needs root")
    yield mount
    subprocess.run(["umount", "--lazy", str(mount)], check=True)  # lazy: a closed file may still count as in use


def test_a_full_disk_at_a_checkpoint_is_one_line_and_keeps_the_previous_checkpoint(dqn, tmpfs, capsys):
    with pytest.raises(SystemExit) as stop:
        catch_run(dqn, tmpfs, checkpoint_frequency=100)
    assert "MiB free there" in one_error_line(capsys, 1, stop)
    run_dir = run_dir_of(tmpfs)
    assert not list(run_dir.glob("*.tmp"))
    assert torch.load(run_dir / "checkpoint.pt", weights_only=True)["global_step"] == 100


def test_a_read_only_runs_folder_is_one_line_and_exit_1(dqn, tmpfs):
    subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)
    result = run_script(dqn, tmpfs.parent, "--runs-dir", str(tmpfs / "runs"), "--total-timesteps", "100",
                        "--learning-starts", "50", "--buffer-size", "100")
    assert result.returncode == 1 and result.stderr.count("\n") == 1 and "Read-only file system" in result.stderr


# ------------------------------------------------------------------ Ctrl-C
class CtrlCAtStep:
    """An env that raises SIGINT (as Ctrl-C does) during its `at`-th step and counts the steps from then on."""

    def __init__(self, env, at, counts):
        self.env, self.at, self.counts, self.steps = env, at, counts, 0

    def __getattr__(self, name):
        return getattr(self.env, name)

    def step(self, action):
        self.steps += 1
        if self.steps == self.at:
            signal.raise_signal(signal.SIGINT)
            self.counts.append(0)
        if self.counts:
            self.counts[-1] += 1
        return self.env.step(action)


def test_ctrl_c_during_an_evaluation_stops_within_one_agent_step_and_a_resume_plays_it(dqn, tmp_path, capsys):
    steps_after_ctrl_c = []

    def make_env(env_id, seed, idx, training=True, render_mode=None):
        thunk = make_catch_env(env_id, seed, idx)
        return thunk if training else lambda: CtrlCAtStep(thunk(), 5, steps_after_ctrl_c)

    run_dir = checkpointed_run(dqn, tmp_path, eval_episodes=50)
    args = dqn.parse_args(["--resume", str(run_dir), "--total-timesteps", "360"])
    dqn.main(args, make_env=make_env)
    assert steps_after_ctrl_c == [1]  # the step in progress when Ctrl-C came, and none after it
    assert "evaluation at step 360 interrupted: not logged\n" in capsys.readouterr().out
    events = EventAccumulator(str(run_dir))
    events.Reload()
    assert [e.step for e in events.Scalars("eval/episodic_return")] == [270]  # the interrupted one is not logged
    checkpoint = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    assert (checkpoint["global_step"], checkpoint["evaluation_pending"]) == (360, True)

    # the resume (nothing left to train) plays the final evaluation Ctrl-C abandoned, as the run would have
    q_network = dqn.main(dqn.parse_args(["--resume", str(run_dir)]), make_env=make_catch_env)
    expected = dqn.evaluate(q_network, make_catch_env, "Catch", args.seed + 360, 50, args.eval_epsilon,
                            torch.device("cpu"))
    events.Reload()
    assert [(e.step, e.value) for e in events.Scalars("eval/episodic_return")][1:] == [
        (360, pytest.approx(np.mean(expected.returns)))]
    assert torch.load(run_dir / "checkpoint.pt", weights_only=True)["evaluation_pending"] is False


def test_a_second_ctrl_c_during_a_checkpoint_write_stops_at_once_and_keeps_the_last_checkpoint(dqn, tmp_path,
                                                                                              monkeypatch):
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
def test_the_smallest_replay_the_checks_allow_trains(dqn, tmp_path):
    catch_run(dqn, tmp_path, total_timesteps=60, buffer_size=5, batch_size=4, learning_starts=10, train_frequency=1)
    events = EventAccumulator(str(run_dir_of(tmp_path)))
    events.Reload()
    assert [e.step for e in events.Scalars("eval/episodic_return")] == [60]
