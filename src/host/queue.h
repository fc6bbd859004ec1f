/* A first-in first-out queue of objects that embed a struct hxfr__qlink:
 * the one tail-append list of libhxfr-host (output queues, held answers,
 * frame queues, the worker pool's job and completion lists). An object is
 * on at most one queue per link it embeds. Not thread-safe: whoever owns
 * the queue (or holds its lock) calls these. */
#ifndef HXFR_HOST_QUEUE_H
#define HXFR_HOST_QUEUE_H

#include <stdbool.h>
#include <stddef.h>

struct hxfr__qlink {
    struct hxfr__qlink *next;
};

struct hxfr__queue {
    struct hxfr__qlink *head, *tail;
};

/* The object that embeds link as member (link not NULL). */
#define hxfr__container_of(link, type, member)                                                     \
    ((type *)(void *)((char *)(link)-offsetof(type, member)))

static inline void *hxfr__qlink_entry(struct hxfr__qlink *l, size_t offset)
{
    return l ? (void *)((char *)l - offset) : NULL;
}

/* The first object, the one after obj, or NULL: for iterating in order. */
#define hxfr__queue_first(q, type, member)                                                         \
    ((type *)hxfr__qlink_entry((q)->head, offsetof(type, member)))
#define hxfr__queue_next(obj, type, member)                                                        \
    ((type *)hxfr__qlink_entry((obj)->member.next, offsetof(type, member)))
/* Removes and returns the first object, or NULL when empty. */
#define hxfr__queue_pop_entry(q, type, member)                                                     \
    ((type *)hxfr__qlink_entry(hxfr__queue_pop(q), offsetof(type, member)))

static inline bool hxfr__queue_empty(const struct hxfr__queue *q)
{
    return q->head == NULL;
}

static inline void hxfr__queue_push(struct hxfr__queue *q, struct hxfr__qlink *l)
{
    l->next = NULL;
    if (q->tail) {
        q->tail->next = l;
    } else {
        q->head = l;
    }
    q->tail = l;
}

static inline struct hxfr__qlink *hxfr__queue_pop(struct hxfr__queue *q)
{
    struct hxfr__qlink *l = q->head;
    if (l) {
        q->head = l->next;
        if (!q->head) {
            q->tail = NULL;
        }
        l->next = NULL;
    }
    return l;
}

/* Appends every element of src to dst, in order; src is left empty. */
static inline void hxfr__queue_splice(struct hxfr__queue *dst, struct hxfr__queue *src)
{
    if (!src->head) {
        return;
    }
    if (dst->tail) {
        dst->tail->next = src->head;
    } else {
        dst->head = src->head;
    }
    dst->tail = src->tail;
    src->head = src->tail = NULL;
}

#endif
