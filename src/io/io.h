/* io: .npy and CSV readers and writers (internal to libgram; used by the CLI and fuzzed).
 *
 * Everything here is locale-independent (numbers always use '.', whatever setlocale says), never
 * prints, and reports errors through gram__fail with the file name and, for data, the line /
 * row and column. Files are read with POSIX read(2) and written with write(2); no stdio. */
#ifndef GRAM_IO_H
#define GRAM_IO_H

#include "../base/base.h"

/* A dense row-major float64 matrix read from a file. */
typedef struct gram__matrix {
    double *data;   /* rows × cols, row-major, allocated with gram__alloc (free with gram__matrix_free) */
    int64_t rows, cols;
    char **names;   /* CSV header names (cols strings) or NULL */
} gram__matrix;

typedef struct gram__read_opts {
    int header;       /* CSV: -1 detect (first row is a header if any field is not a number), 0 no, 1 yes */
    char delimiter;   /* CSV: 0 detect among ',', ';', '\t', ' '; else that character */
    int64_t max_bytes;/* refuse an input whose bytes, or whose values as float64, exceed this
                         (0: no limit); a stream is refused as soon as it passes the limit */
} gram__read_opts;

void gram__read_opts_init(gram__read_opts *o);

/* A default for max_bytes: a quarter of the machine's physical memory (at least 64 MiB), so that
 * an endless or lying input is refused with a message before the system runs out of memory
 * (Linux overcommits: an allocation of more than there is succeeds and the OOM killer ends the
 * process later). INT64_MAX when the memory size is unknown. */
int64_t gram__io_default_limit(void);
/* The machine's physical memory in bytes (sysconf), INT64_MAX when unknown. */
int64_t gram__io_physical_memory(void);

/* Reads a matrix from path ("-" = standard input). The format is chosen by content: the .npy
 * magic string "\x93NUMPY" means .npy, anything else is CSV. 1-D .npy arrays become N×1. A
 * CSV with one column is N×1. .npy data of every real dtype are converted to float64. Reads poll
 * ctx's progress callback, so a read blocked on a pipe or FIFO ends with GRAM_ECANCELLED when a
 * signal interrupts it and the callback asks to stop. */
gram_status gram__read_matrix(gram_context *ctx, const char *path, const gram__read_opts *opts,
                              gram__matrix *out);

/* The same from memory (name is used in messages); the fuzz targets call these. */
gram_status gram__npy_parse(gram_context *ctx, const char *name, const unsigned char *buf, size_t n,
                            gram__matrix *out);
gram_status gram__csv_parse(gram_context *ctx, const char *name, const char *buf, size_t n,
                            const gram__read_opts *opts, gram__matrix *out);

void gram__matrix_free(gram__matrix *m);

/* The format a matrix output path asks for, from its last component: ".npy" (any case) → .npy,
 * ".csv" (any case) or no suffix ("-", "/dev/stdout", "results", ".hidden") → CSV, any other
 * suffix ("out.txt", "out.npz", "out.") → unknown. */
typedef enum { GRAM__FMT_CSV = 0, GRAM__FMT_NPY = 1, GRAM__FMT_UNKNOWN = -1 } gram__format;
gram__format gram__output_format(const char *path);

/*
 * Outputs. Where the bytes go depends on what path is:
 * - "-", "/dev/stdout", "/dev/stderr", "/dev/fd/N", "/proc/self/fd/N": straight to that open
 *   descriptor (as a shell's redirection set it up: appending stays appending);
 * - an existing file that is not a regular file (a character or block device such as /dev/null,
 *   a FIFO, a socket's /proc link, a terminal): opened for writing and written through; nothing is
 *   created, renamed or removed;
 * - a directory: refused (GRAM_EIO, "is a directory");
 * - a regular file or a new name: written to a temporary name in the same directory, then renamed
 *   over path, so a failed write never leaves a partial file or harms the old one. A symbolic link
 *   (to a file, or dangling) is followed to its target: the temporary file goes beside the target,
 *   the rename replaces the target, and the link stays a link.
 * Writing polls ctx's progress callback like reading (a FIFO with no reader can be interrupted).
 *
 * In two steps, so that a command with several outputs writes all of them or none:
 * gram__output_stage_* prepares (writes the temporary file completely, or opens the device or
 * FIFO), gram__output_commit finishes (renames, or writes through), gram__output_discard undoes a
 * stage that will not be committed (removes the temporary file). Once staged, the output must be
 * committed or discarded; the data, text and names given to stage must stay valid until then, and
 * so must path. Every call leaves o safe to discard.
 */
typedef struct gram__output {
    const char *path;          /* as given, for messages */
    char *target;              /* the rename's destination (a resolved symlink), or NULL */
    char *tmp;                 /* the staged temporary file, or NULL */
    int fd;                    /* the descriptor written through at commit, or -1 */
    bool close_fd;             /* fd was opened here (not standard output or /dev/fd/N) */
    int kind;                  /* what to write through at commit */
    const double *data;
    int64_t rows, cols;
    const char *const *names;
    const char *text;
    size_t len;
} gram__output;

gram_status gram__output_stage_matrix(gram_context *ctx, gram__output *o, const char *path, const double *data,
                                      int64_t rows, int64_t cols, const char *const *names);
gram_status gram__output_stage_text(gram_context *ctx, gram__output *o, const char *path, const char *text,
                                    size_t len);
gram_status gram__output_commit(gram_context *ctx, gram__output *o);
void gram__output_discard(gram__output *o);

/* Writes rows × cols float64 (row-major) to path in the format gram__output_format names (.npy
 * v1.0 little-endian '<f8' C order, or CSV with %.17g and an optional header: names, cols
 * strings, or NULL); an unknown suffix is GRAM_EINVAL. Stage and commit in one call. */
gram_status gram__write_matrix(gram_context *ctx, const char *path, const double *data, int64_t rows,
                               int64_t cols, const char *const *names);

/* Writes a whole text (or byte) buffer to path the same way. The CLI uses it for SVG plots and
 * the model files for their bytes. */
gram_status gram__write_text(gram_context *ctx, const char *path, const char *text, size_t len);

/* Locale-independent number formatting and parsing. */
int gram__format_double(char *buf, size_t size, double v);    /* %.17g with '.', returns length */
int gram__parse_double(const char *s, size_t len, double *out); /* 1 on success (whole string) */

#endif
