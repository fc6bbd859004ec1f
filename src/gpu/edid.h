/* EDIDs for hxfr-gpu's virtual monitors (VESA E-EDID 1.4 with a DisplayID
 * 1.2 extension block). The preferred mode is the connector's size; the
 * base block describes it in its first detailed timing when that fits
 * (sides up to 4095, pixel clock up to 655.35 MHz), the extension block
 * always at 60 Hz, next to modes up to 5120x2880. Timings follow CVT with
 * reduced blanking. */
#ifndef HXFR_GPU_EDID_H
#define HXFR_GPU_EDID_H

#include <stddef.h>
#include <stdint.h>

#define HXFR_EDID_SIZE 256

/* Writes the EDID of monitor index (0-based scanout) whose preferred mode
 * is width x height (1 .. 8192 each) into out. Returns its length
 * (HXFR_EDID_SIZE), or 0 for a size out of range. */
size_t hxfr__edid_build(uint8_t out[HXFR_EDID_SIZE], uint32_t width, uint32_t height,
                        uint32_t index);

#endif
