/* The picture size in an H.264 SPS (ITU-T H.264 section 7.3.2.1.1). */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include <hxfr/proto.h>

#include "sps.h"

#define SPS_MAX_BYTES 512u /* far more than any real SPS */

/* Reads bits from the SPS payload with the emulation prevention bytes
 * (00 00 03) already removed. Reading past the end sets bad. */
struct bits {
    const uint8_t *p;
    size_t len;
    size_t pos; /* in bits */
    bool bad;
};

static unsigned bit(struct bits *b)
{
    if (b->pos >= b->len * 8) {
        b->bad = true;
        return 0;
    }
    unsigned v = (b->p[b->pos / 8] >> (7 - b->pos % 8)) & 1u;
    b->pos++;
    return v;
}

static uint32_t bitsn(struct bits *b, unsigned n)
{
    uint32_t v = 0;
    while (n--) {
        v = (v << 1) | bit(b);
    }
    return v;
}

/* Exp-Golomb ue(v), 0..2^32-2; a code of more than 31 leading zeros is
 * refused (bad). Callers bound what their syntax element allows. */
static uint32_t ue(struct bits *b)
{
    unsigned zeros = 0;
    while (!bit(b) && !b->bad) {
        if (++zeros > 31) {
            b->bad = true;
            return 0;
        }
    }
    if (b->bad) {
        return 0;
    }
    return (uint32_t)((1ull << zeros) - 1 + bitsn(b, zeros));
}

static int32_t se(struct bits *b)
{
    uint32_t k = ue(b);
    return (k & 1) ? (int32_t)((k + 1) / 2) : -(int32_t)(k / 2);
}

static void skip_scaling_list(struct bits *b, unsigned size)
{
    int32_t last = 8, next = 8;
    for (unsigned j = 0; j < size && !b->bad; j++) {
        if (next != 0) {
            /* se(v) reaches +-(2^31 - 1); the standard allows -128..127. */
            int32_t delta = se(b);
            if (delta < -128 || delta > 127) {
                b->bad = true;
                return;
            }
            next = (last + delta + 256) % 256;
        }
        last = next == 0 ? last : next;
    }
}

struct find {
    const uint8_t *nal;
    size_t size;
};

static int find_sps(void *opaque, const uint8_t *nal, size_t size)
{
    struct find *f = opaque;
    size_t sc = nal[2] == 1 ? 3 : 4;
    if (!f->nal && size > sc && (nal[sc] & 0x1f) == 7) {
        f->nal = nal + sc;
        f->size = size - sc;
    }
    return 0;
}

int hxfr__view_sps_size(const uint8_t *au, size_t len, uint32_t *width, uint32_t *height)
{
    struct find f = {0};
    uint8_t rbsp[SPS_MAX_BYTES];
    size_t n = 0;
    if (hxfr_annexb_split(au, len, find_sps, &f) < 0 || !f.nal) {
        return -ENOENT;
    }
    /* Drop the NAL header byte and the emulation prevention bytes. */
    for (size_t i = 1, zeros = 0; i < f.size && n < sizeof(rbsp); i++) {
        if (zeros >= 2 && f.nal[i] == 3) {
            zeros = 0;
            continue;
        }
        zeros = f.nal[i] == 0 ? zeros + 1 : 0;
        rbsp[n++] = f.nal[i];
    }
    struct bits b = {.p = rbsp, .len = n};
    unsigned profile = bitsn(&b, 8);
    bitsn(&b, 16); /* constraint flags, level_idc */
    ue(&b);        /* seq_parameter_set_id */
    unsigned chroma = 1;
    if (profile == 100 || profile == 110 || profile == 122 || profile == 244 || profile == 44 ||
        profile == 83 || profile == 86 || profile == 118 || profile == 128 || profile == 138 ||
        profile == 139 || profile == 134 || profile == 135) {
        chroma = ue(&b);
        if (chroma > 3) {
            return -EBADMSG;
        }
        if (chroma == 3 && bit(&b)) {
            chroma = 0; /* separate_colour_plane: no chroma subsampling to crop by */
        }
        ue(&b);  /* bit_depth_luma_minus8 */
        ue(&b);  /* bit_depth_chroma_minus8 */
        bit(&b); /* qpprime_y_zero_transform_bypass_flag */
        if (bit(&b)) {
            for (unsigned i = 0; i < (chroma != 3 ? 8u : 12u) && !b.bad; i++) {
                if (bit(&b)) {
                    skip_scaling_list(&b, i < 6 ? 16 : 64);
                }
            }
        }
    }
    ue(&b); /* log2_max_frame_num_minus4 */
    uint32_t poc_type = ue(&b);
    if (poc_type == 0) {
        ue(&b);
    } else if (poc_type == 1) {
        bit(&b);
        se(&b);
        se(&b);
        uint32_t cycle = ue(&b);
        if (cycle > 255) {
            return -EBADMSG;
        }
        for (uint32_t i = 0; i < cycle && !b.bad; i++) {
            se(&b);
        }
    } else if (poc_type != 2) {
        return -EBADMSG;
    }
    ue(&b);  /* max_num_ref_frames */
    bit(&b); /* gaps_in_frame_num_value_allowed_flag */
    uint64_t mbs_w = (uint64_t)ue(&b) + 1;
    uint64_t map_h = (uint64_t)ue(&b) + 1;
    unsigned frame_mbs_only = bit(&b);
    if (!frame_mbs_only) {
        bit(&b); /* mb_adaptive_frame_field_flag */
    }
    bit(&b); /* direct_8x8_inference_flag */
    uint64_t w = mbs_w * 16;
    uint64_t h = map_h * 16 * (2 - frame_mbs_only);
    if (bit(&b)) {
        uint64_t cl = ue(&b), cr = ue(&b), ct = ue(&b), cb = ue(&b);
        uint64_t cx = chroma == 1 || chroma == 2 ? 2 : 1;
        uint64_t cy = (chroma == 1 ? 2 : 1) * (2 - frame_mbs_only);
        if ((cl + cr) * cx >= w || (ct + cb) * cy >= h) {
            return -EBADMSG;
        }
        w -= (cl + cr) * cx;
        h -= (ct + cb) * cy;
    }
    if (b.bad || w == 0 || h == 0 || w > 16384 || h > 16384) {
        return -EBADMSG;
    }
    *width = (uint32_t)w;
    *height = (uint32_t)h;
    return 0;
}
