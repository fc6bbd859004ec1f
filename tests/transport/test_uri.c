/* URI parsing, defaults, canonical formatting and the default socket path. */
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include "transport.h"

#include "harness.h"

struct good {
    const char *s;
    bool listen;
    enum hxfr_transport_kind kind;
    const char *text; /* path or host */
    unsigned port;
    uint32_t cid;
    const char *canon;
};

static const struct good goods[] = {
    {"unix:/run/x.sock", false, HXFR_TRANSPORT_UNIX, "/run/x.sock", 0, 0, "unix:/run/x.sock"},
    {"unix:rel.sock", true, HXFR_TRANSPORT_UNIX, "rel.sock", 0, 0, "unix:rel.sock"},
    {"/tmp/a.sock", false, HXFR_TRANSPORT_UNIX, "/tmp/a.sock", 0, 0, "unix:/tmp/a.sock"},
    {"./a:b", false, HXFR_TRANSPORT_UNIX, "./a:b", 0, 0, "unix:./a:b"},
    {"unix:a:b", false, HXFR_TRANSPORT_UNIX, "a:b", 0, 0, "unix:a:b"},
    {"serial:/dev/virtio-ports/hxfr", false, HXFR_TRANSPORT_SERIAL, "/dev/virtio-ports/hxfr", 0, 0,
     "serial:/dev/virtio-ports/hxfr"},
    {"tcp:localhost:80", false, HXFR_TRANSPORT_TCP, "localhost", 80, 0, "tcp:localhost:80"},
    {"tcp:10.0.2.2", false, HXFR_TRANSPORT_TCP, "10.0.2.2", 15937, 0, "tcp:10.0.2.2:15937"},
    {"tcp:10.0.2.2:65535", false, HXFR_TRANSPORT_TCP, "10.0.2.2", 65535, 0, "tcp:10.0.2.2:65535"},
    {"tcp:[::1]:5000", false, HXFR_TRANSPORT_TCP, "::1", 5000, 0, "tcp:[::1]:5000"},
    {"tcp:[::1]", false, HXFR_TRANSPORT_TCP, "::1", 15937, 0, "tcp:[::1]:15937"},
    {"tcp:[fe80::1%eth0]:1", false, HXFR_TRANSPORT_TCP, "fe80::1%eth0", 1, 0,
     "tcp:[fe80::1%eth0]:1"},
    {"tcp:[::ffff:127.0.0.1]:9", false, HXFR_TRANSPORT_TCP, "::ffff:127.0.0.1", 9, 0,
     "tcp:[::ffff:127.0.0.1]:9"},
    {"tcp:host-1.example_x.org:00080", false, HXFR_TRANSPORT_TCP, "host-1.example_x.org", 80, 0,
     "tcp:host-1.example_x.org:80"},
    {"tcp:", true, HXFR_TRANSPORT_TCP, "127.0.0.1", 15937, 0, "tcp:127.0.0.1:15937"},
    {"tcp::0", true, HXFR_TRANSPORT_TCP, "127.0.0.1", 0, 0, "tcp:127.0.0.1:0"},
    {"tcp::8080", true, HXFR_TRANSPORT_TCP, "127.0.0.1", 8080, 0, "tcp:127.0.0.1:8080"},
    {"tcp:0.0.0.0:0", true, HXFR_TRANSPORT_TCP, "0.0.0.0", 0, 0, "tcp:0.0.0.0:0"},
    {"tcp:[::]", true, HXFR_TRANSPORT_TCP, "::", 15937, 0, "tcp:[::]:15937"},
    {"vsock:", false, HXFR_TRANSPORT_VSOCK, NULL, 5000, 2, "vsock:2:5000"},
    {"vsock:3:1234", false, HXFR_TRANSPORT_VSOCK, NULL, 1234, 3, "vsock:3:1234"},
    {"vsock:3", false, HXFR_TRANSPORT_VSOCK, NULL, 5000, 3, "vsock:3:5000"},
    {"vsock::77", false, HXFR_TRANSPORT_VSOCK, NULL, 77, 2, "vsock:2:77"},
    {"vsock:4294967294:1", false, HXFR_TRANSPORT_VSOCK, NULL, 1, 4294967294u, "vsock:4294967294:1"},
    {"vsock:", true, HXFR_TRANSPORT_VSOCK, NULL, 5000, 0xFFFFFFFFu, "vsock:5000"},
    {"vsock:6000", true, HXFR_TRANSPORT_VSOCK, NULL, 6000, 0xFFFFFFFFu, "vsock:6000"},
    {"vsock:0", true, HXFR_TRANSPORT_VSOCK, NULL, 0, 0xFFFFFFFFu, "vsock:0"},
    {"vsock:2:6000", true, HXFR_TRANSPORT_VSOCK, NULL, 6000, 2, "vsock:2:6000"},
    {"vsock::6000", true, HXFR_TRANSPORT_VSOCK, NULL, 6000, 0xFFFFFFFFu, "vsock:6000"},
};

struct bad {
    const char *s;
    bool listen;
    int err;
};

static const struct bad bads[] = {
    {"", false, -EINVAL},
    {"foo", false, -EINVAL},
    {":x", false, -EINVAL},
    {"ftp:x", false, -EPROTONOSUPPORT},
    {"http://x/y", false, -EPROTONOSUPPORT},
    {"UNIX:/x", false, -EPROTONOSUPPORT},
    {"unix:", false, -EINVAL},
    {"serial:", false, -EINVAL},
    {"tcp:", false, -EINVAL},
    {"tcp::80", false, -EINVAL},
    {"tcp:host:", false, -EINVAL},
    {"tcp:host:", true, -EINVAL},
    {"tcp:host:65536", false, -EINVAL},
    {"tcp:host:123456", false, -EINVAL},
    {"tcp:host:-1", false, -EINVAL},
    {"tcp:host:+80", false, -EINVAL},
    {"tcp:host: 80", false, -EINVAL},
    {"tcp:host:0", false, -EINVAL},
    {"tcp:host:80x", false, -EINVAL},
    {"tcp:::1:80", false, -EINVAL},
    {"tcp:a:b:c", true, -EINVAL},
    {"tcp:[::1", false, -EINVAL},
    {"tcp:[::1]x", false, -EINVAL},
    {"tcp:[::1]:", false, -EINVAL},
    {"tcp:[]:80", true, -EINVAL},
    {"tcp:[nothex]:1", false, -EINVAL},
    {"tcp:[127.0.0.1]:1", false, -EINVAL},
    {"tcp:[fe80::1%]:1", false, -EINVAL},
    {"tcp:[fe80::1%a b]:1", false, -EINVAL},
    {"tcp:8080", false, -EINVAL},
    {"tcp:8080", true, -EINVAL},
    {"tcp:ho st:1", false, -EINVAL},
    {"tcp:host\n:1", false, -EINVAL},
    {"vsock:1:2:3", false, -EINVAL},
    {"vsock:x", false, -EINVAL},
    {"vsock:x", true, -EINVAL},
    {"vsock:4294967295:1", false, -EINVAL},
    {"vsock:4294967296:1", true, -EINVAL},
    {"vsock:99999999999:1", true, -EINVAL},
    {"vsock:2:0", false, -EINVAL},
    {"vsock:2:70000", false, -EINVAL},
    {"vsock:70000", true, -EINVAL},
    {"vsock:-1", true, -EINVAL},
};

TEST(uri_good_inputs)
{
    for (size_t i = 0; i < sizeof(goods) / sizeof(goods[0]); i++) {
        const struct good *g = &goods[i];
        struct hxfr_uri u, again;
        char buf[512];

        memset(&u, 0xAA, sizeof(u));
        int r = hxfr__uri_parse(g->s, g->listen, &u);
        if (r != 0) {
            FAIL("parse(\"%s\", %d) = %d", g->s, g->listen, r);
        }
        CHECK_EQ(u.kind, g->kind);
        if (g->kind == HXFR_TRANSPORT_UNIX || g->kind == HXFR_TRANSPORT_SERIAL) {
            CHECK(strcmp(u.path, g->text) == 0);
        } else if (g->kind == HXFR_TRANSPORT_TCP) {
            if (strcmp(u.host, g->text) != 0) {
                FAIL("\"%s\": host \"%s\", want \"%s\"", g->s, u.host, g->text);
            }
            CHECK_EQ(u.port, g->port);
        } else {
            CHECK_EQ(u.cid, g->cid);
            CHECK_EQ(u.port, g->port);
        }

        r = hxfr__uri_format(&u, buf, sizeof(buf));
        if (r < 0 || strcmp(buf, g->canon) != 0) {
            FAIL("format of \"%s\" = %d \"%s\", want \"%s\"", g->s, r, buf, g->canon);
        }
        CHECK_EQ(r, strlen(g->canon));

        /* The canonical form parses back to the same endpoint. */
        memset(&again, 0x55, sizeof(again));
        CHECK_EQ(hxfr__uri_parse(buf, g->listen, &again), 0);
        CHECK_MEM(&again, &u, sizeof(u));
    }
}

TEST(uri_bad_inputs)
{
    for (size_t i = 0; i < sizeof(bads) / sizeof(bads[0]); i++) {
        const struct bad *b = &bads[i];
        struct hxfr_uri u, before;

        memset(&u, 0x5A, sizeof(u));
        before = u;
        int r = hxfr__uri_parse(b->s, b->listen, &u);
        if (r != b->err) {
            FAIL("parse(\"%s\", %d) = %d, want %d", b->s, b->listen, r, b->err);
        }
        /* A failed parse leaves the output alone. */
        CHECK_MEM(&u, &before, sizeof(u));
    }
    struct hxfr_uri u;
    CHECK_EQ(hxfr__uri_parse(NULL, false, &u), -EINVAL);
    CHECK_EQ(hxfr__uri_parse("unix:/x", false, NULL), -EINVAL);
}

TEST(uri_path_length)
{
    char s[300];
    struct hxfr_uri u;

    /* 107 characters fit sun_path with its NUL; 108 do not. */
    strcpy(s, "unix:/");
    memset(s + 6, 'p', 106);
    s[6 + 106] = '\0';
    CHECK_EQ(hxfr__uri_parse(s, true, &u), 0);
    CHECK_EQ(strlen(u.path), 107);
    strcat(s, "q");
    CHECK_EQ(hxfr__uri_parse(s, true, &u), -ENAMETOOLONG);
    CHECK_EQ(hxfr__uri_parse(s + 5, true, &u), -ENAMETOOLONG);

    strcpy(s, "serial:/");
    memset(s + 8, 'p', 200);
    s[208] = '\0';
    CHECK_EQ(hxfr__uri_parse(s, false, &u), -ENAMETOOLONG);

    strcpy(s, "tcp:");
    memset(s + 4, 'h', 256);
    strcpy(s + 4 + 256, ":80");
    CHECK_EQ(hxfr__uri_parse(s, false, &u), -ENAMETOOLONG);
    /* 255 characters still fit host[256]. */
    strcpy(s + 4 + 255, ":80");
    CHECK_EQ(hxfr__uri_parse(s, false, &u), 0);
    CHECK_EQ(strlen(u.host), 255);
}

TEST(uri_format_limits)
{
    struct hxfr_uri u;
    char buf[64];

    CHECK_EQ(hxfr__uri_parse("tcp:localhost:80", false, &u), 0);
    /* "tcp:localhost:80" is 16 characters: 17 bytes needed. */
    memset(buf, 'x', sizeof(buf));
    CHECK_EQ(hxfr__uri_format(&u, buf, 16), -ENOSPC);
    CHECK_EQ(buf[0], '\0');
    CHECK_EQ(hxfr__uri_format(&u, buf, 17), 16);
    CHECK(strcmp(buf, "tcp:localhost:80") == 0);
    CHECK_EQ(hxfr__uri_format(&u, buf, 0), -ENOSPC);
    CHECK_EQ(hxfr__uri_format(NULL, buf, sizeof(buf)), -ENOSPC);

    memset(&u, 0, sizeof(u));
    u.kind = (enum hxfr_transport_kind)99;
    CHECK_EQ(hxfr__uri_format(&u, buf, sizeof(buf)), -EINVAL);

    /* A path without its NUL is cut at the array, never read beyond. */
    memset(&u, 0, sizeof(u));
    u.kind = HXFR_TRANSPORT_UNIX;
    memset(u.path, 'a', sizeof(u.path));
    char big[256];
    CHECK_EQ(hxfr__uri_format(&u, big, sizeof(big)), 5 + (int)sizeof(u.path));
}

TEST(default_socket_path)
{
    char buf[HXFR_URI_PATH_MAX], want[HXFR_URI_PATH_MAX];

    CHECK_EQ(setenv("XDG_RUNTIME_DIR", "/run/user/1234", 1), 0);
    CHECK_EQ(hxfr__default_socket_path(buf, sizeof(buf)), 0);
    CHECK(strcmp(buf, "/run/user/1234/hxfr/hxfr.sock") == 0);

    /* Too small a buffer, or too long a folder for sun_path. */
    CHECK_EQ(hxfr__default_socket_path(buf, 10), -ENAMETOOLONG);
    char longdir[200] = "/";
    memset(longdir + 1, 'd', 150);
    longdir[151] = '\0';
    CHECK_EQ(setenv("XDG_RUNTIME_DIR", longdir, 1), 0);
    CHECK_EQ(hxfr__default_socket_path(buf, sizeof(buf)), -ENAMETOOLONG);

    /* Unset or relative: root gets /run/hxfr, everyone else /tmp. */
    if (geteuid() == 0) {
        strcpy(want, "/run/hxfr/hxfr.sock");
    } else {
        snprintf(want, sizeof(want), "/tmp/hxfr-%u/hxfr.sock", (unsigned)getuid());
    }
    CHECK_EQ(setenv("XDG_RUNTIME_DIR", "relative/dir", 1), 0);
    CHECK_EQ(hxfr__default_socket_path(buf, sizeof(buf)), 0);
    CHECK(strcmp(buf, want) == 0);
    CHECK_EQ(unsetenv("XDG_RUNTIME_DIR"), 0);
    CHECK_EQ(hxfr__default_socket_path(buf, sizeof(buf)), 0);
    CHECK(strcmp(buf, want) == 0);

    /* The default path is itself a valid listen URI. */
    struct hxfr_uri u;
    CHECK_EQ(hxfr__uri_parse(buf, true, &u), 0);
    CHECK_EQ(u.kind, HXFR_TRANSPORT_UNIX);
}
