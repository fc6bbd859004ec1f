/* What every libFuzzer target here shares: the entry point's prototype and
 * REQUIRE, which stops the run with a crash libFuzzer records whenever an
 * invariant of the code under test does not hold. */
#ifndef HXFR_FUZZ_FUZZ_H
#define HXFR_FUZZ_FUZZ_H

#include <stddef.h>
#include <stdint.h>

#define REQUIRE(cond)                                                                              \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            __builtin_trap();                                                                      \
        }                                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
