/* libhxfr frame geometry: exact sizes and plane offsets of every format,
 * and every HOSTILE.md "Sizes and arithmetic" case with its error. */
#include <hxfr/proto.h>

#include "harness.h"

static const uint32_t packed[] = {HXFR_FORMAT_ARGB8888, HXFR_FORMAT_XRGB8888, HXFR_FORMAT_ABGR8888,
                                  HXFR_FORMAT_XBGR8888};
static const uint32_t all_formats[] = {HXFR_FORMAT_ARGB8888, HXFR_FORMAT_XRGB8888,
                                       HXFR_FORMAT_ABGR8888, HXFR_FORMAT_XBGR8888,
                                       HXFR_FORMAT_NV12,     HXFR_FORMAT_I420};

TEST(format_fourccs_are_drm_values)
{
    CHECK_EQ(HXFR_FORMAT_ARGB8888, HXFR_FOURCC('A', 'R', '2', '4'));
    CHECK_EQ(HXFR_FORMAT_XRGB8888, HXFR_FOURCC('X', 'R', '2', '4'));
    CHECK_EQ(HXFR_FORMAT_ABGR8888, HXFR_FOURCC('A', 'B', '2', '4'));
    CHECK_EQ(HXFR_FORMAT_XBGR8888, HXFR_FOURCC('X', 'B', '2', '4'));
    CHECK_EQ(HXFR_FORMAT_NV12, HXFR_FOURCC('N', 'V', '1', '2'));
    CHECK_EQ(HXFR_FORMAT_I420, HXFR_FOURCC('Y', 'U', '1', '2'));
    /* DESIGN.md spells these out. */
    CHECK_EQ(HXFR_FORMAT_ARGB8888, 0x34325241);
    CHECK_EQ(HXFR_FORMAT_ABGR8888, 0x34324241);
    CHECK_EQ(HXFR_FORMAT_NV12, 0x3231564E);
}

TEST(format_names)
{
    for (size_t i = 0; i < sizeof(all_formats) / sizeof(all_formats[0]); i++) {
        CHECK(hxfr_format_known(all_formats[i]));
        const char *name = hxfr_format_name(all_formats[i]);
        CHECK(name != NULL);
        CHECK_EQ(hxfr_format_from_name(name), all_formats[i]);
    }
    CHECK(strcmp(hxfr_format_name(HXFR_FORMAT_ARGB8888), "BGRA") == 0);
    CHECK(strcmp(hxfr_format_name(HXFR_FORMAT_XRGB8888), "BGRx") == 0);
    CHECK(strcmp(hxfr_format_name(HXFR_FORMAT_ABGR8888), "RGBA") == 0);
    CHECK(strcmp(hxfr_format_name(HXFR_FORMAT_XBGR8888), "RGBx") == 0);
    CHECK(strcmp(hxfr_format_name(HXFR_FORMAT_NV12), "NV12") == 0);
    CHECK(strcmp(hxfr_format_name(HXFR_FORMAT_I420), "I420") == 0);
    CHECK_EQ(hxfr_format_from_name("bgra"), HXFR_FORMAT_ARGB8888);
    CHECK_EQ(hxfr_format_from_name("BGRX"), HXFR_FORMAT_XRGB8888);
    CHECK_EQ(hxfr_format_from_name("ARGB8888"), HXFR_FORMAT_ARGB8888);
    CHECK_EQ(hxfr_format_from_name("xrgb8888"), HXFR_FORMAT_XRGB8888);
    CHECK_EQ(hxfr_format_from_name("ABGR8888"), HXFR_FORMAT_ABGR8888);
    CHECK_EQ(hxfr_format_from_name("XBGR8888"), HXFR_FORMAT_XBGR8888);
    CHECK_EQ(hxfr_format_from_name("yu12"), HXFR_FORMAT_I420);
    CHECK_EQ(hxfr_format_from_name("nv12"), HXFR_FORMAT_NV12);
    CHECK_EQ(hxfr_format_from_name("YUYV"), 0);
    CHECK_EQ(hxfr_format_from_name(""), 0);
    CHECK_EQ(hxfr_format_from_name("BGRA8888x"), 0);
    CHECK_EQ(hxfr_format_from_name(NULL), 0);
    CHECK(!hxfr_format_known(0));
    CHECK(!hxfr_format_known(HXFR_FOURCC('Y', 'U', 'Y', 'V')));
    CHECK(hxfr_format_name(0) == NULL);
}

TEST(min_stride)
{
    CHECK_EQ(hxfr_format_min_stride(HXFR_FORMAT_ARGB8888, 1920), 7680);
    CHECK_EQ(hxfr_format_min_stride(HXFR_FORMAT_XBGR8888, 1), 4);
    CHECK_EQ(hxfr_format_min_stride(HXFR_FORMAT_NV12, 1920), 1920);
    CHECK_EQ(hxfr_format_min_stride(HXFR_FORMAT_I420, 640), 640);
    CHECK_EQ(hxfr_format_min_stride(0x12345678, 640), 0);
    /* A row that does not fit 32 bits has no stride. */
    CHECK_EQ(hxfr_format_min_stride(HXFR_FORMAT_ARGB8888, 0x40000000), 0);
    CHECK_EQ(hxfr_format_min_stride(HXFR_FORMAT_ARGB8888, 0x3FFFFFFF), 0xFFFFFFFC);
}

TEST(packed_rgb_layout)
{
    for (size_t i = 0; i < sizeof(packed) / sizeof(packed[0]); i++) {
        struct hxfr_geometry g;
        CHECK_EQ(hxfr_geometry_compute(packed[i], 1920, 1080, 7680, 0, &g), 0);
        CHECK_EQ(g.format, packed[i]);
        CHECK_EQ(g.width, 1920);
        CHECK_EQ(g.height, 1080);
        CHECK_EQ(g.num_planes, 1);
        CHECK_EQ(g.bpp, 4);
        CHECK_EQ(g.stride[0], 7680);
        CHECK_EQ(g.plane_height[0], 1080);
        CHECK_EQ(g.offset[0], 0);
        CHECK_EQ(g.plane_size[0], 7680ull * 1080);
        CHECK_EQ(g.size, 8294400);
        /* Padded stride, odd sizes are fine for RGB. */
        CHECK_EQ(hxfr_geometry_compute(packed[i], 3, 5, 16, 0, &g), 0);
        CHECK_EQ(g.size, 80);
        CHECK_EQ(hxfr_geometry_compute(packed[i], 1, 1, 4, 0, &g), 0);
        CHECK_EQ(g.size, 4);
    }
}

TEST(nv12_layout)
{
    struct hxfr_geometry g;
    CHECK_EQ(hxfr_geometry_compute(HXFR_FORMAT_NV12, 1920, 1080, 2048, 0, &g), 0);
    CHECK_EQ(g.num_planes, 2);
    CHECK_EQ(g.bpp, 1);
    CHECK_EQ(g.stride[0], 2048);
    CHECK_EQ(g.stride[1], 2048);
    CHECK_EQ(g.plane_height[0], 1080);
    CHECK_EQ(g.plane_height[1], 540);
    CHECK_EQ(g.offset[0], 0);
    CHECK_EQ(g.plane_size[0], 2048 * 1080);
    CHECK_EQ(g.offset[1], 2048 * 1080);
    CHECK_EQ(g.plane_size[1], 2048 * 540);
    CHECK_EQ(g.size, 2048 * 1620);
    CHECK_EQ(hxfr_geometry_compute(HXFR_FORMAT_NV12, 2, 2, 2, 0, &g), 0);
    CHECK_EQ(g.size, 6);
    /* An odd stride is allowed for NV12: the UV rows share it. */
    CHECK_EQ(hxfr_geometry_compute(HXFR_FORMAT_NV12, 4, 4, 5, 0, &g), 0);
    CHECK_EQ(g.size, 30);
}

TEST(i420_layout)
{
    struct hxfr_geometry g;
    CHECK_EQ(hxfr_geometry_compute(HXFR_FORMAT_I420, 640, 480, 640, 0, &g), 0);
    CHECK_EQ(g.num_planes, 3);
    CHECK_EQ(g.bpp, 1);
    CHECK_EQ(g.stride[0], 640);
    CHECK_EQ(g.stride[1], 320);
    CHECK_EQ(g.stride[2], 320);
    CHECK_EQ(g.plane_height[0], 480);
    CHECK_EQ(g.plane_height[1], 240);
    CHECK_EQ(g.plane_height[2], 240);
    CHECK_EQ(g.offset[0], 0);
    CHECK_EQ(g.offset[1], 307200);
    CHECK_EQ(g.offset[2], 307200 + 76800);
    CHECK_EQ(g.plane_size[0], 307200);
    CHECK_EQ(g.plane_size[1], 76800);
    CHECK_EQ(g.plane_size[2], 76800);
    CHECK_EQ(g.size, 460800);
    CHECK_EQ(hxfr_geometry_compute(HXFR_FORMAT_I420, 2, 2, 4, 0, &g), 0);
    CHECK_EQ(g.size, 8 + 2 + 2);
    CHECK_EQ(g.offset[2], 10);
}

TEST(unknown_format)
{
    struct hxfr_geometry g;
    CHECK_EQ(hxfr_geometry_compute(0, 16, 16, 64, 0, &g), -HXFR_EFORMAT);
    CHECK_EQ(hxfr_geometry_compute(HXFR_FOURCC('Y', 'U', 'Y', 'V'), 16, 16, 64, 0, &g),
             -HXFR_EFORMAT);
    CHECK_EQ(hxfr_geometry_compute(0xFFFFFFFF, 0, 0, 0, 0, &g), -HXFR_EFORMAT);
}

TEST(zero_sizes)
{
    struct hxfr_geometry g;
    for (size_t i = 0; i < sizeof(all_formats) / sizeof(all_formats[0]); i++) {
        CHECK_EQ(hxfr_geometry_compute(all_formats[i], 0, 16, 64, 0, &g), -HXFR_EZERO);
        CHECK_EQ(hxfr_geometry_compute(all_formats[i], 16, 0, 64, 0, &g), -HXFR_EZERO);
        CHECK_EQ(hxfr_geometry_compute(all_formats[i], 16, 16, 0, 0, &g), -HXFR_EZERO);
        CHECK_EQ(hxfr_geometry_compute(all_formats[i], 0, 0, 0, 0, &g), -HXFR_EZERO);
    }
}

TEST(stride_smaller_than_row)
{
    struct hxfr_geometry g;
    CHECK_EQ(hxfr_geometry_compute(HXFR_FORMAT_ARGB8888, 1920, 1080, 7679, 0, &g), -HXFR_ESTRIDE);
    CHECK_EQ(hxfr_geometry_compute(HXFR_FORMAT_ARGB8888, 1920, 1080, 1920, 0, &g), -HXFR_ESTRIDE);
    CHECK_EQ(hxfr_geometry_compute(HXFR_FORMAT_XBGR8888, 1, 1, 3, 0, &g), -HXFR_ESTRIDE);
    CHECK_EQ(hxfr_geometry_compute(HXFR_FORMAT_NV12, 64, 64, 62, 0, &g), -HXFR_ESTRIDE);
    CHECK_EQ(hxfr_geometry_compute(HXFR_FORMAT_I420, 64, 64, 62, 0, &g), -HXFR_ESTRIDE);
    /* width x bpp that would wrap in 32 bits is caught by the limit first. */
    CHECK_EQ(hxfr_geometry_compute(HXFR_FORMAT_ARGB8888, 0x40000000, 1, 4, 0x40000000, &g),
             -HXFR_EDIMS);
}

TEST(odd_420_dimensions)
{
    struct hxfr_geometry g;
    CHECK_EQ(hxfr_geometry_compute(HXFR_FORMAT_NV12, 63, 64, 64, 0, &g), -HXFR_EODD);
    CHECK_EQ(hxfr_geometry_compute(HXFR_FORMAT_NV12, 64, 63, 64, 0, &g), -HXFR_EODD);
    CHECK_EQ(hxfr_geometry_compute(HXFR_FORMAT_I420, 63, 64, 64, 0, &g), -HXFR_EODD);
    CHECK_EQ(hxfr_geometry_compute(HXFR_FORMAT_I420, 64, 1, 64, 0, &g), -HXFR_EODD);
    CHECK_EQ(hxfr_geometry_compute(HXFR_FORMAT_I420, 64, 64, 65, 0, &g), -HXFR_EODD);
    CHECK_EQ(hxfr_geometry_compute(HXFR_FORMAT_I420, 1, 1, 1, 0, &g), -HXFR_EODD);
}

TEST(above_max_dim)
{
    struct hxfr_geometry g;
    CHECK_EQ(hxfr_geometry_compute(HXFR_FORMAT_ARGB8888, 4096, 2160, 16384, 4096, &g), 0);
    CHECK_EQ(hxfr_geometry_compute(HXFR_FORMAT_ARGB8888, 4097, 16, 16388, 4096, &g), -HXFR_EDIMS);
    CHECK_EQ(hxfr_geometry_compute(HXFR_FORMAT_ARGB8888, 16, 4097, 64, 4096, &g), -HXFR_EDIMS);
    /* 0 means the hard limit; above it is clamped to it. */
    CHECK_EQ(hxfr_geometry_compute(HXFR_FORMAT_NV12, 8192, 8192, 8192, 0, &g), 0);
    CHECK_EQ(g.size, 8192ull * 8192 * 3 / 2);
    CHECK_EQ(hxfr_geometry_compute(HXFR_FORMAT_NV12, 8194, 2, 8194, 0, &g), -HXFR_EDIMS);
    CHECK_EQ(hxfr_geometry_compute(HXFR_FORMAT_NV12, 8194, 2, 8194, 100000, &g), -HXFR_EDIMS);
    CHECK_EQ(hxfr_geometry_compute(HXFR_FORMAT_ARGB8888, 8192, 8192, 32768, UINT32_MAX, &g), 0);
    CHECK_EQ(g.size, HXFR_MAX_BODY_HARD);
    CHECK_EQ(hxfr_geometry_compute(HXFR_FORMAT_ARGB8888, 8193, 1, 32772, UINT32_MAX, &g),
             -HXFR_EDIMS);
    CHECK_EQ(hxfr_geometry_compute(HXFR_FORMAT_ARGB8888, 100, 100, 400, 99, &g), -HXFR_EDIMS);
}

TEST(overflow)
{
    struct hxfr_geometry g;
    /* Huge dimensions with a "large" limit: the hard limit stops them
     * before any product is formed. */
    CHECK_EQ(hxfr_geometry_compute(HXFR_FORMAT_ARGB8888, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF,
                                   0xFFFFFFFF, &g),
             -HXFR_EDIMS);
    CHECK_EQ(hxfr_geometry_compute(HXFR_FORMAT_ARGB8888, 0x10000, 0x10000, 0x40000, 0xFFFFFFFF, &g),
             -HXFR_EDIMS);
    /* stride x height beyond 32 bits. */
    CHECK_EQ(hxfr_geometry_compute(HXFR_FORMAT_ARGB8888, 16, 8192, 0x80000, 0, &g),
             -HXFR_EOVERFLOW);
    CHECK_EQ(hxfr_geometry_compute(HXFR_FORMAT_ARGB8888, 16, 2, 0xFFFFFFFF, 0, &g),
             -HXFR_EOVERFLOW);
    /* Exactly 2^32 - 1 fits. */
    CHECK_EQ(hxfr_geometry_compute(HXFR_FORMAT_ARGB8888, 16, 1, 0xFFFFFFFF, 0, &g), 0);
    CHECK_EQ(g.size, 0xFFFFFFFFull);
    /* Each plane fits, the total does not. */
    CHECK_EQ(hxfr_geometry_compute(HXFR_FORMAT_NV12, 16, 4096, 0xAAAAA, 0, &g), 0);
    CHECK_EQ(g.size, 0xAAAAAull * 6144);
    CHECK_EQ(hxfr_geometry_compute(HXFR_FORMAT_NV12, 16, 4096, 0xAAAAB, 0, &g), -HXFR_EOVERFLOW);
    CHECK_EQ(hxfr_geometry_compute(HXFR_FORMAT_NV12, 16, 4096, 0xFFFFF, 0, &g), -HXFR_EOVERFLOW);
    CHECK_EQ(hxfr_geometry_compute(HXFR_FORMAT_NV12, 16, 4096, 0x100000, 0, &g), -HXFR_EOVERFLOW);
    CHECK_EQ(hxfr_geometry_compute(HXFR_FORMAT_I420, 16, 8192, 349524, 0, &g), 0);
    CHECK_EQ(g.size, 349524ull * 12288);
    CHECK_EQ(hxfr_geometry_compute(HXFR_FORMAT_I420, 16, 8192, 349526, 0, &g), -HXFR_EOVERFLOW);
    CHECK_EQ(hxfr_geometry_compute(HXFR_FORMAT_I420, 16, 2, 0xFFFFFFFE, 0, &g), -HXFR_EOVERFLOW);
}

TEST(output_untouched_on_error)
{
    struct hxfr_geometry g;
    memset(&g, 0xA5, sizeof(g));
    CHECK_EQ(hxfr_geometry_compute(HXFR_FORMAT_ARGB8888, 16, 8192, 0x80000, 0, &g),
             -HXFR_EOVERFLOW);
    CHECK_EQ(g.format, 0xA5A5A5A5u);
}

TEST(every_format_every_small_size)
{
    /* Cross-check the layout against a direct formula on many sizes. */
    for (size_t f = 0; f < sizeof(all_formats) / sizeof(all_formats[0]); f++) {
        uint32_t fmt = all_formats[f];
        bool yuv = fmt == HXFR_FORMAT_NV12 || fmt == HXFR_FORMAT_I420;
        for (uint32_t w = 1; w <= 34; w++) {
            for (uint32_t h = 1; h <= 34; h++) {
                for (uint32_t pad = 0; pad <= 3; pad++) {
                    uint32_t stride = hxfr_format_min_stride(fmt, w) + pad;
                    struct hxfr_geometry g;
                    int r = hxfr_geometry_compute(fmt, w, h, stride, 0, &g);
                    if (yuv && ((w | h) & 1)) {
                        CHECK_EQ(r, -HXFR_EODD);
                        continue;
                    }
                    if (fmt == HXFR_FORMAT_I420 && (stride & 1)) {
                        CHECK_EQ(r, -HXFR_EODD);
                        continue;
                    }
                    CHECK_EQ(r, 0);
                    uint64_t want = (uint64_t)stride * h;
                    if (fmt == HXFR_FORMAT_NV12) {
                        want += (uint64_t)stride * (h / 2);
                    } else if (fmt == HXFR_FORMAT_I420) {
                        want += 2ull * (stride / 2) * (h / 2);
                    }
                    CHECK_EQ(g.size, want);
                    uint64_t end = 0;
                    for (uint32_t i = 0; i < g.num_planes; i++) {
                        CHECK_EQ(g.offset[i], end);
                        CHECK_EQ(g.plane_size[i], (uint64_t)g.stride[i] * g.plane_height[i]);
                        end += g.plane_size[i];
                    }
                    CHECK_EQ(end, g.size);
                }
            }
        }
    }
}
