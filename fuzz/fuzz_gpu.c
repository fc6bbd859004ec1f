/* libFuzzer target: hxfr-gpu as a hostile guest and a broken front-end
 * drive it. Byte 0 picks the mode.
 *
 * Even: guest RAM (64 KiB, zeroes at start) holds a control ring of 16 at
 * 0x0/0x100/0x200 and a cursor ring of 8 at 0x400/0x500/0x600 (event idx
 * and indirect descriptors on). The rest of the input is a list of steps:
 *   u8 op, then
 *   op 0: u16 offset, u16 length, bytes  - the guest writes its RAM
 *   op 1 / 2: the device processes the control / cursor ring
 *   op 3: device reset; op 4: the memory table is set again
 *   op 5: u8 scanout, u16 width, u16 height - host-side hot-plug/resize
 * QEMU's display hangs on a socket pair whose far end is drained, so the
 * GPU socket messages (sizes, pixel updates, cursors) are built too.
 *
 * Odd: the rest is a vhost-user request stream (no fds) into the
 * back-end protocol layer, with the device behind it. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "display.h"
#include "fuzz.h"
#include "gpu-private.h"
#include "vhost.h"

#define RAM_SIZE 0x10000u

struct ctx {
    uint8_t *ram;
    struct hxfr_mem mem;
    struct hxfr_gpu gpu;
    struct hxfr_display display;
    struct hxfr_vring ring[2];
    struct hxfr_vring_elem *elem;
    int far;
};

static void drain(int fd)
{
    uint8_t buf[65536];
    while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0) {
    }
}

static void set_mem(struct ctx *c)
{
    struct hxfr_mem_desc d = {.gpa = 0, .size = RAM_SIZE, .uva = 0, .mmap_offset = 0};
    REQUIRE(hxfr__mem_set_local(&c->mem, &d, 1, &c->ram) == 0);
    for (int i = 0; i < 2; i++) {
        hxfr__vring_map(&c->ring[i], &c->mem);
    }
    hxfr__gpu_mem_changed(&c->gpu);
}

static void ring_init(struct hxfr_vring *vr, uint32_t num, uint64_t base, const struct hxfr_mem *m)
{
    hxfr__vring_init(vr);
    vr->num = num;
    vr->desc_uva = base;
    vr->avail_uva = base + 0x100;
    vr->used_uva = base + 0x200;
    vr->have_addr = true;
    vr->event_idx = vr->indirect = true;
    vr->started = vr->enabled = true;
    REQUIRE(hxfr__vring_map(vr, m) == 0);
    hxfr__vring_start(vr);
}

static void process(struct ctx *c, unsigned idx)
{
    struct hxfr_vring *vr = &c->ring[idx];
    for (unsigned budget = 64; budget > 0; budget--) {
        int r = hxfr__vring_pop(vr, &c->mem, c->elem);
        if (r == 0 || r == -EPIPE) {
            break;
        }
        uint32_t len = 0;
        if (r == 1) {
            /* Every segment must lie inside guest RAM. */
            for (unsigned i = 0; i < c->elem->n_out + c->elem->n_in; i++) {
                const struct hxfr_seg *s = &c->elem->seg[i];
                REQUIRE(s->p >= c->ram && s->p + s->len <= c->ram + RAM_SIZE);
            }
            if (idx == 0) {
                len = hxfr__gpu_ctrl(&c->gpu, c->elem);
                REQUIRE(len <= c->elem->in_bytes);
            } else {
                hxfr__gpu_cursor_cmd(&c->gpu, c->elem);
            }
        }
        if (c->elem->head < vr->num) {
            hxfr__vring_push(vr, c->elem->head, len);
        }
    }
    hxfr__vring_rearm(vr);
    for (int i = 0; i < 4 && hxfr__display_flush(&c->display) == 1; i++) {
        drain(c->far);
    }
    drain(c->far);
    REQUIRE(c->gpu.memory <= c->gpu.cfg.max_resource_memory);
}

static int queue_mode(const uint8_t *data, size_t size)
{
    struct ctx c;
    memset(&c, 0, sizeof(c));
    c.ram = calloc(1, RAM_SIZE);
    c.elem = malloc(sizeof(*c.elem));
    hxfr__mem_init(&c.mem);
    struct hxfr_gpu_config cfg;
    hxfr__gpu_config_init(&cfg);
    cfg.max_resource_memory = 4u << 20; /* keep the fuzzer's RSS small */
    cfg.max_outputs = 4;
    REQUIRE(hxfr__gpu_init(&c.gpu, &cfg, &c.mem) == 0);
    c.gpu.edid = true;
    REQUIRE(hxfr__display_init(&c.display, &c.gpu) == 0);
    int sv[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    c.far = sv[1];
    hxfr__display_set_socket(&c.display, sv[0]);
    set_mem(&c);
    ring_init(&c.ring[0], 16, 0x0, &c.mem);
    ring_init(&c.ring[1], 8, 0x400, &c.mem);

    size_t i = 0;
    while (i < size) {
        uint8_t op = data[i++] % 6;
        if (op == 0) {
            if (size - i < 4) {
                break;
            }
            uint32_t off = (uint32_t)(data[i] | data[i + 1] << 8);
            uint32_t len = (uint32_t)(data[i + 2] | data[i + 3] << 8);
            i += 4;
            if (len > size - i) {
                len = (uint32_t)(size - i);
            }
            if (len > RAM_SIZE - off) {
                len = RAM_SIZE - off;
            }
            memcpy(c.ram + off, data + i, len);
            i += len;
        } else if (op == 1 || op == 2) {
            process(&c, op - 1);
        } else if (op == 3) {
            hxfr__gpu_reset(&c.gpu);
            for (int k = 0; k < 2; k++) {
                hxfr__vring_start(&c.ring[k]);
            }
        } else if (op == 4) {
            set_mem(&c);
        } else {
            if (size - i < 5) {
                break;
            }
            hxfr_gpu_scanout_configure(&c.gpu, data[i] % 5,
                                       (uint32_t)(data[i + 1] | data[i + 2] << 8),
                                       (uint32_t)(data[i + 3] | data[i + 4] << 8));
            i += 5;
        }
    }
    hxfr__display_finish(&c.display);
    close(c.far);
    hxfr__gpu_finish(&c.gpu);
    REQUIRE(c.gpu.n_resources == 0);
    hxfr__mem_finish(&c.mem);
    free(c.elem);
    free(c.ram);
    return 0;
}

/* --- vhost-user mode ------------------------------------------------------------ */

struct vdev {
    struct hxfr_gpu gpu;
    struct hxfr_vhost vu;
};

static int v_get_config(void *d, uint32_t off, uint8_t *buf, uint32_t len)
{
    return hxfr__gpu_get_config(&((struct vdev *)d)->gpu, off, buf, len);
}

static int v_set_config(void *d, uint32_t off, const uint8_t *buf, uint32_t len)
{
    return hxfr__gpu_set_config(&((struct vdev *)d)->gpu, off, buf, len);
}

static void v_gpu_socket(void *d, int fd)
{
    (void)d;
    close(fd);
}

static void v_mem_changed(void *d)
{
    hxfr__gpu_mem_changed(&((struct vdev *)d)->gpu);
}

static void v_ring_changed(void *d, unsigned idx)
{
    REQUIRE(idx < HXFR_VHOST_MAX_RINGS);
    (void)d;
}

static void v_reset(void *d)
{
    hxfr__gpu_reset(&((struct vdev *)d)->gpu);
}

static void v_features(void *d, uint64_t f)
{
    ((struct vdev *)d)->gpu.edid = f & 2;
}

static const struct hxfr_vhost_ops vops = {
    .version = 1,
    .device_features = 2,
    .get_config = v_get_config,
    .set_config = v_set_config,
    .gpu_socket = v_gpu_socket,
    .mem_changed = v_mem_changed,
    .ring_changed = v_ring_changed,
    .reset = v_reset,
    .features = v_features,
};

static int vhost_mode(const uint8_t *data, size_t size)
{
    struct vdev *v = calloc(1, sizeof(*v));
    struct hxfr_gpu_config cfg;
    hxfr__gpu_config_init(&cfg);
    REQUIRE(hxfr__gpu_init(&v->gpu, &cfg, &v->vu.mem) == 0);
    /* Replies go to /dev/null: send() fails there, which the layer takes
     * like a front-end that went away mid-reply. */
    int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    hxfr__vhost_init(&v->vu, fd, 2, &vops, v);
    v->gpu.mem = &v->vu.mem;
    hxfr__vhost_feed(&v->vu, data, size, NULL, 0);
    for (int i = 0; i < 2; i++) {
        REQUIRE(v->vu.rings[i].num <= HXFR_VRING_MAX_NUM);
    }
    hxfr__vhost_finish(&v->vu);
    hxfr__gpu_finish(&v->gpu);
    close(fd);
    free(v);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    return (data[0] & 1) ? vhost_mode(data + 1, size - 1) : queue_mode(data + 1, size - 1);
}
