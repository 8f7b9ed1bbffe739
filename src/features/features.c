/* Feature maps: which kernels each method covers, creation and the accessors.
 *
 * A map covers a kernel whose feature expansion is known in closed form: one family leaf
 * (shift-invariant for the trigonometric methods, the gaussian for the exponential ones) times a
 * positive constant. The checks here say which methods would apply when the one asked for does
 * not, so that the message is the user's next step. */
#include "features.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *method_name(gram_features_method m)
{
    switch (m) {
    case GRAM_FEATURES_RFF: return "RFF";
    case GRAM_FEATURES_RFF_PHASE: return "RFF_PHASE";
    case GRAM_FEATURES_ORF: return "ORF";
    case GRAM_FEATURES_SORF: return "SORF";
    case GRAM_FEATURES_POSITIVE: return "POSITIVE";
    case GRAM_FEATURES_POSITIVE_ORF: return "POSITIVE_ORF";
    case GRAM_FEATURES_HYPERBOLIC: return "HYPERBOLIC";
    case GRAM_FEATURES_HYPERBOLIC_ORF: return "HYPERBOLIC_ORF";
    case GRAM_FEATURES_TENSORSKETCH: return "TENSORSKETCH";
    case GRAM_FEATURES_ARCCOS: return "ARCCOS";
    case GRAM_FEATURES_NYSTROM: return "NYSTROM";
    }
    return NULL;
}

/* Families whose spectral density sample.c can draw from (Bochner's theorem: a shift-invariant
 * positive-definite kernel is the Fourier transform of a non-negative measure). */
static int family_has_spectrum(gram_family f)
{
    switch (f) {
    case GRAM_GAUSSIAN: case GRAM_LAPLACIAN: case GRAM_MATERN12: case GRAM_EXPONENTIAL:
    case GRAM_MATERN32: case GRAM_MATERN52: case GRAM_MATERN: case GRAM_RATIONAL_QUADRATIC:
    case GRAM_CAUCHY: case GRAM_LAPLACIAN_L1:
        return 1;
    default:
        return 0;
    }
}

static int method_covers(gram_features_method m, gram_family f)
{
    switch (m) {
    case GRAM_FEATURES_RFF: case GRAM_FEATURES_RFF_PHASE: return family_has_spectrum(f);
    /* orthogonal directions with independent norms keep the law of each row only for a spectrum
     * that is isotropic; laplacian_l1's is a product of one-dimensional Cauchy laws */
    case GRAM_FEATURES_ORF: return family_has_spectrum(f) && f != GRAM_LAPLACIAN_L1;
    case GRAM_FEATURES_TENSORSKETCH: return f == GRAM_POLYNOMIAL || f == GRAM_LINEAR;
    case GRAM_FEATURES_ARCCOS: return f == GRAM_ARCCOS;
    case GRAM_FEATURES_SORF: return f == GRAM_GAUSSIAN;
    /* exp(x·y) = E[exp(ω·x - |x|²/2) exp(ω·y - |y|²/2)] (Choromanski et al. 2021, Lemma 1); the
     * gaussian is that times exp(-|x|²/2 - |y|²/2) */
    default: return f == GRAM_GAUSSIAN || f == GRAM_SOFTMAX;
    }
}

/* "RFF, RFF_PHASE, ORF" for the methods that cover f (none: "none"). */
static void methods_for(gram_family f, char *buf, size_t size)
{
    buf[0] = '\0';
    size_t n = 0;
    for (int m = GRAM_FEATURES_RFF; m <= GRAM_FEATURES_ARCCOS; m++)
        if (method_covers((gram_features_method)m, f) && n < size)
            n += (size_t)snprintf(buf + n, size - n, "%s%s", n ? ", " : "", method_name((gram_features_method)m));
    if (!n) snprintf(buf, size, "none (no random feature map in gram covers it yet)");
}

static const char *covered_list =
    "RFF and RFF_PHASE cover gaussian, laplacian, matern12, exponential, matern32, matern52, matern, "
    "rational_quadratic, cauchy and laplacian_l1; ORF the same but laplacian_l1; SORF the gaussian; "
    "POSITIVE, POSITIVE_ORF, HYPERBOLIC and HYPERBOLIC_ORF the gaussian and softmax; TENSORSKETCH "
    "polynomial and linear; ARCCOS arccos";

/* Finds the kernel's one family leaf and its constant factor c, or says why the kernel is not of
 * the form c * family. */
static gram_status analyse(gram_context *ctx, const gram_kernel *k, const gram__leaf **leaf, double *c)
{
    const gram__op *o = k->ops;
    const gram__leaf *L = NULL;
    double scale = 1.0;
    if (k->n_ops == 1 && o[0].kind == GRAM_OP_LEAF) {
        L = &k->leaves[o[0].leaf];
    } else if (k->n_ops == 2 && o[0].kind == GRAM_OP_LEAF && o[1].kind == GRAM_OP_SCALE) {
        L = &k->leaves[o[0].leaf];
        scale = o[1].c;
    } else if (k->n_ops == 3 && o[0].kind == GRAM_OP_LEAF && o[1].kind == GRAM_OP_LEAF &&
               o[2].kind == GRAM_OP_MUL) {
        const gram__leaf *a = &k->leaves[o[0].leaf], *b = &k->leaves[o[1].leaf];
        if (a->family == GRAM_CONSTANT && b->family != GRAM_CONSTANT) L = b, scale = a->value;
        else if (b->family == GRAM_CONSTANT && a->family != GRAM_CONSTANT) L = a, scale = b->value;
    }
    if (!L) {
        const char *what = "a composite kernel";
        for (int i = 0; i < k->n_ops; i++)
            if (o[i].kind == GRAM_OP_ADD) what = "a sum of kernels";
            else if (o[i].kind == GRAM_OP_POW) what = "a power of a kernel";
        for (int i = 0; i < k->n_ops; i++)
            if (o[i].kind == GRAM_OP_MUL && !strcmp(what, "a composite kernel")) what = "a product of kernels";
        return gram__fail(ctx, GRAM_EINVAL,
                          "feature maps need one kernel family, optionally times a constant (c * family); "
                          "got %s. %s", what, covered_list);
    }
    if (!(scale > 0) || !isfinite(scale))
        return gram__fail(ctx, GRAM_EINVAL, "feature maps need a constant factor > 0, got %.17g "
                          "(a kernel with a factor <= 0 has no feature map with real features)", scale);
    *leaf = L;
    *c = scale;
    return GRAM_OK;
}

gram_status gram_features_create(gram_context *ctx, const gram_kernel *k, int64_t D,
                                 gram_features_method method, int64_t R, uint64_t seed,
                                 gram_features **out)
{
    gram__clear(ctx);
    if (!out) return gram__fail(ctx, GRAM_EINVAL, "out must not be NULL");
    *out = NULL;
    if (!k) return gram__fail(ctx, GRAM_EINVAL, "kernel must not be NULL");
    const char *mname = method_name(method);
    if (!mname) return gram__fail(ctx, GRAM_EINVAL, "unknown feature method %d", (int)method);
    if (method == GRAM_FEATURES_NYSTROM)
        return gram__fail(ctx, GRAM_EINVAL, "NYSTROM maps depend on data: make them with gram_features_nystrom");
    if (D < 1) return gram__fail(ctx, GRAM_ESHAPE, "feature maps need dimension D >= 1, got %lld", (long long)D);
    if (k->dim && k->dim != D)
        return gram__fail(ctx, GRAM_ESHAPE, "the kernel has %lld ARD lengthscales but D is %lld",
                          (long long)k->dim, (long long)D);
    if (R < 1) return gram__fail(ctx, GRAM_EINVAL, "n_components R must be >= 1, got %lld", (long long)R);
    const int paired = method != GRAM_FEATURES_RFF_PHASE && method != GRAM_FEATURES_POSITIVE &&
                       method != GRAM_FEATURES_POSITIVE_ORF && method != GRAM_FEATURES_TENSORSKETCH &&
                       method != GRAM_FEATURES_ARCCOS;
    if (paired && R % 2)
        return gram__fail(ctx, GRAM_EINVAL, "%s makes features in pairs (two per frequency): n_components R "
                          "must be even, got %lld", mname, (long long)R);
    if (method == GRAM_FEATURES_TENSORSKETCH && (R & (R - 1)))
        return gram__fail(ctx, GRAM_EINVAL, "TENSORSKETCH multiplies its sketches by a radix-2 FFT: n_components R "
                          "must be a power of two, got %lld", (long long)R);
    /* BLAS indexes with int: the frequencies and an output row must be within its reach. */
    int64_t RD;
    size_t bytes;
    if (R > INT_MAX || D > INT_MAX || !gram__mul_i64(R, D, &RD) || !gram__bytes(RD, sizeof(double) + sizeof(float), &bytes))
        return gram__fail(ctx, GRAM_EOVERFLOW, "a map of %lld features in dimension %lld has more frequencies "
                          "than gram can index or hold", (long long)R, (long long)D);

    const gram__leaf *L = NULL;
    double c = 0;
    gram_status s = analyse(ctx, k, &L, &c);
    if (s) return s;
    if (!method_covers(method, L->family)) {
        char list[256];
        methods_for(L->family, list, sizeof list);
        /* the trigonometric methods sample a spectral density, which only a shift-invariant k has */
        const int trig = method <= GRAM_FEATURES_SORF && gram__family_structure(L->family) == GRAM_STRUCT_DOT;
        return gram__fail(ctx, GRAM_EINVAL, "%s features do not cover the %s kernel%s; methods that do: %s",
                          mname, gram__family_name(L->family),
                          trig ? " (a dot-product kernel is not shift-invariant: it has no spectral density)" : "",
                          list);
    }

    gram_features *f = calloc(1, sizeof *f);
    if (!f) return gram__fail(ctx, GRAM_ENOMEM, "out of memory for a feature map");
    f->method = method;
    f->D = D;
    f->R = R;
    f->seed = seed;
    f->c = c;
    switch (method) {
    case GRAM_FEATURES_RFF: case GRAM_FEATURES_ORF: case GRAM_FEATURES_SORF: f->map = GRAM__FMAP_PAIRS; break;
    case GRAM_FEATURES_RFF_PHASE: f->map = GRAM__FMAP_PHASE; break;
    case GRAM_FEATURES_POSITIVE: case GRAM_FEATURES_POSITIVE_ORF: f->map = GRAM__FMAP_POSITIVE; break;
    case GRAM_FEATURES_TENSORSKETCH: f->map = GRAM__FMAP_LINEAR; break;
    case GRAM_FEATURES_ARCCOS: f->map = GRAM__FMAP_ARCCOS; break;
    default: f->map = GRAM__FMAP_HYPERBOLIC; break;
    }
    f->draw = method == GRAM_FEATURES_TENSORSKETCH ? GRAM__FDRAW_SKETCH
              : method == GRAM_FEATURES_SORF ? GRAM__FDRAW_HADAMARD
              : method == GRAM_FEATURES_ORF || method == GRAM_FEATURES_POSITIVE_ORF ||
                        method == GRAM_FEATURES_HYPERBOLIC_ORF
                  ? GRAM__FDRAW_ORTHOGONAL
                  : GRAM__FDRAW_IID;
    f->F = f->map == GRAM__FMAP_PAIRS || f->map == GRAM__FMAP_HYPERBOLIC ? R / 2 : R;
    f->amp = f->map == GRAM__FMAP_PAIRS ? sqrt(c / (double)f->F)
             : f->map == GRAM__FMAP_PHASE || f->map == GRAM__FMAP_ARCCOS ? sqrt(2.0 * c / (double)R)
             : f->map == GRAM__FMAP_LINEAR ? sqrt(c)
                                          : sqrt(c / (double)R);

    if ((s = gram_kernel_copy(ctx, k, &f->kernel))) {
        free(f);
        return s;
    }
    f->leaf = &f->kernel->leaves[L - k->leaves];
    if (method == GRAM_FEATURES_ARCCOS) f->arccos_n = L->degree;
    if (method == GRAM_FEATURES_TENSORSKETCH) {
        const int lin = L->family == GRAM_LINEAR;
        f->ts_p = lin ? 1 : L->degree;
        f->ts_scale = lin ? 1.0 : sqrt(L->gamma);
        f->ts_const = lin ? L->sigma0 : sqrt(L->coef0);
    }
    /* Their total first: each block alone may fit where all of them together do not. */
    if (!gram__memory_fits(bytes)) {
        gram_features_destroy(f);
        return gram__fail(ctx, GRAM_ENOMEM, "a map of %lld features in dimension %lld needs %zu bytes of "
                          "frequencies, more than the system can provide now", (long long)R, (long long)D, bytes);
    }
    f->inv_ls = gram__alloc((size_t)D * sizeof(double));
    if (!f->inv_ls) {
        gram_features_destroy(f);
        return gram__fail(ctx, GRAM_ENOMEM, "out of memory for a feature map");
    }
    for (int64_t d = 0; d < D; d++) f->inv_ls[d] = f->leaf->inv_scale[f->leaf->n_scale == 1 ? 0 : d];
    if ((s = gram__features_draw(ctx, f))) {
        gram_features_destroy(f);
        return s;
    }
    *out = f;
    return GRAM_OK;
}

void gram_features_destroy(gram_features *f)
{
    if (!f) return;
    gram_kernel_destroy(f->kernel);
    gram__free(f->inv_ls);
    gram__free(f->omega);
    gram__free(f->omega32);
    gram__free(f->phase);
    gram__free(f->signs);
    gram__free(f->ts_hash);
    gram__free(f->twiddle);
    gram__free(f->landmark_idx);
    gram__free(f->landmarks);
    gram__free(f->proj);
    free(f);
}

int64_t gram_features_n_components(const gram_features *f) { return f ? f->R : 0; }
int64_t gram_features_dim(const gram_features *f) { return f ? f->D : 0; }
gram_features_method gram_features_method_of(const gram_features *f) { return f ? f->method : GRAM_FEATURES_RFF; }
uint64_t gram_features_seed(const gram_features *f) { return f ? f->seed : 0; }
const gram_kernel *gram_features_kernel(const gram_features *f) { return f ? f->kernel : NULL; }

int64_t gram_features_n_frequencies(const gram_features *f)
{
    return f && f->omega ? f->F : 0;
}

gram_status gram_features_frequencies(const gram_features *f, gram_array *omega, double *phase)
{
    if (!f) return GRAM_EINVAL;
    if (!f->omega) return GRAM_EINVAL; /* SORF, TensorSketch, Nyström: no frequency table */
    if (phase && !f->phase) return GRAM_EINVAL;
    if (omega) {
        if (omega->rows != f->F || omega->cols != f->D) return GRAM_ESHAPE;
        for (int64_t i = 0; i < f->F; i++)
            for (int64_t d = 0; d < f->D; d++) {
                const double v = f->omega[i * f->D + d];
                const int64_t at = i * omega->row_stride + d * omega->col_stride;
                if (omega->dtype == GRAM_FLOAT32) ((float *)omega->data)[at] = (float)v;
                else ((double *)omega->data)[at] = v;
            }
    }
    if (phase) memcpy(phase, f->phase, (size_t)f->F * sizeof(double));
    return GRAM_OK;
}

int gram_features_sketch_degree(const gram_features *f)
{
    return f && f->method == GRAM_FEATURES_TENSORSKETCH ? f->ts_p : 0;
}

gram_status gram_features_sketch(const gram_features *f, int32_t *hash, int8_t *sign)
{
    if (!f || f->method != GRAM_FEATURES_TENSORSKETCH) return GRAM_EINVAL;
    const size_t n = (size_t)f->ts_p * (size_t)(f->D + 1);
    if (hash) memcpy(hash, f->ts_hash, n * sizeof(int32_t));
    if (sign)
        for (size_t i = 0; i < n; i++) sign[i] = (int8_t)f->signs[i];
    return GRAM_OK;
}

int gram__features_rff_covers(const gram_kernel *k, const char **why)
{
    const gram__leaf *L = NULL;
    double c = 0;
    const char *no = NULL;
    if (analyse(NULL, k, &L, &c))
        no = "random Fourier features need one shift-invariant kernel family times a constant > 0 (c * family), "
             "not a sum, product or power of kernels";
    else if (!method_covers(GRAM_FEATURES_RFF, L->family))
        no = "random Fourier features need a shift-invariant kernel with a known spectral density (gaussian, "
             "laplacian, matern12, exponential, matern32, matern52, matern, rational_quadratic, cauchy, laplacian_l1)";
    if (why) *why = no;
    return no == NULL;
}
