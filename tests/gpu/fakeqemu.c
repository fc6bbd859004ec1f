/* The QEMU stand-in for hxfr-gpu's tests (see fakeqemu.h). */
#include "fakeqemu.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/virtio_gpu.h>

/* The harness's FAIL/CHECK semantics (the test ends, exit status 1) for
 * this file, which cannot include harness.h: that defines the binary's
 * main(). */
static void fq_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), noreturn));

static struct fq *fq_current; /* whose log a failure prints */
static void print_log(struct fq *q);

static void fq_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    if (fq_current != NULL) {
        print_log(fq_current);
    }
    fprintf(stderr, "%s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    exit(1);
}

#define FAIL(...) fq_fail(__FILE__, __LINE__, __VA_ARGS__)
#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            FAIL("CHECK failed: %s", #c);                                                          \
        }                                                                                          \
    } while (0)
#define CHECK_EQ(a, b)                                                                             \
    do {                                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                                        \
        if (a_ != b_) {                                                                            \
            FAIL("CHECK_EQ failed: %s == %s (%lld != %lld)", #a, #b, a_, b_);                      \
        }                                                                                          \
    } while (0)

#define NEED_REPLY 0x8u
#define VERSION    0x1u

/* Guest RAM layout: the rings first, then the bump heap. */
#define CTRL_DESC  0x1000u
#define CTRL_AVAIL 0x3000u
#define CTRL_USED  0x4000u
#define CUR_DESC   0x6000u
#define CUR_AVAIL  0x7000u
#define CUR_USED   0x8000u
#define HEAP_START 0x100000u

const char *fq_binary(void)
{
    const char *b = getenv("HXFR_GPU");
    if (b == NULL || *b == '\0') {
        FAIL("HXFR_GPU is not set to the hxfr-gpu binary");
    }
    return b;
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static void put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)v);
    put32(p + 4, (uint32_t)(v >> 32));
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

void fq_spawn(struct fq *q, const char *const *extra_args)
{
    memset(q, 0, sizeof(*q));
    q->display = -1;
    fq_current = q;
    snprintf(q->dir, sizeof(q->dir), "/tmp/hxfr-gpu-test-XXXXXX");
    CHECK(mkdtemp(q->dir) != NULL);
    snprintf(q->control, sizeof(q->control), "%s/control.sock", q->dir);
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    int ready[2];
    CHECK(pipe2(ready, O_CLOEXEC) == 0);
    const char *argv[40];
    int argc = 0;
    argv[argc++] = fq_binary();
    argv[argc++] = "--fd";
    argv[argc++] = "3";
    argv[argc++] = "--control";
    argv[argc++] = q->control;
    argv[argc++] = "--ready-fd";
    argv[argc++] = "4";
    argv[argc++] = "-v";
    for (int i = 0; extra_args != NULL && extra_args[i] != NULL && argc < 38; i++) {
        argv[argc++] = extra_args[i];
    }
    argv[argc] = NULL;
    char log[128];
    snprintf(log, sizeof(log), "%s/hxfr-gpu.log", q->dir);
    q->pid = fork();
    CHECK(q->pid >= 0);
    if (q->pid == 0) {
        int lfd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(lfd, 2);
        dup2(sv[1], 3);
        dup2(ready[1], 4);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(sv[1]);
    close(ready[1]);
    q->sock = sv[0];
    /* Ready once the control socket listens: tests may use it at once. */
    char buf[16];
    struct pollfd p = {.fd = ready[0], .events = POLLIN};
    CHECK(poll(&p, 1, 10000) == 1);
    CHECK(read(ready[0], buf, sizeof(buf)) > 0);
    close(ready[0]);

    q->memfd = memfd_create("hxfr-test-guest-ram", MFD_CLOEXEC);
    CHECK(q->memfd >= 0);
    CHECK(ftruncate(q->memfd, FQ_RAM_SIZE) == 0);
    q->ram = mmap(NULL, FQ_RAM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, q->memfd, 0);
    CHECK(q->ram != MAP_FAILED);
    q->uva_base = 0x7e0000000000ull;
    q->heap = HEAP_START;
}

bool fq_alive(struct fq *q)
{
    int st;
    return q->pid > 0 && waitpid(q->pid, &st, WNOHANG) == 0;
}

static void print_log(struct fq *q)
{
    char path[160];
    snprintf(path, sizeof(path), "%s/hxfr-gpu.log", q->dir);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return;
    }
    char line[512];
    fprintf(stderr, "# --- hxfr-gpu log ---\n");
    while (fgets(line, sizeof(line), f) != NULL) {
        fprintf(stderr, "# %s", line);
    }
    fclose(f);
}

int fq_stop(struct fq *q)
{
    int status = 0;
    close(q->sock);
    if (q->display >= 0) {
        close(q->display);
    }
    for (int i = 0; i < 2; i++) {
        struct fq_ring *r = &q->ring[i];
        if (r->num) {
            close(r->kick);
            close(r->call);
            close(r->err);
        }
    }
    /* The process must notice QEMU is gone and exit by itself (30 s is a
     * deadline for a loaded machine, not a measurement). A process the
     * test already reaped has pid 0. */
    for (int i = 0; q->pid > 0 && i < 3000; i++) {
        pid_t p = waitpid(q->pid, &status, WNOHANG);
        if (p == q->pid) {
            break;
        }
        if (i == 2999) {
            kill(q->pid, SIGKILL);
            waitpid(q->pid, &status, 0);
            fprintf(stderr, "# hxfr-gpu did not exit when QEMU went away\n");
            status = -1;
            break;
        }
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (status != 0) {
        print_log(q);
    }
    munmap(q->ram, FQ_RAM_SIZE);
    close(q->memfd);
    char path[160];
    snprintf(path, sizeof(path), "%s/hxfr-gpu.log", q->dir);
    unlink(path);
    unlink(q->control);
    rmdir(q->dir);
    q->pid = 0;
    fq_current = NULL;
    return status;
}

void fq_stop_clean(struct fq *q)
{
    int st = fq_stop(q);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        FAIL("hxfr-gpu ended with wait status 0x%x, not a clean exit", st);
    }
}

/* --- vhost-user -------------------------------------------------------------- */

void fq_send(struct fq *q, uint32_t request, uint32_t flags, const void *payload, uint32_t size,
             const int *fds, unsigned n_fds)
{
    uint8_t buf[12 + 4096];
    CHECK(size <= 4096);
    uint32_t hdr[3] = {request, flags | VERSION, size};
    memcpy(buf, hdr, 12);
    if (size) {
        memcpy(buf + 12, payload, size);
    }
    union {
        struct cmsghdr align;
        char b[CMSG_SPACE(8 * sizeof(int))];
    } ctl;
    struct iovec iov = {buf, 12 + size};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    if (n_fds) {
        memset(&ctl, 0, sizeof(ctl));
        mh.msg_control = ctl.b;
        mh.msg_controllen = CMSG_SPACE(n_fds * sizeof(int));
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(n_fds * sizeof(int));
        memcpy(CMSG_DATA(c), fds, n_fds * sizeof(int));
    }
    CHECK(sendmsg(q->sock, &mh, MSG_NOSIGNAL) == (ssize_t)(12 + size));
}

static void read_full(int fd, void *buf, size_t n)
{
    uint8_t *p = buf;
    while (n > 0) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, 10000) != 1) {
            FAIL("no reply from hxfr-gpu within 10 s");
        }
        ssize_t r = read(fd, p, n);
        if (r <= 0) {
            FAIL("hxfr-gpu closed the vhost-user socket (read: %zd)", r);
        }
        p += r;
        n -= (size_t)r;
    }
}

uint32_t fq_recv(struct fq *q, uint32_t request, void *buf, uint32_t cap)
{
    uint32_t hdr[3];
    read_full(q->sock, hdr, 12);
    if (hdr[0] != request || !(hdr[1] & 0x4u) || hdr[2] > cap) {
        FAIL("bad reply: request %u flags 0x%x size %u (wanted request %u)", hdr[0], hdr[1], hdr[2],
             request);
    }
    read_full(q->sock, buf, hdr[2]);
    return hdr[2];
}

uint64_t fq_request_ack(struct fq *q, uint32_t request, const void *payload, uint32_t size,
                        const int *fds, unsigned n_fds)
{
    fq_send(q, request, NEED_REPLY, payload, size, fds, n_fds);
    uint64_t v = 0;
    CHECK_EQ(fq_recv(q, request, &v, sizeof(v)), 8);
    return v;
}

uint64_t fq_get_u64(struct fq *q, uint32_t request)
{
    fq_send(q, request, 0, NULL, 0, NULL, 0);
    uint64_t v = 0;
    CHECK_EQ(fq_recv(q, request, &v, sizeof(v)), 8);
    return v;
}

static void ring_fd(struct fq *q, uint32_t request, unsigned idx, int fd)
{
    uint64_t v = idx;
    CHECK_EQ(fq_request_ack(q, request, &v, 8, &fd, 1), 0);
}

void fq_ring_setup(struct fq *q, unsigned idx, uint32_t num)
{
    struct fq_ring *r = &q->ring[idx];
    if (r->num) {
        close(r->kick);
        close(r->call);
        close(r->err);
    }
    memset(r, 0, sizeof(*r));
    r->num = num;
    r->desc = idx == FQ_CTRL ? CTRL_DESC : CUR_DESC;
    r->avail = idx == FQ_CTRL ? CTRL_AVAIL : CUR_AVAIL;
    r->used = idx == FQ_CTRL ? CTRL_USED : CUR_USED;
    memset(q->ram + r->desc, 0, 16 * num);
    memset(q->ram + r->avail, 0, 6 + 2 * num);
    memset(q->ram + r->used, 0, 6 + 8 * num);
    r->kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    r->call = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    r->err = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    ring_fd(q, 13, idx, r->call); /* SET_VRING_CALL */
    ring_fd(q, 14, idx, r->err);  /* SET_VRING_ERR */
    uint32_t st[2] = {idx, num};
    CHECK_EQ(fq_request_ack(q, 8, st, 8, NULL, 0), 0); /* SET_VRING_NUM */
    st[1] = 0;
    CHECK_EQ(fq_request_ack(q, 10, st, 8, NULL, 0), 0); /* SET_VRING_BASE */
    uint8_t addr[40] = {0};
    put32(addr, idx);
    put64(addr + 8, q->uva_base + r->desc);
    put64(addr + 16, q->uva_base + r->used);
    put64(addr + 24, q->uva_base + r->avail);
    CHECK_EQ(fq_request_ack(q, 9, addr, 40, NULL, 0), 0); /* SET_VRING_ADDR */
    ring_fd(q, 12, idx, r->kick);                         /* SET_VRING_KICK */
    st[1] = 1;
    CHECK_EQ(fq_request_ack(q, 18, st, 8, NULL, 0), 0); /* SET_VRING_ENABLE */
}

static void driver_ok(struct fq *q, uint64_t extra_features)
{
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    if (q->display >= 0) {
        close(q->display);
    }
    q->display = sv[0];
    CHECK_EQ(fq_request_ack(q, 33, NULL, 0, &sv[1], 1), 0); /* GPU_SET_SOCKET */
    close(sv[1]);
    uint64_t f = q->features | extra_features;
    CHECK_EQ(fq_request_ack(q, 2, &f, 8, NULL, 0), 0); /* SET_FEATURES */
    uint8_t mem[8 + 32] = {0};
    put32(mem, 1);
    put64(mem + 8, 0);                                                 /* guest address */
    put64(mem + 16, FQ_RAM_SIZE);                                      /* size */
    put64(mem + 24, q->uva_base);                                      /* user address */
    put64(mem + 32, 0);                                                /* mmap offset */
    CHECK_EQ(fq_request_ack(q, 5, mem, sizeof(mem), &q->memfd, 1), 0); /* SET_MEM_TABLE */
    fq_ring_setup(q, FQ_CTRL, 64);
    fq_ring_setup(q, FQ_CURSOR, 16);
}

void fq_start(struct fq *q, const char *const *extra_args, uint64_t extra_features)
{
    fq_spawn(q, extra_args);
    uint64_t offered = fq_get_u64(q, 1); /* GET_FEATURES */
    CHECK(offered & (1ull << 30));       /* protocol features */
    CHECK(offered & (1ull << 32));       /* VERSION_1 */
    uint64_t proto = fq_get_u64(q, 15);  /* GET_PROTOCOL_FEATURES */
    CHECK(proto & (1ull << 9));          /* CONFIG, which QEMU requires */
    q->protocol = proto & ((1ull << 0) | (1ull << 3) | (1ull << 9) | (1ull << 13));
    fq_send(q, 16, 0, &q->protocol, 8, NULL, 0);         /* SET_PROTOCOL_FEATURES */
    CHECK_EQ(fq_get_u64(q, 17), 2);                      /* GET_QUEUE_NUM */
    CHECK_EQ(fq_request_ack(q, 3, NULL, 0, NULL, 0), 0); /* SET_OWNER */
    /* GET_CONFIG of the 16-byte virtio_gpu_config. */
    uint8_t cfg[12 + 16] = {0};
    put32(cfg + 4, 16);
    fq_send(q, 24, 0, cfg, sizeof(cfg), NULL, 0);
    uint8_t reply[12 + 16];
    CHECK_EQ(fq_recv(q, 24, reply, sizeof(reply)), sizeof(reply));
    CHECK_EQ(get32(reply + 12 + 12), 0); /* num_capsets: no virgl */
    CHECK(get32(reply + 12 + 8) >= 1);   /* num_scanouts */
    /* RESET_DEVICE at the driver's probe, as QEMU 10 sends it. */
    if (q->protocol & (1ull << 13)) {
        CHECK_EQ(fq_request_ack(q, 34, NULL, 0, NULL, 0), 0);
    }
    q->features = offered;
    driver_ok(q, extra_features);
}

void fq_reboot(struct fq *q)
{
    uint32_t st[2] = {0, 0};
    for (unsigned i = 0; i < 2; i++) {
        st[0] = i;
        fq_send(q, 11, 0, st, 8, NULL, 0); /* GET_VRING_BASE: stop */
        uint32_t rep[2];
        CHECK_EQ(fq_recv(q, 11, rep, sizeof(rep)), 8);
    }
    /* QEMU closes the GPU socket, resets the device, then the rebooted
     * guest's driver gets to DRIVER_OK again. */
    close(q->display);
    q->display = -1;
    CHECK_EQ(fq_request_ack(q, 34, NULL, 0, NULL, 0), 0);
    q->heap = HEAP_START;
    driver_ok(q, 0);
}

/* --- guest memory and rings -------------------------------------------------- */

uint64_t fq_alloc(struct fq *q, uint64_t size, uint64_t align)
{
    uint64_t a = (q->heap + align - 1) & ~(align - 1);
    if (a + size > FQ_RAM_SIZE) {
        q->heap = HEAP_START; /* tests reuse the heap once it is used up */
        a = HEAP_START;
    }
    CHECK(a + size <= FQ_RAM_SIZE);
    q->heap = a + size;
    return a;
}

void *fq_ptr(struct fq *q, uint64_t gpa)
{
    CHECK(gpa < FQ_RAM_SIZE);
    return q->ram + gpa;
}

void fq_desc(struct fq *q, unsigned idx, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags,
             uint16_t next)
{
    uint8_t *d = q->ram + q->ring[idx].desc + 16 * (i % q->ring[idx].num);
    put64(d, addr);
    put32(d + 8, len);
    put16(d + 12, flags);
    put16(d + 14, next);
}

void fq_avail(struct fq *q, unsigned idx, uint16_t head)
{
    struct fq_ring *r = &q->ring[idx];
    uint8_t *a = q->ram + r->avail;
    put16(a + 4 + 2 * (r->avail_idx % r->num), head);
    /* used_event: interrupt us for every used entry. */
    put16(a + 4 + 2 * r->num, r->used_seen);
    r->avail_idx++;
    __atomic_store_n((uint16_t *)(void *)(a + 2), r->avail_idx, __ATOMIC_RELEASE);
}

void fq_kick(struct fq *q, unsigned idx)
{
    uint64_t one = 1;
    CHECK(write(q->ring[idx].kick, &one, 8) == 8);
}

uint16_t fq_submit(struct fq *q, unsigned idx, const struct fq_seg *segs, unsigned n, bool indirect)
{
    struct fq_ring *r = &q->ring[idx];
    uint16_t head = r->next_desc % r->num;
    if (indirect) {
        uint64_t table = fq_alloc(q, 16 * n, 16);
        for (unsigned i = 0; i < n; i++) {
            uint8_t *d = q->ram + table + 16 * i;
            put64(d, segs[i].gpa);
            put32(d + 8, segs[i].len);
            put16(d + 12, (uint16_t)((segs[i].write ? FQ_WRITE : 0) | (i + 1 < n ? FQ_NEXT : 0)));
            put16(d + 14, (uint16_t)(i + 1));
        }
        fq_desc(q, idx, head, table, 16 * n, FQ_INDIRECT, 0);
        r->next_desc++;
    } else {
        CHECK(n <= r->num);
        for (unsigned i = 0; i < n; i++) {
            uint16_t d = (uint16_t)((head + i) % r->num);
            fq_desc(q, idx, d, segs[i].gpa, segs[i].len,
                    (uint16_t)((segs[i].write ? FQ_WRITE : 0) | (i + 1 < n ? FQ_NEXT : 0)),
                    (uint16_t)((d + 1) % r->num));
        }
        r->next_desc = (uint16_t)(r->next_desc + n);
    }
    fq_avail(q, idx, head);
    fq_kick(q, idx);
    return head;
}

bool fq_used_empty(struct fq *q, unsigned idx)
{
    struct fq_ring *r = &q->ring[idx];
    uint16_t used = __atomic_load_n((uint16_t *)(void *)(q->ram + r->used + 2), __ATOMIC_ACQUIRE);
    return used == r->used_seen;
}

bool fq_wait_used(struct fq *q, unsigned idx, uint32_t *id, uint32_t *len)
{
    struct fq_ring *r = &q->ring[idx];
    for (int waited = 0; waited < 10000;) {
        if (!fq_used_empty(q, idx)) {
            const uint8_t *e = q->ram + r->used + 4 + 8 * (r->used_seen % r->num);
            *id = get32(e);
            *len = get32(e + 4);
            r->used_seen++;
            return true;
        }
        struct pollfd p = {.fd = r->call, .events = POLLIN};
        int n = poll(&p, 1, 50);
        if (n == 1) {
            uint64_t v;
            if (read(r->call, &v, 8) < 0) {
                (void)0;
            }
        } else {
            waited += 50;
        }
        if (!fq_alive(q)) {
            FAIL("hxfr-gpu died");
        }
    }
    return false;
}

uint32_t fq_cmd(struct fq *q, const void *req, uint32_t req_len, void *resp, uint32_t resp_cap)
{
    uint64_t rq = fq_alloc(q, req_len ? req_len : 1, 8);
    uint64_t rs = fq_alloc(q, resp_cap ? resp_cap : 1, 8);
    memcpy(q->ram + rq, req, req_len);
    memset(q->ram + rs, 0xaa, resp_cap);
    struct fq_seg segs[2] = {{rq, req_len, false}, {rs, resp_cap, true}};
    uint16_t head = fq_submit(q, FQ_CTRL, segs, resp_cap ? 2 : 1, false);
    uint32_t id, len;
    if (!fq_wait_used(q, FQ_CTRL, &id, &len)) {
        FAIL("control command not answered within 10 s");
    }
    CHECK_EQ(id, head);
    CHECK(len <= resp_cap);
    memcpy(resp, q->ram + rs, resp_cap);
    return len;
}

uint32_t fq_cmd_type(struct fq *q, const void *req, uint32_t req_len)
{
    uint8_t resp[24];
    CHECK_EQ(fq_cmd(q, req, req_len, resp, sizeof(resp)), 24);
    return get32(resp);
}

void fq_cursor(struct fq *q, const void *req, uint32_t len)
{
    uint64_t rq = fq_alloc(q, len ? len : 1, 8);
    memcpy(q->ram + rq, req, len);
    struct fq_seg seg = {rq, len, false};
    uint16_t head = fq_submit(q, FQ_CURSOR, &seg, 1, false);
    uint32_t id, used_len;
    if (!fq_wait_used(q, FQ_CURSOR, &id, &used_len)) {
        FAIL("cursor command not returned within 10 s");
    }
    CHECK_EQ(id, head);
    CHECK_EQ(used_len, 0);
}

size_t fq_hdr(uint8_t *b, uint32_t type, uint32_t flags, uint64_t fence)
{
    memset(b, 0, 24);
    put32(b, type);
    put32(b + 4, flags);
    put64(b + 8, fence);
    return 24;
}

void fq_ping(struct fq *q)
{
    uint8_t req[24], resp[24 + 24 * 16];
    fq_hdr(req, VIRTIO_GPU_CMD_GET_DISPLAY_INFO, 0, 0);
    CHECK_EQ(fq_cmd(q, req, sizeof(req), resp, sizeof(resp)), sizeof(resp));
    CHECK_EQ(get32(resp), VIRTIO_GPU_RESP_OK_DISPLAY_INFO);
}

uint32_t fq_create(struct fq *q, uint32_t id, uint32_t format, uint32_t w, uint32_t h)
{
    uint8_t req[40];
    fq_hdr(req, VIRTIO_GPU_CMD_RESOURCE_CREATE_2D, 0, 0);
    put32(req + 24, id);
    put32(req + 28, format);
    put32(req + 32, w);
    put32(req + 36, h);
    return fq_cmd_type(q, req, sizeof(req));
}

uint32_t fq_attach(struct fq *q, uint32_t id, uint64_t gpa, uint64_t bytes, unsigned pieces)
{
    size_t len = 32 + 16 * (size_t)pieces;
    uint8_t *req = calloc(1, len);
    fq_hdr(req, VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING, 0, 0);
    put32(req + 24, id);
    put32(req + 28, pieces);
    uint64_t per = bytes / pieces;
    for (unsigned i = 0; i < pieces; i++) {
        put64(req + 32 + 16 * i, gpa + per * i);
        put32(req + 40 + 16 * i, (uint32_t)(i + 1 == pieces ? bytes - per * i : per));
    }
    uint32_t t = fq_cmd_type(q, req, (uint32_t)len);
    free(req);
    return t;
}

uint32_t fq_transfer(struct fq *q, uint32_t id, uint32_t x, uint32_t y, uint32_t w, uint32_t h,
                     uint64_t offset)
{
    uint8_t req[56];
    fq_hdr(req, VIRTIO_GPU_CMD_TRANSFER_TO_HOST_2D, 0, 0);
    put32(req + 24, x);
    put32(req + 28, y);
    put32(req + 32, w);
    put32(req + 36, h);
    put64(req + 40, offset);
    put32(req + 48, id);
    put32(req + 52, 0);
    return fq_cmd_type(q, req, sizeof(req));
}

uint32_t fq_flush(struct fq *q, uint32_t id, uint32_t x, uint32_t y, uint32_t w, uint32_t h)
{
    uint8_t req[48];
    fq_hdr(req, VIRTIO_GPU_CMD_RESOURCE_FLUSH, 0, 0);
    put32(req + 24, x);
    put32(req + 28, y);
    put32(req + 32, w);
    put32(req + 36, h);
    put32(req + 40, id);
    put32(req + 44, 0);
    return fq_cmd_type(q, req, sizeof(req));
}

uint32_t fq_set_scanout(struct fq *q, uint32_t scanout, uint32_t id, uint32_t x, uint32_t y,
                        uint32_t w, uint32_t h)
{
    uint8_t req[48];
    fq_hdr(req, VIRTIO_GPU_CMD_SET_SCANOUT, 0, 0);
    put32(req + 24, x);
    put32(req + 28, y);
    put32(req + 32, w);
    put32(req + 36, h);
    put32(req + 40, scanout);
    put32(req + 44, id);
    return fq_cmd_type(q, req, sizeof(req));
}

uint32_t fq_unref(struct fq *q, uint32_t id)
{
    uint8_t req[32];
    fq_hdr(req, VIRTIO_GPU_CMD_RESOURCE_UNREF, 0, 0);
    put32(req + 24, id);
    put32(req + 28, 0);
    return fq_cmd_type(q, req, sizeof(req));
}

/* --- the GPU socket and the control socket ------------------------------------ */

static bool read_timeout(int fd, void *buf, size_t n, int timeout_ms)
{
    uint8_t *p = buf;
    while (n > 0) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, timeout_ms) != 1) {
            return false;
        }
        ssize_t r = read(fd, p, n);
        if (r <= 0) {
            return false;
        }
        p += r;
        n -= (size_t)r;
    }
    return true;
}

bool fq_display_msg(struct fq *q, struct fq_dmsg *m, int timeout_ms)
{
    uint32_t hdr[3];
    memset(m, 0, sizeof(*m));
    if (!read_timeout(q->display, hdr, 12, timeout_ms)) {
        return false;
    }
    m->request = hdr[0];
    m->flags = hdr[1];
    m->size = hdr[2];
    CHECK(m->size <= (64u << 20));
    m->payload = malloc(m->size ? m->size : 1);
    CHECK(read_timeout(q->display, m->payload, m->size, 10000));
    return true;
}

void fq_dmsg_free(struct fq_dmsg *m)
{
    free(m->payload);
    m->payload = NULL;
}

char *fq_control(struct fq *q, const char *cmd, size_t *len)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    CHECK(strlen(q->control) < sizeof(sa.sun_path));
    memcpy(sa.sun_path, q->control, strlen(q->control) + 1);
    CHECK(fd >= 0);
    CHECK(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    char line[256];
    snprintf(line, sizeof(line), "%s\n", cmd);
    CHECK(write(fd, line, strlen(line)) == (ssize_t)strlen(line));
    size_t cap = 4096, n = 0;
    char *out = malloc(cap);
    uint64_t want = 0; /* "data N" answers: N bytes after the line */
    for (;;) {
        if (n + 1 >= cap) {
            cap *= 2;
            out = realloc(out, cap);
        }
        struct pollfd p = {.fd = fd, .events = POLLIN};
        CHECK(poll(&p, 1, 10000) == 1);
        ssize_t r = read(fd, out + n, cap - n - 1);
        CHECK(r > 0);
        n += (size_t)r;
        out[n] = '\0';
        char *nl = memchr(out, '\n', n);
        if (want == 0 && nl != NULL && strncmp(out, "data ", 5) == 0) {
            want = (uint64_t)(nl - out) + 1 + strtoull(out + 5, NULL, 10);
        }
        if (want != 0 ? n >= want
                      : (n >= 3 && (strcmp(out + n - 3, "ok\n") == 0 ||
                                    (strstr(out, "error") != NULL && out[n - 1] == '\n')))) {
            break;
        }
    }
    close(fd);
    if (len != NULL) {
        *len = n;
    }
    return out;
}

uint64_t fq_info_value(struct fq *q, const char *key)
{
    char *s = fq_control(q, "info", NULL);
    char pat[64];
    snprintf(pat, sizeof(pat), " %s ", key);
    char *p = strstr(s, pat);
    if (p == NULL) {
        FAIL("control info has no '%s': %s", key, s);
    }
    uint64_t v = strtoull(p + strlen(pat), NULL, 10);
    free(s);
    return v;
}
