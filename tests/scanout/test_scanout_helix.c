/* Helix's peers against the real hxfrd (issue #14, docs/helix.md): each
 * peer here writes and reads exactly the bytes Helix's Go code does
 * (api/pkg/drm: the DRM manager's ENABLE/DISABLE_SCANOUT on connections of
 * their own, ScanoutSource's SUBSCRIBE and CONFIG_REQ, ReadFrameResponse),
 * never sends HELLO, and reads as strictly as that code: a FRAME_RESPONSE
 * is a header, the 24-byte fixed part and ONE unit (u32 size + bytes),
 * after which the next header must start; any other message type where a
 * frame is due fails the test, as it ends Helix's stream.
 *
 * Covered: one unit per access unit (Annex B, SPS and PPS in front on
 * keyframes); no CONFIG_RESP to a v1 subscriber, whose CONFIG_REQ on
 * session 0 sets its scanout's bitrate (the lowest of several subscribers,
 * with a floor); the scanout enabled on a short connection outliving it,
 * a publisher coming and going while the subscriber keeps getting frames
 * (keepalives of the last picture), DISABLE_SCANOUT from yet another
 * connection answered with SCANOUT_RESP; connector names Virtual-<N+1>;
 * the timeout of a scanout left alone. About 3 s. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "avcheck.h"
#include "daemon.h"
#include "daemon_check.h"
#include "harness.h"
#include "hostutil.h"

#define W 320
#define H 240

/* ---- Helix's Go peers, byte for byte ---------------------------------- */

/* The 12-byte header as binary.Write writes helixMsgHeader. */
static void put_header(uint8_t *p, uint8_t type, uint16_t session, uint32_t payload)
{
    hxfr_put_u32(p, HXFR_MAGIC);
    p[4] = type;
    p[5] = 0;
    hxfr_put_u16(p + 6, session);
    hxfr_put_u32(p + 8, payload);
}

/* Reads exactly n bytes within 20 s, or fails the test. */
static void read_exact(int fd, void *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, RECV_TIMEOUT_MS) <= 0) {
            FAIL("no data within %d ms (%zu of %zu bytes)", RECV_TIMEOUT_MS, got, n);
        }
        ssize_t r = read(fd, (uint8_t *)buf + got, n - got);
        if (r <= 0) {
            FAIL("connection ended after %zu of %zu bytes", got, n);
        }
        got += (size_t)r;
    }
}

struct header {
    uint8_t type;
    uint16_t session;
    uint32_t payload;
};

static struct header read_header(int fd)
{
    uint8_t b[HXFR_HEADER_SIZE];
    read_exact(fd, b, sizeof(b));
    if (hxfr_get_u32(b) != HXFR_MAGIC) {
        FAIL("bad magic 0x%08x: the stream lost sync", hxfr_get_u32(b));
    }
    return (struct header){b[4], hxfr_get_u16(b + 6), hxfr_get_u32(b + 8)};
}

/* writeEnableScanout / writeDisableScanout + readScanoutResp, as the
 * manager does them: a new connection each, closed after the answer
 * (which must come within the 10 s the manager waits). Returns success and
 * copies the connector. */
static int manager_request(const struct hxfr_test_daemon *d, bool enable, uint32_t id,
                           char connector[HXFR_CONNECTOR_LEN])
{
    int fd = daemon_connect_ok(d, false);
    uint8_t b[HXFR_HEADER_SIZE + 16];
    if (enable) {
        put_header(b, HXFR_MSG_ENABLE_SCANOUT, 0, 16);
        hxfr_put_u32(b + 12, id);
        hxfr_put_u32(b + 16, W);
        hxfr_put_u32(b + 20, H);
        hxfr_put_u32(b + 24, 60);
    } else {
        put_header(b, HXFR_MSG_DISABLE_SCANOUT, 0, 4);
        hxfr_put_u32(b + 12, id);
    }
    CHECK_EQ(hxfr_test_send_all(fd, b, enable ? sizeof(b) : HXFR_HEADER_SIZE + 4), 0);
    struct header h = read_header(fd);
    if (h.type != HXFR_MSG_SCANOUT_RESP || h.payload != 72) {
        FAIL("manager: message 0x%02x (%u bytes) where SCANOUT_RESP was due", h.type, h.payload);
    }
    uint8_t p[72];
    read_exact(fd, p, sizeof(p));
    CHECK_EQ(hxfr_get_u32(p), id);
    memcpy(connector, p + 8, HXFR_CONNECTOR_LEN);
    connector[HXFR_CONNECTOR_LEN - 1] = '\0';
    close(fd);
    return (int)hxfr_get_u32(p + 4);
}

/* WriteSubscribe + ReadSubscribeResp on a new connection; returns it. */
static int go_subscribe(const struct hxfr_test_daemon *d, uint32_t id)
{
    int fd = daemon_connect_ok(d, false);
    uint8_t b[HXFR_HEADER_SIZE + 4];
    put_header(b, HXFR_MSG_SUBSCRIBE, (uint16_t)id, 4);
    hxfr_put_u32(b + 12, id);
    CHECK_EQ(hxfr_test_send_all(fd, b, sizeof(b)), 0);
    struct header h = read_header(fd);
    if (h.type != HXFR_MSG_SUBSCRIBE_RESP) {
        FAIL("subscriber: message 0x%02x where SUBSCRIBE_RESP was due", h.type);
    }
    uint8_t p[8];
    read_exact(fd, p, sizeof(p));
    CHECK_EQ(hxfr_get_u32(p), id);
    CHECK_EQ(hxfr_get_u32(p + 4), 1);
    return fd;
}

/* WriteConfigRequest(conn, kbps, width, height): session 0, kbit/s times
 * 1000, 60/1 fps, baseline, level 4.0, realtime. */
static void go_config(int fd, uint32_t kbps, uint32_t width, uint32_t height)
{
    uint8_t b[HXFR_HEADER_SIZE + 28];
    memset(b, 0, sizeof(b));
    put_header(b, HXFR_MSG_CONFIG_REQ, 0, 28);
    hxfr_put_u32(b + 12, width);
    hxfr_put_u32(b + 16, height);
    hxfr_put_u32(b + 20, kbps * 1000u);
    hxfr_put_u32(b + 24, 60);
    hxfr_put_u32(b + 28, 1);
    b[32] = 66;
    b[33] = 40;
    b[34] = 1;
    CHECK_EQ(hxfr_test_send_all(fd, b, sizeof(b)), 0);
}

struct go_frame {
    uint16_t scanout;
    int64_t pts;
    bool keyframe;
    uint8_t *data; /* the one unit: an Annex B access unit */
    uint32_t size;
};

/* ReadFrameResponse, plus the checks that make it safe to read that way:
 * nal_count 1 and nothing after the one unit. */
static void go_read_frame(int fd, struct go_frame *f)
{
    struct header h = read_header(fd);
    if (h.type != HXFR_MSG_FRAME_RESPONSE) {
        FAIL("subscriber: message 0x%02x where FRAME_RESPONSE was due (Helix's reader ends "
             "the stream here)",
             h.type);
    }
    uint8_t p[24];
    read_exact(fd, p, sizeof(p));
    CHECK_EQ(hxfr_get_u32(p + 20), 1); /* nal_count */
    uint8_t sz[4];
    read_exact(fd, sz, sizeof(sz));
    f->size = hxfr_get_u32(sz);
    CHECK(f->size > 0);
    CHECK_EQ(h.payload, 24u + 4u + f->size);
    f->data = malloc(f->size);
    CHECK(f->data != NULL);
    read_exact(fd, f->data, f->size);
    f->scanout = h.session;
    f->pts = (int64_t)hxfr_get_u64(p);
    f->keyframe = p[16] != 0;
    size_t sc = 0;
    CHECK_EQ(hxfr_annexb_next(f->data, f->size, 0, &sc), 0); /* Annex B from byte 0 */
    if (f->keyframe) {
        CHECK(hxfr_avcheck_au_idr_with_params(f->data, f->size));
    }
}

/* ---- hxfrd's side: a publisher (raw, hostutil) ------------------------- */

static void publish(int fd, uint16_t id, uint64_t index)
{
    struct test_frame f;
    struct hxfr_msg m;
    CHECK_EQ(test_frame_make(&f, HXFR_FORMAT_ARGB8888, W, H, 0, index), 0);
    CHECK_EQ(roundtrip_frame(fd, id, &f, (int64_t)index * 1000, false, &m, NULL, NULL), 0);
    test_frame_free(&f);
}

static int enable_raw(int fd, uint32_t id)
{
    struct hxfr_msg m;
    memset(&m, 0, sizeof(m));
    m.hdr.type = HXFR_MSG_ENABLE_SCANOUT;
    m.hdr.session_id = (uint16_t)id;
    m.u.enable_scanout.scanout_id = id;
    m.u.enable_scanout.width = W;
    m.u.enable_scanout.height = H;
    CHECK_EQ(hxfr_test_send_msg(fd, &m, NULL, 0), 0);
    CHECK_EQ(expect_msg(fd, HXFR_MSG_SCANOUT_RESP, &m, NULL, NULL), 0);
    return (int)m.u.scanout_resp.success;
}

/* Waits up to 5 s until the daemon's log has count lines with needle. */
static void wait_log(struct hxfr_test_daemon *d, const char *needle, int count)
{
    for (int i = 0; i < 250 && hxfr_test_daemon_log_count(d, needle) < count; i++) {
        usleep(20 * 1000);
    }
    CHECK_EQ(hxfr_test_daemon_log_count(d, needle), count);
}

/* ---- tests ------------------------------------------------------------ */

/* Helix's whole flow: the manager enables scanout 2 on a short connection
 * and leaves; the subscriber subscribes and sends its CONFIG_REQ (no
 * answer may come); a publisher takes the scanout over and publishes, goes
 * away, the subscriber keeps getting frames (keepalives of the last
 * picture); another short connection disables it and gets its
 * SCANOUT_RESP; only then does the subscriber see something else than a
 * frame: ERROR NO_SCANOUT, the end of its stream. Every frame decodes as
 * one stream. */
TEST(helix_manager_subscriber_publisher)
{
    struct hxfr_test_daemon d;
    const char *args[] = {"--keepalive-ms", "100", NULL};
    daemon_start_ok(&d, HXFR_TEST_DAEMON_UNIX, args);
    char conn[HXFR_CONNECTOR_LEN];
    CHECK_EQ(manager_request(&d, true, 2, conn), 1);
    CHECK(strcmp(conn, "Virtual-3") == 0);

    int sub = go_subscribe(&d, 2);
    go_config(sub, 3000, 1920, 1080);

    int pub = daemon_connect_ok(&d, false);
    CHECK_EQ(enable_raw(pub, 2), 1);
    for (uint64_t i = 0; i < 5; i++) {
        publish(pub, 2, i);
    }
    struct hxfr_avcheck *dec = hxfr_avcheck_new(1);
    CHECK(dec != NULL);
    int frames = 0, published = 0;
    while (published < 5) {
        struct go_frame f;
        go_read_frame(sub, &f);
        CHECK_EQ(f.scanout, 2);
        if (frames == 0) {
            CHECK(f.keyframe);
        }
        CHECK_EQ(hxfr_avcheck_decode_au(dec, f.data, f.size), 1);
        CHECK_EQ(hxfr_avcheck_last(dec)->width, W);
        if (f.pts == published * 1000) {
            published++;
        }
        frames++;
        free(f.data);
    }
    /* The CONFIG_REQ set the scanout's bitrate (kbit/s x 1000). */
    CHECK_EQ(hxfr_test_daemon_log_count(&d, "scanout 2: bitrate 3000000 bit/s"), 1);

    /* The publisher goes; the subscriber goes on getting frames. */
    close(pub);
    int64_t last = -1;
    for (int k = 0; k < 4; k++) {
        struct go_frame f;
        go_read_frame(sub, &f);
        CHECK(f.pts > last);
        last = f.pts;
        CHECK_EQ(hxfr_avcheck_decode_au(dec, f.data, f.size), 1);
        free(f.data);
    }
    CHECK_EQ(hxfr_avcheck_idr_missing_params(dec), 0);
    hxfr_avcheck_destroy(dec);

    /* Disabled from another connection: answered; the stream ends. */
    CHECK_EQ(manager_request(&d, false, 2, conn), 1);
    CHECK(strcmp(conn, "Virtual-3") == 0);
    for (;;) {
        struct header h = read_header(sub);
        if (h.type == HXFR_MSG_FRAME_RESPONSE) {
            uint8_t *skip = malloc(h.payload);
            CHECK(skip != NULL);
            read_exact(sub, skip, h.payload);
            free(skip);
            continue;
        }
        CHECK_EQ(h.type, HXFR_MSG_ERROR);
        uint8_t e[260];
        read_exact(sub, e, sizeof(e));
        CHECK_EQ((int32_t)hxfr_get_u32(e), HXFR_STATUS_NO_SCANOUT);
        break;
    }
    /* Disabling what is not there is answered too. */
    CHECK_EQ(manager_request(&d, false, 2, conn), 0);
    close(sub);
    daemon_stop_clean(&d, NULL);
}

/* Several subscribers ask for bitrates: the lowest any current subscriber
 * asked for is the scanout's (never below 100 kbit/s), and it goes back up
 * when that one leaves. A subscriber that sent HELLO gets CONFIG_RESP with
 * the rate in use; the v1 ones get nothing (their next answer is the
 * PONG). */
TEST(subscriber_bitrates)
{
    struct hxfr_test_daemon d;
    daemon_start_ok(&d, HXFR_TEST_DAEMON_UNIX, NULL);
    int pub = daemon_connect_ok(&d, false);
    CHECK_EQ(enable_raw(pub, 0), 1);
    int s1 = go_subscribe(&d, 0), s2 = go_subscribe(&d, 0), s3 = go_subscribe(&d, 0);
    go_config(s1, 3000, W, H);
    CHECK_EQ(ping_ok(s1), 0);
    CHECK_EQ(hxfr_test_daemon_log_count(&d, "scanout 0: bitrate 3000000 bit/s"), 1);
    go_config(s2, 1000, W, H);
    CHECK_EQ(ping_ok(s2), 0);
    CHECK_EQ(hxfr_test_daemon_log_count(&d, "scanout 0: bitrate 1000000 bit/s"), 1);
    /* 0.01 kbit/s: held at the floor. */
    uint8_t b[HXFR_HEADER_SIZE + 28];
    memset(b, 0, sizeof(b));
    put_header(b, HXFR_MSG_CONFIG_REQ, 0, 28);
    hxfr_put_u32(b + 20, 10);
    CHECK_EQ(hxfr_test_send_all(s3, b, sizeof(b)), 0);
    CHECK_EQ(ping_ok(s3), 0);
    CHECK_EQ(hxfr_test_daemon_log_count(&d, "scanout 0: bitrate 100000 bit/s"), 1);
    close(s3);
    wait_log(&d, "scanout 0: bitrate 1000000 bit/s", 2);
    close(s2);
    wait_log(&d, "scanout 0: bitrate 3000000 bit/s", 2);
    /* A HELLO subscriber: its CONFIG_REQ on the scanout's session is
     * answered with the rate in use once the lower two are gone. */
    int s4 = daemon_connect_ok(&d, false);
    daemon_hello_ok(s4, HXFR_CAP_SCANOUT);
    struct hxfr_msg m;
    memset(&m, 0, sizeof(m));
    m.hdr.type = HXFR_MSG_SUBSCRIBE;
    m.u.subscribe.scanout_id = 0;
    CHECK_EQ(hxfr_test_send_msg(s4, &m, NULL, 0), 0);
    CHECK_EQ(expect_msg(s4, HXFR_MSG_SUBSCRIBE_RESP, &m, NULL, NULL), 0);
    CHECK_EQ(m.u.subscribe_resp.success, 1);
    memset(&m, 0, sizeof(m));
    m.hdr.type = HXFR_MSG_CONFIG_REQ;
    m.u.config_req.bitrate = 5000000;
    CHECK_EQ(hxfr_test_send_msg(s4, &m, NULL, 0), 0);
    CHECK_EQ(expect_msg(s4, HXFR_MSG_CONFIG_RESP, &m, NULL, NULL), 0);
    CHECK_EQ(m.u.config_resp.bitrate, 3000000);
    CHECK_EQ(m.u.config_resp.width, W);
    CHECK_EQ(hxfr_test_daemon_log_count(&d, "scanout 0: bitrate 3000000 bit/s"), 2);
    close(s1);
    close(s4);
    close(pub);
    daemon_stop_clean(&d, NULL);
}

/* A scanout enabled and left alone (no publisher, no subscriber) ends
 * after --scanout-timeout; one with a subscriber does not. */
TEST(alone_scanout_times_out)
{
    struct hxfr_test_daemon d;
    const char *args[] = {"--scanout-timeout", "1", NULL};
    daemon_start_ok(&d, HXFR_TEST_DAEMON_UNIX, args);
    char conn[HXFR_CONNECTOR_LEN];
    CHECK_EQ(manager_request(&d, true, 5, conn), 1);
    CHECK_EQ(manager_request(&d, true, 6, conn), 1);
    int sub = go_subscribe(&d, 6);
    wait_log(&d, "scanout 5 (Virtual-6) ended: no publisher", 1);
    CHECK_EQ(hxfr_test_daemon_log_count(&d, "scanout 6 (Virtual-7) ended"), 0);
    CHECK_EQ(ping_ok(sub), 0);
    close(sub);
    /* Alone now: it goes too. */
    wait_log(&d, "scanout 6 (Virtual-7) ended: no publisher", 1);
    CHECK_EQ(manager_request(&d, false, 6, conn), 0);
    daemon_stop_clean(&d, NULL);
}
