"""Downloading a model folder from the Hugging Face hub with the standard library alone.

A name such as ``gpt2`` or ``HuggingFaceTB/SmolLM2-135M`` is a repository on the hub. Its file
list comes from the hub's JSON API (``/api/models/NAME/revision/REV?blobs=true``: each file's
size, and a checksum: the SHA-256 of a large (LFS) file, the git blob SHA-1 of a small one), and
each file from ``/NAME/resolve/REV/FILE``, the URL the ``huggingface_hub`` client uses too.

Files land in ``cache_dir()/hub/OWNER--NAME/REV/``. A file is written as ``FILE.part`` and
renamed only once its size and checksum match, so a folder never holds half a file under its
real name; an interrupted download resumes from the ``.part`` with an HTTP ``Range`` request. A
folder that was completed once is used again without the network.

Environment: ``HF_ENDPOINT`` (another hub, or a mirror), ``HF_TOKEN`` (for gated models),
``HF_HUB_OFFLINE=1`` (never connect: only completed downloads are found).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from .atomic import atomic_write_text
from .data.corpus import cache_dir
from .files import read_json

DEFAULT_ENDPOINT = "https://huggingface.co"
REPO_NAME = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")
# the files a decoder folder needs (weights are added from the listing)
MODEL_FILES = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
               "special_tokens_map.json")
COMPLETE_MARKER = ".complete"
CHUNK_BYTES = 1 << 20
TIMEOUT_SECONDS = 30


def is_repo_name(name: str) -> bool:
    """Whether ``name`` reads as a hub repository ("gpt2", "owner/name") rather than a path."""
    return bool(REPO_NAME.match(name)) and ".." not in name


def endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", DEFAULT_ENDPOINT).rstrip("/")


def snapshot_dir(repo_id: str, revision: str = "main") -> Path:
    return cache_dir() / "hub" / repo_id.replace("/", "--") / revision


def _request(url: str, headers: dict | None = None):
    headers = dict(headers or {})
    if os.environ.get("HF_TOKEN"):
        headers["Authorization"] = f"Bearer {os.environ['HF_TOKEN']}"
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=TIMEOUT_SECONDS)


def _offline_error(repo_id: str, url: str, reason) -> OSError:
    return OSError(f"pretrained {repo_id!r}: cannot reach {url} ({reason}); connect to the network, or "
                   "pass a local folder of the model's files")


def list_files(repo_id: str, revision: str = "main") -> dict[str, dict]:
    """file name -> {"size": bytes or None, "sha256" or "git_sha1": hex or absent}, from the hub."""
    url = f"{endpoint()}/api/models/{repo_id}/revision/{urllib.parse.quote(revision, safe='')}?blobs=true"
    try:
        with _request(url) as response:
            listing = json.loads(response.read(16 << 20))
    except urllib.error.HTTPError as error:
        hint = " (a gated model needs HF_TOKEN)" if error.code in (401, 403) else ""
        raise OSError(f"pretrained {repo_id!r}: the hub answered {error.code} {error.reason} for "
                      f"{url}{hint}; is the name right?") from None
    except (urllib.error.URLError, OSError) as error:
        raise _offline_error(repo_id, url, getattr(error, "reason", error)) from None
    except ValueError:
        raise OSError(f"pretrained {repo_id!r}: {url} did not answer with JSON") from None
    files = {}
    for sibling in listing.get("siblings", []) if isinstance(listing, dict) else []:
        name, lfs = sibling.get("rfilename"), sibling.get("lfs") or {}
        if not isinstance(name, str):
            continue
        entry = {"size": lfs.get("size", sibling.get("size"))}
        if lfs.get("sha256"):
            entry["sha256"] = lfs["sha256"]
        elif sibling.get("blobId"):
            entry["git_sha1"] = sibling["blobId"]
        files[name] = entry
    return files


def _checksum(path: Path, entry: dict) -> tuple[str, str] | None:
    """(expected, actual) hex digests of the file, or None when the hub gave no checksum."""
    if "sha256" in entry:
        digest, expected = hashlib.sha256(), entry["sha256"]
    elif "git_sha1" in entry:  # git's blob id: sha1 of "blob <size>\0" + the bytes
        digest, expected = hashlib.sha1(f"blob {path.stat().st_size}\0".encode()), entry["git_sha1"]
    else:
        return None
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK_BYTES), b""):
            digest.update(block)
    return expected, digest.hexdigest()


def download_file(repo_id: str, filename: str, entry: dict, folder: Path, revision: str = "main",
                  out=None) -> Path:
    """One file of the repository into ``folder``, resumed from a ``.part`` left by an earlier
    try, checked against the hub's size and checksum before it takes its name."""
    target = folder / filename
    if target.is_file() and (entry.get("size") is None or target.stat().st_size == entry["size"]):
        return target
    if Path(filename).is_absolute() or ".." in Path(filename).parts:
        raise OSError(f"pretrained {repo_id!r}: the hub listed a file outside the folder: {filename!r}")
    part = target.with_name(target.name + ".part")
    part.parent.mkdir(parents=True, exist_ok=True)
    have = part.stat().st_size if part.is_file() else 0
    url = f"{endpoint()}/{repo_id}/resolve/{urllib.parse.quote(revision, safe='')}/{urllib.parse.quote(filename)}"
    size = entry.get("size")
    if size is None or have < size:
        try:
            with _request(url, {"Range": f"bytes={have}-"} if have else None) as response:
                resumed = have and response.status == 206
                if have and not resumed:
                    have = 0  # the server sent the whole file: start the .part again
                if out is not None:
                    total = f" of {size / 1e6:,.1f} MB" if size else ""
                    print(f"downloading {repo_id}/{filename}{total}" + (f", resuming at {have / 1e6:,.1f} MB"
                          if resumed else ""), file=out)
                with open(part, "ab" if resumed else "wb") as f:
                    for block in iter(lambda: response.read(CHUNK_BYTES), b""):
                        f.write(block)
        except urllib.error.HTTPError as error:
            raise OSError(f"pretrained {repo_id!r}: the hub answered {error.code} {error.reason} for {url}") from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
            kept = part.stat().st_size if part.is_file() else 0
            raise _offline_error(repo_id, url, f"{getattr(error, 'reason', error) or type(error).__name__}; "
                                 f"{kept:,} bytes kept, run again to resume") from None
    got = part.stat().st_size
    if size is not None and got != size:
        if got > size:
            part.unlink()
        raise OSError(f"pretrained {repo_id!r}: {filename} is {got} bytes after the download; the hub "
                      f"lists {size}" + ("; run again to resume" if got < size else ""))
    checked = _checksum(part, entry)
    if checked is not None and checked[0] != checked[1]:
        part.unlink()
        raise OSError(f"pretrained {repo_id!r}: {filename} has checksum {checked[1]}, the hub lists "
                      f"{checked[0]}; the download was corrupted and is deleted (run again)")
    os.replace(part, target)
    return target


def needed_files(repo_id: str, files: dict, folder: Path, revision: str, out=None) -> list[str]:
    """The files of a decoder folder: the config and tokenizer files present, and the weights:
    model.safetensors, or the index and every shard it names."""
    if "model.safetensors" in files:
        weights = ["model.safetensors"]
    elif "model.safetensors.index.json" in files:
        index = download_file(repo_id, "model.safetensors.index.json", files["model.safetensors.index.json"],
                              folder, revision, out)
        contents = read_json(index, f"pretrained {repo_id!r}", max_bytes=16 << 20)
        weight_map = contents.get("weight_map") if isinstance(contents, dict) else None
        if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
            raise OSError(f"pretrained {repo_id!r}: model.safetensors.index.json has no weight_map of shard names")
        weights = ["model.safetensors.index.json", *dict.fromkeys(weight_map.values())]
    else:
        raise OSError(f"pretrained {repo_id!r}: the repository has no model.safetensors (only safetensors "
                      "weights are loaded, never pickles)")
    if "config.json" not in files:
        raise OSError(f"pretrained {repo_id!r}: the repository has no config.json")
    unlisted = [name for name in weights if name not in files]
    if unlisted:
        raise OSError(f"pretrained {repo_id!r}: model.safetensors.index.json names {unlisted}, which the "
                      "repository does not have")
    return [name for name in MODEL_FILES if name in files] + weights


def download(repo_id: str, revision: str = "main", out=None) -> Path:
    """The local folder of a hub repository's decoder files, downloaded unless it was already."""
    if not is_repo_name(repo_id):
        raise ValueError(f"pretrained: {repo_id!r} is neither a folder nor a hub name like 'gpt2' or "
                         "'owner/name'")
    folder = snapshot_dir(repo_id, revision)
    if (folder / COMPLETE_MARKER).is_file():
        return folder
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", ""):
        raise OSError(f"pretrained {repo_id!r}: HF_HUB_OFFLINE is set and {folder} holds no completed "
                      "download; unset it, or pass a local folder")
    out = sys.stderr if out is None else out
    files = list_files(repo_id, revision)
    for name in needed_files(repo_id, files, folder, revision, out):
        download_file(repo_id, name, files[name], folder, revision, out)
    atomic_write_text(folder / COMPLETE_MARKER, "\n".join(sorted(files)) + "\n")
    return folder
