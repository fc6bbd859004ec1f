/* The display-event doorbell (see doorbell.h): a QMP client just long
 * enough to hand QEMU a D-Bus peer socket, then a minimal D-Bus peer that
 * makes method calls and reads their replies. D-Bus messages are written
 * little-endian: a 16-byte fixed header (endianness, type, flags, version,
 * body length, serial, length of the header-field array), the header
 * fields (code + variant, each 8-aligned), padding to 8, the body. */
#include "doorbell.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <hxfr/proto.h>

enum state {
    S_IDLE,
    S_QMP_GREETING, /* waiting for QEMU's {"QMP": ...} */
    S_QMP_CAPS,     /* qmp_capabilities sent */
    S_QMP_GETFD,    /* getfd (with the peer's end) sent */
    S_QMP_ADD,      /* add_client sent */
    S_AUTH,         /* D-Bus AUTH EXTERNAL sent */
    S_READY,
};

#define FDNAME "hxfr-gpu-dbus"

struct hxfr_doorbell {
    struct hxfr_loop *loop;
    char *path;
    enum state state;
    int qmp, dbus, peer; /* peer: our socket pair's end for QEMU */
    struct hxfr_loop_source *qmp_src, *dbus_src;
    char line[8192];
    size_t line_len;
    uint8_t in[16384];
    size_t in_len;
    bool pending;
    uint32_t serial;
    uint64_t sent, answered;
    hxfr_device_log_fn log;
    void *log_data;
};

#define say(b, ...) hxfr__logf((b)->log, (b)->log_data, __VA_ARGS__)

static void close_src(struct hxfr_doorbell *b, struct hxfr_loop_source **src, int *fd)
{
    hxfr__loop_remove(b->loop, *src);
    *src = NULL;
    if (*fd >= 0) {
        close(*fd);
    }
    *fd = -1;
}

static void reset(struct hxfr_doorbell *b)
{
    close_src(b, &b->qmp_src, &b->qmp);
    close_src(b, &b->dbus_src, &b->dbus);
    if (b->peer >= 0) {
        close(b->peer);
        b->peer = -1;
    }
    b->state = S_IDLE;
    b->line_len = b->in_len = 0;
}

static void fail(struct hxfr_doorbell *b, const char *what)
{
    say(b, HXFR_LOG_WARN, "doorbell: %s; the guest sees display changes at its next display event",
        what);
    reset(b);
}

/* Writes a whole small message (with fd, if >= 0). */
static bool put(struct hxfr_doorbell *b, int sock, const void *p, size_t n, int fd)
{
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int))];
    } ctl;
    struct iovec iov = {(void *)p, n};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    if (fd >= 0) {
        memset(&ctl, 0, sizeof(ctl));
        mh.msg_control = ctl.buf;
        mh.msg_controllen = sizeof(ctl.buf);
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof(int));
    }
    ssize_t w = sendmsg(sock, &mh, MSG_NOSIGNAL);
    if (w != (ssize_t)n) {
        fail(b, "write to QEMU failed");
        return false;
    }
    return true;
}

static bool qmp_cmd(struct hxfr_doorbell *b, const char *json, int fd)
{
    return put(b, b->qmp, json, strlen(json), fd);
}

/* --- D-Bus marshalling ---------------------------------------------------- */

struct buf {
    uint8_t b[512];
    size_t n;
};

static void align(struct buf *m, size_t a)
{
    while (m->n % a) {
        m->b[m->n++] = 0;
    }
}

static void put_u32(struct buf *m, uint32_t v)
{
    align(m, 4);
    hxfr_put_u32(m->b + m->n, v);
    m->n += 4;
}

/* A header field whose value is a string-like type (o, s: u32 length; g:
 * byte length), with its variant signature. */
static void field(struct buf *m, uint8_t code, char type, const char *v)
{
    size_t len = strlen(v);
    align(m, 8);
    m->b[m->n++] = code;
    m->b[m->n++] = 1;
    m->b[m->n++] = (uint8_t)type;
    m->b[m->n++] = 0;
    if (type == 'g') {
        m->b[m->n++] = (uint8_t)len;
    } else {
        put_u32(m, (uint32_t)len);
    }
    memcpy(m->b + m->n, v, len + 1);
    m->n += len + 1;
}

static void send_set_ui_info(struct hxfr_doorbell *b)
{
    struct buf m = {.n = 0};
    uint8_t body[20];
    uint32_t w = 640, h = 480 + (uint32_t)(b->sent & 1);
    /* q width_mm, q height_mm, i xoff, i yoff, u width, u height. */
    hxfr_put_u16(body, 169);
    hxfr_put_u16(body + 2, 127);
    hxfr_put_u32(body + 4, 0);
    hxfr_put_u32(body + 8, 0);
    hxfr_put_u32(body + 12, w);
    hxfr_put_u32(body + 16, h);
    m.b[0] = 'l';
    m.b[1] = 1; /* METHOD_CALL */
    m.b[2] = 0;
    m.b[3] = 1; /* protocol version */
    hxfr_put_u32(m.b + 4, sizeof(body));
    hxfr_put_u32(m.b + 8, ++b->serial);
    m.n = 16; /* the field array's length goes at 12 */
    field(&m, 1, 'o', "/org/qemu/Display1/Console_0");
    field(&m, 2, 's', "org.qemu.Display1.Console");
    field(&m, 3, 's', "SetUIInfo");
    field(&m, 8, 'g', "qqiiuu");
    hxfr_put_u32(m.b + 12, (uint32_t)(m.n - 16));
    align(&m, 8);
    memcpy(m.b + m.n, body, sizeof(body));
    m.n += sizeof(body);
    if (put(b, b->dbus, m.b, m.n, -1)) {
        b->sent++;
        b->pending = false;
        say(b, HXFR_LOG_DEBUG, "doorbell: SetUIInfo sent to QEMU");
    }
}

/* Consumes complete D-Bus messages from QEMU: replies to our calls (an
 * ERROR is logged), and anything else QEMU may emit. */
static void dbus_messages(struct hxfr_doorbell *b)
{
    size_t off = 0;
    while (b->in_len - off >= 16) {
        const uint8_t *h = b->in + off;
        if (h[0] != 'l') {
            fail(b, "QEMU's D-Bus peer speaks big-endian");
            return;
        }
        uint64_t fields = hxfr_get_u32(h + 12);
        uint64_t total = 16 + ((fields + 7) & ~7ull) + hxfr_get_u32(h + 4);
        if (total > sizeof(b->in)) {
            fail(b, "oversized D-Bus message from QEMU");
            return;
        }
        if (b->in_len - off < total) {
            break;
        }
        if (h[1] == 3) {
            say(b, HXFR_LOG_WARN,
                "doorbell: QEMU refused SetUIInfo (is this QEMU's first "
                "console the GPU's head 0?)");
        } else if (h[1] == 2) {
            b->answered++;
        }
        off += (size_t)total;
    }
    memmove(b->in, b->in + off, b->in_len - off);
    b->in_len -= off;
}

static void dbus_event(void *data, uint32_t events)
{
    struct hxfr_doorbell *b = data;
    (void)events;
    ssize_t n = recv(b->dbus, b->in + b->in_len, sizeof(b->in) - b->in_len, MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        fail(b, "QEMU closed the D-Bus display connection");
        return;
    }
    if (n < 0) {
        return;
    }
    b->in_len += (size_t)n;
    if (b->state == S_AUTH) {
        char *nl = memchr(b->in, '\n', b->in_len);
        if (nl == NULL) {
            return;
        }
        if (b->in_len < 3 || memcmp(b->in, "OK ", 3) != 0) {
            fail(b, "QEMU's D-Bus display refused authentication");
            return;
        }
        size_t used = (size_t)(nl - (char *)b->in) + 1;
        memmove(b->in, b->in + used, b->in_len - used);
        b->in_len -= used;
        if (!put(b, b->dbus, "BEGIN\r\n", 7, -1)) {
            return;
        }
        b->state = S_READY;
        say(b, HXFR_LOG_INFO, "doorbell: connected to QEMU's D-Bus display");
        if (b->pending) {
            send_set_ui_info(b);
        }
    }
    if (b->state == S_READY) {
        dbus_messages(b);
    }
}

static void start_dbus(struct hxfr_doorbell *b)
{
    /* QEMU has its end now; ours stays, the QMP connection is done. */
    close(b->peer);
    b->peer = -1;
    close_src(b, &b->qmp_src, &b->qmp);
    b->dbus_src = hxfr__loop_add(b->loop, b->dbus, EPOLLIN, dbus_event, b);
    if (b->dbus_src == NULL) {
        fail(b, "cannot watch the D-Bus socket");
        return;
    }
    char auth[64];
    char uid[16];
    snprintf(uid, sizeof(uid), "%u", (unsigned)getuid());
    int n = snprintf(auth, sizeof(auth), "%cAUTH EXTERNAL ", '\0');
    for (const char *p = uid; *p; p++) {
        n += snprintf(auth + n, sizeof(auth) - (size_t)n, "%02x", (unsigned char)*p);
    }
    n += snprintf(auth + n, sizeof(auth) - (size_t)n, "\r\n");
    b->in_len = 0;
    if (put(b, b->dbus, auth, (size_t)n, -1)) {
        b->state = S_AUTH;
    }
}

/* One line (a JSON object) from QMP. */
static void qmp_line(struct hxfr_doorbell *b, const char *l)
{
    bool ret = strstr(l, "\"return\"") != NULL;
    bool err = strstr(l, "\"error\"") != NULL;
    switch (b->state) {
    case S_QMP_GREETING:
        if (strstr(l, "\"QMP\"") != NULL &&
            qmp_cmd(b, "{\"execute\": \"qmp_capabilities\"}\n", -1)) {
            b->state = S_QMP_CAPS;
        }
        return;
    case S_QMP_CAPS:
        if (err) {
            fail(b, "QMP refused qmp_capabilities");
        } else if (ret && qmp_cmd(b,
                                  "{\"execute\": \"getfd\", \"arguments\": {\"fdname\": \"" FDNAME
                                  "\"}}\n",
                                  b->peer)) {
            b->state = S_QMP_GETFD;
        }
        return;
    case S_QMP_GETFD:
        if (err) {
            fail(b, "QMP refused getfd");
        } else if (ret && qmp_cmd(b,
                                  "{\"execute\": \"add_client\", \"arguments\": {\"protocol\": "
                                  "\"@dbus-display\", \"fdname\": \"" FDNAME "\"}}\n",
                                  -1)) {
            b->state = S_QMP_ADD;
        }
        return;
    case S_QMP_ADD:
        if (err) {
            fail(b, "QMP refused add_client @dbus-display (start QEMU with -display "
                    "dbus,p2p=yes)");
        } else if (ret) {
            start_dbus(b);
        }
        return;
    default:
        return;
    }
}

static void qmp_event(void *data, uint32_t events)
{
    struct hxfr_doorbell *b = data;
    (void)events;
    ssize_t n =
        recv(b->qmp, b->line + b->line_len, sizeof(b->line) - 1 - b->line_len, MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        fail(b, "QEMU closed the QMP connection");
        return;
    }
    if (n < 0) {
        return;
    }
    b->line_len += (size_t)n;
    char *nl;
    while (b->qmp >= 0 && (nl = memchr(b->line, '\n', b->line_len)) != NULL) {
        *nl = '\0';
        size_t used = (size_t)(nl - b->line) + 1;
        qmp_line(b, b->line);
        if (b->qmp < 0) {
            return; /* done with QMP, or failed */
        }
        memmove(b->line, b->line + used, b->line_len - used);
        b->line_len -= used;
    }
    if (b->line_len == sizeof(b->line) - 1) {
        b->line_len = 0; /* an event too long to care about */
    }
}

static void connect_qmp(struct hxfr_doorbell *b)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int sv[2];
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", b->path);
    b->qmp = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (b->qmp < 0 || connect(b->qmp, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        char what[200];
        snprintf(what, sizeof(what), "cannot reach QEMU's QMP socket %s: %s", b->path,
                 strerror(errno));
        fail(b, what);
        return;
    }
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        fail(b, "socketpair failed");
        return;
    }
    b->dbus = sv[0];
    b->peer = sv[1];
    b->qmp_src = hxfr__loop_add(b->loop, b->qmp, EPOLLIN, qmp_event, b);
    if (b->qmp_src == NULL) {
        fail(b, "cannot watch the QMP socket");
        return;
    }
    b->state = S_QMP_GREETING;
}

struct hxfr_doorbell *hxfr__doorbell_new(struct hxfr_loop *loop, const char *qmp_path,
                                         hxfr_device_log_fn log, void *log_data)
{
    struct sockaddr_un sa;
    if (strlen(qmp_path) >= sizeof(sa.sun_path)) {
        errno = ENAMETOOLONG;
        return NULL;
    }
    struct hxfr_doorbell *b = calloc(1, sizeof(*b));
    if (b == NULL || (b->path = strdup(qmp_path)) == NULL) {
        free(b);
        return NULL;
    }
    b->loop = loop;
    b->qmp = b->dbus = b->peer = -1;
    b->log = log;
    b->log_data = log_data;
    return b;
}

void hxfr__doorbell_destroy(struct hxfr_doorbell *b)
{
    if (b == NULL) {
        return;
    }
    reset(b);
    free(b->path);
    free(b);
}

void hxfr__doorbell_ring(struct hxfr_doorbell *b)
{
    b->pending = true;
    if (b->state == S_IDLE) {
        connect_qmp(b);
    } else if (b->state == S_READY) {
        send_set_ui_info(b);
    }
}

uint64_t hxfr__doorbell_rings(const struct hxfr_doorbell *b)
{
    return b->answered;
}
