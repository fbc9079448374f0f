"""Checkpoints: a model's (and optimizer's) arrays in ``checkpoint.npz`` beside ``config.json``.

Both files are written to temporary names and renamed into place (a rename is atomic), and
``config.json`` records the SHA-256 of the ``.npz`` it belongs to, so a crash mid-save never
leaves a checkpoint that loads half-written or mismatched. Arrays are read with
``allow_pickle=False``: loading a checkpoint never runs code from it.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from .backend import to_numpy

FORMAT_VERSION = 1
ARRAYS_FILE = "checkpoint.npz"
CONFIG_FILE = "config.json"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half."""
    path = Path(path)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


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
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    payload = buffer.getvalue()
    config = {
        "format_version": FORMAT_VERSION,
        "model": type(model).__name__,
        "model_config": _model_config(model),
        "optimizer": optimizer_meta,
        "extra": extra or {},
        "arrays_sha256": hashlib.sha256(payload).hexdigest(),
    }
    atomic_write_bytes(directory / ARRAYS_FILE, payload)
    atomic_write_text(directory / CONFIG_FILE, json.dumps(config, indent=2, default=_json_default))
    return directory


def _json_default(value):
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"checkpoint: cannot store {type(value).__name__} in config.json")


def read_config(directory) -> dict:
    """config.json of a checkpoint directory, checked for presence and format version."""
    path = Path(directory) / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"checkpoint: no {CONFIG_FILE} in {directory}; expected a directory written by "
            "minitransformer.checkpoint.save"
        )
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"checkpoint: {path} is not valid JSON ({error}); the file is corrupt") from None
    version = config.get("format_version")
    if version != FORMAT_VERSION:
        raise ValueError(
            f"checkpoint: {path} has format version {version!r}; this minitransformer reads "
            f"version {FORMAT_VERSION}"
        )
    return config


def _read_arrays(directory, config: dict) -> dict[str, np.ndarray]:
    path = Path(directory) / ARRAYS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint: no {ARRAYS_FILE} in {directory}")
    payload = path.read_bytes()
    if hashlib.sha256(payload).hexdigest() != config.get("arrays_sha256"):
        raise ValueError(
            f"checkpoint: {path} does not match its {CONFIG_FILE} (checksum differs): the file is "
            "truncated, corrupt, or from another save"
        )
    try:
        with np.load(io.BytesIO(payload), allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except (zipfile.BadZipFile, ValueError, OSError) as error:
        raise ValueError(f"checkpoint: cannot read {path}: {error}") from None


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
    config = read_config(directory)
    check_model_config(config, model)
    arrays = _read_arrays(directory, config)
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
