/* daemon: test helper that runs the real hxfrd binary.
 *
 * hxfr_test_daemon_start() takes the binary from the environment variable
 * HXFRD (meson passes it: env : ['HXFRD=' + hxfrd_exe.full_path()]),
 * starts it in a fresh temporary directory on a UNIX socket there and/or on
 * tcp:127.0.0.1:0, waits until it accepts (it writes its endpoints to a
 * pipe given with --ready-fd) and records the endpoints. Its stderr (the
 * log) goes to a file in that directory. hxfr_test_daemon_stop() sends
 * SIGTERM and checks that the daemon exits 0 within the timeout and removed
 * its socket file; the log stays readable until hxfr_test_daemon_free().
 *
 *     struct hxfr_test_daemon d;
 *     CHECK_EQ(hxfr_test_daemon_start(&d, HXFR_TEST_DAEMON_UNIX, NULL), 0);
 *     int fd = hxfr_test_daemon_connect(&d, false);
 *     ...
 *     CHECK_EQ(hxfr_test_daemon_stop(&d), 0);
 *     CHECK_EQ(hxfr_test_daemon_unexpected_errors(&d, NULL), 0);
 *     hxfr_test_daemon_free(&d);
 *
 * Functions returning int give 0 (or a count) on success and -1 or -errno
 * on failure, and print why to stderr (with the daemon's log). Not
 * thread-safe; one struct per daemon.
 */
#ifndef HXFR_TESTS_DAEMON_H
#define HXFR_TESTS_DAEMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <hxfr/proto.h>

#define HXFR_TEST_DAEMON_UNIX 1u /* listen on DIR/hxfr.sock */
#define HXFR_TEST_DAEMON_TCP  2u /* listen on tcp:127.0.0.1:0 */

struct hxfr_test_daemon {
    pid_t pid;           /* > 0 while running */
    int exit_status;     /* waitpid status after stop */
    char dir[256];       /* temporary directory */
    char unix_path[200]; /* socket file, "" without UNIX */
    char unix_uri[210];  /* "unix:" + unix_path */
    char tcp_uri[64];    /* "tcp:127.0.0.1:PORT", "" without TCP */
    uint16_t tcp_port;
    char log_path[300];
    char *log; /* log text, see hxfr_test_daemon_log */
};

/* Starts hxfrd with flags (HXFR_TEST_DAEMON_*; 0 means UNIX) and extra
 * command-line arguments (NULL-terminated array, may be NULL). Waits up to
 * 30 s for readiness. Returns 0 or -1. */
int hxfr_test_daemon_start(struct hxfr_test_daemon *d, unsigned flags,
                           const char *const *extra_args);

/* SIGTERM, then waits up to 30 s. Returns 0 if the daemon exited with
 * status 0 and its socket file is gone, else -1 (a daemon that does not
 * exit is killed with SIGKILL). Reads the log into d->log. */
int hxfr_test_daemon_stop(struct hxfr_test_daemon *d);

/* The daemon's log so far (re-read from the file while it runs). Owned by
 * d, valid until the next call or hxfr_test_daemon_free(). Never NULL. */
const char *hxfr_test_daemon_log(struct hxfr_test_daemon *d);

/* Number of lines in the log containing needle. */
int hxfr_test_daemon_log_count(struct hxfr_test_daemon *d, const char *needle);

/* Number of "[error]" lines in the log that contain none of the allowed
 * substrings (NULL-terminated array, may be NULL). Prints them. */
int hxfr_test_daemon_unexpected_errors(struct hxfr_test_daemon *d, const char *const *allowed);

/* Kills a daemon still running (SIGKILL), removes the temporary directory
 * and frees the log. Safe to call twice. */
void hxfr_test_daemon_free(struct hxfr_test_daemon *d);

/* A blocking connection to the daemon's UNIX socket (tcp = false) or its
 * TCP port. Returns the fd or -errno. */
int hxfr_test_daemon_connect(const struct hxfr_test_daemon *d, bool tcp);

/* ---- Raw wire helpers for tests (blocking fds) ------------------------ */

/* Writes all of buf (MSG_NOSIGNAL). Returns 0 or -errno. */
int hxfr_test_send_all(int fd, const void *buf, size_t len);

/* Encodes m (fixed part) and sends it followed by body (body_len bytes,
 * body may be NULL when body_len is 0). Returns 0 or -errno. */
int hxfr_test_send_msg(int fd, const struct hxfr_msg *m, const void *body, uint32_t body_len);

/* Reads exactly one message within timeout_ms: header, fixed part, and the
 * body into *body (malloc'd, caller frees; NULL when empty) if body is not
 * NULL, else the body is skipped. Returns 1 with a message, 0 at EOF before
 * any byte, -ETIMEDOUT, -EPROTO (invalid message), or -errno. */
int hxfr_test_recv_msg(int fd, int timeout_ms, struct hxfr_msg *m, uint8_t **body,
                       uint32_t *body_len);

/* Waits up to timeout_ms for EOF (or a connection reset), discarding any
 * data. Returns 0 at EOF, -ETIMEDOUT otherwise. */
int hxfr_test_wait_eof(int fd, int timeout_ms);

#endif
