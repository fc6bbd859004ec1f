/* Sessions: (client, session_id) pairs, each with its own settings,
 * encoder, frame pool and in-order frame queue; their statistics. Loop
 * thread only.
 *
 * A session never has more than one frame at the workers. That serializes
 * use of its encoder and keeps its responses in request order with any
 * number of workers; different sessions encode in parallel.
 */
#ifndef HXFR_HOST_SESSION_H
#define HXFR_HOST_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include "host-private.h"

/* The client's session id, created if it does not exist yet. NULL + errno
 * (EBUSY: max_sessions reached, ENOMEM). */
struct hxfr__session *hxfr__session_open(struct hxfr__client *c, uint16_t id);
/* A session of no client with nframes pool frames and the server's
 * default settings (a scanout the embedder publishes owns one). NULL +
 * errno (ENOMEM). */
struct hxfr__session *hxfr__session_new(struct hxfr_host *h, uint16_t id, unsigned nframes);
/* The client is gone: frames not at a worker are dropped (their sources
 * released) and held answers with them; the session is freed, or kept as
 * a zombie until its running frame comes back. Also for a session that
 * has no client already (a scanout's, disowned below) once nobody owns it
 * any more. */
void hxfr__session_detach(struct hxfr__session *s);
/* Takes s out of its client (which is going away) without ending it: what
 * detach drops is dropped, the client's pooled-buffer count gives up s's
 * buffers (the idle ones are freed), and s lives on with client NULL for
 * whoever owns it (s->owner, a scanout). */
void hxfr__session_disown(struct hxfr__session *s);
/* Gives a session without a client to c, as c's session s->id. A session
 * of c with that id must have no frame in use; it is destroyed. Returns 0,
 * -EBUSY (c's session of that id is in use) or -ENOSPC (c has max_sessions
 * others). */
int hxfr__session_adopt(struct hxfr__session *s, struct hxfr__client *c);
/* The bitrate s's next frame is encoded with: the lower nonzero of its
 * settings' bitrate and its bitrate_cap; 0 = the encoder's default. */
uint32_t hxfr__session_bitrate(const struct hxfr__session *s);
void hxfr__session_destroy(struct hxfr__session *s);

/* A free frame of the pool, reset, or NULL (errno EBUSY). */
struct hxfr__frame *hxfr__session_frame_get(struct hxfr__session *s);
/* Makes f's pooled buffer hold size bytes (grow only, keeping the client's
 * pooled buffers within window x the largest frame). 0 or -ENOMEM. */
int hxfr__session_frame_buffer(struct hxfr__session *s, struct hxfr__frame *f, size_t size);
/* Releases f's source and returns it to the pool. */
void hxfr__frame_put(struct hxfr__frame *f);
/* Takes the session's settings and pending IDR request into f. */
void hxfr__session_prepare(struct hxfr__session *s, struct hxfr__frame *f, int64_t pts,
                           bool force_idr);
/* Queues f (its source acquired) for encoding, in request order. */
void hxfr__session_submit(struct hxfr__session *s, struct hxfr__frame *f);
/* A frame came back from the workers: record, deliver, free, go on. May
 * destroy a zombie session. */
void hxfr__session_complete(struct hxfr__session *s, struct hxfr__frame *f);
/* The encoder converted f's pixels while f is still in flight: its source
 * gives them back, and the client is told (SLOT_RELEASE) if it asked. */
void hxfr__session_consumed(struct hxfr__frame *f);
/* Fails every queued frame (request order) with status and msg. */
void hxfr__session_fail_queued(struct hxfr__session *s, int32_t status, const char *msg);

/* The delivery of a session a client owns (the default deliver): the
 * response, or the frame's ERROR, to that client. */
void hxfr__session_deliver_client(struct hxfr__session *s, struct hxfr__frame *f);

void hxfr__session_stats(struct hxfr__session *s, struct hxfr_host_session_stats *out, bool reset);
/* Percentile (0..100) of n samples; sorts a copy. 0 for n == 0. */
uint32_t hxfr__percentile(const uint32_t *samples, unsigned n, unsigned pct);

#endif
