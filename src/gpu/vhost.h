/* The back-end side of the vhost-user protocol (QEMU's
 * docs/interop/vhost-user.rst) for a device with a fixed set of rings:
 * feature and protocol-feature negotiation, the memory table, ring set-up,
 * start and stop, config space, device reset and the GPU socket message.
 * The front-end (QEMU) sends requests on one UNIX stream socket, with file
 * descriptors as SCM_RIGHTS; several requests and their fds may come in one
 * read, a request may be split over reads. Replies go out on the same
 * socket, blocking (QEMU waits for them; they are small).
 *
 * This layer knows nothing of virtio-gpu: the device plugs in through
 * struct hxfr_vhost_ops. It does not log; what it did last is readable
 * from struct hxfr_vhost (counters, last_error).
 */
#ifndef HXFR_GPU_VHOST_H
#define HXFR_GPU_VHOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mem.h"
#include "vring.h"

#define HXFR_VHOST_MAX_RINGS 2

/* vhost-user request codes this back-end knows. */
enum {
    HXFR_VHOST_GET_FEATURES = 1,
    HXFR_VHOST_SET_FEATURES = 2,
    HXFR_VHOST_SET_OWNER = 3,
    HXFR_VHOST_RESET_OWNER = 4,
    HXFR_VHOST_SET_MEM_TABLE = 5,
    HXFR_VHOST_SET_LOG_BASE = 6,
    HXFR_VHOST_SET_LOG_FD = 7,
    HXFR_VHOST_SET_VRING_NUM = 8,
    HXFR_VHOST_SET_VRING_ADDR = 9,
    HXFR_VHOST_SET_VRING_BASE = 10,
    HXFR_VHOST_GET_VRING_BASE = 11,
    HXFR_VHOST_SET_VRING_KICK = 12,
    HXFR_VHOST_SET_VRING_CALL = 13,
    HXFR_VHOST_SET_VRING_ERR = 14,
    HXFR_VHOST_GET_PROTOCOL_FEATURES = 15,
    HXFR_VHOST_SET_PROTOCOL_FEATURES = 16,
    HXFR_VHOST_GET_QUEUE_NUM = 17,
    HXFR_VHOST_SET_VRING_ENABLE = 18,
    HXFR_VHOST_SET_BACKEND_REQ_FD = 21,
    HXFR_VHOST_GET_CONFIG = 24,
    HXFR_VHOST_SET_CONFIG = 25,
    HXFR_VHOST_GPU_SET_SOCKET = 33,
    HXFR_VHOST_RESET_DEVICE = 34,
};

/* Message flags (header field 2). */
#define HXFR_VHOST_VERSION    0x1u
#define HXFR_VHOST_REPLY      0x4u
#define HXFR_VHOST_NEED_REPLY 0x8u

/* Transport feature bits. */
#define HXFR_VIRTIO_F_INDIRECT_DESC    28
#define HXFR_VIRTIO_F_EVENT_IDX        29
#define HXFR_VHOST_F_PROTOCOL_FEATURES 30
#define HXFR_VIRTIO_F_VERSION_1        32

/* Protocol feature bits. */
#define HXFR_VHOST_PROTOCOL_F_MQ           0
#define HXFR_VHOST_PROTOCOL_F_REPLY_ACK    3
#define HXFR_VHOST_PROTOCOL_F_CONFIG       9
#define HXFR_VHOST_PROTOCOL_F_RESET_DEVICE 13

/* Largest request payload accepted (the largest real one, a memory table
 * of 8 regions, is 264 bytes; config space accesses stay below 256). */
#define HXFR_VHOST_MAX_PAYLOAD 4096

/* What the device provides. Every function is called on the loop thread
 * from inside hxfr__vhost_read(); all are required unless marked. */
struct hxfr_vhost_ops {
    int version; /* 1 */
    /* Device-specific feature bits (below 24) offered to the driver. */
    uint64_t device_features;
    /* Fills len bytes of config space from offset. Returns 0 or -EINVAL
     * (the range is not in the config space). */
    int (*get_config)(void *dev, uint32_t offset, uint8_t *buf, uint32_t len);
    /* The driver wrote config space. Returns 0 or -EINVAL (read-only). */
    int (*set_config)(void *dev, uint32_t offset, const uint8_t *buf, uint32_t len);
    /* VHOST_USER_GPU_SET_SOCKET: the device takes ownership of fd. */
    void (*gpu_socket)(void *dev, int fd);
    /* A new memory table is in place: host pointers derived from the old
     * one are stale. */
    void (*mem_changed)(void *dev);
    /* Ring idx was started, stopped, enabled or disabled, or got a new
     * kick fd: the device re-reads its state and (re)watches kick_fd. */
    void (*ring_changed)(void *dev, unsigned idx);
    /* VHOST_USER_RESET_DEVICE: rings are already stopped; forget every
     * piece of guest state. */
    void (*reset)(void *dev);
    /* The driver's feature set (only known bits, after masking). */
    void (*features)(void *dev, uint64_t features);
};

struct hxfr_vhost {
    int fd; /* the front-end connection, borrowed */
    const struct hxfr_vhost_ops *ops;
    void *dev;
    unsigned n_rings;
    uint64_t offered;  /* transport | device features */
    uint64_t features; /* what SET_FEATURES left after masking */
    uint64_t protocol_offered;
    uint64_t protocol_features;
    bool features_set;
    struct hxfr_mem mem;
    struct hxfr_vring rings[HXFR_VHOST_MAX_RINGS];

    /* Bytes read but not yet handled, and the fds that came with them. */
    uint8_t in[2 * (12 + HXFR_VHOST_MAX_PAYLOAD)];
    size_t in_len;
    int fds[32];
    unsigned n_fds;
    size_t fds_at; /* they belong to the request that ends at this offset */

    /* Diagnostics. */
    uint64_t requests;
    uint64_t unknown_bits; /* feature bits the front-end set, we never offered */
    uint32_t last_request;
    const char *last_error; /* static string, or NULL */
};

/* Starts serving the front-end on fd (borrowed; make it non-blocking is not
 * needed: reads happen when the loop says it is readable, replies block).
 * n_rings is the device's ring count (at most HXFR_VHOST_MAX_RINGS). */
void hxfr__vhost_init(struct hxfr_vhost *vu, int fd, unsigned n_rings,
                      const struct hxfr_vhost_ops *ops, void *dev);
/* Unmaps guest RAM, closes ring and pending fds (not fd itself). */
void hxfr__vhost_finish(struct hxfr_vhost *vu);

/* Reads what the socket has and handles every complete request. Returns 0
 * while the connection is fine, -EPIPE once the front-end closed it, or
 * another -errno for a request that breaks the protocol (last_error says
 * which); the caller then ends the connection. */
int hxfr__vhost_read(struct hxfr_vhost *vu);

/* Handles the requests in buf[0 .. len) with fds attached to the request
 * ending at fds_at (the test and fuzz entry; hxfr__vhost_read() uses it).
 * Takes ownership of the fds. Returns as hxfr__vhost_read(). */
int hxfr__vhost_feed(struct hxfr_vhost *vu, const uint8_t *buf, size_t len, const int *fds,
                     unsigned n_fds);

/* True if the ring may be processed now (started, enabled, mapped). */
bool hxfr__vhost_ring_live(const struct hxfr_vhost *vu, unsigned idx);

#endif
