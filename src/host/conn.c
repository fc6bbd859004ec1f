/* Connection I/O (conn.h).
 *
 * Descriptors: on UNIX sockets every read is a recvmsg. The fds of one
 * read are queued with the stream range the read returned; the message
 * whose header starts in that range (an SHM_ATTACH) takes them, and the
 * owner expires whatever no message can claim any more, so no fd stays
 * open that nothing uses. Output: one iovec per queued message, written
 * with sendmsg until the socket would block.
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

#include "clock.h"
#include "conn.h"

#define IOV_BATCH 64

void hxfr__conn_cut(struct hxfr__conn *cn, const char *fmt, ...)
{
    if (cn->cut) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cn->cut_reason, sizeof(cn->cut_reason), fmt, ap);
    va_end(ap);
    cn->cut = true;
}

/* Describes the peer for the log: address for TCP/vsock, pid for UNIX. */
static void describe_peer(struct hxfr__conn *cn)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);

    snprintf(cn->peer, sizeof(cn->peer), "unknown peer");
    if (getpeername(cn->fd, (struct sockaddr *)&ss, &len) < 0) {
        return;
    }
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;
        char a[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &in->sin_addr, a, sizeof(a));
        snprintf(cn->peer, sizeof(cn->peer), "tcp:%s:%u", a, ntohs(in->sin_port));
        cn->is_tcp = true;
    } else if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ss;
        char a[INET6_ADDRSTRLEN];
        inet_ntop(AF_INET6, &in6->sin6_addr, a, sizeof(a));
        snprintf(cn->peer, sizeof(cn->peer), "tcp:[%s]:%u", a, ntohs(in6->sin6_port));
        cn->is_tcp = true;
    } else if (ss.ss_family == AF_UNIX) {
        cn->is_unix = true;
        struct ucred cred;
        socklen_t clen = sizeof(cred);
        if (getsockopt(cn->fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) == 0) {
            snprintf(cn->peer, sizeof(cn->peer), "unix pid %ld uid %ld", (long)cred.pid,
                     (long)cred.uid);
        } else {
            snprintf(cn->peer, sizeof(cn->peer), "unix");
        }
    } else {
        snprintf(cn->peer, sizeof(cn->peer), "family %d", (int)ss.ss_family);
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

int hxfr__conn_open(struct hxfr__conn *cn, int fd, int epfd, void *watch)
{
    cn->fd = fd;
    cn->epfd = epfd;
    cn->watch = watch;
    describe_peer(cn);
    if (cn->is_tcp) {
        tcp_keepalive(fd);
    }
    cn->last_activity_ms = hxfr__now_ms();
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = watch};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        cn->fd = -1;
        return -errno;
    }
    cn->events = ev.events;
    cn->reading = true;
    return 0;
}

void hxfr__conn_close(struct hxfr__conn *cn)
{
    if (cn->fd < 0) {
        return;
    }
    epoll_ctl(cn->epfd, EPOLL_CTL_DEL, cn->fd, NULL);
    close(cn->fd);
    cn->fd = -1;
    hxfr__conn_fds_close(cn);
    struct hxfr__outq_entry *e;
    while ((e = hxfr__queue_pop_entry(&cn->outq, struct hxfr__outq_entry, link))) {
        hxfr__outbuf_unref(e->buf);
        free(e);
    }
    cn->out_bytes = 0;
    cn->out_count = 0;
}

/* ---- Input and descriptors -------------------------------------------- */

void hxfr__fd_batch_close(struct hxfr__fd_batch *b)
{
    for (int i = 0; i < b->nfds; i++) {
        close(b->fds[i]);
    }
    b->nfds = 0;
}

static void batch_remove(struct hxfr__conn *cn, unsigned i)
{
    cn->fds_held -= (uint32_t)cn->fdq[i].nfds;
    memmove(&cn->fdq[i], &cn->fdq[i + 1], (cn->nfdq - i - 1) * sizeof(cn->fdq[0]));
    cn->nfdq--;
}

ssize_t hxfr__conn_recv(struct hxfr__conn *cn, void *buf, size_t len, bool keep_fds)
{
    int fds[HXFR_RECV_FDS_CAP];
    int nfds = 0;
    bool truncated = false;
    ssize_t n;

    if (!cn->is_unix) {
        n = read(cn->fd, buf, len);
        if (n < 0) {
            return -errno;
        }
        cn->rx_bytes += (uint64_t)n;
        return n;
    }
    /* Keep every fd the control buffer holds, so a surplus is seen (and
     * refused) by the owner instead of being closed silently. */
    n = hxfr__recv_with_fds(cn->fd, buf, len, fds, keep_fds ? HXFR_RECV_FDS_CAP : 0,
                            keep_fds ? &nfds : NULL, keep_fds ? &truncated : NULL);
    if (n < 0) {
        for (int i = 0; i < nfds; i++) {
            close(fds[i]);
        }
        return n;
    }
    uint64_t start = cn->rx_bytes;
    cn->rx_bytes += (uint64_t)n;
    if (nfds == 0 && !truncated) {
        return n;
    }
    if (n == 0 || cn->nfdq >= HXFR__CONN_FD_BATCHES) {
        /* Each read brings at most one batch and the owner parses a read
         * before the next one, so a full queue means descriptors keep
         * coming without messages to claim them. */
        for (int i = 0; i < nfds; i++) {
            close(fds[i]);
        }
        if (n > 0) {
            hxfr__conn_cut(cn, "file descriptors sent faster than messages claim them");
        }
        return n;
    }
    struct hxfr__fd_batch *b = &cn->fdq[cn->nfdq++];
    b->start = start;
    b->end = cn->rx_bytes;
    b->nfds = nfds;
    b->truncated = truncated;
    memcpy(b->fds, fds, (size_t)nfds * sizeof(int));
    cn->fds_held += (uint32_t)nfds;
    return n;
}

bool hxfr__conn_fds_take(struct hxfr__conn *cn, uint64_t at, struct hxfr__fd_batch *out)
{
    for (unsigned i = 0; i < cn->nfdq; i++) {
        if (cn->fdq[i].start <= at && at < cn->fdq[i].end) {
            *out = cn->fdq[i];
            batch_remove(cn, i);
            return true;
        }
    }
    return false;
}

bool hxfr__conn_fds_expire(struct hxfr__conn *cn, uint64_t next_header, struct hxfr__fd_batch *out)
{
    for (unsigned i = 0; i < cn->nfdq; i++) {
        if (next_header >= cn->fdq[i].end) {
            *out = cn->fdq[i];
            batch_remove(cn, i);
            struct hxfr__fd_batch copy = *out;
            hxfr__fd_batch_close(&copy);
            return true;
        }
    }
    return false;
}

void hxfr__conn_fds_close(struct hxfr__conn *cn)
{
    for (unsigned i = 0; i < cn->nfdq; i++) {
        hxfr__fd_batch_close(&cn->fdq[i]);
    }
    cn->nfdq = 0;
    cn->fds_held = 0;
}

/* ---- Output ------------------------------------------------------------ */

static void update_events(struct hxfr__conn *cn)
{
    if (cn->fd < 0) {
        return;
    }
    uint32_t want = 0;
    if (cn->reading && !cn->cut) {
        want |= EPOLLIN | EPOLLRDHUP;
    }
    if (hxfr__conn_has_output(cn) && !cn->cut) {
        want |= EPOLLOUT;
    }
    if (want != cn->events) {
        struct epoll_event ev = {.events = want, .data.ptr = cn->watch};
        if (epoll_ctl(cn->epfd, EPOLL_CTL_MOD, cn->fd, &ev) == 0) {
            cn->events = want;
        }
    }
}

void hxfr__conn_set_reading(struct hxfr__conn *cn, bool reading)
{
    cn->reading = reading;
    update_events(cn);
}

void hxfr__conn_flush(struct hxfr__conn *cn)
{
    while (hxfr__conn_has_output(cn) && !cn->cut && cn->fd >= 0) {
        struct iovec iov[IOV_BATCH];
        int n = 0;
        for (struct hxfr__outq_entry *e =
                 hxfr__queue_first(&cn->outq, struct hxfr__outq_entry, link);
             e && n < IOV_BATCH; e = hxfr__queue_next(e, struct hxfr__outq_entry, link)) {
            iov[n].iov_base = e->buf->data + e->off;
            iov[n].iov_len = e->buf->len - e->off;
            n++;
        }
        struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)n};
        ssize_t w = sendmsg(cn->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                break;
            }
            hxfr__conn_cut(cn, "write failed: %s", strerror(errno));
            break;
        }
        cn->last_activity_ms = hxfr__now_ms();
        size_t left = (size_t)w;
        cn->out_bytes -= left;
        while (left > 0) {
            struct hxfr__outq_entry *e =
                hxfr__queue_first(&cn->outq, struct hxfr__outq_entry, link);
            size_t rem = e->buf->len - e->off;
            if (left < rem) {
                e->off += left;
                break;
            }
            left -= rem;
            hxfr__queue_pop(&cn->outq);
            cn->out_count--;
            hxfr__outbuf_unref(e->buf);
            free(e);
        }
    }
    update_events(cn);
}

int hxfr__conn_send(struct hxfr__conn *cn, struct hxfr__outbuf *buf)
{
    if (!buf) {
        return -EINVAL;
    }
    if (cn->cut || cn->fd < 0) {
        hxfr__outbuf_unref(buf);
        return -EPIPE;
    }
    if (cn->out_bytes + buf->len > cn->max_output) {
        hxfr__outbuf_unref(buf);
        if (cn->log) {
            hxfr__log(cn->log, HXFR_HOST_LOG_WARN,
                      "client %llu: output queue over %zu bytes (not reading its responses)",
                      (unsigned long long)cn->id, cn->max_output);
        }
        hxfr__conn_cut(cn, "output queue over the limit of %zu bytes", cn->max_output);
        return -ENOBUFS;
    }
    struct hxfr__outq_entry *e = malloc(sizeof(*e));
    if (!e) {
        hxfr__outbuf_unref(buf);
        hxfr__conn_cut(cn, "out of memory");
        return -ENOMEM;
    }
    e->buf = buf;
    e->off = 0;
    hxfr__queue_push(&cn->outq, &e->link);
    cn->out_bytes += buf->len;
    cn->out_count++;
    /* Write at once: most responses go out without another epoll round. */
    hxfr__conn_flush(cn);
    return 0;
}
