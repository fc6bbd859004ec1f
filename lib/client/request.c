/* The blocking request/reply exchanges (client-private.h), each sent on
 * the current connection and awaited with a deadline: used by the public
 * calls and again by a reconnect to restore what the connection had. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>

#include "client-private.h"

int hxfr__guest_send_config(struct hxfr_client *c, struct hxfr_config_resp *resp)
{
    struct hxfr_msg m = {.hdr.type = HXFR_MSG_CONFIG_REQ};
    m.u.config_req = (struct hxfr_config_req){
        .width = c->cfg.width,
        .height = c->cfg.height,
        .bitrate = c->cfg.bitrate,
        .framerate_num = c->cfg.framerate_num,
        .framerate_den = c->cfg.framerate_den,
        .profile = c->cfg.profile,
        .level = c->cfg.level,
        .realtime = c->cfg.realtime ? 1 : 0,
        .gop = c->cfg.gop,
    };
    int r = hxfr__guest_send_msg(c, &m);
    if (r < 0) {
        return r;
    }
    if (!c->hello_acked) {
        /* Nobody answers: report what was asked for (the encoder unknown).
         * A CONFIG_RESP a host sends anyway is ignored when it comes. */
        if (resp) {
            *resp = (struct hxfr_config_resp){
                .width = m.u.config_req.width,
                .height = m.u.config_req.height,
                .bitrate = m.u.config_req.bitrate,
                .framerate_num = m.u.config_req.framerate_num,
                .framerate_den = m.u.config_req.framerate_den,
                .profile = m.u.config_req.profile,
                .level = m.u.config_req.level,
                .realtime = m.u.config_req.realtime,
                .gop = m.u.config_req.gop,
            };
        }
        return 0;
    }
    struct hxfr_msg reply;
    r = hxfr__guest_await_reply(c, HXFR_MSG_CONFIG_RESP, c->o.io_timeout_ms, &reply);
    if (r == 0 && resp) {
        *resp = reply.u.config_resp;
    }
    return r;
}

int hxfr__guest_send_hello(struct hxfr_client *c)
{
    struct hxfr_msg m = {.hdr.type = HXFR_MSG_HELLO};
    m.u.hello = (struct hxfr_hello){
        .version = HXFR_VERSION_1,
        .caps = HXFR_CAP_CONFIG_GOP | HXFR_CAP_SLOT_RELEASE | HXFR_CAP_SHM_REGION |
                HXFR_CAP_SCANOUT | (hxfr__fd_is_unix_socket(c->fd) ? HXFR_CAP_SHM_FD : 0),
        .max_width = c->o.max_dim ? c->o.max_dim : HXFR_MAX_DIM_HARD,
        .max_height = c->o.max_dim ? c->o.max_dim : HXFR_MAX_DIM_HARD,
    };
    int r = hxfr__guest_send_msg(c, &m);
    if (r < 0) {
        return r;
    }
    struct hxfr_msg reply;
    r = hxfr__guest_await_reply(c, HXFR_MSG_HELLO_RESP, c->o.io_timeout_ms, &reply);
    if (r == -HXFR_EREMOTE) {
        /* A v1 host does not know HELLO: carry on without extensions. */
        c->caps = 0;
        return 0;
    }
    if (r == 0) {
        c->caps = reply.u.hello.caps;
        c->hello_acked = true;
    }
    return r;
}

/* Sends m for scanout_id (header session id = scanout id, as push mode
 * uses it) and waits for its reply of type reply_type (into *reply). A
 * reply with success = 0, or for another scanout, is a refusal without an
 * ERROR message: reported the same way, -HXFR_EREMOTE with NO_SCANOUT and
 * "<what>scanout N refused". */
static int scanout_exchange(struct hxfr_client *c, struct hxfr_msg *m, uint32_t scanout_id,
                            uint8_t reply_type, int timeout_ms, const char *what,
                            struct hxfr_msg *reply)
{
    reply->hdr.type = 0;
    int r = hxfr__guest_send_msg_session(c, m, (uint16_t)scanout_id);
    if (r < 0) {
        return r;
    }
    r = hxfr__guest_await_reply(c, reply_type, timeout_ms, reply);
    if (r < 0) {
        return r;
    }
    bool subscribe = reply_type == HXFR_MSG_SUBSCRIBE_RESP;
    uint32_t success = subscribe ? reply->u.subscribe_resp.success : reply->u.scanout_resp.success;
    uint32_t id = subscribe ? reply->u.subscribe_resp.scanout_id : reply->u.scanout_resp.scanout_id;
    if (success == 0 || id != scanout_id) {
        c->last_code = HXFR_STATUS_NO_SCANOUT;
        snprintf(c->last_message, sizeof(c->last_message), "%sscanout %u refused", what,
                 (unsigned)scanout_id);
        return -HXFR_EREMOTE;
    }
    return 0;
}

int hxfr__guest_send_subscribe(struct hxfr_client *c, int timeout_ms)
{
    struct hxfr_msg m = {.hdr.type = HXFR_MSG_SUBSCRIBE}, reply;
    m.u.subscribe.scanout_id = c->scanout;
    return scanout_exchange(c, &m, c->scanout, HXFR_MSG_SUBSCRIBE_RESP, timeout_ms, "", &reply);
}

int hxfr__guest_send_scanout(struct hxfr_client *c, bool enable,
                             const struct hxfr_enable_scanout *q, int timeout_ms,
                             struct hxfr_scanout_resp *resp)
{
    struct hxfr_msg m = {.hdr.type = enable ? HXFR_MSG_ENABLE_SCANOUT : HXFR_MSG_DISABLE_SCANOUT};
    struct hxfr_msg reply;
    if (enable) {
        m.u.enable_scanout = *q;
    } else {
        m.u.disable_scanout.scanout_id = q->scanout_id;
    }
    int r = scanout_exchange(c, &m, q->scanout_id, HXFR_MSG_SCANOUT_RESP, timeout_ms,
                             enable ? "ENABLE_SCANOUT of " : "DISABLE_SCANOUT of ", &reply);
    if (resp && reply.hdr.type == HXFR_MSG_SCANOUT_RESP) {
        /* Refused or not, the caller sees the answer. */
        *resp = reply.u.scanout_resp;
    }
    return r;
}

int hxfr__guest_send_attach(struct hxfr_client *c)
{
    struct hxfr_msg m = {.hdr.type = HXFR_MSG_SHM_ATTACH,
                         .hdr.flags = c->shm_memfd ? HXFR_FLAG_SHM_FD : 0};
    m.u.shm_attach.offset = c->layout.ring_offset;
    snprintf(m.u.shm_attach.name, sizeof(m.u.shm_attach.name), "%s",
             c->shm_memfd ? "" : c->shm_name);
    uint8_t buf[HXFR_HEADER_SIZE + HXFR_SHM_ATTACH_SIZE];
    m.hdr.session_id = c->o.session_id;
    int n = hxfr_msg_encode(&m, 0, buf, sizeof(buf));
    if (n < 0) {
        return n;
    }
    size_t sent = 0;
    if (c->shm_memfd) {
        if (!hxfr__fd_is_unix_socket(c->fd)) {
            /* Descriptors travel over UNIX sockets only. */
            return -EOPNOTSUPP;
        }
        /* The fd rides on the first byte of this message: the host ties
         * descriptors to the message whose header they arrive with. */
        uint64_t deadline = deadline_after(c->o.io_timeout_ms);
        for (;;) {
            struct iovec iov = {.iov_base = buf, .iov_len = (size_t)n};
            ssize_t w = hxfr__send_with_fds(c->fd, &iov, 1, &c->region.fd, 1);
            if (w > 0) {
                sent = (size_t)w;
                break;
            }
            if (w != -EAGAIN) {
                return hxfr__guest_lost_after_write(c, w == 0 ? -EPIPE : (int)w);
            }
            struct pollfd pfd = {.fd = c->fd, .events = POLLOUT};
            int pr = poll(&pfd, 1, poll_timeout(deadline));
            if (pr < 0 && errno != EINTR) {
                return hxfr__guest_lost(c, -errno);
            }
            if (pr == 0) {
                return hxfr__guest_lost(c, -ETIMEDOUT);
            }
        }
    }
    if (sent < (size_t)n) {
        struct iovec iov = {.iov_base = buf + sent, .iov_len = (size_t)n - sent};
        int r = hxfr__guest_send_iov(c, &iov, 1);
        if (r < 0) {
            return r;
        }
    }
    struct hxfr_msg reply;
    int r = hxfr__guest_await_reply(c, HXFR_MSG_SHM_ATTACH_RESP, c->o.io_timeout_ms, &reply);
    if (r == 0 && (reply.u.shm_attach_resp.slot_count != c->layout.slot_count ||
                   reply.u.shm_attach_resp.slot_size != c->layout.slot_size)) {
        /* The host must have read the header we wrote. */
        r = -EPROTO;
    }
    return r;
}
