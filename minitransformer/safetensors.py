"""Reading and writing the safetensors format with NumPy alone (no pickle, no PyTorch).

A ``.safetensors`` file is three parts, one after the other:

    [8 bytes]   n, the header's length: an unsigned 64-bit little-endian integer
    [n bytes]   a JSON object: name -> {"dtype": "F32", "shape": [2, 3], "data_offsets": [b, e]},
                plus an optional "__metadata__": {str: str}
    [the rest]  the data buffer; tensor ``name`` is bytes b..e of it, row-major, little-endian

Unlike a pickle, nothing in the file is executed: the header is plain JSON and the data is raw
numbers, so a file from anywhere is safe to open. Because the layout is fixed, a tensor can be
a view into a memory map of the file: loading a 90 MB checkpoint reads only the header until a
tensor's values are used.

    tensors = load_file("model.safetensors")         # name -> np.ndarray (read-only views)
    save_file({"w": np.zeros((2, 3))}, "out.safetensors")
"""

from __future__ import annotations

import json
import math
import mmap as mmap_module
import os
import struct
from pathlib import Path

import numpy as np

from . import backend
from .atomic import atomic_open
from .files import check_regular_file, parse_json

# dtype name in the header -> NumPy dtype of the stored bytes (explicitly little-endian).
# NumPy has no bfloat16: BF16 is read as raw 16-bit words and widened to float32 (see _bf16).
DTYPES = {
    "F64": np.dtype("<f8"), "F32": np.dtype("<f4"), "F16": np.dtype("<f2"), "BF16": np.dtype("<u2"),
    "I64": np.dtype("<i8"), "I32": np.dtype("<i4"), "I16": np.dtype("<i2"), "I8": np.dtype("i1"),
    "U64": np.dtype("<u8"), "U32": np.dtype("<u4"), "U16": np.dtype("<u2"), "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}
_NAMES = {dtype: name for name, dtype in DTYPES.items() if name != "BF16"}
MAX_HEADER_BYTES = 100_000_000  # the reference implementation's limit: a larger header is an error


def read_header(path: str | os.PathLike) -> tuple[dict, dict, int]:
    """(tensor entries, metadata, offset of the data buffer) of a file, validated.

    Checks, each failing with a ValueError that names the file (and the tensor): the header fits
    in the file and is a JSON object; every entry has a known dtype, a shape of non-negative
    ints and data_offsets [begin, end] with end - begin = prod(shape) * itemsize; the tensors
    tile the data buffer in order, without gaps or overlaps, up to its last byte.
    """
    path = Path(path)
    file_size = check_regular_file(path, "safetensors", "a .safetensors file").st_size
    with open(path, "rb") as f:
        prefix = f.read(8)
        if len(prefix) < 8:
            raise ValueError(f"safetensors {path}: file is {file_size} bytes, too short for the "
                             "8-byte header length")
        (header_len,) = struct.unpack("<Q", prefix)
        if header_len > min(file_size - 8, MAX_HEADER_BYTES):
            raise ValueError(f"safetensors {path}: header length {header_len} does not fit in the "
                             f"file ({file_size} bytes, so at most {file_size - 8}); is the file "
                             "truncated or not safetensors?")
        raw = f.read(header_len)
    try:
        header = parse_json(raw.decode("utf-8"), f"safetensors {path}: header")  # a name given twice is refused
    except UnicodeDecodeError as error:
        raise ValueError(f"safetensors {path}: header is not valid UTF-8 ({error})") from None
    if not isinstance(header, dict):
        raise ValueError(f"safetensors {path}: header is a JSON {type(header).__name__}; "
                         "expected an object mapping tensor names to entries")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise ValueError(f"safetensors {path}: __metadata__ must map strings to strings, "
                         f"got {metadata!r}")
    data_start = 8 + header_len
    for name, entry in header.items():
        _check_entry(path, name, entry)
    _check_tiling(path, header, file_size - data_start)
    return header, metadata, data_start


def _check_entry(path: Path, name: str, entry) -> None:
    where = f"safetensors {path}: tensor {name!r}"
    if not isinstance(entry, dict) or not {"dtype", "shape", "data_offsets"} <= entry.keys():
        raise ValueError(f"{where}: entry {entry!r} needs keys dtype, shape and data_offsets")
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if not isinstance(dtype, str) or dtype not in DTYPES:
        raise ValueError(f"{where}: unknown dtype {dtype!r}; expected one of {sorted(DTYPES)}")
    if not isinstance(shape, list) or not all(_is_count(n) for n in shape):
        raise ValueError(f"{where}: shape {shape!r} must be a list of non-negative integers")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_count(n) for n in offsets)
            and offsets[0] <= offsets[1]):
        raise ValueError(f"{where}: data_offsets {offsets!r} must be [begin, end] with "
                         "0 <= begin <= end")
    expected = math.prod(shape) * DTYPES[dtype].itemsize
    if offsets[1] - offsets[0] != expected:
        raise ValueError(f"{where}: data_offsets {offsets} span {offsets[1] - offsets[0]} bytes; "
                         f"expected {expected} for dtype {dtype} and shape {tuple(shape)}")


def _is_count(n) -> bool:
    return isinstance(n, int) and not isinstance(n, bool) and n >= 0


def _check_tiling(path: Path, header: dict, data_size: int) -> None:
    """Sorted by begin, each tensor starts where the previous ended: no gap, no overlap."""
    position = 0
    for name, entry in sorted(header.items(), key=lambda item: tuple(item[1]["data_offsets"])):
        begin, end = entry["data_offsets"]
        if begin != position:
            raise ValueError(f"safetensors {path}: tensor {name!r} has data_offsets [{begin}, {end}] "
                             f"but the previous tensor ends at {position}; expected offsets "
                             "that tile the buffer in order without gaps or overlaps")
        position = end
    if position != data_size:
        raise ValueError(f"safetensors {path}: tensors end at byte {position} of the data buffer "
                         f"but it holds {data_size} bytes; the file is truncated or has trailing "
                         "bytes")


def load_file(path: str | os.PathLike, mmap: bool = True) -> dict[str, np.ndarray]:
    """Every tensor of a safetensors file as a NumPy array, in the header's order.

    With ``mmap`` (the default) arrays are read-only views of a memory map of the file, so only
    the pages that are used get read; ``mmap=False`` reads the file into memory instead. BF16
    tensors become float32 (a copy). Copy an array before changing it in place.
    """
    header, _, data_start = read_header(path)
    if mmap:  # the arrays keep the map alive; it closes when the last of them is freed
        with open(path, "rb") as f:
            buffer = np.frombuffer(mmap_module.mmap(f.fileno(), 0, access=mmap_module.ACCESS_READ),
                                   dtype=np.uint8)
    else:
        buffer = np.frombuffer(Path(path).read_bytes(), dtype=np.uint8)
    tensors = {}
    for name, entry in header.items():
        begin, end = entry["data_offsets"]
        raw = buffer[data_start + begin: data_start + end]
        array = raw.view(DTYPES[entry["dtype"]]).reshape(entry["shape"])
        tensors[name] = _bf16_to_float32(array) if entry["dtype"] == "BF16" else array
    return tensors


def load_as(path: str | os.PathLike, dtype) -> dict[str, np.ndarray]:
    """Every floating-point tensor of a file as ``dtype`` (float32 or float16): a model's weights.

    A tensor already stored in ``dtype`` is a copy-on-write view of a memory map of the file:
    no bytes are read until it is used, and writing to it changes memory, never the file. The
    others (BF16 or F16 weights for float32, say) are read from the file one at a time and
    converted, so loading never holds a second copy of the model: the peak is the converted
    weights plus one tensor as stored. Integer and bool tensors are refused (a model's weights
    are floats).
    """
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float16):
        raise ValueError(f"safetensors: load_as converts to float32 or float16, got {dtype}")
    header, _, data_start = read_header(path)
    with open(path, "rb") as f:
        buffer = np.frombuffer(mmap_module.mmap(f.fileno(), 0, access=mmap_module.ACCESS_COPY), dtype=np.uint8)
        tensors = {}
        for name, entry in header.items():
            stored, shape = entry["dtype"], entry["shape"]
            if stored not in ("F64", "F32", "F16", "BF16"):
                raise ValueError(f"safetensors {path}: tensor {name!r} has dtype {stored}; expected "
                                 "floating-point weights (F64, F32, F16 or BF16)")
            begin, end = entry["data_offsets"]
            if DTYPES[stored] == dtype:
                tensors[name] = buffer[data_start + begin: data_start + end].view(dtype).reshape(shape)
                continue
            f.seek(data_start + begin)
            tensors[name] = _read_converted(f, stored, shape, dtype)
    return tensors


CONVERT_CHUNK = 1 << 22  # numbers read and converted at a time: 8-32 MB of transient memory


def _read_converted(f, stored: str, shape, dtype) -> np.ndarray:
    """The tensor at the file's position, read a chunk at a time into its ``dtype`` array, so
    that converting an embedding of a billion-parameter model takes the result plus one chunk."""
    result = np.empty(shape, dtype=dtype)
    flat = result.reshape(-1)
    for start in range(0, flat.size, CONVERT_CHUNK):
        raw = np.fromfile(f, dtype=DTYPES[stored], count=min(CONVERT_CHUNK, flat.size - start))
        if len(raw) == 0:
            raise ValueError(f"safetensors {f.name}: the file ended inside a tensor")
        flat[start:start + len(raw)] = _bf16_to_float32(raw) if stored == "BF16" else raw  # cast on assignment
    return result


def load_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The file's ``__metadata__`` (an empty dict when it has none)."""
    return read_header(path)[1]


def _bf16_to_float32(words: np.ndarray) -> np.ndarray:
    """bfloat16 is the top half of a float32 (same sign and 8-bit exponent, 7 mantissa bits),
    so shifting its 16 bits up by 16 gives the float32 with exactly the same value."""
    return (words.astype(np.uint32) << 16).view(np.float32)


def save_file(tensors: dict, path: str | os.PathLike, metadata: dict[str, str] | None = None) -> None:
    """Write arrays (NumPy or CuPy) to ``path`` in the safetensors format, atomically.

    The file is written beside ``path`` under a temporary name and renamed over it, so a crash
    leaves either the old file or the new one, never half of one. Tensors are stored in name
    order; the header is padded with spaces to a multiple of 8 bytes so every buffer is aligned.
    """
    path = Path(path)
    arrays, header = {}, {}
    if metadata is not None:
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise ValueError(f"save_file: metadata must map strings to strings, got {metadata!r}")
        header["__metadata__"] = dict(metadata)
    offset = 0
    for name in sorted(tensors):
        if not isinstance(name, str) or name == "__metadata__":
            raise ValueError(f"save_file: tensor names must be strings other than '__metadata__', "
                             f"got {name!r}")
        value = tensors[name]
        array = backend.to_numpy(value) if backend.is_array(value) else np.asarray(value)
        stored = array.dtype.newbyteorder("<") if array.dtype.kind in "fiu" else array.dtype
        if stored not in _NAMES:
            raise ValueError(f"save_file: tensor {name!r} has dtype {array.dtype}; expected one of "
                             f"{sorted(str(d) for d in _NAMES)}")
        arrays[name] = np.ascontiguousarray(array, dtype=stored)
        size = arrays[name].nbytes
        header[name] = {"dtype": _NAMES[stored], "shape": list(array.shape),
                        "data_offsets": [offset, offset + size]}
        offset += size
    header_bytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
    header_bytes += b" " * (-len(header_bytes) % 8)

    with atomic_open(path, "wb") as f:
        f.write(struct.pack("<Q", len(header_bytes)))
        f.write(header_bytes)
        for name in sorted(arrays):
            f.write(arrays[name].tobytes())
