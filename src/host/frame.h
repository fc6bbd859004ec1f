/* Frames and frame sources.
 *
 * A frame is one FRAME_REQUEST (or a scanout's keepalive re-encode) on its
 * way through the server: its pixels, the settings it is encoded with, and
 * its result. Each session has a pool of them (session.c).
 *
 * Where a frame's pixels come from is a frame source, behind a versioned
 * const struct hxfr__source_ops (the pattern of src/encoders/encoder.h):
 *
 *   inline    the pixels follow the request on the socket and are read
 *             straight into the frame's pooled buffer (source-inline.c)
 *   shm       a slot of the session's shared-memory ring, read in place
 *             from the mapping (source-shm.c)
 *   resolver  a resource the embedding VMM resolves to pixels
 *             (struct hxfr_host_resolver; source-resolver.c)
 *   keep      a scanout's kept last picture, re-encoded for keepalive or
 *             for a new subscriber's IDR (source-keep.c)
 *   gpu       a frame the embedding VMM publishes into its scanout, or
 *             that scanout's current picture, lent from guest memory and
 *             given back as soon as it is converted (source-gpu.c)
 *
 * A frame changes hands in pairs: acquire (on the thread that owns the
 * frame's client, while its request is handled) and release (the same
 * thread, exactly once after a successful acquire, when the frame is done:
 * encoded, failed, or its client gone). Between them a worker thread reads
 * the pixels; map and consumed bracket that read.
 */
#ifndef HXFR_HOST_FRAME_H
#define HXFR_HOST_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hxfr/host.h>
#include <hxfr/proto.h>

#include "encoders/encoder.h"
#include "outbuf.h"
#include "queue.h"

struct hxfr__frame;
struct hxfr__session;  /* the frame's owner (host-private.h) */
struct hxfr__shm_ring; /* source-shm.c */
struct hxfr__encoding; /* encode.h */

#define HXFR__SOURCE_OPS_VERSION 1u

/* Where the pixels of a source are once mapped. */
enum hxfr__pixels {
    HXFR__PIXELS_CPU = 1, /* f->img planes are CPU-readable memory, or (lent
                             pixels) f->img pieces: CPU-readable runs of a
                             guest resource's backing, read in place by the
                             converter (struct hxfr_image pieces) */
};

/* The frame limits of the server. */
struct hxfr__limits {
    uint32_t max_width, max_height;
};

/* What a source's acquire is given. Fields a source does not use are
 * ignored. */
struct hxfr__source_args {
    const struct hxfr_frame_request *req;
    /* inline, shm: the request's geometry, already within the limits */
    const struct hxfr_geometry *geom;
    uint32_t body_size; /* inline: pixel bytes following */
    /* inline: makes f->buf hold at least size bytes (the session's pool);
     * returns 0 or -ENOMEM */
    int (*grow)(void *ctx, struct hxfr__frame *f, size_t size);
    void *grow_ctx;
    struct hxfr__shm_ring *ring;               /* shm: the session's ring */
    bool slot_release;                         /* shm: the peer takes SLOT_RELEASE */
    const struct hxfr_host_resolver *resolver; /* resolver */
    const struct hxfr__limits *limits;         /* resolver, gpu: what it returns must fit */
    /* gpu: pixels the embedder lends for its scanout scanout_id, given
     * back through scanout_ops->release */
    const struct hxfr_host_pixels *lent;
    const struct hxfr_host_scanout_ops *scanout_ops;
    uint32_t scanout_id;
    char *why; /* the reason for a refusal */
    size_t why_len;
};

struct hxfr__source_ops {
    uint32_t version; /* HXFR__SOURCE_OPS_VERSION */
    const char *name;
    enum hxfr__pixels pixels;
    /* Required. Loop thread (the client's), while the request is handled:
     * takes the pixels for f (or, inline, the buffer they are read into)
     * and describes them in f->img. Returns HXFR_STATUS_OK, or a wire
     * status with a->why filled, in which case nothing is held and
     * release is not called. */
    int32_t (*acquire)(struct hxfr__frame *f, const struct hxfr__source_args *a);
    /* Optional. Worker thread, before the encode: completes f->img where
     * acquire could not (the kept picture is read by the worker). Returns
     * 0 or -errno (the frame fails with INTERNAL). */
    int (*map)(struct hxfr__frame *f);
    /* Optional. Loop thread, after the encoder converted the pixels while
     * the frame is still in flight (only frames with early_release):
     * gives the pixels back early. Returns true if the peer is to be told
     * (SLOT_RELEASE). */
    bool (*consumed)(struct hxfr__frame *f);
    /* Optional. Loop thread, exactly once per successful acquire. */
    void (*release)(struct hxfr__frame *f);
};

extern const struct hxfr__source_ops hxfr__source_inline;
extern const struct hxfr__source_ops hxfr__source_shm;
extern const struct hxfr__source_ops hxfr__source_resolver;
extern const struct hxfr__source_ops hxfr__source_keep;
extern const struct hxfr__source_ops hxfr__source_gpu;

enum hxfr__frame_state {
    HXFR__FRAME_FREE = 0,
    HXFR__FRAME_FILLING, /* pixels arriving from the socket */
    HXFR__FRAME_QUEUED,  /* waiting for the session's encoder */
    HXFR__FRAME_RUNNING, /* at a worker */
};

/* What a frame of a scanout session does with the kept picture. */
enum hxfr__keep_op {
    HXFR__KEEP_NONE = 0,
    HXFR__KEEP_SAVE, /* a published frame: keep a copy after encoding if its
                        pixels are not in host-owned pool memory */
    HXFR__KEEP_USE,  /* a keepalive frame: encode the kept picture */
};

/* The last published picture of a scanout session. */
struct hxfr__keep {
    uint8_t *buf;
    size_t cap;
    struct hxfr_image img; /* planes point into buf when valid */
    bool valid;
};

struct hxfr__frame {
    struct hxfr__qlink link; /* session queue, worker queues */
    struct hxfr__session *session;
    enum hxfr__frame_state state;
    uint64_t seq; /* per session, request order */

    /* The pooled pixel buffer, reused across frames (inline source). */
    uint8_t *buf;
    size_t cap;
    size_t fill; /* bytes of the body received so far */

    const struct hxfr__source_ops *source; /* NULL: nothing acquired */
    /* Resolver source: the embedder's pixels and who resolved them. */
    struct hxfr_host_pixels ext;
    const struct hxfr_host_resolver *resolver;
    /* Lent scattered pixels (hxfr__frame_lend): the frame's own copy of
     * the pieces array that f->img.pieces points at; grown only, freed
     * with the pool. */
    struct hxfr_image_piece *pieces;
    uint32_t pieces_cap;
    /* Gpu source: whose pixels f->ext are, and whether they are still to
     * be given back. */
    const struct hxfr_host_scanout_ops *lender;
    uint32_t lender_id;
    bool lent;
    uint64_t damage_pixels; /* area of f->img.damage (all of it without) */
    /* Shared-memory source: the ring (a reference), the slot, and whether
     * the slot went back to the client before the frame completed. */
    struct hxfr__shm_ring *ring;
    uint32_t slot;
    bool early_release; /* consumed() is called (set before the frame goes
                           to a worker) */
    bool slot_released;
    bool no_answer;                   /* its client went away while it ran (the session lives
                                         on with a scanout): nobody gets its response */
    struct hxfr__qlink consumed_link; /* the workers' consumed list */
    void *workers;                    /* the pool it is at (worker.c) */

    /* Keep (scanout sessions): enum hxfr__keep_op, set by the loop;
     * kept_bytes is written by the worker that copied the picture. */
    struct hxfr__keep *keep;
    uint8_t keep_op;
    uint64_t kept_bytes;
    bool kept_whole_copy; /* the keep copied a scattered (GPU) picture whole */

    struct hxfr_image img;
    int64_t pts;
    bool force_idr;
    struct hxfr_encoder_config cfg; /* snapshot of the session settings */
    uint32_t cfg_gen;
    uint16_t session_id;             /* of the response */
    struct hxfr__encoding *encoding; /* the session's encoder (encode.h) */

    /* Results (worker). */
    int status; /* enum hxfr_status */
    char errmsg[160];
    struct hxfr__outbuf *out; /* complete FRAME_RESPONSE message */
    bool keyframe;
    uint64_t au_bytes;
    uint64_t encode_ns;
    uint64_t converted_pixels; /* read by the colour conversion */
    uint64_t bounced_bytes;    /* of those, bytes first copied to a bounce row */
    char codec[HXFR_ENCODER_NAME_LEN];
};

/* Frame limits: hxfr_geometry_compute() within max_width x max_height.
 * Returns 0 or a negative HXFR_E* code. */
int hxfr__limits_check(const struct hxfr__limits *l, uint32_t format, uint32_t width,
                       uint32_t height, uint32_t stride, struct hxfr_geometry *g);
/* The wire status for a hxfr__limits_check() failure. */
int32_t hxfr__limits_status(int err);

/* Describes pixels an embedder lends (struct hxfr_host_pixels, include/
 * hxfr/host.h) in f->img, checked like a client's request: geometry
 * within the limits, every plane there with a stride large enough, or,
 * scattered, pieces in order without gaps that cover every byte of the
 * picture (only those overlapping it are kept, copied into f->pieces).
 * Nothing is read from the pixels. Returns HXFR_STATUS_OK, or a wire
 * status with why filled (f->img then undefined). */
int32_t hxfr__frame_lend(struct hxfr__frame *f, const struct hxfr_host_pixels *px,
                         const struct hxfr__limits *l, char *why, size_t why_len);

/* True if f's pixels live in its own pooled buffer (inline frames): host
 * memory a keep can take over by swapping buffers. */
static inline bool hxfr__frame_pixels_in_pool(const struct hxfr__frame *f)
{
    uintptr_t p = (uintptr_t)f->img.planes[0];
    uintptr_t b = (uintptr_t)f->buf;
    return f->buf && p >= b && p < b + f->cap;
}

/* ---- Shared-memory rings (source-shm.c) -------------------------------- */

/* Maps fd (a regular file or memfd, kept open by the caller only as long
 * as it likes: the mapping stays) read-only and validates the ring header
 * at offset from a copy taken once. *live is counted up while the ring
 * lives. Returns 0 and the ring (one reference), or -errno:
 * hxfr__shm_error() describes it. *map_len gets the region's size. */
int hxfr__shm_ring_new(int fd, uint64_t offset, uint32_t *live, struct hxfr__shm_ring **out,
                       size_t *map_len);
void hxfr__shm_ring_unref(struct hxfr__shm_ring *r);
const struct hxfr_shm_layout *hxfr__shm_ring_layout(const struct hxfr__shm_ring *r);
/* Slots the host owns now (submitted, not yet given back). */
unsigned hxfr__shm_ring_busy(const struct hxfr__shm_ring *r);
/* 0 if fd is sealed against shrinking and growing, else -EPERM. */
int hxfr__shm_fd_sealed(int fd);
const char *hxfr__shm_error(int err);

/* Copies of the configured regions (hxfr_host_config.shm_regions):
 * names 1..63 bytes and unique. Returns 0 or -EINVAL / -ENOMEM (then
 * *out is freed). */
int hxfr__shm_regions_copy(const struct hxfr_host_shm_region *src, unsigned n,
                           struct hxfr_host_shm_region **out);
void hxfr__shm_regions_free(struct hxfr_host_shm_region *r, unsigned n);

/* ---- Kept pictures (source-keep.c) ------------------------------------ */

void hxfr__keep_free(struct hxfr__keep *k);
/* Frees the picture's memory; the keep stays, empty. */
void hxfr__keep_clear(struct hxfr__keep *k);
/* Worker, after a successful encode of a HXFR__KEEP_SAVE frame: copies the
 * pixels into f->keep unless they sit in the frame's pool buffer (the loop
 * takes that buffer over with hxfr__keep_adopt instead). */
void hxfr__keep_save(struct hxfr__frame *f);
/* Loop, at the completion of a published inline frame: the keep takes f's
 * buffer and gives f its old one (no copy). */
void hxfr__keep_adopt(struct hxfr__keep *k, struct hxfr__frame *f);

#endif
