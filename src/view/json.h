/* hxfr-view: a small, bounded JSON reader for what peers send the gateway
 * (agent API requests, QMP replies). It tokenizes a whole text into a
 * caller-provided token array without allocating, checks the syntax
 * strictly (RFC 8259, nesting at most HXFR_JSON_DEPTH), and offers lookups
 * on the tokens. Pure, unit-tested and fuzzed. Internal to hxfr-view.
 */
#ifndef HXFR_VIEW_JSON_H
#define HXFR_VIEW_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HXFR_JSON_DEPTH 32u

enum hxfr_json_type {
    HXFR_JSON_OBJECT = 1,
    HXFR_JSON_ARRAY,
    HXFR_JSON_STRING, /* start/end exclude the quotes; escapes not decoded */
    HXFR_JSON_NUMBER,
    HXFR_JSON_TRUE,
    HXFR_JSON_FALSE,
    HXFR_JSON_NULL,
};

struct hxfr_json_tok {
    enum hxfr_json_type type;
    uint32_t start, end; /* byte offsets into the text */
    uint32_t count;      /* object: members; array: elements */
    uint32_t next;       /* index of the token after this one's subtree */
};

/* An object's members are key (STRING) and value tokens in turn, a key's
 * value right after it; an array's elements follow it in order. */
struct hxfr_json {
    const char *text;
    const struct hxfr_json_tok *toks;
    unsigned n;
};

/* Tokenizes the len bytes at text (one value, optional white space around
 * it). Returns 0 and fills *out (pointing at text and toks), -E2BIG when
 * more than max tokens are needed or len is above UINT32_MAX, -EINVAL for
 * anything that is not valid JSON (also nesting deeper than
 * HXFR_JSON_DEPTH, control characters or bad escapes in strings, NUL
 * bytes). */
int hxfr__json_parse(const char *text, size_t len, struct hxfr_json_tok *toks, unsigned max,
                     struct hxfr_json *out);

/* The index of the value of key in the object at index obj, or -1 (not an
 * object, or no such key; the first one counts if it repeats). */
int hxfr__json_get(const struct hxfr_json *j, int obj, const char *key);

/* The index of element i of the array at index arr, or -1. */
int hxfr__json_at(const struct hxfr_json *j, int arr, unsigned i);

/* An integer number (no fraction, no exponent) within [min, max] at index
 * i. Returns 0 and sets *out, or -EINVAL (absent, not such a number, out
 * of range). i may be -1 (absent). */
int hxfr__json_int(const struct hxfr_json *j, int i, int64_t min, int64_t max, int64_t *out);

/* true or false at index i: 0 and *out, or -EINVAL. */
int hxfr__json_bool(const struct hxfr_json *j, int i, bool *out);

/* Decodes the string at index i into out (UTF-8, NUL-terminated; \u escapes
 * and surrogate pairs decoded, a lone surrogate refused). Returns the
 * length, -EINVAL (absent, not a string, bad escape, an embedded NUL) or
 * -ENOSPC (does not fit cap, NUL included). */
int hxfr__json_str(const struct hxfr_json *j, int i, char *out, size_t cap);

/* True if the value at index i is a string equal to lit once decoded. */
bool hxfr__json_is(const struct hxfr_json *j, int i, const char *lit);

#endif
