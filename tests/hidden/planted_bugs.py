"""Planted bugs: realistic mistakes in the solutions, each of which must cost points.

Instructor-only (it quotes solution lines; ``tests/hidden/`` is never released). Each ``Bug``
is one textual change inside one solution region: the mistake a student makes (a sign, a
missing transpose, a forgotten term, an off-by-one). The assignment's tests catch a bug when
a test of the part it lives in passes on the solution and fails with the bug.

As a pytest plugin it measures that in one process, without a grading run per bug:

    MINITRANSFORMER_KERNELS=reference python -m pytest -q -p tests.hidden.planted_bugs \\
        --planted-report planted.json tests/...   # the parts' test files

Each collected test of a part with bugs runs once per bug not yet caught, with the bug's code
object swapped into the live function (``function.__code__``, so every reference to it, an op
class or a ``from .x import f``, runs the mutant), then restored; a failure is confirmed by a
run of the same test on the solution. A test that runs past ``TEST_SECONDS`` counts as a
failure (the grader scores a timeout as 0). The report says, per bug, whether it was caught
and by which test, with the first line of the failure (what a student would read).

This measures the tests, not the sandbox: a test that runs its code in a subprocess (none of
the graded ones today) would not see the bug, so the count can only err low.
"""

from __future__ import annotations

import importlib
import inspect
import json
import signal
import types
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TEST_SECONDS = 30


@dataclass(frozen=True)
class Bug:
    """``old`` (once in the region of ``function``) replaced by ``new``."""

    assignment: str
    part: str
    path: str  # e.g. "minitransformer/ops/elementwise.py"
    function: str  # the region's enclosing definition, e.g. "Mul.backward"
    what: str  # the mistake, in words: the bug's id
    old: str
    new: str

    @property
    def id(self) -> str:
        return f"{self.assignment} {self.function}: {self.what}"


def _bugs(assignment: str, part: str, path: str, function: str, *changes: tuple[str, str, str]) -> list[Bug]:
    return [Bug(assignment, part, path, function, what, old, new) for what, old, new in changes]


AUTOGRAD, ELEMENTWISE = "minitransformer/autograd.py", "minitransformer/ops/elementwise.py"
REDUCE, MATMUL = "minitransformer/ops/reduce.py", "minitransformer/ops/matmul.py"
ENGINE_ORDER = "backward: every node once, after all its consumers"
ENGINE_SUMS = "backward: gradients add up"
ENGINE_REST = "backward: seeds, dtypes, freeing the graph, errors"
BUGS: list[Bug] = [
    # a1: the engine
    *_bugs("a1", ENGINE_ORDER, AUTOGRAD, "_topological_order",
           ("post-order not reversed (inputs before their consumers)", "    postorder.reverse()\n", ""),
           ("pre-order instead of post-order",
            "        if children_done:\n            postorder.append(tensor)\n            continue\n",
            "        if children_done:\n            continue\n        postorder.append(tensor)\n")),
    *_bugs("a1", ENGINE_SUMS, AUTOGRAD, "backward",
           ("a second path's gradient overwrites the first", "input_grad = add_gradients(grads[key], input_grad)",
            "input_grad = input_grad"),
           ("a leaf's gradient is the caller's own array", "handed_to_leaves = {id(grad)}", "handed_to_leaves = set()")),
    *_bugs("a1", ENGINE_REST, AUTOGRAD, "backward",
           ("retain_grad ignored", "if fn is None or tensor._retains_grad:", "if fn is None:"),
           ("the graph is never freed", "        if not retain_graph:\n            fn.inputs, fn.saved = None, ()\n",
            ""),
           ("the explicit seed's dtype is not the tensor's", "grad = xp.asarray(grad, dtype=root.dtype)",
            "grad = xp.asarray(grad)"),
           ("an input's gradient not cast to the input's dtype", "if input_grad.dtype != inp.dtype:", "if False:")),
    # a2: the backward of each op
    *_bugs("a2", "unbroadcast", AUTOGRAD, "unbroadcast",
           ("leading axes: keeps the first copy instead of the sum",
            "grad = grad.sum(axis=tuple(range(extra_leading)))", "grad = grad[(0,) * extra_leading]"),
           ("stretched axes of size 1 not summed", "    if stretched:\n        grad = grad.sum(axis=stretched, keepdims=True)\n",
            "")),
    *_bugs("a2", "Add, Sub and Neg.backward", ELEMENTWISE, "Sub.backward", ("b's sign", "return grad, -grad", "return grad, grad")),
    *_bugs("a2", "Add, Sub and Neg.backward", ELEMENTWISE, "Neg.backward", ("no sign", "return -grad", "return grad")),
    *_bugs("a2", "Mul.backward", ELEMENTWISE, "Mul.backward",
           ("each input's gradient uses itself", "(grad * b if need_a else None), (grad * a if need_b else None)",
            "(grad * a if need_a else None), (grad * b if need_b else None)")),
    *_bugs("a2", "Div.backward", ELEMENTWISE, "Div.backward",
           ("dz/db = -a / b instead of -a / b^2", "-grad * a / (b * b)", "-grad * a / b"),
           ("dz/db's sign", "-grad * a / (b * b)", "grad * a / (b * b)")),
    *_bugs("a2", "PowConstant.backward", ELEMENTWISE, "PowConstant.backward",
           ("exponent not lowered", "return grad * p * a ** (p - 1)", "return grad * p * a ** p")),
    *_bugs("a2", "Exp, Log and Sqrt.backward", ELEMENTWISE, "Log.backward", ("grad * a", "return grad / a", "return grad * a")),
    *_bugs("a2", "Exp, Log and Sqrt.backward", ELEMENTWISE, "Sqrt.backward",
           ("the 2 of 1 / (2 sqrt a) missing", "return grad / (2 * out)", "return grad / out")),
    *_bugs("a2", "Abs and ReLU.backward", ELEMENTWISE, "ReLU.backward",
           ("gradient through negative inputs", "return grad * (out > 0)", "return grad * (out >= 0)")),
    *_bugs("a2", "Tanh and Sigmoid.backward", ELEMENTWISE, "Tanh.backward",
           ("1 - y instead of 1 - y^2", "return grad * (1 - out * out)", "return grad * (1 - out)")),
    *_bugs("a2", "Tanh and Sigmoid.backward", ELEMENTWISE, "Sigmoid.backward",
           ("the (1 - y) factor missing", "return grad * out * (1 - out)", "return grad * out")),
    *_bugs("a2", "GELU.backward", ELEMENTWISE, "GELU.backward",
           ("exact GELU: the x phi(x) term missing",
            "return grad * (saved + a * array_module(a).exp(-0.5 * a * a) * _INV_SQRT_2PI)", "return grad * saved")),
    *_bugs("a2", "Maximum and Where.backward", ELEMENTWISE, "Maximum.backward",
           ("ties: the whole gradient to both inputs", "a > b, a >= b, dtype=grad.dtype) * 0.5",
            "a >= b, a >= b, dtype=grad.dtype) * 0.5")),
    *_bugs("a2", "Maximum and Where.backward", ELEMENTWISE, "Where.backward",
           ("branches swapped", "xp.where(condition, grad, zero), xp.where(condition, zero, grad)",
            "xp.where(condition, zero, grad), xp.where(condition, grad, zero)")),
    *_bugs("a2", "Sum and Mean.backward", REDUCE, "Mean.backward",
           ("not divided by the count", "_expand(grad, self.axes, self.keepdims) / self.count",
            "_expand(grad, self.axes, self.keepdims)")),
    *_bugs("a2", "Var.backward", REDUCE, "Var.backward",
           ("the 2 of d(x - mean)^2 missing", "(2 / self.divisor)", "(1 / self.divisor)")),
    *_bugs("a2", "Max.backward", REDUCE, "Max.backward",
           ("ties: each maximum gets the whole gradient", "(_expand(grad, self.axes, self.keepdims) / ties)",
            "_expand(grad, self.axes, self.keepdims)")),
    *_bugs("a2", "MatMul.backward", MATMUL, "MatMul.backward",
           ("batched a @ (K, N): b's gradient from the last batch only",
            "grad_b = a2.reshape(-1, k).T @ grad2.reshape(-1, grad2.shape[-1])", "grad_b = _swap_last(a2[-1]) @ grad2[-1]")),
    *_bugs("a2", "Linear.backward", MATMUL, "Linear.backward",
           ("bias gradient averaged over rows", "grad2.sum(axis=0) if len", "grad2.mean(axis=0) if len")),
    # a3: fused backward
    *_bugs("a3", "Softmax.backward", "minitransformer/ops/softmax.py", "Softmax.backward",
           ("the sign of the row sum", "y * (grad - (grad * y).sum(", "y * (grad + (grad * y).sum(")),
    *_bugs("a3", "LogSoftmax.backward", "minitransformer/ops/softmax.py", "LogSoftmax.backward",
           ("upstream gradient's row sum dropped", "softmax * grad.sum(axis=self.axis, keepdims=True)", "softmax")),
    *_bugs("a3", "CrossEntropy.backward", "minitransformer/ops/loss.py", "CrossEntropy.backward",
           ("the one-hot target not subtracted", "safe_targets] -= 1", "safe_targets] -= 0"),
           ("mean reduction not divided by the count", "grad / self.count if", "grad if"),
           ("ignored rows still get a gradient", "scale = counted * (", "scale = xp.ones_like(counted) * (")),
    *_bugs("a3", "LayerNorm.backward", "minitransformer/ops/normalization.py", "LayerNorm.backward",
           ("the mean term missing", "(g_hat - mean_g_hat - x_hat * mean_g_hat_x_hat)", "(g_hat - x_hat * mean_g_hat_x_hat)"),
           ("the weight not applied to the upstream gradient", "g_hat = grad * weight", "g_hat = grad"),
           ("the weight's gradient without x_hat", "grad_weight = (grad * x_hat).sum(axis=rows)",
            "grad_weight = grad.sum(axis=rows)")),
    # a4: attention
    *_bugs("a4", "ScaledDotProductAttention.forward", "minitransformer/ops/attention.py", "ScaledDotProductAttention.forward",
           ("scaled by 1 / d instead of 1 / sqrt(d)", "1.0 / math.sqrt(q.shape[-1])", "1.0 / q.shape[-1]"),
           ("the causal mask ignored", "additive_mask(mask, is_causal,", "additive_mask(mask, False,"),
           ("softmax over the queries", "row_sum = weights.sum(axis=-1, keepdims=True)",
            "row_sum = weights.sum(axis=-2, keepdims=True)")),
    *_bugs("a4", "ScaledDotProductAttention.backward", "minitransformer/ops/attention.py", "ScaledDotProductAttention.backward",
           ("softmax backward without the row sum", "weights * (grad_weights - row_dot)", "weights * grad_weights"),
           ("dK not scaled", "(swap_last(grad_scores) @ q) * self.scale", "swap_last(grad_scores) @ q"),
           ("dV ignores dropout", "grad_v = swap_last(dropped) @ grad", "grad_v = swap_last(weights) @ grad")),
    *_bugs("a4", "split_heads, merge_heads and CausalSelfAttention.forward", "minitransformer/nn/gpt.py", "split_heads",
           ("heads reshaped without the transpose", "x.reshape(B, T, n_head, C // n_head).transpose(0, 2, 1, 3)",
            "x.reshape(B, n_head, T, C // n_head)")),
    *_bugs("a4", "split_heads, merge_heads and CausalSelfAttention.forward", "minitransformer/nn/gpt.py", "merge_heads",
           ("heads merged without the transpose", "y.transpose(0, 2, 1, 3).reshape(B, T, nh * hs)", "y.reshape(B, T, nh * hs)")),
    *_bugs("a4", "split_heads, merge_heads and CausalSelfAttention.forward", "minitransformer/nn/gpt.py",
           "CausalSelfAttention.forward", ("not causal", "y = causal_attention(q, k, v, dropout_p=dropout_p)",
                                           "y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p)")),
    # a5: optimizers
    *_bugs("a5", "SGD.step", "minitransformer/optim/sgd.py", "SGD.step",
           ("the momentum buffer aliases the gradient", 'state["momentum_buffer"] = grad.copy()',
            'state["momentum_buffer"] = grad'),
           ("dampened momentum", 'state["momentum_buffer"] += grad', 'state["momentum_buffer"] += (1 - momentum) * grad'),
           ("Nesterov ignored", 'grad + momentum * buffer if group["nesterov"] else buffer', "buffer"),
           ("weight decay's sign", 'grad + group["weight_decay"] * param.data', 'grad - group["weight_decay"] * param.data')),
    *_bugs("a5", "Adam.step", "minitransformer/optim/adam.py", "adam_update",
           ("no bias correction", "step_size = lr / (1 - beta1**step)", "step_size = lr"),
           ("no bias correction of the second moment", " / math.sqrt(1 - beta2**step) + eps", " + eps"),
           ("eps inside the square root", "sqrt(exp_avg_sq) / math.sqrt(1 - beta2**step) + eps",
            "sqrt(exp_avg_sq + eps) / math.sqrt(1 - beta2**step)"),
           ("AdamW's decay through the gradient", "theta *= 1 - lr * weight_decay", "grad = grad + weight_decay * theta"),
           ("second moment of |g| instead of g^2", "(1 - beta2) * grad * grad", "(1 - beta2) * abs(grad)")),
    *_bugs("a5", "cosine_lr", "minitransformer/optim/schedule.py", "cosine_lr",
           ("warmup off by one", "learning_rate * (iteration + 1) / (warmup_iters + 1)",
            "learning_rate * iteration / warmup_iters"),
           ("decay measured from 0, not from the end of warmup", "(iteration - warmup_iters) / span", "iteration / span"),
           ("never reaches min_lr", "return min_lr + coefficient * (learning_rate - min_lr)",
            "return coefficient * learning_rate")),
    # a6: sampling and the training step
    *_bugs("a6", "sampling: next_token_probabilities and draw", "minitransformer/nn/generation.py",
           "next_token_probabilities",
           ("temperature ignored", "logits = logits / temperature", "logits = logits"),
           ("top-k: the k-th smallest as the threshold", "[:, -k][:, None]", "[:, k - 1][:, None]"),
           ("top-k keeps k + 1 tokens", "[:, -k][:, None]", "[:, -k - 1][:, None]")),
    *_bugs("a6", "sampling: next_token_probabilities and draw", "minitransformer/nn/generation.py", "draw",
           ("greedy instead of sampling", "return (cdf <= u).sum(axis=-1)", "return probs.argmax(axis=-1)")),
    *_bugs("a6", "the training step in train()", "minitransformer/train.py", "train",
           ("gradients never zeroed", "                optimizer.zero_grad()\n", ""),
           ("gradients zeroed after each micro-batch's backward", "loss_value += share * loss.item()\n",
            "loss_value += share * loss.item()\n                    optimizer.zero_grad()\n"),
           ("micro-batch losses not weighted by their share", "(loss * share).backward()", "loss.backward()"),
           ("logged loss summed over micro-batches, not weighted", "loss_value += share * loss.item()",
            "loss_value += loss.item()"),
           ("no gradient clipping", "clip_grad_norm(model.parameters(), config.grad_clip) if config.grad_clip > 0 else None",
            "None")),
]


# --- planting a bug ---------------------------------------------------------------------------

def _mutated_source(bug: Bug, root: Path = ROOT) -> str:
    from minitransformer.assignments import markers

    text = (root / bug.path).read_text(encoding="utf-8")
    regions = [r for r in markers.find_regions(text, bug.path)
               if r.assignment == bug.assignment and r.where == bug.function]
    if len(regions) != 1:
        raise ValueError(f"planted bug {bug.id!r}: {bug.path} has {len(regions)} {bug.assignment} regions in "
                         f"{bug.function}; expected one")
    lines = text.splitlines(keepends=True)
    region = regions[0]
    body = "".join(region.body(lines))
    if body.count(bug.old) != 1:
        raise ValueError(f"planted bug {bug.id!r}: {bug.old!r} occurs {body.count(bug.old)} times in the region; "
                         "expected once")
    return "".join(lines[:region.begin]) + body.replace(bug.old, bug.new) + "".join(lines[region.end - 1:])


def _code_of(code: types.CodeType, dotted: str) -> types.CodeType | None:
    """The code object of the definition ``dotted`` ("Mul.backward") nested in ``code``."""
    head, _, rest = dotted.partition(".")
    for const in code.co_consts:
        if isinstance(const, types.CodeType) and const.co_name == head:
            return const if not rest else _code_of(const, rest)
    return None


def live_function(bug: Bug):
    """The plain function object the package runs for ``bug.function``."""
    module = importlib.import_module(bug.path.removesuffix(".py").replace("/", "."))
    target = module
    for name in bug.function.split("."):
        target = inspect.getattr_static(target, name)
    target = getattr(target, "__func__", target)  # staticmethod, classmethod
    return inspect.unwrap(target)  # through @dispatchable and functools.wraps


class Planted:
    """``with Planted(bug):`` runs the mutant wherever the function is called."""

    def __init__(self, bug: Bug):
        self.function = live_function(bug)
        code = _code_of(compile(_mutated_source(bug), str(ROOT / bug.path), "exec"), bug.function)
        if code is None:
            raise ValueError(f"planted bug {bug.id!r}: no definition {bug.function} in {bug.path}")
        self.mutant, self.original = code, self.function.__code__

    def __enter__(self):
        self.function.__code__ = self.mutant
        return self

    def __exit__(self, *exc):
        self.function.__code__ = self.original
        return False


# --- the plugin -------------------------------------------------------------------------------

class _TooSlow(Exception):
    pass


def _on_alarm(signum, frame):
    raise _TooSlow(f"still running after {TEST_SECONDS} s")


def pytest_addoption(parser):
    parser.addoption("--planted-report", metavar="JSON", help="run every test once per planted bug of its part; "
                     "write which bugs were caught here")
    parser.addoption("--planted", metavar="ID[,ID...]", help="only the bugs of these assignments (default: all)")


def pytest_configure(config):
    if not config.getoption("planted_report"):
        return
    wanted = config.getoption("planted")
    chosen = [b for b in BUGS if not wanted or b.assignment in wanted.split(",")]
    config.stash[_STATE] = {"bugs": chosen, "planted": {b.id: Planted(b) for b in chosen},
                            "caught": {}, "tried": {b.id: 0 for b in chosen}}
    try:  # a failing property test stops at its first failing example (as in grading)
        from hypothesis import Phase, settings

        settings.register_profile("planted", parent=settings.default,
                                  phases=[p for p in settings.default.phases if p is not Phase.shrink])
        settings.load_profile("planted")
    except ImportError:
        pass


_STATE = pytest.StashKey[dict]()


def _parts_of(item) -> set[tuple[str, str]]:
    from minitransformer.assignments import registry
    from minitransformer.assignments.plugin import marks_of

    marks = marks_of(item)
    return {(a.id, part.name) for a in registry.ASSIGNMENTS if (part := a.part_of(item.nodeid, marks))}


def pytest_collection_modifyitems(config, items):
    state = config.stash.get(_STATE, None)
    if state is None:
        return
    with_bugs = {(b.assignment, b.part) for b in state["bugs"]}
    kept = [item for item in items if _parts_of(item) & with_bugs]
    config.hook.pytest_deselected(items=[item for item in items if item not in kept])
    items[:] = kept


def _fails(item) -> str | None:
    """The first line of the failure when ``item`` fails (or runs too long), else None."""
    from _pytest.runner import runtestprotocol

    previous = signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(TEST_SECONDS)
    try:
        reports = runtestprotocol(item, log=False, nextitem=None)
    except _TooSlow as error:
        return f"timeout: {error}"
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    for report in reports:
        if report.failed:
            text = str(report.longrepr).strip().splitlines()
            return next((line.strip() for line in text if line.startswith("E ")), text[-1] if text else "failed")
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item, nextitem):
    state = item.config.stash.get(_STATE, None)
    if state is None:
        return None
    parts = _parts_of(item)
    pending = [b for b in state["bugs"] if (b.assignment, b.part) in parts and b.id not in state["caught"]]
    clean = None  # run the solution only when a mutant fails, to confirm the failure is the bug's
    for bug in pending:
        state["tried"][bug.id] += 1
        with state["planted"][bug.id]:
            failure = _fails(item)
        if failure is None:
            continue
        if clean is None:
            clean = _fails(item) or ""
        if clean:
            break  # the test fails on the solution too: it proves nothing about any bug
        state["caught"][bug.id] = {"test": item.nodeid, "failure": failure[:300]}
    return True


def pytest_sessionfinish(session):
    state = session.config.stash.get(_STATE, None)
    if state is None:
        return
    report = [{"id": b.id, "assignment": b.assignment, "part": b.part, "tests_tried": state["tried"][b.id],
               "caught": b.id in state["caught"], **state["caught"].get(b.id, {})} for b in state["bugs"]]
    path = Path(session.config.getoption("planted_report"))
    path.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")


def pytest_terminal_summary(terminalreporter, config):
    state = config.stash.get(_STATE, None)
    if state is None:
        return
    caught = len(state["caught"])
    terminalreporter.write_line(f"planted bugs: {caught} of {len(state['bugs'])} caught")
    for bug in state["bugs"]:
        entry = state["caught"].get(bug.id)
        terminalreporter.write_line(f"  {'caught' if entry else 'MISSED'}  {bug.id}"
                                    + (f"  <- {entry['test']}" if entry else ""))
