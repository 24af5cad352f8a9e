// A small C API over libnifti2 for the Engine target. Swift never sees libnifti's own
// headers (they need /usr/include/nifti on the include path); it sees only this file.
#ifndef DEFACER_CNIFTI_H
#define DEFACER_CNIFTI_H

#include <stddef.h>
#include <stdint.h>

/// Every header field defacer reads or writes, in plain C types.
typedef struct dfc_nifti_header {
    int nifti_type;          // 0 ANALYZE 7.5, 1 NIfTI-1 .nii, 2 NIfTI-1 pair, 4 NIfTI-2 .nii, 5 NIfTI-2 pair
    int ndim;
    int64_t dim[8];          // dim[1..7]; dim[0] == ndim
    double pixdim[8];        // pixdim[1..7]
    int datatype;
    int nbyper;
    int swapsize;
    double scl_slope, scl_inter, cal_min, cal_max;
    int qform_code, sform_code;
    double quatern_b, quatern_c, quatern_d, qoffset_x, qoffset_y, qoffset_z, qfac;
    double qto_xyz[16];      // row-major 4x4
    double sto_xyz[16];      // row-major 4x4
    double toffset;
    int xyz_units, time_units;
    int freq_dim, phase_dim, slice_dim, slice_code;
    int64_t slice_start, slice_end;
    double slice_duration;
    int intent_code;
    double intent_p1, intent_p2, intent_p3;
    int num_ext;
    int64_t data_offset;     // byte offset of the voxel data in the image file
    int byte_swapped;        // 1 when the file's byte order differs from this CPU's
    char descrip[80];
    char intent_name[16];
    char aux_file[24];
} dfc_nifti_header;

/// Reads the header (not the data). Returns 0, or -1 when libnifti cannot parse it.
/// `image_path` receives the file that holds the voxel data (the .img of a pair).
int dfc_nifti_read_header(const char *path, dfc_nifti_header *out,
                          char *image_path, size_t image_path_size);

/// Reads the raw header without libnifti's validity checks, to explain why a header was
/// rejected. Returns the NIfTI version (1 or 2), 0 for ANALYZE, or -1 when unreadable.
int dfc_nifti_raw_dims(const char *path, int64_t dims[8], int *datatype);

/// Result codes of `dfc_read_voxels`.
enum {
    DFC_READ_OK = 0,
    DFC_READ_CANNOT_OPEN = -1,
    DFC_READ_SEEK_FAILED = -2,
    DFC_READ_SHORT = -3,       // the file ends before all voxels were read
    DFC_READ_CORRUPT = -4,     // the compressed stream is damaged or cut off
};

/// Reads `nbytes` of voxel data at `offset` from a plain or gzipped file into `buffer`,
/// swaps bytes when asked, and checks that a gzipped stream ends cleanly.
int dfc_read_voxels(const char *image_path, int64_t offset, void *buffer, int64_t nbytes,
                    int swapsize, int swap);

/// Writes header and data through libnifti. The file form follows `header->nifti_type`
/// and the path's extension (.gz compresses). No extensions are written.
/// Returns 0, or -1 when libnifti refused the header.
int dfc_nifti_write(const char *path, const dfc_nifti_header *header, const void *data);

/// The orientation codes libnifti derives from a 4x4 matrix (NIFTI_L2R ... NIFTI_S2I).
void dfc_orientation(const double *matrix16, int *i, int *j, int *k);

#endif
