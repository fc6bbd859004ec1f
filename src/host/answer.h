/* Answers and their order (docs/protocol.md, "Answer order"): everything a
 * client is sent in reply to its requests goes through here. An answer to
 * a request of a session waits behind the frames of that session still in
 * flight, so a session's answers leave in request order; PONG, HELLO_RESP
 * and SLOT_RELEASE concern the connection, not a session, and never wait.
 * Loop thread only.
 */
#ifndef HXFR_HOST_ANSWER_H
#define HXFR_HOST_ANSWER_H

#include <stdbool.h>
#include <stdint.h>

#include "host-private.h"

/* The client's session id, or NULL (errno ENOENT). */
struct hxfr__session *hxfr__session_find(struct hxfr__client *c, uint16_t id);

/* Sends buf (an answer to a request of s) now if no frame of s is in
 * flight, else holds it until those frames are answered. Takes buf.
 * Returns 0 or -errno (the client is cut). */
int hxfr__session_answer(struct hxfr__session *s, struct hxfr__outbuf *buf);
/* Sends the held answers whose frames have all been answered. */
void hxfr__session_flush_answers(struct hxfr__session *s);
/* Drops every held answer (the client is gone). */
void hxfr__session_drop_answers(struct hxfr__session *s);

/* Sends m: ordered behind its session's frames unless it is one of the
 * answers that never wait (see above). Returns 0 or -errno. */
int hxfr__answer_msg(struct hxfr__client *c, const struct hxfr_msg *m);
/* ERROR answering a request of session_id: ordered like answer_msg. Every
 * ERROR is counted and logged (at most a hundred lines per client). */
void hxfr__answer_error(struct hxfr__client *c, uint16_t session_id, int32_t code, const char *fmt,
                        ...) __attribute__((format(printf, 4, 5)));
/* ERROR sent at once: a frame's own result (it is the answer whose turn it
 * is), a fatal protocol error, or an event that answers no request. */
void hxfr__answer_error_now(struct hxfr__client *c, uint16_t session_id, int32_t code,
                            const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#endif
