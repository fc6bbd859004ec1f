/* A deliberately small WebSocket and HTTP client for the hxfr-view tests.
 * It can also misbehave on purpose: unmasked frames, bad opcodes, huge
 * announced lengths, raw garbage. Blocking sockets with poll() timeouts;
 * one test thread. */
#ifndef HXFR_TESTS_VIEW_WSCLIENT_H
#define HXFR_TESTS_VIEW_WSCLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WS_OP_CONT   0x0
#define WS_OP_TEXT   0x1
#define WS_OP_BINARY 0x2
#define WS_OP_CLOSE  0x8
#define WS_OP_PING   0x9
#define WS_OP_PONG   0xA

struct ws {
    int fd;
    uint8_t *buf; /* received, not yet parsed */
    size_t len;
    size_t cap;
    uint8_t *msg; /* the last message returned by ws_recv */
    uint16_t close_code;
};

/* Connects a TCP socket to 127.0.0.1:port. rcvbuf > 0 sets SO_RCVBUF
 * first (a small window makes a slow reader). Returns the fd or -1. */
int ws_tcp_connect(int port, int rcvbuf);

/* GET path with the given Host header (NULL: 127.0.0.1:port). Returns the
 * HTTP status or -1; the body (NUL-terminated, truncated to cap) into body
 * when body is not NULL, and the Location header into location if given. */
int ws_http_get(int port, const char *path, const char *host, char *body, size_t cap,
                char *location, size_t loc_cap);

/* One HTTP request (Connection: close). */
struct ws_http_req {
    int port;
    const char *method;  /* NULL: GET */
    const char *path;    /* with any query string */
    const char *host;    /* NULL: 127.0.0.1:port */
    const char *headers; /* extra header lines, each ending in \r\n, or NULL */
    const void *body;    /* sent with Content-Length when not NULL */
    size_t body_len;
    char *location; /* receives the Location header when not NULL */
    size_t loc_cap;
    char *head; /* receives the response head when not NULL */
    size_t head_cap;
    int timeout_ms; /* for the response head; 0: 5000 */
};

/* Sends rq; returns the HTTP status or -1. The body (NUL-terminated,
 * truncated to cap - 1 bytes) into body when not NULL, its length into
 * *body_len when not NULL. */
int ws_http(const struct ws_http_req *rq, char *body, size_t cap, size_t *body_len);

/* Opens a WebSocket on path. origin may be NULL. Returns 0, or the HTTP
 * status of a refused handshake, or -1. */
int ws_open(struct ws *w, int port, const char *path, const char *origin, int rcvbuf);

/* Waits up to timeout_ms for the next text or binary message; pings are
 * answered and skipped. Returns 1 with *opcode, *data (valid until the
 * next call), *len; 0 on timeout; -1 when the connection closed (a close
 * frame's status code lands in w->close_code). */
int ws_recv(struct ws *w, int timeout_ms, int *opcode, const uint8_t **data, size_t *len);

/* Sends one frame; client frames are masked unless mask is false. */
int ws_send(struct ws *w, int opcode, const void *data, size_t len, bool fin, bool mask);

/* Sends bytes as they are. */
int ws_send_raw(struct ws *w, const void *data, size_t len);

/* True once the peer closed the connection (reads EOF or a close frame
 * within timeout_ms, skipping other traffic). */
bool ws_wait_closed(struct ws *w, int timeout_ms);

void ws_close(struct ws *w);

#endif
