/* Endpoint URIs: parsing, canonical formatting and the default socket path. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "transport-private.h"

/* VMADDR_CID_ANY, spelled out so this file does not need linux/vm_sockets.h. */
#define CID_ANY 0xFFFFFFFFu

int hxfr__parse_uint(const char *s, size_t n, unsigned max_digits, unsigned long max,
                     unsigned long *out)
{
    unsigned long v = 0;

    if (n == 0 || n > max_digits) {
        return -EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -EINVAL;
        }
        /* max_digits keeps v far below ULONG_MAX: at most 10 digits. */
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    if (v > max) {
        return -EINVAL;
    }
    *out = v;
    return 0;
}

static int copy_path(const char *s, char *dst)
{
    size_t n = strlen(s);

    if (n == 0) {
        return -EINVAL;
    }
    /* sun_path holds the terminating NUL too. */
    if (n >= HXFR_URI_PATH_MAX) {
        return -ENAMETOOLONG;
    }
    memcpy(dst, s, n + 1);
    return 0;
}

static bool is_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_';
}

/* A host name or IPv4 address: letters, digits, '-', '.', '_'. An all-digit
 * host is refused: "tcp:8080" reads like a port, and taking it as a host
 * (inet_aton accepts "8080") would silently listen somewhere unexpected. */
static int check_plain_host(const char *h, size_t n)
{
    bool all_digits = true;

    for (size_t i = 0; i < n; i++) {
        if (!is_name_char(h[i])) {
            return -EINVAL;
        }
        if (h[i] < '0' || h[i] > '9') {
            all_digits = false;
        }
    }
    return all_digits ? -EINVAL : 0;
}

/* The inside of [...]: an IPv6 address with an optional %zone. */
static int check_ipv6_host(const char *h, size_t n)
{
    char addr[INET6_ADDRSTRLEN];
    unsigned char bin[16];
    const char *pct = memchr(h, '%', n);
    size_t alen = pct ? (size_t)(pct - h) : n;

    if (alen == 0 || alen >= sizeof(addr)) {
        return -EINVAL;
    }
    memcpy(addr, h, alen);
    addr[alen] = '\0';
    if (inet_pton(AF_INET6, addr, bin) != 1) {
        return -EINVAL;
    }
    if (pct) {
        size_t zlen = n - alen - 1;
        if (zlen == 0) {
            return -EINVAL;
        }
        for (size_t i = 0; i < zlen; i++) {
            if (!is_name_char(pct[1 + i])) {
                return -EINVAL;
            }
        }
    }
    return 0;
}

/* A TCP or vsock port: 1..65535, or 0 (an ephemeral port) when the address
 * is for bind, where it is meaningful. */
static int parse_port(const char *s, size_t len, bool for_listen, uint16_t *out)
{
    unsigned long v;
    int r = hxfr__parse_uint(s, len, 5, 65535, &v);
    if (r < 0) {
        return r;
    }
    if (v == 0 && !for_listen) {
        return -EINVAL;
    }
    *out = (uint16_t)v;
    return 0;
}

static int parse_tcp(const char *s, bool for_listen, struct hxfr_uri *u)
{
    const char *host, *port = NULL;
    size_t hlen;
    int r;

    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (!end) {
            return -EINVAL;
        }
        host = s + 1;
        hlen = (size_t)(end - host);
        if (end[1] == ':') {
            port = end + 2;
        } else if (end[1] != '\0') {
            return -EINVAL;
        }
        if (hlen >= sizeof(u->host)) {
            return -ENAMETOOLONG;
        }
        r = check_ipv6_host(host, hlen);
        if (r < 0) {
            return r;
        }
    } else {
        const char *colon = strchr(s, ':');
        host = s;
        if (colon) {
            /* An IPv6 address must be written in brackets. */
            if (strchr(colon + 1, ':')) {
                return -EINVAL;
            }
            hlen = (size_t)(colon - s);
            port = colon + 1;
        } else {
            hlen = strlen(s);
        }
        if (hlen >= sizeof(u->host)) {
            return -ENAMETOOLONG;
        }
        if (hlen > 0) {
            r = check_plain_host(host, hlen);
            if (r < 0) {
                return r;
            }
        }
    }

    if (hlen == 0) {
        if (!for_listen) {
            return -EINVAL;
        }
        strcpy(u->host, "127.0.0.1");
    } else {
        memcpy(u->host, host, hlen);
        u->host[hlen] = '\0';
    }

    u->port = HXFR_DEFAULT_TCP_PORT;
    if (port) {
        return parse_port(port, strlen(port), for_listen, &u->port);
    }
    return 0;
}

static int parse_vsock(const char *s, bool for_listen, struct hxfr_uri *u)
{
    const char *colon = strchr(s, ':');
    const char *cid = NULL, *port = NULL;
    size_t cid_len = 0, port_len = 0;
    unsigned long v;
    int r;

    if (colon) {
        if (strchr(colon + 1, ':')) {
            return -EINVAL;
        }
        cid = s;
        cid_len = (size_t)(colon - s);
        port = colon + 1;
        port_len = strlen(port);
    } else if (for_listen) {
        /* vsock:PORT: listen on that port for any CID. */
        port = s;
        port_len = strlen(s);
    } else {
        /* vsock:CID: connect to that CID on the default port. */
        cid = s;
        cid_len = strlen(s);
    }

    u->cid = for_listen ? CID_ANY : HXFR_DEFAULT_VSOCK_CID;
    u->port = HXFR_DEFAULT_VSOCK_PORT;
    if (cid_len > 0) {
        r = hxfr__parse_uint(cid, cid_len, 10, 0xFFFFFFFFul, &v);
        if (r < 0) {
            return r;
        }
        /* VMADDR_CID_ANY names no peer. */
        if (v == CID_ANY && !for_listen) {
            return -EINVAL;
        }
        u->cid = (uint32_t)v;
    }
    if (port_len > 0) {
        return parse_port(port, port_len, for_listen, &u->port);
    }
    return 0;
}

static bool is_scheme_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '-' || c == '.';
}

int hxfr__uri_parse(const char *s, bool for_listen, struct hxfr_uri *out)
{
    struct hxfr_uri u;
    const char *colon;
    int r;

    if (!s || !out) {
        return -EINVAL;
    }
    memset(&u, 0, sizeof(u));

    if (strncmp(s, "unix:", 5) == 0) {
        u.kind = HXFR_TRANSPORT_UNIX;
        r = copy_path(s + 5, u.path);
    } else if (strncmp(s, "serial:", 7) == 0) {
        u.kind = HXFR_TRANSPORT_SERIAL;
        r = copy_path(s + 7, u.path);
    } else if (strncmp(s, "tcp:", 4) == 0) {
        u.kind = HXFR_TRANSPORT_TCP;
        r = parse_tcp(s + 4, for_listen, &u);
    } else if (strncmp(s, "vsock:", 6) == 0) {
        u.kind = HXFR_TRANSPORT_VSOCK;
        r = parse_vsock(s + 6, for_listen, &u);
    } else {
        /* Something shaped like "name:rest" is a scheme we do not know
         * (checked before the bare-path rule, so "http://x" is not taken
         * for a relative path); a bare path has a '/' before any ':'. */
        colon = strchr(s, ':');
        bool scheme = colon && colon > s;
        for (const char *p = s; scheme && p < colon; p++) {
            scheme = is_scheme_char(*p);
        }
        if (scheme) {
            r = -EPROTONOSUPPORT;
        } else if (strchr(s, '/')) {
            u.kind = HXFR_TRANSPORT_UNIX;
            r = copy_path(s, u.path);
        } else {
            r = -EINVAL;
        }
    }

    if (r == 0) {
        *out = u;
    }
    return r;
}

int hxfr__uri_format(const struct hxfr_uri *u, char *buf, size_t len)
{
    int n;

    if (!u || !buf || len == 0) {
        return -ENOSPC;
    }
    buf[0] = '\0';
    switch (u->kind) {
    case HXFR_TRANSPORT_UNIX:
    case HXFR_TRANSPORT_SERIAL:
        n = snprintf(buf, len, "%s:%.*s", u->kind == HXFR_TRANSPORT_UNIX ? "unix" : "serial",
                     (int)strnlen(u->path, sizeof(u->path)), u->path);
        break;
    case HXFR_TRANSPORT_TCP: {
        int hlen = (int)strnlen(u->host, sizeof(u->host));
        bool v6 = memchr(u->host, ':', (size_t)hlen) != NULL;
        n = snprintf(buf, len, v6 ? "tcp:[%.*s]:%u" : "tcp:%.*s:%u", hlen, u->host,
                     (unsigned)u->port);
        break;
    }
    case HXFR_TRANSPORT_VSOCK:
        if (u->cid == CID_ANY) {
            n = snprintf(buf, len, "vsock:%u", (unsigned)u->port);
        } else {
            n = snprintf(buf, len, "vsock:%u:%u", (unsigned)u->cid, (unsigned)u->port);
        }
        break;
    default:
        return -EINVAL;
    }
    if (n < 0) {
        buf[0] = '\0';
        return -EINVAL;
    }
    if ((size_t)n >= len) {
        /* snprintf truncated; a cut URI would name another endpoint. */
        buf[0] = '\0';
        return -ENOSPC;
    }
    return n;
}

int hxfr__default_socket_path(char *buf, size_t len)
{
    char tmp[HXFR_URI_PATH_MAX];
    const char *xdg = secure_getenv("XDG_RUNTIME_DIR");
    int n;

    if (!buf || len == 0) {
        return -ENAMETOOLONG;
    }
    /* A relative XDG_RUNTIME_DIR is invalid per the XDG spec: ignore it. */
    if (xdg && xdg[0] == '/') {
        n = snprintf(tmp, sizeof(tmp), "%s/hxfr/hxfr.sock", xdg);
    } else if (geteuid() == 0) {
        n = snprintf(tmp, sizeof(tmp), "/run/hxfr/hxfr.sock");
    } else {
        n = snprintf(tmp, sizeof(tmp), "/tmp/hxfr-%u/hxfr.sock", (unsigned)getuid());
    }
    if (n < 0 || (size_t)n >= sizeof(tmp) || (size_t)n >= len) {
        buf[0] = '\0';
        return -ENAMETOOLONG;
    }
    memcpy(buf, tmp, (size_t)n + 1);
    return 0;
}
