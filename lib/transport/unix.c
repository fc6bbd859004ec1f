/* UNIX stream sockets: the default transport, and the one fds travel on. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "transport-private.h"

int hxfr__unix_addr(const struct hxfr_uri *u, struct sockaddr_un *sa, socklen_t *salen)
{
    size_t n = strnlen(u->path, sizeof(u->path));

    /* The path needs its NUL inside sun_path. */
    if (n >= sizeof(sa->sun_path) || n >= sizeof(u->path)) {
        return -ENAMETOOLONG;
    }
    if (n == 0) {
        return -EINVAL;
    }
    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    memcpy(sa->sun_path, u->path, n);
    *salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
    return 0;
}

/* Creates every missing folder above the socket path with mode 0750 (set
 * explicitly, so a restrictive or permissive umask does not change it).
 * Existing folders are left as they are: they belong to whoever made them. */
static int make_parent_dirs(const char *path)
{
    char dir[HXFR_URI_PATH_MAX];
    size_t n = strlen(path);
    struct stat st;

    memcpy(dir, path, n + 1);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir) {
        return 0; /* relative to the current folder, or directly under "/" */
    }
    *slash = '\0';
    if (stat(dir, &st) == 0) {
        return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
    }
    if (errno != ENOENT) {
        return -errno;
    }

    /* Walk down from the top, creating each missing component. */
    for (char *p = dir + 1;; p++) {
        if (*p != '/' && *p != '\0') {
            continue;
        }
        char saved = *p;
        *p = '\0';
        if (mkdir(dir, 0750) == 0) {
            if (chmod(dir, 0750) < 0) {
                return -errno;
            }
        } else if (errno != EEXIST) {
            return -errno;
        } else if (stat(dir, &st) < 0) {
            return -errno;
        } else if (!S_ISDIR(st.st_mode)) {
            return -ENOTDIR;
        }
        *p = saved;
        if (saved == '\0') {
            break;
        }
    }
    return 0;
}

/* Decides what to do about something already at the socket path: a socket
 * nobody accepts on is stale and removed; a live one is in use; anything
 * that is not a socket is never touched. Returns 0 when the path is free. */
static int clear_stale(const struct sockaddr_un *sa, socklen_t salen)
{
    struct stat st;
    int fd, r;

    if (lstat(sa->sun_path, &st) < 0) {
        return errno == ENOENT ? 0 : -errno;
    }
    if (!S_ISSOCK(st.st_mode)) {
        return -EEXIST;
    }

    /* Non-blocking, so a live listener with a full backlog answers EAGAIN
     * at once instead of making us wait. */
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -errno;
    }
    do {
        r = connect(fd, (const struct sockaddr *)sa, salen);
    } while (r < 0 && errno == EINTR);
    if (r == 0 || errno == EAGAIN || errno == EINPROGRESS) {
        r = -EADDRINUSE;
    } else if (errno == ECONNREFUSED) {
        /* Only unlink what is still the socket we probed, so a regular file
         * swapped in meanwhile survives. ENOENT: someone else cleaned up. */
        struct stat again;
        if (lstat(sa->sun_path, &again) == 0 && S_ISSOCK(again.st_mode) &&
            again.st_ino == st.st_ino && again.st_dev == st.st_dev) {
            r = unlink(sa->sun_path) == 0 || errno == ENOENT ? 0 : -errno;
        } else {
            r = 0;
        }
    } else {
        r = -errno;
    }
    close(fd);
    return r;
}

int hxfr__unix_listen(const struct hxfr_uri *u)
{
    struct sockaddr_un sa;
    socklen_t salen;
    bool bound = false;
    int fd = -1, r;

    r = hxfr__unix_addr(u, &sa, &salen);
    if (r < 0) {
        goto out;
    }
    r = make_parent_dirs(sa.sun_path);
    if (r < 0) {
        goto out;
    }
    r = clear_stale(&sa, salen);
    if (r < 0) {
        goto out;
    }

    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        r = -errno;
        goto out;
    }
    /* On Linux the file bind creates takes the socket inode's mode (less
     * the umask): set it first so the file is never more open than 0660. */
    (void)fchmod(fd, 0660);
    if (bind(fd, (const struct sockaddr *)&sa, salen) < 0) {
        r = -errno;
        goto out_close;
    }
    bound = true;
    if (chmod(sa.sun_path, 0660) < 0) {
        r = -errno;
        goto out_close;
    }
    if (listen(fd, SOMAXCONN) < 0) {
        r = -errno;
        goto out_close;
    }
    r = fd;
    goto out;

out_close:
    if (bound) {
        unlink(sa.sun_path);
    }
    close(fd);
out:
    return r;
}

int hxfr__unix_connect(const struct hxfr_uri *u)
{
    struct sockaddr_un sa;
    socklen_t salen;
    int fd, r;

    r = hxfr__unix_addr(u, &sa, &salen);
    if (r < 0) {
        return r;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -errno;
    }
    r = hxfr__connect_retry(fd, (const struct sockaddr *)&sa, salen);
    if (r < 0) {
        close(fd);
        return r;
    }
    return fd;
}

bool hxfr__fd_is_unix_socket(int fd)
{
    int domain = 0;
    socklen_t len = sizeof(domain);

    if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0) {
        return false;
    }
    return domain == AF_UNIX;
}
