/* libFuzzer target: libhxfr-client reading a hostile host.
 *
 * Input layout: byte 0 picks the window (1..8) and whether the client is
 * subscribed-looking (bit 7 is ignored), byte 1 the number of frames
 * submitted before the host "speaks", the rest is what the host sends. The
 * client sits on one end of a socketpair; the input is written to the
 * other end, which is then closed, and the client dispatches until the
 * connection ends. Invariants: every submitted frame gets exactly one
 * result, in order, with its own user pointer; the client ends
 * disconnected with nothing in flight; nothing crashes or leaks. */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <hxfr/client.h>

#include "fuzz.h"

struct seen {
    unsigned results;
    uintptr_t next_user;
};

static void on_frame(void *opaque, const struct hxfr_client_result *r)
{
    struct seen *s = opaque;
    /* FIFO: results come back in submission order with their pointers. */
    REQUIRE((uintptr_t)r->user == s->next_user);
    REQUIRE(r->seq == s->results);
    REQUIRE(r->data != NULL);
    if (r->status == 0 && r->size > 0) {
        /* Touch every byte: ASan checks the buffer really is that long. */
        volatile uint8_t x = 0;
        for (size_t i = 0; i < r->size; i++) {
            x ^= r->data[i];
        }
        (void)x;
    }
    REQUIRE(r->remote_message != NULL);
    s->results++;
    s->next_user++;
}

static uint8_t pixels[16 * 16 * 4];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2 || size > 65536) {
        return 0;
    }
    unsigned window = 1 + (data[0] & 7);
    unsigned frames = data[1] % (window + 1);
    data += 2;
    size -= 2;

    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        return 0;
    }
    /* The host side must swallow our frames and hold all of its own
     * output without anyone reading: make its buffers big enough. */
    int big = 1 << 20;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
    setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
    setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
    setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));

    struct seen seen = {.next_user = 1};
    struct hxfr_client_options o;
    hxfr_client_options_init(&o);
    o.window = window;
    o.hello = false;
    o.max_body = 1u << 16;
    o.io_timeout_ms = 1000;
    o.on_frame = on_frame;
    o.user_data = &seen;
    struct hxfr_client *c = hxfr_client_new(&o);
    REQUIRE(c != NULL);
    REQUIRE(hxfr_client_connect_fd(c, sv[0]) == 0);
    for (unsigned i = 0; i < frames; i++) {
        struct hxfr_client_frame f = {
            .format = HXFR_FORMAT_ARGB8888,
            .width = 16,
            .height = 16,
            .planes = {pixels},
            .pts = (int64_t)i,
            .user = (void *)(uintptr_t)(i + 1),
        };
        REQUIRE(hxfr_client_submit(c, &f, 0) == 0);
    }
    size_t off = 0;
    while (off < size) {
        ssize_t n = write(sv[1], data + off, size - off);
        if (n <= 0) {
            break;
        }
        off += (size_t)n;
    }
    close(sv[1]);

    /* The host has said all it will: dispatch until the end of the stream. */
    for (int guard = 0; guard < 100000 && hxfr_client_connected(c); guard++) {
        int r = hxfr_client_dispatch(c, 1000);
        if (r < 0) {
            break;
        }
        if (r == 0 && hxfr_client_in_flight(c) == 0) {
            /* Nothing in flight: read once more to reach EOF. */
            r = hxfr_client_ping(c, 1000, NULL);
            if (r < 0) {
                break;
            }
        }
    }
    REQUIRE(!hxfr_client_connected(c));
    REQUIRE(hxfr_client_in_flight(c) == 0);
    REQUIRE(seen.results == frames);
    hxfr_client_destroy(c);
    return 0;
}
