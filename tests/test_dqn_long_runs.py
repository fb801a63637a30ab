"""Long runs that survive: checkpoints and resume, evaluation and videos, and clear errors."""

import signal
import subprocess
import time

import cv2
import gymnasium as gym
import numpy as np
import pytest
import torch
from fixture_envs import make_pixel_env
from helpers import catch_run, one_error_line, run_dir_of, run_script, script_command
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def interrupt_at_first_checkpoint(dqn, monkeypatch):
    """Make the run stop, as after Ctrl-C, right after it has written its first checkpoint."""
    real_save = dqn.save_checkpoint

    def save_then_interrupt(*args):
        real_save(*args)
        monkeypatch.setattr(dqn, "save_checkpoint", real_save)
        signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(dqn, "save_checkpoint", save_then_interrupt)


def flatten(value, prefix=""):
    """Nested dicts/lists of tensors and numbers → {path: leaf}, to compare two checkpoints leaf by leaf."""
    if isinstance(value, dict):
        return {k: v for key, item in value.items() for k, v in flatten(item, f"{prefix}/{key}").items()}
    if isinstance(value, (list, tuple)):
        return {k: v for i, item in enumerate(value) for k, v in flatten(item, f"{prefix}/{i}").items()}
    return {prefix: value}


def assert_same_leaves(a, b, skip=()):
    a, b = flatten(a), flatten(b)
    assert a.keys() == b.keys()
    for key in a:
        if not key.startswith(skip):
            same = torch.equal(a[key], b[key]) if isinstance(a[key], torch.Tensor) else a[key] == b[key]
            assert same, key


# ------------------------------------------------------------------ resume
def test_resuming_restores_weights_optimizer_replay_and_rngs_exactly(dqn, pixel_games, tmp_path):
    catch_run(dqn, tmp_path, total_timesteps=270, checkpoint_frequency=270)  # ends at an episode boundary
    path = run_dir_of(tmp_path) / "checkpoint.pt"
    saved = torch.load(path, weights_only=True)
    # resume with nothing left to do: the checkpoint written at the end is the state as restored
    dqn.main(dqn.parse_args(["--resume", str(path.parent)]))
    assert_same_leaves(saved, torch.load(path, weights_only=True), skip=("/args/resume",))


@pytest.mark.parametrize("num_envs", [1, 3])
def test_train_interrupt_resume_train_equals_an_uninterrupted_run(dqn, pixel_games, tmp_path, monkeypatch, num_envs):
    uninterrupted = catch_run(dqn, tmp_path / "a", num_envs=num_envs).state_dict()
    interrupt_at_first_checkpoint(dqn, monkeypatch)
    with pytest.raises(SystemExit) as stop:  # 270 agent steps = 30 Catch episodes of every env: a boundary for all
        catch_run(dqn, tmp_path / "b", checkpoint_frequency=270, num_envs=num_envs)
    assert stop.value.code == 130  # interrupted: not a finished run
    run_dir = run_dir_of(tmp_path / "b")
    assert torch.load(run_dir / "checkpoint.pt", weights_only=True)["global_step"] == 270
    resumed = dqn.main(dqn.parse_args(["--resume", str(run_dir)])).state_dict()
    for name in uninterrupted:
        assert torch.equal(uninterrupted[name], resumed[name]), name


def test_a_kill_during_a_checkpoint_write_leaves_the_previous_checkpoint(dqn, pixel_games, tmp_path, monkeypatch):
    real_save, calls = torch.save, []

    def save_half_then_die(obj, path):
        calls.append(path)
        if len(calls) == 2:  # the second checkpoint: write part of the file, then die
            open(path, "wb").write(b"PK\x03\x04 half a zip file")
            raise MemoryError("killed mid-write")
        real_save(obj, path)

    monkeypatch.setattr(torch, "save", save_half_then_die)
    with pytest.raises(MemoryError):
        catch_run(dqn, tmp_path, checkpoint_frequency=150)
    monkeypatch.setattr(torch, "save", real_save)
    run_dir = run_dir_of(tmp_path)
    assert torch.load(run_dir / "checkpoint.pt", weights_only=True)["global_step"] == 150
    dqn.main(dqn.parse_args(["--resume", str(run_dir)]))
    assert torch.load(run_dir / "checkpoint.pt", weights_only=True)["global_step"] == 400


def test_a_run_killed_with_sigkill_resumes_with_a_continuous_tensorboard_record(tmp_path):
    flags = ["--total-timesteps", "2400", "--learning-starts", "1000", "--buffer-size", "2400",
             "--checkpoint-frequency", "1400", "--eval-episodes", "1"]
    process = subprocess.Popen(script_command("dqn_atari.py", *flags), cwd=tmp_path, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    while not list(tmp_path.glob("runs/*/checkpoint.pt")) and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(2)  # let it log past the checkpoint: the resume must drop those points
    process.kill()
    process.wait()
    (run_dir,) = (tmp_path / "runs").iterdir()
    result = run_script("dqn_atari.py", tmp_path, "--resume", str(run_dir))
    assert result.returncode == 0 and "resumed" in result.stdout and "lost" in result.stdout
    events = EventAccumulator(str(run_dir))
    events.Reload()
    steps = [event.step for event in events.Scalars("losses/td_loss")]
    # one point every 25 updates = 100 steps, from the first after learning starts to the end, none twice
    assert steps == list(range(1100, 2401, 100))
    assert events.Scalars("eval/episodic_return")[-1].step == 2400


def test_the_update_count_depends_on_agent_steps_not_on_the_number_of_envs(dqn, pixel_games, tmp_path, monkeypatch):
    real_td_loss, updates = dqn.td_loss, {}
    for num_envs in (1, 4):
        monkeypatch.setattr(dqn, "td_loss", lambda *args, n=num_envs: updates.update({n: updates.get(n, 0) + 1})
                            or real_td_loss(*args))
        catch_run(dqn, tmp_path / str(num_envs), num_envs=num_envs, train_frequency=4)
    assert updates == {1: (400 - 100) // 4, 4: (400 - 100) // 4}


# ------------------------------------------------------------------ evaluation and videos
class FireQ(torch.nn.Module):
    """Always prefers action 1 (FIRE)."""

    def forward(self, x):
        return torch.eye(4)[1].expand(len(x), -1)


class Played(gym.wrappers.RecordEpisodeStatistics):
    """Episode statistics of its own (apart from the script's) and every action the agent played."""

    def __init__(self, env):
        super().__init__(env, stats_key="counted")
        self.actions = []

    def step(self, action):
        self.actions.append(action)
        return super().step(action)


@pytest.fixture
def counted_breakout(dqn, monkeypatch):
    """The script's Breakout envs, each remembering the flags it was made with, counting its steps and actions."""
    real_make_env, made = dqn.make_env, []

    def make(env_id, seed, idx, **kwargs):
        env = Played(real_make_env(env_id, seed, idx, **kwargs)())
        made.append((kwargs, env))
        return lambda: env

    monkeypatch.setattr(dqn, "make_env", make)
    return made


def test_evaluation_plays_full_games_with_the_eval_epsilon(dqn, counted_breakout):
    returns = dqn.evaluate(FireQ(), "BreakoutNoFrameskip-v4", 0, 2, 0.25, torch.device("cpu")).returns
    ((kwargs, env),) = counted_breakout
    assert kwargs["training"] is False and len(returns) == 2
    assert env.unwrapped.ale.game_over()  # the second game ran to its end: all five lives
    assert list(env.return_queue) == returns and len(env.actions) > 300
    # FIRE, the greedy action, with probability 1 − ε, plus ε/4 when a random one of the 4 actions is FIRE
    assert np.mean(np.equal(env.actions, 1)) == pytest.approx(0.75 + 0.25 / 4, abs=0.08)


def test_a_recorded_video_opens_with_opencv_and_has_one_frame_per_step(dqn, counted_breakout, tmp_path):
    path = str(tmp_path / "game.mp4")
    dqn.evaluate(FireQ(), "BreakoutNoFrameskip-v4", 0, 1, 0.05, torch.device("cpu"), [path])
    video = cv2.VideoCapture(path)
    assert video.isOpened()
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == counted_breakout[0][1].length_queue[0]  # the screen acted on
    # the screen, and beside it a panel as wide with the Q-values the agent acted on
    assert (int(video.get(cv2.CAP_PROP_FRAME_WIDTH)), int(video.get(cv2.CAP_PROP_FRAME_HEIGHT))) == (160 + 160, 210)


class Closes(gym.Wrapper):
    """Remembers whether it was closed."""

    closed = False

    def close(self):
        self.closed = True
        super().close()


@pytest.fixture
def built_envs(dqn, monkeypatch):
    """The script's envs are pixel games (as with `pixel_games`), listed as they are built; each remembers whether
    it was closed."""
    built = []

    def make(env_id, seed, idx, **kwargs):
        thunk = make_pixel_env(env_id, seed, idx, **kwargs)

        def build():
            built.append(Closes(thunk()))
            return built[-1]

        return build

    monkeypatch.setattr(dqn, "make_env", make)
    return built


@pytest.fixture
def saved_model(dqn, tmp_path):
    """An untrained network for Catch's 3 actions, saved as --save-model saves one."""
    torch.save(dqn.QNetwork(3).state_dict(), tmp_path / "model.pt")
    return tmp_path / "model.pt"


def test_eval_only_prints_every_game_and_the_mean(dqn, pixel_games, saved_model, tmp_path, capsys):
    dqn.main(dqn.Args(env_id="Catch", eval_only=True, model_path=str(saved_model), eval_episodes=4,
                      runs_dir=str(tmp_path / "runs")))
    lines = capsys.readouterr().out.splitlines()
    returns = [float(line.split("return ")[1]) for line in lines if line.startswith("eval game")]
    assert len(returns) == 4 and set(returns) <= {-1.0, 1.0}
    assert lines[-1] == f"mean return over 4 games: {np.mean(returns):.2f}"
    assert not (tmp_path / "runs").exists()  # nothing to write without --capture-video


def test_eval_only_with_capture_video_records_every_game_in_a_run_folder(dqn, pixel_games, saved_model, tmp_path,
                                                                        capsys):
    dqn.main(dqn.Args(env_id="Catch", eval_only=True, model_path=str(saved_model), eval_episodes=2,
                      capture_video=True, runs_dir=str(tmp_path / "runs")))
    videos = run_dir_of(tmp_path / "runs") / "videos"
    assert capsys.readouterr().out.splitlines()[-1].endswith(f" (videos in {videos})")
    assert sorted(path.name for path in videos.iterdir()) == ["eval-0.mp4", "eval-1.mp4"]
    for path in videos.iterdir():  # a Catch game is 9 steps: a frame per step, the screen the agent acted on
        assert int(cv2.VideoCapture(str(path)).get(cv2.CAP_PROP_FRAME_COUNT)) == 9


def test_eval_only_checks_the_model_file_before_it_builds_an_env(dqn, built_envs, tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        dqn.main(dqn.Args(env_id="Catch", eval_only=True, model_path=str(tmp_path / "missing.pt")))
    assert stop.value.code == 2 and "--model-path" in one_error_line(capsys.readouterr().err)
    assert built_envs == []


def test_eval_only_closes_every_env_it_builds(dqn, built_envs, saved_model):
    dqn.main(dqn.Args(env_id="Catch", eval_only=True, model_path=str(saved_model), eval_episodes=1))
    assert len(built_envs) == 2 and all(env.closed for env in built_envs)  # to count the actions, and to play


def test_a_non_finite_loss_stops_training_and_keeps_the_last_checkpoint(dqn, pixel_games, tmp_path, monkeypatch,
                                                                        capsys):
    real_td_loss, calls = dqn.td_loss, []

    def nan_after_30_updates(*args):
        calls.append(1)
        loss, q_sa = real_td_loss(*args)
        return (loss * float("nan") if len(calls) > 30 else loss), q_sa

    monkeypatch.setattr(dqn, "td_loss", nan_after_30_updates)
    with pytest.raises(SystemExit) as stop:
        catch_run(dqn, tmp_path, checkpoint_frequency=200)
    assert stop.value.code == 1 and "TD loss became nan at step 224" in one_error_line(capsys.readouterr().err)
    saved = torch.load(run_dir_of(tmp_path) / "checkpoint.pt", weights_only=True)
    assert saved["global_step"] == 200
    assert all(torch.isfinite(w).all() for w in saved["q_network"].values())


# ------------------------------------------------------------------ bad input
BAD_FLAGS = [
    ({"total_timesteps": 0}, "--total-timesteps 0"),
    ({"num_envs": 0}, "--num-envs 0"),
    ({"batch_size": -1}, "--batch-size -1"),
    ({"buffer_size": 16}, "--buffer-size 16: smaller than --batch-size 32"),
    ({"learning_starts": 10_000_000}, "--learning-starts 10000000"),
    ({"tau": 0.0}, "--tau 0.0"),
    ({"tau": 1.5}, "--tau 1.5"),
    ({"gamma": 1.0}, "--gamma 1.0"),
    ({"end_e": 0.5, "start_e": 0.2}, "--end-e 0.5: must be in [0, --start-e 0.2]"),
    ({"eval_only": True}, "--model-path None: --eval-only needs one"),
    ({"eval_only": True, "model_path": "missing.pt"}, "--model-path missing.pt"),
    ({"resume": "missing_run"}, "--resume missing_run"),
    ({"resume": "corrupt.pt"}, "--resume corrupt.pt: not a readable checkpoint"),
    ({"seed": -1}, "--seed -1: must be in [0, 2**32)"),
    ({"seed": 2**32}, "--seed 4294967296: must be in [0, 2**32)"),
    ({"learning_rate": float("nan")}, "--learning-rate nan: must be positive and finite"),
    ({"learning_rate": float("inf")}, "--learning-rate inf: must be positive and finite"),
    ({"start_e": float("nan")}, "--start-e nan: must be in [0, 1]"),
    ({"end_e": float("nan")}, "--end-e nan: must be in [0, --start-e 1]"),
    ({"exploration_fraction": float("nan")}, "--exploration-fraction nan: must be in (0, 1]"),
    ({"start_e": 5.0}, "--start-e 5.0: must be in [0, 1]"),
    ({"start_e": -3.0, "end_e": -4.0}, "--start-e -3.0: must be in [0, 1]"),
    ({"exploration_fraction": 2.0}, "--exploration-fraction 2.0: must be in (0, 1]"),
    ({"gamma": float("nan")}, "--gamma nan: must be in [0, 1)"),
    ({"tau": float("nan")}, "--tau nan: must be in (0, 1]"),
    ({"eval_epsilon": float("inf")}, "--eval-epsilon inf: must be in [0, 1]"),
]


@pytest.mark.parametrize("flags, message", BAD_FLAGS, ids=[m.split(":")[0] for _, m in BAD_FLAGS])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(dqn, tmp_path, monkeypatch, capsys, flags, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "corrupt.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(SystemExit) as stop:
        dqn.main(dqn.Args(runs_dir=str(tmp_path / "runs"), **flags))
    assert stop.value.code == 2 and message in one_error_line(capsys.readouterr().err)
    assert [p.name for p in tmp_path.iterdir()] == ["corrupt.pt"]
