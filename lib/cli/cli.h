/* Command-line argument parsing shared by hxfr's programs (hxfrd,
 * hxfr-send, hxfr-gpu, src/hostcli): numbers and sizes as the option texts
 * in --help promise them. A static library for programs, not installed; no
 * output, -errno results.
 */
#ifndef HXFR_CLI_H
#define HXFR_CLI_H

#include <stdint.h>

/* A decimal number 0..max with nothing after it (leading spaces and a '+'
 * pass, as strtoull takes them; a '-' does not). Returns 0 and sets *out,
 * or -EINVAL. */
int hxfr__cli_parse_u64(const char *s, uint64_t max, uint64_t *out);

/* A byte count 1..max: a decimal number with an optional suffix K, M or G
 * (either case; powers of 1024). Returns 0 and sets *out, or -EINVAL. */
int hxfr__cli_parse_bytes(const char *s, uint64_t max, uint64_t *out);

/* A size WxH: two decimal numbers 1..max joined by a lower-case 'x'.
 * Returns 0 and sets *w and *h, or -EINVAL (both unchanged). */
int hxfr__cli_parse_size(const char *s, uint32_t max, uint32_t *w, uint32_t *h);

#endif
