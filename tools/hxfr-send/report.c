/* hxfr-send's statistics (send.h): every result counted and its latency
 * kept, the access units appended to the output, the live progress line
 * and the closing summary (text, and JSON with --json). */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "send.h"

uint64_t send_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

const char *send_clear(const struct send_app *app)
{
    return app->tty ? "\r\033[K" : "";
}

static int cmp_u32(const void *x, const void *y)
{
    uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
    return a < b ? -1 : a > b;
}

/* Percentile p (0..1) of sorted values, in milliseconds. */
static double pct_ms(const uint32_t *sorted, size_t n, double p)
{
    if (n == 0) {
        return 0;
    }
    size_t i = (size_t)ceil(p * (double)n);
    i = i == 0 ? 0 : i - 1;
    if (i >= n) {
        i = n - 1;
    }
    return sorted[i] / 1000.0;
}

void send_on_frame(void *data, const struct hxfr_client_result *res)
{
    struct send_app *app = data;
    struct send_stats *s = &app->s;
    if (app->resource_src && res->user) {
        /* The host is done with the buffer, whatever the outcome. */
        app->resource_src->ops->done(app->resource_src, res->user);
    }
    if (res->status != 0) {
        s->errors++;
        if (res->status == -HXFR_EREMOTE) {
            s->remote_errors++;
            fprintf(stderr, "%shxfr-send: host refused frame %" PRIu64 ": %s (%d): %s\n",
                    send_clear(app), res->seq, hxfr_status_name(res->remote_code), res->remote_code,
                    res->remote_message);
        }
        return;
    }
    s->ok++;
    if (res->keyframe) {
        s->keyframes++;
    }
    s->bytes += res->size;
    if (s->first_after_reconnect_pending) {
        s->first_after_reconnect_pending = false;
        fprintf(stderr, "%shxfr-send: resumed after reconnect with %s\n", send_clear(app),
                res->keyframe ? "an IDR frame" : "a P frame");
    }
    uint64_t us = res->latency_ns / 1000u;
    uint32_t lat = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
    if (s->lat_len == s->lat_cap) {
        size_t cap = s->lat_cap ? s->lat_cap * 2 : 1024;
        uint32_t *p = realloc(s->lat_us, cap * sizeof(*p));
        if (p) {
            s->lat_us = p;
            s->lat_cap = cap;
        }
    }
    if (s->lat_len < s->lat_cap) {
        s->lat_us[s->lat_len++] = lat;
    }
    s->recent[s->recent_pos] = lat;
    s->recent_pos = (s->recent_pos + 1) % RECENT_LATENCIES;
    if (s->recent_len < RECENT_LATENCIES) {
        s->recent_len++;
    }
    if (app->out && res->size > 0 && fwrite(res->data, 1, res->size, app->out) != res->size) {
        app->out_error = errno ? errno : EIO;
    }
}

void send_on_event(void *data, const struct hxfr_client_event *ev)
{
    struct send_app *app = data;
    const char *cr = send_clear(app);
    switch (ev->type) {
    case HXFR_CLIENT_EVENT_DISCONNECTED:
        app->s.disconnects++;
        fprintf(stderr, "%shxfr-send: lost the host (%s): %s\n", cr, app->a.connect,
                hxfr_strerror(ev->err));
        break;
    case HXFR_CLIENT_EVENT_RECONNECTED:
        app->s.reconnects++;
        app->s.first_after_reconnect_pending = true;
        fprintf(stderr, "%shxfr-send: reconnected to %s after %u attempt(s)\n", cr, app->a.connect,
                ev->attempt);
        break;
    case HXFR_CLIENT_EVENT_REMOTE_ERROR:
        fprintf(stderr, "%shxfr-send: host error %s (%d): %s\n", cr,
                hxfr_status_name(ev->remote_code), ev->remote_code, ev->remote_message);
        break;
    }
}

void send_progress(struct send_app *app, uint64_t start_ns)
{
    struct send_stats *s = &app->s;
    double secs = (double)(send_now_ns() - start_ns) / 1e9;
    uint32_t tmp[RECENT_LATENCIES];
    memcpy(tmp, s->recent, s->recent_len * sizeof(tmp[0]));
    qsort(tmp, s->recent_len, sizeof(tmp[0]), cmp_u32);
    fprintf(stderr,
            "\r\033[Kframes %" PRIu64 "  %.1f fps  latency p50 %.1f ms p99 %.1f ms  "
            "%.0f kbit/s%s",
            s->ok, secs > 0 ? (double)s->ok / secs : 0.0, pct_ms(tmp, s->recent_len, 0.5),
            pct_ms(tmp, s->recent_len, 0.99), secs > 0 ? (double)s->bytes * 8 / secs / 1000 : 0.0,
            s->errors ? "  (errors)" : "");
}

/* Prints s with what JSON requires escaped (the uri and the output path
 * are user input, the encoder name comes from the host). */
static void json_string(const char *s)
{
    for (const char *p = s; *p; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch == '"' || ch == '\\') {
            printf("\\%c", ch);
        } else if (ch < 0x20 || ch == 0x7f) {
            printf("\\u%04x", ch);
        } else {
            putchar(ch);
        }
    }
}

void send_summary(struct send_app *app, double secs, const struct hxfr_config_resp *cr,
                  const char *uri)
{
    struct send_stats *s = &app->s;
    qsort(s->lat_us, s->lat_len, sizeof(s->lat_us[0]), cmp_u32);
    double p50 = pct_ms(s->lat_us, s->lat_len, 0.5);
    double p90 = pct_ms(s->lat_us, s->lat_len, 0.9);
    double p99 = pct_ms(s->lat_us, s->lat_len, 0.99);
    double max = s->lat_len ? s->lat_us[s->lat_len - 1] / 1000.0 : 0;
    double fps = secs > 0 ? (double)s->ok / secs : 0;
    double kbps = secs > 0 ? (double)s->bytes * 8 / secs / 1000 : 0;
    if (app->tty) {
        fprintf(stderr, "\r\033[K");
    }
    fprintf(stderr,
            "hxfr-send: %" PRIu64 " frames in %.2f s (%.1f fps), %ux%u %s -> %s, "
            "latency p50 %.2f ms p90 %.2f ms p99 %.2f ms max %.2f ms, %" PRIu64 " bytes "
            "(%.0f kbit/s), %" PRIu64 " keyframes, %" PRIu64 " errors, %" PRIu64 " reconnects\n",
            s->ok, secs, fps, app->a.width, app->a.height, hxfr_format_name(app->a.format),
            cr->encoder[0] ? cr->encoder : "?", p50, p90, p99, max, s->bytes, kbps, s->keyframes,
            s->errors, s->reconnects);
    if (app->a.json) {
        printf("{\"frames\": %" PRIu64 ", \"submitted\": %" PRIu64 ", \"seconds\": %.3f, "
               "\"fps\": %.2f, \"latency_ms\": {\"p50\": %.3f, \"p90\": %.3f, \"p99\": %.3f, "
               "\"max\": %.3f}, \"bytes\": %" PRIu64 ", \"kbps\": %.1f, \"keyframes\": %" PRIu64
               ", \"errors\": %" PRIu64 ", \"reconnects\": %" PRIu64 ", \"connect\": \"",
               s->ok, s->submitted, secs, fps, p50, p90, p99, max, s->bytes, kbps, s->keyframes,
               s->errors, s->reconnects);
        json_string(uri);
        printf("\", \"width\": %u, \"height\": %u, \"format\": \"%s\", \"window\": %u, "
               "\"encoder\": \"",
               app->a.width, app->a.height, hxfr_format_name(app->a.format), app->a.window);
        json_string(cr->encoder);
        printf("\", \"output\": \"");
        json_string(app->a.output);
        printf("\", \"mode\": \"%s\", \"frame_bytes\": %" PRIu64 ", \"shm_slots\": %u, "
               "\"shm_slot_bytes\": %" PRIu64,
               app->resource_src   ? "resource"
               : app->a.shm        ? "shm"
               : app->a.shm_region ? "shm-region"
                                   : "inline",
               app->frame_bytes, app->shm_slots, app->shm_slot_bytes);
        if (app->a.scanout >= 0) {
            printf(", \"scanout\": %d", app->a.scanout);
        }
        printf("}\n");
        fflush(stdout);
    }
}

void send_stats_finish(struct send_stats *s)
{
    free(s->lat_us);
    s->lat_us = NULL;
    s->lat_len = s->lat_cap = 0;
}
