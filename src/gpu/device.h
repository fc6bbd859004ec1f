/* hxfr-gpu's device: one vhost-user connection to QEMU (vhost.c), the
 * virtio-gpu state behind it (gpu-private.h), the two virtqueues (control
 * and cursor) and QEMU's display socket (display.c), all on one event
 * loop. main.c creates one per process (one process per VM).
 */
#ifndef HXFR_GPU_DEVICE_H
#define HXFR_GPU_DEVICE_H

#include <stdbool.h>

#include "gpu-private.h"
#include "loop.h"

enum hxfr_log_level {
    HXFR_LOG_ERROR,
    HXFR_LOG_WARN,
    HXFR_LOG_INFO,
    HXFR_LOG_DEBUG,
};

typedef void (*hxfr_device_log_fn)(void *data, enum hxfr_log_level level, const char *line);

/* Formats one line (at most 300 bytes) and hands it to log, if not NULL. */
void hxfr__logf(hxfr_device_log_fn log, void *data, enum hxfr_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

struct hxfr_device;

/* Serves the front-end connected on vhost_fd (borrowed: the caller closes
 * it after hxfr__device_destroy()). log (optional) hears what the device
 * did and refused. Returns NULL and errno (EINVAL cfg, ENOMEM, ...). */
struct hxfr_device *hxfr__device_new(struct hxfr_loop *loop, int vhost_fd,
                                     const struct hxfr_gpu_config *cfg, hxfr_device_log_fn log,
                                     void *log_data);
/* Stops watching, frees the device state, unmaps guest RAM, closes the GPU
 * socket. Accepts NULL. */
void hxfr__device_destroy(struct hxfr_device *dev);

/* The virtio-gpu state (gpu.h is its API). */
struct hxfr_gpu *hxfr__device_gpu(struct hxfr_device *dev);

/* True once the front-end closed the connection or broke the protocol:
 * the process should end. *error tells which (false: a clean close). */
bool hxfr__device_done(const struct hxfr_device *dev, bool *error);

/* True while a virtqueue has more work than one turn handled (a flood):
 * the caller dispatches its loop without waiting, then calls
 * hxfr__device_work(). */
bool hxfr__device_busy(const struct hxfr_device *dev);
void hxfr__device_work(struct hxfr_device *dev);

/* Counters for logs and the control socket. */
struct hxfr_device_stats {
    uint64_t vhost_requests;
    uint64_t unknown_feature_bits;
    uint64_t malformed_chains;
    uint64_t display_messages;
    uint64_t display_updates;
    uint64_t display_bytes;
    uint64_t display_coalesced;
    uint64_t held_flushes; /* RESOURCE_FLUSH answers a listener held */
    bool display_connected;
};
void hxfr__device_stats(const struct hxfr_device *dev, struct hxfr_device_stats *out);

#endif
