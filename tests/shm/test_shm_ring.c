/* lib/shm: the ring header's byte layout (golden bytes written by hand
 * from docs/protocol.md section 12.3), every validation rule with its
 * off-by-one neighbours, slot lookup, and the guest-side regions. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hxfr/shm.h>

#include "harness.h"

/* 4 slots of 1280x720 BGRA, slots from 4096 (protocol.md 12.8). */
static const uint8_t golden[HXFR_SHM_HEADER_SIZE] = {
    0x48, 0x58, 0x53, 0x4d, 0x01, 0x00, 0x00, 0x00, 0x40, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00,
    0x00, 0x40, 0x38, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
};

static struct hxfr_shm_header good(void)
{
    struct hxfr_shm_header h;
    CHECK_EQ(hxfr_shm_header_init(&h, 4, 1280 * 720 * 4), 0);
    return h;
}

TEST(header_golden_bytes)
{
    struct hxfr_shm_header h = good();
    CHECK_EQ(h.slot_size, 3686400);
    CHECK_EQ(h.data_offset, 4096);
    uint8_t out[HXFR_SHM_HEADER_SIZE];
    memset(out, 0xAA, sizeof(out));
    hxfr_shm_header_encode(out, &h);
    CHECK_MEM(out, golden, sizeof(golden));
    struct hxfr_shm_header back;
    hxfr_shm_header_decode(golden, &back);
    CHECK_EQ(back.magic, HXFR_SHM_MAGIC);
    CHECK_EQ(back.version, 1);
    CHECK_EQ(back.header_size, 64);
    CHECK_EQ(back.slot_count, 4);
    CHECK_EQ(back.slot_size, 3686400);
    CHECK_EQ(back.data_offset, 4096);
    CHECK_EQ(back.flags, 0);
    CHECK_EQ(hxfr_shm_ring_bytes(&back), 4096 + 4 * 3686400ull);
}

TEST(header_init_limits)
{
    struct hxfr_shm_header h;
    CHECK_EQ(hxfr_shm_header_init(&h, 0, 4096), -EINVAL);
    CHECK_EQ(hxfr_shm_header_init(&h, 65, 4096), -EINVAL);
    CHECK_EQ(hxfr_shm_header_init(&h, 64, 0), -EINVAL);
    CHECK_EQ(hxfr_shm_header_init(&h, 1, HXFR_SHM_MAX_SLOT_SIZE + 1), -EINVAL);
    CHECK_EQ(hxfr_shm_header_init(&h, 64, HXFR_SHM_MAX_SLOT_SIZE), 0);
    CHECK_EQ(hxfr_shm_header_init(&h, 1, 1), 0);
    CHECK_EQ(h.slot_size, 4096);
}

TEST(validate_accepts_exact_fit)
{
    struct hxfr_shm_header h = good();
    struct hxfr_shm_layout l;
    uint64_t need = hxfr_shm_ring_bytes(&h);
    CHECK_EQ(hxfr_shm_layout_validate(&h, 0, need, &l), 0);
    CHECK_EQ(l.slot_count, 4);
    CHECK_EQ(l.ring_size, need);
    /* One byte short: the region is smaller than the header claims. */
    CHECK_EQ(hxfr_shm_layout_validate(&h, 0, need - 1, &l), -ERANGE);
    /* At an offset, the same arithmetic. */
    CHECK_EQ(hxfr_shm_layout_validate(&h, 4096, need + 4096, &l), 0);
    CHECK_EQ(l.ring_offset, 4096);
    CHECK_EQ(hxfr_shm_layout_validate(&h, 4097, need + 4096, &l), -ERANGE);
}

TEST(validate_rejects_each_field)
{
    struct hxfr_shm_layout l;
    const uint64_t big = 1ull << 32;
    struct hxfr_shm_header h = good();
    h.magic = 0x4D535849;
    CHECK_EQ(hxfr_shm_layout_validate(&h, 0, big, &l), -EBADMSG);
    h = good();
    h.version = 2;
    CHECK_EQ(hxfr_shm_layout_validate(&h, 0, big, &l), -EPROTONOSUPPORT);
    h = good();
    h.header_size = 65;
    CHECK_EQ(hxfr_shm_layout_validate(&h, 0, big, &l), -EINVAL);
    h = good();
    h.flags = 1;
    CHECK_EQ(hxfr_shm_layout_validate(&h, 0, big, &l), -EINVAL);
    h = good();
    h.slot_count = 0;
    CHECK_EQ(hxfr_shm_layout_validate(&h, 0, big, &l), -EINVAL);
    h.slot_count = 65;
    CHECK_EQ(hxfr_shm_layout_validate(&h, 0, big, &l), -EINVAL);
    h.slot_count = 64;
    h.slot_size = 4096;
    CHECK_EQ(hxfr_shm_layout_validate(&h, 0, big, &l), 0);
    h = good();
    h.slot_size = 0;
    CHECK_EQ(hxfr_shm_layout_validate(&h, 0, big, &l), -EINVAL);
    h.slot_size = 100; /* not a multiple of 64 */
    CHECK_EQ(hxfr_shm_layout_validate(&h, 0, big, &l), -EINVAL);
    h.slot_size = HXFR_SHM_MAX_SLOT_SIZE + 64;
    CHECK_EQ(hxfr_shm_layout_validate(&h, 0, 64ull << 32, &l), -EINVAL);
    h = good();
    h.data_offset = 0;
    CHECK_EQ(hxfr_shm_layout_validate(&h, 0, big, &l), -EINVAL);
    h.data_offset = 63;
    CHECK_EQ(hxfr_shm_layout_validate(&h, 0, big, &l), -EINVAL);
    h.data_offset = 64;
    CHECK_EQ(hxfr_shm_layout_validate(&h, 0, big, &l), 0);
    h.data_offset = 96; /* not a multiple of 64 */
    CHECK_EQ(hxfr_shm_layout_validate(&h, 0, big, &l), -EINVAL);
}

TEST(validate_overflowing_values)
{
    struct hxfr_shm_layout l;
    struct hxfr_shm_header h = good();
    /* Offsets and sizes near 2^64 must not wrap into "fits". */
    CHECK_EQ(hxfr_shm_layout_validate(&h, UINT64_MAX - 10, UINT64_MAX, &l), -ERANGE);
    CHECK_EQ(hxfr_shm_layout_validate(&h, UINT64_MAX - 63, UINT64_MAX, &l), -ERANGE);
    h.data_offset = UINT64_MAX - 63;
    CHECK_EQ(hxfr_shm_layout_validate(&h, 0, UINT64_MAX, &l), -ERANGE);
    h.data_offset = (UINT64_MAX / 64) * 64;
    CHECK_EQ(hxfr_shm_layout_validate(&h, 64, UINT64_MAX, &l), -ERANGE);
    /* A region below the header size. */
    h = good();
    CHECK_EQ(hxfr_shm_layout_validate(&h, 0, 63, &l), -ERANGE);
    CHECK_EQ(hxfr_shm_layout_validate(&h, 0, 0, &l), -ERANGE);
}

TEST(slot_offset_bounds)
{
    struct hxfr_shm_header h = good();
    struct hxfr_shm_layout l;
    CHECK_EQ(hxfr_shm_layout_validate(&h, 8192, 8192 + hxfr_shm_ring_bytes(&h), &l), 0);
    struct hxfr_geometry g;
    CHECK_EQ(hxfr_geometry_compute(HXFR_FORMAT_ARGB8888, 1280, 720, 5120, 0, &g), 0);
    uint64_t off;
    CHECK_EQ(hxfr_shm_slot_offset(&l, 0, &g, &off), 0);
    CHECK_EQ(off, 8192 + 4096);
    CHECK_EQ(hxfr_shm_slot_offset(&l, 3, &g, &off), 0);
    CHECK_EQ(off, 8192 + 4096 + 3 * 3686400ull);
    CHECK_EQ(hxfr_shm_slot_offset(&l, 4, &g, &off), -ERANGE);
    CHECK_EQ(hxfr_shm_slot_offset(&l, UINT32_MAX, &g, &off), -ERANGE);
    /* One padding byte per row more than the slot holds. */
    CHECK_EQ(hxfr_geometry_compute(HXFR_FORMAT_ARGB8888, 1280, 720, 5124, 0, &g), 0);
    CHECK_EQ(hxfr_shm_slot_offset(&l, 0, &g, &off), -EMSGSIZE);
}

TEST(memfd_region_is_sealed)
{
    struct hxfr_shm_region r;
    CHECK_EQ(hxfr_shm_region_memfd(&r, "test", 65536), 0);
    CHECK(r.base != NULL);
    CHECK_EQ(r.size, 65536);
    int seals = fcntl(r.fd, F_GET_SEALS);
    CHECK(seals >= 0);
    CHECK((seals & (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)) ==
          (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL));
    CHECK(ftruncate(r.fd, 4096) < 0);
    r.base[65535] = 7;
    hxfr_shm_region_finish(&r);
    CHECK(r.base == NULL);
    hxfr_shm_region_finish(&r);
    CHECK_EQ(hxfr_shm_region_memfd(&r, "test", 0), -EINVAL);
}

TEST(file_region_maps_whole_file)
{
    char dir[] = "/tmp/hxfr-shm-test-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[64];
    snprintf(path, sizeof(path), "%s/region", dir);
    struct hxfr_shm_region r;
    CHECK_EQ(hxfr_shm_region_open(&r, path), -ENOENT);
    int fd = open(path, O_RDWR | O_CREAT, 0600);
    CHECK(fd >= 0);
    CHECK_EQ(hxfr_shm_region_open(&r, path), -EINVAL); /* empty */
    CHECK_EQ(ftruncate(fd, 3 * 4096), 0);
    CHECK_EQ(hxfr_shm_region_open(&r, path), 0);
    CHECK_EQ(r.size, 3 * 4096);
    CHECK_EQ(r.fd, -1);
    r.base[5] = 42;
    uint8_t b[8];
    CHECK_EQ(pread(fd, b, 8, 0), 8);
    CHECK_EQ(b[5], 42);
    hxfr_shm_region_finish(&r);
    close(fd);
    CHECK_EQ(hxfr_shm_region_open(&r, dir), -EISDIR); /* a folder */
    unlink(path);
    rmdir(dir);
}

TEST(find_ivshmem_reports_absence)
{
    /* This machine has no ivshmem device (tests/vm covers a guest that
     * has one); the lookup must say so rather than invent a path. */
    char buf[256];
    int r = hxfr_shm_find_ivshmem(buf, sizeof(buf));
    CHECK(r == -ENOENT || (r == 0 && strstr(buf, "/resource2") != NULL));
    if (r == 0) {
        CHECK_EQ(hxfr_shm_find_ivshmem(buf, 8), -ENAMETOOLONG);
    }
}
