/* Helpers shared by the transport sources; not used outside lib/transport. */
#ifndef HXFR_TRANSPORT_PRIVATE_H
#define HXFR_TRANSPORT_PRIVATE_H

#include <sys/socket.h>

#include "transport.h"

/* Per-transport halves of hxfr__transport_listen / _connect. */
int hxfr__unix_listen(const struct hxfr_uri *u);
int hxfr__unix_connect(const struct hxfr_uri *u);
int hxfr__tcp_listen(const struct hxfr_uri *u);
int hxfr__tcp_connect(const struct hxfr_uri *u);
int hxfr__vsock_listen(const struct hxfr_uri *u);
int hxfr__vsock_connect(const struct hxfr_uri *u);
int hxfr__serial_open(const struct hxfr_uri *u);

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
