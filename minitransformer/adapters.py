"""The models ``finetune-lm`` adapts and the adapted models it makes: loading a base model (a
``train`` run or a Hugging Face model), and a finetune-lm run's base with its adapters (what
``generate --run`` samples from)."""

from __future__ import annotations

from pathlib import Path

from . import checkpoint
from .data.instructions import END_TEXT, encode_text
from .nn import apply_lora, load_lora_state_dict, lora_state_dict
from .pretrained import load_lm
from .runs import read_run_info
from .safetensors import load_file
from .train import from_run_folder, load_run, run_relative

ADAPTER_FILE = "adapter_model.safetensors"


class AdapterWeights:
    """The adapters of a model as the thing a checkpoint saves: a state dict of only them."""

    def __init__(self, model):
        self.model = model

    def state_dict(self) -> dict:
        return lora_state_dict(self.model)

    def load_state_dict(self, state: dict, strict: bool = True) -> None:
        load_lora_state_dict(self.model, state)


def newest_train_run(out_dir: str | Path) -> Path | None:
    """The ``train`` run in ``out_dir`` (any architecture) with the newest checkpoint, or None."""
    found = []
    for run_dir in Path(out_dir).glob("*/"):
        try:
            is_language_model = read_run_info(run_dir).get("kind", "lm") == "lm"
        except ValueError:  # not a run folder, or another version's
            continue
        checkpoint_file = run_dir / "checkpoint" / checkpoint.ARRAYS_FILE
        if is_language_model and checkpoint_file.is_file():
            found.append((checkpoint_file.stat().st_mtime, run_dir))
    return max(found)[1] if found else None


def load_base(from_run: str | None, pretrained: str | None, device: str):
    """(model, tokenizer, a description, the end-of-response token ids) of the starting point,
    the model in eval mode. The end is the model's end-of-sequence token when it has one (a
    Hugging Face model), else the tokens of ``END_TEXT``."""
    if pretrained:
        loaded = load_lm(pretrained, device=device)
        end = loaded.stop_token_ids[:1] or encode_text(loaded.tokenizer, END_TEXT)
        return loaded.model.eval(), loaded.tokenizer, f"the pretrained model {pretrained}", end
    model, tokenizer, _ = load_run(from_run, device)
    return model, tokenizer, f"the {type(model).__name__} of {from_run}", tokenizer.encode(END_TEXT)


def base_fingerprint(from_run: str | None) -> str | None:
    """The SHA-256 of a train run's weights, to notice a base changed after the adapters were made."""
    return checkpoint.read_config(Path(from_run) / "checkpoint", verify=False)["arrays_sha256"] if from_run else None


def stored_base(from_run: str | None, pretrained: str | None, run_dir: Path) -> dict:
    """The starting point as a run's config.json records it: folders relative to the run folder,
    so the runs can move together; a hub name as it is."""
    is_folder = bool(pretrained) and Path(pretrained).is_dir()
    return {"from_run": run_relative(from_run, run_dir),
            "pretrained": run_relative(pretrained, run_dir) if is_folder else pretrained,
            "pretrained_is_folder": is_folder, "weights_sha256": base_fingerprint(from_run)}


def load_adapted(run_dir: str | Path, device: str = "cpu"):
    """(model with its adapters, tokenizer, run info) of a finetune-lm run, in eval mode."""
    run_dir = Path(run_dir)
    info = read_run_info(run_dir, kind="lora")
    base = info.get("base") or {}
    from_run = from_run_folder(base.get("from_run"), run_dir)
    pretrained = from_run_folder(base["pretrained"], run_dir) if base.get("pretrained_is_folder") else base.get("pretrained")
    if from_run and base_fingerprint(from_run) != base.get("weights_sha256"):
        raise ValueError(f"{run_dir}: the base run {from_run} has other weights than the ones its adapters were "
                         "trained on")
    model, tokenizer, _, _ = load_base(from_run, pretrained, device)
    config = info["config"]
    apply_lora(model, tuple(info["adapted_layers"]), config["lora_rank"], config["lora_alpha"], config["lora_dropout"])
    load_lora_state_dict(model, load_file(run_dir / ADAPTER_FILE))
    return model.to(device).eval(), tokenizer, info


def load_for_generation(run_dir: str | Path, device: str = "cpu"):
    """(model, tokenizer, info) of a ``train`` run or, with its adapters, a ``finetune-lm`` run."""
    if read_run_info(run_dir).get("kind") == "lora":
        return load_adapted(run_dir, device)
    return load_run(run_dir, device)
