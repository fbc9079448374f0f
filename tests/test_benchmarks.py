"""The benchmark suites run end to end (``python -m benchmarks --quick``, the default command:
into the scratch folder, leaving ``git status`` as it was) and write results a program can read.
Timings are not checked: they depend on the machine and its load."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.harness import machine_slug
from tests.worktree import REPO_ROOT, changes, tree_state

MACHINE_FIELDS = {"machine", "cpu_model", "cores", "python", "numpy", "blas", "date"}


@pytest.fixture(scope="module")
def quick_run():
    """The default smoke command, run as a user would; (its stdout, the tree's changes)."""
    before = tree_state()
    done = subprocess.run([sys.executable, "-m", "benchmarks", "--quick"], cwd=REPO_ROOT, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout, changes(before, tree_state())


@pytest.fixture(scope="module")
def quick_results(quick_run):
    stdout, _ = quick_run
    last = stdout.strip().splitlines()[-1]
    assert last.startswith("results and plots: "), last
    out = Path(last.removeprefix("results and plots: ").split("  (")[0])
    return out, {path.stem: json.loads(path.read_text()) for path in out.glob("*.json")}


def test_the_default_command_writes_to_scratch_and_changes_nothing_committed(quick_run, quick_results):
    _, tree_changes = quick_run
    out, _ = quick_results
    assert tree_changes == [], f"python -m benchmarks --quick changed {tree_changes}"
    assert out == REPO_ROOT / "benchmarks" / "scratch" / machine_slug()


def test_update_results_refuses_quick_numbers():
    done = subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "--update-results", "step"],
                          cwd=REPO_ROOT, capture_output=True, text=True)
    assert done.returncode == 2 and "would commit smoke-test numbers" in done.stderr


def test_every_suite_writes_json_with_the_machine(quick_results):
    _, results = quick_results
    assert set(results) == {"ops", "step", "profile", "llama", "scaling", "train", "startup",
                            "generation", "tokenizer", "distributed", "pretrained", "lora"}
    for suite, result in results.items():
        assert result["suite"] == suite and result["quick"] is True
        assert MACHINE_FIELDS <= set(result["machine"])
        assert result["matmul_peak_at_start"]["gflops"] > 0


def test_lora_compares_a_full_step_with_adapters_on_the_same_model(quick_results):
    _, results = quick_results
    full, *adapted = results["lora"]["results"]
    assert full["variant"] == "full fine-tune" and full["trainable"] == full["total"] and len(adapted) == 2
    for row in adapted:
        assert row["trainable"] < full["trainable"] and row["total"] == full["total"] + row["trainable"]
        assert row["saved_bytes"] == 4 * row["trainable"] and row["optimizer_state_bytes"] == 8 * row["trainable"]
        assert row["step_ms"] > 0 and row["time_vs_full"] > 0


def test_ops_times_fused_and_composed_for_every_op(quick_results):
    _, results = quick_results
    rows = results["ops"]["results"]
    ops = {"softmax", "log_softmax", "layer_norm", "cross_entropy", "attention", "attention_gqa", "embedding",
           "gelu", "rms_norm", "silu", "swiglu", "rotary"}
    assert {row["op"] for row in rows} == ops
    for row in rows:
        assert row["mode"] in ("forward", "forward+backward")
        assert row["fused_ms"] > 0 and row["composed_ms"] > 0 and row["reference_ms"] > 0


def test_step_reports_rate_flops_memory_and_ratios(quick_results):
    _, results = quick_results
    (row,) = results["step"]["results"]
    for key in ("minitransformer_ms", "minitransformer_tokens_per_s", "minitransformer_gflops",
                "minitransformer_fraction_of_peak", "minitransformer_peak_rss_delta",
                "minitransformer_tracemalloc_peak"):
        assert row[key] > 0, key
    assert row["flops_per_step"]["matmul_flops"] > 0
    # the Linear layers' products alone: part of the step's matmul count, at a rate above 0
    assert row["linear_products_numpy_ms"] > 0
    linear_flops = row["linear_products_numpy_gflops"] * row["linear_products_numpy_ms"] * 1e6
    assert 0.5 * row["flops_per_step"]["matmul_flops"] < linear_flops < row["flops_per_step"]["matmul_flops"]
    if "torch_ms" in row:  # PyTorch installed
        assert row["time_ratio"] > 0 and row["memory_ratio"] > 0
        assert row["linear_products_torch_ms"] > 0


def test_llama_step_is_timed_beside_torch_and_without_its_kernels(quick_results):
    _, results = quick_results
    (row,) = results["llama"]["results"]
    assert row["arch"] == "llama" and row["n_kv_head"] == 2
    for key in ("minitransformer_ms", "without_llama_kernels_ms", "minitransformer_tokens_per_s",
                "minitransformer_fraction_of_peak", "llama_kernels_speedup"):
        assert row[key] > 0, key
    assert row["flops_per_step"]["matmul_flops"] > 0
    if "torch_ms" in row:  # PyTorch installed
        assert row["time_ratio"] > 0 and row["torch_tokens_per_s"] > 0
    (profile,) = results["llama"]["profiles"]
    rows = {r["name"]: r for r in profile["rows"]}
    # per layer 4 attention and 3 SwiGLU projections, and the head
    assert rows["Linear.forward"]["calls_per_step"] == 4 * 7 + 1
    # 2 norms per layer and the final one; q and k rotated in each layer
    assert rows["RMSNorm.forward"]["calls_per_step"] == 9 and rows["RotaryEmbedding.forward"]["calls_per_step"] == 8


def test_the_llama_step_is_the_same_model_in_both_frameworks():
    """Same weights, same batches: the first losses agree to float32 rounding."""
    torch = pytest.importorskip("torch", reason="PyTorch is the other side of the comparison")
    from benchmarks.training import LLAMA_SMALL, minitransformer_step, torch_step

    tiny = dataclasses.replace(LLAMA_SMALL, batch=2, block=16, n_layer=2, n_embd=32)  # 4 heads, 2 for k, v
    ours, theirs = minitransformer_step(tiny)[0], torch_step(tiny, torch)[0]
    for _ in range(2):  # the second loss follows a clipped AdamW step in each
        assert ours() == pytest.approx(theirs(), rel=1e-5)


def test_without_registrations_puts_them_back():
    from benchmarks.suites.llama import LLAMA_KERNELS, without_registrations
    from minitransformer import dispatch

    before = {entry.name: entry for entry in dispatch.registrations()}
    with pytest.raises(RuntimeError, match="inside"):
        with without_registrations(LLAMA_KERNELS):
            assert not set(LLAMA_KERNELS) & {entry.name for entry in dispatch.registrations()}
            raise RuntimeError("inside the block")
    assert {entry.name: entry for entry in dispatch.registrations()} == before


def test_profile_splits_the_step_into_ops_that_add_up(quick_results):
    _, results = quick_results
    (config,) = results["profile"]["results"]
    assert config["config"] == "small"
    rows = {row["name"]: row for row in config["rows"]}
    assert rows["Linear.forward"]["ms_per_step"] > 0 and rows["Linear.backward"]["ms_per_step"] > 0
    # 4 layers x (c_attn, c_proj, c_fc, the MLP's c_proj) + lm_head
    assert rows["Linear.forward"]["calls_per_step"] == rows["Linear.backward"]["calls_per_step"] == 17
    phases = {row["phase"]: row["ms_per_step"] for row in config["phases"]}
    assert sum(row["ms_per_step"] for row in config["rows"]) == pytest.approx(
        phases["forward"] + phases["backward"], rel=1e-9)
    assert sum(phases.values()) == pytest.approx(config["step_ms"])
    assert rows["engine and Python overhead"]["ms_per_step"] >= 0
    assert all(0 <= row["share_percent"] <= 100 for row in config["rows"] + config["phases"])


def test_op_timer_changes_no_result_and_restores_the_ops_even_on_error():
    import numpy as np

    import minitransformer as mt
    from benchmarks.suites.profile import OpTimer
    from minitransformer.ops.matmul import Linear

    def methods():
        return {name: Linear.__dict__[name] for name in ("forward", "backward")}

    originals = methods()
    x, weight = mt.randn(3, 4), mt.randn(5, 4, requires_grad=True)
    Linear.apply(x, weight).sum().backward()
    expected_grad, weight.grad = weight.grad, None
    timer = OpTimer()
    with pytest.raises(RuntimeError, match="inside the timed block"):
        with timer.installed():
            assert methods() != originals
            Linear.apply(x, weight).sum().backward()
            raise RuntimeError("inside the timed block")
    assert methods() == originals
    np.testing.assert_array_equal(weight.grad, expected_grad)
    assert timer.calls["Linear.forward"] == timer.calls["Linear.backward"] == 1


def test_op_timer_counts_a_subclass_calling_its_reference_once():
    import minitransformer as mt
    from benchmarks.suites.profile import OpTimer
    from minitransformer.ops.matmul import Linear

    class WrappedLinear(Linear):  # an implementation that hands over to its reference
        def forward(self, *inputs):
            return super().forward(*inputs)

    timer = OpTimer()
    kernels = mt.get_kernels()
    mt.set_kernels("reference")  # Linear.apply runs Linear itself, not the fast layer's BlockedLinear
    try:
        with timer.installed():
            WrappedLinear.apply(mt.randn(3, 4), mt.randn(5, 4))
            Linear.apply(mt.randn(3, 4), mt.randn(5, 4))
    finally:
        mt.set_kernels(kernels)
    # not registered in dispatch, so it keeps its own name; Linear.forward inside it is not timed again
    assert timer.calls == {"WrappedLinear.forward": 1, "Linear.forward": 1}
    assert timer.implementations["Linear.forward"] == {"Linear"}


def test_scaling_sweeps_both_axes_and_train_reports_tokens_per_second(quick_results):
    _, results = quick_results
    rows = results["scaling"]["results"]
    assert {row["sweep"] for row in rows} == {"T", "n_embd"}
    assert all(row["attention_weights_bytes"] > 0 and row["minitransformer_ms"] > 0 for row in rows)
    assert results["train"]["loop_tokens_per_s"] > 0


def test_startup_times_a_fresh_process_phase_by_phase(quick_results):
    _, results = quick_results
    (run,) = results["startup"]["runs"]
    phases = [run[phase] for phase, _ in results["startup"]["phases"]]
    assert all(seconds > 0 for seconds in phases)
    assert run["to_first_step_s"] == pytest.approx(sum(phases))  # the phases follow one another
    assert run["second_step_s"] > 0


def test_plots_are_written_beside_the_json(quick_results):
    out, _ = quick_results
    assert {path.name for path in out.glob("*.png")} == {"ops.png", "step.png", "profile.png", "llama.png",
                                                         "scaling.png", "startup.png"}


def test_plots_say_when_pytorch_was_missing(quick_results, tmp_path):
    from benchmarks.plots import plot_ops, plot_step, run_notes

    _, results = quick_results
    for suite, plot in (("step", plot_step), ("ops", plot_ops)):
        result = results[suite]
        without_torch = {**result, "machine": {k: v for k, v in result["machine"].items() if k != "torch"},
                         "results": [{k: v for k, v in row.items() if not k.startswith("torch")}
                                     for row in result["results"]]}
        assert plot(without_torch, tmp_path, "no torch").stat().st_size > 0
        assert "PyTorch not installed" in run_notes(without_torch)
        assert "--quick" in run_notes(without_torch)
    if "torch" in results["step"]["machine"]:
        assert "PyTorch" not in run_notes(results["step"])


def test_generation_times_cached_and_uncached_for_both_models(quick_results):
    _, results = quick_results
    rows = results["generation"]["results"]
    assert {row["arch"] for row in rows} == {"gpt", "llama"}
    for row in rows:
        assert row["cached_ms"] > 0 and row["uncached_ms"] > 0
        assert row["speedup"] == row["uncached_ms"] / row["cached_ms"]
        assert row["cache_bytes_per_token"] > 0


def test_tokenizer_times_training_and_three_encoders(quick_results):
    _, results = quick_results
    result = results["tokenizer"]
    rows = {row["name"]: row for row in result["rows"]}
    for name in ("train, first call", "train", "encode (ByteBPETokenizer)", "encode (tokenizer.json reader)"):
        assert rows[name]["median_ms"] > 0 and rows[name]["cpu_ms"] >= 0
    if result["tokenizers"] is not None:  # the library installed: its rows, and its ids are the reader's
        assert rows["train (tokenizers)"]["median_ms"] > 0 and result["same_ids"] is True


def test_pretrained_reports_load_memory_and_generation_speed(quick_results):
    _, results = quick_results
    result = results["pretrained"]
    assert [(row["model"], row["stored"]) for row in result["load"]] == [("tiny", "float32"), ("tiny", "bf16")]
    for row in result["load"]:
        assert row["load_s"] > 0 and row["peak_rss_delta"] > 0 and row["parameters"] == 119104
        assert row["peak_over_fp32_weights"] == row["peak_rss_delta"] / (4 * row["parameters"])
    (generation,) = result["generation"]
    assert generation["minitransformer_tokens_per_s"] > 0 and generation["new_tokens"] == 8
    if "transformers_tokens_per_s" in generation:  # the cross-check extra is installed
        assert generation["same_tokens"] == 8  # the same random checkpoint, greedy: the same tokens
