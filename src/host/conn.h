/* Connection I/O: one non-blocking stream socket of a client, what its
 * peer is, reads (with the descriptors that arrive on UNIX sockets, kept
 * in batches with the stream range they came with), a bounded output
 * queue written with sendmsg, and the socket's epoll interest.
 *
 * A connection knows nothing of messages: its owner (client.c) parses what
 * it reads and decides what to send. Failures mark the connection cut
 * (hxfr__conn_cut) and stop all output; the owner closes it at its next
 * safe point. Loop thread only.
 */
#ifndef HXFR_HOST_CONN_H
#define HXFR_HOST_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "log.h"
#include "outbuf.h"
#include "queue.h"
#include "transport/transport.h"

#define HXFR__CONN_FD_BATCHES 4u /* fd batches a connection may have pending */

/* Descriptors that arrived with one recvmsg, and the stream bytes that
 * read returned ([start, end) counted from the first byte of the
 * connection): the message whose header starts in that range owns them.
 * truncated: the kernel dropped some (MSG_CTRUNC); none were kept. */
struct hxfr__fd_batch {
    uint64_t start, end;
    int fds[HXFR_RECV_FDS_CAP];
    int nfds;
    bool truncated;
};

struct hxfr__outq_entry {
    struct hxfr__qlink link;
    struct hxfr__outbuf *buf;
    size_t off;
};

struct hxfr__conn {
    int fd; /* -1 once closed */
    int epfd;
    void *watch;     /* epoll data.ptr */
    uint32_t events; /* current epoll mask */
    bool reading;    /* the owner wants input */
    bool is_tcp;
    bool is_unix; /* fds can arrive (SCM_RIGHTS) */
    char peer[96];
    uint64_t id;                 /* for log lines ("client N") */
    const struct hxfr__log *log; /* may be NULL */
    size_t max_output;           /* queued bytes before it is cut */

    uint64_t rx_bytes; /* bytes received */
    struct hxfr__fd_batch fdq[HXFR__CONN_FD_BATCHES];
    unsigned nfdq;
    uint32_t fds_held; /* descriptors in fdq */

    struct hxfr__queue outq; /* struct hxfr__outq_entry */
    size_t out_bytes;
    unsigned out_count;

    bool cut; /* must be closed at the next safe point; sends nothing */
    char cut_reason[96];
    uint64_t last_activity_ms; /* last successful read or write */
};

/* Takes fd (connected, non-blocking): describes the peer, turns on TCP
 * keepalive probes and adds it to epfd for input. Returns 0 or -errno; on
 * failure fd is not closed. */
int hxfr__conn_open(struct hxfr__conn *cn, int fd, int epfd, void *watch);
/* Removes the socket from epoll and closes it, every held descriptor and
 * the output queue. Idempotent. */
void hxfr__conn_close(struct hxfr__conn *cn);
/* Marks the connection cut (the first reason is kept). */
void hxfr__conn_cut(struct hxfr__conn *cn, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Reads into buf: recvmsg with descriptor collection on UNIX sockets
 * (queued as one batch per read; keep_fds false closes them at once),
 * read() elsewhere. Descriptors sent faster than batches are claimed cut
 * the connection. Returns bytes, 0 at EOF, or -errno. */
ssize_t hxfr__conn_recv(struct hxfr__conn *cn, void *buf, size_t len, bool keep_fds);
/* Takes the batch whose range holds stream offset at. */
bool hxfr__conn_fds_take(struct hxfr__conn *cn, uint64_t at, struct hxfr__fd_batch *out);
/* Closes the oldest batch that no message can claim any more (no message
 * header at or after next_header starts in its range) and returns true
 * with its description in *out (descriptors already closed); false when
 * there is none. */
bool hxfr__conn_fds_expire(struct hxfr__conn *cn, uint64_t next_header, struct hxfr__fd_batch *out);
/* Closes every held descriptor. */
void hxfr__conn_fds_close(struct hxfr__conn *cn);
void hxfr__fd_batch_close(struct hxfr__fd_batch *b);

/* Queues buf (takes the reference) and writes what the socket takes.
 * Returns 0, -EPIPE (cut or closed), or -ENOBUFS / -ENOMEM (then cut:
 * the output bound was passed or memory ran out). */
int hxfr__conn_send(struct hxfr__conn *cn, struct hxfr__outbuf *buf);
/* Writes queued output until the socket would block. */
void hxfr__conn_flush(struct hxfr__conn *cn);
/* Sets whether input is wanted and updates the epoll mask (output is
 * watched while something is queued). */
void hxfr__conn_set_reading(struct hxfr__conn *cn, bool reading);

static inline bool hxfr__conn_has_output(const struct hxfr__conn *cn)
{
    return !hxfr__queue_empty(&cn->outq);
}

#endif
