/* What each complete message from the host does to the client
 * (client-private.h): a frame's result to on_frame, a pushed scanout unit
 * to on_stream, a slot release, an awaited reply stored for the call that
 * waits for it, an unrequested ERROR to on_event. Nothing here reads or
 * writes the fd. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "client-private.h"

void hxfr__guest_emit_event(struct hxfr_client *c, const struct hxfr_client_event *ev)
{
    if (c->o.on_event) {
        c->in_callback = true;
        c->o.on_event(c->o.user_data, ev);
        c->in_callback = false;
    }
}

void hxfr__guest_deliver(struct hxfr_client *c, struct hxfr_client_result *res)
{
    struct pending *p = &c->ring[c->head];
    c->head = (c->head + 1) % HXFR_CLIENT_MAX_WINDOW;
    c->count--;
    c->delivered++;
    if (p->slot >= 0 && !p->slot_released) {
        /* The frame's result: the host no longer reads its slot. */
        c->slots[p->slot] = SLOT_FREE;
    }
    res->user = p->user;
    res->seq = p->seq;
    res->forced_keyframe = p->forced;
    res->latency_ns = now_ns() - p->start_ns;
    if (res->status != 0) {
        res->pts = p->pts;
    }
    if (!res->remote_message) {
        res->remote_message = "";
    }
    if (!res->data) {
        /* Never NULL, so callers can memcpy(dst, data, size) blindly. */
        static const uint8_t none[1];
        res->data = none;
    }
    if (c->o.on_frame) {
        c->in_callback = true;
        c->o.on_frame(c->o.user_data, res);
        c->in_callback = false;
    }
}

static void remember_remote(struct hxfr_client *c, const struct hxfr_error *e)
{
    c->last_code = e->code;
    snprintf(c->last_message, sizeof(c->last_message), "%s", e->message);
}

/* Turns the unit list in the body into one Annex B buffer in place (each
 * unit moves left over the 4-byte size fields before it). Returns 0 and
 * the byte count in *out, or -HXFR_EUNITS. */
static int flatten_units(struct hxfr_client *c, uint32_t nal_count, size_t *out)
{
    int r = hxfr_units_validate(c->body, c->body_len, nal_count);
    if (r < 0) {
        return r;
    }
    size_t pos = 0;
    const uint8_t *unit;
    uint32_t unit_size;
    *out = 0;
    while ((r = hxfr_units_next(c->body, c->body_len, &pos, &unit, &unit_size)) > 0) {
        memmove(c->body + *out, unit, unit_size);
        *out += unit_size;
    }
    return r;
}

/* A pushed access unit of the subscribed scanout. */
static int on_stream_unit(struct hxfr_client *c, const struct hxfr_frame_response *fr)
{
    size_t out;
    int r = flatten_units(c, fr->nal_count, &out);
    if (r < 0) {
        return r;
    }
    static const uint8_t none[1];
    struct hxfr_client_result res = {
        .status = 0,
        .seq = c->stream_seq++,
        .pts = fr->pts,
        .dts = fr->dts,
        .keyframe = fr->is_keyframe != 0,
        .data = out > 0 ? c->body : none,
        .size = out,
        .nal_count = fr->nal_count,
        .remote_message = "",
    };
    c->pushed++;
    if (c->o.on_stream) {
        c->in_callback = true;
        c->o.on_stream(c->o.user_data, c->scanout, &res);
        c->in_callback = false;
    }
    return 0;
}

/* A complete FRAME_RESPONSE: hand it to the oldest frame in flight, or to
 * the stream callback when it belongs to the subscribed scanout. */
static int on_frame_response(struct hxfr_client *c, const struct hxfr_frame_response *fr)
{
    uint16_t sid = c->cur.hdr.session_id;
    if (c->subscribed && sid == c->scanout && (c->count == 0 || sid != c->o.session_id)) {
        return on_stream_unit(c, fr);
    }
    if (c->count == 0) {
        /* Units of a replaced subscription may still arrive; anything else
         * is a response nobody asked for. */
        return c->ever_subscribed ? 0 : -EPROTO;
    }
    size_t out;
    int r = flatten_units(c, fr->nal_count, &out);
    if (r < 0) {
        return r;
    }
    struct hxfr_client_result res = {
        .status = 0,
        .pts = fr->pts,
        .dts = fr->dts,
        .keyframe = fr->is_keyframe != 0,
        .data = c->body,
        .size = out,
        .nal_count = fr->nal_count,
    };
    hxfr__guest_deliver(c, &res);
    return 0;
}

/* SLOT_RELEASE: the oldest frame in flight in that slot gives it back
 * (its result will not free it again). A release for a slot with nothing
 * in flight is stale or bogus and changes nothing. */
static void on_slot_release(struct hxfr_client *c, uint32_t slot)
{
    for (unsigned i = 0; i < c->count; i++) {
        struct pending *p = &c->ring[(c->head + i) % HXFR_CLIENT_MAX_WINDOW];
        if (p->slot >= 0 && (uint32_t)p->slot == slot && !p->slot_released) {
            p->slot_released = true;
            c->slots[slot] = SLOT_FREE;
            return;
        }
    }
}

int hxfr__guest_handle_message(struct hxfr_client *c)
{
    const struct hxfr_msg *m = &c->cur;
    switch (m->hdr.type) {
    case HXFR_MSG_FRAME_RESPONSE:
        return on_frame_response(c, &m->u.frame_response);
    case HXFR_MSG_ERROR:
        remember_remote(c, &m->u.error);
        /* The host answers each session in request order (docs/protocol.md,
         * "Answer order"): an ERROR of our session while frames are in
         * flight belongs to the oldest one. Blocking requests (config,
         * hello, attach) are only sent with nothing in flight. An ERROR of
         * another session (the subscribed scanout's NO_SCANOUT, a refused
         * SUBSCRIBE) is never a frame's. */
        if (c->count > 0 && m->hdr.session_id == c->o.session_id) {
            struct hxfr_client_result res = {
                .status = -HXFR_EREMOTE,
                .remote_code = m->u.error.code,
                .remote_message = m->u.error.message,
            };
            hxfr__guest_deliver(c, &res);
        } else if (c->awaiting) {
            c->reply = *m;
            c->reply_ready = true;
        } else {
            struct hxfr_client_event ev = {
                .type = HXFR_CLIENT_EVENT_REMOTE_ERROR,
                .remote_code = m->u.error.code,
                .remote_message = m->u.error.message,
            };
            hxfr__guest_emit_event(c, &ev);
        }
        return 0;
    case HXFR_MSG_CONFIG_RESP:
    case HXFR_MSG_HELLO_RESP:
    case HXFR_MSG_SUBSCRIBE_RESP:
    case HXFR_MSG_SCANOUT_RESP:
    case HXFR_MSG_SHM_ATTACH_RESP:
        if (c->awaiting == m->hdr.type) {
            c->reply = *m;
            c->reply_ready = true;
        }
        return 0;
    case HXFR_MSG_SLOT_RELEASE:
        on_slot_release(c, m->u.slot_release.slot);
        return 0;
    case HXFR_MSG_PONG:
        if (c->pongs_received < c->pings_sent) {
            c->pongs_received++;
        }
        return 0;
    default:
        /* Other server messages are ignored: a newer host stays compatible. */
        return 0;
    }
}
