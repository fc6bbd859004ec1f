/* libFuzzer target: the incremental parser on arbitrary bytes.
 *
 * Input layout: byte 0 picks the parser's max_body, bytes 1..4 seed the
 * generator that cuts the rest into feeds of arbitrary sizes and decides,
 * body by body, whether bytes are taken as BODY chunks or skipped with
 * hxfr_parser_body_advance(). Complete FRAME_RESPONSE bodies are decoded as
 * unit lists, FRAME_REQUEST geometry is computed, and every message is
 * re-encoded. Any broken invariant traps. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <hxfr/proto.h>

#include "fuzz.h"

static uint32_t next_rand(uint32_t *s)
{
    /* xorshift32: cheap, deterministic per input, never stuck at zero. */
    uint32_t x = *s ? *s : 0x9E3779B9u;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *s = x;
    return x;
}

static uint8_t body[1 << 16];

struct state {
    struct hxfr_parser parser;
    struct hxfr_msg msg; /* the message whose body is in progress */
    uint32_t body_size;
    uint32_t body_have; /* bytes collected so far (chunks and advances) */
    uint32_t rand;
};

static void check_units(const uint8_t *units, size_t len, uint32_t nal_count)
{
    int valid = hxfr_units_validate(units, len, nal_count);
    REQUIRE(valid == 0 || valid == -HXFR_EUNITS);
    size_t pos = 0, total = 0;
    uint32_t count = 0;
    const uint8_t *u;
    uint32_t n;
    int r;
    while ((r = hxfr_units_next(units, len, &pos, &u, &n)) == 1) {
        REQUIRE(n > 0);
        REQUIRE(u >= units + 4 && u + n <= units + len);
        REQUIRE(pos <= len);
        total += 4 + n;
        count++;
    }
    REQUIRE(r == 0 || r == -HXFR_EUNITS);
    REQUIRE(valid != 0 || (r == 0 && count == nal_count && total == len));
    /* Re-split the unit bytes as Annex B: every unit lies in the input. */
    int units_found = hxfr_annexb_split(units, len, NULL, NULL);
    REQUIRE(units_found >= 0 && (size_t)units_found <= len / 3);
}

static void on_body_complete(struct state *st)
{
    if (st->msg.hdr.type == HXFR_MSG_FRAME_RESPONSE && st->body_size <= sizeof(body)) {
        check_units(body, st->body_size, st->msg.u.frame_response.nal_count);
    }
}

static void on_body_bytes(struct state *st, const uint8_t *p, size_t n)
{
    REQUIRE(st->body_have + n <= st->body_size);
    if (st->body_size <= sizeof(body)) {
        memcpy(body + st->body_have, p, n);
    }
    st->body_have += (uint32_t)n;
    if (st->body_have == st->body_size) {
        on_body_complete(st);
    }
}

static void on_message(struct state *st, const struct hxfr_parse_result *res)
{
    const struct hxfr_msg *m = &res->msg;
    REQUIRE(hxfr_header_validate(&m->hdr, st->parser.max_body) == 0);
    int fixed = hxfr_msg_fixed_size(m->hdr.type);
    REQUIRE(fixed >= 0 && (uint32_t)fixed + res->body_size == m->hdr.payload_size);
    REQUIRE(hxfr_msg_type_name(m->hdr.type) != NULL);

    /* Whatever the parser accepted, the encoder reproduces. */
    uint8_t out[HXFR_HEADER_SIZE + HXFR_MAX_FIXED_SIZE];
    int n = hxfr_msg_encode(m, res->body_size, out, sizeof(out));
    REQUIRE(n == (int)HXFR_HEADER_SIZE + fixed);
    struct hxfr_header h;
    hxfr_header_decode(out, &h);
    REQUIRE(h.magic == HXFR_MAGIC && h.type == m->hdr.type && h.flags == m->hdr.flags &&
            h.session_id == m->hdr.session_id && h.payload_size == m->hdr.payload_size);
    struct hxfr_msg again;
    REQUIRE(hxfr_msg_decode(&h, out + HXFR_HEADER_SIZE, (size_t)fixed, &again) == 0);

    if (m->hdr.type == HXFR_MSG_FRAME_REQUEST) {
        const struct hxfr_frame_request *q = &m->u.frame_request;
        struct hxfr_geometry g;
        if (hxfr_geometry_compute(q->format, q->width, q->height, q->stride, 0, &g) == 0) {
            REQUIRE(g.size <= UINT32_MAX);
        }
    }
    if (m->hdr.type == HXFR_MSG_ERROR) {
        REQUIRE(strlen(m->u.error.message) < HXFR_ERROR_MESSAGE_LEN);
        REQUIRE(hxfr_status_name(m->u.error.code) != NULL);
    }

    st->msg = *m;
    st->body_size = res->body_size;
    st->body_have = 0;
    if (res->body_size == 0) {
        on_body_complete(st);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint32_t limits[] = {0, 64, 4096, 1u << 20};
    if (size < 5) {
        return 0;
    }
    struct state st;
    memset(&st, 0, sizeof(st));
    hxfr_parser_init(&st.parser, limits[data[0] & 3]);
    memcpy(&st.rand, data + 1, 4);
    const uint8_t *in = data + 5;
    size_t len = size - 5, off = 0;
    int failed = 0;

    while (off < len && !failed) {
        /* One "read": a random slice of the remaining input. */
        size_t piece = len - off;
        uint32_t r = next_rand(&st.rand);
        if ((r & 3) != 0) {
            size_t want = (r >> 2) % 64;
            piece = want < piece ? want : piece;
        }
        const uint8_t *p = in + off;
        size_t used = 0;
        for (;;) {
            uint32_t remaining = hxfr_parser_body_remaining(&st.parser);
            if (remaining > 0 && used < piece && (next_rand(&st.rand) & 1)) {
                /* Read body bytes "directly" and report them. */
                size_t n = piece - used;
                n = n < remaining ? n : remaining;
                n = 1 + next_rand(&st.rand) % n;
                REQUIRE(hxfr_parser_body_advance(&st.parser, (uint32_t)n) == 0);
                on_body_bytes(&st, p + used, n);
                used += n;
                REQUIRE(hxfr_parser_body_remaining(&st.parser) == remaining - n);
                continue;
            }
            if (remaining > 0) {
                REQUIRE(hxfr_parser_body_advance(&st.parser, remaining + 1) < 0);
            }
            struct hxfr_parse_result res;
            int c = hxfr_parser_feed(&st.parser, p + used, piece - used, &res);
            if (c < 0) {
                REQUIRE(c != -HXFR_EPARSER);
                REQUIRE(c <= -HXFR_EBASE && c > -HXFR_ELAST);
                /* Sticky: the parser refuses everything afterwards. */
                REQUIRE(hxfr_parser_feed(&st.parser, p, piece, &res) == -HXFR_EPARSER);
                REQUIRE(!hxfr_parser_idle(&st.parser));
                failed = 1;
                break;
            }
            REQUIRE((size_t)c <= piece - used);
            if (res.event == HXFR_PARSE_NEED_MORE) {
                REQUIRE(used + (size_t)c == piece);
                used = piece;
                break;
            }
            if (res.event == HXFR_PARSE_MESSAGE) {
                on_message(&st, &res);
            } else {
                REQUIRE(res.event == HXFR_PARSE_BODY);
                REQUIRE(res.chunk == p + used && res.chunk_size == (size_t)c && c > 0);
                REQUIRE(res.msg.hdr.type == st.msg.hdr.type);
                on_body_bytes(&st, res.chunk, res.chunk_size);
                REQUIRE(res.body_remaining == st.body_size - st.body_have);
            }
            used += (size_t)c;
        }
        off += used;
    }
    return 0;
}
