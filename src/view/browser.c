/* hxfr-view browsers: the WebSocket side of the gateway.
 *
 * Every browser of a scanout shares the access units the upstream
 * connection receives (reference-counted, never copied per browser); each
 * browser has a bounded queue of them and gets at most one message per
 * writable callback, so a slow browser only ever loses its own frames.
 *
 * Where input is on, a page's key, button, wheel and pointer messages go
 * to the scanout's QMP connection. Each browser remembers what it holds
 * down, and all of it is released when the page says it lost focus
 * ("release") or when its WebSocket closes, however that happens.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "view.h"

static void release_all(struct view_browser *b, const char *why);

void view_scanout_notify(struct view_scanout *so)
{
    for (struct view_browser *b = so->browsers; b; b = b->next) {
        b->status_pending = true;
        lws_callback_on_writable(b->wsi);
    }
}

/* A browser overflowed its queue: ask for a keyframe unless this browser
 * has been doing so too often (then it waits for the next natural one). */
static bool overflow_wants_keyframe(struct view_browser *b, int64_t now)
{
    if (now - b->last_overflow_us > (int64_t)VIEW_OVERFLOW_CALM_MS * 1000) {
        b->kf_backoff_ms = 0;
    }
    b->last_overflow_us = now;
    if (now < b->kf_next_us) {
        return false;
    }
    b->kf_backoff_ms = b->kf_backoff_ms ? b->kf_backoff_ms * 2 : 1000;
    if (b->kf_backoff_ms > VIEW_OVERFLOW_KF_MAX_MS) {
        b->kf_backoff_ms = VIEW_OVERFLOW_KF_MAX_MS;
    }
    b->kf_next_us = now + (int64_t)b->kf_backoff_ms * 1000;
    return true;
}

void view_scanout_distribute(struct view_scanout *so, struct hxfr_view_au *au)
{
    bool want_key = false;
    int64_t now = view_mono_us();
    for (struct view_browser *b = so->browsers; b; b = b->next) {
        switch (hxfr__view_queue_offer(&b->queue, au)) {
        case HXFR_VIEW_OFFER_QUEUED:
            lws_callback_on_writable(b->wsi);
            break;
        case HXFR_VIEW_OFFER_OVERFLOW:
            view_debug("%s: a browser fell behind; it resumes at a keyframe", so->label);
            if (overflow_wants_keyframe(b, now)) {
                want_key = true;
            }
            break;
        case HXFR_VIEW_OFFER_SKIPPED:
            break;
        }
    }
    if (want_key) {
        view_upstream_request_keyframe(so);
    }
    view_http_frame(so);
}

void view_browser_attach(struct view_gateway *gw, struct view_browser *b, struct lws *wsi,
                         struct view_scanout *so)
{
    memset(b, 0, sizeof(*b));
    b->attached = true;
    b->wsi = wsi;
    b->so = so;
    hxfr__view_queue_init(&b->queue, gw->opt.queue_frames, gw->opt.queue_bytes);
    /* The kernel would buffer megabytes for a slow TCP peer on its own
     * (send-buffer autotuning), a delay no queue bound here could see: the
     * socket counts as writable only while less than VIEW_NOTSENT_LOWAT is
     * unsent, so what waits for a browser waits in its queue, where it is
     * dropped up to the next keyframe once the queue is full. */
    int lowat = VIEW_NOTSENT_LOWAT;
    int fd = lws_get_socket_fd(wsi);
    if (fd >= 0) {
        setsockopt(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &lowat, sizeof(lowat));
    }
    b->hello_pending = true;
    b->status_pending = true;
    b->next = so->browsers;
    if (so->browsers) {
        so->browsers->prev = b;
    }
    so->browsers = b;
    so->n_browsers++;
    gw->n_browsers++;
    view_debug("%s: browser joined (%u watching)", so->label, so->n_browsers);
    view_upstream_watch(so, true);
    lws_callback_on_writable(wsi);
}

void view_browser_detach(struct view_gateway *gw, struct view_browser *b)
{
    struct view_scanout *so = b->so;
    if (!b->attached) {
        return;
    }
    b->attached = false;
    release_all(b, "closed");
    if (b->prev) {
        b->prev->next = b->next;
    } else {
        so->browsers = b->next;
    }
    if (b->next) {
        b->next->prev = b->prev;
    }
    b->next = b->prev = NULL;
    so->n_browsers--;
    gw->n_browsers--;
    hxfr__view_queue_finish(&b->queue);
    view_debug("%s: browser left (%u watching)", so->label, so->n_browsers);
    if (!gw->stopping) {
        view_upstream_unwatch(so);
    }
}

/* ---- Input --------------------------------------------------------------- */

/* Sends events a page caused, keeping its held set up to date. Events the
 * guest cannot get (QMP not ready, QEMU not reading) are dropped and leave
 * the held set as it was. */
static void send_events(struct view_browser *b, struct hxfr_view_event *ev, unsigned n)
{
    struct view_scanout *so = b->so;
    struct hxfr_view_held before = b->held;
    unsigned kept = 0;
    if (!view_qmp_ready(so->qmp)) {
        view_debug("%s: input dropped: QMP %s", so->label, view_qmp_state_name(so->qmp));
        return;
    }
    for (unsigned i = 0; i < n; i++) {
        if (hxfr__view_held_apply(&b->held, &ev[i])) {
            ev[kept++] = ev[i];
        }
    }
    if (kept > 0 && view_qmp_send(so->qmp, ev, kept, so->width, so->height, NULL) < 0) {
        b->held = before;
        view_debug("%s: input dropped: QMP output full", so->label);
    }
}

/* Releases everything this page holds. */
static void release_all(struct view_browser *b, const char *why)
{
    struct hxfr_view_event ev[HXFR_VIEW_KEYS_MAX + HXFR_VIEW_BTN_COUNT];
    if (!b->so->qmp || hxfr__view_held_empty(&b->held)) {
        return;
    }
    unsigned n = hxfr__view_held_release(&b->held, ev, sizeof(ev) / sizeof(ev[0]));
    view_debug("%s: releasing %u key(s)/button(s) of a page (%s)", b->so->label, n, why);
    if (view_qmp_ready(b->so->qmp)) {
        view_qmp_send(b->so->qmp, ev, n, b->so->width, b->so->height, NULL);
    }
    /* Not ready: qmp.c releases what the guest still holds through it as
     * soon as it reconnects. */
}

/* Clamps a page's pointer position into the picture. */
static struct hxfr_view_event move_event(const struct view_scanout *so, uint16_t x, uint16_t y)
{
    struct hxfr_view_event ev = {.type = HXFR_VIEW_EV_MOVE, .x = x, .y = y};
    if (so->width && ev.x >= so->width) {
        ev.x = (uint16_t)(so->width - 1);
    }
    if (so->height && ev.y >= so->height) {
        ev.y = (uint16_t)(so->height - 1);
    }
    return ev;
}

static void on_input(struct view_browser *b, const struct hxfr_view_input *m)
{
    struct view_scanout *so = b->so;
    struct hxfr_view_event ev[2 * (2 * HXFR_VIEW_WHEEL_MAX) + 1];
    unsigned n = 0;
    bool have_size = so->width > 0 && so->height > 0;
    switch (m->type) {
    case HXFR_VIEW_INPUT_KEY:
        if (m->key < 0) {
            return; /* a key this gateway does not know */
        }
        ev[n++] = (struct hxfr_view_event){
            .type = HXFR_VIEW_EV_KEY, .key = (int16_t)m->key, .down = m->down};
        break;
    case HXFR_VIEW_INPUT_MOVE:
        if (have_size && view_qmp_ready(so->qmp)) {
            struct hxfr_view_event mv = move_event(so, m->x, m->y);
            view_qmp_move(so->qmp, mv.x, mv.y, so->width, so->height);
        }
        return;
    case HXFR_VIEW_INPUT_BUTTON:
        if (have_size) {
            ev[n++] = move_event(so, m->x, m->y);
        }
        ev[n++] = (struct hxfr_view_event){
            .type = HXFR_VIEW_EV_BUTTON, .button = (uint8_t)m->button, .down = m->down};
        break;
    case HXFR_VIEW_INPUT_WHEEL: {
        if (have_size) {
            ev[n++] = move_event(so, m->x, m->y);
        }
        unsigned by = m->dy > 0 ? HXFR_VIEW_BTN_WHEEL_DOWN : HXFR_VIEW_BTN_WHEEL_UP;
        unsigned bx = m->dx > 0 ? HXFR_VIEW_BTN_WHEEL_RIGHT : HXFR_VIEW_BTN_WHEEL_LEFT;
        for (int k = 0; k < (m->dy < 0 ? -m->dy : m->dy); k++) {
            ev[n++] = (struct hxfr_view_event){
                .type = HXFR_VIEW_EV_BUTTON, .button = (uint8_t)by, .down = true};
            ev[n++] = (struct hxfr_view_event){.type = HXFR_VIEW_EV_BUTTON, .button = (uint8_t)by};
        }
        for (int k = 0; k < (m->dx < 0 ? -m->dx : m->dx); k++) {
            ev[n++] = (struct hxfr_view_event){
                .type = HXFR_VIEW_EV_BUTTON, .button = (uint8_t)bx, .down = true};
            ev[n++] = (struct hxfr_view_event){.type = HXFR_VIEW_EV_BUTTON, .button = (uint8_t)bx};
        }
        break;
    }
    case HXFR_VIEW_INPUT_RELEASE:
        release_all(b, "the page lost focus");
        return;
    default:
        return;
    }
    if (n > 0) {
        send_events(b, ev, n);
    }
}

/* Closes this browser only, telling it why. Returns -1 for the callback. */
static int browser_reject(struct lws *wsi, enum lws_close_status status, const char *why)
{
    view_log("closing a browser: %s", why);
    lws_close_reason(wsi, status, (unsigned char *)(uintptr_t)why, strlen(why));
    return -1;
}

int view_browser_receive(struct view_browser *b, struct lws *wsi, const void *in, size_t len)
{
    if (!b->attached) {
        return -1;
    }
    /* Messages are reassembled from however many fragments and chunks lws
     * delivers; the limit holds for the whole message. */
    if (len > sizeof(b->rx) - b->rx_len) {
        return browser_reject(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, "message too large");
    }
    memcpy(b->rx + b->rx_len, in, len);
    b->rx_len += len;
    if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi) > 0) {
        return 0;
    }
    struct hxfr_view_input msg;
    int r = hxfr__view_input_parse(b->rx, b->rx_len, lws_frame_is_binary(wsi) != 0, &msg);
    b->rx_len = 0;
    if (r < 0) {
        return browser_reject(wsi, LWS_CLOSE_STATUS_POLICY_VIOLATION, "malformed message");
    }
    if (hxfr__view_input_is_input(msg.type)) {
        if (!b->so->qmp) {
            return browser_reject(wsi, LWS_CLOSE_STATUS_POLICY_VIOLATION,
                                  "input is not enabled for this scanout");
        }
        on_input(b, &msg);
        return 0;
    }
    switch (msg.type) {
    case HXFR_VIEW_INPUT_KEYFRAME: {
        /* The browser reset its decoder: nothing queued is of use to it
         * any more, and it needs a keyframe. */
        hxfr__view_queue_resync(&b->queue);
        int64_t now = view_mono_us();
        if (now >= b->kf_next_us) {
            b->kf_next_us = now + (int64_t)VIEW_BROWSER_KF_MS * 1000;
            view_upstream_request_keyframe(b->so);
        } else {
            view_debug("%s: keyframe request rate-limited", b->so->label);
        }
        break;
    }
    case HXFR_VIEW_INPUT_PING:
        b->pong_pending = true;
        b->pong_token = msg.token;
        lws_callback_on_writable(wsi);
        break;
    default:
        break;
    }
    return 0;
}

static int write_text(struct lws *wsi, const char *text, int n)
{
    uint8_t buf[LWS_PRE + HXFR_VIEW_TEXT_MAX];
    if (n < 0 || (size_t)n > HXFR_VIEW_TEXT_MAX) {
        return -1;
    }
    memcpy(buf + LWS_PRE, text, (size_t)n);
    return lws_write(wsi, buf + LWS_PRE, (size_t)n, LWS_WRITE_TEXT) < n ? -1 : 0;
}

/* Sends one pending message. Returns 0 or -1 (close). */
int view_browser_writable(struct view_browser *b, struct lws *wsi)
{
    char text[HXFR_VIEW_TEXT_MAX];
    struct view_scanout *so = b->so;
    int r = 0;
    if (!b->attached) {
        return -1;
    }
    if (b->hello_pending) {
        b->hello_pending = false;
        struct hxfr_view_hello h = {
            .vm = so->vm->name,
            .scanout = so->id,
            .input = so->qmp != NULL,
            .time_us = view_realtime_us(),
        };
        r = write_text(wsi, text, hxfr__view_hello_format(text, sizeof(text), &h));
    } else if (b->status_pending) {
        b->status_pending = false;
        r = write_text(wsi, text,
                       hxfr__view_status_format(text, sizeof(text), so->id, so->status_state,
                                                so->status_msg, so->status_retry_ms));
    } else if (b->pong_pending) {
        b->pong_pending = false;
        r = write_text(
            wsi, text,
            hxfr__view_pong_format(text, sizeof(text), b->pong_token, view_realtime_us()));
    } else {
        struct hxfr_view_au *au = hxfr__view_queue_peek(&b->queue);
        if (au) {
            /* lws writes its frame header into the LWS_PRE bytes before msg
             * and copies whatever the socket does not take at once, so the
             * shared buffer is free for the next browser right away. */
            size_t size = au->size;
            int n = lws_write(wsi, au->msg, size, LWS_WRITE_BINARY);
            hxfr__view_queue_pop(&b->queue);
            if (n < 0 || (size_t)n < size) {
                view_debug("write to a browser failed (%d of %zu)", n, size);
                r = -1;
            }
        }
    }
    if (r < 0) {
        return -1;
    }
    if (b->hello_pending || b->status_pending || b->pong_pending || b->queue.count > 0) {
        lws_callback_on_writable(wsi);
    }
    return 0;
}
