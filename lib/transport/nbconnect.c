/* Connecting from an event loop: resolve once, then start non-blocking
 * connects and collect their outcome when the socket turns writable. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "transport-private.h"

int hxfr__transport_resolve(const struct hxfr_uri *u, struct hxfr_addr *out)
{
    struct hxfr_addr a;
    int r = 0;

    if (!u || !out) {
        return -EINVAL;
    }
    memset(&a, 0, sizeof(a));
    a.kind = u->kind;
    switch (u->kind) {
    case HXFR_TRANSPORT_UNIX:
        r = hxfr__unix_addr(u, (struct sockaddr_un *)&a.ss, &a.len);
        break;
    case HXFR_TRANSPORT_TCP:
        r = hxfr__tcp_resolve_first(u, &a.ss, &a.len);
        break;
    case HXFR_TRANSPORT_VSOCK:
#ifdef __linux__
        if (u->cid == VMADDR_CID_ANY || u->port == 0) {
            r = -EINVAL;
            break;
        }
        hxfr__vsock_addr(u, false, (struct sockaddr_vm *)&a.ss);
        a.len = sizeof(struct sockaddr_vm);
#else
        r = -EAFNOSUPPORT;
#endif
        break;
    case HXFR_TRANSPORT_SERIAL:
        r = -EOPNOTSUPP;
        break;
    default:
        r = -EINVAL;
        break;
    }
    if (r == 0) {
        *out = a;
    }
    return r;
}

int hxfr__transport_connect_start(const struct hxfr_addr *a)
{
    int fd, r;

    if (!a || a->len == 0) {
        return -EINVAL;
    }
    fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        /* A kernel without the vsock module refuses the socket itself. */
        if (a->kind == HXFR_TRANSPORT_VSOCK && (errno == EINVAL || errno == EPROTONOSUPPORT)) {
            return -EAFNOSUPPORT;
        }
        return -errno;
    }
    if (a->kind == HXFR_TRANSPORT_TCP) {
        hxfr__tcp_nodelay(fd);
    }
    do {
        r = connect(fd, (const struct sockaddr *)&a->ss, a->len);
    } while (r < 0 && errno == EINTR && a->kind != HXFR_TRANSPORT_TCP);
    /* An interrupted TCP connect goes on in the background (EINTR means
     * "in progress" there); UNIX and vsock abandon it and were retried. */
    if (r < 0 && errno != EINPROGRESS && !(errno == EINTR && a->kind == HXFR_TRANSPORT_TCP)) {
        r = -errno;
        if (r == -ECONNRESET && a->kind == HXFR_TRANSPORT_VSOCK) {
            r = -ECONNREFUSED;
        }
        close(fd);
        return r;
    }
    return fd;
}

int hxfr__transport_connect_finish(int fd, enum hxfr_transport_kind kind)
{
    int err = 0;
    socklen_t len = sizeof(err);

    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) {
        return -errno;
    }
    if (err == ECONNRESET && kind == HXFR_TRANSPORT_VSOCK) {
        err = ECONNREFUSED;
    }
    return err ? -err : 0;
}
