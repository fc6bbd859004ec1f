/* Listening sockets (listener.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <unistd.h>

#include "listener.h"

static int watch(struct hxfr__listener *l)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &l->watch};
    return epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->fd, &ev) < 0 ? -errno : 0;
}

struct hxfr__listener *hxfr__listener_new(int fd, const struct hxfr_uri *u, int epfd)
{
    struct hxfr__listener *l = calloc(1, sizeof(*l));
    if (!l) {
        close(fd);
        errno = ENOMEM;
        return NULL;
    }
    l->watch.kind = HXFR__WATCH_LISTENER;
    l->fd = fd;
    l->epfd = epfd;
    if (hxfr__socket_bound_uri(fd, l->uri, sizeof(l->uri)) < 0) {
        if (!u || hxfr__uri_format(u, l->uri, sizeof(l->uri)) < 0) {
            snprintf(l->uri, sizeof(l->uri), "fd:%d", fd);
        }
    }
    struct stat st;
    if (u && u->kind == HXFR_TRANSPORT_UNIX && strlen(u->path) < sizeof(l->unlink_path) &&
        stat(u->path, &st) == 0) {
        snprintf(l->unlink_path, sizeof(l->unlink_path), "%s", u->path);
        l->dev = st.st_dev;
        l->ino = st.st_ino;
    }
    int r = watch(l);
    if (r < 0) {
        close(fd);
        free(l);
        errno = -r;
        return NULL;
    }
    return l;
}

void hxfr__listener_destroy(struct hxfr__listener *l, const struct hxfr__log *log)
{
    struct stat st;

    if (!l) {
        return;
    }
    if (!l->resting) {
        epoll_ctl(l->epfd, EPOLL_CTL_DEL, l->fd, NULL);
    }
    close(l->fd);
    /* Remove the socket file only if it is still the one we bound: another
     * instance may have replaced it since. */
    if (l->unlink_path[0] && stat(l->unlink_path, &st) == 0 && st.st_dev == l->dev &&
        st.st_ino == l->ino) {
        unlink(l->unlink_path);
    }
    hxfr__log(log, HXFR_HOST_LOG_INFO, "stopped listening on %s", l->uri);
    free(l);
}

int hxfr__listener_accept(struct hxfr__listener *l, bool *rested)
{
    *rested = false;
    for (;;) {
        int fd = hxfr__transport_accept(l->fd);
        if (fd == -ECONNABORTED || fd == -EINTR || fd == -EPROTO) {
            continue;
        }
        if (fd == -EMFILE || fd == -ENFILE || fd == -ENOMEM || fd == -ENOBUFS) {
            /* The connection stays pending and epoll would report it
             * again at once: rest until the next tick. */
            epoll_ctl(l->epfd, EPOLL_CTL_DEL, l->fd, NULL);
            l->resting = true;
            *rested = true;
        }
        return fd == -EWOULDBLOCK ? -EAGAIN : fd;
    }
}

bool hxfr__listener_wake(struct hxfr__listener *l)
{
    if (l->resting && watch(l) == 0) {
        l->resting = false;
        return true;
    }
    return false;
}
