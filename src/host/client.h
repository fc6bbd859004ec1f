/* Clients: one accepted connection each, from accept to close. The input
 * path runs here (the incremental parser over the connection's reads,
 * inline frame bodies straight into frame buffers, the per-client window
 * that stops reading while it is full); every complete message goes to the
 * request handlers (request.c). Loop thread only.
 *
 * Closing: a client is never freed while a caller up the stack may still
 * use it. Handlers mark its connection cut; the event handler, the
 * completion path and the timer close it at safe points, and
 * hxfr__client_close() defers the free to the end of the dispatch round.
 */
#ifndef HXFR_HOST_CLIENT_H
#define HXFR_HOST_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include "host-private.h"

/* Serves fd (connected, non-blocking; taken, closed on failure). Beyond
 * max_clients the peer gets ERROR BUSY and -EBUSY is returned. exempt: no
 * handshake deadline (hxfr_host_add_client). via names the listener. */
int hxfr__client_accept(struct hxfr_host *h, int fd, const char *via, bool exempt);
void hxfr__client_on_event(struct hxfr__client *c, uint32_t events);
/* Closes the connection, ends the client's scanouts and subscriptions,
 * detaches its sessions and moves it to host->dead. */
void hxfr__client_close(struct hxfr__client *c, const char *why);
/* Frames completed: a paused client whose window has room goes on. */
void hxfr__client_resume(struct hxfr__client *c);
/* Housekeeping tick: linger, handshake and idle deadlines. */
void hxfr__client_tick(struct hxfr__client *c, uint64_t now_ms);
/* The server starts stopping: frames still arriving are abandoned. */
void hxfr__client_stop_reading(struct hxfr__client *c);

#endif
