/* avcheck: test helper that decodes H.264 Annex B with libavcodec's h264
 * decoder and measures what came out: frame count, each decoded picture as
 * I420 (copied out of the decoder), whether every IDR access unit carried
 * SPS and PPS in-band, and PSNR against a reference frame in any hxfr
 * pixel format (converted to I420 with libyuv, the same conversion the
 * encoders use).
 *
 * Built into hxfr_testutil_dep only when libavcodec and libyuv are found
 * (meson: have_avcodec). Not thread-safe per object; separate objects may
 * be used on separate threads. Functions returning int give >= 0 or -errno.
 *
 * Typical use:
 *     struct hxfr_avcheck *c = hxfr_avcheck_new(4);
 *     for each access unit: hxfr_avcheck_decode_au(c, au, size);  // 1 frame each
 *     hxfr_avcheck_finish(c);
 *     CHECK_EQ(hxfr_avcheck_frame_count(c), 60);
 *     CHECK_EQ(hxfr_avcheck_idr_missing_params(c), 0);
 *     hxfr_avcheck_psnr_pattern(hxfr_avcheck_frame(c, 59), HXFR_PATTERN_DESKTOP,
 *                               HXFR_FORMAT_ARGB8888, 59, &y, &all);
 *     hxfr_avcheck_destroy(c);
 */
#ifndef HXFR_TESTS_AVCHECK_H
#define HXFR_TESTS_AVCHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One decoded picture, I420 (also when the stream is 4:4:4; planes
 * tightly packed: strides width, width/2, width/2; chroma (width+1)/2 x
 * (height+1)/2). Owned by the
 * avcheck object. */
struct hxfr_avcheck_frame {
    uint32_t width;
    uint32_t height;
    uint8_t *planes[3];
    uint32_t strides[3];
    bool keyframe;   /* the decoder flagged it as a key frame */
    bool yuv444;     /* the stream was 4:4:4 (converted to I420 here) */
    uint64_t number; /* 0-based decode order */
};

struct hxfr_avcheck;

/* A decoder that keeps the last `keep` decoded frames (0 = only count
 * them). NULL + errno on failure (ENOENT: no h264 decoder). */
struct hxfr_avcheck *hxfr_avcheck_new(unsigned keep);
/* Frees everything, including kept frames. Accepts NULL. */
void hxfr_avcheck_destroy(struct hxfr_avcheck *c);

/* Decodes data as exactly one access unit (one FRAME_RESPONSE's units
 * concatenated, or one encoder packet). Low-delay decoding: a frame of a
 * stream without B-frames comes out of this same call. Returns the number
 * of frames that came out (normally 1), or -errno (-EINVAL: decoder
 * rejected the data). Also checks the AU's NAL units (see idr_*). */
int hxfr_avcheck_decode_au(struct hxfr_avcheck *c, const uint8_t *data, size_t size);

/* Decodes an Annex B byte stream given in arbitrary pieces (split anywhere;
 * libavcodec's parser finds access units). An access unit is decoded once
 * the start of the next one has been seen, so call hxfr_avcheck_finish at
 * the end. Returns the number of frames that came out, or -errno. */
int hxfr_avcheck_feed(struct hxfr_avcheck *c, const uint8_t *data, size_t size);

/* Flushes the parser and the decoder (end of stream). Returns the number
 * of frames that came out. The object stays usable for counting only. */
int hxfr_avcheck_finish(struct hxfr_avcheck *c);

/* Total frames decoded so far. */
uint64_t hxfr_avcheck_frame_count(const struct hxfr_avcheck *c);
/* Decoded frame `number` (0-based, decode order) if still kept, else NULL.
 * Valid until the frame is evicted (more than `keep` newer frames) or the
 * object is destroyed. */
const struct hxfr_avcheck_frame *hxfr_avcheck_frame(const struct hxfr_avcheck *c, uint64_t number);
/* The most recently decoded frame, or NULL. */
const struct hxfr_avcheck_frame *hxfr_avcheck_last(const struct hxfr_avcheck *c);

/* Access units seen that contain an IDR slice (NAL type 5). */
uint64_t hxfr_avcheck_idr_count(const struct hxfr_avcheck *c);
/* How many of those lacked an SPS (7) or PPS (8) before the first IDR
 * slice in the same access unit. Must be 0 for hxfr streams. */
uint64_t hxfr_avcheck_idr_missing_params(const struct hxfr_avcheck *c);

/* Lists the NAL unit types (0..31) of an Annex B buffer in order, writing
 * at most max of them to types (types may be NULL when max is 0). Returns
 * the total number of NAL units found (may exceed max). */
int hxfr_avcheck_nal_types(const uint8_t *data, size_t size, uint8_t *types, int max);

/* True if the buffer has an IDR slice and SPS and PPS both come before
 * its first IDR slice. */
bool hxfr_avcheck_au_idr_with_params(const uint8_t *data, size_t size);

/* PSNR of decoded frame f against a reference picture in any hxfr format
 * (enum hxfr_format; planes/strides as hxfr_geometry_compute lays them
 * out), converted to I420 with libyuv. psnr_y: luma only; psnr_all: over
 * all Y, U and V samples together. Either out pointer may be NULL.
 * Identical pictures give 100 dB. Returns 0, -EINVAL (size mismatch or
 * unknown format) or -ENOMEM. */
int hxfr_avcheck_psnr(const struct hxfr_avcheck_frame *f, uint32_t ref_format, uint32_t ref_width,
                      uint32_t ref_height, const uint8_t *const ref_planes[3],
                      const uint32_t ref_strides[3], double *psnr_y, double *psnr_all);

/* Same, with the reference being frame `index` of the test pattern
 * (enum hxfr_pattern_variant) rendered in `format` at the frame's size:
 * what a sender of that pattern fed the encoder. */
int hxfr_avcheck_psnr_pattern(const struct hxfr_avcheck_frame *f, int variant, uint32_t format,
                              uint64_t index, double *psnr_y, double *psnr_all);

/* The RGB colour of decoded pixel (x, y), BT.601 limited range (as the
 * encoders produce it). Returns 0 or -EINVAL (outside the frame). */
int hxfr_avcheck_pixel_rgb(const struct hxfr_avcheck_frame *f, uint32_t x, uint32_t y,
                           uint8_t rgb[3]);

#endif
