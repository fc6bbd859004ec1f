/* hxfr-gpu as the VM's HXFR server (serve.c), behind the QEMU stand-in
 * (fakeqemu.c): a guest resource whose backing is scattered over guest RAM
 * (pieces out of order, not adjacent) is encoded in place for
 * FRAME_REQUEST(resource_id) and for scanout flushes pushed to a
 * subscriber; the flush is held until the encoder read the picture;
 * ENABLE/DISABLE_SCANOUT from peers plug connectors in and out (Helix's
 * flow); no subscriber, no encode. Each test starts its own hxfr-gpu.
 * Cost: about 3 s on 2 cores (small frames). */
#include <linux/virtio_gpu.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "avcheck.h"
#include "daemon.h"
#include "fakeqemu.h"
#include "gpucheck.h"
#include "harness.h"
#include "io.h"
#include "pattern.h"

#define W     320
#define H     192
#define PIECE 8192u /* backing entries: two pages each */

struct srv {
    struct fq q;
    char sock[160];
};

static void srv_start(struct srv *s, const char *const *more)
{
    char dir[] = "/tmp/hxfr-gpu-hxfr-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    snprintf(s->sock, sizeof(s->sock), "%s/hxfr.sock", dir);
    static char listen[200];
    snprintf(listen, sizeof(listen), "unix:%s", s->sock);
    const char *args[16] = {"--listen",  listen, "--keepalive-ms",   "200",
                            "--workers", "1",    "--stats-interval", "1"};
    int n = 8;
    for (int i = 0; more && more[i] && n < 15; i++) {
        args[n++] = more[i];
    }
    args[n] = NULL;
    fq_start(&s->q, args, 0);
}

static void srv_stop(struct srv *s)
{
    fq_stop_clean(&s->q);
    unlink(s->sock);
    char *slash = strrchr(s->sock, '/');
    *slash = '\0';
    rmdir(s->sock);
}

static int hxfr_connect(struct srv *s)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path, s->sock, strlen(s->sock) + 1);
    CHECK(fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    return fd;
}

/* Receives one message of type (skipping pushed units when skip_units). */
static void recv_type(int fd, uint8_t type, struct hxfr_msg *m, uint8_t **body, uint32_t *len,
                      bool skip_units)
{
    for (;;) {
        uint8_t *b = NULL;
        uint32_t l = 0;
        CHECK_EQ(hxfr_test_recv_msg(fd, 20000, m, &b, &l), 1);
        if (m->hdr.type == type) {
            if (body) {
                *body = b;
                *len = l;
            } else {
                free(b);
            }
            return;
        }
        free(b);
        if (!(skip_units && m->hdr.type == HXFR_MSG_FRAME_RESPONSE)) {
            FAIL("message 0x%02x, wanted 0x%02x", m->hdr.type, type);
        }
    }
}

/* A W x H B8G8R8X8 resource whose backing is PIECE-byte entries placed in
 * reverse order with a gap between them; frame index of the desktop
 * pattern in it. Returns the guest addresses of the pieces in *gpas. */
static void make_scattered(struct fq *q, uint32_t id, uint64_t index, uint64_t *gpas, unsigned *n)
{
    uint64_t bytes = (uint64_t)W * 4 * H;
    unsigned count = (unsigned)((bytes + PIECE - 1) / PIECE);
    uint64_t base = fq_alloc(q, (uint64_t)count * 2 * PIECE, 4096);
    for (unsigned i = 0; i < count; i++) {
        gpas[i] = base + (uint64_t)(count - 1 - i) * 2 * PIECE;
    }
    *n = count;
    CHECK_EQ(fq_create(q, id, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, W, H), VIRTIO_GPU_RESP_OK_NODATA);
    size_t len = 32 + 16 * (size_t)count;
    uint8_t *req = calloc(1, len);
    fq_hdr(req, VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING, 0, 0);
    wle32(req + 24, id);
    wle32(req + 28, count);
    for (unsigned i = 0; i < count; i++) {
        uint64_t left = bytes - (uint64_t)i * PIECE;
        wle64(req + 32 + 16 * i, gpas[i]);
        wle32(req + 40 + 16 * i, (uint32_t)(left < PIECE ? left : PIECE));
    }
    CHECK_EQ(fq_cmd_type(q, req, (uint32_t)len), VIRTIO_GPU_RESP_OK_NODATA);
    free(req);
}

/* Draws pattern frame index into the scattered backing. */
static void draw(struct fq *q, const uint64_t *gpas, unsigned n, uint64_t index)
{
    uint64_t bytes = (uint64_t)W * 4 * H;
    uint8_t *frame = malloc(bytes);
    uint8_t *planes[3] = {frame, NULL, NULL};
    uint32_t strides[3] = {W * 4, 0, 0};
    CHECK_EQ(hxfr_pattern_render(HXFR_PATTERN_DESKTOP, HXFR_FORMAT_XRGB8888, W, H, index, planes,
                                 strides),
             0);
    for (unsigned i = 0; i < n; i++) {
        uint64_t off = (uint64_t)i * PIECE, left = bytes - off;
        memcpy(fq_ptr(q, gpas[i]), frame + off, left < PIECE ? left : PIECE);
    }
    free(frame);
}

/* Decodes a FRAME_RESPONSE's units (after its fixed part: one u32 size
 * and the whole access unit, as libhxfr-host sends it) and compares with
 * pattern frame index. */
static double decode_psnr(struct hxfr_avcheck *av, const uint8_t *body, uint32_t len,
                          uint64_t index)
{
    CHECK(len >= 4 && le32(body) == len - 4);
    CHECK_EQ(hxfr_avcheck_decode_au(av, body + 4, len - 4), 1);
    double all = 0;
    CHECK_EQ(hxfr_avcheck_psnr_pattern(hxfr_avcheck_last(av), HXFR_PATTERN_DESKTOP,
                                       HXFR_FORMAT_XRGB8888, index, NULL, &all),
             0);
    return all;
}

static void frame_request(int fd, uint32_t id)
{
    struct hxfr_msg m;
    memset(&m, 0, sizeof(m));
    m.hdr.type = HXFR_MSG_FRAME_REQUEST;
    m.u.frame_request = (struct hxfr_frame_request){.resource_id = id,
                                                    .width = W,
                                                    .height = H,
                                                    .format = HXFR_FORMAT_XRGB8888,
                                                    .stride = W * 4,
                                                    .pts = id};
    CHECK_EQ(hxfr_test_send_msg(fd, &m, NULL, 0), 0);
}

static void expect_error_code(int fd, int32_t code)
{
    struct hxfr_msg m;
    recv_type(fd, HXFR_MSG_ERROR, &m, NULL, NULL, false);
    if (m.u.error.code != code) {
        FAIL("ERROR %d (%s), wanted %d", m.u.error.code, m.u.error.message, code);
    }
}

/* Pull: FRAME_REQUEST(resource_id) without pixels is encoded from the
 * resource's scattered backing in guest RAM; an unknown id is
 * RESOURCE_NOT_FOUND, a resource without backing NO_SURFACE. */
TEST_T(pull_resource_from_guest_memory, 120)
{
    struct srv s;
    srv_start(&s, NULL);
    uint64_t gpas[64];
    unsigned n;
    make_scattered(&s.q, 5, 7, gpas, &n);
    draw(&s.q, gpas, n, 7);
    CHECK_EQ(fq_create(&s.q, 6, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, W, H), VIRTIO_GPU_RESP_OK_NODATA);
    int fd = hxfr_connect(&s);
    struct hxfr_avcheck *av = hxfr_avcheck_new(1);
    for (int i = 0; i < 2; i++) {
        frame_request(fd, 5);
        struct hxfr_msg m;
        uint8_t *body;
        uint32_t len;
        recv_type(fd, HXFR_MSG_FRAME_RESPONSE, &m, &body, &len, false);
        double p = decode_psnr(av, body, len, 7);
        free(body);
        printf("# pull frame %d: PSNR %.2f dB\n", i, p);
        CHECK(p >= 40.0);
    }
    frame_request(fd, 99);
    expect_error_code(fd, HXFR_STATUS_RESOURCE_NOT_FOUND);
    frame_request(fd, 6);
    expect_error_code(fd, HXFR_STATUS_NO_SURFACE);
    hxfr_avcheck_destroy(av);
    close(fd);
    srv_stop(&s);
}

static uint32_t flush_cmd(struct fq *q, uint32_t id, uint32_t x, uint32_t y, uint32_t w, uint32_t h)
{
    return fq_flush(q, id, x, y, w, h);
}

/* Push: scanout 0 is a scanout from boot (no ENABLE); without a
 * subscriber a flush costs nothing; a subscriber gets an IDR of what it
 * shows; a flush of a changed rectangle is pushed (only that rectangle
 * converted) and the guest's flush was held until the encoder read it;
 * the statistics say so. */
TEST_T(push_flushes_held_until_read, 120)
{
    struct srv s;
    srv_start(&s, NULL);
    uint64_t gpas[64];
    unsigned n;
    make_scattered(&s.q, 5, 1, gpas, &n);
    draw(&s.q, gpas, n, 1);
    CHECK_EQ(fq_set_scanout(&s.q, 0, 5, 0, 0, W, H), VIRTIO_GPU_RESP_OK_NODATA);
    CHECK_EQ(flush_cmd(&s.q, 5, 0, 0, W, H), VIRTIO_GPU_RESP_OK_NODATA);
    CHECK_EQ(fq_info_value(&s.q, "held"), 0); /* nobody watched: not held */

    int fd = hxfr_connect(&s);
    struct hxfr_msg m;
    memset(&m, 0, sizeof(m));
    m.hdr.type = HXFR_MSG_SUBSCRIBE;
    m.u.subscribe.scanout_id = 0;
    CHECK_EQ(hxfr_test_send_msg(fd, &m, NULL, 0), 0);
    recv_type(fd, HXFR_MSG_SUBSCRIBE_RESP, &m, NULL, NULL, false);
    CHECK_EQ(m.u.subscribe_resp.success, 1);
    struct hxfr_avcheck *av = hxfr_avcheck_new(1);
    uint8_t *body;
    uint32_t len;
    recv_type(fd, HXFR_MSG_FRAME_RESPONSE, &m, &body, &len, false);
    CHECK(m.u.frame_response.is_keyframe);
    CHECK(decode_psnr(av, body, len, 1) >= 40.0);
    free(body);

    /* The guest draws the next frames and flushes each whole. */
    for (uint64_t i = 2; i < 5; i++) {
        draw(&s.q, gpas, n, i);
        CHECK_EQ(flush_cmd(&s.q, 5, 0, 0, W, H), VIRTIO_GPU_RESP_OK_NODATA);
        recv_type(fd, HXFR_MSG_FRAME_RESPONSE, &m, &body, &len, true);
        /* Keepalives may come between; the pushed frames show frame i. */
        double p = decode_psnr(av, body, len, i);
        free(body);
        printf("# pushed frame %llu: PSNR %.2f dB\n", (unsigned long long)i, p);
        CHECK(p >= 40.0);
    }
    CHECK(fq_info_value(&s.q, "held") >= 3);
    hxfr_avcheck_destroy(av);
    close(fd);
    /* The statistics (every second): flushes, encodes, latency, no copy. */
    char path[200];
    snprintf(path, sizeof(path), "%s/hxfr-gpu.log", s.q.dir);
    char *log = NULL;
    for (int i = 0; i < 100; i++) {
        free(log);
        log = hxfr_test_slurp(path, NULL);
        if (log && strstr(log, "stats gpu flush latency:")) {
            break;
        }
        usleep(100000);
    }
    if (!log || !strstr(log, "stats gpu:") || !strstr(log, " 0 whole-frame copies") ||
        !strstr(log, "stats gpu flush latency:")) {
        FAIL("statistics lines missing:\n%s", log ? log : "(no log)");
    }
    for (char *line = strtok(log, "\n"); line; line = strtok(NULL, "\n")) {
        if (strstr(line, "stats gpu")) {
            printf("# %s\n", line);
        }
    }
    free(log);
    srv_stop(&s);
}

static void scanout_cmd(int fd, uint8_t type, uint32_t id, uint32_t w, uint32_t h)
{
    struct hxfr_msg m;
    memset(&m, 0, sizeof(m));
    m.hdr.type = type;
    if (type == HXFR_MSG_ENABLE_SCANOUT) {
        m.u.enable_scanout = (struct hxfr_enable_scanout){id, w, h, 60};
    } else {
        m.u.disable_scanout.scanout_id = id;
    }
    CHECK_EQ(hxfr_test_send_msg(fd, &m, NULL, 0), 0);
}

/* The connector state display info reports for scanout id. */
static bool connected(struct fq *q, uint32_t id, uint32_t *w, uint32_t *h)
{
    uint8_t req[24], resp[24 + 24 * 16];
    fq_hdr(req, VIRTIO_GPU_CMD_GET_DISPLAY_INFO, 0, 0);
    CHECK_EQ(fq_cmd(q, req, sizeof(req), resp, sizeof(resp)), sizeof(resp));
    const uint8_t *pm = resp + 24 + 24 * id;
    *w = le32(pm + 8);
    *h = le32(pm + 12);
    return le32(pm + 16) != 0;
}

/* Helix's flow against the device: ENABLE_SCANOUT 1 on a connection that
 * then closes hot-plugs Virtual-2 at the asked size; it stays; a
 * subscriber on another connection is accepted and gets what the guest
 * shows there; DISABLE_SCANOUT from a third connection unplugs it and is
 * answered. */
TEST_T(helix_enable_close_subscribe_disable, 120)
{
    struct srv s;
    srv_start(&s, NULL);
    uint32_t w, h;
    CHECK(!connected(&s.q, 1, &w, &h));
    int a = hxfr_connect(&s);
    scanout_cmd(a, HXFR_MSG_ENABLE_SCANOUT, 1, W, H);
    struct hxfr_msg m;
    recv_type(a, HXFR_MSG_SCANOUT_RESP, &m, NULL, NULL, false);
    CHECK_EQ(m.u.scanout_resp.success, 1);
    CHECK(strcmp(m.u.scanout_resp.connector, "Virtual-2") == 0);
    close(a);
    CHECK(connected(&s.q, 1, &w, &h));
    CHECK_EQ(w, W);
    CHECK_EQ(h, H);
    /* The guest modesets Virtual-2 and draws. */
    uint64_t gpas[64];
    unsigned n;
    make_scattered(&s.q, 9, 3, gpas, &n);
    draw(&s.q, gpas, n, 3);
    CHECK_EQ(fq_set_scanout(&s.q, 1, 9, 0, 0, W, H), VIRTIO_GPU_RESP_OK_NODATA);
    CHECK_EQ(flush_cmd(&s.q, 9, 0, 0, W, H), VIRTIO_GPU_RESP_OK_NODATA);

    int b = hxfr_connect(&s);
    memset(&m, 0, sizeof(m));
    m.hdr.type = HXFR_MSG_SUBSCRIBE;
    m.u.subscribe.scanout_id = 1;
    CHECK_EQ(hxfr_test_send_msg(b, &m, NULL, 0), 0);
    recv_type(b, HXFR_MSG_SUBSCRIBE_RESP, &m, NULL, NULL, false);
    CHECK_EQ(m.u.subscribe_resp.success, 1);
    uint8_t *body;
    uint32_t len;
    recv_type(b, HXFR_MSG_FRAME_RESPONSE, &m, &body, &len, false);
    struct hxfr_avcheck *av = hxfr_avcheck_new(1);
    CHECK(decode_psnr(av, body, len, 3) >= 40.0);
    free(body);

    int c = hxfr_connect(&s);
    scanout_cmd(c, HXFR_MSG_DISABLE_SCANOUT, 1, 0, 0);
    recv_type(c, HXFR_MSG_SCANOUT_RESP, &m, NULL, NULL, false);
    CHECK_EQ(m.u.scanout_resp.success, 1);
    CHECK(!connected(&s.q, 1, &w, &h));
    recv_type(b, HXFR_MSG_ERROR, &m, NULL, NULL, true);
    CHECK_EQ(m.u.error.code, HXFR_STATUS_NO_SCANOUT);
    /* A connector the device does not have is refused. */
    scanout_cmd(c, HXFR_MSG_ENABLE_SCANOUT, 16, W, H);
    recv_type(c, HXFR_MSG_SCANOUT_RESP, &m, NULL, NULL, false);
    CHECK_EQ(m.u.scanout_resp.success, 0);
    hxfr_avcheck_destroy(av);
    close(b);
    close(c);
    srv_stop(&s);
}
