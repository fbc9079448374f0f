"""Suite ``profile``: where the time of one GPT training step goes, op by op (the ``llama``
suite profiles the Llama-style model's step with ``profile_config`` too).

The step is the one ``training.minitransformer_step`` runs (same model, AdamW, batches and
clipping), taken apart into four phases, each timed on its own:
    forward         model(x, y): logits and loss
    backward        loss.backward()
    clip_grad_norm  optim.clip_grad_norm(params, 1.0)
    optimizer       optimizer.step() and optimizer.zero_grad()
Inside the first two, ``OpTimer`` times every op: the ``forward`` and ``backward`` methods of
each ``autograd.Function`` subclass that defines them, reported under the name of the op
("Linear.forward", "Linear.backward", ...; a fast implementation registered in
``minitransformer.dispatch`` counts under the op it stands in for) with the class that ran it,
``BlockedLinear`` or ``Linear``, as ``implementation``. Only the outermost op method is timed,
so a subclass that calls its reference's method is counted once. What forward and backward
spend outside the ops is "engine and Python overhead": ``Function.apply`` wrapping arrays in
tensors and recording the graph, the backward engine's walk and gradient sums, the modules'
own Python.

Every figure is a mean over the timed steps (after warm-up steps), so the op rows and the
overhead add up to forward + backward exactly. The timer adds two clock reads per op call.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections import Counter, defaultdict

import numpy as np

from ..harness import print_table
from ..training import BETAS, GRAD_CLIP, LARGE, LEARNING_RATE, SMALL, WEIGHT_DECAY, StepConfig, batches

WARMUP_STEPS = 2
PHASES = ("forward", "backward", "clip_grad_norm", "optimizer")
OVERHEAD = "engine and Python overhead"


def _function_classes():
    """Every subclass of ``autograd.Function`` defined so far, subclasses of subclasses too."""
    from minitransformer.autograd import Function

    found, pending = set(), [Function]
    while pending:
        for subclass in pending.pop().__subclasses__():
            if subclass not in found:
                found.add(subclass)
                pending.append(subclass)
    return found


class OpTimer:
    """Seconds and calls per op method ("Linear.forward", ...), accumulated while installed."""

    def __init__(self):
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: Counter[str] = Counter()
        self.implementations: dict[str, set[str]] = defaultdict(set)  # "Linear.forward" -> {"BlockedLinear"}
        self.total_seconds = 0.0  # kept as we go, so reading it between phases costs nothing
        self._depth = 0  # op methods running: only the outermost one is timed

    def reset(self) -> None:
        self.seconds.clear()
        self.calls.clear()
        self.implementations.clear()
        self.total_seconds = 0.0

    def _timed(self, name: str, implementation: str, method):
        @functools.wraps(method)
        def timed(*args, **kwargs):
            if self._depth:  # inside another op method (a subclass calling its reference)
                return method(*args, **kwargs)
            self._depth += 1
            start = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - start
                self._depth -= 1
                self.seconds[name] += elapsed
                self.total_seconds += elapsed
                self.calls[name] += 1
                self.implementations[name].add(implementation)

        return timed

    @contextlib.contextmanager
    def installed(self):
        """Inside the block every op's own forward and backward are timed; on leaving it, also
        by an exception, the original methods are put back. A fast implementation's time counts
        under the name of the op it stands in for (``BlockedLinear`` as ``Linear``)."""
        from minitransformer import dispatch

        stands_in_for = {entry.implementation: entry.reference for entry in dispatch.registrations()
                         if isinstance(entry.implementation, type)}
        originals = [(cls, method_name, cls.__dict__[method_name])
                     for cls in _function_classes() for method_name in ("forward", "backward")
                     if method_name in cls.__dict__]
        try:
            for cls, method_name, method in originals:
                op_name = stands_in_for.get(cls, cls).__name__
                setattr(cls, method_name, self._timed(f"{op_name}.{method_name}", cls.__name__, method))
            yield self
        finally:
            for cls, method_name, method in originals:
                setattr(cls, method_name, method)


def profile_config(config: StepConfig, steps: int, seed: int = 0) -> dict:
    """Phases and per-op times of ``steps`` training steps, in ms per step (means)."""
    import minitransformer as mt
    from minitransformer import optim

    mt.manual_seed(seed)
    model = config.build_model()
    optimizer = model.configure_optimizers(WEIGHT_DECAY, LEARNING_RATE, BETAS)
    params = model.parameters()
    data = batches(config)
    timer = OpTimer()

    def timed_step(x, y) -> tuple[np.ndarray, float]:
        """Seconds of each phase, and seconds spent in ops during forward and backward."""
        ops_before = timer.total_seconds
        marks = [time.perf_counter()]
        _, loss = model(x, y)
        marks.append(time.perf_counter())
        loss.backward()
        marks.append(time.perf_counter())
        ops_in_passes = timer.total_seconds - ops_before
        optim.clip_grad_norm(params, GRAD_CLIP)
        marks.append(time.perf_counter())
        optimizer.step()
        optimizer.zero_grad()
        marks.append(time.perf_counter())
        return np.diff(marks), ops_in_passes

    with timer.installed():
        for i in range(WARMUP_STEPS):
            timed_step(*data[i % len(data)])
        timer.reset()
        measured = [timed_step(*data[i % len(data)]) for i in range(WARMUP_STEPS, WARMUP_STEPS + steps)]

    phase_ms = {name: float(ms) for name, ms in
                zip(PHASES, np.mean([phases for phases, _ in measured], axis=0) * 1e3)}
    step_ms = sum(phase_ms.values())
    ops_in_passes_ms = float(np.mean([ops for _, ops in measured])) * 1e3

    rows = [{"name": name, "op": name.split(".")[0], "pass": name.split(".")[1],
             "implementation": ", ".join(sorted(timer.implementations[name])),
             "ms_per_step": seconds / steps * 1e3, "calls_per_step": timer.calls[name] / steps}
            for name, seconds in timer.seconds.items()]
    overhead_ms = phase_ms["forward"] + phase_ms["backward"] - ops_in_passes_ms
    rows.append({"name": OVERHEAD, "op": None, "pass": None, "implementation": None, "ms_per_step": overhead_ms,
                 "calls_per_step": None})
    for row in rows:
        row["share_percent"] = 100 * row["ms_per_step"] / step_ms
    rows.sort(key=lambda row: -row["ms_per_step"])
    return {"config": config.name, "batch": config.batch, "block": config.block,
            "n_layer": config.n_layer, "n_head": config.n_head, "n_embd": config.n_embd,
            "vocab": config.vocab, "parameters": model.num_parameters(), "steps": steps,
            "warmup_steps": WARMUP_STEPS, "step_ms": step_ms,
            "phases": [{"phase": name, "ms_per_step": ms, "share_percent": 100 * ms / step_ms}
                       for name, ms in phase_ms.items()],
            "ops_ms": ops_in_passes_ms, "overhead_ms": overhead_ms,
            "rows": rows}


def run(quick: bool) -> dict:
    plan = [(SMALL, 3)] if quick else [(SMALL, 40), (LARGE, 10)]
    results = [profile_config(config, steps) for config, steps in plan]
    for result in results:
        title = (f"profile: {result['config']} (B{result['batch']} T{result['block']} "
                 f"L{result['n_layer']} C{result['n_embd']}), {result['step_ms']:.1f} ms per step, "
                 f"mean of {result['steps']} steps")
        print_table(f"{title}: phases", result["phases"], [
            ("phase", "phase"), ("ms_per_step", "ms/step"), ("share_percent", "% of step")])
        print_table(f"{title}: ops in forward and backward", result["rows"], [
            ("name", "op"), ("implementation", "implementation"), ("ms_per_step", "ms/step"),
            ("share_percent", "% of step"), ("calls_per_step", "calls/step")])
    return {"results": results}
