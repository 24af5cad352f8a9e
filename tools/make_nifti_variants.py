"""Writes small NIfTI files in every data type and file form with nibabel, from a crop of a
real scan, plus manifest.json with nibabel's view of each (see nibabel_summary.py).

    .venv/bin/python tools/make_nifti_variants.py data/real/ch2.nii.gz data/variants

The Swift tests read each file, compare with the manifest, write it back and compare again.
Some files carry identifying header fields and an extension that defacer must strip.
"""
import json
import os
import sys

import nibabel as nib
import numpy as np

from nibabel_summary import summary

DTYPES = {
    "uint8": (np.uint8, 1.0, 0.0),
    "int8": (np.int8, 1.0, -128.0),
    "int16": (np.int16, 37.0, -2000.0),
    "uint16": (np.uint16, 211.0, 7.0),
    "int32": (np.int32, 70001.0, -900000.0),
    "uint32": (np.uint32, 16000001.0, 3.0),
    "float32": (np.float32, 0.3711, -5.5),
    "float64": (np.float64, 0.0123456789, 1e-3),
}

IDENTIFYING = {
    "descrip": "DOE^JANE 2014-03-09 MRN 00123456",
    "aux_file": "DOE_JANE_MRN00123456",
    "intent_name": "DOE^JANE",
}


def oblique_lps_affine(zooms):
    """A scanner-like oblique LPS affine: 12 degrees about x, 7 about z."""
    ax, az = np.deg2rad(12.0), np.deg2rad(7.0)
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    lps = np.diag([-1.0, -1.0, 1.0])
    a = np.eye(4)
    a[:3, :3] = lps @ rz @ rx @ np.diag(zooms)
    a[:3, 3] = [61.25, 88.5, -40.75]
    return a


def save(img, folder, name, manifest, form):
    path = os.path.join(folder, name)
    nib.save(img, path)
    entry = summary(path)
    entry["form"] = form
    manifest[name] = entry


def main(source, folder):
    os.makedirs(folder, exist_ok=True)
    src = nib.load(source)
    data = np.asanyarray(src.dataobj).astype(np.float64)
    # a small crop through the head, odd sizes on purpose
    crop = data[62:109, 80:133, 58:97]
    crop = crop / max(crop.max(), 1.0)
    affine = src.affine.copy()
    affine[:3, 3] = affine[:3, :3] @ np.array([62, 80, 58]) + affine[:3, 3]
    manifest = {}

    for name, (dtype, scale, offset) in DTYPES.items():
        values = crop * scale + offset
        if np.issubdtype(dtype, np.integer):
            info = np.iinfo(dtype)
            values = np.clip(np.round(values), info.min, info.max)
        img = nib.Nifti1Image(values.astype(dtype), affine)
        img.header.set_xyzt_units("mm")
        save(img, folder, f"n1_{name}.nii.gz", manifest, "nifti1 single gz")

    int16 = np.round(crop * 3000 - 500).astype(np.int16)
    forms = [
        ("n1_int16.nii", nib.Nifti1Image, "nifti1 single"),
        ("n1pair_int16.hdr", nib.Nifti1Pair, "nifti1 pair"),
        ("n1pair_int16_gz.hdr.gz", nib.Nifti1Pair, "nifti1 pair gz"),
        ("n2_int16.nii", nib.Nifti2Image, "nifti2 single"),
        ("n2_int16.nii.gz", nib.Nifti2Image, "nifti2 single gz"),
        ("n2pair_int16.hdr", nib.Nifti2Pair, "nifti2 pair"),
    ]
    for name, cls, form in forms:
        img = cls(int16, affine)
        img.header.set_xyzt_units("mm")
        save(img, folder, name, manifest, form)

    # int16 with scaling, stored as scanners do
    scaled = nib.Nifti1Image(int16, affine)
    scaled.header.set_slope_inter(0.25, 12.5)
    save(scaled, folder, "n1_int16_scaled.nii.gz", manifest, "nifti1 single gz scaled")

    # big-endian file: every value must come back byte-swapped correctly
    big = nib.Nifti1Image(int16.astype(">i2"), affine)
    big.header.set_data_dtype(np.dtype(">i2"))
    save(big, folder, "n1_int16_bigendian.nii", manifest, "nifti1 single big-endian")

    # 4D: three volumes
    vols = np.stack([int16, int16 // 2, int16 + 7], axis=-1).astype(np.int16)
    four = nib.Nifti1Image(vols, affine)
    four.header.set_xyzt_units("mm", "sec")
    four.header["pixdim"][4] = 2.5
    save(four, folder, "n1_int16_4d.nii.gz", manifest, "nifti1 single gz 4D")

    # oblique LPS scanner-like geometry with different qform and sform codes,
    # identifying text fields and a DICOM-style extension that must not survive a write
    zooms = np.array([0.9, 0.9, 1.2])
    obl = nib.Nifti1Image(int16, None)
    obl_affine = oblique_lps_affine(zooms)
    obl.header.set_qform(obl_affine, code=1)
    obl.header.set_sform(obl_affine, code=2)
    obl.header.set_zooms(tuple(zooms))
    for field, value in IDENTIFYING.items():
        obl.header[field] = value
    obl.header["db_name"] = "DOE^JANE"
    obl.header.extensions.append(nib.nifti1.Nifti1Extension(6, b"PatientName=DOE^JANE PatientID=00123456"))
    obl.header["slice_code"] = 1
    obl.header["slice_duration"] = 0.05
    obl.header["dim_info"] = 57
    save(obl, folder, "n1_int16_oblique_identifying.nii.gz", manifest, "nifti1 single gz oblique")

    # qform only, in PSR storage order
    psr = np.ascontiguousarray(np.transpose(int16, (1, 2, 0))[::-1, :, :])
    perm = np.zeros((4, 4))
    perm[1, 0] = -1.0   # i -> posterior
    perm[2, 1] = 1.0    # j -> superior
    perm[0, 2] = 1.0    # k -> right
    perm[:3, 3] = [-30.0, 40.0, 20.0]
    perm[3, 3] = 1.0
    q = nib.Nifti1Image(psr, None)
    q.header.set_qform(perm, code=1)
    q.header.set_sform(None, code=0)
    save(q, folder, "n1_int16_psr_qform_only.nii", manifest, "nifti1 single qform-only PSR")

    with open(os.path.join(folder, "manifest.json"), "w") as f:
        json.dump({"identifying": IDENTIFYING, "files": manifest}, f, indent=1, sort_keys=True)
    print(f"wrote {len(manifest)} NIfTI variants to {folder}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
