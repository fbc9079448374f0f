"""The model architectures ``train --arch`` can build, as data: each names its model and config
classes and which of the run's hyperparameters (TrainConfig fields) its config takes.

A run records its architecture in config.json; ``train.load_run`` builds the model from the
same table, so adding an architecture is one entry here.
"""

from __future__ import annotations

from dataclasses import dataclass

from .nn import GPT, GPTConfig, Llama, LlamaConfig


@dataclass(frozen=True)
class Architecture:
    model: type
    config: type
    hyperparameters: tuple[str, ...]  # TrainConfig fields passed on to ``config`` (same names)

    def model_config(self, values: dict):
        return self.config(**{name: values[name] for name in self.hyperparameters})


ARCHITECTURES = {
    "gpt": Architecture(GPT, GPTConfig, ("block_size", "vocab_size", "n_layer", "n_head", "n_embd",
                                         "dropout", "bias")),
    "llama": Architecture(Llama, LlamaConfig, ("block_size", "vocab_size", "n_layer", "n_head", "n_kv_head",
                                               "n_embd", "dropout")),
}


def get(name: str) -> Architecture:
    if name not in ARCHITECTURES:
        raise ValueError(f"--arch must be one of {', '.join(ARCHITECTURES)}, got {name!r}")
    return ARCHITECTURES[name]
