"""checkpoint.py: save and load reproduce a model and its optimizer exactly; a crash while
saving leaves the previous checkpoint whole; every way a checkpoint can be wrong is reported
in words."""

from __future__ import annotations

import io
import json
import os
import zipfile

import numpy as np
import pytest

import minitransformer as mt
from minitransformer import checkpoint, nn, optim

CONFIG = dict(block_size=8, vocab_size=11, n_layer=1, n_head=2, n_embd=8)


def gpt(**changes) -> nn.GPT:
    return nn.GPT(nn.GPTConfig(**{**CONFIG, **changes}))


def batch(seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 11, (2, 8)), rng.integers(0, 11, (2, 8))


def train(model, optimizer, steps, seed):
    for step in range(steps):
        idx, targets = batch(seed + step)
        _, loss = model(idx, targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def files(directory):
    return sorted(path.name for path in directory.iterdir())


def test_round_trip_reproduces_logits_exactly(tmp_path):
    model = gpt()
    idx, targets = batch()
    logits, loss = model(idx, targets)
    checkpoint.save(tmp_path / "ckpt", model, extra={"iter": 7})
    mt.manual_seed(123)  # a fresh model with different weights
    fresh = gpt()
    assert not np.array_equal(fresh(idx, targets)[0].numpy(), logits.numpy())
    extra = checkpoint.load(tmp_path / "ckpt", fresh)
    assert extra == {"iter": 7}
    new_logits, new_loss = fresh(idx, targets)
    np.testing.assert_array_equal(new_logits.numpy(), logits.numpy())
    assert new_loss.item() == loss.item()
    assert fresh.lm_head.weight is fresh.transformer.wte.weight  # still tied after loading


@pytest.mark.parametrize("make_optimizer", [
    lambda m: m.configure_optimizers(weight_decay=0.1, learning_rate=1e-2),
    lambda m: optim.SGD(m.parameters(), lr=0.1, momentum=0.9, nesterov=True),
])
def test_round_trip_with_optimizer_continues_training_identically(tmp_path, make_optimizer):
    model = gpt()
    optimizer = make_optimizer(model)
    train(model, optimizer, 2, seed=0)
    checkpoint.save(tmp_path, model, optimizer)
    train(model, optimizer, 3, seed=10)

    mt.manual_seed(5)
    resumed = gpt()
    resumed_optimizer = make_optimizer(resumed)
    checkpoint.load(tmp_path, resumed, resumed_optimizer)
    train(resumed, resumed_optimizer, 3, seed=10)
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(resumed.state_dict()[name], value, err_msg=name)


def test_files_on_disk_are_an_npz_and_a_readable_config(tmp_path):
    model = gpt()
    checkpoint.save(tmp_path, model)
    config = json.loads((tmp_path / checkpoint.CONFIG_FILE).read_text())
    assert config["model"] == "GPT" and config["model_config"]["n_embd"] == 8
    assert config["format_version"] == checkpoint.FORMAT_VERSION
    assert files(tmp_path) == ["checkpoint.npz", "config.json"]
    with np.load(tmp_path / "checkpoint.npz", allow_pickle=False) as archive:  # no pickles inside
        assert "model/transformer.wte.weight" in archive.files


@pytest.mark.parametrize("failing_call", [1, 2])
def test_a_crash_while_saving_leaves_one_whole_checkpoint(tmp_path, monkeypatch, failing_call):
    """os.replace is where each file is committed; make the first (checkpoint.npz) or the
    second (config.json) fail. Before the .npz is renamed the old checkpoint must be intact;
    after it, the new one is complete; never a mix, never a temporary file left behind."""
    old, idx, targets = gpt(), *batch()
    old_logits = old(idx, targets)[0].numpy()
    checkpoint.save(tmp_path, old, extra={"iter_num": 1})
    old_bytes = {name: (tmp_path / name).read_bytes() for name in files(tmp_path)}

    mt.manual_seed(99)
    new = gpt()
    new_logits = new(idx, targets)[0].numpy()
    real_replace = os.replace
    calls = []

    def crashing_replace(source, destination):
        calls.append(destination)
        if len(calls) == failing_call:
            raise OSError("simulated crash")
        return real_replace(source, destination)

    monkeypatch.setattr(os, "replace", crashing_replace)
    with pytest.raises(OSError, match="simulated crash"):
        checkpoint.save(tmp_path, new, extra={"iter_num": 2})
    monkeypatch.setattr(os, "replace", real_replace)

    assert files(tmp_path) == sorted(old_bytes)  # no temporary file left
    expected_logits, expected_iter = (old_logits, 1) if failing_call == 1 else (new_logits, 2)
    if failing_call == 1:
        assert {name: (tmp_path / name).read_bytes() for name in files(tmp_path)} == old_bytes
    mt.manual_seed(7)
    restored = gpt()
    assert checkpoint.load(tmp_path, restored) == {"iter_num": expected_iter}
    np.testing.assert_array_equal(restored(idx, targets)[0].numpy(), expected_logits)


def test_saving_again_replaces_the_checkpoint_and_leaves_no_stale_files(tmp_path):
    first, second = gpt(), gpt()
    checkpoint.save(tmp_path, first)
    checkpoint.save(tmp_path, second)
    assert files(tmp_path) == ["checkpoint.npz", "config.json"]
    loaded = gpt()
    checkpoint.load(tmp_path, loaded)
    np.testing.assert_array_equal(loaded.transformer.wte.weight.numpy(), second.transformer.wte.weight.numpy())


def test_missing_directory_or_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"checkpoint: no checkpoint.npz in .*nowhere.*checkpoint.save"):
        checkpoint.load(tmp_path / "nowhere", gpt())
    checkpoint.save(tmp_path, gpt())
    (tmp_path / checkpoint.ARRAYS_FILE).unlink()
    with pytest.raises(FileNotFoundError, match=r"checkpoint: no checkpoint.npz in"):
        checkpoint.load(tmp_path, gpt())


def rewrite_archive(directory, change):
    """Rewrite checkpoint.npz as a valid zip whose members went through ``change(dict)``."""
    path = directory / checkpoint.ARRAYS_FILE
    with np.load(path, allow_pickle=False) as archive:
        members = {name: archive[name] for name in archive.files}
    change(members)
    np.savez(path, **members)


def test_truncated_or_corrupt_arrays_are_refused(tmp_path):
    checkpoint.save(tmp_path, gpt())
    path = tmp_path / checkpoint.ARRAYS_FILE
    payload = path.read_bytes()
    path.write_bytes(payload[: len(payload) // 2])
    with pytest.raises(ValueError, match=r"checkpoint: cannot read .*checkpoint.npz.*truncated or corrupt"):
        checkpoint.load(tmp_path, gpt())
    for position in (len(payload) // 3, len(payload) // 2, len(payload) - 40):
        corrupt = bytearray(payload)
        corrupt[position] ^= 0xFF
        path.write_bytes(bytes(corrupt))
        with pytest.raises(ValueError, match="truncated or corrupt"):
            checkpoint.load(tmp_path, gpt())


def test_arrays_that_differ_from_the_saved_checksum_are_refused(tmp_path):
    checkpoint.save(tmp_path, gpt())

    def change(members):
        members["model/transformer.ln_f.bias"] = members["model/transformer.ln_f.bias"] + 1

    rewrite_archive(tmp_path, change)  # a well-formed zip with intact CRCs, but other numbers
    with pytest.raises(ValueError, match=r"do not match the checksum saved with them \(checksum differs\)"):
        checkpoint.load(tmp_path, gpt())


def test_foreign_archive_or_config_is_reported(tmp_path):
    checkpoint.save(tmp_path, gpt())

    def change_version(members):
        config = json.loads(members[checkpoint.CONFIG_MEMBER].tobytes())
        config["format_version"] = 99
        members[checkpoint.CONFIG_MEMBER] = np.frombuffer(json.dumps(config).encode(), dtype=np.uint8)

    rewrite_archive(tmp_path, change_version)
    with pytest.raises(ValueError, match="has format version 99; this minitransformer reads version 2"):
        checkpoint.load(tmp_path, gpt())
    rewrite_archive(tmp_path, lambda members: members.update({checkpoint.CONFIG_MEMBER: np.frombuffer(b"{not json", dtype=np.uint8)}))
    with pytest.raises(ValueError, match="the config inside .* is not valid JSON"):
        checkpoint.read_config(tmp_path)
    rewrite_archive(tmp_path, lambda members: members.pop(checkpoint.CONFIG_MEMBER))
    with pytest.raises(ValueError, match="holds no config.json: it was not written by"):
        checkpoint.load(tmp_path, gpt())


def test_config_json_is_a_copy_that_loading_does_not_need(tmp_path):
    model = gpt()
    checkpoint.save(tmp_path, model, extra={"iter_num": 3})
    config = json.loads((tmp_path / checkpoint.CONFIG_FILE).read_text())
    assert config == checkpoint.read_config(tmp_path)
    (tmp_path / checkpoint.CONFIG_FILE).unlink()
    assert checkpoint.read_config(tmp_path)["extra"] == {"iter_num": 3}
    fresh = gpt()
    checkpoint.load(tmp_path, fresh)
    np.testing.assert_array_equal(fresh.transformer.wpe.weight.numpy(), model.transformer.wpe.weight.numpy())


def test_config_that_does_not_match_the_model_is_reported_before_loading(tmp_path):
    checkpoint.save(tmp_path, gpt())
    other = gpt(n_embd=16, n_layer=2)
    before = other.transformer.wte.weight.numpy().copy()
    with pytest.raises(ValueError, match=r"config does not match.*n_embd: checkpoint 8 vs model 16.*n_layer: checkpoint 1 vs model 2"):
        checkpoint.load(tmp_path, other)
    np.testing.assert_array_equal(other.transformer.wte.weight.numpy(), before)
    with pytest.raises(ValueError, match="checkpoint: holds a GPT but the model is a Linear"):
        checkpoint.load(tmp_path, nn.Linear(2, 2))


def test_optimizer_of_another_type_or_none_saved_is_reported(tmp_path):
    model = gpt()
    optimizer = optim.AdamW(model.parameters(), lr=1e-3)
    train(model, optimizer, 1, seed=0)
    checkpoint.save(tmp_path / "with", model, optimizer)
    with pytest.raises(ValueError, match="checkpoint: optimizer state is for AdamW, not SGD"):
        checkpoint.load(tmp_path / "with", gpt(), optim.SGD(gpt().parameters(), lr=0.1))
    checkpoint.save(tmp_path / "without", model)
    with pytest.raises(ValueError, match="has no optimizer state to load"):
        checkpoint.load(tmp_path / "without", gpt(), optim.AdamW(gpt().parameters()))


def test_plain_modules_round_trip_too(tmp_path):
    model = nn.Sequential(nn.Linear(3, 2), nn.ReLU(), nn.Linear(2, 1))
    checkpoint.save(tmp_path, model)
    fresh = nn.Sequential(nn.Linear(3, 2), nn.ReLU(), nn.Linear(2, 1))
    checkpoint.load(tmp_path, fresh)
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(fresh.state_dict()[name], value)


def _rewrite_archive(path, change):
    """Rebuild the checkpoint's zip with ``change(name, data) -> (name, data, compression)``."""
    with zipfile.ZipFile(path) as archive:
        members = [(info.filename, archive.read(info)) for info in archive.infolist()]
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members:
            name, data, compression = change(name, data)
            archive.writestr(name, data, compress_type=compression)


def test_a_member_claiming_a_huge_shape_is_refused_before_allocating(tmp_path):
    checkpoint.save(tmp_path, gpt())
    path = tmp_path / checkpoint.ARRAYS_FILE

    def huge(name, data):
        if name == "model/transformer.wte.weight.npy":  # same bytes, a header claiming 4 TiB
            header = io.BytesIO()
            np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False,
                                                          "shape": (1 << 40,)})
            data = header.getvalue() + data[data.index(b"\n") + 1:]
        return name, data, zipfile.ZIP_STORED

    _rewrite_archive(path, huge)
    with pytest.raises(ValueError, match=r"claims shape \(1099511627776,\).*the file is corrupt"):
        checkpoint.load(tmp_path, gpt())


def test_a_deflated_member_is_refused_without_inflating_it(tmp_path):
    checkpoint.save(tmp_path, gpt())
    path = tmp_path / checkpoint.ARRAYS_FILE
    _rewrite_archive(path, lambda name, data: (name, data, zipfile.ZIP_DEFLATED))  # a zip bomb's trick
    with pytest.raises(ValueError, match="is compressed .*writes uncompressed members"):
        checkpoint.load(tmp_path, gpt())


def test_a_member_with_an_unknown_compression_method_names_the_file(tmp_path):
    checkpoint.save(tmp_path, gpt())
    path = tmp_path / checkpoint.ARRAYS_FILE
    data = bytearray(path.read_bytes())
    central = data.rindex(b"PK\x01\x02")  # the last member's central-directory entry
    data[central + 10:central + 12] = (99).to_bytes(2, "little")  # compression method 99
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=f"checkpoint: .*{checkpoint.ARRAYS_FILE}"):
        checkpoint.load(tmp_path, gpt())


def test_read_config_without_verifying_reads_only_the_config(tmp_path):
    checkpoint.save(tmp_path, gpt(), extra={"iter_num": 7})
    assert checkpoint.read_config(tmp_path, verify=False)["extra"] == {"iter_num": 7}
