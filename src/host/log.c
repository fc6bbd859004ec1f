/* Log lines of libhxfr-host (log.h). */
#include <stdarg.h>
#include <stdio.h>

#include "log.h"

void hxfr__log(const struct hxfr__log *log, enum hxfr_host_log_level level, const char *fmt, ...)
{
    char line[512];
    va_list ap;

    if (!log->fn || level > log->level) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    log->fn(log->opaque, level, line);
}
