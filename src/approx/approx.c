/* approx: the front end of the approximate sums (docs/approx.md, "The tolerance" and "Choosing a
 * method"): options, every argument checked before any work, the automatic choice, the exact path.
 * The argument checks are the engine's own (gram__check_sum_args), so both fail with one message. */
#include "approx.h"

#include "../engine/engine.h"
#include "../kernel/kernel.h"

#include <float.h>
#include <math.h>
#include <string.h>

/* AUTO sums exactly below this many pairs: a tree's build and bounds cost about as much. */
#define GRAM_APPROX_EXACT_PAIRS ((int64_t)1 << 20)
/* AUTO's tree covers D ≤ this: beyond it, kd-tree boxes are too loose to prune (docs/approx.md). */
#define GRAM_APPROX_TREE_MAX_D 16
/* AUTO's sampling needs rtol ≥ this: below it the sample is most of X anyway. */
#define GRAM_APPROX_SAMPLING_MIN_RTOL 1e-2
/* AUTO keeps the tree when its pilot finds it would sum at most this fraction of the pairs exactly:
 * its exact parts run ~2× slower per pair than one gram_kernel_sum (smaller engine calls, X
 * packed per block), so beyond ~0.5 it loses (docs/approx.md). */
#define GRAM_APPROX_TREE_MAX_FRACTION 0.4

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

gram_status gram_kernel_sum_approx(gram_context *ctx, const gram_kernel *k, const gram_array *Y, const gram_array *X,
                                   const gram_array *W, const gram_approx_options *opt, gram_array *out,
                                   gram_array *err, gram_approx_info *info)
{
    gram__clear(ctx);
    gram_approx_options o;
    if (opt) o = *opt;
    else gram_approx_options_init(&o);
    gram_status s = check_options(ctx, &o);
    if (s) return s;
    if (!Y) Y = X;
    if ((s = check_args(ctx, k, Y, X, W, out, err))) return s;

    const int64_t M = Y->rows, N = X->rows, D = X->cols;
    int64_t pairs;
    if (!gram__mul_i64(M, N, &pairs)) pairs = INT64_MAX;
    const char *tree_why = NULL, *samp_why = NULL;
    const int tree_ok = gram__approx_tree_supports(k, &tree_why);
    if (!gram__approx_sampling_supports(k, &samp_why) && !samp_why) samp_why = "its values have no finite range";
    gram_approx_method m = o.method;
    const int automatic = m == GRAM_APPROX_AUTO;
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
    if (m == GRAM_APPROX_AUTO) {
        if (pairs <= GRAM_APPROX_EXACT_PAIRS) m = GRAM_APPROX_EXACT;
        else if (tree_ok && D <= GRAM_APPROX_TREE_MAX_D) m = GRAM_APPROX_TREE;
        else if (!samp_why && k->nonnegative && D > GRAM_APPROX_TREE_MAX_D && o.rtol >= GRAM_APPROX_SAMPLING_MIN_RTOL)
            m = GRAM_APPROX_SAMPLING;
        else m = GRAM_APPROX_EXACT;
    }
    if (info) info->method = m, info->delta = 0.0, info->kernel_evaluations = 0;
    if (m == GRAM_APPROX_TREE) {
        /* AUTO's tree runs a pilot first and declines when it would sum most pairs exactly */
        int declined = 0;
        s = gram__approx_tree_run(ctx, k, Y, X, W, &o, out, err, info, automatic ? GRAM_APPROX_TREE_MAX_FRACTION : 2.0,
                                  &declined);
        if (!s && declined) m = GRAM_APPROX_EXACT;
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
    gram__clear(ctx);
    gram_approx_options o;
    if (opt) o = *opt;
    else gram_approx_options_init(&o);
    gram_status s = check_options(ctx, &o);
    if (s) return s;
    if (!Y) Y = X;
    if ((s = check_args(ctx, k, Y, X, W, out, err))) return s;
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
