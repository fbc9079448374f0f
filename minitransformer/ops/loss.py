"""Cross-entropy losses, fused: log-softmax and the negative log-likelihood in one node, and
the binary cross-entropy of a logit."""

from __future__ import annotations

from ..autograd import Function
from ..backend import array_module
from ..tensor import describe
from .elementwise import stable_sigmoid
from .softmax import stable_log_softmax
from .validate import check_float, check_index_range, check_integer

REDUCTIONS = ("mean", "sum", "none")


class CrossEntropy(Function):
    """loss_n = -log softmax(z_n)[y_n] = logsumexp(z_n) - z_n[y_n]   (F2 with one-hot labels, F9)

    Rows whose target is ``ignore_index`` get loss 0 and no gradient; "mean" averages over the
    rows that count (and returns 0 when none does, never NaN).
        dL/dz_n = (softmax(z_n) - onehot(y_n)) * dL/dloss_n
    With "mean" over N counted rows, dL/dloss_n = 1/N, hence the famous (softmax - onehot) / N.
    """

    def forward(self, logits, targets, ignore_index=-100, reduction="mean"):
        xp = array_module(logits)
        rows, targets = logits.reshape(-1, logits.shape[-1]), targets.reshape(-1)  # (N, C), (N,)
        log_probs = self.log_softmax_rows(rows)  # log softmax(z_n), (N, C)
        counted = targets != ignore_index
        safe_targets = xp.where(counted, targets, 0)
        row_index = xp.arange(rows.shape[0])
        losses = -log_probs[row_index, safe_targets] * counted  # (N,)
        self.save_for_backward(log_probs, safe_targets, counted)
        self.reduction, self.logits_shape = reduction, logits.shape
        self.count = max(int(counted.sum()), 1)
        if reduction == "none":
            return losses.reshape(logits.shape[:-1])
        total = losses.sum()
        return total / self.count if reduction == "mean" else total

    @staticmethod
    def log_softmax_rows(rows):  # the one step a fast implementation replaces
        return stable_log_softmax(rows, axis=1)

    def backward(self, grad):
        # BEGIN SOLUTION a3
        log_probs, safe_targets, counted = self.saved
        xp = array_module(log_probs)
        grad_rows = xp.exp(log_probs)  # softmax, (N, C)
        grad_rows[xp.arange(log_probs.shape[0]), safe_targets] -= 1
        if self.reduction == "none":
            scale = grad.reshape(-1) * counted
        else:
            scale = counted * (grad / self.count if self.reduction == "mean" else grad)
        grad_rows *= scale.astype(grad_rows.dtype)[:, None]
        return grad_rows.reshape(self.logits_shape), None
        # END SOLUTION a3


def check_cross_entropy_inputs(logits, targets, ignore_index: int, reduction: str) -> None:
    check_float("cross_entropy", "logits", logits)
    check_integer("cross_entropy", "targets", targets)
    if reduction not in REDUCTIONS:
        raise ValueError(f"cross_entropy: reduction must be one of {REDUCTIONS}, got {reduction!r}")
    if logits.ndim < 2 or targets.shape != logits.shape[:-1]:
        raise ValueError(
            f"cross_entropy: logits {describe(logits)} and targets {describe(targets)} don't fit; "
            "expected logits (N, C) or (B, T, C) and targets of the leading shape, (N,) or (B, T)"
        )
    check_index_range(
        "cross_entropy", "targets", targets, logits.shape[-1], allowed=(ignore_index,)
    )


class BinaryCrossEntropyWithLogits(Function):
    """loss = -(y log sigmoid(z) + (1 - y) log(1 - sigmoid(z)))   (F2 for two classes, F5, F11)
            = max(z, 0) - z y + log(1 + e^-|z|)   (exp of a non-positive number only)

    dL/dz = sigmoid(z) - y,   dL/dy = -z
    One node, not relu/abs/exp/log composed: those have kinks at z = 0 whose one-sided
    derivatives (0 for relu, sign(0) = 0 for abs) don't add up, giving dL/dz = -y instead of
    1/2 - y at z = 0, where a zero-initialised classifier starts.
    """

    def forward(self, logits, target):
        xp = array_module(logits)
        self.save_for_backward(logits, target)
        return xp.maximum(logits, 0) - logits * target + xp.log1p(xp.exp(-abs(logits)))

    def backward(self, grad):
        logits, target = self.saved
        need_logits, need_target = self.needs_input_grad
        grad_logits = grad * (stable_sigmoid(logits) - target) if need_logits else None
        grad_target = -grad * logits if need_target else None
        return grad_logits, grad_target
