/* Frame source: inline pixels. They follow the FRAME_REQUEST on the socket
 * and the client's input path reads them straight from the socket into the
 * frame's pooled buffer (client.c), the only copy they see; the encoder
 * converts from that buffer. Nothing to release: the buffer stays in the
 * session's pool for the next frame. */
#include <stdio.h>

#include "frame.h"

static int32_t inline_acquire(struct hxfr__frame *f, const struct hxfr__source_args *a)
{
    const struct hxfr_frame_request *req = a->req;
    const struct hxfr_geometry *g = a->geom;

    /* Checked before any memory is committed to the frame. */
    if ((uint64_t)a->body_size != g->size) {
        snprintf(a->why, a->why_len, "inline pixels: %u bytes sent, %ux%u %s stride %u needs %llu",
                 a->body_size, req->width, req->height, hxfr_format_name(req->format), req->stride,
                 (unsigned long long)g->size);
        return HXFR_STATUS_BAD_GEOMETRY;
    }
    if (a->grow(a->grow_ctx, f, (size_t)g->size) < 0) {
        snprintf(a->why, a->why_len, "out of memory for a %llu-byte frame",
                 (unsigned long long)g->size);
        return HXFR_STATUS_INTERNAL;
    }
    hxfr__image_from_geometry(&f->img, g, f->buf);
    f->fill = 0;
    return HXFR_STATUS_OK;
}

const struct hxfr__source_ops hxfr__source_inline = {
    .version = HXFR__SOURCE_OPS_VERSION,
    .name = "inline",
    .pixels = HXFR__PIXELS_CPU,
    .acquire = inline_acquire,
};
