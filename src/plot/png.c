/* png.c: the smallest correct PNG writer for our charts.
 *
 * 8-bit RGB, no interlace, every scanline with filter 0 (none): charts are
 * mostly flat colour, which deflate already squeezes well, so smarter
 * filters would not pay for their code. Chunks: IHDR, one IDAT (zlib
 * stream from compress2), IEND; CRCs from zlib's crc32. The file is written
 * with the atomic writer of metalearn/io.h, so a reader (or a crash, or a
 * full disk) sees either the old file or the whole new one. */
#include "plot/internal.h"

#include <stdio.h>
#include <string.h>
#include <zlib.h>

#include "metalearn/io.h"

static void put_u32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Length, type, data, CRC over type + data (errors stay in w). */
static void write_chunk(ml_file_writer *w, const char type[4], const uint8_t *data, uint32_t len) {
    uint8_t head[8], tail[4];
    put_u32(head, len);
    memcpy(head + 4, type, 4);
    uLong crc = crc32(0L, Z_NULL, 0);
    crc = crc32(crc, (const Bytef *)type, 4);
    if (len) crc = crc32(crc, data, len);
    put_u32(tail, (uint32_t)crc);
    ml_file_writer_write(w, head, 8);
    if (len) ml_file_writer_write(w, data, len);
    ml_file_writer_write(w, tail, 4);
}

static void set_err(char *err, size_t errlen, const char *fmt, const char *a, const char *b) {
    if (err && errlen) snprintf(err, errlen, fmt, a, b);
}

ml_status ml_plot_write_rgb(const char *path, const uint8_t *rgb, int width, int height,
                            char *err, size_t errlen) {
    if (err && errlen) err[0] = '\0';
    if (!path || !*path || !rgb || width < 1 || height < 1 || width > 16384 || height > 16384) {
        set_err(err, errlen, "plot: bad image arguments for %s%s", path ? path : "(null)", "");
        return ML_ERR_ARG;
    }
    size_t row = 1 + 3 * (size_t)width;
    size_t raw_len = row * (size_t)height;
    uLong z_cap = compressBound((uLong)raw_len);
    uint8_t *raw = ml_malloc(raw_len);
    uint8_t *z = ml_malloc(z_cap);
    ml_status st = ML_OK;
    if (!raw || !z) {
        set_err(err, errlen, "plot: out of memory encoding %s%s", path, "");
        st = ML_ERR_NOMEM;
        goto done;
    }
    for (int y = 0; y < height; y++) {
        raw[y * row] = 0; /* filter type: none */
        memcpy(raw + y * row + 1, rgb + (size_t)y * 3 * (size_t)width, 3 * (size_t)width);
    }
    uLongf z_len = z_cap;
    int zr = compress2(z, &z_len, raw, (uLong)raw_len, 6);
    if (zr != Z_OK) {
        set_err(err, errlen, "plot: zlib failed encoding %s: %s", path,
                zr == Z_MEM_ERROR ? "out of memory" : "compress error");
        st = zr == Z_MEM_ERROR ? ML_ERR_NOMEM : ML_ERR_STATE;
        goto done;
    }

    uint8_t ihdr[13];
    put_u32(ihdr, (uint32_t)width);
    put_u32(ihdr + 4, (uint32_t)height);
    ihdr[8] = 8;  /* bit depth */
    ihdr[9] = 2;  /* colour type: RGB */
    ihdr[10] = 0; /* deflate */
    ihdr[11] = 0; /* adaptive filtering (per-row filter byte) */
    ihdr[12] = 0; /* no interlace */
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};

    ml_file_writer w;
    st = ml_file_writer_open(&w, path, err, errlen);
    if (st) goto done;
    ml_file_writer_write(&w, sig, 8);
    write_chunk(&w, "IHDR", ihdr, 13);
    write_chunk(&w, "IDAT", z, (uint32_t)z_len);
    write_chunk(&w, "IEND", NULL, 0);
    st = ml_file_writer_commit(&w); /* fsync, rename, fsync of the folder; err names path */
done:
    ml_free(raw);
    ml_free(z);
    return st;
}
