/* libhxfr-client: connection, windowed submission and response dispatch.
 *
 * One non-blocking fd per client. Every wait is a poll() on that fd with a
 * deadline, and every wait also reads and delivers whatever the host sent:
 * a big frame write can therefore never deadlock against responses the
 * host is trying to send us, and no call blocks longer than its timeout.
 */
#include <errno.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <hxfr/client.h>
#include <hxfr/shm.h>

#include "../transport/transport.h"

/* Bytes read from the fd per read() into the staging buffer. Bodies of at
 * least READ_DIRECT_MIN bytes are read straight into the body buffer. */
#define IN_BUF_SIZE     65536u
#define READ_DIRECT_MIN 4096u
#define BODY_MIN_CAP    65536u
#define URI_STR_MAX     300u
/* Reads after a failed write that collect answers already sent (each at
 * most IN_BUF_SIZE or one body): bounds the drain of a peer that keeps
 * sending. */
#define DRAIN_READS_MAX 1024u

struct pending {
    void *user;
    uint64_t seq;
    int64_t pts;
    uint64_t start_ns;
    bool forced;
    int slot;           /* shared-memory slot the frame is in, or -1 */
    bool slot_released; /* SLOT_RELEASE already gave it back */
};

/* Who owns a slot of the client's shared-memory ring. */
enum slot_state {
    SLOT_FREE = 0,  /* the client's, not handed out */
    SLOT_ACQUIRED,  /* the caller is writing it */
    SLOT_SUBMITTED, /* the host's, until SLOT_RELEASE or the frame's result */
};

struct hxfr_client {
    struct hxfr_client_options o;

    int fd;
    bool is_socket;
    bool have_uri;
    struct hxfr_uri uri;
    char uri_str[URI_STR_MAX];

    /* Input: staging buffer, parser, and the body of the current message. */
    struct hxfr_parser parser;
    uint8_t *in;
    size_t in_pos;
    size_t in_len;
    struct hxfr_msg cur;
    uint8_t *body;
    size_t body_cap;
    size_t body_len;

    /* Frames in flight, oldest first. */
    struct pending ring[HXFR_CLIENT_MAX_WINDOW];
    unsigned head;
    unsigned count;
    uint64_t next_seq;
    uint64_t delivered;

    /* Scatter-gather list for one frame, grown to the largest frame seen
     * (bounded by max_dim). */
    struct iovec *iov;
    size_t iov_cap;

    /* Replies that a blocking call waits for. */
    int awaiting; /* message type awaited, 0 = none */
    bool reply_ready;
    struct hxfr_msg reply;
    uint64_t pings_sent;
    uint64_t pongs_received;

    bool have_config;
    struct hxfr_client_config cfg;
    bool force_next_keyframe;
    uint32_t caps;
    int32_t last_code;
    char last_message[HXFR_ERROR_MESSAGE_LEN];
    bool in_callback;
    unsigned lost_failed; /* frames the last connection loss failed */

    /* Push mode: the scanout subscribed to (sent again on reconnect). */
    bool subscribed;
    bool ever_subscribed;
    uint32_t scanout;
    uint64_t stream_seq;
    uint64_t pushed;

    /* Shared-memory ring (attached again after every reconnect). */
    bool shm;
    bool shm_memfd; /* region is our memfd (sent with SCM_RIGHTS) */
    char shm_name[HXFR_SHM_NAME_LEN];
    struct hxfr_shm_region region;
    struct hxfr_shm_layout layout;
    uint8_t slots[HXFR_SHM_MAX_SLOTS]; /* enum slot_state */

    /* Publisher side: the scanout enabled (enabled again on reconnect). */
    bool publishing;
    struct hxfr_enable_scanout published;
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A deadline from a timeout in ms: UINT64_MAX means none (timeout < 0). */
static uint64_t deadline_after(int timeout_ms)
{
    if (timeout_ms < 0) {
        return UINT64_MAX;
    }
    return now_ns() + (uint64_t)timeout_ms * 1000000u;
}

/* Milliseconds until deadline for poll(): -1 for none, rounded up. */
static int poll_timeout(uint64_t deadline)
{
    if (deadline == UINT64_MAX) {
        return -1;
    }
    uint64_t now = now_ns();
    if (now >= deadline) {
        return 0;
    }
    uint64_t ms = (deadline - now + 999999u) / 1000000u;
    return ms > INT_MAX ? INT_MAX : (int)ms;
}

void hxfr_client_options_init(struct hxfr_client_options *o)
{
    memset(o, 0, sizeof(*o));
    o->window = 4;
    o->max_body = HXFR_CLIENT_DEFAULT_MAX_BODY;
    o->hello = true;
    o->reconnect_attempts = 10;
    o->reconnect_min_ms = 50;
    o->reconnect_max_ms = 2000;
    o->io_timeout_ms = 5000;
}

struct hxfr_client *hxfr_client_new(const struct hxfr_client_options *o)
{
    struct hxfr_client_options def;
    if (!o) {
        hxfr_client_options_init(&def);
        o = &def;
    }
    if (o->window < 1 || o->window > HXFR_CLIENT_MAX_WINDOW || o->io_timeout_ms <= 0 ||
        o->max_body < 1024 || o->max_body > HXFR_MAX_BODY_HARD || o->max_dim > HXFR_MAX_DIM_HARD) {
        errno = EINVAL;
        return NULL;
    }
    struct hxfr_client *c = calloc(1, sizeof(*c));
    if (!c) {
        goto fail;
    }
    c->o = *o;
    c->fd = -1;
    c->in = malloc(IN_BUF_SIZE);
    if (!c->in) {
        goto fail_client;
    }
    hxfr_parser_init(&c->parser, c->o.max_body);
    return c;

fail_client:
    free(c);
fail:
    errno = ENOMEM;
    return NULL;
}

static void close_fd(struct hxfr_client *c)
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

/* Makes fd (connected, non-blocking) the client's connection. */
static void adopt_fd(struct hxfr_client *c, int fd, bool is_socket)
{
    close_fd(c);
    c->fd = fd;
    c->is_socket = is_socket;
    c->reply_ready = false;
    c->pings_sent = c->pongs_received = 0;
}

void hxfr_client_destroy(struct hxfr_client *c)
{
    if (!c) {
        return;
    }
    close_fd(c);
    hxfr_shm_region_finish(&c->region);
    free(c->iov);
    free(c->body);
    free(c->in);
    free(c);
}

static void emit_event(struct hxfr_client *c, const struct hxfr_client_event *ev)
{
    if (c->o.on_event) {
        c->in_callback = true;
        c->o.on_event(c->o.user_data, ev);
        c->in_callback = false;
    }
}

/* Pops the oldest frame in flight and delivers its result. */
static void deliver(struct hxfr_client *c, struct hxfr_client_result *res)
{
    struct pending *p = &c->ring[c->head];
    c->head = (c->head + 1) % HXFR_CLIENT_MAX_WINDOW;
    c->count--;
    c->delivered++;
    if (p->slot >= 0 && !p->slot_released) {
        /* The frame's result: the host no longer reads its slot. */
        c->slots[p->slot] = SLOT_FREE;
    }
    res->user = p->user;
    res->seq = p->seq;
    res->forced_keyframe = p->forced;
    res->latency_ns = now_ns() - p->start_ns;
    if (res->status != 0) {
        res->pts = p->pts;
    }
    if (!res->remote_message) {
        res->remote_message = "";
    }
    if (!res->data) {
        /* Never NULL, so callers can memcpy(dst, data, size) blindly. */
        static const uint8_t none[1];
        res->data = none;
    }
    if (c->o.on_frame) {
        c->in_callback = true;
        c->o.on_frame(c->o.user_data, res);
        c->in_callback = false;
    }
}

/* The connection is gone: fail every frame in flight with err, in order,
 * then report DISCONNECTED. The next frame after a reconnect is an IDR. */
static int lost(struct hxfr_client *c, int err)
{
    close_fd(c);
    c->force_next_keyframe = true;
    c->lost_failed = c->count;
    while (c->count > 0) {
        struct hxfr_client_result res = {.status = err};
        deliver(c, &res);
    }
    struct hxfr_client_event ev = {.type = HXFR_CLIENT_EVENT_DISCONNECTED, .err = err};
    emit_event(c, &ev);
    return err;
}

static void remember_remote(struct hxfr_client *c, const struct hxfr_error *e)
{
    c->last_code = e->code;
    snprintf(c->last_message, sizeof(c->last_message), "%s", e->message);
}

/* Turns the unit list in the body into one Annex B buffer in place (each
 * unit moves left over the 4-byte size fields before it). Returns 0 and
 * the byte count in *out, or -HXFR_EUNITS. */
static int flatten_units(struct hxfr_client *c, uint32_t nal_count, size_t *out)
{
    int r = hxfr_units_validate(c->body, c->body_len, nal_count);
    if (r < 0) {
        return r;
    }
    size_t pos = 0;
    const uint8_t *unit;
    uint32_t unit_size;
    *out = 0;
    while ((r = hxfr_units_next(c->body, c->body_len, &pos, &unit, &unit_size)) > 0) {
        memmove(c->body + *out, unit, unit_size);
        *out += unit_size;
    }
    return r;
}

/* A pushed access unit of the subscribed scanout. */
static int on_stream_unit(struct hxfr_client *c, const struct hxfr_frame_response *fr)
{
    size_t out;
    int r = flatten_units(c, fr->nal_count, &out);
    if (r < 0) {
        return r;
    }
    static const uint8_t none[1];
    struct hxfr_client_result res = {
        .status = 0,
        .seq = c->stream_seq++,
        .pts = fr->pts,
        .dts = fr->dts,
        .keyframe = fr->is_keyframe != 0,
        .data = out > 0 ? c->body : none,
        .size = out,
        .nal_count = fr->nal_count,
        .remote_message = "",
    };
    c->pushed++;
    if (c->o.on_stream) {
        c->in_callback = true;
        c->o.on_stream(c->o.user_data, c->scanout, &res);
        c->in_callback = false;
    }
    return 0;
}

/* A complete FRAME_RESPONSE: hand it to the oldest frame in flight, or to
 * the stream callback when it belongs to the subscribed scanout. */
static int on_frame_response(struct hxfr_client *c, const struct hxfr_frame_response *fr)
{
    uint16_t sid = c->cur.hdr.session_id;
    if (c->subscribed && sid == c->scanout && (c->count == 0 || sid != c->o.session_id)) {
        return on_stream_unit(c, fr);
    }
    if (c->count == 0) {
        /* Units of a replaced subscription may still arrive; anything else
         * is a response nobody asked for. */
        return c->ever_subscribed ? 0 : -EPROTO;
    }
    size_t out;
    int r = flatten_units(c, fr->nal_count, &out);
    if (r < 0) {
        return r;
    }
    struct hxfr_client_result res = {
        .status = 0,
        .pts = fr->pts,
        .dts = fr->dts,
        .keyframe = fr->is_keyframe != 0,
        .data = c->body,
        .size = out,
        .nal_count = fr->nal_count,
    };
    deliver(c, &res);
    return 0;
}

/* SLOT_RELEASE: the oldest frame in flight in that slot gives it back
 * (its result will not free it again). A release for a slot with nothing
 * in flight is stale or bogus and changes nothing. */
static void on_slot_release(struct hxfr_client *c, uint32_t slot)
{
    for (unsigned i = 0; i < c->count; i++) {
        struct pending *p = &c->ring[(c->head + i) % HXFR_CLIENT_MAX_WINDOW];
        if (p->slot >= 0 && (uint32_t)p->slot == slot && !p->slot_released) {
            p->slot_released = true;
            c->slots[slot] = SLOT_FREE;
            return;
        }
    }
}

/* Routes one complete message. Returns 0 or a fatal error (the caller
 * drops the connection). */
static int handle_message(struct hxfr_client *c)
{
    const struct hxfr_msg *m = &c->cur;
    switch (m->hdr.type) {
    case HXFR_MSG_FRAME_RESPONSE:
        return on_frame_response(c, &m->u.frame_response);
    case HXFR_MSG_ERROR:
        remember_remote(c, &m->u.error);
        /* The host answers each session in request order (docs/protocol.md,
         * "Answer order"): an ERROR of our session while frames are in
         * flight belongs to the oldest one. Blocking requests (config,
         * hello, attach) are only sent with nothing in flight. An ERROR of
         * another session (the subscribed scanout's NO_SCANOUT, a refused
         * SUBSCRIBE) is never a frame's. */
        if (c->count > 0 && m->hdr.session_id == c->o.session_id) {
            struct hxfr_client_result res = {
                .status = -HXFR_EREMOTE,
                .remote_code = m->u.error.code,
                .remote_message = m->u.error.message,
            };
            deliver(c, &res);
        } else if (c->awaiting) {
            c->reply = *m;
            c->reply_ready = true;
        } else {
            struct hxfr_client_event ev = {
                .type = HXFR_CLIENT_EVENT_REMOTE_ERROR,
                .remote_code = m->u.error.code,
                .remote_message = m->u.error.message,
            };
            emit_event(c, &ev);
        }
        return 0;
    case HXFR_MSG_CONFIG_RESP:
    case HXFR_MSG_HELLO_RESP:
    case HXFR_MSG_SUBSCRIBE_RESP:
    case HXFR_MSG_SCANOUT_RESP:
    case HXFR_MSG_SHM_ATTACH_RESP:
        if (c->awaiting == m->hdr.type) {
            c->reply = *m;
            c->reply_ready = true;
        }
        return 0;
    case HXFR_MSG_SLOT_RELEASE:
        on_slot_release(c, m->u.slot_release.slot);
        return 0;
    case HXFR_MSG_PONG:
        if (c->pongs_received < c->pings_sent) {
            c->pongs_received++;
        }
        return 0;
    default:
        /* Other server messages are ignored: a newer host stays compatible. */
        return 0;
    }
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
        int r = handle_message(c);
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
            r = handle_message(c);
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
        return lost(c, r);
    }
    return r;
}

/* A write failed (the host closed or reset the connection). Answers the
 * host sent before that may still sit unread in the socket: read and
 * deliver them (non-blocking, until nothing is left, EOF or an error, at
 * most DRAIN_READS_MAX reads) before failing the frames still in flight
 * with err, so a host that answers and then closes loses no answer. */
static int lost_after_write(struct hxfr_client *c, int err)
{
    for (unsigned i = 0; i < DRAIN_READS_MAX && c->fd >= 0; i++) {
        if (read_input(c) <= 0) {
            break;
        }
    }
    return c->fd >= 0 ? lost(c, err) : err;
}

/* Reads until the fd has nothing more. Returns 0 or a connection error. */
static int pump(struct hxfr_client *c)
{
    for (;;) {
        int r = pump_once(c);
        if (r <= 0) {
            return r;
        }
    }
}

/* Waits for input until deadline and pumps it. Returns 1 if something was
 * read, 0 on timeout, or a connection error. */
static int wait_input(struct hxfr_client *c, uint64_t deadline)
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
    r = pump(c);
    return r < 0 ? r : 1;
}

/* Writes all iovecs from a non-blocking fd. While the fd is not writable
 * it reads and delivers what the host sends. A write that makes no
 * progress for io_timeout_ms drops the connection. */
static int send_iov(struct hxfr_client *c, struct iovec *iov, size_t iovcnt)
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
            return lost_after_write(c, errno == EIO ? -ECONNRESET : -errno);
        }
        struct pollfd pfd = {.fd = c->fd, .events = POLLIN | POLLOUT};
        int r = poll(&pfd, 1, poll_timeout(deadline));
        if (r < 0 && errno != EINTR) {
            return lost(c, -errno);
        }
        if (r == 0) {
            return lost(c, -ETIMEDOUT);
        }
        if (r > 0 && (pfd.revents & (POLLIN | POLLHUP | POLLERR))) {
            /* Read what the host sent so it is never blocked writing to
             * us while we are blocked writing to it. */
            r = pump(c);
            if (r < 0) {
                return r;
            }
        }
    }
    return 0;
}

/* Encodes m (no body) with the given header session id and sends it. */
static int send_msg_session(struct hxfr_client *c, struct hxfr_msg *m, uint16_t session_id)
{
    uint8_t buf[HXFR_HEADER_SIZE + HXFR_MAX_FIXED_SIZE];
    m->hdr.session_id = session_id;
    int n = hxfr_msg_encode(m, 0, buf, sizeof(buf));
    if (n < 0) {
        return n;
    }
    struct iovec iov = {.iov_base = buf, .iov_len = (size_t)n};
    return send_iov(c, &iov, 1);
}

/* Encodes m (no body) on the client's session and sends it. */
static int send_msg(struct hxfr_client *c, struct hxfr_msg *m)
{
    return send_msg_session(c, m, c->o.session_id);
}

/* True for the errors of a connection the host closed (EOF, reset): a
 * reply read just before still counts. A protocol violation right after
 * the reply fails the call (the host is misbehaving, not just leaving). */
static bool closed_by_host(int err)
{
    return err == -ECONNRESET || err == -EPIPE;
}

/* Waits up to timeout_ms for a reply of type (or an ERROR) to a blocking
 * request. */
static int await_reply(struct hxfr_client *c, uint8_t type, int timeout_ms, struct hxfr_msg *out)
{
    c->awaiting = type;
    c->reply_ready = false;
    uint64_t deadline = deadline_after(timeout_ms);
    int r = 0;
    while (!c->reply_ready) {
        r = wait_input(c, deadline);
        if (r < 0 && !(c->reply_ready && closed_by_host(r))) {
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

static int send_config(struct hxfr_client *c, struct hxfr_config_resp *resp)
{
    struct hxfr_msg m = {.hdr.type = HXFR_MSG_CONFIG_REQ};
    m.u.config_req = (struct hxfr_config_req){
        .width = c->cfg.width,
        .height = c->cfg.height,
        .bitrate = c->cfg.bitrate,
        .framerate_num = c->cfg.framerate_num,
        .framerate_den = c->cfg.framerate_den,
        .profile = c->cfg.profile,
        .level = c->cfg.level,
        .realtime = c->cfg.realtime ? 1 : 0,
        .gop = c->cfg.gop,
    };
    int r = send_msg(c, &m);
    if (r < 0) {
        return r;
    }
    struct hxfr_msg reply;
    r = await_reply(c, HXFR_MSG_CONFIG_RESP, c->o.io_timeout_ms, &reply);
    if (r == 0 && resp) {
        *resp = reply.u.config_resp;
    }
    return r;
}

static int send_hello(struct hxfr_client *c)
{
    struct hxfr_msg m = {.hdr.type = HXFR_MSG_HELLO};
    m.u.hello = (struct hxfr_hello){
        .version = HXFR_VERSION_1,
        .caps = HXFR_CAP_CONFIG_GOP | HXFR_CAP_SLOT_RELEASE | HXFR_CAP_SHM_REGION |
                HXFR_CAP_SCANOUT | (hxfr__fd_is_unix_socket(c->fd) ? HXFR_CAP_SHM_FD : 0),
        .max_width = c->o.max_dim ? c->o.max_dim : HXFR_MAX_DIM_HARD,
        .max_height = c->o.max_dim ? c->o.max_dim : HXFR_MAX_DIM_HARD,
    };
    int r = send_msg(c, &m);
    if (r < 0) {
        return r;
    }
    struct hxfr_msg reply;
    r = await_reply(c, HXFR_MSG_HELLO_RESP, c->o.io_timeout_ms, &reply);
    if (r == -HXFR_EREMOTE) {
        /* A v1 host does not know HELLO: carry on without extensions. */
        c->caps = 0;
        return 0;
    }
    if (r == 0) {
        c->caps = reply.u.hello.caps;
    }
    return r;
}

/* Sends SUBSCRIBE for c->scanout (header session id = scanout id, as
 * push mode uses it) and waits for a successful SUBSCRIBE_RESP. */
static int send_subscribe(struct hxfr_client *c, int timeout_ms)
{
    struct hxfr_msg m = {.hdr.type = HXFR_MSG_SUBSCRIBE};
    m.u.subscribe.scanout_id = c->scanout;
    int r = send_msg_session(c, &m, (uint16_t)c->scanout);
    if (r < 0) {
        return r;
    }
    struct hxfr_msg reply;
    r = await_reply(c, HXFR_MSG_SUBSCRIBE_RESP, timeout_ms, &reply);
    if (r == 0 &&
        (reply.u.subscribe_resp.success == 0 || reply.u.subscribe_resp.scanout_id != c->scanout)) {
        /* A refusal without an ERROR message: report it the same way. */
        c->last_code = HXFR_STATUS_NO_SCANOUT;
        snprintf(c->last_message, sizeof(c->last_message), "scanout %u refused",
                 (unsigned)c->scanout);
        r = -HXFR_EREMOTE;
    }
    return r;
}

static int send_attach(struct hxfr_client *c);

/* Sends ENABLE_SCANOUT (enable) or DISABLE_SCANOUT for id, header session
 * id = scanout id, and waits for SCANOUT_RESP. A refusal (success = 0)
 * becomes -HXFR_EREMOTE like an ERROR. */
static int send_scanout(struct hxfr_client *c, bool enable, const struct hxfr_enable_scanout *q,
                        int timeout_ms, struct hxfr_scanout_resp *resp)
{
    struct hxfr_msg m = {.hdr.type = enable ? HXFR_MSG_ENABLE_SCANOUT : HXFR_MSG_DISABLE_SCANOUT};
    if (enable) {
        m.u.enable_scanout = *q;
    } else {
        m.u.disable_scanout.scanout_id = q->scanout_id;
    }
    int r = send_msg_session(c, &m, (uint16_t)q->scanout_id);
    if (r < 0) {
        return r;
    }
    struct hxfr_msg reply;
    r = await_reply(c, HXFR_MSG_SCANOUT_RESP, timeout_ms, &reply);
    if (r == 0 && resp) {
        *resp = reply.u.scanout_resp;
    }
    if (r == 0 &&
        (reply.u.scanout_resp.success == 0 || reply.u.scanout_resp.scanout_id != q->scanout_id)) {
        c->last_code = HXFR_STATUS_NO_SCANOUT;
        snprintf(c->last_message, sizeof(c->last_message), "%s of scanout %u refused",
                 enable ? "ENABLE_SCANOUT" : "DISABLE_SCANOUT", (unsigned)q->scanout_id);
        r = -HXFR_EREMOTE;
    }
    return r;
}

/* One connection attempt: connect, HELLO, the stored configuration,
 * published scanout and subscription. */
static int open_connection(struct hxfr_client *c)
{
    int fd = hxfr__transport_connect(&c->uri);
    if (fd < 0) {
        return fd;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
        int r = -errno;
        close(fd);
        return r;
    }
    adopt_fd(c, fd, c->uri.kind != HXFR_TRANSPORT_SERIAL);
    int r = 0;
    if (c->o.hello) {
        r = send_hello(c);
    }
    if (r == 0 && c->have_config) {
        r = send_config(c, NULL);
    }
    if (r == 0 && c->publishing) {
        r = send_scanout(c, true, &c->published, c->o.io_timeout_ms, NULL);
    }
    if (r == 0 && c->subscribed) {
        r = send_subscribe(c, c->o.io_timeout_ms);
    }
    if (r == 0 && c->shm) {
        r = send_attach(c);
    }
    if (r < 0) {
        /* Not reported as DISCONNECTED: this attempt never counted as a
         * working connection. */
        close_fd(c);
    }
    return r;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

/* Connection attempts with exponential backoff. */
static int connect_with_backoff(struct hxfr_client *c, unsigned attempts, unsigned *used)
{
    unsigned delay = c->o.reconnect_min_ms ? c->o.reconnect_min_ms : 1;
    int r = -ENOTCONN;
    for (unsigned i = 0; i < attempts; i++) {
        if (i > 0) {
            sleep_ms(delay);
            delay = delay * 2 > c->o.reconnect_max_ms ? c->o.reconnect_max_ms : delay * 2;
        }
        r = open_connection(c);
        *used = i + 1;
        if (r == 0 || r == -HXFR_EREMOTE || r == -EINVAL || r == -EPROTONOSUPPORT) {
            /* Success, or an answer that retrying cannot change. */
            break;
        }
    }
    return r;
}

int hxfr_client_connect(struct hxfr_client *c, const char *uri)
{
    if (c->in_callback) {
        return -EDEADLK;
    }
    if (c->fd >= 0) {
        return -EISCONN;
    }
    struct hxfr_uri u;
    int r = hxfr__uri_parse(uri, false, &u);
    if (r < 0) {
        return r;
    }
    c->uri = u;
    c->have_uri = true;
    if (hxfr__uri_format(&u, c->uri_str, sizeof(c->uri_str)) < 0) {
        snprintf(c->uri_str, sizeof(c->uri_str), "%s", uri);
    }
    unsigned used = 0;
    unsigned attempts = c->o.reconnect && c->o.reconnect_attempts ? c->o.reconnect_attempts : 1;
    return connect_with_backoff(c, attempts, &used);
}

int hxfr_client_connect_fd(struct hxfr_client *c, int fd)
{
    if (fd < 0) {
        return -EBADF;
    }
    if (c->in_callback || c->fd >= 0) {
        close(fd);
        return c->in_callback ? -EDEADLK : -EISCONN;
    }
    struct stat st;
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fstat(fd, &st) < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
        int r = -errno;
        close(fd);
        return r;
    }
    adopt_fd(c, fd, S_ISSOCK(st.st_mode));
    c->have_uri = false;
    snprintf(c->uri_str, sizeof(c->uri_str), "fd:%d", fd);
    int r = c->o.hello ? send_hello(c) : 0;
    if (r < 0) {
        close_fd(c);
    }
    return r;
}

int hxfr_client_reconnect(struct hxfr_client *c)
{
    if (c->in_callback) {
        return -EDEADLK;
    }
    if (!c->have_uri) {
        return -ENOTCONN;
    }
    if (c->fd >= 0) {
        lost(c, -ECONNRESET);
    }
    unsigned used = 0;
    unsigned attempts = c->o.reconnect_attempts ? c->o.reconnect_attempts : 1;
    int r = connect_with_backoff(c, attempts, &used);
    if (r == 0) {
        c->force_next_keyframe = true;
        struct hxfr_client_event ev = {.type = HXFR_CLIENT_EVENT_RECONNECTED, .attempt = used};
        emit_event(c, &ev);
    }
    return r;
}

/* Connected, or reconnected when the options allow it. */
static int ensure_connected(struct hxfr_client *c)
{
    if (c->fd >= 0) {
        return 0;
    }
    if (!c->o.reconnect || !c->have_uri) {
        return -ENOTCONN;
    }
    return hxfr_client_reconnect(c);
}

int hxfr_client_flush(struct hxfr_client *c, int timeout_ms)
{
    if (c->in_callback) {
        return -EDEADLK;
    }
    uint64_t deadline = deadline_after(timeout_ms);
    while (c->count > 0) {
        int r = wait_input(c, deadline);
        if (r < 0) {
            /* The host may close right after answering the last frame:
             * that is only an error if it cost a frame. The caller learns
             * about the closed connection on its next call. */
            return c->count == 0 && c->lost_failed == 0 ? 0 : r;
        }
        if (r == 0 && c->count > 0 && poll_timeout(deadline) == 0) {
            return -ETIMEDOUT;
        }
    }
    return 0;
}

/* Connects if needed and waits for every frame in flight, so that the
 * answer to the request that follows (an ERROR included) is attributable
 * to it, and a ring's slots are all back before a new one is attached. */
static int settle(struct hxfr_client *c)
{
    int r = ensure_connected(c);
    if (r < 0) {
        return r;
    }
    return hxfr_client_flush(c, c->o.io_timeout_ms);
}

int hxfr_client_configure(struct hxfr_client *c, const struct hxfr_client_config *cfg,
                          struct hxfr_config_resp *resp)
{
    if (c->in_callback) {
        return -EDEADLK;
    }
    if (!cfg || cfg->width == 0 || cfg->height == 0) {
        return -EINVAL;
    }
    int r = settle(c);
    if (r < 0) {
        return r;
    }
    c->cfg = *cfg;
    c->have_config = true;
    return send_config(c, resp);
}

/* Fills c->iov for frame f; *wire_stride gets the plane-0 stride put in
 * the request and *size the pixel byte count. */
static int build_frame_iov(struct hxfr_client *c, const struct hxfr_client_frame *f, size_t *iovcnt,
                           uint32_t *wire_stride, uint64_t *size)
{
    uint32_t stride0 = f->strides[0] ? f->strides[0] : hxfr_format_min_stride(f->format, f->width);
    struct hxfr_geometry g;
    int r = hxfr_geometry_compute(f->format, f->width, f->height, stride0, c->o.max_dim, &g);
    if (r < 0) {
        return r;
    }
    uint32_t caller_stride[3] = {stride0, 0, 0};
    bool blocks = true;
    for (uint32_t i = 0; i < g.num_planes; i++) {
        if (!f->planes[i]) {
            return -EINVAL;
        }
        if (i > 0) {
            /* A zero chroma stride is the tight one: the derived stride of
             * the tight luma stride. */
            struct hxfr_geometry tight;
            r = hxfr_geometry_compute(f->format, f->width, f->height,
                                      hxfr_format_min_stride(f->format, f->width), c->o.max_dim,
                                      &tight);
            if (r < 0) {
                return r;
            }
            caller_stride[i] = f->strides[i] ? f->strides[i] : tight.stride[i];
            if (caller_stride[i] != g.stride[i]) {
                blocks = false;
            }
        }
    }
    if (!blocks) {
        /* Chroma strides do not follow from the luma stride: send tight
         * rows, one iovec each. */
        r = hxfr_geometry_compute(f->format, f->width, f->height,
                                  hxfr_format_min_stride(f->format, f->width), c->o.max_dim, &g);
        if (r < 0) {
            return r;
        }
    }
    size_t need = 1;
    for (uint32_t i = 0; i < g.num_planes; i++) {
        need += blocks ? 1 : g.plane_height[i];
    }
    if (need > c->iov_cap) {
        struct iovec *v = realloc(c->iov, need * sizeof(*v));
        if (!v) {
            return -ENOMEM;
        }
        c->iov = v;
        c->iov_cap = need;
    }
    size_t n = 1; /* iov[0] is the header, filled by the caller */
    for (uint32_t i = 0; i < g.num_planes; i++) {
        const uint8_t *src = f->planes[i];
        if (blocks) {
            c->iov[n++] = (struct iovec){.iov_base = (void *)src, .iov_len = g.plane_size[i]};
            continue;
        }
        if (caller_stride[i] < g.stride[i]) {
            return -HXFR_ESTRIDE;
        }
        for (uint32_t y = 0; y < g.plane_height[i]; y++) {
            c->iov[n++] = (struct iovec){
                .iov_base = (void *)(src + (size_t)y * caller_stride[i]),
                .iov_len = g.stride[i],
            };
        }
    }
    *iovcnt = n;
    *wire_stride = g.stride[0];
    *size = g.size;
    return 0;
}

/* Waits up to timeout_ms for room in the window, delivering results.
 * Returns 0, -EAGAIN or a connection error. */
static int wait_window(struct hxfr_client *c, int timeout_ms)
{
    int r;
    uint64_t deadline = deadline_after(timeout_ms);
    while (c->count >= c->o.window) {
        if (timeout_ms == 0) {
            /* Take what is already there before giving up. */
            r = pump(c);
            if (r < 0) {
                return r;
            }
            if (c->count >= c->o.window) {
                return -EAGAIN;
            }
            break;
        }
        r = wait_input(c, deadline);
        if (r < 0) {
            return r;
        }
        if (r == 0 && c->count >= c->o.window && poll_timeout(deadline) == 0) {
            return -EAGAIN;
        }
    }
    return 0;
}

/* Waits until a frame may be sent: connected, and a window slot free. */
static int prepare_submit(struct hxfr_client *c, int timeout_ms)
{
    int r = ensure_connected(c);
    if (r < 0) {
        return r;
    }
    return wait_window(c, timeout_ms);
}

/* Fills a FRAME_REQUEST for f on the client's session, whether the pixels
 * follow as its body or sit in shared-memory slot resource_id. Returns
 * whether this frame is to be a keyframe. */
static bool frame_request_init(struct hxfr_client *c, struct hxfr_msg *m,
                               const struct hxfr_client_frame *f, uint8_t flags,
                               uint32_t resource_id, uint32_t stride)
{
    bool forced = f->force_keyframe || c->force_next_keyframe;
    *m = (struct hxfr_msg){
        .hdr.type = HXFR_MSG_FRAME_REQUEST, .hdr.flags = flags, .hdr.session_id = c->o.session_id};
    m->u.frame_request = (struct hxfr_frame_request){
        .resource_id = resource_id,
        .width = f->width,
        .height = f->height,
        .format = f->format,
        .stride = stride,
        .pts = f->pts,
        .duration = f->duration,
        .force_keyframe = forced ? 1 : 0,
    };
    return forced;
}

/* Records a sent frame in the window; slot is its shared-memory slot or -1. */
static void pending_push(struct hxfr_client *c, const struct hxfr_client_frame *f,
                         uint64_t start_ns, bool forced, int slot)
{
    unsigned i = (c->head + c->count) % HXFR_CLIENT_MAX_WINDOW;
    c->ring[i] = (struct pending){
        .user = f->user,
        .seq = c->next_seq++,
        .pts = f->pts,
        .start_ns = start_ns,
        .forced = forced,
        .slot = slot,
    };
    c->count++;
    c->force_next_keyframe = false;
}

int hxfr_client_submit(struct hxfr_client *c, const struct hxfr_client_frame *f, int timeout_ms)
{
    if (c->in_callback) {
        return -EDEADLK;
    }
    size_t iovcnt;
    uint32_t stride;
    uint64_t size;
    int r = build_frame_iov(c, f, &iovcnt, &stride, &size);
    if (r < 0) {
        return r;
    }
    if (size > UINT32_MAX - HXFR_FRAME_REQUEST_SIZE) {
        return -HXFR_EOVERFLOW;
    }
    r = prepare_submit(c, timeout_ms);
    if (r < 0) {
        return r;
    }
    struct hxfr_msg m;
    bool forced = frame_request_init(c, &m, f, HXFR_FLAG_PIXEL_DATA, 0, stride);
    uint8_t hdr[HXFR_HEADER_SIZE + HXFR_MAX_FIXED_SIZE];
    int n = hxfr_msg_encode(&m, (uint32_t)size, hdr, sizeof(hdr));
    if (n < 0) {
        return n;
    }
    c->iov[0] = (struct iovec){.iov_base = hdr, .iov_len = (size_t)n};
    uint64_t start = now_ns();
    r = send_iov(c, c->iov, iovcnt);
    if (r < 0) {
        return r;
    }
    pending_push(c, f, start, forced, -1);
    return 0;
}

int hxfr_client_dispatch(struct hxfr_client *c, int timeout_ms)
{
    if (c->in_callback) {
        return -EDEADLK;
    }
    if (c->fd < 0) {
        return -ENOTCONN;
    }
    uint64_t start = c->delivered + c->pushed;
    int r = pump(c);
    if (r < 0) {
        return r;
    }
    uint64_t deadline = deadline_after(timeout_ms);
    while (c->delivered + c->pushed == start && (c->count > 0 || c->subscribed) &&
           timeout_ms != 0) {
        r = wait_input(c, deadline);
        if (r < 0) {
            return r;
        }
        if (r == 0 && poll_timeout(deadline) == 0) {
            break;
        }
    }
    return (int)(c->delivered + c->pushed - start);
}

int hxfr_client_subscribe(struct hxfr_client *c, uint32_t scanout_id, int timeout_ms)
{
    if (c->in_callback) {
        return -EDEADLK;
    }
    if (scanout_id > UINT16_MAX) {
        /* Pushed units carry the scanout id in the 16-bit session field. */
        return -EINVAL;
    }
    int r = settle(c);
    if (r < 0) {
        return r;
    }
    c->subscribed = true;
    c->ever_subscribed = true;
    c->scanout = scanout_id;
    c->stream_seq = 0;
    r = send_subscribe(c, timeout_ms < 0 ? c->o.io_timeout_ms : timeout_ms);
    if (r < 0) {
        c->subscribed = false;
    }
    return r;
}

int hxfr_client_enable_scanout(struct hxfr_client *c, uint32_t scanout_id, uint32_t width,
                               uint32_t height, uint32_t refresh_hz, int timeout_ms,
                               struct hxfr_scanout_resp *resp)
{
    if (c->in_callback) {
        return -EDEADLK;
    }
    if (scanout_id > UINT16_MAX || width == 0 || height == 0) {
        /* Frames reach a scanout through the 16-bit session field. */
        return -EINVAL;
    }
    int r = settle(c);
    if (r < 0) {
        return r;
    }
    struct hxfr_enable_scanout q = {
        .scanout_id = scanout_id, .width = width, .height = height, .refresh_hz = refresh_hz};
    r = send_scanout(c, true, &q, timeout_ms < 0 ? c->o.io_timeout_ms : timeout_ms, resp);
    if (r == 0) {
        c->publishing = true;
        c->published = q;
    }
    return r;
}

int hxfr_client_disable_scanout(struct hxfr_client *c, uint32_t scanout_id, int timeout_ms)
{
    if (c->in_callback) {
        return -EDEADLK;
    }
    if (scanout_id > UINT16_MAX) {
        return -EINVAL;
    }
    if (c->publishing && c->published.scanout_id == scanout_id) {
        /* Not enabled again by a reconnect, whatever the answer. */
        c->publishing = false;
    }
    int r = settle(c);
    if (r < 0) {
        return r;
    }
    struct hxfr_enable_scanout q = {.scanout_id = scanout_id};
    return send_scanout(c, false, &q, timeout_ms < 0 ? c->o.io_timeout_ms : timeout_ms, NULL);
}

int hxfr_client_request_keyframe(struct hxfr_client *c)
{
    if (c->in_callback) {
        return -EDEADLK;
    }
    int r = ensure_connected(c);
    if (r < 0) {
        return r;
    }
    struct hxfr_msg m = {.hdr.type = HXFR_MSG_KEYFRAME_REQ};
    return send_msg(c, &m);
}

int hxfr_client_ping(struct hxfr_client *c, int timeout_ms, uint64_t *rtt_ns)
{
    if (c->in_callback) {
        return -EDEADLK;
    }
    if (c->fd < 0) {
        return -ENOTCONN;
    }
    struct hxfr_msg m = {.hdr.type = HXFR_MSG_PING};
    uint64_t t0 = now_ns();
    int r = send_msg(c, &m);
    if (r < 0) {
        return r;
    }
    uint64_t mine = ++c->pings_sent;
    uint64_t deadline = deadline_after(timeout_ms);
    while (c->pongs_received < mine) {
        r = wait_input(c, deadline);
        if (r < 0 && (c->pongs_received < mine || !closed_by_host(r))) {
            return r;
        }
        if (r == 0 && c->pongs_received < mine && poll_timeout(deadline) == 0) {
            return -ETIMEDOUT;
        }
    }
    if (rtt_ns) {
        *rtt_ns = now_ns() - t0;
    }
    return 0;
}

int hxfr_client_fd(const struct hxfr_client *c)
{
    return c->fd;
}

unsigned hxfr_client_in_flight(const struct hxfr_client *c)
{
    return c->count;
}

bool hxfr_client_connected(const struct hxfr_client *c)
{
    return c->fd >= 0;
}

uint32_t hxfr_client_server_caps(const struct hxfr_client *c)
{
    return c->caps;
}

const char *hxfr_client_uri(const struct hxfr_client *c)
{
    return c->uri_str;
}

int32_t hxfr_client_last_remote_error(const struct hxfr_client *c, const char **message)
{
    if (message) {
        *message = c->last_message;
    }
    return c->last_code;
}

/* ---- Shared-memory frames ---------------------------------------------- */

/* Sends SHM_ATTACH for the client's ring (with the memfd, if it is one)
 * and waits for SHM_ATTACH_RESP. Nothing is in flight when it runs. */
static int send_attach(struct hxfr_client *c)
{
    struct hxfr_msg m = {.hdr.type = HXFR_MSG_SHM_ATTACH,
                         .hdr.flags = c->shm_memfd ? HXFR_FLAG_SHM_FD : 0};
    m.u.shm_attach.offset = c->layout.ring_offset;
    snprintf(m.u.shm_attach.name, sizeof(m.u.shm_attach.name), "%s",
             c->shm_memfd ? "" : c->shm_name);
    uint8_t buf[HXFR_HEADER_SIZE + HXFR_SHM_ATTACH_SIZE];
    m.hdr.session_id = c->o.session_id;
    int n = hxfr_msg_encode(&m, 0, buf, sizeof(buf));
    if (n < 0) {
        return n;
    }
    size_t sent = 0;
    if (c->shm_memfd) {
        if (!hxfr__fd_is_unix_socket(c->fd)) {
            /* Descriptors travel over UNIX sockets only. */
            return -EOPNOTSUPP;
        }
        /* The fd rides on the first byte of this message: the host ties
         * descriptors to the message whose header they arrive with. */
        uint64_t deadline = deadline_after(c->o.io_timeout_ms);
        for (;;) {
            struct iovec iov = {.iov_base = buf, .iov_len = (size_t)n};
            ssize_t w = hxfr__send_with_fds(c->fd, &iov, 1, &c->region.fd, 1);
            if (w > 0) {
                sent = (size_t)w;
                break;
            }
            if (w != -EAGAIN) {
                return lost_after_write(c, w == 0 ? -EPIPE : (int)w);
            }
            struct pollfd pfd = {.fd = c->fd, .events = POLLOUT};
            int pr = poll(&pfd, 1, poll_timeout(deadline));
            if (pr < 0 && errno != EINTR) {
                return lost(c, -errno);
            }
            if (pr == 0) {
                return lost(c, -ETIMEDOUT);
            }
        }
    }
    if (sent < (size_t)n) {
        struct iovec iov = {.iov_base = buf + sent, .iov_len = (size_t)n - sent};
        int r = send_iov(c, &iov, 1);
        if (r < 0) {
            return r;
        }
    }
    struct hxfr_msg reply;
    int r = await_reply(c, HXFR_MSG_SHM_ATTACH_RESP, c->o.io_timeout_ms, &reply);
    if (r == 0 && (reply.u.shm_attach_resp.slot_count != c->layout.slot_count ||
                   reply.u.shm_attach_resp.slot_size != c->layout.slot_size)) {
        /* The host must have read the header we wrote. */
        r = -EPROTO;
    }
    return r;
}

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
    r = send_attach(c);
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
    return settle(c);
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
            pump(c);
            last = true;
        } else if (wait_input(c, deadline) == 0 && poll_timeout(deadline) == 0) {
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
    uint32_t stride = f->strides[0] ? f->strides[0] : hxfr_format_min_stride(f->format, f->width);
    struct hxfr_geometry g;
    int r = hxfr_geometry_compute(f->format, f->width, f->height, stride, c->o.max_dim, &g);
    if (r < 0) {
        return r;
    }
    if (g.size > c->layout.slot_size) {
        return -EMSGSIZE;
    }
    r = prepare_submit(c, timeout_ms);
    if (r < 0) {
        return r;
    }
    struct hxfr_msg m;
    bool forced = frame_request_init(c, &m, f, HXFR_FLAG_SHM, slot, stride);
    uint64_t start = now_ns();
    /* The pixels were written before this call. A full fence makes them
     * visible before the request leaves even when the slot is mapped
     * write-combining (an ivshmem BAR via resource2_wc), where a plain
     * store can still sit in a buffer when the socket write happens. */
    atomic_thread_fence(memory_order_seq_cst);
    r = send_msg(c, &m);
    if (r < 0) {
        return r;
    }
    pending_push(c, f, start, forced, (int)slot);
    c->slots[slot] = SLOT_SUBMITTED;
    return 0;
}

bool hxfr_client_shm_attached(const struct hxfr_client *c)
{
    return c->shm;
}
