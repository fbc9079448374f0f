"""Fuzzing the CLI and the loaders: random flags and values, mutated run directories, npz and
safetensors files, and kill -9 during checkpoint writes.

Each case must end in success or in a one-line error with a non-zero exit: never an exception
escaping ``main`` (a traceback), a hang, or a changed file outside the run directory. The
``ci`` profile keeps this file within about a minute; ``HYPOTHESIS_PROFILE=thorough`` draws ten
times as many examples for a local run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import time
import typing
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minitransformer import checkpoint, nn
from minitransformer.cli import main
from minitransformer.runs import field_type
from minitransformer.safetensors import load_file, save_file
from minitransformer.train import TrainConfig, train

ROOT = Path(__file__).resolve().parents[1]
TEXT = "Return the value of the item.\nRaise an error when it is missing.\n" * 20
TINY = {"batch_size": "2", "block_size": "4", "n_layer": "1", "n_head": "1", "n_embd": "4", "max_iters": "2",
        "eval_interval": "2", "eval_iters": "1", "log_interval": "1", "sample_tokens": "2", "warmup_iters": "0"}
# the examples of one test: a third of the profile's count (13 in ci, 133 in thorough)
EXAMPLES = max(8, settings().max_examples // 3)
FUZZ = settings(max_examples=EXAMPLES, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                              HealthCheck.too_slow])


def cli(*args) -> tuple[int, str]:
    """(exit status, stderr) of ``main``, in this process; an escaping exception fails the test."""
    stderr = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(stderr):
        try:
            status = main([str(a) for a in args])
        except SystemExit as exit:  # argparse's usage errors
            status = exit.code
    return status, stderr.getvalue()


def assert_clean_outcome(status: int, stderr: str) -> None:
    assert status in (0, 1, 2), (status, stderr)
    assert "Traceback" not in stderr, stderr
    if status != 0:
        last = stderr.strip().splitlines()[-1]
        assert last.startswith("minitransformer") and "error" in last, stderr


def snapshot(root: Path, skip: Path) -> dict[str, str]:
    """SHA-256 of every file under root, except those under ``skip``."""
    return {str(path): hashlib.sha256(path.read_bytes()).hexdigest() for path in sorted(root.rglob("*"))
            if path.is_file() and not path.is_relative_to(skip)}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fuzz")
    (root / "corpus.txt").write_text(TEXT)
    (root / "folder").mkdir()
    (root / "plain-file").write_text("not a folder")
    return root


# --- random flags --------------------------------------------------------------------------------

INTEGERS = st.sampled_from(["-1", "0", "1", "2", "3", "x", "1.5", "nan", ""])
FLOATS = st.sampled_from(["-1", "0", "1e-3", "0.5", "1", "1e6", "nan", "inf", "-inf", "x", "1e-400", "1e400"])
CHOICES = {
    "data": st.sampled_from(["corpus.txt", "folder", "missing.txt", "/dev/zero", "plain-file"]),
    "name": st.sampled_from(["run", "", "..", "a/b", "x" * 300, ".", "-"]),
    "out_dir": st.sampled_from(["runs", "runs/nested", "plain-file", "plain-file/below"]),
    "tokenizer": st.sampled_from(["char", "bpe", "x"]),
    "device": st.sampled_from(["cpu", "tpu"]),
    "vocab_size": st.sampled_from(["257", "300", "256", "-1", "x"]),
}


def flag_values() -> st.SearchStrategy:
    """One to three TrainConfig flags, each with a value that is valid, at an edge, or nonsense."""
    hints = typing.get_type_hints(TrainConfig)
    strategies = {}
    for field in dataclasses.fields(TrainConfig):
        kind, _ = field_type(hints[field.name])
        strategies[field.name] = (CHOICES[field.name] if field.name in CHOICES
                                  else {bool: st.booleans(), int: INTEGERS}.get(kind, FLOATS))
    names = st.lists(st.sampled_from(sorted(strategies)), min_size=1, max_size=3, unique=True)
    return names.flatmap(lambda chosen: st.fixed_dictionaries({name: strategies[name] for name in chosen}))


@FUZZ
@given(flags=flag_values())
def test_random_train_flags_end_in_success_or_one_line(workspace, flags):
    values = {**TINY, "data": "corpus.txt", "out_dir": "runs", "name": "run"}
    values.update(flags)
    args = ["train"]
    for name, value in values.items():
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            args.append(flag if value else "--no-" + flag[2:])
        elif name in ("data", "out_dir") and value and not value.startswith("/"):
            args += [flag, workspace / value]
        else:
            args += [flag, value]
    out_dir = Path(args[args.index("--out-dir") + 1])
    before = snapshot(workspace, skip=workspace / "runs")
    status, stderr = cli(*args)
    assert_clean_outcome(status, stderr)
    if status != 0 and "run directory:" not in stderr:  # refused before it began: nothing was made
        assert not (out_dir / str(values["name"])).exists(), stderr
    assert snapshot(workspace, skip=workspace / "runs") == before
    shutil.rmtree(workspace / "runs", ignore_errors=True)


# --- mutated run directories ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def trained(workspace) -> Path:
    config = TrainConfig(data=str(workspace / "corpus.txt"), out_dir=str(workspace / "trained"), name="base",
                         **{name: int(value) for name, value in TINY.items()})
    return train(config, out=open(os.devnull, "w"))


JSON_VALUES = st.sampled_from([None, True, False, -1, 0, 1, 2, 1.5, "x", "", [], {}, "1e-3", [1, 2]])


def mutate_json(data: bytes, draw) -> bytes:
    """Drop a key, or replace a value, somewhere in a JSON object; or cut the file."""
    value = json.loads(data)
    if draw(st.booleans()) and isinstance(value, dict):
        target = value
        while True:
            key = draw(st.sampled_from(sorted(target)))
            if isinstance(target[key], dict) and target[key] and draw(st.booleans()):
                target = target[key]
                continue
            if draw(st.booleans()):
                del target[key]
            elif isinstance(target[key], list) and target[key] and draw(st.booleans()):
                target[key] = target[key][::-1]
            else:
                target[key] = draw(JSON_VALUES)
            break
        return json.dumps(value).encode()
    return data[:draw(st.integers(0, len(data)))]


def mutate_bytes(data: bytes, draw) -> bytes:
    """Flip a bit, cut the file, or overwrite a few bytes."""
    action = draw(st.sampled_from(["flip", "cut", "overwrite"]))
    position = draw(st.integers(0, max(len(data) - 1, 0)))
    if action == "cut":
        return data[:position]
    mutated = bytearray(data)
    if action == "flip":
        mutated[position] ^= 1 << draw(st.integers(0, 7))
    else:
        patch = draw(st.binary(min_size=1, max_size=8))
        mutated[position:position + len(patch)] = patch
    return bytes(mutated)


@FUZZ
@given(target=st.sampled_from(["config.json", "tokenizer.json", "checkpoint/checkpoint.npz", "log.jsonl",
                               "checkpoint/config.json"]),
       data=st.data())
def test_mutated_run_directories_end_in_success_or_one_line(workspace, trained, target, data):
    copy = workspace / "runs" / "copy"
    shutil.rmtree(workspace / "runs", ignore_errors=True)
    shutil.copytree(trained, copy)
    path = copy / target
    original = path.read_bytes()
    mutate = mutate_json if target.endswith(".json") else mutate_bytes
    path.write_bytes(mutate(original, data.draw))
    before = snapshot(workspace, skip=workspace / "runs")
    for args in (["generate", "--run", copy, "--max-new-tokens", "2"],
                 ["train", "--resume", copy, "--max-iters", "3", "--eval-iters", "1", "--sample-tokens", "2"]):
        status, stderr = cli(*args)
        assert_clean_outcome(status, stderr)
    assert snapshot(workspace, skip=workspace / "runs") == before


@FUZZ
@given(data=st.data())
def test_mutated_safetensors_files_load_or_raise_value_error(tmp_path, data):
    path = tmp_path / "m.safetensors"
    save_file({"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.ones(3, dtype=np.int64)}, path)
    path.write_bytes(mutate_bytes(path.read_bytes(), data.draw))
    try:
        tensors = load_file(path, mmap=False)
    except ValueError as error:
        assert "\n" not in str(error) and str(path) in str(error)
    else:  # a renamed tensor or flipped value bits are still a valid file: sizes cannot change
        assert sorted(array.size for array in tensors.values()) == [3, 6]


@FUZZ
@given(data=st.data())
def test_mutated_checkpoints_load_whole_or_raise_value_error(tmp_path, data):
    model = nn.Linear(3, 2)
    checkpoint.save(tmp_path, model)
    path = tmp_path / checkpoint.ARRAYS_FILE
    original = path.read_bytes()
    mutated = mutate_bytes(original, data.draw)
    path.write_bytes(mutated)
    loaded = nn.Linear(3, 2)
    try:
        checkpoint.load(tmp_path, loaded)
    except ValueError as error:
        assert "\n" not in str(error) and "checkpoint" in str(error)
    else:  # a flip in bytes nothing reads (zip padding, a comment) may pass: the values must not change
        for name, value in model.state_dict().items():
            np.testing.assert_array_equal(loaded.state_dict()[name], value)


# --- kill -9 during checkpoint writes ------------------------------------------------------------

WRITER = """
import sys
import numpy as np
from minitransformer import checkpoint, nn
model = nn.Linear(64, 64)
for version in range(1, 10**6):
    model.weight.data[...] = version
    checkpoint.save(sys.argv[1], model, extra={"version": version})
    print(version, flush=True)
"""


@pytest.mark.parametrize("delay", [0.0, 0.003, 0.011, 0.029])
def test_kill_9_during_checkpoint_writes_leaves_a_whole_checkpoint(tmp_path, delay):
    process = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)], stdout=subprocess.PIPE, text=True,
                               cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    written = 0
    for line in process.stdout:  # let a few saves complete, then kill at a moment within one
        written = int(line)
        if written >= 3:
            break
    time.sleep(delay)
    process.kill()
    process.wait()
    model = nn.Linear(64, 64)
    extra = checkpoint.load(tmp_path, model)
    assert extra["version"] >= written
    assert np.all(model.weight.data == extra["version"])
