/* Plumbing shared by the hxfr elements (vsockenc, hxfrsrc): the connection
 * properties both have (address, reconnect, timeout), opening a connected
 * client with the element errors that go with it, and the eventfd that
 * wakes a thread polling the client. Internal to the plugin. */
#ifndef GST_HXFR_COMMON_H
#define GST_HXFR_COMMON_H

#include <gst/gst.h>

#include <hxfr/client.h>

G_BEGIN_DECLS

#define GST_HXFR_DEFAULT_ADDRESS   "vsock:2:5000"
#define GST_HXFR_DEFAULT_RECONNECT FALSE
#define GST_HXFR_DEFAULT_TIMEOUT   5000u

/* Property ids of the connection settings. Each element numbers its own
 * properties from GST_HXFR_PROP_LAST on. */
enum {
    GST_HXFR_PROP_0,
    GST_HXFR_PROP_ADDRESS,
    GST_HXFR_PROP_RECONNECT,
    GST_HXFR_PROP_TIMEOUT,
    GST_HXFR_PROP_LAST,
};

/* The connection settings, embedded in each element and protected by its
 * object lock. */
struct gst_hxfr_conn_props {
    gchar *address; /* owned, never NULL between init and finish */
    gboolean reconnect;
    guint io_timeout_ms;
};

/* Sets the defaults; finish frees the address. */
void gst_hxfr_conn_props_init(struct gst_hxfr_conn_props *p);
void gst_hxfr_conn_props_finish(struct gst_hxfr_conn_props *p);

/* Replaces the address, taking ownership of address; NULL restores the
 * default. Object lock held. */
void gst_hxfr_conn_props_set_address(struct gst_hxfr_conn_props *p, gchar *address);

/* Installs "address", "reconnect" and "timeout" (mutable in READY) under
 * the GST_HXFR_PROP_* ids, with each element's own descriptions. */
void gst_hxfr_conn_props_install(GObjectClass *klass, const gchar *address_blurb,
                                 const gchar *reconnect_blurb, const gchar *timeout_blurb);

/* set_property/get_property for the connection settings, object lock held.
 * Return FALSE when prop_id is not one of them (the element handles it). */
gboolean gst_hxfr_conn_props_set(struct gst_hxfr_conn_props *p, guint prop_id, const GValue *value);
gboolean gst_hxfr_conn_props_get(const struct gst_hxfr_conn_props *p, guint prop_id, GValue *value);

/* Creates a client with options o and connects it to address. On failure
 * posts an element error on element (connect_error is the resource error
 * code of a failed connection) and returns NULL. Caller owns the client. */
struct hxfr_client *gst_hxfr_client_open(GstElement *element, const struct hxfr_client_options *o,
                                         const gchar *address, GstResourceError connect_error);

/* A non-blocking eventfd that wakes a thread out of gst_hxfr_poll().
 * Returns -1 after posting an element error. */
int gst_hxfr_wake_open(GstElement *element);

/* Signals the eventfd; does nothing for fd < 0. Any thread. */
void gst_hxfr_wake(int wake_fd);

/* Takes any pending signal off the eventfd; does nothing for fd < 0. */
void gst_hxfr_wake_drain(int wake_fd);

/* Closes *wake_fd if open and sets it to -1. */
void gst_hxfr_wake_close(int *wake_fd);

/* Polls wake_fd and, if fd >= 0, fd for input, up to timeout_ms (-1 for
 * ever). A wake-up is drained here; the caller checks the flags it stands
 * for. Returns 1 if fd is readable (or hung up), 0 if not, -errno if poll
 * failed (-EINTR included). */
int gst_hxfr_poll(int wake_fd, int fd, int timeout_ms);

G_END_DECLS

#endif
