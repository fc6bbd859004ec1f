/* Whole-buffer and whole-file reads for tests (see io.h). */
#include "io.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int hxfr_test_read_full(int fd, void *buf, size_t n)
{
    uint8_t *p = buf;
    while (n > 0) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            return -errno;
        }
        if (r == 0) {
            return -EPIPE;
        }
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

char *hxfr_test_slurp(const char *path, size_t *len)
{
    char *buf = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        return NULL;
    }
    if (fseek(f, 0, SEEK_END) < 0) {
        goto out;
    }
    long n = ftell(f);
    if (n < 0 || fseek(f, 0, SEEK_SET) < 0) {
        goto out;
    }
    buf = malloc((size_t)n + 1);
    if (!buf) {
        goto out;
    }
    if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
        goto out;
    }
    buf[n] = '\0';
    if (len) {
        *len = (size_t)n;
    }
out:
    fclose(f);
    return buf;
}
