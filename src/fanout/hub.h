/* hxfr-fanout hubs: one upstream subscription per scanout, shared by every
 * outlet (an RTSP client's pipeline, an RTP sender to Janus).
 *
 * A hub runs `hxfrsrc scanout=N ! h264parse ! appsink` and hands each
 * access unit to every outlet's appsrc by reference (the bytes are never
 * copied per outlet). An outlet starts at an IDR: until one arrives it gets
 * nothing, and joining asks the host for one (KEYFRAME_REQ through
 * hxfrsrc). An outlet whose appsrc queue is full loses that unit and every
 * later one up to the next IDR, which it then asks for; the others go on.
 *
 * Threading: hubs are created, started and stopped on the main context
 * (the GMainContext that runs hxfr-fanout's loop). Attach, detach and
 * keyframe requests may come from any thread; units are handed out on the
 * hub pipeline's streaming thread under the hub's lock.
 */
#ifndef HXFR_FANOUT_HUB_H
#define HXFR_FANOUT_HUB_H

#include <gst/app/gstappsrc.h>
#include <gst/gst.h>

G_BEGIN_DECLS

#define FANOUT_DEFAULT_QUEUE_UNITS 30u   /* per outlet, units waiting in its appsrc */
#define FANOUT_LINGER_MS           5000u /* keep an unwatched subscription this long */
#define FANOUT_RESTART_MS          1000u /* retry a failed subscription after this */
#define FANOUT_OUTLET_KF_MS        1000u /* an outlet waiting for an IDR asks this often */
#define FANOUT_KEYFRAME_MS         250u  /* per scanout, keyframe requests at most */

struct fanout_hubs;
struct fanout_outlet;

struct fanout_hub_options {
    const gchar *address; /* the host, as hxfrsrc's address property */
    guint queue_units;    /* 0 = FANOUT_DEFAULT_QUEUE_UNITS */
    gboolean verbose;
};

/* Creates the (empty) set of hubs. The options are copied. Returns NULL
 * when the hxfrsrc element cannot be registered. */
struct fanout_hubs *fanout_hubs_new(const struct fanout_hub_options *o);

/* Stops every hub; outlets must have been detached. Accepts NULL. */
void fanout_hubs_destroy(struct fanout_hubs *hubs);

/* Attaches src (a live appsrc in format TIME, do-timestamp) to scanout's
 * hub, starting the hub's subscription if it is not running. The outlet
 * gets units from the next IDR on, which is requested now. A reference to
 * src is taken; name (copied) appears in the log. The upstream
 * force-key-unit events that reach src (an RTCP PLI/FIR from a viewer)
 * become keyframe requests. Any thread. */
struct fanout_outlet *fanout_outlet_attach(struct fanout_hubs *hubs, guint16 scanout,
                                           GstAppSrc *src, const gchar *name);

/* Detaches and frees the outlet (its counters are logged); the last outlet
 * of a hub leaves its subscription running for FANOUT_LINGER_MS. Any
 * thread; accepts NULL. */
void fanout_outlet_detach(struct fanout_outlet *outlet);

/* Asks the host for an IDR. Requests for one scanout go upstream at most
 * once per FANOUT_KEYFRAME_MS (later ones are coalesced, not lost). Any
 * thread. */
void fanout_outlet_request_keyframe(struct fanout_outlet *outlet);

G_END_DECLS

#endif
