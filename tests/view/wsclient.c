/* Minimal WebSocket/HTTP client for the hxfr-view tests (see wsclient.h). */
#include "wsclient.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int ws_tcp_connect(int port, int rcvbuf)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    if (rcvbuf > 0) {
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    }
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

static int write_all(int fd, const void *data, size_t len)
{
    const uint8_t *p = data;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Reads more bytes into w->buf, waiting up to timeout_ms. Returns >0 bytes,
 * 0 on timeout, -1 on EOF or error. */
static int fill(struct ws *w, int timeout_ms)
{
    if (w->cap - w->len < 65536) {
        size_t cap = w->cap ? w->cap * 2 : 262144;
        uint8_t *n = realloc(w->buf, cap);
        if (!n) {
            return -1;
        }
        w->buf = n;
        w->cap = cap;
    }
    struct pollfd p = {w->fd, POLLIN, 0};
    int r = poll(&p, 1, timeout_ms < 0 ? 0 : timeout_ms);
    if (r <= 0) {
        return r < 0 && errno != EINTR ? -1 : 0;
    }
    ssize_t n = recv(w->fd, w->buf + w->len, w->cap - w->len, 0);
    if (n <= 0) {
        return -1;
    }
    w->len += (size_t)n;
    return (int)n;
}

/* Reads the HTTP response head (up to the blank line) into head. Returns
 * the status code or -1. Leaves any bytes after the head in w->buf. */
static int read_head(struct ws *w, char *head, size_t cap, int timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        uint8_t *end = w->len >= 4 ? memmem(w->buf, w->len, "\r\n\r\n", 4) : NULL;
        if (end) {
            size_t hl = (size_t)(end - w->buf) + 4;
            size_t c = hl < cap ? hl : cap - 1;
            memcpy(head, w->buf, c);
            head[c] = '\0';
            memmove(w->buf, w->buf + hl, w->len - hl);
            w->len -= hl;
            int status;
            if (sscanf(head, "HTTP/1.%*d %d", &status) != 1) {
                return -1;
            }
            return status;
        }
        int left = (int)(deadline - now_ms());
        if (left <= 0 || fill(w, left) <= 0) {
            return -1;
        }
    }
}

static const char *find_header(const char *head, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = strstr(head, "\r\n"); p; p = strstr(p + 2, "\r\n")) {
        if (strncasecmp(p + 2, name, n) == 0 && p[2 + n] == ':') {
            const char *v = p + 3 + n;
            while (*v == ' ') {
                v++;
            }
            return v;
        }
    }
    return NULL;
}

int ws_http(const struct ws_http_req *rq, char *body, size_t cap, size_t *body_len)
{
    struct ws w = {.fd = ws_tcp_connect(rq->port, 0)};
    char *req = NULL;
    char hostbuf[64];
    char head[4096];
    int status = -1;
    const char *host = rq->host;
    if (body_len) {
        *body_len = 0;
    }
    if (w.fd < 0) {
        return -1;
    }
    if (!host) {
        snprintf(hostbuf, sizeof(hostbuf), "127.0.0.1:%d", rq->port);
        host = hostbuf;
    }
    size_t blen = rq->body ? rq->body_len : 0;
    int n = asprintf(&req, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n%s%s",
                     rq->method ? rq->method : "GET", rq->path, host,
                     rq->headers ? rq->headers : "", "");
    if (n < 0) {
        goto out;
    }
    char tail[96];
    int t = rq->body ? snprintf(tail, sizeof(tail), "Content-Length: %zu\r\n\r\n", blen)
                     : snprintf(tail, sizeof(tail), "\r\n");
    if (write_all(w.fd, req, (size_t)n) < 0 || write_all(w.fd, tail, (size_t)t) < 0 ||
        (blen && write_all(w.fd, rq->body, blen) < 0)) {
        goto out;
    }
    status = read_head(&w, head, sizeof(head), rq->timeout_ms ? rq->timeout_ms : 5000);
    if (status < 0) {
        goto out;
    }
    if (rq->location && rq->loc_cap) {
        const char *l = find_header(head, "location");
        rq->location[0] = '\0';
        if (l) {
            size_t ln = strcspn(l, "\r\n");
            ln = ln < rq->loc_cap ? ln : rq->loc_cap - 1;
            memcpy(rq->location, l, ln);
            rq->location[ln] = '\0';
        }
    }
    if (rq->head && rq->head_cap) {
        snprintf(rq->head, rq->head_cap, "%s", head);
    }
    if (body && cap) {
        const char *cl = find_header(head, "content-length");
        size_t want = cl ? strtoul(cl, NULL, 10) : 0;
        int64_t deadline = now_ms() + 5000;
        while (w.len < want && now_ms() < deadline) {
            if (fill(&w, (int)(deadline - now_ms())) < 0) {
                break;
            }
        }
        size_t c = w.len < cap ? w.len : cap - 1;
        memcpy(body, w.buf, c);
        body[c] = '\0';
        if (body_len) {
            *body_len = c;
        }
    }
out:
    free(req);
    ws_close(&w);
    return status;
}

int ws_http_get(int port, const char *path, const char *host, char *body, size_t cap,
                char *location, size_t loc_cap)
{
    struct ws_http_req rq = {
        .port = port, .path = path, .host = host, .location = location, .loc_cap = loc_cap};
    return ws_http(&rq, body, cap, NULL);
}

int ws_open(struct ws *w, int port, const char *path, const char *origin, int rcvbuf)
{
    char req[1024];
    char head[4096];
    char origin_hdr[300] = "";
    memset(w, 0, sizeof(*w));
    w->fd = ws_tcp_connect(port, rcvbuf);
    if (w->fd < 0) {
        return -1;
    }
    if (origin) {
        snprintf(origin_hdr, sizeof(origin_hdr), "Origin: %s\r\n", origin);
    }
    int n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n%s\r\n",
                     path, port, origin_hdr);
    if (write_all(w->fd, req, (size_t)n) < 0) {
        ws_close(w);
        return -1;
    }
    int status = read_head(w, head, sizeof(head), 5000);
    if (status != 101) {
        ws_close(w);
        return status < 0 ? -1 : status;
    }
    return 0;
}

int ws_send(struct ws *w, int opcode, const void *data, size_t len, bool fin, bool mask)
{
    uint8_t hdr[14];
    size_t h = 0;
    hdr[h++] = (uint8_t)((fin ? 0x80 : 0) | (opcode & 0x0f));
    uint8_t m = mask ? 0x80 : 0;
    if (len < 126) {
        hdr[h++] = (uint8_t)(m | len);
    } else if (len < 65536) {
        hdr[h++] = m | 126;
        hdr[h++] = (uint8_t)(len >> 8);
        hdr[h++] = (uint8_t)len;
    } else {
        hdr[h++] = m | 127;
        for (int i = 7; i >= 0; i--) {
            hdr[h++] = (uint8_t)((uint64_t)len >> (i * 8));
        }
    }
    static const uint8_t key[4] = {0x12, 0x34, 0x56, 0x78};
    if (mask) {
        memcpy(hdr + h, key, 4);
        h += 4;
    }
    uint8_t *frame = malloc(h + len);
    if (!frame) {
        return -1;
    }
    memcpy(frame, hdr, h);
    for (size_t i = 0; i < len; i++) {
        frame[h + i] = ((const uint8_t *)data)[i] ^ (mask ? key[i % 4] : 0);
    }
    int r = write_all(w->fd, frame, h + len);
    free(frame);
    return r;
}

int ws_send_raw(struct ws *w, const void *data, size_t len)
{
    return write_all(w->fd, data, len);
}

/* Parses one frame at the front of w->buf. Returns 1 and fills the out
 * values (payload moved to w->msg), 0 if incomplete, -1 if malformed. */
static int take_frame(struct ws *w, int *opcode, bool *fin, size_t *len)
{
    if (w->len < 2) {
        return 0;
    }
    size_t h = 2;
    uint64_t n = w->buf[1] & 0x7f;
    if (w->buf[1] & 0x80) {
        return -1; /* servers never mask */
    }
    if (n == 126) {
        if (w->len < 4) {
            return 0;
        }
        n = ((uint64_t)w->buf[2] << 8) | w->buf[3];
        h = 4;
    } else if (n == 127) {
        if (w->len < 10) {
            return 0;
        }
        n = 0;
        for (int i = 0; i < 8; i++) {
            n = (n << 8) | w->buf[2 + i];
        }
        h = 10;
    }
    if (n > (1u << 30)) {
        return -1;
    }
    if (w->len < h + n) {
        return 0;
    }
    *opcode = w->buf[0] & 0x0f;
    *fin = (w->buf[0] & 0x80) != 0;
    free(w->msg);
    w->msg = malloc(n + 1);
    if (!w->msg) {
        return -1;
    }
    memcpy(w->msg, w->buf + h, n);
    w->msg[n] = 0;
    memmove(w->buf, w->buf + h + n, w->len - h - n);
    w->len -= h + n;
    *len = n;
    return 1;
}

int ws_recv(struct ws *w, int timeout_ms, int *opcode, const uint8_t **data, size_t *len)
{
    int64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        bool fin;
        int r = take_frame(w, opcode, &fin, len);
        if (r < 0) {
            return -1;
        }
        if (r == 1) {
            if (*opcode == WS_OP_CLOSE) {
                if (*len >= 2) {
                    w->close_code = (uint16_t)((w->msg[0] << 8) | w->msg[1]);
                }
                return -1;
            }
            if (*opcode == WS_OP_PING) {
                ws_send(w, WS_OP_PONG, w->msg, *len, true, true);
                continue;
            }
            if (*opcode == WS_OP_PONG) {
                continue;
            }
            *data = w->msg;
            return 1;
        }
        int left = (int)(deadline - now_ms());
        if (left <= 0) {
            return 0;
        }
        int f = fill(w, left);
        if (f < 0) {
            return -1;
        }
    }
}

bool ws_wait_closed(struct ws *w, int timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        int op;
        const uint8_t *d;
        size_t n;
        int left = (int)(deadline - now_ms());
        if (left <= 0) {
            return false;
        }
        int r = ws_recv(w, left, &op, &d, &n);
        if (r < 0) {
            return true;
        }
        if (r == 0) {
            return false;
        }
    }
}

void ws_close(struct ws *w)
{
    if (w->fd >= 0) {
        close(w->fd);
    }
    w->fd = -1;
    free(w->buf);
    free(w->msg);
    w->buf = w->msg = NULL;
    w->len = w->cap = 0;
}
