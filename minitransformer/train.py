"""Train a GPT (or Llama-style, ``arch``) language model on text, nanoGPT style, into a run directory.

    runs/NAME/config.json      the TrainConfig (and what the data and vocabulary were)
    runs/NAME/tokenizer.json   the tokenizer, to encode prompts later
    runs/NAME/checkpoint/      model + optimizer + RNG state (checkpoint.save), for resume
    runs/NAME/log.jsonl        one JSON object per logged step and per evaluation
    runs/NAME/loss.png         train and validation loss curves
    runs/NAME/samples.txt      text generated at the end

Ctrl-C finishes the current step, writes a checkpoint and stops; ``resume`` continues from it
with the same model, optimizer, RNG and data order, so an interrupted run ends with exactly
the parameters of an uninterrupted one.

A run folder can be moved and resumed from any working directory: config.json stores the
``--data`` path relative to the run folder itself (``run_relative``), and a resume may name the
text's new place with ``--data`` (the text's SHA-256 proves it is the same). The learning-rate
schedule belongs to the run: resuming with a larger ``--max-iters`` keeps the cosine decay that
the run started with (it ends where the original ``max_iters`` or ``lr_decay_iters`` put it)
and trains the extra steps at ``min_lr``. Re-stretching the decay would raise the learning
rate again, part-way through a run whose weights have settled; ``--lr-decay-iters`` on resume
asks for that explicitly, and the run says what the change does to the learning rate.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import architectures, backend, checkpoint, data
from .autograd import no_grad
from .atomic import atomic_write_text
from .nn import GPT
from .optim import clip_grad_norm, cosine_lr, set_lr
from .progress import Progress

RUN_FORMAT = 1


def option(text: str, default=None, **kwargs):
    """A config field with its --help text (and argparse extras such as choices=): the CLI
    builds its flags from these."""
    return field(default=default, metadata={"help": text, **kwargs})


def check_positive_integers(command: str, config, names) -> None:
    """Each named config field must be an int > 0; the error names the command and the flag."""
    for name in names:
        value = getattr(config, name)
        if not isinstance(value, int) or value <= 0:
            raise ValueError(f"{command}: --{name.replace('_', '-')} must be a positive integer, got {value!r}")


@dataclass
class TrainConfig:
    """Everything a training run depends on. The CLI's flags are generated from these fields
    (``--batch-size`` for ``batch_size``...), named like nanoGPT's config variables."""

    data: str | None = option("UTF-8 text file or folder of .txt files (default: the standard library's docstrings)")
    tokenizer: str = option("'char' (one token per character) or 'bpe' (byte-level BPE)", "char", choices=("char", "bpe"))
    vocab_size: int = option("vocabulary size for --tokenizer bpe", 512)
    out_dir: str = option("folder that holds run directories", "runs")
    name: str | None = option("run directory name (default: a timestamp)")
    arch: str = option("model architecture", "gpt", choices=tuple(architectures.ARCHITECTURES))
    batch_size: int = option("sequences per step (B)", 12)
    block_size: int = option("context length in tokens (T)", 64)
    n_layer: int = option("transformer blocks", 4)
    n_head: int = option("attention heads per block", 4)
    n_kv_head: int | None = option("key/value heads per block, dividing n_head (--arch llama; default: n_head)")
    n_embd: int = option("embedding width (C)", 128)
    dropout: float = option("dropout probability", 0.0)
    bias: bool = option("biases in Linear and LayerNorm layers (--arch gpt; Llama has none)", True)
    learning_rate: float = option("peak learning rate", 1e-3)
    min_lr: float = option("learning rate at the end of the cosine decay", 1e-4)
    warmup_iters: int = option("linear warmup steps", 100)
    lr_decay_iters: int | None = option("step where the cosine decay reaches min_lr (default: max_iters)")
    max_iters: int = option("training steps", 2000)
    eval_interval: int = option("steps between loss estimates and checkpoints", 250)
    eval_iters: int = option("batches per loss estimate", 20)
    log_interval: int = option("steps between log lines", 10)
    weight_decay: float = option("AdamW weight decay on matrices", 0.1)
    beta1: float = option("AdamW beta1", 0.9)
    beta2: float = option("AdamW beta2", 0.99)
    grad_clip: float = option("clip the gradients' global norm to this (0: off)", 1.0)
    seed: int = option("random seed (initialisation, batches, dropout, sampling)", 1337)
    device: str = option("'cpu' (NumPy) or 'cuda' (CuPy)", "cpu", choices=("cpu", "cuda"))
    sample_tokens: int = option("tokens to generate into samples.txt at the end", 300)

    def __post_init__(self):
        positive = ("vocab_size", "batch_size", "block_size", "n_layer", "n_head", "n_embd",
                    "max_iters", "eval_interval", "eval_iters", "log_interval")
        check_positive_integers("train", self, positive)
        if self.tokenizer not in ("char", "bpe"):
            raise ValueError(f"train: --tokenizer must be 'char' or 'bpe', got {self.tokenizer!r}")
        if self.device not in backend.DEVICES:
            raise ValueError(f"train: --device must be one of {backend.DEVICES}, got {self.device!r}")
        architecture = architectures.get(self.arch)
        if self.n_kv_head is not None and "n_kv_head" not in architecture.hyperparameters:
            raise ValueError(f"train: --n-kv-head applies to --arch llama, not --arch {self.arch}")
        if self.tokenizer == "bpe" and self.vocab_size < 257:
            raise ValueError(f"train: --vocab-size must be > 256 for byte-level BPE, got {self.vocab_size}")

    def model_config(self, vocab_size: int):
        """The config of the ``arch`` model (GPTConfig, LlamaConfig) for this vocabulary."""
        values = {**dataclasses.asdict(self), "vocab_size": vocab_size}
        return architectures.get(self.arch).model_config(values)

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"train: unknown config keys {unknown}; expected some of {sorted(known)}")
        return cls(**values)


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


def estimate_loss(model: GPT, splits: dict, config: TrainConfig, seed: int) -> dict:
    """Mean loss over eval_iters batches of each split, in eval mode, without a graph.

    The batches come from their own generator (seeded by ``seed``), so evaluating never moves
    the training RNG: a run gives the same parameters whether or when it was evaluated.
    """
    rng = np.random.default_rng(seed)
    model.eval()
    losses = {}
    with no_grad():
        for split, ids in splits.items():
            total = 0.0
            for _ in range(config.eval_iters):
                x, y = data.get_batch(ids, config.batch_size, config.block_size, rng)
                _, loss = model(_to_device(x, config), _to_device(y, config))
                total += loss.item()
            losses[split] = total / config.eval_iters
    model.train()
    return losses


def _to_device(array: np.ndarray, config: TrainConfig):
    return backend.to_device(array, config.device)


def plot_losses(log_path: Path, image_path: Path) -> None:
    from matplotlib.figure import Figure  # no pyplot: no global backend switch, no window

    records = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    steps = [r for r in records if r["kind"] == "step"]
    evals = [r for r in records if r["kind"] == "eval"]
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
    temporary = image_path.with_suffix(".tmp.png")
    fig.savefig(temporary, dpi=110)
    temporary.replace(image_path)


class _StopFlag:
    """Set by Ctrl-C (SIGINT): the loop finishes its step, checkpoints and returns. A second
    Ctrl-C stops at once."""

    def __init__(self):
        self.requested = False

    def __enter__(self):
        self.previous = signal.getsignal(signal.SIGINT)
        signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc):
        signal.signal(signal.SIGINT, self.previous)


# --- the run -----------------------------------------------------------------------------------

def train(config: TrainConfig | None = None, resume: str | Path | None = None, overrides: dict | None = None,
          stop_after: int | None = None, out=None, results=None) -> Path:
    """Train (or resume) a run and return its directory.

    resume: a run directory to continue; ``overrides`` may change RESUMABLE_OVERRIDES.
    stop_after: stop as Ctrl-C would after this many steps of this call (for tests and demos).
    out: where progress and notes go (default: stderr); results: where the final losses and
        samples go (default: stdout).
    """
    out = out or sys.stderr
    results = results or sys.stdout
    if resume is not None:
        run_dir, config = _open_run(Path(resume), overrides or {})
    else:
        config = config or TrainConfig()
        run_dir = None
    if config.device == "cuda":
        backend.require_cupy("train --device cuda")

    text = load_corpus(config)
    if run_dir is None:
        tokenizer = build_tokenizer(config, text)
    else:
        tokenizer = data.load_tokenizer(run_dir / "tokenizer.json")
        _check_same_data(run_dir, text)
    ids = np.asarray(tokenizer.encode(text), dtype=np.int64)
    train_ids, val_ids = data.train_val_split(ids, 0.1)
    if len(val_ids) < config.block_size + 1:
        raise ValueError(
            f"train: the validation split has {len(val_ids)} tokens, fewer than block_size + 1 = "
            f"{config.block_size + 1}; use more text or a smaller --block-size"
        )
    baseline = unigram_loss(train_ids, val_ids, tokenizer.vocab_size)
    model_config = config.model_config(tokenizer.vocab_size)

    if run_dir is None:  # everything checked: only now create the run directory
        run_dir = _new_run_dir(config)
        tokenizer.save(run_dir / "tokenizer.json")
        stored = {**dataclasses.asdict(config), "data": run_relative(config.data, run_dir)}
        run_info = {"format": RUN_FORMAT, "config": stored, "model": model_config.to_dict(),
                    "data_sha256": hashlib.sha256(text.encode()).hexdigest(), "tokens": int(len(ids))}
        atomic_write_text(run_dir / "config.json", json.dumps(run_info, indent=2))

    backend.manual_seed(config.seed)
    model = architectures.get(config.arch).model(model_config).to(config.device)
    optimizer = model.configure_optimizers(config.weight_decay, config.learning_rate, (config.beta1, config.beta2))
    start_iter = 0
    if (run_dir / "checkpoint" / checkpoint.CONFIG_FILE).exists():
        extra = checkpoint.load(run_dir / "checkpoint", model, optimizer)
        start_iter = extra["iter_num"]
        backend.set_rng_state(extra["rng_state"])
        note = schedule_change(read_run_config(run_dir)["config"], config, start_iter)
        if note:
            print(f"note: {note}", file=out)

    print(f"run directory: {run_dir}", file=out)
    print(f"data: {len(text):,} characters -> {len(ids):,} tokens ({tokenizer.vocab_size} in the vocabulary); "
          f"{len(train_ids):,} train / {len(val_ids):,} validation", file=out)
    print(f"model: {model.num_parameters():,} parameters; unigram baseline loss {baseline:.4f}", file=out)

    decay_iters = decay_end(config)
    splits = {"train": train_ids, "val": val_ids}
    tokens_per_step = config.batch_size * config.block_size
    progress = Progress(config.max_iters, out, start=start_iter)
    last_eval = None
    iter_num = start_iter
    with _StopFlag() as stop, open(run_dir / "log.jsonl", "a", encoding="utf-8") as log:
        while iter_num < config.max_iters:
            if iter_num % config.eval_interval == 0:
                last_eval = _evaluate(model, splits, config, iter_num, baseline, log, progress)
                if iter_num > start_iter:
                    _save(run_dir, model, optimizer, iter_num, last_eval)
            lr = cosine_lr(iter_num, config.learning_rate, config.warmup_iters, decay_iters, config.min_lr)
            set_lr(optimizer, lr)
            started = time.perf_counter()
            # BEGIN SOLUTION a6
            x, y = data.get_batch(train_ids, config.batch_size, config.block_size)
            _, loss = model(_to_device(x, config), _to_device(y, config))
            optimizer.zero_grad()
            loss.backward()
            grad_norm = clip_grad_norm(model.parameters(), config.grad_clip) if config.grad_clip > 0 else None
            optimizer.step()
            # END SOLUTION a6
            iter_num += 1
            loss_value = loss.item()
            progress.update(iter_num, loss_value, tokens_per_step / (time.perf_counter() - started))
            if iter_num % config.log_interval == 0 or iter_num == config.max_iters:
                record = {"kind": "step", "iter": iter_num, "loss": loss_value, "lr": lr,
                          "grad_norm": grad_norm, "time": time.time()}
                log.write(json.dumps(record) + "\n")
                log.flush()
            if stop.requested or (stop_after is not None and iter_num - start_iter >= stop_after):
                _save(run_dir, model, optimizer, iter_num, last_eval)
                progress.close()
                print(f"stopped at iteration {iter_num}: checkpoint written; continue with "
                      f"`python -m minitransformer train --resume {run_dir}`", file=out)
                return run_dir
        final = _evaluate(model, splits, config, iter_num, baseline, log, progress)
    progress.close()
    _save(run_dir, model, optimizer, iter_num, final)
    plot_losses(run_dir / "log.jsonl", run_dir / "loss.png")
    samples = _write_samples(model, tokenizer, config, run_dir)
    print(f"run directory: {run_dir}", file=results)
    print(f"done: validation loss {final['val']:.4f} vs unigram baseline {baseline:.4f} "
          f"(train {final['train']:.4f})", file=results)
    print(f"sample:\n{samples[0]}", file=results, flush=True)
    return run_dir


def _evaluate(model, splits, config, iter_num, baseline, log, progress) -> dict:
    losses = estimate_loss(model, splits, config, seed=config.seed + iter_num)
    record = {"kind": "eval", "iter": iter_num, **losses, "unigram": baseline, "time": time.time()}
    log.write(json.dumps(record) + "\n")
    log.flush()
    progress.note(f"step {iter_num}: train loss {losses['train']:.4f}, val loss {losses['val']:.4f}")
    return record


def _save(run_dir: Path, model, optimizer, iter_num: int, last_eval: dict | None) -> None:
    extra = {"iter_num": iter_num, "rng_state": backend.get_rng_state(), "last_eval": last_eval}
    checkpoint.save(run_dir / "checkpoint", model, optimizer, extra)


def _write_samples(model: GPT, tokenizer, config: TrainConfig, run_dir: Path, count: int = 3) -> list[str]:
    start = tokenizer.encode("\n")[:1] or [0]
    samples = []
    for _ in range(count):
        ids = np.array([start], dtype=np.int64)
        out = model.generate(_to_device(ids, config), config.sample_tokens, temperature=0.8, top_k=40)
        samples.append(tokenizer.decode(backend.to_numpy(out.data)[0].tolist()).strip())
    atomic_write_text(run_dir / "samples.txt", "\n\n---\n\n".join(samples) + "\n")
    return samples


def _new_run_dir(config: TrainConfig) -> Path:
    name = config.name or time.strftime("%Y%m%d-%H%M%S")
    run_dir = Path(config.out_dir) / name
    if run_dir.exists() and any(run_dir.iterdir()):
        raise ValueError(f"train: run directory {run_dir} already exists; choose another --name or --resume it")
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


RESUMABLE_OVERRIDES = ("max_iters", "lr_decay_iters", "eval_interval", "eval_iters", "log_interval",
                       "sample_tokens", "device", "data")


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


def read_run_config(run_dir: Path) -> dict:
    """A run directory's config.json, checked: it exists, parses and has this format."""
    path = run_dir / "config.json"
    if not path.is_file():
        raise ValueError(f"{run_dir} is not a run directory: it has no config.json")
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from None
    if info.get("format") != RUN_FORMAT:
        raise ValueError(
            f"{run_dir} was written by an incompatible version of minitransformer "
            f"(run format {info.get('format')!r}, this version reads {RUN_FORMAT})"
        )
    return info


def _open_run(run_dir: Path, overrides: dict) -> tuple[Path, TrainConfig]:
    """The run folder and the config it continues with: the saved one, its decay end fixed
    (see the module's docstring), its data path found from the run folder, the overrides."""
    info = read_run_config(run_dir)
    refused = sorted(set(overrides) - set(RESUMABLE_OVERRIDES))
    if refused:
        raise ValueError(f"train --resume: cannot change {refused} of an existing run; "
                         f"only {list(RESUMABLE_OVERRIDES)} may change")
    if not (run_dir / "checkpoint" / checkpoint.CONFIG_FILE).exists():
        raise ValueError(f"train --resume: {run_dir} has no checkpoint yet")
    saved = dict(info["config"])
    saved["lr_decay_iters"] = saved["lr_decay_iters"] or saved["max_iters"]
    saved["data"] = from_run_folder(saved["data"], run_dir)
    if "data" not in overrides and saved["data"] is not None and not Path(saved["data"]).exists():
        raise ValueError(f"train --resume: the run's training text {saved['data']} is not there any more; "
                         f"give its new place with --data PATH")
    return run_dir, TrainConfig.from_dict({**saved, **overrides})


def _check_same_data(run_dir: Path, text: str) -> None:
    saved = read_run_config(run_dir)["data_sha256"]
    if hashlib.sha256(text.encode()).hexdigest() != saved:
        raise ValueError(f"train --resume: the training text differs from the one {run_dir} started with")


def load_run(run_dir: str | Path, device: str = "cpu"):
    """(model, tokenizer, run info) of a trained run, the model in eval mode."""
    run_dir = Path(run_dir)
    info = read_run_config(run_dir)
    tokenizer = data.load_tokenizer(run_dir / "tokenizer.json")
    architecture = architectures.get(info["config"].get("arch", "gpt"))
    model = architecture.model(architecture.config(**info["model"]))
    checkpoint.load(run_dir / "checkpoint", model)
    return model.to(device).eval(), tokenizer, info


