/* hxfrsrc: subscribes to a scanout of an hxfr host and pushes each access
 * unit the host sends as one buffer.
 *
 * All client calls happen on the streaming thread (create) or in
 * start/stop, so the client needs no lock. create() polls the client fd
 * together with an eventfd that unlock() signals, which makes flushing and
 * state changes prompt even when the host sends nothing.
 */
#include <errno.h>
#include <string.h>

#include <gst/video/video.h>

#include "gsthxfrsrc.h"

GST_DEBUG_CATEGORY_STATIC(gst_hxfrsrc_debug);
#define GST_CAT_DEFAULT gst_hxfrsrc_debug

#define DEFAULT_SCANOUT 0u
/* Units read but not yet pushed; more means downstream is far behind, and
 * the backlog is dropped up to the next IDR. */
#define MAX_QUEUED_UNITS   64u
#define RECONNECT_ATTEMPTS 10u
/* A pts jump larger than this (or backwards) starts a new timeline. */
#define MAX_PTS_JUMP (10 * GST_SECOND)

/* Address, reconnect and timeout are GST_HXFR_PROP_*. */
enum {
    PROP_SCANOUT = GST_HXFR_PROP_LAST,
};

static GstStaticPadTemplate src_template =
    GST_STATIC_PAD_TEMPLATE("src", GST_PAD_SRC, GST_PAD_ALWAYS,
                            GST_STATIC_CAPS("video/x-h264, stream-format = (string) byte-stream, "
                                            "alignment = (string) au"));

G_DEFINE_TYPE(GstHxfrSrc, gst_hxfrsrc, GST_TYPE_PUSH_SRC)

static void clear_units(GstHxfrSrc *self)
{
    GstBuffer *b;
    while ((b = g_queue_pop_head(&self->units))) {
        gst_buffer_unref(b);
    }
}

/* Client callback (streaming thread, inside dispatch): copy the unit. */
static void on_stream(void *user_data, uint32_t scanout_id, const struct hxfr_client_result *res)
{
    GstHxfrSrc *self = user_data;
    if (res->size == 0) {
        /* A response without units carries no picture. */
        GST_WARNING_OBJECT(self, "empty access unit from the host dropped");
        return;
    }
    if (self->waiting_key && !res->keyframe) {
        GST_DEBUG_OBJECT(self, "dropping a delta unit before the first IDR");
        return;
    }
    if (g_queue_get_length(&self->units) >= MAX_QUEUED_UNITS) {
        GST_WARNING_OBJECT(self, "%u units waiting: dropping them up to the next IDR",
                           MAX_QUEUED_UNITS);
        clear_units(self);
        self->waiting_key = TRUE;
        /* Ask for that IDR now rather than at the next keyframe interval. */
        g_atomic_int_set(&self->want_keyframe, 1);
        if (!res->keyframe) {
            return;
        }
    }
    self->waiting_key = FALSE;
    GstBuffer *buf = gst_buffer_new_memdup(res->data, res->size);
    GST_BUFFER_PTS(buf) = (GstClockTime)res->pts; /* host pts; mapped when pushed */
    if (!res->keyframe) {
        GST_BUFFER_FLAG_SET(buf, GST_BUFFER_FLAG_DELTA_UNIT);
    }
    g_queue_push_tail(&self->units, buf);
}

static void on_event(void *user_data, const struct hxfr_client_event *ev)
{
    GstHxfrSrc *self = user_data;
    if (ev->type == HXFR_CLIENT_EVENT_DISCONNECTED) {
        GST_WARNING_OBJECT(self, "connection to the host lost: %s", hxfr_strerror(ev->err));
    } else if (ev->type == HXFR_CLIENT_EVENT_REMOTE_ERROR) {
        GST_WARNING_OBJECT(self, "host error %d (%s): %s", ev->remote_code,
                           hxfr_status_name(ev->remote_code), ev->remote_message);
        if (ev->remote_code == HXFR_STATUS_NO_SCANOUT) {
            /* The publisher disabled the scanout or went away: the host
             * removed our subscription. */
            self->ended = TRUE;
            g_free(self->end_message);
            self->end_message = g_strdup(ev->remote_message);
        }
    }
}

static void post_subscribe_error(GstHxfrSrc *self, int r, guint scanout, const gchar *address)
{
    if (r == -HXFR_EREMOTE) {
        const char *msg = "";
        int32_t code = hxfr_client_last_remote_error(self->client, &msg);
        GST_ELEMENT_ERROR(
            self, RESOURCE, NOT_FOUND,
            ("The host at %s refused scanout %u: %s (host error %d, %s)", address, scanout, msg,
             code, hxfr_status_name(code)),
            ("SUBSCRIBE refused: code %d (%s), message \"%s\"", code, hxfr_status_name(code), msg));
    } else {
        GST_ELEMENT_ERROR(
            self, RESOURCE, OPEN_READ,
            ("Subscribing to scanout %u at %s failed: %s", scanout, address, hxfr_strerror(r)),
            ("hxfr_client_subscribe returned %d", r));
    }
}

static gboolean gst_hxfrsrc_start(GstBaseSrc *bsrc)
{
    GstHxfrSrc *self = GST_HXFRSRC(bsrc);
    struct hxfr_client_options o;
    hxfr_client_options_init(&o);
    GST_OBJECT_LOCK(self);
    gchar *address = g_strdup(self->conn.address);
    guint scanout = self->scanout;
    o.io_timeout_ms = (int)self->conn.io_timeout_ms;
    GST_OBJECT_UNLOCK(self);
    /* Reconnects are driven here, one attempt at a time, so that unlock()
     * can interrupt the backoff. */
    o.reconnect = FALSE;
    o.reconnect_attempts = 1;
    o.on_stream = on_stream;
    o.on_event = on_event;
    o.user_data = self;
    /* KEYFRAME_REQ for a scanout carries its id as session id. */
    o.session_id = (uint16_t)MIN(scanout, G_MAXUINT16);

    gboolean ok = FALSE;
    self->client =
        gst_hxfr_client_open(GST_ELEMENT(self), &o, address, GST_RESOURCE_ERROR_OPEN_READ);
    if (!self->client) {
        goto out;
    }
    if (scanout > G_MAXUINT16) {
        GST_ELEMENT_ERROR(self, RESOURCE, SETTINGS, ("Scanout %u is out of range", scanout),
                          ("scanout ids are 16-bit on the wire"));
        goto fail;
    }
    /* The first units may arrive together with the reply. */
    self->waiting_key = TRUE;
    self->have_base = FALSE;
    self->ended = FALSE;
    g_atomic_int_set(&self->want_keyframe, 0);
    int r = hxfr_client_subscribe(self->client, scanout, -1);
    if (r < 0) {
        post_subscribe_error(self, r, scanout, address);
        goto fail;
    }
    self->wake_fd = gst_hxfr_wake_open(GST_ELEMENT(self));
    if (self->wake_fd < 0) {
        goto fail;
    }
    GST_INFO_OBJECT(self, "subscribed to scanout %u at %s", scanout, hxfr_client_uri(self->client));
    g_atomic_int_set(&self->flushing, 0);
    ok = TRUE;
    goto out;

fail:
    hxfr_client_destroy(self->client);
    self->client = NULL;
out:
    g_free(address);
    return ok;
}

static gboolean gst_hxfrsrc_stop(GstBaseSrc *bsrc)
{
    GstHxfrSrc *self = GST_HXFRSRC(bsrc);
    hxfr_client_destroy(self->client);
    self->client = NULL;
    clear_units(self);
    g_clear_pointer(&self->end_message, g_free);
    gst_hxfr_wake_close(&self->wake_fd);
    return TRUE;
}

static gboolean gst_hxfrsrc_unlock(GstBaseSrc *bsrc)
{
    GstHxfrSrc *self = GST_HXFRSRC(bsrc);
    g_atomic_int_set(&self->flushing, 1);
    gst_hxfr_wake(self->wake_fd);
    return TRUE;
}

/* Upstream force-key-unit (a decoder or a WebRTC peer that lost a picture)
 * becomes KEYFRAME_REQ, sent by the streaming thread, which owns the
 * client. */
static gboolean gst_hxfrsrc_event(GstBaseSrc *bsrc, GstEvent *event)
{
    GstHxfrSrc *self = GST_HXFRSRC(bsrc);
    if (gst_video_event_is_force_key_unit(event)) {
        GST_DEBUG_OBJECT(self, "keyframe requested downstream");
        g_atomic_int_set(&self->want_keyframe, 1);
        gst_hxfr_wake(self->wake_fd);
        return TRUE;
    }
    return GST_BASE_SRC_CLASS(gst_hxfrsrc_parent_class)->event(bsrc, event);
}

static gboolean gst_hxfrsrc_unlock_stop(GstBaseSrc *bsrc)
{
    GstHxfrSrc *self = GST_HXFRSRC(bsrc);
    g_atomic_int_set(&self->flushing, 0);
    gst_hxfr_wake_drain(self->wake_fd);
    return TRUE;
}

/* Waits for fd (if >= 0) or the wake-up eventfd, up to timeout_ms.
 * Returns 1 if fd is readable (or hung up), 0 otherwise. A wake-up is
 * consumed; the flags it signals are checked by the caller's loop, and
 * unlock_stop() drains it again after a flush. */
static int wait_readable(GstHxfrSrc *self, int fd, int timeout_ms)
{
    return gst_hxfr_poll(self->wake_fd, fd, timeout_ms) > 0;
}

/* Maps a host pts to running time: the first unit (and any unit whose pts
 * jumps backwards or far ahead, as after a host restart) is stamped with
 * the current running time; later ones keep the host's spacing. */
static GstClockTime map_pts(GstHxfrSrc *self, gint64 host_pts, gboolean *discont)
{
    if (!self->have_base || host_pts < self->last_host_pts ||
        (guint64)(host_pts - self->last_host_pts) > MAX_PTS_JUMP) {
        GstClockTime now = 0;
        GstClock *clock = gst_element_get_clock(GST_ELEMENT(self));
        if (clock) {
            GstClockTime t = gst_clock_get_time(clock);
            GstClockTime base = gst_element_get_base_time(GST_ELEMENT(self));
            now = t > base ? t - base : 0;
            gst_object_unref(clock);
        }
        /* Never step back: a new timeline starts after the last pts out
         * (the host may have run ahead of our clock). */
        if (self->have_base && now <= self->last_out) {
            now = self->last_out + 1;
        }
        self->host_base = (guint64)host_pts;
        self->running_base = now;
        self->have_base = TRUE;
        *discont = TRUE;
    }
    self->last_host_pts = host_pts;
    self->last_out = self->running_base + ((guint64)host_pts - self->host_base);
    return self->last_out;
}

/* The scanout ended. Without reconnect that is the end of the stream;
 * with it, subscribe again (backoff, interruptible) until the publisher
 * has enabled the scanout again. */
static GstFlowReturn scanout_ended(GstHxfrSrc *self)
{
    GST_OBJECT_LOCK(self);
    guint scanout = self->scanout;
    GST_OBJECT_UNLOCK(self);
    self->ended = FALSE;
    if (!self->conn.reconnect) {
        GST_ELEMENT_WARNING(
            self, RESOURCE, READ,
            ("Scanout %u ended: %s", scanout, self->end_message ? self->end_message : ""),
            ("ERROR NO_SCANOUT from the host; sending EOS"));
        return GST_FLOW_EOS;
    }
    guint delay = 50;
    for (guint i = 0; i < RECONNECT_ATTEMPTS; i++) {
        wait_readable(self, -1, (int)delay);
        if (g_atomic_int_get(&self->flushing)) {
            return GST_FLOW_FLUSHING;
        }
        self->waiting_key = TRUE;
        int r = hxfr_client_subscribe(self->client, scanout, -1);
        if (r == 0) {
            GST_INFO_OBJECT(self, "scanout %u is back; waiting for an IDR", scanout);
            return GST_FLOW_OK;
        }
        GST_DEBUG_OBJECT(self, "subscribe attempt %u: %s", i + 1, hxfr_strerror(r));
        delay = MIN(delay * 2, 2000u);
    }
    GST_ELEMENT_ERROR(self, RESOURCE, READ,
                      ("Scanout %u ended (%s) and did not come back", scanout,
                       self->end_message ? self->end_message : ""),
                      ("%u subscribe attempts", RECONNECT_ATTEMPTS));
    return GST_FLOW_ERROR;
}

static GstFlowReturn reconnect_with_backoff(GstHxfrSrc *self)
{
    guint delay = 50;
    int r = -ENOTCONN;
    for (guint i = 0; i < RECONNECT_ATTEMPTS; i++) {
        if (g_atomic_int_get(&self->flushing)) {
            return GST_FLOW_FLUSHING;
        }
        r = hxfr_client_reconnect(self->client);
        if (r == 0) {
            GST_INFO_OBJECT(self, "reconnected; waiting for an IDR");
            self->waiting_key = TRUE;
            return GST_FLOW_OK;
        }
        if (r == -HXFR_EREMOTE) {
            break; /* the scanout is gone: retrying will not help */
        }
        GST_DEBUG_OBJECT(self, "reconnect attempt %u: %s", i + 1, hxfr_strerror(r));
        wait_readable(self, -1, (int)delay);
        delay = MIN(delay * 2, 2000u);
    }
    GST_OBJECT_LOCK(self);
    gchar *address = g_strdup(self->conn.address);
    guint scanout = self->scanout;
    GST_OBJECT_UNLOCK(self);
    if (r == -HXFR_EREMOTE) {
        post_subscribe_error(self, r, scanout, address);
    } else {
        GST_ELEMENT_ERROR(self, RESOURCE, READ,
                          ("Lost the connection to the hxfr host at %s and could not "
                           "reconnect: %s",
                           address, hxfr_strerror(r)),
                          ("%u attempts", RECONNECT_ATTEMPTS));
    }
    g_free(address);
    return GST_FLOW_ERROR;
}

static GstFlowReturn gst_hxfrsrc_create(GstPushSrc *psrc, GstBuffer **outbuf)
{
    GstHxfrSrc *self = GST_HXFRSRC(psrc);
    for (;;) {
        if (g_atomic_int_get(&self->flushing)) {
            return GST_FLOW_FLUSHING;
        }
        GstBuffer *buf = g_queue_pop_head(&self->units);
        if (buf) {
            gboolean discont = FALSE;
            GST_BUFFER_PTS(buf) = map_pts(self, (gint64)GST_BUFFER_PTS(buf), &discont);
            GST_BUFFER_DTS(buf) = GST_BUFFER_PTS(buf);
            if (discont) {
                GST_BUFFER_FLAG_SET(buf, GST_BUFFER_FLAG_DISCONT);
            }
            *outbuf = buf;
            return GST_FLOW_OK;
        }
        if (self->ended) {
            GstFlowReturn ret = scanout_ended(self);
            if (ret != GST_FLOW_OK) {
                return ret;
            }
            continue;
        }
        if (g_atomic_int_compare_and_exchange(&self->want_keyframe, 1, 0) &&
            hxfr_client_connected(self->client)) {
            int r = hxfr_client_request_keyframe(self->client);
            GST_DEBUG_OBJECT(self, "KEYFRAME_REQ: %s", r < 0 ? hxfr_strerror(r) : "sent");
        }
        int fd = hxfr_client_fd(self->client);
        if (fd < 0) {
            if (!self->conn.reconnect) {
                GST_ELEMENT_ERROR(self, RESOURCE, READ, ("Lost the connection to the hxfr host"),
                                  ("set reconnect=true to reconnect"));
                return GST_FLOW_ERROR;
            }
            GstFlowReturn ret = reconnect_with_backoff(self);
            if (ret != GST_FLOW_OK) {
                return ret;
            }
            continue;
        }
        if (wait_readable(self, fd, -1)) {
            int r = hxfr_client_dispatch(self->client, 0);
            if (r < 0) {
                GST_DEBUG_OBJECT(self, "dispatch: %s", hxfr_strerror(r));
            }
        }
    }
}

static void gst_hxfrsrc_set_property(GObject *object, guint prop_id, const GValue *value,
                                     GParamSpec *pspec)
{
    GstHxfrSrc *self = GST_HXFRSRC(object);
    GST_OBJECT_LOCK(self);
    if (!gst_hxfr_conn_props_set(&self->conn, prop_id, value)) {
        switch (prop_id) {
        case PROP_SCANOUT:
            self->scanout = g_value_get_uint(value);
            break;
        default:
            G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
            break;
        }
    }
    GST_OBJECT_UNLOCK(self);
}

static void gst_hxfrsrc_get_property(GObject *object, guint prop_id, GValue *value,
                                     GParamSpec *pspec)
{
    GstHxfrSrc *self = GST_HXFRSRC(object);
    GST_OBJECT_LOCK(self);
    if (!gst_hxfr_conn_props_get(&self->conn, prop_id, value)) {
        switch (prop_id) {
        case PROP_SCANOUT:
            g_value_set_uint(value, self->scanout);
            break;
        default:
            G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
            break;
        }
    }
    GST_OBJECT_UNLOCK(self);
}

static void gst_hxfrsrc_finalize(GObject *object)
{
    GstHxfrSrc *self = GST_HXFRSRC(object);
    gst_hxfr_conn_props_finish(&self->conn);
    G_OBJECT_CLASS(gst_hxfrsrc_parent_class)->finalize(object);
}

static void gst_hxfrsrc_class_init(GstHxfrSrcClass *klass)
{
    GObjectClass *gobject_class = G_OBJECT_CLASS(klass);
    GstElementClass *element_class = GST_ELEMENT_CLASS(klass);
    GstBaseSrcClass *bsrc_class = GST_BASE_SRC_CLASS(klass);
    GstPushSrcClass *psrc_class = GST_PUSH_SRC_CLASS(klass);

    gobject_class->set_property = gst_hxfrsrc_set_property;
    gobject_class->get_property = gst_hxfrsrc_get_property;
    gobject_class->finalize = gst_hxfrsrc_finalize;

    const GParamFlags rw = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY;
    gst_hxfr_conn_props_install(
        gobject_class,
        "Where the hxfr host listens: unix:PATH (UNIX socket), vsock:CID:PORT "
        "(AF_VSOCK; the host is CID 2), tcp:HOST:PORT or serial:PATH. "
        "Default: vsock:2:5000",
        "When the connection to the host is lost, reconnect (up to 10 attempts with "
        "backoff from 50 ms to 2 s), subscribe again and resume at the next IDR; when "
        "the publisher ends the scanout, subscribe again the same way until it is "
        "back. When false a lost connection is an element error and the end of the "
        "scanout is EOS. Default: false",
        "Milliseconds to wait for the host to accept the connection handshake and "
        "answer SUBSCRIBE before failing. Default: 5000");
    g_object_class_install_property(
        gobject_class, PROP_SCANOUT,
        g_param_spec_uint(
            "scanout", "Scanout id",
            "The scanout (display output) to subscribe to, 0..65535; the stream starts "
            "at an IDR. Default: 0",
            0, G_MAXUINT16, DEFAULT_SCANOUT, rw));

    gst_element_class_add_static_pad_template(element_class, &src_template);
    gst_element_class_set_static_metadata(
        element_class, "hxfr scanout source", "Source/Video/Network",
        "Subscribes to a scanout stream of an hxfr host (HXFR push mode) and outputs "
        "its H.264 byte-stream access units, timestamped in running time",
        "hxfr project");

    bsrc_class->start = GST_DEBUG_FUNCPTR(gst_hxfrsrc_start);
    bsrc_class->stop = GST_DEBUG_FUNCPTR(gst_hxfrsrc_stop);
    bsrc_class->unlock = GST_DEBUG_FUNCPTR(gst_hxfrsrc_unlock);
    bsrc_class->unlock_stop = GST_DEBUG_FUNCPTR(gst_hxfrsrc_unlock_stop);
    bsrc_class->event = GST_DEBUG_FUNCPTR(gst_hxfrsrc_event);
    psrc_class->create = GST_DEBUG_FUNCPTR(gst_hxfrsrc_create);

    GST_DEBUG_CATEGORY_INIT(gst_hxfrsrc_debug, "hxfrsrc", 0, "hxfr scanout source");
}

static void gst_hxfrsrc_init(GstHxfrSrc *self)
{
    gst_hxfr_conn_props_init(&self->conn);
    self->scanout = DEFAULT_SCANOUT;
    self->wake_fd = -1;
    g_queue_init(&self->units);
    gst_base_src_set_live(GST_BASE_SRC(self), TRUE);
    gst_base_src_set_format(GST_BASE_SRC(self), GST_FORMAT_TIME);
}
