/* hxfr-fanout's RTP senders: a scanout as RTP H.264 to a media engine's
 * input, e.g. a Janus streaming mountpoint (port = its video port,
 * rtcp_port = its videortcpport).
 *
 * The sender's RTCP goes out from one UDP socket that also receives the
 * engine's feedback: Janus latches onto the address its RTCP port hears
 * from and sends its PLIs there (a viewer joined, or lost packets). The
 * RTP session turns a PLI or FIR for our SSRC into an upstream
 * force-key-unit event, which the hub (hub.h) passes on to the host as
 * KEYFRAME_REQ. Runs on the main context.
 */
#ifndef HXFR_FANOUT_RTP_H
#define HXFR_FANOUT_RTP_H

#include <glib.h>

#include "hub.h"

G_BEGIN_DECLS

#define FANOUT_RTP_PT  96u
#define FANOUT_RTP_MTU 1200u /* leaves room for SRTP and TURN headers downstream */

struct fanout_rtp_target {
    guint16 scanout;
    gchar *host;       /* numeric address or a name resolved once */
    guint16 port;      /* RTP */
    guint16 rtcp_port; /* 0: no RTCP, so no keyframe requests from the engine */
};

/* Parses "N=HOST:PORT[:RTCPPORT]" (an IPv6 HOST in brackets). Returns
 * FALSE and sets err on bad input. t->host is allocated; free it with
 * g_free. */
gboolean fanout_rtp_target_parse(const gchar *s, struct fanout_rtp_target *t, GError **err);

struct fanout_rtp;

/* Starts sending scanout t->scanout to the target (the hub's subscription
 * starts now and stays while the sender exists). Returns NULL and sets
 * err when the address cannot be resolved or the socket not bound. */
struct fanout_rtp *fanout_rtp_new(struct fanout_hubs *hubs, const struct fanout_rtp_target *t,
                                  GError **err);

/* Stops the sender and detaches its outlet. Accepts NULL. */
void fanout_rtp_destroy(struct fanout_rtp *rtp);

G_END_DECLS

#endif
