/* Guest RAM as the vhost-user front-end shares it: up to 8 regions, each a
 * file descriptor (QEMU's memory-backend-memfd) that we map, with its guest
 * physical address (GPA) and the front-end's own virtual address (UVA,
 * which vring addresses use). Every lookup checks the whole range [addr,
 * addr + len) against one region in 64-bit arithmetic that cannot wrap.
 */
#ifndef HXFR_GPU_MEM_H
#define HXFR_GPU_MEM_H

#include <stddef.h>
#include <stdint.h>

#define HXFR_MEM_MAX_REGIONS 8

/* One region as the front-end describes it (VHOST_USER_SET_MEM_TABLE). */
struct hxfr_mem_desc {
    uint64_t gpa;
    uint64_t size;
    uint64_t uva;
    uint64_t mmap_offset; /* where the region starts in its fd */
};

struct hxfr_mem_region {
    uint64_t gpa;
    uint64_t size;
    uint64_t uva;
    uint8_t *host; /* our address of the region's first byte */
    void *map;     /* what to munmap(); NULL when the caller owns it */
    size_t map_len;
};

/* A replaced table whose mappings are still held (see hxfr__mem_hold). */
struct hxfr_mem_retired {
    uint64_t generation;
    unsigned holds;
    struct hxfr_mem_region r[HXFR_MEM_MAX_REGIONS];
    unsigned n;
    struct hxfr_mem_retired *next;
};

struct hxfr_mem {
    struct hxfr_mem_region r[HXFR_MEM_MAX_REGIONS];
    unsigned n;
    /* Incremented by every successful set: host pointers taken before a
     * change are stale once it differs. */
    uint64_t generation;
    unsigned holds; /* on the current table */
    struct hxfr_mem_retired *retired;
};

/* Empty table. */
void hxfr__mem_init(struct hxfr_mem *mem);
/* Unmaps every region we mapped, held or not (retired tables too); the
 * table is empty afterwards. */
void hxfr__mem_finish(struct hxfr_mem *mem);

/* Keeps the current table's mappings in place until the matching
 * hxfr__mem_release(): a set that replaces the table then retires it
 * instead of unmapping it, so host pointers taken from it stay readable
 * (they no longer follow the guest's layout). Returns the hold, the
 * table's generation. */
uint64_t hxfr__mem_hold(struct hxfr_mem *mem);
/* Ends a hold; the last hold of a retired table unmaps it. Returns 0, or
 * -ENOENT for a hold that does not exist (released twice, or from before
 * a finish). */
int hxfr__mem_release(struct hxfr_mem *mem, uint64_t hold);
/* Tables replaced but still held (tests, diagnostics). */
unsigned hxfr__mem_retired_count(const struct hxfr_mem *mem);

/* Validates n descriptions (sizes non-zero, no wrap, no two regions
 * overlapping in GPA or UVA), maps fds[i] for region i (read-write, shared;
 * the file must be at least mmap_offset + size bytes) and, only if every
 * region mapped, replaces the current table (unmapping the old one, or
 * retiring it while it is held). fds are borrowed: the caller closes them
 * (the mappings stay). Returns 0, -EINVAL (bad description), -EFBIG (file
 * too small), -ENOMEM (no room to retire a held table) or the -errno of
 * fstat/mmap; on failure the current table is unchanged. */
int hxfr__mem_set(struct hxfr_mem *mem, const struct hxfr_mem_desc *d, unsigned n, const int *fds);

/* The same with memory the caller already has (tests, the fuzz target):
 * host[i] is region i's first byte, borrowed until the next set/finish. */
int hxfr__mem_set_local(struct hxfr_mem *mem, const struct hxfr_mem_desc *d, unsigned n,
                        uint8_t *const *host);

/* Our pointer to [gpa, gpa + len) if that range lies inside one region,
 * else NULL. len 0 is a valid (empty) range at a mapped address. */
uint8_t *hxfr__mem_gpa(const struct hxfr_mem *mem, uint64_t gpa, uint64_t len);
/* The same for a front-end address. */
uint8_t *hxfr__mem_uva(const struct hxfr_mem *mem, uint64_t uva, uint64_t len);
/* How many bytes from gpa (at most len) lie in the region holding gpa;
 * *host gets our address of gpa. 0 when gpa is in no region. */
uint64_t hxfr__mem_gpa_span(const struct hxfr_mem *mem, uint64_t gpa, uint64_t len, uint8_t **host);

#endif
