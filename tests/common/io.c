/* Whole-buffer and whole-file reads for tests (see io.h). */
#include "io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
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

int hxfr_test_run_capture(const char *const *argv, const char *dir, char **out, char **err)
{
    char outp[512], errp[512];
    int status = 0;
    *out = NULL;
    *err = NULL;
    snprintf(outp, sizeof(outp), "%s/run.out", dir);
    snprintf(errp, sizeof(errp), "%s/run.err", dir);
    pid_t pid = fork();
    if (pid < 0) {
        return -1;
    }
    if (pid == 0) {
        int o = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int e = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        /* The working directory is dir, so whatever the program writes by
         * default lands there and not in the build tree. */
        if (o < 0 || e < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0 || chdir(dir) < 0) {
            _exit(126);
        }
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            return -1;
        }
    }
    *out = hxfr_test_slurp(outp, NULL);
    *err = hxfr_test_slurp(errp, NULL);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
