/* Kernel attention: out_i = Σ_j w_ij v_j / Σ_j w_ij, w_ij = k(q_i, k_j)·exp(b_(j−i)).
 *
 * EXACT is one engine call (gram__kernel_attention: log-values, an online maximum and the sums of
 * [V, 1] in one pass). FAVOR is Choromanski et al. (2021), "Rethinking attention with
 * Performers" (ICLR): k(q, k) ≈ φ(q)·φ(k) with positive random features, so that
 * out = D⁻¹ Φ_Q (Φ_Kᵀ [V, 1]) costs O((L + S)·R·dv). Its features are those of
 * gram_features_create(gaussian, d, GRAM_FEATURES_POSITIVE_ORF, R, seed): for the gaussian
 * log φ_r(x) = ω_r·x' − |x'|² (x' = x/ℓ), for the softmax kernel exp(q'·k') =
 * exp(|q'|²/2) exp(|k'|²/2) gauss(q', k') the same plus |x'|²/2. Every factor common to a query's
 * features (its norm, √(1/R), the kernel's constant) cancels in the ratio, so a query's features
 * are exp(ω·q' − max_r ω_r·q'); the keys' log-features are shifted by one constant shared by all
 * keys (their running maximum, as the Performer's stabiliser), which cancels too. */
#include "attention.h"

#include "../base/progress.h"
#include "../engine/engine.h"
#include "../features/features.h"
#include "../linalg/linalg.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>

void gram_attention_options_init(gram_attention_options *opt)
{
    if (!opt) return;
    memset(opt, 0, sizeof *opt);
    opt->kernel = NULL;
    opt->method = GRAM_ATTENTION_EXACT;
}

/* softmax attention's kernel, exp(q·k/√d): the softmax family with lengthscale d^(1/4). */
static gram_status softmax_kernel(gram_context *ctx, int64_t d, gram_kernel **out)
{
    const double ls = d > 0 ? pow((double)d, 0.25) : 1.0;
    return gram_kernel_create(ctx, GRAM_SOFTMAX, 1, &ls, 0, NULL, out);
}

/* ---- FAVOR+ ---------------------------------------------------------------------------------- */

#define FB 256 /* rows per block of the streamed passes (a function of nothing else: the bits of the
                  result do not depend on the thread count) */
#define FG 16  /* key blocks computed side by side before their ordered merge */
#define FC 64  /* rows per step of the causal prefix sweep */

typedef struct favor {
    const gram_features *f;
    int64_t d, R, dv, V1; /* V1 = dv + 1: the values and the ones column of the normaliser */
    double key_norm;      /* the keys' log-features are ω·k' − key_norm·|k'|² */
    void (*vexp)(int64_t, const double *, double *);
} favor;

/* Rows [i0, i0 + n) of X as float64 (xb, n×d) and their projections P = xb Ωᵀ (n×R); nrm (NULL to
 * skip) gets |x'|². */
static void project(const favor *fv, const gram_array *X, int64_t i0, int64_t n, double *xb, double *P, double *nrm)
{
    const int64_t d = fv->d, R = fv->R;
    for (int64_t i = 0; i < n; i++) {
        double s = 0.0;
        for (int64_t c = 0; c < d; c++) {
            const double v = gram__get(X, i0 + i, c);
            xb[i * d + c] = v;
            const double u = v * fv->f->inv_ls[c];
            s += u * u;
        }
        if (nrm) nrm[i] = s;
    }
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)R, (int)d, 1.0, xb, (int)d, fv->f->omega, (int)d,
                0.0, P, (int)R);
}

/* Query features, in place: exp(P − the row's maximum). Returns 0, or 1 if a projection is not
 * finite. */
static int query_features(const favor *fv, int64_t n, double *P)
{
    const int64_t R = fv->R;
    int bad = 0;
    for (int64_t i = 0; i < n; i++) {
        double *p = P + i * R, m = -INFINITY;
        for (int64_t r = 0; r < R; r++) m = p[r] > m ? p[r] : m;
        bad |= !isfinite(m);
        for (int64_t r = 0; r < R; r++) p[r] -= m;
        fv->vexp(R, p, p);
    }
    return bad;
}

/* Key log-features, in place (P ← P − key_norm·|k'|²); returns their maximum (+inf or NaN when
 * one is not finite). */
static double key_logfeatures(const favor *fv, int64_t n, double *P, const double *nrm)
{
    const int64_t R = fv->R;
    double m = -INFINITY;
    int bad = 0;
    for (int64_t i = 0; i < n; i++) {
        double *p = P + i * R;
        const double sh = fv->key_norm * nrm[i];
        for (int64_t r = 0; r < R; r++) {
            p[r] -= sh;
            m = p[r] > m ? p[r] : m;
            bad |= !isfinite(p[r]);
        }
    }
    return bad ? INFINITY : m;
}

/* exp(P − m) in place, n rows. */
static void shifted_exp(const favor *fv, int64_t n, double *P, double m)
{
    const int64_t cnt = n * fv->R;
    for (int64_t e = 0; e < cnt; e++) P[e] -= m;
    fv->vexp(cnt, P, P);
}

/* [V, 1] of rows [j0, j0 + n) as float64, n × V1. */
static void values_block(const favor *fv, const gram_array *V, int64_t j0, int64_t n, double *vb)
{
    const int64_t dv = fv->dv, V1 = fv->V1;
    for (int64_t j = 0; j < n; j++) {
        for (int64_t c = 0; c < dv; c++) vb[j * V1 + c] = gram__get(V, j0 + j, c);
        vb[j * V1 + dv] = 1.0;
    }
}

/* out's rows [i0, i0 + n) from the numerators num (n × V1, the last column the normaliser).
 * Returns the first row whose normaliser is not a positive finite number (or whose result is not
 * finite), or -1. */
static int64_t write_out(const favor *fv, gram_array *out, int64_t i0, int64_t n, const double *num)
{
    const int64_t dv = fv->dv, V1 = fv->V1;
    int64_t bad = -1;
    for (int64_t i = 0; i < n; i++) {
        const double den = num[i * V1 + dv];
        int ok = den > 0 && den < INFINITY;
        for (int64_t c = 0; c < dv && ok; c++) ok = isfinite(num[i * V1 + c] / den);
        for (int64_t c = 0; c < dv; c++) gram__put(out, i0 + i, c, ok ? num[i * V1 + c] / den : 0.0);
        if (!ok && bad < 0) bad = i0 + i;
    }
    return bad;
}

static void note_min(int64_t *slot, int64_t v)
{
    if (v < 0) return;
#pragma omp critical(gram_favor_rows)
    if (*slot < 0 || v < *slot) *slot = v;
}

/* A = Σ_j exp(lk_j − M)ᵀ [v_j, 1] over all keys (R × V1) with M the keys' largest log-feature:
 * blocks of FB keys, FG blocks at a time on threads, merged in block order with a running maximum
 * (the pair (m_b, A_b) of a block rescaled to the running one). */
static gram_status key_state(gram_context *ctx, const favor *fv, const gram_array *K, const gram_array *V, double *A,
                             int nt, int64_t *bad_key)
{
    const int64_t S = K->rows, R = fv->R, V1 = fv->V1, d = fv->d, nb = (S + FB - 1) / FB;
    const size_t per = (size_t)(FB * d + FB * R + FB * V1 + FB);
    double *mem = gram__alloc(sizeof(double) * (per * (size_t)nt + (size_t)FG * (size_t)(R * V1 + 1)));
    if (!mem) return gram__fail(ctx, GRAM_ENOMEM, "out of memory for FAVOR's key blocks");
    double *slots = mem + per * (size_t)nt, *mb = slots + (size_t)FG * (size_t)(R * V1);
    double M = -INFINITY;
    memset(A, 0, sizeof(double) * (size_t)(R * V1));
    for (int64_t g0 = 0; g0 < nb && *bad_key < 0; g0 += FG) {
        const int64_t g1 = g0 + FG < nb ? g0 + FG : nb;
        int team = gram__team_size(nt < g1 - g0 ? nt : (int)(g1 - g0));
#pragma omp parallel num_threads(team)
        {
            double *xb = mem + per * (size_t)omp_get_thread_num(), *P = xb + FB * d, *vb = P + FB * R, *nrm = vb + FB * V1;
#pragma omp for schedule(dynamic, 1)
            for (int64_t b = g0; b < g1; b++) {
                const int64_t j0 = b * FB, n = S - j0 < FB ? S - j0 : FB;
                double *Ab = slots + (size_t)(b - g0) * (size_t)(R * V1);
                project(fv, K, j0, n, xb, P, nrm);
                const double m = key_logfeatures(fv, n, P, nrm);
                mb[b - g0] = m;
                if (!isfinite(m)) {
                    note_min(bad_key, j0);
                    continue;
                }
                shifted_exp(fv, n, P, m);
                values_block(fv, V, j0, n, vb);
                cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)R, (int)V1, (int)n, 1.0, P, (int)R, vb,
                            (int)V1, 0.0, Ab, (int)V1);
            }
        }
        for (int64_t b = g0; b < g1 && *bad_key < 0; b++) {
            const double m = mb[b - g0], *Ab = slots + (size_t)(b - g0) * (size_t)(R * V1);
            if (m > M) {
                const double sc = M == -INFINITY ? 0.0 : exp(M - m);
                for (int64_t e = 0; e < R * V1; e++) A[e] = A[e] * sc + Ab[e];
                M = m;
            } else {
                const double sc = exp(m - M);
                for (int64_t e = 0; e < R * V1; e++) A[e] += sc * Ab[e];
            }
        }
    }
    gram__free(mem);
    return GRAM_OK;
}

/* Non-causal FAVOR+: the keys' state A, then every block of queries independently. */
static gram_status favor_full(gram_context *ctx, const favor *fv, const gram_array *Q, const gram_array *K,
                              const gram_array *V, gram_array *out, int nt, int64_t *bad_q, int64_t *bad_k,
                              int64_t *bad_row)
{
    const int64_t L = Q->rows, R = fv->R, V1 = fv->V1, d = fv->d, nb = (L + FB - 1) / FB;
    double *A = gram__alloc(sizeof(double) * (size_t)(R * V1));
    if (!A) return gram__fail(ctx, GRAM_ENOMEM, "out of memory for FAVOR's key state");
    gram_status s = key_state(ctx, fv, K, V, A, nt, bad_k);
    if (s || *bad_k >= 0) {
        gram__free(A);
        return s;
    }
    const size_t per = (size_t)(FB * d + FB * R + FB * V1);
    double *mem = gram__alloc(sizeof(double) * per * (size_t)nt);
    if (!mem) {
        gram__free(A);
        return gram__fail(ctx, GRAM_ENOMEM, "out of memory for FAVOR's query blocks");
    }
    gram__progress ps = {0, nb, 0};
    nt = gram__team_size(nt < nb ? nt : (int)nb);
#pragma omp parallel num_threads(nt)
    {
        double *xb = mem + per * (size_t)omp_get_thread_num(), *P = xb + FB * d, *num = P + FB * R;
#pragma omp for schedule(dynamic, 1)
        for (int64_t b = 0; b < nb; b++) {
            if (gram__progress_cancelled(&ps)) continue;
            const int64_t i0 = b * FB, n = L - i0 < FB ? L - i0 : FB;
            project(fv, Q, i0, n, xb, P, NULL);
            if (query_features(fv, n, P)) note_min(bad_q, i0);
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)V1, (int)R, 1.0, P, (int)R, A, (int)V1,
                        0.0, num, (int)V1);
            note_min(bad_row, write_out(fv, out, i0, n, num));
            gram__progress_report(ctx, &ps, 1);
        }
    }
    gram__free(mem);
    gram__free(A);
    if (ps.cancelled)
        return gram__fail(ctx, GRAM_ECANCELLED, "cancelled by the progress callback after %lld of %lld blocks",
                          (long long)ps.done, (long long)ps.total);
    return GRAM_OK;
}

/* Causal FAVOR+ by prefix sums: steps of FC positions in order; the state A = Σ_{j before the
 * step} exp(lk_j − M)ᵀ [v_j, 1] (R × V1, M the running maximum of the keys' log-features, A
 * rescaled when it grows), and inside a step the masked product (Φ_Q E_Kᵀ ∘ [j ≤ i]) [V, 1]. Memory
 * O(R·dv + FC·(R + FC + dv)), never an L × R × dv tensor; work O(L·R·dv). */
static gram_status favor_causal(gram_context *ctx, const favor *fv, const gram_array *Q, const gram_array *K,
                                const gram_array *V, gram_array *out, int64_t *bad_q, int64_t *bad_k, int64_t *bad_row)
{
    const int64_t L = Q->rows, R = fv->R, V1 = fv->V1, d = fv->d, ns = (L + FC - 1) / FC;
    const size_t sz = (size_t)(R * V1 + FC * d + 2 * FC * R + FC * V1 + FC + FC * FC + FC * V1);
    double *A = gram__alloc(sizeof(double) * sz);
    if (!A) return gram__fail(ctx, GRAM_ENOMEM, "out of memory for FAVOR's causal state");
    double *xb = A + R * V1, *Pq = xb + FC * d, *Pk = Pq + FC * R, *vb = Pk + FC * R, *nrm = vb + FC * V1,
           *G = nrm + FC, *num = G + FC * FC;
    memset(A, 0, sizeof(double) * (size_t)(R * V1));
    double M = -INFINITY;
    for (int64_t st = 0; st < ns; st++) {
        if (ctx && ctx->progress && ctx->progress(ctx->progress_user, st, ns)) {
            gram__free(A);
            return gram__fail(ctx, GRAM_ECANCELLED, "cancelled by the progress callback after %lld of %lld steps",
                              (long long)st, (long long)ns);
        }
        const int64_t i0 = st * FC, n = L - i0 < FC ? L - i0 : FC;
        project(fv, Q, i0, n, xb, Pq, NULL);
        if (query_features(fv, n, Pq)) note_min(bad_q, i0);
        project(fv, K, i0, n, xb, Pk, nrm);
        const double m = key_logfeatures(fv, n, Pk, nrm);
        if (!isfinite(m)) {
            note_min(bad_k, i0);
            break;
        }
        if (m > M) {
            const double sc = M == -INFINITY ? 0.0 : exp(M - m);
            for (int64_t e = 0; e < R * V1; e++) A[e] *= sc;
            M = m;
        }
        shifted_exp(fv, n, Pk, M);
        values_block(fv, V, i0, n, vb);
        /* earlier steps, then this step's keys j ≤ i */
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)V1, (int)R, 1.0, Pq, (int)R, A, (int)V1, 0.0,
                    num, (int)V1);
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)n, (int)R, 1.0, Pq, (int)R, Pk, (int)R, 0.0, G,
                    (int)n);
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = i + 1; j < n; j++) G[i * n + j] = 0.0;
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)V1, (int)n, 1.0, G, (int)n, vb, (int)V1, 1.0,
                    num, (int)V1);
        note_min(bad_row, write_out(fv, out, i0, n, num));
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)R, (int)V1, (int)n, 1.0, Pk, (int)R, vb, (int)V1, 1.0,
                    A, (int)V1);
    }
    gram__free(A);
    return GRAM_OK;
}

/* FAVOR+ with relative positional encodings (Luo et al. 2021): num_i = Σ_r φ_q(i)_r Σ_j
 * c_(j−i) e_jr [v_j, 1], the inner sums Toeplitz products of the sequences e_·r [v_·, 1]_c, by FFT
 * (toeplitz.c): O(R·dv·(L + S) log(L + S)) work. The features of all queries and keys are kept
 * (O((L + S)·R) memory: each sequence runs over every key), and the keys share one stabiliser,
 * their largest log-feature. Feature columns r are split into at most FG fixed groups, each with
 * its own numerators, summed in group order. Causal: c_(j−i) = 0 for j > i. */
static gram_status favor_rpe(gram_context *ctx, const favor *fv, const gram_array *Q, const gram_array *K,
                             const gram_array *V, const double *rpe, int causal, gram_array *out, int nt,
                             int64_t *bad_q, int64_t *bad_k, int64_t *bad_row)
{
    const int64_t L = Q->rows, S = K->rows, R = fv->R, V1 = fv->V1, d = fv->d, nc = L + S - 1;
    const int64_t ng = R < FG ? R : FG;
    gram_status s = GRAM_OK;
    double *c = gram__alloc(sizeof(double) * (size_t)nc);
    if (!c) return gram__fail(ctx, GRAM_ENOMEM, "out of memory for the positional coefficients");
    double bmax = -INFINITY;
    for (int64_t t = 0; t < nc; t++)
        if (!(causal && t > L - 1)) bmax = rpe[t] > bmax ? rpe[t] : bmax;
    for (int64_t t = 0; t < nc; t++) c[t] = causal && t > L - 1 ? 0.0 : exp(rpe[t] - bmax);
    gram__toeplitz tp;
    if ((s = gram__toeplitz_init(ctx, &tp, L, S, c))) {
        gram__free(c);
        return s;
    }
    gram__free(c);
    const int64_t n2 = tp.n;
    int64_t cnt;
    size_t bytes;
    /* Φ_Q (L×R), E_K (S×R), [V, 1] (S×V1), the groups' numerators, per-thread scratch */
    const size_t per = (size_t)(FB * d + FB + 2 * n2 + 2 * S + 2 * L);
    if (!gram__mul_i64(L + S, R, &cnt) || !gram__mul_i64(cnt + S * V1 + ng * L * V1, 1, &cnt) ||
        !gram__bytes(cnt + (int64_t)per * nt, sizeof(double), &bytes) || !gram__memory_fits(bytes)) {
        gram__toeplitz_free(&tp);
        return gram__fail(ctx, GRAM_ENOMEM, "FAVOR+ with positional encodings keeps every feature: %lld×%lld and "
                          "%lld×%lld values are more than the system can provide now", (long long)L, (long long)R,
                          (long long)S, (long long)R);
    }
    double *mem = gram__alloc(bytes);
    if (!mem) {
        gram__toeplitz_free(&tp);
        return gram__fail(ctx, GRAM_ENOMEM, "out of memory for FAVOR+'s features");
    }
    double *PQ = mem, *PK = PQ + L * R, *VB = PK + S * R, *NUM = VB + S * V1, *scr = NUM + ng * L * V1;
    const int64_t nbq = (L + FB - 1) / FB, nbk = (S + FB - 1) / FB;
    double *kmax = gram__alloc(sizeof(double) * (size_t)(nbk + 1));
    if (!kmax) {
        gram__free(mem);
        gram__toeplitz_free(&tp);
        return gram__fail(ctx, GRAM_ENOMEM, "out of memory");
    }
    int team = gram__team_size(nt);
#pragma omp parallel num_threads(team)
    {
        double *xb = scr + per * (size_t)omp_get_thread_num(), *nrm = xb + FB * d;
#pragma omp for schedule(dynamic, 1)
        for (int64_t b = 0; b < nbq; b++) {
            const int64_t i0 = b * FB, n = L - i0 < FB ? L - i0 : FB;
            project(fv, Q, i0, n, xb, PQ + i0 * R, NULL);
            if (query_features(fv, n, PQ + i0 * R)) note_min(bad_q, i0);
        }
#pragma omp for schedule(dynamic, 1)
        for (int64_t b = 0; b < nbk; b++) {
            const int64_t j0 = b * FB, n = S - j0 < FB ? S - j0 : FB;
            project(fv, K, j0, n, xb, PK + j0 * R, nrm);
            kmax[b] = key_logfeatures(fv, n, PK + j0 * R, nrm);
            values_block(fv, V, j0, n, VB + j0 * V1);
        }
    }
    double M = -INFINITY;
    for (int64_t b = 0; b < nbk && *bad_k < 0; b++) {
        if (!isfinite(kmax[b])) note_min(bad_k, b * FB);
        M = kmax[b] > M ? kmax[b] : M;
    }
    gram__free(kmax);
    if (*bad_k >= 0) {
        gram__free(mem);
        gram__toeplitz_free(&tp);
        return GRAM_OK;
    }
    shifted_exp(fv, S, PK, M);

    gram__progress ps = {0, R, 0};
    team = gram__team_size(nt < ng ? nt : (int)ng);
#pragma omp parallel num_threads(team)
    {
        double *work = scr + per * (size_t)omp_get_thread_num(), *za = work + 2 * n2, *zb = za + S, *ya = zb + S,
               *yb = ya + L;
#pragma omp for schedule(dynamic, 1)
        for (int64_t g = 0; g < ng; g++) {
            double *num = NUM + g * L * V1;
            memset(num, 0, sizeof(double) * (size_t)(L * V1));
            const int64_t r0 = g * R / ng, r1 = (g + 1) * R / ng;
            for (int64_t r = r0; r < r1; r++) {
                if (gram__progress_cancelled(&ps)) break;
                for (int64_t v = 0; v < V1; v += 2) {
                    const int two = v + 1 < V1;
                    for (int64_t j = 0; j < S; j++) {
                        za[j] = PK[j * R + r] * VB[j * V1 + v];
                        if (two) zb[j] = PK[j * R + r] * VB[j * V1 + v + 1];
                    }
                    gram__toeplitz_apply(&tp, za, two ? zb : NULL, ya, yb, work);
                    for (int64_t i = 0; i < L; i++) {
                        const double q = PQ[i * R + r];
                        num[i * V1 + v] += q * ya[i];
                        if (two) num[i * V1 + v + 1] += q * yb[i];
                    }
                }
                gram__progress_report(ctx, &ps, 1);
            }
        }
    }
    if (!ps.cancelled) {
        for (int64_t g = 1; g < ng; g++)
            for (int64_t e = 0; e < L * V1; e++) NUM[e] += NUM[g * L * V1 + e];
        /* a Toeplitz product of non-negative sequences by FFT can come out a rounding below 0
         * where the true normaliser is tiny; such rows are reported, never divided */
        *bad_row = write_out(fv, out, 0, L, NUM);
    }
    gram__free(mem);
    gram__toeplitz_free(&tp);
    if (ps.cancelled)
        return gram__fail(ctx, GRAM_ECANCELLED, "cancelled by the progress callback after %lld of %lld feature columns",
                          (long long)ps.done, (long long)ps.total);
    return GRAM_OK;
}

/* The default number of features: d·log d, the order Choromanski et al. (2021, Theorem 4) give
 * for a uniformly good approximation, at least 16. */
static int64_t default_features(int64_t d)
{
    const double r = ceil((double)d * log((double)d));
    return r < 16 ? 16 : (int64_t)r;
}

static gram_status favor_run(gram_context *ctx, const gram_attention_options *opt, const gram_kernel *k,
                             const gram_array *Q, const gram_array *K, const gram_array *V, gram_array *out)
{
    const int64_t d = Q->cols;
    if (d < 1) return gram__fail(ctx, GRAM_ESHAPE, "FAVOR+ needs queries and keys of dimension d >= 1, got 0");
    if (opt->n_features < 0 || opt->n_features > INT32_MAX)
        return gram__fail(ctx, GRAM_EINVAL, "n_features must be >= 1 and at most %d (0 for the default d·log d), got %lld",
                          INT32_MAX, (long long)opt->n_features);
    const int64_t R = opt->n_features ? opt->n_features : default_features(d);
    /* The gaussian whose positive features the map uses: the softmax kernel's own lengthscales
     * (exp(q'·k') is the gaussian of q', k' times exp(|q'|²/2) exp(|k'|²/2)), or the kernel itself. */
    const gram__leaf *L0 = k->n_leaves == 1 ? &k->leaves[0] : NULL;
    const int scaled = k->n_ops == 2 && k->ops[1].kind == GRAM_OP_SCALE && k->ops[1].c > 0;
    const int softmax = L0 && L0->family == GRAM_SOFTMAX && (k->n_ops == 1 || scaled);
    gram_kernel *g = NULL;
    gram_status s;
    if (softmax && (s = gram_kernel_create(ctx, GRAM_GAUSSIAN, L0->n_scale, L0->lengthscale, 0, NULL, &g))) return s;
    gram_features *f = NULL;
    s = gram_features_create(ctx, softmax ? g : k, d, GRAM_FEATURES_POSITIVE_ORF, R, opt->seed, &f);
    gram_kernel_destroy(g);
    if (s == GRAM_EINVAL && !softmax) {
        char why[512];
        snprintf(why, sizeof why, "%s", ctx ? gram_context_message(ctx) : "");
        return gram__fail(ctx, GRAM_EINVAL, "FAVOR+ needs the softmax or the gaussian kernel (optionally times a "
                          "constant), the kernels with positive random features; use the EXACT method for others (%s)",
                          why);
    }
    if (s) return s;
    favor fv = {f, d, R, V->cols, V->cols + 1, softmax ? 0.5 : 1.0, NULL};
    gram_arch arch;
    const gram__ukr *u = NULL;
    if (!(s = gram__resolve_arch(ctx, &arch)) && !(u = gram__ukr_for(arch)))
        s = gram__fail(ctx, GRAM_EUNSUPPORTED, "architecture %s is not compiled into this build", gram__arch_name(arch));
    if (s) {
        gram_features_destroy(f);
        return s;
    }
    fv.vexp = u->exp_f64;
    int64_t bad_q = -1, bad_k = -1, bad_row = -1;
    const int nt = gram__threads(ctx);
    const int saved = gram__blas_serial_begin(0); /* one thread per BLAS call: blocks are the parallel unit */
    if (opt->rpe) s = favor_rpe(ctx, &fv, Q, K, V, opt->rpe, opt->causal, out, nt, &bad_q, &bad_k, &bad_row);
    else if (opt->causal) s = favor_causal(ctx, &fv, Q, K, V, out, &bad_q, &bad_k, &bad_row);
    else s = favor_full(ctx, &fv, Q, K, V, out, nt, &bad_q, &bad_k, &bad_row);
    gram__blas_serial_end(saved);
    gram_features_destroy(f);
    if (s) return s;
    if (bad_q >= 0 || bad_k >= 0)
        return gram__fail(ctx, GRAM_EDOMAIN, "FAVOR+: a random projection of %s in the block from row %lld is not finite "
                          "(|x|/lengthscale is too large for float64 features); use the EXACT method",
                          bad_k >= 0 ? "K" : "Q", (long long)(bad_k >= 0 ? bad_k : bad_q));
    if (bad_row >= 0)
        return gram__fail(ctx, GRAM_EDOMAIN, "FAVOR+: row %lld's estimated normaliser Σ_j φ(q_i)·φ(k_j) is not a positive "
                          "finite number (its features underflow against every key's; more features or the EXACT "
                          "method); its row of out is set to 0", (long long)bad_row);
    return GRAM_OK;
}

/* ---- the front ------------------------------------------------------------------------------- */

gram_status gram_attention(gram_context *ctx, const gram_attention_options *opt, const gram_array *Q,
                           const gram_array *K, const gram_array *V, gram_array *out)
{
    gram__clear(ctx);
    gram_attention_options def;
    if (!opt) {
        gram_attention_options_init(&def);
        opt = &def;
    }
    if (opt->method != GRAM_ATTENTION_EXACT && opt->method != GRAM_ATTENTION_FAVOR)
        return gram__fail(ctx, GRAM_EINVAL, "unknown attention method %d (EXACT = 0, FAVOR = 1)", (int)opt->method);
    if (opt->causal != 0 && opt->causal != 1)
        return gram__fail(ctx, GRAM_EINVAL, "causal must be 0 or 1, got %d", opt->causal);
    gram_status s;
    if ((s = gram__check_array(ctx, Q, "Q")) || (s = gram__check_array(ctx, K, "K")) ||
        (s = gram__check_array(ctx, V, "V")) || (s = gram__check_array(ctx, out, "out")))
        return s;
    if (Q->rows > INT32_MAX - 1 || K->rows > INT32_MAX - 1 || Q->cols > INT32_MAX || V->cols > INT32_MAX - 1)
        return gram__fail(ctx, GRAM_EOVERFLOW, "attention is limited to 2^31 - 2 queries, keys and columns");
    gram_kernel *sm = NULL;
    const gram_kernel *k = opt->kernel;
    if (!k) {
        if ((s = softmax_kernel(ctx, Q->cols, &sm))) return s;
        k = sm;
    }
    if (opt->method == GRAM_ATTENTION_EXACT) {
        s = gram__kernel_attention(ctx, k, Q, K, V, opt->rpe, opt->causal, out);
        gram_kernel_destroy(sm);
        return s;
    }
    /* FAVOR: the engine's checks without its run (shapes, dtypes, finiteness, overlap, sign) */
    s = GRAM_OK;
    if (Q->dtype != K->dtype)
        s = gram__fail(ctx, GRAM_EINVAL, "Q and K must have the same dtype (Q is %s, K is %s)",
                       Q->dtype == GRAM_FLOAT64 ? "float64" : "float32", K->dtype == GRAM_FLOAT64 ? "float64" : "float32");
    else if (Q->cols != K->cols)
        s = gram__fail(ctx, GRAM_ESHAPE, "Q has %lld columns but K has %lld: queries and keys must have the same "
                       "dimension", (long long)Q->cols, (long long)K->cols);
    else if (V->rows != K->rows)
        s = gram__fail(ctx, GRAM_ESHAPE, "V has %lld rows but K has %lld: one value row per key", (long long)V->rows,
                       (long long)K->rows);
    else if (out->rows != Q->rows || out->cols != V->cols)
        s = gram__fail(ctx, GRAM_ESHAPE, "out is %lld×%lld but must be %lld×%lld (queries × value columns)",
                       (long long)out->rows, (long long)out->cols, (long long)Q->rows, (long long)V->cols);
    else if (opt->causal && Q->rows != K->rows)
        s = gram__fail(ctx, GRAM_ESHAPE, "causal attention needs as many queries as keys (position i attends to keys "
                       "j <= i); got %lld queries and %lld keys", (long long)Q->rows, (long long)K->rows);
    else if (k->dim > 0 && K->cols != k->dim)
        s = gram__fail(ctx, GRAM_ESHAPE, "the kernel's ARD lengthscales fix D = %lld but Q and K have %lld columns",
                       (long long)k->dim, (long long)K->cols);
    else if (!k->nonnegative)
        s = gram__fail(ctx, GRAM_EDOMAIN, "attention weights must be non-negative: this kernel can be negative "
                       "(FAVOR+ covers the softmax and gaussian kernels)");
    else if (!(s = gram__check_finite(ctx, Q, "Q")) && !(s = gram__check_finite(ctx, K, "K")) &&
             !(s = gram__check_finite(ctx, V, "V")) && !(s = gram__check_no_overlap(ctx, out, Q, "out", "Q")) &&
             !(s = gram__check_no_overlap(ctx, out, K, "out", "K")) &&
             !(s = gram__check_no_overlap(ctx, out, V, "out", "V")) && opt->rpe) {
        for (int64_t t = 0; t < Q->rows + K->rows - 1 && !s; t++)
            if (!isfinite(opt->rpe[t]))
                s = gram__fail(ctx, GRAM_ENONFINITE, "rpe: bias %lld (offset j - i = %lld) is %s", (long long)t,
                               (long long)(t - (Q->rows - 1)), isnan(opt->rpe[t]) ? "NaN" : "infinite");
    }
    if (!s && Q->rows > 0) {
        if (K->rows == 0) {
            for (int64_t i = 0; i < Q->rows; i++)
                for (int64_t c = 0; c < V->cols; c++) gram__put(out, i, c, 0.0);
            s = gram__fail(ctx, GRAM_EDOMAIN, "attention row 0 has no key with a positive weight (there are no keys): its "
                           "average is undefined and its row of out is set to 0");
        } else s = favor_run(ctx, opt, k, Q, K, V, out);
    }
    gram_kernel_destroy(sm);
    return s;
}
