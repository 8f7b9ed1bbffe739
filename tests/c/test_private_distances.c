/* The private distance sketches (src/private/distances.c): the trees' exact counts against a
 * naive count per node, the noiseless limit against long-double naive sums (within the
 * discretisation bound derived in distances.c), the sensitivities on neighbouring data sets
 * (bounded, and attained by the worst pair), the levels rule, the parameters the family refuses,
 * and — through gram__release — the query noise's mean and variance against the variance derived
 * from the tree's node noise, and the error's log-log slopes against ε and d.
 *
 * The sketches are filled as private.c fills them (public fields set by hand) and the family
 * table is called directly; the noiseless tests put the exact counts where the released values go. */
#include "check.h"
#include "private/private.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef long double ld;

#define PI 3.14159265358979323846

static gram_context *ctx;
static const gram__private_family *fam = &gram__private_distances;

static gram_private_sketch *new_sketch(gram_private_similarity f, gram_private_mechanism mech, gram_private_domain dom,
                                       gram_private_neighbours nb, double R, int64_t d, int L)
{
    gram_private_sketch *s = calloc(1, sizeof *s);
    s->similarity = f;
    s->mechanism = mech;
    s->domain = dom;
    s->neighbours = nb;
    s->radius = R;
    s->p = f == GRAM_PRIVATE_L2 ? 2 : 1;
    s->dim = d;
    s->n_components = f == GRAM_PRIVATE_L2 ? 64 : 0;
    s->levels = L;
    s->seed = 12345;
    s->epsilon = s->eps_main = 1;
    s->delta = s->delta_main = 0;
    return s;
}

static void free_sketch(gram_private_sketch *s)
{
    if (!s) return;
    if (s->cache && s->free_cache) s->free_cache(s->cache);
    free(s->values);
    free(s->params);
    free(s);
}

/* The noiseless sketch: the exact statistic where the released values go, then prepare. */
static int fill_exact(gram_private_sketch *s, const double *X, int64_t n)
{
    gram__statistic st;
    gram_status rc = fam->statistic(ctx, s, X, n, &st);
    CHECK(rc == GRAM_OK, "statistic: %s", gram_context_message(ctx));
    if (rc) return 0;
    free(s->values);
    s->values = malloc((size_t)st.m * sizeof(double));
    for (int64_t i = 0; i < st.m; i++) s->values[i] = (double)st.v[i];
    s->n_values = st.m;
    s->n_released = (double)n;
    free(st.v);
    rc = fam->prepare(ctx, s);
    CHECK(rc == GRAM_OK, "prepare: %s", gram_context_message(ctx));
    return rc == GRAM_OK;
}

/* Points on the grid k·2^-30·R: (x + R)·2^L/(2R) is then exact, so the naive count below and the
 * family's cell agree even at cell edges. */
static double grid_point(check_rng *r, double R)
{
    return (double)check_int(r, -((int64_t)1 << 30), (int64_t)1 << 30) * ldexp(R, -30);
}

static void random_box(check_rng *r, double *X, int64_t n, int64_t d, double R)
{
    for (int64_t i = 0; i < n * d; i++) X[i] = grid_point(r, R);
}

static void random_ball(check_rng *r, double *X, int64_t n, int64_t d, double R)
{
    for (int64_t i = 0; i < n; i++) {
        ld ss = 0;
        for (int64_t j = 0; j < d; j++) {
            X[i * d + j] = check_normal(r);
            ss += (ld)X[i * d + j] * X[i * d + j];
        }
        const double scale = R * pow(check_uniform(r), 1.0 / (double)d) / (double)sqrtl(ss) * (1 - 1e-12);
        for (int64_t j = 0; j < d; j++) X[i * d + j] *= scale;
    }
}

static ld naive_lpp(const double *X, int64_t n, int64_t d, const double *y, double p)
{
    ld sum = 0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < d; j++) sum += powl(fabsl((ld)X[i * d + j] - y[j]), p);
    return sum;
}

static ld naive_l2(const double *X, int64_t n, int64_t d, const double *y)
{
    ld sum = 0;
    for (int64_t i = 0; i < n; i++) {
        ld ss = 0;
        for (int64_t j = 0; j < d; j++) ss += ((ld)X[i * d + j] - y[j]) * ((ld)X[i * d + j] - y[j]);
        sum += sqrtl(ss);
    }
    return sum;
}

/* ---- the trees' exact counts ---------------------------------------------------------------- */

static void test_tree_counts(void)
{
    const int64_t n = 300, d = 3;
    const int L = 5;
    const double R = 2;
    check_rng r = {101};
    double *X = malloc(n * d * sizeof *X);
    random_box(&r, X, n, d, R);
    /* cell edges, the ends of the domain and the centre */
    for (int64_t j = 0; j < d; j++) {
        X[0 * d + j] = -R;
        X[1 * d + j] = R;
        X[2 * d + j] = 0;
        X[3 * d + j] = -R + 3 * (2 * R / 32);
        X[4 * d + j] = R - 2 * R / 32;
    }
    for (int nbh = 0; nbh < 2; nbh++) {
        for (int flat = 0; flat < 2; flat++) {
            gram_private_sketch *s =
                new_sketch(GRAM_PRIVATE_L1, flat ? GRAM_PRIVATE_BASELINE : GRAM_PRIVATE_PAPER, GRAM_PRIVATE_BOX,
                           nbh ? GRAM_PRIVATE_ADD_REMOVE : GRAM_PRIVATE_REPLACE, R, d, L);
            s->n_released = n;
            gram__statistic st;
            CHECK_STATUS(fam->statistic(ctx, s, X, n, &st), GRAM_OK);
            const int base = nbh ? 0 : 1;
            const int64_t nb = flat ? 32 : 64 - (1 << base);
            CHECK(st.m == d * nb, "flat %d nbh %d: %lld values, want %lld", flat, nbh, (long long)st.m,
                  (long long)(d * nb));
            CHECK(st.unit == 1 && st.allow_coarsen == 0, "counts are released without coarsening");
            int bad = 0;
            for (int64_t j = 0; j < d && st.m == d * nb; j++) {
                int64_t off = 0;
                for (int l = flat ? L : base; l <= L; l++) {
                    const int64_t nodes = (int64_t)1 << l;
                    const ld w = 2 * (ld)R / nodes;
                    for (int64_t i = 0; i < nodes; i++) {
                        const ld lo = -(ld)R + i * w, hi = -(ld)R + (i + 1) * w;
                        int64_t c = 0;
                        for (int64_t t = 0; t < n; t++) {
                            const ld x = X[t * d + j];
                            if (x >= lo && (x < hi || (i == nodes - 1 && x <= hi))) c++;
                        }
                        if (st.v[j * nb + off + i] != c) bad++;
                    }
                    off += nodes;
                }
            }
            CHECK(bad == 0, "flat %d nbh %d: %d node counts differ from the naive count", flat, nbh, bad);
            free(st.v);
            free_sketch(s);
        }
    }
    free(X);
}

/* ---- the noiseless limit -------------------------------------------------------------------- */

static void test_noiseless_l1_lpp(void)
{
    const int64_t n = 400, d = 5, m = 40;
    const double R = 1.5;
    const int L = 7;
    const double h = 2 * R / 128;
    check_rng r = {202};
    double *X = malloc(n * d * sizeof *X), *Xm = malloc(n * d * sizeof *Xm);
    double *Y = malloc(m * d * sizeof *Y), *out = malloc(m * sizeof *out);
    random_box(&r, X, n, d, R);
    /* the same points moved to their cells' midpoints: the discretisation error vanishes */
    for (int64_t i = 0; i < n * d; i++) {
        double c = floor((X[i] + R) / h);
        if (c > 127) c = 127;
        Xm[i] = -R + (c + 0.5) * h;
    }
    for (int64_t i = 0; i < m * d; i++) Y[i] = 1.6 * R * (2 * check_uniform(&r) - 1); /* some outside */
    const double ps[] = {1, 0.3, 0.5, 1.5, 2};
    for (int nbh = 0; nbh < 2; nbh++)
        for (int flat = 0; flat < 2; flat++)
            for (int pi = 0; pi < 5; pi++) {
                const double p = ps[pi];
                if (flat && pi) continue;
                for (int mid = 0; mid < 2; mid++) {
                    const double *D = mid ? Xm : X;
                    gram_private_sketch *s = new_sketch(
                        pi ? GRAM_PRIVATE_LPP : GRAM_PRIVATE_L1, flat ? GRAM_PRIVATE_BASELINE : GRAM_PRIVATE_PAPER,
                        GRAM_PRIVATE_BOX, nbh ? GRAM_PRIVATE_ADD_REMOVE : GRAM_PRIVATE_REPLACE, R, d, L);
                    s->p = p;
                    if (!fill_exact(s, D, n)) {
                        free_sketch(s);
                        continue;
                    }
                    CHECK_STATUS(fam->query(ctx, s, Y, m, out), GRAM_OK);
                    /* each point moves at most h/2 per coordinate: |g(a) − g(b)| ≤ Lip·h/2, or
                     * (h/2)^p for p ≤ 1 (t^p is p-Hölder with constant 1) */
                    const double lip = p <= 1 ? pow(h / 2, p) : h / 2 * p * pow(2 * R + 0.6 * R, p - 1);
                    double worst = 0;
                    int bad = 0;
                    for (int64_t i = 0; i < m; i++) {
                        const ld want = naive_lpp(D, n, d, Y + i * d, p);
                        const ld err = fabsl((ld)out[i] - want);
                        const ld tol = mid ? 1e-11L * want + 1e-9L : (ld)(n * d) * lip * (1 + 1e-9) + 1e-9L;
                        if (err > tol) bad++;
                        if ((double)(err / tol) > worst) worst = (double)(err / tol);
                    }
                    CHECK(bad == 0,
                          "l%s p %g flat %d nbh %d midpoints %d: %d of %lld queries beyond the bound "
                          "(worst err/bound %.3g)",
                          pi ? "pp" : "1", p, flat, nbh, mid, bad, (long long)m, worst);
                    free_sketch(s);
                }
            }
    /* the bound is tight enough to matter: the naive sum at the midpoints differs from the true one
     * (the test above would pass a sketch that ignored the data only if this failed) */
    CHECK(fabsl(naive_lpp(X, n, d, Y, 1) - naive_lpp(Xm, n, d, Y, 1)) > 1e-6, "midpoints moved the data");
    free(X);
    free(Xm);
    free(Y);
    free(out);
}

static void test_noiseless_l2(void)
{
    const int64_t n = 200, d = 10, m = 20;
    const double R = 3;
    check_rng r = {303};
    double *X = malloc(n * d * sizeof *X), *Y = malloc(m * d * sizeof *Y), *out = malloc(m * sizeof *out);
    for (int dom = 0; dom < 2; dom++) {
        if (dom)
            random_box(&r, X, n, d, R);
        else
            random_ball(&r, X, n, d, R);
        for (int64_t i = 0; i < m * d; i++) Y[i] = (dom ? 1.2 : 0.6) * R * (2 * check_uniform(&r) - 1);
        const int64_t ks[] = {64, 400};
        for (int ki = 0; ki < 2; ki++) {
            const int64_t k = ks[ki];
            const int L = 10;
            gram_private_sketch *s =
                new_sketch(GRAM_PRIVATE_L2, GRAM_PRIVATE_PAPER, dom ? GRAM_PRIVATE_BOX : GRAM_PRIVATE_BALL,
                           GRAM_PRIVATE_REPLACE, R, d, L);
            s->n_components = k;
            if (!fill_exact(s, X, n)) {
                free_sketch(s);
                continue;
            }
            CHECK_STATUS(fam->query(ctx, s, Y, m, out), GRAM_OK);
            /* the discretisation bound: √(π/2)/k·Σ_i n·h_i/2 with h_i = 2r_i/2^L, r_i = |g_i|R;
             * E|g_i|₂ ≤ √d, E|g_i|₁ = d√(2/π): bounded above generously by 2× */
            const double ri = dom ? 2 * d * sqrt(2 / PI) * R : 2 * sqrt((double)d) * R;
            const double disc = sqrt(PI / 2) * n * (2 * ri / 1024) / 2;
            /* the embedding: the k projections are iid, each term's relative sd ≤ √(π/2 − 1), so the
             * estimate's relative sd ≤ √((π/2 − 1)/k); 4 sd: ≈ 6e-5 false alarms per query under the
             * normal approximation (fixed seed: deterministic) */
            const double rel = 4 * sqrt((PI / 2 - 1) / (double)k);
            int bad = 0;
            ld sq = 0, sw = 0;
            for (int64_t i = 0; i < m; i++) {
                const ld want = naive_l2(X, n, d, Y + i * d);
                const ld err = fabsl((ld)out[i] - want);
                if (err > rel * want + disc) bad++;
                sq += err * err;
                sw += want * want;
            }
            CHECK(bad == 0, "l2 dom %d k %lld: %d of %lld queries beyond the embedding's error", dom, (long long)k, bad,
                  (long long)m);
            /* more projections, smaller error: the RMS relative error is near √((π/2−1)/k)·(≤ 1) */
            CHECK(sqrtl(sq / sw) < 1.5 * sqrt((PI / 2 - 1) / (double)k), "l2 dom %d k %lld: rms rel err %.3Lg", dom,
                  (long long)k, sqrtl(sq / sw));
            free_sketch(s);
        }
    }
    free(X);
    free(Y);
    free(out);
}

/* ---- sensitivity on neighbouring data sets -------------------------------------------------- */

static void stat_of(gram_private_sketch *s, const double *X, int64_t n, gram__statistic *st)
{
    gram_status rc = fam->statistic(ctx, s, X, n, st);
    CHECK(rc == GRAM_OK, "statistic: %s", gram_context_message(ctx));
    if (rc) st->v = NULL;
}

static void diff_norms(const gram__statistic *a, const gram__statistic *b, uint64_t *l1, double *l2)
{
    uint64_t s1 = 0;
    ld s2 = 0;
    for (int64_t i = 0; i < a->m; i++) {
        const int64_t t = a->v[i] - b->v[i];
        s1 += (uint64_t)(t < 0 ? -t : t);
        s2 += (ld)t * t;
    }
    *l1 = s1;
    *l2 = (double)sqrtl(s2);
}

static void test_sensitivity(void)
{
    const int64_t n = 50, d = 3;
    const double R = 1;
    const int L = 6;
    check_rng r = {404};
    double *X = malloc(n * d * sizeof *X), *X2 = malloc(n * d * sizeof *X2);
    struct {
        gram_private_similarity f;
        gram_private_mechanism mech;
        gram_private_domain dom;
    } cases[] = {
        {GRAM_PRIVATE_L1, GRAM_PRIVATE_PAPER, GRAM_PRIVATE_BOX},
        {GRAM_PRIVATE_L1, GRAM_PRIVATE_PAPER, GRAM_PRIVATE_BALL},
        {GRAM_PRIVATE_L1, GRAM_PRIVATE_BASELINE, GRAM_PRIVATE_BOX},
        {GRAM_PRIVATE_LPP, GRAM_PRIVATE_PAPER, GRAM_PRIVATE_BOX},
        {GRAM_PRIVATE_L2, GRAM_PRIVATE_PAPER, GRAM_PRIVATE_BALL},
        {GRAM_PRIVATE_L2, GRAM_PRIVATE_PAPER, GRAM_PRIVATE_BOX},
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const int ball = cases[ci].dom == GRAM_PRIVATE_BALL;
        if (ball)
            random_ball(&r, X, n, d, R);
        else
            random_box(&r, X, n, d, R);
        for (int nbh = 0; nbh < 2; nbh++) {
            gram_private_sketch *s = new_sketch(cases[ci].f, cases[ci].mech, cases[ci].dom,
                                                nbh ? GRAM_PRIVATE_ADD_REMOVE : GRAM_PRIVATE_REPLACE, R, d, L);
            s->n_components = cases[ci].f == GRAM_PRIVATE_L2 ? 16 : 0;
            s->n_released = n;
            const int64_t nc = cases[ci].f == GRAM_PRIVATE_L2 ? 16 : d;
            /* the claimed sensitivity, derived here from the layout */
            const int64_t per = cases[ci].mech == GRAM_PRIVATE_BASELINE ? 1 : nbh ? L + 1 : L;
            const uint64_t want_l1 = (uint64_t)((nbh ? 1 : 2) * per * nc);
            gram__statistic a;
            stat_of(s, X, n, &a);
            if (!a.v) {
                free_sketch(s);
                continue;
            }
            CHECK(a.sens_l1 == want_l1, "case %zu nbh %d: sens_l1 %llu, want %llu", ci, nbh,
                  (unsigned long long)a.sens_l1, (unsigned long long)want_l1);
            CHECK(a.sens_l2 >= sqrt((double)want_l1) && a.sens_l2 <= sqrt((double)want_l1) * (1 + 1e-15),
                  "case %zu nbh %d: sens_l2 %.17g, want sqrt(%llu)", ci, nbh, a.sens_l2, (unsigned long long)want_l1);
            uint64_t worst1 = 0;
            double worst2 = 0;
            int over = 0;
            if (nbh) {
                /* add/remove: drop each of the first rows in turn */
                for (int64_t drop = 0; drop < 5; drop++) {
                    memcpy(X2, X, (size_t)(n * d) * sizeof *X);
                    memcpy(X2 + drop * d, X + (n - 1) * d, (size_t)d * sizeof *X);
                    gram__statistic b;
                    stat_of(s, X2, n - 1, &b);
                    if (!b.v) continue;
                    uint64_t l1;
                    double l2;
                    diff_norms(&a, &b, &l1, &l2);
                    over += l1 > a.sens_l1 || l2 > a.sens_l2;
                    if (l1 > worst1) worst1 = l1;
                    if (l2 > worst2) worst2 = l2;
                    free(b.v);
                }
            } else {
                /* replace row 0 by: −x (far), a point in the same finest cell, each corner of the
                 * box (scaled into the ball by 1/√d), and compare every pair of these data sets */
                const int nrep = 2 + (1 << d);
                gram__statistic st[2 + 8];
                for (int t = 0; t < nrep; t++) {
                    memcpy(X2, X, (size_t)(n * d) * sizeof *X);
                    for (int64_t j = 0; j < d; j++) {
                        double v;
                        if (t == 0)
                            v = -X[j];
                        else if (t == 1)
                            v = X[j] + (X[j] < 0 ? 1e-9 : -1e-9);
                        else
                            v = ((t - 2) >> j & 1 ? R : -R) / (ball ? sqrt((double)d) * (1 + 1e-15) : 1);
                        X2[j] = v;
                    }
                    stat_of(s, X2, n, &st[t]);
                }
                for (int t = 0; t < nrep; t++)
                    for (int u = -1; u < t; u++) {
                        const gram__statistic *p = u < 0 ? &a : &st[u];
                        if (!st[t].v || !p->v) continue;
                        uint64_t l1;
                        double l2;
                        diff_norms(p, &st[t], &l1, &l2);
                        over += l1 > a.sens_l1 || l2 > a.sens_l2;
                        if (l1 > worst1) worst1 = l1;
                        if (l2 > worst2) worst2 = l2;
                    }
                for (int t = 0; t < nrep; t++) free(st[t].v);
            }
            CHECK(over == 0, "case %zu nbh %d: %d neighbouring pairs exceed the claimed sensitivity", ci, nbh, over);
            /* counts are exact: opposite corners (or any removal) attain the bound exactly */
            CHECK(worst1 == a.sens_l1, "case %zu nbh %d: worst l1 change %llu, claimed %llu", ci, nbh,
                  (unsigned long long)worst1, (unsigned long long)a.sens_l1);
            CHECK(worst2 <= a.sens_l2 && worst2 >= a.sens_l2 * (1 - 1e-15),
                  "case %zu nbh %d: worst l2 change %.17g, "
                  "claimed %.17g",
                  ci, nbh, worst2, a.sens_l2);
            free(a.v);
            free_sketch(s);
        }
    }
    free(X);
    free(X2);
}

/* ---- the levels rule and refused parameters ------------------------------------------------- */

static int levels_of(gram_private_sketch *s, const double *X, int64_t n)
{
    gram__statistic st;
    if (fam->statistic(ctx, s, X, n, &st)) return -1;
    const int64_t nb = st.m / s->dim;
    free(st.v);
    int L = 0;
    while ((((int64_t)2 << L) - 2 + (s->neighbours == GRAM_PRIVATE_ADD_REMOVE)) < nb) L++;
    return L;
}

static void test_levels_rule(void)
{
    check_rng r = {505};
    const int64_t d = 4;
    double *X = malloc(100000 * d * sizeof *X);
    random_box(&r, X, 100000, d, 1);
    const int64_t ns[] = {10, 1000, 100000};
    const double eps[] = {0.1, 1, 10};
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++) {
            gram_private_sketch *s =
                new_sketch(GRAM_PRIVATE_L1, GRAM_PRIVATE_PAPER, GRAM_PRIVATE_BOX, GRAM_PRIVATE_REPLACE, 1, d, 0);
            s->eps_main = eps[b];
            /* docs: the smallest L ≥ 1 with n/2^L ≤ (2dL/ε)·√L */
            int want = 1;
            while (ns[a] / ldexp(1, want) > 2.0 * d * want / eps[b] * sqrt(want)) want++;
            const int got = levels_of(s, X, ns[a]);
            CHECK(got == want, "n %lld eps %g: levels %d, want %d", (long long)ns[a], eps[b], got, want);
            free_sketch(s);
        }
    /* add/remove: the rule reads the released n, never the private one */
    gram_private_sketch *s =
        new_sketch(GRAM_PRIVATE_L1, GRAM_PRIVATE_PAPER, GRAM_PRIVATE_BOX, GRAM_PRIVATE_ADD_REMOVE, 1, d, 0);
    s->n_released = 100000;
    const int big = levels_of(s, X, 10);
    s->n_released = 10;
    const int small = levels_of(s, X, 100000);
    CHECK(big > small, "add/remove: levels from the released n (%d for n̂ = 1e5, %d for n̂ = 10)", big, small);
    free_sketch(s);
    /* the automatic depth is capped: at ε = 1e9 the rule alone asked 24 levels for d = 2 (a 537 MB
     * sketch); at most 16 levels and 2^22 values (d·(2^(L+1) - 2) counts) */
    const int64_t dims[] = {2, 64, 1000};
    for (int a = 0; a < 3; a++) {
        gram_private_sketch *t =
            new_sketch(GRAM_PRIVATE_L1, GRAM_PRIVATE_PAPER, GRAM_PRIVATE_BOX, GRAM_PRIVATE_REPLACE, 1, dims[a], 0);
        t->eps_main = 1e9;
        const int64_t n = 10;
        double *Z = calloc((size_t)(n * dims[a]), sizeof *Z);
        const int L = levels_of(t, Z, n);
        CHECK(L >= 1 && L <= 16 && dims[a] * (((int64_t)2 << L) - 2) <= ((int64_t)1 << 22),
              "d %lld at eps 1e9: automatic levels %d within the caps", (long long)dims[a], L);
        free(Z);
        free_sketch(t);
    }
    free(X);
}

static void test_refused(void)
{
    double X[6] = {0.1, 0.2, 0.3, -0.1, -0.2, -0.3};
    gram__statistic st;
    struct {
        gram_private_similarity f;
        gram_private_mechanism mech;
        double p, R;
        int L;
        int64_t d, k;
        const char *why;
    } bad[] = {
        {GRAM_PRIVATE_LPP, GRAM_PRIVATE_PAPER, 0, 1, 4, 3, 0, "p = 0"},
        {GRAM_PRIVATE_LPP, GRAM_PRIVATE_PAPER, 2.5, 1, 4, 3, 0, "p = 2.5"},
        {GRAM_PRIVATE_LPP, GRAM_PRIVATE_PAPER, NAN, 1, 4, 3, 0, "p = NaN"},
        {GRAM_PRIVATE_L1, GRAM_PRIVATE_PAPER, 1, 1, -1, 3, 0, "levels = -1"},
        {GRAM_PRIVATE_L1, GRAM_PRIVATE_PAPER, 1, 1, 31, 3, 0, "levels = 31"},
        {GRAM_PRIVATE_L1, GRAM_PRIVATE_PAPER, 1, 1, 7, (int64_t)1 << 20, 0, "d·2^(L+1) > 2^26"},
        {GRAM_PRIVATE_L1, GRAM_PRIVATE_PAPER, 1, 1, 0, (int64_t)1 << 25, 0, "d too large for one level"},
        {GRAM_PRIVATE_L2, GRAM_PRIVATE_PAPER, 2, 1, 7, 3, (int64_t)1 << 20, "k·2^(L+1) > 2^26"},
        {GRAM_PRIVATE_L2, GRAM_PRIVATE_PAPER, 2, 1, 4, 3, -5, "n_components < 0"},
        {GRAM_PRIVATE_L2, GRAM_PRIVATE_BASELINE, 2, 1, 4, 3, 8, "baseline for l2"},
        {GRAM_PRIVATE_LPP, GRAM_PRIVATE_BASELINE, 1, 1, 4, 3, 0, "baseline for lpp"},
        {GRAM_PRIVATE_L1, GRAM_PRIVATE_PAPER, 1, 0, 4, 3, 0, "radius 0"},
        {GRAM_PRIVATE_L1, GRAM_PRIVATE_PAPER, 1, -1, 4, 3, 0, "radius -1"},
        {GRAM_PRIVATE_L1, GRAM_PRIVATE_PAPER, 1, INFINITY, 4, 3, 0, "radius inf"},
        {GRAM_PRIVATE_GAUSSIAN, GRAM_PRIVATE_PAPER, 1, 1, 4, 3, 0, "a kernel"},
        {GRAM_PRIVATE_L1, GRAM_PRIVATE_PAPER, 1, 1, 0, 0, 0, "d = 0"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        gram_private_sketch *s =
            new_sketch(bad[i].f, bad[i].mech, GRAM_PRIVATE_BOX, GRAM_PRIVATE_REPLACE, bad[i].R, bad[i].d, bad[i].L);
        s->p = bad[i].p;
        s->n_components = bad[i].k;
        const int64_t n = bad[i].d == 3 ? 2 : 0;
        gram_status rc = fam->statistic(ctx, s, n ? X : NULL, n, &st);
        CHECK(rc == GRAM_EINVAL, "%s: statistic returned %d, want GRAM_EINVAL", bad[i].why, (int)rc);
        CHECK(strlen(gram_context_message(ctx)) > 10, "%s: no message", bad[i].why);
        gram__csprng g;
        gram__csprng_init_seed(&g, 1);
        rc = fam->fit(ctx, s, n ? X : NULL, n ? n : 1, &g);
        CHECK(rc == GRAM_EINVAL && s->values == NULL,
              "%s: fit returned %d (values %p), want GRAM_EINVAL and nothing "
              "released",
              bad[i].why, (int)rc, (void *)s->values);
        free_sketch(s);
    }
    /* the messages name the problem */
    gram_private_sketch *s =
        new_sketch(GRAM_PRIVATE_LPP, GRAM_PRIVATE_PAPER, GRAM_PRIVATE_BOX, GRAM_PRIVATE_REPLACE, 1, 3, 4);
    s->p = 3;
    fam->statistic(ctx, s, X, 2, &st);
    CHECK(strstr(gram_context_message(ctx), "p must be in (0, 2]") != NULL, "message: %s", gram_context_message(ctx));
    s->p = 1;
    s->levels = 25;
    fam->statistic(ctx, s, X, 2, &st);
    CHECK(strstr(gram_context_message(ctx), "levels") != NULL, "message: %s", gram_context_message(ctx));
    /* a prepared sketch whose values do not match its shape, or hold a NaN (a hostile file) */
    s->levels = 4;
    CHECK(fill_exact(s, X, 2), "fill");
    s->n_values--;
    CHECK_STATUS(fam->prepare(ctx, s), GRAM_EFORMAT);
    s->n_values++;
    s->values[3] = NAN;
    CHECK_STATUS(fam->prepare(ctx, s), GRAM_EFORMAT);
    s->levels = 0;
    CHECK_STATUS(fam->prepare(ctx, s), GRAM_EFORMAT);
    free_sketch(s);
}

/* ---- through the release: noise, ε → ∞, error slopes ---------------------------------------- */

/* A fitted sketch (noise from a test seed), or NULL after recording the failure. */
static gram_private_sketch *fit_seeded(gram_private_sketch *s, const double *X, int64_t n, uint64_t seed)
{
    gram__csprng g;
    gram__csprng_init_seed(&g, seed);
    gram_status rc = fam->fit(ctx, s, X, n, &g);
    if (!rc) rc = fam->prepare(ctx, s);
    gram__csprng_wipe(&g);
    CHECK(rc == GRAM_OK, "fit: %s", gram_context_message(ctx));
    return rc ? NULL : s;
}

static void test_fit_infinite_epsilon(void)
{
    const int64_t n = 300, d = 4, m = 10;
    check_rng r = {606};
    double *X = malloc(n * d * sizeof *X), *Y = malloc(m * d * sizeof *Y);
    double *a = malloc(m * sizeof *a), *b = malloc(m * sizeof *b);
    random_box(&r, X, n, d, 1);
    for (int64_t i = 0; i < m * d; i++) Y[i] = 2 * check_uniform(&r) - 1;
    for (int f = 0; f < 3; f++) {
        const gram_private_similarity sim = f == 0 ? GRAM_PRIVATE_L1 : f == 1 ? GRAM_PRIVATE_L2 : GRAM_PRIVATE_LPP;
        gram_private_sketch *s = new_sketch(sim, GRAM_PRIVATE_PAPER, GRAM_PRIVATE_BOX, GRAM_PRIVATE_REPLACE, 1, d, 10);
        gram_private_sketch *e = new_sketch(sim, GRAM_PRIVATE_PAPER, GRAM_PRIVATE_BOX, GRAM_PRIVATE_REPLACE, 1, d, 0);
        s->p = e->p = f == 2 ? 1.5 : s->p;
        s->n_released = n;
        s->eps_main = s->epsilon = 1e6;
        if (fit_seeded(s, X, n, 7)) {
            CHECK(s->levels >= 1 && s->n_values > 0 && strlen(s->sensitivity) > 20, "fit filled the sketch");
            e->levels = s->levels;
            e->n_components = s->n_components;
            if (fill_exact(e, X, n)) {
                fam->query(ctx, s, Y, m, a);
                fam->query(ctx, e, Y, m, b);
                ld worst = 0;
                for (int64_t i = 0; i < m; i++) worst = fmaxl(worst, fabsl((ld)a[i] - b[i]) / fabsl((ld)b[i]));
                /* b = sens/ε ≈ 1e-5: P(any of the values nonzero) ≈ 2m·e^(-1e5) */
                CHECK(worst < 1e-12, "sim %d: eps 1e6 query differs from the exact counts' by %.3Lg", f, worst);
            }
        }
        free_sketch(s);
        free_sketch(e);
    }
    /* levels = 0: the fit stores the depth its rule chose (n = 300, d = 4, ε = 1: n/2^L ≤ 8L·√L
     * first at L = 3), and the release used the sensitivity of that depth */
    gram_private_sketch *s =
        new_sketch(GRAM_PRIVATE_L1, GRAM_PRIVATE_PAPER, GRAM_PRIVATE_BOX, GRAM_PRIVATE_REPLACE, 1, d, 0);
    s->n_released = n;
    if (fit_seeded(s, X, n, 8)) {
        CHECK(s->levels == 3, "levels chosen %d, want 3", (int)s->levels);
        CHECK(s->n_values == d * 14 && s->rec.sens_l1 == (uint64_t)(2 * d * 3), "n_values %lld, sens_l1 %llu",
              (long long)s->n_values, (unsigned long long)s->rec.sens_l1);
    }
    free_sketch(s);
    free(X);
    free(Y);
    free(a);
    free(b);
}

/* The tree as a linear model, solved densely in long double (independent of the family's
 * two-pass recursion): unknowns the B leaf counts x; one observation per stored node, the sum of
 * the leaves under it, with iid noise. Under replace-one the root is not observed but known
 * (Σx = n): a constraint, solved through the KKT system. ls_solve(rhs) returns u = P·rhs where P
 * maps Aᵀb (and n) to the least-squares x̂: x̂ = ls_solve(Aᵀb) (+ the constraint's part). */
typedef struct {
    int L, known;
    int64_t B, rows;
    ld *A;
} tree_ls;

static tree_ls tree_model(int L, int known)
{
    tree_ls t = {L, known, (int64_t)1 << L, 0, NULL};
    t.rows = ((int64_t)2 << L) - (known ? 2 : 1);
    t.A = calloc((size_t)(t.rows * t.B), sizeof(ld));
    int64_t row = 0;
    for (int l = known ? 1 : 0; l <= L; l++)
        for (int64_t i = 0; i < ((int64_t)1 << l); i++, row++) {
            const int64_t w = t.B >> l;
            for (int64_t c = i * w; c < (i + 1) * w; c++) t.A[row * t.B + c] = 1;
        }
    return t;
}

/* Solves [AᵀA 1; 1ᵀ 0][x; μ] = [rhs; c] (known root) or AᵀA x = rhs, by Gaussian elimination with
 * partial pivoting. */
static void ls_solve(const tree_ls *t, const ld *rhs, ld c, ld *x)
{
    const int64_t B = t->B, m = B + (t->known ? 1 : 0);
    ld *K = calloc((size_t)(m * (m + 1)), sizeof(ld));
    for (int64_t i = 0; i < B; i++) {
        for (int64_t j = 0; j < B; j++) {
            ld sum = 0;
            for (int64_t r = 0; r < t->rows; r++) sum += t->A[r * B + i] * t->A[r * B + j];
            K[i * (m + 1) + j] = sum;
        }
        if (t->known) K[i * (m + 1) + B] = K[B * (m + 1) + i] = 1;
        K[i * (m + 1) + m] = rhs[i];
    }
    if (t->known) K[B * (m + 1) + m] = c;
    for (int64_t k = 0; k < m; k++) {
        int64_t p = k;
        for (int64_t i = k + 1; i < m; i++)
            if (fabsl(K[i * (m + 1) + k]) > fabsl(K[p * (m + 1) + k])) p = i;
        for (int64_t j = 0; j <= m; j++) {
            const ld tmp = K[k * (m + 1) + j];
            K[k * (m + 1) + j] = K[p * (m + 1) + j];
            K[p * (m + 1) + j] = tmp;
        }
        for (int64_t i = k + 1; i < m; i++) {
            const ld f = K[i * (m + 1) + k] / K[k * (m + 1) + k];
            for (int64_t j = k; j <= m; j++) K[i * (m + 1) + j] -= f * K[k * (m + 1) + j];
        }
    }
    for (int64_t k = m - 1; k >= 0; k--) {
        ld sum = K[k * (m + 1) + m];
        for (int64_t j = k + 1; j < m; j++) sum -= K[k * (m + 1) + j] * K[j * (m + 1) + m];
        K[k * (m + 1) + m] = sum / K[k * (m + 1) + k];
    }
    for (int64_t i = 0; i < B; i++) x[i] = K[i * (m + 1) + m];
    free(K);
}

/* The family's tree queries are the least-squares estimate's: for released values that are
 * arbitrary reals (not consistent counts), the ℓ1 and ℓp^p answers equal Σ_c x̂_c g(|m_c − y|) with
 * x̂ from the dense solve. */
static void test_consistency_is_least_squares(void)
{
    check_rng r = {1111};
    const double R = 1.25, ys[] = {-2, -1.25, -0.3, 0, 0.01, 0.7, 1.25, 3};
    for (int known = 0; known < 2; known++)
        for (int L = 1; L <= 5; L++)
            for (int f = 0; f < 2; f++) {
                const int64_t d = 2;
                gram_private_sketch *s =
                    new_sketch(f ? GRAM_PRIVATE_LPP : GRAM_PRIVATE_L1, GRAM_PRIVATE_PAPER, GRAM_PRIVATE_BOX,
                               known ? GRAM_PRIVATE_REPLACE : GRAM_PRIVATE_ADD_REMOVE, R, d, L);
                s->p = f ? 1.7 : 1;
                tree_ls t = tree_model(L, known);
                s->n_values = d * t.rows;
                s->values = malloc((size_t)s->n_values * sizeof(double));
                for (int64_t i = 0; i < s->n_values; i++) s->values[i] = 20 * check_normal(&r) + 5;
                s->n_released = 37.5;
                CHECK_STATUS(fam->prepare(ctx, s), GRAM_OK);
                ld *rhs = calloc((size_t)t.B, sizeof(ld)), *x = calloc((size_t)(d * t.B), sizeof(ld));
                for (int64_t j = 0; j < d; j++) {
                    for (int64_t c = 0; c < t.B; c++) {
                        rhs[c] = 0;
                        for (int64_t row = 0; row < t.rows; row++)
                            rhs[c] += t.A[row * t.B + c] * s->values[j * t.rows + row];
                    }
                    ls_solve(&t, rhs, 37.5L, x + j * t.B);
                }
                double Y[16], out[8];
                for (int q = 0; q < 8; q++) Y[2 * q] = ys[q], Y[2 * q + 1] = ys[7 - q];
                CHECK_STATUS(fam->query(ctx, s, Y, 8, out), GRAM_OK);
                const ld h = 2 * (ld)R / t.B;
                for (int q = 0; q < 8; q++) {
                    ld want = 0, scale = 0;
                    for (int64_t j = 0; j < d; j++)
                        for (int64_t c = 0; c < t.B; c++) {
                            const ld g = powl(fabsl(-(ld)R + (c + 0.5L) * h - Y[2 * q + j]), s->p);
                            want += x[j * t.B + c] * g;
                            scale += fabsl(x[j * t.B + c]) * g;
                        }
                    CHECK(fabsl(out[q] - want) <= 1e-12L * scale + 1e-12L,
                          "known %d L %d %s y %g: %.17g, least squares "
                          "%.17Lg",
                          known, L, f ? "lpp" : "l1", ys[q], out[q], want);
                }
                free(rhs);
                free(x);
                free(t.A);
                free_sketch(s);
            }
}

/* Var of the ℓ1 query at y of a tree sketch (root known or observed) with iid node noise of variance vz: the
 * error is gᵀ(x̂ − x) = Σ_rows c_row·Z_row with c = A·P·g (g_c = |m_c − y_j|, P from the dense
 * least-squares solve), so Var = vz·Σc²; the error's excess kurtosis is kz·Σc⁴/(Σc²)² when the node
 * noise has excess kurtosis kz. */
static ld query_variance(int L, int known, int64_t d, double R, const double *y, ld vz, ld kz, ld *kurt)
{
    tree_ls t = tree_model(L, known);
    const ld h = 2 * (ld)R / t.B;
    ld *g = malloc((size_t)t.B * sizeof(ld)), *u = malloc((size_t)t.B * sizeof(ld));
    ld s2 = 0, s4 = 0;
    for (int64_t j = 0; j < d; j++) {
        for (int64_t c = 0; c < t.B; c++) g[c] = fabsl(-(ld)R + (c + 0.5L) * h - y[j]);
        ls_solve(&t, g, 0, u);
        for (int64_t row = 0; row < t.rows; row++) {
            ld cr = 0;
            for (int64_t c = 0; c < t.B; c++) cr += t.A[row * t.B + c] * u[c];
            s2 += cr * cr, s4 += cr * cr * cr * cr;
        }
    }
    free(g);
    free(u);
    free(t.A);
    *kurt = kz * s4 / (s2 * s2);
    return vz * s2;
}

/* Variance and excess kurtosis of the release's integer noise, by summing its pmf in long double:
 * discrete Laplace P(x) ∝ e^(−|x|/b), b = num/den; discrete Gaussian P(x) ∝ e^(−x²/(2σ²)), σ² = num/den. */
static void noise_moments(const gram__release_record *rec, ld *var, ld *exkurt)
{
    const ld par = (ld)rec->num / rec->den;
    const ld scale = rec->kind == GRAM__NOISE_LAPLACE ? par : sqrtl(par);
    const int64_t top = (int64_t)(80 * scale) + 50;
    ld z = 0, m2 = 0, m4 = 0;
    for (int64_t x = -top; x <= top; x++) {
        const ld w = rec->kind == GRAM__NOISE_LAPLACE ? expl(-fabsl((ld)x) / par) : expl(-(ld)x * x / (2 * par));
        z += w, m2 += w * x * x, m4 += w * x * x * x * x;
    }
    *var = m2 / z;
    *exkurt = (m4 / z) / (*var * *var) - 3;
}

static void test_noise_moments(void)
{
    const int64_t n = 500, d = 3;
    const int L = 6, T = 400;
    const double R = 1;
    check_rng r = {707};
    double *X = malloc(n * d * sizeof *X);
    random_box(&r, X, n, d, R);
    const double ys[2][3] = {{0.13, -0.52, 0.77}, {1.4, -2.0, 0.0}};
    /* pure ε under replace-one and add/remove; (ε, δ) with the discrete Gaussian */
    const struct {
        gram_private_neighbours nb;
        double delta;
    } cfg[] = {{GRAM_PRIVATE_REPLACE, 0}, {GRAM_PRIVATE_ADD_REMOVE, 0}, {GRAM_PRIVATE_REPLACE, 1e-5}};
    for (int c = 0; c < 3; c++) {
        gram_private_sketch *e = new_sketch(GRAM_PRIVATE_L1, GRAM_PRIVATE_PAPER, GRAM_PRIVATE_BOX, cfg[c].nb, R, d, L);
        if (!fill_exact(e, X, n)) {
            free_sketch(e);
            continue;
        }
        double exact[2];
        fam->query(ctx, e, &ys[0][0], 2, exact);
        ld sum[2] = {0, 0}, sq[2] = {0, 0};
        gram__release_record rec = {0};
        int ok = 1;
        for (int t = 0; t < T && ok; t++) {
            gram_private_sketch *s =
                new_sketch(GRAM_PRIVATE_L1, GRAM_PRIVATE_PAPER, GRAM_PRIVATE_BOX, cfg[c].nb, R, d, L);
            s->n_released = n;
            s->delta = s->delta_main = cfg[c].delta;
            if (!fit_seeded(s, X, n, 1000 + (uint64_t)t)) {
                ok = 0;
            } else {
                double got[2];
                fam->query(ctx, s, &ys[0][0], 2, got);
                for (int q = 0; q < 2; q++) {
                    const ld err = (ld)got[q] - exact[q];
                    sum[q] += err, sq[q] += err * err;
                }
                rec = s->rec;
            }
            free_sketch(s);
        }
        free_sketch(e);
        if (!ok) continue;
        const int known = cfg[c].nb == GRAM_PRIVATE_REPLACE;
        CHECK(rec.kind == (cfg[c].delta > 0 ? GRAM__NOISE_GAUSSIAN : GRAM__NOISE_LAPLACE) && rec.den > 0,
              "config %d: release kind %d", c, (int)rec.kind);
        if (rec.kind == GRAM__NOISE_LAPLACE)
            CHECK((ld)rec.num / rec.den >= (known ? 2.0L * d * L : (ld)d * (L + 1)), "config %d: b %.17Lg below sens/ε",
                  c, (ld)rec.num / rec.den);
        ld vz, kz;
        noise_moments(&rec, &vz, &kz);
        for (int q = 0; q < 2; q++) {
            ld kurt;
            const ld var = query_variance(L, known, d, R, ys[q], vz, kz, &kurt);
            const ld mean = sum[q] / T, svar = (sq[q] - T * mean * mean) / (T - 1);
            /* mean: z ≤ 4 (two-sided false alarm 6e-5); variance: s²/σ² within 4 sd of 1, sd² =
             * 2/(T−1) + κ/T for an error of excess kurtosis κ (normal approximation of s²; 6e-5).
             * Six such pairs of checks: a false alarm about once in 1,400 runs at worst. */
            const ld z = mean / sqrtl(var / T);
            const ld sd = sqrtl(2.0L / (T - 1) + kurt / T);
            printf("noise, config %d (%s, delta %g) query %d: mean z %.2Lf, variance / derived %.3Lf (4 sd %.3Lf)\n", c,
                   known ? "replace" : "add/remove", cfg[c].delta, q, z, svar / var, 4 * sd);
            CHECK(fabsl(z) <= 4, "config %d query %d: mean error %.4Lg, z = %.3Lg", c, q, mean, z);
            CHECK(fabsl(svar / var - 1) <= 4 * sd,
                  "config %d query %d: error variance %.5Lg, derived %.5Lg (ratio %.4Lg, "
                  "4 sd = %.3Lg)",
                  c, q, svar, var, svar / var, 4 * sd);
        }
    }
    free(X);
}

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* median over seeds of the RMS error over m queries against the naive sum */
static double median_error(gram_private_similarity f, gram_private_mechanism mech, const double *X, int64_t n,
                           int64_t d, const double *Y, int64_t m, const ld *want, double eps, int L, int T)
{
    double *err = malloc((size_t)T * sizeof *err), *out = malloc((size_t)m * sizeof *out);
    int got = 0;
    for (int t = 0; t < T; t++) {
        gram_private_sketch *s = new_sketch(f, mech, GRAM_PRIVATE_BOX, GRAM_PRIVATE_REPLACE, 1, d, L);
        s->n_released = n;
        s->eps_main = s->epsilon = eps;
        if (fit_seeded(s, X, n, 5000 + (uint64_t)t)) {
            fam->query(ctx, s, Y, m, out);
            ld sq = 0;
            for (int64_t i = 0; i < m; i++) sq += ((ld)out[i] - want[i]) * ((ld)out[i] - want[i]);
            err[got++] = (double)sqrtl(sq / m);
        }
        free_sketch(s);
    }
    qsort(err, (size_t)got, sizeof *err, cmp_double);
    const double med = got ? err[got / 2] : NAN;
    free(err);
    free(out);
    return med;
}

static double slope(const double *x, const double *y, int k)
{
    double mx = 0, my = 0, sxy = 0, sxx = 0;
    for (int i = 0; i < k; i++) mx += log(x[i]) / k, my += log(y[i]) / k;
    for (int i = 0; i < k; i++) sxy += (log(x[i]) - mx) * (log(y[i]) - my), sxx += (log(x[i]) - mx) * (log(x[i]) - mx);
    return sxy / sxx;
}

static void test_error_slopes(void)
{
    const int64_t n = 1000, m = 16, dmax = 32;
    const int L = 8, T = 31;
    check_rng r = {808};
    double *X = malloc(n * dmax * sizeof *X), *Y = malloc(m * dmax * sizeof *Y);
    ld *want = malloc(m * sizeof *want);
    random_box(&r, X, n, dmax, 1);
    for (int64_t i = 0; i < m * dmax; i++) Y[i] = 2 * check_uniform(&r) - 1;

    /* against ε at d = 4: the noise scale is sens/ε, so the error ∝ 1/ε; the discretisation part
     * (≈ √n·h/√12 per coordinate for spread data, ~0.1 here) is far below the noise at ε = 10
     * (~30). Tolerance 0.15 on the slope: ≈ 5 sd of its sampling spread (medians of 31 seeds). */
    const double eps[] = {0.1, 0.3, 1, 3, 10};
    double e_paper[5], e_base[5];
    const int64_t d0 = 4;
    double *X4 = malloc(n * d0 * sizeof *X4), *Y4 = malloc(m * d0 * sizeof *Y4);
    for (int64_t i = 0; i < n; i++) memcpy(X4 + i * d0, X + i * dmax, d0 * sizeof *X);
    for (int64_t i = 0; i < m; i++) memcpy(Y4 + i * d0, Y + i * dmax, d0 * sizeof *Y);
    for (int64_t i = 0; i < m; i++) want[i] = naive_lpp(X4, n, d0, Y4 + i * d0, 1);
    for (int k = 0; k < 5; k++) {
        e_paper[k] = median_error(GRAM_PRIVATE_L1, GRAM_PRIVATE_PAPER, X4, n, d0, Y4, m, want, eps[k], L, T);
        e_base[k] = median_error(GRAM_PRIVATE_L1, GRAM_PRIVATE_BASELINE, X4, n, d0, Y4, m, want, eps[k], L, T);
    }
    const double s_eps = slope(eps, e_paper, 5);
    printf("l1 error against epsilon (d = 4, n = 1000, 2^8 cells, median over %d seeds of the RMS over %lld queries; "
           "sums are ~%.0f):\n  eps     paper       baseline (HR14 reading)\n",
           T, (long long)m, (double)want[0]);
    for (int k = 0; k < 5; k++) printf("  %-6g  %-10.4g  %-10.4g\n", eps[k], e_paper[k], e_base[k]);
    printf("  slopes: paper %.3f, baseline %.3f\n", s_eps, slope(eps, e_base, 5));
    CHECK(fabs(s_eps + 1) <= 0.15, "error against epsilon: log-log slope %.3f, want -1 +- 0.15", s_eps);

    /* against d at ε = 1: sens = 2dL so each coordinate's error ∝ d, and d independent coordinates
     * add as √d: d^1.5 (the paper's). Tolerance 0.2: ≈ 4.5 sd. */
    const double ds[] = {2, 4, 8, 16, 32};
    double e_d[5], e_db[5];
    for (int k = 0; k < 5; k++) {
        const int64_t d = (int64_t)ds[k];
        double *Xd = malloc(n * d * sizeof *Xd), *Yd = malloc(m * d * sizeof *Yd);
        for (int64_t i = 0; i < n; i++) memcpy(Xd + i * d, X + i * dmax, d * sizeof *X);
        for (int64_t i = 0; i < m; i++) memcpy(Yd + i * d, Y + i * dmax, d * sizeof *Y);
        for (int64_t i = 0; i < m; i++) want[i] = naive_lpp(Xd, n, d, Yd + i * d, 1);
        e_d[k] = median_error(GRAM_PRIVATE_L1, GRAM_PRIVATE_PAPER, Xd, n, d, Yd, m, want, 1, L, T);
        e_db[k] = median_error(GRAM_PRIVATE_L1, GRAM_PRIVATE_BASELINE, Xd, n, d, Yd, m, want, 1, L, T);
        free(Xd);
        free(Yd);
    }
    const double s_d = slope(ds, e_d, 5);
    printf("l1 error against d (eps = 1):\n  d       paper       baseline\n");
    for (int k = 0; k < 5; k++) printf("  %-6g  %-10.4g  %-10.4g\n", ds[k], e_d[k], e_db[k]);
    printf("  slopes: paper %.3f, baseline %.3f\n", s_d, slope(ds, e_db, 5));
    CHECK(fabs(s_d - 1.5) <= 0.2, "error against d: log-log slope %.3f, want 1.5 +- 0.2", s_d);
    free(X);
    free(Y);
    free(X4);
    free(Y4);
    free(want);
}

/* End to end through gram_private_fit: rows outside the box are clamped onto it and counted; at
 * ε = 1e6 the released sums are the clamped data's, within the discretisation bound. */
static void test_public_api(void)
{
    const int64_t n = 200, d = 3, m = 8;
    check_rng r = {909};
    double *X = malloc(n * d * sizeof *X), *Xc = malloc(n * d * sizeof *Xc), *Y = malloc(m * d * sizeof *Y);
    double out[8];
    for (int64_t i = 0; i < n * d; i++) {
        X[i] = 3 * (2 * check_uniform(&r) - 1);
        Xc[i] = X[i] > 2 ? 2 : X[i] < -2 ? -2 : X[i];
    }
    int64_t outside = 0;
    for (int64_t i = 0; i < n; i++) {
        int o = 0;
        for (int64_t j = 0; j < d; j++) o |= fabs(X[i * d + j]) > 2;
        outside += o;
    }
    for (int64_t i = 0; i < m * d; i++) Y[i] = 2 * (2 * check_uniform(&r) - 1);
    gram_private_options o;
    gram_private_options_init(&o);
    o.radius = 2;
    o.domain = GRAM_PRIVATE_BOX;
    o.levels = 9;
    o.has_noise_seed = 1;
    o.noise_seed = 3;
    for (int f = 0; f < 2; f++) {
        gram_private_sketch *s = NULL;
        gram_array xa = gram_array_f64(X, n, d), ya = gram_array_f64(Y, m, d), oa = gram_array_f64(out, m, 1);
        gram_status rc = gram_private_fit(ctx, &xa, f ? GRAM_PRIVATE_LPP : GRAM_PRIVATE_L1, 1e6, 0, &o, &s);
        CHECK(rc == GRAM_OK, "gram_private_fit: %s", gram_context_message(ctx));
        if (rc) continue;
        CHECK(gram_private_sketch_n_clipped(s) == outside, "clipped %lld, want %lld",
              (long long)gram_private_sketch_n_clipped(s), (long long)outside);
        CHECK_STATUS(gram_private_query(ctx, s, &ya, &oa), GRAM_OK);
        const double h = 4.0 / 512;
        for (int64_t i = 0; i < m; i++) {
            const ld want = naive_lpp(Xc, n, d, Y + i * d, 1);
            CHECK(fabsl(out[i] - want) <= n * d * h / 2, "query %lld: %.17g, clamped data's sum %.17Lg", (long long)i,
                  out[i], want);
        }
        gram_private_sketch_destroy(s);
    }
    free(X);
    free(Xc);
    free(Y);
}

int main(void)
{
    gram_context_create(&ctx);
    test_tree_counts();
    test_noiseless_l1_lpp();
    test_noiseless_l2();
    test_sensitivity();
    test_levels_rule();
    test_refused();
    test_consistency_is_least_squares();
    /* these need gram__release (noise.c) */
    test_fit_infinite_epsilon();
    test_noise_moments();
    test_error_slopes();
    test_public_api();
    gram_context_destroy(ctx);
    return check_done();
}
