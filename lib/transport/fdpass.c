/* Passing file descriptors (memfd frame buffers) over UNIX sockets. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "transport-private.h"

/* errno of a failed socket call as a result (EWOULDBLOCK as -EAGAIN). */
static ssize_t io_error(void)
{
    return errno == EWOULDBLOCK ? -EAGAIN : -errno;
}

/* writev or readv on a descriptor that is no socket (a serial port),
 * retried on EINTR. */
static ssize_t plain_io(int fd, const struct iovec *iov, int iovcnt, bool write)
{
    ssize_t n;
    do {
        n = write ? writev(fd, iov, iovcnt) : readv(fd, iov, iovcnt);
    } while (n < 0 && errno == EINTR);
    return n < 0 ? io_error() : n;
}

ssize_t hxfr__send_with_fds(int sock, const struct iovec *iov, int iovcnt, const int *fds, int nfds)
{
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int) * HXFR_MAX_PASSED_FDS)];
    } ctl;
    struct msghdr msg;
    size_t total = 0;
    ssize_t n;

    if (!iov || iovcnt <= 0 || nfds < 0 || nfds > HXFR_MAX_PASSED_FDS || (nfds > 0 && !fds)) {
        return -EINVAL;
    }
    for (int i = 0; i < iovcnt; i++) {
        total += iov[i].iov_len;
    }
    /* Descriptors ride on a byte; with none there is nothing to attach to. */
    if (nfds > 0 && total == 0) {
        return -EINVAL;
    }

    memset(&msg, 0, sizeof(msg));
    msg.msg_iov = (struct iovec *)iov;
    msg.msg_iovlen = (size_t)iovcnt;
    if (nfds > 0) {
        memset(&ctl, 0, sizeof(ctl));
        msg.msg_control = ctl.buf;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
    }

    do {
        /* MSG_NOSIGNAL: a vanished peer is an EPIPE result, not a SIGPIPE
         * that kills whatever process embeds this library. */
        n = sendmsg(sock, &msg, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n < 0 && errno == ENOTSOCK && nfds == 0) {
        /* A serial port: plain writev carries the bytes. */
        return plain_io(sock, iov, iovcnt, true);
    }
    return n < 0 ? io_error() : n;
}

/* Walks the SCM_RIGHTS messages in msg: keeps the first max_fds descriptors
 * in fds and closes the rest, so that none leaks whatever the peer sent.
 * Returns how many were kept; max_fds 0 closes them all. */
static int take_fds(struct msghdr *msg, int *fds, int max_fds)
{
    int kept = 0;

    for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR(msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
            c->cmsg_len < CMSG_LEN(0)) {
            continue;
        }
        size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        const unsigned char *data = CMSG_DATA(c);
        for (size_t i = 0; i < count; i++) {
            int fd;
            memcpy(&fd, data + i * sizeof(int), sizeof(int));
            if (kept < max_fds) {
                fds[kept++] = fd;
            } else {
                close(fd);
            }
        }
    }
    return kept;
}

ssize_t hxfr__recv_with_fds(int sock, void *buf, size_t len, int *fds, int max_fds, int *nfds,
                            bool *truncated)
{
    /* Room for more descriptors than anyone may send, so that a surplus is
     * seen (and closed here) rather than dropped by the kernel with
     * MSG_CTRUNC; only a message with over HXFR_RECV_FDS_CAP truncates. */
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int) * HXFR_RECV_FDS_CAP)];
    } ctl;
    struct iovec iov = {.iov_base = buf, .iov_len = len};
    struct msghdr msg;
    int kept = 0;
    ssize_t n;

    if (nfds) {
        *nfds = 0;
    }
    if (truncated) {
        *truncated = false;
    }
    /* len 0 would read 0 bytes, which callers take for end of file. */
    if (!buf || len == 0 || max_fds < 0 || (max_fds > 0 && !fds)) {
        return -EINVAL;
    }

    memset(&msg, 0, sizeof(msg));
    memset(&ctl, 0, sizeof(ctl));
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = ctl.buf;
    msg.msg_controllen = sizeof(ctl.buf);
    do {
        n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
    } while (n < 0 && errno == EINTR);
    if (n < 0 && errno == ENOTSOCK) {
        /* A serial port: no descriptors can arrive there. */
        return plain_io(sock, &iov, 1, false);
    }
    if (n < 0) {
        return io_error();
    }

    if (msg.msg_flags & MSG_CTRUNC) {
        /* Some descriptors were lost: the message cannot be trusted to
         * carry what it says, so keep none of them. */
        take_fds(&msg, NULL, 0);
        if (truncated) {
            *truncated = true;
        }
        return n;
    }

    kept = take_fds(&msg, fds, nfds ? max_fds : 0);
    if (nfds) {
        *nfds = kept;
    }
    return n;
}
