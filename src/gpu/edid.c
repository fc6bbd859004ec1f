/* EDID generation (see edid.h). Layout references: VESA E-EDID 1.4 (base
 * block, detailed timing descriptors, display descriptors), VESA DisplayID
 * 1.3 (the extension's section header and Type I detailed timings, whose
 * fields are stored minus one), VESA CVT 1.2 (reduced blanking v1). */
#include "edid.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

struct timing {
    uint32_t clock_khz;
    uint32_t hactive, hblank, hfront, hsync;
    uint32_t vactive, vblank, vfront, vsync;
};

/* Vertical sync width by aspect ratio, as CVT defines it. */
static uint32_t cvt_vsync(uint32_t w, uint32_t h)
{
    if (w * 3 == h * 4) {
        return 4;
    }
    if (w * 9 == h * 16) {
        return 5;
    }
    if (w * 10 == h * 16) {
        return 6;
    }
    if (w * 4 == h * 5 || w * 9 == h * 15) {
        return 7;
    }
    return 10;
}

/* CVT reduced blanking (v1): fixed 160-pixel horizontal blank, at least
 * 460 us of vertical blank, the clock rounded down to 0.25 MHz. */
static void cvt_rb(struct timing *t, uint32_t w, uint32_t h, uint32_t refresh)
{
    const double min_vblank_us = 460.0;
    uint32_t vsync = cvt_vsync(w, h);
    double line_us = (1e6 / refresh - min_vblank_us) / h;
    uint32_t vblank = (uint32_t)(min_vblank_us / line_us) + 1;
    if (vblank < 3 + vsync + 6) {
        vblank = 3 + vsync + 6;
    }
    uint64_t total = (uint64_t)(w + 160) * (h + vblank) * refresh;
    uint32_t khz = (uint32_t)(total / 250000) * 250;
    if (khz == 0) {
        khz = (uint32_t)((total + 9999) / 10000) * 10; /* tiny modes: 10 kHz steps */
    }
    *t = (struct timing){
        .clock_khz = khz,
        .hactive = w,
        .hblank = 160,
        .hfront = 48,
        .hsync = 32,
        .vactive = h,
        .vblank = vblank,
        .vfront = 3,
        .vsync = vsync,
    };
}

static uint32_t mm_of(uint32_t px)
{
    return px * 254 / 960; /* 96 dots per inch */
}

/* An 18-byte detailed timing descriptor; false if t does not fit one. */
static bool dtd(uint8_t *d, const struct timing *t)
{
    uint32_t clk = t->clock_khz / 10;
    uint32_t wmm = mm_of(t->hactive), hmm = mm_of(t->vactive);
    if (clk > 0xffff || t->hactive > 0xfff || t->vactive > 0xfff || t->vblank > 0xfff ||
        t->vfront > 15 || t->vsync > 15 || wmm > 0xfff || hmm > 0xfff) {
        return false;
    }
    d[0] = (uint8_t)clk;
    d[1] = (uint8_t)(clk >> 8);
    d[2] = (uint8_t)t->hactive;
    d[3] = (uint8_t)t->hblank;
    d[4] = (uint8_t)(((t->hactive >> 8) << 4) | (t->hblank >> 8));
    d[5] = (uint8_t)t->vactive;
    d[6] = (uint8_t)t->vblank;
    d[7] = (uint8_t)(((t->vactive >> 8) << 4) | (t->vblank >> 8));
    d[8] = (uint8_t)t->hfront;
    d[9] = (uint8_t)t->hsync;
    d[10] = (uint8_t)((t->vfront << 4) | t->vsync);
    d[11] = (uint8_t)(((t->hfront >> 8) << 6) | ((t->hsync >> 8) << 4));
    d[12] = (uint8_t)wmm;
    d[13] = (uint8_t)hmm;
    d[14] = (uint8_t)(((wmm >> 8) << 4) | (hmm >> 8));
    d[15] = 0;
    d[16] = 0;
    /* Digital separate sync; CVT-RB: +hsync, -vsync. */
    d[17] = 0x18 | 0x02;
    return true;
}

static void text_descriptor(uint8_t *d, uint8_t tag, const char *text)
{
    memset(d, 0, 18);
    d[3] = tag;
    size_t n = strlen(text);
    if (n > 13) {
        n = 13;
    }
    memcpy(d + 5, text, n);
    if (n < 13) {
        d[5 + n] = 0x0a;
        memset(d + 6 + n, 0x20, 13 - n - 1);
    }
}

static uint8_t checksum(const uint8_t *p, size_t n)
{
    uint8_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        sum = (uint8_t)(sum + p[i]);
    }
    return (uint8_t)(0x100 - sum);
}

/* A DisplayID Type I timing, 20 bytes. */
static void displayid_timing(uint8_t *d, const struct timing *t, bool preferred)
{
    uint32_t clk = t->clock_khz / 10 - 1;
    uint32_t f[8] = {t->hactive - 1, t->hblank - 1, t->hfront - 1, t->hsync - 1,
                     t->vactive - 1, t->vblank - 1, t->vfront - 1, t->vsync - 1};
    d[0] = (uint8_t)clk;
    d[1] = (uint8_t)(clk >> 8);
    d[2] = (uint8_t)(clk >> 16);
    d[3] = preferred ? 0x80 : 0x00; /* bit 7 preferred; aspect ratio 0 = 1:1 (unused) */
    for (int i = 0; i < 8; i++) {
        d[4 + 2 * i] = (uint8_t)f[i];
        d[5 + 2 * i] = (uint8_t)((f[i] >> 8) & 0x7f);
    }
    d[9] |= 0x80; /* hsync polarity + (bit 7 of the sync offset's high byte) */
}

/* Standard timing code (2 bytes) for w x h at 60 Hz, or 01 01 (unused). */
static void standard_timing(uint8_t *d, uint32_t w, uint32_t h)
{
    uint8_t aspect;
    if (w * 10 == h * 16) {
        aspect = 0;
    } else if (w * 3 == h * 4) {
        aspect = 1;
    } else if (w * 4 == h * 5) {
        aspect = 2;
    } else if (w * 9 == h * 16) {
        aspect = 3;
    } else {
        d[0] = d[1] = 1;
        return;
    }
    d[0] = (uint8_t)(w / 8 - 31);
    d[1] = (uint8_t)(aspect << 6 | (60 - 60));
}

size_t hxfr__edid_build(uint8_t out[HXFR_EDID_SIZE], uint32_t width, uint32_t height,
                        uint32_t index)
{
    if (width == 0 || height == 0 || width > 8192 || height > 8192) {
        return 0;
    }
    memset(out, 0, HXFR_EDID_SIZE);
    uint8_t *b = out;
    static const uint8_t header[8] = {0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00};
    memcpy(b, header, 8);
    /* Manufacturer "HXF": three 5-bit letters, big-endian. */
    uint16_t mfg = (uint16_t)(('H' - '@') << 10 | ('X' - '@') << 5 | ('F' - '@'));
    b[8] = (uint8_t)(mfg >> 8);
    b[9] = (uint8_t)mfg;
    b[10] = 0x01; /* product code 0x0001 */
    b[11] = 0x00;
    uint32_t serial = index + 1;
    memcpy(b + 12, &serial, 4); /* little-endian on the hosts we run on */
    b[16] = 0;                  /* week unknown */
    b[17] = 2026 - 1990;        /* model year */
    b[18] = 1;
    b[19] = 4;    /* EDID 1.4 */
    b[20] = 0xa5; /* digital, 8 bits per colour, DisplayPort */
    uint32_t wcm = mm_of(width) / 10, hcm = mm_of(height) / 10;
    b[21] = (uint8_t)(wcm > 255 ? 255 : wcm ? wcm : 1);
    b[22] = (uint8_t)(hcm > 255 ? 255 : hcm ? hcm : 1);
    b[23] = 120;  /* gamma 2.2 */
    b[24] = 0x07; /* RGB 4:4:4, sRGB default, preferred timing native, continuous frequency */
    /* sRGB chromaticity, 10-bit binary fractions. */
    static const uint16_t chroma[8] = {655, 338, 307, 614, 154, 61, 320, 337};
    b[25] = (uint8_t)((chroma[0] & 3) << 6 | (chroma[1] & 3) << 4 | (chroma[2] & 3) << 2 |
                      (chroma[3] & 3));
    b[26] = (uint8_t)((chroma[4] & 3) << 6 | (chroma[5] & 3) << 4 | (chroma[6] & 3) << 2 |
                      (chroma[7] & 3));
    for (int i = 0; i < 8; i++) {
        b[27 + i] = (uint8_t)(chroma[i] >> 2);
    }
    b[35] = 0x21; /* established: 640x480@60, 800x600@60 */
    b[36] = 0x08; /* 1024x768@60 */
    static const uint32_t std_modes[8][2] = {{1280, 720}, {1280, 800},  {1280, 1024}, {1440, 900},
                                             {1600, 900}, {1680, 1050}, {1920, 1080}, {1920, 1200}};
    for (int i = 0; i < 8; i++) {
        standard_timing(b + 38 + 2 * i, std_modes[i][0], std_modes[i][1]);
    }

    /* First descriptor: the preferred mode at the highest refresh that a
     * detailed timing can hold, or a halved size when a side exceeds its
     * 12 bits (the extension then carries the real one). */
    struct timing pref60, base;
    cvt_rb(&pref60, width, height, 60);
    bool base_is_pref60 = false;
    uint32_t bw = width, bh = height;
    for (;;) {
        static const uint32_t rates[3] = {60, 50, 30};
        bool done = false;
        for (int i = 0; i < 3 && !done; i++) {
            cvt_rb(&base, bw, bh, rates[i]);
            done = dtd(b + 54, &base);
            base_is_pref60 = done && i == 0 && bw == width && bh == height;
        }
        if (done) {
            break;
        }
        bw = (bw + 1) / 2;
        bh = (bh + 1) / 2;
    }
    /* Second: range limits. 24-75 Hz, 15-255 kHz, up to 1 GHz, no formula. */
    uint8_t *d = b + 72;
    d[3] = 0xfd;
    d[5] = 24;
    d[6] = 75;
    d[7] = 15;
    d[8] = 255;
    d[9] = 100;
    d[10] = 0x01;
    d[11] = 0x0a;
    memset(d + 12, 0x20, 6);
    char text[16];
    snprintf(text, sizeof(text), "hxfr-gpu-%u", (unsigned)(index + 1));
    text_descriptor(b + 90, 0xfc, text);
    snprintf(text, sizeof(text), "HXFR%08X", (unsigned)serial);
    text_descriptor(b + 108, 0xff, text);
    b[126] = 1; /* one extension block */
    b[127] = checksum(b, 127);

    /* DisplayID extension: tag, then a section (revision 1.2, product
     * type "extension", no section extensions) with one Type I timing data
     * block, the section checksum, and the EDID block checksum last. */
    uint8_t *x = out + 128;
    x[0] = 0x70;
    uint8_t *sec = x + 1;
    sec[0] = 0x12;
    sec[2] = 0x00;
    sec[3] = 0x00;
    uint8_t *blk = sec + 4;
    blk[0] = 0x03; /* Type I detailed timings */
    blk[1] = 0x00;
    unsigned n = 0;
    if (!base_is_pref60) {
        displayid_timing(blk + 3 + 20 * n++, &pref60, true);
    }
    static const uint32_t big[4][2] = {{5120, 2880}, {3840, 2160}, {2560, 1600}, {2560, 1440}};
    for (int i = 0; i < 4; i++) {
        if (big[i][0] == width && big[i][1] == height) {
            continue;
        }
        struct timing t;
        cvt_rb(&t, big[i][0], big[i][1], 60);
        displayid_timing(blk + 3 + 20 * n++, &t, false);
    }
    blk[2] = (uint8_t)(20 * n);
    sec[1] = (uint8_t)(3 + 20 * n); /* bytes of data blocks */
    size_t sec_len = 4 + sec[1];
    sec[sec_len] = checksum(sec, sec_len);
    x[127] = checksum(x, 127);
    return HXFR_EDID_SIZE;
}
