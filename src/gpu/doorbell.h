/* Raising the virtio-gpu display event through QEMU.
 *
 * After a host-side hot-plug or resize the guest has to re-read display
 * info and EDIDs, which its driver does on the DISPLAY config event. With
 * vhost-user-gpu that event is QEMU's alone: QEMU owns events_read in the
 * config space and ignores a back-end's config-change message ("unhandled
 * backend config change"). It raises the event when one of its displays
 * asks for a new size. QEMU's VNC server cannot serve a vhost-user-gpu
 * console ("The console requires display DMABUF support"); its D-Bus
 * display can, and has a SetUIInfo method for exactly this.
 *
 * So hxfr-gpu rings through QEMU's D-Bus display in peer-to-peer mode
 * (-display dbus,p2p=yes): it connects to a QMP socket of QEMU, passes one
 * end of a socket pair with getfd, attaches it with add_client
 * protocol=@dbus-display, authenticates (SASL EXTERNAL) and calls
 * org.qemu.Display1.Console.SetUIInfo on /org/qemu/Display1/Console_0.
 * The size sent does not matter (the guest asks hxfr-gpu, not QEMU, for
 * the display configuration); it alternates, because QEMU drops a request
 * equal to the previous one.
 */
#ifndef HXFR_GPU_DOORBELL_H
#define HXFR_GPU_DOORBELL_H

#include <stdint.h>

#include "device.h"
#include "loop.h"

struct hxfr_doorbell;

/* A doorbell on QEMU's QMP socket at path (nothing is connected yet).
 * Returns NULL and errno. */
struct hxfr_doorbell *hxfr__doorbell_new(struct hxfr_loop *loop, const char *qmp_path,
                                         hxfr_device_log_fn log, void *log_data);
/* Closes the connections. Accepts NULL. */
void hxfr__doorbell_destroy(struct hxfr_doorbell *b);
/* Asks QEMU to raise the display event: connects (once; again after a
 * connection failed) and calls SetUIInfo once the D-Bus peer is set up.
 * Rings that come before that are merged into one. */
void hxfr__doorbell_ring(struct hxfr_doorbell *b);
/* How many SetUIInfo calls QEMU answered without an error. */
uint64_t hxfr__doorbell_rings(const struct hxfr_doorbell *b);

#endif
