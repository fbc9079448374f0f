"""Pretrain a BERT-style encoder by masked language modelling and next-sentence prediction.

Document 001 (section 3) describes BERT's recipe: pretrain by self-supervision, masked language
modelling (MLM) and next-sentence prediction (NSP), then fine-tune on a labelled task. This is
the first half; ``finetune --from-run RUN_DIR`` is the second. The data rules are in
data/pretraining.py, the heads in nn/bert_pretraining.py. The run is a run directory as
``train`` makes one (runs.py: the lock, the log, the divergence guard, Ctrl-C and resume):

    runs/NAME/config.json      the PretrainConfig, kind "mlm", the BertConfig, the text's SHA-256
    runs/NAME/vocab.txt        the WordPiece vocabulary (characters, see below)
    runs/NAME/checkpoint/      model + optimizer + RNG state, for resume
    runs/NAME/log.jsonl        steps (loss, MLM and NSP losses) and evaluations
    runs/NAME/loss.png         validation MLM loss and NSP accuracy against their baselines
    runs/NAME/fill_mask.txt    held-out paragraphs with tokens masked and the model's guesses

The tokenizer is WordPiece over a vocabulary of characters ("token" -> t ##o ##k ##e ##n, see
``WordPieceTokenizer.train_characters``): it needs no vocabulary-learning algorithm, it is
BERT's own tokenizer class (so the fine-tuned run and ``predict`` read it as any BERT's
vocab.txt), and a token is a character as for the character-level GPT of ``train``, so the two
pretrainings compare on the same budget of steps x batch x tokens.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import backend, checkpoint
from .atomic import atomic_open, atomic_write_text
from .autograd import no_grad
from .data.pretraining import SentencePairs, mask_tokens
from .data.wordpiece import WordPieceTokenizer
from .nn import BertConfig, BertForPreTraining
from .optim import clip_grad_norm, cosine_lr, set_lr
from .progress import Progress
from .runs import (DivergenceGuard, RunDirectory, StopFlag, check_config, check_run_files, from_dict, global_grad_norm,
                   option, read_log, read_run_info)
from .train import from_run_folder, load_corpus, run_relative, unigram_loss

VOCAB_FILE = "vocab.txt"
RESUMABLE_OVERRIDES = ("eval_interval", "eval_iters", "log_interval", "skip_nonfinite", "device", "data")


@dataclass
class PretrainConfig:
    """A pretraining run. The model flags are ``train``'s (``--n-layer``, ``--n-embd``...), so a
    GPT and a BERT of the same size and budget are the same command line but for its name."""

    data: str | None = option("UTF-8 text file or folder of .txt files, paragraphs separated by blank lines "
                              "(default: the standard library's docstrings)")
    out_dir: str = option("folder that holds run directories", "runs")
    name: str | None = option("run directory name (default: a timestamp)")
    batch_size: int = option("sentence pairs per step (B)", 12, bounds="[1, inf)")
    block_size: int = option("tokens per pair, [CLS] A [SEP] B [SEP] (T)", 64, bounds="[5, inf)")
    n_layer: int = option("encoder layers", 4, bounds="[1, inf)")
    n_head: int = option("attention heads per layer", 4, bounds="[1, inf)")
    n_embd: int = option("hidden size (C); the feed-forward layer is 4C wide", 128, bounds="[1, inf)")
    dropout: float = option("dropout probability (BERT's is 0.1)", 0.1, bounds="[0, 1)")
    mlm_probability: float = option("share of the tokens the masked-LM loss reads", 0.15, bounds="(0, 1)")
    learning_rate: float = option("peak learning rate", 1e-3, bounds="(0, inf)")
    min_lr: float = option("learning rate at the end of the cosine decay", 1e-4, bounds="[0, inf)")
    warmup_iters: int = option("linear warmup steps", 100, bounds="[0, inf)")
    max_iters: int = option("training steps", 2000, bounds="[1, inf)")
    eval_interval: int = option("steps between loss estimates and checkpoints", 250, bounds="[1, inf)")
    eval_iters: int = option("batches per loss estimate", 20, bounds="[1, inf)")
    log_interval: int = option("steps between log lines", 10, bounds="[1, inf)")
    weight_decay: float = option("AdamW weight decay on matrices", 0.01, bounds="[0, inf)")
    beta1: float = option("AdamW beta1", 0.9, bounds="[0, 1)")
    beta2: float = option("AdamW beta2", 0.999, bounds="[0, 1)")
    grad_clip: float = option("clip the gradients' global norm to this (0: off)", 1.0, bounds="[0, inf)")
    skip_nonfinite: bool = option("skip (and count) a step whose loss or gradient is NaN or infinite, "
                                  "instead of stopping the run", False)
    seed: int = option("random seed (initialisation, pairs, masks, dropout)", 1337, bounds="[0, inf)")
    device: str = option("'cpu' (NumPy) or 'cuda' (CuPy)", "cpu", choices=backend.DEVICES)

    def __post_init__(self):
        check_config("pretrain-bert", self)
        if self.min_lr > self.learning_rate:
            raise ValueError(f"pretrain-bert: --min-lr ({self.min_lr}) must not exceed --learning-rate "
                             f"({self.learning_rate})")
        if self.n_embd % self.n_head:
            raise ValueError(f"pretrain-bert: --n-embd ({self.n_embd}) must be divisible by --n-head ({self.n_head})")

    def model_config(self, vocab_size: int) -> BertConfig:
        return BertConfig(vocab_size=vocab_size, hidden_size=self.n_embd, num_hidden_layers=self.n_layer,
                          num_attention_heads=self.n_head, intermediate_size=4 * self.n_embd,
                          max_position_embeddings=self.block_size, hidden_dropout_prob=self.dropout,
                          attention_probs_dropout_prob=self.dropout)


@dataclass
class _Prepared:
    """What a run needs, made and checked before its directory is touched."""

    tokenizer: WordPieceTokenizer
    model: BertForPreTraining
    optimizer: object
    train_pairs: SentencePairs
    val_pairs: SentencePairs
    unigram: float
    data_sha256: str


def _prepare(config: PretrainConfig, run_dir: Path | None) -> _Prepared:
    if config.device == "cuda":
        backend.require_cupy("pretrain-bert --device cuda")
    text = load_corpus(config)
    data_sha256 = hashlib.sha256(text.encode()).hexdigest()
    if run_dir is None:
        tokenizer = WordPieceTokenizer.train_characters(text, max_length=config.block_size)
    else:
        if data_sha256 != read_run_info(run_dir, kind="mlm").get("data_sha256"):
            raise ValueError(f"pretrain-bert --resume: the training text differs from the one {run_dir} started with")
        tokenizer = WordPieceTokenizer.from_file(run_dir / VOCAB_FILE, max_length=config.block_size)
    train_pairs, val_pairs = SentencePairs.from_text(text, tokenizer).split(0.1)
    unigram = unigram_loss(np.concatenate(train_pairs.segments), np.concatenate(val_pairs.segments),
                           tokenizer.vocab_size)
    backend.manual_seed(config.seed)
    model = BertForPreTraining(config.model_config(tokenizer.vocab_size)).to(config.device)
    optimizer = model.configure_optimizers(config.weight_decay, config.learning_rate, (config.beta1, config.beta2))
    return _Prepared(tokenizer, model, optimizer, train_pairs, val_pairs, unigram, data_sha256)


def pretraining_batch(pairs: SentencePairs, tokenizer: WordPieceTokenizer, config: PretrainConfig,
                      rng: np.random.Generator) -> dict:
    """One batch of NSP pairs with BERT's masking, as the model's keyword arguments."""
    ids, types, mask, nsp_labels = pairs.batch(config.batch_size, config.block_size, rng)
    masked_ids, mlm_labels = mask_tokens(ids, rng, tokenizer.mask_id, tokenizer.special_ids, tokenizer.vocab_size,
                                         config.mlm_probability)
    arrays = {"input_ids": masked_ids, "token_type_ids": types, "attention_mask": mask, "labels": mlm_labels,
              "next_sentence_label": nsp_labels}
    return {name: backend.to_device(array, config.device) for name, array in arrays.items()}


def estimate(model: BertForPreTraining, prepared: _Prepared, config: PretrainConfig) -> dict:
    """Validation MLM loss and accuracy (on the masked positions), NSP loss and accuracy, over
    eval_iters batches drawn from a generator of their own: the same examples at every
    evaluation, and the training RNG untouched."""
    rng = np.random.default_rng(config.seed)
    totals = dict.fromkeys(("mlm", "nsp", "mlm_accuracy", "nsp_accuracy"), 0.0)
    model.eval()
    with no_grad():
        for _ in range(config.eval_iters):
            batch = pretraining_batch(prepared.val_pairs, prepared.tokenizer, config, rng)
            labels = backend.to_numpy(batch.pop("labels"))  # (B, T)
            nsp_labels = backend.to_numpy(batch.pop("next_sentence_label"))  # (B,)
            logits, nsp_logits, _ = model(**batch)
            log_probs = _log_softmax(backend.to_numpy(logits.data))  # (B, T, V)
            chosen = labels != -100  # (B, T)
            picked = np.take_along_axis(log_probs, np.where(chosen, labels, 0)[..., None], axis=-1)[..., 0]
            totals["mlm"] += float(-picked[chosen].mean())
            totals["mlm_accuracy"] += float((log_probs.argmax(-1) == labels)[chosen].mean())
            nsp_log_probs = _log_softmax(backend.to_numpy(nsp_logits.data))  # (B, 2)
            totals["nsp"] += float(-nsp_log_probs[np.arange(len(nsp_labels)), nsp_labels].mean())
            totals["nsp_accuracy"] += float((nsp_log_probs.argmax(-1) == nsp_labels).mean())
    model.train()
    return {name: total / config.eval_iters for name, total in totals.items()}


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits.astype(np.float64) - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def pretrain(config: PretrainConfig | None = None, resume: str | Path | None = None, overrides: dict | None = None,
             stop_after: int | None = None, out=None, results=None) -> Path:
    """Pretrain (or resume) a BERT run and return its directory; the arguments are ``train``'s.
    Ctrl-C (or ``stop_after`` steps of this call) checkpoints and returns; a resumed run ends
    with the parameters of an uninterrupted one."""
    out, results = out or sys.stderr, results or sys.stdout
    folder, config, prepared = _open_run_directory(config, resume, overrides or {})
    with folder, StopFlag() as stop:
        run_dir, model, optimizer = folder.path, prepared.model, prepared.optimizer
        start_iter, last_eval = 0, None
        if folder.has_checkpoint():
            extra = checkpoint.read_config(run_dir / "checkpoint", verify=False)["extra"]
            check_run_files(run_dir, extra)
            extra = checkpoint.load(run_dir / "checkpoint", model, optimizer)
            start_iter, last_eval = extra["iter_num"], extra.get("last_eval")
            backend.set_rng_state(extra["rng_state"])
            folder.write_info({**read_run_info(run_dir), "config": _stored_config(config, run_dir)})
        log = folder.open_log(keep_through=start_iter)
        print(f"run directory: {run_dir}", file=out)
        print(f"data: {len(prepared.train_pairs.segments):,} train / {len(prepared.val_pairs.segments):,} validation "
              f"paragraphs; {prepared.tokenizer.vocab_size} tokens in the vocabulary", file=out)
        print(f"model: {model.num_parameters():,} parameters; unigram baseline for the masked tokens "
              f"{prepared.unigram:.4f}, chance for NSP {math.log(2):.4f}", file=out)
        guard = DivergenceGuard("pretrain-bert", prepared.tokenizer.vocab_size, skip=config.skip_nonfinite,
                                hint=f"lower --learning-rate (now {config.learning_rate:g})")
        progress = Progress(config.max_iters, out, start=start_iter)
        rng, iter_num = backend.generator("cpu"), start_iter
        while iter_num < config.max_iters:
            if iter_num % config.eval_interval == 0:
                if last_eval is None or last_eval["iter"] != iter_num:
                    last_eval = _evaluate(model, prepared, config, iter_num, guard, log, progress)
                if iter_num > start_iter:
                    _save(folder, model, optimizer, iter_num, last_eval, guard)
            lr = cosine_lr(iter_num, config.learning_rate, config.warmup_iters, config.max_iters, config.min_lr)
            set_lr(optimizer, lr)
            started = time.perf_counter()
            _, _, loss = model(**pretraining_batch(prepared.train_pairs, prepared.tokenizer, config, rng))
            optimizer.zero_grad()
            loss.backward()
            params = model.parameters()
            grad_norm = clip_grad_norm(params, config.grad_clip) if config.grad_clip > 0 else global_grad_norm(params)
            loss_value = loss.item()
            if guard.allows(iter_num + 1, loss_value, grad_norm):
                optimizer.step()
            iter_num += 1
            tokens_per_second = config.batch_size * config.block_size / (time.perf_counter() - started)
            progress.update(iter_num, loss_value, tokens_per_second)
            if iter_num % config.log_interval == 0 or iter_num == config.max_iters:
                finite = math.isfinite(loss_value) and math.isfinite(grad_norm)
                log.write({"kind": "step", "iter": iter_num, "loss": loss_value if finite else None, "lr": lr,
                           "grad_norm": grad_norm if finite else None, "skipped_steps": guard.skipped,
                           "time": time.time()})
            if stop.requested or (stop_after is not None and iter_num - start_iter >= stop_after):
                _save(folder, model, optimizer, iter_num, last_eval, guard)
                progress.close()
                print(f"stopped at iteration {iter_num}: checkpoint written; continue with "
                      f"`python -m minitransformer pretrain-bert --resume {run_dir}`", file=out)
                return run_dir
        if last_eval is None or last_eval["iter"] != iter_num:
            last_eval = _evaluate(model, prepared, config, iter_num, guard, log, progress)
        progress.close()
        _save(folder, model, optimizer, iter_num, last_eval, guard)
        plot_pretraining(run_dir / "log.jsonl", run_dir / "loss.png")
        demo = fill_mask_demo(model, prepared, config)
        atomic_write_text(run_dir / "fill_mask.txt", demo)
        print(f"run directory: {run_dir}", file=results)
        print(f"done: masked-LM loss {last_eval['mlm']:.4f} (accuracy {last_eval['mlm_accuracy']:.3f}) vs unigram "
              f"baseline {prepared.unigram:.4f}; next-sentence accuracy {last_eval['nsp_accuracy']:.3f} (chance 0.5)",
              file=results)
        print(f"fill the mask (held-out text):\n{demo}", file=results, flush=True)
        return run_dir


def _evaluate(model, prepared: _Prepared, config: PretrainConfig, iter_num: int, guard: DivergenceGuard, log,
              progress: Progress) -> dict:
    losses = estimate(model, prepared, config)
    guard.check_evaluation(iter_num, {"mlm": losses["mlm"], "nsp": losses["nsp"]})
    record = {"kind": "eval", "iter": iter_num, **losses, "unigram": prepared.unigram, "time": time.time()}
    log.write(record)
    progress.note(f"step {iter_num}: masked-LM loss {losses['mlm']:.4f} (accuracy {losses['mlm_accuracy']:.3f}), "
                  f"NSP accuracy {losses['nsp_accuracy']:.3f}")
    return record


def _save(folder: RunDirectory, model, optimizer, iter_num: int, last_eval: dict | None, guard) -> None:
    folder.save_checkpoint(model, optimizer, {"iter_num": iter_num, "rng_state": backend.get_rng_state(),
                                              "last_eval": last_eval, "skipped_steps": guard.skipped})


def fill_mask_demo(model: BertForPreTraining, prepared: _Prepared, config: PretrainConfig, count: int = 3) -> str:
    """Held-out pairs with BERT's masking, and the model's most likely token at each chosen
    position: what ``samples.txt`` is to a GPT run. Masked characters show as "_" in the
    input and in [brackets] where the guess is wrong."""
    rng = np.random.default_rng(config.seed + 1)
    small = dataclasses.replace(config, batch_size=count)
    batch = pretraining_batch(prepared.val_pairs, prepared.tokenizer, small, rng)
    labels = backend.to_numpy(batch.pop("labels"))
    del batch["next_sentence_label"]
    model.eval()
    with no_grad():
        guesses = backend.to_numpy(model(**batch)[0].data).argmax(-1)  # (B, T)
    model.train()
    original = backend.to_numpy(batch["input_ids"])
    lines = []
    for row in range(count):
        chosen = labels[row] != -100
        truth = np.where(chosen, labels[row], original[row])
        masked = [("_" if chosen[t] else None) for t in range(len(truth))]
        filled = [(None if not chosen[t] else (prepared.tokenizer.id_to_token[int(guesses[row, t])]
                   if guesses[row, t] == truth[t] else f"[{_piece(prepared.tokenizer, guesses[row, t])}]"))
                  for t in range(len(truth))]
        right = int((guesses[row] == truth)[chosen].sum())
        lines += [f"masked:   {_render(prepared.tokenizer, truth, masked)}",
                  f"filled:   {_render(prepared.tokenizer, truth, filled)}",
                  f"({right} of {int(chosen.sum())} masked tokens right)", ""]
    return "\n".join(lines)


def _piece(tokenizer: WordPieceTokenizer, token_id) -> str:
    return tokenizer.id_to_token[int(token_id)].removeprefix("##")


def _render(tokenizer: WordPieceTokenizer, ids, replacements) -> str:
    """Word pieces back to text ("##" glued to the piece before), a piece replaced where given."""
    text = []
    for token_id, replacement in zip(ids, replacements):
        token = tokenizer.id_to_token[int(token_id)]
        if token == "[PAD]":
            break
        if token in ("[CLS]", "[SEP]"):  # [CLS] A [SEP] B [SEP] shows as A | B
            text.append(" |" if token == "[SEP]" else "")
            continue
        shown = token.removeprefix("##") if replacement is None else replacement.removeprefix("##")
        text.append(shown if token.startswith("##") else " " + shown)
    return "".join(text).strip().removesuffix(" |")


def plot_pretraining(log_path: Path, image_path: Path) -> None:
    """Validation masked-LM loss against the unigram baseline, and NSP accuracy against chance."""
    from matplotlib.figure import Figure

    records, _ = read_log(log_path)
    evals = [r for r in records if r.get("kind") == "eval" and all(isinstance(r.get(k), (int, float)) for k in
                                                                   ("iter", "mlm", "nsp_accuracy", "unigram"))]
    fig = Figure(figsize=(9, 3.6))
    mlm_axis, nsp_axis = fig.subplots(1, 2)
    steps = [r["iter"] for r in evals]
    mlm_axis.plot(steps, [r["mlm"] for r in evals], "o-", label="validation")
    if evals:
        mlm_axis.axhline(evals[-1]["unigram"], color="gray", ls="--", label="unigram baseline")
    mlm_axis.set(xlabel="iteration", ylabel="nats per masked token", title="masked-LM loss")
    nsp_axis.plot(steps, [r["nsp_accuracy"] for r in evals], "s-", color="C1", label="validation")
    nsp_axis.axhline(0.5, color="gray", ls="--", label="chance")
    nsp_axis.set(xlabel="iteration", ylabel="accuracy", title="next-sentence prediction")
    for axis in (mlm_axis, nsp_axis):
        axis.legend()
        axis.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_open(image_path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=110)


# --- the run directory -------------------------------------------------------------------------

def _stored_config(config: PretrainConfig, run_dir: Path) -> dict:
    return {**dataclasses.asdict(config), "data": run_relative(config.data, run_dir)}


def _open_run_directory(config: PretrainConfig | None, resume, overrides: dict):
    if resume is not None:
        folder = RunDirectory.reopen("pretrain-bert --resume", resume)
        with folder.closed_on_error():
            config = _resumed_config(folder.path, overrides)
            return folder, config, _prepare(config, folder.path)
    config = config or PretrainConfig()
    RunDirectory.check_new("pretrain-bert", config.out_dir, config.name)
    prepared = _prepare(config, None)
    folder = RunDirectory.create("pretrain-bert", config.out_dir, config.name)
    with folder.closed_on_error():
        prepared.tokenizer.save(folder.path / VOCAB_FILE)
        folder.write_info({"kind": "mlm", "config": _stored_config(config, folder.path),
                           "model": prepared.model.config.to_dict(), "data_sha256": prepared.data_sha256})
    return folder, config, prepared


def _resumed_config(run_dir: Path, overrides: dict) -> PretrainConfig:
    info = read_run_info(run_dir, kind="mlm")
    refused = sorted(set(overrides) - set(RESUMABLE_OVERRIDES))
    if refused:
        raise ValueError(f"pretrain-bert --resume: cannot change {refused} of an existing run; "
                         f"only {list(RESUMABLE_OVERRIDES)} may change")
    if not (run_dir / "checkpoint" / checkpoint.ARRAYS_FILE).is_file():
        raise ValueError(f"pretrain-bert --resume: {run_dir} has no checkpoint yet")
    saved = dataclasses.asdict(from_dict(PretrainConfig, info.get("config"),
                                         where=f"pretrain-bert --resume: {run_dir / 'config.json'}", complete=True))
    saved["data"] = from_run_folder(saved["data"], run_dir)
    return PretrainConfig(**{**saved, **overrides})


def load_pretraining_run(run_dir: str | Path, device: str = "cpu"):
    """(BertForPreTraining, tokenizer, run info) of a ``pretrain-bert`` run, the model in eval mode."""
    run_dir = Path(run_dir)
    info = read_run_info(run_dir, kind="mlm")
    check_run_files(run_dir, checkpoint.read_config(run_dir / "checkpoint", verify=False)["extra"])
    model_config = from_dict(BertConfig, info.get("model"), f"{run_dir / 'config.json'}: model", complete=True)
    tokenizer = WordPieceTokenizer.from_file(run_dir / VOCAB_FILE, max_length=model_config.max_position_embeddings)
    if model_config.vocab_size != tokenizer.vocab_size:
        raise ValueError(f"{run_dir}: the model's vocabulary has {model_config.vocab_size} tokens but "
                         f"{VOCAB_FILE} has {tokenizer.vocab_size}")
    model = BertForPreTraining(model_config)
    checkpoint.load(run_dir / "checkpoint", model)
    return model.to(device).eval(), tokenizer, info
