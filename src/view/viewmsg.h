/* hxfr-view: the gateway's WebSocket message format, the parser for what
 * browsers send, the conversion of FRAME_RESPONSE unit lists to Annex B and
 * the bounded per-browser frame queue. Pure data handling with no I/O, so
 * all of it is unit-tested and the browser-input parser is fuzzed.
 * docs/viewer.md is the user-facing description of the format.
 *
 * Threading: none of this is thread-safe; the gateway uses it from its one
 * event-loop thread. Internal to hxfr-view.
 */
#ifndef HXFR_VIEW_VIEWMSG_H
#define HXFR_VIEW_VIEWMSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- Gateway -> browser: binary frame messages ------------------------ */

/* Every binary message starts with this little-endian header (32 bytes in
 * every version-1 message; a frame's is 48):
 *
 *   off size field
 *     0    4 magic 0x56465848 (bytes 48 58 46 56, "HXFV")
 *     4    1 version (1)
 *     5    1 type (1 = frame)
 *     6    2 flags (HXFR_VIEW_FLAG_*)
 *     8    4 seq: per-scanout sequence number, +1 per access unit the
 *            gateway received; a browser that sees a jump missed frames
 *    12    2 scanout_id
 *    14    2 header_size (32; a reader skips this many bytes to the data)
 *    16    8 pts in nanoseconds, as the host sent it (signed)
 *    24    8 recv_us: gateway receive time, CLOCK_REALTIME microseconds
 *    32    8 capture_us: when the host took the frame (flush or publish),
 *            converted to the gateway's CLOCK_REALTIME; 0 = not known
 *    40    8 encoded_us: when the host's encoder finished it, likewise
 *
 * followed by one H.264 access unit in Annex B form (start codes, SPS and
 * PPS in-band on keyframes). A cursor image (type 2) has a 40-byte header:
 * the first 32 bytes as above (seq counts images, pts and recv_us 0), then
 * u16 width, height, hot_x, hot_y at 32..39, then width x height RGBA
 * pixels (bytes R G B A, not premultiplied). */
#define HXFR_VIEW_MAGIC              0x56465848u
#define HXFR_VIEW_VERSION            1u
#define HXFR_VIEW_BASE_HEADER_SIZE   32u
#define HXFR_VIEW_FRAME_HEADER_SIZE  48u
#define HXFR_VIEW_CURSOR_HEADER_SIZE 40u
#define HXFR_VIEW_TYPE_FRAME         1u
#define HXFR_VIEW_TYPE_CURSOR        2u

#define HXFR_VIEW_FLAG_KEYFRAME 0x0001u /* an IDR access unit with SPS/PPS */
/* The first access unit after the upstream connection was (re)established:
 * a new stream whose decoder state does not continue the previous one. */
#define HXFR_VIEW_FLAG_NEW_STREAM 0x0002u
#define HXFR_VIEW_FLAGS_KNOWN     (HXFR_VIEW_FLAG_KEYFRAME | HXFR_VIEW_FLAG_NEW_STREAM)

struct hxfr_view_frame_header {
    uint8_t version;
    uint8_t type;
    uint16_t flags;
    uint32_t seq;
    uint16_t scanout_id;
    uint16_t header_size;
    int64_t pts;
    int64_t recv_us;
    int64_t capture_us; /* 0: not known (also when header_size < 48) */
    int64_t encoded_us;
};

/* Writes the 48-byte frame header (magic, version 1 and header_size 48 are
 * written whatever h holds). */
void hxfr__view_frame_header_encode(uint8_t out[HXFR_VIEW_FRAME_HEADER_SIZE],
                                    const struct hxfr_view_frame_header *h);

/* Reads a header from a message of len bytes. Returns the offset of the
 * data (header_size) or -EBADMSG (bad magic, short message, header_size
 * below 32 or past len), -EPROTONOSUPPORT (other version). */
int hxfr__view_frame_header_decode(const uint8_t *msg, size_t len,
                                   struct hxfr_view_frame_header *h);

/* ---- Gateway -> browser: text (JSON) messages ------------------------- */

/* Largest text message the gateway sends, NUL included. */
#define HXFR_VIEW_TEXT_MAX 512u

/* Escapes len bytes of in as the inside of a JSON string (quotes,
 * backslashes, control characters as \uXXXX, bytes >= 0x80 as \u00XX so the
 * output is plain ASCII whatever the input). Stops early rather than
 * splitting an escape when out is full. Returns the length written (out is
 * always NUL-terminated, cap > 0). */
size_t hxfr__view_json_escape(char *out, size_t cap, const char *in, size_t len);

/* What the hello message tells a browser. */
struct hxfr_view_hello {
    const char *vm; /* VM name, "" for the unnamed one ([A-Za-z0-9_-]) */
    uint16_t scanout;
    bool input;      /* the page may send input */
    int64_t time_us; /* the gateway's CLOCK_REALTIME */
};

/* {"type":"hello","version":1,"vm":"V","scanout":N,"input":B,
 *  "server":"hxfr-view X","time_us":T} (vm is escaped). Returns the length
 * or -ENOSPC. */
int hxfr__view_hello_format(char *out, size_t cap, const struct hxfr_view_hello *h);

/* {"type":"status","scanout":N,"state":"S","message":"M","retry_ms":R}
 * state is one of the fixed words the gateway uses; message is escaped
 * (it may quote an upstream ERROR text). Returns the length or -ENOSPC. */
int hxfr__view_status_format(char *out, size_t cap, uint16_t scanout_id, const char *state,
                             const char *message, uint32_t retry_ms);

/* {"type":"pong","token":K,"time_us":T} Returns the length or -ENOSPC. */
int hxfr__view_pong_format(char *out, size_t cap, uint64_t token, int64_t time_us);

/* ---- Browser -> gateway ---------------------------------------------- */

/* A browser sends short ASCII text messages:
 *   "keyframe"       please send a keyframe (the decoder was reset)
 *   "ping <token>"   answered by a pong carrying token and the gateway's
 *                    clock; token is 1..16 decimal digits (no sign, no
 *                    leading zeros unless it is "0"), at most 2^53 - 1 so
 *                    that JavaScript numbers hold it exactly
 * and, where input is on for the scanout:
 *   "kd <code>"      key down (also a repeat), code a KeyboardEvent.code of
 *   "ku <code>"      1..32 letters and digits; key up. A code the gateway
 *                    does not know is accepted and ignored.
 *   "mm <x> <y>"     pointer moved to scanout pixel x, y (0..65535)
 *   "bd <b> <x> <y>" button b pressed at x, y; b as MouseEvent.button:
 *   "bu <b> <x> <y>" 0 left, 1 middle, 2 right, 3 back, 4 forward; released
 *   "wh <dx> <dy> <x> <y>"  wheel clicks at x, y: dx, dy -10..10
 *   "release"        release everything this page holds (it lost focus)
 * Numbers are decimal without leading zeros ("-" allowed for dx, dy).
 * Anything else, binary messages included, is malformed and closes that
 * browser. */
#define HXFR_VIEW_INPUT_MAX 64u /* longest valid message, bytes */
#define HXFR_VIEW_TOKEN_MAX 9007199254740991ull
#define HXFR_VIEW_CODE_MAX  32u
#define HXFR_VIEW_WHEEL_MAX 10

enum hxfr_view_input_type {
    HXFR_VIEW_INPUT_KEYFRAME = 1,
    HXFR_VIEW_INPUT_PING,
    HXFR_VIEW_INPUT_KEY,
    HXFR_VIEW_INPUT_MOVE,
    HXFR_VIEW_INPUT_BUTTON,
    HXFR_VIEW_INPUT_WHEEL,
    HXFR_VIEW_INPUT_RELEASE,
};

struct hxfr_view_input {
    enum hxfr_view_input_type type;
    uint64_t token;  /* PING */
    int key;         /* KEY: index into the key table, -1 for an unknown code */
    bool down;       /* KEY, BUTTON */
    unsigned button; /* BUTTON: 0..4 */
    uint16_t x, y;   /* MOVE, BUTTON, WHEEL */
    int dx, dy;      /* WHEEL */
};

/* True for the types that act on the VM (need input to be on). */
bool hxfr__view_input_is_input(enum hxfr_view_input_type type);

/* Parses one complete message. binary tells the WebSocket opcode.
 * Returns 0, -EMSGSIZE (longer than HXFR_VIEW_INPUT_MAX), -EPROTO (a binary
 * message) or -EINVAL (anything else not in the list above). */
int hxfr__view_input_parse(const uint8_t *data, size_t len, bool binary,
                           struct hxfr_view_input *out);

/* ---- Requests: headers ------------------------------------------------ */

/* Decides whether a request may be served, against cross-site use and DNS
 * rebinding. host and origin are the header values (NULL when absent).
 * loopback: the gateway listens on a loopback address; then a Host header
 * must name a loopback host ("localhost", "127.x.y.z", "[::1]") with the
 * listening port (the port may be left out when it is 80). An Origin header
 * must be "http://" or "https://" followed by exactly the Host value (and
 * needs a Host header). Returns 0 or -EPERM. */
int hxfr__view_check_request(const char *host, const char *origin, bool loopback, unsigned port);

/* ---- FRAME_RESPONSE units -> Annex B --------------------------------- */

/* Rewrites, in place, the unit list of a FRAME_RESPONSE (nal_count x
 * (u32 size + bytes)) into one contiguous Annex B access unit. A unit
 * without a start code gets 00 00 00 01 in front (there is always room: each
 * unit gives up its 4-byte size). Validates the list first; on error buf is
 * untouched. Returns the Annex B length or -EBADMSG. */
long hxfr__view_units_to_annexb(uint8_t *buf, size_t len, uint32_t nal_count);

/* ---- Shared access units and the per-browser queue ------------------- */

/* One access unit as sent to browsers: a message (frame header + Annex B)
 * preceded by `pre` spare bytes that the WebSocket library may use for its
 * own framing. Shared by every browser of a scanout, reference-counted. */
struct hxfr_view_au {
    unsigned refs;
    bool keyframe;
    uint32_t seq;
    size_t size;  /* message bytes at msg */
    uint8_t *msg; /* = storage + pre */
    uint8_t storage[];
};

/* Allocates an AU with room for pre + size bytes and one reference (caller
 * owns it). NULL and errno on failure (EOVERFLOW for an absurd size). */
struct hxfr_view_au *hxfr__view_au_new(size_t pre, size_t size);
struct hxfr_view_au *hxfr__view_au_ref(struct hxfr_view_au *au);
/* Drops a reference; frees on the last. Accepts NULL. */
void hxfr__view_au_unref(struct hxfr_view_au *au);

#define HXFR_VIEW_QUEUE_CAP 64u /* hard ceiling for max_frames */

/* A browser's queue of AUs not yet handed to the socket, bounded in frames
 * and bytes. When a new AU does not fit, everything queued is dropped and
 * the browser waits for the next keyframe (want_key): it never receives a
 * P-frame whose references it did not get. Caller-owned storage. */
struct hxfr_view_queue {
    struct hxfr_view_au *items[HXFR_VIEW_QUEUE_CAP];
    unsigned head;
    unsigned count;
    unsigned max_frames;
    size_t bytes;
    size_t max_bytes;
    bool want_key;    /* drop everything up to the next keyframe */
    uint64_t dropped; /* AUs dropped on overflow (statistics) */
    uint64_t skipped; /* AUs skipped while waiting for a keyframe */
};

enum hxfr_view_offer {
    HXFR_VIEW_OFFER_QUEUED = 0,   /* au was queued (a reference was taken) */
    HXFR_VIEW_OFFER_SKIPPED = 1,  /* waiting for a keyframe; au not queued */
    HXFR_VIEW_OFFER_OVERFLOW = 2, /* queue overflowed: dropped; the caller
                                     should ask upstream for a keyframe */
};

/* max_frames is clamped to 1..HXFR_VIEW_QUEUE_CAP, max_bytes to >= 1. A new
 * queue waits for a keyframe. */
void hxfr__view_queue_init(struct hxfr_view_queue *q, unsigned max_frames, size_t max_bytes);
/* Drops every reference. */
void hxfr__view_queue_finish(struct hxfr_view_queue *q);
/* Offers au to the queue (see enum hxfr_view_offer). A keyframe that finds
 * the queue full flushes it and is queued, so the browser resumes at once;
 * a keyframe larger than max_bytes is still queued when the queue is empty,
 * or no browser could ever start. */
enum hxfr_view_offer hxfr__view_queue_offer(struct hxfr_view_queue *q, struct hxfr_view_au *au);
/* The oldest queued AU (borrowed), or NULL. */
struct hxfr_view_au *hxfr__view_queue_peek(const struct hxfr_view_queue *q);
/* Removes the oldest AU and drops its reference. */
void hxfr__view_queue_pop(struct hxfr_view_queue *q);
/* Drops everything queued and waits for the next keyframe. */
void hxfr__view_queue_resync(struct hxfr_view_queue *q);

#endif
