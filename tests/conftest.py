import pytest
from helpers import load_script

DQN_SCRIPTS = ["dqn_atari", "double_dqn_atari"]


@pytest.fixture(params=DQN_SCRIPTS)
def dqn(request):
    """Each DQN script, imported as a module: the tests that take it hold for every one of them."""
    return load_script(request.param)


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
