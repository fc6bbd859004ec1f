/* --stats-interval (hostcli.h): a timerfd the program polls, and on each
 * expiry one line per live session and one for the scanouts. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "hostcli.h"

int hxfr__hostcli_stats_open(struct hxfr_hostcli *cli)
{
    if (cli->stats_interval == 0 || cli->stats_fd >= 0) {
        return 0;
    }
    int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    struct itimerspec its = {.it_interval = {.tv_sec = cli->stats_interval},
                             .it_value = {.tv_sec = cli->stats_interval}};
    if (fd < 0 || timerfd_settime(fd, 0, &its, NULL) < 0) {
        int r = -errno;
        if (fd >= 0) {
            close(fd);
        }
        return r;
    }
    cli->stats_fd = fd;
    return 0;
}

int hxfr__hostcli_stats_fd(const struct hxfr_hostcli *cli)
{
    return cli->stats_fd;
}

static void log_session(void *opaque, const struct hxfr_host_session_stats *s)
{
    const struct hxfr_hostcli *cli = opaque;
    double secs = s->interval_ns / 1e9;
    char line[400];
    snprintf(line, sizeof(line),
             "stats client %" PRIu64 " session %u: %ux%u %s %s: %.1f fps, %.0f kbit/s, "
             "encode p50 %.2f ms p99 %.2f ms, %" PRIu64 " frames, %" PRIu64
             " pixel bytes copied (client %" PRIu64 "), %" PRIu64 " shm frames",
             s->client_id, (unsigned)s->session_id, s->width, s->height,
             hxfr_format_name(s->format) ? hxfr_format_name(s->format) : "-",
             s->encoder[0] ? s->encoder : "-", secs > 0 ? s->interval_frames / secs : 0.0,
             secs > 0 ? s->interval_bytes * 8.0 / 1000.0 / secs : 0.0, s->encode_ms_p50,
             s->encode_ms_p99, s->frames, s->pixel_bytes_copied, s->client_pixel_bytes_copied,
             s->shm_frames);
    hxfr__hostcli_print(cli, HXFR_HOST_LOG_INFO, line);
}

/* One line for push mode, when the server has or had scanouts. */
static void log_scanouts(const struct hxfr_hostcli *cli, struct hxfr_host *host)
{
    struct hxfr_host_stats st;
    char line[400];

    hxfr_host_get_stats(host, &st);
    if (st.scanouts == 0 && st.scanout_units_sent == 0 && st.keepalive_frames == 0) {
        return;
    }
    snprintf(line, sizeof(line),
             "stats scanouts: %u enabled, %u subscribers, %" PRIu64 " units sent, %" PRIu64
             " dropped, %" PRIu64 " re-encodes (keepalive/IDR), %" PRIu64
             " keep-copy bytes, %" PRIu64 " bytes kept",
             st.scanouts, st.subscribers, st.scanout_units_sent, st.scanout_units_dropped,
             st.keepalive_frames, st.keep_copy_bytes, st.keep_bytes);
    hxfr__hostcli_print(cli, HXFR_HOST_LOG_INFO, line);
}

/* One line for frames from GPU memory (a VMM's server: hxfr-gpu), when
 * there were any: scanout flushes published, encoded and skipped, the
 * damaged area, what the converter read in place and bounced, and the
 * whole-frame copies (0 unless a client publishes a resource id). */
static void log_gpu(const struct hxfr_hostcli *cli, struct hxfr_host *host)
{
    struct hxfr_host_stats st;
    char line[400];

    hxfr_host_get_stats(host, &st);
    if (st.gpu_frames == 0 && st.gpu_flushes == 0) {
        return;
    }
    snprintf(line, sizeof(line),
             "stats gpu: %" PRIu64 " flushes, %" PRIu64 " encoded, %" PRIu64 " skipped, %" PRIu64
             " damaged px; %" PRIu64 " frames from guest memory, %" PRIu64
             " px converted in place, %" PRIu64 " bytes bounced, %" PRIu64 " whole-frame copies",
             st.gpu_flushes, st.gpu_flushes_encoded, st.gpu_flushes_skipped, st.gpu_damage_pixels,
             st.gpu_frames, st.gpu_converted_pixels, st.gpu_bounced_bytes, st.gpu_frame_copies);
    hxfr__hostcli_print(cli, HXFR_HOST_LOG_INFO, line);
}

void hxfr__hostcli_stats_tick(struct hxfr_hostcli *cli, struct hxfr_host *host)
{
    uint64_t expirations;
    if (cli->stats_fd < 0 || read(cli->stats_fd, &expirations, sizeof(expirations)) <= 0) {
        return;
    }
    hxfr_host_foreach_session(host, true, log_session, cli);
    log_scanouts(cli, host);
    log_gpu(cli, host);
}

void hxfr__hostcli_finish(struct hxfr_hostcli *cli)
{
    if (cli->stats_fd >= 0) {
        close(cli->stats_fd);
        cli->stats_fd = -1;
    }
}
