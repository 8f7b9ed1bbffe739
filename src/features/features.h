/* features: explicit random feature maps φ with k(x, y) ≈ φ(x)·φ(y). Internal.
 *
 * A map is its frequencies: F rows ω_i (already divided by the lengthscales, so the projection
 * is Ω x of the raw point), or for SORF the ±1 diagonals of its Hadamard blocks. transform.c
 * projects blocks of rows (BLAS, or the Walsh–Hadamard chain) and applies the elementwise map. */
#ifndef GRAM_FEATURES_H
#define GRAM_FEATURES_H

#include "../kernel/kernel.h"

/* What the projection is followed by. */
typedef enum gram__fmap {
    GRAM__FMAP_PAIRS = 0, /* cos, sin of each frequency */
    GRAM__FMAP_PHASE,     /* cos(ω·x + b) */
    GRAM__FMAP_POSITIVE,  /* exp(ω·x - |x|²) */
    GRAM__FMAP_HYPERBOLIC, /* exp(±ω·x - |x|²) */
    GRAM__FMAP_LINEAR,     /* the projection itself (TensorSketch's) */
    GRAM__FMAP_ARCCOS      /* Θ(ω·x)(ω·x)^n, Θ(0) = 1/2 */
} gram__fmap;

/* How the frequencies are drawn. */
typedef enum gram__fdraw { GRAM__FDRAW_IID = 0, GRAM__FDRAW_ORTHOGONAL, GRAM__FDRAW_HADAMARD, GRAM__FDRAW_SKETCH } gram__fdraw;

struct gram_features {
    gram_features_method method;
    gram__fmap map;
    gram__fdraw draw;
    int64_t D, R, F;     /* input dimension, output features, frequencies (R or R/2) */
    uint64_t seed;
    gram_kernel *kernel; /* a copy of the caller's */
    const gram__leaf *leaf; /* the kernel's one family leaf (inside kernel) */
    double c;            /* the kernel's constant factor */
    double amp;          /* every feature's factor: √(c/F) (pairs), √(2c/R) (phase), √(c/R) */
    double *inv_ls;      /* D values: 1/ℓ_d */
    double *omega;       /* F×D, row-major (not SORF) */
    float *omega32;      /* the same rounded to float32, for float32 inputs */
    int omega32_finite;  /* 0 when some ω overflows float32: float32 inputs are then refused */
    double *phase;       /* F values (phase map) */
    int64_t Dp, n_blocks; /* SORF: D rounded up to a power of two; blocks of Dp frequencies */
    signed char *signs;  /* SORF: n_blocks × 3 × Dp values ±1 (S1, S2, S3 of each block);
                            TensorSketch: p × (D + 1) signs of its count sketches */
    int ts_p;            /* TensorSketch: the degree p, its hashes (p × (D + 1) values in [0, R)), */
    int32_t *ts_hash;
    double ts_scale, ts_const; /* √γ (times 1/ℓ_d per coordinate) and √c0, the appended coordinate */
    double *twiddle;     /* R/2 pairs (cos, -sin)(2πk/R) for its FFTs */
    int arccos_n;        /* ARCCOS: the degree n of Θ(ω·x)(ω·x)^n */
    /* NYSTROM (nystrom.c): the landmarks and the normalization; φ(x) = K(x, L)·projᵀ */
    gram_landmarks landmarks_how;
    int64_t *landmark_idx; /* R row indices into the X the map was made from */
    double *landmarks;     /* R×D, row-major (float64 whatever X's dtype) */
    double *proj;          /* R×R, row-major: scikit-learn's normalization_ */
    double eig_tol;        /* eigenvalues of K(L, L) at or below eig_tol·λ_max were dropped */
    int64_t rank;          /* how many were kept */
};

/* trig.c's vector loops are built for AVX-512, AVX2 and baseline x86-64 and chosen at load time;
 * with no FMA contracted (ISO C mode) the three give the same bits. (TensorSketch's FFT measured
 * 1.8× slower as clones than as baseline SSE2 code, so it is not cloned.) */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define GRAM__CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define GRAM__CLONES
#endif

/* sample.c: fills f->omega (and f->phase, f->signs) for the validated f. */
gram_status gram__features_draw(gram_context *ctx, gram_features *f);

/* trig.c: c[j] = amp·cos(x[j]) and (s not NULL) s[j] = amp·sin(x[j]) for j < n, within a few
 * ulps of amp; returns 1 if some x[j] is not finite (its outputs are then NaN). */
int gram__sincos_f64(int64_t n, const double *x, double amp, double *c, double *s);
int gram__sincos_f32(int64_t n, const float *x, float amp, float *c, float *s);

/* tensorsketch.c: the sketch tables and the FFT's twiddles; φ of n ≤ GRAM__TS_W scaled points x'
 * (n × (D + 1) values) into out (n × R values, before the factor √c), with work 4R·GRAM__TS_W
 * doubles of scratch. */
#define GRAM__TS_W 8
gram_status gram__tensorsketch_draw(gram_context *ctx, gram_features *f);
void gram__tensorsketch_rows(const gram_features *f, const double *xs, int64_t n, double *work, double *out);

/* nystrom.c: out = φ(X) for a NYSTROM map, X and out validated by gram_features_transform. */
gram_status gram__nystrom_transform(gram_context *ctx, const gram_features *f, const gram_array *X, gram_array *out);

/* transform.c: the row-block machinery shared by the feature transforms and the SNNK layers.
 * gram__check_out_distinct refuses an out whose elements overlap (blocks of rows are written by
 * different threads). gram__run_row_blocks runs fn on fixed blocks of B rows of N (the blocks
 * never depend on the thread count) over gram's team, each thread with its own `per` bytes of
 * scratch (64-byte aligned parts are the caller's business), BLAS single-threaded inside; fn
 * returns the first row of its block whose output is not finite, or -1, and *bad gets the
 * smallest such row (-1: none). Progress per block; GRAM_ENOMEM (naming `what`) or
 * GRAM_ECANCELLED, else GRAM_OK. */
typedef int64_t (*gram__rows_fn)(const void *arg, char *scratch, int64_t i0, int64_t n);
gram_status gram__check_out_distinct(gram_context *ctx, const gram_array *out);
gram_status gram__run_row_blocks(gram_context *ctx, int64_t N, int64_t B, size_t per, const char *what,
                                 gram__rows_fn fn, const void *arg, int64_t *bad);

/* In-place unnormalised fast Walsh–Hadamard transform of n = 2^k values (Sylvester ordering). */
void gram__fwht(double *v, int64_t n);

/* features.c: whether RFF maps cover k (c * family with c > 0 and a family with a spectral density),
 * without a context: for approx's features method (src/approx/rff.c); *why (static text, or NULL)
 * names the reason when not. */
int gram__features_rff_covers(const gram_kernel *k, const char **why);

#endif
