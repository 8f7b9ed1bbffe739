/* libFuzzer target: model files, the container (gram__model_from_bytes, gram__model_read_fd) and
 * the GP and KRR models in it (gram_gp_from_bytes, gram_krr_from_bytes), then the loaded model in
 * use.
 *
 * Checksums: a mutation almost never leaves the CRC-32 right, so a target that parsed only the
 * input as given would spend its time at the checksum test. Each input is parsed as given, and
 * then twice repaired: once with the CRC recomputed over the mutated bytes, once with the header's
 * payload size set to what the bytes hold and then the CRC recomputed (so inserted or deleted bytes
 * reach the entry parser instead of the size check). The corpus keeps the raw inputs; the repairs
 * are a pure function of them, so a replay reaches the same code.
 *
 * Invariants, for every variant:
 *   - the container: a failure is GRAM_EFORMAT (GRAM_ENOMEM, GRAM_EOVERFLOW) with a message naming
 *     the input and an empty model; a success has a kind and entries that survive
 *     gram__model_to_bytes → gram__model_from_bytes unchanged (names, types, values bit for bit);
 *   - the descriptor path: the same bytes through a memfd and a pipe (gram__model_read_fd) give
 *     either an early refusal where the parser refuses too, or bytes that parse as the input does;
 *   - the models: gram_gp_from_bytes / gram_krr_from_bytes never return GRAM_EINTERNAL; a loaded
 *     model predicts at fixed points and at its own training points with GRAM_OK and finite values
 *     (std ≥ 0), or a clean error — never a crash, a NaN with GRAM_OK, or GRAM_EINTERNAL; the GP's
 *     posterior covariance, its samples and its likelihood (with gradient) likewise; saving a
 *     loaded model and loading it again gives the same bytes when saved once more. */
#define _GNU_SOURCE 1

#include "fuzz_container.h"

#include <gram.h>

#include "io/model_file.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__linux__)
#include <sys/mman.h>
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void touch(const void *p, size_t n)
{
    volatile unsigned char sink = 0; /* ASan checks the extent of what the parser handed back */
    for (size_t i = 0; i < n; i++) sink ^= ((const unsigned char *)p)[i];
    (void)sink;
}

static int same_entry(const gram__entry *a, const gram__entry *b)
{
    if (strcmp(a->name, b->name) || a->type != b->type) return 0;
    switch (a->type) {
    case GRAM__ENTRY_I64: return a->i64 == b->i64;
    case GRAM__ENTRY_STR: return strcmp(a->str, b->str) == 0;
    case GRAM__ENTRY_F64:
        return a->rows == b->rows && a->cols == b->cols &&
               (a->rows * a->cols == 0 || memcmp(a->f64, b->f64, (size_t)(a->rows * a->cols) * sizeof(double)) == 0);
    }
    return 0;
}

/* The container parser on buf; returns its status. */
static gram_status check_container(const uint8_t *buf, size_t size)
{
    gram_context *ctx = NULL;
    FUZZ_ASSERT(gram_context_create(&ctx) == GRAM_OK);
    gram__model_file m;
    gram_status st = gram__model_from_bytes(ctx, "fuzz.model", buf, size, NULL, &m);
    FUZZ_ASSERT(st == GRAM_OK || st == GRAM_EFORMAT || st == GRAM_ENOMEM || st == GRAM_EOVERFLOW);
    if (st != GRAM_OK) {
        FUZZ_ASSERT(m.n == 0 && m.entries == NULL);
        FUZZ_ASSERT(strstr(gram_context_message(ctx), "fuzz.model") != NULL);
        gram__model_file_free(&m);
        gram_context_destroy(ctx);
        return st;
    }
    FUZZ_ASSERT(m.kind[0] != '\0' && strlen(m.kind) < GRAM__MODEL_KIND_SIZE);
    for (int64_t i = 0; i < m.n; i++) {
        const gram__entry *e = &m.entries[i];
        FUZZ_ASSERT(e->name && strlen(e->name) >= 1 && strlen(e->name) <= GRAM__MODEL_MAX_NAME);
        FUZZ_ASSERT(gram__model_find(&m, e->name) == e); /* names are unique */
        if (e->type == GRAM__ENTRY_STR) touch(e->str, strlen(e->str) + 1);
        if (e->type == GRAM__ENTRY_F64) {
            FUZZ_ASSERT(e->rows >= 0 && e->cols >= 0);
            touch(e->f64, (size_t)(e->rows * e->cols) * sizeof(double));
        }
    }
    unsigned char *again = NULL;
    size_t n_again = 0;
    FUZZ_ASSERT(gram__model_to_bytes(ctx, &m, &again, &n_again) == GRAM_OK);
    gram__model_file m2;
    FUZZ_ASSERT(gram__model_from_bytes(ctx, "again", again, n_again, m.kind, &m2) == GRAM_OK);
    FUZZ_ASSERT(m2.n == m.n && strcmp(m2.kind, m.kind) == 0);
    for (int64_t i = 0; i < m.n; i++) FUZZ_ASSERT(same_entry(&m.entries[i], gram__model_find(&m2, m.entries[i].name)));
    gram__model_file_free(&m2);
    gram__free(again);
    gram__model_file_free(&m);
    gram_context_destroy(ctx);
    return st;
}

/* The descriptor reader (kind 0: memfd, a regular file; 1: a pipe) against the in-memory parse. */
static void check_fd(const uint8_t *buf, size_t size, gram_status want, int kind)
{
#if defined(__linux__)
    int fds[2] = {-1, -1};
    if (kind == 0) {
        fds[0] = memfd_create("gram-fuzz-model", 0);
        if (fds[0] < 0) return;
        if (size && write(fds[0], buf, size) != (ssize_t)size) {
            close(fds[0]);
            return;
        }
        lseek(fds[0], 0, SEEK_SET);
    } else {
        if (size > 65536 || pipe(fds) != 0) return; /* a pipe holds 64 KiB: no writer thread needed */
        if (size && write(fds[1], buf, size) != (ssize_t)size) {
            close(fds[0]);
            close(fds[1]);
            return;
        }
        close(fds[1]);
    }
    gram_context *ctx = NULL;
    FUZZ_ASSERT(gram_context_create(&ctx) == GRAM_OK);
    unsigned char *got = NULL;
    size_t n = 0;
    gram_status st = gram__model_read_fd(ctx, "fuzz.fd", fds[0], 1 << 20, &got, &n);
    close(fds[0]);
    FUZZ_ASSERT(st != GRAM_EINTERNAL);
    if (st != GRAM_OK) {
        /* An early refusal (a size that disagrees with the header, a limit) of bytes that the parser
         * refuses as well. */
        FUZZ_ASSERT(got == NULL && want != GRAM_OK);
        FUZZ_ASSERT(strstr(gram_context_message(ctx), "fuzz.fd") != NULL);
    } else {
        touch(got, n);
        gram__model_file m;
        gram_status st2 = gram__model_from_bytes(ctx, "fuzz.fd", got, n, NULL, &m);
        if (st2 != want)
            fprintf(stderr, "%s: %zu of %zu bytes read, status %d, in memory %d: %s\n", kind ? "pipe" : "memfd", n, size,
                    st2, want, gram_context_message(ctx));
        FUZZ_ASSERT(st2 == want);
        if (want == GRAM_OK) FUZZ_ASSERT(n == size && memcmp(got, buf, size) == 0);
        gram__model_file_free(&m);
        gram__free(got);
    }
    gram_context_destroy(ctx);
#else
    (void)buf, (void)size, (void)want, (void)kind;
#endif
}

static void all_finite(const double *v, int64_t n)
{
    for (int64_t i = 0; i < n; i++) FUZZ_ASSERT(isfinite(v[i]));
}

/* Queries: two fixed points and the model's first training points (where a GP's std is smallest
 * and a tampered factor shows), M×D. */
static double *queries(const double *X, int64_t n, int64_t D, int64_t *M)
{
    int64_t from_x = n < 2 ? n : 2;
    *M = 2 + from_x;
    double *q = malloc((size_t)(*M * (D > 0 ? D : 1)) * sizeof *q);
    FUZZ_ASSERT(q != NULL);
    for (int64_t d = 0; d < D; d++) {
        q[d] = 0.5 - 0.125 * (double)(d % 3);
        q[D + d] = -1.5 + 0.75 * (double)(d % 4);
    }
    memcpy(q + 2 * D, X, (size_t)(from_x * D) * sizeof *q);
    return q;
}

/* A status a loaded model's computation may end with on hostile values: anything clean. */
static void clean(gram_status st, gram_context *ctx)
{
    if (st == GRAM_EINTERNAL) fprintf(stderr, "GRAM_EINTERNAL: %s\n", gram_context_message(ctx));
    FUZZ_ASSERT(st != GRAM_EINTERNAL);
    if (st != GRAM_OK) FUZZ_ASSERT(gram_context_message(ctx)[0] != '\0');
}

static void use_gp(gram_gp *gp)
{
    gram_context *ctx = NULL;
    FUZZ_ASSERT(gram_context_create(&ctx) == GRAM_OK);
    FUZZ_ASSERT(gram_context_set_threads(ctx, 1) == GRAM_OK);
    int64_t n = gram_gp_n(gp), D = gram_gp_dim(gp), T = gram_gp_n_targets(gp), M;
    FUZZ_ASSERT(n >= 1 && D >= 0 && T >= 1);
    double *X = malloc((size_t)(n * (D > 0 ? D : 1)) * sizeof *X);
    FUZZ_ASSERT(X != NULL);
    gram_array Xa = gram_array_f64(X, n, D);
    FUZZ_ASSERT(gram_gp_get_x(gp, &Xa) == GRAM_OK);
    double *q = queries(X, n, D, &M);
    double *mean = malloc((size_t)(M * T) * sizeof *mean), *sd = malloc((size_t)(M * T) * sizeof *sd);
    double *cov = malloc((size_t)(M * M) * sizeof *cov), *smp = malloc((size_t)(M * 3) * sizeof *smp);
    FUZZ_ASSERT(mean && sd && cov && smp);
    gram_array Q = gram_array_f64(q, M, D), Ma = gram_array_f64(mean, M, T), Sa = gram_array_f64(sd, M, T);
    gram_array Ca = gram_array_f64(cov, M, M), Pa = gram_array_f64(smp, M, 3);

    gram_status st = gram_gp_predict(ctx, gp, &Q, &Ma, &Sa, 0, NULL);
    clean(st, ctx);
    if (st == GRAM_OK) {
        all_finite(mean, M * T);
        all_finite(sd, M * T);
        for (int64_t i = 0; i < M * T; i++) FUZZ_ASSERT(sd[i] >= 0);
    }
    st = gram_gp_predict(ctx, gp, &Q, &Ma, NULL, T - 1, &Ca);
    clean(st, ctx);
    if (st == GRAM_OK) {
        all_finite(mean, M * T);
        all_finite(cov, M * M);
    }
    st = gram_gp_sample(ctx, gp, &Q, 0, 42, &Pa);
    clean(st, ctx);
    if (st == GRAM_OK) all_finite(smp, M * 3);

    int64_t P = gram_kernel_n_hyper(gram_gp_kernel(gp));
    double lml, *grad = malloc((size_t)(P > 0 ? P : 1) * sizeof *grad);
    FUZZ_ASSERT(grad != NULL);
    st = gram_gp_log_marginal_likelihood(ctx, gp, NULL, &lml, grad);
    clean(st, ctx);
    if (st == GRAM_OK) {
        FUZZ_ASSERT(!isnan(lml) && lml < INFINITY);
        all_finite(grad, P);
    }
    FUZZ_ASSERT(isfinite(gram_gp_log_marginal_likelihood_value(gp)));

    /* Saved and loaded again, then saved: the same bytes. */
    void *b1 = NULL, *b2 = NULL;
    size_t n1 = 0, n2 = 0;
    FUZZ_ASSERT(gram_gp_to_bytes(ctx, gp, &b1, &n1) == GRAM_OK);
    gram_gp *gp2 = NULL;
    st = gram_gp_from_bytes(ctx, b1, n1, &gp2);
    if (st != GRAM_OK) fprintf(stderr, "a loaded GP saved does not load: %s\n", gram_context_message(ctx));
    FUZZ_ASSERT(st == GRAM_OK);
    FUZZ_ASSERT(gram_gp_to_bytes(ctx, gp2, &b2, &n2) == GRAM_OK);
    FUZZ_ASSERT(n1 == n2 && memcmp(b1, b2, n1) == 0);
    gram_gp_destroy(gp2);
    gram_free(b1);
    gram_free(b2);

    free(grad);
    free(X);
    free(q);
    free(mean);
    free(sd);
    free(cov);
    free(smp);
    gram_context_destroy(ctx);
}

static void use_krr(gram_krr *krr)
{
    gram_context *ctx = NULL;
    FUZZ_ASSERT(gram_context_create(&ctx) == GRAM_OK);
    FUZZ_ASSERT(gram_context_set_threads(ctx, 1) == GRAM_OK);
    int64_t n = gram_krr_n(krr), D = gram_krr_dim(krr), T = gram_krr_n_targets(krr), M;
    FUZZ_ASSERT(n >= 1 && D >= 0 && T >= 1);
    double *X = malloc((size_t)(n * (D > 0 ? D : 1)) * sizeof *X);
    FUZZ_ASSERT(X != NULL);
    gram_array Xa = gram_array_f64(X, n, D);
    FUZZ_ASSERT(gram_krr_get_x(krr, &Xa) == GRAM_OK);
    double *q = queries(X, n, D, &M);
    double *out = malloc((size_t)(M * T) * sizeof *out);
    FUZZ_ASSERT(out != NULL);
    gram_array Q = gram_array_f64(q, M, D), Oa = gram_array_f64(out, M, T);
    gram_status st = gram_krr_predict(ctx, krr, &Q, &Oa);
    clean(st, ctx);
    if (st == GRAM_OK)
        for (int64_t i = 0; i < M * T; i++) FUZZ_ASSERT(!isnan(out[i]));

    void *b1 = NULL, *b2 = NULL;
    size_t n1 = 0, n2 = 0;
    FUZZ_ASSERT(gram_krr_to_bytes(ctx, krr, &b1, &n1) == GRAM_OK);
    gram_krr *k2 = NULL;
    FUZZ_ASSERT(gram_krr_from_bytes(ctx, b1, n1, &k2) == GRAM_OK);
    FUZZ_ASSERT(gram_krr_to_bytes(ctx, k2, &b2, &n2) == GRAM_OK);
    FUZZ_ASSERT(n1 == n2 && memcmp(b1, b2, n1) == 0);
    gram_krr_destroy(k2);
    gram_free(b1);
    gram_free(b2);
    free(X);
    free(q);
    free(out);
    gram_context_destroy(ctx);
}

static void check_models(const uint8_t *buf, size_t size)
{
    gram_context *ctx = NULL;
    FUZZ_ASSERT(gram_context_create(&ctx) == GRAM_OK);
    gram_gp *gp = (gram_gp *)(uintptr_t)1;
    gram_status st = gram_gp_from_bytes(ctx, buf, size, &gp);
    clean(st, ctx);
    if (st == GRAM_OK) {
        use_gp(gp);
        gram_gp_destroy(gp);
    } else {
        FUZZ_ASSERT(gp == NULL);
    }
    gram_krr *krr = (gram_krr *)(uintptr_t)1;
    st = gram_krr_from_bytes(ctx, buf, size, &krr);
    clean(st, ctx);
    if (st == GRAM_OK) {
        use_krr(krr);
        gram_krr_destroy(krr);
    } else {
        FUZZ_ASSERT(krr == NULL);
    }
    gram_context_destroy(ctx);
}

static void check_all(const uint8_t *buf, size_t size)
{
    gram_status st = check_container(buf, size);
    check_fd(buf, size, st, 0);
    check_fd(buf, size, st, 1);
    if (st == GRAM_OK) check_models(buf, size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_container_variants(data, size, check_all);
    return 0;
}
