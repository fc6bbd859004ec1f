/* Character devices: a virtio-serial port (/dev/virtio-ports/NAME) or any
 * tty. No socket calls; a tty is switched to raw mode so that no byte of
 * the binary protocol is translated, echoed or taken as a signal. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "transport-private.h"

static int make_raw(int fd)
{
    struct termios t;

    if (tcgetattr(fd, &t) < 0) {
        return -errno;
    }
    cfmakeraw(&t);
    /* CLOCAL: no modem control lines (a missing carrier must not block or
     * hang up the port); CREAD: receive at all. One byte completes a read. */
    t.c_cflag |= CLOCAL | CREAD;
    t.c_cc[VMIN] = 1;
    t.c_cc[VTIME] = 0;
    if (tcsetattr(fd, TCSANOW, &t) < 0) {
        return -errno;
    }
    return 0;
}

int hxfr__serial_open(const struct hxfr_uri *u)
{
    struct stat st;
    int fd, r, fl;

    if (strnlen(u->path, sizeof(u->path)) >= sizeof(u->path) || u->path[0] == '\0') {
        r = -EINVAL;
        goto out;
    }
    /* O_NONBLOCK for the open only: opening a tty without CLOCAL would
     * otherwise wait for carrier detect. */
    fd = open(u->path, O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        r = -errno;
        goto out;
    }
    if (fstat(fd, &st) < 0) {
        r = -errno;
        goto out_close;
    }
    if (!S_ISCHR(st.st_mode)) {
        r = -ENODEV;
        goto out_close;
    }
    if (isatty(fd)) {
        r = make_raw(fd);
        if (r < 0) {
            goto out_close;
        }
    }
    fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
        r = -errno;
        goto out_close;
    }
    r = fd;
    goto out;

out_close:
    close(fd);
out:
    return r;
}
