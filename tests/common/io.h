/* Whole-buffer and whole-file reads for tests and their test doubles. No
 * harness dependency: callers decide what a failure means. */
#ifndef HXFR_TESTS_COMMON_IO_H
#define HXFR_TESTS_COMMON_IO_H

#include <stddef.h>

/* Reads exactly n bytes from a blocking fd, retrying on EINTR. Returns 0,
 * -EPIPE when the peer closed first, or -errno. */
int hxfr_test_read_full(int fd, void *buf, size_t n);

/* Reads a whole file into a malloc'd, NUL-terminated buffer (the caller
 * frees it) and stores its size in *len when len is not NULL. Returns NULL
 * when the file cannot be opened or read completely. */
char *hxfr_test_slurp(const char *path, size_t *len);

/* Runs argv[0] (argv NULL-terminated, argv[0] a path) in directory dir,
 * its stdout and stderr going to dir/run.out and dir/run.err, and waits for
 * it. *out and *err get those files' contents (malloc'd, the caller frees
 * them; NULL when unreadable). Returns the exit status, 128 + the signal
 * number when it was killed, or -1 when it could not be started. */
int hxfr_test_run_capture(const char *const *argv, const char *dir, char **out, char **err);

#endif
