/* Shared-memory frames (client-private.h): a ring in a sealed memfd or
 * in a host-configured region, its header written here and attached with
 * SHM_ATTACH; slots handed out, submitted and given back. */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "client-private.h"

/* Writes a fresh ring header at offset in region, adopts region as the
 * client's ring and attaches it. On failure the region is freed and the
 * client has no ring. */
static int adopt_ring(struct hxfr_client *c, struct hxfr_shm_region *region, uint64_t offset,
                      uint32_t slot_count, uint64_t slot_bytes, bool memfd, const char *name)
{
    struct hxfr_shm_header h;
    struct hxfr_shm_layout layout;
    int r = hxfr_shm_header_init(&h, slot_count, slot_bytes);
    if (r == 0 && offset % HXFR_SHM_ALIGN != 0) {
        r = -EINVAL;
    }
    if (r == 0 && (offset > region->size || hxfr_shm_ring_bytes(&h) > region->size - offset)) {
        r = -ENOSPC;
    }
    if (r < 0) {
        hxfr_shm_region_finish(region);
        return r;
    }
    hxfr_shm_header_encode(region->base + offset, &h);
    r = hxfr_shm_layout_validate(&h, offset, region->size, &layout);
    if (r < 0) {
        hxfr_shm_region_finish(region);
        return r;
    }
    hxfr_shm_region_finish(&c->region);
    c->region = *region;
    c->layout = layout;
    c->shm = true;
    c->shm_memfd = memfd;
    snprintf(c->shm_name, sizeof(c->shm_name), "%s", name ? name : "");
    memset(c->slots, SLOT_FREE, sizeof(c->slots));
    r = hxfr__guest_send_attach(c);
    if (r < 0) {
        c->shm = false;
        hxfr_shm_region_finish(&c->region);
    }
    return r;
}

/* Common start of both attach calls: connected, nothing in flight. */
static int attach_prepare(struct hxfr_client *c)
{
    if (c->in_callback) {
        return -EDEADLK;
    }
    return hxfr__guest_settle(c);
}

int hxfr_client_shm_create(struct hxfr_client *c, uint32_t slot_count, uint64_t slot_bytes)
{
    struct hxfr_shm_header h;
    struct hxfr_shm_region region;

    int r = hxfr_shm_header_init(&h, slot_count, slot_bytes);
    if (r < 0) {
        return r;
    }
    r = attach_prepare(c);
    if (r < 0) {
        return r;
    }
    r = hxfr_shm_region_memfd(&region, "hxfr-ring", (size_t)hxfr_shm_ring_bytes(&h));
    if (r < 0) {
        return r;
    }
    return adopt_ring(c, &region, 0, slot_count, slot_bytes, true, NULL);
}

int hxfr_client_shm_attach_region(struct hxfr_client *c, const char *name, const char *path,
                                  uint64_t offset, uint32_t slot_count, uint64_t slot_bytes)
{
    struct hxfr_shm_header h;
    struct hxfr_shm_region region;
    char found[320];

    if (!name || !name[0] || strlen(name) >= HXFR_SHM_NAME_LEN) {
        return -EINVAL;
    }
    int r = hxfr_shm_header_init(&h, slot_count, slot_bytes);
    if (r < 0) {
        return r;
    }
    if (!path) {
        r = hxfr_shm_find_ivshmem(found, sizeof(found));
        if (r < 0) {
            return r;
        }
        path = found;
    }
    r = attach_prepare(c);
    if (r < 0) {
        return r;
    }
    r = hxfr_shm_region_open(&region, path);
    if (r < 0) {
        return r;
    }
    return adopt_ring(c, &region, offset, slot_count, slot_bytes, false, name);
}

int hxfr_client_shm_acquire(struct hxfr_client *c, int timeout_ms, struct hxfr_client_slot *out)
{
    if (c->in_callback) {
        return -EDEADLK;
    }
    if (!c->shm) {
        return -ENXIO;
    }
    uint64_t deadline = deadline_after(timeout_ms);
    bool last = false;
    for (;;) {
        for (uint32_t i = 0; i < c->layout.slot_count; i++) {
            if (c->slots[i] == SLOT_FREE) {
                c->slots[i] = SLOT_ACQUIRED;
                out->index = i;
                out->data = c->region.base + c->layout.ring_offset + c->layout.data_offset +
                            (uint64_t)i * c->layout.slot_size;
                out->size = (size_t)c->layout.slot_size;
                return 0;
            }
        }
        /* With nothing in flight every slot is the caller's: none can come
         * back by waiting. */
        if (last || c->count == 0 || c->fd < 0) {
            return -EAGAIN;
        }
        /* A lost connection fails the frames in flight, which frees their
         * slots: the next round finds them. */
        if (timeout_ms == 0) {
            hxfr__guest_pump(c);
            last = true;
        } else if (hxfr__guest_wait_input(c, deadline) == 0 && poll_timeout(deadline) == 0) {
            last = true;
        }
    }
}

int hxfr_client_shm_cancel(struct hxfr_client *c, uint32_t slot)
{
    if (!c->shm || slot >= c->layout.slot_count || c->slots[slot] != SLOT_ACQUIRED) {
        return -EINVAL;
    }
    c->slots[slot] = SLOT_FREE;
    return 0;
}

int hxfr_client_shm_submit(struct hxfr_client *c, uint32_t slot, const struct hxfr_client_frame *f,
                           int timeout_ms)
{
    if (c->in_callback) {
        return -EDEADLK;
    }
    if (!c->shm) {
        return -ENXIO;
    }
    if (slot >= c->layout.slot_count || c->slots[slot] != SLOT_ACQUIRED) {
        return -EINVAL;
    }
    uint32_t stride;
    struct hxfr_geometry g;
    int r = hxfr__guest_frame_geometry(c, f, &stride, &g);
    if (r < 0) {
        return r;
    }
    if (g.size > c->layout.slot_size) {
        return -EMSGSIZE;
    }
    r = hxfr__guest_prepare_submit(c, timeout_ms);
    if (r < 0) {
        return r;
    }
    struct hxfr_msg m;
    bool forced = hxfr__guest_frame_request_init(c, &m, f, HXFR_FLAG_SHM, slot, stride);
    uint64_t start = now_ns();
    /* The pixels were written before this call. A full fence makes them
     * visible before the request leaves even when the slot is mapped
     * write-combining (an ivshmem BAR via resource2_wc), where a plain
     * store can still sit in a buffer when the socket write happens. */
    atomic_thread_fence(memory_order_seq_cst);
    r = hxfr__guest_send_msg(c, &m);
    if (r < 0) {
        return r;
    }
    hxfr__guest_pending_push(c, f, start, forced, (int)slot);
    c->slots[slot] = SLOT_SUBMITTED;
    return 0;
}

bool hxfr_client_shm_attached(const struct hxfr_client *c)
{
    return c->shm;
}
