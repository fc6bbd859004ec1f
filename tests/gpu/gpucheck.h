/* Little helpers shared by the hxfr-gpu tests: little-endian access to
 * replies, and a deterministic fill for backing memory. Header-only, for
 * the test binaries that include harness.h. */
#ifndef HXFR_TESTS_GPU_GPUCHECK_H
#define HXFR_TESTS_GPU_GPUCHECK_H

#include <stdint.h>
#include <string.h>

static inline uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t le64(const uint8_t *p)
{
    return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

static inline void wle32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static inline void wle64(uint8_t *p, uint64_t v)
{
    wle32(p, (uint32_t)v);
    wle32(p + 4, (uint32_t)(v >> 32));
}

/* Byte i of test image number seed. */
static inline uint8_t fill_byte(uint64_t i, unsigned seed)
{
    return (uint8_t)((i * 31) ^ (i >> 9) ^ (seed * 101));
}

static inline void fill(uint8_t *p, uint64_t n, unsigned seed)
{
    for (uint64_t i = 0; i < n; i++) {
        p[i] = fill_byte(i, seed);
    }
}

#endif
