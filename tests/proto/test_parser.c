/* libhxfr incremental parser: every golden stream at every split, one byte
 * at a time and all at once; bodies by chunk and by body_advance; truncated
 * input; and the HOSTILE.md framing cases, each with its specific error. */
#include <errno.h>
#include <stdlib.h>
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
#include <malloc.h>
#define HAVE_MALLINFO2 1
#endif

#include <hxfr/proto.h>

#include "golden.h"

#include "harness.h"

#define MAX_MSGS 64

/* What a parse produced: the messages and, per message, its body bytes. */
struct collected {
    size_t count;
    struct hxfr_msg msgs[MAX_MSGS];
    uint32_t body_size[MAX_MSGS];
    size_t body_off[MAX_MSGS];
    size_t body_len[MAX_MSGS];
    uint8_t bodies[4096];
    size_t bodies_len;
    int error; /* first negative result, 0 if none */
};

static void append_body(struct collected *c, const uint8_t *p, size_t n)
{
    CHECK(c->count > 0);
    CHECK(c->bodies_len + n <= sizeof(c->bodies));
    memcpy(c->bodies + c->bodies_len, p, n);
    c->bodies_len += n;
    c->body_len[c->count - 1] += n;
}

/* Feeds one piece of input to p, handling every event. With advance set,
 * body bytes are taken straight from the piece and reported with
 * hxfr_parser_body_advance(), as a reader that receives pixels directly
 * into their destination would. */
static void feed_piece(struct hxfr_parser *p, const uint8_t *d, size_t len, bool advance,
                       struct collected *c)
{
    size_t off = 0;
    for (;;) {
        if (advance && hxfr_parser_body_remaining(p) > 0 && off < len) {
            size_t n = hxfr_parser_body_remaining(p);
            if (n > len - off) {
                n = len - off;
            }
            append_body(c, d + off, n);
            CHECK_EQ(hxfr_parser_body_advance(p, (uint32_t)n), 0);
            off += n;
            continue;
        }
        struct hxfr_parse_result res;
        int r = hxfr_parser_feed(p, d + off, len - off, &res);
        if (r < 0) {
            c->error = r;
            return;
        }
        CHECK((size_t)r <= len - off);
        off += (size_t)r;
        if (res.event == HXFR_PARSE_NEED_MORE) {
            CHECK_EQ(off, len);
            return;
        }
        if (res.event == HXFR_PARSE_MESSAGE) {
            CHECK(c->count < MAX_MSGS);
            c->msgs[c->count] = res.msg;
            c->body_size[c->count] = res.body_size;
            c->body_off[c->count] = c->bodies_len;
            c->body_len[c->count] = 0;
            c->count++;
            CHECK_EQ(res.body_remaining, res.body_size);
            CHECK_EQ(hxfr_parser_body_remaining(p), res.body_size);
            CHECK_EQ(hxfr_parser_idle(p), res.body_size == 0);
        } else {
            CHECK_EQ(res.event, HXFR_PARSE_BODY);
            CHECK(res.chunk_size > 0);
            CHECK(res.chunk == d + off - res.chunk_size);
            /* The message stays available while its body streams. */
            CHECK(msg_equal(&res.msg, &c->msgs[c->count - 1]));
            append_body(c, res.chunk, res.chunk_size);
            CHECK_EQ(res.body_remaining, c->body_size[c->count - 1] - c->body_len[c->count - 1]);
        }
    }
}

/* Parses stream d/n cut at the given offsets (ascending). */
static void parse_cuts(const uint8_t *d, size_t n, const size_t *cuts, size_t ncuts, bool advance,
                       struct collected *c)
{
    struct hxfr_parser p;
    hxfr_parser_init(&p, 0);
    memset(c, 0, sizeof(*c));
    size_t start = 0;
    for (size_t i = 0; i <= ncuts && !c->error; i++) {
        size_t end = i < ncuts ? cuts[i] : n;
        feed_piece(&p, d + start, end - start, advance, c);
        start = end;
    }
    if (!c->error) {
        CHECK(hxfr_parser_idle(&p));
    }
}

/* The expected result: every golden in order (the whole table) or one. */
static size_t build_stream(size_t first, size_t count, uint8_t *out, size_t cap,
                           struct collected *want)
{
    size_t n = 0;
    memset(want, 0, sizeof(*want));
    for (size_t i = first; i < first + count; i++) {
        const struct golden *g = &goldens[i];
        size_t len = golden_bytes(g, out + n, cap - n);
        CHECK(len > 0);
        golden_msg(g, &want->msgs[want->count]);
        want->body_size[want->count] = g->body_size;
        want->body_off[want->count] = want->bodies_len;
        want->body_len[want->count] = g->body_size;
        memcpy(want->bodies + want->bodies_len, out + n + len - g->body_size, g->body_size);
        want->bodies_len += g->body_size;
        want->count++;
        n += len;
    }
    return n;
}

static void check_same(const struct collected *got, const struct collected *want, const char *what,
                       size_t at)
{
    if (got->error) {
        FAIL("%s (cut %zu): error %d", what, at, got->error);
    }
    if (got->count != want->count) {
        FAIL("%s (cut %zu): %zu messages, want %zu", what, at, got->count, want->count);
    }
    for (size_t i = 0; i < want->count; i++) {
        if (!msg_equal(&got->msgs[i], &want->msgs[i])) {
            FAIL("%s (cut %zu): message %zu differs", what, at, i);
        }
        CHECK_EQ(got->body_size[i], want->body_size[i]);
        CHECK_EQ(got->body_len[i], want->body_len[i]);
        CHECK_MEM(got->bodies + got->body_off[i], want->bodies + want->body_off[i],
                  want->body_len[i]);
    }
}

static uint8_t stream[8192];
static struct collected want, got;

TEST(each_message_split_at_every_two_boundaries)
{
    for (size_t g = 0; g < GOLDEN_COUNT; g++) {
        size_t n = build_stream(g, 1, stream, sizeof(stream), &want);
        for (size_t a = 0; a <= n; a++) {
            for (size_t b = a; b <= n; b++) {
                size_t cuts[2] = {a, b};
                parse_cuts(stream, n, cuts, 2, (a + b) & 1, &got);
                check_same(&got, &want, goldens[g].name, a * 1000 + b);
            }
        }
    }
}

TEST(all_messages_split_at_every_boundary)
{
    size_t n = build_stream(0, GOLDEN_COUNT, stream, sizeof(stream), &want);
    for (int advance = 0; advance < 2; advance++) {
        for (size_t a = 0; a <= n; a++) {
            parse_cuts(stream, n, &a, 1, advance, &got);
            check_same(&got, &want, advance ? "advance" : "chunks", a);
        }
    }
}

TEST(all_messages_one_byte_at_a_time)
{
    size_t n = build_stream(0, GOLDEN_COUNT, stream, sizeof(stream), &want);
    static size_t cuts[8192];
    for (size_t i = 0; i < n; i++) {
        cuts[i] = i;
    }
    parse_cuts(stream, n, cuts, n, false, &got);
    check_same(&got, &want, "bytewise chunks", 0);
    parse_cuts(stream, n, cuts, n, true, &got);
    check_same(&got, &want, "bytewise advance", 0);
}

TEST(all_messages_in_one_feed)
{
    size_t n = build_stream(0, GOLDEN_COUNT, stream, sizeof(stream), &want);
    parse_cuts(stream, n, NULL, 0, false, &got);
    check_same(&got, &want, "one feed", 0);
    parse_cuts(stream, n, NULL, 0, true, &got);
    check_same(&got, &want, "one feed advance", 0);
    /* Twice the whole table back to back. */
    size_t n2 = build_stream(0, GOLDEN_COUNT, stream + n, sizeof(stream) - n, &want);
    CHECK_EQ(n2, n);
    parse_cuts(stream, 2 * n, NULL, 0, false, &got);
    CHECK_EQ(got.error, 0);
    CHECK_EQ(got.count, 2 * GOLDEN_COUNT);
}

TEST(feed_stops_after_every_event)
{
    /* PING, PONG in one buffer: the first call returns exactly PING. */
    uint8_t buf[24];
    CHECK(golden_bytes(&goldens[0], buf, 12) == 12);
    CHECK(golden_bytes(&goldens[1], buf + 12, 12) == 12);
    struct hxfr_parser p;
    struct hxfr_parse_result res;
    hxfr_parser_init(&p, 0);
    CHECK_EQ(hxfr_parser_feed(&p, buf, sizeof(buf), &res), 12);
    CHECK_EQ(res.event, HXFR_PARSE_MESSAGE);
    CHECK_EQ(res.msg.hdr.type, HXFR_MSG_PING);
    CHECK_EQ(res.msg.hdr.session_id, 0x0102);
    CHECK_EQ(res.body_size, 0);
    CHECK(hxfr_parser_idle(&p));
    CHECK_EQ(hxfr_parser_feed(&p, buf + 12, 12, &res), 12);
    CHECK_EQ(res.event, HXFR_PARSE_MESSAGE);
    CHECK_EQ(res.msg.hdr.type, HXFR_MSG_PONG);
    CHECK_EQ(hxfr_parser_feed(&p, buf + 24, 0, &res), 0);
    CHECK_EQ(res.event, HXFR_PARSE_NEED_MORE);
    CHECK_EQ(hxfr_parser_feed(&p, NULL, 0, &res), 0);
    CHECK_EQ(res.event, HXFR_PARSE_NEED_MORE);
}

TEST(body_by_chunks_and_by_advance)
{
    /* FRAME_REQUEST with 8 pixel bytes, then PING. */
    const struct golden *g = &goldens[4];
    CHECK_EQ(g->body_size, 8);
    uint8_t buf[128];
    size_t n = golden_bytes(g, buf, sizeof(buf));
    CHECK(golden_bytes(&goldens[0], buf + n, 12) == 12);
    struct hxfr_parser p;
    struct hxfr_parse_result res;

    /* Chunks: the body comes back as a pointer into the input. */
    hxfr_parser_init(&p, 0);
    CHECK_EQ(hxfr_parser_feed(&p, buf, n + 12, &res), 56);
    CHECK_EQ(res.event, HXFR_PARSE_MESSAGE);
    CHECK_EQ(res.body_size, 8);
    CHECK(!hxfr_parser_idle(&p));
    CHECK_EQ(hxfr_parser_feed(&p, buf + 56, 3, &res), 3);
    CHECK_EQ(res.event, HXFR_PARSE_BODY);
    CHECK(res.chunk == buf + 56);
    CHECK_EQ(res.chunk_size, 3);
    CHECK_EQ(res.body_remaining, 5);
    CHECK_EQ(res.msg.u.frame_request.width, 2);
    CHECK_EQ(hxfr_parser_body_remaining(&p), 5);
    /* The body of one message ends before the next header is parsed. */
    CHECK_EQ(hxfr_parser_feed(&p, buf + 59, n + 12 - 59, &res), 5);
    CHECK_EQ(res.event, HXFR_PARSE_BODY);
    CHECK(res.chunk == buf + 59);
    CHECK_EQ(res.body_remaining, 0);
    CHECK(hxfr_parser_idle(&p));
    CHECK_EQ(hxfr_parser_feed(&p, buf + n, 12, &res), 12);
    CHECK_EQ(res.msg.hdr.type, HXFR_MSG_PING);

    /* Advance: the caller reads the body itself. */
    hxfr_parser_init(&p, 0);
    CHECK_EQ(hxfr_parser_feed(&p, buf, n + 12, &res), 56);
    CHECK_EQ(hxfr_parser_body_advance(&p, 9), -EINVAL);
    CHECK_EQ(hxfr_parser_body_advance(&p, 0), 0);
    CHECK_EQ(hxfr_parser_body_advance(&p, 6), 0);
    CHECK_EQ(hxfr_parser_body_remaining(&p), 2);
    CHECK_EQ(hxfr_parser_body_advance(&p, 3), -EINVAL);
    CHECK_EQ(hxfr_parser_body_advance(&p, 2), 0);
    CHECK(hxfr_parser_idle(&p));
    CHECK_EQ(hxfr_parser_body_remaining(&p), 0);
    CHECK_EQ(hxfr_parser_body_advance(&p, 1), -EINVAL);
    CHECK_EQ(hxfr_parser_feed(&p, buf + n, 12, &res), 12);
    CHECK_EQ(res.msg.hdr.type, HXFR_MSG_PING);

    /* Mixed: one chunk, then advance the rest. */
    hxfr_parser_init(&p, 0);
    CHECK_EQ(hxfr_parser_feed(&p, buf, n, &res), 56);
    CHECK_EQ(hxfr_parser_feed(&p, buf + 56, 1, &res), 1);
    CHECK_EQ(res.event, HXFR_PARSE_BODY);
    CHECK_EQ(hxfr_parser_body_advance(&p, 7), 0);
    CHECK(hxfr_parser_idle(&p));
}

TEST(truncated_messages_never_complete)
{
    for (size_t g = 0; g < GOLDEN_COUNT; g++) {
        uint8_t buf[512];
        size_t n = golden_bytes(&goldens[g], buf, sizeof(buf));
        size_t msg_end = n - goldens[g].body_size;
        for (size_t cut = 1; cut < n; cut++) {
            struct hxfr_parser p;
            struct collected c;
            memset(&c, 0, sizeof(c));
            hxfr_parser_init(&p, 0);
            feed_piece(&p, buf, cut, false, &c);
            CHECK_EQ(c.error, 0);
            /* A peer that closes here leaves the parser mid-message. */
            CHECK(!hxfr_parser_idle(&p));
            CHECK_EQ(c.count, cut >= msg_end ? 1 : 0);
            if (cut >= msg_end) {
                CHECK_EQ(hxfr_parser_body_remaining(&p), n - cut);
            }
        }
    }
}

/* Feeds a bare header and returns the parser's verdict. */
static int header_result(uint8_t type, uint8_t flags, uint32_t payload_size, uint32_t max_body,
                         uint32_t magic, int *consumed)
{
    uint8_t buf[HXFR_HEADER_SIZE];
    struct hxfr_header h = {magic, type, flags, 1, payload_size};
    hxfr_header_encode(buf, &h);
    struct hxfr_parser p;
    struct hxfr_parse_result res;
    hxfr_parser_init(&p, max_body);
    int r = hxfr_parser_feed(&p, buf, sizeof(buf), &res);
    if (consumed) {
        *consumed = r;
    }
    return r;
}

#define HDR(type, flags, size, max) header_result((type), (flags), (size), (max), HXFR_MAGIC, NULL)

TEST(hostile_bad_magic)
{
    CHECK_EQ(header_result(HXFR_MSG_PING, 0, 0, 0, 0x52465849, NULL), -HXFR_EMAGIC);
    CHECK_EQ(header_result(HXFR_MSG_PING, 0, 0, 0, 0, NULL), -HXFR_EMAGIC);
    /* An HTTP request on the socket. */
    static const char http[] = "GET / HTTP/1.1\r\n\r\n";
    struct hxfr_parser p;
    struct hxfr_parse_result res;
    hxfr_parser_init(&p, 0);
    CHECK_EQ(hxfr_parser_feed(&p, (const uint8_t *)http, sizeof(http) - 1, &res), -HXFR_EMAGIC);
}

TEST(hostile_unknown_type)
{
    static const uint8_t unknown[] = {0x00, 0x06, 0x0F, 0x12, 0x23, 0x32, 0x42, 0x80, 0xFE};
    for (size_t i = 0; i < sizeof(unknown); i++) {
        CHECK_EQ(HDR(unknown[i], 0, 0, 0), -HXFR_ETYPE);
    }
}

TEST(hostile_undefined_flags)
{
    CHECK_EQ(HDR(HXFR_MSG_PING, 0x01, 0, 0), -HXFR_EFLAGS);
    CHECK_EQ(HDR(HXFR_MSG_FRAME_RESPONSE, 0x01, 24, 0), -HXFR_EFLAGS);
    CHECK_EQ(HDR(HXFR_MSG_CONFIG_REQ, 0x02, 28, 0), -HXFR_EFLAGS);
    CHECK_EQ(HDR(HXFR_MSG_ERROR, 0x80, 260, 0), -HXFR_EFLAGS);
    CHECK_EQ(HDR(HXFR_MSG_FRAME_REQUEST, 0x04, 44, 0), -HXFR_EFLAGS);
    CHECK_EQ(HDR(HXFR_MSG_FRAME_REQUEST, 0x80, 44, 0), -HXFR_EFLAGS);
    CHECK_EQ(HDR(HXFR_MSG_FRAME_REQUEST, 0x03, 100, 0), -HXFR_EFLAGS);
    CHECK_EQ(HDR(HXFR_MSG_FRAME_REQUEST, 0x02, 44, 0), HXFR_HEADER_SIZE);
    CHECK_EQ(HDR(HXFR_MSG_FRAME_REQUEST, 0x01, 45, 0), HXFR_HEADER_SIZE);
}

TEST(hostile_huge_payload_rejected_at_header)
{
#ifdef HAVE_MALLINFO2
    struct mallinfo2 before = mallinfo2();
#endif
    int consumed = 0;
    /* The verdict comes with the 12th byte, before any payload byte. */
    CHECK_EQ(header_result(HXFR_MSG_FRAME_REQUEST, HXFR_FLAG_PIXEL_DATA, 0xFFFFFFFF, 0, HXFR_MAGIC,
                           &consumed),
             -HXFR_ETOOBIG);
    CHECK_EQ(HDR(HXFR_MSG_FRAME_RESPONSE, 0, 0xFFFFFFFF, 0), -HXFR_ETOOBIG);
    CHECK_EQ(HDR(HXFR_MSG_FRAME_RESPONSE, 0, 0xFFFFFFFF, 1 << 20), -HXFR_ETOOBIG);
    CHECK_EQ(HDR(HXFR_MSG_PING, 0, 0xFFFFFFFF, 0), -HXFR_ELONG);
    CHECK_EQ(HDR(HXFR_MSG_CONFIG_REQ, 0, 0xFFFFFFFF, 0), -HXFR_ELONG);
    CHECK_EQ(HDR(HXFR_MSG_FRAME_REQUEST, 0, 0xFFFFFFFF, 0), -HXFR_ELONG);
    /* The configured maximum, exactly and one above. */
    CHECK_EQ(HDR(HXFR_MSG_FRAME_REQUEST, HXFR_FLAG_PIXEL_DATA, 44 + 4096, 4096), HXFR_HEADER_SIZE);
    CHECK_EQ(HDR(HXFR_MSG_FRAME_REQUEST, HXFR_FLAG_PIXEL_DATA, 44 + 4097, 4096), -HXFR_ETOOBIG);
    CHECK_EQ(HDR(HXFR_MSG_FRAME_RESPONSE, 0, 24 + 4097, 4096), -HXFR_ETOOBIG);
#ifdef HAVE_MALLINFO2
    /* Nothing was allocated on the way (the parser lives on the stack). */
    struct mallinfo2 after = mallinfo2();
    CHECK_EQ(after.uordblks, before.uordblks);
#endif
}

TEST(hostile_too_short)
{
    CHECK_EQ(HDR(HXFR_MSG_FRAME_REQUEST, 0, 43, 0), -HXFR_ESHORT);
    CHECK_EQ(HDR(HXFR_MSG_FRAME_REQUEST, HXFR_FLAG_PIXEL_DATA, 44, 0), -HXFR_ESHORT);
    CHECK_EQ(HDR(HXFR_MSG_FRAME_REQUEST, HXFR_FLAG_SHM, 0, 0), -HXFR_ESHORT);
    CHECK_EQ(HDR(HXFR_MSG_FRAME_RESPONSE, 0, 23, 0), -HXFR_ESHORT);
    CHECK_EQ(HDR(HXFR_MSG_CONFIG_REQ, 0, 27, 0), -HXFR_ESHORT);
    CHECK_EQ(HDR(HXFR_MSG_CONFIG_RESP, 0, 59, 0), -HXFR_ESHORT);
    CHECK_EQ(HDR(HXFR_MSG_ENABLE_SCANOUT, 0, 15, 0), -HXFR_ESHORT);
    CHECK_EQ(HDR(HXFR_MSG_DISABLE_SCANOUT, 0, 0, 0), -HXFR_ESHORT);
    CHECK_EQ(HDR(HXFR_MSG_SCANOUT_RESP, 0, 71, 0), -HXFR_ESHORT);
    CHECK_EQ(HDR(HXFR_MSG_SUBSCRIBE, 0, 3, 0), -HXFR_ESHORT);
    CHECK_EQ(HDR(HXFR_MSG_SUBSCRIBE_RESP, 0, 7, 0), -HXFR_ESHORT);
    CHECK_EQ(HDR(HXFR_MSG_HELLO, 0, 15, 0), -HXFR_ESHORT);
    CHECK_EQ(HDR(HXFR_MSG_HELLO_RESP, 0, 0, 0), -HXFR_ESHORT);
    CHECK_EQ(HDR(HXFR_MSG_ERROR, 0, 259, 0), -HXFR_ESHORT);
}

TEST(hostile_too_long)
{
    CHECK_EQ(HDR(HXFR_MSG_FRAME_REQUEST, 0, 45, 0), -HXFR_ELONG);
    CHECK_EQ(HDR(HXFR_MSG_FRAME_REQUEST, HXFR_FLAG_SHM, 45, 0), -HXFR_ELONG);
    CHECK_EQ(HDR(HXFR_MSG_KEYFRAME_REQ, 0, 1, 0), -HXFR_ELONG);
    CHECK_EQ(HDR(HXFR_MSG_PING, 0, 1, 0), -HXFR_ELONG);
    CHECK_EQ(HDR(HXFR_MSG_PONG, 0, 4, 0), -HXFR_ELONG);
    CHECK_EQ(HDR(HXFR_MSG_CONFIG_REQ, 0, 29, 0), -HXFR_ELONG);
    CHECK_EQ(HDR(HXFR_MSG_CONFIG_RESP, 0, 61, 0), -HXFR_ELONG);
    CHECK_EQ(HDR(HXFR_MSG_ENABLE_SCANOUT, 0, 17, 0), -HXFR_ELONG);
    CHECK_EQ(HDR(HXFR_MSG_DISABLE_SCANOUT, 0, 5, 0), -HXFR_ELONG);
    CHECK_EQ(HDR(HXFR_MSG_SCANOUT_RESP, 0, 73, 0), -HXFR_ELONG);
    CHECK_EQ(HDR(HXFR_MSG_SUBSCRIBE, 0, 5, 0), -HXFR_ELONG);
    CHECK_EQ(HDR(HXFR_MSG_SUBSCRIBE_RESP, 0, 9, 0), -HXFR_ELONG);
    CHECK_EQ(HDR(HXFR_MSG_HELLO, 0, 17, 0), -HXFR_ELONG);
    CHECK_EQ(HDR(HXFR_MSG_HELLO_RESP, 0, 17, 0), -HXFR_ELONG);
    CHECK_EQ(HDR(HXFR_MSG_ERROR, 0, 261, 0), -HXFR_ELONG);
}

TEST(hostile_traffic_after_fatal_error)
{
    uint8_t bad[HXFR_HEADER_SIZE];
    struct hxfr_header h = {HXFR_MAGIC, 0x77, 0, 0, 0};
    hxfr_header_encode(bad, &h);
    uint8_t ping[12];
    CHECK(golden_bytes(&goldens[0], ping, sizeof(ping)) == 12);

    struct hxfr_parser p;
    struct hxfr_parse_result res;
    hxfr_parser_init(&p, 0);
    /* The bad header arrives in two pieces; the error comes with byte 12. */
    CHECK_EQ(hxfr_parser_feed(&p, bad, 5, &res), 5);
    CHECK_EQ(res.event, HXFR_PARSE_NEED_MORE);
    CHECK_EQ(hxfr_parser_feed(&p, bad + 5, 7, &res), -HXFR_ETYPE);
    CHECK(!hxfr_parser_idle(&p));
    /* Valid traffic afterwards is refused: the stream is out of sync. */
    CHECK_EQ(hxfr_parser_feed(&p, ping, sizeof(ping), &res), -HXFR_EPARSER);
    CHECK_EQ(hxfr_parser_feed(&p, ping, 0, &res), -HXFR_EPARSER);
    CHECK_EQ(hxfr_parser_body_advance(&p, 0), -HXFR_EPARSER);
    CHECK_EQ(hxfr_parser_body_remaining(&p), 0);
    CHECK(!hxfr_parser_idle(&p));
    /* Until the owner resets it. */
    hxfr_parser_init(&p, 0);
    CHECK(hxfr_parser_idle(&p));
    CHECK_EQ(hxfr_parser_feed(&p, ping, sizeof(ping), &res), 12);
    CHECK_EQ(res.event, HXFR_PARSE_MESSAGE);
}

TEST(error_after_valid_messages_in_same_buffer)
{
    /* PING, then garbage: the PING is delivered, then the error. */
    uint8_t buf[24];
    CHECK(golden_bytes(&goldens[0], buf, 12) == 12);
    memset(buf + 12, 0xEE, 12);
    struct hxfr_parser p;
    struct hxfr_parse_result res;
    hxfr_parser_init(&p, 0);
    CHECK_EQ(hxfr_parser_feed(&p, buf, sizeof(buf), &res), 12);
    CHECK_EQ(res.event, HXFR_PARSE_MESSAGE);
    CHECK_EQ(hxfr_parser_feed(&p, buf + 12, 12, &res), -HXFR_EMAGIC);
}

TEST(max_body_default_and_clamp)
{
    struct hxfr_parser p;
    hxfr_parser_init(&p, 0);
    CHECK_EQ(p.max_body, HXFR_MAX_BODY_HARD);
    hxfr_parser_init(&p, UINT32_MAX);
    CHECK_EQ(p.max_body, HXFR_MAX_BODY_HARD);
    hxfr_parser_init(&p, 100);
    CHECK_EQ(p.max_body, 100);
}

TEST(large_body_streams_through_without_buffering)
{
    /* A 1 MiB inline frame (512x512 BGRA) fed in 4 KiB reads: every byte
     * of the body comes back as a pointer into the read that carried it. */
    const uint32_t w = 512, h = 512, body_size = w * h * 4;
    struct hxfr_msg m;
    memset(&m, 0, sizeof(m));
    m.hdr.type = HXFR_MSG_FRAME_REQUEST;
    m.hdr.flags = HXFR_FLAG_PIXEL_DATA;
    m.u.frame_request.width = w;
    m.u.frame_request.height = h;
    m.u.frame_request.format = HXFR_FORMAT_ARGB8888;
    m.u.frame_request.stride = w * 4;
    size_t total = HXFR_HEADER_SIZE + 44 + body_size;
    uint8_t *buf = malloc(total);
    CHECK(buf != NULL);
    CHECK_EQ(hxfr_msg_encode(&m, body_size, buf, total), HXFR_HEADER_SIZE + 44);
    for (uint32_t i = 0; i < body_size; i++) {
        buf[HXFR_HEADER_SIZE + 44 + i] = (uint8_t)(i * 7);
    }
    struct hxfr_parser p;
    hxfr_parser_init(&p, body_size);
    size_t off = 0, body_seen = 0;
    bool got_msg = false;
    while (off < total) {
        size_t piece = total - off < 4096 ? total - off : 4096;
        size_t used = 0;
        for (;;) {
            struct hxfr_parse_result res;
            int r = hxfr_parser_feed(&p, buf + off + used, piece - used, &res);
            CHECK(r >= 0);
            if (res.event == HXFR_PARSE_NEED_MORE) {
                used += (size_t)r;
                break;
            }
            if (res.event == HXFR_PARSE_MESSAGE) {
                CHECK(!got_msg);
                got_msg = true;
                CHECK_EQ(res.body_size, body_size);
            } else {
                CHECK(res.chunk == buf + off + used);
                CHECK_EQ(res.chunk - (buf + HXFR_HEADER_SIZE + 44), body_seen);
                body_seen += res.chunk_size;
            }
            used += (size_t)r;
        }
        CHECK_EQ(used, piece);
        off += piece;
    }
    CHECK(got_msg);
    CHECK_EQ(body_seen, body_size);
    CHECK(hxfr_parser_idle(&p));
    /* One byte above the configured maximum is refused at the header. */
    hxfr_parser_init(&p, body_size - 1);
    struct hxfr_parse_result res;
    CHECK_EQ(hxfr_parser_feed(&p, buf, total, &res), -HXFR_ETOOBIG);
    free(buf);
}

TEST(frame_response_units_through_parser)
{
    /* The golden FRAME_RESPONSE: parse it, then walk its units. */
    const struct golden *g = &goldens[6];
    CHECK_EQ(g->body_size, 17);
    uint8_t buf[128];
    size_t n = golden_bytes(g, buf, sizeof(buf));
    struct collected c;
    parse_cuts(buf, n, NULL, 0, false, &c);
    CHECK_EQ(c.error, 0);
    CHECK_EQ(c.count, 1);
    CHECK_EQ(c.msgs[0].hdr.type, HXFR_MSG_FRAME_RESPONSE);
    CHECK_EQ(hxfr_units_validate(c.bodies, c.body_len[0], c.msgs[0].u.frame_response.nal_count), 0);
    size_t pos = 0;
    const uint8_t *u;
    uint32_t size;
    CHECK_EQ(hxfr_units_next(c.bodies, c.body_len[0], &pos, &u, &size), 1);
    static const uint8_t sps[] = {0, 0, 0, 1, 0x67};
    static const uint8_t pps[] = {0, 0, 1, 0x68};
    CHECK_EQ(size, 5);
    CHECK_MEM(u, sps, 5);
    CHECK_EQ(hxfr_units_next(c.bodies, c.body_len[0], &pos, &u, &size), 1);
    CHECK_EQ(size, 4);
    CHECK_MEM(u, pps, 4);
    CHECK_EQ(hxfr_units_next(c.bodies, c.body_len[0], &pos, &u, &size), 0);
}
