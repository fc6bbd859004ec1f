/* vsockenc: a GstVideoEncoder that hands raw frames to an hxfr host (hxfrd
 * or a VMM embedding libhxfr-host) and outputs the H.264 access units the
 * host returns. A thin wrapper over libhxfr-client, and a drop-in for
 * Helix's element of the same name: its own GType (GstHxfrVsockEnc) so
 * both plugins load in one process, Helix's properties with Helix's
 * meaning (docs/gstreamer.md, docs/helix.md). */
#ifndef GST_VSOCKENC_H
#define GST_VSOCKENC_H

#include <gst/gst.h>
#include <gst/video/gstvideoencoder.h>
#include <gst/video/video.h>

#include <hxfr/client.h>

#include "gsthxfrcommon.h"

G_BEGIN_DECLS

#define GST_TYPE_HXFR_VSOCKENC (gst_hxfr_vsockenc_get_type())
G_DECLARE_FINAL_TYPE(GstHxfrVsockEnc, gst_hxfr_vsockenc, GST, HXFR_VSOCKENC, GstVideoEncoder)

/* One finished (or failed) frame waiting to be pushed, produced by the
 * client's on_frame callback and consumed by the dispatcher thread. */
struct vsockenc_result {
    guint frame_number;
    int status;
    gboolean keyframe;
    GstBuffer *buffer; /* NULL on failure */
    gint32 remote_code;
    gchar *remote_message; /* owned; NULL unless status is remote */
};

struct _GstHxfrVsockEnc {
    GstVideoEncoder parent;

    /* Properties (protected by the object lock). conn.address is what
     * start connects to: set directly, or rebuilt from Helix's connection
     * properties below whenever one of them is written. */
    struct gst_hxfr_conn_props conn;
    gchar *socket_path; /* owned; NULL = unset */
    gchar *tcp_host;    /* owned; NULL = unset */
    guint tcp_port;
    guint cid;
    guint port;
    gint bitrate;
    gint keyframe_interval;
    guint max_in_flight;
    gboolean use_shm;

    /* Shared-memory frames (use-shm): TRUE while a ring sized for the
     * current caps is attached; shm_geom is the frame layout in a slot.
     * Streaming thread only. */
    gboolean shm_active;
    struct hxfr_geometry shm_geom;

    /* The client and everything it touches: client_lock serializes every
     * hxfr_client call between the streaming thread and the dispatcher. */
    GMutex client_lock;
    struct hxfr_client *client;
    gboolean configured;
    GstVideoCodecState *input_state;
    /* Frames submitted since the last CONFIG_REQ: a host without the
     * keyframe-interval extension (a v1 host) gets an IDR request every
     * keyframe-interval frames, as Helix's element sends. Streaming thread
     * only. */
    guint64 frames_since_config;

    /* Results from the client callback, oldest first (results_lock). */
    GMutex results_lock;
    GCond results_cond; /* signalled after each pushed result */
    GQueue results;
    gboolean pushing; /* the dispatcher holds a popped result */

    /* Dispatcher thread: polls the client fd and a wake-up eventfd. */
    GThread *dispatcher;
    int wake_fd;
    gint stopping; /* atomic */
    gint flow;     /* atomic GstFlowReturn: sticky error / flushing */

    /* Output caps state: profile and level parsed from the last SPS. */
    gint profile_idc;
    gint level_idc;
    gint constraint_flags;
    gboolean need_caps;
};

G_END_DECLS

#endif
