/* fgt: the improved fast Gauss transform (docs/approx.md, "Fast Gauss transform").
 *
 * C. Yang, R. Duraiswami, N. A. Gumerov and L. Davis, "Improved fast Gauss transform and efficient
 * kernel density estimation" (ICCV 2003) and the SIAM version by the first three; the error
 * bounds and the choice of parameters follow V. C. Raykar, C. Yang, R. Duraiswami and
 * N. A. Gumerov, "Fast computation of sums of Gaussians in high dimensions" (UMIACS-TR-2005-69),
 * whose code became FIGTree (V. Morariu et al., NIPS 2008).
 *
 * Units. gram's gaussian is exp(−|u − v|²/(2ℓ²)) (ARD: ℓ per dimension). With the coordinates
 * z_d = (u_d − m_d)/(√2·ℓ_d), m the midpoint of X's range (so that far-from-origin data keep
 * their differences), it is exp(−|z_y − z_x|²): the papers' exp(−|y − x|²/h²) with h = √2·ℓ, and
 * h = 1 in z. Every radius below is in z units (the papers' r/h).
 *
 * Expansion. X is split into K clusters by Gonzalez's farthest-point rule (the first centre is
 * X's first row; each next one is the point farthest from the centres so far), centres c_k,
 * radii r_k = max |x − c_k| over the cluster. For x in cluster k, a = x − c_k, b = y − c_k,
 *     exp(−|y − x|²) = e^{−|a|²} e^{−|b|²} e^{2 a·b},
 * and e^{2a·b} = Σ_n (2a·b)^n/n! = Σ_α (2^{|α|}/α!) a^α b^α (multinomial theorem), truncated at
 * total degree |α| < p: r(p, D) = C(p − 1 + D, D) monomials in graded lexicographic order. So
 *     Σ_{x in k} w_x exp(−|y − x|²) ≈ e^{−|b|²} Σ_{|α|<p} C_α b^α,
 *     C_α = (2^{|α|}/α!) Σ_{x in k} w_x e^{−|a|²} a^α,
 * K·r·V coefficients computed once, each query evaluated against the clusters near it.
 *
 * Truncation bound (per unit weight, |a| ≤ r_k, |b| = β, u = 2a·b, |u| ≤ 2r_kβ). The remainder
 * R_p(u) = Σ_{n≥p} u^n/n! obeys both
 *     |R_p(u)| ≤ |u|^p/p! · max(1, e^u)                      (Lagrange's form), and
 *     |R_p(u)| ≤ |u|^p/p! · (p + 1)/(p + 1 − |u|)  for |u| < p + 1  (n!/p! ≥ (p + 1)^{n−p}).
 * Times e^{−|a|²−β²}, the first gives (2r_kβ)^p/p! · e^{−(β − r_k)₊²} (the papers' bound: with
 * a ≤ r_k, (|a| − β)² ≥ (β − r_k)₊²), the second e^{−β²}(2β)^p/p! · m_p(r_k) · (p + 1)/(p + 1 −
 * 2r_kβ), m_p(r) = max_{a≤r} a^p e^{−a²} (r^p e^{−r²} while r² ≤ p/2). The bound taken is the
 * smaller. The papers' a priori form (2^p/p!)(r_x/h)^p(r_y/h)^p + e^{−(r_y/h)²} is the first with
 * β ≤ r_y, plus the cut-off below; in gram's ℓ, r/h = r/(√2·ℓ).
 *
 * Cut-off. A cluster evaluated for no query of a block contributes its interval: every term of
 * it is w·k with 0 ≤ k ≤ e^{−(β − r_k)₊²} = kmax, so its sum lies in [−kmax·wn, kmax·wp] (wp, wn
 * the sums of the positive weights and of the magnitudes of the negative ones), which is taken by
 * its midpoint, error kmax·(wp + wn)/2. An evaluated cluster uses whichever of the two has the
 * smaller bound for that query and column. The cut-off radius r_y, e^{−r_y²} = ε, decides which
 * clusters a block evaluates (those within r_k + r_y of one of its queries).
 *
 * Rounding (outside the papers' bounds, inside gram's). Σ_α (2^{|α|}/α!)|a^α||b^α| ≤ e^{2|a||b|},
 * so the absolute values of everything summed for a cluster add to at most Σ|w|·kmax, and the
 * rounding of the coefficients, the monomials and the sums is below (n_k + r + 2p + 2D + K +
 * 16)·ε_mach times that; rounding the coordinates moves t = |y − x|² by at most 2(D + 4)ε·t +
 * 16ε·Σ_d R_d² (R_d the largest |z_d| over X and Y), which moves k by at most k·that. Both are
 * added to each cluster's bound.
 *
 * Parameters (docs/approx.md): the tolerance a query needs is atol + rtol·|exact|, unknown before
 * the sum; a pilot of up to 64 queries spread over Y is summed exactly (their results are kept,
 * err 0), and for a few low quantiles s of their |exact| the target per unit weight is
 * ε = (atol + rtol·s)/(2·Σ|w|) (the queries below s are expected to fail the check and be summed
 * exactly). Gonzalez's centres are nested (the first K of its run are its run for K), so one run
 * gives r_x(K) = the largest radius for every K; at checkpoints K = 1, 2, 3, 4, 6, 8, 11, ... the
 * smallest p meeting ε for every cluster radius ≤ r_x(K) and query distance ≤ r_x + r_y, and the
 * pilot's count of clusters within r_x + r_y, give the predicted cost (the cost model below);
 * the cheapest (K, ε) is run. The run stops when its clustering has cost more than the best
 * prediction. opt.order > 0 fixes p (K then grows until p meets ε).
 *
 * Check. Per query and column the bound err (the clusters' bounds added) must satisfy
 * err ≤ atol + rtol·(|out| − err), which suffices (|exact| ≥ |out| − err); a query that fails is
 * summed exactly by gram_kernel_sum against all of X (err 0). Queries run in blocks of BLOCK
 * (ordered by their nearest centre) on OpenMP threads; every value depends on its query alone,
 * and the exact sums are engine calls, so results are bit-identical for any thread count. */
#include "approx.h"

#include "../engine/engine.h"
#include "../base/progress.h"
#include "../kernel/kernel.h"

#include <float.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

enum {
    BLOCK = 32,      /* queries evaluated together against a cluster */
    PILOT = 64,      /* queries summed exactly to set the target */
    P_MAX = 64,      /* the largest order (the option's limit) */
    K_CAP = 8192,    /* the most clusters */
    CHUNKS = 64,     /* fixed chunks of X for Gonzalez's argmax (thread-count independent) */
    SUB_X = 4096,    /* rows of X the cost function's clustering sees */
    NEPS = 6         /* pilot quantiles tried */
};
/* The most monomials per cluster (per-thread buffers hold BLOCK of them) and the largest
 * coefficient table, K·r·V doubles: beyond them fgt refuses (GRAM_ENOMEM) before allocating. */
#define R_MAX ((int64_t)1 << 16)
#define LN2 0.69314718055994530942
#define SQRT1_2 0.70710678118654752440
#define COEF_MAX_BYTES ((double)((int64_t)1 << 30))

/* The cost model (docs/approx.md): seconds on one thread of the development machine, divided by
 * one exact pair of gram_kernel_sum at this D. Measured by bench-style runs of this file's phases
 * (see the report in docs/approx.md): PAIR_A + PAIR_B·D ns per exact pair, and per unit of work
 * below. */
#define PAIR_A 0.80e-9    /* exact pair: fixed part (s); gram_kernel_sum, gaussian, one thread, CPU */
#define PAIR_B 0.043e-9   /* exact pair: per dimension (s); time on a quiet machine: 0.86, 0.90, 1.24,
                             1.57, 3.55 ns at D = 2, 3, 8, 16, 64 (the busy machine's first fit,
                             1.15 + 0.10·D, made fgt look ~1.5× cheaper than it is) */
#define C_GONZ 0.45e-9    /* clustering: per point, centre and (dimension + 1) */
#define C_COEF 0.55e-9    /* coefficients: per point, monomial and (column + 1) */
#define C_DIST 0.45e-9    /* query–centre distances: per query, centre and (dimension + 1), twice */
#define C_PAIR 18e-9      /* per query and cluster: bounds (a log, an exp), intervals */
#define C_EVAL 0.45e-9    /* evaluation: per query, evaluated cluster, monomial and (column + 1) */

int gram__approx_fgt_supports(const gram_kernel *k, int64_t D, const char **why)
{
    (void)D;
    const char *w = NULL;
    if (!k) w = "no kernel";
    else if (k->n_leaves != 1 || k->n_ops < 1 || k->ops[0].kind != GRAM_OP_LEAF)
        w = "the fast Gauss transform sums a single gaussian (optionally times a constant > 0), not a sum, product "
            "or power";
    else {
        for (int o = 1; o < k->n_ops && !w; o++)
            if (k->ops[o].kind != GRAM_OP_SCALE || !(k->ops[o].c > 0))
                w = "the fast Gauss transform sums a single gaussian (optionally times a constant > 0), not a sum, "
                    "product or power";
        if (!w && k->leaves[0].family != GRAM_GAUSSIAN)
            w = "the fast Gauss transform sums gaussian kernels only (its Taylor series is the gaussian's)";
    }
    if (why) *why = w;
    return w == NULL;
}

/* r(p, D) = C(p − 1 + D, D), or R_MAX + 1 when larger. */
static int64_t n_terms(int p, int64_t D)
{
    const int64_t k = (int64_t)(p - 1) < D ? (int64_t)(p - 1) : D, n = (int64_t)(p - 1) + D;
    int64_t c = 1;
    for (int64_t i = 1; i <= k; i++) {
        int64_t t;
        if (!gram__mul_i64(c, n - k + i, &t)) return R_MAX + 1;
        c = t / i; /* exact: c·(n−k+i)/i is C(n−k+i, i) */
        if (c > R_MAX) return R_MAX + 1;
    }
    return c;
}

static double lfact(int p) { return lgamma((double)p + 1.0); }

/* The truncation bound per unit weight (top of the file) for order p, cluster radius r, query
 * distance beta from the centre. */
double gram__approx_fgt_trunc_bound(int p, double r, double beta)
{
    if (!(r > 0) || !(beta > 0)) return 0.0; /* a·b = 0: the degree-0 term is the whole series */
    const double lb = log(beta), lr = log(r), lf = lfact(p), u = 2.0 * r * beta, g = beta > r ? beta - r : 0.0;
    double e = (double)p * (LN2 + lr + lb) - lf - g * g;
    if (u < (double)p + 1.0) {
        const double m = r * r <= 0.5 * p ? p * lr - r * r : 0.5 * p * (log(0.5 * p) - 1.0);
        const double s = -beta * beta + p * (LN2 + lb) - lf + m + log(((double)p + 1.0) / ((double)p + 1.0 - u));
        if (s < e) e = s;
    }
    return exp(e);
}

/* The smallest order whose bound is ≤ eps for every cluster radius ≤ rx and query distance
 * ≤ rx + ry (scanned on a grid: it only sets the work, every query's own bound is checked);
 * P_MAX + 1 if none (or if the fixed order does not). */
static int choose_p(double rx, double ry, double eps, int fixed)
{
    const int G = 24;
    for (int p = fixed ? fixed : 1; p <= P_MAX; p++) {
        double worst = 0.0;
        for (int g = 1; g <= G && worst <= eps; g++) {
            const double t = gram__approx_fgt_trunc_bound(p, rx, (rx + ry) * g / G);
            if (t > worst) worst = t;
        }
        if (worst <= eps) return p;
        if (fixed) break;
    }
    return P_MAX + 1;
}

/* The monomials of z (D values, each at stride B for a block of B points) of degree < p, graded
 * lexicographic (Yang et al.'s scheme): a term of degree n is z_d times a term of degree n − 1
 * whose variables are all ≥ d, so each appears once. mono is r × B; heads holds D entries. */
static void monomials(const double *z, int64_t D, int p, int64_t B, int64_t nb, double *mono, int64_t *heads)
{
    for (int64_t b = 0; b < nb; b++) mono[b] = 1.0;
    for (int64_t d = 0; d < D; d++) heads[d] = 0;
    int64_t t = 1;
    for (int n = 1; n < p; n++) {
        const int64_t end = t;
        for (int64_t d = 0; d < D; d++) {
            const int64_t h = heads[d];
            heads[d] = t;
            const double *zd = z + d * B;
            for (int64_t j = h; j < end; j++, t++) {
                const double *src = mono + j * B;
                double *dst = mono + t * B;
                for (int64_t b = 0; b < nb; b++) dst[b] = zd[b] * src[b];
            }
        }
    }
}

/* 2^{|α|}/α! for each monomial, in the same order (lead: the smallest variable of a term, and
 * its power). */
static void term_constants(int64_t D, int p, int64_t r, double *cst)
{
    int64_t *heads = malloc((size_t)(D > 0 ? D : 1) * sizeof(int64_t));
    int64_t *lead = malloc((size_t)r * sizeof(int64_t));
    int *pw = malloc((size_t)r * sizeof(int));
    if (!heads || !lead || !pw) { /* callers reserved far more than this; the bound stays valid */
        for (int64_t t = 0; t < r; t++) cst[t] = 0.0;
        free(heads), free(lead), free(pw);
        return;
    }
    cst[0] = 1.0, lead[0] = D, pw[0] = 0;
    for (int64_t d = 0; d < D; d++) heads[d] = 0;
    int64_t t = 1;
    for (int n = 1; n < p; n++) {
        const int64_t end = t;
        for (int64_t d = 0; d < D; d++) {
            const int64_t h = heads[d];
            heads[d] = t;
            for (int64_t j = h; j < end; j++, t++) {
                pw[t] = lead[j] == d ? pw[j] + 1 : 1;
                lead[t] = d;
                cst[t] = cst[j] * 2.0 / pw[t];
            }
        }
    }
    free(heads), free(lead), free(pw);
}

/* ---- Choosing K, p and the target: the cost model over Gonzalez's checkpoints -------------- */

typedef struct selector {
    int64_t N, M, D, V, S;  /* points and queries the run covers; S pilot queries */
    double *pd;             /* S × K_CAP squared distances of the pilot queries to the centres */
    int ne;
    double eps[NEPS], fail[NEPS]; /* targets and the fraction of queries expected below them */
    int fixed_p;
    double t_pair;          /* one exact pair, s */
    /* the best so far */
    double cost;            /* s; INFINITY: none */
    int64_t K, r;
    int p;
    double ry, eps_run;
    /* the smallest coefficient table that met a target but not the memory limit (for the message) */
    double big_bytes;
    int big_p;
    int64_t big_r, big_K;
} selector;

static double ry_of(double eps) { return eps < 1.0 ? sqrt(-log(eps)) : 0.0; }

/* Considers the first K centres (largest radius rx); returns 1 when they are the new best. */
static int select_at(selector *s, int64_t K, double rx)
{
    int better = 0;
    for (int e = 0; e < s->ne; e++) {
        const double eps = s->eps[e], ry = ry_of(eps);
        const int p = choose_p(rx, ry, eps, s->fixed_p);
        if (p > P_MAX) continue;
        const int64_t r = n_terms(p, s->D);
        const double bytes = (double)K * (double)(r > R_MAX ? R_MAX + 1 : r) * (double)s->V * 8.0;
        if (r > R_MAX || bytes > COEF_MAX_BYTES) {
            if (s->big_bytes == 0 || bytes < s->big_bytes) s->big_bytes = bytes, s->big_p = p, s->big_r = r, s->big_K = K;
            continue;
        }
        /* clusters each pilot query evaluates: those within rx + ry */
        double nev = 0.0;
        const double cut = (rx + ry) * (rx + ry);
        for (int64_t q = 0; q < s->S; q++)
            for (int64_t k = 0; k < K; k++) nev += s->pd[q * K_CAP + k] <= cut;
        nev = s->S > 0 ? nev / (double)s->S : (double)K;
        const double M = (double)s->M, N = (double)s->N, D = (double)s->D, V = (double)s->V, R = (double)r;
        const double t = C_GONZ * N * (double)K * (D + 1.0) + C_COEF * N * R * (V + 1.0) +
                         2.0 * C_DIST * M * (double)K * (D + 1.0) + C_PAIR * M * (double)K +
                         C_EVAL * M * nev * R * (V + 1.0) + s->t_pair * N * ((double)s->S + s->fail[e] * M);
        if (t < s->cost) s->cost = t, s->K = K, s->p = p, s->r = r, s->ry = ry, s->eps_run = eps, better = 1;
    }
    return better;
}

/* Gonzalez's clustering of the n rows of z (n × D) up to K_CAP centres or a stop (below), the
 * selector consulted at the checkpoints; centre[k] is the row of centre k; best_assign receives
 * each row's nearest centre among the best K's. dist2 is n scratch values, assign n. */
static void gonzalez(selector *s, const double *z, int64_t n, int64_t D, const double *zq, int64_t *centre,
                     int64_t *assign, int64_t *best_assign, double *dist2, int nt)
{
    const int64_t kcap = n < K_CAP ? n : K_CAP;
    int64_t next = 0, K = 0, cp = 1, cpi = 2;
    double chunk_max[CHUNKS];
    int64_t chunk_arg[CHUNKS];
    for (int64_t j = 0; j < n; j++) dist2[j] = INFINITY, assign[j] = 0;
    for (;;) {
        const int64_t c = next;
        centre[K] = c;
        for (int64_t q = 0; q < s->S; q++) {
            double d2 = 0.0;
            for (int64_t d = 0; d < D; d++) {
                const double t = zq[q * D + d] - z[c * D + d];
                d2 += t * t;
            }
            s->pd[q * K_CAP + K] = d2;
        }
        const int64_t kk = K++;
#pragma omp parallel for num_threads(nt) schedule(static)
        for (int ch = 0; ch < CHUNKS; ch++) {
            const int64_t j0 = n * ch / CHUNKS, j1 = n * (ch + 1) / CHUNKS;
            double mx = -1.0;
            int64_t arg = j0;
            for (int64_t j = j0; j < j1; j++) {
                double d2 = 0.0;
                for (int64_t d = 0; d < D; d++) {
                    const double t = z[j * D + d] - z[c * D + d];
                    d2 += t * t;
                }
                if (d2 < dist2[j]) dist2[j] = d2, assign[j] = kk;
                if (dist2[j] > mx) mx = dist2[j], arg = j;
            }
            chunk_max[ch] = mx, chunk_arg[ch] = arg;
        }
        double mx = -1.0;
        for (int ch = 0; ch < CHUNKS; ch++)
            if (chunk_max[ch] > mx) mx = chunk_max[ch], next = chunk_arg[ch];
        const double rx = sqrt(mx > 0 ? mx : 0.0);
        const int last = K >= kcap || !(mx > 0);
        if (K == cp || last) {
            if (select_at(s, K, rx)) memcpy(best_assign, assign, (size_t)n * sizeof(int64_t));
            cp = (int64_t)ceil(pow(2.0, 0.5 * (double)cpi++));
            while (cp <= K) cp = (int64_t)ceil(pow(2.0, 0.5 * (double)cpi++));
        }
        /* stop once the clustering has cost more than the best prediction */
        if (last || C_GONZ * (double)s->N * (double)K * ((double)D + 1.0) > s->cost) break;
        /* or two doublings past the best K without a better prediction (the cost is near convex in K) */
        if (K >= 32 && K > 4 * s->K && s->cost < INFINITY) break;
    }
}

/* ---- The cost function ------------------------------------------------------------------- */

/* The scaled, centred coordinates of rows rows[0..n) of A (all rows when rows is NULL). */
static void scale_rows(const gram_array *A, const int64_t *rows, int64_t n, const double *mid, const double *sc,
                       int64_t D, double *z)
{
    for (int64_t i = 0; i < n; i++) {
        const int64_t r = rows ? rows[i] : i;
        for (int64_t d = 0; d < D; d++) z[i * D + d] = (gram__get(A, r, d) - mid[d]) * sc[d];
    }
}

/* Midpoint of X's range and the scale 1/(√2·ℓ_d) per dimension. */
static void frame(const gram_kernel *k, const gram_array *X, double *mid, double *sc)
{
    const gram__leaf *L = &k->leaves[0];
    for (int64_t d = 0; d < X->cols; d++) {
        double lo = INFINITY, hi = -INFINITY;
        for (int64_t j = 0; j < X->rows; j++) {
            const double x = gram__get(X, j, d);
            if (x < lo) lo = x;
            if (x > hi) hi = x;
        }
        mid[d] = X->rows > 0 ? 0.5 * lo + 0.5 * hi : 0.0;
        sc[d] = L->inv_scale[L->n_scale == 1 ? 0 : d] * SQRT1_2;
    }
}

static double kernel_scale(const gram_kernel *k)
{
    double c = 1.0;
    for (int o = 1; o < k->n_ops; o++) c *= k->ops[o].c;
    return c;
}

static double t_pair_of(int64_t D) { return PAIR_A + PAIR_B * (double)D; }

/* The pilot's targets: for quantile ranks 0, 1, 2, 4, 8, 16 of the S pilot values |exact| per
 * column (lo, S × V, already divided by the kernel's scale), eps = (atol/c + rtol·s)/(2·Q_v),
 * the smallest over the columns. */
static void set_targets(selector *s, const double *lo, const double *Q, double atol_c, double rtol)
{
    static const int ranks[NEPS] = {0, 1, 2, 4, 8, 16};
    const int64_t S = s->S, V = s->V;
    double *col = malloc((size_t)(S > 0 ? S : 1) * sizeof(double));
    s->ne = 0;
    for (int e = 0; e < NEPS && col; e++) {
        if (ranks[e] >= S && e > 0) break;
        double eps = INFINITY;
        for (int64_t v = 0; v < V; v++) {
            if (!(Q[v] > 0)) continue;
            double sv = 0.0;
            if (S > 0) {
                for (int64_t q = 0; q < S; q++) col[q] = lo[q * V + v];
                /* the rank-th smallest (S ≤ 64: a partial selection sort) */
                for (int i = 0; i <= ranks[e] && i < S; i++)
                    for (int64_t j = i + 1; j < S; j++)
                        if (col[j] < col[i]) { const double t = col[i]; col[i] = col[j], col[j] = t; }
                sv = col[ranks[e] < S ? ranks[e] : S - 1];
            }
            const double ev = 0.5 * (atol_c + rtol * sv) / Q[v];
            if (ev < eps) eps = ev;
        }
        if (!(eps > 0)) continue; /* a zero pilot sum with atol = 0: those queries end exact */
        s->eps[s->ne] = eps, s->fail[s->ne] = S > 0 ? (double)ranks[e] / (double)S : 0.0;
        s->ne++;
    }
    free(col);
}

double gram__approx_fgt_cost(const gram_kernel *k, const gram_array *Y, const gram_array *X,
                             const gram_approx_options *opt)
{
    if (!gram__approx_fgt_supports(k, X ? X->cols : 0, NULL) || !X || !opt) return INFINITY;
    if (!Y) Y = X;
    const int64_t M = Y->rows, N = X->rows, D = X->cols;
    if (!(opt->rtol > 0 || opt->atol > 0) || D == 0) return INFINITY;
    if (M == 0 || N == 0) return 0.0;
    /* The run's pilot and clustering on a subsample: SUB_X rows of X spread evenly, weights 1 (each
     * standing for N/n of them), the pilot's sums over the subsample from the engine. */
    const int64_t n = N < SUB_X ? N : SUB_X, S = M < PILOT ? M : PILOT;
    double *mid = malloc((size_t)D * sizeof(double)), *sc = malloc((size_t)D * sizeof(double));
    double *z = malloc((size_t)(n * D) * sizeof(double)), *zq = malloc((size_t)(S * D) * sizeof(double));
    double *dist2 = malloc((size_t)n * sizeof(double)), *pil = malloc((size_t)S * sizeof(double));
    int64_t *rows = calloc((size_t)n, sizeof(int64_t)), *qrows = calloc((size_t)S, sizeof(int64_t));
    int64_t *centre = malloc((size_t)K_CAP * sizeof(int64_t)), *assign = malloc((size_t)n * sizeof(int64_t));
    int64_t *best = malloc((size_t)n * sizeof(int64_t));
    void *xs = malloc((size_t)(n * D) * sizeof(double)), *ys = malloc((size_t)(S * D) * sizeof(double));
    selector s;
    memset(&s, 0, sizeof s);
    s.pd = malloc((size_t)(S * K_CAP) * sizeof(double));
    double cost = INFINITY;
    gram_context *ctx = NULL;
    if (mid && sc && z && zq && dist2 && pil && rows && qrows && centre && assign && best && xs && ys && s.pd &&
        gram_context_create(&ctx) == GRAM_OK) {
        frame(k, X, mid, sc);
        for (int64_t i = 0; i < n; i++) rows[i] = i * N / n;
        for (int64_t q = 0; q < S; q++) qrows[q] = (2 * q + 1) * M / (2 * S);
        scale_rows(X, rows, n, mid, sc, D, z);
        scale_rows(Y, qrows, S, mid, sc, D, zq);
        const int f64 = X->dtype == GRAM_FLOAT64;
        for (int64_t i = 0; i < n; i++)
            for (int64_t d = 0; d < D; d++) {
                if (f64) ((double *)xs)[i * D + d] = gram__get(X, rows[i], d);
                else ((float *)xs)[i * D + d] = (float)gram__get(X, rows[i], d);
            }
        for (int64_t q = 0; q < S; q++)
            for (int64_t d = 0; d < D; d++) {
                if (f64) ((double *)ys)[q * D + d] = gram__get(Y, qrows[q], d);
                else ((float *)ys)[q * D + d] = (float)gram__get(Y, qrows[q], d);
            }
        const gram_array Xs = {xs, X->dtype, n, D, D, 1}, Ys = {ys, X->dtype, S, D, D, 1};
        gram_array P = gram_array_f64(pil, S, 1);
        if (gram_kernel_sum(ctx, k, &Ys, &Xs, NULL, &P) == GRAM_OK) {
            const double c = kernel_scale(k), Q = (double)N;
            for (int64_t q = 0; q < S; q++) pil[q] = fabs(pil[q]) * ((double)N / (double)n) / c;
            s.N = N, s.M = M, s.D = D, s.V = 1, s.S = S, s.fixed_p = opt->order;
            s.t_pair = t_pair_of(D), s.cost = INFINITY;
            set_targets(&s, pil, &Q, opt->atol / c, opt->rtol);
            if (s.ne > 0) {
                gonzalez(&s, z, n, D, zq, centre, assign, best, dist2, 1);
                /* The subsample's radii at K are those of the whole X at about K·N/n clusters: the
                 * whole run clusters N points, which the model already charges. */
                cost = s.cost / s.t_pair;
            }
        }
    }
    gram_context_destroy(ctx);
    free(mid), free(sc), free(z), free(zq), free(dist2), free(pil), free(rows), free(qrows), free(centre);
    free(assign), free(best), free(xs), free(ys), free(s.pd);
    return cost;
}

/* ---- The method -------------------------------------------------------------------------- */

typedef struct fjob {
    int64_t M, N, D, V, K, r, B;
    int p;
    const int64_t *rp;         /* rp[p'] = r(p', D), p' ≤ p */
    double eps;                /* the target per unit weight */
    double ry, atol, rtol, c; /* c: the kernel's constant scale */
    const double *zy, *cz;     /* M × D queries, K × D centres */
    const double *rad, *A, *wp, *wn; /* K radii; K × V: Σ|w|, Σw₊, Σw₋ */
    const double *coef;        /* K × r × V */
    const int64_t *cnt;        /* K points per cluster */
    double rel, tau;           /* coordinate rounding (top of the file) */
    const int64_t *order;      /* the queries to evaluate, nearest-centre order */
} fjob;

typedef struct fwork {
    double *dz, *mono, *acc, *d2, *val, *err;
    int64_t *heads;
} fwork;

/* One block of nb queries (order[q0, q0 + nb)): values and bounds, before the check. */
static void run_block(const fjob *J, fwork *w, int64_t q0, int64_t nb)
{
    const int64_t D = J->D, V = J->V, K = J->K, r = J->r, B = J->B;
    const int p = J->p;
    for (int64_t i = 0; i < nb * V; i++) w->val[i] = 0.0, w->err[i] = 0.0;
    for (int64_t i = 0; i < nb; i++) {
        const double *y = J->zy + J->order[q0 + i] * D;
        for (int64_t k = 0; k < K; k++) {
            double d2 = 0.0;
            for (int64_t d = 0; d < D; d++) {
                const double t = y[d] - J->cz[k * D + d];
                d2 += t * t;
            }
            w->d2[i * K + k] = d2;
        }
    }
    for (int64_t k = 0; k < K; k++) {
        const double rk = J->rad[k], cut = (rk + J->ry) * (rk + J->ry);
        int evaluate = 0;
        for (int64_t i = 0; i < nb && !evaluate; i++) evaluate = w->d2[i * K + k] <= cut;
        /* The order this cluster needs for this block: the least p' ≤ p whose bound meets the target
         * eps at every query within the cut-off (found by bisection, the bound falling with p'; the
         * series' first r(p') terms are those of degree < p', so the table serves every p'). */
        int pk = p;
        if (evaluate) {
            int lo = 1, hi = p;
            while (lo < hi) {
                const int mid = (lo + hi) / 2;
                int ok = 1;
                for (int64_t i = 0; i < nb && ok; i++) {
                    const double b2 = w->d2[i * K + k];
                    if (b2 <= cut) ok = gram__approx_fgt_trunc_bound(mid, rk, sqrt(b2)) <= J->eps;
                }
                if (ok) hi = mid;
                else lo = mid + 1;
            }
            pk = lo;
        }
        const int64_t rk_terms = J->rp[pk];
        if (evaluate) {
            for (int64_t d = 0; d < D; d++)
                for (int64_t i = 0; i < nb; i++) w->dz[d * B + i] = J->zy[J->order[q0 + i] * D + d] - J->cz[k * D + d];
            monomials(w->dz, D, pk, B, nb, w->mono, w->heads);
            const double *C = J->coef + k * r * V;
            for (int64_t v = 0; v < V; v++) {
                double *acc = w->acc + v * B;
                for (int64_t i = 0; i < nb; i++) acc[i] = 0.0;
                for (int64_t t = 0; t < rk_terms; t++) {
                    const double cv = C[t * V + v];
                    const double *m = w->mono + t * B;
                    for (int64_t i = 0; i < nb; i++) acc[i] += cv * m[i];
                }
            }
        }
        const double gam = ((double)J->cnt[k] + (double)r + 2.0 * p + 2.0 * (double)D + (double)K + 16.0) * DBL_EPSILON;
        for (int64_t i = 0; i < nb; i++) {
            const double b2 = w->d2[i * K + k], b = sqrt(b2), g = b > rk ? b - rk : 0.0;
            if (g * g > 745.0) { /* kmax is below the least double: the terms are 0 to within it */
                for (int64_t v = 0; v < V; v++) w->err[i * V + v] += J->A[k * V + v] * DBL_TRUE_MIN;
                continue;
            }
            const double kmax = exp(-g * g), bb = b + rk;
            const double slack = J->rel * bb * bb + J->tau + ((double)K + 8.0) * DBL_EPSILON;
            const double tb = evaluate ? gram__approx_fgt_trunc_bound(pk, rk, b) + gam + slack : INFINITY, eb = evaluate ? exp(-b2) : 0.0;
            for (int64_t v = 0; v < V; v++) {
                const double a = J->A[k * V + v];
                const double half = a * kmax * (0.5 + slack), te = a * (tb * 1.0000001);
                if (evaluate && te <= half) {
                    w->val[i * V + v] += eb * w->acc[v * B + i];
                    w->err[i * V + v] += te;
                } else {
                    w->val[i * V + v] += 0.5 * kmax * (J->wp[k * V + v] - J->wn[k * V + v]);
                    w->err[i * V + v] += half;
                }
            }
        }
    }
}

/* The exact sums of the queries rows[0, n) against all of X (one engine call), err 0. */
static gram_status exact_rows(gram_context *ctx, const gram_kernel *k, const gram_array *Y, const gram_array *X,
                              const gram_array *W, const int64_t *rows, int64_t n, gram_array *out, gram_array *err)
{
    if (n == 0) return GRAM_OK;
    const int64_t D = X->cols, V = out->cols;
    const size_t es = X->dtype == GRAM_FLOAT64 ? sizeof(double) : sizeof(float);
    void *yf = gram__alloc((size_t)(n * (D > 0 ? D : 1)) * es);
    double *of = gram__alloc((size_t)(n * (V > 0 ? V : 1)) * sizeof(double));
    if (!yf || !of) {
        gram__free(yf), gram__free(of);
        return gram__fail(ctx, GRAM_ENOMEM, "fgt: out of memory for the %lld queries summed exactly", (long long)n);
    }
    for (int64_t f = 0; f < n; f++)
        for (int64_t d = 0; d < D; d++) {
            const double y = gram__get(Y, rows[f], d);
            if (es == sizeof(double)) ((double *)yf)[f * D + d] = y;
            else ((float *)yf)[f * D + d] = (float)y;
        }
    const gram_array Yf = {yf, X->dtype, n, D, D, 1};
    gram_array Of = gram_array_f64(of, n, V);
    gram_status s = gram_kernel_sum(ctx, k, &Yf, X, W, &Of);
    for (int64_t f = 0; !s && f < n; f++)
        for (int64_t v = 0; v < V; v++) {
            gram__put(out, rows[f], v, of[f * V + v]);
            if (err) gram__put(err, rows[f], v, 0.0);
        }
    gram__free(yf), gram__free(of);
    return s;
}

gram_status gram__approx_fgt(gram_context *ctx, const gram_kernel *k, const gram_array *Y, const gram_array *X,
                             const gram_array *W, const gram_approx_options *opt, gram_array *out, gram_array *err,
                             gram_approx_info *info)
{
    const char *why;
    if (!gram__approx_fgt_supports(k, X->cols, &why))
        return gram__fail(ctx, GRAM_EINVAL, "the fast Gauss transform cannot bound this kernel: %s", why);
    const int64_t M = Y->rows, N = X->rows, D = X->cols, V = W ? W->cols : 1;
    if (info) info->method = GRAM_APPROX_FGT, info->delta = 0.0, info->kernel_evaluations = 0;
    if (M == 0 || V == 0) return GRAM_OK;
    if (N == 0) {
        gram__approx_zero(out, err);
        return GRAM_OK;
    }
    const double rtol = opt ? opt->rtol : 0.0, atol = opt ? opt->atol : 0.0, c = kernel_scale(k);
    const int fixed_p = opt ? opt->order : 0;
    const size_t es = X->dtype == GRAM_FLOAT64 ? sizeof(double) : sizeof(float);
    gram_status s = GRAM_OK;
    int64_t evals = 0;
    if (D == 0 || !(rtol > 0 || atol > 0)) { /* every distance 0, or nothing to spare: the exact sum */
        if ((s = gram_kernel_sum(ctx, k, Y, X, W, out))) return s;
        if (err) gram__approx_zero(err, NULL);
        if (info) info->kernel_evaluations = M * N;
        return GRAM_OK;
    }
    const int64_t S = M < PILOT ? M : PILOT;
    size_t b_zx, b_zy, b_w;
    if (!gram__bytes(N * D, sizeof(double), &b_zx) || !gram__bytes(M * D, sizeof(double), &b_zy) ||
        !gram__bytes(N * V, sizeof(double), &b_w) || !gram__memory_fits(b_zx + b_zy + 2 * b_w))
        return gram__fail(ctx, GRAM_ENOMEM, "fgt: out of memory for the scaled copies of X (%lld×%lld) and Y (%lld×%lld)",
                          (long long)N, (long long)D, (long long)M, (long long)D);
    double *mid = gram__alloc((size_t)D * sizeof(double)), *sc = gram__alloc((size_t)D * sizeof(double));
    double *zx = gram__alloc(b_zx), *zy = gram__alloc(b_zy), *w = gram__alloc(b_w);
    double *Q = gram__calloc((size_t)V, sizeof(double)), *dist2 = gram__alloc((size_t)N * sizeof(double));
    double *pil = gram__alloc((size_t)(S * V) * sizeof(double)), *lo = gram__alloc((size_t)(S * V) * sizeof(double));
    int64_t *qrows = gram__alloc((size_t)S * sizeof(int64_t)), *centre = gram__alloc((size_t)K_CAP * sizeof(int64_t));
    int64_t *assign = gram__alloc((size_t)N * sizeof(int64_t)), *best = gram__alloc((size_t)N * sizeof(int64_t));
    unsigned char *done = gram__calloc((size_t)M, 1);
    void *yb = gram__alloc((size_t)(S * (D > 0 ? D : 1)) * es);
    selector sel;
    memset(&sel, 0, sizeof sel);
    sel.pd = gram__alloc((size_t)(S * K_CAP) * sizeof(double));
    /* the method's later buffers */
    double *cz = NULL, *rad = NULL, *A = NULL, *wp = NULL, *wn = NULL, *coef = NULL, *cst = NULL, *vals = NULL,
           *errs = NULL;
    int64_t *cnt = NULL, *first = NULL, *members = NULL, *order = NULL, *fails = NULL, *qc = NULL;
    fwork *ws = NULL;
    int nt = gram__threads(ctx);
    if (!(mid && sc && zx && zy && w && Q && dist2 && pil && lo && qrows && centre && assign && best && done && yb &&
          sel.pd)) {
        s = gram__fail(ctx, GRAM_ENOMEM, "fgt: out of memory for its copies of X (%lld×%lld) and Y", (long long)N,
                       (long long)D);
        goto end;
    }
    frame(k, X, mid, sc);
    scale_rows(X, NULL, N, mid, sc, D, zx);
    scale_rows(Y, NULL, M, mid, sc, D, zy);
    for (int64_t j = 0; j < N; j++)
        for (int64_t v = 0; v < V; v++) {
            w[j * V + v] = W ? gram__get(W, j, v) : 1.0;
            Q[v] += fabs(w[j * V + v]);
        }

    /* The pilot: S queries summed exactly, kept as results. */
    for (int64_t q = 0; q < S; q++) {
        qrows[q] = (2 * q + 1) * M / (2 * S);
        done[qrows[q]] = 1;
        for (int64_t d = 0; d < D; d++) {
            const double y = gram__get(Y, qrows[q], d);
            if (es == sizeof(double)) ((double *)yb)[q * D + d] = y;
            else ((float *)yb)[q * D + d] = (float)y;
        }
    }
    {
        const gram_array Yp = {yb, X->dtype, S, D, D, 1};
        gram_array P = gram_array_f64(pil, S, V);
        if ((s = gram_kernel_sum(ctx, k, &Yp, X, W, &P))) goto end;
        evals += S * N;
        for (int64_t q = 0; q < S; q++)
            for (int64_t v = 0; v < V; v++) {
                gram__put(out, qrows[q], v, pil[q * V + v]);
                if (err) gram__put(err, qrows[q], v, 0.0);
                lo[q * V + v] = fabs(pil[q * V + v]) / c;
            }
    }
    if (S == M) goto end;

    /* K, p and the target from the pilot and Gonzalez's checkpoints */
    sel.N = N, sel.M = M - S, sel.D = D, sel.V = V, sel.S = S, sel.fixed_p = fixed_p;
    sel.t_pair = t_pair_of(D), sel.cost = INFINITY;
    {
        double *zq = gram__alloc((size_t)(S * D) * sizeof(double));
        if (!zq) {
            s = gram__fail(ctx, GRAM_ENOMEM, "fgt: out of memory");
            goto end;
        }
        for (int64_t q = 0; q < S; q++) memcpy(zq + q * D, zy + qrows[q] * D, (size_t)D * sizeof(double));
        set_targets(&sel, lo, Q, atol / c, rtol);
        if (sel.ne == 0) { /* every column's weights are 0, or the pilot sums are 0 with atol = 0 */
            sel.eps[0] = INFINITY, sel.fail[0] = 0.0, sel.ne = 1;
            for (int64_t v = 0; v < V; v++)
                if (Q[v] > 0) sel.eps[0] = 0.0;
            if (sel.eps[0] == 0.0) sel.ne = 0;
        }
        if (sel.ne > 0) gonzalez(&sel, zx, N, D, zq, centre, assign, best, dist2, gram__team_size(nt));
        gram__free(zq);
    }
    if (!(sel.cost < INFINITY)) {
        if (sel.big_bytes > 0)
            s = gram__fail(ctx, GRAM_ENOMEM, "fgt: order %d in D = %lld needs %s%lld Taylor coefficients per cluster and "
                           "weight column, %.3g GiB for %lld clusters and %lld columns, above fgt's limit of 1 GiB "
                           "(a larger tolerance or bandwidth, or method tree or exact, can run)", sel.big_p, (long long)D,
                           sel.big_r > R_MAX ? "more than " : "", (long long)(sel.big_r > R_MAX ? R_MAX : sel.big_r),
                           sel.big_bytes / (1024.0 * 1024.0 * 1024.0), (long long)sel.big_K, (long long)V);
        else if (fixed_p)
            s = gram__fail(ctx, GRAM_EINVAL, "fgt: order %d cannot meet the tolerance with up to %lld clusters of X; a "
                           "larger order (0: fgt's choice) or tolerance can", fixed_p, (long long)(N < K_CAP ? N : K_CAP));
        else
            s = gram__fail(ctx, GRAM_EINVAL, "fgt: no order up to %d meets the tolerance with up to %lld clusters of X; a "
                           "larger tolerance, or method tree or exact, can", P_MAX, (long long)(N < K_CAP ? N : K_CAP));
        goto end;
    }

    if (!fixed_p && sel.cost >= sel.t_pair * (double)N * (double)(M - S)) {
        /* no expansion is predicted to beat the exact sum (a bandwidth small against the spread, or
         * too many monomials): the remaining queries are summed exactly, err 0 (a fixed order runs
         * its expansion regardless) */
        int64_t nf = 0, *rest = gram__alloc((size_t)M * sizeof(int64_t));
        if (!rest) {
            s = gram__fail(ctx, GRAM_ENOMEM, "fgt: out of memory");
            goto end;
        }
        for (int64_t i = 0; i < M; i++)
            if (!done[i]) rest[nf++] = i;
        s = exact_rows(ctx, k, Y, X, W, rest, nf, out, err);
        if (!s) evals += nf * N;
        gram__free(rest);
        goto end;
    }
    const int64_t K = sel.K, r = sel.r;
    const int p = sel.p;
    size_t b_coef;
    if (!gram__bytes(K * r * V, sizeof(double), &b_coef)) b_coef = SIZE_MAX;
    cz = gram__alloc((size_t)(K * D) * sizeof(double)), rad = gram__calloc((size_t)K, sizeof(double));
    A = gram__calloc((size_t)(K * V), sizeof(double)), wp = gram__calloc((size_t)(K * V), sizeof(double));
    wn = gram__calloc((size_t)(K * V), sizeof(double)), coef = gram__calloc(b_coef / sizeof(double), sizeof(double));
    cst = gram__alloc((size_t)r * sizeof(double)), cnt = gram__calloc((size_t)K + 1, sizeof(int64_t));
    first = gram__calloc((size_t)K + 1, sizeof(int64_t)), members = gram__alloc((size_t)N * sizeof(int64_t));
    order = gram__alloc((size_t)M * sizeof(int64_t)), qc = gram__alloc((size_t)M * sizeof(int64_t));
    vals = gram__alloc((size_t)(M * V) * sizeof(double)), errs = gram__alloc((size_t)(M * V) * sizeof(double));
    fails = gram__alloc((size_t)M * sizeof(int64_t));
    nt = gram__team_size(nt);
    ws = gram__calloc((size_t)nt, sizeof(fwork));
    int ok = cz && rad && A && wp && wn && coef && cst && cnt && first && members && order && qc && vals && errs && fails && ws;
    for (int t = 0; ok && t < nt; t++) {
        fwork *f = &ws[t];
        f->dz = gram__alloc((size_t)(D * BLOCK) * sizeof(double)), f->mono = gram__alloc((size_t)(r * BLOCK) * sizeof(double));
        f->acc = gram__alloc((size_t)(V * BLOCK) * sizeof(double)), f->d2 = gram__alloc((size_t)(K * BLOCK) * sizeof(double));
        f->val = gram__alloc((size_t)(V * BLOCK) * sizeof(double)), f->err = gram__alloc((size_t)(V * BLOCK) * sizeof(double));
        f->heads = gram__alloc((size_t)D * sizeof(int64_t));
        ok = f->dz && f->mono && f->acc && f->d2 && f->val && f->err && f->heads;
    }
    if (!ok) {
        s = gram__fail(ctx, GRAM_ENOMEM, "fgt: out of memory for %lld clusters of order %d in D = %lld (%lld coefficients "
                       "each, %lld columns)", (long long)K, p, (long long)D, (long long)r, (long long)V);
        goto end;
    }

    /* Clusters: members in row order, radius, weight sums. */
    for (int64_t kk = 0; kk < K; kk++) memcpy(cz + kk * D, zx + centre[kk] * D, (size_t)D * sizeof(double));
    for (int64_t j = 0; j < N; j++) cnt[best[j]]++;
    for (int64_t kk = 0; kk < K; kk++) first[kk + 1] = first[kk] + cnt[kk];
    {
        int64_t *fill = assign; /* reused: Gonzalez is done */
        memcpy(fill, first, (size_t)K * sizeof(int64_t));
        for (int64_t j = 0; j < N; j++) members[fill[best[j]]++] = j;
    }
    term_constants(D, p, r, cst);
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
    for (int64_t kk = 0; kk < K; kk++) {
        fwork *f = &ws[omp_get_thread_num()];
        double *C = coef + kk * r * V, rmax = 0.0;
        for (int64_t m = first[kk]; m < first[kk + 1]; m++) {
            const int64_t j = members[m];
            double a2 = 0.0;
            for (int64_t d = 0; d < D; d++) {
                const double t = zx[j * D + d] - cz[kk * D + d];
                f->dz[d * BLOCK] = t;
                a2 += t * t;
            }
            if (a2 > rmax) rmax = a2;
            monomials(f->dz, D, p, BLOCK, 1, f->mono, f->heads);
            const double e = exp(-a2);
            for (int64_t v = 0; v < V; v++) {
                const double wv = w[j * V + v];
                A[kk * V + v] += fabs(wv);
                if (wv > 0) wp[kk * V + v] += wv;
                else wn[kk * V + v] -= wv;
                const double ew = e * wv;
                for (int64_t t = 0; t < r; t++) C[t * V + v] += ew * f->mono[t * BLOCK];
            }
        }
        rad[kk] = sqrt(rmax);
        for (int64_t t = 0; t < r; t++)
            for (int64_t v = 0; v < V; v++) C[t * V + v] *= cst[t];
    }

    /* The queries still to do, ordered by their nearest centre (a stable counting sort). */
    int64_t nq = 0;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t i = 0; i < M; i++) {
        double bd = INFINITY;
        int64_t bk = 0;
        for (int64_t kk = 0; kk < K; kk++) {
            double d2 = 0.0;
            for (int64_t d = 0; d < D; d++) {
                const double t = zy[i * D + d] - cz[kk * D + d];
                d2 += t * t;
            }
            if (d2 < bd) bd = d2, bk = kk;
        }
        qc[i] = bk;
    }
    {
        int64_t *pos = gram__calloc((size_t)K + 1, sizeof(int64_t));
        if (!pos) {
            s = gram__fail(ctx, GRAM_ENOMEM, "fgt: out of memory");
            goto end;
        }
        for (int64_t i = 0; i < M; i++)
            if (!done[i]) pos[qc[i] + 1]++, nq++;
        for (int64_t kk = 0; kk < K; kk++) pos[kk + 1] += pos[kk];
        for (int64_t i = 0; i < M; i++)
            if (!done[i]) order[pos[qc[i]]++] = i;
        gram__free(pos);
    }

    /* The coordinates' rounding (top of the file). */
    double tau = 0.0;
    for (int64_t d = 0; d < D; d++) {
        double R = 0.0;
        for (int64_t j = 0; j < N; j++) R = fabs(zx[j * D + d]) > R ? fabs(zx[j * D + d]) : R;
        for (int64_t i = 0; i < M; i++) R = fabs(zy[i * D + d]) > R ? fabs(zy[i * D + d]) : R;
        tau += R * R;
    }
    int64_t rp[P_MAX + 1];
    for (int q = 1; q <= p; q++) rp[q] = n_terms(q, D);
    const fjob J = {M, N, D, V, K, r, BLOCK, p, rp, sel.eps_run, sel.ry, atol, rtol, c, zy, cz, rad, A, wp, wn, coef, cnt,
                    2.0 * (double)(D + 4) * DBL_EPSILON, 16.0 * DBL_EPSILON * tau, order};
    const int64_t nblocks = (nq + BLOCK - 1) / BLOCK;
    gram__progress ps = {0, nblocks, 0};
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
    for (int64_t bi = 0; bi < nblocks; bi++) {
        if (gram__progress_cancelled(&ps)) continue;
        fwork *f = &ws[omp_get_thread_num()];
        const int64_t q0 = bi * BLOCK, nb = nq - q0 < BLOCK ? nq - q0 : BLOCK;
        run_block(&J, f, q0, nb);
        for (int64_t i = 0; i < nb; i++)
            for (int64_t v = 0; v < V; v++) {
                vals[(q0 + i) * V + v] = c * f->val[i * V + v];
                errs[(q0 + i) * V + v] = c * f->err[i * V + v] * (1.0 + 4.0 * DBL_EPSILON);
            }
        gram__progress_report(ctx, &ps, 1);
    }
    if (ps.cancelled) {
        s = gram__fail(ctx, GRAM_ECANCELLED, "cancelled by the progress callback after %lld of %lld query blocks",
                       (long long)ps.done, (long long)nblocks);
        goto end;
    }

    /* The check; failures summed exactly against all of X. */
    int64_t nfail = 0;
    for (int64_t m = 0; m < nq; m++) {
        int fail = 0;
        for (int64_t v = 0; v < V && !fail; v++) {
            const double val = vals[m * V + v], e = errs[m * V + v];
            fail = !(e <= atol + rtol * (fabs(val) - e)) || !isfinite(val);
        }
        if (fail) fails[nfail++] = order[m];
        else
            for (int64_t v = 0; v < V; v++) {
                gram__put(out, order[m], v, vals[m * V + v]);
                if (err) gram__put(err, order[m], v, errs[m * V + v]);
            }
    }
    if (nfail > 0) {
        s = exact_rows(ctx, k, Y, X, W, fails, nfail, out, err);
        if (!s) evals += nfail * N;
    }
end:
    if (info) info->kernel_evaluations = evals;
    gram__free(mid), gram__free(sc), gram__free(zx), gram__free(zy), gram__free(w), gram__free(Q), gram__free(dist2);
    gram__free(pil), gram__free(lo), gram__free(qrows), gram__free(centre), gram__free(assign), gram__free(best);
    gram__free(done), gram__free(yb), gram__free(sel.pd);
    gram__free(cz), gram__free(rad), gram__free(A), gram__free(wp), gram__free(wn), gram__free(coef), gram__free(cst);
    gram__free(cnt), gram__free(first), gram__free(members), gram__free(order), gram__free(qc), gram__free(vals);
    gram__free(errs), gram__free(fails);
    for (int t = 0; ws && t < nt; t++) {
        fwork *f = &ws[t];
        gram__free(f->dz), gram__free(f->mono), gram__free(f->acc), gram__free(f->d2), gram__free(f->val);
        gram__free(f->err), gram__free(f->heads);
    }
    gram__free(ws);
    return s;
}
