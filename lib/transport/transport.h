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
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#define HXFR_DEFAULT_TCP_PORT   15937u
#define HXFR_DEFAULT_VSOCK_PORT 5000u
#define HXFR_DEFAULT_VSOCK_CID  2u
#define HXFR_URI_PATH_MAX       108u /* sizeof(sockaddr_un.sun_path) */
#define HXFR_MAX_PASSED_FDS     4    /* fds accepted in one message */
#define HXFR_RECV_FDS_CAP       16   /* control buffer of hxfr__recv_with_fds */

enum hxfr_transport_kind {
    HXFR_TRANSPORT_UNIX = 1,
    HXFR_TRANSPORT_TCP,
    HXFR_TRANSPORT_VSOCK,
    HXFR_TRANSPORT_SERIAL,
};

struct hxfr_uri {
    enum hxfr_transport_kind kind;
    char path[HXFR_URI_PATH_MAX]; /* unix, serial */
    char host[256];               /* tcp */
    uint16_t port;                /* tcp, vsock */
    uint32_t cid;                 /* vsock */
};

/* Parses s. for_listen selects listen-side defaults and forms (vsock:PORT).
 * Ports are decimal 1..65535 (0 only for_listen: ephemeral); an IPv6 host
 * needs brackets and is stored without them; an all-digit TCP host
 * ("tcp:8080") is refused as ambiguous. vsock listen without a CID stores
 * cid 0xFFFFFFFF (VMADDR_CID_ANY). tcp connect: HOST required, PORT
 * defaults to 15937; vsock connect: "vsock:CID" takes port 5000. The whole
 * struct is written (zero-filled) on success, untouched on failure.
 * Returns 0 or -EINVAL (malformed), -ENAMETOOLONG (path or host too long),
 * -EPROTONOSUPPORT (unknown scheme). docs/transports.md has the table. */
int hxfr__uri_parse(const char *s, bool for_listen, struct hxfr_uri *out);

/* Writes the canonical string of u into buf (always NUL-terminated; empty
 * when it does not fit, never a cut URI). Parsing the result with the same
 * for_listen gives u back. Returns the length, -ENOSPC or -EINVAL (unknown
 * kind). */
int hxfr__uri_format(const struct hxfr_uri *u, char *buf, size_t len);

/* The default daemon socket path: $XDG_RUNTIME_DIR/hxfr/hxfr.sock, or
 * /run/hxfr/hxfr.sock as root, or /tmp/hxfr-$UID/hxfr.sock as a last resort.
 * XDG_RUNTIME_DIR is used only if absolute (and not in setuid programs).
 * Returns 0 or -ENAMETOOLONG (buf too small or the path over 107 bytes). */
int hxfr__default_socket_path(char *buf, size_t len);

/* Opens a non-blocking, close-on-exec listening socket for u.
 * unix: creates the parent folder (0750) if missing; a stale socket file
 * (nothing accepts on it) is removed, a live one gives -EADDRINUSE, and a
 * path that is not a socket is never removed (-EEXIST); the socket file
 * gets mode 0660. tcp: SO_REUSEADDR. vsock: -EAFNOSUPPORT with no AF_VSOCK.
 * serial: -EOPNOTSUPP (a serial port is opened with hxfr__transport_connect).
 * tcp and vsock port 0: the kernel picks a free port (see
 * hxfr__socket_bound_uri). A UNIX socket file is not removed on close: the
 * caller unlinks it when it shuts down. Returns the fd (caller owns it) or
 * -errno. */
int hxfr__transport_listen(const struct hxfr_uri *u);

/* Writes the URI a listening (or bound) socket is actually bound to into
 * buf (always NUL-terminated), in the listen-side form: tcp:127.0.0.1:41234,
 * tcp:[::1]:41234, unix:/path, vsock:PORT (any CID) or vsock:CID:PORT. Meant
 * for a daemon started on port 0 to say where it listens.
 * Returns the length, -ENOSPC, -EAFNOSUPPORT (unnamed or abstract UNIX
 * socket, other families) or -errno from getsockname. */
int hxfr__socket_bound_uri(int listen_fd, char *buf, size_t len);

/* Accepts one connection from a listening fd: non-blocking, close-on-exec,
 * TCP_NODELAY on TCP. Connections that died while pending (ECONNABORTED,
 * EPROTO, network errors) are skipped. Returns the fd (caller owns it),
 * -EAGAIN when none is pending, or -errno (-EMFILE/-ENFILE: out of fds, the
 * connection stays pending; the caller must back off or it spins). */
int hxfr__transport_accept(int listen_fd);

/* Connects to u (blocking connect, then the fd is left in blocking mode;
 * the caller sets O_NONBLOCK if it wants). TCP: TCP_NODELAY. serial: opens
 * the device read/write, puts a tty into raw mode. Returns the fd or -errno
 * (-ENOENT no socket file, -ECONNREFUSED, -ENETUNREACH / -ENODEV for vsock
 * without a route, -EAFNOSUPPORT without AF_VSOCK).
 * Measured on a Firecracker guest: vsock to CID 2 with no listener gives
 * -ECONNREFUSED (virtio-vsock's reset is reported as such), CID 1 without
 * vsock_loopback gives -ETIMEDOUT after the kernel's 2 s connect timeout.
 * TCP: a name that does not resolve gives -ENXIO (-EHOSTUNREACH when the
 * resolver did not answer). serial: -ENODEV when PATH is no char device.
 * The caller owns the returned fd. */
int hxfr__transport_connect(const struct hxfr_uri *u);

/* A connect-side endpoint resolved to a socket address, for programs that
 * connect without blocking from an event loop (hxfr-view): the name lookup
 * that may block happens once, in hxfr__transport_resolve, and every later
 * (re)connect only calls socket() and connect(). */
struct hxfr_addr {
    enum hxfr_transport_kind kind;
    struct sockaddr_storage ss;
    socklen_t len;
};

/* Resolves a connect URI (unix, tcp, vsock) into *out. A TCP host name is
 * looked up here (blocking; the first address the resolver returns is
 * used). serial: -EOPNOTSUPP. Other results as hxfr__transport_connect.
 * Returns 0 or -errno; *out is written only on success. */
int hxfr__transport_resolve(const struct hxfr_uri *u, struct hxfr_addr *out);

/* Starts a non-blocking connect to a: the returned socket (non-blocking,
 * close-on-exec, TCP_NODELAY on TCP; the caller owns it) may still be
 * connecting. Wait until it is writable, then call
 * hxfr__transport_connect_finish. A UNIX listener with a full backlog
 * gives -EAGAIN (try again later), others -errno as
 * hxfr__transport_connect. */
int hxfr__transport_connect_start(const struct hxfr_addr *a);

/* The outcome of a connect started with hxfr__transport_connect_start,
 * once its socket is writable (or has an error): 0 when connected, else
 * -errno (a vsock reset is reported as -ECONNREFUSED). */
int hxfr__transport_connect_finish(int fd, enum hxfr_transport_kind kind);

/* True if fd is a UNIX socket (fd passing possible). */
bool hxfr__fd_is_unix_socket(int fd);

/* sendmsg with SCM_RIGHTS: sends the iovecs and, with the first byte, nfds
 * descriptors (nfds <= HXFR_MAX_PASSED_FDS, else -EINVAL; fds need at least
 * one byte to travel with). Handles EINTR; never raises SIGPIPE (-EPIPE).
 * The caller keeps ownership of fds (the peer gets duplicates). A short
 * count means the fds went with the bytes that were sent: send the rest
 * without them. On a non-socket fd (serial) with nfds == 0 it writes.
 * Returns bytes sent or -errno (-EAGAIN on a non-blocking socket). */
ssize_t hxfr__send_with_fds(int sock, const struct iovec *iov, int iovcnt, const int *fds,
                            int nfds);

/* recvmsg that also collects passed fds (close-on-exec). Up to max_fds are
 * stored in fds and *nfds is set; any fd beyond max_fds is closed; if the
 * kernel reports MSG_CTRUNC every received fd is closed and *truncated is
 * set. Handles EINTR. Returns bytes read (0 = EOF) or -errno (-EINVAL for
 * len 0, which could not be told from EOF).
 * The control buffer holds HXFR_RECV_FDS_CAP fds, so a message with up to
 * that many is a surplus (kept up to max_fds, the rest closed) and only a
 * larger one is truncated by the kernel. The caller owns the stored fds.
 * nfds and truncated may be NULL (then no fd is kept). On a non-socket fd
 * (serial) it reads. */
ssize_t hxfr__recv_with_fds(int sock, void *buf, size_t len, int *fds, int max_fds, int *nfds,
                            bool *truncated);

/* systemd socket activation: if LISTEN_PID is this process and LISTEN_FDS
 * is set, stores up to max fds (starting at 3) in fds, marks them
 * close-on-exec and non-blocking, unsets the variables and returns the
 * count; returns 0 when not socket-activated. Passed fds beyond max are
 * closed (a listener nobody serves would hang its clients); a malformed
 * variable gives -EINVAL, a promised fd that is not open -EBADF.
 * LISTEN_FDNAMES is ignored (and unset). Changes the environment: call it
 * early in main, before any thread starts. The caller owns the fds. */
int hxfr__sd_listen_fds(int *fds, int max);

/* Writes all of buf to a blocking fd, retrying on EINTR and short writes.
 * Sockets are written with MSG_NOSIGNAL (a closed peer is -EPIPE, never a
 * SIGPIPE). A non-blocking fd that fills up gives -EAGAIN with part of buf
 * written (how much is not reported): use it on blocking fds only.
 * Returns 0 or -errno. */
int hxfr__write_all(int fd, const void *buf, size_t len);

/* writev all iovecs to a blocking fd (modifies iov while advancing: on
 * return the entries hold what was not written). Any iovcnt, also above
 * IOV_MAX. Same rules as hxfr__write_all. Returns 0 or -errno. */
int hxfr__writev_all(int fd, struct iovec *iov, int iovcnt);

#endif
