"""What nibabel reports about a NIfTI file, as a JSON-ready dict.

Shared by record_nibabel_reference.py and make_nifti_variants.py so that the Swift tests
compare defacer's reader against one description of nibabel's view.
"""
import hashlib

import nibabel as nib
import numpy as np

# Voxel indices (fractions of each axis) whose stored values are recorded.
SAMPLE_FRACTIONS = [
    (0.0, 0.0, 0.0), (0.5, 0.5, 0.5), (0.25, 0.6, 0.4), (0.7, 0.3, 0.55),
    (0.45, 0.8, 0.35), (0.55, 0.45, 0.75), (0.999, 0.999, 0.999), (0.33, 0.5, 0.66),
]


def summary(path):
    img = nib.load(path)
    hdr = img.header
    stored = np.asanyarray(img.dataobj.get_unscaled())
    shape = list(stored.shape)
    samples = []
    for fx, fy, fz in SAMPLE_FRACTIONS:
        idx = [min(int(f * n), n - 1) for f, n in zip((fx, fy, fz), shape[:3])]
        value = stored[tuple(idx) + (0,) * (stored.ndim - 3)]
        samples.append({"index": idx, "stored": float(value)})
    little = stored.astype(stored.dtype.newbyteorder("<"), copy=False)
    data_sha = hashlib.sha256(np.asfortranarray(little).tobytes(order="F")).hexdigest()
    slope, inter = hdr.get_slope_inter()
    sform, scode = hdr.get_sform(coded=True)
    qform, qcode = hdr.get_qform(coded=True)
    return {
        "shape": shape,
        "zooms": [float(z) for z in hdr.get_zooms()],
        "dtype": str(stored.dtype.newbyteorder("=").name),
        "affine": np.asarray(img.affine, dtype=float).tolist(),
        "sform_code": int(scode or 0),
        "qform_code": int(qcode or 0),
        "axcodes": "".join(nib.aff2axcodes(img.affine)),
        "scl_slope": None if slope is None else float(slope),
        "scl_inter": None if inter is None else float(inter),
        "samples": samples,
        "data_sha256": data_sha,
        "stored_sum": float(stored.astype(np.float64).sum()),
    }
