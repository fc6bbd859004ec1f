/* Output buffers and the messages encoded into them (outbuf.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "outbuf.h"

struct hxfr__outbuf *hxfr__outbuf_new(size_t len)
{
    struct hxfr__outbuf *b = malloc(sizeof(*b) + len);
    if (!b) {
        errno = ENOMEM;
        return NULL;
    }
    b->refs = 1;
    b->len = len;
    return b;
}

void hxfr__outbuf_unref(struct hxfr__outbuf *b)
{
    if (b && --b->refs == 0) {
        free(b);
    }
}

struct hxfr__outbuf *hxfr__outbuf_msg(const struct hxfr_msg *m)
{
    int size = hxfr_msg_fixed_size(m->hdr.type);
    if (size < 0) {
        errno = EINVAL;
        return NULL;
    }
    struct hxfr__outbuf *b = hxfr__outbuf_new(HXFR_HEADER_SIZE + (size_t)size);
    if (!b) {
        return NULL;
    }
    int n = hxfr_msg_encode(m, 0, b->data, b->len);
    if (n < 0) {
        hxfr__outbuf_unref(b);
        errno = EINVAL;
        return NULL;
    }
    b->len = (size_t)n;
    return b;
}

struct split_ctx {
    uint8_t *p;
    uint32_t count;
    uint64_t total;
};

static int count_unit(void *opaque, const uint8_t *nal, size_t size)
{
    struct split_ctx *ctx = opaque;
    (void)nal;
    ctx->count++;
    ctx->total += 4u + (uint64_t)size;
    return 0;
}

static int write_unit(void *opaque, const uint8_t *nal, size_t size)
{
    struct split_ctx *ctx = opaque;
    hxfr_put_u32(ctx->p, (uint32_t)size);
    memcpy(ctx->p + 4, nal, size);
    ctx->p += 4 + size;
    return 0;
}

struct hxfr__outbuf *hxfr__frame_response_build(uint16_t session_id, int64_t pts, int64_t dts,
                                                bool keyframe, const uint8_t *au, size_t size)
{
    struct split_ctx ctx = {0};
    int n = hxfr_annexb_split(au, size, count_unit, &ctx);
    if (n < 0 || ctx.count == 0 || ctx.total > UINT32_MAX - HXFR_FRAME_RESPONSE_SIZE) {
        errno = EPROTO;
        return NULL;
    }

    struct hxfr_msg m;
    hxfr__msg_start(&m, HXFR_MSG_FRAME_RESPONSE, session_id);
    m.u.frame_response.pts = pts;
    m.u.frame_response.dts = dts;
    m.u.frame_response.is_keyframe = keyframe ? 1 : 0;
    m.u.frame_response.nal_count = ctx.count;

    const size_t head = HXFR_HEADER_SIZE + HXFR_FRAME_RESPONSE_SIZE;
    struct hxfr__outbuf *b = hxfr__outbuf_new(head + (size_t)ctx.total);
    if (!b) {
        return NULL;
    }
    int r = hxfr_msg_encode(&m, (uint32_t)ctx.total, b->data, head);
    if (r != (int)head) {
        hxfr__outbuf_unref(b);
        errno = EPROTO;
        return NULL;
    }
    ctx.p = b->data + head;
    hxfr_annexb_split(au, size, write_unit, &ctx);
    return b;
}
