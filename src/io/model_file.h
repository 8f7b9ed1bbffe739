/* model_file: a versioned, checksummed binary container for fitted models (internal to libgram).
 *
 * A model file holds a kind ("gp", "krr", ...) and named entries, each an int64 scalar, a UTF-8
 * string or a float64 matrix. The model code decides which entries a kind has; this layer only
 * guarantees that what comes back is exactly what was saved, or an error naming the file.
 *
 * Byte layout (all integers little-endian, whatever the host):
 *
 *     offset  size  field
 *          0     8  magic "GRAMMODL"
 *          8     4  u32 format version (1)
 *         12     4  u32 header size: bytes from offset 0 to the first entry (64 in version 1;
 *                   a reader takes more and skips the rest, which the checksum still covers)
 *         16    16  kind, ASCII, NUL padded (1 to 15 characters)
 *         32    16  writer: gram_version() of the library that wrote the file, NUL padded
 *         48     8  u64 entry count
 *         56     8  u64 payload size: bytes of entries, from the header's end to the checksum
 *         64     .  entries, one after another:
 *                     u32 name length (1 to 255) + name bytes (UTF-8, no control characters)
 *                     u32 type: 1 int64 → 8 bytes (two's complement)
 *                               2 string → u64 length + bytes (UTF-8, no NUL, no terminator)
 *                               3 float64 matrix → u64 rows, u64 cols, rows·cols IEEE 754
 *                                 binary64 values, row-major (NaN and Inf kept bit for bit)
 *        end-4     4  u32 CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320) of every byte
 *                     before it
 *
 * The first 48 bytes are the same in every format version, so an older gram can say which
 * version and which gram wrote a file it cannot read. A reader checks, in order: the magic, the
 * version (a newer one is refused before the checksum, with a message saying to upgrade), the
 * checksum, the sizes, the kind, then each entry against the bytes left. Everything read is
 * untrusted: no size is believed before it is checked against the bytes actually present, so a
 * damaged or hostile file costs memory linear in its own size and never more. */
#ifndef GRAM_MODEL_FILE_H
#define GRAM_MODEL_FILE_H

#include "io.h"

#define GRAM__MODEL_FORMAT_VERSION 1u
#define GRAM__MODEL_KIND_SIZE 16   /* kind and writer fields: at most 15 characters + NUL */
#define GRAM__MODEL_MAX_NAME 255   /* bytes in an entry name */

typedef enum { GRAM__ENTRY_I64 = 1, GRAM__ENTRY_STR = 2, GRAM__ENTRY_F64 = 3 } gram__entry_type;

typedef struct gram__entry {
    char *name;              /* NUL-terminated, owned */
    gram__entry_type type;
    int64_t i64;             /* GRAM__ENTRY_I64 */
    char *str;               /* GRAM__ENTRY_STR: NUL-terminated, owned */
    double *f64;             /* GRAM__ENTRY_F64: rows × cols row-major, owned; NULL when empty */
    int64_t rows, cols;
} gram__entry;

typedef struct gram__model_file {
    char kind[GRAM__MODEL_KIND_SIZE];   /* e.g. "gp", "krr"; "" if init was given an unusable one */
    char writer[GRAM__MODEL_KIND_SIZE]; /* after a load: the gram version that wrote the file */
    int64_t n;                          /* entries in use */
    int64_t cap;                        /* entries allocated */
    gram__entry *entries;
} gram__model_file;

/* Starts an empty model. A kind that is NULL, empty or longer than 15 characters leaves kind ""
 * and the model is then refused when saved (GRAM_EINVAL). */
void gram__model_file_init(gram__model_file *m, const char *kind);

/* Adding entries: names are 1 to 255 bytes of UTF-8 without control characters and must be new
 * to the model (GRAM_EINVAL otherwise); strings must be UTF-8. Data are copied. */
gram_status gram__model_add_i64(gram_context *ctx, gram__model_file *m, const char *name, int64_t v);
gram_status gram__model_add_str(gram_context *ctx, gram__model_file *m, const char *name, const char *s);
gram_status gram__model_add_f64(gram_context *ctx, gram__model_file *m, const char *name, const double *data,
                                int64_t rows, int64_t cols);

/* The entry called name, or NULL. */
const gram__entry *gram__model_find(const gram__model_file *m, const char *name);

/* Lookups: a missing entry or one of another type is GRAM_EFORMAT with "<where>: entry 'name'
 * is missing" / "... is not an integer" / "is not a string" / "is not a matrix". The pointers
 * returned belong to m. An empty matrix gives *data NULL with its rows and cols. */
gram_status gram__model_get_i64(gram_context *ctx, const gram__model_file *m, const char *where, const char *name,
                                int64_t *v);
gram_status gram__model_get_str(gram_context *ctx, const gram__model_file *m, const char *where, const char *name,
                                const char **s);
gram_status gram__model_get_f64(gram_context *ctx, const gram__model_file *m, const char *where, const char *name,
                                const double **data, int64_t *rows, int64_t *cols);

/* Frees the entries and leaves m empty (kind kept); harmless on a zeroed or failed-load model. */
void gram__model_file_free(gram__model_file *m);

/* The whole file in one buffer from gram__alloc (the caller frees it with gram__free). */
gram_status gram__model_to_bytes(gram_context *ctx, const gram__model_file *m, unsigned char **buf, size_t *size);

/* Parses a file held in memory; name is used in messages. expect_kind NULL accepts any kind.
 * out is overwritten (not freed) and always initialised: on failure it is empty, and
 * gram__model_file_free on it is harmless. */
gram_status gram__model_from_bytes(gram_context *ctx, const char *name, const unsigned char *buf, size_t size,
                                   const char *expect_kind, gram__model_file *out);

/* Files: save writes as gram__write_text does (a regular file or new name through a temporary
 * name and a rename, so a failure never leaves a partial file; a device or FIFO written through;
 * "-" to standard output). load reads path ("-": standard input) with gram__model_read_fd,
 * limited to the machine's physical memory (a model larger than that cannot be loaded). I/O
 * errors are GRAM_EIO with the system's text; a read stopped by ctx's progress callback (Ctrl-C
 * in the CLI) is GRAM_ECANCELLED. */
gram_status gram__model_save(gram_context *ctx, const char *path, const gram__model_file *m);
gram_status gram__model_load(gram_context *ctx, const char *path, const char *expect_kind, gram__model_file *out);

/* The bytes of a model file from fd (buffer from gram__alloc), for gram__model_from_bytes. The
 * magic, version and declared size are checked before the payload is read: something that is not
 * a model is refused after 8 bytes; a regular file smaller than its header declares, or larger
 * than max_bytes (> 0), at once; a stream whose header declares more than max_bytes before its
 * payload is read. A stream is read only up to the declared size (more is GRAM_EFORMAT), its
 * buffer growing with the bytes that arrive. Bytes that fail these checks early are returned as
 * they are where the parser gives the better message (a short or foreign file, another version). */
gram_status gram__model_read_fd(gram_context *ctx, const char *name, int fd, int64_t max_bytes, unsigned char **buf,
                                size_t *size);

/* CRC-32 (IEEE 802.3, as zlib's crc32): pass 0 to start, the previous result to continue. */
uint32_t gram__crc32(uint32_t crc, const void *data, size_t n);

#endif
