"""The assignments, in course order: which solution regions each one hands out, which lesson
teaches it, and its parts: the function (or few functions) each part grades, its points and
the tests that check it.

A test belongs to a part when its node id matches one of the part's patterns (``fnmatch``
syntax, without the parameters in brackets unless the pattern has brackets), or when it carries
the marks ``@pytest.mark.a2`` and ``@pytest.mark.part("Mul.backward")``, as an instructor's
hidden test may. Points are whole numbers per part and add up to the assignment's total; a
part's points are shared among its tests in proportion to their weights (1 unless
``@pytest.mark.weight(w)`` says otherwise), so a function earns its points whatever the tests of
the other functions do.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

HIDDEN_TESTS = "tests/hidden"  # instructor-only tests: graded, never released
FAST_LAYER = "minitransformer/fast"  # left out of every student copy and grading workspace
FAST_TESTS = "tests/fast"  # its parity tests


@dataclass(frozen=True)
class Tests:
    """Tests picked by a node-id pattern, e.g. "tests/ops/test_softmax.py::test_*gradient*"."""

    pattern: str

    def matches(self, nodeid: str) -> bool:
        if "[" in self.pattern:  # brackets name parameters here, not a set of characters
            return fnmatch.fnmatchcase(nodeid, self.pattern.replace("[", "[[]"))
        return fnmatch.fnmatchcase(nodeid.split("[", 1)[0], self.pattern)

    @property
    def file(self) -> str:
        return self.pattern.split("::", 1)[0]


@dataclass(frozen=True)
class Part:
    """One graded piece of an assignment: a function or a few small ones."""

    name: str
    points: int
    tests: tuple[Tests, ...]

    def matches(self, nodeid: str) -> bool:
        return any(t.matches(nodeid) for t in self.tests)


@dataclass(frozen=True)
class Assignment:
    id: str
    title: str
    lessons: tuple[str, ...]  # lesson numbers, "03" -> lessons/03_*.md
    files: tuple[str, ...]  # the files whose solution regions the student writes
    parts: tuple[Part, ...]
    file_lessons: tuple[tuple[str, str], ...] = ()  # (file, lesson number) where they differ

    @property
    def points(self) -> int:
        return sum(part.points for part in self.parts)

    @property
    def tests(self) -> tuple[Tests, ...]:
        return tuple(t for part in self.parts for t in part.tests)

    def part_of(self, nodeid: str, marks: dict | None = None) -> Part | None:
        """The part a test grades, or None if the test is not one of this assignment's."""
        marks = marks or {}
        if self.id in marks and marks.get("part"):
            return next((p for p in self.parts if p.name == marks["part"]), None)
        return next((p for p in self.parts if p.matches(nodeid)), None)

    def test_files(self) -> list[str]:
        return sorted({t.file for t in self.tests if "*" not in t.file})

    def lesson_paths(self, root: Path) -> list[str]:
        """The lesson files, e.g. "lessons/03_tensor_engine.md" ("lessons/07_*.md" while a
        lesson is not written yet)."""
        paths = []
        for number in self.lessons:
            found = sorted((root / "lessons").glob(f"{number}_*.md"))
            paths.append(found[0].relative_to(root).as_posix() if found else f"lessons/{number}_*.md")
        return paths

    def hint_for(self, path: str, root: Path) -> str:
        """The pointer a removed region's NotImplementedError gives: the lesson for its file."""
        numbers = dict(self.file_lessons)
        lessons = self.lesson_paths(root)
        if path in numbers:
            lessons = [p for n, p in zip(self.lessons, lessons) if n == numbers[path]]
        return "see " + " and ".join(lessons)


def _part(name: str, points: int, *patterns: str) -> Part:
    return Part(name, points, tuple(Tests(p) for p in patterns))


A1 = "tests/assignments/test_a1_engine.py::"
A2 = "tests/assignments/test_a2_backward.py::"
A3 = "tests/assignments/test_a3_backward.py::"
A4 = "tests/hidden/test_a4_reference.py::"
ATTENTION = "tests/ops/test_attention.py::"
ASSIGNMENTS: tuple[Assignment, ...] = (
    Assignment(
        id="a1",
        title="The autograd engine: reverse topological order and gradient accumulation",
        lessons=("03",),
        files=("minitransformer/autograd.py",),
        # Functions defined in the test file: the engine alone, none of a2's backward methods
        parts=(
            _part("backward: every node once, after all its consumers", 7,
                  A1 + "test_chain_rule_through_a_chain", A1 + "test_each_backward_runs_once_after_every_consumer_*",
                  A1 + "test_deep_graph_does_not_hit_the_recursion_limit"),
            _part("backward: gradients add up", 6,
                  A1 + "test_gradient_accumulates_when_a_tensor_is_used_twice", A1 + "test_diamond_sums_both_paths",
                  A1 + "test_backward_twice_accumulates_into_leaves", A1 + "test_leaf_gradients_are_never_shared"),
            _part("backward: seeds, dtypes, freeing the graph, errors", 7,
                  A1 + "test_explicit_gradient_for_a_non_scalar_root", A1 + "test_only_inputs_that_require_grad_get_one",
                  A1 + "test_gradient_dtype_follows_the_input", A1 + "test_graph_is_freed_unless_retained",
                  A1 + "test_retain_grad_keeps_an_intermediate_gradient", A1 + "test_backward_without_a_graph_is_an_error"),
        ),
    ),
    Assignment(
        id="a2",
        title="Backward of elementwise ops, reductions and matmul, with broadcasting",
        lessons=("03",),
        files=("minitransformer/autograd.py", "minitransformer/ops/elementwise.py",
               "minitransformer/ops/reduce.py", "minitransformer/ops/matmul.py"),
        # each backward called on its own with an explicit upstream gradient (test_a2_backward.py)
        parts=(
            _part("unbroadcast", 3, "tests/test_autograd.py::test_unbroadcast_sums_each_copy_back"),
            _part("Add, Sub and Neg.backward", 2, A2 + "test_binary_backward[*-Add]", A2 + "test_binary_backward[*-Sub]",
                  A2 + "test_neg_backward"),
            _part("Mul.backward", 1, A2 + "test_binary_backward[*-Mul]"),
            _part("Div.backward", 1, A2 + "test_div_backward"),
            _part("PowConstant.backward", 1, A2 + "test_pow_constant_*"),
            _part("Exp, Log and Sqrt.backward", 2, *(A2 + f"test_unary_backward[*-{op}]" for op in ("Exp", "Log", "Sqrt"))),
            _part("Abs and ReLU.backward", 1, *(A2 + f"test_unary_backward[*-{op}]" for op in ("Abs", "ReLU"))),
            _part("Tanh and Sigmoid.backward", 1, *(A2 + f"test_unary_backward[*-{op}]" for op in ("Tanh", "Sigmoid"))),
            _part("GELU.backward", 1, A2 + "test_gelu_backward"),
            _part("Maximum and Where.backward", 1, A2 + "test_maximum_backward", A2 + "test_where_backward"),
            _part("Sum and Mean.backward", 2, A2 + "test_reduction_backward[*-Sum]", A2 + "test_reduction_backward[*-Mean]"),
            _part("Var.backward", 1, A2 + "test_reduction_backward[*-Var]"),
            _part("Max.backward", 1, A2 + "test_max_backward*"),
            _part("MatMul.backward", 1, A2 + "test_matmul_backward"),
            _part("Linear.backward", 1, A2 + "test_linear_backward"),
        ),
    ),
    Assignment(
        id="a3",
        title="Fused backward of softmax, log-softmax, cross-entropy and layer norm",
        lessons=("06", "11"),
        files=("minitransformer/ops/softmax.py", "minitransformer/ops/loss.py",
               "minitransformer/ops/normalization.py"),
        parts=(
            _part("Softmax.backward", 4, A3 + "test_softmax_backward[*-Softmax]",
                  A3 + "test_softmax_backward_of_large_logits[Softmax]"),
            _part("LogSoftmax.backward", 4, A3 + "test_softmax_backward[*-LogSoftmax]",
                  A3 + "test_softmax_backward_of_large_logits[LogSoftmax]",
                  "tests/ops/test_softmax.py::test_log_softmax_of_extreme_logits_is_exact"),
            _part("CrossEntropy.backward", 6, A3 + "test_cross_entropy_backward*",
                  "tests/ops/test_loss.py::test_cross_entropy_ignore_index_rows_have_no_loss_and_no_gradient",
                  "tests/ops/test_loss.py::test_cross_entropy_all_ignored_is_zero_not_nan",
                  "tests/ops/test_loss.py::test_cross_entropy_float32_stays_float32"),
            _part("LayerNorm.backward", 6, A3 + "test_layer_norm_backward",
                  "tests/nn/test_layers.py::test_layer_norm_normalises_the_last_axis_and_passes_gradcheck"),
        ),
        file_lessons=(("minitransformer/ops/softmax.py", "06"), ("minitransformer/ops/loss.py", "06"),
                      ("minitransformer/ops/normalization.py", "11")),
    ),
    Assignment(
        id="a4",
        title="Scaled dot-product attention (forward and backward) and multi-head attention",
        lessons=("09", "10"),
        files=("minitransformer/ops/attention.py", "minitransformer/nn/gpt.py"),
        parts=(
            _part("ScaledDotProductAttention.forward", 8, A4 + "test_attention_forward_*",
                  ATTENTION + "test_attention_weights_sum_to_one_over_keys",
                  ATTENTION + "test_attention_without_mask_is_permutation_equivariant",
                  ATTENTION + "test_causal_output_ignores_the_future", ATTENTION + "test_one_key_returns_v",
                  ATTENTION + "test_masked_keys_get_no_weight_*", ATTENTION + "test_attention_scale_argument",
                  ATTENTION + "test_attention_dropout_drops_and_rescales_weights",
                  "tests/formulas/test_F14_attention.py::test_F14_attention_equals_formula",
                  "tests/formulas/test_F14_attention.py::test_F14_attention_batched_heads_equal_formula_per_head"),
            _part("ScaledDotProductAttention.backward", 7, A4 + "test_attention_backward_*",
                  "tests/formulas/test_F14_attention.py::test_F14_attention_gradient_matches_finite_differences",
                  ATTENTION + "test_fully_masked_row_gives_zeros_not_nan",
                  ATTENTION + "test_attention_dropout_reproducible_and_differentiable"),
            _part("split_heads, merge_heads and CausalSelfAttention.forward", 5,
                  A4 + "test_causal_self_attention_*", "tests/nn/test_gpt.py::test_logits_at_t_ignore_every_later_token"),
        ),
        file_lessons=(("minitransformer/ops/attention.py", "09"), ("minitransformer/nn/gpt.py", "10")),
    ),
    Assignment(
        id="a5",
        title="Optimizers: SGD with momentum, Adam, AdamW, and the learning-rate schedule",
        lessons=("07",),
        files=("minitransformer/optim/sgd.py", "minitransformer/optim/adam.py",
               "minitransformer/optim/schedule.py"),
        parts=(
            _part("SGD.step", 8, *("tests/optim/test_sgd.py::" + name for name in (
                "test_matches_the_transcription_step_by_step", "test_plain_sgd_is_f3",
                "test_momentum_does_not_alias_the_gradient", "test_*_converges_*",
                "test_logistic_regression_separates_linearly_separable_data"))),
            _part("Adam.step", 8, *("tests/optim/test_adam.py::" + name for name in (
                "test_matches_algorithm_1_step_by_step", "test_parameters_and_gradients_in_any_memory_layout",
                "test_first_step_*", "test_adam_couples_weight_decay_with_the_moments_and_adamw_does_not",
                "test_adamw_default_weight_decay_and_float32_stays_float32",
                "test_parameters_without_gradient_are_skipped", "test_does_not_modify_the_gradient_in_place",
                "test_minimises_a_quadratic"))),
            _part("cosine_lr", 4, "tests/optim/test_schedule.py::test_matches_nanogpts_get_lr",
                  "tests/optim/test_schedule.py::test_shape_of_the_schedule"),
        ),
    ),
    Assignment(
        id="a6",
        title="The GPT training loop and sampling",
        lessons=("12",),
        files=("minitransformer/nn/generation.py", "minitransformer/train.py"),
        parts=(
            _part("sampling: next_token_probabilities and draw", 10, "tests/nn/test_gpt.py::test_generate_*",
                  "tests/nn/test_gpt.py::test_top_k_*",
                  "tests/nn/test_gpt.py::test_samples_follow_softmax_of_logits_over_temperature"),
            _part("the training step in train()", 10, "tests/assignments/test_a6_training.py::*",
                  "tests/test_cli.py::test_interrupted_and_resumed_run_equals_straight_run"),
        ),
    ),
)


def get(assignment_id: str) -> Assignment:
    for assignment in ASSIGNMENTS:
        if assignment.id == assignment_id:
            return assignment
    known = ", ".join(a.id for a in ASSIGNMENTS)
    raise ValueError(f"assignments: no assignment {assignment_id!r}; expected one of {known}")


def handed_out_with(assignment_id: str) -> set[str]:
    """The assignments whose regions a copy of ``assignment_id`` hands out as stubs: it and
    every later one (course order is the order of ``ASSIGNMENTS``)."""
    ids = [a.id for a in ASSIGNMENTS]
    return set(ids[ids.index(get(assignment_id).id):])


def earlier_than(assignment_id: str) -> list[str]:
    ids = [a.id for a in ASSIGNMENTS]
    return ids[:ids.index(get(assignment_id).id)]


def is_hidden(nodeid: str, marks: dict | set = frozenset()) -> bool:
    return nodeid.startswith(HIDDEN_TESTS + "/") or "hidden" in marks


def share(points: int, weights: list[float]) -> list[Fraction]:
    """``points`` shared in proportion to ``weights``, as exact fractions that add up to it."""
    total = sum(Fraction(w) for w in weights)
    return [Fraction(points) * Fraction(w) / total for w in weights] if total else []
