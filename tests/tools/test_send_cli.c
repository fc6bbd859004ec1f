/* hxfr-send against a fake host (a thread speaking HXFR with lib/proto on a
 * UNIX socket in a temporary folder): option and source handling, the
 * pixels of y4m and raw sources arrive unchanged, host errors are shown
 * with code and message, a host that vanishes gives a clear error and a
 * non-zero exit without hanging. HXFR_SEND names the binary. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <sys/wait.h>
#include <unistd.h>

#include <hxfr/proto.h>

#include "harness.h"
#include "io.h"

static char tmpdir[64];

static void make_tmpdir(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/hxfr-send-test-XXXXXX");
    CHECK(mkdtemp(tmpdir) != NULL);
}

static void remove_tmpdir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    CHECK(system(cmd) == 0);
}

/* Runs hxfr-send with args; stdout and stderr go to files in tmpdir whose
 * contents are returned (malloc'd). Returns the exit status. */
static int run_send(const char *const *args, char **out, char **err)
{
    const char *bin = getenv("HXFR_SEND");
    CHECK(bin != NULL);
    const char *argv[32] = {bin};
    int n = 1;
    for (int i = 0; args[i] && n < 31; i++) {
        argv[n++] = args[i];
    }
    argv[n] = NULL;
    /* In tmpdir: a run without --output writes out.h264 there. */
    int status = hxfr_test_run_capture(argv, tmpdir, out, err);
    CHECK(status >= 0);
    CHECK(*out != NULL && *err != NULL);
    fprintf(stderr, "# stderr: %s", *err);
    return status;
}

/* ---- the fake host ---------------------------------------------------- */

struct fake {
    int listen_fd;
    char uri[128];
    int error_at; /* answer this frame (0-based) with an ERROR; -1 none */
    int close_at; /* close the connection on receiving this frame; -1 none */
    int frames;   /* frames received */
    uint32_t width, height, format, stride;
    uint8_t *pixels; /* all received pixel bytes, concatenated */
    size_t pixels_len;
    size_t pixels_cap;
    pthread_t thread;
};

static void send_msg(int fd, struct hxfr_msg *m, const uint8_t *body, uint32_t blen)
{
    uint8_t buf[HXFR_HEADER_SIZE + HXFR_MAX_FIXED_SIZE];
    int n = hxfr_msg_encode(m, blen, buf, sizeof(buf));
    if (n < 0 || write(fd, buf, (size_t)n) != n ||
        (blen && write(fd, body, blen) != (ssize_t)blen)) {
        fprintf(stderr, "fake host: write failed\n");
    }
}

static void *fake_main(void *arg)
{
    struct fake *f = arg;
    int fd = accept(f->listen_fd, NULL, NULL);
    if (fd < 0) {
        return NULL;
    }
    for (;;) {
        uint8_t hdr[HXFR_HEADER_SIZE];
        if (hxfr_test_read_full(fd, hdr, sizeof(hdr)) < 0) {
            break;
        }
        struct hxfr_header h;
        hxfr_header_decode(hdr, &h);
        if (hxfr_header_validate(&h, 0) < 0) {
            break;
        }
        uint8_t *payload = malloc(h.payload_size + 1u);
        if (hxfr_test_read_full(fd, payload, h.payload_size) < 0) {
            free(payload);
            break;
        }
        struct hxfr_msg m, r = {0};
        int fixed = hxfr_msg_fixed_size(h.type);
        hxfr_msg_decode(&h, payload, (size_t)fixed, &m);
        if (h.type == HXFR_MSG_HELLO) {
            r.hdr.type = HXFR_MSG_HELLO_RESP;
            r.u.hello.version = 1;
            r.u.hello.caps = HXFR_CAP_CONFIG_GOP;
            send_msg(fd, &r, NULL, 0);
        } else if (h.type == HXFR_MSG_CONFIG_REQ) {
            r.hdr.type = HXFR_MSG_CONFIG_RESP;
            r.u.config_resp.width = m.u.config_req.width;
            r.u.config_resp.height = m.u.config_req.height;
            snprintf(r.u.config_resp.encoder, sizeof(r.u.config_resp.encoder), "fake");
            send_msg(fd, &r, NULL, 0);
        } else if (h.type == HXFR_MSG_FRAME_REQUEST) {
            const struct hxfr_frame_request *q = &m.u.frame_request;
            if (f->frames == f->close_at) {
                free(payload);
                break;
            }
            f->width = q->width;
            f->height = q->height;
            f->format = q->format;
            f->stride = q->stride;
            uint32_t blen = h.payload_size - (uint32_t)fixed;
            if (f->pixels_len + blen > f->pixels_cap) {
                f->pixels_cap = (f->pixels_len + blen) * 2;
                f->pixels = realloc(f->pixels, f->pixels_cap);
            }
            memcpy(f->pixels + f->pixels_len, payload + fixed, blen);
            f->pixels_len += blen;
            if (f->frames == f->error_at) {
                hxfr_msg_error(&r, 0, HXFR_STATUS_ENCODE_FAILED, "fake encoder refused %d",
                               f->frames);
                send_msg(fd, &r, NULL, 0);
            } else {
                uint8_t body[4 + 6] = {6, 0, 0, 0, 0, 0, 0, 1, 0x65, (uint8_t)f->frames};
                r.hdr.type = HXFR_MSG_FRAME_RESPONSE;
                r.u.frame_response.pts = q->pts;
                r.u.frame_response.is_keyframe = f->frames == 0 || q->force_keyframe;
                r.u.frame_response.nal_count = 1;
                send_msg(fd, &r, body, sizeof(body));
            }
            f->frames++;
        } else if (h.type == HXFR_MSG_PING) {
            r.hdr.type = HXFR_MSG_PONG;
            send_msg(fd, &r, NULL, 0);
        }
        free(payload);
    }
    close(fd);
    return NULL;
}

static void fake_start(struct fake *f, int error_at, int close_at)
{
    memset(f, 0, sizeof(*f));
    f->error_at = error_at;
    f->close_at = close_at;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/fake.sock", tmpdir);
    snprintf(f->uri, sizeof(f->uri), "unix:%s", sa.sun_path);
    f->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(bind(f->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    CHECK(listen(f->listen_fd, 2) == 0);
    CHECK(pthread_create(&f->thread, NULL, fake_main, f) == 0);
}

static void fake_stop(struct fake *f)
{
    pthread_join(f->thread, NULL);
    close(f->listen_fd);
}

static long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

/* ---- tests ------------------------------------------------------------ */

TEST(help_and_usage_errors)
{
    make_tmpdir();
    char *out, *err;
    const char *help[] = {"--help", NULL};
    CHECK_EQ(run_send(help, &out, &err), 0);
    const char *opts[] = {
        "--connect", "--source", "--size",    "--fps",  "--frames",    "--window",   "--output",
        "--json",    "--format", "--bitrate", "--gop",  "--reconnect", "--duration", "--session",
        "y4m:",      "raw:",     "pattern",   "vsock:", "serial:",     "tcp:"};
    for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
        if (!strstr(out, opts[i])) {
            FAIL("--help does not mention %s", opts[i]);
        }
    }
    free(out);
    free(err);
    const char *noconnect[] = {"--frames", "3", NULL};
    CHECK_EQ(run_send(noconnect, &out, &err), 2);
    CHECK(strstr(err, "--connect") != NULL);
    free(out);
    free(err);
    const char *badsize[] = {"--connect", "unix:/nonexistent", "--size", "12x", NULL};
    CHECK_EQ(run_send(badsize, &out, &err), 2);
    CHECK(strstr(err, "--size") != NULL);
    free(out);
    free(err);
    const char *badfmt[] = {"--connect", "unix:/nonexistent", "--format", "YUY2", NULL};
    CHECK_EQ(run_send(badfmt, &out, &err), 2);
    free(out);
    free(err);
    const char *badsrc[] = {"--connect", "unix:/nonexistent", "--source", "pattern:nope", NULL};
    CHECK_EQ(run_send(badsrc, &out, &err), 2);
    CHECK(strstr(err, "pattern") != NULL);
    free(out);
    free(err);
    remove_tmpdir();
}

TEST(no_host_is_a_clear_error)
{
    make_tmpdir();
    char *out, *err, uri[128];
    snprintf(uri, sizeof(uri), "unix:%s/none.sock", tmpdir);
    const char *args[] = {"--connect", uri, "--frames", "3", NULL};
    CHECK_EQ(run_send(args, &out, &err), 1);
    CHECK(strstr(err, "cannot connect") != NULL);
    CHECK(strstr(err, "No such file") != NULL);
    free(out);
    free(err);
    remove_tmpdir();
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    CHECK_EQ(fwrite(data, 1, len, f), len);
    fclose(f);
}

/* A y4m file's planes reach the host byte for byte, as I420. */
TEST(y4m_source)
{
    make_tmpdir();
    enum { W = 32, H = 16, N = 5, FRAME = W * H * 3 / 2 };
    char path[128];
    snprintf(path, sizeof(path), "%s/in.y4m", tmpdir);
    static uint8_t file[128 + N * (6 + FRAME)];
    static uint8_t want[N * FRAME];
    size_t len = (size_t)sprintf((char *)file, "YUV4MPEG2 W%d H%d F25:1 Ip A1:1 C420jpeg\n", W, H);
    for (int i = 0; i < N; i++) {
        memcpy(file + len, "FRAME\n", 6);
        len += 6;
        for (int j = 0; j < FRAME; j++) {
            want[i * FRAME + j] = (uint8_t)(i * 7 + j);
        }
        memcpy(file + len, want + i * FRAME, FRAME);
        len += FRAME;
    }
    write_file(path, file, len);
    struct fake f;
    fake_start(&f, -1, -1);
    char src[160], outp[160];
    snprintf(src, sizeof(src), "y4m:%s", path);
    snprintf(outp, sizeof(outp), "%s/out.h264", tmpdir);
    const char *args[] = {"--connect", f.uri, "--source", src,  "--fps",  "0",
                          "--frames",  "100", "--output", outp, "--json", NULL};
    char *out, *err;
    CHECK_EQ(run_send(args, &out, &err), 0);
    fake_stop(&f);
    CHECK_EQ(f.frames, N);
    CHECK_EQ(f.format, HXFR_FORMAT_I420);
    CHECK_EQ(f.width, W);
    CHECK_EQ(f.stride, W);
    CHECK_EQ(f.pixels_len, sizeof(want));
    CHECK_MEM(f.pixels, want, sizeof(want));
    free(f.pixels);
    CHECK(strstr(out, "\"frames\": 5,") != NULL);
    CHECK_EQ(file_size(outp), N * 6); /* each fake AU is 6 bytes of Annex B */
    free(out);
    free(err);

    /* A y4m that is not 4:2:0, and one cut inside a frame. */
    len = (size_t)sprintf((char *)file, "YUV4MPEG2 W%d H%d C444\nFRAME\n", W, H);
    write_file(path, file, len);
    const char *args2[] = {"--connect", "unix:/nonexistent", "--source", src, NULL};
    CHECK_EQ(run_send(args2, &out, &err), 2);
    CHECK(strstr(err, "4:2:0") != NULL);
    free(out);
    free(err);
    len = (size_t)sprintf((char *)file, "YUV4MPEG2 W%d H%d C420p10\nFRAME\n", W, H);
    write_file(path, file, len);
    CHECK_EQ(run_send(args2, &out, &err), 2);
    CHECK(strstr(err, "4:2:0") != NULL);
    free(out);
    free(err);
    /* --size that contradicts the file. */
    len = (size_t)sprintf((char *)file, "YUV4MPEG2 W%d H%d\nFRAME\n", W, H);
    write_file(path, file, len);
    const char *args3[] = {"--connect", "unix:/nonexistent", "--source", src, "--size", "64x64",
                           NULL};
    CHECK_EQ(run_send(args3, &out, &err), 2);
    CHECK(strstr(err, "--size") != NULL);
    free(out);
    free(err);
    remove_tmpdir();
}

/* raw NV12 frames are sent as they are in the file. */
TEST(raw_source_nv12)
{
    make_tmpdir();
    enum { W = 16, H = 8, N = 3, FRAME = W * H * 3 / 2 };
    char path[128];
    snprintf(path, sizeof(path), "%s/in.nv12", tmpdir);
    static uint8_t data[N * FRAME];
    for (size_t i = 0; i < sizeof(data); i++) {
        data[i] = (uint8_t)(i * 13);
    }
    write_file(path, data, sizeof(data));
    struct fake f;
    fake_start(&f, -1, -1);
    char src[160], outp[160];
    snprintf(src, sizeof(src), "raw:%s", path);
    snprintf(outp, sizeof(outp), "%s/out.h264", tmpdir);
    const char *args[] = {"--connect", f.uri,    "--source", src,     "--format",
                          "NV12",      "--size", "16x8",     "--fps", "0",
                          "--output",  outp,     NULL};
    char *out, *err;
    CHECK_EQ(run_send(args, &out, &err), 0);
    fake_stop(&f);
    CHECK_EQ(f.frames, N);
    CHECK_EQ(f.format, HXFR_FORMAT_NV12);
    CHECK_EQ(f.pixels_len, sizeof(data));
    CHECK_MEM(f.pixels, data, sizeof(data));
    free(f.pixels);
    free(out);
    free(err);
    remove_tmpdir();
}

TEST(host_error_shown_with_code_and_message)
{
    make_tmpdir();
    struct fake f;
    fake_start(&f, 2, -1);
    char outp[160];
    snprintf(outp, sizeof(outp), "%s/out.h264", tmpdir);
    const char *args[] = {"--connect", f.uri, "--size",   "64x32", "--fps",  "0",
                          "--frames",  "6",   "--output", outp,    "--json", NULL};
    char *out, *err;
    CHECK_EQ(run_send(args, &out, &err), 1);
    fake_stop(&f);
    free(f.pixels);
    CHECK_EQ(f.frames, 6);
    CHECK(strstr(err, "ENCODE_FAILED") != NULL);
    CHECK(strstr(err, "(-5)") != NULL);
    CHECK(strstr(err, "fake encoder refused 2") != NULL);
    CHECK(strstr(out, "\"frames\": 5,") != NULL);
    CHECK(strstr(out, "\"errors\": 1,") != NULL);
    free(out);
    free(err);
    remove_tmpdir();
}

TEST(host_vanishes_mid_run)
{
    make_tmpdir();
    struct fake f;
    fake_start(&f, -1, 4);
    char outp[160];
    snprintf(outp, sizeof(outp), "%s/out.h264", tmpdir);
    const char *args[] = {"--connect", f.uri, "--size",   "64x32", "--fps", "200",
                          "--frames",  "50",  "--output", outp,    NULL};
    char *out, *err;
    CHECK_EQ(run_send(args, &out, &err), 1);
    fake_stop(&f);
    free(f.pixels);
    CHECK(strstr(err, "lost the host") != NULL);
    /* Every answer the host sent before it closed was written: 4 access
     * units of 6 bytes (none lost when the next write fails). */
    CHECK_EQ(file_size(outp), 4 * 6);
    free(out);
    free(err);
    remove_tmpdir();
}

/* A host that never completes the TCP handshake (its accept queue is full,
 * so the kernel drops our SYNs): --connect-timeout bounds the wait. */
TEST(connect_watchdog)
{
    make_tmpdir();
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    CHECK(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    CHECK(listen(lfd, 0) == 0);
    socklen_t sl = sizeof(sa);
    CHECK(getsockname(lfd, (struct sockaddr *)&sa, &sl) == 0);
    int fill[4];
    for (int i = 0; i < 4; i++) {
        fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        connect(fill[i], (struct sockaddr *)&sa, sizeof(sa));
    }
    char uri[64];
    snprintf(uri, sizeof(uri), "tcp:127.0.0.1:%u", (unsigned)ntohs(sa.sin_port));
    const char *args[] = {"--connect", uri, "--frames", "1", "--connect-timeout", "1", NULL};
    char *out, *err;
    CHECK_EQ(run_send(args, &out, &err), 1);
    CHECK(strstr(err, "did not answer while connecting") != NULL);
    free(out);
    free(err);
    for (int i = 0; i < 4; i++) {
        close(fill[i]);
    }
    close(lfd);
    remove_tmpdir();
}
