/* approx: the front end of the approximate sums (docs/approx.md, "The tolerance" and "Choosing a
 * method"): options, every argument checked before any work, the automatic choice, the exact path.
 * The argument checks are the engine's own (gram__check_sum_args), so both fail with one message. */
#include "approx.h"

#include "../engine/engine.h"
#include "../kernel/kernel.h"

#include <float.h>
#include <math.h>
#include <string.h>
#include <time.h>

/* AUTO sums exactly below this many pairs: a tree's build and bounds cost about as much. */
#define GRAM_APPROX_EXACT_PAIRS ((int64_t)1 << 20)
/* AUTO's tree covers D ≤ this: beyond it, kd-tree boxes are too loose to prune (docs/approx.md). */
#define GRAM_APPROX_TREE_MAX_D 16
/* The tree's time model: measured on nycflights13 (D = 8; docs/approx.md, Tree) the tree takes
 * about (FIXED + PER_PAIR·f) of the exact sum's time, f the fraction of pairs it sums exactly, so
 * it breaks even near f = 0.45. AUTO's tree goes on when its pilot finds f at most MAX_FRACTION
 * and its predicted time below the best other method's. */
#define GRAM_APPROX_TREE_FIXED 0.19
#define GRAM_APPROX_TREE_PER_PAIR 1.8
#define GRAM_APPROX_TREE_MAX_FRACTION 0.4
/* The tree's pilot is not worth running when the fraction of pairs it may sum exactly and still
 * beat the choice so far is below this. */
#define GRAM_APPROX_TREE_WORTH 0.01
/* Measuring this machine's pair time (a few ms) is worth it when some method is predicted below
 * this fraction of the exact sum. */
#define GRAM_APPROX_PILOT_WORTH 0.5
/* A randomized method replaces the best deterministic one only when predicted this many times
 * cheaper. */
#define GRAM_APPROX_RANDOM_ADVANTAGE 2.0
/* Corrections of the grid's and fgt's cost functions, measured (one thread, CPU time, N(0, I) data:
 * grid at D = 1, 2 with N = M = 10⁶ and D = 3 with 3·10⁵ took 0.31, 0.41, 0.43 of its prediction;
 * fgt at D = 1 and 3 took 2.1 and 2.8 times its prediction; docs/approx.md, "Choosing a method"). */
#define GRAM_APPROX_GRID_CALIBRATION 0.4
#define GRAM_APPROX_FGT_CALIBRATION 2.5

void gram_approx_options_init(gram_approx_options *o)
{
    memset(o, 0, sizeof *o);
    o->method = GRAM_APPROX_AUTO;
    o->delta = 1e-3;
}

static const char *method_name(gram_approx_method m)
{
    switch (m) {
    case GRAM_APPROX_AUTO: return "auto";
    case GRAM_APPROX_EXACT: return "exact";
    case GRAM_APPROX_TREE: return "tree";
    case GRAM_APPROX_SAMPLING: return "sampling";
    case GRAM_APPROX_GRID: return "grid";
    case GRAM_APPROX_FGT: return "fgt";
    case GRAM_APPROX_FEATURES: return "features";
    }
    return "?";
}

void gram__approx_zero(gram_array *out, gram_array *err)
{
    for (int64_t i = 0; i < out->rows; i++)
        for (int64_t v = 0; v < out->cols; v++) {
            gram__put(out, i, v, 0.0);
            if (err) gram__put(err, i, v, 0.0);
        }
}

static gram_status check_args(gram_context *ctx, const gram_kernel *k, const gram_array *Y, const gram_array *X,
                              const gram_array *W, const gram_array *out, const gram_array *err)
{
    gram_status s;
    if ((s = gram__check_sum_args(ctx, k, Y, X, W, out))) return s;
    if (err) {
        if ((s = gram__check_array(ctx, err, "err"))) return s;
        if (err->dtype != GRAM_FLOAT64) return gram__fail(ctx, GRAM_EINVAL, "err must be float64 (it is float32)");
        if (err->rows != out->rows || err->cols != out->cols)
            return gram__fail(ctx, GRAM_ESHAPE, "err is %lld×%lld but must be %lld×%lld, as out",
                              (long long)err->rows, (long long)err->cols, (long long)out->rows, (long long)out->cols);
    }
    if (err && ((s = gram__check_no_overlap(ctx, err, X, "err", "X")) || (s = gram__check_no_overlap(ctx, err, Y, "err", "Y")) ||
                (W && (s = gram__check_no_overlap(ctx, err, W, "err", "W"))) ||
                (s = gram__check_no_overlap(ctx, err, out, "err", "out"))))
        return s;
    return GRAM_OK;
}

static gram_status check_options(gram_context *ctx, const gram_approx_options *opt)
{
    const gram_approx_options o = *opt;
    if (!(o.rtol >= 0) || isinf(o.rtol))
        return gram__fail(ctx, GRAM_EINVAL, "rtol must be finite and >= 0, got %g", o.rtol);
    if (!(o.atol >= 0) || isinf(o.atol))
        return gram__fail(ctx, GRAM_EINVAL, "atol must be finite and >= 0, got %g", o.atol);
    if (!(o.delta > 0 && o.delta < 1))
        return gram__fail(ctx, GRAM_EINVAL, "delta (the failure probability of randomized bounds) must be in (0, 1), "
                          "got %g", o.delta);
    if ((int)o.method < GRAM_APPROX_AUTO || (int)o.method > GRAM_APPROX_FEATURES)
        return gram__fail(ctx, GRAM_EINVAL, "method must be auto, exact, tree, sampling, grid, fgt or features (0 to 6), "
                          "got %d", (int)o.method);
    if (o.leaf_size < 0)
        return gram__fail(ctx, GRAM_EINVAL, "leaf_size must be >= 0 (0: the method's default), got %lld",
                          (long long)o.leaf_size);
    if (o.near_neighbours < -1)
        return gram__fail(ctx, GRAM_EINVAL, "near_neighbours must be >= -1 (0: the method's choice, -1: none), got %lld",
                          (long long)o.near_neighbours);
    if (o.components < 0)
        return gram__fail(ctx, GRAM_EINVAL, "components must be >= 0 (0: the method's choice), got %lld",
                          (long long)o.components);
    if (o.order < 0 || o.order > 64)
        return gram__fail(ctx, GRAM_EINVAL, "order must be in [0, 64] (0: the method's choice), got %d", o.order);
    return GRAM_OK;
}

/* What both entry points do first: the options (opt NULL: the defaults) into *o, Y defaulting to X,
 * every check before any work. */
static gram_status prelude(gram_context *ctx, const gram_kernel *k, const gram_array **Y, const gram_array *X,
                           const gram_array *W, const gram_approx_options *opt, const gram_array *out,
                           const gram_array *err, gram_approx_options *o)
{
    gram__clear(ctx);
    if (opt) *o = *opt;
    else gram_approx_options_init(o);
    gram_status s = check_options(ctx, o);
    if (s) return s;
    if (!*Y) *Y = X;
    return check_args(ctx, k, *Y, X, W, out, err);
}

/* ---- AUTO's cost model (docs/approx.md, "Choosing a method") ----------------------------------- */

/* One kernel pair of gram_kernel_sum (gaussian) on one thread of the development machine (AMD EPYC
 * Zen 4, AVX-512), CPU seconds, against D: the unit of the methods' cost functions. Measured on a
 * quiet machine, N = 2·10⁴ × M = 2000: 0.86, 0.90, 1.24, 1.57, 3.55 ns at D = 2, 3, 8, 16, 64. */
static double dev_pair_seconds(int64_t D) { return 0.80e-9 + 0.043e-9 * (double)D; }

static double cpu_seconds(void)
{
    struct timespec t;
    if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t)) return 0.0;
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* The pilot: this machine's CPU time per pair of gram_kernel_sum for this kernel, dtype and D,
 * from up to 128 queries against up to 2^14 rows of X (the smaller of two runs: a shared machine's
 * noise only ever adds time). CPU time over all threads, so it is the one-thread cost whatever the
 * thread count. 0 when it cannot be measured (then the development machine's figure stands). */
static double pilot_pair_seconds(gram_context *ctx, const gram_kernel *k, const gram_array *Y, const gram_array *X,
                                 const gram_array *W)
{
    const int64_t m0 = Y->rows < 128 ? Y->rows : 128, n0 = X->rows < 16384 ? X->rows : 16384;
    const int64_t V = W ? W->cols : 1;
    double *buf = gram__alloc(sizeof(double) * (size_t)(m0 * V + 1));
    if (!buf || m0 * n0 < 4096) {
        gram__free(buf);
        return 0.0;
    }
    gram_array Ys = *Y, Xs = *X, Ws, Os = gram_array_f64(buf, m0, V);
    Ys.rows = m0, Xs.rows = n0;
    if (W) Ws = *W, Ws.rows = n0;
    double best = INFINITY;
    for (int r = 0; r < 2; r++) {
        double t0 = cpu_seconds();
        if (gram_kernel_sum(ctx, k, &Ys, &Xs, W ? &Ws : NULL, &Os)) {
            best = INFINITY;
            break;
        }
        double t = cpu_seconds() - t0;
        if (t < best) best = t;
    }
    gram__free(buf);
    gram__clear(ctx);
    return best > 0 && best < INFINITY ? best / ((double)m0 * (double)n0) : 0.0;
}

/* AUTO: every method that can bound k predicts its time (its cost function, in development-machine
 * pairs, converted to this machine's exact pairs by the pilot); the cheapest deterministic one
 * (exact, grid, fgt) is the baseline; a randomized one (sampling, features) replaces it only when
 * predicted GRAM_APPROX_RANDOM_ADVANTAGE times cheaper, since its bound holds with probability
 * 1 − δ only. The tree, when it can bound k (D ≤ 16), then runs its own pilot (its first query
 * blocks, for real) and declines when its predicted time exceeds that choice's; *fallback is what
 * runs then. */
static void choose(gram_context *ctx, const gram_kernel *k, const gram_array *Y, const gram_array *X,
                   const gram_array *W, const gram_approx_options *o, int tree_ok, int samp_ok, gram_approx_method *m,
                   gram_approx_method *fallback, double *tree_fraction)
{
    const int64_t M = Y->rows, N = X->rows, D = X->cols;
    const double pairs = (double)M * (double)N;
    double c_grid = gram__approx_grid_supports(k, D, NULL) ? gram__approx_grid_cost(k, Y, X, o) : INFINITY;
    double c_fgt = gram__approx_fgt_supports(k, D, NULL) ? gram__approx_fgt_cost(k, Y, X, o) : INFINITY;
    double c_feat = INFINITY, c_samp = INFINITY;
    if (gram__approx_features_supports(k, D, NULL)) c_feat = gram__approx_features_cost(k, Y, X, o);
    /* sampling's pilot builds its near index over all of X: only where the tree cannot serve */
    if (samp_ok && k->nonnegative && (!tree_ok || D > GRAM_APPROX_TREE_MAX_D))
        c_samp = gram__approx_sampling_cost(ctx, k, Y, X, W, o);
    gram__clear(ctx);
    double lo = fmin(fmin(c_grid, c_fgt), fmin(c_feat, c_samp));
    double scale = 1.0; /* development-machine pairs → this machine's exact pairs */
    if (lo < GRAM_APPROX_PILOT_WORTH * pairs || tree_ok) {
        double here = pilot_pair_seconds(ctx, k, Y, X, W);
        if (here > 0) scale = dev_pair_seconds(D) / here;
    }
    c_grid *= scale * GRAM_APPROX_GRID_CALIBRATION, c_fgt *= scale * GRAM_APPROX_FGT_CALIBRATION;
    c_feat *= scale, c_samp *= scale;
    gram_approx_method det = GRAM_APPROX_EXACT, rnd = GRAM_APPROX_EXACT;
    double c_det = pairs, c_rnd = INFINITY;
    if (c_grid < c_det) det = GRAM_APPROX_GRID, c_det = c_grid;
    if (c_fgt < c_det) det = GRAM_APPROX_FGT, c_det = c_fgt;
    if (c_samp < c_rnd) rnd = GRAM_APPROX_SAMPLING, c_rnd = c_samp;
    if (c_feat < c_rnd) rnd = GRAM_APPROX_FEATURES, c_rnd = c_feat;
    gram_approx_method best = det;
    double c_best = c_det;
    if (c_rnd * GRAM_APPROX_RANDOM_ADVANTAGE < c_det) best = rnd, c_best = c_rnd;
    *m = best;
    *fallback = best;
    const double f = fmin(GRAM_APPROX_TREE_MAX_FRACTION,
                          (c_best / pairs - GRAM_APPROX_TREE_FIXED) / GRAM_APPROX_TREE_PER_PAIR);
    if (tree_ok && D <= GRAM_APPROX_TREE_MAX_D && f > GRAM_APPROX_TREE_WORTH) {
        *m = GRAM_APPROX_TREE;
        *tree_fraction = f;
    }
}

gram_status gram_kernel_sum_approx(gram_context *ctx, const gram_kernel *k, const gram_array *Y, const gram_array *X,
                                   const gram_array *W, const gram_approx_options *opt, gram_array *out,
                                   gram_array *err, gram_approx_info *info)
{
    gram_approx_options o;
    gram_status s = prelude(ctx, k, &Y, X, W, opt, out, err, &o);
    if (s) return s;

    const int64_t M = Y->rows, N = X->rows, D = X->cols;
    int64_t pairs;
    if (!gram__mul_i64(M, N, &pairs)) pairs = INT64_MAX;
    const char *tree_why = NULL, *samp_why = NULL;
    const int tree_ok = gram__approx_tree_supports(k, &tree_why);
    if (!gram__approx_sampling_supports(k, &samp_why) && !samp_why) samp_why = "its values have no finite range";
    gram_approx_method m = o.method;
    if (m == GRAM_APPROX_TREE && !tree_ok)
        return gram__fail(ctx, GRAM_EINVAL, "method tree cannot meet a tolerance for this kernel: %s; methods that can: "
                          "exact%s", tree_why, samp_why ? "" : ", sampling");
    if (m == GRAM_APPROX_SAMPLING && samp_why)
        return gram__fail(ctx, GRAM_EINVAL, "method sampling cannot meet a tolerance for this kernel: %s; methods that "
                          "can: exact%s", samp_why, tree_ok ? ", tree" : "");
    {
        const char *why = NULL;
        int ok = 1;
        if (m == GRAM_APPROX_GRID) ok = gram__approx_grid_supports(k, D, &why);
        else if (m == GRAM_APPROX_FGT) ok = gram__approx_fgt_supports(k, D, &why);
        else if (m == GRAM_APPROX_FEATURES) ok = gram__approx_features_supports(k, D, &why);
        if (!ok)
            return gram__fail(ctx, GRAM_EINVAL, "method %s cannot meet a tolerance for this kernel: %s; methods that "
                              "can: exact%s%s", method_name(m), why ? why : "unsupported", tree_ok ? ", tree" : "",
                              samp_why ? "" : ", sampling");
    }
    if (o.rtol == 0 && o.atol == 0) m = GRAM_APPROX_EXACT; /* nothing to spare: every method would end exact */
    double tree_fraction = 2.0; /* a forced tree runs no pilot */
    gram_approx_method fallback = GRAM_APPROX_EXACT;
    if (m == GRAM_APPROX_AUTO) {
        if (pairs <= GRAM_APPROX_EXACT_PAIRS) m = GRAM_APPROX_EXACT;
        else choose(ctx, k, Y, X, W, &o, tree_ok, !samp_why, &m, &fallback, &tree_fraction);
    }
    if (info) info->method = m, info->delta = 0.0, info->kernel_evaluations = 0;
    if (m == GRAM_APPROX_TREE) {
        /* AUTO's tree runs a pilot first and declines when it would cost more than the best other */
        int declined = 0;
        s = gram__approx_tree_run(ctx, k, Y, X, W, &o, out, err, info, tree_fraction, &declined);
        if (!s && declined) {
            m = fallback;
            if (info) info->method = m;
            if (m == GRAM_APPROX_SAMPLING) s = gram__approx_sampling(ctx, k, Y, X, W, &o, out, err, info);
            else if (m == GRAM_APPROX_GRID) s = gram__approx_grid(ctx, k, Y, X, W, &o, out, err, info);
            else if (m == GRAM_APPROX_FGT) s = gram__approx_fgt(ctx, k, Y, X, W, &o, out, err, info);
            else if (m == GRAM_APPROX_FEATURES) s = gram__approx_features(ctx, k, Y, X, W, &o, out, err, info);
        }
    } else if (m == GRAM_APPROX_SAMPLING) {
        s = gram__approx_sampling(ctx, k, Y, X, W, &o, out, err, info);
    } else if (m == GRAM_APPROX_GRID) {
        s = gram__approx_grid(ctx, k, Y, X, W, &o, out, err, info);
    } else if (m == GRAM_APPROX_FGT) {
        s = gram__approx_fgt(ctx, k, Y, X, W, &o, out, err, info);
    } else if (m == GRAM_APPROX_FEATURES) {
        s = gram__approx_features(ctx, k, Y, X, W, &o, out, err, info);
    }
    if (m == GRAM_APPROX_EXACT) {
        if ((s = gram_kernel_sum(ctx, k, Y, X, W, out))) return s;
        if (err)
            for (int64_t i = 0; i < M; i++)
                for (int64_t v = 0; v < out->cols; v++) gram__put(err, i, v, 0.0);
        if (info) info->method = m, info->delta = 0.0, info->kernel_evaluations = pairs;
    }
    if (s && !(ctx && ctx->message[0])) s = gram__fail(ctx, s, "approx: method %s failed", method_name(m));
    return s;
}

gram_status gram_kernel_logsum_approx(gram_context *ctx, const gram_kernel *k, const gram_array *Y, const gram_array *X,
                                      const gram_array *W, const gram_approx_options *opt, gram_array *out,
                                      gram_array *err, gram_approx_info *info)
{
    gram_approx_options o;
    gram_status s = prelude(ctx, k, &Y, X, W, opt, out, err, &o);
    if (s) return s;
    /* the conditions of gram_kernel_logsum, with its messages */
    if (!k->nonnegative)
        return gram__fail(ctx, GRAM_EDOMAIN, "logsum needs a kernel that is never negative; this one can be");
    if (W && (s = gram__check_nonnegative(ctx, W, "W"))) return s;

    const int64_t M = Y->rows, V = out->cols, D = Y->cols;
    int64_t mv;
    size_t bytes;
    if (!gram__mul_i64(M, V, &mv) || !gram__bytes(mv + 1, sizeof(double), &bytes))
        return gram__fail(ctx, GRAM_EOVERFLOW, "logsum_approx: %lld×%lld values overflow", (long long)M, (long long)V);
    double *lin = gram__alloc(bytes);
    int64_t *low = gram__alloc(sizeof(int64_t) * (size_t)(M + 1));
    void *Yl = NULL;
    double *ll = NULL;
    if (!lin || !low) {
        s = gram__fail(ctx, GRAM_ENOMEM, "logsum_approx: cannot allocate %zu bytes", bytes);
        goto done;
    }
    gram_array L = gram_array_f64(lin, M, V);
    if ((s = gram_kernel_sum_approx(ctx, k, Y, X, W, &o, &L, err, info))) goto done;
    /* A sum within 2^52 of the smallest normal number of out's dtype has lost digits to underflow
     * (or is 0, or an estimate ≤ 0 where the true sum is positive): its log would mean nothing, so
     * those rows are summed exactly in log space, where they are finite. */
    const double tiny = (out->dtype == GRAM_FLOAT32 ? (double)FLT_MIN : DBL_MIN) * 0x1p52;
    int64_t nlow = 0;
    for (int64_t i = 0; i < M; i++) {
        int under = 0;
        for (int64_t v = 0; v < V; v++) under |= !(lin[i * V + v] >= tiny);
        if (under) low[nlow++] = i;
    }
    if (nlow > 0) {
        const size_t es = Y->dtype == GRAM_FLOAT32 ? sizeof(float) : sizeof(double);
        Yl = gram__alloc(es * (size_t)(nlow * D + 1));
        ll = gram__alloc(sizeof(double) * (size_t)(nlow * V + 1));
        if (!Yl || !ll) {
            s = gram__fail(ctx, GRAM_ENOMEM, "logsum_approx: out of memory");
            goto done;
        }
        gram_array Ya = {Yl, Y->dtype, nlow, D, D, 1};
        for (int64_t r = 0; r < nlow; r++)
            for (int64_t d = 0; d < D; d++) gram__put(&Ya, r, d, gram__get(Y, low[r], d));
        gram_array La = gram_array_f64(ll, nlow, V);
        if ((s = gram_kernel_logsum(ctx, k, &Ya, X, W, &La))) goto done;
        if (info) info->kernel_evaluations += nlow * X->rows;
    }
    for (int64_t i = 0; i < M; i++)
        for (int64_t v = 0; v < V; v++) gram__put(out, i, v, log(lin[i * V + v]));
    for (int64_t r = 0; r < nlow; r++)
        for (int64_t v = 0; v < V; v++) {
            gram__put(out, low[r], v, ll[r * V + v]);
            if (err) gram__put(err, low[r], v, 0.0);
        }
done:
    gram__free(lin);
    gram__free(low);
    gram__free(Yl);
    gram__free(ll);
    return s;
}
