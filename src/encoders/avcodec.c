/* The libavcodec backend family: any FFmpeg H.264 encoder by name
 * (libx264, libopenh264, h264_vaapi, h264_nvenc, h264_qsv,
 * h264_videotoolbox, h264_v4l2m2m, ...), always configured for low delay:
 * no B-frames, AV_CODEC_FLAG_LOW_DELAY, Annex B output (no global header)
 * with SPS and PPS in-band on every keyframe, one access unit out per
 * frame in.
 *
 * Any size from 1x1 to 8192x8192. H.264 4:2:0 can only describe even
 * sizes (its frame cropping counts in 2x2 chroma units), so an odd width
 * or height is encoded in 4:4:4 (High 4:4:4 Predictive, cropped by the
 * encoder to the exact size in the SPS) by encoders that take 4:4:4 input
 * (libx264); others get the picture padded to even (edges repeated) and
 * decode one column or row larger. docs/encoders.md has the rule.
 *
 * Only libx264 (and libopenh264 where FFmpeg has it) can run on the
 * development machine; the hardware paths (device and frames contexts,
 * upload, asynchronous completion) follow FFmpeg's documented API but are
 * untested here.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libavcodec/avcodec.h>
#include <libavutil/hwcontext.h>
#include <libavutil/opt.h>
#include <libavutil/pixdesc.h>

#include <hxfr/proto.h>

#include "annexb.h"
#include "encoder.h"
#include "hxfr-config.h"

/* Caller pts values of frames in flight, indexed by our frame counter. */
#define PTS_RING 16
/* An asynchronous hardware encoder gets this long to finish a frame
 * before we drain it. */
#define ASYNC_WAIT_MS 200
/* x264's constant-quality factor (see x264_options). */
#define HXFR_X264_CRF "23"

struct av_encoder {
    struct hxfr_encoder base; /* first: the registry hands out &base */
    const AVCodec *codec;
    AVCodecContext *ctx;
    AVFrame *frame;    /* system-memory input picture, reused */
    AVFrame *hw_frame; /* hardware surface for hw-frames encoders */
    AVBufferRef *hw_device;
    AVBufferRef *hw_frames;
    enum AVPixelFormat sw_format;
    enum AVPixelFormat hw_format; /* AV_PIX_FMT_NONE: no hardware frames */
    uint32_t in_format;           /* HXFR_FORMAT_I420, HXFR_FORMAT_NV12 or HXFR__FORMAT_I444 */
    /* The size the encoder codes: the configured size, rounded up to even
     * for 4:2:0 input (which cannot hold an odd size). */
    uint32_t coded_width;
    uint32_t coded_height;
    AVPacket *pkt; /* the last packet, valid until the next call */
    uint8_t *out;  /* keyframe with SPS/PPS prepended, if needed */
    size_t out_cap;
    uint8_t *params; /* last SPS + PPS seen, Annex B */
    size_t params_size;
    int64_t next_pts;
    int64_t pts_ring[PTS_RING];
    bool force_next_idr;
    char preset[16];
    /* frame holds the converted previous image: a damaged image needs
     * only its damage converted (struct hxfr_image has_damage). */
    bool have_picture;
    /* Two rows for the scattered sources' bounce (convert.c). */
    uint8_t *bounce;
    size_t bounce_len;
};

/* libx264 is offered only in builds with x264 (meson -Dx264,
 * HXFR_HAVE_X264): without it the name is refused like an encoder this
 * FFmpeg lacks, and none of the x264 settings below are compiled. */
static const AVCodec *find_h264_encoder(const char *name)
{
    const AVCodec *c = name ? avcodec_find_encoder_by_name(name) : NULL;
    if (c && !HXFR_HAVE_X264 && strcmp(c->name, "libx264") == 0) {
        return NULL;
    }
    return c && c->id == AV_CODEC_ID_H264 && av_codec_is_encoder(c) ? c : NULL;
}

static bool av_probe(const char *codec)
{
    return find_h264_encoder(codec) != NULL;
}

/* Sets a private option if the encoder has it; a missing option is not
 * an error (option sets differ between FFmpeg versions and encoders). */
static int opt(struct av_encoder *e, const char *key, const char *value)
{
    int r = av_opt_set(e->ctx->priv_data, key, value, 0);
    return r == AVERROR_OPTION_NOT_FOUND ? 0 : r;
}

#if HXFR_HAVE_X264
static const char *const x264_presets[] = {
    "ultrafast", "superfast", "veryfast", "faster",   "fast",
    "medium",    "slow",      "slower",   "veryslow", "placebo",
};

static bool is_x264(const struct av_encoder *e)
{
    return strcmp(e->codec->name, "libx264") == 0;
}

static bool x264_preset_known(const char *preset)
{
    for (size_t i = 0; preset && i < sizeof(x264_presets) / sizeof(x264_presets[0]); i++) {
        if (strcmp(preset, x264_presets[i]) == 0) {
            return true;
        }
    }
    return false;
}

static int x264_options(struct av_encoder *e, const char *pname)
{
    const struct hxfr_encoder_config *cfg = &e->base.config;
    AVCodecContext *c = e->ctx;
    /* zerolatency: no lookahead, no frame threads (sliced threads
     * instead), no B-frames: each frame comes out of the call that sent
     * it. forced-idr makes a requested keyframe an IDR (not just an
     * I-frame) so a new viewer can start there; repeat-headers puts
     * SPS/PPS in front of every IDR. */
    int r = opt(e, "preset", cfg->preset);
    r = r < 0 ? r : opt(e, "tune", "zerolatency");
    r = r < 0 ? r : opt(e, "forced-idr", "1");
    r = r < 0 ? r : opt(e, "x264-params", "repeat-headers=1");
    if (r >= 0) {
        /* Quality-driven with the bitrate as a ceiling: constant quality
         * (CRF) under a VBV cap. Plain ABR starts every stream with blurry
         * text (36 dB at 720p against 48 dB for CRF 23 at a lower average
         * rate, docs/encoders.md), and a still screen costs almost nothing
         * either way. */
        c->bit_rate = 0;
        c->rc_max_rate = cfg->bitrate;
        uint64_t buf = cfg->realtime ? cfg->bitrate : 2ull * cfg->bitrate;
        c->rc_buffer_size = (int)(buf > INT32_MAX ? INT32_MAX : buf);
        r = opt(e, "crf", HXFR_X264_CRF);
    }
    if (r >= 0 && pname) {
        r = opt(e, "profile", pname);
    }
    return r;
}
#endif

/* Low-latency settings of the hardware families; each encoder ignores the
 * ones it does not have. */
static void low_latency_options(struct av_encoder *e, const char *pname)
{
    if (pname) {
        opt(e, "profile", pname);
    }
    opt(e, "forced-idr", "1");   /* nvenc */
    opt(e, "forced_idr", "1");   /* qsv */
    opt(e, "zerolatency", "1");  /* nvenc */
    opt(e, "delay", "0");        /* nvenc: no output queue */
    opt(e, "rc-lookahead", "0"); /* nvenc */
    opt(e, "tune", "ull");       /* nvenc: ultra low latency */
    opt(e, "realtime", "1");     /* videotoolbox */
    opt(e, "async_depth", "1");  /* vaapi, qsv */
}

/* The encoder's own options: x264's, or the low-latency set. */
static int encoder_options(struct av_encoder *e, const char *pname)
{
#if HXFR_HAVE_X264
    if (is_x264(e)) {
        return x264_options(e, pname);
    }
#endif
    low_latency_options(e, pname);
    return 0;
}

static bool lists_format(const AVCodec *codec, enum AVPixelFormat fmt)
{
    for (const enum AVPixelFormat *f = codec->pix_fmts; f && *f != AV_PIX_FMT_NONE; f++) {
        if (*f == fmt) {
            return true;
        }
    }
    return false;
}

/* Picks the input layout: for an odd width or height YUV444P if the
 * encoder lists it (4:4:4 can be cropped to any size); otherwise a
 * system-memory NV12/YUV420P the encoder lists, in its order of
 * preference, or a hardware-frames format with NV12 uploads (h264_vaapi
 * needs AV_PIX_FMT_VAAPI surfaces), at a coded size rounded up to even. */
static int choose_formats(struct av_encoder *e)
{
    const struct hxfr_encoder_config *cfg = &e->base.config;
    e->hw_format = AV_PIX_FMT_NONE;
    e->sw_format = AV_PIX_FMT_NONE;
    bool odd = ((cfg->width | cfg->height) & 1u) != 0;
    if (odd && lists_format(e->codec, AV_PIX_FMT_YUV444P)) {
        e->sw_format = AV_PIX_FMT_YUV444P;
        e->in_format = HXFR__FORMAT_I444;
        e->coded_width = cfg->width;
        e->coded_height = cfg->height;
        return 0;
    }
    e->coded_width = (cfg->width + 1u) & ~1u;
    e->coded_height = (cfg->height + 1u) & ~1u;
    const enum AVPixelFormat *f = e->codec->pix_fmts;
    for (size_t i = 0; f && f[i] != AV_PIX_FMT_NONE; i++) {
        if (f[i] == AV_PIX_FMT_YUV420P || f[i] == AV_PIX_FMT_NV12) {
            e->sw_format = f[i];
            break;
        }
    }
    if (e->sw_format == AV_PIX_FMT_NONE) {
        for (int i = 0;; i++) {
            const AVCodecHWConfig *hc = avcodec_get_hw_config(e->codec, i);
            if (!hc) {
                break;
            }
            if (hc->methods & AV_CODEC_HW_CONFIG_METHOD_HW_FRAMES_CTX) {
                e->hw_format = hc->pix_fmt;
                e->sw_format = AV_PIX_FMT_NV12;
                break;
            }
        }
    }
    if (e->sw_format == AV_PIX_FMT_NONE && !f) {
        /* An encoder that does not list formats: YUV420P is the norm. */
        e->sw_format = AV_PIX_FMT_YUV420P;
    }
    if (e->sw_format == AV_PIX_FMT_NONE) {
        return -EINVAL;
    }
    e->in_format = e->sw_format == AV_PIX_FMT_NV12 ? HXFR_FORMAT_NV12 : HXFR_FORMAT_I420;
    return 0;
}

static int setup_hw(struct av_encoder *e)
{
    enum AVHWDeviceType type = AV_HWDEVICE_TYPE_NONE;
    for (int i = 0;; i++) {
        const AVCodecHWConfig *hc = avcodec_get_hw_config(e->codec, i);
        if (!hc) {
            break;
        }
        if (hc->pix_fmt == e->hw_format) {
            type = hc->device_type;
            break;
        }
    }
    if (type == AV_HWDEVICE_TYPE_NONE) {
        return -EINVAL;
    }
    if (av_hwdevice_ctx_create(&e->hw_device, type, NULL, NULL, 0) < 0) {
        return -EIO;
    }
    e->hw_frames = av_hwframe_ctx_alloc(e->hw_device);
    if (!e->hw_frames) {
        return -ENOMEM;
    }
    AVHWFramesContext *fc = (AVHWFramesContext *)e->hw_frames->data;
    fc->format = e->hw_format;
    fc->sw_format = e->sw_format;
    fc->width = (int)e->coded_width;
    fc->height = (int)e->coded_height;
    /* A small pool: surfaces return to it as soon as the encoder is done,
     * and we keep at most one frame in flight. */
    fc->initial_pool_size = 8;
    if (av_hwframe_ctx_init(e->hw_frames) < 0) {
        return -EIO;
    }
    e->hw_frame = av_frame_alloc();
    return e->hw_frame ? 0 : -ENOMEM;
}

static int profile_value(uint8_t profile, const char **name)
{
    switch (profile) {
    case 66:
        *name = "baseline";
        return FF_PROFILE_H264_CONSTRAINED_BASELINE;
    case 77:
        *name = "main";
        return FF_PROFILE_H264_MAIN;
    case 100:
        *name = "high";
        return FF_PROFILE_H264_HIGH;
    default:
        *name = NULL;
        return FF_PROFILE_UNKNOWN;
    }
}

/* Allocates and opens the codec context for e->base.config. Used at
 * create and again if an encoder that cannot be flushed had to be
 * drained. */
static int open_context(struct av_encoder *e)
{
    const struct hxfr_encoder_config *cfg = &e->base.config;
    avcodec_free_context(&e->ctx);
    e->ctx = avcodec_alloc_context3(e->codec);
    if (!e->ctx) {
        return -ENOMEM;
    }
    AVCodecContext *c = e->ctx;
    /* Quiet unless the application routed FFmpeg's log (avlog.c). */
    c->log_level_offset = hxfr__encoder_log_offset();
    c->width = (int)e->coded_width;
    c->height = (int)e->coded_height;
    c->pix_fmt = e->hw_format != AV_PIX_FMT_NONE ? e->hw_format : e->sw_format;
    c->time_base = (AVRational){(int)cfg->framerate_den, (int)cfg->framerate_num};
    c->framerate = (AVRational){(int)cfg->framerate_num, (int)cfg->framerate_den};
    c->bit_rate = cfg->bitrate;
    if (cfg->realtime) {
        /* Streaming: cap the rate with a one-second buffer so a burst of
         * change cannot queue seconds of data in front of the viewer. */
        c->rc_max_rate = cfg->bitrate;
        c->rc_buffer_size = (int)(cfg->bitrate > INT32_MAX ? INT32_MAX : cfg->bitrate);
    }
    c->gop_size = (int)(cfg->gop > INT32_MAX ? INT32_MAX : cfg->gop);
    c->max_b_frames = 0;
    c->flags |= AV_CODEC_FLAG_LOW_DELAY;
    /* No AV_CODEC_FLAG_GLOBAL_HEADER: parameter sets stay in the stream
     * (Annex B), which is what every hxfr consumer parses. */
    c->color_range = AVCOL_RANGE_MPEG;
    c->colorspace = AVCOL_SPC_SMPTE170M;
    c->color_primaries = AVCOL_PRI_SMPTE170M;
    c->color_trc = AVCOL_TRC_SMPTE170M;
    const char *pname = NULL;
    /* 4:4:4 input is High 4:4:4 Predictive whatever profile was asked
     * for (x264 refuses 4:4:4 under the others): the encoder picks it. */
    c->profile = e->in_format == HXFR__FORMAT_I444 ? FF_PROFILE_UNKNOWN
                                                   : profile_value(cfg->profile, &pname);
    c->level = cfg->level ? cfg->level : FF_LEVEL_UNKNOWN;
    /* threads: 0 lets libavcodec/x264 pick (one per core). Trap measured
     * on this project's machines (docs/encoders.md, ENVIRONMENT.md): x264's
     * worker threads inherit the CPU affinity of the thread that opens the
     * encoder, so a caller pinned to one core gets a "2-thread" encoder
     * that silently runs on that one core. Open encoders from an unpinned
     * thread (hxfrd's workers are unpinned). */
    c->thread_count = cfg->threads;
    if (e->hw_frames) {
        c->hw_frames_ctx = av_buffer_ref(e->hw_frames);
        if (!c->hw_frames_ctx) {
            return -ENOMEM;
        }
    }

    if (encoder_options(e, pname) < 0) {
        return -EINVAL;
    }
    if (avcodec_open2(c, e->codec, NULL) < 0) {
        return -EIO;
    }
    return 0;
}

static void av_destroy(struct hxfr_encoder *base)
{
    struct av_encoder *e = (struct av_encoder *)base;
    if (!e) {
        return;
    }
    avcodec_free_context(&e->ctx);
    av_frame_free(&e->frame);
    av_frame_free(&e->hw_frame);
    av_buffer_unref(&e->hw_frames);
    av_buffer_unref(&e->hw_device);
    av_packet_free(&e->pkt);
    free(e->out);
    free(e->params);
    free(e->bounce);
    free(e);
}

static struct hxfr_encoder *av_create(const struct hxfr_encoder_config *cfg)
{
    int err = EINVAL;
    struct av_encoder *e = NULL;
    const AVCodec *codec = find_h264_encoder(cfg ? cfg->codec : NULL);
    if (!codec) {
        err = ENOENT;
        goto fail;
    }
    if (cfg->width == 0 || cfg->height == 0 || cfg->width > HXFR_MAX_DIM_HARD ||
        cfg->height > HXFR_MAX_DIM_HARD || cfg->framerate_num == 0 ||
        cfg->framerate_num > INT32_MAX || cfg->framerate_den == 0 ||
        cfg->framerate_den > INT32_MAX || cfg->threads < 0 ||
        (cfg->profile != 0 && cfg->profile != 66 && cfg->profile != 77 && cfg->profile != 100) ||
        strlen(codec->name) >= sizeof(e->base.codec_name)) {
        goto fail;
    }
    e = calloc(1, sizeof(*e));
    if (!e) {
        err = ENOMEM;
        goto fail;
    }
    e->base.ops = &hxfr__avcodec_ops;
    e->base.config = *cfg;
    e->codec = codec;
    snprintf(e->base.codec_name, sizeof(e->base.codec_name), "%s", codec->name);
    /* The effective config must not borrow the caller's strings. */
    e->base.config.codec = e->base.codec_name;
    if (cfg->preset) {
        if (strlen(cfg->preset) >= sizeof(e->preset)) {
            goto fail;
        }
        snprintf(e->preset, sizeof(e->preset), "%s", cfg->preset);
        e->base.config.preset = e->preset;
    }

#if HXFR_HAVE_X264
    if (is_x264(e) && !x264_preset_known(cfg->preset)) {
        goto fail;
    }
#endif
    if (choose_formats(e) < 0) {
        goto fail;
    }
    if (e->in_format == HXFR__FORMAT_I444) {
        e->base.config.profile = HXFR__PROFILE_HIGH444;
    }
    int r = 0;
    if (e->hw_format != AV_PIX_FMT_NONE) {
        r = setup_hw(e);
    }
    if (r == 0) {
        r = open_context(e);
    }
    if (r < 0) {
        err = -r;
        goto fail;
    }
    e->frame = av_frame_alloc();
    e->pkt = av_packet_alloc();
    if (!e->frame || !e->pkt) {
        err = ENOMEM;
        goto fail;
    }
    /* The one input picture, converted into on every call. */
    e->frame->format = e->sw_format;
    e->frame->width = (int)e->coded_width;
    e->frame->height = (int)e->coded_height;
    if (av_frame_get_buffer(e->frame, 0) < 0) {
        err = ENOMEM;
        goto fail;
    }
    e->bounce_len = (size_t)cfg->width * 4 * 2;
    e->bounce = malloc(e->bounce_len);
    if (!e->bounce) {
        err = ENOMEM;
        goto fail;
    }
    return &e->base;

fail:
    av_destroy(e ? &e->base : NULL);
    errno = err;
    return NULL;
}

/* Remembers the run of SPS/PPS at the start of an Annex B buffer (a
 * keyframe or extradata) if it holds both; reports whether they precede
 * the buffer's IDR slice. */
static int scan_keyframe(struct av_encoder *e, const uint8_t *d, size_t n, bool *has_params)
{
    struct hxfr__annexb_info info;
    hxfr__annexb_scan(d, n, &info);
    *has_params = info.params_before_idr;
    if (info.sps && info.pps && info.ps_end > info.ps_start) {
        size_t len = info.ps_end - info.ps_start;
        uint8_t *p = realloc(e->params, len);
        if (!p) {
            return -ENOMEM;
        }
        memcpy(p, d + info.ps_start, len);
        e->params = p;
        e->params_size = len;
    }
    return 0;
}

/* Fills out from e->pkt; prepends the last SPS/PPS to a keyframe that
 * lacks them (some hardware encoders emit them only once). */
static int finish_packet(struct av_encoder *e, struct hxfr_packet *out)
{
    AVPacket *p = e->pkt;
    int64_t i = p->pts;
    out->pts = i != AV_NOPTS_VALUE && i >= 0 && i < e->next_pts && e->next_pts - i <= PTS_RING
                   ? e->pts_ring[i % PTS_RING]
                   : e->pts_ring[(e->next_pts - 1) % PTS_RING];
    int64_t d = p->dts;
    out->dts = d != AV_NOPTS_VALUE && d >= 0 && d < e->next_pts && e->next_pts - d <= PTS_RING
                   ? e->pts_ring[d % PTS_RING]
                   : out->pts;
    out->keyframe = (p->flags & AV_PKT_FLAG_KEY) != 0;
    out->data = p->data;
    out->size = (size_t)p->size;
    if (!out->keyframe) {
        return 0;
    }
    bool has_params;
    int r = scan_keyframe(e, p->data, (size_t)p->size, &has_params);
    if (r < 0 || has_params) {
        return r;
    }
    if (e->params_size == 0 && e->ctx->extradata_size > 0) {
        /* Parameter sets only in extradata (Annex B there, since no global
         * header was asked for): take them from there. */
        r = scan_keyframe(e, e->ctx->extradata, (size_t)e->ctx->extradata_size, &has_params);
        if (r < 0) {
            return r;
        }
    }
    if (e->params_size == 0) {
        return -EIO;
    }
    size_t need = e->params_size + (size_t)p->size;
    if (e->out_cap < need) {
        uint8_t *o = realloc(e->out, need);
        if (!o) {
            return -ENOMEM;
        }
        e->out = o;
        e->out_cap = need;
    }
    memcpy(e->out, e->params, e->params_size);
    memcpy(e->out + e->params_size, p->data, (size_t)p->size);
    out->data = e->out;
    out->size = need;
    return 0;
}

/* The encoder kept the frame: end the stream to get it out, then make the
 * encoder usable again (flush if it supports that, else reopen). The next
 * frame is forced to an IDR since the reference chain restarts. */
static int drain(struct av_encoder *e)
{
    if (avcodec_send_frame(e->ctx, NULL) < 0) {
        return -EIO;
    }
    int r = avcodec_receive_packet(e->ctx, e->pkt);
    if (r < 0) {
        return -EIO;
    }
    /* Anything after it would be a second access unit for one frame:
     * cannot happen with one frame in flight, but never leave it queued. */
    AVPacket *extra = av_packet_alloc();
    while (extra && avcodec_receive_packet(e->ctx, extra) == 0) {
        av_packet_unref(extra);
    }
    av_packet_free(&extra);
    e->force_next_idr = true;
    if (e->codec->capabilities & AV_CODEC_CAP_ENCODER_FLUSH) {
        avcodec_flush_buffers(e->ctx);
        return 0;
    }
    /* open_context frees the old context; the packet we hold is
     * refcounted and survives that. */
    return open_context(e);
}

/* 4:2:0 at an odd size: the conversion filled the picture's top-left
 * width x height luma (and the chroma, which already covers the coded
 * size); repeat the edge into the extra column and row. */
static void pad_picture(struct av_encoder *e)
{
    AVFrame *f = e->frame;
    hxfr__pad_plane(f->data[0], f->linesize[0], (int)e->base.config.width,
                    (int)e->base.config.height, (int)e->coded_width, (int)e->coded_height);
}

/* The image into e->frame: only its damage when the frame still holds the
 * image before it, all of it otherwise. */
static int convert(struct av_encoder *e, const struct hxfr_image *img, struct hxfr_packet *out)
{
    struct hxfr__convert_stats st = {0};
    int r = 0;
    if (img->has_damage && e->have_picture) {
        for (uint32_t i = 0; i < img->n_damage && i < HXFR_IMAGE_MAX_DAMAGE && r == 0; i++) {
            r = hxfr__convert_image(img, &img->damage[i], e->in_format, e->frame->data,
                                    e->frame->linesize, e->bounce, e->bounce_len, &st);
        }
    } else {
        r = hxfr__convert_image(img, NULL, e->in_format, e->frame->data, e->frame->linesize,
                                e->bounce, e->bounce_len, &st);
    }
    /* A failed conversion may have left the picture half written. */
    e->have_picture = r == 0;
    out->converted_pixels = st.pixels;
    out->bounced_bytes = st.bounced_bytes;
    return r;
}

static int av_encode(struct hxfr_encoder *base, const struct hxfr_image *img, int64_t pts,
                     bool force_idr, struct hxfr_packet *out)
{
    struct av_encoder *e = (struct av_encoder *)base;
    if (e && !e->ctx) {
        return -EIO; /* a failed reopen after a drain left no encoder */
    }
    if (!e || !img || !out || img->width != e->base.config.width ||
        img->height != e->base.config.height) {
        return -EINVAL;
    }
    av_packet_unref(e->pkt);
    /* Usually a no-op: the encoder has released the previous picture. */
    if (av_frame_make_writable(e->frame) < 0) {
        return -ENOMEM;
    }
    int r = convert(e, img, out);
    if (r == 0 && (e->coded_width != img->width || e->coded_height != img->height)) {
        pad_picture(e);
    }
    if (img->consumed) {
        /* The encoder works on its own picture from here on. */
        img->consumed(img->consumed_opaque);
    }
    if (r < 0) {
        return r;
    }
    e->frame->pts = e->next_pts;
    e->pts_ring[e->next_pts % PTS_RING] = pts;
    e->next_pts++;
    e->frame->pict_type = force_idr || e->force_next_idr ? AV_PICTURE_TYPE_I : AV_PICTURE_TYPE_NONE;
    e->force_next_idr = false;

    AVFrame *send = e->frame;
    if (e->hw_frames) {
        av_frame_unref(e->hw_frame);
        if (av_hwframe_get_buffer(e->hw_frames, e->hw_frame, 0) < 0 ||
            av_hwframe_transfer_data(e->hw_frame, e->frame, 0) < 0 ||
            av_frame_copy_props(e->hw_frame, e->frame) < 0) {
            return -EIO;
        }
        send = e->hw_frame;
    }
    r = avcodec_send_frame(e->ctx, send);
    if (e->hw_frames) {
        av_frame_unref(e->hw_frame);
    }
    if (r < 0) {
        return -EIO;
    }
    r = avcodec_receive_packet(e->ctx, e->pkt);
    if (r == AVERROR(EAGAIN) && (e->codec->capabilities & AV_CODEC_CAP_HARDWARE)) {
        /* Asynchronous hardware (videotoolbox, v4l2m2m) completes the
         * frame a little later: wait for it in 1 ms sleeps, bounded. */
        for (int i = 0; i < ASYNC_WAIT_MS && r == AVERROR(EAGAIN); i++) {
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, NULL);
            r = avcodec_receive_packet(e->ctx, e->pkt);
        }
    }
    if (r == AVERROR(EAGAIN)) {
        r = drain(e);
    }
    if (r < 0) {
        return -EIO;
    }
    r = finish_packet(e, out);
    return r == -ENOMEM ? r : r < 0 ? -EIO : 0;
}

const struct hxfr_encoder_ops hxfr__avcodec_ops = {
    .version = HXFR_ENCODER_OPS_VERSION,
    .name = "avcodec",
    .create = av_create,
    .destroy = av_destroy,
    .encode = av_encode,
    .probe = av_probe,
};
