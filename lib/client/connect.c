/* Connections (client-private.h): connecting to a URI or adopting an fd,
 * HELLO, reconnecting with exponential backoff, and restoring the
 * configuration, published scanout, subscription and ring on each new
 * connection. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client-private.h"

/* Makes fd (connected, non-blocking) the client's connection. */
static void adopt_fd(struct hxfr_client *c, int fd, bool is_socket)
{
    hxfr__guest_close_fd(c);
    c->fd = fd;
    c->is_socket = is_socket;
    c->reply_ready = false;
    c->pings_sent = c->pongs_received = 0;
    c->hello_acked = false;
}

/* One connection attempt: connect, HELLO, the stored configuration,
 * published scanout and subscription. */
static int open_connection(struct hxfr_client *c)
{
    int fd = hxfr__transport_connect(&c->uri);
    if (fd < 0) {
        return fd;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
        int r = -errno;
        close(fd);
        return r;
    }
    adopt_fd(c, fd, c->uri.kind != HXFR_TRANSPORT_SERIAL);
    int r = 0;
    if (c->o.hello) {
        r = hxfr__guest_send_hello(c);
    }
    if (r == 0 && c->have_config) {
        r = hxfr__guest_send_config(c, NULL);
    }
    if (r == 0 && c->publishing) {
        r = hxfr__guest_send_scanout(c, true, &c->published, c->o.io_timeout_ms, NULL);
    }
    if (r == 0 && c->subscribed) {
        r = hxfr__guest_send_subscribe(c, c->o.io_timeout_ms);
    }
    if (r == 0 && c->shm) {
        r = hxfr__guest_send_attach(c);
    }
    if (r < 0) {
        /* Not reported as DISCONNECTED: this attempt never counted as a
         * working connection. */
        hxfr__guest_close_fd(c);
    }
    return r;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

/* Connection attempts with exponential backoff. */
static int connect_with_backoff(struct hxfr_client *c, unsigned attempts, unsigned *used)
{
    unsigned delay = c->o.reconnect_min_ms ? c->o.reconnect_min_ms : 1;
    int r = -ENOTCONN;
    for (unsigned i = 0; i < attempts; i++) {
        if (i > 0) {
            sleep_ms(delay);
            delay = delay * 2 > c->o.reconnect_max_ms ? c->o.reconnect_max_ms : delay * 2;
        }
        r = open_connection(c);
        *used = i + 1;
        if (r == 0 || r == -HXFR_EREMOTE || r == -EINVAL || r == -EPROTONOSUPPORT) {
            /* Success, or an answer that retrying cannot change. */
            break;
        }
    }
    return r;
}

int hxfr_client_connect(struct hxfr_client *c, const char *uri)
{
    if (c->in_callback) {
        return -EDEADLK;
    }
    if (c->fd >= 0) {
        return -EISCONN;
    }
    struct hxfr_uri u;
    int r = hxfr__uri_parse(uri, false, &u);
    if (r < 0) {
        return r;
    }
    c->uri = u;
    c->have_uri = true;
    if (hxfr__uri_format(&u, c->uri_str, sizeof(c->uri_str)) < 0) {
        snprintf(c->uri_str, sizeof(c->uri_str), "%s", uri);
    }
    unsigned used = 0;
    unsigned attempts = c->o.reconnect && c->o.reconnect_attempts ? c->o.reconnect_attempts : 1;
    return connect_with_backoff(c, attempts, &used);
}

int hxfr_client_connect_fd(struct hxfr_client *c, int fd)
{
    if (fd < 0) {
        return -EBADF;
    }
    if (c->in_callback || c->fd >= 0) {
        close(fd);
        return c->in_callback ? -EDEADLK : -EISCONN;
    }
    struct stat st;
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fstat(fd, &st) < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
        int r = -errno;
        close(fd);
        return r;
    }
    adopt_fd(c, fd, S_ISSOCK(st.st_mode));
    c->have_uri = false;
    snprintf(c->uri_str, sizeof(c->uri_str), "fd:%d", fd);
    int r = c->o.hello ? hxfr__guest_send_hello(c) : 0;
    if (r < 0) {
        hxfr__guest_close_fd(c);
    }
    return r;
}

int hxfr_client_reconnect(struct hxfr_client *c)
{
    if (c->in_callback) {
        return -EDEADLK;
    }
    if (!c->have_uri) {
        return -ENOTCONN;
    }
    if (c->fd >= 0) {
        hxfr__guest_lost(c, -ECONNRESET);
    }
    unsigned used = 0;
    unsigned attempts = c->o.reconnect_attempts ? c->o.reconnect_attempts : 1;
    int r = connect_with_backoff(c, attempts, &used);
    if (r == 0) {
        c->force_next_keyframe = true;
        struct hxfr_client_event ev = {.type = HXFR_CLIENT_EVENT_RECONNECTED, .attempt = used};
        hxfr__guest_emit_event(c, &ev);
    }
    return r;
}

int hxfr__guest_ensure_connected(struct hxfr_client *c)
{
    if (c->fd >= 0) {
        return 0;
    }
    if (!c->o.reconnect || !c->have_uri) {
        return -ENOTCONN;
    }
    return hxfr_client_reconnect(c);
}
