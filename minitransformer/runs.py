"""What every training command shares: checked options, the run directory, its log, and the
guard that stops a diverging run.

A run directory is treated as a transaction:

- **Checked before it exists.** Every option is checked (type, range, choices) when its config
  dataclass is built, so an invalid command stops with one line and leaves nothing behind.
- **One writer.** ``RunDirectory`` holds an exclusive lock (``flock`` on ``.lock``, which records
  the holder's pid) for as long as it is open; a second ``train --resume`` of the same folder
  gets an error naming that pid. The kernel drops the lock when its process dies, so a run
  killed with ``kill -9`` never leaves a stale lock behind.
- **Only its own files.** Names are plain folder names inside ``--out-dir``; a folder holding
  symbolic links is refused, so a resume never appends to or replaces a file elsewhere.
  Temporary files of an interrupted write (``.NAME.*.tmp``) are removed when it is opened.
- **A log of each step once.** ``log.jsonl`` is strict JSON, one record a line. A torn last
  line (a kill during a write) is dropped on open, and so are the records after the
  checkpoint a resume starts from, because the resumed run logs those steps again.
- **Never a non-finite checkpoint.** ``DivergenceGuard`` stops a run whose loss or gradient
  norm is NaN or infinite (or whose loss explodes), naming the step; ``save_checkpoint``
  refuses non-finite parameters.
- **Rolled back on failure.** A new folder whose run fails before its first checkpoint is
  removed again, so the same ``--name`` works once the cause is fixed.

A new command declares its config as a dataclass of ``option`` fields, calls
``check_config`` in ``__post_init__`` and opens a ``RunDirectory``; a new option is one field.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import re
import shutil
import signal
import time
import types
import typing
from dataclasses import field
from pathlib import Path

import numpy as np

from . import checkpoint
from .atomic import atomic_write_text
from .backend import to_numpy
from .files import read_json
from .optim.clip import squared_norm

RUN_FORMAT = 1
LOCK_FILE = ".lock"
LOG_FILE = "log.jsonl"
CONFIG_FILE = "config.json"
CHECKPOINT_DIR = "checkpoint"
FIXED_FILES = ("tokenizer.json", "vocab.txt")  # written once, when the run starts


# --- options -----------------------------------------------------------------------------------

def option(text: str, default=None, *, bounds: str | None = None, choices: tuple | None = None):
    """A config field with its --help text, the interval its value must lie in (``"(0, inf)"``,
    ``"[0, 1)"``: a parenthesis leaves the end out) and its allowed values. The CLI builds its
    flags from these fields and ``check_config`` checks them."""
    metadata = {"help": text}
    if bounds is not None:
        metadata["bounds"] = Interval.parse(bounds)
    if choices is not None:
        metadata["choices"] = choices
    return field(default=default, metadata=metadata)


@dataclasses.dataclass(frozen=True)
class Interval:
    low: float
    high: float
    closed_low: bool
    closed_high: bool
    text: str

    @classmethod
    def parse(cls, text: str) -> Interval:
        match = re.fullmatch(r"([\[(])\s*(\S+)\s*,\s*(\S+)\s*([\])])", text)
        if not match:
            raise ValueError(f"option: bounds {text!r} must read like '[0, 1)'")
        opening, low, high, closing = match.groups()
        return cls(float(low), float(high), opening == "[", closing == "]", text)

    def __contains__(self, value) -> bool:
        above = value >= self.low if self.closed_low else value > self.low
        below = value <= self.high if self.closed_high else value < self.high
        return above and below


def accumulation_option():
    """``gradient_accumulation_steps`` (nanoGPT's name), the same option in every training command."""
    return option("micro-batches per step: each step's batch is cut into this many pieces whose weighted gradients "
                  "add up to the whole batch's (the same update, less memory; see microbatches.py)", 1,
                  bounds="[1, inf)")


def field_type(hint) -> tuple[type, bool]:
    """(the type of a field's annotation, whether None is allowed): ``int | None`` -> (int, True)."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = typing.get_args(hint)
        return next(arg for arg in args if arg is not type(None)), type(None) in args
    return hint, False


_DESCRIPTIONS = {bool: "true or false", int: "an integer", float: "a finite number", str: "a string"}


def check_value(label: str, value, hint):
    """``value`` if it has the annotated type, else a ValueError naming ``label``. Strict:
    ``True`` is not an integer, ``"1e-3"`` is not a number, NaN and infinity are not numbers;
    an int is accepted for a float and returned as a float."""
    kind, optional = field_type(hint)
    if value is None and optional:
        return None
    if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        if math.isfinite(value):
            return float(value)
    elif kind is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    elif kind in (bool, str) and isinstance(value, kind):
        return value
    expected = _DESCRIPTIONS.get(kind, kind.__name__) + (" or null" if optional else "")
    raise ValueError(f"{label} must be {expected}, got {value!r}")


def check_config(command: str, config) -> None:
    """Check every field of an ``option`` dataclass against its annotation, bounds and
    choices (normalising ints given for floats); the error names the command and the flag."""
    hints = typing.get_type_hints(type(config))
    for spec in dataclasses.fields(config):
        label = f"{command}: --{spec.name.replace('_', '-')}"
        value = check_value(label, getattr(config, spec.name), hints[spec.name])
        choices, bounds = spec.metadata.get("choices"), spec.metadata.get("bounds")
        if value is not None and choices is not None and value not in choices:
            raise ValueError(f"{label} must be one of {', '.join(map(repr, choices))}, got {value!r}")
        if value is not None and bounds is not None and value not in bounds:
            raise ValueError(f"{label} must be in {bounds.text}, got {value!r}")
        setattr(config, spec.name, value)


def check_fields(cls, values, where: str, complete: bool = False) -> dict:
    """``values``, read from a file, checked against the dataclass ``cls``: ValueError naming
    ``where`` if it is not a JSON object, has keys ``cls`` lacks, lacks one of its fields
    (``complete``) or holds a value of the wrong type. Ints given for floats become floats."""
    if not isinstance(values, dict):
        raise ValueError(f"{where}: expected a JSON object of {cls.__name__} fields, got {type(values).__name__}")
    hints = typing.get_type_hints(cls)
    names = [spec.name for spec in dataclasses.fields(cls)]
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown}; expected some of {names}")
    missing = [name for name in names if name not in values] if complete else []
    if missing:
        raise ValueError(f"{where}: missing keys {missing}")
    return {name: check_value(f"{where}: {name!r}", value, hints[name]) for name, value in values.items()}


def from_dict(cls, values, where: str, complete: bool = False):
    """``cls(**values)`` after ``check_fields``; ``cls.__post_init__`` then checks ranges."""
    return cls(**check_fields(cls, values, where, complete))


# --- the run directory ----------------------------------------------------------------------------

def read_run_info(run_dir: str | Path, kind: str | None = None) -> dict:
    """A run directory's config.json, checked: a regular file holding a JSON object of this run
    format (and, if given, of this ``kind``: "lm" for train, "mlm" for pretrain-bert, "classifier"
    for finetune)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ValueError(f"{run_dir} is not a run directory: no such folder")
    if not (run_dir / CONFIG_FILE).exists():
        raise ValueError(f"{run_dir} is not a run directory: it has no {CONFIG_FILE}")
    info = read_json(run_dir / CONFIG_FILE, "run config", max_bytes=16 << 20)
    if not isinstance(info, dict):
        raise ValueError(f"run config: {run_dir / CONFIG_FILE} holds a JSON {type(info).__name__}, expected an object")
    if info.get("format") != RUN_FORMAT:
        raise ValueError(f"{run_dir} was written by an incompatible version of minitransformer "
                         f"(run format {info.get('format')!r}, this version reads {RUN_FORMAT})")
    found = info.get("kind", "lm")
    if kind is not None and found != kind:
        made_by = {"lm": "train", "mlm": "pretrain-bert", "classifier": "finetune"}
        raise ValueError(f"{run_dir} is a {found!r} run (made by `{made_by.get(found, found)}`), "
                         f"expected a {kind!r} run (made by `{made_by.get(kind, kind)}`)")
    return info


def check_run_name(command: str, name: str) -> None:
    """A run name is one plain folder name, so the run stays inside --out-dir."""
    if (not name or name in (".", "..") or "/" in name or "\0" in name
            or (os.sep != "/" and os.sep in name) or (os.altsep and os.altsep in name)):
        raise ValueError(f"{command}: --name {name!r} must be a plain folder name "
                         "(no '/', not empty, '.' or '..')")


def check_out_dir(command: str, out_dir: str) -> None:
    path = Path(out_dir)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{command}: --out-dir {out_dir} exists but is not a folder")
    for parent in path.parents:  # a file where a parent folder should be
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(f"{command}: --out-dir {out_dir}: {parent} is not a folder")
            break


class RunDirectory:
    """A run directory that this process holds: locked while open, see the module docstring.

    Use as a context manager: leaving with an error discards a folder this call created and
    never checkpointed; leaving in any way releases the lock.
    """

    def __init__(self, path: Path, command: str, created: bool):
        self.path, self.command, self.created = path, command, created
        self.committed = not created  # a reopened folder already holds a checkpoint
        self._lock_fd = None
        self.log: RunLog | None = None

    @staticmethod
    def check_new(command: str, out_dir: str, name: str | None) -> None:
        """The checks ``create`` makes, without creating anything: run them before the work
        that comes before ``create``, so a taken name fails at once, not after training."""
        check_out_dir(command, out_dir)
        if name is not None:
            check_run_name(command, name)
            path = Path(out_dir) / name
            if path.is_symlink() or (path.exists() and not path.is_dir()):
                raise ValueError(f"{command}: {path} exists and is not a run directory; choose another --name")
            if path.is_dir() and any(entry.name != LOCK_FILE for entry in path.iterdir()):
                raise ValueError(f"{command}: run directory {path} already exists; choose another --name"
                                 + (" or --resume it" if command == "train" else ""))

    @classmethod
    def create(cls, command: str, out_dir: str, name: str | None, default_prefix: str = "") -> RunDirectory:
        """Make and lock ``out_dir/name`` (default: a timestamp); refused if it holds anything."""
        cls.check_new(command, out_dir, name)
        stamp = default_prefix + time.strftime("%Y%m%d-%H%M%S")
        path = Path(out_dir) / (name or stamp)
        for attempt in range(2, 100):  # a default name taken in the same second gets a suffix
            if name is not None or not path.exists():
                break
            path = Path(out_dir) / f"{stamp}-{attempt}"
        if path.is_symlink() or (path.exists() and not path.is_dir()):
            raise ValueError(f"{command}: {path} exists and is not a run directory; choose another --name")
        path.mkdir(parents=True, exist_ok=True)
        folder = cls(path, command, created=True)
        folder._lock()
        if any(entry.name != LOCK_FILE for entry in path.iterdir()):
            folder.close()
            raise ValueError(f"{command}: run directory {path} already exists; choose another --name"
                             + (" or --resume it" if command == "train" else ""))
        return folder

    @classmethod
    def reopen(cls, command: str, path: str | Path) -> RunDirectory:
        """Lock an existing run directory to continue it: no symbolic links inside, stray
        temporary files removed."""
        path = Path(path)
        read_run_info(path)  # a run directory, before anything in it is locked or removed
        folder = cls(path, command, created=False)
        folder._lock()
        try:
            for directory in (path, path / CHECKPOINT_DIR):
                for entry in os.scandir(directory) if directory.is_dir() else ():
                    if entry.is_symlink():
                        raise ValueError(f"{command}: {entry.path} is a symbolic link; a run directory "
                                         "must hold its own files, not links to others")
                    if entry.name.startswith(".") and entry.name.endswith(".tmp") and entry.is_file():
                        os.unlink(entry.path)  # left by a write that was killed before its rename
        except BaseException:
            folder.close()
            raise
        return folder

    def _lock(self) -> None:
        import fcntl  # POSIX; the one platform-specific line of the package

        lock_path = self.path / LOCK_FILE
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
        except OSError as error:
            raise ValueError(f"{self.command}: cannot lock {lock_path} ({error.strerror})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise ValueError(f"{self.command}: run directory {self.path} is in use by process {holder}; "
                             "wait for it to finish or stop it") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode("ascii"))
        self._lock_fd = fd

    def close(self) -> None:
        if self.log is not None:
            self.log.close()
            self.log = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # the lock file stays; only the flock matters
            self._lock_fd = None

    def __enter__(self) -> RunDirectory:
        return self

    def __exit__(self, error_type, error, traceback) -> None:
        self.close()
        if error_type is not None and self.created and not self.committed:
            shutil.rmtree(self.path, ignore_errors=True)

    @contextlib.contextmanager
    def closed_on_error(self):
        """A block whose error leaves the directory as ``with self`` would (unlocked, and
        removed if this call made it), for the set-up done before the ``with``."""
        try:
            yield self
        except BaseException as error:
            self.__exit__(type(error), error, error.__traceback__)
            raise

    def write_info(self, info: dict) -> None:
        atomic_write_text(self.path / CONFIG_FILE, json.dumps({"format": RUN_FORMAT, **info}, indent=2,
                                                              allow_nan=False))

    def open_log(self, keep_through: int | None = None) -> RunLog:
        self.log = RunLog(self.path / LOG_FILE, keep_through)
        return self.log

    def save_checkpoint(self, model, optimizer=None, extra: dict | None = None) -> None:
        """checkpoint.save into ``checkpoint/``, refused if a parameter is not finite. The
        checkpoint records the SHA-256 of the run's fixed files (``FIXED_FILES``), so a
        tokenizer changed afterwards is detected when the run is loaded."""
        for name, value in model.state_dict().items():
            if not bool(np.isfinite(to_numpy(value)).all()):
                raise ValueError(f"{self.command}: parameter {name} holds NaN or infinite values; "
                                 "the checkpoint was not written")
        digests = {name: _sha256(self.path / name) for name in FIXED_FILES if (self.path / name).is_file()}
        checkpoint.save(self.path / CHECKPOINT_DIR, model, optimizer, {**(extra or {}), "files_sha256": digests})
        self.committed = True

    def has_checkpoint(self) -> bool:
        return (self.path / CHECKPOINT_DIR / checkpoint.ARRAYS_FILE).is_file()


class ReadOnlyRunDirectory:
    """A run directory that another process (rank 0 of a data-parallel run) writes: the other
    ranks read its checkpoint to resume, and their writes (log, checkpoint, config) do nothing."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def __enter__(self) -> ReadOnlyRunDirectory:
        return self

    def __exit__(self, *exc) -> None:
        pass

    @contextlib.contextmanager
    def closed_on_error(self):
        yield self

    def has_checkpoint(self) -> bool:
        return (self.path / CHECKPOINT_DIR / checkpoint.ARRAYS_FILE).is_file()

    def open_log(self, keep_through: int | None = None) -> _NoLog:
        return _NoLog()

    def write_info(self, info: dict) -> None:
        pass

    def save_checkpoint(self, model, optimizer=None, extra: dict | None = None) -> None:
        pass


class _NoLog:
    def write(self, record: dict) -> None:
        pass


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_run_files(run_dir: str | Path, extra: dict) -> None:
    """Raise if a fixed file of the run differs from the one its checkpoint was saved with
    (a tokenizer edited by hand would silently map ids to the wrong text)."""
    run_dir = Path(run_dir)
    for name, digest in (extra.get("files_sha256") or {}).items():
        path = run_dir / name
        if name not in FIXED_FILES or not path.is_file() or path.is_symlink() or _sha256(path) != digest:
            raise ValueError(f"{path} is missing or differs from the one the checkpoint in {run_dir} was saved "
                             "with; a run's files must not be edited")


class RunLog:
    """``log.jsonl``: one strict-JSON object per line, appended and flushed record by record.

    Opening it drops a torn last line and, with ``keep_through``, every record whose ``iter``
    is after that step (a resume redoes those steps and logs them again).
    """

    def __init__(self, path: Path, keep_through: int | None = None):
        self.path = path
        records, torn = read_log(path, strict=True) if path.exists() else ([], False)
        kept = [r for r in records if not (keep_through is not None and isinstance(r.get("iter"), int)
                                           and r["iter"] > keep_through)]
        if torn or len(kept) != len(records):
            atomic_write_text(path, "".join(_json_line(r) for r in kept))
        self.records = kept
        self._handle = open(path, "a", encoding="utf-8")

    def write(self, record: dict) -> None:
        self._handle.write(_json_line(record))
        self._handle.flush()
        self.records.append(record)

    def close(self) -> None:
        self._handle.close()


def _json_line(record: dict) -> str:
    return json.dumps(record, allow_nan=False) + "\n"


def read_log(path: Path, strict: bool = False) -> tuple[list[dict], bool]:
    """(records, whether the last line was torn). Only the last line can be torn (a write cut
    by a kill); with ``strict``, an unreadable line before it is an error naming the line."""
    from .files import parse_json, read_text

    lines = read_text(path, "run log", max_bytes=1 << 30).split("\n")
    torn = lines[-1] != ""  # every whole record ends with a newline
    records = []
    for number, line in enumerate(lines[:-1], start=1):
        try:
            record = parse_json(line, f"run log {path} line {number}")
        except ValueError:
            if strict:
                raise
            continue
        if not isinstance(record, dict):
            if strict:
                raise ValueError(f"run log {path} line {number}: expected a JSON object")
            continue
        records.append(record)
    return records, torn


# --- divergence and interruption ---------------------------------------------------------------

class DivergenceGuard:
    """Stops a run whose loss or gradient norm is not finite, or whose loss exceeds
    ``EXPLODED`` times the loss of a uniform guess (ln of the number of classes), a value no
    learning model reaches; with ``skip`` it skips a non-finite step instead and counts it,
    stopping after ``MAX_SKIPPED_IN_A_ROW``."""

    EXPLODED = 25.0
    MAX_SKIPPED_IN_A_ROW = 10

    def __init__(self, command: str, num_classes: int, hint: str, skip: bool = False):
        self.command, self.hint, self.skip = command, hint, skip
        self.loss_limit = self.EXPLODED * max(math.log(num_classes), 1.0)
        self.skipped = self.in_a_row = 0

    def allows(self, step: int, loss: float, grad_norm: float | None = None) -> bool:
        """True if step ``step`` may update the weights; False to skip it; raise to stop."""
        finite = math.isfinite(loss) and (grad_norm is None or math.isfinite(grad_norm))
        if finite and loss <= self.loss_limit:
            self.in_a_row = 0
            return True
        what = (f"the loss is {loss:.4g}" + (f" and the gradient norm {grad_norm:.4g}" if grad_norm is not None else ""))
        if finite:
            raise ValueError(f"{self.command}: training diverged at step {step}: {what}, above {self.loss_limit:.1f} "
                             f"(a uniform guess scores {self.loss_limit / self.EXPLODED:.2f}); {self.hint}")
        if self.skip and self.in_a_row < self.MAX_SKIPPED_IN_A_ROW:
            self.skipped += 1
            self.in_a_row += 1
            return False
        repeated = f" ({self.in_a_row} steps in a row skipped)" if self.skip else ""
        raise ValueError(f"{self.command}: training diverged at step {step}: {what}{repeated}; {self.hint}; "
                         "no checkpoint was written from it")

    def check_evaluation(self, step: int, losses: dict) -> None:
        bad = {split: value for split, value in losses.items() if not math.isfinite(value)}
        if bad:
            raise ValueError(f"{self.command}: training diverged at step {step}: the estimated loss is "
                             f"{bad}; {self.hint}; no checkpoint was written from it")


def global_grad_norm(params) -> float:
    """sqrt(sum over parameters of ||g||^2), what clipping measures: the divergence check's input
    when a run does not clip."""
    return math.sqrt(sum(squared_norm(p.grad) for p in params if p.grad is not None))


class StopFlag:
    """Set by Ctrl-C (SIGINT): a training loop finishes its step, checkpoints and returns.
    A second Ctrl-C stops at once (KeyboardInterrupt, which the CLI reports in one line)."""

    def __init__(self):
        self.requested = False

    def __enter__(self) -> StopFlag:
        self.previous = signal.getsignal(signal.SIGINT)
        signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc) -> None:
        signal.signal(signal.SIGINT, self.previous)
