import pytest
from helpers import load_script

DQN_SCRIPTS = ["dqn_atari", "double_dqn_atari"]


@pytest.fixture(params=DQN_SCRIPTS)
def dqn(request):
    """Each DQN script, imported as a module: the tests that take it hold for every one of them."""
    return load_script(request.param)
