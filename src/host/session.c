/* Sessions: (client, session_id) pairs, each with its own settings,
 * encoder, frame pool and in-order frame queue.
 *
 * A session never has more than one frame at the workers. That serializes
 * use of its encoder and keeps its responses in request order with any
 * number of workers; different sessions encode in parallel.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host-private.h"
#include "scanout.h"

/* Delivery for a session a client owns: the response (or an ERROR) goes
 * to that client's output queue. */
void hxfr__session_deliver_client(struct hxfr__session *s, struct hxfr__frame *f)
{
    struct hxfr__client *c = s->client;

    if (!c) {
        return;
    }
    if (c->inflight > 0) {
        c->inflight--;
    }
    if (f->status == HXFR_STATUS_OK) {
        struct hxfr__outbuf *out = f->out;
        f->out = NULL;
        hxfr__client_send(c, out);
    } else {
        hxfr__log(s->host,
                  f->status == HXFR_STATUS_SHUTTING_DOWN ? HXFR_HOST_LOG_INFO : HXFR_HOST_LOG_ERROR,
                  "client %llu session %u: frame failed: %s", (unsigned long long)c->id,
                  (unsigned)s->id, f->errmsg);
        /* This frame's turn has come: its ERROR goes out now, ahead of
         * any answer held for a later request. */
        hxfr__client_send_error_now(c, s->id, f->status, "%s", f->errmsg);
    }
}

int hxfr__session_answer(struct hxfr__session *s, struct hxfr__outbuf *buf)
{
    struct hxfr__client *c = s->client;

    if (!c) {
        hxfr__outbuf_unref(buf);
        return -EPIPE;
    }
    if (s->answered >= s->next_seq && !s->answers_head) {
        return hxfr__client_send(c, buf);
    }
    struct hxfr__answer *a = malloc(sizeof(*a));
    if (!a) {
        /* Out of memory: an answer out of order still beats none. */
        return hxfr__client_send(c, buf);
    }
    a->next = NULL;
    a->after = s->next_seq;
    a->buf = buf;
    if (s->answers_tail) {
        s->answers_tail->next = a;
    } else {
        s->answers_head = a;
    }
    s->answers_tail = a;
    /* Held answers count against the window like frames: a client that
     * keeps sending requests while a frame encodes is paused, not queued
     * without bound. */
    c->inflight++;
    return 0;
}

/* Sends the held answers whose frames have all been answered. */
static void session_flush_answers(struct hxfr__session *s)
{
    while (s->answers_head && s->answers_head->after <= s->answered) {
        struct hxfr__answer *a = s->answers_head;
        s->answers_head = a->next;
        if (!s->answers_head) {
            s->answers_tail = NULL;
        }
        struct hxfr__client *c = s->client;
        if (c) {
            if (c->inflight > 0) {
                c->inflight--;
            }
            hxfr__client_send(c, a->buf);
        } else {
            hxfr__outbuf_unref(a->buf);
        }
        free(a);
    }
}

static void session_drop_answers(struct hxfr__session *s)
{
    while (s->answers_head) {
        struct hxfr__answer *a = s->answers_head;
        s->answers_head = a->next;
        hxfr__outbuf_unref(a->buf);
        free(a);
    }
    s->answers_tail = NULL;
}

struct hxfr__session *hxfr__session_get(struct hxfr__client *c, uint16_t id, bool create)
{
    struct hxfr_host *h = c->host;
    struct hxfr__session **link = &c->sessions;

    for (struct hxfr__session *s = c->sessions; s; s = s->next) {
        if (s->id == id) {
            return s;
        }
        link = &s->next;
    }
    if (!create) {
        errno = ENOENT;
        return NULL;
    }
    if (c->nsessions >= h->cfg.max_sessions) {
        errno = EBUSY;
        return NULL;
    }
    struct hxfr__session *s = calloc(1, sizeof(*s));
    if (!s) {
        return NULL;
    }
    s->frames = calloc(h->cfg.window, sizeof(*s->frames));
    if (!s->frames) {
        free(s);
        errno = ENOMEM;
        return NULL;
    }
    s->nframes = h->cfg.window;
    for (unsigned i = 0; i < s->nframes; i++) {
        s->frames[i].session = s;
    }
    s->host = h;
    s->client = c;
    s->id = id;
    s->cfg.codec = h->encoder_name;
    s->cfg.preset = h->preset;
    s->cfg.threads = h->cfg.encoder_threads;
    s->cfg.gop = h->cfg.gop;
    s->cfg.realtime = true;
    s->cfg_gen = 1;
    s->deliver = hxfr__session_deliver_client;
    s->interval_start_ns = hxfr__now_ns();
    *link = s;
    c->nsessions++;
    h->stats.sessions++;
    return s;
}

struct hxfr__frame *hxfr__session_frame_get(struct hxfr__session *s)
{
    for (unsigned i = 0; i < s->nframes; i++) {
        struct hxfr__frame *f = &s->frames[i];
        if (f->state == HXFR__FRAME_FREE) {
            f->next = NULL;
            f->fill = 0;
            f->source = NULL;
            f->out = NULL;
            f->status = HXFR_STATUS_OK;
            f->errmsg[0] = '\0';
            f->force_idr = false;
            f->early_release = false;
            f->slot_released = false;
            memset(&f->ext, 0, sizeof(f->ext));
            /* A published frame of a scanout keeps its picture for
             * keepalive; the keepalive path sets HXFR__KEEP_USE itself. */
            f->keep_op = s->owner ? HXFR__KEEP_SAVE : HXFR__KEEP_NONE;
            f->kept_bytes = 0;
            return f;
        }
    }
    errno = EBUSY;
    return NULL;
}

void hxfr__frame_put(struct hxfr__frame *f)
{
    if (f->source && f->source->release) {
        f->source->release(f);
    }
    f->source = NULL;
    hxfr__outbuf_unref(f->out);
    f->out = NULL;
    f->next = NULL;
    f->state = HXFR__FRAME_FREE;
}

static void session_kick(struct hxfr__session *s)
{
    if (s->running || !s->queue_head) {
        return;
    }
    if (s->host->deadline_passed) {
        hxfr__session_fail_queued(s, HXFR_STATUS_SHUTTING_DOWN, "server shutting down");
        return;
    }
    struct hxfr__frame *f = s->queue_head;
    s->queue_head = f->next;
    if (!s->queue_head) {
        s->queue_tail = NULL;
    }
    f->next = NULL;
    f->state = HXFR__FRAME_RUNNING;
    s->running = f;
    hxfr__workers_push(&s->host->workers, f);
}

void hxfr__session_submit(struct hxfr__session *s, struct hxfr__frame *f)
{
    f->state = HXFR__FRAME_QUEUED;
    f->seq = s->next_seq++;
    f->next = NULL;
    if (s->queue_tail) {
        s->queue_tail->next = f;
    } else {
        s->queue_head = f;
    }
    s->queue_tail = f;
    session_kick(s);
}

void hxfr__session_complete(struct hxfr__session *s, struct hxfr__frame *f)
{
    /* s->running stays set while delivering: if delivery cuts the client,
     * its detach sees a running frame and keeps the session as a zombie
     * instead of freeing it under us. */
    hxfr__session_record(s, f);
    s->done_seq = f->seq;
    s->answered++;
    if (s->deliver) {
        s->deliver(s, f);
    }
    session_flush_answers(s);
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

void hxfr__session_fail_queued(struct hxfr__session *s, int32_t status, const char *msg)
{
    while (s->queue_head) {
        struct hxfr__frame *f = s->queue_head;
        s->queue_head = f->next;
        if (!s->queue_head) {
            s->queue_tail = NULL;
        }
        f->status = status;
        snprintf(f->errmsg, sizeof(f->errmsg), "%s", msg);
        s->host->stats.frames_failed++;
        s->answered++;
        if (s->deliver) {
            s->deliver(s, f);
        }
        hxfr__frame_put(f);
        session_flush_answers(s);
    }
}

void hxfr__session_detach(struct hxfr__session *s)
{
    struct hxfr_host *h = s->host;

    /* Frames not yet at a worker are dropped now; their sources are
     * released. */
    while (s->queue_head) {
        struct hxfr__frame *f = s->queue_head;
        s->queue_head = f->next;
        hxfr__frame_put(f);
    }
    s->queue_tail = NULL;
    for (unsigned i = 0; i < s->nframes; i++) {
        if (s->frames[i].state == HXFR__FRAME_FILLING) {
            hxfr__frame_put(&s->frames[i]);
        }
    }
    session_drop_answers(s);
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
    hxfr__encoder_destroy(s->enc);
    for (unsigned i = 0; i < s->nframes; i++) {
        struct hxfr__frame *f = &s->frames[i];
        if (f->state != HXFR__FRAME_FREE) {
            hxfr__frame_put(f);
        }
        free(f->buf);
    }
    free(s->frames);
    session_drop_answers(s);
    hxfr__keep_free(s->keep);
    /* After the frames: each held a reference to the ring. */
    hxfr__shm_ring_unref(s->host, s->shm);
    s->shm = NULL;
    if (s->host->stats.sessions > 0) {
        s->host->stats.sessions--;
    }
    free(s);
}

void hxfr__session_record(struct hxfr__session *s, const struct hxfr__frame *f)
{
    struct hxfr_host *h = s->host;

    s->last_width = f->img.width;
    s->last_height = f->img.height;
    s->last_format = f->img.format;
    if (f->codec[0]) {
        memcpy(s->codec, f->codec, sizeof(s->codec));
    }
    if (f->status != HXFR_STATUS_OK) {
        h->stats.frames_failed++;
        return;
    }
    s->frames_done++;
    s->interval_frames++;
    if (f->ring) {
        /* Encoded straight from a shared-memory slot: no copy. */
        s->shm_frames++;
        h->stats.shm_frames++;
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
