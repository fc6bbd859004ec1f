/* Request handling: one handler per message type a client may send
 * (docs/hxfrd.md, "Requests"). Frames are in request-frame.c, the scanout
 * requests in scanout.c. Loop thread only. */
#ifndef HXFR_HOST_REQUEST_H
#define HXFR_HOST_REQUEST_H

#include "host-private.h"

/* Handles one complete message of c (header and fixed part; a body that
 * follows is claimed by the handler or left for the client to skip). */
void hxfr__request_handle(struct hxfr__client *c, const struct hxfr_parse_result *res);

#endif
