/* Saving and loading fitted GP and KRR models in gram's model file (src/io/model_file.h: versioned,
 * checksummed, written through a temporary name). The kernel is stored as its canonical spec,
 * which parses back to the same kernel bit for bit (numbers are printed with %.17g). A loaded
 * model is checked as untrusted input: every shape must agree and every number must be finite
 * (and L's diagonal positive), so a file edited by hand cannot make predictions crash or lie. */
#include "regress.h"

#include "../io/model_file.h"
#include "../linalg/linalg.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ----------------------------------------------------------------------------------- */

static gram_status add_kernel(gram_context *ctx, gram__model_file *m, const gram_kernel *k)
{
    size_t len = gram_kernel_spec(k, NULL, 0);
    char *spec = malloc(len + 1);
    if (!spec) return gram__fail(ctx, GRAM_ENOMEM, "out of memory writing the kernel spec");
    gram_kernel_spec(k, spec, len + 1);
    gram_status s = gram__model_add_str(ctx, m, "kernel", spec);
    free(spec);
    return s;
}

static gram_status get_kernel(gram_context *ctx, const gram__model_file *m, const char *where,
                              gram_kernel **k)
{
    const char *spec;
    gram_status s = gram__model_get_str(ctx, m, where, "kernel", &spec);
    if (s) return s;
    gram_context tmp;
    memset(&tmp, 0, sizeof tmp);
    s = gram_kernel_parse(&tmp, spec, k);
    if (s) return gram__fail(ctx, GRAM_EFORMAT, "%s: the stored kernel does not parse: %s", where,
                             tmp.message);
    return GRAM_OK;
}

/* A matrix entry of the given shape (rows < 0: any) with finite values; *data may be NULL when
 * it is empty. */
static gram_status get_mat(gram_context *ctx, const gram__model_file *m, const char *where,
                           const char *name, int64_t rows, int64_t cols, const double **data,
                           int64_t *r_out, int64_t *c_out)
{
    int64_t r, c;
    gram_status s = gram__model_get_f64(ctx, m, where, name, data, &r, &c);
    if (s) return s;
    if ((rows >= 0 && r != rows) || (cols >= 0 && c != cols))
        return gram__fail(ctx, GRAM_EFORMAT, "%s: entry '%s' is %lld x %lld, expected %lld x %lld", where,
                          name, (long long)r, (long long)c, (long long)(rows >= 0 ? rows : r),
                          (long long)(cols >= 0 ? cols : c));
    for (int64_t i = 0; i < r * c; i++)
        if (!isfinite((*data)[i]))
            return gram__fail(ctx, GRAM_EFORMAT, "%s: entry '%s' holds a non-finite value", where, name);
    if (r_out) *r_out = r;
    if (c_out) *c_out = c;
    return GRAM_OK;
}

static gram_status dup(gram_context *ctx, const double *src, int64_t count, double **out)
{
    *out = gram__alloc((size_t)(count > 0 ? count : 1) * sizeof(double));
    if (!*out) return gram__fail(ctx, GRAM_ENOMEM, "out of memory loading a model");
    if (count > 0) memcpy(*out, src, (size_t)count * sizeof(double));
    return GRAM_OK;
}

/* ---- GP ---------------------------------------------------------------------------------------- */

/* Values that pass the entry checks can still be absurd together: a hand-made L with a subnormal
 * diagonal under huge entries predicts std = 0 and breaks sampling. A genuine model satisfies, to
 * rounding (backward stability of Cholesky and of the triangular solves, errors ~ n·eps):
 *   - L lower triangular, each pivot usable for its diagonal entry (gram__gp_pivot_ok, as at fit);
 *   - Σ_j L_ij² = K_ii = k(x_i, x_i) + noise_i + jitter (each row of L has K's diagonal as norm);
 *   - L Lᵀ α = y, to within the error of the solves that made α;
 *   - the stored likelihood is the one L, α and y give.
 * The tolerances (1e-6 relative, 1e-8 for the likelihood) are far above rounding at any size that
 * fits in memory and far below any edit that changes a prediction. O(N²·T) work, as reading L. */
static gram_status gp_check(gram_context *ctx, const gram_gp *gp, const char *where)
{
    int64_t n = gp->n, t = gp->t;
    gram_status s = GRAM_OK;
    double *kd = gram__alloc((size_t)n * sizeof *kd), *u = gram__alloc((size_t)(n * t) * sizeof *u);
    if (!kd || !u) {
        s = gram__fail(ctx, GRAM_ENOMEM, "out of memory loading a model");
        goto done;
    }
    gram_array Xa = gram_array_f64(gp->X, n, gp->d), Da = gram_array_f64(kd, n, 1);
    gram_context tmp;
    memset(&tmp, 0, sizeof tmp);
    if ((s = gram_kernel_diag(&tmp, gp->kernel, &Xa, &Da))) {
        s = gram__fail(ctx, s == GRAM_ENOMEM ? s : GRAM_EFORMAT, "%s: the stored kernel cannot be "
                       "evaluated on the stored X: %s", where, tmp.message);
        goto done;
    }
    for (int64_t i = 0; i < n; i++) {
        const double *Li = gp->L + i * n;
        double kii = kd[i] + gp->noise[gp->n_noise == 1 ? 0 : i] + gp->jitter, rn = 0.0;
        for (int64_t j = i + 1; j < n; j++)
            if (Li[j] != 0.0) {
                s = gram__fail(ctx, GRAM_EFORMAT, "%s: the stored Cholesky factor is not lower "
                               "triangular (L[%lld, %lld] = %g)", where, (long long)i, (long long)j, Li[j]);
                goto done;
            }
        for (int64_t j = 0; j <= i; j++) rn += Li[j] * Li[j];
        if (!(isfinite(kii) && kii > 0.0) || !gram__gp_pivot_ok(Li[i], kii) ||
            !(fabs(rn - kii) <= 1e-6 * kii)) {
            s = gram__fail(ctx, GRAM_EFORMAT, "%s: the stored Cholesky factor does not factor the "
                           "model's kernel matrix: row %lld has squared norm %g and pivot %g for a "
                           "diagonal entry %g", where, (long long)i, rn, Li[i], kii);
            goto done;
        }
    }
    /* r = L Lᵀ α - y against the scale of the solves' rounding, n·eps·(|L| |Lᵀ| |α|)_i (a scale
     * that a tampered α raises only where it also raises r); w = |Lᵀ| |α| goes in kd's buffer */
    memcpy(u, gp->alpha, (size_t)(n * t) * sizeof *u);
    gram__trmm_lower(n, t, gp->L, n, u, t, 1);
    gram__trmm_lower(n, t, gp->L, n, u, t, 0);
    double fit = 0.0, logdet = 0.0;
    for (int64_t c = 0; c < t; c++) {
        for (int64_t j = 0; j < n; j++) kd[j] = 0.0; /* w */
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j <= i; j++) kd[j] += fabs(gp->L[i * n + j]) * fabs(gp->alpha[i * t + c]);
        for (int64_t i = 0; i < n; i++) {
            double z = 0.0, y = gp->Y[i * t + c], r = u[i * t + c] - y;
            for (int64_t j = 0; j <= i; j++) z += fabs(gp->L[i * n + j]) * kd[j];
            if (!(fabs(r) <= 1e-6 * (z + fabs(y)))) {
                s = gram__fail(ctx, GRAM_EFORMAT, "%s: the stored dual coefficients do not solve the "
                               "model's system: row %lld, target %lld of K alpha - y is %g", where,
                               (long long)i, (long long)c, r);
                goto done;
            }
            fit += y * gp->alpha[i * t + c];
        }
    }
    for (int64_t i = 0; i < n; i++) logdet += log(gp->L[i * n + i]);
    double lml = -0.5 * fit - (double)t * logdet - (double)t * 0.5 * (double)n * GRAM__LOG_2PI;
    if (!(fabs(lml - gp->lml) <= 1e-8 * fmax(1.0, fabs(lml))))
        s = gram__fail(ctx, GRAM_EFORMAT, "%s: the stored log marginal likelihood %.17g is not the "
                       "model's (%.17g)", where, gp->lml, lml);
done:
    gram__free(kd);
    gram__free(u);
    return s;
}

static gram_status gp_to_file(gram_context *ctx, const gram_gp *gp, gram__model_file *m)
{
    gram_status s;
    double lml = gp->lml, jit = gp->jitter;
    gram__model_file_init(m, "gp");
    if ((s = add_kernel(ctx, m, gp->kernel)) || (s = gram__model_add_i64(ctx, m, "normalize_y", gp->normalize_y)) ||
        (s = gram__model_add_i64(ctx, m, "n_iterations", gp->n_iter)) ||
        (s = gram__model_add_i64(ctx, m, "n_evaluations", gp->n_eval)) ||
        (s = gram__model_add_f64(ctx, m, "X", gp->X, gp->n, gp->d)) ||
        (s = gram__model_add_f64(ctx, m, "y", gp->Y, gp->n, gp->t)) ||
        (s = gram__model_add_f64(ctx, m, "alpha_noise", gp->noise, gp->n_noise, 1)) ||
        (s = gram__model_add_f64(ctx, m, "y_mean", gp->ymean, 1, gp->t)) ||
        (s = gram__model_add_f64(ctx, m, "y_std", gp->ystd, 1, gp->t)) ||
        (s = gram__model_add_f64(ctx, m, "L", gp->L, gp->n, gp->n)) ||
        (s = gram__model_add_f64(ctx, m, "dual", gp->alpha, gp->n, gp->t)) ||
        (s = gram__model_add_f64(ctx, m, "log_marginal_likelihood", &lml, 1, 1)) ||
        (s = gram__model_add_f64(ctx, m, "jitter", &jit, 1, 1)))
        return s;
    return GRAM_OK;
}

static gram_status gp_from_file(gram_context *ctx, const gram__model_file *m, const char *where,
                                gram_gp **out)
{
    gram_status s;
    gram_gp *gp = calloc(1, sizeof *gp);
    if (!gp) return gram__fail(ctx, GRAM_ENOMEM, "out of memory loading a model");
    const double *X, *Y, *noise, *ym, *ys, *L, *al, *lml, *jit;
    int64_t n = 0, d = 0, t = 0, nn = 0, ny = 0;
    if ((s = get_kernel(ctx, m, where, &gp->kernel))) goto fail;
    if ((s = gram__model_get_i64(ctx, m, where, "normalize_y", &ny)) ||
        (s = gram__model_get_i64(ctx, m, where, "n_iterations", &gp->n_iter)) ||
        (s = gram__model_get_i64(ctx, m, where, "n_evaluations", &gp->n_eval)))
        goto fail;
    if ((s = get_mat(ctx, m, where, "X", -1, -1, &X, &n, &d)) ||
        (s = get_mat(ctx, m, where, "y", n, -1, &Y, NULL, &t)) ||
        (s = get_mat(ctx, m, where, "alpha_noise", -1, 1, &noise, &nn, NULL)) ||
        (s = get_mat(ctx, m, where, "y_mean", 1, t, &ym, NULL, NULL)) ||
        (s = get_mat(ctx, m, where, "y_std", 1, t, &ys, NULL, NULL)) ||
        (s = get_mat(ctx, m, where, "L", n, n, &L, NULL, NULL)) ||
        (s = get_mat(ctx, m, where, "dual", n, t, &al, NULL, NULL)) ||
        (s = get_mat(ctx, m, where, "log_marginal_likelihood", 1, 1, &lml, NULL, NULL)) ||
        (s = get_mat(ctx, m, where, "jitter", 1, 1, &jit, NULL, NULL)))
        goto fail;
    s = GRAM_EFORMAT;
    if (n < 1 || t < 1 || (nn != 1 && nn != n) || (ny != 0 && ny != 1)) {
        gram__fail(ctx, s, "%s: inconsistent model: %lld samples, %lld targets, %lld noise values", where,
                   (long long)n, (long long)t, (long long)nn);
        goto fail;
    }
    if (gp->kernel->dim && gp->kernel->dim != d) {
        gram__fail(ctx, s, "%s: the kernel has %lld ARD lengthscales but X has %lld features", where,
                   (long long)gp->kernel->dim, (long long)d);
        goto fail;
    }
    for (int64_t i = 0; i < n; i++)
        if (!(L[i * n + i] > 0.0)) {
            gram__fail(ctx, s, "%s: the stored Cholesky factor has a non-positive diagonal", where);
            goto fail;
        }
    for (int64_t c = 0; c < t; c++)
        if (!(ys[c] > 0.0)) {
            gram__fail(ctx, s, "%s: y_std must be positive", where);
            goto fail;
        }
    for (int64_t i = 0; i < nn; i++)
        if (noise[i] < 0.0) {
            gram__fail(ctx, s, "%s: alpha_noise must be >= 0", where);
            goto fail;
        }
    if (jit[0] < 0.0) {
        gram__fail(ctx, s, "%s: jitter must be >= 0", where);
        goto fail;
    }
    gp->n = n;
    gp->d = d;
    gp->t = t;
    gp->n_noise = nn;
    gp->normalize_y = (int)ny;
    gp->lml = lml[0];
    gp->jitter = jit[0];
    if ((s = dup(ctx, X, n * d, &gp->X)) || (s = dup(ctx, Y, n * t, &gp->Y)) ||
        (s = dup(ctx, noise, nn, &gp->noise)) || (s = dup(ctx, ym, t, &gp->ymean)) ||
        (s = dup(ctx, ys, t, &gp->ystd)) || (s = dup(ctx, L, n * n, &gp->L)) ||
        (s = dup(ctx, al, n * t, &gp->alpha)))
        goto fail;
    if ((s = gp_check(ctx, gp, where))) goto fail;
    *out = gp;
    return GRAM_OK;
fail:
    gram_gp_destroy(gp);
    return s;
}

/* ---- KRR --------------------------------------------------------------------------------------- */

static gram_status krr_to_file(gram_context *ctx, const gram_krr *k, gram__model_file *m)
{
    gram_status s;
    gram__model_file_init(m, "krr");
    if ((s = add_kernel(ctx, m, k->kernel)) || (s = gram__model_add_f64(ctx, m, "X", k->X, k->n, k->d)) ||
        (s = gram__model_add_f64(ctx, m, "dual", k->dual, k->n, k->t)))
        return s;
    return GRAM_OK;
}

static gram_status krr_from_file(gram_context *ctx, const gram__model_file *m, const char *where,
                                 gram_krr **out)
{
    gram_status s;
    gram_krr *k = calloc(1, sizeof *k);
    if (!k) return gram__fail(ctx, GRAM_ENOMEM, "out of memory loading a model");
    const double *X, *dual;
    int64_t n = 0, d = 0, t = 0;
    if ((s = get_kernel(ctx, m, where, &k->kernel)) || (s = get_mat(ctx, m, where, "X", -1, -1, &X, &n, &d)) ||
        (s = get_mat(ctx, m, where, "dual", n, -1, &dual, NULL, &t)))
        goto fail;
    if (n < 1 || t < 1 || (k->kernel->dim && k->kernel->dim != d)) {
        s = gram__fail(ctx, GRAM_EFORMAT, "%s: inconsistent model (%lld samples, %lld features, %lld targets)",
                       where, (long long)n, (long long)d, (long long)t);
        goto fail;
    }
    k->n = n;
    k->d = d;
    k->t = t;
    if ((s = dup(ctx, X, n * d, &k->X)) || (s = dup(ctx, dual, n * t, &k->dual))) goto fail;
    *out = k;
    return GRAM_OK;
fail:
    gram_krr_destroy(k);
    return s;
}

/* ---- the public entry points: one path for both kinds -------------------------------------- */

typedef gram_status (*to_file_fn)(gram_context *, const void *, gram__model_file *);
typedef gram_status (*from_file_fn)(gram_context *, const gram__model_file *, const char *, void **);

static gram_status gp_to(gram_context *c, const void *o, gram__model_file *m) { return gp_to_file(c, o, m); }
static gram_status krr_to(gram_context *c, const void *o, gram__model_file *m) { return krr_to_file(c, o, m); }
static gram_status gp_from(gram_context *c, const gram__model_file *m, const char *w, void **o)
{
    return gp_from_file(c, m, w, (gram_gp **)o);
}
static gram_status krr_from(gram_context *c, const gram__model_file *m, const char *w, void **o)
{
    return krr_from_file(c, m, w, (gram_krr **)o);
}

/* Saves to path (buf == NULL) or serialises to *buf / *size. */
static gram_status save_any(gram_context *ctx, const char *fn, const void *obj, to_file_fn to,
                            const char *path, void **buf, size_t *size)
{
    gram__clear(ctx);
    if (!obj || (buf ? !size : !path)) return gram__fail(ctx, GRAM_EINVAL, "%s: NULL argument", fn);
    if (buf) {
        *buf = NULL;
        *size = 0;
    }
    gram__model_file m;
    gram_status s = to(ctx, obj, &m);
    if (!s) s = buf ? gram__model_to_bytes(ctx, &m, (unsigned char **)buf, size) : gram__model_save(ctx, path, &m);
    gram__model_file_free(&m);
    return s;
}

/* Loads from path (buf == NULL) or from the bytes buf / size. */
static gram_status load_any(gram_context *ctx, const char *fn, const char *kind, from_file_fn from,
                            const char *path, const void *buf, size_t size, void **out)
{
    gram__clear(ctx);
    if (!out || (buf ? 0 : !path)) return gram__fail(ctx, GRAM_EINVAL, "%s: NULL argument", fn);
    *out = NULL;
    const char *where = buf ? "model bytes" : path;
    gram__model_file m;
    gram_status s = buf ? gram__model_from_bytes(ctx, where, buf, size, kind, &m) : gram__model_load(ctx, path, kind, &m);
    if (!s) s = from(ctx, &m, where, out);
    gram__model_file_free(&m);
    return s;
}

gram_status gram_gp_save(gram_context *ctx, const gram_gp *gp, const char *path)
{
    return save_any(ctx, "gram_gp_save", gp, gp_to, path, NULL, NULL);
}
gram_status gram_gp_to_bytes(gram_context *ctx, const gram_gp *gp, void **buf, size_t *size)
{
    if (!buf) return gram__fail(ctx, GRAM_EINVAL, "gram_gp_to_bytes: buf is NULL");
    return save_any(ctx, "gram_gp_to_bytes", gp, gp_to, NULL, buf, size);
}
gram_status gram_gp_load(gram_context *ctx, const char *path, gram_gp **out)
{
    return load_any(ctx, "gram_gp_load", "gp", gp_from, path, NULL, 0, (void **)out);
}
gram_status gram_gp_from_bytes(gram_context *ctx, const void *buf, size_t size, gram_gp **out)
{
    if (!buf) return gram__fail(ctx, GRAM_EINVAL, "gram_gp_from_bytes: buf is NULL");
    return load_any(ctx, "gram_gp_from_bytes", "gp", gp_from, NULL, buf, size, (void **)out);
}
gram_status gram_krr_save(gram_context *ctx, const gram_krr *krr, const char *path)
{
    return save_any(ctx, "gram_krr_save", krr, krr_to, path, NULL, NULL);
}
gram_status gram_krr_to_bytes(gram_context *ctx, const gram_krr *krr, void **buf, size_t *size)
{
    if (!buf) return gram__fail(ctx, GRAM_EINVAL, "gram_krr_to_bytes: buf is NULL");
    return save_any(ctx, "gram_krr_to_bytes", krr, krr_to, NULL, buf, size);
}
gram_status gram_krr_load(gram_context *ctx, const char *path, gram_krr **out)
{
    return load_any(ctx, "gram_krr_load", "krr", krr_from, path, NULL, 0, (void **)out);
}
gram_status gram_krr_from_bytes(gram_context *ctx, const void *buf, size_t size, gram_krr **out)
{
    if (!buf) return gram__fail(ctx, GRAM_EINVAL, "gram_krr_from_bytes: buf is NULL");
    return load_any(ctx, "gram_krr_from_bytes", "krr", krr_from, NULL, buf, size, (void **)out);
}
