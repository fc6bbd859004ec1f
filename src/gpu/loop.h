/* A small epoll event loop for hxfr-gpu: file descriptors with a callback
 * each. Sources may be added and removed from inside callbacks; a removed
 * source gets no further callback, not even one already reported in the
 * batch being dispatched. Single-threaded: every call on the loop thread.
 */
#ifndef HXFR_GPU_LOOP_H
#define HXFR_GPU_LOOP_H

#include <stdint.h>

struct hxfr_loop;
struct hxfr_loop_source;

/* Called with the epoll events that fired (EPOLLIN, EPOLLOUT, EPOLLHUP,
 * EPOLLERR). data is what was given to hxfr__loop_add(). */
typedef void (*hxfr_loop_fn)(void *data, uint32_t events);

/* Returns a new loop, or NULL and errno. Free with hxfr__loop_destroy(). */
struct hxfr_loop *hxfr__loop_new(void);
/* Frees the loop and every source still in it (their fds are not closed:
 * sources never own them). Accepts NULL. */
void hxfr__loop_destroy(struct hxfr_loop *loop);

/* Watches fd (borrowed: the caller closes it, after removing the source)
 * for events. Returns the source, or NULL and errno. */
struct hxfr_loop_source *hxfr__loop_add(struct hxfr_loop *loop, int fd, uint32_t events,
                                        hxfr_loop_fn fn, void *data);
/* Changes the events a source waits for. Returns 0 or -errno. */
int hxfr__loop_update(struct hxfr_loop *loop, struct hxfr_loop_source *src, uint32_t events);
/* Stops watching and frees the source (deferred while dispatching).
 * Accepts NULL. */
void hxfr__loop_remove(struct hxfr_loop *loop, struct hxfr_loop_source *src);

/* Waits up to timeout_ms (-1 forever) and calls the callbacks of the
 * sources that are ready. Returns the number of events handled (0 on
 * timeout or EINTR) or -errno. */
int hxfr__loop_dispatch(struct hxfr_loop *loop, int timeout_ms);

#endif
