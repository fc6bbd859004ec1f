/* hxfr-gpu: the virtio-gpu device of one VM, as a vhost-user back-end
 * process behind unmodified QEMU (-device vhost-user-gpu-pci). It follows
 * vhost-user's "backend program conventions" (--socket-path or --fd,
 * --print-capabilities, ends on SIGTERM, never daemonizes) and exits when
 * QEMU goes away. See docs/gpu.md.
 *
 * main() sets everything up (options, sockets, the event loop, the
 * device once QEMU connects), reaches setup_done() and from then on only
 * runs the loop: a sandbox that forbids opening new files or sockets
 * belongs there. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "hxfr-config.h"

#include "cli.h"
#include "hostcli.h"

#include "control.h"
#include "device.h"
#include "doorbell.h"
#include "loop.h"
#include "serve.h"

#define MAX_LISTEN 16

struct options {
    const char *socket_path;
    int fd;
    const char *control;
    const char *qemu_qmp;
    int ready_fd;
    int verbosity; /* 0 warnings, 1 info (default), 2 debug */
    struct hxfr_gpu_config gpu;
    /* The HXFR server: hxfrd's endpoints and shared options. */
    const char *listen[MAX_LISTEN];
    int nlisten;
    struct hxfr_host_config host;
    struct hxfr_hostcli cli;
};

struct app {
    struct options opt;
    struct hxfr_loop *loop;
    int listen_fd;
    struct hxfr_loop_source *listen_src;
    int vhost_fd;
    struct hxfr_device *dev;
    struct hxfr_control *control;
    struct hxfr_doorbell *doorbell;
    int signal_fd;
    struct hxfr_loop_source *signal_src;
    struct hxfr_serve *serve;
    struct hxfr_loop_source *stats_src;
    bool stop;
    int status;
};

static int verbosity = 1;

static void logv(enum hxfr_log_level level, const char *fmt, va_list ap)
{
    static const char *names[] = {"error", "warn", "info", "debug"};
    if ((int)level > verbosity + 1) {
        return;
    }
    char line[512];
    vsnprintf(line, sizeof(line), fmt, ap);
    fprintf(stderr, "hxfr-gpu: [%s] %s\n", names[level], line);
}

static void logm(enum hxfr_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void logm(enum hxfr_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    logv(level, fmt, ap);
    va_end(ap);
}

static void device_log(void *data, enum hxfr_log_level level, const char *line)
{
    (void)data;
    logm(level, "%s", line);
}

static void usage(FILE *f)
{
    fprintf(f, "Usage: hxfr-gpu (--socket-path PATH | --fd N) [OPTIONS]\n"
               "       hxfr-gpu --print-capabilities\n"
               "\n"
               "The virtio-gpu device of one VM as a vhost-user back-end for QEMU:\n"
               "  -object memory-backend-memfd,id=mem,size=...,share=on -numa node,memdev=mem\n"
               "  -chardev socket,id=gpu,path=PATH -device vhost-user-gpu-pci,chardev=gpu\n"
               "It serves one QEMU connection and exits when QEMU goes away (docs/gpu.md).\n"
               "\n"
               "  --socket-path PATH    listen on PATH for QEMU (start hxfr-gpu first)\n"
               "  --fd N                the vhost-user socket is already fd N (libvirt)\n"
               "  --print-capabilities  print the back-end's capabilities as JSON, exit\n"
               "  --max-outputs N       scanouts the guest may use, 1-16 (default 16; set it\n"
               "                        to the QEMU device's max_outputs)\n"
               "  --size WxH            the mode scanout 0 offers at start (default 1920x1080)\n"
               "  --max-resource-memory BYTES\n"
               "                        host memory for the guest's resources, K/M/G suffixes\n"
               "                        (default 256M); past it the guest gets OUT_OF_MEMORY\n"
               "  --control PATH        control socket: hot-plug, resize, inspect (docs/gpu.md)\n"
               "  --qemu-qmp PATH       a QMP socket of QEMU (-qmp unix:PATH,server=on,wait=off)\n"
               "                        with -display dbus,p2p=yes: used to make the guest\n"
               "                        re-read displays after a hot-plug or resize\n"
               "  --ready-fd N          write \"ready\\n\" to fd N once listening, then close it\n"
               "  -v, --verbose         log more (twice: every refused guest command)\n"
               "  -q, --quiet           log only warnings and errors\n"
               "  --version             print the version\n"
               "  -h, --help            this help\n"
               "\n"
               "The VM's HXFR server (docs/gpu.md \"Serving HXFR\"): scanout flushes pushed to\n"
               "subscribers, FRAME_REQUEST(resource_id) encoded from guest memory,\n"
               "ENABLE_SCANOUT/DISABLE_SCANOUT plug connectors in and out:\n"
               "  --listen URI          serve HXFR on URI (repeatable; none: no HXFR server):\n"
               "                          unix:PATH (also QEMU's virtio-serial chardev\n"
               "                          socket), tcp:HOST:PORT, vsock:PORT\n"
               "\n");
    hxfr__hostcli_usage(f);
}

/* An int option lo..hi (file descriptors, counts). */
static bool parse_int(const char *s, int lo, int hi, int *out)
{
    uint64_t v;
    if (hxfr__cli_parse_u64(s, (uint64_t)hi, &v) < 0 || v < (uint64_t)lo) {
        return false;
    }
    *out = (int)v;
    return true;
}

enum {
    OPT_SOCKET = 256,
    OPT_FD,
    OPT_CAPS,
    OPT_OUTPUTS,
    OPT_SIZE,
    OPT_MEMORY,
    OPT_CONTROL,
    OPT_QMP,
    OPT_READY,
    OPT_VERSION,
    OPT_LISTEN,
};

/* Returns -1 to go on, else the exit status. */
static int parse_options(int argc, char **argv, struct options *o)
{
    static const struct option longopts[] = {
        {"socket-path", required_argument, NULL, OPT_SOCKET},
        {"fd", required_argument, NULL, OPT_FD},
        {"print-capabilities", no_argument, NULL, OPT_CAPS},
        {"max-outputs", required_argument, NULL, OPT_OUTPUTS},
        {"size", required_argument, NULL, OPT_SIZE},
        {"max-resource-memory", required_argument, NULL, OPT_MEMORY},
        {"control", required_argument, NULL, OPT_CONTROL},
        {"qemu-qmp", required_argument, NULL, OPT_QMP},
        {"ready-fd", required_argument, NULL, OPT_READY},
        {"listen", required_argument, NULL, OPT_LISTEN},
        HXFR_HOSTCLI_OPTIONS,
        {"verbose", no_argument, NULL, 'v'},
        {"quiet", no_argument, NULL, 'q'},
        {"version", no_argument, NULL, OPT_VERSION},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c, n;
    o->fd = -1;
    o->ready_fd = -1;
    o->verbosity = 1;
    hxfr__gpu_config_init(&o->gpu);
    hxfr_host_config_init(&o->host);
    hxfr__hostcli_init(&o->cli, "hxfr-gpu", &o->host);
    /* --print-capabilities wins over everything else, as the conventions
     * ask (other options are ignored, even invalid ones). */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--print-capabilities") == 0) {
            printf("{\n  \"type\": \"gpu\",\n  \"features\": [\n  ]\n}\n");
            return 0;
        }
    }
    while ((c = getopt_long(argc, argv, "vqh", longopts, NULL)) != -1) {
        char err[256];
        int r = hxfr__hostcli_option(&o->cli, c, optarg, err, sizeof(err));
        if (r < 0) {
            fprintf(stderr, "hxfr-gpu: %s\n", err);
            return 2;
        }
        if (r > 0) {
            continue;
        }
        switch (c) {
        case OPT_LISTEN:
            if (o->nlisten >= MAX_LISTEN) {
                fprintf(stderr, "hxfr-gpu: at most %d --listen options\n", MAX_LISTEN);
                return 2;
            }
            o->listen[o->nlisten++] = optarg;
            break;
        case OPT_SOCKET:
            o->socket_path = optarg;
            break;
        case OPT_FD:
            if (!parse_int(optarg, 0, 1 << 20, &o->fd)) {
                fprintf(stderr, "hxfr-gpu: --fd takes a file descriptor number\n");
                return 2;
            }
            break;
        case OPT_OUTPUTS:
            if (!parse_int(optarg, 1, HXFR_GPU_MAX_SCANOUTS, &n)) {
                fprintf(stderr, "hxfr-gpu: --max-outputs takes 1 to 16\n");
                return 2;
            }
            o->gpu.max_outputs = (uint32_t)n;
            break;
        case OPT_SIZE:
            if (hxfr__cli_parse_size(optarg, HXFR_GPU_MAX_DIM, &o->gpu.width, &o->gpu.height) < 0) {
                fprintf(stderr, "hxfr-gpu: --size takes WxH, each 1 to %d\n", HXFR_GPU_MAX_DIM);
                return 2;
            }
            break;
        case OPT_MEMORY:
            if (hxfr__cli_parse_bytes(optarg, UINT64_MAX, &o->gpu.max_resource_memory) < 0) {
                fprintf(stderr, "hxfr-gpu: --max-resource-memory takes bytes (K, M, G suffixes)\n");
                return 2;
            }
            break;
        case OPT_CONTROL:
            o->control = optarg;
            break;
        case OPT_QMP:
            o->qemu_qmp = optarg;
            break;
        case OPT_READY:
            if (!parse_int(optarg, 0, 1 << 20, &o->ready_fd)) {
                fprintf(stderr, "hxfr-gpu: --ready-fd takes a file descriptor number\n");
                return 2;
            }
            break;
        case 'v':
            o->verbosity++;
            break;
        case 'q':
            o->verbosity = 0;
            break;
        case OPT_VERSION:
            printf("hxfr-gpu %s\n", HXFR_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (o->cli.list_encoders) {
        return hxfr__hostcli_list_encoders(&o->cli) > 0 ? 0 : 1;
    }
    if (optind < argc || (o->socket_path == NULL) == (o->fd < 0)) {
        fprintf(stderr, "hxfr-gpu: give exactly one of --socket-path PATH and --fd N\n");
        usage(stderr);
        return 2;
    }
    return -1;
}

/* --- the device ------------------------------------------------------------ */

static void on_display_changed(void *data)
{
    struct app *app = data;
    if (app->doorbell != NULL) {
        hxfr__doorbell_ring(app->doorbell);
    } else {
        logm(HXFR_LOG_WARN, "display configuration changed; without --qemu-qmp the guest sees it "
                            "at its next display event (docs/gpu.md)");
    }
}

static int start_device(struct app *app, int fd)
{
    app->vhost_fd = fd;
    app->dev = hxfr__device_new(app->loop, fd, &app->opt.gpu, device_log, NULL);
    if (app->dev == NULL) {
        logm(HXFR_LOG_ERROR, "cannot start the device: %s", strerror(errno));
        return -1;
    }
    struct hxfr_gpu_listener l = {.data = app, .display_changed = on_display_changed};
    hxfr_gpu_add_listener(hxfr__device_gpu(app->dev), &l);
    hxfr__control_set_device(app->control, app->dev);
    if (app->serve != NULL) {
        hxfr__serve_set_device(app->serve, app->dev);
    }
    logm(HXFR_LOG_INFO, "QEMU connected");
    return 0;
}

static void listen_event(void *data, uint32_t events)
{
    struct app *app = data;
    (void)events;
    int fd = accept4(app->listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) {
        return;
    }
    /* One VM per process: the listener is done. */
    hxfr__loop_remove(app->loop, app->listen_src);
    app->listen_src = NULL;
    close(app->listen_fd);
    app->listen_fd = -1;
    unlink(app->opt.socket_path);
    if (start_device(app, fd) < 0) {
        close(fd);
        app->stop = true;
        app->status = 1;
    }
}

static void signal_event(void *data, uint32_t events)
{
    struct app *app = data;
    struct signalfd_siginfo si;
    (void)events;
    if (read(app->signal_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        logm(HXFR_LOG_INFO, "signal %u: stopping", si.ssi_signo);
        app->stop = true;
    }
}

static void stats_event(void *data, uint32_t events)
{
    struct app *app = data;
    (void)events;
    hxfr__serve_stats(app->serve);
}

/* The HXFR server with its listeners, and its statistics timer. */
static int start_server(struct app *app)
{
    if (app->opt.nlisten == 0) {
        return 0;
    }
    hxfr__hostcli_route_ffmpeg(&app->opt.cli);
    app->serve = hxfr__serve_new(app->loop, &app->opt.host, &app->opt.cli);
    if (app->serve == NULL) {
        logm(HXFR_LOG_ERROR, "cannot start the HXFR server: %s", strerror(errno));
        return -1;
    }
    for (int i = 0; i < app->opt.nlisten; i++) {
        char bound[320];
        if (hxfr__serve_listen(app->serve, app->opt.listen[i], bound, sizeof(bound)) < 0) {
            return -1;
        }
        logm(HXFR_LOG_INFO, "serving HXFR on %s", bound);
    }
    int r = hxfr__hostcli_stats_open(&app->opt.cli);
    if (r < 0) {
        logm(HXFR_LOG_ERROR, "stats timer: %s", strerror(-r));
        return -1;
    }
    int fd = hxfr__hostcli_stats_fd(&app->opt.cli);
    if (fd >= 0) {
        app->stats_src = hxfr__loop_add(app->loop, fd, EPOLLIN, stats_event, app);
        if (app->stats_src == NULL) {
            return -1;
        }
    }
    return 0;
}

static int listen_on(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(sa.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    struct stat st;
    if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode)) {
        unlink(path); /* left behind by an earlier run */
    }
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 1) < 0) {
        int err = errno;
        close(fd);
        errno = err;
        return -1;
    }
    return fd;
}

/* Everything hxfr-gpu needs is open: sockets, the loop, the device or its
 * listener. From here on it only runs the loop (accepting QEMU's one
 * connection, mapping guest RAM from the fds QEMU sends, talking on the
 * sockets it has). A seccomp sandbox is installed at this point. */
static void setup_done(struct app *app)
{
    if (app->opt.ready_fd >= 0) {
        if (write(app->opt.ready_fd, "ready\n", 6) != 6) {
            logm(HXFR_LOG_WARN, "--ready-fd %d: %s", app->opt.ready_fd, strerror(errno));
        }
        close(app->opt.ready_fd);
    }
}

static int setup(struct app *app)
{
    app->loop = hxfr__loop_new();
    if (app->loop == NULL) {
        logm(HXFR_LOG_ERROR, "event loop: %s", strerror(errno));
        return -1;
    }
    /* SIGTERM and SIGINT through the loop; SIGPIPE ignored (QEMU's sockets
     * may close under a write). */
    app->signal_fd = hxfr__hostcli_signalfd();
    if (app->signal_fd < 0) {
        logm(HXFR_LOG_ERROR, "signalfd: %s", strerror(-app->signal_fd));
        return -1;
    }
    app->signal_src = hxfr__loop_add(app->loop, app->signal_fd, EPOLLIN, signal_event, app);
    if (app->signal_src == NULL) {
        logm(HXFR_LOG_ERROR, "signalfd: %s", strerror(errno));
        return -1;
    }
    if (app->opt.control != NULL) {
        app->control = hxfr__control_new(app->loop, app->opt.control);
        if (app->control == NULL) {
            logm(HXFR_LOG_ERROR, "control socket %s: %s", app->opt.control, strerror(errno));
            return -1;
        }
    }
    if (app->opt.qemu_qmp != NULL) {
        app->doorbell = hxfr__doorbell_new(app->loop, app->opt.qemu_qmp, device_log, NULL);
        if (app->doorbell == NULL) {
            logm(HXFR_LOG_ERROR, "--qemu-qmp %s: %s", app->opt.qemu_qmp, strerror(errno));
            return -1;
        }
    }
    if (start_server(app) < 0) {
        return -1;
    }
    if (app->opt.socket_path != NULL) {
        app->listen_fd = listen_on(app->opt.socket_path);
        if (app->listen_fd < 0) {
            logm(HXFR_LOG_ERROR, "listen on %s: %s", app->opt.socket_path, strerror(errno));
            return -1;
        }
        app->listen_src = hxfr__loop_add(app->loop, app->listen_fd, EPOLLIN, listen_event, app);
        if (app->listen_src == NULL) {
            return -1;
        }
        logm(HXFR_LOG_INFO, "listening on %s", app->opt.socket_path);
        return 0;
    }
    /* --fd: a connected socket, or (some managers) a listening one. */
    int listening = 0;
    socklen_t len = sizeof(listening);
    if (getsockopt(app->opt.fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) < 0) {
        logm(HXFR_LOG_ERROR, "--fd %d is not a socket: %s", app->opt.fd, strerror(errno));
        return -1;
    }
    if (listening) {
        app->listen_fd = app->opt.fd;
        app->listen_src = hxfr__loop_add(app->loop, app->listen_fd, EPOLLIN, listen_event, app);
        return app->listen_src == NULL ? -1 : 0;
    }
    return start_device(app, app->opt.fd);
}

static void teardown(struct app *app)
{
    /* The server first: its frames in flight read guest memory and hold
     * the guest's flushes, which go back to the device before it goes. */
    hxfr__loop_remove(app->loop, app->stats_src);
    hxfr__serve_destroy(app->serve);
    hxfr__hostcli_finish(&app->opt.cli);
    hxfr__control_destroy(app->control);
    hxfr__doorbell_destroy(app->doorbell);
    hxfr__device_destroy(app->dev);
    if (app->vhost_fd >= 0) {
        close(app->vhost_fd);
    }
    if (app->listen_fd >= 0) {
        hxfr__loop_remove(app->loop, app->listen_src);
        close(app->listen_fd);
        if (app->opt.socket_path != NULL) {
            unlink(app->opt.socket_path);
        }
    }
    hxfr__loop_remove(app->loop, app->signal_src);
    if (app->signal_fd >= 0) {
        close(app->signal_fd);
    }
    hxfr__loop_destroy(app->loop);
}

int main(int argc, char **argv)
{
    struct app app = {.listen_fd = -1, .vhost_fd = -1, .signal_fd = -1};
    int r = parse_options(argc, argv, &app.opt);
    if (r >= 0) {
        return r;
    }
    verbosity = app.opt.verbosity;
    if (setup(&app) < 0) {
        teardown(&app);
        return 1;
    }
    setup_done(&app);
    while (!app.stop) {
        bool busy = app.dev != NULL && hxfr__device_busy(app.dev);
        int n = hxfr__loop_dispatch(app.loop, busy ? 0 : -1);
        if (n < 0) {
            logm(HXFR_LOG_ERROR, "event loop: %s", strerror(-n));
            app.status = 1;
            break;
        }
        if (app.dev == NULL) {
            continue;
        }
        hxfr__device_work(app.dev);
        bool error;
        if (hxfr__device_done(app.dev, &error)) {
            /* QEMU went away (or broke the protocol): this VM is gone. */
            app.status = error ? 1 : 0;
            break;
        }
    }
    teardown(&app);
    return app.status;
}
