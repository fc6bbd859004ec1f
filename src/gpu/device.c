/* The device (see device.h): vhost-user requests in, virtqueue chains
 * through the virtio-gpu command handlers, replies and interrupts out,
 * QEMU's display fed on the side. */
#include "device.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <linux/virtio_gpu.h>

#include "display.h"
#include "vhost.h"

#define RING_CONTROL 0
#define RING_CURSOR  1
#define N_RINGS      2

struct hxfr_device {
    struct hxfr_loop *loop;
    struct hxfr_vhost vhost;
    struct hxfr_loop_source *vhost_src;
    struct hxfr_gpu gpu;
    struct hxfr_display display;
    struct hxfr_loop_source *display_src;
    int display_src_fd;
    uint32_t display_events;
    struct hxfr_loop_source *kick_src[N_RINGS];
    int kick_src_fd[N_RINGS];
    bool pending[N_RINGS];
    struct hxfr_vring_elem *elem;
    /* A RESOURCE_FLUSH a listener holds: its chain, answered when the hold
     * ends (the control ring waits behind it). */
    bool held;
    uint16_t held_head;
    uint32_t held_len;
    uint64_t held_flushes;
    bool done, error;
    uint64_t bad_heads;
    hxfr_device_log_fn log;
    void *log_data;
};

void hxfr__logf(hxfr_device_log_fn log, void *data, enum hxfr_log_level level, const char *fmt, ...)
{
    if (log == NULL) {
        return;
    }
    char line[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    log(data, level, line);
}

#define logf_(dev, ...) hxfr__logf((dev)->log, (dev)->log_data, __VA_ARGS__)

static void gpu_log(void *data, const char *line)
{
    struct hxfr_device *dev = data;
    logf_(dev, HXFR_LOG_DEBUG, "guest: %s", line);
}

/* --- QEMU's display socket ---------------------------------------------- */

static void display_event(void *data, uint32_t events);

/* Watches the GPU socket for EOF, and for room while output waits. */
static void display_watch(struct hxfr_device *dev, bool want_out)
{
    int fd = dev->display.fd;
    if (dev->display_src != NULL && dev->display_src_fd != fd) {
        hxfr__loop_remove(dev->loop, dev->display_src);
        dev->display_src = NULL;
    }
    if (fd < 0) {
        return;
    }
    uint32_t events = EPOLLIN | (want_out ? EPOLLOUT : 0);
    if (dev->display_src == NULL) {
        dev->display_src = hxfr__loop_add(dev->loop, fd, events, display_event, dev);
        dev->display_src_fd = fd;
        dev->display_events = events;
        if (dev->display_src == NULL) {
            logf_(dev, HXFR_LOG_ERROR, "cannot watch the GPU socket: %s", strerror(errno));
        }
    } else if (events != dev->display_events) {
        hxfr__loop_update(dev->loop, dev->display_src, events);
        dev->display_events = events;
    }
}

static void display_flush(struct hxfr_device *dev)
{
    int r = hxfr__display_flush(&dev->display);
    if (r == -EPIPE) {
        logf_(dev, HXFR_LOG_WARN, "QEMU closed the GPU socket");
    }
    display_watch(dev, r == 1);
}

static void display_event(void *data, uint32_t events)
{
    struct hxfr_device *dev = data;
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        if (hxfr__display_read(&dev->display) == -EPIPE) {
            logf_(dev, HXFR_LOG_INFO, "GPU socket closed by QEMU");
            display_watch(dev, false);
            return;
        }
    }
    display_flush(dev);
}

/* --- virtqueues ----------------------------------------------------------- */

/* Chains handled per ring before other sources get their turn. */
#define RING_BUDGET 256

/* Gives the held flush's chain back to the guest (its answer and fence
 * were written when it was handled). */
static void answer_held(struct hxfr_device *dev)
{
    if (!dev->held) {
        return;
    }
    struct hxfr_vring *vr = &dev->vhost.rings[RING_CONTROL];
    dev->held = false;
    hxfr__vring_push(vr, dev->held_head, dev->held_len);
    hxfr__vring_notify(vr);
}

/* The last hold ended (a listener's hxfr_gpu_flush_done): answer, and let
 * the next work turn go on with the control queue. */
static void flush_released(void *data)
{
    struct hxfr_device *dev = data;
    if (dev->held) {
        answer_held(dev);
        dev->pending[RING_CONTROL] = true;
    }
}

static void process_ring(struct hxfr_device *dev, unsigned idx)
{
    struct hxfr_vring *vr = &dev->vhost.rings[idx];
    bool pushed = false;
    unsigned budget = RING_BUDGET;

    dev->pending[idx] = false;
    if (!hxfr__vhost_ring_live(&dev->vhost, idx) || (idx == RING_CONTROL && dev->held)) {
        return;
    }
    for (;;) {
        int r = hxfr__vring_pop(vr, &dev->vhost.mem, dev->elem);
        if (r == 0) {
            if (!hxfr__vring_rearm(vr)) {
                break;
            }
            continue;
        }
        if (r == -EPIPE) {
            logf_(dev, HXFR_LOG_WARN,
                  "%s queue: the driver published more entries than the ring holds; ring stopped "
                  "until the next reset",
                  idx == RING_CONTROL ? "control" : "cursor");
            hxfr__vring_error(vr);
            break;
        }
        if (r == -EBADMSG) {
            logf_(dev, HXFR_LOG_DEBUG, "%s queue: malformed descriptor chain at head %u returned",
                  idx == RING_CONTROL ? "control" : "cursor", dev->elem->head);
            hxfr__vring_error(vr);
            if (dev->elem->head < vr->num) {
                hxfr__vring_push(vr, dev->elem->head, 0);
                pushed = true;
            } else {
                dev->bad_heads++; /* not a descriptor: nothing to give back */
            }
        } else {
            uint32_t len = 0;
            if (idx == RING_CONTROL) {
                len = hxfr__gpu_ctrl(&dev->gpu, dev->elem);
            } else {
                hxfr__gpu_cursor_cmd(&dev->gpu, dev->elem);
            }
            if (idx == RING_CONTROL && hxfr__gpu_held(&dev->gpu) && dev->elem->head < vr->num) {
                /* A listener holds this flush: nothing after it is taken
                 * until the hold ends (answers stay in order). */
                dev->held = true;
                dev->held_head = dev->elem->head;
                dev->held_len = len;
                dev->held_flushes++;
                break;
            }
            if (dev->elem->head < vr->num) {
                hxfr__vring_push(vr, dev->elem->head, len);
                pushed = true;
            } else {
                dev->bad_heads++;
            }
        }
        if (--budget == 0) {
            dev->pending[idx] = true;
            break;
        }
    }
    if (pushed) {
        hxfr__vring_notify(vr);
    }
    display_flush(dev);
}

static void kick_event(struct hxfr_device *dev, unsigned idx)
{
    uint64_t v;
    int fd = dev->vhost.rings[idx].kick_fd;
    if (fd >= 0 && read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN && errno != EINTR) {
        logf_(dev, HXFR_LOG_WARN, "kick fd of ring %u: %s", idx, strerror(errno));
    }
    process_ring(dev, idx);
}

static void kick_control(void *data, uint32_t events)
{
    (void)events;
    kick_event(data, RING_CONTROL);
}

static void kick_cursor(void *data, uint32_t events)
{
    (void)events;
    kick_event(data, RING_CURSOR);
}

static void watch_kick(struct hxfr_device *dev, unsigned idx)
{
    const struct hxfr_vring *vr = &dev->vhost.rings[idx];
    int fd = vr->started ? vr->kick_fd : -1;
    if (dev->kick_src[idx] != NULL && dev->kick_src_fd[idx] != fd) {
        hxfr__loop_remove(dev->loop, dev->kick_src[idx]);
        dev->kick_src[idx] = NULL;
    }
    if (fd >= 0 && dev->kick_src[idx] == NULL) {
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
        dev->kick_src[idx] = hxfr__loop_add(dev->loop, fd, EPOLLIN,
                                            idx == RING_CONTROL ? kick_control : kick_cursor, dev);
        dev->kick_src_fd[idx] = fd;
        if (dev->kick_src[idx] == NULL) {
            logf_(dev, HXFR_LOG_ERROR, "cannot watch kick fd of ring %u: %s", idx, strerror(errno));
        }
    }
}

/* --- vhost-user callbacks --------------------------------------------------- */

static int op_get_config(void *data, uint32_t offset, uint8_t *buf, uint32_t len)
{
    struct hxfr_device *dev = data;
    return hxfr__gpu_get_config(&dev->gpu, offset, buf, len);
}

static int op_set_config(void *data, uint32_t offset, const uint8_t *buf, uint32_t len)
{
    struct hxfr_device *dev = data;
    return hxfr__gpu_set_config(&dev->gpu, offset, buf, len);
}

static void op_gpu_socket(void *data, int fd)
{
    struct hxfr_device *dev = data;
    /* The old socket's watch goes before the fd is closed. */
    if (dev->display_src != NULL) {
        hxfr__loop_remove(dev->loop, dev->display_src);
        dev->display_src = NULL;
    }
    logf_(dev, HXFR_LOG_INFO, "GPU socket from QEMU%s",
          dev->display.fd >= 0 ? " (replacing the previous one)" : "");
    hxfr__display_set_socket(&dev->display, fd);
    display_flush(dev);
}

static void op_mem_changed(void *data)
{
    struct hxfr_device *dev = data;
    const struct hxfr_mem *m = &dev->vhost.mem;
    uint64_t total = 0;
    for (unsigned i = 0; i < m->n; i++) {
        total += m->r[i].size;
    }
    logf_(dev, HXFR_LOG_INFO, "guest RAM: %u region%s, %llu MiB mapped", m->n, m->n == 1 ? "" : "s",
          (unsigned long long)(total >> 20));
    hxfr__gpu_mem_changed(&dev->gpu);
}

static void op_ring_changed(void *data, unsigned idx)
{
    struct hxfr_device *dev = data;
    if (idx == RING_CONTROL && dev->held && !dev->vhost.rings[idx].started) {
        /* The ring stops (GET_VRING_BASE: a VM pause, migration, reset):
         * the held flush is answered now, before the front-end learns
         * where the ring stands, so no chain is left in flight. */
        hxfr__gpu_unhold(&dev->gpu);
        answer_held(dev);
    }
    watch_kick(dev, idx);
    if (hxfr__vhost_ring_live(&dev->vhost, idx)) {
        process_ring(dev, idx);
    }
}

static void op_reset(void *data)
{
    struct hxfr_device *dev = data;
    logf_(dev, HXFR_LOG_INFO, "device reset: %u resource%s dropped", dev->gpu.n_resources,
          dev->gpu.n_resources == 1 ? "" : "s");
    dev->held = false; /* the rings were stopped first: already answered */
    hxfr__gpu_reset(&dev->gpu);
    display_flush(dev);
}

static void op_features(void *data, uint64_t features)
{
    struct hxfr_device *dev = data;
    dev->gpu.edid = features & (1ull << VIRTIO_GPU_F_EDID);
    logf_(dev, HXFR_LOG_DEBUG, "features 0x%llx (EDID %s)", (unsigned long long)features,
          dev->gpu.edid ? "on" : "off");
}

static const struct hxfr_vhost_ops vhost_ops = {
    .version = 1,
    .device_features = 1ull << VIRTIO_GPU_F_EDID,
    .get_config = op_get_config,
    .set_config = op_set_config,
    .gpu_socket = op_gpu_socket,
    .mem_changed = op_mem_changed,
    .ring_changed = op_ring_changed,
    .reset = op_reset,
    .features = op_features,
};

static void finish_connection(struct hxfr_device *dev, bool error)
{
    dev->done = true;
    dev->error = error;
    hxfr__loop_remove(dev->loop, dev->vhost_src);
    dev->vhost_src = NULL;
}

static void vhost_event(void *data, uint32_t events)
{
    struct hxfr_device *dev = data;
    (void)events;
    int err = hxfr__vhost_read(&dev->vhost);
    if (err == -EPIPE) {
        logf_(dev, HXFR_LOG_INFO, "QEMU closed the vhost-user connection");
        finish_connection(dev, false);
    } else if (err < 0) {
        logf_(dev, HXFR_LOG_ERROR, "vhost-user request %u: %s (%s)", dev->vhost.last_request,
              dev->vhost.last_error ? dev->vhost.last_error : "error", strerror(-err));
        finish_connection(dev, true);
    } else if (dev->vhost.last_error != NULL) {
        logf_(dev, HXFR_LOG_WARN, "vhost-user request %u refused: %s", dev->vhost.last_request,
              dev->vhost.last_error);
        dev->vhost.last_error = NULL;
    }
}

/* --- life cycle -------------------------------------------------------------- */

struct hxfr_device *hxfr__device_new(struct hxfr_loop *loop, int vhost_fd,
                                     const struct hxfr_gpu_config *cfg, hxfr_device_log_fn log,
                                     void *log_data)
{
    struct hxfr_device *dev = calloc(1, sizeof(*dev));
    if (dev == NULL) {
        return NULL;
    }
    dev->loop = loop;
    dev->log = log;
    dev->log_data = log_data;
    dev->elem = malloc(sizeof(*dev->elem));
    hxfr__vhost_init(&dev->vhost, vhost_fd, N_RINGS, &vhost_ops, dev);
    int err = dev->elem == NULL ? -ENOMEM : hxfr__gpu_init(&dev->gpu, cfg, &dev->vhost.mem);
    if (err == 0) {
        dev->gpu.log = gpu_log;
        dev->gpu.log_data = dev;
        dev->gpu.flush_released = flush_released;
        dev->gpu.flush_released_data = dev;
        err = hxfr__display_init(&dev->display, &dev->gpu);
    }
    if (err == 0) {
        dev->vhost_src = hxfr__loop_add(loop, vhost_fd, EPOLLIN, vhost_event, dev);
        err = dev->vhost_src == NULL ? -errno : 0;
    }
    if (err < 0) {
        hxfr__device_destroy(dev);
        errno = -err;
        return NULL;
    }
    return dev;
}

void hxfr__device_destroy(struct hxfr_device *dev)
{
    if (dev == NULL) {
        return;
    }
    hxfr__loop_remove(dev->loop, dev->vhost_src);
    hxfr__loop_remove(dev->loop, dev->display_src);
    for (unsigned i = 0; i < N_RINGS; i++) {
        hxfr__loop_remove(dev->loop, dev->kick_src[i]);
    }
    if (dev->display.gpu != NULL) {
        hxfr__display_finish(&dev->display);
    }
    hxfr__gpu_finish(&dev->gpu);
    hxfr__vhost_finish(&dev->vhost);
    free(dev->elem);
    free(dev);
}

struct hxfr_gpu *hxfr__device_gpu(struct hxfr_device *dev)
{
    return &dev->gpu;
}

bool hxfr__device_done(const struct hxfr_device *dev, bool *error)
{
    if (error != NULL) {
        *error = dev->error;
    }
    return dev->done;
}

bool hxfr__device_busy(const struct hxfr_device *dev)
{
    return dev->pending[RING_CONTROL] || dev->pending[RING_CURSOR];
}

void hxfr__device_work(struct hxfr_device *dev)
{
    for (unsigned i = 0; i < N_RINGS; i++) {
        if (dev->pending[i]) {
            process_ring(dev, i);
        }
    }
}

void hxfr__device_stats(const struct hxfr_device *dev, struct hxfr_device_stats *out)
{
    *out = (struct hxfr_device_stats){
        .vhost_requests = dev->vhost.requests,
        .unknown_feature_bits = dev->vhost.unknown_bits,
        .malformed_chains = dev->vhost.rings[0].malformed + dev->vhost.rings[1].malformed,
        .display_messages = dev->display.messages,
        .display_updates = dev->display.updates,
        .display_bytes = dev->display.bytes,
        .display_coalesced = dev->display.coalesced,
        .held_flushes = dev->held_flushes,
        .display_connected = dev->display.fd >= 0,
    };
}
