/* hxfr-view internals: the gateway's objects, shared by gateway.c (the
 * libwebsockets side: HTTP and browsers), upstream.c (one HXFR subscriber
 * connection per watched scanout) and main.c (options).
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

#include "route.h"
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

    /* Statistics. */
    uint64_t frames_in;
    uint64_t bytes_in;
    uint64_t keyframe_reqs;
    uint64_t reconnects;
};

/* Per-connection data of the HTTP/WebSocket protocol. An HTTP request uses
 * the http_* fields; a WebSocket browser the rest. */
struct view_browser {
    /* HTTP */
    const uint8_t *http_body;
    size_t http_len;
    size_t http_off;

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
/* Marks every browser of so for a status message. */
void view_scanout_notify(struct view_scanout *so);
/* Hands a finished AU to every browser of so (borrowed: each queue takes its
 * own reference). */
void view_scanout_distribute(struct view_scanout *so, struct hxfr_view_au *au);

/* upstream.c */
extern const struct lws_protocols view_upstream_protocol;
void view_upstream_init(struct view_scanout *so, struct view_vm *vm, uint16_t id);
/* A browser joined (start the connection if needed) or left. */
void view_upstream_watch(struct view_scanout *so);
void view_upstream_unwatch(struct view_scanout *so);
/* Asks the host for a keyframe, at most once per VIEW_KEYFRAME_INTERVAL_MS
 * (later requests are coalesced, never lost). */
void view_upstream_request_keyframe(struct view_scanout *so);
/* Cancels timers and drops the current AU (the wsi is closed by lws when
 * the context is destroyed). */
void view_upstream_finish(struct view_scanout *so);
/* Parses and resolves vm->connect into vm->uri / vm->addr. */
int view_upstream_resolve(struct view_vm *vm);

/* web_assets.c (generated from web/ at build time) */
extern const unsigned char hxfr__view_viewer_html[];
extern const size_t hxfr__view_viewer_html_len;
extern const unsigned char hxfr__view_viewer_js[];
extern const size_t hxfr__view_viewer_js_len;

#endif
