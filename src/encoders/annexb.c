/* Annex B scanning for the encoder backends (see annexb.h). */
#include "annexb.h"

#include <string.h>

#include <hxfr/proto.h>

void hxfr__annexb_scan(const uint8_t *d, size_t n, struct hxfr__annexb_info *info)
{
    memset(info, 0, sizeof(*info));
    bool in_run = false, run_done = false;
    size_t sc;
    for (size_t start = hxfr_annexb_next(d, n, 0, &sc); start + sc < n;
         start = hxfr_annexb_next(d, n, start + sc, &sc)) {
        /* start: the unit's first byte (a 4-byte start code's leading zero
         * belongs to it); its NAL header follows the start code. */
        unsigned type = d[start + sc] & 0x1fu;
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
