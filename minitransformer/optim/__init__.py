"""Optimizers (SGD, Adam, AdamW), gradient clipping and learning-rate schedules."""

from .adam import Adam, AdamW
from .clip import clip_grad_norm
from .optimizer import Optimizer
from .schedule import constant_lr, cosine_lr, set_lr
from .sgd import SGD

__all__ = ["Adam", "AdamW", "Optimizer", "SGD", "clip_grad_norm", "constant_lr", "cosine_lr", "set_lr"]
