/* The encode worker pool (worker.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "encode.h"
#include "worker.h"

static void wake_loop(struct hxfr__workers *w)
{
    uint64_t one = 1;
    /* An eventfd write only fails when the counter would overflow, which
     * cannot happen with at most a few writes per frame. */
    ssize_t n = write(w->efd, &one, sizeof(one));
    (void)n;
}

/* Worker: the encoder has converted f's pixels into its own picture. Tell
 * the loop, which hands a shared-memory slot back before the encode ends. */
static void frame_consumed(void *opaque)
{
    struct hxfr__frame *f = opaque;
    struct hxfr__workers *w = f->workers;

    pthread_mutex_lock(&w->lock);
    hxfr__queue_push(&w->consumed, &f->consumed_link);
    wake_loop(w);
    pthread_mutex_unlock(&w->lock);
}

static void *worker_main(void *arg)
{
    struct hxfr__workers *w = arg;

    pthread_mutex_lock(&w->lock);
    for (;;) {
        while (!w->quit && hxfr__queue_empty(&w->jobs)) {
            pthread_cond_wait(&w->cond, &w->lock);
        }
        if (w->quit) {
            break;
        }
        struct hxfr__frame *f = hxfr__queue_pop_entry(&w->jobs, struct hxfr__frame, link);
        pthread_mutex_unlock(&w->lock);

        if (f->early_release) {
            f->img.consumed = frame_consumed;
            f->img.consumed_opaque = f;
        }
        hxfr__frame_encode(f);

        pthread_mutex_lock(&w->lock);
        hxfr__queue_push(&w->done, &f->link);
        wake_loop(w);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

int hxfr__workers_init(struct hxfr__workers *w, unsigned n)
{
    int ret = 0;

    w->watch.kind = HXFR__WATCH_WORKERS;
    w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->efd < 0) {
        return -errno;
    }
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->cond, NULL);
    w->threads = calloc(n, sizeof(*w->threads));
    if (!w->threads) {
        ret = -ENOMEM;
        goto fail;
    }
    for (unsigned i = 0; i < n; i++) {
        int r = pthread_create(&w->threads[i], NULL, worker_main, w);
        if (r != 0) {
            ret = -r;
            goto fail;
        }
        w->nthreads++;
    }
    return 0;

fail:
    hxfr__workers_finish(w);
    return ret;
}

/* Fails every job not yet started and moves it to the done list. Called
 * with the lock held. */
static void cancel_jobs(struct hxfr__workers *w)
{
    for (struct hxfr__frame *f = hxfr__queue_first(&w->jobs, struct hxfr__frame, link); f;
         f = hxfr__queue_next(f, struct hxfr__frame, link)) {
        f->status = HXFR_STATUS_SHUTTING_DOWN;
        snprintf(f->errmsg, sizeof(f->errmsg), "server shutting down");
    }
    hxfr__queue_splice(&w->done, &w->jobs);
}

void hxfr__workers_finish(struct hxfr__workers *w)
{
    pthread_mutex_lock(&w->lock);
    w->quit = true;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
    for (unsigned i = 0; i < w->nthreads; i++) {
        pthread_join(w->threads[i], NULL);
    }
    free(w->threads);
    w->threads = NULL;
    w->nthreads = 0;
    cancel_jobs(w);
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->lock);
    if (w->efd >= 0) {
        close(w->efd);
        w->efd = -1;
    }
}

void hxfr__workers_push(struct hxfr__workers *w, struct hxfr__frame *f)
{
    f->workers = w;
    pthread_mutex_lock(&w->lock);
    hxfr__queue_push(&w->jobs, &f->link);
    w->running++;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

void hxfr__workers_cancel_pending(struct hxfr__workers *w)
{
    pthread_mutex_lock(&w->lock);
    if (!hxfr__queue_empty(&w->jobs)) {
        cancel_jobs(w);
        wake_loop(w);
    }
    pthread_mutex_unlock(&w->lock);
}

void hxfr__workers_take_done(struct hxfr__workers *w, struct hxfr__queue *done,
                             struct hxfr__queue *consumed)
{
    uint64_t v;
    ssize_t n = read(w->efd, &v, sizeof(v));
    (void)n; /* EAGAIN just means nothing was signalled since last time. */

    done->head = done->tail = NULL;
    consumed->head = consumed->tail = NULL;
    pthread_mutex_lock(&w->lock);
    hxfr__queue_splice(done, &w->done);
    hxfr__queue_splice(consumed, &w->consumed);
    for (struct hxfr__frame *f = hxfr__queue_first(done, struct hxfr__frame, link); f;
         f = hxfr__queue_next(f, struct hxfr__frame, link)) {
        w->running--;
    }
    pthread_mutex_unlock(&w->lock);
}
