#!/usr/bin/env python3
"""Build a tiny but real nnU-Net v1 3d_fullres model with nnU-Net 1.7.1 itself, run nnU-Net's own
prediction on it, and write the fixture that tests defacer's native nnU-Net engine.

Developer tool (needs torch and nnunet); its output is committed and CI never runs it:

    python3 -m venv /tmp/nnvenv
    /tmp/nnvenv/bin/pip install torch==2.13.0+cpu numpy
    /tmp/nnvenv/bin/pip install nnunet==1.7.1
    /tmp/nnvenv/bin/python tools/make_nnunet_fixture.py --out Tests/EngineTests/Fixtures/nnunet_tiny

What it does, with nnU-Net's own code wherever nnU-Net has code for it:

1. Plans: a plans dict written by hand with the structure ExperimentPlanner3D_v21 writes (two
   stages, stage 1 = 3d_fullres; 1 MRI channel 'nonCT', 2 foreground classes, patch 20x40x24,
   pool kernels [[1,2,2],[2,2,2],[2,2,2]], conv kernels [[1,3,3],[3,3,3],[3,3,3],[3,3,3]], base
   features 5, transpose_forward [2,0,1]), pickled as plans.pkl.
2. Weights: for folds 0 and 1, `nnUNetTrainerV2(plans_file, fold, output_folder, dataset_directory,
   batch_dice=True, stage=1, unpack_data=True, deterministic=False, fp16=False)`,
   `trainer.initialize(False)` (which builds `Generic_UNet` with the plan's arguments exactly as
   nnU-Net trains it), He-initialised weights with the biases and instance-norm affine parameters
   then set to random values (so that loading them is tested), and
   `trainer.save_checkpoint(fold_K/model_final_checkpoint.model)`, which writes the zip-format
   torch.save checkpoint and its `.model.pkl`.
   (nnU-Net 1.7.1's torch.load runs with torch's weights_only default, which since torch 2.6
   refuses the numpy float64 losses in every nnU-Net checkpoint; the script allows exactly
   numpy's scalar and dtype globals with torch.serialization.add_safe_globals.)
3. Network parity: the same steps as `nnunet.inference.predict.predict_cases` for the network
   part: `load_model_and_checkpoint_files(model_dir, (0, 1), mixed_precision=True,
   checkpoint_name="model_final_checkpoint")`, then for each fold `trainer.load_checkpoint_ram(p,
   False)` and `trainer.predict_preprocessed_data_return_seg_and_softmax(d, do_mirroring=True,
   mirror_axes=trainer.data_aug_params['mirror_axes'], use_sliding_window=True, step_size=0.5,
   use_gaussian=True, all_in_gpu=False, mixed_precision=True)[1]`, summed and divided by the
   number of folds. `d` is a preprocessed (z-scored, at target spacing, plan axis order) volume
   of 14x63x45 voxels: smaller than the patch on axis 0 (padding), 3 tiles on axes 1 and 2 (with
   a half-way step that np.round rounds to even), so 9 tiles x 8 mirrorings x 2 folds.
4. Whole pipeline: a small int16 NIfTI scan written with SimpleITK (spacing = the plan's target
   spacing, so nnU-Net resamples nothing) is segmented by `predict_cases(model_dir, [[scan]],
   [out], folds=(0, 1), save_npz=False, num_threads_preprocessing=1, num_threads_nifti_save=1,
   do_tta=True, mixed_precision=True, checkpoint_name="model_final_checkpoint",
   disable_postprocessing=True)`: cropping to the nonzero box, transpose_forward, z-scoring,
   sliding window, transpose_backward and un-cropping all come from nnU-Net. The scan is zero
   outside an ellipsoid and in a small cavity inside it (filled by nnU-Net's binary_fill_holes).
   It is run four times:
   with use_mask_for_norm False (the plan) and True (a copy of the model folder whose pickled
   plans say so), and on the same voxels with a spacing of (z, y, x) 1.3, 0.75, 2.2 mm, which
   nnU-Net resamples (third-order splines to the plan's spacing, first order back), once as
   nnU-Net does it and once with GenericPreprocessor.resample_order_data set to 1 (trilinear, as
   defacer resamples), so that the rest of the resampling path can be compared exactly.
5. Conversion: tools/convert_nnunet.py (defacer's own converter, no torch) turns the model folder
   into model.json + fold0/fold1.safetensors in --out.

Outputs in --out: model.json, fold0.safetensors, fold1.safetensors, prediction.safetensors
(`input` [1,14,63,45], `softmax` [3,14,63,45] and nnU-Net's
`_get_gaussian` importance map `gaussian` [20,40,24], float32), scan.nii.gz,
scan_resampled.nii.gz and segmentation.safetensors (`labels`, `labels_masknorm` and
`labels_resampled`, `labels_resampled_linear`, uint8, the scan's stored voxel order).
"""
import argparse
import json
import os
import pickle
import shutil
import struct
import subprocess
import sys
import tempfile
from collections import OrderedDict

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))

PATCH = [20, 40, 24]
POOL = [[1, 2, 2], [2, 2, 2], [2, 2, 2]]
CONV = [[1, 3, 3], [3, 3, 3], [3, 3, 3], [3, 3, 3]]
BASE_FEATURES = 5
FOREGROUND_CLASSES = 2
# spacing of the scan axes (z, y, x) as SimpleITK orders the array; x is the coarse one, so the
# planner's transpose_forward puts it first
DATA_SPACING = [1.0, 0.9, 2.5]
TRANSPOSE_FORWARD = [2, 0, 1]
PREDICTION_SHAPE = (14, 63, 45)       # plan axis order
SCAN_SHAPE_ZYX = (66, 50, 18)         # the NIfTI's array as SimpleITK returns it (z, y, x)
RESAMPLED_SPACING = [1.3, 0.75, 2.2]  # (z, y, x): every axis resampled, less than 3x anisotropic


def make_plans():
    tf = TRANSPOSE_FORWARD
    tb = [np.argwhere(np.array(tf) == i)[0][0] for i in range(3)]   # as the planner computes it
    spacing_t = np.array(DATA_SPACING)[tf]
    fullres = {
        'batch_size': 2,
        'num_pool_per_axis': [2, 3, 3],
        'patch_size': np.array(PATCH),
        'median_patient_size_in_voxels': np.array([16, 60, 44]),
        'current_spacing': spacing_t,
        'original_spacing': spacing_t,
        'do_dummy_2D_data_aug': False,
        'pool_op_kernel_sizes': POOL,
        'conv_kernel_sizes': CONV,
    }
    lowres = dict(fullres)
    lowres.update({'current_spacing': spacing_t * 2, 'median_patient_size_in_voxels': np.array([8, 30, 22]),
                   'patch_size': np.array([8, 32, 24]), 'num_pool_per_axis': [1, 2, 2],
                   'pool_op_kernel_sizes': [[1, 2, 2], [2, 2, 2]], 'conv_kernel_sizes': [[1, 3, 3], [3, 3, 3], [3, 3, 3]]})
    modalities = {0: 'MRI'}
    dataset_properties = {
        'all_sizes': [(16, 60, 44)], 'all_spacings': [np.array(DATA_SPACING)], 'all_classes': [1, 2],
        'modalities': modalities, 'intensityproperties': None,
        'size_reductions': OrderedDict([('case_0', 0.8)]),
    }
    return {
        'num_stages': 2, 'num_modalities': 1, 'modalities': modalities,
        'normalization_schemes': OrderedDict([(0, 'nonCT')]),
        'dataset_properties': dataset_properties, 'list_of_npz_files': [],
        'original_spacings': [np.array(DATA_SPACING)], 'original_sizes': [(16, 60, 44)],
        'preprocessed_data_folder': '/nonexistent', 'num_classes': FOREGROUND_CLASSES,
        'all_classes': [1, 2], 'base_num_features': BASE_FEATURES,
        'use_mask_for_norm': OrderedDict([(0, False)]),
        'keep_only_largest_region': None, 'min_region_size_per_class': None, 'min_size_per_class': None,
        'transpose_forward': tf, 'transpose_backward': tb,
        'data_identifier': 'nnUNetData_plans_v2.1', 'plans_per_stage': {0: lowres, 1: fullres},
        'preprocessor_name': 'GenericPreprocessor', 'conv_per_stage': 2,
    }


def smooth_volume(shape, rng, blobs=12):
    """A head-like test volume: an ellipsoid of tissue with a few bright and dark blobs."""
    grids = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing='ij')
    r2 = sum(g ** 2 for g in grids)
    v = np.where(r2 < 0.8, 100.0, 10.0)
    for _ in range(blobs):
        c = rng.uniform(-0.7, 0.7, 3)
        s = rng.uniform(0.1, 0.3)
        a = rng.uniform(-60, 80)
        v += a * np.exp(-sum((g - ci) ** 2 for g, ci in zip(grids, c)) / (2 * s * s))
    return v + rng.normal(0, 5, shape)


def build_model(model_dir):
    import torch
    from nnunet.training.network_training.nnUNetTrainerV2 import nnUNetTrainerV2

    plans_file = os.path.join(model_dir, 'plans.pkl')
    with open(plans_file, 'wb') as f:
        pickle.dump(make_plans(), f)
    for fold in (0, 1):
        torch.manual_seed(100 + fold)
        out = os.path.join(model_dir, 'fold_%d' % fold)
        trainer = nnUNetTrainerV2(plans_file, fold, output_folder=out,
                                  dataset_directory=os.path.join(model_dir, 'preprocessed'), batch_dice=True,
                                  stage=1, unpack_data=True, deterministic=False, fp16=False)
        trainer.initialize(False)
        gen = torch.Generator().manual_seed(200 + fold)
        with torch.no_grad():
            for name, p in trainer.network.named_parameters():
                if name.endswith('.bias'):
                    p.copy_(0.1 * torch.randn(p.shape, generator=gen))
                elif 'instnorm' in name:
                    p.copy_(1 + 0.2 * torch.randn(p.shape, generator=gen))
        # what a finished training leaves in the checkpoint besides the weights
        trainer.epoch = 1   # save_checkpoint stores epoch + 1 = len(all_tr_losses)
        trainer.all_tr_losses = [np.float64(-0.5), np.float64(-0.6)]
        trainer.all_val_losses = [np.float64(-0.4), np.float64(-0.5)]
        trainer.all_val_losses_tr_mode = []
        trainer.all_val_eval_metrics = [np.float64(0.7), np.float64(0.8)]
        trainer.save_checkpoint(os.path.join(out, 'model_final_checkpoint.model'))


def allow_numpy_scalars_in_torch_load():
    """nnU-Net 1.7.1 calls torch.load without weights_only, and torch >= 2.6 then refuses the numpy
    float64 losses every nnU-Net checkpoint holds: allow exactly those globals."""
    import torch
    torch.serialization.add_safe_globals([np._core.multiarray.scalar, np.dtype, type(np.dtype(np.float64))])


def predict_preprocessed(model_dir, d):
    """predict_cases' network part, verbatim in its calls."""
    from nnunet.training.model_restore import load_model_and_checkpoint_files
    trainer, params = load_model_and_checkpoint_files(model_dir, (0, 1), mixed_precision=True,
                                                      checkpoint_name='model_final_checkpoint')
    trainer.load_checkpoint_ram(params[0], False)
    softmax = trainer.predict_preprocessed_data_return_seg_and_softmax(
        d, do_mirroring=True, mirror_axes=trainer.data_aug_params['mirror_axes'], use_sliding_window=True,
        step_size=0.5, use_gaussian=True, all_in_gpu=False, mixed_precision=True)[1]
    for p in params[1:]:
        trainer.load_checkpoint_ram(p, False)
        softmax += trainer.predict_preprocessed_data_return_seg_and_softmax(
            d, do_mirroring=True, mirror_axes=trainer.data_aug_params['mirror_axes'], use_sliding_window=True,
            step_size=0.5, use_gaussian=True, all_in_gpu=False, mixed_precision=True)[1]
    if len(params) > 1:
        softmax /= len(params)
    return softmax


def with_mask_for_norm(model_dir, copy_dir):
    """A copy of the model folder whose pickled plans (plans.pkl and each fold's .model.pkl, which
    is what nnU-Net's restore_model reads) say use_mask_for_norm = True."""
    shutil.copytree(model_dir, copy_dir)
    paths = [os.path.join(copy_dir, 'plans.pkl')] + [
        os.path.join(copy_dir, 'fold_%d' % k, 'model_final_checkpoint.model.pkl') for k in (0, 1)]
    for path in paths:
        with open(path, 'rb') as f:
            obj = pickle.load(f)
        plans = obj['plans'] if 'plans' in obj else obj
        plans['use_mask_for_norm'] = OrderedDict([(0, True)])
        with open(path, 'wb') as f:
            pickle.dump(obj, f)


def segment_scan(model_dir, scan, work, tag):
    import SimpleITK as sitk
    from nnunet.inference.predict import predict_cases
    out = os.path.join(work, 'seg_%s.nii.gz' % tag)     # predict_cases skips existing outputs
    predict_cases(model_dir, [[scan]], [out], (0, 1), save_npz=False, num_threads_preprocessing=1,
                  num_threads_nifti_save=1, do_tta=True, mixed_precision=True,
                  checkpoint_name='model_final_checkpoint', disable_postprocessing=True)
    labels = sitk.GetArrayFromImage(sitk.ReadImage(out))
    assert labels.shape == SCAN_SHAPE_ZYX, labels.shape
    return np.ascontiguousarray(labels.astype(np.uint8))


class first_order_image_resampling:
    """While active, nnU-Net's GenericPreprocessor resamples images with first-order (trilinear)
    instead of third-order splines: what defacer does, so the rest of the pipeline can be
    compared exactly. (predict_cases preprocesses in a forked process, which inherits this.)"""

    def __enter__(self):
        from nnunet.preprocessing.preprocessing import GenericPreprocessor
        self.cls, self.original = GenericPreprocessor, GenericPreprocessor.__init__

        def init(this, *args, **kwargs):
            self.original(this, *args, **kwargs)
            this.resample_order_data = 1
        GenericPreprocessor.__init__ = init

    def __exit__(self, *exc):
        self.cls.__init__ = self.original


def save_safetensors(path, tensors, metadata):
    header, blobs, offset = {}, [], 0
    for name, (dtype, array) in tensors.items():
        raw = np.ascontiguousarray(array).tobytes()
        header[name] = {"dtype": dtype, "shape": list(array.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    header["__metadata__"] = {k: str(v) for k, v in metadata.items()}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--out', required=True, help='fixture folder (Tests/EngineTests/Fixtures/nnunet_tiny)')
    ap.add_argument('--work', help='keep nnU-Net\'s model folder here (default: a temporary folder)')
    args = ap.parse_args()

    import torch
    import SimpleITK as sitk
    torch.set_num_threads(2)
    allow_numpy_scalars_in_torch_load()
    work = args.work or tempfile.mkdtemp(prefix='nnunet_fixture_')
    model_dir = os.path.join(work, 'nnUNet', '3d_fullres', 'Task901_Tiny', 'nnUNetTrainerV2__nnUNetPlansv2.1')
    if os.path.exists(work) and args.work:
        shutil.rmtree(work)
    os.makedirs(model_dir)
    build_model(model_dir)

    rng = np.random.default_rng(20261201)
    raw = smooth_volume(PREDICTION_SHAPE, rng)
    d = ((raw - raw.mean()) / (raw.std() + 1e-8)).astype(np.float32)[None]
    softmax = predict_preprocessed(model_dir, d.copy())
    assert softmax.shape == (FOREGROUND_CLASSES + 1,) + PREDICTION_SHAPE
    from nnunet.network_architecture.neural_network import SegmentationNetwork
    gaussian = SegmentationNetwork._get_gaussian(PATCH, sigma_scale=1. / 8)

    # whole pipeline on a scan with a zero border (cropped by nnU-Net) at the target spacing
    # (zero outside an ellipsoid, as in a skull-stripped scan, so the nonzero mask matters, and a
    # zero cavity inside it that binary_fill_holes fills)
    scan_values = np.zeros(SCAN_SHAPE_ZYX, dtype=np.int16)
    inner = np.clip(smooth_volume((63, 44, 14), rng) * 8 + 400, 1, 3000)
    grids = np.meshgrid(*[np.linspace(-1, 1, n) for n in inner.shape], indexing='ij')
    inner[sum(g ** 2 for g in grids) > 1.1] = 0
    inner[28:34, 20:25, 6:9] = 0
    scan_values[1:64, 3:47, 2:16] = inner.astype(np.int16)
    image = sitk.GetImageFromArray(scan_values)
    image.SetSpacing(tuple(float(s) for s in DATA_SPACING[::-1]))   # SimpleITK: (x, y, z)
    scan = os.path.join(work, 'tiny_0000.nii.gz')
    sitk.WriteImage(image, scan)
    labels = segment_scan(model_dir, scan, work, 'plain')
    mask_dir = model_dir + '_masknorm'
    with_mask_for_norm(model_dir, mask_dir)
    labels_mask = segment_scan(mask_dir, scan, work, 'masknorm')
    # the same voxels with another spacing: nnU-Net resamples (third order in, first order back)
    image.SetSpacing(tuple(float(s) for s in RESAMPLED_SPACING[::-1]))
    scan_resampled = os.path.join(work, 'tinyresampled_0000.nii.gz')
    sitk.WriteImage(image, scan_resampled)
    labels_resampled = segment_scan(model_dir, scan_resampled, work, 'resampled')
    with first_order_image_resampling():
        labels_resampled_linear = segment_scan(model_dir, scan_resampled, work, 'resampled_linear')

    os.makedirs(args.out, exist_ok=True)
    subprocess.run([sys.executable, os.path.join(HERE, 'convert_nnunet.py'), '--model-dir', model_dir,
                    '--out', args.out, '--name', 'nnunet_tiny',
                    '--source', 'tools/make_nnunet_fixture.py (random weights, nnunet 1.7.1)',
                    '--licence', 'Apache-2.0 (test fixture)'], check=True)
    meta = {'made_by': 'tools/make_nnunet_fixture.py', 'nnunet': '1.7.1', 'torch': torch.__version__}
    save_safetensors(os.path.join(args.out, 'prediction.safetensors'),
                     {'input': ('F32', d), 'softmax': ('F32', softmax.astype(np.float32)),
                      'gaussian': ('F32', gaussian)}, meta)
    shutil.copy(scan, os.path.join(args.out, 'scan.nii.gz'))
    shutil.copy(scan_resampled, os.path.join(args.out, 'scan_resampled.nii.gz'))
    save_safetensors(os.path.join(args.out, 'segmentation.safetensors'),
                     {'labels': ('U8', labels), 'labels_masknorm': ('U8', labels_mask),
                      'labels_resampled': ('U8', labels_resampled),
                      'labels_resampled_linear': ('U8', labels_resampled_linear)}, meta)
    counts = [int((labels == c).sum()) for c in range(FOREGROUND_CLASSES + 1)]
    fg = (labels_resampled != 0) | (labels_resampled_linear != 0)
    print('fixture written to %s (softmax range %.4f..%.4f, label counts %s, masknorm differs at %d voxels, '
          'cubic and linear resampling agree at %.4f of the foreground)'
          % (args.out, softmax.min(), softmax.max(), counts, int((labels != labels_mask).sum()),
             float((labels_resampled == labels_resampled_linear)[fg].mean())))


if __name__ == '__main__':
    main()
