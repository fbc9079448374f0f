"""``pretrain-bert`` end to end on a tiny config (minitransformer/pretrain.py): the run's files,
Ctrl-C and resume ending with an uninterrupted run's parameters, bad input in one line, and
``finetune --from-run`` on the pretrained encoder."""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
from pathlib import Path

import numpy as np
import pytest

from minitransformer import checkpoint
from minitransformer.cli import main
from minitransformer.finetune import FinetuneConfig, _pretrained_classifier, starting_point
from minitransformer.pretrain import PretrainConfig, load_pretraining_run, pretrain

TINY = dict(batch_size=4, block_size=24, n_layer=1, n_head=2, n_embd=16, max_iters=6, eval_interval=3,
            eval_iters=1, log_interval=1, warmup_iters=1)
QUIET = dict(out=open(os.devnull, "w"), results=open(os.devnull, "w"))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    words = ("return the number of items in a container raise value error when found open file and stream "
             "argument may be sequence or collection").split()
    rng = random.Random(0)
    paragraphs = [" ".join(rng.choice(words) for _ in range(rng.randint(4, 12))).capitalize() + "."
                  for _ in range(48)]
    path = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    path.write_text("\n\n".join(paragraphs) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def bert_run(corpus, tmp_path_factory) -> Path:
    out_dir = tmp_path_factory.mktemp("runs")
    return pretrain(PretrainConfig(data=str(corpus), out_dir=str(out_dir), name="bert", **TINY), **QUIET)


def cli(*args) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            code = main([str(a) for a in args])
        except SystemExit as exit:
            code = exit.code
    return code, stdout.getvalue(), stderr.getvalue()


def test_pretraining_writes_every_file_of_a_run(bert_run):
    assert {p.name for p in bert_run.iterdir()} >= {"config.json", "vocab.txt", "checkpoint", "log.jsonl",
                                                    "loss.png", "fill_mask.txt"}
    info = json.loads((bert_run / "config.json").read_text())
    assert info["kind"] == "mlm" and info["model"]["num_hidden_layers"] == 1
    records = [json.loads(line) for line in (bert_run / "log.jsonl").read_text().splitlines()]
    assert [r["iter"] for r in records if r["kind"] == "step"] == [1, 2, 3, 4, 5, 6]
    evals = [r for r in records if r["kind"] == "eval"]
    assert [r["iter"] for r in evals] == [0, 3, 6]
    assert all(0 <= r["mlm_accuracy"] <= 1 and 0 <= r["nsp_accuracy"] <= 1 and r["mlm"] > 0 for r in evals)
    demo = (bert_run / "fill_mask.txt").read_text()
    assert demo.count("masked:") == 3 and demo.count("filled:") == 3 and "_" in demo
    model, tokenizer, _ = load_pretraining_run(bert_run)
    assert model.config.vocab_size == tokenizer.vocab_size and tokenizer.mask_id == 4


def test_interrupted_and_resumed_run_ends_with_the_uninterrupted_parameters(corpus, bert_run, tmp_path):
    config = PretrainConfig(data=str(corpus), out_dir=str(tmp_path), name="split", **TINY)
    run_dir = pretrain(config, stop_after=4, **QUIET)
    assert checkpoint.read_config(run_dir / "checkpoint", verify=False)["extra"]["iter_num"] == 4
    assert not (run_dir / "fill_mask.txt").exists()
    code, out, err = cli("pretrain-bert", "--resume", run_dir, "--log-interval", 2)
    assert code == 0, err
    assert "masked-LM loss" in out and "fill the mask" in out
    straight_model, _, _ = load_pretraining_run(bert_run)
    resumed_model, _, _ = load_pretraining_run(run_dir)
    for name, value in straight_model.state_dict().items():
        np.testing.assert_array_equal(resumed_model.state_dict()[name], value, err_msg=name)
    steps = [json.loads(line)["iter"] for line in (run_dir / "log.jsonl").read_text().splitlines()
             if json.loads(line)["kind"] == "step"]
    assert steps == [1, 2, 3, 4, 6]  # each step once: 1-4 before the stop, then every 2nd


@pytest.mark.parametrize("flags, fragment", [
    (["--block-size", "4"], "--block-size must be in [5, inf)"),
    (["--n-embd", "10", "--n-head", "4"], "--n-embd (10) must be divisible by --n-head (4)"),
    (["--mlm-probability", "1.5"], "--mlm-probability must be in (0, 1)"),
])
def test_invalid_flags_are_one_line_and_leave_nothing(corpus, tmp_path, flags, fragment):
    code, _, err = cli("pretrain-bert", "--data", corpus, "--out-dir", tmp_path, "--name", "x", *flags)
    assert code == 1 and err.strip().splitlines()[-1].startswith("minitransformer pretrain-bert: error:")
    assert fragment in err and not (tmp_path / "x").exists()


def test_too_little_text_and_resume_changes_are_refused(bert_run, tmp_path):
    short = tmp_path / "short.txt"
    short.write_text("One paragraph.\n\nAnother one.\n", encoding="utf-8")
    code, _, err = cli("pretrain-bert", "--data", short, "--out-dir", tmp_path, "--name", "s")
    assert code == 1 and "the text has 2 paragraphs; next-sentence prediction needs at least" in err
    assert not (tmp_path / "s").exists()
    code, _, err = cli("pretrain-bert", "--resume", bert_run, "--n-layer", 3)
    assert code == 1 and "cannot change ['n_layer'] of an existing run" in err


def test_finetune_from_a_bert_run_starts_from_its_encoder_and_compares_with_random_weights(bert_run, tmp_path):
    config, reason = starting_point(FinetuneConfig(from_run=str(bert_run)))
    assert reason == f"the BERT encoder of {bert_run} (--from-run)" and config.learning_rate == 1e-3
    classifier, tokenizer = _pretrained_classifier(config, 2)
    pretrained, _, _ = load_pretraining_run(bert_run)
    for name, value in classifier.bert.state_dict().items():  # the encoder, not the pretraining heads
        np.testing.assert_array_equal(value, pretrained.state_dict()[f"bert.{name}"], err_msg=name)
    assert tokenizer.vocab == pretrained_vocab(bert_run)

    csv_path = tmp_path / "data.csv"
    rows = [f"a great and lovely day {i},pos" if i % 2 else f"a terrible awful day {i},neg" for i in range(16)]
    csv_path.write_text("text,label\n" + "\n".join(rows) + "\n", encoding="utf-8")
    code, out, err = cli("finetune", "--from-run", bert_run, "--csv", csv_path, "--out-dir", tmp_path, "--name", "ft",
                         "--epochs", 1, "--batch-size", 8)
    assert code == 0, err
    results = json.loads((tmp_path / "ft" / "metrics.json").read_text())
    assert results["model"]["description"] == f"pretrained BERT encoder (1 layer, 2 heads, width 16) of {bert_run}"
    assert results["baseline"]["description"] == "BERT encoder (1 layer, 2 heads, width 16) from random weights"
    assert "up to 24 tokens per text" in err  # max_tokens capped by the run's positions
    code, out, err = cli("predict", "--run", tmp_path / "ft", "a lovely day")
    assert code == 0 and out.split("\t")[0] in ("pos", "neg"), err
    code, _, err = cli("finetune", "--from-run", tmp_path / "ft", "--csv", csv_path, "--out-dir", tmp_path)
    assert code == 1 and "is a 'classifier' run; fine-tuning starts from a `train` run" in err


def pretrained_vocab(run_dir: Path) -> dict:
    return {token: index for index, token in enumerate((run_dir / "vocab.txt").read_text().splitlines())}


@pytest.mark.gpu
def test_pretraining_and_finetuning_on_the_device_match_the_cpu(corpus, tmp_path):
    from minitransformer import backend

    if not backend.cupy_available():
        pytest.skip("no CuPy or no CUDA GPU on this machine")
    runs = {}
    for device in ("cpu", "cuda"):  # without dropout, whose random numbers differ between devices
        config = PretrainConfig(data=str(corpus), out_dir=str(tmp_path), name=device, device=device,
                                **{**TINY, "dropout": 0.0})
        runs[device] = pretrain(config, **QUIET)
    run_dir = runs["cuda"]
    on_device, _, _ = load_pretraining_run(run_dir)
    on_host, _, _ = load_pretraining_run(runs["cpu"])
    for name, value in on_host.state_dict().items():
        np.testing.assert_allclose(on_device.state_dict()[name], value, rtol=1e-4, atol=1e-5, err_msg=name)
    csv_path = tmp_path / "data.csv"
    rows = [f"good fun {i},pos" if i % 2 else f"bad dull {i},neg" for i in range(16)]
    csv_path.write_text("text,label\n" + "\n".join(rows) + "\n", encoding="utf-8")
    code, _, err = cli("finetune", "--from-run", run_dir, "--csv", csv_path, "--out-dir", tmp_path, "--name", "ft",
                       "--epochs", 1, "--batch-size", 8, "--device", "cuda")
    assert code == 0, err


def test_a_diverging_run_stops_with_the_step_and_leaves_no_run_directory(corpus, tmp_path):
    flags = [f"--{name.replace('_', '-')}={value}" for name, value in TINY.items()]
    code, _, err = cli("pretrain-bert", "--data", corpus, "--out-dir", tmp_path, "--name", "d", *flags,
                       "--eval-interval", 100, "--max-iters", 30, "--learning-rate", 1e6, "--grad-clip", 0)
    assert code == 1 and "pretrain-bert: error: training diverged at step" in err and "--learning-rate" in err
    assert not (tmp_path / "d").exists()
