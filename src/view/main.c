/* hxfr-view: serves a web viewer for hxfr scanouts (see --help and
 * docs/viewer.md). */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hxfr-config.h>

#include "cli.h"
#include "view.h"

static volatile int stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: hxfr-view [OPTIONS]\n"
            "\n"
            "Serves a web page per hxfr scanout and relays the scanout's H.264 stream to\n"
            "browsers over WebSocket; the page decodes it with WebCodecs onto a canvas.\n"
            "One upstream subscription per watched scanout is shared by all its browsers.\n"
            "\n"
            "Options:\n"
            "  -c, --connect [NAME=]URI  an hxfr host to subscribe to: unix:PATH, tcp:HOST:PORT,\n"
            "                          vsock:CID:PORT or a path (default: the daemon's default\n"
            "                          socket, $XDG_RUNTIME_DIR/hxfr/hxfr.sock). Repeat with a\n"
            "                          NAME ([A-Za-z0-9_-], up to 32) per VM: its pages are\n"
            "                          under /NAME/; one unnamed URI keeps the plain URLs.\n"
            "  -H, --http HOST:PORT    where to serve HTTP and WebSocket (default %s).\n"
            "                          Loopback only unless you say otherwise, e.g.\n"
            "                          --http 0.0.0.0:8080 to let other machines watch.\n"
            "                          Port 0 picks a free port (printed at startup).\n"
            "  -s, --scanout [NAME:]N  offer scanout N (0..65535) of VM NAME, or of every VM\n"
            "                          without a --scanout of its own; repeat for several\n"
            "                          (default: scanout 0)\n"
            "      --max-browsers N    refuse WebSocket clients beyond N in total (default %u)\n"
            "      --queue-frames N    frames queued per browser before it is considered\n"
            "                          behind (1..%u, default %u)\n"
            "      --queue-bytes N     bytes queued per browser likewise (default %u)\n"
            "      --max-frame-bytes N largest access unit accepted from the host\n"
            "                          (default %u)\n"
            "      --upstream-timeout MS  reconnect when the host sends nothing for MS ms\n"
            "                          (default %u; PING is sent after a quarter of it)\n"
            "      --qmp [NAME:]N=URI  input for scanout N (of VM NAME) goes to QEMU through\n"
            "                          the QMP socket URI (unix:PATH or tcp:HOST:PORT; give\n"
            "                          hxfr-view its own -qmp socket). Without it a scanout\n"
            "                          is view-only. Needs --token.\n"
            "      --token TOKEN       required of every request (?token=TOKEN in the URL,\n"
            "                          or the header Authorization: Bearer TOKEN), except\n"
            "                          /viewer.js: 16..128 characters of A-Z a-z 0-9 . _ ~ -\n"
            "      --token-file PATH   the same, read from the first line of PATH\n"
            "  -v, --verbose           log every browser and upstream event\n"
            "  -h, --help              this text\n"
            "  -V, --version           print the version\n"
            "\n"
            "Routes: /                   lists the VMs and scanouts (or redirects when there\n"
            "                            is one); /index.json the same as JSON\n"
            "        [/NAME]/scanout/N   the viewer for scanout N (of VM NAME)\n"
            "        [/NAME]/ws/N        the WebSocket stream of scanout N\n"
            "        /viewer.js          the viewer's script (embedded in this binary)\n"
            "        [/NAME]/scanout/N/info     state, size, rates (JSON)\n"
            "        [/NAME]/scanout/N/input    POST: input actions for agents (JSON)\n"
            "\n"
            "A browser that cannot keep up loses frames (its own only) and resumes at the\n"
            "next keyframe; a new browser starts at a keyframe. When the host goes away the\n"
            "gateway tells the browsers and reconnects with backoff; the page reconnects by\n"
            "itself when the gateway restarts. Requests must name a loopback Host when\n"
            "serving on loopback, and a WebSocket's Origin must match its Host.\n"
            "The message format is described in docs/viewer.md.\n",
            VIEW_DEFAULT_HTTP, VIEW_DEFAULT_MAX_BROWSERS, HXFR_VIEW_QUEUE_CAP,
            VIEW_DEFAULT_QUEUE_FRAMES, VIEW_DEFAULT_QUEUE_BYTES, VIEW_DEFAULT_MAX_AU_BYTES,
            VIEW_DEFAULT_DEAD_MS);
}

/* A decimal number min..max (lib/cli's rules). */
static int parse_ulong(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
    uint64_t v;
    if (hxfr__cli_parse_u64(s, max, &v) < 0 || v < min) {
        return -EINVAL;
    }
    *out = (unsigned long)v;
    return 0;
}

enum {
    OPT_MAX_BROWSERS = 256,
    OPT_QUEUE_FRAMES,
    OPT_QUEUE_BYTES,
    OPT_MAX_FRAME_BYTES,
    OPT_UPSTREAM_TIMEOUT,
    OPT_QMP,
    OPT_TOKEN,
    OPT_TOKEN_FILE,
};

/* --qmp [NAME:]N=URI */
static int parse_qmp(const char *arg, struct view_qmp_opt *out)
{
    const char *eq = strchr(arg, '=');
    if (!eq || !eq[1]) {
        return -EINVAL;
    }
    out->uri = eq + 1;
    return hxfr__view_parse_scanout_ref(arg, (size_t)(eq - arg), out->vm, sizeof(out->vm),
                                        &out->id);
}

static int set_token(struct view_options *opt, const char *t, size_t len)
{
    if (len < VIEW_TOKEN_MIN || len > VIEW_TOKEN_MAX) {
        return -EINVAL;
    }
    for (size_t i = 0; i < len; i++) {
        char c = t[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '~' || c == '-')) {
            return -EINVAL;
        }
    }
    memcpy(opt->token, t, len);
    opt->token[len] = '\0';
    return 0;
}

static int read_token_file(struct view_options *opt, const char *path)
{
    char line[VIEW_TOKEN_MAX + 4];
    FILE *f = fopen(path, "r");
    if (!f) {
        return -errno;
    }
    char *l = fgets(line, sizeof(line), f);
    fclose(f);
    if (!l) {
        return -EINVAL;
    }
    size_t n = strcspn(line, "\r\n");
    return set_token(opt, line, n);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"connect", required_argument, NULL, 'c'},
        {"http", required_argument, NULL, 'H'},
        {"scanout", required_argument, NULL, 's'},
        {"max-browsers", required_argument, NULL, OPT_MAX_BROWSERS},
        {"queue-frames", required_argument, NULL, OPT_QUEUE_FRAMES},
        {"queue-bytes", required_argument, NULL, OPT_QUEUE_BYTES},
        {"max-frame-bytes", required_argument, NULL, OPT_MAX_FRAME_BYTES},
        {"upstream-timeout", required_argument, NULL, OPT_UPSTREAM_TIMEOUT},
        {"qmp", required_argument, NULL, OPT_QMP},
        {"token", required_argument, NULL, OPT_TOKEN},
        {"token-file", required_argument, NULL, OPT_TOKEN_FILE},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    struct view_options opt = {
        .http = VIEW_DEFAULT_HTTP,
        .max_browsers = VIEW_DEFAULT_MAX_BROWSERS,
        .queue_frames = VIEW_DEFAULT_QUEUE_FRAMES,
        .queue_bytes = VIEW_DEFAULT_QUEUE_BYTES,
        .max_au_bytes = VIEW_DEFAULT_MAX_AU_BYTES,
        .dead_ms = VIEW_DEFAULT_DEAD_MS,
    };
    char default_socket[HXFR_URI_PATH_MAX];
    char default_uri[HXFR_URI_PATH_MAX + 8];
    unsigned long v;
    int c;
    int r;

    while ((c = getopt_long(argc, argv, "c:H:s:vhV", longopts, NULL)) != -1) {
        switch (c) {
        case 'c':
            if (opt.n_connects == VIEW_MAX_VMS) {
                fprintf(stderr, "hxfr-view: at most %u --connect\n", VIEW_MAX_VMS);
                return 2;
            }
            r = hxfr__view_split_named(optarg, opt.connects[opt.n_connects].name,
                                       sizeof(opt.connects[0].name),
                                       &opt.connects[opt.n_connects].uri);
            if (r < 0) {
                fprintf(stderr, "hxfr-view: bad --connect '%s'\n", optarg);
                return 2;
            }
            opt.n_connects++;
            break;
        case 'H':
            opt.http = optarg;
            break;
        case 's':
            if (opt.n_scanouts == VIEW_MAX_SCANOUTS) {
                fprintf(stderr, "hxfr-view: at most %u scanouts\n", VIEW_MAX_SCANOUTS);
                return 2;
            }
            if (hxfr__view_parse_scanout_ref(
                    optarg, strlen(optarg), opt.scanouts[opt.n_scanouts].vm,
                    sizeof(opt.scanouts[0].vm), &opt.scanouts[opt.n_scanouts].id) < 0) {
                fprintf(stderr, "hxfr-view: bad scanout '%s' ([NAME:]0..65535)\n", optarg);
                return 2;
            }
            opt.n_scanouts++;
            break;
        case OPT_MAX_BROWSERS:
            if (parse_ulong(optarg, 1, 4096, &v) < 0) {
                fprintf(stderr, "hxfr-view: bad --max-browsers '%s' (1..4096)\n", optarg);
                return 2;
            }
            opt.max_browsers = (unsigned)v;
            break;
        case OPT_QUEUE_FRAMES:
            if (parse_ulong(optarg, 1, HXFR_VIEW_QUEUE_CAP, &v) < 0) {
                fprintf(stderr, "hxfr-view: bad --queue-frames '%s' (1..%u)\n", optarg,
                        HXFR_VIEW_QUEUE_CAP);
                return 2;
            }
            opt.queue_frames = (unsigned)v;
            break;
        case OPT_QUEUE_BYTES:
            if (parse_ulong(optarg, 1024, 1024ul * 1024 * 1024, &v) < 0) {
                fprintf(stderr, "hxfr-view: bad --queue-bytes '%s'\n", optarg);
                return 2;
            }
            opt.queue_bytes = v;
            break;
        case OPT_MAX_FRAME_BYTES:
            if (parse_ulong(optarg, 4096, HXFR_MAX_BODY_HARD, &v) < 0) {
                fprintf(stderr, "hxfr-view: bad --max-frame-bytes '%s'\n", optarg);
                return 2;
            }
            opt.max_au_bytes = (uint32_t)v;
            break;
        case OPT_UPSTREAM_TIMEOUT:
            if (parse_ulong(optarg, 400, 600000, &v) < 0) {
                fprintf(stderr, "hxfr-view: bad --upstream-timeout '%s' (400..600000 ms)\n",
                        optarg);
                return 2;
            }
            opt.dead_ms = (uint32_t)v;
            break;
        case OPT_QMP:
            if (opt.n_qmps == VIEW_MAX_SCANOUTS || parse_qmp(optarg, &opt.qmps[opt.n_qmps]) < 0) {
                fprintf(stderr, "hxfr-view: bad --qmp '%s' (want [NAME:]N=URI)\n", optarg);
                return 2;
            }
            opt.n_qmps++;
            break;
        case OPT_TOKEN:
            if (set_token(&opt, optarg, strlen(optarg)) < 0) {
                fprintf(stderr, "hxfr-view: bad --token (16..128 of A-Z a-z 0-9 . _ ~ -)\n");
                return 2;
            }
            break;
        case OPT_TOKEN_FILE:
            r = read_token_file(&opt, optarg);
            if (r < 0) {
                fprintf(stderr, "hxfr-view: --token-file %s: %s\n", optarg,
                        r == -EINVAL ? "no valid token on its first line" : strerror(-r));
                return 2;
            }
            break;
        case 'v':
            opt.verbose = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("hxfr-view %s\n", HXFR_VERSION);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "hxfr-view: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (opt.n_qmps > 0 && !opt.token[0]) {
        fprintf(stderr, "hxfr-view: --qmp lets requests control a VM: it needs --token\n");
        return 2;
    }
    if (opt.n_connects == 0) {
        if (hxfr__default_socket_path(default_socket, sizeof(default_socket)) < 0) {
            fprintf(stderr, "hxfr-view: no default socket path; use --connect\n");
            return 2;
        }
        snprintf(default_uri, sizeof(default_uri), "unix:%s", default_socket);
        opt.connects[opt.n_connects++].uri = default_uri;
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    static struct view_gateway gw;
    if (view_gateway_init(&gw, &opt) < 0) {
        return 1;
    }
    printf("hxfr-view: serving http://%s:%d/ (upstream %s%s)\n", gw.http_host, gw.port,
           opt.connects[0].uri, opt.n_connects > 1 ? " and more" : "");
    fflush(stdout);
    r = view_gateway_run(&gw, &stop_flag);
    view_gateway_finish(&gw);
    return r < 0 ? 1 : 0;
}
