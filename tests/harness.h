/* A small test harness: TEST(name) { ... } registers a test; main() runs
 * each one in a forked child under a timeout and prints TAP, which meson
 * reads (protocol : 'tap'). A crash, a failed CHECK or a timeout fails only
 * that test. SKIP("why") ends a test as skipped: TAP "ok N - name # SKIP
 * why", counted as skipped (never as passed) by meson and scripts/test.sh.
 * HXFR_TEST_TIMEOUT (seconds, default 60) sets the default timeout,
 * HXFR_TEST_TIMEOUT_SCALE=K multiplies every test's timeout by K (1..100;
 * scripts/test.sh sets it to meson's --timeout-multiplier in the sanitizer
 * stage, where everything runs several times slower) and
 * HXFR_TEST_FILTER=substring runs only matching tests.
 *
 * Include it from exactly one .c file per test binary, after defining any
 * helpers; the file must not define main(). */
#ifndef HXFR_TESTS_HARNESS_H
#define HXFR_TESTS_HARNESS_H

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

typedef void (*hxfr_test_fn)(void);

struct hxfr_test {
    const char *name;
    hxfr_test_fn fn;
    unsigned timeout_s;
};

#define HXFR_TEST_MAX 512
static struct hxfr_test hxfr_tests[HXFR_TEST_MAX];
static int hxfr_test_count;

/* A skipped test's child writes its reason into this pipe (the write end,
 * close-on-exec) and exits with HXFR_TEST_SKIP_STATUS; an exit with that
 * status but no reason is a failure, so no stray exit(77) reads as a skip. */
#define HXFR_TEST_SKIP_STATUS 77
#define HXFR_TEST_REASON_MAX  200
static int hxfr_test_skip_fd = -1;

static inline void hxfr_test_register(const char *name, hxfr_test_fn fn, unsigned timeout_s)
{
    if (hxfr_test_count < HXFR_TEST_MAX) {
        hxfr_tests[hxfr_test_count++] = (struct hxfr_test){name, fn, timeout_s};
    }
}

/* TEST(name) with the default timeout; TEST_T(name, seconds) with its own. */
#define TEST_T(name, secs)                                                                         \
    static void test_##name(void);                                                                 \
    __attribute__((constructor)) static void register_##name(void)                                 \
    {                                                                                              \
        hxfr_test_register(#name, test_##name, (secs));                                            \
    }                                                                                              \
    static void test_##name(void)
#define TEST(name) TEST_T(name, 0)

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                                            \
        fprintf(stderr, __VA_ARGS__);                                                              \
        fprintf(stderr, "\n");                                                                     \
        exit(1);                                                                                   \
    } while (0)

/* Ends the running test as skipped, with a reason (printf-style). Only for
 * what this machine or build lacks (a program, an FFmpeg encoder, a kernel
 * feature), never to hide a failure; scripts/test.sh lists every skip and
 * CI fails when the GStreamer, browser or VM tests skip. */
#define SKIP(...) hxfr_test_skip(__VA_ARGS__)

static void hxfr_test_skip(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn, unused));

static void hxfr_test_skip(const char *fmt, ...)
{
    char why[HXFR_TEST_REASON_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    if (n <= 0) {
        snprintf(why, sizeof(why), "(no reason given)");
    }
    /* One line: TAP ends the directive at the end of the line. */
    for (char *c = why; *c; c++) {
        if (*c == '\n' || *c == '\r') {
            *c = ' ';
        }
    }
    fflush(stdout);
    fflush(stderr);
    if (hxfr_test_skip_fd >= 0) {
        /* Shorter than PIPE_BUF: one atomic write. */
        ssize_t w = write(hxfr_test_skip_fd, why, strlen(why));
        (void)w;
    }
    exit(HXFR_TEST_SKIP_STATUS);
}

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            FAIL("CHECK failed: %s", #cond);                                                       \
        }                                                                                          \
    } while (0)

#define CHECK_EQ(a, b)                                                                             \
    do {                                                                                           \
        long long check_a_ = (long long)(a), check_b_ = (long long)(b);                            \
        if (check_a_ != check_b_) {                                                                \
            FAIL("CHECK_EQ failed: %s == %s (%lld != %lld)", #a, #b, check_a_, check_b_);          \
        }                                                                                          \
    } while (0)

#define CHECK_MEM(a, b, n)                                                                         \
    do {                                                                                           \
        const unsigned char *check_a_ = (const unsigned char *)(a);                                \
        const unsigned char *check_b_ = (const unsigned char *)(b);                                \
        size_t check_n_ = (n);                                                                     \
        for (size_t check_i_ = 0; check_i_ < check_n_; check_i_++) {                               \
            if (check_a_[check_i_] != check_b_[check_i_]) {                                        \
                FAIL("CHECK_MEM failed: %s vs %s differ at byte %zu (%02x != %02x)", #a, #b,       \
                     check_i_, check_a_[check_i_], check_b_[check_i_]);                            \
            }                                                                                      \
        }                                                                                          \
    } while (0)

enum hxfr_test_result {
    HXFR_TEST_PASSED,
    HXFR_TEST_FAILED,
    HXFR_TEST_SKIPPED,
};

/* The factor HXFR_TEST_TIMEOUT_SCALE asks for; 1 when unset or not a
 * number in 1..100 (a typo must not turn every alarm off). */
static inline unsigned hxfr_test_timeout_scale(void)
{
    const char *s = getenv("HXFR_TEST_TIMEOUT_SCALE");
    char *end = NULL;
    unsigned long k = s ? strtoul(s, &end, 10) : 1;
    if (!s || end == s || *end != '\0' || k < 1 || k > 100) {
        k = 1;
    }
    return (unsigned)k;
}

/* Runs one test in a child. On HXFR_TEST_SKIPPED, why holds the reason. */
static enum hxfr_test_result hxfr_test_run_one(const struct hxfr_test *t, unsigned default_timeout,
                                               char *why, size_t why_len)
{
    int skip_pipe[2];

    why[0] = '\0';
    fflush(stdout);
    fflush(stderr);
    if (pipe2(skip_pipe, O_CLOEXEC) < 0) {
        perror("pipe2");
        return HXFR_TEST_FAILED;
    }
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        close(skip_pipe[0]);
        close(skip_pipe[1]);
        return HXFR_TEST_FAILED;
    }
    if (pid == 0) {
        close(skip_pipe[0]);
        hxfr_test_skip_fd = skip_pipe[1];
        signal(SIGPIPE, SIG_IGN);
        alarm((t->timeout_s ? t->timeout_s : default_timeout) * hxfr_test_timeout_scale());
        t->fn();
        exit(0);
    }
    close(skip_pipe[1]);
    int status = 0;
    enum hxfr_test_result result = HXFR_TEST_FAILED;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            perror("waitpid");
            goto out;
        }
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        result = HXFR_TEST_PASSED;
    } else if (WIFEXITED(status) && WEXITSTATUS(status) == HXFR_TEST_SKIP_STATUS) {
        /* The child is gone, so the reason (if any) is in the pipe. A
         * process the test forked may still hold the write end: read only
         * what is there. */
        fcntl(skip_pipe[0], F_SETFL, O_NONBLOCK);
        ssize_t n = read(skip_pipe[0], why, why_len - 1);
        if (n > 0) {
            why[n] = '\0';
            result = HXFR_TEST_SKIPPED;
        } else {
            fprintf(stderr, "# %s: exited %d without SKIP(): counted as failed\n", t->name,
                    HXFR_TEST_SKIP_STATUS);
        }
    } else if (WIFSIGNALED(status)) {
        fprintf(stderr, "# %s: killed by signal %d%s\n", t->name, WTERMSIG(status),
                WTERMSIG(status) == SIGALRM ? " (timeout)" : "");
    }
out:
    close(skip_pipe[0]);
    return result;
}

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    const char *filter = getenv("HXFR_TEST_FILTER");
    const char *tmo = getenv("HXFR_TEST_TIMEOUT");
    unsigned default_timeout = tmo ? (unsigned)strtoul(tmo, NULL, 10) : 60;
    int selected = 0, passed = 0, failed = 0, skipped = 0;
    for (int i = 0; i < hxfr_test_count; i++) {
        if (!filter || strstr(hxfr_tests[i].name, filter)) {
            selected++;
        }
    }
    printf("1..%d\n", selected);
    int n = 0;
    for (int i = 0; i < hxfr_test_count; i++) {
        const struct hxfr_test *t = &hxfr_tests[i];
        char why[HXFR_TEST_REASON_MAX];
        if (filter && !strstr(t->name, filter)) {
            continue;
        }
        n++;
        switch (hxfr_test_run_one(t, default_timeout, why, sizeof(why))) {
        case HXFR_TEST_PASSED:
            printf("ok %d - %s\n", n, t->name);
            passed++;
            break;
        case HXFR_TEST_SKIPPED:
            printf("ok %d - %s # SKIP %s\n", n, t->name, why);
            skipped++;
            break;
        case HXFR_TEST_FAILED:
            printf("not ok %d - %s\n", n, t->name);
            failed++;
            break;
        }
        fflush(stdout);
    }
    printf("# %d passed, %d failed, %d skipped\n", passed, failed, skipped);
    return failed ? 1 : 0;
}

#endif
