/* hxfr-view figures over a time window (see stats.h). */
#include <stdlib.h>
#include <string.h>

#include "stats.h"

void hxfr__view_window_add(struct hxfr_view_window *w, int64_t t_us, uint32_t bytes,
                           int32_t latency_us)
{
    w->s[w->head].t_us = t_us;
    w->s[w->head].bytes = bytes;
    w->s[w->head].latency_us = latency_us;
    w->head = (w->head + 1) % HXFR_VIEW_WINDOW_SAMPLES;
    if (w->count < HXFR_VIEW_WINDOW_SAMPLES) {
        w->count++;
    }
}

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return x < y ? -1 : x > y;
}

static double pick(const int32_t *sorted, unsigned n, double p)
{
    unsigned i = (unsigned)(p * (n - 1) + 0.5);
    return sorted[i < n ? i : n - 1] / 1000.0;
}

void hxfr__view_window_rates(const struct hxfr_view_window *w, int64_t now_us, int64_t span_us,
                             struct hxfr_view_rates *out)
{
    int32_t lat[HXFR_VIEW_WINDOW_SAMPLES];
    uint64_t bytes = 0;
    memset(out, 0, sizeof(*out));
    for (unsigned k = 0; k < w->count; k++) {
        unsigned i = (w->head + HXFR_VIEW_WINDOW_SAMPLES - 1 - k) % HXFR_VIEW_WINDOW_SAMPLES;
        if (now_us - w->s[i].t_us > span_us) {
            break;
        }
        out->frames++;
        bytes += w->s[i].bytes;
        if (w->s[i].latency_us >= 0) {
            lat[out->latencies++] = w->s[i].latency_us;
        }
    }
    if (span_us > 0) {
        out->fps = out->frames * 1e6 / (double)span_us;
        out->kbps = (double)bytes * 8.0 * 1e3 / (double)span_us;
    }
    if (out->latencies > 0) {
        qsort(lat, out->latencies, sizeof(lat[0]), cmp_i32);
        out->latency_p50_ms = pick(lat, out->latencies, 0.50);
        out->latency_p99_ms = pick(lat, out->latencies, 0.99);
    }
}
