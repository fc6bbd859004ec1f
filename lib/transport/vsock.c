/* AF_VSOCK: guest to host without any network configuration. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "transport-private.h"

#ifdef __linux__
#include <linux/vm_sockets.h>

void hxfr__vsock_addr(const struct hxfr_uri *u, bool for_listen, struct sockaddr_vm *sa)
{
    memset(sa, 0, sizeof(*sa));
    sa->svm_family = AF_VSOCK;
    sa->svm_cid = u->cid;
    /* Port 0 on the listen side asks for any free port, like TCP port 0. */
    sa->svm_port = (for_listen && u->port == 0) ? VMADDR_PORT_ANY : u->port;
}

/* A kernel without the vsock module refuses the socket call itself. */
static int vsock_socket(int flags)
{
    int fd = socket(AF_VSOCK, SOCK_STREAM | flags, 0);

    if (fd < 0) {
        return errno == EINVAL || errno == EPROTONOSUPPORT ? -EAFNOSUPPORT : -errno;
    }
    return fd;
}

int hxfr__vsock_listen(const struct hxfr_uri *u)
{
    struct sockaddr_vm sa;
    int fd, r;

    hxfr__vsock_addr(u, true, &sa);
    fd = vsock_socket(SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
        r = fd;
        goto out;
    }
    if (bind(fd, (const struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, SOMAXCONN) < 0) {
        r = -errno;
        close(fd);
        goto out;
    }
    r = fd;
out:
    return r;
}

int hxfr__vsock_connect(const struct hxfr_uri *u)
{
    struct sockaddr_vm sa;
    int fd, r;

    if (u->cid == VMADDR_CID_ANY || u->port == 0) {
        r = -EINVAL;
        goto out;
    }
    hxfr__vsock_addr(u, false, &sa);
    fd = vsock_socket(SOCK_CLOEXEC);
    if (fd < 0) {
        r = fd;
        goto out;
    }
    r = hxfr__connect_retry(fd, (const struct sockaddr *)&sa, sizeof(sa));
    /* virtio-vsock answers a connection to a port nobody listens on with a
     * reset (ECONNRESET); say what it means, like TCP and UNIX do. */
    if (r == -ECONNRESET) {
        r = -ECONNREFUSED;
    }
    if (r < 0) {
        close(fd);
        goto out;
    }
    r = fd;
out:
    return r;
}

#else

int hxfr__vsock_listen(const struct hxfr_uri *u)
{
    (void)u;
    return -EAFNOSUPPORT;
}

int hxfr__vsock_connect(const struct hxfr_uri *u)
{
    (void)u;
    return -EAFNOSUPPORT;
}

#endif
