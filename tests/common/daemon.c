/* Runs the real hxfrd for integration tests; see daemon.h. */
#include "daemon.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define START_TIMEOUT_MS 30000
#define STOP_TIMEOUT_MS  30000

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void read_log(struct hxfr_test_daemon *d)
{
    FILE *f = fopen(d->log_path, "r");
    free(d->log);
    d->log = NULL;
    if (f) {
        fseek(f, 0, SEEK_END);
        long n = ftell(f);
        fseek(f, 0, SEEK_SET);
        if (n >= 0) {
            d->log = malloc((size_t)n + 1);
            if (d->log) {
                size_t got = fread(d->log, 1, (size_t)n, f);
                d->log[got] = '\0';
            }
        }
        fclose(f);
    }
    if (!d->log) {
        d->log = strdup("");
    }
}

static void dump_log(struct hxfr_test_daemon *d)
{
    read_log(d);
    fprintf(stderr, "---- hxfrd log (%s) ----\n%s---- end of hxfrd log ----\n", d->log_path,
            d->log ? d->log : "");
}

int hxfr_test_daemon_start(struct hxfr_test_daemon *d, unsigned flags,
                           const char *const *extra_args)
{
    const char *bin = getenv("HXFRD");
    int pipefd[2] = {-1, -1};

    memset(d, 0, sizeof(*d));
    if (!bin || !*bin) {
        fprintf(stderr, "daemon: HXFRD is not set (meson passes the hxfrd path)\n");
        return -1;
    }
    if (flags == 0) {
        flags = HXFR_TEST_DAEMON_UNIX;
    }
    const char *tmp = getenv("TMPDIR");
    snprintf(d->dir, sizeof(d->dir), "%s/hxfrd-test-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(d->dir)) {
        fprintf(stderr, "daemon: mkdtemp %s: %s\n", d->dir, strerror(errno));
        return -1;
    }
    snprintf(d->log_path, sizeof(d->log_path), "%s/hxfrd.log", d->dir);
    if (flags & HXFR_TEST_DAEMON_UNIX) {
        if (strlen(d->dir) + sizeof("/hxfr.sock") > sizeof(d->unix_path)) {
            fprintf(stderr, "daemon: temporary path %s too long\n", d->dir);
            goto fail;
        }
        memcpy(d->unix_path, d->dir, strlen(d->dir));
        memcpy(d->unix_path + strlen(d->dir), "/hxfr.sock", sizeof("/hxfr.sock"));
        snprintf(d->unix_uri, sizeof(d->unix_uri), "unix:%s", d->unix_path);
    }
    if (pipe2(pipefd, O_CLOEXEC) < 0) {
        fprintf(stderr, "daemon: pipe: %s\n", strerror(errno));
        goto fail;
    }

    const char *argv[64];
    char ready[32];
    int argc = 0;
    argv[argc++] = bin;
    if (flags & HXFR_TEST_DAEMON_UNIX) {
        argv[argc++] = "--listen";
        argv[argc++] = d->unix_uri;
    }
    if (flags & HXFR_TEST_DAEMON_TCP) {
        argv[argc++] = "--listen";
        argv[argc++] = "tcp:127.0.0.1:0";
    }
    snprintf(ready, sizeof(ready), "%d", pipefd[1]);
    argv[argc++] = "--ready-fd";
    argv[argc++] = ready;
    for (int i = 0; extra_args && extra_args[i] && argc < 62; i++) {
        argv[argc++] = extra_args[i];
    }
    argv[argc] = NULL;

    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "daemon: fork: %s\n", strerror(errno));
        goto fail;
    }
    if (pid == 0) {
        /* A test that fails exits at once: take the daemon with it. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() == 1) {
            _exit(127);
        }
        int log = open(d->log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (log >= 0) {
            dup2(log, 2);
            close(log);
        }
        int null = open("/dev/null", O_RDWR);
        if (null >= 0) {
            dup2(null, 0);
            dup2(null, 1);
            close(null);
        }
        /* The ready pipe's write end must survive exec. */
        fcntl(pipefd[1], F_SETFD, 0);
        signal(SIGPIPE, SIG_DFL);
        execv(bin, (char *const *)argv);
        fprintf(stderr, "exec %s: %s\n", bin, strerror(errno));
        _exit(127);
    }
    d->pid = pid;
    close(pipefd[1]);
    pipefd[1] = -1;

    /* Read the endpoint lines until the daemon closes the pipe. */
    char buf[1024];
    size_t have = 0;
    uint64_t deadline = now_ms() + START_TIMEOUT_MS;
    for (;;) {
        uint64_t now = now_ms();
        if (now >= deadline) {
            fprintf(stderr, "daemon: not ready within %d ms\n", START_TIMEOUT_MS);
            goto fail;
        }
        struct pollfd p = {.fd = pipefd[0], .events = POLLIN};
        int r = poll(&p, 1, (int)(deadline - now));
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            continue;
        }
        ssize_t n = read(pipefd[0], buf + have, sizeof(buf) - 1 - have);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        have += (size_t)n;
        if (have >= sizeof(buf) - 1) {
            break;
        }
    }
    buf[have] = '\0';
    close(pipefd[0]);
    pipefd[0] = -1;
    if (have == 0) {
        fprintf(stderr, "daemon: hxfrd exited or closed its ready fd without endpoints\n");
        goto fail;
    }
    for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
        if (strncmp(line, "tcp:", 4) == 0) {
            snprintf(d->tcp_uri, sizeof(d->tcp_uri), "%s", line);
            const char *colon = strrchr(line, ':');
            d->tcp_port = (uint16_t)atoi(colon + 1);
        }
    }
    if ((flags & HXFR_TEST_DAEMON_TCP) && d->tcp_port == 0) {
        fprintf(stderr, "daemon: no TCP endpoint among: %s\n", buf);
        goto fail;
    }
    if ((flags & HXFR_TEST_DAEMON_UNIX) && access(d->unix_path, F_OK) != 0) {
        fprintf(stderr, "daemon: socket %s missing after ready\n", d->unix_path);
        goto fail;
    }
    return 0;

fail:
    if (pipefd[0] >= 0) {
        close(pipefd[0]);
    }
    if (pipefd[1] >= 0) {
        close(pipefd[1]);
    }
    if (d->pid > 0) {
        dump_log(d);
    }
    hxfr_test_daemon_free(d);
    return -1;
}

int hxfr_test_daemon_stop(struct hxfr_test_daemon *d)
{
    int ret = 0;

    if (d->pid <= 0) {
        fprintf(stderr, "daemon: not running\n");
        return -1;
    }
    kill(d->pid, SIGTERM);
    uint64_t deadline = now_ms() + STOP_TIMEOUT_MS;
    int status = 0;
    for (;;) {
        pid_t r = waitpid(d->pid, &status, WNOHANG);
        if (r == d->pid) {
            break;
        }
        if (r < 0 && errno != EINTR) {
            fprintf(stderr, "daemon: waitpid: %s\n", strerror(errno));
            ret = -1;
            break;
        }
        if (now_ms() >= deadline) {
            fprintf(stderr, "daemon: no exit within %d ms of SIGTERM; killing it\n",
                    STOP_TIMEOUT_MS);
            kill(d->pid, SIGKILL);
            waitpid(d->pid, &status, 0);
            ret = -1;
            break;
        }
        usleep(10000);
    }
    d->pid = 0;
    d->exit_status = status;
    if (ret == 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
        if (WIFSIGNALED(status)) {
            fprintf(stderr, "daemon: hxfrd killed by signal %d\n", WTERMSIG(status));
        } else {
            fprintf(stderr, "daemon: hxfrd exited with status %d\n", WEXITSTATUS(status));
        }
        ret = -1;
    }
    if (d->unix_path[0] && access(d->unix_path, F_OK) == 0) {
        fprintf(stderr, "daemon: socket file %s left behind\n", d->unix_path);
        ret = -1;
    }
    if (ret < 0) {
        dump_log(d);
    } else {
        read_log(d);
    }
    return ret;
}

const char *hxfr_test_daemon_log(struct hxfr_test_daemon *d)
{
    if (d->pid > 0 || !d->log) {
        read_log(d);
    }
    return d->log;
}

int hxfr_test_daemon_log_count(struct hxfr_test_daemon *d, const char *needle)
{
    const char *p = hxfr_test_daemon_log(d);
    int count = 0;
    while (*p) {
        const char *end = strchr(p, '\n');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char line[1024];
        size_t n = len < sizeof(line) - 1 ? len : sizeof(line) - 1;
        memcpy(line, p, n);
        line[n] = '\0';
        if (strstr(line, needle)) {
            count++;
        }
        p += len + (end ? 1 : 0);
    }
    return count;
}

int hxfr_test_daemon_unexpected_errors(struct hxfr_test_daemon *d, const char *const *allowed)
{
    const char *p = hxfr_test_daemon_log(d);
    int count = 0;
    while (*p) {
        const char *end = strchr(p, '\n');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char line[1024];
        size_t n = len < sizeof(line) - 1 ? len : sizeof(line) - 1;
        memcpy(line, p, n);
        line[n] = '\0';
        /* Sanitizer reports count too: they never belong in a clean log. */
        if (strstr(line, "[error]") || strstr(line, "ERROR: AddressSanitizer") ||
            strstr(line, "runtime error:") || strstr(line, "ERROR: LeakSanitizer")) {
            bool ok = false;
            for (int i = 0; allowed && allowed[i]; i++) {
                if (strstr(line, allowed[i])) {
                    ok = true;
                }
            }
            if (!ok) {
                fprintf(stderr, "daemon: unexpected log line: %s\n", line);
                count++;
            }
        }
        p += len + (end ? 1 : 0);
    }
    return count;
}

void hxfr_test_daemon_free(struct hxfr_test_daemon *d)
{
    if (d->pid > 0) {
        kill(d->pid, SIGKILL);
        waitpid(d->pid, NULL, 0);
        d->pid = 0;
    }
    if (d->dir[0]) {
        DIR *dir = opendir(d->dir);
        if (dir) {
            struct dirent *e;
            while ((e = readdir(dir))) {
                if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
                    char path[600];
                    snprintf(path, sizeof(path), "%s/%s", d->dir, e->d_name);
                    unlink(path);
                }
            }
            closedir(dir);
        }
        rmdir(d->dir);
        d->dir[0] = '\0';
    }
    free(d->log);
    d->log = NULL;
}

int hxfr_test_daemon_connect(const struct hxfr_test_daemon *d, bool tcp)
{
    int fd;
    if (tcp) {
        if (!d->tcp_port) {
            return -ENOENT;
        }
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            return -errno;
        }
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(d->tcp_port)};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
            int err = -errno;
            close(fd);
            return err;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        return fd;
    }
    if (!d->unix_path[0]) {
        return -ENOENT;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -errno;
    }
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    size_t plen = strlen(d->unix_path);
    if (plen >= sizeof(a.sun_path)) {
        close(fd);
        return -ENAMETOOLONG;
    }
    memcpy(a.sun_path, d->unix_path, plen + 1);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    return fd;
}

int hxfr_test_send_all(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int hxfr_test_send_msg(int fd, const struct hxfr_msg *m, const void *body, uint32_t body_len)
{
    uint8_t buf[HXFR_HEADER_SIZE + HXFR_MAX_FIXED_SIZE];
    int n = hxfr_msg_encode(m, body_len, buf, sizeof(buf));
    if (n < 0) {
        return n;
    }
    int r = hxfr_test_send_all(fd, buf, (size_t)n);
    if (r == 0 && body_len > 0) {
        r = hxfr_test_send_all(fd, body, body_len);
    }
    return r;
}

/* Reads exactly len bytes before the deadline. Returns 1, 0 (EOF before the
 * first byte), -ETIMEDOUT, -EPIPE (EOF in the middle) or -errno. */
static int read_exact(int fd, uint8_t *buf, size_t len, uint64_t deadline)
{
    size_t got = 0;
    while (got < len) {
        uint64_t now = now_ms();
        if (now >= deadline) {
            return -ETIMEDOUT;
        }
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, (int)(deadline - now));
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            continue;
        }
        ssize_t n = recv(fd, buf ? buf + got : NULL, len - got, buf ? 0 : MSG_TRUNC);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN) {
                continue;
            }
            if (errno == ECONNRESET && got == 0) {
                return 0;
            }
            return -errno;
        }
        if (n == 0) {
            return got == 0 ? 0 : -EPIPE;
        }
        got += (size_t)n;
    }
    return 1;
}

static int skip_exact(int fd, size_t len, uint64_t deadline)
{
    uint8_t tmp[65536];
    while (len > 0) {
        size_t n = len < sizeof(tmp) ? len : sizeof(tmp);
        int r = read_exact(fd, tmp, n, deadline);
        if (r <= 0) {
            return r == 0 ? -EPIPE : r;
        }
        len -= n;
    }
    return 1;
}

int hxfr_test_recv_msg(int fd, int timeout_ms, struct hxfr_msg *m, uint8_t **body,
                       uint32_t *body_len)
{
    uint64_t deadline = now_ms() + (uint64_t)(timeout_ms < 0 ? 60000 : timeout_ms);
    uint8_t hb[HXFR_HEADER_SIZE];
    uint8_t fixed[HXFR_MAX_FIXED_SIZE];
    struct hxfr_header h;

    if (body) {
        *body = NULL;
    }
    if (body_len) {
        *body_len = 0;
    }
    int r = read_exact(fd, hb, sizeof(hb), deadline);
    if (r <= 0) {
        return r;
    }
    hxfr_header_decode(hb, &h);
    if (hxfr_header_validate(&h, 0) < 0) {
        return -EPROTO;
    }
    int fixed_size = hxfr_msg_fixed_size(h.type);
    if (fixed_size < 0) {
        return -EPROTO;
    }
    if (fixed_size > 0) {
        r = read_exact(fd, fixed, (size_t)fixed_size, deadline);
        if (r <= 0) {
            return r == 0 ? -EPIPE : r;
        }
    }
    if (hxfr_msg_decode(&h, fixed, (size_t)fixed_size, m) < 0) {
        return -EPROTO;
    }
    uint32_t blen = h.payload_size - (uint32_t)fixed_size;
    if (body_len) {
        *body_len = blen;
    }
    if (blen > 0) {
        if (body) {
            uint8_t *b = malloc(blen);
            if (!b) {
                return -ENOMEM;
            }
            r = read_exact(fd, b, blen, deadline);
            if (r <= 0) {
                free(b);
                return r == 0 ? -EPIPE : r;
            }
            *body = b;
        } else {
            r = skip_exact(fd, blen, deadline);
            if (r <= 0) {
                return r;
            }
        }
    }
    return 1;
}

int hxfr_test_wait_eof(int fd, int timeout_ms)
{
    uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
    uint8_t tmp[65536];
    for (;;) {
        uint64_t now = now_ms();
        if (now >= deadline) {
            return -ETIMEDOUT;
        }
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, (int)(deadline - now));
        if (r <= 0) {
            continue;
        }
        ssize_t n = recv(fd, tmp, sizeof(tmp), 0);
        if (n == 0 || (n < 0 && errno == ECONNRESET)) {
            return 0;
        }
        if (n < 0 && errno != EINTR && errno != EAGAIN) {
            return 0;
        }
    }
}
