/* Incremental HXFR parser. The header and the fixed part of a payload are
 * buffered inside struct hxfr_parser (at most 12 + 260 bytes); bodies are
 * never buffered: they are handed out as chunks pointing into the caller's
 * input, or skipped when the caller reads them itself. Every header is
 * validated, including its payload_size against max_body, before a single
 * byte of its payload is consumed, and nothing is ever allocated. */
#include <errno.h>
#include <string.h>

#include "proto-private.h"

enum parser_state {
    STATE_HEADER = 0, /* collecting the 12 header bytes */
    STATE_FIXED,      /* collecting the fixed part of the payload */
    STATE_BODY,       /* inside a body of body_remaining bytes */
};

HXFR_EXPORT void hxfr_parser_init(struct hxfr_parser *p, uint32_t max_body)
{
    memset(p, 0, sizeof(*p));
    p->max_body = hxfr__effective_max_body(max_body);
    p->state = STATE_HEADER;
    p->need = HXFR_HEADER_SIZE;
}

/* Records a fatal error: the stream is out of sync from here on. */
static int parser_fail(struct hxfr_parser *p, int err)
{
    p->error = err;
    p->body_remaining = 0;
    return err;
}

static void to_header_state(struct hxfr_parser *p)
{
    p->state = STATE_HEADER;
    p->have = 0;
    p->need = HXFR_HEADER_SIZE;
    p->body_remaining = 0;
}

/* Fills res->msg from the buffered header and fixed part. The header was
 * validated when it arrived, so decoding cannot fail here; the check stays
 * because a failure would mean the parser state is corrupt. */
static int decode_current(struct hxfr_parser *p, struct hxfr_parse_result *res)
{
    uint32_t fixed = p->need - HXFR_HEADER_SIZE;
    int r = hxfr_msg_decode(&p->hdr, p->buf + HXFR_HEADER_SIZE, fixed, &res->msg);
    if (r < 0) {
        return r;
    }
    res->body_size = p->hdr.payload_size - fixed;
    return 0;
}

/* Copies as many input bytes as the current header or fixed part still
 * needs; returns how many were taken. */
static size_t take(struct hxfr_parser *p, const uint8_t *data, size_t len)
{
    size_t n = p->need - p->have;
    if (n > len) {
        n = len;
    }
    if (n > 0) {
        memcpy(p->buf + p->have, data, n);
        p->have += (uint32_t)n;
    }
    return n;
}

HXFR_EXPORT int hxfr_parser_feed(struct hxfr_parser *p, const uint8_t *data, size_t len,
                                 struct hxfr_parse_result *res)
{
    if (p->error) {
        return -HXFR_EPARSER;
    }
    res->event = HXFR_PARSE_NEED_MORE;
    res->chunk = NULL;
    res->chunk_size = 0;
    size_t used = 0;
    int r;

    while (used < len || (p->state != STATE_BODY && p->have == p->need)) {
        if (p->state == STATE_BODY) {
            size_t n = len - used;
            if (n > p->body_remaining) {
                n = p->body_remaining;
            }
            r = decode_current(p, res);
            if (r < 0) {
                return parser_fail(p, r);
            }
            p->body_remaining -= (uint32_t)n;
            res->event = HXFR_PARSE_BODY;
            res->chunk = data + used;
            res->chunk_size = n;
            res->body_remaining = p->body_remaining;
            used += n;
            if (p->body_remaining == 0) {
                to_header_state(p);
            }
            return (int)used;
        }

        used += take(p, data + used, len - used);
        if (p->have < p->need) {
            break;
        }

        if (p->state == STATE_HEADER) {
            hxfr_header_decode(p->buf, &p->hdr);
            r = hxfr_header_validate(&p->hdr, p->max_body);
            if (r < 0) {
                return parser_fail(p, r);
            }
            p->state = STATE_FIXED;
            p->need = HXFR_HEADER_SIZE + (uint32_t)hxfr_msg_fixed_size(p->hdr.type);
            /* A type without a fixed part completes right here; otherwise
             * loop to collect the fixed part. */
            continue;
        }

        /* STATE_FIXED, complete. */
        r = decode_current(p, res);
        if (r < 0) {
            return parser_fail(p, r);
        }
        res->event = HXFR_PARSE_MESSAGE;
        res->body_remaining = res->body_size;
        if (res->body_size > 0) {
            p->state = STATE_BODY;
            p->body_remaining = res->body_size;
        } else {
            to_header_state(p);
        }
        return (int)used;
    }

    /* Only header and fixed-part bytes were taken (at most 272), so the
     * count fits an int; body chunks are bounded by max_body above. */
    res->body_remaining = p->body_remaining;
    return (int)used;
}

HXFR_EXPORT uint32_t hxfr_parser_body_remaining(const struct hxfr_parser *p)
{
    return p->state == STATE_BODY ? p->body_remaining : 0;
}

HXFR_EXPORT int hxfr_parser_body_advance(struct hxfr_parser *p, uint32_t n)
{
    if (p->error) {
        return -HXFR_EPARSER;
    }
    if (p->state != STATE_BODY) {
        return n == 0 ? 0 : -EINVAL;
    }
    if (n > p->body_remaining) {
        return -EINVAL;
    }
    p->body_remaining -= n;
    if (p->body_remaining == 0) {
        to_header_state(p);
    }
    return 0;
}

HXFR_EXPORT bool hxfr_parser_idle(const struct hxfr_parser *p)
{
    return !p->error && p->state == STATE_HEADER && p->have == 0;
}
