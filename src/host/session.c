/* Sessions (session.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "answer.h"
#include "clock.h"
#include "session.h"

void hxfr__session_deliver_client(struct hxfr__session *s, struct hxfr__frame *f)
{
    struct hxfr__client *c = s->client;

    if (!c || f->no_answer) {
        return;
    }
    if (c->inflight > 0) {
        c->inflight--;
    }
    if (f->status == HXFR_STATUS_OK) {
        struct hxfr__outbuf *out = f->out;
        f->out = NULL;
        hxfr__conn_send(&c->conn, out);
    } else {
        hxfr__log(&s->host->log,
                  f->status == HXFR_STATUS_SHUTTING_DOWN ? HXFR_HOST_LOG_INFO : HXFR_HOST_LOG_ERROR,
                  "client %llu session %u: frame failed: %s", (unsigned long long)c->id,
                  (unsigned)s->id, f->errmsg);
        /* This frame's turn has come: its ERROR goes out now, ahead of
         * any answer held for a later request. */
        hxfr__answer_error_now(c, s->id, f->status, "%s", f->errmsg);
    }
}

struct hxfr__session *hxfr__session_open(struct hxfr__client *c, uint16_t id)
{
    struct hxfr_host *h = c->host;
    struct hxfr__session **link = &c->sessions;

    for (struct hxfr__session *s = c->sessions; s; s = s->next) {
        if (s->id == id) {
            return s;
        }
        link = &s->next;
    }
    if (c->nsessions >= h->cfg.max_sessions) {
        errno = EBUSY;
        return NULL;
    }
    struct hxfr__session *s = hxfr__session_new(h, id, h->cfg.window);
    if (!s) {
        return NULL;
    }
    s->client = c;
    *link = s;
    c->nsessions++;
    return s;
}

struct hxfr__session *hxfr__session_new(struct hxfr_host *h, uint16_t id, unsigned nframes)
{
    struct hxfr__session *s = calloc(1, sizeof(*s));
    if (!s) {
        return NULL;
    }
    s->frames = calloc(nframes, sizeof(*s->frames));
    if (!s->frames) {
        free(s);
        errno = ENOMEM;
        return NULL;
    }
    s->nframes = nframes;
    for (unsigned i = 0; i < s->nframes; i++) {
        s->frames[i].session = s;
    }
    s->host = h;
    s->id = id;
    s->cfg.codec = h->encoder_name;
    s->cfg.preset = h->preset;
    s->cfg.threads = h->cfg.encoder_threads;
    s->cfg.gop = h->cfg.gop;
    s->cfg.realtime = true;
    s->cfg_gen = 1;
    s->deliver = hxfr__session_deliver_client;
    s->interval_start_ns = hxfr__now_ns();
    h->stats.sessions++;
    return s;
}

struct hxfr__frame *hxfr__session_frame_get(struct hxfr__session *s)
{
    for (unsigned i = 0; i < s->nframes; i++) {
        struct hxfr__frame *f = &s->frames[i];
        if (f->state == HXFR__FRAME_FREE) {
            f->link.next = NULL;
            f->fill = 0;
            f->source = NULL;
            f->out = NULL;
            f->status = HXFR_STATUS_OK;
            f->errmsg[0] = '\0';
            f->force_idr = false;
            f->early_release = false;
            f->slot_released = false;
            f->no_answer = false;
            memset(&f->ext, 0, sizeof(f->ext));
            f->resolver = NULL;
            /* A published frame of a scanout keeps its picture for
             * keepalive; the keepalive path sets HXFR__KEEP_USE itself. */
            f->keep = s->keep;
            f->keep_op = s->owner ? HXFR__KEEP_SAVE : HXFR__KEEP_NONE;
            f->kept_bytes = 0;
            f->kept_whole_copy = false;
            f->session_id = s->id;
            f->encoding = &s->encoding;
            return f;
        }
    }
    errno = EBUSY;
    return NULL;
}

/* A client's pooled buffers stay allocated between frames, spread over
 * its sessions. Their sum is kept within window x the largest frame: before
 * a buffer grows past that, idle buffers of the client's sessions are
 * freed (only `window` frames are ever in use at once, so this always
 * makes room). */
static void client_trim_pools(struct hxfr__client *c, size_t need)
{
    size_t budget = (size_t)c->host->cfg.window * c->host->max_body;
    for (struct hxfr__session *s = c->sessions; s && c->pool_bytes + need > budget; s = s->next) {
        for (unsigned i = 0; i < s->nframes && c->pool_bytes + need > budget; i++) {
            struct hxfr__frame *f = &s->frames[i];
            if (f->state == HXFR__FRAME_FREE && f->buf) {
                c->pool_bytes -= f->cap;
                free(f->buf);
                f->buf = NULL;
                f->cap = 0;
            }
        }
    }
}

int hxfr__session_frame_buffer(struct hxfr__session *s, struct hxfr__frame *f, size_t size)
{
    struct hxfr__client *c = s->client;

    if (f->cap >= size) {
        return 0;
    }
    /* Grow only: a buffer keeps its pages across frames, so only a size
     * increase pays for fresh page faults. */
    c->pool_bytes -= f->cap;
    free(f->buf);
    f->buf = NULL;
    f->cap = 0;
    client_trim_pools(c, size);
    f->buf = malloc(size);
    f->cap = f->buf ? size : 0;
    c->pool_bytes += f->cap;
    return f->buf ? 0 : -ENOMEM;
}

void hxfr__frame_put(struct hxfr__frame *f)
{
    if (f->source && f->source->release) {
        f->source->release(f);
    }
    f->source = NULL;
    hxfr__outbuf_unref(f->out);
    f->out = NULL;
    f->link.next = NULL;
    f->state = HXFR__FRAME_FREE;
}

void hxfr__session_prepare(struct hxfr__session *s, struct hxfr__frame *f, int64_t pts,
                           bool force_idr)
{
    f->pts = pts;
    f->force_idr = force_idr || s->force_idr_next;
    s->force_idr_next = false;
    f->cfg = s->cfg;
    f->cfg.bitrate = hxfr__session_bitrate(s);
    f->cfg_gen = s->cfg_gen;
}

uint32_t hxfr__session_bitrate(const struct hxfr__session *s)
{
    uint32_t b = s->cfg.bitrate, cap = s->bitrate_cap;
    return cap && (b == 0 || cap < b) ? cap : b;
}

static void session_kick(struct hxfr__session *s)
{
    if (s->running || hxfr__queue_empty(&s->queue)) {
        return;
    }
    if (s->host->deadline_passed) {
        hxfr__session_fail_queued(s, HXFR_STATUS_SHUTTING_DOWN, "server shutting down");
        return;
    }
    struct hxfr__frame *f = hxfr__queue_pop_entry(&s->queue, struct hxfr__frame, link);
    f->state = HXFR__FRAME_RUNNING;
    s->running = f;
    hxfr__workers_push(&s->host->workers, f);
}

void hxfr__session_submit(struct hxfr__session *s, struct hxfr__frame *f)
{
    f->state = HXFR__FRAME_QUEUED;
    f->seq = s->next_seq++;
    hxfr__queue_push(&s->queue, &f->link);
    session_kick(s);
}

static void session_record(struct hxfr__session *s, const struct hxfr__frame *f)
{
    struct hxfr_host *h = s->host;

    s->last_width = f->img.width;
    s->last_height = f->img.height;
    s->last_format = f->img.format;
    if (f->codec[0]) {
        memcpy(s->codec, f->codec, sizeof(s->codec));
        s->codec_gen = f->cfg_gen;
    }
    if (f->status != HXFR_STATUS_OK) {
        h->stats.frames_failed++;
        return;
    }
    s->frames_done++;
    s->interval_frames++;
    if (f->source == &hxfr__source_shm) {
        /* Encoded straight from a shared-memory slot: no copy. */
        s->shm_frames++;
        h->stats.shm_frames++;
    }
    if (f->img.pieces) {
        /* Encoded straight from a guest resource's scattered backing. */
        h->stats.gpu_frames++;
        h->stats.gpu_converted_pixels += f->converted_pixels;
        h->stats.gpu_bounced_bytes += f->bounced_bytes;
        if (f->kept_whole_copy) {
            h->stats.gpu_frame_copies++;
        }
    }
    s->encoded_bytes += f->au_bytes;
    s->interval_bytes += f->au_bytes;
    if (f->keyframe) {
        s->keyframes++;
    }
    uint64_t us = f->encode_ns / 1000u;
    s->samples[s->nsamples % HXFR_HOST_SAMPLES] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
    s->nsamples++;
    h->stats.frames_encoded++;
    h->stats.encoded_bytes += f->au_bytes;
}

void hxfr__session_complete(struct hxfr__session *s, struct hxfr__frame *f)
{
    /* s->running stays set while delivering: if delivery cuts the client,
     * its detach sees a running frame and keeps the session as a zombie
     * instead of freeing it under us. */
    session_record(s, f);
    s->done_seq = f->seq;
    s->answered++;
    if (s->deliver) {
        s->deliver(s, f);
    }
    hxfr__session_flush_answers(s);
    s->running = NULL;
    hxfr__frame_put(f);
    if (!s->client && !s->owner) {
        struct hxfr_host *h = s->host;
        for (struct hxfr__session **p = &h->zombies; *p; p = &(*p)->next) {
            if (*p == s) {
                *p = s->next;
                break;
            }
        }
        hxfr__session_destroy(s);
        return;
    }
    session_kick(s);
}

void hxfr__session_consumed(struct hxfr__frame *f)
{
    if (!f->source || !f->source->consumed || !f->source->consumed(f)) {
        return;
    }
    struct hxfr__client *c = f->session->client;
    if (c && !f->no_answer && !c->conn.cut && c->conn.fd >= 0) {
        struct hxfr_msg m;
        hxfr__msg_start(&m, HXFR_MSG_SLOT_RELEASE, f->session->id);
        m.u.slot_release.slot = f->slot;
        hxfr__answer_msg(c, &m);
    }
}

void hxfr__session_fail_queued(struct hxfr__session *s, int32_t status, const char *msg)
{
    struct hxfr__frame *f;
    while ((f = hxfr__queue_pop_entry(&s->queue, struct hxfr__frame, link))) {
        f->status = status;
        snprintf(f->errmsg, sizeof(f->errmsg), "%s", msg);
        s->host->stats.frames_failed++;
        s->answered++;
        if (s->deliver) {
            s->deliver(s, f);
        }
        hxfr__frame_put(f);
        hxfr__session_flush_answers(s);
    }
}

/* What a session loses with its client: frames not yet at a worker (their
 * sources released) and the answers held for the client. A dropped frame
 * counts as answered: a session that lives on (a scanout's) must not hold
 * its next client's answers behind frames that will never come back. */
static void drop_client_work(struct hxfr__session *s)
{
    struct hxfr__frame *f;
    while ((f = hxfr__queue_pop_entry(&s->queue, struct hxfr__frame, link))) {
        hxfr__frame_put(f);
        s->answered++;
    }
    for (unsigned i = 0; i < s->nframes; i++) {
        if (s->frames[i].state == HXFR__FRAME_FILLING) {
            hxfr__frame_put(&s->frames[i]);
        }
    }
    hxfr__session_drop_answers(s);
}

void hxfr__session_disown(struct hxfr__session *s)
{
    struct hxfr__client *c = s->client;

    if (!c) {
        return;
    }
    drop_client_work(s);
    for (struct hxfr__session **p = &c->sessions; *p; p = &(*p)->next) {
        if (*p == s) {
            *p = s->next;
            c->nsessions--;
            break;
        }
    }
    s->next = NULL;
    /* The client's pool count covers the buffers of its sessions' frames:
     * these are no longer its. Idle ones are freed; a running frame's
     * buffer goes when the frame is done (its deliver sees no client). */
    for (unsigned i = 0; i < s->nframes; i++) {
        struct hxfr__frame *f = &s->frames[i];
        c->pool_bytes -= f->cap;
        /* A frame at the worker is the old client's: a later client of
         * the session (hxfr__session_adopt) must not get its answer. */
        f->no_answer = f->state == HXFR__FRAME_RUNNING;
        if (f->state == HXFR__FRAME_FREE) {
            free(f->buf);
            f->buf = NULL;
            f->cap = 0;
        }
    }
    /* The ring was the client's memory (frames at a worker hold their own
     * reference). */
    hxfr__shm_ring_unref(s->shm);
    s->shm = NULL;
    s->client = NULL;
}

int hxfr__session_adopt(struct hxfr__session *s, struct hxfr__client *c)
{
    struct hxfr__session **link = &c->sessions;
    struct hxfr__session *old = NULL;

    for (; *link; link = &(*link)->next) {
        if ((*link)->id == s->id) {
            old = *link;
            break;
        }
    }
    if (old) {
        for (unsigned i = 0; i < old->nframes; i++) {
            if (old->frames[i].state != HXFR__FRAME_FREE) {
                return -EBUSY;
            }
        }
        if (!hxfr__queue_empty(&old->answers)) {
            return -EBUSY;
        }
        *link = old->next;
        c->nsessions--;
        for (unsigned i = 0; i < old->nframes; i++) {
            c->pool_bytes -= old->frames[i].cap;
        }
        hxfr__session_destroy(old);
    } else if (c->nsessions >= c->host->cfg.max_sessions) {
        return -ENOSPC;
    }
    for (unsigned i = 0; i < s->nframes; i++) {
        c->pool_bytes += s->frames[i].cap;
    }
    s->client = c;
    s->next = c->sessions;
    c->sessions = s;
    c->nsessions++;
    return 0;
}

void hxfr__session_detach(struct hxfr__session *s)
{
    struct hxfr_host *h = s->host;

    drop_client_work(s);
    s->client = NULL;
    if (s->running) {
        s->next = h->zombies;
        h->zombies = s;
        return;
    }
    hxfr__session_destroy(s);
}

void hxfr__session_destroy(struct hxfr__session *s)
{
    if (!s) {
        return;
    }
    hxfr__encoding_finish(&s->encoding);
    for (unsigned i = 0; i < s->nframes; i++) {
        struct hxfr__frame *f = &s->frames[i];
        if (f->state != HXFR__FRAME_FREE) {
            hxfr__frame_put(f);
        }
        free(f->buf);
        free(f->pieces);
    }
    free(s->frames);
    hxfr__session_drop_answers(s);
    hxfr__keep_free(s->keep);
    /* After the frames: each held a reference to the ring. */
    hxfr__shm_ring_unref(s->shm);
    s->shm = NULL;
    if (s->host->stats.sessions > 0) {
        s->host->stats.sessions--;
    }
    free(s);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

uint32_t hxfr__percentile(const uint32_t *samples, unsigned n, unsigned pct)
{
    uint32_t sorted[HXFR_HOST_SAMPLES];

    if (n == 0) {
        return 0;
    }
    if (n > HXFR_HOST_SAMPLES) {
        n = HXFR_HOST_SAMPLES;
    }
    if (pct > 100) {
        pct = 100;
    }
    memcpy(sorted, samples, n * sizeof(*sorted));
    qsort(sorted, n, sizeof(*sorted), cmp_u32);
    /* Nearest-rank: the smallest sample with at least pct% at or below. */
    unsigned rank = (pct * n + 99) / 100;
    if (rank == 0) {
        rank = 1;
    }
    return sorted[rank - 1];
}

void hxfr__session_stats(struct hxfr__session *s, struct hxfr_host_session_stats *out, bool reset)
{
    uint64_t now = hxfr__now_ns();
    unsigned n = s->nsamples < HXFR_HOST_SAMPLES ? s->nsamples : HXFR_HOST_SAMPLES;

    memset(out, 0, sizeof(*out));
    out->client_id = s->client ? s->client->id : 0;
    out->session_id = s->id;
    out->width = s->last_width;
    out->height = s->last_height;
    out->format = s->last_format;
    memcpy(out->encoder, s->codec, sizeof(out->encoder));
    out->encoder[sizeof(out->encoder) - 1] = '\0';
    out->frames = s->frames_done;
    out->keyframes = s->keyframes;
    out->encoded_bytes = s->encoded_bytes;
    out->pixel_bytes_copied = s->pixel_bytes_copied;
    out->client_pixel_bytes_copied = s->client ? s->client->pixel_bytes_copied : 0;
    out->shm_frames = s->shm_frames;
    out->interval_ns = now - s->interval_start_ns;
    out->interval_frames = s->interval_frames;
    out->interval_bytes = s->interval_bytes;
    out->encode_ms_p50 = hxfr__percentile(s->samples, n, 50) / 1000.0;
    out->encode_ms_p99 = hxfr__percentile(s->samples, n, 99) / 1000.0;
    if (reset) {
        s->interval_start_ns = now;
        s->interval_frames = 0;
        s->interval_bytes = 0;
        s->nsamples = 0;
    }
}
