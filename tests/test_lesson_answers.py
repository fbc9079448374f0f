"""The exercises' checkable answers (lessons/answers.json) are right, and the checker works.

Each answer is computed here from the framework or from the lesson's own code, never typed in,
and must pass ``lessons/check.py``; so a change that moves an answer fails this test. This file
is therefore also the answer key. After changing a question or an answer, rewrite the stored
hashes with

    python tests/test_lesson_answers.py --write
"""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
LESSONS_DIR = REPO_ROOT / "lessons"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"lessons_{name}", LESSONS_DIR / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


check = _load("check")
runner = _load("run")


def _lesson_namespace(number: str, blocks: int, edit=lambda code: code) -> dict:
    """Run the first ``blocks`` runnable blocks of a lesson (quick mode); return its namespace."""
    path = runner.find_lesson(number)
    namespace: dict = {"__name__": "__lesson__"}
    for block in runner.python_blocks(path.read_text(encoding="utf-8"))[:blocks]:
        exec(compile(edit(block.code), str(path), "exec"), namespace)
    return namespace


# --- how each answer is computed -----------------------------------------------------------

def softplus_naive_finite_limit():
    return float(np.log(np.finfo(np.float32).max))       # exp(x) overflows float32 above it


def softplus_naive_at_minus_20():
    with np.errstate(all="ignore"):
        return float(np.log(np.float32(1) + np.exp(np.float32(-20))))


def cube_gradient_with_assignment():
    namespace = _lesson_namespace("02", 1, edit=lambda code: code.replace(".grad +=", ".grad ="))
    value = namespace["Value"]
    xv = value(1.7)
    cube = xv * xv * xv
    cube.backward()
    return xv.grad


def second_backward_ratio():
    namespace = _lesson_namespace("02", 2)                # the engine, then the neuron
    first = namespace["w"].grad
    namespace["L"].backward()
    return namespace["w"].grad / first


def central_difference_of_max(row, h=1e-4):
    row = np.asarray(row, dtype=np.float64)
    unit = np.eye(len(row))[1]
    return (np.max(row + h * unit) - np.max(row - h * unit)) / (2 * h)


def bce_of_sigmoid_40():
    import minitransformer as mt
    import minitransformer.functional as F
    return F.binary_cross_entropy(F.sigmoid(mt.tensor([40.0])), mt.tensor([0.0])).item()


def bce_with_logits_40():
    import minitransformer as mt
    import minitransformer.functional as F
    return F.binary_cross_entropy_with_logits(mt.tensor([40.0]), mt.tensor([0.0])).item()


def fastest_learning_rate():
    # e_{t+1} = (1 - 22 alpha) e_t: the factor 0 converges in one step
    alphas = np.linspace(0.001, 0.09, 8901)
    return float(alphas[np.argmin(np.abs(1 - 22 * alphas))])


def bce_of_constant_half():
    import minitransformer as mt
    import minitransformer.functional as F
    labels = np.array([0.0, 1.0, 1.0, 0.0, 1.0])
    return F.binary_cross_entropy(mt.tensor(np.full(5, 0.5)), mt.tensor(labels)).item()


def smallest_input_that_catches_buffered_embedding():
    import minitransformer as mt

    class BufferedEmbedding(mt.Function):
        def forward(self, table, ids):
            self.ids, self.shape = ids, table.shape
            return table[ids]                               # (len(ids), C)

        def backward(self, grad):
            out = np.zeros(self.shape, dtype=grad.dtype)
            out[self.ids] += grad                           # wrong for a repeated id
            return out

    def caught(ids):
        table = mt.tensor(np.random.default_rng(0).standard_normal((2, 1)), dtype=np.float64)
        try:
            mt.gradcheck(lambda t: BufferedEmbedding.apply(t, ids=ids), [table])
        except mt.GradcheckError:
            return True
        return False

    for length in range(1, 5):
        for ids in np.ndindex(*(2,) * length):
            if caught(np.array(ids)):
                return length
    return math.inf


def attention_scale_for_variance_4():
    d_k, variance = 64, 4.0
    rng = np.random.default_rng(0)
    q = rng.normal(0, math.sqrt(variance), (20000, d_k))
    k = rng.normal(0, math.sqrt(variance), (20000, d_k))
    scale = 1 / (variance * math.sqrt(d_k))                   # Var(q.k) = d_k sigma^4
    assert abs(np.var((q * k).sum(axis=1) * scale) - 1) < 0.05
    return scale


def fully_masked_row_output():
    import minitransformer as mt
    import minitransformer.functional as F
    q, k, v = (mt.randn(1, 4, 8) for _ in range(3))
    mask = np.ones((1, 4, 4), dtype=bool)
    mask[0, 2] = False                                       # query 2 may read nothing
    out = F.scaled_dot_product_attention(q, k, v, mask=mask).numpy()
    return float(np.abs(out[0, 2]).max())


def flops(B=16, T=64, C=96, n_head=4):
    """Matrix-product FLOPs of one block's forward: the Linear layers, and attention's two products."""
    linear = 2 * B * T * (C * 3 * C + C * C + C * 4 * C + 4 * C * C)
    attention = 2 * 2 * B * n_head * T * T * (C // n_head)   # Q K^T and P V
    return linear, attention


ANSWERS = {
    "01.1a": ("the largest x (4 significant digits) at which the naive float32 log(1 + exp(x)) is finite",
              "number", 4, softplus_naive_finite_limit),
    "01.1b": ("the naive form's float32 value at x = -20", "number", 2, softplus_naive_at_minus_20),
    "02.1": ("the value of xv.grad (3 significant digits) when every += of Value is an =",
             "number", 3, cube_gradient_with_assignment),
    "02.4": ("w.grad after the second L.backward() divided by w.grad after the first (3 significant digits)",
             "number", 3, second_backward_ratio),
    "03.3a": ("the central difference (2 significant digits) of the maximum of [1, 3, 3] with respect to its "
              "second entry", "number", 2, lambda: central_difference_of_max([1, 3, 3])),
    "03.3b": ("the same for [1, 3 - d, 3] with the gap d = h/2 (2 significant digits)", "number", 2,
              lambda: central_difference_of_max([1, 3 - 0.5e-4, 3], h=1e-4)),
    "05.3a": ("F.binary_cross_entropy(F.sigmoid(z), y) for z = 40, y = 0 in float32 (4 significant digits)",
              "number", 4, bce_of_sigmoid_40),
    "05.3b": ("F.binary_cross_entropy_with_logits(z, y) for z = 40, y = 0 (4 significant digits)",
              "number", 4, bce_with_logits_40),
    "05.4": ("the learning rate (3 significant digits) that converges in the fewest steps", "number", 3,
             fastest_learning_rate),
    "06.4": ("the binary cross-entropy (4 significant digits) of a model that outputs 0.5 for every example",
             "number", 4, bce_of_constant_half),
    "08.1": ("the smallest number of ids in an input on which mt.gradcheck catches grad[ids] += g",
             "integer", 0, smallest_input_that_catches_buffered_embedding),
    "09.4": ("the factor (3 significant digits) that scales the scores to variance 1 when d_k = 64 and the "
             "entries of q and k have variance 4", "number", 3, attention_scale_for_variance_4),
    "10.2": ("the largest absolute value in the fused op's output row for a query whose keys are all masked",
             "number", 1, fully_masked_row_output),
    "15.3a": ("the factor by which the Linear layers' matrix-product FLOPs grow when n_embd doubles",
              "integer", 0, lambda: flops(C=192)[0] / flops()[0]),
    "15.3b": ("the factor by which attention's two products (Q K^T and P V) grow when block_size doubles",
              "integer", 0, lambda: flops(T=128)[1] / flops()[1]),
    "15.3c": ("the factor by which attention's two products grow when n_embd doubles (same number of heads)",
              "integer", 0, lambda: flops(C=192)[1] / flops()[1]),
}


def _stored_entry(key, question, kind, digits, answer) -> dict:
    if kind == "word":
        spelled = check.normalise_word(str(answer))
    elif kind == "integer":
        assert answer == round(answer), f"{key}: {answer} is not a whole number"
        spelled = str(int(round(answer)))
    else:
        spelled = check.normalise_number(answer, digits)
    return {"question": question, "kind": kind, "digits": digits, "sha256": check.digest(key, spelled)}


@pytest.fixture(scope="module")
def stored():
    return check.load_questions()


def test_every_stored_answer_has_a_computation_and_the_reverse(stored):
    assert sorted(stored) == sorted(ANSWERS)


@pytest.mark.parametrize("key", sorted(ANSWERS))
def test_the_computed_answer_passes_the_check(key, stored, monkeypatch, tmp_path):
    monkeypatch.setenv("MINITRANSFORMER_QUICK", "1")
    monkeypatch.setenv("MINITRANSFORMER_FIGURES", str(tmp_path))
    monkeypatch.chdir(REPO_ROOT)
    question, kind, digits, compute = ANSWERS[key]
    assert stored[key].question == question and stored[key].digits == digits
    answer = compute()
    assert check.is_correct(stored[key], str(answer)), f"{key}: the computed answer does not match the stored hash"
    if kind in ("number", "integer") and answer != 0 and math.isfinite(answer):
        assert not check.is_correct(stored[key], str(answer * 1.5)), f"{key}: a wrong answer passes"
    if kind == "integer":
        assert not check.is_correct(stored[key], str(answer + 1)), f"{key}: a wrong answer passes"


def test_the_check_accepts_rounding_neighbours_and_rejects_others():
    question = check.Question("99.1", "q", "number", 3, check.digest("99.1", check.normalise_number(0.03125, 3)))
    assert check.is_correct(question, "0.03125") and check.is_correct(question, "0.0313")
    assert check.is_correct(question, "3.12e-2")
    assert not check.is_correct(question, "0.0316") and not check.is_correct(question, "abc")


def test_the_command_line_lists_and_checks_without_printing_answers(capsys):
    assert check.run_checks("05", []) == 0
    listing = capsys.readouterr().out
    assert "4" in listing and "learning rate" in listing
    assert check.run_checks("05", [f"4={fastest_learning_rate()}"]) == 0
    assert "05.4: correct" in capsys.readouterr().out
    assert check.run_checks("05", ["4=0.09", "9=1"]) == 1
    out = capsys.readouterr().out
    assert "05.4: not yet" in out and "not EXERCISE=VALUE" in out
    assert "0.045" not in out


def test_run_py_check_flag_reaches_the_checker(capsys):
    assert runner.main(["05", "--check", f"4={fastest_learning_rate()}"]) == 0
    assert "05.4: correct" in capsys.readouterr().out


if __name__ == "__main__" and "--write" in sys.argv:
    import os
    import tempfile
    os.environ["MINITRANSFORMER_QUICK"] = "1"
    os.environ["MINITRANSFORMER_FIGURES"] = tempfile.mkdtemp()
    os.chdir(REPO_ROOT)
    entries = {"_about": "Questions and salted SHA-256 hashes of the answers; see lessons/check.py. "
                         "Written by tests/test_lesson_answers.py --write."}
    for key, (question, kind, digits, compute) in sorted(ANSWERS.items()):
        entries[key] = _stored_entry(key, question, kind, digits, compute())
    check.ANSWERS_PATH.write_text(json.dumps(entries, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {len(ANSWERS)} answers to {check.ANSWERS_PATH}")
