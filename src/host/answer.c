/* Answers and their order (answer.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "answer.h"

#define ERROR_LOG_LIMIT 100u /* ERROR lines logged per client */

struct hxfr__session *hxfr__session_find(struct hxfr__client *c, uint16_t id)
{
    for (struct hxfr__session *s = c->sessions; s; s = s->next) {
        if (s->id == id) {
            return s;
        }
    }
    errno = ENOENT;
    return NULL;
}

int hxfr__session_answer(struct hxfr__session *s, struct hxfr__outbuf *buf)
{
    struct hxfr__client *c = s->client;

    if (!c) {
        hxfr__outbuf_unref(buf);
        return -EPIPE;
    }
    if (s->answered >= s->next_seq && hxfr__queue_empty(&s->answers)) {
        return hxfr__conn_send(&c->conn, buf);
    }
    struct hxfr__answer *a = malloc(sizeof(*a));
    if (!a) {
        /* Out of memory: an answer out of order still beats none. */
        return hxfr__conn_send(&c->conn, buf);
    }
    a->after = s->next_seq;
    a->buf = buf;
    hxfr__queue_push(&s->answers, &a->link);
    /* Held answers count against the window like frames: a client that
     * keeps sending requests while a frame encodes is paused, not queued
     * without bound. */
    c->inflight++;
    return 0;
}

void hxfr__session_flush_answers(struct hxfr__session *s)
{
    struct hxfr__answer *a;
    while ((a = hxfr__queue_first(&s->answers, struct hxfr__answer, link)) &&
           a->after <= s->answered) {
        hxfr__queue_pop(&s->answers);
        struct hxfr__client *c = s->client;
        if (c) {
            if (c->inflight > 0) {
                c->inflight--;
            }
            hxfr__conn_send(&c->conn, a->buf);
        } else {
            hxfr__outbuf_unref(a->buf);
        }
        free(a);
    }
}

void hxfr__session_drop_answers(struct hxfr__session *s)
{
    struct hxfr__answer *a;
    while ((a = hxfr__queue_pop_entry(&s->answers, struct hxfr__answer, link))) {
        hxfr__outbuf_unref(a->buf);
        free(a);
    }
}

/* The answers that never wait: PONG and HELLO_RESP concern the connection,
 * not a session, and SLOT_RELEASE is not an answer (it must overtake the
 * frame's result to be of any use). */
static bool answer_is_ordered(uint8_t type)
{
    return type != HXFR_MSG_PONG && type != HXFR_MSG_HELLO_RESP && type != HXFR_MSG_SLOT_RELEASE;
}

static int send_msg(struct hxfr__client *c, const struct hxfr_msg *m, bool ordered)
{
    struct hxfr__outbuf *b = hxfr__outbuf_msg(m);
    if (!b) {
        if (errno == ENOMEM) {
            hxfr__conn_cut(&c->conn, "out of memory");
        }
        return -errno;
    }
    if (ordered) {
        struct hxfr__session *s = hxfr__session_find(c, m->hdr.session_id);
        if (s) {
            return hxfr__session_answer(s, b);
        }
    }
    return hxfr__conn_send(&c->conn, b);
}

int hxfr__answer_msg(struct hxfr__client *c, const struct hxfr_msg *m)
{
    return send_msg(c, m, answer_is_ordered(m->hdr.type));
}

static void send_error_v(struct hxfr__client *c, uint16_t session_id, int32_t code, bool ordered,
                         const char *fmt, va_list ap) __attribute__((format(printf, 5, 0)));

static void send_error_v(struct hxfr__client *c, uint16_t session_id, int32_t code, bool ordered,
                         const char *fmt, va_list ap)
{
    struct hxfr_msg m;
    char text[HXFR_ERROR_MESSAGE_LEN];

    vsnprintf(text, sizeof(text), fmt, ap);
    hxfr_msg_error(&m, session_id, code, "%s", text);
    c->host->stats.errors_sent++;
    c->errors_sent++;
    /* One line per error, but a client cannot fill the disk with them. */
    if (c->errors_sent <= ERROR_LOG_LIMIT) {
        hxfr__log(&c->host->log, HXFR_HOST_LOG_WARN, "client %llu session %u: ERROR %s: %s",
                  (unsigned long long)c->id, (unsigned)session_id, hxfr_status_name(code), text);
    }
    if (c->errors_sent == ERROR_LOG_LIMIT) {
        hxfr__log(&c->host->log, HXFR_HOST_LOG_WARN,
                  "client %llu: %u errors, further ERROR lines for it are not logged",
                  (unsigned long long)c->id, ERROR_LOG_LIMIT);
    }
    send_msg(c, &m, ordered);
}

void hxfr__answer_error(struct hxfr__client *c, uint16_t session_id, int32_t code, const char *fmt,
                        ...)
{
    va_list ap;
    va_start(ap, fmt);
    send_error_v(c, session_id, code, true, fmt, ap);
    va_end(ap);
}

void hxfr__answer_error_now(struct hxfr__client *c, uint16_t session_id, int32_t code,
                            const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    send_error_v(c, session_id, code, false, fmt, ap);
    va_end(ap);
}
