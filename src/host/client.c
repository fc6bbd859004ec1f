/* One client connection: non-blocking input through the incremental
 * parser, request handling, and a bounded output queue written with
 * sendmsg (one iovec per queued message).
 *
 * Input: small messages and headers are read into rbuf and parsed. When a
 * FRAME_REQUEST with inline pixels is accepted, its body is read from the
 * socket straight into the session's pooled frame buffer (the bytes that
 * already sit in rbuf are moved there first), and the parser is told with
 * hxfr_parser_body_advance(). A rejected request's body is skipped the same
 * way without being stored. With a full window the client's input is not
 * parsed and EPOLLIN is off: the kernel's socket buffer is the only queue.
 *
 * Closing: a client is never freed while a caller up the stack may still
 * use it. Handlers mark it cut; the event handler and the completion path
 * close it at safe points, and hxfr__client_close() defers the free to the
 * end of the dispatch round.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "host-private.h"
#include "scanout.h"

#define HXFR_HOST_CAPS  (HXFR_CAP_CONFIG_GOP | HXFR_CAP_SCANOUT)
#define READ_BUDGET     (8u * 1024u * 1024u) /* bytes per wakeup, for fairness */
#define IOV_BATCH       64
#define ERROR_LOG_LIMIT 100u /* ERROR lines logged per client */

struct hxfr__outbuf *hxfr__outbuf_new(size_t len)
{
    struct hxfr__outbuf *b = malloc(sizeof(*b) + len);
    if (!b) {
        errno = ENOMEM;
        return NULL;
    }
    b->refs = 1;
    b->len = len;
    return b;
}

void hxfr__outbuf_unref(struct hxfr__outbuf *b)
{
    if (b && --b->refs == 0) {
        free(b);
    }
}

static void client_cut(struct hxfr__client *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void client_cut(struct hxfr__client *c, const char *fmt, ...)
{
    if (c->cut) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->cut_reason, sizeof(c->cut_reason), fmt, ap);
    va_end(ap);
    c->cut = true;
}

/* Describes the peer for the log: address for TCP/vsock, pid for UNIX. */
static void describe_peer(struct hxfr__client *c)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);

    snprintf(c->peer, sizeof(c->peer), "unknown peer");
    if (getpeername(c->fd, (struct sockaddr *)&ss, &len) < 0) {
        return;
    }
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;
        char a[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &in->sin_addr, a, sizeof(a));
        snprintf(c->peer, sizeof(c->peer), "tcp:%s:%u", a, ntohs(in->sin_port));
        c->is_tcp = true;
    } else if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ss;
        char a[INET6_ADDRSTRLEN];
        inet_ntop(AF_INET6, &in6->sin6_addr, a, sizeof(a));
        snprintf(c->peer, sizeof(c->peer), "tcp:[%s]:%u", a, ntohs(in6->sin6_port));
        c->is_tcp = true;
    } else if (ss.ss_family == AF_UNIX) {
        c->is_unix = true;
        struct ucred cred;
        socklen_t clen = sizeof(cred);
        if (getsockopt(c->fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) == 0) {
            snprintf(c->peer, sizeof(c->peer), "unix pid %ld uid %ld", (long)cred.pid,
                     (long)cred.uid);
        } else {
            snprintf(c->peer, sizeof(c->peer), "unix");
        }
    } else {
        snprintf(c->peer, sizeof(c->peer), "family %d", (int)ss.ss_family);
    }
}

/* Half-open TCP peers (a guest that was killed, a cable pulled) are found
 * by keepalive probes: first after 60 s of silence, then every 10 s, given
 * up after 3 unanswered probes. */
static void tcp_keepalive(int fd)
{
    int on = 1, idle = 60, intvl = 10, cnt = 3;
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
}

static void reject_busy(struct hxfr_host *h, int fd)
{
    struct hxfr_msg m;
    uint8_t buf[HXFR_HEADER_SIZE + HXFR_ERROR_SIZE];

    hxfr_msg_error(&m, 0, HXFR_STATUS_BUSY, "server busy: %u clients connected (limit %u)",
                   h->nclients, h->cfg.max_clients);
    int n = hxfr_msg_encode(&m, 0, buf, sizeof(buf));
    if (n > 0) {
        /* Best effort: a fresh socket has an empty send buffer, so this
         * non-blocking send normally takes all of it. */
        ssize_t w = send(fd, buf, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
        (void)w;
    }
    close(fd);
}

int hxfr__client_accept(struct hxfr_host *h, int fd, const char *via, bool exempt)
{
    if (h->nclients >= h->cfg.max_clients) {
        h->full_ms = hxfr__now_ms();
        h->stats.clients_rejected++;
        hxfr__log(h, HXFR_HOST_LOG_WARN, "connection on %s refused: %u clients (limit %u)", via,
                  h->nclients, h->cfg.max_clients);
        reject_busy(h, fd);
        return -EBUSY;
    }
    struct hxfr__client *c = calloc(1, sizeof(*c));
    if (!c) {
        close(fd);
        return -ENOMEM;
    }
    c->watch.kind = HXFR__WATCH_CLIENT;
    c->host = h;
    c->fd = fd;
    c->id = ++h->next_client_id;
    describe_peer(c);
    if (c->is_tcp) {
        tcp_keepalive(fd);
    }
    hxfr_parser_init(&c->parser, h->max_body);
    c->last_activity_ms = hxfr__now_ms();
    c->accepted_ms = c->last_activity_ms;
    c->greeted = exempt;

    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = c};
    if (epoll_ctl(h->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        int err = -errno;
        close(fd);
        free(c);
        return err;
    }
    c->events = ev.events;
    c->next = h->clients;
    if (h->clients) {
        h->clients->prev = c;
    }
    h->clients = c;
    h->nclients++;
    if (h->nclients >= h->cfg.max_clients) {
        h->full_ms = c->accepted_ms;
    }
    h->stats.clients = h->nclients;
    h->stats.clients_accepted++;
    hxfr__log(h, HXFR_HOST_LOG_INFO, "client %llu connected (%s) via %s", (unsigned long long)c->id,
              c->peer, via);
    hxfr__host_update_timer(h);
    return 0;
}

void hxfr__client_close(struct hxfr__client *c, const char *why)
{
    struct hxfr_host *h = c->host;

    if (c->fd < 0) {
        return;
    }
    hxfr__log(h, HXFR_HOST_LOG_INFO,
              "client %llu disconnected: %s (%llu requests, %llu errors, %llu pixel bytes "
              "copied)",
              (unsigned long long)c->id, why, (unsigned long long)c->requests,
              (unsigned long long)c->errors_sent, (unsigned long long)c->pixel_bytes_copied);
    epoll_ctl(h->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    hxfr__client_fds_close(c);

    if (c->body_frame) {
        hxfr__frame_put(c->body_frame);
        c->body_frame = NULL;
    }
    hxfr__scanout_client_closed(c);
    while (c->sessions) {
        struct hxfr__session *s = c->sessions;
        c->sessions = s->next;
        s->next = NULL;
        hxfr__session_detach(s);
    }
    c->nsessions = 0;
    while (c->out_head) {
        struct hxfr__outq_entry *e = c->out_head;
        c->out_head = e->next;
        hxfr__outbuf_unref(e->buf);
        free(e);
    }
    c->out_tail = NULL;
    c->out_bytes = 0;

    if (c->prev) {
        c->prev->next = c->next;
    } else {
        h->clients = c->next;
    }
    if (c->next) {
        c->next->prev = c->prev;
    }
    h->nclients--;
    h->stats.clients = h->nclients;
    /* Freed at the end of this dispatch round: an epoll event for it may
     * still be pending in the current batch. */
    c->prev = NULL;
    c->next = h->dead;
    h->dead = c;
    hxfr__host_update_timer(h);
}

void hxfr__client_update_events(struct hxfr__client *c)
{
    struct hxfr_host *h = c->host;

    if (c->fd < 0) {
        return;
    }
    uint32_t want = 0;
    bool reading =
        !c->cut && !c->eof && !c->paused && (c->lingering || (!c->closing && !h->stopping));
    if (reading) {
        want |= EPOLLIN | EPOLLRDHUP;
    }
    if (c->out_head && !c->cut) {
        want |= EPOLLOUT;
    }
    if (want != c->events) {
        struct epoll_event ev = {.events = want, .data.ptr = c};
        if (epoll_ctl(h->epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0) {
            c->events = want;
        }
    }
}

void hxfr__client_flush(struct hxfr__client *c)
{
    while (c->out_head && !c->cut) {
        struct iovec iov[IOV_BATCH];
        int n = 0;
        for (struct hxfr__outq_entry *e = c->out_head; e && n < IOV_BATCH; e = e->next) {
            iov[n].iov_base = e->buf->data + e->off;
            iov[n].iov_len = e->buf->len - e->off;
            n++;
        }
        struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)n};
        ssize_t w = sendmsg(c->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                break;
            }
            client_cut(c, "write failed: %s", strerror(errno));
            break;
        }
        c->last_activity_ms = hxfr__now_ms();
        size_t left = (size_t)w;
        c->out_bytes -= left;
        while (left > 0 && c->out_head) {
            struct hxfr__outq_entry *e = c->out_head;
            size_t rem = e->buf->len - e->off;
            if (left < rem) {
                e->off += left;
                break;
            }
            left -= rem;
            c->out_head = e->next;
            hxfr__outbuf_unref(e->buf);
            free(e);
        }
        if (!c->out_head) {
            c->out_tail = NULL;
        }
    }
    hxfr__client_update_events(c);
}

int hxfr__client_send(struct hxfr__client *c, struct hxfr__outbuf *buf)
{
    struct hxfr_host *h = c->host;

    if (!buf) {
        return -EINVAL;
    }
    if (c->cut || c->fd < 0) {
        hxfr__outbuf_unref(buf);
        return -EPIPE;
    }
    if (c->out_bytes + buf->len > h->cfg.max_output) {
        hxfr__outbuf_unref(buf);
        hxfr__log(h, HXFR_HOST_LOG_WARN,
                  "client %llu: output queue over %zu bytes (not reading its responses)",
                  (unsigned long long)c->id, h->cfg.max_output);
        client_cut(c, "output queue over the limit of %zu bytes", h->cfg.max_output);
        return -ENOBUFS;
    }
    struct hxfr__outq_entry *e = malloc(sizeof(*e));
    if (!e) {
        hxfr__outbuf_unref(buf);
        client_cut(c, "out of memory");
        return -ENOMEM;
    }
    e->next = NULL;
    e->buf = buf;
    e->off = 0;
    if (c->out_tail) {
        c->out_tail->next = e;
    } else {
        c->out_head = e;
    }
    c->out_tail = e;
    c->out_bytes += buf->len;
    /* Write at once: most responses go out without another epoll round. */
    hxfr__client_flush(c);
    return 0;
}

/* The answers that never wait: PONG and HELLO_RESP concern the connection,
 * not a session, and SLOT_RELEASE is not an answer (it must overtake the
 * frame's result to be of any use). */
static bool answer_is_ordered(uint8_t type)
{
    return type != HXFR_MSG_PONG && type != HXFR_MSG_HELLO_RESP && type != HXFR_MSG_SLOT_RELEASE;
}

static int send_msg(struct hxfr__client *c, const struct hxfr_msg *m, bool ordered)
{
    int size = hxfr_msg_fixed_size(m->hdr.type);
    if (size < 0) {
        return size;
    }
    struct hxfr__outbuf *b = hxfr__outbuf_new(HXFR_HEADER_SIZE + (size_t)size);
    if (!b) {
        client_cut(c, "out of memory");
        return -ENOMEM;
    }
    int n = hxfr_msg_encode(m, 0, b->data, b->len);
    if (n < 0) {
        hxfr__outbuf_unref(b);
        return n;
    }
    b->len = (size_t)n;
    if (ordered) {
        struct hxfr__session *s = hxfr__session_get(c, m->hdr.session_id, false);
        if (s) {
            return hxfr__session_answer(s, b);
        }
    }
    return hxfr__client_send(c, b);
}

int hxfr__client_send_msg(struct hxfr__client *c, const struct hxfr_msg *m)
{
    return send_msg(c, m, answer_is_ordered(m->hdr.type));
}

static void send_error_v(struct hxfr__client *c, uint16_t session_id, int32_t code, bool ordered,
                         const char *fmt, va_list ap) __attribute__((format(printf, 5, 0)));

static void send_error_v(struct hxfr__client *c, uint16_t session_id, int32_t code, bool ordered,
                         const char *fmt, va_list ap)
{
    struct hxfr_msg m;
    char text[HXFR_ERROR_MESSAGE_LEN];

    vsnprintf(text, sizeof(text), fmt, ap);
    hxfr_msg_error(&m, session_id, code, "%s", text);
    c->host->stats.errors_sent++;
    c->errors_sent++;
    /* One line per error, but a client cannot fill the disk with them. */
    if (c->errors_sent <= ERROR_LOG_LIMIT) {
        hxfr__log(c->host, HXFR_HOST_LOG_WARN, "client %llu session %u: ERROR %s: %s",
                  (unsigned long long)c->id, (unsigned)session_id, hxfr_status_name(code), text);
    }
    if (c->errors_sent == ERROR_LOG_LIMIT) {
        hxfr__log(c->host, HXFR_HOST_LOG_WARN,
                  "client %llu: %u errors, further ERROR lines for it are not logged",
                  (unsigned long long)c->id, ERROR_LOG_LIMIT);
    }
    send_msg(c, &m, ordered);
}

void hxfr__client_send_error(struct hxfr__client *c, uint16_t session_id, int32_t code,
                             const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    send_error_v(c, session_id, code, true, fmt, ap);
    va_end(ap);
}

void hxfr__client_send_error_now(struct hxfr__client *c, uint16_t session_id, int32_t code,
                                 const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    send_error_v(c, session_id, code, false, fmt, ap);
    va_end(ap);
}

/* A framing violation: the stream is out of sync. Answer INVALID_MSG,
 * stop reading, flush, then close (see client_start_linger). */
static void client_fatal(struct hxfr__client *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void client_fatal(struct hxfr__client *c, const char *fmt, ...)
{
    char text[HXFR_ERROR_MESSAGE_LEN];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    /* At once: the connection ends after it, frames in flight included. */
    hxfr__client_send_error_now(c, c->parser.hdr.session_id, HXFR_STATUS_INVALID_MSG, "%s", text);
    c->closing = true;
    c->paused = false;
    c->linger_deadline_ms = hxfr__now_ms() + HXFR_HOST_LINGER_MS;
    c->rpos = c->rlen = 0;
    if (c->body_frame) {
        struct hxfr__frame *f = c->body_frame;
        c->body_frame = NULL;
        hxfr__frame_put(f);
        if (c->inflight > 0) {
            c->inflight--;
        }
    }
    c->body_mode = HXFR__BODY_NONE;
    /* Nothing after this point is parsed: no message can claim them. */
    hxfr__client_fds_close(c);
}

/* ---- Frame sources ---------------------------------------------------- */

/* Inline pixels live in the session's pooled buffer: nothing to release. */
static const struct hxfr__frame_source_ops inline_source = {
    .name = "inline",
    .release = NULL,
};

static void resolver_release(struct hxfr__frame *f)
{
    struct hxfr_host *h = f->session->host;
    if (h->cfg.resolver.release) {
        h->cfg.resolver.release(h->cfg.resolver.opaque, &f->ext);
    }
}

static const struct hxfr__frame_source_ops resolver_source = {
    .name = "resolver",
    .release = resolver_release,
};

/* Fills f's encode settings and ordering from the session. */
static void frame_prepare(struct hxfr__session *s, struct hxfr__frame *f,
                          const struct hxfr_frame_request *req)
{
    f->pts = req->pts;
    f->force_idr = req->force_keyframe != 0 || s->force_idr_next;
    s->force_idr_next = false;
    f->cfg = s->cfg;
    f->cfg_gen = s->cfg_gen;
}

static int32_t geometry_status(int err)
{
    if (err == -HXFR_EDIMS) {
        return HXFR_STATUS_TOO_LARGE;
    }
    return HXFR_STATUS_BAD_GEOMETRY;
}

static int check_limits(struct hxfr_host *h, uint32_t format, uint32_t width, uint32_t height,
                        uint32_t stride, struct hxfr_geometry *g)
{
    uint32_t max_dim = h->cfg.max_width > h->cfg.max_height ? h->cfg.max_width : h->cfg.max_height;
    int r = hxfr_geometry_compute(format, width, height, stride, max_dim, g);
    if (r < 0) {
        return r;
    }
    if (width > h->cfg.max_width || height > h->cfg.max_height) {
        return -HXFR_EDIMS;
    }
    return 0;
}

/* A client's pooled buffers stay allocated between frames, spread over
 * its sessions. Their sum is kept within window x the largest frame: before
 * a buffer grows past that, idle buffers of the client's sessions are
 * freed (only `window` frames are ever in use at once, so this always
 * makes room). */
static void client_trim_pools(struct hxfr__client *c, size_t need)
{
    size_t budget = (size_t)c->host->cfg.window * c->host->max_body;
    for (struct hxfr__session *s = c->sessions; s && c->pool_bytes + need > budget; s = s->next) {
        for (unsigned i = 0; i < s->nframes && c->pool_bytes + need > budget; i++) {
            struct hxfr__frame *f = &s->frames[i];
            if (f->state == HXFR__FRAME_FREE && f->buf) {
                c->pool_bytes -= f->cap;
                free(f->buf);
                f->buf = NULL;
                f->cap = 0;
            }
        }
    }
}

static void handle_frame_inline(struct hxfr__client *c, struct hxfr__session *s,
                                const struct hxfr_msg *m, uint32_t body_size)
{
    struct hxfr_host *h = c->host;
    const struct hxfr_frame_request *req = &m->u.frame_request;
    uint16_t sid = m->hdr.session_id;
    struct hxfr_geometry g;

    int r = check_limits(h, req->format, req->width, req->height, req->stride, &g);
    if (r < 0) {
        hxfr__client_send_error(c, sid, geometry_status(r),
                                "frame %ux%u format 0x%08x stride %u: %s", req->width, req->height,
                                req->format, req->stride, hxfr_strerror(r));
        return;
    }
    if ((uint64_t)body_size != g.size) {
        hxfr__client_send_error(c, sid, HXFR_STATUS_BAD_GEOMETRY,
                                "inline pixels: %u bytes sent, %ux%u %s stride %u needs %llu",
                                body_size, req->width, req->height, hxfr_format_name(req->format),
                                req->stride, (unsigned long long)g.size);
        return;
    }
    struct hxfr__frame *f = hxfr__session_frame_get(s);
    if (!f) {
        hxfr__client_send_error(c, sid, HXFR_STATUS_INTERNAL, "no free frame buffer");
        return;
    }
    if (f->cap < g.size) {
        /* Grow only: a buffer keeps its pages across frames, so only a size
         * increase pays for fresh page faults. */
        c->pool_bytes -= f->cap;
        free(f->buf);
        f->buf = NULL;
        f->cap = 0;
        client_trim_pools(c, (size_t)g.size);
        f->buf = malloc((size_t)g.size);
        f->cap = f->buf ? (size_t)g.size : 0;
        c->pool_bytes += f->cap;
        if (!f->buf) {
            hxfr__client_send_error(c, sid, HXFR_STATUS_INTERNAL,
                                    "out of memory for a %llu-byte frame",
                                    (unsigned long long)g.size);
            return;
        }
    }
    memset(&f->img, 0, sizeof(f->img));
    f->img.format = g.format;
    f->img.width = g.width;
    f->img.height = g.height;
    for (uint32_t i = 0; i < g.num_planes && i < 3; i++) {
        f->img.planes[i] = f->buf + g.offset[i];
        f->img.strides[i] = g.stride[i];
    }
    frame_prepare(s, f, req);
    f->source = &inline_source;
    f->fill = 0;
    f->state = HXFR__FRAME_FILLING;
    c->inflight++;
    c->body_mode = HXFR__BODY_FRAME;
    c->body_frame = f;
}

static void handle_frame_resource(struct hxfr__client *c, struct hxfr__session *s,
                                  const struct hxfr_msg *m)
{
    struct hxfr_host *h = c->host;
    const struct hxfr_frame_request *req = &m->u.frame_request;
    uint16_t sid = m->hdr.session_id;

    if (!h->cfg.resolver.acquire) {
        hxfr__client_send_error(c, sid, HXFR_STATUS_RESOURCE_NOT_FOUND,
                                "resource %u: this server resolves no resources "
                                "(send pixels inline)",
                                req->resource_id);
        return;
    }
    struct hxfr__frame *f = hxfr__session_frame_get(s);
    if (!f) {
        hxfr__client_send_error(c, sid, HXFR_STATUS_INTERNAL, "no free frame slot");
        return;
    }
    int r = h->cfg.resolver.acquire(h->cfg.resolver.opaque, req->resource_id, req, &f->ext);
    if (r < 0) {
        int32_t code = r == -ENOENT    ? HXFR_STATUS_RESOURCE_NOT_FOUND
                       : r == -ENOTSUP ? HXFR_STATUS_NOT_GPU_TEXTURE
                                       : HXFR_STATUS_INTERNAL;
        hxfr__client_send_error(c, sid, code, "resource %u: %s", req->resource_id, strerror(-r));
        return;
    }
    /* From here on the resource is ours until release. */
    f->source = &resolver_source;
    const struct hxfr_host_pixels *px = &f->ext;
    struct hxfr_geometry g;
    r = check_limits(h, px->format, px->width, px->height, px->strides[0], &g);
    bool ok = r == 0;
    for (uint32_t i = 0; ok && i < g.num_planes; i++) {
        ok = px->planes[i] != NULL && px->strides[i] >= g.stride[i];
    }
    if (!ok) {
        hxfr__client_send_error(c, sid, r < 0 ? geometry_status(r) : HXFR_STATUS_BAD_GEOMETRY,
                                "resource %u: unusable pixels %ux%u format 0x%08x: %s",
                                req->resource_id, px->width, px->height, px->format,
                                r < 0 ? hxfr_strerror(r) : "missing plane or short stride");
        hxfr__frame_put(f);
        return;
    }
    memset(&f->img, 0, sizeof(f->img));
    f->img.format = px->format;
    f->img.width = px->width;
    f->img.height = px->height;
    for (uint32_t i = 0; i < g.num_planes; i++) {
        f->img.planes[i] = px->planes[i];
        f->img.strides[i] = px->strides[i];
    }
    frame_prepare(s, f, req);
    c->inflight++;
    hxfr__session_submit(s, f);
}

/* Pixels in a slot of the session's shared-memory ring: validated
 * against the ring's checked layout and encoded from the mapping in place
 * (the encoder's conversion reads the slot; nothing is copied here). */
static void handle_frame_shm(struct hxfr__client *c, const struct hxfr_msg *m)
{
    struct hxfr_host *h = c->host;
    const struct hxfr_frame_request *req = &m->u.frame_request;
    uint16_t sid = m->hdr.session_id;
    struct hxfr_geometry g;
    char why[160];

    struct hxfr__session *s = hxfr__session_get(c, sid, false);
    if (!s || !s->shm) {
        hxfr__client_send_error(c, sid, HXFR_STATUS_SHM,
                                "slot %u: session %u has no shared-memory ring (SHM_ATTACH "
                                "first)",
                                req->resource_id, (unsigned)sid);
        return;
    }
    int r = check_limits(h, req->format, req->width, req->height, req->stride, &g);
    if (r < 0) {
        hxfr__client_send_error(c, sid, geometry_status(r),
                                "frame %ux%u format 0x%08x stride %u: %s", req->width, req->height,
                                req->format, req->stride, hxfr_strerror(r));
        return;
    }
    struct hxfr__frame *f = hxfr__session_frame_get(s);
    if (!f) {
        hxfr__client_send_error(c, sid, HXFR_STATUS_INTERNAL, "no free frame slot");
        return;
    }
    int32_t status = hxfr__shm_frame_setup(s, f, req, &g, why, sizeof(why));
    if (status != HXFR_STATUS_OK) {
        hxfr__client_send_error(c, sid, status, "%s", why);
        return;
    }
    frame_prepare(s, f, req);
    c->inflight++;
    hxfr__session_submit(s, f);
}

static void handle_frame(struct hxfr__client *c, const struct hxfr_msg *m, uint32_t body_size)
{
    uint16_t sid = m->hdr.session_id;
    uint8_t flags = m->hdr.flags;

    if (flags & HXFR_FLAG_SHM) {
        handle_frame_shm(c, m);
        return;
    }
    if (!(flags & HXFR_FLAG_PIXEL_DATA) && body_size > 0) {
        hxfr__client_send_error(c, sid, HXFR_STATUS_INVALID_MSG,
                                "FRAME_REQUEST without PIXEL_DATA carries %u body bytes",
                                body_size);
        return;
    }
    struct hxfr__session *s = hxfr__session_get(c, sid, true);
    if (!s) {
        hxfr__client_send_error(c, sid, errno == EBUSY ? HXFR_STATUS_BUSY : HXFR_STATUS_INTERNAL,
                                "cannot open session %u: %s (limit %u per client)", (unsigned)sid,
                                strerror(errno), c->host->cfg.max_sessions);
        return;
    }
    if (flags & HXFR_FLAG_PIXEL_DATA) {
        handle_frame_inline(c, s, m, body_size);
    } else {
        handle_frame_resource(c, s, m);
    }
}

/* ---- Control messages ------------------------------------------------- */

static void handle_config(struct hxfr__client *c, const struct hxfr_msg *m)
{
    struct hxfr_host *h = c->host;
    const struct hxfr_config_req *q = &m->u.config_req;
    uint16_t sid = m->hdr.session_id;

    if (q->profile != 0 && q->profile != 66 && q->profile != 77 && q->profile != 100) {
        hxfr__client_send_error(c, sid, HXFR_STATUS_UNSUPPORTED,
                                "profile %u is not supported (66, 77 or 100)", q->profile);
        return;
    }
    if (q->level != 0 && (q->level < 10 || q->level > 62)) {
        hxfr__client_send_error(c, sid, HXFR_STATUS_UNSUPPORTED,
                                "level %u.%u is not an H.264 level", q->level / 10, q->level % 10);
        return;
    }
    if ((q->framerate_num == 0) != (q->framerate_den == 0) ||
        (q->framerate_num != 0 && q->framerate_num / q->framerate_den > 1000)) {
        hxfr__client_send_error(c, sid, HXFR_STATUS_INVALID_MSG, "framerate %u/%u is invalid",
                                q->framerate_num, q->framerate_den);
        return;
    }
    if (q->width > h->cfg.max_width || q->height > h->cfg.max_height) {
        hxfr__client_send_error(c, sid, HXFR_STATUS_TOO_LARGE,
                                "size %ux%u is above this server's limit %ux%u", q->width,
                                q->height, h->cfg.max_width, h->cfg.max_height);
        return;
    }
    if (q->gop > 100000) {
        hxfr__client_send_error(c, sid, HXFR_STATUS_INVALID_MSG,
                                "keyframe interval %u is above 100000", q->gop);
        return;
    }
    struct hxfr__session *s = hxfr__session_get(c, sid, true);
    if (!s) {
        hxfr__client_send_error(c, sid, errno == EBUSY ? HXFR_STATUS_BUSY : HXFR_STATUS_INTERNAL,
                                "cannot open session %u: %s", (unsigned)sid, strerror(errno));
        return;
    }
    struct hxfr_encoder_config n = s->cfg;
    n.bitrate = q->bitrate;
    n.framerate_num = q->framerate_num;
    n.framerate_den = q->framerate_den;
    n.profile = q->profile;
    n.level = q->level;
    n.realtime = q->realtime != 0;
    n.gop = q->gop ? q->gop : h->cfg.gop;
    if (n.bitrate != s->cfg.bitrate || n.framerate_num != s->cfg.framerate_num ||
        n.framerate_den != s->cfg.framerate_den || n.profile != s->cfg.profile ||
        n.level != s->cfg.level || n.realtime != s->cfg.realtime || n.gop != s->cfg.gop) {
        /* The next frame's worker sees the new generation and reopens the
         * encoder, starting with an IDR. */
        s->cfg = n;
        s->cfg_gen++;
    }

    struct hxfr_encoder_config eff = s->cfg;
    eff.width = q->width;
    eff.height = q->height;
    hxfr__encoder_config_defaults(&eff);

    struct hxfr_msg r;
    hxfr__msg_start(&r, HXFR_MSG_CONFIG_RESP, sid);
    r.u.config_resp.width = q->width;
    r.u.config_resp.height = q->height;
    r.u.config_resp.bitrate = eff.bitrate;
    r.u.config_resp.framerate_num = eff.framerate_num;
    r.u.config_resp.framerate_den = eff.framerate_den;
    r.u.config_resp.profile = eff.profile;
    r.u.config_resp.level = eff.level;
    r.u.config_resp.realtime = eff.realtime ? 1 : 0;
    r.u.config_resp.gop = eff.gop;
    snprintf(r.u.config_resp.encoder, sizeof(r.u.config_resp.encoder), "%s",
             s->codec[0] && s->cfg_gen == s->enc_gen ? s->codec
             : eff.codec                             ? eff.codec
                                                     : HXFR_DEFAULT_CODEC);
    hxfr__log(h, HXFR_HOST_LOG_DEBUG,
              "client %llu session %u: config %u bit/s %u/%u fps profile %u level %u gop %u",
              (unsigned long long)c->id, (unsigned)sid, eff.bitrate, eff.framerate_num,
              eff.framerate_den, eff.profile, eff.level, eff.gop);
    hxfr__client_send_msg(c, &r);
}

static void handle_hello(struct hxfr__client *c, const struct hxfr_msg *m)
{
    struct hxfr_host *h = c->host;
    const struct hxfr_hello *q = &m->u.hello;

    if (q->version < HXFR_VERSION_1) {
        /* Like HELLO_RESP, the answer to a HELLO does not wait for frames. */
        hxfr__client_send_error_now(c, m->hdr.session_id, HXFR_STATUS_INVALID_MSG,
                                    "HELLO with version %u (this server speaks 1)", q->version);
        return;
    }
    c->hello = true;
    c->peer_caps = q->caps;

    struct hxfr_msg r;
    hxfr__msg_start(&r, HXFR_MSG_HELLO_RESP, m->hdr.session_id);
    r.u.hello.version = HXFR_VERSION_1;
    r.u.hello.caps = q->caps & (HXFR_HOST_CAPS | hxfr__shm_caps(c));
    r.u.hello.max_width = h->cfg.max_width;
    r.u.hello.max_height = h->cfg.max_height;
    hxfr__client_send_msg(c, &r);
}

static void handle_message(struct hxfr__client *c, const struct hxfr_parse_result *res)
{
    const struct hxfr_msg *m = &res->msg;
    uint16_t sid = m->hdr.session_id;

    c->requests++;
    switch (m->hdr.type) {
    case HXFR_MSG_PING: {
        struct hxfr_msg r;
        hxfr__msg_start(&r, HXFR_MSG_PONG, sid);
        hxfr__client_send_msg(c, &r);
        break;
    }
    case HXFR_MSG_HELLO:
        handle_hello(c, m);
        break;
    case HXFR_MSG_CONFIG_REQ:
        handle_config(c, m);
        break;
    case HXFR_MSG_KEYFRAME_REQ: {
        if (hxfr__scanout_keyframe_req(c, sid)) {
            break;
        }
        /* A session that does not exist yet starts with an IDR anyway. */
        struct hxfr__session *s = hxfr__session_get(c, sid, false);
        if (s) {
            s->force_idr_next = true;
        }
        break;
    }
    case HXFR_MSG_FRAME_REQUEST:
        handle_frame(c, m, res->body_size);
        break;
    case HXFR_MSG_SHM_ATTACH:
        hxfr__shm_handle_attach(c, m);
        break;
    case HXFR_MSG_ENABLE_SCANOUT:
        hxfr__scanout_handle_enable(c, m);
        break;
    case HXFR_MSG_DISABLE_SCANOUT:
        hxfr__scanout_handle_disable(c, m);
        break;
    case HXFR_MSG_SUBSCRIBE:
        hxfr__scanout_handle_subscribe(c, m);
        break;
    case HXFR_MSG_ERROR:
        /* Never answer an ERROR with an ERROR: two confused peers would
         * bounce them forever. */
        hxfr__log(c->host, HXFR_HOST_LOG_WARN, "client %llu sent ERROR %s: %s",
                  (unsigned long long)c->id, hxfr_status_name(m->u.error.code), m->u.error.message);
        break;
    default:
        hxfr__client_send_error(
            c, sid, HXFR_STATUS_INVALID_MSG, "%s is not a request a server accepts",
            hxfr_msg_type_name(m->hdr.type) ? hxfr_msg_type_name(m->hdr.type) : "unknown type");
        break;
    }
    if (c->body_mode == HXFR__BODY_NONE && hxfr_parser_body_remaining(&c->parser) > 0) {
        c->body_mode = HXFR__BODY_DISCARD;
    }
}

/* ---- Input ------------------------------------------------------------ */

static void frame_body_done(struct hxfr__client *c)
{
    struct hxfr__frame *f = c->body_frame;
    c->body_frame = NULL;
    c->body_mode = HXFR__BODY_NONE;
    hxfr__session_submit(f->session, f);
}

static void count_copied(struct hxfr__client *c, struct hxfr__frame *f, size_t n)
{
    c->pixel_bytes_copied += n;
    f->session->pixel_bytes_copied += n;
    c->host->stats.pixel_bytes_copied += n;
}

/* Stream offset of the next byte not yet consumed. */
static uint64_t stream_pos(const struct hxfr__client *c)
{
    return c->rx_bytes - (uint64_t)(c->rlen - c->rpos);
}

/* Received fds whose bytes hold no unhandled message header any more can
 * never be claimed: close them. */
static void sweep_fds(struct hxfr__client *c)
{
    if (c->nfdq == 0) {
        return;
    }
    uint64_t next = stream_pos(c);
    if (!hxfr_parser_idle(&c->parser)) {
        uint32_t rem = hxfr_parser_body_remaining(&c->parser);
        next = rem > 0 ? next + rem : c->msg_start;
    }
    hxfr__client_fds_sweep(c, next);
}

/* Parses what sits in rbuf. Stops when rbuf is empty, the window is full
 * (c->paused), or the client is cut or closing. */
static void process_input(struct hxfr__client *c)
{
    struct hxfr_host *h = c->host;

    while (c->rpos < c->rlen && !c->cut && !c->closing) {
        size_t avail = c->rlen - c->rpos;
        if (c->body_mode == HXFR__BODY_FRAME) {
            struct hxfr__frame *f = c->body_frame;
            uint32_t rem = hxfr_parser_body_remaining(&c->parser);
            size_t n = avail < rem ? avail : rem;
            memcpy(f->buf + f->fill, c->rbuf + c->rpos, n);
            hxfr_parser_body_advance(&c->parser, (uint32_t)n);
            f->fill += n;
            c->rpos += n;
            count_copied(c, f, n);
            if (hxfr_parser_body_remaining(&c->parser) == 0) {
                frame_body_done(c);
            }
            continue;
        }
        if (c->body_mode == HXFR__BODY_DISCARD) {
            uint32_t rem = hxfr_parser_body_remaining(&c->parser);
            size_t n = avail < rem ? avail : rem;
            hxfr_parser_body_advance(&c->parser, (uint32_t)n);
            c->rpos += n;
            if (hxfr_parser_body_remaining(&c->parser) == 0) {
                c->body_mode = HXFR__BODY_NONE;
            }
            continue;
        }
        if (c->inflight >= h->cfg.window && hxfr_parser_idle(&c->parser)) {
            c->paused = true;
            return;
        }
        if (hxfr_parser_idle(&c->parser)) {
            c->msg_start = stream_pos(c);
        }
        struct hxfr_parse_result res;
        int r = hxfr_parser_feed(&c->parser, c->rbuf + c->rpos, avail, &res);
        if (r < 0) {
            client_fatal(c, "framing error: %s", hxfr_strerror(r));
            return;
        }
        c->rpos += (size_t)r;
        if (res.event == HXFR_PARSE_MESSAGE) {
            c->greeted = true;
            handle_message(c, &res);
        } else if (res.event == HXFR_PARSE_BODY) {
            /* Bodies are consumed above, never through the parser; a chunk
             * here would mean a body nobody claimed: drop it. */
            continue;
        } else if (r == 0) {
            break;
        }
    }
    if (c->rpos == c->rlen) {
        c->rpos = c->rlen = 0;
    }
    sweep_fds(c);
}

static void on_eof(struct hxfr__client *c)
{
    if (c->lingering) {
        client_cut(c, "closed after a protocol error");
        return;
    }
    if (c->body_mode != HXFR__BODY_NONE || !hxfr_parser_idle(&c->parser) || c->rpos < c->rlen) {
        client_cut(c, "peer closed in the middle of a message");
        return;
    }
    c->eof = true;
}

static void read_input(struct hxfr__client *c)
{
    size_t budget = READ_BUDGET;

    while (!c->cut && budget > 0) {
        if (c->lingering) {
            /* After a fatal error: drain and drop until EOF. */
            ssize_t n = hxfr__client_recv(c, c->rbuf, sizeof(c->rbuf), false);
            if (n == -EINTR) {
                continue;
            }
            if (n == -EAGAIN || n == -EWOULDBLOCK) {
                return;
            }
            if (n <= 0) {
                client_cut(c, "closed after a protocol error");
                return;
            }
            budget -= (size_t)n < budget ? (size_t)n : budget;
            continue;
        }
        if (c->closing || c->paused || c->eof || c->host->stopping) {
            return;
        }
        uint8_t *dst;
        size_t want;
        bool direct = c->body_mode == HXFR__BODY_FRAME && c->rpos == c->rlen;
        if (direct) {
            /* Straight from the socket into the buffer the encoder converts
             * from: the only copy the pixels see on this path. */
            struct hxfr__frame *f = c->body_frame;
            dst = f->buf + f->fill;
            want = hxfr_parser_body_remaining(&c->parser);
        } else {
            if (c->rpos < c->rlen) {
                size_t before = c->rpos;
                process_input(c);
                if (c->rpos == before && c->rlen > 0 && !c->paused && !c->closing && !c->cut) {
                    /* The parser took nothing: never spin on it. */
                    client_cut(c, "internal error: input not consumed");
                }
                continue;
            }
            dst = c->rbuf;
            want = sizeof(c->rbuf);
        }
        if (want > budget) {
            want = budget;
        }
        ssize_t n = hxfr__client_recv(c, dst, want, true);
        if (n < 0) {
            if (n == -EINTR) {
                continue;
            }
            if (n == -EAGAIN || n == -EWOULDBLOCK) {
                return;
            }
            client_cut(c, "read failed: %s", strerror((int)-n));
            return;
        }
        if (n == 0) {
            on_eof(c);
            return;
        }
        budget -= (size_t)n;
        c->last_activity_ms = hxfr__now_ms();
        if (direct) {
            struct hxfr__frame *f = c->body_frame;
            hxfr_parser_body_advance(&c->parser, (uint32_t)n);
            f->fill += (size_t)n;
            count_copied(c, f, (size_t)n);
            if (hxfr_parser_body_remaining(&c->parser) == 0) {
                frame_body_done(c);
            }
            sweep_fds(c);
        } else {
            c->rpos = 0;
            c->rlen = (size_t)n;
            process_input(c);
        }
    }
}

static void start_linger(struct hxfr__client *c)
{
    /* The ERROR is out. Shut our write side and drain the peer's input
     * until it closes: closing with unread input would reset a TCP
     * connection and could destroy the ERROR before the peer reads it. */
    shutdown(c->fd, SHUT_WR);
    c->lingering = true;
}

/* Closes the client if it is done for; returns true if it did. */
static bool client_settle(struct hxfr__client *c)
{
    if (c->fd < 0) {
        return true;
    }
    if (c->cut) {
        hxfr__client_close(c, c->cut_reason);
        return true;
    }
    if (c->closing && !c->out_head && !c->lingering) {
        start_linger(c);
    }
    if (c->eof && c->inflight == 0 && !c->out_head && c->body_mode == HXFR__BODY_NONE) {
        hxfr__client_close(c, "peer closed the connection");
        return true;
    }
    hxfr__client_update_events(c);
    return false;
}

void hxfr__client_on_event(struct hxfr__client *c, uint32_t events)
{
    if (c->fd < 0) {
        return;
    }
    if (events & EPOLLERR) {
        int err = 0;
        socklen_t len = sizeof(err);
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        client_cut(c, "socket error: %s", strerror(err ? err : EIO));
    }
    if (!c->cut && (events & EPOLLOUT)) {
        hxfr__client_flush(c);
    }
    if (!c->cut && (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP))) {
        read_input(c);
    }
    if (!c->cut && (events & EPOLLHUP) && !(c->events & EPOLLIN)) {
        /* Both directions are gone and we are not reading (window full or
         * closing): nothing can reach the peer any more. */
        client_cut(c, "peer hung up");
    }
    client_settle(c);
}

void hxfr__client_resume(struct hxfr__client *c)
{
    if (c->fd < 0) {
        return;
    }
    if (c->paused && c->inflight < c->host->cfg.window) {
        c->paused = false;
        /* Requests already buffered go first; EPOLLIN comes back on in
         * client_settle() if this does not fill the window again. */
        process_input(c);
    }
    client_settle(c);
}

void hxfr__client_tick(struct hxfr__client *c, uint64_t now_ms)
{
    struct hxfr_host *h = c->host;

    if (c->fd < 0) {
        return;
    }
    if (c->closing && now_ms >= c->linger_deadline_ms) {
        client_cut(c, c->lingering ? "closed after a protocol error"
                                   : "closed after a protocol error (output not drained)");
    } else if (!c->greeted && h->cfg.handshake_timeout_ms != HXFR_HOST_TIMEOUT_NEVER &&
               now_ms - c->accepted_ms >= h->cfg.handshake_timeout_ms &&
               (!c->is_unix || h->full_ms >= c->accepted_ms)) {
        /* Connections that never say anything would otherwise hold a
         * max_clients slot forever (idle_timeout is opt-in). Over UNIX
         * sockets only if the server was full since this one connected:
         * QEMU's socket chardev connects when the VM starts, and its guest
         * may take longer than the deadline to boot and say something. */
        hxfr__log(h, HXFR_HOST_LOG_WARN,
                  "client %llu (%s) sent no complete message within %u ms: closing",
                  (unsigned long long)c->id, c->peer, h->cfg.handshake_timeout_ms);
        client_cut(c, "handshake timeout");
    } else if (h->cfg.idle_timeout_ms && c->inflight == 0 &&
               now_ms - c->last_activity_ms >= h->cfg.idle_timeout_ms) {
        hxfr__log(h, HXFR_HOST_LOG_WARN, "client %llu idle for %u ms", (unsigned long long)c->id,
                  h->cfg.idle_timeout_ms);
        client_cut(c, "idle timeout");
    }
    client_settle(c);
}

/* Called by the host when it starts stopping: frames still arriving are
 * abandoned (their bodies will never be read). */
void hxfr__client_stop_reading(struct hxfr__client *c)
{
    if (c->body_frame) {
        hxfr__frame_put(c->body_frame);
        c->body_frame = NULL;
        c->body_mode = HXFR__BODY_NONE;
        if (c->inflight > 0) {
            c->inflight--;
        }
    }
    hxfr__client_update_events(c);
}
