/* hxfr-view QMP client: one connection per QMP socket named by --qmp,
 * carrying input into QEMU with input-send-event.
 *
 * Like the upstreams, the socket is connected without blocking and polled
 * by the libwebsockets loop as a raw file descriptor. The protocol is
 * newline-separated JSON: QEMU greets with {"QMP":...}, we answer
 * qmp_capabilities, and from then on every command carries an "id" that
 * its reply ({"return":...} or {"error":...}) echoes; replies come in
 * command order, and {"event":...} lines are ignored. Commands that an
 * agent's HTTP request waits for are tracked by waiters (the reply to the
 * request's last command completes it).
 *
 * Output is bounded: pointer moves wait (coalesced into the latest one)
 * while more than VIEW_QMP_OUT_SOFT bytes are unsent, and other events are
 * refused (dropped, or the agent told so) past VIEW_QMP_OUT_MAX, so a QEMU
 * that stops reading costs at most that much memory. Whatever was held down when a connection was
 * lost is released as soon as the next one is ready, so a key cannot stay pressed in the guest
 * because QMP went away at the wrong moment.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "json.h"
#include "view.h"

#define US_PER_MS       1000
#define QMP_JSON_TOKENS 512u
#define QMP_CAPS_ID     0u

static void retry_cb(lws_sorted_usec_list_t *sul);

static void set_state(struct view_qmp *q, enum view_qmp_state st)
{
    q->state = st;
}

/* Completes every waiter whose last command is at or before id (all of
 * them with status when id is UINT64_MAX). */
static void complete_waiters(struct view_qmp *q, uint64_t id, int status)
{
    while (q->waiters && (id == UINT64_MAX || q->waiters->last_id <= id)) {
        struct view_qmp_waiter *w = q->waiters;
        q->waiters = w->next;
        if (q->waiters) {
            q->waiters->prev = NULL;
        }
        w->next = w->prev = NULL;
        w->linked = false;
        w->done(w, w->error && status == 0 ? -EIO : status);
    }
}

void view_qmp_forget(struct view_qmp_waiter *w)
{
    if (!w->linked) {
        return;
    }
    if (w->prev) {
        w->prev->next = w->next;
    } else {
        w->q->waiters = w->next;
    }
    if (w->next) {
        w->next->prev = w->prev;
    }
    w->next = w->prev = NULL;
    w->linked = false;
}

/* ---- Output --------------------------------------------------------------- */

static int reserve(struct view_qmp *q, size_t n)
{
    /* Compact first: what was written is gone. */
    if (q->out_off > 0) {
        memmove(q->out, q->out + q->out_off, q->out_len - q->out_off);
        q->out_len -= q->out_off;
        q->out_off = 0;
    }
    if (q->out_len + n > VIEW_QMP_OUT_MAX) {
        return -ENOBUFS;
    }
    if (q->out_len + n > q->out_cap) {
        size_t cap = q->out_cap ? q->out_cap : 16384;
        while (cap < q->out_len + n) {
            cap *= 2;
        }
        char *p = realloc(q->out, cap);
        if (!p) {
            return -ENOMEM;
        }
        q->out = p;
        q->out_cap = cap;
    }
    return 0;
}

static void want_write(struct view_qmp *q)
{
    if (q->wsi && !q->closing) {
        lws_callback_on_writable(q->wsi);
    }
}

static int append(struct view_qmp *q, const char *text, size_t n)
{
    int r = reserve(q, n);
    if (r < 0) {
        return r;
    }
    memcpy(q->out + q->out_len, text, n);
    q->out_len += n;
    want_write(q);
    return 0;
}

static size_t unsent(const struct view_qmp *q)
{
    return q->out_len - q->out_off;
}

/* Appends events as commands of at most HXFR_VIEW_QMP_EVENTS_MAX events.
 * Returns 0 or -errno; on -ENOBUFS some leading commands may be queued. */
static int append_events(struct view_qmp *q, const struct hxfr_view_event *ev, unsigned n,
                         uint32_t width, uint32_t height)
{
    static char cmd[HXFR_VIEW_QMP_CMD_MAX];
    for (unsigned i = 0; i < n; i += HXFR_VIEW_QMP_EVENTS_MAX) {
        unsigned k = n - i < HXFR_VIEW_QMP_EVENTS_MAX ? n - i : HXFR_VIEW_QMP_EVENTS_MAX;
        int len = hxfr__view_qmp_command(cmd, sizeof(cmd), ev + i, k, width, height, q->next_id);
        if (len < 0) {
            return len;
        }
        int r = append(q, cmd, (size_t)len);
        if (r < 0) {
            return r;
        }
        q->next_id++;
        q->commands++;
        q->events += k;
        for (unsigned e = 0; e < k; e++) {
            hxfr__view_held_apply(&q->held, &ev[i + e]);
        }
    }
    return 0;
}

/* The coalesced pointer move goes out once the backlog allows. */
static void flush_move(struct view_qmp *q)
{
    if (!q->move_pending || q->state != VIEW_QMP_READY || unsent(q) > VIEW_QMP_OUT_SOFT) {
        return;
    }
    struct hxfr_view_event ev = {.type = HXFR_VIEW_EV_MOVE, .x = q->mx, .y = q->my};
    if (append_events(q, &ev, 1, q->mw, q->mh) == 0) {
        q->move_pending = false;
    }
}

int view_qmp_send(struct view_qmp *q, const struct hxfr_view_event *ev, unsigned n, uint32_t width,
                  uint32_t height, struct view_qmp_waiter *w)
{
    if (q->state != VIEW_QMP_READY || q->closing) {
        return -ENOTCONN;
    }
    if (n == 0) {
        return -EINVAL;
    }
    /* A pending move belongs before these events (a click lands where the
     * pointer was moved to). */
    if (q->move_pending) {
        struct hxfr_view_event mv = {.type = HXFR_VIEW_EV_MOVE, .x = q->mx, .y = q->my};
        int r = append_events(q, &mv, 1, q->mw, q->mh);
        if (r < 0) {
            return r;
        }
        q->move_pending = false;
    }
    int r = append_events(q, ev, n, width, height);
    if (r < 0) {
        return r;
    }
    if (w) {
        w->q = q;
        w->last_id = q->next_id - 1;
        w->error = false;
        w->error_text[0] = '\0';
        /* Replies come in order, so the list stays sorted by last_id. */
        w->next = NULL;
        w->prev = NULL;
        struct view_qmp_waiter **pp = &q->waiters;
        struct view_qmp_waiter *last = NULL;
        while (*pp) {
            last = *pp;
            pp = &(*pp)->next;
        }
        *pp = w;
        w->prev = last;
        w->linked = true;
    }
    return 0;
}

int view_qmp_move(struct view_qmp *q, uint16_t x, uint16_t y, uint32_t width, uint32_t height)
{
    if (q->state != VIEW_QMP_READY || q->closing) {
        return -ENOTCONN;
    }
    q->move_pending = true;
    q->mx = x;
    q->my = y;
    q->mw = width;
    q->mh = height;
    q->moves++;
    flush_move(q);
    return 0;
}

bool view_qmp_ready(const struct view_qmp *q)
{
    return q->state == VIEW_QMP_READY && !q->closing;
}

/* ---- Connection ------------------------------------------------------------ */

static void schedule_retry(struct view_qmp *q)
{
    uint32_t delay = q->backoff_ms;
    q->backoff_ms =
        q->backoff_ms * 2 > VIEW_BACKOFF_MAX_MS ? VIEW_BACKOFF_MAX_MS : q->backoff_ms * 2;
    set_state(q, VIEW_QMP_WAIT_RETRY);
    lws_sul_schedule(q->gw->ctx, 0, &q->retry_sul, retry_cb, (lws_usec_t)delay * US_PER_MS);
}

static void connect_now(struct view_qmp *q)
{
    int fd = hxfr__transport_connect_start(&q->addr);
    if (fd < 0) {
        snprintf(q->last_error, sizeof(q->last_error), "cannot connect to %s: %s", q->uri_str,
                 hxfr_strerror(fd));
        view_debug("qmp %s: %s", q->uri_str, q->last_error);
        schedule_retry(q);
        return;
    }
    lws_adopt_desc_t desc;
    memset(&desc, 0, sizeof(desc));
    desc.vh = q->gw->vh;
    desc.type = LWS_ADOPT_RAW_FILE_DESC;
    desc.fd.filefd = fd;
    desc.vh_prot_name = view_qmp_protocol.name;
    desc.opaque = q;
    q->fd = fd;
    q->closing = false;
    q->in_len = 0;
    q->out_len = q->out_off = 0;
    q->move_pending = false;
    set_state(q, VIEW_QMP_CONNECTING);
    q->wsi = lws_adopt_descriptor_vhost_via_info(&desc);
    if (!q->wsi) {
        q->fd = -1;
        snprintf(q->last_error, sizeof(q->last_error), "cannot poll the QMP socket");
        schedule_retry(q);
        return;
    }
    lws_callback_on_writable(q->wsi);
}

static void retry_cb(lws_sorted_usec_list_t *sul)
{
    struct view_qmp *q = lws_container_of(sul, struct view_qmp, retry_sul);
    if (q->state == VIEW_QMP_WAIT_RETRY && !q->gw->stopping) {
        connect_now(q);
    }
}

/* Returns -1 for the callback after noting why (lws then closes). */
static int qmp_fail(struct view_qmp *q, const char *why)
{
    if (!q->closing) {
        snprintf(q->last_error, sizeof(q->last_error), "%s", why);
        view_log("qmp %s: %s", q->uri_str, why);
        q->closing = true;
    }
    return -1;
}

static void qmp_closed(struct view_qmp *q)
{
    bool was_ready = q->state == VIEW_QMP_READY;
    q->wsi = NULL;
    q->fd = -1;
    q->closing = false;
    q->move_pending = false;
    q->out_len = q->out_off = 0;
    complete_waiters(q, UINT64_MAX, -ENOTCONN);
    if (q->gw->stopping) {
        set_state(q, VIEW_QMP_IDLE);
        return;
    }
    if (was_ready) {
        q->backoff_ms = VIEW_BACKOFF_MIN_MS;
        q->reconnects++;
    }
    schedule_retry(q);
}

/* The connection is ready: release what the last one left held. */
static void on_ready(struct view_qmp *q)
{
    set_state(q, VIEW_QMP_READY);
    q->backoff_ms = VIEW_BACKOFF_MIN_MS;
    view_log("qmp %s: ready", q->uri_str);
    if (!hxfr__view_held_empty(&q->held)) {
        struct hxfr_view_event rel[HXFR_VIEW_KEYS_MAX + HXFR_VIEW_BTN_COUNT];
        unsigned n = hxfr__view_held_release(&q->held, rel, sizeof(rel) / sizeof(rel[0]));
        view_log("qmp %s: releasing %u key(s)/button(s) held when the last connection ended",
                 q->uri_str, n);
        append_events(q, rel, n, 0, 0);
    }
}

/* One line from QEMU. Returns 0, or -1 to close. */
static int on_line(struct view_qmp *q, const char *line, size_t len)
{
    static struct hxfr_json_tok toks[QMP_JSON_TOKENS];
    struct hxfr_json j;
    int64_t id = -1;
    if (len == 0) {
        return 0;
    }
    if (hxfr__json_parse(line, len, toks, QMP_JSON_TOKENS, &j) < 0 ||
        toks[0].type != HXFR_JSON_OBJECT) {
        return qmp_fail(q, "QEMU sent something that is not a JSON object");
    }
    if (hxfr__json_get(&j, 0, "event") >= 0) {
        return 0;
    }
    if (q->state == VIEW_QMP_GREETING) {
        static const char caps[] = "{\"execute\":\"qmp_capabilities\",\"id\":0}\n";
        if (hxfr__json_get(&j, 0, "QMP") < 0) {
            return qmp_fail(q, "no QMP greeting");
        }
        set_state(q, VIEW_QMP_CAPS);
        return append(q, caps, sizeof(caps) - 1) < 0 ? qmp_fail(q, "out of memory") : 0;
    }
    int ret = hxfr__json_get(&j, 0, "return");
    int err = hxfr__json_get(&j, 0, "error");
    if ((ret < 0) == (err < 0) ||
        hxfr__json_int(&j, hxfr__json_get(&j, 0, "id"), 0, INT64_MAX, &id) < 0) {
        return qmp_fail(q, "a QMP reply without return/error and id");
    }
    if (q->state == VIEW_QMP_CAPS) {
        if (err >= 0 || id != QMP_CAPS_ID) {
            return qmp_fail(q, "qmp_capabilities refused");
        }
        on_ready(q);
        return 0;
    }
    if (err >= 0) {
        char desc[128] = "";
        hxfr__json_str(&j, hxfr__json_get(&j, err, "desc"), desc, sizeof(desc));
        q->errors++;
        snprintf(q->last_error, sizeof(q->last_error), "input-send-event: %s", desc);
        view_log("qmp %s: %s", q->uri_str, q->last_error);
        /* The waiter whose commands include id learns of it. */
        for (struct view_qmp_waiter *w = q->waiters; w; w = w->next) {
            if ((uint64_t)id <= w->last_id) {
                w->error = true;
                snprintf(w->error_text, sizeof(w->error_text), "%s", desc);
                break;
            }
        }
    }
    q->replies++;
    complete_waiters(q, (uint64_t)id, 0);
    return 0;
}

static int on_readable(struct view_qmp *q)
{
    char buf[8192];
    for (int reads = 0; reads < 8 && !q->closing; reads++) {
        ssize_t n = read(q->fd, buf, sizeof(buf));
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                break;
            }
            return qmp_fail(q, "read failed");
        }
        if (n == 0) {
            return qmp_fail(q, "QEMU closed the QMP connection");
        }
        for (ssize_t i = 0; i < n && !q->closing; i++) {
            if (buf[i] == '\n') {
                size_t len = q->in_len;
                if (len > 0 && q->in[len - 1] == '\r') {
                    len--;
                }
                if (on_line(q, q->in, len) < 0) {
                    return -1;
                }
                q->in_len = 0;
                continue;
            }
            if (q->in_len == VIEW_QMP_LINE_MAX) {
                return qmp_fail(q, "a QMP line above the limit");
            }
            q->in[q->in_len++] = buf[i];
        }
    }
    return q->closing ? -1 : 0;
}

static int on_writable(struct view_qmp *q)
{
    if (q->closing) {
        return -1;
    }
    if (q->state == VIEW_QMP_CONNECTING) {
        int err = hxfr__transport_connect_finish(q->fd, q->addr.kind);
        if (err < 0) {
            char why[160];
            snprintf(why, sizeof(why), "cannot connect to %s: %s", q->uri_str, hxfr_strerror(err));
            return qmp_fail(q, why);
        }
        set_state(q, VIEW_QMP_GREETING);
    }
    while (unsent(q) > 0) {
        ssize_t n = send(q->fd, q->out + q->out_off, unsent(q), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                lws_callback_on_writable(q->wsi);
                return 0;
            }
            return qmp_fail(q, "write failed");
        }
        q->out_off += (size_t)n;
    }
    q->out_off = q->out_len = 0;
    flush_move(q);
    return 0;
}

static int callback_qmp(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                        size_t len)
{
    struct view_qmp *q = lws_get_opaque_user_data(wsi);
    switch (reason) {
    case LWS_CALLBACK_RAW_RX_FILE:
        return q ? on_readable(q) : -1;
    case LWS_CALLBACK_RAW_WRITEABLE_FILE:
        return q ? on_writable(q) : -1;
    case LWS_CALLBACK_RAW_CLOSE_FILE:
        if (q && q->wsi == wsi) {
            qmp_closed(q);
        }
        return 0;
    default:
        return 0;
    }
}

const struct lws_protocols view_qmp_protocol = {
    .name = "hxfr-qmp",
    .callback = callback_qmp,
};

/* ---- Setup ------------------------------------------------------------------ */

int view_qmp_init(struct view_qmp *q, struct view_gateway *gw, const char *uri)
{
    memset(q, 0, sizeof(*q));
    q->gw = gw;
    q->uri_str = uri;
    q->fd = -1;
    q->next_id = QMP_CAPS_ID + 1;
    q->backoff_ms = VIEW_BACKOFF_MIN_MS;
    int r = hxfr__uri_parse(uri, false, &q->uri);
    if (r == 0) {
        r = hxfr__transport_resolve(&q->uri, &q->addr);
    }
    if (r < 0) {
        return r;
    }
    q->in = malloc(VIEW_QMP_LINE_MAX);
    return q->in ? 0 : -ENOMEM;
}

void view_qmp_start(struct view_qmp *q)
{
    connect_now(q);
}

void view_qmp_finish(struct view_qmp *q)
{
    lws_sul_cancel(&q->retry_sul);
    /* The gateway is going away with every HTTP request: nobody to tell. */
    while (q->waiters) {
        view_qmp_forget(q->waiters);
    }
    free(q->in);
    q->in = NULL;
    free(q->out);
    q->out = NULL;
    q->out_cap = q->out_len = q->out_off = 0;
}

const char *view_qmp_state_name(const struct view_qmp *q)
{
    switch (q->state) {
    case VIEW_QMP_READY:
        return "ready";
    case VIEW_QMP_CONNECTING:
    case VIEW_QMP_GREETING:
    case VIEW_QMP_CAPS:
        return "connecting";
    default:
        return "disconnected";
    }
}
