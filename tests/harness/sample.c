/* A harness-based binary with one test of each outcome, run by
 * check_accounting.py (never by meson directly): it checks the TAP lines
 * tests/harness.h prints and how scripts/testcount.py counts them. */
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

TEST(passes)
{
    CHECK_EQ(1 + 1, 2);
}

TEST(skips_with_a_reason)
{
    SKIP("no %s on this machine", "frobnicator");
}

TEST(fails)
{
    CHECK_EQ(1 + 1, 3);
}

/* A stray exit(77) is not a skip: only SKIP() gives a reason. */
TEST(exits_77_without_skip)
{
    exit(77);
}

/* A skip while a process the test forked still holds the reason pipe's
 * write end is reported at once: the child waits until the checker closes
 * the pipe named by HXFR_SAMPLE_HOLD_FD, which it does only after this
 * binary has exited (if the harness waited for the child, it never would). */
TEST(skips_with_a_child_alive)
{
    const char *hold = getenv("HXFR_SAMPLE_HOLD_FD");
    CHECK(hold != NULL);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        dup2(null, 2);
        char c;
        while (read(atoi(hold), &c, 1) != 0) {
        }
        _exit(0);
    }
    SKIP("skipped while child %d runs", (int)pid);
}

/* The alarm a test runs under (its own timeout, else HXFR_TEST_TIMEOUT's,
 * times HXFR_TEST_TIMEOUT_SCALE), printed for the checker: alarm(0) returns
 * the seconds left, rounded to the nearest. */
TEST_T(reports_its_alarm, 5)
{
    fprintf(stderr, "own alarm %u\n", alarm(0));
}

TEST(reports_the_default_alarm)
{
    fprintf(stderr, "default alarm %u\n", alarm(0));
}
