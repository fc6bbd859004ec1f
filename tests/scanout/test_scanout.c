/* Scanout streams (push mode) against the real hxfrd: publish and fan out
 * to several subscribers (a late one starts at an IDR), keepalive frames
 * on a still screen, a subscriber that never reads, enable/disable rules,
 * unknown and disabled scanouts, the publisher vanishing, KEYFRAME_REQ from
 * a subscriber, ownership, limits. Raw wire messages over blocking
 * sockets, so every byte the daemon sends is checked. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "avcheck.h"
#include "daemon.h"
#include "daemon_check.h"
#include "harness.h"
#include "hostutil.h"

#define W        320
#define H        240
#define PTS_STEP 1000 /* published pts are index * PTS_STEP; keepalives are far above */

/* ---- helpers ----------------------------------------------------------- */

struct au {
    int64_t pts;
    bool keyframe;
    uint8_t *data;
    size_t len;
};

struct au_list {
    struct au *v;
    size_t n, cap;
};

static void au_push(struct au_list *l, const struct hxfr_msg *m, uint8_t *data, size_t len)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->v = realloc(l->v, l->cap * sizeof(*l->v));
        CHECK(l->v != NULL);
    }
    l->v[l->n++] =
        (struct au){m->u.frame_response.pts, m->u.frame_response.is_keyframe != 0, data, len};
}

static void au_free(struct au_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].data);
    }
    free(l->v);
    memset(l, 0, sizeof(*l));
}

/* ENABLE_SCANOUT; returns success and copies the connector. */
static int enable(int fd, uint32_t id, uint32_t w, uint32_t h, char *connector)
{
    struct hxfr_msg m;
    memset(&m, 0, sizeof(m));
    m.hdr.type = HXFR_MSG_ENABLE_SCANOUT;
    m.hdr.session_id = (uint16_t)id;
    m.u.enable_scanout.scanout_id = id;
    m.u.enable_scanout.width = w;
    m.u.enable_scanout.height = h;
    m.u.enable_scanout.refresh_hz = 60;
    CHECK_EQ(hxfr_test_send_msg(fd, &m, NULL, 0), 0);
    CHECK_EQ(expect_msg(fd, HXFR_MSG_SCANOUT_RESP, &m, NULL, NULL), 0);
    CHECK_EQ(m.u.scanout_resp.scanout_id, id);
    if (connector) {
        memcpy(connector, m.u.scanout_resp.connector, HXFR_CONNECTOR_LEN);
    }
    return (int)m.u.scanout_resp.success;
}

static int disable(int fd, uint32_t id)
{
    struct hxfr_msg m;
    memset(&m, 0, sizeof(m));
    m.hdr.type = HXFR_MSG_DISABLE_SCANOUT;
    m.hdr.session_id = (uint16_t)id;
    m.u.disable_scanout.scanout_id = id;
    CHECK_EQ(hxfr_test_send_msg(fd, &m, NULL, 0), 0);
    CHECK_EQ(expect_msg(fd, HXFR_MSG_SCANOUT_RESP, &m, NULL, NULL), 0);
    CHECK_EQ(m.u.scanout_resp.scanout_id, id);
    return (int)m.u.scanout_resp.success;
}

static int subscribe(int fd, uint32_t id)
{
    struct hxfr_msg m;
    memset(&m, 0, sizeof(m));
    m.hdr.type = HXFR_MSG_SUBSCRIBE;
    m.hdr.session_id = (uint16_t)id;
    m.u.subscribe.scanout_id = id;
    CHECK_EQ(hxfr_test_send_msg(fd, &m, NULL, 0), 0);
    CHECK_EQ(expect_msg(fd, HXFR_MSG_SUBSCRIBE_RESP, &m, NULL, NULL), 0);
    CHECK_EQ(m.u.subscribe_resp.scanout_id, id);
    return (int)m.u.subscribe_resp.success;
}

/* Publishes pattern frame index into scanout id and waits for the
 * publisher's own FRAME_RESPONSE. */
static void publish(int fd, uint16_t id, uint64_t index, bool force_kf, struct au_list *got)
{
    struct test_frame f;
    struct hxfr_msg m;
    uint8_t *data = NULL;
    size_t len = 0;
    CHECK_EQ(test_frame_make(&f, HXFR_FORMAT_ARGB8888, W, H, 0, index), 0);
    CHECK_EQ(roundtrip_frame(fd, id, &f, (int64_t)index * PTS_STEP, force_kf, &m, &data, &len), 0);
    CHECK_EQ(m.hdr.session_id, id);
    test_frame_free(&f);
    if (got) {
        au_push(got, &m, data, len);
    } else {
        free(data);
    }
}

/* Receives one pushed AU for scanout id (FRAME_RESPONSE only). */
static void recv_au(int fd, uint16_t id, struct au_list *got)
{
    struct hxfr_msg m;
    uint8_t *data = NULL;
    size_t len = 0;
    CHECK_EQ(expect_msg(fd, HXFR_MSG_FRAME_RESPONSE, &m, &data, &len), 0);
    CHECK_EQ(m.hdr.session_id, id);
    au_push(got, &m, data, len);
}

/* Receives pushed AUs until one with pts arrives (at most 20 AUs beyond
 * what the caller expects to be there: keepalives every 500 ms would
 * otherwise hide a frame that never comes). */
static void recv_until_pts(int fd, uint16_t id, int64_t pts, struct au_list *got)
{
    size_t start = got->n;
    for (int i = 0; i < 200; i++) {
        recv_au(fd, id, got);
        if (got->v[got->n - 1].pts == pts) {
            return;
        }
    }
    for (size_t j = start; j < got->n; j++) {
        fprintf(stderr, "  got pts %lld %s\n", (long long)got->v[j].pts,
                got->v[j].keyframe ? "IDR" : "P");
    }
    FAIL("pts %lld never arrived", (long long)pts);
}

static bool readable(int fd, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, timeout_ms) > 0;
}

/* NAL types of an AU: an IDR has 7 (SPS), 8 (PPS) before 5 (IDR slice). */
static bool is_idr_with_params(const struct au *a)
{
    return hxfr_avcheck_au_idr_with_params(a->data, a->len);
}

static bool has_idr_slice(const struct au *a)
{
    uint8_t types[64];
    int n = hxfr_avcheck_nal_types(a->data, a->len, types, 64);
    for (int i = 0; i < n && i < 64; i++) {
        if (types[i] == 5) {
            return true;
        }
    }
    return false;
}

/* Decodes the list as one stream: every AU gives a frame, no errors. */
static void decode_all(const struct au_list *l)
{
    struct hxfr_avcheck *c = hxfr_avcheck_new(0);
    CHECK(c != NULL);
    CHECK(l->n > 0);
    CHECK(is_idr_with_params(&l->v[0]));
    for (size_t i = 0; i < l->n; i++) {
        int r = hxfr_avcheck_decode_au(c, l->v[i].data, l->v[i].len);
        if (r != 1) {
            FAIL("AU %zu (pts %lld) decoded to %d", i, (long long)l->v[i].pts, r);
        }
    }
    CHECK_EQ(hxfr_avcheck_frame_count(c), l->n);
    CHECK_EQ(hxfr_avcheck_idr_missing_params(c), 0);
    hxfr_avcheck_destroy(c);
}

static const struct au *find_pts(const struct au_list *l, int64_t pts)
{
    for (size_t i = 0; i < l->n; i++) {
        if (l->v[i].pts == pts) {
            return &l->v[i];
        }
    }
    return NULL;
}

/* ---- tests ------------------------------------------------------------- */

TEST(publish_two_subscribers_late_one_starts_at_idr)
{
    struct hxfr_test_daemon d;
    daemon_start_ok(&d, HXFR_TEST_DAEMON_UNIX, NULL);
    int pub = daemon_connect_ok(&d, false), s1 = daemon_connect_ok(&d, false),
        s2 = daemon_connect_ok(&d, false);
    char connector[HXFR_CONNECTOR_LEN];
    struct au_list p = {0}, a1 = {0}, a2 = {0};

    CHECK_EQ(enable(pub, 0, W, H, connector), 1);
    CHECK(strcmp(connector, "Virtual-1") == 0); /* Virtual-<N+1> */
    CHECK_EQ(subscribe(s1, 0), 1);
    for (uint64_t i = 0; i < 8; i++) {
        publish(pub, 0, i, false, &p);
    }
    /* The publisher is idle now: the late subscriber gets an IDR at once,
     * re-encoded from the kept picture. */
    CHECK_EQ(subscribe(s2, 0), 1);
    recv_au(s2, 0, &a2);
    CHECK(a2.v[0].keyframe);
    CHECK(is_idr_with_params(&a2.v[0]));
    for (uint64_t i = 8; i < 16; i++) {
        publish(pub, 0, i, false, &p);
    }
    recv_until_pts(s1, 0, 15 * PTS_STEP, &a1);
    recv_until_pts(s2, 0, 15 * PTS_STEP, &a2);

    /* Every published frame reached both; the publisher got the same bytes
     * (one encode, shared). */
    for (uint64_t i = 0; i < 16; i++) {
        const struct au *x = find_pts(&a1, (int64_t)i * PTS_STEP);
        const struct au *y = find_pts(&p, (int64_t)i * PTS_STEP);
        CHECK(x != NULL && y != NULL);
        CHECK_EQ(x->len, y->len);
        CHECK_MEM(x->data, y->data, x->len);
        if (i >= 8) {
            const struct au *z = find_pts(&a2, (int64_t)i * PTS_STEP);
            CHECK(z != NULL);
            CHECK_EQ(z->len, y->len);
            CHECK_MEM(z->data, y->data, z->len);
        }
    }
    CHECK(a1.v[0].keyframe);
    CHECK(has_idr_slice(&a1.v[0]));
    decode_all(&a1);
    decode_all(&a2);
    au_free(&p);
    au_free(&a1);
    au_free(&a2);
    close(s1);
    close(s2);
    close(pub);
    daemon_stop_clean(&d, NULL);
}

/* Counts pushed AUs over ms milliseconds. */
static void collect_for(int fd, uint16_t id, int ms, struct au_list *got)
{
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &t);
        long el = (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
        if (el >= ms) {
            return;
        }
        if (readable(fd, (int)(ms - el))) {
            recv_au(fd, id, got);
        }
    }
}

TEST(keepalive_while_publisher_idle)
{
    struct hxfr_test_daemon d;
    daemon_start_ok(&d, HXFR_TEST_DAEMON_UNIX, NULL);
    int pub = daemon_connect_ok(&d, false), sub = daemon_connect_ok(&d, false);
    struct au_list a = {0};

    CHECK_EQ(enable(pub, 2, W, H, NULL), 1);
    CHECK_EQ(subscribe(sub, 2), 1);
    for (uint64_t i = 0; i < 3; i++) {
        publish(pub, 2, i, false, NULL);
    }
    recv_until_pts(sub, 2, 2 * PTS_STEP, &a);
    size_t before = a.n;
    collect_for(sub, 2, 1600, &a);
    size_t keepalives = a.n - before;
    /* 500 ms interval: about 3 in 1.6 s; at least 2 however slow the
     * machine. */
    CHECK(keepalives >= 2);
    int64_t last = a.v[before - 1].pts;
    bool some_p = false;
    for (size_t i = before; i < a.n; i++) {
        CHECK(a.v[i].pts > last); /* the clock runs on */
        last = a.v[i].pts;
        some_p = some_p || !a.v[i].keyframe;
    }
    /* Real new P-frames, not IDRs every time. */
    CHECK(some_p);
    decode_all(&a);
    /* The publisher got nothing but its own responses. */
    CHECK(!readable(pub, 0));
    au_free(&a);
    close(sub);
    close(pub);
    daemon_stop_clean(&d, NULL);
}

TEST(keepalive_interval_option)
{
    struct hxfr_test_daemon d;
    const char *args[] = {"--keepalive-ms", "100", NULL};
    daemon_start_ok(&d, HXFR_TEST_DAEMON_UNIX, args);
    int pub = daemon_connect_ok(&d, false), sub = daemon_connect_ok(&d, false);
    struct au_list a = {0};

    CHECK_EQ(enable(pub, 1, W, H, NULL), 1);
    publish(pub, 1, 0, false, NULL);
    CHECK_EQ(subscribe(sub, 1), 1);
    collect_for(sub, 1, 1000, &a);
    /* About 10 in 1 s; generous bound. */
    CHECK(a.n >= 5);
    CHECK(a.v[0].keyframe);
    decode_all(&a);
    au_free(&a);
    close(sub);
    close(pub);
    daemon_stop_clean(&d, NULL);
}

TEST(no_keepalive_without_subscribers)
{
    struct hxfr_test_daemon d;
    const char *args[] = {"--keepalive-ms", "50", NULL};
    daemon_start_ok(&d, HXFR_TEST_DAEMON_UNIX, args);
    int pub = daemon_connect_ok(&d, false);
    CHECK_EQ(enable(pub, 1, W, H, NULL), 1);
    publish(pub, 1, 0, false, NULL);
    usleep(400 * 1000);
    CHECK(!readable(pub, 0));
    CHECK_EQ(ping_ok(pub), 0);
    /* (Closing alone would leave it enabled: it outlives its publisher.) */
    CHECK_EQ(disable(pub, 1), 1);
    close(pub);
    CHECK_EQ(hxfr_test_daemon_stop(&d), 0);
    /* One frame encoded, no keepalive. */
    CHECK_EQ(hxfr_test_daemon_log_count(&d, "after 1 frames, 0 keepalives"), 1);
    CHECK_EQ(hxfr_test_daemon_unexpected_errors(&d, NULL), 0);
    hxfr_test_daemon_free(&d);
}

TEST(enable_disable_rules)
{
    struct hxfr_test_daemon d;
    daemon_start_ok(&d, HXFR_TEST_DAEMON_UNIX, NULL);
    int a = daemon_connect_ok(&d, false), b = daemon_connect_ok(&d, false),
        s = daemon_connect_ok(&d, false);
    char conn[HXFR_CONNECTOR_LEN];

    /* The guest kernel's connector name: scanout N is Virtual-<N+1>. */
    CHECK_EQ(enable(a, 4, W, H, conn), 1);
    CHECK(strcmp(conn, "Virtual-5") == 0);
    /* The publisher enables again: a reconfiguration, same connector. */
    CHECK_EQ(enable(a, 4, 640, 480, conn), 1);
    CHECK(strcmp(conn, "Virtual-5") == 0);
    /* Another client cannot become a second publisher, but it may
     * disable the scanout (Helix's manager disables from a connection
     * of its own), with the connector in the answer. */
    CHECK_EQ(enable(b, 4, W, H, NULL), 0);
    CHECK_EQ(subscribe(s, 4), 1);
    struct hxfr_msg m;
    memset(&m, 0, sizeof(m));
    m.hdr.type = HXFR_MSG_DISABLE_SCANOUT;
    m.u.disable_scanout.scanout_id = 4;
    CHECK_EQ(hxfr_test_send_msg(b, &m, NULL, 0), 0);
    CHECK_EQ(expect_msg(b, HXFR_MSG_SCANOUT_RESP, &m, NULL, NULL), 0);
    CHECK_EQ(m.u.scanout_resp.success, 1);
    CHECK(strcmp(m.u.scanout_resp.connector, "Virtual-5") == 0);
    CHECK_EQ(expect_error(s, HXFR_STATUS_NO_SCANOUT), 0);
    /* Disabled twice: refused, never a crash. */
    CHECK_EQ(disable(a, 4), 0);
    CHECK_EQ(enable(a, 4, W, H, NULL), 1);
    CHECK_EQ(disable(a, 4), 1);
    CHECK_EQ(disable(a, 4), 0);
    /* Now b may take the id. */
    CHECK_EQ(enable(b, 4, W, H, NULL), 1);
    /* Bad values. */
    CHECK_EQ(enable(a, 70000, W, H, NULL), 0);
    CHECK_EQ(enable(a, 5, 0, H, NULL), 0);
    CHECK_EQ(enable(a, 5, 9000, H, NULL), 0);
    CHECK_EQ(disable(a, 99), 0);
    CHECK_EQ(ping_ok(a), 0);
    CHECK_EQ(ping_ok(b), 0);
    CHECK_EQ(ping_ok(s), 0);
    close(a);
    close(b);
    close(s);
    daemon_stop_clean(&d, NULL);
}

TEST(limits_scanouts_and_subscribers)
{
    struct hxfr_test_daemon d;
    const char *args[] = {"--max-scanouts", "2", "--max-subscribers", "2", NULL};
    daemon_start_ok(&d, HXFR_TEST_DAEMON_UNIX, args);
    int a = daemon_connect_ok(&d, false), b = daemon_connect_ok(&d, false);
    int s[3] = {daemon_connect_ok(&d, false), daemon_connect_ok(&d, false),
                daemon_connect_ok(&d, false)};
    CHECK_EQ(enable(a, 0, W, H, NULL), 1);
    CHECK_EQ(enable(b, 1, W, H, NULL), 1);
    CHECK_EQ(enable(b, 2, W, H, NULL), 0);
    CHECK_EQ(subscribe(s[0], 0), 1);
    CHECK_EQ(subscribe(s[1], 0), 1);
    CHECK_EQ(subscribe(s[2], 0), 0);
    /* Subscribing twice is not a second subscription. */
    CHECK_EQ(subscribe(s[1], 0), 1);
    /* A subscriber that leaves frees its place. */
    close(s[0]);
    int ok = 0;
    for (int i = 0; i < 100 && !ok; i++) {
        usleep(20 * 1000);
        ok = subscribe(s[2], 0);
    }
    CHECK_EQ(ok, 1);
    /* A disabled scanout frees its place too. */
    CHECK_EQ(disable(b, 1), 1);
    CHECK_EQ(enable(b, 2, W, H, NULL), 1);
    close(a);
    close(b);
    close(s[1]);
    close(s[2]);
    CHECK_EQ(hxfr_test_daemon_stop(&d), 0);
    CHECK(hxfr_test_daemon_log_count(&d, "unsubscribed from scanout 0") >= 1);
    CHECK_EQ(hxfr_test_daemon_unexpected_errors(&d, NULL), 0);
    hxfr_test_daemon_free(&d);
}

TEST(subscribe_unknown_or_disabled)
{
    struct hxfr_test_daemon d;
    daemon_start_ok(&d, HXFR_TEST_DAEMON_UNIX, NULL);
    int pub = daemon_connect_ok(&d, false), sub = daemon_connect_ok(&d, false);
    CHECK_EQ(subscribe(sub, 7), 0);
    CHECK_EQ(subscribe(sub, 0xFFFFFFFFu), 0);
    CHECK_EQ(enable(pub, 7, W, H, NULL), 1);
    CHECK_EQ(disable(pub, 7), 1);
    CHECK_EQ(subscribe(sub, 7), 0);
    /* Subscribed, then disabled while frames flow: the end message. */
    CHECK_EQ(enable(pub, 7, W, H, NULL), 1);
    CHECK_EQ(subscribe(sub, 7), 1);
    publish(pub, 7, 0, false, NULL);
    struct au_list a = {0};
    recv_until_pts(sub, 7, 0, &a);
    CHECK_EQ(disable(pub, 7), 1);
    struct hxfr_msg m;
    CHECK_EQ(expect_msg(sub, HXFR_MSG_ERROR, &m, NULL, NULL), 0);
    CHECK_EQ(m.u.error.code, HXFR_STATUS_NO_SCANOUT);
    CHECK_EQ(m.hdr.session_id, 7);
    CHECK(strstr(m.u.error.message, "disabled") != NULL);
    /* Nothing more arrives for it; the publisher still encodes (pull
     * mode on its session). */
    publish(pub, 7, 1, false, NULL);
    CHECK(!readable(sub, 300));
    CHECK_EQ(ping_ok(sub), 0);
    au_free(&a);
    close(sub);
    close(pub);
    daemon_stop_clean(&d, NULL);
}

/* The scanout outlives its publisher: the subscribers are not told, they
 * keep getting keepalives of the last picture (pts advancing), a new
 * connection that enables it becomes its publisher with the same encoder
 * and kept picture (one decodable stream), and it ends when someone
 * disables it. */
TEST(publisher_vanishes)
{
    struct hxfr_test_daemon d;
    const char *args[] = {"--keepalive-ms", "100", NULL};
    daemon_start_ok(&d, HXFR_TEST_DAEMON_UNIX, args);
    int pub = daemon_connect_ok(&d, false), s1 = daemon_connect_ok(&d, false),
        s2 = daemon_connect_ok(&d, false);
    CHECK_EQ(enable(pub, 3, W, H, NULL), 1);
    CHECK_EQ(subscribe(s1, 3), 1);
    CHECK_EQ(subscribe(s2, 3), 1);
    publish(pub, 3, 0, false, NULL);
    /* A second frame half sent, then the publisher is gone. */
    struct test_frame f;
    CHECK_EQ(test_frame_make(&f, HXFR_FORMAT_ARGB8888, W, H, 0, 1), 0);
    struct hxfr_msg m;
    memset(&m, 0, sizeof(m));
    m.hdr.type = HXFR_MSG_FRAME_REQUEST;
    m.hdr.flags = HXFR_FLAG_PIXEL_DATA;
    m.hdr.session_id = 3;
    m.u.frame_request.width = W;
    m.u.frame_request.height = H;
    m.u.frame_request.format = HXFR_FORMAT_ARGB8888;
    m.u.frame_request.stride = W * 4;
    uint8_t hdr[HXFR_HEADER_SIZE + HXFR_FRAME_REQUEST_SIZE];
    CHECK(hxfr_msg_encode(&m, (uint32_t)f.g.size, hdr, sizeof(hdr)) > 0);
    CHECK_EQ(hxfr_test_send_all(pub, hdr, sizeof(hdr)), 0);
    CHECK_EQ(hxfr_test_send_all(pub, f.data, (size_t)f.g.size / 2), 0);
    test_frame_free(&f);
    close(pub);
    struct au_list a[2] = {{0}, {0}};
    int fds[2] = {s1, s2};
    for (int i = 0; i < 2; i++) {
        /* Frame 0, then keepalives only (the half frame never counts):
         * nothing but FRAME_RESPONSEs, their pts moving on. */
        recv_until_pts(fds[i], 3, 0, &a[i]);
        for (int k = 0; k < 4; k++) {
            recv_au(fds[i], 3, &a[i]);
            CHECK(a[i].v[a[i].n - 1].pts > a[i].v[a[i].n - 2].pts);
        }
    }
    CHECK_EQ(subscribe(s1, 3), 1); /* still there; s1 restarts at an IDR */
    /* A new publisher takes it over. */
    int pub2 = daemon_connect_ok(&d, false);
    CHECK_EQ(enable(pub2, 3, W, H, NULL), 1);
    publish(pub2, 3, 7, false, NULL);
    for (int i = 0; i < 2; i++) {
        recv_until_pts(fds[i], 3, 7 * PTS_STEP, &a[i]);
    }
    decode_all(&a[1]);
    /* Anyone may end it. */
    int other = daemon_connect_ok(&d, false);
    CHECK_EQ(disable(other, 3), 1);
    close(other);
    for (int i = 0; i < 2; i++) {
        struct hxfr_msg e;
        do {
            CHECK_EQ(hxfr_test_recv_msg(fds[i], RECV_TIMEOUT_MS, &e, NULL, NULL), 1);
        } while (e.hdr.type == HXFR_MSG_FRAME_RESPONSE);
        CHECK_EQ(e.hdr.type, HXFR_MSG_ERROR);
        CHECK_EQ(e.u.error.code, HXFR_STATUS_NO_SCANOUT);
        CHECK_EQ(e.hdr.session_id, 3);
        CHECK(strstr(e.u.error.message, "disabled by client") != NULL);
        CHECK_EQ(subscribe(fds[i], 3), 0);
        au_free(&a[i]);
    }
    close(pub2);
    close(s1);
    close(s2);
    daemon_stop_clean(&d, NULL);
}

TEST(keyframe_request_from_subscriber)
{
    struct hxfr_test_daemon d;
    /* Keepalives out of the way: the next AU must come from the request. */
    const char *args[] = {"--keepalive-ms", "60000", NULL};
    daemon_start_ok(&d, HXFR_TEST_DAEMON_UNIX, args);
    int pub = daemon_connect_ok(&d, false), sub = daemon_connect_ok(&d, false);
    struct au_list a = {0};
    CHECK_EQ(enable(pub, 0, W, H, NULL), 1);
    CHECK_EQ(subscribe(sub, 0), 1);
    for (uint64_t i = 0; i < 5; i++) {
        publish(pub, 0, i, false, NULL);
    }
    recv_until_pts(sub, 0, 4 * PTS_STEP, &a);
    CHECK(!a.v[a.n - 1].keyframe);
    /* Idle publisher: the IDR is made at once from the kept picture. */
    CHECK_EQ(send_simple(sub, HXFR_MSG_KEYFRAME_REQ, 0), 0);
    recv_au(sub, 0, &a);
    CHECK(a.v[a.n - 1].keyframe);
    CHECK(is_idr_with_params(&a.v[a.n - 1]));
    /* Busy publisher: the request races with a frame on its way. Either
     * that frame is the IDR, or an IDR re-encode comes before it (the
     * frame was still arriving) or right after it (it was prepared before
     * the request came): in every order an IDR follows the request. */
    size_t mark = a.n;
    struct test_frame f;
    CHECK_EQ(test_frame_make(&f, HXFR_FORMAT_ARGB8888, W, H, 0, 5), 0);
    CHECK_EQ(send_frame(pub, 0, &f, 5 * PTS_STEP, false), 0);
    CHECK_EQ(send_simple(sub, HXFR_MSG_KEYFRAME_REQ, 0), 0);
    CHECK_EQ(expect_msg(pub, HXFR_MSG_FRAME_RESPONSE, NULL, NULL, NULL), 0);
    test_frame_free(&f);
    recv_until_pts(sub, 0, 5 * PTS_STEP, &a);
    bool idr_seen = false;
    for (size_t i = mark; i < a.n; i++) {
        idr_seen = idr_seen || a.v[i].keyframe;
    }
    if (!idr_seen) {
        recv_au(sub, 0, &a);
        CHECK(a.v[a.n - 1].keyframe);
    }
    decode_all(&a);
    au_free(&a);
    close(sub);
    close(pub);
    daemon_stop_clean(&d, NULL);
}

TEST(another_client_cannot_publish)
{
    struct hxfr_test_daemon d;
    /* No keepalive in between: the subscriber's AUs are counted exactly. */
    const char *args[] = {"--keepalive-ms", "60000", NULL};
    daemon_start_ok(&d, HXFR_TEST_DAEMON_UNIX, args);
    int pub = daemon_connect_ok(&d, false), other = daemon_connect_ok(&d, false),
        sub = daemon_connect_ok(&d, false);
    struct au_list a = {0};
    CHECK_EQ(enable(pub, 0, W, H, NULL), 1);
    CHECK_EQ(subscribe(sub, 0), 1);
    publish(pub, 0, 0, false, NULL);
    /* Session ids belong to each connection: the other client's frame
     * with session_id 0 is its own pull-mode frame, answered to it only. */
    publish(other, 0, 777, false, NULL);
    CHECK_EQ(enable(other, 0, W, H, NULL), 0);
    publish(pub, 0, 1, false, NULL);
    recv_until_pts(sub, 0, 1 * PTS_STEP, &a);
    CHECK(find_pts(&a, 777 * PTS_STEP) == NULL);
    CHECK_EQ(a.n, 2);
    au_free(&a);
    close(other);
    close(sub);
    close(pub);
    daemon_stop_clean(&d, NULL);
}

/* ---- a subscriber that never reads ------------------------------------ */

struct reader {
    int fd;
    int64_t last_pts;
    struct au_list got;
};

static void *reader_main(void *arg)
{
    struct reader *r = arg;
    for (int i = 0; i < 1000; i++) {
        struct hxfr_msg m;
        uint8_t *data = NULL;
        size_t len = 0;
        if (expect_msg(r->fd, HXFR_MSG_FRAME_RESPONSE, &m, &data, &len) < 0) {
            return NULL;
        }
        au_push(&r->got, &m, data, len);
        if (m.u.frame_response.pts == r->last_pts) {
            return NULL;
        }
    }
    return NULL;
}

TEST_T(slow_subscriber_does_not_slow_others, 120)
{
    struct hxfr_test_daemon d;
    /* No keepalives: every AU is a published frame or an IDR re-encode
     * someone asked for, and a reader that lost the last frame ends at the
     * receive timeout instead of reading keepalives forever. */
    const char *args[] = {"--keepalive-ms", "60000", NULL};
    daemon_start_ok(&d, HXFR_TEST_DAEMON_UNIX, args);
    int pub = daemon_connect_ok(&d, false), good = daemon_connect_ok(&d, false),
        bad = daemon_connect_ok(&d, false);
    int small = 4096;
    CHECK_EQ(setsockopt(bad, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)), 0);
    const uint64_t n = 80;

    CHECK_EQ(enable(pub, 0, W, H, NULL), 1);
    CHECK_EQ(subscribe(good, 0), 1);
    CHECK_EQ(subscribe(bad, 0), 1);
    struct reader r = {.fd = good, .last_pts = (int64_t)(n - 1) * PTS_STEP};
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, reader_main, &r), 0);
    /* Every other frame an IDR: large access units that overflow the bad
     * subscriber's socket and queue quickly. */
    struct au_list p = {0};
    for (uint64_t i = 0; i < n; i++) {
        publish(pub, 0, i, i % 2 == 0, &p);
    }
    pthread_join(th, NULL);
    /* The publisher got every response; the good subscriber got every
     * frame (generous bound), in order, decodable. */
    CHECK_EQ(p.n, n);
    fprintf(stderr, "good subscriber: %zu of %llu frames\n", r.got.n, (unsigned long long)n);
    /* Normally all of them; the bound is generous because a loaded machine
     * may deschedule the reader long enough to overflow its own queue. */
    CHECK(r.got.n >= n / 2);
    decode_all(&r.got);

    /* Now the bad one reads what was queued for it: bounded (the socket
     * buffers plus at most 8 queued messages), with frames missing. */
    size_t max_au = 0;
    for (size_t i = 0; i < p.n; i++) {
        max_au = p.v[i].len > max_au ? p.v[i].len : max_au;
    }
    struct au_list b = {0};
    size_t bytes = 0;
    while (readable(bad, 150)) {
        recv_au(bad, 0, &b);
        bytes += b.v[b.n - 1].len;
    }
    fprintf(stderr, "bad subscriber: %zu AUs, %zu bytes backlog (max AU %zu)\n", b.n, bytes,
            max_au);
    CHECK(b.n < n);
    CHECK(bytes <= 9 * max_au + 1024 * 1024);
    /* After a gap it resumes at an IDR: never a P-frame whose reference it
     * missed. Then more frames reach it normally. */
    publish(pub, 0, n, false, &p);
    publish(pub, 0, n + 1, false, &p);
    recv_until_pts(bad, 0, (int64_t)(n + 1) * PTS_STEP, &b);
    /* Published AUs are recognised by their bytes (the publisher got the
     * same AU); anything else is a re-encode (keepalive, or the IDR a
     * subscriber asked for). Where published frames are missing, the first
     * AU that came after the last one received must be an IDR. */
    int64_t prev = -1;
    size_t prev_i = 0;
    bool gap_seen = false;
    for (size_t i = 0; i < b.n; i++) {
        const struct au *pa = find_pts(&p, b.v[i].pts);
        bool published = pa && pa->len == b.v[i].len && memcmp(pa->data, b.v[i].data, pa->len) == 0;
        int64_t idx = published ? b.v[i].pts / PTS_STEP : -2;
        if (idx >= 0 && prev >= 0 && idx != prev + 1) {
            gap_seen = true;
            if (!b.v[prev_i + 1].keyframe) {
                for (size_t j = 0; j < b.n; j++) {
                    fprintf(stderr, "  %zu: pts %lld %s\n", j, (long long)b.v[j].pts,
                            b.v[j].keyframe ? "IDR" : "P");
                }
            }
            CHECK(b.v[prev_i + 1].keyframe);
        }
        if (idx >= 0) {
            prev = idx;
            prev_i = i;
        }
    }
    CHECK(gap_seen);
    decode_all(&b);
    /* Clients are numbered in connection order: pub 1, good 2, bad 3. */
    CHECK(hxfr_test_daemon_log_count(&d, "subscriber client 3 is not keeping up") >= 1);
    au_free(&p);
    au_free(&b);
    au_free(&r.got);
    close(bad);
    close(good);
    close(pub);
    daemon_stop_clean(&d, NULL);
}

TEST(subscriber_vanishes_and_shutdown_with_subscribers)
{
    struct hxfr_test_daemon d;
    daemon_start_ok(&d, HXFR_TEST_DAEMON_UNIX, NULL);
    int pub = daemon_connect_ok(&d, false), sub = daemon_connect_ok(&d, false),
        sub2 = daemon_connect_ok(&d, false);
    CHECK_EQ(enable(pub, 0, W, H, NULL), 1);
    CHECK_EQ(subscribe(sub, 0), 1);
    CHECK_EQ(subscribe(sub2, 0), 1);
    publish(pub, 0, 0, false, NULL);
    close(sub);
    publish(pub, 0, 1, false, NULL);
    publish(pub, 0, 2, false, NULL);
    struct au_list a = {0};
    recv_until_pts(sub2, 0, 2 * PTS_STEP, &a);
    /* SIGTERM with a publisher and a subscriber connected: clean exit. */
    CHECK_EQ(hxfr_test_daemon_stop(&d), 0);
    CHECK(hxfr_test_daemon_log_count(&d, "unsubscribed from scanout 0") >= 1);
    CHECK_EQ(hxfr_test_daemon_unexpected_errors(&d, NULL), 0);
    hxfr_test_daemon_free(&d);
    au_free(&a);
    close(sub2);
    close(pub);
}

TEST(keyframe_request_flood_is_bounded)
{
    struct hxfr_test_daemon d;
    const char *args[] = {"--keepalive-ms", "60000", NULL};
    daemon_start_ok(&d, HXFR_TEST_DAEMON_UNIX, args);
    int pub = daemon_connect_ok(&d, false), sub = daemon_connect_ok(&d, false),
        other = daemon_connect_ok(&d, false);
    struct au_list a = {0};
    CHECK_EQ(enable(pub, 0, W, H, NULL), 1);
    publish(pub, 0, 0, false, NULL);
    CHECK_EQ(subscribe(sub, 0), 1);
    CHECK_EQ(subscribe(other, 0), 1);
    recv_au(sub, 0, &a);
    CHECK(a.v[0].keyframe);
    /* A request right after that IDR is deferred, not lost. */
    CHECK_EQ(send_simple(sub, HXFR_MSG_KEYFRAME_REQ, 0), 0);
    recv_au(sub, 0, &a);
    CHECK(a.v[1].keyframe);
    /* A flood: IDRs are made at most every 100 ms per scanout. */
    for (int i = 0; i < 500; i++) {
        CHECK_EQ(send_simple(sub, HXFR_MSG_KEYFRAME_REQ, 0), 0);
    }
    size_t before = a.n;
    collect_for(sub, 0, 700, &a);
    size_t idrs = 0;
    for (size_t i = before; i < a.n; i++) {
        idrs += a.v[i].keyframe;
    }
    fprintf(stderr, "500 KEYFRAME_REQ -> %zu IDRs in 700 ms\n", idrs);
    CHECK(idrs >= 1);
    CHECK(idrs <= 10);
    /* The other subscriber got the same handful, and the connection of the
     * flooder is fine. */
    CHECK_EQ(ping_ok(pub), 0);
    decode_all(&a);
    au_free(&a);
    close(other);
    close(sub);
    close(pub);
    daemon_stop_clean(&d, NULL);
}

TEST(publisher_vanishes_with_frames_encoding)
{
    struct hxfr_test_daemon d;
    /* No keepalives: every AU the subscriber gets is a published frame. */
    const char *args[] = {"--keepalive-ms", "60000", NULL};
    daemon_start_ok(&d, HXFR_TEST_DAEMON_UNIX, args);
    int sub = daemon_connect_ok(&d, false);
    for (int round = 0; round < 3; round++) {
        /* Whole frames queued and encoding, then the publisher is gone
         * before any answer: the scanout keeps its session, the frame at
         * the worker still reaches the subscriber, and the next round's
         * publisher takes the session over, encoder and all. */
        int pub = daemon_connect_ok(&d, false);
        CHECK_EQ(enable(pub, 1, 640, 480, NULL), 1);
        if (round == 0) {
            CHECK_EQ(subscribe(sub, 1), 1);
        }
        struct test_frame f;
        CHECK_EQ(test_frame_make(&f, HXFR_FORMAT_ARGB8888, 640, 480, 0, (uint64_t)round), 0);
        for (int i = 0; i < 3; i++) {
            CHECK_EQ(send_frame(pub, 1, &f, (round * 3 + i) * PTS_STEP, i == 0), 0);
        }
        test_frame_free(&f);
        close(pub);
    }
    /* Anyone may end it, the subscriber too. Until then it got frames
     * only, and they are one decodable stream. */
    struct hxfr_msg m;
    memset(&m, 0, sizeof(m));
    m.hdr.type = HXFR_MSG_DISABLE_SCANOUT;
    m.u.disable_scanout.scanout_id = 1;
    CHECK_EQ(hxfr_test_send_msg(sub, &m, NULL, 0), 0);
    struct au_list got = {0};
    bool ended = false;
    for (;;) {
        uint8_t *body = NULL;
        uint32_t blen = 0;
        CHECK_EQ(hxfr_test_recv_msg(sub, RECV_TIMEOUT_MS, &m, &body, &blen), 1);
        if (m.hdr.type == HXFR_MSG_FRAME_RESPONSE) {
            CHECK(!ended);
            /* One unit, the whole access unit: drop its size prefix. */
            CHECK_EQ(m.u.frame_response.nal_count, 1);
            CHECK(blen > 4);
            memmove(body, body + 4, blen - 4);
            au_push(&got, &m, body, blen - 4);
            continue;
        }
        free(body);
        if (m.hdr.type == HXFR_MSG_ERROR) {
            CHECK_EQ(m.u.error.code, HXFR_STATUS_NO_SCANOUT);
            ended = true;
            continue;
        }
        CHECK_EQ(m.hdr.type, HXFR_MSG_SCANOUT_RESP);
        CHECK_EQ(m.u.scanout_resp.success, 1);
        break;
    }
    CHECK(ended);
    CHECK(got.n >= 1);
    decode_all(&got);
    au_free(&got);
    /* A pull-mode client with frames in flight cannot turn that session
     * into a scanout until they are answered. */
    int c = daemon_connect_ok(&d, false);
    struct test_frame f;
    CHECK_EQ(test_frame_make(&f, HXFR_FORMAT_ARGB8888, 640, 480, 0, 9), 0);
    CHECK_EQ(send_frame(c, 2, &f, 0, false), 0);
    CHECK_EQ(send_frame(c, 2, &f, PTS_STEP, false), 0);
    test_frame_free(&f);
    memset(&m, 0, sizeof(m));
    m.hdr.type = HXFR_MSG_ENABLE_SCANOUT;
    m.u.enable_scanout.scanout_id = 2;
    m.u.enable_scanout.width = 640;
    m.u.enable_scanout.height = 480;
    CHECK_EQ(hxfr_test_send_msg(c, &m, NULL, 0), 0);
    /* Answers in order: SCANOUT_RESP may come before or after the frame
     * responses; a refusal happens only while frames are in flight. */
    int responses = 0, resp_success = -1;
    while (responses < 2 || resp_success < 0) {
        CHECK_EQ(hxfr_test_recv_msg(c, RECV_TIMEOUT_MS, &m, NULL, NULL), 1);
        if (m.hdr.type == HXFR_MSG_FRAME_RESPONSE) {
            responses++;
        } else {
            CHECK_EQ(m.hdr.type, HXFR_MSG_SCANOUT_RESP);
            resp_success = (int)m.u.scanout_resp.success;
            CHECK(resp_success == 1 || responses < 2);
        }
    }
    CHECK_EQ(enable(c, 2, 640, 480, NULL), 1);
    CHECK_EQ(ping_ok(sub), 0);
    close(c);
    close(sub);
    daemon_stop_clean(&d, NULL);
}
