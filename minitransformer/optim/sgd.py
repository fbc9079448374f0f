"""Stochastic gradient descent (F3), with momentum, Nesterov momentum and weight decay."""

from __future__ import annotations

from .optimizer import Optimizer


class SGD(Optimizer):
    """theta_{t+1} = theta_t - lr * g_t   (F3), where, as in PyTorch,

        g_t = grad + weight_decay * theta_t                   (L2 penalty, if weight_decay > 0)
        b_t = momentum * b_{t-1} + g_t,  g_t <- b_t            (if momentum > 0; b_1 = g_1)
        g_t <- g_t + momentum * b_t                            (instead, if nesterov)
    """

    def __init__(self, params, lr: float, momentum: float = 0.0, weight_decay: float = 0.0,
                 nesterov: bool = False):
        if nesterov and momentum <= 0:
            raise ValueError("SGD: nesterov momentum needs momentum > 0")
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov))

    def step(self) -> None:
        # BEGIN SOLUTION a5
        for group, param, grad in self._params_with_grad():
            if group["weight_decay"]:
                grad = grad + group["weight_decay"] * param.data
            momentum = group["momentum"]
            if momentum:
                state = self.state.setdefault(id(param), {})
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = grad.copy()
                else:
                    state["momentum_buffer"] *= momentum
                    state["momentum_buffer"] += grad
                buffer = state["momentum_buffer"]
                grad = grad + momentum * buffer if group["nesterov"] else buffer
            param.data -= group["lr"] * grad
        # END SOLUTION a5
