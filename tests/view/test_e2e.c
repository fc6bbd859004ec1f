/* End to end: the real hxfrd, a publisher (view-publish) enabling scanout 0
 * and publishing the pattern into it, hxfr-view subscribed to it, and
 * WebSocket clients standing in for browsers. The access units they receive
 * are decoded with libavcodec (tests/common/avcheck) and compared with the
 * pattern frame their pts names. */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hxfr/proto.h>

#include "avcheck.h"
#include "daemon.h"
#include "harness.h"
#include "pattern.h"
#include "viewtest.h"

#define WAIT_MS 15000
#define FPS     30

struct e2e {
    struct hxfr_test_daemon d;
    struct vt_env e;
    pid_t publisher;
};

static pid_t start_publisher(struct e2e *t)
{
    char fps[16];
    snprintf(fps, sizeof(fps), "%d", FPS);
    const char *argv[] = {getenv("VIEW_PUBLISH"),
                          "--connect",
                          t->d.unix_uri,
                          "--scanout",
                          "0",
                          "--size",
                          "320x240",
                          "--fps",
                          fps,
                          NULL};
    return vt_spawn(argv, "publishing", WAIT_MS);
}

static void e2e_start(struct e2e *t)
{
    memset(t, 0, sizeof(*t));
    if (hxfr_test_daemon_start(&t->d, HXFR_TEST_DAEMON_UNIX, NULL) < 0) {
        FAIL("hxfrd did not start");
    }
    t->publisher = start_publisher(t);
    if (t->publisher <= 0) {
        FAIL("the publisher did not start: %s", hxfr_test_daemon_log(&t->d));
    }
    if (vt_setup(&t->e) < 0) {
        FAIL("setup");
    }
    snprintf(t->e.sock, sizeof(t->e.sock), "%s", t->d.unix_path);
    if (vt_start_view(&t->e, NULL) < 0) {
        FAIL("hxfr-view did not start");
    }
}

static void e2e_stop(struct e2e *t)
{
    vt_stop(&t->e.view);
    vt_stop(&t->publisher);
    vt_teardown(&t->e);
    CHECK_EQ(hxfr_test_daemon_stop(&t->d), 0);
    hxfr_test_daemon_free(&t->d);
}

/* Receives frames from the first keyframe on and decodes n of them; checks
 * sequence continuity and the picture of the last against the pattern. */
static void receive_and_check(struct ws *w, int n)
{
    struct hxfr_avcheck *av = hxfr_avcheck_new(2);
    CHECK(av != NULL);
    struct vt_msg m;
    CHECK_EQ(vt_recv_frame(w, WAIT_MS, &m), 1);
    CHECK(m.h.flags & HXFR_VIEW_FLAG_KEYFRAME);
    CHECK(hxfr_avcheck_au_idr_with_params(m.data, m.data_len));
    uint32_t seq = m.h.seq;
    int64_t pts = m.h.pts;
    CHECK_EQ(hxfr_avcheck_decode_au(av, m.data, m.data_len), 1);
    for (int i = 1; i < n; i++) {
        CHECK_EQ(vt_recv_frame(w, WAIT_MS, &m), 1);
        CHECK_EQ(m.h.seq, seq + 1);
        seq = m.h.seq;
        pts = m.h.pts;
        CHECK_EQ(hxfr_avcheck_decode_au(av, m.data, m.data_len), 1);
    }
    CHECK_EQ(hxfr_avcheck_idr_missing_params(av), 0);
    const struct hxfr_avcheck_frame *f = hxfr_avcheck_last(av);
    CHECK(f != NULL);
    CHECK_EQ(f->width, 320);
    CHECK_EQ(f->height, 240);
    /* The publisher's pts names the pattern frame. */
    uint64_t index = (uint64_t)llround((double)pts * FPS / 1e9);
    double y = 0;
    CHECK_EQ(
        hxfr_avcheck_psnr_pattern(f, HXFR_PATTERN_DESKTOP, HXFR_FORMAT_ARGB8888, index, &y, NULL),
        0);
    if (y < 30.0) {
        FAIL("decoded frame %llu has a luma PSNR of %.1f dB", (unsigned long long)index, y);
    }
    hxfr_avcheck_destroy(av);
}

TEST_T(e2e_hxfrd_publisher_gateway_browsers, 90)
{
    struct e2e t;
    e2e_start(&t);
    struct ws a, b;
    CHECK_EQ(ws_open(&a, t.e.port, "/ws/0", NULL, 0), 0);
    CHECK(vt_wait_status(&a, "streaming", WAIT_MS, NULL, 0));
    receive_and_check(&a, 45);

    /* A second browser joins the running stream and starts at a keyframe
     * that the host sends on request. */
    CHECK_EQ(ws_open(&b, t.e.port, "/ws/0", NULL, 0), 0);
    receive_and_check(&b, 15);

    /* Its explicit request is honoured too. */
    struct vt_msg m;
    CHECK_EQ(ws_send(&b, WS_OP_TEXT, "keyframe", 8, true, true), 0);
    bool key = false;
    for (int i = 0; i < 60 && !key; i++) {
        CHECK_EQ(vt_recv_frame(&b, WAIT_MS, &m), 1);
        key = (m.h.flags & HXFR_VIEW_FLAG_KEYFRAME) != 0;
    }
    CHECK(key);

    /* A still publisher: the host's keepalive keeps frames coming. */
    CHECK_EQ(kill(t.publisher, SIGUSR1), 0);
    int64_t since = vt_now_ms();
    int got = 0;
    while (got < 6) {
        CHECK_EQ(vt_recv_frame(&a, WAIT_MS, &m), 1);
        got++;
    }
    CHECK(vt_now_ms() - since < WAIT_MS);
    CHECK_EQ(kill(t.publisher, SIGUSR2), 0);
    ws_close(&b);

    /* The publisher disables the scanout and goes (view-publish on
     * SIGTERM): the browser is told; it comes back: the stream resumes on
     * its own, as a new stream starting at a keyframe. */
    CHECK_EQ(vt_stop(&t.publisher), 0);
    char text[HXFR_VIEW_TEXT_MAX + 1] = "";
    bool told = false;
    int64_t deadline = vt_now_ms() + WAIT_MS;
    while (!told && vt_now_ms() < deadline) {
        CHECK_EQ(vt_recv(&a, WAIT_MS, &m), 1);
        told = m.opcode == WS_OP_TEXT && strstr(m.text, "\"type\":\"status\"") &&
               !strstr(m.text, "\"state\":\"streaming\"");
        if (told) {
            snprintf(text, sizeof(text), "%s", m.text);
        }
    }
    CHECK(told);
    fprintf(stderr, "# told: %s\n", text);
    t.publisher = start_publisher(&t);
    CHECK(t.publisher > 0);
    CHECK(vt_wait_status(&a, "streaming", 20000, NULL, 0));
    CHECK_EQ(vt_recv_frame(&a, WAIT_MS, &m), 1);
    CHECK(m.h.flags & HXFR_VIEW_FLAG_NEW_STREAM);
    CHECK(m.h.flags & HXFR_VIEW_FLAG_KEYFRAME);
    ws_close(&a);
    e2e_stop(&t);
}

TEST_T(e2e_upstream_over_tcp, 60)
{
    /* The gateway reaches the host over TCP (as from another machine or
     * through user-mode networking) just the same. */
    struct e2e t;
    memset(&t, 0, sizeof(t));
    CHECK_EQ(hxfr_test_daemon_start(&t.d, HXFR_TEST_DAEMON_UNIX | HXFR_TEST_DAEMON_TCP, NULL), 0);
    t.publisher = start_publisher(&t);
    CHECK(t.publisher > 0);
    CHECK_EQ(vt_setup(&t.e), 0);
    /* With a --connect of its own, vt_start_view passes no unix: one. */
    const char *const args[] = {"--connect", t.d.tcp_uri, NULL};
    CHECK_EQ(vt_start_view(&t.e, args), 0);
    struct ws w;
    CHECK_EQ(ws_open(&w, t.e.port, "/ws/0", NULL, 0), 0);
    receive_and_check(&w, 20);
    ws_close(&w);
    e2e_stop(&t);
}

TEST_T(e2e_hxfr_send_publishes, 90)
{
    /* The project's own sender as the publisher: hxfr-send --scanout. */
    struct e2e t;
    memset(&t, 0, sizeof(t));
    CHECK_EQ(hxfr_test_daemon_start(&t.d, HXFR_TEST_DAEMON_UNIX, NULL), 0);
    CHECK_EQ(vt_setup(&t.e), 0);
    snprintf(t.e.sock, sizeof(t.e.sock), "%s", t.d.unix_path);
    CHECK_EQ(vt_start_view(&t.e, NULL), 0);
    struct ws w;
    CHECK_EQ(ws_open(&w, t.e.port, "/ws/0", NULL, 0), 0);
    char out[400];
    snprintf(out, sizeof(out), "%s/sent.h264", t.e.dir);
    const char *argv[] = {getenv("HXFR_SEND"),
                          "--connect",
                          t.d.unix_uri,
                          "--scanout",
                          "0",
                          "--size",
                          "320x240",
                          "--fps",
                          "30",
                          "--frames",
                          "0",
                          "--duration",
                          "60",
                          "--output",
                          out,
                          NULL};
    t.publisher = vt_spawn(argv, NULL, 0);
    CHECK(t.publisher > 0);
    /* The gateway keeps retrying until the scanout exists. */
    CHECK(vt_wait_status(&w, "streaming", 20000, NULL, 0));
    receive_and_check(&w, 30);
    /* hxfr-send disables the scanout when it stops: the browser is told. */
    vt_stop(&t.publisher);
    struct vt_msg m;
    bool told = false;
    int64_t deadline = vt_now_ms() + WAIT_MS;
    while (!told && vt_now_ms() < deadline) {
        CHECK_EQ(vt_recv(&w, WAIT_MS, &m), 1);
        told = m.opcode == WS_OP_TEXT && strstr(m.text, "\"type\":\"status\"") &&
               !strstr(m.text, "\"state\":\"streaming\"");
    }
    CHECK(told);
    ws_close(&w);
    e2e_stop(&t);
}
