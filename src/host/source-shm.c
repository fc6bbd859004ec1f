/* Frame source: a slot of a shared-memory ring (docs/protocol.md section
 * 12), and the rings themselves.
 *
 * A ring belongs to one (client, session_id). The region is mapped
 * read-only; the ring header is copied out of it once at attach and only
 * that validated copy is used, so a guest that rewrites the header later
 * changes nothing here. Every slot and geometry check runs against the
 * copy, and the encoder reads only [slot start, slot start + frame size),
 * which lies inside the mapping by construction. Pixels the guest changes
 * while the encoder reads them only change the picture.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hxfr/shm.h>

#include "frame.h"

/* Regions above this are refused: nothing a ring can describe needs more
 * (64 slots of 256 MiB), and it keeps address-space use bounded. */
#define MAX_REGION_BYTES (HXFR_SHM_MAX_SLOTS * HXFR_SHM_MAX_SLOT_SIZE + (1ull << 30))

struct hxfr__shm_ring {
    unsigned refs;      /* session + frames in flight */
    const uint8_t *map; /* whole region, PROT_READ */
    size_t map_len;
    struct hxfr_shm_layout layout;  /* from the validated header copy */
    bool owned[HXFR_SHM_MAX_SLOTS]; /* host owns the slot (submitted) */
    unsigned host_owned;
    uint32_t *live; /* the server's count of rings */
};

/* ---- Rings ------------------------------------------------------------ */

/* Maps fd read-only over its whole size. Returns 0 or -errno. */
static int map_fd(int fd, const uint8_t **map, size_t *len)
{
    struct stat st;
    if (fstat(fd, &st) < 0) {
        return -errno;
    }
    if (!S_ISREG(st.st_mode)) {
        return -EBADF;
    }
    /* The size comes from the kernel, never from the peer. */
    if (st.st_size < (off_t)HXFR_SHM_HEADER_SIZE) {
        return -ERANGE;
    }
    if ((uint64_t)st.st_size > MAX_REGION_BYTES) {
        return -EFBIG;
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        return -errno;
    }
    *map = p;
    *len = (size_t)st.st_size;
    return 0;
}

int hxfr__shm_ring_new(int fd, uint64_t offset, uint32_t *live, struct hxfr__shm_ring **out,
                       size_t *map_len)
{
    const uint8_t *map = NULL;
    size_t len = 0;

    *map_len = 0;
    int r = map_fd(fd, &map, &len);
    if (r < 0) {
        return r;
    }
    *map_len = len;
    /* Copy the header out of shared memory once, then validate the copy:
     * the guest may rewrite the original at any moment. */
    uint8_t raw[HXFR_SHM_HEADER_SIZE];
    struct hxfr_shm_header hdr;
    struct hxfr_shm_layout layout;
    if (offset > len - HXFR_SHM_HEADER_SIZE) {
        r = -ERANGE;
    } else {
        memcpy(raw, map + offset, sizeof(raw));
        hxfr_shm_header_decode(raw, &hdr);
        r = hxfr_shm_layout_validate(&hdr, offset, len, &layout);
    }
    struct hxfr__shm_ring *ring = r < 0 ? NULL : calloc(1, sizeof(*ring));
    if (!ring) {
        munmap((void *)map, len);
        return r < 0 ? r : -ENOMEM;
    }
    ring->refs = 1;
    ring->map = map;
    ring->map_len = len;
    ring->layout = layout;
    ring->live = live;
    (*live)++;
    *out = ring;
    return 0;
}

void hxfr__shm_ring_unref(struct hxfr__shm_ring *r)
{
    if (!r || --r->refs > 0) {
        return;
    }
    munmap((void *)r->map, r->map_len);
    if (*r->live > 0) {
        (*r->live)--;
    }
    free(r);
}

const struct hxfr_shm_layout *hxfr__shm_ring_layout(const struct hxfr__shm_ring *r)
{
    return &r->layout;
}

unsigned hxfr__shm_ring_busy(const struct hxfr__shm_ring *r)
{
    return r->host_owned;
}

int hxfr__shm_fd_sealed(int fd)
{
    /* A region that can shrink would fault (SIGBUS) under the mapping;
     * one that can grow could outrun the size checked at attach. */
    int seals = fcntl(fd, F_GET_SEALS);
    if (seals < 0 || (seals & (F_SEAL_SHRINK | F_SEAL_GROW)) != (F_SEAL_SHRINK | F_SEAL_GROW)) {
        return -EPERM;
    }
    return 0;
}

const char *hxfr__shm_error(int r)
{
    switch (r) {
    case -ERANGE:
        return "region smaller than the ring header or its slots";
    case -EBADMSG:
        return "bad ring magic";
    case -EPROTONOSUPPORT:
        return "unsupported ring version";
    case -EINVAL:
        return "invalid ring header";
    case -EFBIG:
        return "region too large";
    case -EBADF:
        return "not a regular file or memfd";
    default:
        return strerror(-r);
    }
}

/* ---- The source ------------------------------------------------------- */

static int32_t shm_acquire(struct hxfr__frame *f, const struct hxfr__source_args *a)
{
    struct hxfr__shm_ring *r = a->ring;
    const struct hxfr_geometry *g = a->geom;
    uint32_t slot = a->req->resource_id;
    uint64_t off;

    int e = hxfr_shm_slot_offset(&r->layout, slot, g, &off);
    if (e == -ERANGE) {
        snprintf(a->why, a->why_len, "slot %u out of range (the ring has %u slots)", slot,
                 r->layout.slot_count);
        return HXFR_STATUS_SHM;
    }
    if (e < 0) {
        snprintf(a->why, a->why_len, "a %llu-byte frame does not fit a %llu-byte slot",
                 (unsigned long long)g->size, (unsigned long long)r->layout.slot_size);
        return HXFR_STATUS_SHM;
    }
    if (r->owned[slot]) {
        snprintf(a->why, a->why_len, "slot %u submitted twice: the host still owns it", slot);
        return HXFR_STATUS_SHM;
    }
    /* Bounds: the validated layout lies inside the mapping, and the frame
     * inside its slot, so every plane read stays inside the mapping. */
    hxfr__image_from_geometry(&f->img, g, r->map + off);
    r->owned[slot] = true;
    r->host_owned++;
    r->refs++;
    f->ring = r;
    f->slot = slot;
    f->slot_released = false;
    /* A scanout keeps a copy of its latest picture, taken after the
     * encode: such a slot stays the host's until the frame completes. */
    f->early_release = a->slot_release && f->keep_op != HXFR__KEEP_SAVE;
    return HXFR_STATUS_OK;
}

static void slot_give_back(struct hxfr__frame *f)
{
    struct hxfr__shm_ring *r = f->ring;
    if (!f->slot_released && f->slot < HXFR_SHM_MAX_SLOTS && r->owned[f->slot]) {
        r->owned[f->slot] = false;
        r->host_owned--;
    }
    f->slot_released = true;
}

static bool shm_consumed(struct hxfr__frame *f)
{
    if (!f->ring || f->slot_released || !f->early_release) {
        return false;
    }
    slot_give_back(f);
    return true;
}

static void shm_release(struct hxfr__frame *f)
{
    if (!f->ring) {
        return;
    }
    slot_give_back(f);
    hxfr__shm_ring_unref(f->ring);
    f->ring = NULL;
}

const struct hxfr__source_ops hxfr__source_shm = {
    .version = HXFR__SOURCE_OPS_VERSION,
    .name = "shm",
    .pixels = HXFR__PIXELS_CPU,
    .acquire = shm_acquire,
    .consumed = shm_consumed,
    .release = shm_release,
};

/* ---- Configured regions ------------------------------------------------ */

int hxfr__shm_regions_copy(const struct hxfr_host_shm_region *src, unsigned n,
                           struct hxfr_host_shm_region **out)
{
    *out = NULL;
    if (n == 0) {
        return 0;
    }
    if (!src || n > 64) {
        return -EINVAL;
    }
    struct hxfr_host_shm_region *r = calloc(n, sizeof(*r));
    if (!r) {
        return -ENOMEM;
    }
    int ret = 0;
    for (unsigned i = 0; i < n && ret == 0; i++) {
        if (!src[i].name || !src[i].path || !src[i].name[0] || !src[i].path[0] ||
            strlen(src[i].name) >= HXFR_SHM_NAME_LEN) {
            ret = -EINVAL;
            break;
        }
        for (unsigned j = 0; j < i; j++) {
            if (strcmp(r[j].name, src[i].name) == 0) {
                ret = -EINVAL;
            }
        }
        r[i].name = strdup(src[i].name);
        r[i].path = strdup(src[i].path);
        if (!r[i].name || !r[i].path) {
            ret = -ENOMEM;
        }
    }
    if (ret < 0) {
        hxfr__shm_regions_free(r, n);
        return ret;
    }
    *out = r;
    return 0;
}

void hxfr__shm_regions_free(struct hxfr_host_shm_region *r, unsigned n)
{
    if (!r) {
        return;
    }
    for (unsigned i = 0; i < n; i++) {
        free((char *)r[i].name);
        free((char *)r[i].path);
    }
    free(r);
}
