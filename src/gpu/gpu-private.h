/* The virtio-gpu device proper (2D only): its state, and the entry points
 * the vhost-user side (device.c) feeds virtqueue elements into. Split by
 * job: resource.c (resources, backing, transfers, memory cap), scanout.c
 * (connectors, scanouts, flushes, cursors, listeners), commands.c (decoding
 * and answering the guest's commands), edid.c (EDID blocks).
 */
#ifndef HXFR_GPU_GPU_PRIVATE_H
#define HXFR_GPU_GPU_PRIVATE_H

#include <stdbool.h>
#include <stdint.h>

#include "gpu.h"
#include "mem.h"
#include "vring.h"

/* Most guest pieces one ATTACH_BACKING may list (enough for a 64 MiB
 * resource in 4 KiB pages; Linux merges contiguous pages, a 4 MiB
 * framebuffer comes in a few dozen). */
#define HXFR_GPU_MAX_BACKING_ENTRIES 16384u
/* Largest resource side accepted. */
#define HXFR_GPU_MAX_RESOURCE_DIM 16384u
/* Bookkeeping charged to the memory cap per resource, beyond its pixels,
 * so that a flood of tiny resources is bounded too. */
#define HXFR_GPU_RESOURCE_OVERHEAD 256u

struct hxfr_gpu_config {
    uint32_t max_outputs;         /* 1 .. HXFR_GPU_MAX_SCANOUTS */
    uint64_t max_resource_memory; /* bytes of host copies (plus overhead) */
    uint32_t max_resources;
    uint32_t width, height; /* the mode scanout 0 starts with */
};

/* Sets the defaults: 16 outputs, 256 MiB, 65536 resources, 1920x1080. */
void hxfr__gpu_config_init(struct hxfr_gpu_config *cfg);

/* A guest backing entry as ATTACH_BACKING gave it (kept so that the
 * backing can be resolved again after a new memory table). */
struct hxfr_gpu_entry {
    uint64_t gpa;
    uint32_t len;
};

struct hxfr_gpu_res {
    uint32_t id;
    uint32_t format; /* VIRTIO_GPU_FORMAT_* */
    uint32_t drm_format;
    uint32_t width, height, stride;
    uint64_t size;
    uint8_t *pixels; /* host copy, size bytes */
    struct hxfr_gpu_entry *entries;
    uint32_t n_entries;
    struct hxfr_gpu_piece *pieces;
    uint32_t n_pieces;
    uint64_t backing_size;
    uint32_t scanouts;
    struct hxfr_gpu_res *next; /* hash chain */
};

struct hxfr_gpu_cursor {
    bool visible;
    bool has_image;
    uint32_t x, y, hot_x, hot_y;
    uint32_t resource_id;
    uint64_t serial;
    uint32_t image[HXFR_GPU_CURSOR_SIZE * HXFR_GPU_CURSOR_SIZE];
};

struct hxfr_gpu_output {
    bool connected;
    uint32_t width, height;
    uint32_t resource_id;
    struct hxfr_gpu_rect rect;
    struct hxfr_gpu_cursor cursor;
};

/* What the device counted; the program logs or reports it. */
struct hxfr_gpu_stats {
    uint64_t commands;
    uint64_t errors; /* commands answered with an ERR_* */
    uint64_t cursor_commands;
    uint64_t cursor_errors;
    uint64_t transfers;
    uint64_t transfer_bytes;
    uint64_t flushes;
    uint64_t resets;
    uint32_t last_error_cmd;  /* command type of the last error */
    uint32_t last_error_resp; /* and the response it got */
    const char *last_error;   /* static text: why */
};

struct hxfr_gpu {
    struct hxfr_gpu_config cfg;
    struct hxfr_mem *mem; /* borrowed: the vhost-user memory table */
    bool edid;            /* VIRTIO_GPU_F_EDID negotiated */
    struct hxfr_gpu_res **table;
    uint32_t table_size; /* buckets, a power of two */
    uint32_t n_resources;
    uint64_t memory; /* charged against cfg.max_resource_memory */
    struct hxfr_gpu_output out[HXFR_GPU_MAX_SCANOUTS];
    struct hxfr_gpu_listener listeners[HXFR_GPU_MAX_LISTENERS];
    bool listener_used[HXFR_GPU_MAX_LISTENERS];
    uint32_t events_read; /* config space (QEMU keeps its own) */
    /* RESOURCE_FLUSH holds (HXFR_GPU_FLUSH_HOLD): the token of the latest
     * flush and how many holds of it are outstanding. */
    uint64_t flush_token;
    uint32_t flush_holds;
    /* Called when the last hold ends: the device answers the flush. */
    void (*flush_released)(void *data);
    void *flush_released_data;
    struct hxfr_gpu_stats stats;
    /* Optional: called with a line for every rejected command. */
    void (*log)(void *data, const char *line);
    void *log_data;
};

/* Sets up an empty device on mem (borrowed for the device's life). Returns
 * 0 or -EINVAL (cfg out of range) / -ENOMEM. */
int hxfr__gpu_init(struct hxfr_gpu *gpu, const struct hxfr_gpu_config *cfg, struct hxfr_mem *mem);
/* Frees every resource. */
void hxfr__gpu_finish(struct hxfr_gpu *gpu);
/* Device reset: resources, scanout bindings and cursors go, listeners get
 * reset(); connectors keep their state. */
void hxfr__gpu_reset(struct hxfr_gpu *gpu);
/* The memory table changed: every backing is resolved again (a backing
 * that no longer resolves is detached). */
void hxfr__gpu_mem_changed(struct hxfr_gpu *gpu);

/* Handles one control-queue chain and writes the reply into its writable
 * part. Returns the number of reply bytes written. When hxfr__gpu_held()
 * is true afterwards, the command was a flush a listener holds: the chain
 * goes back to the guest only once flush_released is called (or
 * hxfr__gpu_unhold()), and no later control chain may be processed before. */
uint32_t hxfr__gpu_ctrl(struct hxfr_gpu *gpu, const struct hxfr_vring_elem *e);
/* True while a flush is held. */
bool hxfr__gpu_held(const struct hxfr_gpu *gpu);
/* Ends every hold at once (ring stop, reset): tokens become stale. */
void hxfr__gpu_unhold(struct hxfr_gpu *gpu);
/* Handles one cursor-queue chain (no reply). */
void hxfr__gpu_cursor_cmd(struct hxfr_gpu *gpu, const struct hxfr_vring_elem *e);

/* Config space (struct virtio_gpu_config, 16 bytes). */
int hxfr__gpu_get_config(struct hxfr_gpu *gpu, uint32_t offset, uint8_t *buf, uint32_t len);
int hxfr__gpu_set_config(struct hxfr_gpu *gpu, uint32_t offset, const uint8_t *buf, uint32_t len);

/* resource.c */
struct hxfr_gpu_res *hxfr__res_find(const struct hxfr_gpu *gpu, uint32_t id);
/* Creates a zeroed resource; returns a VIRTIO_GPU_RESP_* code. */
uint32_t hxfr__res_create(struct hxfr_gpu *gpu, uint32_t id, uint32_t format, uint32_t width,
                          uint32_t height);
void hxfr__res_destroy(struct hxfr_gpu *gpu, struct hxfr_gpu_res *res);
void hxfr__res_destroy_all(struct hxfr_gpu *gpu);
/* Takes entries (malloc'd, n of them) on success; returns a RESP code. */
uint32_t hxfr__res_attach(struct hxfr_gpu *gpu, struct hxfr_gpu_res *res,
                          struct hxfr_gpu_entry *entries, uint32_t n);
void hxfr__res_detach(struct hxfr_gpu_res *res);
/* Re-resolves the entries; false (and detached) if they no longer map. */
bool hxfr__res_resolve(const struct hxfr_gpu *gpu, struct hxfr_gpu_res *res);
/* TRANSFER_TO_HOST_2D: returns a RESP code. */
uint32_t hxfr__res_transfer(struct hxfr_gpu *gpu, struct hxfr_gpu_res *res,
                            const struct hxfr_gpu_rect *r, uint64_t offset);
/* Gathers len bytes at resource offset off from the backing. */
void hxfr__res_gather(const struct hxfr_gpu_res *res, uint64_t off, uint8_t *dst, uint64_t len);
/* True if r lies inside res (64-bit arithmetic) and is not empty. */
bool hxfr__rect_inside(const struct hxfr_gpu_rect *r, uint32_t width, uint32_t height);
/* Fills info from res. */
void hxfr__res_info(const struct hxfr_gpu_res *res, struct hxfr_gpu_resource_info *info);
/* VIRTIO_GPU_FORMAT_* to DRM fourcc, 0 for formats not supported. */
uint32_t hxfr__format_drm(uint32_t virtio_format);

/* scanout.c */
void hxfr__gpu_outputs_init(struct hxfr_gpu *gpu);
/* SET_SCANOUT; returns a RESP code. */
uint32_t hxfr__scanout_set(struct hxfr_gpu *gpu, uint32_t id, uint32_t resource_id,
                           const struct hxfr_gpu_rect *r);
/* RESOURCE_FLUSH; returns a RESP code. */
uint32_t hxfr__scanout_flush(struct hxfr_gpu *gpu, uint32_t resource_id,
                             const struct hxfr_gpu_rect *r);
/* The resource goes: every scanout showing it goes blank. */
void hxfr__scanout_forget_resource(struct hxfr_gpu *gpu, uint32_t resource_id);
/* UPDATE_CURSOR / MOVE_CURSOR (scanout id already checked). */
bool hxfr__cursor_update(struct hxfr_gpu *gpu, uint32_t id, uint32_t resource_id, uint32_t x,
                         uint32_t y, uint32_t hot_x, uint32_t hot_y);
void hxfr__cursor_move(struct hxfr_gpu *gpu, uint32_t id, uint32_t x, uint32_t y);
/* Listener fan-out. emit_flush counts the holds in gpu->flush_holds. */
void hxfr__emit_flush(struct hxfr_gpu *gpu, uint32_t scanout, uint32_t resource,
                      const struct hxfr_gpu_rect *r, uint64_t token);
void hxfr__emit_scanout(struct hxfr_gpu *gpu, uint32_t scanout);
void hxfr__emit_cursor(struct hxfr_gpu *gpu, uint32_t scanout, bool image);
void hxfr__emit_display_changed(struct hxfr_gpu *gpu);
void hxfr__emit_resource_destroy(struct hxfr_gpu *gpu, uint32_t resource);
void hxfr__emit_reset(struct hxfr_gpu *gpu);

#endif
