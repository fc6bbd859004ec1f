/* vhost-user back-end protocol (see vhost.h).
 *
 * Every request is a 12-byte header (u32 request, u32 flags, u32 size, in
 * the host's byte order) and size bytes of payload. QEMU writes each
 * request with one sendmsg(), its fds attached; the kernel never merges the
 * bytes that follow an fd-carrying write into the same read, so the fds of
 * one recvmsg() belong to the request whose last byte ends that read. */
#include "vhost.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define HDR_SIZE 12u

/* Ring-index payloads: bits 0-7 the index, bit 8 "no fd, poll instead". */
#define RING_INDEX_MASK 0xffu
#define RING_NOFD       0x100u

void hxfr__vhost_init(struct hxfr_vhost *vu, int fd, unsigned n_rings,
                      const struct hxfr_vhost_ops *ops, void *dev)
{
    memset(vu, 0, sizeof(*vu));
    vu->fd = fd;
    vu->ops = ops;
    vu->dev = dev;
    vu->n_rings = n_rings < HXFR_VHOST_MAX_RINGS ? n_rings : HXFR_VHOST_MAX_RINGS;
    vu->offered = (1ull << HXFR_VIRTIO_F_VERSION_1) | (1ull << HXFR_VIRTIO_F_INDIRECT_DESC) |
                  (1ull << HXFR_VIRTIO_F_EVENT_IDX) | (1ull << HXFR_VHOST_F_PROTOCOL_FEATURES) |
                  (ops->device_features & ((1ull << 24) - 1));
    vu->protocol_offered =
        (1ull << HXFR_VHOST_PROTOCOL_F_MQ) | (1ull << HXFR_VHOST_PROTOCOL_F_REPLY_ACK) |
        (1ull << HXFR_VHOST_PROTOCOL_F_CONFIG) | (1ull << HXFR_VHOST_PROTOCOL_F_RESET_DEVICE);
    hxfr__mem_init(&vu->mem);
    for (unsigned i = 0; i < HXFR_VHOST_MAX_RINGS; i++) {
        hxfr__vring_init(&vu->rings[i]);
    }
}

static void close_fds(int *fds, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        if (fds[i] >= 0) {
            close(fds[i]);
            fds[i] = -1;
        }
    }
}

void hxfr__vhost_finish(struct hxfr_vhost *vu)
{
    for (unsigned i = 0; i < HXFR_VHOST_MAX_RINGS; i++) {
        hxfr__vring_finish(&vu->rings[i]);
    }
    close_fds(vu->fds, vu->n_fds);
    vu->n_fds = 0;
    hxfr__mem_finish(&vu->mem);
}

bool hxfr__vhost_ring_live(const struct hxfr_vhost *vu, unsigned idx)
{
    const struct hxfr_vring *vr = &vu->rings[idx];
    return idx < vu->n_rings && vr->started && vr->enabled && hxfr__vring_ready(vr);
}

/* Replies are small and the front-end is waiting for them: write them
 * whole, blocking if need be. */
static int send_reply(struct hxfr_vhost *vu, uint32_t request, const void *payload, uint32_t size)
{
    uint8_t buf[HDR_SIZE + 256 + 12];
    if (size > sizeof(buf) - HDR_SIZE) {
        return -EINVAL;
    }
    uint32_t hdr[3] = {request, HXFR_VHOST_VERSION | HXFR_VHOST_REPLY, size};
    memcpy(buf, hdr, HDR_SIZE);
    if (size > 0) {
        memcpy(buf + HDR_SIZE, payload, size);
    }
    size_t len = HDR_SIZE + size, off = 0;
    while (off < len) {
        ssize_t n = send(vu->fd, buf + off, len - off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN) {
                /* A non-blocking socket (--fd may hand us one) with a full
                 * buffer: QEMU reads while it waits for this reply. */
                struct pollfd pfd = {.fd = vu->fd, .events = POLLOUT};
                poll(&pfd, 1, -1);
                continue;
            }
            return -errno;
        }
        off += (size_t)n;
    }
    return 0;
}

static int reply_u64(struct hxfr_vhost *vu, uint32_t request, uint64_t v)
{
    return send_reply(vu, request, &v, sizeof(v));
}

/* Stops ring idx and tells the device before the kick fd is closed: the
 * eventfd is shared with the front-end, so epoll keeps watching it after
 * our close() unless the watch is removed first. */
static void stop_ring(struct hxfr_vhost *vu, unsigned idx)
{
    struct hxfr_vring *vr = &vu->rings[idx];
    int fd = vr->kick_fd;
    vr->started = false;
    vr->kick_fd = -1;
    vu->ops->ring_changed(vu->dev, idx);
    if (fd >= 0) {
        close(fd);
    }
}

/* Takes the one fd a request must carry (the rest are closed by the
 * caller). */
static int take_fd(int *fds, unsigned n_fds, int *out)
{
    if (n_fds != 1) {
        return -EBADF;
    }
    *out = fds[0];
    fds[0] = -1;
    return 0;
}

static void set_ring_fd(int *slot, int fd)
{
    if (*slot >= 0) {
        close(*slot);
    }
    *slot = fd;
}

static void apply_features(struct hxfr_vhost *vu)
{
    for (unsigned i = 0; i < vu->n_rings; i++) {
        vu->rings[i].event_idx = vu->features & (1ull << HXFR_VIRTIO_F_EVENT_IDX);
        vu->rings[i].indirect = vu->features & (1ull << HXFR_VIRTIO_F_INDIRECT_DESC);
    }
}

static int handle_mem_table(struct hxfr_vhost *vu, const uint8_t *p, uint32_t size, int *fds,
                            unsigned n_fds)
{
    struct hxfr_mem_desc d[HXFR_MEM_MAX_REGIONS];
    uint32_t n;
    if (size < 8) {
        return -EINVAL;
    }
    memcpy(&n, p, 4);
    if (n == 0 || n > HXFR_MEM_MAX_REGIONS || size != 8 + 32 * n || n_fds != n) {
        return -EINVAL;
    }
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *r = p + 8 + 32 * i;
        memcpy(&d[i].gpa, r, 8);
        memcpy(&d[i].size, r + 8, 8);
        memcpy(&d[i].uva, r + 16, 8);
        memcpy(&d[i].mmap_offset, r + 24, 8);
    }
    int err = hxfr__mem_set(&vu->mem, d, n, fds);
    if (err < 0) {
        return err;
    }
    for (unsigned i = 0; i < vu->n_rings; i++) {
        if (vu->rings[i].have_addr) {
            hxfr__vring_map(&vu->rings[i], &vu->mem);
        }
    }
    vu->ops->mem_changed(vu->dev);
    return 0;
}

static int handle_config(struct hxfr_vhost *vu, uint32_t request, const uint8_t *p, uint32_t size)
{
    uint32_t off, len, flags;
    if (size < 12) {
        return -EINVAL;
    }
    memcpy(&off, p, 4);
    memcpy(&len, p + 4, 4);
    memcpy(&flags, p + 8, 4);
    if (len > 256 || size != 12 + len) {
        if (request == HXFR_VHOST_GET_CONFIG) {
            /* An empty payload tells the front-end the request failed. */
            send_reply(vu, request, NULL, 0);
        }
        return -EINVAL;
    }
    if (request == HXFR_VHOST_SET_CONFIG) {
        return vu->ops->set_config(vu->dev, off, p + 12, len);
    }
    uint8_t out[12 + 256];
    memset(out, 0, sizeof(out));
    memcpy(out, p, 12);
    if (vu->ops->get_config(vu->dev, off, out + 12, len) < 0) {
        send_reply(vu, request, NULL, 0);
        return -EINVAL;
    }
    return send_reply(vu, request, out, 12 + len);
}

/* One request. Returns 0 or -errno for the reply-ack; *replied tells
 * whether the request had a reply of its own. fds not taken stay in fds[]
 * for the caller to close. */
static int handle(struct hxfr_vhost *vu, uint32_t request, const uint8_t *p, uint32_t size,
                  int *fds, unsigned n_fds, bool *replied)
{
    uint64_t u64 = 0;
    uint32_t idx = 0, num = 0;
    struct hxfr_vring *vr = NULL;

    *replied = false;
    if (size >= 8) {
        memcpy(&u64, p, 8);
        memcpy(&idx, p, 4);
        memcpy(&num, p + 4, 4);
    } else if (size >= 4) {
        memcpy(&idx, p, 4);
    }

    switch (request) {
    case HXFR_VHOST_GET_FEATURES:
        *replied = true;
        return reply_u64(vu, request, vu->offered);
    case HXFR_VHOST_SET_FEATURES:
        if (size != 8) {
            return -EINVAL;
        }
        /* QEMU sets bits it never saw offered (RING_RESET, ...): keep what
         * we know, count the rest. */
        if (u64 & ~vu->offered) {
            vu->unknown_bits++;
        }
        vu->features = u64 & vu->offered;
        vu->features_set = true;
        apply_features(vu);
        vu->ops->features(vu->dev, vu->features);
        return 0;
    case HXFR_VHOST_GET_PROTOCOL_FEATURES:
        *replied = true;
        return reply_u64(vu, request, vu->protocol_offered);
    case HXFR_VHOST_SET_PROTOCOL_FEATURES:
        if (size != 8) {
            return -EINVAL;
        }
        vu->protocol_features = u64 & vu->protocol_offered;
        return 0;
    case HXFR_VHOST_GET_QUEUE_NUM:
        *replied = true;
        return reply_u64(vu, request, vu->n_rings);
    case HXFR_VHOST_SET_OWNER:
        return 0;
    case HXFR_VHOST_RESET_OWNER:
        /* Deprecated; the spec suggests stopping the rings. */
        for (unsigned i = 0; i < vu->n_rings; i++) {
            stop_ring(vu, i);
        }
        return 0;
    case HXFR_VHOST_SET_MEM_TABLE:
        return handle_mem_table(vu, p, size, fds, n_fds);
    case HXFR_VHOST_GET_CONFIG:
        *replied = true;
        return handle_config(vu, request, p, size);
    case HXFR_VHOST_SET_CONFIG:
        return handle_config(vu, request, p, size);
    case HXFR_VHOST_GPU_SET_SOCKET: {
        int fd;
        if (take_fd(fds, n_fds, &fd) < 0) {
            return -EBADF;
        }
        vu->ops->gpu_socket(vu->dev, fd);
        return 0;
    }
    case HXFR_VHOST_RESET_DEVICE:
        for (unsigned i = 0; i < vu->n_rings; i++) {
            struct hxfr_vring *r = &vu->rings[i];
            int call = r->call_fd, err = r->err_fd;
            uint64_t malformed = r->malformed;
            stop_ring(vu, i);
            /* The call and error fds are the front-end's wiring, not guest
             * state: they stay. */
            hxfr__vring_init(r);
            r->call_fd = call;
            r->err_fd = err;
            r->malformed = malformed;
        }
        vu->features = 0;
        vu->features_set = false;
        apply_features(vu);
        vu->ops->reset(vu->dev);
        for (unsigned i = 0; i < vu->n_rings; i++) {
            vu->ops->ring_changed(vu->dev, i);
        }
        return 0;
    case HXFR_VHOST_SET_VRING_NUM:
    case HXFR_VHOST_SET_VRING_ADDR:
    case HXFR_VHOST_SET_VRING_BASE:
    case HXFR_VHOST_GET_VRING_BASE:
    case HXFR_VHOST_SET_VRING_ENABLE:
    case HXFR_VHOST_SET_VRING_KICK:
    case HXFR_VHOST_SET_VRING_CALL:
    case HXFR_VHOST_SET_VRING_ERR:
        break;
    case HXFR_VHOST_SET_LOG_BASE:
    case HXFR_VHOST_SET_LOG_FD:
    case HXFR_VHOST_SET_BACKEND_REQ_FD:
    default:
        /* Never offered (no dirty logging, no back-end channel) or not
         * known: refuse, and let the caller close any fd that came. */
        return -ENOTSUP;
    }

    /* The ring requests. */
    bool fd_request = request == HXFR_VHOST_SET_VRING_KICK ||
                      request == HXFR_VHOST_SET_VRING_CALL || request == HXFR_VHOST_SET_VRING_ERR;
    if (fd_request) {
        if (size != 8) {
            return -EINVAL;
        }
        idx = (uint32_t)(u64 & RING_INDEX_MASK);
    } else if (size < 8) {
        return -EINVAL;
    }
    if (idx >= vu->n_rings) {
        if (request == HXFR_VHOST_GET_VRING_BASE) {
            *replied = true;
            uint32_t st[2] = {idx, 0};
            send_reply(vu, request, st, sizeof(st));
        }
        return -EINVAL;
    }
    vr = &vu->rings[idx];

    switch (request) {
    case HXFR_VHOST_SET_VRING_NUM:
        if (size != 8 || num == 0 || num > HXFR_VRING_MAX_NUM || (num & (num - 1)) != 0 ||
            vr->started) {
            return -EINVAL;
        }
        vr->num = num;
        if (vr->have_addr) {
            hxfr__vring_map(vr, &vu->mem);
        }
        return 0;
    case HXFR_VHOST_SET_VRING_ADDR: {
        uint64_t desc, used, avail;
        if (size != 40 || vr->started) {
            return -EINVAL;
        }
        memcpy(&desc, p + 8, 8);
        memcpy(&used, p + 16, 8);
        memcpy(&avail, p + 24, 8);
        vr->desc_uva = desc;
        vr->used_uva = used;
        vr->avail_uva = avail;
        vr->have_addr = true;
        return hxfr__vring_map(vr, &vu->mem);
    }
    case HXFR_VHOST_SET_VRING_BASE:
        if (size != 8 || vr->started) {
            return -EINVAL;
        }
        vr->last_avail = (uint16_t)num;
        return 0;
    case HXFR_VHOST_GET_VRING_BASE: {
        /* Stops the ring; the reply carries where the next start
         * resumes. */
        stop_ring(vu, idx);
        uint32_t st[2] = {idx, vr->last_avail};
        *replied = true;
        return send_reply(vu, request, st, sizeof(st));
    }
    case HXFR_VHOST_SET_VRING_ENABLE:
        if (size != 8 || num > 1) {
            return -EINVAL;
        }
        vr->enabled = num == 1;
        vu->ops->ring_changed(vu->dev, idx);
        return 0;
    case HXFR_VHOST_SET_VRING_KICK: {
        int fd;
        if (u64 & RING_NOFD) {
            /* Polling a ring instead of waiting on an eventfd is not
             * offered: the front-end always has eventfds. */
            return -ENOTSUP;
        }
        if (take_fd(fds, n_fds, &fd) < 0) {
            return -EBADF;
        }
        stop_ring(vu, idx); /* drops the previous kick fd, if any */
        vr->kick_fd = fd;
        vr->started = true;
        if (!(vu->features & (1ull << HXFR_VHOST_F_PROTOCOL_FEATURES))) {
            vr->enabled = true; /* without protocol features rings start enabled */
        }
        hxfr__vring_map(vr, &vu->mem);
        hxfr__vring_start(vr);
        vu->ops->ring_changed(vu->dev, idx);
        return 0;
    }
    case HXFR_VHOST_SET_VRING_CALL:
    case HXFR_VHOST_SET_VRING_ERR: {
        int fd = -1;
        if (!(u64 & RING_NOFD) && take_fd(fds, n_fds, &fd) < 0) {
            return -EBADF;
        }
        set_ring_fd(request == HXFR_VHOST_SET_VRING_CALL ? &vr->call_fd : &vr->err_fd, fd);
        return 0;
    }
    default:
        return -ENOTSUP;
    }
}

/* Handles every complete request in vu->in; keeps a partial one. */
static int process(struct hxfr_vhost *vu)
{
    size_t off = 0;
    int ret = 0;
    while (vu->in_len - off >= HDR_SIZE) {
        uint32_t hdr[3];
        memcpy(hdr, vu->in + off, HDR_SIZE);
        uint32_t request = hdr[0], flags = hdr[1], size = hdr[2];
        if ((flags & 0x3u) != HXFR_VHOST_VERSION || (flags & HXFR_VHOST_REPLY)) {
            vu->last_error = "request with a bad version or the reply flag";
            ret = -EPROTO;
            break;
        }
        if (size > HXFR_VHOST_MAX_PAYLOAD) {
            vu->last_error = "request payload too large";
            ret = -EPROTO;
            break;
        }
        size_t end = off + HDR_SIZE + size;
        if (end > vu->in_len) {
            break; /* the rest comes in a later read */
        }
        int *fds = NULL;
        unsigned n_fds = 0;
        if (vu->n_fds > 0 && vu->fds_at > off && vu->fds_at <= end) {
            fds = vu->fds;
            n_fds = vu->n_fds;
        }
        bool replied;
        vu->requests++;
        vu->last_request = request;
        int err = handle(vu, request, vu->in + off + HDR_SIZE, size, fds, n_fds, &replied);
        if (err < 0 && vu->last_error == NULL) {
            vu->last_error = "request refused";
        }
        if (fds != NULL) {
            close_fds(vu->fds, vu->n_fds);
            vu->n_fds = 0;
        }
        if (!replied && (flags & HXFR_VHOST_NEED_REPLY) &&
            (vu->protocol_features & (1ull << HXFR_VHOST_PROTOCOL_F_REPLY_ACK))) {
            reply_u64(vu, request, err < 0 ? 1 : 0);
        }
        off = end;
    }
    if (off > 0) {
        memmove(vu->in, vu->in + off, vu->in_len - off);
        vu->in_len -= off;
        vu->fds_at = vu->fds_at > off ? vu->fds_at - off : 0;
    }
    return ret;
}

static int accept_fds(struct hxfr_vhost *vu, int *fds, unsigned n_fds, size_t at)
{
    if (n_fds == 0) {
        return 0;
    }
    if (vu->n_fds > 0 || n_fds > sizeof(vu->fds) / sizeof(vu->fds[0])) {
        /* fds for a second request while the first still waits for its
         * bytes: a front-end that does this is not following the rules. */
        close_fds(fds, n_fds);
        vu->last_error = "file descriptors for two requests at once";
        return -EPROTO;
    }
    memcpy(vu->fds, fds, n_fds * sizeof(int));
    vu->n_fds = n_fds;
    vu->fds_at = at;
    return 0;
}

int hxfr__vhost_feed(struct hxfr_vhost *vu, const uint8_t *buf, size_t len, const int *fds,
                     unsigned n_fds)
{
    int tmp[32];
    unsigned n = n_fds < 32 ? n_fds : 32;
    if (n > 0) {
        memcpy(tmp, fds, n * sizeof(int));
    }
    for (unsigned i = n; i < n_fds; i++) {
        close(fds[i]);
    }
    while (len > 0) {
        size_t room = sizeof(vu->in) - vu->in_len;
        size_t chunk = len < room ? len : room;
        memcpy(vu->in + vu->in_len, buf, chunk);
        vu->in_len += chunk;
        buf += chunk;
        len -= chunk;
        if (len == 0) {
            int err = accept_fds(vu, tmp, n, vu->in_len);
            n = 0;
            if (err < 0) {
                return err;
            }
        }
        int err = process(vu);
        if (err < 0) {
            close_fds(tmp, n);
            return err;
        }
    }
    close_fds(tmp, n);
    return 0;
}

int hxfr__vhost_read(struct hxfr_vhost *vu)
{
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(32 * sizeof(int))];
    } ctl;
    struct iovec iov = {vu->in + vu->in_len, sizeof(vu->in) - vu->in_len};
    struct msghdr mh = {
        .msg_iov = &iov,
        .msg_iovlen = 1,
        .msg_control = ctl.buf,
        .msg_controllen = sizeof(ctl.buf),
    };
    ssize_t n = recvmsg(vu->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0) {
        return errno == EAGAIN || errno == EINTR ? 0 : -errno;
    }
    int fds[32];
    unsigned n_fds = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (size_t i = 0; i < k; i++) {
                int fd;
                memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
                if (n_fds < 32) {
                    fds[n_fds++] = fd;
                } else {
                    close(fd);
                }
            }
        }
    }
    if (mh.msg_flags & MSG_CTRUNC) {
        close_fds(fds, n_fds);
        vu->last_error = "file descriptors truncated (MSG_CTRUNC)";
        return -EPROTO;
    }
    if (n == 0) {
        close_fds(fds, n_fds);
        return -EPIPE;
    }
    vu->in_len += (size_t)n;
    int err = accept_fds(vu, fds, n_fds, vu->in_len);
    if (err < 0) {
        return err;
    }
    return process(vu);
}
