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
import zipfile
from pathlib import Path

import numpy as np

from .atomic import atomic_write_bytes, atomic_write_text
from .backend import to_numpy

FORMAT_VERSION = 2  # 2: the config travels inside the .npz
ARRAYS_FILE = "checkpoint.npz"
CONFIG_FILE = "config.json"
CONFIG_MEMBER = "config.json"  # the .npz member that holds the config, as UTF-8 bytes


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


def _read_archive(directory) -> tuple[dict, dict[str, np.ndarray]]:
    """(config, arrays) of a checkpoint directory, checked for format version and integrity."""
    path = Path(directory) / ARRAYS_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"checkpoint: no {ARRAYS_FILE} in {directory}; expected a directory written by "
            "minitransformer.checkpoint.save"
        )
    try:
        with np.load(path, allow_pickle=False) as archive:
            # zip checks each member's CRC-32 as it is read: truncation and bit flips fail here
            arrays = {name: archive[name] for name in archive.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as error:
        raise ValueError(f"checkpoint: cannot read {path} ({error}): the file is truncated or corrupt") from None
    if CONFIG_MEMBER not in arrays:
        raise ValueError(
            f"checkpoint: {path} holds no {CONFIG_MEMBER}: it was not written by "
            f"minitransformer.checkpoint.save (format version {FORMAT_VERSION})"
        )
    try:
        config = json.loads(arrays.pop(CONFIG_MEMBER).tobytes().decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"checkpoint: the config inside {path} is not valid JSON ({error}); the file is corrupt") from None
    version = config.get("format_version")
    if version != FORMAT_VERSION:
        raise ValueError(
            f"checkpoint: {path} has format version {version!r}; this minitransformer reads "
            f"version {FORMAT_VERSION}"
        )
    if _arrays_digest(arrays) != config.get("arrays_sha256"):
        raise ValueError(
            f"checkpoint: the arrays in {path} do not match the checksum saved with them "
            "(checksum differs): the file is truncated or corrupt"
        )
    return config, arrays


def read_config(directory) -> dict:
    """The config a checkpoint directory was saved with (model, optimizer, ``extra``)."""
    return _read_archive(directory)[0]


def check_model_config(config: dict, model) -> None:
    """Raise if the checkpoint was made for a different architecture than ``model``'s."""
    if config.get("model") != type(model).__name__:
        raise ValueError(
            f"checkpoint: holds a {config.get('model')} but the model is a {type(model).__name__}"
        )
    saved, current = config.get("model_config"), _model_config(model)
    if saved is not None and current is not None and saved != current:
        differences = [f"{key}: checkpoint {saved.get(key)!r} vs model {current.get(key)!r}"
                       for key in sorted(set(saved) | set(current)) if saved.get(key) != current.get(key)]
        raise ValueError("checkpoint: the model's config does not match the checkpoint's: " + "; ".join(differences))


def load(directory, model, optimizer=None) -> dict:
    """Load a checkpoint into ``model`` (and ``optimizer``); return its ``extra`` dict."""
    config, arrays = _read_archive(directory)
    check_model_config(config, model)
    model.load_state_dict({name[len("model/"):]: value for name, value in arrays.items()
                           if name.startswith("model/")})
    if optimizer is not None:
        meta = config.get("optimizer")
        if meta is None:
            raise ValueError(f"checkpoint: {directory} has no optimizer state to load")
        if meta["type"] != type(optimizer).__name__:
            raise ValueError(f"checkpoint: optimizer state is for {meta['type']}, not {type(optimizer).__name__}")
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
