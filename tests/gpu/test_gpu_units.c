/* In-process unit tests of hxfr-gpu's layers: guest-memory lookups, the
 * split-ring walker, EDID blocks, and commands fed straight into the
 * device core (no process, no sockets). */
#include <linux/virtio_gpu.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "edid.h"
#include "gpu-private.h"
#include "gpucheck.h"
#include "harness.h"
#include "mem.h"
#include "vring.h"

#define RAM (1u << 20)

static uint8_t *ram_setup(struct hxfr_mem *mem, uint64_t gpa_base)
{
    uint8_t *ram = calloc(1, RAM);
    struct hxfr_mem_desc d = {.gpa = gpa_base, .size = RAM, .uva = 0x1000000, .mmap_offset = 0};
    hxfr__mem_init(mem);
    CHECK_EQ(hxfr__mem_set_local(mem, &d, 1, &ram), 0);
    return ram;
}

TEST(mem_ranges_cannot_wrap)
{
    struct hxfr_mem mem;
    uint8_t *ram = ram_setup(&mem, 0x10000);
    CHECK(hxfr__mem_gpa(&mem, 0x10000, RAM) == ram);
    CHECK(hxfr__mem_gpa(&mem, 0x10000, RAM + 1) == NULL);
    CHECK(hxfr__mem_gpa(&mem, 0x10000 + RAM - 1, 1) == ram + RAM - 1);
    CHECK(hxfr__mem_gpa(&mem, 0x10000 + RAM - 1, 2) == NULL);
    CHECK(hxfr__mem_gpa(&mem, 0xffff, 1) == NULL);
    CHECK(hxfr__mem_gpa(&mem, UINT64_MAX - 15, 32) == NULL);
    CHECK(hxfr__mem_gpa(&mem, 0x10010, UINT64_MAX) == NULL);
    CHECK(hxfr__mem_uva(&mem, 0x1000000 + 8, 8) == ram + 8);
    CHECK(hxfr__mem_uva(&mem, 0x1000000 + RAM, 1) == NULL);
    uint8_t *p;
    CHECK_EQ(hxfr__mem_gpa_span(&mem, 0x10000 + RAM - 4, 100, &p), 4);
    CHECK_EQ(hxfr__mem_gpa_span(&mem, 0x10000 + RAM, 100, &p), 0);
    /* Overlapping or wrapping regions are refused, the table unchanged. */
    struct hxfr_mem_desc bad[2] = {{0, RAM, 0, 0}, {RAM - 1, RAM, RAM * 4, 0}};
    uint8_t *hosts[2] = {ram, ram};
    CHECK_EQ(hxfr__mem_set_local(&mem, bad, 2, hosts), -EINVAL);
    struct hxfr_mem_desc wrap = {UINT64_MAX - 10, 100, 0, 0};
    CHECK_EQ(hxfr__mem_set_local(&mem, &wrap, 1, hosts), -EINVAL);
    CHECK(hxfr__mem_gpa(&mem, 0x10000, 1) == ram);
    hxfr__mem_finish(&mem);
    free(ram);
}

static bool mapped(const void *p)
{
    /* msync on an unmapped page fails with ENOMEM. */
    void *page = (void *)((uintptr_t)p & ~(uintptr_t)4095);
    return msync(page, 4096, MS_ASYNC) == 0;
}

static int memfd_of(uint64_t size, uint8_t byte)
{
    int fd = memfd_create("hxfr-gpu-units", MFD_CLOEXEC);
    CHECK(fd >= 0);
    CHECK(ftruncate(fd, (off_t)size) == 0);
    uint8_t *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(p != MAP_FAILED);
    memset(p, byte, size);
    munmap(p, size);
    return fd;
}

TEST(mem_holds_keep_replaced_tables_mapped)
{
    /* A reader on another thread holds guest RAM: a new memory table
     * retires the old mappings instead of unmapping them, the last
     * release unmaps them; unheld tables are unmapped at once. */
    struct hxfr_mem mem;
    hxfr__mem_init(&mem);
    struct hxfr_mem_desc d = {.gpa = 0, .size = 1u << 16, .uva = 0x1000000};
    int a = memfd_of(d.size, 0x11), b = memfd_of(d.size, 0x22), c = memfd_of(d.size, 0x33);
    CHECK_EQ(hxfr__mem_set(&mem, &d, 1, &a), 0);
    const uint8_t *pa = hxfr__mem_gpa(&mem, 0x100, 1);
    uint64_t h1 = hxfr__mem_hold(&mem), h2 = hxfr__mem_hold(&mem);
    CHECK_EQ(h1, h2);
    CHECK_EQ(hxfr__mem_set(&mem, &d, 1, &b), 0);
    CHECK_EQ(hxfr__mem_retired_count(&mem), 1);
    CHECK(mapped(pa) && *pa == 0x11); /* the old table, still readable */
    CHECK_EQ(*hxfr__mem_gpa(&mem, 0x100, 1), 0x22);
    CHECK_EQ(hxfr__mem_release(&mem, h1), 0);
    CHECK(mapped(pa));
    CHECK_EQ(hxfr__mem_release(&mem, h2), 0);
    CHECK_EQ(hxfr__mem_retired_count(&mem), 0);
    CHECK(!mapped(pa));
    CHECK_EQ(hxfr__mem_release(&mem, h2), -ENOENT); /* released twice */
    /* Not held: replaced and unmapped at once. */
    const uint8_t *pb = hxfr__mem_gpa(&mem, 0x100, 1);
    CHECK_EQ(hxfr__mem_set(&mem, &d, 1, &c), 0);
    CHECK_EQ(hxfr__mem_retired_count(&mem), 0);
    CHECK(!mapped(pb));
    /* A hold on the current table ends with a plain release; finish
     * unmaps a retired table that is still held. */
    uint64_t h3 = hxfr__mem_hold(&mem);
    const uint8_t *pc = hxfr__mem_gpa(&mem, 0x100, 1);
    CHECK_EQ(hxfr__mem_set(&mem, &d, 1, &a), 0);
    CHECK(mapped(pc));
    hxfr__mem_finish(&mem);
    CHECK(!mapped(pc));
    CHECK_EQ(hxfr__mem_release(&mem, h3), -ENOENT);
    close(a);
    close(b);
    close(c);
}

/* A ring of 8 at gpa/uva 0 in ram: desc at 0, avail at 0x100, used 0x200. */
static void ring_setup(struct hxfr_vring *vr, struct hxfr_mem *mem)
{
    hxfr__vring_init(vr);
    vr->num = 8;
    vr->desc_uva = 0x1000000;
    vr->avail_uva = 0x1000100;
    vr->used_uva = 0x1000200;
    vr->have_addr = true;
    vr->indirect = true;
    vr->started = vr->enabled = true;
    CHECK_EQ(hxfr__vring_map(vr, mem), 0);
    hxfr__vring_start(vr);
}

static void desc(uint8_t *ram, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
                 uint16_t next)
{
    uint8_t *d = ram + 16 * i;
    wle64(d, addr);
    wle32(d + 8, len);
    d[12] = (uint8_t)flags;
    d[13] = (uint8_t)(flags >> 8);
    d[14] = (uint8_t)next;
    d[15] = (uint8_t)(next >> 8);
}

static void publish(uint8_t *ram, uint16_t idx, uint16_t head)
{
    ram[0x100 + 4 + 2 * (idx % 8)] = (uint8_t)head;
    ram[0x100 + 4 + 2 * (idx % 8) + 1] = (uint8_t)(head >> 8);
    uint16_t n = (uint16_t)(idx + 1);
    ram[0x102] = (uint8_t)n;
    ram[0x103] = (uint8_t)(n >> 8);
}

TEST(vring_walks_good_chains_and_refuses_bad_ones)
{
    struct hxfr_mem mem;
    uint8_t *ram = ram_setup(&mem, 0);
    struct hxfr_vring vr;
    ring_setup(&vr, &mem);
    struct hxfr_vring_elem *e = malloc(sizeof(*e));
    /* Good: 2 readable + 1 writable. */
    desc(ram, 0, 0x1000, 24, 1, 1);
    desc(ram, 1, 0x2000, 8, 1, 2);
    desc(ram, 2, 0x3000, 64, 2, 0);
    publish(ram, 0, 0);
    CHECK_EQ(hxfr__vring_pop(&vr, &mem, e), 1);
    CHECK_EQ(e->n_out, 2);
    CHECK_EQ(e->n_in, 1);
    CHECK_EQ(e->out_bytes, 32);
    CHECK_EQ(e->in_bytes, 64);
    CHECK_EQ(hxfr__vring_pop(&vr, &mem, e), 0);
    /* A loop. */
    desc(ram, 3, 0x1000, 8, 1, 4);
    desc(ram, 4, 0x1000, 8, 1, 3);
    publish(ram, 1, 3);
    CHECK_EQ(hxfr__vring_pop(&vr, &mem, e), -EBADMSG);
    CHECK_EQ(e->head, 3);
    /* Outside RAM; length that wraps; next out of range; readable after
     * writable; indirect with NEXT. */
    desc(ram, 5, RAM - 4, 8, 0, 0);
    publish(ram, 2, 5);
    CHECK_EQ(hxfr__vring_pop(&vr, &mem, e), -EBADMSG);
    desc(ram, 5, UINT64_MAX - 3, 8, 0, 0);
    publish(ram, 3, 5);
    CHECK_EQ(hxfr__vring_pop(&vr, &mem, e), -EBADMSG);
    desc(ram, 5, 0x1000, 8, 1, 99);
    publish(ram, 4, 5);
    CHECK_EQ(hxfr__vring_pop(&vr, &mem, e), -EBADMSG);
    desc(ram, 5, 0x1000, 8, 3, 6);
    desc(ram, 6, 0x1000, 8, 0, 0);
    publish(ram, 5, 5);
    CHECK_EQ(hxfr__vring_pop(&vr, &mem, e), -EBADMSG);
    desc(ram, 5, 0x4000, 32, 4 | 1, 6);
    publish(ram, 6, 5);
    CHECK_EQ(hxfr__vring_pop(&vr, &mem, e), -EBADMSG);
    /* A good indirect table, then a nested one. */
    desc(ram + 0x4000, 0, 0x1000, 24, 1, 1);
    desc(ram + 0x4000, 1, 0x3000, 16, 2, 0);
    desc(ram, 7, 0x4000, 32, 4, 0);
    publish(ram, 7, 7);
    CHECK_EQ(hxfr__vring_pop(&vr, &mem, e), 1);
    CHECK_EQ(e->n_out + e->n_in, 2);
    desc(ram + 0x4000, 0, 0x4000, 32, 4, 0);
    publish(ram, 8, 7);
    CHECK_EQ(hxfr__vring_pop(&vr, &mem, e), -EBADMSG);
    /* The driver claims 9 new entries in a ring of 8: broken. */
    uint16_t idx = (uint16_t)(vr.last_avail + 9);
    ram[0x102] = (uint8_t)idx;
    ram[0x103] = (uint8_t)(idx >> 8);
    CHECK_EQ(hxfr__vring_pop(&vr, &mem, e), -EPIPE);
    CHECK(!hxfr__vring_ready(&vr));
    CHECK_EQ(vr.malformed, 7);
    free(e);
    hxfr__mem_finish(&mem);
    free(ram);
}

TEST(vring_reads_and_writes_across_segments)
{
    struct hxfr_mem mem;
    uint8_t *ram = ram_setup(&mem, 0);
    struct hxfr_vring vr;
    ring_setup(&vr, &mem);
    struct hxfr_vring_elem *e = malloc(sizeof(*e));
    memcpy(ram + 0x1000, "abc", 3);
    memcpy(ram + 0x2000, "defgh", 5);
    desc(ram, 0, 0x1000, 3, 1, 1);
    desc(ram, 1, 0x2000, 5, 1, 2);
    desc(ram, 2, 0x3000, 2, 3, 3);
    desc(ram, 3, 0x3100, 10, 2, 0);
    publish(ram, 0, 0);
    CHECK_EQ(hxfr__vring_pop(&vr, &mem, e), 1);
    char buf[16] = {0};
    CHECK_EQ(hxfr__elem_read(e, 1, buf, 16), 7);
    CHECK(memcmp(buf, "bcdefgh", 7) == 0);
    CHECK_EQ(hxfr__elem_write(e, "0123456789AB", 12), 12);
    CHECK(memcmp(ram + 0x3000, "01", 2) == 0 && memcmp(ram + 0x3100, "23456789AB", 10) == 0);
    CHECK_EQ(hxfr__elem_write(e, "0123456789ABCDEF", 16), 12);
    hxfr__vring_push(&vr, e->head, 12);
    CHECK_EQ(ram[0x202], 1);
    CHECK_EQ(le32(ram + 0x204), 0);
    CHECK_EQ(le32(ram + 0x208), 12);
    free(e);
    hxfr__mem_finish(&mem);
    free(ram);
}

TEST(edid_blocks_are_consistent)
{
    static const uint32_t sizes[][2] = {{1920, 1080}, {1, 1},       {640, 480},   {4095, 4095},
                                        {4096, 2160}, {5120, 2880}, {8192, 8192}, {7680, 4320}};
    uint8_t e[HXFR_EDID_SIZE];
    for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        CHECK_EQ(hxfr__edid_build(e, sizes[i][0], sizes[i][1], i), HXFR_EDID_SIZE);
        for (int b = 0; b < 2; b++) {
            uint8_t sum = 0;
            for (int k = 0; k < 128; k++) {
                sum = (uint8_t)(sum + e[128 * b + k]);
            }
            CHECK_EQ(sum, 0);
        }
        /* The first detailed timing has a plausible clock. */
        uint32_t clk = e[54] | e[55] << 8;
        CHECK(clk > 0);
        CHECK_EQ(e[128], 0x70);
    }
    CHECK_EQ(hxfr__edid_build(e, 0, 100, 0), 0);
    CHECK_EQ(hxfr__edid_build(e, 8193, 100, 0), 0);
}

/* The device core fed one command at a time. */
struct core {
    struct hxfr_mem mem;
    uint8_t *ram;
    struct hxfr_gpu gpu;
    struct hxfr_vring_elem e;
};

static uint32_t core_cmd(struct core *c, const uint8_t *req, uint32_t len, uint8_t *resp,
                         uint32_t cap)
{
    memcpy(c->ram + 0x10000, req, len);
    memset(c->ram + 0x80000, 0xaa, cap);
    c->e.n_out = 1;
    c->e.n_in = 1;
    c->e.seg[0] = (struct hxfr_seg){c->ram + 0x10000, len};
    c->e.seg[1] = (struct hxfr_seg){c->ram + 0x80000, cap};
    c->e.out_bytes = len;
    c->e.in_bytes = cap;
    uint32_t n = hxfr__gpu_ctrl(&c->gpu, &c->e);
    memcpy(resp, c->ram + 0x80000, cap);
    return n;
}

TEST(core_commands_check_their_arguments)
{
    struct core *c = calloc(1, sizeof(*c));
    c->ram = ram_setup(&c->mem, 0);
    struct hxfr_gpu_config cfg;
    hxfr__gpu_config_init(&cfg);
    cfg.max_outputs = 2;
    CHECK_EQ(hxfr__gpu_init(&c->gpu, &cfg, &c->mem), 0);
    uint8_t req[64] = {0}, resp[24];
    wle32(req, VIRTIO_GPU_CMD_RESOURCE_CREATE_2D);
    wle32(req + 24, 1);
    wle32(req + 28, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM);
    wle32(req + 32, 16384);
    wle32(req + 36, 16384); /* 1 GiB: over the 256 MiB cap */
    CHECK_EQ(core_cmd(c, req, 40, resp, 24), 24);
    CHECK_EQ(le32(resp), VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY);
    wle32(req + 32, 16385);
    core_cmd(c, req, 40, resp, 24);
    CHECK_EQ(le32(resp), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
    wle32(req + 32, 64);
    wle32(req + 36, 64);
    core_cmd(c, req, 40, resp, 24);
    CHECK_EQ(le32(resp), VIRTIO_GPU_RESP_OK_NODATA);
    /* SET_SCANOUT on scanout 2 of 2. */
    memset(req, 0, sizeof(req));
    wle32(req, VIRTIO_GPU_CMD_SET_SCANOUT);
    wle32(req + 32, 64);
    wle32(req + 36, 64);
    wle32(req + 40, 2);
    wle32(req + 44, 1);
    core_cmd(c, req, 48, resp, 24);
    CHECK_EQ(le32(resp), VIRTIO_GPU_RESP_ERR_INVALID_SCANOUT_ID);
    wle32(req + 40, 1);
    core_cmd(c, req, 48, resp, 24);
    CHECK_EQ(le32(resp), VIRTIO_GPU_RESP_OK_NODATA);
    struct hxfr_gpu_scanout_info si;
    CHECK_EQ(hxfr_gpu_scanout_get(&c->gpu, 1, &si), 0);
    CHECK_EQ(si.resource_id, 1);
    CHECK_EQ(hxfr_gpu_scanout_get(&c->gpu, 2, &si), -EINVAL);
    /* UNREF blanks the scanout. */
    memset(req, 0, sizeof(req));
    wle32(req, VIRTIO_GPU_CMD_RESOURCE_UNREF);
    wle32(req + 24, 1);
    core_cmd(c, req, 32, resp, 24);
    CHECK_EQ(le32(resp), VIRTIO_GPU_RESP_OK_NODATA);
    hxfr_gpu_scanout_get(&c->gpu, 1, &si);
    CHECK_EQ(si.resource_id, 0);
    CHECK_EQ(c->gpu.memory, 0);
    hxfr__gpu_finish(&c->gpu);
    hxfr__mem_finish(&c->mem);
    free(c->ram);
    free(c);
}

struct holder {
    unsigned calls, released;
    uint64_t token;
};

static int hold_flush(void *data, uint32_t scanout, uint32_t resource,
                      const struct hxfr_gpu_rect *r, uint64_t token)
{
    struct holder *h = data;
    (void)scanout;
    (void)resource;
    (void)r;
    h->calls++;
    h->token = token;
    return HXFR_GPU_FLUSH_HOLD;
}

static void on_released(void *data)
{
    ((struct holder *)data)->released++;
}

static void core_simple(struct core *c, uint32_t type, const uint32_t *args, unsigned n,
                        uint32_t expect)
{
    uint8_t req[64] = {0}, resp[24];
    wle32(req, type);
    for (unsigned i = 0; i < n; i++) {
        wle32(req + 24 + 4 * i, args[i]);
    }
    CHECK_EQ(core_cmd(c, req, 24 + 4 * n, resp, 24), 24);
    CHECK_EQ(le32(resp), expect);
}

TEST(flush_holds_count_every_scanout_and_tokens_go_stale)
{
    struct core *c = calloc(1, sizeof(*c));
    c->ram = ram_setup(&c->mem, 0);
    struct hxfr_gpu_config cfg;
    hxfr__gpu_config_init(&cfg);
    CHECK_EQ(hxfr__gpu_init(&c->gpu, &cfg, &c->mem), 0);
    struct holder h = {0};
    c->gpu.flush_released = on_released;
    c->gpu.flush_released_data = &h;
    const struct hxfr_gpu_listener l = {.data = &h, .flush = hold_flush};
    CHECK(hxfr_gpu_add_listener(&c->gpu, &l) >= 0);
    const uint32_t create[] = {1, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, 64, 64};
    core_simple(c, VIRTIO_GPU_CMD_RESOURCE_CREATE_2D, create, 4, VIRTIO_GPU_RESP_OK_NODATA);
    /* Scanouts 0 and 1 show the left and right halves of resource 1. */
    const uint32_t left[] = {0, 0, 32, 64, 0, 1}, right[] = {32, 0, 32, 64, 1, 1};
    core_simple(c, VIRTIO_GPU_CMD_SET_SCANOUT, left, 6, VIRTIO_GPU_RESP_OK_NODATA);
    core_simple(c, VIRTIO_GPU_CMD_SET_SCANOUT, right, 6, VIRTIO_GPU_RESP_OK_NODATA);
    const uint32_t flush[] = {0, 0, 64, 64, 1, 0};
    core_simple(c, VIRTIO_GPU_CMD_RESOURCE_FLUSH, flush, 6, VIRTIO_GPU_RESP_OK_NODATA);
    CHECK_EQ(h.calls, 2);
    CHECK(hxfr__gpu_held(&c->gpu));
    uint64_t first = h.token;
    CHECK_EQ(hxfr_gpu_flush_done(&c->gpu, first + 1), -ENOENT);
    CHECK_EQ(hxfr_gpu_flush_done(&c->gpu, first), 0);
    CHECK(hxfr__gpu_held(&c->gpu));
    CHECK_EQ(h.released, 0);
    CHECK_EQ(hxfr_gpu_flush_done(&c->gpu, first), 0);
    CHECK(!hxfr__gpu_held(&c->gpu));
    CHECK_EQ(h.released, 1);
    CHECK_EQ(hxfr_gpu_flush_done(&c->gpu, first), -ENOENT); /* more dones than holds */
    /* A flush no scanout shows is not held; the next one gets a new
     * token, and a ring stop or reset (unhold) makes it stale. */
    core_simple(c, VIRTIO_GPU_CMD_SET_SCANOUT, (const uint32_t[]){0, 0, 0, 0, 0, 0}, 6,
                VIRTIO_GPU_RESP_OK_NODATA);
    core_simple(c, VIRTIO_GPU_CMD_SET_SCANOUT, (const uint32_t[]){0, 0, 0, 0, 1, 0}, 6,
                VIRTIO_GPU_RESP_OK_NODATA);
    core_simple(c, VIRTIO_GPU_CMD_RESOURCE_FLUSH, flush, 6, VIRTIO_GPU_RESP_OK_NODATA);
    CHECK(!hxfr__gpu_held(&c->gpu));
    CHECK_EQ(h.calls, 2);
    core_simple(c, VIRTIO_GPU_CMD_SET_SCANOUT, left, 6, VIRTIO_GPU_RESP_OK_NODATA);
    core_simple(c, VIRTIO_GPU_CMD_RESOURCE_FLUSH, flush, 6, VIRTIO_GPU_RESP_OK_NODATA);
    CHECK(h.token != first);
    CHECK(hxfr__gpu_held(&c->gpu));
    hxfr__gpu_reset(&c->gpu);
    CHECK(!hxfr__gpu_held(&c->gpu));
    CHECK_EQ(hxfr_gpu_flush_done(&c->gpu, h.token), -ENOENT);
    CHECK_EQ(h.released, 1);
    hxfr__gpu_finish(&c->gpu);
    hxfr__mem_finish(&c->mem);
    free(c->ram);
    free(c);
}
