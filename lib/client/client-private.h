/* libhxfr-client internals, shared by its files and nothing else
 * (libuv-style: one job per file behind one private header). The public
 * API is include/hxfr/client.h. Internal names are hxfr__guest_* (the
 * host library's hxfr__client_* name its connections; both libraries can
 * be linked into one program, as the tests do).
 *
 * One non-blocking fd per client. Every wait is a poll() on that fd with a
 * deadline, and every wait also reads and delivers whatever the host sent:
 * a big frame write can therefore never deadlock against responses the
 * host is trying to send us, and no call blocks longer than its timeout.
 *
 * The files, lowest layer first; a file calls only into the files listed
 * before it (and this header's inline helpers):
 *
 *   replies.c  what each message from the host does: frame results and
 *              events to the caller, pushed scanout units, slot releases,
 *              the replies a blocking call awaits
 *   io.c       the I/O pump: reading and parsing, writing with a deadline
 *              while reading, awaiting a reply, losing the connection
 *   request.c  the blocking request/reply exchanges: HELLO, CONFIG_REQ,
 *              SUBSCRIBE, ENABLE/DISABLE_SCANOUT, SHM_ATTACH (with its fd)
 *   connect.c  connecting, adopting an fd, reconnecting with backoff and
 *              restoring what the connection had (config, scanout,
 *              subscription, ring)
 *   frame.c    frame submission and the window, dispatch, flush
 *   client.c   the object: options, new/destroy, getters, configure,
 *              keyframe requests, ping
 *   scanout.c  push mode: subscribe, enable and disable a scanout
 *   shm.c      the shared-memory ring: create or attach, slots, submit
 */
#ifndef HXFR_CLIENT_PRIVATE_H
#define HXFR_CLIENT_PRIVATE_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>
#include <time.h>

#include <hxfr/client.h>
#include <hxfr/shm.h>

#include "transport.h"

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
    /* This connection's HELLO was answered with HELLO_RESP. Only then does
     * the host answer CONFIG_REQ (a v1 host, Helix's, never does; hxfrd
     * answers no peer that skipped HELLO). */
    bool hello_acked;
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

static inline uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A deadline from a timeout in ms: UINT64_MAX means none (timeout < 0). */
static inline uint64_t deadline_after(int timeout_ms)
{
    if (timeout_ms < 0) {
        return UINT64_MAX;
    }
    return now_ns() + (uint64_t)timeout_ms * 1000000u;
}

/* Milliseconds until deadline for poll(): -1 for none, rounded up. */
static inline int poll_timeout(uint64_t deadline)
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

/* ---- replies.c: what each message from the host does ----------------------- */

/* Calls on_event (if any), marked as inside a callback. */
void hxfr__guest_emit_event(struct hxfr_client *c, const struct hxfr_client_event *ev);

/* Pops the oldest frame in flight and delivers its result. */
void hxfr__guest_deliver(struct hxfr_client *c, struct hxfr_client_result *res);

/* Routes one complete message. Returns 0 or a fatal error (the caller
 * drops the connection). */
int hxfr__guest_handle_message(struct hxfr_client *c);

/* ---- io.c: the I/O pump ---------------------------------------------------- */

/* Closes the fd and resets the input side (parser, staged input, body,
 * awaited type); no results, no event. */
void hxfr__guest_close_fd(struct hxfr_client *c);

/* The connection is gone: fail every frame in flight with err, in order,
 * then report DISCONNECTED. The next frame after a reconnect is an IDR. */
int hxfr__guest_lost(struct hxfr_client *c, int err);

/* A write failed (the host closed or reset the connection). Answers the
 * host sent before that may still sit unread in the socket: read and
 * deliver them (non-blocking, until nothing is left, EOF or an error, at
 * most DRAIN_READS_MAX reads) before failing the frames still in flight
 * with err, so a host that answers and then closes loses no answer. */
int hxfr__guest_lost_after_write(struct hxfr_client *c, int err);

/* Reads until the fd has nothing more. Returns 0 or a connection error. */
int hxfr__guest_pump(struct hxfr_client *c);

/* Waits for input until deadline and pumps it. Returns 1 if something was
 * read, 0 on timeout, or a connection error. */
int hxfr__guest_wait_input(struct hxfr_client *c, uint64_t deadline);

/* Writes all iovecs from a non-blocking fd. While the fd is not writable
 * it reads and delivers what the host sends. A write that makes no
 * progress for io_timeout_ms drops the connection. */
int hxfr__guest_send_iov(struct hxfr_client *c, struct iovec *iov, size_t iovcnt);

/* Encodes m (no body) with the given header session id and sends it. */
int hxfr__guest_send_msg_session(struct hxfr_client *c, struct hxfr_msg *m, uint16_t session_id);

/* Encodes m (no body) on the client's session and sends it. */
int hxfr__guest_send_msg(struct hxfr_client *c, struct hxfr_msg *m);

/* True for the errors of a connection the host closed (EOF, reset): a
 * reply read just before still counts. A protocol violation right after
 * the reply fails the call (the host is misbehaving, not just leaving). */
bool hxfr__guest_closed_by_host(int err);

/* Waits up to timeout_ms for a reply of type (or an ERROR) to a blocking
 * request. */
int hxfr__guest_await_reply(struct hxfr_client *c, uint8_t type, int timeout_ms,
                            struct hxfr_msg *out);

/* ---- request.c: request/reply exchanges ------------------------------------ */

/* Sends CONFIG_REQ for c->cfg and waits for CONFIG_RESP (into *resp if
 * not NULL). */
int hxfr__guest_send_config(struct hxfr_client *c, struct hxfr_config_resp *resp);

/* Sends HELLO and waits for HELLO_RESP: c->caps. A v1 host answering
 * ERROR counts as success without extensions. */
int hxfr__guest_send_hello(struct hxfr_client *c);

/* Sends SUBSCRIBE for c->scanout (header session id = scanout id, as
 * push mode uses it) and waits for a successful SUBSCRIBE_RESP. */
int hxfr__guest_send_subscribe(struct hxfr_client *c, int timeout_ms);

/* Sends ENABLE_SCANOUT (enable) or DISABLE_SCANOUT for id, header session
 * id = scanout id, and waits for SCANOUT_RESP. A refusal (success = 0)
 * becomes -HXFR_EREMOTE like an ERROR. */
int hxfr__guest_send_scanout(struct hxfr_client *c, bool enable,
                             const struct hxfr_enable_scanout *q, int timeout_ms,
                             struct hxfr_scanout_resp *resp);

/* Sends SHM_ATTACH for the client's ring (with the memfd, if it is one)
 * and waits for SHM_ATTACH_RESP. Nothing is in flight when it runs. */
int hxfr__guest_send_attach(struct hxfr_client *c);

/* ---- connect.c: connections ------------------------------------------------ */

/* Connected, or reconnected when the options allow it. */
int hxfr__guest_ensure_connected(struct hxfr_client *c);

/* ---- frame.c: frames in flight --------------------------------------------- */

/* Connects if needed and waits for every frame in flight, so that the
 * answer to the request that follows (an ERROR included) is attributable
 * to it, and a ring's slots are all back before a new one is attached. */
int hxfr__guest_settle(struct hxfr_client *c);

/* Waits until a frame may be sent: connected, and a window slot free. */
int hxfr__guest_prepare_submit(struct hxfr_client *c, int timeout_ms);

/* f's stride (its strides[0], or the packed one) and geometry, checked
 * against the client's limit. Returns 0 or -HXFR_E*. */
int hxfr__guest_frame_geometry(const struct hxfr_client *c, const struct hxfr_client_frame *f,
                               uint32_t *stride, struct hxfr_geometry *g);

/* Fills a FRAME_REQUEST for f on the client's session, whether the pixels
 * follow as its body or sit in shared-memory slot resource_id. Returns
 * whether this frame is to be a keyframe. */
bool hxfr__guest_frame_request_init(struct hxfr_client *c, struct hxfr_msg *m,
                                    const struct hxfr_client_frame *f, uint8_t flags,
                                    uint32_t resource_id, uint32_t stride);

/* Records a sent frame in the window; slot is its shared-memory slot or -1. */
void hxfr__guest_pending_push(struct hxfr_client *c, const struct hxfr_client_frame *f,
                              uint64_t start_ns, bool forced, int slot);

#endif
