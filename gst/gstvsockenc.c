/* vsockenc: H.264 encoding delegated to an hxfr host.
 *
 * Frames are pipelined: handle_frame() maps the input, submits it straight
 * from the mapped planes (the client writes with scatter-gather, no copy)
 * and returns; it waits only when max-in-flight frames are already out.
 * A dispatcher thread polls the client's fd and reads responses as they
 * arrive. The client callback (which runs in whichever thread is inside a
 * client call) only copies each access unit into a queue. Only the
 * dispatcher takes results off the queue and calls
 * gst_video_encoder_finish_frame(): finish_frame() drops the stream lock
 * while it pushes, so two pushing threads could reorder buffers.
 *
 * Lock order: stream lock, then client_lock, then results_lock. The
 * dispatcher never holds client_lock while it takes the stream lock, and
 * the streaming thread releases the stream lock while it waits for the
 * dispatcher (backpressure, draining), so the two cannot deadlock.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "gsthxfrutil.h"
#include "gstvsockenc.h"

GST_DEBUG_CATEGORY_STATIC(gst_hxfr_vsockenc_debug);
#define GST_CAT_DEFAULT gst_hxfr_vsockenc_debug

/* Helix's element's defaults. */
#define DEFAULT_CID               2u
#define DEFAULT_PORT              5000u
#define DEFAULT_TCP_PORT          15937u
#define DEFAULT_BITRATE           4000000
#define DEFAULT_KEYFRAME_INTERVAL 60
#define DEFAULT_MAX_IN_FLIGHT     4u
/* Below this a bitrate is almost certainly kbit/s given as bit/s. */
#define LOW_BITRATE     100000u
#define DEFAULT_USE_SHM FALSE

/* Address, reconnect and timeout are GST_HXFR_PROP_*. */
enum {
    PROP_SOCKET_PATH = GST_HXFR_PROP_LAST,
    PROP_CID,
    PROP_PORT,
    PROP_TCP_HOST,
    PROP_TCP_PORT,
    PROP_BITRATE,
    PROP_KEYFRAME_INTERVAL,
    PROP_MAX_IN_FLIGHT,
    PROP_USE_SHM,
};

#define SINK_FORMATS "{ BGRA, BGRx, RGBA, RGBx, NV12, I420 }"

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE(
    "sink", GST_PAD_SINK, GST_PAD_ALWAYS,
    GST_STATIC_CAPS("video/x-raw, format = (string) " SINK_FORMATS ", "
                    "width = (int) [ 1, 8192 ], height = (int) [ 1, 8192 ], "
                    "framerate = (fraction) [ 0/1, MAX ]"));

static GstStaticPadTemplate src_template =
    GST_STATIC_PAD_TEMPLATE("src", GST_PAD_SRC, GST_PAD_ALWAYS,
                            GST_STATIC_CAPS("video/x-h264, stream-format = (string) byte-stream, "
                                            "alignment = (string) au"));

G_DEFINE_TYPE(GstHxfrVsockEnc, gst_hxfr_vsockenc, GST_TYPE_VIDEO_ENCODER)

static void result_free(struct vsockenc_result *r)
{
    if (r->buffer) {
        gst_buffer_unref(r->buffer);
    }
    g_free(r->remote_message);
    g_free(r);
}

static void wake_dispatcher(GstHxfrVsockEnc *self)
{
    gst_hxfr_wake(self->wake_fd);
}

/* Client callback (client_lock held, any thread): copy the result into the
 * queue; the pixels of the access unit are only borrowed here. */
static void on_frame(void *user_data, const struct hxfr_client_result *res)
{
    GstHxfrVsockEnc *self = user_data;
    struct vsockenc_result *r = g_new0(struct vsockenc_result, 1);
    r->frame_number = GPOINTER_TO_UINT(res->user);
    r->status = res->status;
    r->keyframe = res->keyframe;
    if (res->status == 0 && res->size > 0) {
        r->buffer = gst_buffer_new_memdup(res->data, res->size);
    } else if (res->status == 0) {
        /* An answer without units: the host skipped the frame. */
        r->status = -ENODATA;
    } else if (res->status == -HXFR_EREMOTE) {
        r->remote_code = res->remote_code;
        r->remote_message = g_strdup(res->remote_message);
    }
    g_mutex_lock(&self->results_lock);
    g_queue_push_tail(&self->results, r);
    g_mutex_unlock(&self->results_lock);
    /* Results collected by the streaming thread (inside submit or flush)
     * are pushed by the dispatcher too. */
    wake_dispatcher(self);
}

static void on_event(void *user_data, const struct hxfr_client_event *ev)
{
    GstHxfrVsockEnc *self = user_data;
    switch (ev->type) {
    case HXFR_CLIENT_EVENT_DISCONNECTED:
        GST_WARNING_OBJECT(self, "connection to the host lost: %s", hxfr_strerror(ev->err));
        break;
    case HXFR_CLIENT_EVENT_RECONNECTED:
        GST_INFO_OBJECT(self, "reconnected after %u attempt(s); next frame is an IDR", ev->attempt);
        /* The fd changed: the dispatcher must poll the new one. */
        wake_dispatcher(self);
        break;
    case HXFR_CLIENT_EVENT_REMOTE_ERROR:
        GST_WARNING_OBJECT(self, "host error %d (%s): %s", ev->remote_code,
                           hxfr_status_name(ev->remote_code), ev->remote_message);
        break;
    }
}

/* Sets a sticky flow return unless an error is already recorded. */
static void set_flow(GstHxfrVsockEnc *self, GstFlowReturn ret)
{
    gint old = g_atomic_int_get(&self->flow);
    if (old == GST_FLOW_OK || (old == GST_FLOW_FLUSHING && ret < GST_FLOW_FLUSHING)) {
        g_atomic_int_set(&self->flow, ret);
    }
}

/* Updates the output caps from the SPS of a keyframe when the profile or
 * level differs from what downstream was told. Stream lock held. */
static void update_caps_from_sps(GstHxfrVsockEnc *self, GstBuffer *buf)
{
    GstMapInfo map;
    if (!gst_buffer_map(buf, &map, GST_MAP_READ)) {
        return;
    }
    struct hxfr_sps_info sps;
    gboolean found = gst_hxfr_find_sps(map.data, map.size, &sps);
    gst_buffer_unmap(buf, &map);
    if (!found) {
        GST_WARNING_OBJECT(self, "keyframe without an in-band SPS");
        return;
    }
    if (!self->need_caps && sps.profile_idc == self->profile_idc &&
        sps.level_idc == self->level_idc && sps.constraint_flags == self->constraint_flags) {
        return;
    }
    self->profile_idc = sps.profile_idc;
    self->level_idc = sps.level_idc;
    self->constraint_flags = sps.constraint_flags;
    self->need_caps = FALSE;
    GstCaps *caps = gst_caps_new_simple("video/x-h264", "stream-format", G_TYPE_STRING,
                                        "byte-stream", "alignment", G_TYPE_STRING, "au", NULL);
    gchar level[8];
    const gchar *profile = gst_hxfr_profile_name(&sps);
    if (profile) {
        gst_caps_set_simple(caps, "profile", G_TYPE_STRING, profile, NULL);
    }
    if (gst_hxfr_level_name(&sps, level, sizeof(level))) {
        gst_caps_set_simple(caps, "level", G_TYPE_STRING, level, NULL);
    }
    gchar *str = gst_caps_to_string(caps);
    GST_DEBUG_OBJECT(self, "host stream: profile_idc %d level_idc %d -> %s", sps.profile_idc,
                     sps.level_idc, str);
    g_free(str);
    /* finish_frame() negotiates the new output state before it pushes. */
    GstVideoCodecState *out =
        gst_video_encoder_set_output_state(GST_VIDEO_ENCODER(self), caps, self->input_state);
    gst_video_codec_state_unref(out);
}

/* Dispatcher only: finishes every queued result in order under the
 * stream lock. Must not be called with client_lock held. */
static void push_results(GstHxfrVsockEnc *self)
{
    GstVideoEncoder *enc = GST_VIDEO_ENCODER(self);
    GST_VIDEO_ENCODER_STREAM_LOCK(enc);
    for (;;) {
        g_mutex_lock(&self->results_lock);
        struct vsockenc_result *r = g_queue_pop_head(&self->results);
        self->pushing = r != NULL;
        g_mutex_unlock(&self->results_lock);
        if (!r) {
            break;
        }
        GstVideoCodecFrame *frame = gst_video_encoder_get_frame(enc, (int)r->frame_number);
        if (!frame) {
            /* Flushed meanwhile: nobody waits for it any more. */
            result_free(r);
            continue;
        }
        if (g_atomic_int_get(&self->flow) == GST_FLOW_ERROR) {
            /* After an error nothing more goes downstream. */
            gst_video_encoder_finish_frame(enc, frame);
        } else if (r->status == 0) {
            if (r->keyframe) {
                GST_VIDEO_CODEC_FRAME_SET_SYNC_POINT(frame);
                update_caps_from_sps(self, r->buffer);
            }
            frame->output_buffer = r->buffer;
            r->buffer = NULL;
            GstFlowReturn ret = gst_video_encoder_finish_frame(enc, frame);
            if (ret != GST_FLOW_OK) {
                GST_DEBUG_OBJECT(self, "push returned %s", gst_flow_get_name(ret));
                set_flow(self, ret);
            }
        } else if (r->status == -HXFR_EREMOTE) {
            GST_ELEMENT_ERROR(self, STREAM, ENCODE,
                              ("The host failed to encode a frame: %s (host error %d, %s)",
                               r->remote_message, r->remote_code, hxfr_status_name(r->remote_code)),
                              ("ERROR from the host for frame %u: code %d (%s), message \"%s\"",
                               r->frame_number, r->remote_code, hxfr_status_name(r->remote_code),
                               r->remote_message));
            set_flow(self, GST_FLOW_ERROR);
            gst_video_encoder_finish_frame(enc, frame); /* dropped: no output */
        } else if (r->status == -ENODATA) {
            GST_WARNING_OBJECT(self, "frame %u: the host returned no units; dropped",
                               r->frame_number);
            gst_video_encoder_finish_frame(enc, frame);
        } else if (self->conn.reconnect) {
            GST_WARNING_OBJECT(self, "frame %u lost with the connection (%s); reconnecting",
                               r->frame_number, hxfr_strerror(r->status));
            gst_video_encoder_finish_frame(enc, frame);
        } else {
            GST_ELEMENT_ERROR(
                self, RESOURCE, READ,
                ("Lost the connection to the hxfr host: %s", hxfr_strerror(r->status)),
                ("frame %u failed with %d; set reconnect=true to reconnect", r->frame_number,
                 r->status));
            set_flow(self, GST_FLOW_ERROR);
            gst_video_encoder_finish_frame(enc, frame);
        }
        result_free(r);
        g_mutex_lock(&self->results_lock);
        self->pushing = FALSE;
        g_cond_broadcast(&self->results_cond);
        g_mutex_unlock(&self->results_lock);
    }
    GST_VIDEO_ENCODER_STREAM_UNLOCK(enc);
}

/* Streaming thread, stream lock held: waits (with the stream lock
 * released, so the dispatcher can push) until at most `limit` results are
 * waiting to be pushed. Bounded by the host timeout. */
static void wait_pushed(GstHxfrVsockEnc *self, guint limit)
{
    GstVideoEncoder *enc = GST_VIDEO_ENCODER(self);
    gint64 deadline = g_get_monotonic_time() + (gint64)self->conn.io_timeout_ms * 1000;
    g_mutex_lock(&self->results_lock);
    if (g_queue_get_length(&self->results) + (self->pushing ? 1u : 0u) <= limit) {
        g_mutex_unlock(&self->results_lock);
        return;
    }
    GST_VIDEO_ENCODER_STREAM_UNLOCK(enc);
    while (g_queue_get_length(&self->results) + (self->pushing ? 1u : 0u) > limit &&
           !g_atomic_int_get(&self->stopping)) {
        if (!g_cond_wait_until(&self->results_cond, &self->results_lock, deadline)) {
            GST_WARNING_OBJECT(self, "results not pushed within %u ms", self->conn.io_timeout_ms);
            break;
        }
    }
    g_mutex_unlock(&self->results_lock);
    GST_VIDEO_ENCODER_STREAM_LOCK(enc);
}

static gpointer dispatch_loop(gpointer data)
{
    GstHxfrVsockEnc *self = data;
    while (!g_atomic_int_get(&self->stopping)) {
        g_mutex_lock(&self->client_lock);
        int fd = hxfr_client_fd(self->client);
        g_mutex_unlock(&self->client_lock);
        int n = gst_hxfr_poll(self->wake_fd, fd, -1);
        if (n == -EINTR) {
            continue;
        }
        if (n < 0) {
            GST_ERROR_OBJECT(self, "poll failed: %s", g_strerror(-n));
            break;
        }
        if (n > 0) {
            g_mutex_lock(&self->client_lock);
            /* The streaming thread may have reconnected meanwhile: only
             * dispatch on the connection that was polled. */
            if (hxfr_client_fd(self->client) == fd) {
                int r = hxfr_client_dispatch(self->client, 0);
                if (r < 0) {
                    GST_DEBUG_OBJECT(self, "dispatch: %s", hxfr_strerror(r));
                }
            }
            g_mutex_unlock(&self->client_lock);
        }
        push_results(self);
    }
    return NULL;
}

static gboolean gst_hxfr_vsockenc_start(GstVideoEncoder *enc)
{
    GstHxfrVsockEnc *self = GST_HXFR_VSOCKENC(enc);
    struct hxfr_client_options o;
    hxfr_client_options_init(&o);

    GST_OBJECT_LOCK(self);
    gchar *address = g_strdup(self->conn.address);
    o.window = self->max_in_flight;
    o.reconnect = self->conn.reconnect;
    o.io_timeout_ms = (int)self->conn.io_timeout_ms;
    gboolean use_shm = self->use_shm;
    GST_OBJECT_UNLOCK(self);
    o.on_frame = on_frame;
    o.on_event = on_event;
    o.user_data = self;

    gboolean ok = FALSE;
    self->shm_active = FALSE;
    if (use_shm && !gst_hxfr_address_is_unix(address)) {
        /* A configuration mistake, reported before any connection: the
         * memfd of the ring can only travel over a UNIX socket. */
        GST_ELEMENT_ERROR(self, RESOURCE, SETTINGS,
                          ("use-shm needs a unix: address, not %s", address),
                          ("shared-memory frames pass a sealed memfd with SCM_RIGHTS, which only "
                           "a UNIX socket carries; set address=unix:PATH or use-shm=false"));
        goto out;
    }
    struct hxfr_client *client =
        gst_hxfr_client_open(GST_ELEMENT(self), &o, address, GST_RESOURCE_ERROR_OPEN_READ_WRITE);
    if (!client) {
        goto out;
    }
    GST_INFO_OBJECT(self, "connected to %s (host caps 0x%x)", hxfr_client_uri(client),
                    hxfr_client_server_caps(client));
    self->wake_fd = gst_hxfr_wake_open(GST_ELEMENT(self));
    if (self->wake_fd < 0) {
        hxfr_client_destroy(client);
        goto out;
    }
    self->client = client;
    self->configured = FALSE;
    self->need_caps = TRUE;
    self->profile_idc = self->level_idc = self->constraint_flags = 0;
    g_atomic_int_set(&self->flow, GST_FLOW_OK);
    g_atomic_int_set(&self->stopping, 0);
    GError *err = NULL;
    self->dispatcher = g_thread_try_new("vsockenc-dispatch", dispatch_loop, self, &err);
    if (!self->dispatcher) {
        GST_ELEMENT_ERROR(self, RESOURCE, FAILED, ("Cannot start the dispatcher thread"),
                          ("%s", err->message));
        g_clear_error(&err);
        hxfr_client_destroy(self->client);
        self->client = NULL;
        gst_hxfr_wake_close(&self->wake_fd);
        goto out;
    }
    ok = TRUE;
out:
    g_free(address);
    return ok;
}

static void drop_results(GstHxfrVsockEnc *self)
{
    g_mutex_lock(&self->results_lock);
    struct vsockenc_result *r;
    while ((r = g_queue_pop_head(&self->results))) {
        result_free(r);
    }
    g_mutex_unlock(&self->results_lock);
}

static gboolean gst_hxfr_vsockenc_stop(GstVideoEncoder *enc)
{
    GstHxfrVsockEnc *self = GST_HXFR_VSOCKENC(enc);
    if (self->dispatcher) {
        g_atomic_int_set(&self->stopping, 1);
        g_mutex_lock(&self->results_lock);
        g_cond_broadcast(&self->results_cond);
        g_mutex_unlock(&self->results_lock);
        wake_dispatcher(self);
        g_thread_join(self->dispatcher);
        self->dispatcher = NULL;
    }
    g_mutex_lock(&self->client_lock);
    hxfr_client_destroy(self->client);
    self->client = NULL;
    g_mutex_unlock(&self->client_lock);
    drop_results(self);
    gst_hxfr_wake_close(&self->wake_fd);
    g_clear_pointer(&self->input_state, gst_video_codec_state_unref);
    return TRUE;
}

/* Reports a failed client call as an element error. */
static void post_client_error(GstHxfrVsockEnc *self, int r, const char *what)
{
    if (r == -HXFR_EREMOTE) {
        const char *msg = "";
        g_mutex_lock(&self->client_lock);
        int32_t code = hxfr_client_last_remote_error(self->client, &msg);
        gchar *m = g_strdup(msg);
        g_mutex_unlock(&self->client_lock);
        GST_ELEMENT_ERROR(
            self, STREAM, ENCODE,
            ("The host refused %s: %s (host error %d, %s)", what, m, code, hxfr_status_name(code)),
            ("ERROR from the host: code %d (%s), message \"%s\"", code, hxfr_status_name(code), m));
        g_free(m);
    } else if (r <= -HXFR_EBASE && r > -HXFR_EREMOTE) {
        GST_ELEMENT_ERROR(self, STREAM, FORMAT, ("Cannot send %s: %s", what, hxfr_strerror(r)),
                          ("client error %d", r));
    } else {
        GST_ELEMENT_ERROR(self, RESOURCE, WRITE,
                          ("Cannot send %s to the hxfr host: %s", what, hxfr_strerror(r)),
                          ("client error %d%s", r,
                           self->conn.reconnect ? "" : "; set reconnect=true to reconnect"));
    }
}

/* Waits for every frame in flight and for the dispatcher to push them.
 * Stream lock held (released while waiting). */
static int drain(GstHxfrVsockEnc *self)
{
    g_mutex_lock(&self->client_lock);
    int r = hxfr_client_in_flight(self->client) > 0
                ? hxfr_client_flush(self->client, (int)self->conn.io_timeout_ms)
                : 0;
    g_mutex_unlock(&self->client_lock);
    wait_pushed(self, 0);
    return r;
}

/* use-shm: creates and attaches a ring for the negotiated caps (one slot
 * per frame in flight, each the size of one frame at the tight stride),
 * replacing the ring of earlier caps. A host that refuses shared memory
 * gets a warning and inline frames. Returns FALSE after posting an
 * element error. Streaming thread, stream lock held. */
static gboolean setup_ring(GstHxfrVsockEnc *self, const GstVideoInfo *info, guint window)
{
    guint32 format = gst_hxfr_format_from_video(GST_VIDEO_INFO_FORMAT(info));
    uint32_t width = (uint32_t)GST_VIDEO_INFO_WIDTH(info);
    uint32_t height = (uint32_t)GST_VIDEO_INFO_HEIGHT(info);
    struct hxfr_geometry g;
    int r =
        hxfr_geometry_compute(format, width, height, hxfr_format_min_stride(format, width), 0, &g);
    if (r < 0) {
        post_client_error(self, r, "the shared-memory frame layout");
        return FALSE;
    }
    g_mutex_lock(&self->client_lock);
    r = hxfr_client_shm_create(self->client, window, g.size);
    const char *msg = "";
    int32_t code = hxfr_client_last_remote_error(self->client, &msg);
    gchar *text = g_strdup(msg);
    g_mutex_unlock(&self->client_lock);
    /* Creating the ring completes the frames in flight first. */
    wait_pushed(self, 0);
    gboolean ok = TRUE;
    if (r == -HXFR_EREMOTE) {
        GST_ELEMENT_WARNING(
            self, RESOURCE, SETTINGS,
            ("The hxfr host refused shared-memory frames (%s); sending frames "
             "inline",
             text),
            ("SHM_ATTACH answered with host error %d (%s)", code, hxfr_status_name(code)));
    } else if (r < 0) {
        post_client_error(self, r, "the shared-memory ring");
        ok = FALSE;
    } else {
        self->shm_geom = g;
        self->shm_active = TRUE;
        GST_INFO_OBJECT(self, "shared-memory ring: %u slots of %" G_GUINT64_FORMAT " bytes", window,
                        (guint64)g.size);
    }
    g_free(text);
    return ok;
}

/* Copies the mapped frame into a slot laid out as g says: plane i at
 * g->offset[i], rows g->stride[i] bytes apart (the tight row size, never
 * more than the frame's own stride). */
static void copy_to_slot(const GstVideoFrame *vf, const struct hxfr_geometry *g, guint8 *slot)
{
    for (guint i = 0; i < g->num_planes; i++) {
        const guint8 *src = GST_VIDEO_FRAME_PLANE_DATA(vf, i);
        gsize src_stride = (gsize)GST_VIDEO_FRAME_PLANE_STRIDE(vf, i);
        guint8 *dst = slot + g->offset[i];
        if (src_stride == g->stride[i]) {
            memcpy(dst, src, (gsize)g->plane_size[i]);
            continue;
        }
        for (guint32 y = 0; y < g->plane_height[i]; y++) {
            memcpy(dst + (gsize)y * g->stride[i], src + (gsize)y * src_stride, g->stride[i]);
        }
    }
}

static gboolean is_connection_error(int r);

/* use-shm: takes a free slot (waiting for the host to give one back),
 * copies the frame into it and submits the slot. The copy runs without
 * client_lock: an acquired slot is the element's alone, and the dispatcher
 * keeps delivering results meanwhile. Returns as hxfr_client_shm_submit. */
static int submit_shm(GstHxfrVsockEnc *self, const GstVideoFrame *vf, struct hxfr_client_frame *f)
{
    struct hxfr_client_slot slot;
    g_mutex_lock(&self->client_lock);
    int r = hxfr_client_shm_acquire(self->client, (int)self->conn.io_timeout_ms, &slot);
    g_mutex_unlock(&self->client_lock);
    if (r < 0) {
        return r;
    }
    copy_to_slot(vf, &self->shm_geom, slot.data);
    f->strides[0] = self->shm_geom.stride[0];
    g_mutex_lock(&self->client_lock);
    r = hxfr_client_shm_submit(self->client, slot.index, f, (int)self->conn.io_timeout_ms);
    if (r < 0 && self->conn.reconnect && is_connection_error(r)) {
        /* Not accepted; the retry reconnects, attaches the ring again and
         * makes this frame an IDR. The slot is still ours. */
        r = hxfr_client_shm_submit(self->client, slot.index, f, (int)self->conn.io_timeout_ms);
    }
    if (r < 0) {
        hxfr_client_shm_cancel(self->client, slot.index);
    }
    g_mutex_unlock(&self->client_lock);
    return r;
}

static gboolean gst_hxfr_vsockenc_set_format(GstVideoEncoder *enc, GstVideoCodecState *state)
{
    GstHxfrVsockEnc *self = GST_HXFR_VSOCKENC(enc);
    const GstVideoInfo *info = &state->info;

    if (gst_hxfr_format_from_video(GST_VIDEO_INFO_FORMAT(info)) == 0) {
        GST_ELEMENT_ERROR(self, STREAM, FORMAT,
                          ("Unsupported input format %s", GST_VIDEO_INFO_NAME(info)), (NULL));
        return FALSE;
    }
    if (self->configured) {
        /* Renegotiation: everything sent at the old size comes back first. */
        int r = drain(self);
        if (r < 0) {
            GST_WARNING_OBJECT(self, "draining before reconfiguring: %s", hxfr_strerror(r));
        }
    }
    GST_OBJECT_LOCK(self);
    struct hxfr_client_config cfg = {
        .width = (uint32_t)GST_VIDEO_INFO_WIDTH(info),
        .height = (uint32_t)GST_VIDEO_INFO_HEIGHT(info),
        .bitrate = (uint32_t)self->bitrate,
        .framerate_num = (uint32_t)MAX(GST_VIDEO_INFO_FPS_N(info), 0),
        .framerate_den = (uint32_t)MAX(GST_VIDEO_INFO_FPS_D(info), 0),
        .realtime = true,
        .gop = (uint32_t)self->keyframe_interval,
    };
    guint window = self->max_in_flight;
    gboolean use_shm = self->use_shm;
    GST_OBJECT_UNLOCK(self);
    if (cfg.framerate_num == 0) {
        cfg.framerate_den = 0;
    }
    if (cfg.bitrate > 0 && cfg.bitrate < LOW_BITRATE) {
        /* Helix's own pipeline passes its kbit/s setting here, which
         * Helix's element never sent anywhere; sent as it is, it caps the
         * stream at a few kbit/s. */
        GST_ELEMENT_WARNING(self, LIBRARY, SETTINGS,
                            ("bitrate=%u is in bit/s: %u bit/s is far too low for video; for "
                             "%u kbit/s set bitrate=%u (or 0 for the host's default)",
                             cfg.bitrate, cfg.bitrate, cfg.bitrate, cfg.bitrate * 1000u),
                            ("bitrate below %u bit/s", LOW_BITRATE));
    }
    struct hxfr_config_resp resp;
    memset(&resp, 0, sizeof(resp));
    g_mutex_lock(&self->client_lock);
    int r = hxfr_client_configure(self->client, &cfg, &resp);
    g_mutex_unlock(&self->client_lock);
    wait_pushed(self, 0);
    if (r < 0) {
        post_client_error(self, r, "the encoder configuration");
        return FALSE;
    }
    GST_INFO_OBJECT(self, "host encoder %s: %ux%u, %u bit/s, gop %u", resp.encoder, resp.width,
                    resp.height, resp.bitrate, resp.gop);
    self->frames_since_config = 0;
    self->shm_active = FALSE;
    if (use_shm && !setup_ring(self, info, window)) {
        return FALSE;
    }
    self->configured = TRUE;
    g_clear_pointer(&self->input_state, gst_video_codec_state_unref);
    self->input_state = gst_video_codec_state_ref(state);
    self->need_caps = TRUE;

    GstCaps *caps = gst_caps_new_simple("video/x-h264", "stream-format", G_TYPE_STRING,
                                        "byte-stream", "alignment", G_TYPE_STRING, "au", NULL);
    GstVideoCodecState *out = gst_video_encoder_set_output_state(enc, caps, state);
    gst_video_codec_state_unref(out);

    /* Up to max-in-flight frames are inside the host at any time. */
    GstClockTime latency = 0;
    if (GST_VIDEO_INFO_FPS_N(info) > 0) {
        latency = gst_util_uint64_scale(window * GST_SECOND, GST_VIDEO_INFO_FPS_D(info),
                                        GST_VIDEO_INFO_FPS_N(info));
    }
    gst_video_encoder_set_latency(enc, latency, latency);
    return TRUE;
}

/* TRUE when this frame must be an IDR because the host cannot take the
 * keyframe interval from CONFIG_REQ (no CAP_CONFIG_GOP: a v1 host, which
 * reads those bytes as reserved): then, like Helix's element, every
 * keyframe-interval-th frame since the configuration is requested as a
 * keyframe. Streaming thread. */
static gboolean interval_keyframe(GstHxfrVsockEnc *self)
{
    GST_OBJECT_LOCK(self);
    guint64 interval = self->keyframe_interval > 0 ? (guint64)self->keyframe_interval : 0;
    GST_OBJECT_UNLOCK(self);
    g_mutex_lock(&self->client_lock);
    gboolean host_gop = (hxfr_client_server_caps(self->client) & HXFR_CAP_CONFIG_GOP) != 0;
    g_mutex_unlock(&self->client_lock);
    guint64 n = self->frames_since_config++;
    return !host_gop && interval > 0 && n % interval == 0;
}

static gboolean is_connection_error(int r)
{
    return r == -EPIPE || r == -ECONNRESET || r == -ENOTCONN || r == -ETIMEDOUT ||
           r == -ECONNREFUSED || r == -ENOENT || r == -EIO;
}

static GstFlowReturn gst_hxfr_vsockenc_handle_frame(GstVideoEncoder *enc, GstVideoCodecFrame *frame)
{
    GstHxfrVsockEnc *self = GST_HXFR_VSOCKENC(enc);
    /* Backpressure: never let more than a window of finished frames wait
     * for the dispatcher. */
    wait_pushed(self, self->max_in_flight);
    GstFlowReturn ret = g_atomic_int_get(&self->flow);
    if (ret != GST_FLOW_OK) {
        gst_video_encoder_finish_frame(enc, frame);
        return ret;
    }
    if (!self->input_state) {
        gst_video_encoder_finish_frame(enc, frame);
        return GST_FLOW_NOT_NEGOTIATED;
    }
    const GstVideoInfo *info = &self->input_state->info;
    /* Counted for every frame, also one upstream asked to be a keyframe. */
    gboolean interval_idr = interval_keyframe(self);
    struct hxfr_client_frame f = {
        .format = gst_hxfr_format_from_video(GST_VIDEO_INFO_FORMAT(info)),
        .width = (uint32_t)GST_VIDEO_INFO_WIDTH(info),
        .height = (uint32_t)GST_VIDEO_INFO_HEIGHT(info),
        .pts = GST_CLOCK_TIME_IS_VALID(frame->pts) ? (int64_t)frame->pts : 0,
        .duration = GST_CLOCK_TIME_IS_VALID(frame->duration) ? (int64_t)frame->duration : 0,
        .force_keyframe = GST_VIDEO_CODEC_FRAME_IS_FORCE_KEYFRAME(frame) || interval_idr,
        .user = GUINT_TO_POINTER(frame->system_frame_number),
    };
    if (f.force_keyframe) {
        GST_DEBUG_OBJECT(self, "frame %u: keyframe requested", frame->system_frame_number);
    }
    /* How the pixels travel is decided here, before the buffer is mapped:
     * inline on the socket, or copied into a shared-memory slot. A frame
     * the host can read by itself (a DMA-BUF named by its virtio-gpu
     * resource id, issue #13) would be a third way that maps nothing. */
    GstVideoFrame vf;
    if (!gst_video_frame_map(&vf, info, frame->input_buffer, GST_MAP_READ)) {
        GST_ELEMENT_ERROR(self, STREAM, ENCODE, ("Cannot map the input frame"), (NULL));
        gst_video_encoder_finish_frame(enc, frame);
        return GST_FLOW_ERROR;
    }
    int r;
    if (self->shm_active) {
        r = submit_shm(self, &vf, &f);
    } else {
        for (guint i = 0; i < GST_VIDEO_FRAME_N_PLANES(&vf) && i < 3; i++) {
            f.planes[i] = GST_VIDEO_FRAME_PLANE_DATA(&vf, i);
            f.strides[i] = (uint32_t)GST_VIDEO_FRAME_PLANE_STRIDE(&vf, i);
        }
        /* The wait for window room is bounded: a host that stops answering
         * fails the stream instead of hanging it. */
        g_mutex_lock(&self->client_lock);
        r = hxfr_client_submit(self->client, &f, (int)self->conn.io_timeout_ms);
        if (r < 0 && self->conn.reconnect && is_connection_error(r)) {
            /* The frame was not accepted; the retry reconnects first and
             * makes this frame an IDR. */
            r = hxfr_client_submit(self->client, &f, (int)self->conn.io_timeout_ms);
        }
        g_mutex_unlock(&self->client_lock);
    }
    gst_video_frame_unmap(&vf);

    if (r < 0) {
        /* Frames answered before this failure still go out first. */
        wait_pushed(self, 0);
        if (r == -EAGAIN) {
            GST_ELEMENT_ERROR(
                self, RESOURCE, READ,
                ("The hxfr host did not answer within %u ms", self->conn.io_timeout_ms),
                ("%u frames in flight", self->max_in_flight));
        } else {
            post_client_error(self, r, "a frame");
        }
        set_flow(self, GST_FLOW_ERROR);
        gst_video_encoder_finish_frame(enc, frame);
        return GST_FLOW_ERROR;
    }
    gst_video_codec_frame_unref(frame);
    return g_atomic_int_get(&self->flow);
}

static GstFlowReturn gst_hxfr_vsockenc_finish(GstVideoEncoder *enc)
{
    GstHxfrVsockEnc *self = GST_HXFR_VSOCKENC(enc);
    if (!self->client) {
        return GST_FLOW_OK;
    }
    int r = drain(self);
    GstFlowReturn ret = g_atomic_int_get(&self->flow);
    if (r < 0 && ret == GST_FLOW_OK && !self->conn.reconnect) {
        GST_ELEMENT_ERROR(self, RESOURCE, READ,
                          ("Draining the frames in flight failed: %s", hxfr_strerror(r)), (NULL));
        ret = GST_FLOW_ERROR;
    }
    return ret;
}

static gboolean gst_hxfr_vsockenc_flush(GstVideoEncoder *enc)
{
    GstHxfrVsockEnc *self = GST_HXFR_VSOCKENC(enc);
    if (self->client) {
        g_mutex_lock(&self->client_lock);
        if (hxfr_client_in_flight(self->client) > 0) {
            hxfr_client_flush(self->client, (int)self->conn.io_timeout_ms);
        }
        g_mutex_unlock(&self->client_lock);
    }
    drop_results(self);
    g_atomic_int_set(&self->flow, GST_FLOW_OK);
    return TRUE;
}

static gboolean gst_hxfr_vsockenc_propose_allocation(GstVideoEncoder *enc, GstQuery *query)
{
    /* Strided and offset planes are sent as they are. */
    gst_query_add_allocation_meta(query, GST_VIDEO_META_API_TYPE, NULL);
    return GST_VIDEO_ENCODER_CLASS(gst_hxfr_vsockenc_parent_class)->propose_allocation(enc, query);
}

/* The address Helix's connection properties name, with Helix's
 * precedence: socket-path, else tcp-host (with tcp-port), else vsock
 * cid:port. An empty string counts as unset. An IPv6 literal in tcp-host
 * gets the brackets the tcp: URI needs. Object lock held. */
static gchar *helix_address(const GstHxfrVsockEnc *self)
{
    if (self->socket_path && *self->socket_path) {
        return g_strdup_printf("unix:%s", self->socket_path);
    }
    if (self->tcp_host && *self->tcp_host) {
        gboolean v6 = strchr(self->tcp_host, ':') && self->tcp_host[0] != '[';
        return g_strdup_printf(v6 ? "tcp:[%s]:%u" : "tcp:%s:%u", self->tcp_host, self->tcp_port);
    }
    return g_strdup_printf("vsock:%u:%u", self->cid, self->port);
}

static void gst_hxfr_vsockenc_set_property(GObject *object, guint prop_id, const GValue *value,
                                           GParamSpec *pspec)
{
    GstHxfrVsockEnc *self = GST_HXFR_VSOCKENC(object);
    GST_OBJECT_LOCK(self);
    if (gst_hxfr_conn_props_set(&self->conn, prop_id, value)) {
        GST_OBJECT_UNLOCK(self);
        return;
    }
    /* Writing address or one of Helix's connection properties: whichever
     * was written last decides where start connects. */
    gboolean helix_conn = TRUE;
    switch (prop_id) {
    case PROP_SOCKET_PATH:
        g_free(self->socket_path);
        self->socket_path = g_value_dup_string(value);
        break;
    case PROP_TCP_HOST:
        g_free(self->tcp_host);
        self->tcp_host = g_value_dup_string(value);
        break;
    case PROP_TCP_PORT:
        self->tcp_port = g_value_get_uint(value);
        break;
    case PROP_CID:
        self->cid = g_value_get_uint(value);
        break;
    case PROP_PORT:
        self->port = g_value_get_uint(value);
        break;
    default:
        helix_conn = FALSE;
        break;
    }
    if (helix_conn) {
        gst_hxfr_conn_props_set_address(&self->conn, helix_address(self));
        GST_OBJECT_UNLOCK(self);
        return;
    }
    switch (prop_id) {
    case PROP_BITRATE:
        self->bitrate = g_value_get_int(value);
        break;
    case PROP_KEYFRAME_INTERVAL:
        self->keyframe_interval = g_value_get_int(value);
        break;
    case PROP_MAX_IN_FLIGHT:
        self->max_in_flight = g_value_get_uint(value);
        break;
    case PROP_USE_SHM:
        self->use_shm = g_value_get_boolean(value);
        break;
    default:
        G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
        break;
    }
    GST_OBJECT_UNLOCK(self);
}

static void gst_hxfr_vsockenc_get_property(GObject *object, guint prop_id, GValue *value,
                                           GParamSpec *pspec)
{
    GstHxfrVsockEnc *self = GST_HXFR_VSOCKENC(object);
    GST_OBJECT_LOCK(self);
    if (!gst_hxfr_conn_props_get(&self->conn, prop_id, value)) {
        switch (prop_id) {
        case PROP_SOCKET_PATH:
            g_value_set_string(value, self->socket_path);
            break;
        case PROP_TCP_HOST:
            g_value_set_string(value, self->tcp_host);
            break;
        case PROP_TCP_PORT:
            g_value_set_uint(value, self->tcp_port);
            break;
        case PROP_CID:
            g_value_set_uint(value, self->cid);
            break;
        case PROP_PORT:
            g_value_set_uint(value, self->port);
            break;
        case PROP_BITRATE:
            g_value_set_int(value, self->bitrate);
            break;
        case PROP_KEYFRAME_INTERVAL:
            g_value_set_int(value, self->keyframe_interval);
            break;
        case PROP_MAX_IN_FLIGHT:
            g_value_set_uint(value, self->max_in_flight);
            break;
        case PROP_USE_SHM:
            g_value_set_boolean(value, self->use_shm);
            break;
        default:
            G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
            break;
        }
    }
    GST_OBJECT_UNLOCK(self);
}

static void gst_hxfr_vsockenc_finalize(GObject *object)
{
    GstHxfrVsockEnc *self = GST_HXFR_VSOCKENC(object);
    gst_hxfr_conn_props_finish(&self->conn);
    g_free(self->socket_path);
    g_free(self->tcp_host);
    g_mutex_clear(&self->client_lock);
    g_mutex_clear(&self->results_lock);
    g_cond_clear(&self->results_cond);
    G_OBJECT_CLASS(gst_hxfr_vsockenc_parent_class)->finalize(object);
}

static void gst_hxfr_vsockenc_class_init(GstHxfrVsockEncClass *klass)
{
    GObjectClass *gobject_class = G_OBJECT_CLASS(klass);
    GstElementClass *element_class = GST_ELEMENT_CLASS(klass);
    GstVideoEncoderClass *venc_class = GST_VIDEO_ENCODER_CLASS(klass);

    gobject_class->set_property = gst_hxfr_vsockenc_set_property;
    gobject_class->get_property = gst_hxfr_vsockenc_get_property;
    gobject_class->finalize = gst_hxfr_vsockenc_finalize;

    const GParamFlags rw = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY;
    gst_hxfr_conn_props_install(
        gobject_class,
        "Where the hxfr host listens: unix:PATH (UNIX socket), vsock:CID:PORT "
        "(AF_VSOCK; the host is CID 2), tcp:HOST:PORT (e.g. tcp:10.0.2.2:15937 "
        "under QEMU user networking) or serial:PATH (virtio-serial port). "
        "Default: vsock:2:5000",
        "When the connection to the host is lost, reconnect (up to 10 attempts "
        "with backoff from 50 ms to 2 s), send the configuration again and resume "
        "with an IDR; the frames in flight are dropped. When false a lost "
        "connection is an element error. Default: false",
        "Milliseconds to wait for the host to accept data or answer (configuration, "
        "window room, draining at EOS) before failing with an element error. "
        "Default: 5000");
    /* Helix's element's properties, with its names, types, defaults and
     * meaning. Each write rebuilds address (see helix_address). */
    g_object_class_install_property(
        gobject_class, PROP_SOCKET_PATH,
        g_param_spec_string("socket-path", "UNIX socket path",
                            "As in Helix's element: connect to the UNIX socket at this path. "
                            "Takes precedence over tcp-host and cid/port; writing it sets "
                            "address to unix:PATH (empty: unset). Default: NULL",
                            NULL, rw));
    g_object_class_install_property(
        gobject_class, PROP_TCP_HOST,
        g_param_spec_string("tcp-host", "TCP host",
                            "As in Helix's element: connect over TCP to this host (an address "
                            "such as 10.0.2.2 under QEMU user networking, or a name such as "
                            "localhost) at tcp-port, unless socket-path is set. Writing it or "
                            "tcp-port sets address to tcp:HOST:PORT (empty: unset). Default: NULL",
                            NULL, rw));
    g_object_class_install_property(
        gobject_class, PROP_TCP_PORT,
        g_param_spec_uint("tcp-port", "TCP port",
                          "As in Helix's element: the TCP port for tcp-host (a port outside "
                          "1..65535 fails the start). Default: 15937",
                          0, G_MAXUINT, DEFAULT_TCP_PORT, rw));
    g_object_class_install_property(
        gobject_class, PROP_CID,
        g_param_spec_uint("cid", "vsock CID",
                          "As in Helix's element: the AF_VSOCK context id to connect to (2 is "
                          "the host) when neither socket-path nor tcp-host is set; writing it "
                          "sets address to vsock:CID:PORT. Default: 2",
                          0, G_MAXUINT, DEFAULT_CID, rw));
    g_object_class_install_property(
        gobject_class, PROP_PORT,
        g_param_spec_uint("port", "vsock port",
                          "As in Helix's element: the AF_VSOCK port; writing it sets address "
                          "to vsock:CID:PORT. Default: 5000",
                          0, G_MAXUINT, DEFAULT_PORT, rw));
    g_object_class_install_property(
        gobject_class, PROP_BITRATE,
        g_param_spec_int("bitrate", "Bitrate",
                         "Target bitrate in bit/s, sent to the host in CONFIG_REQ (0 = the "
                         "host's default). Helix's element ignored it; a value below 100000 "
                         "gets a warning (Helix passes kbit/s here). Default: 4000000",
                         0, G_MAXINT, DEFAULT_BITRATE, rw));
    g_object_class_install_property(
        gobject_class, PROP_KEYFRAME_INTERVAL,
        g_param_spec_int("keyframe-interval", "Keyframe interval",
                         "Frames from one IDR to the next (0 = the host's default). Sent to "
                         "the host in CONFIG_REQ (keyframe interval extension); a host "
                         "without it gets a keyframe request every that many frames, as "
                         "Helix's element sends. Default: 60",
                         0, G_MAXINT, DEFAULT_KEYFRAME_INTERVAL, rw));
    g_object_class_install_property(
        gobject_class, PROP_MAX_IN_FLIGHT,
        g_param_spec_uint(
            "max-in-flight", "Frames in flight",
            "Frames submitted to the host before waiting for the oldest answer "
            "(pipelining depth, 1 = stop-and-wait). The reported latency is this many "
            "frame durations. Default: 4",
            1, HXFR_CLIENT_MAX_WINDOW, DEFAULT_MAX_IN_FLIGHT, rw));
    g_object_class_install_property(
        gobject_class, PROP_USE_SHM,
        g_param_spec_boolean(
            "use-shm", "Shared-memory frames",
            "Send frames through a shared-memory ring instead of on the socket: a sealed "
            "memfd with one slot per frame in flight (max-in-flight slots of one frame "
            "each, created again when the caps change) is passed to the host, which "
            "encodes straight from the slot without copying the pixels; the element copies "
            "each frame into a slot once. Needs a unix: address (any other address fails "
            "the start with an error); a host that refuses shared memory gets a warning "
            "and frames go inline. Default: false",
            DEFAULT_USE_SHM, rw));

    gst_element_class_add_static_pad_template(element_class, &sink_template);
    gst_element_class_add_static_pad_template(element_class, &src_template);
    gst_element_class_set_static_metadata(
        element_class, "hxfr host H.264 encoder", "Codec/Encoder/Video",
        "Encodes raw video to H.264 on the host: sends each frame over UNIX, vsock, "
        "TCP or serial to an hxfr host (hxfrd, HXFR protocol) with several frames in "
        "flight and outputs the byte-stream access units the host returns",
        "hxfr project");

    venc_class->start = GST_DEBUG_FUNCPTR(gst_hxfr_vsockenc_start);
    venc_class->stop = GST_DEBUG_FUNCPTR(gst_hxfr_vsockenc_stop);
    venc_class->set_format = GST_DEBUG_FUNCPTR(gst_hxfr_vsockenc_set_format);
    venc_class->handle_frame = GST_DEBUG_FUNCPTR(gst_hxfr_vsockenc_handle_frame);
    venc_class->finish = GST_DEBUG_FUNCPTR(gst_hxfr_vsockenc_finish);
    venc_class->flush = GST_DEBUG_FUNCPTR(gst_hxfr_vsockenc_flush);
    venc_class->propose_allocation = GST_DEBUG_FUNCPTR(gst_hxfr_vsockenc_propose_allocation);

    GST_DEBUG_CATEGORY_INIT(gst_hxfr_vsockenc_debug, "vsockenc", 0, "hxfr host H.264 encoder");
}

static void gst_hxfr_vsockenc_init(GstHxfrVsockEnc *self)
{
    gst_hxfr_conn_props_init(&self->conn);
    self->tcp_port = DEFAULT_TCP_PORT;
    self->cid = DEFAULT_CID;
    self->port = DEFAULT_PORT;
    self->bitrate = DEFAULT_BITRATE;
    self->keyframe_interval = DEFAULT_KEYFRAME_INTERVAL;
    self->max_in_flight = DEFAULT_MAX_IN_FLIGHT;
    self->use_shm = DEFAULT_USE_SHM;
    self->wake_fd = -1;
    g_mutex_init(&self->client_lock);
    g_mutex_init(&self->results_lock);
    g_cond_init(&self->results_cond);
    g_queue_init(&self->results);
}
