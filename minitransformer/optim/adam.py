"""Adam (Kingma & Ba 2015, Algorithm 1) and AdamW (Loshchilov & Hutter 2019)."""

from __future__ import annotations

import math

from ..backend import array_module
from ..dispatch import dispatchable
from .optimizer import Optimizer


@dispatchable
def adam_update(theta, grad, exp_avg, exp_avg_sq, *, lr, beta1, beta2, eps, weight_decay,
                decoupled, step) -> None:
    """One Adam step at step number ``step`` (from 1) for one parameter: theta, exp_avg (m) and
    exp_avg_sq (v) are updated in place. Fast version: fast/cpu/adam.py (bitwise the same)."""
    # BEGIN SOLUTION a5
    if weight_decay and decoupled:
        theta *= 1 - lr * weight_decay  # AdamW: shrink the weights directly
    elif weight_decay:
        grad = grad + weight_decay * theta  # Adam: an L2 penalty through the gradient
    exp_avg *= beta1
    exp_avg += (1 - beta1) * grad  # m_t = beta1 m_{t-1} + (1 - beta1) g
    exp_avg_sq *= beta2
    exp_avg_sq += (1 - beta2) * grad * grad  # v_t = beta2 v_{t-1} + (1 - beta2) g^2
    # theta -= lr m_hat / (sqrt(v_hat) + eps), with m_hat = m_t / (1 - beta1^t) and
    # v_hat = v_t / (1 - beta2^t): the two corrections applied to scalars, not to arrays
    step_size = lr / (1 - beta1**step)
    denominator = array_module(theta).sqrt(exp_avg_sq) / math.sqrt(1 - beta2**step) + eps
    theta -= exp_avg / denominator * step_size
    # END SOLUTION a5


class Adam(Optimizer):
    """For each parameter, with gradient g at step t:

        m_t = beta1 m_{t-1} + (1 - beta1) g            first moment: a running mean of g
        v_t = beta2 v_{t-1} + (1 - beta2) g^2          second moment: a running mean of g^2
        m_hat = m_t / (1 - beta1^t),  v_hat = v_t / (1 - beta2^t)    bias corrections
        theta_t = theta_{t-1} - lr * m_hat / (sqrt(v_hat) + eps)

    ``weight_decay`` adds weight_decay * theta to g (an L2 penalty, coupled with the moments).
    Note on F4: document 000 section 4.1 calls theta - lr * g / (1 - beta1^t) "Adam"; that is
    only the bias correction of a first moment applied to the raw gradient, with no moments at
    all (see tests/formulas/test_F4_adam_as_written.py and lessons/07).
    """

    decoupled_weight_decay = False

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay))

    def validate_hyperparameters(self) -> None:
        super().validate_hyperparameters()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            if not (0.0 <= beta1 < 1.0 and 0.0 <= beta2 < 1.0):
                raise ValueError(f"{type(self).__name__}: betas must be in [0, 1), got {group['betas']}")
            if group["eps"] < 0:
                raise ValueError(f"{type(self).__name__}: eps must be >= 0, got {group['eps']}")

    def step(self) -> None:
        for group, param, grad in self._params_with_grad():
            state = self.state.setdefault(id(param), {})
            if not state:
                xp = array_module(param.data)
                state["step"] = 0
                state["exp_avg"] = xp.zeros(param.shape, dtype=param.dtype)
                state["exp_avg_sq"] = xp.zeros(param.shape, dtype=param.dtype)
            state["step"] += 1
            beta1, beta2 = group["betas"]
            adam_update(param.data, grad, state["exp_avg"], state["exp_avg_sq"], lr=group["lr"],
                        beta1=beta1, beta2=beta2, eps=group["eps"],
                        weight_decay=group["weight_decay"], decoupled=self.decoupled_weight_decay,
                        step=state["step"])


class AdamW(Adam):
    """Adam with decoupled weight decay: theta <- theta (1 - lr * weight_decay) before the Adam
    step, so decay shrinks every weight at the same rate instead of being rescaled by v_hat."""

    decoupled_weight_decay = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.01):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
