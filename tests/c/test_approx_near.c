/* DEANN's split of the sampling method (src/approx/near.c, sampling.c), called directly.
 *
 * References: the exact engine (gram_kernel_sum / gram_kernel_matrix, themselves held to long-double
 * loops in test_engine) and, for the index's bound, a long-double loop here.
 * - The cluster bound: every kernel value outside a query's near set ≤ kmax, and the rest's sums
 *   ≤ the plan's bounds, against a long-double loop over all pairs (D = 64, a mixture).
 * - Unbiasedness at a fixed sample size (one round stops every query): the mean over 300 seeds
 *   within 4.5 standard errors of the exact sum; the variance is E over the index of the
 *   conditional variance (the near set depends on the seed's stream 1), computed per seed from the
 *   exact terms of the rest (finite-population corrected).
 * - Coverage over seeds at delta = 0.05 with the binomial limit of test_approx_sampling (per check a
 *   false-alarm rate ≤ ALPHA = 1e-4): the bound and the tolerance, the stopping rule on every
 *   value; power: bounds shrunk 100-fold fail the count for most queries of a sampled case.
 *   Cases: a D = 64 mixture (non-negative weights, V = 1), signed weights with V = 3, a kernel
 *   without a radial profile (no cluster bound: global range), R's quakes (real data, k = 100).
 * - near_neighbours: −1 and 0 (N below the split's minimum) give the plain method bit for bit;
 *   k ≥ N sums everything exactly (bound 0, delta 0); an explicit k evaluates at least k pairs
 *   per query; 0 on a large N runs the split (a different result from −1).
 */
#include "check.h"
#include "approx/approx.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define ALPHA 1e-4

static int binom_limit(int n, double p, double alpha, int m)
{
    double tail = 1.0;
    for (int c = 0; c <= n; c++) {
        const double pmf = exp(lgamma(n + 1.0) - lgamma(c + 1.0) - lgamma(n - c + 1.0) + c * log(p) + (n - c) * log1p(-p));
        tail -= pmf;
        if (tail <= alpha / m) return c;
    }
    return n;
}

/* A mixture of `centres` spherical Gaussians (sd 1) whose centres are N(0, spread² I). */
static double *mixture(uint64_t seed, int64_t rows, int64_t D, int centres, double spread)
{
    check_rng r = {seed};
    double *c = malloc((size_t)(centres * D) * sizeof(double)), *a = malloc((size_t)(rows * D) * sizeof(double));
    for (int64_t i = 0; i < centres * D; i++) c[i] = spread * check_normal(&r);
    for (int64_t i = 0; i < rows; i++) {
        const int64_t m = check_int(&r, 0, centres - 1);
        for (int64_t d = 0; d < D; d++) a[i * D + d] = c[m * D + d] + check_normal(&r);
    }
    free(c);
    return a;
}

static double *weights(uint64_t seed, int64_t N, int64_t V, int sign)
{
    check_rng r = {seed};
    double *w = malloc((size_t)(N * V) * sizeof(double));
    for (int64_t i = 0; i < N * V; i++) w[i] = sign ? check_normal(&r) : 0.2 + check_uniform(&r);
    return w;
}

/* Every x outside query i's near set has k(y_i, x) ≤ kmax[i] (long double gaussian), and the rest's
 * Σ k·w⁺ and Σ k·|w⁻| are within the plan's bounds. */
static void test_cluster_bound(gram_context *ctx)
{
    const int64_t N = 6000, M = 300, D = 64, V = 2;
    const double ls = 2.5;
    double *x = mixture(31, N, D, 40, 3.0), *y = mixture(32, M, D, 40, 3.0), *w = weights(33, N, V, 1);
    /* the same centres for queries and data: the mixtures share seed-independent centres only via
     * the spread, so draw the queries from the data's own rows plus noise instead */
    check_rng r = {34};
    for (int64_t i = 0; i < M; i++)
        for (int64_t d = 0; d < D; d++) y[i * D + d] = x[(i * 17 % N) * D + d] + 0.5 * check_normal(&r);
    gram_array X = gram_array_f64(x, N, D), Y = gram_array_f64(y, M, D), W = gram_array_f64(w, N, V);
    char spec[64];
    snprintf(spec, sizeof spec, "3.0*gaussian(%g)", ls);
    gram_kernel *k = check_kernel(ctx, spec);
    gram__near ix;
    gram__near_plan pl;
    CHECK_STATUS(gram__near_build(ctx, k, &X, &Y, 7, 120, &ix), GRAM_OK);
    CHECK_STATUS(gram__near_plan_make(ctx, &ix, &Y, &W, 300, &pl), GRAM_OK);
    CHECK(ix.start[ix.C] == N, "the clusters hold %lld rows of %lld", (long long)ix.start[ix.C], (long long)N);
    int64_t *grp = malloc((size_t)M * sizeof(int64_t));
    for (int64_t g = 0; g < pl.C; g++)
        for (int64_t a = pl.qstart[g]; a < pl.qstart[g + 1]; a++) grp[pl.qorder[a]] = g;
    int64_t bad = 0, bad_rest = 0, tight = 0, outside = 0;
    for (int64_t i = 0; i < M; i++) {
        const unsigned char *near = pl.near + grp[i] * pl.C;
        long double rp[2] = {0, 0}, rn[2] = {0, 0}, kmax_seen = 0;
        for (int64_t j = 0; j < N; j++) {
            if (near[ix.cluster[j]]) continue;
            long double t = 0;
            for (int64_t d = 0; d < D; d++) {
                const long double z = ((long double)y[i * D + d] - x[j * D + d]) / ls;
                t += z * z;
            }
            const long double kv = 3.0L * expl(-0.5L * t);
            if (kv > kmax_seen) kmax_seen = kv;
            if (kv > pl.kmax[i]) bad++;
            for (int64_t v = 0; v < V; v++) {
                const double wv = w[j * V + v];
                if (wv > 0) rp[v] += kv * wv;
                else rn[v] -= kv * wv;
            }
            outside++;
        }
        for (int64_t v = 0; v < V; v++)
            if (rp[v] > pl.rest[i * 2 * V + v] || rn[v] > pl.rest[i * 2 * V + V + v]) bad_rest++;
        if (pl.kmax[i] < 3.0 * 1e-3) tight++;
        (void)kmax_seen;
    }
    CHECK(bad == 0, "%lld kernel values outside the near sets exceed kmax", (long long)bad);
    CHECK(bad_rest == 0, "%lld rest sums exceed their bound", (long long)bad_rest);
    CHECK(outside > M * N / 2, "the near sets hold most rows (%lld pairs outside)", (long long)outside);
    /* the bound must be informative, not just k(0) = 3 */
    CHECK(tight > M / 2, "kmax < 1e-3·k(0) for only %lld of %lld queries", (long long)tight, (long long)M);
    gram__near_plan_free(&pl);
    gram__near_free(&ix);
    free(grp), free(x), free(y), free(w);
    gram_kernel_destroy(k);
}

/* One round stops every query (atol far above the round's bound but below the deterministic
 * interval's half-width): the estimate is E + N_g/n Σ over a uniform n-sample of the rest. */
static void test_unbiased(gram_context *ctx)
{
    const int64_t N = 3000, M = 8, D = 5, n = 256, KN = 200;
    const int seeds = 300;
    /* a product: no radial profile, so no deterministic settling from a cluster bound */
    gram_kernel *k = check_kernel(ctx, "laplacian(2.0)*rbf(3.0)");
    double *x = mixture(41, N, D, 6, 2.0), *y = mixture(42, M, D, 6, 2.0);
    gram_array X = gram_array_f64(x, N, D), Y = gram_array_f64(y, M, D);
    double *K = malloc((size_t)(M * N) * sizeof(double));
    gram_array KA = gram_array_f64(K, M, N);
    CHECK_STATUS(gram_kernel_matrix(ctx, k, &Y, &X, &KA), GRAM_OK);
    double ex[8], est[8], mean[8] = {0}, var[8] = {0};
    {
        gram_array O = gram_array_f64(ex, M, 1);
        CHECK_STATUS(gram_kernel_sum(ctx, k, &Y, &X, NULL, &O), GRAM_OK);
    }
    gram_approx_options opt;
    gram_approx_options_init(&opt);
    /* ≈ 0.2·N_g bounds the first round; the deterministic interval's half-width is 0.5·N_g, and
     * N_g ≥ 2400 here (checked below), so no query settles without a sample */
    opt.atol = 0.3 * (double)N;
    opt.delta = 0.1;
    opt.near_neighbours = KN;
    for (int s = 0; s < seeds; s++) {
        opt.seed = 500 + (uint64_t)s;
        gram_array O = gram_array_f64(est, M, 1);
        gram_approx_info info;
        CHECK_STATUS(gram__approx_sampling(ctx, k, &Y, &X, NULL, &opt, &O, NULL, &info), GRAM_OK);
        for (int64_t i = 0; i < M; i++) mean[i] += est[i] / seeds;
        /* the conditional variance of this seed's index */
        gram__near ix;
        gram__near_plan pl;
        int64_t clusters = 0;
        CHECK(gram__approx_sampling_near(k, N, M, KN, &clusters) == KN, "k = %lld", (long long)KN);
        CHECK_STATUS(gram__near_build(ctx, k, &X, &Y, opt.seed, clusters, &ix), GRAM_OK);
        CHECK_STATUS(gram__near_plan_make(ctx, &ix, &Y, NULL, KN, &pl), GRAM_OK);
        int64_t near_rows_total = 0;
        for (int64_t g = 0; g < pl.C; g++)
            for (int64_t a = pl.qstart[g]; a < pl.qstart[g + 1]; a++) {
                const int64_t i = pl.qorder[a];
                long double s1 = 0, s2 = 0;
                int64_t Ng = 0;
                for (int64_t j = 0; j < N; j++) {
                    if (pl.near[g * pl.C + ix.cluster[j]]) continue;
                    s1 += K[i * N + j], s2 += (long double)K[i * N + j] * K[i * N + j], Ng++;
                }
                near_rows_total += N - Ng;
                CHECK(0.5 * (double)Ng > opt.atol, "seed %d: N_g = %lld lets a query settle", s, (long long)Ng);
                const long double mu = s1 / Ng, v = s2 / Ng - mu * mu;
                var[i] += (double)((long double)Ng * Ng * v / n * (Ng - n) / (Ng - 1)) / seeds;
                (void)near_rows_total;
            }
        CHECK(info.kernel_evaluations == near_rows_total + M * n, "seed %d: %lld pairs, want %lld near + %lld sampled",
              s, (long long)info.kernel_evaluations, (long long)near_rows_total, (long long)(M * n));
        gram__near_plan_free(&pl);
        gram__near_free(&ix);
    }
    for (int64_t i = 0; i < M; i++) {
        const double z = (mean[i] - ex[i]) / sqrt(var[i] / seeds);
        /* two-sided 4.5σ over 8 queries: false-alarm rate ≈ 5e-5 */
        CHECK(fabs(z) <= 4.5, "query %lld: mean over seeds %.10g, exact %.10g, z = %.2f", (long long)i, mean[i], ex[i], z);
        CHECK(var[i] > 0, "query %lld: the rest has no variance, the test sees nothing", (long long)i);
    }
    free(x), free(y), free(K);
    gram_kernel_destroy(k);
}

typedef struct ncase {
    const char *spec;
    int64_t N, M, D, V;
    int sign;
    double rtol, atol;
    int64_t k_near;
    int seeds;
    const char *file;
    int power; /* the case samples most values: the shrunk bound must fail most queries */
} ncase;

static void coverage(gram_context *ctx, const ncase *c0)
{
    ncase cc = *c0, *c = &cc;
    double *x, *y;
    if (c->file) {
        if (!(x = check_read_data(ctx, c->file, &c->N, &c->D))) return;
        /* standardised columns: the spec's lengthscale is in sd units */
        for (int64_t d = 0; d < c->D; d++) {
            double m = 0, v = 0;
            for (int64_t i = 0; i < c->N; i++) m += x[i * c->D + d] / (double)c->N;
            for (int64_t i = 0; i < c->N; i++) v += (x[i * c->D + d] - m) * (x[i * c->D + d] - m);
            const double sd = sqrt(v / (double)(c->N - 1));
            for (int64_t i = 0; i < c->N; i++) x[i * c->D + d] = (x[i * c->D + d] - m) / sd;
        }
        y = malloc((size_t)(c->M * c->D) * sizeof(double));
        for (int64_t i = 0; i < c->M; i++) memcpy(y + i * c->D, x + (i * (c->N / c->M)) * c->D, (size_t)c->D * sizeof(double));
    } else {
        x = mixture(51, c->N, c->D, 30, 2.0);
        y = malloc((size_t)(c->M * c->D) * sizeof(double));
        check_rng r = {52};
        for (int64_t i = 0; i < c->M; i++)
            for (int64_t d = 0; d < c->D; d++) y[i * c->D + d] = x[(i * 37 % c->N) * c->D + d] + 0.3 * check_normal(&r);
    }
    gram_kernel *k = check_kernel(ctx, c->spec);
    double *w = c->V > 1 || c->sign ? weights(53, c->N, c->V, c->sign) : NULL;
    gram_array X = gram_array_f64(x, c->N, c->D), Y = gram_array_f64(y, c->M, c->D), W = gram_array_f64(w, c->N, c->V);
    const int64_t MV = c->M * c->V;
    double *ex = malloc((size_t)MV * sizeof(double)), *est = malloc((size_t)MV * sizeof(double)),
           *err = malloc((size_t)MV * sizeof(double));
    {
        gram_array O = gram_array_f64(ex, c->M, c->V);
        CHECK_STATUS(gram_kernel_sum(ctx, k, &Y, &X, w ? &W : NULL, &O), GRAM_OK);
    }
    int *miss = calloc((size_t)c->M, sizeof(int)), *miss_tol = calloc((size_t)c->M, sizeof(int)),
        *miss_small = calloc((size_t)c->M, sizeof(int));
    gram_approx_options opt;
    gram_approx_options_init(&opt);
    opt.rtol = c->rtol, opt.atol = c->atol, opt.delta = 0.05, opt.near_neighbours = c->k_near;
    int64_t rule_broken = 0, evals = 0, bounded = 0;
    for (int s = 0; s < c->seeds; s++) {
        opt.seed = 2000 + (uint64_t)s;
        gram_array O = gram_array_f64(est, c->M, c->V), E = gram_array_f64(err, c->M, c->V);
        gram_approx_info info;
        CHECK_STATUS(gram__approx_sampling(ctx, k, &Y, &X, w ? &W : NULL, &opt, &O, &E, &info), GRAM_OK);
        evals += info.kernel_evaluations;
        for (int64_t i = 0; i < c->M; i++) {
            int m = 0, mt = 0, ms = 0;
            for (int64_t v = 0; v < c->V; v++) {
                const double e = est[i * c->V + v], b = err[i * c->V + v], t = ex[i * c->V + v];
                const double d = fabs(e - t), slack = 1e-10 * (fabs(t) + b) + 1e-300;
                if (d > b + slack) m = 1;
                if (d > c->atol + c->rtol * fabs(t) + slack) mt = 1;
                if (b > 0 && d > b / 100) ms = 1;
                if (b > 0) bounded++;
                if (!(b <= c->atol + c->rtol * fmax(0.0, fabs(e) - b) + slack || b == 0)) rule_broken++;
            }
            miss[i] += m, miss_tol[i] += mt, miss_small[i] += ms;
        }
    }
    const int limit = binom_limit(c->seeds, 0.05, ALPHA, (int)c->M);
    int worst = 0, worst_tol = 0, small_over = 0;
    for (int64_t i = 0; i < c->M; i++) {
        if (miss[i] > worst) worst = miss[i];
        if (miss_tol[i] > worst_tol) worst_tol = miss_tol[i];
        if (miss_small[i] > limit) small_over++;
    }
    const char *name = c->file ? c->file : c->spec;
    CHECK(worst <= limit, "%s: a query's bound missed in %d of %d seeds (limit %d)", name, worst, c->seeds, limit);
    CHECK(worst_tol <= limit, "%s: a query's tolerance missed in %d of %d seeds (limit %d)", name, worst_tol, c->seeds,
          limit);
    CHECK(rule_broken == 0, "%s: %lld values with bound > atol + rtol(|est| - bound)", name, (long long)rule_broken);
    CHECK(bounded > c->seeds * MV / 4, "%s: only %lld of %lld values carry a bound (the rest summed exactly)", name,
          (long long)bounded, (long long)(c->seeds * MV));
    if (c->power)
        CHECK(small_over > c->M / 2, "%s: a bound shrunk 100-fold fails only %d of %lld queries", name, small_over,
              (long long)c->M);
    CHECK(evals < (int64_t)c->seeds * c->M * c->N, "%s: the split evaluated %lld pairs, exact needs %lld", name,
          (long long)evals, (long long)c->seeds * c->M * c->N);
    if (getenv("GRAM_TEST_VERBOSE"))
        printf("%s: worst misses %d (tol %d) of %d, limit %d; %lld of %lld bounded; shrunk fails %d; pairs %.3g of exact\n",
               name, worst, worst_tol, c->seeds, limit, (long long)bounded, (long long)(c->seeds * MV), small_over,
               (double)evals / ((double)c->seeds * c->M * c->N));
    free(miss), free(miss_tol), free(miss_small), free(ex), free(est), free(err), free(x), free(y), free(w);
    gram_kernel_destroy(k);
}

static void test_coverage(gram_context *ctx)
{
    const ncase cases[] = {
        /* D = 64 mixture, a wide bandwidth: the rest sampled */
        {"gaussian(10.0)", 8000, 12, 64, 1, 0, 0.1, 0.0, 300, 100, NULL, 1},
        /* a narrow bandwidth: some rests settled by the cluster bound alone, others sampled */
        {"gaussian(0.7)", 8000, 12, 16, 1, 0, 0.05, 0.0, 400, 30, NULL, 0},
        /* signed weights, V = 3: atol carries where the sums cancel */
        {"gaussian(6.0)", 8000, 10, 16, 3, 1, 0.0, 4000.0, 500, 100, NULL, 1},
        /* no radial profile: the global range, the split cuts only the variance */
        {"rbf(6) * cosine + 0.5", 6000, 10, 8, 1, 0, 0.05, 0.0, 300, 100, NULL, 1},
        /* R's quakes, standardised: real data */
        {"gaussian(2.0)", 0, 10, 0, 1, 0, 0.25, 0.0, 100, 150, "quakes.csv", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) coverage(ctx, &cases[i]);
}

static void test_modes(gram_context *ctx)
{
    const int64_t D = 6, M = 9;
    gram_kernel *k = check_kernel(ctx, "gaussian(1.5)");
    gram_approx_options opt;
    gram_approx_options_init(&opt);
    opt.rtol = 0.1;
    opt.seed = 3;
    double a[9], b[9], e[9], ex[9];
    /* N below the split's minimum: 0 is plain sampling, bit for bit */
    {
        const int64_t N = 3000;
        double *x = mixture(61, N, D, 5, 2.0), *y = mixture(62, M, D, 5, 2.0);
        gram_array X = gram_array_f64(x, N, D), Y = gram_array_f64(y, M, D);
        gram_array A = gram_array_f64(a, M, 1), B = gram_array_f64(b, M, 1), E = gram_array_f64(e, M, 1);
        gram_array EX = gram_array_f64(ex, M, 1);
        opt.near_neighbours = 0;
        CHECK_STATUS(gram__approx_sampling(ctx, k, &Y, &X, NULL, &opt, &A, NULL, NULL), GRAM_OK);
        opt.near_neighbours = -1;
        CHECK_STATUS(gram__approx_sampling(ctx, k, &Y, &X, NULL, &opt, &B, NULL, NULL), GRAM_OK);
        CHECK(memcmp(a, b, sizeof a) == 0, "near_neighbours 0 below the split's minimum differs from -1");
        /* the cost model's pilot (16 of the queries; here all 9) predicts the plain run's pairs:
         * 1.8 exact pairs each (docs/approx.md) */
        opt.near_neighbours = -1;
        {
            gram_approx_info ip;
            CHECK_STATUS(gram__approx_sampling(ctx, k, &Y, &X, NULL, &opt, &B, NULL, &ip), GRAM_OK);
            const double cost = gram__approx_sampling_cost(ctx, k, &Y, &X, NULL, &opt);
            CHECK(fabs(cost - 1.8 * (double)ip.kernel_evaluations) <= 1e-9 * cost, "plain cost %g, pairs %lld", cost,
                  (long long)ip.kernel_evaluations);
            gram_kernel *lin = check_kernel(ctx, "linear");
            CHECK(isinf(gram__approx_sampling_cost(ctx, lin, &Y, &X, NULL, &opt)), "sampling cannot bound linear");
            gram_kernel_destroy(lin);
            opt.near_neighbours = 500;
            const double c2 = gram__approx_sampling_cost(ctx, k, &Y, &X, NULL, &opt);
            CHECK(c2 > 11.6 * 500 * M && isfinite(c2), "split cost %g below its near pairs", c2);
        }
        /* k ≥ N: everything near, the exact sum */
        gram_approx_info info;
        opt.near_neighbours = N;
        CHECK_STATUS(gram__approx_sampling(ctx, k, &Y, &X, NULL, &opt, &A, &E, &info), GRAM_OK);
        CHECK_STATUS(gram_kernel_sum(ctx, k, &Y, &X, NULL, &EX), GRAM_OK);
        for (int64_t i = 0; i < M; i++) {
            CHECK_CLOSE(a[i], ex[i], 1e-12, 0.0, "k = N");
            CHECK(e[i] == 0.0, "k = N: bound %g, want 0", e[i]);
        }
        CHECK(info.delta == 0.0 && info.kernel_evaluations == M * N, "k = N: delta %g, %lld pairs", info.delta,
              (long long)info.kernel_evaluations);
        /* an explicit k: at least k rows summed exactly per query */
        opt.near_neighbours = 500;
        CHECK_STATUS(gram__approx_sampling(ctx, k, &Y, &X, NULL, &opt, &A, &E, &info), GRAM_OK);
        CHECK(info.kernel_evaluations >= 500 * M, "k = 500: only %lld pairs", (long long)info.kernel_evaluations);
        for (int64_t i = 0; i < M; i++) CHECK(fabs(a[i] - ex[i]) <= e[i] + 1e-10 * ex[i], "k = 500: query %lld off", (long long)i);
        free(x), free(y);
    }
    /* a large N and M: 0 runs the split, not plain sampling */
    {
        const int64_t N = 20000, M = 2000;
        double *a = malloc(M * sizeof(double)), *b = malloc(M * sizeof(double));
        double *x = mixture(63, N, D, 40, 4.0), *y = mixture(64, M, D, 40, 4.0);
        gram_array X = gram_array_f64(x, N, D), Y = gram_array_f64(y, M, D);
        gram_array A = gram_array_f64(a, M, 1), B = gram_array_f64(b, M, 1);
        gram_approx_info ia, ib;
        opt.near_neighbours = 0;
        CHECK_STATUS(gram__approx_sampling(ctx, k, &Y, &X, NULL, &opt, &A, NULL, &ia), GRAM_OK);
        opt.near_neighbours = -1;
        CHECK_STATUS(gram__approx_sampling(ctx, k, &Y, &X, NULL, &opt, &B, NULL, &ib), GRAM_OK);
        CHECK(memcmp(a, b, M * sizeof(double)) != 0 && ia.kernel_evaluations != ib.kernel_evaluations,
              "near_neighbours 0 on N = 20000 ran plain sampling");
        free(x), free(y), free(a), free(b);
    }
    gram_kernel_destroy(k);
}

int main(void)
{
    gram_context *ctx = NULL;
    gram_context_create(&ctx);
    gram_context_set_threads(ctx, 1);
    test_modes(ctx);
    test_cluster_bound(ctx);
    test_unbiased(ctx);
    test_coverage(ctx);
    gram_context_destroy(ctx);
    return check_done();
}
