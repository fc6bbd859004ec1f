/* The bytes libhxfr-host queues for clients: immutable, reference-counted
 * buffers (a scanout fans one encoded frame out to several subscribers
 * without copying it), and the messages encoded into them. */
#ifndef HXFR_HOST_OUTBUF_H
#define HXFR_HOST_OUTBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <hxfr/proto.h>

struct hxfr__outbuf {
    unsigned refs; /* changed only by the thread that owns the queues */
    size_t len;
    uint8_t data[];
};

/* A buffer of len bytes with one reference. NULL + errno (ENOMEM). */
struct hxfr__outbuf *hxfr__outbuf_new(size_t len);
/* Drops one reference; frees at zero. Accepts NULL. */
void hxfr__outbuf_unref(struct hxfr__outbuf *b);

/* Starts a message: all zero but its type and session. */
static inline void hxfr__msg_start(struct hxfr_msg *m, uint8_t type, uint16_t session_id)
{
    memset(m, 0, sizeof(*m));
    m->hdr.type = type;
    m->hdr.session_id = session_id;
}

/* Encodes m (a message without body) into a new buffer. NULL + errno. */
struct hxfr__outbuf *hxfr__outbuf_msg(const struct hxfr_msg *m);

/* Builds the complete FRAME_RESPONSE message for session_id: header,
 * fixed part and the whole Annex B access unit as one unit (nal_count 1,
 * SPS and PPS in front on keyframes as the encoder wrote them), the form
 * Helix's host sends and its peers read (docs/protocol.md section 5).
 * Every peer gets this form, so one buffer serves all of a scanout's
 * subscribers. NULL + errno (EPROTO: not Annex B from its first byte, no
 * NAL unit, or too large). */
struct hxfr__outbuf *hxfr__frame_response_build(uint16_t session_id, int64_t pts, int64_t dts,
                                                bool keyframe, const uint8_t *au, size_t size);

#endif
