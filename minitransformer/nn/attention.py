"""What the decoders (GPT, Llama) share around attention: causal attention for queries that
continue a sequence, and the key/value cache that makes generation cost one token per step.

Generating token t+1 without a cache runs the model on all t tokens again, though the keys and
values of tokens 0..t-1 came out the same last step: causal attention never lets a token see
what came after it, so nothing about them has changed. The cache keeps them, layer by layer,
and each step computes q, k and v for the new token only (lessons/16 has the proof that the
logits are the same, and the speed-up).
"""

from __future__ import annotations

from .. import functional as F
from ..autograd import is_grad_enabled
from ..backend import array_module
from ..tensor import Tensor, describe


def causal_attention(q: Tensor, k: Tensor, v: Tensor, dropout_p: float = 0.0,
                     enable_gqa: bool = False) -> Tensor:
    """Attention of the last Tq positions of a sequence (queries q (B, nh, Tq, hs)) over all its
    Tk positions (k, v (B, n_kv, Tk, hs)), each query seeing the keys up to its own position.

    The queries are the *last* Tq positions: query i sits at position Tk - Tq + i (aligned at the
    bottom right). Without a cache Tq = Tk and that is the usual causal mask; one new token
    (Tq = 1) may see every key, so it needs no mask at all.
    """
    t_query, t_key = q.shape[-2], k.shape[-2]
    grouped = {"enable_gqa": True} if enable_gqa else {}  # multi-head attention: the plain call
    if t_query == t_key:
        return F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=dropout_p, **grouped)
    mask = None
    if t_query > 1:
        xp = array_module(q.data)
        mask = xp.tril(xp.ones((t_query, t_key), dtype=bool), k=t_key - t_query)  # (Tq, Tk)
    return F.scaled_dot_product_attention(q, k, v, mask=mask, dropout_p=dropout_p, **grouped)


class LayerCache:
    """One layer's keys and values so far, (B, n_kv, T, hs) each, in buffers allocated on the
    first ``append`` (so they take the batch, heads, head size, dtype and device of what is
    stored) and doubled when full, up to ``max_length`` positions: a model whose context is 32k
    tokens pays for the positions it uses, not for 32k."""

    def __init__(self, max_length: int):
        self.max_length = max_length
        self.keys = self.values = None
        self.length = 0

    def append(self, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Store this step's k, v (B, n_kv, T_new, hs); return every position's, (B, n_kv, T, hs)."""
        if is_grad_enabled() and (k.requires_grad or v.requires_grad):
            raise RuntimeError(
                "KVCache: the cache is for inference and keeps no graph; use it inside "
                "minitransformer.no_grad() (generate() does)"
            )
        t_new = k.shape[-2]
        if self.length + t_new > self.max_length:
            raise ValueError(
                f"KVCache: holds {self.length} positions and got {t_new} more; at most "
                f"{self.max_length} fit (the model's block_size): reset() it and start again"
            )
        if self.keys is not None and (k.shape[:-2] != self.keys.shape[:-2] or k.shape[-1] != self.keys.shape[-1]):
            raise ValueError(
                f"KVCache: got keys {describe(k)} for a cache of {self.keys.shape[:-2]} heads of "
                f"size {self.keys.shape[-1]}; a cache serves one batch of one model"
            )
        end = self.length + t_new
        capacity = 0 if self.keys is None else self.keys.shape[-2]
        if end > capacity:  # grow: at least double, so appending T tokens one by one copies O(T) in all
            capacity = min(self.max_length, max(end, 2 * capacity, 64))
            xp = array_module(k.data)
            shape = k.shape[:-2] + (capacity, k.shape[-1])  # (B, n_kv, capacity, hs)
            keys, values = xp.empty(shape, k.dtype), xp.empty(shape, v.dtype)
            if self.length:
                keys[..., :self.length, :] = self.keys[..., :self.length, :]
                values[..., :self.length, :] = self.values[..., :self.length, :]
            self.keys, self.values = keys, values
        self.keys[..., self.length:end, :] = k.data
        self.values[..., self.length:end, :] = v.data
        self.length = end
        return Tensor(self.keys[..., :end, :]), Tensor(self.values[..., :end, :])

    def nbytes(self) -> int:
        """Bytes held by the filled positions (the buffers may hold room for more)."""
        if self.keys is None:
            return 0
        per_position = self.keys[..., :1, :].nbytes + self.values[..., :1, :].nbytes
        return per_position * self.length


class KVCache:
    """A key/value cache for every layer of a decoder: ``layers[i]`` is layer i's LayerCache.

    ``length`` is how many positions it holds: the next token's position. It fills up at
    ``max_length`` (the model's block_size); ``generate`` then starts it again from the last
    block_size tokens (``reset``), as the model without a cache would crop its context.
    """

    def __init__(self, n_layer: int, max_length: int):
        if n_layer <= 0 or max_length <= 0:
            raise ValueError(f"KVCache: n_layer and max_length must be > 0, got {n_layer} and {max_length}")
        self.max_length = max_length
        self.layers = [LayerCache(max_length) for _ in range(n_layer)]

    @property
    def length(self) -> int:
        return self.layers[0].length

    def reset(self) -> None:
        """Forget every position (the buffers are kept for the next fill)."""
        for layer in self.layers:
            layer.length = 0

    def crop(self, length: int) -> None:
        """Keep the first ``length`` positions and forget the rest (as Hugging Face's
        ``DynamicCache.crop``): a chat's next prompt that shares only its beginning with what the
        cache holds goes on from there, and an interrupted step is undone."""
        if not isinstance(length, int) or length < 0:
            raise ValueError(f"KVCache.crop: length must be an integer >= 0, got {length!r}")
        for layer in self.layers:
            layer.length = min(layer.length, length)

    def nbytes(self) -> int:
        """Bytes of keys and values held: 2 n_layer n_kv hs bytes-per-number per position and sequence."""
        return sum(layer.nbytes() for layer in self.layers)
