/* hxfr-gpu against a QEMU stand-in (fakeqemu.c): the vhost-user
 * conversation, the 2D commands, QEMU's display socket, the cursor,
 * hot-plug, reboot and the control socket. The hostile cases are in
 * test_gpu_hostile.c. Each test starts its own hxfr-gpu process. */
#include <fcntl.h>
#include <linux/virtio_gpu.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fakeqemu.h"
#include "gpucheck.h"
#include "harness.h"

#define VUGPU_CURSOR_POS      4
#define VUGPU_CURSOR_POS_HIDE 5
#define VUGPU_CURSOR_UPDATE   6
#define VUGPU_SCANOUT         7
#define VUGPU_UPDATE          8

/* A resource with backing in n pieces, filled with image seed. Returns
 * the backing's guest address. */
static uint64_t make_resource(struct fq *q, uint32_t id, uint32_t format, uint32_t w, uint32_t h,
                              unsigned pieces, unsigned seed)
{
    uint64_t bytes = (uint64_t)w * 4 * h;
    uint64_t gpa = fq_alloc(q, bytes, 4096);
    fill(fq_ptr(q, gpa), bytes, seed);
    CHECK_EQ(fq_create(q, id, format, w, h), VIRTIO_GPU_RESP_OK_NODATA);
    CHECK_EQ(fq_attach(q, id, gpa, bytes, pieces), VIRTIO_GPU_RESP_OK_NODATA);
    return gpa;
}

/* Waits for the next display message of type request (others skipped). */
static void display_expect(struct fq *q, uint32_t request, struct fq_dmsg *m)
{
    for (;;) {
        if (!fq_display_msg(q, m, 10000)) {
            FAIL("no display message %u within 10 s", request);
        }
        if (m->request == request) {
            return;
        }
        fq_dmsg_free(m);
    }
}

/* Reads updates for scanout 0 until every pixel of the w x h rectangle
 * at (x, y) has come (updates may overlap: damage is merged); checks each
 * update's pixels against expect (x8r8g8b8 rows of the whole scanout,
 * stride scan_w * 4). Returns the number of updates read. */
static unsigned display_updates(struct fq *q, uint32_t x, uint32_t y, uint32_t w, uint32_t h,
                                const uint8_t *expect, uint32_t scan_w)
{
    uint8_t *seen = calloc((size_t)w * h, 1);
    uint64_t covered = 0, want = (uint64_t)w * h;
    unsigned n = 0;
    while (covered < want) {
        struct fq_dmsg m;
        display_expect(q, VUGPU_UPDATE, &m);
        CHECK(m.size >= 20);
        uint32_t ux = le32(m.payload + 4), uy = le32(m.payload + 8);
        uint32_t uw = le32(m.payload + 12), uh = le32(m.payload + 16);
        CHECK_EQ(le32(m.payload), 0);
        CHECK_EQ(m.size, 20 + (uint64_t)uw * uh * 4);
        CHECK(ux >= x && uy >= y && ux + uw <= x + w && uy + uh <= y + h);
        for (uint32_t row = 0; row < uh; row++) {
            CHECK_MEM(m.payload + 20 + (uint64_t)row * uw * 4,
                      expect + ((uint64_t)(uy + row) * scan_w + ux) * 4, (size_t)uw * 4);
            uint8_t *s = seen + (uint64_t)(uy + row - y) * w + (ux - x);
            for (uint32_t i = 0; i < uw; i++) {
                covered += !s[i];
                s[i] = 1;
            }
        }
        n++;
        fq_dmsg_free(&m);
    }
    free(seen);
    return n;
}

/* Runs hxfr-gpu with args (NULL-terminated) and no QEMU; its stdout goes
 * into out (NUL-terminated), stderr is dropped. Returns the exit status,
 * or -1 if it did not exit. */
static int run_binary(const char *const *args, char *out, size_t outlen)
{
    const char *argv[16] = {fq_binary()};
    size_t n = 1;
    for (; args[n - 1] != NULL && n < 15; n++) {
        argv[n] = args[n - 1];
    }
    argv[n] = NULL;
    int p[2];
    CHECK(pipe(p) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(p[1], 1);
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 2);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(p[1]);
    size_t got = 0;
    ssize_t r;
    while ((r = read(p[0], out + got, outlen - 1 - got)) > 0) {
        got += (size_t)r;
    }
    out[got] = '\0';
    close(p[0]);
    int st;
    CHECK(waitpid(pid, &st, 0) == pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

TEST(print_capabilities)
{
    char buf[256];
    /* The conventions: --print-capabilities ignores every other option. */
    const char *args[] = {"--print-capabilities", "--bogus-option", "--size", "0x0", NULL};
    CHECK_EQ(run_binary(args, buf, sizeof(buf)), 0);
    CHECK(strstr(buf, "\"type\": \"gpu\"") != NULL);
    CHECK(strstr(buf, "\"features\"") != NULL);
}

TEST(option_values_are_checked)
{
    /* Each of these is a usage error (status 2) before anything starts;
     * the sockets named do not exist, nothing is created. */
    static const char *const bad[][5] = {
        {"--fd", "-1", NULL},
        {"--fd", "3x", NULL},
        {"--socket-path", "/nonexistent/x.sock", "--fd", "3", NULL},
        {"--max-outputs", "0", NULL},
        {"--max-outputs", "17", NULL},
        {"--size", "0x600", NULL},
        {"--size", "1920x", NULL},
        {"--size", "1920x-1", NULL},
        {"--size", "8193x100", NULL},
        {"--max-resource-memory", "0", NULL},
        {"--max-resource-memory", "-5M", NULL},
        {"--max-resource-memory", "5X", NULL},
        {"--max-resource-memory", "99999999999G", NULL},
        {"--ready-fd", "", NULL},
        {"stray-argument", NULL},
    };
    char buf[64];
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *args[8];
        unsigned n = 0;
        if (strcmp(bad[i][0], "--fd") != 0) {
            args[n++] = "--fd";
            args[n++] = "1000";
        }
        for (unsigned k = 0; bad[i][k] != NULL; k++) {
            args[n++] = bad[i][k];
        }
        args[n] = NULL;
        if (run_binary(args, buf, sizeof(buf)) != 2) {
            FAIL("case %u (%s %s): not refused as a usage error", i, bad[i][0],
                 bad[i][1] ? bad[i][1] : "");
        }
    }
    /* Good values get past parsing: --fd 1000 is then not a socket (1). */
    const char *good[] = {"--fd",   "1000",      "--max-outputs",         "16",
                          "--size", "5120x2880", "--max-resource-memory", "1G",
                          NULL};
    CHECK_EQ(run_binary(good, buf, sizeof(buf)), 1);
}

TEST(display_info_and_config)
{
    struct fq q;
    fq_start(&q, NULL, 0);
    uint8_t req[24], resp[24 + 24 * 16];
    fq_hdr(req, VIRTIO_GPU_CMD_GET_DISPLAY_INFO, 0, 0);
    CHECK_EQ(fq_cmd(&q, req, sizeof(req), resp, sizeof(resp)), sizeof(resp));
    CHECK_EQ(le32(resp), VIRTIO_GPU_RESP_OK_DISPLAY_INFO);
    /* Every byte written: no 0xaa left from the harness's prefill. */
    for (size_t i = 0; i < sizeof(resp); i++) {
        CHECK(resp[i] != 0xaa);
    }
    CHECK_EQ(le32(resp + 24 + 8), 1920);
    CHECK_EQ(le32(resp + 24 + 12), 1080);
    CHECK_EQ(le32(resp + 24 + 16), 1); /* enabled */
    for (int i = 1; i < 16; i++) {
        for (int j = 0; j < 24; j++) {
            CHECK_EQ(resp[24 + 24 * i + j], 0);
        }
    }
    fq_stop_clean(&q);
}

static void check_edid(const uint8_t *e, uint32_t size, uint32_t w, uint32_t h)
{
    static const uint8_t magic[8] = {0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0};
    CHECK_EQ(size, 256);
    CHECK_MEM(e, magic, 8);
    for (int b = 0; b < 2; b++) {
        uint8_t sum = 0;
        for (int i = 0; i < 128; i++) {
            sum = (uint8_t)(sum + e[128 * b + i]);
        }
        CHECK_EQ(sum, 0);
    }
    CHECK_EQ(e[18], 1);
    CHECK_EQ(e[19], 4);
    CHECK_EQ(e[126], 1);
    CHECK_EQ(e[128], 0x70); /* DisplayID extension */
    uint32_t dtd_w = e[56] | (e[58] >> 4) << 8, dtd_h = e[59] | (e[61] >> 4) << 8;
    if (w <= 4095 && h <= 4095) {
        CHECK_EQ(dtd_w, w);
        CHECK_EQ(dtd_h, h);
    } else {
        CHECK(dtd_w < w && dtd_h < h);
    }
    /* The DisplayID section checksum, and its first timing: the
     * preferred mode at 60 Hz unless the base block already has it. */
    const uint8_t *sec = e + 129;
    uint8_t sum = 0;
    for (unsigned i = 0; i < 5u + sec[1]; i++) {
        sum = (uint8_t)(sum + sec[i]);
    }
    CHECK_EQ(sum, 0);
    CHECK_EQ(sec[4], 0x03);
    bool found = false;
    for (unsigned t = 0; t < sec[6] / 20u; t++) {
        const uint8_t *d = sec + 7 + 20 * t;
        uint32_t tw = (d[4] | d[5] << 8) + 1u, th = (d[12] | d[13] << 8) + 1u;
        found |= tw == 5120 && th == 2880;
        if (t == 0 && (w > 4095 || h > 4095)) {
            CHECK_EQ(tw, w);
            CHECK_EQ(th, h);
            CHECK(d[3] & 0x80); /* preferred */
        }
    }
    CHECK(found || (w == 5120 && h == 2880));
}

TEST(edid)
{
    const char *args[] = {"--size", "1280x800", NULL};
    struct fq q;
    fq_start(&q, args, 0);
    uint8_t req[32], resp[24 + 8 + 1024];
    fq_hdr(req, VIRTIO_GPU_CMD_GET_EDID, VIRTIO_GPU_FLAG_FENCE, 77);
    wle32(req + 24, 0);
    wle32(req + 28, 0);
    CHECK_EQ(fq_cmd(&q, req, sizeof(req), resp, sizeof(resp)), sizeof(resp));
    CHECK_EQ(le32(resp), VIRTIO_GPU_RESP_OK_EDID);
    CHECK_EQ(le64(resp + 8), 77);
    check_edid(resp + 32, le32(resp + 24), 1280, 800);
    for (size_t i = 32 + 256; i < sizeof(resp); i++) {
        CHECK_EQ(resp[i], 0); /* the rest of the 1024 bytes: zeroed, not heap */
    }
    /* A 5K monitor: too wide for the base block's timing. */
    char *ok = fq_control(&q, "scanout 1 5120x2880", NULL);
    CHECK(strcmp(ok, "ok\n") == 0);
    free(ok);
    wle32(req + 24, 1);
    CHECK_EQ(fq_cmd(&q, req, sizeof(req), resp, sizeof(resp)), sizeof(resp));
    check_edid(resp + 32, le32(resp + 24), 5120, 2880);
    fq_stop_clean(&q);
}

TEST(frame_reaches_qemu_display)
{
    struct fq q;
    fq_start(&q, NULL, 0);
    const uint32_t w = 1920, h = 1080;
    uint64_t gpa = make_resource(&q, 7, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, w, h, 17, 1);
    CHECK_EQ(fq_transfer(&q, 7, 0, 0, w, h, 0), VIRTIO_GPU_RESP_OK_NODATA);
    CHECK_EQ(fq_set_scanout(&q, 0, 7, 0, 0, w, h), VIRTIO_GPU_RESP_OK_NODATA);
    CHECK_EQ(fq_flush(&q, 7, 0, 0, w, h), VIRTIO_GPU_RESP_OK_NODATA);
    struct fq_dmsg m;
    display_expect(&q, VUGPU_SCANOUT, &m);
    CHECK_EQ(m.size, 12);
    CHECK_EQ(le32(m.payload), 0);
    CHECK_EQ(le32(m.payload + 4), w);
    CHECK_EQ(le32(m.payload + 8), h);
    fq_dmsg_free(&m);
    /* B8G8R8X8 is QEMU's x8r8g8b8: the pixels pass unchanged. */
    unsigned n = display_updates(&q, 0, 0, w, h, fq_ptr(&q, gpa), w);
    CHECK(n >= 2); /* 8 MiB comes in bands of at most 4 MiB */

    /* The in-place view and the host copy through the control socket. */
    size_t len;
    char *s = fq_control(&q, "resource 7", NULL);
    CHECK(strstr(s, "1920x1080") != NULL && strstr(s, "pieces ") != NULL);
    free(s);
    char *d = fq_control(&q, "read 7 inplace", &len);
    char *nl = strchr(d, '\n');
    CHECK_EQ(len - (size_t)(nl + 1 - d), (uint64_t)w * h * 4);
    CHECK_MEM(nl + 1, fq_ptr(&q, gpa), (size_t)w * h * 4);
    free(d);
    d = fq_control(&q, "read 7 copy", &len);
    nl = strchr(d, '\n');
    CHECK_MEM(nl + 1, fq_ptr(&q, gpa), (size_t)w * h * 4);
    free(d);
    fq_stop_clean(&q);
}

TEST(partial_transfer_and_flush)
{
    struct fq q;
    fq_start(&q, NULL, 0);
    const uint32_t w = 640, h = 360;
    uint64_t gpa = make_resource(&q, 3, VIRTIO_GPU_FORMAT_B8G8R8A8_UNORM, w, h, 5, 2);
    CHECK_EQ(fq_set_scanout(&q, 0, 3, 0, 0, w, h), VIRTIO_GPU_RESP_OK_NODATA);
    /* Before any transfer the host copy is zero: the first update is. */
    uint8_t *zero = calloc(1, (size_t)w * h * 4);
    struct fq_dmsg m;
    display_expect(&q, VUGPU_SCANOUT, &m);
    fq_dmsg_free(&m);
    display_updates(&q, 0, 0, w, h, zero, w);
    /* Transfer and flush a rectangle: the guest's offset names its first
     * pixel. Only that rectangle changes. */
    CHECK_EQ(fq_transfer(&q, 3, 100, 50, 300, 200, 50ull * w * 4 + 100 * 4),
             VIRTIO_GPU_RESP_OK_NODATA);
    CHECK_EQ(fq_flush(&q, 3, 100, 50, 300, 200), VIRTIO_GPU_RESP_OK_NODATA);
    uint8_t *expect = calloc(1, (size_t)w * h * 4);
    for (uint32_t y = 50; y < 250; y++) {
        memcpy(expect + ((uint64_t)y * w + 100) * 4,
               (uint8_t *)fq_ptr(&q, gpa) + ((uint64_t)y * w + 100) * 4, 300 * 4);
    }
    display_updates(&q, 100, 50, 300, 200, expect, w);
    size_t len;
    char *d = fq_control(&q, "read 3 copy", &len);
    CHECK_MEM(strchr(d, '\n') + 1, expect, (size_t)w * h * 4);
    free(d);
    free(zero);
    free(expect);
    fq_stop_clean(&q);
}

TEST(every_2d_format_reaches_qemu_as_xrgb)
{
    /* The byte order of each format in memory, as R, G, B positions. */
    static const struct {
        uint32_t fmt;
        int r, g, b;
    } f[] = {
        {VIRTIO_GPU_FORMAT_B8G8R8A8_UNORM, 2, 1, 0}, {VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, 2, 1, 0},
        {VIRTIO_GPU_FORMAT_A8R8G8B8_UNORM, 1, 2, 3}, {VIRTIO_GPU_FORMAT_X8R8G8B8_UNORM, 1, 2, 3},
        {VIRTIO_GPU_FORMAT_R8G8B8A8_UNORM, 0, 1, 2}, {VIRTIO_GPU_FORMAT_X8B8G8R8_UNORM, 3, 2, 1},
        {VIRTIO_GPU_FORMAT_A8B8G8R8_UNORM, 3, 2, 1}, {VIRTIO_GPU_FORMAT_R8G8B8X8_UNORM, 0, 1, 2},
    };
    struct fq q;
    fq_start(&q, NULL, 0);
    for (unsigned i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
        uint32_t id = 10 + i;
        uint64_t gpa = make_resource(&q, id, f[i].fmt, 4, 2, 1, 3 + i);
        CHECK_EQ(fq_transfer(&q, id, 0, 0, 4, 2, 0), VIRTIO_GPU_RESP_OK_NODATA);
        CHECK_EQ(fq_set_scanout(&q, 0, id, 0, 0, 4, 2), VIRTIO_GPU_RESP_OK_NODATA);
        const uint8_t *src = fq_ptr(&q, gpa);
        uint8_t expect[4 * 2 * 4];
        for (int p = 0; p < 8; p++) {
            expect[4 * p] = src[4 * p + f[i].b];
            expect[4 * p + 1] = src[4 * p + f[i].g];
            expect[4 * p + 2] = src[4 * p + f[i].r];
            expect[4 * p + 3] = (f[i].fmt == VIRTIO_GPU_FORMAT_B8G8R8A8_UNORM ||
                                 f[i].fmt == VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM)
                                    ? src[4 * p + 3]
                                    : 0xff;
        }
        struct fq_dmsg m;
        if (i == 0) {
            display_expect(&q, VUGPU_SCANOUT, &m);
            fq_dmsg_free(&m);
        }
        /* Binding it repaints all of it (a same-size rebind keeps QEMU's
         * surface), and so does the flush. */
        display_updates(&q, 0, 0, 4, 2, expect, 4);
        CHECK_EQ(fq_flush(&q, id, 0, 0, 4, 2), VIRTIO_GPU_RESP_OK_NODATA);
        display_updates(&q, 0, 0, 4, 2, expect, 4);
        char cmd[32];
        snprintf(cmd, sizeof(cmd), "resource %u", id);
        char *s = fq_control(&q, cmd, NULL);
        CHECK(strstr(s, "drm 0x") != NULL);
        free(s);
    }
    fq_stop_clean(&q);
}

TEST(cursor_image_and_position_per_scanout)
{
    struct fq q;
    fq_start(&q, NULL, 0);
    uint64_t gpa = make_resource(&q, 20, VIRTIO_GPU_FORMAT_B8G8R8A8_UNORM, 64, 64, 1, 9);
    CHECK_EQ(fq_transfer(&q, 20, 0, 0, 64, 64, 0), VIRTIO_GPU_RESP_OK_NODATA);
    uint8_t c[56] = {0};
    fq_hdr(c, VIRTIO_GPU_CMD_UPDATE_CURSOR, 0, 0);
    wle32(c + 24, 1);   /* scanout 1 */
    wle32(c + 28, 300); /* x */
    wle32(c + 32, 200); /* y */
    wle32(c + 40, 20);  /* resource */
    wle32(c + 44, 5);   /* hot x */
    wle32(c + 48, 6);   /* hot y */
    fq_cursor(&q, c, sizeof(c));
    struct fq_dmsg m;
    display_expect(&q, VUGPU_CURSOR_UPDATE, &m);
    CHECK_EQ(m.size, 20 + 64 * 64 * 4);
    CHECK_EQ(le32(m.payload), 1);
    CHECK_EQ(le32(m.payload + 4), 300);
    CHECK_EQ(le32(m.payload + 8), 200);
    CHECK_EQ(le32(m.payload + 12), 5);
    CHECK_EQ(le32(m.payload + 16), 6);
    CHECK_MEM(m.payload + 20, fq_ptr(&q, gpa), 64 * 64 * 4);
    fq_dmsg_free(&m);
    char *s = fq_control(&q, "cursor 1", NULL);
    CHECK(strstr(s, "visible 1 image 1 x 300 y 200 hot 5,6") != NULL);
    free(s);
    s = fq_control(&q, "cursor 0", NULL);
    CHECK(strstr(s, "visible 0 image 0") != NULL);
    free(s);
    /* Move, then hide. */
    fq_hdr(c, VIRTIO_GPU_CMD_MOVE_CURSOR, 0, 0);
    wle32(c + 28, 310);
    fq_cursor(&q, c, sizeof(c));
    display_expect(&q, VUGPU_CURSOR_POS, &m);
    CHECK_EQ(le32(m.payload), 1);
    CHECK_EQ(le32(m.payload + 4), 310);
    fq_dmsg_free(&m);
    fq_hdr(c, VIRTIO_GPU_CMD_UPDATE_CURSOR, 0, 0);
    wle32(c + 40, 0);
    fq_cursor(&q, c, sizeof(c));
    display_expect(&q, VUGPU_CURSOR_POS_HIDE, &m);
    CHECK_EQ(le32(m.payload), 1);
    fq_dmsg_free(&m);
    /* The image was copied: unref does not touch it. */
    CHECK_EQ(fq_unref(&q, 20), VIRTIO_GPU_RESP_OK_NODATA);
    s = fq_control(&q, "cursor 1", NULL);
    CHECK(strstr(s, "image 1") != NULL);
    free(s);
    fq_stop_clean(&q);
}

TEST(fence_and_ctx_echoed)
{
    struct fq q;
    fq_start(&q, NULL, 0);
    uint8_t req[40], resp[24];
    fq_hdr(req, VIRTIO_GPU_CMD_RESOURCE_CREATE_2D, VIRTIO_GPU_FLAG_FENCE, 0x1122334455667788ull);
    wle32(req + 16, 5); /* ctx_id */
    wle32(req + 24, 1);
    wle32(req + 28, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM);
    wle32(req + 32, 16);
    wle32(req + 36, 16);
    CHECK_EQ(fq_cmd(&q, req, sizeof(req), resp, sizeof(resp)), 24);
    CHECK_EQ(le32(resp), VIRTIO_GPU_RESP_OK_NODATA);
    CHECK_EQ(le32(resp + 4), VIRTIO_GPU_FLAG_FENCE);
    CHECK_EQ(le64(resp + 8), 0x1122334455667788ull);
    CHECK_EQ(le32(resp + 16), 5);
    CHECK_EQ(le32(resp + 20), 0);
    /* Without the flag, no fence in the reply. */
    fq_hdr(req, VIRTIO_GPU_CMD_RESOURCE_UNREF, 0, 99);
    wle32(req + 24, 1);
    wle32(req + 28, 0);
    CHECK_EQ(fq_cmd(&q, req, 32, resp, sizeof(resp)), 24);
    CHECK_EQ(le32(resp + 4), 0);
    CHECK_EQ(le64(resp + 8), 0);
    fq_stop_clean(&q);
}

/* Submits a command without waiting; its reply room (resp_cap bytes) is
 * at *resp_gpa. Returns the head. */
static uint16_t submit_cmd(struct fq *q, const uint8_t *req, uint32_t len, uint32_t resp_cap,
                           uint64_t *resp_gpa)
{
    uint64_t rq = fq_alloc(q, len, 8);
    *resp_gpa = fq_alloc(q, resp_cap, 8);
    memcpy(fq_ptr(q, rq), req, len);
    memset(fq_ptr(q, *resp_gpa), 0xaa, resp_cap);
    struct fq_seg segs[2] = {{rq, len, false}, {*resp_gpa, resp_cap, true}};
    return fq_submit(q, FQ_CTRL, segs, 2, false);
}

static uint16_t submit_fenced_flush(struct fq *q, uint32_t id, uint64_t fence, uint64_t *resp)
{
    uint8_t req[48];
    fq_hdr(req, VIRTIO_GPU_CMD_RESOURCE_FLUSH, VIRTIO_GPU_FLAG_FENCE, fence);
    wle32(req + 24, 0);
    wle32(req + 28, 0);
    wle32(req + 32, 64);
    wle32(req + 36, 64);
    wle32(req + 40, id);
    wle32(req + 44, 0);
    return submit_cmd(q, req, sizeof(req), 24, resp);
}

static void expect_used(struct fq *q, uint16_t head, uint32_t len)
{
    uint32_t id, got;
    if (!fq_wait_used(q, FQ_CTRL, &id, &got)) {
        FAIL("no answer for head %u", head);
    }
    CHECK_EQ(id, head);
    CHECK_EQ(got, len);
}

/* Until the device has held n flushes in all (a control round trip each:
 * the kick and the control socket are separate events of its loop). */
static void wait_held(struct fq *q, uint64_t n)
{
    while (fq_info_value(q, "held") < n) {
        usleep(1000);
    }
}

TEST(held_flush_answers_in_order_and_on_ring_stop)
{
    /* A flush listener that holds (the control socket's freeze, as an
     * encoder would) keeps the guest's RESOURCE_FLUSH and its fence
     * unanswered, and everything behind it on the control queue, while
     * the cursor queue goes on; its release answers both in order. A ring
     * stop answers a held flush before GET_VRING_BASE's reply. */
    struct fq q;
    fq_start(&q, NULL, 0);
    make_resource(&q, 1, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, 64, 64, 2, 1);
    CHECK_EQ(fq_set_scanout(&q, 0, 1, 0, 0, 64, 64), VIRTIO_GPU_RESP_OK_NODATA);
    free(fq_control(&q, "freeze", NULL));
    uint64_t r_flush, r_info;
    uint16_t h_flush = submit_fenced_flush(&q, 1, 0x77, &r_flush);
    uint8_t info_req[24];
    fq_hdr(info_req, VIRTIO_GPU_CMD_GET_DISPLAY_INFO, 0, 0);
    uint16_t h_info = submit_cmd(&q, info_req, sizeof(info_req), 24 + 24 * 16, &r_info);
    wait_held(&q, 1);
    CHECK(fq_used_empty(&q, FQ_CTRL));
    CHECK_EQ(fq_info_value(&q, "holds"), 1);
    uint8_t c[56] = {0};
    fq_hdr(c, VIRTIO_GPU_CMD_MOVE_CURSOR, 0, 0);
    fq_cursor(&q, c, sizeof(c)); /* the cursor queue is served */
    CHECK(fq_used_empty(&q, FQ_CTRL));
    free(fq_control(&q, "thaw", NULL));
    expect_used(&q, h_flush, 24);
    const uint8_t *rf = fq_ptr(&q, r_flush);
    CHECK_EQ(le32(rf), VIRTIO_GPU_RESP_OK_NODATA);
    CHECK_EQ(le32(rf + 4), VIRTIO_GPU_FLAG_FENCE);
    CHECK_EQ(le64(rf + 8), 0x77);
    expect_used(&q, h_info, 24 + 24 * 16);
    CHECK_EQ(le32(fq_ptr(&q, r_info)), VIRTIO_GPU_RESP_OK_DISPLAY_INFO);

    /* Held again, then QEMU stops the ring (a VM pause). */
    free(fq_control(&q, "freeze", NULL));
    h_flush = submit_fenced_flush(&q, 1, 0x78, &r_flush);
    wait_held(&q, 2);
    CHECK(fq_used_empty(&q, FQ_CTRL));
    uint32_t st[2] = {FQ_CTRL, 0};
    fq_send(&q, 11, 0, st, 8, NULL, 0); /* GET_VRING_BASE */
    uint32_t rep[2];
    CHECK_EQ(fq_recv(&q, 11, rep, sizeof(rep)), 8);
    CHECK_EQ(rep[1], q.ring[FQ_CTRL].avail_idx);
    CHECK(!fq_used_empty(&q, FQ_CTRL)); /* answered before the reply */
    expect_used(&q, h_flush, 24);
    CHECK_EQ(le64((const uint8_t *)fq_ptr(&q, r_flush) + 8), 0x78);
    free(fq_control(&q, "thaw", NULL)); /* its token is stale: harmless */
    /* The ring restarts where it stopped and serves again. */
    struct fq_ring *r = &q.ring[FQ_CTRL];
    uint32_t base[2] = {0, r->avail_idx};
    CHECK_EQ(fq_request_ack(&q, 10, base, 8, NULL, 0), 0);
    uint64_t v = 0;
    CHECK_EQ(fq_request_ack(&q, 12, &v, 8, &r->kick, 1), 0);
    fq_ping(&q);
    CHECK_EQ(fq_flush(&q, 1, 0, 0, 64, 64), VIRTIO_GPU_RESP_OK_NODATA); /* not held */
    fq_stop_clean(&q);
}

TEST(indirect_descriptors_and_split_buffers)
{
    struct fq q;
    fq_start(&q, NULL, 0);
    /* A GET_DISPLAY_INFO whose header is split over three buffers, in an
     * indirect table, with the reply in two buffers. */
    uint64_t a = fq_alloc(&q, 64, 8), b = fq_alloc(&q, 64, 8), c = fq_alloc(&q, 64, 8);
    uint64_t r1 = fq_alloc(&q, 100, 8), r2 = fq_alloc(&q, 400, 8);
    uint8_t hdr[24];
    fq_hdr(hdr, VIRTIO_GPU_CMD_GET_DISPLAY_INFO, 0, 0);
    memcpy(fq_ptr(&q, a), hdr, 5);
    memcpy(fq_ptr(&q, b), hdr + 5, 11);
    memcpy(fq_ptr(&q, c), hdr + 16, 8);
    struct fq_seg segs[5] = {
        {a, 5, false}, {b, 11, false}, {c, 8, false}, {r1, 100, true}, {r2, 308, true}};
    fq_submit(&q, FQ_CTRL, segs, 5, true);
    uint32_t id, len;
    CHECK(fq_wait_used(&q, FQ_CTRL, &id, &len));
    CHECK_EQ(len, 408);
    CHECK_EQ(le32(fq_ptr(&q, r1)), VIRTIO_GPU_RESP_OK_DISPLAY_INFO);
    CHECK_EQ(le32((uint8_t *)fq_ptr(&q, r1) + 24 + 8), 1920);
    /* The device set avail_event (event idx) to the next entry it wants. */
    const uint8_t *used = (uint8_t *)q.ram + q.ring[FQ_CTRL].used;
    CHECK_EQ(used[4 + 8 * 64] | used[5 + 8 * 64] << 8, q.ring[FQ_CTRL].avail_idx);
    fq_stop_clean(&q);
}

TEST(hotplug_and_resize_from_the_host)
{
    struct fq q;
    fq_start(&q, NULL, 0);
    char *s = fq_control(&q, "scanout 1 1280x720", NULL);
    CHECK(strcmp(s, "ok\n") == 0);
    free(s);
    s = fq_control(&q, "scanout 0 1024x768", NULL);
    CHECK(strcmp(s, "ok\n") == 0);
    free(s);
    /* The config space says a display event is pending. */
    uint8_t cfg[12 + 16] = {0};
    wle32(cfg + 4, 16);
    fq_send(&q, 24, 0, cfg, sizeof(cfg), NULL, 0);
    uint8_t reply[12 + 16];
    CHECK_EQ(fq_recv(&q, 24, reply, sizeof(reply)), sizeof(reply));
    CHECK_EQ(le32(reply + 12) & VIRTIO_GPU_EVENT_DISPLAY, VIRTIO_GPU_EVENT_DISPLAY);
    uint8_t req[24], resp[24 + 24 * 16];
    fq_hdr(req, VIRTIO_GPU_CMD_GET_DISPLAY_INFO, 0, 0);
    fq_cmd(&q, req, sizeof(req), resp, sizeof(resp));
    CHECK_EQ(le32(resp + 24 + 8), 1024);
    CHECK_EQ(le32(resp + 24 + 12), 768);
    CHECK_EQ(le32(resp + 48 + 0), 1024); /* side by side */
    CHECK_EQ(le32(resp + 48 + 8), 1280);
    CHECK_EQ(le32(resp + 48 + 12), 720);
    CHECK_EQ(le32(resp + 48 + 16), 1);
    /* The driver clears the event (QEMU writes the whole config). */
    uint8_t set[12 + 16] = {0};
    wle32(set + 4, 16);
    wle32(set + 12 + 4, VIRTIO_GPU_EVENT_DISPLAY);
    CHECK_EQ(fq_request_ack(&q, 25, set, sizeof(set), NULL, 0), 0);
    s = fq_control(&q, "scanout 1 off", NULL);
    CHECK(strcmp(s, "ok\n") == 0);
    free(s);
    fq_cmd(&q, req, sizeof(req), resp, sizeof(resp));
    CHECK_EQ(le32(resp + 48 + 16), 0);
    /* Out of range from the host side too. */
    s = fq_control(&q, "scanout 16 800x600", NULL);
    CHECK(strncmp(s, "error", 5) == 0);
    free(s);
    s = fq_control(&q, "scanout 0 9000x600", NULL);
    CHECK(strncmp(s, "error", 5) == 0);
    free(s);
    fq_stop_clean(&q);
}

TEST(guest_reboot_drops_old_state)
{
    struct fq q;
    fq_start(&q, NULL, 0);
    make_resource(&q, 1, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, 800, 600, 3, 4);
    CHECK_EQ(fq_set_scanout(&q, 0, 1, 0, 0, 800, 600), VIRTIO_GPU_RESP_OK_NODATA);
    CHECK_EQ(fq_info_value(&q, "resources"), 1);
    fq_reboot(&q);
    CHECK_EQ(fq_info_value(&q, "resources"), 0);
    CHECK_EQ(fq_info_value(&q, "resets") >= 1, 1);
    /* The rebooted guest's driver starts over on the new socket. */
    uint64_t gpa = make_resource(&q, 1, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, 640, 480, 2, 5);
    CHECK_EQ(fq_transfer(&q, 1, 0, 0, 640, 480, 0), VIRTIO_GPU_RESP_OK_NODATA);
    CHECK_EQ(fq_set_scanout(&q, 0, 1, 0, 0, 640, 480), VIRTIO_GPU_RESP_OK_NODATA);
    struct fq_dmsg m;
    display_expect(&q, VUGPU_SCANOUT, &m);
    CHECK_EQ(le32(m.payload + 4), 640);
    fq_dmsg_free(&m);
    display_updates(&q, 0, 0, 640, 480, fq_ptr(&q, gpa), 640);
    fq_stop_clean(&q);
}

TEST(vm_pause_keeps_state_and_repaints_new_socket)
{
    /* QEMU's "stop" closes the GPU socket and stops the rings; "cont"
     * sends a new socket and restarts them, without a device reset: the
     * guest's resources must survive and the new socket gets the picture. */
    struct fq q;
    fq_start(&q, NULL, 0);
    uint64_t gpa = make_resource(&q, 2, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, 320, 200, 2, 6);
    CHECK_EQ(fq_transfer(&q, 2, 0, 0, 320, 200, 0), VIRTIO_GPU_RESP_OK_NODATA);
    CHECK_EQ(fq_set_scanout(&q, 0, 2, 0, 0, 320, 200), VIRTIO_GPU_RESP_OK_NODATA);
    uint32_t st[2] = {0, 0};
    for (unsigned i = 0; i < 2; i++) {
        st[0] = i;
        fq_send(&q, 11, 0, st, 8, NULL, 0);
        uint32_t rep[2];
        CHECK_EQ(fq_recv(&q, 11, rep, sizeof(rep)), 8);
        CHECK_EQ(rep[0], i);
        CHECK_EQ(rep[1], q.ring[i].avail_idx); /* where the next start resumes */
    }
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    close(q.display);
    q.display = sv[0];
    CHECK_EQ(fq_request_ack(&q, 33, NULL, 0, &sv[1], 1), 0);
    close(sv[1]);
    /* Restart the control ring where it stopped. */
    struct fq_ring *r = &q.ring[FQ_CTRL];
    uint32_t base[2] = {0, r->avail_idx};
    CHECK_EQ(fq_request_ack(&q, 10, base, 8, NULL, 0), 0);
    uint64_t v = 0;
    CHECK_EQ(fq_request_ack(&q, 12, &v, 8, &r->kick, 1), 0);
    CHECK_EQ(fq_info_value(&q, "resources"), 1);
    struct fq_dmsg m;
    display_expect(&q, VUGPU_SCANOUT, &m);
    fq_dmsg_free(&m);
    display_updates(&q, 0, 0, 320, 200, fq_ptr(&q, gpa), 320);
    fq_ping(&q);
    fq_stop_clean(&q);
}

TEST(slow_qemu_display_never_blocks_the_queue)
{
    struct fq q;
    fq_start(&q, NULL, 0);
    const uint32_t w = 1920, h = 1080;
    uint64_t gpa = make_resource(&q, 5, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, w, h, 8, 7);
    CHECK_EQ(fq_set_scanout(&q, 0, 5, 0, 0, w, h), VIRTIO_GPU_RESP_OK_NODATA);
    /* QEMU reads nothing while the guest sends 200 full frames: every
     * command still completes (far more bytes than the socket holds). */
    for (unsigned i = 0; i < 200; i++) {
        ((uint8_t *)fq_ptr(&q, gpa))[(uint64_t)i * 4096] ^= 0x5a;
        CHECK_EQ(fq_transfer(&q, 5, 0, 0, w, h, 0), VIRTIO_GPU_RESP_OK_NODATA);
        CHECK_EQ(fq_flush(&q, 5, 0, 0, w, h), VIRTIO_GPU_RESP_OK_NODATA);
    }
    CHECK(fq_info_value(&q, "coalesced") > 0);
    /* Now QEMU reads: what arrives last is the current picture, in far
     * fewer updates than there were flushes. */
    uint8_t *last = malloc((size_t)w * h * 4);
    uint8_t *got = calloc(1, (size_t)w * h * 4);
    memcpy(last, fq_ptr(&q, gpa), (size_t)w * h * 4);
    unsigned updates = 0;
    struct fq_dmsg m;
    while (fq_display_msg(&q, &m, 1000)) {
        if (m.request == VUGPU_UPDATE) {
            uint32_t ux = le32(m.payload + 4), uy = le32(m.payload + 8);
            uint32_t uw = le32(m.payload + 12), uh = le32(m.payload + 16);
            for (uint32_t row = 0; row < uh; row++) {
                memcpy(got + ((uint64_t)(uy + row) * w + ux) * 4,
                       m.payload + 20 + (uint64_t)row * uw * 4, (size_t)uw * 4);
            }
            updates++;
        }
        fq_dmsg_free(&m);
    }
    CHECK(updates > 0 && updates < 50); /* 200 flushes of 2 bands each, merged */
    CHECK_MEM(got, last, (size_t)w * h * 4);
    free(last);
    free(got);
    fq_stop_clean(&q);
}

TEST(memory_table_change_resolves_backing_again)
{
    struct fq q;
    fq_start(&q, NULL, 0);
    uint64_t gpa = make_resource(&q, 4, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, 256, 256, 4, 8);
    /* The same RAM as two regions (as past 4 GiB), with new addresses for
     * our side: the backing is looked up again. */
    uint8_t mem[8 + 64] = {0};
    wle32(mem, 2);
    wle64(mem + 8, 0);
    wle64(mem + 16, FQ_RAM_SIZE / 2);
    wle64(mem + 24, q.uva_base);
    wle64(mem + 32, 0);
    wle64(mem + 40, FQ_RAM_SIZE / 2);
    wle64(mem + 48, FQ_RAM_SIZE / 2);
    wle64(mem + 56, q.uva_base + FQ_RAM_SIZE / 2);
    wle64(mem + 64, FQ_RAM_SIZE / 2);
    int fds[2] = {q.memfd, q.memfd};
    CHECK_EQ(fq_request_ack(&q, 5, mem, sizeof(mem), fds, 2), 0);
    size_t len;
    char *d = fq_control(&q, "read 4 inplace", &len);
    CHECK_MEM(strchr(d, '\n') + 1, fq_ptr(&q, gpa), 256 * 256 * 4);
    free(d);
    fq_ping(&q);
    fq_stop_clean(&q);
}

TEST(resource_memory_cap)
{
    const char *args[] = {"--max-resource-memory", "12M", NULL};
    struct fq q;
    fq_start(&q, args, 0);
    CHECK_EQ(fq_create(&q, 1, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, 1920, 1080),
             VIRTIO_GPU_RESP_OK_NODATA);
    CHECK_EQ(fq_create(&q, 2, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, 1920, 1080),
             VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY);
    CHECK_EQ(fq_unref(&q, 1), VIRTIO_GPU_RESP_OK_NODATA);
    CHECK_EQ(fq_create(&q, 2, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, 1920, 1080),
             VIRTIO_GPU_RESP_OK_NODATA);
    CHECK_EQ(fq_info_value(&q, "memory"), 1920ull * 1080 * 4 + 256);
    fq_stop_clean(&q);
}

TEST(unknown_feature_bits_and_batched_requests)
{
    struct fq q;
    /* RING_RESET (bit 40), which QEMU sets without it being offered. */
    fq_start(&q, NULL, 1ull << 40);
    fq_ping(&q);
    /* Ring set-up requests in one write, as several messages. */
    struct fq_ring *r = &q.ring[FQ_CURSOR];
    uint32_t st[2] = {FQ_CURSOR, 0};
    fq_send(&q, 11, 0, st, 8, NULL, 0);
    uint32_t rep[2];
    CHECK_EQ(fq_recv(&q, 11, rep, 8), 8);
    uint8_t batch[3 * 12 + 8 + 8 + 40] = {0};
    uint32_t h1[3] = {8, 1, 8}, h2[3] = {10, 1, 8}, h3[3] = {9, 1, 40};
    uint8_t *p = batch;
    memcpy(p, h1, 12);
    wle32(p + 12, FQ_CURSOR);
    wle32(p + 16, 16);
    p += 20;
    memcpy(p, h2, 12);
    wle32(p + 12, FQ_CURSOR);
    wle32(p + 16, r->avail_idx);
    p += 20;
    memcpy(p, h3, 12);
    wle32(p + 12, FQ_CURSOR);
    wle64(p + 12 + 8, q.uva_base + r->desc);
    wle64(p + 12 + 16, q.uva_base + r->used);
    wle64(p + 12 + 24, q.uva_base + r->avail);
    CHECK(write(q.sock, batch, sizeof(batch)) == (ssize_t)sizeof(batch));
    uint64_t v = FQ_CURSOR;
    CHECK_EQ(fq_request_ack(&q, 12, &v, 8, &r->kick, 1), 0);
    uint8_t c[56] = {0};
    fq_hdr(c, VIRTIO_GPU_CMD_MOVE_CURSOR, 0, 0);
    fq_cursor(&q, c, sizeof(c));
    fq_ping(&q);
    fq_stop_clean(&q);
}

TEST(sigterm_ends_it_cleanly)
{
    struct fq q;
    fq_start(&q, NULL, 0);
    make_resource(&q, 1, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, 64, 64, 2, 1);
    CHECK(kill(q.pid, SIGTERM) == 0);
    int st;
    CHECK(waitpid(q.pid, &st, 0) == q.pid);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    q.pid = 0;
    fq_stop(&q); /* closes and unmaps; the process is already gone */
}

TEST(exits_cleanly_with_state_when_qemu_goes)
{
    struct fq q;
    fq_start(&q, NULL, 0);
    for (uint32_t id = 1; id <= 20; id++) {
        make_resource(&q, id, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, 64 * id, 32, 2, id);
    }
    CHECK_EQ(fq_set_scanout(&q, 0, 3, 0, 0, 192, 32), VIRTIO_GPU_RESP_OK_NODATA);
    /* fq_stop_clean: exit status 0 (under ASan also no leak report). */
    fq_stop_clean(&q);
}
