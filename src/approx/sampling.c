/* sampling: the kernel sum estimated from a uniform sample of X drawn without replacement, with a
 * per-query confidence bound (docs/approx.md, "Sampling").
 *
 * For query i and weight column v the sum is N·μ, μ the mean of the population of N terms
 * t_j = k(y_i, x_j)·W[j,v]. The first n indices of a uniformly random permutation of 0..N-1 are a
 * uniform sample of n without replacement; the estimate is N·μ̂_n. The bound is the empirical
 * Bernstein–Serfling inequality of Bardenet & Maillard ("Concentration inequalities for sampling
 * without replacement", Bernoulli 21(3), 2015, Theorem 3 of the journal version; Theorem 4.3 of
 * arXiv:1309.4029v2): for a population in [a, b] and n < N, with probability ≥ 1 - 5δ',
 *     μ̂_n - μ ≤ σ̂_n √(2 ρ_n ln(1/δ') / n) + κ (b - a) ln(1/δ') / n,
 * σ̂_n² = (1/n) Σ (t - μ̂_n)² (the biased sample variance), κ = 7/3 + 3/√2, f_n = n/N,
 * ρ_n = 1 - f_{n-1} for n ≤ N/2 and (1 - f_n)(1 + 1/n) above. The same holds for -t, so both
 * sides together fail with probability ≤ 10δ': δ' = δ_r/10, ln(1/δ') = ln(10/δ_r).
 *
 * The sample size doubles from SAMPLING_START until every query meets its tolerance or n = N (the
 * exact sum, bound 0). The schedule n_r = min(N, START·2^r) is fixed before any sample is drawn,
 * so the R rounds with n_r < N are known in advance; each gets δ_r = δ/(R·V) for each of a query's
 * V columns, and by the union bound every bound a query is given, in whichever round it stops,
 * holds together with probability ≥ 1 - δ per query (the stopping rule may look at the data: the
 * event "all R·V bounds hold" does not depend on it).
 *
 * A query stops when, for each column, bound ≤ atol + rtol·(|est| - bound). That suffices: where
 * |est - exact| ≤ bound, |exact| ≥ |est| - bound, so atol + rtol·|exact| ≥ atol + rtol·(|est| -
 * bound) ≥ bound ≥ |est - exact|.
 *
 * The population's range [a, b] comes from an interval of the kernel's values (interval arithmetic
 * over its program, from each family's range: [0, 1] for the radial families, [-1, 1] for cosine
 * and sigmoid, c for constant) times the range of W's column over all N rows, so signed weights and
 * kernels of both signs are supported. Families without a finite range (linear, polynomial,
 * softmax, arccos, neg_l1, neg_l2) are refused, and so is white noise (it lives on the diagonal of
 * a symmetric call, which a sample of X is not).
 *
 * Σ t and Σ t² over the sample come from the engine: gram_kernel_sum with k and W's sampled rows,
 * and with k·k and their squares. Each round sums only the rows it adds, over the queries still
 * running; partial sums are added in round order, so results depend only on the seed, never on
 * the thread count.
 */
#include "approx.h"

#include "../base/rng.h"
#include "../engine/engine.h"
#include "../kernel/kernel.h"

#include <math.h>
#include <string.h>

#define SAMPLING_START 256
/* κ of Bardenet & Maillard's empirical Bernstein–Serfling bound: 7/3 + 3/√2. */
#define SAMPLING_KAPPA (7.0 / 3.0 + 2.1213203435596424)

/* The values a family can take, when they are bounded. */
static int leaf_range(const gram__leaf *L, double *lo, double *hi)
{
    switch (L->family) {
    case GRAM_GAUSSIAN: case GRAM_LAPLACIAN: case GRAM_MATERN12: case GRAM_MATERN32: case GRAM_MATERN52:
    case GRAM_MATERN: case GRAM_RATIONAL_QUADRATIC: case GRAM_CAUCHY: case GRAM_PERIODIC: case GRAM_TOPHAT:
    case GRAM_EPANECHNIKOV: case GRAM_EXPONENTIAL: case GRAM_TRIANGULAR: case GRAM_COSINE_WINDOW:
    case GRAM_LAPLACIAN_L1:
        *lo = 0.0;
        *hi = 1.0;
        return 1;
    case GRAM_COSINE: case GRAM_SIGMOID:
        *lo = -1.0;
        *hi = 1.0;
        return 1;
    case GRAM_CONSTANT:
        *lo = *hi = L->value;
        return 1;
    default:
        return 0;
    }
}

static void ival_mul(double a, double b, double c, double d, double *lo, double *hi)
{
    const double p[4] = {a * c, a * d, b * c, b * d};
    *lo = *hi = p[0];
    for (int i = 1; i < 4; i++) {
        if (p[i] < *lo) *lo = p[i];
        if (p[i] > *hi) *hi = p[i];
    }
}

int gram__approx_sampling_supports(const gram_kernel *k, const char **why)
{
    if (k->has_white) {
        if (why) *why = "white noise adds only on the diagonal of a symmetric call, which a sample of X is not";
        return 0;
    }
    for (int l = 0; l < k->n_leaves; l++) {
        double a, b;
        if (!leaf_range(&k->leaves[l], &a, &b)) {
            if (why)
                *why = "its confidence bounds need the range of the kernel's values, and linear, polynomial, softmax, "
                       "arccos, neg_l1 and neg_l2 have none";
            return 0;
        }
    }
    if (why) *why = NULL;
    return 1;
}

/* An interval holding every value of k, by interval arithmetic over its postfix program; GRAM_EINVAL
 * naming the family when one has no finite range. */
static gram_status kernel_range(gram_context *ctx, const gram_kernel *k, double *lo, double *hi)
{
    if (k->has_white)
        return gram__fail(ctx, GRAM_EINVAL,
                          "approx: the sampling method does not support white noise (it adds only on the diagonal "
                          "of a symmetric call, which a sample of X is not); use method exact or drop the white term");
    double *st = gram__alloc((size_t)(2 * (k->stack_depth > 0 ? k->stack_depth : 1)) * sizeof(double));
    if (!st) return gram__fail(ctx, GRAM_ENOMEM, "approx: out of memory");
    int top = 0;
    for (int o = 0; o < k->n_ops; o++) {
        const gram__op *op = &k->ops[o];
        double a, b;
        switch (op->kind) {
        case GRAM_OP_LEAF:
            if (!leaf_range(&k->leaves[op->leaf], &a, &b)) {
                const char *name = gram__family_name(k->leaves[op->leaf].family);
                gram__free(st);
                return gram__fail(ctx, GRAM_EINVAL,
                                  "approx: the sampling method needs a bounded kernel and %s has no finite range; "
                                  "use method exact",
                                  name);
            }
            st[2 * top] = a;
            st[2 * top + 1] = b;
            top++;
            break;
        case GRAM_OP_ADD:
            top--;
            st[2 * (top - 1)] += st[2 * top];
            st[2 * (top - 1) + 1] += st[2 * top + 1];
            break;
        case GRAM_OP_MUL:
            top--;
            ival_mul(st[2 * (top - 1)], st[2 * (top - 1) + 1], st[2 * top], st[2 * top + 1], &a, &b);
            st[2 * (top - 1)] = a;
            st[2 * (top - 1) + 1] = b;
            break;
        case GRAM_OP_SCALE:
            ival_mul(st[2 * (top - 1)], st[2 * (top - 1) + 1], op->c, op->c, &a, &b);
            st[2 * (top - 1)] = a;
            st[2 * (top - 1) + 1] = b;
            break;
        case GRAM_OP_POW: {
            /* A non-integer power has a non-negative base (gram_kernel_pow refuses the rest); an
             * integer one of a signed base is monotone when odd, and even powers peak at the end
             * farther from 0. */
            const double p = op->c;
            a = st[2 * (top - 1)];
            b = st[2 * (top - 1) + 1];
            if (a >= 0.0) {
                st[2 * (top - 1)] = pow(a, p);
                st[2 * (top - 1) + 1] = pow(b, p);
            } else if (fmod(p, 2.0) != 0.0) {
                st[2 * (top - 1)] = -pow(-a, p);
                st[2 * (top - 1) + 1] = b >= 0.0 ? pow(b, p) : -pow(-b, p);
            } else {
                const double m = fmax(-a, fabs(b));
                st[2 * (top - 1)] = b >= 0.0 ? 0.0 : pow(-b, p);
                st[2 * (top - 1) + 1] = pow(m, p);
            }
            break;
        }
        }
    }
    *lo = st[0];
    *hi = st[1];
    gram__free(st);
    /* Room for the rounding of computed values (float32 inputs give kernel values a few float32 ulps
     * off, so a value of 1 may come out a little above 1). */
    const double m = fmax(fabs(*lo), fabs(*hi));
    if (*lo != 0.0 || *hi <= 0.0) *lo -= 1e-6 * m;
    *hi += 1e-6 * m;
    return GRAM_OK;
}

/* Uniform in [0, m), m ≥ 1: draws below 2^64 mod m are redrawn, so every residue is equally likely. */
static uint64_t uniform_below(gram__rng *r, uint64_t m)
{
    const uint64_t reject = (0 - m) % m;
    uint64_t x;
    do x = gram__rng_u64(r);
    while (x < reject);
    return x % m;
}

/* Rows idx[0..n) of A, contiguous, in A's dtype. */
static void gather_rows(const gram_array *A, const int64_t *idx, int64_t n, void *dst)
{
    const int64_t D = A->cols;
    if (A->dtype == GRAM_FLOAT64) {
        double *d = dst;
        const double *s = A->data;
        for (int64_t r = 0; r < n; r++)
            for (int64_t c = 0; c < D; c++) d[r * D + c] = s[idx[r] * A->row_stride + c * A->col_stride];
    } else {
        float *d = dst;
        const float *s = A->data;
        for (int64_t r = 0; r < n; r++)
            for (int64_t c = 0; c < D; c++) d[r * D + c] = s[idx[r] * A->row_stride + c * A->col_stride];
    }
}

/* The bound on |N·μ̂_n - N·μ| from the sample's Σt (s1) and Σt² (s2), n < N: Bardenet & Maillard's
 * radius at ln(1/δ') = log_term, times N, and never more than N·(b - a), since the estimate and the
 * sum both lie in [N·a, N·b]. */
static double sum_bound(double s1, double s2, int64_t n, int64_t N, double rho, double log_term, double width,
                        double var_slack)
{
    const double nd = (double)n, Nd = (double)N;
    const double mu = s1 / nd, m2 = s2 / nd;
    const double var = fmax(0.0, m2 - mu * mu) + var_slack * m2;
    const double bound = Nd * (sqrt(var) * sqrt(2.0 * rho * log_term / nd) + SAMPLING_KAPPA * width * log_term / nd);
    return bound < Nd * width ? bound : Nd * width;
}

gram_status gram__approx_sampling_oom(gram_context *ctx, const char *what)
{
    return gram__fail(ctx, GRAM_ENOMEM, "approx: sampling: out of memory for %s", what);
}

void *gram__approx_buffer(int64_t count, size_t elem)
{
    size_t bytes;
    if (!gram__bytes(count, elem, &bytes)) return NULL;
    return gram__alloc(bytes ? bytes : 1);
}

gram_status gram__approx_kernel_square(gram_context *ctx, const gram_kernel *k, gram_kernel **out)
{
    *out = NULL;
    /* exp(-r²/2)² = exp(-(√2 r)²/2) and exp(-r)² = exp(-2r): one leaf of the same family costs one
     * exponential a pair where k·k costs two and the general power more (measured: gaussian 1.0,
     * gaussian·gaussian 2.9, gaussian^2 8.7 times one gaussian sum). */
    const int scaled = k->n_ops == 2 && k->ops[1].kind == GRAM_OP_SCALE;
    if (k->n_leaves == 1 && (k->n_ops == 1 || scaled)) {
        const gram__leaf *L = &k->leaves[0];
        double f = 0.0;
        switch (L->family) {
        case GRAM_GAUSSIAN: f = 0.70710678118654752; break;
        case GRAM_LAPLACIAN: case GRAM_MATERN12: case GRAM_EXPONENTIAL: case GRAM_LAPLACIAN_L1: f = 0.5; break;
        default: break;
        }
        if (f > 0.0) {
            double *ls = gram__approx_buffer(L->n_scale, sizeof(double));
            if (!ls) return gram__approx_sampling_oom(ctx, "the squared kernel");
            for (int64_t d = 0; d < L->n_scale; d++) ls[d] = L->lengthscale[d] * f;
            gram_kernel *sq = NULL;
            gram_status s = gram_kernel_create(ctx, L->family, L->n_scale, ls, 0, NULL, &sq);
            gram__free(ls);
            if (s || !scaled) {
                *out = sq;
                return s;
            }
            const double c = k->ops[1].c;
            s = gram_kernel_scale(ctx, c * c, sq, out);
            gram_kernel_destroy(sq);
            return s;
        }
    }
    return gram_kernel_mul(ctx, k, k, out);
}

static gram_status check_args(gram_context *ctx, const gram_kernel *k, const gram_array *Y, const gram_array *X,
                              const gram_array *W, const gram_approx_options *opt, const gram_array *out,
                              const gram_array *err)
{
    if (!k || !Y || !X || !opt || !out) return gram__fail(ctx, GRAM_EINVAL, "approx: k, Y, X, opt and out must not be NULL");
    gram_status s;
    if ((s = gram__check_array(ctx, Y, "Y")) || (s = gram__check_array(ctx, X, "X")) ||
        (W && (s = gram__check_array(ctx, W, "W"))) || (s = gram__check_array(ctx, out, "out")) ||
        (err && (s = gram__check_array(ctx, err, "err"))))
        return s;
    if (X->dtype != Y->dtype) return gram__fail(ctx, GRAM_EINVAL, "approx: X and Y must have the same dtype");
    if (X->cols != Y->cols)
        return gram__fail(ctx, GRAM_ESHAPE, "approx: X has %lld columns and Y %lld", (long long)X->cols,
                          (long long)Y->cols);
    const int64_t V = W ? W->cols : 1;
    if (W && W->rows != X->rows)
        return gram__fail(ctx, GRAM_ESHAPE, "approx: W has %lld rows, X %lld", (long long)W->rows, (long long)X->rows);
    if (out->rows != Y->rows || out->cols != V)
        return gram__fail(ctx, GRAM_ESHAPE, "approx: out must be %lld x %lld, got %lld x %lld", (long long)Y->rows,
                          (long long)V, (long long)out->rows, (long long)out->cols);
    if (err && (err->rows != Y->rows || err->cols != V || err->dtype != GRAM_FLOAT64))
        return gram__fail(ctx, GRAM_ESHAPE, "approx: err must be float64 %lld x %lld", (long long)Y->rows, (long long)V);
    if (!(opt->delta > 0.0 && opt->delta < 1.0))
        return gram__fail(ctx, GRAM_EINVAL, "approx: delta must be in (0, 1), got %g", opt->delta);
    if (!(opt->rtol >= 0.0) || !(opt->atol >= 0.0))
        return gram__fail(ctx, GRAM_EINVAL, "approx: rtol and atol must be >= 0, got %g and %g", opt->rtol, opt->atol);
    if ((s = gram__check_finite(ctx, Y, "Y")) || (s = gram__check_finite(ctx, X, "X")) ||
        (W && (s = gram__check_finite(ctx, W, "W"))))
        return s;
    return GRAM_OK;
}

/* Plain sampling: one uniform sample of X shared by all queries. */
static gram_status plain(gram_context *ctx, const gram_kernel *k, const gram_array *Y, const gram_array *X,
                         const gram_array *W, const gram_approx_options *opt, gram_array *out, gram_array *err,
                         double klo, double khi, int64_t *evals, int *sampled)
{
    gram_status s;
    const int64_t N = X->rows, M = Y->rows, D = X->cols, V = W ? W->cols : 1;
    const size_t esz = X->dtype == GRAM_FLOAT64 ? sizeof(double) : sizeof(float);

    /* The schedule, and each partial round's share of delta. */
    int rounds = 0;
    for (int64_t n = N < SAMPLING_START ? N : SAMPLING_START; n < N; n = n > N / 2 ? N : 2 * n) rounds++;
    const double log_term = rounds ? log(10.0 * (double)rounds * (double)V / opt->delta) : 0.0;

    gram_kernel *k2 = NULL;
    int64_t *perm = NULL, *active = NULL;
    double *width = NULL, *s1 = NULL, *s2 = NULL, *w1 = NULL, *w2 = NULL, *o1 = NULL, *o2 = NULL;
    void *xs = NULL, *ys = NULL;
    if ((s = gram__approx_kernel_square(ctx, k, &k2))) goto done;
    perm = gram__approx_buffer(N, sizeof(int64_t));
    active = gram__approx_buffer(M, sizeof(int64_t));
    width = gram__approx_buffer(V, sizeof(double));
    s1 = gram__approx_buffer(M * V, sizeof(double));
    s2 = gram__approx_buffer(M * V, sizeof(double));
    if (!perm || !active || !width || !s1 || !s2) {
        s = gram__approx_sampling_oom(ctx, "the sample's index and sums");
        goto done;
    }
    for (int64_t j = 0; j < N; j++) perm[j] = j;
    for (int64_t i = 0; i < M; i++) active[i] = i;
    memset(s1, 0, (size_t)(M * V) * sizeof(double));
    memset(s2, 0, (size_t)(M * V) * sizeof(double));
    /* Each column's term range (b - a); the terms of column v lie in [lo_v, hi_v]. */
    for (int64_t v = 0; v < V; v++) {
        double wl = 1.0, wh = 1.0;
        if (W) {
            wl = wh = gram__get(W, 0, v);
            for (int64_t j = 1; j < N; j++) {
                const double w = gram__get(W, j, v);
                if (w < wl) wl = w;
                if (w > wh) wh = w;
            }
        }
        double lo, hi;
        ival_mul(klo, khi, wl, wh, &lo, &hi);
        width[v] = hi - lo;
    }

    gram__rng rng;
    gram__rng_init(&rng, opt->seed, 0);
    /* Cancellation in Σt²/n - μ̂² and the engine's rounding of both sums (1e-12 relative in float64;
     * float32 kernel values carry ~1e-6): the variance is raised by this share of Σt²/n so that
     * rounding never makes the bound smaller than the exact arithmetic's. */
    const double var_slack = X->dtype == GRAM_FLOAT64 ? 1e-11 : 1e-5;
    int64_t n_act = M, prev = 0, evaluations = 0, ys_rows = -1;
    int any_sampled = 0;
    for (int64_t n = N < SAMPLING_START ? N : SAMPLING_START;; n = n > N / 2 ? N : 2 * n) {
        /* Positions prev..n-1 of a Fisher–Yates shuffle: the permutation's first n entries. */
        for (int64_t p = prev; p < n; p++) {
            const int64_t j = p + (int64_t)uniform_below(&rng, (uint64_t)(N - p));
            const int64_t t = perm[p];
            perm[p] = perm[j];
            perm[j] = t;
        }
        const int64_t add = n - prev;
        xs = gram__approx_buffer(add * D, esz);
        o1 = gram__approx_buffer(n_act * V, sizeof(double));
        o2 = gram__approx_buffer(n_act * V, sizeof(double));
        if (W) {
            w1 = gram__approx_buffer(add * V, sizeof(double));
            w2 = gram__approx_buffer(add * V, sizeof(double));
        }
        if (ys_rows != n_act) {
            gram__free(ys);
            ys = gram__approx_buffer(n_act * D, esz);
            if (ys) gather_rows(Y, active, n_act, ys);
            ys_rows = n_act;
        }
        if (!xs || !o1 || !o2 || !ys || (W && (!w1 || !w2))) {
            s = gram__approx_sampling_oom(ctx, "a round's sample");
            goto done;
        }
        gather_rows(X, perm + prev, add, xs);
        if (W)
            for (int64_t r = 0; r < add; r++)
                for (int64_t v = 0; v < V; v++) {
                    const double w = gram__get(W, perm[prev + r], v);
                    w1[r * V + v] = w;
                    w2[r * V + v] = w * w;
                }
        gram_array Xs = {xs, X->dtype, add, D, D, 1}, Ys = {ys, X->dtype, n_act, D, D, 1};
        gram_array W1 = gram_array_f64(w1, add, V), W2 = gram_array_f64(w2, add, V);
        gram_array O1 = gram_array_f64(o1, n_act, V), O2 = gram_array_f64(o2, n_act, V);
        if ((s = gram_kernel_sum(ctx, k, &Ys, &Xs, W ? &W1 : NULL, &O1))) goto done;
        if ((s = gram_kernel_sum(ctx, k2, &Ys, &Xs, W ? &W2 : NULL, &O2))) goto done;
        evaluations += n_act * add;
        gram__free(xs), xs = NULL;
        gram__free(w1), w1 = NULL;
        gram__free(w2), w2 = NULL;

        const double nd = (double)n, Nd = (double)N;
        const double rho = n <= N / 2 ? 1.0 - (nd - 1.0) / Nd : (1.0 - nd / Nd) * (1.0 + 1.0 / nd);
        int64_t kept = 0;
        for (int64_t a = 0; a < n_act; a++) {
            const int64_t i = active[a];
            double *r1 = s1 + i * V, *r2 = s2 + i * V;
            int meets = 1;
            for (int64_t v = 0; v < V; v++) {
                r1[v] += o1[a * V + v];
                r2[v] += o2[a * V + v];
            }
            if (n < N)
                for (int64_t v = 0; v < V && meets; v++) {
                    const double bound = sum_bound(r1[v], r2[v], n, N, rho, log_term, width[v], var_slack);
                    const double est = Nd * (r1[v] / nd);
                    if (!(bound <= opt->atol + opt->rtol * (fabs(est) - bound))) meets = 0;
                }
            if (!meets) {
                active[kept++] = i;
                continue;
            }
            for (int64_t v = 0; v < V; v++) {
                double bound = 0.0;
                if (n < N) {
                    bound = sum_bound(r1[v], r2[v], n, N, rho, log_term, width[v], var_slack);
                    any_sampled = 1;
                }
                gram__put(out, i, v, n < N ? Nd * (r1[v] / nd) : r1[v]);
                if (err) gram__put(err, i, v, bound);
            }
        }
        gram__free(o1), o1 = NULL;
        gram__free(o2), o2 = NULL;
        n_act = kept;
        if (n_act == 0 || n == N) break;
        prev = n;
    }
    *evals += evaluations;
    *sampled |= any_sampled;
    s = GRAM_OK;
done:
    gram_kernel_destroy(k2);
    gram__free(perm);
    gram__free(active);
    gram__free(width);
    gram__free(s1);
    gram__free(s2);
    gram__free(w1);
    gram__free(w2);
    gram__free(o1);
    gram__free(o2);
    gram__free(xs);
    gram__free(ys);
    return s;
}

/* The next `need` rows of X outside group g's near set in the order of the shared permutation
 * (drawn lazily, position by position, from stream 0): the permutation restricted to the rest is a
 * uniform permutation of it, so its first n rows are a uniform sample of n without replacement. */
typedef struct shuffle {
    int64_t *perm, drawn, N;
    gram__rng rng;
} shuffle;

static int64_t take_rows(shuffle *sh, int64_t *cursor, int64_t need, const gram__near *ix,
                         const unsigned char *near, int64_t *dst)
{
    int64_t got = 0;
    while (got < need && *cursor < sh->N) {
        if (*cursor == sh->drawn) {
            const int64_t p = sh->drawn++;
            const int64_t j = p + (int64_t)uniform_below(&sh->rng, (uint64_t)(sh->N - p));
            const int64_t t = sh->perm[p];
            sh->perm[p] = sh->perm[j];
            sh->perm[j] = t;
        }
        const int64_t r = sh->perm[(*cursor)++];
        if (!near[ix->cluster[r]]) dst[got++] = r;
    }
    return got;
}

/* DEANN's split (near.c builds the index): per group of queries, its near set summed exactly by
 * one engine call and the rest of X sampled uniformly without replacement, with the plain method's
 * doubling schedule and bound on a population of N_g = N − (near rows) terms whose range comes from
 * kmax, the index's bound on the kernel outside the near set. Before any sample, a query whose
 * remainder is already pinned by that bound (its interval [ka·wp − kb·wn, kb·wp − ka·wn] from the
 * rest's weight sums wp, wn fits the tolerance, as the tree checks a node) is returned with that
 * deterministic bound. want (or NULL: all) limits the queries summed (AUTO's pilot); the groups and
 * near sets are those of all of Y either way. */
static gram_status split(gram_context *ctx, const gram_kernel *k, const gram_array *Y, const gram_array *X,
                         const gram_array *W, const gram_approx_options *opt, gram_array *out, gram_array *err,
                         double klo, double khi, int64_t k_near, int64_t clusters, const unsigned char *want,
                         int64_t *evals,
                         int64_t *near_pairs, int64_t *index_pairs, int *sampled)
{
    const int64_t N = X->rows, D = X->cols, V = W ? W->cols : 1;
    const size_t esz = X->dtype == GRAM_FLOAT64 ? sizeof(double) : sizeof(float);
    gram__near ix;
    gram__near_plan pl;
    gram_status s = gram__near_build(ctx, k, X, Y, opt->seed, clusters, &ix);
    if (s) return s;
    if ((s = gram__near_plan_make(ctx, &ix, Y, W, k_near, &pl))) {
        gram__near_free(&ix);
        return s;
    }
    *index_pairs += ix.evaluations + pl.evaluations;
    const int64_t C = ix.C;
    int64_t maxq = 0;
    for (int64_t g = 0; g < C; g++)
        if (pl.qstart[g + 1] - pl.qstart[g] > maxq) maxq = pl.qstart[g + 1] - pl.qstart[g];

    gram_kernel *k2 = NULL;
    shuffle sh = {0};
    int64_t *qs = NULL, *active = NULL, *rows = NULL;
    double *wl = NULL, *wh = NULL, *E = NULL, *s1 = NULL, *s2 = NULL, *width = NULL, *o1 = NULL,
           *o2 = NULL, *w1 = NULL, *w2 = NULL, *rw = NULL;
    void *xs = NULL, *ys = NULL;
    if ((s = gram__approx_kernel_square(ctx, k, &k2))) goto done;
    sh.perm = gram__approx_buffer(N, sizeof(int64_t));
    qs = gram__approx_buffer(maxq, sizeof(int64_t));
    active = gram__approx_buffer(maxq, sizeof(int64_t));
    rows = gram__approx_buffer(N, sizeof(int64_t));
    wl = gram__approx_buffer(V, sizeof(double));
    wh = gram__approx_buffer(V, sizeof(double));
    rw = gram__approx_buffer(2 * V, sizeof(double));
    E = gram__approx_buffer(maxq * V, sizeof(double));
    s1 = gram__approx_buffer(maxq * V, sizeof(double));
    s2 = gram__approx_buffer(maxq * V, sizeof(double));
    width = gram__approx_buffer(maxq * V, sizeof(double));
    ys = gram__approx_buffer(maxq * D, esz);
    if (!sh.perm || !qs || !active || !rows || !wl || !wh || !rw || !E || !s1 || !s2 || !width || !ys) {
        s = gram__approx_sampling_oom(ctx, "the split's sums");
        goto done;
    }
    sh.N = N;
    for (int64_t j = 0; j < N; j++) sh.perm[j] = j;
    gram__rng_init(&sh.rng, opt->seed, 0);
    /* Weight ranges over X (the rest's terms lie in kernel range × weight range). */
    for (int64_t v = 0; v < V; v++) wl[v] = wh[v] = W ? gram__get(W, 0, v) : 1.0;
    for (int64_t j = 0; W && j < N; j++)
        for (int64_t v = 0; v < V; v++) {
            const double w = gram__get(W, j, v);
            if (w < wl[v]) wl[v] = w;
            if (w > wh[v]) wh[v] = w;
        }
    const double var_slack = X->dtype == GRAM_FLOAT64 ? 1e-11 : 1e-5;
    for (int64_t g = 0; g < C; g++) {
        const unsigned char *near = pl.near + g * C;
        int64_t nq = 0;
        for (int64_t a = pl.qstart[g]; a < pl.qstart[g + 1]; a++)
            if (!want || want[pl.qorder[a]]) qs[nq++] = pl.qorder[a];
        if (nq == 0) continue;
        /* The near set: its rows (cluster by cluster) and the rest's weight sums. */
        int64_t nn = 0;
        for (int64_t v = 0; v < 2 * V; v++) rw[v] = 0.0;
        for (int64_t c = 0; c < C; c++) {
            if (near[c])
                for (int64_t p = ix.start[c]; p < ix.start[c + 1]; p++) rows[nn++] = ix.order[p];
            else
                for (int64_t v = 0; v < 2 * V; v++) rw[v] += pl.cw[c * 2 * V + v];
        }
        const int64_t Ng = N - nn;
        gather_rows(Y, qs, nq, ys);
        memset(E, 0, (size_t)(nq * V) * sizeof(double));
        if (nn > 0) {
            xs = gram__approx_buffer(nn * D, esz);
            if (W) w1 = gram__approx_buffer(nn * V, sizeof(double));
            if (!xs || (W && !w1)) {
                s = gram__approx_sampling_oom(ctx, "a near set");
                goto done;
            }
            gather_rows(X, rows, nn, xs);
            for (int64_t r = 0; W && r < nn; r++)
                for (int64_t v = 0; v < V; v++) w1[r * V + v] = gram__get(W, rows[r], v);
            gram_array Xs = {xs, X->dtype, nn, D, D, 1}, Ys = {ys, X->dtype, nq, D, D, 1};
            gram_array W1 = gram_array_f64(w1, nn, V), O = gram_array_f64(E, nq, V);
            if ((s = gram_kernel_sum(ctx, k, &Ys, &Xs, W ? &W1 : NULL, &O))) goto done;
            *near_pairs += nq * nn;
            *evals += nq * nn;
            gram__free(xs), xs = NULL;
            gram__free(w1), w1 = NULL;
        }
        /* The deterministic interval of each query's rest; queries it settles stop here. */
        int64_t n_act = 0;
        for (int64_t a = 0; a < nq; a++) {
            const int64_t i = qs[a];
            const double kb = ix.kmax_inf ? khi : fmin(khi, pl.kmax[i]), ka = ix.kmax_inf ? klo : fmin(klo, kb);
            int settled = 1;
            const double *rest = pl.rest + i * 2 * V;
            for (int64_t v = 0; v < V; v++) {
                double lo = ka * rw[v] - kb * rw[V + v], hi = kb * rw[v] - ka * rw[V + v];
                if (!ix.kmax_inf) lo = -rest[V + v], hi = rest[v];
                const double e = E[a * V + v], half = 0.5 * (hi - lo);
                if (!(half <= opt->atol + opt->rtol * fmax(0.0, fmax(e + lo, -(e + hi))))) settled = 0;
                double tl, th;
                ival_mul(ka, kb, wl[v], wh[v], &tl, &th);
                width[a * V + v] = th - tl;
            }
            if (!settled && Ng > 0) {
                active[n_act++] = a;
                continue;
            }
            for (int64_t v = 0; v < V; v++) {
                double lo = ka * rw[v] - kb * rw[V + v], hi = kb * rw[v] - ka * rw[V + v];
                if (!ix.kmax_inf) lo = -rest[V + v], hi = rest[v];
                gram__put(out, i, v, Ng > 0 ? E[a * V + v] + 0.5 * (lo + hi) : E[a * V + v]);
                if (err) gram__put(err, i, v, Ng > 0 ? 0.5 * (hi - lo) : 0.0);
            }
        }
        if (n_act == 0) continue;
        /* The rest, sampled: the plain method's schedule and bound on the group's N_g terms. */
        int rounds = 0;
        for (int64_t n = Ng < SAMPLING_START ? Ng : SAMPLING_START; n < Ng; n = n > Ng / 2 ? Ng : 2 * n) rounds++;
        const double log_term = rounds ? log(10.0 * (double)rounds * (double)V / opt->delta) : 0.0;
        memset(s1, 0, (size_t)(nq * V) * sizeof(double));
        memset(s2, 0, (size_t)(nq * V) * sizeof(double));
        int64_t cursor = 0, prev = 0;
        for (int64_t n = Ng < SAMPLING_START ? Ng : SAMPLING_START;; n = n > Ng / 2 ? Ng : 2 * n) {
            const int64_t add = take_rows(&sh, &cursor, n - prev, &ix, near, rows);
            xs = gram__approx_buffer(add * D, esz);
            o1 = gram__approx_buffer(n_act * V, sizeof(double));
            o2 = gram__approx_buffer(n_act * V, sizeof(double));
            void *ya = gram__approx_buffer(n_act * D, esz);
            if (W) {
                w1 = gram__approx_buffer(add * V, sizeof(double));
                w2 = gram__approx_buffer(add * V, sizeof(double));
            }
            if (!xs || !o1 || !o2 || !ya || (W && (!w1 || !w2))) {
                gram__free(ya);
                s = gram__approx_sampling_oom(ctx, "a round's sample");
                goto done;
            }
            gather_rows(X, rows, add, xs);
            for (int64_t a = 0; a < n_act; a++)
                memcpy((char *)ya + (size_t)(a * D) * esz, (char *)ys + (size_t)(active[a] * D) * esz, (size_t)D * esz);
            for (int64_t r = 0; W && r < add; r++)
                for (int64_t v = 0; v < V; v++) {
                    const double w = gram__get(W, rows[r], v);
                    w1[r * V + v] = w;
                    w2[r * V + v] = w * w;
                }
            gram_array Xs = {xs, X->dtype, add, D, D, 1}, Ys = {ya, X->dtype, n_act, D, D, 1};
            gram_array W1 = gram_array_f64(w1, add, V), W2 = gram_array_f64(w2, add, V);
            gram_array O1 = gram_array_f64(o1, n_act, V), O2 = gram_array_f64(o2, n_act, V);
            s = gram_kernel_sum(ctx, k, &Ys, &Xs, W ? &W1 : NULL, &O1);
            if (!s) s = gram_kernel_sum(ctx, k2, &Ys, &Xs, W ? &W2 : NULL, &O2);
            gram__free(ya);
            if (s) goto done;
            *evals += n_act * add;
            gram__free(xs), xs = NULL;
            gram__free(w1), w1 = NULL;
            gram__free(w2), w2 = NULL;

            const double nd = (double)n, Nd = (double)Ng;
            const double rho = n <= Ng / 2 ? 1.0 - (nd - 1.0) / Nd : (1.0 - nd / Nd) * (1.0 + 1.0 / nd);
            int64_t kept = 0;
            for (int64_t b = 0; b < n_act; b++) {
                const int64_t a = active[b], i = qs[a];
                double *r1 = s1 + a * V, *r2 = s2 + a * V;
                int meets = 1;
                for (int64_t v = 0; v < V; v++) {
                    r1[v] += o1[b * V + v];
                    r2[v] += o2[b * V + v];
                }
                if (n < Ng)
                    for (int64_t v = 0; v < V && meets; v++) {
                        const double bound = sum_bound(r1[v], r2[v], n, Ng, rho, log_term, width[a * V + v], var_slack);
                        const double est = E[a * V + v] + Nd * (r1[v] / nd);
                        if (!(bound <= opt->atol + opt->rtol * (fabs(est) - bound))) meets = 0;
                    }
                if (!meets) {
                    active[kept++] = a;
                    continue;
                }
                for (int64_t v = 0; v < V; v++) {
                    double bound = 0.0;
                    if (n < Ng) {
                        bound = sum_bound(r1[v], r2[v], n, Ng, rho, log_term, width[a * V + v], var_slack);
                        *sampled = 1;
                    }
                    gram__put(out, i, v, E[a * V + v] + (n < Ng ? Nd * (r1[v] / nd) : r1[v]));
                    if (err) gram__put(err, i, v, bound);
                }
            }
            gram__free(o1), o1 = NULL;
            gram__free(o2), o2 = NULL;
            n_act = kept;
            if (n_act == 0 || n == Ng) break;
            prev = n;
        }
    }
    s = GRAM_OK;
done:
    gram__near_free(&ix);
    gram__near_plan_free(&pl);
    gram_kernel_destroy(k2);
    gram__free(sh.perm);
    gram__free(qs);
    gram__free(active);
    gram__free(rows);
    gram__free(wl);
    gram__free(wh);
    gram__free(rw);
    gram__free(E);
    gram__free(s1);
    gram__free(s2);
    gram__free(width);
    gram__free(o1);
    gram__free(o2);
    gram__free(w1);
    gram__free(w2);
    gram__free(xs);
    gram__free(ys);
    return s;
}

/* The near set's size for opt->near_neighbours (0: plain sampling) and the clusters of its index:
 * at least 2N/k, so that whole clusters make a near set of about k rows, and otherwise the index's
 * budget (gram__near_clusters). The method's choice (0) is the split where the index can bound the
 * kernel (a single non-increasing radial family), X holds at least SPLIT_MIN_N rows and the budget
 * affords clusters that fine, with SPLIT_PER_ROOT·√N rows near each query (docs/approx.md). */
#define SPLIT_MIN_N 4096
#define SPLIT_PER_ROOT 4
int64_t gram__approx_sampling_near(const gram_kernel *k, int64_t N, int64_t M, int64_t requested, int64_t *clusters)
{
    int64_t kn = requested;
    const int64_t budget = gram__near_clusters(N, M);
    if (requested < 0) return 0;
    if (requested == 0) {
        if (N < SPLIT_MIN_N || !gram__approx_tree_supports(k, NULL)) return 0;
        kn = SPLIT_PER_ROOT * (int64_t)ceil(sqrt((double)N));
        if (budget < 2 * N / kn) return 0;
    }
    int64_t c = kn >= N ? 1 : (2 * N + kn - 1) / kn;
    if (c < budget) c = budget;
    *clusters = c > 2048 ? 2048 : c;
    return kn;
}

gram_status gram__approx_sampling(gram_context *ctx, const gram_kernel *k, const gram_array *Y, const gram_array *X,
                                  const gram_array *W, const gram_approx_options *opt, gram_array *out,
                                  gram_array *err, gram_approx_info *info)
{
    gram_status s = check_args(ctx, k, Y, X, W, opt, out, err);
    if (s) return s;
    const int64_t N = X->rows, M = Y->rows, V = W ? W->cols : 1;
    double klo = 0.0, khi = 0.0;
    if ((s = kernel_range(ctx, k, &klo, &khi))) return s;
    if (info) {
        info->method = GRAM_APPROX_SAMPLING;
        info->delta = 0.0;
        info->kernel_evaluations = 0;
    }
    if (M == 0 || V == 0) return GRAM_OK;
    if (N == 0) {
        gram__approx_zero(out, err);
        return GRAM_OK;
    }
    int64_t clusters = 1;
    const int64_t kn = gram__approx_sampling_near(k, N, M, opt->near_neighbours, &clusters);
    int64_t evals = 0, near_pairs = 0, index_pairs = 0;
    int sampled = 0;
    if (kn > 0)
        s = split(ctx, k, Y, X, W, opt, out, err, klo, khi, kn, clusters, NULL, &evals, &near_pairs, &index_pairs,
                  &sampled);
    else s = plain(ctx, k, Y, X, W, opt, out, err, klo, khi, &evals, &sampled);
    if (s) return s;
    if (info) {
        info->delta = sampled ? opt->delta : 0.0;
        info->kernel_evaluations = evals;
    }
    return GRAM_OK;
}

/* The cost model's weights, in exact pairs of gram_kernel_sum (one thread, this development
 * machine; docs/approx.md, "Sampling"). Plain sampling: a sampled pair costs its k and k² sums and
 * its share of packing the round's rows, 1.8 (measured: 1000 queries, N = 10⁵, D = 64, every query
 * to n = N, 1.76 s against 0.99 s exact). The split: an index distance about one pair; a pair of a
 * group's near set or sample 11.6, most of it the engine's packing and this file's gathering of the
 * rows of small per-group calls (measured: noisy digits, N = M = 10⁵, gaussian(2), rtol 0.1, C =
 * 2000: 80.9 s for 3.7·10⁸ pairs and 4·10⁸ distances, the exact pair 1.73·10⁻⁸ s). */
#define COST_PLAIN 1.8
#define COST_INDEX 1.0
#define COST_SPLIT 11.6
#define COST_PILOT 16

double gram__approx_sampling_cost(gram_context *ctx, const gram_kernel *k, const gram_array *Y, const gram_array *X,
                                  const gram_array *W, const gram_approx_options *opt)
{
    if (!k || !Y || !X || !opt || !gram__approx_sampling_supports(k, NULL)) return INFINITY;
    const int64_t N = X->rows, M = Y->rows, D = X->cols, V = W ? W->cols : 1;
    if (M == 0 || N == 0 || V == 0) return 0.0;
    double klo, khi;
    if (kernel_range(ctx, k, &klo, &khi)) return INFINITY;
    const int64_t P = M < COST_PILOT ? M : COST_PILOT;
    int64_t clusters = 1;
    const int64_t kn = gram__approx_sampling_near(k, N, M, opt->near_neighbours, &clusters);
    int64_t evals = 0, near_pairs = 0, index_pairs = 0;
    int sampled = 0;
    gram_status s;
    double cost = INFINITY;
    gram_approx_options o = *opt;
    if (kn > 0) {
        /* the pilot's queries answered within the real groups: out must hold all M rows */
        unsigned char *want = gram__calloc((size_t)M, 1);
        double *o1 = gram__approx_buffer(M * V, sizeof(double));
        if (want && o1) {
            for (int64_t p = 0; p < P; p++) want[(2 * p + 1) * M / (2 * P)] = 1;
            gram_array O = gram_array_f64(o1, M, V);
            s = split(ctx, k, Y, X, W, &o, &O, NULL, klo, khi, kn, clusters, want, &evals, &near_pairs, &index_pairs,
                      &sampled);
            if (!s)
                cost = COST_INDEX * (double)index_pairs + COST_SPLIT * (double)evals * ((double)M / (double)P);
        }
        gram__free(want);
        gram__free(o1);
    } else {
        const size_t esz = Y->dtype == GRAM_FLOAT64 ? sizeof(double) : sizeof(float);
        int64_t *rows = gram__approx_buffer(P, sizeof(int64_t));
        void *ys = gram__approx_buffer(P * D, esz);
        double *o1 = gram__approx_buffer(P * V, sizeof(double));
        if (rows && ys && o1) {
            for (int64_t p = 0; p < P; p++) rows[p] = (2 * p + 1) * M / (2 * P);
            gather_rows(Y, rows, P, ys);
            gram_array Ys = {ys, Y->dtype, P, D, D, 1}, O = gram_array_f64(o1, P, V);
            s = plain(ctx, k, &Ys, X, W, &o, &O, NULL, klo, khi, &evals, &sampled);
            if (!s) cost = COST_PLAIN * (double)evals * ((double)M / (double)P);
        }
        gram__free(rows);
        gram__free(ys);
        gram__free(o1);
    }
    return cost;
}
