/* The server object and its event loop: listeners, clients, the worker
 * completion eventfd, the stop eventfd and a housekeeping timer, all on one
 * epoll fd that an embedder can poll from its own loop. The public API of
 * include/hxfr/host.h lives here.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "clock.h"
#include "client.h"
#include "host-private.h"
#include "scanout.h"
#include "session.h"
#include "transport/transport.h"

void hxfr_host_config_init(struct hxfr_host_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->log_level = HXFR_HOST_LOG_INFO;
}

/* A zero in the configuration means "the default"; value is evaluated only
 * when it is needed (online_cpus() asks the system). */
#define DEFAULT_IF_ZERO(field, value)                                                              \
    do {                                                                                           \
        if ((field) == 0) {                                                                        \
            (field) = (value);                                                                     \
        }                                                                                          \
    } while (0)

static unsigned online_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1u;
}

/* The timer runs only while there is something to watch: clients (idle
 * and linger deadlines), a stop in progress, or a resting listener. */
static void update_timer(struct hxfr_host *h)
{
    bool want = h->nclients > 0 || h->stopping || h->listeners_resting > 0;
    if (want == h->timer_armed) {
        return;
    }
    struct itimerspec its;
    memset(&its, 0, sizeof(its));
    if (want) {
        its.it_interval.tv_nsec = HXFR_HOST_TICK_MS * 1000000L;
        its.it_value = its.it_interval;
    }
    if (timerfd_settime(h->timer_fd, 0, &its, NULL) == 0) {
        h->timer_armed = want;
    }
}

static int watch_add(struct hxfr_host *h, int fd, void *ptr)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = ptr};
    return epoll_ctl(h->epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

struct hxfr_host *hxfr_host_new(const struct hxfr_host_config *cfg)
{
    struct hxfr_host *h = calloc(1, sizeof(*h));
    int err = 0;

    if (!h) {
        return NULL;
    }
    h->epfd = h->stop_efd = h->timer_fd = h->workers.efd = -1;
    h->cfg = *cfg;
    DEFAULT_IF_ZERO(h->cfg.window, HXFR_HOST_WINDOW_DEFAULT);
    if (h->cfg.window > HXFR_HOST_WINDOW_MAX || h->cfg.encoder_threads < 0 ||
        h->cfg.max_width > HXFR_MAX_DIM_HARD || h->cfg.max_height > HXFR_MAX_DIM_HARD) {
        err = EINVAL;
        goto fail;
    }
    DEFAULT_IF_ZERO(h->cfg.max_width, HXFR_MAX_DIM_DEFAULT);
    DEFAULT_IF_ZERO(h->cfg.max_height, HXFR_MAX_DIM_DEFAULT);
    DEFAULT_IF_ZERO(h->cfg.max_clients, HXFR_HOST_MAX_CLIENTS_DEFAULT);
    DEFAULT_IF_ZERO(h->cfg.max_sessions, HXFR_HOST_MAX_SESSIONS_DEFAULT);
    DEFAULT_IF_ZERO(h->cfg.max_output, HXFR_HOST_MAX_OUTPUT_DEFAULT);
    DEFAULT_IF_ZERO(h->cfg.handshake_timeout_ms, HXFR_HOST_HANDSHAKE_DEFAULT_MS);
    DEFAULT_IF_ZERO(h->cfg.shutdown_timeout_ms, HXFR_HOST_SHUTDOWN_DEFAULT_MS);
    DEFAULT_IF_ZERO(h->cfg.workers, online_cpus());
    DEFAULT_IF_ZERO(h->cfg.gop, HXFR_DEFAULT_GOP);
    const struct hxfr_host_resolver *rs = &h->cfg.resolver;
    if ((rs->acquire == NULL) != (rs->release == NULL) ||
        (rs->acquire && (rs->version < 1 || rs->version > HXFR_HOST_RESOLVER_VERSION))) {
        err = EINVAL;
        goto fail;
    }
    const struct hxfr_host_scanout_ops *so = &h->cfg.scanout_ops;
    bool any = so->enable || so->disable || so->acquire || so->release;
    if ((any && so->version != HXFR_HOST_SCANOUT_OPS_VERSION) ||
        (so->acquire == NULL) != (so->release == NULL)) {
        err = EINVAL;
        goto fail;
    }
    h->log = (struct hxfr__log){h->cfg.log, h->cfg.log_opaque, h->cfg.log_level};
    h->limits = (struct hxfr__limits){h->cfg.max_width, h->cfg.max_height};
    /* The largest body a client may announce: a maximum-size frame at 4
     * bytes per pixel. Anything bigger is refused before reading it. */
    h->max_body = h->cfg.max_width * h->cfg.max_height * 4u;
    h->encoder_name = strdup(cfg->encoder ? cfg->encoder : HXFR_DEFAULT_CODEC);
    h->preset = cfg->preset ? strdup(cfg->preset) : NULL;
    if (!h->encoder_name || (cfg->preset && !h->preset)) {
        err = ENOMEM;
        goto fail;
    }
    h->cfg.encoder = h->encoder_name;
    h->cfg.preset = h->preset;
    int r = hxfr__shm_regions_copy(cfg->shm_regions, cfg->shm_region_count, &h->regions);
    if (r < 0) {
        err = -r;
        goto fail;
    }
    h->nregions = h->regions ? cfg->shm_region_count : 0;
    h->cfg.shm_regions = h->regions;

    h->epfd = epoll_create1(EPOLL_CLOEXEC);
    h->stop_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    h->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (h->epfd < 0 || h->stop_efd < 0 || h->timer_fd < 0) {
        err = errno;
        goto fail;
    }
    h->stop_watch.kind = HXFR__WATCH_STOP;
    h->timer_watch.kind = HXFR__WATCH_TIMER;
    r = hxfr__workers_init(&h->workers, h->cfg.workers);
    if (r < 0) {
        h->workers.efd = -1;
        err = -r;
        goto fail;
    }
    if ((r = hxfr__scanouts_init(h)) < 0) {
        err = -r;
        goto fail;
    }
    if ((r = watch_add(h, h->stop_efd, &h->stop_watch)) < 0 ||
        (r = watch_add(h, h->timer_fd, &h->timer_watch)) < 0 ||
        (r = watch_add(h, h->workers.efd, &h->workers.watch)) < 0) {
        err = -r;
        goto fail;
    }
    return h;

fail:
    hxfr_host_destroy(h);
    errno = err ? err : ENOMEM;
    return NULL;
}

static void close_listeners(struct hxfr_host *h)
{
    for (int i = 0; i < h->nlisteners; i++) {
        if (h->listeners[i]) {
            if (h->listeners[i]->resting) {
                h->listeners_resting--;
            }
            hxfr__listener_destroy(h->listeners[i], &h->log);
            h->listeners[i] = NULL;
        }
    }
    h->stats.listeners = 0;
}

static void free_dead(struct hxfr_host *h)
{
    while (h->dead) {
        struct hxfr__client *c = h->dead;
        h->dead = c->next;
        free(c);
    }
}

static void close_all_clients(struct hxfr_host *h, const char *why)
{
    while (h->clients) {
        hxfr__client_close(h->clients, why);
    }
}

void hxfr_host_destroy(struct hxfr_host *h)
{
    if (!h) {
        return;
    }
    close_all_clients(h, "server destroyed");
    close_listeners(h);
    if (h->workers.threads) {
        hxfr__workers_finish(&h->workers);
        /* Every frame that was at the workers is on the done list now; the
         * sessions they belong to are zombies (their clients are gone). */
        struct hxfr__frame *f;
        while ((f = hxfr__queue_pop_entry(&h->workers.done, struct hxfr__frame, link))) {
            hxfr__session_complete(f->session, f);
        }
    } else if (h->workers.efd >= 0) {
        close(h->workers.efd);
    }
    while (h->zombies) {
        struct hxfr__session *s = h->zombies;
        h->zombies = s->next;
        hxfr__session_destroy(s);
    }
    hxfr__scanouts_finish(h);
    free_dead(h);
    if (h->timer_fd >= 0) {
        close(h->timer_fd);
    }
    if (h->stop_efd >= 0) {
        close(h->stop_efd);
    }
    if (h->epfd >= 0) {
        close(h->epfd);
    }
    hxfr__shm_regions_free(h->regions, h->nregions);
    free(h->encoder_name);
    free(h->preset);
    free(h);
}

static int add_listener(struct hxfr_host *h, int fd, const struct hxfr_uri *u)
{
    if (h->nlisteners >= HXFR_HOST_MAX_LISTENERS) {
        close(fd);
        return -EMFILE;
    }
    struct hxfr__listener *l = hxfr__listener_new(fd, u, h->epfd);
    if (!l) {
        return -errno;
    }
    int idx = h->nlisteners++;
    h->listeners[idx] = l;
    h->stats.listeners++;
    hxfr__log(&h->log, HXFR_HOST_LOG_INFO, "listening on %s", l->uri);
    return idx;
}

int hxfr_host_listen(struct hxfr_host *h, const char *uri, char *bound, size_t len)
{
    struct hxfr_uri u;

    if (h->stopping) {
        return -ESHUTDOWN;
    }
    int r = hxfr__uri_parse(uri, true, &u);
    if (r < 0) {
        return r;
    }
    int fd = hxfr__transport_listen(&u);
    if (fd < 0) {
        return fd;
    }
    int idx = add_listener(h, fd, &u);
    if (idx >= 0 && bound && len > 0) {
        snprintf(bound, len, "%s", h->listeners[idx]->uri);
    }
    return idx;
}

/* Takes over a descriptor handed in by the embedder: non-blocking and
 * close-on-exec from here on. On failure (or while stopping) it is closed,
 * as the public calls promise. */
static int adopt_fd(struct hxfr_host *h, int fd)
{
    if (fd < 0) {
        return -EBADF;
    }
    if (h->stopping) {
        close(fd);
        return -ESHUTDOWN;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    return 0;
}

int hxfr_host_listen_fd(struct hxfr_host *h, int fd)
{
    int r = adopt_fd(h, fd);
    if (r < 0) {
        return r;
    }
    return add_listener(h, fd, NULL);
}

int hxfr_host_add_client(struct hxfr_host *h, int fd, const char *label)
{
    int r = adopt_fd(h, fd);
    if (r < 0) {
        return r;
    }
    r = hxfr__client_accept(h, fd, label ? label : "fd", true);
    update_timer(h);
    return r;
}

int hxfr_host_listener_uri(struct hxfr_host *h, int index, char *buf, size_t len)
{
    if (index < 0 || index >= h->nlisteners || !h->listeners[index]) {
        return -ENOENT;
    }
    int n = snprintf(buf, len, "%s", h->listeners[index]->uri);
    return (size_t)n >= len ? -ENOSPC : n;
}

int hxfr_host_get_fd(struct hxfr_host *h)
{
    return h->epfd;
}

void hxfr_host_stop(struct hxfr_host *h)
{
    uint64_t one = 1;
    /* Only write(2): async-signal-safe. */
    ssize_t n = write(h->stop_efd, &one, sizeof(one));
    (void)n;
}

static void on_listener(struct hxfr_host *h, struct hxfr__listener *l)
{
    /* A bounded batch per wakeup keeps one busy listener from starving
     * the clients; epoll is level-triggered, the rest comes next round. */
    for (int i = 0; i < 16 && !h->stopping; i++) {
        bool rested;
        int fd = hxfr__listener_accept(l, &rested);
        if (fd == -EAGAIN) {
            return;
        }
        if (fd < 0) {
            hxfr__log(&h->log, HXFR_HOST_LOG_ERROR, "accept on %s failed: %s", l->uri,
                      strerror(-fd));
            if (rested) {
                h->listeners_resting++;
            }
            return;
        }
        int r = hxfr__client_accept(h, fd, l->uri, false);
        if (r < 0 && r != -EBUSY) {
            hxfr__log(&h->log, HXFR_HOST_LOG_ERROR, "cannot set up a client on %s: %s", l->uri,
                      strerror(-r));
        }
    }
}

static void on_completions(struct hxfr_host *h)
{
    struct hxfr__queue done, consumed;
    hxfr__workers_take_done(&h->workers, &done, &consumed);

    /* Early slot releases first: a frame can be on both lists, and its
     * SLOT_RELEASE goes out before its response. */
    struct hxfr__frame *f;
    while ((f = hxfr__queue_pop_entry(&consumed, struct hxfr__frame, consumed_link))) {
        hxfr__session_consumed(f);
    }
    while ((f = hxfr__queue_pop_entry(&done, struct hxfr__frame, link))) {
        hxfr__session_complete(f->session, f);
    }
    /* Completions free window slots: clients that were paused go on. */
    struct hxfr__client *c = h->clients;
    while (c) {
        struct hxfr__client *cn = c->next;
        hxfr__client_resume(c);
        c = cn;
    }
}

static bool sessions_busy(struct hxfr_host *h)
{
    if (h->workers.running > 0 || h->zombies) {
        return true;
    }
    for (struct hxfr__client *c = h->clients; c; c = c->next) {
        for (struct hxfr__session *s = c->sessions; s; s = s->next) {
            if (!hxfr__queue_empty(&s->queue) || s->running) {
                return true;
            }
        }
    }
    return false;
}

static void begin_stop(struct hxfr_host *h)
{
    uint64_t v;
    ssize_t n = read(h->stop_efd, &v, sizeof(v));
    (void)n;
    if (h->stopping) {
        return;
    }
    hxfr__log(&h->log, HXFR_HOST_LOG_INFO, "stopping: %u clients, finishing frames in flight",
              h->nclients);
    h->stopping = true;
    h->stop_deadline_ms = hxfr__now_ms() + h->cfg.shutdown_timeout_ms;
    close_listeners(h);
    hxfr__scanouts_stop(h);
    for (struct hxfr__client *c = h->clients; c; c = c->next) {
        hxfr__client_stop_reading(c);
    }
}

/* While stopping: done once no frame is queued or encoding and every
 * client's output is flushed, or once the deadline passed and the frames
 * at the workers are back. */
static bool stop_done(struct hxfr_host *h)
{
    if (!h->deadline_passed && hxfr__now_ms() >= h->stop_deadline_ms) {
        h->deadline_passed = true;
        hxfr__log(&h->log, HXFR_HOST_LOG_WARN, "shutdown timeout: failing frames still queued");
        hxfr__workers_cancel_pending(&h->workers);
        /* Queued frames are failed in request order: now for sessions with
         * nothing at the workers, otherwise when their running frame comes
         * back (session_kick sees deadline_passed). */
        for (struct hxfr__client *c = h->clients; c; c = c->next) {
            for (struct hxfr__session *s = c->sessions; s; s = s->next) {
                if (!s->running) {
                    hxfr__session_fail_queued(s, HXFR_STATUS_SHUTTING_DOWN, "server shutting down");
                }
            }
        }
    }
    if (sessions_busy(h)) {
        return false;
    }
    if (!h->deadline_passed) {
        for (struct hxfr__client *c = h->clients; c; c = c->next) {
            if (hxfr__conn_has_output(&c->conn) && !c->conn.cut) {
                return false;
            }
        }
    }
    return true;
}

static void on_timer(struct hxfr_host *h)
{
    uint64_t v;
    ssize_t n = read(h->timer_fd, &v, sizeof(v));
    (void)n;
    uint64_t now = hxfr__now_ms();
    for (int i = 0; i < h->nlisteners; i++) {
        struct hxfr__listener *l = h->listeners[i];
        if (l && hxfr__listener_wake(l)) {
            h->listeners_resting--;
        }
    }
    struct hxfr__client *c = h->clients;
    while (c) {
        struct hxfr__client *cn = c->next;
        hxfr__client_tick(c, now);
        c = cn;
    }
}

int hxfr_host_dispatch(struct hxfr_host *h, int timeout_ms)
{
    struct epoll_event ev[32];

    if (h->stopped) {
        return 1;
    }
    int n = epoll_wait(h->epfd, ev, 32, timeout_ms);
    if (n < 0) {
        return errno == EINTR ? 0 : -errno;
    }
    for (int i = 0; i < n; i++) {
        struct hxfr__watch *w = ev[i].data.ptr;
        switch (w->kind) {
        case HXFR__WATCH_LISTENER:
            on_listener(h, (struct hxfr__listener *)w);
            break;
        case HXFR__WATCH_CLIENT:
            hxfr__client_on_event((struct hxfr__client *)w, ev[i].events);
            break;
        case HXFR__WATCH_WORKERS:
            on_completions(h);
            break;
        case HXFR__WATCH_STOP:
            begin_stop(h);
            break;
        case HXFR__WATCH_TIMER:
            on_timer(h);
            break;
        case HXFR__WATCH_SCANOUT:
            hxfr__scanouts_on_timer(h);
            break;
        }
        /* A listener closed by begin_stop() may still have an event later
         * in this batch: stop handling the batch after a stop began. */
        if (h->stopping && w->kind == HXFR__WATCH_STOP) {
            break;
        }
    }
    int ret = 0;
    if (h->stopping && stop_done(h)) {
        close_all_clients(h, "server stopped");
        h->stopped = true;
        hxfr__log(&h->log, HXFR_HOST_LOG_INFO, "shutdown complete");
        ret = 1;
    }
    update_timer(h);
    free_dead(h);
    return ret;
}

int hxfr_host_run(struct hxfr_host *h)
{
    for (;;) {
        int r = hxfr_host_dispatch(h, -1);
        if (r < 0) {
            return r;
        }
        if (r > 0) {
            return 0;
        }
    }
}

int hxfr_host_scanout_enable(struct hxfr_host *h, uint32_t id, uint32_t width, uint32_t height,
                             const char *connector)
{
    return hxfr__scanout_vmm_enable(h, id, width, height, connector);
}

int hxfr_host_scanout_disable(struct hxfr_host *h, uint32_t id)
{
    return hxfr__scanout_vmm_disable(h, id);
}

int hxfr_host_scanout_publish(struct hxfr_host *h, uint32_t id, const struct hxfr_host_frame *frame)
{
    return hxfr__scanout_vmm_publish(h, id, frame);
}

int hxfr_host_get_stats(struct hxfr_host *h, struct hxfr_host_stats *out)
{
    *out = h->stats;
    out->clients = h->nclients;
    out->frame_buffer_bytes = 0;
    out->fds_held = 0;
    for (struct hxfr__client *c = h->clients; c; c = c->next) {
        out->frame_buffer_bytes += c->pool_bytes;
        out->fds_held += c->conn.fds_held;
    }
    hxfr__scanouts_stats(h, out);
    return 0;
}

int hxfr_host_foreach_session(struct hxfr_host *h, bool reset_interval,
                              void (*cb)(void *opaque, const struct hxfr_host_session_stats *s),
                              void *opaque)
{
    int count = 0;
    struct hxfr_host_session_stats st;

    for (struct hxfr__client *c = h->clients; c; c = c->next) {
        for (struct hxfr__session *s = c->sessions; s; s = s->next) {
            hxfr__session_stats(s, &st, reset_interval);
            if (cb) {
                cb(opaque, &st);
            }
            count++;
        }
    }
    return count;
}
