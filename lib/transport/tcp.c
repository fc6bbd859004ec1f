/* TCP: for guests on user-mode networking (the host is 10.0.2.2 there). */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "transport-private.h"

/* getaddrinfo has its own error space; fold it into errno values. */
static int gai_to_errno(int e)
{
    switch (e) {
    case EAI_SYSTEM:
        return errno ? -errno : -EIO;
    case EAI_MEMORY:
        return -ENOMEM;
    case EAI_AGAIN:
        /* A temporary resolver failure: the name server did not answer. */
        return -EHOSTUNREACH;
    case EAI_FAMILY:
    case EAI_SOCKTYPE:
    case EAI_SERVICE:
        return -EAFNOSUPPORT;
    default:
        /* EAI_NONAME, EAI_NODATA, EAI_FAIL...: no such host. */
        return -ENXIO;
    }
}

static int resolve(const struct hxfr_uri *u, bool passive, struct addrinfo **res)
{
    struct addrinfo hints;
    char port[8];
    int e;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    /* No AI_ADDRCONFIG: it hides 127.0.0.1 on a host whose only IPv4
     * address is the loopback one (a container, a fresh VM). */
    hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
    snprintf(port, sizeof(port), "%u", (unsigned)u->port);
    errno = 0;
    /* An empty host (a caller-built struct; the parser fills it in) means
     * loopback, never the wildcard address that AI_PASSIVE would give. */
    e = getaddrinfo(u->host[0] ? u->host : "127.0.0.1", port, &hints, res);
    return e == 0 ? 0 : gai_to_errno(e);
}

void hxfr__tcp_nodelay(int fd)
{
    int one = 1;

    /* Frames are written in one go and wanted at once: no Nagle delay. */
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

int hxfr__tcp_listen(const struct hxfr_uri *u)
{
    struct addrinfo *res = NULL;
    int r, one = 1;

    if (strnlen(u->host, sizeof(u->host)) >= sizeof(u->host)) {
        return -EINVAL;
    }
    r = resolve(u, true, &res);
    if (r < 0) {
        return r;
    }
    r = -EADDRNOTAVAIL;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int fd =
            socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            r = -errno;
            continue;
        }
        /* A restarted daemon must not wait out TIME_WAIT of its old port. */
        (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, SOMAXCONN) < 0) {
            r = -errno;
            close(fd);
            continue;
        }
        r = fd;
        break;
    }
    freeaddrinfo(res);
    return r;
}

/* The addresses a connect URI names (it needs a host and a port). */
static int resolve_connect(const struct hxfr_uri *u, struct addrinfo **res)
{
    if (strnlen(u->host, sizeof(u->host)) >= sizeof(u->host) || u->host[0] == '\0' ||
        u->port == 0) {
        return -EINVAL;
    }
    return resolve(u, false, res);
}

int hxfr__tcp_resolve_first(const struct hxfr_uri *u, struct sockaddr_storage *ss, socklen_t *len)
{
    struct addrinfo *res = NULL;
    int r = resolve_connect(u, &res);

    if (r < 0) {
        return r;
    }
    if (!res || res->ai_addrlen > sizeof(*ss)) {
        r = -EHOSTUNREACH;
    } else {
        memset(ss, 0, sizeof(*ss));
        memcpy(ss, res->ai_addr, res->ai_addrlen);
        *len = res->ai_addrlen;
        r = 0;
    }
    freeaddrinfo(res);
    return r;
}

int hxfr__tcp_connect(const struct hxfr_uri *u)
{
    struct addrinfo *res = NULL;
    int r = resolve_connect(u, &res);

    if (r < 0) {
        return r;
    }
    r = -EHOSTUNREACH;
    /* Try each address in the resolver's order; the last error wins. */
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            r = -errno;
            continue;
        }
        r = hxfr__connect_retry(fd, ai->ai_addr, ai->ai_addrlen);
        if (r < 0) {
            close(fd);
            continue;
        }
        hxfr__tcp_nodelay(fd);
        r = fd;
        break;
    }
    freeaddrinfo(res);
    return r;
}
