/* hxfr-view internals: the gateway's objects, shared by gateway.c (the
 * libwebsockets context, request checks, the protocol callback), browser.c
 * (WebSocket browsers), http.c (the HTTP routes and the agent API),
 * upstream.c (one HXFR subscriber connection per watched scanout), qmp.c
 * (QMP connections that carry input into QEMU) and main.c (options).
 *
 * A gateway serves one or more VMs (upstreams, one --connect each); each VM
 * offers scanouts. Every scanout has its own upstream connection, opened
 * while somebody watches it.
 *
 * Threading: everything runs on the one libwebsockets service thread.
 */
#ifndef HXFR_VIEW_VIEW_H
#define HXFR_VIEW_VIEW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <libwebsockets.h>

#include <hxfr/proto.h>

#include "input.h"
#include "route.h"
#include "stats.h"
#include "transport.h"
#include "viewmsg.h"

#define VIEW_MAX_SCANOUTS 64u /* in total, over every VM */
#define VIEW_MAX_VMS      32u

/* Defaults; each one has a command-line option. */
#define VIEW_DEFAULT_HTTP         "127.0.0.1:8080"
#define VIEW_DEFAULT_MAX_BROWSERS 64u
#define VIEW_DEFAULT_QUEUE_FRAMES 30u
#define VIEW_DEFAULT_QUEUE_BYTES  (16u * 1024u * 1024u)
#define VIEW_DEFAULT_MAX_AU_BYTES (32u * 1024u * 1024u)
#define VIEW_NOTSENT_LOWAT        (128 * 1024) /* unsent bytes a browser socket may hold */

/* Upstream timing, in milliseconds. */
#define VIEW_KEYFRAME_INTERVAL_MS 250u   /* at most one KEYFRAME_REQ per this */
#define VIEW_BROWSER_KF_MS        1000u  /* per browser, explicit requests */
#define VIEW_OVERFLOW_KF_MAX_MS   8000u  /* per browser, overflow backoff cap */
#define VIEW_OVERFLOW_CALM_MS     10000u /* no overflow this long resets it */
#define VIEW_BACKOFF_MIN_MS       100u
#define VIEW_BACKOFF_MAX_MS       2000u
#define VIEW_CONNECT_TIMEOUT_MS   5000u
#define VIEW_PING_IDLE_MS         2000u  /* send PING after this much silence */
#define VIEW_PING_EVERY_MS        10000u /* and at least this often */
#define VIEW_DEFAULT_DEAD_MS      8000u  /* give up after this much silence */
#define VIEW_LINGER_MS            5000u  /* keep an unwatched upstream this long */
#define VIEW_API_TIMEOUT_MS       10000u /* an agent request waits at most this */

/* QMP output bounds (see qmp.c). */
#define VIEW_QMP_LINE_MAX (64u * 1024u)
#define VIEW_QMP_OUT_SOFT (16u * 1024u)
#define VIEW_QMP_OUT_MAX  (1024u * 1024u)

/* --token: 16..128 characters of [A-Za-z0-9._~-] (safe in a URL as is). */
#define VIEW_TOKEN_MIN 16u
#define VIEW_TOKEN_MAX 128u

/* One --connect: a VM (upstream) by name; "" is the unnamed one. */
struct view_connect_opt {
    char name[HXFR_VIEW_NAME_MAX + 1];
    const char *uri;
};

/* One --scanout: scanout id of the named VM, or of every VM that has no
 * --scanout of its own when vm is "". */
struct view_scanout_opt {
    char vm[HXFR_VIEW_NAME_MAX + 1];
    uint16_t id;
};

/* One --qmp: where scanout id of VM vm takes input. */
struct view_qmp_opt {
    char vm[HXFR_VIEW_NAME_MAX + 1];
    uint16_t id;
    const char *uri;
};

struct view_options {
    struct view_connect_opt connects[VIEW_MAX_VMS];
    unsigned n_connects;
    const char *http; /* HOST:PORT to serve on */
    struct view_scanout_opt scanouts[VIEW_MAX_SCANOUTS];
    unsigned n_scanouts;
    unsigned max_browsers;
    unsigned queue_frames;
    size_t queue_bytes;
    uint32_t max_au_bytes;
    uint32_t dead_ms; /* upstream silence before reconnecting */
    struct view_qmp_opt qmps[VIEW_MAX_SCANOUTS];
    unsigned n_qmps;
    char token[VIEW_TOKEN_MAX + 1]; /* "" = no token */
    bool verbose;
};

enum view_up_state {
    VIEW_UP_IDLE = 0,    /* nobody watches: no connection */
    VIEW_UP_WAIT_RETRY,  /* failed; a reconnect is scheduled */
    VIEW_UP_CONNECTING,  /* non-blocking connect in progress */
    VIEW_UP_SUBSCRIBING, /* SUBSCRIBE sent, waiting for SUBSCRIBE_RESP */
    VIEW_UP_STREAMING,   /* receiving FRAME_RESPONSEs */
};

struct view_gateway;
struct view_browser;
struct view_qmp;

/* An HTTP request that waits for QMP replies (qmp.c calls done). */
struct view_qmp_waiter {
    struct view_qmp *q;
    struct view_qmp_waiter *next, *prev;
    bool linked;
    uint64_t last_id; /* complete when the reply to this command arrives */
    bool error;       /* one of its commands was answered with an error */
    char error_text[128];
    /* status: 0 all done, -EIO a command failed, -ENOTCONN connection lost */
    void (*done)(struct view_qmp_waiter *w, int status);
};

enum view_qmp_state {
    VIEW_QMP_IDLE = 0,
    VIEW_QMP_WAIT_RETRY,
    VIEW_QMP_CONNECTING,
    VIEW_QMP_GREETING, /* connected, waiting for {"QMP":...} */
    VIEW_QMP_CAPS,     /* qmp_capabilities sent */
    VIEW_QMP_READY,
};

/* One QMP socket (several scanouts may share it). */
struct view_qmp {
    struct view_gateway *gw;
    const char *uri_str;
    struct hxfr_uri uri;
    struct hxfr_addr addr;
    enum view_qmp_state state;
    struct lws *wsi;
    int fd;
    bool closing;
    char *in; /* the line being received, VIEW_QMP_LINE_MAX bytes */
    size_t in_len;
    char *out; /* commands not yet written */
    size_t out_len, out_off, out_cap;
    uint64_t next_id;
    struct view_qmp_waiter *waiters; /* sorted by last_id */
    struct hxfr_view_held held;      /* what the guest holds through us */
    bool move_pending;               /* a coalesced pointer move */
    uint16_t mx, my;
    uint32_t mw, mh;
    uint32_t backoff_ms;
    lws_sorted_usec_list_t retry_sul;
    char last_error[160];
    /* Statistics. */
    uint64_t commands, events, moves, replies, errors, reconnects;
};

/* One VM: an upstream endpoint and the path prefix of its routes. */
struct view_vm {
    struct view_gateway *gw;
    char name[HXFR_VIEW_NAME_MAX + 1]; /* "" for the unnamed upstream */
    const char *connect;               /* the URI as given */
    struct hxfr_uri uri;
    struct hxfr_addr addr; /* resolved once, at startup */
};

/* One offered scanout: its browsers and its upstream connection. */
struct view_scanout {
    struct view_gateway *gw;
    struct view_vm *vm;
    uint16_t id;
    char label[HXFR_VIEW_NAME_MAX + 16]; /* "scanout N" or "NAME scanout N", for logs */

    struct view_browser *browsers; /* doubly linked through browser->next/prev */
    unsigned n_browsers;
    unsigned n_api; /* agent requests keeping the upstream open */

    struct view_qmp *qmp;   /* where input goes; NULL: view-only */
    uint32_t width, height; /* from the latest SPS; 0 until one came */
    uint16_t api_x, api_y;  /* where the agent API left the pointer */
    bool api_known;

    enum view_up_state state;
    struct lws *wsi;        /* the adopted upstream socket, or NULL */
    int fd;                 /* its descriptor while wsi is set */
    bool closing;           /* a close was requested; ignore further input */
    const char *fail_state; /* status word to report when the close lands */
    struct hxfr_parser parser;

    /* The FRAME_RESPONSE being received. */
    struct hxfr_view_au *cur;
    size_t cur_fill;
    size_t cur_body;
    uint32_t cur_nal_count;
    bool cur_keyframe;
    int64_t cur_pts;
    int64_t cur_recv_us;

    /* Output: at most one small message is in flight; the rest are flags,
     * so output towards the host is bounded by construction. */
    uint8_t out[HXFR_HEADER_SIZE + HXFR_MAX_FIXED_SIZE];
    size_t out_len;
    size_t out_off;
    bool need_subscribe;
    bool need_keyframe;
    bool need_ping;
    bool need_pong;

    bool kf_wanted;     /* a keyframe request waits for the interval */
    lws_usec_t kf_last; /* when the last KEYFRAME_REQ was queued */
    lws_sorted_usec_list_t kf_sul;

    uint32_t backoff_ms;
    lws_sorted_usec_list_t retry_sul;
    lws_sorted_usec_list_t alive_sul;
    lws_sorted_usec_list_t linger_sul;
    lws_usec_t state_since;
    lws_usec_t last_rx;
    lws_usec_t last_ping;

    uint32_t seq;
    bool new_stream; /* flag the next AU as a new stream */

    /* What browsers are told (see hxfr__view_status_format). */
    const char *status_state;
    char status_msg[160];
    uint32_t status_retry_ms;

    /* Agent requests waiting for a frame (size, screenshot), linked
     * through browser->api_next. */
    struct view_browser *api_waiting;

    /* Statistics. */
    struct hxfr_view_window rx_window; /* AUs received, last seconds */
    uint64_t frames_in;
    uint64_t keyframes_in;
    uint64_t bytes_in;
    uint64_t keyframe_reqs;
    uint64_t reconnects;
};

/* Per-connection data of the HTTP/WebSocket protocol. An HTTP request uses
 * the http_* fields; a WebSocket browser the rest. */
struct view_browser {
    /* HTTP */
    struct lws *http_wsi;
    const uint8_t *http_body; /* the response body being sent */
    size_t http_len;
    size_t http_off;
    char *http_owned;          /* http_body when it is ours to free */
    bool http_headers_pending; /* a deferred answer is ready to go out */
    unsigned http_status;
    const char *http_type;
    struct hxfr_view_route route;
    struct view_scanout *http_so;
    bool http_watching; /* counted in http_so->n_api */
    char *post;         /* the POST body being received */
    size_t post_len;
    bool post_too_big;
    struct view_qmp_waiter waiter;
    unsigned api_events;
    bool api_waiting; /* in http_so->api_waiting */
    struct view_browser *api_next;
    lws_sorted_usec_list_t api_sul; /* the request's deadline */

    /* WebSocket */
    bool attached;
    struct lws *wsi;
    struct view_scanout *so;
    struct view_browser *next;
    struct view_browser *prev;
    struct hxfr_view_queue queue;
    bool hello_pending;
    bool status_pending;
    bool pong_pending;
    uint64_t pong_token;
    /* This browser's own keyframe requests: explicit ones at most one per
     * VIEW_BROWSER_KF_MS, those caused by overflowing with a growing
     * backoff, so one slow or hostile browser cannot make the host send
     * keyframes (costly for every viewer) at the scanout's full rate. */
    int64_t kf_next_us;
    int64_t last_overflow_us;
    uint32_t kf_backoff_ms;
    uint8_t rx[HXFR_VIEW_INPUT_MAX];
    size_t rx_len;
    bool rx_too_big;
    struct hxfr_view_held held; /* what this page holds down in the guest */
};

struct view_gateway {
    struct view_options opt;
    struct lws_context *ctx;
    struct lws_vhost *vh;
    int port;           /* the HTTP port actually bound */
    char http_host[72]; /* the bound address as a URL host */
    bool loopback;      /* bound to a loopback address */
    bool stopping;      /* the context is being destroyed */

    struct view_vm vms[VIEW_MAX_VMS];
    unsigned n_vms;

    struct view_scanout scanouts[VIEW_MAX_SCANOUTS];
    unsigned n_scanouts;
    unsigned n_browsers;

    struct view_qmp qmps[VIEW_MAX_SCANOUTS];
    unsigned n_qmps;

    char *index_html; /* the "/" page when several scanouts exist */
    size_t index_len;
    char *index_json; /* /index.json */
    size_t index_json_len;

    uint8_t rbuf[64 * 1024]; /* upstream read buffer */
};

/* Clocks in microseconds: monotonic for timeouts and ages, real time for
 * the timestamps shown to browsers. Defined in gateway.c. */
int64_t view_mono_us(void);
int64_t view_realtime_us(void);

/* Logging for the tool (the libraries do not log). */
void view_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
extern bool view_verbose;
#define view_debug(...)                                                                            \
    do {                                                                                           \
        if (view_verbose) {                                                                        \
            view_log(__VA_ARGS__);                                                                 \
        }                                                                                          \
    } while (0)

/* gateway.c */
int view_gateway_init(struct view_gateway *gw, const struct view_options *opt);
int view_gateway_run(struct view_gateway *gw, volatile int *stop);
void view_gateway_finish(struct view_gateway *gw);
/* The scanout a path names (and *rt, its route), or NULL. */
struct view_scanout *view_route_scanout(struct view_gateway *gw, const char *path,
                                        struct hxfr_view_route *rt);
/* Host/Origin checks of a request. */
bool view_request_allowed(struct view_gateway *gw, struct lws *wsi);
/* The token check: true if no token is configured, or the request carries
 * it (?token= or "Authorization: Bearer"). */
bool view_request_authorized(struct view_gateway *gw, struct lws *wsi);

/* browser.c */
/* Marks every browser of so for a status message. */
void view_scanout_notify(struct view_scanout *so);
/* Hands a finished AU to every browser of so (borrowed: each queue takes its
 * own reference). */
void view_scanout_distribute(struct view_scanout *so, struct hxfr_view_au *au);
void view_browser_attach(struct view_gateway *gw, struct view_browser *b, struct lws *wsi,
                         struct view_scanout *so);
void view_browser_detach(struct view_gateway *gw, struct view_browser *b);
int view_browser_receive(struct view_browser *b, struct lws *wsi, const void *in, size_t len);
int view_browser_writable(struct view_browser *b, struct lws *wsi);

/* http.c */
int view_http_request(struct view_gateway *gw, struct view_browser *b, struct lws *wsi,
                      const char *path);
int view_http_body(struct view_browser *b, const void *in, size_t len);
int view_http_body_done(struct view_gateway *gw, struct view_browser *b, struct lws *wsi);
int view_http_writable(struct view_browser *b, struct lws *wsi);
void view_http_closed(struct view_browser *b);
/* The index pages (built once at startup). */
int view_http_build_index(struct view_gateway *gw);
/* A frame arrived for so: agent requests waiting for one go on. */
void view_http_frame(struct view_scanout *so);

/* upstream.c */
extern const struct lws_protocols view_upstream_protocol;
void view_upstream_init(struct view_scanout *so, struct view_vm *vm, uint16_t id);
/* A browser or an agent request started (start the connection if needed)
 * or stopped watching (n_browsers + n_api already updated). */
void view_upstream_watch(struct view_scanout *so, bool want_keyframe);
void view_upstream_unwatch(struct view_scanout *so);
/* Asks the host for a keyframe, at most once per VIEW_KEYFRAME_INTERVAL_MS
 * (later requests are coalesced, never lost). */
void view_upstream_request_keyframe(struct view_scanout *so);
/* Cancels timers and drops the current AU (the wsi is closed by lws when
 * the context is destroyed). */
void view_upstream_finish(struct view_scanout *so);
/* Parses and resolves vm->connect into vm->uri / vm->addr. */
int view_upstream_resolve(struct view_vm *vm);

/* qmp.c */
extern const struct lws_protocols view_qmp_protocol;
/* Parses and resolves uri (copied pointer: must outlive q). */
int view_qmp_init(struct view_qmp *q, struct view_gateway *gw, const char *uri);
/* Connects (and reconnects for as long as the gateway runs). */
void view_qmp_start(struct view_qmp *q);
void view_qmp_finish(struct view_qmp *q);
bool view_qmp_ready(const struct view_qmp *q);
const char *view_qmp_state_name(const struct view_qmp *q);
/* Queues events (scanout size width x height for moves). With a waiter,
 * w->done is called once QEMU answered them all (or the connection went).
 * Returns 0, -ENOTCONN (not ready), -ENOBUFS (QEMU is not reading), or
 * -EINVAL / -ENOMEM. */
int view_qmp_send(struct view_qmp *q, const struct hxfr_view_event *ev, unsigned n, uint32_t width,
                  uint32_t height, struct view_qmp_waiter *w);
/* A pointer move, coalesced with later ones while output is backed up. */
int view_qmp_move(struct view_qmp *q, uint16_t x, uint16_t y, uint32_t width, uint32_t height);
/* Unlinks a waiter whose request went away (done is not called). */
void view_qmp_forget(struct view_qmp_waiter *w);

/* web_assets.c (generated from web/ at build time) */
extern const unsigned char hxfr__view_viewer_html[];
extern const size_t hxfr__view_viewer_html_len;
extern const unsigned char hxfr__view_viewer_js[];
extern const size_t hxfr__view_viewer_js_len;

#endif
