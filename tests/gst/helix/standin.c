/* A stand-in for Helix's GStreamer plugin, for the test of both plugins
 * installed at once (tests/gst/test_gst.c, both_plugins_*): what matters
 * of Helix's plugin there is its identity, which this file reproduces from
 * the published facts: a file named libgstvsockenc.so, plugin name
 * "vsockenc", one element "vsockenc" of rank PRIMARY whose GType is
 * "GstVsockEnc", a GstVideoEncoder. It encodes nothing; the tests only
 * ask which element a name resolves to. */
#include <gst/gst.h>
#include <gst/video/gstvideoencoder.h>

#ifndef PACKAGE
#define PACKAGE "helix-standin"
#endif

G_DECLARE_FINAL_TYPE(GstVsockEnc, gst_vsockenc, GST, VSOCKENC, GstVideoEncoder)

struct _GstVsockEnc {
    GstVideoEncoder parent;
};

G_DEFINE_TYPE(GstVsockEnc, gst_vsockenc, GST_TYPE_VIDEO_ENCODER)

static GstStaticPadTemplate sink_template =
    GST_STATIC_PAD_TEMPLATE("sink", GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS("video/x-raw"));
static GstStaticPadTemplate src_template =
    GST_STATIC_PAD_TEMPLATE("src", GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS("video/x-h264"));

static void gst_vsockenc_class_init(GstVsockEncClass *klass)
{
    gst_element_class_add_static_pad_template(GST_ELEMENT_CLASS(klass), &sink_template);
    gst_element_class_add_static_pad_template(GST_ELEMENT_CLASS(klass), &src_template);
    gst_element_class_set_static_metadata(
        GST_ELEMENT_CLASS(klass), "Helix stand-in", "Codec/Encoder/Video",
        "Test stand-in with the identity of Helix's vsockenc", "hxfr tests");
}

static void gst_vsockenc_init(GstVsockEnc *self)
{
    (void)self;
}

static gboolean plugin_init(GstPlugin *plugin)
{
    return gst_element_register(plugin, "vsockenc", GST_RANK_PRIMARY, gst_vsockenc_get_type());
}

#pragma GCC visibility push(default)
GST_PLUGIN_DEFINE(GST_VERSION_MAJOR, GST_VERSION_MINOR, vsockenc, "Helix stand-in", plugin_init,
                  "1.0", "LGPL", "helix-standin", "https://example.invalid/standin")
#pragma GCC visibility pop
