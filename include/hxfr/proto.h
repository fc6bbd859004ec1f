/* libhxfr: the HXFR v1 wire protocol (plus documented extensions).
 *
 * Pure data transformation, no I/O: encode and decode every message with
 * explicit little-endian helpers, an incremental parser for non-blocking
 * streams, and the frame-geometry validator every side uses.
 * docs/protocol.md is the byte-level specification; this header is the API.
 *
 * All functions are thread-safe as long as each object (a parser) is used by
 * one thread at a time. Nothing here allocates memory.
 */
#ifndef HXFR_PROTO_H
#define HXFR_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hxfr/hxfr.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Constants -------------------------------------------------------- */

#define HXFR_MAGIC       0x52465848u /* bytes 48 58 46 52, "HXFR" */
#define HXFR_HEADER_SIZE 12u
#define HXFR_VERSION_1   1u

enum hxfr_msg_type {
    HXFR_MSG_FRAME_REQUEST = 0x01,
    HXFR_MSG_FRAME_RESPONSE = 0x02,
    HXFR_MSG_KEYFRAME_REQ = 0x03,
    HXFR_MSG_CONFIG_REQ = 0x04,
    HXFR_MSG_CONFIG_RESP = 0x05,
    HXFR_MSG_PING = 0x10,
    HXFR_MSG_PONG = 0x11,
    HXFR_MSG_ENABLE_SCANOUT = 0x20,
    HXFR_MSG_DISABLE_SCANOUT = 0x21,
    HXFR_MSG_SCANOUT_RESP = 0x22,
    HXFR_MSG_SUBSCRIBE = 0x30,
    HXFR_MSG_SUBSCRIBE_RESP = 0x31,
    /* Extension: version/capability handshake (docs/protocol.md). */
    HXFR_MSG_HELLO = 0x40,
    HXFR_MSG_HELLO_RESP = 0x41,
    /* Extension: shared-memory frames (docs/protocol.md section 12). */
    HXFR_MSG_SHM_ATTACH = 0x50,
    HXFR_MSG_SHM_ATTACH_RESP = 0x51,
    HXFR_MSG_SLOT_RELEASE = 0x52,
    HXFR_MSG_ERROR = 0xFF,
};

/* Header flags. A flag is valid only on the types listed. */
#define HXFR_FLAG_PIXEL_DATA 0x01u /* FRAME_REQUEST: raw pixels follow */
#define HXFR_FLAG_SHM        0x02u /* FRAME_REQUEST: pixels in a shm slot */
#define HXFR_FLAG_SHM_FD                                                                           \
    0x01u /* SHM_ATTACH: the region is a memfd that                                                \
             travels with this message (SCM_RIGHTS) */

/* Fixed payload sizes (bytes after the header). */
#define HXFR_FRAME_REQUEST_SIZE   44u
#define HXFR_FRAME_RESPONSE_SIZE  24u /* + units */
#define HXFR_CONFIG_REQ_SIZE      28u
#define HXFR_CONFIG_RESP_SIZE     60u
#define HXFR_ENABLE_SCANOUT_SIZE  16u
#define HXFR_DISABLE_SCANOUT_SIZE 4u
#define HXFR_SCANOUT_RESP_SIZE    72u
#define HXFR_SUBSCRIBE_SIZE       4u
#define HXFR_SUBSCRIBE_RESP_SIZE  8u
#define HXFR_HELLO_SIZE           16u
#define HXFR_SHM_ATTACH_SIZE      72u
#define HXFR_SHM_ATTACH_RESP_SIZE 16u
#define HXFR_SLOT_RELEASE_SIZE    4u
#define HXFR_ERROR_SIZE           260u
#define HXFR_MAX_FIXED_SIZE       260u /* largest fixed part of any type */

#define HXFR_CONNECTOR_LEN     64u
#define HXFR_ERROR_MESSAGE_LEN 256u
#define HXFR_ENCODER_NAME_LEN  32u
#define HXFR_SHM_NAME_LEN      64u

/* Default and hard ceilings for frame sizes. The default takes a 5K
 * display (5120x2880, which Helix's desktop offers) in either
 * orientation. */
#define HXFR_MAX_DIM_DEFAULT 5120u
#define HXFR_MAX_DIM_HARD    8192u
/* The largest body any message may carry: an 8192x8192 frame at 4 bytes
 * per pixel. Parsers are configured with a (usually smaller) maximum. */
#define HXFR_MAX_BODY_HARD (8192u * 8192u * 4u)

/* Wire status codes carried by ERROR messages (and SHM/HELLO replies).
 * Separate from local -errno values; see hxfr_status_from_error(). */
enum hxfr_status {
    HXFR_STATUS_OK = 0,
    HXFR_STATUS_INVALID_MSG = -1,
    HXFR_STATUS_RESOURCE_NOT_FOUND = -2,
    HXFR_STATUS_NOT_GPU_TEXTURE = -3,
    HXFR_STATUS_NO_SURFACE = -4,
    HXFR_STATUS_ENCODE_FAILED = -5,
    HXFR_STATUS_NOT_CONFIGURED = -6,
    /* ours, below -6 */
    HXFR_STATUS_UNSUPPORTED = -7,  /* valid message the server does not do */
    HXFR_STATUS_BAD_GEOMETRY = -8, /* format/size/stride rejected */
    HXFR_STATUS_TOO_LARGE = -9,    /* above a configured limit */
    HXFR_STATUS_BUSY = -10,        /* a limit on clients/sessions reached */
    HXFR_STATUS_SHM = -11,         /* shared-memory region/slot problem */
    HXFR_STATUS_NO_SCANOUT = -12,  /* scanout does not exist / disabled */
    HXFR_STATUS_SHUTTING_DOWN = -13,
    HXFR_STATUS_INTERNAL = -99,
};

/* Capability bits for HELLO / HELLO_RESP. */
#define HXFR_CAP_CONFIG_GOP   (1u << 0) /* CONFIG_REQ carries a keyframe interval */
#define HXFR_CAP_SHM_FD       (1u << 1) /* shm ring attached by memfd (SCM_RIGHTS) */
#define HXFR_CAP_SHM_REGION   (1u << 2) /* shm ring in a host-configured region */
#define HXFR_CAP_SCANOUT      (1u << 3) /* push mode: scanouts and SUBSCRIBE */
#define HXFR_CAP_SLOT_RELEASE (1u << 4) /* host releases shm slots explicitly */

/* ---- Pixel formats (DRM fourccs) and geometry ------------------------- */

#define HXFR_FOURCC(a, b, c, d)                                                                    \
    ((uint32_t)(a) | ((uint32_t)(b) << 8) | ((uint32_t)(c) << 16) | ((uint32_t)(d) << 24))

enum hxfr_format {
    HXFR_FORMAT_ARGB8888 = 0x34325241, /* "AR24": bytes B,G,R,A ("BGRA8888") */
    HXFR_FORMAT_XRGB8888 = 0x34325258, /* "XR24": bytes B,G,R,x ("BGRx") */
    HXFR_FORMAT_ABGR8888 = 0x34324241, /* "AB24": bytes R,G,B,A ("RGBA8888") */
    HXFR_FORMAT_XBGR8888 = 0x34324258, /* "XB24": bytes R,G,B,x ("RGBx") */
    HXFR_FORMAT_NV12 = 0x3231564E,     /* "NV12": Y plane, interleaved UV 2x2 */
    HXFR_FORMAT_I420 = 0x32315559,     /* "YU12": Y, U, V planes, 2x2 chroma */
};

/* Layout of one frame in memory, as computed by hxfr_geometry_compute().
 * Planes are contiguous in the order given: plane i starts at offset[i].
 * NV12: plane 1 (UV) has the Y stride. I420: planes 1 and 2 have stride/2. */
struct hxfr_geometry {
    uint32_t format;
    uint32_t width;
    uint32_t height;
    uint32_t num_planes; /* 1 (packed RGB), 2 (NV12) or 3 (I420) */
    uint32_t bpp;        /* bytes per pixel of plane 0 */
    uint32_t stride[3];
    uint32_t plane_height[3];
    uint64_t offset[3];
    uint64_t plane_size[3];
    uint64_t size; /* total bytes: what an inline body must carry */
};

/* True if format is one of enum hxfr_format. */
HXFR_EXPORT bool hxfr_format_known(uint32_t format);
/* A short name ("BGRA", "BGRx", "RGBA", "RGBx", "NV12", "I420"), or NULL. */
HXFR_EXPORT const char *hxfr_format_name(uint32_t format);
/* Format from a name as above (case-insensitive; also accepts the DRM names
 * "ARGB8888", "XRGB8888", "ABGR8888", "XBGR8888", "YU12"). 0 if unknown. */
HXFR_EXPORT uint32_t hxfr_format_from_name(const char *name);

/* Validates a frame description and computes its exact layout with
 * overflow-checked 64-bit arithmetic. stride is the plane-0 stride in bytes.
 * max_dim limits width and height (0 means HXFR_MAX_DIM_HARD; values above
 * the hard limit are clamped to it).
 * Returns 0 and fills *out, or -HXFR_EFORMAT, -HXFR_EZERO, -HXFR_EDIMS,
 * -HXFR_EODD (4:2:0 formats need even width, height and, for I420, stride),
 * -HXFR_ESTRIDE or -HXFR_EOVERFLOW (a plane or the total size does not fit
 * 32 bits: no frame that large can be sent or mapped). Checks run in that
 * order, so each bad input gives one predictable error. */
HXFR_EXPORT int hxfr_geometry_compute(uint32_t format, uint32_t width, uint32_t height,
                                      uint32_t stride, uint32_t max_dim, struct hxfr_geometry *out);

/* The tightly packed plane-0 stride for format and width (0 if unknown). */
HXFR_EXPORT uint32_t hxfr_format_min_stride(uint32_t format, uint32_t width);

/* ---- Messages --------------------------------------------------------- */

struct hxfr_header {
    uint32_t magic;
    uint8_t type;
    uint8_t flags;
    uint16_t session_id;
    uint32_t payload_size;
};

/* FRAME_REQUEST, 44 bytes (+ pixels with HXFR_FLAG_PIXEL_DATA). */
struct hxfr_frame_request {
    uint32_t resource_id; /* GPU resource id, or shm slot with HXFR_FLAG_SHM */
    uint32_t width;
    uint32_t height;
    uint32_t format; /* enum hxfr_format */
    uint32_t stride;
    int64_t pts;      /* ns, echoed in the response */
    int64_t duration; /* ns */
    uint8_t force_keyframe;
    uint8_t reserved[7]; /* zero on send; ignored on receive */
};

/* FRAME_RESPONSE, 24 bytes; followed by nal_count x (u32 size + bytes).
 * Each unit is one Annex B NAL unit including its start code, so the
 * concatenated unit bytes form an Annex B access unit. */
struct hxfr_frame_response {
    int64_t pts;
    int64_t dts;
    uint8_t is_keyframe;
    uint8_t reserved[3];
    uint32_t nal_count;
};

/* CONFIG_REQ, 28 bytes. Zero in bitrate/framerate/profile/level means
 * "server default". Extension: bytes 23..26 (inside v1's reserved[5]) carry
 * a u32 keyframe interval in frames, 0 = server default; v1 peers send zero
 * there, so they get the default. */
struct hxfr_config_req {
    uint32_t width;
    uint32_t height;
    uint32_t bitrate; /* bit/s */
    uint32_t framerate_num;
    uint32_t framerate_den;
    uint8_t profile; /* 66 baseline, 77 main, 100 high */
    uint8_t level;   /* level x 10, e.g. 40 */
    uint8_t realtime;
    uint32_t gop;     /* extension, see above */
    uint8_t reserved; /* byte 27 */
};

/* CONFIG_RESP, 60 bytes: the effective settings after the server applied
 * its defaults and limits. */
struct hxfr_config_resp {
    uint32_t width;
    uint32_t height;
    uint32_t bitrate;
    uint32_t framerate_num;
    uint32_t framerate_den;
    uint8_t profile;
    uint8_t level;
    uint8_t realtime;
    uint8_t reserved;
    uint32_t gop;
    char encoder[HXFR_ENCODER_NAME_LEN]; /* NUL-terminated, e.g. "libx264" */
};

struct hxfr_enable_scanout {
    uint32_t scanout_id;
    uint32_t width;
    uint32_t height;
    uint32_t refresh_hz;
};

struct hxfr_disable_scanout {
    uint32_t scanout_id;
};

struct hxfr_scanout_resp {
    uint32_t scanout_id;
    uint32_t success;
    char connector[HXFR_CONNECTOR_LEN]; /* NUL-terminated */
};

struct hxfr_subscribe {
    uint32_t scanout_id;
};

struct hxfr_subscribe_resp {
    uint32_t scanout_id;
    uint32_t success;
};

/* HELLO and HELLO_RESP, 16 bytes each (extension). */
struct hxfr_hello {
    uint32_t version;   /* highest protocol version the sender speaks */
    uint32_t caps;      /* HXFR_CAP_* the sender supports */
    uint32_t max_width; /* sender's frame limits (0 = unspecified) */
    uint32_t max_height;
};

/* SHM_ATTACH, 72 bytes (extension): attaches a shared-memory ring to the
 * header's session. With HXFR_FLAG_SHM_FD the region is the memfd passed
 * with this message and name is empty; without it, name is a region the
 * server was configured with (hxfrd --shm NAME=PATH). offset is where the
 * ring header starts inside the region. */
struct hxfr_shm_attach {
    uint64_t offset;
    char name[HXFR_SHM_NAME_LEN]; /* NUL-terminated */
};

/* SHM_ATTACH_RESP, 16 bytes: the ring as the server validated it. */
struct hxfr_shm_attach_resp {
    uint32_t slot_count;
    uint32_t reserved;
    uint64_t slot_size;
};

/* SLOT_RELEASE, 4 bytes (server -> client, only with CAP_SLOT_RELEASE):
 * the server no longer reads the slot; the client owns it again. */
struct hxfr_slot_release {
    uint32_t slot;
};

struct hxfr_error {
    int32_t code;                         /* enum hxfr_status */
    char message[HXFR_ERROR_MESSAGE_LEN]; /* always NUL-terminated on decode */
};

/* A decoded message: header plus the fixed part of its payload. Variable
 * bodies (inline pixels, response units) are not part of it. */
struct hxfr_msg {
    struct hxfr_header hdr;
    union {
        struct hxfr_frame_request frame_request;
        struct hxfr_frame_response frame_response;
        struct hxfr_config_req config_req;
        struct hxfr_config_resp config_resp;
        struct hxfr_enable_scanout enable_scanout;
        struct hxfr_disable_scanout disable_scanout;
        struct hxfr_scanout_resp scanout_resp;
        struct hxfr_subscribe subscribe;
        struct hxfr_subscribe_resp subscribe_resp;
        struct hxfr_hello hello;
        struct hxfr_shm_attach shm_attach;
        struct hxfr_shm_attach_resp shm_attach_resp;
        struct hxfr_slot_release slot_release;
        struct hxfr_error error;
    } u;
};

/* Name of a message type ("FRAME_REQUEST"), or NULL if unknown. */
HXFR_EXPORT const char *hxfr_msg_type_name(uint8_t type);

/* Size of the fixed part of a type's payload; -HXFR_ETYPE if unknown. */
HXFR_EXPORT int hxfr_msg_fixed_size(uint8_t type);

/* Explicit little-endian helpers. */
static inline void hxfr_put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static inline void hxfr_put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}
static inline void hxfr_put_u64(uint8_t *p, uint64_t v)
{
    hxfr_put_u32(p, (uint32_t)v);
    hxfr_put_u32(p + 4, (uint32_t)(v >> 32));
}
static inline uint16_t hxfr_get_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}
static inline uint32_t hxfr_get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline uint64_t hxfr_get_u64(const uint8_t *p)
{
    return (uint64_t)hxfr_get_u32(p) | ((uint64_t)hxfr_get_u32(p + 4) << 32);
}

/* Writes the 12-byte header. */
HXFR_EXPORT void hxfr_header_encode(uint8_t out[HXFR_HEADER_SIZE], const struct hxfr_header *h);
/* Reads 12 bytes into *h; no validation. */
HXFR_EXPORT void hxfr_header_decode(const uint8_t in[HXFR_HEADER_SIZE], struct hxfr_header *h);
/* Checks magic, type, flags and payload_size against the type's fixed and
 * maximum sizes; max_body limits the variable part (0 = HXFR_MAX_BODY_HARD).
 * Returns 0 or -HXFR_EMAGIC / -HXFR_ETYPE / -HXFR_EFLAGS / -HXFR_ESHORT /
 * -HXFR_ELONG / -HXFR_ETOOBIG. */
HXFR_EXPORT int hxfr_header_validate(const struct hxfr_header *h, uint32_t max_body);

/* Encodes header and fixed payload of m into out, which must hold
 * HXFR_HEADER_SIZE + fixed size bytes (at most HXFR_HEADER_SIZE +
 * HXFR_MAX_FIXED_SIZE). m->hdr.magic is ignored (HXFR_MAGIC is written) and
 * the header's payload_size is written as fixed size + body_size, where
 * body_size is the length of a body the caller sends right after (inline
 * pixels, response units; 0 for other types). m->hdr.type, flags and
 * session_id are taken as given. Returns the bytes written, or -HXFR_ETYPE,
 * -ENOSPC (cap too small), -HXFR_ETOOBIG (body on a type without one, the
 * sum overflowing, or a body above HXFR_MAX_BODY_HARD). It never produces a
 * header a receiver would reject: flags the type does not define give
 * -HXFR_EFLAGS, a FRAME_REQUEST body without HXFR_FLAG_PIXEL_DATA gives
 * -HXFR_ETOOBIG and HXFR_FLAG_PIXEL_DATA without a body -HXFR_ESHORT.
 * Reserved bytes are always written as zero. */
HXFR_EXPORT int hxfr_msg_encode(const struct hxfr_msg *m, uint32_t body_size, uint8_t *out,
                                size_t cap);

/* Decodes the fixed part of a payload for header h (already validated):
 * fixed must hold hxfr_msg_fixed_size(h->type) bytes. Copies h into
 * out->hdr. Strings are NUL-terminated on decode. Returns 0 or a negative
 * error as hxfr_header_validate(). */
HXFR_EXPORT int hxfr_msg_decode(const struct hxfr_header *h, const uint8_t *fixed, size_t len,
                                struct hxfr_msg *out);

/* Convenience: fills an ERROR message (code, printf-style text truncated to
 * 255 bytes) for session_id. */
HXFR_EXPORT void hxfr_msg_error(struct hxfr_msg *m, uint16_t session_id, int32_t code,
                                const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Maps a local error (-errno or -HXFR_E*) to the wire status an ERROR
 * message should carry. */
HXFR_EXPORT int32_t hxfr_status_from_error(int err);
/* Name of a wire status ("INVALID_MSG"), or "UNKNOWN". */
HXFR_EXPORT const char *hxfr_status_name(int32_t code);

/* ---- FRAME_RESPONSE units -------------------------------------------- */

/* Iterates over the unit list that follows a FRAME_RESPONSE's fixed part.
 * body/len is the whole unit list; *pos starts at 0. On success returns 1
 * and sets *unit and *unit_size (pointing into body); returns 0 at the end,
 * -HXFR_EUNITS if a size runs past len. */
HXFR_EXPORT int hxfr_units_next(const uint8_t *body, size_t len, size_t *pos, const uint8_t **unit,
                                uint32_t *unit_size);

/* Checks that body/len holds exactly nal_count well-formed units. Returns 0
 * or -HXFR_EUNITS. */
HXFR_EXPORT int hxfr_units_validate(const uint8_t *body, size_t len, uint32_t nal_count);

/* The next Annex B start code at or after from: 00 00 01, or 00 00 00 01
 * when the zero before it is also at or after from. Returns its offset and
 * sets *sc_len to its length (3 or 4); the NAL header byte, if the buffer
 * holds it, is at offset + *sc_len. Returns len and sets *sc_len to 0 when
 * there is none. Never reads outside [data, data + len). */
HXFR_EXPORT size_t hxfr_annexb_next(const uint8_t *data, size_t len, size_t from, size_t *sc_len);

/* Splits an Annex B buffer into NAL units at start codes (00 00 01 or
 * 00 00 00 01), each unit including its own start code. Calls cb for each
 * unit in order; stops and returns cb's result if it is negative. Returns
 * the unit count. Leading bytes before the first start code form no unit. */
HXFR_EXPORT int hxfr_annexb_split(const uint8_t *data, size_t len,
                                  int (*cb)(void *opaque, const uint8_t *nal, size_t size),
                                  void *opaque);

/* ---- Incremental parser ---------------------------------------------- */

enum hxfr_parse_event {
    HXFR_PARSE_NEED_MORE = 0, /* all input consumed, no complete event */
    HXFR_PARSE_MESSAGE = 1,   /* res->msg is complete (header + fixed part);
                                 res->body_size body bytes follow */
    HXFR_PARSE_BODY = 2,      /* res->chunk/chunk_size: next piece of the
                                 current body (points into the input) */
};

struct hxfr_parse_result {
    enum hxfr_parse_event event;
    struct hxfr_msg msg;  /* valid from MESSAGE until the body ends */
    uint32_t body_size;   /* variable body length of msg */
    const uint8_t *chunk; /* BODY: borrowed pointer into the input */
    size_t chunk_size;
    uint32_t body_remaining; /* body bytes still to come after this event */
};

/* Caller-owned parser state (init/finish on caller storage; nothing is
 * allocated). */
struct hxfr_parser {
    uint32_t max_body;
    int state; /* private */
    int error; /* private: sticky negative error once failed */
    uint32_t have;
    uint32_t need;
    uint32_t body_remaining;
    struct hxfr_header hdr;
    uint8_t buf[HXFR_HEADER_SIZE + HXFR_MAX_FIXED_SIZE];
};

/* Initializes p. max_body limits any variable body (0 = HXFR_MAX_BODY_HARD);
 * a header announcing more is rejected before anything is read of it. */
HXFR_EXPORT void hxfr_parser_init(struct hxfr_parser *p, uint32_t max_body);

/* Feeds up to len bytes. Returns the number of bytes consumed (0..len) and
 * fills *res; call again with the rest of the input until it reports
 * HXFR_PARSE_NEED_MORE. Stops after every MESSAGE and every BODY event.
 * A violation returns a negative error (-HXFR_E*) and the parser stays
 * failed (further calls return -HXFR_EPARSER) until hxfr_parser_init().
 *
 * Bodies: after a MESSAGE with body_size > 0 the parser is in body state.
 * Either keep feeding (each call yields a BODY chunk pointing into your
 * input: copy it where you want it), or read body bytes yourself (for
 * example straight from the socket into the destination buffer) and report
 * them with hxfr_parser_body_advance(). The body of one message ends before
 * the next header is parsed. */
HXFR_EXPORT int hxfr_parser_feed(struct hxfr_parser *p, const uint8_t *data, size_t len,
                                 struct hxfr_parse_result *res);

/* Body bytes still expected for the current message (0 when not in body
 * state). */
HXFR_EXPORT uint32_t hxfr_parser_body_remaining(const struct hxfr_parser *p);

/* Tells the parser that n body bytes were consumed outside hxfr_parser_feed.
 * Returns 0, or -EINVAL if n exceeds the remaining body. */
HXFR_EXPORT int hxfr_parser_body_advance(struct hxfr_parser *p, uint32_t n);

/* True if the parser sits exactly between two messages (no partial header,
 * fixed part or body pending). */
HXFR_EXPORT bool hxfr_parser_idle(const struct hxfr_parser *p);

#ifdef __cplusplus
}
#endif

#endif
