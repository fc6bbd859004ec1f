/* FRAME_RESPONSE unit lists and Annex B splitting. A unit list is
 * nal_count x (u32 size + size bytes); each unit is one NAL unit including
 * its start code. Sizes come from the peer, so every one is checked against
 * the bytes actually present before a pointer is formed. */
#include <errno.h>
#include <limits.h>

#include <hxfr/proto.h>

HXFR_EXPORT int hxfr_units_next(const uint8_t *body, size_t len, size_t *pos, const uint8_t **unit,
                                uint32_t *unit_size)
{
    size_t at = *pos;
    if (at == len) {
        return 0;
    }
    if (at > len || len - at < 4) {
        return -HXFR_EUNITS;
    }
    uint32_t size = hxfr_get_u32(body + at);
    /* A unit carries at least its start code; an empty one is malformed. */
    if (size == 0 || size > len - at - 4) {
        return -HXFR_EUNITS;
    }
    *unit = body + at + 4;
    *unit_size = size;
    *pos = at + 4 + size;
    return 1;
}

HXFR_EXPORT int hxfr_units_validate(const uint8_t *body, size_t len, uint32_t nal_count)
{
    size_t pos = 0;
    uint32_t count = 0;
    const uint8_t *unit;
    uint32_t size;
    int r;
    /* Stop at the first surplus unit, so a huge nal_count or a long list
     * never costs more than one pass over the bytes present. */
    while ((r = hxfr_units_next(body, len, &pos, &unit, &size)) == 1) {
        if (count == nal_count) {
            return -HXFR_EUNITS;
        }
        count++;
    }
    if (r < 0 || count != nal_count) {
        return -HXFR_EUNITS;
    }
    return 0;
}

HXFR_EXPORT size_t hxfr_annexb_next(const uint8_t *d, size_t len, size_t from, size_t *sc_len)
{
    for (size_t i = from; d && i + 3 <= len; i++) {
        if (d[i] == 0 && d[i + 1] == 0 && d[i + 2] == 1) {
            if (i > from && d[i - 1] == 0) {
                *sc_len = 4;
                return i - 1;
            }
            *sc_len = 3;
            return i;
        }
    }
    *sc_len = 0;
    return len;
}

HXFR_EXPORT int hxfr_annexb_split(const uint8_t *data, size_t len,
                                  int (*cb)(void *opaque, const uint8_t *nal, size_t size),
                                  void *opaque)
{
    size_t sc_len;
    size_t start = hxfr_annexb_next(data, len, 0, &sc_len);
    int count = 0;
    while (start < len) {
        size_t next_len;
        size_t next = hxfr_annexb_next(data, len, start + sc_len, &next_len);
        if (count == INT_MAX) {
            return -EOVERFLOW;
        }
        if (cb) {
            int r = cb(opaque, data + start, next - start);
            if (r < 0) {
                return r;
            }
        }
        count++;
        start = next;
        sc_len = next_len;
    }
    return count;
}
