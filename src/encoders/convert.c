/* Colour conversion into an encoder's input picture with libyuv. Each
 * (source, destination) pair is one libyuv call that reads the caller's
 * pixels and writes the destination planes directly: no intermediate
 * buffer (RGBA into 4:4:4 goes through one small row piece on the stack,
 * libyuv having no direct call for it). RGB sources become BT.601
 * limited-range YUV, which is what the encoders signal in the stream.
 * Padding a picture out to the encoder's coded size is here too. */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include <libyuv.h>

#include <hxfr/proto.h>

#include "encoder.h"

/* Checks the source image: known format, sane size, planes and strides
 * large enough for one row. */
static int check_source(const struct hxfr_image *s)
{
    if (!s || s->width == 0 || s->height == 0 || s->width > HXFR_MAX_DIM_HARD ||
        s->height > HXFR_MAX_DIM_HARD || !s->planes[0]) {
        return -EINVAL;
    }
    for (int i = 0; i < 3; i++) {
        if (s->strides[i] > INT_MAX) {
            return -EINVAL;
        }
    }
    uint32_t w = s->width, cw = (w + 1) / 2;
    switch (s->format) {
    case HXFR_FORMAT_ARGB8888:
    case HXFR_FORMAT_XRGB8888:
    case HXFR_FORMAT_ABGR8888:
    case HXFR_FORMAT_XBGR8888:
        return s->strides[0] >= 4 * w ? 0 : -EINVAL;
    case HXFR_FORMAT_NV12:
        return s->planes[1] && s->strides[0] >= w && s->strides[1] >= 2 * cw ? 0 : -EINVAL;
    case HXFR_FORMAT_I420:
        return s->planes[1] && s->planes[2] && s->strides[0] >= w && s->strides[1] >= cw &&
                       s->strides[2] >= cw
                   ? 0
                   : -EINVAL;
    default:
        return -EINVAL;
    }
}

/* RGBA (ABGR8888) into I444: libyuv converts only ARGB-ordered pixels to
 * 4:4:4, so each row goes through a piece of ARGB on the stack, 256
 * pixels at a time (4:4:4 has no horizontal subsampling, so pieces
 * convert independently). */
static int abgr_to_i444(const uint8_t *src, int src_stride, uint8_t *y, int sy, uint8_t *u, int su,
                        uint8_t *v, int sv, int w, int h)
{
    enum { PIECE = 256 };
    uint8_t argb[PIECE * 4];
    for (int row = 0; row < h; row++) {
        const uint8_t *in = src + (size_t)row * (size_t)src_stride;
        for (int x = 0; x < w; x += PIECE) {
            int n = w - x < PIECE ? w - x : PIECE;
            if (ABGRToARGB(in + (size_t)x * 4, n * 4, argb, n * 4, n, 1) != 0 ||
                ARGBToI444(argb, n * 4, y + (size_t)row * (size_t)sy + x, sy,
                           u + (size_t)row * (size_t)su + x, su, v + (size_t)row * (size_t)sv + x,
                           sv, n, 1) != 0) {
                return -1;
            }
        }
    }
    return 0;
}

void hxfr__pad_plane(uint8_t *plane, int stride, int width, int height, int coded_width,
                     int coded_height)
{
    for (int row = 0; row < height && width < coded_width; row++) {
        uint8_t *line = plane + (size_t)row * (size_t)stride;
        memset(line + width, line[width - 1], (size_t)(coded_width - width));
    }
    for (int row = height; row < coded_height; row++) {
        memcpy(plane + (size_t)row * (size_t)stride, plane + (size_t)(height - 1) * (size_t)stride,
               (size_t)coded_width);
    }
}

/* One libyuv call: w x h pixels of src_format whose planes start at p with
 * strides ps (any sign: two rows of a scattered image may be addressed
 * with the distance between them) into destination planes d (already at
 * the block's place) with strides ds. Returns libyuv's result (0 = done). */
static int convert_planes(uint32_t src_format, const uint8_t *const p[3], const int ps[3],
                          uint32_t dst_format, uint8_t *const d[3], const int ds[3], int w, int h)
{
    int s0 = ps[0], s1 = ps[1], s2 = ps[2];
    int r = -1;

    if (dst_format == HXFR_FORMAT_I420) {
        if (!d[2]) {
            return -1;
        }
        switch (src_format) {
        case HXFR_FORMAT_ARGB8888:
        case HXFR_FORMAT_XRGB8888:
            r = ARGBToI420(p[0], s0, d[0], ds[0], d[1], ds[1], d[2], ds[2], w, h);
            break;
        case HXFR_FORMAT_ABGR8888:
        case HXFR_FORMAT_XBGR8888:
            r = ABGRToI420(p[0], s0, d[0], ds[0], d[1], ds[1], d[2], ds[2], w, h);
            break;
        case HXFR_FORMAT_NV12:
            r = NV12ToI420(p[0], s0, p[1], s1, d[0], ds[0], d[1], ds[1], d[2], ds[2], w, h);
            break;
        case HXFR_FORMAT_I420:
            r = I420Copy(p[0], s0, p[1], s1, p[2], s2, d[0], ds[0], d[1], ds[1], d[2], ds[2], w, h);
            break;
        default:
            break;
        }
    } else if (dst_format == HXFR__FORMAT_I444) {
        if (!d[2]) {
            return -1;
        }
        switch (src_format) {
        case HXFR_FORMAT_ARGB8888:
        case HXFR_FORMAT_XRGB8888:
            r = ARGBToI444(p[0], s0, d[0], ds[0], d[1], ds[1], d[2], ds[2], w, h);
            break;
        case HXFR_FORMAT_ABGR8888:
        case HXFR_FORMAT_XBGR8888:
            r = abgr_to_i444(p[0], s0, d[0], ds[0], d[1], ds[1], d[2], ds[2], w, h);
            break;
        default:
            /* 4:2:0 sources keep their own layout (they are never odd). */
            break;
        }
    } else if (dst_format == HXFR_FORMAT_NV12) {
        switch (src_format) {
        case HXFR_FORMAT_ARGB8888:
        case HXFR_FORMAT_XRGB8888:
            r = ARGBToNV12(p[0], s0, d[0], ds[0], d[1], ds[1], w, h);
            break;
        case HXFR_FORMAT_ABGR8888:
        case HXFR_FORMAT_XBGR8888:
            r = ABGRToNV12(p[0], s0, d[0], ds[0], d[1], ds[1], w, h);
            break;
        case HXFR_FORMAT_NV12:
            r = NV12Copy(p[0], s0, p[1], s1, d[0], ds[0], d[1], ds[1], w, h);
            break;
        case HXFR_FORMAT_I420:
            r = I420ToNV12(p[0], s0, p[1], s1, p[2], s2, d[0], ds[0], d[1], ds[1], w, h);
            break;
        default:
            break;
        }
    }
    return r;
}

int hxfr__convert(const struct hxfr_image *src, uint32_t dst_format, uint8_t *const dst[3],
                  const int dst_strides[3])
{
    if (src && src->pieces) {
        return -EINVAL; /* scattered: hxfr__convert_image */
    }
    return hxfr__convert_image(src, NULL, dst_format, dst, dst_strides, NULL, 0, NULL);
}

static bool packed_format(uint32_t f)
{
    return f == HXFR_FORMAT_ARGB8888 || f == HXFR_FORMAT_XRGB8888 || f == HXFR_FORMAT_ABGR8888 ||
           f == HXFR_FORMAT_XBGR8888;
}

static bool subsampled(uint32_t dst_format)
{
    return dst_format == HXFR_FORMAT_I420 || dst_format == HXFR_FORMAT_NV12;
}

/* The destination planes moved to pixel (x, y) (x and y even for 4:2:0). */
static void dst_at(uint32_t dst_format, uint8_t *const dst[3], const int ds[3], uint32_t x,
                   uint32_t y, uint8_t *out[3])
{
    size_t cy = y / 2, cx = x / 2;
    out[0] = dst[0] + (size_t)y * (size_t)ds[0] + x;
    out[1] = out[2] = NULL;
    if (dst_format == HXFR_FORMAT_I420) {
        out[1] = dst[1] + cy * (size_t)ds[1] + cx;
        out[2] = dst[2] + cy * (size_t)ds[2] + cx;
    } else if (dst_format == HXFR_FORMAT_NV12) {
        out[1] = dst[1] + cy * (size_t)ds[1] + 2 * cx;
    } else {
        out[1] = dst[1] + (size_t)y * (size_t)ds[1] + x;
        out[2] = dst[2] ? dst[2] + (size_t)y * (size_t)ds[2] + x : NULL;
    }
}

/* A contiguous source's rectangle: its planes moved to (x, y). */
static int convert_contiguous(const struct hxfr_image *s, const struct hxfr_image_rect *r,
                              uint32_t dst_format, uint8_t *const dst[3], const int ds[3])
{
    const uint8_t *p[3] = {NULL, NULL, NULL};
    int ps[3] = {(int)s->strides[0], (int)s->strides[1], (int)s->strides[2]};
    size_t x = r->x, y = r->y;

    p[0] = s->planes[0] + y * s->strides[0] + x * (packed_format(s->format) ? 4 : 1);
    if (s->format == HXFR_FORMAT_NV12) {
        p[1] = s->planes[1] + (y / 2) * s->strides[1] + x;
    } else if (s->format == HXFR_FORMAT_I420) {
        p[1] = s->planes[1] + (y / 2) * s->strides[1] + x / 2;
        p[2] = s->planes[2] + (y / 2) * s->strides[2] + x / 2;
    }
    uint8_t *d[3];
    dst_at(dst_format, dst, ds, r->x, r->y, d);
    return convert_planes(s->format, p, ps, dst_format, d, ds, (int)r->width, (int)r->height) == 0
               ? 0
               : -EINVAL;
}

/* ---- Scattered sources --------------------------------------------------
 * A guest resource's backing is a list of pieces in our mapping of guest
 * RAM; a frame's rows cross piece boundaries. The walk below converts
 * every run of rows that one piece holds with one libyuv call, and a row
 * pair that a boundary cuts in column segments, each again one call on the
 * guest's memory (the pair's two rows addressed as one pointer and the
 * distance to the second row as stride). */

struct scatter {
    const struct hxfr_image *s;
    uint32_t dst_format;
    uint8_t *const *dst;
    const int *ds;
    uint8_t *bounce;
    size_t bounce_len;
    uint32_t hint; /* piece of the last lookup: the walk goes forward */
    struct hxfr__convert_stats st;
};

/* Our address of byte off of the scattered memory and how many bytes are
 * contiguous from there (*len); NULL past the pieces or in a gap. */
static const uint8_t *piece_at(struct scatter *sc, uint64_t off, uint64_t *len)
{
    const struct hxfr_image_piece *pc = sc->s->pieces;
    uint32_t n = sc->s->n_pieces, lo = 0, hi = n;
    uint32_t i = sc->hint < n ? sc->hint : 0;

    if (!(off >= pc[i].offset && off - pc[i].offset < pc[i].len)) {
        /* The first piece that ends after off. */
        while (lo < hi) {
            uint32_t mid = lo + (hi - lo) / 2;
            if (pc[mid].offset + pc[mid].len <= off) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        i = lo;
        if (i >= n || off < pc[i].offset) {
            return NULL;
        }
    }
    sc->hint = i;
    *len = pc[i].len - (off - pc[i].offset);
    return pc[i].host + (off - pc[i].offset);
}

/* Copies len bytes from byte off of the scattered memory to out. */
static int gather(struct scatter *sc, uint64_t off, uint8_t *out, size_t len)
{
    while (len > 0) {
        uint64_t n;
        const uint8_t *p = piece_at(sc, off, &n);
        if (!p) {
            return -EINVAL;
        }
        size_t k = n < len ? (size_t)n : len;
        memcpy(out, p, k);
        out += k;
        off += k;
        len -= k;
    }
    return 0;
}

static int block(struct scatter *sc, const uint8_t *src, int stride, uint32_t x, uint32_t y,
                 uint32_t w, uint32_t h)
{
    const uint8_t *p[3] = {src, NULL, NULL};
    const int ps[3] = {stride, 0, 0};
    uint8_t *d[3];
    dst_at(sc->dst_format, sc->dst, sc->ds, x, y, d);
    sc->st.pixels += (uint64_t)w * h;
    return convert_planes(sc->s->format, p, ps, sc->dst_format, d, sc->ds, (int)w, (int)h) == 0
               ? 0
               : -EINVAL;
}

/* Rows y (and y + 1 when rows is 2) from column x0 to x1, in segments. */
static int segments(struct scatter *sc, uint32_t y, uint32_t rows, uint32_t x0, uint32_t x1)
{
    const struct hxfr_image *s = sc->s;
    uint64_t stride = s->strides[0];
    bool pairs = subsampled(sc->dst_format);
    uint32_t x = x0;

    while (x < x1) {
        uint64_t off0 = s->base + (uint64_t)y * stride + (uint64_t)x * 4, c0, c1 = 0;
        const uint8_t *p0 = piece_at(sc, off0, &c0), *p1 = NULL;
        if (!p0) {
            return -EINVAL;
        }
        uint64_t n = c0 / 4;
        ptrdiff_t delta = 0;
        if (rows == 2) {
            p1 = piece_at(sc, off0 + stride, &c1);
            if (!p1) {
                return -EINVAL;
            }
            n = c1 / 4 < n ? c1 / 4 : n;
            delta = p1 - p0;
        }
        uint32_t seg = n < x1 - x ? (uint32_t)n : x1 - x;
        if (pairs && x + seg < x1) {
            seg &= ~1u; /* chroma covers pixel pairs: end a segment on one */
        }
        bool reach = rows == 1 || (delta <= INT_MAX && delta >= -INT_MAX);
        if (seg > 0 && reach) {
            int r = block(sc, p0, (int)delta, x, y, seg, rows);
            if (r < 0) {
                return r;
            }
            sc->st.direct_calls++;
            x += seg;
            continue;
        }
        /* A pixel (pair) cut by a boundary, or rows too far apart for one
         * stride: through the bounce buffer, as little as that. */
        uint32_t b = seg > 0 ? seg : (x1 - x < 2 ? x1 - x : 2);
        size_t row_bytes = (size_t)b * 4;
        if (rows * row_bytes > sc->bounce_len) {
            return -EINVAL;
        }
        for (uint32_t i = 0; i < rows; i++) {
            if (gather(sc, off0 + i * stride, sc->bounce + i * row_bytes, row_bytes) < 0) {
                return -EINVAL;
            }
        }
        int r = block(sc, sc->bounce, (int)row_bytes, x, y, b, rows);
        if (r < 0) {
            return r;
        }
        sc->st.bounced_bytes += rows * row_bytes;
        x += b;
    }
    return 0;
}

static int convert_scattered(const struct hxfr_image *s, const struct hxfr_image_rect *r,
                             uint32_t dst_format, uint8_t *const dst[3], const int ds[3],
                             uint8_t *bounce, size_t bounce_len, struct hxfr__convert_stats *st)
{
    struct scatter sc = {.s = s,
                         .dst_format = dst_format,
                         .dst = dst,
                         .ds = ds,
                         .bounce = bounce,
                         .bounce_len = bounce ? bounce_len : 0};
    uint64_t stride = s->strides[0];
    uint64_t row_bytes = (uint64_t)r->width * 4;
    uint32_t unit = subsampled(dst_format) ? 2 : 1;
    uint32_t y = r->y, y1 = r->y + r->height;
    int ret = 0;

    while (y < y1 && ret == 0) {
        uint32_t left = y1 - y;
        uint64_t off = s->base + (uint64_t)y * stride + (uint64_t)r->x * 4, contig;
        const uint8_t *p = piece_at(&sc, off, &contig);
        if (!p) {
            ret = -EINVAL;
            break;
        }
        /* Rows from y that lie whole in this piece. */
        uint64_t k = contig >= row_bytes ? (contig - row_bytes) / stride + 1 : 0;
        k = k < left ? k : left;
        if (unit == 2 && k < left) {
            k &= ~(uint64_t)1;
        }
        if (k > 0) {
            ret = block(&sc, p, (int)stride, r->x, y, r->width, (uint32_t)k);
            sc.st.direct_calls++;
            y += (uint32_t)k;
            continue;
        }
        uint32_t rows = unit < left ? unit : left;
        ret = segments(&sc, y, rows, r->x, r->x + r->width);
        y += rows;
    }
    if (st) {
        st->pixels += sc.st.pixels;
        st->bounced_bytes += sc.st.bounced_bytes;
        st->direct_calls += sc.st.direct_calls;
    }
    return ret;
}

/* The scattered image's pieces cover every byte of it. Pieces are sorted
 * and gapless by contract; this checks the two ends, which is what the
 * walk could run past. */
static bool pieces_cover(const struct hxfr_image *s)
{
    const struct hxfr_image_piece *pc = s->pieces;
    uint32_t n = s->n_pieces;
    if (!pc || n == 0) {
        return false;
    }
    uint64_t need_end =
        s->base + (uint64_t)(s->height - 1) * s->strides[0] + (uint64_t)s->width * 4;
    uint64_t end = pc[n - 1].offset + pc[n - 1].len;
    return pc[0].offset <= s->base && end >= need_end && end >= pc[n - 1].offset;
}

int hxfr__convert_image(const struct hxfr_image *src, const struct hxfr_image_rect *rect,
                        uint32_t dst_format, uint8_t *const dst[3], const int dst_strides[3],
                        uint8_t *bounce, size_t bounce_len, struct hxfr__convert_stats *st)
{
    if (!src || !dst || !dst_strides || !dst[0] || !dst[1]) {
        return -EINVAL;
    }
    bool scattered = src->pieces != NULL;
    int ret;
    if (scattered) {
        struct hxfr_image probe = *src;
        probe.planes[0] = (const uint8_t *)1; /* check_source wants a plane */
        ret = check_source(&probe);
        if (ret == 0 && (!packed_format(src->format) || !pieces_cover(src))) {
            ret = -EINVAL;
        }
    } else {
        ret = check_source(src);
    }
    if (ret < 0) {
        return ret;
    }
    struct hxfr_image_rect r = {0, 0, src->width, src->height};
    if (rect) {
        if (rect->width == 0 || rect->height == 0 || rect->x >= src->width ||
            rect->y >= src->height || rect->width > src->width - rect->x ||
            rect->height > src->height - rect->y) {
            return -EINVAL;
        }
        r = *rect;
    }
    if (subsampled(dst_format)) {
        uint32_t x1 = r.x + r.width, y1 = r.y + r.height;
        r.x &= ~1u;
        r.y &= ~1u;
        x1 = x1 + (x1 & 1u) < src->width ? x1 + (x1 & 1u) : src->width;
        y1 = y1 + (y1 & 1u) < src->height ? y1 + (y1 & 1u) : src->height;
        r.width = x1 - r.x;
        r.height = y1 - r.y;
    } else if (dst_format != HXFR__FORMAT_I444) {
        return -EINVAL;
    }
    if (!scattered) {
        ret = convert_contiguous(src, &r, dst_format, dst, dst_strides);
        if (ret == 0 && st) {
            st->pixels += (uint64_t)r.width * r.height;
            st->direct_calls++;
        }
        return ret;
    }
    return convert_scattered(src, &r, dst_format, dst, dst_strides, bounce, bounce_len, st);
}
