/* Shared-memory frame rings: the layout both sides agree on, and helpers to
 * create, map and validate one.
 *
 * A ring is a 64-byte header followed (at data_offset) by slot_count slots
 * of slot_size bytes each, all inside one shared region: a sealed memfd the
 * client passes over a UNIX socket, or a region the host was configured
 * with (an ivshmem backing file; the guest sees it as PCI BAR 2). The
 * header starts at a byte offset inside the region that the SHM_ATTACH
 * message gives (0 for a memfd ring). Slot i starts at
 * header + data_offset + i * slot_size; a frame in a slot is laid out as
 * hxfr_geometry_compute() describes (plane 0 at the slot start, planes
 * contiguous). docs/protocol.md section 12 is the specification.
 *
 * The header lives in memory the guest can rewrite at any time. The host
 * copies it once, at attach, and uses only the validated copy
 * (hxfr_shm_header_decode() + hxfr_shm_layout_validate()); it never reads
 * the header again.
 *
 * Threading: every function is thread-safe; nothing here keeps state.
 */
#ifndef HXFR_SHM_H
#define HXFR_SHM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hxfr/hxfr.h>
#include <hxfr/proto.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HXFR_SHM_MAGIC       0x4D535848u /* bytes 48 58 53 4D, "HXSM" */
#define HXFR_SHM_VERSION     1u
#define HXFR_SHM_HEADER_SIZE 64u
#define HXFR_SHM_MAX_SLOTS   64u /* slot_count is 1..64 */
#define HXFR_SHM_ALIGN       64u /* data_offset and slot_size alignment */
/* A slot holds at most the largest frame the protocol allows. */
#define HXFR_SHM_MAX_SLOT_SIZE ((uint64_t)HXFR_MAX_BODY_HARD)

/* The ring header as it sits in shared memory: fixed little-endian layout,
 * 64 bytes, no padding. Encode and decode it with the functions below
 * (never memcpy this struct into the region). */
struct hxfr_shm_header {
    uint32_t magic;       /* HXFR_SHM_MAGIC */
    uint32_t version;     /* HXFR_SHM_VERSION */
    uint32_t header_size; /* HXFR_SHM_HEADER_SIZE */
    uint32_t slot_count;  /* 1..HXFR_SHM_MAX_SLOTS */
    uint64_t slot_size;   /* bytes per slot, multiple of 64, 1..256 MiB */
    uint64_t data_offset; /* slot 0, from the header start; >= 64, multiple of 64 */
    uint32_t flags;       /* 0; other values are refused */
    uint8_t reserved[28]; /* zero on write, ignored on read */
};

_Static_assert(offsetof(struct hxfr_shm_header, magic) == 0, "shm header layout");
_Static_assert(offsetof(struct hxfr_shm_header, version) == 4, "shm header layout");
_Static_assert(offsetof(struct hxfr_shm_header, header_size) == 8, "shm header layout");
_Static_assert(offsetof(struct hxfr_shm_header, slot_count) == 12, "shm header layout");
_Static_assert(offsetof(struct hxfr_shm_header, slot_size) == 16, "shm header layout");
_Static_assert(offsetof(struct hxfr_shm_header, data_offset) == 24, "shm header layout");
_Static_assert(offsetof(struct hxfr_shm_header, flags) == 32, "shm header layout");
_Static_assert(offsetof(struct hxfr_shm_header, reserved) == 36, "shm header layout");
_Static_assert(sizeof(struct hxfr_shm_header) == HXFR_SHM_HEADER_SIZE, "shm header size");

/* A validated ring: where it is in its region and how big it is. */
struct hxfr_shm_layout {
    uint64_t ring_offset; /* header start inside the region */
    uint32_t slot_count;
    uint64_t slot_size;
    uint64_t data_offset; /* from the header start */
    uint64_t ring_size;   /* data_offset + slot_count * slot_size */
};

/* Writes h as 64 little-endian bytes (reserved bytes zero). */
HXFR_EXPORT void hxfr_shm_header_encode(uint8_t out[HXFR_SHM_HEADER_SIZE],
                                        const struct hxfr_shm_header *h);
/* Reads 64 bytes into *h; no validation. */
HXFR_EXPORT void hxfr_shm_header_decode(const uint8_t in[HXFR_SHM_HEADER_SIZE],
                                        struct hxfr_shm_header *h);

/* Validates a decoded header for a ring whose header starts at ring_offset
 * in a region of region_size bytes, with overflow-checked arithmetic.
 * Checks, in order: the header fits the region (-ERANGE), magic (-EBADMSG),
 * version (-EPROTONOSUPPORT), header_size and flags (-EINVAL), slot_count
 * 1..64 (-EINVAL), slot_size 1..256 MiB and a multiple of 64 (-EINVAL),
 * data_offset >= header_size and a multiple of 64 (-EINVAL), and that the
 * first slot starts and every slot ends inside the region (-ERANGE: the
 * region is smaller than the header claims). No sum can wrap, whatever
 * the values. Returns 0 and fills *out, or the error. */
HXFR_EXPORT int hxfr_shm_layout_validate(const struct hxfr_shm_header *h, uint64_t ring_offset,
                                         uint64_t region_size, struct hxfr_shm_layout *out);

/* Where a frame of geometry g sits when submitted in slot: returns 0 and
 * the frame's offset from the region start (plane i is at that offset plus
 * g->offset[i]), -ERANGE for a slot index >= slot_count, -EMSGSIZE when
 * g->size does not fit slot_size. */
HXFR_EXPORT int hxfr_shm_slot_offset(const struct hxfr_shm_layout *l, uint32_t slot,
                                     const struct hxfr_geometry *g, uint64_t *offset);

/* Fills *h for a new ring of slot_count slots that each hold at least
 * frame_bytes, with the first slot at data_offset 4096 (page aligned) and
 * slot_size rounded up to 4096. Returns 0, or -EINVAL (slot_count outside
 * 1..64, frame_bytes 0 or above 256 MiB). hxfr_shm_ring_bytes() gives the
 * region size it needs. */
HXFR_EXPORT int hxfr_shm_header_init(struct hxfr_shm_header *h, uint32_t slot_count,
                                     uint64_t frame_bytes);

/* data_offset + slot_count * slot_size of a header hxfr_shm_header_init
 * filled. */
HXFR_EXPORT uint64_t hxfr_shm_ring_bytes(const struct hxfr_shm_header *h);

/* ---- Regions (guest side) -------------------------------------------- */

/* A mapped shared region. */
struct hxfr_shm_region {
    uint8_t *base; /* mapping, read/write, MAP_SHARED */
    size_t size;
    int fd; /* memfd (kept for passing), or -1 for a file region */
};

/* Creates a memfd of size bytes, sealed with F_SEAL_SHRINK | F_SEAL_GROW |
 * F_SEAL_SEAL (so a host can map it without fearing SIGBUS), and maps it
 * into *r. Returns 0 or -errno (-ENOSYS without memfd_create). Free with
 * hxfr_shm_region_finish(). */
HXFR_EXPORT int hxfr_shm_region_memfd(struct hxfr_shm_region *r, const char *name, size_t size);

/* Maps an existing file or PCI BAR (/sys/bus/pci/devices/.../resource2)
 * read/write; its size is the file size. Returns 0 or -errno (-EINVAL for
 * an empty file). */
HXFR_EXPORT int hxfr_shm_region_open(struct hxfr_shm_region *r, const char *path);

/* Unmaps and closes; r may be zeroed (or finished) already. */
HXFR_EXPORT void hxfr_shm_region_finish(struct hxfr_shm_region *r);

/* Finds the first ivshmem PCI device (vendor 0x1af4, device 0x1110) under
 * /sys/bus/pci/devices and writes the path of its BAR 2 ("resource2", the
 * shared memory) into buf. Returns 0, -ENOENT (none), -ENAMETOOLONG. */
HXFR_EXPORT int hxfr_shm_find_ivshmem(char *buf, size_t len);

#ifdef __cplusplus
}
#endif

#endif
