/* Connection I/O: listening sockets. A listener accepts connections for
 * the server (host.c turns each into a client); after EMFILE and the like
 * it rests out of epoll until the server's next tick, instead of being
 * reported ready again at once. Loop thread only. */
#ifndef HXFR_HOST_LISTENER_H
#define HXFR_HOST_LISTENER_H

#include <stdbool.h>
#include <sys/types.h>

#include "log.h"
#include "transport/transport.h"
#include "watch.h"

struct hxfr__listener {
    struct hxfr__watch watch; /* HXFR__WATCH_LISTENER */
    int fd;
    int epfd;
    char uri[300];
    char unlink_path[128]; /* socket file we created, or "" */
    dev_t dev;
    ino_t ino;
    bool resting; /* out of epoll after EMFILE */
};

/* Watches fd (a listening socket; taken: closed on failure too) on epfd.
 * u: the URI it was bound from (NULL for an adopted descriptor): its UNIX
 * socket file is removed on close if it is still the one bound here.
 * Returns the listener or NULL + errno. */
struct hxfr__listener *hxfr__listener_new(int fd, const struct hxfr_uri *u, int epfd);
/* Closes it, removes its socket file (see above), logs and frees. */
void hxfr__listener_destroy(struct hxfr__listener *l, const struct hxfr__log *log);

/* Accepts one connection: a non-blocking fd, or -EAGAIN when none is
 * pending, or another -errno. Errors that would make epoll report the
 * listener again at once (out of descriptors or memory) rest it and set
 * *rested. */
int hxfr__listener_accept(struct hxfr__listener *l, bool *rested);
/* Puts a resting listener back into epoll. Returns true if it did. */
bool hxfr__listener_wake(struct hxfr__listener *l);

#endif
