/* FFmpeg's log messages (libavcodec and the encoders it wraps, such as
 * "[libx264 @ 0x...] profile High"), routed to a sink the application
 * chose, or kept quiet.
 *
 * FFmpeg logs through one process-wide callback (av_log_set_callback). A
 * library must not take that over, so by default nothing global is
 * touched: the codec contexts this part opens get a log level offset that
 * pushes their messages below any level FFmpeg prints (see
 * hxfr__encoder_log_offset). Only an application (hxfrd) calls
 * hxfr__encoder_log_route, which installs the callback; from then on
 * contexts are opened without the offset.
 *
 * FFmpeg may log a line in pieces and from any thread (the encoders run on
 * workers): pieces are joined in a per-thread buffer and the sink gets
 * whole lines.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <libavutil/log.h>

#include "encoder.h"

/* Added to the level of every message of a context opened while nothing
 * is routed: AV_LOG_PANIC (0) plus this is above AV_LOG_TRACE (56), so
 * FFmpeg's default callback prints none of them. */
#define QUIET_OFFSET 64

#define LINE_MAX_LEN 1024

static hxfr__encoder_log_fn sink;
static void *sink_opaque;

/* FFmpeg levels to enum hxfr_host_log_level values (0 error .. 3 debug);
 * -1 drops the message (trace, and messages of quieted contexts). */
static int map_level(int level)
{
    if (level <= AV_LOG_ERROR) {
        return 0;
    }
    if (level <= AV_LOG_WARNING) {
        return 1;
    }
    if (level <= AV_LOG_INFO) {
        return 2;
    }
    if (level <= AV_LOG_DEBUG) {
        return 3;
    }
    return -1;
}

static void emit(char *line, size_t len, int level)
{
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) {
        len--;
    }
    line[len] = '\0';
    if (len > 0 && sink) {
        sink(sink_opaque, level, line);
    }
}

static void av_callback(void *avcl, int level, const char *fmt, va_list vl)
{
    static _Thread_local char line[LINE_MAX_LEN];
    static _Thread_local size_t len;
    static _Thread_local int print_prefix = 1;
    static _Thread_local int line_level = 3;

    int mapped = map_level(level);
    if (mapped < 0) {
        return;
    }
    if (len == 0) {
        line_level = mapped;
    } else if (mapped < line_level) {
        line_level = mapped;
    }
    /* av_log_format_line2 prefixes "[name @ 0x...] " at the start of a
     * line and tells through print_prefix whether this piece ended one. */
    char piece[LINE_MAX_LEN];
    int n = av_log_format_line2(avcl, level, fmt, vl, piece, (int)sizeof(piece), &print_prefix);
    if (n < 0) {
        return;
    }
    size_t plen = strlen(piece);
    size_t room = sizeof(line) - 1 - len;
    size_t take = plen < room ? plen : room;
    memcpy(line + len, piece, take);
    len += take;
    /* A line ends with its newline, or when the buffer is full (a runaway
     * line is cut rather than grown). */
    if (print_prefix || len == sizeof(line) - 1) {
        emit(line, len, line_level);
        len = 0;
    }
}

void hxfr__encoder_log_route(hxfr__encoder_log_fn fn, void *opaque)
{
    sink = fn;
    sink_opaque = opaque;
    if (fn) {
        av_log_set_callback(av_callback);
    } else {
        av_log_set_callback(av_log_default_callback);
    }
}

int hxfr__encoder_log_offset(void)
{
    return sink ? 0 : QUIET_OFFSET;
}
