/* Shared by the fuzz targets: the same bytes read back through gram__read_matrix, once from a
 * regular file (memfd: size known, data read straight into place) and once from a pipe (a stream:
 * incremental reads, growth, transpose at the end), so the descriptor paths are fuzzed against
 * the in-memory parser. Linux only; elsewhere the targets fuzz the in-memory parsers alone. */
#ifndef GRAM_FUZZ_FD_H
#define GRAM_FUZZ_FD_H

#define _GNU_SOURCE 1

#include "fuzz_common.h"
#include "io/io.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#if defined(__linux__)
#include <sys/mman.h>
#endif

static int fuzz_same_values(const gram__matrix *a, const gram__matrix *b)
{
    if (a->rows != b->rows || a->cols != b->cols) return 0;
    return memcmp(a->data, b->data, (size_t)(a->rows * a->cols) * sizeof(double)) == 0;
}

/* A result must be a non-empty matrix, a failure must leave out cleared and say which input. */
static void fuzz_check_result(gram_status st, const gram__matrix *m, gram_context *ctx, const char *name)
{
    if (st == GRAM_OK) {
        FUZZ_ASSERT(m->data && m->rows > 0 && m->cols > 0);
        volatile double sink = 0; /* touch every value: ASan checks the allocation's extent */
        for (int64_t k = 0; k < m->rows * m->cols; k++) sink += m->data[k];
        (void)sink;
        if (m->names)
            for (int64_t j = 0; j < m->cols; j++) FUZZ_ASSERT(m->names[j] != NULL);
    } else {
        FUZZ_ASSERT(!m->data && !m->names && m->rows == 0 && m->cols == 0);
        FUZZ_ASSERT(strstr(ctx->message, name) != NULL);
    }
}

/* Reads data through a descriptor (kind 0: memfd, 1: pipe) and compares with the in-memory
 * result (status want, matrix ref). */
static void fuzz_via_fd(const uint8_t *data, size_t size, const gram__read_opts *o, gram_status want,
                        const gram__matrix *ref, int kind)
{
#if defined(__linux__)
    int fds[2] = {-1, -1};
    if (kind == 0) {
        fds[0] = memfd_create("gram-fuzz", 0);
        if (fds[0] < 0) return;
        if (size && write(fds[0], data, size) != (ssize_t)size) { close(fds[0]); return; }
    } else {
        if (size > 65536 || pipe(fds) != 0) return; /* a pipe buffer holds 64 KiB: no writer thread */
        if (size && write(fds[1], data, size) != (ssize_t)size) { close(fds[0]); close(fds[1]); return; }
        close(fds[1]);
    }
    char path[64];
    snprintf(path, sizeof path, "/dev/fd/%d", fds[0]);
    struct gram_context ctx;
    memset(&ctx, 0, sizeof ctx);
    gram__matrix m;
    gram_status st = gram__read_matrix(&ctx, path, o, &m);
    fuzz_check_result(st, &m, &ctx, path);
    if (st != want) {
        fprintf(stderr, "%s: status %d, in memory %d: %s\n", kind ? "pipe" : "memfd", st, want, ctx.message);
        __builtin_trap();
    }
    if (st == GRAM_OK) FUZZ_ASSERT(fuzz_same_values(&m, ref));
    gram__matrix_free(&m);
    close(fds[0]);
#else
    (void)data, (void)size, (void)o, (void)want, (void)ref, (void)kind;
#endif
}

#endif
