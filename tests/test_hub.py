"""The hub downloader against a hub imitated on 127.0.0.1 (never the real network): file list
and checksums from the API, resume after a cut connection, a corrupted file refused, the cache
used offline, and one-line errors."""

from __future__ import annotations

import hashlib
import http.server
import json
import threading

import numpy as np
import pytest

from minitransformer import hub
from minitransformer.safetensors import save_file

REPO = "tiny-org/tiny-model"


class FakeHub(http.server.BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}
    sha256_override: dict[str, str] = {}
    cut_after: dict[str, int] = {}  # file -> bytes sent before the connection drops (once)
    ranges: list[str] = []

    def log_message(self, *args):  # quiet
        pass

    def do_GET(self):
        if self.path.startswith(f"/api/models/{REPO}/revision/main"):
            siblings = []
            for name, data in self.files.items():
                if name.endswith(".safetensors"):  # LFS files: size and sha256
                    sha = self.sha256_override.get(name, hashlib.sha256(data).hexdigest())
                    siblings.append({"rfilename": name, "lfs": {"size": len(data), "sha256": sha}})
                else:  # small files: the git blob id
                    blob = hashlib.sha1(f"blob {len(data)}\0".encode() + data).hexdigest()
                    siblings.append({"rfilename": name, "size": len(data), "blobId": blob})
            return self._send(200, json.dumps({"siblings": siblings}).encode())
        prefix = f"/{REPO}/resolve/main/"
        name = self.path[len(prefix):] if self.path.startswith(prefix) else None
        if name not in self.files:
            return self._send(404, b"not found")
        data, start = self.files[name], 0
        if self.headers.get("Range"):
            self.ranges.append(self.headers["Range"])
            start = int(self.headers["Range"].removeprefix("bytes=").rstrip("-"))
        body = data[start:]
        self.send_response(206 if start else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        cut = self.cut_after.pop(name, None)
        self.wfile.write(body if cut is None else body[:cut])
        if cut is not None:
            self.close_connection = True

    def _send(self, code, body):
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def fake_hub(tmp_path, monkeypatch):
    weights = tmp_path / "w.safetensors"
    save_file({"w": np.arange(50_000, dtype=np.float32)}, weights)
    FakeHub.files = {"config.json": b'{"model_type": "llama"}', "tokenizer.json": b"{}",
                     "model.safetensors": weights.read_bytes(), "README.md": b"not needed"}
    FakeHub.sha256_override, FakeHub.cut_after, FakeHub.ranges = {}, {}, []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeHub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.setenv("MINITRANSFORMER_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    yield FakeHub
    server.shutdown()
    server.server_close()


def test_downloads_the_model_files_and_reuses_them_offline(fake_hub, monkeypatch):
    folder = hub.download(REPO, out=open("/dev/null", "w"))
    assert sorted(p.name for p in folder.iterdir()) == [".complete", "config.json", "model.safetensors",
                                                       "tokenizer.json"]
    assert (folder / "model.safetensors").read_bytes() == fake_hub.files["model.safetensors"]
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    assert hub.download(REPO) == folder  # the completed folder needs no network


def test_a_cut_download_resumes_with_a_range_request(fake_hub):
    fake_hub.cut_after["model.safetensors"] = 70_000
    with pytest.raises(OSError, match="is 70000 bytes after the download; the hub lists 200072; run again to resume"):
        hub.download(REPO, out=open("/dev/null", "w"))
    folder = hub.snapshot_dir(REPO)
    assert not (folder / "model.safetensors").exists()
    assert (folder / "model.safetensors.part").stat().st_size == 70_000
    hub.download(REPO, out=open("/dev/null", "w"))
    assert fake_hub.ranges == ["bytes=70000-"]
    assert (folder / "model.safetensors").read_bytes() == fake_hub.files["model.safetensors"]


def test_a_checksum_mismatch_is_refused_and_nothing_kept(fake_hub):
    fake_hub.sha256_override["model.safetensors"] = "0" * 64
    with pytest.raises(OSError, match="model.safetensors has checksum [0-9a-f]{64}, the hub lists 0{64}"):
        hub.download(REPO, out=open("/dev/null", "w"))
    folder = hub.snapshot_dir(REPO)
    assert not (folder / "model.safetensors").exists() and not (folder / "model.safetensors.part").exists()
    assert not (folder / ".complete").exists()


def test_offline_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("MINITRANSFORMER_CACHE", str(tmp_path))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with pytest.raises(OSError, match=r"pretrained 'gpt2': cannot reach http://127.0.0.1:9/api/models/gpt2.*"
                                      "connect to the network, or pass a local folder"):
        hub.download("gpt2")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OSError, match="HF_HUB_OFFLINE is set"):
        hub.download("gpt2")


def test_unknown_repository_and_bad_names(fake_hub):
    with pytest.raises(OSError, match="the hub answered 404"):
        hub.download("nobody/nothing")
    with pytest.raises(ValueError, match="neither a folder nor a hub name"):
        hub.download("../etc")
    assert hub.is_repo_name("HuggingFaceTB/SmolLM2-135M") and hub.is_repo_name("gpt2")
    assert not hub.is_repo_name("a/b/c") and not hub.is_repo_name("/abs/path")


def test_load_lm_fetches_a_hub_name_then_works_offline(fake_hub, tmp_path, monkeypatch):
    from minitransformer.pretrained import load_lm
    from tests.tiny_pretrained import write_tiny_chat_model

    source = write_tiny_chat_model(tmp_path / "source")
    fake_hub.files = {path.name: path.read_bytes() for path in source.iterdir()}
    lm = load_lm(REPO, out=open("/dev/null", "w"))
    assert lm.directory == hub.snapshot_dir(REPO)
    assert lm.tokenizer.encode("hi") == [ord("h"), ord("i")] and lm.chat_template is not None
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert load_lm(REPO).directory == lm.directory


def test_a_sharded_model_brings_its_index_and_every_shard(fake_hub, tmp_path):
    for shard in ("model-1.safetensors", "model-2.safetensors"):
        save_file({shard: np.ones(3, np.float32)}, tmp_path / shard)
    index = {"weight_map": {"model-1.safetensors": "model-1.safetensors", "model-2.safetensors": "model-2.safetensors"}}
    fake_hub.files = {"config.json": b"{}", "model.safetensors.index.json": json.dumps(index).encode(),
                      **{name: (tmp_path / name).read_bytes() for name in index["weight_map"]},
                      "model-3.safetensors": b"an unlisted shard is not fetched"}
    folder = hub.download(REPO, out=open("/dev/null", "w"))
    assert sorted(p.name for p in folder.iterdir()) == [".complete", "config.json", "model-1.safetensors",
                                                       "model-2.safetensors", "model.safetensors.index.json"]
