/* hxfrsrc: a live source that subscribes to a scanout stream of an hxfr
 * host (push mode) and outputs its H.264 access units. A thin wrapper over
 * libhxfr-client. */
#ifndef GST_HXFRSRC_H
#define GST_HXFRSRC_H

#include <gst/base/gstpushsrc.h>
#include <gst/gst.h>

#include <hxfr/client.h>

#include "gsthxfrcommon.h"

G_BEGIN_DECLS

#define GST_TYPE_HXFRSRC (gst_hxfrsrc_get_type())
G_DECLARE_FINAL_TYPE(GstHxfrSrc, gst_hxfrsrc, GST, HXFRSRC, GstPushSrc)

struct _GstHxfrSrc {
    GstPushSrc parent;

    /* Properties (object lock). */
    struct gst_hxfr_conn_props conn;
    guint scanout;

    /* Used only by the streaming thread (and start/stop). */
    struct hxfr_client *client;
    GQueue units;         /* GstBuffer*, pts = host pts, oldest first */
    gboolean waiting_key; /* drop units until the next IDR */
    gboolean have_base;
    guint64 host_base;         /* host pts that maps to running time ... */
    GstClockTime running_base; /* ... this one */
    gint64 last_host_pts;
    GstClockTime last_out; /* last pts pushed */

    /* ERROR NO_SCANOUT arrived: the publisher ended the stream. */
    gboolean ended;
    gchar *end_message;

    /* unlock(): flushing flag plus an eventfd that wakes the poll; the
     * event handler sets want_keyframe and wakes the poll too. */
    int wake_fd;
    gint flushing;      /* atomic */
    gint want_keyframe; /* atomic */
};

G_END_DECLS

#endif
