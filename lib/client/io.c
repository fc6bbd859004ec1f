/* The I/O pump (client-private.h): non-blocking reads fed to the parser,
 * writes that keep reading while the fd is not writable, waits with a
 * deadline, awaiting one reply, and dropping a connection that failed
 * (its frames failed, DISCONNECTED reported). */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client-private.h"

void hxfr__guest_close_fd(struct hxfr_client *c)
{
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    hxfr_parser_init(&c->parser, c->o.max_body);
    c->in_pos = c->in_len = 0;
    c->body_len = 0;
    c->awaiting = 0;
    /* reply_ready and the PONG count survive: a reply that arrived just
     * before the host closed still answers the call waiting for it. They
     * are reset when a new connection is adopted (adopt_fd). */
}

int hxfr__guest_lost(struct hxfr_client *c, int err)
{
    hxfr__guest_close_fd(c);
    c->force_next_keyframe = true;
    c->lost_failed = c->count;
    while (c->count > 0) {
        struct hxfr_client_result res = {.status = err};
        hxfr__guest_deliver(c, &res);
    }
    struct hxfr_client_event ev = {.type = HXFR_CLIENT_EVENT_DISCONNECTED, .err = err};
    hxfr__guest_emit_event(c, &ev);
    return err;
}

static int ensure_body_cap(struct hxfr_client *c, size_t need)
{
    /* The parser already refused anything above max_body, so growth is
     * bounded by it. */
    if (need <= c->body_cap) {
        return 0;
    }
    size_t cap = c->body_cap ? c->body_cap : BODY_MIN_CAP;
    while (cap < need) {
        cap *= 2;
    }
    if (cap > c->o.max_body) {
        cap = c->o.max_body;
    }
    uint8_t *b = realloc(c->body, cap);
    if (!b) {
        return -ENOMEM;
    }
    c->body = b;
    c->body_cap = cap;
    return 0;
}

/* Feeds the staged input to the parser and handles complete messages. */
static int process_input(struct hxfr_client *c)
{
    while (c->in_pos < c->in_len) {
        struct hxfr_parse_result res;
        int n = hxfr_parser_feed(&c->parser, c->in + c->in_pos, c->in_len - c->in_pos, &res);
        if (n < 0) {
            return n;
        }
        c->in_pos += (size_t)n;
        if (res.event == HXFR_PARSE_NEED_MORE) {
            break;
        }
        if (res.event == HXFR_PARSE_MESSAGE) {
            c->cur = res.msg;
            c->body_len = 0;
            if (res.body_size > 0) {
                int r = ensure_body_cap(c, res.body_size);
                if (r < 0) {
                    return r;
                }
                continue;
            }
        } else {
            memcpy(c->body + c->body_len, res.chunk, res.chunk_size);
            c->body_len += res.chunk_size;
            if (res.body_remaining > 0) {
                continue;
            }
        }
        int r = hxfr__guest_handle_message(c);
        if (r < 0) {
            return r;
        }
        if (c->fd < 0) {
            break;
        }
    }
    if (c->in_pos == c->in_len) {
        c->in_pos = c->in_len = 0;
    }
    return 0;
}

/* One non-blocking read and everything it completes. Returns 1 if bytes
 * were read, 0 if none were available, or an error (-ECONNRESET for EOF, a
 * read error, a protocol violation); the caller drops the connection. */
static int read_input(struct hxfr_client *c)
{
    if (c->fd < 0) {
        return -ENOTCONN;
    }
    uint32_t remaining = hxfr_parser_body_remaining(&c->parser);
    bool direct = c->in_pos == c->in_len && remaining >= READ_DIRECT_MIN;
    uint8_t *dst;
    size_t cap;
    if (direct) {
        /* Large bodies go straight from the fd into the body buffer. */
        dst = c->body + c->body_len;
        cap = remaining;
    } else {
        if (c->in_pos > 0) {
            /* The parser takes all input it is given, so this is normally
             * empty; keep unread bytes anyway so a read never gets a zero
             * length (which would look like EOF). */
            memmove(c->in, c->in + c->in_pos, c->in_len - c->in_pos);
            c->in_len -= c->in_pos;
            c->in_pos = 0;
        }
        dst = c->in + c->in_len;
        cap = IN_BUF_SIZE - c->in_len;
    }
    ssize_t n;
    do {
        n = read(c->fd, dst, cap);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return 0;
        }
        /* A pty or virtio-serial port whose other side went away reports
         * EIO: the host is gone, like ECONNRESET on a socket. */
        return errno == EIO ? -ECONNRESET : -errno;
    }
    if (n == 0) {
        return -ECONNRESET;
    }
    int r;
    if (direct) {
        c->body_len += (size_t)n;
        r = hxfr_parser_body_advance(&c->parser, (uint32_t)n);
        if (r == 0 && hxfr_parser_body_remaining(&c->parser) == 0) {
            r = hxfr__guest_handle_message(c);
        }
    } else {
        c->in_len += (size_t)n;
        r = process_input(c);
    }
    return r < 0 ? r : 1;
}

/* read_input(), dropping the connection on an error. Returns 1, 0, or a
 * connection error after which the connection is already dropped (frames
 * failed, event sent). */
static int pump_once(struct hxfr_client *c)
{
    int r = read_input(c);
    if (r < 0 && c->fd >= 0) {
        return hxfr__guest_lost(c, r);
    }
    return r;
}

int hxfr__guest_lost_after_write(struct hxfr_client *c, int err)
{
    for (unsigned i = 0; i < DRAIN_READS_MAX && c->fd >= 0; i++) {
        if (read_input(c) <= 0) {
            break;
        }
    }
    return c->fd >= 0 ? hxfr__guest_lost(c, err) : err;
}

int hxfr__guest_pump(struct hxfr_client *c)
{
    for (;;) {
        int r = pump_once(c);
        if (r <= 0) {
            return r;
        }
    }
}

int hxfr__guest_wait_input(struct hxfr_client *c, uint64_t deadline)
{
    if (c->fd < 0) {
        return -ENOTCONN;
    }
    struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
    int r;
    do {
        r = poll(&pfd, 1, poll_timeout(deadline));
    } while (r < 0 && errno == EINTR);
    if (r < 0) {
        return -errno;
    }
    if (r == 0) {
        return 0;
    }
    r = hxfr__guest_pump(c);
    return r < 0 ? r : 1;
}

int hxfr__guest_send_iov(struct hxfr_client *c, struct iovec *iov, size_t iovcnt)
{
    if (c->fd < 0) {
        /* Lost while a reply was read (the reply still counted). */
        return -ENOTCONN;
    }
    size_t idx = 0;
    uint64_t deadline = deadline_after(c->o.io_timeout_ms);
    while (idx < iovcnt) {
        if (iov[idx].iov_len == 0) {
            idx++;
            continue;
        }
        int cnt = iovcnt - idx > (size_t)IOV_MAX ? IOV_MAX : (int)(iovcnt - idx);
        ssize_t n;
        if (c->is_socket) {
            struct msghdr mh = {.msg_iov = iov + idx, .msg_iovlen = (size_t)cnt};
            n = sendmsg(c->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
        } else {
            n = writev(c->fd, iov + idx, cnt);
        }
        if (n > 0) {
            size_t left = (size_t)n;
            while (left > 0 && left >= iov[idx].iov_len) {
                left -= iov[idx].iov_len;
                idx++;
            }
            if (left > 0) {
                iov[idx].iov_base = (uint8_t *)iov[idx].iov_base + left;
                iov[idx].iov_len -= left;
            }
            deadline = deadline_after(c->o.io_timeout_ms);
            continue;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            return hxfr__guest_lost_after_write(c, errno == EIO ? -ECONNRESET : -errno);
        }
        struct pollfd pfd = {.fd = c->fd, .events = POLLIN | POLLOUT};
        int r = poll(&pfd, 1, poll_timeout(deadline));
        if (r < 0 && errno != EINTR) {
            return hxfr__guest_lost(c, -errno);
        }
        if (r == 0) {
            return hxfr__guest_lost(c, -ETIMEDOUT);
        }
        if (r > 0 && (pfd.revents & (POLLIN | POLLHUP | POLLERR))) {
            /* Read what the host sent so it is never blocked writing to
             * us while we are blocked writing to it. */
            r = hxfr__guest_pump(c);
            if (r < 0) {
                return r;
            }
        }
    }
    return 0;
}

int hxfr__guest_send_msg_session(struct hxfr_client *c, struct hxfr_msg *m, uint16_t session_id)
{
    uint8_t buf[HXFR_HEADER_SIZE + HXFR_MAX_FIXED_SIZE];
    m->hdr.session_id = session_id;
    int n = hxfr_msg_encode(m, 0, buf, sizeof(buf));
    if (n < 0) {
        return n;
    }
    struct iovec iov = {.iov_base = buf, .iov_len = (size_t)n};
    return hxfr__guest_send_iov(c, &iov, 1);
}

int hxfr__guest_send_msg(struct hxfr_client *c, struct hxfr_msg *m)
{
    return hxfr__guest_send_msg_session(c, m, c->o.session_id);
}

bool hxfr__guest_closed_by_host(int err)
{
    return err == -ECONNRESET || err == -EPIPE;
}

int hxfr__guest_await_reply(struct hxfr_client *c, uint8_t type, int timeout_ms,
                            struct hxfr_msg *out)
{
    c->awaiting = type;
    c->reply_ready = false;
    uint64_t deadline = deadline_after(timeout_ms);
    int r = 0;
    while (!c->reply_ready) {
        r = hxfr__guest_wait_input(c, deadline);
        if (r < 0 && !(c->reply_ready && hxfr__guest_closed_by_host(r))) {
            c->reply_ready = false;
            goto out;
        }
        if (r == 0 && !c->reply_ready) {
            r = -ETIMEDOUT;
            goto out;
        }
    }
    *out = c->reply;
    r = c->reply.hdr.type == HXFR_MSG_ERROR ? -HXFR_EREMOTE : 0;
out:
    c->awaiting = 0;
    c->reply_ready = false;
    return r;
}
