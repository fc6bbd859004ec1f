/* hxfr-send: sends frames to an hxfr host and writes the H.264 it returns.
 *
 * Frames come from a source (the built-in test pattern, a YUV4MPEG2 file,
 * a raw file, or virtio-gpu dumb buffers sent as resource ids: source*.c); they are submitted with
 * a window of frames in flight, paced on an absolute schedule (or as fast as the host takes them),
 * and the access units that come back are appended to an Annex B file. A live progress line goes to
 * a terminal; the summary goes to stderr, or to stdout as one JSON object with --json (report.c).
 * This file is the run, step by step.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <hxfr/client.h>

#include "send.h"

/* How long one submit may wait for window room, and the final flush, before
 * the host is declared unresponsive. */
#define HOST_TIMEOUT_MS      10000
#define PROGRESS_INTERVAL_NS 250000000ull

/* Everything one run holds; main() frees it. */
struct run {
    struct send_app app;
    struct send_source *src;
    struct hxfr_client *c;
    struct hxfr_geometry g; /* of every frame */
    uint8_t *buf;           /* the frame buffer (inline frames) */
    bool shm;               /* frames go through a shared-memory ring */
    bool publishing;        /* a scanout was enabled */
    struct hxfr_config_resp cr;
    uint64_t frame_ns; /* frame period; 0 = as fast as the host takes them */
    uint64_t start;
};

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

/* The transports connect with a blocking connect(), which can take the
 * kernel's SYN retry time (about two minutes) against an address that
 * drops packets. A watchdog bounds the initial connection instead. */
static void on_connect_watchdog(int sig)
{
    (void)sig;
    static const char msg[] = "hxfr-send: the host did not answer while connecting; "
                              "giving up\n";
    ssize_t n = write(STDERR_FILENO, msg, sizeof(msg) - 1);
    (void)n;
    _exit(EXIT_FATAL);
}

static void catch_signals(void)
{
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    struct sigaction wd = {.sa_handler = on_connect_watchdog};
    sigaction(SIGALRM, &wd, NULL);
}

/* The frame geometry (after the source had its say) and one frame buffer,
 * allocated and touched once: hxfr_client_submit() is done with the
 * pixels when it returns, so it is refilled in place for every frame.
 * Returns 0 or an exit status. */
static int alloc_frame(struct run *run)
{
    const struct send_args *a = &run->app.a;
    int r = hxfr_geometry_compute(a->format, a->width, a->height,
                                  hxfr_format_min_stride(a->format, a->width), 0, &run->g);
    if (r < 0) {
        fprintf(stderr, "hxfr-send: %ux%u %s: %s\n", a->width, a->height,
                hxfr_format_name(a->format), hxfr_strerror(r));
        return EXIT_USAGE;
    }
    if (posix_memalign((void **)&run->buf, 64, run->g.size) != 0) {
        run->buf = NULL;
        fprintf(stderr, "hxfr-send: out of memory for a %" PRIu64 "-byte frame\n", run->g.size);
        return EXIT_FATAL;
    }
    memset(run->buf, 0, run->g.size);
    run->app.frame_bytes = run->g.size;
    return 0;
}

/* A client, connected and configured. */
static int connect_host(struct run *run)
{
    const struct send_args *a = &run->app.a;
    struct hxfr_client_options o;
    hxfr_client_options_init(&o);
    o.window = a->window;
    o.session_id = a->session;
    o.reconnect = a->reconnect;
    o.on_frame = send_on_frame;
    o.on_event = send_on_event;
    o.user_data = &run->app;
    run->c = hxfr_client_new(&o);
    if (!run->c) {
        fprintf(stderr, "hxfr-send: %s\n", strerror(errno));
        return -1;
    }
    int r = hxfr_client_connect(run->c, a->connect);
    if (r < 0) {
        fprintf(stderr, "hxfr-send: cannot connect to %s: %s%s\n", a->connect, hxfr_strerror(r),
                r == -ENOENT || r == -ECONNREFUSED ? " (is hxfrd running there?)" : "");
        return -1;
    }
    struct hxfr_client_config cfg = {
        .width = a->width,
        .height = a->height,
        .bitrate = a->bitrate,
        .framerate_num = a->fps > 0 ? (uint32_t)lround(a->fps * 1000) : 0,
        .framerate_den = a->fps > 0 ? 1000 : 0,
        .realtime = true,
        .gop = a->gop,
    };
    r = hxfr_client_configure(run->c, &cfg, &run->cr);
    if (r < 0) {
        const char *msg;
        int32_t code = hxfr_client_last_remote_error(run->c, &msg);
        if (r == -HXFR_EREMOTE) {
            fprintf(stderr, "hxfr-send: host refused the configuration: %s (%d): %s\n",
                    hxfr_status_name(code), code, msg);
        } else {
            fprintf(stderr, "hxfr-send: configuring %s failed: %s\n", a->connect, hxfr_strerror(r));
        }
        return -1;
    }
    return 0;
}

/* --shm / --shm-region: one slot per frame in flight (the window, not the
 * ring, is what bounds the frames the host holds). */
static int attach_ring(struct run *run)
{
    const struct send_args *a = &run->app.a;
    int r;
    if (a->shm) {
        r = hxfr_client_shm_create(run->c, a->window, run->g.size);
    } else {
        r = hxfr_client_shm_attach_region(run->c, a->shm_region, a->shm_path, a->shm_offset,
                                          a->window, run->g.size);
    }
    if (r < 0) {
        const char *msg = "";
        int32_t code = hxfr_client_last_remote_error(run->c, &msg);
        if (r == -HXFR_EREMOTE) {
            fprintf(stderr, "hxfr-send: host refused the shared-memory ring: %s (%d): %s\n",
                    hxfr_status_name(code), code, msg);
        } else {
            fprintf(stderr, "hxfr-send: cannot set up the shared-memory ring%s%s: %s\n",
                    a->shm_region ? " in " : "",
                    a->shm_region ? (a->shm_path ? a->shm_path : "the ivshmem device") : "",
                    hxfr_strerror(r));
        }
        return -1;
    }
    struct hxfr_client_slot probe;
    if (hxfr_client_shm_acquire(run->c, 0, &probe) == 0) {
        run->app.shm_slot_bytes = probe.size;
        hxfr_client_shm_cancel(run->c, probe.index);
    }
    run->app.shm_slots = a->window;
    return 0;
}

/* --scanout N: enable it (the size, --fps as refresh). */
static int start_publishing(struct run *run)
{
    const struct send_args *a = &run->app.a;
    struct hxfr_scanout_resp sr = {0};
    uint32_t hz = a->fps > 0 ? (uint32_t)lround(a->fps) : 0;
    int r = hxfr_client_enable_scanout(run->c, (uint32_t)a->scanout, a->width, a->height,
                                       hz > 1000 ? 1000 : hz, -1, &sr);
    if (r < 0) {
        const char *msg = "";
        hxfr_client_last_remote_error(run->c, &msg);
        fprintf(stderr, "hxfr-send: cannot enable scanout %d: %s%s%s\n", a->scanout,
                hxfr_strerror(r), r == -HXFR_EREMOTE ? ": " : "", r == -HXFR_EREMOTE ? msg : "");
        return -1;
    }
    run->publishing = true;
    fprintf(stderr, "hxfr-send: publishing into scanout %d (%s)\n", a->scanout, sr.connector);
    return 0;
}

/* Connection, configuration, ring and scanout, under the watchdog. With
 * --reconnect the first connection may also wait out the client's backoff
 * (about 9 s); the watchdog allows for it. */
static int start_session(struct run *run)
{
    const struct send_args *a = &run->app.a;
    alarm(a->connect_timeout + (a->reconnect ? 10 : 0));
    if (connect_host(run) < 0 || (run->shm && attach_ring(run) < 0) ||
        (a->scanout >= 0 && start_publishing(run) < 0)) {
        return -1;
    }
    alarm(0);
    return 0;
}

/* The output is created only once the host has accepted the session, so a
 * failed start leaves an earlier file alone. */
static int open_output(struct run *run)
{
    const char *path = run->app.a.output;
    if (strcmp(path, "-") == 0) {
        run->app.out = stdout;
        return 0;
    }
    run->app.out = fopen(path, "wb");
    if (!run->app.out) {
        fprintf(stderr, "hxfr-send: %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* Waits until the absolute time target, delivering results meanwhile. */
static int wait_until(struct hxfr_client *c, uint64_t target)
{
    for (;;) {
        uint64_t now = send_now_ns();
        if (now >= target || interrupted) {
            return 0;
        }
        uint64_t left = target - now;
        if (hxfr_client_in_flight(c) > 0 && left > 1000000u) {
            int r = hxfr_client_dispatch(c, (int)((left - 1000000u) / 1000000u));
            if (r < 0) {
                return r;
            }
            continue;
        }
        struct timespec ts = {.tv_sec = (time_t)(target / 1000000000u),
                              .tv_nsec = (long)(target % 1000000000u)};
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
    }
}

static bool is_connection_error(int r)
{
    return r == -ECONNRESET || r == -EPIPE || r == -ETIMEDOUT || r == -ENOTCONN ||
           r == -ECONNABORTED || r == -EIO || r == -EPROTO || r <= -HXFR_EBASE;
}

/* Submits frame f, in slot (shared memory) or inline; a frame refused for
 * a lost connection is submitted once more with --reconnect, which
 * reconnects. */
static int submit(struct run *run, uint32_t slot, const struct hxfr_client_frame *f)
{
    int r = run->shm ? hxfr_client_shm_submit(run->c, slot, f, HOST_TIMEOUT_MS)
                     : hxfr_client_submit(run->c, f, HOST_TIMEOUT_MS);
    if (r < 0 && run->app.a.reconnect && is_connection_error(r) && r != -HXFR_EREMOTE) {
        r = run->shm ? hxfr_client_shm_submit(run->c, slot, f, HOST_TIMEOUT_MS)
                     : hxfr_client_submit(run->c, f, HOST_TIMEOUT_MS);
    }
    if (r < 0 && run->shm) {
        hxfr_client_shm_cancel(run->c, slot);
    }
    return r;
}

/* Says why frame i could not be submitted (r from submit()). */
static void submit_failed(struct run *run, uint64_t i, int r)
{
    const char *cr = send_clear(&run->app);
    if (r == -EAGAIN) {
        fprintf(stderr, "%shxfr-send: the host answered no frame for %d s; giving up\n", cr,
                HOST_TIMEOUT_MS / 1000);
    } else if (r <= -HXFR_EBASE && r != -HXFR_EREMOTE) {
        fprintf(stderr, "hxfr-send: frame %" PRIu64 " rejected: %s\n", i, hxfr_strerror(r));
    } else if (!hxfr_client_connected(run->c)) {
        /* The DISCONNECTED event already said why. */
        if (!run->app.s.disconnects) {
            fprintf(stderr, "%shxfr-send: host %s is gone: %s\n", cr, run->app.a.connect,
                    hxfr_strerror(r));
        }
    } else {
        fprintf(stderr, "hxfr-send: submit failed: %s\n", hxfr_strerror(r));
    }
}

static int64_t frame_pts(const struct run *run, uint64_t i)
{
    return run->frame_ns ? (int64_t)(i * run->frame_ns) : (int64_t)(send_now_ns() - run->start);
}

/* Frame i of a resource source: drawn into a buffer the host does not
 * hold (waiting for a result when it holds them all), sent as its
 * resource id. Returns as send_frame(). */
static int send_resource(struct run *run, uint64_t i)
{
    const struct hxfr_geometry *g = &run->g;
    uint32_t id = 0, stride = 0;
    void *token = NULL;
    int got;
    while ((got = run->src->ops->render(run->src, i, &id, &stride, &token)) == -EBUSY) {
        int r = hxfr_client_dispatch(run->c, HOST_TIMEOUT_MS);
        if (r == 0) {
            r = -EAGAIN;
        }
        if (r < 0) {
            submit_failed(run, i, r);
            return -1;
        }
    }
    if (got <= 0) {
        return got < 0 ? -1 : 0;
    }
    struct hxfr_client_frame f = {
        .format = g->format,
        .width = g->width,
        .height = g->height,
        .strides = {stride, 0, 0},
        .pts = frame_pts(run, i),
        .duration = (int64_t)run->frame_ns,
        .user = token,
    };
    int r = hxfr_client_submit_resource(run->c, id, &f, HOST_TIMEOUT_MS);
    if (r < 0 && run->app.a.reconnect && is_connection_error(r) && r != -HXFR_EREMOTE) {
        r = hxfr_client_submit_resource(run->c, id, &f, HOST_TIMEOUT_MS);
    }
    if (r < 0) {
        run->src->ops->done(run->src, token);
        submit_failed(run, i, r);
        return -1;
    }
    run->app.s.submitted++;
    return 1;
}

/* Frame i: a slot or the frame buffer, filled by the source, submitted.
 * Returns 1 when sent, 0 when the source has ended, -1 on a fatal error. */
static int send_frame(struct run *run, uint64_t i)
{
    const struct hxfr_geometry *g = &run->g;
    struct hxfr_client_slot slot = {0};
    uint8_t *dst = run->buf;

    if (run->src->ops->render) {
        return send_resource(run, i);
    }
    if (run->shm) {
        /* Render straight into the shared slot: the host encodes from
         * there, so the pixels are never copied. */
        int r = hxfr_client_shm_acquire(run->c, HOST_TIMEOUT_MS, &slot);
        if (r < 0) {
            fprintf(stderr, "%shxfr-send: no free slot: %s\n", send_clear(&run->app),
                    r == -EAGAIN ? "the host kept every slot" : hxfr_strerror(r));
            return -1;
        }
        dst = slot.data;
    }
    int got = send_source_read(run->src, g, dst, i);
    if (got <= 0) {
        if (run->shm) {
            hxfr_client_shm_cancel(run->c, slot.index);
        }
        return got < 0 ? -1 : 0;
    }
    struct hxfr_client_frame f = {
        .format = g->format,
        .width = g->width,
        .height = g->height,
        .planes = {run->buf + g->offset[0], run->buf + g->offset[1], run->buf + g->offset[2]},
        .strides = {g->stride[0], g->stride[1], g->stride[2]},
        .pts = frame_pts(run, i),
        .duration = (int64_t)run->frame_ns,
    };
    int r = submit(run, slot.index, &f);
    if (r < 0) {
        submit_failed(run, i, r);
        return -1;
    }
    run->app.s.submitted++;
    return 1;
}

/* Every frame, on schedule, until --frames, --duration, the source's end
 * or Ctrl-C. Returns true when it stopped on a fatal error. */
static bool send_frames(struct run *run)
{
    const struct send_args *a = &run->app.a;
    run->frame_ns = a->fps > 0 ? (uint64_t)llround(1e9 / a->fps) : 0;
    run->start = send_now_ns();
    uint64_t end = a->duration > 0 ? run->start + (uint64_t)(a->duration * 1e9) : UINT64_MAX;
    uint64_t next_progress = run->start + PROGRESS_INTERVAL_NS;
    for (uint64_t i = 0; (a->frames == 0 || i < a->frames) && !interrupted; i++) {
        if (run->frame_ns) {
            /* Absolute schedule: frame i is due at start + i * period, so
             * a late frame does not shift the ones after it. */
            uint64_t due = run->start + i * run->frame_ns;
            if (due >= end) {
                break;
            }
            wait_until(run->c, due);
        } else if (send_now_ns() >= end) {
            break;
        }
        int r = send_frame(run, i);
        if (r <= 0) {
            return r < 0;
        }
        if (run->app.tty && send_now_ns() >= next_progress) {
            send_progress(&run->app, run->start);
            next_progress = send_now_ns() + PROGRESS_INTERVAL_NS;
        }
    }
    return false;
}

/* The last answers, the end of the scanout, the output and the summary.
 * Returns the exit status. */
static int finish_run(struct run *run, bool fatal)
{
    struct send_app *app = &run->app;
    const struct send_args *a = &app->a;
    if (!fatal) {
        int r = hxfr_client_flush(run->c, HOST_TIMEOUT_MS);
        if (r < 0) {
            fprintf(stderr, "%shxfr-send: waiting for the last frames: %s\n", send_clear(app),
                    hxfr_strerror(r));
            fatal = true;
        }
    }
    double secs = (double)(send_now_ns() - run->start) / 1e9;
    if (run->publishing && hxfr_client_connected(run->c)) {
        /* Subscribers are told the stream ended. */
        int r = hxfr_client_disable_scanout(run->c, (uint32_t)a->scanout, -1);
        if (r < 0) {
            fprintf(stderr, "hxfr-send: disabling scanout %d: %s\n", a->scanout, hxfr_strerror(r));
        }
    }
    if (app->out && fflush(app->out) != 0 && !app->out_error) {
        app->out_error = errno;
    }
    if (app->out_error) {
        fprintf(stderr, "hxfr-send: writing %s: %s\n", a->output, strerror(app->out_error));
        fatal = true;
    }
    send_summary(app, secs, &run->cr, hxfr_client_uri(run->c));
    if (interrupted) {
        fprintf(stderr, "hxfr-send: interrupted\n");
        return EXIT_INTERRUPTED;
    }
    return fatal || app->s.remote_errors > 0 ? EXIT_FATAL : 0;
}

int main(int argc, char **argv)
{
    static struct run run;
    int status = EXIT_FATAL;

    if (send_parse_args(argc, argv, &run.app.a) < 0) {
        return EXIT_USAGE;
    }
    run.shm = run.app.a.shm || run.app.a.shm_region;
    run.src = send_source_open(&run.app.a);
    if (!run.src) {
        status = EXIT_USAGE;
        goto out;
    }
    if (run.src->ops->render) {
        if (run.shm) {
            fprintf(stderr,
                    "hxfr-send: --source %s sends resource ids: no --shm or "
                    "--shm-region with it\n",
                    run.src->ops->name);
            goto out;
        }
        run.app.resource_src = run.src;
    }
    status = alloc_frame(&run);
    if (status != 0) {
        goto out;
    }
    status = EXIT_FATAL;
    catch_signals();
    run.app.tty = isatty(STDERR_FILENO) == 1;
    if (start_session(&run) < 0 || open_output(&run) < 0) {
        goto out;
    }
    status = finish_run(&run, send_frames(&run));

out:
    hxfr_client_destroy(run.c);
    if (run.app.out && run.app.out != stdout) {
        fclose(run.app.out);
    }
    send_source_close(run.src);
    free(run.buf);
    send_stats_finish(&run.app.s);
    return status;
}
