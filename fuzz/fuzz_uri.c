/* libFuzzer target for hxfr__uri_parse: any input either fails cleanly or
 * gives an endpoint whose canonical string parses back to the same one. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "transport.h"

#include "fuzz.h"

static void check_round_trip(const char *s, bool for_listen)
{
    struct hxfr_uri u, again;
    char buf[512], small[16];

    if (hxfr__uri_parse(s, for_listen, &u) != 0) {
        return;
    }
    int n = hxfr__uri_format(&u, buf, sizeof(buf));
    /* Every field has a bounded size: 512 bytes always suffice. */
    if (n < 0 || (size_t)n != strlen(buf)) {
        abort();
    }
    memset(&again, 0, sizeof(again));
    if (hxfr__uri_parse(buf, for_listen, &again) != 0 || memcmp(&u, &again, sizeof(u)) != 0) {
        abort();
    }
    /* A buffer too small fails with an empty string, never a cut URI. */
    n = hxfr__uri_format(&u, small, sizeof(small));
    if (n < 0 ? small[0] != '\0' : strcmp(small, buf) != 0) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char s[1024];

    if (size >= sizeof(s)) {
        return 0;
    }
    memcpy(s, data, size);
    s[size] = '\0';
    check_round_trip(s, false);
    check_round_trip(s, true);
    return 0;
}
