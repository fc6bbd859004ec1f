/* Pixel formats and frame geometry. Every size a peer sends passes through
 * hxfr_geometry_compute() before anything is allocated or read, so all
 * arithmetic here is done in 64 bits with explicit overflow checks, and the
 * results are bounded to 32 bits so every consumer can hold them. */
#include <string.h>
#include <strings.h>

#include <hxfr/proto.h>

struct format_info {
    uint32_t format;
    const char *name;     /* short name */
    const char *drm_name; /* DRM name */
    uint32_t bpp;         /* bytes per pixel of plane 0 */
    uint32_t planes;
};

static const struct format_info formats[] = {
    {HXFR_FORMAT_ARGB8888, "BGRA", "ARGB8888", 4, 1},
    {HXFR_FORMAT_XRGB8888, "BGRx", "XRGB8888", 4, 1},
    {HXFR_FORMAT_ABGR8888, "RGBA", "ABGR8888", 4, 1},
    {HXFR_FORMAT_XBGR8888, "RGBx", "XBGR8888", 4, 1},
    {HXFR_FORMAT_NV12, "NV12", "NV12", 1, 2},
    {HXFR_FORMAT_I420, "I420", "YU12", 1, 3},
};

static const struct format_info *format_info(uint32_t format)
{
    for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
        if (formats[i].format == format) {
            return &formats[i];
        }
    }
    return NULL;
}

HXFR_EXPORT bool hxfr_format_known(uint32_t format)
{
    return format_info(format) != NULL;
}

HXFR_EXPORT const char *hxfr_format_name(uint32_t format)
{
    const struct format_info *f = format_info(format);
    return f ? f->name : NULL;
}

HXFR_EXPORT uint32_t hxfr_format_from_name(const char *name)
{
    if (!name) {
        return 0;
    }
    for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
        if (strcasecmp(name, formats[i].name) == 0 || strcasecmp(name, formats[i].drm_name) == 0) {
            return formats[i].format;
        }
    }
    return 0;
}

HXFR_EXPORT uint32_t hxfr_format_min_stride(uint32_t format, uint32_t width)
{
    const struct format_info *f = format_info(format);
    if (!f) {
        return 0;
    }
    uint64_t row = (uint64_t)width * f->bpp;
    return row > UINT32_MAX ? 0 : (uint32_t)row;
}

/* a * b into *out; false if the product does not fit 32 bits. The operands
 * are 32-bit values widened to 64 bits, so the product itself cannot wrap. */
static bool mul_u32(uint64_t a, uint64_t b, uint64_t *out)
{
    if (__builtin_mul_overflow(a, b, out)) {
        return false;
    }
    return *out <= UINT32_MAX;
}

/* a + b into *out; false if the sum does not fit 32 bits. */
static bool add_u32(uint64_t a, uint64_t b, uint64_t *out)
{
    if (__builtin_add_overflow(a, b, out)) {
        return false;
    }
    return *out <= UINT32_MAX;
}

HXFR_EXPORT int hxfr_geometry_compute(uint32_t format, uint32_t width, uint32_t height,
                                      uint32_t stride, uint32_t max_dim, struct hxfr_geometry *out)
{
    const struct format_info *f = format_info(format);
    if (!f) {
        return -HXFR_EFORMAT;
    }
    if (width == 0 || height == 0 || stride == 0) {
        return -HXFR_EZERO;
    }
    if (max_dim == 0 || max_dim > HXFR_MAX_DIM_HARD) {
        max_dim = HXFR_MAX_DIM_HARD;
    }
    if (width > max_dim || height > max_dim) {
        return -HXFR_EDIMS;
    }
    bool yuv420 = f->planes > 1;
    if (yuv420 && ((width | height) & 1u)) {
        return -HXFR_EODD;
    }
    /* I420 chroma rows are stride/2 bytes: an odd stride has no exact half. */
    if (format == HXFR_FORMAT_I420 && (stride & 1u)) {
        return -HXFR_EODD;
    }
    if ((uint64_t)stride < (uint64_t)width * f->bpp) {
        return -HXFR_ESTRIDE;
    }

    struct hxfr_geometry g;
    memset(&g, 0, sizeof(g));
    g.format = format;
    g.width = width;
    g.height = height;
    g.num_planes = f->planes;
    g.bpp = f->bpp;
    g.stride[0] = stride;
    g.plane_height[0] = height;
    if (format == HXFR_FORMAT_NV12) {
        g.stride[1] = stride;
        g.plane_height[1] = height / 2;
    } else if (format == HXFR_FORMAT_I420) {
        g.stride[1] = g.stride[2] = stride / 2;
        g.plane_height[1] = g.plane_height[2] = height / 2;
    }

    uint64_t total = 0;
    for (uint32_t i = 0; i < g.num_planes; i++) {
        uint64_t size;
        if (!mul_u32(g.stride[i], g.plane_height[i], &size)) {
            return -HXFR_EOVERFLOW;
        }
        g.offset[i] = total;
        g.plane_size[i] = size;
        if (!add_u32(total, size, &total)) {
            return -HXFR_EOVERFLOW;
        }
    }
    g.size = total;
    *out = g;
    return 0;
}
