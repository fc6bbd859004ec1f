/* hxfr-view: the picture size an H.264 stream announces in its sequence
 * parameter set, which the gateway needs to map pointer coordinates and to
 * tell agents the scanout's size. Pure, fuzzed. Internal to hxfr-view. */
#ifndef HXFR_VIEW_SPS_H
#define HXFR_VIEW_SPS_H

#include <stddef.h>
#include <stdint.h>

/* Finds the first SPS (NAL type 7) in an Annex B access unit and reads the
 * displayed size (coded size minus the frame cropping). Returns 0 with
 * *width and *height set, -ENOENT without an SPS, -EBADMSG for an SPS that
 * does not parse or describes no picture (or one above 16384 pixels on a
 * side). Never reads outside [au, au + len). */
int hxfr__view_sps_size(const uint8_t *au, size_t len, uint32_t *width, uint32_t *height);

#endif
