/* Shared-memory frames on the host: attaching rings (a sealed memfd passed
 * over a UNIX socket, or a region the host was configured with), received
 * descriptors, and slot ownership.
 *
 * A ring belongs to one (client, session_id). The region is mapped
 * read-only; the ring header is copied out of it once at attach and only
 * that validated copy is used, so a guest that rewrites the header later
 * changes nothing here. Every slot and geometry check runs against the
 * copy, and the encoder reads only [slot start, slot start + frame size),
 * which lies inside the mapping by construction. Pixels the guest changes
 * while the encoder reads them only change the picture.
 *
 * Descriptors: on UNIX sockets every read is a recvmsg. The fds of one
 * read are queued with the stream range the read returned; the SHM_ATTACH
 * (flag SHM_FD) whose header starts in that range takes them. Whatever no
 * message can claim any more is closed and answered ERROR SHM, so no fd
 * stays open that no ring uses.
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

#include "host-private.h"
#include "scanout.h"

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
};

/* ---- Received descriptors --------------------------------------------- */

static void batch_close(struct hxfr__fd_batch *b)
{
    for (int i = 0; i < b->nfds; i++) {
        close(b->fds[i]);
    }
    b->nfds = 0;
}

static void fds_count(struct hxfr__client *c)
{
    uint32_t held = 0;
    for (struct hxfr__client *x = c->host->clients; x; x = x->next) {
        for (unsigned i = 0; i < x->nfdq; i++) {
            held += (uint32_t)x->fdq[i].nfds;
        }
    }
    c->host->stats.fds_held = held;
}

static void batch_remove(struct hxfr__client *c, unsigned i)
{
    memmove(&c->fdq[i], &c->fdq[i + 1], (c->nfdq - i - 1) * sizeof(c->fdq[0]));
    c->nfdq--;
}

ssize_t hxfr__client_recv(struct hxfr__client *c, void *buf, size_t len, bool keep_fds)
{
    int fds[HXFR_RECV_FDS_CAP];
    int nfds = 0;
    bool truncated = false;
    ssize_t n;

    if (!c->is_unix) {
        n = read(c->fd, buf, len);
        if (n < 0) {
            return -errno;
        }
        c->rx_bytes += (uint64_t)n;
        return n;
    }
    /* Keep every fd the control buffer holds, so a surplus is seen (and
     * refused) here instead of being closed silently. */
    n = hxfr__recv_with_fds(c->fd, buf, len, fds, keep_fds ? HXFR_RECV_FDS_CAP : 0,
                            keep_fds ? &nfds : NULL, keep_fds ? &truncated : NULL);
    if (n < 0) {
        for (int i = 0; i < nfds; i++) {
            close(fds[i]);
        }
        return n;
    }
    uint64_t start = c->rx_bytes;
    c->rx_bytes += (uint64_t)n;
    if (nfds == 0 && !truncated) {
        return n;
    }
    if (n == 0 || c->nfdq >= HXFR_HOST_FD_BATCHES) {
        /* Each read brings at most one batch and the loop parses a read
         * before the next one, so a full queue means descriptors keep
         * coming without messages to claim them. */
        for (int i = 0; i < nfds; i++) {
            close(fds[i]);
        }
        if (n > 0 && !c->cut) {
            snprintf(c->cut_reason, sizeof(c->cut_reason),
                     "file descriptors sent faster than messages claim them");
            c->cut = true;
        }
        return n;
    }
    struct hxfr__fd_batch *b = &c->fdq[c->nfdq++];
    b->start = start;
    b->end = c->rx_bytes;
    b->nfds = nfds;
    b->truncated = truncated;
    memcpy(b->fds, fds, (size_t)nfds * sizeof(int));
    fds_count(c);
    return n;
}

void hxfr__client_fds_sweep(struct hxfr__client *c, uint64_t next_header)
{
    unsigned i = 0;
    bool changed = false;

    while (i < c->nfdq) {
        struct hxfr__fd_batch *b = &c->fdq[i];
        if (next_header < b->end) {
            i++;
            continue;
        }
        /* No message header starts in this batch's range any more. */
        int n = b->nfds;
        bool truncated = b->truncated;
        batch_close(b);
        batch_remove(c, i);
        changed = true;
        if (c->cut || c->closing) {
            continue;
        }
        if (truncated) {
            hxfr__client_send_error(c, 0, HXFR_STATUS_SHM,
                                    "file descriptors truncated (MSG_CTRUNC) outside an "
                                    "SHM_ATTACH");
        } else {
            hxfr__client_send_error(c, 0, HXFR_STATUS_SHM,
                                    "%d file descriptor(s) sent without an SHM_ATTACH: closed", n);
        }
    }
    if (changed) {
        fds_count(c);
    }
}

void hxfr__client_fds_close(struct hxfr__client *c)
{
    for (unsigned i = 0; i < c->nfdq; i++) {
        batch_close(&c->fdq[i]);
    }
    c->nfdq = 0;
    fds_count(c);
}

/* Takes the batch whose range holds the current message's header. */
static bool batch_take(struct hxfr__client *c, struct hxfr__fd_batch *out)
{
    for (unsigned i = 0; i < c->nfdq; i++) {
        if (c->fdq[i].start <= c->msg_start && c->msg_start < c->fdq[i].end) {
            *out = c->fdq[i];
            batch_remove(c, i);
            fds_count(c);
            return true;
        }
    }
    return false;
}

/* ---- Rings ------------------------------------------------------------ */

void hxfr__shm_ring_unref(struct hxfr_host *h, struct hxfr__shm_ring *r)
{
    if (!r || --r->refs > 0) {
        return;
    }
    munmap((void *)r->map, r->map_len);
    if (h->stats.shm_rings > 0) {
        h->stats.shm_rings--;
    }
    free(r);
}

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

static const char *map_error(int r)
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

static void send_attach_resp(struct hxfr__client *c, uint16_t sid, const struct hxfr_shm_layout *l)
{
    struct hxfr_msg r;
    hxfr__msg_start(&r, HXFR_MSG_SHM_ATTACH_RESP, sid);
    r.u.shm_attach_resp.slot_count = l->slot_count;
    r.u.shm_attach_resp.slot_size = l->slot_size;
    hxfr__client_send_msg(c, &r);
}

void hxfr__shm_handle_attach(struct hxfr__client *c, const struct hxfr_msg *m)
{
    struct hxfr_host *h = c->host;
    const struct hxfr_shm_attach *a = &m->u.shm_attach;
    uint16_t sid = m->hdr.session_id;
    const uint8_t *map = NULL;
    size_t map_len = 0;
    int fd = -1;
    int r;
    char what[96];

    if (m->hdr.flags & HXFR_FLAG_SHM_FD) {
        struct hxfr__fd_batch b;
        if (!c->is_unix) {
            hxfr__client_send_error(c, sid, HXFR_STATUS_SHM,
                                    "SHM_ATTACH with SHM_FD needs a UNIX socket");
            return;
        }
        if (!batch_take(c, &b)) {
            hxfr__client_send_error(c, sid, HXFR_STATUS_SHM,
                                    "SHM_ATTACH with SHM_FD arrived without a descriptor");
            return;
        }
        if (b.truncated) {
            hxfr__client_send_error(c, sid, HXFR_STATUS_SHM,
                                    "SHM_ATTACH descriptors truncated (MSG_CTRUNC)");
            return;
        }
        if (b.nfds != 1) {
            batch_close(&b);
            hxfr__client_send_error(c, sid, HXFR_STATUS_SHM,
                                    "SHM_ATTACH carries %d descriptors (exactly 1)", b.nfds);
            return;
        }
        if (a->name[0] != '\0') {
            batch_close(&b);
            hxfr__client_send_error(c, sid, HXFR_STATUS_SHM,
                                    "SHM_ATTACH with SHM_FD must not name a region");
            return;
        }
        fd = b.fds[0];
        /* A region that can shrink would fault (SIGBUS) under the mapping;
         * one that can grow could outrun the size checked here. */
        int seals = fcntl(fd, F_GET_SEALS);
        if (seals < 0 || (seals & (F_SEAL_SHRINK | F_SEAL_GROW)) != (F_SEAL_SHRINK | F_SEAL_GROW)) {
            close(fd);
            hxfr__client_send_error(c, sid, HXFR_STATUS_SHM,
                                    "memfd is not sealed against shrinking and growing "
                                    "(F_SEAL_SHRINK | F_SEAL_GROW required)");
            return;
        }
        r = map_fd(fd, &map, &map_len);
        close(fd);
        snprintf(what, sizeof(what), "memfd");
    } else {
        const struct hxfr_host_shm_region *reg = NULL;
        for (unsigned i = 0; i < h->nregions; i++) {
            if (strcmp(h->regions[i].name, a->name) == 0) {
                reg = &h->regions[i];
            }
        }
        if (!reg) {
            hxfr__client_send_error(c, sid, HXFR_STATUS_SHM, "no shared-memory region '%s'",
                                    a->name);
            return;
        }
        fd = open(reg->path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            r = -errno;
        } else {
            r = map_fd(fd, &map, &map_len);
            close(fd);
        }
        snprintf(what, sizeof(what), "region '%s'", reg->name);
    }
    if (r < 0) {
        hxfr__client_send_error(c, sid, HXFR_STATUS_SHM, "%s: cannot map: %s", what, map_error(r));
        return;
    }

    /* Copy the header out of shared memory once, then validate the copy:
     * the guest may rewrite the original at any moment. */
    uint8_t raw[HXFR_SHM_HEADER_SIZE];
    struct hxfr_shm_header hdr;
    struct hxfr_shm_layout layout;
    if (a->offset > map_len - HXFR_SHM_HEADER_SIZE) {
        r = -ERANGE;
    } else {
        memcpy(raw, map + a->offset, sizeof(raw));
        hxfr_shm_header_decode(raw, &hdr);
        r = hxfr_shm_layout_validate(&hdr, a->offset, map_len, &layout);
    }
    if (r < 0) {
        munmap((void *)map, map_len);
        hxfr__client_send_error(c, sid, HXFR_STATUS_SHM, "%s (%zu bytes), ring at offset %llu: %s",
                                what, map_len, (unsigned long long)a->offset, map_error(r));
        return;
    }

    struct hxfr__session *s = hxfr__session_get(c, sid, true);
    if (!s) {
        munmap((void *)map, map_len);
        hxfr__client_send_error(c, sid, errno == EBUSY ? HXFR_STATUS_BUSY : HXFR_STATUS_INTERNAL,
                                "cannot open session %u: %s", (unsigned)sid, strerror(errno));
        return;
    }
    if (s->shm && s->shm->host_owned > 0) {
        munmap((void *)map, map_len);
        hxfr__client_send_error(c, sid, HXFR_STATUS_SHM,
                                "session %u: the attached ring still has %u slot(s) in flight",
                                (unsigned)sid, s->shm->host_owned);
        return;
    }
    struct hxfr__shm_ring *ring = calloc(1, sizeof(*ring));
    if (!ring) {
        munmap((void *)map, map_len);
        hxfr__client_send_error(c, sid, HXFR_STATUS_INTERNAL, "out of memory");
        return;
    }
    ring->refs = 1;
    ring->map = map;
    ring->map_len = map_len;
    ring->layout = layout;
    h->stats.shm_rings++;
    hxfr__shm_ring_unref(h, s->shm);
    s->shm = ring;
    hxfr__log(h, HXFR_HOST_LOG_INFO,
              "client %llu session %u: attached %s ring: %u slots of %llu bytes",
              (unsigned long long)c->id, (unsigned)sid, what, layout.slot_count,
              (unsigned long long)layout.slot_size);
    send_attach_resp(c, sid, &layout);
}

/* ---- Frames from slots ------------------------------------------------ */

static void slot_give_back(struct hxfr__frame *f)
{
    struct hxfr__shm_ring *r = f->ring;
    if (!f->slot_released && f->slot < HXFR_SHM_MAX_SLOTS && r->owned[f->slot]) {
        r->owned[f->slot] = false;
        r->host_owned--;
    }
    f->slot_released = true;
}

static void shm_release(struct hxfr__frame *f)
{
    if (!f->ring) {
        return;
    }
    slot_give_back(f);
    hxfr__shm_ring_unref(f->session->host, f->ring);
    f->ring = NULL;
}

static const struct hxfr__frame_source_ops shm_source = {
    .name = "shm",
    .release = shm_release,
};

int hxfr__shm_frame_setup(struct hxfr__session *s, struct hxfr__frame *f,
                          const struct hxfr_frame_request *req, const struct hxfr_geometry *g,
                          char *why, size_t why_len)
{
    struct hxfr__shm_ring *r = s->shm;
    uint32_t slot = req->resource_id;
    uint64_t off;

    if (!r) {
        snprintf(why, why_len, "session %u has no shared-memory ring (send SHM_ATTACH first)",
                 (unsigned)s->id);
        return HXFR_STATUS_SHM;
    }
    int e = hxfr_shm_slot_offset(&r->layout, slot, g, &off);
    if (e == -ERANGE) {
        snprintf(why, why_len, "slot %u out of range (the ring has %u slots)", slot,
                 r->layout.slot_count);
        return HXFR_STATUS_SHM;
    }
    if (e < 0) {
        snprintf(why, why_len, "a %llu-byte frame does not fit a %llu-byte slot",
                 (unsigned long long)g->size, (unsigned long long)r->layout.slot_size);
        return HXFR_STATUS_SHM;
    }
    if (r->owned[slot]) {
        snprintf(why, why_len, "slot %u submitted twice: the host still owns it", slot);
        return HXFR_STATUS_SHM;
    }
    /* Bounds: the validated layout lies inside the mapping, and the frame
     * inside its slot, so every plane read stays inside the mapping. */
    memset(&f->img, 0, sizeof(f->img));
    f->img.format = g->format;
    f->img.width = g->width;
    f->img.height = g->height;
    for (uint32_t i = 0; i < g->num_planes && i < 3; i++) {
        f->img.planes[i] = r->map + off + g->offset[i];
        f->img.strides[i] = g->stride[i];
    }
    r->owned[slot] = true;
    r->host_owned++;
    r->refs++;
    f->ring = r;
    f->slot = slot;
    f->slot_released = false;
    struct hxfr__client *c = s->client;
    /* A scanout keeps a copy of its latest picture, taken after the
     * encode: such a slot stays the host's until the frame completes. */
    f->early_release =
        c && c->hello && (c->peer_caps & HXFR_CAP_SLOT_RELEASE) && f->keep_op != HXFR__KEEP_SAVE;
    f->source = &shm_source;
    return HXFR_STATUS_OK;
}

void hxfr__shm_frame_consumed(struct hxfr__frame *f)
{
    if (!f->ring || f->slot_released || !f->early_release) {
        return;
    }
    slot_give_back(f);
    struct hxfr__client *c = f->session->client;
    if (c && !c->cut && c->fd >= 0) {
        struct hxfr_msg m;
        memset(&m, 0, sizeof(m));
        m.hdr.type = HXFR_MSG_SLOT_RELEASE;
        m.hdr.session_id = f->session->id;
        m.u.slot_release.slot = f->slot;
        hxfr__client_send_msg(c, &m);
    }
}

uint32_t hxfr__shm_caps(const struct hxfr__client *c)
{
    uint32_t caps = HXFR_CAP_SLOT_RELEASE;
    if (c->is_unix) {
        caps |= HXFR_CAP_SHM_FD;
    }
    if (c->host->nregions > 0) {
        caps |= HXFR_CAP_SHM_REGION;
    }
    return caps;
}

/* ---- Configured regions ------------------------------------------------ */

int hxfr__shm_regions_init(struct hxfr_host *h, const struct hxfr_host_config *cfg)
{
    if (cfg->shm_region_count == 0) {
        return 0;
    }
    if (!cfg->shm_regions || cfg->shm_region_count > 64) {
        return -EINVAL;
    }
    h->regions = calloc(cfg->shm_region_count, sizeof(*h->regions));
    if (!h->regions) {
        return -ENOMEM;
    }
    for (unsigned i = 0; i < cfg->shm_region_count; i++) {
        const struct hxfr_host_shm_region *src = &cfg->shm_regions[i];
        if (!src->name || !src->path || !src->name[0] || !src->path[0] ||
            strlen(src->name) >= HXFR_SHM_NAME_LEN) {
            return -EINVAL;
        }
        for (unsigned j = 0; j < i; j++) {
            if (strcmp(h->regions[j].name, src->name) == 0) {
                return -EINVAL;
            }
        }
        h->regions[i].name = strdup(src->name);
        h->regions[i].path = strdup(src->path);
        h->nregions = i + 1;
        if (!h->regions[i].name || !h->regions[i].path) {
            return -ENOMEM;
        }
    }
    return 0;
}

void hxfr__shm_regions_finish(struct hxfr_host *h)
{
    for (unsigned i = 0; i < h->nregions; i++) {
        free((char *)h->regions[i].name);
        free((char *)h->regions[i].path);
    }
    free(h->regions);
    h->regions = NULL;
    h->nregions = 0;
}
