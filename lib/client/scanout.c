/* Push mode (client-private.h): subscribing to a scanout, and enabling or
 * disabling one this client publishes into. The client remembers both so
 * a reconnect restores them (connect.c). */
#include <errno.h>

#include "client-private.h"

int hxfr_client_subscribe(struct hxfr_client *c, uint32_t scanout_id, int timeout_ms)
{
    if (c->in_callback) {
        return -EDEADLK;
    }
    if (scanout_id > UINT16_MAX) {
        /* Pushed units carry the scanout id in the 16-bit session field. */
        return -EINVAL;
    }
    int r = hxfr__guest_settle(c);
    if (r < 0) {
        return r;
    }
    c->subscribed = true;
    c->ever_subscribed = true;
    c->scanout = scanout_id;
    c->stream_seq = 0;
    r = hxfr__guest_send_subscribe(c, timeout_ms < 0 ? c->o.io_timeout_ms : timeout_ms);
    if (r < 0) {
        c->subscribed = false;
    }
    return r;
}

int hxfr_client_enable_scanout(struct hxfr_client *c, uint32_t scanout_id, uint32_t width,
                               uint32_t height, uint32_t refresh_hz, int timeout_ms,
                               struct hxfr_scanout_resp *resp)
{
    if (c->in_callback) {
        return -EDEADLK;
    }
    if (scanout_id > UINT16_MAX || width == 0 || height == 0) {
        /* Frames reach a scanout through the 16-bit session field. */
        return -EINVAL;
    }
    int r = hxfr__guest_settle(c);
    if (r < 0) {
        return r;
    }
    struct hxfr_enable_scanout q = {
        .scanout_id = scanout_id, .width = width, .height = height, .refresh_hz = refresh_hz};
    r = hxfr__guest_send_scanout(c, true, &q, timeout_ms < 0 ? c->o.io_timeout_ms : timeout_ms,
                                 resp);
    if (r == 0) {
        c->publishing = true;
        c->published = q;
    }
    return r;
}

int hxfr_client_disable_scanout(struct hxfr_client *c, uint32_t scanout_id, int timeout_ms)
{
    if (c->in_callback) {
        return -EDEADLK;
    }
    if (scanout_id > UINT16_MAX) {
        return -EINVAL;
    }
    if (c->publishing && c->published.scanout_id == scanout_id) {
        /* Not enabled again by a reconnect, whatever the answer. */
        c->publishing = false;
    }
    int r = hxfr__guest_settle(c);
    if (r < 0) {
        return r;
    }
    struct hxfr_enable_scanout q = {.scanout_id = scanout_id};
    return hxfr__guest_send_scanout(c, false, &q, timeout_ms < 0 ? c->o.io_timeout_ms : timeout_ms,
                                    NULL);
}
