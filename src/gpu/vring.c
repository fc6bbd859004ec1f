/* Split virtqueue walking (see vring.h). Layout, from the virtio spec:
 *   descriptor table: num x {le64 addr, le32 len, le16 flags, le16 next}
 *   avail ring: le16 flags, le16 idx, le16 ring[num], le16 used_event
 *   used ring:  le16 flags, le16 idx, {le32 id, le32 len}[num], le16 avail_event
 * The driver writes avail, the device writes used. Indices run freely
 * modulo 2^16; the entry of index i sits at i % num. */
#include "vring.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <hxfr/proto.h>

#define VRING_DESC_F_NEXT          1
#define VRING_DESC_F_WRITE         2
#define VRING_DESC_F_INDIRECT      4
#define VRING_AVAIL_F_NO_INTERRUPT 1

void hxfr__vring_init(struct hxfr_vring *vr)
{
    memset(vr, 0, sizeof(*vr));
    vr->kick_fd = vr->call_fd = vr->err_fd = -1;
}

static void close_fd(int *fd)
{
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

void hxfr__vring_finish(struct hxfr_vring *vr)
{
    uint64_t malformed = vr->malformed;
    close_fd(&vr->kick_fd);
    close_fd(&vr->call_fd);
    close_fd(&vr->err_fd);
    hxfr__vring_init(vr);
    vr->malformed = malformed;
}

int hxfr__vring_map(struct hxfr_vring *vr, const struct hxfr_mem *mem)
{
    vr->desc = vr->avail = vr->used = NULL;
    if (vr->num == 0 || !vr->have_addr) {
        return -EINVAL;
    }
    uint64_t n = vr->num;
    uint8_t *desc = hxfr__mem_uva(mem, vr->desc_uva, 16 * n);
    uint8_t *avail = hxfr__mem_uva(mem, vr->avail_uva, 6 + 2 * n);
    uint8_t *used = hxfr__mem_uva(mem, vr->used_uva, 6 + 8 * n);
    /* The spec's alignment (16, 2, 4) also makes the 16-bit index
     * accesses below naturally aligned, so they are single loads/stores. */
    if (desc == NULL || avail == NULL || used == NULL || ((uintptr_t)desc & 15) ||
        ((uintptr_t)avail & 1) || ((uintptr_t)used & 3)) {
        return -EINVAL;
    }
    vr->desc = desc;
    vr->avail = avail;
    vr->used = used;
    return 0;
}

bool hxfr__vring_ready(const struct hxfr_vring *vr)
{
    return vr->desc != NULL && !vr->broken;
}

static uint16_t load16(const uint8_t *p)
{
    /* The guest writes these concurrently: one aligned atomic load, then
     * the value is ours. The byte order is little-endian (x86 only, as
     * the rest of the device). */
    return __atomic_load_n((const uint16_t *)(const void *)p, __ATOMIC_ACQUIRE);
}

static void store16(uint8_t *p, uint16_t v)
{
    __atomic_store_n((uint16_t *)(void *)p, v, __ATOMIC_RELEASE);
}

void hxfr__vring_start(struct hxfr_vring *vr)
{
    if (vr->used != NULL) {
        vr->used_idx = load16(vr->used + 2);
    }
    vr->signalled_valid = false;
    vr->broken = false;
}

/* One descriptor, copied out of guest memory before anything looks at it. */
struct desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
};

static void read_desc(const uint8_t *table, uint32_t i, struct desc *d)
{
    uint8_t raw[16];
    memcpy(raw, table + 16 * (uint64_t)i, sizeof(raw));
    /* Keeps the compiler from reading the guest's copy again later. */
    __asm__ volatile("" ::: "memory");
    d->addr = hxfr_get_u64(raw);
    d->len = hxfr_get_u32(raw + 8);
    d->flags = hxfr_get_u16(raw + 12);
    d->next = hxfr_get_u16(raw + 14);
}

/* Adds one buffer, split where it crosses from one memory region into the
 * next (a guest-contiguous buffer may). */
static int add_buffer(struct hxfr_vring_elem *e, const struct hxfr_mem *mem, const struct desc *d)
{
    bool writable = d->flags & VRING_DESC_F_WRITE;
    if (!writable && e->n_in > 0) {
        return -EBADMSG; /* readable buffers must all come first */
    }
    uint64_t addr = d->addr;
    uint64_t left = d->len;
    if (addr + left < addr) {
        return -EBADMSG;
    }
    while (left > 0) {
        uint8_t *p;
        uint64_t n = hxfr__mem_gpa_span(mem, addr, left, &p);
        if (n == 0) {
            return -EBADMSG;
        }
        if (e->n_out + e->n_in >= HXFR_VRING_MAX_SEGS) {
            return -EBADMSG;
        }
        e->seg[e->n_out + e->n_in] = (struct hxfr_seg){p, (uint32_t)n};
        if (writable) {
            e->n_in++;
            e->in_bytes += n;
        } else {
            e->n_out++;
            e->out_bytes += n;
        }
        addr += n;
        left -= n;
    }
    return 0;
}

static int walk(struct hxfr_vring *vr, const struct hxfr_mem *mem, struct hxfr_vring_elem *e)
{
    const uint8_t *table = vr->desc;
    uint32_t table_num = vr->num;
    uint32_t i = e->head;
    /* A direct chain visits each descriptor at most once, so more steps
     * than entries means a loop. */
    uint32_t budget = vr->num;
    bool in_indirect = false;

    for (;;) {
        struct desc d;
        if (i >= table_num || budget == 0) {
            return -EBADMSG;
        }
        budget--;
        read_desc(table, i, &d);
        if (d.flags & VRING_DESC_F_INDIRECT) {
            /* One level only, never combined with NEXT, a whole number of
             * descriptors, and not more than a chain may hold. */
            if (!vr->indirect || in_indirect || (d.flags & VRING_DESC_F_NEXT) || d.len == 0 ||
                d.len % 16 != 0 || d.len / 16 > HXFR_VRING_MAX_SEGS) {
                return -EBADMSG;
            }
            const uint8_t *t = hxfr__mem_gpa(mem, d.addr, d.len);
            if (t == NULL || ((uintptr_t)t & 1)) {
                return -EBADMSG;
            }
            table = t;
            table_num = d.len / 16;
            budget = table_num;
            in_indirect = true;
            i = 0;
            continue;
        }
        int err = add_buffer(e, mem, &d);
        if (err < 0) {
            return err;
        }
        if (!(d.flags & VRING_DESC_F_NEXT)) {
            return 0;
        }
        i = d.next;
    }
}

int hxfr__vring_pop(struct hxfr_vring *vr, const struct hxfr_mem *mem, struct hxfr_vring_elem *e)
{
    if (!hxfr__vring_ready(vr)) {
        return 0;
    }
    uint16_t avail_idx = load16(vr->avail + 2);
    uint16_t pending = (uint16_t)(avail_idx - vr->last_avail);
    if (pending == 0) {
        return 0;
    }
    if (pending > vr->num) {
        /* The driver claims more entries than the ring has: nothing in it
         * can be trusted any more. */
        vr->broken = true;
        return -EPIPE;
    }
    /* load16 was an acquire: the ring entry and the descriptors the driver
     * wrote before publishing avail_idx are visible now. */
    e->head = load16(vr->avail + 4 + 2 * (vr->last_avail % vr->num));
    vr->last_avail++;
    if (vr->event_idx) {
        /* avail_event: kick us when the entry after this one arrives. */
        store16(vr->used + 4 + 8 * vr->num, vr->last_avail);
    }
    e->n_out = e->n_in = 0;
    e->out_bytes = e->in_bytes = 0;
    int err = walk(vr, mem, e);
    if (err < 0) {
        vr->malformed++;
        e->n_out = e->n_in = 0;
        e->out_bytes = e->in_bytes = 0;
        return err;
    }
    return 1;
}

void hxfr__vring_push(struct hxfr_vring *vr, uint16_t head, uint32_t len)
{
    if (vr->used == NULL) {
        return;
    }
    uint8_t *entry = vr->used + 4 + 8 * (uint64_t)(vr->used_idx % vr->num);
    hxfr_put_u32(entry, head);
    hxfr_put_u32(entry + 4, len);
    vr->used_idx++;
    /* Release: the entry (and the reply bytes) before the new index. */
    store16(vr->used + 2, vr->used_idx);
}

void hxfr__vring_notify(struct hxfr_vring *vr)
{
    if (vr->used == NULL || vr->call_fd < 0) {
        return;
    }
    /* The used index must be visible before we read what the driver
     * asked for, or both sides could miss each other's update. */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    bool signal;
    if (vr->event_idx) {
        uint16_t event = load16(vr->avail + 4 + 2 * vr->num);
        uint16_t old = vr->signalled;
        uint16_t now = vr->used_idx;
        /* vring_need_event() of the spec: signal if event lies in
         * (old, now]. */
        signal = !vr->signalled_valid || (uint16_t)(now - event - 1) < (uint16_t)(now - old);
        vr->signalled = now;
        vr->signalled_valid = true;
    } else {
        signal = !(load16(vr->avail) & VRING_AVAIL_F_NO_INTERRUPT);
    }
    if (signal) {
        uint64_t one = 1;
        /* An eventfd write only fails when the counter would overflow,
         * which means the front-end is not reading it: nothing to do. */
        if (write(vr->call_fd, &one, sizeof(one)) < 0) {
            (void)0;
        }
    }
}

bool hxfr__vring_rearm(struct hxfr_vring *vr)
{
    if (!hxfr__vring_ready(vr)) {
        return false;
    }
    if (vr->event_idx) {
        store16(vr->used + 4 + 8 * vr->num, vr->last_avail);
    }
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    return load16(vr->avail + 2) != vr->last_avail;
}

void hxfr__vring_error(struct hxfr_vring *vr)
{
    if (vr->err_fd >= 0) {
        uint64_t one = 1;
        if (write(vr->err_fd, &one, sizeof(one)) < 0) {
            (void)0;
        }
    }
}

uint64_t hxfr__elem_read(const struct hxfr_vring_elem *e, uint64_t off, void *dst, uint64_t len)
{
    uint8_t *out = dst;
    uint64_t done = 0;
    for (unsigned i = 0; i < e->n_out && done < len; i++) {
        const struct hxfr_seg *s = &e->seg[i];
        if (off >= s->len) {
            off -= s->len;
            continue;
        }
        uint64_t n = s->len - off;
        if (n > len - done) {
            n = len - done;
        }
        memcpy(out + done, s->p + off, n);
        done += n;
        off = 0;
    }
    __asm__ volatile("" ::: "memory");
    return done;
}

uint64_t hxfr__elem_write(const struct hxfr_vring_elem *e, const void *src, uint64_t len)
{
    const uint8_t *in = src;
    uint64_t done = 0;
    for (unsigned i = e->n_out; i < e->n_out + e->n_in && done < len; i++) {
        const struct hxfr_seg *s = &e->seg[i];
        uint64_t n = s->len;
        if (n > len - done) {
            n = len - done;
        }
        memcpy(s->p, in + done, n);
        done += n;
    }
    return done;
}
