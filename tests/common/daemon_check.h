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

/* Sends HELLO (version 1, caps) on fd and reads its HELLO_RESP, or fails
 * the test. A peer that did this is not a v1 peer: hxfrd answers its
 * CONFIG_REQs with CONFIG_RESP (a v1 peer gets none). Returns the caps
 * answered. */
static inline uint32_t daemon_hello_ok(int fd, uint32_t caps)
{
    struct hxfr_msg m;
    memset(&m, 0, sizeof(m));
    m.hdr.type = HXFR_MSG_HELLO;
    m.u.hello.version = HXFR_VERSION_1;
    m.u.hello.caps = caps;
    CHECK_EQ(hxfr_test_send_msg(fd, &m, NULL, 0), 0);
    CHECK_EQ(hxfr_test_recv_msg(fd, 10000, &m, NULL, NULL), 1);
    CHECK_EQ(m.hdr.type, HXFR_MSG_HELLO_RESP);
    return m.u.hello.caps;
}

#endif
