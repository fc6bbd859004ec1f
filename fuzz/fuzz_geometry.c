/* libFuzzer target: frame geometry on arbitrary (format, width, height,
 * stride, max_dim). An accepted layout must be internally consistent, and
 * every row of every plane is written into a buffer of exactly g.size bytes
 * so AddressSanitizer sees any offset that leaves it. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <hxfr/proto.h>

#include "fuzz.h"

/* Formats are mostly drawn from the known list so the fuzzer spends its
 * time past the format check; byte 0 >= 8 takes the raw fourcc instead. */
static const uint32_t formats[] = {HXFR_FORMAT_ARGB8888, HXFR_FORMAT_XRGB8888, HXFR_FORMAT_ABGR8888,
                                   HXFR_FORMAT_XBGR8888, HXFR_FORMAT_NV12,     HXFR_FORMAT_I420,
                                   HXFR_FORMAT_NV12,     HXFR_FORMAT_I420};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 21) {
        return 0;
    }
    uint32_t format = data[0] < 8 ? formats[data[0]] : hxfr_get_u32(data + 1);
    uint32_t width = hxfr_get_u32(data + 5);
    uint32_t height = hxfr_get_u32(data + 9);
    uint32_t stride = hxfr_get_u32(data + 13);
    uint32_t max_dim = hxfr_get_u32(data + 17);

    struct hxfr_geometry g;
    int r = hxfr_geometry_compute(format, width, height, stride, max_dim, &g);
    if (r < 0) {
        REQUIRE(r <= -HXFR_EBASE && r > -HXFR_ELAST);
        return 0;
    }
    uint32_t limit = (max_dim == 0 || max_dim > HXFR_MAX_DIM_HARD) ? HXFR_MAX_DIM_HARD : max_dim;
    REQUIRE(hxfr_format_known(format));
    REQUIRE(g.format == format && g.width == width && g.height == height);
    REQUIRE(width > 0 && height > 0 && width <= limit && height <= limit);
    REQUIRE(g.num_planes >= 1 && g.num_planes <= 3);
    REQUIRE((uint64_t)g.stride[0] >= (uint64_t)width * g.bpp);
    REQUIRE(hxfr_format_min_stride(format, width) <= stride);
    REQUIRE(g.size <= UINT32_MAX);
    uint64_t end = 0;
    for (uint32_t i = 0; i < g.num_planes; i++) {
        REQUIRE(g.offset[i] == end);
        REQUIRE(g.plane_size[i] == (uint64_t)g.stride[i] * g.plane_height[i]);
        end += g.plane_size[i];
    }
    REQUIRE(end == g.size);

    /* Touch every row's visible bytes of every plane. The row width of a
     * chroma plane is what a converter would write: NV12 interleaves U and V
     * at full stride width, I420 writes width/2 bytes. */
    if (g.size > (1u << 22)) {
        return 0;
    }
    uint8_t *buf = malloc(g.size);
    REQUIRE(buf != NULL);
    for (uint32_t i = 0; i < g.num_planes; i++) {
        uint64_t row =
            i == 0 ? (uint64_t)width * g.bpp : (format == HXFR_FORMAT_NV12 ? width : width / 2);
        REQUIRE(row <= g.stride[i]);
        for (uint32_t y = 0; y < g.plane_height[i]; y++) {
            memset(buf + g.offset[i] + (uint64_t)y * g.stride[i], (int)y, row);
        }
    }
    free(buf);
    return 0;
}
