"""Golden outputs of single PyTorch layers on odd shapes, for the engine's layer parity tests.

Needs torch (a developer tool, never run by the setup or CI):
    python tools/make_layer_goldens.py Tests/EngineTests/Fixtures/layer_goldens.safetensors
Each case stores `<case>.input`, its parameters and `<case>.output`.
"""
import sys

import numpy as np
import torch
import torch.nn.functional as F

from safetensors_io import save


def main(out):
    torch.manual_seed(7)
    t = {}

    def conv(name, cin, cout, k, stride, pad, shape, bias=True):
        x = torch.randn(1, cin, *shape)
        m = torch.nn.Conv3d(cin, cout, k, stride, pad, bias=bias)
        with torch.no_grad():
            y = m(x)
        t[f"{name}.input"] = x[0].numpy()
        t[f"{name}.weight"] = m.weight.detach().numpy()
        if bias:
            t[f"{name}.bias"] = m.bias.detach().numpy()
        t[f"{name}.output"] = y[0].numpy()

    conv("conv_k3s1p1", 3, 5, 3, 1, 1, (7, 9, 11))
    conv("conv_k3s2p1", 4, 6, 3, 2, 1, (9, 8, 7))
    conv("conv_k1", 5, 2, 1, 1, 0, (5, 6, 7))
    conv("conv_k3s1p1_nobias", 2, 3, 3, 1, 1, (4, 13, 6), bias=False)

    x = torch.randn(1, 6, 3, 4, 5)
    m = torch.nn.ConvTranspose3d(6, 3, 2, 2)
    with torch.no_grad():
        y = m(x)
    t["tconv.input"], t["tconv.weight"], t["tconv.bias"], t["tconv.output"] = (
        x[0].numpy(), m.weight.detach().numpy(), m.bias.detach().numpy(), y[0].numpy())

    x = torch.randn(1, 4, 6, 7, 5) * 3 + 1.5
    m = torch.nn.InstanceNorm3d(4, affine=True)
    with torch.no_grad():
        m.weight.copy_(torch.randn(4))
        m.bias.copy_(torch.randn(4))
        y = F.leaky_relu(m(x), 0.01)
    t["norm.input"], t["norm.weight"], t["norm.bias"], t["norm.output"] = (
        x[0].numpy(), m.weight.detach().numpy(), m.bias.detach().numpy(), y[0].numpy())

    x = torch.randn(1, 2, 3, 4, 5)
    t["upsample.input"] = x[0].numpy()
    t["upsample.output"] = F.interpolate(x, scale_factor=2, mode="trilinear", align_corners=True)[0].numpy()

    x = torch.randn(1, 3, 4, 5, 6) * 4
    t["softmax.input"] = x[0].numpy()
    t["softmax.output"] = torch.softmax(x, 1)[0].numpy()

    save(out, t, {"source": f"torch {torch.__version__}", "seed": 7})
    print(f"wrote {out}: {len(t)} tensors")


if __name__ == "__main__":
    main(sys.argv[1])
