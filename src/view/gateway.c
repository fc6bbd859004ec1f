/* hxfr-view gateway: the libwebsockets context, the fixed HTTP routes and
 * the WebSocket browsers.
 *
 * Every browser of a scanout shares the access units the upstream
 * connection receives (reference-counted, never copied per browser); each
 * browser has a bounded queue of them and gets at most one message per
 * writable callback, so a slow browser only ever loses its own frames.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "view.h"

bool view_verbose;

void view_log(const char *fmt, ...)
{
    va_list ap;
    fputs("hxfr-view: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static int64_t clock_us(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t view_realtime_us(void)
{
    return clock_us(CLOCK_REALTIME);
}

int64_t view_mono_us(void)
{
    return clock_us(CLOCK_MONOTONIC);
}

static struct view_gateway *gateway_of(struct lws *wsi)
{
    return lws_context_user(lws_get_context(wsi));
}

static struct view_vm *find_vm(struct view_gateway *gw, const char *name)
{
    for (unsigned i = 0; i < gw->n_vms; i++) {
        if (strcmp(gw->vms[i].name, name) == 0) {
            return &gw->vms[i];
        }
    }
    return NULL;
}

static struct view_scanout *find_scanout(struct view_gateway *gw, const struct view_vm *vm,
                                         uint16_t id)
{
    for (unsigned i = 0; i < gw->n_scanouts; i++) {
        if (gw->scanouts[i].vm == vm && gw->scanouts[i].id == id) {
            return &gw->scanouts[i];
        }
    }
    return NULL;
}

/* Copies a header into buf; returns buf, or NULL when the header is absent
 * or does not fit (an over-long Host or Origin is refused anyway). */
static const char *header(struct lws *wsi, enum lws_token_indexes h, char *buf, int len)
{
    int total = lws_hdr_total_length(wsi, h);
    if (total <= 0) {
        return NULL;
    }
    if (total >= len || lws_hdr_copy(wsi, buf, len, h) < 0) {
        return "\x01"; /* present but unusable: fails every check */
    }
    return buf;
}

static bool request_allowed(struct view_gateway *gw, struct lws *wsi)
{
    char host[256];
    char origin[300];
    const char *h = header(wsi, WSI_TOKEN_HOST, host, sizeof(host));
    const char *o = header(wsi, WSI_TOKEN_ORIGIN, origin, sizeof(origin));
    if (hxfr__view_check_request(h, o, gw->loopback, (unsigned)gw->port) < 0) {
        view_debug("refused request: host %s, origin %s", h ? h : "-", o ? o : "-");
        return false;
    }
    return true;
}

/* Parses a request path into *rt; returns the scanout it names (NULL for
 * a route without one, or one that is not offered). */
static struct view_scanout *route_scanout(struct view_gateway *gw, const char *path,
                                          struct hxfr_view_route *rt)
{
    if (hxfr__view_route_parse(path, strlen(path), rt) < 0) {
        return NULL;
    }
    struct view_vm *vm = find_vm(gw, rt->vm);
    return vm ? find_scanout(gw, vm, rt->scanout) : NULL;
}

/* The scanout of a WebSocket path, or NULL. */
static struct view_scanout *ws_scanout(struct view_gateway *gw, const char *path)
{
    struct hxfr_view_route rt;
    struct view_scanout *so = route_scanout(gw, path, &rt);
    return so && rt.kind == HXFR_VIEW_ROUTE_WS ? so : NULL;
}

/* ---- Browsers ----------------------------------------------------------- */

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
}

static void browser_attach(struct view_gateway *gw, struct view_browser *b, struct lws *wsi,
                           struct view_scanout *so)
{
    memset(b, 0, sizeof(*b));
    b->attached = true;
    b->wsi = wsi;
    b->so = so;
    hxfr__view_queue_init(&b->queue, gw->opt.queue_frames, gw->opt.queue_bytes);
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
    view_upstream_watch(so);
    lws_callback_on_writable(wsi);
}

static void browser_detach(struct view_gateway *gw, struct view_browser *b)
{
    struct view_scanout *so = b->so;
    if (!b->attached) {
        return;
    }
    b->attached = false;
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

/* Closes this browser only, telling it why. Returns -1 for the callback. */
static int browser_reject(struct lws *wsi, enum lws_close_status status, const char *why)
{
    view_log("closing a browser: %s", why);
    lws_close_reason(wsi, status, (unsigned char *)(uintptr_t)why, strlen(why));
    return -1;
}

static int browser_receive(struct view_browser *b, struct lws *wsi, const void *in, size_t len)
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
static int browser_writable(struct view_browser *b, struct lws *wsi)
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
            .input = false,
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

/* ---- HTTP ----------------------------------------------------------------- */

static int http_respond(struct lws *wsi, struct view_browser *b, const char *type, const void *body,
                        size_t len)
{
    uint8_t buf[LWS_PRE + 1024];
    uint8_t *start = buf + LWS_PRE;
    uint8_t *p = start;
    uint8_t *end = buf + sizeof(buf) - 1;
    static const struct {
        const char *name;
        const char *value;
    } extra[] = {
        {"cache-control:", "no-store"},
        {"x-content-type-options:", "nosniff"},
        {"referrer-policy:", "no-referrer"},
        {"x-frame-options:", "DENY"},
        /* The page talks to its own origin; the test hook may also POST
         * its report to a loopback address. */
        {"content-security-policy:",
         "default-src 'self'; connect-src 'self' ws: wss: http://127.0.0.1:* "
         "http://localhost:*; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'"},
    };
    if (lws_add_http_common_headers(wsi, HTTP_STATUS_OK, type, len, &p, end)) {
        return -1;
    }
    for (size_t i = 0; i < sizeof(extra) / sizeof(extra[0]); i++) {
        if (lws_add_http_header_by_name(wsi, (const unsigned char *)extra[i].name,
                                        (const unsigned char *)extra[i].value,
                                        (int)strlen(extra[i].value), &p, end)) {
            return -1;
        }
    }
    if (lws_finalize_write_http_header(wsi, start, &p, end)) {
        return -1;
    }
    b->http_body = body;
    b->http_len = len;
    b->http_off = 0;
    lws_callback_on_writable(wsi);
    return 0;
}

static int http_status(struct lws *wsi, unsigned code)
{
    if (lws_return_http_status(wsi, code, NULL)) {
        return -1;
    }
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

static int http_request(struct view_gateway *gw, struct view_browser *b, struct lws *wsi,
                        const char *path)
{
    b->http_body = NULL;
    if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) <= 0) {
        return http_status(wsi, HTTP_STATUS_METHOD_NOT_ALLOWED);
    }
    if (!request_allowed(gw, wsi)) {
        return http_status(wsi, HTTP_STATUS_FORBIDDEN);
    }
    struct hxfr_view_route rt;
    struct view_scanout *so = route_scanout(gw, path, &rt);
    switch (rt.kind) {
    case HXFR_VIEW_ROUTE_INDEX:
        if (gw->n_scanouts == 1) {
            char loc[96];
            uint8_t buf[LWS_PRE + 512];
            uint8_t *p = buf + LWS_PRE;
            so = &gw->scanouts[0];
            int n = snprintf(loc, sizeof(loc), "%s%s/scanout/%u", so->vm->name[0] ? "/" : "",
                             so->vm->name, so->id);
            if (lws_http_redirect(wsi, HTTP_STATUS_FOUND, (const unsigned char *)loc, n, &p,
                                  buf + sizeof(buf) - 1) < 0) {
                return -1;
            }
            return lws_http_transaction_completed(wsi) ? -1 : 0;
        }
        return http_respond(wsi, b, "text/html; charset=utf-8", gw->index_html, gw->index_len);
    case HXFR_VIEW_ROUTE_INDEX_JSON:
        return http_respond(wsi, b, "application/json", gw->index_json, gw->index_json_len);
    case HXFR_VIEW_ROUTE_SCRIPT:
        return http_respond(wsi, b, "text/javascript; charset=utf-8", hxfr__view_viewer_js,
                            hxfr__view_viewer_js_len);
    case HXFR_VIEW_ROUTE_PAGE:
        if (so) {
            return http_respond(wsi, b, "text/html; charset=utf-8", hxfr__view_viewer_html,
                                hxfr__view_viewer_html_len);
        }
        break;
    default:
        break;
    }
    return http_status(wsi, HTTP_STATUS_NOT_FOUND);
}

static int http_writable(struct view_browser *b, struct lws *wsi)
{
    uint8_t buf[LWS_PRE + 8192];
    if (!b->http_body) {
        return 0;
    }
    size_t n = b->http_len - b->http_off;
    if (n > sizeof(buf) - LWS_PRE) {
        n = sizeof(buf) - LWS_PRE;
    }
    bool last = b->http_off + n == b->http_len;
    memcpy(buf + LWS_PRE, b->http_body + b->http_off, n);
    if (lws_write(wsi, buf + LWS_PRE, n, last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) < (int)n) {
        return -1;
    }
    b->http_off += n;
    if (last) {
        b->http_body = NULL;
        return lws_http_transaction_completed(wsi) ? -1 : 0;
    }
    lws_callback_on_writable(wsi);
    return 0;
}

/* ---- The protocol callback --------------------------------------------- */

static int callback_view(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                         size_t len)
{
    struct view_browser *b = user;
    struct view_gateway *gw = gateway_of(wsi);
    char path[128];

    switch (reason) {
    case LWS_CALLBACK_HTTP:
        return http_request(gw, b, wsi, in ? (const char *)in : "");

    case LWS_CALLBACK_HTTP_WRITEABLE:
        return http_writable(b, wsi);

    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION: {
        /* Decide before the upgrade completes: unknown path, foreign
         * origin or too many browsers refuse the handshake. */
        if (lws_hdr_copy(wsi, path, sizeof(path), WSI_TOKEN_GET_URI) <= 0 ||
            !ws_scanout(gw, path)) {
            view_debug("refused WebSocket for a bad path");
            return -1;
        }
        if (!request_allowed(gw, wsi)) {
            return -1;
        }
        if (gw->n_browsers >= gw->opt.max_browsers) {
            view_log("refused a browser: %u already connected", gw->n_browsers);
            return -1;
        }
        return 0;
    }

    case LWS_CALLBACK_ESTABLISHED: {
        struct view_scanout *so = NULL;
        if (lws_hdr_copy(wsi, path, sizeof(path), WSI_TOKEN_GET_URI) > 0) {
            so = ws_scanout(gw, path);
        }
        if (!so || gw->n_browsers >= gw->opt.max_browsers) {
            return -1;
        }
        browser_attach(gw, b, wsi, so);
        return 0;
    }

    case LWS_CALLBACK_RECEIVE:
        return browser_receive(b, wsi, in, len);

    case LWS_CALLBACK_SERVER_WRITEABLE:
        return browser_writable(b, wsi);

    case LWS_CALLBACK_CLOSED:
        browser_detach(gw, b);
        return 0;

    default:
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

/* The list ends with a zeroed entry: libwebsockets 4.1 has no
 * LWS_PROTOCOL_LIST_TERM. The first protocol is the default for HTTP and
 * for WebSockets that name no subprotocol. */
static struct lws_protocols protocols[3];

/* ---- Setup ------------------------------------------------------------- */

/* The "/" page and /index.json: every VM and its scanouts. Names are
 * [A-Za-z0-9_-] and URIs are escaped, so nothing here needs more care. */
static int build_index(struct view_gateway *gw)
{
    size_t cap = 1024 + (size_t)gw->n_scanouts * 256 + (size_t)gw->n_vms * 640;
    char *h = malloc(cap);
    char *j = malloc(cap);
    if (!h || !j) {
        free(h);
        free(j);
        return -ENOMEM;
    }
    size_t hn = 0, jn = 0;
#define H(...) hn += (size_t)snprintf(h + hn, cap - hn, __VA_ARGS__)
#define J(...) jn += (size_t)snprintf(j + jn, cap - jn, __VA_ARGS__)
    H("<!doctype html>\n<html><head><meta charset=\"utf-8\">"
      "<title>hxfr-view</title></head>\n<body><h1>hxfr-view</h1>\n");
    J("{\"vms\":[");
    for (unsigned v = 0; v < gw->n_vms; v++) {
        const struct view_vm *vm = &gw->vms[v];
        char uri[2 * HXFR_URI_PATH_MAX + 300];
        hxfr__view_json_escape(uri, sizeof(uri), vm->connect, strlen(vm->connect));
        H("<h2>%s</h2>\n<ul>\n", vm->name[0] ? vm->name : "scanouts");
        J("%s{\"name\":\"%s\",\"connect\":\"%s\",\"scanouts\":[", v ? "," : "", vm->name, uri);
        bool first = true;
        for (unsigned i = 0; i < gw->n_scanouts; i++) {
            const struct view_scanout *so = &gw->scanouts[i];
            if (so->vm != vm) {
                continue;
            }
            char base[HXFR_VIEW_NAME_MAX + 24];
            snprintf(base, sizeof(base), "%s%s/scanout/%u", vm->name[0] ? "/" : "", vm->name,
                     so->id);
            H("<li><a href=\"%s\">%s</a></li>\n", base, so->label);
            J("%s{\"id\":%u,\"page\":\"%s\",\"info\":\"%s/info\"}", first ? "" : ",", so->id, base,
              base);
            first = false;
        }
        H("</ul>\n");
        J("]}");
    }
    H("</body></html>\n");
    J("]}\n");
#undef H
#undef J
    gw->index_html = h;
    gw->index_len = hn;
    gw->index_json = j;
    gw->index_json_len = jn;
    return 0;
}

/* Splits "HOST:PORT" (HOST may be [IPv6]) into iface and port. */
static int parse_http(const char *s, char *host, size_t host_len, int *port, bool *loopback)
{
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s) {
        return -EINVAL;
    }
    size_t n = (size_t)(colon - s);
    const char *h = s;
    if (h[0] == '[') {
        if (n < 3 || h[n - 1] != ']') {
            return -EINVAL;
        }
        h++;
        n -= 2;
    }
    if (n >= host_len) {
        return -EINVAL;
    }
    memcpy(host, h, n);
    host[n] = '\0';
    char *end;
    errno = 0;
    unsigned long p = strtoul(colon + 1, &end, 10);
    if (errno || *end || end == colon + 1 || p > 65535) {
        return -EINVAL;
    }
    if (strcmp(host, "localhost") == 0) {
        snprintf(host, host_len, "127.0.0.1");
    }
    *port = (int)p;
    *loopback = strncmp(host, "127.", 4) == 0 || strcmp(host, "::1") == 0;
    return 0;
}

/* Adds a scanout of vm unless it is offered already. */
static int add_scanout(struct view_gateway *gw, struct view_vm *vm, uint16_t id)
{
    if (find_scanout(gw, vm, id)) {
        return 0;
    }
    if (gw->n_scanouts == VIEW_MAX_SCANOUTS) {
        view_log("at most %u scanouts in total", VIEW_MAX_SCANOUTS);
        return -E2BIG;
    }
    view_upstream_init(&gw->scanouts[gw->n_scanouts++], vm, id);
    return 0;
}

/* One VM per --connect; its scanouts are the --scanout NAME:N naming it,
 * else every --scanout N without a name, else scanout 0. */
static int add_vms(struct view_gateway *gw, const struct view_options *opt)
{
    int r;
    for (unsigned i = 0; i < opt->n_scanouts; i++) {
        const char *name = opt->scanouts[i].vm;
        bool known = !name[0];
        for (unsigned c = 0; c < opt->n_connects && !known; c++) {
            known = strcmp(opt->connects[c].name, name) == 0;
        }
        if (!known) {
            view_log("--scanout %s:%u names no --connect %s=URI", name, opt->scanouts[i].id, name);
            return -EINVAL;
        }
    }
    for (unsigned c = 0; c < opt->n_connects; c++) {
        struct view_vm *vm = &gw->vms[gw->n_vms];
        if (find_vm(gw, opt->connects[c].name)) {
            view_log("two --connect for %s%s", opt->connects[c].name[0] ? "VM " : "",
                     opt->connects[c].name[0] ? opt->connects[c].name : "the unnamed VM");
            return -EINVAL;
        }
        memset(vm, 0, sizeof(*vm));
        vm->gw = gw;
        snprintf(vm->name, sizeof(vm->name), "%s", opt->connects[c].name);
        vm->connect = opt->connects[c].uri;
        r = view_upstream_resolve(vm);
        if (r < 0) {
            view_log("bad --connect URI '%s': %s", vm->connect, hxfr_strerror(r));
            return r;
        }
        gw->n_vms++;
        bool own = false;
        for (unsigned i = 0; i < opt->n_scanouts; i++) {
            own = own || (vm->name[0] && strcmp(opt->scanouts[i].vm, vm->name) == 0);
        }
        bool any = false;
        for (unsigned i = 0; i < opt->n_scanouts; i++) {
            const struct view_scanout_opt *so = &opt->scanouts[i];
            if (own ? strcmp(so->vm, vm->name) == 0 : !so->vm[0]) {
                r = add_scanout(gw, vm, so->id);
                if (r < 0) {
                    return r;
                }
                any = true;
            }
        }
        if (!any) {
            r = add_scanout(gw, vm, 0);
            if (r < 0) {
                return r;
            }
        }
    }
    return 0;
}

int view_gateway_init(struct view_gateway *gw, const struct view_options *opt)
{
    char iface[64];
    int port;
    int r;

    memset(gw, 0, sizeof(*gw));
    gw->opt = *opt;
    view_verbose = opt->verbose;
    r = parse_http(opt->http, iface, sizeof(iface), &port, &gw->loopback);
    if (r < 0) {
        view_log("bad --http address '%s' (want HOST:PORT, e.g. 127.0.0.1:8080)", opt->http);
        goto fail;
    }
    if (strchr(iface, ':')) {
        snprintf(gw->http_host, sizeof(gw->http_host), "[%s]", iface);
    } else {
        snprintf(gw->http_host, sizeof(gw->http_host), "%s", iface);
    }
    r = add_vms(gw, opt);
    if (r < 0) {
        goto fail;
    }
    r = build_index(gw);
    if (r < 0) {
        goto fail;
    }

    protocols[0] = (struct lws_protocols){
        .name = "hxfr-view",
        .callback = callback_view,
        .per_session_data_size = sizeof(struct view_browser),
        .rx_buffer_size = 4096,
    };
    protocols[1] = view_upstream_protocol;
    memset(&protocols[2], 0, sizeof(protocols[2]));

    static const lws_retry_bo_t retry = {
        /* Browsers answer WebSocket pings by themselves: a half-open
         * connection is found within a minute. */
        .secs_since_valid_ping = 20,
        .secs_since_valid_hangup = 50,
    };
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    info.port = port;
    info.iface = iface;
    info.protocols = protocols;
    info.vhost_name = "hxfr-view";
    info.user = gw;
    info.gid = -1;
    info.uid = -1;
    info.timeout_secs = 10;
    info.retry_and_idle_policy = &retry;
    /* Descriptors: browsers, HTTP clients, upstreams and lws's own. */
    info.fd_limit_per_thread = opt->max_browsers + gw->n_scanouts + 96;
    info.options = LWS_SERVER_OPTION_VALIDATE_UTF8;
    if (!strchr(iface, ':')) {
        info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
    }
    lws_set_log_level(opt->verbose ? (LLL_ERR | LLL_WARN) : LLL_ERR, NULL);
    gw->ctx = lws_create_context(&info);
    if (!gw->ctx) {
        view_log("cannot serve HTTP on %s", opt->http);
        r = -EADDRNOTAVAIL;
        goto fail;
    }
    gw->vh = lws_get_vhost_by_name(gw->ctx, "hxfr-view");
    gw->port = gw->vh ? lws_get_vhost_listen_port(gw->vh) : -1;
    if (!gw->vh || gw->port <= 0) {
        view_log("cannot serve HTTP on %s", opt->http);
        r = -EADDRNOTAVAIL;
        goto fail;
    }
    return 0;

fail:
    view_gateway_finish(gw);
    return r;
}

int view_gateway_run(struct view_gateway *gw, volatile int *stop)
{
    while (!*stop) {
        if (lws_service(gw->ctx, 0) < 0) {
            return -EIO;
        }
    }
    return 0;
}

void view_gateway_finish(struct view_gateway *gw)
{
    gw->stopping = true;
    for (unsigned i = 0; i < gw->n_scanouts; i++) {
        view_upstream_finish(&gw->scanouts[i]);
    }
    if (gw->ctx) {
        lws_context_destroy(gw->ctx);
        gw->ctx = NULL;
    }
    for (unsigned i = 0; i < gw->n_scanouts; i++) {
        view_upstream_finish(&gw->scanouts[i]);
    }
    free(gw->index_html);
    gw->index_html = NULL;
    free(gw->index_json);
    gw->index_json = NULL;
}
