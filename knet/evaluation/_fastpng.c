/* Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
 *
 * Fast path of knet.evaluation._png: decode an 8-bit RGB / RGBA / palette,
 * non-interlaced PNG straight into COCO-panoptic ids R + 256 G + 65536 B.
 *
 * Why: decoding is most of the cost of panoptic evaluation, and the PNG
 * libraries spend it in zlib's inflate and in per-row bookkeeping. Here the
 * whole image stream is inflated in one call (libdeflate when the caller
 * hands us its functions, about 4x faster than zlib on panoptic maps;
 * zlib otherwise), unfiltered in place and packed to uint32 ids in the same
 * pass, all without the GIL.
 *
 * The decoder is deliberately strict: anything unusual (other bit depths or
 * colour types, interlacing, a damaged or truncated file, a palette index out
 * of range, extra data) returns a non-zero status and the Python side falls
 * back to libspng, which decodes the file or raises the error message users
 * see. Every chunk's CRC-32 and the zlib Adler-32 are verified.
 *
 * count_pairs() is the other hot loop of PQ: the contingency table of GT and
 * predicted ids of many images, from the runs of equal pixel pairs, counted
 * in a hash table in one pass (numpy needs several passes and a sort).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* libdeflate entry points, set once by set_libdeflate() (0 = use zlib) */
typedef void *(*alloc_fn)(void);
typedef void (*free_fn)(void *);
typedef int (*zlib_decompress_fn)(void *, const void *, size_t, void *,
                                  size_t, size_t *);
static alloc_fn ld_alloc = NULL;
static free_fn ld_free = NULL;
static zlib_decompress_fn ld_decompress = NULL;

enum {
    OK = 0,
    E_FORMAT = 1,      /* not a PNG / malformed chunk layout */
    E_UNSUPPORTED = 2, /* valid PNG this fast path does not handle */
    E_CRC = 3,         /* chunk CRC mismatch */
    E_DATA = 4,        /* bad compressed data or wrong amount of it */
    E_FILTER = 5,      /* unknown filter type */
    E_PALETTE = 6,     /* palette missing or index out of range */
    E_SIZE = 7,        /* output buffer does not match the image */
    E_MEMORY = 8
};

static uint32_t be32(const unsigned char *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
           ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

static int inflate_all(const unsigned char *src, size_t n, unsigned char *dst,
                       size_t want) {
    if (ld_decompress != NULL) {
        void *d = ld_alloc();
        if (d == NULL) return E_MEMORY;
        int ret = ld_decompress(d, src, n, dst, want, NULL);
        ld_free(d);
        return ret == 0 ? OK : E_DATA; /* exact size, Adler-32 checked */
    }
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    if (inflateInit(&zs) != Z_OK) return E_MEMORY;
    int status = E_DATA;
    size_t done_in = 0, done_out = 0;
    for (;;) { /* avail_* are 32-bit: feed in slices */
        size_t in_left = n - done_in, out_left = want - done_out;
        zs.next_in = (unsigned char *)src + done_in;
        zs.avail_in = (uInt)(in_left > 0x40000000u ? 0x40000000u : in_left);
        zs.next_out = dst + done_out;
        zs.avail_out =
            (uInt)(out_left > 0x40000000u ? 0x40000000u : out_left);
        uInt in0 = zs.avail_in, out0 = zs.avail_out;
        int ret = inflate(&zs, Z_NO_FLUSH);
        done_in += in0 - zs.avail_in;
        done_out += out0 - zs.avail_out;
        if (ret == Z_STREAM_END) {
            status = done_out == want ? OK : E_DATA;
            break;
        }
        if (ret != Z_OK) break;
        if (done_out == want) { /* full: more output would be too much */
            unsigned char extra;
            zs.next_out = &extra;
            zs.avail_out = 1;
            ret = inflate(&zs, Z_NO_FLUSH);
            status = (ret == Z_STREAM_END && zs.avail_out == 1) ? OK : E_DATA;
            break;
        }
        if (done_in == n) break; /* truncated stream */
    }
    inflateEnd(&zs);
    return status;
}

static int paeth(int a, int b, int c) {
    int p = a + b - c;
    int pa = abs(p - a), pb = abs(p - b), pc = abs(p - c);
    if (pa <= pb && pa <= pc) return a;
    return pb <= pc ? b : c;
}

/* Whether two pixels of bpp bytes are equal (memcmp without the call). */
static int same_pixel(const unsigned char *p, const unsigned char *q,
                      size_t bpp) {
    if (bpp == 3)
        return p[0] == q[0] && p[1] == q[1] && p[2] == q[2];
    if (bpp == 4) {
        uint32_t u, v;
        memcpy(&u, p, 4);
        memcpy(&v, q, 4);
        return u == v;
    }
    return memcmp(p, q, bpp) == 0;
}

/* Undo the PNG filter of one row in place; prev is the previous
 * (reconstructed) row or NULL for the first row. */
static int unfilter_row(int type, unsigned char *row,
                        const unsigned char *prev, size_t len, size_t bpp) {
    size_t i;
    switch (type) {
    case 0:
        return OK;
    case 1:
        for (i = bpp; i < len; i++) row[i] = (unsigned char)(row[i] + row[i - bpp]);
        return OK;
    case 2:
        if (prev != NULL)
            for (i = 0; i < len; i++) row[i] = (unsigned char)(row[i] + prev[i]);
        return OK;
    case 3:
        if (prev == NULL) {
            for (i = bpp; i < len; i++)
                row[i] = (unsigned char)(row[i] + (row[i - bpp] >> 1));
        } else {
            for (i = 0; i < bpp; i++)
                row[i] = (unsigned char)(row[i] + (prev[i] >> 1));
            for (; i < len; i++)
                row[i] = (unsigned char)(row[i] +
                                         ((row[i - bpp] + prev[i]) >> 1));
        }
        return OK;
    case 4:
        if (prev == NULL) { /* b = c = 0: the predictor is a */
            for (i = bpp; i < len; i++) row[i] = (unsigned char)(row[i] + row[i - bpp]);
        } else {
            for (i = 0; i < bpp; i++) row[i] = (unsigned char)(row[i] + prev[i]);
            /* pixel by pixel: where the row above is flat (b == c, most of
             * a panoptic map) the predictor is a, as for Sub */
            for (; i + bpp <= len; i += bpp) {
                size_t k;
                if (same_pixel(prev + i, prev + i - bpp, bpp)) {
                    for (k = 0; k < bpp; k++)
                        row[i + k] = (unsigned char)(row[i + k] +
                                                     row[i + k - bpp]);
                } else {
                    for (k = 0; k < bpp; k++)
                        row[i + k] = (unsigned char)(
                            row[i + k] + paeth(row[i + k - bpp], prev[i + k],
                                               prev[i + k - bpp]));
                }
            }
        }
        return OK;
    default:
        return E_FILTER;
    }
}

/* Reconstructed row -> ids R + 256 G + 65536 B (alpha dropped, palette
 * looked up). */
static int pack_row(const unsigned char *row, uint32_t *dst, uint32_t width,
                    size_t bpp, const unsigned char *plte, size_t n_colors) {
    uint32_t x = 0;
    if (bpp == 3) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        /* 4 pixels = 12 bytes from two wide loads */
        for (; x + 4 <= width; x += 4, row += 12) {
            uint64_t lo;
            uint32_t hi;
            memcpy(&lo, row, 8);
            memcpy(&hi, row + 8, 4);
            dst[x] = (uint32_t)lo & 0xFFFFFFu;
            dst[x + 1] = (uint32_t)(lo >> 24) & 0xFFFFFFu;
            dst[x + 2] = (uint32_t)(lo >> 48) | ((hi & 0xFFu) << 16);
            dst[x + 3] = hi >> 8;
        }
#endif
        for (; x < width; x++, row += 3)
            dst[x] = row[0] | ((uint32_t)row[1] << 8) |
                     ((uint32_t)row[2] << 16);
    } else if (bpp == 4) {
        for (; x < width; x++, row += 4)
            dst[x] = row[0] | ((uint32_t)row[1] << 8) |
                     ((uint32_t)row[2] << 16);
    } else {
        for (; x < width; x++) {
            size_t k = row[x];
            if (k >= n_colors) return E_PALETTE;
            const unsigned char *c = plte + 3 * k;
            dst[x] = c[0] | ((uint32_t)c[1] << 8) | ((uint32_t)c[2] << 16);
        }
    }
    return OK;
}

/* The decoder proper: no Python API calls (runs without the GIL). */
static int decode_ids(const unsigned char *png, size_t size, uint32_t *out,
                      size_t out_pixels) {
    static const unsigned char magic[8] = {0x89, 'P', 'N', 'G',
                                           '\r', '\n', 0x1a, '\n'};
    if (size < 8 + 25 || memcmp(png, magic, 8) != 0 ||
        memcmp(png + 12, "IHDR", 4) != 0 || be32(png + 8) != 13)
        return E_FORMAT;
    const unsigned char *ihdr = png + 16;
    uint32_t width = be32(ihdr), height = be32(ihdr + 4);
    int depth = ihdr[8], color = ihdr[9];
    if (width == 0 || height == 0 || ihdr[10] != 0 || ihdr[11] != 0)
        return E_FORMAT;
    if (depth != 8 || ihdr[12] != 0) return E_UNSUPPORTED;
    size_t bpp = color == 2 ? 3 : color == 6 ? 4 : color == 3 ? 1 : 0;
    if (bpp == 0) return E_UNSUPPORTED;
    if ((size_t)width * height != out_pixels) return E_SIZE;

    /* walk the chunks: CRCs, palette, the IDAT run */
    const unsigned char *plte = NULL, *idat = NULL;
    size_t plte_len = 0, idat_total = 0, n_idat = 0;
    int idat_done = 0, seen_iend = 0;
    size_t pos = 8;
    while (pos + 12 <= size) {
        uint32_t len = be32(png + pos);
        const unsigned char *type = png + pos + 4;
        if (len > size - pos - 12) return E_FORMAT;
        if ((uint32_t)crc32(0L, type, len + 4) != be32(type + 4 + len))
            return E_CRC;
        if (memcmp(type, "IDAT", 4) == 0) {
            if (idat_done) return E_UNSUPPORTED; /* split IDAT runs */
            if (n_idat == 0) idat = type + 4;
            n_idat++;
            idat_total += len;
        } else {
            if (n_idat > 0) idat_done = 1;
            if (memcmp(type, "PLTE", 4) == 0) {
                /* one palette, before the image data (else: not ours) */
                if (plte != NULL || n_idat > 0) return E_UNSUPPORTED;
                plte = type + 4;
                plte_len = len;
            } else if (memcmp(type, "IEND", 4) == 0) {
                seen_iend = 1;
                break;
            } else if (pos > 8 && type[0] >= 'A' && type[0] <= 'Z') {
                /* another critical chunk (or a second IHDR) */
                return E_UNSUPPORTED;
            }
        }
        pos += (size_t)len + 12;
    }
    if (!seen_iend || n_idat == 0) return E_FORMAT;
    if (color == 3 && (plte == NULL || plte_len % 3 != 0)) return E_PALETTE;

    /* gather the compressed stream when it is split over several chunks */
    unsigned char *joined = NULL;
    const unsigned char *stream = idat;
    if (n_idat > 1) {
        joined = (unsigned char *)malloc(idat_total);
        if (joined == NULL) return E_MEMORY;
        size_t at = 0, p = 8;
        while (at < idat_total) {
            uint32_t len = be32(png + p);
            if (memcmp(png + p + 4, "IDAT", 4) == 0) {
                memcpy(joined + at, png + p + 8, len);
                at += len;
            }
            p += (size_t)len + 12;
        }
        stream = joined;
    }

    size_t stride = (size_t)width * bpp;
    size_t raw_size = (stride + 1) * height;
    unsigned char *raw = (unsigned char *)malloc(raw_size);
    if (raw == NULL) {
        free(joined);
        return E_MEMORY;
    }
    int status = inflate_all(stream, idat_total, raw, raw_size);
    free(joined);
    if (status != OK) {
        free(raw);
        return status;
    }

    /* Rows are packed one row late: the bytes just written by the
     * unfilter are still in the store buffer, and wide loads from them
     * would stall (no store-to-load forwarding). */
    size_t n_colors = plte_len / 3;
    const unsigned char *prev = NULL;
    for (uint32_t r = 0; r < height && status == OK; r++) {
        unsigned char *row = raw + r * (stride + 1) + 1;
        status = unfilter_row(row[-1], row, prev, stride, bpp);
        if (status == OK && prev != NULL)
            status = pack_row(prev, out + (size_t)(r - 1) * width, width, bpp,
                              plte, n_colors);
        prev = row;
    }
    if (status == OK)
        status = pack_row(prev, out + (size_t)(height - 1) * width, width,
                          bpp, plte, n_colors);
    free(raw);
    return status;
}

static PyObject *py_decode_ids(PyObject *self, PyObject *args) {
    Py_buffer png, out;
    if (!PyArg_ParseTuple(args, "y*w*", &png, &out)) return NULL;
    int status;
    if (out.len % 4 != 0 || ((uintptr_t)out.buf) % 4 != 0) {
        status = E_SIZE;
    } else {
        Py_BEGIN_ALLOW_THREADS
        status = decode_ids((const unsigned char *)png.buf, (size_t)png.len,
                            (uint32_t *)out.buf, (size_t)out.len / 4);
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&png);
    PyBuffer_Release(&out);
    return PyLong_FromLong(status);
}

/* Pixel count from the IHDR of a file that passed png_shape() (0 if not). */
static size_t header_pixels(const unsigned char *png, size_t size) {
    if (size < 33) return 0;
    return (size_t)be32(png + 16) * be32(png + 20);
}

static PyObject *py_decode_ids_many(PyObject *self, PyObject *args) {
    PyObject *seq;
    Py_buffer out;
    if (!PyArg_ParseTuple(args, "Ow*", &seq, &out)) return NULL;
    PyObject *fast = PySequence_Fast(seq, "decode_ids_many: need a sequence");
    if (fast == NULL) {
        PyBuffer_Release(&out);
        return NULL;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast), got = 0;
    Py_buffer *pngs = (Py_buffer *)PyMem_Calloc(n > 0 ? n : 1,
                                                sizeof(Py_buffer));
    int *status = (int *)PyMem_Calloc(n > 0 ? n : 1, sizeof(int));
    PyObject *failed = NULL;
    if (pngs == NULL || status == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (; got < n; got++)
        if (PyObject_GetBuffer(PySequence_Fast_GET_ITEM(fast, got),
                               &pngs[got], PyBUF_SIMPLE) != 0)
            goto done;
    if (out.len % 4 != 0 || ((uintptr_t)out.buf) % 4 != 0) {
        PyErr_SetString(PyExc_ValueError,
                        "decode_ids_many: out must be an aligned uint32 "
                        "buffer");
        goto done;
    }
    Py_BEGIN_ALLOW_THREADS
    size_t offset = 0, capacity = (size_t)out.len / 4;
    for (Py_ssize_t k = 0; k < n; k++) {
        const unsigned char *png = (const unsigned char *)pngs[k].buf;
        size_t npx = header_pixels(png, (size_t)pngs[k].len);
        if (npx == 0 || npx > capacity - offset) {
            status[k] = E_SIZE;
        } else {
            status[k] = decode_ids(png, (size_t)pngs[k].len,
                                   (uint32_t *)out.buf + offset, npx);
        }
        offset += npx;
        if (offset > capacity) offset = capacity;
    }
    Py_END_ALLOW_THREADS
    failed = PyList_New(0);
    for (Py_ssize_t k = 0; failed != NULL && k < n; k++) {
        if (status[k] == OK) continue;
        PyObject *item = Py_BuildValue("(ni)", k, status[k]);
        if (item == NULL || PyList_Append(failed, item) != 0) {
            Py_XDECREF(item);
            Py_CLEAR(failed);
            break;
        }
        Py_DECREF(item);
    }
done:
    for (Py_ssize_t k = 0; k < got; k++) PyBuffer_Release(&pngs[k]);
    PyMem_Free(pngs);
    PyMem_Free(status);
    Py_DECREF(fast);
    PyBuffer_Release(&out);
    return failed;
}

/* ---- contingency counting: runs of equal (a, b) pairs into a hash table */

typedef struct {
    uint64_t *keys; /* EMPTY_KEY marks a free slot */
    int64_t *counts;
    size_t mask, used;
} table_t;

#define EMPTY_KEY UINT64_MAX

static int table_init(table_t *t, size_t capacity) {
    t->keys = (uint64_t *)malloc(capacity * sizeof(uint64_t));
    t->counts = (int64_t *)malloc(capacity * sizeof(int64_t));
    if (t->keys == NULL || t->counts == NULL) {
        free(t->keys);
        free(t->counts);
        return E_MEMORY;
    }
    memset(t->keys, 0xFF, capacity * sizeof(uint64_t));
    t->mask = capacity - 1;
    t->used = 0;
    return OK;
}

static size_t slot_of(uint64_t key, size_t mask) {
    key ^= key >> 33; /* murmur3 finaliser */
    key *= 0xff51afd7ed558ccdULL;
    key ^= key >> 33;
    return (size_t)key & mask;
}

static int table_add(table_t *t, uint64_t key, int64_t count);

static int table_grow(table_t *t) {
    table_t bigger;
    if (table_init(&bigger, 2 * (t->mask + 1)) != OK) return E_MEMORY;
    for (size_t i = 0; i <= t->mask; i++)
        if (t->keys[i] != EMPTY_KEY) table_add(&bigger, t->keys[i], t->counts[i]);
    free(t->keys);
    free(t->counts);
    *t = bigger;
    return OK;
}

static int table_add(table_t *t, uint64_t key, int64_t count) {
    size_t i = slot_of(key, t->mask);
    while (t->keys[i] != EMPTY_KEY) {
        if (t->keys[i] == key) {
            t->counts[i] += count;
            return OK;
        }
        i = (i + 1) & t->mask;
    }
    t->keys[i] = key;
    t->counts[i] = count;
    if (++t->used * 2 > t->mask + 1) return table_grow(t);
    return OK;
}

/* Add one run; ids must fit in 24 bits (every pixel belongs to a run, so
 * this checks them all). */
static int add_run(table_t *t, uint64_t img, uint32_t a, uint32_t b,
                   size_t length) {
    if ((a | b) >> 24) return E_SIZE;
    return table_add(t, img | (uint64_t)a << 24 | b, (int64_t)length);
}

/* Count the (image, a, b) triples of images stored back to back. */
static int count_runs(const uint32_t *a, const uint32_t *b, size_t n,
                      const int64_t *starts, size_t n_images, table_t *t) {
    for (size_t k = 0; k < n_images; k++) {
        size_t begin = (size_t)starts[k];
        size_t end = k + 1 < n_images ? (size_t)starts[k + 1] : n;
        if (begin >= end) continue;
        uint64_t img = (uint64_t)k << 48;
        uint32_t ra = a[begin], rb = b[begin];
        size_t run = begin;
        for (size_t i = begin + 1; i < end; i++) {
            if (a[i] != ra || b[i] != rb) {
                int status = add_run(t, img, ra, rb, i - run);
                if (status != OK) return status;
                ra = a[i];
                rb = b[i];
                run = i;
            }
        }
        int status = add_run(t, img, ra, rb, end - run);
        if (status != OK) return status;
    }
    return OK;
}

static PyObject *py_count_pairs(PyObject *self, PyObject *args) {
    Py_buffer a, b, st;
    if (!PyArg_ParseTuple(args, "y*y*y*", &a, &b, &st)) return NULL;
    PyObject *result = NULL;
    size_t n = (size_t)a.len / 4, n_images = (size_t)st.len / 8;
    int bad = a.len != b.len || a.len % 4 != 0 || st.len % 8 != 0 ||
              n_images >= (1u << 16) || ((uintptr_t)a.buf) % 4 != 0 ||
              ((uintptr_t)b.buf) % 4 != 0 || ((uintptr_t)st.buf) % 8 != 0;
    const int64_t *starts = (const int64_t *)st.buf;
    for (size_t k = 0; !bad && k < n_images; k++)
        bad = starts[k] < 0 || (size_t)starts[k] > n ||
              (k > 0 && starts[k] < starts[k - 1]) || (k == 0 && starts[0] != 0);
    if (!bad && n > 0 && n_images == 0) bad = 1;
    if (bad) {
        PyErr_SetString(PyExc_ValueError,
                        "count_pairs: need two aligned uint32 buffers of one "
                        "length and increasing int64 starts from 0 (< 2**16 "
                        "images)");
        goto done;
    }
    table_t t;
    int status;
    Py_BEGIN_ALLOW_THREADS
    status = table_init(&t, 1024);
    if (status == OK) {
        const uint32_t *pa = (const uint32_t *)a.buf;
        const uint32_t *pb = (const uint32_t *)b.buf;
        status = count_runs(pa, pb, n, starts, n_images, &t);
        if (status == OK) { /* compact the used slots to the front */
            size_t j = 0;
            for (size_t i = 0; i <= t.mask; i++)
                if (t.keys[i] != EMPTY_KEY) {
                    t.keys[j] = t.keys[i];
                    t.counts[j++] = t.counts[i];
                }
        } else {
            free(t.keys);
            free(t.counts);
        }
    }
    Py_END_ALLOW_THREADS
    if (status == E_SIZE) {
        PyErr_SetString(PyExc_ValueError, "count_pairs: ids must be < 2**24");
    } else if (status != OK) {
        PyErr_NoMemory();
    } else {
        result = Py_BuildValue(
            "(y#y#)", (const char *)t.keys, (Py_ssize_t)(t.used * 8),
            (const char *)t.counts, (Py_ssize_t)(t.used * 8));
        free(t.keys);
        free(t.counts);
    }
done:
    PyBuffer_Release(&a);
    PyBuffer_Release(&b);
    PyBuffer_Release(&st);
    return result;
}

static PyObject *py_set_libdeflate(PyObject *self, PyObject *args) {
    unsigned long long a, f, d;
    if (!PyArg_ParseTuple(args, "KKK", &a, &f, &d)) return NULL;
    if ((a == 0) != (f == 0) || (a == 0) != (d == 0)) {
        PyErr_SetString(PyExc_ValueError,
                        "set_libdeflate: give all three addresses or none");
        return NULL;
    }
    ld_alloc = (alloc_fn)(uintptr_t)a;
    ld_free = (free_fn)(uintptr_t)f;
    ld_decompress = (zlib_decompress_fn)(uintptr_t)d;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"decode_ids", py_decode_ids, METH_VARARGS,
     "decode_ids(png: bytes, out: writable uint32 buffer of H*W) -> int\n"
     "Decode into panoptic ids; 0 on success, else a status code (the\n"
     "caller falls back to another decoder)."},
    {"decode_ids_many", py_decode_ids_many, METH_VARARGS,
     "decode_ids_many(pngs: list of bytes, out: uint32 buffer) -> list\n"
     "Decode the files back to back into out (each takes width * height\n"
     "ids, from its header) with the GIL released once; returns\n"
     "[(index, status)] of the files that failed (to be redone by the\n"
     "caller's fallback decoder)."},
    {"count_pairs", py_count_pairs, METH_VARARGS,
     "count_pairs(a, b, starts) -> (keys: bytes, counts: bytes)\n"
     "Contingency table of uint32 id maps a, b (ids < 2**24) of images\n"
     "stored back to back (int64 starts): distinct keys\n"
     "image << 48 | a << 24 | b and pixel counts, as uint64 / int64 bytes,\n"
     "unsorted."},
    {"set_libdeflate", py_set_libdeflate, METH_VARARGS,
     "set_libdeflate(alloc_decompressor, free_decompressor, "
     "zlib_decompress)\nAddresses of libdeflate's functions (0, 0, 0: use "
     "zlib)."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_fastpng",
                                    "Fast PNG -> panoptic id decoding.", -1,
                                    methods};

PyMODINIT_FUNC PyInit__fastpng(void) { return PyModule_Create(&module); }
