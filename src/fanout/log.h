/* hxfr-fanout's log: one line per event on stderr, prefixed with the
 * program name. fanout_debug lines appear only with --verbose. Any thread
 * (each line is written with one call). */
#ifndef HXFR_FANOUT_LOG_H
#define HXFR_FANOUT_LOG_H

#include <glib.h>

void fanout_log_init(gboolean verbose);
void fanout_log(const gchar *fmt, ...) G_GNUC_PRINTF(1, 2);
void fanout_debug(const gchar *fmt, ...) G_GNUC_PRINTF(1, 2);

#endif
