"""Adam (Kingma & Ba 2015, Algorithm 1) and AdamW (Loshchilov & Hutter 2019)."""

from __future__ import annotations

import math

from .. import kernels
from ..backend import array_module
from ..parallel import parallel_rows
from .optimizer import Optimizer


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
        # BEGIN SOLUTION a5
        for group, param, grad in self._params_with_grad():
            lr, (beta1, beta2), eps, decay = group["lr"], group["betas"], group["eps"], group["weight_decay"]
            xp = array_module(param.data)
            state = self.state.setdefault(id(param), {})
            if not state:
                state["step"] = 0
                state["exp_avg"] = xp.zeros(param.shape, dtype=param.dtype)
                state["exp_avg_sq"] = xp.zeros(param.shape, dtype=param.dtype)
            state["step"] += 1
            t = state["step"]
            # flat views to update in place: each array must be C-contiguous (else a copy)
            param.data = xp.ascontiguousarray(param.data)
            for name in ("exp_avg", "exp_avg_sq"):
                state[name] = xp.ascontiguousarray(state[name])
            theta, m, v = (x.reshape(-1) for x in (param.data, state["exp_avg"], state["exp_avg_sq"]))
            g = xp.ascontiguousarray(grad).reshape(-1)
            step_size = lr / (1 - beta1**t)
            sqrt_bias_correction2 = math.sqrt(1 - beta2**t)

            def update(rows):  # one block of the parameter, every pass in place
                theta_rows, g_rows, m_rows, v_rows = theta[rows], g[rows], m[rows], v[rows]
                if decay and self.decoupled_weight_decay:
                    theta_rows *= 1 - lr * decay  # AdamW: shrink the weights directly
                elif decay:
                    g_rows = g_rows + decay * theta_rows  # Adam: L2 penalty through the gradient
                m_rows *= beta1
                m_rows += (1 - beta1) * g_rows
                v_rows *= beta2
                v_rows += (1 - beta2) * g_rows * g_rows
                # theta -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
                denominator = xp.sqrt(v_rows)
                denominator /= sqrt_bias_correction2
                denominator += eps
                xp.divide(m_rows, denominator, out=denominator)
                denominator *= step_size
                theta_rows -= denominator

            if kernels.use_compiled(theta, g, m, v):  # the same in one pass (kernels.py)
                decoupled = bool(decay and self.decoupled_weight_decay)
                scalars = [1 - lr * decay if decoupled else 1.0, 0.0 if decoupled else decay,
                           beta1, 1 - beta1, beta2, 1 - beta2, sqrt_bias_correction2, eps, step_size]
                scalars = [theta.dtype.type(value) for value in scalars]

                def update(rows):
                    kernels.adam_update(theta[rows], g[rows], m[rows], v[rows], *scalars)

            parallel_rows(update, theta.size, 1, xp)
        # END SOLUTION a5


class AdamW(Adam):
    """Adam with decoupled weight decay: theta <- theta (1 - lr * weight_decay) before the Adam
    step, so decay shrinks every weight at the same rate instead of being rescaled by v_hat."""

    decoupled_weight_decay = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.01):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
