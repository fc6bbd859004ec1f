/* Plumbing shared by vsockenc and hxfrsrc; see gsthxfrcommon.h. */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "gsthxfrcommon.h"

void gst_hxfr_conn_props_init(struct gst_hxfr_conn_props *p)
{
    p->address = g_strdup(GST_HXFR_DEFAULT_ADDRESS);
    p->reconnect = GST_HXFR_DEFAULT_RECONNECT;
    p->io_timeout_ms = GST_HXFR_DEFAULT_TIMEOUT;
}

void gst_hxfr_conn_props_finish(struct gst_hxfr_conn_props *p)
{
    g_clear_pointer(&p->address, g_free);
}

void gst_hxfr_conn_props_set_address(struct gst_hxfr_conn_props *p, gchar *address)
{
    g_free(p->address);
    p->address = address ? address : g_strdup(GST_HXFR_DEFAULT_ADDRESS);
}

void gst_hxfr_conn_props_install(GObjectClass *klass, const gchar *address_blurb,
                                 const gchar *reconnect_blurb, const gchar *timeout_blurb)
{
    const GParamFlags rw = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY;
    g_object_class_install_property(klass, GST_HXFR_PROP_ADDRESS,
                                    g_param_spec_string("address", "Host address", address_blurb,
                                                        GST_HXFR_DEFAULT_ADDRESS, rw));
    g_object_class_install_property(klass, GST_HXFR_PROP_RECONNECT,
                                    g_param_spec_boolean("reconnect", "Reconnect", reconnect_blurb,
                                                         GST_HXFR_DEFAULT_RECONNECT, rw));
    g_object_class_install_property(klass, GST_HXFR_PROP_TIMEOUT,
                                    g_param_spec_uint("timeout", "Host timeout", timeout_blurb, 1,
                                                      G_MAXINT, GST_HXFR_DEFAULT_TIMEOUT, rw));
}

gboolean gst_hxfr_conn_props_set(struct gst_hxfr_conn_props *p, guint prop_id, const GValue *value)
{
    switch (prop_id) {
    case GST_HXFR_PROP_ADDRESS:
        gst_hxfr_conn_props_set_address(p, g_value_dup_string(value));
        return TRUE;
    case GST_HXFR_PROP_RECONNECT:
        p->reconnect = g_value_get_boolean(value);
        return TRUE;
    case GST_HXFR_PROP_TIMEOUT:
        p->io_timeout_ms = g_value_get_uint(value);
        return TRUE;
    default:
        return FALSE;
    }
}

gboolean gst_hxfr_conn_props_get(const struct gst_hxfr_conn_props *p, guint prop_id, GValue *value)
{
    switch (prop_id) {
    case GST_HXFR_PROP_ADDRESS:
        g_value_set_string(value, p->address);
        return TRUE;
    case GST_HXFR_PROP_RECONNECT:
        g_value_set_boolean(value, p->reconnect);
        return TRUE;
    case GST_HXFR_PROP_TIMEOUT:
        g_value_set_uint(value, p->io_timeout_ms);
        return TRUE;
    default:
        return FALSE;
    }
}

/* GST_ELEMENT_ERROR wants the error code as a token; this posts the same
 * message for a code chosen at run time. Takes ownership of text and debug. */
static void post_resource_error(GstElement *element, GstResourceError code, gchar *text,
                                gchar *debug, const gchar *function, gint line)
{
    GST_WARNING_OBJECT(element, "error: %s", text);
    GST_WARNING_OBJECT(element, "error: %s", debug);
    gst_element_message_full(element, GST_MESSAGE_ERROR, GST_RESOURCE_ERROR, code, text, debug,
                             __FILE__, function, line);
}

struct hxfr_client *gst_hxfr_client_open(GstElement *element, const struct hxfr_client_options *o,
                                         const gchar *address, GstResourceError connect_error)
{
    struct hxfr_client *client = hxfr_client_new(o);
    if (!client) {
        GST_ELEMENT_ERROR(element, RESOURCE, SETTINGS, ("Cannot create the hxfr client"),
                          ("hxfr_client_new: %s", g_strerror(errno)));
        return NULL;
    }
    int r = hxfr_client_connect(client, address);
    if (r < 0) {
        post_resource_error(
            element, connect_error,
            g_strdup_printf("Cannot reach the hxfr host at %s: %s", address, hxfr_strerror(r)),
            g_strdup_printf("hxfr_client_connect(\"%s\") returned %d. Is hxfrd running and "
                            "listening on that address (property 'address')?",
                            address, r),
            GST_FUNCTION, __LINE__);
        hxfr_client_destroy(client);
        return NULL;
    }
    return client;
}

int gst_hxfr_wake_open(GstElement *element)
{
    int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd < 0) {
        GST_ELEMENT_ERROR(element, RESOURCE, FAILED, ("Cannot create an eventfd"),
                          ("%s", g_strerror(errno)));
    }
    return fd;
}

void gst_hxfr_wake(int wake_fd)
{
    if (wake_fd >= 0) {
        /* A full counter still wakes the poll: the error can be ignored. */
        uint64_t one = 1;
        ssize_t n = write(wake_fd, &one, sizeof(one));
        (void)n;
    }
}

void gst_hxfr_wake_drain(int wake_fd)
{
    if (wake_fd >= 0) {
        uint64_t v;
        ssize_t n = read(wake_fd, &v, sizeof(v));
        (void)n;
    }
}

void gst_hxfr_wake_close(int *wake_fd)
{
    if (*wake_fd >= 0) {
        close(*wake_fd);
        *wake_fd = -1;
    }
}

int gst_hxfr_poll(int wake_fd, int fd, int timeout_ms)
{
    struct pollfd pfd[2] = {
        {.fd = wake_fd, .events = POLLIN},
        {.fd = fd, .events = POLLIN},
    };
    int n = poll(pfd, fd >= 0 ? 2 : 1, timeout_ms);
    if (n < 0) {
        return -errno;
    }
    if (n == 0) {
        return 0;
    }
    if (pfd[0].revents & POLLIN) {
        gst_hxfr_wake_drain(wake_fd);
    }
    return fd >= 0 && pfd[1].revents != 0;
}
