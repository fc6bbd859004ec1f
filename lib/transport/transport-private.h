/* Helpers shared by the transport sources; not used outside lib/transport. */
#ifndef HXFR_TRANSPORT_PRIVATE_H
#define HXFR_TRANSPORT_PRIVATE_H

#include <sys/socket.h>
#include <sys/un.h>
#ifdef __linux__
#include <linux/vm_sockets.h>
#endif

#include "transport.h"

/* Per-transport halves of hxfr__transport_listen / _connect. */
int hxfr__unix_listen(const struct hxfr_uri *u);
int hxfr__unix_connect(const struct hxfr_uri *u);
int hxfr__tcp_listen(const struct hxfr_uri *u);
int hxfr__tcp_connect(const struct hxfr_uri *u);
int hxfr__vsock_listen(const struct hxfr_uri *u);
int hxfr__vsock_connect(const struct hxfr_uri *u);
int hxfr__serial_open(const struct hxfr_uri *u);

/* The socket address of a unix: URI (-ENAMETOOLONG, -EINVAL for an empty
 * path). */
int hxfr__unix_addr(const struct hxfr_uri *u, struct sockaddr_un *sa, socklen_t *salen);
#ifdef __linux__
/* The socket address of a vsock: URI (listen: port 0 = any port). */
void hxfr__vsock_addr(const struct hxfr_uri *u, bool for_listen, struct sockaddr_vm *sa);
#endif
/* Resolves a tcp: connect URI to its first address (getaddrinfo, may
 * block). Returns 0 or -errno as hxfr__tcp_connect does. */
int hxfr__tcp_resolve_first(const struct hxfr_uri *u, struct sockaddr_storage *ss, socklen_t *len);

/* Sets TCP_NODELAY (best effort). */
void hxfr__tcp_nodelay(int fd);

/* A blocking connect that survives EINTR: an interrupted connect goes on
 * in the kernel, so it waits for it to finish instead of calling connect
 * again (which would give EALREADY). Returns 0 or -errno. */
int hxfr__connect_retry(int fd, const struct sockaddr *addr, socklen_t addrlen);

/* Parses a decimal unsigned number of at most max_digits digits (no sign,
 * no spaces) from [s, s + n) that is not above max. Returns 0 or -EINVAL. */
int hxfr__parse_uint(const char *s, size_t n, unsigned max_digits, unsigned long max,
                     unsigned long *out);

#endif
