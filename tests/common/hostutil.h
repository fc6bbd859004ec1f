/* Helpers shared by the tests that speak HXFR to hxfrd or libhxfr-host
 * (host, scanout, shm): frames of the test pattern in any format,
 * FRAME_REQUEST/FRAME_RESPONSE round trips over a blocking fd. */
#ifndef HXFR_TESTS_HOSTUTIL_H
#define HXFR_TESTS_HOSTUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hxfr/proto.h>

#define RECV_TIMEOUT_MS 20000

/* A frame of the desktop pattern: tightly packed (stride = min stride + pad
 * bytes) and laid out as hxfr_geometry_compute() says. */
struct test_frame {
    struct hxfr_geometry g;
    uint8_t *data;
};

/* Renders frame index of the pattern. pad adds bytes to the plane-0 stride
 * (must keep I420 strides even). Returns 0 or -1. Free with
 * test_frame_free(). */
int test_frame_make(struct test_frame *f, uint32_t format, uint32_t w, uint32_t h, uint32_t pad,
                    uint64_t index);
void test_frame_free(struct test_frame *f);

/* Sends a FRAME_REQUEST with inline pixels. */
int send_frame(int fd, uint16_t sid, const struct test_frame *f, int64_t pts, bool force_kf);

/* Sends a message without payload body (PING, KEYFRAME_REQ, ...). */
int send_simple(int fd, uint8_t type, uint16_t sid);

/* Receives one message, expecting type; prints what came instead. On
 * FRAME_RESPONSE, *au gets the concatenated units (malloc'd) if au is not
 * NULL. Returns 0 or -1. */
int expect_msg(int fd, uint8_t type, struct hxfr_msg *m, uint8_t **au, size_t *au_len);

/* Receives one message and expects ERROR with code; returns 0 or -1. */
int expect_error(int fd, int32_t code);

/* PING then PONG on sid: the connection is alive and in sync. 0 or -1. */
int ping_ok(int fd);

/* Sends a frame and expects its FRAME_RESPONSE; the AU (malloc'd) in *au. */
int roundtrip_frame(int fd, uint16_t sid, const struct test_frame *f, int64_t pts, bool force_kf,
                    struct hxfr_msg *m, uint8_t **au, size_t *au_len);

#endif
