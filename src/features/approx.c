/* Approximate kernel sums through a feature map: Σ_j k(y_i, x_j) W[j,:] ≈ φ(y_i)·Z with
 * Z = Φ(X)ᵀW (R×V), in O((N + M)·R·(D + V)) work instead of the engine's O(N·M·D).
 *
 * Both passes go over fixed chunks of rows (a function of R alone), each turned into features by
 * gram_features_transform itself, so every method, including those added later (Nyström), is
 * covered without this file knowing how their features are made. Chunks run on threads, one
 * chunk per thread at a time (its features stay in that core's cache for the product that
 * follows), each with its own one-thread context; a chunk's share of Z is one product whoever
 * computes it, and the shares are added into Z in chunk order: the bits do not depend on the
 * threads.
 *
 * The error estimate is an exact check on a sample of the queries through the engine, which is
 * honest for every method (the biased SORF and the deterministic Nyström included), where the
 * spread of independent feature groups would miss a bias. */
#include "features.h"

#include "../base/rng.h"
#include "../engine/engine.h"
#include "../linalg/linalg.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>

/* Queries checked exactly for the error estimate (all of them when M is smaller). docs/features.md
 * gives the estimate's measured calibration at this size. */
#define CHECK_QUERIES 64
/* The Philox stream of the check's sample, apart from the streams a map's frequencies use. */
#define CHECK_STREAM 0x53554d434845434bULL

/* Rows per chunk: a chunk's features (C×R doubles, 2 MiB; 8 MiB at R = 4096 where C is 256)
 * stay in the cache between the transform that writes them and the product that reads them.
 * Measured on one thread, N = M = 10⁵, D = 8: 1.2–1.4 ns per point and feature at 2^18 doubles
 * against 1.9–3.8 ns at 2^22 (32 MiB), whose features went to memory and back. */
static int64_t chunk_rows(int64_t R)
{
    int64_t C = ((int64_t)1 << 18) / (R > 0 ? R : 1);
    return C < 256 ? 256 : C > 65536 ? 65536 : C;
}

/* Rows [i0, i0 + n) of a as a view. */
static gram_array rows_of(const gram_array *a, int64_t i0, int64_t n)
{
    gram_array v = *a;
    const size_t es = a->dtype == GRAM_FLOAT64 ? sizeof(double) : sizeof(float);
    v.data = (char *)a->data + (ptrdiff_t)(i0 * a->row_stride) * (ptrdiff_t)es;
    v.rows = n;
    return v;
}

/* The features of rows [i0, i0 + n) of A into phi (n×R, float64, contiguous). The transform's
 * messages name "X" and a row of the chunk: they are rewritten to name A and its own row. */
static gram_status chunk_features(gram_context *ctx, const gram_features *f, const gram_array *A,
                                  const char *name, int64_t i0, int64_t n, double *phi)
{
    gram_array a = rows_of(A, i0, n), P = gram_array_f64(phi, n, f->R);
    gram_status s = gram_features_transform(ctx, f, &a, &P);
    if (s == GRAM_OK || !ctx) return s;
    char msg[GRAM_MSG_SIZE];
    long long r;
    int at = 0;
    memcpy(msg, ctx->message, sizeof msg);
    if (sscanf(msg, "X: row %lld:%n", &r, &at) == 1 && at > 0)
        return gram__fail(ctx, s, "%s: row %lld:%s", name, (long long)i0 + r, msg + at);
    return gram__fail(ctx, s, "%s (rows %lld to %lld of %s)", msg, (long long)i0, (long long)(i0 + n - 1), name);
}

/* The user's progress callback, called here between chunks (the inner calls run without it). */
static int report(gram_context *ctx, gram_progress_fn cb, int64_t done, int64_t total)
{
    return cb && cb(ctx->progress_user, done, total) != 0;
}

/* err[v] = ‖approx − exact‖ / ‖exact‖ over a sample of s queries (all when M ≤ CHECK_QUERIES),
 * chosen by selection sampling (Knuth, TAOCP vol. 2, Algorithm S) from a Philox stream of the
 * map's seed, so the same call checks the same queries. */
static gram_status error_check(gram_context *ctx, const gram_features *f, const gram_array *Y, const gram_array *X,
                               const gram_array *W, const double *Z, int64_t V, double *err)
{
    const int64_t M = Y->rows, D = f->D, R = f->R, s = M < CHECK_QUERIES ? M : CHECK_QUERIES;
    const size_t es = Y->dtype == GRAM_FLOAT64 ? sizeof(double) : sizeof(float);
    char *ys = gram__alloc((size_t)(s * D) * es + 64);
    double *ex = gram__alloc((size_t)(s * V) * sizeof(double)), *phi = gram__alloc((size_t)(s * R) * sizeof(double)),
           *ap = gram__alloc((size_t)(s * V) * sizeof(double));
    gram_status st = GRAM_OK;
    if (!ys || !ex || !phi || !ap) {
        st = gram__fail(ctx, GRAM_ENOMEM, "out of memory for the error check of %lld queries", (long long)s);
        goto done;
    }
    gram__rng rng;
    gram__rng_init(&rng, f->seed, CHECK_STREAM);
    for (int64_t i = 0, t = 0; i < M && t < s; i++)
        if ((double)(M - i) * gram__rng_uniform(&rng) < (double)(s - t)) {
            for (int64_t d = 0; d < D; d++) {
                const double v = gram__get(Y, i, d);
                if (es == sizeof(double)) ((double *)ys)[t * D + d] = v;
                else ((float *)ys)[t * D + d] = (float)v;
            }
            t++;
        }
    gram_array Ys = es == sizeof(double) ? gram_array_f64((double *)ys, s, D) : gram_array_f32((float *)ys, s, D),
               E = gram_array_f64(ex, s, V);
    if ((st = gram_kernel_sum(ctx, f->kernel, &Ys, X, W, &E))) goto done;
    if ((st = chunk_features(ctx, f, &Ys, "Y", 0, s, phi))) goto done;
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)s, (int)V, (int)R, 1.0, phi, (int)R, Z, (int)V, 0.0,
                ap, (int)V);
    for (int64_t v = 0; v < V; v++) {
        double num = 0, den = 0;
        for (int64_t i = 0; i < s; i++) {
            const double d = ap[i * V + v] - ex[i * V + v];
            num += d * d;
            den += ex[i * V + v] * ex[i * V + v];
        }
        err[v] = den > 0 ? sqrt(num / den) : num > 0 ? INFINITY : 0.0;
    }
done:
    gram__free(ys);
    gram__free(ex);
    gram__free(phi);
    gram__free(ap);
    return st;
}

gram_status gram_features_sum(gram_context *ctx, const gram_features *f, const gram_array *Y, const gram_array *X,
                              const gram_array *W, gram_array *out, double *err)
{
    gram__clear(ctx);
    gram_status s;
    if (!f) return gram__fail(ctx, GRAM_EINVAL, "feature map must not be NULL");
    if ((s = gram__check_array(ctx, X, "X"))) return s;
    if (!Y) Y = X;
    if ((s = gram__check_array(ctx, Y, "Y")) || (s = gram__check_array(ctx, out, "out"))) return s;
    if (X->dtype != Y->dtype)
        return gram__fail(ctx, GRAM_EINVAL, "X and Y must have the same dtype (X is %s, Y is %s)",
                          X->dtype == GRAM_FLOAT64 ? "float64" : "float32", Y->dtype == GRAM_FLOAT64 ? "float64" : "float32");
    if (X->cols != f->D)
        return gram__fail(ctx, GRAM_ESHAPE, "X has %lld columns but the feature map was made for dimension %lld",
                          (long long)X->cols, (long long)f->D);
    if (Y->cols != f->D)
        return gram__fail(ctx, GRAM_ESHAPE, "Y has %lld columns but the feature map was made for dimension %lld",
                          (long long)Y->cols, (long long)f->D);
    if ((s = gram__check_weights_out(ctx, Y, X, W, out))) return s;
    const int64_t V = out->cols;
    if ((s = gram__check_no_overlap(ctx, out, X, "out", "X")) || (s = gram__check_no_overlap(ctx, out, Y, "out", "Y")) ||
        (W && (s = gram__check_no_overlap(ctx, out, W, "out", "W"))))
        return s;
    if ((s = gram__check_finite(ctx, X, "X"))) return s;
    if (!gram__same_view(X, Y) && (s = gram__check_finite(ctx, Y, "Y"))) return s;
    if (W && (s = gram__check_finite(ctx, W, "W"))) return s;
    const int64_t N = X->rows, M = Y->rows, R = f->R;
    if (V > 0 && V > INT32_MAX / (R > 0 ? R : 1))
        return gram__fail(ctx, GRAM_EOVERFLOW, "R×V = %lld×%lld is too large for one feature sum", (long long)R,
                          (long long)V);
    if (M == 0 || V == 0) return GRAM_OK;
    if (N == 0) {
        for (int64_t i = 0; i < M; i++)
            for (int64_t v = 0; v < V; v++) gram__put(out, i, v, 0.0);
        if (err)
            for (int64_t v = 0; v < V; v++) err[v] = 0.0;
        return GRAM_OK;
    }

    const int64_t C = chunk_rows(R), cx = (N + C - 1) / C, cy = (M + C - 1) / C;
    const int64_t total = cx + cy + (err != NULL);
    int nt = gram__threads(ctx);
    if (nt > (cx > cy ? cx : cy)) nt = (int)(cx > cy ? cx : cy);
    nt = gram__team_size(nt);
    /* per thread: a context (one thread, no callback, the caller's architecture), a chunk's
     * features, its weights or results, its share of Z */
    const size_t sphi = (size_t)(C * R), swc = (size_t)(C * V), spart = (size_t)(R * V), per = sphi + swc + spart;
    double *z = gram__calloc(spart, sizeof(double)), *mem = gram__alloc(per * (size_t)nt * sizeof(double));
    gram_context **tc = gram__calloc((size_t)nt, sizeof *tc);
    int ok = z && mem && tc;
    for (int t = 0; ok && t < nt; t++) {
        ok = gram_context_create(&tc[t]) == GRAM_OK;
        if (ok) {
            tc[t]->threads = 1;
            if (ctx) tc[t]->arch = ctx->arch;
        }
    }
    if (!ok) {
        for (int t = 0; tc && t < nt; t++) gram_context_destroy(tc[t]);
        gram__free(tc);
        gram__free(z);
        gram__free(mem);
        return gram__fail(ctx, GRAM_ENOMEM, "out of memory for the feature sum's buffers (%d × %lld×%lld features)", nt,
                          (long long)C, (long long)R);
    }
    gram_progress_fn cb = ctx ? ctx->progress : NULL;
    int64_t done = 0;
    int cancelled = 0;
    const int saved = gram__blas_serial_begin(0);

    /* Z = Φ(X)ᵀW: each chunk's share by one thread, added into Z in chunk order (the ordered
     * region), so Z's bits do not depend on which thread did which chunk. The first failure in
     * chunk order is the one reported. */
#pragma omp parallel num_threads(nt)
    {
        const int id = omp_get_thread_num();
        double *phi = mem + per * (size_t)id, *wc = phi + sphi, *part = wc + swc;
#pragma omp for ordered schedule(dynamic, 1)
        for (int64_t c = 0; c < cx; c++) {
            const int64_t i0 = c * C, n = N - i0 < C ? N - i0 : C;
            int skip;
#pragma omp atomic read
            skip = cancelled;
            gram_status cs = GRAM_OK;
            if (!skip && !(cs = chunk_features(tc[id], f, X, "X", i0, n, phi))) {
                for (int64_t i = 0; i < n; i++)
                    for (int64_t v = 0; v < V; v++) wc[i * V + v] = W ? gram__get(W, i0 + i, v) : 1.0;
                cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)R, (int)V, (int)n, 1.0, phi, (int)R, wc, (int)V,
                            0.0, part, (int)V);
            }
#pragma omp ordered
            {
                if (!s && !cancelled) {
                    if (cs) s = gram__fail(ctx, cs, "%s", tc[id]->message);
                    else if (!skip)
                        for (int64_t j = 0; j < R * V; j++) z[j] += part[j];
                }
                done++;
                if (!s && id == 0 && report(ctx, cb, done, total)) {
#pragma omp atomic write
                    cancelled = 1;
                }
            }
        }
    }
    /* out = φ(Y)·Z: chunks on threads, each written to out in order */
    if (!s && !cancelled) {
#pragma omp parallel num_threads(nt)
        {
            const int id = omp_get_thread_num();
            double *phi = mem + per * (size_t)id, *oc = phi + sphi;
#pragma omp for ordered schedule(dynamic, 1)
            for (int64_t c = 0; c < cy; c++) {
                const int64_t i0 = c * C, n = M - i0 < C ? M - i0 : C;
                int skip;
#pragma omp atomic read
                skip = cancelled;
                gram_status cs = GRAM_OK;
                if (!skip && !(cs = chunk_features(tc[id], f, Y, "Y", i0, n, phi)))
                    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)V, (int)R, 1.0, phi, (int)R, z,
                                (int)V, 0.0, oc, (int)V);
#pragma omp ordered
                {
                    if (!s && !cancelled) {
                        if (cs) s = gram__fail(ctx, cs, "%s", tc[id]->message);
                        else if (!skip)
                            for (int64_t i = 0; i < n; i++)
                                for (int64_t v = 0; v < V; v++) gram__put(out, i0 + i, v, oc[i * V + v]);
                    }
                    done++;
                    if (!s && id == 0 && report(ctx, cb, done, total)) {
#pragma omp atomic write
                        cancelled = 1;
                    }
                }
            }
        }
    }
    gram__blas_serial_end(saved);
    for (int t = 0; t < nt; t++) gram_context_destroy(tc[t]);
    gram__free(tc);
    gram__free(mem);
    if (cancelled && !s) s = GRAM_ECANCELLED;
    if (ctx) ctx->progress = NULL; /* the check's engine call runs without it */
    if (!s && err) {
        s = error_check(ctx, f, Y, X, W, z, V, err);
        if (!s && report(ctx, cb, total, total)) s = GRAM_ECANCELLED;
    }
    gram__free(z);
    if (ctx) ctx->progress = cb;
    if (s == GRAM_ECANCELLED)
        return gram__fail(ctx, s, "cancelled by the progress callback (the feature sum's chunks: %lld of X, %lld of Y%s)",
                          (long long)cx, (long long)cy, err ? ", then the error check" : "");
    return s;
}
