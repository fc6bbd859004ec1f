/* Annex B helpers for the encoder backends: where the parameter sets of a
 * keyframe are, and whether they precede its IDR slice. Internal. */
#ifndef HXFR_ANNEXB_H
#define HXFR_ANNEXB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct hxfr__annexb_info {
    bool has_idr;           /* an IDR slice (NAL type 5) is present */
    bool params_before_idr; /* SPS (7) and PPS (8) both come before it */
    bool sps, pps;          /* seen anywhere before the first IDR (or at all) */
    /* The run of SPS/PPS NAL units starting with the first one, start
     * codes included: [ps_start, ps_end). ps_end == ps_start if none. */
    size_t ps_start, ps_end;
};

/* Scans an Annex B buffer (3- or 4-byte start codes) up to its first IDR
 * slice. Never reads outside [d, d + n). */
void hxfr__annexb_scan(const uint8_t *d, size_t n, struct hxfr__annexb_info *info);

#endif
