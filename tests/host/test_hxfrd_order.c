/* Answer order against the real hxfrd (docs/protocol.md, "Answer order"):
 * a session's answers leave in request order even when some requests are
 * rejected at once while earlier frames are still queued or encoding; PONG
 * does not wait. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"
#include "daemon_check.h"
#include "harness.h"
#include "hostutil.h"

/* An inline FRAME_REQUEST whose stride is too small for its width: the
 * daemon rejects it (BAD_GEOMETRY) without encoding anything. */
static void send_bad_frame(int fd, uint16_t sid)
{
    struct hxfr_msg m;
    memset(&m, 0, sizeof(m));
    m.hdr.type = HXFR_MSG_FRAME_REQUEST;
    m.hdr.flags = HXFR_FLAG_PIXEL_DATA;
    m.hdr.session_id = sid;
    m.u.frame_request.width = 64;
    m.u.frame_request.height = 64;
    m.u.frame_request.format = HXFR_FORMAT_ARGB8888;
    m.u.frame_request.stride = 255;
    uint8_t body[256] = {0};
    CHECK_EQ(hxfr_test_send_msg(fd, &m, body, sizeof(body)), 0);
}

/* A FRAME_REQUEST naming a resource: hxfrd resolves none (RESOURCE_NOT_FOUND). */
static void send_resource_frame(int fd, uint16_t sid)
{
    struct hxfr_msg m;
    memset(&m, 0, sizeof(m));
    m.hdr.type = HXFR_MSG_FRAME_REQUEST;
    m.hdr.session_id = sid;
    m.u.frame_request.resource_id = 7;
    m.u.frame_request.width = 64;
    m.u.frame_request.height = 64;
    m.u.frame_request.format = HXFR_FORMAT_ARGB8888;
    CHECK_EQ(hxfr_test_send_msg(fd, &m, NULL, 0), 0);
}

static void send_config(int fd, uint16_t sid, uint32_t profile)
{
    struct hxfr_msg m;
    memset(&m, 0, sizeof(m));
    m.hdr.type = HXFR_MSG_CONFIG_REQ;
    m.hdr.session_id = sid;
    m.u.config_req.width = 640;
    m.u.config_req.height = 480;
    m.u.config_req.bitrate = 2000000;
    m.u.config_req.profile = profile;
    m.u.config_req.realtime = 1;
    CHECK_EQ(hxfr_test_send_msg(fd, &m, NULL, 0), 0);
}

/* What one answer must be: a FRAME_RESPONSE with pts, an ERROR with code,
 * or a CONFIG_RESP. */
struct want {
    uint8_t type;
    int64_t pts;
    int32_t code;
};

/* Reads answers of session sid until all of want came, in that order;
 * PONGs may arrive anywhere and are counted. */
static void expect_in_order(int fd, uint16_t sid, const struct want *want, int n, int *pongs)
{
    for (int i = 0; i < n;) {
        struct hxfr_msg m;
        CHECK_EQ(hxfr_test_recv_msg(fd, RECV_TIMEOUT_MS, &m, NULL, NULL), 1);
        if (m.hdr.type == HXFR_MSG_PONG) {
            (*pongs)++;
            continue;
        }
        CHECK_EQ(m.hdr.session_id, sid);
        if (m.hdr.type != want[i].type) {
            FAIL("answer %d: %s (%s) where %s was due", i, hxfr_msg_type_name(m.hdr.type),
                 m.hdr.type == HXFR_MSG_ERROR ? m.u.error.message : "",
                 hxfr_msg_type_name(want[i].type));
        }
        if (m.hdr.type == HXFR_MSG_FRAME_RESPONSE) {
            CHECK_EQ(m.u.frame_response.pts, want[i].pts);
        } else if (m.hdr.type == HXFR_MSG_ERROR) {
            CHECK_EQ(m.u.error.code, want[i].code);
        }
        i++;
    }
}

TEST(rejections_wait_for_earlier_frames_of_the_session)
{
    struct hxfr_test_daemon d;
    const char *args[] = {"--window", "16", "--workers", "1", NULL};
    daemon_start_ok(&d, HXFR_TEST_DAEMON_UNIX, args);
    int fd = daemon_connect_ok(&d, false);
    daemon_hello_ok(fd, 0); /* CONFIG_REQ is answered only after HELLO */
    struct test_frame f;
    /* Big enough that encoding takes a while: the rejections are handled
     * while the earlier frames are queued or at the encoder. */
    CHECK_EQ(test_frame_make(&f, HXFR_FORMAT_ARGB8888, 640, 480, 0, 0), 0);
    CHECK_EQ(send_frame(fd, 1, &f, 0, false), 0);
    CHECK_EQ(send_frame(fd, 1, &f, 1, false), 0);
    CHECK_EQ(send_frame(fd, 1, &f, 2, false), 0);
    send_bad_frame(fd, 1);
    CHECK_EQ(send_simple(fd, HXFR_MSG_PING, 1), 0);
    CHECK_EQ(send_frame(fd, 1, &f, 3, false), 0);
    send_resource_frame(fd, 1);
    send_config(fd, 1, 42);  /* not an H.264 profile: ERROR UNSUPPORTED */
    send_config(fd, 1, 100); /* CONFIG_RESP */
    CHECK_EQ(send_frame(fd, 1, &f, 4, false), 0);
    const struct want want[] = {
        {HXFR_MSG_FRAME_RESPONSE, 0, 0},
        {HXFR_MSG_FRAME_RESPONSE, 1, 0},
        {HXFR_MSG_FRAME_RESPONSE, 2, 0},
        {HXFR_MSG_ERROR, 0, HXFR_STATUS_BAD_GEOMETRY},
        {HXFR_MSG_FRAME_RESPONSE, 3, 0},
        {HXFR_MSG_ERROR, 0, HXFR_STATUS_RESOURCE_NOT_FOUND},
        {HXFR_MSG_ERROR, 0, HXFR_STATUS_UNSUPPORTED},
        {HXFR_MSG_CONFIG_RESP, 0, 0},
        {HXFR_MSG_FRAME_RESPONSE, 4, 0},
    };
    int pongs = 0;
    expect_in_order(fd, 1, want, (int)(sizeof(want) / sizeof(want[0])), &pongs);
    CHECK_EQ(pongs, 1);
    CHECK_EQ(ping_ok(fd), 0);
    test_frame_free(&f);
    close(fd);
    CHECK_EQ(hxfr_test_daemon_stop(&d), 0);
    CHECK_EQ(hxfr_test_daemon_unexpected_errors(&d, NULL), 0);
    hxfr_test_daemon_free(&d);
}

TEST(held_answers_count_against_the_window)
{
    /* With window 2, a frame in flight and a flood of rejected requests:
     * the daemon holds at most a window of answers, stops reading, and
     * still answers everything in order once the frame is done. */
    struct hxfr_test_daemon d;
    const char *args[] = {"--window", "2", "--workers", "1", NULL};
    daemon_start_ok(&d, HXFR_TEST_DAEMON_UNIX, args);
    int fd = daemon_connect_ok(&d, false);
    struct test_frame f;
    CHECK_EQ(test_frame_make(&f, HXFR_FORMAT_ARGB8888, 320, 240, 0, 0), 0);
    CHECK_EQ(send_frame(fd, 1, &f, 0, false), 0);
    enum { BAD = 40 };
    for (int i = 0; i < BAD; i++) {
        send_bad_frame(fd, 1);
    }
    CHECK_EQ(send_frame(fd, 1, &f, 1, false), 0);
    struct want want[BAD + 2];
    want[0] = (struct want){HXFR_MSG_FRAME_RESPONSE, 0, 0};
    for (int i = 0; i < BAD; i++) {
        want[1 + i] = (struct want){HXFR_MSG_ERROR, 0, HXFR_STATUS_BAD_GEOMETRY};
    }
    want[BAD + 1] = (struct want){HXFR_MSG_FRAME_RESPONSE, 1, 0};
    int pongs = 0;
    expect_in_order(fd, 1, want, BAD + 2, &pongs);
    CHECK_EQ(pongs, 0);
    test_frame_free(&f);
    close(fd);
    CHECK_EQ(hxfr_test_daemon_stop(&d), 0);
    CHECK_EQ(hxfr_test_daemon_unexpected_errors(&d, NULL), 0);
    hxfr_test_daemon_free(&d);
}

TEST(other_sessions_do_not_wait)
{
    /* Session 2's rejection concerns no frame of session 1: it is ordered
     * only within session 2, and session 1's answers stay in order. */
    struct hxfr_test_daemon d;
    const char *args[] = {"--window", "8", NULL};
    daemon_start_ok(&d, HXFR_TEST_DAEMON_UNIX, args);
    int fd = daemon_connect_ok(&d, false);
    struct test_frame f;
    CHECK_EQ(test_frame_make(&f, HXFR_FORMAT_ARGB8888, 320, 240, 0, 0), 0);
    CHECK_EQ(send_frame(fd, 1, &f, 0, false), 0);
    send_bad_frame(fd, 2);
    CHECK_EQ(send_frame(fd, 1, &f, 1, false), 0);
    int s1 = 0, s2 = 0;
    while (s1 < 2 || s2 < 1) {
        struct hxfr_msg m;
        CHECK_EQ(hxfr_test_recv_msg(fd, RECV_TIMEOUT_MS, &m, NULL, NULL), 1);
        if (m.hdr.session_id == 2) {
            CHECK_EQ(m.hdr.type, HXFR_MSG_ERROR);
            CHECK_EQ(m.u.error.code, HXFR_STATUS_BAD_GEOMETRY);
            s2++;
        } else {
            CHECK_EQ(m.hdr.session_id, 1);
            CHECK_EQ(m.hdr.type, HXFR_MSG_FRAME_RESPONSE);
            CHECK_EQ(m.u.frame_response.pts, s1);
            s1++;
        }
    }
    CHECK_EQ(ping_ok(fd), 0);
    test_frame_free(&f);
    close(fd);
    CHECK_EQ(hxfr_test_daemon_stop(&d), 0);
    CHECK_EQ(hxfr_test_daemon_unexpected_errors(&d, NULL), 0);
    hxfr_test_daemon_free(&d);
}

TEST(client_vanishes_with_answers_held)
{
    /* Held answers are freed with the session: no leak (ASan), no crash. */
    struct hxfr_test_daemon d;
    const char *args[] = {"--window", "8", "--workers", "1", NULL};
    daemon_start_ok(&d, HXFR_TEST_DAEMON_UNIX, args);
    int fd = daemon_connect_ok(&d, false);
    struct test_frame f;
    CHECK_EQ(test_frame_make(&f, HXFR_FORMAT_ARGB8888, 640, 480, 0, 0), 0);
    CHECK_EQ(send_frame(fd, 1, &f, 0, false), 0);
    CHECK_EQ(send_frame(fd, 1, &f, 1, false), 0);
    send_bad_frame(fd, 1);
    send_config(fd, 1, 100);
    close(fd);
    int other = daemon_connect_ok(&d, false);
    CHECK_EQ(ping_ok(other), 0);
    close(other);
    test_frame_free(&f);
    CHECK_EQ(hxfr_test_daemon_stop(&d), 0);
    CHECK_EQ(hxfr_test_daemon_unexpected_errors(&d, NULL), 0);
    hxfr_test_daemon_free(&d);
}

TEST(flood_with_held_answers_without_reading_is_cut)
{
    /* Frames and rejected requests in a loop, never reading: held answers
     * pause the client like frames do, and once they are released its
     * output grows to --max-output and it is cut. Nothing leaks (ASan). */
    struct hxfr_test_daemon d;
    const char *args[] = {"--max-output", "64K", "--window", "2", NULL};
    daemon_start_ok(&d, HXFR_TEST_DAEMON_UNIX, args);
    int bystander = daemon_connect_ok(&d, false);
    int fd = daemon_connect_ok(&d, false);
    struct test_frame f;
    CHECK_EQ(test_frame_make(&f, HXFR_FORMAT_ARGB8888, 128, 128, 0, 0), 0);
    int err = 0;
    for (int i = 0; i < 20000 && err == 0; i++) {
        err = send_frame(fd, 1, &f, i, true);
        for (int k = 0; k < 8 && err == 0; k++) {
            struct hxfr_msg m;
            memset(&m, 0, sizeof(m));
            m.hdr.type = HXFR_MSG_CONFIG_REQ;
            m.hdr.session_id = 1;
            m.u.config_req.profile = 42;
            err = hxfr_test_send_msg(fd, &m, NULL, 0);
        }
    }
    CHECK(err == -EPIPE || err == -ECONNRESET);
    CHECK_EQ(ping_ok(bystander), 0);
    test_frame_free(&f);
    close(fd);
    close(bystander);
    CHECK_EQ(hxfr_test_daemon_stop(&d), 0);
    CHECK_EQ(hxfr_test_daemon_log_count(&d, "output queue over the limit"), 1);
    CHECK_EQ(hxfr_test_daemon_unexpected_errors(&d, NULL), 0);
    hxfr_test_daemon_free(&d);
}
