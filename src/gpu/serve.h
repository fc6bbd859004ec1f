/* hxfr-gpu's HXFR server: libhxfr-host embedded in the device process,
 * on hxfr-gpu's own loop thread (docs/gpu.md "Serving HXFR"). It is the
 * VM's display publisher in Helix's model:
 *
 * - every connected connector is a scanout the VMM publishes
 *   (hxfr_host_scanout_enable), from boot on for scanout 0;
 * - a RESOURCE_FLUSH of what a scanout shows publishes that scanout's
 *   picture, straight from the resource's backing in guest memory, with
 *   the flush rectangle as damage; SET_SCANOUT to another resource (a page
 *   flip) publishes the whole picture;
 * - a peer's ENABLE_SCANOUT hot-plugs the connector at the asked size,
 *   DISABLE_SCANOUT unplugs it (commands to the device);
 * - FRAME_REQUEST(resource_id) without pixels is encoded from that
 *   resource's backing (the resolver).
 *
 * Threads: everything on the loop thread; the server's workers read guest
 * memory between publish/acquire and release.
 */
#ifndef HXFR_GPU_SERVE_H
#define HXFR_GPU_SERVE_H

#include <hxfr/host.h>

#include "device.h"
#include "hostcli.h"
#include "loop.h"

struct hxfr_serve;

/* Creates the server over cfg (the shared server options already applied;
 * its resolver and scanout_ops are set here) and watches its fd on loop.
 * It serves nothing until hxfr__serve_listen(); with no device (QEMU not
 * connected yet) resources are not found and no scanout exists. Returns
 * NULL and errno. */
struct hxfr_serve *hxfr__serve_new(struct hxfr_loop *loop, struct hxfr_host_config *cfg,
                                   struct hxfr_hostcli *cli);
/* Listens on uri (hxfrd's forms) and writes the endpoint it got (the port
 * the kernel chose for tcp:...:0) to bound (len bytes). Returns >= 0 or
 * -errno (already said on stderr). */
int hxfr__serve_listen(struct hxfr_serve *s, const char *uri, char *bound, size_t len);
/* The device QEMU connected (or NULL once it is gone): its connected
 * connectors become scanouts, its flushes frames. */
void hxfr__serve_set_device(struct hxfr_serve *s, struct hxfr_device *dev);
/* The statistics timer expired: the server's lines and hxfr-gpu's flush
 * latency. */
void hxfr__serve_stats(struct hxfr_serve *s);
/* Stops the server (frames in flight finish or fail, their pixels and the
 * guest's flushes given back) and frees it, before the device goes.
 * Accepts NULL. */
void hxfr__serve_destroy(struct hxfr_serve *s);

#endif
