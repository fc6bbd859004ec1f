/* hxfr-fanout: serves hxfr scanouts to many viewers through existing media
 * engines: an RTSP server (gst-rtsp-server) for players and recorders, and
 * RTP to a WebRTC engine such as Janus's streaming plugin for browsers.
 * Options in --help; the design in docs/fanout.md. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib-unix.h>
#include <gst/gst.h>

#include <hxfr-config.h>

#include "hub.h"
#include "log.h"
#include "rtp.h"
#include "rtsp.h"
#include "transport.h"

#define DEFAULT_RTSP     "127.0.0.1:8554"
#define MAX_RTP_TARGETS  64u
#define DEFAULT_SCANOUTS 16u /* 0..15: every scanout hxfrd enables by default */

struct options {
    const char *connect;
    const char *rtsp; /* NULL: no RTSP server */
    guint16 *scanouts;
    guint n_scanouts;
    struct fanout_rtp_target rtp[MAX_RTP_TARGETS];
    guint n_rtp;
    guint max_clients;
    guint queue_units;
    gboolean verbose;
};

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: hxfr-fanout [OPTIONS]\n"
            "\n"
            "Serves hxfr scanouts to many viewers through existing media engines: RTSP\n"
            "(rtsp://HOST:PORT/scanout/N, for ffplay, VLC, recorders) and RTP H.264 to a\n"
            "WebRTC engine's input, e.g. a Janus streaming mountpoint, for browsers.\n"
            "Each scanout is subscribed to once, whatever the number of viewers, and\n"
            "encoded once on the host; every new viewer starts at an IDR.\n"
            "\n"
            "Options:\n"
            "  -c, --connect URI       the hxfr host: unix:PATH, tcp:HOST:PORT, vsock:CID:PORT\n"
            "                          (default: the daemon's default socket,\n"
            "                          $XDG_RUNTIME_DIR/hxfr/hxfr.sock)\n"
            "  -r, --rtsp HOST:PORT    where to serve RTSP (default %s). Loopback only\n"
            "                          unless you say otherwise (0.0.0.0:8554 for other\n"
            "                          machines); port 0 picks a free port. The first line\n"
            "                          on stdout is \"hxfr-fanout: serving rtsp://HOST:PORT/...\"\n"
            "      --no-rtsp           no RTSP server (RTP senders only)\n"
            "  -s, --scanout N|A-B     offer scanout N (or A..B) over RTSP; repeatable\n"
            "                          (default 0-%u)\n"
            "      --rtp N=HOST:PORT[:RTCPPORT]\n"
            "                          send scanout N as RTP H.264 (payload type %u) to\n"
            "                          HOST:PORT, e.g. a Janus mountpoint's video port; with\n"
            "                          RTCPPORT (its videortcpport) the engine's PLI/FIR\n"
            "                          reach the host as KEYFRAME_REQ. Repeatable (%u)\n"
            "      --max-clients N     RTSP connections served at once (default %u); more\n"
            "                          get 503 Service Unavailable\n"
            "      --queue-units N     access units queued per viewer before it is behind\n"
            "                          and skips to the next IDR (default %u)\n"
            "  -v, --verbose           log every viewer event and keyframe request\n"
            "  -h, --help              this text\n"
            "  -V, --version           print the version\n"
            "\n"
            "Signals: SIGTERM or SIGINT close every viewer and subscription and exit 0.\n",
            DEFAULT_RTSP, DEFAULT_SCANOUTS - 1, FANOUT_RTP_PT, MAX_RTP_TARGETS,
            FANOUT_DEFAULT_RTSP_CLIENTS, FANOUT_DEFAULT_QUEUE_UNITS);
}

static G_GNUC_NORETURN G_GNUC_PRINTF(1, 2) void die_usage(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "hxfr-fanout: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nTry 'hxfr-fanout --help'.\n");
    va_end(ap);
    exit(2);
}

static guint parse_uint(const char *opt, const char *s, guint min, guint max)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-' || v < min || v > max) {
        die_usage("%s: '%s' is not a number in %u..%u", opt, s, min, max);
    }
    return (guint)v;
}

static void add_scanouts(struct options *o, const char *s)
{
    guint a, b;
    const char *dash = strchr(s, '-');
    if (dash) {
        gchar *first = g_strndup(s, (gsize)(dash - s));
        a = parse_uint("--scanout", first, 0, 65535);
        g_free(first);
        b = parse_uint("--scanout", dash + 1, 0, 65535);
    } else {
        a = b = parse_uint("--scanout", s, 0, 65535);
    }
    if (b < a) {
        die_usage("--scanout: '%s' is an empty range", s);
    }
    for (guint id = a; id <= b; id++) {
        gboolean seen = FALSE;
        for (guint i = 0; i < o->n_scanouts && !seen; i++) {
            seen = o->scanouts[i] == id;
        }
        if (!seen) {
            if (o->n_scanouts >= 65536u) {
                break;
            }
            o->scanouts = g_renew(guint16, o->scanouts, o->n_scanouts + 1);
            o->scanouts[o->n_scanouts++] = (guint16)id;
        }
    }
}

/* "HOST:PORT" or "[V6]:PORT" into host and port strings (allocated). */
static void split_host_port(const char *opt, const char *s, gchar **host, gchar **port)
{
    const char *colon;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':') {
            die_usage("%s: '%s': an IPv6 address goes in brackets, e.g. [::1]:8554", opt, s);
        }
        *host = g_strndup(s + 1, (gsize)(close - s - 1));
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon) {
            die_usage("%s: '%s' is not HOST:PORT", opt, s);
        }
        *host = g_strndup(s, (gsize)(colon - s));
    }
    parse_uint(opt, colon + 1, 0, 65535);
    *port = g_strdup(colon + 1);
    if (!**host) {
        die_usage("%s: '%s' has no host", opt, s);
    }
}

static void parse_args(int argc, char **argv, struct options *o)
{
    enum { O_NO_RTSP = 256, O_RTP, O_MAX_CLIENTS, O_QUEUE_UNITS };
    static const struct option longopts[] = {
        {"connect", required_argument, NULL, 'c'},
        {"rtsp", required_argument, NULL, 'r'},
        {"no-rtsp", no_argument, NULL, O_NO_RTSP},
        {"scanout", required_argument, NULL, 's'},
        {"rtp", required_argument, NULL, O_RTP},
        {"max-clients", required_argument, NULL, O_MAX_CLIENTS},
        {"queue-units", required_argument, NULL, O_QUEUE_UNITS},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    o->rtsp = DEFAULT_RTSP;
    int c;
    while ((c = getopt_long(argc, argv, "c:r:s:vhV", longopts, NULL)) != -1) {
        switch (c) {
        case 'c':
            o->connect = optarg;
            break;
        case 'r':
            o->rtsp = optarg;
            break;
        case O_NO_RTSP:
            o->rtsp = NULL;
            break;
        case 's':
            add_scanouts(o, optarg);
            break;
        case O_RTP: {
            if (o->n_rtp >= MAX_RTP_TARGETS) {
                die_usage("--rtp: at most %u targets", MAX_RTP_TARGETS);
            }
            GError *err = NULL;
            if (!fanout_rtp_target_parse(optarg, &o->rtp[o->n_rtp], &err)) {
                die_usage("--rtp: %s", err->message);
            }
            o->n_rtp++;
            break;
        }
        case O_MAX_CLIENTS:
            o->max_clients = parse_uint("--max-clients", optarg, 1, 100000);
            break;
        case O_QUEUE_UNITS:
            o->queue_units = parse_uint("--queue-units", optarg, 1, 1000);
            break;
        case 'v':
            o->verbose = TRUE;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        case 'V':
            printf("hxfr-fanout %s (GStreamer %s)\n", HXFR_VERSION, gst_version_string());
            exit(0);
        default:
            die_usage("unknown option");
        }
    }
    if (optind < argc) {
        die_usage("unexpected argument '%s'", argv[optind]);
    }
    if (!o->rtsp && o->n_rtp == 0) {
        die_usage("nothing to do: --no-rtsp and no --rtp");
    }
    if (o->n_scanouts == 0) {
        add_scanouts(o, "0-15");
    }
}

static gboolean on_signal(gpointer data)
{
    g_main_loop_quit(data);
    return G_SOURCE_CONTINUE;
}

int main(int argc, char **argv)
{
    gst_init(&argc, &argv);
    struct options o = {0};
    parse_args(argc, argv, &o);
    fanout_log_init(o.verbose);
    signal(SIGPIPE, SIG_IGN);

    char default_socket[HXFR_URI_PATH_MAX];
    gchar *connect = NULL;
    if (o.connect) {
        connect = g_strdup(o.connect);
    } else {
        if (hxfr__default_socket_path(default_socket, sizeof(default_socket)) < 0) {
            fprintf(stderr, "hxfr-fanout: no default socket path; use --connect\n");
            return 1;
        }
        connect = g_strdup_printf("unix:%s", default_socket);
    }

    int rc = 1;
    struct fanout_rtsp *rtsp = NULL;
    struct fanout_rtp *rtp[MAX_RTP_TARGETS] = {0};
    GMainLoop *loop = g_main_loop_new(NULL, FALSE);
    struct fanout_hub_options ho = {
        .address = connect, .queue_units = o.queue_units, .verbose = o.verbose};
    struct fanout_hubs *hubs = fanout_hubs_new(&ho);
    if (!hubs) {
        fprintf(stderr, "hxfr-fanout: cannot register the hxfrsrc element\n");
        goto out;
    }
    if (o.rtsp) {
        gchar *host, *port;
        split_host_port("--rtsp", o.rtsp, &host, &port);
        struct fanout_rtsp_options ro = {.host = host,
                                         .port = port,
                                         .scanouts = o.scanouts,
                                         .n_scanouts = o.n_scanouts,
                                         .max_clients = o.max_clients};
        GError *err = NULL;
        rtsp = fanout_rtsp_new(hubs, &ro, &err);
        if (!rtsp) {
            fprintf(stderr, "hxfr-fanout: cannot serve RTSP on %s: %s\n", o.rtsp,
                    err ? err->message : "unknown error");
            g_clear_error(&err);
            g_free(host);
            g_free(port);
            goto out;
        }
        gboolean v6 = strchr(host, ':') != NULL;
        if (o.n_scanouts == 1) {
            printf("hxfr-fanout: serving rtsp://%s%s%s:%u/scanout/%u\n", v6 ? "[" : "", host,
                   v6 ? "]" : "", fanout_rtsp_port(rtsp), (unsigned)o.scanouts[0]);
        } else {
            printf("hxfr-fanout: serving rtsp://%s%s%s:%u/scanout/N (%u scanouts, %u..%u)\n",
                   v6 ? "[" : "", host, v6 ? "]" : "", fanout_rtsp_port(rtsp), o.n_scanouts,
                   (unsigned)o.scanouts[0], (unsigned)o.scanouts[o.n_scanouts - 1]);
        }
        g_free(host);
        g_free(port);
    }
    for (guint i = 0; i < o.n_rtp; i++) {
        GError *err = NULL;
        rtp[i] = fanout_rtp_new(hubs, &o.rtp[i], &err);
        if (!rtp[i]) {
            fprintf(stderr, "hxfr-fanout: --rtp %u=%s:%u: %s\n", (unsigned)o.rtp[i].scanout,
                    o.rtp[i].host, (unsigned)o.rtp[i].port, err ? err->message : "failed");
            g_clear_error(&err);
            goto out;
        }
        printf("hxfr-fanout: sending scanout %u as RTP to %s:%u", (unsigned)o.rtp[i].scanout,
               o.rtp[i].host, (unsigned)o.rtp[i].port);
        if (o.rtp[i].rtcp_port) {
            printf(" (RTCP %u)", (unsigned)o.rtp[i].rtcp_port);
        }
        printf("\n");
    }
    fflush(stdout);

    g_unix_signal_add(SIGTERM, on_signal, loop);
    g_unix_signal_add(SIGINT, on_signal, loop);
    g_main_loop_run(loop);
    fanout_log("exiting");
    rc = 0;

out:
    for (guint i = 0; i < o.n_rtp; i++) {
        fanout_rtp_destroy(rtp[i]);
        g_free(o.rtp[i].host);
    }
    fanout_rtsp_destroy(rtsp);
    fanout_hubs_destroy(hubs);
    g_main_loop_unref(loop);
    g_free(o.scanouts);
    g_free(connect);
    gst_deinit();
    return rc;
}
