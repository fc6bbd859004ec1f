/* Ring header codec and validation. Everything a peer controls (the header
 * fields, the ring offset, the slot index, the frame geometry) is checked
 * here with 64-bit arithmetic that cannot wrap: every value is bounded
 * before it is multiplied or added. */
#include <errno.h>
#include <string.h>

#include <hxfr/shm.h>

#define PAGE 4096u

HXFR_EXPORT void hxfr_shm_header_encode(uint8_t out[HXFR_SHM_HEADER_SIZE],
                                        const struct hxfr_shm_header *h)
{
    memset(out, 0, HXFR_SHM_HEADER_SIZE);
    hxfr_put_u32(out + 0, h->magic);
    hxfr_put_u32(out + 4, h->version);
    hxfr_put_u32(out + 8, h->header_size);
    hxfr_put_u32(out + 12, h->slot_count);
    hxfr_put_u64(out + 16, h->slot_size);
    hxfr_put_u64(out + 24, h->data_offset);
    hxfr_put_u32(out + 32, h->flags);
}

HXFR_EXPORT void hxfr_shm_header_decode(const uint8_t in[HXFR_SHM_HEADER_SIZE],
                                        struct hxfr_shm_header *h)
{
    memset(h, 0, sizeof(*h));
    h->magic = hxfr_get_u32(in + 0);
    h->version = hxfr_get_u32(in + 4);
    h->header_size = hxfr_get_u32(in + 8);
    h->slot_count = hxfr_get_u32(in + 12);
    h->slot_size = hxfr_get_u64(in + 16);
    h->data_offset = hxfr_get_u64(in + 24);
    h->flags = hxfr_get_u32(in + 32);
    memcpy(h->reserved, in + 36, sizeof(h->reserved));
}

HXFR_EXPORT int hxfr_shm_layout_validate(const struct hxfr_shm_header *h, uint64_t ring_offset,
                                         uint64_t region_size, struct hxfr_shm_layout *out)
{
    if (region_size < HXFR_SHM_HEADER_SIZE || ring_offset > region_size - HXFR_SHM_HEADER_SIZE) {
        return -ERANGE;
    }
    if (h->magic != HXFR_SHM_MAGIC) {
        return -EBADMSG;
    }
    if (h->version != HXFR_SHM_VERSION) {
        return -EPROTONOSUPPORT;
    }
    if (h->header_size != HXFR_SHM_HEADER_SIZE || h->flags != 0) {
        return -EINVAL;
    }
    if (h->slot_count == 0 || h->slot_count > HXFR_SHM_MAX_SLOTS) {
        return -EINVAL;
    }
    if (h->slot_size == 0 || h->slot_size > HXFR_SHM_MAX_SLOT_SIZE ||
        h->slot_size % HXFR_SHM_ALIGN != 0) {
        return -EINVAL;
    }
    if (h->data_offset < h->header_size || h->data_offset % HXFR_SHM_ALIGN != 0) {
        return -EINVAL;
    }
    /* Subtract instead of add: ring_offset <= region_size - 64 was checked
     * above, so none of these differences can wrap. */
    uint64_t room = region_size - ring_offset;
    if (h->data_offset > room) {
        return -ERANGE;
    }
    /* At most 64 slots of at most 2^28 bytes: the product is below 2^34. */
    uint64_t slots = (uint64_t)h->slot_count * h->slot_size;
    if (slots > room - h->data_offset) {
        return -ERANGE;
    }
    uint64_t ring = h->data_offset + slots;
    out->ring_offset = ring_offset;
    out->slot_count = h->slot_count;
    out->slot_size = h->slot_size;
    out->data_offset = h->data_offset;
    out->ring_size = ring;
    return 0;
}

HXFR_EXPORT int hxfr_shm_slot_offset(const struct hxfr_shm_layout *l, uint32_t slot,
                                     const struct hxfr_geometry *g, uint64_t *offset)
{
    if (slot >= l->slot_count) {
        return -ERANGE;
    }
    if (g->size == 0 || g->size > l->slot_size) {
        return -EMSGSIZE;
    }
    *offset = l->ring_offset + l->data_offset + (uint64_t)slot * l->slot_size;
    return 0;
}

HXFR_EXPORT int hxfr_shm_header_init(struct hxfr_shm_header *h, uint32_t slot_count,
                                     uint64_t frame_bytes)
{
    if (slot_count == 0 || slot_count > HXFR_SHM_MAX_SLOTS || frame_bytes == 0 ||
        frame_bytes > HXFR_SHM_MAX_SLOT_SIZE) {
        return -EINVAL;
    }
    memset(h, 0, sizeof(*h));
    h->magic = HXFR_SHM_MAGIC;
    h->version = HXFR_SHM_VERSION;
    h->header_size = HXFR_SHM_HEADER_SIZE;
    h->slot_count = slot_count;
    /* Page-sized slots start page aligned: good for the encoder's reads
     * and for the guest's renderer. */
    h->slot_size = (frame_bytes + PAGE - 1) / PAGE * PAGE;
    h->data_offset = PAGE;
    return 0;
}

HXFR_EXPORT uint64_t hxfr_shm_ring_bytes(const struct hxfr_shm_header *h)
{
    return h->data_offset + (uint64_t)h->slot_count * h->slot_size;
}
