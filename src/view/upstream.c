/* hxfr-view upstream: one HXFR subscriber connection per watched scanout.
 *
 * The socket is connected without blocking (lib/transport resolves the
 * endpoint once and starts each connect) and handed to libwebsockets as a
 * "raw file" descriptor, so it is polled by the same loop as the browsers;
 * this file does the reading and writing itself. The host is trusted more
 * than a browser but is still a peer: every message goes through the
 * bounded hxfr parser, unit lists are validated before use, and anything out
 * of protocol closes the connection and reconnects with backoff.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sps.h"
#include "view.h"

#define US_PER_MS 1000

static void set_status(struct view_scanout *so, const char *state, uint32_t retry_ms,
                       const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void set_status(struct view_scanout *so, const char *state, uint32_t retry_ms,
                       const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(so->status_msg, sizeof(so->status_msg), fmt, ap);
    va_end(ap);
    so->status_state = state;
    so->status_retry_ms = retry_ms;
    view_scanout_notify(so);
}

static void set_state(struct view_scanout *so, enum view_up_state st)
{
    so->state = st;
    so->state_since = view_mono_us();
}

/* ---- Resolving ---------------------------------------------------------- */

int view_upstream_resolve(struct view_vm *vm)
{
    int r = hxfr__uri_parse(vm->connect, false, &vm->uri);
    if (r < 0) {
        return r;
    }
    /* Names are resolved once, here, so that reconnecting never blocks the
     * loop on a DNS lookup. */
    return hxfr__transport_resolve(&vm->uri, &vm->addr);
}

/* ---- Output ------------------------------------------------------------- */

/* Encodes the next pending message into so->out. Returns false if nothing
 * is pending. */
static bool next_message(struct view_scanout *so)
{
    struct hxfr_msg m;
    memset(&m, 0, sizeof(m));
    m.hdr.session_id = so->id;
    if (so->need_subscribe) {
        so->need_subscribe = false;
        m.hdr.type = HXFR_MSG_SUBSCRIBE;
        m.u.subscribe.scanout_id = so->id;
    } else if (so->need_keyframe) {
        so->need_keyframe = false;
        m.hdr.type = HXFR_MSG_KEYFRAME_REQ;
        so->keyframe_reqs++;
    } else if (so->need_pong) {
        so->need_pong = false;
        m.hdr.type = HXFR_MSG_PONG;
    } else if (so->need_ping) {
        so->need_ping = false;
        m.hdr.type = HXFR_MSG_PING;
    } else {
        return false;
    }
    int n = hxfr_msg_encode(&m, 0, so->out, sizeof(so->out));
    if (n < 0) {
        /* Cannot happen for these fixed-size types; drop rather than send
         * something malformed. */
        view_log("%s: cannot encode %s: %s", so->label, hxfr_msg_type_name(m.hdr.type),
                 hxfr_strerror(n));
        return next_message(so);
    }
    so->out_len = (size_t)n;
    so->out_off = 0;
    return true;
}

/* Writes what is pending without blocking. Returns 0, or -errno when the
 * connection is broken. */
static int flush_output(struct view_scanout *so)
{
    if (!so->wsi || so->closing || so->state < VIEW_UP_SUBSCRIBING) {
        return 0;
    }
    for (;;) {
        if (so->out_off == so->out_len && !next_message(so)) {
            return 0;
        }
        ssize_t n = send(so->fd, so->out + so->out_off, so->out_len - so->out_off,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                lws_callback_on_writable(so->wsi);
                return 0;
            }
            return -errno;
        }
        so->out_off += (size_t)n;
    }
}

/* ---- Connection lifecycle ------------------------------------------- */

static void retry_cb(lws_sorted_usec_list_t *sul);
static void alive_cb(lws_sorted_usec_list_t *sul);
static int64_t alive_period_us(const struct view_scanout *so);
static void kf_cb(lws_sorted_usec_list_t *sul);
static void linger_cb(lws_sorted_usec_list_t *sul);

static void drop_current(struct view_scanout *so)
{
    hxfr__view_au_unref(so->cur);
    so->cur = NULL;
}

/* Starts a connection attempt now. */
static void connect_now(struct view_scanout *so)
{
    struct view_gateway *gw = so->gw;
    int fd = hxfr__transport_connect_start(&so->vm->addr);
    if (fd < 0) {
        so->state = VIEW_UP_WAIT_RETRY;
        uint32_t delay = so->backoff_ms;
        so->backoff_ms =
            so->backoff_ms * 2 > VIEW_BACKOFF_MAX_MS ? VIEW_BACKOFF_MAX_MS : so->backoff_ms * 2;
        set_status(so, "disconnected", delay, "cannot connect to %s: %s", so->vm->connect,
                   hxfr_strerror(fd));
        view_debug("%s: connect: %s; retry in %u ms", so->label, hxfr_strerror(fd), delay);
        lws_sul_schedule(gw->ctx, 0, &so->retry_sul, retry_cb, (lws_usec_t)delay * US_PER_MS);
        return;
    }
    lws_adopt_desc_t desc;
    memset(&desc, 0, sizeof(desc));
    desc.vh = gw->vh;
    desc.type = LWS_ADOPT_RAW_FILE_DESC;
    desc.fd.filefd = fd;
    desc.vh_prot_name = view_upstream_protocol.name;
    desc.opaque = so;
    so->fd = fd;
    so->closing = false;
    so->out_len = so->out_off = 0;
    so->need_subscribe = so->need_keyframe = so->need_ping = so->need_pong = false;
    hxfr_parser_init(&so->parser, gw->opt.max_au_bytes);
    set_state(so, VIEW_UP_CONNECTING);
    so->wsi = lws_adopt_descriptor_vhost_via_info(&desc);
    if (!so->wsi) {
        /* lws closed the descriptor. */
        so->fd = -1;
        so->state = VIEW_UP_WAIT_RETRY;
        set_status(so, "disconnected", so->backoff_ms, "cannot poll the upstream socket");
        lws_sul_schedule(gw->ctx, 0, &so->retry_sul, retry_cb,
                         (lws_usec_t)so->backoff_ms * US_PER_MS);
        return;
    }
    set_status(so, "connecting", 0, "connecting to %s", so->vm->connect);
    /* Writability tells when the connect finished. */
    lws_callback_on_writable(so->wsi);
    lws_sul_schedule(gw->ctx, 0, &so->alive_sul, alive_cb, alive_period_us(so));
}

/* Asks lws to close the upstream; RAW_CLOSE_FILE then schedules the retry
 * and tells the browsers `state` ("disconnected" or "unavailable") with
 * `why`. Safe from any callback. */
static void upstream_fail_as(struct view_scanout *so, const char *state, const char *why)
{
    if (!so->wsi || so->closing) {
        return;
    }
    view_log("%s: upstream: %s", so->label, why);
    snprintf(so->status_msg, sizeof(so->status_msg), "%s", why);
    so->fail_state = state;
    so->closing = true;
    lws_set_timeout(so->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

static void upstream_fail(struct view_scanout *so, const char *why)
{
    upstream_fail_as(so, "disconnected", why);
}

/* Records why a callback is about to return -1 (lws then closes the wsi). */
static int close_with(struct view_scanout *so, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int close_with(struct view_scanout *so, const char *fmt, ...)
{
    if (!so->closing) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(so->status_msg, sizeof(so->status_msg), fmt, ap);
        va_end(ap);
        so->fail_state = "disconnected";
        so->closing = true;
        view_log("%s: upstream: %s", so->label, so->status_msg);
    }
    return -1;
}

/* The wsi is gone (lws closed the descriptor): clean up and decide what
 * comes next. */
static void upstream_closed(struct view_scanout *so)
{
    struct view_gateway *gw = so->gw;
    bool was_streaming = so->state == VIEW_UP_STREAMING;
    const char *state = so->fail_state ? so->fail_state : "disconnected";
    so->wsi = NULL;
    so->fd = -1;
    so->closing = false;
    so->fail_state = NULL;
    drop_current(so);
    lws_sul_cancel(&so->alive_sul);
    lws_sul_cancel(&so->kf_sul);
    so->kf_wanted = false;
    if (so->n_browsers + so->n_api == 0 || gw->stopping) {
        set_state(so, VIEW_UP_IDLE);
        return;
    }
    if (was_streaming) {
        /* A stream that worked is retried quickly. */
        so->backoff_ms = VIEW_BACKOFF_MIN_MS;
    }
    so->reconnects++;
    uint32_t delay = so->backoff_ms;
    so->backoff_ms =
        so->backoff_ms * 2 > VIEW_BACKOFF_MAX_MS ? VIEW_BACKOFF_MAX_MS : so->backoff_ms * 2;
    set_state(so, VIEW_UP_WAIT_RETRY);
    char msg[sizeof(so->status_msg)];
    snprintf(msg, sizeof(msg), "%s", so->status_msg[0] ? so->status_msg : "connection lost");
    set_status(so, state, delay, "%s", msg);
    lws_sul_schedule(gw->ctx, 0, &so->retry_sul, retry_cb, (lws_usec_t)delay * US_PER_MS);
}

static void retry_cb(lws_sorted_usec_list_t *sul)
{
    struct view_scanout *so = lws_container_of(sul, struct view_scanout, retry_sul);
    if (so->state != VIEW_UP_WAIT_RETRY) {
        return;
    }
    if (so->n_browsers + so->n_api == 0) {
        set_state(so, VIEW_UP_IDLE);
        return;
    }
    connect_now(so);
}

/* How often alive_cb runs, and after how much silence it sends PING:
 * both scale down with a short --upstream-timeout. */
static int64_t alive_period_us(const struct view_scanout *so)
{
    uint32_t ms = so->gw->opt.dead_ms / 4;
    return (int64_t)(ms < 1000 ? ms : 1000) * US_PER_MS;
}

static int64_t ping_idle_us(const struct view_scanout *so)
{
    uint32_t ms = so->gw->opt.dead_ms / 4;
    return (int64_t)(ms < VIEW_PING_IDLE_MS ? ms : VIEW_PING_IDLE_MS) * US_PER_MS;
}

/* Periodically: connect timeout, idle PING, dead-peer detection. */
static void alive_cb(lws_sorted_usec_list_t *sul)
{
    struct view_scanout *so = lws_container_of(sul, struct view_scanout, alive_sul);
    if (!so->wsi || so->closing) {
        return;
    }
    int64_t now = view_mono_us();
    if (so->state == VIEW_UP_CONNECTING) {
        if (now - so->state_since > (int64_t)VIEW_CONNECT_TIMEOUT_MS * US_PER_MS) {
            upstream_fail(so, "connect timed out");
            return;
        }
    } else {
        int64_t quiet = now - so->last_rx;
        if (quiet > (int64_t)so->gw->opt.dead_ms * US_PER_MS) {
            upstream_fail(so, "upstream silent, reconnecting");
            return;
        }
        /* PING when the host has been quiet, and now and then anyway: a
         * subscriber otherwise never sends anything, and a host may cut
         * connections that stay silent. */
        int64_t since_ping = now - so->last_ping;
        if ((quiet > ping_idle_us(so) && since_ping > ping_idle_us(so)) ||
            since_ping > (int64_t)VIEW_PING_EVERY_MS * US_PER_MS) {
            so->last_ping = now;
            so->need_ping = true;
            if (flush_output(so) < 0) {
                upstream_fail(so, "write failed");
                return;
            }
        }
    }
    lws_sul_schedule(so->gw->ctx, 0, &so->alive_sul, alive_cb, alive_period_us(so));
}

static void linger_cb(lws_sorted_usec_list_t *sul)
{
    struct view_scanout *so = lws_container_of(sul, struct view_scanout, linger_sul);
    if (so->n_browsers + so->n_api > 0) {
        return;
    }
    view_debug("%s: nobody watching, closing upstream", so->label);
    lws_sul_cancel(&so->retry_sul);
    if (so->wsi) {
        upstream_fail(so, "nobody watching");
    } else {
        set_state(so, VIEW_UP_IDLE);
    }
}

/* ---- Keyframe requests -------------------------------------------------- */

static void send_keyframe_req(struct view_scanout *so)
{
    so->kf_wanted = false;
    so->kf_last = view_mono_us();
    so->need_keyframe = true;
    view_debug("%s: KEYFRAME_REQ", so->label);
    if (flush_output(so) < 0) {
        upstream_fail(so, "write failed");
    }
}

static void kf_cb(lws_sorted_usec_list_t *sul)
{
    struct view_scanout *so = lws_container_of(sul, struct view_scanout, kf_sul);
    if (so->kf_wanted && so->state == VIEW_UP_STREAMING && !so->closing) {
        send_keyframe_req(so);
    }
}

void view_upstream_request_keyframe(struct view_scanout *so)
{
    /* Before the subscription is up there is nothing to ask: a new
     * subscription starts with an IDR anyway. */
    if (so->state != VIEW_UP_STREAMING || so->closing || so->kf_wanted) {
        return;
    }
    int64_t since = view_mono_us() - so->kf_last;
    int64_t interval = (int64_t)VIEW_KEYFRAME_INTERVAL_MS * US_PER_MS;
    if (since >= interval) {
        send_keyframe_req(so);
        return;
    }
    so->kf_wanted = true;
    lws_sul_schedule(so->gw->ctx, 0, &so->kf_sul, kf_cb, interval - since);
}

/* ---- Incoming messages -------------------------------------------------- */

static void on_subscribe_resp(struct view_scanout *so, const struct hxfr_subscribe_resp *r)
{
    if (so->state != VIEW_UP_SUBSCRIBING || r->scanout_id != so->id) {
        upstream_fail(so, "unexpected SUBSCRIBE_RESP");
        return;
    }
    if (!r->success) {
        char why[64];
        snprintf(why, sizeof(why), "scanout %u is not available", so->id);
        upstream_fail_as(so, "unavailable", why);
        return;
    }
    set_state(so, VIEW_UP_STREAMING);
    so->new_stream = true;
    so->kf_last = 0;
    set_status(so, "streaming", 0, "subscribed to scanout %u", so->id);
    view_log("%s: subscribed", so->label);
}

static void on_error(struct view_scanout *so, const struct hxfr_error *e)
{
    char why[sizeof(so->status_msg)];
    snprintf(why, sizeof(why), "host error %s: %.120s", hxfr_status_name(e->code), e->message);
    if (so->state == VIEW_UP_SUBSCRIBING) {
        upstream_fail_as(so, "unavailable", why);
        return;
    }
    if (e->code == HXFR_STATUS_NO_SCANOUT || e->code == HXFR_STATUS_SHUTTING_DOWN) {
        upstream_fail(so, why);
        return;
    }
    /* Anything else (a refused keyframe request, say) leaves the stream
     * running; the browsers see the text. */
    view_log("%s: %s", so->label, why);
    set_status(so, "streaming", 0, "%s", why);
}

static void on_frame_start(struct view_scanout *so, const struct hxfr_msg *m, uint32_t body)
{
    const struct hxfr_frame_response *fr = &m->u.frame_response;
    if (so->state != VIEW_UP_STREAMING || m->hdr.session_id != so->id) {
        view_debug("%s: ignoring FRAME_RESPONSE for session %u", so->label, m->hdr.session_id);
        return;
    }
    if (body == 0 || fr->nal_count == 0) {
        return;
    }
    struct hxfr_view_au *au = hxfr__view_au_new(LWS_PRE, HXFR_VIEW_FRAME_HEADER_SIZE + body);
    if (!au) {
        upstream_fail(so, "out of memory for an access unit");
        return;
    }
    so->cur = au;
    so->cur_fill = 0;
    so->cur_body = body;
    so->cur_nal_count = fr->nal_count;
    so->cur_keyframe = fr->is_keyframe != 0;
    so->cur_pts = fr->pts;
    so->cur_recv_us = view_realtime_us();
}

static void on_frame_done(struct view_scanout *so)
{
    struct hxfr_view_au *au = so->cur;
    so->cur = NULL;
    uint8_t *data = au->msg + HXFR_VIEW_FRAME_HEADER_SIZE;
    long n = hxfr__view_units_to_annexb(data, so->cur_body, so->cur_nal_count);
    if (n < 0) {
        hxfr__view_au_unref(au);
        upstream_fail(so, "malformed FRAME_RESPONSE unit list");
        return;
    }
    struct hxfr_view_frame_header h = {
        .type = HXFR_VIEW_TYPE_FRAME,
        .flags = (uint16_t)((so->cur_keyframe ? HXFR_VIEW_FLAG_KEYFRAME : 0) |
                            (so->new_stream ? HXFR_VIEW_FLAG_NEW_STREAM : 0)),
        .seq = so->seq++,
        .scanout_id = so->id,
        .pts = so->cur_pts,
        .recv_us = so->cur_recv_us,
    };
    so->new_stream = false;
    if (so->cur_keyframe) {
        /* Pointer coordinates and agents need the picture size. */
        uint32_t w, hh;
        if (hxfr__view_sps_size(data, (size_t)n, &w, &hh) == 0) {
            so->width = w;
            so->height = hh;
        }
    }
    hxfr__view_frame_header_encode(au->msg, &h);
    au->size = HXFR_VIEW_FRAME_HEADER_SIZE + (size_t)n;
    au->keyframe = so->cur_keyframe;
    au->seq = h.seq;
    so->frames_in++;
    so->keyframes_in += so->cur_keyframe;
    so->bytes_in += (uint64_t)n;
    hxfr__view_window_add(&so->rx_window, view_mono_us(), (uint32_t)n, -1);
    view_scanout_distribute(so, au);
    hxfr__view_au_unref(au);
}

/* Handles one parser event. */
static void on_event(struct view_scanout *so, const struct hxfr_parse_result *res)
{
    if (res->event == HXFR_PARSE_BODY) {
        if (so->cur) {
            memcpy(so->cur->msg + HXFR_VIEW_FRAME_HEADER_SIZE + so->cur_fill, res->chunk,
                   res->chunk_size);
            so->cur_fill += res->chunk_size;
            if (res->body_remaining == 0) {
                on_frame_done(so);
            }
        }
        return;
    }
    const struct hxfr_msg *m = &res->msg;
    switch (m->hdr.type) {
    case HXFR_MSG_FRAME_RESPONSE:
        on_frame_start(so, m, res->body_size);
        break;
    case HXFR_MSG_SUBSCRIBE_RESP:
        on_subscribe_resp(so, &m->u.subscribe_resp);
        break;
    case HXFR_MSG_ERROR:
        on_error(so, &m->u.error);
        break;
    case HXFR_MSG_PING:
        so->need_pong = true;
        break;
    case HXFR_MSG_PONG:
        break;
    default:
        view_debug("%s: ignoring %s", so->label,
                   hxfr_msg_type_name(m->hdr.type) ? hxfr_msg_type_name(m->hdr.type) : "?");
        break;
    }
}

/* Reads what the socket has (bounded per call so browsers get their turn).
 * Returns 0 to keep the connection, -1 to close it. */
static int on_readable(struct view_scanout *so)
{
    struct view_gateway *gw = so->gw;
    for (int reads = 0; reads < 16 && !so->closing; reads++) {
        ssize_t n = read(so->fd, gw->rbuf, sizeof(gw->rbuf));
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                break;
            }
            return close_with(so, "read: %s", strerror(errno));
        }
        if (n == 0) {
            return close_with(so, "the host closed the connection");
        }
        so->last_rx = view_mono_us();
        size_t off = 0;
        while (off < (size_t)n && !so->closing) {
            struct hxfr_parse_result res;
            int used = hxfr_parser_feed(&so->parser, gw->rbuf + off, (size_t)n - off, &res);
            if (used < 0) {
                return close_with(so, "protocol error: %s", hxfr_strerror(used));
            }
            off += (size_t)used;
            if (res.event != HXFR_PARSE_NEED_MORE) {
                on_event(so, &res);
            }
        }
    }
    if (so->closing) {
        return -1;
    }
    if (flush_output(so) < 0) {
        return close_with(so, "write failed");
    }
    return 0;
}

/* The socket became writable: either the connect finished or output that
 * hit EAGAIN can go on. */
static int on_writable(struct view_scanout *so)
{
    if (so->closing) {
        return -1;
    }
    if (so->state == VIEW_UP_CONNECTING) {
        int err = hxfr__transport_connect_finish(so->fd, so->vm->addr.kind);
        if (err < 0) {
            return close_with(so, "cannot connect to %s: %s", so->vm->connect, hxfr_strerror(err));
        }
        set_state(so, VIEW_UP_SUBSCRIBING);
        so->last_rx = view_mono_us();
        so->last_ping = so->last_rx;
        so->need_subscribe = true;
        set_status(so, "subscribing", 0, "subscribing to scanout %u", so->id);
    }
    if (flush_output(so) < 0) {
        return close_with(so, "write failed");
    }
    return 0;
}

static int callback_upstream(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                             void *in, size_t len)
{
    struct view_scanout *so = lws_get_opaque_user_data(wsi);
    switch (reason) {
    case LWS_CALLBACK_RAW_RX_FILE:
        return so ? on_readable(so) : -1;
    case LWS_CALLBACK_RAW_WRITEABLE_FILE:
        return so ? on_writable(so) : -1;
    case LWS_CALLBACK_RAW_CLOSE_FILE:
        if (so && so->wsi == wsi) {
            upstream_closed(so);
        }
        return 0;
    default:
        return 0;
    }
}

const struct lws_protocols view_upstream_protocol = {
    .name = "hxfr-upstream",
    .callback = callback_upstream,
};

/* ---- Watching ------------------------------------------------------------ */

void view_upstream_init(struct view_scanout *so, struct view_vm *vm, uint16_t id)
{
    memset(so, 0, sizeof(*so));
    so->gw = vm->gw;
    so->vm = vm;
    so->id = id;
    if (vm->name[0]) {
        snprintf(so->label, sizeof(so->label), "%s scanout %u", vm->name, id);
    } else {
        snprintf(so->label, sizeof(so->label), "scanout %u", id);
    }
    so->fd = -1;
    so->backoff_ms = VIEW_BACKOFF_MIN_MS;
    so->status_state = "idle";
    snprintf(so->status_msg, sizeof(so->status_msg), "not connected");
}

void view_upstream_watch(struct view_scanout *so, bool want_keyframe)
{
    lws_sul_cancel(&so->linger_sul);
    if (so->state == VIEW_UP_IDLE && !so->wsi) {
        so->backoff_ms = VIEW_BACKOFF_MIN_MS;
        connect_now(so);
    } else if (want_keyframe) {
        /* A new browser starts at a keyframe. */
        view_upstream_request_keyframe(so);
    }
}

void view_upstream_unwatch(struct view_scanout *so)
{
    if (so->n_browsers + so->n_api == 0) {
        lws_sul_schedule(so->gw->ctx, 0, &so->linger_sul, linger_cb,
                         (lws_usec_t)VIEW_LINGER_MS * US_PER_MS);
    }
}

void view_upstream_finish(struct view_scanout *so)
{
    lws_sul_cancel(&so->retry_sul);
    lws_sul_cancel(&so->alive_sul);
    lws_sul_cancel(&so->kf_sul);
    lws_sul_cancel(&so->linger_sul);
    drop_current(so);
}
