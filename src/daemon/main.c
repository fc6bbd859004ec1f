/* hxfrd: the hxfr host daemon, a thin main() over libhxfr-host.
 *
 * It parses options, opens the listeners (or takes systemd's), and runs the
 * server the way an embedder would: poll() over the server's fd, a
 * signalfd for SIGTERM/SIGINT and a timerfd for periodic statistics. The
 * encoder, limit, scanout, log and statistics options, the log lines and
 * the statistics lines are src/hostcli's, shared with every program that
 * runs a server; hxfrd adds the endpoints. docs/hxfrd.md documents every
 * option.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <hxfr/host.h>

#include "cli.h"
#include "hostcli.h"
#include "hxfr-config.h"

#define MAX_LISTEN 16
#define MAX_SHM    16
/* "unix:" and a UNIX socket path (108 bytes). */
#define URI_MAX 128

/* Everything main() sets up, in setup order; finish() takes it down. */
struct daemon {
    struct hxfr_host_config cfg;
    struct hxfr_hostcli cli;
    const char *listen[MAX_LISTEN]; /* --listen URIs, or the default one */
    int nlisten;
    char default_uri[URI_MAX];
    struct hxfr_host_shm_region shm[MAX_SHM];
    unsigned nshm;
    int ready_fd;
    int sfd;                /* signalfd: SIGTERM, SIGINT */
    int sd_fds[MAX_LISTEN]; /* systemd's sockets */
    int nsd;
    int sd_next; /* those before it are the server's */
    struct hxfr_host *host;
};

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
        "\n");
    hxfr__hostcli_usage(stdout);
    printf("\n"
           "  --help                this text\n"
           "  --version             the version\n"
           "\n"
           "Signals: SIGTERM or SIGINT stop accepting, finish or fail the frames in flight\n"
           "(bounded by --shutdown-timeout), close every client, remove the socket files\n"
           "and exit 0.\n");
}

enum {
    OPT_LISTEN = 256,
    OPT_READY_FD,
    OPT_SHM,
    OPT_HELP,
    OPT_VERSION,
};

static const struct option options[] = {
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"ready-fd", required_argument, NULL, OPT_READY_FD},
    {"shm", required_argument, NULL, OPT_SHM},
    HXFR_HOSTCLI_OPTIONS,
    {"help", no_argument, NULL, OPT_HELP},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

/* --shm NAME=PATH; arg is modified (NAME ends at the '='). */
static void add_shm(struct daemon *d, char *arg)
{
    char *eq = strchr(arg, '=');
    if (!eq || eq == arg || !eq[1]) {
        die_usage("--shm: '%s' is not NAME=PATH", arg);
    }
    if (d->nshm >= MAX_SHM) {
        die_usage("at most %d --shm options", MAX_SHM);
    }
    *eq = '\0';
    if (strlen(arg) >= HXFR_SHM_NAME_LEN) {
        die_usage("--shm: name '%s' is longer than %u bytes", arg, HXFR_SHM_NAME_LEN - 1);
    }
    for (unsigned i = 0; i < d->nshm; i++) {
        if (strcmp(d->shm[i].name, arg) == 0) {
            die_usage("--shm: region '%s' given twice", arg);
        }
    }
    d->shm[d->nshm].name = arg;
    d->shm[d->nshm].path = eq + 1;
    d->nshm++;
}

/* hxfrd's own options (the endpoints, --help, --version). */
static void own_option(struct daemon *d, int opt, char *arg)
{
    uint64_t v;
    switch (opt) {
    case OPT_LISTEN:
        if (d->nlisten >= MAX_LISTEN) {
            die_usage("at most %d --listen options", MAX_LISTEN);
        }
        d->listen[d->nlisten++] = arg;
        break;
    case OPT_SHM:
        add_shm(d, arg);
        break;
    case OPT_READY_FD:
        if (hxfr__cli_parse_u64(arg, INT_MAX, &v) < 0) {
            die_usage("--ready-fd: '%s' is not a number in 0..%d", arg, INT_MAX);
        }
        d->ready_fd = (int)v;
        break;
    case OPT_HELP:
        usage();
        exit(0);
    case OPT_VERSION:
        printf("hxfrd %s\n", HXFR_VERSION);
        exit(0);
    default:
        die_usage("unknown option");
    }
}

/* Every option; a bad one exits with status 2. */
static void parse_args(struct daemon *d, int argc, char **argv)
{
    int opt;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        char err[256];
        int r = hxfr__hostcli_option(&d->cli, opt, optarg, err, sizeof(err));
        if (r < 0) {
            die_usage("%s", err);
        }
        if (r == 0) {
            own_option(d, opt, optarg);
        }
    }
    if (optind < argc) {
        die_usage("unexpected argument '%s'", argv[optind]);
    }
    d->cfg.shm_regions = d->shm;
    d->cfg.shm_region_count = d->nshm;
}

/* Signals are taken through a signalfd in the loop; a write to a vanished
 * client must not kill the daemon. */
static int take_signals(struct daemon *d)
{
    int fd = hxfr__hostcli_signalfd();
    if (fd < 0) {
        fprintf(stderr, "hxfrd: signalfd: %s\n", strerror(-fd));
        return -1;
    }
    d->sfd = fd;
    return 0;
}

static const char *env_or_empty(const char *name)
{
    const char *v = getenv(name);
    return v ? v : "";
}

/* systemd's sockets, before any thread starts (hxfr_host_new starts the
 * workers): this reads and unsets the environment. A malformed activation
 * is an error, never a silent fall back to the default socket: the
 * supervisor would think hxfrd serves its sockets. */
static int take_activated_sockets(struct daemon *d)
{
    char listen_pid[32], listen_fds[32]; /* for the message: the call unsets them */
    snprintf(listen_pid, sizeof(listen_pid), "%s", env_or_empty("LISTEN_PID"));
    snprintf(listen_fds, sizeof(listen_fds), "%s", env_or_empty("LISTEN_FDS"));
    int n = hxfr_host_sd_listen_fds(d->sd_fds, MAX_LISTEN);
    if (n < 0) {
        const char *why = n == -EBADF    ? "a descriptor it names is not open"
                          : n == -EINVAL ? "LISTEN_PID or LISTEN_FDS is not a number"
                                         : strerror(-n);
        fprintf(stderr,
                "hxfrd: systemd socket activation (LISTEN_PID=%s LISTEN_FDS=%s) is malformed: "
                "%s\n",
                listen_pid, listen_fds, why);
        return -1;
    }
    d->nsd = n;
    return 0;
}

/* Regions are mapped at each attach (QEMU may create the file after hxfrd
 * starts); say now if one is not there yet. */
static void check_shm_files(struct daemon *d)
{
    for (unsigned i = 0; i < d->nshm; i++) {
        if (access(d->shm[i].path, R_OK) < 0) {
            hxfr__hostcli_logf(&d->cli, HXFR_HOST_LOG_WARN,
                               "shm region '%s': %s: %s (clients attaching now fail)",
                               d->shm[i].name, d->shm[i].path, strerror(errno));
        }
    }
}

static int start_server(struct daemon *d)
{
    d->host = hxfr_host_new(&d->cfg);
    if (!d->host) {
        fprintf(stderr, "hxfrd: cannot start the server: %s\n", strerror(errno));
        return -1;
    }
    return 0;
}

/* Hands systemd's sockets to the server; it owns each one from here on,
 * even if this fails. */
static int serve_activated_sockets(struct daemon *d)
{
    for (; d->sd_next < d->nsd; d->sd_next++) {
        int fd = d->sd_fds[d->sd_next];
        int r = hxfr_host_listen_fd(d->host, fd);
        if (r < 0) {
            fprintf(stderr, "hxfrd: socket-activation fd %d: %s\n", fd, strerror(-r));
            d->sd_next++;
            return -1;
        }
    }
    return 0;
}

/* The --listen endpoints; without them and without systemd's sockets, the
 * default one. */
static int open_listeners(struct daemon *d)
{
    if (d->nlisten == 0 && d->nsd <= 0) {
        int r = hxfr_host_default_uri(d->default_uri, sizeof(d->default_uri));
        if (r < 0) {
            fprintf(stderr, "hxfrd: no default socket path: %s\n", strerror(-r));
            return -1;
        }
        d->listen[d->nlisten++] = d->default_uri;
    }
    for (int i = 0; i < d->nlisten; i++) {
        if (hxfr__hostcli_listen(&d->cli, d->host, d->listen[i]) < 0) {
            return -1;
        }
    }
    return 0;
}

/* --ready-fd: one line per endpoint, then EOF. */
static void say_ready(struct daemon *d)
{
    if (d->ready_fd < 0) {
        return;
    }
    char uri[320];
    for (int i = 0; hxfr_host_listener_uri(d->host, i, uri, sizeof(uri)) >= 0; i++) {
        dprintf(d->ready_fd, "%s\n", uri);
    }
    close(d->ready_fd);
}

static void on_signals(struct daemon *d)
{
    struct signalfd_siginfo si;
    while (read(d->sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        hxfr__hostcli_logf(&d->cli, HXFR_HOST_LOG_INFO, "received %s",
                           strsignal((int)si.ssi_signo));
        hxfr_host_stop(d->host);
    }
}

/* The loop: until the server has stopped after a signal. */
static int serve(struct daemon *d)
{
    int tfd = hxfr__hostcli_stats_fd(&d->cli);
    for (;;) {
        struct pollfd pfd[3] = {
            {.fd = hxfr_host_get_fd(d->host), .events = POLLIN},
            {.fd = d->sfd, .events = POLLIN},
            {.fd = tfd, .events = POLLIN},
        };
        int n = poll(pfd, tfd >= 0 ? 3 : 2, -1);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            fprintf(stderr, "hxfrd: poll: %s\n", strerror(errno));
            return -1;
        }
        if (pfd[1].revents & POLLIN) {
            on_signals(d);
        }
        if (tfd >= 0 && (pfd[2].revents & POLLIN)) {
            hxfr__hostcli_stats_tick(&d->cli, d->host);
        }
        if (pfd[0].revents & POLLIN) {
            int r = hxfr_host_dispatch(d->host, 0);
            if (r < 0) {
                fprintf(stderr, "hxfrd: event loop failed: %s\n", strerror(-r));
                return -1;
            }
            if (r > 0) {
                return 0;
            }
        }
    }
}

static void finish(struct daemon *d)
{
    hxfr_host_destroy(d->host);
    for (int i = d->sd_next; i < d->nsd; i++) {
        close(d->sd_fds[i]);
    }
    hxfr__hostcli_finish(&d->cli);
    if (d->sfd >= 0) {
        close(d->sfd);
    }
}

int main(int argc, char **argv)
{
    static struct daemon d = {.ready_fd = -1, .sfd = -1};

    hxfr_host_config_init(&d.cfg);
    hxfr__hostcli_init(&d.cli, "hxfrd", &d.cfg);
    parse_args(&d, argc, argv);
    hxfr__hostcli_route_ffmpeg(&d.cli);
    if (d.cli.list_encoders) {
        return hxfr__hostcli_list_encoders(&d.cli) > 0 ? 0 : 1;
    }

    int ret = 1;
    if (take_signals(&d) < 0 || take_activated_sockets(&d) < 0) {
        goto out;
    }
    check_shm_files(&d);
    if (start_server(&d) < 0 || serve_activated_sockets(&d) < 0 || open_listeners(&d) < 0) {
        goto out;
    }
    say_ready(&d);
    int r = hxfr__hostcli_stats_open(&d.cli);
    if (r < 0) {
        fprintf(stderr, "hxfrd: stats timer: %s\n", strerror(-r));
        goto out;
    }
    if (serve(&d) == 0) {
        ret = 0;
    }
out:
    finish(&d);
    return ret;
}
