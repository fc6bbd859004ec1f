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

struct hxfr__outbuf *hxfr__frame_response_build(uint16_t session_id, int64_t pts, int64_t dts,
                                                bool keyframe, const uint8_t *au, size_t size)
{
    /* The access unit must be Annex B from its first byte: it goes out as
     * it is, and a receiver that concatenates units must get a stream. */
    size_t sc_len = 0;
    if (!au || size == 0 || hxfr_annexb_next(au, size, 0, &sc_len) != 0 || sc_len >= size ||
        size > UINT32_MAX - HXFR_FRAME_RESPONSE_SIZE - 4u) {
        errno = EPROTO;
        return NULL;
    }

    struct hxfr_msg m;
    hxfr__msg_start(&m, HXFR_MSG_FRAME_RESPONSE, session_id);
    m.u.frame_response.pts = pts;
    m.u.frame_response.dts = dts;
    m.u.frame_response.is_keyframe = keyframe ? 1 : 0;
    m.u.frame_response.nal_count = 1;

    const size_t head = HXFR_HEADER_SIZE + HXFR_FRAME_RESPONSE_SIZE;
    const uint32_t body = 4u + (uint32_t)size;
    struct hxfr__outbuf *b = hxfr__outbuf_new(head + body);
    if (!b) {
        return NULL;
    }
    int r = hxfr_msg_encode(&m, body, b->data, head);
    if (r != (int)head) {
        hxfr__outbuf_unref(b);
        errno = EPROTO;
        return NULL;
    }
    hxfr_put_u32(b->data + head, (uint32_t)size);
    memcpy(b->data + head + 4, au, size);
    return b;
}
