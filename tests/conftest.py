import signal

import pytest
from fixture_envs import make_pixel_env
from helpers import load_script


@pytest.fixture
def dqn():
    """dqn_atari.py, imported as a module. It stands for both DQN scripts: test_double_dqn.py proves that they differ
    only in the docstring and the TD target, and tests what that difference does."""
    return load_script("dqn_atari")


@pytest.fixture
def pixel_games(dqn, monkeypatch):
    """The script makes the small pixel games of tests/fixture_envs.py (Catch, ...) where it would make Atari games."""
    monkeypatch.setattr(dqn, "make_env", make_pixel_env)


@pytest.fixture
def offline_wandb(tmp_path, monkeypatch):
    """W&B in offline mode, writing under tmp_path; torn down after the test, so that the next test's run (in the
    same process) reads its own WANDB_DIR again."""
    wandb = pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    yield tmp_path
    wandb.teardown()


@pytest.fixture(autouse=True)
def sigint_handler_restored():
    """The scripts' Ctrl-C handling, run in-process, may leave SIGINT ignored (the tabular script ignores a second
    Ctrl-C while it stops): restore it, or the subprocesses of later tests inherit it and never see their Ctrl-C."""
    handler = signal.getsignal(signal.SIGINT)
    yield
    signal.signal(signal.SIGINT, handler)
