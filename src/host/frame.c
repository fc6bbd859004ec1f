/* Frame geometry against the server's limits (frame.h). */
#include "frame.h"

int hxfr__limits_check(const struct hxfr__limits *l, uint32_t format, uint32_t width,
                       uint32_t height, uint32_t stride, struct hxfr_geometry *g)
{
    uint32_t max_dim = l->max_width > l->max_height ? l->max_width : l->max_height;
    int r = hxfr_geometry_compute(format, width, height, stride, max_dim, g);
    if (r < 0) {
        return r;
    }
    if (width > l->max_width || height > l->max_height) {
        return -HXFR_EDIMS;
    }
    return 0;
}

int32_t hxfr__limits_status(int err)
{
    return err == -HXFR_EDIMS ? HXFR_STATUS_TOO_LARGE : HXFR_STATUS_BAD_GEOMETRY;
}
