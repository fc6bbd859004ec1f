/* Guest RAM mappings (see mem.h). The front-end (QEMU) is trusted to give
 * the guest's memory, but not to be bug-free, and the guest picks every
 * address that is looked up here: all range checks are done as
 * "offset <= size && len <= size - offset" so nothing can wrap. */
#include "mem.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

void hxfr__mem_init(struct hxfr_mem *mem)
{
    memset(mem, 0, sizeof(*mem));
}

static void unmap_all(struct hxfr_mem_region *r, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        if (r[i].map != NULL) {
            munmap(r[i].map, r[i].map_len);
        }
    }
}

void hxfr__mem_finish(struct hxfr_mem *mem)
{
    unmap_all(mem->r, mem->n);
    while (mem->retired != NULL) {
        struct hxfr_mem_retired *t = mem->retired;
        mem->retired = t->next;
        unmap_all(t->r, t->n);
        free(t);
    }
    uint64_t gen = mem->generation;
    memset(mem, 0, sizeof(*mem));
    mem->generation = gen + 1;
}

uint64_t hxfr__mem_hold(struct hxfr_mem *mem)
{
    mem->holds++;
    return mem->generation;
}

int hxfr__mem_release(struct hxfr_mem *mem, uint64_t hold)
{
    if (hold == mem->generation) {
        if (mem->holds == 0) {
            return -ENOENT;
        }
        mem->holds--;
        return 0;
    }
    for (struct hxfr_mem_retired **pp = &mem->retired; *pp != NULL; pp = &(*pp)->next) {
        struct hxfr_mem_retired *t = *pp;
        if (t->generation != hold) {
            continue;
        }
        if (--t->holds == 0) {
            *pp = t->next;
            unmap_all(t->r, t->n);
            free(t);
        }
        return 0;
    }
    return -ENOENT;
}

unsigned hxfr__mem_retired_count(const struct hxfr_mem *mem)
{
    unsigned n = 0;
    for (const struct hxfr_mem_retired *t = mem->retired; t != NULL; t = t->next) {
        n++;
    }
    return n;
}

static bool ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
    /* Both ranges are known not to wrap. */
    return a < b + blen && b < a + alen;
}

static int validate(const struct hxfr_mem_desc *d, unsigned n)
{
    if (n > HXFR_MEM_MAX_REGIONS) {
        return -EINVAL;
    }
    for (unsigned i = 0; i < n; i++) {
        if (d[i].size == 0 || d[i].gpa + d[i].size < d[i].gpa || d[i].uva + d[i].size < d[i].uva ||
            d[i].mmap_offset + d[i].size < d[i].mmap_offset) {
            return -EINVAL;
        }
        for (unsigned j = 0; j < i; j++) {
            if (ranges_overlap(d[i].gpa, d[i].size, d[j].gpa, d[j].size) ||
                ranges_overlap(d[i].uva, d[i].size, d[j].uva, d[j].size)) {
                return -EINVAL;
            }
        }
    }
    return 0;
}

/* Replaces the table. A held one is retired with its mappings (readers on
 * other threads may be inside them), the others are unmapped. */
static int install(struct hxfr_mem *mem, const struct hxfr_mem_region *r, unsigned n)
{
    if (mem->holds > 0) {
        struct hxfr_mem_retired *t = calloc(1, sizeof(*t));
        if (t == NULL) {
            return -ENOMEM;
        }
        t->generation = mem->generation;
        t->holds = mem->holds;
        memcpy(t->r, mem->r, sizeof(t->r));
        t->n = mem->n;
        t->next = mem->retired;
        mem->retired = t;
        mem->holds = 0;
    } else {
        unmap_all(mem->r, mem->n);
    }
    memset(mem->r, 0, sizeof(mem->r));
    memcpy(mem->r, r, n * sizeof(*r));
    mem->n = n;
    mem->generation++;
    return 0;
}

int hxfr__mem_set(struct hxfr_mem *mem, const struct hxfr_mem_desc *d, unsigned n, const int *fds)
{
    struct hxfr_mem_region r[HXFR_MEM_MAX_REGIONS];
    int err = validate(d, n);
    if (err < 0) {
        return err;
    }
    unsigned mapped = 0;
    for (; mapped < n; mapped++) {
        const struct hxfr_mem_desc *x = &d[mapped];
        struct stat st;
        /* Mapping from offset 0 keeps mmap's offset page-aligned whatever
         * mmap_offset is (hugetlbfs needs that too). */
        uint64_t len = x->mmap_offset + x->size;
        if (len > SIZE_MAX) {
            err = -EINVAL;
            break;
        }
        if (fstat(fds[mapped], &st) < 0) {
            err = -errno;
            break;
        }
        /* A file shorter than the region would SIGBUS us on access. */
        if (S_ISREG(st.st_mode) && (uint64_t)st.st_size < len) {
            err = -EFBIG;
            break;
        }
        void *p = mmap(NULL, (size_t)len, PROT_READ | PROT_WRITE, MAP_SHARED, fds[mapped], 0);
        if (p == MAP_FAILED) {
            err = -errno;
            break;
        }
        r[mapped] = (struct hxfr_mem_region){
            .gpa = x->gpa,
            .size = x->size,
            .uva = x->uva,
            .host = (uint8_t *)p + x->mmap_offset,
            .map = p,
            .map_len = (size_t)len,
        };
    }
    if (err == 0) {
        err = install(mem, r, n);
    }
    if (err < 0) {
        unmap_all(r, mapped);
    }
    return err;
}

int hxfr__mem_set_local(struct hxfr_mem *mem, const struct hxfr_mem_desc *d, unsigned n,
                        uint8_t *const *host)
{
    struct hxfr_mem_region r[HXFR_MEM_MAX_REGIONS];
    int err = validate(d, n);
    if (err < 0) {
        return err;
    }
    for (unsigned i = 0; i < n; i++) {
        r[i] = (struct hxfr_mem_region){
            .gpa = d[i].gpa, .size = d[i].size, .uva = d[i].uva, .host = host[i]};
    }
    return install(mem, r, n);
}

uint64_t hxfr__mem_gpa_span(const struct hxfr_mem *mem, uint64_t gpa, uint64_t len, uint8_t **host)
{
    for (unsigned i = 0; i < mem->n; i++) {
        const struct hxfr_mem_region *r = &mem->r[i];
        if (gpa >= r->gpa && gpa - r->gpa < r->size) {
            uint64_t off = gpa - r->gpa;
            uint64_t avail = r->size - off;
            *host = r->host + off;
            return len < avail ? len : avail;
        }
    }
    return 0;
}

uint8_t *hxfr__mem_gpa(const struct hxfr_mem *mem, uint64_t gpa, uint64_t len)
{
    for (unsigned i = 0; i < mem->n; i++) {
        const struct hxfr_mem_region *r = &mem->r[i];
        if (gpa >= r->gpa && gpa - r->gpa <= r->size && len <= r->size - (gpa - r->gpa)) {
            /* An empty range exactly at the end is fine; a non-empty one
             * must start inside. */
            if (len == 0 || gpa - r->gpa < r->size) {
                return r->host + (gpa - r->gpa);
            }
        }
    }
    return NULL;
}

uint8_t *hxfr__mem_uva(const struct hxfr_mem *mem, uint64_t uva, uint64_t len)
{
    for (unsigned i = 0; i < mem->n; i++) {
        const struct hxfr_mem_region *r = &mem->r[i];
        if (uva >= r->uva && uva - r->uva < r->size && len <= r->size - (uva - r->uva)) {
            return r->host + (uva - r->uva);
        }
    }
    return NULL;
}
