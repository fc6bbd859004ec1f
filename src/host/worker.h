/* The encode worker pool: a job queue of frames, worker threads that
 * encode them (encode.h), and a completion queue that an eventfd
 * announces to the loop.
 *
 * The loop hands a session at most one frame at a time (session.c), so an
 * encoder is only ever used by one worker and the responses of a session
 * come back in request order whatever the number of workers.
 */
#ifndef HXFR_HOST_WORKER_H
#define HXFR_HOST_WORKER_H

#include <pthread.h>
#include <stdbool.h>

#include "frame.h"
#include "queue.h"
#include "watch.h"

struct hxfr__workers {
    struct hxfr__watch watch; /* HXFR__WATCH_WORKERS */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_t *threads;
    unsigned nthreads;
    bool quit;
    struct hxfr__queue jobs; /* frames (link) waiting for a worker */
    struct hxfr__queue done; /* finished frames (link), completion order */
    /* Frames whose pixels the encoder has finished reading (early
     * release), oldest first (consumed_link). */
    struct hxfr__queue consumed;
    int efd;          /* eventfd: completions are waiting */
    unsigned running; /* frames handed to the pool, not yet taken back */
};

/* Starts n threads. Returns 0 or -errno (nothing left running). */
int hxfr__workers_init(struct hxfr__workers *w, unsigned n);
/* Joins the threads. Frames never started are moved to the done list,
 * failed with SHUTTING_DOWN, for the caller to take. */
void hxfr__workers_finish(struct hxfr__workers *w);
/* Loop: hands f to a worker. */
void hxfr__workers_push(struct hxfr__workers *w, struct hxfr__frame *f);
/* Moves frames not yet picked up by a worker to the done list, failed
 * with SHUTTING_DOWN (they come back through the eventfd). */
void hxfr__workers_cancel_pending(struct hxfr__workers *w);
/* Loop: takes every finished frame (in completion order) into *done, and
 * into *consumed the frames whose pixels were consumed early (handle those
 * first: a frame can be on both lists). */
void hxfr__workers_take_done(struct hxfr__workers *w, struct hxfr__queue *done,
                             struct hxfr__queue *consumed);

#endif
