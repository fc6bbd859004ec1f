/* Transports: endpoint URIs, listening and connecting sockets for UNIX,
 * TCP and AF_VSOCK, virtio-serial character devices, fd passing and
 * systemd socket activation. Internal to hxfr (linked into libhxfr-client
 * and libhxfr-host); no logging, -errno results.
 *
 * URI forms (the same strings on the command line of every tool):
 *   unix:PATH            UNIX stream socket (PATH absolute or relative)
 *   tcp:HOST:PORT        TCP; HOST may be a name, IPv4 or [IPv6]; listen
 *                        side: HOST defaults to 127.0.0.1, PORT to 15937
 *   vsock:CID:PORT       AF_VSOCK; connect: CID defaults to 2 (the host),
 *                        PORT to 5000. Listen side: vsock:PORT (any CID)
 *   serial:PATH          a virtio-serial port (/dev/virtio-ports/NAME) or
 *                        any character device / tty: no socket calls
 * A bare path (containing '/') is taken as unix:PATH.
 */
#ifndef HXFR_TRANSPORT_H
#define HXFR_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#define HXFR_DEFAULT_TCP_PORT   15937u
#define HXFR_DEFAULT_VSOCK_PORT 5000u
#define HXFR_DEFAULT_VSOCK_CID  2u
#define HXFR_URI_PATH_MAX       108u /* sizeof(sockaddr_un.sun_path) */
#define HXFR_MAX_PASSED_FDS     4    /* fds accepted in one message */

enum hxfr_transport_kind {
    HXFR_TRANSPORT_UNIX = 1,
    HXFR_TRANSPORT_TCP,
    HXFR_TRANSPORT_VSOCK,
    HXFR_TRANSPORT_SERIAL,
};

struct hxfr_uri {
    enum hxfr_transport_kind kind;
    char path[HXFR_URI_PATH_MAX];    /* unix, serial */
    char host[256];                  /* tcp */
    uint16_t port;                   /* tcp, vsock */
    uint32_t cid;                    /* vsock */
};

/* Parses s. for_listen selects listen-side defaults and forms (vsock:PORT).
 * Returns 0 or -EINVAL (malformed), -ENAMETOOLONG (path too long),
 * -EPROTONOSUPPORT (unknown scheme). */
int hxfr__uri_parse(const char *s, bool for_listen, struct hxfr_uri *out);

/* Writes the canonical string of u into buf (always NUL-terminated).
 * Returns the length or -ENOSPC. */
int hxfr__uri_format(const struct hxfr_uri *u, char *buf, size_t len);

/* The default daemon socket path: $XDG_RUNTIME_DIR/hxfr/hxfr.sock, or
 * /run/hxfr/hxfr.sock as root, or /tmp/hxfr-$UID/hxfr.sock as a last resort.
 * Returns 0 or -ENAMETOOLONG. */
int hxfr__default_socket_path(char *buf, size_t len);

/* Opens a non-blocking, close-on-exec listening socket for u.
 * unix: creates the parent folder (0750) if missing; a stale socket file
 * (nothing accepts on it) is removed, a live one gives -EADDRINUSE, and a
 * path that is not a socket is never removed (-EEXIST); the socket file
 * gets mode 0660. tcp: SO_REUSEADDR. vsock: -EAFNOSUPPORT with no AF_VSOCK.
 * serial: -EOPNOTSUPP (a serial port is opened with hxfr__transport_connect).
 * Returns the fd or -errno. */
int hxfr__transport_listen(const struct hxfr_uri *u);

/* Accepts one connection from a listening fd: non-blocking, close-on-exec,
 * TCP_NODELAY on TCP. Returns the fd, -EAGAIN when none is pending, or
 * -errno. */
int hxfr__transport_accept(int listen_fd);

/* Connects to u (blocking connect, then the fd is left in blocking mode;
 * the caller sets O_NONBLOCK if it wants). TCP: TCP_NODELAY. serial: opens
 * the device read/write, puts a tty into raw mode. Returns the fd or -errno
 * (-ENOENT no socket file, -ECONNREFUSED, -ENETUNREACH / -ENODEV for vsock
 * without a route, -EAFNOSUPPORT without AF_VSOCK). */
int hxfr__transport_connect(const struct hxfr_uri *u);

/* True if fd is a UNIX socket (fd passing possible). */
bool hxfr__fd_is_unix_socket(int fd);

/* sendmsg with SCM_RIGHTS: sends the iovecs and, with the first byte, nfds
 * descriptors (nfds <= HXFR_MAX_PASSED_FDS). Handles EINTR. Returns bytes
 * sent or -errno (-EAGAIN on a non-blocking socket). */
ssize_t hxfr__send_with_fds(int sock, const struct iovec *iov, int iovcnt, const int *fds,
                            int nfds);

/* recvmsg that also collects passed fds (close-on-exec). Up to max_fds are
 * stored in fds and *nfds is set; any fd beyond max_fds is closed; if the
 * kernel reports MSG_CTRUNC every received fd is closed and *truncated is
 * set. Handles EINTR. Returns bytes read (0 = EOF) or -errno. */
ssize_t hxfr__recv_with_fds(int sock, void *buf, size_t len, int *fds, int max_fds, int *nfds,
                            bool *truncated);

/* systemd socket activation: if LISTEN_PID is this process and LISTEN_FDS
 * is set, stores up to max fds (starting at 3) in fds, marks them
 * close-on-exec and non-blocking, unsets the variables and returns the
 * count; returns 0 when not socket-activated. */
int hxfr__sd_listen_fds(int *fds, int max);

/* Writes all of buf to a blocking fd, retrying on EINTR and short writes.
 * Returns 0 or -errno. */
int hxfr__write_all(int fd, const void *buf, size_t len);

/* writev all iovecs to a blocking fd (modifies iov while advancing).
 * Returns 0 or -errno. */
int hxfr__writev_all(int fd, struct iovec *iov, int iovcnt);

#endif
