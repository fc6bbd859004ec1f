/* hxfr-fanout's log lines (see log.h). */
#include <stdarg.h>
#include <stdio.h>

#include "log.h"

static gboolean log_verbose;

void fanout_log_init(gboolean verbose)
{
    log_verbose = verbose;
}

static void vlog(const gchar *fmt, va_list ap)
{
    gchar *msg = g_strdup_vprintf(fmt, ap);
    /* One fprintf per line: lines from different threads do not mix. */
    fprintf(stderr, "hxfr-fanout: %s\n", msg);
    g_free(msg);
}

void fanout_log(const gchar *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(fmt, ap);
    va_end(ap);
}

void fanout_debug(const gchar *fmt, ...)
{
    if (!log_verbose) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vlog(fmt, ap);
    va_end(ap);
}
