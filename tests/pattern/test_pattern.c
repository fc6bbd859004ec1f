/* Tests for the deterministic test pattern (lib/pattern). */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hxfr/proto.h>

#include "harness.h"
#include "pattern.h"

#ifdef HXFR_TEST_LIBYUV
#include <libyuv.h>
#endif

static const uint32_t all_formats[] = {
    HXFR_FORMAT_ARGB8888, HXFR_FORMAT_XRGB8888, HXFR_FORMAT_ABGR8888,
    HXFR_FORMAT_XBGR8888, HXFR_FORMAT_NV12,     HXFR_FORMAT_I420,
};
#define NFORMATS (sizeof(all_formats) / sizeof(all_formats[0]))

/* A frame buffer with its planes laid out one after another, each row
 * followed by `pad` bytes of canary (0xA5) that rendering must not touch. */
struct img {
    uint32_t format, w, h;
    uint8_t *buf;
    size_t size;
    uint8_t *planes[3];
    uint32_t strides[3];
    uint32_t rowbytes[3], rows[3];
};

static void img_alloc(struct img *m, uint32_t format, uint32_t w, uint32_t h, uint32_t pad)
{
    memset(m, 0, sizeof(*m));
    m->format = format;
    m->w = w;
    m->h = h;
    switch (format) {
    case HXFR_FORMAT_NV12:
        m->rowbytes[0] = w;
        m->rowbytes[1] = w;
        m->rows[0] = h;
        m->rows[1] = h / 2;
        break;
    case HXFR_FORMAT_I420:
        m->rowbytes[0] = w;
        m->rowbytes[1] = m->rowbytes[2] = w / 2;
        m->rows[0] = h;
        m->rows[1] = m->rows[2] = h / 2;
        break;
    default:
        m->rowbytes[0] = w * 4;
        m->rows[0] = h;
        break;
    }
    size_t off[3];
    m->size = 0;
    for (int i = 0; i < 3; i++) {
        m->strides[i] = m->rowbytes[i] ? m->rowbytes[i] + pad : 0;
        off[i] = m->size;
        m->size += (size_t)m->strides[i] * m->rows[i];
    }
    m->buf = malloc(m->size);
    CHECK(m->buf);
    memset(m->buf, 0xA5, m->size);
    for (int i = 0; i < 3; i++) {
        m->planes[i] = m->rowbytes[i] ? m->buf + off[i] : NULL;
    }
}

static void img_free(struct img *m)
{
    free(m->buf);
    m->buf = NULL;
}

static int img_render(struct img *m, enum hxfr_pattern_variant v, uint64_t index)
{
    return hxfr_pattern_render(v, m->format, m->w, m->h, index, m->planes, m->strides);
}

/* True if the visible bytes (not the row padding) of a and b are equal. */
static bool img_same(const struct img *a, const struct img *b)
{
    for (int p = 0; p < 3; p++) {
        for (uint32_t y = 0; y < a->rows[p]; y++) {
            if (memcmp(a->planes[p] + (size_t)y * a->strides[p],
                       b->planes[p] + (size_t)y * b->strides[p], a->rowbytes[p]) != 0) {
                return false;
            }
        }
    }
    return true;
}

static bool img_padding_intact(const struct img *m)
{
    for (int p = 0; p < 3; p++) {
        for (uint32_t y = 0; y < m->rows[p]; y++) {
            const uint8_t *r = m->planes[p] + (size_t)y * m->strides[p];
            for (uint32_t x = m->rowbytes[p]; x < m->strides[p]; x++) {
                if (r[x] != 0xA5) {
                    return false;
                }
            }
        }
    }
    return true;
}

/* RGB of pixel (x, y) of a packed-RGB image. */
static void img_rgb(const struct img *m, uint32_t x, uint32_t y, uint8_t rgb[3])
{
    const uint8_t *p = m->planes[0] + (size_t)y * m->strides[0] + 4 * (size_t)x;
    bool bgr = m->format == HXFR_FORMAT_ARGB8888 || m->format == HXFR_FORMAT_XRGB8888;
    rgb[0] = bgr ? p[2] : p[0];
    rgb[1] = p[1];
    rgb[2] = bgr ? p[0] : p[2];
}

TEST(variant_names)
{
    CHECK_EQ(hxfr_pattern_variant_from_name("desktop"), HXFR_PATTERN_DESKTOP);
    CHECK_EQ(hxfr_pattern_variant_from_name("STATIC"), HXFR_PATTERN_STATIC);
    CHECK_EQ(hxfr_pattern_variant_from_name("busy"), HXFR_PATTERN_BUSY);
    CHECK_EQ(hxfr_pattern_variant_from_name("bogus"), -1);
    CHECK_EQ(hxfr_pattern_variant_from_name(""), -1);
    CHECK_EQ(hxfr_pattern_variant_from_name(NULL), -1);
}

TEST(deterministic)
{
    for (int v = HXFR_PATTERN_DESKTOP; v <= HXFR_PATTERN_BUSY; v++) {
        struct img a, b;
        img_alloc(&a, HXFR_FORMAT_ARGB8888, 640, 360, 0);
        img_alloc(&b, HXFR_FORMAT_ARGB8888, 640, 360, 12);
        CHECK_EQ(img_render(&a, v, 1234), 0);
        CHECK_EQ(img_render(&b, v, 1234), 0);
        CHECK(img_same(&a, &b));
        img_free(&a);
        img_free(&b);
    }
}

TEST(desktop_frames_differ)
{
    struct img a, b;
    img_alloc(&a, HXFR_FORMAT_ARGB8888, 640, 360, 0);
    img_alloc(&b, HXFR_FORMAT_ARGB8888, 640, 360, 0);
    static const uint64_t idx[] = {0,  1,  2,  3,    29,           30,        31,
                                   59, 60, 61, 1000, 123456789ull, UINT64_MAX};
    for (size_t i = 0; i + 1 < sizeof(idx) / sizeof(idx[0]); i++) {
        CHECK_EQ(img_render(&a, HXFR_PATTERN_DESKTOP, idx[i]), 0);
        CHECK_EQ(img_render(&b, HXFR_PATTERN_DESKTOP, idx[i + 1]), 0);
        if (img_same(&a, &b)) {
            FAIL("frames %llu and %llu are identical", (unsigned long long)idx[i],
                 (unsigned long long)idx[i + 1]);
        }
    }
    img_free(&a);
    img_free(&b);
}

/* Counts differing pixels between two packed 32-bit images. */
static size_t count_diff(const struct img *a, const struct img *b)
{
    size_t n = 0;
    for (uint32_t y = 0; y < a->h; y++) {
        for (uint32_t x = 0; x < a->w; x++) {
            if (memcmp(a->planes[0] + (size_t)y * a->strides[0] + 4 * x,
                       b->planes[0] + (size_t)y * b->strides[0] + 4 * x, 4) != 0) {
                n++;
            }
        }
    }
    return n;
}

TEST(variants_change_as_documented)
{
    struct img a, b;
    img_alloc(&a, HXFR_FORMAT_XRGB8888, 1280, 720, 0);
    img_alloc(&b, HXFR_FORMAT_XRGB8888, 1280, 720, 0);
    size_t total = (size_t)1280 * 720;

    /* STATIC: frames within one caret phase are identical; the caret
     * blink changes only a handful of pixels. */
    CHECK_EQ(img_render(&a, HXFR_PATTERN_STATIC, 0), 0);
    CHECK_EQ(img_render(&b, HXFR_PATTERN_STATIC, 29), 0);
    CHECK_EQ(count_diff(&a, &b), 0);
    CHECK_EQ(img_render(&b, HXFR_PATTERN_STATIC, 30), 0);
    size_t caret = count_diff(&a, &b);
    CHECK(caret > 0 && caret < 100);

    /* DESKTOP: small changing regions; BUSY: a large moving one. */
    CHECK_EQ(img_render(&a, HXFR_PATTERN_DESKTOP, 100), 0);
    CHECK_EQ(img_render(&b, HXFR_PATTERN_DESKTOP, 101), 0);
    size_t desktop = count_diff(&a, &b);
    CHECK_EQ(img_render(&a, HXFR_PATTERN_BUSY, 100), 0);
    CHECK_EQ(img_render(&b, HXFR_PATTERN_BUSY, 101), 0);
    size_t busy = count_diff(&a, &b);
    printf("# changed pixels per frame at 720p: static %zu, desktop %zu (%.1f%%), "
           "busy %zu (%.1f%%)\n",
           caret, desktop, 100.0 * (double)desktop / (double)total, busy,
           100.0 * (double)busy / (double)total);
    CHECK(desktop > 1000 && desktop < total / 5);
    CHECK(busy > total / 4);
    img_free(&a);
    img_free(&b);
}

TEST(every_format_renders)
{
    for (size_t f = 0; f < NFORMATS; f++) {
        for (int v = HXFR_PATTERN_DESKTOP; v <= HXFR_PATTERN_BUSY; v++) {
            struct img a, b;
            img_alloc(&a, all_formats[f], 320, 240, 0);
            img_alloc(&b, all_formats[f], 320, 240, 36);
            CHECK_EQ(img_render(&a, v, 77), 0);
            CHECK_EQ(img_render(&b, v, 77), 0);
            CHECK(img_same(&a, &b));
            CHECK(img_padding_intact(&b));
            /* Something was drawn: the first plane is not uniform. */
            bool varied = false;
            for (size_t i = 1; i < a.rowbytes[0] * a.rows[0] && !varied; i++) {
                varied = a.planes[0][i] != a.planes[0][0];
            }
            CHECK(varied);
            img_free(&a);
            img_free(&b);
        }
    }
}

TEST(rgb_formats_agree)
{
    struct img m[4];
    for (int i = 0; i < 4; i++) {
        img_alloc(&m[i], all_formats[i], 320, 200, 4);
        CHECK_EQ(img_render(&m[i], HXFR_PATTERN_BUSY, 5), 0);
    }
    for (uint32_t y = 0; y < 200; y++) {
        for (uint32_t x = 0; x < 320; x++) {
            uint8_t ref[3], rgb[3];
            img_rgb(&m[0], x, y, ref);
            for (int i = 1; i < 4; i++) {
                img_rgb(&m[i], x, y, rgb);
                CHECK_MEM(ref, rgb, 3);
            }
            CHECK_EQ(m[0].planes[0][(size_t)y * m[0].strides[0] + 4 * x + 3], 0xff);
        }
    }
    for (int i = 0; i < 4; i++) {
        img_free(&m[i]);
    }
}

TEST(nv12_matches_i420)
{
    struct img n, i4;
    img_alloc(&n, HXFR_FORMAT_NV12, 640, 360, 6);
    img_alloc(&i4, HXFR_FORMAT_I420, 640, 360, 2);
    CHECK_EQ(img_render(&n, HXFR_PATTERN_DESKTOP, 9), 0);
    CHECK_EQ(img_render(&i4, HXFR_PATTERN_DESKTOP, 9), 0);
    for (uint32_t y = 0; y < 360; y++) {
        CHECK_MEM(n.planes[0] + (size_t)y * n.strides[0], i4.planes[0] + (size_t)y * i4.strides[0],
                  640);
    }
    for (uint32_t y = 0; y < 180; y++) {
        for (uint32_t x = 0; x < 320; x++) {
            CHECK_EQ(n.planes[1][(size_t)y * n.strides[1] + 2 * x],
                     i4.planes[1][(size_t)y * i4.strides[1] + x]);
            CHECK_EQ(n.planes[1][(size_t)y * n.strides[1] + 2 * x + 1],
                     i4.planes[2][(size_t)y * i4.strides[2] + x]);
        }
    }
    img_free(&n);
    img_free(&i4);
}

#ifdef HXFR_TEST_LIBYUV
TEST(yuv_matches_libyuv)
{
    for (int v = HXFR_PATTERN_DESKTOP; v <= HXFR_PATTERN_BUSY; v++) {
        struct img rgb, yuv, conv;
        img_alloc(&rgb, HXFR_FORMAT_ARGB8888, 1280, 720, 0);
        img_alloc(&yuv, HXFR_FORMAT_I420, 1280, 720, 0);
        img_alloc(&conv, HXFR_FORMAT_I420, 1280, 720, 0);
        CHECK_EQ(img_render(&rgb, v, 42), 0);
        CHECK_EQ(img_render(&yuv, v, 42), 0);
        CHECK_EQ(ARGBToI420(rgb.planes[0], (int)rgb.strides[0], conv.planes[0],
                            (int)conv.strides[0], conv.planes[1], (int)conv.strides[1],
                            conv.planes[2], (int)conv.strides[2], 1280, 720),
                 0);
        int maxd[3] = {0, 0, 0};
        for (int p = 0; p < 3; p++) {
            for (uint32_t y = 0; y < yuv.rows[p]; y++) {
                for (uint32_t x = 0; x < yuv.rowbytes[p]; x++) {
                    int d = abs((int)yuv.planes[p][(size_t)y * yuv.strides[p] + x] -
                                (int)conv.planes[p][(size_t)y * conv.strides[p] + x]);
                    maxd[p] = d > maxd[p] ? d : maxd[p];
                }
            }
        }
        printf("# variant %d: max |native - libyuv| Y %d U %d V %d\n", v, maxd[0], maxd[1],
               maxd[2]);
        CHECK(maxd[0] <= 1);
        CHECK(maxd[1] <= 2);
        CHECK(maxd[2] <= 2);
        img_free(&rgb);
        img_free(&yuv);
        img_free(&conv);
    }
}
#endif

TEST(probe_matches_pixels)
{
    static const uint32_t sizes[][2] = {
        {1920, 1080}, {1280, 720}, {640, 480}, {800, 600}, {96, 64}};
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        uint32_t w = sizes[s][0], h = sizes[s][1];
        for (int v = HXFR_PATTERN_DESKTOP; v <= HXFR_PATTERN_BUSY; v++) {
            struct img m;
            img_alloc(&m, HXFR_FORMAT_ABGR8888, w, h, 0);
            int hits = 0, colours = 0;
            uint8_t seen[16][3];
            for (uint64_t idx = 0; idx < 200; idx += 37) {
                CHECK_EQ(img_render(&m, v, idx * 1001), 0);
                for (uint32_t y = 0; y < h; y += 3) {
                    for (uint32_t x = 0; x < w; x += 3) {
                        uint8_t want[3], got[3];
                        if (!hxfr_pattern_probe(v, w, h, x, y, want)) {
                            continue;
                        }
                        img_rgb(&m, x, y, got);
                        if (memcmp(want, got, 3) != 0) {
                            FAIL("%ux%u variant %d frame %llu (%u,%u): probe %u,%u,%u "
                                 "pixel %u,%u,%u",
                                 w, h, v, (unsigned long long)idx * 1001, x, y, want[0], want[1],
                                 want[2], got[0], got[1], got[2]);
                        }
                        hits++;
                        bool known = false;
                        for (int c = 0; c < colours; c++) {
                            known = known || memcmp(seen[c], want, 3) == 0;
                        }
                        if (!known && colours < 16) {
                            memcpy(seen[colours++], want, 3);
                        }
                    }
                }
            }
            if (w >= 640) {
                /* The desktop and three title bars are all probeable. */
                CHECK(hits > 1000);
                CHECK_EQ(colours, 4);
            }
            img_free(&m);
        }
    }
    uint8_t rgb[3];
    CHECK_EQ(hxfr_pattern_probe(HXFR_PATTERN_DESKTOP, 1280, 720, 1280, 10, rgb), 0);
    CHECK_EQ(hxfr_pattern_probe(HXFR_PATTERN_DESKTOP, 1280, 720, 0, 0, rgb), 0);
    CHECK_EQ(hxfr_pattern_probe((enum hxfr_pattern_variant)7, 1280, 720, 10, 300, rgb), 0);
    /* The left desktop margin is background. */
    CHECK_EQ(hxfr_pattern_probe(HXFR_PATTERN_DESKTOP, 1280, 720, 15, 400, rgb), 1);
}

TEST(tiny_and_odd_sizes)
{
    for (uint32_t w = 1; w <= 18; w++) {
        for (uint32_t h = 1; h <= 18; h++) {
            for (size_t f = 0; f < NFORMATS; f++) {
                struct img m;
                bool yuv = all_formats[f] == HXFR_FORMAT_NV12 || all_formats[f] == HXFR_FORMAT_I420;
                uint32_t aw = yuv ? (w + 1) & ~1u : w, ah = yuv ? (h + 1) & ~1u : h;
                img_alloc(&m, all_formats[f], aw, ah, 3);
                CHECK_EQ(img_render(&m, HXFR_PATTERN_BUSY, w * h), 0);
                CHECK(img_padding_intact(&m));
                if (yuv && (w & 1u)) {
                    CHECK_EQ(hxfr_pattern_render(HXFR_PATTERN_BUSY, all_formats[f], w, ah, 0,
                                                 m.planes, m.strides),
                             -EINVAL);
                }
                img_free(&m);
            }
        }
    }
}

TEST(rejects_bad_arguments)
{
    struct img m;
    img_alloc(&m, HXFR_FORMAT_I420, 64, 64, 0);
    uint32_t s[3] = {m.strides[0], m.strides[1], m.strides[2]};
    CHECK_EQ(hxfr_pattern_render(HXFR_PATTERN_DESKTOP, HXFR_FORMAT_I420, 64, 63, 0, m.planes, s),
             -EINVAL);
    CHECK_EQ(hxfr_pattern_render(HXFR_PATTERN_DESKTOP, HXFR_FORMAT_I420, 0, 64, 0, m.planes, s),
             -EINVAL);
    CHECK_EQ(hxfr_pattern_render(HXFR_PATTERN_DESKTOP, 0x12345678, 64, 64, 0, m.planes, s),
             -EINVAL);
    CHECK_EQ(
        hxfr_pattern_render((enum hxfr_pattern_variant)3, HXFR_FORMAT_I420, 64, 64, 0, m.planes, s),
        -EINVAL);
    s[1] = 31;
    CHECK_EQ(hxfr_pattern_render(HXFR_PATTERN_DESKTOP, HXFR_FORMAT_I420, 64, 64, 0, m.planes, s),
             -EINVAL);
    s[1] = 32;
    uint8_t *p[3] = {m.planes[0], m.planes[1], NULL};
    CHECK_EQ(hxfr_pattern_render(HXFR_PATTERN_DESKTOP, HXFR_FORMAT_I420, 64, 64, 0, p, s), -EINVAL);
    uint32_t rs[3] = {255, 0, 0};
    CHECK_EQ(
        hxfr_pattern_render(HXFR_PATTERN_DESKTOP, HXFR_FORMAT_ARGB8888, 64, 1, 0, m.planes, rs),
        -EINVAL);
    CHECK_EQ(
        hxfr_pattern_render(HXFR_PATTERN_DESKTOP, HXFR_FORMAT_ARGB8888, 8193, 1, 0, m.planes, rs),
        -EINVAL);
    img_free(&m);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Reports render speed at 1080p (informational: timing never decides the
 * result on this shared machine). */
TEST(render_speed_report)
{
    for (size_t f = 0; f < NFORMATS; f += 4) {
        struct img m;
        img_alloc(&m, all_formats[f], 1920, 1080, 0);
        CHECK_EQ(img_render(&m, HXFR_PATTERN_DESKTOP, 0), 0);
        double t0 = now_ms();
        for (int i = 1; i <= 20; i++) {
            CHECK_EQ(img_render(&m, HXFR_PATTERN_DESKTOP, (uint64_t)i), 0);
        }
        printf("# 1080p %s render: %.2f ms/frame\n", f == 0 ? "BGRA" : "NV12",
               (now_ms() - t0) / 20);
        img_free(&m);
    }
}
