/* hxfr_host_set_ffmpeg_log: the application's hook for FFmpeg's log
 * (src/encoders/avlog.c does the work). Kept out of hxfr_host_src so the
 * fuzz and fake-encoder builds, which have no libavutil, do not need it. */
#include <hxfr/host.h>

#include "encoders/encoder.h"

static hxfr_host_log_fn app_fn;

static void forward(void *opaque, int level, const char *line)
{
    app_fn(opaque, (enum hxfr_host_log_level)level, line);
}

void hxfr_host_set_ffmpeg_log(hxfr_host_log_fn fn, void *opaque)
{
    app_fn = fn;
    hxfr__encoder_log_route(fn ? forward : NULL, opaque);
}
