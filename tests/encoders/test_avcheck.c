/* Tests for the avcheck test helper (tests/common/avcheck.c) that do not
 * need an encoder; decoding real streams is covered by test_encoders.c. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <hxfr/proto.h>

#include "avcheck.h"
#include "pattern.h"
#include "harness.h"

TEST(nal_types_lists_units)
{
    /* AUD, SPS, PPS, IDR with 4- and 3-byte start codes; the IDR payload
     * holds 00 00 03 (emulation prevention), which is not a start code. */
    static const uint8_t au[] = {0, 0,    0,    1, 0x09, 0xf0, 0,    0,    0, 1, 0x67, 0x42, 0,   0,
                                 1, 0x68, 0xce, 0, 0,    1,    0x65, 0x88, 0, 0, 3,    1,    0x80};
    uint8_t t[8];
    CHECK_EQ(hxfr_avcheck_nal_types(au, sizeof(au), t, 8), 4);
    CHECK_EQ(t[0], 9);
    CHECK_EQ(t[1], 7);
    CHECK_EQ(t[2], 8);
    CHECK_EQ(t[3], 5);
    CHECK_EQ(hxfr_avcheck_nal_types(au, sizeof(au), t, 2), 4);
    CHECK_EQ(hxfr_avcheck_nal_types(au, sizeof(au), NULL, 0), 4);
    CHECK(hxfr_avcheck_au_idr_with_params(au, sizeof(au)));
    /* Without the SPS (first 10 bytes) the IDR lacks its parameters. */
    CHECK(!hxfr_avcheck_au_idr_with_params(au + 10, sizeof(au) - 10));
    CHECK_EQ(hxfr_avcheck_nal_types(au, 3, t, 8), 0);
    CHECK_EQ(hxfr_avcheck_nal_types(NULL, 0, t, 8), 0);
    /* A start code at the very end has no unit. */
    static const uint8_t tail[] = {0, 0, 1, 0x41, 0, 0, 1};
    CHECK_EQ(hxfr_avcheck_nal_types(tail, sizeof(tail), t, 8), 1);
    CHECK_EQ(t[0], 1);
}

TEST(decoder_rejects_garbage_without_crashing)
{
    struct hxfr_avcheck *c = hxfr_avcheck_new(2);
    CHECK(c);
    uint8_t junk[4096];
    uint32_t s = 12345;
    for (size_t i = 0; i < sizeof(junk); i++) {
        s = s * 1103515245u + 12345u;
        junk[i] = (uint8_t)(s >> 16);
    }
    /* Garbage either errors or yields nothing; it must not crash. */
    int r = hxfr_avcheck_decode_au(c, junk, sizeof(junk));
    CHECK(r <= 0);
    CHECK(hxfr_avcheck_feed(c, junk, sizeof(junk)) <= 0);
    CHECK(hxfr_avcheck_finish(c) <= 0);
    CHECK_EQ(hxfr_avcheck_frame_count(c), 0);
    CHECK(hxfr_avcheck_last(c) == NULL);
    CHECK(hxfr_avcheck_frame(c, 0) == NULL);
    CHECK_EQ(hxfr_avcheck_decode_au(c, NULL, 0), -EINVAL);
    hxfr_avcheck_destroy(c);
    hxfr_avcheck_destroy(NULL);
}

TEST(psnr_of_identical_and_different_pictures)
{
    /* A hand-made "decoded" frame from the pattern's own I420 rendering:
     * PSNR against the same I420 is 100 dB, against the RGB rendering
     * (converted by libyuv) very high, against another frame lower. */
    uint32_t w = 320, h = 180;
    uint8_t *buf = malloc((size_t)w * h * 3 / 2);
    CHECK(buf);
    struct hxfr_avcheck_frame f = {
        .width = w,
        .height = h,
        .planes = {buf, buf + w * h, buf + w * h + (w / 2) * (h / 2)},
        .strides = {w, w / 2, w / 2},
    };
    uint8_t *p[3] = {f.planes[0], f.planes[1], f.planes[2]};
    CHECK_EQ(hxfr_pattern_render(HXFR_PATTERN_DESKTOP, HXFR_FORMAT_I420, w, h, 3, p, f.strides), 0);
    double y = 0, all = 0;
    CHECK_EQ(hxfr_avcheck_psnr_pattern(&f, HXFR_PATTERN_DESKTOP, HXFR_FORMAT_I420, 3, &y, &all), 0);
    CHECK(y == 100.0 && all == 100.0);
    CHECK_EQ(hxfr_avcheck_psnr_pattern(&f, HXFR_PATTERN_DESKTOP, HXFR_FORMAT_ARGB8888, 3, &y, &all),
             0);
    CHECK(y == 100.0);
    CHECK(all > 50.0);
    CHECK_EQ(hxfr_avcheck_psnr_pattern(&f, HXFR_PATTERN_BUSY, HXFR_FORMAT_XBGR8888, 3, &y, &all),
             0);
    CHECK(y < 30.0);
    CHECK_EQ(hxfr_avcheck_psnr_pattern(&f, HXFR_PATTERN_DESKTOP, 0x1234, 3, &y, &all), -EINVAL);
    const uint8_t *cp[3] = {buf, NULL, NULL};
    uint32_t st[3] = {w * 4, 0, 0};
    CHECK_EQ(hxfr_avcheck_psnr(&f, HXFR_FORMAT_ARGB8888, w + 2, h, cp, st, &y, &all), -EINVAL);

    /* Probe colours survive the YUV round trip within a few levels. */
    uint8_t want[3], got[3];
    int probed = 0;
    for (uint32_t py = 0; py < h; py += 5) {
        for (uint32_t px = 0; px < w; px += 5) {
            if (!hxfr_pattern_probe(HXFR_PATTERN_DESKTOP, w, h, px, py, want)) {
                continue;
            }
            CHECK_EQ(hxfr_avcheck_pixel_rgb(&f, px, py, got), 0);
            for (int i = 0; i < 3; i++) {
                CHECK(abs((int)want[i] - (int)got[i]) <= 3);
            }
            probed++;
        }
    }
    CHECK(probed > 10);
    CHECK_EQ(hxfr_avcheck_pixel_rgb(&f, w, 0, got), -EINVAL);
    free(buf);
}
