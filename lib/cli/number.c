/* Numbers on the command line (cli.h). strtoull alone accepts "-1" (as a
 * huge value) and an empty string; both are refused here. */
#include <errno.h>
#include <stdlib.h>

#include "cli.h"

/* The leading decimal number of s; *end points past it. */
static int leading_u64(const char *s, uint64_t *v, char **end)
{
    errno = 0;
    unsigned long long n = strtoull(s, end, 10);
    if (errno || *end == s || s[0] == '-') {
        return -EINVAL;
    }
    *v = n;
    return 0;
}

int hxfr__cli_parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    uint64_t v;
    char *end;
    if (leading_u64(s, &v, &end) < 0 || *end || v > max) {
        return -EINVAL;
    }
    *out = v;
    return 0;
}

int hxfr__cli_parse_bytes(const char *s, uint64_t max, uint64_t *out)
{
    uint64_t v, mul = 1;
    char *end;
    if (leading_u64(s, &v, &end) < 0) {
        return -EINVAL;
    }
    switch (*end) {
    case 'K':
    case 'k':
        mul = 1024u;
        end++;
        break;
    case 'M':
    case 'm':
        mul = 1024u * 1024u;
        end++;
        break;
    case 'G':
    case 'g':
        mul = 1024u * 1024u * 1024u;
        end++;
        break;
    default:
        break;
    }
    if (*end || v == 0 || v > max / mul) {
        return -EINVAL;
    }
    *out = v * mul;
    return 0;
}

int hxfr__cli_parse_size(const char *s, uint32_t max, uint32_t *w, uint32_t *h)
{
    uint64_t a, b;
    char *end;
    if (leading_u64(s, &a, &end) < 0 || *end != 'x') {
        return -EINVAL;
    }
    const char *t = end + 1;
    if (leading_u64(t, &b, &end) < 0 || *end || a == 0 || b == 0 || a > max || b > max) {
        return -EINVAL;
    }
    *w = (uint32_t)a;
    *h = (uint32_t)b;
    return 0;
}
