/* libhxfr-client against fake servers: a socketpair end driven from the
 * test (or a thread), a UNIX listener in a temporary folder for reconnects,
 * and a pty master standing in for a virtio-serial port. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <hxfr/client.h>

#include "harness.h"
#include "io.h"

/* ---- fake server side ------------------------------------------------- */

static void read_full(int fd, void *buf, size_t n)
{
    int r = hxfr_test_read_full(fd, buf, n);
    if (r < 0) {
        fprintf(stderr, "fake server: read failed (%s)\n", strerror(-r));
        exit(1);
    }
}

static void write_full(int fd, const void *buf, size_t n)
{
    const uint8_t *p = buf;
    while (n > 0) {
        ssize_t r = write(fd, p, n);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            fprintf(stderr, "fake server: write failed (%s)\n", strerror(errno));
            exit(1);
        }
        p += r;
        n -= (size_t)r;
    }
}

/* Reads one message; *body (malloc'd, caller frees) gets the variable part. */
static void srv_recv(int fd, struct hxfr_msg *m, uint8_t **body, uint32_t *body_len)
{
    uint8_t hdr[HXFR_HEADER_SIZE];
    read_full(fd, hdr, sizeof(hdr));
    struct hxfr_header h;
    hxfr_header_decode(hdr, &h);
    if (hxfr_header_validate(&h, 0) < 0) {
        fprintf(stderr, "fake server: bad header from client\n");
        exit(1);
    }
    uint8_t *payload = malloc(h.payload_size + 1u);
    read_full(fd, payload, h.payload_size);
    int fixed = hxfr_msg_fixed_size(h.type);
    if (fixed < 0 || hxfr_msg_decode(&h, payload, (size_t)fixed, m) < 0) {
        fprintf(stderr, "fake server: undecodable message from client\n");
        exit(1);
    }
    uint32_t blen = h.payload_size - (uint32_t)fixed;
    if (body) {
        *body = malloc(blen + 1u);
        memcpy(*body, payload + fixed, blen);
        *body_len = blen;
    }
    free(payload);
}

static void srv_send(int fd, struct hxfr_msg *m, const uint8_t *body, uint32_t body_len)
{
    uint8_t buf[HXFR_HEADER_SIZE + HXFR_MAX_FIXED_SIZE];
    int n = hxfr_msg_encode(m, body_len, buf, sizeof(buf));
    if (n < 0) {
        fprintf(stderr, "fake server: encode failed\n");
        exit(1);
    }
    write_full(fd, buf, (size_t)n);
    if (body_len) {
        write_full(fd, body, body_len);
    }
}

/* A FRAME_RESPONSE with units given as one string each (bytes + length). */
static void srv_response(int fd, int64_t pts, bool key, int n, const uint8_t *const *units,
                         const uint32_t *sizes)
{
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        total += 4 + sizes[i];
    }
    uint8_t *body = malloc(total + 1);
    size_t pos = 0;
    for (int i = 0; i < n; i++) {
        hxfr_put_u32(body + pos, sizes[i]);
        memcpy(body + pos + 4, units[i], sizes[i]);
        pos += 4 + sizes[i];
    }
    struct hxfr_msg m = {.hdr.type = HXFR_MSG_FRAME_RESPONSE};
    m.u.frame_response = (struct hxfr_frame_response){
        .pts = pts, .dts = pts, .is_keyframe = key, .nal_count = (uint32_t)n};
    srv_send(fd, &m, body, (uint32_t)total);
    free(body);
}

static const uint8_t unit_sps[] = {0, 0, 0, 1, 0x67, 0xAA};
static const uint8_t unit_pps[] = {0, 0, 0, 1, 0x68, 0xBB};
static const uint8_t unit_idr[] = {0, 0, 0, 1, 0x65, 0xCC, 0xDD};
static const uint8_t unit_p[] = {0, 0, 1, 0x41, 0x9A};

static void srv_key(int fd, int64_t pts)
{
    const uint8_t *u[3] = {unit_sps, unit_pps, unit_idr};
    uint32_t s[3] = {sizeof(unit_sps), sizeof(unit_pps), sizeof(unit_idr)};
    srv_response(fd, pts, true, 3, u, s);
}

static void srv_p(int fd, int64_t pts)
{
    const uint8_t *u[1] = {unit_p};
    uint32_t s[1] = {sizeof(unit_p)};
    srv_response(fd, pts, false, 1, u, s);
}

static void srv_error(int fd, int32_t code, const char *text)
{
    struct hxfr_msg m;
    hxfr_msg_error(&m, 0, code, "%s", text);
    srv_send(fd, &m, NULL, 0);
}

static void srv_config_resp(int fd, const struct hxfr_config_req *req)
{
    struct hxfr_msg m = {.hdr.type = HXFR_MSG_CONFIG_RESP};
    m.u.config_resp.width = req->width;
    m.u.config_resp.height = req->height;
    m.u.config_resp.gop = req->gop;
    snprintf(m.u.config_resp.encoder, sizeof(m.u.config_resp.encoder), "fake");
    srv_send(fd, &m, NULL, 0);
}

/* Reads one FRAME_REQUEST (checks the type) and drops the pixels. */
static struct hxfr_frame_request srv_frame(int fd)
{
    struct hxfr_msg m;
    uint8_t *body;
    uint32_t blen;
    srv_recv(fd, &m, &body, &blen);
    if (m.hdr.type != HXFR_MSG_FRAME_REQUEST) {
        fprintf(stderr, "fake server: expected FRAME_REQUEST, got 0x%02x\n", m.hdr.type);
        exit(1);
    }
    free(body);
    return m.u.frame_request;
}

/* ---- client side recording ----------------------------------------- */

#define MAX_REC 64

struct rec_result {
    int status;
    void *user;
    uint64_t seq;
    int64_t pts;
    bool keyframe;
    bool forced;
    uint8_t data[64];
    size_t size;
    int32_t code;
    char message[HXFR_ERROR_MESSAGE_LEN];
};

struct rec {
    int n;
    struct rec_result r[MAX_REC];
    int disconnects;
    int last_disconnect_err;
    int reconnects;
    int remote_events;
    int reentry;
    struct hxfr_client *client;
};

static void rec_frame(void *data, const struct hxfr_client_result *res)
{
    struct rec *rec = data;
    if (rec->client) {
        /* Calls back into the client from a callback are refused. */
        struct hxfr_client_frame f = {0};
        if (hxfr_client_submit(rec->client, &f, 0) == -EDEADLK) {
            rec->reentry++;
        }
    }
    if (rec->n >= MAX_REC) {
        return;
    }
    struct rec_result *r = &rec->r[rec->n++];
    r->status = res->status;
    r->user = res->user;
    r->seq = res->seq;
    r->pts = res->pts;
    r->keyframe = res->keyframe;
    r->forced = res->forced_keyframe;
    r->size = res->size;
    memcpy(r->data, res->data, res->size < sizeof(r->data) ? res->size : sizeof(r->data));
    r->code = res->remote_code;
    snprintf(r->message, sizeof(r->message), "%s", res->remote_message);
}

static void rec_event(void *data, const struct hxfr_client_event *ev)
{
    struct rec *rec = data;
    if (ev->type == HXFR_CLIENT_EVENT_DISCONNECTED) {
        rec->disconnects++;
        rec->last_disconnect_err = ev->err;
    } else if (ev->type == HXFR_CLIENT_EVENT_RECONNECTED) {
        rec->reconnects++;
    } else {
        rec->remote_events++;
    }
}

static struct hxfr_client *new_client(struct rec *rec, unsigned window, bool hello)
{
    struct hxfr_client_options o;
    hxfr_client_options_init(&o);
    o.window = window;
    o.hello = hello;
    o.io_timeout_ms = 3000;
    o.reconnect_min_ms = 10;
    o.reconnect_max_ms = 100;
    o.on_frame = rec_frame;
    o.on_event = rec_event;
    o.user_data = rec;
    struct hxfr_client *c = hxfr_client_new(&o);
    CHECK(c != NULL);
    return c;
}

/* A client on one end of a socketpair; *srv gets the other end. */
static struct hxfr_client *pair_client(struct rec *rec, unsigned window, int *srv)
{
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    struct hxfr_client *c = new_client(rec, window, false);
    CHECK_EQ(hxfr_client_connect_fd(c, sv[0]), 0);
    *srv = sv[1];
    return c;
}

static uint8_t small_pixels[16 * 16 * 4];

static struct hxfr_client_frame small_frame(int64_t pts, void *user)
{
    struct hxfr_client_frame f = {
        .format = HXFR_FORMAT_ARGB8888,
        .width = 16,
        .height = 16,
        .planes = {small_pixels},
        .strides = {64},
        .pts = pts,
        .user = user,
    };
    return f;
}

TEST(options_validated)
{
    struct hxfr_client_options o;
    hxfr_client_options_init(&o);
    CHECK_EQ(o.window, 4);
    o.window = 0;
    errno = 0;
    CHECK(hxfr_client_new(&o) == NULL);
    CHECK_EQ(errno, EINVAL);
    o.window = HXFR_CLIENT_MAX_WINDOW + 1;
    CHECK(hxfr_client_new(&o) == NULL);
    hxfr_client_destroy(NULL);
    struct hxfr_client *c = hxfr_client_new(NULL);
    CHECK(c != NULL);
    CHECK(!hxfr_client_connected(c));
    CHECK_EQ(hxfr_client_fd(c), -1);
    struct hxfr_client_frame f = small_frame(0, NULL);
    CHECK_EQ(hxfr_client_submit(c, &f, 0), -ENOTCONN);
    CHECK_EQ(hxfr_client_connect(c, "bogus:thing"), -EPROTONOSUPPORT);
    hxfr_client_destroy(c);
}

/* The exact bytes of a small packed frame: header, request, pixels. */
TEST(golden_bgra_frame)
{
    struct rec rec = {0};
    struct hxfr_client_options o;
    hxfr_client_options_init(&o);
    o.hello = false;
    o.session_id = 7;
    o.on_frame = rec_frame;
    o.user_data = &rec;
    struct hxfr_client *c = hxfr_client_new(&o);
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    CHECK_EQ(hxfr_client_connect_fd(c, sv[0]), 0);
    uint8_t px[32];
    for (int i = 0; i < 32; i++) {
        px[i] = (uint8_t)(0xA0 + i);
    }
    struct hxfr_client_frame f = {
        .format = HXFR_FORMAT_ARGB8888,
        .width = 4,
        .height = 2,
        .planes = {px},
        .strides = {16},
        .pts = 0x0102030405060708,
        .duration = 1000,
        .force_keyframe = true,
    };
    CHECK_EQ(hxfr_client_submit(c, &f, 0), 0);
    CHECK_EQ(hxfr_client_in_flight(c), 1);
    static const uint8_t want[12 + 44] = {
        0x48, 0x58, 0x46, 0x52, 0x01, 0x01, 0x07, 0x00, 0x4C, 0x00, 0x00, 0x00, /* header */
        0x00, 0x00, 0x00, 0x00,                                                 /* resource_id */
        0x04, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00,                         /* width, height */
        0x41, 0x52, 0x32, 0x34,                                                 /* AR24 */
        0x10, 0x00, 0x00, 0x00,                                                 /* stride */
        0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01,                         /* pts */
        0xE8, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,                         /* duration */
        0x01, 0,    0,    0,    0,    0,    0,    0, /* force_keyframe, reserved */
    };
    uint8_t got[sizeof(want) + 32];
    read_full(sv[1], got, sizeof(got));
    CHECK_MEM(got, want, sizeof(want));
    CHECK_MEM(got + sizeof(want), px, 32);
    /* Nothing more was written. */
    fcntl(sv[1], F_SETFL, O_NONBLOCK);
    uint8_t extra;
    CHECK(read(sv[1], &extra, 1) < 0 && errno == EAGAIN);
    hxfr_client_destroy(c);
    close(sv[1]);
}

/* A frame by resource id: the FRAME_REQUEST carries the id and no
 * PIXEL_DATA flag and no body; the answer (here RESOURCE_NOT_FOUND, what
 * hxfrd says) is that frame's result. Id 0 is refused locally. */
TEST(submit_resource_golden)
{
    struct rec rec = {0};
    struct hxfr_client_options o;
    hxfr_client_options_init(&o);
    o.hello = false;
    o.on_frame = rec_frame;
    o.user_data = &rec;
    struct hxfr_client *c = hxfr_client_new(&o);
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    CHECK_EQ(hxfr_client_connect_fd(c, sv[0]), 0);
    int tag;
    struct hxfr_client_frame f = {
        .format = HXFR_FORMAT_XRGB8888,
        .width = 64,
        .height = 32,
        .strides = {256},
        .pts = 5,
        .user = &tag,
    };
    CHECK_EQ(hxfr_client_submit_resource(c, 0, &f, 0), -EINVAL);
    CHECK_EQ(hxfr_client_submit_resource(c, 0x11223344, &f, 0), 0);
    struct hxfr_msg m;
    uint8_t *body;
    uint32_t blen;
    srv_recv(sv[1], &m, &body, &blen);
    CHECK_EQ(m.hdr.type, HXFR_MSG_FRAME_REQUEST);
    CHECK_EQ(m.hdr.flags, 0);
    CHECK_EQ(blen, 0);
    CHECK_EQ(m.u.frame_request.resource_id, 0x11223344u);
    CHECK_EQ(m.u.frame_request.width, 64);
    CHECK_EQ(m.u.frame_request.height, 32);
    CHECK_EQ(m.u.frame_request.stride, 256);
    CHECK_EQ(m.u.frame_request.format, HXFR_FORMAT_XRGB8888);
    free(body);
    srv_error(sv[1], HXFR_STATUS_RESOURCE_NOT_FOUND, "no such resource");
    CHECK_EQ(hxfr_client_flush(c, 5000), 0);
    CHECK_EQ(rec.n, 1);
    CHECK_EQ(rec.r[0].status, -HXFR_EREMOTE);
    CHECK_EQ(rec.r[0].code, HXFR_STATUS_RESOURCE_NOT_FOUND);
    CHECK(rec.r[0].user == &tag);
    hxfr_client_destroy(c);
    close(sv[1]);
}

/* Chroma strides that do not follow from the luma stride: sent row by row
 * at the packed stride, straight from the caller's rows. */
TEST(golden_i420_rows)
{
    struct rec rec = {0};
    int srv;
    struct hxfr_client *c = pair_client(&rec, 4, &srv);
    uint8_t y[2 * 8], u[6], v[6];
    for (int i = 0; i < 16; i++) {
        y[i] = (uint8_t)(0x10 + i);
    }
    for (int i = 0; i < 6; i++) {
        u[i] = (uint8_t)(0x80 + i);
        v[i] = (uint8_t)(0xC0 + i);
    }
    struct hxfr_client_frame f = {
        .format = HXFR_FORMAT_I420,
        .width = 4,
        .height = 2,
        .planes = {y, u, v},
        .strides = {8, 6, 6},
    };
    CHECK_EQ(hxfr_client_submit(c, &f, 0), 0);
    uint8_t got[12 + 44 + 12];
    read_full(srv, got, sizeof(got));
    CHECK_EQ(hxfr_get_u32(got + 8), 44 + 12);
    CHECK_EQ(hxfr_get_u32(got + 12 + 12), HXFR_FORMAT_I420);
    CHECK_EQ(hxfr_get_u32(got + 12 + 16), 4); /* packed stride on the wire */
    CHECK_EQ(got[12 + 36], 0);                /* no forced keyframe */
    static const uint8_t pixels[12] = {0x10, 0x11, 0x12, 0x13, 0x18, 0x19,
                                       0x1A, 0x1B, 0x80, 0x81, 0xC0, 0xC1};
    CHECK_MEM(got + 56, pixels, 12);
    hxfr_client_destroy(c);
    close(srv);
}

/* NV12 with a padded luma stride whose UV plane has the same stride: two
 * blocks, sent as they are, padding included, stride on the wire. */
TEST(nv12_blocks_keep_stride)
{
    struct rec rec = {0};
    int srv;
    struct hxfr_client *c = pair_client(&rec, 4, &srv);
    uint8_t y[6 * 4], uv[6 * 2];
    for (size_t i = 0; i < sizeof(y); i++) {
        y[i] = (uint8_t)i;
    }
    for (size_t i = 0; i < sizeof(uv); i++) {
        uv[i] = (uint8_t)(0x80 + i);
    }
    struct hxfr_client_frame f = {
        .format = HXFR_FORMAT_NV12,
        .width = 4,
        .height = 4,
        .planes = {y, uv},
        .strides = {6, 6},
    };
    CHECK_EQ(hxfr_client_submit(c, &f, 0), 0);
    uint8_t got[12 + 44 + sizeof(y) + sizeof(uv)];
    read_full(srv, got, sizeof(got));
    CHECK_EQ(hxfr_get_u32(got + 8), 44 + sizeof(y) + sizeof(uv));
    CHECK_EQ(hxfr_get_u32(got + 12 + 16), 6);
    CHECK_MEM(got + 56, y, sizeof(y));
    CHECK_MEM(got + 56 + sizeof(y), uv, sizeof(uv));
    hxfr_client_destroy(c);
    close(srv);
}

TEST(bad_geometry_sends_nothing)
{
    struct rec rec = {0};
    int srv;
    struct hxfr_client *c = pair_client(&rec, 4, &srv);
    struct hxfr_client_frame f = small_frame(0, NULL);
    f.strides[0] = 8; /* below 16 pixels x 4 bytes */
    CHECK_EQ(hxfr_client_submit(c, &f, 0), -HXFR_ESTRIDE);
    f = small_frame(0, NULL);
    f.format = 0x12345678;
    CHECK_EQ(hxfr_client_submit(c, &f, 0), -HXFR_EFORMAT);
    f = small_frame(0, NULL);
    f.width = 0;
    CHECK_EQ(hxfr_client_submit(c, &f, 0), -HXFR_EZERO);
    f = small_frame(0, NULL);
    f.format = HXFR_FORMAT_NV12;
    f.width = 15;
    CHECK_EQ(hxfr_client_submit(c, &f, 0), -HXFR_EODD);
    f = small_frame(0, NULL);
    f.planes[0] = NULL;
    CHECK_EQ(hxfr_client_submit(c, &f, 0), -EINVAL);
    CHECK_EQ(hxfr_client_in_flight(c), 0);
    fcntl(srv, F_SETFL, O_NONBLOCK);
    uint8_t b;
    CHECK(read(srv, &b, 1) < 0 && errno == EAGAIN);
    hxfr_client_destroy(c);
    close(srv);
}

TEST(window_respected)
{
    struct rec rec = {0};
    int srv;
    struct hxfr_client *c = pair_client(&rec, 3, &srv);
    for (int i = 0; i < 3; i++) {
        struct hxfr_client_frame f = small_frame(i, NULL);
        CHECK_EQ(hxfr_client_submit(c, &f, 0), 0);
    }
    CHECK_EQ(hxfr_client_in_flight(c), 3);
    struct hxfr_client_frame f = small_frame(3, NULL);
    CHECK_EQ(hxfr_client_submit(c, &f, 0), -EAGAIN);
    /* A full window with a silent host times out instead of hanging. */
    CHECK_EQ(hxfr_client_submit(c, &f, 50), -EAGAIN);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(srv_frame(srv).pts, i);
    }
    srv_p(srv, 0);
    CHECK_EQ(hxfr_client_submit(c, &f, 2000), 0);
    CHECK_EQ(rec.n, 1);
    CHECK_EQ(hxfr_client_in_flight(c), 3);
    CHECK_EQ(srv_frame(srv).pts, 3);
    hxfr_client_destroy(c);
    close(srv);
}

TEST(results_fifo_with_user_pointers)
{
    struct rec rec = {0};
    int srv;
    struct hxfr_client *c = pair_client(&rec, 4, &srv);
    rec.client = c;
    int users[3];
    for (int i = 0; i < 3; i++) {
        struct hxfr_client_frame f = small_frame(10 * (i + 1), &users[i]);
        CHECK_EQ(hxfr_client_submit(c, &f, 0), 0);
    }
    for (int i = 0; i < 3; i++) {
        srv_frame(srv);
    }
    srv_key(srv, 10);
    srv_p(srv, 20);
    srv_p(srv, 30);
    CHECK_EQ(hxfr_client_flush(c, 2000), 0);
    CHECK_EQ(rec.n, 3);
    CHECK_EQ(rec.reentry, 3);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(rec.r[i].status, 0);
        CHECK(rec.r[i].user == &users[i]);
        CHECK_EQ(rec.r[i].seq, i);
        CHECK_EQ(rec.r[i].pts, 10 * (i + 1));
    }
    CHECK(rec.r[0].keyframe);
    CHECK(!rec.r[1].keyframe);
    /* The AU is the units concatenated, without the size fields. */
    uint8_t want[sizeof(unit_sps) + sizeof(unit_pps) + sizeof(unit_idr)];
    memcpy(want, unit_sps, sizeof(unit_sps));
    memcpy(want + sizeof(unit_sps), unit_pps, sizeof(unit_pps));
    memcpy(want + sizeof(unit_sps) + sizeof(unit_pps), unit_idr, sizeof(unit_idr));
    CHECK_EQ(rec.r[0].size, sizeof(want));
    CHECK_MEM(rec.r[0].data, want, sizeof(want));
    CHECK_EQ(rec.r[1].size, sizeof(unit_p));
    CHECK_MEM(rec.r[1].data, unit_p, sizeof(unit_p));
    hxfr_client_destroy(c);
    close(srv);
}

TEST(error_matched_to_its_frame)
{
    struct rec rec = {0};
    int srv;
    struct hxfr_client *c = pair_client(&rec, 4, &srv);
    int users[3];
    for (int i = 0; i < 3; i++) {
        struct hxfr_client_frame f = small_frame(i, &users[i]);
        CHECK_EQ(hxfr_client_submit(c, &f, 0), 0);
        srv_frame(srv);
    }
    srv_key(srv, 0);
    srv_error(srv, HXFR_STATUS_ENCODE_FAILED, "encoder exploded");
    srv_p(srv, 2);
    CHECK_EQ(hxfr_client_flush(c, 2000), 0);
    CHECK_EQ(rec.n, 3);
    CHECK_EQ(rec.r[0].status, 0);
    CHECK_EQ(rec.r[1].status, -HXFR_EREMOTE);
    CHECK(rec.r[1].user == &users[1]);
    CHECK_EQ(rec.r[1].code, HXFR_STATUS_ENCODE_FAILED);
    CHECK(strcmp(rec.r[1].message, "encoder exploded") == 0);
    CHECK_EQ(rec.r[1].pts, 1);
    CHECK_EQ(rec.r[2].status, 0);
    CHECK_EQ(rec.r[2].pts, 2);
    const char *msg;
    CHECK_EQ(hxfr_client_last_remote_error(c, &msg), HXFR_STATUS_ENCODE_FAILED);
    /* An ERROR with nothing in flight is an event, not a frame result. */
    srv_error(srv, HXFR_STATUS_INVALID_MSG, "stray");
    CHECK_EQ(hxfr_client_dispatch(c, 0), 0);
    CHECK_EQ(rec.remote_events, 1);
    CHECK(hxfr_client_connected(c));
    hxfr_client_destroy(c);
    close(srv);
}

/* The deadlock case: the host blocks writing big responses while the client
 * writes a frame far larger than the socket buffers. */
struct big_ctx {
    int fd;
    uint32_t unit_size;
};

static void *big_server(void *arg)
{
    struct big_ctx *ctx = arg;
    for (int i = 0; i < 4; i++) {
        srv_frame(ctx->fd);
    }
    uint8_t *unit = calloc(1, ctx->unit_size);
    unit[3] = 1;
    unit[4] = 0x41;
    const uint8_t *u[1] = {unit};
    for (int i = 0; i < 4; i++) {
        srv_response(ctx->fd, i, false, 1, u, &ctx->unit_size);
    }
    struct hxfr_frame_request fr = srv_frame(ctx->fd);
    srv_response(ctx->fd, fr.pts, false, 1, u, &ctx->unit_size);
    free(unit);
    return NULL;
}

TEST(big_frame_while_host_sends_responses)
{
    struct rec rec = {0};
    int srv;
    struct hxfr_client *c = pair_client(&rec, 8, &srv);
    for (int i = 0; i < 4; i++) {
        struct hxfr_client_frame f = small_frame(i, NULL);
        CHECK_EQ(hxfr_client_submit(c, &f, 0), 0);
    }
    struct big_ctx ctx = {.fd = srv, .unit_size = 1u << 20};
    pthread_t th;
    CHECK(pthread_create(&th, NULL, big_server, &ctx) == 0);
    uint32_t w = 2048, h = 2048;
    uint8_t *big = calloc((size_t)w * h, 4);
    CHECK(big != NULL);
    struct hxfr_client_frame f = {
        .format = HXFR_FORMAT_XRGB8888,
        .width = w,
        .height = h,
        .planes = {big},
        .pts = 99,
    };
    CHECK_EQ(hxfr_client_submit(c, &f, 5000), 0);
    CHECK_EQ(hxfr_client_flush(c, 10000), 0);
    pthread_join(th, NULL);
    CHECK_EQ(rec.n, 5);
    for (int i = 0; i < 5; i++) {
        CHECK_EQ(rec.r[i].status, 0);
        CHECK_EQ(rec.r[i].size, 1u << 20);
    }
    CHECK_EQ(rec.r[4].pts, 99);
    free(big);
    hxfr_client_destroy(c);
    close(srv);
}

TEST(eof_mid_response_fails_frames)
{
    struct rec rec = {0};
    int srv;
    struct hxfr_client *c = pair_client(&rec, 4, &srv);
    for (int i = 0; i < 2; i++) {
        struct hxfr_client_frame f = small_frame(i, NULL);
        CHECK_EQ(hxfr_client_submit(c, &f, 0), 0);
        srv_frame(srv);
    }
    /* A response header announcing 100 body bytes, then 10 of them. */
    struct hxfr_msg m = {.hdr.type = HXFR_MSG_FRAME_RESPONSE};
    m.u.frame_response.nal_count = 1;
    uint8_t buf[64];
    int n = hxfr_msg_encode(&m, 100, buf, sizeof(buf));
    CHECK(n > 0);
    write_full(srv, buf, (size_t)n);
    write_full(srv, "0123456789", 10);
    close(srv);
    int r = hxfr_client_dispatch(c, 2000);
    CHECK_EQ(r, -ECONNRESET);
    CHECK_EQ(rec.n, 2);
    CHECK_EQ(rec.r[0].status, -ECONNRESET);
    CHECK_EQ(rec.r[1].status, -ECONNRESET);
    CHECK_EQ(rec.disconnects, 1);
    CHECK(!hxfr_client_connected(c));
    CHECK_EQ(hxfr_client_in_flight(c), 0);
    struct hxfr_client_frame f = small_frame(5, NULL);
    CHECK_EQ(hxfr_client_submit(c, &f, 0), -ENOTCONN);
    hxfr_client_destroy(c);
}

/* The host answers some frames and closes before the client writes the
 * next one: the write fails (EPIPE), yet every answer already sent is
 * delivered, and only the unanswered frames fail. */
TEST(write_failure_delivers_answers_already_sent)
{
    struct rec rec = {0};
    int srv;
    struct hxfr_client *c = pair_client(&rec, 8, &srv);
    for (int i = 0; i < 5; i++) {
        struct hxfr_client_frame f = small_frame(i, (void *)(intptr_t)(i + 1));
        CHECK_EQ(hxfr_client_submit(c, &f, 0), 0);
    }
    for (int i = 0; i < 5; i++) {
        srv_frame(srv);
    }
    srv_key(srv, 0);
    srv_p(srv, 1);
    srv_p(srv, 2);
    close(srv);
    /* Nothing was read yet: the answers wait in the client's socket. */
    CHECK_EQ(rec.n, 0);
    struct hxfr_client_frame f = small_frame(5, NULL);
    CHECK_EQ(hxfr_client_submit(c, &f, 0), -EPIPE);
    CHECK_EQ(rec.n, 5);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(rec.r[i].status, 0);
        CHECK_EQ(rec.r[i].pts, i);
        CHECK(rec.r[i].user == (void *)(intptr_t)(i + 1));
    }
    CHECK(rec.r[0].keyframe);
    CHECK_EQ(rec.r[1].size, sizeof(unit_p));
    CHECK_EQ(rec.r[3].status, -EPIPE);
    CHECK_EQ(rec.r[4].status, -EPIPE);
    CHECK_EQ(rec.r[4].pts, 4);
    CHECK_EQ(rec.disconnects, 1);
    CHECK_EQ(rec.last_disconnect_err, -EPIPE);
    CHECK(!hxfr_client_connected(c));
    CHECK_EQ(hxfr_client_in_flight(c), 0);
    hxfr_client_destroy(c);
}

/* The same while a big frame is being written: the host reads part of it,
 * answers the frames before it and closes. Whether the client sees the
 * answers, the EOF or the failed write first, all answers arrive. */
struct close_ctx {
    int fd;
    int answer;
};

static void *answer_and_close_server(void *arg)
{
    struct close_ctx *ctx = arg;
    for (int i = 0; i < ctx->answer + 1; i++) {
        uint8_t hdr[HXFR_HEADER_SIZE + HXFR_FRAME_REQUEST_SIZE];
        if (i < ctx->answer) {
            srv_frame(ctx->fd);
        } else {
            /* The big frame: its header and request, none of the pixels. */
            read_full(ctx->fd, hdr, sizeof(hdr));
        }
    }
    for (int i = 0; i < ctx->answer; i++) {
        srv_p(ctx->fd, i);
    }
    close(ctx->fd);
    return NULL;
}

TEST(host_closes_during_big_write_answers_delivered)
{
    struct rec rec = {0};
    int srv;
    struct hxfr_client *c = pair_client(&rec, 8, &srv);
    for (int i = 0; i < 3; i++) {
        struct hxfr_client_frame f = small_frame(i, NULL);
        CHECK_EQ(hxfr_client_submit(c, &f, 0), 0);
    }
    struct close_ctx ctx = {.fd = srv, .answer = 3};
    pthread_t th;
    CHECK(pthread_create(&th, NULL, answer_and_close_server, &ctx) == 0);
    uint32_t w = 2048, h = 2048;
    uint8_t *big = calloc((size_t)w * h, 4);
    CHECK(big != NULL);
    struct hxfr_client_frame f = {
        .format = HXFR_FORMAT_XRGB8888, .width = w, .height = h, .planes = {big}, .pts = 99};
    int r = hxfr_client_submit(c, &f, 5000);
    pthread_join(th, NULL);
    if (r != -EPIPE && r != -ECONNRESET) {
        FAIL("submit returned %d, want -EPIPE or -ECONNRESET", r);
    }
    CHECK_EQ(rec.n, 3);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(rec.r[i].status, 0);
        CHECK_EQ(rec.r[i].pts, i);
    }
    CHECK_EQ(rec.disconnects, 1);
    CHECK(!hxfr_client_connected(c));
    free(big);
    hxfr_client_destroy(c);
}

/* A reply that arrives right before the host closes still answers the
 * call waiting for it; the closed connection shows on the next call. */
struct reply_ctx {
    int fd;
    bool garbage; /* bytes with a bad magic after the reply, then close */
};

static void *reply_and_close_server(void *arg)
{
    struct reply_ctx *ctx = arg;
    int fd = ctx->fd;
    struct hxfr_msg m;
    srv_recv(fd, &m, NULL, NULL);
    if (m.hdr.type == HXFR_MSG_CONFIG_REQ) {
        srv_config_resp(fd, &m.u.config_req);
        if (ctx->garbage) {
            write_full(fd, "GARBAGE!GARBAGE!", 16);
        }
    } else if (m.hdr.type == HXFR_MSG_PING) {
        struct hxfr_msg pong = {.hdr.type = HXFR_MSG_PONG};
        srv_send(fd, &pong, NULL, 0);
    } else {
        exit(1);
    }
    close(fd);
    return NULL;
}

TEST(reply_right_before_close_is_kept)
{
    /* On one CPU the server thread usually writes and closes before the
     * woken client runs, so the client reads the reply and the EOF
     * together (the case that used to lose the reply). With the fix the
     * result is the same in every interleaving. */
    cpu_set_t one, saved;
    bool pinned = sched_getaffinity(0, sizeof(saved), &saved) == 0;
    CPU_ZERO(&one);
    CPU_SET(sched_getcpu() >= 0 ? sched_getcpu() : 0, &one);
    pinned = pinned && sched_setaffinity(0, sizeof(one), &one) == 0;
    for (int round = 0; round < 3; round++) {
        struct rec rec = {0};
        int srv;
        struct hxfr_client *c = pair_client(&rec, 4, &srv);
        struct reply_ctx ctx = {.fd = srv, .garbage = round == 2};
        pthread_t th;
        CHECK(pthread_create(&th, NULL, reply_and_close_server, &ctx) == 0);
        if (round == 2) {
            /* A protocol violation right after the reply is not a mere
             * close: the call fails, with the reason, unless the client
             * returned before it read the garbage. */
            struct hxfr_client_config cfg = {.width = 320, .height = 240};
            int r = hxfr_client_configure(c, &cfg, NULL);
            pthread_join(th, NULL);
            if (r == 0) {
                r = hxfr_client_dispatch(c, 1000);
            }
            CHECK_EQ(r, -HXFR_EMAGIC);
            CHECK_EQ(rec.last_disconnect_err, -HXFR_EMAGIC);
            hxfr_client_destroy(c);
            continue;
        }
        if (round == 0) {
            struct hxfr_client_config cfg = {.width = 320, .height = 240, .gop = 7};
            struct hxfr_config_resp resp;
            memset(&resp, 0, sizeof(resp));
            /* The reply and the EOF may come in one read or two. */
            CHECK_EQ(hxfr_client_configure(c, &cfg, &resp), 0);
            CHECK_EQ(resp.width, 320);
            CHECK_EQ(resp.gop, 7);
        } else {
            CHECK_EQ(hxfr_client_ping(c, 3000, NULL), 0);
        }
        pthread_join(th, NULL);
        /* The close is seen now at the latest. */
        CHECK(hxfr_client_dispatch(c, 1000) <= 0);
        struct hxfr_client_frame f = small_frame(0, NULL);
        int r = hxfr_client_submit(c, &f, 0);
        CHECK(r == -ENOTCONN || r == -EPIPE);
        CHECK(!hxfr_client_connected(c));
        hxfr_client_destroy(c);
    }
    if (pinned) {
        sched_setaffinity(0, sizeof(saved), &saved);
    }
}

/* Hostile hosts: each case drops the connection with a clear error and
 * fails the frames in flight, without allocating what the peer claims. */
static void hostile_case(const uint8_t *bytes, size_t len, int want)
{
    struct rec rec = {0};
    struct hxfr_client_options o;
    hxfr_client_options_init(&o);
    o.hello = false;
    o.max_body = 1u << 20;
    o.on_frame = rec_frame;
    o.on_event = rec_event;
    o.user_data = &rec;
    struct hxfr_client *c = hxfr_client_new(&o);
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    CHECK_EQ(hxfr_client_connect_fd(c, sv[0]), 0);
    struct hxfr_client_frame f = small_frame(0, NULL);
    CHECK_EQ(hxfr_client_submit(c, &f, 0), 0);
    srv_frame(sv[1]);
    write_full(sv[1], bytes, len);
    CHECK_EQ(hxfr_client_dispatch(c, 2000), want);
    CHECK_EQ(rec.n, 1);
    CHECK_EQ(rec.r[0].status, want);
    CHECK_EQ(rec.last_disconnect_err, want);
    CHECK(!hxfr_client_connected(c));
    hxfr_client_destroy(c);
    close(sv[1]);
}

TEST(hostile_host)
{
    uint8_t b[64];
    memset(b, 0x5A, 12);
    hostile_case(b, 12, -HXFR_EMAGIC);

    /* payload_size 0xFFFFFFFF on a response: refused before allocating. */
    struct hxfr_header h = {
        .magic = HXFR_MAGIC, .type = HXFR_MSG_FRAME_RESPONSE, .payload_size = 0xFFFFFFFFu};
    hxfr_header_encode(b, &h);
    hostile_case(b, 12, -HXFR_ETOOBIG);

    /* nal_count says 2, the body holds one unit. */
    struct hxfr_msg m = {.hdr.type = HXFR_MSG_FRAME_RESPONSE};
    m.u.frame_response.nal_count = 2;
    int n = hxfr_msg_encode(&m, 8, b, sizeof(b));
    hxfr_put_u32(b + n, 4);
    memcpy(b + n + 4, "\0\0\1\x41", 4);
    hostile_case(b, (size_t)n + 8, -HXFR_EUNITS);

    /* A unit whose size runs past the body. */
    m.u.frame_response.nal_count = 1;
    n = hxfr_msg_encode(&m, 8, b, sizeof(b));
    hxfr_put_u32(b + n, 400);
    memcpy(b + n + 4, "\0\0\1\x41", 4);
    hostile_case(b, (size_t)n + 8, -HXFR_EUNITS);

    /* An unknown type, flag bits PONG does not define, a payload shorter
     * than a FRAME_RESPONSE's fixed part, a PONG with a payload. */
    h = (struct hxfr_header){.magic = HXFR_MAGIC, .type = 0x7E};
    hxfr_header_encode(b, &h);
    hostile_case(b, 12, -HXFR_ETYPE);
    h = (struct hxfr_header){.magic = HXFR_MAGIC, .type = HXFR_MSG_PONG, .flags = 0x80};
    hxfr_header_encode(b, &h);
    hostile_case(b, 12, -HXFR_EFLAGS);
    h = (struct hxfr_header){.magic = HXFR_MAGIC,
                             .type = HXFR_MSG_FRAME_RESPONSE,
                             .payload_size = HXFR_FRAME_RESPONSE_SIZE - 1};
    hxfr_header_encode(b, &h);
    memset(b + 12, 0, HXFR_FRAME_RESPONSE_SIZE);
    hostile_case(b, 12 + HXFR_FRAME_RESPONSE_SIZE - 1, -HXFR_ESHORT);
    h = (struct hxfr_header){.magic = HXFR_MAGIC, .type = HXFR_MSG_PONG, .payload_size = 4};
    hxfr_header_encode(b, &h);
    hostile_case(b, 16, -HXFR_ELONG);
}

TEST(response_one_byte_at_a_time)
{
    /* A host that writes its answer one byte per write: the client puts
     * it together across reads and delivers it once, intact. */
    struct rec rec = {0};
    struct hxfr_client_options o;
    hxfr_client_options_init(&o);
    o.hello = false;
    o.on_frame = rec_frame;
    o.user_data = &rec;
    struct hxfr_client *c = hxfr_client_new(&o);
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    CHECK_EQ(hxfr_client_connect_fd(c, sv[0]), 0);
    struct hxfr_client_frame f = small_frame(42, NULL);
    CHECK_EQ(hxfr_client_submit(c, &f, 0), 0);
    srv_frame(sv[1]);
    uint8_t b[64];
    struct hxfr_msg m = {.hdr.type = HXFR_MSG_FRAME_RESPONSE};
    m.u.frame_response.nal_count = 1;
    m.u.frame_response.pts = 42;
    m.u.frame_response.is_keyframe = 1;
    int n = hxfr_msg_encode(&m, 8, b, sizeof(b));
    CHECK(n > 0);
    hxfr_put_u32(b + n, 4);
    memcpy(b + n + 4, "\0\0\1\x65", 4);
    for (int i = 0; i < n + 8; i++) {
        write_full(sv[1], b + i, 1);
        CHECK(hxfr_client_dispatch(c, 0) >= 0);
        CHECK_EQ(rec.n, i + 1 < n + 8 ? 0 : 1);
    }
    CHECK_EQ(rec.r[0].status, 0);
    CHECK_EQ(rec.r[0].pts, 42);
    CHECK_EQ(rec.r[0].size, 4);
    CHECK_MEM(rec.r[0].data, "\0\0\1\x65", 4);
    CHECK(hxfr_client_connected(c));
    hxfr_client_destroy(c);
    close(sv[1]);
}

TEST(unsolicited_response)
{
    struct rec rec = {0};
    int srv;
    struct hxfr_client *c = pair_client(&rec, 4, &srv);
    srv_p(srv, 0);
    CHECK_EQ(hxfr_client_dispatch(c, 0), -EPROTO);
    CHECK(!hxfr_client_connected(c));
    hxfr_client_destroy(c);
    close(srv);
}

/* A server thread that answers HELLO, CONFIG_REQ, PING and KEYFRAME_REQ. */
struct ctl_ctx {
    int fd;
    int32_t hello_answer; /* 0: HELLO_RESP, else an ERROR with this code */
    int32_t config_error;
    int messages;
    uint32_t gop_seen;
    int keyframe_reqs;
};

static void *ctl_server(void *arg)
{
    struct ctl_ctx *ctx = arg;
    for (int i = 0; i < ctx->messages; i++) {
        struct hxfr_msg m;
        uint8_t *body;
        uint32_t blen;
        srv_recv(ctx->fd, &m, &body, &blen);
        free(body);
        struct hxfr_msg out = {0};
        switch (m.hdr.type) {
        case HXFR_MSG_HELLO:
            if (ctx->hello_answer) {
                srv_error(ctx->fd, ctx->hello_answer, "what is HELLO");
                break;
            }
            out.hdr.type = HXFR_MSG_HELLO_RESP;
            out.u.hello = (struct hxfr_hello){.version = 1, .caps = 0x1F};
            srv_send(ctx->fd, &out, NULL, 0);
            break;
        case HXFR_MSG_CONFIG_REQ:
            ctx->gop_seen = m.u.config_req.gop;
            if (ctx->config_error) {
                srv_error(ctx->fd, ctx->config_error, "size not allowed");
            } else {
                srv_config_resp(ctx->fd, &m.u.config_req);
            }
            break;
        case HXFR_MSG_PING:
            out.hdr.type = HXFR_MSG_PONG;
            srv_send(ctx->fd, &out, NULL, 0);
            break;
        case HXFR_MSG_KEYFRAME_REQ:
            ctx->keyframe_reqs++;
            break;
        default:
            fprintf(stderr, "fake server: unexpected type 0x%02x\n", m.hdr.type);
            exit(1);
        }
    }
    return NULL;
}

TEST(hello_config_ping_keyframe)
{
    struct rec rec = {0};
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    struct ctl_ctx ctx = {.fd = sv[1], .messages = 4};
    pthread_t th;
    CHECK(pthread_create(&th, NULL, ctl_server, &ctx) == 0);
    struct hxfr_client *c = new_client(&rec, 4, true);
    CHECK_EQ(hxfr_client_connect_fd(c, sv[0]), 0);
    CHECK_EQ(hxfr_client_server_caps(c), 0x1F);
    struct hxfr_client_config cfg = {.width = 320, .height = 240, .gop = 30};
    struct hxfr_config_resp resp;
    CHECK_EQ(hxfr_client_configure(c, &cfg, &resp), 0);
    CHECK_EQ(resp.width, 320);
    CHECK(strcmp(resp.encoder, "fake") == 0);
    uint64_t rtt = 0;
    CHECK_EQ(hxfr_client_ping(c, 2000, &rtt), 0);
    CHECK(rtt > 0);
    CHECK_EQ(hxfr_client_request_keyframe(c), 0);
    pthread_join(th, NULL);
    CHECK_EQ(ctx.gop_seen, 30);
    CHECK_EQ(ctx.keyframe_reqs, 1);
    /* No answer to a ping: a timeout, not a hang. */
    CHECK_EQ(hxfr_client_ping(c, 50, NULL), -ETIMEDOUT);
    hxfr_client_destroy(c);
    close(sv[1]);
}

TEST(v1_host_and_config_refused)
{
    struct rec rec = {0};
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    struct ctl_ctx ctx = {.fd = sv[1],
                          .messages = 2,
                          .hello_answer = HXFR_STATUS_INVALID_MSG,
                          .config_error = HXFR_STATUS_BAD_GEOMETRY};
    pthread_t th;
    CHECK(pthread_create(&th, NULL, ctl_server, &ctx) == 0);
    struct hxfr_client *c = new_client(&rec, 4, true);
    CHECK_EQ(hxfr_client_connect_fd(c, sv[0]), 0);
    CHECK_EQ(hxfr_client_server_caps(c), 0);
    /* A v1 host answers no CONFIG_REQ (Helix's never does): configure does
     * not wait, and reports what it asked for. This one refuses the size
     * anyway: the ERROR comes as an event, nobody's frame. */
    struct hxfr_client_config cfg = {.width = 320, .height = 240, .bitrate = 777};
    struct hxfr_config_resp resp;
    CHECK_EQ(hxfr_client_configure(c, &cfg, &resp), 0);
    CHECK_EQ(resp.width, 320);
    CHECK_EQ(resp.bitrate, 777);
    CHECK_EQ(resp.encoder[0], '\0');
    pthread_join(th, NULL);
    for (int i = 0; i < 100 && rec.remote_events == 0; i++) {
        CHECK(hxfr_client_dispatch(c, 20) >= 0);
    }
    CHECK_EQ(rec.remote_events, 1);
    CHECK_EQ(rec.n, 0);
    const char *msg;
    CHECK_EQ(hxfr_client_last_remote_error(c, &msg), HXFR_STATUS_BAD_GEOMETRY);
    CHECK(strcmp(msg, "size not allowed") == 0);
    hxfr_client_destroy(c);
    close(sv[1]);
}

/* Reconnect: the host dies with a frame in flight; the next submit
 * reconnects, re-sends the config and forces a keyframe. */
struct rc_ctx {
    int listen_fd;
    uint32_t config_width_second;
    int forced_first;
    int forced_after;
};

static int accept_one(int lfd)
{
    int fd;
    do {
        fd = accept(lfd, NULL, NULL);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        exit(1);
    }
    return fd;
}

static void *rc_server(void *arg)
{
    struct rc_ctx *ctx = arg;
    struct hxfr_msg m;
    int fd = accept_one(ctx->listen_fd);
    srv_recv(fd, &m, NULL, NULL);
    srv_config_resp(fd, &m.u.config_req);
    struct hxfr_frame_request fr = srv_frame(fd);
    ctx->forced_first = fr.force_keyframe;
    srv_key(fd, fr.pts);
    srv_frame(fd);
    close(fd); /* "crash" with frame 1 in flight */

    fd = accept_one(ctx->listen_fd);
    srv_recv(fd, &m, NULL, NULL);
    if (m.hdr.type != HXFR_MSG_CONFIG_REQ) {
        exit(1);
    }
    ctx->config_width_second = m.u.config_req.width;
    srv_config_resp(fd, &m.u.config_req);
    fr = srv_frame(fd);
    ctx->forced_after = fr.force_keyframe;
    srv_key(fd, fr.pts);
    fr = srv_frame(fd);
    srv_p(fd, fr.pts);
    close(fd);
    return NULL;
}

TEST(reconnect_resends_config_and_forces_idr)
{
    char dir[] = "/tmp/hxfr-client-test-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/s", dir);
    int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    CHECK(listen(lfd, 4) == 0);
    struct rc_ctx ctx = {.listen_fd = lfd};
    pthread_t th;
    CHECK(pthread_create(&th, NULL, rc_server, &ctx) == 0);

    struct rec rec = {0};
    struct hxfr_client_options o;
    hxfr_client_options_init(&o);
    o.hello = false;
    o.reconnect = true;
    o.reconnect_min_ms = 10;
    o.on_frame = rec_frame;
    o.on_event = rec_event;
    o.user_data = &rec;
    struct hxfr_client *c = hxfr_client_new(&o);
    char uri[200];
    snprintf(uri, sizeof(uri), "unix:%s", sa.sun_path);
    CHECK_EQ(hxfr_client_connect(c, uri), 0);
    struct hxfr_client_config cfg = {.width = 16, .height = 16};
    CHECK_EQ(hxfr_client_configure(c, &cfg, NULL), 0);
    struct hxfr_client_frame f = small_frame(0, NULL);
    CHECK_EQ(hxfr_client_submit(c, &f, 1000), 0);
    CHECK_EQ(hxfr_client_flush(c, 2000), 0);
    f = small_frame(1, NULL);
    CHECK_EQ(hxfr_client_submit(c, &f, 1000), 0);
    CHECK_EQ(hxfr_client_flush(c, 2000), -ECONNRESET);
    CHECK_EQ(rec.n, 2);
    CHECK_EQ(rec.r[1].status, -ECONNRESET);
    CHECK_EQ(rec.disconnects, 1);
    f = small_frame(2, NULL);
    CHECK_EQ(hxfr_client_submit(c, &f, 1000), 0);
    CHECK_EQ(rec.reconnects, 1);
    f = small_frame(3, NULL);
    CHECK_EQ(hxfr_client_submit(c, &f, 1000), 0);
    CHECK_EQ(hxfr_client_flush(c, 2000), 0);
    pthread_join(th, NULL);
    CHECK_EQ(rec.n, 4);
    CHECK(rec.r[2].forced);
    CHECK(rec.r[2].keyframe);
    CHECK(!rec.r[3].forced);
    CHECK_EQ(ctx.forced_first, 0);
    CHECK_EQ(ctx.forced_after, 1);
    CHECK_EQ(ctx.config_width_second, 16);
    hxfr_client_destroy(c);

    /* With the host gone for good, reconnect gives up after its bounded
     * attempts with the connect error. */
    close(lfd);
    unlink(sa.sun_path);
    o.reconnect_attempts = 3;
    c = hxfr_client_new(&o);
    int r = hxfr_client_connect(c, uri);
    CHECK(r == -ENOENT || r == -ECONNREFUSED);
    hxfr_client_destroy(c);
    rmdir(dir);
}

/* serial: a pty stands in for the virtio-serial port; the fake host sits on
 * the master side. */
TEST(serial_pty)
{
    int master = posix_openpt(O_RDWR | O_NOCTTY);
    CHECK(master >= 0);
    CHECK(grantpt(master) == 0);
    CHECK(unlockpt(master) == 0);
    char uri[128];
    snprintf(uri, sizeof(uri), "serial:%s", ptsname(master));
    struct rec rec = {0};
    struct hxfr_client *c = new_client(&rec, 4, false);
    CHECK_EQ(hxfr_client_connect(c, uri), 0);
    CHECK(strncmp(hxfr_client_uri(c), "serial:", 7) == 0);
    uint8_t px[8 * 8 * 4];
    for (size_t i = 0; i < sizeof(px); i++) {
        px[i] = (uint8_t)i; /* includes \n, \r, 0x03 (^C): must pass raw */
    }
    struct hxfr_client_frame f = {
        .format = HXFR_FORMAT_ARGB8888, .width = 8, .height = 8, .planes = {px}, .pts = 42};
    CHECK_EQ(hxfr_client_submit(c, &f, 1000), 0);
    struct hxfr_msg m;
    uint8_t *body;
    uint32_t blen;
    srv_recv(master, &m, &body, &blen);
    CHECK_EQ(m.hdr.type, HXFR_MSG_FRAME_REQUEST);
    CHECK_EQ(blen, sizeof(px));
    CHECK_MEM(body, px, sizeof(px));
    free(body);
    srv_key(master, 42);
    CHECK_EQ(hxfr_client_flush(c, 2000), 0);
    CHECK_EQ(rec.n, 1);
    CHECK_EQ(rec.r[0].status, 0);
    CHECK_EQ(rec.r[0].pts, 42);
    CHECK(rec.r[0].keyframe);
    /* The host side goes away: noticed, reported, no hang. */
    f.pts = 43;
    CHECK_EQ(hxfr_client_submit(c, &f, 1000), 0);
    close(master);
    CHECK(hxfr_client_flush(c, 2000) < 0);
    CHECK_EQ(rec.n, 2);
    CHECK(rec.r[1].status < 0);
    CHECK_EQ(rec.disconnects, 1);
    hxfr_client_destroy(c);
}

/* This machine has AF_VSOCK but no route to CID 2: a clear error, fast. */
TEST(vsock_without_route)
{
    struct rec rec = {0};
    struct hxfr_client *c = new_client(&rec, 4, true);
    int r = hxfr_client_connect(c, "vsock:2:5000");
    fprintf(stderr, "# vsock:2:5000 -> %d (%s)\n", r, hxfr_strerror(r));
    CHECK(r == -ENODEV || r == -ENETUNREACH || r == -EAFNOSUPPORT || r == -EHOSTUNREACH ||
          r == -ECONNREFUSED || r == -ECONNRESET || r == -ETIMEDOUT);
    CHECK(!hxfr_client_connected(c));
    CHECK_EQ(hxfr_client_connect(c, "vsock:x:y"), -EINVAL);
    hxfr_client_destroy(c);
}

/* ---- push mode: SUBSCRIBE and pushed units -------------------------- */

struct stream_rec {
    int n;
    uint32_t scanout[MAX_REC];
    uint64_t seq[MAX_REC];
    int64_t pts[MAX_REC];
    bool keyframe[MAX_REC];
    size_t size[MAX_REC];
    uint8_t first[MAX_REC];
    int reentry;
    struct hxfr_client *client;
};

static void rec_stream(void *data, uint32_t scanout_id, const struct hxfr_client_result *res)
{
    struct stream_rec *s = data;
    if (s->client && hxfr_client_dispatch(s->client, 0) == -EDEADLK) {
        s->reentry++;
    }
    if (s->n >= MAX_REC) {
        return;
    }
    s->scanout[s->n] = scanout_id;
    s->seq[s->n] = res->seq;
    s->pts[s->n] = res->pts;
    s->keyframe[s->n] = res->keyframe;
    s->size[s->n] = res->size;
    s->first[s->n] = res->size > 4 ? res->data[4] : 0;
    s->n++;
}

static struct hxfr_client *stream_client(struct stream_rec *s, bool reconnect)
{
    struct hxfr_client_options o;
    hxfr_client_options_init(&o);
    o.hello = false;
    o.reconnect = reconnect;
    o.reconnect_min_ms = 10;
    o.io_timeout_ms = 3000;
    o.on_stream = rec_stream;
    o.user_data = s;
    struct hxfr_client *c = hxfr_client_new(&o);
    CHECK(c != NULL);
    return c;
}

static void srv_subscribe_resp(int fd, uint32_t scanout, uint32_t success)
{
    struct hxfr_msg m = {.hdr.type = HXFR_MSG_SUBSCRIBE_RESP, .hdr.session_id = (uint16_t)scanout};
    m.u.subscribe_resp = (struct hxfr_subscribe_resp){.scanout_id = scanout, .success = success};
    srv_send(fd, &m, NULL, 0);
}

/* A pushed unit: a FRAME_RESPONSE with the scanout id as session id. */
static void srv_push(int fd, uint16_t session, int64_t pts, bool key)
{
    const uint8_t *u[3] = {unit_sps, unit_pps, unit_idr};
    uint32_t s[3] = {sizeof(unit_sps), sizeof(unit_pps), sizeof(unit_idr)};
    const uint8_t *pu[1] = {unit_p};
    uint32_t ps[1] = {sizeof(unit_p)};
    size_t total = 0;
    int n = key ? 3 : 1;
    for (int i = 0; i < n; i++) {
        total += 4 + (key ? s[i] : ps[i]);
    }
    uint8_t body[64];
    size_t pos = 0;
    for (int i = 0; i < n; i++) {
        uint32_t sz = key ? s[i] : ps[i];
        hxfr_put_u32(body + pos, sz);
        memcpy(body + pos + 4, key ? u[i] : pu[i], sz);
        pos += 4 + sz;
    }
    struct hxfr_msg m = {.hdr.type = HXFR_MSG_FRAME_RESPONSE, .hdr.session_id = session};
    m.u.frame_response = (struct hxfr_frame_response){
        .pts = pts, .dts = pts, .is_keyframe = key, .nal_count = (uint32_t)n};
    srv_send(fd, &m, body, (uint32_t)total);
}

TEST(subscribe_and_pushed_units)
{
    struct stream_rec s = {0};
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    struct hxfr_client *c = stream_client(&s, false);
    CHECK_EQ(hxfr_client_connect_fd(c, sv[0]), 0);
    /* The answer and the first units are already queued when the client
     * asks: they must be delivered in order, the reply first. */
    srv_subscribe_resp(sv[1], 3, 1);
    srv_push(sv[1], 3, 1000, true);
    CHECK_EQ(hxfr_client_subscribe(c, 3, 2000), 0);
    /* The exact SUBSCRIBE bytes. */
    static const uint8_t want[16] = {0x48, 0x58, 0x46, 0x52, 0x30, 0x00, 0x03, 0x00,
                                     0x04, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00};
    uint8_t got[16];
    read_full(sv[1], got, sizeof(got));
    CHECK_MEM(got, want, sizeof(want));
    srv_push(sv[1], 3, 2000, false);
    srv_push(sv[1], 3, 3000, false);
    s.client = c;
    int total = s.n; /* the first unit may have come with the reply */
    while (total < 3) {
        int r = hxfr_client_dispatch(c, 2000);
        CHECK(r > 0);
        total += r;
    }
    CHECK_EQ(s.n, 3);
    CHECK(s.reentry > 0);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(s.scanout[i], 3);
        CHECK_EQ(s.seq[i], (uint64_t)i);
        CHECK_EQ(s.pts[i], 1000 * (i + 1));
    }
    CHECK(s.keyframe[0] && !s.keyframe[1] && !s.keyframe[2]);
    CHECK_EQ(s.size[0], sizeof(unit_sps) + sizeof(unit_pps) + sizeof(unit_idr));
    CHECK_EQ(s.first[0], 0x67);
    CHECK_EQ(s.size[1], sizeof(unit_p));
    /* dispatch waits for pushed units even with nothing in flight: a
     * timeout, not an immediate return, when none come. */
    CHECK_EQ(hxfr_client_dispatch(c, 50), 0);
    /* A unit for another session on a subscribed client is dropped. */
    srv_push(sv[1], 9, 4000, false);
    srv_push(sv[1], 3, 5000, false);
    CHECK_EQ(hxfr_client_dispatch(c, 2000), 1);
    CHECK_EQ(s.n, 4);
    CHECK_EQ(s.pts[3], 5000);
    CHECK(hxfr_client_connected(c));
    hxfr_client_destroy(c);
    close(sv[1]);
}

TEST(subscribe_refused)
{
    struct stream_rec s = {0};
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    struct hxfr_client *c = stream_client(&s, false);
    CHECK_EQ(hxfr_client_connect_fd(c, sv[0]), 0);
    CHECK_EQ(hxfr_client_subscribe(c, 70000, 100), -EINVAL);
    srv_subscribe_resp(sv[1], 5, 0);
    CHECK_EQ(hxfr_client_subscribe(c, 5, 2000), -HXFR_EREMOTE);
    CHECK_EQ(hxfr_client_last_remote_error(c, NULL), HXFR_STATUS_NO_SCANOUT);
    srv_error(sv[1], HXFR_STATUS_UNSUPPORTED, "no scanouts here");
    CHECK_EQ(hxfr_client_subscribe(c, 5, 2000), -HXFR_EREMOTE);
    const char *msg;
    CHECK_EQ(hxfr_client_last_remote_error(c, &msg), HXFR_STATUS_UNSUPPORTED);
    CHECK(strcmp(msg, "no scanouts here") == 0);
    /* No answer at all: a timeout, not a hang. */
    CHECK_EQ(hxfr_client_subscribe(c, 5, 50), -ETIMEDOUT);
    /* Not subscribed: dispatch returns at once. */
    CHECK_EQ(hxfr_client_dispatch(c, 5000), 0);
    hxfr_client_destroy(c);
    close(sv[1]);

    c = stream_client(&s, false);
    CHECK_EQ(hxfr_client_subscribe(c, 0, 100), -ENOTCONN);
    hxfr_client_destroy(c);
}

/* After a reconnect the subscription is sent again. */
static void *resub_server(void *arg)
{
    int lfd = *(int *)arg;
    for (int round = 0; round < 2; round++) {
        int fd = accept_one(lfd);
        struct hxfr_msg m;
        srv_recv(fd, &m, NULL, NULL);
        if (m.hdr.type != HXFR_MSG_SUBSCRIBE || m.u.subscribe.scanout_id != 2) {
            exit(1);
        }
        srv_subscribe_resp(fd, 2, 1);
        srv_push(fd, 2, round * 100, true);
        if (round == 1) {
            srv_push(fd, 2, round * 100 + 1, false);
        }
        /* Close once the client pings, so the reply is never lost in a
         * close racing with it. */
        srv_recv(fd, &m, NULL, NULL);
        close(fd);
    }
    return NULL;
}

TEST(resubscribe_after_reconnect)
{
    char dir[] = "/tmp/hxfr-client-test-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/s", dir);
    int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    CHECK(listen(lfd, 4) == 0);
    pthread_t th;
    CHECK(pthread_create(&th, NULL, resub_server, &lfd) == 0);
    struct stream_rec s = {0};
    struct hxfr_client *c = stream_client(&s, true);
    char uri[200];
    snprintf(uri, sizeof(uri), "unix:%s", sa.sun_path);
    CHECK_EQ(hxfr_client_connect(c, uri), 0);
    CHECK_EQ(hxfr_client_subscribe(c, 2, 2000), 0);
    int r;
    while (s.n < 1 && (r = hxfr_client_dispatch(c, 2000)) > 0) {
    }
    CHECK_EQ(s.n, 1);
    CHECK(hxfr_client_ping(c, 2000, NULL) < 0);
    CHECK(!hxfr_client_connected(c));
    CHECK_EQ(hxfr_client_reconnect(c), 0);
    while (s.n < 3 && (r = hxfr_client_dispatch(c, 2000)) > 0) {
    }
    CHECK_EQ(s.n, 3);
    CHECK(hxfr_client_ping(c, 2000, NULL) < 0);
    CHECK_EQ(s.pts[1], 100);
    CHECK(s.keyframe[1]);
    CHECK_EQ(s.pts[2], 101);
    CHECK_EQ(s.seq[2], 2);
    pthread_join(th, NULL);
    hxfr_client_destroy(c);
    close(lfd);
    unlink(sa.sun_path);
    rmdir(dir);
}
