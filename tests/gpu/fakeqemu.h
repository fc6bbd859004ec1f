/* A test harness that plays QEMU's part for hxfr-gpu: it starts the real
 * binary with --fd, speaks vhost-user to it over a socket pair (in the
 * order QEMU 10 does), shares a memfd as guest RAM, builds split
 * virtqueues in it the way a guest driver would (and, for the hostile
 * cases, any way it likes), and holds the other end of the GPU socket like
 * QEMU's display. Everything here FAILs the test on an unexpected error.
 */
#ifndef HXFR_TESTS_GPU_FAKEQEMU_H
#define HXFR_TESTS_GPU_FAKEQEMU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define FQ_RAM_SIZE (64u << 20)
#define FQ_CTRL     0
#define FQ_CURSOR   1

/* Descriptor flags. */
#define FQ_NEXT     1
#define FQ_WRITE    2
#define FQ_INDIRECT 4

struct fq_ring {
    uint32_t num;
    uint64_t desc, avail, used; /* guest-physical */
    int kick, call, err;
    uint16_t avail_idx; /* next avail index we publish */
    uint16_t used_seen; /* used index consumed so far */
    uint16_t next_desc; /* descriptor allocation cursor */
};

struct fq {
    pid_t pid;
    int sock;    /* vhost-user, our end */
    int display; /* GPU socket, QEMU's end */
    int memfd;
    uint8_t *ram;
    uint64_t uva_base;
    uint64_t heap;     /* bump allocator for guest buffers */
    uint64_t features; /* what we set */
    uint64_t protocol;
    struct fq_ring ring[2];
    char dir[64]; /* temp folder: stderr log, control socket */
    char control[128];
};

/* One buffer of a chain as the driver describes it. */
struct fq_seg {
    uint64_t gpa;
    uint32_t len;
    bool write;
};

/* The binary under test: $HXFR_GPU (meson sets it). */
const char *fq_binary(void);

/* Starts hxfr-gpu with extra arguments (NULL-terminated, may be NULL; a
 * control socket is always added) and brings the device up like QEMU does
 * at the guest's DRIVER_OK. extra_features are SET_FEATURES bits beyond
 * what was offered (QEMU sets some). */
void fq_start(struct fq *q, const char *const *extra_args, uint64_t extra_features);
/* Spawns only; the caller negotiates (vhost-user tests). */
void fq_spawn(struct fq *q, const char *const *extra_args);
/* Closes the vhost-user socket (QEMU goes away) and waits for the process;
 * returns its wait status. Also closes and unmaps everything. */
int fq_stop(struct fq *q);
/* FAILs unless the process exited with status 0. */
void fq_stop_clean(struct fq *q);
/* True if the child is still running. */
bool fq_alive(struct fq *q);

/* vhost-user: sends a request (payload, optional fds). */
void fq_send(struct fq *q, uint32_t request, uint32_t flags, const void *payload, uint32_t size,
             const int *fds, unsigned n_fds);
/* Reads one reply: returns its payload size, payload into buf (cap). */
uint32_t fq_recv(struct fq *q, uint32_t request, void *buf, uint32_t cap);
/* Sends with NEED_REPLY and returns the u64 ack (0 = success). */
uint64_t fq_request_ack(struct fq *q, uint32_t request, const void *payload, uint32_t size,
                        const int *fds, unsigned n_fds);
/* GET_* requests: u64 reply. */
uint64_t fq_get_u64(struct fq *q, uint32_t request);
/* Sets up and starts ring idx (num entries) with fresh eventfds. */
void fq_ring_setup(struct fq *q, unsigned idx, uint32_t num);
/* RESET_DEVICE, then the whole DRIVER_OK sequence again with a new GPU
 * socket (what QEMU does on a guest reboot). */
void fq_reboot(struct fq *q);

/* Guest memory. */
uint64_t fq_alloc(struct fq *q, uint64_t size, uint64_t align);
void *fq_ptr(struct fq *q, uint64_t gpa);

/* Writes descriptor i of ring idx. */
void fq_desc(struct fq *q, unsigned idx, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags,
             uint16_t next);
/* Publishes head in the avail ring (no kick). */
void fq_avail(struct fq *q, unsigned idx, uint16_t head);
void fq_kick(struct fq *q, unsigned idx);
/* Builds a chain from segs (direct descriptors, or one indirect table),
 * publishes and kicks it. Returns the head. */
uint16_t fq_submit(struct fq *q, unsigned idx, const struct fq_seg *segs, unsigned n,
                   bool indirect);
/* Waits (10 s at most) for the next used entry; fills id and len. Returns
 * false on timeout. */
bool fq_wait_used(struct fq *q, unsigned idx, uint32_t *id, uint32_t *len);
/* True if no used entry is pending now. */
bool fq_used_empty(struct fq *q, unsigned idx);

/* A control-queue command: copies req into guest RAM, gives resp_cap
 * bytes of reply room (filled with 0xAA first, to see what is written),
 * waits, copies the reply to resp. Returns the used length. */
uint32_t fq_cmd(struct fq *q, const void *req, uint32_t req_len, void *resp, uint32_t resp_cap);
/* The reply type of a simple command (24-byte reply). */
uint32_t fq_cmd_type(struct fq *q, const void *req, uint32_t req_len);
/* A cursor-queue command (no reply); waits until it is used. */
void fq_cursor(struct fq *q, const void *req, uint32_t len);
/* A GET_DISPLAY_INFO round trip that must work: proves the device still
 * serves. */
void fq_ping(struct fq *q);

/* Command builders (little-endian, 24-byte header with flags/fence). */
size_t fq_hdr(uint8_t *b, uint32_t type, uint32_t flags, uint64_t fence);
uint32_t fq_create(struct fq *q, uint32_t id, uint32_t format, uint32_t w, uint32_t h);
/* Backing as one or more pieces (n pieces of equal size) of guest RAM at
 * gpa; returns the reply type. */
uint32_t fq_attach(struct fq *q, uint32_t id, uint64_t gpa, uint64_t bytes, unsigned pieces);
uint32_t fq_transfer(struct fq *q, uint32_t id, uint32_t x, uint32_t y, uint32_t w, uint32_t h,
                     uint64_t offset);
uint32_t fq_flush(struct fq *q, uint32_t id, uint32_t x, uint32_t y, uint32_t w, uint32_t h);
uint32_t fq_set_scanout(struct fq *q, uint32_t scanout, uint32_t id, uint32_t x, uint32_t y,
                        uint32_t w, uint32_t h);
uint32_t fq_unref(struct fq *q, uint32_t id);

/* The GPU socket: reads one message QEMU's display would get (waits up
 * to timeout_ms; returns false on timeout). payload is malloc'd. */
struct fq_dmsg {
    uint32_t request, flags, size;
    uint8_t *payload;
};
bool fq_display_msg(struct fq *q, struct fq_dmsg *m, int timeout_ms);
void fq_dmsg_free(struct fq_dmsg *m);

/* One control-socket command; returns the whole answer (malloc'd,
 * NUL-terminated; binary data for read). *len gets its length. */
char *fq_control(struct fq *q, const char *cmd, size_t *len);
/* A number after "key " in the control socket's "info" answer. */
uint64_t fq_info_value(struct fq *q, const char *key);

#endif
