/* Request handling (request.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <hxfr/shm.h>

#include "answer.h"
#include "request-frame.h"
#include "request.h"
#include "scanout.h"
#include "session.h"

#define HXFR_HOST_CAPS (HXFR_CAP_CONFIG_GOP | HXFR_CAP_SCANOUT)

/* HXFR_CAP_* bits this server offers c for shared memory. */
static uint32_t shm_caps(const struct hxfr__client *c)
{
    uint32_t caps = HXFR_CAP_SLOT_RELEASE;
    if (c->conn.is_unix) {
        caps |= HXFR_CAP_SHM_FD;
    }
    if (c->host->nregions > 0) {
        caps |= HXFR_CAP_SHM_REGION;
    }
    return caps;
}

static void handle_hello(struct hxfr__client *c, const struct hxfr_msg *m)
{
    struct hxfr_host *h = c->host;
    const struct hxfr_hello *q = &m->u.hello;

    if (q->version < HXFR_VERSION_1) {
        /* Like HELLO_RESP, the answer to a HELLO does not wait for frames. */
        hxfr__answer_error_now(c, m->hdr.session_id, HXFR_STATUS_INVALID_MSG,
                               "HELLO with version %u (this server speaks 1)", q->version);
        return;
    }
    c->hello = true;
    c->peer_caps = q->caps;

    struct hxfr_msg r;
    hxfr__msg_start(&r, HXFR_MSG_HELLO_RESP, m->hdr.session_id);
    r.u.hello.version = HXFR_VERSION_1;
    r.u.hello.caps = q->caps & (HXFR_HOST_CAPS | shm_caps(c));
    r.u.hello.max_width = h->cfg.max_width;
    r.u.hello.max_height = h->cfg.max_height;
    hxfr__answer_msg(c, &r);
}

/* Answers a CONFIG_REQ with the effective settings of session s, for a
 * peer that negotiated with HELLO. A v1 peer (no HELLO) gets no
 * CONFIG_RESP: Helix's host never sent one, and its subscriber takes any
 * message other than FRAME_RESPONSE for a broken stream. */
static void answer_config(struct hxfr__client *c, uint16_t sid, const struct hxfr__session *s,
                          uint32_t width, uint32_t height)
{
    struct hxfr_host *h = c->host;
    struct hxfr_encoder_config eff = s->cfg;
    eff.width = width;
    eff.height = height;
    eff.bitrate = hxfr__session_bitrate(s);
    hxfr__encoder_config_defaults(&eff);
    hxfr__log(&h->log, HXFR_HOST_LOG_DEBUG,
              "client %llu session %u: config %u bit/s %u/%u fps profile %u level %u gop %u%s",
              (unsigned long long)c->id, (unsigned)sid, eff.bitrate, eff.framerate_num,
              eff.framerate_den, eff.profile, eff.level, eff.gop,
              c->hello ? "" : " (v1 peer: no CONFIG_RESP)");
    if (!c->hello) {
        return;
    }
    struct hxfr_msg r;
    hxfr__msg_start(&r, HXFR_MSG_CONFIG_RESP, sid);
    r.u.config_resp.width = width;
    r.u.config_resp.height = height;
    r.u.config_resp.bitrate = eff.bitrate;
    r.u.config_resp.framerate_num = eff.framerate_num;
    r.u.config_resp.framerate_den = eff.framerate_den;
    r.u.config_resp.profile = eff.profile;
    r.u.config_resp.level = eff.level;
    r.u.config_resp.realtime = eff.realtime ? 1 : 0;
    r.u.config_resp.gop = eff.gop;
    /* The encoder the loop last saw for these settings (s->codec_gen is the
     * loop's own record; the encoder itself belongs to the worker). */
    snprintf(r.u.config_resp.encoder, sizeof(r.u.config_resp.encoder), "%s",
             s->codec[0] && s->cfg_gen == s->codec_gen ? s->codec
             : eff.codec                               ? eff.codec
                                                       : HXFR_DEFAULT_CODEC);
    hxfr__answer_msg(c, &r);
}

static void handle_config(struct hxfr__client *c, const struct hxfr_msg *m)
{
    struct hxfr_host *h = c->host;
    const struct hxfr_config_req *q = &m->u.config_req;
    uint16_t sid = m->hdr.session_id;

    /* A subscriber's CONFIG_REQ sets its scanout's bitrate (scanout.h);
     * the rest of it describes a picture the subscriber does not make. */
    uint32_t so_width, so_height;
    const struct hxfr__session *so_session =
        hxfr__scanout_config_req(c, sid, q->bitrate, &so_width, &so_height);
    if (so_session) {
        answer_config(c, sid, so_session, so_width, so_height);
        return;
    }
    if (q->profile != 0 && q->profile != 66 && q->profile != 77 && q->profile != 100) {
        hxfr__answer_error(c, sid, HXFR_STATUS_UNSUPPORTED,
                           "profile %u is not supported (66, 77 or 100)", q->profile);
        return;
    }
    if (q->level != 0 && (q->level < 10 || q->level > 62)) {
        hxfr__answer_error(c, sid, HXFR_STATUS_UNSUPPORTED, "level %u.%u is not an H.264 level",
                           q->level / 10, q->level % 10);
        return;
    }
    if ((q->framerate_num == 0) != (q->framerate_den == 0) ||
        (q->framerate_num != 0 && q->framerate_num / q->framerate_den > 1000)) {
        hxfr__answer_error(c, sid, HXFR_STATUS_INVALID_MSG, "framerate %u/%u is invalid",
                           q->framerate_num, q->framerate_den);
        return;
    }
    if (q->width > h->cfg.max_width || q->height > h->cfg.max_height) {
        hxfr__answer_error(c, sid, HXFR_STATUS_TOO_LARGE,
                           "size %ux%u is above this server's limit %ux%u", q->width, q->height,
                           h->cfg.max_width, h->cfg.max_height);
        return;
    }
    if (q->gop > 100000) {
        hxfr__answer_error(c, sid, HXFR_STATUS_INVALID_MSG, "keyframe interval %u is above 100000",
                           q->gop);
        return;
    }
    struct hxfr__session *s = hxfr__session_open(c, sid);
    if (!s) {
        hxfr__answer_error(c, sid, errno == EBUSY ? HXFR_STATUS_BUSY : HXFR_STATUS_INTERNAL,
                           "cannot open session %u: %s", (unsigned)sid, strerror(errno));
        return;
    }
    struct hxfr_encoder_config n = s->cfg;
    n.bitrate = q->bitrate;
    n.framerate_num = q->framerate_num;
    n.framerate_den = q->framerate_den;
    n.profile = q->profile;
    n.level = q->level;
    n.realtime = q->realtime != 0;
    n.gop = q->gop ? q->gop : h->cfg.gop;
    if (n.bitrate != s->cfg.bitrate || n.framerate_num != s->cfg.framerate_num ||
        n.framerate_den != s->cfg.framerate_den || n.profile != s->cfg.profile ||
        n.level != s->cfg.level || n.realtime != s->cfg.realtime || n.gop != s->cfg.gop) {
        /* The next frame's worker sees the new generation and reopens the
         * encoder, starting with an IDR. */
        s->cfg = n;
        s->cfg_gen++;
    }
    answer_config(c, sid, s, q->width, q->height);
}

static void handle_keyframe(struct hxfr__client *c, uint16_t sid)
{
    if (hxfr__scanout_keyframe_req(c, sid)) {
        return;
    }
    /* A session that does not exist yet starts with an IDR anyway. */
    struct hxfr__session *s = hxfr__session_find(c, sid);
    if (s) {
        s->force_idr_next = true;
    }
}

/* SHM_ATTACH (docs/protocol.md section 12): a sealed memfd that came with
 * the message, or a region the host was configured with, mapped and its
 * ring validated (source-shm.c), becomes the session's ring. */
static void handle_shm_attach(struct hxfr__client *c, const struct hxfr_msg *m)
{
    struct hxfr_host *h = c->host;
    const struct hxfr_shm_attach *a = &m->u.shm_attach;
    uint16_t sid = m->hdr.session_id;
    struct hxfr__shm_ring *ring = NULL;
    size_t map_len = 0;
    int fd = -1;
    int r;
    char what[96];

    if (m->hdr.flags & HXFR_FLAG_SHM_FD) {
        struct hxfr__fd_batch b;
        if (!c->conn.is_unix) {
            hxfr__answer_error(c, sid, HXFR_STATUS_SHM,
                               "SHM_ATTACH with SHM_FD needs a UNIX socket");
            return;
        }
        if (!hxfr__conn_fds_take(&c->conn, c->msg_start, &b)) {
            hxfr__answer_error(c, sid, HXFR_STATUS_SHM,
                               "SHM_ATTACH with SHM_FD arrived without a descriptor");
            return;
        }
        if (b.truncated) {
            hxfr__answer_error(c, sid, HXFR_STATUS_SHM,
                               "SHM_ATTACH descriptors truncated (MSG_CTRUNC)");
            return;
        }
        if (b.nfds != 1) {
            hxfr__fd_batch_close(&b);
            hxfr__answer_error(c, sid, HXFR_STATUS_SHM,
                               "SHM_ATTACH carries %d descriptors (exactly 1)", b.nfds);
            return;
        }
        if (a->name[0] != '\0') {
            hxfr__fd_batch_close(&b);
            hxfr__answer_error(c, sid, HXFR_STATUS_SHM,
                               "SHM_ATTACH with SHM_FD must not name a region");
            return;
        }
        fd = b.fds[0];
        if (hxfr__shm_fd_sealed(fd) < 0) {
            close(fd);
            hxfr__answer_error(c, sid, HXFR_STATUS_SHM,
                               "memfd is not sealed against shrinking and growing "
                               "(F_SEAL_SHRINK | F_SEAL_GROW required)");
            return;
        }
        r = hxfr__shm_ring_new(fd, a->offset, &h->stats.shm_rings, &ring, &map_len);
        close(fd);
        snprintf(what, sizeof(what), "memfd");
    } else {
        const struct hxfr_host_shm_region *reg = NULL;
        for (unsigned i = 0; i < h->nregions; i++) {
            if (strcmp(h->regions[i].name, a->name) == 0) {
                reg = &h->regions[i];
            }
        }
        if (!reg) {
            hxfr__answer_error(c, sid, HXFR_STATUS_SHM, "no shared-memory region '%s'", a->name);
            return;
        }
        fd = open(reg->path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            r = -errno;
        } else {
            r = hxfr__shm_ring_new(fd, a->offset, &h->stats.shm_rings, &ring, &map_len);
            close(fd);
        }
        snprintf(what, sizeof(what), "region '%s'", reg->name);
    }
    if (r < 0 && map_len == 0) {
        hxfr__answer_error(c, sid, HXFR_STATUS_SHM, "%s: cannot map: %s", what, hxfr__shm_error(r));
        return;
    }
    if (r < 0) {
        hxfr__answer_error(c, sid, HXFR_STATUS_SHM, "%s (%zu bytes), ring at offset %llu: %s", what,
                           map_len, (unsigned long long)a->offset, hxfr__shm_error(r));
        return;
    }

    struct hxfr__session *s = hxfr__session_open(c, sid);
    if (!s) {
        int err = errno;
        hxfr__shm_ring_unref(ring);
        hxfr__answer_error(c, sid, err == EBUSY ? HXFR_STATUS_BUSY : HXFR_STATUS_INTERNAL,
                           "cannot open session %u: %s", (unsigned)sid, strerror(err));
        return;
    }
    if (s->shm && hxfr__shm_ring_busy(s->shm) > 0) {
        hxfr__shm_ring_unref(ring);
        hxfr__answer_error(c, sid, HXFR_STATUS_SHM,
                           "session %u: the attached ring still has %u slot(s) in flight",
                           (unsigned)sid, hxfr__shm_ring_busy(s->shm));
        return;
    }
    hxfr__shm_ring_unref(s->shm);
    s->shm = ring;
    const struct hxfr_shm_layout *layout = hxfr__shm_ring_layout(ring);
    hxfr__log(&h->log, HXFR_HOST_LOG_INFO,
              "client %llu session %u: attached %s ring: %u slots of %llu bytes",
              (unsigned long long)c->id, (unsigned)sid, what, layout->slot_count,
              (unsigned long long)layout->slot_size);
    struct hxfr_msg resp;
    hxfr__msg_start(&resp, HXFR_MSG_SHM_ATTACH_RESP, sid);
    resp.u.shm_attach_resp.slot_count = layout->slot_count;
    resp.u.shm_attach_resp.slot_size = layout->slot_size;
    hxfr__answer_msg(c, &resp);
}

void hxfr__request_handle(struct hxfr__client *c, const struct hxfr_parse_result *res)
{
    const struct hxfr_msg *m = &res->msg;
    uint16_t sid = m->hdr.session_id;

    c->requests++;
    switch (m->hdr.type) {
    case HXFR_MSG_PING: {
        struct hxfr_msg r;
        hxfr__msg_start(&r, HXFR_MSG_PONG, sid);
        hxfr__answer_msg(c, &r);
        break;
    }
    case HXFR_MSG_HELLO:
        handle_hello(c, m);
        break;
    case HXFR_MSG_CONFIG_REQ:
        handle_config(c, m);
        break;
    case HXFR_MSG_KEYFRAME_REQ:
        handle_keyframe(c, sid);
        break;
    case HXFR_MSG_FRAME_REQUEST:
        hxfr__request_frame(c, m, res->body_size);
        break;
    case HXFR_MSG_SHM_ATTACH:
        handle_shm_attach(c, m);
        break;
    case HXFR_MSG_ENABLE_SCANOUT:
        hxfr__scanout_handle_enable(c, m);
        break;
    case HXFR_MSG_DISABLE_SCANOUT:
        hxfr__scanout_handle_disable(c, m);
        break;
    case HXFR_MSG_SUBSCRIBE:
        hxfr__scanout_handle_subscribe(c, m);
        break;
    case HXFR_MSG_ERROR:
        /* Never answer an ERROR with an ERROR: two confused peers would
         * bounce them forever. */
        hxfr__log(&c->host->log, HXFR_HOST_LOG_WARN, "client %llu sent ERROR %s: %s",
                  (unsigned long long)c->id, hxfr_status_name(m->u.error.code), m->u.error.message);
        break;
    default:
        hxfr__answer_error(c, sid, HXFR_STATUS_INVALID_MSG, "%s is not a request a server accepts",
                           hxfr_msg_type_name(m->hdr.type) ? hxfr_msg_type_name(m->hdr.type)
                                                           : "unknown type");
        break;
    }
}
