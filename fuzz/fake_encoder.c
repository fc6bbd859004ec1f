/* A stand-in for src/encoders in fuzz builds (which have no libavcodec):
 * the same internal API, no codec. It reads every byte of every plane the
 * host hands it, so AddressSanitizer checks the host's plane pointers and
 * strides, and it returns a small Annex B access unit (SPS, PPS and an IDR
 * slice when an IDR is asked for or due, else one P slice). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <hxfr/proto.h>

#include "encoders/encoder.h"

struct fake_encoder {
    struct hxfr_encoder base;
    uint64_t frames;
    uint8_t au[64];
};

void hxfr__encoder_config_defaults(struct hxfr_encoder_config *cfg)
{
    if (!cfg->codec) {
        cfg->codec = HXFR_DEFAULT_CODEC;
    }
    if (!cfg->bitrate) {
        uint64_t b = (uint64_t)cfg->width * cfg->height * 4u;
        cfg->bitrate =
            b > HXFR_MIN_BITRATE ? (b > UINT32_MAX ? UINT32_MAX : (uint32_t)b) : HXFR_MIN_BITRATE;
    }
    if (!cfg->framerate_num || !cfg->framerate_den) {
        cfg->framerate_num = 60;
        cfg->framerate_den = 1;
    }
    if (!cfg->gop) {
        cfg->gop = HXFR_DEFAULT_GOP;
    }
}

struct hxfr_encoder *hxfr__encoder_create(const struct hxfr_encoder_config *cfg)
{
    /* A size this fake refuses, to reach the open-failure path. */
    if (cfg->width == 0 || cfg->height == 0 || cfg->width == 250) {
        errno = EINVAL;
        return NULL;
    }
    struct fake_encoder *e = calloc(1, sizeof(*e));
    if (!e) {
        return NULL;
    }
    e->base.config = *cfg;
    hxfr__encoder_config_defaults(&e->base.config);
    strcpy(e->base.codec_name, "fake");
    return &e->base;
}

void hxfr__encoder_destroy(struct hxfr_encoder *enc)
{
    free(enc);
}

/* Rows and bytes per row of plane p, as hxfr_geometry_compute lays them
 * out (0 rows: the format has no such plane). */
static void plane_shape(uint32_t format, uint32_t w, uint32_t h, unsigned p, size_t *rows,
                        size_t *bytes)
{
    *rows = 0;
    *bytes = 0;
    if (format == HXFR_FORMAT_NV12) {
        if (p < 2) {
            *rows = p == 0 ? h : h / 2;
            *bytes = w;
        }
    } else if (format == HXFR_FORMAT_I420) {
        *rows = p == 0 ? h : h / 2;
        *bytes = p == 0 ? w : w / 2;
    } else if (p == 0) {
        *rows = h;
        *bytes = (size_t)w * 4u;
    }
}

int hxfr__encoder_encode(struct hxfr_encoder *enc, const struct hxfr_image *img, int64_t pts,
                         bool force_idr, struct hxfr_packet *out)
{
    struct fake_encoder *e = (struct fake_encoder *)enc;
    if (img->width != enc->config.width || img->height != enc->config.height) {
        return -EINVAL;
    }
    volatile uint8_t x = 0;
    for (unsigned p = 0; p < 3; p++) {
        size_t rows, bytes;
        plane_shape(img->format, img->width, img->height, p, &rows, &bytes);
        for (size_t r = 0; r < rows && bytes; r++) {
            const uint8_t *row = img->planes[p] + r * img->strides[p];
            x ^= row[0];
            x ^= row[bytes - 1];
        }
    }
    (void)x;
    /* A "mid-stream failure" now and then: a pts the fuzzer can choose. */
    if (pts == 0x0BADBADBADBADBADll) {
        return -EIO;
    }
    bool idr = force_idr || e->frames % enc->config.gop == 0;
    static const uint8_t params[] = {0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1e,
                                     0, 0, 0, 1, 0x68, 0xce, 0x3c, 0x80};
    size_t n = 0;
    if (idr) {
        memcpy(e->au, params, sizeof(params));
        n = sizeof(params);
    }
    const uint8_t slice[] = {0, 0, 1, idr ? 0x65 : 0x41, 0x88, 0x84, 0x00, 0x33};
    memcpy(e->au + n, slice, sizeof(slice));
    n += sizeof(slice);
    e->frames++;
    out->data = e->au;
    out->size = n;
    out->pts = pts;
    out->dts = pts;
    out->keyframe = idr;
    return 0;
}
