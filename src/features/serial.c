/* Map files: a feature map saved in gram's model file (src/io/model_file.h: versioned, checksummed,
 * every declared size checked against the bytes present, written through a temporary name), kind
 * "features".
 *
 * The file holds the map's arguments (the kernel's canonical spec, the method, D, R, the seed) and
 * its tables as drawn: loading does not keep a redraw, because the draws go through libm (log,
 * sqrt, cos, tan) and another libm would give another map. The loader rebuilds everything else the
 * way gram_features_create does (amplitudes, lengthscales, the float32 copy of Ω) by calling it
 * (for the orthogonal methods, on their cheaper i.i.d. twin), then puts the stored tables in place
 * of the fresh ones, so a loaded map transforms bit for bit as the saved one did on the same
 * machine. Entries by method (F = R/2 for the paired methods, else R):
 *
 *     every map      kernel (string), method (string, as gram_features_method in lower case with
 *                    '-': "rff", "rff-phase", ..., "nystrom"), D, R, seed (int64; the seed's
 *                    two's complement)
 *     RFF, ORF, POSITIVE*, HYPERBOLIC*, ARCCOS    omega F×D (ω already divided by ℓ)
 *     RFF_PHASE      omega, phase F×1 (b_i in [0, 2π])
 *     ARCCOS         arccos_n (int64: the degree, which the kernel also gives)
 *     SORF           signs n_blocks×3D' (±1; D' = D rounded up to a power of two)
 *     TENSORSKETCH   hash p×(D+1) (integers in [0, R)), signs p×(D+1) (±1), twiddle (R/2)×2 (the
 *                    FFT's (cos, −sin)(2πj/R), within 2 ulps of this machine's; stored so the
 *                    declared R is backed by bytes and another libm's FFT keeps the saver's bits)
 *     NYSTROM        landmarks_how (string: uniform, kmeans++, leverage), landmark_idx R×1
 *                    (integers ≥ 0), landmarks R×D, proj R×R, eig_tol 1×1, rank (int64, 0..R)
 *
 * Every size that decides an allocation is checked against a table present in the file before
 * anything is allocated, so a damaged or hostile file costs memory linear in its own size. */
#include "features.h"

#include "../io/model_file.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define KIND "features"
#define GRAM__2PI 6.28318530717958647692

static const char *const METHOD_NAMES[] = {
    [GRAM_FEATURES_RFF] = "rff",
    [GRAM_FEATURES_RFF_PHASE] = "rff-phase",
    [GRAM_FEATURES_ORF] = "orf",
    [GRAM_FEATURES_SORF] = "sorf",
    [GRAM_FEATURES_POSITIVE] = "positive",
    [GRAM_FEATURES_POSITIVE_ORF] = "positive-orf",
    [GRAM_FEATURES_HYPERBOLIC] = "hyperbolic",
    [GRAM_FEATURES_HYPERBOLIC_ORF] = "hyperbolic-orf",
    [GRAM_FEATURES_TENSORSKETCH] = "tensorsketch",
    [GRAM_FEATURES_ARCCOS] = "arccos",
    [GRAM_FEATURES_NYSTROM] = "nystrom",
};
#define N_METHODS ((int)(sizeof METHOD_NAMES / sizeof METHOD_NAMES[0]))

static const char *const LANDMARK_NAMES[] = {
    [GRAM_LANDMARKS_UNIFORM] = "uniform",
    [GRAM_LANDMARKS_KMEANSPP] = "kmeans++",
    [GRAM_LANDMARKS_LEVERAGE] = "leverage",
};

static int paired(gram_features_method m)
{
    return m == GRAM_FEATURES_RFF || m == GRAM_FEATURES_ORF || m == GRAM_FEATURES_SORF ||
           m == GRAM_FEATURES_HYPERBOLIC || m == GRAM_FEATURES_HYPERBOLIC_ORF;
}

/* ---- saving ------------------------------------------------------------------------------------ */

/* A table of integers (hashes, signs, indices) as a float64 matrix: exact below 2^53. */
static gram_status add_ints(gram_context *ctx, gram__model_file *m, const char *name, int64_t rows, int64_t cols,
                            const signed char *s8, const int32_t *i32, const int64_t *i64)
{
    const int64_t n = rows * cols;
    double *v = gram__alloc((size_t)(n > 0 ? n : 1) * sizeof(double));
    if (!v) return gram__fail(ctx, GRAM_ENOMEM, "out of memory saving a feature map");
    for (int64_t i = 0; i < n; i++) v[i] = s8 ? (double)s8[i] : i32 ? (double)i32[i] : (double)i64[i];
    gram_status s = gram__model_add_f64(ctx, m, name, v, rows, cols);
    gram__free(v);
    return s;
}

static gram_status to_file(gram_context *ctx, const gram_features *f, gram__model_file *m)
{
    gram__model_file_init(m, KIND);
    if ((int)f->method < 0 || (int)f->method >= N_METHODS)
        return gram__fail(ctx, GRAM_EINVAL, "a feature map of unknown method %d", (int)f->method);
    size_t len = gram_kernel_spec(f->kernel, NULL, 0);
    char *spec = malloc(len + 1);
    if (!spec) return gram__fail(ctx, GRAM_ENOMEM, "out of memory saving a feature map");
    gram_kernel_spec(f->kernel, spec, len + 1);
    gram_status s = gram__model_add_str(ctx, m, "kernel", spec);
    free(spec);
    if (s || (s = gram__model_add_str(ctx, m, "method", METHOD_NAMES[f->method])) ||
        (s = gram__model_add_i64(ctx, m, "D", f->D)) || (s = gram__model_add_i64(ctx, m, "R", f->R)) ||
        (s = gram__model_add_i64(ctx, m, "seed", (int64_t)f->seed)))
        return s;
    if (f->method == GRAM_FEATURES_NYSTROM) {
        const double tol = f->eig_tol;
        if ((s = gram__model_add_str(ctx, m, "landmarks_how", LANDMARK_NAMES[f->landmarks_how])) ||
            (s = add_ints(ctx, m, "landmark_idx", f->R, 1, NULL, NULL, f->landmark_idx)) ||
            (s = gram__model_add_f64(ctx, m, "landmarks", f->landmarks, f->R, f->D)) ||
            (s = gram__model_add_f64(ctx, m, "proj", f->proj, f->R, f->R)) ||
            (s = gram__model_add_f64(ctx, m, "eig_tol", &tol, 1, 1)) ||
            (s = gram__model_add_i64(ctx, m, "rank", f->rank)))
            return s;
        return GRAM_OK;
    }
    if (f->omega && (s = gram__model_add_f64(ctx, m, "omega", f->omega, f->F, f->D))) return s;
    if (f->phase && (s = gram__model_add_f64(ctx, m, "phase", f->phase, f->F, 1))) return s;
    if (f->method == GRAM_FEATURES_ARCCOS && (s = gram__model_add_i64(ctx, m, "arccos_n", f->arccos_n))) return s;
    if (f->draw == GRAM__FDRAW_HADAMARD)
        return add_ints(ctx, m, "signs", f->n_blocks, 3 * f->Dp, f->signs, NULL, NULL);
    if (f->draw == GRAM__FDRAW_SKETCH) {
        if ((s = add_ints(ctx, m, "hash", f->ts_p, f->D + 1, NULL, f->ts_hash, NULL)) ||
            (s = add_ints(ctx, m, "signs", f->ts_p, f->D + 1, f->signs, NULL, NULL)) ||
            (s = gram__model_add_f64(ctx, m, "twiddle", f->twiddle, f->R / 2, 2)))
            return s;
    }
    return GRAM_OK;
}

/* ---- loading ----------------------------------------------------------------------------------- */

/* The matrix entry name with its shape (rows/cols < 0: any) and finite values. */
static gram_status get_mat(gram_context *ctx, const gram__model_file *m, const char *where, const char *name,
                           int64_t rows, int64_t cols, const double **data, int64_t *r_out)
{
    int64_t r, c;
    gram_status s = gram__model_get_f64(ctx, m, where, name, data, &r, &c);
    if (s) return s;
    if ((rows >= 0 && r != rows) || (cols >= 0 && c != cols))
        return gram__fail(ctx, GRAM_EFORMAT, "%s: entry '%s' is %lld x %lld, expected %lld x %lld", where, name,
                          (long long)r, (long long)c, (long long)(rows >= 0 ? rows : r),
                          (long long)(cols >= 0 ? cols : c));
    for (int64_t i = 0; i < r * c; i++)
        if (!isfinite((*data)[i]))
            return gram__fail(ctx, GRAM_EFORMAT, "%s: entry '%s' holds a non-finite value (at %lld)", where, name,
                              (long long)i);
    if (r_out) *r_out = r;
    return GRAM_OK;
}

/* Integer tables: every value an integer in [lo, hi]; signs (lo = -1, hi = 1) must not be 0. */
static gram_status check_ints(gram_context *ctx, const char *where, const char *name, const double *v, int64_t n,
                              double lo, double hi, int sign)
{
    for (int64_t i = 0; i < n; i++)
        if (!(v[i] >= lo && v[i] <= hi && v[i] == floor(v[i])) || (sign && v[i] == 0))
            return gram__fail(ctx, GRAM_EFORMAT, "%s: entry '%s' value %lld is %.17g; expected %s", where, name,
                              (long long)i, v[i], sign ? "+1 or -1" : "an integer in range");
    return GRAM_OK;
}

static gram_status get_kernel(gram_context *ctx, const gram__model_file *m, const char *where, gram_kernel **k)
{
    const char *spec;
    gram_status s = gram__model_get_str(ctx, m, where, "kernel", &spec);
    if (s) return s;
    gram_context *tmp = NULL;
    if (gram_context_create(&tmp)) return gram__fail(ctx, GRAM_ENOMEM, "out of memory loading a feature map");
    s = gram_kernel_parse(tmp, spec, k);
    if (s) s = gram__fail(ctx, s == GRAM_ENOMEM ? s : GRAM_EFORMAT, "%s: the stored kernel does not parse: %s", where,
                          gram_context_message(tmp));
    gram_context_destroy(tmp);
    return s;
}

/* Name → index in a table of n names, or -1. */
static int lookup(const char *const *names, int n, const char *s)
{
    for (int i = 0; i < n; i++)
        if (names[i] && !strcmp(names[i], s)) return i;
    return -1;
}

static gram_status load_nystrom(gram_context *ctx, const gram__model_file *m, const char *where, gram_kernel *k,
                                int64_t D, int64_t R, uint64_t seed, gram_features **out)
{
    const char *how;
    const double *idx, *L, *P, *tol;
    int64_t rank;
    gram_status s;
    if ((s = gram__model_get_str(ctx, m, where, "landmarks_how", &how)) ||
        (s = gram__model_get_i64(ctx, m, where, "rank", &rank)) ||
        (s = get_mat(ctx, m, where, "landmark_idx", R, 1, &idx, NULL)) ||
        (s = get_mat(ctx, m, where, "landmarks", R, D, &L, NULL)) ||
        (s = get_mat(ctx, m, where, "proj", R, R, &P, NULL)) ||
        (s = get_mat(ctx, m, where, "eig_tol", 1, 1, &tol, NULL)) ||
        (s = check_ints(ctx, where, "landmark_idx", idx, R, 0, 9007199254740992.0, 0)))
        return s;
    const int li = lookup(LANDMARK_NAMES, 3, how);
    if (li < 0)
        return gram__fail(ctx, GRAM_EFORMAT, "%s: unknown landmarks method '%s' (expected uniform, kmeans++ or "
                          "leverage)", where, how);
    if (rank < 0 || rank > R || !(tol[0] >= 0))
        return gram__fail(ctx, GRAM_EFORMAT, "%s: inconsistent Nystrom map: rank %lld of %lld landmarks, "
                          "eigenvalue tolerance %.17g", where, (long long)rank, (long long)R, tol[0]);
    gram_features *f = calloc(1, sizeof *f);
    if (!f) return gram__fail(ctx, GRAM_ENOMEM, "out of memory loading a feature map");
    f->method = GRAM_FEATURES_NYSTROM;
    f->D = D;
    f->R = R; /* the other fields stay 0, as gram_features_nystrom leaves them */
    f->seed = seed;
    f->kernel = k;
    f->landmarks_how = (gram_landmarks)li;
    f->eig_tol = tol[0];
    f->rank = rank;
    f->landmark_idx = gram__alloc((size_t)R * sizeof(int64_t));
    f->landmarks = gram__alloc((size_t)(R * D) * sizeof(double));
    f->proj = gram__alloc((size_t)(R * R) * sizeof(double));
    if (!f->landmark_idx || !f->landmarks || !f->proj) {
        gram_features_destroy(f);
        return gram__fail(ctx, GRAM_ENOMEM, "out of memory loading a feature map");
    }
    for (int64_t i = 0; i < R; i++) f->landmark_idx[i] = (int64_t)idx[i];
    memcpy(f->landmarks, L, (size_t)(R * D) * sizeof(double));
    memcpy(f->proj, P, (size_t)(R * R) * sizeof(double));
    *out = f;
    return GRAM_OK;
}

static gram_status from_file(gram_context *ctx, const gram__model_file *m, const char *where, gram_features **out)
{
    const char *mname;
    int64_t D, R, seed;
    gram_status s;
    if ((s = gram__model_get_str(ctx, m, where, "method", &mname)) || (s = gram__model_get_i64(ctx, m, where, "D", &D)) ||
        (s = gram__model_get_i64(ctx, m, where, "R", &R)) || (s = gram__model_get_i64(ctx, m, where, "seed", &seed)))
        return s;
    const int mi = lookup(METHOD_NAMES, N_METHODS, mname);
    if (mi < 0) return gram__fail(ctx, GRAM_EFORMAT, "%s: unknown feature method '%s'", where, mname);
    const gram_features_method method = (gram_features_method)mi;
    /* create refuses more than BLAS's int can index; so does the loader, before any arithmetic */
    if (D < 1 || R < 1 || D > INT32_MAX || R > INT32_MAX)
        return gram__fail(ctx, GRAM_EFORMAT, "%s: a map needs 1 <= D, R <= 2^31 - 1, got D = %lld, R = %lld", where,
                          (long long)D, (long long)R);
    gram_kernel *k = NULL;
    if ((s = get_kernel(ctx, m, where, &k))) return s;
    const int64_t kd = gram_kernel_dim(k);
    if (kd && kd != D) {
        gram_kernel_destroy(k);
        return gram__fail(ctx, GRAM_EFORMAT, "%s: the kernel has %lld ARD lengthscales but D is %lld", where,
                          (long long)kd, (long long)D);
    }
    if (method == GRAM_FEATURES_NYSTROM) {
        s = load_nystrom(ctx, m, where, k, D, R, (uint64_t)seed, out);
        if (s) gram_kernel_destroy(k);
        return s;
    }

    /* The tables that bound what gram_features_create will allocate (R·D frequencies, D' signs, R
     * twiddles), checked before it runs. */
    const int64_t F = paired(method) ? R / 2 : R;
    const double *omega = NULL, *phase = NULL, *signs = NULL, *hash = NULL, *tw = NULL;
    int64_t rows = 0;
    if (method == GRAM_FEATURES_SORF) {
        int64_t Dp = 1;
        while (Dp < D) Dp *= 2;
        s = get_mat(ctx, m, where, "signs", (F + Dp - 1) / Dp, 3 * Dp, &signs, NULL);
    } else if (method == GRAM_FEATURES_TENSORSKETCH) {
        if (!(s = get_mat(ctx, m, where, "hash", -1, D + 1, &hash, &rows)) &&
            !(s = get_mat(ctx, m, where, "signs", rows, D + 1, &signs, NULL)))
            s = get_mat(ctx, m, where, "twiddle", R / 2, 2, &tw, NULL);
    } else {
        s = get_mat(ctx, m, where, "omega", F, D, &omega, NULL);
        if (!s && method == GRAM_FEATURES_RFF_PHASE) s = get_mat(ctx, m, where, "phase", F, 1, &phase, NULL);
    }
    if (s) {
        gram_kernel_destroy(k);
        return s;
    }

    gram_features *f = NULL;
    gram_context *tmp = NULL;
    if (gram_context_create(&tmp)) {
        gram_kernel_destroy(k);
        return gram__fail(ctx, GRAM_ENOMEM, "out of memory loading a feature map");
    }
    /* The orthogonal methods' blocks cost O(F·D²) to draw (seconds at D in the hundreds), which a
     * load would throw away: their i.i.d. twin has the same fields (map, F, amplitude, tables, R's
     * parity rule) and draws in O(F·D). The method's own checks (the kernels it covers) run first
     * on a map of 2 features. */
    const gram_features_method twin = method == GRAM_FEATURES_ORF            ? GRAM_FEATURES_RFF
                                      : method == GRAM_FEATURES_POSITIVE_ORF ? GRAM_FEATURES_POSITIVE
                                      : method == GRAM_FEATURES_HYPERBOLIC_ORF ? GRAM_FEATURES_HYPERBOLIC
                                                                             : method;
    gram_status c = GRAM_OK;
    if (twin != method && !(c = gram_features_create(tmp, k, D, method, 2, (uint64_t)seed, &f))) {
        gram_features_destroy(f);
        f = NULL;
    }
    if (!c && !(c = gram_features_create(tmp, k, D, twin, R, (uint64_t)seed, &f))) {
        f->method = method;
        if (twin != method) f->draw = GRAM__FDRAW_ORTHOGONAL;
    }
    gram_kernel_destroy(k);
    if (c) {
        s = gram__fail(ctx, c == GRAM_ENOMEM ? c : GRAM_EFORMAT, "%s: the stored map is not one gram makes: %s", where,
                       gram_context_message(tmp));
        gram_context_destroy(tmp);
        return s;
    }
    gram_context_destroy(tmp);

    /* The stored tables in place of the fresh draw, each checked against what create made. */
    s = GRAM_EFORMAT;
    if (!!omega != !!f->omega || !!phase != !!f->phase || (omega && F != f->F)) {
        gram__fail(ctx, s, "%s: the stored tables do not match a %s map", where, mname);
        goto fail;
    }
    if (omega) {
        memcpy(f->omega, omega, (size_t)(F * D) * sizeof(double));
        f->omega32_finite = 1;
        for (int64_t i = 0; i < F * D; i++)
            if (!isfinite(f->omega32[i] = (float)f->omega[i])) f->omega32_finite = 0;
    }
    if (phase) {
        for (int64_t i = 0; i < F; i++)
            if (!(phase[i] >= 0 && phase[i] <= GRAM__2PI)) {
                gram__fail(ctx, s, "%s: phase %lld is %.17g, outside [0, 2 pi]", where, (long long)i, phase[i]);
                goto fail;
            }
        memcpy(f->phase, phase, (size_t)F * sizeof(double));
    }
    if (method == GRAM_FEATURES_ARCCOS) {
        int64_t n;
        if ((s = gram__model_get_i64(ctx, m, where, "arccos_n", &n))) goto fail;
        if (n != f->arccos_n) {
            s = gram__fail(ctx, GRAM_EFORMAT, "%s: arccos_n is %lld but the kernel's degree is %d", where,
                           (long long)n, f->arccos_n);
            goto fail;
        }
    }
    if (method == GRAM_FEATURES_SORF) {
        const int64_t n = f->n_blocks * 3 * f->Dp;
        if ((s = check_ints(ctx, where, "signs", signs, n, -1, 1, 1))) goto fail;
        for (int64_t i = 0; i < n; i++) f->signs[i] = (signed char)signs[i];
    }
    if (method == GRAM_FEATURES_TENSORSKETCH) {
        const int64_t n = (int64_t)f->ts_p * (D + 1);
        if (rows != f->ts_p) {
            s = gram__fail(ctx, GRAM_EFORMAT, "%s: %lld count sketches stored for a kernel of degree %d", where,
                           (long long)rows, f->ts_p);
            goto fail;
        }
        if ((s = check_ints(ctx, where, "hash", hash, n, 0, (double)(R - 1), 0)) ||
            (s = check_ints(ctx, where, "signs", signs, n, -1, 1, 1)))
            goto fail;
        /* The FFT's twiddles are not random: any other values would be a damaged file. */
        for (int64_t j = 0; j < R / 2 * 2; j++)
            if (!(fabs(tw[j] - f->twiddle[j]) <= 4.5e-16)) {
                s = gram__fail(ctx, GRAM_EFORMAT, "%s: twiddle %lld is %.17g, not the FFT's %.17g", where,
                               (long long)j, tw[j], f->twiddle[j]);
                goto fail;
            }
        for (int64_t i = 0; i < n; i++) {
            f->ts_hash[i] = (int32_t)hash[i];
            f->signs[i] = (signed char)signs[i];
        }
        if (R > 1) memcpy(f->twiddle, tw, (size_t)(R / 2 * 2) * sizeof(double));
    }
    *out = f;
    return GRAM_OK;
fail:
    gram_features_destroy(f);
    return s;
}

/* ---- the public entry points ------------------------------------------------------------------- */

gram_status gram_features_save(gram_context *ctx, const gram_features *f, const char *path)
{
    gram__clear(ctx);
    if (!f || !path) return gram__fail(ctx, GRAM_EINVAL, "gram_features_save: NULL argument");
    gram__model_file m;
    gram_status s = to_file(ctx, f, &m);
    if (!s) s = gram__model_save(ctx, path, &m);
    gram__model_file_free(&m);
    return s;
}

gram_status gram_features_to_bytes(gram_context *ctx, const gram_features *f, void **buf, size_t *size)
{
    gram__clear(ctx);
    if (!f || !buf || !size) return gram__fail(ctx, GRAM_EINVAL, "gram_features_to_bytes: NULL argument");
    *buf = NULL;
    *size = 0;
    gram__model_file m;
    gram_status s = to_file(ctx, f, &m);
    if (!s) s = gram__model_to_bytes(ctx, &m, (unsigned char **)buf, size);
    gram__model_file_free(&m);
    return s;
}

static gram_status load_any(gram_context *ctx, const char *fn, const char *path, const void *buf, size_t size,
                            gram_features **out)
{
    gram__clear(ctx);
    if (!out || (buf ? 0 : !path)) return gram__fail(ctx, GRAM_EINVAL, "%s: NULL argument", fn);
    *out = NULL;
    const char *where = buf ? "map bytes" : path;
    gram__model_file m;
    gram_status s = buf ? gram__model_from_bytes(ctx, where, buf, size, KIND, &m) : gram__model_load(ctx, path, KIND, &m);
    if (!s) s = from_file(ctx, &m, where, out);
    gram__model_file_free(&m);
    return s;
}

gram_status gram_features_load(gram_context *ctx, const char *path, gram_features **out)
{
    return load_any(ctx, "gram_features_load", path, NULL, 0, out);
}

gram_status gram_features_from_bytes(gram_context *ctx, const void *buf, size_t size, gram_features **out)
{
    if (!buf) {
        gram__clear(ctx);
        if (out) *out = NULL;
        return gram__fail(ctx, GRAM_EINVAL, "gram_features_from_bytes: buf is NULL");
    }
    return load_any(ctx, "gram_features_from_bytes", NULL, buf, size, out);
}
