/* hxfr-gpu's internal API: the virtio-gpu device state as the rest of the
 * program reads it and acts on it. Written for three consumers: QEMU's
 * display over the GPU socket (display.c), the control socket (control.c)
 * and, next, the embedded HXFR server of issue #13, which encodes scanout
 * flushes and FRAME_REQUEST(resource_id) straight from guest memory.
 *
 * Threading and lifetime: everything here runs on hxfr-gpu's loop thread.
 * Pointers a getter returns (host copy, backing pieces, cursor image) stay
 * valid until control returns to the event loop: the next virtqueue
 * command, vhost-user request (a new memory table remaps guest RAM) or
 * device reset may free or move them. A consumer that reads pixels on
 * another thread (an encoder's worker) either copies them first
 * (hxfr_gpu_resource_read()), or takes what it needs into its own memory
 * (the pieces array: n_pieces entries) and holds guest RAM mapped with
 * hxfr_gpu_mem_hold() until it is done; to keep the guest from drawing
 * into a frame that is being read, a flush listener holds the flush
 * (HXFR_GPU_FLUSH_HOLD).
 *
 * Coordinates: resources are width x height pixels of 4 bytes, rows of
 * stride = width * 4 bytes, in the guest's backing exactly as in the
 * device's host copy (virtio-gpu 2D resources are tightly packed).
 */
#ifndef HXFR_GPU_GPU_H
#define HXFR_GPU_GPU_H

#include <stdbool.h>
#include <stdint.h>

#define HXFR_GPU_MAX_SCANOUTS  16
#define HXFR_GPU_CURSOR_SIZE   64
#define HXFR_GPU_MAX_LISTENERS 4

struct hxfr_gpu;

struct hxfr_gpu_rect {
    uint32_t x, y, width, height;
};

/* One contiguous piece of a resource's backing in our mapping of guest
 * RAM. Pieces come in resource byte order, without gaps: piece i holds the
 * resource bytes [offset, offset + len). Adjacent guest pages that are also
 * adjacent in our mapping are merged into one piece. */
struct hxfr_gpu_piece {
    const uint8_t *host;
    uint64_t offset;
    uint64_t len;
};

struct hxfr_gpu_resource_info {
    uint32_t id;
    uint32_t width, height;
    uint32_t virtio_format; /* VIRTIO_GPU_FORMAT_* */
    uint32_t drm_format;    /* DRM fourcc of the same memory layout (DRM_FORMAT_XRGB8888 for
                               B8G8R8X8, ...); the hxfr_format values where one exists */
    uint32_t stride;        /* bytes per row: width * 4 */
    uint64_t size;          /* stride * height */
    /* The device's own copy: what TRANSFER_TO_HOST_2D last copied in
     * (zeroes before the first transfer). size bytes. */
    const uint8_t *host_copy;
    /* The guest's backing as it is now (the in-place view): NULL and 0
     * while none is attached. backing_size >= size is guaranteed. */
    const struct hxfr_gpu_piece *pieces;
    uint32_t n_pieces;
    uint64_t backing_size;
    uint32_t scanouts; /* bit i set: scanout i shows this resource */
};

/* Fills *out for resource id. Returns 0 or -ENOENT. */
int hxfr_gpu_resource_get(const struct hxfr_gpu *gpu, uint32_t id,
                          struct hxfr_gpu_resource_info *out);

/* Our address of byte offset of the resource in its backing, and how many
 * bytes are contiguous from there (*len). NULL past the backing or when
 * none is attached. Zero-copy readers use this row by row. */
const uint8_t *hxfr_gpu_backing_at(const struct hxfr_gpu_resource_info *info, uint64_t offset,
                                   uint64_t *len);

/* Copies rect r of resource id from the guest's backing (in place, not the
 * host copy) into dst, rows of r->width * 4 bytes, dst_stride apart.
 * Returns 0, -ENOENT (no such resource), -ENODATA (no backing) or -EINVAL
 * (r is empty or not inside the resource, dst_stride too small). */
int hxfr_gpu_resource_read(const struct hxfr_gpu *gpu, uint32_t id, const struct hxfr_gpu_rect *r,
                           uint8_t *dst, uint32_t dst_stride);

struct hxfr_gpu_scanout_info {
    bool connected;            /* the guest sees a connected connector Virtual-<id+1> */
    uint32_t width, height;    /* the mode it is offered (display info, EDID preferred) */
    uint32_t resource_id;      /* what the guest shows there; 0 for nothing */
    struct hxfr_gpu_rect rect; /* the part of that resource shown */
};

/* The number of scanouts this device has (--max-outputs). */
uint32_t hxfr_gpu_scanout_count(const struct hxfr_gpu *gpu);
/* Fills *out for scanout id. Returns 0 or -EINVAL (id >= count). */
int hxfr_gpu_scanout_get(const struct hxfr_gpu *gpu, uint32_t id,
                         struct hxfr_gpu_scanout_info *out);

/* Hot-plugs, resizes or (width = height = 0) unplugs scanout id: the
 * connector's state and offered mode as display info and EDID report them.
 * The guest learns of it at the next display event, which the device
 * raises through the listeners' display_changed (hxfr-gpu's main rings
 * QEMU's display for it, see docs/gpu.md). Unplugging does not take the
 * guest's resource off the scanout: the guest does that. Returns 0,
 * -EINVAL (id >= count) or -ERANGE (a size of 0 on one side only, or above
 * HXFR_GPU_MAX_DIM). */
int hxfr_gpu_scanout_configure(struct hxfr_gpu *gpu, uint32_t id, uint32_t width, uint32_t height);

/* Largest connector size offered (EDID modes go up to 5120x2880). */
#define HXFR_GPU_MAX_DIM 8192

struct hxfr_gpu_cursor_info {
    bool visible;
    bool has_image;
    uint32_t x, y;         /* position on the scanout */
    uint32_t hot_x, hot_y; /* hot spot inside the image */
    /* 64 x 64 pixels, 32-bit ARGB in host order (bytes B, G, R, A). */
    const uint32_t *image;
    uint64_t image_serial; /* changes with every new image */
};

/* Fills *out with the cursor of scanout id. Returns 0 or -EINVAL. */
int hxfr_gpu_cursor_get(const struct hxfr_gpu *gpu, uint32_t id, struct hxfr_gpu_cursor_info *out);

/* A flush listener's answer: it keeps the flush (see flush below). */
#define HXFR_GPU_FLUSH_DONE 0
#define HXFR_GPU_FLUSH_HOLD 1

/* What happened in the device, as it happens. Every callback is optional
 * and runs on the loop thread, inside the command that caused it; it may
 * call the getters above but must not call hxfr_gpu_scanout_configure(),
 * hxfr_gpu_flush_done() or change listeners. data is the listener's own. */
struct hxfr_gpu_listener {
    void *data;
    /* RESOURCE_FLUSH of rect (resource coordinates, clipped to the
     * resource and to the part scanout_id shows) of resource_id: new
     * pixels on scanout_id. Once per scanout showing the resource, all
     * with the same token.
     *
     * Returns HXFR_GPU_FLUSH_DONE, or HXFR_GPU_FLUSH_HOLD to keep the
     * frame for a while (tear-free reading: the guest waits for the
     * flush's answer and fence before it draws into that buffer again).
     * Then the guest's RESOURCE_FLUSH is not answered, and nothing after
     * it on the control queue is processed (answers and fences stay in
     * order; the cursor queue goes on), until hxfr_gpu_flush_done(gpu,
     * token) has been called once for every HOLD returned. The guest
     * stalls while a flush is held: hold for as long as reading the frame
     * takes, never indefinitely. A ring stop (VM pause, migration) or a
     * device reset answers a held flush at once; the token is then stale. */
    int (*flush)(void *data, uint32_t scanout_id, uint32_t resource_id,
                 const struct hxfr_gpu_rect *rect, uint64_t token);
    /* scanout_id shows something else: another resource or rect
     * (SET_SCANOUT), nothing, or its connector changed. */
    void (*scanout)(void *data, uint32_t scanout_id);
    /* The cursor of scanout_id moved, was hidden, or (image_changed) got
     * a new image. */
    void (*cursor)(void *data, uint32_t scanout_id, bool image_changed);
    /* The host changed connectors: the guest should re-read display info. */
    void (*display_changed)(void *data);
    /* resource_id is about to go (RESOURCE_UNREF): drop what refers to it. */
    void (*resource_destroy)(void *data, uint32_t resource_id);
    /* The device was reset (guest reboot, driver reload): every resource,
     * binding and cursor is gone; connectors keep their configuration;
     * held flushes are answered (their tokens are stale). */
    void (*reset)(void *data);
};

/* Ends one hold of the flush with this token (loop thread, outside the
 * listener callbacks). The last one answers the guest's RESOURCE_FLUSH;
 * the control queue then resumes in the device's next work turn. Returns
 * 0, or -ENOENT: no hold of that token (already answered by a ring stop
 * or reset, or more calls than holds). */
int hxfr_gpu_flush_done(struct hxfr_gpu *gpu, uint64_t token);

/* Keeps guest RAM, as it is mapped now, mapped until the matching
 * hxfr_gpu_mem_release(), even across a new memory table: backing
 * pointers taken now stay readable (from any thread) until then. After a
 * new table they are no longer the guest's current layout, so a frame read
 * under an old hold is at worst stale, never a fault. Loop thread. Returns
 * the hold. */
uint64_t hxfr_gpu_mem_hold(struct hxfr_gpu *gpu);
/* Ends a hold (loop thread). Returns 0 or -ENOENT (no such hold). Holds
 * end with the device: the process's device goes when QEMU does. */
int hxfr_gpu_mem_release(struct hxfr_gpu *gpu, uint64_t hold);

/* Adds a listener (copied). Returns its handle >= 0, or -ENOSPC. */
int hxfr_gpu_add_listener(struct hxfr_gpu *gpu, const struct hxfr_gpu_listener *l);
/* Removes the listener with that handle. */
void hxfr_gpu_remove_listener(struct hxfr_gpu *gpu, int handle);

#endif
