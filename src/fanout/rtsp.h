/* hxfr-fanout's RTSP server: rtsp://HOST:PORT/scanout/N for each offered
 * scanout, through gst-rtsp-server.
 *
 * Each client gets its own small media pipeline, `appsrc ! rtph264pay`,
 * fed by the scanout's hub (hub.h): one upstream subscription per scanout
 * whatever the number of clients, and every client starts at an IDR (a
 * media shared at the GStreamer level would add a late client's address
 * to a running payloader mid-GOP). Runs on the main context.
 */
#ifndef HXFR_FANOUT_RTSP_H
#define HXFR_FANOUT_RTSP_H

#include <glib.h>

#include "hub.h"

G_BEGIN_DECLS

#define FANOUT_DEFAULT_RTSP_CLIENTS 64u

struct fanout_rtsp;

struct fanout_rtsp_options {
    const gchar *host;       /* address to bind, e.g. "127.0.0.1" or "::1" */
    const gchar *port;       /* service, "0" picks a free port */
    const guint16 *scanouts; /* the mount points, /scanout/N */
    guint n_scanouts;
    guint max_clients; /* connections served; more get 503 */
};

/* Binds and attaches the server to the main context. Returns NULL and sets
 * err when it cannot bind. The options are copied. */
struct fanout_rtsp *fanout_rtsp_new(struct fanout_hubs *hubs, const struct fanout_rtsp_options *o,
                                    GError **err);

/* The port actually bound. */
guint fanout_rtsp_port(const struct fanout_rtsp *r);

/* Closes every client (their outlets detach) and the listening socket.
 * Accepts NULL. */
void fanout_rtsp_destroy(struct fanout_rtsp *r);

G_END_DECLS

#endif
