/* hxfrd: the hxfr host daemon, a thin main() over libhxfr-host.
 *
 * It parses options, opens the listeners (or takes systemd's), and runs the
 * server the way an embedder would: poll() over the server's fd, a
 * signalfd for SIGTERM/SIGINT and a timerfd for periodic statistics.
 * docs/hxfrd.md documents every option.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <hxfr/host.h>

#include "encoders/encoder.h"
#include "hxfr-config.h"
#include "transport/transport.h"

#define MAX_LISTEN 16
#define MAX_SHM    16

static const char *level_names[] = {"error", "warn", "info", "debug"};

/* The most verbose level printed (--log-level). Statistics lines, asked
 * for with --stats-interval, are printed whatever the level. */
static enum hxfr_host_log_level log_max = HXFR_HOST_LOG_INFO;

static void print_line(enum hxfr_host_log_level level, const char *msg)
{
    struct timespec ts;
    struct tm tm;
    char stamp[32];

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(stamp, sizeof(stamp), "%H:%M:%S", &tm);
    fprintf(stderr, "hxfrd %s.%03ld [%s] %s\n", stamp, ts.tv_nsec / 1000000L,
            level_names[level <= HXFR_HOST_LOG_DEBUG ? level : HXFR_HOST_LOG_DEBUG], msg);
}

static void log_line(void *opaque, enum hxfr_host_log_level level, const char *msg)
{
    (void)opaque;
    if (level <= log_max) {
        print_line(level, msg);
    }
}

/* FFmpeg's lines (hxfr_host_set_ffmpeg_log), prefixed "ffmpeg: ". Its
 * errors are shown at every --log-level; its warnings, info and debug
 * lines only with --log-level debug: x264 alone prints a banner and a
 * statistics block per encoder at info level, that is, per client. May be
 * called on any thread (print_line writes one line with one fprintf). */
static void ffmpeg_line(void *opaque, enum hxfr_host_log_level level, const char *msg)
{
    (void)opaque;
    if (level == HXFR_HOST_LOG_ERROR || log_max >= HXFR_HOST_LOG_DEBUG) {
        char line[1100];
        snprintf(line, sizeof(line), "ffmpeg: %s", msg);
        print_line(level, line);
    }
}

static void die_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die_usage(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "hxfrd: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'hxfrd --help'.\n");
    exit(2);
}

static void usage(void)
{
    printf(
        "Usage: hxfrd [OPTION]...\n"
        "The hxfr host daemon: encodes frames sent by guests to H.264 and returns the\n"
        "access units (HXFR protocol, see docs/protocol.md and docs/hxfrd.md).\n"
        "\n"
        "Endpoints:\n"
        "  --listen URI          listen on URI; repeatable. Forms:\n"
        "                          unix:PATH      UNIX socket (mode 0660; stale file replaced)\n"
        "                          tcp:HOST:PORT  TCP (default 127.0.0.1:15937; port 0 = any)\n"
        "                          vsock:PORT     AF_VSOCK, any CID (default port 5000)\n"
        "                        Without --listen and without systemd socket activation\n"
        "                        (LISTEN_FDS): unix:$XDG_RUNTIME_DIR/hxfr/hxfr.sock\n"
        "                        (root: unix:/run/hxfr/hxfr.sock).\n"
        "  --shm NAME=PATH       offer the file PATH as shared-memory region NAME (repeatable):\n"
        "                        clients attach frame rings in it by name, e.g. the\n"
        "                        mem-path of QEMU's memory-backend-file behind ivshmem-plain\n"
        "  --ready-fd N          once listening, write one line per endpoint (its actual\n"
        "                        URI, e.g. with the port the kernel chose) to fd N, then\n"
        "                        close it: readiness signal for supervisors and tests\n"
        "\n"
        "Encoding:\n"
        "  --encoder NAME        FFmpeg H.264 encoder (default libx264)\n"
        "  --list-encoders       print the encoders this machine can open, then exit\n"
        "  --preset NAME         encoder preset (default: the encoder's low-latency choice)\n"
        "  --threads N           threads per encoder (default 0: encoder decides)\n"
        "  --gop N               default keyframe interval in frames (default 60)\n"
        "  --workers N           encode worker threads (default: one per CPU)\n"
        "\n"
        "Limits:\n"
        "  --max-size WxH|N      largest frame accepted (default 4096x4096, at most 8192)\n"
        "  --window N            frames in flight per client before its socket is no\n"
        "                        longer read (default 4, at most 64)\n"
        "  --max-clients N       connections served at once (default 64); more are\n"
        "                        accepted, answered ERROR BUSY and closed\n"
        "  --max-sessions N      sessions per client (default 16)\n"
        "  --max-output BYTES    queued output per client before it is cut as not\n"
        "                        reading (default 64M; suffixes K, M, G)\n"
        "  --idle-timeout SEC    close clients that send nothing for SEC seconds while\n"
        "                        nothing is in flight (default 0: never; TCP clients\n"
        "                        always get keepalive probes)\n"
        "  --handshake-timeout SEC close connections that have not sent one complete\n"
        "                        message within SEC seconds of connecting (default 10;\n"
        "                        0: never). Over UNIX sockets only once the daemon\n"
        "                        has been full since the connection was made: QEMU\n"
        "                        socket chardevs connect long before the guest speaks\n"
        "  --shutdown-timeout MS bound on finishing frames after SIGTERM (default 2000)\n"
        "\n"
        "Scanouts (push mode):\n"
        "  --keepalive-ms MS     re-encode a scanout's last frame when its publisher sent\n"
        "                        nothing for MS ms and it has subscribers (default 500)\n"
        "  --max-scanouts N      scanouts enabled at once (default 16)\n"
        "  --max-subscribers N   subscribers per scanout (default 32)\n"
        "  --subscriber-queue N  messages queued for one subscriber before its frames\n"
        "                        are dropped until it catches up (default 8)\n"
        "\n"
        "Logging:\n"
        "  --log-level LEVEL     error, warn, info (default) or debug; logs go to stderr\n"
        "  --stats-interval SEC  log per-session fps, kbit/s, encode ms p50/p99 and pixel\n"
        "                        bytes copied every SEC seconds (default 0: off)\n"
        "\n"
        "  --help                this text\n"
        "  --version             the version\n"
        "\n"
        "Signals: SIGTERM or SIGINT stop accepting, finish or fail the frames in flight\n"
        "(bounded by --shutdown-timeout), close every client, remove the socket files\n"
        "and exit 0.\n");
}

static unsigned long parse_num(const char *opt, const char *s, unsigned long max)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || end == s || *end || v > max || s[0] == '-') {
        die_usage("%s: '%s' is not a number in 0..%lu", opt, s, max);
    }
    return v;
}

static size_t parse_bytes(const char *opt, const char *s)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || s[0] == '-') {
        die_usage("%s: '%s' is not a size", opt, s);
    }
    unsigned long long mul = 1;
    if (*end == 'K' || *end == 'k') {
        mul = 1024ull;
        end++;
    } else if (*end == 'M' || *end == 'm') {
        mul = 1024ull * 1024ull;
        end++;
    } else if (*end == 'G' || *end == 'g') {
        mul = 1024ull * 1024ull * 1024ull;
        end++;
    }
    if (*end || v == 0 || v > SIZE_MAX / mul) {
        die_usage("%s: '%s' is not a size", opt, s);
    }
    return (size_t)(v * mul);
}

static void print_encoder(void *opaque, const char *codec, const char *backend)
{
    (void)opaque;
    printf("%s (%s)\n", codec, backend);
}

static void log_session(void *opaque, const struct hxfr_host_session_stats *s)
{
    (void)opaque;
    double secs = s->interval_ns / 1e9;
    char line[400];
    snprintf(line, sizeof(line),
             "stats client %" PRIu64 " session %u: %ux%u %s %s: %.1f fps, %.0f kbit/s, "
             "encode p50 %.2f ms p99 %.2f ms, %" PRIu64 " frames, %" PRIu64
             " pixel bytes copied (client %" PRIu64 "), %" PRIu64 " shm frames",
             s->client_id, (unsigned)s->session_id, s->width, s->height,
             hxfr_format_name(s->format) ? hxfr_format_name(s->format) : "-",
             s->encoder[0] ? s->encoder : "-", secs > 0 ? s->interval_frames / secs : 0.0,
             secs > 0 ? s->interval_bytes * 8.0 / 1000.0 / secs : 0.0, s->encode_ms_p50,
             s->encode_ms_p99, s->frames, s->pixel_bytes_copied, s->client_pixel_bytes_copied,
             s->shm_frames);
    print_line(HXFR_HOST_LOG_INFO, line);
}

/* One line for push mode, when the server has or had scanouts. */
static void log_scanouts(struct hxfr_host *host)
{
    struct hxfr_host_stats st;
    char line[400];

    hxfr_host_get_stats(host, &st);
    if (st.scanouts == 0 && st.scanout_units_sent == 0 && st.keepalive_frames == 0) {
        return;
    }
    snprintf(line, sizeof(line),
             "stats scanouts: %u enabled, %u subscribers, %" PRIu64 " units sent, %" PRIu64
             " dropped, %" PRIu64 " re-encodes (keepalive/IDR), %" PRIu64
             " keep-copy bytes, %" PRIu64 " bytes kept",
             st.scanouts, st.subscribers, st.scanout_units_sent, st.scanout_units_dropped,
             st.keepalive_frames, st.keep_copy_bytes, st.keep_bytes);
    print_line(HXFR_HOST_LOG_INFO, line);
}

static const char *env_or_empty(const char *name)
{
    const char *v = getenv(name);
    return v ? v : "";
}

enum {
    OPT_LISTEN = 256,
    OPT_READY_FD,
    OPT_SHM,
    OPT_ENCODER,
    OPT_LIST_ENCODERS,
    OPT_PRESET,
    OPT_THREADS,
    OPT_GOP,
    OPT_WORKERS,
    OPT_MAX_SIZE,
    OPT_WINDOW,
    OPT_MAX_CLIENTS,
    OPT_MAX_SESSIONS,
    OPT_MAX_OUTPUT,
    OPT_IDLE_TIMEOUT,
    OPT_HANDSHAKE_TIMEOUT,
    OPT_SHUTDOWN_TIMEOUT,
    OPT_LOG_LEVEL,
    OPT_STATS_INTERVAL,
    OPT_KEEPALIVE_MS,
    OPT_MAX_SCANOUTS,
    OPT_MAX_SUBSCRIBERS,
    OPT_SUBSCRIBER_QUEUE,
    OPT_HELP,
    OPT_VERSION,
};

static const struct option options[] = {
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"ready-fd", required_argument, NULL, OPT_READY_FD},
    {"shm", required_argument, NULL, OPT_SHM},
    {"encoder", required_argument, NULL, OPT_ENCODER},
    {"list-encoders", no_argument, NULL, OPT_LIST_ENCODERS},
    {"preset", required_argument, NULL, OPT_PRESET},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"gop", required_argument, NULL, OPT_GOP},
    {"workers", required_argument, NULL, OPT_WORKERS},
    {"max-size", required_argument, NULL, OPT_MAX_SIZE},
    {"window", required_argument, NULL, OPT_WINDOW},
    {"max-clients", required_argument, NULL, OPT_MAX_CLIENTS},
    {"max-sessions", required_argument, NULL, OPT_MAX_SESSIONS},
    {"max-output", required_argument, NULL, OPT_MAX_OUTPUT},
    {"idle-timeout", required_argument, NULL, OPT_IDLE_TIMEOUT},
    {"handshake-timeout", required_argument, NULL, OPT_HANDSHAKE_TIMEOUT},
    {"shutdown-timeout", required_argument, NULL, OPT_SHUTDOWN_TIMEOUT},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"stats-interval", required_argument, NULL, OPT_STATS_INTERVAL},
    {"keepalive-ms", required_argument, NULL, OPT_KEEPALIVE_MS},
    {"max-scanouts", required_argument, NULL, OPT_MAX_SCANOUTS},
    {"max-subscribers", required_argument, NULL, OPT_MAX_SUBSCRIBERS},
    {"subscriber-queue", required_argument, NULL, OPT_SUBSCRIBER_QUEUE},
    {"help", no_argument, NULL, OPT_HELP},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

int main(int argc, char **argv)
{
    struct hxfr_host_config cfg;
    const char *listen[MAX_LISTEN];
    int nlisten = 0;
    struct hxfr_host_shm_region shm[MAX_SHM];
    unsigned nshm = 0;
    int ready_fd = -1;
    unsigned stats_interval = 0;
    bool list_encoders = false;
    int ret = 1;
    struct hxfr_host *host = NULL;
    int sfd = -1, tfd = -1;
    int sd_fds[MAX_LISTEN];
    int nsd = 0, sd_next = 0;            /* activated fds; those before sd_next are the server's */
    char listen_pid[32], listen_fds[32]; /* for the error message: the call unsets them */

    hxfr_host_config_init(&cfg);
    cfg.log = log_line;

    int opt;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case OPT_LISTEN:
            if (nlisten >= MAX_LISTEN) {
                die_usage("at most %d --listen options", MAX_LISTEN);
            }
            listen[nlisten++] = optarg;
            break;
        case OPT_SHM: {
            char *eq = strchr(optarg, '=');
            if (!eq || eq == optarg || !eq[1]) {
                die_usage("--shm: '%s' is not NAME=PATH", optarg);
            }
            if (nshm >= MAX_SHM) {
                die_usage("at most %d --shm options", MAX_SHM);
            }
            *eq = '\0';
            if (strlen(optarg) >= HXFR_SHM_NAME_LEN) {
                die_usage("--shm: name '%s' is longer than %u bytes", optarg,
                          HXFR_SHM_NAME_LEN - 1);
            }
            for (unsigned i = 0; i < nshm; i++) {
                if (strcmp(shm[i].name, optarg) == 0) {
                    die_usage("--shm: region '%s' given twice", optarg);
                }
            }
            shm[nshm].name = optarg;
            shm[nshm].path = eq + 1;
            nshm++;
            break;
        }
        case OPT_READY_FD:
            ready_fd = (int)parse_num("--ready-fd", optarg, INT_MAX);
            break;
        case OPT_ENCODER:
            cfg.encoder = optarg;
            break;
        case OPT_LIST_ENCODERS:
            list_encoders = true;
            break;
        case OPT_PRESET:
            cfg.preset = optarg;
            break;
        case OPT_THREADS:
            cfg.encoder_threads = (int)parse_num("--threads", optarg, 64);
            break;
        case OPT_GOP:
            cfg.gop = (uint32_t)parse_num("--gop", optarg, 100000);
            break;
        case OPT_WORKERS:
            cfg.workers = (unsigned)parse_num("--workers", optarg, 256);
            if (cfg.workers == 0) {
                die_usage("--workers: at least 1");
            }
            break;
        case OPT_MAX_SIZE: {
            unsigned long w, hgt;
            char extra;
            if (sscanf(optarg, "%lux%lu%c", &w, &hgt, &extra) == 2) {
                /* WxH */
            } else if (sscanf(optarg, "%lu%c", &w, &extra) == 1) {
                hgt = w;
            } else {
                die_usage("--max-size: '%s' is not WxH or N", optarg);
            }
            if (w < 16 || hgt < 16 || w > HXFR_MAX_DIM_HARD || hgt > HXFR_MAX_DIM_HARD) {
                die_usage("--max-size: each side must be 16..%u", HXFR_MAX_DIM_HARD);
            }
            cfg.max_width = (uint32_t)w;
            cfg.max_height = (uint32_t)hgt;
            break;
        }
        case OPT_WINDOW:
            cfg.window = (unsigned)parse_num("--window", optarg, 64);
            if (cfg.window == 0) {
                die_usage("--window: at least 1");
            }
            break;
        case OPT_MAX_CLIENTS:
            cfg.max_clients = (unsigned)parse_num("--max-clients", optarg, 65536);
            if (cfg.max_clients == 0) {
                die_usage("--max-clients: at least 1");
            }
            break;
        case OPT_MAX_SESSIONS:
            cfg.max_sessions = (unsigned)parse_num("--max-sessions", optarg, 65536);
            if (cfg.max_sessions == 0) {
                die_usage("--max-sessions: at least 1");
            }
            break;
        case OPT_MAX_OUTPUT:
            cfg.max_output = parse_bytes("--max-output", optarg);
            break;
        case OPT_IDLE_TIMEOUT:
            cfg.idle_timeout_ms = (unsigned)parse_num("--idle-timeout", optarg, 86400) * 1000u;
            break;
        case OPT_HANDSHAKE_TIMEOUT: {
            unsigned sec = (unsigned)parse_num("--handshake-timeout", optarg, 86400);
            cfg.handshake_timeout_ms = sec ? sec * 1000u : HXFR_HOST_TIMEOUT_NEVER;
            break;
        }
        case OPT_SHUTDOWN_TIMEOUT:
            cfg.shutdown_timeout_ms = (unsigned)parse_num("--shutdown-timeout", optarg, 600000);
            break;
        case OPT_LOG_LEVEL: {
            int found = -1;
            for (int i = 0; i < 4; i++) {
                if (strcmp(optarg, level_names[i]) == 0) {
                    found = i;
                }
            }
            if (found < 0) {
                die_usage("--log-level: '%s' is not error, warn, info or debug", optarg);
            }
            cfg.log_level = (enum hxfr_host_log_level)found;
            log_max = cfg.log_level;
            break;
        }
        case OPT_STATS_INTERVAL:
            stats_interval = (unsigned)parse_num("--stats-interval", optarg, 86400);
            break;
        case OPT_KEEPALIVE_MS:
            cfg.keepalive_ms = (unsigned)parse_num("--keepalive-ms", optarg, 3600000);
            if (cfg.keepalive_ms < 10) {
                die_usage("--keepalive-ms: at least 10");
            }
            break;
        case OPT_MAX_SCANOUTS:
            cfg.max_scanouts = (unsigned)parse_num("--max-scanouts", optarg, 65536);
            if (cfg.max_scanouts == 0) {
                die_usage("--max-scanouts: at least 1");
            }
            break;
        case OPT_MAX_SUBSCRIBERS:
            cfg.max_subscribers = (unsigned)parse_num("--max-subscribers", optarg, 4096);
            if (cfg.max_subscribers == 0) {
                die_usage("--max-subscribers: at least 1");
            }
            break;
        case OPT_SUBSCRIBER_QUEUE:
            cfg.subscriber_queue = (unsigned)parse_num("--subscriber-queue", optarg, 1024);
            if (cfg.subscriber_queue == 0) {
                die_usage("--subscriber-queue: at least 1");
            }
            break;
        case OPT_HELP:
            usage();
            return 0;
        case OPT_VERSION:
            printf("hxfrd %s\n", HXFR_VERSION);
            return 0;
        default:
            die_usage("unknown option");
        }
    }
    if (optind < argc) {
        die_usage("unexpected argument '%s'", argv[optind]);
    }
    /* hxfrd is the application: FFmpeg's log goes through its logger. */
    hxfr_host_set_ffmpeg_log(ffmpeg_line, NULL);
    if (list_encoders) {
        int n = hxfr__encoder_list(print_encoder, NULL);
        if (n <= 0) {
            fprintf(stderr, "hxfrd: no H.264 encoder can be opened on this machine\n");
            return 1;
        }
        return 0;
    }

    /* Signals are taken through a signalfd in the loop; a write to a
     * vanished client must not kill the daemon. */
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);
    sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sfd < 0) {
        fprintf(stderr, "hxfrd: signalfd: %s\n", strerror(errno));
        goto out;
    }

    /* Before any thread starts (hxfr_host_new starts the workers): this
     * reads and unsets the environment. A malformed activation is an error,
     * never a silent fall back to the default socket: the supervisor would
     * think hxfrd serves its sockets. */
    snprintf(listen_pid, sizeof(listen_pid), "%s", env_or_empty("LISTEN_PID"));
    snprintf(listen_fds, sizeof(listen_fds), "%s", env_or_empty("LISTEN_FDS"));
    nsd = hxfr__sd_listen_fds(sd_fds, MAX_LISTEN);
    if (nsd < 0) {
        const char *why = nsd == -EBADF    ? "a descriptor it names is not open"
                          : nsd == -EINVAL ? "LISTEN_PID or LISTEN_FDS is not a number"
                                           : strerror(-nsd);
        fprintf(stderr,
                "hxfrd: systemd socket activation (LISTEN_PID=%s LISTEN_FDS=%s) is malformed: "
                "%s\n",
                listen_pid, listen_fds, why);
        nsd = 0;
        goto out;
    }

    cfg.shm_regions = shm;
    cfg.shm_region_count = nshm;
    for (unsigned i = 0; i < nshm; i++) {
        /* Mapped at each attach (QEMU may create the file after hxfrd
         * starts); say now if it is not there yet. */
        if (access(shm[i].path, R_OK) < 0) {
            char line[400];
            snprintf(line, sizeof(line), "shm region '%s': %s: %s (clients attaching now fail)",
                     shm[i].name, shm[i].path, strerror(errno));
            log_line(NULL, HXFR_HOST_LOG_WARN, line);
        }
    }
    host = hxfr_host_new(&cfg);
    if (!host) {
        fprintf(stderr, "hxfrd: cannot start the server: %s\n", strerror(errno));
        goto out;
    }

    for (; sd_next < nsd; sd_next++) {
        /* The server owns the fd from here on, even if this fails. */
        int fd = sd_fds[sd_next];
        int r = hxfr_host_listen_fd(host, fd);
        if (r < 0) {
            fprintf(stderr, "hxfrd: socket-activation fd %d: %s\n", fd, strerror(-r));
            sd_next++;
            goto out;
        }
    }
    char default_uri[HXFR_URI_PATH_MAX + 8];
    if (nlisten == 0 && nsd <= 0) {
        char path[HXFR_URI_PATH_MAX];
        int r = hxfr__default_socket_path(path, sizeof(path));
        if (r < 0) {
            fprintf(stderr, "hxfrd: no default socket path: %s\n", strerror(-r));
            goto out;
        }
        snprintf(default_uri, sizeof(default_uri), "unix:%s", path);
        listen[nlisten++] = default_uri;
    }
    for (int i = 0; i < nlisten; i++) {
        int r = hxfr_host_listen(host, listen[i], NULL, 0);
        if (r < 0) {
            const char *hint = "";
            if (r == -EAFNOSUPPORT) {
                hint = " (AF_VSOCK is not available on this machine: load the vsock "
                       "kernel modules or use unix:/tcp:)";
            } else if (r == -EADDRINUSE) {
                hint = " (another server is listening there)";
            } else if (r == -EPROTONOSUPPORT || r == -EINVAL) {
                hint = " (forms: unix:PATH, tcp:HOST:PORT, vsock:PORT)";
            }
            fprintf(stderr, "hxfrd: cannot listen on %s: %s%s\n", listen[i], strerror(-r), hint);
            goto out;
        }
    }
    if (ready_fd >= 0) {
        char uri[320];
        for (int i = 0; hxfr_host_listener_uri(host, i, uri, sizeof(uri)) >= 0; i++) {
            dprintf(ready_fd, "%s\n", uri);
        }
        close(ready_fd);
    }

    if (stats_interval > 0) {
        tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        struct itimerspec its = {.it_interval = {.tv_sec = stats_interval},
                                 .it_value = {.tv_sec = stats_interval}};
        if (tfd < 0 || timerfd_settime(tfd, 0, &its, NULL) < 0) {
            fprintf(stderr, "hxfrd: stats timer: %s\n", strerror(errno));
            goto out;
        }
    }

    for (;;) {
        struct pollfd pfd[3] = {
            {.fd = hxfr_host_get_fd(host), .events = POLLIN},
            {.fd = sfd, .events = POLLIN},
            {.fd = tfd, .events = POLLIN},
        };
        int n = poll(pfd, tfd >= 0 ? 3 : 2, -1);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            fprintf(stderr, "hxfrd: poll: %s\n", strerror(errno));
            goto out;
        }
        if (pfd[1].revents & POLLIN) {
            struct signalfd_siginfo si;
            while (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
                char line[64];
                snprintf(line, sizeof(line), "received %s", strsignal((int)si.ssi_signo));
                log_line(NULL, HXFR_HOST_LOG_INFO, line);
                hxfr_host_stop(host);
            }
        }
        if (tfd >= 0 && (pfd[2].revents & POLLIN)) {
            uint64_t v;
            if (read(tfd, &v, sizeof(v)) > 0) {
                hxfr_host_foreach_session(host, true, log_session, NULL);
                log_scanouts(host);
            }
        }
        if (pfd[0].revents & POLLIN) {
            int r = hxfr_host_dispatch(host, 0);
            if (r < 0) {
                fprintf(stderr, "hxfrd: event loop failed: %s\n", strerror(-r));
                goto out;
            }
            if (r > 0) {
                break;
            }
        }
    }
    ret = 0;

out:
    hxfr_host_destroy(host);
    for (int i = sd_next; i < nsd; i++) {
        close(sd_fds[i]);
    }
    if (tfd >= 0) {
        close(tfd);
    }
    if (sfd >= 0) {
        close(sfd);
    }
    return ret;
}
