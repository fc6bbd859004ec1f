/* Integration tests of hxfr-view against the test-double host (fakehost):
 * HTTP routes, streaming to several browsers, keyframe handling, hostile
 * browsers, slow browsers, and hostile or vanishing upstreams.
 *
 * Waits use generous deadlines and conditions (frame counts, log lines),
 * never sleeps that decide pass or fail. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "viewtest.h"

#define WAIT_MS 10000

static void setup(struct vt_env *e, const char *const *host_args, const char *const *view_args)
{
    if (vt_setup(e) < 0) {
        fprintf(stderr, "setup failed\n");
        exit(1);
    }
    if (host_args && vt_start_host(e, host_args[0] ? host_args : NULL) < 0) {
        vt_teardown(e);
        exit(1);
    }
    if (vt_start_view(e, view_args) < 0) {
        vt_teardown(e);
        exit(1);
    }
}

static const char *const no_args[] = {NULL};

/* Opens a browser on /ws/0 and checks the first frame is a keyframe with
 * SPS and PPS. Returns the frame's seq. */
static uint32_t open_streaming(struct vt_env *e, struct ws *w)
{
    struct vt_msg m;
    if (ws_open(w, e->port, "/ws/0", NULL, 0) != 0) {
        fprintf(stderr, "WebSocket refused\n");
        exit(1);
    }
    if (vt_recv_frame(w, WAIT_MS, &m) != 1) {
        fprintf(stderr, "no frame\n");
        exit(1);
    }
    if (!(m.h.flags & HXFR_VIEW_FLAG_KEYFRAME) || !vt_has_nal(m.data, m.data_len, 7) ||
        !vt_has_nal(m.data, m.data_len, 8) || !vt_has_nal(m.data, m.data_len, 5)) {
        fprintf(stderr, "first frame is not a keyframe with SPS/PPS\n");
        exit(1);
    }
    return m.h.seq;
}

/* Receives n frames with consecutive sequence numbers after *seq. */
static void expect_contiguous(struct ws *w, uint32_t *seq, int n)
{
    struct vt_msg m;
    for (int i = 0; i < n; i++) {
        if (vt_recv_frame(w, WAIT_MS, &m) != 1) {
            FAIL("frame %d of %d did not arrive", i, n);
        }
        if (m.h.seq != *seq + 1) {
            FAIL("sequence jumped from %u to %u", *seq, m.h.seq);
        }
        *seq = m.h.seq;
    }
}

TEST(http_routes)
{
    struct vt_env e;
    const char *const view_args[] = {"--scanout", "0", NULL};
    setup(&e, NULL, view_args);
    char body[65536];
    char loc[128];
    CHECK_EQ(ws_http_get(e.port, "/", NULL, body, sizeof(body), loc, sizeof(loc)), 302);
    CHECK(strcmp(loc, "/scanout/0") == 0);
    CHECK_EQ(ws_http_get(e.port, "/scanout/0", NULL, body, sizeof(body), NULL, 0), 200);
    CHECK(strstr(body, "<canvas") != NULL);
    CHECK(strstr(body, "/viewer.js") != NULL);
    CHECK_EQ(ws_http_get(e.port, "/viewer.js", NULL, body, sizeof(body), NULL, 0), 200);
    CHECK(strstr(body, "VideoDecoder") != NULL);
    CHECK_EQ(ws_http_get(e.port, "/scanout/1", NULL, NULL, 0, NULL, 0), 404);
    CHECK_EQ(ws_http_get(e.port, "/scanout/00", NULL, NULL, 0, NULL, 0), 404);
    CHECK_EQ(ws_http_get(e.port, "/../../etc/passwd", NULL, NULL, 0, NULL, 0), 404);
    CHECK_EQ(ws_http_get(e.port, "/viewer.html", NULL, NULL, 0, NULL, 0), 404);
    CHECK_EQ(ws_http_get(e.port, "/web/viewer.js", NULL, NULL, 0, NULL, 0), 404);
    /* DNS rebinding: a foreign Host name is refused on loopback. */
    CHECK_EQ(ws_http_get(e.port, "/scanout/0", "evil.example:80", NULL, 0, NULL, 0), 403);
    char host[64];
    snprintf(host, sizeof(host), "localhost:%d", e.port);
    CHECK_EQ(ws_http_get(e.port, "/scanout/0", host, NULL, 0, NULL, 0), 200);
    vt_teardown(&e);
}

TEST(index_lists_scanouts)
{
    struct vt_env e;
    const char *const view_args[] = {"--scanout", "0", "--scanout", "7", NULL};
    setup(&e, NULL, view_args);
    char body[65536];
    CHECK_EQ(ws_http_get(e.port, "/", NULL, body, sizeof(body), NULL, 0), 200);
    CHECK(strstr(body, "/scanout/0") != NULL);
    CHECK(strstr(body, "/scanout/7") != NULL);
    CHECK_EQ(ws_http_get(e.port, "/scanout/7", NULL, NULL, 0, NULL, 0), 200);
    vt_teardown(&e);
}

/* Two VMs behind one gateway: each has its own upstream, its pages live
 * under /NAME/, and the index lists both. The second VM's host double
 * serves scanout 3 on its own socket. */
TEST(several_vms)
{
    struct vt_env e;
    if (vt_setup(&e) < 0 || vt_start_host(&e, NULL) < 0) {
        FAIL("setup");
    }
    char sock2[320], log2[320], listen2[330], connect1[340], connect2[340];
    snprintf(sock2, sizeof(sock2), "%s/host2.sock", e.dir);
    snprintf(log2, sizeof(log2), "%s/host2.log", e.dir);
    snprintf(listen2, sizeof(listen2), "unix:%s", sock2);
    const char *host2[] = {getenv("VIEW_FAKEHOST"),
                           "--listen",
                           listen2,
                           "--log",
                           log2,
                           "--scanout",
                           "3",
                           e.h264[0] ? "--h264" : "--pattern",
                           e.h264[0] ? e.h264 : "desktop",
                           NULL};
    pid_t h2 = vt_spawn(host2, "fakehost: listening on", 30000);
    CHECK(h2 > 0);
    snprintf(connect1, sizeof(connect1), "alpha=unix:%s", e.sock);
    snprintf(connect2, sizeof(connect2), "beta=unix:%s", sock2);
    const char *const view_args[] = {"--connect", connect1, "--connect", connect2,
                                     "--scanout", "beta:3", NULL};
    CHECK_EQ(vt_start_view(&e, view_args), 0);

    char body[65536];
    CHECK_EQ(ws_http_get(e.port, "/", NULL, body, sizeof(body), NULL, 0), 200);
    CHECK(strstr(body, "/alpha/scanout/0") != NULL);
    CHECK(strstr(body, "/beta/scanout/3") != NULL);
    CHECK_EQ(ws_http_get(e.port, "/index.json", NULL, body, sizeof(body), NULL, 0), 200);
    CHECK(strstr(body, "\"name\":\"alpha\"") != NULL);
    CHECK(strstr(body, "\"name\":\"beta\"") != NULL);
    CHECK(strstr(body, "\"page\":\"/beta/scanout/3\"") != NULL);
    CHECK_EQ(ws_http_get(e.port, "/alpha/scanout/0", NULL, body, sizeof(body), NULL, 0), 200);
    CHECK_EQ(ws_http_get(e.port, "/beta/scanout/3", NULL, NULL, 0, NULL, 0), 200);
    /* Not offered: the other VM's scanout, the unnamed URLs, unknown VMs. */
    CHECK_EQ(ws_http_get(e.port, "/alpha/scanout/3", NULL, NULL, 0, NULL, 0), 404);
    CHECK_EQ(ws_http_get(e.port, "/beta/scanout/0", NULL, NULL, 0, NULL, 0), 404);
    CHECK_EQ(ws_http_get(e.port, "/scanout/0", NULL, NULL, 0, NULL, 0), 404);
    CHECK_EQ(ws_http_get(e.port, "/gamma/scanout/0", NULL, NULL, 0, NULL, 0), 404);

    struct ws a, b, w;
    CHECK(ws_open(&w, e.port, "/ws/0", NULL, 0) != 0);
    CHECK(ws_open(&w, e.port, "/beta/ws/0", NULL, 0) != 0);
    CHECK_EQ(ws_open(&a, e.port, "/alpha/ws/0", NULL, 0), 0);
    CHECK_EQ(ws_open(&b, e.port, "/beta/ws/3", NULL, 0), 0);
    struct vt_msg m;
    CHECK_EQ(vt_recv_frame(&a, WAIT_MS, &m), 1);
    CHECK_EQ(m.h.scanout_id, 0);
    CHECK(m.h.flags & HXFR_VIEW_FLAG_KEYFRAME);
    CHECK_EQ(vt_recv_frame(&b, WAIT_MS, &m), 1);
    CHECK_EQ(m.h.scanout_id, 3);
    CHECK(m.h.flags & HXFR_VIEW_FLAG_KEYFRAME);
    /* Each host saw exactly its own subscription. */
    CHECK_EQ(vt_log_count(&e, "SUBSCRIBE 0"), 1);
    CHECK_EQ(vt_log_count(&e, "SUBSCRIBE"), 1);
    FILE *f = fopen(log2, "r");
    CHECK(f != NULL);
    char line[64] = "";
    CHECK(fgets(line, sizeof(line), f) != NULL);
    fclose(f);
    CHECK(strncmp(line, "SUBSCRIBE 3", 11) == 0);
    ws_close(&a);
    ws_close(&b);
    CHECK_EQ(vt_stop(&h2), 0);
    vt_teardown(&e);
}

TEST(stream_to_browser)
{
    struct vt_env e;
    setup(&e, no_args, NULL);
    struct ws w;
    CHECK_EQ(ws_open(&w, e.port, "/ws/0", NULL, 0), 0);
    /* hello first, then the status, then frames. */
    struct vt_msg m;
    CHECK_EQ(vt_recv(&w, WAIT_MS, &m), 1);
    CHECK_EQ(m.opcode, WS_OP_TEXT);
    CHECK(strstr(m.text, "\"type\":\"hello\"") != NULL);
    CHECK(vt_wait_status(&w, "streaming", WAIT_MS, NULL, 0));
    CHECK_EQ(vt_recv_frame(&w, WAIT_MS, &m), 1);
    CHECK(m.h.flags & HXFR_VIEW_FLAG_KEYFRAME);
    CHECK(m.h.flags & HXFR_VIEW_FLAG_NEW_STREAM);
    CHECK_EQ(m.h.scanout_id, 0);
    CHECK(vt_has_nal(m.data, m.data_len, 7));
    CHECK(m.data[0] == 0 && m.data[1] == 0);
    CHECK(m.h.recv_us > 1000000000000000ll); /* a realtime clock, in us */
    uint32_t seq = m.h.seq;
    int64_t pts = m.h.pts;
    for (int i = 0; i < 30; i++) {
        CHECK_EQ(vt_recv_frame(&w, WAIT_MS, &m), 1);
        CHECK_EQ(m.h.seq, seq + 1);
        CHECK(!(m.h.flags & HXFR_VIEW_FLAG_NEW_STREAM));
        CHECK(m.h.pts > pts);
        seq = m.h.seq;
        pts = m.h.pts;
    }
    CHECK_EQ(vt_log_count(&e, "SUBSCRIBE 0"), 1);
    ws_close(&w);
    CHECK_EQ(vt_stop(&e.view), 0);
    vt_teardown(&e);
}

TEST(browsers_share_one_subscription)
{
    struct vt_env e;
    setup(&e, no_args, NULL);
    struct ws a, b, c;
    uint32_t sa = open_streaming(&e, &a);
    expect_contiguous(&a, &sa, 10);
    int before = vt_log_count(&e, "KEYFRAME_REQ");
    /* A browser joining a running stream gets a keyframe first, for which
     * the gateway asks the host. */
    uint32_t sb = open_streaming(&e, &b);
    CHECK(vt_log_wait(&e, "KEYFRAME_REQ", before + 1, WAIT_MS));
    uint32_t sc = open_streaming(&e, &c);
    expect_contiguous(&a, &sa, 20);
    expect_contiguous(&b, &sb, 20);
    expect_contiguous(&c, &sc, 20);
    /* One upstream subscription for all of them. */
    CHECK_EQ(vt_log_count(&e, "SUBSCRIBE"), 1);
    ws_close(&a);
    ws_close(&b);
    ws_close(&c);
    vt_teardown(&e);
}

TEST(browser_keyframe_request)
{
    struct vt_env e;
    setup(&e, no_args, NULL);
    struct ws w;
    uint32_t seq = open_streaming(&e, &w);
    expect_contiguous(&w, &seq, 5);
    int before = vt_log_count(&e, "KEYFRAME_REQ");
    CHECK_EQ(ws_send(&w, WS_OP_TEXT, "keyframe", 8, true, true), 0);
    CHECK(vt_log_wait(&e, "KEYFRAME_REQ", before + 1, WAIT_MS));
    /* After asking, the browser only gets frames from a keyframe on. */
    struct vt_msg m;
    CHECK_EQ(vt_recv_frame(&w, WAIT_MS, &m), 1);
    while (!(m.h.flags & HXFR_VIEW_FLAG_KEYFRAME)) {
        /* Frames already on their way before the request are fine, as
         * long as they continue the sequence. */
        CHECK_EQ(m.h.seq, seq + 1);
        seq = m.h.seq;
        CHECK_EQ(vt_recv_frame(&w, WAIT_MS, &m), 1);
    }
    CHECK(vt_has_nal(m.data, m.data_len, 7));
    /* Requests are rate-limited per browser (one per second) and per
     * scanout: after a while, a burst gives one more request, not fifty. */
    expect_contiguous(&w, &m.h.seq, 45);
    before = vt_log_count(&e, "KEYFRAME_REQ");
    for (int i = 0; i < 50; i++) {
        CHECK_EQ(ws_send(&w, WS_OP_TEXT, "keyframe", 8, true, true), 0);
    }
    CHECK(vt_log_wait(&e, "KEYFRAME_REQ", before + 1, WAIT_MS));
    expect_contiguous(&w, &m.h.seq, 10);
    CHECK(vt_log_count(&e, "KEYFRAME_REQ") < before + 3);
    ws_close(&w);
    vt_teardown(&e);
}

TEST(ping_pong)
{
    struct vt_env e;
    setup(&e, no_args, NULL);
    struct ws w;
    CHECK_EQ(ws_open(&w, e.port, "/ws/0", NULL, 0), 0);
    CHECK_EQ(ws_send(&w, WS_OP_TEXT, "ping 4242", 9, true, true), 0);
    struct vt_msg m;
    int64_t deadline = vt_now_ms() + WAIT_MS;
    bool got = false;
    while (!got && vt_now_ms() < deadline) {
        CHECK_EQ(vt_recv(&w, WAIT_MS, &m), 1);
        got = m.opcode == WS_OP_TEXT && strstr(m.text, "\"type\":\"pong\",\"token\":4242,");
    }
    CHECK(got);
    ws_close(&w);
    vt_teardown(&e);
}

/* One way for a browser to misbehave. */
struct bad_input {
    const char *name;
    int opcode;
    const char *data;
    size_t len;
    bool mask;
    bool raw;
};

TEST(malformed_input_closes_only_that_browser)
{
    static char big[100000];
    memset(big, 'k', sizeof(big));
    static char huge[300];
    memset(huge, 'x', sizeof(huge));
    memcpy(huge, "\x81\xff\x7f\xff\xff\xff\xff\xff\xff\xff\x01\x02\x03\x04", 14);
    const struct bad_input bad[] = {
        {"unknown text", WS_OP_TEXT, "hello", 5, true, false},
        {"binary message", WS_OP_BINARY, "keyframe", 8, true, false},
        {"oversized text", WS_OP_TEXT, big, sizeof(big), true, false},
        {"invalid UTF-8", WS_OP_TEXT, "\xff\xfe\xfd", 3, true, false},
        /* libwebsockets 4.1 accepts unmasked client frames, so an unmasked
         * frame is judged by its content like any other. */
        {"unmasked unknown text", WS_OP_TEXT, "hello", 5, false, false},
        {"reserved opcode", 0x3, "keyframe", 8, true, false},
        {"garbage bytes", 0, "\xff\x00\x13\x37 not a websocket frame \x80\x81", 30, true, true},
        /* 2^63 - 1 bytes announced, a few hundred sent. */
        {"huge announced length", 0, huge, sizeof(huge), true, true},
        {"HTTP after upgrade", 0, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27, true, true},
    };
    struct vt_env e;
    setup(&e, no_args, NULL);
    struct ws good;
    uint32_t seq = open_streaming(&e, &good);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct ws b;
        CHECK_EQ(ws_open(&b, e.port, "/ws/0", NULL, 0), 0);
        int r = bad[i].raw ? ws_send_raw(&b, bad[i].data, bad[i].len)
                           : ws_send(&b, bad[i].opcode, bad[i].data, bad[i].len, true, bad[i].mask);
        (void)r; /* the gateway may close before taking it all */
        if (!ws_wait_closed(&b, WAIT_MS)) {
            FAIL("the gateway kept a browser that sent %s", bad[i].name);
        }
        ws_close(&b);
        /* The good browser never noticed. */
        expect_contiguous(&good, &seq, 3);
    }
    /* A message fragmented into many small frames is limited as a whole. */
    struct ws f;
    CHECK_EQ(ws_open(&f, e.port, "/ws/0", NULL, 0), 0);
    CHECK_EQ(ws_send(&f, WS_OP_TEXT, "pingpingpingping", 16, false, true), 0);
    for (int i = 0; i < 8; i++) {
        ws_send(&f, WS_OP_CONT, "pingpingpingping", 16, false, true);
    }
    CHECK(ws_wait_closed(&f, WAIT_MS));
    CHECK(f.close_code == 1009 || f.close_code == 0);
    ws_close(&f);
    expect_contiguous(&good, &seq, 3);
    ws_close(&good);
    vt_teardown(&e);
}

TEST(bad_handshakes_refused)
{
    struct vt_env e;
    const char *const view_args[] = {"--max-browsers", "2", NULL};
    setup(&e, no_args, view_args);
    struct ws w;
    CHECK(ws_open(&w, e.port, "/ws/7", NULL, 0) != 0);
    CHECK(ws_open(&w, e.port, "/ws/00", NULL, 0) != 0);
    CHECK(ws_open(&w, e.port, "/scanout/0", NULL, 0) != 0);
    CHECK(ws_open(&w, e.port, "/ws/0", "http://evil.example", 0) != 0);
    char origin[64];
    snprintf(origin, sizeof(origin), "http://127.0.0.1:%d", e.port);
    struct ws a, b;
    CHECK_EQ(ws_open(&a, e.port, "/ws/0", origin, 0), 0);
    CHECK_EQ(ws_open(&b, e.port, "/ws/0", NULL, 0), 0);
    /* The cap: a third browser is refused, the two keep streaming. */
    CHECK(ws_open(&w, e.port, "/ws/0", NULL, 0) != 0);
    struct vt_msg m;
    CHECK_EQ(vt_recv_frame(&a, WAIT_MS, &m), 1);
    CHECK_EQ(vt_recv_frame(&b, WAIT_MS, &m), 1);
    ws_close(&a);
    /* A slot is free again once a browser left. */
    int64_t deadline = vt_now_ms() + WAIT_MS;
    int r;
    while ((r = ws_open(&w, e.port, "/ws/0", NULL, 0)) != 0 && vt_now_ms() < deadline) {
        usleep(20000);
    }
    CHECK_EQ(r, 0);
    ws_close(&w);
    ws_close(&b);
    vt_teardown(&e);
}

/* Receives n frames and checks the gateway's promise to every browser:
 * the sequence only jumps onto a keyframe. Returns the number of jumps. */
static int expect_valid(struct ws *w, uint32_t *seq, int n)
{
    struct vt_msg m;
    int gaps = 0;
    for (int i = 0; i < n; i++) {
        if (vt_recv_frame(w, WAIT_MS, &m) != 1) {
            FAIL("frame %d of %d did not arrive", i, n);
        }
        if (m.h.seq != *seq + 1) {
            gaps++;
            if (!(m.h.flags & HXFR_VIEW_FLAG_KEYFRAME)) {
                FAIL("sequence jumped from %u to %u onto a P-frame", *seq, m.h.seq);
            }
        }
        *seq = m.h.seq;
    }
    return gaps;
}

TEST(slow_browser_drops_only_its_frames)
{
    /* Large access units (filler data) fill a stalled browser's socket and
     * queue quickly: 120 frames of 150 kB are far more than the socket
     * buffers and a 12-frame queue hold. */
    const char *const host_args[] = {"--fps", "40", "--pad", "150000", NULL};
    const char *const view_args[] = {"--queue-frames", "12", NULL};
    struct vt_env e;
    setup(&e, host_args, view_args);
    struct ws fast, slow;
    uint32_t fseq = open_streaming(&e, &fast);
    CHECK_EQ(ws_open(&slow, e.port, "/ws/0", NULL, 4096), 0);
    int before = vt_log_count(&e, "KEYFRAME_REQ");
    /* The reading browser keeps getting frames meanwhile. It is expected
     * to see no gap at all; on a machine too loaded for it to keep up it
     * may lose frames of its own, but only ever up to a keyframe. */
    int fast_gaps = expect_valid(&fast, &fseq, 120);
    if (fast_gaps) {
        fprintf(stderr, "# the reading browser fell behind %d times (loaded machine?)\n",
                fast_gaps);
    }
    /* Now the stalled browser reads: its frames continue, at some point
     * jump (dropped) and the first frame after the jump is a keyframe. */
    struct vt_msg m;
    bool gap = false;
    int got = 0;
    uint32_t sseq = 0;
    bool have = false;
    while (!gap) {
        CHECK_EQ(vt_recv_frame(&slow, WAIT_MS, &m), 1);
        got++;
        if (have && m.h.seq != sseq + 1) {
            gap = true;
            CHECK(m.h.flags & HXFR_VIEW_FLAG_KEYFRAME);
        }
        if (!have) {
            CHECK(m.h.flags & HXFR_VIEW_FLAG_KEYFRAME);
        }
        have = true;
        sseq = m.h.seq;
        CHECK(got < 400);
        /* Keep the reading browser drained as well. */
        struct vt_msg fm;
        while (vt_recv(&fast, 0, &fm) == 1) {
        }
    }
    /* The gateway asked the host for that keyframe. */
    CHECK(vt_log_wait(&e, "KEYFRAME_REQ", before + 1, WAIT_MS));
    ws_close(&fast);
    ws_close(&slow);
    vt_teardown(&e);
}

TEST(slow_browser_delay_stays_bounded)
{
    /* A browser that reads slowly never falls further behind than its
     * queue plus what the sockets hold: counted in frames, between the
     * newest frame a reading browser got and the one the slow browser
     * gets at that moment. 100 kB frames: the socket bound
     * (VIEW_NOTSENT_LOWAT, 128 KiB unsent, plus a 16 KiB receive buffer
     * and what is in flight) is a few frames. Without it the kernel would
     * buffer megabytes (dozens of frames). */
    const char *const host_args[] = {"--fps", "30", "--pad", "100000", NULL};
    const char *const view_args[] = {"--queue-frames", "8", NULL};
    const int queue = 8, socket_frames = 5, bound = queue + 1 + socket_frames + 2;
    struct vt_env e;
    setup(&e, host_args, view_args);
    struct ws fast, slow;
    uint32_t fseq = open_streaming(&e, &fast);
    CHECK_EQ(ws_open(&slow, e.port, "/ws/0", NULL, 16384), 0);
    int worst = 0, got = 0, gaps = 0;
    uint32_t sseq = 0;
    bool have = false;
    for (int i = 0; i < 150; i++) {
        struct vt_msg m;
        /* The reading browser takes everything there is. */
        if (vt_recv_frame(&fast, WAIT_MS, &m) != 1) {
            FAIL("the reading browser got no frame");
        }
        fseq = m.h.seq;
        while (vt_recv(&fast, 0, &m) == 1) {
            if (m.opcode == WS_OP_BINARY) {
                fseq = m.h.seq;
            }
        }
        /* The slow one takes one frame for every three. */
        if (i % 3 == 0 && vt_recv_frame(&slow, 5, &m) == 1) {
            if (have && m.h.seq != sseq + 1) {
                gaps++;
                CHECK(m.h.flags & HXFR_VIEW_FLAG_KEYFRAME);
            }
            have = true;
            sseq = m.h.seq;
            got++;
            int lag = (int)(fseq - sseq);
            worst = lag > worst ? lag : worst;
            if (i > 30 && lag > bound) {
                FAIL("the slow browser is %d frames behind (bound %d)", lag, bound);
            }
        }
    }
    fprintf(stderr, "# slow browser: %d frames, %d jumps to a keyframe, at most %d behind\n", got,
            gaps, worst);
    /* It did get frames, and lost some (to a keyframe) on the way. */
    CHECK(got >= 3);
    CHECK(gaps > 0);
    ws_close(&fast);
    ws_close(&slow);
    vt_teardown(&e);
}

TEST(upstream_restart_reconnects)
{
    struct vt_env e;
    setup(&e, no_args, NULL);
    struct ws w;
    uint32_t seq = open_streaming(&e, &w);
    expect_contiguous(&w, &seq, 3);
    CHECK_EQ(vt_stop(&e.host), 0);
    char text[HXFR_VIEW_TEXT_MAX];
    CHECK(vt_wait_status(&w, "disconnected", WAIT_MS, text, sizeof(text)));
    CHECK(strstr(text, "\"retry_ms\":") != NULL);
    /* The host comes back: the gateway resubscribes by itself. */
    CHECK_EQ(vt_start_host(&e, NULL), 0);
    CHECK(vt_wait_status(&w, "streaming", 15000, NULL, 0));
    struct vt_msg m;
    CHECK_EQ(vt_recv_frame(&w, WAIT_MS, &m), 1);
    CHECK(m.h.flags & HXFR_VIEW_FLAG_KEYFRAME);
    CHECK(m.h.flags & HXFR_VIEW_FLAG_NEW_STREAM);
    ws_close(&w);
    vt_teardown(&e);
}

TEST(no_upstream_reported)
{
    struct vt_env e;
    setup(&e, NULL, NULL);
    struct ws w;
    CHECK_EQ(ws_open(&w, e.port, "/ws/0", NULL, 0), 0);
    char text[HXFR_VIEW_TEXT_MAX];
    CHECK(vt_wait_status(&w, "disconnected", WAIT_MS, text, sizeof(text)));
    CHECK(strstr(text, "cannot connect") != NULL);
    /* Starting the host later is enough. */
    CHECK_EQ(vt_start_host(&e, NULL), 0);
    struct vt_msg m;
    CHECK_EQ(vt_recv_frame(&w, 15000, &m), 1);
    CHECK(m.h.flags & HXFR_VIEW_FLAG_KEYFRAME);
    ws_close(&w);
    vt_teardown(&e);
}

TEST(upstream_refuses_subscription)
{
    const char *const host_args[] = {"--mode", "refuse", NULL};
    struct vt_env e;
    setup(&e, host_args, NULL);
    struct ws w;
    CHECK_EQ(ws_open(&w, e.port, "/ws/0", NULL, 0), 0);
    char text[HXFR_VIEW_TEXT_MAX];
    CHECK(vt_wait_status(&w, "unavailable", WAIT_MS, text, sizeof(text)));
    CHECK(strstr(text, "not available") != NULL);
    /* It keeps trying. */
    CHECK(vt_log_wait(&e, "SUBSCRIBE", 2, WAIT_MS));
    ws_close(&w);
    vt_teardown(&e);
}

TEST(upstream_error_text_escaped)
{
    const char *const host_args[] = {"--mode", "error", NULL};
    struct vt_env e;
    setup(&e, host_args, NULL);
    struct ws w;
    CHECK_EQ(ws_open(&w, e.port, "/ws/0", NULL, 0), 0);
    char text[HXFR_VIEW_TEXT_MAX];
    CHECK(vt_wait_status(&w, "unavailable", WAIT_MS, text, sizeof(text)));
    CHECK(strstr(text, "NO_SCANOUT") != NULL);
    CHECK(strstr(text, "\\\"here\\\"") != NULL);
    ws_close(&w);
    vt_teardown(&e);
}

/* A host that breaks the protocol: the gateway drops the connection, says
 * so, retries, and keeps serving. */
static void hostile_upstream(const char *mode, const char *expect)
{
    const char *const host_args[] = {"--mode", mode, NULL};
    struct vt_env e;
    setup(&e, host_args, NULL);
    struct ws w;
    CHECK_EQ(ws_open(&w, e.port, "/ws/0", NULL, 0), 0);
    char text[HXFR_VIEW_TEXT_MAX];
    CHECK(vt_wait_status(&w, "disconnected", WAIT_MS, text, sizeof(text)));
    if (!strstr(text, expect)) {
        FAIL("status '%s' lacks '%s'", text, expect);
    }
    CHECK(vt_log_wait(&e, "SUBSCRIBE", 2, WAIT_MS));
    CHECK_EQ(ws_http_get(e.port, "/scanout/0", NULL, NULL, 0, NULL, 0), 200);
    ws_close(&w);
    CHECK_EQ(vt_stop(&e.view), 0);
    vt_teardown(&e);
}

TEST(upstream_garbage)
{
    hostile_upstream("garbage", "protocol error");
}

TEST(upstream_huge_payload)
{
    hostile_upstream("huge", "protocol error");
}

TEST(upstream_bad_units)
{
    hostile_upstream("bad-units", "malformed");
}

static int count_fds(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    int n = 0;
    if (!d) {
        return -1;
    }
    while (readdir(d)) {
        n++;
    }
    closedir(d);
    return n;
}

TEST(browsers_come_and_go_without_leaks)
{
    struct vt_env e;
    setup(&e, no_args, NULL);
    struct ws first;
    uint32_t seq = open_streaming(&e, &first);
    int base = count_fds(e.view);
    CHECK(base > 0);
    for (int round = 0; round < 5; round++) {
        struct ws w[20];
        for (int i = 0; i < 20; i++) {
            CHECK_EQ(ws_open(&w[i], e.port, "/ws/0", NULL, 0), 0);
        }
        struct vt_msg m;
        CHECK_EQ(vt_recv_frame(&w[round], WAIT_MS, &m), 1);
        for (int i = 0; i < 20; i++) {
            ws_close(&w[i]);
        }
        /* Plain HTTP clients too, some leaving mid-request. */
        for (int i = 0; i < 10; i++) {
            int fd = ws_tcp_connect(e.port, 0);
            CHECK(fd >= 0);
            if (i % 2) {
                CHECK(write(fd, "GET / HTTP/1.1\r\n", 16) == 16);
            }
            close(fd);
        }
    }
    /* The first browser streamed all along. */
    expect_contiguous(&first, &seq, 10);
    /* Every descriptor comes back (closes are asynchronous in lws). */
    int64_t deadline = vt_now_ms() + WAIT_MS;
    while (count_fds(e.view) != base && vt_now_ms() < deadline) {
        usleep(20000);
    }
    CHECK_EQ(count_fds(e.view), base);
    ws_close(&first);
    CHECK_EQ(vt_stop(&e.view), 0);
    vt_teardown(&e);
}

TEST(upstream_silence_detected)
{
    /* A host that accepts the subscription and then says nothing, not even
     * PONG: the gateway PINGs it, gives up after --upstream-timeout and
     * reconnects. */
    const char *const host_args[] = {"--mode", "silent", NULL};
    const char *const view_args[] = {"--upstream-timeout", "1000", NULL};
    struct vt_env e;
    setup(&e, host_args, view_args);
    struct ws w;
    CHECK_EQ(ws_open(&w, e.port, "/ws/0", NULL, 0), 0);
    char text[HXFR_VIEW_TEXT_MAX];
    CHECK(vt_wait_status(&w, "disconnected", WAIT_MS, text, sizeof(text)));
    CHECK(strstr(text, "silent") != NULL);
    /* The double logs the PING when it reads it, which a loaded machine may
     * delay past the gateway's verdict. */
    CHECK(vt_log_wait(&e, "PING", 1, WAIT_MS));
    CHECK(vt_log_wait(&e, "SUBSCRIBE", 2, WAIT_MS));
    ws_close(&w);
    vt_teardown(&e);
}

TEST(upstream_foreign_sessions_ignored)
{
    /* FRAME_RESPONSEs for another session_id on the connection are not
     * this scanout's stream: they are skipped, never forwarded. */
    const char *const host_args[] = {"--mode", "foreign", NULL};
    struct vt_env e;
    setup(&e, host_args, NULL);
    struct ws w;
    uint32_t seq = open_streaming(&e, &w);
    struct vt_msg m;
    for (int i = 0; i < 20; i++) {
        CHECK_EQ(vt_recv_frame(&w, WAIT_MS, &m), 1);
        CHECK_EQ(m.h.seq, seq + 1);
        CHECK_EQ(m.h.scanout_id, 0);
        CHECK(m.data_len > 8);
        seq = m.h.seq;
    }
    ws_close(&w);
    vt_teardown(&e);
}

TEST(units_without_start_codes_become_annexb)
{
    const char *const host_args[] = {"--mode", "bare-nals", NULL};
    struct vt_env e;
    setup(&e, host_args, NULL);
    struct ws w;
    /* open_streaming checks for SPS, PPS and IDR NAL units (start codes). */
    uint32_t seq = open_streaming(&e, &w);
    struct vt_msg m;
    for (int i = 0; i < 10; i++) {
        CHECK_EQ(vt_recv_frame(&w, WAIT_MS, &m), 1);
        CHECK_EQ(m.h.seq, seq + 1);
        CHECK_MEM(m.data, "\x00\x00\x00\x01", 4);
        seq = m.h.seq;
    }
    ws_close(&w);
    vt_teardown(&e);
}
