/* Split virtqueues (virtio 1.x, section 2.7) walked from the device side:
 * descriptor chains with indirect tables, the used ring, event-index
 * notification suppression. The guest writes every byte of the rings and
 * may change them while we read, so each descriptor is copied once and
 * checked on the copy; a chain that is malformed in any way (loops, more
 * descriptors than allowed, a buffer outside guest RAM, a length that
 * wraps, a readable buffer after a writable one, nested or misused
 * indirect tables) is reported, never followed.
 */
#ifndef HXFR_GPU_VRING_H
#define HXFR_GPU_VRING_H

#include <stdbool.h>
#include <stdint.h>

#include "mem.h"

/* Most buffers one chain may name (direct and indirect together; a chain
 * also never has more direct descriptors than the ring has entries). */
#define HXFR_VRING_MAX_SEGS 1024
/* Largest ring we accept (split rings: a power of two up to 32768). */
#define HXFR_VRING_MAX_NUM 32768u

/* One buffer of a chain, in our mapping of guest RAM. */
struct hxfr_seg {
    uint8_t *p;
    uint32_t len;
};

/* A popped chain: seg[0 .. n_out) are device-readable (what the driver
 * sent), seg[n_out .. n_out + n_in) device-writable (room for the reply). */
struct hxfr_vring_elem {
    uint16_t head;
    unsigned n_out;
    unsigned n_in;
    uint64_t out_bytes;
    uint64_t in_bytes;
    struct hxfr_seg seg[HXFR_VRING_MAX_SEGS];
};

struct hxfr_vring {
    /* As the front-end set them. num 0: not configured. */
    uint32_t num;
    uint64_t desc_uva, avail_uva, used_uva;
    bool have_addr;
    /* Resolved against the current memory table by hxfr__vring_map(). */
    uint8_t *desc, *avail, *used;
    uint16_t last_avail; /* next avail ring entry to read */
    uint16_t used_idx;   /* our copy of used->idx */
    uint16_t signalled;  /* used_idx at the last call (event idx) */
    bool signalled_valid;
    bool event_idx, indirect; /* negotiated features */
    bool broken;              /* the avail index made no sense: stopped */
    int kick_fd, call_fd, err_fd;
    bool started, enabled;
    uint64_t malformed; /* chains returned unread */
};

/* Unconfigured ring with no fds. */
void hxfr__vring_init(struct hxfr_vring *vr);
/* Closes the ring's fds and forgets everything but the counters. */
void hxfr__vring_finish(struct hxfr_vring *vr);

/* Resolves the ring addresses against mem (after SET_VRING_ADDR or a new
 * memory table). Returns 0, or -EINVAL when a ring is not inside guest RAM
 * or misaligned (the ring then stays unusable until set again). */
int hxfr__vring_map(struct hxfr_vring *vr, const struct hxfr_mem *mem);
/* True once num and the addresses are valid and mapped. */
bool hxfr__vring_ready(const struct hxfr_vring *vr);
/* Starts processing at avail index base: the used index is read from the
 * ring itself (where the driver or the previous back-end left it). */
void hxfr__vring_start(struct hxfr_vring *vr);

/* Takes the next available chain into *e. Returns 1 with *e filled, 0 when
 * the ring is empty, -EBADMSG for a malformed chain (e->head is set: give
 * it back with hxfr__vring_push(vr, e->head, 0)), or -EPIPE when the ring
 * itself is corrupt (the ring is marked broken and yields nothing more). */
int hxfr__vring_pop(struct hxfr_vring *vr, const struct hxfr_mem *mem, struct hxfr_vring_elem *e);
/* Returns chain head to the driver with len bytes written. */
void hxfr__vring_push(struct hxfr_vring *vr, uint16_t head, uint32_t len);
/* Signals the call eventfd if the driver wants an interrupt for what was
 * pushed since the last signal. */
void hxfr__vring_notify(struct hxfr_vring *vr);
/* Asks the driver to kick for the next entry (event idx: avail_event =
 * last_avail) and returns true if entries arrived in the meantime. */
bool hxfr__vring_rearm(struct hxfr_vring *vr);
/* Signals the error eventfd (a malformed chain), if the front-end gave one. */
void hxfr__vring_error(struct hxfr_vring *vr);

/* Gathers len bytes starting at byte off of the readable part of e into
 * dst. Returns the number of bytes copied (less than len when the
 * readable part is shorter). */
uint64_t hxfr__elem_read(const struct hxfr_vring_elem *e, uint64_t off, void *dst, uint64_t len);
/* Scatters len bytes into the writable part of e. Returns bytes written. */
uint64_t hxfr__elem_write(const struct hxfr_vring_elem *e, const void *src, uint64_t len);

#endif
