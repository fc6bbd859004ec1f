/* libhxfr-host embedded in a process the way a VMM uses it: its own loop
 * thread polling hxfr_host_get_fd() and calling hxfr_host_dispatch(), a
 * resource resolver, hxfr_host_stop() from another thread, statistics.
 * Also unit tests of the library's pure helpers. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <hxfr/host.h>

#include "avcheck.h"
#include "daemon.h"
#include "harness.h"
#include "host/outbuf.h"
#include "host/session.h"
#include "hostutil.h"
#include "pattern.h"

struct vmm {
    atomic_int acquires;
    atomic_int releases;
    char log[16384];
    size_t log_len;
};

static int vmm_acquire(void *opaque, uint32_t id, const struct hxfr_frame_request *req,
                       struct hxfr_host_pixels *out)
{
    struct vmm *v = opaque;
    (void)req;
    if (id == 8) {
        return -ENOTSUP;
    }
    if (id != 7 && id != 9) {
        return -ENOENT;
    }
    struct test_frame *f = malloc(sizeof(*f));
    if (!f || test_frame_make(f, HXFR_FORMAT_ARGB8888, 128, 96, 0, 3) < 0) {
        free(f);
        return -ENOMEM;
    }
    memset(out, 0, sizeof(*out));
    out->format = HXFR_FORMAT_ARGB8888;
    out->width = id == 9 ? 0 : 128; /* 9: a broken resource */
    out->height = 96;
    out->planes[0] = f->data;
    out->strides[0] = f->g.stride[0];
    out->handle = f;
    atomic_fetch_add(&v->acquires, 1);
    return 0;
}

static void vmm_release(void *opaque, struct hxfr_host_pixels *px)
{
    struct vmm *v = opaque;
    struct test_frame *f = px->handle;
    test_frame_free(f);
    free(f);
    atomic_fetch_add(&v->releases, 1);
}

static void vmm_log(void *opaque, enum hxfr_host_log_level level, const char *msg)
{
    struct vmm *v = opaque;
    int n = snprintf(v->log + v->log_len, sizeof(v->log) - v->log_len, "%d %s\n", (int)level, msg);
    if (n > 0 && v->log_len + (size_t)n < sizeof(v->log)) {
        v->log_len += (size_t)n;
    }
}

static void *loop_thread(void *arg)
{
    struct hxfr_host *h = arg;
    for (;;) {
        struct pollfd p = {.fd = hxfr_host_get_fd(h), .events = POLLIN};
        if (poll(&p, 1, -1) < 0) {
            continue;
        }
        int r = hxfr_host_dispatch(h, 0);
        if (r != 0) {
            return (void *)(intptr_t)r;
        }
    }
}

static int connect_unix(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(a.sun_path)) {
        close(fd);
        return -ENAMETOOLONG;
    }
    memcpy(a.sun_path, path, strlen(path) + 1);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        close(fd);
        return -errno;
    }
    return fd;
}

static void send_resource_frame(int fd, uint32_t id, int64_t pts)
{
    struct hxfr_msg m;
    memset(&m, 0, sizeof(m));
    m.hdr.type = HXFR_MSG_FRAME_REQUEST;
    m.hdr.session_id = 1;
    m.u.frame_request.resource_id = id;
    m.u.frame_request.width = 128;
    m.u.frame_request.height = 96;
    m.u.frame_request.format = HXFR_FORMAT_ARGB8888;
    m.u.frame_request.pts = pts;
    CHECK_EQ(hxfr_test_send_msg(fd, &m, NULL, 0), 0);
}

TEST(embedded_resolver_dispatch_and_stop)
{
    static struct vmm v;
    char dir[] = "/tmp/hxfr-embed-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char uri[256], path[200], bound[300];
    snprintf(path, sizeof(path), "%s/h.sock", dir);
    snprintf(uri, sizeof(uri), "unix:%s", path);

    struct hxfr_host_config cfg;
    hxfr_host_config_init(&cfg);
    cfg.workers = 2;
    cfg.log = vmm_log;
    cfg.log_opaque = &v;
    cfg.resolver.version = HXFR_HOST_RESOLVER_VERSION;
    cfg.resolver.acquire = vmm_acquire;
    cfg.resolver.release = vmm_release;
    cfg.resolver.opaque = &v;
    struct hxfr_host *h = hxfr_host_new(&cfg);
    CHECK(h != NULL);
    CHECK_EQ(hxfr_host_listen(h, uri, bound, sizeof(bound)), 0);
    CHECK(strcmp(bound, uri) == 0);
    /* A second server on a live socket is refused, the file stays. */
    CHECK_EQ(hxfr_host_listen(h, uri, NULL, 0), -EADDRINUSE);
    CHECK_EQ(hxfr_host_listen(h, "tcp:127.0.0.1:0", bound, sizeof(bound)), 1);
    CHECK(strncmp(bound, "tcp:127.0.0.1:", 14) == 0 && strcmp(bound, "tcp:127.0.0.1:0") != 0);
    CHECK_EQ(hxfr_host_listen(h, "nonsense:x", NULL, 0) < 0, 1);

    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, loop_thread, h), 0);

    int fd = connect_unix(path);
    CHECK(fd >= 0);
    struct hxfr_avcheck *av = hxfr_avcheck_new(1);
    for (int i = 0; i < 6; i++) {
        send_resource_frame(fd, 7, 500 + i);
        struct hxfr_msg m;
        uint8_t *au = NULL;
        size_t len = 0;
        CHECK_EQ(expect_msg(fd, HXFR_MSG_FRAME_RESPONSE, &m, &au, &len), 0);
        CHECK_EQ(m.u.frame_response.pts, 500 + i);
        CHECK_EQ(hxfr_avcheck_decode_au(av, au, len), 1);
        free(au);
        double all = 0;
        CHECK_EQ(hxfr_avcheck_psnr_pattern(hxfr_avcheck_last(av), HXFR_PATTERN_DESKTOP,
                                           HXFR_FORMAT_ARGB8888, 3, NULL, &all),
                 0);
        CHECK(all >= 35.0);
    }
    hxfr_avcheck_destroy(av);
    send_resource_frame(fd, 42, 0);
    CHECK_EQ(expect_error(fd, HXFR_STATUS_RESOURCE_NOT_FOUND), 0);
    send_resource_frame(fd, 8, 0);
    CHECK_EQ(expect_error(fd, HXFR_STATUS_NOT_GPU_TEXTURE), 0);
    send_resource_frame(fd, 9, 0);
    CHECK_EQ(expect_error(fd, HXFR_STATUS_BAD_GEOMETRY), 0);
    /* Frames in flight when the client goes away are released too. */
    for (int i = 0; i < 4; i++) {
        send_resource_frame(fd, 7, i);
    }
    close(fd);

    /* Stop from this (non-loop) thread; the loop thread sees it through the
     * fd and returns 1 once everything is finished. */
    hxfr_host_stop(h);
    void *ret = NULL;
    pthread_join(t, &ret);
    CHECK_EQ((intptr_t)ret, 1);
    CHECK(access(path, F_OK) != 0); /* socket file removed */

    struct hxfr_host_stats st;
    CHECK_EQ(hxfr_host_get_stats(h, &st), 0);
    CHECK(st.frames_encoded >= 6);
    CHECK_EQ(st.clients, 0);
    CHECK_EQ(st.pixel_bytes_copied, 0); /* resolver frames are never copied */
    CHECK(st.errors_sent >= 3);
    hxfr_host_destroy(h);
    CHECK_EQ(atomic_load(&v.acquires), atomic_load(&v.releases));
    CHECK(atomic_load(&v.acquires) >= 7);
    CHECK(strstr(v.log, "client 1 connected") != NULL);
    CHECK(strstr(v.log, "shutdown complete") != NULL);
    rmdir(dir);
}

static struct hxfr_host *session_stats_host;
static int stats_calls;
static void on_stats(void *opaque, const struct hxfr_host_session_stats *s)
{
    (void)opaque;
    stats_calls++;
    CHECK_EQ(s->session_id, 5);
    CHECK_EQ(s->frames, 3);
    CHECK_EQ(s->interval_frames, 3);
    CHECK_EQ(s->width, 64);
    CHECK_EQ(s->pixel_bytes_copied, 3u * 64u * 64u * 4u);
    CHECK(s->encode_ms_p50 > 0.0 && s->encode_ms_p99 >= s->encode_ms_p50);
    CHECK(strcmp(s->encoder, "libx264") == 0);
}

TEST(run_in_thread_with_stats_and_destroy_without_stop)
{
    struct hxfr_host_config cfg;
    hxfr_host_config_init(&cfg);
    cfg.workers = 1;
    struct hxfr_host *h = hxfr_host_new(&cfg);
    CHECK(h != NULL);
    char bound[300];
    CHECK_EQ(hxfr_host_listen(h, "tcp:127.0.0.1:0", bound, sizeof(bound)), 0);
    session_stats_host = h;
    struct hxfr_test_daemon d;
    memset(&d, 0, sizeof(d));
    d.tcp_port = (uint16_t)atoi(strrchr(bound, ':') + 1);
    int fd = hxfr_test_daemon_connect(&d, true);
    CHECK(fd >= 0);
    struct test_frame f;
    CHECK_EQ(test_frame_make(&f, HXFR_FORMAT_ARGB8888, 64, 64, 0, 0), 0);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(send_frame(fd, 5, &f, i, false), 0);
    }
    /* Drive the loop from this thread until the three answers are out. */
    int got = 0;
    while (got < 3) {
        CHECK_EQ(hxfr_host_dispatch(h, 100), 0);
        struct pollfd p = {.fd = fd, .events = POLLIN};
        while (poll(&p, 1, 0) == 1 && got < 3) {
            CHECK_EQ(expect_msg(fd, HXFR_MSG_FRAME_RESPONSE, NULL, NULL, NULL), 0);
            got++;
        }
    }
    CHECK_EQ(hxfr_host_foreach_session(h, true, on_stats, NULL), 1);
    CHECK_EQ(stats_calls, 1);
    /* Frames in flight at destroy time: destroy waits for them and frees
     * everything (ASan checks for leaks). */
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(send_frame(fd, 5, &f, 10 + i, false), 0);
    }
    for (int i = 0; i < 5; i++) {
        hxfr_host_dispatch(h, 10);
    }
    hxfr_host_destroy(h);
    test_frame_free(&f);
    close(fd);
}

static void *run_thread(void *arg)
{
    return (void *)(intptr_t)hxfr_host_run(arg);
}

/* hxfr_host_run() is the blocking loop: it serves until hxfr_host_stop()
 * (here from another thread) and the clean shutdown are done, then
 * returns 0. About 0.1 s. */
TEST(run_serves_until_stopped)
{
    struct hxfr_host_config cfg;
    hxfr_host_config_init(&cfg);
    cfg.workers = 1;
    struct hxfr_host *h = hxfr_host_new(&cfg);
    CHECK(h != NULL);
    char bound[300];
    CHECK_EQ(hxfr_host_listen(h, "tcp:127.0.0.1:0", bound, sizeof(bound)), 0);
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, run_thread, h), 0);

    struct hxfr_test_daemon d;
    memset(&d, 0, sizeof(d));
    d.tcp_port = (uint16_t)atoi(strrchr(bound, ':') + 1);
    int fd = hxfr_test_daemon_connect(&d, true);
    CHECK(fd >= 0);
    struct test_frame f;
    CHECK_EQ(test_frame_make(&f, HXFR_FORMAT_ARGB8888, 64, 64, 0, 0), 0);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(send_frame(fd, 2, &f, i, false), 0);
        struct hxfr_msg m;
        CHECK_EQ(expect_msg(fd, HXFR_MSG_FRAME_RESPONSE, &m, NULL, NULL), 0);
        CHECK_EQ(m.u.frame_response.pts, i);
    }
    hxfr_host_stop(h);
    void *ret = (void *)(intptr_t)-1;
    CHECK_EQ(pthread_join(t, &ret), 0);
    CHECK_EQ((intptr_t)ret, 0);
    /* The server closed the connection on its way out. */
    uint8_t byte;
    CHECK_EQ(read(fd, &byte, 1), 0);
    struct hxfr_host_stats st;
    CHECK_EQ(hxfr_host_get_stats(h, &st), 0);
    CHECK_EQ(st.frames_encoded, 3);
    CHECK_EQ(st.listeners, 0);
    CHECK_EQ(st.clients, 0);
    close(fd);

    /* A stop that comes before the loop runs is not lost. */
    struct hxfr_host *h2 = hxfr_host_new(&cfg);
    CHECK(h2 != NULL);
    hxfr_host_stop(h2);
    CHECK_EQ(hxfr_host_run(h2), 0);
    hxfr_host_destroy(h2);
    hxfr_host_destroy(h);
    test_frame_free(&f);
}

TEST(frame_buffers_bounded_per_client)
{
    struct hxfr_host_config cfg;
    hxfr_host_config_init(&cfg);
    cfg.workers = 1;
    cfg.window = 2;
    cfg.max_width = 64;
    cfg.max_height = 64;
    struct hxfr_host *h = hxfr_host_new(&cfg);
    CHECK(h != NULL);
    char bound[300];
    CHECK_EQ(hxfr_host_listen(h, "tcp:127.0.0.1:0", bound, sizeof(bound)), 0);
    struct hxfr_test_daemon d;
    memset(&d, 0, sizeof(d));
    d.tcp_port = (uint16_t)atoi(strrchr(bound, ':') + 1);
    int fd = hxfr_test_daemon_connect(&d, true);
    CHECK(fd >= 0);
    struct test_frame small, big;
    CHECK_EQ(test_frame_make(&small, HXFR_FORMAT_ARGB8888, 16, 16, 0, 0), 0);
    CHECK_EQ(test_frame_make(&big, HXFR_FORMAT_ARGB8888, 64, 64, 0, 0), 0);
    /* Eight sessions, each first with a small and then a maximum-size
     * frame: without trimming, 8 x 16 KiB would stay pooled. */
    for (uint16_t sid = 1; sid <= 8; sid++) {
        for (int k = 0; k < 2; k++) {
            CHECK_EQ(send_frame(fd, sid, k ? &big : &small, sid * 10 + k, false), 0);
            bool answered = false;
            while (!answered) {
                CHECK_EQ(hxfr_host_dispatch(h, 100), 0);
                struct pollfd p = {.fd = fd, .events = POLLIN};
                if (poll(&p, 1, 0) == 1) {
                    CHECK_EQ(expect_msg(fd, HXFR_MSG_FRAME_RESPONSE, NULL, NULL, NULL), 0);
                    answered = true;
                }
            }
            struct hxfr_host_stats st;
            hxfr_host_get_stats(h, &st);
            CHECK(st.frame_buffer_bytes <= 2u * 64u * 64u * 4u);
            CHECK(st.frame_buffer_bytes >= 16u * 16u * 4u);
        }
    }
    close(fd);
    hxfr_host_destroy(h);
    test_frame_free(&small);
    test_frame_free(&big);
}

TEST(tcp_clients_get_keepalive)
{
    struct hxfr_host_config cfg;
    hxfr_host_config_init(&cfg);
    cfg.workers = 1;
    struct hxfr_host *h = hxfr_host_new(&cfg);
    CHECK(h != NULL);
    char bound[300];
    CHECK_EQ(hxfr_host_listen(h, "tcp:127.0.0.1:0", bound, sizeof(bound)), 0);
    struct hxfr_test_daemon d;
    memset(&d, 0, sizeof(d));
    d.tcp_port = (uint16_t)atoi(strrchr(bound, ':') + 1);
    int fd = hxfr_test_daemon_connect(&d, true);
    CHECK(fd >= 0);
    CHECK_EQ(send_simple(fd, HXFR_MSG_PING, 0), 0);
    for (int i = 0; i < 50; i++) {
        hxfr_host_dispatch(h, 10);
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 0) == 1) {
            break;
        }
    }
    CHECK_EQ(expect_msg(fd, HXFR_MSG_PONG, NULL, NULL, NULL), 0);
    /* Find the server's end of this connection among our own fds: its
     * peer is our local address. */
    struct sockaddr_in mine;
    socklen_t len = sizeof(mine);
    CHECK_EQ(getsockname(fd, (struct sockaddr *)&mine, &len), 0);
    int found = 0;
    for (int s = 3; s < 1024; s++) {
        struct sockaddr_in peer;
        socklen_t plen = sizeof(peer);
        if (s == fd || getpeername(s, (struct sockaddr *)&peer, &plen) < 0 ||
            peer.sin_family != AF_INET || peer.sin_port != mine.sin_port) {
            continue;
        }
        int on = 0, idle = 0;
        socklen_t olen = sizeof(on);
        CHECK_EQ(getsockopt(s, SOL_SOCKET, SO_KEEPALIVE, &on, &olen), 0);
        olen = sizeof(idle);
        CHECK_EQ(getsockopt(s, IPPROTO_TCP, TCP_KEEPIDLE, &idle, &olen), 0);
        CHECK_EQ(on, 1);
        CHECK_EQ(idle, 60);
        found++;
    }
    CHECK_EQ(found, 1);
    close(fd);
    hxfr_host_destroy(h);
}

TEST(out_of_fds_listener_rests_and_recovers)
{
    /* With a tiny fd limit the server's accept() fails with EMFILE while
     * connections are pending. It must not spin on the listener, and once
     * fds are free again it serves the pending connection. */
    struct rlimit rl = {.rlim_cur = 40, .rlim_max = 40};
    static struct vmm emfile_log;
    struct hxfr_host_config cfg;
    hxfr_host_config_init(&cfg);
    cfg.workers = 1;
    cfg.log = vmm_log;
    cfg.log_opaque = &emfile_log;
    struct hxfr_host *h = hxfr_host_new(&cfg);
    CHECK(h != NULL);
    char bound[300];
    CHECK_EQ(hxfr_host_listen(h, "tcp:127.0.0.1:0", bound, sizeof(bound)), 0);
    struct hxfr_test_daemon d;
    memset(&d, 0, sizeof(d));
    d.tcp_port = (uint16_t)atoi(strrchr(bound, ':') + 1);
    CHECK_EQ(setrlimit(RLIMIT_NOFILE, &rl), 0);
    int fds[64];
    int n = 0;
    /* Each connection costs us two fds (both ends live in this process). */
    while (n < 64) {
        int fd = hxfr_test_daemon_connect(&d, true);
        if (fd < 0) {
            break;
        }
        fds[n++] = fd;
        for (int i = 0; i < 3; i++) {
            hxfr_host_dispatch(h, 0);
        }
    }
    CHECK(n > 0 && n < 64);
    /* Resting means the server's fd is not constantly readable: a
     * listener left in epoll with a pending connection it cannot accept
     * would make every one of these polls report readable. */
    int readable = 0;
    for (int i = 0; i < 1000; i++) {
        struct pollfd p = {.fd = hxfr_host_get_fd(h), .events = POLLIN};
        if (poll(&p, 1, 0) == 1) {
            readable++;
        }
        CHECK_EQ(hxfr_host_dispatch(h, 0), 0);
    }
    CHECK(readable < 500);
    CHECK(strstr(emfile_log.log, "Too many open files") != NULL);
    /* Free some fds: the last connection (pending in the backlog) must get
     * served once the listener is back (next tick, 250 ms). */
    for (int i = 0; i < 4; i++) {
        close(fds[i]);
    }
    int last = fds[n - 1];
    CHECK_EQ(send_simple(last, HXFR_MSG_PING, 0), 0);
    bool pong = false;
    for (int i = 0; i < 300 && !pong; i++) {
        hxfr_host_dispatch(h, 10);
        struct pollfd p = {.fd = last, .events = POLLIN};
        if (poll(&p, 1, 0) == 1) {
            CHECK_EQ(expect_msg(last, HXFR_MSG_PONG, NULL, NULL, NULL), 0);
            pong = true;
        }
    }
    CHECK(pong);
    for (int i = 4; i < n; i++) {
        close(fds[i]);
    }
    hxfr_host_destroy(h);
}

TEST(add_client_fd_and_its_limit)
{
    struct hxfr_host_config cfg;
    hxfr_host_config_init(&cfg);
    cfg.workers = 1;
    cfg.max_clients = 1;
    struct hxfr_host *h = hxfr_host_new(&cfg);
    CHECK(h != NULL);
    int a[2], b[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, a), 0);
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, b), 0);
    CHECK_EQ(hxfr_host_add_client(h, a[0], "guest-serial"), 0);
    CHECK_EQ(hxfr_host_add_client(h, b[0], NULL), -EBUSY);
    CHECK_EQ(expect_error(b[1], HXFR_STATUS_BUSY), 0);
    CHECK_EQ(send_simple(a[1], HXFR_MSG_PING, 3), 0);
    struct pollfd p = {.fd = a[1], .events = POLLIN};
    for (int i = 0; i < 100 && poll(&p, 1, 0) == 0; i++) {
        hxfr_host_dispatch(h, 10);
    }
    CHECK_EQ(expect_msg(a[1], HXFR_MSG_PONG, NULL, NULL, NULL), 0);
    CHECK_EQ(hxfr_host_add_client(h, -1, NULL), -EBADF);
    close(a[1]);
    close(b[1]);
    hxfr_host_destroy(h);
}

/* One frame through a host on a socketpair, the loop driven here. */
static void encode_one_frame(void)
{
    struct hxfr_host_config cfg;
    hxfr_host_config_init(&cfg);
    cfg.workers = 1;
    struct hxfr_host *h = hxfr_host_new(&cfg);
    CHECK(h != NULL);
    int a[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, a), 0);
    CHECK_EQ(hxfr_host_add_client(h, a[0], "log-test"), 0);
    struct test_frame f;
    CHECK_EQ(test_frame_make(&f, HXFR_FORMAT_ARGB8888, 64, 64, 0, 0), 0);
    CHECK_EQ(send_frame(a[1], 1, &f, 5, false), 0);
    struct pollfd p = {.fd = a[1], .events = POLLIN};
    for (int i = 0; i < 2000 && poll(&p, 1, 0) == 0; i++) {
        hxfr_host_dispatch(h, 10);
    }
    CHECK_EQ(expect_msg(a[1], HXFR_MSG_FRAME_RESPONSE, NULL, NULL, NULL), 0);
    test_frame_free(&f);
    close(a[1]);
    /* The encoder is closed here: x264 prints its statistics then. */
    hxfr_host_destroy(h);
}

struct ffmpeg_lines {
    pthread_mutex_t lock;
    int x264;
    int with_newline;
};

static void collect_ffmpeg(void *opaque, enum hxfr_host_log_level level, const char *msg)
{
    struct ffmpeg_lines *l = opaque;
    pthread_mutex_lock(&l->lock);
    if (strstr(msg, "[libx264 @") == msg && level <= HXFR_HOST_LOG_DEBUG) {
        l->x264++;
    }
    if (strchr(msg, '\n')) {
        l->with_newline++;
    }
    pthread_mutex_unlock(&l->lock);
}

TEST(ffmpeg_log_quiet_in_library_use_routed_on_request)
{
    /* Library use: nothing of x264 reaches stderr (it prints a banner and
     * statistics at FFmpeg's default level when left alone). */
    fflush(stderr);
    int saved = dup(2);
    char path[] = "/tmp/hxfr-avlog-XXXXXX";
    int tmp = mkstemp(path);
    CHECK(saved >= 0 && tmp >= 0);
    unlink(path);
    dup2(tmp, 2);
    encode_one_frame();
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    char buf[8192];
    ssize_t n = pread(tmp, buf, sizeof(buf) - 1, 0);
    close(tmp);
    buf[n > 0 ? n : 0] = '\0';
    if (strstr(buf, "libx264")) {
        FAIL("FFmpeg wrote to stderr in library use: %s", buf);
    }

    /* The application asks: whole lines, prefixed, through its sink. */
    struct ffmpeg_lines l = {.lock = PTHREAD_MUTEX_INITIALIZER};
    hxfr_host_set_ffmpeg_log(collect_ffmpeg, &l);
    encode_one_frame();
    hxfr_host_set_ffmpeg_log(NULL, NULL);
    CHECK(l.x264 >= 1);
    CHECK_EQ(l.with_newline, 0);
}

TEST(config_rejects_bad_values)
{
    struct hxfr_host_config cfg;
    hxfr_host_config_init(&cfg);
    cfg.window = 65;
    CHECK(hxfr_host_new(&cfg) == NULL);
    CHECK_EQ(errno, EINVAL);
    hxfr_host_config_init(&cfg);
    cfg.max_width = 8193;
    CHECK(hxfr_host_new(&cfg) == NULL);
    hxfr_host_config_init(&cfg);
    cfg.resolver.version = HXFR_HOST_RESOLVER_VERSION;
    cfg.resolver.acquire = vmm_acquire; /* without release */
    CHECK(hxfr_host_new(&cfg) == NULL);
    hxfr_host_config_init(&cfg);
    cfg.resolver.acquire = vmm_acquire;
    cfg.resolver.release = vmm_release; /* without a version */
    CHECK(hxfr_host_new(&cfg) == NULL);
    CHECK_EQ(errno, EINVAL);
    cfg.resolver.version = HXFR_HOST_RESOLVER_VERSION + 1;
    CHECK(hxfr_host_new(&cfg) == NULL);
    CHECK_EQ(errno, EINVAL);
    hxfr_host_destroy(NULL);
}

TEST(percentile_nearest_rank)
{
    uint32_t s[100];
    for (uint32_t i = 0; i < 100; i++) {
        s[i] = 100 - i; /* unsorted on purpose */
    }
    CHECK_EQ(hxfr__percentile(s, 0, 50), 0);
    CHECK_EQ(hxfr__percentile(s, 100, 50), 50);
    CHECK_EQ(hxfr__percentile(s, 100, 99), 99);
    CHECK_EQ(hxfr__percentile(s, 100, 100), 100);
    CHECK_EQ(hxfr__percentile(s, 100, 0), 1);
    uint32_t one = 7;
    CHECK_EQ(hxfr__percentile(&one, 1, 99), 7);
    CHECK_EQ(s[0], 100); /* input untouched */
}

TEST(frame_response_units_from_annexb)
{
    /* One unit, the whole access unit, as Helix's host sends it and its
     * subscriber reads it (exactly one unit per FRAME_RESPONSE). */
    const uint8_t au[] = {0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 1, 0x65, 9, 9, 9};
    struct hxfr__outbuf *b = hxfr__frame_response_build(3, 111, 110, true, au, sizeof(au));
    CHECK(b != NULL);
    struct hxfr_header h;
    hxfr_header_decode(b->data, &h);
    CHECK_EQ(hxfr_header_validate(&h, 0), 0);
    CHECK_EQ(h.type, HXFR_MSG_FRAME_RESPONSE);
    CHECK_EQ(h.session_id, 3);
    CHECK_EQ(h.payload_size, b->len - HXFR_HEADER_SIZE);
    struct hxfr_msg m;
    CHECK_EQ(hxfr_msg_decode(&h, b->data + HXFR_HEADER_SIZE, HXFR_FRAME_RESPONSE_SIZE, &m), 0);
    CHECK_EQ(m.u.frame_response.pts, 111);
    CHECK_EQ(m.u.frame_response.dts, 110);
    CHECK_EQ(m.u.frame_response.is_keyframe, 1);
    CHECK_EQ(m.u.frame_response.nal_count, 1);
    const uint8_t *units = b->data + HXFR_HEADER_SIZE + HXFR_FRAME_RESPONSE_SIZE;
    size_t ulen = b->len - HXFR_HEADER_SIZE - HXFR_FRAME_RESPONSE_SIZE;
    CHECK_EQ(hxfr_units_validate(units, ulen, 1), 0);
    CHECK_EQ(ulen, 4 + sizeof(au));
    CHECK_EQ(hxfr_get_u32(units), sizeof(au));
    CHECK_MEM(units + 4, au, sizeof(au));
    /* Not Annex B from the first byte, or no NAL unit: refused. */
    const uint8_t junk[] = {1, 2, 3, 0, 0, 1, 0x65};
    errno = 0;
    CHECK(hxfr__frame_response_build(3, 0, 0, false, junk, sizeof(junk)) == NULL);
    CHECK_EQ(errno, EPROTO);
    const uint8_t bare[] = {0, 0, 1};
    CHECK(hxfr__frame_response_build(3, 0, 0, false, bare, sizeof(bare)) == NULL);
    const uint8_t none[] = {1, 2, 3};
    CHECK(hxfr__frame_response_build(1, 0, 0, false, none, sizeof(none)) == NULL);
    hxfr__outbuf_unref(b);
}
