/* Checked wrappers around daemon.h for harness tests: each ends the test
 * (FAIL, CHECK) instead of returning an error. Header-only because the
 * harness exists only in a test binary (it includes harness.h, which the
 * test binary's own file includes as well). */
#ifndef HXFR_TESTS_COMMON_DAEMON_CHECK_H
#define HXFR_TESTS_COMMON_DAEMON_CHECK_H

#include <string.h>

#include "daemon.h"
#include "harness.h"

/* Starts hxfrd (flags: HXFR_TEST_DAEMON_*, args: NULL-terminated extra
 * arguments or NULL) or fails the test. */
static inline void daemon_start_ok(struct hxfr_test_daemon *d, unsigned flags,
                                   const char *const *args)
{
    if (hxfr_test_daemon_start(d, flags, args) < 0) {
        FAIL("hxfrd did not start");
    }
}

/* Stops hxfrd, which must exit 0 with no error in its log other than
 * allowed (NULL-terminated, or NULL), and frees d. */
static inline void daemon_stop_clean(struct hxfr_test_daemon *d, const char *const *allowed)
{
    CHECK_EQ(hxfr_test_daemon_stop(d), 0);
    CHECK_EQ(hxfr_test_daemon_unexpected_errors(d, allowed), 0);
    hxfr_test_daemon_free(d);
}

/* A connected blocking socket to hxfrd (TCP when tcp), or fails the test. */
static inline int daemon_connect_ok(const struct hxfr_test_daemon *d, bool tcp)
{
    int fd = hxfr_test_daemon_connect(d, tcp);
    if (fd < 0) {
        FAIL("connect: %s", strerror(-fd));
    }
    return fd;
}

#endif
