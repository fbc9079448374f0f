"""Run directories and the CLI under bad input and faults (minitransformer/runs.py): each test
names one case; where the exit status and the one-line error matter, the CLI runs in a
subprocess, as a user would run it."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from minitransformer import checkpoint
from minitransformer.cli import main
from minitransformer.runs import LOCK_FILE, DivergenceGuard, RunDirectory, RunLog, read_log
from minitransformer.train import TrainConfig, load_run, train

ROOT = Path(__file__).resolve().parents[1]
TEXT = ("Return the number of items in a container. Raise ValueError when the value is not found.\n"
        "Open a file and return a stream. The argument may be a sequence or a collection.\n") * 30
TINY = ["--batch-size", "2", "--block-size", "8", "--n-layer", "1", "--n-head", "1", "--n-embd", "8",
        "--eval-interval", "2", "--eval-iters", "1", "--log-interval", "1", "--sample-tokens", "5",
        "--warmup-iters", "0"]
FINETUNE_TINY = ["--from-scratch", "--epochs", "1", "--n-layer", "1", "--n-head", "1", "--n-embd", "8", "--max-tokens", "8",
                 "--batch-size", "4"]


@pytest.fixture
def corpus(tmp_path) -> Path:
    path = tmp_path / "corpus.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


@pytest.fixture
def labelled(tmp_path) -> Path:
    path = tmp_path / "labelled.csv"
    rows = ["text,label"] + [f"the cat number {i},cat" for i in range(6)] + [f"a dog called {i},dog" for i in range(6)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def cli_process(*args, timeout: float = 120) -> subprocess.CompletedProcess:
    """``python -m minitransformer ARGS`` in a new process: for signals, kills, hangs and locks."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "minitransformer", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT, env=env)


def cli(*args) -> subprocess.CompletedProcess:
    """The same as ``cli_process`` (exit status, stdout, stderr) but in this process, which saves
    the second of start-up that each new interpreter costs. An exception escaping ``main``
    (what would be a traceback) fails the test."""
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            returncode = main([str(a) for a in args])
        except SystemExit as exit:  # argparse's usage errors
            returncode = exit.code
    return subprocess.CompletedProcess(args, returncode, stdout.getvalue(), stderr.getvalue())


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> str:
    """Exit status 1 or 2 (argparse), no traceback, the error as the last stderr line."""
    assert result.returncode in (1, 2), (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("minitransformer"), result.stderr
    for fragment in fragments:
        assert fragment in line, line
    return line


def tiny_run(corpus: Path, out_dir: Path, name: str = "r", **overrides) -> Path:
    values = dict(data=str(corpus), out_dir=str(out_dir), name=name, batch_size=2, block_size=8, n_layer=1,
                  n_head=1, n_embd=8, eval_interval=2, eval_iters=1, log_interval=1, sample_tokens=5,
                  warmup_iters=0, max_iters=4)
    return train(TrainConfig(**{**values, **overrides}), out=open(os.devnull, "w"))


def log_records(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]


# --- invalid values: one line, and nothing left behind -------------------------------------------

@pytest.mark.parametrize("flags, fragment", [
    (["--learning-rate", "-1"], "--learning-rate must be in (0, inf)"),
    (["--learning-rate", "nan"], "--learning-rate must be a finite number"),
    (["--learning-rate", "inf"], "--learning-rate must be a finite number"),
    (["--weight-decay", "nan"], "--weight-decay must be a finite number"),
    (["--beta1", "1.5"], "--beta1 must be in [0, 1)"),
    (["--sample-tokens", "-5"], "--sample-tokens must be in [0, 100000]"),
    (["--warmup-iters", "-5"], "--warmup-iters must be in [0, inf)"),
    (["--min-lr", "0.1", "--learning-rate", "0.01"], "--min-lr (0.1) must not exceed --learning-rate"),
    (["--n-embd", "10", "--n-head", "3"], "divisible by --n-head"),
    (["--dropout", "1"], "--dropout must be in [0, 1)"),
    (["--max-iters", "0"], "--max-iters must be in [1, inf)"),
    (["--n-layer", "abc"], "invalid int value"),
    (["--name", "../escaped"], "plain folder name"),
    (["--name", ".."], "plain folder name"),
    (["--name", ""], "plain folder name"),
])
def test_invalid_train_flag_leaves_no_run_directory(corpus, tmp_path, flags, fragment):
    result = (cli_process if flags[0] in ("--learning-rate", "--n-layer") else cli)("train", "--data", corpus, "--out-dir", tmp_path / "runs", "--name", "x", *TINY, *flags)
    assert_one_line_error(result, fragment)
    assert not (tmp_path / "runs").exists() and not (tmp_path / "escaped").exists()


def test_finetune_l2_nan_is_refused(labelled, tmp_path):
    result = cli("finetune", "--csv", labelled, "--out-dir", tmp_path / "runs", "--l2", "nan", *FINETUNE_TINY)
    assert_one_line_error(result, "--l2 must be a finite number")
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("values, fragment", [
    ({"n_layer": True}, "'n_layer' must be an integer, got True"),
    ({"bias": "no"}, "'bias' must be true or false, got 'no'"),
    ({"learning_rate": "1e-3"}, "'learning_rate' must be a finite number, got '1e-3'"),
    ({"max_iters": 2.5}, "'max_iters' must be an integer"),
    ({"n_embd": None}, "'n_embd' must be an integer, got None"),
    ({"no_such_option": 1}, "unknown keys ['no_such_option']"),
])
def test_config_file_values_are_type_checked(corpus, tmp_path, values, fragment):
    config_file = tmp_path / "c.json"
    config_file.write_text(json.dumps(values))
    result = cli("train", "--config", config_file, "--data", corpus, "--out-dir", tmp_path / "runs", *TINY)
    assert_one_line_error(result, "--config", fragment)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("content, fragment", [
    ("[1, 2]", "must hold a JSON object"),
    ('{"max_iters": 2, "max_iters": 3}', "appears twice"),
    ('{"learning_rate": NaN}', "NaN is not a JSON number"),
    ("[" * 100_000, "nested too deeply"),
])
def test_malformed_config_files_are_refused(tmp_path, content, fragment):
    config_file = tmp_path / "c.json"
    config_file.write_text(content)
    assert_one_line_error(cli("train", "--config", config_file, "--out-dir", tmp_path / "runs"), fragment)


def test_config_that_is_a_folder_is_refused(tmp_path):
    assert_one_line_error(cli("train", "--config", tmp_path, "--out-dir", tmp_path / "runs"), "is a folder")


def test_out_dir_that_is_a_file_is_refused(corpus, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert_one_line_error(cli("train", "--data", corpus, "--out-dir", blocker, *TINY), "is not a folder")
    assert_one_line_error(cli("train", "--data", corpus, "--out-dir", blocker / "sub", *TINY), "is not a folder")


def test_resume_with_config_is_refused(tmp_path):
    config_file = tmp_path / "c.json"
    config_file.write_text("{}")
    assert_one_line_error(cli("train", "--resume", tmp_path, "--config", config_file), "--resume", "--config")


# --- data inputs ---------------------------------------------------------------------------------

def test_fifo_as_data_fails_at_once_instead_of_hanging(tmp_path):
    fifo = tmp_path / "pipe.txt"
    os.mkfifo(fifo)
    result = cli_process("train", "--data", fifo, "--out-dir", tmp_path / "runs", *TINY, timeout=60)
    assert_one_line_error(result, "not a regular file")


def test_device_as_data_is_refused():
    assert_one_line_error(cli("train", "--data", "/dev/zero", "--out-dir", "/nonexistent/runs"), "not a regular file")


def test_folder_named_like_a_text_file_inside_data_is_skipped(corpus, tmp_path):
    data_dir = tmp_path / "data"
    (data_dir / "x.txt").mkdir(parents=True)
    assert_one_line_error(cli("train", "--data", data_dir, "--out-dir", tmp_path / "runs"), "holds no .txt files")
    (data_dir / "real.txt").write_text(TEXT)
    (data_dir / "x.txt" / "inner.txt").write_text(TEXT)
    result = cli("train", "--data", data_dir, "--out-dir", tmp_path / "runs", "--name", "ok", *TINY, "--max-iters", 2)
    assert result.returncode == 0, result.stderr


def test_too_large_data_is_refused_before_reading(tmp_path):
    huge = tmp_path / "huge.txt"
    with open(huge, "wb") as handle:  # sparse: 1.5 GiB on paper, nothing on disk
        handle.truncate(3 << 29)
    assert_one_line_error(cli("train", "--data", huge, "--out-dir", tmp_path / "runs"), "the limit is 1,024 MiB")


def test_text_without_a_newline_trains_and_samples(tmp_path):
    data = tmp_path / "one-line.txt"
    data.write_text(TEXT.replace("\n", " "))
    run_dir = tiny_run(data, tmp_path / "runs", max_iters=2)
    assert (run_dir / "samples.txt").read_text().strip()


# --- divergence ----------------------------------------------------------------------------------

@pytest.mark.parametrize("extra", [[], ["--grad-clip", "0"]])
def test_huge_learning_rate_stops_with_a_named_step_and_no_run_directory(corpus, tmp_path, extra):
    result = cli("train", "--data", corpus, "--out-dir", tmp_path / "runs", "--name", "d", *TINY,
                 "--eval-interval", "100", "--max-iters", "50", "--learning-rate", "1e6", *extra)
    assert_one_line_error(result, "training diverged at step", "--learning-rate")
    assert not (tmp_path / "runs" / "d").exists()  # failed before its first checkpoint: rolled back


@pytest.fixture
def nan_gradient_at_step_3(monkeypatch):
    """The third step's gradients (and so their norm) are NaN: what an overflowing backward gives."""
    import minitransformer.train as train_module

    real_clip, calls = train_module.clip_grad_norm, []

    def clip(params, max_norm):
        params = list(params)
        calls.append(len(calls) + 1)
        if len(calls) == 3:
            for p in params:
                p.grad = p.grad * np.float32("nan")
        return real_clip(params, max_norm)

    monkeypatch.setattr(train_module, "clip_grad_norm", clip)


def test_nan_gradient_stops_the_run_and_keeps_the_last_good_checkpoint(corpus, tmp_path, nan_gradient_at_step_3,
                                                                         capsys):
    args = ["train", "--data", corpus, "--out-dir", tmp_path, "--name", "n", *TINY, "--max-iters", 6]
    assert main([str(a) for a in args]) == 1
    assert "training diverged at step 3" in capsys.readouterr().err.strip().splitlines()[-1]
    run_dir = tmp_path / "n"
    assert checkpoint.read_config(run_dir / "checkpoint")["extra"]["iter_num"] == 2  # the one before
    model, _, _ = load_run(run_dir)
    assert all(np.isfinite(value).all() for value in model.state_dict().values())
    assert all(record["iter"] <= 2 for record in log_records(run_dir))  # strict JSON, no NaN


def test_skip_nonfinite_skips_and_counts_the_step(corpus, tmp_path, nan_gradient_at_step_3):
    run_dir = tiny_run(corpus, tmp_path, skip_nonfinite=True, max_iters=5)
    steps = [r for r in log_records(run_dir) if r["kind"] == "step"]
    assert [r["skipped_steps"] for r in steps] == [0, 0, 1, 1, 1]
    assert steps[2]["grad_norm"] is None  # NaN is not JSON: logged as null
    assert checkpoint.read_config(run_dir / "checkpoint")["extra"]["skipped_steps"] == 1


def test_divergence_guard_cases():
    guard = DivergenceGuard("train", num_classes=65, hint="lower it", skip=True)
    assert guard.allows(1, 4.0, 1.0)
    assert not guard.allows(2, float("nan"), 1.0) and guard.skipped == 1
    assert not guard.allows(3, 4.0, float("inf")) and guard.skipped == 2
    with pytest.raises(ValueError, match="diverged at step 4: the loss is 1e\\+12"):
        guard.allows(4, 1e12, 1.0)
    strict = DivergenceGuard("train", num_classes=65, hint="lower it")
    with pytest.raises(ValueError, match="step 7: the loss is nan"):
        strict.allows(7, float("nan"), None)
    with pytest.raises(ValueError, match="estimated loss"):
        strict.check_evaluation(8, {"train": 1.0, "val": float("inf")})


def test_nan_parameters_are_never_checkpointed(corpus, tmp_path):
    from minitransformer import nn

    model = nn.Linear(2, 2)
    model.weight.data[0, 0] = np.nan
    with RunDirectory.create("train", str(tmp_path), "x") as folder:
        with pytest.raises(ValueError, match="weight holds NaN"):
            folder.save_checkpoint(model)
        assert not folder.has_checkpoint()


def test_the_log_refuses_nan(tmp_path):
    log = RunLog(tmp_path / "log.jsonl")
    with pytest.raises(ValueError):
        log.write({"kind": "step", "loss": float("nan")})
    log.close()
    assert (tmp_path / "log.jsonl").read_text() == ""


# --- the run directory ---------------------------------------------------------------------------

def test_torn_last_log_line_is_dropped_and_the_resume_finishes(corpus, tmp_path):
    run_dir = train(TrainConfig(data=str(corpus), out_dir=str(tmp_path), name="t", batch_size=2, block_size=8,
                                n_layer=1, n_head=1, n_embd=8, eval_interval=2, eval_iters=1, log_interval=1,
                                sample_tokens=5, warmup_iters=0, max_iters=6), stop_after=3,
                    out=open(os.devnull, "w"))
    with open(run_dir / "log.jsonl", "a") as log:
        log.write('{"kind": "step", "iter": 4, "lo')  # what kill -9 during a write leaves
    assert cli("train", "--resume", run_dir).returncode == 0
    assert cli("train", "--resume", run_dir, "--max-iters", 8).returncode == 0  # and every later resume
    records = log_records(run_dir)  # every line parses
    assert [r["iter"] for r in records if r["kind"] == "step"] == list(range(1, 9))
    assert (run_dir / "loss.png").stat().st_size > 0


def test_steps_after_the_checkpoint_are_logged_once_after_a_resume(corpus, tmp_path):
    run_dir = train(TrainConfig(data=str(corpus), out_dir=str(tmp_path), name="dup", batch_size=2, block_size=8,
                                n_layer=1, n_head=1, n_embd=8, eval_interval=2, eval_iters=1, log_interval=1,
                                sample_tokens=5, warmup_iters=0, max_iters=8), stop_after=4,
                    out=open(os.devnull, "w"))
    with open(run_dir / "log.jsonl", "a") as log:  # a run killed after logging steps 5 and 6
        for step in (5, 6):
            log.write(json.dumps({"kind": "step", "iter": step, "loss": 1.0, "lr": 0.1}) + "\n")
    train(resume=run_dir, out=open(os.devnull, "w"))
    records = log_records(run_dir)
    assert [r["iter"] for r in records if r["kind"] == "step"] == list(range(1, 9))
    assert [r["iter"] for r in records if r["kind"] == "eval"] == [0, 2, 4, 6, 8]
    assert all(r["loss"] != 1.0 for r in records if r["kind"] == "step")


def test_stray_temporary_files_are_removed_on_resume(corpus, tmp_path):
    run_dir = tiny_run(corpus, tmp_path, max_iters=2)
    stray = [run_dir / "checkpoint" / ".checkpoint.npz.abc123.tmp", run_dir / ".log.jsonl.x.tmp"]
    for path in stray:
        path.write_bytes(b"\0" * 1000)
    assert cli("train", "--resume", run_dir, "--max-iters", 3).returncode == 0
    assert not any(path.exists() for path in stray)
    assert not list(run_dir.rglob("*.tmp"))


def test_a_second_writer_is_refused_with_the_holders_pid(corpus, tmp_path):
    run_dir = tiny_run(corpus, tmp_path, max_iters=2)
    with RunDirectory.reopen("train --resume", run_dir):
        assert_one_line_error(cli_process("train", "--resume", run_dir, "--max-iters", 3),
                              f"in use by process {os.getpid()}")
        assert_one_line_error(cli("train", "--data", corpus, "--out-dir", tmp_path, "--name", run_dir.name, *TINY),
                              "already exists")
    assert cli("train", "--resume", run_dir, "--max-iters", 3).returncode == 0  # released


def test_two_new_runs_of_one_name_cannot_both_run(tmp_path):
    with RunDirectory.create("train", str(tmp_path), "same"):
        with pytest.raises(ValueError, match=f"in use by process {os.getpid()}"):
            RunDirectory.create("train", str(tmp_path), "same")


def test_the_lock_of_a_killed_run_is_not_stale(corpus, tmp_path):
    process = subprocess.Popen([sys.executable, "-m", "minitransformer", "train", "--data", str(corpus),
                                "--out-dir", str(tmp_path), "--name", "k", *TINY, "--max-iters", "100000"],
                               stderr=subprocess.PIPE, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    for line in process.stderr:  # step 4's estimate comes after the checkpoint of step 2
        if line.startswith("step 4:"):
            break
    process.kill()  # SIGKILL: no cleanup runs
    process.wait()
    run_dir = tmp_path / "k"
    assert (run_dir / LOCK_FILE).read_text().strip() == str(process.pid)  # the dead holder's pid stays
    result = cli_process("train", "--resume", run_dir, "--max-iters", 6)
    assert result.returncode == 0, result.stderr
    assert checkpoint.read_config(run_dir / "checkpoint")["extra"]["iter_num"] == 6


def test_symlinks_in_a_run_directory_are_refused(corpus, tmp_path):
    run_dir = tiny_run(corpus, tmp_path, max_iters=2)
    outside = tmp_path / "outside.jsonl"
    outside.write_text("precious\n")
    (run_dir / "log.jsonl").unlink()
    (run_dir / "log.jsonl").symlink_to(outside)
    assert_one_line_error(cli("train", "--resume", run_dir, "--max-iters", 4), "symbolic link")
    assert outside.read_text() == "precious\n"


def test_linked_checkpoint_folder_is_refused(corpus, tmp_path):
    victim = tiny_run(corpus, tmp_path, "victim", max_iters=2)
    attacker = tiny_run(corpus, tmp_path, "attacker", max_iters=2)
    before = (victim / "checkpoint" / "checkpoint.npz").read_bytes()
    shutil.rmtree(attacker / "checkpoint")
    (attacker / "checkpoint").symlink_to(victim / "checkpoint")
    assert_one_line_error(cli("train", "--resume", attacker, "--max-iters", 4), "symbolic link")
    assert (victim / "checkpoint" / "checkpoint.npz").read_bytes() == before


def test_read_log_tolerates_only_a_torn_last_line(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_text('{"iter": 1}\n{"iter": 2}\n{"it')
    assert read_log(path) == ([{"iter": 1}, {"iter": 2}], True)
    path.write_text('{"iter": 1}\nnot json\n{"iter": 3}\n')
    with pytest.raises(ValueError, match="line 2"):
        read_log(path, strict=True)


# --- run files: missing keys, wrong types, inconsistencies ---------------------------------------

@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("trained")
    corpus = root / "corpus.txt"
    corpus.write_text(TEXT)
    return tiny_run(corpus, root / "runs", max_iters=2)


def damaged_copy(run_dir: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    return copy


@pytest.mark.parametrize("damage, command, fragment", [
    (lambda info: info["config"].pop("n_layer"), "train", "missing keys ['n_layer']"),
    (lambda info: info.update(config=[1, 2]), "train", "expected a JSON object"),
    (lambda info: info["config"].update(learning_rate="1e-3"), "train", "must be a finite number, got '1e-3'"),
    (lambda info: info["config"].update(n_layer=True), "train", "'n_layer' must be an integer, got True"),
    (lambda info: info["model"].pop("n_embd"), "generate", "missing keys ['n_embd']"),
    (lambda info: info["model"].update(n_layer=True), "generate", "'n_layer' must be an integer, got True"),
    (lambda info: info["model"].update(bias="no"), "generate", "'bias' must be true or false, got 'no'"),
    (lambda info: info.pop("model"), "generate", "expected a JSON object"),
    (lambda info: info.update(kind="classifier"), "generate", "is a 'classifier' run"),
])
def test_damaged_run_config_gives_one_line(trained_run, tmp_path, damage, command, fragment):
    run_dir = damaged_copy(trained_run, tmp_path)
    info = json.loads((run_dir / "config.json").read_text())
    damage(info)
    (run_dir / "config.json").write_text(json.dumps(info))
    args = ["train", "--resume", run_dir] if command == "train" else ["generate", "--run", run_dir]
    assert_one_line_error(cli(*args), fragment)


@pytest.mark.parametrize("damage, fragment", [
    (lambda tok: tok.pop("chars"), "'chars' must be a JSON list"),
    (lambda tok: tok.update(chars="abc"), "'chars' must be a JSON list"),
    (lambda tok: tok.update(chars=tok["chars"][::-1]), "sorted order"),
    (lambda tok: tok.update(chars=tok["chars"][:-2] + [tok["chars"][-1], tok["chars"][-2]]), "sorted order"),
    (lambda tok: tok.update(kind="byte_bpe", merges=[[1, "2"]]), "merge 0 is"),
    (lambda tok: tok.update(kind="byte_bpe", merges=[[1, True]]), "merge 0 is"),
])
def test_damaged_tokenizer_gives_one_line(trained_run, tmp_path, damage, fragment):
    from minitransformer.data import load_tokenizer

    run_dir = damaged_copy(trained_run, tmp_path)
    tokenizer = json.loads((run_dir / "tokenizer.json").read_text())
    damage(tokenizer)
    (run_dir / "tokenizer.json").write_text(json.dumps(tokenizer))
    with pytest.raises(ValueError, match=fragment):  # the file alone, outside any run
        load_tokenizer(run_dir / "tokenizer.json")
    assert_one_line_error(cli("generate", "--run", run_dir, "--max-new-tokens", 2), "tokenizer.json")


def test_edited_tokenizer_that_still_parses_is_detected_by_the_checkpoint(trained_run, tmp_path):
    run_dir = damaged_copy(trained_run, tmp_path)
    tokenizer = json.loads((run_dir / "tokenizer.json").read_text())
    (run_dir / "tokenizer.json").write_text(json.dumps(tokenizer, indent=1))  # same vocabulary, other bytes
    assert_one_line_error(cli("generate", "--run", run_dir, "--max-new-tokens", 2), "tokenizer.json",
                          "must not be edited")


# --- generate and predict ------------------------------------------------------------------------

@pytest.mark.parametrize("flags, fragment", [
    (["--temperature", "nan"], "temperature must be a finite number >= 0 (0 means greedy)"),
    (["--temperature", "inf"], "temperature must be a finite number >= 0 (0 means greedy)"),
    (["--temperature", "-1"], "temperature must be a finite number >= 0 (0 means greedy)"),
    (["--max-new-tokens", "100000000"], "--max-new-tokens must be an integer in [0, 100000]"),
    (["--top-k", "0"], "top_k must be an integer >= 1"),
    (["--seed", "-1"], "--seed must be an integer >= 0"),
])
def test_invalid_generate_flags(trained_run, flags, fragment):
    assert_one_line_error(cli("generate", "--run", trained_run, *flags), fragment)


def test_ctrl_c_during_generate_is_one_line(trained_run):
    process = subprocess.Popen([sys.executable, "-m", "minitransformer", "generate", "--run", str(trained_run),
                                "--max-new-tokens", "100000"], stderr=subprocess.PIPE, stdout=subprocess.PIPE,
                               text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    process.stdout.read(len("\n") + 1)  # the text streams out as it is sampled: the run is going
    process.send_signal(signal.SIGINT)
    _, rest = process.communicate(timeout=60)
    assert process.returncode == 130 and "Traceback" not in rest
    assert rest.strip().splitlines()[-1] == "minitransformer generate: interrupted"


def test_second_ctrl_c_stops_at_once_and_the_cli_reports_it_in_one_line(monkeypatch):
    from minitransformer import cli as cli_module
    from minitransformer.runs import StopFlag

    with StopFlag() as stop:
        os.kill(os.getpid(), signal.SIGINT)  # the first: finish the step, checkpoint, return
        assert stop.requested
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)  # the second: at once

    def interrupted_train(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_module, "train", interrupted_train)
    result = cli("train", "--max-iters", 1)
    assert result.returncode == 130 and result.stderr == "minitransformer train: interrupted\n"


def test_predict_warns_about_a_text_it_cannot_read(labelled, tmp_path):
    result = cli("finetune", "--csv", labelled, "--out-dir", tmp_path, "--name", "f", *FINETUNE_TINY)
    assert result.returncode == 0, result.stderr
    result = cli("predict", "--run", tmp_path / "f", "", "the cat")
    assert result.returncode == 0
    assert "text 0 ('') holds nothing the model can read" in result.stderr
    assert len(result.stdout.strip().splitlines()) == 2
    info = json.loads((tmp_path / "f" / "config.json").read_text())
    info["label_names"].reverse()  # would silently swap the labels
    (tmp_path / "f" / "config.json").write_text(json.dumps(info))
    assert_one_line_error(cli("predict", "--run", tmp_path / "f", "the cat"), "label_names", "differ")


# --- finetune ------------------------------------------------------------------------------------

@pytest.mark.parametrize("rows, fragment", [
    (["a text,"], "line 3 has an empty label"),
    (["a text,cat,extra"], "line 3 has 3 fields but the header names 2"),
    (["only a text"], "fewer fields than the header"),
])
def test_bad_csv_rows(tmp_path, rows, fragment):
    path = tmp_path / "bad.csv"
    path.write_text("\n".join(["text,label", "the cat,cat", *rows, "a dog,dog"]) + "\n")
    assert_one_line_error(cli("finetune", "--csv", path, "--out-dir", tmp_path / "runs", *FINETUNE_TINY), fragment)
    assert not (tmp_path / "runs").exists()


def test_finetune_into_an_existing_run_is_refused_before_training(labelled, tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    started = time.perf_counter()
    result = cli("finetune", "--csv", labelled, "--out-dir", tmp_path, "--name", "taken", *FINETUNE_TINY,
                 "--epochs", "1000")
    assert_one_line_error(result, "already exists")
    assert "epoch" not in result.stderr and time.perf_counter() - started < 60
    assert (tmp_path / "taken" / "notes.txt").read_text() == "mine"


def test_a_failed_finetune_leaves_no_run_directory(labelled, tmp_path):
    result = cli("finetune", "--csv", labelled, "--out-dir", tmp_path, "--name", "f", *FINETUNE_TINY,
                 "--learning-rate", "1e9")
    assert_one_line_error(result, "training diverged")
    assert not (tmp_path / "f").exists()
