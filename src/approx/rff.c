/* approx: the feature-map route, random Fourier features with a per-query confidence bound
 * (docs/approx.md, "Features").
 *
 * For k = c·κ with κ shift-invariant, κ(0) = 1 and spectral law p (Bochner; src/features/sample.c
 * draws from it), and i.i.d. frequencies ω_1..ω_n ~ p, each
 *     T_r(y) = c·Σ_j w_j cos(ω_r·(y − x_j)) = c·[cos(ω_r·y)·Sc_r + sin(ω_r·y)·Ss_r],
 *     Sc_r = Σ_j w_j cos(ω_r·x_j),  Ss_r = Σ_j w_j sin(ω_r·x_j),
 * is an unbiased estimate of the sum, and |T_r| ≤ B = c·Σ_j |w_j|, so the T_r(y) of one query are
 * i.i.d. in [−B, B]. The estimate is their mean; its bound is the empirical Bernstein inequality
 * of Maurer & Pontil ("Empirical Bernstein bounds and sample variance penalization", COLT 2009,
 * Theorem 4): for n i.i.d. variables in an interval of width w, with probability ≥ 1 − δ',
 *     E T − mean ≤ √(2·V_n·ln(2/δ')/n) + 7·w·ln(2/δ')/(3(n − 1)),
 * V_n the unbiased sample variance. Applied to T and −T at δ'/2 each, w = 2B: |mean − E T| ≤ that
 * with ln(4/δ') for both sides at once.
 *
 * Adaptive n: a schedule fixed before any draw (RFF_START frequencies, doubling to a cap at which
 * the features would cost about half the exact sum), L rounds; every bound a query may be given
 * (L rounds × V columns) gets δ' = δ/(L·V), so all hold together with probability ≥ 1 − δ per
 * query whatever round it stops in (as in sampling.c). A query stops when every column's bound
 * ≤ atol + rtol·(|est| − bound), which implies the tolerance on the exact value; the rest are summed
 * exactly by gram_kernel_sum after the last round (err 0).
 *
 * Frequencies are nested: frequency i comes from Philox stream i of the seed whatever the map's
 * size, so each round makes the map of all its frequencies and uses the new ones. Coordinates are
 * centred on the midrange of X ∪ Y first (k is shift-invariant), which keeps the phases ω·x small
 * and accurate. Work is split into fixed blocks of RFF_FB frequencies (X's sums: one block per task,
 * its rows in a fixed order) and fixed chunks of RFF_ROWS queries (each query's terms summed in
 * frequency order by one thread): the bits do not depend on the thread count.
 *
 * Rounding: the bound holds for the exact T_r; a computed T̃_r differs by at most e_r·B, where
 * e_r ≤ 4(D + 1)·u·|ω_r|₁·ρ + (2N + 64)·u (u the unit roundoff, ρ the largest centred |coordinate|:
 * the phases' dot products in X and Y, their cos and sin, Sc and Ss over N terms, the product). The
 * mean then moves by at most mean(e_r)·B and the sample deviation by at most max(e_r)·B·√(n/(n−1)),
 * both added to the bound. Float32 inputs are converted exactly to float64, so the same holds.
 */
#include "approx.h"

#include "../engine/engine.h"
#include "../features/features.h"
#include "../kernel/kernel.h"
#include "../linalg/linalg.h"

#include <cblas.h>
#include <float.h>
#include <math.h>
#include <omp.h>
#include <string.h>

/* Frequencies of the first adaptive round (each later round doubles the total). */
#define RFF_START 256
/* Frequencies projected together: one BLAS product of RFF_ROWS × D by D × RFF_FB, and the unit of
 * parallel work over X. */
#define RFF_FB 64
/* Rows per chunk (of X in a frequency block, of the queries in the Y pass). */
#define RFF_ROWS 256
/* The largest table of frequencies (F·D values) a call makes: 128 MiB of doubles (and floats). */
#define RFF_MAX_FD ((int64_t)1 << 24)

/* The cost model (gram__approx_features_cost): time per point and frequency (X pass and Y pass
 * together count one each), in units of one gaussian pair of gram_kernel_sum at the same D on one
 * thread, as (RFF_FEAT_A + RFF_FEAT_B·D) / (RFF_PAIR_A + RFF_PAIR_B·D). Measured on this project's
 * machine (one thread, N = M = 20000, 4096 features, every query certified, against the exact sum
 * of 2000 of the queries): 3.0 at D = 4, 2.5 at D = 16, 1.9 at D = 64 (docs/approx.md, "Features").
 * Kernels dearer per pair than the gaussian (matern, cauchy) make the features relatively cheaper
 * than this predicts: the model errs towards the exact sum. */
#define RFF_FEAT_A 9.0
#define RFF_FEAT_B 0.77
#define RFF_PAIR_A 2.0
#define RFF_PAIR_B 0.45

static double feature_units(int64_t D)
{
    return (RFF_FEAT_A + RFF_FEAT_B * (double)D) / (RFF_PAIR_A + RFF_PAIR_B * (double)D);
}

int gram__approx_features_supports(const gram_kernel *k, int64_t D, const char **why)
{
    (void)D;
    return gram__features_rff_covers(k, why);
}

/* The schedule: frequencies after each round, F[0] < F[1] < ... (at most 32 rounds); returns L (0:
 * the features cannot pay, every query is summed exactly). No bound can meet the tolerance below
 * n_min frequencies (the range term alone, 7·2B·ln(4/δ')/(3(n − 1)), exceeds atol + rtol·B ≥
 * atol + rtol·|exact|), so the first round starts there rather than spend rounds (and δ) below it. */
static int schedule(int64_t components, int64_t N, int64_t M, int64_t D, double n_min, int64_t *F)
{
    if (components > 0) {
        F[0] = components / 2;
        return 1;
    }
    /* the features' cost of n frequencies ≈ (N + M)·n·feature_units; at most half the exact M·N */
    const double cap_d = 0.5 * (double)M * (double)N / (((double)N + (double)M) * feature_units(D));
    int64_t cap = RFF_MAX_FD / D, f = RFF_START;
    if (cap_d < (double)cap) cap = (int64_t)cap_d;
    if (!(n_min <= (double)cap)) return 0;
    if ((double)f < n_min) f = ((int64_t)ceil(n_min) + RFF_FB - 1) / RFF_FB * RFF_FB;
    int L = 0;
    for (; f <= cap && L < 32; f *= 2) F[L++] = f;
    return L;
}

/* n_min of schedule for columns whose terms are bounded by B_v = bw[v], with the most rounds. */
static double least_frequencies(const double *bw, int64_t V, const gram_approx_options *opt)
{
    const double ln4 = log(4.0 * 32.0 * (double)V / opt->delta);
    double n = 2.0;
    for (int64_t v = 0; v < V; v++) {
        const double tol = opt->atol + opt->rtol * bw[v];
        const double need = tol > 0 ? 1.0 + 14.0 * bw[v] * ln4 / (3.0 * tol) : INFINITY;
        if (bw[v] > 0 && need > n) n = need;
    }
    return n;
}

/* Midrange of X ∪ Y per column into mu; returns the largest |coordinate − mu| over both. */
static double centre(const gram_array *Y, const gram_array *X, double *mu)
{
    const int64_t D = X->cols;
    double rho = 0.0;
    for (int64_t d = 0; d < D; d++) {
        double lo = INFINITY, hi = -INFINITY;
        for (int64_t j = 0; j < X->rows; j++) {
            const double v = gram__get(X, j, d);
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
        }
        for (int64_t i = 0; i < Y->rows; i++) {
            const double v = gram__get(Y, i, d);
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
        }
        mu[d] = lo + 0.5 * (hi - lo);
        const double r = fmax(hi - mu[d], mu[d] - lo);
        rho = r > rho ? r : rho;
    }
    return rho;
}

/* The radius of the two-sided bound from n terms: s1, s2 the sums of (T − shift) and its square,
 * ln4 = ln(4/δ'), width = 2B, emean and emax the rounding terms (already times B). */
static double radius(double s1, double s2, int64_t n, double ln4, double width, double emean, double emax)
{
    const double nd = (double)n;
    const double u = DBL_EPSILON / 2;
    /* the sums' own rounding: n·u relative on each */
    const double var = fmax(0.0, (s2 - s1 * s1 / nd) / (nd - 1.0)) + 4.0 * nd * u * (s2 + s1 * s1 / nd) / (nd - 1.0);
    const double sd = sqrt(var) + emax * sqrt(nd / (nd - 1.0));
    return sd * sqrt(2.0 * ln4 / nd) + 7.0 * width * ln4 / (3.0 * (nd - 1.0)) + emean;
}

/* Centred rows [i0, i0 + n) of A (or rows idx[i0..] when idx is not NULL) into dst (n × D). */
static void gather(const gram_array *A, const int64_t *idx, int64_t i0, int64_t n, const double *mu, double *dst)
{
    const int64_t D = A->cols;
    for (int64_t i = 0; i < n; i++) {
        const int64_t r = idx ? idx[i0 + i] : i0 + i;
        for (int64_t d = 0; d < D; d++) dst[i * D + d] = gram__get(A, r, d) - mu[d];
    }
}

/* cos and sin of the projections of n centred rows xc on fb frequencies om: phi row i holds the fb
 * cosines then the fb sines; p (n × fb) is scratch. Returns 1 if a projection is not finite. */
static int trig_rows(const double *xc, int64_t n, int64_t D, const double *om, int64_t fb, double *p, double *phi)
{
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)fb, (int)D, 1.0, xc, (int)D, om, (int)D, 0.0, p,
                (int)fb);
    int bad = 0;
    for (int64_t i = 0; i < n; i++) bad |= gram__sincos_f64(fb, p + i * fb, 1.0, phi + 2 * i * fb, phi + 2 * i * fb + fb);
    return bad;
}

typedef struct state {
    const gram_array *Y, *X, *W;
    int64_t N, D, V;
    const double *mu;
    double c;
} state;

/* S for frequencies [f0, f0 + fn) of om (rows f0.. of the map): block b of RFF_FB frequencies
 * holds 2·fb rows of V (Σ w cos, then Σ w sin). Blocks on threads; each block's rows of X in
 * order. Returns 1 if a projection was not finite. */
static int x_pass(const state *st, const double *om, int64_t fn, double *S, int nt, double *mem, size_t per)
{
    const int64_t N = st->N, D = st->D, V = st->V, nb = (fn + RFF_FB - 1) / RFF_FB;
    int bad = 0;
    nt = nt > nb ? (int)nb : nt;
    nt = gram__team_size(nt);
#pragma omp parallel num_threads(nt) reduction(| : bad)
    {
        double *xc = mem + per * (size_t)omp_get_thread_num(), *p = xc + RFF_ROWS * D, *phi = p + RFF_ROWS * RFF_FB,
               *wc = phi + 2 * RFF_ROWS * RFF_FB;
#pragma omp for schedule(dynamic, 1)
        for (int64_t b = 0; b < nb; b++) {
            const int64_t fb = fn - b * RFF_FB < RFF_FB ? fn - b * RFF_FB : RFF_FB;
            double *Sb = S + b * 2 * RFF_FB * V;
            memset(Sb, 0, (size_t)(2 * fb * V) * sizeof(double));
            for (int64_t i0 = 0; i0 < N; i0 += RFF_ROWS) {
                const int64_t n = N - i0 < RFF_ROWS ? N - i0 : RFF_ROWS;
                gather(st->X, NULL, i0, n, st->mu, xc);
                for (int64_t i = 0; i < n; i++)
                    for (int64_t v = 0; v < V; v++) wc[i * V + v] = st->W ? gram__get(st->W, i0 + i, v) : 1.0;
                bad |= trig_rows(xc, n, D, om + b * RFF_FB * D, fb, p, phi);
                cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)(2 * fb), (int)V, (int)n, 1.0, phi,
                            (int)(2 * fb), wc, (int)V, 1.0, Sb, (int)V);
            }
        }
    }
    return bad;
}

/* The terms of frequencies [0, fn) of S for the active queries: s1, s2 (M × V, by query) gain
 * Σ (T − shift) and Σ (T − shift)²; first: shift (M × V) is set to the mean of a query's first
 * block. Returns 1 if a projection was not finite. */
static int y_pass(const state *st, const double *om, int64_t fn, const double *S, const int64_t *active,
                  int64_t n_act, int first, double *shift, double *s1, double *s2, int nt, double *mem, size_t per)
{
    const int64_t D = st->D, V = st->V, nb = (fn + RFF_FB - 1) / RFF_FB, nc = (n_act + RFF_ROWS - 1) / RFF_ROWS;
    const double c = st->c;
    int bad = 0;
    nt = nt > nc ? (int)nc : nt;
    nt = gram__team_size(nt);
#pragma omp parallel num_threads(nt) reduction(| : bad)
    {
        double *yc = mem + per * (size_t)omp_get_thread_num(), *p = yc + RFF_ROWS * D, *phi = p + RFF_ROWS * RFF_FB,
               *t = phi + 2 * RFF_ROWS * RFF_FB;
#pragma omp for schedule(dynamic, 1)
        for (int64_t ch = 0; ch < nc; ch++) {
            const int64_t a0 = ch * RFF_ROWS, n = n_act - a0 < RFF_ROWS ? n_act - a0 : RFF_ROWS;
            gather(st->Y, active, a0, n, st->mu, yc);
            for (int64_t b = 0; b < nb; b++) {
                const int64_t fb = fn - b * RFF_FB < RFF_FB ? fn - b * RFF_FB : RFF_FB;
                const double *Sb = S + b * 2 * RFF_FB * V;
                bad |= trig_rows(yc, n, D, om + b * RFF_FB * D, fb, p, phi);
                for (int64_t i = 0; i < n; i++) {
                    const int64_t q = active[a0 + i];
                    const double *cs = phi + 2 * i * fb, *sn = cs + fb;
                    for (int64_t v = 0; v < V; v++) {
                        double m = 0.0;
                        for (int64_t r = 0; r < fb; r++) {
                            t[r] = c * (cs[r] * Sb[r * V + v] + sn[r] * Sb[(fb + r) * V + v]);
                            m += t[r];
                        }
                        if (first && b == 0) shift[q * V + v] = m / (double)fb;
                        const double sh = shift[q * V + v];
                        double a1 = 0.0, a2 = 0.0;
                        for (int64_t r = 0; r < fb; r++) {
                            const double d = t[r] - sh;
                            a1 += d;
                            a2 += d * d;
                        }
                        s1[q * V + v] += a1;
                        s2[q * V + v] += a2;
                    }
                }
            }
        }
    }
    return bad;
}

/* Rows idx[0..n) of Y summed exactly into out (err 0). */
static gram_status exact_rows(gram_context *ctx, const gram_kernel *k, const gram_array *Y, const gram_array *X,
                              const gram_array *W, const int64_t *idx, int64_t n, gram_array *out, gram_array *err)
{
    if (n == 0) return GRAM_OK;
    const int64_t D = X->cols, V = out->cols;
    const int f32 = Y->dtype == GRAM_FLOAT32;
    void *ys = gram__alloc((size_t)(n * D) * (f32 ? sizeof(float) : sizeof(double)));
    double *o = gram__alloc((size_t)(n * V) * sizeof(double));
    gram_status s = GRAM_OK;
    if (!ys || !o) {
        s = gram__fail(ctx, GRAM_ENOMEM, "approx: features: out of memory for the %lld queries summed exactly",
                       (long long)n);
        goto done;
    }
    for (int64_t i = 0; i < n; i++)
        for (int64_t d = 0; d < D; d++) {
            const double v = gram__get(Y, idx[i], d);
            if (f32) ((float *)ys)[i * D + d] = (float)v;
            else ((double *)ys)[i * D + d] = v;
        }
    gram_array Ys = f32 ? gram_array_f32(ys, n, D) : gram_array_f64(ys, n, D), O = gram_array_f64(o, n, V);
    if ((s = gram_kernel_sum(ctx, k, &Ys, X, W, &O))) goto done;
    for (int64_t i = 0; i < n; i++)
        for (int64_t v = 0; v < V; v++) {
            gram__put(out, idx[i], v, o[i * V + v]);
            if (err) gram__put(err, idx[i], v, 0.0);
        }
done:
    gram__free(ys);
    gram__free(o);
    return s;
}

gram_status gram__approx_features(gram_context *ctx, const gram_kernel *k, const gram_array *Y, const gram_array *X,
                                  const gram_array *W, const gram_approx_options *opt, gram_array *out,
                                  gram_array *err, gram_approx_info *info)
{
    const char *why = NULL;
    if (!gram__approx_features_supports(k, X->cols, &why))
        return gram__fail(ctx, GRAM_EINVAL, "approx: method features cannot meet a tolerance for this kernel: %s", why);
    if (opt->components % 2)
        return gram__fail(ctx, GRAM_EINVAL, "approx: method features makes its features in pairs (a cosine and a sine "
                          "per frequency): components must be even, got %lld", (long long)opt->components);
    const int64_t N = X->rows, M = Y->rows, D = X->cols, V = out->cols;
    if (info) info->method = GRAM_APPROX_FEATURES, info->delta = 0.0, info->kernel_evaluations = 0;
    if (M == 0 || V == 0) return GRAM_OK;
    if (N == 0) {
        gram__approx_zero(out, err);
        return GRAM_OK;
    }
    if (opt->components > 0 && (opt->components / 2 > RFF_MAX_FD / D))
        return gram__fail(ctx, GRAM_EINVAL, "approx: method features: %lld components in dimension %lld exceed the "
                          "largest table of frequencies it makes (%lld values)", (long long)opt->components,
                          (long long)D, (long long)RFF_MAX_FD);

    gram_status s = GRAM_OK;
    gram_features *f = NULL;
    int64_t *active = NULL, n_act = M, evaluations = 0;
    double *mu = NULL, *bw = NULL, *shift = NULL, *s1 = NULL, *s2 = NULL, *S = NULL, *mem = NULL;
    int any_bound = 0, nonfinite = 0;
    const int nt = gram__threads(ctx);
    /* per thread: centred rows, projections, cos/sin, then weights (X) or terms (Y) */
    const int64_t tail = RFF_ROWS * V > RFF_FB ? RFF_ROWS * V : RFF_FB;
    const size_t per = (size_t)(RFF_ROWS * D + RFF_ROWS * RFF_FB + 2 * RFF_ROWS * RFF_FB + tail);
    active = gram__alloc((size_t)M * sizeof(int64_t));
    mu = gram__alloc((size_t)D * sizeof(double));
    bw = gram__alloc((size_t)V * sizeof(double));
    shift = gram__calloc((size_t)(M * V), sizeof(double));
    s1 = gram__calloc((size_t)(M * V), sizeof(double));
    s2 = gram__calloc((size_t)(M * V), sizeof(double));
    mem = gram__alloc(per * (size_t)nt * sizeof(double));
    if (!active || !mu || !bw || !shift || !s1 || !s2 || !mem) {
        s = gram__fail(ctx, GRAM_ENOMEM, "approx: features: out of memory for the per-query sums");
        goto done;
    }
    for (int64_t i = 0; i < M; i++) active[i] = i;
    /* B_v = c·Σ|w_v| bounds |T_r| (c from a map of one frequency) */
    if ((s = gram_features_create(ctx, k, D, GRAM_FEATURES_RFF, 2, opt->seed, &f))) goto done;
    for (int64_t v = 0; v < V; v++) {
        double a = 0.0;
        for (int64_t j = 0; j < N; j++) a += W ? fabs(gram__get(W, j, v)) : 1.0;
        bw[v] = f->c * a * (1.0 + 1e-12);
    }
    int64_t sched[32];
    const int L = schedule(opt->components, N, M, D, least_frequencies(bw, V, opt), sched);
    const double rho = centre(Y, X, mu), u = DBL_EPSILON / 2;
    double esum = 0.0, emax = 0.0;
    const double ln4 = log(4.0 * (double)L * (double)V / opt->delta);
    const int saved = gram__blas_serial_begin(0);
    int64_t prev = 0;
    for (int round = 0; round < L && n_act > 0; round++) {
        const int64_t F = sched[round], fn = F - prev;
        gram_features_destroy(f), f = NULL;
        gram__free(S), S = NULL;
        if ((s = gram_features_create(ctx, k, D, GRAM_FEATURES_RFF, 2 * F, opt->seed, &f))) {
            /* a frequency that overflows (a tiny lengthscale): the exact sum below needs none */
            if (s != GRAM_EDOMAIN) break;
            s = GRAM_OK;
            nonfinite = 1;
            break;
        }
        const double *om = f->omega + prev * D;
        for (int64_t r = 0; r < fn; r++) {
            double l1 = 0.0;
            for (int64_t d = 0; d < D; d++) l1 += fabs(om[r * D + d]);
            const double e = fmin(3.0, 1.01 * 4.0 * (double)(D + 1) * u * l1 * rho + (2.0 * (double)N + 64.0) * u);
            esum += e;
            emax = e > emax ? e : emax;
        }
        const int64_t nb = (fn + RFF_FB - 1) / RFF_FB;
        S = gram__alloc((size_t)(nb * 2 * RFF_FB * V) * sizeof(double));
        if (!S) {
            s = gram__fail(ctx, GRAM_ENOMEM, "approx: features: out of memory for the sums of %lld frequencies",
                           (long long)fn);
            break;
        }
        const state st = {Y, X, W, N, D, V, mu, f->c};
        if (x_pass(&st, om, fn, S, nt, mem, per) ||
            y_pass(&st, om, fn, S, active, n_act, round == 0, shift, s1, s2, nt, mem, per)) {
            nonfinite = 1;
            break;
        }
        int64_t kept = 0;
        for (int64_t a = 0; a < n_act; a++) {
            const int64_t i = active[a];
            int meets = 1;
            for (int64_t v = 0; v < V && meets; v++) {
                const double est = shift[i * V + v] + s1[i * V + v] / (double)F;
                const double bd = radius(s1[i * V + v], s2[i * V + v], F, ln4, 2.0 * bw[v], esum / (double)F * bw[v],
                                         emax * bw[v]);
                if (!(bd <= opt->atol + opt->rtol * (fabs(est) - bd))) meets = 0;
            }
            if (!meets) {
                active[kept++] = i;
                continue;
            }
            for (int64_t v = 0; v < V; v++) {
                gram__put(out, i, v, shift[i * V + v] + s1[i * V + v] / (double)F);
                if (err)
                    gram__put(err, i, v, radius(s1[i * V + v], s2[i * V + v], F, ln4, 2.0 * bw[v],
                                                esum / (double)F * bw[v], emax * bw[v]));
            }
            any_bound = 1;
        }
        n_act = kept;
        prev = F;
    }
    gram__blas_serial_end(saved);
    if (s) goto done;
    if (nonfinite) { /* every query exactly: no feature result is kept */
        n_act = M;
        any_bound = 0;
        for (int64_t i = 0; i < M; i++) active[i] = i;
    }
    if ((s = exact_rows(ctx, k, Y, X, W, active, n_act, out, err))) goto done;
    evaluations = n_act * N;
    if (info) info->delta = any_bound ? opt->delta : 0.0, info->kernel_evaluations = evaluations;
done:
    gram_features_destroy(f);
    gram__free(active);
    gram__free(mu);
    gram__free(bw);
    gram__free(shift);
    gram__free(s1);
    gram__free(s2);
    gram__free(S);
    gram__free(mem);
    return s;
}

/* AUTO's cost: a pilot of RFF_PILOT_F frequencies, RFF_PILOT_Q queries and RFF_PILOT_X points of X
 * (evenly spaced rows, unit weights as a KDE has) estimates each query's mean and spread of T_r
 * relative to B, from which the schedule's round where its bound would meet the tolerance follows. */
#define RFF_PILOT_F 64
#define RFF_PILOT_Q 64
#define RFF_PILOT_X 1024

double gram__approx_features_cost(const gram_kernel *k, const gram_array *Y, const gram_array *X,
                                  const gram_approx_options *opt)
{
    if (!gram__approx_features_supports(k, X->cols, NULL)) return INFINITY;
    const int64_t N = X->rows, M = Y->rows, D = X->cols;
    if (M == 0 || N == 0) return 0.0;
    gram_features *f = NULL;
    if (gram_features_create(NULL, k, D, GRAM_FEATURES_RFF, 2 * RFF_PILOT_F, opt->seed, &f)) return INFINITY;
    const double Bx = (double)N * f->c;
    int64_t sched[32];
    const int L = schedule(opt->components, N, M, D, least_frequencies(&Bx, 1, opt), sched);
    if (L == 0) {
        gram_features_destroy(f);
        return INFINITY;
    }
    const int64_t nx = N < RFF_PILOT_X ? N : RFF_PILOT_X, nq = M < RFF_PILOT_Q ? M : RFF_PILOT_Q;
    double *mu = gram__alloc((size_t)D * sizeof(double)), *xc = gram__alloc((size_t)(nx * D) * sizeof(double)),
           *yc = gram__alloc((size_t)(nq * D) * sizeof(double)),
           *p = gram__alloc((size_t)((nx > nq ? nx : nq) * RFF_PILOT_F) * sizeof(double)),
           *px = gram__alloc((size_t)(nx * 2 * RFF_PILOT_F) * sizeof(double)),
           *py = gram__alloc((size_t)(nq * 2 * RFF_PILOT_F) * sizeof(double));
    double cost = INFINITY;
    if (!mu || !xc || !yc || !p || !px || !py) goto done;
    centre(Y, X, mu);
    for (int64_t i = 0; i < nx; i++)
        for (int64_t d = 0; d < D; d++) xc[i * D + d] = gram__get(X, i * N / nx, d) - mu[d];
    for (int64_t i = 0; i < nq; i++)
        for (int64_t d = 0; d < D; d++) yc[i * D + d] = gram__get(Y, i * M / nq, d) - mu[d];
    if (trig_rows(xc, nx, D, f->omega, RFF_PILOT_F, p, px) || trig_rows(yc, nq, D, f->omega, RFF_PILOT_F, p, py))
        goto done;
    const double ln4 = log(4.0 * (double)L / opt->delta);
    double sc[RFF_PILOT_F], ss[RFF_PILOT_F];
    for (int64_t r = 0; r < RFF_PILOT_F; r++) {
        sc[r] = ss[r] = 0.0;
        for (int64_t j = 0; j < nx; j++) sc[r] += px[j * 2 * RFF_PILOT_F + r], ss[r] += px[j * 2 * RFF_PILOT_F + RFF_PILOT_F + r];
    }
    /* per pilot query: the round it would stop in (L: never, summed exactly) */
    int64_t last = 0, fallback = 0;
    double y_terms = 0.0;
    for (int64_t i = 0; i < nq; i++) {
        double m1 = 0.0, m2 = 0.0;
        for (int64_t r = 0; r < RFF_PILOT_F; r++) {
            const double t = (py[i * 2 * RFF_PILOT_F + r] * sc[r] + py[i * 2 * RFF_PILOT_F + RFF_PILOT_F + r] * ss[r]) /
                             (double)nx; /* T_r / B */
            m1 += t;
            m2 += t * t;
        }
        m1 /= RFF_PILOT_F;
        const double sd = sqrt(fmax(0.0, m2 / RFF_PILOT_F - m1 * m1) * RFF_PILOT_F / (RFF_PILOT_F - 1.0));
        int stop = L;
        for (int r = 0; r < L && stop == L; r++) {
            const double n = (double)sched[r];
            const double bd = sd * sqrt(2.0 * ln4 / n) + 14.0 * ln4 / (3.0 * (n - 1.0));
            if (bd <= opt->atol / Bx + opt->rtol * (fabs(m1) - bd)) stop = r;
        }
        if (stop == L) fallback++, y_terms += (double)sched[L - 1];
        else y_terms += (double)sched[stop];
        const int64_t reach = stop == L ? sched[L - 1] : sched[stop];
        last = reach > last ? reach : last;
    }
    const double a = feature_units(D);
    cost = a * ((double)N * (double)last + y_terms * (double)M / (double)nq) +
           (double)fallback / (double)nq * (double)M * (double)N;
done:
    gram_features_destroy(f);
    gram__free(mu);
    gram__free(xc);
    gram__free(yc);
    gram__free(p);
    gram__free(px);
    gram__free(py);
    return cost;
}
