/* Colour conversion into an encoder's input picture with libyuv. Each
 * (source, destination) pair is one libyuv call that reads the caller's
 * pixels and writes the destination planes directly: no intermediate
 * buffer. RGB sources become BT.601 limited-range YUV, which is what the
 * encoders signal in the stream. */
#include <errno.h>
#include <limits.h>

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
