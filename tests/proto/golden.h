/* Golden byte vectors for every HXFR message type, written by hand in hex
 * from the DESIGN.md / docs/protocol.md tables (not produced by the
 * encoder), each with the decoded fields it must correspond to. Shared by
 * test_message.c and test_parser.c. */
#ifndef HXFR_TESTS_PROTO_GOLDEN_H
#define HXFR_TESTS_PROTO_GOLDEN_H

#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <hxfr/proto.h>

struct golden {
    const char *name;
    /* Header, fixed part and body. Whitespace is ignored. Bytes up to
     * total_size that the string does not give are zero (long string
     * fields); a golden with a body spells every byte out. */
    const char *hex;
    size_t total_size;
    uint32_t body_size;
    void (*fill)(struct hxfr_msg *m); /* the fields the bytes encode */
};

static void fill_ping(struct hxfr_msg *m)
{
    m->hdr = (struct hxfr_header){HXFR_MAGIC, HXFR_MSG_PING, 0, 0x0102, 0};
}

static void fill_pong(struct hxfr_msg *m)
{
    m->hdr = (struct hxfr_header){HXFR_MAGIC, HXFR_MSG_PONG, 0, 0, 0};
}

static void fill_keyframe_req(struct hxfr_msg *m)
{
    m->hdr = (struct hxfr_header){HXFR_MAGIC, HXFR_MSG_KEYFRAME_REQ, 0, 7, 0};
}

static void fill_frame_request(struct hxfr_msg *m)
{
    m->hdr = (struct hxfr_header){HXFR_MAGIC, HXFR_MSG_FRAME_REQUEST, 0, 1, 44};
    m->u.frame_request.resource_id = 0x11223344;
    m->u.frame_request.width = 1920;
    m->u.frame_request.height = 1080;
    m->u.frame_request.format = HXFR_FORMAT_ARGB8888;
    m->u.frame_request.stride = 7680;
    m->u.frame_request.pts = 0x0102030405060708;
    m->u.frame_request.duration = 16666667;
    m->u.frame_request.force_keyframe = 1;
}

static void fill_frame_request_pixels(struct hxfr_msg *m)
{
    m->hdr = (struct hxfr_header){HXFR_MAGIC, HXFR_MSG_FRAME_REQUEST, HXFR_FLAG_PIXEL_DATA, 0, 52};
    m->u.frame_request.resource_id = 0;
    m->u.frame_request.width = 2;
    m->u.frame_request.height = 1;
    m->u.frame_request.format = HXFR_FORMAT_XBGR8888;
    m->u.frame_request.stride = 8;
    m->u.frame_request.pts = -1;
    m->u.frame_request.duration = 0;
}

static void fill_frame_request_shm(struct hxfr_msg *m)
{
    m->hdr = (struct hxfr_header){HXFR_MAGIC, HXFR_MSG_FRAME_REQUEST, HXFR_FLAG_SHM, 9, 44};
    m->u.frame_request.resource_id = 3;
    m->u.frame_request.width = 640;
    m->u.frame_request.height = 480;
    m->u.frame_request.format = HXFR_FORMAT_NV12;
    m->u.frame_request.stride = 640;
    m->u.frame_request.pts = 33333333;
    m->u.frame_request.duration = 33333333;
}

static void fill_frame_response(struct hxfr_msg *m)
{
    m->hdr = (struct hxfr_header){HXFR_MAGIC, HXFR_MSG_FRAME_RESPONSE, 0, 1, 41};
    m->u.frame_response.pts = 1000;
    m->u.frame_response.dts = -2;
    m->u.frame_response.is_keyframe = 1;
    m->u.frame_response.nal_count = 2;
}

static void fill_frame_response_empty(struct hxfr_msg *m)
{
    m->hdr = (struct hxfr_header){HXFR_MAGIC, HXFR_MSG_FRAME_RESPONSE, 0, 0x8001, 24};
    m->u.frame_response.pts = 5;
    m->u.frame_response.dts = 5;
}

static void fill_config_req(struct hxfr_msg *m)
{
    m->hdr = (struct hxfr_header){HXFR_MAGIC, HXFR_MSG_CONFIG_REQ, 0, 1, 28};
    m->u.config_req.width = 1280;
    m->u.config_req.height = 720;
    m->u.config_req.bitrate = 4000000;
    m->u.config_req.framerate_num = 60;
    m->u.config_req.framerate_den = 1;
    m->u.config_req.profile = 100;
    m->u.config_req.level = 31;
    m->u.config_req.realtime = 1;
    m->u.config_req.gop = 120;
}

static void fill_config_req_v1(struct hxfr_msg *m)
{
    m->hdr = (struct hxfr_header){HXFR_MAGIC, HXFR_MSG_CONFIG_REQ, 0, 2, 28};
    m->u.config_req.width = 640;
    m->u.config_req.height = 480;
    m->u.config_req.profile = 66;
}

static void fill_config_resp(struct hxfr_msg *m)
{
    m->hdr = (struct hxfr_header){HXFR_MAGIC, HXFR_MSG_CONFIG_RESP, 0, 1, 60};
    m->u.config_resp.width = 1280;
    m->u.config_resp.height = 720;
    m->u.config_resp.bitrate = 4000000;
    m->u.config_resp.framerate_num = 30;
    m->u.config_resp.framerate_den = 1;
    m->u.config_resp.profile = 66;
    m->u.config_resp.level = 40;
    m->u.config_resp.realtime = 0;
    m->u.config_resp.gop = 60;
    strcpy(m->u.config_resp.encoder, "libx264");
}

static void fill_enable_scanout(struct hxfr_msg *m)
{
    m->hdr = (struct hxfr_header){HXFR_MAGIC, HXFR_MSG_ENABLE_SCANOUT, 0, 1, 16};
    m->u.enable_scanout.scanout_id = 1;
    m->u.enable_scanout.width = 1024;
    m->u.enable_scanout.height = 768;
    m->u.enable_scanout.refresh_hz = 60;
}

static void fill_disable_scanout(struct hxfr_msg *m)
{
    m->hdr = (struct hxfr_header){HXFR_MAGIC, HXFR_MSG_DISABLE_SCANOUT, 0, 1, 4};
    m->u.disable_scanout.scanout_id = 1;
}

static void fill_scanout_resp(struct hxfr_msg *m)
{
    m->hdr = (struct hxfr_header){HXFR_MAGIC, HXFR_MSG_SCANOUT_RESP, 0, 1, 72};
    m->u.scanout_resp.scanout_id = 1;
    m->u.scanout_resp.success = 1;
    strcpy(m->u.scanout_resp.connector, "Virtual-1");
}

static void fill_subscribe(struct hxfr_msg *m)
{
    m->hdr = (struct hxfr_header){HXFR_MAGIC, HXFR_MSG_SUBSCRIBE, 0, 2, 4};
    m->u.subscribe.scanout_id = 2;
}

static void fill_subscribe_resp(struct hxfr_msg *m)
{
    m->hdr = (struct hxfr_header){HXFR_MAGIC, HXFR_MSG_SUBSCRIBE_RESP, 0, 2, 8};
    m->u.subscribe_resp.scanout_id = 2;
    m->u.subscribe_resp.success = 1;
}

static void fill_hello(struct hxfr_msg *m)
{
    m->hdr = (struct hxfr_header){HXFR_MAGIC, HXFR_MSG_HELLO, 0, 0, 16};
    m->u.hello.version = 1;
    m->u.hello.caps = 0x1f;
    m->u.hello.max_width = 4096;
    m->u.hello.max_height = 2160;
}

static void fill_hello_resp(struct hxfr_msg *m)
{
    m->hdr = (struct hxfr_header){HXFR_MAGIC, HXFR_MSG_HELLO_RESP, 0, 0, 16};
    m->u.hello.version = 1;
    m->u.hello.caps = HXFR_CAP_CONFIG_GOP | HXFR_CAP_SCANOUT;
    m->u.hello.max_width = 1920;
    m->u.hello.max_height = 1080;
}

static void fill_error(struct hxfr_msg *m)
{
    m->hdr = (struct hxfr_header){HXFR_MAGIC, HXFR_MSG_ERROR, 0, 3, 260};
    m->u.error.code = HXFR_STATUS_NOT_CONFIGURED;
    strcpy(m->u.error.message, "not configured");
}

static void fill_shm_attach_fd(struct hxfr_msg *m)
{
    m->hdr = (struct hxfr_header){HXFR_MAGIC, HXFR_MSG_SHM_ATTACH, HXFR_FLAG_SHM_FD, 2, 72};
    m->u.shm_attach.offset = 0;
}

static void fill_shm_attach_region(struct hxfr_msg *m)
{
    m->hdr = (struct hxfr_header){HXFR_MAGIC, HXFR_MSG_SHM_ATTACH, 0, 0, 72};
    m->u.shm_attach.offset = 0x100000;
    strcpy(m->u.shm_attach.name, "vm0");
}

static void fill_shm_attach_resp(struct hxfr_msg *m)
{
    m->hdr = (struct hxfr_header){HXFR_MAGIC, HXFR_MSG_SHM_ATTACH_RESP, 0, 2, 16};
    m->u.shm_attach_resp.slot_count = 4;
    m->u.shm_attach_resp.slot_size = 0x7e9000;
}

static void fill_slot_release(struct hxfr_msg *m)
{
    m->hdr = (struct hxfr_header){HXFR_MAGIC, HXFR_MSG_SLOT_RELEASE, 0, 2, 4};
    m->u.slot_release.slot = 3;
}

static const struct golden goldens[] = {
    {"PING", "48 58 46 52  10 00 02 01  00 00 00 00", 12, 0, fill_ping},
    {"PONG", "48 58 46 52  11 00 00 00  00 00 00 00", 12, 0, fill_pong},
    {"KEYFRAME_REQ", "48 58 46 52  03 00 07 00  00 00 00 00", 12, 0, fill_keyframe_req},
    {"FRAME_REQUEST",
     "48 58 46 52  01 00 01 00  2c 00 00 00"
     "44 33 22 11  80 07 00 00  38 04 00 00  41 52 32 34  00 1e 00 00"
     "08 07 06 05 04 03 02 01  2b 50 fe 00 00 00 00 00"
     "01  00 00 00 00 00 00 00",
     56, 0, fill_frame_request},
    {"FRAME_REQUEST+PIXEL_DATA",
     "48 58 46 52  01 01 00 00  34 00 00 00"
     "00 00 00 00  02 00 00 00  01 00 00 00  58 42 32 34  08 00 00 00"
     "ff ff ff ff ff ff ff ff  00 00 00 00 00 00 00 00"
     "00  00 00 00 00 00 00 00"
     "10 20 30 ff  40 50 60 ff",
     64, 8, fill_frame_request_pixels},
    {"FRAME_REQUEST+SHM",
     "48 58 46 52  01 02 09 00  2c 00 00 00"
     "03 00 00 00  80 02 00 00  e0 01 00 00  4e 56 31 32  80 02 00 00"
     "55 a0 fc 01 00 00 00 00  55 a0 fc 01 00 00 00 00"
     "00  00 00 00 00 00 00 00",
     56, 0, fill_frame_request_shm},
    {"FRAME_RESPONSE",
     "48 58 46 52  02 00 01 00  29 00 00 00"
     "e8 03 00 00 00 00 00 00  fe ff ff ff ff ff ff ff"
     "01  00 00 00  02 00 00 00"
     "05 00 00 00  00 00 00 01 67"
     "04 00 00 00  00 00 01 68",
     53, 17, fill_frame_response},
    {"FRAME_RESPONSE (no units)",
     "48 58 46 52  02 00 01 80  18 00 00 00"
     "05 00 00 00 00 00 00 00  05 00 00 00 00 00 00 00"
     "00  00 00 00  00 00 00 00",
     36, 0, fill_frame_response_empty},
    {"CONFIG_REQ (gop extension)",
     "48 58 46 52  04 00 01 00  1c 00 00 00"
     "00 05 00 00  d0 02 00 00  00 09 3d 00  3c 00 00 00  01 00 00 00"
     "64  1f  01  78 00 00 00  00",
     40, 0, fill_config_req},
    {"CONFIG_REQ (v1)",
     "48 58 46 52  04 00 02 00  1c 00 00 00"
     "80 02 00 00  e0 01 00 00  00 00 00 00  00 00 00 00  00 00 00 00"
     "42  00  00  00 00 00 00 00",
     40, 0, fill_config_req_v1},
    {"CONFIG_RESP",
     "48 58 46 52  05 00 01 00  3c 00 00 00"
     "00 05 00 00  d0 02 00 00  00 09 3d 00  1e 00 00 00  01 00 00 00"
     "42  28  00  00  3c 00 00 00"
     "6c 69 62 78 32 36 34",
     72, 0, fill_config_resp},
    {"ENABLE_SCANOUT",
     "48 58 46 52  20 00 01 00  10 00 00 00"
     "01 00 00 00  00 04 00 00  00 03 00 00  3c 00 00 00",
     28, 0, fill_enable_scanout},
    {"DISABLE_SCANOUT", "48 58 46 52  21 00 01 00  04 00 00 00  01 00 00 00", 16, 0,
     fill_disable_scanout},
    {"SCANOUT_RESP",
     "48 58 46 52  22 00 01 00  48 00 00 00"
     "01 00 00 00  01 00 00 00  56 69 72 74 75 61 6c 2d 31",
     84, 0, fill_scanout_resp},
    {"SUBSCRIBE", "48 58 46 52  30 00 02 00  04 00 00 00  02 00 00 00", 16, 0, fill_subscribe},
    {"SUBSCRIBE_RESP", "48 58 46 52  31 00 02 00  08 00 00 00  02 00 00 00  01 00 00 00", 20, 0,
     fill_subscribe_resp},
    {"HELLO",
     "48 58 46 52  40 00 00 00  10 00 00 00"
     "01 00 00 00  1f 00 00 00  00 10 00 00  70 08 00 00",
     28, 0, fill_hello},
    {"HELLO_RESP",
     "48 58 46 52  41 00 00 00  10 00 00 00"
     "01 00 00 00  09 00 00 00  80 07 00 00  38 04 00 00",
     28, 0, fill_hello_resp},
    {"SHM_ATTACH+SHM_FD",
     "48 58 46 52  50 01 02 00  48 00 00 00"
     "00 00 00 00 00 00 00 00",
     84, 0, fill_shm_attach_fd},
    {"SHM_ATTACH (region)",
     "48 58 46 52  50 00 00 00  48 00 00 00"
     "00 00 10 00 00 00 00 00  76 6d 30",
     84, 0, fill_shm_attach_region},
    {"SHM_ATTACH_RESP",
     "48 58 46 52  51 00 02 00  10 00 00 00"
     "04 00 00 00  00 00 00 00  00 90 7e 00 00 00 00 00",
     28, 0, fill_shm_attach_resp},
    {"SLOT_RELEASE", "48 58 46 52  52 00 02 00  04 00 00 00  03 00 00 00", 16, 0,
     fill_slot_release},
    {"ERROR",
     "48 58 46 52  ff 00 03 00  04 01 00 00"
     "fa ff ff ff  6e 6f 74 20 63 6f 6e 66 69 67 75 72 65 64",
     272, 0, fill_error},
};

#define GOLDEN_COUNT (sizeof(goldens) / sizeof(goldens[0]))

/* Parses hex pairs (whitespace ignored) into out and zero-fills it up to
 * total; returns total, or 0 if the string is malformed or too long. */
static size_t golden_bytes(const struct golden *g, uint8_t *out, size_t cap)
{
    size_t n = 0;
    const char *s = g->hex;
    if (g->total_size > cap) {
        return 0;
    }
    while (*s) {
        if (isspace((unsigned char)*s)) {
            s++;
            continue;
        }
        if (!isxdigit((unsigned char)s[0]) || !isxdigit((unsigned char)s[1]) ||
            n >= g->total_size) {
            return 0;
        }
        char pair[3] = {s[0], s[1], 0};
        out[n++] = (uint8_t)strtoul(pair, NULL, 16);
        s += 2;
    }
    memset(out + n, 0, g->total_size - n);
    return g->total_size;
}

static void golden_msg(const struct golden *g, struct hxfr_msg *m)
{
    memset(m, 0, sizeof(*m));
    g->fill(m);
}

/* Field-by-field comparison (struct padding is never compared). */
static bool msg_equal(const struct hxfr_msg *a, const struct hxfr_msg *b)
{
    if (a->hdr.magic != b->hdr.magic || a->hdr.type != b->hdr.type ||
        a->hdr.flags != b->hdr.flags || a->hdr.session_id != b->hdr.session_id ||
        a->hdr.payload_size != b->hdr.payload_size) {
        return false;
    }
    switch (a->hdr.type) {
    case HXFR_MSG_FRAME_REQUEST: {
        const struct hxfr_frame_request *x = &a->u.frame_request, *y = &b->u.frame_request;
        return x->resource_id == y->resource_id && x->width == y->width && x->height == y->height &&
               x->format == y->format && x->stride == y->stride && x->pts == y->pts &&
               x->duration == y->duration && x->force_keyframe == y->force_keyframe &&
               memcmp(x->reserved, y->reserved, sizeof(x->reserved)) == 0;
    }
    case HXFR_MSG_FRAME_RESPONSE: {
        const struct hxfr_frame_response *x = &a->u.frame_response, *y = &b->u.frame_response;
        return x->pts == y->pts && x->dts == y->dts && x->is_keyframe == y->is_keyframe &&
               memcmp(x->reserved, y->reserved, sizeof(x->reserved)) == 0 &&
               x->nal_count == y->nal_count;
    }
    case HXFR_MSG_CONFIG_REQ: {
        const struct hxfr_config_req *x = &a->u.config_req, *y = &b->u.config_req;
        return x->width == y->width && x->height == y->height && x->bitrate == y->bitrate &&
               x->framerate_num == y->framerate_num && x->framerate_den == y->framerate_den &&
               x->profile == y->profile && x->level == y->level && x->realtime == y->realtime &&
               x->gop == y->gop && x->reserved == y->reserved;
    }
    case HXFR_MSG_CONFIG_RESP: {
        const struct hxfr_config_resp *x = &a->u.config_resp, *y = &b->u.config_resp;
        return x->width == y->width && x->height == y->height && x->bitrate == y->bitrate &&
               x->framerate_num == y->framerate_num && x->framerate_den == y->framerate_den &&
               x->profile == y->profile && x->level == y->level && x->realtime == y->realtime &&
               x->reserved == y->reserved && x->gop == y->gop &&
               strcmp(x->encoder, y->encoder) == 0;
    }
    case HXFR_MSG_ENABLE_SCANOUT: {
        const struct hxfr_enable_scanout *x = &a->u.enable_scanout, *y = &b->u.enable_scanout;
        return x->scanout_id == y->scanout_id && x->width == y->width && x->height == y->height &&
               x->refresh_hz == y->refresh_hz;
    }
    case HXFR_MSG_DISABLE_SCANOUT:
        return a->u.disable_scanout.scanout_id == b->u.disable_scanout.scanout_id;
    case HXFR_MSG_SCANOUT_RESP:
        return a->u.scanout_resp.scanout_id == b->u.scanout_resp.scanout_id &&
               a->u.scanout_resp.success == b->u.scanout_resp.success &&
               strcmp(a->u.scanout_resp.connector, b->u.scanout_resp.connector) == 0;
    case HXFR_MSG_SUBSCRIBE:
        return a->u.subscribe.scanout_id == b->u.subscribe.scanout_id;
    case HXFR_MSG_SUBSCRIBE_RESP:
        return a->u.subscribe_resp.scanout_id == b->u.subscribe_resp.scanout_id &&
               a->u.subscribe_resp.success == b->u.subscribe_resp.success;
    case HXFR_MSG_HELLO:
    case HXFR_MSG_HELLO_RESP:
        return a->u.hello.version == b->u.hello.version && a->u.hello.caps == b->u.hello.caps &&
               a->u.hello.max_width == b->u.hello.max_width &&
               a->u.hello.max_height == b->u.hello.max_height;
    case HXFR_MSG_SHM_ATTACH:
        return a->u.shm_attach.offset == b->u.shm_attach.offset &&
               strcmp(a->u.shm_attach.name, b->u.shm_attach.name) == 0;
    case HXFR_MSG_SHM_ATTACH_RESP:
        return a->u.shm_attach_resp.slot_count == b->u.shm_attach_resp.slot_count &&
               a->u.shm_attach_resp.reserved == b->u.shm_attach_resp.reserved &&
               a->u.shm_attach_resp.slot_size == b->u.shm_attach_resp.slot_size;
    case HXFR_MSG_SLOT_RELEASE:
        return a->u.slot_release.slot == b->u.slot_release.slot;
    case HXFR_MSG_ERROR:
        return a->u.error.code == b->u.error.code &&
               strcmp(a->u.error.message, b->u.error.message) == 0;
    default:
        return true;
    }
}

#endif
