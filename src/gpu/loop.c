/* The epoll loop of hxfr-gpu (see loop.h). Removal during a dispatch only
 * marks the source dead and takes it out of epoll; the memory is freed once
 * the batch is done, so that a later event of the same batch that still
 * points at it is recognised and skipped. */
#include "loop.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

struct hxfr_loop_source {
    int fd;
    hxfr_loop_fn fn;
    void *data;
    bool dead;
    struct hxfr_loop_source *next; /* every source, or the dead list */
};

struct hxfr_loop {
    int epfd;
    bool dispatching;
    struct hxfr_loop_source *sources;
    struct hxfr_loop_source *dead;
};

#define LOOP_BATCH 32

struct hxfr_loop *hxfr__loop_new(void)
{
    struct hxfr_loop *loop = calloc(1, sizeof(*loop));
    if (loop == NULL) {
        return NULL;
    }
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (loop->epfd < 0) {
        int err = errno;
        free(loop);
        errno = err;
        return NULL;
    }
    return loop;
}

static void free_list(struct hxfr_loop_source *s)
{
    while (s != NULL) {
        struct hxfr_loop_source *next = s->next;
        free(s);
        s = next;
    }
}

void hxfr__loop_destroy(struct hxfr_loop *loop)
{
    if (loop == NULL) {
        return;
    }
    free_list(loop->sources);
    free_list(loop->dead);
    close(loop->epfd);
    free(loop);
}

struct hxfr_loop_source *hxfr__loop_add(struct hxfr_loop *loop, int fd, uint32_t events,
                                        hxfr_loop_fn fn, void *data)
{
    struct hxfr_loop_source *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return NULL;
    }
    s->fd = fd;
    s->fn = fn;
    s->data = data;
    struct epoll_event ev = {.events = events, .data.ptr = s};
    if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        int err = errno;
        free(s);
        errno = err;
        return NULL;
    }
    s->next = loop->sources;
    loop->sources = s;
    return s;
}

int hxfr__loop_update(struct hxfr_loop *loop, struct hxfr_loop_source *src, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = src};
    if (src->dead) {
        return -EINVAL;
    }
    return epoll_ctl(loop->epfd, EPOLL_CTL_MOD, src->fd, &ev) < 0 ? -errno : 0;
}

void hxfr__loop_remove(struct hxfr_loop *loop, struct hxfr_loop_source *src)
{
    if (src == NULL || src->dead) {
        return;
    }
    /* The fd may already be closed by the owner (then epoll dropped it by
     * itself); either way the source stops here. */
    epoll_ctl(loop->epfd, EPOLL_CTL_DEL, src->fd, NULL);
    src->dead = true;
    struct hxfr_loop_source **pp = &loop->sources;
    while (*pp != NULL && *pp != src) {
        pp = &(*pp)->next;
    }
    if (*pp == src) {
        *pp = src->next;
    }
    if (loop->dispatching) {
        src->next = loop->dead;
        loop->dead = src;
    } else {
        free(src);
    }
}

int hxfr__loop_dispatch(struct hxfr_loop *loop, int timeout_ms)
{
    struct epoll_event evs[LOOP_BATCH];
    int n = epoll_wait(loop->epfd, evs, LOOP_BATCH, timeout_ms);
    if (n < 0) {
        return errno == EINTR ? 0 : -errno;
    }
    loop->dispatching = true;
    for (int i = 0; i < n; i++) {
        struct hxfr_loop_source *s = evs[i].data.ptr;
        /* A source removed earlier in this batch sits on the dead list
         * until the batch ends, so reading its flag is safe. */
        if (!s->dead) {
            s->fn(s->data, evs[i].events);
        }
    }
    loop->dispatching = false;
    free_list(loop->dead);
    loop->dead = NULL;
    return n;
}
