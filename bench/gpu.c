/* hxfr-bench-gpu: what a 1080p frame costs hxfr-gpu (bench/run.py runs it
 * as the "hxfr-gpu" section of the benchmark).
 *
 *   hxfr-bench-gpu --size WxH --frames N --rounds R [--pieces P]
 *
 * The device core runs in this process on a guest RAM of our own: one
 * B8G8R8X8 resource whose backing is P pieces scattered over the RAM in
 * shuffled order (Linux guests give 15-130 pieces for such a buffer). For
 * each frame the "guest" writes the next desktop-pattern frame into the
 * backing (not timed), then each variant is timed per frame:
 *
 *   device          TRANSFER_TO_HOST_2D + RESOURCE_FLUSH of the whole frame
 *                   through the command handlers (the host-copy update)
 *   device+display  the same with QEMU's display socket attached: the
 *                   UPDATE messages (x8r8g8b8) built and written to a socket
 *                   a thread drains like QEMU would
 *   inplace-i420    reading the frame in place: libyuv ARGBToI420 straight
 *                   from the backing pieces (row pairs that straddle two
 *                   pieces go through a 2-row buffer), as a zero-copy
 *                   encoder would consume it
 *   copy            gathering the frame from the pieces into one buffer
 *   copy-i420       that copy, then ARGBToI420 from the buffer
 *
 * Variants run interleaved: every round runs each once over N frames, in
 * an order that rotates by one per round. One JSON object on stdout:
 * per-variant wall and CPU ms per frame (this thread's CPU time: the
 * figure other load on a shared machine disturbs least; the drain thread,
 * standing for QEMU, is not in it), medians over rounds and every round,
 * and the ratios within rounds. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <libyuv.h>
#include <linux/virtio_gpu.h>

#include <hxfr/proto.h>

#include "display.h"
#include "gpu-private.h"
#include "pattern.h"

enum { V_DEVICE, V_DISPLAY, V_INPLACE, V_COPY, V_COPY_I420, N_VARIANTS };
static const char *const names[N_VARIANTS] = {"device", "device+display", "inplace-i420", "copy",
                                              "copy-i420"};

struct bench {
    uint32_t w, h, frames, rounds, pieces;
    uint64_t size;
    uint8_t *ram;
    uint64_t ram_size;
    struct hxfr_mem mem;
    struct hxfr_gpu gpu;
    struct hxfr_display display;
    int drain_fd;
    volatile int stop;
    uint64_t *piece_gpa;
    uint8_t *frames_buf; /* the rendered frames, frames * size */
    uint8_t *contig;     /* copy target */
    uint8_t *y, *u, *v, *pair;
    struct hxfr_vring_elem *elem;
};

/* Frees what setup() allocated (each may be NULL after a failed set-up). */
static void teardown(struct bench *b)
{
    free(b->ram);
    free(b->piece_gpa);
    free(b->frames_buf);
    free(b->contig);
    free(b->y);
    free(b->u);
    free(b->v);
    free(b->pair);
    free(b->elem);
}

static double clock_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static uint32_t cmd(struct bench *b, const uint8_t *req, uint32_t len)
{
    uint8_t resp[24];
    b->elem->n_out = 1;
    b->elem->n_in = 1;
    b->elem->seg[0] = (struct hxfr_seg){(uint8_t *)req, len};
    b->elem->seg[1] = (struct hxfr_seg){resp, sizeof(resp)};
    b->elem->out_bytes = len;
    b->elem->in_bytes = sizeof(resp);
    hxfr__gpu_ctrl(&b->gpu, b->elem);
    return hxfr_get_u32(resp);
}

static void hdr(uint8_t *p, uint32_t type)
{
    memset(p, 0, 24);
    hxfr_put_u32(p, type);
}

static int setup(struct bench *b)
{
    b->size = (uint64_t)b->w * 4 * b->h;
    /* Room for the slots set up below. */
    b->ram_size =
        (uint64_t)b->pieces *
        ((b->size - (b->size / b->pieces & ~4095ull) * (b->pieces - 1) + 8191) & ~4095ull);
    b->ram = aligned_alloc(4096, (b->ram_size + 4095) & ~4095ull);
    b->piece_gpa = calloc(b->pieces, sizeof(uint64_t));
    b->frames_buf = malloc(b->size * b->frames);
    b->contig = malloc(b->size);
    b->y = malloc((size_t)b->w * b->h);
    b->u = malloc((size_t)b->w * b->h / 4);
    b->v = malloc((size_t)b->w * b->h / 4);
    b->pair = malloc((size_t)b->w * 8);
    b->elem = malloc(sizeof(*b->elem));
    if (!b->ram || !b->piece_gpa || !b->frames_buf || !b->contig || !b->y || !b->u || !b->v ||
        !b->pair || !b->elem) {
        return -ENOMEM;
    }
    memset(b->ram, 0, b->ram_size);
    for (uint32_t i = 0; i < b->frames; i++) {
        uint8_t *planes[3] = {b->frames_buf + b->size * i, NULL, NULL};
        uint32_t strides[3] = {b->w * 4, 0, 0};
        hxfr_pattern_render(HXFR_PATTERN_DESKTOP, HXFR_FORMAT_XRGB8888, b->w, b->h, i, planes,
                            strides);
    }
    struct hxfr_mem_desc d = {.gpa = 0, .size = b->ram_size, .uva = 0};
    hxfr__mem_init(&b->mem);
    int err = hxfr__mem_set_local(&b->mem, &d, 1, &b->ram);
    struct hxfr_gpu_config cfg;
    hxfr__gpu_config_init(&cfg);
    if (err == 0) {
        err = hxfr__gpu_init(&b->gpu, &cfg, &b->mem);
    }
    if (err < 0) {
        return err;
    }
    /* Equal pieces of whole pages (the last takes the rest), each in its
     * own slot with a gap after it (never adjacent, so never merged),
     * slots used in a shuffled order. */
    uint64_t piece = (b->size / b->pieces) & ~4095ull;
    uint64_t last = b->size - piece * (b->pieces - 1);
    uint64_t slot = (last + 4096 + 4095) & ~4095ull;
    uint32_t *order = malloc(b->pieces * sizeof(uint32_t));
    for (uint32_t i = 0; i < b->pieces; i++) {
        order[i] = i;
    }
    uint32_t x = 12345;
    for (uint32_t i = b->pieces - 1; i > 0; i--) {
        x = x * 1103515245u + 12345u;
        uint32_t j = (x >> 8) % (i + 1), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    size_t alen = 32 + 16 * (size_t)b->pieces;
    uint8_t *attach = calloc(1, alen);
    hdr(attach, VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING);
    hxfr_put_u32(attach + 24, 1);
    hxfr_put_u32(attach + 28, b->pieces);
    for (uint32_t i = 0; i < b->pieces; i++) {
        b->piece_gpa[i] = (uint64_t)order[i] * slot;
        hxfr_put_u64(attach + 32 + 16 * i, b->piece_gpa[i]);
        hxfr_put_u32(attach + 40 + 16 * i, (uint32_t)(i + 1 == b->pieces ? last : piece));
    }
    free(order);
    uint8_t create[40] = {0};
    hdr(create, VIRTIO_GPU_CMD_RESOURCE_CREATE_2D);
    hxfr_put_u32(create + 24, 1);
    hxfr_put_u32(create + 28, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM);
    hxfr_put_u32(create + 32, b->w);
    hxfr_put_u32(create + 36, b->h);
    uint8_t scan[48] = {0};
    hdr(scan, VIRTIO_GPU_CMD_SET_SCANOUT);
    hxfr_put_u32(scan + 32, b->w);
    hxfr_put_u32(scan + 36, b->h);
    hxfr_put_u32(scan + 44, 1);
    if (cmd(b, create, sizeof(create)) != VIRTIO_GPU_RESP_OK_NODATA ||
        cmd(b, attach, (uint32_t)alen) != VIRTIO_GPU_RESP_OK_NODATA ||
        cmd(b, scan, sizeof(scan)) != VIRTIO_GPU_RESP_OK_NODATA) {
        free(attach);
        return -EINVAL;
    }
    free(attach);
    return 0;
}

/* The guest draws frame i into its backing. */
static void guest_writes(struct bench *b, uint32_t i)
{
    struct hxfr_gpu_resource_info r;
    hxfr_gpu_resource_get(&b->gpu, 1, &r);
    const uint8_t *src = b->frames_buf + b->size * (i % b->frames);
    for (uint32_t p = 0; p < r.n_pieces; p++) {
        memcpy((uint8_t *)r.pieces[p].host, src + r.pieces[p].offset, r.pieces[p].len);
    }
}

static void transfer_flush(struct bench *b)
{
    uint8_t t[56] = {0}, f[48] = {0};
    hdr(t, VIRTIO_GPU_CMD_TRANSFER_TO_HOST_2D);
    hxfr_put_u32(t + 32, b->w);
    hxfr_put_u32(t + 36, b->h);
    hxfr_put_u32(t + 48, 1);
    hdr(f, VIRTIO_GPU_CMD_RESOURCE_FLUSH);
    hxfr_put_u32(f + 32, b->w);
    hxfr_put_u32(f + 36, b->h);
    hxfr_put_u32(f + 40, 1);
    if (cmd(b, t, sizeof(t)) != VIRTIO_GPU_RESP_OK_NODATA ||
        cmd(b, f, sizeof(f)) != VIRTIO_GPU_RESP_OK_NODATA) {
        fprintf(stderr, "hxfr-bench-gpu: transfer or flush refused: %s\n",
                b->gpu.stats.last_error ? b->gpu.stats.last_error : "?");
        exit(1);
    }
}

/* ARGBToI420 from the backing where it lies. */
static void inplace_i420(struct bench *b)
{
    struct hxfr_gpu_resource_info r;
    hxfr_gpu_resource_get(&b->gpu, 1, &r);
    uint32_t stride = r.stride, w = b->w;
    uint32_t y = 0;
    while (y < b->h) {
        uint64_t len;
        const uint8_t *p = hxfr_gpu_backing_at(&r, (uint64_t)y * stride, &len);
        uint32_t rows = (uint32_t)(len / stride) & ~1u; /* whole row pairs in this piece */
        if (rows > b->h - y) {
            rows = b->h - y;
        }
        if (rows == 0) {
            /* The pair straddles pieces: gather just these two rows. */
            struct hxfr_gpu_rect pair = {0, y, w, 2};
            hxfr_gpu_resource_read(&b->gpu, 1, &pair, b->pair, stride);
            p = b->pair;
            rows = 2;
        }
        ARGBToI420(p, (int)stride, b->y + (size_t)y * w, (int)w, b->u + (size_t)y / 2 * (w / 2),
                   (int)(w / 2), b->v + (size_t)y / 2 * (w / 2), (int)(w / 2), (int)w, (int)rows);
        y += rows;
    }
}

static void copy(struct bench *b)
{
    struct hxfr_gpu_rect all = {0, 0, b->w, b->h};
    hxfr_gpu_resource_read(&b->gpu, 1, &all, b->contig, b->w * 4);
}

static void copy_i420(struct bench *b)
{
    copy(b);
    ARGBToI420(b->contig, (int)b->w * 4, b->y, (int)b->w, b->u, (int)b->w / 2, b->v, (int)b->w / 2,
               (int)b->w, (int)b->h);
}

static void *drainer(void *arg)
{
    struct bench *b = arg;
    static uint8_t buf[1 << 20];
    while (!b->stop) {
        if (recv(b->drain_fd, buf, sizeof(buf), 0) <= 0) {
            break;
        }
    }
    return NULL;
}

/* Runs variant v over every frame; returns wall ms per frame, and the CPU
 * time of this thread per frame in *cpu (what the machine's other load
 * disturbs least; the drain thread, QEMU's part, is not in it). */
static double run_variant(struct bench *b, int v, double *cpu)
{
    double total = 0, cpu_total = 0;
    for (uint32_t i = 0; i < b->frames; i++) {
        guest_writes(b, i);
        double t0 = clock_ms(CLOCK_MONOTONIC), c0 = clock_ms(CLOCK_THREAD_CPUTIME_ID);
        switch (v) {
        case V_DEVICE:
            transfer_flush(b);
            break;
        case V_DISPLAY:
            transfer_flush(b);
            /* As the device loop does: write until done or the socket is
             * full; here it waits for the drain, so the frame's bytes are
             * all counted. */
            while (hxfr__display_flush(&b->display) == 1) {
            }
            break;
        case V_INPLACE:
            inplace_i420(b);
            break;
        case V_COPY:
            copy(b);
            break;
        default:
            copy_i420(b);
            break;
        }
        cpu_total += clock_ms(CLOCK_THREAD_CPUTIME_ID) - c0;
        total += clock_ms(CLOCK_MONOTONIC) - t0;
    }
    *cpu = cpu_total / b->frames;
    return total / b->frames;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, uint32_t n)
{
    double *c = malloc(n * sizeof(double));
    memcpy(c, v, n * sizeof(double));
    qsort(c, n, sizeof(double), cmp_double);
    double m = n % 2 ? c[n / 2] : (c[n / 2 - 1] + c[n / 2]) / 2;
    free(c);
    return m;
}

int main(int argc, char **argv)
{
    struct bench b = {.w = 1920, .h = 1080, .frames = 60, .rounds = 3, .pieces = 32};
    for (int i = 1; i + 1 < argc; i += 2) {
        unsigned long x = strtoul(argv[i + 1], NULL, 10);
        if (strcmp(argv[i], "--size") == 0 && sscanf(argv[i + 1], "%ux%u", &b.w, &b.h) == 2) {
            continue;
        } else if (strcmp(argv[i], "--frames") == 0 && x > 0 && x <= 1000) {
            b.frames = (uint32_t)x;
        } else if (strcmp(argv[i], "--rounds") == 0 && x > 0 && x <= 100) {
            b.rounds = (uint32_t)x;
        } else if (strcmp(argv[i], "--pieces") == 0 && x > 0 && x <= 4096) {
            b.pieces = (uint32_t)x;
        } else {
            fprintf(stderr, "usage: hxfr-bench-gpu --size WxH --frames N --rounds R "
                            "[--pieces P]\n");
            return 2;
        }
    }
    if (b.w < 16 || b.h < 16 || b.w > 8192 || b.h > 8192 || ((b.w | b.h) & 1) ||
        (uint64_t)b.w * 4 * b.h / b.pieces < 8192) {
        fprintf(stderr, "hxfr-bench-gpu: size or pieces out of range\n");
        return 2;
    }
    int err = setup(&b);
    if (err < 0) {
        fprintf(stderr, "hxfr-bench-gpu: set-up failed: %s\n", strerror(-err));
        teardown(&b);
        return 1;
    }
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0 ||
        hxfr__display_init(&b.display, &b.gpu) < 0) {
        return 1;
    }
    b.drain_fd = sv[1];
    pthread_t th;
    pthread_create(&th, NULL, drainer, &b);
    /* The display listens throughout but its socket is attached only for
     * the device+display variant: the others leave no output behind. */
    double *ms = calloc((size_t)N_VARIANTS * b.rounds, sizeof(double));
    double *cpu = calloc((size_t)N_VARIANTS * b.rounds, sizeof(double));
    for (uint32_t r = 0; r < b.rounds; r++) {
        for (int k = 0; k < N_VARIANTS; k++) {
            int v = (int)((k + r) % N_VARIANTS);
            if (v == V_DISPLAY) {
                hxfr__display_set_socket(&b.display, dup(sv[0]));
                while (hxfr__display_flush(&b.display) == 1) {
                }
            }
            ms[v * b.rounds + r] = run_variant(&b, v, &cpu[v * b.rounds + r]);
            if (v == V_DISPLAY) {
                hxfr__display_set_socket(&b.display, -1);
            }
        }
    }
    struct hxfr_gpu_resource_info info;
    hxfr_gpu_resource_get(&b.gpu, 1, &info);
    printf("{\"width\": %u, \"height\": %u, \"frames\": %u, \"rounds\": %u, \"pieces\": %u, "
           "\"variants\": {",
           b.w, b.h, b.frames, b.rounds, info.n_pieces);
    for (int v = 0; v < N_VARIANTS; v++) {
        printf("%s\"%s\": {\"ms_per_frame\": %.3f, \"cpu_ms_per_frame\": %.3f, \"rounds_ms\": [",
               v ? ", " : "", names[v], median(ms + v * b.rounds, b.rounds),
               median(cpu + v * b.rounds, b.rounds));
        for (uint32_t r = 0; r < b.rounds; r++) {
            printf("%s%.3f", r ? ", " : "", ms[v * b.rounds + r]);
        }
        printf("], \"rounds_cpu_ms\": [");
        for (uint32_t r = 0; r < b.rounds; r++) {
            printf("%s%.3f", r ? ", " : "", cpu[v * b.rounds + r]);
        }
        printf("]}");
    }
    /* Ratios within each round, then their median: of wall time, and of
     * CPU time. */
    double *ratio = calloc(b.rounds, sizeof(double));
    static const int pairs[3][2] = {
        {V_INPLACE, V_COPY_I420}, {V_COPY, V_INPLACE}, {V_DISPLAY, V_DEVICE}};
    static const char *const pair_names[3] = {"inplace_i420_vs_copy_i420", "copy_vs_inplace_i420",
                                              "display_vs_device"};
    for (int which = 0; which < 2; which++) {
        const double *t = which ? cpu : ms;
        printf("}, \"%s\": {", which ? "cpu_ratios" : "ratios");
        for (int p = 0; p < 3; p++) {
            for (uint32_t r = 0; r < b.rounds; r++) {
                ratio[r] = t[pairs[p][0] * b.rounds + r] / t[pairs[p][1] * b.rounds + r];
            }
            printf("%s\"%s\": %.3f", p ? ", " : "", pair_names[p], median(ratio, b.rounds));
        }
    }
    printf("}, \"transfer_bytes\": %llu}\n", (unsigned long long)b.gpu.stats.transfer_bytes);
    free(ratio);
    free(ms);
    free(cpu);
    b.stop = 1;
    shutdown(sv[0], SHUT_RDWR);
    close(sv[0]);
    pthread_join(th, NULL);
    close(sv[1]);
    hxfr__display_finish(&b.display);
    hxfr__gpu_finish(&b.gpu);
    hxfr__mem_finish(&b.mem);
    teardown(&b);
    return 0;
}
