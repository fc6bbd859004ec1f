/* hxfr-fanout's RTSP server (rtsp.h).
 *
 * One GstRTSPMediaFactory per offered scanout, not shared: each client's
 * media is `appsrc ! rtph264pay`, and media-configure attaches its appsrc
 * to the scanout's hub, which starts it at an IDR. The media goes away
 * (unprepared) on TEARDOWN or when the client's connection closes; that
 * detaches the outlet. Malformed requests are gst-rtsp-server's to answer
 * (400 and the like), per connection.
 */
#include <gst/rtsp-server/rtsp-server.h>

#include "log.h"
#include "rtsp.h"

#define OUTLET_KEY  "hxfr-fanout-outlet"
#define SCANOUT_KEY "hxfr-fanout-scanout"

/* A live source stamped with each client's own running time; the
 * payloader repeats SPS/PPS before every IDR. */
#define MEDIA_LAUNCH                                                                               \
    "( appsrc name=src is-live=true format=time do-timestamp=true min-latency=0 "                  \
    "! rtph264pay name=pay0 pt=96 config-interval=-1 )"

struct fanout_rtsp {
    struct fanout_hubs *hubs;
    GstRTSPServer *server;
    GSource *source;
    guint port;
    guint max_clients;
    gint n_clients; /* atomic: connections now */
    gint media_seq; /* atomic: names in the log */
};

static void on_media_unprepared(GstRTSPMedia *media, gpointer data)
{
    fanout_outlet_detach(g_object_steal_data(G_OBJECT(media), OUTLET_KEY));
}

static void on_media_configure(GstRTSPMediaFactory *factory, GstRTSPMedia *media, gpointer data)
{
    struct fanout_rtsp *r = data;
    guint scanout = GPOINTER_TO_UINT(g_object_get_data(G_OBJECT(factory), SCANOUT_KEY));
    GstElement *bin = gst_rtsp_media_get_element(media);
    GstElement *src = bin ? gst_bin_get_by_name(GST_BIN(bin), "src") : NULL;
    if (src && GST_IS_APP_SRC(src)) {
        gchar *name = g_strdup_printf("rtsp media %d", g_atomic_int_add(&r->media_seq, 1) + 1);
        struct fanout_outlet *o =
            fanout_outlet_attach(r->hubs, (guint16)scanout, GST_APP_SRC(src), name);
        g_free(name);
        /* Detached when the media is unprepared, or at the latest when it
         * is freed. */
        g_object_set_data_full(G_OBJECT(media), OUTLET_KEY, o,
                               (GDestroyNotify)fanout_outlet_detach);
        g_signal_connect(media, "unprepared", G_CALLBACK(on_media_unprepared), NULL);
    } else {
        fanout_log("rtsp: scanout %u: the media has no appsrc", scanout);
    }
    gst_clear_object(&src);
    gst_clear_object(&bin);
}

static GstRTSPStatusCode refuse_busy(GstRTSPClient *client, GstRTSPContext *ctx, gpointer data)
{
    return GST_RTSP_STS_SERVICE_UNAVAILABLE;
}

static void on_client_closed(GstRTSPClient *client, gpointer data)
{
    struct fanout_rtsp *r = data;
    g_atomic_int_add(&r->n_clients, -1);
    fanout_debug("rtsp: a client closed its connection");
}

static void on_client_connected(GstRTSPServer *server, GstRTSPClient *client, gpointer data)
{
    struct fanout_rtsp *r = data;
    gint n = g_atomic_int_add(&r->n_clients, 1) + 1;
    g_signal_connect(client, "closed", G_CALLBACK(on_client_closed), r);
    if ((guint)n > r->max_clients) {
        /* Its requests get 503; the clients already served are not
         * touched. */
        fanout_log("rtsp: %d connections, more than %u: refusing the new one's requests", n,
                   r->max_clients);
        g_signal_connect(client, "pre-options-request", G_CALLBACK(refuse_busy), NULL);
        g_signal_connect(client, "pre-describe-request", G_CALLBACK(refuse_busy), NULL);
        g_signal_connect(client, "pre-setup-request", G_CALLBACK(refuse_busy), NULL);
        g_signal_connect(client, "pre-play-request", G_CALLBACK(refuse_busy), NULL);
    } else {
        fanout_debug("rtsp: a client connected (%d connections)", n);
    }
}

struct fanout_rtsp *fanout_rtsp_new(struct fanout_hubs *hubs, const struct fanout_rtsp_options *o,
                                    GError **err)
{
    struct fanout_rtsp *r = g_new0(struct fanout_rtsp, 1);
    r->hubs = hubs;
    r->max_clients = o->max_clients ? o->max_clients : FANOUT_DEFAULT_RTSP_CLIENTS;
    r->server = gst_rtsp_server_new();
    gst_rtsp_server_set_address(r->server, o->host);
    gst_rtsp_server_set_service(r->server, o->port);
    /* A session per client; the pool's limit is a second bound on the
     * pipelines the clients can make. */
    GstRTSPSessionPool *pool = gst_rtsp_server_get_session_pool(r->server);
    gst_rtsp_session_pool_set_max_sessions(pool, r->max_clients);
    g_object_unref(pool);
    g_signal_connect(r->server, "client-connected", G_CALLBACK(on_client_connected), r);

    GstRTSPMountPoints *mounts = gst_rtsp_server_get_mount_points(r->server);
    for (guint i = 0; i < o->n_scanouts; i++) {
        GstRTSPMediaFactory *f = gst_rtsp_media_factory_new();
        gst_rtsp_media_factory_set_launch(f, MEDIA_LAUNCH);
        gst_rtsp_media_factory_set_shared(f, FALSE);
        gst_rtsp_media_factory_set_protocols(f,
                                             GST_RTSP_LOWER_TRANS_UDP | GST_RTSP_LOWER_TRANS_TCP);
        gst_rtsp_media_factory_set_suspend_mode(f, GST_RTSP_SUSPEND_MODE_NONE);
        g_object_set_data(G_OBJECT(f), SCANOUT_KEY, GUINT_TO_POINTER((guint)o->scanouts[i]));
        g_signal_connect(f, "media-configure", G_CALLBACK(on_media_configure), r);
        gchar *path = g_strdup_printf("/scanout/%u", (unsigned)o->scanouts[i]);
        gst_rtsp_mount_points_add_factory(mounts, path, f); /* takes f */
        g_free(path);
    }
    g_object_unref(mounts);

    r->source = gst_rtsp_server_create_source(r->server, NULL, err);
    if (!r->source) {
        fanout_rtsp_destroy(r);
        return NULL;
    }
    g_source_attach(r->source, NULL);
    r->port = (guint)gst_rtsp_server_get_bound_port(r->server);
    return r;
}

guint fanout_rtsp_port(const struct fanout_rtsp *r)
{
    return r->port;
}

static GstRTSPFilterResult remove_session(GstRTSPSessionPool *pool, GstRTSPSession *session,
                                          gpointer data)
{
    return GST_RTSP_FILTER_REMOVE;
}

static GstRTSPFilterResult close_client(GstRTSPServer *server, GstRTSPClient *client, gpointer data)
{
    return GST_RTSP_FILTER_REMOVE;
}

void fanout_rtsp_destroy(struct fanout_rtsp *r)
{
    if (!r) {
        return;
    }
    if (r->source) {
        g_source_destroy(r->source);
        g_source_unref(r->source);
    }
    if (r->server) {
        gst_rtsp_server_client_filter(r->server, close_client, NULL);
        GstRTSPSessionPool *pool = gst_rtsp_server_get_session_pool(r->server);
        gst_rtsp_session_pool_filter(pool, remove_session, NULL);
        g_object_unref(pool);
        g_object_unref(r->server);
    }
    g_free(r);
}
