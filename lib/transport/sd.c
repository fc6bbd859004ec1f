/* systemd socket activation, without libsystemd: the protocol is three
 * environment variables and descriptors from 3 upwards. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "transport-private.h"

#define SD_LISTEN_FDS_START 3

static void unset_env(void)
{
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
}

int hxfr__sd_listen_fds(int *fds, int max)
{
    const char *pid_s = getenv("LISTEN_PID");
    const char *n_s = getenv("LISTEN_FDS");
    unsigned long pid, n;
    int stored = 0, r;

    if (!pid_s || !n_s) {
        r = 0;
        goto out;
    }
    if (max < 0 || (max > 0 && !fds)) {
        r = -EINVAL;
        goto out;
    }
    r = hxfr__parse_uint(pid_s, strlen(pid_s), 10, INT_MAX, &pid);
    if (r < 0) {
        goto out;
    }
    /* The variables were meant for another process (we were forked, or
     * they leaked through an exec): leave them alone. */
    if ((pid_t)pid != getpid()) {
        r = 0;
        goto out;
    }
    r = hxfr__parse_uint(n_s, strlen(n_s), 10, INT_MAX - SD_LISTEN_FDS_START, &n);
    if (r < 0) {
        goto out;
    }

    for (int fd = SD_LISTEN_FDS_START; fd < SD_LISTEN_FDS_START + (int)n; fd++) {
        int fl = fcntl(fd, F_GETFD);
        if (fl < 0) {
            /* We were promised a descriptor that is not there. */
            r = -errno;
            goto out_close;
        }
        if (stored >= max) {
            /* A listening socket nobody serves would leave its clients
             * hanging in the backlog: close what we do not take. */
            close(fd);
            continue;
        }
        int sfl = fcntl(fd, F_GETFL);
        if (fcntl(fd, F_SETFD, fl | FD_CLOEXEC) < 0 || sfl < 0 ||
            fcntl(fd, F_SETFL, sfl | O_NONBLOCK) < 0) {
            r = -errno;
            goto out_close;
        }
        fds[stored++] = fd;
    }
    unset_env();
    r = stored;
    goto out;

out_close:
    for (int i = 0; i < stored; i++) {
        close(fds[i]);
    }
    unset_env();
out:
    return r;
}
