/* hxfr-fanout's RTP senders (rtp.h).
 *
 *   appsrc ! rtph264pay ! rtpbin.send_rtp_sink_0
 *   rtpbin.send_rtp_src_0  ! udpsink HOST:PORT
 *   rtpbin.send_rtcp_src_0 ! udpsink HOST:RTCPPORT  (socket S)
 *   udpsrc (socket S)      ! rtpbin.recv_rtcp_sink_0
 *
 * One socket S sends our sender reports and receives the engine's
 * feedback, so the engine's replies to the address it latched reach us.
 * An empty receiver report goes out from S at start so that Janus knows
 * that address before the RTP session's first report (seconds later):
 * a viewer that joins in between still gets its PLI through.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <gio/gio.h>
#include <gst/app/gstappsrc.h>

#include "log.h"
#include "rtp.h"

struct fanout_rtp {
    struct fanout_hubs *hubs;
    struct fanout_rtp_target t;
    gchar *name;
    GSocket *rtcp_socket;
    GSocketAddress *rtcp_dest;
    GstElement *pipeline;
    guint bus_watch;
    guint restart_source;
    struct fanout_outlet *outlet;
};

static gboolean parse_port(const gchar *s, guint16 *out, gboolean zero_ok)
{
    gchar *end = NULL;
    errno = 0;
    guint64 v = g_ascii_strtoull(s, &end, 10);
    if (errno || !end || end == s || *end || v > 65535 || (!zero_ok && v == 0) || s[0] == '-') {
        return FALSE;
    }
    *out = (guint16)v;
    return TRUE;
}

gboolean fanout_rtp_target_parse(const gchar *s, struct fanout_rtp_target *t, GError **err)
{
    memset(t, 0, sizeof(*t));
    const gchar *eq = strchr(s, '=');
    gchar *id = eq ? g_strndup(s, (gsize)(eq - s)) : NULL;
    guint16 scanout = 0;
    gboolean ok = id && parse_port(id, &scanout, TRUE);
    g_free(id);
    if (!ok) {
        g_set_error(err, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "'%s': expected SCANOUT=HOST:PORT[:RTCPPORT] with SCANOUT in 0..65535", s);
        return FALSE;
    }
    const gchar *rest = eq + 1;
    gchar *host = NULL;
    const gchar *ports;
    if (rest[0] == '[') {
        const gchar *close = strchr(rest, ']');
        if (!close || close[1] != ':') {
            g_set_error(err, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                        "'%s': an IPv6 address goes in brackets: [::1]:PORT", s);
            return FALSE;
        }
        host = g_strndup(rest + 1, (gsize)(close - rest - 1));
        ports = close + 2;
    } else {
        const gchar *colon = strchr(rest, ':');
        if (!colon) {
            g_set_error(err, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "'%s': no port", s);
            return FALSE;
        }
        host = g_strndup(rest, (gsize)(colon - rest));
        ports = colon + 1;
    }
    gchar **p = g_strsplit(ports, ":", 3);
    guint n = g_strv_length(p);
    ok = host[0] != '\0' && (n == 1 || n == 2) && parse_port(p[0], &t->port, FALSE) &&
         (n == 1 || parse_port(p[1], &t->rtcp_port, FALSE));
    g_strfreev(p);
    if (!ok) {
        g_free(host);
        g_set_error(err, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "'%s': expected SCANOUT=HOST:PORT[:RTCPPORT] with ports in 1..65535", s);
        return FALSE;
    }
    t->scanout = scanout;
    t->host = host;
    return TRUE;
}

/* An empty receiver report (RFC 3550 6.4.2: V=2, RC=0, PT=201, length 1)
 * from the feedback socket: it only tells the engine where we are. */
static void send_hello_rr(struct fanout_rtp *rtp)
{
    guint32 ssrc = g_random_int();
    guint8 rr[8] = {
        0x80,        201, 0, 1, (guint8)(ssrc >> 24), (guint8)(ssrc >> 16), (guint8)(ssrc >> 8),
        (guint8)ssrc};
    GError *e = NULL;
    if (g_socket_send_to(rtp->rtcp_socket, rtp->rtcp_dest, (const gchar *)rr, sizeof(rr), NULL,
                         &e) < 0) {
        fanout_debug("%s: first RTCP packet: %s", rtp->name, e->message);
        g_clear_error(&e);
    }
}

static gboolean rtp_start(struct fanout_rtp *rtp);

static gboolean on_restart(gpointer data)
{
    struct fanout_rtp *rtp = data;
    rtp->restart_source = 0;
    if (!rtp_start(rtp)) {
        rtp->restart_source = g_timeout_add(FANOUT_RESTART_MS, on_restart, rtp);
    }
    return G_SOURCE_REMOVE;
}

static void rtp_stop(struct fanout_rtp *rtp)
{
    fanout_outlet_detach(rtp->outlet);
    rtp->outlet = NULL;
    if (rtp->bus_watch) {
        g_source_remove(rtp->bus_watch);
        rtp->bus_watch = 0;
    }
    if (rtp->pipeline) {
        gst_element_set_state(rtp->pipeline, GST_STATE_NULL);
        gst_clear_object(&rtp->pipeline);
    }
}

static gboolean on_bus(GstBus *bus, GstMessage *msg, gpointer data)
{
    struct fanout_rtp *rtp = data;
    GError *err = NULL;
    gchar *dbg = NULL;
    if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ERROR) {
        gst_message_parse_error(msg, &err, &dbg);
        fanout_log("%s: %s; restarting in %u ms", rtp->name, err->message, FANOUT_RESTART_MS);
        fanout_debug("%s: %s", rtp->name, dbg ? dbg : "");
        g_clear_error(&err);
        g_free(dbg);
        rtp->bus_watch = 0;
        rtp_stop(rtp);
        rtp->restart_source = g_timeout_add(FANOUT_RESTART_MS, on_restart, rtp);
        return G_SOURCE_REMOVE;
    }
    if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_WARNING) {
        gst_message_parse_warning(msg, &err, &dbg);
        fanout_log("%s: %s", rtp->name, err->message);
        g_clear_error(&err);
        g_free(dbg);
    }
    return G_SOURCE_CONTINUE;
}

/* RTCP every second rather than every five: the engine learns our address
 * and SSRC sooner, and a viewer's clock mapping (its latency estimate)
 * settles sooner. Session 0 exists once send_rtp_sink_0 is linked. */
static void set_rtcp_interval(GstElement *rtpbin)
{
    GObject *session = NULL;
    g_signal_emit_by_name(rtpbin, "get-internal-session", 0u, &session);
    if (session) {
        if (g_object_class_find_property(G_OBJECT_GET_CLASS(session), "rtcp-min-interval")) {
            g_object_set(session, "rtcp-min-interval", (guint64)GST_SECOND, NULL);
        }
        g_object_unref(session);
    }
}

static gboolean rtp_start(struct fanout_rtp *rtp)
{
    GstElement *pipe = gst_pipeline_new(NULL);
    GstElement *src = gst_element_factory_make("appsrc", NULL);
    GstElement *pay = gst_element_factory_make("rtph264pay", NULL);
    GstElement *bin = gst_element_factory_make("rtpbin", NULL);
    GstElement *rtpsink = gst_element_factory_make("udpsink", NULL);
    GstElement *rtcpsink = rtp->t.rtcp_port ? gst_element_factory_make("udpsink", NULL) : NULL;
    GstElement *rtcpsrc = rtp->t.rtcp_port ? gst_element_factory_make("udpsrc", NULL) : NULL;
    if (!pipe || !src || !pay || !bin || !rtpsink ||
        (rtp->t.rtcp_port && (!rtcpsink || !rtcpsrc))) {
        fanout_log("%s: cannot create the elements (appsrc, rtph264pay, rtpbin, udpsink, udpsrc)",
                   rtp->name);
        gst_clear_object(&pipe);
        gst_clear_object(&src);
        gst_clear_object(&pay);
        gst_clear_object(&bin);
        gst_clear_object(&rtpsink);
        gst_clear_object(&rtcpsink);
        gst_clear_object(&rtcpsrc);
        return FALSE;
    }
    g_object_set(src, "is-live", TRUE, "format", GST_FORMAT_TIME, "do-timestamp", TRUE,
                 "min-latency", (gint64)0, NULL);
    g_object_set(pay, "pt", FANOUT_RTP_PT, "config-interval", -1, "mtu", FANOUT_RTP_MTU, NULL);
    /* AVPF: the profile of feedback (PLI, FIR) that WebRTC engines use. */
    gst_util_set_object_arg(G_OBJECT(bin), "rtp-profile", "avpf");
    g_object_set(rtpsink, "host", rtp->t.host, "port", (gint)rtp->t.port, "sync", FALSE, "async",
                 FALSE, NULL);
    gst_bin_add_many(GST_BIN(pipe), src, pay, bin, rtpsink, NULL);
    gboolean ok = gst_element_link(src, pay) &&
                  gst_element_link_pads(pay, "src", bin, "send_rtp_sink_0") &&
                  gst_element_link_pads(bin, "send_rtp_src_0", rtpsink, "sink");
    if (ok) {
        set_rtcp_interval(bin);
    }
    if (ok && rtcpsink) {
        g_object_set(rtcpsink, "socket", rtp->rtcp_socket, "close-socket", FALSE, "host",
                     rtp->t.host, "port", (gint)rtp->t.rtcp_port, "sync", FALSE, "async", FALSE,
                     NULL);
        GstCaps *caps = gst_caps_new_empty_simple("application/x-rtcp");
        g_object_set(rtcpsrc, "socket", rtp->rtcp_socket, "close-socket", FALSE, "caps", caps,
                     NULL);
        gst_caps_unref(caps);
        gst_bin_add_many(GST_BIN(pipe), rtcpsink, rtcpsrc, NULL);
        ok = gst_element_link_pads(bin, "send_rtcp_src_0", rtcpsink, "sink") &&
             gst_element_link_pads(rtcpsrc, "src", bin, "recv_rtcp_sink_0");
    }
    if (!ok) {
        fanout_log("%s: cannot link the RTP pipeline", rtp->name);
        gst_object_unref(pipe);
        return FALSE;
    }
    rtp->pipeline = pipe;
    GstBus *bus = gst_element_get_bus(pipe);
    rtp->bus_watch = gst_bus_add_watch(bus, on_bus, rtp);
    gst_object_unref(bus);
    if (gst_element_set_state(pipe, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
        fanout_log("%s: the RTP pipeline does not start", rtp->name);
        rtp_stop(rtp);
        return FALSE;
    }
    if (rtp->rtcp_socket) {
        send_hello_rr(rtp);
    }
    rtp->outlet = fanout_outlet_attach(rtp->hubs, rtp->t.scanout, GST_APP_SRC(src), rtp->name);
    return TRUE;
}

/* Resolves the target (once) and binds the feedback socket to any port of
 * the target's address family. */
static gboolean rtp_bind(struct fanout_rtp *rtp, GError **err)
{
    GInetAddress *addr = g_inet_address_new_from_string(rtp->t.host);
    if (!addr) {
        GResolver *res = g_resolver_get_default();
        GList *list = g_resolver_lookup_by_name(res, rtp->t.host, NULL, err);
        g_object_unref(res);
        if (!list) {
            return FALSE;
        }
        addr = g_object_ref(list->data);
        g_resolver_free_addresses(list);
        /* udpsink gets the numeric address: no lookup per restart. */
        g_free(rtp->t.host);
        rtp->t.host = g_inet_address_to_string(addr);
    }
    GSocketFamily family = g_inet_address_get_family(addr);
    rtp->rtcp_dest = g_inet_socket_address_new(addr, rtp->t.rtcp_port);
    g_object_unref(addr);
    rtp->rtcp_socket = g_socket_new(family, G_SOCKET_TYPE_DATAGRAM, G_SOCKET_PROTOCOL_UDP, err);
    if (!rtp->rtcp_socket) {
        return FALSE;
    }
    GInetAddress *any = g_inet_address_new_any(family);
    GSocketAddress *local = g_inet_socket_address_new(any, 0);
    gboolean ok = g_socket_bind(rtp->rtcp_socket, local, FALSE, err);
    g_object_unref(local);
    g_object_unref(any);
    return ok;
}

struct fanout_rtp *fanout_rtp_new(struct fanout_hubs *hubs, const struct fanout_rtp_target *t,
                                  GError **err)
{
    struct fanout_rtp *rtp = g_new0(struct fanout_rtp, 1);
    rtp->hubs = hubs;
    rtp->t = *t;
    rtp->t.host = g_strdup(t->host);
    if (t->rtcp_port && !rtp_bind(rtp, err)) {
        fanout_rtp_destroy(rtp);
        return NULL;
    }
    gchar *host =
        strchr(rtp->t.host, ':') ? g_strdup_printf("[%s]", rtp->t.host) : g_strdup(rtp->t.host);
    if (t->rtcp_port) {
        rtp->name = g_strdup_printf("rtp to %s:%u (rtcp %u)", host, (unsigned)t->port,
                                    (unsigned)t->rtcp_port);
    } else {
        rtp->name = g_strdup_printf("rtp to %s:%u", host, (unsigned)t->port);
    }
    g_free(host);
    if (!rtp_start(rtp)) {
        rtp->restart_source = g_timeout_add(FANOUT_RESTART_MS, on_restart, rtp);
    }
    return rtp;
}

void fanout_rtp_destroy(struct fanout_rtp *rtp)
{
    if (!rtp) {
        return;
    }
    if (rtp->restart_source) {
        g_source_remove(rtp->restart_source);
    }
    rtp_stop(rtp);
    g_clear_object(&rtp->rtcp_dest);
    if (rtp->rtcp_socket) {
        g_socket_close(rtp->rtcp_socket, NULL);
        g_clear_object(&rtp->rtcp_socket);
    }
    g_free(rtp->t.host);
    g_free(rtp->name);
    g_free(rtp);
}
