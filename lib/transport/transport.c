/* Transport-independent entry points: listen, accept, connect, and the URI
 * a listening socket is bound to. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#ifdef __linux__
#include <linux/vm_sockets.h>
#endif

#include "transport-private.h"

/* Each kind's halves; a serial port is opened, never listened on. */
static const struct {
    int (*listen)(const struct hxfr_uri *u);
    int (*connect)(const struct hxfr_uri *u);
} kinds[] = {
    [HXFR_TRANSPORT_UNIX] = {hxfr__unix_listen, hxfr__unix_connect},
    [HXFR_TRANSPORT_TCP] = {hxfr__tcp_listen, hxfr__tcp_connect},
    [HXFR_TRANSPORT_VSOCK] = {hxfr__vsock_listen, hxfr__vsock_connect},
    [HXFR_TRANSPORT_SERIAL] = {NULL, hxfr__serial_open},
};

static bool known_kind(const struct hxfr_uri *u)
{
    return u && u->kind >= HXFR_TRANSPORT_UNIX && u->kind <= HXFR_TRANSPORT_SERIAL;
}

int hxfr__transport_listen(const struct hxfr_uri *u)
{
    if (!known_kind(u)) {
        return -EINVAL;
    }
    return kinds[u->kind].listen ? kinds[u->kind].listen(u) : -EOPNOTSUPP;
}

int hxfr__transport_connect(const struct hxfr_uri *u)
{
    if (!known_kind(u)) {
        return -EINVAL;
    }
    return kinds[u->kind].connect(u);
}

int hxfr__transport_accept(int listen_fd)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int fd;

    for (;;) {
        len = sizeof(ss);
        fd = accept4(listen_fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            break;
        }
        switch (errno) {
        case EINTR:
            continue;
        /* The peer gave up before we got to it, or (accept(2), Linux) a
         * network error is pending on the new connection: that one is gone,
         * the next one may be fine. Try again; EAGAIN ends the loop. */
        case ECONNABORTED:
        case EPROTO:
        case ENETDOWN:
        case ENOPROTOOPT:
        case EHOSTDOWN:
#ifdef ENONET
        case ENONET:
#endif
        case EHOSTUNREACH:
        case ENETUNREACH:
            continue;
#if EWOULDBLOCK != EAGAIN
        case EWOULDBLOCK:
            return -EAGAIN;
#endif
        default:
            /* EAGAIN, and EMFILE/ENFILE/ENOBUFS/ENOMEM which the caller
             * must handle (the connection stays pending). */
            return -errno;
        }
    }
    if (ss.ss_family == AF_INET || ss.ss_family == AF_INET6) {
        hxfr__tcp_nodelay(fd);
    }
    return fd;
}

/* Waits until a connection attempt in progress has ended; returns its
 * result (0 or -errno from SO_ERROR). */
static int wait_connected(int fd)
{
    struct pollfd pfd = {.fd = fd, .events = POLLOUT};
    int err = 0;
    socklen_t elen = sizeof(err);

    for (;;) {
        int r = poll(&pfd, 1, -1);
        if (r > 0) {
            break;
        }
        if (r < 0 && errno != EINTR) {
            return -errno;
        }
    }
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0) {
        return -errno;
    }
    return err ? -err : 0;
}

int hxfr__connect_retry(int fd, const struct sockaddr *addr, socklen_t addrlen)
{
    struct sockaddr_storage peer;
    socklen_t plen;
    int r;

    /* What a signal does to a blocking connect depends on the family: TCP
     * goes on connecting in the background (calling connect again says
     * EALREADY, then EISCONN), while UNIX and vsock abandon the attempt and
     * leave the socket unconnected (then connect must simply be called
     * again). Waiting for writability alone would take an abandoned UNIX
     * socket for a connected one, so getpeername decides. */
    for (;;) {
        if (connect(fd, addr, addrlen) == 0) {
            return 0;
        }
        switch (errno) {
        case EISCONN:
            return 0;
        case EINTR:
            continue;
        case EALREADY:
        case EINPROGRESS:
            r = wait_connected(fd);
            if (r < 0) {
                return r;
            }
            plen = sizeof(peer);
            if (getpeername(fd, (struct sockaddr *)&peer, &plen) == 0) {
                return 0;
            }
            if (errno != ENOTCONN) {
                return -errno;
            }
            continue;
        default:
            return -errno;
        }
    }
}

/* u as the TCP endpoint of address addr (family's) and port (network
 * order). Returns 0, or -1 with errno set by inet_ntop. */
static int tcp_uri(struct hxfr_uri *u, int family, const void *addr, uint16_t port)
{
    u->kind = HXFR_TRANSPORT_TCP;
    u->port = ntohs(port);
    return inet_ntop(family, addr, u->host, sizeof(u->host)) ? 0 : -1;
}

int hxfr__socket_bound_uri(int listen_fd, char *buf, size_t len)
{
    struct sockaddr_storage ss;
    socklen_t sslen = sizeof(ss);
    struct hxfr_uri u;
    int n;

    if (!buf || len == 0) {
        return -ENOSPC;
    }
    buf[0] = '\0';
    memset(&ss, 0, sizeof(ss));
    if (getsockname(listen_fd, (struct sockaddr *)&ss, &sslen) < 0) {
        return -errno;
    }
    memset(&u, 0, sizeof(u));
    switch (ss.ss_family) {
    case AF_INET: {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;
        if (tcp_uri(&u, AF_INET, &in->sin_addr, in->sin_port) < 0) {
            return -errno;
        }
        return hxfr__uri_format(&u, buf, len);
    }
    case AF_INET6: {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ss;
        if (tcp_uri(&u, AF_INET6, &in6->sin6_addr, in6->sin6_port) < 0) {
            return -errno;
        }
        if (in6->sin6_scope_id != 0) {
            size_t hl = strlen(u.host);
            snprintf(u.host + hl, sizeof(u.host) - hl, "%%%u", (unsigned)in6->sin6_scope_id);
        }
        return hxfr__uri_format(&u, buf, len);
    }
    case AF_UNIX: {
        const struct sockaddr_un *un = (const struct sockaddr_un *)&ss;
        size_t plen = sslen > offsetof(struct sockaddr_un, sun_path)
                          ? sslen - offsetof(struct sockaddr_un, sun_path)
                          : 0;
        /* Unnamed and abstract sockets have no path to name in a URI. */
        if (plen == 0 || un->sun_path[0] == '\0') {
            return -EAFNOSUPPORT;
        }
        if (plen > sizeof(un->sun_path)) {
            plen = sizeof(un->sun_path);
        }
        plen = strnlen(un->sun_path, plen);
        if (plen >= sizeof(u.path)) {
            return -ENAMETOOLONG;
        }
        u.kind = HXFR_TRANSPORT_UNIX;
        memcpy(u.path, un->sun_path, plen);
        return hxfr__uri_format(&u, buf, len);
    }
#ifdef __linux__
    case AF_VSOCK: {
        const struct sockaddr_vm *vm = (const struct sockaddr_vm *)&ss;
        /* Written directly: a port the kernel picked may not fit in u16. */
        if (vm->svm_cid == VMADDR_CID_ANY) {
            n = snprintf(buf, len, "vsock:%u", (unsigned)vm->svm_port);
        } else {
            n = snprintf(buf, len, "vsock:%u:%u", (unsigned)vm->svm_cid, (unsigned)vm->svm_port);
        }
        if (n < 0 || (size_t)n >= len) {
            buf[0] = '\0';
            return -ENOSPC;
        }
        return n;
    }
#endif
    default:
        (void)n;
        return -EAFNOSUPPORT;
    }
}
