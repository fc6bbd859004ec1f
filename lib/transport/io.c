/* Writing everything to a blocking fd: sockets and serial ports alike. */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "transport-private.h"

#ifndef IOV_MAX
#define IOV_MAX 1024
#endif

/* One write of iov: send with MSG_NOSIGNAL where fd is a socket, so a
 * closed peer gives EPIPE instead of killing the process with SIGPIPE;
 * plain writev for anything else (*not_sock remembers which). */
static ssize_t write_once(int fd, const struct iovec *iov, int iovcnt, bool *not_sock)
{
    ssize_t n;

    if (!*not_sock) {
        struct msghdr msg;
        memset(&msg, 0, sizeof(msg));
        msg.msg_iov = (struct iovec *)iov;
        msg.msg_iovlen = (size_t)iovcnt;
        n = sendmsg(fd, &msg, MSG_NOSIGNAL);
        if (n >= 0 || errno != ENOTSOCK) {
            return n;
        }
        *not_sock = true;
    }
    return writev(fd, iov, iovcnt);
}

int hxfr__writev_all(int fd, struct iovec *iov, int iovcnt)
{
    bool not_sock = false;

    if (iovcnt < 0 || (iovcnt > 0 && !iov)) {
        return -EINVAL;
    }
    for (;;) {
        /* Skip what is done (and empty entries) without copying anything. */
        while (iovcnt > 0 && iov->iov_len == 0) {
            iov++;
            iovcnt--;
        }
        if (iovcnt == 0) {
            return 0;
        }
        ssize_t n = write_once(fd, iov, iovcnt > IOV_MAX ? IOV_MAX : iovcnt, &not_sock);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return errno == EWOULDBLOCK ? -EAGAIN : -errno;
        }
        if (n == 0) {
            /* Nothing written for a non-empty buffer: retrying would spin. */
            return -EIO;
        }
        size_t left = (size_t)n;
        while (left > 0) {
            if (left >= iov->iov_len) {
                left -= iov->iov_len;
                iov->iov_len = 0;
                iov++;
                iovcnt--;
            } else {
                iov->iov_base = (char *)iov->iov_base + left;
                iov->iov_len -= left;
                left = 0;
            }
        }
    }
}

int hxfr__write_all(int fd, const void *buf, size_t len)
{
    struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};

    if (!buf && len > 0) {
        return -EINVAL;
    }
    return hxfr__writev_all(fd, &iov, 1);
}
