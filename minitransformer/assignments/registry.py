"""The assignments: which solution regions each one removes, which lesson teaches it, which
tests grade it and how many points it is worth.

A test belongs to an assignment when its node id, without the parameters in brackets, matches
one of the assignment's patterns (``fnmatch`` syntax), or when it carries the assignment's
marker (``@pytest.mark.a2``), as an instructor's hidden test may. Points: the assignment's
``points`` are shared among its tests in proportion to their weights (1 unless a pattern or a
``@pytest.mark.weight(w)`` says otherwise), so a test is worth the same on every machine, and
a submission gets the points of every test it passes.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path

HIDDEN_TESTS = "tests/hidden"  # instructor-only tests: graded, never released


@dataclass(frozen=True)
class Tests:
    """Tests picked by a node-id pattern, e.g. "tests/ops/test_softmax.py::test_*gradient*"."""

    pattern: str
    weight: float = 1.0

    def matches(self, nodeid: str) -> bool:
        return fnmatch.fnmatchcase(nodeid.split("[", 1)[0], self.pattern)

    @property
    def file(self) -> str:
        return self.pattern.split("::", 1)[0]


@dataclass(frozen=True)
class Assignment:
    id: str
    title: str
    lessons: tuple[str, ...]  # lesson numbers, "03" -> lessons/03_*.md
    files: tuple[str, ...]  # the files whose solution regions the student writes
    points: float
    tests: tuple[Tests, ...]
    uses: tuple[str, ...] = field(default=())  # assignments whose code these tests also run
    file_lessons: tuple[tuple[str, str], ...] = field(default=())  # (file, lesson number) where they differ
    # the fast layer's modules that implement ops the student writes: left out of the student
    # copy, so that the student's reference code is what runs and is graded
    fast_files: tuple[str, ...] = field(default=())

    def weight_of(self, nodeid: str) -> float | None:
        """The test's weight in this assignment, or None if the test is not part of it."""
        return next((t.weight for t in self.tests if t.matches(nodeid)), None)

    def test_files(self) -> list[str]:
        return sorted({t.file for t in self.tests})

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


def _tests(*patterns: str | tuple[str, float]) -> tuple[Tests, ...]:
    return tuple(Tests(*p) if isinstance(p, tuple) else Tests(p) for p in patterns)


ASSIGNMENTS: tuple[Assignment, ...] = (
    Assignment(
        id="a1",
        title="The autograd engine: reverse topological order and gradient accumulation",
        lessons=("03",),
        files=("minitransformer/autograd.py",),
        points=20,
        tests=_tests(
            # Functions defined in the test file: the engine alone, none of a2's backward methods
            "tests/assignments/test_a1_engine.py::*",
        ),
    ),
    Assignment(
        id="a2",
        title="Backward of elementwise ops, reductions and matmul, with broadcasting",
        lessons=("03",),
        files=("minitransformer/autograd.py", "minitransformer/ops/elementwise.py",
               "minitransformer/ops/reduce.py", "minitransformer/ops/matmul.py"),
        fast_files=("minitransformer/fast/cpu/elementwise.py", "minitransformer/fast/cpu/matmul.py"),
        points=20,
        tests=_tests(
            "tests/test_autograd.py::test_unbroadcast_sums_each_copy_back",
            "tests/ops/test_elementwise.py::test_binary_ops_broadcast_like_numpy",
            "tests/ops/test_elementwise.py::test_div_broadcasts_like_numpy",
            "tests/ops/test_elementwise.py::test_unary_ops_match_numpy",
            "tests/ops/test_elementwise.py::test_pow_*",
            "tests/ops/test_elementwise.py::test_maximum_*",
            "tests/ops/test_elementwise.py::test_where_selects_and_routes_gradient",
            "tests/ops/test_reduce.py::test_reductions_match_numpy",
            "tests/ops/test_reduce.py::test_var_matches_numpy",
            "tests/ops/test_reduce.py::test_*_ties_split_gradient_evenly",
            "tests/ops/test_reduce.py::test_sum_over_empty_axis_is_zero_with_empty_gradient",
            "tests/ops/test_matmul.py::test_matmul_*",
            "tests/ops/test_matmul.py::test_linear_matches_numpy",
            # against PyTorch's autograd (skipped where PyTorch is not installed)
            "tests/crosscheck/test_ops_torch.py::test_matmul_every_rank",
            "tests/crosscheck/test_ops_torch.py::test_broadcasting_arithmetic",
            "tests/crosscheck/test_ops_torch.py::test_maximum_and_pow",
            "tests/crosscheck/test_ops_torch.py::test_reductions_with_axes",
            "tests/crosscheck/test_ops_torch.py::test_elementwise_functions",
            "tests/crosscheck/test_ops_torch.py::test_linear",
        ),
        uses=("a1",),
    ),
    Assignment(
        id="a3",
        title="Fused backward of softmax, log-softmax, cross-entropy and layer norm",
        lessons=("06", "11"),
        files=("minitransformer/ops/softmax.py", "minitransformer/ops/loss.py",
               "minitransformer/ops/normalization.py"),
        points=20,
        tests=_tests(
            "tests/ops/test_softmax.py::test_matches_numpy",
            "tests/ops/test_softmax.py::test_log_softmax_of_extreme_logits_is_exact",
            "tests/ops/test_loss.py::test_cross_entropy_matches_numpy",
            "tests/ops/test_loss.py::test_cross_entropy_properties",
            "tests/ops/test_loss.py::test_cross_entropy_ignore_index_rows_have_no_loss_and_no_gradient",
            "tests/ops/test_loss.py::test_cross_entropy_all_ignored_is_zero_not_nan",
            "tests/ops/test_loss.py::test_cross_entropy_float32_stays_float32",
            "tests/ops/test_normalization.py::test_layer_norm_matches_numpy",
            "tests/nn/test_layers.py::test_layer_norm_normalises_the_last_axis_and_passes_gradcheck",
            "tests/crosscheck/test_ops_torch.py::test_softmax_and_log_softmax",
            "tests/crosscheck/test_ops_torch.py::test_log_softmax_large_logits",
            "tests/crosscheck/test_ops_torch.py::test_layer_norm",
            "tests/crosscheck/test_ops_torch.py::test_cross_entropy_with_ignore_index",
        ),
        uses=("a1", "a2"),
        file_lessons=(("minitransformer/ops/softmax.py", "06"), ("minitransformer/ops/loss.py", "06"),
                      ("minitransformer/ops/normalization.py", "11")),
        fast_files=("minitransformer/fast/cpu/softmax.py", "minitransformer/fast/cpu/normalization.py"),
    ),
    Assignment(
        id="a4",
        title="Scaled dot-product attention (forward and backward) and multi-head attention",
        lessons=("09", "10"),
        files=("minitransformer/ops/attention.py", "minitransformer/nn/gpt.py"),
        fast_files=("minitransformer/fast/cpu/attention.py",),
        points=20,
        tests=_tests(
            "tests/ops/test_attention.py::test_attention_matches_numpy",
            "tests/ops/test_attention.py::test_attention_with_*_mask",
            "tests/ops/test_attention.py::test_fully_masked_row_gives_zeros_not_nan",
            "tests/ops/test_attention.py::test_attention_weights_sum_to_one_over_keys",
            "tests/ops/test_attention.py::test_attention_without_mask_is_permutation_equivariant",
            "tests/ops/test_attention.py::test_causal_output_ignores_the_future",
            "tests/ops/test_attention.py::test_one_key_returns_v",
            "tests/ops/test_attention.py::test_attention_dropout_*",
            "tests/ops/test_attention.py::test_attention_scale_argument",
            "tests/formulas/test_F14_attention.py::test_F14_*",
            "tests/crosscheck/test_ops_torch.py::test_attention",
            "tests/crosscheck/test_ops_torch.py::test_attention_with_masks",
            "tests/nn/test_gpt.py::test_logits_at_t_ignore_every_later_token",
        ),
        uses=("a1", "a2"),
        file_lessons=(("minitransformer/ops/attention.py", "09"), ("minitransformer/nn/gpt.py", "10")),
    ),
    Assignment(
        id="a5",
        title="Optimizers: SGD with momentum, Adam, AdamW, and the learning-rate schedule",
        lessons=("07",),
        files=("minitransformer/optim/sgd.py", "minitransformer/optim/adam.py",
               "minitransformer/optim/schedule.py"),
        fast_files=("minitransformer/fast/cpu/adam.py",),
        points=20,
        tests=_tests(
            "tests/optim/test_sgd.py::test_matches_the_transcription_step_by_step",
            "tests/optim/test_sgd.py::test_plain_sgd_is_f3",
            "tests/optim/test_sgd.py::test_momentum_does_not_alias_the_gradient",
            "tests/optim/test_sgd.py::test_*_converges_*",
            "tests/optim/test_sgd.py::test_logistic_regression_separates_linearly_separable_data",
            "tests/optim/test_adam.py::test_matches_algorithm_1_step_by_step",
            "tests/optim/test_adam.py::test_first_step_*",
            "tests/optim/test_adam.py::test_adam_couples_weight_decay_with_the_moments_and_adamw_does_not",
            "tests/optim/test_adam.py::test_adamw_default_weight_decay_and_float32_stays_float32",
            "tests/optim/test_adam.py::test_parameters_without_gradient_are_skipped",
            "tests/optim/test_adam.py::test_does_not_modify_the_gradient_in_place",
            "tests/optim/test_adam.py::test_minimises_a_quadratic",
            "tests/optim/test_schedule.py::test_matches_nanogpts_get_lr",
            "tests/optim/test_schedule.py::test_shape_of_the_schedule",
        ),
        uses=("a1", "a2"),
    ),
    Assignment(
        id="a6",
        title="The GPT training loop and sampling",
        lessons=("12",),
        files=("minitransformer/nn/gpt.py", "minitransformer/train.py"),
        points=20,
        tests=_tests(
            "tests/nn/test_gpt.py::test_generate_*",
            "tests/nn/test_gpt.py::test_top_k_*",
            "tests/nn/test_gpt.py::test_samples_follow_softmax_of_logits_over_temperature",
            "tests/assignments/test_a6_training.py::*",
            "tests/test_cli.py::test_interrupted_and_resumed_run_equals_straight_run",
        ),
        uses=("a1", "a2", "a3", "a4", "a5"),
    ),
)


def get(assignment_id: str) -> Assignment:
    for assignment in ASSIGNMENTS:
        if assignment.id == assignment_id:
            return assignment
    known = ", ".join(a.id for a in ASSIGNMENTS)
    raise ValueError(f"assignments: no assignment {assignment_id!r}; expected one of {known}")


def assignments_of(nodeid: str, markers: set[str] = frozenset()) -> dict[str, float]:
    """{assignment id: weight} for a test, by the registry's patterns or the test's markers."""
    found = {}
    for assignment in ASSIGNMENTS:
        weight = assignment.weight_of(nodeid)
        if weight is None and assignment.id in markers:
            weight = 1.0
        if weight is not None:
            found[assignment.id] = weight
    return found


def is_hidden(nodeid: str, markers: set[str] = frozenset()) -> bool:
    return nodeid.startswith(HIDDEN_TESTS + "/") or "hidden" in markers
