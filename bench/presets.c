/* hxfr-bench-presets: measures libx264 presets on the test pattern, to
 * choose HXFR_DEFAULT_PRESET (see docs/encoders.md).
 *
 *   hxfr-bench-presets [--frames N] [--size WxH] [--variant desktop|static|busy]
 *                      [--presets a,b,...] [--threads a,b,...] [--format NAME]
 *
 * For each preset and thread count it encodes N frames through the
 * encoder backend exactly as hxfrd does (libyuv conversion + libx264
 * zerolatency, default bitrate cap), timing each encode call (conversion
 * included, pattern rendering excluded), then decodes every access unit
 * and reports throughput, per-frame latency percentiles, bitrate at 60
 * fps and PSNR against the source. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libavutil/log.h>

#include <hxfr/proto.h>

#include "avcheck.h"
#include "encoder.h"
#include "pattern.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double percentile(const double *sorted, int n, double p)
{
    int i = (int)(p * (n - 1) + 0.5);
    return sorted[i < 0 ? 0 : i >= n ? n - 1 : i];
}

struct options {
    int frames;
    uint32_t width, height;
    int variant;
    uint32_t format;
    char presets[256];
    char threads[64];
};

static int run_one(const struct options *o, const char *preset, int threads, uint8_t *pixels,
                   const uint32_t strides[3], uint8_t *planes[3])
{
    struct hxfr_encoder_config cfg = {
        .width = o->width,
        .height = o->height,
        .preset = preset,
        .threads = threads,
        .realtime = true,
    };
    struct hxfr_encoder *enc = hxfr__encoder_create(&cfg);
    if (!enc) {
        fprintf(stderr, "cannot open libx264 (%s): %s\n", preset, strerror(errno));
        return -1;
    }
    struct hxfr_avcheck *dec = hxfr_avcheck_new(1);
    double *ms = calloc((size_t)o->frames, sizeof(double));
    if (!dec || !ms) {
        fprintf(stderr, "out of memory\n");
        hxfr__encoder_destroy(enc);
        hxfr_avcheck_destroy(dec);
        free(ms);
        return -1;
    }
    struct hxfr_image img = {.format = o->format,
                             .width = o->width,
                             .height = o->height,
                             .planes = {planes[0], planes[1], planes[2]},
                             .strides = {strides[0], strides[1], strides[2]}};
    double total = 0, psnr_sum = 0, psnr_min = 100, psnr_y_min = 100;
    size_t bytes = 0;
    int ret = 0;
    (void)pixels;
    for (int i = 0; i < o->frames; i++) {
        hxfr_pattern_render((enum hxfr_pattern_variant)o->variant, o->format, o->width, o->height,
                            (uint64_t)i, planes, strides);
        struct hxfr_packet pkt;
        double t0 = now_ms();
        int r = hxfr__encoder_encode(enc, &img, i, false, &pkt);
        ms[i] = now_ms() - t0;
        total += ms[i];
        if (r < 0 || hxfr_avcheck_decode_au(dec, pkt.data, pkt.size) != 1) {
            fprintf(stderr, "frame %d failed\n", i);
            ret = -1;
            break;
        }
        bytes += pkt.size;
        double y, all;
        hxfr_avcheck_psnr_pattern(hxfr_avcheck_last(dec), o->variant, o->format, (uint64_t)i, &y,
                                  &all);
        psnr_sum += all;
        psnr_min = all < psnr_min ? all : psnr_min;
        psnr_y_min = y < psnr_y_min ? y : psnr_y_min;
    }
    if (ret == 0) {
        qsort(ms, (size_t)o->frames, sizeof(double), cmp_double);
        printf("%-10s %7d %8.1f %8.2f %8.2f %9.0f %8.2f %8.2f %8.2f\n", preset, threads,
               1000.0 * o->frames / total, percentile(ms, o->frames, 0.5),
               percentile(ms, o->frames, 0.99), (double)bytes * 8 * 60 / o->frames / 1000,
               psnr_sum / o->frames, psnr_min, psnr_y_min);
        fflush(stdout);
    }
    free(ms);
    hxfr_avcheck_destroy(dec);
    hxfr__encoder_destroy(enc);
    return ret;
}

static int parse_args(int argc, char **argv, struct options *o)
{
    *o = (struct options){.frames = 120,
                          .width = 1920,
                          .height = 1080,
                          .variant = HXFR_PATTERN_DESKTOP,
                          .format = HXFR_FORMAT_ARGB8888};
    snprintf(o->presets, sizeof(o->presets), "ultrafast,superfast,veryfast,faster");
    snprintf(o->threads, sizeof(o->threads), "1,2");
    for (int i = 1; i < argc; i += 2) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            return -1;
        }
        if (strcmp(argv[i], "--frames") == 0) {
            o->frames = atoi(v);
        } else if (strcmp(argv[i], "--size") == 0) {
            if (sscanf(v, "%ux%u", &o->width, &o->height) != 2) {
                return -1;
            }
        } else if (strcmp(argv[i], "--variant") == 0) {
            o->variant = hxfr_pattern_variant_from_name(v);
        } else if (strcmp(argv[i], "--presets") == 0) {
            snprintf(o->presets, sizeof(o->presets), "%s", v);
        } else if (strcmp(argv[i], "--threads") == 0) {
            snprintf(o->threads, sizeof(o->threads), "%s", v);
        } else if (strcmp(argv[i], "--format") == 0) {
            static const struct {
                const char *n;
                uint32_t f;
            } names[] = {
                {"BGRA", HXFR_FORMAT_ARGB8888}, {"BGRx", HXFR_FORMAT_XRGB8888},
                {"RGBA", HXFR_FORMAT_ABGR8888}, {"RGBx", HXFR_FORMAT_XBGR8888},
                {"NV12", HXFR_FORMAT_NV12},     {"I420", HXFR_FORMAT_I420},
            };
            o->format = 0;
            for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
                if (strcmp(v, names[k].n) == 0) {
                    o->format = names[k].f;
                }
            }
        } else {
            return -1;
        }
    }
    if (o->frames < 1 || o->variant < 0 || o->format == 0 || o->width == 0 || o->height == 0 ||
        o->width > HXFR_MAX_DIM_HARD || o->height > HXFR_MAX_DIM_HARD ||
        (o->width | o->height) & 1u) {
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct options o;
    if (parse_args(argc, argv, &o) < 0) {
        fprintf(stderr,
                "usage: %s [--frames N] [--size WxH] [--variant desktop|static|busy]\n"
                "       [--presets a,b,...] [--threads a,b,...] "
                "[--format BGRA|BGRx|RGBA|RGBx|NV12|I420]\n",
                argv[0]);
        return 2;
    }
    av_log_set_level(AV_LOG_ERROR);
    uint32_t w = o.width, h = o.height;
    bool yuv = o.format == HXFR_FORMAT_NV12 || o.format == HXFR_FORMAT_I420;
    size_t size = yuv ? (size_t)w * h * 3 / 2 : (size_t)w * h * 4;
    uint8_t *pixels = malloc(size);
    if (!pixels) {
        return 1;
    }
    uint8_t *planes[3] = {pixels, NULL, NULL};
    uint32_t strides[3] = {yuv ? w : w * 4, 0, 0};
    if (o.format == HXFR_FORMAT_NV12) {
        planes[1] = pixels + (size_t)w * h;
        strides[1] = w;
    } else if (o.format == HXFR_FORMAT_I420) {
        planes[1] = pixels + (size_t)w * h;
        planes[2] = planes[1] + (size_t)(w / 2) * (h / 2);
        strides[1] = strides[2] = w / 2;
    }
    /* Touch the buffer once so page faults are not timed. */
    memset(pixels, 0, size);

    printf("# %ux%u, %d frames, pattern variant %d, bitrate cap %u bit/s (CRF, zerolatency)\n", w,
           h, o.frames, o.variant,
           (uint32_t)((uint64_t)w * h * 4 > HXFR_MIN_BITRATE ? (uint64_t)w * h * 4
                                                             : HXFR_MIN_BITRATE));
    printf("%-10s %7s %8s %8s %8s %9s %8s %8s %8s\n", "preset", "threads", "fps", "p50_ms",
           "p99_ms", "kbit/s", "psnr", "psnr_min", "y_min");
    int ret = 0;
    char presets[256];
    snprintf(presets, sizeof(presets), "%s", o.presets);
    char *save_p = NULL;
    for (char *p = strtok_r(presets, ",", &save_p); p; p = strtok_r(NULL, ",", &save_p)) {
        char threads[64];
        snprintf(threads, sizeof(threads), "%s", o.threads);
        char *save_t = NULL;
        for (char *t = strtok_r(threads, ",", &save_t); t; t = strtok_r(NULL, ",", &save_t)) {
            if (run_one(&o, p, atoi(t), pixels, strides, planes) < 0) {
                ret = 1;
            }
        }
    }
    free(pixels);
    return ret;
}
