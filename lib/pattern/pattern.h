/* The deterministic desktop-like test screen shared by hxfr-send, the
 * tests and the benchmarks: windows with title bars, text-like detail, a
 * scrolling area, a moving cursor and a small video-like region. The same
 * (variant, size, frame index) always gives the same pixels.
 * Internal to hxfr (a static library); no allocation in render.
 */
#ifndef HXFR_PATTERN_H
#define HXFR_PATTERN_H

#include <stdint.h>

enum hxfr_pattern_variant {
    HXFR_PATTERN_DESKTOP = 0, /* typical desktop: small changing regions */
    HXFR_PATTERN_STATIC,      /* mostly unchanged: only the cursor blinks */
    HXFR_PATTERN_BUSY,        /* a large moving region (video, scrolling) */
};

/* Parses "desktop", "static", "busy"; returns -1 if unknown. */
int hxfr_pattern_variant_from_name(const char *name);

/* Renders frame `index` into planes laid out as hxfr_geometry_compute()
 * describes (format any enum hxfr_format; strides per plane). width and
 * height must be even for NV12/I420. Returns 0 or -EINVAL. */
int hxfr_pattern_render(enum hxfr_pattern_variant variant, uint32_t format, uint32_t width,
                        uint32_t height, uint64_t index, uint8_t *const planes[3],
                        const uint32_t strides[3]);

/* A known colour (RGB) the pattern draws at pixel (x, y) of every frame
 * index, for tests that check decoded pixels (e.g. the browser test):
 * returns 1 and fills rgb if (x, y) lies in a region of fixed colour,
 * 0 otherwise. */
int hxfr_pattern_probe(enum hxfr_pattern_variant variant, uint32_t width, uint32_t height,
                       uint32_t x, uint32_t y, uint8_t rgb[3]);

#endif
