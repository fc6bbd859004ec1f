/* FRAME_REQUEST (request-frame.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "answer.h"
#include "request-frame.h"
#include "session.h"

/* Acquires f's pixels from source for the request. Returns true, or false
 * after answering the refusal (f went back to the pool). */
static bool acquire(struct hxfr__client *c, struct hxfr__session *s, struct hxfr__frame *f,
                    const struct hxfr__source_ops *source, struct hxfr__source_args *a,
                    uint16_t sid)
{
    char why[160];

    a->why = why;
    a->why_len = sizeof(why);
    int32_t status = source->acquire(f, a);
    if (status != HXFR_STATUS_OK) {
        hxfr__frame_put(f);
        hxfr__answer_error(c, sid, status, "%s", why);
        return false;
    }
    f->source = source;
    hxfr__session_prepare(s, f, a->req->pts, a->req->force_keyframe != 0);
    c->inflight++;
    return true;
}

static bool check_geometry(struct hxfr__client *c, const struct hxfr_frame_request *req,
                           uint16_t sid, struct hxfr_geometry *g)
{
    int r =
        hxfr__limits_check(&c->host->limits, req->format, req->width, req->height, req->stride, g);
    if (r < 0) {
        hxfr__answer_error(c, sid, hxfr__limits_status(r),
                           "frame %ux%u format 0x%08x stride %u: %s", req->width, req->height,
                           req->format, req->stride, hxfr_strerror(r));
        return false;
    }
    return true;
}

static int grow_buffer(void *ctx, struct hxfr__frame *f, size_t size)
{
    return hxfr__session_frame_buffer(ctx, f, size);
}

/* Pixels that follow on the socket: the client reads them into the frame's
 * pooled buffer, then submits it. */
static void frame_inline(struct hxfr__client *c, struct hxfr__session *s, const struct hxfr_msg *m,
                         uint32_t body_size)
{
    const struct hxfr_frame_request *req = &m->u.frame_request;
    uint16_t sid = m->hdr.session_id;
    struct hxfr_geometry g;

    if (!check_geometry(c, req, sid, &g)) {
        return;
    }
    struct hxfr__frame *f = hxfr__session_frame_get(s);
    if (!f) {
        hxfr__answer_error(c, sid, HXFR_STATUS_INTERNAL, "no free frame buffer");
        return;
    }
    struct hxfr__source_args a = {
        .req = req, .geom = &g, .body_size = body_size, .grow = grow_buffer, .grow_ctx = s};
    if (!acquire(c, s, f, &hxfr__source_inline, &a, sid)) {
        return;
    }
    f->state = HXFR__FRAME_FILLING;
    c->body_mode = HXFR__BODY_FRAME;
    c->body_frame = f;
}

/* A resource id for the embedder's resolver. */
static void frame_resource(struct hxfr__client *c, struct hxfr__session *s,
                           const struct hxfr_msg *m)
{
    struct hxfr_host *h = c->host;
    const struct hxfr_frame_request *req = &m->u.frame_request;
    uint16_t sid = m->hdr.session_id;

    if (!h->cfg.resolver.acquire) {
        hxfr__answer_error(c, sid, HXFR_STATUS_RESOURCE_NOT_FOUND,
                           "resource %u: this server resolves no resources "
                           "(send pixels inline)",
                           req->resource_id);
        return;
    }
    struct hxfr__frame *f = hxfr__session_frame_get(s);
    if (!f) {
        hxfr__answer_error(c, sid, HXFR_STATUS_INTERNAL, "no free frame slot");
        return;
    }
    struct hxfr__source_args a = {.req = req, .resolver = &h->cfg.resolver, .limits = &h->limits};
    if (acquire(c, s, f, &hxfr__source_resolver, &a, sid)) {
        hxfr__session_submit(s, f);
    }
}

/* Pixels in a slot of the session's shared-memory ring: validated
 * against the ring's checked layout and encoded from the mapping in place
 * (the encoder's conversion reads the slot; nothing is copied here). */
static void frame_shm(struct hxfr__client *c, const struct hxfr_msg *m)
{
    const struct hxfr_frame_request *req = &m->u.frame_request;
    uint16_t sid = m->hdr.session_id;
    struct hxfr_geometry g;

    struct hxfr__session *s = hxfr__session_find(c, sid);
    if (!s || !s->shm) {
        hxfr__answer_error(c, sid, HXFR_STATUS_SHM,
                           "slot %u: session %u has no shared-memory ring (SHM_ATTACH "
                           "first)",
                           req->resource_id, (unsigned)sid);
        return;
    }
    if (!check_geometry(c, req, sid, &g)) {
        return;
    }
    struct hxfr__frame *f = hxfr__session_frame_get(s);
    if (!f) {
        hxfr__answer_error(c, sid, HXFR_STATUS_INTERNAL, "no free frame slot");
        return;
    }
    struct hxfr__source_args a = {
        .req = req,
        .geom = &g,
        .ring = s->shm,
        .slot_release = c->hello && (c->peer_caps & HXFR_CAP_SLOT_RELEASE),
    };
    if (acquire(c, s, f, &hxfr__source_shm, &a, sid)) {
        hxfr__session_submit(s, f);
    }
}

void hxfr__request_frame(struct hxfr__client *c, const struct hxfr_msg *m, uint32_t body_size)
{
    uint16_t sid = m->hdr.session_id;
    uint8_t flags = m->hdr.flags;

    if (flags & HXFR_FLAG_SHM) {
        frame_shm(c, m);
        return;
    }
    if (!(flags & HXFR_FLAG_PIXEL_DATA) && body_size > 0) {
        hxfr__answer_error(c, sid, HXFR_STATUS_INVALID_MSG,
                           "FRAME_REQUEST without PIXEL_DATA carries %u body bytes", body_size);
        return;
    }
    struct hxfr__session *s = hxfr__session_open(c, sid);
    if (!s) {
        hxfr__answer_error(c, sid, errno == EBUSY ? HXFR_STATUS_BUSY : HXFR_STATUS_INTERNAL,
                           "cannot open session %u: %s (limit %u per client)", (unsigned)sid,
                           strerror(errno), c->host->cfg.max_sessions);
        return;
    }
    if (flags & HXFR_FLAG_PIXEL_DATA) {
        frame_inline(c, s, m, body_size);
    } else {
        frame_resource(c, s, m);
    }
}
