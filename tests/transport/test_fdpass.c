/* fd passing (SCM_RIGHTS), systemd socket activation and the write helpers. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "transport.h"

#include "harness.h"

/* Open descriptors of this process (the directory stream's own fd is in
 * both counts, so comparisons are fair). */
static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int n = 0;

    CHECK(d != NULL);
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] != '.') {
            n++;
        }
    }
    closedir(d);
    return n;
}

static int make_memfd(const char *content)
{
    int fd = memfd_create("hxfr-test", MFD_CLOEXEC);
    CHECK(fd >= 0);
    CHECK_EQ(write(fd, content, strlen(content)), (ssize_t)strlen(content));
    return fd;
}

/* Sends n copies of fd with one byte through a raw sendmsg, bypassing the
 * HXFR_MAX_PASSED_FDS limit of hxfr__send_with_fds, as a hostile peer can. */
static void raw_send_fds(int sock, int fd, int n)
{
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int) * 64)];
    } ctl;
    char byte = 'F';
    struct iovec iov = {.iov_base = &byte, .iov_len = 1};
    struct msghdr msg;
    int fds[64];

    CHECK(n <= 64);
    for (int i = 0; i < n; i++) {
        fds[i] = fd;
    }
    memset(&msg, 0, sizeof(msg));
    memset(&ctl, 0, sizeof(ctl));
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = ctl.buf;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)n);
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)n);
    memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)n);
    CHECK_EQ(sendmsg(sock, &msg, 0), 1);
}

TEST(fdpass_memfd)
{
    int sv[2], fds[HXFR_MAX_PASSED_FDS], nfds = -1;
    bool trunc = true;
    char buf[16];

    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    int mfd = make_memfd("frame pixels");
    int before = count_fds();

    char hdr[3] = {'H', 'X', 'F'};
    struct iovec iov[2] = {{hdr, 2}, {hdr + 2, 1}};
    CHECK_EQ(hxfr__send_with_fds(sv[0], iov, 2, &mfd, 1), 3);
    /* The sender still owns its fd. */
    CHECK(fcntl(mfd, F_GETFD) >= 0);
    close(mfd);

    memset(buf, 0, sizeof(buf));
    CHECK_EQ(hxfr__recv_with_fds(sv[1], buf, sizeof(buf), fds, HXFR_MAX_PASSED_FDS, &nfds, &trunc),
             3);
    CHECK_MEM(buf, "HXF", 3);
    CHECK_EQ(nfds, 1);
    CHECK(!trunc);
    CHECK(fcntl(fds[0], F_GETFD) & FD_CLOEXEC);
    memset(buf, 0, sizeof(buf));
    CHECK_EQ(pread(fds[0], buf, sizeof(buf), 0), 12);
    CHECK_MEM(buf, "frame pixels", 12);
    close(fds[0]);
    CHECK_EQ(count_fds(), before - 1);

    /* Plain data, no fds. */
    struct iovec one = {hdr, 3};
    CHECK_EQ(hxfr__send_with_fds(sv[0], &one, 1, NULL, 0), 3);
    CHECK_EQ(hxfr__recv_with_fds(sv[1], buf, sizeof(buf), fds, HXFR_MAX_PASSED_FDS, &nfds, &trunc),
             3);
    CHECK_EQ(nfds, 0);

    /* EOF, and nothing pending on a non-blocking socket. */
    int fl = fcntl(sv[1], F_GETFL);
    CHECK_EQ(fcntl(sv[1], F_SETFL, fl | O_NONBLOCK), 0);
    CHECK_EQ(hxfr__recv_with_fds(sv[1], buf, sizeof(buf), fds, 1, &nfds, &trunc), -EAGAIN);
    close(sv[0]);
    CHECK_EQ(hxfr__recv_with_fds(sv[1], buf, sizeof(buf), fds, 1, &nfds, &trunc), 0);
    close(sv[1]);
}

TEST(fdpass_bad_arguments)
{
    int sv[2], fds[8] = {0};
    char b = 'x';
    struct iovec iov = {&b, 1}, empty = {&b, 0};

    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    CHECK_EQ(hxfr__send_with_fds(sv[0], &iov, 1, fds, HXFR_MAX_PASSED_FDS + 1), -EINVAL);
    CHECK_EQ(hxfr__send_with_fds(sv[0], &iov, 1, fds, -1), -EINVAL);
    CHECK_EQ(hxfr__send_with_fds(sv[0], &iov, 1, NULL, 1), -EINVAL);
    CHECK_EQ(hxfr__send_with_fds(sv[0], &iov, 0, NULL, 0), -EINVAL);
    /* fds need a byte to travel with. */
    fds[0] = sv[0];
    CHECK_EQ(hxfr__send_with_fds(sv[0], &empty, 1, fds, 1), -EINVAL);
    CHECK_EQ(hxfr__send_with_fds(-1, &iov, 1, NULL, 0), -EBADF);
    CHECK_EQ(hxfr__recv_with_fds(sv[1], &b, 1, NULL, 1, NULL, NULL), -EINVAL);
    CHECK_EQ(hxfr__recv_with_fds(sv[1], &b, 1, fds, -1, NULL, NULL), -EINVAL);
    CHECK_EQ(hxfr__recv_with_fds(sv[1], &b, 0, fds, 1, NULL, NULL), -EINVAL);
    CHECK_EQ(hxfr__recv_with_fds(sv[1], NULL, 1, fds, 1, NULL, NULL), -EINVAL);

    /* A closed peer: EPIPE, no SIGPIPE (the default action would kill us). */
    signal(SIGPIPE, SIG_DFL);
    close(sv[1]);
    CHECK_EQ(hxfr__send_with_fds(sv[0], &iov, 1, NULL, 0), -EPIPE);
    CHECK_EQ(hxfr__write_all(sv[0], "x", 1), -EPIPE);
    close(sv[0]);
}

TEST(fdpass_surplus_closed)
{
    int sv[2], fds[HXFR_MAX_PASSED_FDS], nfds = -1;
    bool trunc = true;
    char b;

    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    int before = count_fds();
    int mfd = make_memfd("surplus");
    raw_send_fds(sv[0], mfd, 6);
    close(mfd);

    CHECK_EQ(hxfr__recv_with_fds(sv[1], &b, 1, fds, 4, &nfds, &trunc), 1);
    CHECK_EQ(nfds, 4);
    CHECK(!trunc);
    /* Exactly the 4 kept ones are open; the 2 extra were closed. */
    CHECK_EQ(count_fds(), before + 4);
    for (int i = 0; i < 4; i++) {
        char buf[8];
        CHECK_EQ(pread(fds[i], buf, 7, 0), 7);
        CHECK_MEM(buf, "surplus", 7);
        close(fds[i]);
    }
    CHECK_EQ(count_fds(), before);

    /* max_fds 0 (or nowhere to store them): every one is closed. */
    mfd = make_memfd("none");
    raw_send_fds(sv[0], mfd, 3);
    close(mfd);
    CHECK_EQ(hxfr__recv_with_fds(sv[1], &b, 1, fds, 0, &nfds, &trunc), 1);
    CHECK_EQ(nfds, 0);
    CHECK_EQ(count_fds(), before);
    mfd = make_memfd("none");
    raw_send_fds(sv[0], mfd, 2);
    close(mfd);
    CHECK_EQ(hxfr__recv_with_fds(sv[1], &b, 1, fds, 4, NULL, NULL), 1);
    CHECK_EQ(count_fds(), before);
    close(sv[0]);
    close(sv[1]);
}

TEST(fdpass_ctrunc_closes_all)
{
    int sv[2], fds[HXFR_MAX_PASSED_FDS], nfds = -1;
    bool trunc = false;
    char b;

    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    int before = count_fds();
    int mfd = make_memfd("flood");
    /* More than the receiver's control buffer holds: the kernel installs
     * what fits, drops the rest and reports MSG_CTRUNC. */
    raw_send_fds(sv[0], mfd, HXFR_RECV_FDS_CAP + 5);
    close(mfd);

    CHECK_EQ(hxfr__recv_with_fds(sv[1], &b, 1, fds, HXFR_MAX_PASSED_FDS, &nfds, &trunc), 1);
    CHECK(trunc);
    CHECK_EQ(nfds, 0);
    CHECK_EQ(b, 'F');
    CHECK_EQ(count_fds(), before);

    /* The stream goes on normally after it. */
    char x = 'y';
    struct iovec iov = {&x, 1};
    mfd = make_memfd("after");
    CHECK_EQ(hxfr__send_with_fds(sv[0], &iov, 1, &mfd, 1), 1);
    close(mfd);
    CHECK_EQ(hxfr__recv_with_fds(sv[1], &b, 1, fds, HXFR_MAX_PASSED_FDS, &nfds, &trunc), 1);
    CHECK(!trunc);
    CHECK_EQ(nfds, 1);
    CHECK_EQ(b, 'y');
    close(fds[0]);
    CHECK_EQ(count_fds(), before);
    close(sv[0]);
    close(sv[1]);
}

TEST(fdpass_non_socket_falls_back)
{
    int p[2], nfds = -1;
    bool trunc = true;
    char buf[8];
    struct iovec iov = {"abc", 3};

    /* A serial port is no socket: bytes still flow, fds cannot. */
    CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
    CHECK_EQ(hxfr__send_with_fds(p[1], &iov, 1, NULL, 0), 3);
    CHECK_EQ(hxfr__recv_with_fds(p[0], buf, sizeof(buf), NULL, 0, &nfds, &trunc), 3);
    CHECK_MEM(buf, "abc", 3);
    CHECK_EQ(nfds, 0);
    CHECK(!trunc);
    CHECK(hxfr__send_with_fds(p[1], &iov, 1, &p[0], 1) < 0);
    close(p[0]);
    close(p[1]);
}

/* The test runs in its own forked process (the harness), so moving a
 * listening socket to fd 3 and setting the variables touches nothing else. */
TEST(sd_listen_fds_activation)
{
    struct hxfr_uri u;
    char bound[64], pid[32];
    int fds[4] = {-1, -1, -1, -1};

    /* Not activated at all. */
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    CHECK_EQ(hxfr__sd_listen_fds(fds, 4), 0);

    CHECK_EQ(hxfr__uri_parse("tcp::0", true, &u), 0);
    int lfd = hxfr__transport_listen(&u);
    CHECK(lfd >= 0);
    CHECK(hxfr__socket_bound_uri(lfd, bound, sizeof(bound)) > 0);
    if (lfd != 3) {
        CHECK_EQ(dup2(lfd, 3), 3);
        close(lfd);
    }
    /* As systemd hands it over: blocking, inheritable. */
    CHECK_EQ(fcntl(3, F_SETFD, 0), 0);
    CHECK_EQ(fcntl(3, F_SETFL, fcntl(3, F_GETFL) & ~O_NONBLOCK), 0);

    /* Meant for another process: left alone. */
    snprintf(pid, sizeof(pid), "%d", (int)getpid() + 1);
    setenv("LISTEN_PID", pid, 1);
    setenv("LISTEN_FDS", "1", 1);
    CHECK_EQ(hxfr__sd_listen_fds(fds, 4), 0);
    CHECK(getenv("LISTEN_FDS") != NULL);

    /* Malformed. */
    snprintf(pid, sizeof(pid), "%d", (int)getpid());
    setenv("LISTEN_PID", pid, 1);
    setenv("LISTEN_FDS", "1x", 1);
    CHECK_EQ(hxfr__sd_listen_fds(fds, 4), -EINVAL);

    setenv("LISTEN_FDS", "1", 1);
    setenv("LISTEN_FDNAMES", "hxfr", 1);
    CHECK_EQ(hxfr__sd_listen_fds(fds, 4), 1);
    CHECK_EQ(fds[0], 3);
    CHECK(fcntl(3, F_GETFD) & FD_CLOEXEC);
    CHECK(fcntl(3, F_GETFL) & O_NONBLOCK);
    CHECK(getenv("LISTEN_PID") == NULL);
    CHECK(getenv("LISTEN_FDS") == NULL);
    CHECK(getenv("LISTEN_FDNAMES") == NULL);
    /* Once consumed, a second call finds nothing. */
    CHECK_EQ(hxfr__sd_listen_fds(fds, 4), 0);

    /* The handed-over socket serves. */
    struct hxfr_uri cu;
    CHECK_EQ(hxfr__uri_parse(bound, false, &cu), 0);
    int c = hxfr__transport_connect(&cu);
    CHECK(c >= 0);
    struct pollfd pfd = {.fd = 3, .events = POLLIN};
    CHECK_EQ(poll(&pfd, 1, 10000), 1);
    int s = hxfr__transport_accept(3);
    CHECK(s >= 0);
    close(s);
    close(c);

    /* Two passed, room for one: the second is closed, not leaked. */
    CHECK_EQ(dup2(3, 4), 4);
    setenv("LISTEN_PID", pid, 1);
    setenv("LISTEN_FDS", "2", 1);
    CHECK_EQ(hxfr__sd_listen_fds(fds, 1), 1);
    CHECK_EQ(fds[0], 3);
    CHECK(fcntl(4, F_GETFD) < 0);

    /* A promised fd that is not open. */
    setenv("LISTEN_PID", pid, 1);
    setenv("LISTEN_FDS", "2", 1);
    CHECK_EQ(hxfr__sd_listen_fds(fds, 4), -EBADF);
    /* The ones taken before the failure were closed too. */
    CHECK(fcntl(3, F_GETFD) < 0);
}

static void on_alarm(int sig)
{
    (void)sig;
}

/* The child writes with a timer interrupting it every millisecond, so the
 * blocking writes return short counts and EINTR; the parent reads slowly
 * and checks every byte. */
TEST(writev_all_short_writes_and_eintr)
{
    enum { NIOV = 3000, STEP = 701 };
    int sv[2];
    size_t total = 0;

    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    int small = 4096;
    CHECK_EQ(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
    CHECK_EQ(setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)), 0);
    for (int i = 0; i < NIOV; i++) {
        total += (size_t)(i % 7 == 0 ? 0 : (i * STEP) % 977 + 1);
    }

    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        static struct iovec iov[NIOV];
        unsigned char *data = malloc(total);
        size_t off = 0;
        if (!data) {
            _exit(2);
        }
        for (size_t k = 0; k < total; k++) {
            data[k] = (unsigned char)(k * 31 + 7);
        }
        for (int i = 0; i < NIOV; i++) {
            size_t len = (size_t)(i % 7 == 0 ? 0 : (i * STEP) % 977 + 1);
            iov[i].iov_base = data + off;
            iov[i].iov_len = len;
            off += len;
        }
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_alarm; /* no SA_RESTART: writes see EINTR */
        sigaction(SIGALRM, &sa, NULL);
        struct itimerval it = {{0, 1000}, {0, 1000}};
        setitimer(ITIMER_REAL, &it, NULL);
        int r = hxfr__writev_all(sv[0], iov, NIOV);
        struct itimerval off_it = {{0, 0}, {0, 0}};
        setitimer(ITIMER_REAL, &off_it, NULL);
        int r2 = hxfr__write_all(sv[0], data, 1000);
        free(data);
        _exit(r == 0 && r2 == 0 ? 0 : 1);
    }
    close(sv[0]);

    unsigned char buf[1000];
    size_t got = 0;
    /* Let the writer fill the socket and block, so that timer signals hit
     * it while it has written nothing yet (EINTR) as well as mid-way. The
     * result does not depend on this delay, only the coverage does. */
    usleep(20000);
    while (got < total + 1000) {
        size_t want = sizeof(buf) < 333 ? sizeof(buf) : 333;
        ssize_t n = read(sv[1], buf, want);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        CHECK(n > 0);
        for (ssize_t k = 0; k < n; k++) {
            size_t pos = got + (size_t)k;
            size_t idx = pos < total ? pos : pos - total;
            if (buf[k] != (unsigned char)(idx * 31 + 7)) {
                FAIL("byte %zu: %02x", pos, buf[k]);
            }
        }
        got += (size_t)n;
    }
    char extra;
    CHECK_EQ(read(sv[1], &extra, 1), 0);
    int status;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK(WIFEXITED(status));
    CHECK_EQ(WEXITSTATUS(status), 0);
    close(sv[1]);
}

TEST(write_all_pipe_and_errors)
{
    int p[2];
    char buf[4];
    struct iovec iov[3] = {{"ab", 2}, {"", 0}, {"cd", 2}};

    CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
    CHECK_EQ(hxfr__writev_all(p[1], iov, 3), 0);
    /* The entries were advanced to nothing left. */
    CHECK_EQ(iov[0].iov_len, 0);
    CHECK_EQ(iov[2].iov_len, 0);
    CHECK_EQ(read(p[0], buf, 4), 4);
    CHECK_MEM(buf, "abcd", 4);
    CHECK_EQ(hxfr__write_all(p[1], NULL, 0), 0);
    CHECK_EQ(hxfr__writev_all(p[1], NULL, 0), 0);
    CHECK_EQ(hxfr__write_all(p[1], NULL, 1), -EINVAL);
    CHECK_EQ(hxfr__writev_all(p[1], iov, -1), -EINVAL);
    CHECK_EQ(hxfr__write_all(-1, "x", 1), -EBADF);

    /* A non-blocking pipe that fills up reports EAGAIN instead of spinning. */
    CHECK_EQ(fcntl(p[1], F_SETFL, O_NONBLOCK), 0);
    static char big[1 << 20];
    CHECK_EQ(hxfr__write_all(p[1], big, sizeof(big)), -EAGAIN);
    close(p[0]);
    close(p[1]);
}
