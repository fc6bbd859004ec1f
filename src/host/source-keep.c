/* Frame source: a scanout's kept picture (docs/hxfrd.md, "Scanouts"). The
 * last published picture of a scanout session is kept so the loop can
 * re-encode it for keepalive and for a new subscriber that needs an IDR
 * while the publisher is idle.
 *
 * Threads: the keep is read and written by the worker that encodes a frame
 * of its session (one frame of a session at a time, so never by two
 * threads at once); the loop swaps a buffer into it (hxfr__keep_adopt) or
 * clears it only while no frame of the session is at a worker.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"

void hxfr__keep_free(struct hxfr__keep *k)
{
    if (!k) {
        return;
    }
    free(k->buf);
    free(k);
}

void hxfr__keep_clear(struct hxfr__keep *k)
{
    free(k->buf);
    memset(k, 0, sizeof(*k));
}

void hxfr__keep_adopt(struct hxfr__keep *k, struct hxfr__frame *f)
{
    uint8_t *ob = k->buf;
    size_t oc = k->cap;
    k->buf = f->buf;
    k->cap = f->cap;
    k->img = f->img;
    k->valid = true;
    f->buf = ob;
    f->cap = oc;
}

/* Copies a scattered packed image row by row into dst (rows dst_stride
 * apart); the pieces were checked to cover it (hxfr__frame_lend). */
static int keep_gather(const struct hxfr_image *src, uint8_t *dst, uint32_t dst_stride)
{
    uint32_t p = 0;
    for (uint32_t y = 0; y < src->height; y++) {
        uint64_t off = src->base + (uint64_t)y * src->strides[0];
        size_t left = (size_t)src->width * 4;
        uint8_t *out = dst + (size_t)y * dst_stride;
        while (left > 0) {
            while (p < src->n_pieces && src->pieces[p].offset + src->pieces[p].len <= off) {
                p++;
            }
            if (p >= src->n_pieces || src->pieces[p].offset > off) {
                return -EINVAL;
            }
            const struct hxfr_image_piece *pc = &src->pieces[p];
            uint64_t in = pc->len - (off - pc->offset);
            size_t n = in < left ? (size_t)in : left;
            memcpy(out, pc->host + (off - pc->offset), n);
            out += n;
            off += n;
            left -= n;
        }
    }
    return 0;
}

void hxfr__keep_save(struct hxfr__frame *f)
{
    struct hxfr__keep *k = f->keep;
    const struct hxfr_image *src = &f->img;
    struct hxfr_geometry g;

    if (!k || hxfr__frame_pixels_in_pool(f)) {
        return;
    }
    /* The pixels belong to someone else (a shared-memory slot, an
     * embedder's resource) and are released after this frame: copy them,
     * tightly packed and in the same format, so a keepalive encodes with
     * the same encoder (a format change would reopen it). */
    k->valid = false;
    if (hxfr_geometry_compute(src->format, src->width, src->height,
                              hxfr_format_min_stride(src->format, src->width), 0, &g) < 0) {
        return;
    }
    if (k->cap < g.size) {
        free(k->buf);
        k->buf = malloc((size_t)g.size);
        k->cap = k->buf ? (size_t)g.size : 0;
        if (!k->buf) {
            return;
        }
    }
    hxfr__image_from_geometry(&k->img, &g, k->buf);
    if (src->pieces) {
        /* A guest resource published by a client (FRAME_REQUEST by id on
         * a scanout session): its pieces are gathered, a whole-frame copy
         * that the statistics count (gpu_frame_copies). */
        if (keep_gather(src, k->buf, g.stride[0]) < 0) {
            return;
        }
        k->valid = true;
        f->kept_bytes = g.size;
        f->kept_whole_copy = true;
        return;
    }
    for (uint32_t i = 0; i < g.num_planes && i < 3; i++) {
        uint8_t *dst = k->buf + g.offset[i];
        for (uint32_t y = 0; y < g.plane_height[i]; y++) {
            memcpy(dst + (size_t)y * g.stride[i], src->planes[i] + (size_t)y * src->strides[i],
                   g.stride[i]);
        }
    }
    k->valid = true;
    f->kept_bytes = g.size;
}

/* A keepalive frame holds nothing at acquire; its worker reads the keep. */
static int32_t keep_acquire(struct hxfr__frame *f, const struct hxfr__source_args *a)
{
    (void)a;
    memset(&f->img, 0, sizeof(f->img));
    return HXFR_STATUS_OK;
}

static int keep_map(struct hxfr__frame *f)
{
    struct hxfr__keep *k = f->keep;

    if (!k || !k->valid) {
        return -ENOENT;
    }
    f->img = k->img;
    return 0;
}

const struct hxfr__source_ops hxfr__source_keep = {
    .version = HXFR__SOURCE_OPS_VERSION,
    .name = "keep",
    .pixels = HXFR__PIXELS_CPU,
    .acquire = keep_acquire,
    .map = keep_map,
};
