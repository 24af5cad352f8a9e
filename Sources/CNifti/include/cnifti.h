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

/// Reads at most `capacity` bytes from the start of a file, decompressing gzip (plain files
/// are read as they are). Returns the number of bytes read, or -1 when the file cannot be opened.
/// Nothing beyond `capacity` is inflated.
int64_t dfc_read_prefix(const char *path, unsigned char *buffer, int64_t capacity);

/// Result codes of `dfc_read_voxels`.
enum {
    DFC_READ_OK = 0,
    DFC_READ_CANNOT_OPEN = -1,
    DFC_READ_SEEK_FAILED = -2,
    DFC_READ_SHORT = -3,       // the file ends before all voxels were read
    DFC_READ_CORRUPT = -4,     // the compressed stream is damaged or cut off
    DFC_READ_TRAILING = -5,    // more bytes than the image and `max_trailing` (stopped there)
    DFC_READ_MISMATCH = -6,    // the bytes differ from those expected (verification only)
    DFC_READ_NO_MEMORY = -7,
};

/// Reads `nbytes` of voxel data at `offset` from a plain or gzipped file into `buffer`,
/// swaps bytes when asked, and checks that a gzipped stream ends cleanly (every member's CRC
/// and length). Reading stops with DFC_READ_TRAILING as soon as the file (decompressed) holds
/// more than `max_trailing` bytes after the image: a gzip bomb is never inflated to its end.
int dfc_read_voxels(const char *image_path, int64_t offset, void *buffer, int64_t nbytes,
                    int swapsize, int swap, int64_t max_trailing);

/// Re-reads a written file (decompressing and checking the gzip CRC and length) and compares
/// its bytes at `offset` with `expected`; the file may hold at most `max_trailing` more bytes.
/// With `expected` NULL the file is only read through (lengths and CRC), nothing is kept.
int dfc_verify_file(const char *path, int64_t offset, const void *expected, int64_t nbytes,
                    int64_t max_trailing);

/// `dfc_nifti_write` failed before writing anything: libnifti refused the header.
enum { DFC_WRITE_REFUSED = -100000 };

/// Writes header and data: libnifti writes the header, defacer the `nbytes` of data, checking
/// every write and the close (gzclose included). The file form follows `header->nifti_type`
/// and the path's extension (.gz compresses, at zlib `level` 1-9). No extensions are written.
/// `data_offset` receives where the data starts in the image file. Returns 0, -errno when a
/// write or the close failed (ENOSPC, EIO...), or DFC_WRITE_REFUSED when libnifti refused the header.
int dfc_nifti_write(const char *path, const dfc_nifti_header *header, const void *data, int64_t nbytes,
                    int level, int64_t *data_offset);

/// As `dfc_nifti_write`, the header only, for data that follows as ready gzip members
/// (`dfc_append_file`): a single file's header, extender and padding up to the data offset
/// in a gzip member of its own, closed; for a pair, the header file and an empty image file.
int dfc_nifti_write_header(const char *path, const dfc_nifti_header *header, int64_t *data_offset);
/// Appends `n` bytes to the end of an existing file. Returns 0 or -errno.
int dfc_append_file(const char *path, const void *data, int64_t n);
/// The largest gzip member `dfc_gzip_member` can make of `n` bytes.
int64_t dfc_gzip_bound(int64_t n);
/// Compresses `n` bytes at `src` into one complete gzip member (header, deflate at zlib
/// `level`, CRC-32 and length) in `dst`, which has room for `capacity` bytes. Returns the
/// member's size, or -1.
int64_t dfc_gzip_member(const void *src, int64_t n, int level, void *dst, int64_t capacity);
/// Re-reads the `size` bytes at `offset` of a written file as exactly one gzip member (CRC and
/// length checked) that inflates to exactly `nbytes` bytes equal to `expected` (NULL: only
/// counted). Returns a DFC_READ_ code.
int dfc_verify_gzip_member(const char *path, int64_t offset, int64_t size, const void *expected, int64_t nbytes);
/// The orientation codes libnifti derives from a 4x4 matrix (NIFTI_L2R ... NIFTI_S2I).
void dfc_orientation(const double *matrix16, int *i, int *j, int *k);

#endif
