/* The encoder registry: a static list of backend ops tables, looked up by
 * codec name, plus configuration defaults and discovery of what this
 * machine can open. */
#include "encoder.h"
#include "hxfr-config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Backends in order of preference; the first whose probe accepts a codec
 * name opens it. */
static const struct hxfr_encoder_ops *const backends[] = {
    &hxfr__avcodec_ops,
};
#define NBACKENDS (sizeof(backends) / sizeof(backends[0]))

/* H.264 encoder names worth trying when listing what this machine has.
 * Software first, then the hardware families FFmpeg wraps. libx264 only in
 * builds with x264 (meson -Dx264). */
static const char *const candidates[] = {
#if HXFR_HAVE_X264
    "libx264",
#endif
    "libopenh264",       "h264_vaapi",   "h264_nvenc", "h264_qsv",
    "h264_videotoolbox", "h264_v4l2m2m", "h264_amf",   "h264_mf",
};

void hxfr__encoder_config_defaults(struct hxfr_encoder_config *cfg)
{
    if (!cfg->codec) {
        cfg->codec = HXFR_DEFAULT_CODEC;
    }
    if (cfg->bitrate == 0) {
        /* 4 bits per pixel per second: about 8 Mbit/s at 1080p, enough for
         * sharp text at 60 fps with x264's fast presets. */
        uint64_t b = (uint64_t)cfg->width * cfg->height * 4u;
        if (b < HXFR_MIN_BITRATE) {
            b = HXFR_MIN_BITRATE;
        }
        cfg->bitrate = b > UINT32_MAX ? UINT32_MAX : (uint32_t)b;
    }
    if (cfg->framerate_num == 0) {
        cfg->framerate_num = 60;
        cfg->framerate_den = 1;
    }
    if (cfg->framerate_den == 0) {
        cfg->framerate_den = 1;
    }
    if (cfg->gop == 0) {
        cfg->gop = HXFR_DEFAULT_GOP;
    }
    if (!cfg->preset) {
        cfg->preset = HXFR_DEFAULT_PRESET;
    }
}

static const struct hxfr_encoder_ops *find_backend(const char *codec)
{
    for (size_t i = 0; i < NBACKENDS; i++) {
        const struct hxfr_encoder_ops *ops = backends[i];
        if (ops->version != HXFR_ENCODER_OPS_VERSION) {
            continue;
        }
        if (!ops->probe || ops->probe(codec)) {
            return ops;
        }
    }
    return NULL;
}

struct hxfr_encoder *hxfr__encoder_create(const struct hxfr_encoder_config *cfg)
{
    if (!cfg) {
        errno = EINVAL;
        return NULL;
    }
    struct hxfr_encoder_config c = *cfg;
    hxfr__encoder_config_defaults(&c);
    const struct hxfr_encoder_ops *ops = find_backend(c.codec);
    if (!ops) {
        errno = ENOENT;
        return NULL;
    }
    return ops->create(&c);
}

void hxfr__encoder_destroy(struct hxfr_encoder *enc)
{
    if (enc) {
        enc->ops->destroy(enc);
    }
}

int hxfr__encoder_encode(struct hxfr_encoder *enc, const struct hxfr_image *img, int64_t pts,
                         bool force_idr, struct hxfr_packet *out)
{
    if (!enc || !img || !out) {
        return -EINVAL;
    }
    return enc->ops->encode(enc, img, pts, force_idr, out);
}

int hxfr__encoder_list(void (*cb)(void *opaque, const char *codec, const char *backend),
                       void *opaque)
{
    int count = 0;
    for (size_t i = 0; i < sizeof(candidates) / sizeof(candidates[0]); i++) {
        const struct hxfr_encoder_ops *ops = find_backend(candidates[i]);
        if (!ops) {
            continue;
        }
        /* A small real open: a hardware encoder that is compiled into
         * FFmpeg but has no device here fails at this point. */
        struct hxfr_encoder_config c = {
            .codec = candidates[i],
            .width = 320,
            .height = 240,
            .threads = 1,
        };
        hxfr__encoder_config_defaults(&c);
        struct hxfr_encoder *enc = ops->create(&c);
        if (!enc) {
            continue;
        }
        ops->destroy(enc);
        if (cb) {
            cb(opaque, candidates[i], ops->name);
        }
        count++;
    }
    return count;
}
