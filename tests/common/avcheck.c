/* avcheck: decode H.264 Annex B and measure it (see avcheck.h). */
#include "avcheck.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavutil/frame.h>
#include <libyuv.h>

#include <hxfr/proto.h>

#include "pattern.h"

struct hxfr_avcheck {
    AVCodecContext *ctx;
    AVCodecParserContext *parser;
    AVPacket *pkt;
    AVFrame *frame;
    uint8_t *buf; /* padded copy of one access unit */
    size_t buf_cap;
    unsigned keep;
    struct hxfr_avcheck_frame *ring; /* keep slots; slot = number % keep */
    size_t *ring_cap;                /* bytes allocated in each slot */
    uint64_t count;
    uint64_t idr_aus;
    uint64_t idr_missing;
    bool finished;
};

/* Lists the NAL unit types of an Annex B buffer (up to max into types)
 * and returns the count. Start codes are 00 00 01, optionally with a
 * leading zero byte (which then ends the previous unit). */
static int scan_nals(const uint8_t *d, size_t n, uint8_t *types, int max)
{
    int count = 0;
    size_t i = 0;
    while (i + 3 <= n) {
        if (d[i] == 0 && d[i + 1] == 0 && d[i + 2] == 1) {
            i += 3;
            if (i < n) {
                if (count < max && types) {
                    types[count] = d[i] & 0x1f;
                }
                count++;
            }
            continue;
        }
        i++;
    }
    return count;
}

int hxfr_avcheck_nal_types(const uint8_t *data, size_t size, uint8_t *types, int max)
{
    if (!data) {
        return 0;
    }
    return scan_nals(data, size, types, max);
}

/* 1: IDR with SPS and PPS before it; 0: IDR without them; -1: no IDR. */
static int idr_params(const uint8_t *data, size_t size)
{
    bool sps = false, pps = false;
    size_t i = 0;
    while (data && i + 3 <= size) {
        if (data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1) {
            i += 3;
            if (i >= size) {
                break;
            }
            switch (data[i] & 0x1f) {
            case 7:
                sps = true;
                break;
            case 8:
                pps = true;
                break;
            case 5:
                return sps && pps ? 1 : 0;
            default:
                break;
            }
            continue;
        }
        i++;
    }
    return -1;
}

bool hxfr_avcheck_au_idr_with_params(const uint8_t *data, size_t size)
{
    return idr_params(data, size) == 1;
}

struct hxfr_avcheck *hxfr_avcheck_new(unsigned keep)
{
    const AVCodec *codec = avcodec_find_decoder(AV_CODEC_ID_H264);
    if (!codec) {
        errno = ENOENT;
        return NULL;
    }
    struct hxfr_avcheck *c = calloc(1, sizeof(*c));
    if (!c) {
        errno = ENOMEM;
        return NULL;
    }
    c->keep = keep;
    if (keep > 0) {
        c->ring = calloc(keep, sizeof(*c->ring));
        c->ring_cap = calloc(keep, sizeof(*c->ring_cap));
        if (!c->ring || !c->ring_cap) {
            goto fail_nomem;
        }
    }
    c->ctx = avcodec_alloc_context3(codec);
    c->parser = av_parser_init(AV_CODEC_ID_H264);
    c->pkt = av_packet_alloc();
    c->frame = av_frame_alloc();
    if (!c->ctx || !c->parser || !c->pkt || !c->frame) {
        goto fail_nomem;
    }
    /* One thread and low delay: each access unit comes out as a frame
     * immediately, so callers can check frame i right after AU i. */
    c->ctx->thread_count = 1;
    c->ctx->flags |= AV_CODEC_FLAG_LOW_DELAY;
    if (avcodec_open2(c->ctx, codec, NULL) < 0) {
        hxfr_avcheck_destroy(c);
        errno = EIO;
        return NULL;
    }
    return c;

fail_nomem:
    hxfr_avcheck_destroy(c);
    errno = ENOMEM;
    return NULL;
}

void hxfr_avcheck_destroy(struct hxfr_avcheck *c)
{
    if (!c) {
        return;
    }
    for (unsigned i = 0; c->ring && i < c->keep; i++) {
        free(c->ring[i].planes[0]);
    }
    free(c->ring);
    free(c->ring_cap);
    free(c->buf);
    av_frame_free(&c->frame);
    av_packet_free(&c->pkt);
    if (c->parser) {
        av_parser_close(c->parser);
    }
    avcodec_free_context(&c->ctx);
    free(c);
}

/* Copies the decoder's current frame into the ring. */
static int keep_frame(struct hxfr_avcheck *c, const AVFrame *f)
{
    bool yuv444 = f->format == AV_PIX_FMT_YUV444P || f->format == AV_PIX_FMT_YUVJ444P;
    if (f->format != AV_PIX_FMT_YUV420P && f->format != AV_PIX_FMT_YUVJ420P && !yuv444) {
        return -ENOTSUP;
    }
    uint64_t number = c->count++;
    if (c->keep == 0) {
        return 0;
    }
    struct hxfr_avcheck_frame *k = &c->ring[number % c->keep];
    uint32_t w = (uint32_t)f->width, h = (uint32_t)f->height;
    uint32_t cw = (w + 1) / 2, ch = (h + 1) / 2;
    size_t need = (size_t)w * h + 2 * (size_t)cw * ch;
    size_t *cap = &c->ring_cap[number % c->keep];
    if (*cap < need) {
        uint8_t *p = realloc(k->planes[0], need);
        if (!p) {
            return -ENOMEM;
        }
        k->planes[0] = p;
        *cap = need;
    }
    k->width = w;
    k->height = h;
    k->strides[0] = w;
    k->strides[1] = cw;
    k->strides[2] = cw;
    k->planes[1] = k->planes[0] + (size_t)w * h;
    k->planes[2] = k->planes[1] + (size_t)cw * ch;
    k->keyframe = f->key_frame != 0;
    k->yuv444 = yuv444;
    k->number = number;
    /* Kept as I420 either way (4:4:4 streams, odd sizes, averaged down). */
    if (yuv444) {
        I444ToI420(f->data[0], f->linesize[0], f->data[1], f->linesize[1], f->data[2],
                   f->linesize[2], k->planes[0], (int)k->strides[0], k->planes[1],
                   (int)k->strides[1], k->planes[2], (int)k->strides[2], (int)w, (int)h);
    } else {
        I420Copy(f->data[0], f->linesize[0], f->data[1], f->linesize[1], f->data[2], f->linesize[2],
                 k->planes[0], (int)k->strides[0], k->planes[1], (int)k->strides[1], k->planes[2],
                 (int)k->strides[2], (int)w, (int)h);
    }
    return 0;
}

static int receive_all(struct hxfr_avcheck *c)
{
    int got = 0;
    for (;;) {
        int r = avcodec_receive_frame(c->ctx, c->frame);
        if (r == AVERROR(EAGAIN) || r == AVERROR_EOF) {
            return got;
        }
        if (r < 0) {
            return -EINVAL;
        }
        r = keep_frame(c, c->frame);
        av_frame_unref(c->frame);
        if (r < 0) {
            return r;
        }
        got++;
    }
}

/* Sends one access unit (data may be NULL to drain) and collects frames. */
static int decode_packet(struct hxfr_avcheck *c, const uint8_t *data, size_t size)
{
    if (data) {
        int p = idr_params(data, size);
        if (p >= 0) {
            c->idr_aus++;
            if (p == 0) {
                c->idr_missing++;
            }
        }
        if (size > INT32_MAX - AV_INPUT_BUFFER_PADDING_SIZE) {
            return -EINVAL;
        }
        /* The decoder reads a little past the end: give it a padded copy. */
        if (c->buf_cap < size + AV_INPUT_BUFFER_PADDING_SIZE) {
            uint8_t *b = realloc(c->buf, size + AV_INPUT_BUFFER_PADDING_SIZE);
            if (!b) {
                return -ENOMEM;
            }
            c->buf = b;
            c->buf_cap = size + AV_INPUT_BUFFER_PADDING_SIZE;
        }
        memcpy(c->buf, data, size);
        memset(c->buf + size, 0, AV_INPUT_BUFFER_PADDING_SIZE);
        c->pkt->data = c->buf;
        c->pkt->size = (int)size;
    }
    int got = 0;
    for (;;) {
        int r = avcodec_send_packet(c->ctx, data ? c->pkt : NULL);
        if (r == AVERROR(EAGAIN)) {
            /* Output is full: take frames out, then send again. */
            int n = receive_all(c);
            if (n < 0) {
                return n;
            }
            if (n == 0) {
                return -EIO;
            }
            got += n;
            continue;
        }
        if (r < 0 && r != AVERROR_EOF) {
            return -EINVAL;
        }
        break;
    }
    int n = receive_all(c);
    return n < 0 ? n : got + n;
}

int hxfr_avcheck_decode_au(struct hxfr_avcheck *c, const uint8_t *data, size_t size)
{
    if (!c || !data || size == 0 || c->finished) {
        return -EINVAL;
    }
    return decode_packet(c, data, size);
}

int hxfr_avcheck_feed(struct hxfr_avcheck *c, const uint8_t *data, size_t size)
{
    if (!c || (!data && size) || c->finished) {
        return -EINVAL;
    }
    int got = 0;
    while (size > 0) {
        uint8_t *out = NULL;
        int out_size = 0;
        int chunk = size > INT32_MAX ? INT32_MAX : (int)size;
        int used = av_parser_parse2(c->parser, c->ctx, &out, &out_size, data, chunk, AV_NOPTS_VALUE,
                                    AV_NOPTS_VALUE, 0);
        if (used < 0) {
            return -EINVAL;
        }
        data += used;
        size -= (size_t)used;
        if (out_size > 0) {
            int n = decode_packet(c, out, (size_t)out_size);
            if (n < 0) {
                return n;
            }
            got += n;
        }
    }
    return got;
}

int hxfr_avcheck_finish(struct hxfr_avcheck *c)
{
    if (!c) {
        return -EINVAL;
    }
    if (c->finished) {
        return 0;
    }
    int got = 0;
    uint8_t *out = NULL;
    int out_size = 0;
    av_parser_parse2(c->parser, c->ctx, &out, &out_size, NULL, 0, AV_NOPTS_VALUE, AV_NOPTS_VALUE,
                     0);
    if (out_size > 0) {
        int n = decode_packet(c, out, (size_t)out_size);
        if (n < 0) {
            return n;
        }
        got += n;
    }
    c->finished = true;
    int n = decode_packet(c, NULL, 0);
    return n < 0 ? n : got + n;
}

uint64_t hxfr_avcheck_frame_count(const struct hxfr_avcheck *c)
{
    return c ? c->count : 0;
}

const struct hxfr_avcheck_frame *hxfr_avcheck_frame(const struct hxfr_avcheck *c, uint64_t number)
{
    if (!c || c->keep == 0 || number >= c->count || c->count - number > c->keep) {
        return NULL;
    }
    return &c->ring[number % c->keep];
}

const struct hxfr_avcheck_frame *hxfr_avcheck_last(const struct hxfr_avcheck *c)
{
    return c && c->count > 0 ? hxfr_avcheck_frame(c, c->count - 1) : NULL;
}

uint64_t hxfr_avcheck_idr_count(const struct hxfr_avcheck *c)
{
    return c ? c->idr_aus : 0;
}

uint64_t hxfr_avcheck_idr_missing_params(const struct hxfr_avcheck *c)
{
    return c ? c->idr_missing : 0;
}

static uint64_t plane_sse(const uint8_t *a, uint32_t sa, const uint8_t *b, uint32_t sb, uint32_t w,
                          uint32_t h)
{
    uint64_t sse = 0;
    for (uint32_t y = 0; y < h; y++) {
        const uint8_t *pa = a + (size_t)y * sa, *pb = b + (size_t)y * sb;
        for (uint32_t x = 0; x < w; x++) {
            int d = (int)pa[x] - (int)pb[x];
            sse += (uint64_t)(d * d);
        }
    }
    return sse;
}

static double to_psnr(uint64_t sse, uint64_t n)
{
    if (sse == 0) {
        return 100.0;
    }
    double p = 10.0 * log10(255.0 * 255.0 * (double)n / (double)sse);
    return p > 100.0 ? 100.0 : p;
}

int hxfr_avcheck_psnr(const struct hxfr_avcheck_frame *f, uint32_t ref_format, uint32_t ref_width,
                      uint32_t ref_height, const uint8_t *const ref_planes[3],
                      const uint32_t ref_strides[3], double *psnr_y, double *psnr_all)
{
    if (!f || !ref_planes || !ref_strides || !ref_planes[0] || f->width != ref_width ||
        f->height != ref_height || ref_width == 0 || ref_height == 0 || ref_width > INT32_MAX / 4 ||
        ref_height > INT32_MAX / 4) {
        return -EINVAL;
    }
    uint32_t w = ref_width, h = ref_height, cw = (w + 1) / 2, ch = (h + 1) / 2;
    uint8_t *y = malloc((size_t)w * h + 2 * (size_t)cw * ch);
    if (!y) {
        return -ENOMEM;
    }
    uint8_t *u = y + (size_t)w * h, *v = u + (size_t)cw * ch;
    int iw = (int)w, ih = (int)h, icw = (int)cw;
    const uint8_t *const *p = ref_planes;
    const uint32_t *s = ref_strides;
    int r;
    switch (ref_format) {
    case HXFR_FORMAT_ARGB8888:
    case HXFR_FORMAT_XRGB8888:
        r = ARGBToI420(p[0], (int)s[0], y, iw, u, icw, v, icw, iw, ih);
        break;
    case HXFR_FORMAT_ABGR8888:
    case HXFR_FORMAT_XBGR8888:
        r = ABGRToI420(p[0], (int)s[0], y, iw, u, icw, v, icw, iw, ih);
        break;
    case HXFR_FORMAT_NV12:
        r = p[1] ? NV12ToI420(p[0], (int)s[0], p[1], (int)s[1], y, iw, u, icw, v, icw, iw, ih) : -1;
        break;
    case HXFR_FORMAT_I420:
        r = p[1] && p[2] ? I420Copy(p[0], (int)s[0], p[1], (int)s[1], p[2], (int)s[2], y, iw, u,
                                    icw, v, icw, iw, ih)
                         : -1;
        break;
    default:
        r = -1;
        break;
    }
    if (r != 0) {
        free(y);
        return -EINVAL;
    }
    uint64_t sse_y = plane_sse(f->planes[0], f->strides[0], y, w, w, h);
    uint64_t sse_u = plane_sse(f->planes[1], f->strides[1], u, cw, cw, ch);
    uint64_t sse_v = plane_sse(f->planes[2], f->strides[2], v, cw, cw, ch);
    free(y);
    if (psnr_y) {
        *psnr_y = to_psnr(sse_y, (uint64_t)w * h);
    }
    if (psnr_all) {
        *psnr_all = to_psnr(sse_y + sse_u + sse_v, (uint64_t)w * h + 2 * (uint64_t)cw * ch);
    }
    return 0;
}

int hxfr_avcheck_psnr_pattern(const struct hxfr_avcheck_frame *f, int variant, uint32_t format,
                              uint64_t index, double *psnr_y, double *psnr_all)
{
    if (!f || f->width == 0 || f->height == 0) {
        return -EINVAL;
    }
    uint32_t w = f->width, h = f->height;
    uint8_t *planes[3] = {NULL, NULL, NULL};
    uint32_t strides[3] = {0, 0, 0};
    size_t size;
    switch (format) {
    case HXFR_FORMAT_ARGB8888:
    case HXFR_FORMAT_XRGB8888:
    case HXFR_FORMAT_ABGR8888:
    case HXFR_FORMAT_XBGR8888:
        strides[0] = w * 4;
        size = (size_t)w * 4 * h;
        break;
    case HXFR_FORMAT_NV12:
        strides[0] = strides[1] = w;
        size = (size_t)w * h * 3 / 2;
        break;
    case HXFR_FORMAT_I420:
        strides[0] = w;
        strides[1] = strides[2] = w / 2;
        size = (size_t)w * h * 3 / 2;
        break;
    default:
        return -EINVAL;
    }
    uint8_t *buf = malloc(size);
    if (!buf) {
        return -ENOMEM;
    }
    planes[0] = buf;
    if (format == HXFR_FORMAT_NV12) {
        planes[1] = buf + (size_t)w * h;
    } else if (format == HXFR_FORMAT_I420) {
        planes[1] = buf + (size_t)w * h;
        planes[2] = planes[1] + (size_t)(w / 2) * (h / 2);
    }
    int r = hxfr_pattern_render((enum hxfr_pattern_variant)variant, format, w, h, index, planes,
                                strides);
    if (r == 0) {
        const uint8_t *const cp[3] = {planes[0], planes[1], planes[2]};
        r = hxfr_avcheck_psnr(f, format, w, h, cp, strides, psnr_y, psnr_all);
    }
    free(buf);
    return r;
}

static uint8_t clamp255(int v)
{
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

int hxfr_avcheck_pixel_rgb(const struct hxfr_avcheck_frame *f, uint32_t x, uint32_t y,
                           uint8_t rgb[3])
{
    if (!f || !rgb || x >= f->width || y >= f->height) {
        return -EINVAL;
    }
    int yy = f->planes[0][(size_t)y * f->strides[0] + x] - 16;
    int u = f->planes[1][(size_t)(y / 2) * f->strides[1] + x / 2] - 128;
    int v = f->planes[2][(size_t)(y / 2) * f->strides[2] + x / 2] - 128;
    rgb[0] = clamp255((298 * yy + 409 * v + 128) >> 8);
    rgb[1] = clamp255((298 * yy - 100 * u - 208 * v + 128) >> 8);
    rgb[2] = clamp255((298 * yy + 516 * u + 128) >> 8);
    return 0;
}
