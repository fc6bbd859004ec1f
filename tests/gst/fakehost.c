/* hxfr-fakehost: a small test double of the hxfr host for the GStreamer
 * element tests. It speaks the documented protocol (docs/protocol.md) on a
 * UNIX socket, one connection at a time, with blocking I/O:
 *
 *   HELLO          -> HELLO_RESP (or ERROR with --hello-error, like a v1 host,
 *                     which then also ignores the CONFIG_REQ keyframe interval
 *                     and answers no CONFIG_REQ, as Helix's host)
 *   CONFIG_REQ     -> opens a real encoder (src/encoders, libx264) -> CONFIG_RESP
 *   FRAME_REQUEST  -> validates and encodes the inline pixels -> FRAME_RESPONSE
 *   KEYFRAME_REQ   -> the next frame is an IDR
 *   SUBSCRIBE      -> SUBSCRIBE_RESP, then pushes pattern frames (lib/pattern)
 *                     encoded at --push WxH@FPS, starting at an IDR
 *   PING           -> PONG
 *
 * Fault injection: --fail-frame N answers the N-th frame request (0-based,
 * over the whole run) with ERROR ENCODE_FAILED; --drop-after N closes the
 * first connection after N responses or pushed units (the listener stays,
 * so a reconnect succeeds); --exit-after N exits the process instead.
 * --end-after N ends the first scanout stream after N pushed units with
 * ERROR NO_SCANOUT (as when the publisher disables it; the connection stays
 * and a new SUBSCRIBE streams again). KEYFRAME_REQ from a subscriber makes
 * the next pushed unit an IDR (logged as "keyreq").
 * --empty-frame N answers the N-th frame request with a FRAME_RESPONSE
 * without units (a skipped frame).
 * --log PATH appends one line per CONFIG_REQ ("config W H BITRATE GOP") and
 * per forced keyframe request ("force N") for the tests to check.
 *
 * Usage: hxfr-fakehost SOCKET_PATH [options]; prints "READY" on stdout once
 * listening. Not a product: the real daemon is hxfrd.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <hxfr/proto.h>
#include <libavutil/log.h>

#include "daemon.h"
#include "encoder.h"
#include "io.h"
#include "pattern.h"

static struct {
    const char *path;
    bool hello_error;
    long fail_frame;
    long drop_after;
    long exit_after;
    long end_after;
    long empty_frame;
    unsigned scanouts;
    uint32_t push_w, push_h, push_fps;
    FILE *log;
} opt = {.fail_frame = -1,
         .drop_after = -1,
         .exit_after = -1,
         .end_after = -1,
         .empty_frame = -1,
         .scanouts = 1,
         .push_w = 320,
         .push_h = 240,
         .push_fps = 30};

static long frames_seen; /* FRAME_REQUESTs over the whole run */
static long sent_total;  /* responses + pushed units over the whole run */
static unsigned connections;

static bool send_msg(int fd, struct hxfr_msg *m, const uint8_t *body, uint32_t body_len)
{
    uint8_t buf[HXFR_HEADER_SIZE + HXFR_MAX_FIXED_SIZE];
    int n = hxfr_msg_encode(m, body_len, buf, sizeof(buf));
    if (n < 0) {
        fprintf(stderr, "fakehost: encode: %s\n", hxfr_strerror(n));
        return false;
    }
    return hxfr_test_send_all(fd, buf, (size_t)n) == 0 &&
           (body_len == 0 || hxfr_test_send_all(fd, body, body_len) == 0);
}

static bool send_error(int fd, uint16_t session, int32_t code, const char *text)
{
    struct hxfr_msg m;
    hxfr_msg_error(&m, session, code, "%s", text);
    return send_msg(fd, &m, NULL, 0);
}

/* Unit list of a FRAME_RESPONSE: u32 size + bytes per NAL unit. */
struct units {
    uint8_t *buf;
    size_t len, cap;
};

static int add_unit(void *opaque, const uint8_t *nal, size_t size)
{
    struct units *u = opaque;
    if (u->len + 4 + size > u->cap) {
        size_t cap = (u->len + 4 + size) * 2;
        uint8_t *b = realloc(u->buf, cap);
        if (!b) {
            return -ENOMEM;
        }
        u->buf = b;
        u->cap = cap;
    }
    hxfr_put_u32(u->buf + u->len, (uint32_t)size);
    memcpy(u->buf + u->len + 4, nal, size);
    u->len += 4 + size;
    return 0;
}

/* Counts a sent message against --drop-after / --exit-after. Returns
 * false when the connection must be dropped now. */
static bool count_sent(void)
{
    sent_total++;
    if (opt.exit_after >= 0 && sent_total >= opt.exit_after) {
        fprintf(stderr, "fakehost: exiting after %ld messages as asked\n", sent_total);
        exit(0);
    }
    if (opt.drop_after >= 0 && connections == 1 && sent_total >= opt.drop_after) {
        fprintf(stderr, "fakehost: dropping the connection after %ld messages\n", sent_total);
        return false;
    }
    return true;
}

static bool send_packet(int fd, uint16_t session, const struct hxfr_packet *pkt, int64_t pts,
                        struct units *u)
{
    u->len = 0;
    int n = hxfr_annexb_split(pkt->data, pkt->size, add_unit, u);
    if (n < 0) {
        return false;
    }
    struct hxfr_msg m = {.hdr.type = HXFR_MSG_FRAME_RESPONSE, .hdr.session_id = session};
    m.u.frame_response = (struct hxfr_frame_response){
        .pts = pts, .dts = pts, .is_keyframe = pkt->keyframe, .nal_count = (uint32_t)n};
    return send_msg(fd, &m, u->buf, (uint32_t)u->len);
}

struct conn {
    int fd;
    struct hxfr_encoder *enc;
    struct hxfr_encoder_config cfg;
    bool configured;
    bool force_next;
    uint8_t *pixels;
    size_t pixels_cap;
    struct units units;
};

static bool open_encoder(struct conn *c, uint32_t w, uint32_t h)
{
    hxfr__encoder_destroy(c->enc);
    c->cfg.width = w;
    c->cfg.height = h;
    c->enc = hxfr__encoder_create(&c->cfg);
    return c->enc != NULL;
}

static bool on_config(struct conn *c, const struct hxfr_msg *m)
{
    const struct hxfr_config_req *q = &m->u.config_req;
    memset(&c->cfg, 0, sizeof(c->cfg));
    c->cfg.bitrate = q->bitrate;
    c->cfg.framerate_num = q->framerate_num;
    c->cfg.framerate_den = q->framerate_den;
    c->cfg.profile = q->profile;
    c->cfg.level = q->level;
    c->cfg.realtime = q->realtime != 0;
    /* A v1 host reads the keyframe-interval bytes as reserved. */
    c->cfg.gop = opt.hello_error ? 0 : q->gop;
    c->cfg.threads = 1;
    hxfr__encoder_config_defaults(&c->cfg);
    if (opt.log) {
        fprintf(opt.log, "config %u %u %u %u\n", q->width, q->height, q->bitrate, q->gop);
        fflush(opt.log);
    }
    if (!open_encoder(c, q->width, q->height)) {
        c->configured = false;
        return send_error(c->fd, m->hdr.session_id, HXFR_STATUS_ENCODE_FAILED,
                          "cannot open the encoder");
    }
    c->configured = true;
    c->force_next = true;
    if (opt.hello_error) {
        /* A v1 host (Helix's) never answers CONFIG_REQ. */
        return true;
    }
    struct hxfr_msg r = {.hdr.type = HXFR_MSG_CONFIG_RESP, .hdr.session_id = m->hdr.session_id};
    r.u.config_resp = (struct hxfr_config_resp){
        .width = q->width,
        .height = q->height,
        .bitrate = c->enc->config.bitrate,
        .framerate_num = c->enc->config.framerate_num,
        .framerate_den = c->enc->config.framerate_den,
        .realtime = q->realtime,
        .gop = c->enc->config.gop,
    };
    snprintf(r.u.config_resp.encoder, sizeof(r.u.config_resp.encoder), "%s", c->enc->codec_name);
    return send_msg(c->fd, &r, NULL, 0);
}

/* A FRAME_REQUEST: the body (pixels) is still on the socket. */
static bool on_frame(struct conn *c, const struct hxfr_msg *m, uint32_t body_len)
{
    const struct hxfr_frame_request *f = &m->u.frame_request;
    struct hxfr_geometry g;
    int r = hxfr_geometry_compute(f->format, f->width, f->height, f->stride, 0, &g);
    if (r < 0 || !(m->hdr.flags & HXFR_FLAG_PIXEL_DATA) || g.size != body_len) {
        fprintf(stderr, "fakehost: bad frame request (%s)\n", hxfr_strerror(r));
        return false; /* a broken client: close it */
    }
    if (body_len > c->pixels_cap) {
        uint8_t *p = realloc(c->pixels, body_len);
        if (!p) {
            return false;
        }
        c->pixels = p;
        c->pixels_cap = body_len;
    }
    if (hxfr_test_read_full(c->fd, c->pixels, body_len) < 0) {
        return false;
    }
    long index = frames_seen++;
    if (index == opt.fail_frame) {
        char text[64];
        snprintf(text, sizeof(text), "fake encoder failure at frame %ld", index);
        return send_error(c->fd, m->hdr.session_id, HXFR_STATUS_ENCODE_FAILED, text) &&
               count_sent();
    }
    if (index == opt.empty_frame) {
        struct hxfr_msg e = {.hdr.type = HXFR_MSG_FRAME_RESPONSE,
                             .hdr.session_id = m->hdr.session_id};
        e.u.frame_response = (struct hxfr_frame_response){.pts = f->pts, .dts = f->pts};
        return send_msg(c->fd, &e, NULL, 0) && count_sent();
    }
    if (!c->configured) {
        return send_error(c->fd, m->hdr.session_id, HXFR_STATUS_NOT_CONFIGURED,
                          "CONFIG_REQ first") &&
               count_sent();
    }
    bool force = f->force_keyframe || c->force_next;
    if (f->width != c->cfg.width || f->height != c->cfg.height) {
        /* The size changed without a CONFIG_REQ: reopen, start at an IDR. */
        if (!open_encoder(c, f->width, f->height)) {
            return send_error(c->fd, m->hdr.session_id, HXFR_STATUS_ENCODE_FAILED,
                              "cannot reopen the encoder");
        }
        force = true;
    }
    if (f->force_keyframe && opt.log) {
        fprintf(opt.log, "force %ld\n", index);
        fflush(opt.log);
    }
    struct hxfr_image img;
    hxfr__image_from_geometry(&img, &g, c->pixels);
    struct hxfr_packet pkt;
    r = hxfr__encoder_encode(c->enc, &img, f->pts, force, &pkt);
    if (r < 0) {
        return send_error(c->fd, m->hdr.session_id, HXFR_STATUS_ENCODE_FAILED, "encode failed") &&
               count_sent();
    }
    c->force_next = false;
    return send_packet(c->fd, m->hdr.session_id, &pkt, f->pts, &c->units) && count_sent();
}

static bool stream_ended_once;

/* Push mode: stream pattern frames until the subscriber goes away (returns
 * false) or --end-after ends the stream (returns true: keep serving). */
static bool push_stream(struct conn *c, uint16_t scanout)
{
    bool ended = false;
    bool force = true;
    struct hxfr_encoder_config cfg = {.width = opt.push_w,
                                      .height = opt.push_h,
                                      .framerate_num = opt.push_fps,
                                      .framerate_den = 1,
                                      .realtime = true,
                                      .gop = opt.push_fps,
                                      .threads = 1};
    hxfr__encoder_config_defaults(&cfg);
    struct hxfr_encoder *enc = hxfr__encoder_create(&cfg);
    struct hxfr_geometry g;
    if (!enc ||
        hxfr_geometry_compute(HXFR_FORMAT_I420, opt.push_w, opt.push_h, opt.push_w, 0, &g) < 0) {
        fprintf(stderr, "fakehost: cannot open the push encoder\n");
        hxfr__encoder_destroy(enc);
        return false;
    }
    uint8_t *frame = malloc(g.size);
    int64_t period = 1000000000LL / opt.push_fps;
    /* Host pts on its own timeline, far from zero like a monotonic clock. */
    int64_t pts0 = 1000LL * 1000000000LL;
    for (uint64_t i = 0; frame; i++) {
        uint8_t *planes[3] = {frame + g.offset[0], frame + g.offset[1], frame + g.offset[2]};
        hxfr_pattern_render(HXFR_PATTERN_BUSY, HXFR_FORMAT_I420, opt.push_w, opt.push_h, i, planes,
                            g.stride);
        struct hxfr_image img = {.format = HXFR_FORMAT_I420,
                                 .width = opt.push_w,
                                 .height = opt.push_h,
                                 .planes = {planes[0], planes[1], planes[2]},
                                 .strides = {g.stride[0], g.stride[1], g.stride[2]}};
        struct hxfr_packet pkt;
        int64_t pts = pts0 + (int64_t)i * period;
        if (hxfr__encoder_encode(enc, &img, pts, force, &pkt) < 0 ||
            !send_packet(c->fd, scanout, &pkt, pts, &c->units) || !count_sent()) {
            break;
        }
        force = false;
        if (!stream_ended_once && opt.end_after >= 0 && (long)i + 1 >= opt.end_after) {
            stream_ended_once = true;
            char text[64];
            snprintf(text, sizeof(text), "scanout %u disabled by its publisher", scanout);
            ended = send_error(c->fd, scanout, HXFR_STATUS_NO_SCANOUT, text);
            break;
        }
        /* Pace the stream and notice a subscriber that left. */
        struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
        int n = poll(&pfd, 1, (int)(period / 1000000));
        if (n > 0) {
            uint8_t hdr[HXFR_HEADER_SIZE];
            struct hxfr_header h;
            uint8_t payload[HXFR_MAX_FIXED_SIZE];
            if (hxfr_test_read_full(c->fd, hdr, sizeof(hdr)) < 0) {
                break;
            }
            hxfr_header_decode(hdr, &h);
            if (hxfr_header_validate(&h, 0) < 0 || h.payload_size > sizeof(payload) ||
                hxfr_test_read_full(c->fd, payload, h.payload_size) < 0) {
                break;
            }
            if (h.type == HXFR_MSG_PING) {
                struct hxfr_msg pong = {.hdr.type = HXFR_MSG_PONG};
                if (!send_msg(c->fd, &pong, NULL, 0)) {
                    break;
                }
            } else if (h.type == HXFR_MSG_KEYFRAME_REQ && h.session_id == scanout) {
                force = true;
                if (opt.log) {
                    fprintf(opt.log, "keyreq %llu\n", (unsigned long long)i);
                    fflush(opt.log);
                }
            }
        }
    }
    free(frame);
    hxfr__encoder_destroy(enc);
    return ended;
}

static void serve(int fd)
{
    struct conn c = {.fd = fd};
    connections++;
    for (;;) {
        uint8_t hdr[HXFR_HEADER_SIZE];
        if (hxfr_test_read_full(fd, hdr, sizeof(hdr)) < 0) {
            break;
        }
        struct hxfr_header h;
        hxfr_header_decode(hdr, &h);
        int r = hxfr_header_validate(&h, 0);
        int fixed = hxfr_msg_fixed_size(h.type);
        uint8_t payload[HXFR_MAX_FIXED_SIZE];
        struct hxfr_msg m;
        if (r < 0 || fixed < 0 || hxfr_test_read_full(fd, payload, (size_t)fixed) < 0 ||
            hxfr_msg_decode(&h, payload, (size_t)fixed, &m) < 0) {
            send_error(fd, h.session_id, HXFR_STATUS_INVALID_MSG, "invalid message");
            break;
        }
        uint32_t body = h.payload_size - (uint32_t)fixed;
        bool ok = true;
        struct hxfr_msg out = {.hdr.session_id = h.session_id};
        switch (h.type) {
        case HXFR_MSG_HELLO:
            if (opt.hello_error) {
                ok = send_error(fd, h.session_id, HXFR_STATUS_INVALID_MSG, "unknown type");
                break;
            }
            out.hdr.type = HXFR_MSG_HELLO_RESP;
            out.u.hello = (struct hxfr_hello){.version = HXFR_VERSION_1,
                                              .caps = HXFR_CAP_CONFIG_GOP | HXFR_CAP_SCANOUT,
                                              .max_width = HXFR_MAX_DIM_HARD,
                                              .max_height = HXFR_MAX_DIM_HARD};
            ok = send_msg(fd, &out, NULL, 0);
            break;
        case HXFR_MSG_CONFIG_REQ:
            ok = on_config(&c, &m);
            break;
        case HXFR_MSG_FRAME_REQUEST:
            ok = on_frame(&c, &m, body);
            break;
        case HXFR_MSG_KEYFRAME_REQ:
            c.force_next = true;
            break;
        case HXFR_MSG_PING:
            out.hdr.type = HXFR_MSG_PONG;
            ok = send_msg(fd, &out, NULL, 0);
            break;
        case HXFR_MSG_SUBSCRIBE: {
            uint32_t id = m.u.subscribe.scanout_id;
            out.hdr.type = HXFR_MSG_SUBSCRIBE_RESP;
            out.hdr.session_id = (uint16_t)id;
            out.u.subscribe_resp.scanout_id = id;
            out.u.subscribe_resp.success = id < opt.scanouts;
            ok = send_msg(fd, &out, NULL, 0);
            if (ok && id < opt.scanouts) {
                ok = push_stream(&c, (uint16_t)id);
            }
            break;
        }
        default:
            ok = send_error(fd, h.session_id, HXFR_STATUS_UNSUPPORTED, "not in the fake host");
            break;
        }
        if (!ok) {
            break;
        }
    }
    close(fd);
    hxfr__encoder_destroy(c.enc);
    free(c.pixels);
    free(c.units.buf);
}

static void usage(void)
{
    fprintf(stderr, "usage: hxfr-fakehost SOCKET_PATH [--hello-error] [--fail-frame N] "
                    "[--drop-after N] [--exit-after N] [--end-after N] [--empty-frame N] "
                    "[--scanouts N] [--push W H FPS] "
                    "[--log PATH]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage();
    }
    opt.path = argv[1];
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        bool more = i + 1 < argc;
        if (strcmp(a, "--hello-error") == 0) {
            opt.hello_error = true;
        } else if (strcmp(a, "--fail-frame") == 0 && more) {
            opt.fail_frame = atol(argv[++i]);
        } else if (strcmp(a, "--drop-after") == 0 && more) {
            opt.drop_after = atol(argv[++i]);
        } else if (strcmp(a, "--exit-after") == 0 && more) {
            opt.exit_after = atol(argv[++i]);
        } else if (strcmp(a, "--empty-frame") == 0 && more) {
            opt.empty_frame = atol(argv[++i]);
        } else if (strcmp(a, "--end-after") == 0 && more) {
            opt.end_after = atol(argv[++i]);
        } else if (strcmp(a, "--scanouts") == 0 && more) {
            opt.scanouts = (unsigned)atoi(argv[++i]);
        } else if (strcmp(a, "--push") == 0 && i + 3 < argc) {
            opt.push_w = (uint32_t)atoi(argv[++i]);
            opt.push_h = (uint32_t)atoi(argv[++i]);
            opt.push_fps = (uint32_t)atoi(argv[++i]);
        } else if (strcmp(a, "--log") == 0 && more) {
            opt.log = fopen(argv[++i], "a");
            if (!opt.log) {
                perror("fakehost: log");
                return 1;
            }
        } else {
            usage();
        }
    }
    if (opt.push_w == 0 || opt.push_h == 0 || opt.push_fps == 0) {
        usage();
    }
    signal(SIGPIPE, SIG_IGN);
    /* Keep the test logs readable: libx264 reports every encoder close. */
    av_log_set_level(AV_LOG_ERROR);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(opt.path) >= sizeof(sa.sun_path)) {
        fprintf(stderr, "fakehost: socket path too long\n");
        return 1;
    }
    strcpy(sa.sun_path, opt.path);
    unlink(opt.path);
    int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 8) < 0) {
        perror("fakehost: listen");
        return 1;
    }
    printf("READY\n");
    fflush(stdout);
    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR) {
                continue;
            }
            perror("fakehost: accept");
            return 1;
        }
        serve(fd);
    }
}
