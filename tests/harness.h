/* A small test harness: TEST(name) { ... } registers a test; main() runs
 * each one in a forked child under a timeout and prints TAP, which meson
 * reads (protocol : 'tap'). A crash, a failed CHECK or a timeout fails only
 * that test. HXFR_TEST_TIMEOUT (seconds, default 60) sets the timeout and
 * HXFR_TEST_FILTER=substring runs only matching tests.
 *
 * Include it from exactly one .c file per test binary, after defining any
 * helpers; the file must not define main(). */
#ifndef HXFR_TESTS_HARNESS_H
#define HXFR_TESTS_HARNESS_H

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
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

static int hxfr_test_run_one(const struct hxfr_test *t, unsigned default_timeout)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return 0;
    }
    if (pid == 0) {
        signal(SIGPIPE, SIG_IGN);
        alarm(t->timeout_s ? t->timeout_s : default_timeout);
        t->fn();
        exit(0);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            perror("waitpid");
            return 0;
        }
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        return 1;
    }
    if (WIFSIGNALED(status)) {
        fprintf(stderr, "# %s: killed by signal %d%s\n", t->name, WTERMSIG(status),
                WTERMSIG(status) == SIGALRM ? " (timeout)" : "");
    }
    return 0;
}

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    const char *filter = getenv("HXFR_TEST_FILTER");
    const char *tmo = getenv("HXFR_TEST_TIMEOUT");
    unsigned default_timeout = tmo ? (unsigned)strtoul(tmo, NULL, 10) : 60;
    int selected = 0, passed = 0, failed = 0;
    for (int i = 0; i < hxfr_test_count; i++) {
        if (!filter || strstr(hxfr_tests[i].name, filter)) {
            selected++;
        }
    }
    printf("1..%d\n", selected);
    int n = 0;
    for (int i = 0; i < hxfr_test_count; i++) {
        const struct hxfr_test *t = &hxfr_tests[i];
        if (filter && !strstr(t->name, filter)) {
            continue;
        }
        n++;
        if (hxfr_test_run_one(t, default_timeout)) {
            printf("ok %d - %s\n", n, t->name);
            passed++;
        } else {
            printf("not ok %d - %s\n", n, t->name);
            failed++;
        }
        fflush(stdout);
    }
    printf("# %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}

#endif
