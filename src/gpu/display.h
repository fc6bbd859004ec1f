/* QEMU's side of the picture: the vhost-user-gpu "GPU socket" (QEMU's
 * docs/interop/vhost-user-gpu.rst) that VHOST_USER_GPU_SET_SOCKET hands
 * over. hxfr-gpu tells QEMU each scanout's size (SCANOUT), sends the
 * pixels of what changed (UPDATE, x8r8g8b8) and the cursor (CURSOR_UPDATE,
 * CURSOR_POS, CURSOR_POS_HIDE), so that QEMU's own display, VNC and QMP
 * screendump show the guest.
 *
 * The socket never holds up the device: writes are non-blocking, and
 * while QEMU is slow the damage of each scanout is merged into one
 * rectangle (and the cursor into its latest state) that goes out, with the
 * pixels as they are then, once the socket drains.
 */
#ifndef HXFR_GPU_DISPLAY_H
#define HXFR_GPU_DISPLAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gpu.h"

/* GPU socket requests (vhost-user-gpu.rst). */
enum {
    HXFR_VUGPU_CURSOR_POS = 4,
    HXFR_VUGPU_CURSOR_POS_HIDE = 5,
    HXFR_VUGPU_CURSOR_UPDATE = 6,
    HXFR_VUGPU_SCANOUT = 7,
    HXFR_VUGPU_UPDATE = 8,
};

/* Largest pixel payload of one UPDATE; larger damage goes in bands. */
#define HXFR_DISPLAY_MAX_UPDATE (4u << 20)

struct hxfr_display_scanout {
    bool config_dirty;
    uint32_t sent_w, sent_h; /* the size QEMU was told; 0: disabled */
    bool damage;
    struct hxfr_gpu_rect dmg; /* scanout coordinates */
    bool cursor_dirty, cursor_image_dirty;
};

struct hxfr_display {
    int fd; /* -1: no socket */
    struct hxfr_gpu *gpu;
    int listener;
    uint8_t *buf;
    size_t cap, len, off; /* the message being written: buf[off .. len) left */
    struct hxfr_display_scanout s[HXFR_GPU_MAX_SCANOUTS];
    uint64_t messages, updates, bytes, coalesced;
};

/* Listens to gpu. Returns 0 or -errno. */
int hxfr__display_init(struct hxfr_display *d, struct hxfr_gpu *gpu);
/* Closes the socket, stops listening. */
void hxfr__display_finish(struct hxfr_display *d);
/* Takes over fd (closing the previous socket) and schedules the whole
 * current state (sizes, pixels, cursors) for it. fd -1 just closes. */
void hxfr__display_set_socket(struct hxfr_display *d, int fd);
/* Writes what it can without blocking. Returns 1 when data waits for the
 * socket to become writable, 0 when everything is out, -EPIPE when QEMU
 * closed the socket (it is closed here; the next SET_SOCKET brings one). */
int hxfr__display_flush(struct hxfr_display *d);
/* The socket became readable: drains it (QEMU sends nothing we asked
 * for). Returns 0, or -EPIPE at end of file (the socket is then closed). */
int hxfr__display_read(struct hxfr_display *d);

#endif
