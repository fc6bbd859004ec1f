/* Annex B scanning for the encoder backends (see annexb.h). */
#include "annexb.h"

#include <string.h>

/* Offset of the NAL header byte after the next start code at or after i,
 * or n if there is none. */
static size_t next_nal(const uint8_t *d, size_t n, size_t i)
{
    for (; i + 3 < n; i++) {
        if (d[i] == 0 && d[i + 1] == 0 && d[i + 2] == 1) {
            return i + 3;
        }
    }
    return n;
}

void hxfr__annexb_scan(const uint8_t *d, size_t n, struct hxfr__annexb_info *info)
{
    memset(info, 0, sizeof(*info));
    bool in_run = false, run_done = false;
    for (size_t h = d ? next_nal(d, n, 0) : n; h < n; h = next_nal(d, n, h)) {
        unsigned type = d[h] & 0x1fu;
        /* A 4-byte start code's leading zero belongs to this unit. */
        size_t start = h >= 4 && d[h - 4] == 0 ? h - 4 : h - 3;
        if (type == 7 || type == 8) {
            if (!in_run && !run_done) {
                in_run = true;
                info->ps_start = start;
            }
            info->sps = info->sps || type == 7;
            info->pps = info->pps || type == 8;
            continue;
        }
        if (in_run) {
            info->ps_end = start;
            in_run = false;
            run_done = true;
        }
        if (type == 5) {
            info->has_idr = true;
            info->params_before_idr = info->sps && info->pps;
            return;
        }
    }
    if (in_run) {
        info->ps_end = n; /* parameter sets only, e.g. extradata */
    }
}
