/* src/hostcli: the options every server program shares (what each sets,
 * its bounds and messages), the log filter, the statistics timer, the signalfd; and the
 * host.h calls for programs it rests on (hxfr_host_default_uri,
 * hxfr_host_sd_listen_fds). Unit tests: no server runs, a few ms in all. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <hxfr/host.h>

#include "harness.h"
#include "hostcli.h"

struct fixture {
    struct hxfr_host_config cfg;
    struct hxfr_hostcli cli;
    char err[256];
};

static void fixture_init(struct fixture *f)
{
    memset(f, 0, sizeof(*f));
    hxfr_host_config_init(&f->cfg);
    hxfr__hostcli_init(&f->cli, "prog", &f->cfg);
}

static int opt(struct fixture *f, int o, const char *arg)
{
    f->err[0] = '\0';
    return hxfr__hostcli_option(&f->cli, o, arg, f->err, sizeof(f->err));
}

TEST(numbers_set_their_fields)
{
    struct fixture f;
    fixture_init(&f);
    CHECK(f.cfg.log == hxfr__hostcli_log && f.cfg.log_opaque == &f.cli);
    CHECK_EQ(opt(&f, HXFR_HOSTCLI_OPT_GOP, "120"), 1);
    CHECK_EQ(f.cfg.gop, 120);
    CHECK_EQ(opt(&f, HXFR_HOSTCLI_OPT_WORKERS, "3"), 1);
    CHECK_EQ(f.cfg.workers, 3);
    CHECK_EQ(opt(&f, HXFR_HOSTCLI_OPT_WINDOW, "64"), 1);
    CHECK_EQ(f.cfg.window, 64);
    CHECK_EQ(opt(&f, HXFR_HOSTCLI_OPT_MAX_CLIENTS, "7"), 1);
    CHECK_EQ(f.cfg.max_clients, 7);
    CHECK_EQ(opt(&f, HXFR_HOSTCLI_OPT_MAX_SESSIONS, "9"), 1);
    CHECK_EQ(f.cfg.max_sessions, 9);
    CHECK_EQ(opt(&f, HXFR_HOSTCLI_OPT_IDLE_TIMEOUT, "30"), 1);
    CHECK_EQ(f.cfg.idle_timeout_ms, 30000);
    CHECK_EQ(opt(&f, HXFR_HOSTCLI_OPT_SHUTDOWN_TIMEOUT, "250"), 1);
    CHECK_EQ(f.cfg.shutdown_timeout_ms, 250);
    CHECK_EQ(opt(&f, HXFR_HOSTCLI_OPT_KEEPALIVE_MS, "10"), 1);
    CHECK_EQ(f.cfg.keepalive_ms, 10);
    CHECK_EQ(opt(&f, HXFR_HOSTCLI_OPT_MAX_SCANOUTS, "2"), 1);
    CHECK_EQ(f.cfg.max_scanouts, 2);
    CHECK_EQ(opt(&f, HXFR_HOSTCLI_OPT_MAX_SUBSCRIBERS, "4096"), 1);
    CHECK_EQ(f.cfg.max_subscribers, 4096);
    CHECK_EQ(opt(&f, HXFR_HOSTCLI_OPT_SUBSCRIBER_QUEUE, "5"), 1);
    CHECK_EQ(f.cfg.subscriber_queue, 5);
    CHECK_EQ(opt(&f, HXFR_HOSTCLI_OPT_THREADS, "2"), 1);
    CHECK_EQ(f.cfg.encoder_threads, 2);
    CHECK_EQ(opt(&f, HXFR_HOSTCLI_OPT_HANDSHAKE_TIMEOUT, "3"), 1);
    CHECK_EQ(f.cfg.handshake_timeout_ms, 3000);
    CHECK_EQ(opt(&f, HXFR_HOSTCLI_OPT_HANDSHAKE_TIMEOUT, "0"), 1);
    CHECK_EQ(f.cfg.handshake_timeout_ms, HXFR_HOST_TIMEOUT_NEVER);
    CHECK_EQ(opt(&f, HXFR_HOSTCLI_OPT_STATS_INTERVAL, "5"), 1);
    CHECK_EQ(f.cli.stats_interval, 5);
}

TEST(strings_sizes_levels_and_flags)
{
    struct fixture f;
    fixture_init(&f);
    char enc[] = "libopenh264", preset[] = "veryfast";
    CHECK_EQ(opt(&f, HXFR_HOSTCLI_OPT_ENCODER, enc), 1);
    CHECK(f.cfg.encoder == enc);
    CHECK_EQ(opt(&f, HXFR_HOSTCLI_OPT_PRESET, preset), 1);
    CHECK(f.cfg.preset == preset);
    CHECK(!f.cli.list_encoders);
    CHECK_EQ(opt(&f, HXFR_HOSTCLI_OPT_LIST_ENCODERS, NULL), 1);
    CHECK(f.cli.list_encoders);
    CHECK_EQ(opt(&f, HXFR_HOSTCLI_OPT_MAX_SIZE, "1920x1080"), 1);
    CHECK_EQ(f.cfg.max_width, 1920);
    CHECK_EQ(f.cfg.max_height, 1080);
    CHECK_EQ(opt(&f, HXFR_HOSTCLI_OPT_MAX_SIZE, "8192"), 1);
    CHECK_EQ(f.cfg.max_width, 8192);
    CHECK_EQ(f.cfg.max_height, 8192);
    CHECK_EQ(opt(&f, HXFR_HOSTCLI_OPT_MAX_OUTPUT, "3K"), 1);
    CHECK_EQ(f.cfg.max_output, 3072);
    CHECK_EQ(opt(&f, HXFR_HOSTCLI_OPT_MAX_OUTPUT, "2m"), 1);
    CHECK_EQ(f.cfg.max_output, 2 * 1024 * 1024);
    CHECK_EQ(opt(&f, HXFR_HOSTCLI_OPT_MAX_OUTPUT, "1G"), 1);
    CHECK_EQ(f.cfg.max_output, 1024ull * 1024 * 1024);
    CHECK_EQ(opt(&f, HXFR_HOSTCLI_OPT_MAX_OUTPUT, "100"), 1);
    CHECK_EQ(f.cfg.max_output, 100);
    CHECK_EQ(opt(&f, HXFR_HOSTCLI_OPT_LOG_LEVEL, "debug"), 1);
    CHECK_EQ(f.cfg.log_level, HXFR_HOST_LOG_DEBUG);
    CHECK_EQ(f.cli.log_max, HXFR_HOST_LOG_DEBUG);
    CHECK_EQ(opt(&f, HXFR_HOSTCLI_OPT_LOG_LEVEL, "error"), 1);
    CHECK_EQ(f.cli.log_max, HXFR_HOST_LOG_ERROR);
}

TEST(bad_values_say_why_and_change_nothing)
{
    struct fixture f;
    fixture_init(&f);
    struct hxfr_host_config before = f.cfg;
    static const struct {
        int o;
        const char *arg, *msg;
    } bad[] = {
        {HXFR_HOSTCLI_OPT_WINDOW, "0", "--window: at least 1"},
        {HXFR_HOSTCLI_OPT_WINDOW, "65", "--window: '65' is not a number in 0..64"},
        {HXFR_HOSTCLI_OPT_WINDOW, "x", "--window: 'x' is not a number in 0..64"},
        {HXFR_HOSTCLI_OPT_WINDOW, "", "--window: '' is not a number in 0..64"},
        {HXFR_HOSTCLI_OPT_GOP, "-1", "--gop: '-1' is not a number in 0..100000"},
        {HXFR_HOSTCLI_OPT_WORKERS, "0", "--workers: at least 1"},
        {HXFR_HOSTCLI_OPT_KEEPALIVE_MS, "9", "--keepalive-ms: at least 10"},
        {HXFR_HOSTCLI_OPT_THREADS, "65", "--threads: '65' is not a number in 0..64"},
        {HXFR_HOSTCLI_OPT_IDLE_TIMEOUT, "86401",
         "--idle-timeout: '86401' is not a number in 0..86400"},
        {HXFR_HOSTCLI_OPT_MAX_OUTPUT, "0", "--max-output: '0' is not a size"},
        {HXFR_HOSTCLI_OPT_MAX_OUTPUT, "5Q", "--max-output: '5Q' is not a size"},
        {HXFR_HOSTCLI_OPT_MAX_OUTPUT, "-5", "--max-output: '-5' is not a size"},
        {HXFR_HOSTCLI_OPT_MAX_OUTPUT, "99999999999999999999G",
         "--max-output: '99999999999999999999G' is not a size"},
        {HXFR_HOSTCLI_OPT_MAX_SIZE, "15", "--max-size: each side must be 16..8192"},
        {HXFR_HOSTCLI_OPT_MAX_SIZE, "16x8193", "--max-size: each side must be 16..8192"},
        {HXFR_HOSTCLI_OPT_MAX_SIZE, "3x", "--max-size: '3x' is not WxH or N"},
        {HXFR_HOSTCLI_OPT_LOG_LEVEL, "loud",
         "--log-level: 'loud' is not error, warn, info or debug"},
        {HXFR_HOSTCLI_OPT_STATS_INTERVAL, "1e3",
         "--stats-interval: '1e3' is not a number in 0..86400"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (opt(&f, bad[i].o, bad[i].arg) != -EINVAL || strcmp(f.err, bad[i].msg) != 0) {
            FAIL("option %d '%s': got '%s', want '%s'", bad[i].o, bad[i].arg, f.err, bad[i].msg);
        }
    }
    CHECK(memcmp(&before, &f.cfg, sizeof(before)) == 0);
    CHECK_EQ(f.cli.stats_interval, 0);
}

TEST(other_options_are_the_programs)
{
    struct fixture f;
    fixture_init(&f);
    CHECK_EQ(opt(&f, 256, "x"), 0);
    CHECK_EQ(opt(&f, 'h', NULL), 0);
    CHECK_EQ(opt(&f, HXFR_HOSTCLI_OPT_END, "x"), 0);
    /* Every value of the enum is in the getopt table, once. */
    static const struct option table[] = {HXFR_HOSTCLI_OPTIONS, {NULL, 0, NULL, 0}};
    int seen[HXFR_HOSTCLI_OPT_END - HXFR_HOSTCLI_OPT_BASE] = {0};
    size_t n = 0;
    for (; table[n].name; n++) {
        CHECK(table[n].val >= HXFR_HOSTCLI_OPT_BASE && table[n].val < HXFR_HOSTCLI_OPT_END);
        seen[table[n].val - HXFR_HOSTCLI_OPT_BASE]++;
    }
    CHECK_EQ(n, HXFR_HOSTCLI_OPT_END - HXFR_HOSTCLI_OPT_BASE);
    for (size_t i = 0; i < n; i++) {
        CHECK_EQ(seen[i], 1);
    }
}

/* Runs fn with stderr going to a file; returns what was written. */
static char *capture_stderr(void (*fn)(struct fixture *), struct fixture *f)
{
    static char out[8192];
    char path[] = "/tmp/hxfr-hostcli-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    unlink(path);
    fflush(stderr);
    int saved = dup(2);
    dup2(fd, 2);
    fn(f);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    ssize_t n = pread(fd, out, sizeof(out) - 1, 0);
    close(fd);
    out[n > 0 ? n : 0] = '\0';
    return out;
}

static void log_some(struct fixture *f)
{
    f->cfg.log(f->cfg.log_opaque, HXFR_HOST_LOG_ERROR, "an error");
    f->cfg.log(f->cfg.log_opaque, HXFR_HOST_LOG_WARN, "a warning");
    hxfr__hostcli_logf(&f->cli, HXFR_HOST_LOG_INFO, "info %d", 42);
    hxfr__hostcli_logf(&f->cli, HXFR_HOST_LOG_DEBUG, "debug %s", "detail");
    hxfr__hostcli_print(&f->cli, HXFR_HOST_LOG_INFO, "stats always");
}

TEST(log_lines_obey_the_level)
{
    struct fixture f;
    fixture_init(&f);
    const char *out = capture_stderr(log_some, &f);
    CHECK(strstr(out, "prog ") == out);
    CHECK(strstr(out, "[error] an error\n") != NULL);
    CHECK(strstr(out, "[warn] a warning\n") != NULL);
    CHECK(strstr(out, "[info] info 42\n") != NULL);
    CHECK(strstr(out, "debug detail") == NULL);
    CHECK(strstr(out, "[info] stats always\n") != NULL);

    CHECK_EQ(opt(&f, HXFR_HOSTCLI_OPT_LOG_LEVEL, "error"), 1);
    out = capture_stderr(log_some, &f);
    CHECK(strstr(out, "an error") != NULL);
    CHECK(strstr(out, "a warning") == NULL);
    CHECK(strstr(out, "info 42") == NULL);
    CHECK(strstr(out, "stats always") != NULL);

    CHECK_EQ(opt(&f, HXFR_HOSTCLI_OPT_LOG_LEVEL, "debug"), 1);
    out = capture_stderr(log_some, &f);
    CHECK(strstr(out, "[debug] debug detail\n") != NULL);
}

TEST(stats_timer_only_when_asked)
{
    struct fixture f;
    fixture_init(&f);
    CHECK_EQ(hxfr__hostcli_stats_open(&f.cli), 0);
    CHECK_EQ(hxfr__hostcli_stats_fd(&f.cli), -1);
    hxfr__hostcli_stats_tick(&f.cli, NULL); /* no timer: nothing to read */
    CHECK_EQ(opt(&f, HXFR_HOSTCLI_OPT_STATS_INTERVAL, "60"), 1);
    CHECK_EQ(hxfr__hostcli_stats_open(&f.cli), 0);
    int fd = hxfr__hostcli_stats_fd(&f.cli);
    CHECK(fd >= 0);
    CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    hxfr__hostcli_stats_tick(&f.cli, NULL); /* not expired: no host needed */
    hxfr__hostcli_finish(&f.cli);
    CHECK_EQ(hxfr__hostcli_stats_fd(&f.cli), -1);
    CHECK(fcntl(fd, F_GETFD) < 0);
}

TEST(usage_names_every_option)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    CHECK(f != NULL);
    hxfr__hostcli_usage(f);
    fclose(f);
    static const struct option table[] = {HXFR_HOSTCLI_OPTIONS, {NULL, 0, NULL, 0}};
    for (size_t i = 0; table[i].name; i++) {
        char want[64];
        snprintf(want, sizeof(want), "  --%s ", table[i].name);
        if (!strstr(text, want)) {
            FAIL("usage does not show --%s", table[i].name);
        }
    }
    CHECK(len > 0 && text[len - 1] == '\n' && text[len - 2] != '\n');
    free(text);
}

TEST(default_uri)
{
    char buf[200];
    setenv("XDG_RUNTIME_DIR", "/run/user/4242", 1);
    CHECK_EQ(hxfr_host_default_uri(buf, sizeof(buf)),
             (int)strlen("unix:/run/user/4242/hxfr/hxfr.sock"));
    CHECK(strcmp(buf, "unix:/run/user/4242/hxfr/hxfr.sock") == 0);
    CHECK_EQ(hxfr_host_default_uri(buf, 10), -ENAMETOOLONG);
    CHECK_EQ(buf[0], '\0');
    /* A relative XDG_RUNTIME_DIR is not a runtime directory. */
    setenv("XDG_RUNTIME_DIR", "relative", 1);
    CHECK(hxfr_host_default_uri(buf, sizeof(buf)) > 0);
    CHECK(strstr(buf, "relative") == NULL);
    CHECK(strncmp(buf, "unix:/", 6) == 0);
    char longdir[200];
    memset(longdir, 'a', sizeof(longdir) - 1);
    longdir[0] = '/';
    longdir[sizeof(longdir) - 1] = '\0';
    setenv("XDG_RUNTIME_DIR", longdir, 1);
    CHECK_EQ(hxfr_host_default_uri(buf, sizeof(buf)), -ENAMETOOLONG);
}

TEST(sd_listen_fds)
{
    int fds[4];
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    CHECK_EQ(hxfr_host_sd_listen_fds(fds, 4), 0);
    /* Meant for another process: left alone. */
    setenv("LISTEN_PID", "1", 1);
    setenv("LISTEN_FDS", "1", 1);
    CHECK_EQ(hxfr_host_sd_listen_fds(fds, 4), 0);
    CHECK(getenv("LISTEN_FDS") != NULL);
    char pid[32];
    snprintf(pid, sizeof(pid), "%d", (int)getpid());
    setenv("LISTEN_PID", pid, 1);
    setenv("LISTEN_FDS", "two", 1);
    CHECK_EQ(hxfr_host_sd_listen_fds(fds, 4), -EINVAL);
    /* fd 3 is ours: a pipe end stands in for a socket. */
    int p[2];
    CHECK_EQ(pipe(p), 0);
    CHECK_EQ(dup2(p[0], 3), 3);
    setenv("LISTEN_PID", pid, 1);
    setenv("LISTEN_FDS", "1", 1);
    CHECK_EQ(hxfr_host_sd_listen_fds(fds, 4), 1);
    CHECK_EQ(fds[0], 3);
    CHECK(fcntl(3, F_GETFD) & FD_CLOEXEC);
    CHECK(fcntl(3, F_GETFL) & O_NONBLOCK);
    CHECK(getenv("LISTEN_PID") == NULL && getenv("LISTEN_FDS") == NULL);
    close(3);
    /* A promised descriptor that is not open. */
    setenv("LISTEN_PID", pid, 1);
    setenv("LISTEN_FDS", "1", 1);
    CHECK_EQ(hxfr_host_sd_listen_fds(fds, 4), -EBADF);
    close(p[0]);
    close(p[1]);
}

TEST(signals_arrive_on_the_fd)
{
    int fd = hxfr__hostcli_signalfd();
    CHECK(fd >= 0);
    CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    struct signalfd_siginfo si;
    CHECK_EQ(read(fd, &si, sizeof(si)), -1); /* non-blocking, nothing yet */
    CHECK_EQ(raise(SIGPIPE), 0);             /* ignored: the test lives on */
    CHECK_EQ(raise(SIGTERM), 0);             /* blocked: queued for the fd */
    CHECK_EQ(read(fd, &si, sizeof(si)), (ssize_t)sizeof(si));
    CHECK_EQ(si.ssi_signo, SIGTERM);
    CHECK_EQ(kill(getpid(), SIGINT), 0);
    CHECK_EQ(read(fd, &si, sizeof(si)), (ssize_t)sizeof(si));
    CHECK_EQ(si.ssi_signo, SIGINT);
    close(fd);
}
