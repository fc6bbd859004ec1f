/* hxfr-fanout hubs: one subscription per scanout, many outlets (hub.h).
 *
 * Each hub's pipeline is `hxfrsrc ! h264parse ! appsink`. The appsink's
 * new-sample callback runs on hxfrsrc's streaming thread and offers the
 * unit to every outlet under the hub's lock; nothing there blocks (appsrc
 * pushes only queue). Starting, stopping and restarting a pipeline happen
 * on the main context only, through hub_kick(), which compares what the
 * hub has (a pipeline or not) with what it needs (outlets or not).
 */
#include <gst/app/gstappsink.h>
#include <gst/video/video.h>

#include "gsthxfrsrc.h"
#include "hub.h"
#include "log.h"

struct fanout_hub {
    struct fanout_hubs *hubs;
    guint16 id;

    GMutex lock;     /* outlets, src_pad, counters */
    GList *outlets;  /* struct fanout_outlet*, each holding a reference */
    GstPad *src_pad; /* hxfrsrc's src pad while the pipeline runs */
    guint64 units, keyframes;
    gint64 last_kf_us;    /* the last keyframe request sent upstream */
    GSource *kf_deferred; /* a request waiting for FANOUT_KEYFRAME_MS */
    guint64 kf_sent, kf_coalesced;

    /* Main context only. */
    GstElement *pipeline;
    guint bus_watch;
    guint linger_source;
    guint restart_source;
    guint restart_ms; /* backoff after failures */
};

struct fanout_hubs {
    gchar *address;
    guint queue_units;
    GMainContext *ctx;
    GMutex lock;       /* by_id */
    GHashTable *by_id; /* GUINT_TO_POINTER(id) -> struct fanout_hub* */
};

struct fanout_outlet {
    gint refs; /* atomic: the hub's list, the pad probe, the caller */
    struct fanout_hub *hub;
    GstAppSrc *src;
    gchar *name;
    GstPad *probe_pad;
    gulong probe_id;
    /* Under the hub's lock. */
    gboolean attached;
    gboolean need_key;
    gboolean ended; /* EOS sent: its pipeline never got a unit */
    GstCaps *caps;  /* last caps given to src */
    guint64 sent, dropped, overflows;
    gint64 last_kf_us;
};

static void hub_kick(struct fanout_hub *hub);

/* Guards outlet->hub against fanout_hubs_destroy(): an outlet whose media
 * is freed after the hubs (an RTSP client torn down at exit) finds NULL
 * there and only frees itself. */
static GMutex orphan_lock;

static struct fanout_outlet *outlet_ref(struct fanout_outlet *o)
{
    g_atomic_int_inc(&o->refs);
    return o;
}

static void outlet_unref(gpointer data)
{
    struct fanout_outlet *o = data;
    if (o && g_atomic_int_dec_and_test(&o->refs)) {
        gst_caps_replace(&o->caps, NULL);
        gst_clear_object(&o->src);
        g_free(o->name);
        g_free(o);
    }
}

/* ---- Keyframe requests --------------------------------------------------- */

static void hub_send_keyframe(struct fanout_hub *hub, GstPad *pad)
{
    fanout_debug("scanout %u: keyframe request to the host", (unsigned)hub->id);
    gst_pad_send_event(pad,
                       gst_video_event_new_upstream_force_key_unit(GST_CLOCK_TIME_NONE, TRUE, 0));
}

static gboolean on_deferred_keyframe(gpointer data)
{
    struct fanout_hub *hub = data;
    g_mutex_lock(&hub->lock);
    GstPad *pad = hub->src_pad ? gst_object_ref(hub->src_pad) : NULL;
    g_source_unref(hub->kf_deferred);
    hub->kf_deferred = NULL;
    hub->last_kf_us = g_get_monotonic_time();
    hub->kf_sent += pad ? 1u : 0u;
    g_mutex_unlock(&hub->lock);
    if (pad) {
        hub_send_keyframe(hub, pad);
        gst_object_unref(pad);
    }
    return G_SOURCE_REMOVE;
}

/* An upstream force-key-unit event into hxfrsrc's src pad: hxfrsrc sends
 * KEYFRAME_REQ (and the host makes at most one requested IDR per 100 ms per
 * scanout). Requests for one scanout go out at most once per
 * FANOUT_KEYFRAME_MS; one that comes sooner is sent when that time is up
 * (many give one), never lost. Any thread, without the hub's lock. */
static void hub_request_keyframe(struct fanout_hub *hub)
{
    gint64 now = g_get_monotonic_time();
    gint64 gap = (gint64)FANOUT_KEYFRAME_MS * 1000;
    GstPad *pad = NULL;
    g_mutex_lock(&hub->lock);
    if (hub->src_pad && !hub->kf_deferred) {
        if (hub->last_kf_us == 0 || now - hub->last_kf_us >= gap) {
            pad = gst_object_ref(hub->src_pad);
            hub->last_kf_us = now;
            hub->kf_sent++;
        } else {
            guint wait_ms = (guint)((hub->last_kf_us + gap - now + 999) / 1000);
            hub->kf_deferred = g_timeout_source_new(wait_ms);
            g_source_set_callback(hub->kf_deferred, on_deferred_keyframe, hub, NULL);
            g_source_attach(hub->kf_deferred, hub->hubs->ctx);
        }
    } else if (hub->kf_deferred) {
        hub->kf_coalesced++;
    }
    g_mutex_unlock(&hub->lock);
    if (pad) {
        hub_send_keyframe(hub, pad);
        gst_object_unref(pad);
    }
}

/* Hub lock held. TRUE when the outlet may ask for a keyframe now. */
static gboolean outlet_may_ask(struct fanout_outlet *o)
{
    gint64 now = g_get_monotonic_time();
    if (o->last_kf_us != 0 && now - o->last_kf_us < (gint64)FANOUT_OUTLET_KF_MS * 1000) {
        return FALSE;
    }
    o->last_kf_us = now;
    return TRUE;
}

void fanout_outlet_request_keyframe(struct fanout_outlet *o)
{
    if (!o) {
        return;
    }
    g_mutex_lock(&orphan_lock);
    struct fanout_hub *hub = o->hub;
    gboolean attached = FALSE;
    if (hub) {
        g_mutex_lock(&hub->lock);
        attached = o->attached;
        g_mutex_unlock(&hub->lock);
    }
    g_mutex_unlock(&orphan_lock);
    if (attached) {
        /* The hub outlives every attached outlet. */
        fanout_debug("%s asks scanout %u for a keyframe", o->name, (unsigned)hub->id);
        hub_request_keyframe(hub);
    }
}

/* ---- Units out ------------------------------------------------------------ */

/* Hub lock held, streaming thread. Returns TRUE when a keyframe should be
 * requested for this outlet. */
static gboolean outlet_offer(struct fanout_outlet *o, GstBuffer *buf, GstCaps *caps, gboolean key,
                             guint queue_units)
{
    if (o->ended) {
        return FALSE;
    }
    if (o->need_key && !key) {
        /* Still waiting for its first IDR (or the one after it fell
         * behind): ask again, at most once per FANOUT_OUTLET_KF_MS. */
        o->dropped++;
        return outlet_may_ask(o);
    }
    if (gst_app_src_get_current_level_buffers(o->src) >= queue_units) {
        /* Its pipeline is behind: this unit and every one up to the next
         * IDR are lost for it alone (it cannot decode a P-frame whose
         * reference it missed). */
        o->dropped++;
        if (!o->need_key) {
            o->need_key = TRUE;
            o->overflows++;
            fanout_debug("%s is behind (%u units queued): dropping up to the next IDR", o->name,
                         queue_units);
        }
        return outlet_may_ask(o);
    }
    if (caps && (!o->caps || !gst_caps_is_equal(o->caps, caps))) {
        gst_app_src_set_caps(o->src, caps);
        gst_caps_replace(&o->caps, caps);
    }
    /* A new buffer around the same memory: each outlet's appsrc stamps it
     * with its own pipeline's running time (do-timestamp). */
    GstBuffer *b = gst_buffer_copy(buf);
    GST_BUFFER_PTS(b) = GST_CLOCK_TIME_NONE;
    GST_BUFFER_DTS(b) = GST_CLOCK_TIME_NONE;
    GST_BUFFER_DURATION(b) = GST_CLOCK_TIME_NONE;
    if (o->need_key) {
        GST_BUFFER_FLAG_SET(b, GST_BUFFER_FLAG_DISCONT);
    }
    o->need_key = FALSE;
    if (gst_app_src_push_buffer(o->src, b) == GST_FLOW_OK) {
        o->sent++;
    } else {
        o->dropped++;
    }
    return FALSE;
}

static GstFlowReturn on_new_sample(GstAppSink *sink, gpointer user_data)
{
    struct fanout_hub *hub = user_data;
    GstSample *sample = gst_app_sink_pull_sample(sink);
    if (!sample) {
        return GST_FLOW_FLUSHING;
    }
    GstBuffer *buf = gst_sample_get_buffer(sample);
    GstCaps *caps = gst_sample_get_caps(sample);
    gboolean ask = FALSE;
    if (buf) {
        gboolean key = !GST_BUFFER_FLAG_IS_SET(buf, GST_BUFFER_FLAG_DELTA_UNIT);
        g_mutex_lock(&hub->lock);
        hub->units++;
        hub->keyframes += key ? 1u : 0u;
        for (GList *l = hub->outlets; l; l = l->next) {
            ask |= outlet_offer(l->data, buf, caps, key, hub->hubs->queue_units);
        }
        g_mutex_unlock(&hub->lock);
    }
    gst_sample_unref(sample);
    if (ask) {
        hub_request_keyframe(hub);
    }
    return GST_FLOW_OK;
}

/* ---- The subscription pipeline (main context) ------------------------------ */

static void hub_stop(struct fanout_hub *hub, const gchar *why)
{
    if (!hub->pipeline) {
        return;
    }
    g_mutex_lock(&hub->lock);
    gst_clear_object(&hub->src_pad);
    if (hub->kf_deferred) {
        g_source_destroy(hub->kf_deferred);
        g_source_unref(hub->kf_deferred);
        hub->kf_deferred = NULL;
    }
    guint64 units = hub->units, keys = hub->keyframes;
    guint64 kf_sent = hub->kf_sent, kf_coalesced = hub->kf_coalesced;
    for (GList *l = hub->outlets; l; l = l->next) {
        struct fanout_outlet *o = l->data;
        o->need_key = TRUE;
    }
    g_mutex_unlock(&hub->lock);
    if (hub->bus_watch) {
        g_source_remove(hub->bus_watch);
        hub->bus_watch = 0;
    }
    gst_element_set_state(hub->pipeline, GST_STATE_NULL);
    gst_clear_object(&hub->pipeline);
    fanout_log("scanout %u: subscription closed (%s) after %" G_GUINT64_FORMAT
               " units, %" G_GUINT64_FORMAT " keyframes; %" G_GUINT64_FORMAT
               " keyframe requests sent, %" G_GUINT64_FORMAT " coalesced",
               (unsigned)hub->id, why, units, keys, kf_sent, kf_coalesced);
}

/* Outlets whose pipeline never got a unit (an RTSP client still in
 * DESCRIBE, whose media waits for its first buffer) get an error on their
 * own pipeline, so that their request fails now (503) rather than hangs;
 * outlets that were streaming wait for the subscription to come back. */
static void hub_end_unfed(struct fanout_hub *hub, const gchar *why)
{
    g_mutex_lock(&hub->lock);
    for (GList *l = hub->outlets; l; l = l->next) {
        struct fanout_outlet *o = l->data;
        if (o->sent == 0 && !o->ended) {
            o->ended = TRUE;
            GError *err = g_error_new(GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_OPEN_READ,
                                      "scanout %u: %s", (unsigned)hub->id, why);
            gst_element_post_message(GST_ELEMENT(o->src),
                                     gst_message_new_error(GST_OBJECT(o->src), err, why));
            g_error_free(err);
        }
    }
    g_mutex_unlock(&hub->lock);
}

static gboolean on_restart(gpointer data)
{
    struct fanout_hub *hub = data;
    hub->restart_source = 0;
    hub_kick(hub);
    return G_SOURCE_REMOVE;
}

static void hub_failed(struct fanout_hub *hub, const gchar *why)
{
    hub_stop(hub, why);
    hub_end_unfed(hub, why);
    hub->restart_ms =
        hub->restart_ms ? MIN(hub->restart_ms * 2, 8u * FANOUT_RESTART_MS) : FANOUT_RESTART_MS;
    if (!hub->restart_source) {
        hub->restart_source = g_timeout_add(hub->restart_ms, on_restart, hub);
    }
}

static gboolean on_bus(GstBus *bus, GstMessage *msg, gpointer data)
{
    struct fanout_hub *hub = data;
    GError *err = NULL;
    gchar *dbg = NULL;
    switch (GST_MESSAGE_TYPE(msg)) {
    case GST_MESSAGE_ERROR:
        gst_message_parse_error(msg, &err, &dbg);
        fanout_log("scanout %u: %s", (unsigned)hub->id, err->message);
        fanout_debug("scanout %u: %s", (unsigned)hub->id, dbg ? dbg : "");
        hub->bus_watch = 0; /* removed by returning FALSE below */
        hub_failed(hub, "error");
        g_clear_error(&err);
        g_free(dbg);
        return G_SOURCE_REMOVE;
    case GST_MESSAGE_EOS:
        /* hxfrsrc ends its stream when the scanout ends for good. */
        hub->bus_watch = 0;
        hub_failed(hub, "the scanout ended");
        return G_SOURCE_REMOVE;
    case GST_MESSAGE_WARNING:
        gst_message_parse_warning(msg, &err, &dbg);
        fanout_log("scanout %u: %s", (unsigned)hub->id, err->message);
        g_clear_error(&err);
        g_free(dbg);
        break;
    default:
        break;
    }
    return G_SOURCE_CONTINUE;
}

static gboolean hub_start(struct fanout_hub *hub)
{
    GstElement *pipe = gst_pipeline_new(NULL);
    GstElement *src = gst_element_factory_make("hxfrsrc", NULL);
    GstElement *parse = gst_element_factory_make("h264parse", NULL);
    GstElement *sink = gst_element_factory_make("appsink", NULL);
    if (!pipe || !src || !parse || !sink) {
        fanout_log("scanout %u: cannot create the elements (hxfrsrc, h264parse, appsink)",
                   (unsigned)hub->id);
        gst_clear_object(&pipe);
        gst_clear_object(&src);
        gst_clear_object(&parse);
        gst_clear_object(&sink);
        return FALSE;
    }
    /* reconnect: a lost host connection or a scanout that ends and comes
     * back resumes at an IDR without a new pipeline. */
    g_object_set(src, "address", hub->hubs->address, "scanout", (guint)hub->id, "reconnect", TRUE,
                 NULL);
    /* SPS and PPS stay in front of every IDR (they are in-band already;
     * this keeps them there for payloaders that look for them). */
    g_object_set(parse, "config-interval", -1, NULL);
    GstCaps *caps = gst_caps_from_string("video/x-h264, stream-format=(string)byte-stream, "
                                         "alignment=(string)au");
    g_object_set(sink, "caps", caps, "sync", FALSE, "max-buffers", 4u, NULL);
    gst_caps_unref(caps);
    GstAppSinkCallbacks cb = {.new_sample = on_new_sample};
    gst_app_sink_set_callbacks(GST_APP_SINK(sink), &cb, hub, NULL);
    gst_bin_add_many(GST_BIN(pipe), src, parse, sink, NULL);
    if (!gst_element_link_many(src, parse, sink, NULL)) {
        fanout_log("scanout %u: cannot link hxfrsrc ! h264parse ! appsink", (unsigned)hub->id);
        gst_object_unref(pipe);
        return FALSE;
    }
    hub->pipeline = pipe;
    GstBus *bus = gst_element_get_bus(pipe);
    hub->bus_watch = gst_bus_add_watch(bus, on_bus, hub);
    gst_object_unref(bus);
    g_mutex_lock(&hub->lock);
    hub->src_pad = gst_element_get_static_pad(src, "src");
    hub->units = hub->keyframes = 0;
    hub->kf_sent = hub->kf_coalesced = 0;
    hub->last_kf_us = 0;
    g_mutex_unlock(&hub->lock);
    if (gst_element_set_state(pipe, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
        /* hxfrsrc posted the reason (host unreachable, scanout refused)
         * on the bus; take it from there before the bus goes. */
        GstBus *b = gst_element_get_bus(pipe);
        GstMessage *m = gst_bus_pop_filtered(b, GST_MESSAGE_ERROR);
        if (m) {
            GError *err = NULL;
            gst_message_parse_error(m, &err, NULL);
            fanout_log("scanout %u: %s", (unsigned)hub->id, err->message);
            g_clear_error(&err);
            gst_message_unref(m);
        }
        gst_object_unref(b);
        return FALSE;
    }
    fanout_log("scanout %u: subscribed at %s", (unsigned)hub->id, hub->hubs->address);
    hub->restart_ms = 0;
    return TRUE;
}

static gboolean on_linger(gpointer data)
{
    struct fanout_hub *hub = data;
    hub->linger_source = 0;
    g_mutex_lock(&hub->lock);
    gboolean wanted = hub->outlets != NULL;
    g_mutex_unlock(&hub->lock);
    if (!wanted) {
        hub_stop(hub, "no viewers");
    }
    return G_SOURCE_REMOVE;
}

/* Main context: start or keep the subscription while the hub has outlets;
 * once it has none, stop it after the linger (a viewer that reloads does
 * not resubscribe). */
static gboolean hub_update(gpointer data)
{
    struct fanout_hub *hub = data;
    g_mutex_lock(&hub->lock);
    gboolean wanted = hub->outlets != NULL;
    g_mutex_unlock(&hub->lock);
    if (wanted) {
        if (hub->linger_source) {
            g_source_remove(hub->linger_source);
            hub->linger_source = 0;
        }
        if (!hub->pipeline && !hub->restart_source && !hub_start(hub)) {
            hub_failed(hub, "subscription failed");
        }
        return G_SOURCE_REMOVE;
    }
    if (hub->restart_source) {
        g_source_remove(hub->restart_source);
        hub->restart_source = 0;
    }
    if (hub->pipeline && !hub->linger_source) {
        hub->linger_source = g_timeout_add(FANOUT_LINGER_MS, on_linger, hub);
    }
    return G_SOURCE_REMOVE;
}

static void hub_kick(struct fanout_hub *hub)
{
    g_main_context_invoke(hub->hubs->ctx, hub_update, hub);
}

/* ---- Outlets ----------------------------------------------------------------- */

static GstPadProbeReturn on_upstream_event(GstPad *pad, GstPadProbeInfo *info, gpointer data)
{
    GstEvent *ev = GST_PAD_PROBE_INFO_EVENT(info);
    if (ev && gst_video_event_is_force_key_unit(ev)) {
        fanout_outlet_request_keyframe(data);
        return GST_PAD_PROBE_DROP;
    }
    return GST_PAD_PROBE_OK;
}

static struct fanout_hub *hub_get(struct fanout_hubs *hubs, guint16 id)
{
    g_mutex_lock(&hubs->lock);
    struct fanout_hub *hub = g_hash_table_lookup(hubs->by_id, GUINT_TO_POINTER(id));
    if (!hub) {
        hub = g_new0(struct fanout_hub, 1);
        hub->hubs = hubs;
        hub->id = id;
        g_mutex_init(&hub->lock);
        g_hash_table_insert(hubs->by_id, GUINT_TO_POINTER(id), hub);
    }
    g_mutex_unlock(&hubs->lock);
    return hub;
}

struct fanout_outlet *fanout_outlet_attach(struct fanout_hubs *hubs, guint16 scanout,
                                           GstAppSrc *src, const gchar *name)
{
    struct fanout_hub *hub = hub_get(hubs, scanout);
    struct fanout_outlet *o = g_new0(struct fanout_outlet, 1);
    o->refs = 1;
    o->hub = hub;
    o->src = gst_object_ref(src);
    o->name = g_strdup(name);
    o->need_key = TRUE;
    o->attached = TRUE;
    o->last_kf_us = g_get_monotonic_time();
    o->probe_pad = gst_element_get_static_pad(GST_ELEMENT(src), "src");
    if (o->probe_pad) {
        o->probe_id = gst_pad_add_probe(o->probe_pad, GST_PAD_PROBE_TYPE_EVENT_UPSTREAM,
                                        on_upstream_event, outlet_ref(o), outlet_unref);
    }
    g_mutex_lock(&hub->lock);
    hub->outlets = g_list_append(hub->outlets, outlet_ref(o));
    guint n = g_list_length(hub->outlets);
    g_mutex_unlock(&hub->lock);
    fanout_log("%s joined scanout %u (%u outlets)", o->name, (unsigned)scanout, n);
    /* It starts at the next IDR: ask for one now rather than wait for the
     * host's keyframe interval. */
    hub_request_keyframe(hub);
    hub_kick(hub);
    return o;
}

void fanout_outlet_detach(struct fanout_outlet *o)
{
    if (!o) {
        return;
    }
    g_mutex_lock(&orphan_lock);
    struct fanout_hub *hub = o->hub;
    gboolean was = FALSE;
    guint n = 0;
    guint64 sent = 0, dropped = 0, overflows = 0;
    if (hub) {
        g_mutex_lock(&hub->lock);
        was = o->attached;
        o->attached = FALSE;
        hub->outlets = g_list_remove(hub->outlets, o);
        n = g_list_length(hub->outlets);
        sent = o->sent;
        dropped = o->dropped;
        overflows = o->overflows;
        g_mutex_unlock(&hub->lock);
    }
    if (o->probe_pad) {
        gst_pad_remove_probe(o->probe_pad, o->probe_id);
        gst_clear_object(&o->probe_pad);
    }
    if (was) {
        fanout_log("%s left scanout %u: %" G_GUINT64_FORMAT " units sent, %" G_GUINT64_FORMAT
                   " dropped, %" G_GUINT64_FORMAT " overflows (%u outlets)",
                   o->name, (unsigned)hub->id, sent, dropped, overflows, n);
        outlet_unref(o); /* the hub list's reference */
        hub_kick(hub);
    }
    g_mutex_unlock(&orphan_lock);
    outlet_unref(o); /* the caller's */
}

/* ---- The set --------------------------------------------------------------------- */

struct fanout_hubs *fanout_hubs_new(const struct fanout_hub_options *opt)
{
    if (!gst_element_register(NULL, "hxfrsrc", GST_RANK_NONE, GST_TYPE_HXFRSRC)) {
        return NULL;
    }
    struct fanout_hubs *hubs = g_new0(struct fanout_hubs, 1);
    hubs->address = g_strdup(opt->address);
    hubs->queue_units = opt->queue_units ? opt->queue_units : FANOUT_DEFAULT_QUEUE_UNITS;
    hubs->ctx = g_main_context_ref(g_main_context_default());
    g_mutex_init(&hubs->lock);
    hubs->by_id = g_hash_table_new(g_direct_hash, g_direct_equal);
    return hubs;
}

void fanout_hubs_destroy(struct fanout_hubs *hubs)
{
    if (!hubs) {
        return;
    }
    GHashTableIter it;
    gpointer key, value;
    g_hash_table_iter_init(&it, hubs->by_id);
    while (g_hash_table_iter_next(&it, &key, &value)) {
        struct fanout_hub *hub = value;
        if (hub->linger_source) {
            g_source_remove(hub->linger_source);
        }
        if (hub->restart_source) {
            g_source_remove(hub->restart_source);
        }
        hub_stop(hub, "exiting");
        g_mutex_lock(&orphan_lock);
        for (GList *l = hub->outlets; l; l = l->next) {
            struct fanout_outlet *o = l->data;
            o->hub = NULL;
            o->attached = FALSE;
        }
        g_mutex_unlock(&orphan_lock);
        g_list_free_full(hub->outlets, outlet_unref);
        g_mutex_clear(&hub->lock);
        g_free(hub);
    }
    g_hash_table_destroy(hubs->by_id);
    g_mutex_clear(&hubs->lock);
    g_main_context_unref(hubs->ctx);
    g_free(hubs->address);
    g_free(hubs);
}
