/* png.c: the smallest correct PNG writer for our charts.
 *
 * 8-bit RGB, no interlace, every scanline with filter 0 (none): charts are
 * mostly flat colour, which deflate already squeezes well, so smarter
 * filters would not pay for their code. Chunks: IHDR, one IDAT (zlib
 * stream from compress2), IEND; CRCs from zlib's crc32. The file goes to
 * path + ".tmp" first and is renamed into place, so a concurrent reader
 * sees either the old file or the whole new one. */
#include "plot/internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

static void put_u32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Length, type, data, CRC over type + data. Returns 0 on a short write. */
static int write_chunk(FILE *f, const char type[4], const uint8_t *data, uint32_t len) {
    uint8_t head[8], tail[4];
    put_u32(head, len);
    memcpy(head + 4, type, 4);
    uLong crc = crc32(0L, Z_NULL, 0);
    crc = crc32(crc, (const Bytef *)type, 4);
    if (len) crc = crc32(crc, data, len);
    put_u32(tail, (uint32_t)crc);
    return fwrite(head, 1, 8, f) == 8 && (!len || fwrite(data, 1, len, f) == len) &&
           fwrite(tail, 1, 4, f) == 4;
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
    size_t plen = strlen(path);
    uint8_t *raw = ml_malloc(raw_len);
    uint8_t *z = ml_malloc(z_cap);
    char *tmp = ml_malloc(plen + 5);
    ml_status st = ML_OK;
    FILE *f = NULL;
    if (!raw || !z || !tmp) {
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

    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);
    f = fopen(tmp, "wb");
    if (!f) {
        set_err(err, errlen, "plot: cannot write %s: %s", tmp, strerror(errno));
        st = ML_ERR_IO;
        goto done;
    }
    int ok = fwrite(sig, 1, 8, f) == 8 && write_chunk(f, "IHDR", ihdr, 13) &&
             write_chunk(f, "IDAT", z, (uint32_t)z_len) && write_chunk(f, "IEND", NULL, 0);
    /* fsync before rename: otherwise a crash can leave an empty file under
     * the final name on some filesystems. */
    ok = ok && fflush(f) == 0 && fsync(fileno(f)) == 0;
    int saved = errno;
    if (fclose(f) != 0 && ok) {
        ok = 0;
        saved = errno;
    }
    f = NULL;
    if (!ok) {
        set_err(err, errlen, "plot: cannot write %s: %s", tmp, strerror(saved ? saved : EIO));
        remove(tmp);
        st = ML_ERR_IO;
        goto done;
    }
    if (rename(tmp, path) != 0) {
        saved = errno;
        set_err(err, errlen, "plot: cannot rename temporary file to %s: %s", path, strerror(saved));
        remove(tmp);
        st = ML_ERR_IO;
    }
done:
    ml_free(raw);
    ml_free(z);
    ml_free(tmp);
    return st;
}
