/* libhxfr-host with the fake encoder of fuzz/fake_encoder.c instead of
 * libavcodec: an encoder that fails to open and one that fails mid-stream
 * give ERROR ENCODE_FAILED for that frame only; the session reopens its
 * encoder (starting with an IDR) and every other session carries on. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <hxfr/host.h>

#include "daemon.h"
#include "harness.h"
#include "hostutil.h"

#define BAD_PTS 0x0BADBADBADBADBADll /* fake_encoder.c fails this encode */

struct rig {
    struct hxfr_host *h;
    int fd;
};

static void rig_start(struct rig *r)
{
    struct hxfr_host_config cfg;
    hxfr_host_config_init(&cfg);
    cfg.workers = 2;
    r->h = hxfr_host_new(&cfg);
    CHECK(r->h != NULL);
    int sv[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    CHECK_EQ(hxfr_host_add_client(r->h, sv[0], "test"), 0);
    r->fd = sv[1];
}

/* Runs the server until a whole message is readable, then reads it. */
static void rig_expect(struct rig *r, uint8_t type, struct hxfr_msg *m)
{
    for (int i = 0; i < 500; i++) {
        struct pollfd p = {.fd = r->fd, .events = POLLIN};
        if (poll(&p, 1, 0) == 1) {
            break;
        }
        CHECK_EQ(hxfr_host_dispatch(r->h, 10), 0);
    }
    /* The server queues each message whole and writes it with one
     * sendmsg; on a socketpair it arrives complete. */
    CHECK_EQ(expect_msg(r->fd, type, m, NULL, NULL), 0);
}

static void rig_stop(struct rig *r)
{
    close(r->fd);
    hxfr_host_destroy(r->h);
}

TEST(mid_stream_failure_answers_encode_failed_then_recovers)
{
    struct rig r;
    rig_start(&r);
    struct test_frame f;
    CHECK_EQ(test_frame_make(&f, HXFR_FORMAT_ARGB8888, 32, 32, 0, 0), 0);
    struct hxfr_msg m;

    CHECK_EQ(send_frame(r.fd, 1, &f, 1, false), 0);
    rig_expect(&r, HXFR_MSG_FRAME_RESPONSE, &m);
    CHECK(m.u.frame_response.is_keyframe);
    CHECK_EQ(send_frame(r.fd, 2, &f, 1, false), 0);
    rig_expect(&r, HXFR_MSG_FRAME_RESPONSE, &m);
    CHECK_EQ(send_frame(r.fd, 1, &f, 2, false), 0);
    rig_expect(&r, HXFR_MSG_FRAME_RESPONSE, &m);
    CHECK(!m.u.frame_response.is_keyframe);

    CHECK_EQ(send_frame(r.fd, 1, &f, BAD_PTS, false), 0);
    rig_expect(&r, HXFR_MSG_ERROR, &m);
    CHECK_EQ(m.hdr.session_id, 1);
    CHECK_EQ(m.u.error.code, HXFR_STATUS_ENCODE_FAILED);

    /* The failed encoder was dropped: the next frame reopens it, IDR. */
    CHECK_EQ(send_frame(r.fd, 1, &f, 4, false), 0);
    rig_expect(&r, HXFR_MSG_FRAME_RESPONSE, &m);
    CHECK_EQ(m.u.frame_response.pts, 4);
    CHECK(m.u.frame_response.is_keyframe);
    /* Session 2 never noticed. */
    CHECK_EQ(send_frame(r.fd, 2, &f, 2, false), 0);
    rig_expect(&r, HXFR_MSG_FRAME_RESPONSE, &m);
    CHECK_EQ(m.hdr.session_id, 2);
    CHECK(!m.u.frame_response.is_keyframe);

    struct hxfr_host_stats st;
    hxfr_host_get_stats(r.h, &st);
    CHECK_EQ(st.frames_failed, 1);
    CHECK_EQ(st.frames_encoded, 5);
    test_frame_free(&f);
    rig_stop(&r);
}

TEST(open_failure_answers_encode_failed_then_recovers)
{
    struct rig r;
    rig_start(&r);
    struct test_frame bad, good;
    /* fake_encoder.c refuses to open 250-pixel-wide frames. */
    CHECK_EQ(test_frame_make(&bad, HXFR_FORMAT_ARGB8888, 250, 4, 0, 0), 0);
    CHECK_EQ(test_frame_make(&good, HXFR_FORMAT_ARGB8888, 16, 16, 0, 0), 0);
    struct hxfr_msg m;
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(send_frame(r.fd, 7, &bad, i, false), 0);
        rig_expect(&r, HXFR_MSG_ERROR, &m);
        CHECK_EQ(m.u.error.code, HXFR_STATUS_ENCODE_FAILED);
        CHECK(strstr(m.u.error.message, "cannot open encoder") != NULL);
    }
    CHECK_EQ(send_frame(r.fd, 7, &good, 9, false), 0);
    rig_expect(&r, HXFR_MSG_FRAME_RESPONSE, &m);
    CHECK(m.u.frame_response.is_keyframe);
    test_frame_free(&bad);
    test_frame_free(&good);
    rig_stop(&r);
}
