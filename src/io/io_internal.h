/* io_internal: what the three io sources share (file.c does the descriptors, npy.c and csv.c the
 * formats). Not part of io.h because nothing outside src/io has a use for it. */
#ifndef GRAM_IO_INTERNAL_H
#define GRAM_IO_INTERNAL_H

#include "io.h"

#include <locale.h> /* locale_t: every includer defines _POSIX_C_SOURCE 200809L first */

/* Bytes per read(2) when data must be converted on the way in: large enough to amortise the
 * system call, small enough that the bounce buffer never matters next to the data. A stream's
 * array also starts at this size and doubles. */
#ifndef GRAM__IO_CHUNK /* the fuzz targets shrink it to reach chunk edges with small inputs */
#define GRAM__IO_CHUNK ((size_t)1 << 20)
#endif

/* The most one read(2) takes before the cancellation check runs again: a regular file's whole
 * size is never asked for in one call, so Ctrl-C is seen within one such step. */
#define GRAM__IO_STEP ((size_t)16 << 20)

/* True when ctx's progress callback asks to stop (done of total bytes; total 0 when unknown). */
bool gram__io_cancelled(gram_context *ctx, int64_t done, int64_t total);

/* open(2) of path; a call interrupted by a signal (a FIFO waiting for its other end) is retried
 * unless ctx's progress callback asks to stop. GRAM_OK with *fd, GRAM_EIO naming name ("cannot
 * open"), or GRAM_ECANCELLED. */
gram_status gram__io_open(gram_context *ctx, const char *name, const char *path, int flags, int *fd);

/* read(2) until n bytes or end of input, in steps of at most GRAM__IO_STEP. The progress callback
 * is asked before every read(2) and whenever a signal interrupts one (the CLI's SIGINT handler has
 * no SA_RESTART, so a read blocked on a silent pipe returns EINTR); done counts from done0 towards
 * total (0: unknown). GRAM_OK with *got (< n only at end of input), GRAM_EIO ("cannot read"), or
 * GRAM_ECANCELLED. */
gram_status gram__io_read(gram_context *ctx, const char *name, int fd, void *buf, size_t n, int64_t done0,
                          int64_t total, size_t *got);

/* The whole of an input in one buffer: the head_len bytes already read from fd (head), then the
 * rest; a regular file's known size (total, else -1) is allocated at once, a stream's buffer grows
 * by doubling as bytes arrive; more than max_bytes (> 0) is refused as soon as it is exceeded. With
 * text set, a NUL byte ends the read at once with GRAM_EFORMAT (no CSV holds one; /dev/zero or a
 * binary file is refused after its first step, not after its whole length). Free *buf with
 * gram__free. */
gram_status gram__io_read_all(gram_context *ctx, const char *name, int fd, const unsigned char *head,
                              size_t head_len, int64_t total, int64_t max_bytes, bool text, char **buf, size_t *len);

/* GRAM_EFORMAT "NAME: byte K is NUL: not CSV text ..." for the NUL at offset k (0-based). */
gram_status gram__io_nul_error(gram_context *ctx, const char *name, size_t k);

/* write(2) all n bytes, retrying short writes, and EINTR unless ctx's progress callback asks to
 * stop. GRAM_OK, GRAM_EIO ("cannot write"), or GRAM_ECANCELLED. */
gram_status gram__io_write(gram_context *ctx, const char *name, int fd, const void *buf, size_t n);

/* GRAM_EIO with "NAME: WHAT: strerror(err)". */
gram_status gram__io_fail_errno(gram_context *ctx, const char *name, const char *what, int err);

/* A message-safe copy of untrusted text: at most 40 characters, non-printable bytes as '?', "..."
 * when truncated. dst must hold 48 bytes. */
void gram__io_excerpt(char *dst, const char *src, size_t len);

/* Runs with the C locale selected for this thread, so strtod and snprintf use '.'; the C
 * parsers call the *_c variants in between to avoid switching per number. begin returns false
 * (and leaves the locale alone) if the C locale object could not be created. */
typedef struct gram__c_locale { locale_t saved; bool active; } gram__c_locale;
bool gram__c_locale_begin(gram__c_locale *s);
void gram__c_locale_end(gram__c_locale *s);
int gram__parse_double_c(const char *s, size_t len, double *out);   /* locale already C */
int gram__format_double_c(char *buf, size_t size, double v);         /* locale already C */

/* .npy from a descriptor whose first head_len bytes (the magic, at least) were already read into
 * head. total: the input's size in bytes if known (regular file), else -1; data is then read
 * incrementally. */
gram_status gram__npy_read_fd(gram_context *ctx, const char *name, int fd, const unsigned char *head,
                              size_t head_len, int64_t total, int64_t max_bytes, gram__matrix *out);

/* The bodies of the writers, to an open descriptor; name is used in messages. */
gram_status gram__npy_write_fd(gram_context *ctx, const char *name, int fd, const double *data,
                               int64_t rows, int64_t cols);
gram_status gram__csv_write_fd(gram_context *ctx, const char *name, int fd, const double *data,
                               int64_t rows, int64_t cols, const char *const *names);

#endif
