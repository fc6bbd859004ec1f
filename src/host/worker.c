/* The encode worker pool and what a worker does with one frame.
 *
 * Jobs are frames. The loop hands a session at most one frame at a time
 * (session->running), so an encoder is only ever used by one worker and the
 * responses of a session come back in request order whatever the number of
 * workers. Finished frames go onto the done list and the eventfd wakes the
 * loop, which delivers them.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "host-private.h"
#include "scanout.h"

static void *worker_main(void *arg)
{
    struct hxfr__workers *w = arg;

    pthread_mutex_lock(&w->lock);
    for (;;) {
        while (!w->quit && !w->jobs_head) {
            pthread_cond_wait(&w->cond, &w->lock);
        }
        if (w->quit) {
            break;
        }
        struct hxfr__frame *f = w->jobs_head;
        w->jobs_head = f->next;
        if (!w->jobs_head) {
            w->jobs_tail = NULL;
        }
        f->next = NULL;
        pthread_mutex_unlock(&w->lock);

        hxfr__frame_encode(f);

        pthread_mutex_lock(&w->lock);
        if (w->done_tail) {
            w->done_tail->next = f;
        } else {
            w->done_head = f;
        }
        w->done_tail = f;
        uint64_t one = 1;
        /* An eventfd write only fails when the counter would overflow,
         * which cannot happen with at most one write per frame. */
        ssize_t n = write(w->efd, &one, sizeof(one));
        (void)n;
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

int hxfr__workers_init(struct hxfr__workers *w, unsigned n)
{
    int ret = 0;

    w->watch.kind = HXFR__WATCH_WORKERS;
    w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->efd < 0) {
        return -errno;
    }
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->cond, NULL);
    w->threads = calloc(n, sizeof(*w->threads));
    if (!w->threads) {
        ret = -ENOMEM;
        goto fail;
    }
    for (unsigned i = 0; i < n; i++) {
        int r = pthread_create(&w->threads[i], NULL, worker_main, w);
        if (r != 0) {
            ret = -r;
            goto fail;
        }
        w->nthreads++;
    }
    return 0;

fail:
    hxfr__workers_finish(w);
    return ret;
}

void hxfr__workers_finish(struct hxfr__workers *w)
{
    pthread_mutex_lock(&w->lock);
    w->quit = true;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
    for (unsigned i = 0; i < w->nthreads; i++) {
        pthread_join(w->threads[i], NULL);
    }
    free(w->threads);
    w->threads = NULL;
    w->nthreads = 0;
    /* Jobs never started stay on the list; the caller collects them with
     * hxfr__workers_take_done() after moving them over here. */
    if (w->jobs_head) {
        if (w->done_tail) {
            w->done_tail->next = w->jobs_head;
        } else {
            w->done_head = w->jobs_head;
        }
        w->done_tail = w->jobs_tail;
        for (struct hxfr__frame *f = w->jobs_head; f; f = f->next) {
            f->status = HXFR_STATUS_SHUTTING_DOWN;
            strcpy(f->errmsg, "server shutting down");
        }
        w->jobs_head = w->jobs_tail = NULL;
    }
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->lock);
    if (w->efd >= 0) {
        close(w->efd);
        w->efd = -1;
    }
}

void hxfr__workers_push(struct hxfr__workers *w, struct hxfr__frame *f)
{
    f->next = NULL;
    pthread_mutex_lock(&w->lock);
    if (w->jobs_tail) {
        w->jobs_tail->next = f;
    } else {
        w->jobs_head = f;
    }
    w->jobs_tail = f;
    w->running++;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

void hxfr__workers_cancel_pending(struct hxfr__workers *w)
{
    pthread_mutex_lock(&w->lock);
    if (w->jobs_head) {
        for (struct hxfr__frame *f = w->jobs_head; f; f = f->next) {
            f->status = HXFR_STATUS_SHUTTING_DOWN;
            snprintf(f->errmsg, sizeof(f->errmsg), "server shutting down");
        }
        if (w->done_tail) {
            w->done_tail->next = w->jobs_head;
        } else {
            w->done_head = w->jobs_head;
        }
        w->done_tail = w->jobs_tail;
        w->jobs_head = w->jobs_tail = NULL;
        uint64_t one = 1;
        ssize_t n = write(w->efd, &one, sizeof(one));
        (void)n;
    }
    pthread_mutex_unlock(&w->lock);
}

struct hxfr__frame *hxfr__workers_take_done(struct hxfr__workers *w, struct hxfr__frame **consumed)
{
    uint64_t v;
    ssize_t n = read(w->efd, &v, sizeof(v));
    (void)n; /* EAGAIN just means nothing was signalled since last time. */

    pthread_mutex_lock(&w->lock);
    struct hxfr__frame *list = w->done_head;
    w->done_head = w->done_tail = NULL;
    *consumed = w->consumed_head;
    w->consumed_head = w->consumed_tail = NULL;
    for (struct hxfr__frame *f = list; f; f = f->next) {
        w->running--;
    }
    pthread_mutex_unlock(&w->lock);
    return list;
}

struct split_ctx {
    uint8_t *p;
    uint32_t count;
    uint64_t total;
};

static int count_unit(void *opaque, const uint8_t *nal, size_t size)
{
    struct split_ctx *ctx = opaque;
    (void)nal;
    ctx->count++;
    ctx->total += 4u + (uint64_t)size;
    return 0;
}

static int write_unit(void *opaque, const uint8_t *nal, size_t size)
{
    struct split_ctx *ctx = opaque;
    hxfr_put_u32(ctx->p, (uint32_t)size);
    memcpy(ctx->p + 4, nal, size);
    ctx->p += 4 + size;
    return 0;
}

struct hxfr__outbuf *hxfr__frame_response_build(uint16_t session_id, int64_t pts, int64_t dts,
                                                bool keyframe, const uint8_t *au, size_t size)
{
    struct split_ctx ctx = {0};
    int n = hxfr_annexb_split(au, size, count_unit, &ctx);
    if (n < 0 || ctx.count == 0 || ctx.total > UINT32_MAX - HXFR_FRAME_RESPONSE_SIZE) {
        errno = EPROTO;
        return NULL;
    }

    struct hxfr_msg m;
    memset(&m, 0, sizeof(m));
    m.hdr.type = HXFR_MSG_FRAME_RESPONSE;
    m.hdr.session_id = session_id;
    m.u.frame_response.pts = pts;
    m.u.frame_response.dts = dts;
    m.u.frame_response.is_keyframe = keyframe ? 1 : 0;
    m.u.frame_response.nal_count = ctx.count;

    const size_t head = HXFR_HEADER_SIZE + HXFR_FRAME_RESPONSE_SIZE;
    struct hxfr__outbuf *b = hxfr__outbuf_new(head + (size_t)ctx.total);
    if (!b) {
        return NULL;
    }
    int r = hxfr_msg_encode(&m, (uint32_t)ctx.total, b->data, head);
    if (r != (int)head) {
        hxfr__outbuf_unref(b);
        errno = EPROTO;
        return NULL;
    }
    ctx.p = b->data + head;
    hxfr_annexb_split(au, size, write_unit, &ctx);
    return b;
}

/* Worker: the encoder has converted f's pixels into its own picture. Tell
 * the loop, which hands a shared-memory slot back before the encode ends. */
static void frame_consumed(void *opaque)
{
    struct hxfr__frame *f = opaque;
    struct hxfr__workers *w = &f->session->host->workers;

    pthread_mutex_lock(&w->lock);
    f->consumed_next = NULL;
    if (w->consumed_tail) {
        w->consumed_tail->consumed_next = f;
    } else {
        w->consumed_head = f;
    }
    w->consumed_tail = f;
    uint64_t one = 1;
    ssize_t n = write(w->efd, &one, sizeof(one));
    (void)n;
    pthread_mutex_unlock(&w->lock);
}

static bool encoder_matches(const struct hxfr__session *s, const struct hxfr__frame *f)
{
    return s->enc_gen == f->cfg_gen && s->enc_width == f->img.width &&
           s->enc_height == f->img.height && s->enc_format == f->img.format;
}

void hxfr__frame_encode(struct hxfr__frame *f)
{
    struct hxfr__session *s = f->session;
    uint64_t t0 = hxfr__now_ns();
    bool idr = f->force_idr;

    f->status = HXFR_STATUS_OK;
    f->errmsg[0] = '\0';
    f->out = NULL;
    if (f->keep_op == HXFR__KEEP_USE && hxfr__keep_worker_before(f) < 0) {
        f->status = HXFR_STATUS_INTERNAL;
        snprintf(f->errmsg, sizeof(f->errmsg), "keepalive: no picture kept");
        goto out;
    }

    if (s->enc && !encoder_matches(s, f)) {
        /* New size, format or settings: a fresh encoder, which starts with
         * an IDR so the stream stays decodable across the change. */
        hxfr__encoder_destroy(s->enc);
        s->enc = NULL;
    }
    if (!s->enc) {
        struct hxfr_encoder_config cfg = f->cfg;
        cfg.width = f->img.width;
        cfg.height = f->img.height;
        s->enc = hxfr__encoder_create(&cfg);
        if (!s->enc) {
            int err = errno;
            f->status = HXFR_STATUS_ENCODE_FAILED;
            snprintf(f->errmsg, sizeof(f->errmsg), "cannot open encoder %s for %ux%u: %s",
                     cfg.codec ? cfg.codec : HXFR_DEFAULT_CODEC, cfg.width, cfg.height,
                     strerror(err));
            goto out;
        }
        s->enc_gen = f->cfg_gen;
        s->enc_width = f->img.width;
        s->enc_height = f->img.height;
        s->enc_format = f->img.format;
        idr = true;
    }
    snprintf(f->codec, sizeof(f->codec), "%s", s->enc->codec_name);

    if (f->early_release) {
        f->img.consumed = frame_consumed;
        f->img.consumed_opaque = f;
    }
    struct hxfr_packet pkt;
    memset(&pkt, 0, sizeof(pkt));
    int r = hxfr__encoder_encode(s->enc, &f->img, f->pts, idr, &pkt);
    if (r < 0 || !pkt.data || pkt.size == 0) {
        f->status = HXFR_STATUS_ENCODE_FAILED;
        snprintf(f->errmsg, sizeof(f->errmsg), "encoder %s failed: %s", s->enc->codec_name,
                 r < 0 ? hxfr_strerror(r) : "no output");
        /* The encoder's state is unknown now: the next frame reopens it. */
        hxfr__encoder_destroy(s->enc);
        s->enc = NULL;
        goto out;
    }
    f->out = hxfr__frame_response_build(s->id, f->pts, pkt.dts, pkt.keyframe, pkt.data, pkt.size);
    if (!f->out) {
        f->status = errno == ENOMEM ? HXFR_STATUS_INTERNAL : HXFR_STATUS_ENCODE_FAILED;
        snprintf(f->errmsg, sizeof(f->errmsg), "cannot package access unit: %s", strerror(errno));
        goto out;
    }
    f->keyframe = pkt.keyframe;
    f->au_bytes = pkt.size;
    if (f->keep_op == HXFR__KEEP_SAVE) {
        hxfr__keep_worker_after(f);
    }

out:
    f->encode_ns = hxfr__now_ns() - t0;
}
