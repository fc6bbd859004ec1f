/* libhxfr-client, the object (client-private.h has the map of the files):
 * options, creation and destruction, the getters, and the requests that
 * are neither frames nor scanouts (configure, keyframe, ping). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "client-private.h"

void hxfr_client_options_init(struct hxfr_client_options *o)
{
    memset(o, 0, sizeof(*o));
    o->window = 4;
    o->max_body = HXFR_CLIENT_DEFAULT_MAX_BODY;
    o->hello = true;
    o->reconnect_attempts = 10;
    o->reconnect_min_ms = 50;
    o->reconnect_max_ms = 2000;
    o->io_timeout_ms = 5000;
}

struct hxfr_client *hxfr_client_new(const struct hxfr_client_options *o)
{
    struct hxfr_client_options def;
    if (!o) {
        hxfr_client_options_init(&def);
        o = &def;
    }
    if (o->window < 1 || o->window > HXFR_CLIENT_MAX_WINDOW || o->io_timeout_ms <= 0 ||
        o->max_body < 1024 || o->max_body > HXFR_MAX_BODY_HARD || o->max_dim > HXFR_MAX_DIM_HARD) {
        errno = EINVAL;
        return NULL;
    }
    struct hxfr_client *c = calloc(1, sizeof(*c));
    if (!c) {
        goto fail;
    }
    c->o = *o;
    c->fd = -1;
    c->in = malloc(IN_BUF_SIZE);
    if (!c->in) {
        goto fail_client;
    }
    hxfr_parser_init(&c->parser, c->o.max_body);
    return c;

fail_client:
    free(c);
fail:
    errno = ENOMEM;
    return NULL;
}

void hxfr_client_destroy(struct hxfr_client *c)
{
    if (!c) {
        return;
    }
    hxfr__guest_close_fd(c);
    hxfr_shm_region_finish(&c->region);
    free(c->iov);
    free(c->body);
    free(c->in);
    free(c);
}

int hxfr_client_configure(struct hxfr_client *c, const struct hxfr_client_config *cfg,
                          struct hxfr_config_resp *resp)
{
    if (c->in_callback) {
        return -EDEADLK;
    }
    if (!cfg || cfg->width == 0 || cfg->height == 0) {
        return -EINVAL;
    }
    int r = hxfr__guest_settle(c);
    if (r < 0) {
        return r;
    }
    c->cfg = *cfg;
    c->have_config = true;
    return hxfr__guest_send_config(c, resp);
}

int hxfr_client_request_keyframe(struct hxfr_client *c)
{
    if (c->in_callback) {
        return -EDEADLK;
    }
    int r = hxfr__guest_ensure_connected(c);
    if (r < 0) {
        return r;
    }
    struct hxfr_msg m = {.hdr.type = HXFR_MSG_KEYFRAME_REQ};
    return hxfr__guest_send_msg(c, &m);
}

int hxfr_client_ping(struct hxfr_client *c, int timeout_ms, uint64_t *rtt_ns)
{
    if (c->in_callback) {
        return -EDEADLK;
    }
    if (c->fd < 0) {
        return -ENOTCONN;
    }
    struct hxfr_msg m = {.hdr.type = HXFR_MSG_PING};
    uint64_t t0 = now_ns();
    int r = hxfr__guest_send_msg(c, &m);
    if (r < 0) {
        return r;
    }
    uint64_t mine = ++c->pings_sent;
    uint64_t deadline = deadline_after(timeout_ms);
    while (c->pongs_received < mine) {
        r = hxfr__guest_wait_input(c, deadline);
        if (r < 0 && (c->pongs_received < mine || !hxfr__guest_closed_by_host(r))) {
            return r;
        }
        if (r == 0 && c->pongs_received < mine && poll_timeout(deadline) == 0) {
            return -ETIMEDOUT;
        }
    }
    if (rtt_ns) {
        *rtt_ns = now_ns() - t0;
    }
    return 0;
}

int hxfr_client_fd(const struct hxfr_client *c)
{
    return c->fd;
}

unsigned hxfr_client_in_flight(const struct hxfr_client *c)
{
    return c->count;
}

bool hxfr_client_connected(const struct hxfr_client *c)
{
    return c->fd >= 0;
}

uint32_t hxfr_client_server_caps(const struct hxfr_client *c)
{
    return c->caps;
}

const char *hxfr_client_uri(const struct hxfr_client *c)
{
    return c->uri_str;
}

int32_t hxfr_client_last_remote_error(const struct hxfr_client *c, const char **message)
{
    if (message) {
        *message = c->last_message;
    }
    return c->last_code;
}
