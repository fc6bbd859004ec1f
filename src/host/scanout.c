/* Scanout streams (push mode): ENABLE_SCANOUT / DISABLE_SCANOUT / SUBSCRIBE,
 * fan-out of each encoded access unit to the subscribers, IDRs for new
 * subscribers, keepalive re-encodes of a static screen, bounded per
 * subscriber queues, subscribers' bitrate requests, and the life of a
 * scanout apart from the connections around it. docs/protocol.md section
 * 11 is the specification; scanout.h states the life rules and explains
 * how a scanout rides on one session.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "answer.h"
#include "clock.h"
#include "scanout.h"
#include "session.h"

struct hxfr__subscriber {
    struct hxfr__subscriber *next;
    struct hxfr__client *client;
    uint64_t seq;     /* order of subscriptions, server-wide */
    uint32_t bitrate; /* asked for with CONFIG_REQ (bit/s); 0 = nothing */
    bool need_idr;    /* gets nothing until an IDR: it never sees a P-frame
                         whose references it missed */
    bool idr_asked;   /* an IDR was requested for it since need_idr was set */
    uint64_t sent, dropped;
};

struct hxfr__scanout {
    struct hxfr__scanout *next;
    struct hxfr_host *host;
    uint16_t id;
    struct hxfr__client *publisher; /* NULL: none (the session has no client) */
    struct hxfr__session *session;  /* the publisher's session with the same id,
                                       or client-less while there is none */
    uint32_t width, height, refresh_hz;
    char connector[HXFR_CONNECTOR_LEN];
    struct hxfr__subscriber *subs;
    unsigned nsubs;
    bool have_picture;         /* a published frame was kept since enable */
    int64_t last_pts;          /* of the last frame encoded (any kind) */
    uint64_t last_ns;          /* when it completed (0: none yet) */
    uint64_t keepalive_due_ns; /* next keepalive, if nothing else comes */
    uint64_t frames, keepalives;
    /* Requested IDRs (new subscribers, KEYFRAME_REQ) are made at most once
     * per HXFR_HOST_IDR_MIN_INTERVAL_NS per scanout; one asked for sooner
     * is deferred, never lost. */
    uint64_t idr_last_ns;
    bool idr_deferred;
    /* Since when it has had neither publisher nor subscribers (0: it has
     * one): after scanout_timeout_ms of that it ends. */
    uint64_t alone_since_ns;
    /* The embedder publishes it (hxfr_host_scanout_enable; publisher is
     * NULL, the session has no client). Its frames come from
     * hxfr_host_scanout_publish through the gpu source. */
    bool vmm;
    /* The session's encoder has been given every published frame since
     * its last whole picture: a frame's damage is relative to what it
     * holds. False after a frame was not taken (no subscriber). */
    bool chain;
    /* The newest published frame waiting for the running one (state
     * FILLING: in use, in no queue); a newer one replaces it. */
    struct hxfr__frame *pending;
};

struct hxfr__scanout_set {
    struct hxfr__watch watch; /* HXFR__WATCH_SCANOUT */
    int timer_fd;
    uint64_t armed_ns; /* absolute deadline armed, 0 = none */
    struct hxfr__scanout *list;
    unsigned count;
    uint64_t units_sent, units_dropped, keepalive_frames;
    uint64_t keep_copy_bytes;
    uint64_t next_sub_seq;
    uint64_t gpu_flushes, gpu_encoded, gpu_skipped, gpu_damage_pixels;
};

/* ---- Lookup and helpers ------------------------------------------------ */

static struct hxfr__scanout *scanout_find(struct hxfr_host *h, uint32_t id)
{
    for (struct hxfr__scanout *so = h->scanouts->list; so; so = so->next) {
        if (so->id == id) {
            return so;
        }
    }
    return NULL;
}

static struct hxfr__subscriber *sub_find(struct hxfr__scanout *so, struct hxfr__client *c)
{
    for (struct hxfr__subscriber *sub = so->subs; sub; sub = sub->next) {
        if (sub->client == c) {
            return sub;
        }
    }
    return NULL;
}

/* Nothing of the session is encoding or waiting for a worker. A frame
 * still arriving from the socket does not count: a keepalive frame may
 * run before it (it produces no response for the publisher, so the
 * publisher's responses stay in request order). */
static bool session_idle(const struct hxfr__session *s)
{
    return !s->running && hxfr__queue_empty(&s->queue);
}

/* Room in a subscriber's output queue for one more message of len bytes:
 * fewer than subscriber_queue messages queued, and the bytes bounded. */
static bool queue_room(const struct hxfr__client *c, size_t len)
{
    return c->conn.out_count < c->host->cfg.subscriber_queue &&
           c->conn.out_bytes + len <= HXFR_HOST_SUBSCRIBER_BYTES;
}

static void send_scanout_resp(struct hxfr__client *c, uint16_t sid, uint32_t id, bool ok,
                              const char *connector)
{
    struct hxfr_msg r;
    hxfr__msg_start(&r, HXFR_MSG_SCANOUT_RESP, sid);
    r.u.scanout_resp.scanout_id = id;
    r.u.scanout_resp.success = ok ? 1u : 0u;
    snprintf(r.u.scanout_resp.connector, sizeof(r.u.scanout_resp.connector), "%s",
             connector ? connector : "");
    hxfr__answer_msg(c, &r);
}

static void send_subscribe_resp(struct hxfr__client *c, uint16_t sid, uint32_t id, bool ok)
{
    struct hxfr_msg r;
    hxfr__msg_start(&r, HXFR_MSG_SUBSCRIBE_RESP, sid);
    r.u.subscribe_resp.scanout_id = id;
    r.u.subscribe_resp.success = ok ? 1u : 0u;
    hxfr__answer_msg(c, &r);
}

/* ---- Keepalive timer -------------------------------------------------- */

static uint64_t keepalive_ns(const struct hxfr_host *h)
{
    return (uint64_t)h->cfg.keepalive_ms * 1000000u;
}

static uint64_t idr_due_ns(const struct hxfr__scanout *so)
{
    return so->idr_last_ns + HXFR_HOST_IDR_MIN_INTERVAL_NS;
}

/* When a scanout alone since alone_since_ns ends; 0 = never. */
static uint64_t alone_due_ns(const struct hxfr__scanout *so)
{
    unsigned ms = so->host->cfg.scanout_timeout_ms;
    if (!so->alone_since_ns || ms == HXFR_HOST_TIMEOUT_NEVER) {
        return 0;
    }
    return so->alone_since_ns + (uint64_t)ms * 1000000u;
}

/* Starts or stops the clock of a scanout left without publisher and
 * subscribers. */
static void update_alone(struct hxfr__scanout *so)
{
    bool alone = !so->publisher && !so->vmm && so->nsubs == 0;
    if (alone && !so->alone_since_ns) {
        so->alone_since_ns = hxfr__now_ns();
    } else if (!alone) {
        so->alone_since_ns = 0;
    }
}

/* Arms the timer for the earliest keepalive deadline of a scanout that has
 * subscribers and a picture; disarms it when there is none. */
static void rearm(struct hxfr_host *h)
{
    struct hxfr__scanout_set *set = h->scanouts;
    uint64_t when = 0;

    for (struct hxfr__scanout *so = set->list; so; so = so->next) {
        uint64_t alone = h->stopping ? 0 : alone_due_ns(so);
        if (alone && (when == 0 || alone < when)) {
            when = alone;
        }
        if (so->nsubs == 0 || h->stopping) {
            continue;
        }
        if (so->idr_deferred && (when == 0 || idr_due_ns(so) < when)) {
            when = idr_due_ns(so);
        }
        if (!so->have_picture) {
            continue;
        }
        uint64_t d = so->keepalive_due_ns;
        if (when == 0 || d < when) {
            when = d;
        }
    }
    if (when == set->armed_ns) {
        return;
    }
    struct itimerspec its;
    memset(&its, 0, sizeof(its));
    if (when) {
        its.it_value.tv_sec = (time_t)(when / 1000000000u);
        its.it_value.tv_nsec = (long)(when % 1000000000u);
    }
    if (timerfd_settime(set->timer_fd, TFD_TIMER_ABSTIME, &its, NULL) == 0) {
        set->armed_ns = when;
    }
}

/* Re-encodes the kept picture now (a keepalive, or an IDR for a new
 * subscriber). The frame takes the slot the scanout session's pool keeps
 * beyond the publisher's window. Returns 0 or -errno. */
static int vmm_keepalive_source(struct hxfr__scanout *so, struct hxfr__frame *f);

static int submit_keepalive(struct hxfr__scanout *so)
{
    struct hxfr__session *s = so->session;
    struct hxfr__frame *f = hxfr__session_frame_get(s);

    if (!f) {
        return -EBUSY;
    }
    struct hxfr__source_args args = {0};
    f->keep_op = HXFR__KEEP_USE;
    if (so->vmm) {
        int r = vmm_keepalive_source(so, f);
        if (r < 0) {
            return r;
        }
    } else {
        hxfr__source_keep.acquire(f, &args);
        f->source = &hxfr__source_keep;
    }
    /* The clock keeps running on a still screen: pts advances by the time
     * since the last frame, so players do not see a frozen timestamp. */
    uint64_t now = hxfr__now_ns();
    hxfr__session_prepare(
        s, f, so->last_pts + (so->last_ns && now > so->last_ns ? (int64_t)(now - so->last_ns) : 0),
        false);
    so->keepalives++;
    so->host->scanouts->keepalive_frames++;
    hxfr__session_submit(s, f);
    return 0;
}

/* Someone needs an IDR: the next frame the session prepares is one, and
 * if nothing is on its way, the kept picture is re-encoded as an IDR at
 * once. */
static void request_idr(struct hxfr__scanout *so)
{
    struct hxfr__session *s = so->session;

    s->force_idr_next = true;
    if (session_idle(s) && so->have_picture && !so->host->stopping) {
        submit_keepalive(so);
    }
}

/* A subscriber needs an IDR (it joined, or asked with KEYFRAME_REQ): at
 * once, or deferred to keep a flood of requests from turning everyone's
 * stream into back-to-back IDRs. */
static void want_idr(struct hxfr__scanout *so)
{
    uint64_t now = hxfr__now_ns();

    if (so->idr_last_ns && now < idr_due_ns(so)) {
        so->idr_deferred = true;
        rearm(so->host);
        return;
    }
    so->idr_last_ns = now;
    so->idr_deferred = false;
    request_idr(so);
}

static void scanout_end(struct hxfr__scanout *so, const char *reason);

void hxfr__scanouts_on_timer(struct hxfr_host *h)
{
    struct hxfr__scanout_set *set = h->scanouts;
    uint64_t v;
    ssize_t n = read(set->timer_fd, &v, sizeof(v));
    (void)n;
    set->armed_ns = 0;

    uint64_t now = hxfr__now_ns();
    struct hxfr__scanout *next;
    for (struct hxfr__scanout *so = set->list; so; so = next) {
        next = so->next;
        uint64_t alone = h->stopping ? 0 : alone_due_ns(so);
        if (alone && now >= alone) {
            char why[96];
            snprintf(why, sizeof(why), "ended: no publisher and no subscriber for %u ms",
                     h->cfg.scanout_timeout_ms);
            scanout_end(so, why);
        }
    }
    for (struct hxfr__scanout *so = set->list; so; so = so->next) {
        if (so->nsubs == 0 || h->stopping) {
            continue;
        }
        if (so->idr_deferred && now >= idr_due_ns(so)) {
            want_idr(so);
        }
        if (!so->have_picture) {
            continue;
        }
        if (now < so->keepalive_due_ns) {
            continue;
        }
        /* Due. Whatever happens, the next check is a full interval away
         * (a frame's completion moves it too): the timer never fires
         * again at once for a session that is busy. */
        so->keepalive_due_ns = now + keepalive_ns(h);
        if (session_idle(so->session)) {
            submit_keepalive(so);
        }
    }
    rearm(h);
}

/* ---- Fan-out ----------------------------------------------------------- */

static void fanout_one(struct hxfr__scanout *so, struct hxfr__subscriber *sub,
                       struct hxfr__outbuf *au, bool keyframe)
{
    struct hxfr_host *h = so->host;
    struct hxfr__client *c = sub->client;

    if (c->conn.cut || c->closing || c->conn.fd < 0) {
        return;
    }
    if (sub->need_idr && !keyframe) {
        sub->dropped++;
        h->scanouts->units_dropped++;
    } else if (!queue_room(c, au->len)) {
        if (!sub->need_idr) {
            hxfr__log(&h->log, HXFR_HOST_LOG_WARN,
                      "scanout %u: subscriber client %llu is not keeping up; dropping its "
                      "frames until it catches up (then an IDR)",
                      (unsigned)so->id, (unsigned long long)c->id);
        }
        sub->dropped++;
        h->scanouts->units_dropped++;
        sub->need_idr = true;
        sub->idr_asked = false;
        return;
    } else {
        au->refs++;
        hxfr__conn_send(&c->conn, au);
        sub->sent++;
        h->scanouts->units_sent++;
        if (keyframe) {
            sub->need_idr = false;
            sub->idr_asked = false;
        }
        return;
    }
    /* Waiting for an IDR: ask for one once, and only when the subscriber
     * can take it. One that never reads never makes everybody's stream
     * all-IDR. */
    if (!sub->idr_asked && queue_room(c, 0)) {
        sub->idr_asked = true;
        so->session->force_idr_next = true;
    }
}

/* The deliver function of a scanout session: subscribers first (sharing
 * the access unit), then the publisher's own response. */
static void scanout_deliver(struct hxfr__session *s, struct hxfr__frame *f)
{
    struct hxfr__scanout *so = s->owner;
    bool keepalive = f->keep_op == HXFR__KEEP_USE;

    if (!so) {
        /* The scanout was disabled while this frame ran. */
        if (!keepalive) {
            hxfr__session_deliver_client(s, f);
        }
        return;
    }
    struct hxfr_host *h = so->host;
    if (so->vmm && f->status != HXFR_STATUS_OK) {
        /* The encoder may not hold the picture the next damage is
         * relative to. */
        so->chain = false;
    }
    if (f->status == HXFR_STATUS_OK) {
        if (!keepalive && so->vmm) {
            so->have_picture = true;
            so->frames++;
            h->scanouts->gpu_encoded++;
            h->scanouts->gpu_damage_pixels += f->damage_pixels;
        } else if (!keepalive) {
            struct hxfr__keep *k = s->keep;
            if (hxfr__frame_pixels_in_pool(f)) {
                /* Keep the picture by taking the frame's buffer and giving
                 * it the keep's old one: no copy. */
                if (s->client) {
                    s->client->pool_bytes = s->client->pool_bytes - f->cap + k->cap;
                }
                hxfr__keep_adopt(k, f);
                if (!s->client) {
                    /* The publisher left while this frame ran: the buffer
                     * it got back belongs to nobody's pool now. */
                    free(f->buf);
                    f->buf = NULL;
                    f->cap = 0;
                }
            }
            h->scanouts->keep_copy_bytes += f->kept_bytes;
            so->have_picture = k->valid;
            so->frames++;
        }
        so->last_pts = f->pts;
        for (struct hxfr__subscriber *sub = so->subs; sub; sub = sub->next) {
            fanout_one(so, sub, f->out, f->keyframe);
        }
    } else if (keepalive) {
        hxfr__log(&h->log,
                  f->status == HXFR_STATUS_SHUTTING_DOWN ? HXFR_HOST_LOG_INFO : HXFR_HOST_LOG_ERROR,
                  "scanout %u: keepalive frame failed: %s", (unsigned)so->id, f->errmsg);
    }
    so->last_ns = hxfr__now_ns();
    so->keepalive_due_ns = so->last_ns + keepalive_ns(h);
    if (!keepalive) {
        hxfr__session_deliver_client(s, f);
    }
    if (so->pending && hxfr__queue_empty(&s->queue) && !h->stopping) {
        /* The newest published frame goes next (it runs once this one is
         * released). */
        struct hxfr__frame *p = so->pending;
        so->pending = NULL;
        hxfr__session_prepare(s, p, p->pts, false);
        hxfr__session_submit(s, p);
    }
    /* An IDR was asked for while this frame ran (a new subscriber, a
     * KEYFRAME_REQ) and nothing follows it: make it now from the kept
     * picture rather than at the next keepalive. The frame is queued and
     * runs as soon as this one is released. */
    if (s->force_idr_next && hxfr__queue_empty(&s->queue) && so->have_picture && so->nsubs > 0 &&
        !h->stopping) {
        submit_keepalive(so);
    }
    rearm(h);
}

/* ---- Subscribers' bitrate ---------------------------------------------- */

/* The stream is shared, so the lowest bitrate a current subscriber asked
 * for caps it (the publisher's own setting stays the ceiling above that):
 * no subscriber can raise another's rate, and the cap goes up again when
 * the subscriber that asked for the lowest leaves. A change reopens the
 * encoder at the next frame (an IDR). */
static void update_bitrate_cap(struct hxfr__scanout *so)
{
    uint32_t cap = 0;
    for (struct hxfr__subscriber *sub = so->subs; sub; sub = sub->next) {
        if (sub->bitrate && (cap == 0 || sub->bitrate < cap)) {
            cap = sub->bitrate;
        }
    }
    struct hxfr__session *s = so->session;
    if (cap == s->bitrate_cap) {
        return;
    }
    uint32_t before = hxfr__session_bitrate(s);
    s->bitrate_cap = cap;
    if (hxfr__session_bitrate(s) != before) {
        s->cfg_gen++;
        hxfr__log(&so->host->log, HXFR_HOST_LOG_INFO, "scanout %u: bitrate %u bit/s (%s)",
                  (unsigned)so->id, hxfr__session_bitrate(s),
                  cap ? "lowest a subscriber asked for" : "no subscriber asks any more");
        if (session_idle(s) && so->have_picture && so->nsubs > 0 && !so->host->stopping) {
            /* Subscribers see the new rate now, not at the next keepalive. */
            submit_keepalive(so);
        }
    }
}

/* ---- Lifecycle --------------------------------------------------------- */

static void sub_remove(struct hxfr__scanout *so, struct hxfr__subscriber *sub)
{
    for (struct hxfr__subscriber **p = &so->subs; *p; p = &(*p)->next) {
        if (*p == sub) {
            *p = sub->next;
            break;
        }
    }
    so->nsubs--;
    bool had_bitrate = sub->bitrate != 0;
    free(sub);
    if (had_bitrate) {
        update_bitrate_cap(so);
    }
    update_alone(so);
}

/* Ends a scanout: every subscriber gets ERROR NO_SCANOUT with reason and
 * its subscription is removed. A publisher keeps the session as a plain
 * pull-mode session; a session without a client goes with the scanout. */
static void scanout_end(struct hxfr__scanout *so, const char *reason)
{
    struct hxfr_host *h = so->host;
    struct hxfr__scanout_set *set = h->scanouts;

    while (so->subs) {
        struct hxfr__subscriber *sub = so->subs;
        /* An event, not an answer: it waits for nothing. */
        hxfr__answer_error_now(sub->client, so->id, HXFR_STATUS_NO_SCANOUT, "scanout %u %s",
                               (unsigned)so->id, reason);
        so->subs = sub->next;
        free(sub);
    }
    so->nsubs = 0;
    struct hxfr__session *s = so->session;
    if (so->pending) {
        /* Never encoded: its pixels go back now. */
        hxfr__frame_put(so->pending);
        so->pending = NULL;
        h->scanouts->gpu_skipped++;
    }
    s->owner = NULL;
    s->bitrate_cap = 0;
    s->deliver = hxfr__session_deliver_client;
    if (!s->client) {
        /* Freed now, or when its frame at a worker comes back. */
        hxfr__session_detach(s);
    } else if (session_idle(s) && s->keep) {
        /* Nothing reads the kept picture any more (no frame of the session
         * is at a worker): give its memory back now. */
        hxfr__keep_clear(s->keep);
    }
    for (struct hxfr__scanout **p = &set->list; *p; p = &(*p)->next) {
        if (*p == so) {
            *p = so->next;
            break;
        }
    }
    set->count--;
    hxfr__log(&h->log, HXFR_HOST_LOG_INFO, "scanout %u (%s) %s after %llu frames, %llu keepalives",
              (unsigned)so->id, so->connector, reason, (unsigned long long)so->frames,
              (unsigned long long)so->keepalives);
    free(so);
    rearm(h);
}

/* The scanout's session must be able to hold the publisher's full window
 * plus one keepalive frame, and own a keep. Only done while the session
 * has no frame in use. */
static int prepare_session(struct hxfr__session *s)
{
    struct hxfr_host *h = s->host;
    unsigned want = h->cfg.window + 1;

    for (unsigned i = 0; i < s->nframes; i++) {
        if (s->frames[i].state != HXFR__FRAME_FREE) {
            return -EBUSY;
        }
    }
    if (s->nframes < want) {
        struct hxfr__frame *nf = realloc(s->frames, want * sizeof(*nf));
        if (!nf) {
            return -ENOMEM;
        }
        memset(&nf[s->nframes], 0, (want - s->nframes) * sizeof(*nf));
        for (unsigned i = 0; i < want; i++) {
            nf[i].session = s;
        }
        s->frames = nf;
        s->nframes = want;
    }
    if (!s->keep) {
        s->keep = calloc(1, sizeof(*s->keep));
        if (!s->keep) {
            return -ENOMEM;
        }
    }
    return 0;
}

/* ENABLE_SCANOUT of a scanout that exists. Its publisher enables again: a
 * new size or refresh rate. A scanout without a publisher gets the sender
 * as its publisher: the scanout's session (encoder, kept picture, bitrate
 * cap) becomes the sender's session N. Another connection while a
 * publisher is there is refused: it could not publish. Returns NULL or
 * why it was refused. */
static const char *enable_again(struct hxfr__scanout *so, struct hxfr__client *c,
                                const struct hxfr_enable_scanout *q, char *why, size_t len)
{
    if (so->publisher && so->publisher != c) {
        snprintf(why, len, "published by client %llu", (unsigned long long)so->publisher->id);
        return why;
    }
    if (so->vmm) {
        snprintf(why, len, "published by the VMM");
        return why;
    }
    if (!so->publisher) {
        int r = hxfr__session_adopt(so->session, c);
        if (r < 0) {
            snprintf(why, len, "session %u: %s", (unsigned)so->id,
                     r == -EBUSY ? "frames in flight (pull mode)" : "session limit reached");
            return why;
        }
        so->publisher = c;
        update_alone(so);
    }
    so->width = q->width;
    so->height = q->height;
    so->refresh_hz = q->refresh_hz ? q->refresh_hz : 60;
    hxfr__log(&so->host->log, HXFR_HOST_LOG_INFO,
              "client %llu: scanout %u (%s) enabled again %ux%u@%u; publisher client %llu",
              (unsigned long long)c->id, (unsigned)so->id, so->connector, so->width, so->height,
              so->refresh_hz, (unsigned long long)so->publisher->id);
    return NULL;
}

static void vmm_enable_command(struct hxfr__client *c, uint16_t sid,
                               const struct hxfr_enable_scanout *q);

void hxfr__scanout_handle_enable(struct hxfr__client *c, const struct hxfr_msg *m)
{
    struct hxfr_host *h = c->host;
    struct hxfr__scanout_set *set = h->scanouts;
    const struct hxfr_enable_scanout *q = &m->u.enable_scanout;
    uint16_t sid = m->hdr.session_id;
    uint32_t id = q->scanout_id;
    const char *why = NULL;
    char whybuf[128];

    if (id > 0xFFFFu) {
        why = "scanout ids are 0..65535 (they are session ids of the frames)";
    } else if (q->width == 0 || q->height == 0 || q->width > h->cfg.max_width ||
               q->height > h->cfg.max_height) {
        snprintf(whybuf, sizeof(whybuf), "size %ux%u is outside 1x1..%ux%u", q->width, q->height,
                 h->cfg.max_width, h->cfg.max_height);
        why = whybuf;
    } else if (q->refresh_hz > 1000) {
        snprintf(whybuf, sizeof(whybuf), "refresh rate %u Hz is above 1000", q->refresh_hz);
        why = whybuf;
    } else if (h->stopping) {
        why = "server shutting down";
    }
    if (!why && h->cfg.scanout_ops.enable) {
        vmm_enable_command(c, sid, q);
        return;
    }
    struct hxfr__scanout *so = why ? NULL : scanout_find(h, id);
    if (so) {
        why = enable_again(so, c, q, whybuf, sizeof(whybuf));
        if (!why) {
            send_scanout_resp(c, sid, id, true, so->connector);
            return;
        }
    }
    if (!why && set->count >= h->cfg.max_scanouts) {
        snprintf(whybuf, sizeof(whybuf), "%u scanouts enabled (limit %u)", set->count,
                 h->cfg.max_scanouts);
        why = whybuf;
    }
    struct hxfr__session *s = NULL;
    if (!why) {
        s = hxfr__session_open(c, (uint16_t)id);
        if (!s) {
            snprintf(whybuf, sizeof(whybuf), "cannot open session %u: %s", (unsigned)id,
                     strerror(errno));
            why = whybuf;
        }
    }
    if (!why) {
        int r = prepare_session(s);
        if (r < 0) {
            snprintf(whybuf, sizeof(whybuf), "session %u: %s", (unsigned)id,
                     r == -EBUSY ? "frames in flight (pull mode)" : strerror(-r));
            why = whybuf;
        }
    }
    if (!why) {
        so = calloc(1, sizeof(*so));
        if (!so) {
            why = "out of memory";
        }
    }
    if (why) {
        hxfr__log(&h->log, HXFR_HOST_LOG_WARN, "client %llu: ENABLE_SCANOUT %u refused: %s",
                  (unsigned long long)c->id, id, why);
        send_scanout_resp(c, sid, id, false, NULL);
        return;
    }
    so->host = h;
    so->id = (uint16_t)id;
    so->publisher = c;
    so->session = s;
    so->width = q->width;
    so->height = q->height;
    so->refresh_hz = q->refresh_hz ? q->refresh_hz : 60;
    /* The guest kernel's name for it: its connectors count from 1. */
    snprintf(so->connector, sizeof(so->connector), "Virtual-%u", (unsigned)id + 1u);
    so->next = set->list;
    set->list = so;
    set->count++;
    s->owner = so;
    s->deliver = scanout_deliver;
    hxfr__log(&h->log, HXFR_HOST_LOG_INFO, "client %llu: scanout %u enabled as %s, %ux%u@%u",
              (unsigned long long)c->id, (unsigned)id, so->connector, so->width, so->height,
              so->refresh_hz);
    send_scanout_resp(c, sid, id, true, so->connector);
}

static void vmm_disable_command(struct hxfr__client *c, uint16_t sid, uint32_t id,
                                const char *connector);

void hxfr__scanout_handle_disable(struct hxfr__client *c, const struct hxfr_msg *m)
{
    struct hxfr_host *h = c->host;
    uint32_t id = m->u.disable_scanout.scanout_id;
    struct hxfr__scanout *so = scanout_find(h, id);

    if (!so) {
        hxfr__log(&h->log, HXFR_HOST_LOG_WARN, "client %llu: DISABLE_SCANOUT %u refused: %s",
                  (unsigned long long)c->id, id, "not enabled");
        send_scanout_resp(c, m->hdr.session_id, id, false, NULL);
        return;
    }
    /* Any connection may disable (Helix's manager disables on a new
     * connection of its own). */
    char connector[HXFR_CONNECTOR_LEN], reason[64];
    memcpy(connector, so->connector, sizeof(connector));
    if (so->vmm) {
        vmm_disable_command(c, m->hdr.session_id, id, connector);
        return;
    }
    if (so->publisher == c) {
        snprintf(reason, sizeof(reason), "disabled by its publisher");
    } else {
        snprintf(reason, sizeof(reason), "disabled by client %llu", (unsigned long long)c->id);
    }
    scanout_end(so, reason);
    send_scanout_resp(c, m->hdr.session_id, id, true, connector);
}

void hxfr__scanout_handle_subscribe(struct hxfr__client *c, const struct hxfr_msg *m)
{
    struct hxfr_host *h = c->host;
    uint32_t id = m->u.subscribe.scanout_id;
    struct hxfr__scanout *so = h->stopping ? NULL : scanout_find(h, id);
    const char *why = so ? NULL : "no such scanout";

    struct hxfr__subscriber *sub = so ? sub_find(so, c) : NULL;
    if (so && !sub) {
        if (so->nsubs >= h->cfg.max_subscribers) {
            why = "subscriber limit reached";
        } else if (!(sub = calloc(1, sizeof(*sub)))) {
            why = "out of memory";
        } else {
            sub->client = c;
            sub->next = so->subs;
            so->subs = sub;
            so->nsubs++;
            update_alone(so);
        }
    }
    if (why) {
        hxfr__log(&h->log, HXFR_HOST_LOG_WARN, "client %llu: SUBSCRIBE %u refused: %s",
                  (unsigned long long)c->id, id, why);
        send_subscribe_resp(c, m->hdr.session_id, id, false);
        return;
    }
    sub->seq = ++h->scanouts->next_sub_seq;
    hxfr__log(&h->log, HXFR_HOST_LOG_INFO, "client %llu subscribed to scanout %u (%u subscribers)",
              (unsigned long long)c->id, (unsigned)id, so->nsubs);
    send_subscribe_resp(c, m->hdr.session_id, id, true);
    /* It starts at an IDR, made at once from the kept picture when the
     * publisher is idle. */
    sub->need_idr = true;
    sub->idr_asked = true;
    want_idr(so);
    rearm(h);
}

bool hxfr__scanout_keyframe_req(struct hxfr__client *c, uint16_t sid)
{
    struct hxfr__scanout *so = scanout_find(c->host, sid);

    if (!so || so->publisher == c || !sub_find(so, c)) {
        return false;
    }
    hxfr__log(&c->host->log, HXFR_HOST_LOG_DEBUG, "client %llu: KEYFRAME_REQ for scanout %u",
              (unsigned long long)c->id, (unsigned)so->id);
    want_idr(so);
    return true;
}

/* The scanout a subscriber's CONFIG_REQ on session sid is for (see
 * hxfr__scanout_config_req), or NULL. */
static struct hxfr__scanout *config_target(struct hxfr__client *c, uint16_t sid,
                                           struct hxfr__subscriber **subp)
{
    struct hxfr_host *h = c->host;
    struct hxfr__scanout *so = scanout_find(h, sid);
    struct hxfr__subscriber *sub = so && so->publisher != c ? sub_find(so, c) : NULL;
    if (sub) {
        *subp = sub;
        return so;
    }
    /* Helix's subscriber sends its CONFIG_REQ on session 0 whatever it
     * subscribed to: a connection that publishes nothing and has no
     * session of that id means its latest subscription. */
    struct hxfr__scanout *best = NULL;
    for (struct hxfr__scanout *x = h->scanouts->list; x; x = x->next) {
        if (x->publisher == c) {
            return NULL;
        }
        struct hxfr__subscriber *y = sub_find(x, c);
        if (y && (!best || y->seq > (*subp)->seq)) {
            best = x;
            *subp = y;
        }
    }
    if (!best) {
        return NULL;
    }
    for (struct hxfr__session *s = c->sessions; s; s = s->next) {
        if (s->id == sid) {
            return NULL;
        }
    }
    return best;
}

const struct hxfr__session *hxfr__scanout_config_req(struct hxfr__client *c, uint16_t sid,
                                                     uint32_t bitrate, uint32_t *width,
                                                     uint32_t *height)
{
    struct hxfr__subscriber *sub = NULL;
    struct hxfr__scanout *so = config_target(c, sid, &sub);

    if (!so) {
        return NULL;
    }
    /* Nobody's stream is starved by one subscriber: a floor. */
    if (bitrate && bitrate < HXFR_HOST_SUBSCRIBER_MIN_BITRATE) {
        bitrate = HXFR_HOST_SUBSCRIBER_MIN_BITRATE;
    }
    hxfr__log(&c->host->log, HXFR_HOST_LOG_INFO,
              "client %llu: subscriber CONFIG_REQ for scanout %u: %u bit/s",
              (unsigned long long)c->id, (unsigned)so->id, bitrate);
    if (sub->bitrate != bitrate) {
        sub->bitrate = bitrate;
        update_bitrate_cap(so);
    }
    *width = so->width;
    *height = so->height;
    return so->session;
}

void hxfr__scanout_client_closed(struct hxfr__client *c)
{
    struct hxfr_host *h = c->host;
    struct hxfr__scanout_set *set = h->scanouts;

    if (!set) {
        return;
    }
    for (struct hxfr__scanout *so = set->list; so; so = so->next) {
        struct hxfr__subscriber *sub = sub_find(so, c);
        if (sub) {
            hxfr__log(&h->log, HXFR_HOST_LOG_INFO,
                      "client %llu unsubscribed from scanout %u (gone; %llu units sent, %llu "
                      "dropped)",
                      (unsigned long long)c->id, (unsigned)so->id, (unsigned long long)sub->sent,
                      (unsigned long long)sub->dropped);
            sub_remove(so, sub);
        }
        if (so->publisher == c) {
            /* The scanout outlives its publisher: its session (encoder,
             * kept picture) leaves the client and stays with the scanout,
             * which goes on sending keepalives of the last picture to its
             * subscribers until another connection publishes, someone
             * disables it, or it is alone for scanout_timeout_ms. */
            hxfr__session_disown(so->session);
            so->publisher = NULL;
            update_alone(so);
            hxfr__log(&h->log, HXFR_HOST_LOG_INFO,
                      "scanout %u (%s): publisher client %llu gone; %u subscribers stay",
                      (unsigned)so->id, so->connector, (unsigned long long)c->id, so->nsubs);
        }
    }
    rearm(h);
}

/* ---- Server-wide ------------------------------------------------------- */

int hxfr__scanouts_init(struct hxfr_host *h)
{
    if (h->cfg.keepalive_ms == 0) {
        h->cfg.keepalive_ms = HXFR_HOST_KEEPALIVE_DEFAULT_MS;
    }
    if (h->cfg.max_scanouts == 0) {
        h->cfg.max_scanouts = HXFR_HOST_MAX_SCANOUTS_DEFAULT;
    }
    if (h->cfg.max_subscribers == 0) {
        h->cfg.max_subscribers = HXFR_HOST_MAX_SUBSCRIBERS_DEFAULT;
    }
    if (h->cfg.subscriber_queue == 0) {
        h->cfg.subscriber_queue = HXFR_HOST_SUBSCRIBER_QUEUE_DEFAULT;
    }
    if (h->cfg.scanout_timeout_ms == 0) {
        h->cfg.scanout_timeout_ms = HXFR_HOST_SCANOUT_TIMEOUT_DEFAULT_MS;
    }
    struct hxfr__scanout_set *set = calloc(1, sizeof(*set));
    if (!set) {
        return -ENOMEM;
    }
    set->watch.kind = HXFR__WATCH_SCANOUT;
    set->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (set->timer_fd < 0) {
        int err = -errno;
        free(set);
        return err;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &set->watch};
    if (epoll_ctl(h->epfd, EPOLL_CTL_ADD, set->timer_fd, &ev) < 0) {
        int err = -errno;
        close(set->timer_fd);
        free(set);
        return err;
    }
    h->scanouts = set;
    return 0;
}

void hxfr__scanouts_finish(struct hxfr_host *h)
{
    struct hxfr__scanout_set *set = h->scanouts;

    if (!set) {
        return;
    }
    /* Clients are closed first, which ends their scanouts; whatever is
     * left has nobody to tell. */
    while (set->list) {
        struct hxfr__scanout *so = set->list;
        set->list = so->next;
        while (so->subs) {
            struct hxfr__subscriber *sub = so->subs;
            so->subs = sub->next;
            free(sub);
        }
        struct hxfr__session *s = so->session;
        if (so->pending) {
            hxfr__frame_put(so->pending);
        }
        s->owner = NULL;
        if (!s->client) {
            /* A scanout without a publisher owned its session. The workers
             * are finished: nothing of it runs any more. */
            hxfr__session_destroy(s);
        }
        free(so);
    }
    close(set->timer_fd);
    free(set);
    h->scanouts = NULL;
}

void hxfr__scanouts_stop(struct hxfr_host *h)
{
    rearm(h);
}

void hxfr__scanouts_stats(struct hxfr_host *h, struct hxfr_host_stats *out)
{
    struct hxfr__scanout_set *set = h->scanouts;

    out->scanouts = set->count;
    out->subscribers = 0;
    out->keep_bytes = 0;
    for (struct hxfr__scanout *so = set->list; so; so = so->next) {
        out->subscribers += so->nsubs;
        if (so->session->keep) {
            out->keep_bytes += so->session->keep->cap;
        }
    }
    out->scanout_units_sent = set->units_sent;
    out->scanout_units_dropped = set->units_dropped;
    out->keepalive_frames = set->keepalive_frames;
    out->keep_copy_bytes = set->keep_copy_bytes;
    out->gpu_flushes = set->gpu_flushes;
    out->gpu_flushes_encoded = set->gpu_encoded;
    out->gpu_flushes_skipped = set->gpu_skipped;
    out->gpu_damage_pixels = set->gpu_damage_pixels;
}

/* ---- Scanouts the embedder publishes ------------------------------------
 * (include/hxfr/host.h, "Scanouts the embedder publishes"). A VMM
 * scanout has no publishing connection: its session has no client, its
 * frames are the embedder's pixels through the gpu source, and a peer's
 * ENABLE/DISABLE is a command to the embedder. At most one frame runs and
 * one waits (so->pending, the newest); the stream follows the newest
 * picture and the guest, whose flush completes when its frame is
 * converted, is paced by the encoder. */

/* Pool frames of a VMM scanout's session: the running frame, the waiting
 * one, a keepalive or IDR made while the running one is delivered, and a
 * newer frame taken before the waiting one it replaces goes back. */
#define VMM_FRAMES 4u

/* Damage of the published frame into f->img, clipped to the picture;
 * whole (no damage) when the encoder's picture is not the one before.
 * Past HXFR_IMAGE_MAX_DAMAGE rectangles: their bounding box. */
static void vmm_damage(struct hxfr__scanout *so, struct hxfr__frame *f,
                       const struct hxfr_host_frame *fr)
{
    struct hxfr_image *img = &f->img;
    uint64_t area = 0;
    img->has_damage = so->chain && fr->damage != NULL;
    img->n_damage = 0;
    if (!img->has_damage) {
        f->damage_pixels = (uint64_t)img->width * img->height;
        return;
    }
    uint32_t bx0 = UINT32_MAX, by0 = UINT32_MAX, bx1 = 0, by1 = 0;
    for (uint32_t i = 0; i < fr->n_damage; i++) {
        const struct hxfr_host_rect *r = &fr->damage[i];
        if (r->x >= img->width || r->y >= img->height || r->width == 0 || r->height == 0) {
            continue;
        }
        uint32_t x1 = r->width > img->width - r->x ? img->width : r->x + r->width;
        uint32_t y1 = r->height > img->height - r->y ? img->height : r->y + r->height;
        bx0 = r->x < bx0 ? r->x : bx0;
        by0 = r->y < by0 ? r->y : by0;
        bx1 = x1 > bx1 ? x1 : bx1;
        by1 = y1 > by1 ? y1 : by1;
        if (img->n_damage < HXFR_IMAGE_MAX_DAMAGE) {
            img->damage[img->n_damage] = (struct hxfr_image_rect){r->x, r->y, x1 - r->x, y1 - r->y};
        }
        img->n_damage++;
        area += (uint64_t)(x1 - r->x) * (y1 - r->y);
    }
    if (img->n_damage > HXFR_IMAGE_MAX_DAMAGE) {
        img->n_damage = 1;
        img->damage[0] = (struct hxfr_image_rect){bx0, by0, bx1 - bx0, by1 - by0};
        area = (uint64_t)(bx1 - bx0) * (by1 - by0);
    }
    f->damage_pixels = area;
}

/* f (just lent) replaces the waiting frame old: what changed since the
 * frame before old is old's damage and f's together. */
static void vmm_merge_damage(struct hxfr__frame *f, const struct hxfr__frame *old)
{
    struct hxfr_image *img = &f->img;
    const struct hxfr_image *o = &old->img;
    if (!img->has_damage || !o->has_damage || o->width != img->width || o->height != img->height) {
        img->has_damage = false;
        img->n_damage = 0;
        f->damage_pixels = (uint64_t)img->width * img->height;
        return;
    }
    f->damage_pixels += old->damage_pixels;
    if (img->n_damage + o->n_damage <= HXFR_IMAGE_MAX_DAMAGE) {
        memcpy(&img->damage[img->n_damage], o->damage, o->n_damage * sizeof(o->damage[0]));
        img->n_damage += o->n_damage;
        return;
    }
    uint32_t x0 = UINT32_MAX, y0 = UINT32_MAX, x1 = 0, y1 = 0;
    for (int k = 0; k < 2; k++) {
        const struct hxfr_image *m = k ? o : img;
        for (uint32_t i = 0; i < m->n_damage; i++) {
            const struct hxfr_image_rect *r = &m->damage[i];
            x0 = r->x < x0 ? r->x : x0;
            y0 = r->y < y0 ? r->y : y0;
            x1 = r->x + r->width > x1 ? r->x + r->width : x1;
            y1 = r->y + r->height > y1 ? r->y + r->height : y1;
        }
    }
    img->n_damage = 1;
    img->damage[0] = (struct hxfr_image_rect){x0, y0, x1 - x0, y1 - y0};
    f->damage_pixels = (uint64_t)(x1 - x0) * (y1 - y0);
}

static int32_t vmm_lend(struct hxfr__scanout *so, struct hxfr__frame *f,
                        const struct hxfr_host_pixels *px, char *why, size_t len)
{
    struct hxfr_host *h = so->host;
    struct hxfr__source_args a = {
        .limits = &h->limits,
        .lent = px,
        .scanout_ops = &h->cfg.scanout_ops,
        .scanout_id = so->id,
        .why = why,
        .why_len = len,
    };
    int32_t st = hxfr__source_gpu.acquire(f, &a);
    if (st == HXFR_STATUS_OK) {
        f->source = &hxfr__source_gpu;
        /* The embedder's memory is never copied to be kept: keepalives
         * ask it for the current picture. */
        f->keep = NULL;
    }
    return st;
}

/* A keepalive or IDR of a VMM scanout: the picture it shows now, from
 * the embedder. Nothing changed since the last frame, so nothing is
 * converted unless the encoder lost its picture. */
static int vmm_keepalive_source(struct hxfr__scanout *so, struct hxfr__frame *f)
{
    struct hxfr_host *h = so->host;
    const struct hxfr_host_scanout_ops *ops = &h->cfg.scanout_ops;
    struct hxfr_host_pixels px;
    memset(&px, 0, sizeof(px));
    int r = ops->acquire(ops->opaque, so->id, &px);
    if (r < 0) {
        return r; /* nothing shown: no keepalive */
    }
    char why[160];
    int32_t st = vmm_lend(so, f, &px, why, sizeof(why));
    if (st != HXFR_STATUS_OK) {
        ops->release(ops->opaque, so->id, &px);
        hxfr__log(&h->log, HXFR_HOST_LOG_ERROR, "scanout %u: the VMM's picture: %s",
                  (unsigned)so->id, why);
        return -EINVAL;
    }
    f->img.has_damage = so->chain;
    f->img.n_damage = 0;
    f->damage_pixels = 0;
    so->chain = true;
    return 0;
}

int hxfr__scanout_vmm_enable(struct hxfr_host *h, uint32_t id, uint32_t width, uint32_t height,
                             const char *connector)
{
    struct hxfr__scanout_set *set = h->scanouts;
    const struct hxfr_host_scanout_ops *ops = &h->cfg.scanout_ops;

    if (id > 0xFFFFu || width == 0 || height == 0 || width > h->cfg.max_width ||
        height > h->cfg.max_height || !ops->acquire || !ops->release) {
        return -EINVAL;
    }
    if (h->stopping) {
        return -ESHUTDOWN;
    }
    struct hxfr__scanout *so = scanout_find(h, id);
    if (so && !so->vmm) {
        return -EBUSY;
    }
    bool created = !so;
    if (!so) {
        if (set->count >= h->cfg.max_scanouts) {
            return -ENOSPC;
        }
        so = calloc(1, sizeof(*so));
        struct hxfr__session *s = so ? hxfr__session_new(h, (uint16_t)id, VMM_FRAMES) : NULL;
        if (!s) {
            free(so);
            return -ENOMEM;
        }
        so->host = h;
        so->id = (uint16_t)id;
        so->vmm = true;
        /* The embedder can always be asked for what the scanout shows
         * (acquire): a subscriber of a still screen gets its IDR. */
        so->have_picture = true;
        so->session = s;
        s->owner = so;
        s->deliver = scanout_deliver;
        so->next = set->list;
        set->list = so;
        set->count++;
    }
    so->width = width;
    so->height = height;
    so->refresh_hz = 60;
    if (connector) {
        snprintf(so->connector, sizeof(so->connector), "%s", connector);
    } else {
        snprintf(so->connector, sizeof(so->connector), "Virtual-%u", (unsigned)id + 1u);
    }
    /* A new mode: the next picture is converted whole. */
    so->chain = false;
    hxfr__log(&h->log, HXFR_HOST_LOG_INFO, "scanout %u %s as %s, %ux%u (published by the VMM)",
              (unsigned)id, created ? "enabled" : "reconfigured", so->connector, width, height);
    if (!created && so->nsubs > 0) {
        /* Subscribers see the new mode at once. */
        want_idr(so);
    }
    rearm(h);
    return 0;
}

int hxfr__scanout_vmm_disable(struct hxfr_host *h, uint32_t id)
{
    struct hxfr__scanout *so = scanout_find(h, id);
    if (!so || !so->vmm) {
        return -ENOENT;
    }
    scanout_end(so, "disabled by the VMM");
    return 0;
}

int hxfr__scanout_vmm_publish(struct hxfr_host *h, uint32_t id, const struct hxfr_host_frame *fr)
{
    struct hxfr__scanout_set *set = h->scanouts;
    struct hxfr__scanout *so = scanout_find(h, id);

    if (!so || !so->vmm) {
        return -ENOENT;
    }
    set->gpu_flushes++;
    struct hxfr__session *s = so->session;
    struct hxfr__frame *f = so->nsubs > 0 && !h->stopping ? hxfr__session_frame_get(s) : NULL;
    if (!f) {
        /* Nobody watches (or no frame is free): nothing taken, and the
         * encoder's picture falls behind the guest's. */
        so->chain = false;
        set->gpu_skipped++;
        return 1;
    }
    char why[160];
    int32_t st = vmm_lend(so, f, &fr->pixels, why, sizeof(why));
    if (st != HXFR_STATUS_OK) {
        hxfr__log(&h->log, HXFR_HOST_LOG_ERROR, "scanout %u: published frame refused: %s",
                  (unsigned)id, why);
        so->chain = false;
        set->gpu_skipped++;
        return -EINVAL;
    }
    f->keep_op = HXFR__KEEP_NONE;
    f->pts = fr->pts;
    vmm_damage(so, f, fr);
    so->chain = true;
    if (session_idle(s)) {
        hxfr__session_prepare(s, f, fr->pts, false);
        hxfr__session_submit(s, f);
        return 0;
    }
    struct hxfr__frame *old = so->pending;
    if (old) {
        /* Replaced before its turn: released unencoded, its damage
         * carried into the newer frame. */
        vmm_merge_damage(f, old);
        hxfr__frame_put(old);
        set->gpu_skipped++;
    }
    f->state = HXFR__FRAME_FILLING;
    so->pending = f;
    return 0;
}

/* A peer's ENABLE_SCANOUT with the embedder's enable callback: a command
 * to the VMM's display. */
static void vmm_enable_command(struct hxfr__client *c, uint16_t sid,
                               const struct hxfr_enable_scanout *q)
{
    struct hxfr_host *h = c->host;
    const struct hxfr_host_scanout_ops *ops = &h->cfg.scanout_ops;
    char connector[HXFR_CONNECTOR_LEN];
    memset(connector, 0, sizeof(connector));
    /* The callback may call back in (it hot-plugs, which enables the
     * scanout): nothing of the scanout is held across it. */
    int r = ops->enable(ops->opaque, q->scanout_id, q->width, q->height,
                        q->refresh_hz ? q->refresh_hz : 60, connector, sizeof(connector));
    connector[sizeof(connector) - 1] = '\0';
    if (r == 0) {
        struct hxfr__scanout *so = scanout_find(h, q->scanout_id);
        if (!so || !so->vmm || so->width != q->width || so->height != q->height) {
            r = hxfr__scanout_vmm_enable(h, q->scanout_id, q->width, q->height,
                                         connector[0] ? connector : NULL);
        }
    }
    struct hxfr__scanout *so = r == 0 ? scanout_find(h, q->scanout_id) : NULL;
    if (!so) {
        hxfr__log(&h->log, HXFR_HOST_LOG_WARN,
                  "client %llu: ENABLE_SCANOUT %u %ux%u refused by the VMM: %s",
                  (unsigned long long)c->id, q->scanout_id, q->width, q->height,
                  strerror(r < 0 ? -r : ENOENT));
        send_scanout_resp(c, sid, q->scanout_id, false, NULL);
        return;
    }
    if (so->refresh_hz != (q->refresh_hz ? q->refresh_hz : 60)) {
        so->refresh_hz = q->refresh_hz ? q->refresh_hz : 60;
    }
    hxfr__log(&h->log, HXFR_HOST_LOG_INFO,
              "client %llu: ENABLE_SCANOUT %u %ux%u@%u: the VMM plugged in %s",
              (unsigned long long)c->id, q->scanout_id, q->width, q->height, so->refresh_hz,
              so->connector);
    send_scanout_resp(c, sid, q->scanout_id, true, so->connector);
}

/* A peer's DISABLE_SCANOUT of a VMM scanout: a command to the VMM's
 * display (unplug), then the scanout ends. */
static void vmm_disable_command(struct hxfr__client *c, uint16_t sid, uint32_t id,
                                const char *connector)
{
    struct hxfr_host *h = c->host;
    const struct hxfr_host_scanout_ops *ops = &h->cfg.scanout_ops;
    int r = ops->disable ? ops->disable(ops->opaque, id) : 0;
    if (r < 0) {
        hxfr__log(&h->log, HXFR_HOST_LOG_WARN,
                  "client %llu: DISABLE_SCANOUT %u refused by the VMM: %s",
                  (unsigned long long)c->id, id, strerror(-r));
        send_scanout_resp(c, sid, id, false, NULL);
        return;
    }
    /* The callback may have disabled it already. */
    struct hxfr__scanout *so = scanout_find(h, id);
    if (so && so->vmm) {
        char reason[64];
        snprintf(reason, sizeof(reason), "disabled by client %llu", (unsigned long long)c->id);
        scanout_end(so, reason);
    }
    send_scanout_resp(c, sid, id, true, connector);
}
