/* hxfr-view gateway: the libwebsockets context, the checks every request
 * passes (Host, Origin, token), and the protocol callback that hands HTTP
 * requests to http.c and WebSocket browsers to browser.c.
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

bool view_request_allowed(struct view_gateway *gw, struct lws *wsi)
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

/* Compares without an early exit, so the time taken says nothing about
 * how much of a guessed token was right. */
static bool token_equal(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned diff = la != lb;
    for (size_t i = 0; i < lb; i++) {
        diff |= (unsigned)(unsigned char)(i < la ? a[i] : 0) ^ (unsigned char)b[i];
    }
    return diff == 0;
}

bool view_request_authorized(struct view_gateway *gw, struct lws *wsi)
{
    char buf[VIEW_TOKEN_MAX + 32];
    if (!gw->opt.token[0]) {
        return true;
    }
    const char *v = lws_get_urlarg_by_name(wsi, "token=", buf, sizeof(buf));
    if (v && token_equal(v, gw->opt.token)) {
        return true;
    }
    v = header(wsi, WSI_TOKEN_HTTP_AUTHORIZATION, buf, sizeof(buf));
    if (v && strncmp(v, "Bearer ", 7) == 0 && token_equal(v + 7, gw->opt.token)) {
        return true;
    }
    view_debug("refused a request without the token");
    return false;
}

/* Parses a request path into *rt; returns the scanout it names (NULL for
 * a route without one, or one that is not offered). */
struct view_scanout *view_route_scanout(struct view_gateway *gw, const char *path,
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
    struct view_scanout *so = view_route_scanout(gw, path, &rt);
    return so && rt.kind == HXFR_VIEW_ROUTE_WS ? so : NULL;
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
        return view_http_request(gw, b, wsi, in ? (const char *)in : "");

    case LWS_CALLBACK_HTTP_BODY:
        return view_http_body(b, in, len);

    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        return view_http_body_done(gw, b, wsi);

    case LWS_CALLBACK_HTTP_WRITEABLE:
        return view_http_writable(b, wsi);

    case LWS_CALLBACK_CLOSED_HTTP:
        /* lws may close a connection before it has per-session data. */
        if (b) {
            view_http_closed(b);
        }
        return 0;

    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION: {
        /* Decide before the upgrade completes: unknown path, foreign
         * origin or too many browsers refuse the handshake. */
        if (lws_hdr_copy(wsi, path, sizeof(path), WSI_TOKEN_GET_URI) <= 0 ||
            !ws_scanout(gw, path)) {
            view_debug("refused WebSocket for a bad path");
            return -1;
        }
        if (!view_request_allowed(gw, wsi) || !view_request_authorized(gw, wsi)) {
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
        view_browser_attach(gw, b, wsi, so);
        return 0;
    }

    case LWS_CALLBACK_RECEIVE:
        return view_browser_receive(b, wsi, in, len);

    case LWS_CALLBACK_SERVER_WRITEABLE:
        return view_browser_writable(b, wsi);

    case LWS_CALLBACK_CLOSED:
        view_browser_detach(gw, b);
        return 0;

    default:
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

/* The list ends with a zeroed entry: libwebsockets 4.1 has no
 * LWS_PROTOCOL_LIST_TERM. The first protocol is the default for HTTP and
 * for WebSockets that name no subprotocol. */
static struct lws_protocols protocols[4];

/* ---- Setup ------------------------------------------------------------- */

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

/* One QMP connection per distinct --qmp URI; each names the scanout it
 * gives input to. */
static int add_qmps(struct view_gateway *gw, const struct view_options *opt)
{
    for (unsigned i = 0; i < opt->n_qmps; i++) {
        const struct view_qmp_opt *qo = &opt->qmps[i];
        struct view_vm *vm = find_vm(gw, qo->vm);
        struct view_scanout *so = vm ? find_scanout(gw, vm, qo->id) : NULL;
        if (!so) {
            view_log("--qmp %s%s%u=%s: no such scanout is offered", qo->vm, qo->vm[0] ? ":" : "",
                     qo->id, qo->uri);
            return -EINVAL;
        }
        if (so->qmp) {
            view_log("--qmp: two for %s", so->label);
            return -EINVAL;
        }
        for (unsigned k = 0; k < gw->n_qmps && !so->qmp; k++) {
            if (strcmp(gw->qmps[k].uri_str, qo->uri) == 0) {
                so->qmp = &gw->qmps[k];
            }
        }
        if (!so->qmp) {
            struct view_qmp *q = &gw->qmps[gw->n_qmps];
            int r = view_qmp_init(q, gw, qo->uri);
            if (r < 0) {
                view_log("bad --qmp URI '%s': %s", qo->uri, hxfr_strerror(r));
                view_qmp_finish(q);
                return r;
            }
            gw->n_qmps++;
            so->qmp = q;
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
    r = add_qmps(gw, opt);
    if (r < 0) {
        goto fail;
    }
    r = view_http_build_index(gw);
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
    protocols[2] = view_qmp_protocol;
    memset(&protocols[3], 0, sizeof(protocols[3]));

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
    /* Descriptors: browsers, HTTP clients, upstreams, QMP and lws's own. */
    info.fd_limit_per_thread = opt->max_browsers + gw->n_scanouts + gw->n_qmps + 96;
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
    for (unsigned i = 0; i < gw->n_qmps; i++) {
        view_qmp_start(&gw->qmps[i]);
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
    for (unsigned i = 0; i < gw->n_qmps; i++) {
        lws_sul_cancel(&gw->qmps[i].retry_sul);
    }
    if (gw->ctx) {
        lws_context_destroy(gw->ctx);
        gw->ctx = NULL;
    }
    for (unsigned i = 0; i < gw->n_scanouts; i++) {
        view_upstream_finish(&gw->scanouts[i]);
    }
    for (unsigned i = 0; i < gw->n_qmps; i++) {
        view_qmp_finish(&gw->qmps[i]);
    }
    gw->n_qmps = 0;
    free(gw->index_html);
    gw->index_html = NULL;
    free(gw->index_json);
    gw->index_json = NULL;
}
