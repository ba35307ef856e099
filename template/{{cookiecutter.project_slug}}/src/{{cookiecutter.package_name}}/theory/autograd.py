"""Lab 02: a scalar autograd engine (micrograd-sized), an MLP built on it, checked against torch.

Every number in a computation is a `Value`. A `Value` remembers the Values it was computed
from (`children`) and how (`op`), so a whole computation is a graph. `backward()` walks that
graph from the output back to the inputs and fills in `grad` = d output / d this value, using
the chain rule one operation at a time:

    out = a * b   =>   a.grad += b * out.grad,   b.grad += a * out.grad

Three rules make it right:

1. **Local derivatives.** Each operation knows its own derivative (its `_backward` closure).
2. **Accumulate with +=.** A Value used twice (`a * a`, or one hidden neuron feeding many) gets
   a contribution from every use; overwriting with `=` would keep only the last one.
3. **Topological order.** A node passes its gradient on only after every node that uses it
   has passed theirs, so `backward()` visits nodes in reverse topological order.

Then `Neuron`, `Layer` and `MLP` are a few lines each, and `train()` fits an MLP to scikit-learn's
two moons by gradient descent. `gradient_check()` tries every operation alone, then random
expression graphs, each evaluated with Values and with float64 torch tensors, and compares
every gradient with torch.autograd's.

This follows Andrej Karpathy's micrograd (MIT licence), rewritten for this lab.
"""

from __future__ import annotations

import contextlib
import gc
import math
import random
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from ..config import require

TOLERANCE = 1e-9  # gradient check: largest allowed difference from torch.autograd
TARGET_ACCURACY = 0.97  # "the MLP learned the two moons": training accuracy at least this


@dataclass
class AutogradSettings:
    seed: int = 0  # the data, the initial weights and the random graphs
    samples: int = 100  # points in scikit-learn's two moons
    noise: float = 0.1  # make_moons' noise: how much the two moons overlap
    hidden: list[int] = field(default_factory=lambda: [16])  # neurons per hidden layer
    steps: int = 50  # full-batch gradient-descent steps
    lr: float = 0.5  # step size at the start; it decays linearly to a tenth of that
    momentum: float = 0.9  # share of the previous step kept in the next one (0: plain descent)
    l2: float = 1e-4  # weight of the L2 penalty (sum of squared parameters)
    log_every: int = 10  # print the loss and accuracy every this many steps
    check_graphs: int = 20  # random expression graphs compared with torch.autograd
    check_ops: int = 40  # operations in each random graph

    def check(self) -> None:
        require(self.samples >= 4, f"samples must be >= 4, got {self.samples}")
        require(self.noise >= 0, f"noise must be >= 0, got {self.noise}")
        require(
            all(n >= 1 for n in self.hidden),
            f"hidden sizes must be >= 1 (e.g. hidden=16,16), got {self.hidden}",
        )
        require(self.steps >= 1, f"steps must be >= 1, got {self.steps}")
        require(self.lr > 0, f"lr must be > 0, got {self.lr}")
        require(0 <= self.momentum < 1, f"momentum must be in [0, 1), got {self.momentum}")
        require(self.l2 >= 0, f"l2 must be >= 0, got {self.l2}")
        require(self.log_every >= 1, f"log_every must be >= 1, got {self.log_every}")
        require(self.check_graphs >= 1, f"check_graphs must be >= 1, got {self.check_graphs}")
        require(self.check_ops >= 1, f"check_ops must be >= 1, got {self.check_ops}")


# ----------------------------------------------------------------------------- the engine


class Value:
    """One scalar, the Values it was computed from, and d(output)/d(it) once backward() ran.

    Unlike micrograd, each `_backward` closure is handed `out.grad` as an argument instead of
    reading it from `out`: a closure stored on `out` that refers to `out` is a reference cycle,
    and a graph full of cycles can only be freed by Python's slow cycle collector.
    """

    __slots__ = ("_backward", "children", "data", "grad", "op")

    def __init__(self, data: float, children: tuple[Value, ...] = (), op: str = "") -> None:
        self.data = float(data)
        self.grad = 0.0  # d output / d self: filled in by output.backward()
        self.children = children  # the Values this one was computed from
        self.op = op  # how: "+", "*", "tanh", ... ("" for an input or a parameter)
        self._backward = lambda grad: None  # given self.grad, adds to the children's grad

    def __repr__(self) -> str:
        return f"Value(data={self.data:.4g}, grad={self.grad:.4g}, op={self.op!r})"

    # -- operations: each computes its result and says how to pass a gradient back

    def __add__(self, other: Value | float) -> Value:
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data + other.data, (self, other), "+")

        def _backward(grad: float) -> None:  # d(a + b)/da = 1, d(a + b)/db = 1
            self.grad += grad
            other.grad += grad

        out._backward = _backward
        return out

    def __mul__(self, other: Value | float) -> Value:
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data * other.data, (self, other), "*")

        def _backward(grad: float) -> None:  # d(a * b)/da = b, d(a * b)/db = a
            self.grad += other.data * grad
            other.grad += self.data * grad

        out._backward = _backward
        return out

    def __pow__(self, exponent: float) -> Value:
        if isinstance(exponent, Value):
            raise TypeError("only a plain number works as an exponent: x ** 2, not x ** y")
        if self.data < 0 and exponent != int(exponent):
            raise ValueError(f"{self.data:g} ** {exponent:g}: a negative number has no real root")
        out = Value(self.data**exponent, (self,), f"**{exponent:g}")

        def _backward(grad: float) -> None:  # d(a ** n)/da = n * a ** (n - 1)
            self.grad += exponent * self.data ** (exponent - 1) * grad

        out._backward = _backward
        return out

    def exp(self) -> Value:
        e = math.exp(self.data)
        out = Value(e, (self,), "exp")

        def _backward(grad: float) -> None:  # d(e ** a)/da = e ** a, the result itself
            self.grad += e * grad

        out._backward = _backward
        return out

    def log(self) -> Value:
        if self.data <= 0:
            raise ValueError(f"log of {self.data:g}: the logarithm needs a positive number")
        out = Value(math.log(self.data), (self,), "log")

        def _backward(grad: float) -> None:  # d(log a)/da = 1 / a
            self.grad += grad / self.data

        out._backward = _backward
        return out

    def tanh(self) -> Value:
        t = math.tanh(self.data)
        out = Value(t, (self,), "tanh")

        def _backward(grad: float) -> None:  # d(tanh a)/da = 1 - tanh(a) ** 2
            self.grad += (1 - t**2) * grad

        out._backward = _backward
        return out

    def relu(self) -> Value:
        out = Value(max(self.data, 0.0), (self,), "relu")

        def _backward(grad: float) -> None:  # 1 where a > 0, else 0
            self.grad += (self.data > 0) * grad

        out._backward = _backward
        return out

    def sigmoid(self) -> Value:
        # 1 / (1 + e ** -a), written so that a large |a| never overflows.
        z = math.exp(-abs(self.data))
        s = 1 / (1 + z) if self.data >= 0 else z / (1 + z)
        out = Value(s, (self,), "sigmoid")

        def _backward(grad: float) -> None:  # d(sigmoid a)/da = s * (1 - s)
            self.grad += s * (1 - s) * grad

        out._backward = _backward
        return out

    # -- the rest are built from the operations above, so they need no backward of their own

    def __neg__(self) -> Value:  # -a
        return self * -1

    def __sub__(self, other: Value | float) -> Value:  # a - b
        return self + (-other)

    def __truediv__(self, other: Value | float) -> Value:  # a / b = a * b ** -1
        other = other if isinstance(other, Value) else Value(other)
        return self * other**-1

    def __radd__(self, other: float) -> Value:  # 2 + a
        return self + other

    def __rsub__(self, other: float) -> Value:  # 2 - a
        return Value(other) - self

    def __rmul__(self, other: float) -> Value:  # 2 * a
        return self * other

    def __rtruediv__(self, other: float) -> Value:  # 2 / a
        return Value(other) / self

    # -- backpropagation

    def topological_order(self) -> list[Value]:
        """Every node of the graph below self, each one after all of its children.

        A depth-first search with an explicit stack instead of recursion, so a graph thousands
        of nodes deep does not hit Python's recursion limit.
        """
        order: list[Value] = []
        visited: set[int] = set()  # ids of the nodes already expanded
        stack: list[tuple[Value, bool]] = [(self, False)]
        while stack:
            node, children_done = stack.pop()
            if children_done:  # every child is already in `order`
                order.append(node)
            elif id(node) not in visited:
                visited.add(id(node))
                stack.append((node, True))  # comes back once the children are done
                stack.extend((child, False) for child in node.children)
        return order

    def backward(self) -> None:
        """Add d self / d node to the `grad` of every node below self (the chain rule).

        Call it once per graph. As in PyTorch, a parameter's gradient adds up across graphs:
        `zero_grad()` it before the next step.
        """
        order = self.topological_order()
        self.grad = 1.0  # d self / d self
        for node in reversed(order):  # from the output back to the inputs
            node._backward(node.grad)


# ----------------------------------------------------------------------------- a neural network


class Module:
    def parameters(self) -> list[Value]:
        return []

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = 0.0


class Neuron(Module):
    """tanh(w . x + b), or w . x + b for an output neuron (linear=True)."""

    def __init__(self, n_in: int, rng: random.Random, linear: bool = False) -> None:
        self.w = [Value(rng.uniform(-1, 1)) for _ in range(n_in)]
        self.b = Value(0.0)
        self.linear = linear

    def __call__(self, x: list[Value] | list[float]) -> Value:
        act = sum((wi * xi for wi, xi in zip(self.w, x, strict=True)), self.b)
        return act if self.linear else act.tanh()

    def parameters(self) -> list[Value]:
        return [*self.w, self.b]


class Layer(Module):
    def __init__(self, n_in: int, n_out: int, rng: random.Random, linear: bool = False) -> None:
        self.neurons = [Neuron(n_in, rng, linear) for _ in range(n_out)]

    def __call__(self, x: list[Value] | list[float]) -> list[Value]:
        return [n(x) for n in self.neurons]

    def parameters(self) -> list[Value]:
        return [p for n in self.neurons for p in n.parameters()]


class MLP(Module):
    """n_in -> hidden layers (tanh) -> n_out linear scores."""

    def __init__(self, n_in: int, hidden: list[int], n_out: int, rng: random.Random) -> None:
        sizes = [n_in, *hidden, n_out]
        self.layers = [
            Layer(sizes[i], sizes[i + 1], rng, linear=i == len(sizes) - 2)
            for i in range(len(sizes) - 1)
        ]

    def __call__(self, x: list[Value] | list[float]) -> list[Value]:
        for layer in self.layers:
            x = layer(x)
        return x

    def parameters(self) -> list[Value]:
        return [p for layer in self.layers for p in layer.parameters()]


# ----------------------------------------------------------------------------- training


def make_data(settings: AutogradSettings) -> tuple[list[list[float]], list[float]]:
    """scikit-learn's two moons (generated, nothing downloaded): points and labels -1 / +1.

    Each feature is scaled to mean 0 and standard deviation 1, so that tanh neurons start in
    their responsive range.
    """
    from sklearn.datasets import make_moons

    X, y = make_moons(n_samples=settings.samples, noise=settings.noise, random_state=settings.seed)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    return X.tolist(), [2.0 * label - 1 for label in y.tolist()]


def loss_and_accuracy(
    model: MLP, X: list[list[float]], y: list[float], l2: float
) -> tuple[Value, float]:
    """Mean hinge loss relu(1 - y * score) plus l2 * sum(p ** 2); the share classified right.

    The hinge loss is zero for a point on the right side with a margin of at least 1, so only
    the points near or across the boundary push on the weights (a support vector machine's loss).
    """
    scores = [model(x)[0] for x in X]
    hinge = sum((1 - yi * si).relu() for yi, si in zip(y, scores, strict=True)) / len(y)
    penalty = l2 * sum(p * p for p in model.parameters())
    right = sum((si.data > 0) == (yi > 0) for yi, si in zip(y, scores, strict=True))
    return hinge + penalty, right / len(y)


@contextlib.contextmanager
def cycle_collector_paused() -> Iterator[None]:
    """Build and backpropagate a big graph with Python's cycle collector off, then back on.

    The collector runs every few hundred new objects and re-scans the objects that survived
    its earlier runs: here, the whole graph built so far. With ~15,000 Values a step that
    makes building the graph many times slower. Nothing needs collecting mid-step: the graph
    has no reference cycles, so it is freed as soon as the next step replaces it.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def train(settings: AutogradSettings, log=print) -> dict[str, Any]:
    """Full-batch gradient descent with momentum on the two moons; `log(line)` hears progress.

    Momentum keeps a running `velocity` per parameter, so steps that agree add up and steps
    that zigzag cancel out: the same network learns in far fewer steps than plain descent.
    """
    X, y = make_data(settings)
    model = MLP(2, settings.hidden, 1, random.Random(settings.seed))
    params = model.parameters()
    velocity = [0.0] * len(params)
    history = []
    t0 = time.perf_counter()
    for step in range(settings.steps):
        with cycle_collector_paused():
            loss, accuracy = loss_and_accuracy(model, X, y, settings.l2)
            model.zero_grad()  # backward() adds to .grad: start every step from zero
            loss.backward()
        lr = settings.lr * (1 - 0.9 * step / settings.steps)  # decays to a tenth
        for i, p in enumerate(params):
            velocity[i] = settings.momentum * velocity[i] - lr * p.grad
            p.data += velocity[i]
        history.append({"step": step, "loss": loss.data, "accuracy": accuracy})
        if step % settings.log_every == 0:
            log(f"  step {step:>4}  loss {loss.data:.4f}  accuracy {accuracy:.2f}")
    with cycle_collector_paused():
        loss, accuracy = loss_and_accuracy(model, X, y, settings.l2)  # after the last step
    log(f"  step {settings.steps:>4}  loss {loss.data:.4f}  accuracy {accuracy:.2f}")
    return {
        "architecture": " -> ".join(map(str, [2, *settings.hidden, 1])),
        "parameters": len(params),
        "final_loss": loss.data,
        "train_accuracy": accuracy,
        "seconds": time.perf_counter() - t0,
        "history": history,
    }


# ----------------------------------------------------------------------------- gradient check
#
# The same expression is evaluated twice: with our Values and with float64 torch tensors,
# whose gradients come from torch.autograd. Both understand + - * / **, unary minus and the
# methods exp(), log(), tanh(), relu() and sigmoid(), so one table (`OPERATIONS`) drives both.

OPERATIONS = {  # name: what it does to operands a, b and a plain number n
    "a+b": lambda a, b, n: a + b,
    "a-b": lambda a, b, n: a - b,
    "a*b": lambda a, b, n: a * b,
    "a/b": lambda a, b, n: a / b,
    "-a": lambda a, b, n: -a,
    "a**n": lambda a, b, n: a**n,
    "a+n": lambda a, b, n: a + n,
    "n-a": lambda a, b, n: n - a,
    "n*a": lambda a, b, n: n * a,
    "n/a": lambda a, b, n: n / a,
    "exp": lambda a, b, n: a.exp(),
    "log": lambda a, b, n: a.log(),
    "tanh": lambda a, b, n: a.tanh(),
    "relu": lambda a, b, n: a.relu(),
    "sigmoid": lambda a, b, n: a.sigmoid(),
}
BINARY = ("a+b", "a-b", "a*b", "a/b")  # the operations with two Value operands
EXPONENTS = (2, 3, -1, 0.5, 1.5)  # the numbers n tried in a ** n


def allowed(op: str, a: float, b: float, n: float) -> bool:
    """Keep the random graphs where both engines are exact: no log(0), no 1/0, no overflow."""
    if op == "a/b":
        return abs(b) > 0.2
    if op == "n/a":
        return abs(a) > 0.2
    if op == "log":
        return a > 0.2
    if op == "exp":
        return a < 5
    if op == "a**n":
        return (a > 0.2 if n != int(n) else abs(a) > 0.2) and abs(a) < 5
    return True


def random_program(rng: random.Random, ops: int) -> tuple[list[float], list[tuple]]:
    """Random leaf values and `ops` steps (op, i, j, n): node i op node j (or number n).

    Operands are drawn from every node made so far, so nodes get reused (shared
    subexpressions, the case where gradients must accumulate). Every operation comes up at
    least once when `ops` allows. Each step is tried out on Values and redrawn until it stays
    in range.
    """
    leaves = [rng.uniform(-2, 2) for _ in range(4)]
    nodes = [Value(v) for v in leaves]
    todo = rng.sample(list(OPERATIONS), len(OPERATIONS))  # not used yet in this graph
    program, misses = [], 0
    while len(program) < ops:
        op = todo[0] if todo and misses < 20 else rng.choice(list(OPERATIONS))
        i, j = rng.randrange(len(nodes)), rng.randrange(len(nodes))
        n = rng.choice(EXPONENTS) if op == "a**n" else round(rng.uniform(-2, 2), 2)
        if allowed(op, nodes[i].data, nodes[j].data, n):
            out = OPERATIONS[op](nodes[i], nodes[j], n)
            if abs(out.data) <= 50:  # moderate values keep the differences meaningful
                nodes.append(out)
                program.append((op, i, j, n))
                todo = [t for t in todo if t != op]
                misses = 0
                continue
        misses += 1
    return leaves, program


def run_program(leaves: list[float], program: list[tuple], make_leaf) -> tuple[Any, list[Any]]:
    """Replay a program on leaves made by `make_leaf`; the output is the sum of every new node."""
    inputs = [make_leaf(v) for v in leaves]
    nodes = list(inputs)
    for op, i, j, n in program:
        nodes.append(OPERATIONS[op](nodes[i], nodes[j], n))
    made = nodes[len(inputs) :]
    return sum(made[1:], made[0]), inputs


def difference(ours: float, reference: float) -> float:
    """|ours - reference|, relative to the reference when it is above 1; nan counts as inf.

    Relative for large numbers: a gradient of 1e6 that is off in the tenth digit is right.
    """
    d = abs(ours - reference) / max(1.0, abs(reference))
    return d if d <= math.inf else math.inf  # nan <= inf is False


def compare_with_torch(leaves: list[float], program: list[tuple]) -> float:
    """Largest difference between our result and gradients and torch.autograd's."""
    import torch

    ours, our_leaves = run_program(leaves, program, Value)
    ours.backward()
    theirs, their_leaves = run_program(
        leaves, program, lambda v: torch.tensor(v, dtype=torch.float64, requires_grad=True)
    )
    theirs.backward()
    worst = difference(ours.data, theirs.item())
    for mine, reference in zip(our_leaves, their_leaves, strict=True):
        g = 0.0 if reference.grad is None else reference.grad.item()  # None: leaf not used
        worst = max(worst, difference(mine.grad, g))
    return worst


def check_op(op: str, rng: random.Random, tries: int = 5) -> float:
    """One operation on its own, on random operands, against torch.autograd.

    The op is applied twice to the same leaves, and a binary op also to one leaf twice
    (a * a): a backward rule that overwrites a gradient instead of adding to it shows up here.
    """
    worst, done = 0.0, 0
    while done < tries:
        a, b = rng.uniform(-3, 3), rng.uniform(-3, 3)
        n = rng.choice(EXPONENTS) if op == "a**n" else round(rng.uniform(-2, 2), 2)
        if not allowed(op, a, b, n):
            continue  # out of range (log of a negative number, ...): draw again
        program = [(op, 0, 1, n), (op, 0, 1, n)]
        if op in BINARY and allowed(op, a, a, n):
            program.append((op, 0, 0, n))
        worst = max(worst, compare_with_torch([a, b], program))
        done += 1
    return worst


def gradient_check(seed: int, graphs: int, ops: int) -> dict[str, Any]:
    """Each op alone, then `graphs` random graphs of `ops` operations, against torch.autograd."""
    rng = random.Random(seed)
    per_op = {op: check_op(op, rng) for op in OPERATIONS}
    differences = [compare_with_torch(*random_program(rng, ops)) for _ in range(graphs)]
    worst = max([*differences, *per_op.values()])
    return {
        "graphs": graphs,
        "ops_per_graph": ops,
        "per_op": per_op,
        "wrong_ops": [op for op, d in per_op.items() if not d <= TOLERANCE],
        "max_difference": worst,
        "matches": worst <= TOLERANCE,  # False for nan too
    }


# ----------------------------------------------------------------------------- the command


def run(settings: AutogradSettings, log=print) -> dict[str, Any]:
    """Check the engine against torch.autograd, then train the MLP; `log(line)` tells the story."""
    s = settings
    log(
        f"Gradient check: each op alone, then {s.check_graphs} random graphs of "
        f"{s.check_ops} ops, against torch.autograd (float64)"
    )
    check = gradient_check(s.seed, s.check_graphs, s.check_ops)
    log(f"  largest difference {check['max_difference']:.1e} (tolerance {TOLERANCE:.0e})")
    log(
        f"Training on two moons ({s.samples} points, noise {s.noise}), "
        f"MLP {' -> '.join(map(str, [2, *s.hidden, 1]))}"
    )
    training = train(s, log)
    log(
        f"  {training['parameters']} parameters, {s.steps} steps in "
        f"{training['seconds']:.1f} s: training accuracy {training['train_accuracy']:.2f}"
    )
    result = {
        "settings": asdict(s),
        "gradient_check": check,
        "training": training,
        "learned": training["train_accuracy"] >= TARGET_ACCURACY,
    }
    log(verdict(result))
    return result


def verdict(result: dict[str, Any]) -> str:
    check, training = result["gradient_check"], result["training"]
    if not check["matches"]:
        wrong = check["wrong_ops"]
        if not wrong:
            where = "each op is right alone: look at how backward() combines them"
        elif len(wrong) == len(check["per_op"]):
            where = "every op is wrong alone: look at backward() first"
        else:
            where = f"wrong alone: {', '.join(wrong)}"
        return (
            f"Verdict: gradients differ from torch.autograd (by {check['max_difference']:.1e}); "
            f"{where}."
        )
    if not result["learned"]:
        return (
            f"Verdict: gradients match torch.autograd, but the MLP reached only "
            f"{training['train_accuracy']:.2f} training accuracy (target {TARGET_ACCURACY}): "
            "more steps, or another learning rate?"
        )
    return "Verdict: gradients match torch.autograd, and the MLP learned the two moons."


def cli(args) -> int:
    """`theory autograd [--config FILE] [--set KEY=VALUE ...] [--json]`."""
    import json

    from ..labs import load_settings

    settings = load_settings(AutogradSettings(), args.config, args.set)
    if args.json:
        print(json.dumps(run(settings, log=lambda line: None), indent=2))
    else:
        run(settings)
    return 0
