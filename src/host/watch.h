/* What an epoll_event's data.ptr points to in libhxfr-host: the first
 * member of every object the loop watches, so the loop can tell them
 * apart. */
#ifndef HXFR_HOST_WATCH_H
#define HXFR_HOST_WATCH_H

enum hxfr__watch_kind {
    HXFR__WATCH_LISTENER = 1,
    HXFR__WATCH_CLIENT,
    HXFR__WATCH_WORKERS,
    HXFR__WATCH_STOP,
    HXFR__WATCH_TIMER,
    HXFR__WATCH_SCANOUT, /* the keepalive timer (scanout.c) */
};

struct hxfr__watch {
    enum hxfr__watch_kind kind;
};

#endif
