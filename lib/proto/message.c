/* HXFR message codec: the table of message types, header validation and
 * encode/decode of every fixed payload with explicit little-endian helpers.
 * Offsets below are the ones in docs/protocol.md, counted from the end of
 * the 12-byte header. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "proto-private.h"

/* Every message type, its fixed size and the header flags it defines. This
 * is the single place that knows which flags belong to which type: an
 * extension that adds a type or a flag adds or edits a row here. */
static const struct hxfr__msg_info msg_table[] = {
    {HXFR_MSG_FRAME_REQUEST, "FRAME_REQUEST", HXFR_FRAME_REQUEST_SIZE,
     HXFR_FLAG_PIXEL_DATA | HXFR_FLAG_SHM, HXFR_FLAG_PIXEL_DATA | HXFR_FLAG_SHM, HXFR__BODY_IF_FLAG,
     HXFR_FLAG_PIXEL_DATA},
    {HXFR_MSG_FRAME_RESPONSE, "FRAME_RESPONSE", HXFR_FRAME_RESPONSE_SIZE, 0, 0, HXFR__BODY_ANY, 0},
    {HXFR_MSG_KEYFRAME_REQ, "KEYFRAME_REQ", 0, 0, 0, HXFR__BODY_NONE, 0},
    {HXFR_MSG_CONFIG_REQ, "CONFIG_REQ", HXFR_CONFIG_REQ_SIZE, 0, 0, HXFR__BODY_NONE, 0},
    {HXFR_MSG_CONFIG_RESP, "CONFIG_RESP", HXFR_CONFIG_RESP_SIZE, 0, 0, HXFR__BODY_NONE, 0},
    {HXFR_MSG_PING, "PING", 0, 0, 0, HXFR__BODY_NONE, 0},
    {HXFR_MSG_PONG, "PONG", 0, 0, 0, HXFR__BODY_NONE, 0},
    {HXFR_MSG_ENABLE_SCANOUT, "ENABLE_SCANOUT", HXFR_ENABLE_SCANOUT_SIZE, 0, 0, HXFR__BODY_NONE, 0},
    {HXFR_MSG_DISABLE_SCANOUT, "DISABLE_SCANOUT", HXFR_DISABLE_SCANOUT_SIZE, 0, 0, HXFR__BODY_NONE,
     0},
    {HXFR_MSG_SCANOUT_RESP, "SCANOUT_RESP", HXFR_SCANOUT_RESP_SIZE, 0, 0, HXFR__BODY_NONE, 0},
    {HXFR_MSG_SUBSCRIBE, "SUBSCRIBE", HXFR_SUBSCRIBE_SIZE, 0, 0, HXFR__BODY_NONE, 0},
    {HXFR_MSG_SUBSCRIBE_RESP, "SUBSCRIBE_RESP", HXFR_SUBSCRIBE_RESP_SIZE, 0, 0, HXFR__BODY_NONE, 0},
    {HXFR_MSG_HELLO, "HELLO", HXFR_HELLO_SIZE, 0, 0, HXFR__BODY_NONE, 0},
    {HXFR_MSG_HELLO_RESP, "HELLO_RESP", HXFR_HELLO_SIZE, 0, 0, HXFR__BODY_NONE, 0},
    {HXFR_MSG_SHM_ATTACH, "SHM_ATTACH", HXFR_SHM_ATTACH_SIZE, HXFR_FLAG_SHM_FD, 0, HXFR__BODY_NONE,
     0},
    {HXFR_MSG_SHM_ATTACH_RESP, "SHM_ATTACH_RESP", HXFR_SHM_ATTACH_RESP_SIZE, 0, 0, HXFR__BODY_NONE,
     0},
    {HXFR_MSG_SLOT_RELEASE, "SLOT_RELEASE", HXFR_SLOT_RELEASE_SIZE, 0, 0, HXFR__BODY_NONE, 0},
    {HXFR_MSG_ERROR, "ERROR", HXFR_ERROR_SIZE, 0, 0, HXFR__BODY_NONE, 0},
};

_Static_assert(HXFR_MAX_FIXED_SIZE >= HXFR_ERROR_SIZE, "parser buffer too small");
_Static_assert(HXFR_CONFIG_RESP_SIZE == 28 + HXFR_ENCODER_NAME_LEN, "CONFIG_RESP layout");
_Static_assert(HXFR_SCANOUT_RESP_SIZE == 8 + HXFR_CONNECTOR_LEN, "SCANOUT_RESP layout");
_Static_assert(HXFR_ERROR_SIZE == 4 + HXFR_ERROR_MESSAGE_LEN, "ERROR layout");
_Static_assert(HXFR_SHM_ATTACH_SIZE == 8 + HXFR_SHM_NAME_LEN, "SHM_ATTACH layout");
_Static_assert(HXFR_MAX_BODY_HARD <= UINT32_MAX - HXFR_MAX_FIXED_SIZE, "body limit fits u32");

const struct hxfr__msg_info *hxfr__msg_info(uint8_t type)
{
    for (size_t i = 0; i < sizeof(msg_table) / sizeof(msg_table[0]); i++) {
        if (msg_table[i].type == type) {
            return &msg_table[i];
        }
    }
    return NULL;
}

uint32_t hxfr__effective_max_body(uint32_t max_body)
{
    if (max_body == 0 || max_body > HXFR_MAX_BODY_HARD) {
        return HXFR_MAX_BODY_HARD;
    }
    return max_body;
}

HXFR_EXPORT const char *hxfr_msg_type_name(uint8_t type)
{
    const struct hxfr__msg_info *info = hxfr__msg_info(type);
    return info ? info->name : NULL;
}

HXFR_EXPORT int hxfr_msg_fixed_size(uint8_t type)
{
    const struct hxfr__msg_info *info = hxfr__msg_info(type);
    return info ? (int)info->fixed_size : -HXFR_ETYPE;
}

HXFR_EXPORT void hxfr_header_encode(uint8_t out[HXFR_HEADER_SIZE], const struct hxfr_header *h)
{
    hxfr_put_u32(out + 0, h->magic);
    out[4] = h->type;
    out[5] = h->flags;
    hxfr_put_u16(out + 6, h->session_id);
    hxfr_put_u32(out + 8, h->payload_size);
}

HXFR_EXPORT void hxfr_header_decode(const uint8_t in[HXFR_HEADER_SIZE], struct hxfr_header *h)
{
    h->magic = hxfr_get_u32(in + 0);
    h->type = in[4];
    h->flags = in[5];
    h->session_id = hxfr_get_u16(in + 6);
    h->payload_size = hxfr_get_u32(in + 8);
}

/* True if more than one bit of v is set. */
static bool several_bits(uint8_t v)
{
    return (v & (uint8_t)(v - 1u)) != 0;
}

/* True if a message of this type with these flags carries a body. */
static bool body_allowed(const struct hxfr__msg_info *info, uint8_t flags)
{
    return info->body_rule == HXFR__BODY_ANY ||
           (info->body_rule == HXFR__BODY_IF_FLAG && (flags & info->body_flag));
}

HXFR_EXPORT int hxfr_header_validate(const struct hxfr_header *h, uint32_t max_body)
{
    if (h->magic != HXFR_MAGIC) {
        return -HXFR_EMAGIC;
    }
    const struct hxfr__msg_info *info = hxfr__msg_info(h->type);
    if (!info) {
        return -HXFR_ETYPE;
    }
    if ((h->flags & (uint8_t)~info->flags) != 0 || several_bits(h->flags & info->exclusive)) {
        return -HXFR_EFLAGS;
    }
    if (h->payload_size < info->fixed_size) {
        return -HXFR_ESHORT;
    }
    uint32_t body = h->payload_size - info->fixed_size;
    if (!body_allowed(info, h->flags)) {
        return body == 0 ? 0 : -HXFR_ELONG;
    }
    /* A flag that announces a body promises at least one byte of it. */
    if (info->body_rule == HXFR__BODY_IF_FLAG && body == 0) {
        return -HXFR_ESHORT;
    }
    if (body > hxfr__effective_max_body(max_body)) {
        return -HXFR_ETOOBIG;
    }
    return 0;
}

/* Copies a C string into a fixed wire field: at most n - 1 bytes, the rest
 * zero, so the field is always NUL-terminated and never leaks stack bytes. */
static void put_string(uint8_t *out, const char *s, size_t n)
{
    size_t len = strnlen(s, n - 1);
    memcpy(out, s, len);
    memset(out + len, 0, n - len);
}

/* Reads a fixed wire field into a C string, forcing termination because the
 * peer may have filled every byte. */
static void get_string(char *dst, const uint8_t *in, size_t n)
{
    memcpy(dst, in, n);
    dst[n - 1] = '\0';
}

/* CONFIG_REQ and CONFIG_RESP carry the same settings in their first 23
 * bytes, field for field; they part after that (gop sits at 23 in the
 * request, at 24 in the response). The two structs are distinct types with
 * the same member names, so a macro serves both where a function cannot. */
#define PUT_CONFIG_SETTINGS(p, c)                                                                  \
    do {                                                                                           \
        hxfr_put_u32((p) + 0, (c)->width);                                                         \
        hxfr_put_u32((p) + 4, (c)->height);                                                        \
        hxfr_put_u32((p) + 8, (c)->bitrate);                                                       \
        hxfr_put_u32((p) + 12, (c)->framerate_num);                                                \
        hxfr_put_u32((p) + 16, (c)->framerate_den);                                                \
        (p)[20] = (c)->profile;                                                                    \
        (p)[21] = (c)->level;                                                                      \
        (p)[22] = (c)->realtime;                                                                   \
    } while (0)

#define GET_CONFIG_SETTINGS(p, c)                                                                  \
    do {                                                                                           \
        (c)->width = hxfr_get_u32((p) + 0);                                                        \
        (c)->height = hxfr_get_u32((p) + 4);                                                       \
        (c)->bitrate = hxfr_get_u32((p) + 8);                                                      \
        (c)->framerate_num = hxfr_get_u32((p) + 12);                                               \
        (c)->framerate_den = hxfr_get_u32((p) + 16);                                               \
        (c)->profile = (p)[20];                                                                    \
        (c)->level = (p)[21];                                                                      \
        (c)->realtime = (p)[22];                                                                   \
    } while (0)

static void encode_payload(const struct hxfr_msg *m, uint8_t *p)
{
    switch (m->hdr.type) {
    case HXFR_MSG_FRAME_REQUEST: {
        const struct hxfr_frame_request *r = &m->u.frame_request;
        hxfr_put_u32(p + 0, r->resource_id);
        hxfr_put_u32(p + 4, r->width);
        hxfr_put_u32(p + 8, r->height);
        hxfr_put_u32(p + 12, r->format);
        hxfr_put_u32(p + 16, r->stride);
        hxfr_put_u64(p + 20, (uint64_t)r->pts);
        hxfr_put_u64(p + 28, (uint64_t)r->duration);
        p[36] = r->force_keyframe;
        memset(p + 37, 0, 7);
        break;
    }
    case HXFR_MSG_FRAME_RESPONSE: {
        const struct hxfr_frame_response *r = &m->u.frame_response;
        hxfr_put_u64(p + 0, (uint64_t)r->pts);
        hxfr_put_u64(p + 8, (uint64_t)r->dts);
        p[16] = r->is_keyframe;
        memset(p + 17, 0, 3);
        hxfr_put_u32(p + 20, r->nal_count);
        break;
    }
    case HXFR_MSG_CONFIG_REQ: {
        const struct hxfr_config_req *c = &m->u.config_req;
        PUT_CONFIG_SETTINGS(p, c);
        hxfr_put_u32(p + 23, c->gop);
        p[27] = 0;
        break;
    }
    case HXFR_MSG_CONFIG_RESP: {
        const struct hxfr_config_resp *c = &m->u.config_resp;
        PUT_CONFIG_SETTINGS(p, c);
        p[23] = 0;
        hxfr_put_u32(p + 24, c->gop);
        put_string(p + 28, c->encoder, HXFR_ENCODER_NAME_LEN);
        break;
    }
    case HXFR_MSG_ENABLE_SCANOUT: {
        const struct hxfr_enable_scanout *e = &m->u.enable_scanout;
        hxfr_put_u32(p + 0, e->scanout_id);
        hxfr_put_u32(p + 4, e->width);
        hxfr_put_u32(p + 8, e->height);
        hxfr_put_u32(p + 12, e->refresh_hz);
        break;
    }
    case HXFR_MSG_DISABLE_SCANOUT:
        hxfr_put_u32(p + 0, m->u.disable_scanout.scanout_id);
        break;
    case HXFR_MSG_SCANOUT_RESP:
        hxfr_put_u32(p + 0, m->u.scanout_resp.scanout_id);
        hxfr_put_u32(p + 4, m->u.scanout_resp.success);
        put_string(p + 8, m->u.scanout_resp.connector, HXFR_CONNECTOR_LEN);
        break;
    case HXFR_MSG_SUBSCRIBE:
        hxfr_put_u32(p + 0, m->u.subscribe.scanout_id);
        break;
    case HXFR_MSG_SUBSCRIBE_RESP:
        hxfr_put_u32(p + 0, m->u.subscribe_resp.scanout_id);
        hxfr_put_u32(p + 4, m->u.subscribe_resp.success);
        break;
    case HXFR_MSG_HELLO:
    case HXFR_MSG_HELLO_RESP:
        hxfr_put_u32(p + 0, m->u.hello.version);
        hxfr_put_u32(p + 4, m->u.hello.caps);
        hxfr_put_u32(p + 8, m->u.hello.max_width);
        hxfr_put_u32(p + 12, m->u.hello.max_height);
        break;
    case HXFR_MSG_SHM_ATTACH:
        hxfr_put_u64(p + 0, m->u.shm_attach.offset);
        put_string(p + 8, m->u.shm_attach.name, HXFR_SHM_NAME_LEN);
        break;
    case HXFR_MSG_SHM_ATTACH_RESP:
        hxfr_put_u32(p + 0, m->u.shm_attach_resp.slot_count);
        hxfr_put_u32(p + 4, 0);
        hxfr_put_u64(p + 8, m->u.shm_attach_resp.slot_size);
        break;
    case HXFR_MSG_SLOT_RELEASE:
        hxfr_put_u32(p + 0, m->u.slot_release.slot);
        break;
    case HXFR_MSG_ERROR:
        hxfr_put_u32(p + 0, (uint32_t)m->u.error.code);
        put_string(p + 4, m->u.error.message, HXFR_ERROR_MESSAGE_LEN);
        break;
    default:
        /* KEYFRAME_REQ, PING and PONG have no payload. */
        break;
    }
}

HXFR_EXPORT int hxfr_msg_encode(const struct hxfr_msg *m, uint32_t body_size, uint8_t *out,
                                size_t cap)
{
    const struct hxfr__msg_info *info = hxfr__msg_info(m->hdr.type);
    if (!info) {
        return -HXFR_ETYPE;
    }
    if (body_size > 0 && !body_allowed(info, m->hdr.flags)) {
        return -HXFR_ETOOBIG;
    }
    if (body_size > UINT32_MAX - info->fixed_size) {
        return -HXFR_ETOOBIG;
    }
    struct hxfr_header h = m->hdr;
    h.magic = HXFR_MAGIC;
    h.payload_size = info->fixed_size + body_size;
    /* Refuse to produce anything a conforming receiver would reject, so a
     * sender bug shows up locally instead of as a remote disconnect. */
    int r = hxfr_header_validate(&h, 0);
    if (r < 0) {
        return r;
    }
    size_t total = HXFR_HEADER_SIZE + (size_t)info->fixed_size;
    if (cap < total) {
        return -ENOSPC;
    }
    hxfr_header_encode(out, &h);
    encode_payload(m, out + HXFR_HEADER_SIZE);
    return (int)total;
}

HXFR_EXPORT int hxfr_msg_decode(const struct hxfr_header *h, const uint8_t *fixed, size_t len,
                                struct hxfr_msg *out)
{
    /* The caller should have validated h already, but decoding must not
     * depend on that: check again against the hard body limit. */
    int r = hxfr_header_validate(h, 0);
    if (r < 0) {
        return r;
    }
    const struct hxfr__msg_info *info = hxfr__msg_info(h->type);
    if (len < info->fixed_size) {
        return -HXFR_ESHORT;
    }
    memset(out, 0, sizeof(*out));
    out->hdr = *h;
    const uint8_t *p = fixed;
    switch (h->type) {
    case HXFR_MSG_FRAME_REQUEST: {
        struct hxfr_frame_request *q = &out->u.frame_request;
        q->resource_id = hxfr_get_u32(p + 0);
        q->width = hxfr_get_u32(p + 4);
        q->height = hxfr_get_u32(p + 8);
        q->format = hxfr_get_u32(p + 12);
        q->stride = hxfr_get_u32(p + 16);
        q->pts = (int64_t)hxfr_get_u64(p + 20);
        q->duration = (int64_t)hxfr_get_u64(p + 28);
        q->force_keyframe = p[36];
        memcpy(q->reserved, p + 37, 7);
        break;
    }
    case HXFR_MSG_FRAME_RESPONSE: {
        struct hxfr_frame_response *q = &out->u.frame_response;
        q->pts = (int64_t)hxfr_get_u64(p + 0);
        q->dts = (int64_t)hxfr_get_u64(p + 8);
        q->is_keyframe = p[16];
        memcpy(q->reserved, p + 17, 3);
        q->nal_count = hxfr_get_u32(p + 20);
        break;
    }
    case HXFR_MSG_CONFIG_REQ: {
        struct hxfr_config_req *c = &out->u.config_req;
        GET_CONFIG_SETTINGS(p, c);
        c->gop = hxfr_get_u32(p + 23);
        c->reserved = p[27];
        break;
    }
    case HXFR_MSG_CONFIG_RESP: {
        struct hxfr_config_resp *c = &out->u.config_resp;
        GET_CONFIG_SETTINGS(p, c);
        c->reserved = p[23];
        c->gop = hxfr_get_u32(p + 24);
        get_string(c->encoder, p + 28, HXFR_ENCODER_NAME_LEN);
        break;
    }
    case HXFR_MSG_ENABLE_SCANOUT: {
        struct hxfr_enable_scanout *e = &out->u.enable_scanout;
        e->scanout_id = hxfr_get_u32(p + 0);
        e->width = hxfr_get_u32(p + 4);
        e->height = hxfr_get_u32(p + 8);
        e->refresh_hz = hxfr_get_u32(p + 12);
        break;
    }
    case HXFR_MSG_DISABLE_SCANOUT:
        out->u.disable_scanout.scanout_id = hxfr_get_u32(p + 0);
        break;
    case HXFR_MSG_SCANOUT_RESP:
        out->u.scanout_resp.scanout_id = hxfr_get_u32(p + 0);
        out->u.scanout_resp.success = hxfr_get_u32(p + 4);
        get_string(out->u.scanout_resp.connector, p + 8, HXFR_CONNECTOR_LEN);
        break;
    case HXFR_MSG_SUBSCRIBE:
        out->u.subscribe.scanout_id = hxfr_get_u32(p + 0);
        break;
    case HXFR_MSG_SUBSCRIBE_RESP:
        out->u.subscribe_resp.scanout_id = hxfr_get_u32(p + 0);
        out->u.subscribe_resp.success = hxfr_get_u32(p + 4);
        break;
    case HXFR_MSG_HELLO:
    case HXFR_MSG_HELLO_RESP:
        out->u.hello.version = hxfr_get_u32(p + 0);
        out->u.hello.caps = hxfr_get_u32(p + 4);
        out->u.hello.max_width = hxfr_get_u32(p + 8);
        out->u.hello.max_height = hxfr_get_u32(p + 12);
        break;
    case HXFR_MSG_SHM_ATTACH:
        out->u.shm_attach.offset = hxfr_get_u64(p + 0);
        get_string(out->u.shm_attach.name, p + 8, HXFR_SHM_NAME_LEN);
        break;
    case HXFR_MSG_SHM_ATTACH_RESP:
        out->u.shm_attach_resp.slot_count = hxfr_get_u32(p + 0);
        out->u.shm_attach_resp.reserved = hxfr_get_u32(p + 4);
        out->u.shm_attach_resp.slot_size = hxfr_get_u64(p + 8);
        break;
    case HXFR_MSG_SLOT_RELEASE:
        out->u.slot_release.slot = hxfr_get_u32(p + 0);
        break;
    case HXFR_MSG_ERROR:
        out->u.error.code = (int32_t)hxfr_get_u32(p + 0);
        get_string(out->u.error.message, p + 4, HXFR_ERROR_MESSAGE_LEN);
        break;
    default:
        break;
    }
    return 0;
}

HXFR_EXPORT void hxfr_msg_error(struct hxfr_msg *m, uint16_t session_id, int32_t code,
                                const char *fmt, ...)
{
    memset(m, 0, sizeof(*m));
    m->hdr.magic = HXFR_MAGIC;
    m->hdr.type = HXFR_MSG_ERROR;
    m->hdr.session_id = session_id;
    m->hdr.payload_size = HXFR_ERROR_SIZE;
    m->u.error.code = code;
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        /* vsnprintf truncates to 255 bytes and terminates. */
        vsnprintf(m->u.error.message, sizeof(m->u.error.message), fmt, ap);
        va_end(ap);
    }
}

HXFR_EXPORT int32_t hxfr_status_from_error(int err)
{
    if (err >= 0) {
        return HXFR_STATUS_OK;
    }
    if (err == INT_MIN) {
        return HXFR_STATUS_INTERNAL; /* -INT_MIN does not exist */
    }
    switch (-err) {
    case HXFR_EMAGIC:
    case HXFR_ETYPE:
    case HXFR_EFLAGS:
    case HXFR_ESHORT:
    case HXFR_ELONG:
    case HXFR_EPARSER:
    case HXFR_EUNITS:
    /* A body above the limit is a framing violation like the others:
     * docs/protocol.md answers every framing violation with INVALID_MSG. */
    case HXFR_ETOOBIG:
    case EINVAL:
    case EPROTO:
    case EBADMSG:
        return HXFR_STATUS_INVALID_MSG;
    case HXFR_EDIMS:
    case E2BIG:
    case EMSGSIZE:
    case EFBIG:
        return HXFR_STATUS_TOO_LARGE;
    case HXFR_EFORMAT:
    case HXFR_EZERO:
    case HXFR_EODD:
    case HXFR_ESTRIDE:
    case HXFR_EOVERFLOW:
    case HXFR_EPIXELS:
        return HXFR_STATUS_BAD_GEOMETRY;
    case ENOENT:
        return HXFR_STATUS_RESOURCE_NOT_FOUND;
    case ENOTSUP:
#if EOPNOTSUPP != ENOTSUP
    case EOPNOTSUPP:
#endif
    case ENOSYS:
        return HXFR_STATUS_UNSUPPORTED;
    case EBUSY:
    case EAGAIN:
    case EMFILE:
    case ENFILE:
        return HXFR_STATUS_BUSY;
    case ESHUTDOWN:
        return HXFR_STATUS_SHUTTING_DOWN;
    default:
        return HXFR_STATUS_INTERNAL;
    }
}

HXFR_EXPORT const char *hxfr_status_name(int32_t code)
{
    switch (code) {
    case HXFR_STATUS_OK:
        return "OK";
    case HXFR_STATUS_INVALID_MSG:
        return "INVALID_MSG";
    case HXFR_STATUS_RESOURCE_NOT_FOUND:
        return "RESOURCE_NOT_FOUND";
    case HXFR_STATUS_NOT_GPU_TEXTURE:
        return "NOT_GPU_TEXTURE";
    case HXFR_STATUS_NO_SURFACE:
        return "NO_SURFACE";
    case HXFR_STATUS_ENCODE_FAILED:
        return "ENCODE_FAILED";
    case HXFR_STATUS_NOT_CONFIGURED:
        return "NOT_CONFIGURED";
    case HXFR_STATUS_UNSUPPORTED:
        return "UNSUPPORTED";
    case HXFR_STATUS_BAD_GEOMETRY:
        return "BAD_GEOMETRY";
    case HXFR_STATUS_TOO_LARGE:
        return "TOO_LARGE";
    case HXFR_STATUS_BUSY:
        return "BUSY";
    case HXFR_STATUS_SHM:
        return "SHM";
    case HXFR_STATUS_NO_SCANOUT:
        return "NO_SCANOUT";
    case HXFR_STATUS_SHUTTING_DOWN:
        return "SHUTTING_DOWN";
    case HXFR_STATUS_INTERNAL:
        return "INTERNAL";
    default:
        return "UNKNOWN";
    }
}
