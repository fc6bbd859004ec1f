/* libhxfr-client: the guest side of HXFR.
 *
 * Connects to a host daemon (hxfrd) or to a VMM that embeds libhxfr-host,
 * configures an encoder session, submits raw frames and receives H.264
 * access units back. Many frames are in flight at once (a caller-chosen
 * window); the client never waits for one response before sending the next
 * frame.
 *
 * Typical use:
 *
 *     struct hxfr_client_options o;
 *     hxfr_client_options_init(&o);
 *     o.window = 4;
 *     o.on_frame = my_frame_cb;            // gets every result, in order
 *     o.user_data = me;
 *     struct hxfr_client *c = hxfr_client_new(&o);
 *     int r = hxfr_client_connect(c, "unix:/run/user/1000/hxfr/hxfr.sock");
 *     struct hxfr_client_config cfg = {.width = 1920, .height = 1080, ...};
 *     r = hxfr_client_configure(c, &cfg, NULL);
 *     for (;;) {
 *         struct hxfr_client_frame f = {...pixels, .user = my_frame};
 *         r = hxfr_client_submit(c, &f, 1000);   // waits only for window room
 *         hxfr_client_dispatch(c, 0);             // deliver what has arrived
 *     }
 *     hxfr_client_flush(c, 5000);
 *     hxfr_client_destroy(c);
 *
 * Threading: a client is not internally locked. All functions on one client
 * must be serialized by the caller (one thread at a time, or the caller's
 * own mutex around every call). Callbacks run synchronously on the thread
 * that is inside hxfr_client_submit(), _dispatch(), _flush(), _configure(),
 * _ping(), _connect() or _reconnect(); a callback must not call any
 * hxfr_client function on the same client except the read-only getters
 * (hxfr_client_fd, _in_flight, _connected, _server_caps, _uri): such a call
 * returns -EDEADLK. Different clients are independent.
 *
 * Errors: int results are >= 0 on success, -errno or -HXFR_E* on failure
 * (hxfr_strerror() describes them). An ERROR message from the host
 * surfaces as -HXFR_EREMOTE with the wire code and message available (in a
 * result, or with hxfr_client_last_remote_error()).
 *
 * Signals: writes use MSG_NOSIGNAL on sockets; on a serial port the caller
 * should ignore SIGPIPE (virtio-serial ports do not raise it in practice).
 */
#ifndef HXFR_CLIENT_H
#define HXFR_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hxfr/hxfr.h>
#include <hxfr/proto.h>

#ifdef __cplusplus
extern "C" {
#endif

struct hxfr_client;

/* Largest window hxfr_client_options.window accepts. */
#define HXFR_CLIENT_MAX_WINDOW 64u
/* Default bound on a response body (the encoded units of one frame). */
#define HXFR_CLIENT_DEFAULT_MAX_BODY (16u * 1024u * 1024u)

/* The outcome of one submitted frame, given to on_frame. Every frame that
 * hxfr_client_submit() accepted produces exactly one result, in submission
 * order (the host answers each session's frames first in, first out).
 * Everything here is borrowed for the duration of the callback only; copy
 * what must outlive it. */
struct hxfr_client_result {
    /* 0: encoded (fields below valid). -HXFR_EREMOTE: the host answered
     * this frame with an ERROR (remote_code, remote_message). -ECONNRESET,
     * -EPIPE, -ETIMEDOUT, ...: the connection was lost before the answer
     * arrived; the frame was not encoded. */
    int status;
    void *user;                 /* the hxfr_client_frame.user given at submit */
    uint64_t seq;               /* 0, 1, 2, ... per client, in submission order */
    int64_t pts;                /* the pts given at submit (echoed by the host) */
    int64_t dts;                /* from the host; 0 on failure */
    bool keyframe;              /* host says this AU is an IDR (SPS/PPS in-band) */
    bool forced_keyframe;       /* the request carried force_keyframe */
    const uint8_t *data;        /* Annex B access unit: all units concatenated;
                                   never NULL */
    size_t size;                /* bytes at data (0 on failure) */
    uint32_t nal_count;         /* units the host sent */
    uint64_t latency_ns;        /* first byte written -> response parsed */
    int32_t remote_code;        /* enum hxfr_status when status == -HXFR_EREMOTE */
    const char *remote_message; /* NUL-terminated; "" unless -HXFR_EREMOTE */
};

enum hxfr_client_event_type {
    /* The connection was lost (EOF, EPIPE, ECONNRESET, I/O timeout, a
     * protocol violation by the host). err says why. Every frame in flight
     * has already received its failure result. */
    HXFR_CLIENT_EVENT_DISCONNECTED = 1,
    /* A reconnect succeeded (config re-sent, accepted); attempt is the
     * number of connection attempts it took. hxfr_client_fd() changed. */
    HXFR_CLIENT_EVENT_RECONNECTED,
    /* An ERROR from the host that no frame was waiting for (for example a
     * KEYFRAME_REQ refused). remote_code / remote_message are set. */
    HXFR_CLIENT_EVENT_REMOTE_ERROR,
};

struct hxfr_client_event {
    enum hxfr_client_event_type type;
    int err;                    /* DISCONNECTED: -errno / -HXFR_E* */
    unsigned attempt;           /* RECONNECTED */
    int32_t remote_code;        /* REMOTE_ERROR */
    const char *remote_message; /* REMOTE_ERROR; borrowed during the callback */
};

/* Called once per submitted frame, in submission order (see above). */
typedef void (*hxfr_client_frame_fn)(void *user_data, const struct hxfr_client_result *res);
/* Called for connection events. */
typedef void (*hxfr_client_event_fn)(void *user_data, const struct hxfr_client_event *ev);
/* Called once per access unit the host pushes for a subscribed scanout
 * (see hxfr_client_subscribe()), in arrival order. res->status is 0, user
 * is NULL, seq counts pushed units from 0 per subscription, latency_ns is
 * 0, forced_keyframe is false; data/size/pts/dts/keyframe/nal_count are as
 * for a submitted frame and borrowed for the duration of the callback. */
typedef void (*hxfr_client_stream_fn)(void *user_data, uint32_t scanout_id,
                                      const struct hxfr_client_result *res);

/* Options, copied by hxfr_client_new(). Initialize with
 * hxfr_client_options_init() and change what you need. */
struct hxfr_client_options {
    uint32_t window;                 /* frames in flight, 1..HXFR_CLIENT_MAX_WINDOW (4) */
    uint16_t session_id;             /* header session id for every message (0) */
    uint32_t max_body;               /* response body bound, bytes (16 MiB) */
    uint32_t max_dim;                /* local geometry limit, 0 = HXFR_MAX_DIM_HARD */
    bool hello;                      /* send HELLO after connecting (true); a v1
                                        host that answers ERROR is accepted */
    bool reconnect;                  /* reconnect after a lost connection (false) */
    unsigned reconnect_attempts;     /* attempts per reconnect round (10) */
    unsigned reconnect_min_ms;       /* first backoff delay (50), doubled ... */
    unsigned reconnect_max_ms;       /* ... up to this (2000) */
    int io_timeout_ms;               /* a write that makes no progress, or a reply
                                        (CONFIG_RESP, HELLO_RESP) that does not come
                                        for this long, fails with -ETIMEDOUT and
                                        drops the connection (5000) */
    hxfr_client_frame_fn on_frame;   /* optional, but results are lost without */
    hxfr_client_event_fn on_event;   /* optional */
    void *user_data;                 /* passed to every callback */
    hxfr_client_stream_fn on_stream; /* optional: pushed units of a
                                        subscribed scanout */
};

/* Encoder settings sent in CONFIG_REQ. Zero fields mean "host default". */
struct hxfr_client_config {
    uint32_t width;   /* required */
    uint32_t height;  /* required */
    uint32_t bitrate; /* bit/s */
    uint32_t framerate_num;
    uint32_t framerate_den;
    uint8_t profile; /* 66 baseline, 77 main, 100 high */
    uint8_t level;   /* level x 10 */
    bool realtime;   /* low-latency encoding (zerolatency) */
    uint32_t gop;    /* keyframe interval in frames (extension) */
};

/* One frame to submit. The pixels are borrowed: the client reads them only
 * during hxfr_client_submit() (straight from this memory with writev, no
 * staging copy) and keeps no pointer after it returns, so the caller may
 * reuse or free the buffer as soon as the call returns, whatever its
 * result.
 *
 * Layout: planes[i] points at plane i with stride strides[i] bytes per row;
 * plane i must hold strides[i] x (rows of plane i) readable bytes. Packed
 * RGB formats use plane 0 only; NV12 uses Y and UV; I420 uses Y, U, V.
 * strides[i] == 0 means the tightly packed stride for that plane. When the
 * chroma strides are the ones hxfr_geometry_compute() derives from
 * strides[0] (NV12: equal to it; I420: half of it) every plane goes out as
 * one block; otherwise the frame is sent row by row at the packed stride. */
struct hxfr_client_frame {
    uint32_t format; /* enum hxfr_format */
    uint32_t width;
    uint32_t height;
    const void *planes[3];
    uint32_t strides[3];
    int64_t pts;         /* ns; echoed in the result */
    int64_t duration;    /* ns */
    bool force_keyframe; /* ask for an IDR */
    void *user;          /* returned in the result; never touched */
};

/* Fills o with the defaults documented above. */
HXFR_EXPORT void hxfr_client_options_init(struct hxfr_client_options *o);

/* Creates an unconnected client with a copy of *o (NULL = defaults).
 * Returns NULL and sets errno (EINVAL for an option out of range, ENOMEM).
 * The caller owns the client; free it with hxfr_client_destroy(). */
HXFR_EXPORT struct hxfr_client *hxfr_client_new(const struct hxfr_client_options *o);

/* Closes the connection and frees the client. Frames still in flight are
 * dropped without results (flush first to get them). Accepts NULL. Must
 * not be called from a callback. */
HXFR_EXPORT void hxfr_client_destroy(struct hxfr_client *c);

/* Connects to uri ("unix:PATH", "tcp:HOST:PORT", "vsock:CID:PORT",
 * "serial:PATH", or a bare path with '/'), then sends HELLO and waits for
 * the answer if options.hello is set. uri is copied (it is reused by
 * reconnects). With options.reconnect the connection is retried with
 * backoff like hxfr_client_reconnect(). Blocking: returns when connected
 * or failed. Returns 0, -EISCONN if already connected, -EINVAL /
 * -EPROTONOSUPPORT for a bad uri, or the connect error (-ENOENT,
 * -ECONNREFUSED, -ENETUNREACH / -ENODEV for vsock without a route,
 * -EAFNOSUPPORT, -ETIMEDOUT). */
HXFR_EXPORT int hxfr_client_connect(struct hxfr_client *c, const char *uri);

/* Adopts an already connected stream fd (a socketpair end handed over by a
 * VMM, a socket-activated connection, a test harness). The client takes
 * ownership of fd in every case (it is closed on failure too) and makes it
 * non-blocking. Sends HELLO if options.hello is set. A client connected this
 * way has no uri, so it cannot reconnect. Returns 0, -EISCONN, -EBADF, or a
 * HELLO error. */
HXFR_EXPORT int hxfr_client_connect_fd(struct hxfr_client *c, int fd);

/* Sends CONFIG_REQ and waits (io_timeout_ms) for CONFIG_RESP. Frames in
 * flight are completed first (their results are delivered). cfg is copied:
 * it is re-sent after every reconnect. If resp is non-NULL it receives the
 * effective settings the host applied. Without a HELLO answered on this
 * connection (options.hello false, or a v1 host that refused it) no host
 * answers CONFIG_REQ: the call returns once it is sent and resp gets the
 * settings asked for, with an empty encoder name. Returns 0, -EINVAL (zero width or
 * height), -ENOTCONN, -ETIMEDOUT, -HXFR_EREMOTE (the host refused; see
 * hxfr_client_last_remote_error()) or a connection error. */
HXFR_EXPORT int hxfr_client_configure(struct hxfr_client *c, const struct hxfr_client_config *cfg,
                                      struct hxfr_config_resp *resp);

/* Submits one frame. The geometry is validated locally first
 * (hxfr_geometry_compute) and the frame is written with scatter-gather I/O
 * straight from the caller's planes. If the window is full this waits up to
 * timeout_ms (0 = do not wait, -1 = no limit) for a result, delivering
 * results through on_frame meanwhile. While a big frame is being written,
 * responses that arrive are read and delivered too, so the write can never
 * deadlock against the host's output. The pixels are not used after the
 * call returns.
 *
 * When disconnected and options.reconnect is set, this reconnects first
 * (blocking, with backoff) and forces a keyframe on the first frame after
 * the reconnect.
 *
 * Returns 0 (accepted: exactly one result will follow), -EAGAIN (window
 * full after timeout_ms; nothing sent), -HXFR_E* from geometry validation
 * (nothing sent), -ENOTCONN (not connected, no reconnect), -EDEADLK (called
 * from a callback), or a connection error (-EPIPE, -ECONNRESET,
 * -ETIMEDOUT, ...: the frame was not accepted and produces no result). */
HXFR_EXPORT int hxfr_client_submit(struct hxfr_client *c, const struct hxfr_client_frame *f,
                                   int timeout_ms);

/* Submits one frame that the host reads from a GPU resource instead of
 * from pixels that follow: a FRAME_REQUEST with resource_id and no
 * PIXEL_DATA (docs/protocol.md section 5). The host (hxfr-gpu, or a VMM
 * embedding libhxfr-host) encodes the resource's backing in guest memory
 * as it is when the host reads it, so the caller must not write to the
 * resource until this frame's result arrives (keep two buffers and draw
 * into the other). resource_id is the virtio-gpu resource id
 * (DRM_IOCTL_VIRTGPU_RESOURCE_INFO of the buffer's GEM handle, never the
 * handle itself) and must not be 0 (which old guests send for inline
 * pixels). f gives the geometry (the host checks it against the resource,
 * whose own size and format win), pts, duration, force_keyframe and user;
 * its planes are not used. Waits for window room like
 * hxfr_client_submit(). The result arrives through on_frame; a host that
 * has no such resource answers it with -HXFR_EREMOTE and remote_code
 * HXFR_STATUS_RESOURCE_NOT_FOUND (hxfrd always does: send pixels then).
 * Returns 0, -EINVAL (resource_id 0), -EAGAIN, -HXFR_E* (geometry),
 * -ENOTCONN, -EDEADLK or a connection error, as hxfr_client_submit(). */
HXFR_EXPORT int hxfr_client_submit_resource(struct hxfr_client *c, uint32_t resource_id,
                                            const struct hxfr_client_frame *f, int timeout_ms);

/* Reads whatever has arrived and delivers results and events. Waits up to
 * timeout_ms (0 = poll only, -1 = no limit) for at least one result when
 * none is ready and frames are in flight or a scanout is subscribed;
 * otherwise returns at once. Returns the number of frame results and
 * pushed stream units delivered (>= 0), or a connection error (after
 * failing the frames in flight and reporting DISCONNECTED). */
HXFR_EXPORT int hxfr_client_dispatch(struct hxfr_client *c, int timeout_ms);

/* Waits until no frame is in flight, delivering results. Returns 0,
 * -ETIMEDOUT, or a connection error (frames then already failed). */
HXFR_EXPORT int hxfr_client_flush(struct hxfr_client *c, int timeout_ms);

/* Subscribes to scanout_id (push mode): sends SUBSCRIBE and waits up to
 * timeout_ms (-1 = io_timeout_ms) for SUBSCRIBE_RESP. From then on the
 * host pushes FRAME_RESPONSEs with session_id = scanout_id; each one is
 * delivered to options.on_stream by hxfr_client_dispatch() (or any other
 * call that reads), starting at an IDR. Frames in flight are completed
 * first. The subscription is remembered and sent again after every
 * reconnect. One subscription per client: subscribing again replaces the
 * remembered scanout (the host may keep pushing the old one until the
 * connection closes; those units are dropped). Submitting frames on a
 * subscribed client is allowed when options.session_id differs from the
 * scanout id; with equal ids a response is attributed to the oldest frame
 * in flight, and to the stream only when nothing is in flight.
 * Returns 0, -ENOTCONN, -ETIMEDOUT, -HXFR_EREMOTE (an ERROR reply, or a
 * SUBSCRIBE_RESP with success = 0: no such scanout; see
 * hxfr_client_last_remote_error()) or a connection error. */
HXFR_EXPORT int hxfr_client_subscribe(struct hxfr_client *c, uint32_t scanout_id, int timeout_ms);

/* Publisher side of push mode: sends ENABLE_SCANOUT(scanout_id, width,
 * height, refresh_hz; 0 Hz = host default) and waits up to timeout_ms (-1 =
 * io_timeout_ms) for SCANOUT_RESP. Frames in flight are completed first.
 * After success, frames submitted with options.session_id == scanout_id
 * are published into the scanout: the host encodes each once, sends the
 * access unit to every subscriber and answers the frame as usual (the
 * result carries the same access unit). Enabling an id this client already
 * publishes reconfigures it. The enabled scanout is remembered and enabled
 * again after every reconnect (one per client: a second enable replaces
 * the remembered one). If resp is non-NULL it receives the answer (the
 * connector name, e.g. "Virtual-0"). Returns 0, -EINVAL (id above 65535,
 * zero size), -ENOTCONN, -ETIMEDOUT, -HXFR_EREMOTE (refused: the scanout is
 * owned by another client, a limit, a bad size; see
 * hxfr_client_last_remote_error()) or a connection error. */
HXFR_EXPORT int hxfr_client_enable_scanout(struct hxfr_client *c, uint32_t scanout_id,
                                           uint32_t width, uint32_t height, uint32_t refresh_hz,
                                           int timeout_ms, struct hxfr_scanout_resp *resp);

/* Sends DISABLE_SCANOUT(scanout_id) and waits for SCANOUT_RESP (frames in
 * flight are completed first). The host ends the stream for the
 * subscribers. The scanout is no longer enabled again on reconnect.
 * Returns 0, -EINVAL, -ENOTCONN, -ETIMEDOUT, -HXFR_EREMOTE (refused: not
 * enabled, or not this client's) or a connection error. */
HXFR_EXPORT int hxfr_client_disable_scanout(struct hxfr_client *c, uint32_t scanout_id,
                                            int timeout_ms);

/* Sends KEYFRAME_REQ: the next frame the host encodes becomes an IDR.
 * Returns 0, -ENOTCONN or a connection error. */
HXFR_EXPORT int hxfr_client_request_keyframe(struct hxfr_client *c);

/* Sends PING and waits up to timeout_ms for PONG, delivering frame results
 * meanwhile. *rtt_ns (optional) gets the round-trip time. Returns 0,
 * -ETIMEDOUT, -ENOTCONN or a connection error. */
HXFR_EXPORT int hxfr_client_ping(struct hxfr_client *c, int timeout_ms, uint64_t *rtt_ns);

/* Drops the current connection (if any) and connects again to the last
 * uri with exponential backoff: up to reconnect_attempts attempts, delays
 * from reconnect_min_ms doubling to reconnect_max_ms. Then HELLO (if
 * enabled) and the last configuration are sent again, and the next frame
 * is forced to be a keyframe. Reports RECONNECTED. Frames in flight fail
 * with -ECONNRESET. Returns 0 or the last attempt's error. */
HXFR_EXPORT int hxfr_client_reconnect(struct hxfr_client *c);

/* The file descriptor to poll for POLLIN (then call hxfr_client_dispatch
 * with timeout 0), or -1 when disconnected. It changes on reconnect; the
 * client owns it: do not read, write or close it. */
HXFR_EXPORT int hxfr_client_fd(const struct hxfr_client *c);

/* Frames submitted whose result has not been delivered yet. */
HXFR_EXPORT unsigned hxfr_client_in_flight(const struct hxfr_client *c);

/* True while a connection is up. */
HXFR_EXPORT bool hxfr_client_connected(const struct hxfr_client *c);

/* HXFR_CAP_* bits from the host's HELLO_RESP; 0 if no HELLO was answered. */
HXFR_EXPORT uint32_t hxfr_client_server_caps(const struct hxfr_client *c);

/* The canonical uri last connected to ("" before hxfr_client_connect).
 * Borrowed: valid until the next connect or destroy. */
HXFR_EXPORT const char *hxfr_client_uri(const struct hxfr_client *c);

/* The last ERROR the host sent (code, message), whichever call or result
 * it surfaced in. Returns the code (0 if none yet); *message (optional) is
 * borrowed until the next call on the client. */
HXFR_EXPORT int32_t hxfr_client_last_remote_error(const struct hxfr_client *c,
                                                  const char **message);

/* ---- Shared-memory frames (zero copy) ---------------------------------
 *
 * Instead of sending pixels on the connection, the client renders into a
 * slot of a ring in memory it shares with the host and submits the slot
 * index; the host's encoder converts straight from that memory. The ring
 * belongs to this connection and options.session_id (docs/protocol.md
 * section 12); the client attaches it again after every reconnect.
 *
 * Ownership of a slot: hxfr_client_shm_acquire() hands a free slot to the
 * caller, who writes the frame into it (plane 0 at slot.data, the other
 * planes following as hxfr_geometry_compute() lays them out for the stride
 * given at submit). hxfr_client_shm_submit() gives it to the host: from
 * then on the caller must not write it (the host may be reading it). It
 * comes back, free for the next acquire, when the host sends SLOT_RELEASE
 * (right after its encoder converted the pixels, with hosts that offer
 * HXFR_CAP_SLOT_RELEASE) or with the frame's result (on_frame), whichever
 * comes first; a lost connection gives every slot back with the failed
 * results. An acquired slot that will not be submitted goes back with
 * hxfr_client_shm_cancel(). Pointers from acquire stay valid until the
 * ring is replaced or the client destroyed.
 *
 * Threading: as every other call on the client (see the top of this
 * file); the caller may fill an acquired slot on any thread, as long as
 * the submit call comes after the writes (and is serialized with other
 * calls as usual). */

/* A slot handed out by hxfr_client_shm_acquire(). */
struct hxfr_client_slot {
    uint32_t index; /* slot index (the FRAME_REQUEST's resource_id) */
    void *data;     /* start of the slot: write the frame here */
    size_t size;    /* bytes in the slot (at least slot_bytes) */
};

/* Creates a ring of slot_count slots (1..64) of at least slot_bytes each
 * (rounded up to 4096) in a new memfd sealed against shrinking and
 * growing, writes its header, and attaches it to the host with SHM_ATTACH
 * (the fd travels with SCM_RIGHTS: UNIX sockets only). Frames in flight
 * are completed first; an earlier ring is replaced. Blocking (waits up to
 * io_timeout_ms for SHM_ATTACH_RESP). Returns 0, -EINVAL (sizes),
 * -EOPNOTSUPP (not a UNIX socket), -HXFR_EREMOTE (the host refused: see
 * hxfr_client_last_remote_error(); a host without shared-memory support
 * answers UNSUPPORTED or INVALID_MSG), -ENOTCONN, -EPROTO (the host saw a
 * different ring) or a connection error. */
HXFR_EXPORT int hxfr_client_shm_create(struct hxfr_client *c, uint32_t slot_count,
                                       uint64_t slot_bytes);

/* Attaches a ring inside a region the host was configured with (hxfrd
 * --shm NAME=PATH), over any transport. path is this side's view of the
 * same memory: the ivshmem PCI BAR (/sys/bus/pci/devices/.../resource2)
 * in a guest, or the backing file itself; NULL finds the first ivshmem
 * device. The ring header is written at offset (a multiple of 64) and the
 * ring (hxfr_shm_ring_bytes of slot_count slots of slot_bytes) must fit
 * the region after it, else -ENOSPC. Otherwise as hxfr_client_shm_create
 * (-ENOENT: no such file or no ivshmem device). */
HXFR_EXPORT int hxfr_client_shm_attach_region(struct hxfr_client *c, const char *name,
                                              const char *path, uint64_t offset,
                                              uint32_t slot_count, uint64_t slot_bytes);

/* Hands out a free slot (see above), waiting up to timeout_ms (0 = do not
 * wait, -1 = no limit) for one to come back and delivering results
 * meanwhile. Returns 0, -ENXIO (no ring attached), -EAGAIN (none free in
 * time, or all of them are acquired by the caller) or -EDEADLK. */
HXFR_EXPORT int hxfr_client_shm_acquire(struct hxfr_client *c, int timeout_ms,
                                        struct hxfr_client_slot *out);

/* Submits the frame the caller wrote into an acquired slot. f->planes are
 * ignored; f->strides[0] is the plane-0 stride in the slot (0 = tightly
 * packed); format, width, height, pts, duration, force_keyframe and user
 * are as for hxfr_client_submit(), which this matches in window handling,
 * reconnects and results (exactly one result per accepted frame). Returns
 * 0, -EINVAL (slot not acquired), -ENXIO, -EMSGSIZE (the frame does not
 * fit the slot), -HXFR_E* (geometry), -EAGAIN (window full after
 * timeout_ms; the slot stays acquired) or a connection error (the slot
 * stays acquired). */
HXFR_EXPORT int hxfr_client_shm_submit(struct hxfr_client *c, uint32_t slot,
                                       const struct hxfr_client_frame *f, int timeout_ms);

/* Gives an acquired slot back without submitting it. Returns 0 or -EINVAL. */
HXFR_EXPORT int hxfr_client_shm_cancel(struct hxfr_client *c, uint32_t slot);

/* True while the client has a ring (attached on the current connection, or
 * to be attached again on reconnect). */
HXFR_EXPORT bool hxfr_client_shm_attached(const struct hxfr_client *c);

#ifdef __cplusplus
}
#endif

#endif
