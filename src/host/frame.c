/* Frame geometry against the server's limits, and pixels an embedder
 * lends (frame.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"

int hxfr__limits_check(const struct hxfr__limits *l, uint32_t format, uint32_t width,
                       uint32_t height, uint32_t stride, struct hxfr_geometry *g)
{
    uint32_t max_dim = l->max_width > l->max_height ? l->max_width : l->max_height;
    int r = hxfr_geometry_compute(format, width, height, stride, max_dim, g);
    if (r < 0) {
        return r;
    }
    if (width > l->max_width || height > l->max_height) {
        return -HXFR_EDIMS;
    }
    return 0;
}

int32_t hxfr__limits_status(int err)
{
    return err == -HXFR_EDIMS ? HXFR_STATUS_TOO_LARGE : HXFR_STATUS_BAD_GEOMETRY;
}

/* The pieces of px that overlap the picture's bytes [start, end), checked
 * and copied into f->pieces. */
static int32_t lend_pieces(struct hxfr__frame *f, const struct hxfr_host_pixels *px, uint64_t start,
                           uint64_t end, char *why, size_t why_len)
{
    const struct hxfr_host_piece *pc = px->pieces;
    uint32_t n = px->n_pieces, first = n, count = 0;
    uint64_t next = 0, covered = start;

    if (n == 0 || n > HXFR_HOST_MAX_PIECES) {
        snprintf(why, why_len, "%u pieces (1..%u)", n, HXFR_HOST_MAX_PIECES);
        return HXFR_STATUS_BAD_GEOMETRY;
    }
    for (uint32_t i = 0; i < n; i++) {
        if (!pc[i].host || pc[i].len == 0 || pc[i].len > UINT64_MAX - pc[i].offset ||
            (i > 0 && pc[i].offset != next)) {
            snprintf(why, why_len, "piece %u of %u: empty, overflowing or not where piece %u ended",
                     i, n, i ? i - 1 : 0);
            return HXFR_STATUS_BAD_GEOMETRY;
        }
        next = pc[i].offset + pc[i].len;
        if (next > start && pc[i].offset < end) {
            if (first == n) {
                first = i;
            }
            count++;
            covered = next;
        }
    }
    if (first == n || pc[first].offset > start || covered < end) {
        snprintf(why, why_len, "pieces cover resource bytes %llu..%llu, not %llu..%llu",
                 (unsigned long long)pc[0].offset, (unsigned long long)next,
                 (unsigned long long)start, (unsigned long long)end);
        return HXFR_STATUS_BAD_GEOMETRY;
    }
    if (f->pieces_cap < count) {
        struct hxfr_image_piece *p = realloc(f->pieces, count * sizeof(*p));
        if (!p) {
            snprintf(why, why_len, "out of memory for %u pieces", count);
            return HXFR_STATUS_INTERNAL;
        }
        f->pieces = p;
        f->pieces_cap = count;
    }
    for (uint32_t i = 0; i < count; i++) {
        const struct hxfr_host_piece *q = &pc[first + i];
        f->pieces[i] = (struct hxfr_image_piece){q->host, q->offset, q->len};
    }
    f->img.pieces = f->pieces;
    f->img.n_pieces = count;
    f->img.base = start;
    return HXFR_STATUS_OK;
}

int32_t hxfr__frame_lend(struct hxfr__frame *f, const struct hxfr_host_pixels *px,
                         const struct hxfr__limits *l, char *why, size_t why_len)
{
    struct hxfr_geometry g;
    int r = hxfr__limits_check(l, px->format, px->width, px->height, px->strides[0], &g);
    if (r < 0) {
        snprintf(why, why_len, "unusable pixels %ux%u format 0x%08x stride %u: %s", px->width,
                 px->height, px->format, px->strides[0], hxfr_strerror(r));
        return hxfr__limits_status(r);
    }
    memset(&f->img, 0, sizeof(f->img));
    f->img.format = px->format;
    f->img.width = px->width;
    f->img.height = px->height;
    if (px->pieces) {
        if (g.num_planes != 1 || hxfr_format_min_stride(px->format, 1) != 4) {
            snprintf(why, why_len, "format 0x%08x cannot be scattered (packed RGB only)",
                     px->format);
            return HXFR_STATUS_BAD_GEOMETRY;
        }
        f->img.strides[0] = px->strides[0];
        uint64_t size = (uint64_t)(px->height - 1) * px->strides[0] + (uint64_t)px->width * 4;
        if (px->offset > UINT64_MAX - size) {
            snprintf(why, why_len, "offset %llu overflows", (unsigned long long)px->offset);
            return HXFR_STATUS_BAD_GEOMETRY;
        }
        return lend_pieces(f, px, px->offset, px->offset + size, why, why_len);
    }
    for (uint32_t i = 0; i < g.num_planes; i++) {
        if (!px->planes[i] || px->strides[i] < g.stride[i]) {
            snprintf(why, why_len,
                     "pixels %ux%u format 0x%08x: plane %u missing or its stride short", px->width,
                     px->height, px->format, i);
            return HXFR_STATUS_BAD_GEOMETRY;
        }
        f->img.planes[i] = px->planes[i];
        f->img.strides[i] = px->strides[i];
    }
    return HXFR_STATUS_OK;
}
