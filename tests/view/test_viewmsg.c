/* Unit tests for hxfr-view's message formats: the frame header, the JSON
 * text messages, the browser-input parser, routes and names, request checks, the unit-list
 * to Annex B rewrite and the per-browser queue. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <hxfr/proto.h>

#include "keymap.h"
#include "route.h"
#include "sps.h"
#include "stats.h"
#include "viewmsg.h"

static int parse_str(const char *s, bool binary, struct hxfr_view_input *in)
{
    return hxfr__view_input_parse((const uint8_t *)s, strlen(s), binary, in);
}

static struct hxfr_view_au *make_au(size_t size, bool key)
{
    struct hxfr_view_au *au = hxfr__view_au_new(16, size);
    if (au) {
        au->keyframe = key;
        memset(au->msg, 0xAB, size);
    }
    return au;
}

#include "harness.h"

TEST(frame_header_layout)
{
    struct hxfr_view_frame_header h = {
        .type = HXFR_VIEW_TYPE_FRAME,
        .flags = HXFR_VIEW_FLAG_KEYFRAME | HXFR_VIEW_FLAG_NEW_STREAM,
        .seq = 0x01020304,
        .scanout_id = 0x0506,
        .pts = -2,
        .recv_us = 0x1122334455667788,
        .capture_us = 0x0102030405060708,
        .encoded_us = 9,
    };
    uint8_t b[HXFR_VIEW_FRAME_HEADER_SIZE];
    hxfr__view_frame_header_encode(b, &h);
    static const uint8_t want[48] = {
        0x48, 0x58, 0x46, 0x56, 1,    1,    0x03, 0x00, 0x04, 0x03, 0x02, 0x01,
        0x06, 0x05, 48,   0,    0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, 0x08, 0x07, 0x06, 0x05,
        0x04, 0x03, 0x02, 0x01, 9,    0,    0,    0,    0,    0,    0,    0,
    };
    CHECK_MEM(b, want, sizeof(want));

    struct hxfr_view_frame_header d;
    CHECK_EQ(hxfr__view_frame_header_decode(b, sizeof(b), &d), 48);
    CHECK_EQ(d.capture_us, h.capture_us);
    CHECK_EQ(d.encoded_us, 9);
    CHECK_EQ(d.flags, h.flags);
    CHECK_EQ(d.seq, h.seq);
    CHECK_EQ(d.scanout_id, h.scanout_id);
    CHECK_EQ(d.pts, -2);
    CHECK_EQ(d.recv_us, h.recv_us);
}

TEST(frame_header_decode_rejects)
{
    uint8_t b[HXFR_VIEW_FRAME_HEADER_SIZE + 8];
    struct hxfr_view_frame_header h = {.type = 1}, d;
    hxfr__view_frame_header_encode(b, &h);
    CHECK_EQ(hxfr__view_frame_header_decode(b, 31, &d), -EBADMSG);
    b[0] ^= 1;
    CHECK_EQ(hxfr__view_frame_header_decode(b, 32, &d), -EBADMSG);
    b[0] ^= 1;
    b[4] = 2;
    CHECK_EQ(hxfr__view_frame_header_decode(b, 32, &d), -EPROTONOSUPPORT);
    b[4] = 1;
    b[14] = 31; /* header_size below 32 */
    CHECK_EQ(hxfr__view_frame_header_decode(b, 32, &d), -EBADMSG);
    b[14] = 40; /* a 40-byte header: no capture time */
    CHECK_EQ(hxfr__view_frame_header_decode(b, 40, &d), 40);
    CHECK_EQ(d.capture_us, 0);
    CHECK_EQ(hxfr__view_frame_header_decode(b, 39, &d), -EBADMSG);
    b[14] = 56; /* a longer header from a later version is skipped */
    CHECK_EQ(hxfr__view_frame_header_decode(b, 56, &d), 56);
}

TEST(input_valid)
{
    struct hxfr_view_input in;
    CHECK_EQ(parse_str("keyframe", false, &in), 0);
    CHECK_EQ(in.type, HXFR_VIEW_INPUT_KEYFRAME);
    CHECK_EQ(parse_str("ping 0", false, &in), 0);
    CHECK_EQ(in.type, HXFR_VIEW_INPUT_PING);
    CHECK_EQ(in.token, 0);
    CHECK_EQ(parse_str("ping 1234567890123456", false, &in), 0);
    CHECK_EQ(in.token, 1234567890123456ull);
    CHECK_EQ(parse_str("ping 9007199254740991", false, &in), 0);
    CHECK_EQ(in.token, 9007199254740991ull);
}

TEST(input_events)
{
    struct hxfr_view_input in;
    CHECK_EQ(parse_str("kd KeyA", false, &in), 0);
    CHECK(in.type == HXFR_VIEW_INPUT_KEY && in.down && in.key == hxfr__view_key_by_code("KeyA", 4));
    CHECK(hxfr__view_input_is_input(in.type));
    CHECK_EQ(parse_str("ku ShiftRight", false, &in), 0);
    CHECK(in.type == HXFR_VIEW_INPUT_KEY && !in.down && in.key >= 0);
    /* A code the table does not have is fine (ignored by the gateway). */
    CHECK_EQ(parse_str("kd Unidentified", false, &in), 0);
    CHECK_EQ(in.key, -1);
    CHECK_EQ(parse_str("mm 0 65535", false, &in), 0);
    CHECK(in.type == HXFR_VIEW_INPUT_MOVE && in.x == 0 && in.y == 65535);
    CHECK_EQ(parse_str("bd 2 10 20", false, &in), 0);
    CHECK(in.type == HXFR_VIEW_INPUT_BUTTON && in.down && in.button == 2 && in.x == 10 &&
          in.y == 20);
    CHECK_EQ(parse_str("bu 4 1 1", false, &in), 0);
    CHECK(in.type == HXFR_VIEW_INPUT_BUTTON && !in.down && in.button == 4);
    CHECK_EQ(parse_str("wh -10 10 5 6", false, &in), 0);
    CHECK(in.type == HXFR_VIEW_INPUT_WHEEL && in.dx == -10 && in.dy == 10 && in.x == 5 &&
          in.y == 6);
    CHECK_EQ(parse_str("wh 0 -1 0 0", false, &in), 0);
    CHECK_EQ(in.dy, -1);
    CHECK_EQ(parse_str("release", false, &in), 0);
    CHECK(in.type == HXFR_VIEW_INPUT_RELEASE && hxfr__view_input_is_input(in.type));
    CHECK_EQ(parse_str("keyframe", false, &in), 0);
    CHECK(!hxfr__view_input_is_input(in.type));
    /* The longest valid message fits the limit. */
    CHECK_EQ(parse_str("kd ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef", false, &in), 0);
    CHECK_EQ(parse_str("wh -10 -10 65535 65535", false, &in), 0);
}

TEST(input_malformed)
{
    struct hxfr_view_input in;
    static const char *bad[] = {
        "",
        "k",
        "keyfram",
        "keyframe ",
        " keyframe",
        "KEYFRAME",
        "keyframe\n",
        "keyframes",
        "ping",
        "ping ",
        "ping x",
        "ping -1",
        "ping +1",
        "ping 01",
        "ping 1 ",
        "ping  1",
        "ping 9007199254740992",
        "ping 12345678901234567",
        "ping 1\n",
        "ping\t1",
        "pong 1",
        "kd",
        "kd ",
        "kd Key A",
        "kd Key-A",
        "kd ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefg",
        "kx KeyA",
        "mm 1",
        "mm 1 2 3",
        "mm 65536 0",
        "mm -1 0",
        "mm 01 0",
        "mm 1  2",
        "bd 5 0 0",
        "bd -0 0 0",
        "bd 0 0",
        "wh 11 0 0 0",
        "wh 0 -11 0 0",
        "wh -0 0 0 0",
        "wh 0 0 0",
        "release all",
        "Release",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (parse_str(bad[i], false, &in) != -EINVAL) {
            FAIL("accepted '%s'", bad[i]);
        }
    }
    /* Embedded NUL. */
    CHECK_EQ(hxfr__view_input_parse((const uint8_t *)"keyframe\0", 9, false, &in), -EINVAL);
    /* Binary messages are never valid, whatever they hold. */
    CHECK_EQ(parse_str("keyframe", true, &in), -EPROTO);
    /* Size is checked first. */
    uint8_t big[HXFR_VIEW_INPUT_MAX + 1];
    memset(big, 'a', sizeof(big));
    CHECK_EQ(hxfr__view_input_parse(big, sizeof(big), false, &in), -EMSGSIZE);
    CHECK_EQ(hxfr__view_input_parse(big, sizeof(big), true, &in), -EMSGSIZE);
    CHECK_EQ(hxfr__view_input_parse(big, HXFR_VIEW_INPUT_MAX, false, &in), -EINVAL);
}

TEST(json_escape)
{
    char out[64];
    CHECK_EQ(hxfr__view_json_escape(out, sizeof(out), "a\"b\\c", 5), 7);
    CHECK(strcmp(out, "a\\\"b\\\\c") == 0);
    CHECK_EQ(hxfr__view_json_escape(out, sizeof(out), "\n\x01\xff", 3), 18);
    CHECK(strcmp(out, "\\u000a\\u0001\\u00ff") == 0);
    /* Never splits an escape when out of room. */
    CHECK_EQ(hxfr__view_json_escape(out, 8, "ab\n", 3), 2);
    CHECK(strcmp(out, "ab") == 0);
    CHECK_EQ(hxfr__view_json_escape(out, 1, "abc", 3), 0);
    CHECK_EQ(out[0], '\0');
}

TEST(text_messages)
{
    char out[HXFR_VIEW_TEXT_MAX];
    CHECK(hxfr__view_status_format(out, sizeof(out), 3, "unavailable", "no \"scanout\"\n", 400) >
          0);
    CHECK(strcmp(out, "{\"type\":\"status\",\"scanout\":3,\"state\":\"unavailable\","
                      "\"message\":\"no \\\"scanout\\\"\\u000a\",\"retry_ms\":400}") == 0);
    CHECK(hxfr__view_pong_format(out, sizeof(out), 42, -5) > 0);
    CHECK(strcmp(out, "{\"type\":\"pong\",\"token\":42,\"time_us\":-5}") == 0);
    struct hxfr_view_hello h = {.vm = "vm-1", .scanout = 65535, .input = true, .time_us = 7};
    CHECK(hxfr__view_hello_format(out, sizeof(out), &h) > 0);
    CHECK(strstr(out, "\"vm\":\"vm-1\",\"scanout\":65535,\"input\":true,") != NULL);
    CHECK(strstr(out, "\"time_us\":7}") != NULL);
    CHECK_EQ(hxfr__view_pong_format(out, 10, 42, 5), -ENOSPC);
    /* A long message is cut, never overflows, and stays one JSON object. */
    char longmsg[2000];
    memset(longmsg, '"', sizeof(longmsg) - 1);
    longmsg[sizeof(longmsg) - 1] = '\0';
    int n = hxfr__view_status_format(out, sizeof(out), 0, "disconnected", longmsg, 0);
    CHECK(n > 0 && (size_t)n < sizeof(out));
    CHECK_EQ(out[n - 1], '}');
}

TEST(routes)
{
    static const struct {
        const char *path;
        enum hxfr_view_route_kind kind;
        const char *vm;
        uint16_t id;
    } good[] = {
        {"/", HXFR_VIEW_ROUTE_INDEX, "", 0},
        {"/index.json", HXFR_VIEW_ROUTE_INDEX_JSON, "", 0},
        {"/viewer.js", HXFR_VIEW_ROUTE_SCRIPT, "", 0},
        {"/scanout/0", HXFR_VIEW_ROUTE_PAGE, "", 0},
        {"/scanout/65535", HXFR_VIEW_ROUTE_PAGE, "", 65535},
        {"/ws/7", HXFR_VIEW_ROUTE_WS, "", 7},
        {"/scanout/3/info", HXFR_VIEW_ROUTE_INFO, "", 3},
        {"/scanout/3/screenshot.png", HXFR_VIEW_ROUTE_SCREENSHOT, "", 3},
        {"/scanout/3/input", HXFR_VIEW_ROUTE_INPUT, "", 3},
        {"/vm1/scanout/2", HXFR_VIEW_ROUTE_PAGE, "vm1", 2},
        {"/vm1/ws/2", HXFR_VIEW_ROUTE_WS, "vm1", 2},
        {"/a-b_C9/scanout/1/info", HXFR_VIEW_ROUTE_INFO, "a-b_C9", 1},
        {"/abcdefghijabcdefghijabcdefghij12/scanout/0", HXFR_VIEW_ROUTE_PAGE,
         "abcdefghijabcdefghijabcdefghij12", 0},
    };
    static const char *const bad[] = {
        "",
        "x",
        "//",
        "/scanout",
        "/scanout/",
        "/scanout/00",
        "/scanout/65536",
        "/scanout/-1",
        "/scanout/1/",
        "/scanout/1/info/",
        "/scanout/1/other",
        "/ws/",
        "/ws/1/info",
        "/vm1",
        "/vm1/",
        "/vm1/scanout",
        "/vm1/index.json",
        "/vm1/viewer.js",
        "/-vm/scanout/0",
        "/v.m/scanout/0",
        "/scanout/scanout/0",
        "/ws/ws/0",
        "/vm1/vm2/scanout/0",
        "/abcdefghijabcdefghijabcdefghij123/scanout/0",
        "/../scanout/0",
        "/scanout/1?x",
        "/index.json/",
        "/viewer.html",
    };
    struct hxfr_view_route rt;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        if (hxfr__view_route_parse(good[i].path, strlen(good[i].path), &rt) != 0 ||
            rt.kind != good[i].kind || strcmp(rt.vm, good[i].vm) != 0 || rt.scanout != good[i].id) {
            FAIL("route %s", good[i].path);
        }
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (hxfr__view_route_parse(bad[i], strlen(bad[i]), &rt) != -EINVAL ||
            rt.kind != HXFR_VIEW_ROUTE_NONE || rt.vm[0]) {
            FAIL("route %s accepted", bad[i]);
        }
    }
    /* Only len bytes count. */
    CHECK_EQ(hxfr__view_route_parse("/ws/12", 5, &rt), 0);
    CHECK_EQ(rt.scanout, 1);
}

TEST(names_and_refs)
{
    CHECK(hxfr__view_name_valid("vm1", 3));
    CHECK(hxfr__view_name_valid("A_b-9", 5));
    CHECK(!hxfr__view_name_valid("", 0));
    CHECK(!hxfr__view_name_valid("-x", 2));
    CHECK(!hxfr__view_name_valid("a b", 3));
    CHECK(!hxfr__view_name_valid("a/b", 3));
    CHECK(!hxfr__view_name_valid("scanout", 7));
    CHECK(!hxfr__view_name_valid("ws", 2));
    CHECK(!hxfr__view_name_valid("abcdefghijabcdefghijabcdefghij123", 33));

    char name[HXFR_VIEW_NAME_MAX + 1];
    const char *uri;
    CHECK_EQ(hxfr__view_split_named("vm1=unix:/run/a.sock", name, sizeof(name), &uri), 0);
    CHECK(strcmp(name, "vm1") == 0 && strcmp(uri, "unix:/run/a.sock") == 0);
    /* No valid name before the '=': all of it is the URI. */
    CHECK_EQ(hxfr__view_split_named("unix:/tmp/a=b", name, sizeof(name), &uri), 0);
    CHECK(name[0] == '\0' && strcmp(uri, "unix:/tmp/a=b") == 0);
    CHECK_EQ(hxfr__view_split_named("/tmp/x=y", name, sizeof(name), &uri), 0);
    CHECK(name[0] == '\0' && strcmp(uri, "/tmp/x=y") == 0);
    CHECK_EQ(hxfr__view_split_named("tcp:h:1", name, sizeof(name), &uri), 0);
    CHECK(name[0] == '\0');
    CHECK_EQ(hxfr__view_split_named("vm1=", name, sizeof(name), &uri), -EINVAL);
    CHECK_EQ(hxfr__view_split_named("", name, sizeof(name), &uri), -EINVAL);

    uint16_t id;
    CHECK_EQ(hxfr__view_parse_scanout_ref("3", 1, name, sizeof(name), &id), 0);
    CHECK(name[0] == '\0' && id == 3);
    CHECK_EQ(hxfr__view_parse_scanout_ref("vm2:65535", 9, name, sizeof(name), &id), 0);
    CHECK(strcmp(name, "vm2") == 0 && id == 65535);
    CHECK_EQ(hxfr__view_parse_scanout_ref("vm2:", 4, name, sizeof(name), &id), -EINVAL);
    CHECK_EQ(hxfr__view_parse_scanout_ref(":1", 2, name, sizeof(name), &id), -EINVAL);
    CHECK_EQ(hxfr__view_parse_scanout_ref("v m:1", 5, name, sizeof(name), &id), -EINVAL);
    CHECK_EQ(hxfr__view_parse_scanout_ref("vm:01", 5, name, sizeof(name), &id), -EINVAL);
    CHECK_EQ(hxfr__view_parse_scanout_ref("a:b:1", 5, name, sizeof(name), &id), -EINVAL);
}

TEST(path_scanout)
{
    uint16_t id = 9;
    CHECK_EQ(hxfr__view_path_scanout("/ws/0", 5, "/ws/", &id), 0);
    CHECK_EQ(id, 0);
    CHECK_EQ(hxfr__view_path_scanout("/ws/65535", 9, "/ws/", &id), 0);
    CHECK_EQ(id, 65535);
    static const char *bad[] = {"/ws/",   "/ws/65536",  "/ws/00",  "/ws/01",     "/ws/1/",
                                "/ws/1a", "/ws/-1",     "/ws/ 1",  "/ws/999999", "/wss/1",
                                "/ws1",   "/scanout/1", "/ws/../1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (hxfr__view_path_scanout(bad[i], strlen(bad[i]), "/ws/", &id) != -EINVAL) {
            FAIL("accepted '%s'", bad[i]);
        }
    }
    /* The length is what counts, not a NUL. */
    CHECK_EQ(hxfr__view_path_scanout("/ws/12", 5, "/ws/", &id), 0);
    CHECK_EQ(id, 1);
}

TEST(request_checks)
{
    /* Loopback: Host must be a loopback name with our port. */
    CHECK_EQ(hxfr__view_check_request("127.0.0.1:8080", NULL, true, 8080), 0);
    CHECK_EQ(hxfr__view_check_request("localhost:8080", NULL, true, 8080), 0);
    CHECK_EQ(hxfr__view_check_request("LOCALHOST:8080", NULL, true, 8080), 0);
    CHECK_EQ(hxfr__view_check_request("[::1]:8080", NULL, true, 8080), 0);
    CHECK_EQ(hxfr__view_check_request("127.1.2.3:8080", NULL, true, 8080), 0);
    CHECK_EQ(hxfr__view_check_request("localhost", NULL, true, 80), 0);
    CHECK_EQ(hxfr__view_check_request(NULL, NULL, true, 8080), 0);
    static const char *bad_hosts[] = {
        "evil.com:8080",
        "127.0.0.1:8081",
        "localhost",
        "127.0.0.1",
        "127.0.0.1.evil.com:8080",
        "localhost.evil.com:8080",
        "127.0.0.256:8080",
        "127.0.0:8080",
        "[::2]:8080",
        "127.0.0.1:08080",
        "127.0.0.1:",
        "127.0.0.1:80800",
        "",
        "\x01",
        "127..0.1:8080",
    };
    for (size_t i = 0; i < sizeof(bad_hosts) / sizeof(bad_hosts[0]); i++) {
        if (hxfr__view_check_request(bad_hosts[i], NULL, true, 8080) != -EPERM) {
            FAIL("accepted host '%s'", bad_hosts[i]);
        }
    }
    /* Not loopback: any Host. */
    CHECK_EQ(hxfr__view_check_request("viewer.example:8080", NULL, false, 8080), 0);
    /* Origin must match Host exactly. */
    CHECK_EQ(hxfr__view_check_request("127.0.0.1:8080", "http://127.0.0.1:8080", true, 8080), 0);
    CHECK_EQ(hxfr__view_check_request("127.0.0.1:8080", "https://127.0.0.1:8080", true, 8080), 0);
    CHECK_EQ(hxfr__view_check_request("a.example:80", "http://a.example:80", false, 80), 0);
    CHECK_EQ(hxfr__view_check_request("127.0.0.1:8080", "http://evil.com", true, 8080), -EPERM);
    CHECK_EQ(hxfr__view_check_request("127.0.0.1:8080", "null", true, 8080), -EPERM);
    CHECK_EQ(hxfr__view_check_request("127.0.0.1:8080", "http://localhost:8080", true, 8080),
             -EPERM);
    CHECK_EQ(hxfr__view_check_request(NULL, "http://127.0.0.1:8080", true, 8080), -EPERM);
    CHECK_EQ(hxfr__view_check_request("a.example:80", "http://b.example:80", false, 80), -EPERM);
}

/* Builds a unit list from (size, bytes) pairs. */
static size_t put_unit(uint8_t *p, const char *bytes, size_t n)
{
    hxfr_put_u32(p, (uint32_t)n);
    memcpy(p + 4, bytes, n);
    return 4 + n;
}

TEST(units_to_annexb)
{
    uint8_t buf[128];
    size_t len = 0;
    len += put_unit(buf + len, "\x00\x00\x00\x01\x67\x42", 6);
    len += put_unit(buf + len, "\x00\x00\x01\x68", 4);
    len += put_unit(buf + len, "\x65\x88\x84", 3); /* no start code */
    long n = hxfr__view_units_to_annexb(buf, len, 3);
    static const uint8_t want[] = {0,    0, 0, 1, 0x67, 0x42, 0,    0,   1,
                                   0x68, 0, 0, 0, 1,    0x65, 0x88, 0x84};
    CHECK_EQ(n, (long)sizeof(want));
    CHECK_MEM(buf, want, sizeof(want));

    /* Every unit lacking a start code still fits (4 bytes per size). */
    len = 0;
    for (int i = 0; i < 10; i++) {
        len += put_unit(buf + len, "\x41\x9a", 2);
    }
    n = hxfr__view_units_to_annexb(buf, len, 10);
    CHECK_EQ(n, 60);
    for (int i = 0; i < 10; i++) {
        CHECK_MEM(buf + i * 6, "\x00\x00\x00\x01\x41\x9a", 6);
    }
}

TEST(units_malformed_untouched)
{
    uint8_t buf[64], copy[64];
    size_t len = put_unit(buf, "\x00\x00\x01\x65", 4);
    memcpy(copy, buf, sizeof(buf));
    CHECK_EQ(hxfr__view_units_to_annexb(buf, len, 2), -EBADMSG);
    CHECK_EQ(hxfr__view_units_to_annexb(buf, len, 0), -EBADMSG);
    CHECK_EQ(hxfr__view_units_to_annexb(buf, len - 1, 1), -EBADMSG);
    hxfr_put_u32(buf, 0xFFFFFFFF);
    CHECK_EQ(hxfr__view_units_to_annexb(buf, len, 1), -EBADMSG);
    hxfr_put_u32(buf, 4);
    CHECK_MEM(buf, copy, len);
    CHECK_EQ(hxfr__view_units_to_annexb(buf, 0, 0), 0);
}

TEST(au_refcount)
{
    struct hxfr_view_au *au = hxfr__view_au_new(16, 100);
    CHECK(au != NULL);
    CHECK(au->msg == au->storage + 16);
    CHECK_EQ(au->refs, 1);
    hxfr__view_au_ref(au);
    CHECK_EQ(au->refs, 2);
    hxfr__view_au_unref(au);
    hxfr__view_au_unref(au);
    hxfr__view_au_unref(NULL);
    errno = 0;
    CHECK(hxfr__view_au_new(16, SIZE_MAX - 8) == NULL);
    CHECK_EQ(errno, EOVERFLOW);
}

TEST(queue_starts_at_keyframe)
{
    struct hxfr_view_queue q;
    hxfr__view_queue_init(&q, 4, 1 << 20);
    struct hxfr_view_au *p = make_au(10, false), *k = make_au(10, true);
    CHECK_EQ(hxfr__view_queue_offer(&q, p), HXFR_VIEW_OFFER_SKIPPED);
    CHECK_EQ(q.count, 0);
    CHECK_EQ(hxfr__view_queue_offer(&q, k), HXFR_VIEW_OFFER_QUEUED);
    CHECK_EQ(hxfr__view_queue_offer(&q, p), HXFR_VIEW_OFFER_QUEUED);
    CHECK_EQ(q.count, 2);
    CHECK_EQ(q.bytes, 20);
    CHECK(hxfr__view_queue_peek(&q) == k);
    CHECK_EQ(k->refs, 2);
    hxfr__view_queue_pop(&q);
    CHECK_EQ(k->refs, 1);
    CHECK(hxfr__view_queue_peek(&q) == p);
    hxfr__view_queue_finish(&q);
    CHECK_EQ(p->refs, 1);
    hxfr__view_au_unref(p);
    hxfr__view_au_unref(k);
}

TEST(queue_overflow_drops_to_keyframe)
{
    struct hxfr_view_queue q;
    hxfr__view_queue_init(&q, 3, 1 << 20);
    struct hxfr_view_au *p = make_au(10, false), *k = make_au(10, true);
    CHECK_EQ(hxfr__view_queue_offer(&q, k), HXFR_VIEW_OFFER_QUEUED);
    CHECK_EQ(hxfr__view_queue_offer(&q, p), HXFR_VIEW_OFFER_QUEUED);
    CHECK_EQ(hxfr__view_queue_offer(&q, p), HXFR_VIEW_OFFER_QUEUED);
    /* Full: the fourth P-frame overflows, everything is dropped. */
    CHECK_EQ(hxfr__view_queue_offer(&q, p), HXFR_VIEW_OFFER_OVERFLOW);
    CHECK_EQ(q.count, 0);
    CHECK_EQ(q.bytes, 0);
    CHECK(q.want_key);
    CHECK_EQ(q.dropped, 4);
    CHECK_EQ(hxfr__view_queue_offer(&q, p), HXFR_VIEW_OFFER_SKIPPED);
    CHECK_EQ(hxfr__view_queue_offer(&q, k), HXFR_VIEW_OFFER_QUEUED);
    CHECK(!q.want_key);
    /* A keyframe that finds the queue full replaces it and is queued. */
    CHECK_EQ(hxfr__view_queue_offer(&q, p), HXFR_VIEW_OFFER_QUEUED);
    CHECK_EQ(hxfr__view_queue_offer(&q, p), HXFR_VIEW_OFFER_QUEUED);
    CHECK_EQ(hxfr__view_queue_offer(&q, k), HXFR_VIEW_OFFER_QUEUED);
    CHECK_EQ(q.count, 1);
    CHECK(hxfr__view_queue_peek(&q) == k);
    hxfr__view_queue_finish(&q);
    CHECK_EQ(p->refs, 1);
    CHECK_EQ(k->refs, 1);
    hxfr__view_au_unref(p);
    hxfr__view_au_unref(k);
}

TEST(queue_byte_limit)
{
    struct hxfr_view_queue q;
    hxfr__view_queue_init(&q, 64, 100);
    struct hxfr_view_au *p = make_au(40, false), *k = make_au(40, true), *big = make_au(500, true);
    CHECK_EQ(hxfr__view_queue_offer(&q, k), HXFR_VIEW_OFFER_QUEUED);
    CHECK_EQ(hxfr__view_queue_offer(&q, p), HXFR_VIEW_OFFER_QUEUED);
    CHECK_EQ(hxfr__view_queue_offer(&q, p), HXFR_VIEW_OFFER_OVERFLOW);
    /* A keyframe above the byte limit still goes out on an empty queue. */
    CHECK_EQ(hxfr__view_queue_offer(&q, big), HXFR_VIEW_OFFER_QUEUED);
    CHECK_EQ(q.count, 1);
    CHECK_EQ(hxfr__view_queue_offer(&q, p), HXFR_VIEW_OFFER_OVERFLOW);
    hxfr__view_queue_resync(&q);
    CHECK(q.want_key);
    CHECK_EQ(q.count, 0);
    hxfr__view_queue_finish(&q);
    hxfr__view_au_unref(p);
    hxfr__view_au_unref(k);
    hxfr__view_au_unref(big);
}

TEST(queue_wraps)
{
    struct hxfr_view_queue q;
    hxfr__view_queue_init(&q, 1000, SIZE_MAX);
    CHECK_EQ(q.max_frames, HXFR_VIEW_QUEUE_CAP);
    struct hxfr_view_au *k = make_au(1, true);
    /* Many more pushes than the ring has slots, in and out. */
    for (unsigned i = 0; i < 5 * HXFR_VIEW_QUEUE_CAP; i++) {
        CHECK_EQ(hxfr__view_queue_offer(&q, k), HXFR_VIEW_OFFER_QUEUED);
        if (i % 3 != 0) {
            hxfr__view_queue_pop(&q);
        }
        CHECK(q.count <= HXFR_VIEW_QUEUE_CAP);
    }
    hxfr__view_queue_finish(&q);
    CHECK_EQ(k->refs, 1);
    hxfr__view_au_unref(k);
}

/* An SPS written bit by bit (emulation prevention added as the encoder
 * would), so sizes and cropping can be chosen. */
struct bw {
    uint8_t b[64];
    size_t bits;
};

static void put_bit(struct bw *w, unsigned v)
{
    if (v) {
        w->b[w->bits / 8] |= (uint8_t)(0x80 >> (w->bits % 8));
    }
    w->bits++;
}

static void put_bits(struct bw *w, uint32_t v, unsigned n)
{
    while (n--) {
        put_bit(w, (v >> n) & 1);
    }
}

static void put_ue(struct bw *w, uint32_t v)
{
    unsigned n = 0;
    while (((uint64_t)v + 1) >> (n + 1)) {
        n++;
    }
    put_bits(w, 0, n);
    put_bits(w, v + 1, n + 1);
}

static void put_se(struct bw *w, int32_t v)
{
    put_ue(w, v > 0 ? 2 * (uint32_t)v - 1 : 2 * (uint32_t)(-(int64_t)v));
}

/* Annex B: start code, NAL header 0x67, the SPS with emulation prevention.
 * Profile 100 with ndeltas > 0 carries a scaling matrix whose first list
 * has these delta_scale values (the others absent). */
static size_t make_sps_scaled(uint8_t *out, unsigned profile, uint32_t mbs_w, uint32_t mbs_h,
                              uint32_t crop_r, uint32_t crop_b, const int32_t *deltas,
                              size_t ndeltas)
{
    struct bw w;
    memset(&w, 0, sizeof(w));
    put_bits(&w, profile, 8);
    put_bits(&w, 0, 8);
    put_bits(&w, 31, 8);
    put_ue(&w, 0);
    if (profile == 100) {
        put_ue(&w, 1); /* 4:2:0 */
        put_ue(&w, 0);
        put_ue(&w, 0);
        put_bit(&w, 0);
        put_bit(&w, ndeltas > 0); /* seq_scaling_matrix_present_flag */
        for (unsigned i = 0; ndeltas > 0 && i < 8; i++) {
            put_bit(&w, i == 0); /* seq_scaling_list_present_flag[i] */
            for (size_t j = 0; i == 0 && j < ndeltas; j++) {
                put_se(&w, deltas[j]);
            }
        }
    }
    put_ue(&w, 0); /* log2_max_frame_num - 4 */
    put_ue(&w, 2); /* poc type 2 */
    put_ue(&w, 1);
    put_bit(&w, 0);
    put_ue(&w, mbs_w - 1);
    put_ue(&w, mbs_h - 1);
    put_bit(&w, 1); /* frame_mbs_only */
    put_bit(&w, 1);
    put_bit(&w, crop_r || crop_b);
    if (crop_r || crop_b) {
        put_ue(&w, 0);
        put_ue(&w, crop_r);
        put_ue(&w, 0);
        put_ue(&w, crop_b);
    }
    put_bit(&w, 0); /* no VUI */
    put_bit(&w, 1); /* rbsp stop bit */
    size_t n = 0, zeros = 0;
    static const uint8_t head[5] = {0, 0, 0, 1, 0x67};
    memcpy(out, head, sizeof(head));
    n = sizeof(head);
    for (size_t i = 0; i < (w.bits + 7) / 8; i++) {
        if (zeros >= 2 && w.b[i] <= 3) {
            out[n++] = 3;
            zeros = 0;
        }
        zeros = w.b[i] == 0 ? zeros + 1 : 0;
        out[n++] = w.b[i];
    }
    return n;
}

static size_t make_sps(uint8_t *out, unsigned profile, uint32_t mbs_w, uint32_t mbs_h,
                       uint32_t crop_r, uint32_t crop_b)
{
    return make_sps_scaled(out, profile, mbs_w, mbs_h, crop_r, crop_b, NULL, 0);
}

TEST(sps_size)
{
    uint8_t au[128];
    uint32_t w, h;
    /* 1920x1080: 120x68 macroblocks, 8 rows cropped (4 in chroma units). */
    size_t n = make_sps(au, 100, 120, 68, 0, 4);
    CHECK_EQ(hxfr__view_sps_size(au, n, &w, &h), 0);
    CHECK(w == 1920 && h == 1080);
    n = make_sps(au, 66, 20, 15, 0, 0);
    CHECK_EQ(hxfr__view_sps_size(au, n, &w, &h), 0);
    CHECK(w == 320 && h == 240);
    /* Odd sizes through cropping (1 chroma unit = 2 pixels). */
    n = make_sps(au, 66, 1, 1, 7, 7);
    CHECK_EQ(hxfr__view_sps_size(au, n, &w, &h), 0);
    CHECK(w == 2 && h == 2);
    /* Cropping everything away, or truncated SPSs, are refused. */
    n = make_sps(au, 66, 1, 1, 8, 0);
    CHECK_EQ(hxfr__view_sps_size(au, n, &w, &h), -EBADMSG);
    n = make_sps(au, 100, 120, 68, 0, 4);
    for (size_t cut = 5; cut < n - 1; cut++) {
        int r = hxfr__view_sps_size(au, cut, &w, &h);
        if (r == 0 && (w != 1920 || h != 1080)) {
            FAIL("cut at %zu gave %ux%u", cut, w, h);
        }
    }
    /* After other NAL units; no SPS at all. */
    uint8_t two[160] = {0, 0, 1, 0x09, 0xf0};
    size_t m = make_sps(au, 66, 20, 15, 0, 0);
    memcpy(two + 5, au, m);
    CHECK_EQ(hxfr__view_sps_size(two, 5 + m, &w, &h), 0);
    CHECK(w == 320 && h == 240);
    CHECK_EQ(hxfr__view_sps_size(two, 5, &w, &h), -ENOENT);
    CHECK_EQ(hxfr__view_sps_size(two, 0, &w, &h), -ENOENT);
}

TEST(sps_size_scaling_matrix)
{
    uint8_t au[128];
    uint32_t w, h;
    /* A scaling list read up to its end (8 -> 13 -> 5 -> 0: the rest repeat
     * the last value and are not coded), then the size. */
    static const int32_t ok[] = {5, -8, -5};
    size_t n = make_sps_scaled(au, 100, 120, 68, 0, 4, ok, 3);
    CHECK_EQ(hxfr__view_sps_size(au, n, &w, &h), 0);
    CHECK(w == 1920 && h == 1080);
    static const int32_t edges[] = {127, -128, -7};
    n = make_sps_scaled(au, 100, 120, 68, 0, 4, edges, 3);
    CHECK_EQ(hxfr__view_sps_size(au, n, &w, &h), 0);
    CHECK(w == 1920 && h == 1080);
    /* delta_scale outside -128..127 is refused, even where the list would
     * end well modulo 256 (8+128 -> 136 -> 0), and as far as se(v) reaches
     * (a signed overflow in the reader once: fuzz_view_api). */
    static const int32_t bad[][2] = {{128, -136}, {-129, 121}, {INT32_MAX, 0}, {-INT32_MAX, 0}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        n = make_sps_scaled(au, 100, 120, 68, 0, 4, bad[i], 2);
        CHECK_EQ(hxfr__view_sps_size(au, n, &w, &h), -EBADMSG);
    }
}

TEST(window_rates)
{
    static struct hxfr_view_window win;
    struct hxfr_view_rates r;
    memset(&win, 0, sizeof(win));
    hxfr__view_window_rates(&win, 1000000, 1000000, &r);
    CHECK(r.frames == 0 && r.fps == 0 && r.latency_p50_ms == 0);
    /* 30 frames of 1000 bytes over the last second, latencies 1..30 ms. */
    for (int i = 0; i < 30; i++) {
        hxfr__view_window_add(&win, 10000000 + i * 33333, 1000, (i + 1) * 1000);
    }
    hxfr__view_window_add(&win, 10990000, 500, -1);
    hxfr__view_window_rates(&win, 11000000, 1000000, &r);
    CHECK_EQ(r.frames, 31);
    CHECK_EQ(r.latencies, 30);
    CHECK(r.fps > 30.9 && r.fps < 31.1);
    CHECK(r.kbps > 243.9 && r.kbps < 244.1);
    CHECK(r.latency_p50_ms >= 15 && r.latency_p50_ms <= 16);
    CHECK(r.latency_p99_ms == 30);
    /* Older samples fall out of the span; the ring keeps the newest. */
    hxfr__view_window_rates(&win, 11500000, 1000000, &r);
    CHECK(r.frames < 31);
    for (int i = 0; i < 2000; i++) {
        hxfr__view_window_add(&win, 20000000 + i, 1, 5000);
    }
    hxfr__view_window_rates(&win, 20002000, 1000000, &r);
    CHECK_EQ(r.frames, HXFR_VIEW_WINDOW_SAMPLES);
    CHECK(r.latency_p99_ms == 5);
}
