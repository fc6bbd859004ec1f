/* hxfr-view HTTP: the fixed routes (index, page, script) and the agent
 * API (info, input; docs/viewer.md).
 *
 * Static answers are written at once. The agent's requests may wait: for
 * the scanout's first frame (its size), and for QEMU to answer the QMP
 * commands they caused. Their answer is then written from the writable
 * callback; a deadline (VIEW_API_TIMEOUT_MS) bounds the wait. While a
 * request is in progress it keeps its scanout's upstream connected, as a
 * watching browser does.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "view.h"

#define US_PER_MS 1000

/* ---- Responses ------------------------------------------------------------ */

struct header_kv {
    const char *name; /* with the colon */
    const char *value;
};

/* Writes the status line and headers (the common security headers, then
 * extra, n_extra of them). Returns 0 or -1. */
static int write_headers(struct lws *wsi, unsigned status, const char *type, size_t len,
                         const struct header_kv *extra, size_t n_extra)
{
    uint8_t buf[LWS_PRE + 2048];
    uint8_t *start = buf + LWS_PRE;
    uint8_t *p = start;
    uint8_t *end = buf + sizeof(buf) - 1;
    static const struct header_kv common[] = {
        {"cache-control:", "no-store"},
        {"x-content-type-options:", "nosniff"},
        {"referrer-policy:", "no-referrer"},
        {"x-frame-options:", "DENY"},
        /* The page talks to its own origin; the test hook may also POST
         * its report to a loopback address. */
        {"content-security-policy:",
         "default-src 'self'; connect-src 'self' ws: wss: http://127.0.0.1:* "
         "http://localhost:*; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
         "frame-ancestors 'none'"},
    };
    if (lws_add_http_common_headers(wsi, status, type, len, &p, end)) {
        return -1;
    }
    for (size_t k = 0; k < 2; k++) {
        const struct header_kv *h = k ? extra : common;
        size_t n = k ? n_extra : sizeof(common) / sizeof(common[0]);
        for (size_t i = 0; i < n; i++) {
            if (lws_add_http_header_by_name(wsi, (const unsigned char *)h[i].name,
                                            (const unsigned char *)h[i].value,
                                            (int)strlen(h[i].value), &p, end)) {
                return -1;
            }
        }
    }
    return lws_finalize_write_http_header(wsi, start, &p, end) ? -1 : 0;
}

/* Answers at once with a body that outlives the request (borrowed). */
static int respond_static(struct lws *wsi, struct view_browser *b, const char *type,
                          const void *body, size_t len)
{
    if (write_headers(wsi, HTTP_STATUS_OK, type, len, NULL, 0) < 0) {
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

/* Prepares an answer with a body we own (text, taken over), to be written
 * from the writable callback: now or later, whichever the caller is in. */
static void answer(struct view_browser *b, unsigned status, const char *type, char *body,
                   size_t len)
{
    free(b->http_owned);
    b->http_owned = body;
    b->http_body = (const uint8_t *)body;
    b->http_len = body ? len : 0;
    b->http_off = 0;
    b->http_status = status;
    b->http_type = type;
    b->http_headers_pending = true;
    lws_callback_on_writable(b->http_wsi);
}

static void answer_json(struct view_browser *b, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void answer_json(struct view_browser *b, unsigned status, const char *fmt, ...)
{
    va_list ap;
    char *text = NULL;
    va_start(ap, fmt);
    int n = vasprintf(&text, fmt, ap);
    va_end(ap);
    if (n < 0) {
        text = NULL;
        n = 0;
        status = HTTP_STATUS_INTERNAL_SERVER_ERROR;
    }
    answer(b, status, "application/json", text, (size_t)n);
}

/* {"error":"why"} with why escaped. */
static void answer_error(struct view_browser *b, unsigned status, const char *why)
{
    char esc[512];
    hxfr__view_json_escape(esc, sizeof(esc), why, strlen(why));
    answer_json(b, status, "{\"error\":\"%s\"}\n", esc);
}

/* ---- Agent requests: watching, waiting, finishing ------------------------ */

static void api_deadline(lws_sorted_usec_list_t *sul);

/* The request keeps its scanout's upstream open until it is answered. */
static void api_watch(struct view_browser *b, struct view_scanout *so)
{
    b->http_so = so;
    b->http_watching = true;
    so->n_api++;
    view_upstream_watch(so, false);
    lws_sul_schedule(lws_get_context(b->http_wsi), 0, &b->api_sul, api_deadline,
                     (lws_usec_t)VIEW_API_TIMEOUT_MS * US_PER_MS);
}

static void stop_waiting(struct view_browser *b)
{
    if (!b->api_waiting) {
        return;
    }
    struct view_browser **pp = &b->http_so->api_waiting;
    while (*pp && *pp != b) {
        pp = &(*pp)->api_next;
    }
    if (*pp) {
        *pp = b->api_next;
    }
    b->api_next = NULL;
    b->api_waiting = false;
}

/* Ends whatever an agent request holds (it was answered or went away). */
static void api_finish(struct view_browser *b)
{
    if (b->http_wsi) {
        lws_sul_cancel(&b->api_sul);
    }
    view_qmp_forget(&b->waiter);
    stop_waiting(b);
    if (b->http_watching) {
        b->http_watching = false;
        b->http_so->n_api--;
        if (!b->http_so->gw->stopping) {
            view_upstream_unwatch(b->http_so);
        }
    }
    free(b->post);
    b->post = NULL;
    b->post_len = 0;
    b->post_too_big = false;
}

static void api_deadline(lws_sorted_usec_list_t *sul)
{
    struct view_browser *b = lws_container_of(sul, struct view_browser, api_sul);
    api_finish(b);
    answer_error(b, HTTP_STATUS_GATEWAY_TIMEOUT,
                 "timed out (no frame from the host, or QEMU did not answer)");
}

/* ---- Input ------------------------------------------------------------------ */

static void input_done(struct view_qmp_waiter *w, int status)
{
    struct view_browser *b = lws_container_of(w, struct view_browser, waiter);
    unsigned events = b->api_events;
    char why[sizeof(w->error_text) + 32];
    api_finish(b);
    if (status == 0) {
        answer_json(b, HTTP_STATUS_OK, "{\"ok\":true,\"events\":%u}\n", events);
    } else if (status == -EIO) {
        snprintf(why, sizeof(why), "QEMU refused the input: %s", w->error_text);
        answer_error(b, HTTP_STATUS_BAD_GATEWAY, why);
    } else {
        answer_error(b, HTTP_STATUS_SERVICE_UNAVAILABLE, "the QMP connection was lost");
    }
}

/* Runs a POST /input body once the scanout's size is known. */
static void input_run(struct view_browser *b)
{
    static struct hxfr_view_event ev[HXFR_VIEW_API_EVENTS_MAX];
    struct view_scanout *so = b->http_so;
    char err[160];
    struct hxfr_view_pointer ptr = {.x = so->api_x, .y = so->api_y, .known = so->api_known};
    int n = hxfr__view_actions_parse(b->post ? b->post : "", b->post_len, so->width, so->height,
                                     &ptr, ev, HXFR_VIEW_API_EVENTS_MAX, err, sizeof(err));
    if (n < 0) {
        api_finish(b);
        answer_error(b, n == -E2BIG ? HTTP_STATUS_REQ_ENTITY_TOO_LARGE : HTTP_STATUS_BAD_REQUEST,
                     err);
        return;
    }
    if (!view_qmp_ready(so->qmp)) {
        api_finish(b);
        answer_error(b, HTTP_STATUS_SERVICE_UNAVAILABLE, "QMP is not connected");
        return;
    }
    b->api_events = (unsigned)n;
    b->waiter.done = input_done;
    int r = n > 0 ? view_qmp_send(so->qmp, ev, (unsigned)n, so->width, so->height, &b->waiter) : 0;
    if (r < 0) {
        api_finish(b);
        answer_error(b, HTTP_STATUS_SERVICE_UNAVAILABLE,
                     r == -ENOBUFS ? "QEMU is not reading its QMP socket" : "QMP refused");
        return;
    }
    so->api_x = ptr.x;
    so->api_y = ptr.y;
    so->api_known = ptr.known;
    if (n == 0) {
        input_done(&b->waiter, 0);
    }
}

void view_http_frame(struct view_scanout *so)
{
    while (so->api_waiting && so->width > 0) {
        struct view_browser *b = so->api_waiting;
        stop_waiting(b);
        if (b->route.kind == HXFR_VIEW_ROUTE_INPUT) {
            input_run(b);
        }
    }
}

static void input_start(struct view_browser *b)
{
    struct view_scanout *so = b->http_so;
    if (so->width > 0) {
        input_run(b);
        return;
    }
    /* The size comes with the first keyframe. */
    b->api_next = so->api_waiting;
    so->api_waiting = b;
    b->api_waiting = true;
}

int view_http_body(struct view_browser *b, const void *in, size_t len)
{
    if (b->route.kind != HXFR_VIEW_ROUTE_INPUT || !b->http_so || !b->http_so->qmp) {
        return 0;
    }
    if (b->post_too_big || len > HXFR_VIEW_API_BODY_MAX - b->post_len) {
        b->post_too_big = true;
        return 0;
    }
    if (!b->post) {
        b->post = malloc(HXFR_VIEW_API_BODY_MAX);
        if (!b->post) {
            return -1;
        }
    }
    memcpy(b->post + b->post_len, in, len);
    b->post_len += len;
    return 0;
}

int view_http_body_done(struct view_gateway *gw, struct view_browser *b, struct lws *wsi)
{
    struct view_scanout *so = b->http_so;
    (void)gw;
    (void)wsi;
    if (b->route.kind != HXFR_VIEW_ROUTE_INPUT) {
        return 0;
    }
    if (!so) {
        answer_error(b, HTTP_STATUS_NOT_FOUND, "no such scanout");
    } else if (!so->qmp) {
        answer_error(b, HTTP_STATUS_FORBIDDEN, "input is not enabled for this scanout");
    } else if (b->post_too_big) {
        answer_error(b, HTTP_STATUS_REQ_ENTITY_TOO_LARGE, "request body too large");
    } else {
        api_watch(b, so);
        input_start(b);
    }
    return 0;
}

/* ---- Info --------------------------------------------------------------- */

static void info(struct view_browser *b, struct view_scanout *so)
{
    struct hxfr_view_rates rx;
    char msg[2 * sizeof(so->status_msg)];
    char qmp_err[2 * sizeof(so->qmp->last_error)] = "";
    char base[HXFR_VIEW_NAME_MAX + 24];
    hxfr__view_window_rates(&so->rx_window, view_mono_us(), 5000000, &rx);
    hxfr__view_json_escape(msg, sizeof(msg), so->status_msg, strlen(so->status_msg));
    snprintf(base, sizeof(base), "%s%s/scanout/%u", so->vm->name[0] ? "/" : "", so->vm->name,
             so->id);
    if (so->qmp) {
        hxfr__view_json_escape(qmp_err, sizeof(qmp_err), so->qmp->last_error,
                               strlen(so->qmp->last_error));
    }
    char input[768];
    if (so->qmp) {
        snprintf(input, sizeof(input),
                 "{\"enabled\":true,\"qmp\":\"%s\",\"commands\":%" PRIu64 ",\"events\":%" PRIu64
                 ",\"errors\":%" PRIu64 ",\"last_error\":\"%s\"}",
                 view_qmp_state_name(so->qmp), so->qmp->commands, so->qmp->events, so->qmp->errors,
                 qmp_err);
    } else {
        snprintf(input, sizeof(input), "{\"enabled\":false}");
    }
    answer_json(b, HTTP_STATUS_OK,
                "{\"vm\":\"%s\",\"scanout\":%u,\"state\":\"%s\",\"message\":\"%s\","
                "\"width\":%" PRIu32 ",\"height\":%" PRIu32 ",\"fps\":%.1f,\"kbps\":%.0f,"
                "\"frames\":%" PRIu64 ",\"keyframes\":%" PRIu64 ",\"browsers\":%u,"
                "\"input\":%s,\"page\":\"%s\"}\n",
                so->vm->name, so->id, so->status_state, msg, so->width, so->height, rx.fps, rx.kbps,
                so->frames_in, so->keyframes_in, so->n_browsers, input, base);
}

/* ---- Routing ------------------------------------------------------------------ */

/* Clears what the previous request on this connection left. */
static void reset(struct view_browser *b, struct lws *wsi)
{
    api_finish(b);
    free(b->http_owned);
    b->http_owned = NULL;
    b->http_body = NULL;
    b->http_headers_pending = false;
    b->http_wsi = wsi;
    b->http_so = NULL;
    memset(&b->route, 0, sizeof(b->route));
}

int view_http_request(struct view_gateway *gw, struct view_browser *b, struct lws *wsi,
                      const char *path)
{
    bool get = lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) > 0;
    bool post = lws_hdr_total_length(wsi, WSI_TOKEN_POST_URI) > 0;
    reset(b, wsi);
    if (!get && !post) {
        return http_status(wsi, HTTP_STATUS_METHOD_NOT_ALLOWED);
    }
    if (!view_request_allowed(gw, wsi)) {
        return http_status(wsi, HTTP_STATUS_FORBIDDEN);
    }
    struct view_scanout *so = view_route_scanout(gw, path, &b->route);
    /* The script is the same for everybody; everything else needs the
     * token when there is one. */
    if (b->route.kind != HXFR_VIEW_ROUTE_SCRIPT && !view_request_authorized(gw, wsi)) {
        return http_status(wsi, HTTP_STATUS_UNAUTHORIZED);
    }
    if (post != (b->route.kind == HXFR_VIEW_ROUTE_INPUT) && b->route.kind != HXFR_VIEW_ROUTE_NONE) {
        return http_status(wsi, HTTP_STATUS_METHOD_NOT_ALLOWED);
    }
    switch (b->route.kind) {
    case HXFR_VIEW_ROUTE_INDEX:
        if (gw->n_scanouts == 1) {
            char loc[96 + VIEW_TOKEN_MAX];
            uint8_t buf[LWS_PRE + 512 + VIEW_TOKEN_MAX];
            uint8_t *p = buf + LWS_PRE;
            so = &gw->scanouts[0];
            int n =
                snprintf(loc, sizeof(loc), "%s%s/scanout/%u%s%s", so->vm->name[0] ? "/" : "",
                         so->vm->name, so->id, gw->opt.token[0] ? "?token=" : "", gw->opt.token);
            if (lws_http_redirect(wsi, HTTP_STATUS_FOUND, (const unsigned char *)loc, n, &p,
                                  buf + sizeof(buf) - 1) < 0) {
                return -1;
            }
            return lws_http_transaction_completed(wsi) ? -1 : 0;
        }
        return respond_static(wsi, b, "text/html; charset=utf-8", gw->index_html, gw->index_len);
    case HXFR_VIEW_ROUTE_INDEX_JSON:
        return respond_static(wsi, b, "application/json", gw->index_json, gw->index_json_len);
    case HXFR_VIEW_ROUTE_SCRIPT:
        return respond_static(wsi, b, "text/javascript; charset=utf-8", hxfr__view_viewer_js,
                              hxfr__view_viewer_js_len);
    case HXFR_VIEW_ROUTE_PAGE:
        if (so) {
            return respond_static(wsi, b, "text/html; charset=utf-8", hxfr__view_viewer_html,
                                  hxfr__view_viewer_html_len);
        }
        break;
    case HXFR_VIEW_ROUTE_INFO:
        if (so) {
            info(b, so);
            return 0;
        }
        break;
    case HXFR_VIEW_ROUTE_INPUT: {
        /* Answered once the body is in (view_http_body_done). */
        char len[24];
        if (lws_hdr_copy(wsi, len, sizeof(len), WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0 &&
            strtoull(len, NULL, 10) > HXFR_VIEW_API_BODY_MAX) {
            return http_status(wsi, HTTP_STATUS_REQ_ENTITY_TOO_LARGE);
        }
        b->http_so = so;
        return 0;
    }
    default:
        break;
    }
    return http_status(wsi, HTTP_STATUS_NOT_FOUND);
}

int view_http_writable(struct view_browser *b, struct lws *wsi)
{
    uint8_t buf[LWS_PRE + 8192];
    if (b->http_headers_pending) {
        b->http_headers_pending = false;
        if (write_headers(wsi, b->http_status, b->http_type, b->http_len, NULL, 0) < 0) {
            return -1;
        }
        if (b->http_len == 0) {
            return lws_http_transaction_completed(wsi) ? -1 : 0;
        }
        lws_callback_on_writable(wsi);
        return 0;
    }
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
        free(b->http_owned);
        b->http_owned = NULL;
        return lws_http_transaction_completed(wsi) ? -1 : 0;
    }
    lws_callback_on_writable(wsi);
    return 0;
}

void view_http_closed(struct view_browser *b)
{
    api_finish(b);
    free(b->http_owned);
    b->http_owned = NULL;
    b->http_body = NULL;
    b->http_headers_pending = false;
}

/* ---- Index ---------------------------------------------------------------- */

/* The "/" page and /index.json: every VM and its scanouts. Names are
 * [A-Za-z0-9_-] and URIs are escaped, so nothing here needs more care. */
int view_http_build_index(struct view_gateway *gw)
{
    size_t cap =
        1024 + (size_t)gw->n_scanouts * (384 + 2 * VIEW_TOKEN_MAX) + (size_t)gw->n_vms * 640;
    /* With a token every request carries it, so the links do too (its
     * characters need no escaping in a URL or in HTML). */
    char q[VIEW_TOKEN_MAX + 8] = "";
    if (gw->opt.token[0]) {
        snprintf(q, sizeof(q), "?token=%s", gw->opt.token);
    }
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
            H("<li><a href=\"%s%s\">%s</a>%s</li>\n", base, q, so->label,
              so->qmp ? " (input)" : "");
            J("%s{\"id\":%u,\"page\":\"%s\",\"info\":\"%s/info\",\"input\":%s}", first ? "" : ",",
              so->id, base, base, so->qmp ? "true" : "false");
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
