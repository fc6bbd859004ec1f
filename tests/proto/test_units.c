/* libhxfr FRAME_RESPONSE unit lists and Annex B splitting. */
#include <errno.h>

#include <hxfr/proto.h>

#include "harness.h"

TEST(units_iterate)
{
    static const uint8_t body[] = {
        5, 0, 0, 0, 0x00, 0x00, 0x00, 0x01, 0x67, /* SPS */
        4, 0, 0, 0, 0x00, 0x00, 0x01, 0x68,       /* PPS */
        6, 0, 0, 0, 0x00, 0x00, 0x01, 0x65, 0xAA, 0xBB,
    };
    size_t pos = 0;
    const uint8_t *u;
    uint32_t n;
    CHECK_EQ(hxfr_units_next(body, sizeof(body), &pos, &u, &n), 1);
    CHECK(u == body + 4);
    CHECK_EQ(n, 5);
    CHECK_EQ(pos, 9);
    CHECK_EQ(hxfr_units_next(body, sizeof(body), &pos, &u, &n), 1);
    CHECK(u == body + 13);
    CHECK_EQ(n, 4);
    CHECK_EQ(hxfr_units_next(body, sizeof(body), &pos, &u, &n), 1);
    CHECK(u == body + 21);
    CHECK_EQ(n, 6);
    CHECK_EQ(pos, sizeof(body));
    CHECK_EQ(hxfr_units_next(body, sizeof(body), &pos, &u, &n), 0);
    CHECK_EQ(hxfr_units_validate(body, sizeof(body), 3), 0);
    CHECK_EQ(hxfr_units_validate(body, sizeof(body), 2), -HXFR_EUNITS);
    CHECK_EQ(hxfr_units_validate(body, sizeof(body), 4), -HXFR_EUNITS);
    CHECK_EQ(hxfr_units_validate(body, sizeof(body), UINT32_MAX), -HXFR_EUNITS);
    CHECK_EQ(hxfr_units_validate(body, 0, 0), 0);
    CHECK_EQ(hxfr_units_validate(NULL, 0, 0), 0);
    CHECK_EQ(hxfr_units_validate(NULL, 0, 1), -HXFR_EUNITS);
}

TEST(units_malformed_sizes)
{
    uint8_t body[16] = {0};
    size_t pos;
    const uint8_t *u;
    uint32_t n;
    /* Size prefix itself truncated (1..3 bytes left). */
    for (size_t len = 1; len < 4; len++) {
        pos = 0;
        CHECK_EQ(hxfr_units_next(body, len, &pos, &u, &n), -HXFR_EUNITS);
        CHECK_EQ(hxfr_units_validate(body, len, 0), -HXFR_EUNITS);
        CHECK_EQ(hxfr_units_validate(body, len, 1), -HXFR_EUNITS);
    }
    /* Size one past the end, exactly to the end, zero, huge. */
    hxfr_put_u32(body, 13);
    pos = 0;
    CHECK_EQ(hxfr_units_next(body, 16, &pos, &u, &n), -HXFR_EUNITS);
    CHECK_EQ(pos, 0);
    hxfr_put_u32(body, 12);
    pos = 0;
    CHECK_EQ(hxfr_units_next(body, 16, &pos, &u, &n), 1);
    CHECK_EQ(hxfr_units_validate(body, 16, 1), 0);
    hxfr_put_u32(body, 0);
    pos = 0;
    CHECK_EQ(hxfr_units_next(body, 16, &pos, &u, &n), -HXFR_EUNITS);
    hxfr_put_u32(body, 0xFFFFFFFF);
    pos = 0;
    CHECK_EQ(hxfr_units_next(body, 16, &pos, &u, &n), -HXFR_EUNITS);
    hxfr_put_u32(body, 0xFFFFFFF4);
    pos = 0;
    CHECK_EQ(hxfr_units_next(body, 16, &pos, &u, &n), -HXFR_EUNITS);
    CHECK_EQ(hxfr_units_validate(body, 16, 1), -HXFR_EUNITS);
    /* A position beyond the body. */
    pos = 17;
    CHECK_EQ(hxfr_units_next(body, 16, &pos, &u, &n), -HXFR_EUNITS);
    /* Trailing bytes after the last unit. */
    hxfr_put_u32(body, 4);
    CHECK_EQ(hxfr_units_validate(body, 10, 1), -HXFR_EUNITS);
}

struct split_log {
    size_t count;
    const uint8_t *nal[16];
    size_t size[16];
    int stop_at; /* return -ECANCELED on this call (1-based), 0 never */
};

static int log_unit(void *opaque, const uint8_t *nal, size_t size)
{
    struct split_log *l = opaque;
    if (l->count < 16) {
        l->nal[l->count] = nal;
        l->size[l->count] = size;
    }
    l->count++;
    if (l->stop_at && (int)l->count == l->stop_at) {
        return -ECANCELED;
    }
    return 0;
}

TEST(annexb_split_3_and_4_byte_start_codes)
{
    static const uint8_t au[] = {
        0x00, 0x00, 0x00, 0x01, 0x67, 0x42, 0x1E,                   /* 4-byte SPS */
        0x00, 0x00, 0x01, 0x68, 0xCE,                               /* 3-byte PPS */
        0x00, 0x00, 0x00, 0x01, 0x65, 0x88, 0x00, 0x00, 0x03, 0x01, /* IDR, emulation prev. */
        0x00, 0x00, 0x01, 0x06, 0x05,                               /* 3-byte SEI at the end */
    };
    struct split_log l = {0};
    CHECK_EQ(hxfr_annexb_split(au, sizeof(au), log_unit, &l), 4);
    CHECK_EQ(l.count, 4);
    CHECK(l.nal[0] == au);
    CHECK_EQ(l.size[0], 7);
    CHECK(l.nal[1] == au + 7);
    CHECK_EQ(l.size[1], 5);
    CHECK(l.nal[2] == au + 12);
    CHECK_EQ(l.size[2], 10);
    CHECK(l.nal[3] == au + 22);
    CHECK_EQ(l.size[3], 5);
    /* Units cover the input exactly from the first start code. */
    size_t total = 0;
    for (size_t i = 0; i < l.count; i++) {
        total += l.size[i];
    }
    CHECK_EQ(total, sizeof(au));
    CHECK_EQ(hxfr_annexb_split(au, sizeof(au), NULL, NULL), 4);
}

TEST(annexb_next_finds_each_start_code_once)
{
    static const uint8_t d[] = {0xAA, 0x00, 0x00, 0x00, 0x01, 0x67, 0x00, 0x00,
                                0x01, 0x68, 0x00, 0x00, 0x02, 0x00, 0x00, 0x01};
    size_t sc = 99;
    CHECK_EQ(hxfr_annexb_next(d, sizeof(d), 0, &sc), 1); /* 4-byte, leading zero included */
    CHECK_EQ(sc, 4);
    CHECK_EQ(hxfr_annexb_next(d, sizeof(d), 1 + sc, &sc), 6);
    CHECK_EQ(sc, 3);
    /* 00 00 02 is no start code; the last one has no NAL header after it. */
    CHECK_EQ(hxfr_annexb_next(d, sizeof(d), 6 + sc, &sc), 13);
    CHECK_EQ(sc, 3);
    CHECK_EQ(hxfr_annexb_next(d, sizeof(d), 13 + sc, &sc), sizeof(d));
    CHECK_EQ(sc, 0);
    /* A zero before from does not make a 4-byte start code. */
    CHECK_EQ(hxfr_annexb_next(d, sizeof(d), 2, &sc), 2);
    CHECK_EQ(sc, 3);
    /* Never past len, and nothing in an empty or absent buffer. */
    CHECK_EQ(hxfr_annexb_next(d, 8, 6, &sc), 8);
    CHECK_EQ(hxfr_annexb_next(NULL, 0, 0, &sc), 0);
    CHECK_EQ(hxfr_annexb_next(d, sizeof(d), sizeof(d) + 5, &sc), sizeof(d));
}

TEST(annexb_split_edges)
{
    struct split_log l = {0};
    /* Leading garbage forms no unit. */
    static const uint8_t lead[] = {0xAA, 0xBB, 0x00, 0x00, 0x01, 0x09, 0xF0};
    CHECK_EQ(hxfr_annexb_split(lead, sizeof(lead), log_unit, &l), 1);
    CHECK(l.nal[0] == lead + 2);
    CHECK_EQ(l.size[0], 5);
    /* No start code at all; empty input; a bare start code. */
    static const uint8_t none[] = {0x00, 0x00, 0x02, 0x01, 0x00};
    CHECK_EQ(hxfr_annexb_split(none, sizeof(none), log_unit, &l), 0);
    CHECK_EQ(hxfr_annexb_split(NULL, 0, log_unit, &l), 0);
    static const uint8_t bare[] = {0x00, 0x00, 0x01};
    memset(&l, 0, sizeof(l));
    CHECK_EQ(hxfr_annexb_split(bare, sizeof(bare), log_unit, &l), 1);
    CHECK_EQ(l.size[0], 3);
    static const uint8_t two[] = {0x00, 0x00, 0x01, 0x00, 0x00, 0x01};
    memset(&l, 0, sizeof(l));
    CHECK_EQ(hxfr_annexb_split(two, sizeof(two), log_unit, &l), 2);
    CHECK_EQ(l.size[0], 3);
    CHECK_EQ(l.size[1], 3);
    /* A 4-byte start code right at the start is one start code, not a
     * zero byte plus a 3-byte one. */
    static const uint8_t four[] = {0x00, 0x00, 0x00, 0x01, 0x41};
    memset(&l, 0, sizeof(l));
    CHECK_EQ(hxfr_annexb_split(four, sizeof(four), log_unit, &l), 1);
    CHECK(l.nal[0] == four);
    CHECK_EQ(l.size[0], 5);
    /* A callback error stops the split and is returned. */
    static const uint8_t three[] = {0, 0, 1, 0x09, 0, 0, 1, 0x09, 0, 0, 1, 0x09};
    memset(&l, 0, sizeof(l));
    l.stop_at = 2;
    CHECK_EQ(hxfr_annexb_split(three, sizeof(three), log_unit, &l), -ECANCELED);
    CHECK_EQ(l.count, 2);
}

TEST(annexb_split_then_units_roundtrip)
{
    /* What a server does: split an access unit into units, write the
     * unit list, and the client's iterator gets the same bytes back. */
    static const uint8_t au[] = {0,    0, 0, 1, 0x67, 1, 2,    0, 0, 1,
                                 0x68, 3, 0, 0, 0,    1, 0x65, 4, 5, 6};
    struct split_log l = {0};
    CHECK_EQ(hxfr_annexb_split(au, sizeof(au), log_unit, &l), 3);
    uint8_t list[64];
    size_t len = 0;
    for (size_t i = 0; i < l.count; i++) {
        hxfr_put_u32(list + len, (uint32_t)l.size[i]);
        memcpy(list + len + 4, l.nal[i], l.size[i]);
        len += 4 + l.size[i];
    }
    CHECK_EQ(hxfr_units_validate(list, len, 3), 0);
    uint8_t again[64];
    size_t alen = 0, pos = 0;
    const uint8_t *u;
    uint32_t n;
    while (hxfr_units_next(list, len, &pos, &u, &n) == 1) {
        memcpy(again + alen, u, n);
        alen += n;
    }
    CHECK_EQ(alen, sizeof(au));
    CHECK_MEM(again, au, sizeof(au));
}
