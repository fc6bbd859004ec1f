/* Integration tests against the real hxfrd: every message type, frames in
 * every input format decoded and compared with the pattern, keyframes,
 * size changes, several clients and sessions, pipelining, TCP, a client
 * vanishing, statistics, encoder failure and clean shutdown. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <linux/vm_sockets.h>
#include <sys/wait.h>
#include <unistd.h>

#include "avcheck.h"
#include "harness.h"
#include "daemon.h"
#include "daemon_check.h"
#include "hostutil.h"
#include "pattern.h"

TEST(ping_pong_unix)
{
    struct hxfr_test_daemon d;
    daemon_start_ok(&d, HXFR_TEST_DAEMON_UNIX, NULL);
    int fd = daemon_connect_ok(&d, false);
    struct hxfr_msg m;
    CHECK_EQ(send_simple(fd, HXFR_MSG_PING, 77), 0);
    CHECK_EQ(expect_msg(fd, HXFR_MSG_PONG, &m, NULL, NULL), 0);
    CHECK_EQ(m.hdr.session_id, 77);
    close(fd);
    daemon_stop_clean(&d, NULL);
}

TEST(ping_pong_tcp_and_log_lines)
{
    struct hxfr_test_daemon d;
    daemon_start_ok(&d, HXFR_TEST_DAEMON_UNIX | HXFR_TEST_DAEMON_TCP, NULL);
    CHECK(strncmp(d.tcp_uri, "tcp:127.0.0.1:", 14) == 0);
    CHECK(d.tcp_port != 0);
    int fd = daemon_connect_ok(&d, true);
    CHECK_EQ(ping_ok(fd), 0);
    struct test_frame f;
    CHECK_EQ(test_frame_make(&f, HXFR_FORMAT_XRGB8888, 64, 64, 0, 0), 0);
    struct hxfr_msg m;
    uint8_t *au = NULL;
    size_t au_len = 0;
    CHECK_EQ(roundtrip_frame(fd, 1, &f, 1000, false, &m, &au, &au_len), 0);
    CHECK(m.u.frame_response.is_keyframe);
    CHECK(hxfr_avcheck_au_idr_with_params(au, au_len));
    free(au);
    test_frame_free(&f);
    close(fd);
    daemon_stop_clean(&d, NULL);
}

TEST(log_has_listeners_connects_and_disconnects)
{
    struct hxfr_test_daemon d;
    daemon_start_ok(&d, HXFR_TEST_DAEMON_UNIX | HXFR_TEST_DAEMON_TCP, NULL);
    int fd = daemon_connect_ok(&d, false);
    CHECK_EQ(ping_ok(fd), 0);
    close(fd);
    CHECK_EQ(hxfr_test_daemon_stop(&d), 0);
    char want[300];
    snprintf(want, sizeof(want), "] listening on %s", d.tcp_uri);
    CHECK_EQ(hxfr_test_daemon_log_count(&d, want), 1);
    snprintf(want, sizeof(want), "] listening on %s", d.unix_uri);
    CHECK_EQ(hxfr_test_daemon_log_count(&d, want), 1);
    CHECK_EQ(hxfr_test_daemon_log_count(&d, "client 1 connected"), 1);
    CHECK_EQ(hxfr_test_daemon_log_count(&d, "client 1 disconnected"), 1);
    CHECK_EQ(hxfr_test_daemon_unexpected_errors(&d, NULL), 0);
    hxfr_test_daemon_free(&d);
}

TEST(hello_caps_and_limits)
{
    struct hxfr_test_daemon d;
    const char *args[] = {"--max-size", "1920x1080", NULL};
    daemon_start_ok(&d, HXFR_TEST_DAEMON_UNIX, args);
    int fd = daemon_connect_ok(&d, false);
    struct hxfr_msg m;
    memset(&m, 0, sizeof(m));
    m.hdr.type = HXFR_MSG_HELLO;
    m.u.hello.version = 7;
    m.u.hello.caps = 0xFFFFFFFFu;
    CHECK_EQ(hxfr_test_send_msg(fd, &m, NULL, 0), 0);
    CHECK_EQ(expect_msg(fd, HXFR_MSG_HELLO_RESP, &m, NULL, NULL), 0);
    CHECK_EQ(m.u.hello.version, 1);
    /* Only what the daemon really does: the GOP extension, scanouts, memfd
     * rings on this UNIX socket and slot releases (no --shm region
     * configured). */
    CHECK_EQ(m.u.hello.caps,
             HXFR_CAP_CONFIG_GOP | HXFR_CAP_SCANOUT | HXFR_CAP_SHM_FD | HXFR_CAP_SLOT_RELEASE);
    CHECK_EQ(m.u.hello.max_width, 1920);
    CHECK_EQ(m.u.hello.max_height, 1080);
    memset(&m, 0, sizeof(m));
    m.hdr.type = HXFR_MSG_HELLO;
    m.u.hello.version = 1;
    m.u.hello.caps = HXFR_CAP_SHM_REGION;
    CHECK_EQ(hxfr_test_send_msg(fd, &m, NULL, 0), 0);
    CHECK_EQ(expect_msg(fd, HXFR_MSG_HELLO_RESP, &m, NULL, NULL), 0);
    CHECK_EQ(m.u.hello.caps, 0);
    close(fd);
    daemon_stop_clean(&d, NULL);
}

TEST(config_req_effective_values)
{
    struct hxfr_test_daemon d;
    daemon_start_ok(&d, HXFR_TEST_DAEMON_UNIX, NULL);
    int fd = daemon_connect_ok(&d, false);
    daemon_hello_ok(fd, HXFR_CAP_CONFIG_GOP);
    struct hxfr_msg m;
    memset(&m, 0, sizeof(m));
    m.hdr.type = HXFR_MSG_CONFIG_REQ;
    m.hdr.session_id = 3;
    m.u.config_req.width = 64;
    m.u.config_req.height = 64;
    m.u.config_req.bitrate = 2000000;
    m.u.config_req.framerate_num = 30;
    m.u.config_req.framerate_den = 1;
    m.u.config_req.profile = 66;
    m.u.config_req.level = 31;
    m.u.config_req.realtime = 1;
    m.u.config_req.gop = 10;
    CHECK_EQ(hxfr_test_send_msg(fd, &m, NULL, 0), 0);
    CHECK_EQ(expect_msg(fd, HXFR_MSG_CONFIG_RESP, &m, NULL, NULL), 0);
    CHECK_EQ(m.hdr.session_id, 3);
    CHECK_EQ(m.u.config_resp.width, 64);
    CHECK_EQ(m.u.config_resp.bitrate, 2000000);
    CHECK_EQ(m.u.config_resp.framerate_num, 30);
    CHECK_EQ(m.u.config_resp.framerate_den, 1);
    CHECK_EQ(m.u.config_resp.profile, 66);
    CHECK_EQ(m.u.config_resp.level, 31);
    CHECK_EQ(m.u.config_resp.realtime, 1);
    CHECK_EQ(m.u.config_resp.gop, 10);
    CHECK(strcmp(m.u.config_resp.encoder, "libx264") == 0);

    /* The gop from CONFIG_REQ is applied: frames 0 and 10 are IDRs. */
    struct test_frame f;
    CHECK_EQ(test_frame_make(&f, HXFR_FORMAT_ARGB8888, 64, 64, 0, 0), 0);
    for (int i = 0; i < 12; i++) {
        uint8_t *au = NULL;
        size_t len = 0;
        CHECK_EQ(roundtrip_frame(fd, 3, &f, i, false, &m, &au, &len), 0);
        CHECK_EQ(m.u.frame_response.is_keyframe, (i % 10) == 0);
        free(au);
    }
    test_frame_free(&f);

    /* Zeros mean server defaults: the response says what they are. */
    memset(&m, 0, sizeof(m));
    m.hdr.type = HXFR_MSG_CONFIG_REQ;
    m.hdr.session_id = 4;
    CHECK_EQ(hxfr_test_send_msg(fd, &m, NULL, 0), 0);
    CHECK_EQ(expect_msg(fd, HXFR_MSG_CONFIG_RESP, &m, NULL, NULL), 0);
    CHECK(m.u.config_resp.bitrate > 0);
    CHECK(m.u.config_resp.framerate_num > 0 && m.u.config_resp.framerate_den > 0);
    CHECK_EQ(m.u.config_resp.gop, 60);
    close(fd);
    daemon_stop_clean(&d, NULL);
}

/* 60 frames of the pattern at 1280x720 in one format, pipelined 4 deep;
 * the concatenated responses decode to 60 frames with PSNR >= 35 dB. */
static void run_format(uint32_t format, uint32_t pad)
{
    struct hxfr_test_daemon d;
    daemon_start_ok(&d, HXFR_TEST_DAEMON_UNIX, NULL);
    int fd = daemon_connect_ok(&d, false);
    const uint32_t w = 1280, h = 720;
    const int n = 60, depth = 4;
    struct test_frame frames[60];
    for (int i = 0; i < n; i++) {
        CHECK_EQ(test_frame_make(&frames[i], format, w, h, pad, (uint64_t)i), 0);
    }
    struct hxfr_avcheck *av = hxfr_avcheck_new(1);
    CHECK(av != NULL);
    int sent = 0;
    double worst = 1000.0;
    for (int got = 0; got < n; got++) {
        while (sent < n && sent < got + depth) {
            CHECK_EQ(send_frame(fd, 9, &frames[sent], (int64_t)sent * 1000, false), 0);
            sent++;
        }
        struct hxfr_msg m;
        uint8_t *au = NULL;
        size_t len = 0;
        CHECK_EQ(expect_msg(fd, HXFR_MSG_FRAME_RESPONSE, &m, &au, &len), 0);
        CHECK_EQ(m.hdr.session_id, 9);
        CHECK_EQ(m.u.frame_response.pts, (int64_t)got * 1000);
        if (got == 0) {
            CHECK(m.u.frame_response.is_keyframe);
            CHECK(hxfr_avcheck_au_idr_with_params(au, len));
        }
        CHECK_EQ(hxfr_avcheck_decode_au(av, au, len), 1);
        free(au);
        const struct hxfr_avcheck_frame *df = hxfr_avcheck_last(av);
        CHECK(df != NULL);
        CHECK_EQ(df->width, w);
        CHECK_EQ(df->height, h);
        double y = 0, all = 0;
        CHECK_EQ(
            hxfr_avcheck_psnr(df, format, w, h,
                              (const uint8_t *const[3]){frames[got].data + frames[got].g.offset[0],
                                                        frames[got].data + frames[got].g.offset[1],
                                                        frames[got].data + frames[got].g.offset[2]},
                              frames[got].g.stride, &y, &all),
            0);
        if (all < worst) {
            worst = all;
        }
    }
    hxfr_avcheck_finish(av);
    CHECK_EQ(hxfr_avcheck_frame_count(av), 60);
    CHECK_EQ(hxfr_avcheck_idr_missing_params(av), 0);
    fprintf(stderr, "# %s: worst PSNR %.2f dB\n", hxfr_format_name(format), worst);
    CHECK(worst >= 35.0);
    hxfr_avcheck_destroy(av);
    for (int i = 0; i < n; i++) {
        test_frame_free(&frames[i]);
    }
    close(fd);
    daemon_stop_clean(&d, NULL);
}

TEST_T(format_bgra_720p, 120)
{
    run_format(HXFR_FORMAT_ARGB8888, 0);
}
TEST_T(format_bgrx_720p_padded_stride, 120)
{
    run_format(HXFR_FORMAT_XRGB8888, 64);
}
TEST_T(format_rgba_720p, 120)
{
    run_format(HXFR_FORMAT_ABGR8888, 0);
}
TEST_T(format_rgbx_720p, 120)
{
    run_format(HXFR_FORMAT_XBGR8888, 0);
}
TEST_T(format_nv12_720p_padded_stride, 120)
{
    run_format(HXFR_FORMAT_NV12, 32);
}
TEST_T(format_i420_720p, 120)
{
    run_format(HXFR_FORMAT_I420, 0);
}

TEST(keyframe_req_and_force_keyframe)
{
    struct hxfr_test_daemon d;
    daemon_start_ok(&d, HXFR_TEST_DAEMON_UNIX, NULL);
    int fd = daemon_connect_ok(&d, false);
    struct test_frame f;
    CHECK_EQ(test_frame_make(&f, HXFR_FORMAT_ARGB8888, 64, 64, 0, 0), 0);
    struct hxfr_avcheck *av = hxfr_avcheck_new(0);
    for (int i = 0; i < 20; i++) {
        if (i == 7) {
            CHECK_EQ(send_simple(fd, HXFR_MSG_KEYFRAME_REQ, 5), 0);
        }
        struct hxfr_msg m;
        uint8_t *au = NULL;
        size_t len = 0;
        CHECK_EQ(roundtrip_frame(fd, 5, &f, i, i == 13, &m, &au, &len), 0);
        bool want = i == 0 || i == 7 || i == 13;
        CHECK_EQ(m.u.frame_response.is_keyframe, want);
        CHECK_EQ(hxfr_avcheck_au_idr_with_params(au, len), want);
        CHECK_EQ(hxfr_avcheck_decode_au(av, au, len), 1);
        free(au);
    }
    CHECK_EQ(hxfr_avcheck_idr_count(av), 3);
    CHECK_EQ(hxfr_avcheck_idr_missing_params(av), 0);
    hxfr_avcheck_destroy(av);
    /* A KEYFRAME_REQ for a session that does not exist is harmless. */
    CHECK_EQ(send_simple(fd, HXFR_MSG_KEYFRAME_REQ, 999), 0);
    CHECK_EQ(ping_ok(fd), 0);
    test_frame_free(&f);
    close(fd);
    daemon_stop_clean(&d, NULL);
}

TEST(size_and_format_change_mid_stream)
{
    struct hxfr_test_daemon d;
    daemon_start_ok(&d, HXFR_TEST_DAEMON_UNIX, NULL);
    int fd = daemon_connect_ok(&d, false);
    struct hxfr_avcheck *av = hxfr_avcheck_new(1);
    struct {
        uint32_t format, w, h;
    } steps[] = {{HXFR_FORMAT_ARGB8888, 64, 64},
                 {HXFR_FORMAT_ARGB8888, 96, 80},
                 {HXFR_FORMAT_NV12, 96, 80},
                 {HXFR_FORMAT_I420, 48, 32}};
    int i = 0;
    for (size_t s = 0; s < sizeof(steps) / sizeof(steps[0]); s++) {
        for (int k = 0; k < 4; k++, i++) {
            struct test_frame f;
            CHECK_EQ(test_frame_make(&f, steps[s].format, steps[s].w, steps[s].h, 0, (uint64_t)i),
                     0);
            struct hxfr_msg m;
            uint8_t *au = NULL;
            size_t len = 0;
            CHECK_EQ(roundtrip_frame(fd, 2, &f, i, false, &m, &au, &len), 0);
            /* Every change starts a new encoder with an IDR. */
            CHECK_EQ(m.u.frame_response.is_keyframe, k == 0);
            CHECK_EQ(hxfr_avcheck_decode_au(av, au, len), 1);
            const struct hxfr_avcheck_frame *df = hxfr_avcheck_last(av);
            CHECK_EQ(df->width, steps[s].w);
            CHECK_EQ(df->height, steps[s].h);
            double all = 0;
            CHECK_EQ(hxfr_avcheck_psnr_pattern(df, HXFR_PATTERN_DESKTOP, steps[s].format,
                                               (uint64_t)i, NULL, &all),
                     0);
            CHECK(all >= 30.0);
            free(au);
            test_frame_free(&f);
        }
    }
    CHECK_EQ(hxfr_avcheck_frame_count(av), 16);
    hxfr_avcheck_destroy(av);
    close(fd);
    daemon_stop_clean(&d, NULL);
}

TEST(two_clients_and_two_sessions)
{
    struct hxfr_test_daemon d;
    daemon_start_ok(&d, HXFR_TEST_DAEMON_UNIX, NULL);
    int a = daemon_connect_ok(&d, false);
    int b = daemon_connect_ok(&d, false);
    struct test_frame f1, f2;
    CHECK_EQ(test_frame_make(&f1, HXFR_FORMAT_ARGB8888, 64, 64, 0, 0), 0);
    CHECK_EQ(test_frame_make(&f2, HXFR_FORMAT_NV12, 80, 48, 0, 0), 0);
    struct hxfr_avcheck *av[3] = {hxfr_avcheck_new(0), hxfr_avcheck_new(0), hxfr_avcheck_new(0)};
    for (int i = 0; i < 10; i++) {
        /* Both sessions of client a in flight at once, and client b. */
        CHECK_EQ(send_frame(a, 1, &f1, i, false), 0);
        CHECK_EQ(send_frame(a, 2, &f2, 100 + i, false), 0);
        CHECK_EQ(send_frame(b, 1, &f2, 200 + i, false), 0);
        bool seen1 = false, seen2 = false;
        for (int k = 0; k < 2; k++) {
            struct hxfr_msg m;
            uint8_t *au = NULL;
            size_t len = 0;
            CHECK_EQ(expect_msg(a, HXFR_MSG_FRAME_RESPONSE, &m, &au, &len), 0);
            if (m.hdr.session_id == 1) {
                CHECK_EQ(m.u.frame_response.pts, i);
                CHECK_EQ(hxfr_avcheck_decode_au(av[0], au, len), 1);
                seen1 = true;
            } else {
                CHECK_EQ(m.hdr.session_id, 2);
                CHECK_EQ(m.u.frame_response.pts, 100 + i);
                CHECK_EQ(hxfr_avcheck_decode_au(av[1], au, len), 1);
                seen2 = true;
            }
            free(au);
        }
        CHECK(seen1 && seen2);
        struct hxfr_msg m;
        uint8_t *au = NULL;
        size_t len = 0;
        CHECK_EQ(expect_msg(b, HXFR_MSG_FRAME_RESPONSE, &m, &au, &len), 0);
        CHECK_EQ(m.u.frame_response.pts, 200 + i);
        CHECK_EQ(hxfr_avcheck_decode_au(av[2], au, len), 1);
        free(au);
    }
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(hxfr_avcheck_frame_count(av[i]), 10);
        hxfr_avcheck_destroy(av[i]);
    }
    test_frame_free(&f1);
    test_frame_free(&f2);
    close(a);
    close(b);
    daemon_stop_clean(&d, NULL);
}

TEST(pipelining_8_before_reading)
{
    struct hxfr_test_daemon d;
    const char *args[] = {"--workers", "2", NULL};
    daemon_start_ok(&d, HXFR_TEST_DAEMON_UNIX, args);
    int fd = daemon_connect_ok(&d, false);
    struct test_frame f[8];
    for (int i = 0; i < 8; i++) {
        CHECK_EQ(test_frame_make(&f[i], HXFR_FORMAT_I420, 64, 64, 0, (uint64_t)i), 0);
        CHECK_EQ(send_frame(fd, 1, &f[i], 10 + i, false), 0);
    }
    CHECK_EQ(send_simple(fd, HXFR_MSG_PING, 1), 0);
    struct hxfr_avcheck *av = hxfr_avcheck_new(0);
    int pongs = 0;
    for (int i = 0; i < 8;) {
        /* The PONG is not ordered against frame responses: it comes as
         * soon as the window let the daemon read the PING. */
        struct hxfr_msg m;
        uint8_t *body = NULL;
        uint32_t blen = 0;
        CHECK_EQ(hxfr_test_recv_msg(fd, RECV_TIMEOUT_MS, &m, &body, &blen), 1);
        if (m.hdr.type == HXFR_MSG_PONG) {
            pongs++;
            continue;
        }
        CHECK_EQ(m.hdr.type, HXFR_MSG_FRAME_RESPONSE);
        CHECK_EQ(m.u.frame_response.pts, 10 + i);
        CHECK_EQ(hxfr_units_validate(body, blen, m.u.frame_response.nal_count), 0);
        uint8_t *au = malloc(blen);
        size_t len = 0, pos = 0;
        const uint8_t *unit;
        uint32_t usize;
        while (hxfr_units_next(body, blen, &pos, &unit, &usize) == 1) {
            memcpy(au + len, unit, usize);
            len += usize;
        }
        CHECK_EQ(hxfr_avcheck_decode_au(av, au, len), 1);
        free(au);
        free(body);
        test_frame_free(&f[i]);
        i++;
    }
    if (pongs == 0) {
        CHECK_EQ(expect_msg(fd, HXFR_MSG_PONG, NULL, NULL, NULL), 0);
    }
    CHECK_EQ(hxfr_avcheck_frame_count(av), 8);
    hxfr_avcheck_destroy(av);
    close(fd);
    daemon_stop_clean(&d, NULL);
}

TEST(client_vanishes_mid_frame_and_mid_encode)
{
    struct hxfr_test_daemon d;
    daemon_start_ok(&d, HXFR_TEST_DAEMON_UNIX, NULL);
    struct test_frame f;
    CHECK_EQ(test_frame_make(&f, HXFR_FORMAT_ARGB8888, 640, 480, 0, 0), 0);

    /* Half a frame body, then gone. */
    int fd = daemon_connect_ok(&d, false);
    struct hxfr_msg m;
    memset(&m, 0, sizeof(m));
    m.hdr.type = HXFR_MSG_FRAME_REQUEST;
    m.hdr.flags = HXFR_FLAG_PIXEL_DATA;
    m.u.frame_request.width = 640;
    m.u.frame_request.height = 480;
    m.u.frame_request.format = HXFR_FORMAT_ARGB8888;
    m.u.frame_request.stride = 640 * 4;
    uint8_t hdr[HXFR_HEADER_SIZE + HXFR_FRAME_REQUEST_SIZE];
    CHECK_EQ(hxfr_msg_encode(&m, (uint32_t)f.g.size, hdr, sizeof(hdr)), (int)sizeof(hdr));
    CHECK_EQ(hxfr_test_send_all(fd, hdr, sizeof(hdr)), 0);
    CHECK_EQ(hxfr_test_send_all(fd, f.data, (size_t)f.g.size / 2), 0);
    close(fd);

    /* Several whole frames (encoding while we leave), then gone. */
    for (int round = 0; round < 3; round++) {
        fd = daemon_connect_ok(&d, false);
        for (int i = 0; i < 4; i++) {
            CHECK_EQ(send_frame(fd, (uint16_t)i, &f, i, false), 0);
        }
        close(fd);
    }

    /* Everyone else is still served. */
    fd = daemon_connect_ok(&d, false);
    uint8_t *au = NULL;
    size_t len = 0;
    CHECK_EQ(roundtrip_frame(fd, 1, &f, 5, false, &m, &au, &len), 0);
    free(au);
    close(fd);
    test_frame_free(&f);
    daemon_stop_clean(&d, NULL);
}

TEST(resource_shm_and_scanout_requests_answered)
{
    struct hxfr_test_daemon d;
    daemon_start_ok(&d, HXFR_TEST_DAEMON_UNIX, NULL);
    int fd = daemon_connect_ok(&d, false);
    struct hxfr_msg m;

    /* No pixels, no shm: a resource id the daemon alone cannot resolve. */
    memset(&m, 0, sizeof(m));
    m.hdr.type = HXFR_MSG_FRAME_REQUEST;
    m.u.frame_request.resource_id = 42;
    m.u.frame_request.width = 64;
    m.u.frame_request.height = 64;
    m.u.frame_request.format = HXFR_FORMAT_ARGB8888;
    m.u.frame_request.stride = 256;
    CHECK_EQ(hxfr_test_send_msg(fd, &m, NULL, 0), 0);
    CHECK_EQ(expect_error(fd, HXFR_STATUS_RESOURCE_NOT_FOUND), 0);

    /* A slot on a session without an attached ring. */
    m.hdr.flags = HXFR_FLAG_SHM;
    CHECK_EQ(hxfr_test_send_msg(fd, &m, NULL, 0), 0);
    CHECK_EQ(expect_error(fd, HXFR_STATUS_SHM), 0);

    memset(&m, 0, sizeof(m));
    m.hdr.type = HXFR_MSG_ENABLE_SCANOUT;
    m.u.enable_scanout.scanout_id = 1;
    m.u.enable_scanout.width = 640;
    m.u.enable_scanout.height = 480;
    m.u.enable_scanout.refresh_hz = 60;
    CHECK_EQ(hxfr_test_send_msg(fd, &m, NULL, 0), 0);
    CHECK_EQ(expect_msg(fd, HXFR_MSG_SCANOUT_RESP, &m, NULL, NULL), 0);
    CHECK_EQ(m.u.scanout_resp.success, 1);
    CHECK(strcmp(m.u.scanout_resp.connector, "Virtual-2") == 0); /* scanout N is Virtual-<N+1> */
    /* Scanout 0 is not enabled: refused, the stream goes on (the scanout
     * tests in tests/scanout cover the rest). */
    memset(&m, 0, sizeof(m));
    m.hdr.type = HXFR_MSG_DISABLE_SCANOUT;
    CHECK_EQ(hxfr_test_send_msg(fd, &m, NULL, 0), 0);
    CHECK_EQ(expect_msg(fd, HXFR_MSG_SCANOUT_RESP, &m, NULL, NULL), 0);
    CHECK_EQ(m.u.scanout_resp.success, 0);
    memset(&m, 0, sizeof(m));
    m.hdr.type = HXFR_MSG_SUBSCRIBE;
    CHECK_EQ(hxfr_test_send_msg(fd, &m, NULL, 0), 0);
    CHECK_EQ(expect_msg(fd, HXFR_MSG_SUBSCRIBE_RESP, &m, NULL, NULL), 0);
    CHECK_EQ(m.u.subscribe_resp.success, 0);

    /* Server-to-client types sent by a client: answered, stream goes on. */
    memset(&m, 0, sizeof(m));
    m.hdr.type = HXFR_MSG_PONG;
    CHECK_EQ(hxfr_test_send_msg(fd, &m, NULL, 0), 0);
    CHECK_EQ(expect_error(fd, HXFR_STATUS_INVALID_MSG), 0);
    memset(&m, 0, sizeof(m));
    m.hdr.type = HXFR_MSG_FRAME_RESPONSE;
    m.u.frame_response.nal_count = 1;
    uint8_t unit[12] = {8, 0, 0, 0, 0, 0, 0, 1, 0x65, 1, 2, 3};
    CHECK_EQ(hxfr_test_send_msg(fd, &m, unit, sizeof(unit)), 0);
    CHECK_EQ(expect_error(fd, HXFR_STATUS_INVALID_MSG), 0);
    /* An ERROR from a client is logged, never answered. */
    hxfr_msg_error(&m, 0, HXFR_STATUS_INTERNAL, "client side trouble");
    CHECK_EQ(hxfr_test_send_msg(fd, &m, NULL, 0), 0);
    CHECK_EQ(ping_ok(fd), 0);
    close(fd);
    daemon_stop_clean(&d, NULL);
}

TEST(encoder_failure_is_reported_and_daemon_goes_on)
{
    struct hxfr_test_daemon d;
    const char *args[] = {"--encoder", "no_such_encoder_h264", NULL};
    daemon_start_ok(&d, HXFR_TEST_DAEMON_UNIX, args);
    int fd = daemon_connect_ok(&d, false);
    struct test_frame f;
    CHECK_EQ(test_frame_make(&f, HXFR_FORMAT_ARGB8888, 64, 64, 0, 0), 0);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(send_frame(fd, 1, &f, i, false), 0);
        CHECK_EQ(expect_error(fd, HXFR_STATUS_ENCODE_FAILED), 0);
    }
    CHECK_EQ(ping_ok(fd), 0);
    test_frame_free(&f);
    close(fd);
    const char *allowed[] = {"cannot open encoder", NULL};
    daemon_stop_clean(&d, allowed);
}

TEST(stats_interval_logs_sessions)
{
    struct hxfr_test_daemon d;
    const char *args[] = {"--stats-interval", "1", NULL};
    daemon_start_ok(&d, HXFR_TEST_DAEMON_UNIX, args);
    int fd = daemon_connect_ok(&d, false);
    struct test_frame f;
    CHECK_EQ(test_frame_make(&f, HXFR_FORMAT_ARGB8888, 64, 64, 0, 0), 0);
    struct hxfr_msg m;
    for (int i = 0; i < 5; i++) {
        uint8_t *au = NULL;
        size_t len = 0;
        CHECK_EQ(roundtrip_frame(fd, 4, &f, i, false, &m, &au, &len), 0);
        free(au);
    }
    /* Wait (bounded) for a stats line while the client stays connected. */
    bool seen = false;
    for (int i = 0; i < 100 && !seen; i++) {
        seen = hxfr_test_daemon_log_count(&d, "stats client 1 session 4") > 0;
        if (!seen) {
            usleep(100000);
        }
    }
    CHECK(seen);
    char want[64];
    snprintf(want, sizeof(want), "%u pixel bytes copied", 5u * 64u * 64u * 4u);
    CHECK(hxfr_test_daemon_log_count(&d, want) > 0);
    CHECK(hxfr_test_daemon_log_count(&d, "encode p50") > 0);
    test_frame_free(&f);
    close(fd);
    daemon_stop_clean(&d, NULL);
}

TEST(sigterm_with_frames_in_flight_exits_cleanly)
{
    struct hxfr_test_daemon d;
    daemon_start_ok(&d, HXFR_TEST_DAEMON_UNIX, NULL);
    int fd = daemon_connect_ok(&d, false);
    struct test_frame f;
    CHECK_EQ(test_frame_make(&f, HXFR_FORMAT_ARGB8888, 320, 240, 0, 0), 0);
    for (int i = 0; i < 8; i++) {
        CHECK_EQ(send_frame(fd, 1, &f, i, false), 0);
    }
    /* Stop while frames are queued or encoding; the client never reads. */
    CHECK_EQ(hxfr_test_daemon_stop(&d), 0);
    CHECK_EQ(hxfr_test_daemon_log_count(&d, "shutdown complete"), 1);
    CHECK_EQ(hxfr_test_daemon_unexpected_errors(&d, NULL), 0);
    /* What the daemon answered before it closed is well-formed, then EOF. */
    for (;;) {
        struct hxfr_msg m;
        int r = hxfr_test_recv_msg(fd, 5000, &m, NULL, NULL);
        if (r != 1) {
            CHECK_EQ(r, 0);
            break;
        }
        CHECK(m.hdr.type == HXFR_MSG_FRAME_RESPONSE || m.hdr.type == HXFR_MSG_ERROR);
    }
    hxfr_test_daemon_free(&d);
    test_frame_free(&f);
    close(fd);
}

/* Runs hxfrd with args and returns its exit status; stdout into out. */
static int run_hxfrd(const char *const *args, char *out, size_t cap)
{
    int p[2];
    CHECK_EQ(pipe(p), 0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        const char *argv[16];
        int n = 0;
        argv[n++] = getenv("HXFRD");
        for (int i = 0; args[i] && n < 15; i++) {
            argv[n++] = args[i];
        }
        argv[n] = NULL;
        dup2(p[1], 1);
        close(p[0]);
        close(p[1]);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(p[1]);
    size_t have = 0;
    ssize_t r;
    while ((r = read(p[0], out + have, cap - 1 - have)) > 0) {
        have += (size_t)r;
    }
    out[have] = '\0';
    close(p[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

TEST(help_and_list_encoders)
{
    CHECK(getenv("HXFRD") != NULL);
    static char out[16384];
    const char *help[] = {"--help", NULL};
    CHECK_EQ(run_hxfrd(help, out, sizeof(out)), 0);
    const char *opts[] = {"--listen",
                          "--ready-fd",
                          "--encoder",
                          "--list-encoders",
                          "--preset",
                          "--threads",
                          "--gop",
                          "--workers",
                          "--max-size",
                          "--window",
                          "--max-clients",
                          "--max-sessions",
                          "--max-output",
                          "--idle-timeout",
                          "--shutdown-timeout",
                          "--handshake-timeout",
                          "--log-level",
                          "--stats-interval",
                          "SIGTERM",
                          NULL};
    for (int i = 0; opts[i]; i++) {
        if (!strstr(out, opts[i])) {
            FAIL("--help does not mention %s", opts[i]);
        }
    }
    const char *list[] = {"--list-encoders", NULL};
    CHECK_EQ(run_hxfrd(list, out, sizeof(out)), 0);
    CHECK(strstr(out, "libx264") != NULL);
    const char *bad[] = {"--window", "0", NULL};
    CHECK_EQ(run_hxfrd(bad, out, sizeof(out)), 2);
    const char *badlisten[] = {"--listen", "bogus:thing", NULL};
    CHECK(run_hxfrd(badlisten, out, sizeof(out)) != 0);
}

TEST(systemd_socket_activation)
{
    /* The test plays systemd: it binds the socket, hands it over as fd 3
     * with LISTEN_PID/LISTEN_FDS, and keeps the file (hxfrd must not
     * remove a socket it did not create). */
    char dir[] = "/tmp/hxfrd-sd-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    struct hxfr_test_daemon d;
    memset(&d, 0, sizeof(d));
    snprintf(d.unix_path, sizeof(d.unix_path), "%s/sd.sock", dir);
    int lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    memcpy(a.sun_path, d.unix_path, strlen(d.unix_path) + 1);
    CHECK_EQ(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    CHECK_EQ(listen(lfd, 8), 0);
    int p[2];
    CHECK_EQ(pipe(p), 0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        char pidbuf[32], readybuf[16];
        dup2(lfd, 3);
        if (p[1] == 3) {
            _exit(126);
        }
        snprintf(pidbuf, sizeof(pidbuf), "%d", (int)getpid());
        setenv("LISTEN_PID", pidbuf, 1);
        setenv("LISTEN_FDS", "1", 1);
        snprintf(readybuf, sizeof(readybuf), "%d", p[1]);
        close(p[0]);
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 2);
        execl(getenv("HXFRD"), "hxfrd", "--ready-fd", readybuf, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    close(lfd);
    char buf[512];
    size_t have = 0;
    ssize_t r;
    while ((r = read(p[0], buf + have, sizeof(buf) - 1 - have)) > 0) {
        have += (size_t)r;
    }
    buf[have] = '\0';
    close(p[0]);
    char want[256];
    snprintf(want, sizeof(want), "unix:%s\n", d.unix_path);
    CHECK(strcmp(buf, want) == 0); /* only the activated socket, no default */
    d.pid = pid;
    int fd = hxfr_test_daemon_connect(&d, false);
    CHECK(fd >= 0);
    CHECK_EQ(ping_ok(fd), 0);
    close(fd);
    kill(pid, SIGTERM);
    int status = 0;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK_EQ(access(d.unix_path, F_OK), 0);
    unlink(d.unix_path);
    rmdir(dir);
}

TEST(vsock_listener_opens_or_fails_clearly)
{
    /* vsock:0 lets the kernel pick a port (no fixed port). Where AF_VSOCK
     * exists the daemon serves it; elsewhere it must refuse to start with
     * a message naming AF_VSOCK. */
    struct hxfr_test_daemon d;
    const char *args[] = {"--listen", "vsock:0", NULL};
    if (hxfr_test_daemon_start(&d, HXFR_TEST_DAEMON_UNIX, args) == 0) {
        CHECK_EQ(hxfr_test_daemon_log_count(&d, "] listening on vsock:"), 1);
        daemon_stop_clean(&d, NULL);
        return;
    }
    int fd = socket(AF_VSOCK, SOCK_STREAM, 0);
    if (fd >= 0) {
        close(fd);
        FAIL("AF_VSOCK exists here but hxfrd did not listen on vsock:0");
    }
    /* No AF_VSOCK: the failure message must say so (the spawner printed
     * the log; check it again by running hxfrd directly). */
    int p[2];
    CHECK_EQ(pipe(p), 0);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(p[1], 2);
        execl(getenv("HXFRD"), "hxfrd", "--listen", "vsock:0", (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    char buf[1024];
    ssize_t n = read(p[0], buf, sizeof(buf) - 1);
    buf[n > 0 ? n : 0] = '\0';
    close(p[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) != 0);
    CHECK(strstr(buf, "AF_VSOCK is not available") != NULL);
}

TEST(sigterm_with_short_shutdown_timeout_fails_queued_frames)
{
    /* With a 1 ms bound, frames still queued when SIGTERM arrives are
     * answered SHUTTING_DOWN (or finished, if the encoder was quicker);
     * either way every answer is well-formed and the exit is clean. */
    struct hxfr_test_daemon d;
    const char *args[] = {"--shutdown-timeout", "1", "--workers", "1", "--window", "8", NULL};
    daemon_start_ok(&d, HXFR_TEST_DAEMON_UNIX, args);
    struct test_frame f;
    CHECK_EQ(test_frame_make(&f, HXFR_FORMAT_ARGB8888, 1280, 720, 0, 0), 0);
    int fds[3];
    for (int c = 0; c < 3; c++) {
        fds[c] = daemon_connect_ok(&d, false);
        for (int i = 0; i < 8; i++) {
            CHECK_EQ(send_frame(fds[c], (uint16_t)i, &f, i, false), 0);
        }
    }
    CHECK_EQ(hxfr_test_daemon_stop(&d), 0);
    CHECK_EQ(hxfr_test_daemon_unexpected_errors(&d, NULL), 0);
    fprintf(stderr, "# shutdown timeout reached: %d, frames failed: %d\n",
            hxfr_test_daemon_log_count(&d, "shutdown timeout"),
            hxfr_test_daemon_log_count(&d, "SHUTTING_DOWN"));
    for (int c = 0; c < 3; c++) {
        for (;;) {
            struct hxfr_msg m;
            int r = hxfr_test_recv_msg(fds[c], 5000, &m, NULL, NULL);
            if (r != 1) {
                CHECK(r == 0 || r == -ECONNRESET || r == -EPIPE);
                break;
            }
            CHECK(m.hdr.type == HXFR_MSG_FRAME_RESPONSE || m.hdr.type == HXFR_MSG_ERROR ||
                  m.hdr.type == HXFR_MSG_PONG);
            if (m.hdr.type == HXFR_MSG_ERROR) {
                CHECK_EQ(m.u.error.code, HXFR_STATUS_SHUTTING_DOWN);
            }
        }
        close(fds[c]);
    }
    hxfr_test_daemon_free(&d);
    test_frame_free(&f);
}

TEST(log_level_filters_lines)
{
    struct hxfr_test_daemon d;
    const char *quiet[] = {"--log-level", "warn", NULL};
    daemon_start_ok(&d, HXFR_TEST_DAEMON_UNIX, quiet);
    int fd = daemon_connect_ok(&d, false);
    CHECK_EQ(ping_ok(fd), 0);
    CHECK_EQ(send_simple(fd, HXFR_MSG_PONG, 0), 0); /* draws a warn line */
    CHECK_EQ(expect_error(fd, HXFR_STATUS_INVALID_MSG), 0);
    close(fd);
    CHECK_EQ(hxfr_test_daemon_stop(&d), 0);
    CHECK_EQ(hxfr_test_daemon_log_count(&d, "[info]"), 0);
    CHECK_EQ(hxfr_test_daemon_log_count(&d, "[warn]"), 1);
    hxfr_test_daemon_free(&d);

    const char *verbose[] = {"--log-level", "debug", NULL};
    daemon_start_ok(&d, HXFR_TEST_DAEMON_UNIX, verbose);
    fd = daemon_connect_ok(&d, false);
    daemon_hello_ok(fd, 0);
    struct hxfr_msg m;
    memset(&m, 0, sizeof(m));
    m.hdr.type = HXFR_MSG_CONFIG_REQ;
    CHECK_EQ(hxfr_test_send_msg(fd, &m, NULL, 0), 0);
    CHECK_EQ(expect_msg(fd, HXFR_MSG_CONFIG_RESP, NULL, NULL, NULL), 0);
    close(fd);
    CHECK_EQ(hxfr_test_daemon_stop(&d), 0);
    CHECK_EQ(hxfr_test_daemon_log_count(&d, "[debug] client 1 session 0: config"), 1);
    CHECK(hxfr_test_daemon_log_count(&d, "[info]") > 0);
    hxfr_test_daemon_free(&d);
}
