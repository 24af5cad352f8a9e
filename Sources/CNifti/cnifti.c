#include "cnifti.h"

#include <nifti2_io.h>
#include <zlib.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

static void quiet(void) {
    static int done = 0;
    if (!done) { nifti_set_debug_level(0); done = 1; }
}

static void mat_out(nifti_dmat44 m, double *out) {
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < 4; c++) out[r * 4 + c] = m.m[r][c];
}

int dfc_nifti_read_header(const char *path, dfc_nifti_header *h, char *image_path, size_t image_path_size) {
    quiet();
    memset(h, 0, sizeof(*h));
    nifti_image *nim = nifti_image_read(path, 0);
    if (nim == NULL) return -1;
    h->nifti_type = nim->nifti_type;
    h->ndim = (int)nim->ndim;
    for (int i = 0; i < 8; i++) { h->dim[i] = nim->dim[i]; h->pixdim[i] = nim->pixdim[i]; }
    h->datatype = nim->datatype;
    h->nbyper = nim->nbyper;
    h->swapsize = nim->swapsize;
    h->scl_slope = nim->scl_slope; h->scl_inter = nim->scl_inter;
    h->cal_min = nim->cal_min; h->cal_max = nim->cal_max;
    h->qform_code = nim->qform_code; h->sform_code = nim->sform_code;
    h->quatern_b = nim->quatern_b; h->quatern_c = nim->quatern_c; h->quatern_d = nim->quatern_d;
    h->qoffset_x = nim->qoffset_x; h->qoffset_y = nim->qoffset_y; h->qoffset_z = nim->qoffset_z;
    h->qfac = nim->qfac;
    mat_out(nim->qto_xyz, h->qto_xyz);
    mat_out(nim->sto_xyz, h->sto_xyz);
    h->toffset = nim->toffset;
    h->xyz_units = nim->xyz_units; h->time_units = nim->time_units;
    h->freq_dim = nim->freq_dim; h->phase_dim = nim->phase_dim; h->slice_dim = nim->slice_dim;
    h->slice_code = nim->slice_code;
    h->slice_start = nim->slice_start; h->slice_end = nim->slice_end;
    h->slice_duration = nim->slice_duration;
    h->intent_code = nim->intent_code;
    h->intent_p1 = nim->intent_p1; h->intent_p2 = nim->intent_p2; h->intent_p3 = nim->intent_p3;
    h->num_ext = nim->num_ext;
    h->data_offset = nim->iname_offset;
    h->byte_swapped = nim->byteorder != nifti_short_order();
    memcpy(h->descrip, nim->descrip, sizeof(h->descrip)); h->descrip[79] = 0;
    memcpy(h->intent_name, nim->intent_name, sizeof(h->intent_name)); h->intent_name[15] = 0;
    memcpy(h->aux_file, nim->aux_file, sizeof(h->aux_file)); h->aux_file[23] = 0;
    int ok = 0;
    if (nim->iname != NULL && strlen(nim->iname) < image_path_size) {
        strcpy(image_path, nim->iname);
    } else {
        ok = -1;
    }
    nifti_image_free(nim);
    return ok;
}

/* Where decompressed (or plain) bytes go: copied into `dst`, or compared with it, skipping
   the first `skip` bytes; `total` counts every byte seen, to stop at `limit`. */
typedef struct {
    char *dst;
    int64_t skip, want, got, total, limit;
    int compare, mismatch;
} sink_t;

static void sink_put(sink_t *s, const char *src, int64_t n) {
    s->total += n;
    if (s->skip > 0) {
        int64_t k = n < s->skip ? n : s->skip;
        s->skip -= k; src += k; n -= k;
    }
    int64_t room = s->want - s->got;
    if (n > room) n = room;
    if (n <= 0) return;
    if (s->dst == NULL) {
        /* only counting: the file is checked through, nothing is kept */
    } else if (s->compare) {
        if (memcmp(s->dst + s->got, src, (size_t)n) != 0) s->mismatch = 1;
    } else {
        memcpy(s->dst + s->got, src, (size_t)n);
    }
    s->got += n;
}

enum { CHUNK = 1 << 18 };

/* Inflates every gzip member of the file to its end, checking each member's CRC and
   length (zlib's gz* functions accept a stream cut inside its trailer), and stops as soon
   as more bytes come out than `sink->limit`. */
static int read_gzip(FILE *fp, sink_t *sink) {
    unsigned char *in = malloc(CHUNK), *out = malloc(CHUNK);
    if (!in || !out) { free(in); free(out); return DFC_READ_NO_MEMORY; }
    z_stream zs; memset(&zs, 0, sizeof(zs));
    if (inflateInit2(&zs, 15 + 16) != Z_OK) { free(in); free(out); return DFC_READ_NO_MEMORY; }
    int status = DFC_READ_OK, ended = 0, out_full = 0;
    for (;;) {
        if (zs.avail_in == 0 && !out_full) {
            size_t n = fread(in, 1, CHUNK, fp);
            if (n == 0) break;
            zs.next_in = in; zs.avail_in = (uInt)n;
        }
        if (ended) {
            /* padding zeros some tools append, or another gzip member */
            while (zs.avail_in > 0 && zs.next_in[0] == 0) { zs.next_in++; zs.avail_in--; }
            if (zs.avail_in == 0) continue;
            if (inflateReset(&zs) != Z_OK) { status = DFC_READ_CORRUPT; break; }
            ended = 0;
        }
        zs.next_out = out; zs.avail_out = CHUNK;
        int ret = inflate(&zs, Z_NO_FLUSH);
        out_full = zs.avail_out == 0;
        sink_put(sink, (const char *)out, (int64_t)(CHUNK - zs.avail_out));
        if (sink->total > sink->limit) { status = DFC_READ_TRAILING; break; }
        /* a finished member has no output left to give: read on even if this call filled `out` */
        if (ret == Z_STREAM_END) { ended = 1; out_full = 0; continue; }
        if (ret != Z_OK && ret != Z_BUF_ERROR) { status = DFC_READ_CORRUPT; break; }
    }
    if (status == DFC_READ_OK && ferror(fp)) status = DFC_READ_CORRUPT;
    if (status == DFC_READ_OK && sink->got < sink->want) status = DFC_READ_SHORT;
    if (status == DFC_READ_OK && !ended) status = DFC_READ_CORRUPT;
    inflateEnd(&zs);
    free(in); free(out);
    return status;
}

/* Reads a plain file to its end through the sink, stopping past `sink->limit`. */
static int read_plain(FILE *fp, sink_t *sink) {
    char *buf = malloc(CHUNK);
    if (!buf) return DFC_READ_NO_MEMORY;
    int status = DFC_READ_OK;
    size_t n;
    while ((n = fread(buf, 1, CHUNK, fp)) > 0) {
        sink_put(sink, buf, (int64_t)n);
        if (sink->total > sink->limit) { status = DFC_READ_TRAILING; break; }
    }
    if (status == DFC_READ_OK && ferror(fp)) status = DFC_READ_CANNOT_OPEN;
    if (status == DFC_READ_OK && sink->got < sink->want) status = DFC_READ_SHORT;
    free(buf);
    return status;
}

static int read_through(const char *path, sink_t *sink) {
    FILE *fp = fopen(path, "rb");
    if (fp == NULL) return DFC_READ_CANNOT_OPEN;
    int status = nifti_is_gzfile(path) ? read_gzip(fp, sink) : read_plain(fp, sink);
    fclose(fp);
    if (status == DFC_READ_OK && sink->compare && sink->mismatch) status = DFC_READ_MISMATCH;
    return status;
}

int dfc_read_voxels(const char *image_path, int64_t offset, void *buffer, int64_t nbytes,
                    int swapsize, int swap, int64_t max_trailing) {
    if (offset < 0 || nbytes < 0 || max_trailing < 0 || offset > INT64_MAX - nbytes - max_trailing)
        return DFC_READ_TRAILING;
    sink_t sink = { (char *)buffer, offset, nbytes, 0, 0, offset + nbytes + max_trailing, 0, 0 };
    int status = read_through(image_path, &sink);
    if (status == DFC_READ_OK && swap && swapsize > 1) nifti_swap_Nbytes(nbytes / swapsize, swapsize, buffer);
    return status;
}

int dfc_verify_file(const char *path, int64_t offset, const void *expected, int64_t nbytes, int64_t max_trailing) {
    if (offset < 0 || nbytes < 0 || max_trailing < 0 || offset > INT64_MAX - nbytes - max_trailing)
        return DFC_READ_TRAILING;
    sink_t sink = { (char *)expected, offset, nbytes, 0, 0, offset + nbytes + max_trailing, 1, 0 };
    int status = read_through(path, &sink);
    if (status == DFC_READ_OK && sink.total < offset + nbytes) status = DFC_READ_SHORT;
    return status;
}

int64_t dfc_read_prefix(const char *path, unsigned char *buffer, int64_t capacity) {
    gzFile gz = gzopen(path, "rb");
    if (gz == NULL) return -1;
    int64_t got = 0;
    while (got < capacity) {
        unsigned want = capacity - got > (1 << 20) ? (1u << 20) : (unsigned)(capacity - got);
        int n = gzread(gz, buffer + got, want);
        if (n <= 0) break;
        got += n;
    }
    gzclose(gz);
    return got;
}

static nifti_dmat44 mat_in(const double *in) {
    nifti_dmat44 m;
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < 4; c++) m.m[r][c] = in[r * 4 + c];
    return m;
}

/* Writes every byte of `n` at `p` to `fd`; 0 or an errno. */
static int write_all(int fd, const char *p, int64_t n) {
    while (n > 0) {
        size_t want = n > (1 << 30) ? (size_t)1 << 30 : (size_t)n;
        ssize_t done = write(fd, p, want);
        if (done < 0) {
            if (errno == EINTR) continue;
            return errno ? errno : EIO;
        }
        if (done == 0) return EIO;
        p += done; n -= done;
    }
    return 0;
}

int dfc_append_file(const char *path, const void *data, int64_t n) {
    int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd < 0) return errno ? -errno : -EIO;
    int failed = write_all(fd, (const char *)data, n);
    if (close(fd) != 0 && !failed) failed = errno ? errno : EIO;
    return -failed;
}

static int write_nifti(const char *path, const dfc_nifti_header *h, const void *data, int64_t nbytes,
                       int level, int header_only, int64_t *data_offset);

int dfc_nifti_write(const char *path, const dfc_nifti_header *h, const void *data, int64_t nbytes,
                    int level, int64_t *data_offset) {
    return write_nifti(path, h, data, nbytes, level, 0, data_offset);
}

int dfc_nifti_write_header(const char *path, const dfc_nifti_header *h, int64_t *data_offset) {
    return write_nifti(path, h, NULL, 0, 1, 1, data_offset);
}

static int write_nifti(const char *path, const dfc_nifti_header *h, const void *data, int64_t nbytes,
                       int level, int header_only, int64_t *data_offset) {
    quiet();
    int64_t dims[8];
    for (int i = 0; i < 8; i++) dims[i] = h->dim[i];
    dims[0] = h->ndim;
    nifti_image *nim = nifti_make_new_nim(dims, h->datatype, 0);
    if (nim == NULL) return DFC_WRITE_REFUSED;
    nim->nifti_type = h->nifti_type;
    nim->ndim = h->ndim; nim->dim[0] = h->ndim;
    for (int i = 1; i < 8; i++) nim->dim[i] = h->dim[i];
    nim->nx = h->dim[1]; nim->ny = h->dim[2]; nim->nz = h->dim[3]; nim->nt = h->dim[4];
    nim->nu = h->dim[5]; nim->nv = h->dim[6]; nim->nw = h->dim[7];
    for (int i = 1; i < 8; i++) nim->pixdim[i] = h->pixdim[i];
    nim->dx = h->pixdim[1]; nim->dy = h->pixdim[2]; nim->dz = h->pixdim[3];
    nim->dt = h->pixdim[4]; nim->du = h->pixdim[5]; nim->dv = h->pixdim[6]; nim->dw = h->pixdim[7];
    nim->scl_slope = h->scl_slope; nim->scl_inter = h->scl_inter;
    nim->cal_min = h->cal_min; nim->cal_max = h->cal_max;
    nim->qform_code = h->qform_code; nim->sform_code = h->sform_code;
    nim->quatern_b = h->quatern_b; nim->quatern_c = h->quatern_c; nim->quatern_d = h->quatern_d;
    nim->qoffset_x = h->qoffset_x; nim->qoffset_y = h->qoffset_y; nim->qoffset_z = h->qoffset_z;
    nim->qfac = h->qfac;
    nim->qto_xyz = mat_in(h->qto_xyz);
    nim->sto_xyz = mat_in(h->sto_xyz);
    nim->toffset = h->toffset;
    nim->xyz_units = h->xyz_units; nim->time_units = h->time_units;
    nim->freq_dim = h->freq_dim; nim->phase_dim = h->phase_dim; nim->slice_dim = h->slice_dim;
    nim->slice_code = h->slice_code;
    nim->slice_start = h->slice_start; nim->slice_end = h->slice_end;
    nim->slice_duration = h->slice_duration;
    nim->intent_code = h->intent_code;
    nim->intent_p1 = h->intent_p1; nim->intent_p2 = h->intent_p2; nim->intent_p3 = h->intent_p3;
    memcpy(nim->descrip, h->descrip, 80); nim->descrip[79] = 0;
    memcpy(nim->intent_name, h->intent_name, 16); nim->intent_name[15] = 0;
    memcpy(nim->aux_file, h->aux_file, 24); nim->aux_file[23] = 0;
    nim->num_ext = 0;
    nim->ext_list = NULL;
    if (nifti_set_filenames(nim, path, 0, 1) != 0) { nifti_image_free(nim); return DFC_WRITE_REFUSED; }
    /* libnifti writes the header (and, for a pair, closes it: the caller re-reads it) and
       leaves the image file open at the data offset; the data and the close are ours, so
       that every write and the final close are checked. */
    nim->data = NULL;
    char gz_mode[4] = "wb1";
    if (level >= 1 && level <= 9) gz_mode[2] = (char)('0' + level);
    znzFile fp = nifti_image_write_hdr_img2(nim, 2, nifti_is_gzfile(path) ? gz_mode : "wb", NULL, NULL);
    *data_offset = nim->iname_offset;
    char *image_path = header_only && nim->iname ? strdup(nim->iname) : NULL;
    int pair = nim->nifti_type == NIFTI_FTYPE_NIFTI1_2 || nim->nifti_type == NIFTI_FTYPE_NIFTI2_2
        || nim->nifti_type == NIFTI_FTYPE_ANALYZE;
    nifti_image_free(nim);
    if (znz_isnull(fp)) { free(image_path); return errno ? -errno : DFC_WRITE_REFUSED; }
    if (header_only) {
        /* the header's own gzip member ends here (a single file: header, extender and the
           zeros up to the data); a pair's image file is left empty for the data's members */
        errno = 0;
        int closed = znzclose(fp);
        if (closed != 0) { free(image_path); return errno ? -errno : -EIO; }
        if (image_path == NULL) return -ENOMEM;
        int failed = 0;
        if (pair) {
            int fd = open(image_path, O_WRONLY | O_TRUNC | O_CLOEXEC);
            if (fd < 0 || close(fd) != 0) failed = errno ? errno : EIO;
        }
        free(image_path);
        return -failed;
    }
    const char *p = (const char *)data;
    int64_t left = nbytes;
    int failed = 0;
    while (left > 0 && !failed) {
        size_t n = left > (1 << 30) ? (size_t)1 << 30 : (size_t)left;
        errno = 0;
        size_t done = znzwrite(p, 1, n, fp);
        if (done != n) failed = errno ? errno : EIO;
        p += done; left -= (int64_t)done;
    }
    errno = 0;
    int closed = znzclose(fp);
    if (failed) return -failed;
    if (closed != 0) return errno ? -errno : -EIO;
    return 0;
}

void dfc_orientation(const double *matrix16, int *i, int *j, int *k) {
    nifti_dmat44_to_orientation(mat_in(matrix16), i, j, k);
}

int64_t dfc_gzip_bound(int64_t n) {
    /* deflate's own bound per 1 GiB piece fed, plus the gzip header and trailer */
    int64_t pieces = n / (1 << 30) + 1;
    return n + pieces * ((n >> 12) + (n >> 14) + (n >> 25) + 13 + 5) + 18 + 64;
}

int64_t dfc_gzip_member(const void *src, int64_t n, int level, void *dst, int64_t capacity) {
    z_stream zs; memset(&zs, 0, sizeof(zs));
    if (deflateInit2(&zs, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) return -1;
    const unsigned char *in = (const unsigned char *)src;
    unsigned char *out = (unsigned char *)dst;
    int64_t left = n, room = capacity;
    int ret = Z_OK;
    while (ret == Z_OK) {
        if (zs.avail_in == 0 && left > 0) {
            uInt take = left > (1 << 30) ? (1u << 30) : (uInt)left;
            zs.next_in = (unsigned char *)in; zs.avail_in = take;
            in += take; left -= take;
        }
        if (zs.avail_out == 0) {
            uInt give = room > (1 << 30) ? (1u << 30) : (uInt)room;
            if (give == 0) break;
            zs.next_out = out; zs.avail_out = give;
            out += give; room -= give;
        }
        ret = deflate(&zs, left > 0 || zs.avail_in > 0 ? Z_NO_FLUSH : Z_FINISH);
        if (ret == Z_BUF_ERROR) ret = Z_OK;
    }
    int64_t written = (int64_t)zs.total_out;
    deflateEnd(&zs);
    return ret == Z_STREAM_END ? written : -1;
}

int dfc_verify_gzip_member(const char *path, int64_t offset, int64_t size, const void *expected, int64_t nbytes) {
    if (offset < 0 || size <= 0 || nbytes < 0) return DFC_READ_CORRUPT;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return DFC_READ_CANNOT_OPEN;
    unsigned char *in = malloc(CHUNK), *out = malloc(CHUNK);
    z_stream zs; memset(&zs, 0, sizeof(zs));
    if (!in || !out || inflateInit2(&zs, 15 + 16) != Z_OK) { free(in); free(out); close(fd); return DFC_READ_NO_MEMORY; }
    const unsigned char *want = (const unsigned char *)expected;
    int64_t read_so_far = 0, got = 0;
    int status = DFC_READ_OK, ret = Z_OK;
    while (status == DFC_READ_OK && ret != Z_STREAM_END) {
        if (zs.avail_in == 0) {
            if (read_so_far == size) { status = DFC_READ_SHORT; break; }
            size_t take = size - read_so_far > CHUNK ? CHUNK : (size_t)(size - read_so_far);
            ssize_t n = pread(fd, in, take, offset + read_so_far);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) { status = DFC_READ_SHORT; break; }
            read_so_far += n;
            zs.next_in = in; zs.avail_in = (uInt)n;
        }
        zs.next_out = out; zs.avail_out = CHUNK;
        ret = inflate(&zs, Z_NO_FLUSH);
        if (ret != Z_OK && ret != Z_STREAM_END && ret != Z_BUF_ERROR) { status = DFC_READ_CORRUPT; break; }
        int64_t produced = CHUNK - zs.avail_out;
        if (got + produced > nbytes) { status = DFC_READ_TRAILING; break; }
        if (want != NULL && memcmp(want + got, out, (size_t)produced) != 0) status = DFC_READ_MISMATCH;
        got += produced;
    }
    /* the member ends exactly where it should, with exactly the bytes written */
    if (status == DFC_READ_OK && (zs.avail_in != 0 || read_so_far != size)) status = DFC_READ_CORRUPT;
    if (status == DFC_READ_OK && got != nbytes) status = DFC_READ_SHORT;
    inflateEnd(&zs);
    free(in); free(out); close(fd);
    return status;
}
