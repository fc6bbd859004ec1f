/* libhxfr-host: the host side of hxfr as an embeddable library.
 *
 * A struct hxfr_host is a server: it listens on one or more endpoints
 * (unix:, tcp:, vsock: URIs or file descriptors the embedder passes), runs
 * one event loop (epoll) that owns every client connection, session and
 * output queue, and encodes frames on a pool of worker threads that report
 * back to the loop through an eventfd. hxfrd is a thin main() over this
 * library; a VMM embeds the same server, resolves GPU resource ids to
 * pixels with a callback (struct hxfr_host_resolver) and publishes its
 * display's scanouts (hxfr_host_scanout_*).
 *
 * Threading: every function here must be called from one thread, the "loop
 * thread" (the thread that calls hxfr_host_run() or hxfr_host_dispatch()),
 * except hxfr_host_stop(), which may be called from any thread and from a
 * signal handler. Callbacks (log, resolver, scanout ops) are always called on the loop
 * thread (the FFmpeg log sink of hxfr_host_set_ffmpeg_log() excepted), from inside
 * hxfr_host_run()/hxfr_host_dispatch()/hxfr_host_new()/ hxfr_host_destroy(); they must not call
 * back into the server except for the getters documented as callback-safe
 * (and what struct hxfr_host_scanout_ops allows its enable and disable).
 *
 * The library never writes to stdout/stderr: it reports through the log
 * callback. It ignores nothing silently: every rejected request is answered
 * with an ERROR message on the wire and reported to the log callback.
 */
#ifndef HXFR_HOST_H
#define HXFR_HOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hxfr/hxfr.h>
#include <hxfr/proto.h>

#ifdef __cplusplus
extern "C" {
#endif

struct hxfr_host;

enum hxfr_host_log_level {
    HXFR_HOST_LOG_ERROR = 0, /* the server itself failed (not a peer's fault) */
    HXFR_HOST_LOG_WARN,      /* a peer misbehaved or was cut */
    HXFR_HOST_LOG_INFO,      /* connects, disconnects, listeners */
    HXFR_HOST_LOG_DEBUG,     /* per-request detail */
};

/* Log sink. msg is one line without a trailing newline, borrowed for the
 * duration of the call. Called on the loop thread. */
typedef void (*hxfr_host_log_fn)(void *opaque, enum hxfr_host_log_level level, const char *msg);

/* One contiguous run of a resource's bytes in the embedder's memory: a
 * piece of a guest resource's backing in the VMM's mapping of guest RAM.
 * The bytes [offset, offset + len) of the resource are at host. */
struct hxfr_host_piece {
    const uint8_t *host;
    uint64_t offset;
    uint64_t len;
};

/* Most pieces one picture may come in (a 4K framebuffer in 4 KiB pages
 * that nothing merged is 8100). */
#define HXFR_HOST_MAX_PIECES 65536u

/* Pixels the embedder lends the server: a GPU resource resolved by
 * hxfr_host_resolver.acquire, a frame published into a scanout
 * (hxfr_host_scanout_publish) or a scanout's current picture
 * (hxfr_host_scanout_ops.acquire). The memory must stay valid until the
 * matching release; the server reads it on a worker thread in between,
 * in place (never copied whole).
 *
 * Two forms. Contiguous: planes and strides, pieces NULL. Scattered
 * (resolver version 2, published frames), packed RGB formats only:
 * pieces lists the resource's bytes in resource order, each piece
 * starting where the previous one ended (no gaps, no overlaps; pieces
 * outside the picture are ignored), planes are ignored, and pixel (x, y)
 * is resource byte offset + y * strides[0] + x * 4. The pieces array
 * itself is copied before the call that hands it over returns; only the
 * memory it points at stays borrowed. Fields the embedder does not use
 * are zero (the server zeroes *out before acquire). */
struct hxfr_host_pixels {
    uint32_t format; /* enum hxfr_format */
    uint32_t width;
    uint32_t height;
    const uint8_t *planes[3]; /* as many as the format has planes */
    uint32_t strides[3];
    void *handle; /* embedder's own, handed back to release */
    const struct hxfr_host_piece *pieces;
    uint32_t n_pieces; /* at most HXFR_HOST_MAX_PIECES */
    uint64_t offset;   /* resource byte of pixel (0, 0) */
};

/* Resolves a FRAME_REQUEST without inline pixels (and without the SHM flag)
 * to pixels. Both functions are called on the loop thread. The pixels are
 * read by a worker thread between acquire and release.
 *
 * acquire (required for resolution to happen): resource_id and req come
 * from the client (req is borrowed for the call; the request's width,
 * height and format are hints, the returned description is what gets
 * encoded and is validated against the server's limits). Returns 0 and
 * fills *out, or -ENOENT (answered RESOURCE_NOT_FOUND), -ENOTSUP (answered
 * NOT_GPU_TEXTURE), -ENODATA (the resource has no memory behind it:
 * answered NO_SURFACE) or another -errno (answered INTERNAL).
 * release (required with acquire): called exactly once per successful
 * acquire when the server no longer reads the pixels (encoded, failed,
 * or the client vanished). */
#define HXFR_HOST_RESOLVER_VERSION 2u /* 2: pixels may be scattered (pieces); 1 accepted */

struct hxfr_host_resolver {
    /* HXFR_HOST_RESOLVER_VERSION: the layout of this struct and the
     * contract below. Required when acquire is set: 1 (contiguous pixels
     * only) or 2 (pixels may be scattered); anything else is refused with
     * EINVAL by hxfr_host_new(). */
    uint32_t version;
    int (*acquire)(void *opaque, uint32_t resource_id, const struct hxfr_frame_request *req,
                   struct hxfr_host_pixels *out);
    void (*release)(void *opaque, struct hxfr_host_pixels *pixels);
    void *opaque;
};

/* ---- Scanouts the embedder publishes (a VMM's display) -----------------
 * A VMM that owns the guest's display (hxfr-gpu: the virtio-gpu device)
 * is the publisher of its scanouts, as in Helix's model (docs/gpu.md):
 * it enables them (hxfr_host_scanout_enable: a connector the guest sees
 * connected), publishes a frame on every flush or page flip
 * (hxfr_host_scanout_publish, with the damage), and peers' ENABLE_SCANOUT
 * and DISABLE_SCANOUT are commands to it (the enable and disable
 * callbacks below). Subscribers get what every scanout gives them (IDR on
 * join, keepalive of a still screen, their own drops when slow). Without
 * subscribers publishing costs nothing: nothing is taken, converted or
 * encoded. */

/* A rectangle of a frame, in pixels. */
struct hxfr_host_rect {
    uint32_t x, y, width, height;
};

/* A frame published into a scanout. */
struct hxfr_host_frame {
    /* The picture (contiguous or scattered), lent until
     * hxfr_host_scanout_ops.release gets it back. */
    struct hxfr_host_pixels pixels;
    /* What changed since the previous frame published into this scanout:
     * n_damage rectangles inside the picture (merged into their bounding
     * box past 16). NULL: all of it (a page flip, a new size). The server
     * converts only the damage into the encoder's picture where that
     * picture holds the previous frame; rectangles are borrowed for the
     * call. */
    const struct hxfr_host_rect *damage;
    uint32_t n_damage;
    int64_t pts; /* ns, the embedder's clock; echoed in the access unit */
};

#define HXFR_HOST_SCANOUT_OPS_VERSION 1u

/* The embedder's side of its scanouts. All calls on the loop thread,
 * from inside hxfr_host_dispatch() (or the call that releases). The
 * enable and disable callbacks may call hxfr_host_scanout_enable(),
 * _disable() and _publish(); the others must not call into the server. */
struct hxfr_host_scanout_ops {
    /* HXFR_HOST_SCANOUT_OPS_VERSION; required when any function is set
     * (hxfr_host_new() refuses anything else with EINVAL). */
    uint32_t version;
    /* Optional. A peer sent ENABLE_SCANOUT(id, width, height,
     * refresh_hz): a command to the display (plug connector id in with
     * width x height preferred). Return 0 after writing its connector name
     * into connector (len bytes, NUL-terminated; the guest kernel's name,
     * "Virtual-<id+1>") to accept: the server enables scanout id as the
     * embedder's (as hxfr_host_scanout_enable, unless the callback did),
     * answers SCANOUT_RESP success 1 with that name, and the scanout stays
     * after the peer's connection closes. Return -errno to refuse (success
     * 0). With enable set, a peer never becomes a scanout's publisher.
     * NULL: peers publish as with hxfrd. */
    int (*enable)(void *opaque, uint32_t id, uint32_t width, uint32_t height, uint32_t refresh_hz,
                  char *connector, size_t len);
    /* Optional. A peer sent DISABLE_SCANOUT(id) for a scanout the embedder
     * publishes: unplug it. Return 0 to accept (the server ends the
     * scanout, subscribers get ERROR NO_SCANOUT, the peer SCANOUT_RESP
     * success 1), -errno to refuse (success 0). NULL: the server ends it. */
    int (*disable)(void *opaque, uint32_t id);
    /* Required with hxfr_host_scanout_enable(). The picture scanout id
     * shows now, for a keepalive re-encode or a new subscriber's IDR:
     * fills *out (zeroed by the server) like a resolver's acquire.
     * -ENOENT: nothing shown (no keepalive, the subscriber waits for the
     * next published frame). Every successful acquire is released. */
    int (*acquire)(void *opaque, uint32_t id, struct hxfr_host_pixels *out);
    /* Required with hxfr_host_scanout_enable(). Gives back pixels of a
     * published frame or of acquire, exactly once each: as soon as the
     * encoder's colour conversion has read them (before the encode
     * proper), or when the frame is dropped (replaced by a newer frame
     * before its turn, scanout disabled, server stopping). A VMM completes
     * the guest's flush here: the guest then may draw again, and a guest
     * flushing faster than the encoder is paced by it. */
    void (*release)(void *opaque, uint32_t id, struct hxfr_host_pixels *pixels);
    void *opaque;
};

/* Enables scanout id (0..65535) as one the embedder publishes, or
 * reconfigures it: width x height, connector its name (copied; NULL =
 * "Virtual-<id+1>"). Subscribers may join from now on. Returns 0, -EINVAL
 * (id, a size of 0 or above the limits, no acquire/release in
 * hxfr_host_config.scanout_ops), -EBUSY (a peer publishes scanout id),
 * -ENOSPC (max_scanouts reached), -ESHUTDOWN (stopping) or -ENOMEM. */
HXFR_EXPORT int hxfr_host_scanout_enable(struct hxfr_host *host, uint32_t id, uint32_t width,
                                         uint32_t height, const char *connector);

/* Ends scanout id that the embedder publishes: its subscribers get ERROR
 * NO_SCANOUT, frames not yet encoded are released. Returns 0 or -ENOENT
 * (no such scanout of the embedder). */
HXFR_EXPORT int hxfr_host_scanout_disable(struct hxfr_host *host, uint32_t id);

/* Publishes a frame into scanout id (enabled with
 * hxfr_host_scanout_enable). frame is copied; its pixels are lent (see
 * struct hxfr_host_frame). Returns 0: taken, scanout_ops.release will give
 * the pixels back; 1: not taken (no subscriber, or the server is
 * stopping): nothing to release, the embedder completes its flush at
 * once; -ENOENT (no such scanout of the embedder) or -EINVAL (unusable
 * pixels: the reason is logged). While a frame of the scanout is being
 * encoded, one more waits; a newer frame replaces the waiting one (which
 * is released unencoded, its damage carried over): the stream follows
 * the newest picture. */
HXFR_EXPORT int hxfr_host_scanout_publish(struct hxfr_host *host, uint32_t id,
                                          const struct hxfr_host_frame *frame);

/* A shared-memory region the host offers to clients by name (hxfrd --shm
 * NAME=PATH): typically the mem-path file of QEMU's
 * "-object memory-backend-file,share=on,... -device ivshmem-plain", which
 * the guest sees as PCI BAR 2. A client attaches a ring inside it with
 * SHM_ATTACH (no fd, this name). The file is opened and mapped read-only
 * at each attach; it must not be truncated while mapped. */
struct hxfr_host_shm_region {
    const char *name; /* 1..63 bytes, unique */
    const char *path;
};

/* A timeout field set to this never expires. */
#define HXFR_HOST_TIMEOUT_NEVER 0xFFFFFFFFu

/* Routes FFmpeg's own log messages (libavcodec and the encoders it wraps,
 * e.g. "[libx264 @ 0x...] profile High, level 3.1") to fn: one line per
 * call, without newline, FFmpeg's "[name @ addr] " prefix kept, levels
 * mapped (FFmpeg panic/fatal/error -> ERROR, warning -> WARN, info ->
 * INFO, verbose/debug -> DEBUG, trace dropped); filtering is fn's job.
 *
 * Process-wide: it installs FFmpeg's global log callback, so it is meant
 * for applications (hxfrd calls it), never for libraries; libhxfr-host
 * itself never calls it. Call it once, before hxfr_host_new() and before
 * other threads use FFmpeg. fn is called on whichever thread FFmpeg logs
 * from (encoder worker threads included), so it must be thread-safe; msg
 * is borrowed for the call. fn NULL puts FFmpeg's default callback back.
 *
 * Without this call the encoder contexts libhxfr-host opens are quiet
 * (their messages are pushed below every FFmpeg log level through
 * AVCodecContext.log_level_offset; nothing global is changed), so an
 * embedding application's stderr stays clean. Messages FFmpeg logs
 * outside those contexts (e.g. hardware device setup) follow whatever the
 * application configured for FFmpeg. */
HXFR_EXPORT void hxfr_host_set_ffmpeg_log(hxfr_host_log_fn fn, void *opaque);

/* ---- For programs that run a server (hxfrd, hxfr-gpu) ------------------
 * None of these needs a server object. */

/* Calls cb(opaque, codec, backend) for every H.264 encoder this machine can
 * open (codec e.g. "libx264", backend the encoder family, "avcodec"), in
 * the order hxfrd prefers them; each is checked with a small test open, so
 * a hardware encoder compiled into FFmpeg without its device here is not
 * listed. The strings are static. cb may be NULL (count only). Opens
 * encoders: slow (tens of milliseconds each); call it from the loop thread
 * or before hxfr_host_new(). Returns the number listed (0: none can be
 * opened; a build without x264 lists no libx264). */
HXFR_EXPORT int hxfr_host_list_encoders(void (*cb)(void *opaque, const char *codec,
                                                   const char *backend),
                                        void *opaque);

/* systemd socket activation (sd_listen_fds(3), without libsystemd): when
 * LISTEN_PID names this process, takes the LISTEN_FDS listening sockets
 * passed from descriptor 3 up, makes them close-on-exec and non-blocking
 * and writes up to max of them to fds (any beyond max are closed: nobody
 * would serve them). Unsets LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES
 * whenever they named this process. The caller owns the fds; hand each to
 * hxfr_host_listen_fd(). It changes the environment, so call it before any
 * thread starts, that is, before hxfr_host_new(). Returns the number of
 * fds (0 without activation, or activation meant for another process),
 * -EINVAL (LISTEN_PID or LISTEN_FDS not a number), -EBADF (a descriptor
 * it names is not open) or another -errno; on failure no fd is kept. */
HXFR_EXPORT int hxfr_host_sd_listen_fds(int *fds, int max);

/* Writes the endpoint a server listens on when it is told none (hxfrd
 * without --listen) into buf: "unix:$XDG_RUNTIME_DIR/hxfr/hxfr.sock" (an
 * absolute XDG_RUNTIME_DIR only, ignored in setuid programs), as root
 * "unix:/run/hxfr/hxfr.sock", otherwise "unix:/tmp/hxfr-$UID/hxfr.sock".
 * Returns its length, or -ENAMETOOLONG (buf too small, or the socket path
 * longer than a UNIX socket allows). */
HXFR_EXPORT int hxfr_host_default_uri(char *buf, size_t len);

/* Server settings. Initialize with hxfr_host_config_init(), then change
 * fields. Zero numeric fields take the documented defaults. Strings are
 * copied by hxfr_host_new(). */
struct hxfr_host_config {
    const char *encoder; /* FFmpeg encoder name; NULL = "libx264" ("libopenh264"
                            in a build without x264) */
    const char *preset;  /* encoder preset; NULL = encoder default */
    int encoder_threads; /* threads per encoder; 0 = encoder's choice */
    uint32_t gop;        /* default keyframe interval in frames; 0 = 60 */
    unsigned workers;    /* encode threads; 0 = one per online CPU */
    unsigned window;     /* frames in flight per client; 0 = 4, max 64 */
    uint32_t max_width;  /* frame limits; 0 = 5120, clamped to 8192 */
    uint32_t max_height;
    unsigned max_clients;          /* 0 = 64; more are answered BUSY and closed */
    unsigned max_sessions;         /* sessions per client; 0 = 16 */
    size_t max_output;             /* queued output bytes per client before it
                                      is cut; 0 = 64 MiB */
    unsigned idle_timeout_ms;      /* close clients silent this long with nothing
                                      in flight; 0 = never */
    unsigned handshake_timeout_ms; /* close a connection accepted on a listener
                                   that has not sent one complete message
                                   within this time (silent connections must
                                   not hold max_clients slots; over UNIX
                                   sockets only if max_clients was reached
                                   since it connected); 0 = 10000,
                                   HXFR_HOST_TIMEOUT_NEVER = never. Clients
                                   added with hxfr_host_add_client() are
                                   exempt (the embedder vouches for them). */
    unsigned shutdown_timeout_ms;  /* bound on finishing in-flight frames and
                                      flushing output after stop; 0 = 2000 */
    /* Scanouts (push mode, docs/protocol.md section 11). */
    unsigned keepalive_ms;              /* a scanout with subscribers whose publisher
                                           sent nothing for this long re-encodes its
                                           last frame; 0 = 500 */
    unsigned max_scanouts;              /* scanouts enabled at once, whole server;
                                           0 = 16 */
    unsigned max_subscribers;           /* subscribers per scanout; 0 = 32 */
    unsigned subscriber_queue;          /* messages queued for one subscriber before
                                           its access units are dropped (it resumes
                                           at the next IDR); 0 = 8 */
    unsigned scanout_timeout_ms;        /* an enabled scanout outlives the connection
                                           that enabled it; it ends after this long
                                           with neither publisher nor subscribers;
                                           0 = 60000, HXFR_HOST_TIMEOUT_NEVER =
                                           only DISABLE_SCANOUT ends it */
    enum hxfr_host_log_level log_level; /* most verbose level passed to log */
    hxfr_host_log_fn log;               /* NULL = no logging */
    void *log_opaque;
    struct hxfr_host_resolver resolver;             /* all NULL = RESOURCE_NOT_FOUND */
    struct hxfr_host_scanout_ops scanout_ops;       /* all NULL: no embedder scanouts */
    const struct hxfr_host_shm_region *shm_regions; /* copied; may be NULL */
    unsigned shm_region_count;
};

/* Sets every field to its default (see above): zeros, log_level INFO. */
HXFR_EXPORT void hxfr_host_config_init(struct hxfr_host_config *cfg);

/* Creates a server and starts its worker threads. It listens nowhere yet.
 * Returns NULL and sets errno (EINVAL bad settings, ENOMEM, or the errno of
 * a failed epoll/eventfd/thread creation). The caller owns the result and
 * frees it with hxfr_host_destroy(). */
HXFR_EXPORT struct hxfr_host *hxfr_host_new(const struct hxfr_host_config *cfg);

/* Closes every listener and client at once (no flushing; use
 * hxfr_host_stop() and run until it reports stopped for a clean shutdown),
 * removes the UNIX socket files it created, waits for encodes in progress,
 * joins the workers and frees everything. Accepts NULL. */
HXFR_EXPORT void hxfr_host_destroy(struct hxfr_host *host);

/* Listens on uri (transport URI: unix:PATH, tcp:HOST:PORT, vsock:PORT; a
 * bare path is unix:). If bound is not NULL, the actual endpoint (with the
 * kernel-chosen port for tcp:...:0) is written there (NUL-terminated,
 * truncated to len). Returns a listener index >= 0, or -errno
 * (-EADDRINUSE a live socket is there, -EAFNOSUPPORT no AF_VSOCK on this
 * machine, -EINVAL malformed URI, ...). */
HXFR_EXPORT int hxfr_host_listen(struct hxfr_host *host, const char *uri, char *bound, size_t len);

/* Adds an already listening socket (systemd socket activation, or a
 * socket the embedder created). The server takes ownership of fd (closes
 * it on destroy, also on failure) and makes it non-blocking. It never
 * removes a socket file it did not create. Returns a listener index or
 * -errno. */
HXFR_EXPORT int hxfr_host_listen_fd(struct hxfr_host *host, int fd);

/* Serves an already connected stream socket (for example one end of a
 * socketpair whose other end a VMM wires to a guest device). The server
 * takes ownership of fd (closes it when the client goes, also on failure)
 * and makes it non-blocking. label names the connection in log lines
 * (copied; NULL = "fd"). Counts against max_clients like any accepted
 * connection (beyond it the peer gets ERROR BUSY, fd is closed and the
 * result is -EBUSY). Returns 0 or -errno. */
HXFR_EXPORT int hxfr_host_add_client(struct hxfr_host *host, int fd, const char *label);

/* Writes the endpoint URI of listener index into buf. Returns its length or
 * -ENOENT / -ENOSPC. Callback-safe. */
HXFR_EXPORT int hxfr_host_listener_uri(struct hxfr_host *host, int index, char *buf, size_t len);

/* Embedding in a foreign event loop: an fd that becomes readable whenever
 * the server has work (poll it for POLLIN); then call
 * hxfr_host_dispatch(host, 0). The fd belongs to the server. */
HXFR_EXPORT int hxfr_host_get_fd(struct hxfr_host *host);

/* Handles whatever is ready, waiting up to timeout_ms (-1 forever, 0 not
 * at all). Returns 0 while the server runs, 1 once it has stopped after
 * hxfr_host_stop() (all in-flight frames finished or failed, clients
 * closed; call hxfr_host_destroy() next), or a negative -errno if the loop
 * itself failed. */
HXFR_EXPORT int hxfr_host_dispatch(struct hxfr_host *host, int timeout_ms);

/* Runs the loop until the server has stopped. Returns 0 or -errno. */
HXFR_EXPORT int hxfr_host_run(struct hxfr_host *host);

/* Requests a clean stop: the server stops accepting (listeners closed, its
 * socket files removed), stops reading requests, finishes or fails the
 * frames in flight within shutdown_timeout_ms, flushes what it can and
 * closes every client. Async-signal-safe and callable from any thread (it
 * only writes to an eventfd). */
HXFR_EXPORT void hxfr_host_stop(struct hxfr_host *host);

/* Whole-server counters. */
struct hxfr_host_stats {
    uint32_t listeners;
    uint32_t clients;          /* connected now */
    uint32_t sessions;         /* alive now */
    uint64_t clients_accepted; /* since start */
    uint64_t clients_rejected; /* answered BUSY */
    uint64_t frames_encoded;
    uint64_t frames_failed;      /* answered with ERROR */
    uint64_t encoded_bytes;      /* access-unit bytes sent */
    uint64_t pixel_bytes_copied; /* socket -> frame buffer copies */
    uint64_t errors_sent;
    uint64_t frame_buffer_bytes; /* pooled pixel buffers held now; at most
                                    window x max frame size per client */
    /* Scanouts. */
    uint32_t scanouts;              /* enabled now */
    uint32_t subscribers;           /* subscriptions now, all scanouts */
    uint64_t scanout_units_sent;    /* access units queued to subscribers (each
                                       shares one buffer with the others) */
    uint64_t scanout_units_dropped; /* not queued: a subscriber's queue was
                                       full, or it waited for an IDR */
    uint64_t keepalive_frames;      /* re-encodes of a kept picture (keepalive
                                       and IDRs for new subscribers) */
    uint64_t keep_copy_bytes;       /* pixel bytes copied to keep a picture
                                       whose pixels the server does not own
                                       (shared memory, resolver); inline frames
                                       are kept by swapping buffers, no copy */
    uint64_t keep_bytes;            /* kept pictures held now */
    uint64_t shm_frames;            /* frames encoded straight from a shared-
                                       memory slot (no copy: pixel_bytes_copied
                                       does not grow for them) */
    uint32_t shm_rings;             /* rings attached now */
    uint32_t fds_held;              /* received fds not yet claimed or closed */
    /* Frames from GPU memory: scattered pixels an embedder lent (resolver
     * version 2, published frames), converted in place. */
    uint64_t gpu_frames;           /* encoded from a guest resource's backing */
    uint64_t gpu_converted_pixels; /* pixels the converter read from it (only
                                      the damage of a published frame) */
    uint64_t gpu_bounced_bytes;    /* bytes the converter first copied to a
                                      bounce row (pieces one stride cannot
                                      reach); never a whole frame */
    uint64_t gpu_frame_copies;     /* whole-frame copies of such pictures (a
                                      client publishing a resource id into its
                                      scanout keeps a copy for keepalive) */
    /* Scanouts the embedder publishes (hxfr_host_scanout_publish). */
    uint64_t gpu_flushes;         /* frames published */
    uint64_t gpu_flushes_encoded; /* of those, encoded */
    uint64_t gpu_flushes_skipped; /* not encoded: no subscriber, or replaced by
                                     a newer frame before their turn */
    uint64_t gpu_damage_pixels;   /* damaged area of the encoded ones */
};

/* Fills *out. Returns 0. Callback-safe. */
HXFR_EXPORT int hxfr_host_get_stats(struct hxfr_host *host, struct hxfr_host_stats *out);

/* One session's counters. The interval_* fields cover the time since the
 * previous hxfr_host_foreach_session() call with reset_interval (or since
 * the session started). */
struct hxfr_host_session_stats {
    uint64_t client_id; /* as in the log lines */
    uint16_t session_id;
    uint32_t width, height, format; /* of the last frame */
    char encoder[HXFR_ENCODER_NAME_LEN];
    uint64_t frames;
    uint64_t keyframes;
    uint64_t encoded_bytes;
    uint64_t pixel_bytes_copied;        /* this session's socket -> buffer bytes */
    uint64_t client_pixel_bytes_copied; /* whole client's */
    uint64_t shm_frames;                /* frames encoded from shared-memory slots */
    uint64_t interval_ns;
    uint64_t interval_frames;
    uint64_t interval_bytes;
    double encode_ms_p50; /* over the interval; 0 without frames */
    double encode_ms_p99;
};

/* Calls cb for every live session (client order, then session order).
 * stats is borrowed for the call. With reset_interval the interval
 * counters restart after the call. Returns the number of sessions. */
HXFR_EXPORT int hxfr_host_foreach_session(struct hxfr_host *host, bool reset_interval,
                                          void (*cb)(void *opaque,
                                                     const struct hxfr_host_session_stats *s),
                                          void *opaque);

#ifdef __cplusplus
}
#endif

#endif
