"""What makes Double DQN different: the online network picks the next action, the target network values it."""

import ast
import difflib
from pathlib import Path

import numpy as np
import pytest
import torch
from fixture_envs import make_pixel_env
from helpers import FixedQ, batch_of, catch_score_after_learning, load_script

dqn, double_dqn = load_script("dqn_atari"), load_script("double_dqn_atari")


def lines_allowed_to_differ(source: str) -> set[int]:
    """Line numbers (1-based) of the module docstring (the idea, the run examples), of td_target, and of the
    lines of td_loss that call td_target: where Double DQN may differ from DQN."""
    tree = ast.parse(source)
    functions = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    docstring, target = tree.body[0], functions["td_target"]
    calls = {node.lineno for node in ast.walk(functions["td_loss"])
             if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "td_target"}
    return set(range(docstring.lineno, docstring.end_lineno + 1)) | set(range(target.lineno, target.end_lineno + 1)) \
        | calls


def test_the_two_scripts_differ_only_in_the_docstring_and_the_double_dqn_target():
    sources = [Path(script.__file__).read_text() for script in (dqn, double_dqn)]
    (a, allowed_a), (b, allowed_b) = ((s.splitlines(), lines_allowed_to_differ(s)) for s in sources)
    differing = 0
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            continue
        differing += (i2 - i1) + (j2 - j1)
        assert set(range(i1 + 1, i2 + 1)) <= allowed_a, f"dqn_atari.py lines {i1 + 1}-{i2} differ: {a[i1:i2]}"
        assert set(range(j1 + 1, j2 + 1)) <= allowed_b, f"double_dqn_atari.py lines {j1 + 1}-{j2} differ: {b[j1:j2]}"
    assert 0 < differing <= 40


def test_double_dqn_target_values_the_online_networks_action_with_the_target_network():
    online = FixedQ([[9, 0, 0], [0, 0, 9]])  # picks action 0 in s'=0, action 2 in s'=1
    target = FixedQ([[1, 5, 2], [3, 6, 4]])  # its own max would be 5 and 6
    data = batch_of(double_dqn, [0, 1], [0, 0], [0, 1], [1.0, 0.0], [0.0, 0.0])
    # y = r + 0.9 · Q_target(s', argmax Q_online(s')) = [1 + 0.9·1, 0 + 0.9·4]; DQN: [1 + 0.9·5, 0 + 0.9·6]
    assert double_dqn.td_target(online, target, data, 0.9).tolist() == pytest.approx([1.9, 3.6])
    assert dqn.td_target(target, data, 0.9).tolist() == pytest.approx([5.5, 5.4])


class TableQ(torch.nn.Module):
    """A learnable Q-table indexed by the first pixel of the observation (the state)."""

    def __init__(self, n_states, n_actions):
        super().__init__()
        self.table = torch.nn.Parameter(torch.zeros(n_states, n_actions))

    def forward(self, x):
        return self.table[x[:, 0, 0, 0].long()]


def mean_q_after_training(script, seed, n_states=4, n_actions=8, updates=2000, target_network_frequency=250):
    """Every reward is N(0, 1) noise and no state is terminal, so the true value of every (s, a) is 0.
    Train a Q-table with the script's own TD loss and target update on uniform random transitions. (With a
    target copied every few updates, online and target errors coincide and both methods overestimate alike.)"""
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    q_network, target_network = TableQ(n_states, n_actions), TableQ(n_states, n_actions)
    optimizer = torch.optim.Adam(q_network.parameters(), lr=0.01)
    for update in range(updates):
        states, next_states = rng.integers(n_states, size=(2, 32))
        data = batch_of(script, states, rng.integers(n_actions, size=32), next_states,
                        rng.normal(size=32).astype(np.float32), np.zeros(32, np.float32))
        loss, _ = script.td_loss(q_network, target_network, data, 0.9, "mse")
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if update % target_network_frequency == 0:
            script.update_target(target_network, q_network, 1.0)
    return q_network.table.mean().item()


@pytest.mark.parametrize("seed", range(5))
def test_double_dqn_overestimates_noisy_values_less_than_dqn(seed):
    dqn_q, double_q = mean_q_after_training(dqn, seed), mean_q_after_training(double_dqn, seed)
    assert dqn_q > 0.25  # the max over noisy estimates: a large positive bias (true value: 0)
    assert abs(double_q) < abs(dqn_q) / 2


@pytest.mark.slow
def test_double_dqn_learns_catch_from_pixels_with_4_envs(tmp_path, monkeypatch):
    """Also the one learning test of several envs' replay streams: the pair test proves that DQN stores and samples
    them with the same code."""
    monkeypatch.setattr(double_dqn, "make_env", make_pixel_env)
    assert catch_score_after_learning(double_dqn, tmp_path, num_envs=4) >= 0.8
