"""Train a GPT (or Llama-style, ``arch``) language model on text, nanoGPT style, into a run directory.

    runs/NAME/config.json      the TrainConfig (and what the data and vocabulary were)
    runs/NAME/tokenizer.json   the tokenizer, to encode prompts later
    runs/NAME/checkpoint/      model + optimizer + RNG state (checkpoint.save), for resume
    runs/NAME/log.jsonl        one JSON object per logged step and per evaluation
    runs/NAME/loss.png         train and validation loss curves
    runs/NAME/samples.txt      text generated at the end
    runs/NAME/.lock            held while a process writes the run (see runs.py)

Ctrl-C finishes the current step, writes a checkpoint and stops; ``resume`` continues from it
with the same model, optimizer, RNG and data order, so an interrupted run ends with exactly
the parameters of an uninterrupted one. A NaN, infinite or exploding loss or gradient norm
stops the run with an error naming the step (``--skip-nonfinite`` skips such steps instead);
no checkpoint is ever written from non-finite weights. The run directory's transaction rules
(the lock, the log, the checks before it is made) live in runs.py, shared with finetune.

A run folder can be moved and resumed from any working directory: config.json stores the
``--data`` path relative to the run folder itself (``run_relative``), and a resume may name the
text's new place with ``--data`` (the text's SHA-256 proves it is the same). The learning-rate
schedule belongs to the run: resuming with a larger ``--max-iters`` keeps the cosine decay that
the run started with (it ends where the original ``max_iters`` or ``lr_decay_iters`` put it)
and trains the extra steps at ``min_lr``. Re-stretching the decay would raise the learning
rate again, part-way through a run whose weights have settled; ``--lr-decay-iters`` on resume
asks for that explicitly, and the run says what the change does to the learning rate.

``--gradient-accumulation-steps K`` cuts each step's batch into K micro-batches whose losses are
weighted by their share of the batch's targets (microbatches.py): the same update in 1/K of
the activation memory. Started by ``mpiexec -n N``, every rank draws the same global batch of
``--batch-size`` rows, takes its rows, and the gradients are summed over the ranks
(distributed.py); only rank 0 writes the run directory, the evaluation is shared out, and the
checkpoint holds nothing that depends on N, so a run resumes on any number of ranks.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import architectures, backend, checkpoint, data
from .autograd import no_grad
from .atomic import atomic_open, atomic_write_text
from .distributed import World, all_reduce_gradients, broadcast_parameters, own_random_stream
from .distributed import init as init_world
from .nn import Module
from .optim import clip_grad_norm, cosine_lr, set_lr
from .progress import Progress
from .runs import (DivergenceGuard, ReadOnlyRunDirectory, RunDirectory, StopFlag, accumulation_option, check_config,
                   check_run_files, from_dict, global_grad_norm, option, read_log, read_run_info)

MAX_SAMPLE_TOKENS = 100_000
IGNORE_INDEX = -1  # the target the language models' loss skips (nanoGPT's value), for micro-batch shares


@dataclass
class TrainConfig:
    """Everything a training run depends on. The CLI's flags are generated from these fields
    (``--batch-size`` for ``batch_size``...), named like nanoGPT's config variables; each
    field's bounds are checked when the config is made, before anything is read or written."""

    data: str | None = option("UTF-8 text file or folder of .txt files (default: the standard library's docstrings)")
    tokenizer: str = option("'char' (one token per character) or 'bpe' (byte-level BPE)", "char", choices=("char", "bpe"))
    vocab_size: int = option("vocabulary size for --tokenizer bpe", 512, bounds="[257, inf)")
    out_dir: str = option("folder that holds run directories", "runs")
    name: str | None = option("run directory name (default: a timestamp)")
    arch: str = option("model architecture", "gpt", choices=tuple(architectures.ARCHITECTURES))
    batch_size: int = option("sequences per step (B), over all ranks of a data-parallel run", 12, bounds="[1, inf)")
    gradient_accumulation_steps: int = accumulation_option()
    block_size: int = option("context length in tokens (T)", 64, bounds="[1, inf)")
    n_layer: int = option("transformer blocks", 4, bounds="[1, inf)")
    n_head: int = option("attention heads per block", 4, bounds="[1, inf)")
    n_kv_head: int | None = option("key/value heads per block, dividing n_head (--arch llama; default: n_head)",
                                   bounds="[1, inf)")
    n_embd: int = option("embedding width (C)", 128, bounds="[1, inf)")
    dropout: float = option("dropout probability", 0.0, bounds="[0, 1)")
    bias: bool = option("biases in Linear and LayerNorm layers (--arch gpt; Llama has none)", True)
    learning_rate: float = option("peak learning rate", 1e-3, bounds="(0, inf)")
    min_lr: float = option("learning rate at the end of the cosine decay", 1e-4, bounds="[0, inf)")
    warmup_iters: int = option("linear warmup steps", 100, bounds="[0, inf)")
    lr_decay_iters: int | None = option("step where the cosine decay reaches min_lr (default: max_iters)",
                                        bounds="[1, inf)")
    max_iters: int = option("training steps", 2000, bounds="[1, inf)")
    eval_interval: int = option("steps between loss estimates and checkpoints", 250, bounds="[1, inf)")
    eval_iters: int = option("batches per loss estimate", 20, bounds="[1, inf)")
    log_interval: int = option("steps between log lines", 10, bounds="[1, inf)")
    weight_decay: float = option("AdamW weight decay on matrices", 0.1, bounds="[0, inf)")
    beta1: float = option("AdamW beta1", 0.9, bounds="[0, 1)")
    beta2: float = option("AdamW beta2", 0.99, bounds="[0, 1)")
    grad_clip: float = option("clip the gradients' global norm to this (0: off)", 1.0, bounds="[0, inf)")
    skip_nonfinite: bool = option("skip (and count) a step whose loss or gradient is NaN or infinite, "
                                  "instead of stopping the run", False)
    seed: int = option("random seed (initialisation, batches, dropout, sampling)", 1337, bounds="[0, inf)")
    device: str = option("'cpu' (NumPy) or 'cuda' (CuPy)", "cpu", choices=backend.DEVICES)
    sample_tokens: int = option("tokens to generate into samples.txt at the end", 300,
                                bounds=f"[0, {MAX_SAMPLE_TOKENS}]")

    def __post_init__(self):
        check_config("train", self)
        if self.min_lr > self.learning_rate:
            raise ValueError(f"train: --min-lr ({self.min_lr}) must not exceed --learning-rate ({self.learning_rate})")
        if self.n_embd % self.n_head:
            raise ValueError(f"train: --n-embd ({self.n_embd}) must be divisible by --n-head ({self.n_head})")
        architecture = architectures.get(self.arch)
        if self.n_kv_head is not None and "n_kv_head" not in architecture.hyperparameters:
            raise ValueError(f"train: --n-kv-head applies to --arch llama, not --arch {self.arch}")
        if self.n_kv_head is not None and self.n_head % self.n_kv_head:
            raise ValueError(f"train: --n-head ({self.n_head}) must be divisible by --n-kv-head ({self.n_kv_head})")

    def model_config(self, vocab_size: int):
        """The config of the ``arch`` model (GPTConfig, LlamaConfig) for this vocabulary."""
        values = {**dataclasses.asdict(self), "vocab_size": vocab_size}
        return architectures.get(self.arch).model_config(values)


# --- the pieces of a run -----------------------------------------------------------------------

def load_corpus(config: TrainConfig) -> str:
    return data.load_text(config.data) if config.data else data.stdlib_docstrings()


def build_tokenizer(config: TrainConfig, text: str):
    if config.tokenizer == "bpe":
        return data.ByteBPETokenizer.train(text, config.vocab_size)
    return data.CharTokenizer.train(text)


def unigram_loss(train_ids: np.ndarray, val_ids: np.ndarray, vocab_size: int) -> float:
    """Cross-entropy on the validation ids of a model that ignores context and predicts each
    token with its training frequency (add-one smoothed): the baseline a GPT must beat."""
    counts = np.bincount(train_ids, minlength=vocab_size) + 1.0
    log_probs = np.log(counts / counts.sum())
    return float(-log_probs[val_ids].mean())


def estimate_loss(model: Module, splits: dict, config: TrainConfig, seed: int, world: World | None = None) -> dict:
    """Mean loss over eval_iters batches of each split, in eval mode, without a graph.

    The batches come from their own generator (seeded by ``seed``), so evaluating never moves
    the training RNG: a run gives the same parameters whether or when it was evaluated. In a
    data-parallel run every rank draws the same batches, scores its share of their rows, and
    the shares are summed over the ranks: the estimate of one process, for 1/N of the work.
    """
    world = world or World()
    plan = world.plan(config.gradient_accumulation_steps)
    rng = np.random.default_rng(seed)
    model.eval()
    totals = []
    with no_grad():
        for ids in splits.values():
            total = 0.0
            for _ in range(config.eval_iters):
                x, y = data.get_batch(ids, config.batch_size, config.block_size, rng)
                for x_part, y_part, share in plan.pieces(x, y, ignore_index=IGNORE_INDEX):
                    _, loss = model(_to_device(x_part, config), _to_device(y_part, config))
                    total += share * loss.item()
            totals.append(total / config.eval_iters)
    model.train()
    return dict(zip(splits, world.sum_numbers(*totals)))


def _to_device(array: np.ndarray, config: TrainConfig):
    return backend.to_device(array, config.device)


def plot_losses(log_path: Path, image_path: Path) -> None:
    from matplotlib.figure import Figure  # no pyplot: no global backend switch, no window

    records, _ = read_log(log_path)
    steps = _plottable(records, "step", ("iter", "loss"))
    evals = _plottable(records, "eval", ("iter", "train", "val", "unigram"))
    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    if steps:
        ax.plot([r["iter"] for r in steps], [r["loss"] for r in steps], lw=0.8, alpha=0.5, label="train (batch)")
    if evals:
        ax.plot([r["iter"] for r in evals], [r["train"] for r in evals], "o-", label="train (estimate)")
        ax.plot([r["iter"] for r in evals], [r["val"] for r in evals], "s-", label="validation")
        ax.axhline(evals[-1]["unigram"], color="gray", ls="--", label="unigram baseline")
    ax.set_xlabel("iteration")
    ax.set_ylabel("cross-entropy (nats per token)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_open(image_path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=110)


def _plottable(records: list[dict], kind: str, keys: tuple[str, ...]) -> list[dict]:
    """The records of one kind whose ``keys`` all hold numbers (a log edited by hand may not)."""
    def is_number(value) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool)

    return [r for r in records if r.get("kind") == kind and all(is_number(r.get(key)) for key in keys)]


# --- the run -----------------------------------------------------------------------------------

RESUMABLE_OVERRIDES = ("max_iters", "lr_decay_iters", "eval_interval", "eval_iters", "log_interval",
                       "sample_tokens", "skip_nonfinite", "device", "data", "gradient_accumulation_steps")


def train(config: TrainConfig | None = None, resume: str | Path | None = None, overrides: dict | None = None,
          stop_after: int | None = None, out=None, results=None) -> Path:
    """Train (or resume) a run and return its directory.

    resume: a run directory to continue; ``overrides`` may change the RESUMABLE_OVERRIDES.
    stop_after: stop as Ctrl-C would after this many steps of this call (for tests and demos).
    out: where progress and notes go (default: stderr); results: where the final losses and
        samples go (default: stdout).

    Everything is checked before the run directory is made: the config, the data, the
    tokenizer and the model's shape. A new run that fails before its first checkpoint leaves
    no directory behind; a resumed run is locked against a second writer.
    """
    world = init_world()
    out = out or sys.stderr
    results = results or sys.stdout
    if not world.is_main:  # rank 0 speaks for a data-parallel run
        out = results = open(os.devnull, "w")
    folder, config, prepared = _open_run_directory(config, resume, overrides or {}, world)
    plan = world.plan(config.gradient_accumulation_steps)
    with folder, StopFlag() as stop:  # Ctrl-C: finish the step, checkpoint, return
        run_dir, model, optimizer, tokenizer = folder.path, prepared.model, prepared.optimizer, prepared.tokenizer
        start_iter, last_eval = 0, None
        if folder.has_checkpoint():
            check_run_files(run_dir, checkpoint.read_config(run_dir / "checkpoint", verify=False)["extra"])
            extra = checkpoint.load(run_dir / "checkpoint", model, optimizer)
            start_iter, last_eval = extra["iter_num"], extra.get("last_eval")
            backend.set_rng_state(extra["rng_state"])
            info = read_run_info(run_dir) if world.is_main else {"config": {}}
            note = schedule_change(info["config"], config, start_iter) if world.is_main else None
            if note:
                print(f"note: {note}", file=out)
            folder.write_info({**info, "config": _stored_config(config, run_dir)})  # with the overrides
        log = folder.open_log(keep_through=start_iter)  # a resume logs the steps after its checkpoint again

        train_ids, val_ids = prepared.splits["train"], prepared.splits["val"]
        print(f"run directory: {run_dir}", file=out)
        print(f"data: {prepared.characters:,} characters -> {prepared.tokens:,} tokens ({tokenizer.vocab_size} in the "
              f"vocabulary); {len(train_ids):,} train / {len(val_ids):,} validation", file=out)
        print(f"model: {model.num_parameters():,} parameters; unigram baseline loss {prepared.baseline:.4f}", file=out)
        if world.size > 1 or plan.accumulation_steps > 1:
            print(f"batch: {config.batch_size} sequences a step, over {world.size} rank(s) x {plan.accumulation_steps} "
                  f"micro-batch(es)", file=out)
        broadcast_parameters(model.parameters(), world)  # every rank starts from rank 0's weights

        guard = DivergenceGuard("train", tokenizer.vocab_size, skip=config.skip_nonfinite,
                                hint=f"lower --learning-rate (now {config.learning_rate:g})"
                                     + (" or clip gradients with --grad-clip 1" if config.grad_clip == 0 else ""))
        decay_iters = decay_end(config)
        tokens_per_step = config.batch_size * config.block_size
        progress = Progress(config.max_iters, out, start=start_iter)
        iter_num = start_iter

        while iter_num < config.max_iters:
            if iter_num % config.eval_interval == 0:
                if last_eval is None or last_eval["iter"] != iter_num:  # not the one resumed from
                    last_eval = _evaluate(model, prepared, config, iter_num, guard, log, progress)
                if iter_num > start_iter:
                    _save(folder, model, optimizer, iter_num, last_eval, guard)
            lr = cosine_lr(iter_num, config.learning_rate, config.warmup_iters, decay_iters, config.min_lr)
            set_lr(optimizer, lr)
            started, communicated = time.perf_counter(), world.seconds_communicating
            x, y = data.get_batch(train_ids, config.batch_size, config.block_size)  # (B, T): the batch of all ranks
            with own_random_stream(world):  # dropout on this rank's rows draws from its own stream
                # BEGIN SOLUTION a6
                optimizer.zero_grad()
                loss_value = 0.0
                for x_part, y_part, share in plan.pieces(x, y, ignore_index=IGNORE_INDEX):  # this rank's rows
                    _, loss = model(_to_device(x_part, config), _to_device(y_part, config))
                    (loss * share).backward()  # share = the piece's tokens / the batch's: the pieces add up
                    loss_value += share * loss.item()
                all_reduce_gradients(model.parameters(), world)  # summed over the ranks (one process: nothing)
                loss_value = world.sum_numbers(loss_value)[0]
                grad_norm = clip_grad_norm(model.parameters(), config.grad_clip) if config.grad_clip > 0 else None
                # END SOLUTION a6
            if grad_norm is None:  # not clipped: measured anyway, for the divergence check
                grad_norm = global_grad_norm(model.parameters())
            if guard.allows(iter_num + 1, loss_value, grad_norm):  # else: skipped (--skip-nonfinite)
                optimizer.step()
            iter_num += 1
            progress.update(iter_num, loss_value, tokens_per_step / (time.perf_counter() - started))
            if iter_num % config.log_interval == 0 or iter_num == config.max_iters:
                record = {"kind": "step", "iter": iter_num, "loss": _finite_or_none(loss_value), "lr": lr,
                          "grad_norm": _finite_or_none(grad_norm), "skipped_steps": guard.skipped,
                          "time": time.time()}
                if world.size > 1:
                    record["communication_seconds"] = world.seconds_communicating - communicated
                log.write(record)
            if world.any(stop.requested) or (stop_after is not None and iter_num - start_iter >= stop_after):
                _save(folder, model, optimizer, iter_num, last_eval, guard)
                progress.close()
                print(f"stopped at iteration {iter_num}: checkpoint written; continue with "
                      f"`python -m minitransformer train --resume {run_dir}`", file=out)
                return run_dir
        if last_eval is None or last_eval["iter"] != iter_num:
            last_eval = _evaluate(model, prepared, config, iter_num, guard, log, progress)
        progress.close()
        _save(folder, model, optimizer, iter_num, last_eval, guard)
        if not world.is_main:
            return run_dir
        plot_losses(run_dir / "log.jsonl", run_dir / "loss.png")
        samples = _write_samples(model, tokenizer, config, run_dir)
        skipped = f"; {guard.skipped} non-finite steps skipped" if guard.skipped else ""
        print(f"run directory: {run_dir}", file=results)
        print(f"done: validation loss {last_eval['val']:.4f} vs unigram baseline {prepared.baseline:.4f} "
              f"(train {last_eval['train']:.4f}){skipped}", file=results)
        print(f"sample:\n{samples[0]}", file=results, flush=True)
        return run_dir


def _evaluate(model: Module, prepared: _Prepared, config: TrainConfig, iter_num: int, guard: DivergenceGuard, log,
              progress: Progress) -> dict:
    """Estimate both splits' losses, check them, log them; the log record."""
    losses = estimate_loss(model, prepared.splits, config, seed=config.seed + iter_num, world=init_world())
    guard.check_evaluation(iter_num, losses)
    record = {"kind": "eval", "iter": iter_num, **losses, "unigram": prepared.baseline, "time": time.time()}
    log.write(record)
    progress.note(f"step {iter_num}: train loss {losses['train']:.4f}, val loss {losses['val']:.4f}")
    return record


def _save(folder: RunDirectory, model: Module, optimizer, iter_num: int, last_eval: dict | None,
          guard: DivergenceGuard) -> None:
    folder.save_checkpoint(model, optimizer, {"iter_num": iter_num, "rng_state": backend.get_rng_state(),
                                              "last_eval": last_eval, "skipped_steps": guard.skipped})


def _open_run_directory(config: TrainConfig | None, resume, overrides: dict, world: World) -> tuple[
        RunDirectory | ReadOnlyRunDirectory, TrainConfig, _Prepared]:
    """(the locked run directory, the config, the prepared run). A resume locks the directory
    first; a new run is made only once its config, data, tokenizer and model are checked.
    In a data-parallel run only rank 0 does this; it then tells the others the directory's
    path, and they prepare the same run from it (resume) or from the config (a new run)."""
    if not world.is_main:
        return _follow_run_directory(config, resume, overrides, world)
    if resume is not None:
        folder = RunDirectory.reopen("train --resume", resume)
        with folder.closed_on_error():
            config = _resumed_config(folder.path, overrides)
            prepared = _prepare(config, folder.path, world)
            world.broadcast_text(str(folder.path))
            return folder, config, prepared
    config = config or TrainConfig()
    RunDirectory.check_new("train", config.out_dir, config.name)  # fail before reading any data
    prepared = _prepare(config, None, world)
    folder = RunDirectory.create("train", config.out_dir, config.name)
    with folder.closed_on_error():
        prepared.tokenizer.save(folder.path / "tokenizer.json")
        folder.write_info({"kind": "lm", "config": _stored_config(config, folder.path),
                           "model": prepared.model.config.to_dict(), "data_sha256": prepared.data_sha256,
                           "tokens": prepared.tokens})
        world.broadcast_text(str(folder.path))
    return folder, config, prepared


def _follow_run_directory(config: TrainConfig | None, resume, overrides: dict, world: World) -> tuple[
        ReadOnlyRunDirectory, TrainConfig, _Prepared]:
    """A rank other than 0: the run directory rank 0 opened, read but never written."""
    if resume is not None:
        path = Path(world.broadcast_text(None))  # once rank 0 holds the lock
        config = _resumed_config(path, overrides)
        return ReadOnlyRunDirectory(path), config, _prepare(config, path, world)
    config = config or TrainConfig()
    prepared = _prepare(config, None, world)
    return ReadOnlyRunDirectory(world.broadcast_text(None)), config, prepared


@dataclass
class _Prepared:
    """What a run needs, made and checked before its directory is touched."""

    tokenizer: object
    model: Module
    optimizer: object
    splits: dict
    baseline: float
    characters: int
    tokens: int
    data_sha256: str


def _prepare(config: TrainConfig, run_dir: Path | None, world: World) -> _Prepared:
    world.plan(config.gradient_accumulation_steps).check_batch_size("train", config.batch_size)
    if config.device == "cuda":
        backend.require_cupy("train --device cuda")
    text = load_corpus(config)
    data_sha256 = hashlib.sha256(text.encode()).hexdigest()
    if run_dir is None:
        tokenizer = build_tokenizer(config, text)
    else:
        info = read_run_info(run_dir, kind="lm")
        if data_sha256 != info.get("data_sha256"):
            raise ValueError(f"train --resume: the training text differs from the one {run_dir} started with")
        tokenizer = data.load_tokenizer(run_dir / "tokenizer.json")
    ids = np.asarray(tokenizer.encode(text), dtype=np.int64)
    train_ids, val_ids = data.train_val_split(ids, 0.1)
    if len(val_ids) < config.block_size + 1:
        raise ValueError(
            f"train: the validation split has {len(val_ids)} tokens, fewer than block_size + 1 = "
            f"{config.block_size + 1}; use more text or a smaller --block-size"
        )
    backend.manual_seed(config.seed)
    model = architectures.get(config.arch).model(config.model_config(tokenizer.vocab_size)).to(config.device)
    optimizer = model.configure_optimizers(config.weight_decay, config.learning_rate, (config.beta1, config.beta2))
    return _Prepared(tokenizer, model, optimizer, {"train": train_ids, "val": val_ids},
                     unigram_loss(train_ids, val_ids, tokenizer.vocab_size), len(text), len(ids), data_sha256)


def _finite_or_none(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _write_samples(model: Module, tokenizer, config: TrainConfig, run_dir: Path, count: int = 3) -> list[str]:
    start = _start_token(tokenizer)
    samples = []
    for _ in range(count):
        ids = np.array([[start]], dtype=np.int64)
        out = model.generate(_to_device(ids, config), config.sample_tokens, temperature=0.8, top_k=40)
        samples.append(tokenizer.decode(backend.to_numpy(out.data)[0].tolist()).strip())
    atomic_write_text(run_dir / "samples.txt", "\n\n---\n\n".join(samples) + "\n")
    return samples


def _start_token(tokenizer) -> int:
    """The token samples start from: a newline, or the first token of the vocabulary when the
    training text had no newline."""
    try:
        return (tokenizer.encode("\n") or [0])[0]
    except ValueError:
        return 0


def run_relative(path: str | None, run_dir: Path) -> str | None:
    """``path`` (relative to the working directory, or absolute) as config.json stores it:
    relative to the run folder, so the run and its data can move together and be resumed from
    anywhere. Absolute where no relative path exists (another drive on Windows)."""
    if path is None:
        return None
    absolute = Path(path).resolve()
    try:
        return Path(os.path.relpath(absolute, run_dir.resolve())).as_posix()
    except ValueError:
        return str(absolute)


def from_run_folder(stored: str | None, run_dir: Path) -> str | None:
    """The path a config.json stores (``run_relative``), usable from the working directory."""
    return None if stored is None else os.path.normpath(run_dir / stored)


def decay_end(config: TrainConfig) -> int:
    """The step where the cosine decay reaches min_lr: lr_decay_iters, or max_iters without it."""
    return config.lr_decay_iters or config.max_iters


def schedule_change(saved: dict, config: TrainConfig, resumed_at: int) -> str | None:
    """What a resume's --max-iters or --lr-decay-iters does to the learning rate, in one
    sentence (None when the schedule is the one the run started with). ``saved``: the run's
    config as config.json holds it."""
    old_end, new_end = saved["lr_decay_iters"] or saved["max_iters"], decay_end(config)
    if new_end != old_end:
        def lr(end: int) -> float:
            return cosine_lr(resumed_at, config.learning_rate, config.warmup_iters, end, config.min_lr)

        return (f"the cosine decay now ends at step {new_end} instead of {old_end}: the learning rate at "
                f"step {resumed_at}, where this run continues, is {lr(new_end):.3g} instead of {lr(old_end):.3g}")
    if config.max_iters > old_end:
        return (f"steps {old_end} to {config.max_iters} train at min_lr {config.min_lr:g}: the run keeps its "
                f"cosine decay, which ends at step {old_end} (--lr-decay-iters stretches it)")
    return None


def _stored_config(config: TrainConfig, run_dir: Path) -> dict:
    """The config as config.json holds it: its data path relative to the run folder."""
    return {**dataclasses.asdict(config), "data": run_relative(config.data, run_dir)}


def _resumed_config(run_dir: Path, overrides: dict) -> TrainConfig:
    """The config a run continues with: the saved one (checked field by field), its decay end
    fixed (see the module's docstring), its data path found from the run folder, the overrides."""
    info = read_run_info(run_dir, kind="lm")
    refused = sorted(set(overrides) - set(RESUMABLE_OVERRIDES))
    if refused:
        raise ValueError(f"train --resume: cannot change {refused} of an existing run; "
                         f"only {list(RESUMABLE_OVERRIDES)} may change")
    if not (run_dir / "checkpoint" / checkpoint.ARRAYS_FILE).is_file():
        raise ValueError(f"train --resume: {run_dir} has no checkpoint yet")
    saved = dataclasses.asdict(from_dict(TrainConfig, info.get("config"),
                                         where=f"train --resume: {run_dir / 'config.json'}", complete=True))
    saved["lr_decay_iters"] = saved["lr_decay_iters"] or saved["max_iters"]
    saved["data"] = from_run_folder(saved["data"], run_dir)
    if "data" not in overrides and saved["data"] is not None and not Path(saved["data"]).exists():
        raise ValueError(f"train --resume: the run's training text {saved['data']} is not there any more; "
                         f"give its new place with --data PATH")
    return TrainConfig(**{**saved, **overrides})


def load_run(run_dir: str | Path, device: str = "cpu"):
    """(model, tokenizer, run info) of a trained run, the model in eval mode."""
    run_dir = Path(run_dir)
    info = read_run_info(run_dir, kind="lm")
    check_run_files(run_dir, checkpoint.read_config(run_dir / "checkpoint", verify=False)["extra"])
    tokenizer = data.load_tokenizer(run_dir / "tokenizer.json")
    saved_config = info.get("config")
    arch = saved_config.get("arch", "gpt") if isinstance(saved_config, dict) else "gpt"  # older runs: GPT
    architecture = architectures.get(arch)
    model_config = from_dict(architecture.config, info.get("model"), f"{run_dir / 'config.json'}: model",
                             complete=True)
    if model_config.vocab_size != tokenizer.vocab_size:
        raise ValueError(f"{run_dir}: the model's vocabulary has {model_config.vocab_size} tokens but "
                         f"tokenizer.json has {tokenizer.vocab_size}")
    model = architecture.model(model_config)
    checkpoint.load(run_dir / "checkpoint", model)
    return model.to(device).eval(), tokenizer, info
