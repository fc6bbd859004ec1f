/* hxfr-view: figures over the last few seconds, for /info and the logs:
 * frames per second, kbit/s and latency percentiles of a stream of
 * samples. A fixed ring, no allocation. Pure. Internal to hxfr-view. */
#ifndef HXFR_VIEW_STATS_H
#define HXFR_VIEW_STATS_H

#include <stddef.h>
#include <stdint.h>

#define HXFR_VIEW_WINDOW_SAMPLES 512u

struct hxfr_view_window {
    struct {
        int64_t t_us;       /* when (monotonic) */
        uint32_t bytes;     /* size of the frame */
        int32_t latency_us; /* a delay measured for it; < 0: none */
    } s[HXFR_VIEW_WINDOW_SAMPLES];
    unsigned head;  /* next slot */
    unsigned count; /* valid samples, newest at head - 1 */
};

void hxfr__view_window_add(struct hxfr_view_window *w, int64_t t_us, uint32_t bytes,
                           int32_t latency_us);

struct hxfr_view_rates {
    double fps;
    double kbps;
    unsigned frames;       /* samples in the span */
    unsigned latencies;    /* of them with a latency */
    double latency_p50_ms; /* 0 without latencies */
    double latency_p99_ms;
};

/* The figures over the samples of the last span_us before now_us. fps and
 * kbps are per second of span (so a stream that stopped shows falling
 * rates). */
void hxfr__view_window_rates(const struct hxfr_view_window *w, int64_t now_us, int64_t span_us,
                             struct hxfr_view_rates *out);

#endif
