/* Log lines of a server program (hostcli.h): the server's, FFmpeg's and the
 * program's own, one fprintf per line so lines from encoder threads never
 * interleave within a line. */
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "hostcli.h"

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void hxfr__hostcli_print(const struct hxfr_hostcli *cli, enum hxfr_host_log_level level,
                         const char *msg)
{
    struct timespec ts;
    struct tm tm;
    char stamp[32];

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(stamp, sizeof(stamp), "%H:%M:%S", &tm);
    fprintf(stderr, "%s %s.%03ld [%s] %s\n", cli->prog, stamp, ts.tv_nsec / 1000000L,
            level_names[level <= HXFR_HOST_LOG_DEBUG ? level : HXFR_HOST_LOG_DEBUG], msg);
}

void hxfr__hostcli_log(void *opaque, enum hxfr_host_log_level level, const char *msg)
{
    const struct hxfr_hostcli *cli = opaque;
    if (level <= cli->log_max) {
        hxfr__hostcli_print(cli, level, msg);
    }
}

void hxfr__hostcli_logf(struct hxfr_hostcli *cli, enum hxfr_host_log_level level, const char *fmt,
                        ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    hxfr__hostcli_log(cli, level, line);
}

/* FFmpeg's lines, prefixed "ffmpeg: ". Its errors are shown at every
 * --log-level; its warnings, info and debug lines only with --log-level
 * debug: x264 alone prints a banner and a statistics block per encoder at
 * info level, that is, per client. Called on any thread. */
static void ffmpeg_line(void *opaque, enum hxfr_host_log_level level, const char *msg)
{
    const struct hxfr_hostcli *cli = opaque;
    if (level == HXFR_HOST_LOG_ERROR || cli->log_max >= HXFR_HOST_LOG_DEBUG) {
        char line[1100];
        snprintf(line, sizeof(line), "ffmpeg: %s", msg);
        hxfr__hostcli_print(cli, level, line);
    }
}

void hxfr__hostcli_route_ffmpeg(struct hxfr_hostcli *cli)
{
    hxfr_host_set_ffmpeg_log(ffmpeg_line, cli);
}
