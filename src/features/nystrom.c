/* Nyström feature maps: landmarks among the data, the normalization of K(L, L), and transform.
 *
 * φ(x) = K(x, L)·P with P = U_k Λ_k^(-1/2) U_kᵀ, the eigenpairs of K(L, L) whose eigenvalue is
 * above eig_tol·λ_max, so φ(x)·φ(y) = K(x, L) K(L, L)⁺ K(L, y) for the truncated pseudo-inverse
 * (Williams & Seeger 2001). Every kernel value comes from the engine; this file adds the
 * landmark choice, LAPACK's eigen-decomposition and BLAS products.
 *
 * Landmarks (docs/features.md says more):
 *   UNIFORM   R distinct rows, a partial Fisher–Yates shuffle of one Philox stream.
 *   KMEANSPP  kernel k-means++ seeding (Oglic & Gärtner 2017, "Nyström method with kernel
 *             k-means++ samples as landmarks", ICML): the first landmark uniform, each next one
 *             drawn with probability ∝ d²(x, L) = min_c k(x,x) + k(c,c) - 2k(x,c).
 *   LEVERAGE  recursive ridge leverage score sampling (Musco & Musco 2017, "Recursive sampling
 *             for the Nyström method", NeurIPS, Algorithm 3, with the fixed sample size of their
 *             reference implementation): halve the data repeatedly, score each level's points
 *             against a weighted sample of the level below, keep each with probability
 *             min(1, ln(R)·score), and finally draw R rows without replacement ∝ the scores.
 *
 * Determinism: the engine's values do not depend on the thread count, and every BLAS/LAPACK call
 * of the landmark choice runs single-threaded on fixed blocks, so the landmarks depend on the
 * seed alone. */
#include "features.h"

#include "../base/rng.h"
#include "../engine/engine.h"
#include "../linalg/linalg.h"

#include <cblas.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* Rows per BLAS call inside a parallel loop: fixed, so the bits do not depend on the threads
 * (256 measured 1.6× faster than 64 at R = 500 and 2000: the R×R factor is packed once per call). */
#define SUB_ROWS 256

typedef struct job {
    gram_context *ctx; /* the caller's: messages and progress */
    gram_context sub;  /* the engine's calls: the caller's threads and arch, no progress callback
                          (the engine would report each call from 0 to its own total) */
    const gram_kernel *k;
    const gram_array *X;
    int64_t N, D, R;
    uint64_t seed;
    int64_t done, total;
} job;

static void job_init(job *j, gram_context *ctx, const gram_kernel *k, const gram_array *X, int64_t R, uint64_t seed)
{
    memset(j, 0, sizeof *j);
    j->ctx = ctx;
    if (ctx) j->sub = *ctx;
    else j->sub.arch = GRAM_ARCH_AUTO;
    j->sub.progress = NULL;
    j->k = k;
    j->X = X;
    j->N = X->rows;
    j->D = X->cols;
    j->R = R;
    j->seed = seed;
}

/* An engine failure, re-raised on the caller's context with what was being computed. */
static gram_status forward(job *j, gram_status s, const char *what)
{
    return gram__fail(j->ctx, s, "%s: %s", what, j->sub.message);
}

static gram_status tick(job *j)
{
    j->done++;
    if (j->ctx && j->ctx->progress && j->ctx->progress(j->ctx->progress_user, j->done, j->total))
        return gram__fail(j->ctx, GRAM_ECANCELLED, "cancelled by the progress callback after %lld of %lld steps",
                          (long long)j->done, (long long)j->total);
    return GRAM_OK;
}

/* Uniform in [0, n), n ≥ 1, without modulo bias. */
static int64_t below(gram__rng *r, int64_t n)
{
    const uint64_t un = (uint64_t)n, lim = UINT64_MAX - UINT64_MAX % un;
    uint64_t v;
    do v = gram__rng_u64(r);
    while (v >= lim);
    return (int64_t)(v % un);
}

/* Rows idx[0..n) of X as a contiguous n×D array of X's dtype in buf. */
static gram_array gather(const gram_array *X, const int64_t *idx, int64_t n, void *buf)
{
    const int64_t D = X->cols;
    for (int64_t i = 0; i < n; i++)
        for (int64_t d = 0; d < D; d++) {
            const double v = gram__get(X, idx[i], d);
            if (X->dtype == GRAM_FLOAT32) ((float *)buf)[i * D + d] = (float)v;
            else ((double *)buf)[i * D + d] = v;
        }
    gram_array a = {buf, X->dtype, n, D, D, 1};
    return a;
}

/* k(x_i, x_i) for every row, without white noise (which belongs to K(X, X)'s diagonal, not to
 * the distances and scores the landmark choices need). */
static gram_status self_values(job *j, double *kd)
{
    const int64_t N = j->N, D = j->D;
    double *x = gram__alloc((size_t)D * sizeof(double) * (size_t)gram__threads(j->ctx));
    if (!x) return gram__fail(j->ctx, GRAM_ENOMEM, "out of memory for the landmark choice");
    int bad = 0;
    int nt = gram__team_size(gram__threads(j->ctx));
#pragma omp parallel num_threads(nt)
    {
        double *xt = x + (size_t)omp_get_thread_num() * (size_t)D;
#pragma omp for schedule(static)
        for (int64_t i = 0; i < N; i++) {
            for (int64_t d = 0; d < D; d++) xt[d] = gram__get(j->X, i, d);
            if (gram_kernel_eval(NULL, j->k, D, xt, xt, 0, &kd[i], NULL)) {
#pragma omp atomic write
                bad = 1;
            }
        }
    }
    gram__free(x);
    if (bad) return gram__fail(j->ctx, GRAM_EINTERNAL, "the kernel could not be evaluated at a data point");
    return GRAM_OK;
}

/* ---- uniform -------------------------------------------------------------------------------- */

static gram_status pick_uniform(job *j, int64_t *idx)
{
    const int64_t N = j->N;
    int64_t *perm = gram__alloc((size_t)N * sizeof(int64_t));
    if (!perm) return gram__fail(j->ctx, GRAM_ENOMEM, "out of memory for %lld row indices", (long long)N);
    for (int64_t i = 0; i < N; i++) perm[i] = i;
    gram__rng r;
    gram__rng_init(&r, j->seed, 0);
    for (int64_t i = 0; i < j->R; i++) {
        const int64_t t = i + below(&r, N - i), v = perm[t];
        perm[t] = perm[i];
        perm[i] = idx[i] = v;
    }
    gram__free(perm);
    return tick(j);
}

/* ---- kernel k-means++ ----------------------------------------------------------------------- */

static gram_status pick_kmeanspp(job *j, int64_t *idx)
{
    const int64_t N = j->N, D = j->D, R = j->R;
    /* d² near 0 is a difference of nearly equal kernel values: below this many ulps of them it is
     * rounding, and the point counts as a copy of its landmark (duplicates are never drawn again
     * while a point at positive distance remains) */
    const double ulps = 8.0 * (j->X->dtype == GRAM_FLOAT32 ? FLT_EPSILON : DBL_EPSILON);
    const size_t es = j->X->dtype == GRAM_FLOAT32 ? sizeof(float) : sizeof(double);
    double *kd = gram__alloc((size_t)N * sizeof(double)), *d2 = gram__alloc((size_t)N * sizeof(double)),
           *col = gram__alloc((size_t)N * sizeof(double));
    unsigned char *taken = gram__calloc((size_t)N, 1);
    void *cbuf = gram__alloc((size_t)D * es);
    gram_status s = GRAM_OK;
    if (!kd || !d2 || !col || !taken || !cbuf) {
        s = gram__fail(j->ctx, GRAM_ENOMEM, "out of memory for kernel k-means++ on %lld points", (long long)N);
        goto done;
    }
    if ((s = self_values(j, kd))) goto done;
    gram__rng r;
    gram__rng_init(&r, j->seed, 0);
    idx[0] = below(&r, N);
    for (int64_t t = 0;; t++) {
        const int64_t c = idx[t];
        taken[c] = 1;
        if ((s = tick(j))) goto done;
        if (t == R - 1) break;
        gram_array C = gather(j->X, &c, 1, cbuf), G = gram_array_f64(col, N, 1);
        if ((s = gram_kernel_matrix(&j->sub, j->k, j->X, &C, &G))) {
            s = forward(j, s, "kernel k-means++");
            goto done;
        }
        double total = 0;
        for (int64_t i = 0; i < N; i++) {
            double v = kd[i] + kd[c] - 2.0 * col[i];
            /* a kernel that is not positive definite can make it negative: no distance */
            if (taken[i] || !(v > ulps * (fabs(kd[i]) + fabs(kd[c])))) v = 0;
            if (t == 0 || v < d2[i]) d2[i] = v;
            total += d2[i];
        }
        int64_t next = -1;
        if (total > 0) {
            const double u = gram__rng_uniform(&r) * total;
            double acc = 0;
            for (int64_t i = 0; i < N && next < 0; i++)
                if (d2[i] > 0 && (acc += d2[i]) > u) next = i;
            /* u rounded up to the total: the last point with mass */
            for (int64_t i = N - 1; next < 0; i--)
                if (d2[i] > 0) next = i;
        } else {
            /* every point left is a copy of a landmark: uniform among those not taken */
            int64_t want = below(&r, N - t - 1);
            for (int64_t i = 0; next < 0; i++)
                if (!taken[i] && want-- == 0) next = i;
        }
        idx[t + 1] = next;
    }
done:
    gram__free(kd);
    gram__free(d2);
    gram__free(col);
    gram__free(taken);
    gram__free(cbuf);
    return s;
}

/* ---- recursive ridge leverage scores -------------------------------------------------------- */

/* score[i] = (kd[C[i]] - |K(x_C[i], S)·M|²)/λ for the m rows C of X, clamped at 0, where M (s×s)
 * makes K(x, S)·M·Mᵀ·K(S, x) = K(x, S)(K(S,S) + λW⁻²)⁻¹K(S, x). Chunks of rows: the engine fills
 * K(chunk, S), then fixed blocks of SUB_ROWS rows are multiplied by single-threaded BLAS on the
 * caller's threads. */
static gram_status rls_scores(job *j, const int64_t *C, int64_t m, const gram_array *S, const double *M,
                              double lambda, const double *kd, double *score)
{
    const int64_t s = S->rows, D = j->D;
    const size_t es = j->X->dtype == GRAM_FLOAT32 ? sizeof(float) : sizeof(double);
    int64_t B = ((int64_t)1 << 22) / s; /* a chunk of K(chunk, S) and its product: ≤ 64 MiB */
    B = B < SUB_ROWS ? SUB_ROWS : B > m ? m : B;
    double *K = gram__alloc((size_t)(B * s) * sizeof(double)), *T = gram__alloc((size_t)(B * s) * sizeof(double));
    void *xb = gram__alloc((size_t)(B * D) * es);
    gram_status st = GRAM_OK;
    if (!K || !T || !xb) {
        st = gram__fail(j->ctx, GRAM_ENOMEM, "out of memory for leverage scores against %lld points", (long long)s);
        goto done;
    }
    for (int64_t i0 = 0; i0 < m; i0 += B) {
        const int64_t n = m - i0 < B ? m - i0 : B;
        gram_array Y = gather(j->X, C + i0, n, xb), G = gram_array_f64(K, n, s);
        if ((st = gram_kernel_matrix(&j->sub, j->k, &Y, S, &G))) {
            st = forward(j, st, "leverage scores");
            goto done;
        }
        const int64_t nb = (n + SUB_ROWS - 1) / SUB_ROWS;
        int nt = gram__threads(j->ctx);
        if (nt > nb) nt = (int)nb;
        nt = gram__team_size(nt);
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
        for (int64_t b = 0; b < nb; b++) {
            const int64_t r0 = b * SUB_ROWS, rn = n - r0 < SUB_ROWS ? n - r0 : SUB_ROWS;
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rn, (int)s, (int)s, 1.0, K + r0 * s, (int)s,
                        M, (int)s, 0.0, T + r0 * s, (int)s);
            for (int64_t i = r0; i < r0 + rn; i++) {
                double q = 0;
                for (int64_t c = 0; c < s; c++) q += T[i * s + c] * T[i * s + c];
                const double v = (kd[C[i0 + i]] - q) / lambda;
                score[i0 + i] = v > 0 ? v : 0;
            }
        }
    }
done:
    gram__free(K);
    gram__free(T);
    gram__free(xb);
    return st;
}

typedef struct keyed {
    int pos;      /* 1 for a point with a positive score */
    double key;   /* Efraimidis–Spirakis: log(u)/w (larger first); log(u) among zero scores */
    int64_t i;
} keyed;

static int by_key(const void *a, const void *b)
{
    const keyed *x = a, *y = b;
    if (x->pos != y->pos) return x->pos > y->pos ? -1 : 1;
    if (x->key != y->key) return x->key > y->key ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

static gram_status pick_leverage(job *j, int64_t *idx)
{
    const int64_t N = j->N, D = j->D, R = j->R;
    const size_t es = j->X->dtype == GRAM_FLOAT32 ? sizeof(float) : sizeof(double);
    /* Musco & Musco's reference choices: oversampling ln R, and λ from the tail of the sample's
     * spectrum beyond its top kk = R/(4 ln R) eigenvalues, λ = Σ_{i>kk} μ_i / kk, which bounds the
     * effective dimension by 2kk; so about ln R · 2kk = R/2 points pass each level. */
    const double over = R > 2 ? log((double)R) : 1.0;
    int64_t kk = (int64_t)ceil((double)R / (4.0 * over));
    if (kk < 1) kk = 1;
    /* level sizes N, ⌈N/2⌉, ... down to the first at most 2R */
    int64_t sizes[64], L = 1;
    sizes[0] = N;
    while (sizes[L - 1] > 2 * R && L < 64) {
        sizes[L] = (sizes[L - 1] + 1) / 2;
        L++;
    }
    j->total = L + 1;

    int64_t *perm = gram__alloc((size_t)N * sizeof(int64_t)), *S = gram__alloc((size_t)N * sizeof(int64_t));
    double *kd = gram__alloc((size_t)N * sizeof(double)), *score = gram__alloc((size_t)N * sizeof(double)),
           *w = gram__alloc((size_t)N * sizeof(double));
    double *A = NULL, *mu = NULL;
    void *sb = NULL, *sb2 = NULL;
    keyed *keys = NULL;
    gram_status st = GRAM_OK;
    if (!perm || !S || !kd || !score || !w) {
        st = gram__fail(j->ctx, GRAM_ENOMEM, "out of memory for leverage scores of %lld points", (long long)N);
        goto done;
    }
    if ((st = self_values(j, kd))) goto done;
    for (int64_t i = 0; i < N; i++) perm[i] = i;
    gram__rng r;
    gram__rng_init(&r, j->seed, 0);
    for (int64_t i = 0; i < N - 1; i++) {
        const int64_t t = i + below(&r, N - i), v = perm[t];
        perm[t] = perm[i];
        perm[i] = v;
    }
    /* the smallest level's sample: all its points, weight 1 */
    int64_t s = sizes[L - 1];
    for (int64_t i = 0; i < s; i++) S[i] = perm[i], w[i] = 1.0;

    for (int64_t l = L - 1; l >= 0; l--) {
        const int64_t m = sizes[l];
        /* A = W K(S, S) W (a cross call on two copies: no white noise), then its eigenpairs */
        gram__free(A), gram__free(mu), gram__free(sb), gram__free(sb2);
        A = gram__alloc((size_t)(s * s) * sizeof(double));
        mu = gram__alloc((size_t)s * sizeof(double));
        sb = gram__alloc((size_t)(s * D) * es);
        sb2 = gram__alloc((size_t)(s * D) * es);
        if (!A || !mu || !sb || !sb2) {
            st = gram__fail(j->ctx, GRAM_ENOMEM, "out of memory for a leverage sample of %lld points", (long long)s);
            goto done;
        }
        gram_array Sa = gather(j->X, S, s, sb), Sb = gather(j->X, S, s, sb2), G = gram_array_f64(A, s, s);
        if ((st = gram_kernel_matrix(&j->sub, j->k, &Sa, &Sb, &G))) {
            st = forward(j, st, "leverage scores");
            goto done;
        }
        for (int64_t a = 0; a < s; a++)
            for (int64_t b = 0; b < s; b++) A[a * s + b] *= w[a] * w[b];
        if ((st = gram__sym_eig(j->ctx, s, A, s, mu))) goto done;
        /* a kernel that is not positive definite: its negative directions count as 0 */
        double total = 0, top = 0;
        for (int64_t a = 0; a < s; a++) {
            if (!(mu[a] > 0)) mu[a] = 0;
            total += mu[a];
            if (a >= s - kk) top += mu[a];
        }
        const double mmax = mu[s - 1];
        double lambda = kk < s ? (total - top) / (double)kk : 0;
        /* a spectrum of rank ≤ kk (or a sample too small to have a tail): a ridge far below the
         * kept eigenvalues, which then all count fully */
        if (!(lambda > 1e-6 * mmax)) lambda = 1e-6 * mmax;
        if (!(lambda > 0)) lambda = 1.0; /* K(S, S) = 0: every score is k(x,x)/λ */
        /* M = W V (Λ + λ)^(-1/2), in place of A (row j of A is eigenvector j) */
        double *M = gram__alloc((size_t)(s * s) * sizeof(double));
        if (!M) {
            st = gram__fail(j->ctx, GRAM_ENOMEM, "out of memory for a leverage sample of %lld points", (long long)s);
            goto done;
        }
        for (int64_t a = 0; a < s; a++)
            for (int64_t c = 0; c < s; c++) M[a * s + c] = w[a] * A[c * s + a] / sqrt(mu[c] + lambda);
        st = rls_scores(j, perm, m, &Sa, M, lambda, kd, score);
        gram__free(M);
        if (st) goto done;
        if ((st = tick(j))) goto done;
        if (l == 0) break;
        /* keep each point of this level with probability min(1, ln R · score) */
        gram__rng_init(&r, j->seed, (uint64_t)(1 + l));
        int64_t ns = 0, best = 0;
        for (int64_t i = 0; i < m; i++) {
            const double p = fmin(1.0, over * score[i]), u = gram__rng_uniform(&r);
            if (score[i] > score[best]) best = i;
            if (u < p) S[ns] = perm[i], w[ns++] = 1.0 / sqrt(p);
        }
        if (ns == 0) S[ns] = perm[best], w[ns++] = 1.0; /* every score 0: one point to go on from */
        s = ns;
    }
    /* R distinct rows ∝ min(1, score) without replacement: the R largest keys log(u)/w
     * (Efraimidis & Spirakis 2006, "Weighted random sampling with a reservoir") */
    keys = gram__alloc((size_t)N * sizeof(keyed));
    if (!keys) {
        st = gram__fail(j->ctx, GRAM_ENOMEM, "out of memory for leverage sampling of %lld points", (long long)N);
        goto done;
    }
    gram__rng_init(&r, j->seed, (uint64_t)(L + 1));
    for (int64_t i = 0; i < N; i++) {
        const double wt = fmin(1.0, score[i]), lu = log(gram__rng_uniform(&r));
        keys[i].pos = wt > 0;
        keys[i].key = wt > 0 ? lu / wt : lu;
        keys[i].i = perm[i];
    }
    qsort(keys, (size_t)N, sizeof(keyed), by_key);
    for (int64_t i = 0; i < R; i++) idx[i] = keys[i].i;
    st = tick(j);
done:
    gram__free(perm);
    gram__free(S);
    gram__free(kd);
    gram__free(score);
    gram__free(w);
    gram__free(A);
    gram__free(mu);
    gram__free(sb);
    gram__free(sb2);
    gram__free(keys);
    return st;
}

/* ---- the map -------------------------------------------------------------------------------- */

/* f->proj = U_k Λ_k^(-1/2) U_kᵀ of K(L, L) (symmetric call: white noise on its diagonal). */
static gram_status normalization(job *j, gram_features *f)
{
    const int64_t R = f->R, D = f->D;
    double *A = gram__alloc((size_t)(R * R) * sizeof(double)), *lam = gram__alloc((size_t)R * sizeof(double));
    gram_status s = GRAM_OK;
    if (!A || !lam) {
        s = gram__fail(j->ctx, GRAM_ENOMEM, "out of memory for K(L, L) of %lld landmarks", (long long)R);
        goto done;
    }
    gram_array Lm = gram_array_f64(f->landmarks, R, D), G = gram_array_f64(A, R, R);
    if ((s = gram_kernel_matrix(&j->sub, j->k, &Lm, &Lm, &G))) {
        s = forward(j, s, "K(L, L)");
        goto done;
    }
    if ((s = gram__sym_eig(j->ctx, R, A, R, lam))) {
        char why[GRAM_MSG_SIZE] = "";
        if (j->ctx) memcpy(why, j->ctx->message, sizeof why);
        s = gram__fail(j->ctx, s, "K(L, L) of the %lld landmarks (a kernel value too large for a double?): %s",
                       (long long)R, why);
        goto done;
    }
    /* dsyevd is backward stable: the computed eigenvalues are those of K(L, L) + E with
     * ‖E‖ ≈ R·eps·λ_max, and K(L, L)'s own entries carry a few ulps each (‖·‖ ≤ R·ulps·max k);
     * eigenvalues below R·eps·λ_max are therefore indistinguishable from 0 (or negative), and
     * their Λ^(-1/2), up to 1/√(R·eps·λ_max), would only amplify that error */
    const double lmax = lam[R - 1];
    f->eig_tol = (double)R * DBL_EPSILON;
    if (!(lmax > 0)) {
        s = gram__fail(j->ctx, GRAM_EDOMAIN, "K(L, L) of the %lld landmarks has no positive eigenvalue (largest "
                       "%.17g): the kernel gives no Nyström features on these points", (long long)R, lmax);
        goto done;
    }
    int64_t k0 = R;
    while (k0 > 0 && lam[k0 - 1] > f->eig_tol * lmax) k0--;
    f->rank = R - k0;
    /* P = B Bᵀ with B = U_k Λ_k^(-1/4) (R × rank): symmetric by construction (dsyrk, mirrored) */
    double *B = gram__alloc((size_t)(R * f->rank) * sizeof(double));
    if (!B) {
        s = gram__fail(j->ctx, GRAM_ENOMEM, "out of memory for the Nyström normalization");
        goto done;
    }
    for (int64_t a = 0; a < R; a++)
        for (int64_t c = 0; c < f->rank; c++) B[a * f->rank + c] = A[(k0 + c) * R + a] / sqrt(sqrt(lam[k0 + c]));
    cblas_dsyrk(CblasRowMajor, CblasLower, CblasNoTrans, (int)R, (int)f->rank, 1.0, B, (int)f->rank, 0.0, f->proj,
                (int)R);
    for (int64_t a = 0; a < R; a++)
        for (int64_t c = a + 1; c < R; c++) f->proj[a * R + c] = f->proj[c * R + a];
    gram__free(B);
done:
    gram__free(A);
    gram__free(lam);
    return s;
}

gram_status gram_features_nystrom(gram_context *ctx, const gram_kernel *k, const gram_array *X, int64_t R,
                                  gram_landmarks how, uint64_t seed, gram_features **out)
{
    gram__clear(ctx);
    if (!out) return gram__fail(ctx, GRAM_EINVAL, "out must not be NULL");
    *out = NULL;
    if (!k) return gram__fail(ctx, GRAM_EINVAL, "kernel must not be NULL");
    gram_status s;
    if ((s = gram__check_array(ctx, X, "X"))) return s;
    if (how != GRAM_LANDMARKS_UNIFORM && how != GRAM_LANDMARKS_KMEANSPP && how != GRAM_LANDMARKS_LEVERAGE)
        return gram__fail(ctx, GRAM_EINVAL, "unknown landmark method %d (UNIFORM 0, KMEANSPP 1, LEVERAGE 2)", (int)how);
    const int64_t N = X->rows, D = X->cols;
    if (D < 1) return gram__fail(ctx, GRAM_ESHAPE, "Nyström maps need dimension D >= 1, got %lld", (long long)D);
    if (k->dim && k->dim != D)
        return gram__fail(ctx, GRAM_ESHAPE, "the kernel has %lld ARD lengthscales but X has %lld columns",
                          (long long)k->dim, (long long)D);
    if (R < 1) return gram__fail(ctx, GRAM_EINVAL, "n_components R must be >= 1, got %lld", (long long)R);
    if (R > N)
        return gram__fail(ctx, GRAM_EINVAL, "n_components R = %lld is more than the %lld rows of X: Nyström "
                          "landmarks are distinct rows of X, so R <= N", (long long)R, (long long)N);
    if (k->stack_depth > 64)
        return gram__fail(ctx, GRAM_EUNSUPPORTED, "kernel expression is nested too deeply (%d levels; at most 64)",
                          k->stack_depth);
    /* BLAS and LAPACK index with int; K(L, L), its eigenvectors and P are R×R each */
    int64_t RR, RD;
    size_t bytes;
    if (R > INT_MAX / 2 || D > INT_MAX || !gram__mul_i64(R, R, &RR) || !gram__mul_i64(R, D, &RD) ||
        RR > INT_MAX || !gram__bytes(RR, 3 * sizeof(double), &bytes))
        return gram__fail(ctx, GRAM_EOVERFLOW, "a Nyström map of %lld landmarks has more entries (R²) than gram "
                          "can index or hold", (long long)R);
    if (!gram__memory_fits(bytes))
        return gram__fail(ctx, GRAM_ENOMEM, "a Nyström map of %lld landmarks needs %zu bytes for K(L, L) and its "
                          "eigenvectors, more than the system can provide now", (long long)R, bytes);
    if ((s = gram__check_finite(ctx, X, "X"))) return s;

    gram_features *f = calloc(1, sizeof *f);
    if (!f) return gram__fail(ctx, GRAM_ENOMEM, "out of memory for a feature map");
    f->method = GRAM_FEATURES_NYSTROM;
    f->D = D;
    f->R = R;
    f->seed = seed;
    f->landmarks_how = how;
    if ((s = gram_kernel_copy(ctx, k, &f->kernel))) {
        free(f);
        return s;
    }
    f->landmark_idx = gram__alloc((size_t)R * sizeof(int64_t));
    f->landmarks = gram__alloc((size_t)RD * sizeof(double));
    f->proj = gram__alloc((size_t)RR * sizeof(double));
    if (!f->landmark_idx || !f->landmarks || !f->proj) {
        gram_features_destroy(f);
        return gram__fail(ctx, GRAM_ENOMEM, "out of memory for a Nyström map of %lld landmarks", (long long)R);
    }
    job j;
    job_init(&j, ctx, f->kernel, X, R, seed);
    const int saved = gram__blas_serial_begin(0);
    if (R == N) {
        /* every row is a landmark, whatever the method */
        for (int64_t i = 0; i < N; i++) f->landmark_idx[i] = i;
    } else if (how == GRAM_LANDMARKS_UNIFORM) {
        j.total = 2;
        s = pick_uniform(&j, f->landmark_idx);
    } else if (how == GRAM_LANDMARKS_KMEANSPP) {
        j.total = R + 1;
        s = pick_kmeanspp(&j, f->landmark_idx);
    } else {
        s = pick_leverage(&j, f->landmark_idx);
    }
    gram__blas_serial_end(saved);
    if (s) {
        gram_features_destroy(f);
        return s;
    }
    for (int64_t i = 0; i < R; i++)
        for (int64_t d = 0; d < D; d++) f->landmarks[i * D + d] = gram__get(X, f->landmark_idx[i], d);
    /* the normalization: OpenBLAS's threads for large R (their blocking, hence the last bits of P,
     * may depend on OpenBLAS's thread count from R = 768 on; the landmarks never do) */
    const int saved2 = gram__blas_serial_begin(R);
    s = normalization(&j, f);
    gram__blas_serial_end(saved2);
    if (s) {
        gram_features_destroy(f);
        return s;
    }
    *out = f;
    return GRAM_OK;
}

gram_status gram_features_nystrom_parts(const gram_features *f, int64_t *indices, gram_array *components,
                                        gram_array *normalization)
{
    if (!f || f->method != GRAM_FEATURES_NYSTROM) return GRAM_EINVAL;
    const int64_t R = f->R, D = f->D;
    if (components && (components->rows != R || components->cols != D || !components->data)) return GRAM_ESHAPE;
    if (normalization && (normalization->rows != R || normalization->cols != R || !normalization->data))
        return GRAM_ESHAPE;
    if (indices) memcpy(indices, f->landmark_idx, (size_t)R * sizeof(int64_t));
    if (components)
        for (int64_t i = 0; i < R; i++)
            for (int64_t d = 0; d < D; d++) gram__put(components, i, d, f->landmarks[i * D + d]);
    if (normalization)
        for (int64_t i = 0; i < R; i++)
            for (int64_t c = 0; c < R; c++) gram__put(normalization, i, c, f->proj[i * R + c]);
    return GRAM_OK;
}

gram_landmarks gram_features_landmarks_of(const gram_features *f)
{
    return f && f->method == GRAM_FEATURES_NYSTROM ? f->landmarks_how : GRAM_LANDMARKS_UNIFORM;
}

/* ---- transform ------------------------------------------------------------------------------ */

gram_status gram__nystrom_transform(gram_context *ctx, const gram_features *f, const gram_array *X, gram_array *out)
{
    const int64_t N = X->rows, D = f->D, R = f->R;
    /* K(x, L) in X's dtype (the engine needs both sides alike); the product by P always in float64:
     * P's entries reach λ^(-1/2) for the smallest kept λ, and K(x, L)·P cancels accordingly */
    const int f32 = X->dtype == GRAM_FLOAT32;
    /* rows per chunk: K(chunk, L) ≤ 32 MiB, several SUB_ROWS blocks for the threads up to R = 4096 */
    int64_t B = ((int64_t)1 << 22) / R;
    B = B < SUB_ROWS ? SUB_ROWS : B > N ? N : B;
    const int direct = out->dtype == GRAM_FLOAT64 && out->col_stride == 1 && out->row_stride >= R && out->row_stride <= INT_MAX;
    double *K = gram__alloc((size_t)(B * R) * sizeof(double)),
           *T = direct ? NULL : gram__alloc((size_t)(B * R) * sizeof(double));
    float *L32 = f32 ? gram__alloc((size_t)(R * D) * sizeof(float)) : NULL;
    int64_t *bad_b = gram__alloc((size_t)((B + SUB_ROWS - 1) / SUB_ROWS) * sizeof(int64_t));
    gram_status s = GRAM_OK;
    if (!K || (!direct && !T) || (f32 && !L32) || !bad_b) {
        s = gram__fail(ctx, GRAM_ENOMEM, "out of memory for the Nyström transform's blocks of %lld rows", (long long)B);
        goto done;
    }
    if (f32)
        for (int64_t i = 0; i < R * D; i++)
            if (!(fabs(L32[i] = (float)f->landmarks[i]) <= FLT_MAX)) {
                s = gram__fail(ctx, GRAM_EDOMAIN, "the map's landmark %lld has a coordinate (%.17g) beyond float32's "
                               "range: pass float64 data", (long long)(i / D), f->landmarks[i]);
                goto done;
            }
    gram_array Lm = f32 ? gram_array_f32(L32, R, D) : gram_array_f64(f->landmarks, R, D);
    gram_context sub;
    if (ctx) sub = *ctx;
    else memset(&sub, 0, sizeof sub), sub.arch = GRAM_ARCH_AUTO;
    sub.progress = NULL;
    const int64_t nchunks = (N + B - 1) / B;
    const int saved = gram__blas_serial_begin(0);
    for (int64_t c = 0; c < nchunks; c++) {
        const int64_t i0 = c * B, n = N - i0 < B ? N - i0 : B;
        gram_array Xc = *X, G = gram_array_f64(K, n, R);
        Xc.data = (char *)X->data + (i0 * X->row_stride) * (int64_t)(f32 ? sizeof(float) : sizeof(double));
        Xc.rows = n;
        if ((s = gram_kernel_matrix(&sub, f->kernel, &Xc, &Lm, &G))) {
            s = gram__fail(ctx, s, "Nyström transform, K(X, landmarks): %s", sub.message);
            break;
        }
        const int64_t nb = (n + SUB_ROWS - 1) / SUB_ROWS;
        int nt = gram__threads(ctx);
        if (nt > nb) nt = (int)nb;
        nt = gram__team_size(nt);
        for (int64_t b = 0; b < nb; b++) bad_b[b] = -1;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
        for (int64_t b = 0; b < nb; b++) {
            const int64_t r0 = b * SUB_ROWS, rn = n - r0 < SUB_ROWS ? n - r0 : SUB_ROWS;
            double *dst = direct ? (double *)out->data + (i0 + r0) * out->row_stride : T + r0 * R;
            const int64_t ld = direct ? out->row_stride : R;
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rn, (int)R, (int)R, 1.0, K + r0 * R, (int)R,
                        f->proj, (int)R, 0.0, dst, (int)ld);
            /* a kernel value or a product too large for out's dtype: refused, never an inf or NaN */
            const double top = out->dtype == GRAM_FLOAT32 ? FLT_MAX : DBL_MAX;
            for (int64_t i = 0; i < rn && bad_b[b] < 0; i++)
                for (int64_t q = 0; q < R; q++)
                    if (!(fabs(dst[i * ld + q]) <= top)) {
                        bad_b[b] = i0 + r0 + i;
                        break;
                    }
            if (!direct)
                for (int64_t i = r0; i < r0 + rn; i++)
                    for (int64_t q = 0; q < R; q++) gram__put(out, i0 + i, q, T[i * R + q]);
        }
        int64_t bad = -1;
        for (int64_t b = 0; b < nb && bad < 0; b++) bad = bad_b[b];
        if (bad >= 0) {
            s = gram__fail(ctx, GRAM_EDOMAIN, "X: row %lld: a Nyström feature is not finite (a kernel value K(x, L) "
                           "or its product with the normalization overflows %s)", (long long)bad,
                           out->dtype == GRAM_FLOAT32 ? "float32 (pass a float64 out)" : "a double");
            break;
        }
        if (ctx && ctx->progress && ctx->progress(ctx->progress_user, c + 1, nchunks)) {
            s = gram__fail(ctx, GRAM_ECANCELLED, "cancelled by the progress callback after %lld of %lld blocks",
                           (long long)(c + 1), (long long)nchunks);
            break;
        }
    }
    gram__blas_serial_end(saved);
done:
    gram__free(K);
    gram__free(T);
    gram__free(L32);
    gram__free(bad_b);
    return s;
}
