/* The monotonic clock every part of libhxfr-host reads. */
#ifndef HXFR_HOST_CLOCK_H
#define HXFR_HOST_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t hxfr__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline uint64_t hxfr__now_ms(void)
{
    return hxfr__now_ns() / 1000000u;
}

#endif
