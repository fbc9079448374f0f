"""The user-facing functions, ``import minitransformer.functional as F``.

Each checks its inputs and calls one op (or composes a few); the formulas live on the ops.
"""

from __future__ import annotations

import numpy as np  # shape arithmetic only

from .backend import array_module, device_of, is_array, to_device
from .ops import attention, conv, elementwise, loss, matmul, normalization, rotary
from .ops import embedding as embedding_op
from .ops import softmax as softmax_op
from .ops.dropout import Dropout
from .ops.elementwise import gelu, maximum, where  # noqa: F401  (re-exported)
from .ops.shape import concat, stack  # noqa: F401  (re-exported)
from .ops.validate import check_float, check_index_range, check_integer
from .tensor import Tensor, describe, lift


def _as_tensor(x, op: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: expected a Tensor, got {type(x).__name__}")
    return x


def _as_array(x, like: Tensor, op: str, what: str):
    """Indices or a mask (a tensor, an array or a list) as an array on ``like``'s device: host
    data moves there; device data for host weights is an error (no silent copy to the host)."""
    data = x.data if isinstance(x, Tensor) else x
    if is_array(data) and device_of(data) != "cpu" and device_of(data) != device_of(like.data):
        raise TypeError(f"{op}: {what} ({describe(data)}) and {describe(like)} are on different "
                        f"devices ({device_of(data)} and {device_of(like.data)}); expected both on "
                        "one device: move them with .to('cpu') or .to('cuda')")
    return array_module(like.data).asarray(data)


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """y = x W^T + b, W of shape (out_features, in_features)   (F10 when out_features = 1)"""
    return matmul.linear(_as_tensor(x, "linear"), weight, bias)


def relu(x: Tensor) -> Tensor:
    """max(0, x)   (F6)"""
    return elementwise.ReLU.apply(x)


def sigmoid(x: Tensor) -> Tensor:
    """1 / (1 + e^-x)   (F5)"""
    return elementwise.Sigmoid.apply(x)


def silu(x: Tensor) -> Tensor:
    """x * sigmoid(x), the activation of SwiGLU (also called swish)."""
    return elementwise.SiLU.apply(_as_tensor(x, "silu"))


def swiglu(gate: Tensor, up: Tensor) -> Tensor:
    """silu(gate) * up, the gated product of SwiGLU, as one node (gate and up of one shape)."""
    return elementwise.SwiGLUGate.apply(_as_tensor(gate, "swiglu"), _as_tensor(up, "swiglu"))


def tanh(x: Tensor) -> Tensor:
    return elementwise.Tanh.apply(x)


def softmax(x: Tensor, axis: int = -1) -> Tensor:
    """exp(x_i) / sum_j exp(x_j) along ``axis``   (F9)"""
    return softmax_op.Softmax.apply(_as_tensor(x, "softmax"), axis=axis)


def log_softmax(x: Tensor, axis: int = -1) -> Tensor:
    return softmax_op.LogSoftmax.apply(_as_tensor(x, "log_softmax"), axis=axis)


def layer_norm(x: Tensor, weight: Tensor | None = None, bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """(x - mean) / sqrt(var + eps) * weight + bias over the last axis."""
    x = _as_tensor(x, "layer_norm")
    if weight is None:
        weight = Tensor(array_module(x.data).ones(x.shape[-1], dtype=x.dtype))
    params = (weight,) if bias is None else (weight, bias)
    return normalization.LayerNorm.apply(x, *params, eps=eps)


def rms_norm(x: Tensor, weight: Tensor | None = None, eps: float = 1e-6) -> Tensor:
    """x / sqrt(mean(x^2) + eps) * weight over the last axis (no centring, no bias)."""
    x = _as_tensor(x, "rms_norm")
    if weight is None:
        weight = Tensor(array_module(x.data).ones(x.shape[-1:], dtype=x.dtype))
    return normalization.RMSNorm.apply(x, weight, eps=eps)


def rotary_embedding(x: Tensor, positions=None, theta: float = 10000.0, interleaved: bool = False,
                     scaling: dict | None = None) -> Tensor:
    """Rotary position embedding of queries or keys x (..., T, D): the channel pairs of the token
    at position m turned by the angles m * theta_i, theta_i = theta^(-2i / D).

    ``positions``: integer positions (T,), or (B, T) for x (B, nh, T, D) (one row per sequence:
    a cache offset, left padding); default 0 .. T-1. ``interleaved``: pairs (x_0, x_1), (x_2,
    x_3)... as in RoFormer and Meta's Llama code; default False: pairs (x_i, x_{i+D/2}) as in
    Hugging Face's checkpoints. ``scaling``: Llama 3.1's frequency scaling, a dict with its
    config's ``rope_scaling`` keys (factor, low_freq_factor, high_freq_factor,
    original_max_position_embeddings), or None.
    """
    x = _as_tensor(x, "rotary_embedding")
    xp = array_module(x.data)
    positions = xp.arange(x.shape[-2]) if positions is None else _as_array(positions, x, "rotary_embedding", "positions")
    rotary.check_rotary_inputs(x.data, positions, theta)
    rotary.check_scaling(scaling)
    if positions.ndim == 2 and x.ndim == 4:  # (B, T) -> (B, 1, T): the same for every head
        positions = positions[:, None, :]
    try:
        fits = np.broadcast_shapes(positions.shape, x.shape[:-1]) == x.shape[:-1]
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(
            f"rotary_embedding: positions {describe(positions)} don't fit the input {describe(x)}; "
            "expected (T,) or (B, T) for an input (..., T, D) or (B, nh, T, D)"
        )
    inv_freq = rotary.inverse_frequencies(x.shape[-1], theta, scaling, xp)  # (D/2,)
    cos, sin = rotary.rotation_tables(positions, inv_freq, x.dtype)  # (..., T, D/2) each
    return rotary.RotaryEmbedding.apply(x, cos=cos, sin=sin, interleaved=bool(interleaved))


def rotary_frequencies(head_dim: int, theta: float = 10000.0, scaling: dict | None = None, device: str = "cpu"):
    """The angle per position of each channel pair of rotary embeddings, theta_i =
    theta^(-2i / head_dim) for i < head_dim / 2 (float64), with Llama 3.1's ``scaling`` applied
    when given (see ``rotary_embedding``); checks the settings as rotary_embedding does."""
    if not isinstance(head_dim, int) or head_dim <= 0 or head_dim % 2:
        raise ValueError(f"rotary_embedding: head_dim must be a positive even number, got {head_dim!r}")
    if not (theta > 0 and np.isfinite(theta)):
        raise ValueError(f"rotary_embedding: theta must be a positive number, got {theta}")
    rotary.check_scaling(scaling)
    return to_device(rotary.inverse_frequencies(head_dim, theta, scaling, np), device)


def embedding(ids, weight: Tensor) -> Tensor:
    """Row ``ids[...]`` of ``weight`` (V, C) for every id   (F15): (*ids.shape, C)"""
    ids = _as_array(ids, weight, "embedding", "ids")
    check_integer("embedding", "ids", ids)
    if weight.ndim != 2:
        raise ValueError(f"embedding: weight must be (num_embeddings, dim), got {describe(weight)}")
    check_index_range("embedding", "ids", ids, weight.shape[0])
    return embedding_op.Embedding.apply(weight, ids=ids)


def dropout(x: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Inverted dropout: identity unless ``training`` and p > 0."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must be in [0, 1], got {p}")
    check_float("dropout", "input", _as_tensor(x, "dropout").data)
    if not training or p == 0.0:
        return x
    return Dropout.apply(x, p=p)


def cross_entropy(logits: Tensor, targets, ignore_index: int = -100, reduction: str = "mean") -> Tensor:
    """-log softmax(logits)[target], averaged over rows   (F2 with one-hot labels, F9)

    logits (N, C) or (B, T, C); targets integer class ids (N,) or (B, T); rows whose target is
    ``ignore_index`` don't count.
    """
    targets = _as_array(targets, _as_tensor(logits, "cross_entropy"), "cross_entropy", "targets")
    loss.check_cross_entropy_inputs(logits.data, targets, ignore_index, reduction)
    return loss.CrossEntropy.apply(logits, targets=targets, ignore_index=ignore_index, reduction=reduction)


def _reduce(values: Tensor, reduction: str, op: str) -> Tensor:
    if reduction == "mean":
        return values.mean()
    if reduction == "sum":
        return values.sum()
    if reduction == "none":
        return values
    raise ValueError(f"{op}: reduction must be one of ('mean', 'sum', 'none'), got {reduction!r}")


def _check_same_shape(op: str, prediction: Tensor, target: Tensor) -> None:
    if prediction.shape != target.shape:
        raise ValueError(
            f"{op}: prediction {describe(prediction)} and target {describe(target)} must have "
            "the same shape"
        )


def mse_loss(prediction: Tensor, target, reduction: str = "mean") -> Tensor:
    """(1/n) sum_i (y_i - y_hat_i)^2   (F1)"""
    target = lift(target, prediction)
    _check_same_shape("mse_loss", prediction, target)
    difference = prediction - target
    return _reduce(difference * difference, reduction, "mse_loss")


def binary_cross_entropy(probabilities: Tensor, target, reduction: str = "mean", eps: float = 1e-12) -> Tensor:
    """-(y log p + (1 - y) log(1 - p)) for probabilities p in [0, 1]   (F2 for two classes)

    p is clipped to [eps, 1 - eps] inside the logs so a confident mistake costs a large but
    finite loss. Prefer ``binary_cross_entropy_with_logits``: it is exact for any logit.
    """
    target = lift(target, probabilities)
    _check_same_shape("binary_cross_entropy", probabilities, target)
    check_float("binary_cross_entropy", "probabilities", probabilities.data)
    p = probabilities.data
    if p.size and (float(p.min()) < 0 or float(p.max()) > 1):
        raise ValueError("binary_cross_entropy: probabilities must lie in [0, 1]; got values "
                         f"in [{float(p.min()):.4g}, {float(p.max()):.4g}] (pass logits to "
                         "binary_cross_entropy_with_logits instead)")
    clipped_p = maximum(probabilities, eps)
    clipped_q = maximum(1 - probabilities, eps)
    values = -(target * clipped_p.log() + (1 - target) * clipped_q.log())
    return _reduce(values, reduction, "binary_cross_entropy")


def binary_cross_entropy_with_logits(logits: Tensor, target, reduction: str = "mean") -> Tensor:
    """BCE of sigmoid(z) (F5/F11) in the stable form max(z, 0) - z y + log(1 + e^-|z|)."""
    target = lift(target, logits)
    _check_same_shape("binary_cross_entropy_with_logits", logits, target)
    check_float("binary_cross_entropy_with_logits", "logits", logits.data)
    values = loss.BinaryCrossEntropyWithLogits.apply(logits, target)
    return _reduce(values, reduction, "binary_cross_entropy_with_logits")


def scaled_dot_product_attention(q: Tensor, k: Tensor, v: Tensor, mask=None, is_causal: bool = False,
                                 dropout_p: float = 0.0, scale: float | None = None,
                                 enable_gqa: bool = False) -> Tensor:
    """softmax(Q K^T / sqrt(d_k) + mask) V   (F14) over (..., T, hs) tensors, e.g. (B, nh, T, hs).

    ``mask``: boolean (True = may attend) or float (added to the scores), broadcastable to
    (..., Tq, Tk); ``is_causal``: query i attends to keys 0..i only (aligned at the top left, as
    in PyTorch: for queries that continue a longer sequence of keys pass a boolean mask instead).
    ``enable_gqa``: grouped-query attention (Ainslie et al. 2023): k and v (B, n_kv, Tk, hs) have
    fewer heads than q (B, nh, Tq, hs), n_kv dividing nh; query head h reads key/value head
    h // (nh / n_kv) (n_kv = 1 is multi-query attention).
    """
    q, k, v = (_as_tensor(t, "scaled_dot_product_attention") for t in (q, k, v))
    mask = None if mask is None else _as_array(mask, q, "scaled_dot_product_attention", "mask")
    if enable_gqa:
        k, v = (repeat_kv_heads(t, q) for t in (k, v))
    attention.check_attention_inputs(q.data, k.data, v.data, mask)
    if not 0.0 <= dropout_p < 1.0:
        raise ValueError(f"scaled_dot_product_attention: dropout_p must be in [0, 1), got {dropout_p}")
    return attention.ScaledDotProductAttention.apply(
        q, k, v, mask=mask, is_causal=is_causal, dropout_p=dropout_p, scale=scale
    )


def repeat_kv_heads(x: Tensor, q: Tensor) -> Tensor:
    """Keys or values (..., n_kv, T, hs) with each head repeated nh / n_kv times in a row, to
    match q's nh heads: (..., nh, T, hs). The gradient of each copy adds up into its head
    (broadcast_to's backward), as it should: one key/value head serves a group of queries."""
    if q.ndim < 3 or x.ndim != q.ndim or q.shape[-3] % x.shape[-3]:
        raise ValueError(
            f"scaled_dot_product_attention: enable_gqa needs q (..., nh, Tq, hs) and k, v "
            f"(..., n_kv, Tk, hs) with n_kv dividing nh; got q {describe(q)} and {describe(x)}"
        )
    n_kv, groups = x.shape[-3], q.shape[-3] // x.shape[-3]
    if groups == 1:
        return x
    lead, tail = x.shape[:-3], x.shape[-2:]
    x = x.reshape(lead + (n_kv, 1) + tail).broadcast_to(lead + (n_kv, groups) + tail)
    return x.reshape(lead + (n_kv * groups,) + tail)  # (..., nh, T, hs)


def conv1d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride: int = 1, padding: int = 0) -> Tensor:
    """1-D cross-correlation, as deep-learning libraries compute "convolution":

        y[b, i, j] = sum_c sum_k weight[i, c, k] * x_padded[b, c, j * stride + k] + bias[i]

    x (B, C_in, L), weight (C_out, C_in, K) -> (B, C_out, L_out), L_out = (L + 2 padding - K) // stride + 1.
    Built from differentiable ops: unfold the input into windows (an index gather, whose
    backward scatter-adds overlapping windows), then one matrix product.
    """
    if x.ndim != 3 or weight.ndim != 3 or x.shape[1] != weight.shape[1]:
        raise ValueError(
            f"conv1d: input {describe(x)} and weight {describe(weight)} don't fit; expected "
            "input (B, C_in, L) and weight (C_out, C_in, K) with the same C_in"
        )
    if stride < 1 or padding < 0:
        raise ValueError(f"conv1d: stride must be >= 1 and padding >= 0, got {stride} and {padding}")
    xp = array_module(x.data)
    B, C_in, L = x.shape
    C_out, _, K = weight.shape
    if padding:
        zeros = Tensor(xp.zeros((B, C_in, padding), dtype=x.dtype))
        x = concat([zeros, x, zeros], axis=2)
    L_out = (L + 2 * padding - K) // stride + 1
    if L_out < 1:
        raise ValueError(f"conv1d: kernel size {K} is longer than the padded input ({L + 2 * padding})")
    window_index = xp.arange(L_out)[:, None] * stride + xp.arange(K)[None, :]  # (L_out, K)
    windows = x[:, :, window_index]  # (B, C_in, L_out, K)
    windows = windows.transpose(0, 2, 1, 3).reshape(B, L_out, C_in * K)
    out = linear(windows, weight.reshape(C_out, C_in * K), bias)  # (B, L_out, C_out)
    return out.transpose(0, 2, 1)  # (B, C_out, L_out)


def _pair(op: str, name: str, value, least: int) -> tuple[int, int]:
    """An int or a pair of ints (rows, columns), each at least ``least``, as a pair."""
    pair = (value, value) if isinstance(value, (int, np.integer)) else tuple(value) if isinstance(value, (tuple, list)) else None
    if pair is None or len(pair) != 2 or not all(isinstance(v, (int, np.integer)) and v >= least for v in pair):
        raise ValueError(f"{op}: {name} must be an int >= {least} or a pair of them, got {value!r}")
    return int(pair[0]), int(pair[1])


def _check_image(op: str, x: Tensor) -> None:
    if _as_tensor(x, op).ndim != 4:
        raise ValueError(f"{op}: input is {describe(x)}; expected images (B, C, H, W)")


def conv2d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, dilation=1) -> Tensor:
    """2-D cross-correlation (F12 over rows and columns; formula and backward on ops/conv.py):

        y[b, o, p, q] = sum_c sum_i sum_j weight[o, c, i, j] * x_pad[b, c, p*sh + i*dh, q*sw + j*dw] + bias[o]

    x (B, C_in, H, W), weight (C_out, C_in, kh, kw), PyTorch's layout -> (B, C_out, H_out, W_out),
    H_out = (H + 2 ph - dh (kh - 1) - 1) // sh + 1 (W_out likewise). ``stride``, ``padding`` (zeros)
    and ``dilation``: an int or a pair (rows, columns).
    """
    _check_image("conv2d", x)
    stride, padding = _pair("conv2d", "stride", stride, 1), _pair("conv2d", "padding", padding, 0)
    dilation = _pair("conv2d", "dilation", dilation, 1)
    if weight.ndim != 4 or weight.shape[1] != x.shape[1]:
        raise ValueError(f"conv2d: input {describe(x)} and weight {describe(weight)} don't fit; expected "
                         "input (B, C_in, H, W) and weight (C_out, C_in, kh, kw) with the same C_in")
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(f"conv2d: bias is {describe(bias)}; expected ({weight.shape[0]},), one per output channel")
    for axis, name in ((0, "height"), (1, "width")):
        size, kernel = x.shape[2 + axis], weight.shape[2 + axis]
        if conv.output_size(size, kernel, stride[axis], padding[axis], dilation[axis]) < 1:
            raise ValueError(f"conv2d: kernel {name} {kernel} (dilation {dilation[axis]}) is larger than the "
                             f"padded input {name} {size + 2 * padding[axis]} of {describe(x)}")
    params = (weight,) if bias is None else (weight, bias)
    return conv.Conv2d.apply(x, *params, stride=stride, padding=padding, dilation=dilation)


def max_pool2d(x: Tensor, kernel_size=2, stride=None) -> Tensor:
    """The largest value of each kh x kw window (stride defaults to the kernel: windows side by
    side), per channel: (B, C, H, W) -> (B, C, H_out, W_out), H_out = (H - kh) // sh + 1 (rows
    and columns that don't fill a window are dropped, as PyTorch's and Keras's defaults do)."""
    _check_image("max_pool2d", x)
    kernel = _pair("max_pool2d", "kernel_size", kernel_size, 1)
    stride = kernel if stride is None else _pair("max_pool2d", "stride", stride, 1)
    if x.shape[2] < kernel[0] or x.shape[3] < kernel[1]:
        raise ValueError(f"max_pool2d: kernel {kernel} is larger than the input {describe(x)}")
    return conv.MaxPool2d.apply(x, kernel=kernel, stride=stride)
