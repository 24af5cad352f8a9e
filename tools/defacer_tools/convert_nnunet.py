#!/usr/bin/env python3
"""Convert a trained nnU-Net v1 3d_fullres model folder to defacer's own weights format.

Reads an nnU-Net v1 (PyPI `nnunet` 1.x) trained model folder, for example
`RESULTS_FOLDER/nnUNet/3d_fullres/TaskXXX_Name/nnUNetTrainerV2__nnUNetPlansv2.1/`:

    plans.pkl                                     the experiment plans
    fold_K/model_final_checkpoint.model           zip-format torch.save {'state_dict': ..., ...}
    fold_K/model_final_checkpoint.model.pkl       trainer name, init arguments and plans
    postprocessing.json                           optional

and writes, into --out:

    fold0.safetensors ..                          one per fold, tensor names unchanged, float32
    model.json                                    descriptor: architecture "nnunet-v1-generic-unet",
                                                  the network and preprocessing read from the plans
                                                  (stage = the plans' last stage), source, licence

Only numpy and safetensors are needed: torch is not. The pickles are read by the package's
restricted unpicklers (torch_pickle.py): the checkpoints may only rebuild tensors over storages
read from the zip's data/ entries, ordered dicts and numpy scalars (the training losses); the
plans may only rebuild numpy arrays, scalars and dtypes and ordered dicts. Every other global is
refused. Each fold's state dict must hold exactly the
tensors, with exactly the shapes, that nnU-Net's Generic_UNet builds from the plans.

Usage:
    tools/defacer_tools/convert_nnunet.py --model-dir DIR --out models/NAME --source "..."
        --licence "..." [--labels 1=face,2=ears] [--name NAME] [--folds 0,1,2,3,4] [--checkpoint model_final_checkpoint]
    tools/defacer_tools/convert_nnunet.py --check --out models/NAME   # verify an existing output

Exit status 0 on success; on anything unexpected it prints one clear
"convert_nnunet: error: ..." line and exits 1.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections import OrderedDict

import numpy as np

if __package__ in (None, ""):     # run as a script: tools/ on the path for the package
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from defacer_tools import safetensors_io  # noqa: E402
from defacer_tools.common import ConversionError, atomic_write, check_names_and_shapes, fail  # noqa: E402
from defacer_tools.torch_pickle import load_numpy_pickle, load_state_dict  # noqa: E402

ARCHITECTURE = "nnunet-v1-generic-unet"
# Trainers whose network is Generic_UNet built as nnUNetTrainerV2.initialize_network builds it
# (nnUNetTrainer differs in deep supervision only, which does not change the weights or inference).
KNOWN_TRAINERS = {"nnUNetTrainer", "nnUNetTrainerV2", "nnUNetTrainerV2_noDeepSupervision",
                  "nnUNetTrainerV2_noMirroring"}
# Generic_UNet's fixed hyperparameters as nnUNetTrainerV2 passes them
MAX_NUM_FEATURES_3D = 320
FEAT_MAP_MUL_ON_DOWNSCALE = 2
LEAKY_RELU_SLOPE = 1e-2
INSTANCE_NORM_EPS = 1e-5


def load_checkpoint(path: str) -> "OrderedDict[str, np.ndarray]":
    """The state dict of an nnU-Net checkpoint (torch.save file), as float32 numpy arrays."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        fail("%s is missing" % path)
    out: "OrderedDict[str, np.ndarray]" = OrderedDict()
    for name, arr in load_state_dict(data, path).items():
        key = name[7:] if name.startswith("module.") else name   # as nnU-Net's load_checkpoint_ram does
        if arr.dtype not in (np.float32, np.float16, np.float64):
            fail("%s: tensor %s has dtype %s" % (path, name, arr.dtype))
        out[key] = arr.astype(np.float32)
    return out


# --------------------------------------------------------------------------
# Plans -> network description, expected state dict
# --------------------------------------------------------------------------

def to_py(x):
    """numpy values inside the plans as plain JSON values."""
    if isinstance(x, np.ndarray):
        return [to_py(v) for v in x.tolist()]
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating,)):
        return float(x)
    if isinstance(x, (np.bool_,)):
        return bool(x)
    if isinstance(x, dict):
        return {str(k): to_py(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [to_py(v) for v in x]
    return x


def per_channel(value, channels: int, what: str) -> list:
    """nnU-Net stores per-modality settings as dicts keyed 0..C-1."""
    if not isinstance(value, dict) or sorted(int(k) for k in value) != list(range(channels)):
        fail("plans: %s must give one entry per input channel (0..%d)" % (what, channels - 1))
    return [to_py(value[k]) for k in sorted(value, key=int)]


def describe(plans: dict, stage, trainer: str) -> dict:
    """model.json's network, preprocessing and inference fields from nnU-Net plans."""
    try:
        stages = plans["plans_per_stage"]
        if stage is None:
            stage = max(stages)
        if stage != max(stages):
            fail("plans: the checkpoint was trained on stage %s, not the last stage %s: only 3d_fullres "
                 "models are supported" % (stage, max(stages)))
        sp = stages[stage]
        patch = [int(v) for v in to_py(sp["patch_size"])]
        if len(patch) != 3:
            fail("plans: patch size %s is not 3D: only 3d_fullres models are supported" % patch)
        pools = [[int(v) for v in p] for p in to_py(sp["pool_op_kernel_sizes"])]
        convs = [[int(v) for v in k] for k in to_py(sp["conv_kernel_sizes"])]
        channels = int(plans["num_modalities"])
        tf = [int(v) for v in to_py(plans.get("transpose_forward") or [0, 1, 2])]
        tb = [int(v) for v in to_py(plans.get("transpose_backward") or [0, 1, 2])]
        schemes = per_channel(plans["normalization_schemes"], channels, "normalization_schemes")
        mask_norm = [bool(v) for v in per_channel(plans["use_mask_for_norm"], channels, "use_mask_for_norm")]
        intensity = plans.get("dataset_properties", {}).get("intensityproperties")
        network = {
            "input_channels": channels,
            "num_classes": int(plans["num_classes"]) + 1,      # background is not in the plans' count
            "base_num_features": int(plans["base_num_features"]),
            "max_num_features": MAX_NUM_FEATURES_3D,
            "feat_map_mul_on_downscale": FEAT_MAP_MUL_ON_DOWNSCALE,
            "conv_per_stage": int(plans.get("conv_per_stage", 2)),
            "patch_size": patch,
            "pool_op_kernel_sizes": pools,
            "conv_kernel_sizes": convs,
            "leaky_relu_slope": LEAKY_RELU_SLOPE,
            "instance_norm": {"eps": INSTANCE_NORM_EPS, "affine": True},
            "dropout_p": 0.0,
            "convolutional_pooling": True,
            "convolutional_upsampling": True,
            "upscale_logits": False,
            "deep_supervision_heads": len(pools),
            "seg_output_use_bias": False,
            "final_nonlin": "softmax",
        }
        preprocessing = {
            "stage": int(stage),
            "preprocessor_name": plans.get("preprocessor_name") or "GenericPreprocessor",
            "axis_order": "SimpleITK array order (z, y, x of the stored voxels), then transpose_forward",
            "normalization_schemes": schemes,
            "use_mask_for_norm": mask_norm,
            "intensity_properties": [to_py(intensity[c]) for c in range(channels)]
                                    if intensity and any(s.startswith("CT") for s in schemes) else None,
            "target_spacing": [float(v) for v in to_py(sp["current_spacing"])],
            "target_spacing_axis_order": "plan (after transpose_forward)",
            "transpose_forward": tf,
            "transpose_backward": tb,
            "resample_order_data": 3,
            "resample_order_seg": 1,
            "separate_z_anisotropy_threshold": 3,
        }
        inference = {
            "step_size": 0.5,
            "gaussian_sigma_scale": 0.125,
            "mirror_axes": [] if "noMirroring" in trainer else [0, 1, 2],
            "all_classes": [int(v) for v in to_py(plans.get("all_classes", []))],
        }
    except (KeyError, TypeError, ValueError) as exc:
        fail("plans: missing or malformed field (%s: %s)" % (type(exc).__name__, exc))
    if len(convs) != len(pools) + 1 or any(len(p) != 3 for p in pools) or any(len(k) != 3 for k in convs):
        fail("plans: %d pool kernels and %d conv kernels do not describe a 3D Generic_UNet" % (len(pools), len(convs)))
    if any(k not in (1, 3) for kernel in convs for k in kernel):
        fail("plans: conv kernel sizes %s: Generic_UNet pads only kernels of 3" % convs)
    if sorted(tf) != [0, 1, 2] or [tf.index(i) for i in range(3)] != tb:
        fail("plans: transpose_forward %s and transpose_backward %s are not inverse permutations" % (tf, tb))
    for s in schemes:
        if s not in ("nonCT", "CT", "CT2", "noNorm"):
            fail("plans: unknown normalization scheme %r" % s)
    return {"network": network, "preprocessing": preprocessing, "inference": inference}


def stage_features(net: dict) -> list[int]:
    """Output features of each encoder stage and the bottleneck, as Generic_UNet computes them."""
    out, f = [], net["base_num_features"]
    for _ in range(len(net["pool_op_kernel_sizes"]) + 1):
        out.append(f)
        f = min(int(np.round(f * net["feat_map_mul_on_downscale"])), net["max_num_features"])
    return out


def expected_state_dict(net: dict) -> "OrderedDict[str, tuple]":
    """Names and shapes of Generic_UNet's state dict (convolutional pooling and upsampling)."""
    e: "OrderedDict[str, tuple]" = OrderedDict()
    pools, convs, n = net["pool_op_kernel_sizes"], net["conv_kernel_sizes"], net["conv_per_stage"]
    feats = stage_features(net)
    num_pool = len(pools)

    def stacked(prefix, cin, cout, count, kernel):
        for i in range(max(1, count)):
            c_in = cin if i == 0 else cout
            e[prefix + ".blocks.%d.conv.weight" % i] = (cout, c_in, *kernel)
            e[prefix + ".blocks.%d.conv.bias" % i] = (cout,)
            e[prefix + ".blocks.%d.instnorm.weight" % i] = (cout,)
            e[prefix + ".blocks.%d.instnorm.bias" % i] = (cout,)

    cin = net["input_channels"]
    for d in range(num_pool):
        stacked("conv_blocks_context.%d" % d, cin, feats[d], n, convs[d])
        cin = feats[d]
    stacked("conv_blocks_context.%d.0" % num_pool, cin, feats[num_pool], n - 1, convs[num_pool])
    stacked("conv_blocks_context.%d.1" % num_pool, feats[num_pool], feats[num_pool], 1, convs[num_pool])
    down = feats[num_pool]
    for u in range(num_pool):
        skip = feats[num_pool - 1 - u]
        e["tu.%d.weight" % u] = (down, skip, *pools[num_pool - 1 - u])
        # nnU-Net v1 gives decoder level u the conv kernel of conv_kernel_sizes[-(u + 1)]
        stacked("conv_blocks_localization.%d.0" % u, 2 * skip, skip, n - 1, convs[num_pool - u])
        stacked("conv_blocks_localization.%d.1" % u, skip, skip, 1, convs[num_pool - u])
        down = skip
    for u in range(num_pool):
        e["seg_outputs.%d.weight" % u] = (net["num_classes"], feats[num_pool - 1 - u], 1, 1, 1)
    return e


def check_state_dict(sd: dict, expected: dict, label: str) -> None:
    check_names_and_shapes(sd, expected, label, "the network the plans describe")


# --------------------------------------------------------------------------
# Commands
# --------------------------------------------------------------------------

def find_folds(model_dir: str, wanted: str | None) -> list[tuple[str, str]]:
    """(fold name as in nnU-Net, folder) pairs, fold_0.. in order, or 'all'."""
    if wanted:
        names = ["all" if w.strip() == "all" else "fold_%d" % int(w) for w in wanted.split(",")]
    else:
        names = sorted((d for d in os.listdir(model_dir) if re.fullmatch(r"fold_\d+", d)
                        and os.path.isdir(os.path.join(model_dir, d))), key=lambda d: int(d[5:]))
        if not names and os.path.isdir(os.path.join(model_dir, "all")):
            names = ["all"]
    if not names:
        fail("%s holds no fold_K folders" % model_dir)
    for name in names:
        if not os.path.isdir(os.path.join(model_dir, name)):
            fail("%s: fold folder %s is missing" % (model_dir, name))
    return [(n, os.path.join(model_dir, n)) for n in names]


def run_convert(args) -> int:
    model_dir = args.model_dir
    if not os.path.isdir(model_dir):
        fail("%s is not a folder" % model_dir)
    plans_file = load_numpy_pickle(os.path.join(model_dir, "plans.pkl"))
    if not isinstance(plans_file, dict):
        fail("%s/plans.pkl does not hold a plans dict" % model_dir)
    folds = find_folds(model_dir, args.folds)
    os.makedirs(args.out, exist_ok=True)
    described = None
    trainer = None
    files = []
    for k, (fold_name, folder) in enumerate(folds):
        ckpt = os.path.join(folder, args.checkpoint + ".model")
        info = load_numpy_pickle(ckpt + ".pkl")
        if not isinstance(info, dict) or "plans" not in info or "name" not in info:
            fail("%s.pkl: not an nnU-Net checkpoint description" % ckpt)
        name = str(info["name"])
        if "Regions" in name or "Cascade" in name:
            fail("%s.pkl: trainer %s is not supported (region-based or cascade)" % (ckpt, name))
        if name not in KNOWN_TRAINERS:
            print("convert_nnunet: warning: trainer %s is not one of %s; its weights are checked against "
                  "Generic_UNet as nnUNetTrainerV2 builds it" % (name, sorted(KNOWN_TRAINERS)), file=sys.stderr)
        init = info.get("init") or ()
        stage = init[5] if len(init) > 5 else None
        # nnU-Net's restore_model uses the plans saved with the checkpoint: so does the converter,
        # and they must agree with plans.pkl
        this = describe(info["plans"], stage, name)
        if describe(plans_file, stage, name) != this:
            fail("%s.pkl: its plans differ from %s/plans.pkl" % (ckpt, model_dir))
        if described is None:
            described, trainer = this, name
        elif this != described or name != trainer:
            fail("%s: trained with other plans or another trainer than %s" % (fold_name, folds[0][0]))
        sd = load_checkpoint(ckpt)
        check_state_dict(sd, expected_state_dict(described["network"]), ckpt)
        out_name = "fold%d.safetensors" % k
        safetensors_io.save(os.path.join(args.out, out_name), sd,
                            {"format": "pt", "source": args.source, "nnunet_fold": fold_name})
        files.append((out_name, fold_name))
    postprocessing = None
    pp = os.path.join(model_dir, "postprocessing.json")
    if os.path.isfile(pp):
        with open(pp) as f:
            postprocessing = json.load(f)
    descriptor = OrderedDict([
        ("name", args.name or os.path.basename(os.path.normpath(args.out))),
        ("architecture", ARCHITECTURE),
        ("folds", [f for f, _ in files]),
        ("nnunet_folds", [n for _, n in files]),
        ("trainer", trainer),
        ("checkpoint", args.checkpoint),
        ("network", described["network"]),
        ("preprocessing", described["preprocessing"]),
        ("inference", described["inference"]),
        ("postprocessing", postprocessing),
        ("source", args.source),
        ("licence", args.licence),
        ("labels", parse_labels(args.labels)),
        ("converted_by", "tools/defacer_tools/convert_nnunet.py"),
    ])
    # written last: a complete model.json means a complete conversion
    text = json.dumps(descriptor, indent=2)
    # lists of numbers on one line each
    text = re.sub(r"\[\s+([-0-9.e, \n]+?)\s+\]", lambda m: "[" + re.sub(r"\s*\n\s*", " ", m.group(1)) + "]", text)
    atomic_write(os.path.join(args.out, "model.json"), (text + "\n").encode())
    print("convert_nnunet: wrote %d folds and model.json to %s" % (len(files), args.out))
    return 0


def parse_labels(text):
    """`1=face,2=ears` -> {"1": "face", "2": "ears"} (the names defacer reports); {} when not given."""
    labels = OrderedDict()
    for item in filter(None, (text or "").split(",")):
        number, _, name = item.partition("=")
        if not number.strip().isdigit() or not name.strip():
            raise ConversionError("--labels takes NUMBER=NAME pairs separated by commas, not %r" % item)
        labels[number.strip()] = name.strip()
    return labels


def run_check(args) -> int:
    path = os.path.join(args.out, "model.json")
    try:
        with open(path) as f:
            descriptor = json.load(f)
    except (OSError, ValueError) as exc:
        fail("%s: %s" % (path, exc))
    if descriptor.get("architecture") != ARCHITECTURE:
        fail("%s: architecture is %r" % (path, descriptor.get("architecture")))
    expected = expected_state_dict(descriptor["network"])
    for name in descriptor["folds"]:
        entries, _ = safetensors_io.header(os.path.join(args.out, name))
        if any(dtype != "F32" for dtype, _ in entries.values()):
            fail("%s: holds tensors that are not float32" % name)
        check_state_dict({k: _Shape(shape) for k, (_, shape) in entries.items()}, expected, name)
    print("convert_nnunet: %s is complete" % args.out)
    return 0


class _Shape:
    """A tensor stand-in that only has a shape (for --check)."""

    def __init__(self, shape):
        self.shape = tuple(shape)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model-dir", help="nnU-Net v1 trained model folder (plans.pkl, fold_K/)")
    ap.add_argument("--out", required=True, help="output folder (e.g. models/NAME)")
    ap.add_argument("--name", help="model name for model.json (default: the output folder's name)")
    ap.add_argument("--source", default="", help="where the model comes from (recorded in model.json)")
    ap.add_argument("--licence", default="", help="the model's licence (recorded in model.json)")
    ap.add_argument("--labels", help="label names, e.g. 1=face,2=ears (recorded in model.json)")
    ap.add_argument("--folds", help="comma-separated fold numbers, or 'all' (default: every fold_K folder)")
    ap.add_argument("--checkpoint", default="model_final_checkpoint", help="checkpoint name in each fold")
    ap.add_argument("--check", action="store_true", help="only verify that --out holds a complete conversion")
    args = ap.parse_args(argv)
    try:
        if args.check:
            return run_check(args)
        if not args.model_dir:
            ap.error("--model-dir is required (or --check)")
        if not args.source or not args.licence:
            ap.error("--source and --licence are required: model.json records where the weights come from")
        return run_convert(args)
    except ConversionError as exc:
        print("convert_nnunet: error: %s" % exc, file=sys.stderr)
        return 1
    except OSError as exc:
        print("convert_nnunet: error: %s" % exc, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
