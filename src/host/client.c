/* Clients (client.h).
 *
 * Input: small messages and headers are read into rbuf and parsed. When a
 * FRAME_REQUEST with inline pixels is accepted, its body is read from the
 * socket straight into the session's pooled frame buffer (the bytes that
 * already sit in rbuf are moved there first), and the parser is told with
 * hxfr_parser_body_advance(). A rejected request's body is skipped the same
 * way without being stored. With a full window the client's input is not
 * parsed and EPOLLIN is off: the kernel's socket buffer is the only queue.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "answer.h"
#include "clock.h"
#include "client.h"
#include "request.h"
#include "scanout.h"
#include "session.h"

#define READ_BUDGET (8u * 1024u * 1024u) /* bytes per wakeup, for fairness */

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
        hxfr__log(&h->log, HXFR_HOST_LOG_WARN, "connection on %s refused: %u clients (limit %u)",
                  via, h->nclients, h->cfg.max_clients);
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
    c->id = ++h->next_client_id;
    c->conn.id = c->id;
    c->conn.log = &h->log;
    c->conn.max_output = h->cfg.max_output;
    int r = hxfr__conn_open(&c->conn, fd, h->epfd, &c->watch);
    if (r < 0) {
        close(fd);
        free(c);
        return r;
    }
    hxfr_parser_init(&c->parser, h->max_body);
    c->accepted_ms = c->conn.last_activity_ms;
    c->greeted = exempt;

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
    hxfr__log(&h->log, HXFR_HOST_LOG_INFO, "client %llu connected (%s) via %s",
              (unsigned long long)c->id, c->conn.peer, via);
    return 0;
}

void hxfr__client_close(struct hxfr__client *c, const char *why)
{
    struct hxfr_host *h = c->host;

    if (c->conn.fd < 0) {
        return;
    }
    hxfr__log(&h->log, HXFR_HOST_LOG_INFO,
              "client %llu disconnected: %s (%llu requests, %llu errors, %llu pixel bytes "
              "copied)",
              (unsigned long long)c->id, why, (unsigned long long)c->requests,
              (unsigned long long)c->errors_sent, (unsigned long long)c->pixel_bytes_copied);
    hxfr__conn_close(&c->conn);

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
}

static void update_events(struct hxfr__client *c)
{
    bool reading = !c->conn.cut && !c->eof && !c->paused &&
                   (c->lingering || (!c->closing && !c->host->stopping));
    hxfr__conn_set_reading(&c->conn, reading);
}

/* A framing violation: the stream is out of sync. Answer INVALID_MSG,
 * stop reading, flush, then close (see start_linger). */
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
    hxfr__answer_error_now(c, c->parser.hdr.session_id, HXFR_STATUS_INVALID_MSG, "%s", text);
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
    hxfr__conn_fds_close(&c->conn);
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
    return c->conn.rx_bytes - (uint64_t)(c->rlen - c->rpos);
}

/* Received fds whose bytes hold no unhandled message header any more can
 * never be claimed: they are closed, and each batch is answered ERROR SHM. */
static void sweep_fds(struct hxfr__client *c)
{
    if (c->conn.nfdq == 0) {
        return;
    }
    uint64_t next = stream_pos(c);
    if (!hxfr_parser_idle(&c->parser)) {
        uint32_t rem = hxfr_parser_body_remaining(&c->parser);
        next = rem > 0 ? next + rem : c->msg_start;
    }
    struct hxfr__fd_batch b;
    while (hxfr__conn_fds_expire(&c->conn, next, &b)) {
        if (c->conn.cut || c->closing) {
            continue;
        }
        if (b.truncated) {
            hxfr__answer_error(c, 0, HXFR_STATUS_SHM,
                               "file descriptors truncated (MSG_CTRUNC) outside an "
                               "SHM_ATTACH");
        } else {
            hxfr__answer_error(c, 0, HXFR_STATUS_SHM,
                               "%d file descriptor(s) sent without an SHM_ATTACH: closed", b.nfds);
        }
    }
}

/* Parses what sits in rbuf. Stops when rbuf is empty, the window is full
 * (c->paused), or the client is cut or closing. */
static void process_input(struct hxfr__client *c)
{
    struct hxfr_host *h = c->host;

    while (c->rpos < c->rlen && !c->conn.cut && !c->closing) {
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
            hxfr__request_handle(c, &res);
            /* A body no handler claimed (a rejected request's) is skipped
             * without being stored. */
            if (c->body_mode == HXFR__BODY_NONE && hxfr_parser_body_remaining(&c->parser) > 0) {
                c->body_mode = HXFR__BODY_DISCARD;
            }
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
        hxfr__conn_cut(&c->conn, "closed after a protocol error");
        return;
    }
    if (c->body_mode != HXFR__BODY_NONE || !hxfr_parser_idle(&c->parser) || c->rpos < c->rlen) {
        hxfr__conn_cut(&c->conn, "peer closed in the middle of a message");
        return;
    }
    c->eof = true;
}

static void read_input(struct hxfr__client *c)
{
    size_t budget = READ_BUDGET;

    while (!c->conn.cut && budget > 0) {
        if (c->lingering) {
            /* After a fatal error: drain and drop until EOF. */
            ssize_t n = hxfr__conn_recv(&c->conn, c->rbuf, sizeof(c->rbuf), false);
            if (n == -EINTR) {
                continue;
            }
            if (n == -EAGAIN || n == -EWOULDBLOCK) {
                return;
            }
            if (n <= 0) {
                hxfr__conn_cut(&c->conn, "closed after a protocol error");
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
                if (c->rpos == before && c->rlen > 0 && !c->paused && !c->closing && !c->conn.cut) {
                    /* The parser took nothing: never spin on it. */
                    hxfr__conn_cut(&c->conn, "internal error: input not consumed");
                }
                continue;
            }
            dst = c->rbuf;
            want = sizeof(c->rbuf);
        }
        if (want > budget) {
            want = budget;
        }
        ssize_t n = hxfr__conn_recv(&c->conn, dst, want, true);
        if (n < 0) {
            if (n == -EINTR) {
                continue;
            }
            if (n == -EAGAIN || n == -EWOULDBLOCK) {
                return;
            }
            hxfr__conn_cut(&c->conn, "read failed: %s", strerror((int)-n));
            return;
        }
        if (n == 0) {
            on_eof(c);
            return;
        }
        budget -= (size_t)n;
        c->conn.last_activity_ms = hxfr__now_ms();
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
    shutdown(c->conn.fd, SHUT_WR);
    c->lingering = true;
}

/* Closes the client if it is done for; returns true if it did. */
static bool client_settle(struct hxfr__client *c)
{
    if (c->conn.fd < 0) {
        return true;
    }
    if (c->conn.cut) {
        hxfr__client_close(c, c->conn.cut_reason);
        return true;
    }
    if (c->closing && !hxfr__conn_has_output(&c->conn) && !c->lingering) {
        start_linger(c);
    }
    if (c->eof && c->inflight == 0 && !hxfr__conn_has_output(&c->conn) &&
        c->body_mode == HXFR__BODY_NONE) {
        hxfr__client_close(c, "peer closed the connection");
        return true;
    }
    update_events(c);
    return false;
}

void hxfr__client_on_event(struct hxfr__client *c, uint32_t events)
{
    if (c->conn.fd < 0) {
        return;
    }
    if (events & EPOLLERR) {
        int err = 0;
        socklen_t len = sizeof(err);
        getsockopt(c->conn.fd, SOL_SOCKET, SO_ERROR, &err, &len);
        hxfr__conn_cut(&c->conn, "socket error: %s", strerror(err ? err : EIO));
    }
    if (!c->conn.cut && (events & EPOLLOUT)) {
        hxfr__conn_flush(&c->conn);
    }
    if (!c->conn.cut && (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP))) {
        read_input(c);
    }
    if (!c->conn.cut && (events & EPOLLHUP) && !(c->conn.events & EPOLLIN)) {
        /* Both directions are gone and we are not reading (window full or
         * closing): nothing can reach the peer any more. */
        hxfr__conn_cut(&c->conn, "peer hung up");
    }
    client_settle(c);
}

void hxfr__client_resume(struct hxfr__client *c)
{
    if (c->conn.fd < 0) {
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

    if (c->conn.fd < 0) {
        return;
    }
    if (c->closing && now_ms >= c->linger_deadline_ms) {
        hxfr__conn_cut(&c->conn, "%s",
                       c->lingering ? "closed after a protocol error"
                                    : "closed after a protocol error (output not drained)");
    } else if (!c->greeted && h->cfg.handshake_timeout_ms != HXFR_HOST_TIMEOUT_NEVER &&
               now_ms - c->accepted_ms >= h->cfg.handshake_timeout_ms &&
               (!c->conn.is_unix || h->full_ms >= c->accepted_ms)) {
        /* Connections that never say anything would otherwise hold a
         * max_clients slot forever (idle_timeout is opt-in). Over UNIX
         * sockets only if the server was full since this one connected:
         * QEMU's socket chardev connects when the VM starts, and its guest
         * may take longer than the deadline to boot and say something. */
        hxfr__log(&h->log, HXFR_HOST_LOG_WARN,
                  "client %llu (%s) sent no complete message within %u ms: closing",
                  (unsigned long long)c->id, c->conn.peer, h->cfg.handshake_timeout_ms);
        hxfr__conn_cut(&c->conn, "handshake timeout");
    } else if (h->cfg.idle_timeout_ms && c->inflight == 0 &&
               now_ms - c->conn.last_activity_ms >= h->cfg.idle_timeout_ms) {
        hxfr__log(&h->log, HXFR_HOST_LOG_WARN, "client %llu idle for %u ms",
                  (unsigned long long)c->id, h->cfg.idle_timeout_ms);
        hxfr__conn_cut(&c->conn, "idle timeout");
    }
    client_settle(c);
}

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
    update_events(c);
}
