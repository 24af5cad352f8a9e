"""Writes DICOM series (MR Image Storage, one file per slice) from the real heads, with
realistic MR headers and fake but name-like patient fields, plus the equivalent NIfTI of
each head series and manifest.json (the planted identifying values, the series written).

    .venv/bin/python tools/make_dicom_series.py data/real data/dicom

Cases (folders under OUT):
  single/    one axial T1w series of Colin27 resampled to 1.5 mm (explicit VR little endian);
             single.nii.gz holds the same voxels and geometry as NIfTI
  study/     one study, three series in one flat folder as a DICOM receiver stores them:
             1 a three-plane localiser (one slice each; implicit VR little endian),
             2 the same axial T1w as single/,
             3 a sagittal, oblique series of the pydeface average head at 1.5 mm whose
               SeriesDescription and ImageComments carry patient identifiers;
             study-3.nii.gz is the equivalent NIfTI of series 3
The tests copy, truncate and stagger these folders themselves.

Every identifying value planted in any header is listed under "planted" in the manifest so
that the tests can grep every output byte for it. UIDs are derived from fixed seeds, so the
files are the same on every run.
"""
import copy
import json
import os
import shutil
import sys

import nibabel as nib
import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, MRImageStorage, generate_uid
from scipy import ndimage

PATIENT = {
    "PatientName": "DOE^JANE",
    "PatientID": "PID84721193",
    "PatientBirthDate": "19750314",
    "PatientSex": "F",
    "PatientAge": "049Y",
    "PatientWeight": "61.5",
    "PatientAddress": "12 Larkspur Crescent^Springfield",
    "OtherPatientIDs": "MRN00123456",
}
STUDY = {
    "StudyDate": "20240611",
    "StudyTime": "101500.000000",
    "AccessionNumber": "ACC99887766",
    "ReferringPhysicianName": "HOUSE^GREGORY",
    "PerformingPhysicianName": "WILSON^JAMES",
    "OperatorsName": "CUDDY^LISA",
    "StudyID": "4711",
    "StudyDescription": "BRAIN^ROUTINE",
    "InstitutionName": "St Elsewhere Childrens Hospital",
    "InstitutionAddress": "1 Hospital Way, Springfield",
    "InstitutionalDepartmentName": "Radiology North Wing",
    "StationName": "MRCSTELSEW1",
    "DeviceSerialNumber": "4512769",
}
# values the tests look for in every output byte (long enough not to occur by chance in
# image data) and, case-insensitively, in every text output, file name and NIfTI header
PLANTED_LONG = ["DOE^JANE", "PID84721193", "19750314", "Larkspur", "MRN00123456", "ACC99887766",
                "HOUSE^GREGORY", "GREGORY", "WILSON^JAMES", "CUDDY^LISA", "St Elsewhere", "Elsewhere",
                "Hospital Way", "Radiology North", "MRCSTELSEW1", "4512769", "20240611"]
PLANTED_NAMES = ["DOE", "JANE"]


def uid(*seed):
    return generate_uid(entropy_srcs=["defacer-test"] + [str(s) for s in seed])


def ds_number(value, decimals=6):
    """A DS string of at most 16 characters."""
    text = f"{value:.{decimals}f}".rstrip("0").rstrip(".")
    if text in ("-0", ""):
        text = "0"
    assert len(text) <= 16, text
    return text


def resample(data, affine, spacing):
    """Linear resampling to `spacing` mm along each voxel axis; voxel 0 keeps its centre."""
    zooms = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    shape = [int(round((n - 1) * z / spacing)) + 1 for n, z in zip(data.shape, zooms)]
    factors = [(m - 1) / (n - 1) for m, n in zip(shape, data.shape)]
    out = ndimage.zoom(data.astype(np.float64), factors, order=1, grid_mode=False)
    new = affine.copy()
    new[:3, :3] = affine[:3, :3] / np.array(factors)[None, :]
    return out, new


def slice_geometry(affine, shape, slice_axis):
    """The DICOM geometry of a volume cut into slices along voxel axis `slice_axis`.

    Returns (iop, pixel_spacing, positions, take) with take(volume, s) -> rows x columns
    pixel array. Columns and rows run against the voxel axes so that the orientation is the
    conventional one (axial 1\\0\\0\\0\\1\\0, sagittal 0\\1\\0\\0\\0\\-1 for an RAS volume).
    """
    lps = np.diag([-1.0, -1.0, 1.0])
    in_plane = [a for a in range(3) if a != slice_axis]
    col_axis, row_axis = in_plane  # pixel column index runs along col_axis (reversed), row index along row_axis (reversed)
    cols = lps @ -affine[:3, col_axis]
    rows = lps @ -affine[:3, row_axis]
    col_step, row_step = np.linalg.norm(cols), np.linalg.norm(rows)
    iop = [round(v, 8) for v in list(cols / col_step) + list(rows / row_step)]
    positions = []
    for s in range(shape[slice_axis]):
        voxel = np.zeros(4)
        voxel[3] = 1
        voxel[col_axis] = shape[col_axis] - 1
        voxel[row_axis] = shape[row_axis] - 1
        voxel[slice_axis] = s
        positions.append([round(v, 6) for v in lps @ (affine @ voxel)[:3]])

    def take(volume, s):
        plane = np.take(volume, s, axis=slice_axis)  # axes: in_plane order
        plane = plane[::-1, ::-1]                    # reverse both in-plane axes
        return plane.T                               # rows = row_axis, columns = col_axis

    return iop, [round(row_step, 6), round(col_step, 6)], positions, take


def affine_from_dicom(iop, spacing, positions, slice_axis, shape):
    """The NIfTI (RAS) affine of the volume as the DICOM geometry written describes it."""
    lps = np.diag([-1.0, -1.0, 1.0])
    in_plane = [a for a in range(3) if a != slice_axis]
    col_axis, row_axis = in_plane
    cols, rows = np.array(iop[:3]), np.array(iop[3:])
    first, last = np.array(positions[0]), np.array(positions[-1])
    a = np.eye(4)
    a[:3, col_axis] = lps @ (-cols * spacing[1])
    a[:3, row_axis] = lps @ (-rows * spacing[0])
    a[:3, slice_axis] = lps @ ((last - first) / (len(positions) - 1))
    corner = np.zeros(3)
    corner[col_axis] = shape[col_axis] - 1
    corner[row_axis] = shape[row_axis] - 1
    a[:3, 3] = lps @ first - a[:3, :3] @ corner
    return a


def base_dataset(series, transfer_syntax):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MRImageStorage
    meta.TransferSyntaxUID = transfer_syntax
    meta.ImplementationClassUID = uid("implementation")
    meta.ImplementationVersionName = "DEFACER_TEST"
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = MRImageStorage
    ds.Modality = "MR"
    for k, v in {**PATIENT, **STUDY}.items():
        setattr(ds, k, v)
    ds.StudyInstanceUID = uid("study")
    ds.FrameOfReferenceUID = uid("frame")
    ds.PositionReferenceIndicator = ""
    ds.Manufacturer = "SIEMENS"
    ds.ManufacturerModelName = "Prisma"
    ds.SoftwareVersions = "syngo MR E11"
    ds.MagneticFieldStrength = "3"
    ds.ImagingFrequency = "123.255"
    ds.ImagedNucleus = "1H"
    ds.BodyPartExamined = "HEAD"
    ds.PatientPosition = "HFS"
    ds.ReceiveCoilName = "HeadNeck_20"
    ds.TransmitCoilName = "Body"
    ds.SeriesInstanceUID = uid("series", series["number"])
    ds.SeriesNumber = series["number"]
    ds.SeriesDescription = series["description"]
    ds.ProtocolName = series["protocol"]
    ds.SeriesDate = STUDY["StudyDate"]
    ds.SeriesTime = "1015%02d.000000" % series["number"]
    for k, v in series["sequence"].items():
        setattr(ds, k, v)
    if "comments" in series:
        ds.ImageComments = series["comments"]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    return ds


def write_slice(ds_template, series, index, iop, spacing, position, pixels, path):
    ds = copy.deepcopy(ds_template)
    sop = uid("image", series["number"], index)
    ds.file_meta.MediaStorageSOPInstanceUID = sop
    ds.SOPInstanceUID = sop
    ds.InstanceNumber = index + 1
    ds.AcquisitionNumber = 1
    ds.ImageType = series.get("image_type", ["ORIGINAL", "PRIMARY", "M", "ND", "NORM"])
    ds.AcquisitionDate = STUDY["StudyDate"]
    ds.AcquisitionTime = "1016%02d.%06d" % (series["number"], index * 2500)
    ds.AcquisitionDateTime = STUDY["StudyDate"] + ds.AcquisitionTime
    ds.ContentDate = STUDY["StudyDate"]
    ds.ContentTime = ds.AcquisitionTime
    ds.ImageOrientationPatient = [ds_number(v, 8) for v in iop]
    ds.ImagePositionPatient = [ds_number(v) for v in position]
    normal = np.cross(iop[:3], iop[3:])
    ds.SliceLocation = ds_number(float(np.dot(normal, position)))
    ds.SliceThickness = ds_number(series["thickness"])
    ds.SpacingBetweenSlices = ds_number(series["thickness"])
    ds.PixelSpacing = [ds_number(v) for v in spacing]
    ds.Rows, ds.Columns = pixels.shape
    ds.AcquisitionMatrix = [0, pixels.shape[1], pixels.shape[0], 0]
    ds.InPlanePhaseEncodingDirection = "ROW"
    ds.WindowCenter = "600"
    ds.WindowWidth = "1200"
    ds.PixelData = np.ascontiguousarray(pixels, dtype="<u2").tobytes()
    ds.save_as(path, enforce_file_format=True)


def write_volume(folder, volume, affine, slice_axis, series, transfer_syntax, name):
    """Writes one series, one file per slice; returns the affine the DICOM geometry gives."""
    iop, spacing, positions, take = slice_geometry(affine, volume.shape, slice_axis)
    template = base_dataset(series, transfer_syntax)
    for s in range(volume.shape[slice_axis]):
        pixels = take(volume, s)
        write_slice(template, series, s, iop, spacing, positions[s], pixels, os.path.join(folder, name(s)))
    return affine_from_dicom(iop, spacing, positions, slice_axis, volume.shape)


T1_SEQUENCE = {
    "ScanningSequence": ["GR", "IR"], "SequenceVariant": ["SK", "SP", "MP"], "ScanOptions": "IR",
    "MRAcquisitionType": "3D", "SequenceName": "*tfl3d1_16ns", "RepetitionTime": "2300",
    "EchoTime": "2.98", "InversionTime": "900", "FlipAngle": "9", "EchoNumbers": 1,
    "NumberOfAverages": "1", "PixelBandwidth": "240", "EchoTrainLength": 1,
}
T2_SEQUENCE = {
    "ScanningSequence": "SE", "SequenceVariant": ["SK", "SP"], "ScanOptions": "",
    "MRAcquisitionType": "3D", "SequenceName": "*spc3d1_231ns", "RepetitionTime": "3200",
    "EchoTime": "409", "FlipAngle": "120", "EchoNumbers": 1, "NumberOfAverages": "1",
    "PixelBandwidth": "751", "EchoTrainLength": 231,
}
LOCALIZER_SEQUENCE = {
    "ScanningSequence": "GR", "SequenceVariant": ["SP", "OSP"], "ScanOptions": "",
    "MRAcquisitionType": "2D", "SequenceName": "*fl2d1", "RepetitionTime": "8.6",
    "EchoTime": "4", "FlipAngle": "20", "EchoNumbers": 1, "NumberOfAverages": "1",
    "PixelBandwidth": "320", "EchoTrainLength": 1,
}


def to_stored(data, scale):
    return np.clip(np.rint(data * scale), 0, 4095).astype(np.uint16)


def save_nifti(volume, affine, path):
    img = nib.Nifti1Image(volume, affine)
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    nib.save(img, path)


def localizer(folder, head, head_affine):
    """A three-plane localiser: one sagittal, one coronal, one axial slice of 3 mm pixels."""
    series = {"number": 1, "description": "localizer", "protocol": "localizer", "thickness": 7.0,
              "sequence": LOCALIZER_SEQUENCE}
    template = base_dataset(series, ImplicitVRLittleEndian)
    small, small_affine = resample(head, head_affine, 3.0)
    stored = to_stored(small, 4)
    centre = [n // 2 for n in small.shape]
    names = []
    for index, axis in enumerate([0, 1, 2]):
        iop, spacing, positions, take = slice_geometry(small_affine, small.shape, axis)
        pixels = take(stored, centre[axis])
        names.append("MR.%s" % uid("image", 1, index))
        write_slice(template, series, index, iop, spacing, positions[centre[axis]], pixels, os.path.join(folder, names[-1]))
    return sorted(names)


def main(real, out):
    if os.path.exists(out):
        shutil.rmtree(out)
    os.makedirs(out)
    colin = nib.load(os.path.join(real, "ch2.nii.gz"))
    t1, t1_affine = resample(np.asanyarray(colin.dataobj), colin.affine, 1.5)
    t1 = to_stored(t1, 4)
    t1_series = {"number": 2, "description": "t1_mprage_tra_1.5mm", "protocol": "t1_mprage_tra",
                 "thickness": 1.5, "sequence": T1_SEQUENCE}

    single = os.path.join(out, "single")
    os.makedirs(single)
    single_affine = write_volume(single, t1, t1_affine, 2, t1_series, ExplicitVRLittleEndian,
                                 lambda s: "IM-0002-%04d.dcm" % (s + 1))
    save_nifti(t1.astype(np.int16), single_affine, os.path.join(out, "single.nii.gz"))

    study = os.path.join(out, "study")
    os.makedirs(study)
    localizer_files = localizer(study, np.asanyarray(colin.dataobj).astype(np.float64), colin.affine)
    write_volume(study, t1, t1_affine, 2, t1_series, ExplicitVRLittleEndian,
                 lambda s: "MR.%s" % uid("image", 2, s))
    average = nib.load(os.path.join(real, "mean_reg2mean.nii.gz"))
    t2, t2_affine = resample(np.asanyarray(average.dataobj), average.affine, 1.5)
    t2 = to_stored(t2, 3)
    t2_series = {"number": 3, "description": "t2_space_sag DOE JANE PID84721193", "protocol": "t2_space_sag",
                 "thickness": 1.5, "sequence": T2_SEQUENCE, "comments": "repeat for Jane Doe, see ACC99887766"}
    study_affine = write_volume(study, t2, t2_affine, 0, t2_series, ExplicitVRLittleEndian,
                                lambda s: "MR.%s" % uid("image", 3, s))
    save_nifti(t2.astype(np.int16), study_affine, os.path.join(out, "study-3.nii.gz"))

    manifest = {
        "planted": PLANTED_LONG,
        "plantedNames": PLANTED_NAMES,
        "cases": {
            "single": {"files": len(os.listdir(single)), "series": [{"number": 2, "name": "2_t1_mprage_tra_1.5mm",
                                                                      "nifti": "single.nii.gz"}]},
            "study": {"files": len(os.listdir(study)), "series": [
                {"number": 1, "name": "1_localizer", "head": False, "files": localizer_files},
                {"number": 2, "name": "2_t1_mprage_tra_1.5mm", "nifti": "single.nii.gz"},
                {"number": 3, "name": "3_t2_space_sag", "nifti": "study-3.nii.gz"},
            ]},
        },
    }
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2, sort_keys=True)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
