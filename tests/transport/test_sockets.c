/* Listening, accepting and connecting on UNIX, TCP and AF_VSOCK sockets, and
 * serial ports (a pty stands in for a virtio-serial port). */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include "transport.h"

#include "harness.h"

static char tmpdir[64];

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

/* Each test runs in its own process: the folder goes when it exits, passed
 * or failed. */
static void remove_tmpdir(void)
{
    if (tmpdir[0]) {
        nftw(tmpdir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    }
}

static void make_tmpdir(void)
{
    strcpy(tmpdir, "/tmp/hxfr-transport-XXXXXX");
    CHECK(mkdtemp(tmpdir) != NULL);
    atexit(remove_tmpdir);
}

static void sock_uri(struct hxfr_uri *u, const char *rel)
{
    char s[256];

    snprintf(s, sizeof(s), "unix:%s/%s", tmpdir, rel);
    CHECK_EQ(hxfr__uri_parse(s, true, u), 0);
}

static void wait_readable(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    /* Generous: only a broken build waits this long (the harness alarm
     * ends the test anyway). */
    CHECK_EQ(poll(&p, 1, 10000), 1);
}

static int accept_one(int lfd)
{
    wait_readable(lfd);
    int fd = hxfr__transport_accept(lfd);
    CHECK(fd >= 0);
    CHECK(fcntl(fd, F_GETFL) & O_NONBLOCK);
    CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    return fd;
}

static void read_exact(int fd, void *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = read(fd, (char *)buf + got, len - got);
        if (n < 0 && errno == EAGAIN) {
            wait_readable(fd);
            continue;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        CHECK(n > 0);
        got += (size_t)n;
    }
}

/* Both directions carry bytes unchanged. */
static void exchange(int a, int b)
{
    const char ping[] = "ping\0\r\n\x03\xff", pong[] = "pong-pong";
    char buf[32];

    CHECK_EQ(hxfr__write_all(a, ping, sizeof(ping)), 0);
    read_exact(b, buf, sizeof(ping));
    CHECK_MEM(buf, ping, sizeof(ping));
    CHECK_EQ(hxfr__write_all(b, pong, sizeof(pong)), 0);
    read_exact(a, buf, sizeof(pong));
    CHECK_MEM(buf, pong, sizeof(pong));
}

TEST(unix_listen_accept_connect)
{
    struct hxfr_uri u;
    struct stat st;
    char path[256], bound[256];

    make_tmpdir();
    sock_uri(&u, "a/b/hxfr.sock");
    int lfd = hxfr__transport_listen(&u);
    CHECK(lfd >= 0);
    CHECK(fcntl(lfd, F_GETFL) & O_NONBLOCK);
    CHECK(fcntl(lfd, F_GETFD) & FD_CLOEXEC);

    /* Missing folders were made 0750; the socket file is 0660. */
    snprintf(path, sizeof(path), "%s/a", tmpdir);
    CHECK_EQ(stat(path, &st), 0);
    CHECK_EQ(st.st_mode & 07777, 0750);
    snprintf(path, sizeof(path), "%s/a/b", tmpdir);
    CHECK_EQ(stat(path, &st), 0);
    CHECK(S_ISDIR(st.st_mode));
    CHECK_EQ(st.st_mode & 07777, 0750);
    CHECK_EQ(lstat(u.path, &st), 0);
    CHECK(S_ISSOCK(st.st_mode));
    CHECK_EQ(st.st_mode & 07777, 0660);

    snprintf(path, sizeof(path), "unix:%s", u.path);
    CHECK_EQ(hxfr__socket_bound_uri(lfd, bound, sizeof(bound)), (int)strlen(path));
    CHECK(strcmp(bound, path) == 0);
    CHECK_EQ(hxfr__socket_bound_uri(lfd, bound, 8), -ENOSPC);

    CHECK_EQ(hxfr__transport_accept(lfd), -EAGAIN);

    int c = hxfr__transport_connect(&u);
    CHECK(c >= 0);
    /* The connecting side is left blocking. */
    CHECK(!(fcntl(c, F_GETFL) & O_NONBLOCK));
    CHECK(fcntl(c, F_GETFD) & FD_CLOEXEC);
    CHECK(hxfr__fd_is_unix_socket(c));
    int s = accept_one(lfd);
    CHECK(hxfr__fd_is_unix_socket(s));
    exchange(c, s);
    CHECK_EQ(hxfr__transport_accept(lfd), -EAGAIN);

    int p[2];
    CHECK_EQ(pipe(p), 0);
    CHECK(!hxfr__fd_is_unix_socket(p[0]));
    CHECK(!hxfr__fd_is_unix_socket(-1));
    close(p[0]);
    close(p[1]);
    close(c);
    close(s);
    close(lfd);
}

TEST(unix_stale_socket_removed)
{
    struct hxfr_uri u;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};

    make_tmpdir();
    sock_uri(&u, "stale.sock");
    /* A socket file left behind by a process that is gone. */
    int old = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK(old >= 0);
    strcpy(sa.sun_path, u.path);
    CHECK_EQ(bind(old, (struct sockaddr *)&sa, sizeof(sa)), 0);
    close(old);
    CHECK_EQ(access(u.path, F_OK), 0);
    CHECK_EQ(hxfr__transport_connect(&u), -ECONNREFUSED);

    int lfd = hxfr__transport_listen(&u);
    CHECK(lfd >= 0);
    int c = hxfr__transport_connect(&u);
    CHECK(c >= 0);
    int s = accept_one(lfd);
    exchange(c, s);
    close(c);
    close(s);
    close(lfd);
}

TEST(unix_live_socket_in_use)
{
    struct hxfr_uri u;

    make_tmpdir();
    sock_uri(&u, "live.sock");
    int lfd = hxfr__transport_listen(&u);
    CHECK(lfd >= 0);
    CHECK_EQ(hxfr__transport_listen(&u), -EADDRINUSE);

    /* The probe left the first listener intact (its probe connection is
     * gone: accept finds nothing or only an aborted one). */
    int drained = hxfr__transport_accept(lfd);
    if (drained >= 0) {
        char b;
        CHECK_EQ(read(drained, &b, 1), 0);
        close(drained);
    }
    int c = hxfr__transport_connect(&u);
    CHECK(c >= 0);
    int s = accept_one(lfd);
    exchange(c, s);
    close(c);
    close(s);
    close(lfd);
}

TEST(unix_not_a_socket_kept)
{
    struct hxfr_uri u;
    char buf[16];

    make_tmpdir();
    sock_uri(&u, "file");
    int f = open(u.path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    CHECK(f >= 0);
    CHECK_EQ(write(f, "precious", 8), 8);
    close(f);

    CHECK_EQ(hxfr__transport_listen(&u), -EEXIST);
    f = open(u.path, O_RDONLY);
    CHECK(f >= 0);
    CHECK_EQ(read(f, buf, sizeof(buf)), 8);
    CHECK_MEM(buf, "precious", 8);
    close(f);

    /* A folder in the way of the parent folder. */
    sock_uri(&u, "file/sub.sock");
    CHECK_EQ(hxfr__transport_listen(&u), -ENOTDIR);
    /* A folder at the socket path itself is not removed either. */
    sock_uri(&u, "dir");
    CHECK_EQ(mkdir(u.path, 0700), 0);
    CHECK_EQ(hxfr__transport_listen(&u), -EEXIST);
    CHECK_EQ(rmdir(u.path), 0);
}

TEST(unix_symlink_and_relative_path)
{
    struct hxfr_uri u, target;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    char link[256];

    make_tmpdir();
    /* A symlink to a stale socket is not a socket: nothing is removed,
     * neither the link nor what it points to. */
    sock_uri(&target, "target.sock");
    int old = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK(old >= 0);
    strcpy(sa.sun_path, target.path);
    CHECK_EQ(bind(old, (struct sockaddr *)&sa, sizeof(sa)), 0);
    close(old);
    snprintf(link, sizeof(link), "%s/link.sock", tmpdir);
    CHECK_EQ(symlink(target.path, link), 0);
    sock_uri(&u, "link.sock");
    CHECK_EQ(hxfr__transport_listen(&u), -EEXIST);
    struct stat st;
    CHECK_EQ(lstat(link, &st), 0);
    CHECK(S_ISLNK(st.st_mode));
    CHECK_EQ(lstat(target.path, &st), 0);
    CHECK(S_ISSOCK(st.st_mode));

    /* A relative path is relative to the current folder. */
    CHECK_EQ(chdir(tmpdir), 0);
    CHECK_EQ(hxfr__uri_parse("unix:rel.sock", true, &u), 0);
    int lfd = hxfr__transport_listen(&u);
    CHECK(lfd >= 0);
    CHECK_EQ(lstat("rel.sock", &st), 0);
    CHECK(S_ISSOCK(st.st_mode));
    CHECK_EQ(hxfr__uri_parse("sub/rel.sock", true, &u), 0);
    int lfd2 = hxfr__transport_listen(&u);
    CHECK(lfd2 >= 0);
    CHECK_EQ(stat("sub", &st), 0);
    CHECK_EQ(st.st_mode & 07777, 0750);
    int c = hxfr__transport_connect(&u);
    CHECK(c >= 0);
    int s = accept_one(lfd2);
    exchange(c, s);
    close(c);
    close(s);
    close(lfd2);
    close(lfd);
}

TEST(unix_path_too_long)
{
    struct hxfr_uri u;

    memset(&u, 0, sizeof(u));
    u.kind = HXFR_TRANSPORT_UNIX;
    /* No NUL inside the array at all. */
    memset(u.path, 'x', sizeof(u.path));
    CHECK_EQ(hxfr__transport_listen(&u), -ENAMETOOLONG);
    CHECK_EQ(hxfr__transport_connect(&u), -ENAMETOOLONG);
    u.path[0] = '\0';
    CHECK_EQ(hxfr__transport_listen(&u), -EINVAL);
}

TEST(unix_connect_errors)
{
    struct hxfr_uri u;

    make_tmpdir();
    sock_uri(&u, "nothing.sock");
    CHECK_EQ(hxfr__transport_connect(&u), -ENOENT);
    u.kind = (enum hxfr_transport_kind)42;
    CHECK_EQ(hxfr__transport_connect(&u), -EINVAL);
    CHECK_EQ(hxfr__transport_listen(&u), -EINVAL);
    CHECK_EQ(hxfr__transport_listen(NULL), -EINVAL);
    CHECK_EQ(hxfr__transport_connect(NULL), -EINVAL);
    CHECK_EQ(hxfr__transport_accept(-1), -EBADF);
}

static int eintr_listener = -1;
static int eintr_accepted[256];
static volatile sig_atomic_t eintr_count;

/* Runs while hxfr__transport_connect is blocked on a full backlog: each
 * tick interrupts it and (from the second tick on) makes room by accepting
 * one pending connection (accept is async-signal-safe). */
static void eintr_tick(int sig)
{
    (void)sig;
    int n = eintr_count;
    if (n > 0 && n < 256) {
        eintr_accepted[n] = accept4(eintr_listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    }
    eintr_count = n + 1;
}

TEST(unix_connect_interrupted)
{
    struct hxfr_uri u;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fillers[8], nfill = 0;

    make_tmpdir();
    sock_uri(&u, "backlog.sock");
    /* A listener with the smallest backlog, filled up so that a blocking
     * connect has to wait. */
    eintr_listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(eintr_listener >= 0);
    strcpy(sa.sun_path, u.path);
    CHECK_EQ(bind(eintr_listener, (struct sockaddr *)&sa, sizeof(sa)), 0);
    CHECK_EQ(listen(eintr_listener, 0), 0);
    for (;;) {
        CHECK(nfill < 8);
        int f = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        CHECK(f >= 0);
        fillers[nfill++] = f;
        if (connect(f, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
            CHECK_EQ(errno, EAGAIN);
            break;
        }
    }

    struct sigaction act;
    memset(&act, 0, sizeof(act));
    act.sa_handler = eintr_tick; /* no SA_RESTART: connect sees EINTR */
    CHECK_EQ(sigaction(SIGALRM, &act, NULL), 0);
    struct itimerval it = {{0, 20000}, {0, 20000}};
    CHECK_EQ(setitimer(ITIMER_REAL, &it, NULL), 0);
    int c = hxfr__transport_connect(&u);
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    /* The timer replaced the harness's own timeout (also SIGALRM): put a
     * timeout back. */
    signal(SIGALRM, SIG_DFL);
    alarm(30);

    /* Interrupted or not, the result is a connected socket. */
    CHECK(c >= 0);
    printf("# connect interrupted %d times\n", (int)eintr_count);
    struct sockaddr_un peer;
    socklen_t plen = sizeof(peer);
    CHECK_EQ(getpeername(c, (struct sockaddr *)&peer, &plen), 0);
    CHECK_EQ(hxfr__write_all(c, "z", 1), 0);
    close(c);
    for (int i = 0; i < nfill; i++) {
        close(fillers[i]);
    }
    for (int i = 1; i < eintr_count && i < 256; i++) {
        if (eintr_accepted[i] >= 0) {
            close(eintr_accepted[i]);
        }
    }
    close(eintr_listener);
}

static void tcp_round_trip(const char *listen_uri, const char *prefix)
{
    struct hxfr_uri u, cu;
    char bound[128];
    int one = 0;
    socklen_t len = sizeof(one);

    CHECK_EQ(hxfr__uri_parse(listen_uri, true, &u), 0);
    int lfd = hxfr__transport_listen(&u);
    if (lfd == -EADDRNOTAVAIL || lfd == -EAFNOSUPPORT) {
        SKIP("%s: not available here (%s)", listen_uri, strerror(-lfd));
    }
    CHECK(lfd >= 0);
    CHECK(fcntl(lfd, F_GETFL) & O_NONBLOCK);
    int n = hxfr__socket_bound_uri(lfd, bound, sizeof(bound));
    CHECK(n > 0);
    CHECK(strncmp(bound, prefix, strlen(prefix)) == 0);
    /* The kernel picked a real port. */
    CHECK(strcmp(bound + strlen(prefix), "0") != 0);

    CHECK_EQ(hxfr__uri_parse(bound, false, &cu), 0);
    CHECK(cu.port != 0);
    int c = hxfr__transport_connect(&cu);
    CHECK(c >= 0);
    CHECK(!(fcntl(c, F_GETFL) & O_NONBLOCK));
    CHECK(!hxfr__fd_is_unix_socket(c));
    CHECK_EQ(getsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, &len), 0);
    CHECK(one != 0);
    int s = accept_one(lfd);
    one = 0;
    CHECK_EQ(getsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, &len), 0);
    CHECK(one != 0);
    exchange(c, s);
    close(c);
    close(s);
    close(lfd);
}

TEST(tcp_ephemeral_port)
{
    tcp_round_trip("tcp::0", "tcp:127.0.0.1:");
    tcp_round_trip("tcp:127.0.0.1:0", "tcp:127.0.0.1:");
}

/* IPv6 loopback on its own: a machine without it skips this test only. */
TEST(tcp_ephemeral_port_ipv6)
{
    tcp_round_trip("tcp:[::1]:0", "tcp:[::1]:");
}

TEST(tcp_empty_host_is_loopback)
{
    struct hxfr_uri u;
    char bound[128];

    memset(&u, 0, sizeof(u));
    u.kind = HXFR_TRANSPORT_TCP; /* no host, port 0 (ephemeral) */
    int lfd = hxfr__transport_listen(&u);
    CHECK(lfd >= 0);
    CHECK(hxfr__socket_bound_uri(lfd, bound, sizeof(bound)) > 0);
    CHECK(strcmp(bound, "tcp:127.0.0.1:0") != 0);
    CHECK(strncmp(bound, "tcp:127.0.0.1:", 14) == 0);
    close(lfd);
}

TEST(tcp_resolves_names)
{
    struct hxfr_uri u, cu;
    char bound[128];

    CHECK_EQ(hxfr__uri_parse("tcp::0", true, &u), 0);
    int lfd = hxfr__transport_listen(&u);
    CHECK(lfd >= 0);
    CHECK(hxfr__socket_bound_uri(lfd, bound, sizeof(bound)) > 0);
    CHECK_EQ(hxfr__uri_parse(bound, false, &cu), 0);
    /* "localhost" may resolve to ::1 first (nobody listens there): the
     * connect must go on to 127.0.0.1. */
    strcpy(cu.host, "localhost");
    int c = hxfr__transport_connect(&cu);
    CHECK(c >= 0);
    int s = accept_one(lfd);
    exchange(c, s);
    close(c);
    close(s);

    /* A name that cannot resolve (the .invalid TLD is reserved). */
    strcpy(cu.host, "no-such-host.invalid");
    c = hxfr__transport_connect(&cu);
    CHECK(c < 0);
    close(lfd);
}

/* Waits until a connect in progress is over, then asks for its result. */
static int finish_connect(int fd, enum hxfr_transport_kind kind)
{
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    CHECK_EQ(poll(&p, 1, 10000), 1);
    return hxfr__transport_connect_finish(fd, kind);
}

/* c is connected to lfd: accept it, carry bytes both ways (blocking), close. */
static void accept_and_exchange(int lfd, int c)
{
    int s = accept_one(lfd);
    CHECK(fcntl(c, F_SETFL, 0) == 0);
    CHECK(fcntl(s, F_SETFL, 0) == 0);
    exchange(c, s);
    close(c);
    close(s);
}

TEST(nonblocking_connect)
{
    struct hxfr_uri lu, cu;
    struct hxfr_addr a;
    char bound[160];

    make_tmpdir();
    /* UNIX: resolved once, connected twice (a reconnect reuses it). */
    sock_uri(&lu, "nb.sock");
    int lfd = hxfr__transport_listen(&lu);
    CHECK(lfd >= 0);
    CHECK_EQ(hxfr__uri_parse(lu.path, false, &cu), 0);
    CHECK_EQ(hxfr__transport_resolve(&cu, &a), 0);
    CHECK_EQ(a.kind, HXFR_TRANSPORT_UNIX);
    for (int round = 0; round < 2; round++) {
        int c = hxfr__transport_connect_start(&a);
        CHECK(c >= 0);
        CHECK(fcntl(c, F_GETFL) & O_NONBLOCK);
        CHECK(fcntl(c, F_GETFD) & FD_CLOEXEC);
        CHECK_EQ(finish_connect(c, a.kind), 0);
        accept_and_exchange(lfd, c);
    }
    close(lfd);
    /* Nobody listens any more: refused at once or when finished. */
    unlink(lu.path);
    int c = hxfr__transport_connect_start(&a);
    CHECK(c == -ENOENT || (c >= 0 && finish_connect(c, a.kind) < 0));
    if (c >= 0) {
        close(c);
    }

    /* TCP, with TCP_NODELAY. */
    CHECK_EQ(hxfr__uri_parse("tcp:127.0.0.1:0", true, &lu), 0);
    lfd = hxfr__transport_listen(&lu);
    CHECK(lfd >= 0);
    CHECK(hxfr__socket_bound_uri(lfd, bound, sizeof(bound)) > 0);
    CHECK_EQ(hxfr__uri_parse(bound, false, &cu), 0);
    CHECK_EQ(hxfr__transport_resolve(&cu, &a), 0);
    c = hxfr__transport_connect_start(&a);
    CHECK(c >= 0);
    CHECK_EQ(finish_connect(c, a.kind), 0);
    int one = 0;
    socklen_t len = sizeof(one);
    CHECK_EQ(getsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, &len), 0);
    CHECK(one != 0);
    accept_and_exchange(lfd, c);
    close(lfd);
    /* The port is closed now: the connect fails when it finishes. */
    c = hxfr__transport_connect_start(&a);
    CHECK(c == -ECONNREFUSED || (c >= 0 && finish_connect(c, a.kind) == -ECONNREFUSED));
    if (c >= 0) {
        close(c);
    }

    /* What cannot be resolved for a non-blocking connect. */
    CHECK_EQ(hxfr__uri_parse("serial:/dev/null", false, &cu), 0);
    CHECK_EQ(hxfr__transport_resolve(&cu, &a), -EOPNOTSUPP);
    CHECK_EQ(hxfr__uri_parse("tcp:no-such-host.invalid:1", false, &cu), 0);
    CHECK(hxfr__transport_resolve(&cu, &a) < 0);
}

TEST(vsock_listen_and_connect)
{
    struct hxfr_uri u;
    char bound[64];

    CHECK_EQ(hxfr__uri_parse("vsock:0", true, &u), 0);
    int lfd = hxfr__transport_listen(&u);
    if (lfd >= 0) {
        CHECK(fcntl(lfd, F_GETFL) & O_NONBLOCK);
        CHECK(hxfr__socket_bound_uri(lfd, bound, sizeof(bound)) > 0);
        printf("# vsock listening at %s\n", bound);
        CHECK(strncmp(bound, "vsock:", 6) == 0);
        CHECK(strcmp(bound, "vsock:0") != 0);
        CHECK_EQ(hxfr__transport_accept(lfd), -EAGAIN);
        close(lfd);
    } else {
        CHECK_EQ(lfd, -EAFNOSUPPORT);
    }

    /* No vsock loopback or host transport here: connecting to the host
     * (CID 2) or the local CID 1 fails with an error, without hanging. */
    CHECK_EQ(hxfr__uri_parse("vsock:", false, &u), 0);
    CHECK_EQ(u.cid, 2);
    int c = hxfr__transport_connect(&u);
    printf("# vsock connect to CID 2: %d (%s)\n", c, c < 0 ? strerror(-c) : "connected");
    if (c >= 0) {
        close(c);
    }
    CHECK(c < 0);
    CHECK(c != -EINVAL);
    CHECK_EQ(hxfr__uri_parse("vsock:1:5000", false, &u), 0);
    c = hxfr__transport_connect(&u);
    printf("# vsock connect to CID 1: %d (%s)\n", c, c < 0 ? strerror(-c) : "connected");
    if (c >= 0) {
        close(c);
    }
}

TEST(serial_pty_raw_bytes)
{
    struct hxfr_uri u;
    struct termios t;
    unsigned char out[256], in[256];
    char s[128];

    int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    CHECK(m >= 0);
    CHECK_EQ(grantpt(m), 0);
    CHECK_EQ(unlockpt(m), 0);
    const char *name = ptsname(m);
    CHECK(name != NULL);
    snprintf(s, sizeof(s), "serial:%s", name);
    CHECK_EQ(hxfr__uri_parse(s, false, &u), 0);
    CHECK_EQ(hxfr__transport_listen(&u), -EOPNOTSUPP);

    int fd = hxfr__transport_connect(&u);
    CHECK(fd >= 0);
    CHECK(isatty(fd));
    CHECK(!(fcntl(fd, F_GETFL) & O_NONBLOCK));
    CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    CHECK_EQ(tcgetattr(fd, &t), 0);
    CHECK(!(t.c_lflag & (ICANON | ECHO | ISIG | IEXTEN)));
    CHECK(!(t.c_iflag & (ICRNL | INLCR | IGNCR | IXON | ISTRIP)));
    CHECK(!(t.c_oflag & OPOST));
    CHECK(t.c_cflag & CLOCAL);

    /* Every byte value, including newline, CR, ^C, XON/XOFF and NUL. */
    for (int i = 0; i < 256; i++) {
        out[i] = (unsigned char)i;
    }
    CHECK_EQ(hxfr__write_all(m, out, sizeof(out)), 0);
    read_exact(fd, in, sizeof(in));
    CHECK_MEM(in, out, sizeof(out));
    for (int i = 0; i < 256; i++) {
        out[i] = (unsigned char)(255 - i);
    }
    CHECK_EQ(hxfr__write_all(fd, out, sizeof(out)), 0);
    read_exact(m, in, sizeof(in));
    CHECK_MEM(in, out, sizeof(out));

    /* Nothing else arrived (no echo of what the master wrote). */
    struct pollfd p = {.fd = m, .events = POLLIN};
    CHECK_EQ(poll(&p, 1, 50), 0);
    close(fd);
    close(m);
}

TEST(serial_char_device_not_tty)
{
    struct hxfr_uri u;
    char s[256];

    /* /dev/null is a character device but no tty (like a virtio port). */
    CHECK_EQ(hxfr__uri_parse("serial:/dev/null", false, &u), 0);
    int fd = hxfr__transport_connect(&u);
    CHECK(fd >= 0);
    CHECK(!isatty(fd));
    CHECK_EQ(hxfr__write_all(fd, "x", 1), 0);
    close(fd);

    CHECK_EQ(hxfr__uri_parse("serial:/nonexistent/port", false, &u), 0);
    CHECK_EQ(hxfr__transport_connect(&u), -ENOENT);

    make_tmpdir();
    snprintf(s, sizeof(s), "serial:%s/regular", tmpdir);
    CHECK_EQ(hxfr__uri_parse(s, false, &u), 0);
    int f = open(u.path, O_WRONLY | O_CREAT, 0600);
    CHECK(f >= 0);
    close(f);
    CHECK_EQ(hxfr__transport_connect(&u), -ENODEV);
}
