/* hxfr-gpu-vmcheck: the host half of the GPU+HXFR VM test (vm_hxfr.py):
 * what a viewer receives, decoded and compared with the desktop test
 * pattern rendered here on the host.
 *
 *   hxfr-gpu-vmcheck watch URI SCANOUT INDEX TIMEOUT_S [--first-idr]
 *       subscribes to SCANOUT at URI (libhxfr-client) and decodes every
 *       pushed access unit until one shows pattern frame INDEX at
 *       PSNR >= 40 dB (exit 0) or TIMEOUT_S pass (exit 1). --first-idr:
 *       the very first unit must be an IDR and already show it (a viewer
 *       joining a still screen).
 *   hxfr-gpu-vmcheck file PATH FRAMES
 *       decodes the Annex B file (hxfr-send's output) and compares frame i
 *       with pattern frame i: all FRAMES there, each at PSNR >= 40 dB.
 *
 * Either prints one JSON line with what it saw. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hxfr/client.h>

#include "avcheck.h"
#include "io.h"
#include "pattern.h"

#define MIN_PSNR 40.0

struct watch {
    struct hxfr_avcheck *av;
    uint64_t index;
    bool first_idr;
    unsigned units, keyframes;
    bool first_was_key;
    double psnr, best;
    bool matched, failed;
    uint32_t width, height;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void on_stream(void *data, uint32_t scanout, const struct hxfr_client_result *res)
{
    struct watch *w = data;
    (void)scanout;
    if (w->matched || w->failed) {
        return;
    }
    if (w->units == 0) {
        w->first_was_key = res->keyframe;
    }
    w->units++;
    w->keyframes += res->keyframe;
    if (hxfr_avcheck_decode_au(w->av, res->data, res->size) != 1) {
        fprintf(stderr, "vmcheck: unit %u does not decode\n", w->units);
        w->failed = true;
        return;
    }
    const struct hxfr_avcheck_frame *f = hxfr_avcheck_last(w->av);
    w->width = f->width;
    w->height = f->height;
    if (hxfr_avcheck_psnr_pattern(f, HXFR_PATTERN_DESKTOP, HXFR_FORMAT_XRGB8888, w->index, NULL,
                                  &w->psnr) < 0) {
        w->failed = true;
        return;
    }
    w->best = w->psnr > w->best ? w->psnr : w->best;
    if (w->psnr >= MIN_PSNR) {
        w->matched = true;
    } else if (w->first_idr) {
        w->failed = true; /* the joining IDR itself must show it */
    }
}

static int watch(const char *uri, uint32_t scanout, uint64_t index, double timeout, bool first_idr)
{
    struct watch w = {.index = index, .first_idr = first_idr};
    w.av = hxfr_avcheck_new(1);
    struct hxfr_client_options o;
    hxfr_client_options_init(&o);
    o.on_stream = on_stream;
    o.user_data = &w;
    struct hxfr_client *c = hxfr_client_new(&o);
    int r = c && w.av ? hxfr_client_connect(c, uri) : -ENOMEM;
    if (r == 0) {
        r = hxfr_client_subscribe(c, scanout, -1);
    }
    if (r < 0) {
        fprintf(stderr, "vmcheck: %s scanout %u: %s\n", uri, scanout, hxfr_strerror(r));
        hxfr_client_destroy(c);
        hxfr_avcheck_destroy(w.av);
        return 1;
    }
    double deadline = now_s() + timeout;
    while (!w.matched && !w.failed && now_s() < deadline) {
        r = hxfr_client_dispatch(c, 200);
        if (r < 0) {
            fprintf(stderr, "vmcheck: connection: %s\n", hxfr_strerror(r));
            break;
        }
    }
    bool ok = w.matched && (!first_idr || w.first_was_key);
    printf("{\"scanout\": %u, \"index\": %llu, \"units\": %u, \"keyframes\": %u, "
           "\"first_keyframe\": %s, \"width\": %u, \"height\": %u, \"psnr\": %.2f, "
           "\"best_psnr\": %.2f, \"matched\": %s}\n",
           scanout, (unsigned long long)index, w.units, w.keyframes,
           w.first_was_key ? "true" : "false", w.width, w.height, w.psnr, w.best,
           ok ? "true" : "false");
    hxfr_client_destroy(c);
    hxfr_avcheck_destroy(w.av);
    return ok ? 0 : 1;
}

static int file(const char *path, uint64_t frames)
{
    size_t len;
    uint8_t *data = (uint8_t *)hxfr_test_slurp(path, &len);
    struct hxfr_avcheck *av = hxfr_avcheck_new((unsigned)frames);
    if (!data || !av) {
        fprintf(stderr, "vmcheck: %s: %s\n", path, strerror(errno));
        return 1;
    }
    hxfr_avcheck_feed(av, data, len);
    hxfr_avcheck_finish(av);
    uint64_t n = hxfr_avcheck_frame_count(av);
    double worst = 100.0;
    uint32_t w = 0, h = 0;
    for (uint64_t i = 0; i < n && i < frames; i++) {
        const struct hxfr_avcheck_frame *f = hxfr_avcheck_frame(av, i);
        double p = 0;
        if (!f || hxfr_avcheck_psnr_pattern(f, HXFR_PATTERN_DESKTOP, HXFR_FORMAT_XRGB8888, i, NULL,
                                            &p) < 0) {
            p = 0;
        }
        w = f ? f->width : 0;
        h = f ? f->height : 0;
        worst = p < worst ? p : worst;
    }
    bool ok = n == frames && worst >= MIN_PSNR && hxfr_avcheck_idr_missing_params(av) == 0;
    printf("{\"file\": \"%s\", \"frames\": %llu, \"width\": %u, \"height\": %u, "
           "\"idr\": %llu, \"min_psnr\": %.2f, \"ok\": %s}\n",
           path, (unsigned long long)n, w, h, (unsigned long long)hxfr_avcheck_idr_count(av), worst,
           ok ? "true" : "false");
    hxfr_avcheck_destroy(av);
    free(data);
    return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc >= 6 && strcmp(argv[1], "watch") == 0) {
        bool first = argc >= 7 && strcmp(argv[6], "--first-idr") == 0;
        return watch(argv[2], (uint32_t)strtoul(argv[3], NULL, 10), strtoull(argv[4], NULL, 10),
                     strtod(argv[5], NULL), first);
    }
    if (argc == 4 && strcmp(argv[1], "file") == 0) {
        return file(argv[2], strtoull(argv[3], NULL, 10));
    }
    fprintf(stderr, "usage: hxfr-gpu-vmcheck watch URI SCANOUT INDEX TIMEOUT_S [--first-idr] | "
                    "file PATH FRAMES\n");
    return 2;
}
