/*
 * gram.h — the public interface of libgram, fast kernel sums and Gram matrices.
 *
 * This header is the specification. Everything not declared here is private.
 *
 * The one computation
 * -------------------
 * For data X (N×D), queries Y (M×D), a kernel k and weights W (N×V):
 *
 *     gram_kernel_sum     out[i,v] = Σ_j k(y_i, x_j) · W[j,v]
 *     gram_kernel_logsum  out[i,v] = log Σ_j exp(log k(y_i, x_j) + log W[j,v])
 *     gram_kernel_matrix  out[i,j] = k(y_i, x_j)
 *     gram_kernel_diag    out[i]   = k(x_i, x_i)
 *
 * Conventions
 * -----------
 * - Every fallible function returns a gram_status; GRAM_OK is 0. gram_strerror() gives static
 *   text for a status; gram_context_message() says what went wrong and where ("X: row 17,
 *   column 3 is NaN"; "lengthscale must be > 0, got -1").
 * - A context (gram_context) carries the error message, the thread count, the progress callback
 *   and the forced microkernel architecture. Every function that takes a context accepts NULL
 *   (defaults, and no message). A context must not be used by two threads at once; kernels
 *   (gram_kernel) are immutable after creation and may be shared freely between threads.
 * - Objects: gram_<object>_create(&out, ...) / gram_<object>_destroy(p). destroy accepts NULL.
 *   On failure *out is set to NULL and nothing leaks.
 * - Arrays are passed as gram_array views: pointer, dtype, rows, cols and strides in elements,
 *   so C- and Fortran-ordered arrays and transposed or sliced views pass without copies.
 *   Input arrays are only read. Output arrays belong to the caller.
 * - The library never prints, never exits and never aborts.
 * - In messages, array rows, columns and dimensions are counted from 0 (as NumPy does); lines of
 *   files are counted from 1 (as editors do).
 *
 * NaN policy
 * ----------
 * Non-finite values (NaN, +Inf, -Inf) in X, Y or W are refused with GRAM_ENONFINITE and a message
 * naming the array, row and column of the first one found in row-major order. Kernel parameters
 * must be finite and inside their documented domain (GRAM_EINVAL otherwise). For finite inputs no
 * result is NaN. gram_kernel_logsum returns -inf exactly where the true sum is 0 (all weights
 * zero, or every point outside a compactly supported kernel's support), and a finite value
 * wherever the true sum is positive, even when every term underflows in floating point.
 *
 * Threads and reproducibility
 * ---------------------------
 * The engine runs on OpenMP threads (gram_context_set_threads). Results are bit-identical for
 * every thread count: work is split into fixed chunks of data points and partial results are
 * combined in a fixed order that does not depend on the number of threads. Results may differ in
 * the last bits between microkernel architectures (GRAM_ARCH), within the documented bounds.
 *
 * Precision
 * ---------
 * float64 inputs are computed and accumulated in float64: each kernel value is within a few ulps
 * of the exact value for the rounded inputs, and sums of non-negative terms are within
 * 1e-12 relative of the exact sum for N ≤ 1e7. float32 inputs are computed in float32 and
 * accumulated in float64 (the fused microkernels add at most 4 float32 products per lane before
 * each float64 addition): relative error ≤ 1e-6 for sums of non-negative terms whose kernel
 * arguments (scaled squared distances) stay below 10 at moderate D; the float32 distance itself
 * carries (D+2)·2⁻²⁴ relative error. Sums with weights of both signs have the
 * usual absolute bound, eps · Σ_j |k(y_i,x_j) W[j,v]|.
 * These bounds are for the rounded scaled coordinates. Radial and periodic kernels (not the
 * dot-product ones, which are not translation-invariant) are evaluated on coordinates centred at
 * c, the midpoint of X's range in each dimension rounded so that every x - c is exact; so each
 * scaled coordinate (x_d - c_d)/ℓ_d carries one rounding relative to |x_d - c_d| (at most half
 * the spread of X) rather than to |x_d|, and data far from the origin relative to the lengthscale
 * (Unix timestamps with ℓ = 60 s; |x|/ℓ = 1e12) keep the 1e-12 above while the spread of X over
 * ℓ stays below ~1e3 (measured: 7e-16 for an hour of timestamps at ℓ = 60 s, 1.1e-14 for a
 * day). Where some |x_d| is small next to the spread (data around the origin), c_d = 0. The
 * relative error of a scaled difference is in general u·(|y - c| + |x - c|)/|y - x|, u the unit
 * roundoff. Gradients (gram_kernel_matrix_grad, the GP likelihood) take differences before
 * scaling and are not affected.
 */
#ifndef GRAM_H
#define GRAM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GRAM_VERSION_MAJOR 0
#define GRAM_VERSION_MINOR 1
#define GRAM_VERSION_PATCH 0

#if defined(_WIN32) && defined(GRAM_SHARED_BUILD)
#define GRAM_API __declspec(dllexport)
#elif defined(__GNUC__)
#define GRAM_API __attribute__((visibility("default")))
#else
#define GRAM_API
#endif

/* ------------------------------------------------------------------------------------------ */
/* Status codes                                                                                */
/* ------------------------------------------------------------------------------------------ */

typedef enum gram_status {
    GRAM_OK = 0,
    GRAM_EINVAL = 1,       /* an argument is invalid: NULL pointer, bad parameter value */
    GRAM_ESHAPE = 2,       /* array shapes do not agree, or a size is zero where it must not be */
    GRAM_ENONFINITE = 3,   /* NaN or Inf in input data */
    GRAM_ENOMEM = 4,       /* memory allocation failed, or the memory a call needs (1 GiB or
                              more, asked for as a whole before any of it is allocated) exceeds
                              what the system can provide now: MemAvailable + SwapFree, lowered
                              to the room under the process's cgroup memory limits. Linux would
                              grant such blocks and its OOM killer end the process as they fill */
    GRAM_EOVERFLOW = 5,    /* a size or size product overflows int64 / size_t */
    GRAM_EPARSE = 6,       /* a kernel spec could not be parsed (message gives the position) */
    GRAM_EDOMAIN = 7,      /* the operation is not defined for this kernel or these values
                              (logsum of a kernel that can be negative, negative weights,
                              normaliser of a kernel that does not integrate) */
    GRAM_EUNSUPPORTED = 8, /* not available on this build or machine (e.g. GRAM_ARCH=avx512 on a
                              CPU without AVX-512) */
    GRAM_ECANCELLED = 9,   /* the progress callback asked to stop */
    GRAM_EIO = 10,         /* a file could not be read or written */
    GRAM_EFORMAT = 11,     /* a file is malformed */
    GRAM_ENOTPD = 12,      /* a matrix is not numerically positive definite */
    GRAM_EINTERNAL = 13    /* a bug in gram; please report it */
} gram_status;

/* Static English text for a status; never NULL (unknown codes give "unknown status"). */
GRAM_API const char *gram_strerror(gram_status status);

/* ------------------------------------------------------------------------------------------ */
/* Version                                                                                     */
/* ------------------------------------------------------------------------------------------ */

/* "MAJOR.MINOR.PATCH" of the library actually loaded (may differ from the header's macros). */
GRAM_API const char *gram_version(void);
/* MAJOR*10000 + MINOR*100 + PATCH of the library actually loaded. */
GRAM_API int gram_version_number(void);

/* ------------------------------------------------------------------------------------------ */
/* Context                                                                                     */
/* ------------------------------------------------------------------------------------------ */

typedef struct gram_context gram_context;

/*
 * Progress callback: called from the calling thread between blocks of work with the work done
 * so far and the total, in arbitrary units (done ≤ total). Return 0 to continue, non-zero to
 * cancel: the call then returns GRAM_ECANCELLED as soon as the running blocks finish, and the
 * contents of its output array are unspecified (partially written).
 */
typedef int (*gram_progress_fn)(void *user, int64_t done, int64_t total);

GRAM_API gram_status gram_context_create(gram_context **out);
GRAM_API void gram_context_destroy(gram_context *ctx);

/* The message of the last failed call on this context ("" if none). Valid until the next call. */
GRAM_API const char *gram_context_message(const gram_context *ctx);

/* Threads for engine calls: 0 = OpenMP's default (OMP_NUM_THREADS or the core count). */
GRAM_API gram_status gram_context_set_threads(gram_context *ctx, int threads);
GRAM_API int gram_context_threads(const gram_context *ctx);

/* Progress callback (NULL to remove). */
GRAM_API gram_status gram_context_set_progress(gram_context *ctx, gram_progress_fn fn,
                                               void *user);

/*
 * Microkernel architecture: "auto" (the best this CPU supports; the default, or the value of the
 * environment variable GRAM_ARCH when set), "ref" (portable C; the test oracle), "avx2" (AVX2 +
 * FMA) or "avx512" (AVX-512F/DQ). Forcing an architecture the CPU or build lacks gives
 * GRAM_EUNSUPPORTED.
 */
GRAM_API gram_status gram_context_set_arch(gram_context *ctx, const char *arch);
/* The architecture the next engine call on ctx will use ("ref", "avx2" or "avx512"). */
GRAM_API const char *gram_context_arch(const gram_context *ctx);

/* ------------------------------------------------------------------------------------------ */
/* Arrays                                                                                      */
/* ------------------------------------------------------------------------------------------ */

typedef enum gram_dtype { GRAM_FLOAT64 = 0, GRAM_FLOAT32 = 1 } gram_dtype;

/*
 * A strided 2-D view: element (i, j) is at ((T*)data)[i*row_stride + j*col_stride], with T the
 * dtype's C type. Strides are in elements, may be negative or zero, and need not be contiguous.
 * rows and cols must be ≥ 0.
 */
typedef struct gram_array {
    void *data;
    gram_dtype dtype;
    int64_t rows;
    int64_t cols;
    int64_t row_stride;
    int64_t col_stride;
} gram_array;

/* C-ordered (row-major) views. */
static inline gram_array gram_array_f64(const double *data, int64_t rows, int64_t cols)
{
    gram_array a = {(void *)(uintptr_t)data, GRAM_FLOAT64, rows, cols, cols, 1};
    return a;
}
static inline gram_array gram_array_f32(const float *data, int64_t rows, int64_t cols)
{
    gram_array a = {(void *)(uintptr_t)data, GRAM_FLOAT32, rows, cols, cols, 1};
    return a;
}

/* ------------------------------------------------------------------------------------------ */
/* Kernels                                                                                     */
/* ------------------------------------------------------------------------------------------ */

/*
 * Families. r is the distance between y and x after each coordinate is divided by its
 * lengthscale ℓ_d (scalar ℓ or one per dimension, ARD); s is the dot product of the scaled
 * points. The spec name is given first.
 *
 * Radial in squared Euclidean distance (t = r²):
 *   gaussian, rbf           exp(-r²/2)
 *   laplacian               exp(-r)                      (Euclidean r; also "matern12")
 *   matern12                exp(-r)
 *   matern32                (1 + √3 r) exp(-√3 r)
 *   matern52                (1 + √5 r + 5r²/3) exp(-√5 r)
 *   matern                  2^(1-ν)/Γ(ν) · z^ν K_ν(z), z = √(2ν) r, k(0) = 1   param nu > 0
 *                           (default 1.5; at most 1e4), scikit-learn's Matern(nu=...): K_ν is
 *                           gram's own modified Bessel function of real order (Temme's series,
 *                           Steed's continued fraction), within ~3e-14 + z·4e-16 relative where
 *                           k ≥ 1e-10, finite log-values where it underflows. nu is fixed, not a
 *                           hyperparameter (as in scikit-learn); nu = 0.5, 1.5, 2.5 give
 *                           matern12, matern32, matern52 (the spec prints those names).
 *   rational_quadratic, rq  (1 + r²/(2α))^(-α)                    param alpha > 0 (default 1)
 *   cauchy                  1 / (1 + r²)
 *   periodic, exp_sine_squared
 *                           exp(-2 sin²(π ρ / p) / ℓ²), ρ the unscaled Euclidean distance;
 *                           params: lengthscale ℓ (scalar), period p > 0 (default 1)
 *   Density kernels (scikit-learn's KernelDensity names in brackets), with exact D-dimensional
 *   normalisers from gram_kernel_log_normalizer:
 *   gaussian                [gaussian]
 *   tophat                  [tophat]        1 if r < 1 else 0
 *   epanechnikov            [epanechnikov]  max(0, 1 - r²)
 *   exponential             [exponential]   exp(-r)
 *   triangular              [linear]        max(0, 1 - r)
 *   cosine_window           [cosine]        cos(π r / 2) if r < 1 else 0
 *   neg_l2                  -r    (negative Euclidean distance, a similarity)
 * Radial in L1 distance (t = Σ_d |y_d - x_d| / ℓ_d):
 *   laplacian_l1            exp(-t)
 *   neg_l1                  -t
 * Dot product (s = Σ_d y_d x_d / ℓ_d², norms |x|, |y| of the scaled points):
 *   linear                  σ0² + s                 param sigma0 ≥ 0 (default 0)
 *   polynomial, poly        (γ s + c0)^degree       params degree (integer ≥ 1, default 3),
 *                                                   gamma > 0 (default 1), coef0 ≥ 0 (default 1)
 *   cosine                  s / (|x| |y|)           (0 if either norm is 0, as scikit-learn)
 *   sigmoid                 tanh(γ s + c0)          params gamma > 0 (default 1), coef0 (any
 *                                                   finite value, default 1): scikit-learn's
 *                                                   sigmoid_kernel (its default gamma is
 *                                                   1/n_features); gamma and a coef0 > 0 are
 *                                                   hyperparameters, as polynomial's
 *   softmax                 exp(s)                  Performer's softmax kernel SM(x, y) = exp(x·y)
 *                                                   (Choromanski et al. 2021); softmax attention's
 *                                                   exp(q·k/√d) is lengthscale d^(1/4). Positive;
 *                                                   log-values are s itself, never log(exp(s)), so
 *                                                   gram_kernel_logsum is finite wherever s is;
 *                                                   exp(s) > DBL_MAX is +inf (see the engine)
 *   arccos                  (1/π) |x|^n |y|^n J_n(θ), θ the angle between x/ℓ and y/ℓ
 *                                                   param degree n ∈ {0, 1, 2} (default 1), not a
 *                                                   hyperparameter: Cho & Saul's (2009) arc-cosine
 *                                                   kernel, J_0 = π - θ, J_1 = sin θ + (π - θ) cos θ,
 *                                                   J_2 = 3 sin θ cos θ + (π - θ)(1 + 2 cos² θ); the
 *                                                   kernel of an infinitely wide one-layer network
 *                                                   with step (n = 0), ReLU (1), ReLU² (2) units.
 *                                                   Non-negative. At a zero vector: 0 for n ≥ 1
 *                                                   (the limit); n = 0 has no limit (it depends on
 *                                                   the direction), and gram takes θ = π/2, value
 *                                                   1/2, the expectation with the step Θ(0) = 1/2
 *                                                   that GRAM_FEATURES_ARCCOS uses too. θ comes
 *                                                   from cos θ = s/(|x||y|), taken as ±1 within 8ε
 *                                                   of ±1, so (anti)parallel points (y = x, every
 *                                                   pair at D = 1) get θ = 0 or π exactly in every
 *                                                   path (float64 statistics). A relative error δ
 *                                                   of the ratio (a few ulps of the inputs' dtype,
 *                                                   more where the dot product cancels) moves θ by
 *                                                   about δ/sin θ, and by up to √(2δ) + 6e-8 near
 *                                                   0 and π (~1e-7 in float64; ~5e-4 for float32
 *                                                   inputs, whose statistics are float: the
 *                                                   diagonal K(x, x) of the SIMD tables included).
 *                                                   n = 0 then has an absolute error up to ~3e-8
 *                                                   (float32: ~2e-4) there; n = 1, 2 are flat in θ
 *                                                   at θ = 0 (error ~ε), and near θ = π, where they
 *                                                   vanish like φ³/3 and 4φ⁵/15 (φ = π - θ, summed
 *                                                   as series, without cancellation), their
 *                                                   relative error is about 3·δθ/φ and 5·δθ/φ, the
 *                                                   absolute error staying ≲ 1e-16·|x|^n |y|^n
 * Constant:
 *   constant                c                       param value > 0 (default 1)
 *   white                   σ² where the call is symmetric (Y and X are the same array view,
 *                           see gram_kernel_matrix) and i == j, else 0; param noise ≥ 0 (default 1).
 *                           As scikit-learn's WhiteKernel.
 */
typedef enum gram_family {
    GRAM_GAUSSIAN = 0,
    GRAM_LAPLACIAN,
    GRAM_MATERN12,
    GRAM_MATERN32,
    GRAM_MATERN52,
    GRAM_RATIONAL_QUADRATIC,
    GRAM_CAUCHY,
    GRAM_PERIODIC,
    GRAM_TOPHAT,
    GRAM_EPANECHNIKOV,
    GRAM_EXPONENTIAL,
    GRAM_TRIANGULAR,
    GRAM_COSINE_WINDOW,
    GRAM_NEG_L2,
    GRAM_LAPLACIAN_L1,
    GRAM_NEG_L1,
    GRAM_LINEAR,
    GRAM_POLYNOMIAL,
    GRAM_COSINE,
    GRAM_CONSTANT,
    GRAM_WHITE,
    GRAM_MATERN,
    GRAM_SIGMOID,
    GRAM_SOFTMAX,
    GRAM_ARCCOS,
    GRAM_FAMILY_COUNT
} gram_family;

/* How the engine computes a family's per-pair statistic before the family's scalar function. */
typedef enum gram_structure {
    GRAM_STRUCT_SQDIST = 0, /* t = |(y - x)/ℓ|² */
    GRAM_STRUCT_L1 = 1,     /* t = Σ |y_d - x_d| / ℓ_d */
    GRAM_STRUCT_DOT = 2,    /* s = (y/ℓ)·(x/ℓ), with |x/ℓ|² and |y/ℓ|² */
    GRAM_STRUCT_CONST = 3   /* no per-pair statistic */
} gram_structure;

typedef struct gram_kernel gram_kernel;

/*
 * Parse a kernel spec. Grammar (whitespace ignored, names case-sensitive):
 *
 *   expr   := term ('+' term)*
 *   term   := factor ('*' factor)*
 *   factor := primary ('^' NUMBER)*            a power (gram_kernel_pow), left-associative
 *   primary:= NUMBER | family | '(' expr ')'
 *   family := NAME [ '(' [ arg (',' arg)* ] ')' ]
 *   arg    := [ KEY '=' ] value          a positional arg sets the family's first parameter
 *   value  := NUMBER | '[' NUMBER (',' NUMBER)* ']'
 *
 * A NUMBER multiplying a kernel is a scale (hyperparameter "scale" when > 0); a NUMBER added to
 * a kernel is constant(NUMBER). '^' binds tighter than '*': "2*linear^2" is 2·(linear²),
 * "(rbf + white(0.1))^0.5" the square root of the sum; a NUMBER to a power is that number.
 * Keys: lengthscale (scalar or list, ARD), alpha, period, sigma0, degree, gamma, coef0, value,
 * noise, nu. Examples: "gaussian(0.5)", "2.0*matern52(lengthscale=[1,2,3]) + white(0.1)",
 * "rbf(lengthscale=10) * periodic(lengthscale=1, period=1)", "linear(sigma0=2)^2",
 * "matern(nu=0.7, lengthscale=[1, 2], lengthscale_bounds=[[1e-3, 10], [1e-2, 100]])".
 *
 * On a parse error returns GRAM_EPARSE with a message giving the 1-based character position.
 */
GRAM_API gram_status gram_kernel_parse(gram_context *ctx, const char *spec, gram_kernel **out);

/*
 * Typed constructor for one family. lengthscales: n_lengthscales values (0 → 1.0; 1 →
 * isotropic; D → ARD, which fixes the kernel's dimension to D). params: the family's parameters
 * in the order listed above (rational_quadratic: alpha; periodic: period; linear: sigma0;
 * polynomial: degree, gamma, coef0; constant: value; white: noise; matern: nu; sigmoid: gamma,
 * coef0; arccos: degree); n_params may be less than the
 * family's count, the rest take their defaults.
 */
GRAM_API gram_status gram_kernel_create(gram_context *ctx, gram_family family,
                                        int64_t n_lengthscales, const double *lengthscales,
                                        int n_params, const double *params, gram_kernel **out);

/* Composites; the operands are copied, so they may be destroyed afterwards. */
GRAM_API gram_status gram_kernel_add(gram_context *ctx, const gram_kernel *a,
                                     const gram_kernel *b, gram_kernel **out);
GRAM_API gram_status gram_kernel_mul(gram_context *ctx, const gram_kernel *a,
                                     const gram_kernel *b, gram_kernel **out);
GRAM_API gram_status gram_kernel_scale(gram_context *ctx, double c, const gram_kernel *a,
                                       gram_kernel **out);
GRAM_API gram_status gram_kernel_copy(gram_context *ctx, const gram_kernel *k, gram_kernel **out);
/*
 * a^p, scikit-learn's Exponentiation(a, p) (a ** p): values k(y, x)^p, log-values p·log k, and
 * gradients p·k^(p-1)·∂k. The exponent is fixed, not a hyperparameter (as in scikit-learn), and
 * must be > 0 and finite (GRAM_EINVAL; scikit-learn accepts p ≤ 0, which is no kernel and infinite
 * where k is 0). A non-integer p of a kernel that can be negative (linear, polynomial of odd degree,
 * cosine, neg_l1, neg_l2, sigmoid, or a composite of them) is refused with GRAM_EDOMAIN, since k^p
 * has no real value where k < 0; an even integer p makes any kernel non-negative, so its log-sum is
 * defined (computed as p·log|k|).
 */
GRAM_API gram_status gram_kernel_pow(gram_context *ctx, const gram_kernel *a, double exponent,
                                     gram_kernel **out);

GRAM_API void gram_kernel_destroy(gram_kernel *k);

/*
 * The canonical spec of k (parsing it gives an equal kernel; numbers printed with %.17g).
 * snprintf semantics: returns the length the full spec needs, excluding the terminating NUL.
 */
GRAM_API size_t gram_kernel_spec(const gram_kernel *k, char *buf, size_t size);

/* The dimension fixed by ARD lengthscales, or 0 when the kernel accepts any D. */
GRAM_API int64_t gram_kernel_dim(const gram_kernel *k);

/* 1 if every value of k is ≥ 0 for every input (so gram_kernel_logsum is defined), else 0. */
GRAM_API int gram_kernel_is_nonnegative(const gram_kernel *k);

/*
 * Hyperparameters, in log space: θ = log(value) for every positive parameter, in the order of
 * the kernel's postfix program (the order of gram_kernel_spec's canonical text): each leaf gives
 * its lengthscale(s), then its positive non-integer family parameters in the order listed above;
 * a scale c > 0 gives one hyperparameter "scaleK" right after those of the expression it
 * multiplies. Zero parameters (sigma0 = 0, coef0 = 0, noise = 0), integers (degree) and scales
 * c ≤ 0 are fixed and not listed. Example: "2.0*matern52(lengthscale=[1,2,3]) + white(0.1)" has
 * leaf1.lengthscale[0..2], scale1, leaf2.noise.
 */
GRAM_API int64_t gram_kernel_n_hyper(const gram_kernel *k);
GRAM_API gram_status gram_kernel_get_hyper(const gram_kernel *k, double *theta);
/* "leaf1.lengthscale" (isotropic), "leaf2.lengthscale[0]" (ARD), "leaf1.alpha", "scale1";
 * NULL if i is out of range. */
GRAM_API const char *gram_kernel_hyper_name(const gram_kernel *k, int64_t i);
/*
 * Bounds of the hyperparameters for learning (gram_gp_fit with optimize), in log space:
 * lower[i] ≤ θ_i ≤ upper[i] constrain the optimiser; a fixed hyperparameter has
 * lower[i] = upper[i] = θ_i. In a spec, "<key>_bounds=[lo, hi]" (values, not logs, 0 ≤ lo ≤ hi,
 * hi > 0; lo = 0 and hi = inf leave that side open, log bound ∓inf) or "<key>_bounds=fixed"
 * after the parameter, e.g. "rbf(lengthscale=67, lengthscale_bounds=[1, 1000])" or
 * "periodic(lengthscale=1.3, period=1, period_bounds=fixed)". One lengthscale pair applies to
 * every ARD lengthscale; a list of one pair per lengthscale gives each its own, as
 * scikit-learn's (n_features, 2) array: "rbf(lengthscale=[1, 2], lengthscale_bounds=[[1e-3, 10],
 * [1e-2, 100]])". As in scikit-learn, a value may lie outside its bounds (they only constrain
 * learning: gram_gp_fit starts from the value's projection onto them). Without explicit bounds
 * a parameter gets scikit-learn's default [1e-5, 1e5] exactly, whatever its value; a NUMBER
 * scale ("2.0*k") always has the default bounds (write constant(value=c, value_bounds=[lo, hi])*k
 * to bound a scale). Explicit bounds appear in gram_kernel_spec's text (a per-lengthscale list
 * whose pairs are all equal prints as one pair).
 */
GRAM_API gram_status gram_kernel_get_bounds(const gram_kernel *k, double *lower, double *upper);
/* 1 if hyperparameter i is fixed ("_bounds=fixed"), 0 if free or out of range. */
GRAM_API int gram_kernel_hyper_fixed(const gram_kernel *k, int64_t i);
/* A new kernel equal to k with hyperparameters θ (n_hyper values, finite). */
GRAM_API gram_status gram_kernel_set_hyper(gram_context *ctx, const gram_kernel *k,
                                           const double *theta, gram_kernel **out);

/*
 * One pair: *value = k(y, x) for D-vectors y and x; same ≠ 0 says the pair is a diagonal entry of
 * a symmetric call (where white contributes). If grad is not NULL it receives ∂k/∂θ_p for every
 * hyperparameter (gram_kernel_n_hyper values), analytically.
 */
GRAM_API gram_status gram_kernel_eval(gram_context *ctx, const gram_kernel *k, int64_t D,
                                      const double *y, const double *x, int same, double *value,
                                      double *grad);

/*
 * log ∫_{R^D} k(0, x) dx for a single-leaf (optionally scaled) density-capable kernel, with its
 * lengthscales: gaussian, laplacian/matern12/exponential, matern32, matern52, cauchy (D = 1),
 * rational_quadratic (2α > D), tophat, epanechnikov, triangular, cosine_window. Divide a kernel
 * sum by exp(this) (subtract it in log space) to get a density. GRAM_EDOMAIN for kernels that do
 * not integrate.
 */
GRAM_API gram_status gram_kernel_log_normalizer(gram_context *ctx, const gram_kernel *k,
                                                int64_t D, double *out);

/* ------------------------------------------------------------------------------------------ */
/* The engine                                                                                  */
/* ------------------------------------------------------------------------------------------ */

/*
 * Shapes: Y is M×D (queries), X is N×D (data), W is N×V (weights; NULL means V = 1 and all
 * weights 1), out is M×V. X and Y must have the same dtype (float64 or float32); W and out may
 * have either dtype. out must not overlap the inputs. Memory used: O((N + M)·D + M·V), never an
 * M×N temporary.
 *
 * M = 0 or N = 0 is allowed (out gets zeros, or -inf for logsum); D = 0 is allowed (every
 * distance is 0). Sizes whose products overflow give GRAM_EOVERFLOW.
 *
 * A kernel value too large for a double (a linear kernel at |x| ~ 1e155, a scale of 1e308) is
 * ±inf; where only an intermediate factor of a non-negative kernel's product, scale or power
 * overflows (1e308*rbf*8*rbf*gaussian(0.1)), the value is recomputed from its log-value (relative
 * error about |ln k| ulps). A sum with such terms of one sign is ±inf (the engine's own padding
 * of X adds an exact 0). A user's weight of exactly 0 times such a value is IEEE's 0·inf = NaN,
 * and so is that row's sum: drop the zero-weight points.
 */
GRAM_API gram_status gram_kernel_sum(gram_context *ctx, const gram_kernel *k, const gram_array *Y,
                                     const gram_array *X, const gram_array *W, gram_array *out);

/*
 * out[i,v] = log Σ_j exp(log k(y_i,x_j) + log W[j,v]). k must be non-negative
 * (gram_kernel_is_nonnegative) and W ≥ 0 (GRAM_EDOMAIN otherwise). Log kernel values are computed
 * in log space (log k of the gaussian is -r²/2 exactly), so the result is finite and accurate
 * whenever the true sum is positive, however small.
 */
GRAM_API gram_status gram_kernel_logsum(gram_context *ctx, const gram_kernel *k,
                                        const gram_array *Y, const gram_array *X,
                                        const gram_array *W, gram_array *out);

/*
 * out (M×N) = K(Y, X). The call is symmetric when Y and X are views of the same memory with the
 * same shape and strides (or Y is NULL, meaning Y = X); then out[i,i] includes white noise.
 */
GRAM_API gram_status gram_kernel_matrix(gram_context *ctx, const gram_kernel *k,
                                        const gram_array *Y, const gram_array *X, gram_array *out);

/*
 * A Gram block and its gradient in the log-hyperparameters: out as gram_kernel_matrix (Y NULL or
 * the same view as X: the symmetric K(X, X), white noise on the diagonal), and, when grad is not
 * NULL, grad (a caller buffer of M·N·P doubles, P = gram_kernel_n_hyper(k)) in scikit-learn's
 * (M, N, P) C-order layout:
 *     grad[(i·N + j)·P + p] = ∂K[i,j]/∂θ_p,  θ = log of the hyperparameters,
 * for every hyperparameter in gram_kernel_get_hyper's order, fixed ones included (select the
 * free ones with gram_kernel_hyper_fixed). The derivatives are analytic; each is within a few ulps
 * times the condition of the family's formula, computed in float64 also for float32 inputs. grad
 * must not overlap the inputs or out. Results are bit-identical for every thread count. The
 * progress callback sees two phases (the block, then the gradient's rows), each from 0 to its
 * total. Sizes whose product M·N·P overflows give GRAM_EOVERFLOW.
 */
GRAM_API gram_status gram_kernel_matrix_grad(gram_context *ctx, const gram_kernel *k,
                                             const gram_array *Y, const gram_array *X,
                                             gram_array *out, double *grad);

/* out[i] = k(x_i, x_i) including white noise; out is N×1 or 1×N. */
GRAM_API gram_status gram_kernel_diag(gram_context *ctx, const gram_kernel *k, const gram_array *X,
                                      gram_array *out);

/* ------------------------------------------------------------------------------------------ */
/* Kernel density estimation                                                                   */
/* ------------------------------------------------------------------------------------------ */

/*
 * A fitted KDE: data X (N×D) with optional non-negative weights (normalised to sum 1),
 *
 *     f(y) = Σ_j w_j · k_H(y - x_j),   k_H(u) = k(H^{-1/2} u) / (|H|^{1/2} ∫k),
 *
 * with k one of the integrable families (gaussian, tophat, epanechnikov, exponential, triangular,
 * cosine_window, laplacian/matern12, matern32, matern52, cauchy (D = 1)) and H the bandwidth
 * matrix in one of two geometries:
 *   GRAM_KDE_ISOTROPIC   H = diag(h_1², …, h_D²): one h, or one per dimension
 *                        (as scikit-learn's KernelDensity when all h_d are equal);
 *   GRAM_KDE_COVARIANCE  H = factor² · Σ, Σ the weighted data covariance with the unbiased
 *                        correction 1/(1 - Σw²) (as scipy.stats.gaussian_kde).
 * The effective sample size is n_eff = 1 / Σ w_j² (N without weights).
 * Log-densities are computed in log space and stay finite and accurate where every kernel value
 * underflows.
 */
typedef struct gram_kde gram_kde;

typedef enum gram_kde_geometry { GRAM_KDE_ISOTROPIC = 0, GRAM_KDE_COVARIANCE = 1 } gram_kde_geometry;

typedef enum gram_bandwidth_rule {
    GRAM_BW_FIXED = 0,          /* the given value(s): h (isotropic) or the factor (covariance) */
    GRAM_BW_SCOTT,              /* factor n_eff^(-1/(D+4)); isotropic: h_d = σ_d · factor */
    GRAM_BW_SILVERMAN,          /* factor (n_eff (D+2) / 4)^(-1/(D+4)); isotropic: h_d = σ_d · factor */
    GRAM_BW_SCOTT_UNSCALED,     /* h = N^(-1/(D+4)), ignoring the data's scale (scikit-learn's
                                   bandwidth='scott'); isotropic only */
    GRAM_BW_SILVERMAN_UNSCALED, /* h = (N (D+2) / 4)^(-1/(D+4)) (scikit-learn's 'silverman') */
    GRAM_BW_ISJ,                /* Improved Sheather–Jones plug-in (Botev, Grotowski & Kroese 2010);
                                   D = 1. Other kernels get the h with the gaussian's AMISE:
                                   h_K = h_gauss · (R(K) / μ₂(K)²)^(1/5) / (R(φ) / μ₂(φ)²)^(1/5) */
    GRAM_BW_CV_ML,              /* maximises the leave-one-out log-likelihood over one scalar
                                   (h, or the factor) */
    GRAM_BW_CV_LS               /* minimises least-squares cross-validation (gaussian kernel) */
} gram_bandwidth_rule;

typedef struct gram_kde_options {
    gram_family kernel;          /* default GRAM_GAUSSIAN */
    gram_kde_geometry geometry;  /* default GRAM_KDE_ISOTROPIC */
    gram_bandwidth_rule rule;    /* default GRAM_BW_SCOTT */
    int64_t n_bandwidth;         /* GRAM_BW_FIXED: 1, or D per-dimension values (isotropic) */
    const double *bandwidth;
    const double *lower;         /* NULL, or D lower bounds for reflection (-INFINITY: none) */
    const double *upper;         /* NULL, or D upper bounds for reflection (+INFINITY: none) */
    gram_dtype precision;        /* evaluation precision; default GRAM_FLOAT64 */
} gram_kde_options;

/* Fills *opt with the defaults above. */
GRAM_API void gram_kde_options_init(gram_kde_options *opt);

/*
 * Fits: validates X (finite, N ≥ 1; N ≥ 2 for data-driven rules), weights (N×1 or 1×N,
 * non-negative, positive sum; NULL for equal weights), the bounds (every point inside them), and
 * chooses the bandwidth by the rule. X and weights are copied.
 */
GRAM_API gram_status gram_kde_fit(gram_context *ctx, const gram_kde_options *opt,
                                  const gram_array *X, const gram_array *weights, gram_kde **out);
GRAM_API void gram_kde_destroy(gram_kde *kde);

GRAM_API int64_t gram_kde_n(const gram_kde *kde);
GRAM_API int64_t gram_kde_dim(const gram_kde *kde);
GRAM_API double gram_kde_neff(const gram_kde *kde);
/* The factor (covariance geometry) or the scalar h (isotropic with equal h_d; else h_1). */
GRAM_API double gram_kde_factor(const gram_kde *kde);
/* The bandwidth matrix H (D×D, row-major). */
GRAM_API gram_status gram_kde_bandwidth_matrix(const gram_kde *kde, double *H);
/* The per-dimension standard deviations of the kernel, sqrt(H_dd) (D values). */
GRAM_API gram_status gram_kde_bandwidth(const gram_kde *kde, double *h);

/* out[i] = log f(y_i) (or f(y_i)); Y is M×D, out is M×1 or 1×M. Points outside the reflection
 * bounds have density 0 (log-density -inf). */
GRAM_API gram_status gram_kde_logpdf(gram_context *ctx, const gram_kde *kde, const gram_array *Y,
                                     gram_array *out);
GRAM_API gram_status gram_kde_pdf(gram_context *ctx, const gram_kde *kde, const gram_array *Y,
                                  gram_array *out);
/* Leave-one-out log-density at each data point: log f_{-i}(x_i), with f_{-i} the estimate
 * without point i (weights renormalised). out is N×1 or 1×N. */
GRAM_API gram_status gram_kde_logpdf_loo(gram_context *ctx, const gram_kde *kde, gram_array *out);

/* Draws out->rows samples (out is n×D) from the fitted density, for every KDE kernel (gaussian,
 * tophat, epanechnikov, exponential, triangular, cosine_window, laplacian/matern12, matern32,
 * matern52, cauchy), folding samples back inside the bounds when reflection is on. Sample i uses
 * only the random numbers of stream position (seed, i): the same seed gives the same samples for
 * every thread count (and on every platform with the same libm). */
GRAM_API gram_status gram_kde_sample(gram_context *ctx, const gram_kde *kde, uint64_t seed,
                                     gram_array *out);

/* ------------------------------------------------------------------------------------------ */
/* Regression: Gaussian processes and kernel ridge regression                                  */
/* ------------------------------------------------------------------------------------------ */

/*
 * Both models solve dense N×N systems with OpenBLAS (Cholesky, triangular solves), so their cost
 * is O(N³) time and O(N²) memory; predictions use the engine's kernel sums. Targets Y are N×T
 * (T ≥ 1 outputs sharing one kernel). Results of the dense algebra may differ in the last bits
 * between thread counts (OpenBLAS's blocking), unlike the engine's.
 *
 * Gaussian-process regression (Rasmussen & Williams 2006, Algorithm 2.1), as scikit-learn's
 * GaussianProcessRegressor: with K = k(X, X) + diag(alpha),
 *     L = cholesky(K),  α = K⁻¹ y,
 *     log p(y | X, θ) = Σ_t [ -½ y_tᵀ α_t - Σ_i log L_ii - N/2 log 2π ],
 *     ∂/∂θ_p = ½ tr((Σ_t α_t α_tᵀ - T K⁻¹) ∂K/∂θ_p),
 * the gradient accumulated tile by tile from the kernel's analytic derivatives (memory: one N×N
 * matrix besides the data, whatever the number of hyperparameters). With normalize_y the targets
 * are centred and scaled by their standard deviation (ddof 0; 1 where it is 0) before fitting
 * and predictions are mapped back.
 */
typedef struct gram_gp gram_gp;

typedef struct gram_gp_options {
    int64_t n_alpha;       /* 1 (one value for every point) or N (one per point); default 1 */
    const double *alpha;   /* noise variance added to the diagonal, ≥ 0; NULL = 1e-10 */
    int normalize_y;       /* default 0 */
    int optimize;          /* 1: maximise the log marginal likelihood over the kernel's free
                              hyperparameters within their bounds (L-BFGS-B), from the kernel's
                              values and n_restarts starts drawn log-uniformly in the bounds;
                              default 0 (keep the kernel as given) */
    int n_restarts;        /* default 0 */
    uint64_t seed;         /* for the restarts' starting points; default 0 */
    int max_iter;          /* L-BFGS-B iterations per start; default 15000 */
    int jitter_tries;      /* opt-in: when K is not numerically positive definite, retry up to
                              this many times adding j·I, j = 1e-10·mean(diag K)·10^t for
                              t = 0, 1, ... (gram_gp_jitter reports the j used); default 0 */
} gram_gp_options;

/* Fills *opt with the defaults above. */
GRAM_API void gram_gp_options_init(gram_gp_options *opt);

/*
 * Fits a GP to X (N×D, N ≥ 1, finite) and Y (N×T, or N×1; finite). X, Y and the kernel are
 * copied. A matrix that is not numerically positive definite gives GRAM_ENOTPD with the index and
 * value of the failing pivot (and no model); so does one whose pivot L_ii² falls below eps²·K_ii
 * (numerically singular). A kernel that overflows for these finite inputs (a linear or
 * polynomial kernel at |x| ~ 1e155) gives GRAM_EDOMAIN naming the entry, and so does a K⁻¹y or
 * likelihood that overflows (targets too large for K: normalize_y, whose mean and scale are
 * computed without overflow for any finite y, removes that). A model is never returned holding a
 * NaN or an inf. With optimize, each start is first
 * projected into the bounds (a value may lie outside them), a start at which the likelihood is
 * not defined is skipped (gram_gp_start says which), and where none has a defined likelihood the
 * kernel's projected θ is kept and its factorisation's error returned, as scikit-learn ends there.
 * Restarts need every bound finite (GRAM_EINVAL otherwise); a NaN bound counts as none.
 */
GRAM_API gram_status gram_gp_fit(gram_context *ctx, const gram_kernel *kernel,
                                 const gram_gp_options *opt, const gram_array *X,
                                 const gram_array *Y, gram_gp **out);
GRAM_API void gram_gp_destroy(gram_gp *gp);

GRAM_API int64_t gram_gp_n(const gram_gp *gp);
GRAM_API int64_t gram_gp_dim(const gram_gp *gp);
GRAM_API int64_t gram_gp_n_targets(const gram_gp *gp);
/* The fitted kernel (the learned one with optimize); owned by gp. */
GRAM_API const gram_kernel *gram_gp_kernel(const gram_gp *gp);
/* The log marginal likelihood of the fitted kernel (of the normalised targets with normalize_y). */
GRAM_API double gram_gp_log_marginal_likelihood_value(const gram_gp *gp);
/* The jitter added to the diagonal by the jitter schedule (0 if none was needed). */
GRAM_API double gram_gp_jitter(const gram_gp *gp);
/* Optimiser record: the number of L-BFGS-B iterations and likelihood evaluations of all starts. */
GRAM_API int64_t gram_gp_n_iterations(const gram_gp *gp);
GRAM_API int64_t gram_gp_n_evaluations(const gram_gp *gp);

/* How one optimiser start ended (0 to 2 are SciPy's L-BFGS-B status codes; SciPy reports an
 * evaluation limit as 1 too). */
typedef enum gram_gp_start_status {
    GRAM_GP_START_CONVERGED = 0, /* projected gradient or relative reduction test met */
    GRAM_GP_START_MAX_ITER = 1,  /* stopped at max_iter */
    GRAM_GP_START_ABNORMAL = 2,  /* no acceptable step along the search direction */
    GRAM_GP_START_MAX_EVAL = 3,  /* stopped at the evaluation limit */
    GRAM_GP_START_UNDEFINED = 4  /* the likelihood is not defined at the start: skipped */
} gram_gp_start_status;

/* The starts of the last optimisation (0 without optimize, and for a loaded model): start 0 is the
 * kernel's θ, then the restarts in order. */
GRAM_API int64_t gram_gp_n_starts(const gram_gp *gp);
/* Start r's outcome and accepted L-BFGS-B steps; GRAM_EINVAL if r is not in [0, n_starts). */
GRAM_API gram_status gram_gp_start(const gram_gp *gp, int64_t r, gram_gp_start_status *status,
                                   int64_t *iterations);
/* Normalisation of target t: *mean and *scale (0 and 1 without normalize_y). */
GRAM_API gram_status gram_gp_target_scaling(const gram_gp *gp, int64_t t, double *mean,
                                            double *scale);

/* Copies of the fitted state: X (N×D), the (normalised) targets (N×T), α = K⁻¹y (N×T) and the
 * lower Cholesky factor L of K (N×N, zeros above the diagonal). */
GRAM_API gram_status gram_gp_get_x(const gram_gp *gp, gram_array *out);
GRAM_API gram_status gram_gp_get_y(const gram_gp *gp, gram_array *out);
GRAM_API gram_status gram_gp_get_alpha(const gram_gp *gp, gram_array *out);
GRAM_API gram_status gram_gp_get_cholesky(const gram_gp *gp, gram_array *out);

/*
 * The log marginal likelihood of the fitted data at log-hyperparameters theta (gram_kernel_n_hyper
 * of the fitted kernel; NULL = the fitted ones), and its gradient (NULL to skip) in every
 * hyperparameter, fixed ones included. Where the likelihood is not defined at theta (a matrix
 * that is not numerically positive definite, a kernel that overflows, a result that would not be
 * finite, a θ whose exp is not a positive finite double) *lml = -inf and the gradient is zero
 * (GRAM_OK), as scikit-learn's answer for a matrix it cannot factor; a NaN or infinite θ is
 * GRAM_ENONFINITE. Nothing else is returned but finite values.
 */
GRAM_API gram_status gram_gp_log_marginal_likelihood(gram_context *ctx, const gram_gp *gp,
                                                     const double *theta, double *lml,
                                                     double *grad);

/*
 * Posterior at queries Xq (M×D): mean (M×T), std (M×T or NULL; the square root of the diagonal
 * of the posterior covariance, negative variances from rounding clipped to 0) and cov (M×M or
 * NULL: the covariance of target `target`, 0 ≤ target < T). A posterior that comes out inf or NaN
 * (the kernel overflows between a query and the training points) gives GRAM_EDOMAIN, never a
 * non-finite result.
 */
GRAM_API gram_status gram_gp_predict(gram_context *ctx, const gram_gp *gp, const gram_array *Xq,
                                     gram_array *mean, gram_array *std, int64_t target,
                                     gram_array *cov);

/*
 * Draws out->cols samples of target `target` at Xq (M×D) from the posterior (out is M×S): mean +
 * A z, z standard normal from Philox4x32-10 stream (seed), A a square root of the posterior
 * covariance (eigendecomposition, negative eigenvalues from rounding clipped to 0), so the same
 * seed gives the same samples.
 */
GRAM_API gram_status gram_gp_sample(gram_context *ctx, const gram_gp *gp, const gram_array *Xq,
                                    int64_t target, uint64_t seed, gram_array *out);

/*
 * The GP algebra of gram_gp_fit and gram_gp_log_marginal_likelihood on a kernel matrix computed
 * elsewhere, for a kernel gram cannot evaluate (a front end's user-written kernel): with
 * K (N×N, symmetric; its lower triangle is read) + diag(alpha) = L Lᵀ (alpha as in
 * gram_gp_options: n_alpha 1 or N values ≥ 0, NULL for 1e-10) and targets Y (N×T),
 *   *lml (if lml is not NULL)   the log marginal likelihood,
 *   grad (if not NULL; P values) ½ Σ_ij (Σ_t α_t α_tᵀ - T K⁻¹)_ij ∂K_ij/∂θ_p, from dK, the
 *                               (N·N)×P array of ∂K_ij/∂θ_p in row i·N + j (scikit-learn's
 *                               (N, N, P) gradient tensor seen as a matrix), which must be finite,
 *   L (N×N or NULL)             the lower Cholesky factor (zeros above the diagonal),
 *   coef (N×T or NULL)          α = K⁻¹Y.
 * Failures as gram_gp_fit's: GRAM_ENOTPD where K + diag(alpha) is not numerically positive
 * definite (the pivot named), GRAM_EDOMAIN where K has a non-finite entry or the results would
 * not be finite; the caller decides between an error and scikit-learn's -inf. Outputs are
 * written only on success.
 */
GRAM_API gram_status gram_gp_solve(gram_context *ctx, const gram_array *K, int64_t n_alpha,
                                   const double *alpha, const gram_array *Y, const gram_array *dK,
                                   double *lml, double *grad, gram_array *L, gram_array *coef);
/*
 * The posterior from gram_gp_solve's L (N×N, lower triangle read, positive diagonal) and coef
 * (N×T) and kernel values computed elsewhere: Ks = K(Xq, X) (M×N), and kss the prior at the
 * queries, M×1 variances k(x_q, x_q) for std or the M×M matrix K(Xq, Xq) for cov. mean (M×T or
 * NULL) = Ks·coef; std (M×1 or NULL) = sqrt(kss - diag(Ks K⁻¹ Ksᵀ)), negative variances from
 * rounding clipped to 0; cov (M×M or NULL) = K(Xq, Xq) - Ks K⁻¹ Ksᵀ; std and cov not together.
 * Unnormalised (targets as given to gram_gp_solve). A result that comes out inf or NaN gives
 * GRAM_EDOMAIN.
 */
GRAM_API gram_status gram_gp_posterior(gram_context *ctx, const gram_array *L, const gram_array *coef,
                                       const gram_array *Ks, const gram_array *kss, gram_array *mean,
                                       gram_array *std, gram_array *cov);

/* Persistence in a versioned, checksummed file (written to a temporary name and renamed). Loading
 * a file from a newer format version or a corrupted file gives GRAM_EFORMAT, and so does a GP
 * model whose values are inconsistent however valid each looks: L must be lower triangular with
 * each row's squared norm equal to k(x_i, x_i) + alpha_i + jitter and each pivot above the fit's
 * floor, L Lᵀ α = y to the rounding of the solves, and the stored likelihood the one these give
 * (O(N²·T) checks, the order of reading L). to_bytes returns a buffer to release with gram_free. */
GRAM_API gram_status gram_gp_save(gram_context *ctx, const gram_gp *gp, const char *path);
GRAM_API gram_status gram_gp_load(gram_context *ctx, const char *path, gram_gp **out);
GRAM_API gram_status gram_gp_to_bytes(gram_context *ctx, const gram_gp *gp, void **buf,
                                      size_t *size);
GRAM_API gram_status gram_gp_from_bytes(gram_context *ctx, const void *buf, size_t size,
                                        gram_gp **out);

/*
 * Kernel ridge regression, as scikit-learn's KernelRidge: dual coefficients
 *     (K + diag(λ_t / w)) c_t = y_t,   K = k(X, X), w the sample weights (default 1),
 * for each target t (λ ≥ 0: one value, or one per target; sample weights ≥ 0, a zero weight
 * leaving its point out as in scikit-learn), solved by
 * Cholesky; predictions are kernel sums Σ_j k(x, x_j) c_j. A system that is not
 * numerically positive definite gives GRAM_ENOTPD with the failing pivot.
 */
typedef struct gram_krr gram_krr;

GRAM_API gram_status gram_krr_fit(gram_context *ctx, const gram_kernel *kernel,
                                  const gram_array *X, const gram_array *Y,
                                  const gram_array *sample_weight, int64_t n_lambda,
                                  const double *lambda, gram_krr **out);
GRAM_API void gram_krr_destroy(gram_krr *krr);
GRAM_API int64_t gram_krr_n(const gram_krr *krr);
GRAM_API int64_t gram_krr_dim(const gram_krr *krr);
GRAM_API int64_t gram_krr_n_targets(const gram_krr *krr);
GRAM_API const gram_kernel *gram_krr_kernel(const gram_krr *krr);
/* Copies of X (N×D) and the dual coefficients (N×T). */
GRAM_API gram_status gram_krr_get_x(const gram_krr *krr, gram_array *out);
GRAM_API gram_status gram_krr_get_dual_coef(const gram_krr *krr, gram_array *out);
/* out (M×T) = K(Xq, X) · dual_coef. */
GRAM_API gram_status gram_krr_predict(gram_context *ctx, const gram_krr *krr, const gram_array *Xq,
                                      gram_array *out);
GRAM_API gram_status gram_krr_save(gram_context *ctx, const gram_krr *krr, const char *path);
GRAM_API gram_status gram_krr_load(gram_context *ctx, const char *path, gram_krr **out);
GRAM_API gram_status gram_krr_to_bytes(gram_context *ctx, const gram_krr *krr, void **buf,
                                       size_t *size);
GRAM_API gram_status gram_krr_from_bytes(gram_context *ctx, const void *buf, size_t size,
                                         gram_krr **out);

/* The solve of gram_krr_fit for a precomputed kernel matrix K (N×N, symmetric; only its lower
 * triangle is read): out (N×T) = dual coefficients for targets Y (N×T). */
GRAM_API gram_status gram_krr_solve(gram_context *ctx, const gram_array *K, const gram_array *Y,
                                    const gram_array *sample_weight, int64_t n_lambda,
                                    const double *lambda, gram_array *out);

/* Releases a buffer returned by gram (gram_*_to_bytes); NULL is allowed. */
GRAM_API void gram_free(void *p);

/* ------------------------------------------------------------------------------------------ */
/* Feature maps                                                                                */
/* ------------------------------------------------------------------------------------------ */

/*
 * An explicit random feature map φ: R^D → R^R with E[φ(x)·φ(y)] = k(x, y) (docs/features.md
 * gives each estimator's formula, variance and source). A map is made once from a kernel, a
 * method, the dimension D, the number of output features R and a seed; its frequencies are drawn
 * then from Philox4x32-10 streams of the seed (frequency row i, or orthogonal block i, uses stream
 * i), so the same arguments give the same map on every thread count (and every platform with the
 * same libm). Maps are immutable after creation and may be shared between threads.
 *
 * Kernels: one family leaf with its lengthscales (scalar or ARD), optionally times a constant
 * c > 0 ("2.5*rbf(3)", or constant(value=c) * leaf); the features then carry √c. Which families
 * each method covers:
 *   GRAM_FEATURES_RFF, GRAM_FEATURES_RFF_PHASE   gaussian, laplacian/matern12/exponential,
 *                                                matern32, matern52, matern (any ν),
 *                                                rational_quadratic, cauchy, laplacian_l1
 *   GRAM_FEATURES_ORF                            the same but laplacian_l1 (isotropic spectra)
 *   GRAM_FEATURES_SORF                           gaussian
 *   GRAM_FEATURES_POSITIVE*, HYPERBOLIC*         gaussian, softmax (exp(x·y): the same maps
 *                                                with exp(ω·x - |x|²/2), x scaled by 1/ℓ)
 *   GRAM_FEATURES_TENSORSKETCH                   polynomial, linear
 *   GRAM_FEATURES_ARCCOS                         arccos (degrees 0, 1, 2)
 * Anything else (other families, sums, products of two families, powers, a scale ≤ 0, white
 * noise) is GRAM_EINVAL with a message naming the family or the construct and the methods that
 * apply.
 */
typedef struct gram_features gram_features;

typedef enum gram_features_method {
    GRAM_FEATURES_RFF = 0,          /* Rahimi & Recht (2007): m = R/2 i.i.d. frequencies ω from the
                                       kernel's spectral density, φ = √(c/m)·[cos Ωx, sin Ωx]
                                       (the R/2 cosines, then the R/2 sines); R even */
    GRAM_FEATURES_RFF_PHASE = 1,    /* the same with one phase each: φ = √(2c/R)·cos(Ωx + b),
                                       b ~ U[0, 2π), R frequencies; higher variance than RFF */
    GRAM_FEATURES_ORF = 2,          /* Yu et al. (2016): as RFF with the frequencies in blocks of D
                                       orthogonal directions, each with its own norm from the
                                       spectrum's radial law; unbiased, lower variance; R even */
    GRAM_FEATURES_SORF = 3,         /* Yu et al. (2016): ω rows of √D'·H·S1·H·S2·H·S3 (H the
                                       normalised Walsh–Hadamard matrix of order D' = D rounded up to
                                       a power of two, S_i random ±1 diagonals), O(R log D) per point;
                                       gaussian; slightly biased (row norms √D' exactly); R even */
    GRAM_FEATURES_POSITIVE = 4,     /* Choromanski et al. (2021), FAVOR+: φ_i = √(c/R)·
                                       exp(ω_i·x - |x|²), x scaled by 1/ℓ, ω ~ N(0, I): every
                                       feature > 0, low relative error where k is small */
    GRAM_FEATURES_POSITIVE_ORF = 5, /* the same with orthogonal ω (blocks of D, χ_D norms) */
    GRAM_FEATURES_HYPERBOLIC = 6,   /* Choromanski et al. (2021): φ = √(c/R)·[exp(Ωx - |x|²),
                                       exp(-Ωx - |x|²)], R/2 frequencies; R even */
    GRAM_FEATURES_HYPERBOLIC_ORF = 7,
    GRAM_FEATURES_TENSORSKETCH = 8, /* Pham & Pagh (2013): for (γ s + c0)^p (polynomial; linear is
                                       p = 1, γ = 1, c0 = σ0²), φ = √c·IFFT(Π_k FFT(CS_k(x'))),
                                       CS_k count sketches of x' = [√γ·x/ℓ, √c0] with independent
                                       hashes and signs; unbiased; R a power of two (the FFT) */
    GRAM_FEATURES_ARCCOS = 9,       /* Cho & Saul (2009): for the arc-cosine kernel of degree n,
                                       φ_i = √(2c/R)·Θ(ω_i·x)(ω_i·x)^n, ω ~ N(0, I), x scaled by
                                       1/ℓ, Θ(0) = 1/2 (n = 0 at x = 0: gram.h's arccos); R any */
    GRAM_FEATURES_NYSTROM = 10      /* data-dependent: made by gram_features_nystrom only */
} gram_features_method;

/*
 * Makes a map for D-dimensional inputs (D ≥ 1; a kernel with ARD lengthscales must have D of
 * them) with R ≥ 1 output features (even for the methods with pairs). The kernel is copied. Sizes
 * whose frequency table (R·D values) overflows give GRAM_EOVERFLOW; a table the system cannot hold
 * GRAM_ENOMEM. A frequency ω_d/ℓ_d that overflows a double (ℓ near the smallest double) gives
 * GRAM_EDOMAIN; one that overflows only a float makes float32 inputs GRAM_EDOMAIN in
 * gram_features_transform (pass float64 data).
 */
GRAM_API gram_status gram_features_create(gram_context *ctx, const gram_kernel *k, int64_t D,
                                          gram_features_method method, int64_t R, uint64_t seed,
                                          gram_features **out);
GRAM_API void gram_features_destroy(gram_features *f);

GRAM_API int64_t gram_features_n_components(const gram_features *f); /* R */
GRAM_API int64_t gram_features_dim(const gram_features *f);          /* D */
GRAM_API gram_features_method gram_features_method_of(const gram_features *f);
GRAM_API uint64_t gram_features_seed(const gram_features *f);
/* The map's kernel (owned by f). */
GRAM_API const gram_kernel *gram_features_kernel(const gram_features *f);

/*
 * out (N×R) = φ(X) for X (N×D, float64 or float32, finite: GRAM_ENONFINITE names the first
 * non-finite entry); out float64 or float32, not overlapping X. Computed in X's dtype: the
 * projection Ωx by BLAS (dgemm/sgemm; SORF by fast Walsh–Hadamard transforms and TensorSketch by
 * FFTs, both in float64) over fixed blocks
 * of rows, then the elementwise map; memory beyond X and out is O(B·R) per thread for a block of
 * B rows. Results are bit-identical for every thread count. The progress callback sees blocks of
 * rows; cancelling leaves out partly written. Positive and hyperbolic features are exponentials
 * and can overflow where |Ωx| is large (|x|/ℓ large, D in the hundreds in float32): such a call
 * gives GRAM_EDOMAIN naming the row, never an inf. Trigonometric features lose accuracy as |ω·x|
 * grows (the absolute error of ω·x is about eps·|ω|·|x|): centre data far from the origin
 * first, which these shift-invariant kernels allow.
 */
GRAM_API gram_status gram_features_transform(gram_context *ctx, const gram_features *f,
                                             const gram_array *X, gram_array *out);

/* The frequencies of an RFF, RFF_PHASE, ORF, POSITIVE(_ORF), HYPERBOLIC(_ORF) or ARCCOS map:
 * omega (F×D, F = R/2 for the paired methods, else R; NULL to skip) gets ω_i already divided by
 * the lengthscales (the projection is Ω x of the raw point), phase (F values, NULL to skip; RFF_PHASE
 * only) the phases b_i. GRAM_EINVAL for the other methods, GRAM_ESHAPE for a wrong omega shape. */
GRAM_API gram_status gram_features_frequencies(const gram_features *f, gram_array *omega, double *phase);
GRAM_API int64_t gram_features_n_frequencies(const gram_features *f); /* F (0: none stored) */
/* A TENSORSKETCH map's count sketches: p = degree, p × (D + 1) hashes in [0, R) and signs ±1,
 * row k for the k-th sketch, column D the appended constant coordinate √c0 (NULL to skip).
 * GRAM_EINVAL for the other methods. */
GRAM_API int gram_features_sketch_degree(const gram_features *f);
GRAM_API gram_status gram_features_sketch(const gram_features *f, int32_t *hash, int8_t *sign);

/* ---- Nyström features (src/features/nystrom.c) ---- */
typedef enum gram_landmarks {
    GRAM_LANDMARKS_UNIFORM = 0,  /* R distinct rows of X, uniformly without replacement */
    GRAM_LANDMARKS_KMEANSPP = 1, /* kernel k-means++ seeding (Oglic & Gärtner 2017): the first
                                    uniform, each next ∝ its squared feature-space distance
                                    k(x,x) + k(c,c) - 2k(x,c) to the nearest landmark c; copies of
                                    a landmark are not taken while another point remains */
    GRAM_LANDMARKS_LEVERAGE = 2  /* approximate ridge leverage scores by recursive sampling (Musco
                                    & Musco 2017, Algorithm 3), ridge λ = the spectrum's tail
                                    beyond its top ⌈R/(4 ln R)⌉ eigenvalues over that count */
} gram_landmarks;

/* A Nyström map from R landmarks L chosen among the rows of X (N×D, float64 or float32, finite;
 * 1 ≤ R ≤ N, else GRAM_EINVAL naming both) for any gram kernel (sums, products, powers
 * included; every value from the engine):
 *     φ(x) = K(x, L)·P,  P = U_k Λ_k^(-1/2) U_kᵀ  (R×R, symmetric)
 * for the eigenpairs of K(L, L) with eigenvalue > R·eps·λ_max (eps = 2^-52): smaller ones are
 * indistinguishable from 0 after rounding, and the directions of negative eigenvalues (a kernel
 * that is not positive definite, such as sigmoid) are dropped too, so that
 * φ(x)·φ(y) = K(x, L) K(L, L)⁺ K(L, y) for the positive part of K(L, L). The output has R
 * columns always (scikit-learn's Nystroem). K(L, L) is a symmetric call (white noise on its
 * diagonal); K(x, L) in gram_features_transform a cross call. A K(L, L) with no positive
 * eigenvalue is GRAM_EDOMAIN. The landmarks are a function of (X, kernel, R, how, seed) alone,
 * whatever the thread count (docs/features.md gives each method's algorithm and cost); P is too
 * for R < 768, and from there on LAPACK's threads may change its last bits. R = N takes every row.
 * Duplicate rows of X: UNIFORM and LEVERAGE may take several copies (their directions are then
 * dropped), KMEANSPP does not while another point remains. Progress: the landmark choice's steps
 * (cancelling gives GRAM_ECANCELLED and no map). gram_features_transform then applies the map
 * (method GRAM_FEATURES_NYSTROM): K(x, L) by the engine in X's dtype, then the product by P in
 * float64, in chunks of rows; bit-identical for every thread count. */
GRAM_API gram_status gram_features_nystrom(gram_context *ctx, const gram_kernel *k,
                                           const gram_array *X, int64_t R, gram_landmarks how,
                                           uint64_t seed, gram_features **out);
/* A Nyström map's parts, as scikit-learn's Nystroem: indices (R values, or NULL) of the landmarks
 * in X, components (R×D, or NULL) the landmarks, normalization (R×R, or NULL) the matrix N above
 * (transform = K(X, components)·normalizationᵀ). GRAM_EINVAL for a map of another method. */
GRAM_API gram_status gram_features_nystrom_parts(const gram_features *f, int64_t *indices,
                                                 gram_array *components, gram_array *normalization);
GRAM_API gram_landmarks gram_features_landmarks_of(const gram_features *f);

/* ---- Map files (src/features/serial.c): versioned and checksummed, as the model files ---- */
/* A map file is gram's model file (kind "features"; docs/regression.md, "Map files") holding the
 * map's kernel spec, method, D, R, seed and its tables as drawn (frequencies, phases, signs,
 * hashes, Nyström's landmarks and normalization), so a loaded map transforms bit for bit as the
 * saved one on the same machine, and is the same map on a platform with another libm (the tables
 * are not redrawn). save writes path through a temporary name renamed over it (a device or FIFO
 * written through; "-" standard output); to_bytes gives a buffer to release with gram_free. load
 * and from_bytes check the file as untrusted input: a damaged, truncated, lying or foreign file
 * (a model of another kind, a method that does not cover the stored kernel, a table of the wrong
 * shape, a non-finite value, a hash outside [0, R), a sign other than ±1) is GRAM_EFORMAT with a
 * message naming the file and what is wrong, with every size checked against the bytes present
 * before anything is allocated; a file that cannot be read is GRAM_EIO. */
GRAM_API gram_status gram_features_save(gram_context *ctx, const gram_features *f, const char *path);
GRAM_API gram_status gram_features_load(gram_context *ctx, const char *path, gram_features **out);
GRAM_API gram_status gram_features_to_bytes(gram_context *ctx, const gram_features *f, void **buf,
                                            size_t *size);
GRAM_API gram_status gram_features_from_bytes(gram_context *ctx, const void *buf, size_t size,
                                              gram_features **out);

/* ---- Approximate kernel sums through features (src/features/approx.c) ----
 * out (M×V) ≈ Σ_j k(y_i, x_j) W[j,:] computed as φ(Y)·(Φ(X)ᵀW) in O((N + M)·R·(D + V)) work and,
 * beyond Φ(X)ᵀW (R×V), one chunk of max(2^18, 256·R) features per thread (never N×R). Y (M×D; NULL:
 * Y = X) and X (N×D) of one dtype; W (N×V; NULL: all ones) and out (M×V) of either; Φ(X)ᵀW and
 * out are accumulated in float64. Every method, Nyström included; bit-identical for every thread
 * count. err (NULL or V values): err[v] = ‖out[S,v] − exact[S,v]‖ / ‖exact[S,v]‖ over a sample S
 * of min(M, 64) queries drawn from the map's seed, the exact sums by gram_kernel_sum, so it sees
 * SORF's and Nyström's bias as well as variance (the true error when M ≤ 64; within a factor 1.5
 * of the error over all queries in about 97% of calls in the tests, docs/features.md). Errors as
 * gram_kernel_sum's, and GRAM_EDOMAIN naming the row of Y or X whose features are not finite. */
GRAM_API gram_status gram_features_sum(gram_context *ctx, const gram_features *f,
                                       const gram_array *Y, const gram_array *X,
                                       const gram_array *W, gram_array *out, double *err);

/* ---- Kernel attention (src/attention/; docs/attention.md) ----
 * out_i = Σ_j w_ij v_j / Σ_j w_ij, w_ij = k(q_i, k_j)·exp(b_(j−i)) (b = 0 without rpe), for
 * queries Q (L×d), keys K (S×d), values V (S×dv); out L×dv. Q and K share a dtype (float64 or
 * float32); V and out may have either. The kernel must be non-negative (gram_kernel_is_nonnegative;
 * GRAM_EDOMAIN otherwise). Q, K, V and rpe must be finite (GRAM_ENONFINITE naming the entry).
 *
 * EXACT runs the engine's attention reduction: each tile's log-values (log k = q·k/√d for
 * softmax, exactly), plus b, minus the row's running maximum, exponentiated and summed against
 * [V, 1] in one pass, partials merged in a fixed order: bit-identical for every thread count, no
 * overflow or underflow for logits of any finite size (±1e4 included). float64: within 1e-12 of
 * Σ_j w_ij |v_j| / Σ_j w_ij (the weighted mean of |v|) of the exact result; float32 inputs are
 * computed in float32 (log-values and exp) and accumulated in float64: within ~1e-6 of that scale
 * times the size of the logits (1e-5 measured bound for |logits| ≲ 10). Memory O((L + S)·(d + dv)).
 * A row whose weights are all exactly 0 (a compactly supported kernel with every key out of
 * reach; no keys, S = 0) has no average: its out row is set to 0 and the call returns
 * GRAM_EDOMAIN naming the first such row (the other rows are computed). So does a row whose
 * kernel values or weighted sum overflow a double.
 *
 * FAVOR is FAVOR+ (Choromanski et al. 2021) for the softmax and gaussian kernels (optionally times
 * a constant; others GRAM_EINVAL): the positive orthogonal random features of
 * gram_features_create(k, d, GRAM_FEATURES_POSITIVE_ORF, R, seed), out = D⁻¹ Φ_Q (Φ_Kᵀ [V, 1]), the
 * features stabilised by each query's and the keys' shared maximum (the ratio is unchanged).
 * Computed in float64 for both dtypes (its error, the estimator's ~1/√R, dwarfs float32's rounding).
 * Non-causal: streamed, memory O(R·dv) beyond blocks. Causal: prefix sums over steps of 64
 * positions, memory O(R·dv), work O(L·R·dv), serial over the steps. With rpe: Toeplitz products by
 * FFT (Luo et al. 2021), work O(R·dv·(L + S) log(L + S)), memory O((L + S)·R). Bit-identical for
 * every thread count. Its estimate of a row's normaliser can underflow (features of very unequal
 * size): GRAM_EDOMAIN naming the row, its out row set to 0. */
typedef enum gram_attention_method {
    GRAM_ATTENTION_EXACT = 0, /* through the engine, log-space safe, O(L·S·(d + dv)) */
    GRAM_ATTENTION_FAVOR = 1  /* positive random features (FAVOR+), O((L + S)·R·(d + dv)) */
} gram_attention_method;

typedef struct gram_attention_options {
    const gram_kernel *kernel; /* NULL: softmax attention, k = exp(q·k/√d) (the softmax family
                                  with lengthscale d^(1/4)) */
    gram_attention_method method;
    int causal;                /* 1: only j ≤ i (needs L == S; GRAM_ESHAPE otherwise); 0 or 1 */
    int64_t n_features;        /* R for FAVOR, 1 ≤ R < 2^31 (0: ⌈d·ln d⌉, at least 16, the order
                                  of Choromanski et al.'s Theorem 4) */
    uint64_t seed;             /* FAVOR's features */
    const double *rpe;         /* NULL, or L + S − 1 relative positional biases b_(j−i) at index
                                  j − i + L − 1 (2S − 1 values, index j − i + S − 1, when L == S):
                                  weights k(q_i, k_j)·exp(b_(j−i)) (Toeplitz; by FFT for FAVOR) */
} gram_attention_options;

/* Fills *opt with the defaults: softmax, EXACT, not causal, n_features 0, seed 0, no rpe. */
GRAM_API void gram_attention_options_init(gram_attention_options *opt);
/* opt NULL means the defaults. The progress callback sees blocks (FAVOR's causal steps); a
 * cancelled call leaves out partly written. */
GRAM_API gram_status gram_attention(gram_context *ctx, const gram_attention_options *opt,
                                    const gram_array *Q, const gram_array *K, const gram_array *V,
                                    gram_array *out);

/* ---- Scalable neural network kernels (src/features/snnk.c) ----
 * Sehanobish, Choromanski, Zhao, Dubey & Likhosherstov, "Scalable Neural Network Kernels" (SNNK),
 * ICLR 2024, arXiv 2310.13225: a feed-forward layer x ↦ f(W x + b) (W n_out × d, row w_j; b n_out
 * values) replaced by out_ij = Φ(x_i)·Ψ(w_j, b_j), input features Φ and parameter features Ψ of R
 * columns each. Ψ is made once, at create; apply() is then one product Φ(X) Ψᵀ per block of rows.
 * The random vectors g_r ~ N(0, I) (row r of G) come from Philox stream r of the seed. Below
 * s = |x|², t = |w|², u_r = g_r·x, v_r = g_r·w; docs/features.md gives each estimator's variance.
 * The activations are those with closed-form SNNK features (the paper's URFs for sin, cos and exp,
 * and its ReLU-SNNK); any other value is GRAM_EINVAL (docs/features.md says why GELU, tanh,
 * sigmoid and softplus are not among them). */
typedef struct gram_snnk gram_snnk;
typedef enum gram_activation {
    GRAM_ACT_SIN = 1,  /* universal random features (URFs) of f = sin, whose Fourier transform is two
                          Dirac masses at ±1/2π (both summed, so the features are real; m = R/2
                          vectors g): Φ = e^(s/2)/√m·[cos u, sin u], Ψ = e^(v - t/2)/√m·[sin b, cos b];
                          E[Φ·Ψ] = sin(w·x + b) */
    GRAM_ACT_COS = 2,  /* the same for cos: Ψ = e^(v - t/2)/√m·[cos b, -sin b]; E = cos(w·x + b) */
    GRAM_ACT_EXP = 3,  /* URFs of f = exp (a real frequency: Performers' positive random features):
                          Φ = e^(u - s/2)/√R, Ψ = e^(b + v - t/2)/√R, all > 0; E = exp(w·x + b) */
    GRAM_ACT_RELU = 5  /* the paper's ReLU-SNNK: Φ = max(G x̃, 0)/√R, Ψ = max(G w̃, 0)/√R with
                          x̃ = [x, 1], w̃ = [w, b] (x̃ = x, w̃ = w when b is NULL). E[Φ·Ψ] is the
                          arc-cosine kernel of degree 1 (Cho & Saul 2009) over 2,
                          |x̃||w̃|(sin θ + (π - θ) cos θ)/2π, θ the angle of x̃ and w̃: the layer of
                          an infinitely wide ReLU network, a smooth stand-in for ReLU(w·x + b)
                          (equal to it at θ = 0 up to the factor 1/2, and at θ = π), not an
                          estimate of it */
} gram_activation;
/* W (n_out × d, float64 or float32, finite), b (n_out finite values, or NULL for none), R ≥ 1
 * features per output (n_components; even for SIN and COS, whose features come in cos/sin pairs).
 * Another activation is GRAM_EINVAL naming the four covered; R·d too large to
 * index GRAM_EOVERFLOW. A parameter feature that overflows a double (e^(v - t/2 + b) with |w| or b
 * too large) is GRAM_EDOMAIN naming the row of W. */
GRAM_API gram_status gram_snnk_create(gram_context *ctx, gram_activation act, const gram_array *W,
                                      const double *b, int64_t R, uint64_t seed, gram_snnk **out);
GRAM_API void gram_snnk_destroy(gram_snnk *layer);
GRAM_API int64_t gram_snnk_n_inputs(const gram_snnk *layer);     /* d */
GRAM_API int64_t gram_snnk_n_outputs(const gram_snnk *layer);    /* n_out */
GRAM_API int64_t gram_snnk_n_components(const gram_snnk *layer); /* R */
GRAM_API gram_activation gram_snnk_activation(const gram_snnk *layer);
GRAM_API uint64_t gram_snnk_seed(const gram_snnk *layer);
/* out (N × n_out, float64 or float32, not overlapping X) ≈ f(X Wᵀ + b) for X (N × d, float64 or
 * float32, finite; GRAM_ENONFINITE names the entry), computed in X's dtype by BLAS over fixed
 * blocks of rows (O(B·(R + n_out)) memory per thread, no N × n_out × R temporary), bit-identical
 * for every thread count. An input feature or an output that is not finite (e^(s/2) of SIN/COS
 * overflows past |x| ≈ 37 in float64 and 13 in float32; EXP's past |g·x| ≈ 709) is GRAM_EDOMAIN
 * naming the row. */
GRAM_API gram_status gram_snnk_apply(gram_context *ctx, const gram_snnk *layer, const gram_array *X,
                                     gram_array *out);
/* The input features Φ(X) (out N × R, computed as in apply) and the parameter features Ψ (out
 * n_out × R, float64 values rounded to out's dtype): apply(X) = Φ(X) Ψᵀ. */
GRAM_API gram_status gram_snnk_input_features(gram_context *ctx, const gram_snnk *layer,
                                              const gram_array *X, gram_array *out);
GRAM_API gram_status gram_snnk_weight_features(gram_context *ctx, const gram_snnk *layer,
                                               gram_array *out);

/* ------------------------------------------------------------------------------------------ */
/* Private similarities (src/private/)                                                         */
/* ------------------------------------------------------------------------------------------ */

/*
 * Differentially private similarity sums (Backurs, Lin, Mahabadi, Silwal & Tarnawski, "Efficiently
 * Computing Similarities to Private Datasets", ICLR 2024, arXiv 2403.08917; docs/private.md).
 * gram_private_fit reads a private data set X (n × d) once and releases a *sketch*: a data
 * structure that answers Σ_{x∈X} f(x, y) (and the average) for any number of later queries y at
 * no further privacy cost. The sketch holds only released (noised) values and public parameters
 * (the similarity, the domain, ε, δ, the seed of the public randomness); never a row of X.
 *
 * Privacy unit: one row of X. Neighbouring data sets differ by one row replaced by any other point
 * of the domain (GRAM_PRIVATE_REPLACE, the default: n is public and released exactly) or by one row
 * added or removed (GRAM_PRIVATE_ADD_REMOVE: n is released with noise, using 10% of ε and none
 * of δ: discrete Laplace noise).
 * δ = 0: pure ε-DP with discrete Laplace noise; δ > 0: (ε, δ)-DP with discrete Gaussian noise.
 * Noise is exact integer noise (Canonne, Kamath & Steinke 2020) added to integer (fixed-point)
 * statistics, drawn from ChaCha20 keyed by getrandom(2), so no floating-point noise leaks the data
 * through its low bits (Mironov 2012).
 *
 * The domain is required: the ball |x|₂ ≤ radius (GRAM_PRIVATE_BALL) or the box |x_j| ≤ radius
 * for every coordinate (GRAM_PRIVATE_BOX). Rows outside it are clipped onto it (scaled onto the
 * sphere, or clamped per coordinate) before anything is computed, and counted
 * (gram_private_sketch_n_clipped; that count is not private and is never saved). A row less than
 * 16 ulps outside the ball (a caller's own rounding when scaling X onto the radius) is clipped
 * but not counted.
 */
typedef struct gram_private_sketch gram_private_sketch;

typedef enum gram_private_similarity {
    GRAM_PRIVATE_GAUSSIAN = 0,    /* f = exp(-|x - y|²/σ²), σ = bandwidth */
    GRAM_PRIVATE_EXPONENTIAL = 1, /* f = exp(-|x - y|/σ) */
    GRAM_PRIVATE_CAUCHY = 2,      /* f = 1/(1 + |x - y|²/σ²), by a sum of exponential kernels */
    GRAM_PRIVATE_L1 = 3,          /* f = |x - y|₁ */
    GRAM_PRIVATE_L2 = 4,          /* f = |x - y|₂, through an embedding of ℓ2 into ℓ1 */
    GRAM_PRIVATE_LPP = 5          /* f = |x - y|_p^p = Σ_j |x_j - y_j|^p, 0 < p ≤ 2 */
} gram_private_similarity;

typedef enum gram_private_mechanism {
    GRAM_PRIVATE_PAPER = 0,    /* the paper's mechanism for the similarity (the default) */
    GRAM_PRIVATE_BASELINE = 1  /* the prior work the paper compares with: for the kernels random
                                  Fourier features in all d dimensions plus Laplace noise (no
                                  dimensionality reduction); for l1 Huang & Roth (SODA 2014) */
} gram_private_mechanism;

typedef enum gram_private_domain { GRAM_PRIVATE_BALL = 0, GRAM_PRIVATE_BOX = 1 } gram_private_domain;
typedef enum gram_private_neighbours {
    GRAM_PRIVATE_REPLACE = 0,
    GRAM_PRIVATE_ADD_REMOVE = 1
} gram_private_neighbours;

typedef struct gram_private_options {
    gram_private_mechanism mechanism;   /* GRAM_PRIVATE_PAPER */
    gram_private_domain domain;         /* GRAM_PRIVATE_BALL */
    double radius;                      /* required: > 0 and finite (0 after init: refused) */
    double bandwidth;                   /* σ of the kernels, > 0 (0 after init: refused for the
                                           kernels; ignored by the distances) */
    double p;                           /* exponent of GRAM_PRIVATE_LPP, 0 < p ≤ 2 (1 after init) */
    gram_private_neighbours neighbours; /* GRAM_PRIVATE_REPLACE */
    int64_t n_components;               /* kernels: random features R (even; 0: 1024); l2: the
                                           number k of ℓ1 projections (0: 64) */
    int64_t reduced_dim;                /* kernels, paper mechanism: Johnson–Lindenstrauss target
                                           dimension (0: min(d, 64); ≥ d: no reduction) */
    int32_t levels;                     /* distances: depth L of each coordinate's tree (2^L
                                           cells; 0: chosen from n and ε, docs/private.md) */
    int32_t n_terms;                    /* cauchy: exponentials in the sum (0: 8) */
    uint64_t seed;                      /* seed of the public randomness (projections,
                                           frequencies); used only when has_seed is set, else
                                           drawn from the operating system */
    int has_seed;
    uint64_t noise_seed;                /* FOR TESTS ONLY: draw the noise from this seed instead of
                                           the operating system. The sketch is then NOT private and
                                           says so (gram_private_info.test_noise) */
    int has_noise_seed;
} gram_private_options;

/* Sets every field to the default named above (radius 0: the caller must set it). */
GRAM_API void gram_private_options_init(gram_private_options *o);

/* Releases a sketch of X (n × d, float64 or float32, finite, n ≥ 1) for similarity f under
 * ε-DP (delta = 0) or (ε, δ)-DP (0 < delta < 1). epsilon must be > 0 and finite; opt is
 * required. Errors (GRAM_EINVAL naming the parameter; GRAM_ESHAPE for an empty X;
 * GRAM_ENONFINITE naming the entry; GRAM_EIO when the operating system gives no randomness)
 * release nothing: *out is NULL and no noise was drawn. */
GRAM_API gram_status gram_private_fit(gram_context *ctx, const gram_array *X, gram_private_similarity f,
                                      double epsilon, double delta, const gram_private_options *opt,
                                      gram_private_sketch **out);
GRAM_API void gram_private_sketch_destroy(gram_private_sketch *s);

/* out[i] (M values, float64, a view of M × 1 or 1 × M) = the private estimate of
 * Σ_{x∈X} f(x, y_i) for Y (M × d, float64 or float32, finite; d must be the sketch's:
 * GRAM_ESHAPE otherwise). Queries are post-processing: they cost no privacy. */
GRAM_API gram_status gram_private_query(gram_context *ctx, const gram_private_sketch *s, const gram_array *Y,
                                        gram_array *out);
/* The same divided by the released n (max(n̂, 1) under add/remove). */
GRAM_API gram_status gram_private_query_mean(gram_context *ctx, const gram_private_sketch *s,
                                             const gram_array *Y, gram_array *out);

/* What a sketch is and what it cost. Strings belong to the sketch. */
typedef struct gram_private_info {
    gram_private_similarity similarity;
    gram_private_mechanism mechanism;
    gram_private_domain domain;
    gram_private_neighbours neighbours;
    double radius, bandwidth, p;
    double epsilon, delta;            /* the privacy this release cost */
    int64_t dim;                      /* d */
    double n;                         /* the released n (exact under replace, noisy otherwise) */
    int64_t n_components, reduced_dim;
    int32_t levels, n_terms;
    uint64_t seed;                    /* of the public randomness */
    const char *noise;                /* "discrete_laplace" or "discrete_gaussian" */
    double noise_scale;               /* Laplace scale b or Gaussian σ, in the released values' units */
    double approx_error;              /* cauchy: max |f - Σ a_j e^(-b_j t)| on the domain; else 0 */
    const char *sensitivity;          /* the sensitivity and how it was derived, in words */
    int test_noise;                   /* 1: the noise came from a fixed seed: NOT private */
} gram_private_info;
GRAM_API gram_status gram_private_sketch_info(const gram_private_sketch *s, gram_private_info *info);
/* Rows of X clipped onto the domain by the fit that made s; -1 for a loaded sketch. */
GRAM_API int64_t gram_private_sketch_n_clipped(const gram_private_sketch *s);

/* Sketch files: the model container (kind "private", docs/private.md), versioned and checksummed.
 * A damaged file, one of another kind or one from a newer format is GRAM_EFORMAT naming the file
 * and the problem; nothing is returned. save writes a temporary file and renames it. */
GRAM_API gram_status gram_private_save(gram_context *ctx, const gram_private_sketch *s, const char *path);
GRAM_API gram_status gram_private_load(gram_context *ctx, const char *path, gram_private_sketch **out);
GRAM_API gram_status gram_private_to_bytes(gram_context *ctx, const gram_private_sketch *s, void **buf,
                                           size_t *size);
GRAM_API gram_status gram_private_from_bytes(gram_context *ctx, const void *buf, size_t size,
                                             gram_private_sketch **out);

/* A privacy accountant: the total cost of several releases about the same people, by basic
 * composition (ε and δ add). A sketch fitted on the whole data set is added with partition = -1.
 * Sketches fitted on the parts of one disjoint partition of the rows (e.g. one per class) are
 * added with the same partition id ≥ 0 and their part; they must use GRAM_PRIVATE_ADD_REMOVE
 * (GRAM_EINVAL otherwise: a replaced row may move to another part). Because a replaced row leaves
 * one part and joins another, a partition costs the sum of its two most expensive parts. Under
 * replace-one neighbours a whole-data sketch with add/remove neighbours costs 2ε, 2δ. */
typedef struct gram_privacy_accountant gram_privacy_accountant;
GRAM_API gram_status gram_privacy_accountant_create(gram_context *ctx, gram_privacy_accountant **out);
GRAM_API void gram_privacy_accountant_destroy(gram_privacy_accountant *a);
GRAM_API gram_status gram_privacy_accountant_add(gram_context *ctx, gram_privacy_accountant *a,
                                                 const gram_private_sketch *s, int64_t partition,
                                                 int64_t part);
GRAM_API gram_status gram_privacy_accountant_total(const gram_privacy_accountant *a, double *epsilon,
                                                   double *delta);
GRAM_API int64_t gram_privacy_accountant_count(const gram_privacy_accountant *a); /* sketches added */
/* Sketches added whose noise came from a test seed (gram_private_info.test_noise): their releases
 * are counted in the total like any other, but they were NOT private; a caller reporting the total
 * must say so when this is > 0. */
GRAM_API int64_t gram_privacy_accountant_count_test_noise(const gram_privacy_accountant *a);

/* ------------------------------------------------------------------------------------------ */
/* Approximate kernel sums with a tolerance (src/approx/)                                      */
/* ------------------------------------------------------------------------------------------ */

/*
 * out[i,v] ≈ Σ_j k(y_i, x_j) W[j,v] with, for every query i and column v,
 *     |out[i,v] - exact[i,v]| ≤ atol + rtol·|exact[i,v]|
 * (scikit-learn's KernelDensity convention), guaranteed by deterministic bounds (exact, tree) or,
 * for randomized methods (sampling), with probability ≥ 1 - delta per query. Shapes and dtypes as
 * gram_kernel_sum. err (M × V float64, or NULL) receives the bound each value carries (0 for
 * exact); info (or NULL) says which method ran. docs/approx.md gives each method's bound.
 */
typedef enum gram_approx_method {
    GRAM_APPROX_AUTO = 0,     /* the cheapest method whose bound meets the tolerance (docs/approx.md) */
    GRAM_APPROX_EXACT = 1,    /* gram_kernel_sum */
    GRAM_APPROX_TREE = 2,     /* kd-trees over X and Y with node bounds on the kernel, leaves by the
                                 engine: monotone radial kernels (value non-increasing in distance) */
    GRAM_APPROX_SAMPLING = 3, /* uniform sampling of X with empirical-Bernstein confidence bounds,
                                 adaptive sample size, failure probability delta per query; with
                                 DEANN's split (near_neighbours) the points nearest each query are
                                 summed exactly and only the rest sampled */
    GRAM_APPROX_GRID = 4,     /* gaussian kernels, D ≤ 6: X binned onto a regular grid by
                                 high-order interpolation, the grid convolved with the kernel,
                                 queries interpolated; an a priori bound from the orders and the
                                 spacing, queries it cannot certify summed exactly */
    GRAM_APPROX_FGT = 5,      /* the improved fast Gauss transform (gaussian kernels): clusters of X,
                                 truncated Taylor series about their centres, a priori bound */
    GRAM_APPROX_FEATURES = 6  /* random Fourier features of a shift-invariant kernel, an
                                 empirical-Bernstein bound over the independent features,
                                 failure probability delta per query */
} gram_approx_method;

typedef struct gram_approx_options {
    double rtol;              /* ≥ 0 (0 after init) */
    double atol;              /* ≥ 0 (0 after init); rtol = atol = 0 means exact */
    gram_approx_method method;/* GRAM_APPROX_AUTO */
    double delta;             /* randomized methods' failure probability per query, in (0, 1) (1e-3) */
    uint64_t seed;            /* randomized methods' seed (0) */
    int64_t leaf_size;        /* tree: points per leaf (0: the method's default) */
    int64_t near_neighbours;  /* sampling: points per query summed exactly before the rest is
                                 sampled (DEANN's split); 0: the method's choice, -1: none */
    int64_t components;       /* features: random features (0: the method's choice) */
    int order;                /* grid: interpolation points per dimension; fgt: Taylor order
                                 (0: the method's choice from the tolerance) */
} gram_approx_options;

typedef struct gram_approx_info {
    gram_approx_method method; /* the method that ran (never AUTO) */
    double delta;              /* the failure probability of the bounds in err (0: deterministic) */
    int64_t kernel_evaluations;/* pairs the method evaluated (exact: M·N) */
} gram_approx_info;

GRAM_API void gram_approx_options_init(gram_approx_options *o);

/* rtol or atol < 0 or NaN, delta outside (0, 1), a method that cannot meet the tolerance for this
 * kernel (GRAM_EINVAL naming why and which methods can) each fail before any work. */
GRAM_API gram_status gram_kernel_sum_approx(gram_context *ctx, const gram_kernel *k, const gram_array *Y,
                                            const gram_array *X, const gram_array *W,
                                            const gram_approx_options *opt, gram_array *out, gram_array *err,
                                            gram_approx_info *info);

/* The logarithm of gram_kernel_sum_approx's sums, for sums that may underflow (densities in many
 * dimensions, small bandwidths): out[i,v] = log of a sum that meets the same tolerance on the
 * linear scale, |exp(out) − exact| ≤ atol + rtol·exact, and err (or NULL) bounds |exp(out) − exact|
 * as gram_kernel_sum_approx's does. A row whose approximate sum of any column is below 2^52 times
 * the smallest normal number of out's dtype (underflowing, 0, or an estimate ≤ 0) is summed exactly
 * by gram_kernel_logsum instead: finite wherever the true sum is positive, err 0 there, its pairs
 * counted in info. The kernel must be non-negative and W ≥ 0 (GRAM_EDOMAIN, as gram_kernel_logsum);
 * otherwise arguments and errors as gram_kernel_sum_approx. */
GRAM_API gram_status gram_kernel_logsum_approx(gram_context *ctx, const gram_kernel *k, const gram_array *Y,
                                               const gram_array *X, const gram_array *W,
                                               const gram_approx_options *opt, gram_array *out, gram_array *err,
                                               gram_approx_info *info);

/*
 * High-dimensional KDE diagnostics (Biroli & Mézard, "Kernel density estimators in large
 * dimensions"; docs/approx.md). out[i] = (Σ_j k_ij w_j)² / Σ_j (k_ij w_j)², the participation ratio:
 * the effective number of data points that carry query i's sum (1: one point dominates; N: all
 * count equally). k must be non-negative and W (N values or NULL) ≥ 0.
 */
GRAM_API gram_status gram_kernel_sum_participation(gram_context *ctx, const gram_kernel *k,
                                                   const gram_array *Y, const gram_array *X, const double *w,
                                                   gram_array *out);

typedef enum gram_kde_regime {
    GRAM_KDE_REGIME_CLT = 0,      /* many points carry every sum: the estimate concentrates */
    GRAM_KDE_REGIME_HEAVY = 1,    /* heavy-tailed: sums carried by a growing but sub-linear set */
    GRAM_KDE_REGIME_EXTREME = 2   /* extreme-value: a few points dominate; the KDE is unreliable */
} gram_kde_regime;
/* For Gaussian data in D dimensions with N points (α = ln N / D) and a Gaussian kernel
 * exp(-|x - y|²/2h²) of bandwidth h (in units of the data's standard deviation): the thresholds
 * h_CLT(α) and h_G(α) and the regime h lies in (CLT for h ≥ h_CLT, heavy for h_G ≤ h < h_CLT,
 * extreme below h_G). h_G solves s(1/h²) = α and h_CLT solves s(2/h²) = α, with
 * s(t) = ½[ln(1 + t) − t/(1 + t)²] (docs/approx.md, "Diagnostics", derives it), so h_CLT = √2·h_G.
 * h_clt, h_g, regime may each be NULL. N < 2, D < 1, h ≤ 0 or any of them NaN or infinite:
 * GRAM_EINVAL (no context, so no message). */
GRAM_API gram_status gram_kde_regime_of(double N, double D, double h, double *h_clt, double *h_g,
                                        gram_kde_regime *regime);

/* gram_kde_pdf (log_out 0) or gram_kde_logpdf (log_out 1) with a tolerance on the density f, as
 * scikit-learn's KernelDensity: |f̂(y_i) − f(y_i)| ≤ atol + rtol·f(y_i) for every query (with
 * probability ≥ 1 − delta for sampling), through gram_kernel_sum_approx on the KDE's sums (rtol as
 * given, atol times the kernel's normaliser). Queries whose estimated sum is below the underflow
 * threshold are redone exactly in log space. opt NULL: the defaults (exact). info (or NULL): the
 * method of the first block of queries (2^20/D per block), the largest delta, the pairs evaluated
 * over all blocks. Errors as gram_kde_logpdf and gram_kernel_sum_approx. */
GRAM_API gram_status gram_kde_eval_approx(gram_context *ctx, const gram_kde *kde, const gram_array *Y,
                                          const gram_approx_options *opt, int log_out, gram_array *out,
                                          gram_approx_info *info);

#ifdef __cplusplus
}
#endif

#endif /* GRAM_H */
