/* Sketch files: a released private sketch in gram's model file (src/io/model_file.h: versioned,
 * checksummed, every declared size checked against the bytes present, written through a temporary
 * name), kind "private".
 *
 * A sketch file holds only what was released and the public parameters: never a row of X, the
 * clip count (not private) or an exact statistic. Entries (reals are 1 × 1 matrices; 64-bit
 * unsigned values are stored as their two's complement):
 *
 *     private_format  int64: the layout of this kind, 1 (a larger one is refused: upgrade gram)
 *     similarity, mechanism, domain, neighbours, noise    strings ("gaussian", "paper", "ball",
 *                     "replace", "discrete_laplace", ...)
 *     radius, bandwidth, p, epsilon, delta, eps_main, delta_main, n_released, approx_error
 *     dim, n_components, reduced_dim, levels, n_terms, seed, test_noise        int64
 *     rec_epsilon, rec_delta, rec_sens_l2, rec_scale     reals: the main statistic's release record
 *     rec_shift, rec_sens_l1, rec_num, rec_den           int64
 *     sensitivity     string: the sensitivity and its derivation, in words
 *     values          n_values × 1: exactly what gram__release returned
 *     params          n_params × 1: the family's data-independent numbers (may be 0 × 1)
 *
 * The loader checks every field's range and their consistency (the noise against δ, the release's
 * share of ε, n_values against the count the similarity, d and the tree depth imply), with the
 * same limits as gram_private_fit on what a family may allocate (gram__private_check_params), so a
 * hostile file cannot make prepare allocate what no fit would; then the family's prepare rebuilds
 * the cache from the public seed. */
#include "private.h"

#include "../io/model_file.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define KIND "private"
#define LAYOUT 1
#define MAX_DIM ((int64_t)1 << 26) /* k·d ≤ 2^26 with k ≥ 1 (gram__private_check_params) */

static const char *const MECH_NAMES[] = {"paper", "baseline"};
static const char *const DOMAIN_NAMES[] = {"ball", "box"};
static const char *const NEIGH_NAMES[] = {"replace", "add-remove"};
static const char *const NOISE_NAMES[] = {"discrete_laplace", "discrete_gaussian"};
static const char *const SIM_NAMES[] = {"gaussian", "exponential", "cauchy", "l1", "l2", "lpp"};

/* ---- saving ------------------------------------------------------------------------------------ */

static gram_status add_real(gram_context *ctx, gram__model_file *m, const char *name, double v)
{
    return gram__model_add_f64(ctx, m, name, &v, 1, 1);
}

static gram_status to_file(gram_context *ctx, const gram_private_sketch *s, gram__model_file *m)
{
    gram__model_file_init(m, KIND);
    if ((int)s->similarity < 0 || (int)s->similarity > 5 || (unsigned)s->mechanism > 1 || (unsigned)s->domain > 1 ||
        (unsigned)s->neighbours > 1 || (unsigned)s->rec.kind > 1)
        return gram__fail(ctx, GRAM_EINVAL, "gram_private_save: the sketch's fields are out of range");
    if (s->n_values < 1 || !s->values || s->n_params < 0 || (s->n_params > 0 && !s->params))
        return gram__fail(ctx, GRAM_EINVAL, "gram_private_save: the sketch holds no released values");
    char sens[sizeof s->sensitivity];
    memcpy(sens, s->sensitivity, sizeof sens);
    sens[sizeof sens - 1] = '\0';
    gram_status st;
    if ((st = gram__model_add_i64(ctx, m, "private_format", LAYOUT)) ||
        (st = gram__model_add_str(ctx, m, "similarity", SIM_NAMES[s->similarity])) ||
        (st = gram__model_add_str(ctx, m, "mechanism", MECH_NAMES[s->mechanism])) ||
        (st = gram__model_add_str(ctx, m, "domain", DOMAIN_NAMES[s->domain])) ||
        (st = gram__model_add_str(ctx, m, "neighbours", NEIGH_NAMES[s->neighbours])) ||
        (st = gram__model_add_str(ctx, m, "noise", NOISE_NAMES[s->rec.kind])) ||
        (st = add_real(ctx, m, "radius", s->radius)) || (st = add_real(ctx, m, "bandwidth", s->bandwidth)) ||
        (st = add_real(ctx, m, "p", s->p)) || (st = add_real(ctx, m, "epsilon", s->epsilon)) ||
        (st = add_real(ctx, m, "delta", s->delta)) || (st = add_real(ctx, m, "eps_main", s->eps_main)) ||
        (st = add_real(ctx, m, "delta_main", s->delta_main)) ||
        (st = add_real(ctx, m, "n_released", s->n_released)) ||
        (st = add_real(ctx, m, "approx_error", s->approx_error)) ||
        (st = gram__model_add_i64(ctx, m, "dim", s->dim)) ||
        (st = gram__model_add_i64(ctx, m, "n_components", s->n_components)) ||
        (st = gram__model_add_i64(ctx, m, "reduced_dim", s->reduced_dim)) ||
        (st = gram__model_add_i64(ctx, m, "levels", s->levels)) ||
        (st = gram__model_add_i64(ctx, m, "n_terms", s->n_terms)) ||
        (st = gram__model_add_i64(ctx, m, "seed", (int64_t)s->seed)) ||
        (st = gram__model_add_i64(ctx, m, "test_noise", s->test_noise ? 1 : 0)) ||
        (st = add_real(ctx, m, "rec_epsilon", s->rec.epsilon)) || (st = add_real(ctx, m, "rec_delta", s->rec.delta)) ||
        (st = add_real(ctx, m, "rec_sens_l2", s->rec.sens_l2)) || (st = add_real(ctx, m, "rec_scale", s->rec.scale)) ||
        (st = gram__model_add_i64(ctx, m, "rec_shift", s->rec.shift)) ||
        (st = gram__model_add_i64(ctx, m, "rec_sens_l1", (int64_t)s->rec.sens_l1)) ||
        (st = gram__model_add_i64(ctx, m, "rec_num", (int64_t)s->rec.num)) ||
        (st = gram__model_add_i64(ctx, m, "rec_den", (int64_t)s->rec.den)) ||
        (st = gram__model_add_str(ctx, m, "sensitivity", sens)) ||
        (st = gram__model_add_f64(ctx, m, "values", s->values, s->n_values, 1)) ||
        (st = gram__model_add_f64(ctx, m, "params", s->params, s->n_params, 1)))
        return st;
    return GRAM_OK;
}

/* ---- loading ----------------------------------------------------------------------------------- */

static int lookup(const char *const *names, int n, const char *s)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(names[i], s)) return i;
    return -1;
}

static gram_status get_enum(gram_context *ctx, const gram__model_file *m, const char *where, const char *name,
                            const char *const *names, int n, int *out)
{
    const char *v;
    gram_status st = gram__model_get_str(ctx, m, where, name, &v);
    if (st) return st;
    if ((*out = lookup(names, n, v)) < 0)
        return gram__fail(ctx, GRAM_EFORMAT, "%s: entry '%s' is '%.40s', not one gram knows", where, name, v);
    return GRAM_OK;
}

static gram_status get_real(gram_context *ctx, const gram__model_file *m, const char *where, const char *name,
                            double *out)
{
    const double *v;
    int64_t r, c;
    gram_status st = gram__model_get_f64(ctx, m, where, name, &v, &r, &c);
    if (st) return st;
    if (r != 1 || c != 1)
        return gram__fail(ctx, GRAM_EFORMAT, "%s: entry '%s' is %lld x %lld, expected 1 x 1", where, name,
                          (long long)r, (long long)c);
    if (!isfinite(v[0])) return gram__fail(ctx, GRAM_EFORMAT, "%s: entry '%s' is not finite", where, name);
    *out = v[0];
    return GRAM_OK;
}

/* A column of finite values (n × 1; 0 × 1 allowed when empty_ok). */
static gram_status get_column(gram_context *ctx, const gram__model_file *m, const char *where, const char *name,
                              int empty_ok, double **out, int64_t *n)
{
    const double *v;
    int64_t r, c;
    gram_status st = gram__model_get_f64(ctx, m, where, name, &v, &r, &c);
    if (st) return st;
    if (c != 1 || (r < 1 && !empty_ok))
        return gram__fail(ctx, GRAM_EFORMAT, "%s: entry '%s' is %lld x %lld, expected a column of %s values", where,
                          name, (long long)r, (long long)c, empty_ok ? "0 or more" : "1 or more");
    for (int64_t i = 0; i < r; i++)
        if (!isfinite(v[i]))
            return gram__fail(ctx, GRAM_EFORMAT, "%s: entry '%s' holds a non-finite value (at %lld)", where, name,
                              (long long)i);
    *n = r;
    *out = NULL;
    if (r == 0) return GRAM_OK;
    if (!(*out = malloc((size_t)r * sizeof(double))))
        return gram__fail(ctx, GRAM_ENOMEM, "%s: out of memory loading a sketch", where);
    memcpy(*out, v, (size_t)r * sizeof(double));
    return GRAM_OK;
}

/* The number of released values a similarity's statistic has (distances.c and kernels.c state
 * their layouts). The distances release every node of levels 1..L of each coordinate's dyadic
 * tree (2^(L+1) - 2 nodes), and the root too under add/remove; their baseline 2^L cell counts per
 * coordinate; the kernels one sum of R features per exponential term. */
static int64_t expected_values(const gram_private_sketch *s)
{
    switch (s->similarity) {
    case GRAM_PRIVATE_GAUSSIAN:
    case GRAM_PRIVATE_EXPONENTIAL: return s->n_components;
    case GRAM_PRIVATE_CAUCHY: return s->n_terms * s->n_components;
    case GRAM_PRIVATE_L1:
    case GRAM_PRIVATE_LPP:
    case GRAM_PRIVATE_L2: {
        const int64_t coords = s->similarity == GRAM_PRIVATE_L2 ? s->n_components : s->dim;
        const int64_t nodes = s->mechanism == GRAM_PRIVATE_BASELINE
                                  ? (int64_t)1 << s->levels
                                  : ((int64_t)2 << s->levels) - 2 + (s->neighbours == GRAM_PRIVATE_ADD_REMOVE);
        return (double)coords * (double)nodes > 9e15 ? INT64_MAX : coords * nodes;
    }
    }
    return -1;
}

static gram_status from_file(gram_context *ctx, const gram__model_file *m, const char *where,
                             gram_private_sketch **out)
{
    int64_t layout;
    gram_status st = gram__model_get_i64(ctx, m, where, "private_format", &layout);
    if (st) return st;
    if (layout > LAYOUT)
        return gram__fail(ctx, GRAM_EFORMAT, "%s: private sketch layout %lld is newer than this gram supports (%d); "
                          "upgrade gram (the file was written by gram %s)", where, (long long)layout, LAYOUT,
                          m->writer);
    if (layout < 1) return gram__fail(ctx, GRAM_EFORMAT, "%s: private sketch layout %lld is not valid", where,
                                      (long long)layout);
    gram_private_sketch *s = calloc(1, sizeof *s);
    if (!s) return gram__fail(ctx, GRAM_ENOMEM, "%s: out of memory loading a sketch", where);
    int sim, mech, dom, nb, noise;
    int64_t dim, R, k, levels, terms, seed, test, shift, sl1, num, den;
    const char *sens;
    if ((st = get_enum(ctx, m, where, "similarity", SIM_NAMES, 6, &sim)) ||
        (st = get_enum(ctx, m, where, "mechanism", MECH_NAMES, 2, &mech)) ||
        (st = get_enum(ctx, m, where, "domain", DOMAIN_NAMES, 2, &dom)) ||
        (st = get_enum(ctx, m, where, "neighbours", NEIGH_NAMES, 2, &nb)) ||
        (st = get_enum(ctx, m, where, "noise", NOISE_NAMES, 2, &noise)) ||
        (st = get_real(ctx, m, where, "radius", &s->radius)) ||
        (st = get_real(ctx, m, where, "bandwidth", &s->bandwidth)) || (st = get_real(ctx, m, where, "p", &s->p)) ||
        (st = get_real(ctx, m, where, "epsilon", &s->epsilon)) || (st = get_real(ctx, m, where, "delta", &s->delta)) ||
        (st = get_real(ctx, m, where, "eps_main", &s->eps_main)) ||
        (st = get_real(ctx, m, where, "delta_main", &s->delta_main)) ||
        (st = get_real(ctx, m, where, "n_released", &s->n_released)) ||
        (st = get_real(ctx, m, where, "approx_error", &s->approx_error)) ||
        (st = gram__model_get_i64(ctx, m, where, "dim", &dim)) ||
        (st = gram__model_get_i64(ctx, m, where, "n_components", &R)) ||
        (st = gram__model_get_i64(ctx, m, where, "reduced_dim", &k)) ||
        (st = gram__model_get_i64(ctx, m, where, "levels", &levels)) ||
        (st = gram__model_get_i64(ctx, m, where, "n_terms", &terms)) ||
        (st = gram__model_get_i64(ctx, m, where, "seed", &seed)) ||
        (st = gram__model_get_i64(ctx, m, where, "test_noise", &test)) ||
        (st = get_real(ctx, m, where, "rec_epsilon", &s->rec.epsilon)) ||
        (st = get_real(ctx, m, where, "rec_delta", &s->rec.delta)) ||
        (st = get_real(ctx, m, where, "rec_sens_l2", &s->rec.sens_l2)) ||
        (st = get_real(ctx, m, where, "rec_scale", &s->rec.scale)) ||
        (st = gram__model_get_i64(ctx, m, where, "rec_shift", &shift)) ||
        (st = gram__model_get_i64(ctx, m, where, "rec_sens_l1", &sl1)) ||
        (st = gram__model_get_i64(ctx, m, where, "rec_num", &num)) ||
        (st = gram__model_get_i64(ctx, m, where, "rec_den", &den)) ||
        (st = gram__model_get_str(ctx, m, where, "sensitivity", &sens)))
        goto fail;
    s->similarity = (gram_private_similarity)sim;
    s->mechanism = (gram_private_mechanism)mech;
    s->domain = (gram_private_domain)dom;
    s->neighbours = (gram_private_neighbours)nb;
    s->rec.kind = (gram__noise_kind)noise;
    const char *name = SIM_NAMES[sim];
    const int kernel = sim <= GRAM_PRIVATE_CAUCHY;

    /* Each check names the entry; they follow the order of gram_private_fit's. */
    st = GRAM_EFORMAT;
    if (mech == GRAM_PRIVATE_BASELINE && sim != GRAM_PRIVATE_GAUSSIAN && sim != GRAM_PRIVATE_EXPONENTIAL &&
        sim != GRAM_PRIVATE_L1) {
        gram__fail(ctx, st, "%s: there is no baseline mechanism for %s", where, name);
        goto fail;
    }
    /* The split gram_private_fit makes: all of (ε, δ) under replace-one; under add/remove 90% of
     * ε and all of δ (n takes the rest of ε). */
    const double share = s->neighbours == GRAM_PRIVATE_ADD_REMOVE ? 0.9 : 1;
    if (!(s->epsilon > 0) || !(s->delta >= 0 && s->delta < 1) || s->eps_main != share * s->epsilon ||
        s->delta_main != s->delta) {
        gram__fail(ctx, st, "%s: inconsistent privacy parameters (epsilon %g, delta %g, the statistic's share "
                   "%g, %g)", where, s->epsilon, s->delta, s->eps_main, s->delta_main);
        goto fail;
    }
    /* The families release their statistic once, with the whole of the main share. */
    if (s->rec.epsilon != s->eps_main || s->rec.delta != s->delta_main ||
        (noise == GRAM__NOISE_LAPLACE) != (s->rec.delta == 0) || !(s->rec.scale > 0) || !(s->rec.sens_l2 >= 0) ||
        shift < 0 || shift > 62 || num < 1 || den < 1) {
        gram__fail(ctx, st, "%s: inconsistent release record (%s noise, epsilon %g, delta %g, scale %g, shift "
                   "%lld, num %lld, den %lld)", where, NOISE_NAMES[noise], s->rec.epsilon, s->rec.delta, s->rec.scale,
                   (long long)shift, (long long)num, (long long)den);
        goto fail;
    }
    if (!(s->radius > 0)) {
        gram__fail(ctx, st, "%s: radius must be > 0, got %g", where, s->radius);
        goto fail;
    }
    if (kernel ? !(s->bandwidth > 0) : s->bandwidth != 0) {
        gram__fail(ctx, st, "%s: bandwidth %g is not valid for %s", where, s->bandwidth, name);
        goto fail;
    }
    if (!(s->p > 0 && s->p <= 2) || (sim == GRAM_PRIVATE_L2 && s->p != 2) ||
        (sim != GRAM_PRIVATE_LPP && sim != GRAM_PRIVATE_L2 && s->p != 1)) {
        gram__fail(ctx, st, "%s: p %g is not valid for %s", where, s->p, name);
        goto fail;
    }
    if (!(s->approx_error >= 0) || (s->neighbours == GRAM_PRIVATE_REPLACE &&
                                    !(s->n_released >= 1 && s->n_released == floor(s->n_released)))) {
        gram__fail(ctx, st, "%s: approx_error %g or n %g is not valid", where, s->approx_error, s->n_released);
        goto fail;
    }
    if (dim < 1 || dim > MAX_DIM || R < 0 || k < 0 || levels < 0 || levels > 30 || terms < 0 || terms > 64 ||
        (test != 0 && test != 1)) {
        gram__fail(ctx, st, "%s: dimensions out of range (d %lld, n_components %lld, reduced_dim %lld, levels "
                   "%lld, n_terms %lld, test_noise %lld)", where, (long long)dim, (long long)R, (long long)k,
                   (long long)levels, (long long)terms, (long long)test);
        goto fail;
    }
    s->dim = dim;
    s->n_components = R;
    s->reduced_dim = k;
    s->levels = (int32_t)levels;
    s->n_terms = (int32_t)terms;
    s->seed = (uint64_t)seed;
    s->test_noise = (int)test;
    s->rec.shift = (int)shift;
    s->rec.sens_l1 = (uint64_t)sl1;
    s->rec.num = (uint64_t)num;
    s->rec.den = (uint64_t)den;
    if ((st = gram__private_check_params(ctx, s, where))) goto fail;
    st = GRAM_EFORMAT;
    if ((kernel ? levels != 0 : (levels < 1 || k != 0 || terms != 0)) ||
        (sim != GRAM_PRIVATE_L2 && !kernel && R != 0) || (mech == GRAM_PRIVATE_BASELINE && kernel && k != dim)) {
        gram__fail(ctx, st, "%s: n_components %lld, reduced_dim %lld, levels %lld, n_terms %lld do not fit a %s %s "
                   "sketch", where, (long long)R, (long long)k, (long long)levels, (long long)terms, name,
                   MECH_NAMES[mech]);
        goto fail;
    }
    const size_t sl = strlen(sens);
    if (sl >= sizeof s->sensitivity) {
        gram__fail(ctx, st, "%s: the sensitivity text is %zu bytes (at most %zu)", where, sl, sizeof s->sensitivity - 1);
        goto fail;
    }
    memcpy(s->sensitivity, sens, sl + 1);
    if ((st = get_column(ctx, m, where, "values", 0, &s->values, &s->n_values)) ||
        (st = get_column(ctx, m, where, "params", 1, &s->params, &s->n_params)))
        goto fail;
    const int64_t want = expected_values(s);
    if (want >= 0 && s->n_values != want) {
        st = gram__fail(ctx, GRAM_EFORMAT, "%s: %lld released values, but a %s sketch of d = %lld, n_components "
                        "%lld, levels %d, n_terms %d has %lld", where, (long long)s->n_values, name,
                        (long long)s->dim, (long long)s->n_components, (int)s->levels, (int)s->n_terms,
                        (long long)want);
        goto fail;
    }
    s->n_clipped = -1;
    const gram__private_family *fam = kernel ? &gram__private_kernels : &gram__private_distances;
    gram_context *tmp = NULL;
    if (gram_context_create(&tmp)) {
        st = gram__fail(ctx, GRAM_ENOMEM, "%s: out of memory loading a sketch", where);
        goto fail;
    }
    /* A stored sketch the family refuses is a damaged file, whatever the family calls it. */
    gram_status c = fam->prepare(tmp, s);
    if (c) {
        st = gram__fail(ctx, c == GRAM_ENOMEM ? c : GRAM_EFORMAT, "%s: the stored sketch is not one gram makes: %s",
                        where, gram_context_message(tmp));
        gram_context_destroy(tmp);
        goto fail;
    }
    gram_context_destroy(tmp);
    *out = s;
    return GRAM_OK;
fail:
    gram_private_sketch_destroy(s);
    return st;
}

/* ---- the public entry points ------------------------------------------------------------------- */

gram_status gram_private_save(gram_context *ctx, const gram_private_sketch *s, const char *path)
{
    gram__clear(ctx);
    if (!s || !path) return gram__fail(ctx, GRAM_EINVAL, "gram_private_save: NULL argument");
    gram__model_file m;
    gram_status st = to_file(ctx, s, &m);
    if (!st) st = gram__model_save(ctx, path, &m);
    gram__model_file_free(&m);
    return st;
}

gram_status gram_private_to_bytes(gram_context *ctx, const gram_private_sketch *s, void **buf, size_t *size)
{
    gram__clear(ctx);
    if (!s || !buf || !size) return gram__fail(ctx, GRAM_EINVAL, "gram_private_to_bytes: NULL argument");
    *buf = NULL;
    *size = 0;
    gram__model_file m;
    gram_status st = to_file(ctx, s, &m);
    if (!st) st = gram__model_to_bytes(ctx, &m, (unsigned char **)buf, size);
    gram__model_file_free(&m);
    return st;
}

static gram_status load_any(gram_context *ctx, const char *fn, const char *path, const void *buf, size_t size,
                            gram_private_sketch **out)
{
    gram__clear(ctx);
    if (!out || (buf ? 0 : !path)) return gram__fail(ctx, GRAM_EINVAL, "%s: NULL argument", fn);
    *out = NULL;
    const char *where = buf ? "sketch bytes" : path;
    gram__model_file m;
    gram_status st = buf ? gram__model_from_bytes(ctx, where, buf, size, KIND, &m)
                         : gram__model_load(ctx, path, KIND, &m);
    if (!st) st = from_file(ctx, &m, where, out);
    gram__model_file_free(&m);
    return st;
}

gram_status gram_private_load(gram_context *ctx, const char *path, gram_private_sketch **out)
{
    return load_any(ctx, "gram_private_load", path, NULL, 0, out);
}

gram_status gram_private_from_bytes(gram_context *ctx, const void *buf, size_t size, gram_private_sketch **out)
{
    if (!buf) {
        gram__clear(ctx);
        if (out) *out = NULL;
        return gram__fail(ctx, GRAM_EINVAL, "gram_private_from_bytes: buf is NULL");
    }
    return load_any(ctx, "gram_private_from_bytes", NULL, buf, size, out);
}
