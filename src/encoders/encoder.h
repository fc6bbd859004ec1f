/* Encoders: one small ops table per backend family, listed in a static
 * registry (encoder.c). The only family today is libavcodec (avcodec.c),
 * which reaches libx264, h264_vaapi, h264_nvenc, h264_videotoolbox,
 * h264_v4l2m2m and libopenh264 by FFmpeg codec name. Colour conversion into
 * the encoder's input picture is done with libyuv (convert.c), straight from
 * the caller's pixels: no intermediate copy.
 *
 * Threading: an encoder object is used by one thread at a time (a worker);
 * it may be created on one thread and used on another. Internal to
 * libhxfr-host.
 */
#ifndef HXFR_ENCODER_H
#define HXFR_ENCODER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <hxfr/proto.h>

#include "hxfr-config.h"

#define HXFR_ENCODER_OPS_VERSION 1u

/* What an encoder is opened with. Zero fields take the documented
 * defaults (hxfr__encoder_config_defaults fills them). */
struct hxfr_encoder_config {
    const char *codec; /* FFmpeg encoder name; NULL = HXFR_DEFAULT_CODEC */
    uint32_t width;
    uint32_t height;
    uint32_t bitrate;       /* bit/s; 0 = max(width*height*4, 5 Mbit/s) */
    uint32_t framerate_num; /* 0 = 60/1 */
    uint32_t framerate_den;
    uint8_t profile; /* 66/77/100; 0 = encoder default (high). The effective
                      * config says 244 (HXFR__PROFILE_HIGH444) when an odd
                      * size is coded in 4:4:4 (avcodec.c). */
    uint8_t level;   /* x10; 0 = auto */
    bool realtime;
    uint32_t gop;       /* keyframe interval in frames; 0 = 60 */
    const char *preset; /* x264 preset; NULL = HXFR_DEFAULT_PRESET */
    int threads;        /* encoder threads; 0 = auto */
};

/* A rectangle of an image, in pixels. */
struct hxfr_image_rect {
    uint32_t x, y, width, height;
};

/* One contiguous run of a scattered image's bytes (struct hxfr_image
 * pieces): the bytes [offset, offset + len) of the packed plane, counted
 * from the start of the memory the pieces describe, are at host. */
struct hxfr_image_piece {
    const uint8_t *host;
    uint64_t offset;
    uint64_t len;
};

/* Most damage rectangles an image carries; a caller with more sends their
 * bounding box. */
#define HXFR_IMAGE_MAX_DAMAGE 16u

/* Source pixels to encode: borrowed for the duration of the encode call. */
struct hxfr_image {
    uint32_t format; /* enum hxfr_format */
    uint32_t width;
    uint32_t height;
    const uint8_t *planes[3];
    uint32_t strides[3];
    /* Optional: a backend calls consumed(consumed_opaque) once, on the
     * encoding thread, as soon as it no longer reads planes (after the
     * colour conversion, before the encode proper), so the owner can hand
     * the pixels back early (shared-memory slots). A backend that never
     * calls it is correct too: the planes are then free when encode
     * returns. */
    void (*consumed)(void *opaque);
    void *consumed_opaque;
    /* Optional, packed RGB formats only: the pixels are scattered (a guest
     * resource's backing in guest RAM) and planes[0] is not used. Pixel
     * (x, y) starts at byte base + y * strides[0] + x * 4 of the memory
     * the pieces describe; pieces are sorted by offset and leave no gap
     * over the bytes the image covers (the caller checked that). The
     * converter reads them in place (hxfr__convert_image). */
    const struct hxfr_image_piece *pieces;
    uint32_t n_pieces;
    uint64_t base;
    /* Optional: with has_damage, only the n_damage rectangles (inside the
     * image) changed since the previous image given to the same encoder
     * object; n_damage 0 means nothing changed. A backend that still holds
     * its converted copy of that previous image converts only those
     * rectangles into it; one that does not (just opened) converts the
     * whole image. Without has_damage everything is converted. */
    bool has_damage;
    uint32_t n_damage;
    struct hxfr_image_rect damage[HXFR_IMAGE_MAX_DAMAGE];
};

/* Describes pixels laid out as g says (hxfr_geometry_compute) starting at
 * base: every other field of img is cleared. */
static inline void hxfr__image_from_geometry(struct hxfr_image *img, const struct hxfr_geometry *g,
                                             const uint8_t *base)
{
    memset(img, 0, sizeof(*img));
    img->format = g->format;
    img->width = g->width;
    img->height = g->height;
    for (uint32_t i = 0; i < g->num_planes && i < 3; i++) {
        img->planes[i] = base + g->offset[i];
        img->strides[i] = g->stride[i];
    }
}

/* One encoded access unit: Annex B, SPS/PPS in-band on every keyframe.
 * data is owned by the encoder and valid until the next call on it. */
struct hxfr_packet {
    const uint8_t *data;
    size_t size;
    int64_t pts;
    int64_t dts;
    bool keyframe;
    /* What the colour conversion of this frame did: source pixels
     * converted (0 when nothing was damaged), and bytes that had to be
     * copied into a small bounce buffer first (scattered sources only:
     * pieces that one pointer and stride cannot reach). */
    uint64_t converted_pixels;
    uint64_t bounced_bytes;
};

struct hxfr_encoder {
    const struct hxfr_encoder_ops *ops;
    struct hxfr_encoder_config config; /* effective settings (defaults applied) */
    char codec_name[32];               /* the FFmpeg encoder actually opened */
};

struct hxfr_encoder_ops {
    uint32_t version; /* HXFR_ENCODER_OPS_VERSION */
    const char *name; /* backend family, "avcodec" */
    /* Required. Opens an encoder for cfg (defaults already applied).
     * Returns NULL and sets errno on failure (ENOENT: no such codec on this
     * machine; EINVAL: settings refused; EIO: open failed). */
    struct hxfr_encoder *(*create)(const struct hxfr_encoder_config *cfg);
    /* Required. Frees everything; accepts NULL. */
    void (*destroy)(struct hxfr_encoder *enc);
    /* Required. Converts img into the encoder's input (img must match the
     * configured width/height) and encodes one frame. force_idr makes it
     * an IDR. Produces exactly one access unit per call in *out.
     * Returns 0 or -errno (-EINVAL geometry mismatch, -EIO encoder failed). */
    int (*encode)(struct hxfr_encoder *enc, const struct hxfr_image *img, int64_t pts,
                  bool force_idr, struct hxfr_packet *out);
    /* Optional. Can this backend open the named codec here? */
    bool (*probe)(const char *codec);
};

/* libx264, or libopenh264 in a build without x264 (meson -Dx264=disabled):
 * meson decides, in hxfr-config.h. */
#define HXFR_DEFAULT_CODEC HXFR_DEFAULT_ENCODER
/* x264 preset used when the config names none. Measured with
 * bench/presets.c (docs/encoders.md) at 1080p BGRA on this project's 2-core
 * host: ultrafast p50 4.2-4.8 ms / p99 6-12 ms per frame; superfast p50
 * 5.7-6.5 ms but p99 14-36 ms; veryfast and faster miss 60 fps. */
#define HXFR_DEFAULT_PRESET "ultrafast"
#define HXFR_DEFAULT_GOP    60u
#define HXFR_MIN_BITRATE    5000000u

/* Fills zero fields of cfg with defaults (see struct comments). */
void hxfr__encoder_config_defaults(struct hxfr_encoder_config *cfg);

/* Opens an encoder through the registry: the first backend that knows
 * cfg->codec. NULL + errno on failure. */
struct hxfr_encoder *hxfr__encoder_create(const struct hxfr_encoder_config *cfg);
void hxfr__encoder_destroy(struct hxfr_encoder *enc);
int hxfr__encoder_encode(struct hxfr_encoder *enc, const struct hxfr_image *img, int64_t pts,
                         bool force_idr, struct hxfr_packet *out);

/* Calls cb for each H.264 encoder name this machine can open (small test
 * open). Returns the count. */
/* FFmpeg's log (avlog.c). The sink gets whole lines without newline,
 * FFmpeg's "[name @ 0x...] " prefix included, with level an enum
 * hxfr_host_log_level value (0 error, 1 warning, 2 info, 3 verbose/debug;
 * trace is dropped). It is called on whichever thread FFmpeg logs from.
 * hxfr__encoder_log_route installs the process-wide av_log callback (fn
 * NULL restores FFmpeg's default): for applications only, before encoders
 * are opened. Without it, encoders opened here are quiet. */
typedef void (*hxfr__encoder_log_fn)(void *opaque, int level, const char *line);
void hxfr__encoder_log_route(hxfr__encoder_log_fn fn, void *opaque);
/* The AVCodecContext.log_level_offset for a context opened now. */
int hxfr__encoder_log_offset(void);

int hxfr__encoder_list(void (*cb)(void *opaque, const char *codec, const char *backend),
                       void *opaque);

/* Planar YUV 4:4:4 (DRM's YUV444, "YU24"): an encoder input layout only,
 * never a wire format (docs/protocol.md section 6 does not accept it). */
#define HXFR__FORMAT_I444 0x34325559u
/* profile_idc of High 4:4:4 Predictive. */
#define HXFR__PROFILE_HIGH444 244u

/* libyuv conversion of any supported source format into I420 or NV12
 * destination planes (dst_format HXFR_FORMAT_I420 / HXFR_FORMAT_NV12), or
 * of packed RGB into I444 (HXFR__FORMAT_I444). It writes src->width x
 * src->height luma samples and the chroma that covers them ((w+1)/2 x
 * (h+1)/2 for 4:2:0). Returns 0 or -EINVAL. */
int hxfr__convert(const struct hxfr_image *src, uint32_t dst_format, uint8_t *const dst[3],
                  const int dst_strides[3]);

/* What hxfr__convert_image did. */
struct hxfr__convert_stats {
    uint64_t pixels;        /* source pixels converted */
    uint64_t bounced_bytes; /* source bytes copied to the bounce buffer first */
    uint64_t direct_calls;  /* libyuv calls straight on the source memory */
};

/* Converts rectangle r of src (NULL: all of it) into the destination
 * planes, which cover the whole picture (the rectangle lands at its own
 * place there). For 4:2:0 destinations r is widened to even x, y, width
 * and height (within the image), since chroma covers 2x2 pixels. src may
 * be contiguous (planes) or scattered (pieces): scattered packed RGB is
 * converted in place, a run of rows that lies in one piece with one
 * libyuv call, a row pair that crosses a piece boundary in column
 * segments that each lie in one piece per row (one call each, the two
 * rows addressed with one stride); only what one int stride cannot reach
 * (two pieces more than 2 GiB apart in memory, or a pixel pair cut by a
 * boundary) goes through a bounce buffer of at most two rows, which the
 * caller provides (bounce_len >= 2 * width * 4 bytes; NULL only for
 * contiguous sources). Adds to *st when not NULL. Returns 0 or -EINVAL
 * (bad source, rectangle outside, pieces not covering the image,
 * bounce too small). */
int hxfr__convert_image(const struct hxfr_image *src, const struct hxfr_image_rect *r,
                        uint32_t dst_format, uint8_t *const dst[3], const int dst_strides[3],
                        uint8_t *bounce, size_t bounce_len, struct hxfr__convert_stats *st);

/* Fills a plane's padding, the columns width..coded_width-1 of each of
 * the first height rows and the rows height..coded_height-1, by repeating
 * the last column and the last row: the edge an encoder padded to its
 * alignment shows is a continuation of the picture, cheap to code and
 * cropped away (or, where the crop cannot express it, one repeated
 * column or row). width and height >= 1, coded sizes >= them. */
void hxfr__pad_plane(uint8_t *plane, int stride, int width, int height, int coded_width,
                     int coded_height);

/* The backends compiled in, listed by the registry in encoder.c. */
extern const struct hxfr_encoder_ops hxfr__avcodec_ops;

#endif
