/* Colour conversion into an encoder's input picture with libyuv. Each
 * (source, destination) pair is one libyuv call that reads the caller's
 * pixels and writes the destination planes directly: no intermediate
 * buffer (RGBA into 4:4:4 goes through one small row piece on the stack,
 * libyuv having no direct call for it). RGB sources become BT.601
 * limited-range YUV, which is what the encoders signal in the stream.
 * Padding a picture out to the encoder's coded size is here too. */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include <libyuv.h>

#include <hxfr/proto.h>

#include "encoder.h"

/* Checks the source image: known format, sane size, planes and strides
 * large enough for one row. */
static int check_source(const struct hxfr_image *s)
{
    if (!s || s->width == 0 || s->height == 0 || s->width > HXFR_MAX_DIM_HARD ||
        s->height > HXFR_MAX_DIM_HARD || !s->planes[0]) {
        return -EINVAL;
    }
    for (int i = 0; i < 3; i++) {
        if (s->strides[i] > INT_MAX) {
            return -EINVAL;
        }
    }
    uint32_t w = s->width, cw = (w + 1) / 2;
    switch (s->format) {
    case HXFR_FORMAT_ARGB8888:
    case HXFR_FORMAT_XRGB8888:
    case HXFR_FORMAT_ABGR8888:
    case HXFR_FORMAT_XBGR8888:
        return s->strides[0] >= 4 * w ? 0 : -EINVAL;
    case HXFR_FORMAT_NV12:
        return s->planes[1] && s->strides[0] >= w && s->strides[1] >= 2 * cw ? 0 : -EINVAL;
    case HXFR_FORMAT_I420:
        return s->planes[1] && s->planes[2] && s->strides[0] >= w && s->strides[1] >= cw &&
                       s->strides[2] >= cw
                   ? 0
                   : -EINVAL;
    default:
        return -EINVAL;
    }
}

/* RGBA (ABGR8888) into I444: libyuv converts only ARGB-ordered pixels to
 * 4:4:4, so each row goes through a piece of ARGB on the stack, 256
 * pixels at a time (4:4:4 has no horizontal subsampling, so pieces
 * convert independently). */
static int abgr_to_i444(const uint8_t *src, int src_stride, uint8_t *y, int sy, uint8_t *u, int su,
                        uint8_t *v, int sv, int w, int h)
{
    enum { PIECE = 256 };
    uint8_t argb[PIECE * 4];
    for (int row = 0; row < h; row++) {
        const uint8_t *in = src + (size_t)row * (size_t)src_stride;
        for (int x = 0; x < w; x += PIECE) {
            int n = w - x < PIECE ? w - x : PIECE;
            if (ABGRToARGB(in + (size_t)x * 4, n * 4, argb, n * 4, n, 1) != 0 ||
                ARGBToI444(argb, n * 4, y + (size_t)row * (size_t)sy + x, sy,
                           u + (size_t)row * (size_t)su + x, su, v + (size_t)row * (size_t)sv + x,
                           sv, n, 1) != 0) {
                return -1;
            }
        }
    }
    return 0;
}

void hxfr__pad_plane(uint8_t *plane, int stride, int width, int height, int coded_width,
                     int coded_height)
{
    for (int row = 0; row < height && width < coded_width; row++) {
        uint8_t *line = plane + (size_t)row * (size_t)stride;
        memset(line + width, line[width - 1], (size_t)(coded_width - width));
    }
    for (int row = height; row < coded_height; row++) {
        memcpy(plane + (size_t)row * (size_t)stride, plane + (size_t)(height - 1) * (size_t)stride,
               (size_t)coded_width);
    }
}

int hxfr__convert(const struct hxfr_image *src, uint32_t dst_format, uint8_t *const dst[3],
                  const int dst_strides[3])
{
    int ret = check_source(src);
    if (ret < 0 || !dst || !dst_strides || !dst[0] || !dst[1]) {
        return -EINVAL;
    }
    const uint8_t *const *p = src->planes;
    int s0 = (int)src->strides[0], s1 = (int)src->strides[1], s2 = (int)src->strides[2];
    int w = (int)src->width, h = (int)src->height;
    int r = -1;

    if (dst_format == HXFR_FORMAT_I420) {
        if (!dst[2]) {
            return -EINVAL;
        }
        uint8_t *y = dst[0], *u = dst[1], *v = dst[2];
        int sy = dst_strides[0], su = dst_strides[1], sv = dst_strides[2];
        switch (src->format) {
        case HXFR_FORMAT_ARGB8888:
        case HXFR_FORMAT_XRGB8888:
            r = ARGBToI420(p[0], s0, y, sy, u, su, v, sv, w, h);
            break;
        case HXFR_FORMAT_ABGR8888:
        case HXFR_FORMAT_XBGR8888:
            r = ABGRToI420(p[0], s0, y, sy, u, su, v, sv, w, h);
            break;
        case HXFR_FORMAT_NV12:
            r = NV12ToI420(p[0], s0, p[1], s1, y, sy, u, su, v, sv, w, h);
            break;
        case HXFR_FORMAT_I420:
            r = I420Copy(p[0], s0, p[1], s1, p[2], s2, y, sy, u, su, v, sv, w, h);
            break;
        default:
            break;
        }
    } else if (dst_format == HXFR__FORMAT_I444) {
        if (!dst[2]) {
            return -EINVAL;
        }
        uint8_t *y = dst[0], *u = dst[1], *v = dst[2];
        int sy = dst_strides[0], su = dst_strides[1], sv = dst_strides[2];
        switch (src->format) {
        case HXFR_FORMAT_ARGB8888:
        case HXFR_FORMAT_XRGB8888:
            r = ARGBToI444(p[0], s0, y, sy, u, su, v, sv, w, h);
            break;
        case HXFR_FORMAT_ABGR8888:
        case HXFR_FORMAT_XBGR8888:
            r = abgr_to_i444(p[0], s0, y, sy, u, su, v, sv, w, h);
            break;
        default:
            /* 4:2:0 sources keep their own layout (they are never odd). */
            break;
        }
    } else if (dst_format == HXFR_FORMAT_NV12) {
        uint8_t *y = dst[0], *uv = dst[1];
        int sy = dst_strides[0], suv = dst_strides[1];
        switch (src->format) {
        case HXFR_FORMAT_ARGB8888:
        case HXFR_FORMAT_XRGB8888:
            r = ARGBToNV12(p[0], s0, y, sy, uv, suv, w, h);
            break;
        case HXFR_FORMAT_ABGR8888:
        case HXFR_FORMAT_XBGR8888:
            r = ABGRToNV12(p[0], s0, y, sy, uv, suv, w, h);
            break;
        case HXFR_FORMAT_NV12:
            r = NV12Copy(p[0], s0, p[1], s1, y, sy, uv, suv, w, h);
            break;
        case HXFR_FORMAT_I420:
            r = I420ToNV12(p[0], s0, p[1], s1, p[2], s2, y, sy, uv, suv, w, h);
            break;
        default:
            break;
        }
    }
    return r == 0 ? 0 : -EINVAL;
}
