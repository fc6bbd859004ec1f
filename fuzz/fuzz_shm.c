/* libFuzzer target: shared-memory ring validation as the host runs it at
 * attach and at every SHM FRAME_REQUEST. Input: 64 header bytes (as the
 * guest wrote them), u64 ring offset, u64 region size, then a frame
 * request (u8 format index, u32 width, height, stride, slot). Whatever
 * validates must describe memory inside the region: every row of every
 * plane of the frame is read from a buffer of exactly region-size bytes,
 * so AddressSanitizer sees any offset that leaves it. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <hxfr/shm.h>

#include "fuzz.h"

#define MAX_TOUCH (1u << 22) /* regions up to 4 MiB are really allocated */

static const uint32_t formats[] = {HXFR_FORMAT_ARGB8888, HXFR_FORMAT_XBGR8888, HXFR_FORMAT_NV12,
                                   HXFR_FORMAT_I420};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < HXFR_SHM_HEADER_SIZE + 16 + 17) {
        return 0;
    }
    const uint8_t *p = data + HXFR_SHM_HEADER_SIZE;
    uint64_t ring_offset = hxfr_get_u64(p);
    uint64_t region = hxfr_get_u64(p + 8);
    /* Small regions and offsets most of the time, so the slot checks and
     * the memory touching are reached; the raw values otherwise. */
    if (p[16] & 1) {
        region %= MAX_TOUCH + 1;
        ring_offset %= MAX_TOUCH + 1;
    }
    uint32_t format = formats[p[16] >> 1 & 3];
    uint32_t width = hxfr_get_u32(p + 17) % 2049;
    uint32_t height = hxfr_get_u32(p + 21) % 2049;
    uint32_t stride = hxfr_get_u32(p + 25) % 16384;
    uint32_t slot = hxfr_get_u32(p + 29);

    struct hxfr_shm_header h, again;
    uint8_t raw[HXFR_SHM_HEADER_SIZE];
    hxfr_shm_header_decode(data, &h);
    hxfr_shm_header_encode(raw, &h);
    hxfr_shm_header_decode(raw, &again);
    REQUIRE(memcmp(raw, data, 36) == 0);
    REQUIRE(again.slot_size == h.slot_size && again.data_offset == h.data_offset);

    struct hxfr_shm_layout l;
    if (hxfr_shm_layout_validate(&h, ring_offset, region, &l) < 0) {
        return 0;
    }
    REQUIRE(l.slot_count >= 1 && l.slot_count <= HXFR_SHM_MAX_SLOTS);
    REQUIRE(l.slot_size >= 1 && l.slot_size <= HXFR_SHM_MAX_SLOT_SIZE);
    REQUIRE(l.data_offset >= HXFR_SHM_HEADER_SIZE);
    REQUIRE(l.ring_offset + l.ring_size <= region);
    REQUIRE(l.ring_size == l.data_offset + (uint64_t)l.slot_count * l.slot_size);

    struct hxfr_geometry g;
    if (hxfr_geometry_compute(format, width, height, stride, 0, &g) < 0) {
        return 0;
    }
    uint64_t off;
    if (hxfr_shm_slot_offset(&l, slot, &g, &off) < 0) {
        REQUIRE(slot >= l.slot_count || g.size > l.slot_size);
        return 0;
    }
    REQUIRE(slot < l.slot_count && g.size <= l.slot_size);
    REQUIRE(off + g.size <= region);
    if (region > MAX_TOUCH) {
        return 0;
    }
    uint8_t *mem = malloc(region ? region : 1);
    REQUIRE(mem != NULL);
    memset(mem, 0x5a, region);
    for (uint32_t i = 0; i < g.num_planes; i++) {
        for (uint32_t y = 0; y < g.plane_height[i]; y++) {
            const uint8_t *row = mem + off + g.offset[i] + (uint64_t)y * g.stride[i];
            /* The first and last byte of the row: what a conversion reads. */
            volatile uint8_t first = row[0], last = row[g.stride[i] - 1];
            (void)first;
            (void)last;
        }
    }
    free(mem);
    return 0;
}
