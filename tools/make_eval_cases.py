"""Evaluation cases for defacing: each real head, and each head transformed into the cases that
break template-based adult tools. Writes NIfTI files, a reference brain mask per case (where
one exists) and the landmarks carried through the same transform, plus manifest.json.

    .venv/bin/python tools/make_eval_cases.py data/real data/eval [--small]

Cases: original, child-like (scale 0.8, face a further 0.85 smaller), T2w-like and FLAIR-like
contrast, tilted 20 degrees (nose down) and 15 degrees (sideways), an oblique acquisition grid,
storage orders LPS, LAS and PSR, 5 mm axial slices, a cropped field of view, int16 with scaling,
float32; and the cases that test the method's safety: HD-BET's brain made to miss 5 mm of the
temporal lobes' underside (brainmiss5), a slab whose lowest slice cuts through the frontal lobe
(slabfrontal: no face, under 1% of the head may go), voxels flipped front-to-back with the
header unchanged (flippedap: must be refused), a child-like head whose orbital roof is 3 mm
thinner (childthin), and oblique grids at several angles. --small writes the CI subset.
"""
import json
import os
import sys

import nibabel as nib
import numpy as np
from scipy import ndimage

HERE = os.path.dirname(os.path.abspath(__file__))


def rotation(axis, degrees):
    a = np.deg2rad(degrees)
    c, s = np.cos(a), np.sin(a)
    if axis == "x":
        return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    if axis == "y":
        return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def resample(data, affine, out_shape, out_affine, backward, order=1):
    """Samples `data` (voxel grid `affine`) on a new grid: world q of each output voxel maps
    back through `backward` to a world point in the original head."""
    idx = np.indices(out_shape).reshape(3, -1).astype(np.float64)
    world = out_affine[:3, :3] @ idx + out_affine[:3, 3:4]
    src_world = backward(world)
    inv = np.linalg.inv(affine)
    src = inv[:3, :3] @ src_world + inv[:3, 3:4]
    out = ndimage.map_coordinates(data, src, order=order, mode="constant", cval=0.0)
    return out.reshape(out_shape)


def forward_point(backward, p, scale_guess=1.0):
    """Solves backward(q) = p for q (landmarks go forward through the transform)."""
    p = np.asarray(p, float)
    q = p.copy()
    for _ in range(200):
        r = p - backward(q[:, None])[:, 0]
        q = q + scale_guess * r
        if np.linalg.norm(r) < 1e-4:
            break
    return q


def brain_centre(brain, affine):
    idx = np.argwhere(brain > 0).mean(0)
    return affine[:3, :3] @ idx + affine[:3, 3]


def temporalis_points(head, affine, seed_y, seed_z, depth_mm=6.0):
    """On each side, the point 6 mm inside the scalp along a left-right ray at (y, z)."""
    inv = np.linalg.inv(affine)
    points = []
    for side in (-1, 1):
        xs = np.arange(0, 130, 0.5) * side
        inside = None
        for x in xs[::-1]:  # from outside inwards
            v = np.round(inv[:3, :3] @ [x, seed_y, seed_z] + inv[:3, 3]).astype(int)
            if np.all(v >= 0) and np.all(v < head.shape) and head[tuple(v)]:
                inside = x
                break
        points.append(None if inside is None else [inside - side * depth_mm, seed_y, seed_z])
    return points


def head_mask(data):
    t = np.percentile(data[data > 0], 60) * 0.25
    m = data > t
    lab, n = ndimage.label(m)
    if n > 1:
        sizes = ndimage.sum(m, lab, range(1, n + 1))
        m = lab == (np.argmax(sizes) + 1)
    for k in range(m.shape[2]):
        m[:, :, k] = ndimage.binary_fill_holes(m[:, :, k])
    return m


def save(folder, name, data, affine, dtype=np.float32, slope=None, header_from=None):
    img = nib.Nifti1Image(data.astype(dtype), affine)
    img.header.set_xyzt_units("mm")
    if slope is not None:
        img.header.set_slope_inter(*slope)
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    path = os.path.join(folder, name)
    nib.save(img, path)
    return path


def main(real, out, small):
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(HERE, "eval_landmarks.json")) as f:
        landmarks = json.load(f)
    cases = []
    for scan in ("ch2.nii.gz", "mean_reg2mean.nii.gz"):
        info = landmarks[scan]
        img = nib.load(os.path.join(real, scan))
        data = np.asanyarray(img.dataobj).astype(np.float64)
        A = img.affine
        ref = None
        if info["brain_reference"]:
            ref = (np.asanyarray(nib.load(os.path.join(real, info["brain_reference"])).dataobj) > 0).astype(np.float64)
        head = head_mask(data)
        marks = {k: info[k] for k in ("eye_left", "eye_right", "nose", "mouth", "ear_left", "ear_right")}
        tl, tr = temporalis_points(head, A, *info["temporalis_seed_y_z"])
        marks["temporalis_left"], marks["temporalis_right"] = tl, tr
        centre = brain_centre(ref if ref is not None else head, A)
        base = scan.split(".")[0]

        def emit(case, arr, affine, backward=None, brain=None, dtype=np.float32, slope=None, mark_map=None, extra=None,
                 keep=None):
            name = f"{base}_{case}.nii.gz"
            save(out, name, arr, affine, dtype=dtype, slope=slope)
            entry = {"case": case, "head": scan, "file": name, "landmarks": {}}
            entry.update(extra or {})
            for k, p in marks.items():
                if p is None or (keep is not None and not keep(k, p)):
                    entry["landmarks"][k] = None
                elif mark_map is not None:
                    entry["landmarks"][k] = [float(v) for v in mark_map(p)]
                elif backward is not None:
                    entry["landmarks"][k] = [float(v) for v in forward_point(backward, p)]
                else:
                    entry["landmarks"][k] = [float(v) for v in p]
            if brain is not None:
                bname = f"{base}_{case}_brainref.nii.gz"
                save(out, bname, (brain > 0.5).astype(np.uint8), affine, dtype=np.uint8)
                entry["brain_reference"] = bname
            cases.append(entry)

        identity = lambda w: w
        emit("original", data, A, brain=ref)
        # child-like: overall 0.8, face (in front of and below the brain centre) a further 0.85
        s, fs = 0.8, 0.85
        face_centre = centre + np.array([0, 45, -35])

        def child_back(q):
            p = centre[:, None] + (q - centre[:, None]) / s
            d = p - face_centre[:, None]
            w = 1 / (1 + np.exp(-(p[1] - centre[1] - 25) / 6)) * 1 / (1 + np.exp((p[2] - centre[2] + 5) / 6))
            return p + w * d * (1 / fs - 1)

        emit("child", resample(data, A, data.shape, A, child_back), A, backward=child_back,
             brain=None if ref is None else resample(ref, A, data.shape, A, child_back))
        if ref is not None or not small:
            emit_safety_cases(emit, data, A, ref, marks, centre, child_back, small)
        if not small:
            # tissue keeps its place, contrast flips; air and bone (dark on T1) stay dark
            p99 = np.percentile(data[head], 99)
            tissue = head & (data > 0.12 * p99)
            t2 = np.where(tissue, np.clip(p99 * 1.05 - data, 0.08 * p99, None), data * 0.5)
            emit("t2like", t2, A, brain=ref)
            gm = np.percentile(data[head], 55)
            flair = np.where(tissue, np.clip(p99 - 1.6 * np.abs(data - gm), 0.08 * p99, None), data * 0.5)
            emit("flairlike", flair, A, brain=ref)
        for case, axis, deg in ([("tilt20", "x", -20)] + ([] if small else [("roll15", "y", 15)])):
            R = rotation(axis, deg)
            back = lambda w, R=R: centre[:, None] + R.T @ (w - centre[:, None])
            emit(case, resample(data, A, data.shape, A, back), A, backward=back,
                 brain=None if ref is None else resample(ref, A, data.shape, A, back))
        if not small:
            R = rotation("x", 15) @ rotation("z", 10)
            obl = A.copy()
            obl[:3, :3] = R @ A[:3, :3]
            # keep the grid centred on the same point
            mid = (np.array(data.shape) - 1) / 2
            obl[:3, 3] = (A[:3, :3] @ mid + A[:3, 3]) - obl[:3, :3] @ mid
            emit("oblique", resample(data, A, data.shape, obl, identity), obl, mark_map=lambda p: p,
                 brain=None if ref is None else resample(ref, A, data.shape, obl, identity))
            for case, codes in (("lps", ("L", "P", "S")), ("las", ("L", "A", "S")), ("psr", ("P", "S", "R"))):
                o = nib.orientations.ornt_transform(nib.orientations.io_orientation(A),
                                                    nib.orientations.axcodes2ornt(codes))
                arr = nib.orientations.apply_orientation(data, o)
                aff = A @ nib.orientations.inv_ornt_aff(o, data.shape)
                br = None if ref is None else nib.orientations.apply_orientation(ref, o)
                emit(case, arr, aff, mark_map=lambda p: p, brain=br)
            # 5 mm axial slices: average over each slab
            zoom = np.sqrt((A[:3, :3] ** 2).sum(0))
            k = int(round(5 / zoom[2]))
            nz = data.shape[2] // k
            thick = data[:, :, :nz * k].reshape(data.shape[0], data.shape[1], nz, k).mean(3)
            aff = A.copy()
            aff[:3, 2] *= k
            aff[:3, 3] += A[:3, 2] * (k - 1) / 2
            br = None if ref is None else ref[:, :, :nz * k].reshape(ref.shape[0], ref.shape[1], nz, k).mean(3)
            emit("thick5mm", thick, aff, mark_map=lambda p: p, brain=br)
            # cropped: 15 mm off the top, 25 mm off the back
            inv = np.linalg.inv(A)
            top = int(np.floor(inv[2, 2] * (brain_top(head, A) - 15) + inv[2, 3]))
            back = int(np.ceil(inv[1, 1] * (brain_back(head, A) + 25) + inv[1, 3]))
            crop = data[:, back:, :top]
            aff = A.copy()
            aff[:3, 3] = A[:3, :3] @ [0, back, 0] + A[:3, 3]
            br = None if ref is None else ref[:, back:, :top]
            emit("cropped", crop, aff, mark_map=lambda p: p, brain=br)
            emit("int16scaled", np.round((data - 4) / 0.37).astype(np.int16), A, dtype=np.int16, slope=(0.37, 4),
                 mark_map=lambda p: p, brain=ref)
        if ref is not None or not small:
            emit("float32", data * 0.731, A, dtype=np.float32, mark_map=lambda p: p, brain=ref)
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump({"cases": cases}, f, indent=1)
    print(f"wrote {len(cases)} evaluation cases to {out}")


def emit_safety_cases(emit, data, A, ref, marks, centre, child_back, small):
    """The cases that test the method's safety (see the module's doc)."""
    identity = lambda w: w
    emit("brainmiss5", data, A, mark_map=identity, brain=ref, extra={"simulate_brain_miss_mm": 5})
    # voxels flipped front-to-back (along the grid axis nearest to anterior), header unchanged
    ap = int(np.argmax(np.abs(A[1, :3])))
    emit("flippedap", np.flip(data, axis=ap), A, keep=lambda k, p: False, extra={"expect": "refused"})
    # a slab whose lowest slice lies 25 mm above the eyes' centres: through the frontal lobe
    eye_z = min(p[2] for k, p in marks.items() if k.startswith("eye") and p is not None)
    inv = np.linalg.inv(A)
    first = int(np.ceil(inv[2, 2] * (eye_z + 25) + inv[2, 3]))
    aff = A.copy()
    aff[:3, 3] = A[:3, :3] @ [0, 0, first] + A[:3, 3]
    emit("slabfrontal", data[:, :, first:], aff, mark_map=identity, keep=lambda k, p: p[2] > eye_z + 25,
         brain=None if ref is None else ref[:, :, first:], extra={"no_face": True})
    if small:
        return
    # child-like with a thinner orbital roof: the orbits' contents 3 mm higher, nearer the brain
    eyes = [np.array(p) for k, p in marks.items() if k.startswith("eye") and p is not None]

    def thin_back(q):
        p = child_back(q)
        w = sum(np.exp(-((p - e[:, None]) ** 2).sum(0) / (2 * 10.0 ** 2)) for e in eyes)
        return p - np.array([0, 0, 3.0])[:, None] * w

    emit("childthin", resample(data, A, data.shape, A, thin_back), A, backward=thin_back,
         brain=None if ref is None else resample(ref, A, data.shape, A, thin_back))
    mid = (np.array(data.shape) - 1) / 2
    for case, R in (("oblique25x", rotation("x", 25)), ("oblique20y", rotation("y", 20)),
                    ("oblique30z", rotation("z", 30) @ rotation("x", -10))):
        obl = A.copy()
        obl[:3, :3] = R @ A[:3, :3]
        obl[:3, 3] = (A[:3, :3] @ mid + A[:3, 3]) - obl[:3, :3] @ mid
        emit(case, resample(data, A, data.shape, obl, identity), obl, mark_map=identity,
             brain=None if ref is None else resample(ref, A, data.shape, obl, identity))


def brain_top(head, A):
    k = np.argwhere(head.any((0, 1))).max()
    return (A @ [0, 0, k, 1])[2]


def brain_back(head, A):
    j = np.argwhere(head.any((0, 2))).min()
    return (A @ [0, j, 0, 1])[1]


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], "--small" in sys.argv)
