"""Plots of the suites' results (matplotlib, Agg: no display needed), saved beside the JSON.

Every plot labels its axes with their units, and its legend sits below the panels, where it
covers no data. A plot whose run had no PyTorch says so in its title, instead of showing no
PyTorch bars without a word.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

COLORS = {"fused": "tab:blue", "composed": "tab:orange", "torch": "tab:green",
          "minitransformer": "tab:blue", "numpy_kernels": "tab:cyan", "without_llama_kernels": "tab:purple"}
LABELS = {"fused": "fused (one node)", "composed": "composed (primitive ops)", "torch": "PyTorch",
          "minitransformer": "minitransformer", "numpy_kernels": "minitransformer, NumPy kernels",
          "without_llama_kernels": "minitransformer without the Llama ops' kernels"}
# the large step's target in the README: at least 60% of the matmul peak
PEAK_TARGET = 0.6


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _plain_numbers(axis) -> None:
    """Tick labels as plain numbers (20, 50, 100), not 2 x 10^1, also on a log axis: at 1, 2 and
    5 times each power of ten, or at every multiple where the data span less than a decade (so
    a narrow axis still has several labels). Call it after plotting."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    if axis.get_scale() == "log":
        low, high = sorted(axis.get_view_interval())
        subs = (1.0, 2.0, 5.0) if high / low >= 10 else tuple(float(k) for k in range(1, 10))
        axis.set_major_locator(LogLocator(base=10, subs=subs))
        axis.set_minor_formatter(NullFormatter())


def run_notes(result: dict) -> str:
    """What the title must say about the run: a busy machine, smoke numbers, no PyTorch."""
    notes = []
    machine = result.get("machine", {})
    load, cores = machine.get("load_average_1_5_15_min"), machine.get("cores")
    if load and cores and load[0] >= cores:
        notes.append(f"busy machine (load average {load[0]:.1f} on {cores} cores): slower than idle")
    if result.get("quick"):
        notes.append("--quick: few repetitions, noisy, not for quoting")
    if "torch" not in result.get("machine", {}):
        notes.append("PyTorch not installed, so no PyTorch bars (pip install torch to compare)")
    return "\n".join(notes)


def _save(fig, path: Path, legend: tuple | None = None, columns: int = 4) -> Path:
    """Save with ``legend`` (handles, labels) centred below the panels."""
    if legend is not None and legend[0]:
        fig.legend(*legend, loc="outside lower center", ncol=min(columns, len(legend[0])), fontsize=8,
                   frameon=False)
    fig.savefig(path, dpi=110)
    fig.clf()
    return path


def _figure(plt, rows: int, columns: int, size: tuple[float, float]):
    fig, axes = plt.subplots(rows, columns, figsize=size, squeeze=False, layout="constrained")
    return fig, axes


def plot_ops(result: dict, out_dir: Path, subtitle: str) -> Path:
    """Forward+backward ms per op (log scale), fused vs composed vs PyTorch, a panel per size."""
    plt = _pyplot()
    rows = [r for r in result["results"] if r["mode"] == "forward+backward"]
    sizes = sorted({r["size"] for r in rows}, key=["small", "large"].index)
    fig, axes = _figure(plt, 1, len(sizes), (max(7.5, 6 * len(sizes)), 4.6))
    for ax, size in zip(axes[0], sizes):
        ops = [r for r in rows if r["size"] == size]
        impls = [i for i in ("fused", "composed", "torch") if ops[0].get(f"{i}_ms") is not None]
        x = np.arange(len(ops))
        for j, impl in enumerate(impls):
            ax.bar(x + (j - (len(impls) - 1) / 2) * 0.27, [r[f"{impl}_ms"] for r in ops], 0.27,
                   label=LABELS[impl], color=COLORS[impl])
        ax.set_xticks(x, [r["op"] for r in ops], rotation=30)
        ax.set_yscale("log")
        _plain_numbers(ax.yaxis)
        ax.set_ylabel("forward + backward, ms (log scale)")
        ax.set_title(f"{size} GPT shapes", fontsize=10)
        ax.grid(axis="y", alpha=0.3, which="both")
    note = run_notes(result)
    fig.suptitle(f"fused ops vs composed primitives vs PyTorch  ({subtitle})" + (f"\n{note}" if note else ""),
                 fontsize=9)
    return _save(fig, out_dir / "ops.png", axes[0][0].get_legend_handles_labels())


def plot_step(result: dict, out_dir: Path, subtitle: str, file_stem: str = "step",
              peak_target: float | None = PEAK_TARGET, model: str = "") -> Path:
    """ms per step, a panel per config (linear axes from 0, each its own scale, so a 10% gap looks
    like 10%), and the fraction of the matmul peak each framework reaches; into ``file_stem``.png."""
    plt = _pyplot()
    rows = result["results"]
    names = [n for n in ("minitransformer", "without_llama_kernels", "numpy_kernels", "torch")
             if rows[0].get(f"{n}_ms") is not None]
    fig, axes = _figure(plt, 1, len(rows) + 1, (max(10.0, 3.6 * (len(rows) + 1)), 4.6))
    width = 0.8 / len(names)
    for ax, row in zip(axes[0], rows):
        values = [row[f"{name}_ms"] for name in names]
        bars = ax.bar(np.arange(len(names)), values, 0.7, color=[COLORS[n] for n in names],
                      label=[LABELS[n] for n in names])
        ax.bar_label(bars, [f"{v:.3g}" if v < 100 else f"{v:.0f}" for v in values], fontsize=8)
        ax.set_xticks([])
        ax.set_ylim(0, max(values) * 1.15)
        ax.set_ylabel("ms per training step")
        ax.set_title(f"{row['config']}: B{row['batch']} T{row['block']} L{row['n_layer']} C{row['n_embd']}",
                     fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    peak_ax = axes[0][-1]
    x = np.arange(len(rows))
    for j, name in enumerate(names):
        peak_ax.bar(x + (j - (len(names) - 1) / 2) * width, [r[f"{name}_fraction_of_peak"] * 100 for r in rows],
                    width, color=COLORS[name])
    if peak_target is not None:
        peak_ax.axhline(peak_target * 100, color="gray", ls="--", lw=0.8,
                        label=f"target for the large config: {peak_target:.0%} of the peak")
    peak_ax.set_xticks(x, [f"{r['config']}\npeak {r['matmul_peak_gflops']:.0f} GFLOP/s" for r in rows])
    peak_ax.set_ylabel("matmul GFLOP/s, % of the machine's peak")
    peak_ax.set_ylim(0, 100)
    peak_ax.set_title("share of the matmul peak", fontsize=10)
    peak_ax.grid(axis="y", alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    target_handles, target_labels = peak_ax.get_legend_handles_labels()
    note = run_notes(result)
    fig.suptitle(f"one training step{model} (forward, backward, clip, AdamW)  ({subtitle})\nthe peak: a 2048^3 float32 "
                 f"product timed alongside" + (f"\n{note}" if note else ""), fontsize=9)
    return _save(fig, out_dir / f"{file_stem}.png", (handles + target_handles, labels + target_labels), columns=2)


def plot_llama(result: dict, out_dir: Path, subtitle: str) -> Path:
    """The Llama-style model's step, drawn as the GPT's (``plot_step``), into llama.png."""
    return plot_step(result, out_dir, subtitle, file_stem="llama", peak_target=None,
                     model=" of the Llama-style model")


def plot_scaling(result: dict, out_dir: Path, subtitle: str) -> Path:
    """Time and memory over T (top) and n_embd (bottom), log-log."""
    plt = _pyplot()
    fig, axes = _figure(plt, 2, 2, (10, 7.8))
    for row_axes, sweep, key, label in ((axes[0], "T", "block", "T, context length (tokens)"),
                                        (axes[1], "n_embd", "n_embd", "n_embd, width C")):
        rows = [r for r in result["results"] if r["sweep"] == sweep]
        if not rows:
            continue
        xs = [r[key] for r in rows]
        time_ax, memory_ax = row_axes
        for name, text in (("minitransformer", "minitransformer, time"), ("torch", "PyTorch, time")):
            if rows[0].get(f"{name}_ms") is not None:
                time_ax.plot(xs, [r[f"{name}_ms"] for r in rows], "o-", label=text, color=COLORS[name])
        memory_series = [("minitransformer_peak_rss_delta", "minitransformer, peak RSS", "tab:blue", "s-"),
                         ("minitransformer_tracemalloc_peak", "minitransformer, live arrays (tracemalloc)",
                          "tab:blue", "x--"),
                         ("torch_peak_rss_delta", "PyTorch, peak RSS", "tab:green", "s-"),
                         ("attention_weights_bytes", "P (B, nh, T, T), kept by the NumPy code", "gray", ".:")]
        for field, name, color, style in memory_series:
            if rows[0].get(field) is not None:
                memory_ax.plot(xs, [r[field] / 2**20 for r in rows], style, label=name, color=color)
        for ax, ylabel in ((time_ax, "ms per training step (log scale)"), (memory_ax, "peak memory, MiB (log scale)")):
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_xticks(xs, [str(x) for x in xs])
            ax.xaxis.set_minor_locator(plt.NullLocator())
            _plain_numbers(ax.yaxis)
            ax.set_xlabel(label)
            ax.set_ylabel(ylabel)
            ax.grid(alpha=0.3, which="both")
    handles, labels = [], []
    for ax in axes[0]:  # the same series in both rows
        h, l = ax.get_legend_handles_labels()
        handles, labels = handles + h, labels + l
    note = run_notes(result)
    fig.suptitle(f"scaling: GPT L{result['n_layer']} nh{result['n_head']} B{result['batch']}  ({subtitle})"
                 + (f"\n{note}" if note else ""), fontsize=9)
    return _save(fig, out_dir / "scaling.png", (handles, labels), columns=3)


def plot_profile(result: dict, out_dir: Path, subtitle: str, top: int = 12) -> Path:
    """ms per step of the costliest ops, forward and backward stacked, a panel per config; the
    engine and Python overhead is a bar of its own."""
    plt = _pyplot()
    configs = result["results"]
    fig, axes = _figure(plt, 1, len(configs), (max(8.0, 6.5 * len(configs)), 5))
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
        ax.grid(axis="x", alpha=0.3)
    note = run_notes({**result, "machine": {**result["machine"], "torch": "not needed"}})  # no PyTorch here
    fig.suptitle(f"where one training step of minitransformer goes, top {top}  ({subtitle})"
                 + (f"\n{note}" if note else ""), fontsize=9)
    return _save(fig, out_dir / "profile.png", axes[0][0].get_legend_handles_labels())


def plot_startup(result: dict, out_dir: Path, subtitle: str) -> Path:
    """Each fresh process's way to its first training step, phase by phase, a bar per run."""
    plt = _pyplot()
    runs = result["runs"]
    fig, axes = _figure(plt, 1, 1, (8, 1.6 + 0.45 * len(runs)))
    ax = axes[0][0]
    y = np.arange(len(runs))
    left = np.zeros(len(runs))
    colors = ("tab:gray", "tab:blue", "tab:cyan", "tab:orange")
    for (phase, text), color in zip(result["phases"], colors):
        widths = np.array([run[phase] for run in runs])
        ax.barh(y, widths, left=left, color=color, label=text)
        left += widths
    for i, total in enumerate(left):
        ax.text(total, i, f" {total:.2f} s", va="center", fontsize=8)
    ax.set_yticks(y, [f"run {i + 1}" + (" (first)" if i == 0 else "") for i in range(len(runs))])
    ax.invert_yaxis()
    ax.set_xlim(0, left.max() * 1.15)
    ax.set_xlabel("seconds since the process was launched")
    ax.grid(axis="x", alpha=0.3)
    note = run_notes({**result, "machine": {**result["machine"], "torch": "not needed"}})
    fig.suptitle(f"time to the first training step of a fresh process ({result['config']})  ({subtitle})"
                 + (f"\n{note}" if note else ""), fontsize=9)
    return _save(fig, out_dir / "startup.png", ax.get_legend_handles_labels())


PLOTS = {"ops": plot_ops, "step": plot_step, "llama": plot_llama, "profile": plot_profile, "scaling": plot_scaling,
         "startup": plot_startup}
