/* libhxfr message codec: golden vectors in both directions, round trips,
 * sizes, header validation and the helpers around ERROR messages. */
#include <errno.h>
#include <limits.h>

#include <hxfr/proto.h>

#include "hxfr-config.h"

#include "golden.h"

#include "harness.h"

TEST(golden_encode_exact_bytes)
{
    for (size_t i = 0; i < GOLDEN_COUNT; i++) {
        const struct golden *g = &goldens[i];
        uint8_t want[512], got[512];
        size_t n = golden_bytes(g, want, sizeof(want));
        CHECK(n > 0);
        struct hxfr_msg m;
        golden_msg(g, &m);
        memset(got, 0xAA, sizeof(got));
        int r = hxfr_msg_encode(&m, g->body_size, got, sizeof(got));
        if (r != (int)(n - g->body_size)) {
            FAIL("%s: encode returned %d, want %zu", g->name, r, n - g->body_size);
        }
        CHECK_MEM(got, want, (size_t)r);
    }
}

TEST(golden_decode_fields)
{
    for (size_t i = 0; i < GOLDEN_COUNT; i++) {
        const struct golden *g = &goldens[i];
        uint8_t bytes[512];
        size_t n = golden_bytes(g, bytes, sizeof(bytes));
        CHECK(n > 0);
        struct hxfr_header h;
        hxfr_header_decode(bytes, &h);
        CHECK_EQ(hxfr_header_validate(&h, 0), 0);
        CHECK_EQ(h.payload_size, n - HXFR_HEADER_SIZE);
        int fixed = hxfr_msg_fixed_size(h.type);
        CHECK(fixed >= 0);
        CHECK_EQ((size_t)fixed + g->body_size, h.payload_size);
        struct hxfr_msg got, want;
        memset(&got, 0x5A, sizeof(got));
        CHECK_EQ(hxfr_msg_decode(&h, bytes + HXFR_HEADER_SIZE, (size_t)fixed, &got), 0);
        golden_msg(g, &want);
        if (!msg_equal(&got, &want)) {
            FAIL("%s: decoded fields differ", g->name);
        }
    }
}

TEST(golden_header_roundtrip)
{
    for (size_t i = 0; i < GOLDEN_COUNT; i++) {
        uint8_t bytes[512], again[HXFR_HEADER_SIZE];
        CHECK(golden_bytes(&goldens[i], bytes, sizeof(bytes)) > 0);
        struct hxfr_header h;
        hxfr_header_decode(bytes, &h);
        hxfr_header_encode(again, &h);
        CHECK_MEM(again, bytes, HXFR_HEADER_SIZE);
    }
}

TEST(every_type_has_a_golden_vector)
{
    static const uint8_t types[] = {
        HXFR_MSG_FRAME_REQUEST, HXFR_MSG_FRAME_RESPONSE,  HXFR_MSG_KEYFRAME_REQ,
        HXFR_MSG_CONFIG_REQ,    HXFR_MSG_CONFIG_RESP,     HXFR_MSG_PING,
        HXFR_MSG_PONG,          HXFR_MSG_ENABLE_SCANOUT,  HXFR_MSG_DISABLE_SCANOUT,
        HXFR_MSG_SCANOUT_RESP,  HXFR_MSG_SUBSCRIBE,       HXFR_MSG_SUBSCRIBE_RESP,
        HXFR_MSG_HELLO,         HXFR_MSG_HELLO_RESP,      HXFR_MSG_ERROR,
        HXFR_MSG_SHM_ATTACH,    HXFR_MSG_SHM_ATTACH_RESP, HXFR_MSG_SLOT_RELEASE,
    };
    for (size_t t = 0; t < sizeof(types); t++) {
        bool found = false;
        for (size_t i = 0; i < GOLDEN_COUNT; i++) {
            struct hxfr_msg m;
            golden_msg(&goldens[i], &m);
            found = found || m.hdr.type == types[t];
        }
        CHECK(found);
    }
}

TEST(fixed_sizes)
{
    CHECK_EQ(hxfr_msg_fixed_size(HXFR_MSG_FRAME_REQUEST), 44);
    CHECK_EQ(hxfr_msg_fixed_size(HXFR_MSG_FRAME_RESPONSE), 24);
    CHECK_EQ(hxfr_msg_fixed_size(HXFR_MSG_KEYFRAME_REQ), 0);
    CHECK_EQ(hxfr_msg_fixed_size(HXFR_MSG_CONFIG_REQ), 28);
    CHECK_EQ(hxfr_msg_fixed_size(HXFR_MSG_CONFIG_RESP), 60);
    CHECK_EQ(hxfr_msg_fixed_size(HXFR_MSG_PING), 0);
    CHECK_EQ(hxfr_msg_fixed_size(HXFR_MSG_PONG), 0);
    CHECK_EQ(hxfr_msg_fixed_size(HXFR_MSG_ENABLE_SCANOUT), 16);
    CHECK_EQ(hxfr_msg_fixed_size(HXFR_MSG_DISABLE_SCANOUT), 4);
    CHECK_EQ(hxfr_msg_fixed_size(HXFR_MSG_SCANOUT_RESP), 72);
    CHECK_EQ(hxfr_msg_fixed_size(HXFR_MSG_SUBSCRIBE), 4);
    CHECK_EQ(hxfr_msg_fixed_size(HXFR_MSG_SUBSCRIBE_RESP), 8);
    CHECK_EQ(hxfr_msg_fixed_size(HXFR_MSG_HELLO), 16);
    CHECK_EQ(hxfr_msg_fixed_size(HXFR_MSG_HELLO_RESP), 16);
    CHECK_EQ(hxfr_msg_fixed_size(HXFR_MSG_ERROR), 260);
    /* Every other code is unknown, and nothing exceeds the parser buffer. */
    int known = 0;
    for (int t = 0; t < 256; t++) {
        int s = hxfr_msg_fixed_size((uint8_t)t);
        if (s >= 0) {
            known++;
            CHECK(s <= (int)HXFR_MAX_FIXED_SIZE);
            CHECK(hxfr_msg_type_name((uint8_t)t) != NULL);
        } else {
            CHECK_EQ(s, -HXFR_ETYPE);
            CHECK(hxfr_msg_type_name((uint8_t)t) == NULL);
        }
    }
    CHECK_EQ(known, 18);
    CHECK(strcmp(hxfr_msg_type_name(HXFR_MSG_FRAME_REQUEST), "FRAME_REQUEST") == 0);
    CHECK(strcmp(hxfr_msg_type_name(HXFR_MSG_HELLO_RESP), "HELLO_RESP") == 0);
    CHECK(strcmp(hxfr_msg_type_name(HXFR_MSG_ERROR), "ERROR") == 0);
}

TEST(roundtrip_every_type_with_extreme_values)
{
    for (int t = 0; t < 256; t++) {
        int fixed = hxfr_msg_fixed_size((uint8_t)t);
        if (fixed < 0) {
            continue;
        }
        struct hxfr_msg m;
        memset(&m, 0, sizeof(m));
        m.hdr.type = (uint8_t)t;
        m.hdr.session_id = 0xFFFF;
        /* Fill the union with 0xFF so every numeric field is at its
         * maximum, then make the strings and reserved bytes what the wire
         * can carry. */
        memset(&m.u, 0xFF, sizeof(m.u));
        memset(m.u.frame_request.reserved, 0, sizeof(m.u.frame_request.reserved));
        if (t == HXFR_MSG_FRAME_RESPONSE) {
            memset(m.u.frame_response.reserved, 0, sizeof(m.u.frame_response.reserved));
        } else if (t == HXFR_MSG_CONFIG_REQ) {
            m.u.config_req.reserved = 0;
        } else if (t == HXFR_MSG_CONFIG_RESP) {
            m.u.config_resp.reserved = 0;
            memset(m.u.config_resp.encoder, 'e', sizeof(m.u.config_resp.encoder) - 1);
            m.u.config_resp.encoder[HXFR_ENCODER_NAME_LEN - 1] = 0;
        } else if (t == HXFR_MSG_SCANOUT_RESP) {
            memset(m.u.scanout_resp.connector, 'c', sizeof(m.u.scanout_resp.connector) - 1);
            m.u.scanout_resp.connector[HXFR_CONNECTOR_LEN - 1] = 0;
        } else if (t == HXFR_MSG_SHM_ATTACH) {
            memset(m.u.shm_attach.name, 'n', sizeof(m.u.shm_attach.name) - 1);
            m.u.shm_attach.name[HXFR_SHM_NAME_LEN - 1] = 0;
        } else if (t == HXFR_MSG_SHM_ATTACH_RESP) {
            m.u.shm_attach_resp.reserved = 0;
        } else if (t == HXFR_MSG_ERROR) {
            memset(m.u.error.message, 'm', sizeof(m.u.error.message) - 1);
            m.u.error.message[HXFR_ERROR_MESSAGE_LEN - 1] = 0;
        }
        m.hdr.magic = HXFR_MAGIC;
        m.hdr.payload_size = (uint32_t)fixed;
        uint8_t buf[HXFR_HEADER_SIZE + HXFR_MAX_FIXED_SIZE];
        CHECK_EQ(hxfr_msg_encode(&m, 0, buf, sizeof(buf)), HXFR_HEADER_SIZE + fixed);
        struct hxfr_header h;
        hxfr_header_decode(buf, &h);
        struct hxfr_msg back;
        CHECK_EQ(hxfr_msg_decode(&h, buf + HXFR_HEADER_SIZE, (size_t)fixed, &back), 0);
        if (!msg_equal(&m, &back)) {
            FAIL("type 0x%02x does not round-trip", t);
        }
    }
}

TEST(encode_errors)
{
    struct hxfr_msg m;
    uint8_t buf[HXFR_HEADER_SIZE + HXFR_MAX_FIXED_SIZE];
    memset(&m, 0, sizeof(m));

    m.hdr.type = 0x06;
    CHECK_EQ(hxfr_msg_encode(&m, 0, buf, sizeof(buf)), -HXFR_ETYPE);

    /* A buffer one byte short of header + fixed part. */
    m.hdr.type = HXFR_MSG_CONFIG_REQ;
    CHECK_EQ(hxfr_msg_encode(&m, 0, buf, HXFR_HEADER_SIZE + 27), -ENOSPC);
    CHECK_EQ(hxfr_msg_encode(&m, 0, buf, HXFR_HEADER_SIZE + 28), HXFR_HEADER_SIZE + 28);
    m.hdr.type = HXFR_MSG_PING;
    CHECK_EQ(hxfr_msg_encode(&m, 0, buf, HXFR_HEADER_SIZE - 1), -ENOSPC);

    /* Bodies only where the type (and its flags) define one. */
    m.hdr.type = HXFR_MSG_PING;
    CHECK_EQ(hxfr_msg_encode(&m, 1, buf, sizeof(buf)), -HXFR_ETOOBIG);
    m.hdr.type = HXFR_MSG_FRAME_REQUEST;
    m.hdr.flags = 0;
    CHECK_EQ(hxfr_msg_encode(&m, 16, buf, sizeof(buf)), -HXFR_ETOOBIG);
    m.hdr.flags = HXFR_FLAG_SHM;
    CHECK_EQ(hxfr_msg_encode(&m, 16, buf, sizeof(buf)), -HXFR_ETOOBIG);
    m.hdr.flags = HXFR_FLAG_PIXEL_DATA;
    CHECK_EQ(hxfr_msg_encode(&m, 0, buf, sizeof(buf)), -HXFR_ESHORT);
    CHECK_EQ(hxfr_msg_encode(&m, 16, buf, sizeof(buf)), HXFR_HEADER_SIZE + 44);
    CHECK_EQ(hxfr_get_u32(buf + 8), 44 + 16);
    CHECK_EQ(hxfr_msg_encode(&m, HXFR_MAX_BODY_HARD, buf, sizeof(buf)), HXFR_HEADER_SIZE + 44);
    CHECK_EQ(hxfr_msg_encode(&m, HXFR_MAX_BODY_HARD + 1, buf, sizeof(buf)), -HXFR_ETOOBIG);
    CHECK_EQ(hxfr_msg_encode(&m, UINT32_MAX, buf, sizeof(buf)), -HXFR_ETOOBIG);
    CHECK_EQ(hxfr_msg_encode(&m, UINT32_MAX - 43, buf, sizeof(buf)), -HXFR_ETOOBIG);

    /* Flags: undefined bits and the two exclusive FRAME_REQUEST flags. */
    m.hdr.flags = HXFR_FLAG_PIXEL_DATA | HXFR_FLAG_SHM;
    CHECK_EQ(hxfr_msg_encode(&m, 16, buf, sizeof(buf)), -HXFR_EFLAGS);
    m.hdr.flags = 0x04;
    CHECK_EQ(hxfr_msg_encode(&m, 0, buf, sizeof(buf)), -HXFR_EFLAGS);
    m.hdr.type = HXFR_MSG_PONG;
    m.hdr.flags = HXFR_FLAG_PIXEL_DATA;
    CHECK_EQ(hxfr_msg_encode(&m, 0, buf, sizeof(buf)), -HXFR_EFLAGS);

    /* FRAME_RESPONSE takes any body, including none. */
    m.hdr.type = HXFR_MSG_FRAME_RESPONSE;
    m.hdr.flags = 0;
    CHECK_EQ(hxfr_msg_encode(&m, 0, buf, sizeof(buf)), HXFR_HEADER_SIZE + 24);
    CHECK_EQ(hxfr_msg_encode(&m, 1000, buf, sizeof(buf)), HXFR_HEADER_SIZE + 24);
    CHECK_EQ(hxfr_get_u32(buf + 8), 1024);
}

TEST(encode_ignores_given_magic_and_payload_size_and_zeroes_reserved)
{
    struct hxfr_msg m;
    memset(&m, 0, sizeof(m));
    m.hdr.magic = 0xDEADBEEF;
    m.hdr.payload_size = 12345;
    m.hdr.type = HXFR_MSG_FRAME_REQUEST;
    memset(m.u.frame_request.reserved, 0x77, sizeof(m.u.frame_request.reserved));
    uint8_t buf[HXFR_HEADER_SIZE + HXFR_MAX_FIXED_SIZE];
    CHECK_EQ(hxfr_msg_encode(&m, 0, buf, sizeof(buf)), 56);
    static const uint8_t magic[] = {0x48, 0x58, 0x46, 0x52};
    CHECK_MEM(buf, magic, 4);
    CHECK_EQ(hxfr_get_u32(buf + 8), 44);
    static const uint8_t zeros[7] = {0};
    CHECK_MEM(buf + HXFR_HEADER_SIZE + 37, zeros, 7);

    /* The CONFIG_REQ reserved byte 27 and CONFIG_RESP byte 23, too. */
    memset(&m, 0, sizeof(m));
    m.hdr.type = HXFR_MSG_CONFIG_REQ;
    m.u.config_req.reserved = 0x55;
    CHECK_EQ(hxfr_msg_encode(&m, 0, buf, sizeof(buf)), 40);
    CHECK_EQ(buf[HXFR_HEADER_SIZE + 27], 0);
    memset(&m, 0, sizeof(m));
    m.hdr.type = HXFR_MSG_CONFIG_RESP;
    m.u.config_resp.reserved = 0x55;
    CHECK_EQ(hxfr_msg_encode(&m, 0, buf, sizeof(buf)), 72);
    CHECK_EQ(buf[HXFR_HEADER_SIZE + 23], 0);
}

TEST(config_req_gop_extension_bytes_23_to_26)
{
    struct hxfr_msg m;
    memset(&m, 0, sizeof(m));
    m.hdr.type = HXFR_MSG_CONFIG_REQ;
    m.u.config_req.realtime = 0xAB;
    m.u.config_req.gop = 0x11223344;
    uint8_t buf[64];
    CHECK_EQ(hxfr_msg_encode(&m, 0, buf, sizeof(buf)), 40);
    const uint8_t *p = buf + HXFR_HEADER_SIZE;
    CHECK_EQ(p[22], 0xAB);
    CHECK_EQ(p[23], 0x44);
    CHECK_EQ(p[24], 0x33);
    CHECK_EQ(p[25], 0x22);
    CHECK_EQ(p[26], 0x11);
    CHECK_EQ(p[27], 0);
}

TEST(decode_terminates_strings)
{
    /* A peer that fills every string byte gets its last byte cut. */
    uint8_t buf[HXFR_HEADER_SIZE + HXFR_ERROR_SIZE];
    struct hxfr_header h = {HXFR_MAGIC, HXFR_MSG_ERROR, 0, 0, HXFR_ERROR_SIZE};
    hxfr_header_encode(buf, &h);
    memset(buf + HXFR_HEADER_SIZE, 'x', HXFR_ERROR_SIZE);
    struct hxfr_msg m;
    CHECK_EQ(hxfr_msg_decode(&h, buf + HXFR_HEADER_SIZE, HXFR_ERROR_SIZE, &m), 0);
    CHECK_EQ(strlen(m.u.error.message), HXFR_ERROR_MESSAGE_LEN - 1);

    h = (struct hxfr_header){HXFR_MAGIC, HXFR_MSG_SCANOUT_RESP, 0, 0, HXFR_SCANOUT_RESP_SIZE};
    CHECK_EQ(hxfr_msg_decode(&h, buf + HXFR_HEADER_SIZE, HXFR_SCANOUT_RESP_SIZE, &m), 0);
    CHECK_EQ(strlen(m.u.scanout_resp.connector), HXFR_CONNECTOR_LEN - 1);

    h = (struct hxfr_header){HXFR_MAGIC, HXFR_MSG_CONFIG_RESP, 0, 0, HXFR_CONFIG_RESP_SIZE};
    CHECK_EQ(hxfr_msg_decode(&h, buf + HXFR_HEADER_SIZE, HXFR_CONFIG_RESP_SIZE, &m), 0);
    CHECK_EQ(strlen(m.u.config_resp.encoder), HXFR_ENCODER_NAME_LEN - 1);
}

TEST(decode_rechecks_header_and_length)
{
    uint8_t fixed[HXFR_MAX_FIXED_SIZE] = {0};
    struct hxfr_msg m;
    struct hxfr_header h = {HXFR_MAGIC, HXFR_MSG_CONFIG_REQ, 0, 0, 28};
    CHECK_EQ(hxfr_msg_decode(&h, fixed, 27, &m), -HXFR_ESHORT);
    CHECK_EQ(hxfr_msg_decode(&h, fixed, 28, &m), 0);
    h.magic = 0;
    CHECK_EQ(hxfr_msg_decode(&h, fixed, 28, &m), -HXFR_EMAGIC);
    h = (struct hxfr_header){HXFR_MAGIC, 0x99, 0, 0, 0};
    CHECK_EQ(hxfr_msg_decode(&h, fixed, 0, &m), -HXFR_ETYPE);
    h = (struct hxfr_header){HXFR_MAGIC, HXFR_MSG_PING, 0x80, 0, 0};
    CHECK_EQ(hxfr_msg_decode(&h, fixed, 0, &m), -HXFR_EFLAGS);
    h = (struct hxfr_header){HXFR_MAGIC, HXFR_MSG_SUBSCRIBE, 0, 0, 3};
    CHECK_EQ(hxfr_msg_decode(&h, fixed, 4, &m), -HXFR_ESHORT);
}

TEST(header_validate_rules)
{
    struct hxfr_header h = {HXFR_MAGIC, HXFR_MSG_PING, 0, 0, 0};
    CHECK_EQ(hxfr_header_validate(&h, 0), 0);
    h.magic = 0x52465849;
    CHECK_EQ(hxfr_header_validate(&h, 0), -HXFR_EMAGIC);
    /* Magic in the wrong byte order ("RFXH" on the wire). */
    h.magic = 0x48584652;
    CHECK_EQ(hxfr_header_validate(&h, 0), -HXFR_EMAGIC);
    h.magic = HXFR_MAGIC;

    for (int t = 0; t < 256; t++) {
        h = (struct hxfr_header){HXFR_MAGIC, (uint8_t)t, 0, 0, 0};
        int fixed = hxfr_msg_fixed_size((uint8_t)t);
        if (fixed < 0) {
            CHECK_EQ(hxfr_header_validate(&h, 0), -HXFR_ETYPE);
            continue;
        }
        h.payload_size = (uint32_t)fixed;
        CHECK_EQ(hxfr_header_validate(&h, 0), 0);
        /* Every flag bit on every type: only the defined ones pass. */
        for (int bit = 0; bit < 8; bit++) {
            h.flags = (uint8_t)(1u << bit);
            bool defined =
                (t == HXFR_MSG_FRAME_REQUEST && bit < 2) || (t == HXFR_MSG_SHM_ATTACH && bit == 0);
            int want = defined ? 0 : -HXFR_EFLAGS;
            if (defined && t == HXFR_MSG_FRAME_REQUEST && h.flags == HXFR_FLAG_PIXEL_DATA) {
                want = -HXFR_ESHORT; /* announced pixels are missing */
            }
            CHECK_EQ(hxfr_header_validate(&h, 0), want);
        }
        h.flags = 0;
        if (fixed > 0) {
            h.payload_size = (uint32_t)fixed - 1;
            CHECK_EQ(hxfr_header_validate(&h, 0), -HXFR_ESHORT);
        }
        h.payload_size = (uint32_t)fixed + 1;
        CHECK_EQ(hxfr_header_validate(&h, 0), t == HXFR_MSG_FRAME_RESPONSE ? 0 : -HXFR_ELONG);
        h.payload_size = UINT32_MAX;
        CHECK_EQ(hxfr_header_validate(&h, 0),
                 t == HXFR_MSG_FRAME_RESPONSE ? -HXFR_ETOOBIG : -HXFR_ELONG);
    }

    /* FRAME_REQUEST bodies and the configured maximum. */
    h = (struct hxfr_header){HXFR_MAGIC, HXFR_MSG_FRAME_REQUEST, HXFR_FLAG_PIXEL_DATA, 0, 44};
    CHECK_EQ(hxfr_header_validate(&h, 0), -HXFR_ESHORT);
    h.payload_size = 43;
    CHECK_EQ(hxfr_header_validate(&h, 0), -HXFR_ESHORT);
    h.payload_size = 45;
    CHECK_EQ(hxfr_header_validate(&h, 0), 0);
    h.payload_size = 44 + 1000;
    CHECK_EQ(hxfr_header_validate(&h, 1000), 0);
    h.payload_size = 44 + 1001;
    CHECK_EQ(hxfr_header_validate(&h, 1000), -HXFR_ETOOBIG);
    h.payload_size = 44 + HXFR_MAX_BODY_HARD;
    CHECK_EQ(hxfr_header_validate(&h, 0), 0);
    /* A configured maximum above the hard limit is clamped to it. */
    h.payload_size = 44 + HXFR_MAX_BODY_HARD + 1;
    CHECK_EQ(hxfr_header_validate(&h, 0), -HXFR_ETOOBIG);
    CHECK_EQ(hxfr_header_validate(&h, UINT32_MAX), -HXFR_ETOOBIG);
    h.payload_size = UINT32_MAX;
    CHECK_EQ(hxfr_header_validate(&h, UINT32_MAX), -HXFR_ETOOBIG);
    h.flags = HXFR_FLAG_PIXEL_DATA | HXFR_FLAG_SHM;
    h.payload_size = 100;
    CHECK_EQ(hxfr_header_validate(&h, 0), -HXFR_EFLAGS);
    h.flags = HXFR_FLAG_SHM;
    CHECK_EQ(hxfr_header_validate(&h, 0), -HXFR_ELONG);
    h.payload_size = 44;
    CHECK_EQ(hxfr_header_validate(&h, 0), 0);

    /* FRAME_RESPONSE bodies are bounded by the same maximum. */
    h = (struct hxfr_header){HXFR_MAGIC, HXFR_MSG_FRAME_RESPONSE, 0, 0, 24 + 64};
    CHECK_EQ(hxfr_header_validate(&h, 64), 0);
    h.payload_size++;
    CHECK_EQ(hxfr_header_validate(&h, 64), -HXFR_ETOOBIG);
    h.payload_size = 23;
    CHECK_EQ(hxfr_header_validate(&h, 64), -HXFR_ESHORT);
}

TEST(error_message_helper)
{
    struct hxfr_msg m;
    memset(&m, 0x33, sizeof(m));
    hxfr_msg_error(&m, 42, HXFR_STATUS_BAD_GEOMETRY, "bad stride %u for width %u", 10u, 20u);
    CHECK_EQ(m.hdr.magic, HXFR_MAGIC);
    CHECK_EQ(m.hdr.type, HXFR_MSG_ERROR);
    CHECK_EQ(m.hdr.flags, 0);
    CHECK_EQ(m.hdr.session_id, 42);
    CHECK_EQ(m.hdr.payload_size, HXFR_ERROR_SIZE);
    CHECK_EQ(m.u.error.code, HXFR_STATUS_BAD_GEOMETRY);
    CHECK(strcmp(m.u.error.message, "bad stride 10 for width 20") == 0);
    /* The rest of the field is zero, so nothing stale reaches the wire. */
    for (size_t i = strlen(m.u.error.message); i < HXFR_ERROR_MESSAGE_LEN; i++) {
        CHECK_EQ(m.u.error.message[i], 0);
    }

    char longtext[600];
    memset(longtext, 'q', sizeof(longtext) - 1);
    longtext[sizeof(longtext) - 1] = 0;
    hxfr_msg_error(&m, 0, HXFR_STATUS_INTERNAL, "%s", longtext);
    CHECK_EQ(strlen(m.u.error.message), 255);

    uint8_t buf[HXFR_HEADER_SIZE + HXFR_ERROR_SIZE];
    CHECK_EQ(hxfr_msg_encode(&m, 0, buf, sizeof(buf)), (int)sizeof(buf));
    CHECK_EQ((int32_t)hxfr_get_u32(buf + HXFR_HEADER_SIZE), HXFR_STATUS_INTERNAL);
    CHECK_EQ(buf[HXFR_HEADER_SIZE + 4 + 255], 0);
}

TEST(status_names_and_mapping)
{
    CHECK(strcmp(hxfr_status_name(HXFR_STATUS_OK), "OK") == 0);
    CHECK(strcmp(hxfr_status_name(HXFR_STATUS_INVALID_MSG), "INVALID_MSG") == 0);
    CHECK(strcmp(hxfr_status_name(HXFR_STATUS_RESOURCE_NOT_FOUND), "RESOURCE_NOT_FOUND") == 0);
    CHECK(strcmp(hxfr_status_name(HXFR_STATUS_NOT_GPU_TEXTURE), "NOT_GPU_TEXTURE") == 0);
    CHECK(strcmp(hxfr_status_name(HXFR_STATUS_NO_SURFACE), "NO_SURFACE") == 0);
    CHECK(strcmp(hxfr_status_name(HXFR_STATUS_ENCODE_FAILED), "ENCODE_FAILED") == 0);
    CHECK(strcmp(hxfr_status_name(HXFR_STATUS_NOT_CONFIGURED), "NOT_CONFIGURED") == 0);
    CHECK(strcmp(hxfr_status_name(HXFR_STATUS_UNSUPPORTED), "UNSUPPORTED") == 0);
    CHECK(strcmp(hxfr_status_name(HXFR_STATUS_BAD_GEOMETRY), "BAD_GEOMETRY") == 0);
    CHECK(strcmp(hxfr_status_name(HXFR_STATUS_TOO_LARGE), "TOO_LARGE") == 0);
    CHECK(strcmp(hxfr_status_name(HXFR_STATUS_BUSY), "BUSY") == 0);
    CHECK(strcmp(hxfr_status_name(HXFR_STATUS_SHM), "SHM") == 0);
    CHECK(strcmp(hxfr_status_name(HXFR_STATUS_NO_SCANOUT), "NO_SCANOUT") == 0);
    CHECK(strcmp(hxfr_status_name(HXFR_STATUS_SHUTTING_DOWN), "SHUTTING_DOWN") == 0);
    CHECK(strcmp(hxfr_status_name(HXFR_STATUS_INTERNAL), "INTERNAL") == 0);
    CHECK(strcmp(hxfr_status_name(-50), "UNKNOWN") == 0);
    CHECK(strcmp(hxfr_status_name(1), "UNKNOWN") == 0);

    CHECK_EQ(hxfr_status_from_error(0), HXFR_STATUS_OK);
    CHECK_EQ(hxfr_status_from_error(7), HXFR_STATUS_OK);
    CHECK_EQ(hxfr_status_from_error(-HXFR_EMAGIC), HXFR_STATUS_INVALID_MSG);
    CHECK_EQ(hxfr_status_from_error(-HXFR_ETYPE), HXFR_STATUS_INVALID_MSG);
    CHECK_EQ(hxfr_status_from_error(-HXFR_EFLAGS), HXFR_STATUS_INVALID_MSG);
    CHECK_EQ(hxfr_status_from_error(-HXFR_ESHORT), HXFR_STATUS_INVALID_MSG);
    CHECK_EQ(hxfr_status_from_error(-HXFR_ELONG), HXFR_STATUS_INVALID_MSG);
    CHECK_EQ(hxfr_status_from_error(-HXFR_EPARSER), HXFR_STATUS_INVALID_MSG);
    CHECK_EQ(hxfr_status_from_error(-HXFR_EUNITS), HXFR_STATUS_INVALID_MSG);
    CHECK_EQ(hxfr_status_from_error(-HXFR_ETOOBIG), HXFR_STATUS_INVALID_MSG);
    CHECK_EQ(hxfr_status_from_error(-E2BIG), HXFR_STATUS_TOO_LARGE);
    CHECK_EQ(hxfr_status_from_error(-HXFR_EDIMS), HXFR_STATUS_TOO_LARGE);
    CHECK_EQ(hxfr_status_from_error(-HXFR_EFORMAT), HXFR_STATUS_BAD_GEOMETRY);
    CHECK_EQ(hxfr_status_from_error(-HXFR_EZERO), HXFR_STATUS_BAD_GEOMETRY);
    CHECK_EQ(hxfr_status_from_error(-HXFR_EODD), HXFR_STATUS_BAD_GEOMETRY);
    CHECK_EQ(hxfr_status_from_error(-HXFR_ESTRIDE), HXFR_STATUS_BAD_GEOMETRY);
    CHECK_EQ(hxfr_status_from_error(-HXFR_EOVERFLOW), HXFR_STATUS_BAD_GEOMETRY);
    CHECK_EQ(hxfr_status_from_error(-HXFR_EPIXELS), HXFR_STATUS_BAD_GEOMETRY);
    CHECK_EQ(hxfr_status_from_error(-EINVAL), HXFR_STATUS_INVALID_MSG);
    CHECK_EQ(hxfr_status_from_error(-ENOENT), HXFR_STATUS_RESOURCE_NOT_FOUND);
    CHECK_EQ(hxfr_status_from_error(-ENOTSUP), HXFR_STATUS_UNSUPPORTED);
    CHECK_EQ(hxfr_status_from_error(-EBUSY), HXFR_STATUS_BUSY);
    CHECK_EQ(hxfr_status_from_error(-ESHUTDOWN), HXFR_STATUS_SHUTTING_DOWN);
    CHECK_EQ(hxfr_status_from_error(-ENOMEM), HXFR_STATUS_INTERNAL);
    CHECK_EQ(hxfr_status_from_error(-HXFR_EREMOTE), HXFR_STATUS_INTERNAL);
    CHECK_EQ(hxfr_status_from_error(INT_MIN), HXFR_STATUS_INTERNAL);
}

TEST(strerror_and_version)
{
    for (int e = HXFR_EBASE; e < HXFR_ELAST; e++) {
        const char *s = hxfr_strerror(-e);
        CHECK(s != NULL && s[0] != 0);
        CHECK(strcmp(s, hxfr_strerror(e)) == 0);
        CHECK(strcmp(s, "unknown error") != 0);
        /* Every hxfr code has its own text. */
        for (int f = HXFR_EBASE; f < e; f++) {
            CHECK(strcmp(s, hxfr_strerror(-f)) != 0);
        }
    }
    CHECK(strstr(hxfr_strerror(-HXFR_EMAGIC), "magic") != NULL);
    CHECK(strcmp(hxfr_strerror(-ENOMEM), hxfr_strerror(ENOMEM)) == 0);
    CHECK(strcmp(hxfr_strerror(-ENOMEM), "unknown error") != 0);
    CHECK(hxfr_strerror(-HXFR_ELAST) != NULL);
    CHECK(hxfr_strerror(INT_MIN) != NULL);
    CHECK(hxfr_strerror(INT_MAX) != NULL);
    CHECK(hxfr_strerror(-4000) != NULL);
    CHECK(hxfr_strerror(0) != NULL);
    CHECK(strcmp(hxfr_version(), HXFR_VERSION) == 0);
}

TEST(little_endian_helpers)
{
    uint8_t b[8];
    hxfr_put_u16(b, 0x1234);
    CHECK_EQ(b[0], 0x34);
    CHECK_EQ(b[1], 0x12);
    CHECK_EQ(hxfr_get_u16(b), 0x1234);
    hxfr_put_u32(b, 0xA1B2C3D4);
    CHECK_EQ(b[0], 0xD4);
    CHECK_EQ(b[3], 0xA1);
    CHECK_EQ(hxfr_get_u32(b), 0xA1B2C3D4);
    hxfr_put_u64(b, 0x0102030405060708ull);
    CHECK_EQ(b[0], 0x08);
    CHECK_EQ(b[7], 0x01);
    CHECK(hxfr_get_u64(b) == 0x0102030405060708ull);
    hxfr_put_u64(b, UINT64_MAX);
    CHECK(hxfr_get_u64(b) == UINT64_MAX);
}
