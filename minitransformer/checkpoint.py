"""Checkpoints: a model's (and optimizer's) arrays in ``checkpoint.npz`` beside ``config.json``.

A save must leave the old checkpoint or the new one, never a mix, even if the process dies
half-way. One rename replaces one file, so everything a load needs goes into the one ``.npz``:
the arrays and, as its member ``config.json``, the config (model type and settings, optimizer
type and groups, ``extra``, and the SHA-256 of the arrays). The ``.npz`` is written to a
temporary name and renamed into place; that rename is the commit. ``config.json`` beside it is a
copy for people and tools, written after the commit; loading never reads it, so a crash between
the two renames still leaves one whole, consistent checkpoint. Arrays are read with
``allow_pickle=False``: loading a checkpoint never runs code from it.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import zipfile
from pathlib import Path

import numpy as np

from .atomic import atomic_write_bytes, atomic_write_text
from .backend import to_numpy

FORMAT_VERSION = 2  # 2: the config travels inside the .npz
ARRAYS_FILE = "checkpoint.npz"
CONFIG_FILE = "config.json"
CONFIG_MEMBER = "config.json"  # the .npz member that holds the config, as UTF-8 bytes


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded; the message names the file and what is wrong."""


def _model_config(model) -> dict | None:
    config = getattr(model, "config", None)
    return config.to_dict() if hasattr(config, "to_dict") else None


def save(directory, model, optimizer=None, extra: dict | None = None) -> Path:
    """Save ``model`` (and ``optimizer``, and JSON-able ``extra``) into ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {f"model/{name}": to_numpy(value) for name, value in model.state_dict().items()}
    optimizer_meta = None
    if optimizer is not None:
        state = optimizer.state_dict()
        scalars = {}
        for index, entry in state["state"].items():
            for name, value in entry.items():
                if isinstance(value, np.ndarray):
                    arrays[f"optimizer/{index}/{name}"] = value
                else:
                    scalars[f"{index}/{name}"] = value
        optimizer_meta = {"type": type(optimizer).__name__, "param_groups": state["param_groups"],
                          "scalars": scalars}
    config = {
        "format_version": FORMAT_VERSION,
        "model": type(model).__name__,
        "model_config": _model_config(model),
        "optimizer": optimizer_meta,
        "extra": extra or {},
        "arrays_sha256": _arrays_digest(arrays),
    }
    text = json.dumps(config, indent=2, default=_json_default)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays, **{CONFIG_MEMBER: np.frombuffer(text.encode("utf-8"), dtype=np.uint8)})
    atomic_write_bytes(directory / ARRAYS_FILE, buffer.getvalue())  # the commit
    atomic_write_text(directory / CONFIG_FILE, text)  # the readable copy
    return directory


def _json_default(value):
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"checkpoint: cannot store {type(value).__name__} in config.json")


def _arrays_digest(arrays: dict) -> str:
    """SHA-256 over every array's name, dtype, shape and bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}|{array.dtype.str}|{array.shape}|".encode("utf-8"))
        digest.update(array.tobytes())
    return digest.hexdigest()


def _archive_path(directory) -> Path:
    path = Path(directory) / ARRAYS_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"checkpoint: no {ARRAYS_FILE} in {directory}; expected a directory written by "
            "minitransformer.checkpoint.save"
        )
    return path


def _check_members(path: Path, archive: zipfile.ZipFile) -> None:
    """Check each member before reading its data, so a hostile or damaged file is refused
    before it can make us allocate: ``save`` stores members uncompressed (so nothing inflates
    beyond the file's own size), and each .npy header's dtype and shape must account for
    exactly the member's bytes (a header claiming shape (2**40,) is refused, not allocated)."""
    for info in archive.infolist():
        where = f"checkpoint: {path} member {info.filename!r}"
        if info.compress_type != zipfile.ZIP_STORED:
            raise CheckpointError(f"{where} is compressed (zip method {info.compress_type}); checkpoint.save "
                             "writes uncompressed members, so the file is corrupt or foreign")
        with archive.open(info) as member:
            version = np.lib.format.read_magic(member)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            shape, _, dtype = read_header(member)
            header_bytes = member.tell()
        if dtype.hasobject:
            raise CheckpointError(f"{where} holds Python objects (dtype {dtype}); expected numbers")
        if math.prod(shape) * dtype.itemsize != info.file_size - header_bytes:
            raise CheckpointError(f"{where} claims shape {shape} of {dtype} ({math.prod(shape) * dtype.itemsize:,} bytes) "
                             f"but holds {info.file_size - header_bytes:,} bytes: the file is corrupt")


def _open_archive(path: Path, read):
    """``read(zip archive)`` after ``_check_members``; every way a damaged file can fail
    becomes one ValueError naming it."""
    try:
        with zipfile.ZipFile(path) as archive:
            _check_members(path, archive)
            return read(archive)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError, NotImplementedError,
            KeyError, UnicodeDecodeError) as error:
        if isinstance(error, CheckpointError):
            raise
        raise CheckpointError(f"checkpoint: cannot read {path} ({type(error).__name__}: {error}): the file is "
                         "truncated or corrupt") from None


def _read_member(archive: zipfile.ZipFile, name: str) -> np.ndarray:
    # zip checks each member's CRC-32 as it is read: truncation and bit flips fail here
    with archive.open(name + ".npy") as member:
        return np.lib.format.read_array(member, allow_pickle=False)


def _parse_config(path: Path, raw: np.ndarray) -> dict:
    try:
        config = json.loads(raw.tobytes().decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as error:
        raise CheckpointError(f"checkpoint: the config inside {path} is not valid JSON ({error}); the file is corrupt") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"checkpoint: the config inside {path} is not a JSON object; the file is corrupt")
    version = config.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint: {path} has format version {version!r}; this minitransformer reads "
            f"version {FORMAT_VERSION}"
        )
    if not isinstance(config.get("extra", {}), dict):
        raise CheckpointError(f"checkpoint: the config inside {path} has a malformed 'extra'; the file is corrupt")
    return config


def _read_archive(directory) -> tuple[dict, dict[str, np.ndarray]]:
    """(config, arrays) of a checkpoint directory, checked for format version and integrity."""
    path = _archive_path(directory)

    def read(archive):
        names = [name[:-len(".npy")] for name in archive.namelist() if name.endswith(".npy")]
        if CONFIG_MEMBER not in names:
            raise CheckpointError(
                f"checkpoint: {path} holds no {CONFIG_MEMBER}: it was not written by "
                f"minitransformer.checkpoint.save (format version {FORMAT_VERSION})"
            )
        return {name: _read_member(archive, name) for name in names}

    arrays = _open_archive(path, read)
    config = _parse_config(path, arrays.pop(CONFIG_MEMBER))
    if _arrays_digest(arrays) != config.get("arrays_sha256"):
        raise CheckpointError(
            f"checkpoint: the arrays in {path} do not match the checksum saved with them "
            "(checksum differs): the file is truncated or corrupt"
        )
    return config, arrays


def read_config(directory, verify: bool = True) -> dict:
    """The config a checkpoint directory was saved with (model, optimizer, ``extra``).
    ``verify=False`` reads only the config member, skipping the arrays' checksum: a quick look
    before a full ``load``, which verifies everything."""
    if verify:
        return _read_archive(directory)[0]
    path = _archive_path(directory)

    def read(archive):
        if CONFIG_MEMBER + ".npy" not in archive.namelist():
            raise CheckpointError(f"checkpoint: {path} holds no {CONFIG_MEMBER}: it was not written by "
                             f"minitransformer.checkpoint.save (format version {FORMAT_VERSION})")
        return _read_member(archive, CONFIG_MEMBER)

    return _parse_config(path, _open_archive(path, read))


def check_model_config(config: dict, model) -> None:
    """Raise if the checkpoint was made for a different architecture than ``model``'s."""
    if config.get("model") != type(model).__name__:
        raise CheckpointError(
            f"checkpoint: holds a {config.get('model')} but the model is a {type(model).__name__}"
        )
    saved, current = config.get("model_config"), _model_config(model)
    if saved is not None and current is not None and saved != current:
        differences = [f"{key}: checkpoint {saved.get(key)!r} vs model {current.get(key)!r}"
                       for key in sorted(set(saved) | set(current)) if saved.get(key) != current.get(key)]
        raise CheckpointError("checkpoint: the model's config does not match the checkpoint's: " + "; ".join(differences))


def load(directory, model, optimizer=None) -> dict:
    """Load a checkpoint into ``model`` (and ``optimizer``); return its ``extra`` dict."""
    config, arrays = _read_archive(directory)
    check_model_config(config, model)
    model.load_state_dict({name[len("model/"):]: value for name, value in arrays.items()
                           if name.startswith("model/")})
    if optimizer is not None:
        meta = config.get("optimizer")
        if meta is None:
            raise CheckpointError(f"checkpoint: {directory} has no optimizer state to load")
        if meta["type"] != type(optimizer).__name__:
            raise CheckpointError(f"checkpoint: optimizer state is for {meta['type']}, not {type(optimizer).__name__}")
        state: dict[int, dict] = {}
        for name, value in arrays.items():
            if name.startswith("optimizer/"):
                _, index, key = name.split("/", 2)
                state.setdefault(int(index), {})[key] = value
        for name, value in meta["scalars"].items():
            index, key = name.split("/", 1)
            state.setdefault(int(index), {})[key] = value
        groups = [{**group, "betas": tuple(group["betas"])} if "betas" in group else group
                  for group in meta["param_groups"]]
        optimizer.load_state_dict({"state": state, "param_groups": groups})
    return config.get("extra", {})
