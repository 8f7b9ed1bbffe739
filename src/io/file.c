/* file: descriptors and paths (reading a whole input, writing through a temporary name and a
 * rename), and the locale-independent number formatting and parsing the formats share. */
#define _POSIX_C_SOURCE 200809L

#include "io_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h> /* snprintf and rename only: no FILE* */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

/* ---- descriptors ---------------------------------------------------------------------------- */

/* One read(2) or write(2) moves at most this much: Linux caps a call near 2 GiB anyway. */
#define IO_MAX_CALL ((size_t)1 << 30)

int gram__io_read_full(int fd, void *buf, size_t n, size_t *got)
{
    unsigned char *p = buf;
    size_t done = 0;
    while (done < n) {
        size_t want = n - done < IO_MAX_CALL ? n - done : IO_MAX_CALL;
        ssize_t r = read(fd, p + done, want);
        if (r < 0) {
            if (errno == EINTR) continue;
            *got = done;
            return errno;
        }
        if (r == 0) break;
        done += (size_t)r;
    }
    *got = done;
    return 0;
}

int gram__io_write_all(int fd, const void *buf, size_t n)
{
    const unsigned char *p = buf;
    while (n > 0) {
        size_t want = n < IO_MAX_CALL ? n : IO_MAX_CALL;
        ssize_t w = write(fd, p, want);
        if (w < 0) {
            if (errno == EINTR) continue;
            return errno;
        }
        if (w == 0) return EIO;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

gram_status gram__io_fail_errno(gram_context *ctx, const char *name, const char *what, int err)
{
    char text[160];
#if defined(_GNU_SOURCE) && defined(__GLIBC__)
    const char *s = strerror_r(err, text, sizeof text); /* the GNU variant returns the text */
#else
    const char *s = text;
    if (strerror_r(err, text, sizeof text) != 0) snprintf(text, sizeof text, "error %d", err);
#endif
    return gram__fail(ctx, GRAM_EIO, "%s: %s: %s", name, what, s);
}

void gram__io_excerpt(char *dst, const char *src, size_t len)
{
    const size_t max = 40;
    size_t n = len < max ? len : max, k = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)src[i];
        dst[k++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    if (len > max) {
        memcpy(dst + k, "...", 3);
        k += 3;
    }
    dst[k] = '\0';
}

/* ---- the C locale -------------------------------------------------------------------------- */

/* One locale object for the process, made on first use and never freed (it is a few bytes on
 * glibc, where "C" is even a static object). uselocale() switches only the calling thread, so a
 * caller's setlocale(LC_ALL, "de_DE.UTF-8") and other threads are unaffected. */
static locale_t c_locale = (locale_t)0;
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;

static void c_locale_make(void) { c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0); }

bool gram__c_locale_begin(gram__c_locale *s)
{
    s->active = false;
    s->saved = (locale_t)0;
    pthread_once(&c_locale_once, c_locale_make);
    if (c_locale == (locale_t)0) return false;
    s->saved = uselocale(c_locale);
    if (s->saved == (locale_t)0) return false;
    s->active = true;
    return true;
}

void gram__c_locale_end(gram__c_locale *s)
{
    if (s->active) uselocale(s->saved);
    s->active = false;
}

int gram__parse_double_c(const char *s, size_t len, double *out)
{
    if (!s || len == 0) return 0;
    /* strtod skips leading white space and stops at the first bad character; we want the whole
     * string to be the number, so neither may happen. */
    unsigned char c0 = (unsigned char)s[0];
    if (c0 == ' ' || (c0 >= '\t' && c0 <= '\r')) return 0;
    if (memchr(s, '\0', len)) return 0;
    char small[64], *buf = small;
    if (len >= sizeof small) {
        buf = gram__alloc(len + 1);
        if (!buf) return 0;
    }
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *end = NULL;
    /* ERANGE is fine: overflow gives ±inf (the callers reject non-finite values with their
     * position) and underflow gives the correctly rounded subnormal or zero. */
    double v = strtod(buf, &end);
    int ok = end == buf + len;
    if (buf != small) gram__free(buf);
    if (ok) *out = v;
    return ok;
}

int gram__format_double_c(char *buf, size_t size, double v)
{
    if (isnan(v)) return snprintf(buf, size, "nan"); /* not "-nan", whatever the sign bit */
    if (isinf(v)) return snprintf(buf, size, v < 0 ? "-inf" : "inf");
    return snprintf(buf, size, "%.17g", v); /* 17 significant digits round-trip every double */
}

int gram__parse_double(const char *s, size_t len, double *out)
{
    gram__c_locale loc;
    if (!gram__c_locale_begin(&loc)) return 0;
    int ok = gram__parse_double_c(s, len, out);
    gram__c_locale_end(&loc);
    return ok;
}

int gram__format_double(char *buf, size_t size, double v)
{
    gram__c_locale loc;
    if (gram__c_locale_begin(&loc)) {
        int n = gram__format_double_c(buf, size, v);
        gram__c_locale_end(&loc);
        return n;
    }
    /* No locale object (out of memory): format in the global locale and put the '.' back. */
    int n = gram__format_double_c(buf, size, v);
    const char *dp = localeconv()->decimal_point;
    size_t dl = dp ? strlen(dp) : 0;
    if (n > 0 && buf && size > 0 && dl > 0 && strcmp(dp, ".") != 0) {
        char *hit = strstr(buf, dp);
        if (hit) {
            *hit = '.';
            memmove(hit + 1, hit + dl, strlen(hit + dl) + 1);
            n -= (int)(dl - 1);
        }
    }
    return n;
}

/* ---- reading -------------------------------------------------------------------------------- */

void gram__read_opts_init(gram__read_opts *o)
{
    if (!o) return;
    o->header = -1;
    o->delimiter = 0;
    o->max_bytes = 0;
}

void gram__matrix_free(gram__matrix *m)
{
    if (!m) return;
    if (m->names) {
        for (int64_t j = 0; j < m->cols; j++) gram__free(m->names[j]);
        gram__free(m->names);
    }
    gram__free(m->data);
    m->data = NULL;
    m->names = NULL;
    m->rows = m->cols = 0;
}

gram_status gram__io_read_all(gram_context *ctx, const char *name, int fd, const unsigned char *head,
                              size_t head_len, int64_t total, int64_t max_bytes, char **text, size_t *len)
{
    size_t cap;
    if (total >= 0) {
        if ((uint64_t)total >= SIZE_MAX)
            return gram__fail(ctx, GRAM_EOVERFLOW, "%s: %lld bytes do not fit in memory", name, (long long)total);
        cap = (size_t)total + 1; /* +1: the read that sees end of file needs room */
    } else {
        cap = (size_t)1 << 16;
    }
    if (cap < head_len + 1) cap = head_len + 1;
    char *buf = gram__alloc(cap);
    if (!buf) return gram__fail(ctx, GRAM_ENOMEM, "%s: cannot allocate %zu bytes for the text", name, cap);
    if (head_len) memcpy(buf, head, head_len);
    size_t n = head_len;
    for (;;) {
        if (n == cap) {
            size_t ncap = cap > SIZE_MAX / 2 ? SIZE_MAX : cap * 2;
            if (ncap == cap) {
                gram__free(buf);
                return gram__fail(ctx, GRAM_EOVERFLOW, "%s: input too large", name);
            }
            char *nb = gram__alloc(ncap);
            if (!nb) {
                gram__free(buf);
                return gram__fail(ctx, GRAM_ENOMEM, "%s: cannot allocate %zu bytes for the text", name, ncap);
            }
            memcpy(nb, buf, n);
            gram__free(buf);
            buf = nb;
            cap = ncap;
        }
        size_t got = 0;
        int err = gram__io_read_full(fd, buf + n, cap - n, &got);
        n += got;
        if (err) {
            gram__free(buf);
            return gram__io_fail_errno(ctx, name, "cannot read", err);
        }
        if (max_bytes > 0 && (uint64_t)n > (uint64_t)max_bytes) {
            gram__free(buf);
            return gram__fail(ctx, GRAM_EOVERFLOW, "%s: input is larger than the limit of %lld bytes", name,
                              (long long)max_bytes);
        }
        if (n < cap) break; /* read_full stops short only at end of input */
    }
    *text = buf;
    *len = n;
    return GRAM_OK;
}

gram_status gram__read_matrix(gram_context *ctx, const char *path, const gram__read_opts *opts,
                              gram__matrix *out)
{
    if (!out) return gram__fail(ctx, GRAM_EINVAL, "read: out must not be NULL");
    memset(out, 0, sizeof *out);
    if (!path) return gram__fail(ctx, GRAM_EINVAL, "read: path must not be NULL");
    gram__read_opts defaults;
    if (!opts) {
        gram__read_opts_init(&defaults);
        opts = &defaults;
    }
    if (opts->max_bytes < 0)
        return gram__fail(ctx, GRAM_EINVAL, "%s: max_bytes must be >= 0, got %lld", path, (long long)opts->max_bytes);

    bool is_stdin = strcmp(path, "-") == 0;
    const char *name = is_stdin ? "<stdin>" : path;
    int fd = 0;
    if (!is_stdin) {
        do fd = open(path, O_RDONLY | O_CLOEXEC);
        while (fd < 0 && errno == EINTR);
        if (fd < 0) return gram__io_fail_errno(ctx, name, "cannot open", errno);
    }

    gram_status st = GRAM_OK;
    struct stat sb;
    int64_t total = -1; /* bytes left to read, when the input is a regular file */
    if (fstat(fd, &sb) != 0) {
        st = gram__io_fail_errno(ctx, name, "cannot stat", errno);
        goto done;
    }
    if (S_ISDIR(sb.st_mode)) {
        st = gram__fail(ctx, GRAM_EIO, "%s: is a directory", name);
        goto done;
    }
    if (S_ISREG(sb.st_mode) && sb.st_size > 0) {
        off_t pos = lseek(fd, 0, SEEK_CUR); /* stdin redirected from a file may not be at 0 */
        if (pos >= 0 && pos <= sb.st_size) total = (int64_t)(sb.st_size - pos);
    }
    if (total >= 0 && opts->max_bytes > 0 && total > opts->max_bytes) {
        st = gram__fail(ctx, GRAM_EOVERFLOW, "%s: input is larger than the limit of %lld bytes (%lld bytes)", name,
                        (long long)opts->max_bytes, (long long)total);
        goto done;
    }

    unsigned char head[6];
    size_t got = 0;
    int err = gram__io_read_full(fd, head, sizeof head, &got);
    if (err) {
        st = gram__io_fail_errno(ctx, name, "cannot read", err);
        goto done;
    }
    if (got == sizeof head && memcmp(head, "\x93NUMPY", 6) == 0) {
        st = gram__npy_read_fd(ctx, name, fd, head, got, total, opts->max_bytes, out);
    } else {
        char *text = NULL;
        size_t len = 0;
        st = gram__io_read_all(ctx, name, fd, head, got, total, opts->max_bytes, &text, &len);
        if (st == GRAM_OK) {
            st = gram__csv_parse(ctx, name, text, len, opts, out);
            gram__free(text);
        }
    }
done:
    if (!is_stdin) close(fd);
    return st;
}

/* ---- writing -------------------------------------------------------------------------------- */

typedef enum { JOB_NPY, JOB_CSV, JOB_TEXT } job_kind;

typedef struct write_job {
    job_kind kind;
    const double *data;
    int64_t rows, cols;
    const char *const *names;
    const char *text;
    size_t len;
} write_job;

static gram_status run_job(gram_context *ctx, const char *name, int fd, const write_job *j)
{
    switch (j->kind) {
    case JOB_NPY: return gram__npy_write_fd(ctx, name, fd, j->data, j->rows, j->cols);
    case JOB_CSV: return gram__csv_write_fd(ctx, name, fd, j->data, j->rows, j->cols, j->names);
    case JOB_TEXT: {
        int err = gram__io_write_all(fd, j->text, j->len);
        return err ? gram__io_fail_errno(ctx, name, "cannot write", err) : GRAM_OK;
    }
    }
    return gram__fail(ctx, GRAM_EINTERNAL, "%s: unknown write job", name);
}

/* Six characters for "PATH.tmp.XXXXXX". Not mkstemp(3): that creates the file with mode 0600,
 * and a renamed output should get the usual 0666 & ~umask, which open(2) applies by itself.
 * O_EXCL gives the same no-clobber guarantee. */
static void temp_suffix(char *s)
{
    static atomic_uint counter;
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t z = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ ((uint64_t)getpid() << 40) ^
                 ((uint64_t)atomic_fetch_add(&counter, 1u) * 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    for (int i = 0; i < 6; i++) {
        s[i] = alphabet[z % 62];
        z /= 62;
    }
}

static gram_status write_atomic(gram_context *ctx, const char *path, const write_job *job)
{
    if (strcmp(path, "-") == 0) return run_job(ctx, "<stdout>", 1, job);
    size_t n = strlen(path);
    if (n == 0) return gram__fail(ctx, GRAM_EINVAL, "write: path must not be empty");
    char *tmp = gram__alloc(n + 16);
    if (!tmp) return gram__fail(ctx, GRAM_ENOMEM, "%s: cannot allocate a temporary name", path);
    memcpy(tmp, path, n);
    memcpy(tmp + n, ".tmp.", 5);
    int fd = -1;
    for (int attempt = 0; attempt < 100 && fd < 0; attempt++) {
        temp_suffix(tmp + n + 5);
        tmp[n + 11] = '\0';
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0 && errno != EEXIST && errno != EINTR) break;
    }
    if (fd < 0) {
        gram_status st = gram__io_fail_errno(ctx, path, "cannot create a temporary file next to it", errno);
        gram__free(tmp);
        return st;
    }
    gram_status st = run_job(ctx, path, fd, job);
    /* close(2) can report a deferred write error (NFS, quotas); a failed close still releases
     * the descriptor, so it is never retried. */
    if (close(fd) != 0 && st == GRAM_OK) st = gram__io_fail_errno(ctx, path, "cannot write", errno);
    if (st == GRAM_OK && rename(tmp, path) != 0)
        st = gram__io_fail_errno(ctx, path, "cannot rename the temporary file onto it", errno);
    if (st != GRAM_OK) unlink(tmp);
    gram__free(tmp);
    return st;
}

static bool has_npy_suffix(const char *path)
{
    size_t n = strlen(path);
    if (n < 4) return false;
    const char *s = path + n - 4;
    return s[0] == '.' && (s[1] | 0x20) == 'n' && (s[2] | 0x20) == 'p' && (s[3] | 0x20) == 'y';
}

gram_status gram__write_matrix(gram_context *ctx, const char *path, const double *data, int64_t rows,
                               int64_t cols, const char *const *names)
{
    if (!path) return gram__fail(ctx, GRAM_EINVAL, "write: path must not be NULL");
    if (rows < 0 || cols < 0)
        return gram__fail(ctx, GRAM_EINVAL, "%s: rows and cols must be >= 0, got %lld x %lld", path, (long long)rows,
                          (long long)cols);
    int64_t count;
    size_t bytes;
    if (!gram__mul_i64(rows, cols, &count) || !gram__bytes(count, sizeof(double), &bytes))
        return gram__fail(ctx, GRAM_EOVERFLOW, "%s: %lld x %lld doubles overflow the address space", path,
                          (long long)rows, (long long)cols);
    if (count > 0 && !data) return gram__fail(ctx, GRAM_EINVAL, "%s: data must not be NULL", path);
    write_job job = {has_npy_suffix(path) && strcmp(path, "-") != 0 ? JOB_NPY : JOB_CSV, data, rows, cols, names,
                     NULL, 0};
    return write_atomic(ctx, path, &job);
}

gram_status gram__write_text(gram_context *ctx, const char *path, const char *text, size_t len)
{
    if (!path) return gram__fail(ctx, GRAM_EINVAL, "write: path must not be NULL");
    if (!text && len > 0) return gram__fail(ctx, GRAM_EINVAL, "%s: text must not be NULL", path);
    write_job job = {JOB_TEXT, NULL, 0, 0, NULL, text, len};
    return write_atomic(ctx, path, &job);
}
