/* libFuzzer target: libhxfr-host serving a hostile client.
 *
 * The input is the byte stream a client sends. One server (one worker,
 * small limits, the fake encoder of fake_encoder.c) lives for the whole
 * run; each input gets a fresh connection (a socketpair given to
 * hxfr_host_add_client), is written whole, then the client side shuts its
 * write half and reads until the server closes. Invariants: the server
 * closes the connection within a bounded number of dispatch rounds, what
 * it sent parses as server-to-client HXFR messages with valid unit lists
 * (the last one may be cut short when the client itself was cut), and nothing crashes or leaks (the
 * fake encoder reads every row of every plane it is given, so ASan checks plane pointers and
 * strides). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <hxfr/host.h>

#include "fuzz.h"

#define OUT_CAP (4u << 20)

static struct hxfr_host *host;
static uint8_t *out;

/* Checks that out[0..len) is a sequence of complete, valid messages a
 * server may send. */
static void check_output(const uint8_t *buf, size_t len)
{
    struct hxfr_parser p;
    static uint8_t body[OUT_CAP];
    uint32_t body_len = 0, nal_count = 0;
    bool in_response = false;

    hxfr_parser_init(&p, 0);
    size_t off = 0;
    while (off < len) {
        struct hxfr_parse_result res;
        int r = hxfr_parser_feed(&p, buf + off, len - off, &res);
        REQUIRE(r >= 0);
        off += (size_t)r;
        if (res.event == HXFR_PARSE_MESSAGE) {
            uint8_t t = res.msg.hdr.type;
            REQUIRE(t == HXFR_MSG_PONG || t == HXFR_MSG_CONFIG_RESP || t == HXFR_MSG_HELLO_RESP ||
                    t == HXFR_MSG_FRAME_RESPONSE || t == HXFR_MSG_SCANOUT_RESP ||
                    t == HXFR_MSG_SUBSCRIBE_RESP || t == HXFR_MSG_ERROR);
            if (t == HXFR_MSG_SCANOUT_RESP) {
                REQUIRE(res.msg.u.scanout_resp.success <= 1);
            }
            if (t == HXFR_MSG_SUBSCRIBE_RESP) {
                REQUIRE(res.msg.u.subscribe_resp.success <= 1);
            }
            if (t == HXFR_MSG_ERROR) {
                REQUIRE(res.msg.u.error.code < 0);
                REQUIRE(res.msg.u.error.message[0] != '\0');
            }
            if (t == HXFR_MSG_FRAME_RESPONSE) {
                REQUIRE(res.body_size > 0);
                in_response = true;
                body_len = 0;
                nal_count = res.msg.u.frame_response.nal_count;
            }
        } else if (res.event == HXFR_PARSE_BODY) {
            REQUIRE(in_response);
            memcpy(body + body_len, res.chunk, res.chunk_size);
            body_len += (uint32_t)res.chunk_size;
            if (res.body_remaining == 0) {
                REQUIRE(hxfr_units_validate(body, body_len, nal_count) == 0);
                in_response = false;
            }
        } else if (r == 0) {
            break;
        }
    }
    /* The last message may be cut short (a client cut for its output loses
     * the rest of its queue); everything before it was checked above. */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536) {
        return 0;
    }
    if (!host) {
        struct hxfr_host_config cfg;
        hxfr_host_config_init(&cfg);
        cfg.workers = 1;
        cfg.window = 3;
        cfg.max_width = 256;
        cfg.max_height = 256;
        cfg.max_sessions = 4;
        cfg.max_output = 1u << 20;
        host = hxfr_host_new(&cfg);
        out = malloc(OUT_CAP);
        REQUIRE(host && out);
    }
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        return 0;
    }
    int big = 1 << 20;
    setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
    setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
    setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
    REQUIRE(hxfr_host_add_client(host, sv[0], "fuzz") == 0);

    size_t off = 0, got = 0;
    struct hxfr_host_stats st;
    int rounds = 0;
    bool shut = false;
    for (;; rounds++) {
        REQUIRE(rounds < 5000);
        if (off < size) {
            ssize_t n = send(sv[1], data + off, size - off, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (n > 0) {
                off += (size_t)n;
            } else if (n < 0 && errno != EAGAIN) {
                off = size; /* the server cut us: stop sending */
            }
        }
        if (off == size && !shut) {
            shutdown(sv[1], SHUT_WR);
            shut = true;
        }
        REQUIRE(hxfr_host_dispatch(host, 2) == 0);
        for (;;) {
            ssize_t n = recv(sv[1], out + got, OUT_CAP - got, MSG_DONTWAIT);
            if (n <= 0) {
                break;
            }
            got += (size_t)n;
            REQUIRE(got < OUT_CAP);
        }
        hxfr_host_get_stats(host, &st);
        if (st.clients == 0) {
            break;
        }
    }
    /* Whatever is left in the socket after the server closed. */
    for (;;) {
        ssize_t n = recv(sv[1], out + got, OUT_CAP - got, MSG_DONTWAIT);
        if (n <= 0) {
            break;
        }
        got += (size_t)n;
        REQUIRE(got < OUT_CAP);
    }
    close(sv[1]);
    check_output(out, got);
    return 0;
}
