"""The one safetensors reader and writer of defacer's tools, on PyPI safetensors' numpy API.

Any numpy dtype safetensors knows is written as it is (F32 weights, U8 masks, I32 indices, F64
moments); metadata values are written as strings. The package writes the tensors sorted by
name, whatever order they are given in, but (safetensors 0.8, upstream issue #584) the
metadata keys in a random order per process. So that a conversion is reproducible byte for
byte (the same sha256 at every site and in every package build), the metadata is written as
ONE key, "defacer", holding a JSON object with sorted keys. Read tensors by name, never by
position.
"""

from __future__ import annotations

import json

import numpy as np
from safetensors import SafetensorError, safe_open
from safetensors.numpy import load_file, save as _save_bytes

from .common import atomic_write, fail


def to_bytes(tensors: dict, metadata: dict | None = None) -> bytes:
    """A safetensors file's bytes holding `tensors` (name -> numpy array) and `metadata`."""
    # the package reads each array's memory as it lies (it byte-swaps big-endian ones): hand
    # it contiguous arrays
    arrays = {str(name): np.ascontiguousarray(array) for name, array in tensors.items()}
    meta = None
    if metadata:
        meta = {"defacer": json.dumps({str(k): str(v) for k, v in metadata.items()}, sort_keys=True)}
    return _save_bytes(arrays, metadata=meta)


def save(path: str, tensors: dict, metadata: dict | None = None) -> bytes:
    """Writes `tensors` and `metadata` to `path` atomically; returns the bytes written."""
    data = to_bytes(tensors, metadata)
    atomic_write(path, data)
    return data


def load(path: str) -> "dict[str, np.ndarray]":
    """Every tensor in the file, by name."""
    try:
        return load_file(path)
    except (SafetensorError, ValueError) as exc:
        fail("%s: not a readable safetensors file (%s)" % (path, exc))


def header(path: str) -> "tuple[dict[str, tuple[str, tuple]], dict]":
    """Each tensor's (dtype, shape) by name, and the metadata, without reading the tensors."""
    try:
        with safe_open(path, framework="np") as f:
            entries = {name: (f.get_slice(name).get_dtype(), tuple(f.get_slice(name).get_shape()))
                       for name in f.keys()}
            raw = dict(f.metadata() or {})
            return entries, json.loads(raw["defacer"]) if set(raw) == {"defacer"} else raw
    except (SafetensorError, ValueError) as exc:
        fail("%s: not a readable safetensors file (%s)" % (path, exc))
