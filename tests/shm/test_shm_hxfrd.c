/* Shared-memory frames against the real hxfrd: end to end with hxfr-send
 * (memfd over a UNIX socket, a configured file region over TCP: decodes,
 * PSNR against the pattern, no pixel byte copied), SLOT_RELEASE ordering,
 * and every HOSTILE.md "Shared memory and fds" case on a raw socket, with
 * the daemon's open descriptors counted before and after (no fd leak).
 * HXFRD and HXFR_SEND name the binaries. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hxfr/proto.h>
#include <hxfr/shm.h>

#include "avcheck.h"
#include "daemon.h"
#include "daemon_check.h"
#include "harness.h"
#include "io.h"
#include "hostutil.h"
#include "pattern.h"

#define W     320
#define H     240
#define SLOTS 4

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Open descriptors of process pid. */
static int count_fds(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%ld/fd", (long)pid);
    DIR *d = opendir(path);
    CHECK(d != NULL);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        n += e->d_name[0] != '.';
    }
    closedir(d);
    return n;
}

/* Waits (bounded) until the daemon has at most want fds open: a closed
 * client is reaped by the daemon's loop a moment after our close(). */
static int settle_fds(pid_t pid, int want)
{
    int n = count_fds(pid);
    for (int i = 0; i < 200 && n > want; i++) {
        sleep_ms(10);
        n = count_fds(pid);
    }
    return n;
}

/* A sealed (or not) memfd holding a ring of SLOTS slots for W x H BGRA. */
struct ring {
    int fd;
    uint8_t *base;
    size_t size;
    struct hxfr_shm_header h;
};

static void ring_make(struct ring *r, bool seal, uint32_t slots, uint64_t slot_bytes)
{
    CHECK_EQ(hxfr_shm_header_init(&r->h, slots, slot_bytes), 0);
    r->size = (size_t)hxfr_shm_ring_bytes(&r->h);
    r->fd = memfd_create("test-ring", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    CHECK(r->fd >= 0);
    CHECK_EQ(ftruncate(r->fd, (off_t)r->size), 0);
    if (seal) {
        CHECK_EQ(fcntl(r->fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW), 0);
    }
    r->base = mmap(NULL, r->size, PROT_READ | PROT_WRITE, MAP_SHARED, r->fd, 0);
    CHECK(r->base != MAP_FAILED);
    hxfr_shm_header_encode(r->base, &r->h);
}

static void ring_free(struct ring *r)
{
    munmap(r->base, r->size);
    close(r->fd);
}

static uint8_t *slot_ptr(struct ring *r, uint32_t slot)
{
    return r->base + r->h.data_offset + (uint64_t)slot * r->h.slot_size;
}

/* Sends an encoded message with nfds descriptors on its first byte. */
static int send_with_fds(int sock, const struct hxfr_msg *m, const int *fds, int nfds)
{
    uint8_t buf[HXFR_HEADER_SIZE + HXFR_MAX_FIXED_SIZE];
    int n = hxfr_msg_encode(m, 0, buf, sizeof(buf));
    CHECK(n > 0);
    struct iovec iov = {.iov_base = buf, .iov_len = (size_t)n};
    union {
        struct cmsghdr align;
        char c[CMSG_SPACE(sizeof(int) * 32)];
    } ctl;
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    if (nfds > 0) {
        memset(&ctl, 0, sizeof(ctl));
        mh.msg_control = ctl.c;
        mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
    }
    ssize_t w = sendmsg(sock, &mh, MSG_NOSIGNAL);
    return w == n ? 0 : -1;
}

static void attach_msg(struct hxfr_msg *m, uint16_t sid, bool fd, uint64_t offset, const char *name)
{
    memset(m, 0, sizeof(*m));
    m->hdr.type = HXFR_MSG_SHM_ATTACH;
    m->hdr.flags = fd ? HXFR_FLAG_SHM_FD : 0;
    m->hdr.session_id = sid;
    m->u.shm_attach.offset = offset;
    if (name) {
        snprintf(m->u.shm_attach.name, sizeof(m->u.shm_attach.name), "%s", name);
    }
}

/* Attaches r (memfd) on session sid and expects SHM_ATTACH_RESP. */
static void attach_ok(int sock, struct ring *r, uint16_t sid)
{
    struct hxfr_msg m;
    attach_msg(&m, sid, true, 0, NULL);
    CHECK_EQ(send_with_fds(sock, &m, &r->fd, 1), 0);
    CHECK_EQ(expect_msg(sock, HXFR_MSG_SHM_ATTACH_RESP, &m, NULL, NULL), 0);
    CHECK_EQ(m.hdr.session_id, sid);
    CHECK_EQ(m.u.shm_attach_resp.slot_count, r->h.slot_count);
    CHECK_EQ(m.u.shm_attach_resp.slot_size, r->h.slot_size);
}

static void attach_fails(int sock, struct ring *r, int nfds, uint64_t offset)
{
    struct hxfr_msg m;
    attach_msg(&m, 0, true, offset, NULL);
    int fds[32];
    for (int i = 0; i < nfds; i++) {
        fds[i] = r->fd;
    }
    CHECK_EQ(send_with_fds(sock, &m, fds, nfds), 0);
    CHECK_EQ(expect_error(sock, HXFR_STATUS_SHM), 0);
    CHECK_EQ(ping_ok(sock), 0);
}

static void shm_request(struct hxfr_msg *m, uint16_t sid, uint32_t slot, uint32_t w, uint32_t h,
                        uint32_t stride, int64_t pts)
{
    memset(m, 0, sizeof(*m));
    m->hdr.type = HXFR_MSG_FRAME_REQUEST;
    m->hdr.flags = HXFR_FLAG_SHM;
    m->hdr.session_id = sid;
    m->u.frame_request.resource_id = slot;
    m->u.frame_request.width = w;
    m->u.frame_request.height = h;
    m->u.frame_request.format = HXFR_FORMAT_ARGB8888;
    m->u.frame_request.stride = stride;
    m->u.frame_request.pts = pts;
}

/* Renders pattern frame index into slot (BGRA, tight stride). */
static void render_slot(struct ring *r, uint32_t slot, uint64_t index)
{
    uint8_t *planes[3] = {slot_ptr(r, slot), NULL, NULL};
    uint32_t strides[3] = {W * 4, 0, 0};
    CHECK_EQ(hxfr_pattern_render(HXFR_PATTERN_DESKTOP, HXFR_FORMAT_ARGB8888, W, H, index, planes,
                                 strides),
             0);
}

static int submit(int sock, uint32_t slot, int64_t pts)
{
    struct hxfr_msg m;
    shm_request(&m, 0, slot, W, H, W * 4, pts);
    return hxfr_test_send_msg(sock, &m, NULL, 0);
}

/* ---- End to end with hxfr-send ----------------------------------------- */

/* Runs hxfr-send with args (plus --output DIR/out.h264 --json); returns
 * its exit status and its stdout in *out (caller frees). */
static int run_send(const char *dir, const char *const *args, char **out)
{
    const char *bin = getenv("HXFR_SEND");
    CHECK(bin != NULL);
    char h264[320];
    snprintf(h264, sizeof(h264), "%s/out.h264", dir);
    const char *argv[40] = {bin, "--output", h264, "--json"};
    int n = 4;
    for (int i = 0; args[i] && n < 39; i++) {
        argv[n++] = args[i];
    }
    argv[n] = NULL;
    char *err = NULL;
    int status = hxfr_test_run_capture(argv, dir, out, &err);
    CHECK(status >= 0);
    CHECK(*out && err);
    fprintf(stderr, "# hxfr-send stderr:\n%s# stdout: %s", err, *out);
    free(err);
    return status;
}

/* The output decodes to frames frames, each within 35 dB of the pattern. */
static void check_output(const char *dir, unsigned frames, uint32_t format)
{
    char h264[320];
    snprintf(h264, sizeof(h264), "%s/out.h264", dir);
    size_t len;
    char *data = hxfr_test_slurp(h264, &len);
    CHECK(data != NULL);
    struct hxfr_avcheck *av = hxfr_avcheck_new(frames);
    CHECK(av != NULL);
    CHECK(hxfr_avcheck_feed(av, (const uint8_t *)data, len) >= 0);
    CHECK(hxfr_avcheck_finish(av) >= 0);
    CHECK_EQ(hxfr_avcheck_frame_count(av), frames);
    CHECK_EQ(hxfr_avcheck_idr_missing_params(av), 0);
    double worst = 1000;
    for (uint64_t i = 0; i < frames; i++) {
        const struct hxfr_avcheck_frame *f = hxfr_avcheck_frame(av, i);
        CHECK(f != NULL);
        double y, all;
        CHECK_EQ(hxfr_avcheck_psnr_pattern(f, HXFR_PATTERN_DESKTOP, format, i, &y, &all), 0);
        worst = all < worst ? all : worst;
    }
    fprintf(stderr, "# worst PSNR over %u frames: %.2f dB\n", frames, worst);
    CHECK(worst >= 35.0);
    hxfr_avcheck_destroy(av);
    free(data);
}

/* The disconnect line of every client says no pixel byte was copied. */
static void check_no_copies(struct hxfr_test_daemon *d)
{
    const char *log = hxfr_test_daemon_log(d);
    CHECK(strstr(log, "attached") != NULL);
    CHECK(hxfr_test_daemon_log_count(d, "disconnected") >= 1);
    CHECK_EQ(hxfr_test_daemon_log_count(d, "disconnected"),
             hxfr_test_daemon_log_count(d, ", 0 pixel bytes copied)"));
}

TEST_T(e2e_memfd_over_unix, 120)
{
    struct hxfr_test_daemon d;
    const char *dargs[] = {"--stats-interval", "1", NULL};
    daemon_start_ok(&d, HXFR_TEST_DAEMON_UNIX, dargs);
    char *out = NULL;
    const char *args[] = {"--connect", d.unix_uri, "--shm", "--size",    "640x360", "--fps",
                          "30",        "--frames", "40",    "--bitrate", "8M",      "--format",
                          "BGRx",      "--window", "3",     NULL};
    CHECK_EQ(run_send(d.dir, args, &out), 0);
    CHECK(strstr(out, "\"mode\": \"shm\"") != NULL);
    CHECK(strstr(out, "\"frame_bytes\": 921600") != NULL);
    CHECK(strstr(out, "\"shm_slots\": 3") != NULL);
    CHECK(strstr(out, "\"frames\": 40,") != NULL);
    free(out);
    check_output(d.dir, 40, HXFR_FORMAT_XRGB8888);
    /* Running >1 s at 30 fps: at least one stats line, with 0 copies and
     * the frames counted as shared-memory frames. */
    CHECK(hxfr_test_daemon_log_count(&d, "stats client") >= 1);
    CHECK(strstr(hxfr_test_daemon_log(&d), " 0 pixel bytes copied (client 0), ") != NULL);
    check_no_copies(&d);
    daemon_stop_clean(&d, NULL);
}

TEST_T(e2e_file_region_over_tcp, 120)
{
    struct hxfr_test_daemon d;
    char dir[] = "/tmp/hxfr-shm-region-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[128], arg[160];
    snprintf(path, sizeof(path), "%s/ivshmem", dir);
    int fd = open(path, O_RDWR | O_CREAT, 0600);
    CHECK(fd >= 0);
    CHECK_EQ(ftruncate(fd, 8 << 20), 0);
    close(fd);
    snprintf(arg, sizeof(arg), "vm0=%s", path);
    const char *dargs[] = {"--shm", arg, NULL};
    daemon_start_ok(&d, HXFR_TEST_DAEMON_TCP, dargs);
    char *out = NULL;
    /* The ring at 1 MiB into the region, NV12 frames. */
    const char *args[] = {
        "--connect", d.tcp_uri, "--shm-region", "vm0",   "--shm-path", path,       "--shm-offset",
        "1048576",   "--size",  "320x240",      "--fps", "0",          "--frames", "30",
        "--bitrate", "8M",      "--format",     "NV12",  NULL};
    CHECK_EQ(run_send(d.dir, args, &out), 0);
    CHECK(strstr(out, "\"mode\": \"shm-region\"") != NULL);
    free(out);
    check_output(d.dir, 30, HXFR_FORMAT_NV12);
    /* An unknown name and a region too small for the ring are refused. */
    const char *bad[] = {
        "--connect", d.tcp_uri, "--shm-region", "nope", "--shm-path", path, "--frames", "2", NULL};
    CHECK_EQ(run_send(d.dir, bad, &out), 1);
    free(out);
    const char *big[] = {"--connect", d.tcp_uri,   "--shm-region", "vm0", "--shm-path", path,
                         "--size",    "1920x1080", "--frames",     "2",   NULL};
    CHECK_EQ(run_send(d.dir, big, &out), 1);
    free(out);
    CHECK_EQ(hxfr_test_daemon_stop(&d), 0);
    check_no_copies(&d);
    CHECK_EQ(hxfr_test_daemon_unexpected_errors(&d, NULL), 0);
    hxfr_test_daemon_free(&d);
    unlink(path);
    rmdir(dir);
}

/* ---- Protocol behaviour on a raw socket -------------------------------- */

TEST_T(frames_from_slots_and_slot_release_order, 120)
{
    struct hxfr_test_daemon d;
    daemon_start_ok(&d, HXFR_TEST_DAEMON_UNIX, NULL);
    int sock = hxfr_test_daemon_connect(&d, false);
    CHECK(sock >= 0);
    struct hxfr_msg m;
    memset(&m, 0, sizeof(m));
    m.hdr.type = HXFR_MSG_HELLO;
    m.u.hello.version = 1;
    m.u.hello.caps = HXFR_CAP_SLOT_RELEASE | HXFR_CAP_SHM_FD;
    CHECK_EQ(hxfr_test_send_msg(sock, &m, NULL, 0), 0);
    CHECK_EQ(expect_msg(sock, HXFR_MSG_HELLO_RESP, &m, NULL, NULL), 0);
    CHECK_EQ(m.u.hello.caps, HXFR_CAP_SLOT_RELEASE | HXFR_CAP_SHM_FD);

    struct ring r;
    ring_make(&r, true, SLOTS, W * H * 4);
    attach_ok(sock, &r, 0);
    struct hxfr_avcheck *av = hxfr_avcheck_new(8);
    CHECK(av != NULL);
    /* 8 frames through the 4 slots, one at a time: each gets exactly one
     * SLOT_RELEASE (its slot) before its FRAME_RESPONSE. */
    for (uint32_t i = 0; i < 8; i++) {
        uint32_t slot = i % SLOTS;
        render_slot(&r, slot, i);
        CHECK_EQ(submit(sock, slot, 1000 + i), 0);
        CHECK_EQ(expect_msg(sock, HXFR_MSG_SLOT_RELEASE, &m, NULL, NULL), 0);
        CHECK_EQ(m.u.slot_release.slot, slot);
        uint8_t *au = NULL;
        size_t au_len = 0;
        CHECK_EQ(expect_msg(sock, HXFR_MSG_FRAME_RESPONSE, &m, &au, &au_len), 0);
        CHECK_EQ(m.u.frame_response.pts, 1000 + i);
        CHECK_EQ(hxfr_avcheck_decode_au(av, au, au_len), 1);
        free(au);
    }
    CHECK_EQ(hxfr_avcheck_frame_count(av), 8);
    double y, all;
    CHECK_EQ(hxfr_avcheck_psnr_pattern(hxfr_avcheck_last(av), HXFR_PATTERN_DESKTOP,
                                       HXFR_FORMAT_ARGB8888, 7, &y, &all),
             0);
    CHECK(all >= 35.0);
    hxfr_avcheck_destroy(av);
    close(sock);
    ring_free(&r);
    CHECK_EQ(hxfr_test_daemon_stop(&d), 0);
    check_no_copies(&d);
    hxfr_test_daemon_free(&d);
}

/* Without CAP_SLOT_RELEASE no SLOT_RELEASE is ever sent, and a slot stays
 * the host's until its response: submitting it again before is refused. */
TEST_T(slot_submitted_twice_and_no_release_without_cap, 120)
{
    struct hxfr_test_daemon d;
    daemon_start_ok(&d, HXFR_TEST_DAEMON_UNIX, NULL);
    int sock = hxfr_test_daemon_connect(&d, false);
    struct ring r;
    ring_make(&r, true, SLOTS, W * H * 4);
    attach_ok(sock, &r, 0);
    render_slot(&r, 2, 0);
    /* Both requests in one write: the second is parsed before the first
     * can possibly be answered. */
    struct hxfr_msg m;
    uint8_t two[2 * (HXFR_HEADER_SIZE + HXFR_FRAME_REQUEST_SIZE)];
    shm_request(&m, 0, 2, W, H, W * 4, 1);
    CHECK(hxfr_msg_encode(&m, 0, two, sizeof(two)) > 0);
    m.u.frame_request.pts = 2;
    CHECK(hxfr_msg_encode(&m, 0, two + sizeof(two) / 2, sizeof(two) / 2) > 0);
    CHECK_EQ(hxfr_test_send_all(sock, two, sizeof(two)), 0);
    /* Answers in request order (docs/protocol.md, "Answer order"): the
     * first frame's response, then the refusal, which was held back
     * until the frame before it was answered. */
    CHECK_EQ(expect_msg(sock, HXFR_MSG_FRAME_RESPONSE, &m, NULL, NULL), 0);
    CHECK_EQ(m.u.frame_response.pts, 1);
    CHECK_EQ(expect_error(sock, HXFR_STATUS_SHM), 0);
    /* Now it is the client's again. */
    CHECK_EQ(submit(sock, 2, 3), 0);
    CHECK_EQ(expect_msg(sock, HXFR_MSG_FRAME_RESPONSE, &m, NULL, NULL), 0);
    CHECK_EQ(ping_ok(sock), 0);
    close(sock);
    ring_free(&r);
    daemon_stop_clean(&d, NULL);
}

TEST_T(slot_index_and_size_checks, 120)
{
    struct hxfr_test_daemon d;
    daemon_start_ok(&d, HXFR_TEST_DAEMON_UNIX, NULL);
    int sock = hxfr_test_daemon_connect(&d, false);
    struct hxfr_msg m;

    /* No ring on the session yet. */
    CHECK_EQ(submit(sock, 0, 0), 0);
    CHECK_EQ(expect_error(sock, HXFR_STATUS_SHM), 0);

    struct ring r;
    ring_make(&r, true, SLOTS, W * H * 4);
    attach_ok(sock, &r, 0);
    /* The last slot works, one past it (and far past it) does not. */
    render_slot(&r, SLOTS - 1, 0);
    CHECK_EQ(submit(sock, SLOTS - 1, 0), 0);
    CHECK_EQ(expect_msg(sock, HXFR_MSG_FRAME_RESPONSE, &m, NULL, NULL), 0);
    CHECK_EQ(submit(sock, SLOTS, 0), 0);
    CHECK_EQ(expect_error(sock, HXFR_STATUS_SHM), 0);
    CHECK_EQ(submit(sock, UINT32_MAX, 0), 0);
    CHECK_EQ(expect_error(sock, HXFR_STATUS_SHM), 0);
    /* A frame larger than the slot (more rows), one larger by a stride. */
    shm_request(&m, 0, 0, W, H + 2, W * 4, 0);
    CHECK_EQ(hxfr_test_send_msg(sock, &m, NULL, 0), 0);
    CHECK_EQ(expect_error(sock, HXFR_STATUS_SHM), 0);
    shm_request(&m, 0, 0, W, H, W * 4 + 64, 0);
    CHECK_EQ(hxfr_test_send_msg(sock, &m, NULL, 0), 0);
    CHECK_EQ(expect_error(sock, HXFR_STATUS_SHM), 0);
    /* Geometry is checked like inline frames. */
    shm_request(&m, 0, 0, W, H, W * 4 - 4, 0);
    CHECK_EQ(hxfr_test_send_msg(sock, &m, NULL, 0), 0);
    CHECK_EQ(expect_error(sock, HXFR_STATUS_BAD_GEOMETRY), 0);
    shm_request(&m, 0, 0, 0xFFFFFFF0u, 0xFFFFFFF0u, 0xFFFFFFF0u, 0);
    CHECK_EQ(hxfr_test_send_msg(sock, &m, NULL, 0), 0);
    CHECK_EQ(expect_error(sock, HXFR_STATUS_TOO_LARGE), 0);
    /* Another session has no ring. */
    shm_request(&m, 5, 0, W, H, W * 4, 0);
    CHECK_EQ(hxfr_test_send_msg(sock, &m, NULL, 0), 0);
    CHECK_EQ(expect_error(sock, HXFR_STATUS_SHM), 0);
    /* PIXEL_DATA and SHM together is a framing error. */
    shm_request(&m, 0, 0, W, H, W * 4, 0);
    m.hdr.flags |= HXFR_FLAG_PIXEL_DATA;
    uint8_t buf[HXFR_HEADER_SIZE + HXFR_FRAME_REQUEST_SIZE + 4];
    CHECK_EQ(hxfr_msg_encode(&m, 0, buf, sizeof(buf)), -HXFR_EFLAGS);
    CHECK_EQ(ping_ok(sock), 0);
    close(sock);
    ring_free(&r);
    daemon_stop_clean(&d, NULL);
}

/* The guest rewrites the header after attaching: the host keeps using the
 * copy it validated (4 slots), whatever the shared header says now. */
TEST_T(header_rewritten_after_attach, 120)
{
    struct hxfr_test_daemon d;
    daemon_start_ok(&d, HXFR_TEST_DAEMON_UNIX, NULL);
    int sock = hxfr_test_daemon_connect(&d, false);
    struct ring r;
    ring_make(&r, true, SLOTS, W * H * 4);
    attach_ok(sock, &r, 0);
    struct hxfr_shm_header evil = r.h;
    evil.slot_count = 64;
    evil.slot_size = 1ull << 28;
    evil.data_offset = 64;
    hxfr_shm_header_encode(r.base, &evil);
    CHECK_EQ(submit(sock, 10, 0), 0);
    CHECK_EQ(expect_error(sock, HXFR_STATUS_SHM), 0);
    struct hxfr_msg m;
    shm_request(&m, 0, 0, 4096, 2048, 4096 * 4, 0);
    CHECK_EQ(hxfr_test_send_msg(sock, &m, NULL, 0), 0);
    CHECK_EQ(expect_error(sock, HXFR_STATUS_SHM), 0);
    render_slot(&r, 1, 0);
    CHECK_EQ(submit(sock, 1, 0), 0);
    CHECK_EQ(expect_msg(sock, HXFR_MSG_FRAME_RESPONSE, &m, NULL, NULL), 0);
    close(sock);
    ring_free(&r);
    daemon_stop_clean(&d, NULL);
}

struct scribbler {
    uint8_t *p;
    size_t n;
    volatile int stop;
};

static void *scribble(void *arg)
{
    struct scribbler *s = arg;
    unsigned v = 0;
    while (!s->stop) {
        memset(s->p, (int)(v++ & 0xFF), s->n);
    }
    return NULL;
}

/* Pixels changing while the host reads them change only the picture. */
TEST_T(pixels_changing_during_encode, 120)
{
    struct hxfr_test_daemon d;
    daemon_start_ok(&d, HXFR_TEST_DAEMON_UNIX, NULL);
    int sock = hxfr_test_daemon_connect(&d, false);
    struct ring r;
    ring_make(&r, true, 1, W * H * 4);
    attach_ok(sock, &r, 0);
    struct scribbler s = {.p = slot_ptr(&r, 0), .n = W * H * 4};
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, scribble, &s), 0);
    struct hxfr_msg m;
    for (int i = 0; i < 10; i++) {
        CHECK_EQ(submit(sock, 0, i), 0);
        CHECK_EQ(expect_msg(sock, HXFR_MSG_FRAME_RESPONSE, &m, NULL, NULL), 0);
    }
    s.stop = 1;
    pthread_join(t, NULL);
    close(sock);
    ring_free(&r);
    daemon_stop_clean(&d, NULL);
}

/* ---- Hostile attaches and descriptors ---------------------------------- */

TEST_T(hostile_attach_and_fds_leak_nothing, 120)
{
    struct hxfr_test_daemon d;
    daemon_start_ok(&d, HXFR_TEST_DAEMON_UNIX, NULL);
    int base = count_fds(d.pid);
    int sock = hxfr_test_daemon_connect(&d, false);
    struct ring good_ring, unsealed, tiny;
    ring_make(&good_ring, true, SLOTS, W * H * 4);
    ring_make(&unsealed, false, SLOTS, W * H * 4);
    struct hxfr_msg m;

    /* Unsealed memfd: a peer could shrink it under the mapping. */
    attach_fails(sock, &unsealed, 1, 0);
    /* SHM_FD without a descriptor. */
    attach_fails(sock, &good_ring, 0, 0);
    /* Surplus: two descriptors with one attach. */
    attach_fails(sock, &good_ring, 2, 0);
    /* Truncated: more descriptors than the daemon's control buffer takes
     * (MSG_CTRUNC); the kernel drops the rest, the daemon closes all. */
    attach_fails(sock, &good_ring, 20, 0);
    /* A ring offset beyond the region, and one that would wrap. */
    attach_fails(sock, &good_ring, 1, good_ring.size);
    attach_fails(sock, &good_ring, 1, UINT64_MAX - 10);
    /* A pipe is no memfd. */
    int p[2];
    CHECK_EQ(pipe(p), 0);
    attach_msg(&m, 0, true, 0, NULL);
    CHECK_EQ(send_with_fds(sock, &m, &p[0], 1), 0);
    CHECK_EQ(expect_error(sock, HXFR_STATUS_SHM), 0);
    close(p[0]);
    close(p[1]);
    /* A descriptor sent with another message (PING): closed, ERROR SHM, and
     * the PING is still answered. */
    memset(&m, 0, sizeof(m));
    m.hdr.type = HXFR_MSG_PING;
    CHECK_EQ(send_with_fds(sock, &m, &good_ring.fd, 1), 0);
    bool pong = false, err = false;
    for (int i = 0; i < 2; i++) {
        CHECK_EQ(expect_msg(sock, i == 0 ? HXFR_MSG_PONG : HXFR_MSG_ERROR, &m, NULL, NULL), 0);
        pong = pong || m.hdr.type == HXFR_MSG_PONG;
        err = err || (m.hdr.type == HXFR_MSG_ERROR && m.u.error.code == HXFR_STATUS_SHM);
    }
    CHECK(pong && err);
    /* A region smaller than its header claims. */
    ring_make(&tiny, true, 1, 4096);
    struct hxfr_shm_header lie = tiny.h;
    lie.slot_count = 8;
    hxfr_shm_header_encode(tiny.base, &lie);
    attach_fails(sock, &tiny, 1, 0);
    /* Bad magic, bad version, bad slot size. */
    lie = tiny.h;
    lie.magic = 0;
    hxfr_shm_header_encode(tiny.base, &lie);
    attach_fails(sock, &tiny, 1, 0);
    lie = tiny.h;
    lie.version = 9;
    hxfr_shm_header_encode(tiny.base, &lie);
    attach_fails(sock, &tiny, 1, 0);
    lie = tiny.h;
    lie.slot_size = 100;
    hxfr_shm_header_encode(tiny.base, &lie);
    attach_fails(sock, &tiny, 1, 0);
    /* A name with SHM_FD, and an attach by a name nobody configured. */
    attach_msg(&m, 0, true, 0, "vm0");
    CHECK_EQ(send_with_fds(sock, &m, &good_ring.fd, 1), 0);
    CHECK_EQ(expect_error(sock, HXFR_STATUS_SHM), 0);
    attach_msg(&m, 0, false, 0, "vm0");
    CHECK_EQ(hxfr_test_send_msg(sock, &m, NULL, 0), 0);
    CHECK_EQ(expect_error(sock, HXFR_STATUS_SHM), 0);
    /* After all that, a good attach works and frames encode. */
    attach_ok(sock, &good_ring, 0);
    render_slot(&good_ring, 0, 0);
    CHECK_EQ(submit(sock, 0, 0), 0);
    CHECK_EQ(expect_msg(sock, HXFR_MSG_FRAME_RESPONSE, &m, NULL, NULL), 0);
    /* Replacing a ring while none of its slots is in flight is allowed. */
    attach_ok(sock, &good_ring, 0);

    close(sock);
    ring_free(&good_ring);
    ring_free(&unsealed);
    ring_free(&tiny);
    /* Every descriptor the daemon received is closed again. */
    CHECK_EQ(settle_fds(d.pid, base), base);
    daemon_stop_clean(&d, NULL);
}

/* SHM_FD over TCP (no descriptors possible) and a configured region used
 * from TCP with a hostile offset. */
TEST_T(attach_over_tcp, 120)
{
    char dir[] = "/tmp/hxfr-shm-tcp-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[128], arg[160];
    snprintf(path, sizeof(path), "%s/region", dir);
    int fd = open(path, O_RDWR | O_CREAT, 0600);
    CHECK(fd >= 0);
    CHECK_EQ(ftruncate(fd, 1 << 20), 0);
    uint8_t *base = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(base != MAP_FAILED);
    struct hxfr_shm_header h;
    CHECK_EQ(hxfr_shm_header_init(&h, 2, W * H * 4), 0);
    hxfr_shm_header_encode(base + 65536, &h);
    snprintf(arg, sizeof(arg), "r=%s", path);
    const char *dargs[] = {"--shm", arg, NULL};
    struct hxfr_test_daemon d;
    daemon_start_ok(&d, HXFR_TEST_DAEMON_TCP, dargs);
    int sock = hxfr_test_daemon_connect(&d, true);
    CHECK(sock >= 0);
    struct hxfr_msg m;
    attach_msg(&m, 0, true, 0, NULL);
    CHECK_EQ(hxfr_test_send_msg(sock, &m, NULL, 0), 0);
    CHECK_EQ(expect_error(sock, HXFR_STATUS_SHM), 0);
    /* Wrong offset (no header there), unaligned, past the end. */
    attach_msg(&m, 0, false, 0, "r");
    CHECK_EQ(hxfr_test_send_msg(sock, &m, NULL, 0), 0);
    CHECK_EQ(expect_error(sock, HXFR_STATUS_SHM), 0);
    attach_msg(&m, 0, false, (1 << 20) - 32, "r");
    CHECK_EQ(hxfr_test_send_msg(sock, &m, NULL, 0), 0);
    CHECK_EQ(expect_error(sock, HXFR_STATUS_SHM), 0);
    attach_msg(&m, 0, false, 65536, "r");
    CHECK_EQ(hxfr_test_send_msg(sock, &m, NULL, 0), 0);
    CHECK_EQ(expect_msg(sock, HXFR_MSG_SHM_ATTACH_RESP, &m, NULL, NULL), 0);
    CHECK_EQ(m.u.shm_attach_resp.slot_count, 2);
    uint8_t *planes[3] = {base + 65536 + h.data_offset + h.slot_size, NULL, NULL};
    uint32_t strides[3] = {W * 4, 0, 0};
    CHECK_EQ(
        hxfr_pattern_render(HXFR_PATTERN_DESKTOP, HXFR_FORMAT_ARGB8888, W, H, 0, planes, strides),
        0);
    CHECK_EQ(submit(sock, 1, 0), 0);
    CHECK_EQ(expect_msg(sock, HXFR_MSG_FRAME_RESPONSE, &m, NULL, NULL), 0);
    close(sock);
    daemon_stop_clean(&d, NULL);
    munmap(base, 1 << 20);
    close(fd);
    unlink(path);
    rmdir(dir);
}

/* A client that floods submissions and never reads: the daemon stops
 * reading it (window), serves another client meanwhile, and frees
 * everything when it goes. */
TEST_T(flood_without_reading_stays_bounded, 120)
{
    struct hxfr_test_daemon d;
    const char *dargs[] = {"--window", "2", NULL};
    daemon_start_ok(&d, HXFR_TEST_DAEMON_UNIX, dargs);
    int base = count_fds(d.pid);
    int sock = hxfr_test_daemon_connect(&d, false);
    struct ring r;
    ring_make(&r, true, SLOTS, W * H * 4);
    attach_ok(sock, &r, 0);
    for (uint32_t i = 0; i < SLOTS; i++) {
        render_slot(&r, i, i);
    }
    int fl = fcntl(sock, F_GETFL);
    CHECK_EQ(fcntl(sock, F_SETFL, fl | O_NONBLOCK), 0);
    struct hxfr_msg m;
    uint8_t buf[HXFR_HEADER_SIZE + HXFR_FRAME_REQUEST_SIZE];
    size_t sent = 0;
    /* Until the socket buffer is full: the daemon is not reading. */
    for (int i = 0; i < 200000; i++) {
        shm_request(&m, 0, (uint32_t)i % SLOTS, W, H, W * 4, i);
        int n = hxfr_msg_encode(&m, 0, buf, sizeof(buf));
        ssize_t w = send(sock, buf, (size_t)n, MSG_NOSIGNAL);
        if (w < 0) {
            CHECK(errno == EAGAIN || errno == EWOULDBLOCK);
            break;
        }
        sent += (size_t)w;
    }
    fprintf(stderr, "# %zu request bytes queued before the socket filled\n", sent);
    CHECK(sent > 0);
    /* Someone else is served meanwhile. */
    int other = hxfr_test_daemon_connect(&d, false);
    CHECK(other >= 0);
    CHECK_EQ(ping_ok(other), 0);
    close(other);
    close(sock);
    ring_free(&r);
    CHECK_EQ(settle_fds(d.pid, base), base);
    daemon_stop_clean(&d, NULL);
}

/* The descriptor arrives with a read that also carries other messages:
 * a PING and the SHM_ATTACH in one sendmsg (the fd on its first byte, the
 * PING's), then an attach whose header is split over two writes with the
 * fd on the first part. Both attaches take their fd. */
TEST_T(fd_shares_a_read_with_other_messages, 120)
{
    struct hxfr_test_daemon d;
    daemon_start_ok(&d, HXFR_TEST_DAEMON_UNIX, NULL);
    int base = count_fds(d.pid);
    int sock = hxfr_test_daemon_connect(&d, false);
    struct ring r;
    ring_make(&r, true, SLOTS, W * H * 4);

    struct hxfr_msg ping, attach;
    memset(&ping, 0, sizeof(ping));
    ping.hdr.type = HXFR_MSG_PING;
    attach_msg(&attach, 0, true, 0, NULL);
    uint8_t buf[2 * (HXFR_HEADER_SIZE + HXFR_MAX_FIXED_SIZE)];
    int n1 = hxfr_msg_encode(&ping, 0, buf, sizeof(buf));
    CHECK(n1 > 0);
    int n2 = hxfr_msg_encode(&attach, 0, buf + n1, sizeof(buf) - (size_t)n1);
    CHECK(n2 > 0);
    struct iovec iov = {.iov_base = buf, .iov_len = (size_t)(n1 + n2)};
    union {
        struct cmsghdr align;
        char c[CMSG_SPACE(sizeof(int))];
    } ctl;
    memset(&ctl, 0, sizeof(ctl));
    struct msghdr mh = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.c, .msg_controllen = sizeof(ctl.c)};
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &r.fd, sizeof(int));
    CHECK_EQ(sendmsg(sock, &mh, MSG_NOSIGNAL), n1 + n2);
    struct hxfr_msg m;
    CHECK_EQ(expect_msg(sock, HXFR_MSG_PONG, &m, NULL, NULL), 0);
    CHECK_EQ(expect_msg(sock, HXFR_MSG_SHM_ATTACH_RESP, &m, NULL, NULL), 0);

    /* Split header: 5 bytes with the fd, the rest a moment later. */
    attach_msg(&attach, 1, true, 0, NULL);
    n2 = hxfr_msg_encode(&attach, 0, buf, sizeof(buf));
    iov = (struct iovec){.iov_base = buf, .iov_len = 5};
    CHECK_EQ(sendmsg(sock, &mh, MSG_NOSIGNAL), 5);
    sleep_ms(50);
    CHECK_EQ(hxfr_test_send_all(sock, buf + 5, (size_t)n2 - 5), 0);
    CHECK_EQ(expect_msg(sock, HXFR_MSG_SHM_ATTACH_RESP, &m, NULL, NULL), 0);
    CHECK_EQ(m.hdr.session_id, 1);
    render_slot(&r, 0, 0);
    CHECK_EQ(submit(sock, 0, 0), 0);
    CHECK_EQ(expect_msg(sock, HXFR_MSG_FRAME_RESPONSE, &m, NULL, NULL), 0);
    close(sock);
    ring_free(&r);
    CHECK_EQ(settle_fds(d.pid, base), base);
    daemon_stop_clean(&d, NULL);
}
