"""Suite ``ops``: each fused op against the same math composed from primitive ops, and PyTorch.

For every op and two GPT sizes we time the forward (recording the graph, as in training) and
forward + backward (with a fixed upstream gradient), alternating the implementations:
    fused     the one-node op from minitransformer.functional (its fast implementation where the
              fast layer, minitransformer/fast/, has one)
    reference the same one-node op running its reference code (``set_kernels("reference")``):
              fused / reference is what the fast layer buys
    composed  the same formula built from primitive ops (a node per exp, sum, divide, ...)
    torch     torch.nn.functional, when PyTorch is installed
The shapes are those the op sees inside the GPT: attention scores (B, nh, T, T) for softmax,
logits (B T, V) for log-softmax and cross-entropy, (B, T, C) for layer norm and RMS norm,
(B, T, 4C) for GELU, SiLU and SwiGLU's gate silu(a) * b, (B, nh, T, hs) for attention and rotary embeddings, ids (B, T)
into a (V, C) table for embedding; grouped-query attention has k and v of nh / 2 heads.
"""

from __future__ import annotations

import math

import numpy as np

import minitransformer as mt
import minitransformer.functional as F
from minitransformer.autograd import Function
from minitransformer.backend import erf

from ..harness import print_table, time_alternating

SHAPES = {  # name: (B, T, C, nh, V)
    "small": (12, 64, 128, 4, 65),   # nanoGPT's CPU shakespeare_char config
    "large": (64, 256, 384, 6, 65),  # nanoGPT's GPU shakespeare_char config
}


class Erf(Function):
    """erf as a primitive op for the composed GELU: d erf(a)/da = 2/sqrt(pi) exp(-a^2)"""

    def forward(self, a):
        self.save_for_backward(a)
        return erf(a)

    def backward(self, grad):
        (a,) = self.saved
        return grad * (2 / math.sqrt(math.pi)) * np.exp(-a * a)


# --- the same math from primitive ops -----------------------------------------------------------
# The max that keeps exp from overflowing is a constant shift (it cancels), hence detach().

def composed_softmax(x):
    e = (x - x.max(axis=-1, keepdims=True).detach()).exp()
    return e / e.sum(axis=-1, keepdims=True)


def composed_log_softmax(x):
    shifted = x - x.max(axis=-1, keepdims=True).detach()
    return shifted - shifted.exp().sum(axis=-1, keepdims=True).log()


def composed_layer_norm(x, weight, bias, eps=1e-5):
    centered = x - x.mean(axis=-1, keepdims=True)
    variance = (centered * centered).mean(axis=-1, keepdims=True)
    return centered / (variance + eps).sqrt() * weight + bias


def composed_cross_entropy(logits, targets):
    log_probs = composed_log_softmax(logits)  # (N, V)
    return -log_probs[np.arange(len(targets)), targets].mean()


def composed_attention(q, k, v, causal_bias):
    scores = (q @ k.swapaxes(-1, -2)) * (1 / math.sqrt(q.shape[-1])) + causal_bias  # (B, nh, T, T)
    return composed_softmax(scores) @ v


def composed_gelu(x):
    return x * 0.5 * (1 + Erf.apply(x * (1 / math.sqrt(2))))


def composed_rms_norm(x, weight, eps=1e-6):
    return x / ((x * x).mean(axis=-1, keepdims=True) + eps).sqrt() * weight


def composed_silu(x):
    return x * x.sigmoid()


def composed_rotary(x, cos, sin):
    """Hugging Face's form: x cos + rotate_half(x) sin, cos and sin (T, hs) (each angle twice)."""
    half = x.shape[-1] // 2
    rotated = mt.concat([-x[..., half:], x[..., :half]], axis=-1)
    return x * cos + rotated * sin


def rotary_tables(T, hs):
    angles = np.arange(T)[:, None] * 10000.0 ** (-np.arange(0, hs, 2) / hs)  # (T, hs/2)
    angles = np.concatenate([angles, angles], axis=-1)  # (T, hs)
    return np.cos(angles).astype(np.float32), np.sin(angles).astype(np.float32)


def composed_gqa_attention(q, k, v, causal_bias):
    """Each key/value head repeated for its group of query heads (as F.repeat_kv_heads does)."""
    groups = q.shape[1] // k.shape[1]
    k, v = (mt.concat([t[:, i:i + 1] for i in range(t.shape[1]) for _ in range(groups)], axis=1) for t in (k, v))
    return composed_attention(q, k, v, causal_bias)


def with_reference_code(fn):
    """fn run by the reference ops (set_kernels("reference")), not the fast layer."""
    def run(*args):
        mt.set_kernels("reference")
        try:
            return fn(*args)
        finally:
            mt.set_kernels("fast")
    return run


def torch_rotary(torch, x, cos, sin):
    half = x.shape[-1] // 2
    return x * cos + torch.cat([-x[..., half:], x[..., :half]], dim=-1) * sin


# --- the cases ----------------------------------------------------------------------------------

def make_cases(B, T, C, nh, V, rng):
    """{op: (list of float input arrays, extra arrays, {impl: fn(*tensors, *extras)}, torch fn)}"""
    def normal(*shape, scale=1.0):
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    hs = C // nh
    targets = rng.integers(0, V, size=B * T)
    ids = rng.integers(0, V, size=(B, T))
    causal_bias = np.where(np.tril(np.ones((T, T), dtype=bool)), 0, -np.inf).astype(np.float32)
    cos, sin = rotary_tables(T, hs)
    return {
        "softmax": ([normal(B, nh, T, T)], (),
                    {"fused": F.softmax, "composed": composed_softmax},
                    lambda torch, x: torch.softmax(x, dim=-1)),
        "log_softmax": ([normal(B * T, V)], (),
                        {"fused": F.log_softmax, "composed": composed_log_softmax},
                        lambda torch, x: torch.log_softmax(x, dim=-1)),
        "layer_norm": ([normal(B, T, C), 1 + normal(C, scale=0.1), normal(C, scale=0.1)], (),
                       {"fused": F.layer_norm, "composed": composed_layer_norm},
                       lambda torch, x, w, b: torch.nn.functional.layer_norm(x, (C,), w, b)),
        "cross_entropy": ([normal(B * T, V)], (targets,),
                          {"fused": F.cross_entropy, "composed": composed_cross_entropy},
                          lambda torch, x, t: torch.nn.functional.cross_entropy(x, t)),
        "attention": ([normal(B, nh, T, hs), normal(B, nh, T, hs), normal(B, nh, T, hs)], (),
                      {"fused": lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
                       "composed": lambda q, k, v: composed_attention(q, k, v, mt.tensor(causal_bias))},
                      lambda torch, q, k, v: torch.nn.functional.scaled_dot_product_attention(
                          q, k, v, is_causal=True)),
        "attention_gqa": ([normal(B, nh, T, hs), normal(B, nh // 2, T, hs), normal(B, nh // 2, T, hs)], (),
                          {"fused": lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                                                                   enable_gqa=True),
                           "composed": lambda q, k, v: composed_gqa_attention(q, k, v, mt.tensor(causal_bias))},
                          lambda torch, q, k, v: torch.nn.functional.scaled_dot_product_attention(
                              q, k, v, is_causal=True, enable_gqa=True)),
        "embedding": ([normal(V, C)], (ids,),
                      {"fused": lambda w, i: F.embedding(i, w), "composed": lambda w, i: w[i]},
                      lambda torch, w, i: torch.nn.functional.embedding(i, w)),
        "gelu": ([normal(B, T, 4 * C)], (),
                 {"fused": F.gelu, "composed": composed_gelu},
                 lambda torch, x: torch.nn.functional.gelu(x)),
        "rms_norm": ([normal(B, T, C), 1 + normal(C, scale=0.1)], (),
                     {"fused": F.rms_norm, "composed": composed_rms_norm},
                     lambda torch, x, w: torch.nn.functional.rms_norm(x, (C,), w, eps=1e-6)),
        "silu": ([normal(B, T, 4 * C)], (),
                 {"fused": F.silu, "composed": composed_silu},
                 lambda torch, x: torch.nn.functional.silu(x)),
        "swiglu": ([normal(B, T, 4 * C), normal(B, T, 4 * C)], (),
                   {"fused": F.swiglu, "composed": lambda a, b: composed_silu(a) * b},
                   lambda torch, a, b: torch.nn.functional.silu(a) * b),
        "rotary": ([normal(B, nh, T, hs)], (cos, sin),
                   {"fused": lambda x, c, s: F.rotary_embedding(x),
                    "composed": lambda x, c, s: composed_rotary(x, mt.tensor(c), mt.tensor(s))},
                   torch_rotary),
    }


def _ours(fn, arrays, extras, grad, backward: bool):
    tensors = [mt.tensor(a, requires_grad=True) for a in arrays]

    def call():
        for t in tensors:
            t.grad = None
        out = fn(*tensors, *extras)
        if backward:
            out.backward(grad if out.ndim else None)
    return call


def _torch(torch, fn, arrays, extras, grad, backward: bool):
    tensors = [torch.tensor(a, requires_grad=True) for a in arrays]
    extras = [torch.from_numpy(e) for e in extras]
    grad = torch.from_numpy(grad)

    def call():
        for t in tensors:
            t.grad = None
        out = fn(torch, *tensors, *extras)
        if backward:
            out.backward(grad if out.ndim else None)
    return call


def run(quick: bool, torch=None) -> dict:
    rng = np.random.default_rng(0)
    sizes = ["small"] if quick else list(SHAPES)
    results = []
    for size in sizes:
        rounds, per_turn = (1, 2) if quick else ((6, 5) if size == "small" else (4, 2))
        for op, (arrays, extras, ours, reference) in make_cases(*SHAPES[size], rng).items():
            with mt.no_grad():  # the output's shape, for the upstream gradient
                out_shape = ours["fused"](*[mt.tensor(a) for a in arrays], *extras).shape
            grad = rng.standard_normal(out_shape).astype(np.float32)
            if mt.get_kernels() == "fast":  # else "fused" is the reference code already
                ours = {**ours, "reference": with_reference_code(ours["fused"])}
            for mode, backward in (("forward", False), ("forward+backward", True)):
                candidates = {impl: _ours(fn, arrays, extras, grad, backward) for impl, fn in ours.items()}
                if torch is not None:
                    candidates["torch"] = _torch(torch, reference, arrays, extras, grad, backward)
                timings = time_alternating(candidates, rounds=rounds, per_turn=per_turn,
                                           settle_s=0.05 if quick else 0.1)
                row = {"op": op, "size": size, "mode": mode, "shape": list(arrays[0].shape),
                       **{f"{impl}_ms": t["median_ms"] for impl, t in timings.items()},
                       "timings": timings}
                row["composed_over_fused"] = row["composed_ms"] / row["fused_ms"]
                row["fused_over_reference"] = row["fused_ms"] / row["reference_ms"] if "reference_ms" in row else None
                row["fused_over_torch"] = row["fused_ms"] / row["torch_ms"] if torch is not None else None
                results.append(row)
    print_table("ops: median ms (fused = our one-node op, reference = its reference code, composed = "
                "primitive ops)", results, [
        ("op", "op"), ("size", "size"), ("mode", "mode"), ("fused_ms", "fused"),
        ("reference_ms", "reference"), ("composed_ms", "composed"), ("torch_ms", "torch"),
        ("fused_over_reference", "fused/reference"), ("composed_over_fused", "composed/fused"),
        ("fused_over_torch", "fused/torch")])
    return {"shapes": {k: dict(zip(("B", "T", "C", "nh", "V"), v)) for k, v in SHAPES.items() if k in sizes},
            "results": results}
