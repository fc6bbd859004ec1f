/* Exposes lib/pattern to the viewer tests (which are partly python):
 *
 *   view-pattern render VARIANT WIDTH HEIGHT COUNT
 *       writes COUNT frames as raw BGRA to stdout (ffmpeg -f rawvideo
 *       -pix_fmt bgra), for making an H.264 file with the ffmpeg CLI
 *   view-pattern probe VARIANT WIDTH HEIGHT MAX
 *       prints up to MAX lines "x y r g b": pixels of fixed colour in every
 *       frame (hxfr_pattern_probe), one per distinct colour first, then
 *       spread over the screen
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hxfr/proto.h>

#include "pattern.h"

static int usage(void)
{
    fprintf(stderr, "usage: view-pattern render VARIANT W H COUNT | probe VARIANT W H MAX\n");
    return 2;
}

static int render(int variant, unsigned w, unsigned h, unsigned long count)
{
    size_t size = (size_t)w * h * 4;
    uint8_t *buf = malloc(size);
    if (!buf) {
        return 1;
    }
    for (unsigned long i = 0; i < count; i++) {
        uint8_t *planes[3] = {buf, NULL, NULL};
        uint32_t strides[3] = {w * 4, 0, 0};
        if (hxfr_pattern_render((enum hxfr_pattern_variant)variant, HXFR_FORMAT_ARGB8888, w, h, i,
                                planes, strides) < 0 ||
            fwrite(buf, 1, size, stdout) != size) {
            free(buf);
            return 1;
        }
    }
    free(buf);
    return fflush(stdout) == 0 ? 0 : 1;
}

/* Picks probe points: first one point for each distinct fixed colour (a
 * fine scan, so small regions such as title bars are found too), then
 * points spread over a coarse grid, until max. */
static int probe(int variant, unsigned w, unsigned h, unsigned max)
{
    enum { MAX_COLOURS = 64 };
    uint8_t seen[MAX_COLOURS][3];
    unsigned n_seen = 0, printed = 0;
    for (int pass = 0; pass < 2 && printed < max; pass++) {
        unsigned step = pass == 0 ? 3 : (w / 8 > 8 ? w / 8 : 8);
        unsigned start = pass == 0 ? 0 : step / 3;
        for (unsigned y = start; y < h && printed < max; y += step) {
            for (unsigned x = start; x < w && printed < max; x += step) {
                uint8_t rgb[3];
                if (!hxfr_pattern_probe((enum hxfr_pattern_variant)variant, w, h, x, y, rgb)) {
                    continue;
                }
                bool is_new = true;
                for (unsigned i = 0; i < n_seen; i++) {
                    if (memcmp(seen[i], rgb, 3) == 0) {
                        is_new = false;
                    }
                }
                if (pass == 0 && (!is_new || n_seen == MAX_COLOURS)) {
                    continue;
                }
                if (is_new && n_seen < MAX_COLOURS) {
                    memcpy(seen[n_seen++], rgb, 3);
                }
                printf("%u %u %u %u %u\n", x, y, rgb[0], rgb[1], rgb[2]);
                printed++;
            }
        }
    }
    return printed > 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        return usage();
    }
    int variant = hxfr_pattern_variant_from_name(argv[2]);
    unsigned w = (unsigned)strtoul(argv[3], NULL, 10);
    unsigned h = (unsigned)strtoul(argv[4], NULL, 10);
    unsigned long n = strtoul(argv[5], NULL, 10);
    if (variant < 0 || w == 0 || h == 0 || w > 4096 || h > 4096) {
        return usage();
    }
    if (strcmp(argv[1], "render") == 0) {
        return render(variant, w, h, n);
    }
    if (strcmp(argv[1], "probe") == 0) {
        return probe(variant, w, h, (unsigned)n);
    }
    return usage();
}
