/* libhxfr-host internals: the objects the event loop owns.
 *
 * Ownership in one paragraph: struct hxfr_host owns listeners, clients and
 * the worker pool. A client owns its connection and its sessions. A
 * session owns its frame pool (window entries, each a reusable pixel
 * buffer) and its encoder. A frame is lent to a worker while it is encoded
 * (session->running); while a frame runs, only that worker touches the
 * session's encoder, and the loop does not free the session (a session
 * whose client vanished becomes a zombie on host->zombies until its
 * running frame comes back).
 *
 * Everything here is touched only by the loop thread, except what a frame
 * lends to its worker (frame.h, encode.h; read back by the loop after the
 * completion went through the worker pool's mutex).
 *
 * The layers of src/host, top to bottom (a file calls only into files
 * below it; docs/host.md has the map): host.c; client.c; request.c,
 * request-frame.c; scanout.c; session.c; answer.c; worker.c, encode.c;
 * the frame sources (source-*.c, frame.c); conn.c, listener.c; outbuf.c,
 * log.c. This header only defines objects.
 */
#ifndef HXFR_HOST_PRIVATE_H
#define HXFR_HOST_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hxfr/host.h>
#include <hxfr/proto.h>

#include "conn.h"
#include "encode.h"
#include "frame.h"
#include "listener.h"
#include "log.h"
#include "outbuf.h"
#include "queue.h"
#include "watch.h"
#include "worker.h"

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

/* An answer to a request of a session that must wait for the answers of
 * earlier frames of that session (docs/protocol.md, "Answer order"). */
struct hxfr__answer {
    struct hxfr__qlink link;
    uint64_t after; /* goes out once this many frames are answered */
    struct hxfr__outbuf *buf;
};

struct hxfr__client;
struct hxfr__scanout_set; /* scanout.c */

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
    /* A scanout session's bitrate ceiling from its subscribers' CONFIG_REQ
     * (scanout.c; 0 = none): frames are encoded at the lower nonzero of
     * this and cfg.bitrate (hxfr__session_bitrate). */
    uint32_t bitrate_cap;

    struct hxfr__frame *frames; /* pool: nframes entries */
    unsigned nframes;
    struct hxfr__queue queue; /* frames waiting for the encoder (link) */
    struct hxfr__frame *running;
    uint64_t next_seq;
    uint64_t done_seq; /* seq of the last frame delivered */
    uint64_t answered; /* frames delivered (answered or failed) */
    /* Answers held behind frames still in flight, oldest first; each
     * counts in the client's inflight until it is sent. */
    struct hxfr__queue answers;

    /* Delivery of a finished frame (encoded or failed). A session that a
     * scanout owns delivers to its subscribers instead of one client. */
    void (*deliver)(struct hxfr__session *s, struct hxfr__frame *f);
    void *owner;
    /* The last published picture of a scanout session; NULL for other
     * sessions. Freed with the session. */
    struct hxfr__keep *keep;

    /* The encoder: its worker's while a frame runs (encode.h). */
    struct hxfr__encoding encoding;

    /* Statistics (loop). codec_gen: the settings generation codec was
     * reported for (the loop's copy; encoding.gen is the worker's). */
    uint32_t last_width, last_height, last_format;
    char codec[HXFR_ENCODER_NAME_LEN];
    uint32_t codec_gen;
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
    struct hxfr__watch watch; /* HXFR__WATCH_CLIENT */
    struct hxfr_host *host;
    struct hxfr__client *prev, *next;
    uint64_t id;
    struct hxfr__conn conn;

    uint64_t msg_start; /* stream offset of the message being parsed */
    struct hxfr_parser parser;
    uint8_t rbuf[HXFR_HOST_RBUF_SIZE];
    size_t rpos, rlen;
    enum hxfr__body_mode body_mode;
    struct hxfr__frame *body_frame;

    struct hxfr__session *sessions;
    unsigned nsessions;
    unsigned inflight; /* frames accepted, not yet answered */

    bool hello; /* sent HELLO (not a plain v1 client) */
    uint32_t peer_caps;
    bool paused;    /* window full: input not parsed */
    bool closing;   /* fatal error sent: flush, then linger */
    bool lingering; /* write side shut: drain input until EOF */
    bool eof;       /* peer shut its write side */
    uint64_t linger_deadline_ms;
    uint64_t accepted_ms;
    bool greeted; /* sent one complete message (or exempt) */
    uint64_t pixel_bytes_copied;
    uint64_t requests;
    uint64_t errors_sent;
    size_t pool_bytes; /* frame buffers held by its sessions */
};

struct hxfr_host {
    struct hxfr_host_config cfg; /* defaults applied */
    struct hxfr__log log;
    struct hxfr__limits limits;
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

#endif
