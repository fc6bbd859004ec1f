/* hxfr-gpu's HXFR server (serve.h): the device's state through gpu.h on
 * one side, libhxfr-host's embedding API on the other. */
#include "serve.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "gpu.h"

/* Flush latencies kept for the statistics line. */
#define LATENCY_SAMPLES 1024u

/* What the server knows of one of the device's scanouts. */
struct out_state {
    bool enabled; /* a scanout of the server */
    uint32_t width, height;
    uint32_t resource_id; /* what the guest showed at the last look */
    struct hxfr_gpu_rect rect;
    bool flip_pending; /* SET_SCANOUT changed the picture; no flush yet */
    bool warned_format;
};

/* Pixels lent to the server (the handle of struct hxfr_host_pixels). */
struct lent {
    uint64_t t0_ns;    /* when it was lent */
    uint64_t mem_hold; /* guest RAM stays mapped while the server reads */
    bool flush;        /* the guest's flush waits for it: flush_token */
    uint64_t flush_token;
};

struct hxfr_serve {
    struct hxfr_loop *loop;
    struct hxfr_hostcli *cli;
    struct hxfr_host *host;
    struct hxfr_loop_source *host_src;
    int deferred_fd; /* eventfd: page flips published after the ring turn */
    struct hxfr_loop_source *deferred_src;
    struct hxfr_device *dev;
    struct hxfr_gpu *gpu;
    int listener;
    struct out_state out[HXFR_GPU_MAX_SCANOUTS];
    struct hxfr_host_piece *pieces; /* scratch: the device's pieces, for a lend */
    uint32_t pieces_cap;
    /* Held flushes whose pictures came back: answered from the loop, after
     * the device's callbacks (which must not answer them). */
    uint64_t *done;
    uint32_t ndone, done_cap;
    /* Statistics. */
    uint64_t lent_now;
    uint32_t latency_us[LATENCY_SAMPLES];
    unsigned nlatency;
    uint64_t flushes_held;
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- Pixels out of guest memory ------------------------------------------ */

static bool encodable(uint32_t drm_format)
{
    return drm_format == HXFR_FORMAT_ARGB8888 || drm_format == HXFR_FORMAT_XRGB8888 ||
           drm_format == HXFR_FORMAT_ABGR8888 || drm_format == HXFR_FORMAT_XBGR8888;
}

/* Describes rectangle r of resource info (its backing in place) in *px.
 * Returns 0, -ENODATA (no backing), -ENOTSUP (a format the encoders do not
 * take) or -ENOMEM. */
static int describe(struct hxfr_serve *s, const struct hxfr_gpu_resource_info *info,
                    const struct hxfr_gpu_rect *r, struct hxfr_host_pixels *px)
{
    if (!info->pieces || info->n_pieces == 0) {
        return -ENODATA;
    }
    if (!encodable(info->drm_format)) {
        return -ENOTSUP;
    }
    if (s->pieces_cap < info->n_pieces) {
        struct hxfr_host_piece *p = realloc(s->pieces, info->n_pieces * sizeof(*p));
        if (!p) {
            return -ENOMEM;
        }
        s->pieces = p;
        s->pieces_cap = info->n_pieces;
    }
    for (uint32_t i = 0; i < info->n_pieces; i++) {
        const struct hxfr_gpu_piece *g = &info->pieces[i];
        s->pieces[i] = (struct hxfr_host_piece){g->host, g->offset, g->len};
    }
    struct lent *l = malloc(sizeof(*l));
    if (!l) {
        return -ENOMEM;
    }
    *l = (struct lent){.t0_ns = now_ns(), .mem_hold = hxfr_gpu_mem_hold(s->gpu)};
    memset(px, 0, sizeof(*px));
    px->format = info->drm_format;
    px->width = r->width;
    px->height = r->height;
    px->strides[0] = info->stride;
    px->pieces = s->pieces;
    px->n_pieces = info->n_pieces;
    px->offset = (uint64_t)r->y * info->stride + (uint64_t)r->x * 4;
    px->handle = l;
    s->lent_now++;
    return 0;
}

static void wake_deferred(struct hxfr_serve *s)
{
    uint64_t one = 1;
    ssize_t n = write(s->deferred_fd, &one, sizeof(one));
    (void)n;
}

/* A lent picture is back (or was never taken). */
static void lent_free(struct hxfr_serve *s, struct lent *l)
{
    if (s->gpu) {
        hxfr_gpu_mem_release(s->gpu, l->mem_hold);
    }
    free(l);
    s->lent_now--;
}

static void give_back(struct hxfr_serve *s, struct hxfr_host_pixels *px)
{
    struct lent *l = px->handle;
    if (l->flush) {
        uint64_t us = (now_ns() - l->t0_ns) / 1000u;
        s->latency_us[s->nlatency % LATENCY_SAMPLES] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
        s->nlatency++;
        s->flushes_held++;
        /* The release can come from inside a device callback (a newer
         * flush replacing this one): the flush is answered from the loop. */
        if (s->ndone == s->done_cap) {
            uint32_t cap = s->done_cap ? s->done_cap * 2 : 16;
            uint64_t *d = realloc(s->done, cap * sizeof(*d));
            if (d) {
                s->done = d;
                s->done_cap = cap;
            }
        }
        if (s->ndone < s->done_cap) {
            s->done[s->ndone++] = l->flush_token;
            wake_deferred(s);
        } else if (s->gpu) {
            /* No memory to defer it: answer now rather than never. */
            hxfr_gpu_flush_done(s->gpu, l->flush_token);
        }
    }
    lent_free(s, l);
}

/* The resolver: FRAME_REQUEST(resource_id) of a guest's buffer. */
static int resolve(void *opaque, uint32_t id, const struct hxfr_frame_request *req,
                   struct hxfr_host_pixels *out)
{
    struct hxfr_serve *s = opaque;
    struct hxfr_gpu_resource_info info;
    (void)req;
    if (!s->gpu || hxfr_gpu_resource_get(s->gpu, id, &info) < 0) {
        return -ENOENT;
    }
    struct hxfr_gpu_rect all = {0, 0, info.width, info.height};
    return describe(s, &info, &all, out);
}

static void resolve_release(void *opaque, struct hxfr_host_pixels *px)
{
    give_back(opaque, px);
}

/* ---- Scanouts ------------------------------------------------------------- */

/* The picture scanout id shows now: its resource's rectangle. */
static int scanout_pixels(struct hxfr_serve *s, uint32_t id, struct hxfr_host_pixels *px)
{
    struct hxfr_gpu_scanout_info so;
    struct hxfr_gpu_resource_info info;
    if (!s->gpu || hxfr_gpu_scanout_get(s->gpu, id, &so) < 0 || so.resource_id == 0 ||
        hxfr_gpu_resource_get(s->gpu, so.resource_id, &info) < 0) {
        return -ENOENT;
    }
    return describe(s, &info, &so.rect, px);
}

static int ops_acquire(void *opaque, uint32_t id, struct hxfr_host_pixels *out)
{
    return scanout_pixels(opaque, id, out);
}

static void ops_release(void *opaque, uint32_t id, struct hxfr_host_pixels *px)
{
    (void)id;
    give_back(opaque, px);
}

/* Publishes what scanout id shows, with damage (NULL: all of it), for
 * the guest's flush token (0: a page flip, no flush to hold). Returns
 * whether the server took it (then the flush is to be held). */
static bool publish(struct hxfr_serve *s, uint32_t id, const struct hxfr_host_rect *damage,
                    uint64_t token)
{
    struct out_state *o = &s->out[id];
    struct hxfr_host_frame fr = {.damage = damage, .n_damage = damage ? 1 : 0};
    int r = scanout_pixels(s, id, &fr.pixels);
    if (r == -ENOTSUP && !o->warned_format) {
        o->warned_format = true;
        hxfr__hostcli_logf(s->cli, HXFR_HOST_LOG_WARN,
                           "scanout %u shows a resource in a format the encoders do not take "
                           "(only B8G8R8A8/X8 and R8G8B8A8/X8): not streamed",
                           id);
    }
    if (r < 0) {
        return false;
    }
    fr.pts = (int64_t)now_ns();
    struct lent *l = fr.pixels.handle;
    l->flush = token != 0;
    l->flush_token = token;
    r = hxfr_host_scanout_publish(s->host, id, &fr);
    if (r != 0) {
        /* Not taken (no subscriber: costs nothing more) or refused. */
        lent_free(s, l);
        return false;
    }
    return token != 0;
}

/* Brings the server's scanout id in line with the device's connector. */
static void sync_scanout(struct hxfr_serve *s, uint32_t id)
{
    struct hxfr_gpu_scanout_info so;
    struct out_state *o = &s->out[id];
    if (hxfr_gpu_scanout_get(s->gpu, id, &so) < 0) {
        return;
    }
    if (so.connected && (!o->enabled || o->width != so.width || o->height != so.height)) {
        char name[32];
        snprintf(name, sizeof(name), "Virtual-%u", id + 1);
        int r = hxfr_host_scanout_enable(s->host, id, so.width, so.height, name);
        if (r < 0) {
            hxfr__hostcli_logf(s->cli, HXFR_HOST_LOG_ERROR, "scanout %u (%s %ux%u): %s", id, name,
                               so.width, so.height, strerror(-r));
        }
        o->enabled = r == 0;
        o->width = so.width;
        o->height = so.height;
    } else if (!so.connected && o->enabled) {
        hxfr_host_scanout_disable(s->host, id);
        o->enabled = false;
    }
    if (so.resource_id != o->resource_id || memcmp(&so.rect, &o->rect, sizeof(so.rect)) != 0) {
        o->resource_id = so.resource_id;
        o->rect = so.rect;
        if (o->enabled && so.resource_id != 0) {
            /* A page flip: published once the commands of this ring turn
             * are done, unless a flush of the new picture comes first
             * (the kernel flushes right after SET_SCANOUT). */
            o->flip_pending = true;
            wake_deferred(s);
        }
    }
}

/* A RESOURCE_FLUSH on scanout id: published, and held until the encoder
 * has read the picture (the guest then draws again). */
static int on_flush(void *data, uint32_t id, uint32_t resource_id, const struct hxfr_gpu_rect *r,
                    uint64_t token)
{
    struct hxfr_serve *s = data;
    struct out_state *o = &s->out[id];
    (void)resource_id;
    if (!o->enabled) {
        return HXFR_GPU_FLUSH_DONE;
    }
    bool held;
    if (o->flip_pending) {
        o->flip_pending = false;
        held = publish(s, id, NULL, token);
    } else {
        /* The flush rectangle is in resource coordinates, inside the part
         * the scanout shows. */
        struct hxfr_host_rect d = {r->x - o->rect.x, r->y - o->rect.y, r->width, r->height};
        held = publish(s, id, &d, token);
    }
    return held ? HXFR_GPU_FLUSH_HOLD : HXFR_GPU_FLUSH_DONE;
}

static void on_scanout(void *data, uint32_t id)
{
    sync_scanout(data, id);
}

static void on_reset(void *data)
{
    struct hxfr_serve *s = data;
    for (uint32_t i = 0; i < hxfr_gpu_scanout_count(s->gpu); i++) {
        sync_scanout(s, i);
    }
}

static void deferred_event(void *data, uint32_t events)
{
    struct hxfr_serve *s = data;
    uint64_t v;
    (void)events;
    ssize_t n = read(s->deferred_fd, &v, sizeof(v));
    (void)n;
    /* Flushes whose pictures came back are answered. A stale token (a
     * ring stop or reset answered it already) is harmless. */
    for (uint32_t i = 0; i < s->ndone; i++) {
        if (s->gpu) {
            hxfr_gpu_flush_done(s->gpu, s->done[i]);
        }
    }
    s->ndone = 0;
    for (uint32_t i = 0; s->gpu && i < hxfr_gpu_scanout_count(s->gpu); i++) {
        if (s->out[i].flip_pending) {
            /* A page flip no flush followed. */
            s->out[i].flip_pending = false;
            publish(s, i, NULL, 0);
        }
    }
}

/* A peer's ENABLE_SCANOUT: plug connector id in at width x height. */
static int ops_enable(void *opaque, uint32_t id, uint32_t width, uint32_t height,
                      uint32_t refresh_hz, char *connector, size_t len)
{
    struct hxfr_serve *s = opaque;
    (void)refresh_hz;
    if (!s->gpu) {
        return -ENODEV;
    }
    if (id >= hxfr_gpu_scanout_count(s->gpu)) {
        return -EINVAL;
    }
    /* The device's scanout listener (sync_scanout) enables the server's
     * scanout from inside this call. */
    int r = hxfr_gpu_scanout_configure(s->gpu, id, width, height);
    if (r == 0) {
        snprintf(connector, len, "Virtual-%u", id + 1);
        hxfr__hostcli_logf(s->cli, HXFR_HOST_LOG_INFO,
                           "ENABLE_SCANOUT: connector Virtual-%u plugged in at %ux%u", id + 1,
                           width, height);
    }
    return r;
}

/* A peer's DISABLE_SCANOUT: unplug connector id. */
static int ops_disable(void *opaque, uint32_t id)
{
    struct hxfr_serve *s = opaque;
    if (!s->gpu || id >= hxfr_gpu_scanout_count(s->gpu)) {
        return -EINVAL;
    }
    hxfr__hostcli_logf(s->cli, HXFR_HOST_LOG_INFO,
                       "DISABLE_SCANOUT: connector Virtual-%u unplugged", id + 1);
    return hxfr_gpu_scanout_configure(s->gpu, id, 0, 0);
}

/* ---- The server on hxfr-gpu's loop ---------------------------------------- */

static void host_event(void *data, uint32_t events)
{
    struct hxfr_serve *s = data;
    (void)events;
    int r = hxfr_host_dispatch(s->host, 0);
    if (r < 0) {
        hxfr__hostcli_logf(s->cli, HXFR_HOST_LOG_ERROR, "HXFR server: %s", strerror(-r));
    }
}

struct hxfr_serve *hxfr__serve_new(struct hxfr_loop *loop, struct hxfr_host_config *cfg,
                                   struct hxfr_hostcli *cli)
{
    struct hxfr_serve *s = calloc(1, sizeof(*s));
    if (!s) {
        return NULL;
    }
    s->loop = loop;
    s->cli = cli;
    s->listener = -1;
    s->deferred_fd = -1;
    cfg->resolver = (struct hxfr_host_resolver){
        .version = HXFR_HOST_RESOLVER_VERSION,
        .acquire = resolve,
        .release = resolve_release,
        .opaque = s,
    };
    cfg->scanout_ops = (struct hxfr_host_scanout_ops){
        .version = HXFR_HOST_SCANOUT_OPS_VERSION,
        .enable = ops_enable,
        .disable = ops_disable,
        .acquire = ops_acquire,
        .release = ops_release,
        .opaque = s,
    };
    int err = 0;
    s->host = hxfr_host_new(cfg);
    if (!s->host) {
        err = errno;
    } else {
        s->deferred_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        s->host_src = hxfr__loop_add(loop, hxfr_host_get_fd(s->host), EPOLLIN, host_event, s);
        s->deferred_src = s->deferred_fd < 0
                              ? NULL
                              : hxfr__loop_add(loop, s->deferred_fd, EPOLLIN, deferred_event, s);
        if (!s->host_src || !s->deferred_src) {
            err = errno ? errno : ENOMEM;
        }
    }
    if (err) {
        hxfr__serve_destroy(s);
        errno = err;
        return NULL;
    }
    return s;
}

int hxfr__serve_listen(struct hxfr_serve *s, const char *uri, char *bound, size_t len)
{
    int r = hxfr__hostcli_listen(s->cli, s->host, uri);
    if (r >= 0 && hxfr_host_listener_uri(s->host, r, bound, len) < 0) {
        snprintf(bound, len, "%s", uri);
    }
    return r;
}

void hxfr__serve_set_device(struct hxfr_serve *s, struct hxfr_device *dev)
{
    if (s->gpu && s->listener >= 0) {
        hxfr_gpu_remove_listener(s->gpu, s->listener);
        s->listener = -1;
    }
    for (uint32_t i = 0; i < HXFR_GPU_MAX_SCANOUTS; i++) {
        if (s->out[i].enabled) {
            hxfr_host_scanout_disable(s->host, i);
        }
    }
    memset(s->out, 0, sizeof(s->out));
    s->dev = dev;
    s->gpu = dev ? hxfr__device_gpu(dev) : NULL;
    if (!s->gpu) {
        return;
    }
    struct hxfr_gpu_listener l = {
        .data = s,
        .flush = on_flush,
        .scanout = on_scanout,
        .reset = on_reset,
    };
    s->listener = hxfr_gpu_add_listener(s->gpu, &l);
    if (s->listener < 0) {
        hxfr__hostcli_logf(s->cli, HXFR_HOST_LOG_ERROR,
                           "no listener slot on the device: scanouts not served");
        return;
    }
    for (uint32_t i = 0; i < hxfr_gpu_scanout_count(s->gpu); i++) {
        sync_scanout(s, i);
    }
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

void hxfr__serve_stats(struct hxfr_serve *s)
{
    hxfr__hostcli_stats_tick(s->cli, s->host);
    unsigned n = s->nlatency < LATENCY_SAMPLES ? s->nlatency : LATENCY_SAMPLES;
    if (n == 0) {
        return;
    }
    static uint32_t sorted[LATENCY_SAMPLES];
    memcpy(sorted, s->latency_us, n * sizeof(sorted[0]));
    qsort(sorted, n, sizeof(sorted[0]), cmp_u32);
    char line[256];
    snprintf(line, sizeof(line),
             "stats gpu flush latency: %" PRIu64 " flushes waited for the encoder, p50 %.2f ms, "
             "p99 %.2f ms, max %.2f ms (last %u), %" PRIu64 " pictures lent now",
             s->flushes_held, sorted[(n - 1) / 2] / 1000.0,
             sorted[(n * 99 + 99) / 100 - 1] / 1000.0, sorted[n - 1] / 1000.0, n, s->lent_now);
    hxfr__hostcli_print(s->cli, HXFR_HOST_LOG_INFO, line);
    s->nlatency = 0;
}

void hxfr__serve_destroy(struct hxfr_serve *s)
{
    if (!s) {
        return;
    }
    if (s->gpu && s->listener >= 0) {
        hxfr_gpu_remove_listener(s->gpu, s->listener);
    }
    hxfr__loop_remove(s->loop, s->host_src);
    hxfr__loop_remove(s->loop, s->deferred_src);
    /* Waits for the encodes in progress: every lent picture comes back
     * (and every held flush completes) before the device goes. */
    hxfr_host_destroy(s->host);
    for (uint32_t i = 0; s->gpu && i < s->ndone; i++) {
        hxfr_gpu_flush_done(s->gpu, s->done[i]);
    }
    if (s->deferred_fd >= 0) {
        close(s->deferred_fd);
    }
    free(s->done);
    free(s->pieces);
    free(s);
}
