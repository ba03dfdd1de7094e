/* fileio.c: atomic file replacement, mkdir -p and JSON-lines appends.
 *
 * POSIX only (open/fsync/rename). The atomic writer never touches the
 * destination until the new content is complete and on disk; the only
 * moment the destination changes is the rename(2), which is atomic. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "metalearn/io.h"
#include "core/errfmt.h"


static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = ml_malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

ml_status ml_file_read_text(const char *path, size_t max_bytes, char **out, size_t *len, char *err, size_t errlen) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        ml__errf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return ML_ERR_IO;
    }
    size_t cap = 4096, n = 0;
    char *buf = ml_malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - 1 - n, f);
        if (ferror(f) || n < cap - 1) break;
        if (max_bytes && cap >= max_bytes) {
            ml__errf(err, errlen, "%s: larger than %zu bytes", path, max_bytes);
            ml_free(buf);
            fclose(f);
            return ML_ERR_ARG;
        }
        char *bigger = ml_malloc(cap * 2);
        if (bigger) memcpy(bigger, buf, n);
        ml_free(buf);
        buf = bigger;
        cap *= 2;
    }
    if (!buf) {
        ml__errf(err, errlen, "%s: out of memory", path);
        fclose(f);
        return ML_ERR_NOMEM;
    }
    if (ferror(f)) {
        ml__errf(err, errlen, "%s: read failed: %s", path, strerror(errno));
        ml_free(buf);
        fclose(f);
        return ML_ERR_IO;
    }
    fclose(f);
    buf[n] = 0;
    if (len) *len = n;
    *out = buf;
    return ML_OK;
}

ml_status ml_file_read_text_if_present(const char *path, size_t max_bytes, char **out, size_t *len, char *err,
                                       size_t errlen) {
    struct stat st;
    *out = NULL;
    if (len) *len = 0;
    if (lstat(path, &st) != 0 && errno == ENOENT) return ML_OK;
    return ml_file_read_text(path, max_bytes, out, len, err, errlen);
}

/* Writes all of buf, retrying short writes and EINTR. Returns 0 or errno. */
static int write_all(int fd, const void *buf, size_t len) {
    const char *p = buf;
    while (len) {
        ssize_t k = write(fd, p, len);
        if (k < 0) {
            if (errno == EINTR) continue;
            return errno;
        }
        if (k == 0) return EIO; /* should not happen for regular files */
        p += k;
        len -= (size_t)k;
    }
    return 0;
}

/* fsync of the directory holding path, so the rename itself is durable.
 * Filesystems that cannot fsync a directory (EINVAL) are accepted. */
static int fsync_parent_dir(const char *path) {
    const char *slash = strrchr(path, '/');
    char buf[4096];
    const char *dir = ".";
    if (slash) {
        size_t n = slash == path ? 1 : (size_t)(slash - path);
        if (n >= sizeof buf) return ENAMETOOLONG;
        memcpy(buf, path, n);
        buf[n] = 0;
        dir = buf;
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return errno;
    int r = fsync(fd) ? errno : 0;
    close(fd);
    return r == EINVAL ? 0 : r;
}

/* ---- streaming writer ------------------------------------------------------- */

static void writer_release(ml_file_writer *w) {
    if (w->fd >= 0) close(w->fd);
    w->fd = -1;
    ml_free(w->path);
    ml_free(w->tmp);
    w->path = w->tmp = NULL;
}

ml_status ml_file_writer_open(ml_file_writer *w, const char *path, char *err, size_t errlen) {
    memset(w, 0, sizeof *w);
    w->fd = -1;
    w->err = err;
    w->errlen = errlen;
    if (!path || !*path) {
        ml__errf(err, errlen, "(empty path): cannot write");
        return w->status = ML_ERR_ARG;
    }
    size_t n = strlen(path) + 32;
    w->path = dup_str(path);
    w->tmp = ml_malloc(n);
    if (!w->path || !w->tmp) {
        writer_release(w);
        ml__errf(err, errlen, "%s: out of memory", path);
        return w->status = ML_ERR_NOMEM;
    }
    snprintf(w->tmp, n, "%s.tmp.%ld", path, (long)getpid());
    /* O_TRUNC: a stale temp left by a crashed process with our pid is ours to reuse. */
    w->fd = open(w->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (w->fd < 0) {
        ml__errf(err, errlen, "%s: cannot create temp file %s: %s", path, w->tmp, strerror(errno));
        writer_release(w);
        return w->status = ML_ERR_IO;
    }
    return ML_OK;
}

ml_status ml_file_writer_write(ml_file_writer *w, const void *data, size_t len) {
    if (w->status) return w->status;
    if (w->fd < 0) return w->status = ML_ERR_STATE;
    int e = write_all(w->fd, data, len);
    if (e) {
        ml__errf(w->err, w->errlen, "%s: write failed after %llu bytes: %s", w->path,
                (unsigned long long)w->bytes, strerror(e));
        return w->status = ML_ERR_IO;
    }
    w->bytes += len;
    return ML_OK;
}

void ml_file_writer_abort(ml_file_writer *w) {
    if (w->tmp) unlink(w->tmp);
    writer_release(w);
}

ml_status ml_file_writer_commit(ml_file_writer *w) {
    if (w->fd < 0 && !w->status) w->status = ML_ERR_STATE; /* already released */
    if (w->status) {
        ml_file_writer_abort(w);
        return w->status;
    }
    const char *what = NULL;
    int e = 0;
    if (fsync(w->fd)) e = errno, what = "fsync";
    /* close can report a deferred write error (NFS), so it is checked too. */
    int fd = w->fd;
    w->fd = -1;
    if (close(fd) && !e) e = errno, what = "close";
    if (!e && rename(w->tmp, w->path)) e = errno, what = "rename";
    if (e) {
        ml__errf(w->err, w->errlen, "%s: %s of temp file failed: %s", w->path, what, strerror(e));
        ml_file_writer_abort(w);
        return w->status = ML_ERR_IO;
    }
    e = fsync_parent_dir(w->path);
    if (e) {
        /* The new content is in place; only its durability is in doubt. */
        ml__errf(w->err, w->errlen, "%s: written, but fsync of its directory failed: %s", w->path, strerror(e));
        writer_release(w);
        return w->status = ML_ERR_IO;
    }
    writer_release(w);
    return ML_OK;
}

ml_status ml_file_write_atomic(const char *path, const void *data, size_t len, char *err, size_t errlen) {
    ml_file_writer w;
    ml_status s = ml_file_writer_open(&w, path, err, errlen);
    if (s) return s;
    ml_file_writer_write(&w, data, len);
    return ml_file_writer_commit(&w);
}

/* ---- directories ------------------------------------------------------------ */

static int mkdir_one(const char *p) {
    if (!mkdir(p, 0777)) return 0;
    int e = errno;
    struct stat st;
    if (e == EEXIST) return stat(p, &st) ? errno : S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
    return e;
}

ml_status ml_mkdir_p(const char *dir, char *err, size_t errlen) {
    if (!dir || !*dir) {
        ml__errf(err, errlen, "(empty path): cannot create directory");
        return ML_ERR_ARG;
    }
    char *p = dup_str(dir);
    if (!p) {
        ml__errf(err, errlen, "%s: out of memory", dir);
        return ML_ERR_NOMEM;
    }
    int e = 0;
    /* Create each prefix ending before a '/', then the whole path. */
    for (char *q = p + 1; *q && !e; q++) {
        if (*q != '/' || q[-1] == '/') continue;
        *q = 0;
        e = mkdir_one(p);
        if (e) ml__errf(err, errlen, "%s: cannot create directory %s: %s", dir, p, strerror(e));
        *q = '/';
    }
    if (!e) {
        e = mkdir_one(p);
        if (e) ml__errf(err, errlen, "%s: cannot create directory: %s", dir, strerror(e));
    }
    ml_free(p);
    return e ? ML_ERR_IO : ML_OK;
}

/* ---- JSON lines ---------------------------------------------------------------- */

ml_status ml_jsonl_append(const char *path, const char *json_line, char *err, size_t errlen) {
    if (strchr(json_line, '\n')) {
        ml__errf(err, errlen, "%s: JSON line contains a newline", path);
        return ML_ERR_ARG;
    }
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) {
        ml__errf(err, errlen, "%s: cannot open for append: %s", path, strerror(errno));
        return ML_ERR_IO;
    }
    /* The length before, so a line that cannot be written whole (disk full
     * half-way) is cut off again instead of leaving a torn line that the
     * next append would run into. */
    struct stat st;
    off_t before = fstat(fd, &st) ? -1 : st.st_size;
    /* One writev: with O_APPEND the line and its newline land together. */
    size_t len = strlen(json_line);
    struct iovec iov[2] = {{(void *)json_line, len}, {(void *)"\n", 1}};
    ssize_t k;
    do k = writev(fd, iov, 2);
    while (k < 0 && errno == EINTR);
    int e = k < 0 ? errno : 0;
    /* A short write is finished piecewise, or undone. */
    if (!e && (size_t)k < len + 1) {
        size_t done = (size_t)k;
        if (done < len) e = write_all(fd, json_line + done, len - done);
        if (!e) e = write_all(fd, "\n", 1);
    }
    if (e && before >= 0 && ftruncate(fd, before) == 0) {
        close(fd);
        ml__errf(err, errlen, "%s: append failed (the line was not written): %s", path, strerror(e));
        return ML_ERR_IO;
    }
    if (close(fd) && !e) e = errno;
    if (e) {
        ml__errf(err, errlen, "%s: append failed: %s", path, strerror(e));
        return ML_ERR_IO;
    }
    return ML_OK;
}

ml_status ml_json_write_atomic(const char *path, const cJSON *json, char *err, size_t errlen) {
    char *text = cJSON_Print(json);
    if (!text) {
        ml__errf(err, errlen, "%s: out of memory printing JSON", path);
        return ML_ERR_NOMEM;
    }
    ml_file_writer w;
    ml_status st = ml_file_writer_open(&w, path, err, errlen);
    if (st == ML_OK) {
        ml_file_writer_write(&w, text, strlen(text));
        ml_file_writer_write(&w, "\n", 1); /* a proper text file */
        st = ml_file_writer_commit(&w);
    }
    cJSON_free(text);
    return st;
}
