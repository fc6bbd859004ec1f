/* hxfrd start-up, connection limits and logging: a malformed systemd
 * socket activation is an error (never a silent fall back to the default
 * socket); connections that never send a complete message are closed after
 * the handshake deadline so they cannot hold every --max-clients slot;
 * FFmpeg's lines go through hxfrd's logger. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon.h"
#include "harness.h"
#include "hostutil.h"

/* Runs hxfrd (no arguments) with LISTEN_PID set to its own pid and
 * LISTEN_FDS to listen_fds, XDG_RUNTIME_DIR in a fresh directory. Returns
 * the exit status; stderr in err; *default_made tells whether the default
 * socket file appeared. */
static int run_activated(const char *listen_fds, char *err, size_t cap, bool *default_made)
{
    char dir[] = "/tmp/hxfrd-sdbad-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    int p[2];
    CHECK_EQ(pipe(p), 0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        char pidbuf[32];
        snprintf(pidbuf, sizeof(pidbuf), "%d", (int)getpid());
        setenv("LISTEN_PID", pidbuf, 1);
        setenv("LISTEN_FDS", listen_fds, 1);
        setenv("XDG_RUNTIME_DIR", dir, 1);
        dup2(p[1], 2);
        close(p[0]);
        close(p[1]);
        /* Descriptors 3.. must not be open by accident: the activation
         * below promises them. */
        for (int fd = 3; fd < 64; fd++) {
            close(fd);
        }
        execl(getenv("HXFRD"), "hxfrd", (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    size_t have = 0;
    for (;;) {
        /* A daemon that wrongly starts serving never closes stderr: give
         * it 20 s, then kill it (the exit status then fails the test). */
        struct pollfd pfd = {.fd = p[0], .events = POLLIN};
        if (poll(&pfd, 1, 20000) <= 0) {
            kill(pid, SIGKILL);
            break;
        }
        ssize_t r = read(p[0], err + have, cap - 1 - have);
        if (r <= 0) {
            break;
        }
        have += (size_t)r;
    }
    err[have] = '\0';
    close(p[0]);
    int status = 0;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    char sock[300];
    snprintf(sock, sizeof(sock), "%s/hxfr/hxfr.sock", dir);
    *default_made = access(sock, F_OK) == 0;
    unlink(sock);
    snprintf(sock, sizeof(sock), "%s/hxfr", dir);
    rmdir(sock);
    rmdir(dir);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

TEST(malformed_listen_fds_is_an_error)
{
    CHECK(getenv("HXFRD") != NULL);
    static char err[8192];
    const char *bad[] = {"x", "", "-1", "1x", "99999999999999999999"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        bool made = true;
        int st = run_activated(bad[i], err, sizeof(err), &made);
        if (st == 0 || !strstr(err, "socket activation") || made) {
            FAIL("LISTEN_FDS='%s': exit %d, default socket %s, stderr: %s", bad[i], st,
                 made ? "created" : "not created", err);
        }
        CHECK(strstr(err, "malformed") != NULL);
    }
}

TEST(listen_fds_naming_a_closed_fd_is_an_error)
{
    static char err[8192];
    bool made = true;
    /* fds 3 and 4 are promised, none is open. */
    int st = run_activated("2", err, sizeof(err), &made);
    CHECK(st != 0);
    CHECK(!made);
    if (!strstr(err, "not open")) {
        FAIL("stderr: %s", err);
    }
}

TEST_T(silent_connections_are_closed_after_the_handshake_deadline, 60)
{
    struct hxfr_test_daemon d;
    const char *args[] = {"--max-clients", "3", "--handshake-timeout", "1", NULL};
    if (hxfr_test_daemon_start(&d, HXFR_TEST_DAEMON_UNIX, args) < 0) {
        FAIL("hxfrd did not start");
    }
    /* Every slot taken by a connection that says nothing. */
    int silent[3];
    for (int i = 0; i < 3; i++) {
        silent[i] = hxfr_test_daemon_connect(&d, false);
        CHECK(silent[i] >= 0);
    }
    /* One that only sends half a header is not greeted either. */
    uint8_t half[HXFR_HEADER_SIZE / 2];
    struct hxfr_header h = {.magic = HXFR_MAGIC, .type = HXFR_MSG_PING};
    uint8_t full[HXFR_HEADER_SIZE];
    hxfr_header_encode(full, &h);
    memcpy(half, full, sizeof(half));
    CHECK_EQ(hxfr_test_send_all(silent[2], half, sizeof(half)), 0);
    /* The daemon is full meanwhile. */
    int extra = hxfr_test_daemon_connect(&d, false);
    CHECK(extra >= 0);
    CHECK_EQ(expect_error(extra, HXFR_STATUS_BUSY), 0);
    close(extra);
    /* Each silent one is closed once its deadline passed. */
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(hxfr_test_wait_eof(silent[i], 15000), 0);
        close(silent[i]);
    }
    /* A real client is served again, and having sent a message it is not
     * subject to the deadline: still served after the deadline passed. */
    int fd = -1;
    for (int tries = 0; tries < 200; tries++) {
        fd = hxfr_test_daemon_connect(&d, false);
        CHECK(fd >= 0);
        if (ping_ok(fd) == 0) {
            break;
        }
        close(fd);
        fd = -1;
        usleep(20000);
    }
    CHECK(fd >= 0);
    usleep(1500000);
    CHECK_EQ(ping_ok(fd), 0);
    close(fd);
    CHECK_EQ(hxfr_test_daemon_stop(&d), 0);
    CHECK_EQ(hxfr_test_daemon_log_count(&d, "sent no complete message within 1000 ms"), 3);
    CHECK_EQ(hxfr_test_daemon_log_count(&d, "handshake timeout"), 3);
    CHECK_EQ(hxfr_test_daemon_unexpected_errors(&d, NULL), 0);
    hxfr_test_daemon_free(&d);
}

TEST_T(silent_tcp_closed_silent_unix_kept_while_not_full, 60)
{
    /* Over TCP the deadline always applies. Over UNIX only while the
     * daemon is full: QEMU's socket chardev connects at VM start and its
     * guest may boot for longer than the deadline before saying anything. */
    struct hxfr_test_daemon d;
    const char *args[] = {"--handshake-timeout", "1", NULL};
    if (hxfr_test_daemon_start(&d, HXFR_TEST_DAEMON_UNIX | HXFR_TEST_DAEMON_TCP, args) < 0) {
        FAIL("hxfrd did not start");
    }
    int ux = hxfr_test_daemon_connect(&d, false);
    int tcp = hxfr_test_daemon_connect(&d, true);
    CHECK(ux >= 0 && tcp >= 0);
    CHECK_EQ(hxfr_test_wait_eof(tcp, 15000), 0);
    close(tcp);
    usleep(1200000);
    CHECK_EQ(ping_ok(ux), 0);
    close(ux);
    CHECK_EQ(hxfr_test_daemon_stop(&d), 0);
    CHECK_EQ(hxfr_test_daemon_log_count(&d, "handshake timeout"), 1);
    CHECK_EQ(hxfr_test_daemon_unexpected_errors(&d, NULL), 0);
    hxfr_test_daemon_free(&d);
}

TEST(handshake_timeout_zero_keeps_silent_connections)
{
    /* --handshake-timeout 0: the deadline is off (the idle timeout, opt-in,
     * is the only one). A silent connection outlives the default deadline
     * it would otherwise have: checked against a 1 s idle timeout that does
     * close it, so the test does not wait 10 s. */
    struct hxfr_test_daemon d;
    const char *args[] = {"--handshake-timeout", "0", "--idle-timeout", "2", NULL};
    if (hxfr_test_daemon_start(&d, HXFR_TEST_DAEMON_UNIX, args) < 0) {
        FAIL("hxfrd did not start");
    }
    int fd = hxfr_test_daemon_connect(&d, false);
    CHECK(fd >= 0);
    CHECK_EQ(hxfr_test_wait_eof(fd, 15000), 0);
    close(fd);
    CHECK_EQ(hxfr_test_daemon_stop(&d), 0);
    CHECK_EQ(hxfr_test_daemon_log_count(&d, "handshake timeout"), 0);
    CHECK_EQ(hxfr_test_daemon_log_count(&d, "idle timeout"), 1);
    hxfr_test_daemon_free(&d);
}

/* Encodes one frame on a daemon started with args; returns its log. */
static void one_frame(struct hxfr_test_daemon *d, const char *const *args)
{
    if (hxfr_test_daemon_start(d, HXFR_TEST_DAEMON_UNIX, args) < 0) {
        FAIL("hxfrd did not start");
    }
    int fd = hxfr_test_daemon_connect(d, false);
    CHECK(fd >= 0);
    struct test_frame f;
    CHECK_EQ(test_frame_make(&f, HXFR_FORMAT_ARGB8888, 64, 64, 0, 0), 0);
    struct hxfr_msg m;
    CHECK_EQ(roundtrip_frame(fd, 1, &f, 1, false, &m, NULL, NULL), 0);
    test_frame_free(&f);
    close(fd);
    CHECK_EQ(hxfr_test_daemon_stop(d), 0);
}

TEST(ffmpeg_lines_go_through_the_logger)
{
    /* Default level: x264's banner and statistics (FFmpeg info) are not
     * printed at all, neither raw nor through the logger. */
    struct hxfr_test_daemon d;
    one_frame(&d, NULL);
    CHECK_EQ(hxfr_test_daemon_log_count(&d, "libx264 @"), 0);
    CHECK_EQ(hxfr_test_daemon_unexpected_errors(&d, NULL), 0);
    hxfr_test_daemon_free(&d);

    /* --log-level debug: they are, as hxfrd lines with the ffmpeg prefix,
     * and never raw. */
    const char *debug[] = {"--log-level", "debug", NULL};
    one_frame(&d, debug);
    int routed = hxfr_test_daemon_log_count(&d, "] ffmpeg: [libx264 @");
    CHECK(routed >= 1);
    CHECK_EQ(hxfr_test_daemon_log_count(&d, "libx264 @"), routed);
    CHECK_EQ(hxfr_test_daemon_unexpected_errors(&d, NULL), 0);
    hxfr_test_daemon_free(&d);
}
