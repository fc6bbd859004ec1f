/* HOSTILE.md cases that apply to pull mode, against the real hxfrd. Each
 * ends in an ERROR (the stream continues where it is still in sync) or an
 * ERROR and a close; the daemon keeps serving others and exits cleanly. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemon.h"
#include "daemon_check.h"
#include "harness.h"
#include "hostutil.h"

/* Sends raw bytes, expects ERROR INVALID_MSG and then EOF (no other reply,
 * even though valid PINGs follow the violation). Another client is served
 * afterwards. */
static void fatal_case(const uint8_t *bytes, size_t len)
{
    struct hxfr_test_daemon d;
    daemon_start_ok(&d, HXFR_TEST_DAEMON_UNIX, NULL);
    int fd = daemon_connect_ok(&d, false);
    uint8_t buf[512];
    CHECK(len + 2 * HXFR_HEADER_SIZE <= sizeof(buf));
    memcpy(buf, bytes, len);
    struct hxfr_header h = {.magic = HXFR_MAGIC, .type = HXFR_MSG_PING};
    hxfr_header_encode(buf + len, &h);
    hxfr_header_encode(buf + len + HXFR_HEADER_SIZE, &h);
    CHECK_EQ(hxfr_test_send_all(fd, buf, len + 2 * HXFR_HEADER_SIZE), 0);
    CHECK_EQ(expect_error(fd, HXFR_STATUS_INVALID_MSG), 0);
    struct hxfr_msg m;
    CHECK_EQ(hxfr_test_recv_msg(fd, RECV_TIMEOUT_MS, &m, NULL, NULL), 0);
    close(fd);
    fd = daemon_connect_ok(&d, false);
    CHECK_EQ(ping_ok(fd), 0);
    close(fd);
    daemon_stop_clean(&d, NULL);
}

static size_t header_bytes(uint8_t *out, uint32_t magic, uint8_t type, uint8_t flags,
                           uint32_t payload)
{
    struct hxfr_header h = {
        .magic = magic, .type = type, .flags = flags, .session_id = 1, .payload_size = payload};
    hxfr_header_encode(out, &h);
    return HXFR_HEADER_SIZE;
}

TEST(bad_magic)
{
    uint8_t b[HXFR_HEADER_SIZE];
    fatal_case(b, header_bytes(b, 0x12345678u, HXFR_MSG_PING, 0, 0));
}

TEST(unknown_type)
{
    uint8_t b[HXFR_HEADER_SIZE];
    fatal_case(b, header_bytes(b, HXFR_MAGIC, 0x7E, 0, 0));
}

TEST(undefined_flags)
{
    uint8_t b[HXFR_HEADER_SIZE];
    fatal_case(b, header_bytes(b, HXFR_MAGIC, HXFR_MSG_PING, 0x80, 0));
}

TEST(pixel_and_shm_flags_together)
{
    uint8_t b[HXFR_HEADER_SIZE];
    fatal_case(b, header_bytes(b, HXFR_MAGIC, HXFR_MSG_FRAME_REQUEST,
                               HXFR_FLAG_PIXEL_DATA | HXFR_FLAG_SHM, 44 + 64));
}

TEST(huge_payload_size)
{
    /* Refused from the header alone: nothing of it is read or allocated. */
    uint8_t b[HXFR_HEADER_SIZE];
    fatal_case(
        b, header_bytes(b, HXFR_MAGIC, HXFR_MSG_FRAME_REQUEST, HXFR_FLAG_PIXEL_DATA, 0xFFFFFFFFu));
}

TEST(payload_shorter_than_fixed_part)
{
    uint8_t b[HXFR_HEADER_SIZE + 10];
    size_t n = header_bytes(b, HXFR_MAGIC, HXFR_MSG_CONFIG_REQ, 0, 10);
    memset(b + n, 0, 10);
    fatal_case(b, n + 10);
}

TEST(payload_longer_than_allowed)
{
    uint8_t b[HXFR_HEADER_SIZE + 40];
    size_t n = header_bytes(b, HXFR_MAGIC, HXFR_MSG_CONFIG_REQ, 0, 40);
    memset(b + n, 0, 40);
    fatal_case(b, n + 40);
}

TEST(ping_with_payload)
{
    uint8_t b[HXFR_HEADER_SIZE + 4];
    size_t n = header_bytes(b, HXFR_MAGIC, HXFR_MSG_PING, 0, 4);
    memset(b + n, 0, 4);
    fatal_case(b, n + 4);
}

TEST(frame_request_without_pixels_but_with_body)
{
    uint8_t b[HXFR_HEADER_SIZE + 60];
    size_t n = header_bytes(b, HXFR_MAGIC, HXFR_MSG_FRAME_REQUEST, 0, 60);
    memset(b + n, 0, 60);
    fatal_case(b, n + 60);
}

/* A small stream of control messages; its expected replies. HELLO comes
 * first: only a peer that sent it gets CONFIG_RESP. */
static size_t control_stream(uint8_t *out)
{
    struct hxfr_msg m;
    size_t n = 0;
    memset(&m, 0, sizeof(m));
    m.hdr.type = HXFR_MSG_HELLO;
    m.u.hello.version = 1;
    n += (size_t)hxfr_msg_encode(&m, 0, out + n, 512);
    memset(&m, 0, sizeof(m));
    m.hdr.type = HXFR_MSG_PING;
    m.hdr.session_id = 1;
    n += (size_t)hxfr_msg_encode(&m, 0, out + n, 512);
    memset(&m, 0, sizeof(m));
    m.hdr.type = HXFR_MSG_CONFIG_REQ;
    m.hdr.session_id = 2;
    m.u.config_req.bitrate = 1000000;
    n += (size_t)hxfr_msg_encode(&m, 0, out + n, 512);
    memset(&m, 0, sizeof(m));
    m.hdr.type = HXFR_MSG_KEYFRAME_REQ;
    m.hdr.session_id = 2;
    n += (size_t)hxfr_msg_encode(&m, 0, out + n, 512);
    memset(&m, 0, sizeof(m));
    m.hdr.type = HXFR_MSG_PING;
    m.hdr.session_id = 3;
    n += (size_t)hxfr_msg_encode(&m, 0, out + n, 512);
    return n;
}

static void expect_control_replies(int fd)
{
    struct hxfr_msg m;
    CHECK_EQ(expect_msg(fd, HXFR_MSG_HELLO_RESP, &m, NULL, NULL), 0);
    CHECK_EQ(expect_msg(fd, HXFR_MSG_PONG, &m, NULL, NULL), 0);
    CHECK_EQ(m.hdr.session_id, 1);
    CHECK_EQ(expect_msg(fd, HXFR_MSG_CONFIG_RESP, &m, NULL, NULL), 0);
    CHECK_EQ(m.u.config_resp.bitrate, 1000000);
    CHECK_EQ(expect_msg(fd, HXFR_MSG_PONG, &m, NULL, NULL), 0);
    CHECK_EQ(m.hdr.session_id, 3);
}

TEST(split_at_every_byte_boundary)
{
    struct hxfr_test_daemon d;
    daemon_start_ok(&d, HXFR_TEST_DAEMON_UNIX, NULL);
    uint8_t s[1024];
    size_t n = control_stream(s);
    for (size_t cut = 1; cut < n; cut++) {
        int fd = daemon_connect_ok(&d, false);
        CHECK_EQ(hxfr_test_send_all(fd, s, cut), 0);
        /* Give the first part its own read where the scheduler allows;
         * correctness does not depend on it. */
        usleep(200);
        CHECK_EQ(hxfr_test_send_all(fd, s + cut, n - cut), 0);
        expect_control_replies(fd);
        close(fd);
    }
    daemon_stop_clean(&d, NULL);
}

TEST(one_byte_at_a_time_including_a_frame)
{
    struct hxfr_test_daemon d;
    daemon_start_ok(&d, HXFR_TEST_DAEMON_UNIX, NULL);
    int fd = daemon_connect_ok(&d, false);
    uint8_t s[4096];
    size_t n = control_stream(s);
    struct test_frame f;
    CHECK_EQ(test_frame_make(&f, HXFR_FORMAT_ARGB8888, 16, 16, 0, 0), 0);
    struct hxfr_msg m;
    memset(&m, 0, sizeof(m));
    m.hdr.type = HXFR_MSG_FRAME_REQUEST;
    m.hdr.flags = HXFR_FLAG_PIXEL_DATA;
    m.hdr.session_id = 8;
    m.u.frame_request.width = 16;
    m.u.frame_request.height = 16;
    m.u.frame_request.format = HXFR_FORMAT_ARGB8888;
    m.u.frame_request.stride = 64;
    m.u.frame_request.pts = 1234;
    n += (size_t)hxfr_msg_encode(&m, (uint32_t)f.g.size, s + n, sizeof(s) - n);
    memcpy(s + n, f.data, (size_t)f.g.size);
    n += (size_t)f.g.size;
    for (size_t i = 0; i < n; i++) {
        CHECK_EQ(hxfr_test_send_all(fd, s + i, 1), 0);
    }
    expect_control_replies(fd);
    CHECK_EQ(expect_msg(fd, HXFR_MSG_FRAME_RESPONSE, &m, NULL, NULL), 0);
    CHECK_EQ(m.u.frame_response.pts, 1234);
    /* And many messages in one write. */
    uint8_t many[HXFR_HEADER_SIZE * 50];
    for (int i = 0; i < 50; i++) {
        header_bytes(many + i * HXFR_HEADER_SIZE, HXFR_MAGIC, HXFR_MSG_PING, 0, 0);
    }
    CHECK_EQ(hxfr_test_send_all(fd, many, sizeof(many)), 0);
    for (int i = 0; i < 50; i++) {
        CHECK_EQ(expect_msg(fd, HXFR_MSG_PONG, NULL, NULL, NULL), 0);
    }
    test_frame_free(&f);
    close(fd);
    daemon_stop_clean(&d, NULL);
}

/* A FRAME_REQUEST with inline pixels whose description is rejected: the
 * daemon answers ERROR code, skips the body, and the stream goes on. */
static void bad_frame(int fd, uint32_t w, uint32_t h, uint32_t format, uint32_t stride,
                      uint32_t body, int32_t code)
{
    struct hxfr_msg m;
    memset(&m, 0, sizeof(m));
    m.hdr.type = HXFR_MSG_FRAME_REQUEST;
    m.hdr.flags = HXFR_FLAG_PIXEL_DATA;
    m.hdr.session_id = 1;
    m.u.frame_request.width = w;
    m.u.frame_request.height = h;
    m.u.frame_request.format = format;
    m.u.frame_request.stride = stride;
    uint8_t *pixels = calloc(1, body);
    CHECK(pixels != NULL);
    /* The body bytes look like PING headers: if the daemon parsed them as
     * messages instead of skipping them, PONGs would come back. */
    for (uint32_t i = 0; i + HXFR_HEADER_SIZE <= body; i += HXFR_HEADER_SIZE) {
        header_bytes(pixels + i, HXFR_MAGIC, HXFR_MSG_PING, 0, 0);
    }
    CHECK_EQ(hxfr_test_send_msg(fd, &m, pixels, body), 0);
    free(pixels);
    if (expect_error(fd, code) < 0) {
        FAIL("frame %ux%u format 0x%x stride %u body %u: not answered %s", w, h, format, stride,
             body, hxfr_status_name(code));
    }
    CHECK_EQ(ping_ok(fd), 0);
}

TEST(bad_geometry_answered_and_body_skipped)
{
    struct hxfr_test_daemon d;
    const char *args[] = {"--max-size", "256", NULL};
    daemon_start_ok(&d, HXFR_TEST_DAEMON_UNIX, args);
    int fd = daemon_connect_ok(&d, false);
    const uint32_t ARGB = HXFR_FORMAT_ARGB8888, NV12 = HXFR_FORMAT_NV12;
    /* zero width, height, stride */
    bad_frame(fd, 0, 64, ARGB, 256, 1200, HXFR_STATUS_BAD_GEOMETRY);
    bad_frame(fd, 64, 0, ARGB, 256, 1200, HXFR_STATUS_BAD_GEOMETRY);
    bad_frame(fd, 64, 64, ARGB, 0, 1200, HXFR_STATUS_BAD_GEOMETRY);
    /* overflowing width x height x bpp and stride x height */
    bad_frame(fd, 0xFFFFFFFFu, 0xFFFFFFFFu, ARGB, 0xFFFFFFFFu, 1200, HXFR_STATUS_TOO_LARGE);
    bad_frame(fd, 64, 64, ARGB, 0xFFFFFFF0u, 1200, HXFR_STATUS_BAD_GEOMETRY);
    /* stride smaller than a row */
    bad_frame(fd, 64, 64, ARGB, 255, 1200, HXFR_STATUS_BAD_GEOMETRY);
    /* odd sizes for 4:2:0 */
    bad_frame(fd, 63, 64, NV12, 64, 1200, HXFR_STATUS_BAD_GEOMETRY);
    bad_frame(fd, 64, 63, NV12, 64, 1200, HXFR_STATUS_BAD_GEOMETRY);
    bad_frame(fd, 64, 64, HXFR_FORMAT_I420, 65, 1200, HXFR_STATUS_BAD_GEOMETRY);
    /* unknown format */
    bad_frame(fd, 64, 64, 0x20202020u, 256, 1200, HXFR_STATUS_BAD_GEOMETRY);
    /* above --max-size (the body is still below the parser's limit) */
    bad_frame(fd, 512, 16, ARGB, 2048, 512 * 16 * 4, HXFR_STATUS_TOO_LARGE);
    bad_frame(fd, 16, 300, ARGB, 64, 16 * 300 * 4, HXFR_STATUS_TOO_LARGE);
    /* pixel bytes fewer or more than the geometry needs */
    bad_frame(fd, 64, 64, ARGB, 256, 64 * 64 * 4 - 1, HXFR_STATUS_BAD_GEOMETRY);
    bad_frame(fd, 64, 64, ARGB, 256, 64 * 64 * 4 + 1, HXFR_STATUS_BAD_GEOMETRY);
    bad_frame(fd, 64, 64, NV12, 64, 64 * 64, HXFR_STATUS_BAD_GEOMETRY);

    /* After all that, a good frame in the same session still encodes. */
    struct test_frame f;
    CHECK_EQ(test_frame_make(&f, ARGB, 64, 64, 0, 0), 0);
    struct hxfr_msg m;
    uint8_t *au = NULL;
    size_t len = 0;
    CHECK_EQ(roundtrip_frame(fd, 1, &f, 99, false, &m, &au, &len), 0);
    CHECK(m.u.frame_response.is_keyframe);
    free(au);
    test_frame_free(&f);
    close(fd);
    daemon_stop_clean(&d, NULL);
}

TEST(bad_control_values_answered)
{
    struct hxfr_test_daemon d;
    const char *args[] = {"--max-sessions", "2", NULL};
    daemon_start_ok(&d, HXFR_TEST_DAEMON_UNIX, args);
    int fd = daemon_connect_ok(&d, false);
    struct hxfr_msg m;

    memset(&m, 0, sizeof(m));
    m.hdr.type = HXFR_MSG_CONFIG_REQ;
    m.u.config_req.profile = 55;
    CHECK_EQ(hxfr_test_send_msg(fd, &m, NULL, 0), 0);
    CHECK_EQ(expect_error(fd, HXFR_STATUS_UNSUPPORTED), 0);
    m.u.config_req.profile = 0;
    m.u.config_req.level = 99;
    CHECK_EQ(hxfr_test_send_msg(fd, &m, NULL, 0), 0);
    CHECK_EQ(expect_error(fd, HXFR_STATUS_UNSUPPORTED), 0);
    m.u.config_req.level = 0;
    m.u.config_req.framerate_num = 30;
    CHECK_EQ(hxfr_test_send_msg(fd, &m, NULL, 0), 0);
    CHECK_EQ(expect_error(fd, HXFR_STATUS_INVALID_MSG), 0);
    m.u.config_req.framerate_num = 0;
    m.u.config_req.width = 100000;
    m.u.config_req.height = 100000;
    CHECK_EQ(hxfr_test_send_msg(fd, &m, NULL, 0), 0);
    CHECK_EQ(expect_error(fd, HXFR_STATUS_TOO_LARGE), 0);

    memset(&m, 0, sizeof(m));
    m.hdr.type = HXFR_MSG_HELLO;
    m.u.hello.version = 0;
    CHECK_EQ(hxfr_test_send_msg(fd, &m, NULL, 0), 0);
    CHECK_EQ(expect_error(fd, HXFR_STATUS_INVALID_MSG), 0);
    /* That left it a v1 peer; a good HELLO gets its CONFIG_REQs answered. */
    daemon_hello_ok(fd, 0);

    /* Sessions are capped per client. */
    for (uint16_t sid = 1; sid <= 3; sid++) {
        memset(&m, 0, sizeof(m));
        m.hdr.type = HXFR_MSG_CONFIG_REQ;
        m.hdr.session_id = sid;
        CHECK_EQ(hxfr_test_send_msg(fd, &m, NULL, 0), 0);
        if (sid <= 2) {
            CHECK_EQ(expect_msg(fd, HXFR_MSG_CONFIG_RESP, NULL, NULL, NULL), 0);
        } else {
            CHECK_EQ(expect_error(fd, HXFR_STATUS_BUSY), 0);
        }
    }
    CHECK_EQ(ping_ok(fd), 0);
    close(fd);
    daemon_stop_clean(&d, NULL);
}

TEST(peer_closes_mid_message)
{
    struct hxfr_test_daemon d;
    daemon_start_ok(&d, HXFR_TEST_DAEMON_UNIX, NULL);
    uint8_t b[HXFR_HEADER_SIZE + HXFR_CONFIG_REQ_SIZE];
    header_bytes(b, HXFR_MAGIC, HXFR_MSG_CONFIG_REQ, 0, HXFR_CONFIG_REQ_SIZE);
    memset(b + HXFR_HEADER_SIZE, 0, HXFR_CONFIG_REQ_SIZE);
    for (size_t cut = 1; cut < sizeof(b); cut += 7) {
        int fd = daemon_connect_ok(&d, false);
        CHECK_EQ(hxfr_test_send_all(fd, b, cut), 0);
        close(fd);
    }
    int fd = daemon_connect_ok(&d, false);
    CHECK_EQ(ping_ok(fd), 0);
    close(fd);
    CHECK_EQ(hxfr_test_daemon_stop(&d), 0);
    CHECK(hxfr_test_daemon_log_count(&d, "middle of a message") >= 1);
    CHECK_EQ(hxfr_test_daemon_unexpected_errors(&d, NULL), 0);
    hxfr_test_daemon_free(&d);
}

TEST(flood_without_reading_is_bounded_and_cut)
{
    struct hxfr_test_daemon d;
    const char *args[] = {"--max-output", "256K", NULL};
    daemon_start_ok(&d, HXFR_TEST_DAEMON_UNIX, args);
    int bystander = daemon_connect_ok(&d, false);
    int fd = daemon_connect_ok(&d, false);
    /* PINGs in big batches; never read a PONG. The daemon must cut us
     * once its queue for us passes 256 KiB (plus what the kernel buffers),
     * so our sends start failing well before 256 MiB. */
    static uint8_t batch[HXFR_HEADER_SIZE * 4096];
    for (int i = 0; i < 4096; i++) {
        header_bytes(batch + i * HXFR_HEADER_SIZE, HXFR_MAGIC, HXFR_MSG_PING, 0, 0);
    }
    size_t sent = 0;
    int err = 0;
    while (sent < 256u * 1024u * 1024u) {
        err = hxfr_test_send_all(fd, batch, sizeof(batch));
        if (err < 0) {
            break;
        }
        sent += sizeof(batch);
    }
    CHECK(err == -EPIPE || err == -ECONNRESET);
    CHECK_EQ(ping_ok(bystander), 0);
    close(fd);
    close(bystander);
    CHECK_EQ(hxfr_test_daemon_stop(&d), 0);
    CHECK_EQ(hxfr_test_daemon_log_count(&d, "output queue over the limit"), 1);
    CHECK_EQ(hxfr_test_daemon_unexpected_errors(&d, NULL), 0);
    hxfr_test_daemon_free(&d);
}

TEST(frame_flood_without_reading_stops_reading_then_cut)
{
    struct hxfr_test_daemon d;
    const char *args[] = {"--max-output", "64K", "--window", "2", NULL};
    daemon_start_ok(&d, HXFR_TEST_DAEMON_UNIX, args);
    int fd = daemon_connect_ok(&d, false);
    struct test_frame f;
    CHECK_EQ(test_frame_make(&f, HXFR_FORMAT_ARGB8888, 128, 128, 0, 0), 0);
    int err = 0;
    for (int i = 0; i < 20000 && err == 0; i++) {
        err = send_frame(fd, 1, &f, i, true);
    }
    CHECK(err == -EPIPE || err == -ECONNRESET);
    test_frame_free(&f);
    close(fd);
    CHECK_EQ(hxfr_test_daemon_stop(&d), 0);
    CHECK_EQ(hxfr_test_daemon_log_count(&d, "output queue over the limit"), 1);
    CHECK_EQ(hxfr_test_daemon_unexpected_errors(&d, NULL), 0);
    hxfr_test_daemon_free(&d);
}

TEST(connections_beyond_max_clients_get_busy)
{
    struct hxfr_test_daemon d;
    const char *args[] = {"--max-clients", "4", NULL};
    daemon_start_ok(&d, HXFR_TEST_DAEMON_UNIX, args);
    int fds[4];
    for (int i = 0; i < 4; i++) {
        fds[i] = daemon_connect_ok(&d, false);
        CHECK_EQ(ping_ok(fds[i]), 0);
    }
    for (int k = 0; k < 10; k++) {
        int extra = daemon_connect_ok(&d, false);
        CHECK_EQ(expect_error(extra, HXFR_STATUS_BUSY), 0);
        struct hxfr_msg m;
        CHECK_EQ(hxfr_test_recv_msg(extra, RECV_TIMEOUT_MS, &m, NULL, NULL), 0);
        close(extra);
    }
    for (int i = 0; i < 4; i++) {
        CHECK_EQ(ping_ok(fds[i]), 0);
    }
    /* A freed slot is usable again. */
    close(fds[0]);
    int again = -1;
    for (int tries = 0; tries < 200; tries++) {
        again = daemon_connect_ok(&d, false);
        if (ping_ok(again) == 0) {
            break;
        }
        close(again);
        again = -1;
        usleep(20000);
    }
    CHECK(again >= 0);
    close(again);
    for (int i = 1; i < 4; i++) {
        close(fds[i]);
    }
    CHECK_EQ(hxfr_test_daemon_stop(&d), 0);
    CHECK(hxfr_test_daemon_log_count(&d, "refused") >= 10);
    CHECK_EQ(hxfr_test_daemon_unexpected_errors(&d, NULL), 0);
    hxfr_test_daemon_free(&d);
}

TEST(idle_peer_is_closed)
{
    struct hxfr_test_daemon d;
    const char *args[] = {"--idle-timeout", "1", NULL};
    daemon_start_ok(&d, HXFR_TEST_DAEMON_UNIX, args);
    int idle = daemon_connect_ok(&d, false);
    int busy = daemon_connect_ok(&d, false);
    CHECK_EQ(ping_ok(busy), 0);
    CHECK_EQ(hxfr_test_wait_eof(idle, 15000), 0);
    close(idle);
    close(busy);
    CHECK_EQ(hxfr_test_daemon_stop(&d), 0);
    CHECK(hxfr_test_daemon_log_count(&d, "idle timeout") >= 1);
    CHECK_EQ(hxfr_test_daemon_unexpected_errors(&d, NULL), 0);
    hxfr_test_daemon_free(&d);
}

TEST(tcp_fatal_error_still_delivered)
{
    /* Over TCP a close with unread input resets the connection; the daemon
     * shuts its write side and drains, so the ERROR arrives intact. */
    struct hxfr_test_daemon d;
    if (hxfr_test_daemon_start(&d, HXFR_TEST_DAEMON_TCP, NULL) < 0) {
        FAIL("hxfrd did not start");
    }
    int fd = hxfr_test_daemon_connect(&d, true);
    CHECK(fd >= 0);
    uint8_t junk[4096];
    memset(junk, 0xAB, sizeof(junk));
    CHECK_EQ(hxfr_test_send_all(fd, junk, sizeof(junk)), 0);
    CHECK_EQ(expect_error(fd, HXFR_STATUS_INVALID_MSG), 0);
    CHECK_EQ(hxfr_test_wait_eof(fd, 10000), 0);
    close(fd);
    CHECK_EQ(hxfr_test_daemon_stop(&d), 0);
    CHECK_EQ(hxfr_test_daemon_unexpected_errors(&d, NULL), 0);
    hxfr_test_daemon_free(&d);
}

TEST(error_flood_logging_is_bounded)
{
    struct hxfr_test_daemon d;
    daemon_start_ok(&d, HXFR_TEST_DAEMON_UNIX, NULL);
    int fd = daemon_connect_ok(&d, false);
    /* 300 requests a server never accepts: 300 ERRORs on the wire, but
     * only the first 100 are logged. */
    uint8_t b[HXFR_HEADER_SIZE * 300];
    for (int i = 0; i < 300; i++) {
        header_bytes(b + i * HXFR_HEADER_SIZE, HXFR_MAGIC, HXFR_MSG_PONG, 0, 0);
    }
    CHECK_EQ(hxfr_test_send_all(fd, b, sizeof(b)), 0);
    for (int i = 0; i < 300; i++) {
        CHECK_EQ(expect_error(fd, HXFR_STATUS_INVALID_MSG), 0);
    }
    CHECK_EQ(ping_ok(fd), 0);
    close(fd);
    CHECK_EQ(hxfr_test_daemon_stop(&d), 0);
    CHECK_EQ(hxfr_test_daemon_log_count(&d, "ERROR INVALID_MSG"), 100);
    CHECK_EQ(hxfr_test_daemon_log_count(&d, "further ERROR lines"), 1);
    CHECK_EQ(hxfr_test_daemon_log_count(&d, "300 errors"), 1);
    CHECK_EQ(hxfr_test_daemon_unexpected_errors(&d, NULL), 0);
    hxfr_test_daemon_free(&d);
}
