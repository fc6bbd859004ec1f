/* One frame's encode (encode.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "encode.h"

static bool encoder_matches(const struct hxfr__encoding *e, const struct hxfr__frame *f)
{
    return e->gen == f->cfg_gen && e->width == f->img.width && e->height == f->img.height &&
           e->format == f->img.format;
}

void hxfr__encoding_finish(struct hxfr__encoding *e)
{
    hxfr__encoder_destroy(e->enc);
    e->enc = NULL;
}

void hxfr__frame_encode(struct hxfr__frame *f)
{
    struct hxfr__encoding *e = f->encoding;
    uint64_t t0 = hxfr__now_ns();
    bool idr = f->force_idr;

    f->status = HXFR_STATUS_OK;
    f->errmsg[0] = '\0';
    f->out = NULL;
    f->converted_pixels = 0;
    f->bounced_bytes = 0;
    if (f->source && f->source->map && f->source->map(f) < 0) {
        f->status = HXFR_STATUS_INTERNAL;
        snprintf(f->errmsg, sizeof(f->errmsg), "%s: no picture to encode", f->source->name);
        goto out;
    }

    if (e->enc && !encoder_matches(e, f)) {
        /* New size, format or settings: a fresh encoder, which starts with
         * an IDR so the stream stays decodable across the change. */
        hxfr__encoding_finish(e);
    }
    if (!e->enc) {
        struct hxfr_encoder_config cfg = f->cfg;
        cfg.width = f->img.width;
        cfg.height = f->img.height;
        e->enc = hxfr__encoder_create(&cfg);
        if (!e->enc) {
            int err = errno;
            f->status = HXFR_STATUS_ENCODE_FAILED;
            snprintf(f->errmsg, sizeof(f->errmsg), "cannot open encoder %s for %ux%u: %s",
                     cfg.codec ? cfg.codec : HXFR_DEFAULT_CODEC, cfg.width, cfg.height,
                     strerror(err));
            goto out;
        }
        e->gen = f->cfg_gen;
        e->width = f->img.width;
        e->height = f->img.height;
        e->format = f->img.format;
        idr = true;
    }
    snprintf(f->codec, sizeof(f->codec), "%s", e->enc->codec_name);

    struct hxfr_packet pkt;
    memset(&pkt, 0, sizeof(pkt));
    int r = hxfr__encoder_encode(e->enc, &f->img, f->pts, idr, &pkt);
    if (r < 0 || !pkt.data || pkt.size == 0) {
        f->status = HXFR_STATUS_ENCODE_FAILED;
        snprintf(f->errmsg, sizeof(f->errmsg), "encoder %s failed: %s", e->enc->codec_name,
                 r < 0 ? hxfr_strerror(r) : "no output");
        /* The encoder's state is unknown now: the next frame reopens it. */
        hxfr__encoding_finish(e);
        goto out;
    }
    f->out = hxfr__frame_response_build(f->session_id, f->pts, pkt.dts, pkt.keyframe, pkt.data,
                                        pkt.size);
    if (!f->out) {
        f->status = errno == ENOMEM ? HXFR_STATUS_INTERNAL : HXFR_STATUS_ENCODE_FAILED;
        snprintf(f->errmsg, sizeof(f->errmsg), "cannot package access unit: %s", strerror(errno));
        goto out;
    }
    f->keyframe = pkt.keyframe;
    f->au_bytes = pkt.size;
    f->converted_pixels = pkt.converted_pixels;
    f->bounced_bytes = pkt.bounced_bytes;
    if (f->keep_op == HXFR__KEEP_SAVE) {
        hxfr__keep_save(f);
    }

out:
    f->encode_ns = hxfr__now_ns() - t0;
}
