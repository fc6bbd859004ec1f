/* libhxfr-host internals: the objects the event loop owns.
 *
 * Ownership in one paragraph: struct hxfr_host owns listeners, clients and
 * the worker pool. A client owns its sessions. A session owns its frame
 * pool (window entries, each a reusable pixel buffer) and its encoder. A
 * frame is lent to a worker while it is encoded (session->running); while a
 * frame runs, only that worker touches the session's encoder, and the loop
 * does not free the session (a session whose client vanished becomes a
 * zombie on host->zombies until its running frame comes back).
 *
 * Everything here is touched only by the loop thread, except the fields
 * marked "worker" (written by the worker running the frame, read by the
 * loop after the completion went through the worker pool's mutex).
 */
#ifndef HXFR_HOST_PRIVATE_H
#define HXFR_HOST_PRIVATE_H

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#include <hxfr/host.h>
#include <hxfr/proto.h>

#include "encoders/encoder.h"
#include "transport/transport.h"

#define HXFR_HOST_WINDOW_DEFAULT       4u
#define HXFR_HOST_WINDOW_MAX           64u
#define HXFR_HOST_MAX_CLIENTS_DEFAULT  64u
#define HXFR_HOST_MAX_SESSIONS_DEFAULT 16u
#define HXFR_HOST_MAX_OUTPUT_DEFAULT   (64u * 1024u * 1024u)
#define HXFR_HOST_SHUTDOWN_DEFAULT_MS  2000u
#define HXFR_HOST_HANDSHAKE_DEFAULT_MS 10000u
#define HXFR_HOST_MAX_LISTENERS        16
#define HXFR_HOST_RBUF_SIZE            16384u
#define HXFR_HOST_LINGER_MS            1000u
#define HXFR_HOST_TICK_MS              250u
#define HXFR_HOST_SAMPLES              256u /* encode-time samples per session */
#define HXFR_HOST_FD_BATCHES           4u   /* fd batches a client may have pending */

/* What an epoll_event's data.ptr points to: the first member of every
 * watched object. */
enum hxfr__watch_kind {
    HXFR__WATCH_LISTENER = 1,
    HXFR__WATCH_CLIENT,
    HXFR__WATCH_WORKERS,
    HXFR__WATCH_STOP,
    HXFR__WATCH_TIMER,
    HXFR__WATCH_SCANOUT, /* the keepalive timer (scanout.c) */
};

struct hxfr__watch {
    enum hxfr__watch_kind kind;
};

/* Immutable bytes queued for one or more clients (reference counted so a
 * scanout can fan one encoded frame out to several subscribers). */
struct hxfr__outbuf {
    unsigned refs;
    size_t len;
    uint8_t data[];
};

struct hxfr__outq_entry {
    struct hxfr__outq_entry *next;
    struct hxfr__outbuf *buf;
    size_t off;
};

/* An answer to a request of a session that must wait for the answers of
 * earlier frames of that session (docs/protocol.md, "Answer order"). */
struct hxfr__answer {
    struct hxfr__answer *next;
    uint64_t after; /* goes out once this many frames are answered */
    struct hxfr__outbuf *buf;
};

struct hxfr__session;
struct hxfr__frame;
struct hxfr__shm_ring; /* shm.c */

/* Descriptors that arrived with one recvmsg, and the stream bytes that
 * read returned ([start, end) counted from the first byte of the
 * connection): the SHM_ATTACH whose header starts in that range owns them.
 * truncated: the kernel dropped some (MSG_CTRUNC); none were kept. */
struct hxfr__fd_batch {
    uint64_t start, end;
    int fds[HXFR_RECV_FDS_CAP];
    int nfds;
    bool truncated;
};

/* Where a frame's pixels come from. acquire happens while the request is
 * handled (source specific: reading the body, asking the resolver, ...);
 * release is called on the loop thread once the frame is done, whatever the
 * outcome. A shared-memory source adds one more of these. */
struct hxfr__frame_source_ops {
    const char *name;
    void (*release)(struct hxfr__frame *f);
};

enum hxfr__frame_state {
    HXFR__FRAME_FREE = 0,
    HXFR__FRAME_FILLING, /* pixels arriving from the socket */
    HXFR__FRAME_QUEUED,  /* waiting for the session's encoder */
    HXFR__FRAME_RUNNING, /* at a worker */
};

struct hxfr__frame {
    struct hxfr__session *session;
    struct hxfr__frame *next; /* session queue / worker queues */
    enum hxfr__frame_state state;
    uint64_t seq; /* per session, request order */

    /* The pooled pixel buffer, reused across frames (inline source). */
    uint8_t *buf;
    size_t cap;
    size_t fill; /* bytes of the body received so far */

    const struct hxfr__frame_source_ops *source;
    struct hxfr_host_pixels ext; /* resolver-provided pixels */

    /* Shared-memory source: the ring (a reference), the slot, and whether
     * the slot went back to the client before the frame completed. */
    struct hxfr__shm_ring *ring;
    uint32_t slot;
    bool early_release; /* client takes SLOT_RELEASE (set before the
                           frame goes to a worker) */
    bool slot_released;
    struct hxfr__frame *consumed_next; /* workers' consumed list */

    struct hxfr_image img;
    int64_t pts;
    bool force_idr;
    struct hxfr_encoder_config cfg; /* snapshot of the session settings */
    uint32_t cfg_gen;

    /* Results (worker). */
    int status; /* enum hxfr_status */
    char errmsg[160];
    struct hxfr__outbuf *out; /* complete FRAME_RESPONSE message */
    bool keyframe;
    uint64_t au_bytes;
    uint64_t encode_ns;
    char codec[HXFR_ENCODER_NAME_LEN];

    /* Scanout sessions (scanout.h): enum hxfr__keep_op, set by the loop;
     * kept_bytes is written by the worker that copied the picture. */
    uint8_t keep_op;
    uint64_t kept_bytes;
};

struct hxfr__client;

struct hxfr__session {
    struct hxfr_host *host;
    struct hxfr__client *client; /* NULL for a zombie */
    struct hxfr__session *next;
    uint16_t id;

    struct hxfr__shm_ring *shm; /* attached ring (a reference), or NULL */

    /* Settings from CONFIG_REQ, applied by the next frame's worker. */
    struct hxfr_encoder_config cfg;
    uint32_t cfg_gen;
    bool force_idr_next;

    struct hxfr__frame *frames; /* pool: nframes entries */
    unsigned nframes;
    struct hxfr__frame *queue_head, *queue_tail;
    struct hxfr__frame *running;
    uint64_t next_seq;
    uint64_t done_seq; /* seq of the last frame delivered */
    uint64_t answered; /* frames delivered (answered or failed) */
    /* Answers held behind frames still in flight, oldest first; each
     * counts in the client's inflight until it is sent. */
    struct hxfr__answer *answers_head, *answers_tail;

    /* Delivery of a finished frame (encoded or failed). A session that a
     * scanout owns delivers to its subscribers instead of one client. */
    void (*deliver)(struct hxfr__session *s, struct hxfr__frame *f);
    void *owner;
    /* The last published picture of a scanout session (scanout.h); NULL for
     * other sessions. Freed with the session. */
    struct hxfr__keep *keep;

    /* Worker: the encoder and what it was opened for. */
    struct hxfr_encoder *enc;
    uint32_t enc_gen;
    uint32_t enc_width, enc_height, enc_format;

    /* Statistics (loop). */
    uint32_t last_width, last_height, last_format;
    char codec[HXFR_ENCODER_NAME_LEN];
    uint64_t frames_done, keyframes, encoded_bytes, pixel_bytes_copied, shm_frames;
    uint64_t interval_start_ns, interval_frames, interval_bytes;
    uint32_t samples[HXFR_HOST_SAMPLES]; /* encode time, microseconds */
    unsigned nsamples;
};

enum hxfr__body_mode {
    HXFR__BODY_NONE = 0,
    HXFR__BODY_FRAME,   /* into frame->buf */
    HXFR__BODY_DISCARD, /* a rejected request's body: dropped unbuffered */
};

struct hxfr__client {
    struct hxfr__watch watch;
    struct hxfr_host *host;
    struct hxfr__client *prev, *next;
    uint64_t id;
    int fd;
    bool is_tcp;
    bool is_unix; /* fds can arrive (SCM_RIGHTS) */
    char peer[96];

    /* Received descriptors waiting for the SHM_ATTACH they came with. */
    struct hxfr__fd_batch fdq[HXFR_HOST_FD_BATCHES];
    unsigned nfdq;
    uint64_t rx_bytes;  /* bytes received on this connection */
    uint64_t msg_start; /* stream offset of the message being parsed */

    struct hxfr_parser parser;
    uint8_t rbuf[HXFR_HOST_RBUF_SIZE];
    size_t rpos, rlen;
    enum hxfr__body_mode body_mode;
    struct hxfr__frame *body_frame;

    struct hxfr__outq_entry *out_head, *out_tail;
    size_t out_bytes;

    struct hxfr__session *sessions;
    unsigned nsessions;
    unsigned inflight; /* frames accepted, not yet answered */

    bool hello; /* sent HELLO (not a plain v1 client) */
    uint32_t peer_caps;
    bool paused;    /* window full: input not parsed */
    bool closing;   /* fatal error sent: flush, then linger */
    bool lingering; /* write side shut: drain input until EOF */
    bool eof;       /* peer shut its write side */
    bool cut;       /* must be closed at the next safe point */
    char cut_reason[96];
    uint64_t linger_deadline_ms;
    uint32_t events; /* current epoll mask */
    uint64_t last_activity_ms;
    uint64_t accepted_ms;
    bool greeted; /* sent one complete message (or exempt) */
    uint64_t pixel_bytes_copied;
    uint64_t requests;
    uint64_t errors_sent;
    size_t pool_bytes; /* frame buffers held by its sessions */
};

struct hxfr__listener {
    struct hxfr__watch watch;
    struct hxfr_host *host;
    int fd;
    char uri[300];
    char unlink_path[128]; /* socket file we created, or "" */
    dev_t dev;
    ino_t ino;
    bool resting; /* out of epoll after EMFILE */
};

/* Worker pool: a job queue and a completion queue behind one mutex. */
struct hxfr__workers {
    struct hxfr__watch watch;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_t *threads;
    unsigned nthreads;
    bool quit;
    struct hxfr__frame *jobs_head, *jobs_tail;
    struct hxfr__frame *done_head, *done_tail;
    /* Frames whose pixels the encoder has finished reading (shared-memory
     * slots to hand back early), oldest first. */
    struct hxfr__frame *consumed_head, *consumed_tail;
    int efd;          /* eventfd: completions are waiting */
    unsigned running; /* frames handed to the pool, not yet back */
};

struct hxfr_host {
    struct hxfr_host_config cfg; /* defaults applied */
    char *encoder_name;
    char *preset;
    uint32_t max_body;

    int epfd;
    struct hxfr__watch stop_watch;
    int stop_efd;
    struct hxfr__watch timer_watch;
    int timer_fd;
    bool timer_armed;

    struct hxfr__listener *listeners[HXFR_HOST_MAX_LISTENERS];
    int nlisteners;
    int listeners_resting;

    struct hxfr__client *clients;
    unsigned nclients;
    uint64_t full_ms; /* last time max_clients was reached */
    uint64_t next_client_id;
    struct hxfr__session *zombies;
    struct hxfr__client *dead; /* closed, freed at the end of dispatch */

    struct hxfr__workers workers;

    bool stopping;
    bool stopped;
    bool deadline_passed;
    uint64_t stop_deadline_ms;

    struct hxfr_host_stats stats;
    struct hxfr__scanout_set *scanouts; /* scanout.c */

    /* Host-configured shared-memory regions (copied from the config). */
    struct hxfr_host_shm_region *regions;
    unsigned nregions;
};

/* host.c */
uint64_t hxfr__now_ms(void);
uint64_t hxfr__now_ns(void);
void hxfr__log(struct hxfr_host *h, enum hxfr_host_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void hxfr__host_update_timer(struct hxfr_host *h);

/* client.c */
/* exempt: no handshake deadline (hxfr_host_add_client). */
int hxfr__client_accept(struct hxfr_host *h, int fd, const char *via, bool exempt);
void hxfr__client_on_event(struct hxfr__client *c, uint32_t events);
void hxfr__client_close(struct hxfr__client *c, const char *why);
void hxfr__client_update_events(struct hxfr__client *c);
int hxfr__client_send(struct hxfr__client *c, struct hxfr__outbuf *buf);
/* Starts a message for the client: all zero but its type and session. */
static inline void hxfr__msg_start(struct hxfr_msg *m, uint8_t type, uint16_t session_id)
{
    memset(m, 0, sizeof(*m));
    m->hdr.type = type;
    m->hdr.session_id = session_id;
}
/* Sends m. Answers to a session's requests (everything but PONG,
 * HELLO_RESP and SLOT_RELEASE) wait behind the frames of that session still
 * in flight, so a session's answers leave in request order. */
int hxfr__client_send_msg(struct hxfr__client *c, const struct hxfr_msg *m);
/* ERROR answering a request of session_id: ordered like send_msg. */
void hxfr__client_send_error(struct hxfr__client *c, uint16_t session_id, int32_t code,
                             const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* ERROR sent at once: a frame's own result (it is the answer whose turn it
 * is), a fatal protocol error, or an event that answers no request. */
void hxfr__client_send_error_now(struct hxfr__client *c, uint16_t session_id, int32_t code,
                                 const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void hxfr__client_flush(struct hxfr__client *c);
void hxfr__client_resume(struct hxfr__client *c);
void hxfr__client_tick(struct hxfr__client *c, uint64_t now_ms);
void hxfr__client_stop_reading(struct hxfr__client *c);

/* outbuf.c helpers (in client.c) */
struct hxfr__outbuf *hxfr__outbuf_new(size_t len);
void hxfr__outbuf_unref(struct hxfr__outbuf *b);

/* session.c */
/* The delivery of a session a client owns (the default deliver). */
void hxfr__session_deliver_client(struct hxfr__session *s, struct hxfr__frame *f);
struct hxfr__session *hxfr__session_get(struct hxfr__client *c, uint16_t id, bool create);
void hxfr__session_detach(struct hxfr__session *s);
void hxfr__session_destroy(struct hxfr__session *s);
struct hxfr__frame *hxfr__session_frame_get(struct hxfr__session *s);
void hxfr__frame_put(struct hxfr__frame *f);
void hxfr__session_submit(struct hxfr__session *s, struct hxfr__frame *f);
/* A frame came back from the workers: record, deliver, free, go on. May
 * destroy a zombie session. */
void hxfr__session_complete(struct hxfr__session *s, struct hxfr__frame *f);
/* Sends buf (an answer to a request of s) now if no frame of s is in
 * flight, else holds it until those frames are answered. Takes buf.
 * Returns 0 or -errno (the client is cut). */
int hxfr__session_answer(struct hxfr__session *s, struct hxfr__outbuf *buf);
void hxfr__session_fail_queued(struct hxfr__session *s, int32_t status, const char *msg);
void hxfr__session_record(struct hxfr__session *s, const struct hxfr__frame *f);
void hxfr__session_stats(struct hxfr__session *s, struct hxfr_host_session_stats *out, bool reset);

/* Builds the complete FRAME_RESPONSE message (header, fixed part, one unit
 * per NAL of the Annex B access unit) for session_id. NULL + errno. */
struct hxfr__outbuf *hxfr__frame_response_build(uint16_t session_id, int64_t pts, int64_t dts,
                                                bool keyframe, const uint8_t *au, size_t size);

/* Percentile (0..100) of n samples; sorts a copy. 0 for n == 0. */
uint32_t hxfr__percentile(const uint32_t *samples, unsigned n, unsigned pct);

/* shm.c: shared-memory rings and received descriptors. */
/* Reads from the client: recvmsg with fd collection on UNIX sockets (fds
 * are queued with the stream range they arrived with), read() elsewhere.
 * keep_fds false closes any fd at once. Returns bytes, 0 at EOF, -errno. */
ssize_t hxfr__client_recv(struct hxfr__client *c, void *buf, size_t len, bool keep_fds);
/* Closes queued fds that no message can claim any more (each answered
 * ERROR SHM). next_header is the stream offset of the next message whose
 * header has not been handled. */
void hxfr__client_fds_sweep(struct hxfr__client *c, uint64_t next_header);
void hxfr__client_fds_close(struct hxfr__client *c);
void hxfr__shm_handle_attach(struct hxfr__client *c, const struct hxfr_msg *m);
/* Validates a FRAME_REQUEST with HXFR_FLAG_SHM against the session's ring
 * and fills f (image planes inside the mapping, source, slot ownership).
 * Returns 0, or a wire status after sending nothing (the caller answers). */
int hxfr__shm_frame_setup(struct hxfr__session *s, struct hxfr__frame *f,
                          const struct hxfr_frame_request *req, const struct hxfr_geometry *g,
                          char *why, size_t why_len);
/* Loop: the encoder no longer reads f's slot: hand it back (SLOT_RELEASE). */
void hxfr__shm_frame_consumed(struct hxfr__frame *f);
void hxfr__shm_ring_unref(struct hxfr_host *h, struct hxfr__shm_ring *r);
/* HXFR_CAP_* bits this server offers c for shared memory. */
uint32_t hxfr__shm_caps(const struct hxfr__client *c);
int hxfr__shm_regions_init(struct hxfr_host *h, const struct hxfr_host_config *cfg);
void hxfr__shm_regions_finish(struct hxfr_host *h);

/* worker.c */
int hxfr__workers_init(struct hxfr__workers *w, unsigned n);
void hxfr__workers_finish(struct hxfr__workers *w);
void hxfr__workers_push(struct hxfr__workers *w, struct hxfr__frame *f);
/* Moves frames not yet picked up by a worker to the done list, failed
 * with SHUTTING_DOWN (they come back through the eventfd). */
void hxfr__workers_cancel_pending(struct hxfr__workers *w);
/* Takes every finished frame (in completion order), and in *consumed the
 * frames whose pixels were consumed early (handle those first: a frame
 * can be on both lists). */
struct hxfr__frame *hxfr__workers_take_done(struct hxfr__workers *w, struct hxfr__frame **consumed);
void hxfr__frame_encode(struct hxfr__frame *f);

#endif
