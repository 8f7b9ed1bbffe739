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
    int64_t max_bytes;/* refuse inputs larger than this (0: no limit) */
} gram__read_opts;

void gram__read_opts_init(gram__read_opts *o);

/* Reads a matrix from path ("-" = standard input). The format is chosen by content: the .npy
 * magic string "\x93NUMPY" means .npy, anything else is CSV. 1-D .npy arrays become N×1. A
 * CSV with one column is N×1. Integer and float32 .npy data are converted to float64. */
gram_status gram__read_matrix(gram_context *ctx, const char *path, const gram__read_opts *opts,
                              gram__matrix *out);

/* The same from memory (name is used in messages); the fuzz targets call these. */
gram_status gram__npy_parse(gram_context *ctx, const char *name, const unsigned char *buf, size_t n,
                            gram__matrix *out);
gram_status gram__csv_parse(gram_context *ctx, const char *name, const char *buf, size_t n,
                            const gram__read_opts *opts, gram__matrix *out);

void gram__matrix_free(gram__matrix *m);

/* Writes rows × cols float64 (row-major) to path: ".npy" suffix → .npy v1.0 little-endian '<f8'
 * C order; anything else → CSV with %.17g and an optional header (names, cols strings, or NULL).
 * path "-" writes CSV to standard output. Files are written to a temporary name in the same
 * directory and renamed, so a failed write never leaves a partial file. */
gram_status gram__write_matrix(gram_context *ctx, const char *path, const double *data, int64_t rows,
                               int64_t cols, const char *const *names);

/* Writes a whole text buffer to path the same way (temporary name + rename; "-" = stdout). The
 * CLI uses it for SVG plots. */
gram_status gram__write_text(gram_context *ctx, const char *path, const char *text, size_t len);

/* Locale-independent number formatting and parsing. */
int gram__format_double(char *buf, size_t size, double v);    /* %.17g with '.', returns length */
int gram__parse_double(const char *s, size_t len, double *out); /* 1 on success (whole string) */

#endif
