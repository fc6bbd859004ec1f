/* The server's log sink (hxfr_host_config.log): one formatted line per
 * call, dropped when it is more verbose than the configured level. The
 * library never prints; every layer logs through one of these. */
#ifndef HXFR_HOST_LOG_H
#define HXFR_HOST_LOG_H

#include <hxfr/host.h>

struct hxfr__log {
    hxfr_host_log_fn fn; /* NULL: nothing is logged */
    void *opaque;
    enum hxfr_host_log_level level; /* most verbose level passed on */
};

void hxfr__log(const struct hxfr__log *log, enum hxfr_host_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
