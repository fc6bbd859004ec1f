/* Tests for the encoder registry, the libavcodec backend and the libyuv
 * conversions: encode the test pattern, decode it with avcheck, compare. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <libavcodec/avcodec.h>
#include <libavutil/log.h>

#include <hxfr/proto.h>

#include "annexb.h"
#include "avcheck.h"
#include "encoder.h"
#include "harness.h"
#include "pattern.h"

#define W        1280
#define H        720
#define FRAME_NS 16666667

static const char *hxfr_format_name_for_test(uint32_t f)
{
    switch (f) {
    case HXFR_FORMAT_ARGB8888:
        return "BGRA";
    case HXFR_FORMAT_XRGB8888:
        return "BGRx";
    case HXFR_FORMAT_ABGR8888:
        return "RGBA";
    case HXFR_FORMAT_XBGR8888:
        return "RGBx";
    case HXFR_FORMAT_NV12:
        return "NV12";
    case HXFR_FORMAT_I420:
        return "I420";
    default:
        return "?";
    }
}

__attribute__((constructor)) static void quiet_ffmpeg(void)
{
    av_log_set_level(AV_LOG_ERROR);
}

/* A pattern frame in its own buffer; pad adds bytes at each row's end. */
struct frame {
    uint8_t *buf;
    struct hxfr_image img;
};

static void frame_alloc(struct frame *f, uint32_t format, uint32_t w, uint32_t h, uint32_t pad)
{
    memset(f, 0, sizeof(*f));
    f->img.format = format;
    f->img.width = w;
    f->img.height = h;
    size_t size;
    if (format == HXFR_FORMAT_NV12) {
        f->img.strides[0] = f->img.strides[1] = w + pad;
        size = (size_t)(w + pad) * h * 3 / 2;
    } else if (format == HXFR_FORMAT_I420) {
        f->img.strides[0] = w + pad;
        f->img.strides[1] = f->img.strides[2] = w / 2 + pad + 1;
        size = (size_t)(w + pad) * h + 2 * (size_t)(w / 2 + pad + 1) * (h / 2);
    } else {
        f->img.strides[0] = 4 * w + pad;
        size = (size_t)(4 * w + pad) * h;
    }
    f->buf = malloc(size);
    CHECK(f->buf);
    memset(f->buf, 0x5a, size);
    f->img.planes[0] = f->buf;
    if (format == HXFR_FORMAT_NV12 || format == HXFR_FORMAT_I420) {
        f->img.planes[1] = f->buf + (size_t)f->img.strides[0] * h;
    }
    if (format == HXFR_FORMAT_I420) {
        f->img.planes[2] = f->img.planes[1] + (size_t)f->img.strides[1] * (h / 2);
    }
}

static void frame_render(struct frame *f, enum hxfr_pattern_variant v, uint64_t index)
{
    uint8_t *p[3] = {(uint8_t *)f->img.planes[0], (uint8_t *)f->img.planes[1],
                     (uint8_t *)f->img.planes[2]};
    CHECK_EQ(hxfr_pattern_render(v, f->img.format, f->img.width, f->img.height, index, p,
                                 f->img.strides),
             0);
}

static struct hxfr_encoder *open_x264(uint32_t w, uint32_t h, uint32_t gop)
{
    struct hxfr_encoder_config cfg = {
        .width = w,
        .height = h,
        .gop = gop,
        .preset = "ultrafast",
        .realtime = true,
    };
    struct hxfr_encoder *enc = hxfr__encoder_create(&cfg);
    if (!enc) {
        FAIL("libx264 open failed: %s", strerror(errno));
    }
    return enc;
}

/* Encodes `frames` pattern frames in `format` (rows padded by pad bytes),
 * decodes each access unit right away and checks count and PSNR. */
static void roundtrip(const char *codec, uint32_t format, uint32_t pad, int frames, double min_psnr)
{
    struct hxfr_encoder_config cfg = {
        .codec = codec, .width = W, .height = H, .preset = "ultrafast", .realtime = true};
    struct hxfr_encoder *enc = hxfr__encoder_create(&cfg);
    CHECK(enc);
    struct hxfr_avcheck *dec = hxfr_avcheck_new(1);
    CHECK(dec);
    struct frame f;
    frame_alloc(&f, format, W, H, pad);
    double worst = 100.0, worst_y = 100.0;
    size_t bytes = 0;
    for (int i = 0; i < frames; i++) {
        frame_render(&f, HXFR_PATTERN_DESKTOP, (uint64_t)i);
        struct hxfr_packet pkt;
        int64_t pts = (int64_t)i * FRAME_NS + 7;
        CHECK_EQ(hxfr__encoder_encode(enc, &f.img, pts, false, &pkt), 0);
        CHECK(pkt.data && pkt.size > 0);
        CHECK_EQ(pkt.pts, pts);
        CHECK_EQ(pkt.dts, pts);
        CHECK_EQ(pkt.keyframe, i == 0);
        if (pkt.keyframe) {
            CHECK(hxfr_avcheck_au_idr_with_params(pkt.data, pkt.size));
        }
        bytes += pkt.size;
        /* Exactly one access unit: it decodes to exactly one frame. */
        CHECK_EQ(hxfr_avcheck_decode_au(dec, pkt.data, pkt.size), 1);
        double y, all;
        CHECK_EQ(hxfr_avcheck_psnr_pattern(hxfr_avcheck_last(dec), HXFR_PATTERN_DESKTOP, format,
                                           (uint64_t)i, &y, &all),
                 0);
        if (getenv("HXFR_TEST_VERBOSE")) {
            printf("# frame %d: %zu bytes, PSNR %.2f dB (Y %.2f)\n", i, pkt.size, all, y);
        }
        worst = all < worst ? all : worst;
        worst_y = y < worst_y ? y : worst_y;
    }
    CHECK_EQ(hxfr_avcheck_finish(dec), 0);
    CHECK_EQ(hxfr_avcheck_frame_count(dec), frames);
    CHECK_EQ(hxfr_avcheck_idr_count(dec), 1);
    CHECK_EQ(hxfr_avcheck_idr_missing_params(dec), 0);
    printf("# %s %s pad %u: %d frames, worst PSNR %.2f dB (Y %.2f), %.0f kbit/s at 60 fps\n",
           enc->codec_name, hxfr_format_name_for_test(format), pad, frames, worst, worst_y,
           (double)bytes * 8 * 60 / frames / 1000);
    CHECK(worst >= min_psnr);
    free(f.buf);
    hxfr_avcheck_destroy(dec);
    hxfr__encoder_destroy(enc);
}

TEST_T(x264_bgra, 120)
{
    roundtrip(NULL, HXFR_FORMAT_ARGB8888, 0, 60, 35.0);
}

TEST_T(x264_bgrx, 120)
{
    roundtrip("libx264", HXFR_FORMAT_XRGB8888, 0, 60, 35.0);
}

TEST_T(x264_rgba, 120)
{
    roundtrip("libx264", HXFR_FORMAT_ABGR8888, 0, 60, 35.0);
}

TEST_T(x264_rgbx, 120)
{
    roundtrip("libx264", HXFR_FORMAT_XBGR8888, 0, 60, 35.0);
}

TEST_T(x264_nv12, 120)
{
    roundtrip("libx264", HXFR_FORMAT_NV12, 0, 60, 35.0);
}

TEST_T(x264_i420, 120)
{
    roundtrip("libx264", HXFR_FORMAT_I420, 0, 60, 35.0);
}

/* Strides larger than a row, and not multiples of 4 or 16. */
TEST_T(odd_strides, 120)
{
    roundtrip("libx264", HXFR_FORMAT_ARGB8888, 12, 6, 35.0);
    roundtrip("libx264", HXFR_FORMAT_XBGR8888, 36, 6, 35.0);
    roundtrip("libx264", HXFR_FORMAT_NV12, 6, 6, 35.0);
    roundtrip("libx264", HXFR_FORMAT_I420, 2, 6, 35.0);
}

static bool has_type_before_idr(const uint8_t *d, size_t n, uint8_t type)
{
    uint8_t t[64];
    int count = hxfr_avcheck_nal_types(d, n, t, 64);
    for (int i = 0; i < count && i < 64; i++) {
        if (t[i] == 5) {
            return false;
        }
        if (t[i] == type) {
            return true;
        }
    }
    return false;
}

static bool has_type(const uint8_t *d, size_t n, uint8_t type)
{
    uint8_t t[64];
    int count = hxfr_avcheck_nal_types(d, n, t, 64);
    for (int i = 0; i < count && i < 64; i++) {
        if (t[i] == type) {
            return true;
        }
    }
    return false;
}

TEST_T(forced_idr_and_gop, 120)
{
    /* gop 10: keyframes at 0, 10, 20 on their own; frame 5 and 13 forced. */
    struct hxfr_encoder *enc = open_x264(640, 360, 10);
    struct hxfr_avcheck *dec = hxfr_avcheck_new(1);
    CHECK(dec);
    struct frame f;
    frame_alloc(&f, HXFR_FORMAT_XRGB8888, 640, 360, 0);
    int keyframes = 0;
    for (int i = 0; i < 25; i++) {
        frame_render(&f, HXFR_PATTERN_BUSY, (uint64_t)i);
        bool force = i == 5 || i == 13;
        struct hxfr_packet pkt;
        CHECK_EQ(hxfr__encoder_encode(enc, &f.img, i, force, &pkt), 0);
        bool idr = has_type(pkt.data, pkt.size, 5);
        CHECK_EQ(pkt.keyframe, idr);
        if (force || i == 0) {
            if (!idr) {
                FAIL("frame %d: forced keyframe is not an IDR", i);
            }
        }
        if (idr) {
            keyframes++;
            CHECK(has_type_before_idr(pkt.data, pkt.size, 7));
            CHECK(has_type_before_idr(pkt.data, pkt.size, 8));
        } else {
            CHECK(!has_type(pkt.data, pkt.size, 7));
        }
        CHECK_EQ(hxfr_avcheck_decode_au(dec, pkt.data, pkt.size), 1);
        CHECK_EQ(hxfr_avcheck_last(dec)->keyframe, idr);
    }
    /* 0, 5, 13 forced or first; the gop adds more in between (x264 counts
     * the interval from the last keyframe). */
    CHECK(keyframes >= 4 && keyframes <= 6);
    CHECK_EQ(hxfr_avcheck_idr_missing_params(dec), 0);
    CHECK_EQ(hxfr_avcheck_idr_count(dec), keyframes);
    free(f.buf);
    hxfr_avcheck_destroy(dec);
    hxfr__encoder_destroy(enc);
}

TEST(unknown_codec_and_bad_settings)
{
    struct hxfr_encoder_config cfg = {.codec = "no_such_encoder", .width = 320, .height = 240};
    errno = 0;
    CHECK(hxfr__encoder_create(&cfg) == NULL);
    CHECK_EQ(errno, ENOENT);
    cfg.codec = "mpeg4"; /* exists, but is not H.264 */
    errno = 0;
    CHECK(hxfr__encoder_create(&cfg) == NULL);
    CHECK_EQ(errno, ENOENT);
    cfg.codec = "libx264";
    cfg.preset = "warpspeed";
    errno = 0;
    CHECK(hxfr__encoder_create(&cfg) == NULL);
    CHECK_EQ(errno, EINVAL);
    cfg.preset = NULL;
    cfg.width = HXFR_MAX_DIM_HARD + 1;
    errno = 0;
    CHECK(hxfr__encoder_create(&cfg) == NULL);
    CHECK_EQ(errno, EINVAL);
    cfg.width = 320;
    cfg.profile = 55;
    errno = 0;
    CHECK(hxfr__encoder_create(&cfg) == NULL);
    CHECK_EQ(errno, EINVAL);
    cfg.profile = 0;
    cfg.threads = -1;
    CHECK(hxfr__encoder_create(&cfg) == NULL);
    CHECK(hxfr__encoder_create(NULL) == NULL);
    hxfr__encoder_destroy(NULL);
}

TEST(geometry_mismatch_and_bad_images)
{
    struct hxfr_encoder *enc = open_x264(320, 240, 0);
    struct frame f;
    frame_alloc(&f, HXFR_FORMAT_ARGB8888, 320, 240, 0);
    frame_render(&f, HXFR_PATTERN_DESKTOP, 0);
    struct hxfr_packet pkt;
    struct hxfr_image img = f.img;
    img.width = 318;
    CHECK_EQ(hxfr__encoder_encode(enc, &img, 0, false, &pkt), -EINVAL);
    img = f.img;
    img.height = 242;
    CHECK_EQ(hxfr__encoder_encode(enc, &img, 0, false, &pkt), -EINVAL);
    img = f.img;
    img.strides[0] = 320 * 4 - 1;
    CHECK_EQ(hxfr__encoder_encode(enc, &img, 0, false, &pkt), -EINVAL);
    img = f.img;
    img.format = 0x20203859;
    CHECK_EQ(hxfr__encoder_encode(enc, &img, 0, false, &pkt), -EINVAL);
    img = f.img;
    img.format = HXFR_FORMAT_NV12; /* needs a second plane */
    img.strides[0] = 320;
    CHECK_EQ(hxfr__encoder_encode(enc, &img, 0, false, &pkt), -EINVAL);
    img = f.img;
    img.planes[0] = NULL;
    CHECK_EQ(hxfr__encoder_encode(enc, &img, 0, false, &pkt), -EINVAL);
    CHECK_EQ(hxfr__encoder_encode(enc, NULL, 0, false, &pkt), -EINVAL);
    CHECK_EQ(hxfr__encoder_encode(enc, &f.img, 0, false, NULL), -EINVAL);
    /* Refused frames leave the encoder working: the next one is the
     * stream's first frame, an IDR. */
    CHECK_EQ(hxfr__encoder_encode(enc, &f.img, 42, false, &pkt), 0);
    CHECK(pkt.keyframe);
    CHECK_EQ(pkt.pts, 42);
    free(f.buf);
    hxfr__encoder_destroy(enc);
}

TEST(config_defaults_and_effective_settings)
{
    struct hxfr_encoder_config cfg = {.width = 1920, .height = 1080};
    hxfr__encoder_config_defaults(&cfg);
    CHECK(strcmp(cfg.codec, "libx264") == 0);
    CHECK_EQ(cfg.bitrate, 1920u * 1080u * 4u);
    CHECK_EQ(cfg.framerate_num, 60);
    CHECK_EQ(cfg.framerate_den, 1);
    CHECK_EQ(cfg.gop, HXFR_DEFAULT_GOP);
    CHECK(strcmp(cfg.preset, HXFR_DEFAULT_PRESET) == 0);
    CHECK_EQ(cfg.threads, 0);
    struct hxfr_encoder_config small = {.width = 320, .height = 240, .bitrate = 0};
    hxfr__encoder_config_defaults(&small);
    CHECK_EQ(small.bitrate, HXFR_MIN_BITRATE);
    struct hxfr_encoder_config big = {.width = 8192, .height = 8192, .framerate_num = 30};
    hxfr__encoder_config_defaults(&big);
    CHECK_EQ(big.bitrate, 8192u * 8192u * 4u);
    CHECK_EQ(big.framerate_num, 30);
    CHECK_EQ(big.framerate_den, 1);

    char preset[16] = "superfast";
    struct hxfr_encoder_config c = {.width = 320, .height = 240, .preset = preset, .threads = 1};
    struct hxfr_encoder *enc = hxfr__encoder_create(&c);
    CHECK(enc);
    memset(preset, 0, sizeof(preset)); /* the encoder must not borrow it */
    CHECK(strcmp(enc->codec_name, "libx264") == 0);
    CHECK(strcmp(enc->config.codec, "libx264") == 0);
    CHECK(strcmp(enc->config.preset, "superfast") == 0);
    CHECK_EQ(enc->config.bitrate, HXFR_MIN_BITRATE);
    CHECK_EQ(enc->config.gop, HXFR_DEFAULT_GOP);
    CHECK(strcmp(enc->ops->name, "avcodec") == 0);
    hxfr__encoder_destroy(enc);
}

/* profile_idc is the byte after the SPS NAL header, level_idc two later. */
static int sps_byte(const uint8_t *d, size_t n, size_t off)
{
    for (size_t i = 0; i + 3 + off < n; i++) {
        if (d[i] == 0 && d[i + 1] == 0 && d[i + 2] == 1 && (d[i + 3] & 0x1f) == 7) {
            return d[i + 3 + off];
        }
    }
    return -1;
}

TEST(profiles)
{
    static const uint8_t profiles[] = {66, 77, 100};
    for (int i = 0; i < 3; i++) {
        struct hxfr_encoder_config cfg = {.width = 320,
                                          .height = 240,
                                          .profile = profiles[i],
                                          .level = 31,
                                          .threads = 1,
                                          .preset = "veryfast"};
        struct hxfr_encoder *enc = hxfr__encoder_create(&cfg);
        CHECK(enc);
        struct frame f;
        frame_alloc(&f, HXFR_FORMAT_I420, 320, 240, 0);
        frame_render(&f, HXFR_PATTERN_DESKTOP, 1);
        struct hxfr_packet pkt;
        CHECK_EQ(hxfr__encoder_encode(enc, &f.img, 0, false, &pkt), 0);
        /* x264 treats the profile as a ceiling: it signals the lowest
         * profile the chosen tools need (ultrafast fits baseline), so ask
         * for a preset that uses CABAC and 8x8 transforms. */
        int got = sps_byte(pkt.data, pkt.size, 1);
        printf("# profile %d requested, SPS says %d\n", profiles[i], got);
        CHECK_EQ(got, profiles[i]);
        CHECK_EQ(sps_byte(pkt.data, pkt.size, 3), 31);
        free(f.buf);
        hxfr__encoder_destroy(enc);
    }
}

struct listed {
    int count;
    bool x264, openh264;
};

static void on_codec(void *opaque, const char *codec, const char *backend)
{
    struct listed *l = opaque;
    l->count++;
    l->x264 = l->x264 || strcmp(codec, "libx264") == 0;
    l->openh264 = l->openh264 || strcmp(codec, "libopenh264") == 0;
    CHECK(strcmp(backend, "avcodec") == 0);
    printf("# available: %s (%s)\n", codec, backend);
}

TEST(encoder_list)
{
    struct listed l = {0};
    int n = hxfr__encoder_list(on_codec, &l);
    CHECK_EQ(n, l.count);
    CHECK(l.x264);
    CHECK_EQ(l.openh264, avcodec_find_encoder_by_name("libopenh264") != NULL);
    CHECK_EQ(hxfr__encoder_list(NULL, NULL), n);
}

TEST_T(openh264_roundtrip, 120)
{
    if (!avcodec_find_encoder_by_name("libopenh264")) {
        SKIP("libopenh264 is not in this FFmpeg build");
    }
    roundtrip("libopenh264", HXFR_FORMAT_ARGB8888, 0, 30, 30.0);
}

/* The profile_idc of the first SPS in an Annex B buffer, or -1. */
static int sps_profile(const uint8_t *d, size_t n)
{
    for (size_t i = 0; i + 4 < n; i++) {
        if (d[i] == 0 && d[i + 1] == 0 && d[i + 2] == 1 && (d[i + 3] & 0x1f) == 7) {
            return d[i + 4];
        }
    }
    return -1;
}

/* Encodes 3 pattern frames of w x h in `format` with codec and decodes
 * them: the decoded size must be want_w x want_h, the picture must match
 * the pattern where both have pixels, and the SPS must name profile_idc
 * want_profile (0: any). */
static void size_roundtrip(const char *codec, uint32_t format, uint32_t w, uint32_t h,
                           uint32_t want_w, uint32_t want_h, int want_profile)
{
    struct hxfr_encoder_config cfg = {
        .codec = codec, .width = w, .height = h, .preset = "ultrafast", .realtime = true};
    struct hxfr_encoder *enc = hxfr__encoder_create(&cfg);
    if (!enc) {
        FAIL("%s %ux%u: open failed: %s", codec, w, h, strerror(errno));
    }
    struct hxfr_avcheck *dec = hxfr_avcheck_new(1);
    CHECK(dec);
    struct frame f;
    frame_alloc(&f, format, w, h, 0);
    for (int i = 0; i < 3; i++) {
        frame_render(&f, HXFR_PATTERN_DESKTOP, (uint64_t)i);
        struct hxfr_packet pkt;
        CHECK_EQ(hxfr__encoder_encode(enc, &f.img, i, false, &pkt), 0);
        if (i == 0 && want_profile && sps_profile(pkt.data, pkt.size) != want_profile) {
            FAIL("%s %ux%u: SPS profile_idc %d, want %d", codec, w, h,
                 sps_profile(pkt.data, pkt.size), want_profile);
        }
        CHECK_EQ(hxfr_avcheck_decode_au(dec, pkt.data, pkt.size), 1);
        const struct hxfr_avcheck_frame *d = hxfr_avcheck_last(dec);
        if (d->width != want_w || d->height != want_h) {
            FAIL("%s %ux%u: decoded %ux%u, want %ux%u", codec, w, h, d->width, d->height, want_w,
                 want_h);
        }
        /* The picture is where it belongs: the IDR of every size with some
         * pixels, and every frame of the large ones (x264's P-frames of a
         * 16x16 picture measure about 26 dB in any layout). */
        double min = i == 0 && w * h >= 64 ? 33.0 : w * h >= 100000 ? 38.0 : 0.0;
        if (want_w == w && want_h == h && min > 0) {
            double all = 0;
            CHECK_EQ(
                hxfr_avcheck_psnr_pattern(d, HXFR_PATTERN_DESKTOP, format, (uint64_t)i, NULL, &all),
                0);
            if (all < min) {
                FAIL("%s %ux%u frame %d: PSNR %.2f dB, want %.0f", codec, w, h, i, all, min);
            }
        }
    }
    CHECK_EQ(hxfr_avcheck_idr_missing_params(dec), 0);
    free(f.buf);
    hxfr_avcheck_destroy(dec);
    hxfr__encoder_destroy(enc);
}

/* Every size from 1x1 up opens and decodes at exactly its size with
 * libx264: even sizes in 4:2:0 as before, odd ones in 4:4:4 (High 4:4:4
 * Predictive, profile_idc 244), cropped in the SPS. BGRx and RGBA (the two
 * conversion paths into 4:4:4; 641 crosses RGBA's 256-pixel pieces). */
TEST_T(odd_sizes_x264, 120)
{
    static const uint32_t sizes[][2] = {
        {1, 1},   {1, 2},  {2, 1},   {2, 2},     {3, 3},     {15, 17},   {16, 16},   {17, 16},
        {16, 17}, {33, 9}, {257, 3}, {640, 360}, {641, 360}, {640, 361}, {641, 361},
    };
    static const uint32_t formats[] = {HXFR_FORMAT_XRGB8888, HXFR_FORMAT_ABGR8888};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        for (size_t j = 0; j < 2; j++) {
            uint32_t w = sizes[i][0], h = sizes[i][1];
            bool odd = ((w | h) & 1u) != 0;
            size_roundtrip("libx264", formats[j], w, h, w, h, odd ? 244 : 0);
        }
    }
    /* The effective settings say which profile the stream has. */
    struct hxfr_encoder_config cfg = {
        .width = 641, .height = 361, .profile = 100, .preset = "ultrafast"};
    struct hxfr_encoder *enc = hxfr__encoder_create(&cfg);
    CHECK(enc);
    CHECK_EQ(enc->config.profile, HXFR__PROFILE_HIGH444);
    hxfr__encoder_destroy(enc);
}

/* An encoder without 4:4:4 input (libopenh264) gets an odd size padded to
 * even, the last column and row repeated: it decodes one larger. */
TEST_T(odd_sizes_padded_openh264, 120)
{
    if (!avcodec_find_encoder_by_name("libopenh264")) {
        SKIP("libopenh264 is not in this FFmpeg build");
    }
    size_roundtrip("libopenh264", HXFR_FORMAT_XRGB8888, 641, 361, 642, 362, 0);
    size_roundtrip("libopenh264", HXFR_FORMAT_XRGB8888, 640, 360, 640, 360, 0);
    size_roundtrip("libopenh264", HXFR_FORMAT_ABGR8888, 3, 5, 4, 6, 0);
}

/* hxfr__pad_plane repeats the last column and row. */
TEST(pad_plane)
{
    uint8_t p[4 * 3];
    memset(p, 0, sizeof(p));
    /* A 3x2 picture in a 4x3 plane (stride 4). */
    const uint8_t pic[2][3] = {{1, 2, 3}, {4, 5, 6}};
    for (int y = 0; y < 2; y++) {
        memcpy(p + y * 4, pic[y], 3);
    }
    hxfr__pad_plane(p, 4, 3, 2, 4, 3);
    const uint8_t want[12] = {1, 2, 3, 3, 4, 5, 6, 6, 4, 5, 6, 6};
    CHECK_MEM(p, want, sizeof(want));
}

/* hxfr__convert agrees with the pattern's own YUV rendering (which the
 * pattern tests tie to libyuv) for every source format and both targets. */
TEST(convert_all_formats)
{
    static const uint32_t formats[] = {HXFR_FORMAT_ARGB8888, HXFR_FORMAT_XRGB8888,
                                       HXFR_FORMAT_ABGR8888, HXFR_FORMAT_XBGR8888,
                                       HXFR_FORMAT_NV12,     HXFR_FORMAT_I420};
    const uint32_t w = 320, h = 180;
    struct frame ref;
    frame_alloc(&ref, HXFR_FORMAT_I420, w, h, 0);
    frame_render(&ref, HXFR_PATTERN_BUSY, 11);
    uint8_t *i420 = malloc(w * h * 3 / 2), *nv12 = malloc(w * h * 3 / 2);
    CHECK(i420 && nv12);
    for (size_t k = 0; k < sizeof(formats) / sizeof(formats[0]); k++) {
        struct frame src;
        frame_alloc(&src, formats[k], w, h, 8);
        frame_render(&src, HXFR_PATTERN_BUSY, 11);
        uint8_t *di[3] = {i420, i420 + w * h, i420 + w * h + w * h / 4};
        const int si[3] = {(int)w, (int)w / 2, (int)w / 2};
        uint8_t *dn[3] = {nv12, nv12 + w * h, NULL};
        const int sn[3] = {(int)w, (int)w, 0};
        CHECK_EQ(hxfr__convert(&src.img, HXFR_FORMAT_I420, di, si), 0);
        CHECK_EQ(hxfr__convert(&src.img, HXFR_FORMAT_NV12, dn, sn), 0);
        int maxd = 0;
        for (uint32_t y = 0; y < h; y++) {
            for (uint32_t x = 0; x < w; x++) {
                int d = abs((int)i420[y * w + x] - (int)ref.img.planes[0][y * w + x]);
                maxd = d > maxd ? d : maxd;
                CHECK_EQ(nv12[y * w + x], i420[y * w + x]);
            }
        }
        for (uint32_t y = 0; y < h / 2; y++) {
            for (uint32_t x = 0; x < w / 2; x++) {
                size_t c = (size_t)y * (w / 2) + x;
                size_t rc = (size_t)y * ref.img.strides[1] + x;
                int du = abs((int)di[1][c] - (int)ref.img.planes[1][rc]);
                int dv = abs((int)di[2][c] - (int)ref.img.planes[2][rc]);
                maxd = du > maxd ? du : maxd;
                maxd = dv > maxd ? dv : maxd;
                CHECK_EQ(dn[1][(size_t)y * w + 2 * x], di[1][c]);
                CHECK_EQ(dn[1][(size_t)y * w + 2 * x + 1], di[2][c]);
            }
        }
        if (maxd > 2) {
            FAIL("%s: converted differs from the pattern's YUV by %d",
                 hxfr_format_name_for_test(formats[k]), maxd);
        }
        free(src.buf);
    }
    /* Unknown target or source format. */
    struct hxfr_image bad = ref.img;
    uint8_t *di[3] = {i420, i420 + w * h, i420 + w * h + w * h / 4};
    const int si[3] = {(int)w, (int)w / 2, (int)w / 2};
    CHECK_EQ(hxfr__convert(&bad, HXFR_FORMAT_ARGB8888, di, si), -EINVAL);
    bad.format = 0;
    CHECK_EQ(hxfr__convert(&bad, HXFR_FORMAT_I420, di, si), -EINVAL);
    free(i420);
    free(nv12);
    free(ref.buf);
}

/* ---- Scattered sources (guest backing) -------------------------------- */

/* Scatters the packed bytes [0, len) of src into pieces cut at the given
 * offsets, each piece placed in its own spot of arena (in reverse order,
 * with a gap, so that neighbours in the image are not neighbours in
 * memory). */
static uint32_t scatter_pieces(const uint8_t *src, uint64_t len, const uint64_t *cuts,
                               uint32_t ncuts, uint8_t *arena, size_t arena_len,
                               struct hxfr_image_piece *pc)
{
    uint64_t start = 0;
    size_t at = arena_len;
    for (uint32_t i = 0; i <= ncuts; i++) {
        uint64_t end = i < ncuts ? cuts[i] : len;
        uint64_t n = end - start;
        at -= (size_t)n + 64;
        CHECK(at < arena_len);
        memcpy(arena + at, src + start, (size_t)n);
        pc[i] = (struct hxfr_image_piece){arena + at, start, n};
        start = end;
    }
    return ncuts + 1;
}

struct yuv {
    uint8_t *buf;
    uint8_t *p[3];
    int s[3];
    size_t size;
};

static void yuv_alloc(struct yuv *y, uint32_t fmt, uint32_t w, uint32_t h)
{
    uint32_t cw = (w + 1) / 2, ch = (h + 1) / 2;
    memset(y, 0, sizeof(*y));
    if (fmt == HXFR__FORMAT_I444) {
        y->size = (size_t)w * h * 3;
        y->s[0] = y->s[1] = y->s[2] = (int)w;
    } else {
        y->size = (size_t)w * h + 2 * (size_t)cw * ch;
        y->s[0] = (int)w;
        y->s[1] = fmt == HXFR_FORMAT_NV12 ? (int)(2 * cw) : (int)cw;
        y->s[2] = (int)cw;
    }
    y->buf = calloc(1, y->size);
    CHECK(y->buf);
    y->p[0] = y->buf;
    y->p[1] = y->buf + (size_t)w * h;
    if (fmt == HXFR__FORMAT_I444) {
        y->p[2] = y->p[1] + (size_t)w * h;
    } else if (fmt == HXFR_FORMAT_I420) {
        y->p[2] = y->p[1] + (size_t)cw * ch;
    }
}

/* A scattered image converts to exactly the bytes the same image converts
 * to from contiguous memory, for every destination, with boundaries at
 * page multiples (no bounce), at odd bytes (a few bounced pixels) and
 * inside rows; runs of rows in one piece are one libyuv call. */
TEST(convert_scattered_matches_contiguous)
{
    static const uint32_t dsts[] = {HXFR_FORMAT_I420, HXFR_FORMAT_NV12, HXFR__FORMAT_I444};
    static const uint32_t sizes[][2] = {{640, 360}, {333, 101}};
    for (size_t z = 0; z < 2; z++) {
        uint32_t w = sizes[z][0], h = sizes[z][1];
        struct frame f;
        frame_alloc(&f, HXFR_FORMAT_XRGB8888, w, h, 16);
        frame_render(&f, HXFR_PATTERN_DESKTOP, 3);
        uint64_t len = (uint64_t)f.img.strides[0] * h;
        /* Pieces of 16 pages (a framebuffer comes in a few dozen), then
         * cuts at odd places. */
        uint64_t cuts[512];
        uint32_t nc = 0;
        for (uint64_t o = 65536; o < len && nc < 400; o += 65536) {
            cuts[nc++] = o;
        }
        uint64_t odd[] = {3, 4 * 37 + 2, 4097, (uint64_t)f.img.strides[0] * 7 + 5,
                          (uint64_t)f.img.strides[0] * 20 - 1};
        for (int variant = 0; variant < 2; variant++) {
            uint32_t n = variant == 0 ? nc : 5;
            const uint64_t *cu = variant == 0 ? cuts : odd;
            size_t arena_len = (size_t)len + 64 * (n + 1) + 64;
            uint8_t *arena = malloc(arena_len);
            struct hxfr_image_piece *pc = calloc(n + 1, sizeof(*pc));
            CHECK(arena && pc);
            scatter_pieces(f.buf, len, cu, n, arena, arena_len, pc);
            struct hxfr_image sc = f.img;
            sc.planes[0] = NULL;
            sc.pieces = pc;
            sc.n_pieces = n + 1;
            sc.base = 0;
            uint8_t bounce[2 * 333 * 4 > 2 * 640 * 4 ? 2 * 333 * 4 : 2 * 640 * 4];
            for (size_t d = 0; d < 3; d++) {
                if (dsts[d] != HXFR__FORMAT_I444 && (w & 1)) {
                    continue; /* odd sizes are coded 4:4:4 */
                }
                struct yuv a, b;
                yuv_alloc(&a, dsts[d], w, h);
                yuv_alloc(&b, dsts[d], w, h);
                CHECK_EQ(hxfr__convert_image(&f.img, NULL, dsts[d], a.p, a.s, NULL, 0, NULL), 0);
                struct hxfr__convert_stats st = {0};
                CHECK_EQ(
                    hxfr__convert_image(&sc, NULL, dsts[d], b.p, b.s, bounce, sizeof(bounce), &st),
                    0);
                CHECK_MEM(a.buf, b.buf, a.size);
                CHECK_EQ(st.pixels, (uint64_t)w * h);
                if (variant == 0 && f.img.strides[0] % 8 == 0) {
                    CHECK_EQ(st.bounced_bytes, 0);
                }
                if (variant == 1) {
                    /* Only pixels cut by the odd boundaries were bounced:
                     * at most a pixel pair of two rows per cut. */
                    CHECK(st.bounced_bytes > 0);
                    CHECK(st.bounced_bytes <= 5 * 2 * 2 * 4);
                }
                /* Far fewer calls than rows: runs are converted whole. */
                CHECK(st.direct_calls < h);
                printf("# %ux%u %s, %u pieces: %llu calls, %llu bytes bounced\n", w, h,
                       dsts[d] == HXFR_FORMAT_I420   ? "I420"
                       : dsts[d] == HXFR_FORMAT_NV12 ? "NV12"
                                                     : "I444",
                       n + 1, (unsigned long long)st.direct_calls,
                       (unsigned long long)st.bounced_bytes);
                free(a.buf);
                free(b.buf);
            }
            free(arena);
            free(pc);
        }
        free(f.buf);
    }
}

/* Two pieces more than 2 GiB apart in memory: a row pair across them cannot
 * be addressed with one int stride and goes through the bounce buffer
 * (those two rows only); the result is still exact. */
TEST(convert_scattered_far_pieces)
{
    const uint32_t w = 256, h = 64;
    struct frame f;
    frame_alloc(&f, HXFR_FORMAT_XRGB8888, w, h, 0);
    frame_render(&f, HXFR_PATTERN_BUSY, 9);
    size_t span = (size_t)3 << 30, half = (size_t)w * 4 * 32;
    uint8_t *res = mmap(NULL, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (res == MAP_FAILED) {
        SKIP("cannot reserve 3 GiB of address space: %s", strerror(errno));
    }
    uint8_t *lo = res, *hi = res + span - 2 * half;
    CHECK_EQ(mprotect(lo, half, PROT_READ | PROT_WRITE), 0);
    CHECK_EQ(mprotect(hi, 2 * half, PROT_READ | PROT_WRITE), 0);
    /* Rows 0..30 and the first half of row 31 low, the rest high. */
    uint64_t cut = (uint64_t)w * 4 * 31 + w * 2;
    memcpy(lo, f.buf, (size_t)cut);
    memcpy(hi, f.buf + cut, (size_t)w * 4 * h - (size_t)cut);
    struct hxfr_image_piece pc[2] = {{lo, 0, cut}, {hi, cut, (uint64_t)w * 4 * h - cut}};
    struct hxfr_image sc = f.img;
    sc.planes[0] = NULL;
    sc.pieces = pc;
    sc.n_pieces = 2;
    uint8_t bounce[2 * 256 * 4];
    struct yuv a, b;
    yuv_alloc(&a, HXFR_FORMAT_I420, w, h);
    yuv_alloc(&b, HXFR_FORMAT_I420, w, h);
    CHECK_EQ(hxfr__convert_image(&f.img, NULL, HXFR_FORMAT_I420, a.p, a.s, NULL, 0, NULL), 0);
    struct hxfr__convert_stats st = {0};
    CHECK_EQ(
        hxfr__convert_image(&sc, NULL, HXFR_FORMAT_I420, b.p, b.s, bounce, sizeof(bounce), &st), 0);
    CHECK_MEM(a.buf, b.buf, a.size);
    /* Row pair 30/31: row 31's first half is low, row 30 too, so that
     * segment is direct; its second half pairs a low row 30 with a high row
     * 31: bounced, half a row each. */
    CHECK_EQ(st.bounced_bytes, (uint64_t)2 * w * 2);
    /* No bounce buffer given: refused, nothing read out of bounds. */
    CHECK_EQ(hxfr__convert_image(&sc, NULL, HXFR_FORMAT_I420, b.p, b.s, NULL, 0, NULL), -EINVAL);
    munmap(res, span);
    free(a.buf);
    free(b.buf);
    free(f.buf);
}

/* Pieces that leave a gap or end early are refused, never read past. */
TEST(convert_scattered_bad_pieces)
{
    const uint32_t w = 64, h = 16;
    struct frame f;
    frame_alloc(&f, HXFR_FORMAT_XRGB8888, w, h, 0);
    uint64_t len = (uint64_t)w * 4 * h;
    struct hxfr_image sc = f.img;
    sc.planes[0] = NULL;
    struct hxfr_image_piece gap[2] = {{f.buf, 0, 1000}, {f.buf + 1100, 1100, len - 1100}};
    struct hxfr_image_piece shortp[1] = {{f.buf, 0, len - 4}};
    uint8_t bounce[2 * 64 * 4];
    struct yuv a;
    yuv_alloc(&a, HXFR_FORMAT_I420, w, h);
    sc.pieces = gap;
    sc.n_pieces = 2;
    CHECK_EQ(
        hxfr__convert_image(&sc, NULL, HXFR_FORMAT_I420, a.p, a.s, bounce, sizeof(bounce), NULL),
        -EINVAL);
    sc.pieces = shortp;
    sc.n_pieces = 1;
    CHECK_EQ(
        hxfr__convert_image(&sc, NULL, HXFR_FORMAT_I420, a.p, a.s, bounce, sizeof(bounce), NULL),
        -EINVAL);
    /* NV12 cannot be scattered; a rectangle outside is refused. */
    sc.pieces = shortp;
    sc.format = HXFR_FORMAT_NV12;
    CHECK_EQ(
        hxfr__convert_image(&sc, NULL, HXFR_FORMAT_I420, a.p, a.s, bounce, sizeof(bounce), NULL),
        -EINVAL);
    struct hxfr_image_rect out = {60, 0, 8, 1};
    CHECK_EQ(hxfr__convert_image(&f.img, &out, HXFR_FORMAT_I420, a.p, a.s, NULL, 0, NULL), -EINVAL);
    free(a.buf);
    free(f.buf);
}

/* Damage: converting only the changed rectangles into the previous
 * picture gives the same picture as converting everything; the encoder
 * reports what it converted, and a fresh encoder converts all of a damaged
 * image. */
TEST_T(encode_damage_converts_only_damage, 120)
{
    const uint32_t w = 320, h = 240;
    struct frame a, b;
    frame_alloc(&a, HXFR_FORMAT_XRGB8888, w, h, 0);
    frame_alloc(&b, HXFR_FORMAT_XRGB8888, w, h, 0);
    frame_render(&a, HXFR_PATTERN_DESKTOP, 1);
    memcpy(b.buf, a.buf, (size_t)w * 4 * h);
    /* b = a with two rectangles changed (one at odd coordinates). */
    struct hxfr_image_rect rects[2] = {{10, 20, 30, 40}, {101, 151, 17, 9}};
    for (int i = 0; i < 2; i++) {
        for (uint32_t y = rects[i].y; y < rects[i].y + rects[i].height; y++) {
            memset(b.buf + (size_t)y * w * 4 + rects[i].x * 4, 0x20 + 0x40 * i,
                   (size_t)rects[i].width * 4);
        }
    }
    struct yuv full, part;
    yuv_alloc(&full, HXFR_FORMAT_I420, w, h);
    yuv_alloc(&part, HXFR_FORMAT_I420, w, h);
    CHECK_EQ(hxfr__convert_image(&b.img, NULL, HXFR_FORMAT_I420, full.p, full.s, NULL, 0, NULL), 0);
    CHECK_EQ(hxfr__convert_image(&a.img, NULL, HXFR_FORMAT_I420, part.p, part.s, NULL, 0, NULL), 0);
    for (int i = 0; i < 2; i++) {
        CHECK_EQ(
            hxfr__convert_image(&b.img, &rects[i], HXFR_FORMAT_I420, part.p, part.s, NULL, 0, NULL),
            0);
    }
    CHECK_MEM(full.buf, part.buf, full.size);

    struct hxfr_encoder *enc = open_x264(w, h, 60);
    struct hxfr_avcheck *dec = hxfr_avcheck_new(1);
    CHECK(dec);
    struct hxfr_image img = b.img;
    img.has_damage = true;
    img.n_damage = 2;
    img.damage[0] = rects[0];
    img.damage[1] = rects[1];
    struct hxfr_packet pkt;
    /* Fresh encoder: damage or not, the whole picture. */
    CHECK_EQ(hxfr__encoder_encode(enc, &a.img, 0, false, &pkt), 0);
    CHECK_EQ(pkt.converted_pixels, (uint64_t)w * h);
    CHECK_EQ(hxfr_avcheck_decode_au(dec, pkt.data, pkt.size), 1);
    CHECK_EQ(hxfr__encoder_encode(enc, &img, 1, false, &pkt), 0);
    /* Widened to even: 30x40 at (10,20) stays, 17x9 at (101,151) becomes
     * 18x10 at (100,150). */
    CHECK_EQ(pkt.converted_pixels, (uint64_t)30 * 40 + 18 * 10);
    CHECK_EQ(hxfr_avcheck_decode_au(dec, pkt.data, pkt.size), 1);
    /* Nothing damaged: nothing converted, still one access unit. */
    img.n_damage = 0;
    CHECK_EQ(hxfr__encoder_encode(enc, &img, 2, false, &pkt), 0);
    CHECK_EQ(pkt.converted_pixels, 0);
    CHECK_EQ(hxfr_avcheck_decode_au(dec, pkt.data, pkt.size), 1);
    CHECK_EQ(hxfr_avcheck_finish(dec), 0);
    CHECK_EQ(hxfr_avcheck_frame_count(dec), 3);
    hxfr_avcheck_destroy(dec);
    hxfr__encoder_destroy(enc);
    free(full.buf);
    free(part.buf);
    free(a.buf);
    free(b.buf);
}

/* The stream path of avcheck: all access units concatenated and fed in
 * odd-sized pieces decode to the same number of frames, with the same
 * IDR bookkeeping; a small ring keeps only the newest frames. */
TEST_T(avcheck_stream_feed_and_ring, 120)
{
    struct hxfr_encoder *enc = open_x264(320, 240, 8);
    struct frame f;
    frame_alloc(&f, HXFR_FORMAT_ARGB8888, 320, 240, 0);
    size_t cap = 1 << 20, len = 0;
    uint8_t *stream = malloc(cap);
    CHECK(stream);
    for (int i = 0; i < 20; i++) {
        frame_render(&f, HXFR_PATTERN_DESKTOP, (uint64_t)i);
        struct hxfr_packet pkt;
        CHECK_EQ(hxfr__encoder_encode(enc, &f.img, i, false, &pkt), 0);
        CHECK(len + pkt.size <= cap);
        memcpy(stream + len, pkt.data, pkt.size);
        len += pkt.size;
    }
    struct hxfr_avcheck *dec = hxfr_avcheck_new(3);
    CHECK(dec);
    size_t pos = 0, step = 1;
    int got = 0;
    while (pos < len) {
        size_t n = step < len - pos ? step : len - pos;
        int r = hxfr_avcheck_feed(dec, stream + pos, n);
        CHECK(r >= 0);
        got += r;
        pos += n;
        step = step * 3 + 7 > 5000 ? 1 : step * 3 + 7;
    }
    int r = hxfr_avcheck_finish(dec);
    CHECK(r >= 0);
    got += r;
    CHECK_EQ(got, 20);
    CHECK_EQ(hxfr_avcheck_frame_count(dec), 20);
    CHECK_EQ(hxfr_avcheck_idr_count(dec), 3); /* frames 0, 8, 16 */
    CHECK_EQ(hxfr_avcheck_idr_missing_params(dec), 0);
    CHECK(hxfr_avcheck_frame(dec, 16) == NULL);
    for (uint64_t i = 17; i < 20; i++) {
        const struct hxfr_avcheck_frame *d = hxfr_avcheck_frame(dec, i);
        CHECK(d);
        CHECK_EQ(d->number, i);
        double y, all;
        CHECK_EQ(
            hxfr_avcheck_psnr_pattern(d, HXFR_PATTERN_DESKTOP, HXFR_FORMAT_ARGB8888, i, &y, &all),
            0);
        CHECK(all >= 35.0);
    }
    CHECK(hxfr_avcheck_frame(dec, 20) == NULL);
    CHECK(hxfr_avcheck_last(dec) == hxfr_avcheck_frame(dec, 19));
    CHECK_EQ(hxfr_avcheck_feed(dec, stream, len), -EINVAL); /* finished */
    hxfr_avcheck_destroy(dec);
    free(stream);
    free(f.buf);
    hxfr__encoder_destroy(enc);
}

/* The configured bitrate is a ceiling (VBV): a busy screen at a low cap
 * stays within cap x duration + one buffer. */
TEST_T(bitrate_cap, 120)
{
    const uint32_t cap = 400000;
    struct hxfr_encoder_config cfg = {.width = 640,
                                      .height = 360,
                                      .bitrate = cap,
                                      .preset = "ultrafast",
                                      .realtime = true,
                                      .threads = 1};
    struct hxfr_encoder *enc = hxfr__encoder_create(&cfg);
    CHECK(enc);
    CHECK_EQ(enc->config.bitrate, cap);
    struct frame f;
    frame_alloc(&f, HXFR_FORMAT_XRGB8888, 640, 360, 0);
    uint64_t bits = 0;
    const int frames = 120;
    for (int i = 0; i < frames; i++) {
        frame_render(&f, HXFR_PATTERN_BUSY, (uint64_t)i);
        struct hxfr_packet pkt;
        CHECK_EQ(hxfr__encoder_encode(enc, &f.img, i, false, &pkt), 0);
        bits += pkt.size * 8;
    }
    double limit = (double)cap * frames / 60 + cap;
    printf("# busy 640x360 at a %u bit/s cap: %.0f bit/s over %d frames (limit %.0f bits)\n", cap,
           (double)bits * 60 / frames, frames, limit);
    CHECK((double)bits <= limit * 1.1);
    free(f.buf);
    hxfr__encoder_destroy(enc);
}

TEST(annexb_scan)
{
    /* AUD, SPS, PPS, SEI, IDR: the parameter run is SPS+PPS (4-byte start
     * code of the SPS included, the SEI excluded). */
    static const uint8_t au[] = {0,    0,    0,    1, 0x09, 0xf0, 0,    0,    0,   1,
                                 0x67, 0x64, 0x1f, 0, 0,    1,    0x68, 0xeb, 0,   0,
                                 1,    0x06, 0x05, 0, 0,    1,    0x65, 0x88, 0x84};
    struct hxfr__annexb_info i;
    hxfr__annexb_scan(au, sizeof(au), &i);
    CHECK(i.has_idr && i.params_before_idr && i.sps && i.pps);
    CHECK_EQ(i.ps_start, 6);
    CHECK_EQ(i.ps_end, 18);
    /* IDR without parameter sets. */
    hxfr__annexb_scan(au + 18, sizeof(au) - 18, &i);
    CHECK(i.has_idr && !i.params_before_idr && !i.sps);
    CHECK_EQ(i.ps_end, i.ps_start);
    /* Only a PPS before the IDR. */
    hxfr__annexb_scan(au + 13, sizeof(au) - 13, &i);
    CHECK(i.has_idr && !i.params_before_idr && i.pps && !i.sps);
    /* Parameter sets only (extradata): the run ends at the buffer's end. */
    hxfr__annexb_scan(au + 6, 12, &i);
    CHECK(!i.has_idr && i.sps && i.pps);
    CHECK_EQ(i.ps_start, 0);
    CHECK_EQ(i.ps_end, 12);
    /* A P-slice only; empty and truncated buffers. */
    static const uint8_t p[] = {0, 0, 1, 0x41, 0x9a};
    hxfr__annexb_scan(p, sizeof(p), &i);
    CHECK(!i.has_idr && !i.sps && !i.pps);
    hxfr__annexb_scan(NULL, 0, &i);
    CHECK(!i.has_idr);
    static const uint8_t t[] = {0, 0, 1};
    hxfr__annexb_scan(t, sizeof(t), &i);
    CHECK(!i.has_idr && !i.sps);
}
