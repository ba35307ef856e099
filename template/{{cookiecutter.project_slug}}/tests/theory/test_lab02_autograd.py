"""Lab 02 (labs/theory/02-autograd.md): the autograd engine agrees with torch.autograd.

`labs check 02` runs this file. The reference for every gradient is torch.autograd in float64;
`gradient_check` is the check the command runs too. The last tests break the engine on purpose
(a wrong derivative, `=` instead of `+=`, the wrong order) and make sure the check notices.
"""

import json
import math
import random
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.cli import main
from {{ cookiecutter.package_name }}.labs import load_settings
from {{ cookiecutter.package_name }}.theory.autograd import (
    BINARY,
    MLP,
    OPERATIONS,
    TOLERANCE,
    AutogradSettings,
    Value,
    check_op,
    compare_with_torch,
    gradient_check,
    random_program,
    train,
)

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "theory" / "autograd.yaml"


@pytest.mark.parametrize("op", list(OPERATIONS))
def test_each_op_matches_torch(op):
    assert check_op(op, random.Random(0), tries=10) <= TOLERANCE, f"backward rule of {op}"


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_random_graphs_match_torch(seed):
    rng = random.Random(seed)
    for _ in range(10):
        leaves, program = random_program(rng, 40)
        assert {op for op, *_ in program} == set(OPERATIONS)  # every op, in every graph
        used = [k for op, i, j, _ in program for k in ((i, j) if op in BINARY else (i,))]
        assert max(used.count(k) for k in set(used)) >= 3  # shared subexpressions
        assert compare_with_torch(leaves, program) <= TOLERANCE


def test_gradients_accumulate_when_a_node_is_used_twice():
    a = Value(3.0)
    (a * a).backward()
    assert a.grad == 6.0  # d(a^2)/da = 2a
    b = Value(-1.5)
    (b + b).backward()
    assert b.grad == 2.0
    x = Value(0.5)
    h = x.tanh()  # h feeds two branches
    (h * 2 + h.exp()).backward()
    t = math.tanh(0.5)
    assert x.grad == pytest.approx((2 + math.exp(t)) * (1 - t**2), rel=1e-12)


def test_backward_adds_to_the_gradients_of_parameters_until_zeroed():
    w = Value(2.0)
    (w * 3).backward()
    (w * 3).backward()
    assert w.grad == 6.0  # two graphs, two contributions, as in PyTorch
    model = MLP(2, [4], 1, random.Random(0))
    model([0.5, -1.0])[0].backward()
    assert any(p.grad != 0 for p in model.parameters())
    model.zero_grad()
    assert all(p.grad == 0 for p in model.parameters())
    assert len(model.parameters()) == 4 * 3 + 5  # (2 weights + 1 bias) x 4, then 4 + 1


def test_a_deep_chain_backpropagates_without_recursion():
    x = Value(0.3)
    y = x
    for _ in range(2500):  # 5,000 operations deep: a recursive graph walk would overflow
        y = y * 0.999 + x
    y.backward()
    assert x.grad == pytest.approx(sum(0.999**k for k in range(2501)), rel=1e-9)


def test_engine_errors_say_what_is_wrong():
    with pytest.raises(ValueError, match="positive"):
        Value(-1.0).log()
    with pytest.raises(ValueError, match="negative"):
        Value(-2.0) ** 0.5
    with pytest.raises(TypeError, match="plain number"):
        Value(2.0) ** Value(2.0)


def test_mlp_learns_the_two_moons():
    settings = AutogradSettings(samples=60, steps=40)
    result = train(settings, log=lambda line: None)
    assert result["train_accuracy"] >= 0.95
    history = result["history"]
    assert history[-1]["loss"] < 0.3 * history[0]["loss"]


def test_config_file_holds_the_defaults():
    assert load_settings(AutogradSettings(), CONFIG, []) == AutogradSettings()


def test_command_reports_a_match(capsys):
    args = ["--set", "steps=5", "--set", "samples=20", "--set", "check_graphs=2"]
    assert main(["theory", "autograd", *args, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["gradient_check"]["matches"] is True
    assert result["gradient_check"]["max_difference"] <= TOLERANCE
    assert len(result["training"]["history"]) == 5
    assert main(["theory", "autograd", *args, "--set", "log_every=2"]) == 0
    out = capsys.readouterr().out
    assert "step    4" in out and "training accuracy" in out
    assert out.rstrip().splitlines()[-1].startswith("Verdict: gradients match torch.autograd")


@pytest.mark.parametrize(
    ("setting", "message"),
    [("steps=0", "steps"), ("hidden=16,0", "hidden"), ("momentum=1", "momentum"), ("lr=x", "lr")],
)
def test_bad_setting_is_a_one_line_error(capsys, setting, message):
    assert main(["theory", "autograd", "--set", setting]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


# ----------------------------------------------------------------------------- broken on purpose


def tanh_wrong_derivative(self):
    t = math.tanh(self.data)
    out = Value(t, (self,), "tanh")

    def _backward(grad):
        self.grad += (1 - t) * grad  # should be 1 - t**2

    out._backward = _backward
    return out


def mul_overwrites(self, other):
    other = other if isinstance(other, Value) else Value(other)
    out = Value(self.data * other.data, (self, other), "*")

    def _backward(grad):
        self.grad = other.data * grad  # should be +=: a node used twice loses a share
        other.grad = self.data * grad

    out._backward = _backward
    return out


def backward_in_the_wrong_order(self):
    self.grad = 1.0
    for node in self.topological_order():  # should be reversed(): output first
        node._backward(node.grad)


def backward_breadth_first(self):
    self.grad = 1.0
    queue, seen = [self], {self}
    while queue:  # a node can pass its gradient on before all its users have added theirs
        node = queue.pop(0)
        node._backward(node.grad)
        for child in node.children:
            if child not in seen:
                seen.add(child)
                queue.append(child)


def backward_recursive(self):
    order, visited = [], set()

    def visit(node):  # one Python call per level of the graph
        if node not in visited:
            visited.add(node)
            for child in node.children:
                visit(child)
            order.append(node)

    visit(self)
    self.grad = 1.0
    for node in reversed(order):
        node._backward(node.grad)


@pytest.mark.parametrize(
    ("name", "broken", "wrong"),
    [
        ("tanh", tanh_wrong_derivative, ["tanh"]),
        ("__mul__", mul_overwrites, ["a*b", "a/b", "-a"]),
        ("backward", backward_in_the_wrong_order, list(OPERATIONS)),
        ("backward", backward_breadth_first, []),  # only graphs with shared nodes show it
    ],
)
def test_the_check_catches_a_broken_engine(monkeypatch, name, broken, wrong):
    monkeypatch.setattr(Value, name, broken)
    result = gradient_check(seed=0, graphs=3, ops=30)
    assert not result["matches"]
    assert set(wrong) <= set(result["wrong_ops"])
    if name == "tanh":
        assert result["wrong_ops"] == ["tanh"]  # it also says which op


def test_a_recursive_graph_walk_fails_the_deep_chain(monkeypatch):
    monkeypatch.setattr(Value, "backward", backward_recursive)
    x = Value(2.0)
    (x * 3).backward()
    assert x.grad == 3.0  # right on a small graph...
    with pytest.raises(RecursionError):
        test_a_deep_chain_backpropagates_without_recursion()  # ...not on a deep one
