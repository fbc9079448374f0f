"""Instruction-tune a language model with LoRA: ``finetune-lm``.

The base model (a ``train`` run, or a Hugging Face model through ``pretrained.load_lm``) stays
frozen; low-rank adapters on the chosen layers (nn.apply_lora) learn to answer prompts. Each
prompt/response pair is one sequence ``Question: {prompt}\\nAnswer: {response}<end>`` whose
loss counts the response tokens only (data/instructions.py). Before training and after, the
loss on held-out pairs' responses and a greedy answer to a held-out prompt are recorded.

    runs/NAME/config.json                the FinetuneLMConfig, the base model, the adapted layers
    runs/NAME/adapter_model.safetensors  the adapter weights only, under PEFT's names
    runs/NAME/adapter_config.json        PEFT's adapter config (r, lora_alpha, target_modules...)
    runs/NAME/checkpoint/                adapters + optimizer + RNG state, for --resume
    runs/NAME/log.jsonl                  one record per step and per held-out evaluation
    runs/NAME/comparison.json            held-out loss and sample, before and after
    runs/NAME/merged_model.safetensors   with --merge: the full weights, W + (alpha / r) B A

Ctrl-C finishes the step, writes a checkpoint and the adapter files, and stops; ``--resume
RUN_DIR`` continues with the same batches, so the adapters end as an uninterrupted run's.
``generate --run RUN_DIR`` loads the base model with the adapters and wraps the prompt in the
template.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import backend, checkpoint
from . import functional as F
from .atomic import atomic_write_text
from .autograd import no_grad
from .adapters import ADAPTER_FILE, AdapterWeights, load_base, newest_train_run, stored_base
from .data.instructions import (END_TEXT, IGNORE_INDEX, default_instructions, encode_pair, format_prompt,
                                instruction_batch, load_instructions)
from .nn import SamplingSettings, apply_lora, count_parameters, lora_state_dict, merged_state_dict
from .nn.generation import generate_tokens
from .optim import AdamW, clip_grad_norm, cosine_lr, set_lr
from .progress import Progress
from .runs import (DivergenceGuard, RunDirectory, StopFlag, check_config, from_dict, global_grad_norm, option,
                   read_run_info)
from .safetensors import save_file
from .train import from_run_folder, run_relative

ADAPTER_CONFIG_FILE = "adapter_config.json"
MERGED_FILE = "merged_model.safetensors"
DEFAULT_TARGETS = {"GPT": ("c_attn",), "Llama": ("q_proj", "v_proj")}
RESUMABLE_OVERRIDES = ("epochs", "device", "merge")


@dataclass
class FinetuneLMConfig:
    """A finetune-lm run. The CLI's flags are generated from these fields."""

    data: str | None = option("JSONL file of {\"prompt\": ..., \"response\": ...} lines (default: the embedded "
                              "questions and answers about this package's API)")
    from_run: str | None = option("a `train` run directory (GPT or Llama-style) to adapt")
    pretrained: str | None = option("a Hugging Face model folder or name to adapt (GPT-2 or Llama-family)")
    lora_rank: int = option("rank r of each adapter", 8, bounds="[1, inf)")
    lora_alpha: float = option("adapter scale: the update is (alpha / r) B A", 16.0, bounds="(0, inf)")
    lora_dropout: float = option("dropout on the adapters' input", 0.05, bounds="[0, 1)")
    target_modules: str | None = option("comma-separated names of the Linear layers to adapt (default: c_attn "
                                        "for GPT, q_proj,v_proj for Llama)")
    epochs: int = option("passes over the training pairs", 3, bounds="[1, inf)")
    batch_size: int = option("pairs per step", 8, bounds="[1, inf)")
    learning_rate: float = option("peak AdamW learning rate (cosine decay to a tenth)", 2e-3, bounds="(0, inf)")
    weight_decay: float = option("AdamW weight decay on the adapters", 0.0, bounds="[0, inf)")
    grad_clip: float = option("clip the gradients' global norm to this (0: off)", 1.0, bounds="[0, inf)")
    max_length: int | None = option("tokens per pair, longer ones cut (default and cap: the model's block_size "
                                    "+ 1)", bounds="[2, inf)")
    held_out: int = option("pairs held out for the before/after comparison", 8, bounds="[1, inf)")
    sample_tokens: int = option("tokens of each before/after answer", 80, bounds="[0, 10000]")
    merge: bool = option("also write the merged full weights (merged_model.safetensors)", False)
    seed: int = option("random seed (adapters, batches, dropout)", 1337, bounds="[0, inf)")
    out_dir: str = option("folder that holds run directories", "runs")
    name: str | None = option("run directory name (default: a timestamp)")
    device: str = option("'cpu' or 'cuda'", "cpu", choices=backend.DEVICES)

    def __post_init__(self):
        check_config("finetune-lm", self)
        if self.from_run and self.pretrained:
            raise ValueError("finetune-lm: give one starting point, not --from-run and --pretrained")
        if self.target_modules is not None and not self.targets():
            raise ValueError(f"finetune-lm: --target-modules {self.target_modules!r} names no layer")

    def targets(self) -> tuple[str, ...]:
        return tuple(name.strip() for name in (self.target_modules or "").split(",") if name.strip())


# --- data, loss and evaluation -------------------------------------------------------------------

def encode_pairs(pairs, tokenizer, ends: list[int], max_length: int, out) -> list[tuple[list[int], int]]:
    """Each pair as (ids, prompt length). Characters a character tokenizer has never seen are
    dropped and pairs with no response token left after cutting are skipped, each with a note."""
    known = set(getattr(tokenizer, "chars", ()))
    dropped, examples = set(), []
    for pair in pairs:
        if known:
            dropped |= set(pair.prompt + pair.response) - known
            pair = dataclasses.replace(pair, prompt="".join(c for c in pair.prompt if c in known),
                                       response="".join(c for c in pair.response if c in known))
        encoded = encode_pair(tokenizer, pair, ends, max_length)
        if encoded is not None:
            examples.append(encoded)
    if dropped:
        shown = "".join(sorted(dropped))[:40]
        print(f"note: dropped {len(dropped)} character(s) the base model's tokenizer lacks: {shown!r}", file=out)
    if len(examples) < len(pairs):
        print(f"note: skipped {len(pairs) - len(examples)} pair(s) whose prompt fills all {max_length} tokens",
              file=out)
    return examples


def response_loss(model, inputs, targets, reduction: str = "mean"):
    """Cross-entropy of the next-token predictions whose target is not IGNORE_INDEX: the
    response tokens (and the end token) only, so the prompt's positions get no gradient."""
    logits = model.lm_head(model.hidden_states(inputs))  # (B, T, V)
    return F.cross_entropy(logits, targets, ignore_index=IGNORE_INDEX, reduction=reduction)


def held_out_loss(model, examples, batch_size: int, device: str) -> float:
    """Mean cross-entropy per response token over ``examples``, in eval mode, without a graph."""
    model.eval()
    total, count = 0.0, 0
    with no_grad():
        for start in range(0, len(examples), batch_size):
            inputs, targets = instruction_batch(examples[start:start + batch_size])
            loss = response_loss(model, backend.to_device(inputs, device), backend.to_device(targets, device), "sum")
            total, count = total + loss.item(), count + int((targets != IGNORE_INDEX).sum())
    return total / count


def answer(model, tokenizer, prompt: str, ends: list[int], max_new_tokens: int, device: str) -> str:
    """The model's greedy answer to ``prompt`` (in the template), up to its end marker."""
    model.eval()
    ids = tokenizer.encode(format_prompt(prompt))[-model.config.block_size:]
    context = backend.to_device(np.array([ids], dtype=np.int64), device)
    new_ids = []
    for next_ids in generate_tokens(model, context, max_new_tokens, SamplingSettings(temperature=0.0)):
        new_ids.append(int(backend.to_numpy(next_ids)[0]))
        if new_ids[-len(ends):] == ends:
            new_ids = new_ids[:-len(ends)]
            break
    return tokenizer.decode(new_ids).strip()


# --- the run -------------------------------------------------------------------------------------

def finetune_lm(config: FinetuneLMConfig | None = None, resume: str | Path | None = None,
                overrides: dict | None = None, stop_after: int | None = None, out=None, results=None) -> Path:
    """Train LoRA adapters on instruction pairs (or resume a run) and return the run directory.

    stop_after: stop as Ctrl-C would after this many steps of this call (for tests and demos).
    Everything is checked (config, starting point, data) before a new run directory is made.
    """
    out, results = out or sys.stderr, results or sys.stdout
    if resume is not None:
        folder = RunDirectory.reopen("finetune-lm --resume", resume)
        with folder.closed_on_error():
            config, info = _resumed_config(folder.path, overrides or {})
            prepared = _prepare(config, out)
            if prepared.data_sha256 != info["data_sha256"]:
                raise ValueError(f"finetune-lm --resume: the instruction data differs from the one {folder.path} "
                                 "started with")
    else:
        config = config or FinetuneLMConfig()
        RunDirectory.check_new("finetune-lm", config.out_dir, config.name)
        config = _with_starting_point(config, out)
        prepared = _prepare(config, out)
        folder = RunDirectory.create("finetune-lm", config.out_dir, config.name, default_prefix="finetune-lm-")
    with folder, StopFlag() as stop:
        return _run(folder, config, prepared, resume is not None, stop, stop_after, out, results)


def _with_starting_point(config: FinetuneLMConfig, out) -> FinetuneLMConfig:
    if not (config.from_run or config.pretrained):
        run_dir = newest_train_run(config.out_dir)
        if run_dir is None:
            raise ValueError(f"finetune-lm: no model to adapt: train one first (`python -m minitransformer train`, "
                             f"found in {config.out_dir}/), or give --from-run RUN_DIR or --pretrained NAME_OR_DIR")
        config = dataclasses.replace(config, from_run=str(run_dir))
        print(f"starting point: {run_dir}, the newest run in {config.out_dir}/ (--from-run DIR chooses another)",
              file=out)
    return config


@dataclass
class _Prepared:
    model: object
    tokenizer: object
    description: str
    adapted: list[str]
    train: list
    held_out: list
    held_out_prompts: list[str]
    ends: list[int]
    data_sha256: str


def _prepare(config: FinetuneLMConfig, out) -> _Prepared:
    """The base model with fresh adapters, and the encoded pairs split into train and held out."""
    if config.device == "cuda":
        backend.require_cupy("finetune-lm --device cuda")
    pairs = load_instructions(config.data) if config.data else default_instructions()
    data_sha256 = hashlib.sha256(json.dumps([dataclasses.astuple(p) for p in pairs]).encode()).hexdigest()
    if len(pairs) <= config.held_out:
        raise ValueError(f"finetune-lm: {len(pairs)} pairs are too few to hold out {config.held_out} "
                         "(--held-out) and train on the rest")
    model, tokenizer, description, ends = load_base(config.from_run, config.pretrained, config.device)
    targets = config.targets() or DEFAULT_TARGETS.get(type(model).__name__, ())
    max_length = min(config.max_length or math.inf, model.config.block_size + 1)
    order = np.random.default_rng(config.seed).permutation(len(pairs))
    held_out_pairs = [pairs[i] for i in order[:config.held_out]]
    train = encode_pairs([pairs[i] for i in order[config.held_out:]], tokenizer, ends, max_length, out)
    held_out = encode_pairs(held_out_pairs, tokenizer, ends, max_length, out)
    if not train or not held_out:
        raise ValueError(f"finetune-lm: no pair fits in {max_length} tokens with a response token left; "
                         "use a model with a longer block_size or shorter prompts")
    backend.manual_seed(config.seed)
    adapted = apply_lora(model, targets, config.lora_rank, config.lora_alpha, config.lora_dropout)
    return _Prepared(model.to(config.device), tokenizer, description, adapted, train, held_out,
                     [p.prompt for p in held_out_pairs], ends, data_sha256)


def _run(folder: RunDirectory, config: FinetuneLMConfig, prepared: _Prepared, resumed: bool, stop, stop_after,
         out, results) -> Path:
    model, run_dir = prepared.model, folder.path
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)
    steps_per_epoch = math.ceil(len(prepared.train) / config.batch_size)
    total_steps = config.epochs * steps_per_epoch
    if resumed:
        extra = checkpoint.load(run_dir / "checkpoint", AdapterWeights(model), optimizer)
        step, before = extra["step"], extra["before"]
        backend.set_rng_state(extra["rng_state"])
        info = read_run_info(run_dir)
        folder.write_info({**info, "config": _stored_config(config, run_dir)})
    else:
        before = _compare(model, prepared, config)  # the adapters start at zero: this is the base model
        step = 0
        folder.write_info({"kind": "lora", "config": _stored_config(config, run_dir),
                           "base": stored_base(config.from_run, config.pretrained, run_dir),
                           "model": model.config.to_dict(), "adapted_layers": prepared.adapted, "end_ids": prepared.ends,
                           "data_sha256": prepared.data_sha256})
    log = folder.open_log(keep_through=step)
    trainable, total = count_parameters(model)
    print(f"run directory: {run_dir}\nbase: {prepared.description}; adapters of rank {config.lora_rank} on "
          f"{len(prepared.adapted)} layers: {trainable:,} trainable of {total:,} parameters "
          f"({100 * trainable / total:.2f}%)\ndata: {len(prepared.train)} training pairs, {len(prepared.held_out)} "
          f"held out; {steps_per_epoch} steps per epoch", file=out)
    guard = DivergenceGuard("finetune-lm", model.config.vocab_size, hint=f"lower --learning-rate (now "
                            f"{config.learning_rate:g})")
    progress = Progress(total_steps, out, start=step)
    started_at = step
    while step < total_steps:
        epoch, position = divmod(step, steps_per_epoch)
        order = np.random.default_rng([config.seed, epoch]).permutation(len(prepared.train))  # one order an epoch
        batch = [prepared.train[i] for i in order[position * config.batch_size:(position + 1) * config.batch_size]]
        inputs, targets = instruction_batch(batch)
        lr = cosine_lr(step, config.learning_rate, min(10, total_steps // 10), total_steps, config.learning_rate / 10)
        set_lr(optimizer, lr)
        began = time.perf_counter()
        model.train()
        loss = response_loss(model, backend.to_device(inputs, config.device), backend.to_device(targets, config.device))
        optimizer.zero_grad()
        loss.backward()
        grad_norm = clip_grad_norm(params, config.grad_clip) if config.grad_clip > 0 else global_grad_norm(params)
        if guard.allows(step + 1, loss.item(), grad_norm):
            optimizer.step()
        step += 1
        progress.update(step, loss.item(), int((targets != IGNORE_INDEX).sum()) / (time.perf_counter() - began))
        log.write({"kind": "step", "iter": step, "epoch": epoch + 1, "loss": loss.item(), "lr": lr,
                   "grad_norm": grad_norm, "time": time.time()})
        if step % steps_per_epoch == 0:
            held_out = held_out_loss(model, prepared.held_out, config.batch_size, config.device)
            guard.check_evaluation(step, {"held_out": held_out})
            log.write({"kind": "eval", "iter": step, "epoch": epoch + 1, "held_out": held_out, "time": time.time()})
            progress.note(f"epoch {epoch + 1}: held-out response loss {held_out:.4f}")
            _save(folder, model, optimizer, config, step, before)
        if stop.requested or (stop_after is not None and step - started_at >= stop_after):
            _save(folder, model, optimizer, config, step, before)
            progress.close()
            print(f"stopped at step {step}: checkpoint written; continue with "
                  f"`python -m minitransformer finetune-lm --resume {run_dir}`", file=out)
            return run_dir
    progress.close()
    _save(folder, model, optimizer, config, step, before)
    after = _compare(model, prepared, config)
    atomic_write_text(run_dir / "comparison.json", json.dumps({"before": before, "after": after}, indent=2))
    if config.merge:
        save_file(merged_state_dict(model), run_dir / MERGED_FILE, metadata={"format": "np"})
    _print_comparison(before, after, run_dir, config.merge, results)
    return run_dir


def _compare(model, prepared: _Prepared, config: FinetuneLMConfig) -> dict:
    """The held-out response loss and the greedy answer to the first held-out prompt."""
    prompt = prepared.held_out_prompts[0]
    return {"held_out_loss": held_out_loss(model, prepared.held_out, config.batch_size, config.device),
            "prompt": prompt,
            "answer": answer(model, prepared.tokenizer, prompt, prepared.ends, config.sample_tokens, config.device)}


def _save(folder: RunDirectory, model, optimizer, config: FinetuneLMConfig, step: int, before: dict) -> None:
    """The checkpoint (adapters, optimizer, RNG) and the adapter files in PEFT's layout."""
    folder.save_checkpoint(AdapterWeights(model), optimizer, {"step": step, "before": before,
                                                              "rng_state": backend.get_rng_state()})
    save_file(lora_state_dict(model), folder.path / ADAPTER_FILE, metadata={"format": "np"})
    info = read_run_info(folder.path)
    adapter_config = {  # PEFT's LoraConfig fields (peft/tuners/lora/config.py)
        "peft_type": "LORA", "task_type": "CAUSAL_LM", "r": config.lora_rank, "lora_alpha": config.lora_alpha,
        "lora_dropout": config.lora_dropout, "target_modules": sorted({n.rsplit(".", 1)[-1]
                                                                      for n in info["adapted_layers"]}),
        "bias": "none", "fan_in_fan_out": False, "inference_mode": True, "use_rslora": False,
        "base_model_name_or_path": config.pretrained or info["base"]["from_run"]}
    atomic_write_text(folder.path / ADAPTER_CONFIG_FILE, json.dumps(adapter_config, indent=2))


def _print_comparison(before: dict, after: dict, run_dir: Path, merged: bool, out) -> None:
    print(f"run directory: {run_dir}", file=out)
    print(f"held-out response loss: {before['held_out_loss']:.4f} before, {after['held_out_loss']:.4f} after",
          file=out)
    print(f"prompt: {before['prompt']}\nbefore: {before['answer']}\nafter:  {after['answer']}", file=out)
    files = ADAPTER_FILE + (f", {MERGED_FILE}" if merged else "")
    print(f"wrote {files}; sample with `python -m minitransformer generate --run {run_dir} --prompt "
          f"'...' --stop '{END_TEXT.encode('unicode_escape').decode()}'`", file=out, flush=True)


def _stored_config(config: FinetuneLMConfig, run_dir: Path) -> dict:
    stored = dataclasses.asdict(config)
    for name in ("data", "from_run"):
        stored[name] = run_relative(stored[name], run_dir)
    if config.pretrained and Path(config.pretrained).is_dir():  # a folder, not a hub name
        stored["pretrained"] = run_relative(config.pretrained, run_dir)
    return stored


def _resumed_config(run_dir: Path, overrides: dict) -> tuple[FinetuneLMConfig, dict]:
    info = read_run_info(run_dir, kind="lora")
    refused = sorted(set(overrides) - set(RESUMABLE_OVERRIDES))
    if refused:
        raise ValueError(f"finetune-lm --resume: cannot change {refused} of an existing run; "
                         f"only {list(RESUMABLE_OVERRIDES)} may change")
    if not (run_dir / "checkpoint" / checkpoint.ARRAYS_FILE).is_file():
        raise ValueError(f"finetune-lm --resume: {run_dir} has no checkpoint yet")
    saved = dataclasses.asdict(from_dict(FinetuneLMConfig, info.get("config"),
                                         where=f"finetune-lm --resume: {run_dir / 'config.json'}", complete=True))
    for name in ("data", "from_run"):
        saved[name] = from_run_folder(saved[name], run_dir)
    if (info.get("base") or {}).get("pretrained_is_folder"):
        saved["pretrained"] = from_run_folder(saved["pretrained"], run_dir)
    return FinetuneLMConfig(**{**saved, **overrides}), info


# --- the command line ----------------------------------------------------------------------------

def add_parser(commands) -> None:
    """Add ``finetune-lm`` to the CLI's subcommands (its flags generated from FinetuneLMConfig)."""
    from .cli import add_config_flags  # the CLI's helper; this function is the command's CLI part

    parser = commands.add_parser(
        "finetune-lm", help="instruction-tune a language model with LoRA adapters",
        description="Train LoRA adapters on prompt/response pairs (JSONL), the loss on the response tokens only, "
                    "and compare held-out loss and answers before and after. Without --from-run or --pretrained it "
                    "adapts the newest `train` run in --out-dir. Writes adapter_model.safetensors and "
                    "adapter_config.json (PEFT's layout). Ctrl-C writes a checkpoint; --resume continues it.")
    parser.add_argument("--config", metavar="FILE", help="JSON file of option values (flags given here win)")
    parser.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its last checkpoint (only "
                        f"{', '.join('--' + n.replace('_', '-') for n in RESUMABLE_OVERRIDES)} may change)")
    add_config_flags(parser, FinetuneLMConfig)


def run(args) -> None:
    from .cli import run_or_resume

    run_or_resume("finetune-lm", args, FinetuneLMConfig, RESUMABLE_OVERRIDES, finetune_lm)
