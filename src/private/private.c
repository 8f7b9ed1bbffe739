/* private: the public API of the private similarity sketches — options, validation, clipping
 * onto the domain, the split of ε between n and the family's statistic, dispatch to the family
 * (kernels.c, distances.c), queries, info and the privacy accountant.
 *
 * Order inside gram_private_fit, and why:
 *   1. every argument is validated before the generator is keyed, so a refused call draws no
 *      noise and releases nothing;
 *   2. X is copied to float64 row-major and each row clipped onto the domain: the families'
 *      sensitivities assume |x|₂ ≤ R (ball) or |x_j| ≤ R (box), so nothing unclipped reaches them;
 *   3. the generator is keyed (getrandom, or the test seed), the public seed drawn from it unless
 *      given; under add/remove n is released first (so a family that chooses a parameter from n,
 *      such as the distances' tree depth, can use the released n rather than the private one);
 *   4. the family's fit releases its statistic, prepare builds the query cache;
 *   5. the generator is wiped; on any failure the partial sketch is freed and *out stays NULL. */
#include "private.h"

#include <float.h>

#include "../engine/engine.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Limits on what a sketch may ask the families to allocate (elements of float64), shared by fit
 * (an absurd option) and load (a hostile file): the random features R, the JL matrix k × d and
 * the frequencies R × k. 2^26 doubles are 512 MiB: a hostile sketch file cannot make a load
 * allocate more, as d is not otherwise backed by the file's bytes (the JL matrix is redrawn from the
 * seed). */
#define MAX_COMPONENTS ((int64_t)1 << 24)
#define MAX_TABLE ((int64_t)1 << 26)
#define MAX_LEVELS 30
#define MAX_TERMS 64

static const char *const SIM_NAMES[] = {"gaussian", "exponential", "cauchy", "l1", "l2", "lpp"};

static int is_kernel(gram_private_similarity f) { return f <= GRAM_PRIVATE_CAUCHY; }

static const gram__private_family *family_of(gram_private_similarity f)
{
    return is_kernel(f) ? &gram__private_kernels : &gram__private_distances;
}

/* ---- shared with serial.c ------------------------------------------------------------------ */

const char *gram__private_similarity_name(gram_private_similarity f)
{
    return (int)f >= 0 && (int)f < 6 ? SIM_NAMES[f] : "?";
}

/* The checks of the public parameters that fit and load share (fit names options, load names the
 * file's entries; both say which value is wrong). where: NULL for fit (GRAM_EINVAL), else the
 * file's name (GRAM_EFORMAT). */
gram_status gram__private_check_params(gram_context *ctx, const gram_private_sketch *s, const char *where)
{
    const gram_status bad = where ? GRAM_EFORMAT : GRAM_EINVAL;
    const char *w = where ? where : "gram_private_fit";
    const char *name = gram__private_similarity_name(s->similarity);
    const int64_t d = s->dim;
    if (is_kernel(s->similarity)) {
        const int64_t R = s->n_components, k = s->reduced_dim;
        if (R < 2 || R % 2 || R > MAX_COMPONENTS)
            return gram__fail(ctx, bad, "%s: n_components must be an even number of random features in 2..%lld "
                              "for the %s kernel (cos/sin pairs), got %lld", w, (long long)MAX_COMPONENTS, name,
                              (long long)R);
        if (k < 1 || k > d)
            return gram__fail(ctx, bad, "%s: reduced_dim must be in 1..d = %lld, got %lld", w, (long long)d,
                              (long long)k);
        if (k * (double)d > (double)MAX_TABLE || (double)R * (double)k > (double)MAX_TABLE)
            return gram__fail(ctx, bad, "%s: the projection (%lld x %lld) or the frequencies (%lld x %lld) would "
                              "exceed 2^26 values; lower n_components or reduced_dim", w, (long long)k,
                              (long long)d, (long long)R, (long long)k);
        if (s->similarity == GRAM_PRIVATE_CAUCHY ? s->n_terms < 1 || s->n_terms > MAX_TERMS : s->n_terms != 0)
            return gram__fail(ctx, bad, "%s: n_terms must be in 1..%d for the cauchy kernel (0 otherwise), got %d",
                              w, MAX_TERMS, (int)s->n_terms);
    } else {
        if (s->levels < 0 || s->levels > MAX_LEVELS)
            return gram__fail(ctx, bad, "%s: levels must be in 0..%d (0: chosen from n and epsilon), got %d", w,
                              MAX_LEVELS, (int)s->levels);
        if (s->similarity == GRAM_PRIVATE_L2) {
            const int64_t k = s->n_components;
            if (k < 1 || k > MAX_COMPONENTS || k * (double)d > (double)MAX_TABLE)
                return gram__fail(ctx, bad, "%s: n_components (the l1 projections of l2) must be in 1..%lld with "
                                  "n_components x d <= 2^26, got %lld for d = %lld", w, (long long)MAX_COMPONENTS,
                                  (long long)k, (long long)d);
        }
    }
    return GRAM_OK;
}

/* ---- options ------------------------------------------------------------------------------- */

void gram_private_options_init(gram_private_options *o)
{
    if (!o) return;
    memset(o, 0, sizeof *o);
    o->mechanism = GRAM_PRIVATE_PAPER;
    o->domain = GRAM_PRIVATE_BALL;
    o->neighbours = GRAM_PRIVATE_REPLACE;
    o->p = 1.0;
}

/* ---- the sketch ---------------------------------------------------------------------------- */

void gram_private_sketch_destroy(gram_private_sketch *s)
{
    if (!s) return;
    if (s->cache && s->free_cache) s->free_cache(s->cache);
    free(s->values);
    free(s->params);
    free(s);
}

/* Validates the options against f and d; fills s's public fields with the defaults the families
 * do not choose. GRAM_EINVAL naming the option and its value. */
static gram_status set_options(gram_context *ctx, gram_private_sketch *s, gram_private_similarity f, double epsilon,
                               double delta, const gram_private_options *o, int64_t d)
{
    if ((int)f < 0 || (int)f > GRAM_PRIVATE_LPP)
        return gram__fail(ctx, GRAM_EINVAL, "gram_private_fit: unknown similarity %d (expected gaussian, "
                          "exponential, cauchy, l1, l2 or lpp)", (int)f);
    const char *name = SIM_NAMES[f];
    if (!(epsilon > 0) || !isfinite(epsilon))
        return gram__fail(ctx, GRAM_EINVAL, "gram_private_fit: epsilon must be > 0 and finite, got %g", epsilon);
    if (!(delta >= 0 && delta < 1))
        return gram__fail(ctx, GRAM_EINVAL, "gram_private_fit: delta must be in [0, 1), got %g", delta);
    if ((int)o->mechanism != GRAM_PRIVATE_PAPER && (int)o->mechanism != GRAM_PRIVATE_BASELINE)
        return gram__fail(ctx, GRAM_EINVAL, "gram_private_fit: unknown mechanism %d (expected paper or baseline)",
                          (int)o->mechanism);
    if ((int)o->domain != GRAM_PRIVATE_BALL && (int)o->domain != GRAM_PRIVATE_BOX)
        return gram__fail(ctx, GRAM_EINVAL, "gram_private_fit: unknown domain %d (expected ball or box)",
                          (int)o->domain);
    if ((int)o->neighbours != GRAM_PRIVATE_REPLACE && (int)o->neighbours != GRAM_PRIVATE_ADD_REMOVE)
        return gram__fail(ctx, GRAM_EINVAL, "gram_private_fit: unknown neighbours %d (expected replace or "
                          "add-remove)", (int)o->neighbours);
    if (!(o->radius > 0) || !isfinite(o->radius))
        return gram__fail(ctx, GRAM_EINVAL, "gram_private_fit: radius (the domain bound) is required and must be > 0 "
                          "and finite, got %g", o->radius);
    if (is_kernel(f) && (!(o->bandwidth > 0) || !isfinite(o->bandwidth)))
        return gram__fail(ctx, GRAM_EINVAL, "gram_private_fit: bandwidth must be > 0 and finite for the %s kernel, "
                          "got %g", name, o->bandwidth);
    if (f == GRAM_PRIVATE_LPP && !(o->p > 0 && o->p <= 2))
        return gram__fail(ctx, GRAM_EINVAL, "gram_private_fit: p must be in (0, 2] for lpp, got %g", o->p);
    if (o->mechanism == GRAM_PRIVATE_BASELINE && f != GRAM_PRIVATE_GAUSSIAN && f != GRAM_PRIVATE_EXPONENTIAL &&
        f != GRAM_PRIVATE_L1)
        return gram__fail(ctx, GRAM_EINVAL, "gram_private_fit: mechanism 'baseline' does not exist for %s (baselines: "
                          "gaussian, exponential and l1)", name);
    if (o->n_components < 0)
        return gram__fail(ctx, GRAM_EINVAL, "gram_private_fit: n_components must be >= 0 (0: the default), got %lld",
                          (long long)o->n_components);
    if (o->reduced_dim < 0)
        return gram__fail(ctx, GRAM_EINVAL, "gram_private_fit: reduced_dim must be >= 0 (0: the default), got %lld",
                          (long long)o->reduced_dim);
    if (o->levels < 0 || o->levels > MAX_LEVELS)
        return gram__fail(ctx, GRAM_EINVAL, "gram_private_fit: levels must be in 0..%d (0: chosen from n and "
                          "epsilon), got %d", MAX_LEVELS, (int)o->levels);
    if (o->n_terms < 0 || o->n_terms > MAX_TERMS)
        return gram__fail(ctx, GRAM_EINVAL, "gram_private_fit: n_terms must be in 0..%d (0: 8), got %d", MAX_TERMS,
                          (int)o->n_terms);

    s->similarity = f;
    s->mechanism = o->mechanism;
    s->domain = o->domain;
    s->neighbours = o->neighbours;
    s->radius = o->radius;
    s->bandwidth = is_kernel(f) ? o->bandwidth : 0;
    s->p = f == GRAM_PRIVATE_LPP ? o->p : f == GRAM_PRIVATE_L2 ? 2 : 1;
    s->epsilon = epsilon;
    s->delta = delta;
    s->dim = d;
    if (is_kernel(f)) {
        s->n_components = o->n_components ? o->n_components : 1024;
        /* The baseline has no reduction; the paper's reduces to min(d, 64) unless told. */
        s->reduced_dim = o->mechanism == GRAM_PRIVATE_BASELINE ? d
                         : o->reduced_dim                        ? (o->reduced_dim < d ? o->reduced_dim : d)
                         : d < 64                                ? d
                                                                 : 64;
        s->n_terms = f == GRAM_PRIVATE_CAUCHY ? (o->n_terms ? o->n_terms : 8) : 0;
    } else {
        s->n_components = f == GRAM_PRIVATE_L2 ? (o->n_components ? o->n_components : 64) : 0;
        s->levels = o->levels;
    }
    return gram__private_check_params(ctx, s, NULL);
}

/* |x|₂ of a row in long double, taken on x/max|x_j| so that huge or tiny finite entries neither
 * overflow nor underflow; *m gets max|x_j| and *ss the sum of squares of x/m. */
static long double row_norm(const double *x, int64_t d, double *m, long double *ss)
{
    double mx = 0;
    for (int64_t j = 0; j < d; j++) mx = fmax(mx, fabs(x[j]));
    long double s = 0;
    if (mx > 0)
        for (int64_t j = 0; j < d; j++) {
            const long double t = (long double)x[j] / mx;
            s += t * t;
        }
    *m = mx;
    *ss = s;
    return (long double)mx * sqrtl(s);
}

/* X (n × d, any strides, float64 or float32, finite) → out (n × d float64 row-major) clipped onto
 * the domain. Returns the number of rows clipped. A ball row is scaled by R/|x|₂, computed as
 * (x_j/m)·(R/√ss) in long double (no intermediate overflows or underflows, whatever R and x), and
 * checked again: the families' sensitivities assume |x|₂ ≤ R exactly, so while rounding leaves
 * the computed norm above R the row is shrunk by a growing margin (2^-40, 2^-36, ...: far below
 * any effect on a sum), and a row that still fails after eight passes (never seen) becomes 0. */
int64_t gram__private_clip(const gram_array *X, gram_private_domain domain, double R, double *out)
{
    const int64_t n = X->rows, d = X->cols;
    int64_t clipped = 0;
    for (int64_t i = 0; i < n; i++) {
        double *x = out + i * d;
        for (int64_t j = 0; j < d; j++) x[j] = gram__get(X, i, j);
        if (domain == GRAM_PRIVATE_BOX) {
            int c = 0;
            for (int64_t j = 0; j < d; j++) {
                if (x[j] > R) x[j] = R, c = 1;
                else if (x[j] < -R) x[j] = -R, c = 1;
            }
            clipped += c;
            continue;
        }
        double m;
        long double ss;
        const long double nrm = row_norm(x, d, &m, &ss);
        if (nrm <= R) continue;
        /* a row within 16 ulps of the sphere is the caller's own rounding (X / max |x| · R in
         * NumPy lands an ulp above R): clipped like any other, but not reported as outside */
        if (nrm > (long double)R * (1 + 16 * DBL_EPSILON)) clipped++;
        int pass = 0;
        do {
            const long double f = (long double)R / sqrtl(ss) * (pass ? 1 - ldexpl(1, -44 + 4 * pass) : 1);
            for (int64_t j = 0; j < d; j++) x[j] = (double)((long double)x[j] / m * f);
        } while (row_norm(x, d, &m, &ss) > R && ++pass < 8);
        if (pass == 8)
            for (int64_t j = 0; j < d; j++) x[j] = 0;
    }
    return clipped;
}

/* Releases n under add/remove: a count of sensitivity 1 with the part of ε, δ the main statistic
 * does not use. */
static gram_status release_n(gram_context *ctx, gram_private_sketch *s, int64_t n, gram__csprng *r)
{
    int64_t v = n;
    gram__statistic st = {.m = 1, .v = &v, .unit = 1, .sens_l1 = 1, .sens_l2 = 1, .allow_coarsen = 0};
    gram__release_record rec;
    double out;
    gram_status st_ = gram__release(ctx, &st, s->epsilon - s->eps_main, s->delta - s->delta_main, r, &out, &rec);
    if (st_) return st_;
    s->n_released = out;
    return GRAM_OK;
}

/* Appends text to the sketch's sensitivity words (truncated at the field's size). */
static void append_sensitivity(gram_private_sketch *s, const char *text)
{
    s->sensitivity[sizeof s->sensitivity - 1] = '\0';
    const size_t used = strlen(s->sensitivity);
    if (used + 1 < sizeof s->sensitivity) snprintf(s->sensitivity + used, sizeof s->sensitivity - used, "%s", text);
}

gram_status gram_private_fit(gram_context *ctx, const gram_array *X, gram_private_similarity f, double epsilon,
                             double delta, const gram_private_options *opt, gram_private_sketch **out)
{
    gram__clear(ctx);
    if (!out) return gram__fail(ctx, GRAM_EINVAL, "gram_private_fit: out is NULL");
    *out = NULL;
    if (!opt) return gram__fail(ctx, GRAM_EINVAL, "gram_private_fit: opt is NULL (gram_private_options_init "
                                "sets the defaults; the radius is required)");
    gram_status st = gram__check_array(ctx, X, "X");
    if (st) return st;
    if (X->rows == 0 || X->cols == 0)
        return gram__fail(ctx, GRAM_ESHAPE, "gram_private_fit: X is empty (%lld x %lld); a sketch needs at least "
                          "one row of at least one column", (long long)X->rows, (long long)X->cols);
    gram_private_sketch *s = calloc(1, sizeof *s);
    if (!s) return gram__fail(ctx, GRAM_ENOMEM, "gram_private_fit: out of memory");
    double *Xc = NULL;
    gram__csprng r;
    int keyed = 0;
    size_t bytes;
    if ((st = set_options(ctx, s, f, epsilon, delta, opt, X->cols)) || (st = gram__check_finite(ctx, X, "X")))
        goto fail;
    if (!gram__bytes(X->rows * X->cols, sizeof(double), &bytes) || !(Xc = gram__alloc(bytes))) {
        st = gram__fail(ctx, GRAM_ENOMEM, "gram_private_fit: out of memory copying X (%lld x %lld)",
                        (long long)X->rows, (long long)X->cols);
        goto fail;
    }
    const int64_t n = X->rows;
    const int64_t clipped = gram__private_clip(X, s->domain, s->radius, Xc);

    if (opt->has_noise_seed) {
        gram__csprng_init_seed(&r, opt->noise_seed);
    } else if ((st = gram__csprng_init_os(ctx, &r))) {
        goto fail;
    }
    keyed = 1;
    s->test_noise = opt->has_noise_seed ? 1 : 0;
    s->seed = opt->has_seed ? opt->seed : gram__csprng_u64(&r);
    if (s->neighbours == GRAM_PRIVATE_ADD_REMOVE) {
        /* n is one count: 10% of ε with discrete Laplace noise (scale 10/ε) and none of δ. A
         * Gaussian release of n with a share of δ was much worse (at 5% of ε = 0.5 and δ = 1e-5,
         * σ ≈ 200 on class sizes of 135: docs/private.md). 0.9ε lies in [ε/2, 2ε], so ε - 0.9ε is
         * exact (Sterbenz): the two shares add up to ε exactly, not to one rounding above it. */
        s->eps_main = 0.9 * epsilon;
        s->delta_main = delta;
        if ((st = release_n(ctx, s, n, &r))) goto fail;
    } else {
        s->eps_main = epsilon;
        s->delta_main = delta;
        s->n_released = (double)n;
    }
    const gram__private_family *fam = family_of(f);
    if ((st = fam->fit(ctx, s, Xc, n, &r)) || (st = fam->prepare(ctx, s))) goto fail;
    if (s->neighbours == GRAM_PRIVATE_ADD_REMOVE) {
        char text[160];
        snprintf(text, sizeof text, "; n released separately with 10%% of epsilon%s (a count, sensitivity 1, "
                 "discrete Laplace)", delta > 0 ? " and none of delta" : "");
        append_sensitivity(s, text);
    }
    gram__csprng_wipe(&r);
    gram__free(Xc);
    s->n_clipped = clipped;
    *out = s;
    return GRAM_OK;
fail:
    if (keyed) gram__csprng_wipe(&r);
    gram__free(Xc);
    gram_private_sketch_destroy(s);
    return st;
}

/* ---- queries ------------------------------------------------------------------------------- */

static gram_status query_any(gram_context *ctx, const char *fn, const gram_private_sketch *s, const gram_array *Y,
                             gram_array *out, int mean)
{
    gram__clear(ctx);
    if (!s) return gram__fail(ctx, GRAM_EINVAL, "%s: the sketch is NULL", fn);
    if (!out) return gram__fail(ctx, GRAM_EINVAL, "%s: out is NULL", fn);
    gram_status st = gram__check_array(ctx, Y, "Y");
    if (st || (st = gram__check_array(ctx, out, "out"))) return st;
    const int64_t m = Y->rows;
    if (Y->cols != s->dim && !(m == 0 && Y->cols == 0))
        return gram__fail(ctx, GRAM_ESHAPE, "%s: Y has %lld columns but the sketch was fitted on d = %lld", fn,
                          (long long)Y->cols, (long long)s->dim);
    if (out->dtype != GRAM_FLOAT64)
        return gram__fail(ctx, GRAM_EINVAL, "%s: out must be float64", fn);
    if (!((out->rows == m && out->cols == 1) || (out->rows == 1 && out->cols == m) || (m == 0 && out->rows == 0 &&
          out->cols == 0)))
        return gram__fail(ctx, GRAM_ESHAPE, "%s: out is %lld x %lld; expected %lld values (%lld x 1 or 1 x %lld)",
                          fn, (long long)out->rows, (long long)out->cols, (long long)m, (long long)m, (long long)m);
    if ((st = gram__check_no_overlap(ctx, out, Y, "out", "Y"))) return st;
    if (m == 0) return GRAM_OK;
    if ((st = gram__check_finite(ctx, Y, "Y"))) return st;
    if (!s->cache && !s->values)
        return gram__fail(ctx, GRAM_EINVAL, "%s: the sketch holds no released values", fn);
    size_t by, bo;
    if (!gram__bytes(m * s->dim, sizeof(double), &by) || !gram__bytes(m, sizeof(double), &bo))
        return gram__fail(ctx, GRAM_EOVERFLOW, "%s: Y of %lld x %lld is too large", fn, (long long)m,
                          (long long)s->dim);
    double *Yc = gram__alloc(by), *o = gram__alloc(bo);
    if (!Yc || !o) {
        gram__free(Yc);
        gram__free(o);
        return gram__fail(ctx, GRAM_ENOMEM, "%s: out of memory (%lld queries)", fn, (long long)m);
    }
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < s->dim; j++) Yc[i * s->dim + j] = gram__get(Y, i, j);
    st = family_of(s->similarity)->query(ctx, s, Yc, m, o);
    /* A fitted sketch's answers are finite; a loaded one's released values may be huge (a hostile
     * or damaged file within the loader's ranges), and a sum of them overflow. */
    for (int64_t i = 0; !st && i < m; i++)
        if (!isfinite(o[i]))
            st = gram__fail(ctx, GRAM_EOVERFLOW, "%s: the answer at row %lld of Y overflows (the sketch's released "
                            "values are too large to sum)", fn, (long long)i);
    if (!st) {
        /* Division by the released n, floored at 1: under add/remove n̂ may be ≤ 0. */
        const double nn = s->n_released >= 1 ? s->n_released : 1;
        const int64_t stride = out->rows == m ? out->row_stride : out->col_stride;
        for (int64_t i = 0; i < m; i++) ((double *)out->data)[i * stride] = mean ? o[i] / nn : o[i];
    }
    gram__free(Yc);
    gram__free(o);
    return st;
}

gram_status gram_private_query(gram_context *ctx, const gram_private_sketch *s, const gram_array *Y, gram_array *out)
{
    return query_any(ctx, "gram_private_query", s, Y, out, 0);
}

gram_status gram_private_query_mean(gram_context *ctx, const gram_private_sketch *s, const gram_array *Y,
                                    gram_array *out)
{
    return query_any(ctx, "gram_private_query_mean", s, Y, out, 1);
}

/* ---- metadata ------------------------------------------------------------------------------ */

gram_status gram_private_sketch_info(const gram_private_sketch *s, gram_private_info *info)
{
    if (!s || !info) return GRAM_EINVAL;
    memset(info, 0, sizeof *info);
    info->similarity = s->similarity;
    info->mechanism = s->mechanism;
    info->domain = s->domain;
    info->neighbours = s->neighbours;
    info->radius = s->radius;
    info->bandwidth = s->bandwidth;
    info->p = s->p;
    info->epsilon = s->epsilon;
    info->delta = s->delta;
    info->dim = s->dim;
    info->n = s->n_released;
    info->n_components = s->n_components;
    info->reduced_dim = s->reduced_dim;
    info->levels = s->levels;
    info->n_terms = s->n_terms;
    info->seed = s->seed;
    info->noise = s->rec.kind == GRAM__NOISE_GAUSSIAN ? "discrete_gaussian" : "discrete_laplace";
    info->noise_scale = s->rec.scale;
    info->approx_error = s->approx_error;
    info->sensitivity = s->sensitivity;
    info->test_noise = s->test_noise;
    return GRAM_OK;
}

int64_t gram_private_sketch_n_clipped(const gram_private_sketch *s) { return s ? s->n_clipped : -1; }

/* ---- the test hook ------------------------------------------------------------------------- */

gram_status gram__private_statistic(gram_context *ctx, const gram_private_sketch *s, const gram_array *X,
                                    gram__statistic *st)
{
    gram__clear(ctx);
    if (!s || !st) return gram__fail(ctx, GRAM_EINVAL, "gram__private_statistic: NULL argument");
    memset(st, 0, sizeof *st);
    gram_status rc = gram__check_array(ctx, X, "X");
    if (rc) return rc;
    if (X->rows == 0 || X->cols != s->dim)
        return gram__fail(ctx, GRAM_ESHAPE, "gram__private_statistic: X is %lld x %lld; expected n >= 1 rows of "
                          "d = %lld", (long long)X->rows, (long long)X->cols, (long long)s->dim);
    if ((rc = gram__check_finite(ctx, X, "X"))) return rc;
    size_t bytes;
    double *Xc = NULL;
    if (!gram__bytes(X->rows * X->cols, sizeof(double), &bytes) || !(Xc = gram__alloc(bytes)))
        return gram__fail(ctx, GRAM_ENOMEM, "gram__private_statistic: out of memory");
    gram__private_clip(X, s->domain, s->radius, Xc);
    rc = family_of(s->similarity)->statistic(ctx, s, Xc, X->rows, st);
    gram__free(Xc);
    return rc;
}

/* ---- the accountant ------------------------------------------------------------------------ */

typedef struct acct_entry {
    double epsilon, delta;
    int64_t partition, part;
    int add_remove, test_noise;
} acct_entry;

struct gram_privacy_accountant {
    acct_entry *e;
    int64_t n, cap;
};

gram_status gram_privacy_accountant_create(gram_context *ctx, gram_privacy_accountant **out)
{
    gram__clear(ctx);
    if (!out) return gram__fail(ctx, GRAM_EINVAL, "gram_privacy_accountant_create: out is NULL");
    *out = calloc(1, sizeof **out);
    return *out ? GRAM_OK : gram__fail(ctx, GRAM_ENOMEM, "gram_privacy_accountant_create: out of memory");
}

void gram_privacy_accountant_destroy(gram_privacy_accountant *a)
{
    if (!a) return;
    free(a->e);
    free(a);
}

gram_status gram_privacy_accountant_add(gram_context *ctx, gram_privacy_accountant *a, const gram_private_sketch *s,
                                        int64_t partition, int64_t part)
{
    gram__clear(ctx);
    if (!a || !s) return gram__fail(ctx, GRAM_EINVAL, "gram_privacy_accountant_add: NULL %s", a ? "sketch" : "accountant");
    if (partition < -1)
        return gram__fail(ctx, GRAM_EINVAL, "gram_privacy_accountant_add: partition must be -1 (the whole data set) "
                          "or an id >= 0, got %lld", (long long)partition);
    if (partition >= 0 && part < 0)
        return gram__fail(ctx, GRAM_EINVAL, "gram_privacy_accountant_add: part must be >= 0, got %lld",
                          (long long)part);
    if (partition >= 0 && s->neighbours != GRAM_PRIVATE_ADD_REMOVE)
        return gram__fail(ctx, GRAM_EINVAL, "gram_privacy_accountant_add: a sketch of one part of a partition must "
                          "use add/remove neighbours (under replace-one a changed row may move to another part, "
                          "which a replace-one release does not cover)");
    if (!(s->epsilon > 0) || !isfinite(s->epsilon) || !(s->delta >= 0 && s->delta < 1))
        return gram__fail(ctx, GRAM_EINVAL, "gram_privacy_accountant_add: the sketch's epsilon %g, delta %g are not "
                          "a valid cost", s->epsilon, s->delta);
    if (a->n == a->cap) {
        const int64_t cap = a->cap ? 2 * a->cap : 8;
        acct_entry *e = realloc(a->e, (size_t)cap * sizeof *e);
        if (!e) return gram__fail(ctx, GRAM_ENOMEM, "gram_privacy_accountant_add: out of memory");
        a->e = e;
        a->cap = cap;
    }
    a->e[a->n++] = (acct_entry){s->epsilon, s->delta, partition, partition >= 0 ? part : -1,
                                s->neighbours == GRAM_PRIVATE_ADD_REMOVE, s->test_noise};
    return GRAM_OK;
}

/* Under replace-one neighbours (the accountant's unit): a whole-data release costs its (ε, δ), or
 * twice that if it was made for add/remove neighbours (a replacement is a removal and an addition);
 * releases add up (basic composition). A partition's parts are disjoint: a replaced row leaves one
 * part and joins at most one other, so the partition costs the sum of its two most expensive parts
 * (each part's cost the sum of the releases on it; ε and δ ranked separately, which can only
 * overstate). */
gram_status gram_privacy_accountant_total(const gram_privacy_accountant *a, double *epsilon, double *delta)
{
    if (!a || !epsilon || !delta) return GRAM_EINVAL;
    long double eps = 0, del = 0;
    for (int64_t i = 0; i < a->n; i++) {
        const acct_entry *e = &a->e[i];
        if (e->partition >= 0) continue;
        eps += (e->add_remove ? 2.0L : 1.0L) * e->epsilon;
        del += (e->add_remove ? 2.0L : 1.0L) * e->delta;
    }
    /* Each (partition, part) pair once: the first entry that names it sums all entries with it. */
    for (int64_t i = 0; i < a->n; i++) {
        const acct_entry *e = &a->e[i];
        if (e->partition < 0) continue;
        int first_of_partition = 1;
        for (int64_t j = 0; j < i && first_of_partition; j++) first_of_partition = a->e[j].partition != e->partition;
        if (!first_of_partition) continue;
        long double top_e[2] = {0, 0}, top_d[2] = {0, 0};
        for (int64_t j = i; j < a->n; j++) {
            const acct_entry *p = &a->e[j];
            if (p->partition != e->partition) continue;
            int first_of_part = 1;
            for (int64_t k = i; k < j && first_of_part; k++)
                first_of_part = !(a->e[k].partition == p->partition && a->e[k].part == p->part);
            if (!first_of_part) continue;
            long double pe = 0, pd = 0;
            for (int64_t k = j; k < a->n; k++)
                if (a->e[k].partition == p->partition && a->e[k].part == p->part) pe += a->e[k].epsilon, pd += a->e[k].delta;
            if (pe > top_e[0]) top_e[1] = top_e[0], top_e[0] = pe;
            else if (pe > top_e[1]) top_e[1] = pe;
            if (pd > top_d[0]) top_d[1] = top_d[0], top_d[0] = pd;
            else if (pd > top_d[1]) top_d[1] = pd;
        }
        eps += top_e[0] + top_e[1];
        del += top_d[0] + top_d[1];
    }
    /* Rounded up, so the total reported is never below the true sum. */
    double e_out = (double)eps, d_out = (double)del;
    if ((long double)e_out < eps) e_out = nextafter(e_out, INFINITY);
    if ((long double)d_out < del) d_out = nextafter(d_out, INFINITY);
    *epsilon = e_out;
    *delta = d_out;
    return GRAM_OK;
}

int64_t gram_privacy_accountant_count(const gram_privacy_accountant *a) { return a ? a->n : 0; }

int64_t gram_privacy_accountant_count_test_noise(const gram_privacy_accountant *a)
{
    int64_t c = 0;
    if (a)
        for (int64_t i = 0; i < a->n; i++) c += a->e[i].test_noise != 0;
    return c;
}
