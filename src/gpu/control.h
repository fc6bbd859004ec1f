/* hxfr-gpu's control socket (--control PATH): a line protocol on a UNIX
 * stream socket for the host's administrator and the tests. One command
 * per line, answered by zero or more lines and then "ok" or "error TEXT":
 *
 *   scanout ID WxH      hot-plug or resize connector ID (Virtual-<ID+1>)
 *   scanout ID off      unplug it
 *   info                one line per scanout and a summary of resources
 *   resource ID         size, format, stride, backing pieces of a resource
 *   cursor ID           the cursor of scanout ID
 *   read ID inplace     "data N", then N raw bytes: resource ID read in place
 *   read ID copy        the same from the device's host copy
 *   freeze              hold every flush from now on: the guest waits for
 *                       its RESOURCE_FLUSH answer, so its picture stands
 *                       still (a tear-free "read ID inplace")
 *   thaw                answer the held flush, hold no more
 *
 * It goes through gpu.h only, like any other consumer of the device (its
 * freeze is a flush listener that holds, as an encoder does).
 * The socket file is created mode 0600; connections are few (8 at most).
 */
#ifndef HXFR_GPU_CONTROL_H
#define HXFR_GPU_CONTROL_H

#include "device.h"
#include "loop.h"

struct hxfr_control;

/* Listens on path (replacing a stale socket file there). dev may be NULL
 * until QEMU connects (commands then answer "error no device"). Returns
 * NULL and errno. */
struct hxfr_control *hxfr__control_new(struct hxfr_loop *loop, const char *path);
/* Points the control socket at the device (or NULL when it goes). */
void hxfr__control_set_device(struct hxfr_control *c, struct hxfr_device *dev);
/* Closes every connection and the listener, removes the socket file.
 * Accepts NULL. */
void hxfr__control_destroy(struct hxfr_control *c);

#endif
