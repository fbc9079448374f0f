"""Plots of the suites' results (matplotlib, Agg: no display needed), saved beside the JSON."""

from __future__ import annotations

from pathlib import Path

import numpy as np

COLORS = {"fused": "tab:blue", "composed": "tab:orange", "torch": "tab:green",
          "minitransformer": "tab:blue", "numpy_kernels": "tab:cyan"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path, bottom_margin: float = 0.0) -> Path:
    fig.tight_layout(rect=(0, bottom_margin, 1, 1))  # bottom_margin: room for a figure legend
    fig.savefig(path, dpi=110)
    fig.clf()
    return path


def plot_ops(result: dict, out_dir: Path, subtitle: str) -> Path:
    """Forward+backward ms per op (log scale), fused vs composed vs PyTorch, a panel per size."""
    plt = _pyplot()
    rows = [r for r in result["results"] if r["mode"] == "forward+backward"]
    sizes = sorted({r["size"] for r in rows}, key=["small", "large"].index)
    fig, axes = plt.subplots(1, len(sizes), figsize=(6 * len(sizes), 4), squeeze=False)
    for ax, size in zip(axes[0], sizes):
        ops = [r for r in rows if r["size"] == size]
        impls = [i for i in ("fused", "composed", "torch") if ops[0].get(f"{i}_ms") is not None]
        x = np.arange(len(ops))
        for j, impl in enumerate(impls):
            ax.bar(x + (j - (len(impls) - 1) / 2) * 0.27, [r[f"{impl}_ms"] for r in ops], 0.27,
                   label=impl, color=COLORS[impl])
        ax.set_xticks(x, [r["op"] for r in ops], rotation=30)
        ax.set_yscale("log")
        ax.set_ylabel("forward + backward, ms (log)")
        ax.set_title(f"{size} GPT shapes")
        ax.legend()
    fig.suptitle(f"fused ops vs composed primitives vs PyTorch  ({subtitle})", fontsize=9)
    return _save(fig, out_dir / "ops.png")


def plot_step(result: dict, out_dir: Path, subtitle: str) -> Path:
    """ms per step for both frameworks, and the fraction of the matmul peak each reaches."""
    plt = _pyplot()
    rows = result["results"]
    names = [n for n in ("minitransformer", "numpy_kernels", "torch") if rows[0].get(f"{n}_ms") is not None]
    labels = {"minitransformer": "minitransformer", "numpy_kernels": "minitransformer, NumPy kernels",
              "torch": "torch"}
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    x = np.arange(len(rows))
    width = 0.7 / len(names)
    for j, name in enumerate(names):
        offset = (j - (len(names) - 1) / 2) * width
        left.bar(x + offset, [r[f"{name}_ms"] for r in rows], width, label=labels[name], color=COLORS[name])
        right.bar(x + offset, [r[f"{name}_fraction_of_peak"] for r in rows], width, label=labels[name],
                  color=COLORS[name])
    labels = [f"{r['config']}\nB{r['batch']} T{r['block']} L{r['n_layer']} C{r['n_embd']}" for r in rows]
    peak_labels = [label + (f"\npeak {r['matmul_peak_gflops']:.0f} GFLOP/s" if "matmul_peak_gflops" in r else "")
                   for label, r in zip(labels, rows)]
    left.set_xticks(x, labels)
    left.set_yscale("log")
    left.set_ylabel("ms per training step (log)")
    right.set_xticks(x, peak_labels)
    right.set_ylabel("matmul GFLOP/s / peak")
    right.axhline(0.6, color="gray", ls="--", lw=0.8)
    fig.legend(*left.get_legend_handles_labels(), loc="lower center", ncol=len(names), fontsize=8)
    fig.suptitle(f"one training step; the peak timed alongside each config  ({subtitle})", fontsize=9)
    return _save(fig, out_dir / "step.png", bottom_margin=0.07)


def plot_scaling(result: dict, out_dir: Path, subtitle: str) -> Path:
    """Time and memory over T (top) and n_embd (bottom), log-log."""
    plt = _pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(10, 7), squeeze=False)
    for row_axes, sweep, key, label in ((axes[0], "T", "block", "T (context length)"),
                                        (axes[1], "n_embd", "n_embd", "n_embd (width C)")):
        rows = [r for r in result["results"] if r["sweep"] == sweep]
        if not rows:
            continue
        xs = [r[key] for r in rows]
        time_ax, memory_ax = row_axes
        for name in ("minitransformer", "torch"):
            if rows[0].get(f"{name}_ms") is not None:
                time_ax.plot(xs, [r[f"{name}_ms"] for r in rows], "o-", label=name, color=COLORS[name])
        memory_series = [("minitransformer_peak_rss_delta", "ours, peak RSS", "tab:blue", "o-"),
                         ("minitransformer_tracemalloc_peak", "ours, tracemalloc", "tab:blue", "x--"),
                         ("torch_peak_rss_delta", "torch, peak RSS", "tab:green", "o-"),
                         ("attention_weights_bytes", "P (B,nh,T,T), kept by the NumPy code", "gray", ":")]
        for field, name, color, style in memory_series:
            if rows[0].get(field) is not None:
                memory_ax.plot(xs, [r[field] / 2**20 for r in rows], style, label=name, color=color)
        for ax, ylabel in ((time_ax, "ms per step"), (memory_ax, "peak memory, MiB")):
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_xlabel(label)
            ax.set_ylabel(ylabel)
            ax.grid(alpha=0.3, which="both")
            ax.legend(fontsize=8)
    fig.suptitle(f"scaling: GPT L{result['n_layer']} nh{result['n_head']} B{result['batch']}  ({subtitle})", fontsize=9)
    return _save(fig, out_dir / "scaling.png")


def plot_profile(result: dict, out_dir: Path, subtitle: str, top: int = 12) -> Path:
    """ms per step of the costliest ops, forward and backward stacked, a panel per config; the
    engine and Python overhead is a bar of its own."""
    plt = _pyplot()
    configs = result["results"]
    fig, axes = plt.subplots(1, len(configs), figsize=(6.5 * len(configs), 5), squeeze=False)
    for ax, config in zip(axes[0], configs):
        ms = {}  # (op, pass) -> ms per step; the overhead has pass None
        for row in config["rows"]:
            ms[row["op"] or row["name"], row["pass"]] = row["ms_per_step"]
        names = sorted({name for name, _ in ms}, key=lambda name: -sum(
            ms.get((name, p), 0.0) for p in ("forward", "backward", None)))[:top]
        y = np.arange(len(names))
        forward = np.array([ms.get((name, "forward"), 0.0) for name in names])
        backward = np.array([ms.get((name, "backward"), 0.0) for name in names])
        overhead = np.array([ms.get((name, None), 0.0) for name in names])
        ax.barh(y, forward, label="forward", color="tab:blue")
        ax.barh(y, backward, left=forward, label="backward", color="tab:orange")
        ax.barh(y, overhead, label="engine and Python", color="tab:gray")
        ax.set_yticks(y, names)
        ax.invert_yaxis()  # the costliest on top
        ax.set_xlabel("ms per training step")
        ax.set_title(f"{config['config']} (B{config['batch']} T{config['block']} L{config['n_layer']} "
                     f"C{config['n_embd']}): {config['step_ms']:.1f} ms per step", fontsize=9)
        ax.legend(fontsize=8, loc="lower right")
    fig.suptitle(f"where one training step goes, top {top}  ({subtitle})", fontsize=9)
    return _save(fig, out_dir / "profile.png")


PLOTS = {"ops": plot_ops, "step": plot_step, "profile": plot_profile, "scaling": plot_scaling}
