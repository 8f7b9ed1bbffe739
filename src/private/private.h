/* private: differentially private similarity sketches (internal to libgram; public API in
 * include/gram.h, "Private similarities"; docs/private.md).
 *
 * Layers, one file each:
 *   csprng.c   ChaCha20 (RFC 8439) keyed from getrandom(2), or from a test seed
 *   noise.c    exact discrete Laplace and discrete Gaussian samplers (Canonne, Kamath & Steinke
 *              2020) on integers; calibration; gram__release (integer statistic → released doubles)
 *   kernels.c  gaussian / exponential / cauchy sketches (random features, JL, sum of exponentials)
 *   distances.c l1 / l2 / lpp sketches (per-coordinate private trees; ℓ2 → ℓ1 embedding; HR14)
 *   private.c  public API: options, clipping, dispatch, info, accountant
 *   serial.c   sketch files (the model container, kind "private")
 *
 * Every family computes an exact integer statistic (counts, or a fixed-point sum) with a proven
 * sensitivity, hands it to gram__release, and keeps only what comes back. */
#ifndef GRAM_PRIVATE_H
#define GRAM_PRIVATE_H

#include "gram.h"
#include "../base/base.h"

#include <stdint.h>

/* ---- csprng.c ---------------------------------------------------------------------------- */
typedef struct gram__csprng {
    uint32_t key[8];
    uint32_t nonce[3];
    uint32_t counter;      /* block counter; a new nonce word is taken when it wraps */
    uint32_t block[16];    /* the current keystream block */
    int used;              /* words of block already returned (16: none left) */
    int seeded;            /* 1: keyed from a test seed (not private) */
} gram__csprng;

/* Keys r from 32 bytes of getrandom(2) (blocking until the kernel's pool is initialised; EINTR
 * retried). GRAM_EIO with a message if the operating system gives no randomness. */
gram_status gram__csprng_init_os(gram_context *ctx, gram__csprng *r);
/* Keys r from a 64-bit seed (tests only; r->seeded = 1). */
void gram__csprng_init_seed(gram__csprng *r, uint64_t seed);
uint32_t gram__csprng_u32(gram__csprng *r);
uint64_t gram__csprng_u64(gram__csprng *r);
/* Uniform on {0, ..., n - 1}, n ≥ 1, exactly (rejection, no modulo bias). */
uint64_t gram__csprng_below(gram__csprng *r, uint64_t n);
/* Wipes the key and state. */
void gram__csprng_wipe(gram__csprng *r);
/* The raw ChaCha20 block function (RFC 8439 §2.3): out = block(key, counter, nonce). */
void gram__chacha20_block(const uint32_t key[8], uint32_t counter, const uint32_t nonce[3],
                          uint32_t out[16]);

/* ---- noise.c ----------------------------------------------------------------------------- */
/* Exact samplers (Canonne, Kamath & Steinke, "The Discrete Gaussian for Differential Privacy",
 * NeurIPS 2020, Algorithms 1–3), integer arithmetic only (128-bit where a product needs it).
 * Rational parameters num/den with num, den ≥ 1: any 64-bit values for the Bernoulli and the
 * Laplace (whose result saturates at ±INT64_MAX); num ≤ 2^60 and den ≤ 2^40 for the Gaussian
 * (0 outside). noise.c derives the bounds; gram__release keeps inside them. */
int gram__bernoulli_exp(gram__csprng *r, uint64_t num, uint64_t den);     /* Bernoulli(e^(-num/den)) */
int64_t gram__discrete_laplace(gram__csprng *r, uint64_t num, uint64_t den); /* P(x) ∝ e^(-|x| den/num) */
int64_t gram__discrete_gaussian(gram__csprng *r, uint64_t num, uint64_t den); /* P(x) ∝ e^(-x²/(2σ²)), σ² = num/den */
/* The (ε, δ) accounting of the Gaussian path, for tests and the docs: δ of ρ-zCDP at ε (CKS 2020,
 * Corollary 13, near-optimal α), and δ of the discrete Gaussian with variance sigma2 on a statistic
 * of ℓ2 sensitivity sens2 (ρ = sens2²/(2·sigma2)). gram__release asks δ(σ²) ≤ δ·(1 − 1e-9). */
long double gram__zcdp_delta(long double rho, long double eps);
long double gram__gauss_delta(long double sens2, long double sigma2, long double eps);
/* The discrete Gaussian's rare 256-bit step, exposed for its test: q (4 words) and rem (2) with
 * w² = q·D + rem, for w < 2^114 and 1 ≤ D < 2^122 (words least significant first). */
void gram__square_divmod(const uint64_t w[2], const uint64_t D[2], uint64_t q[4], uint64_t rem[2]);

typedef enum { GRAM__NOISE_LAPLACE = 0, GRAM__NOISE_GAUSSIAN = 1 } gram__noise_kind;

/* An exact integer statistic and the sensitivity its family proved for it, in integer units:
 * for every pair of neighbouring data sets (as the sketch's neighbours say) the two statistics
 * differ by at most sens_l1 in ℓ1 and sens_l2 in ℓ2. */
typedef struct gram__statistic {
    int64_t m;              /* number of values */
    int64_t *v;             /* the values (owned by the caller) */
    double unit;            /* what one integer unit is worth in the released values */
    uint64_t sens_l1;       /* exact integer ℓ1 sensitivity (≥ 1) */
    double sens_l2;         /* ℓ2 sensitivity, rounded up (≥ 1 unless sens_l1 is 0) */
    int allow_coarsen;      /* 1: the release may first round v to a grid of 2^s units (fixed-point
                               sums, whose fine units are far below the noise); 0: counts */
} gram__statistic;

/* What a release did, for the sketch's metadata. */
typedef struct gram__release_record {
    gram__noise_kind kind;
    double epsilon, delta;
    int shift;              /* s: values were rounded to multiples of 2^s units first */
    uint64_t sens_l1;       /* in units of 2^s (including the +1 per value of the rounding) */
    double sens_l2;
    double scale;           /* Laplace scale b or Gaussian σ, in released units (unit·2^s·num/den) */
    uint64_t num, den;      /* the rational noise parameter in grid units: Laplace b = num/den,
                               Gaussian σ² = num/den */
} gram__release_record;

/* Releases st: delta = 0 → discrete Laplace with b ≥ sens_l1/ε per value (b = num/2^k rounded
 * up, exactly); delta > 0 → discrete Gaussian with the smallest σ² = num/2^k whose
 * ρ = sens_l2²/(2σ²) converts to (ε, δ) (CKS 2020, Corollary 13). With allow_coarsen, s is the
 * largest shift whose rounding term (+m in ℓ1, +√m in ℓ2) stays ≤ 0.1% of the sensitivity, raised
 * further only if the noise would leave the samplers' range (Laplace b ≤ 2^40, Gaussian
 * σ² ≤ 2^60 grid units); s = 0 otherwise. A statistic of sensitivity 0 is noised as if it were 1.
 * out[i] = (round(v[i]/2^s) + Z_i)·2^s·unit. GRAM_EINVAL for a bad ε/δ/unit/sensitivity;
 * GRAM_EOVERFLOW when the noise is beyond the samplers' range and s may not grow, when a rounded
 * value exceeds ±2^61 (checked before any noise is drawn) or a noised one leaves int64. On failure
 * nothing is written to out. */
gram_status gram__release(gram_context *ctx, const gram__statistic *st, double epsilon, double delta,
                          gram__csprng *r, double *out, gram__release_record *rec);

/* ---- the sketch --------------------------------------------------------------------------- */
struct gram_private_sketch {
    /* public parameters (saved) */
    gram_private_similarity similarity;
    gram_private_mechanism mechanism;
    gram_private_domain domain;
    gram_private_neighbours neighbours;
    double radius, bandwidth, p;
    double epsilon, delta;          /* the whole release's cost */
    double eps_main, delta_main;    /* the family's share (set by private.c before fit: all of it
                                       under replace; under add/remove 90% of ε and all of δ, the
                                       other 10% of ε releases n by discrete Laplace) */
    int64_t dim;
    int64_t n_components, reduced_dim;
    int32_t levels, n_terms;
    uint64_t seed;                  /* public randomness */
    int test_noise;
    gram__release_record rec;       /* of the main statistic */
    double n_released;              /* exact n (replace) or released noisy n (add/remove) */
    char sensitivity[512];
    double approx_error;
    /* data-dependent released values (saved): exactly what gram__release returned */
    int64_t n_values;
    double *values;
    /* data-independent parameters a family fixed at fit (saved): e.g. the cauchy coefficients
     * and rates, the ℓ1 cell edges; each family documents its layout */
    int64_t n_params;
    double *params;
    /* derived from the above (rebuilt by prepare after fit and load; never saved) */
    void *cache;
    void (*free_cache)(void *cache);
    int64_t n_clipped;              /* -1 after load */
};

/* A family's entry points. X is the clipped data, n × d row-major float64. fit fills
 * s->values/n_values, s->params/n_params, s->rec, s->sensitivity (and approx_error, levels, ...)
 * from the options already copied into s; it draws noise only through gram__release(…, r, …).
 * statistic computes the exact integer statistic and its sensitivities without releasing them
 * (tests compare neighbouring data sets with it); st->v is malloc'ed, freed by the caller.
 * prepare builds s->cache from the saved fields; query answers sums. */
typedef struct gram__private_family {
    gram_status (*fit)(gram_context *ctx, gram_private_sketch *s, const double *X, int64_t n,
                       gram__csprng *r);
    gram_status (*statistic)(gram_context *ctx, const gram_private_sketch *s, const double *X, int64_t n,
                             gram__statistic *st);
    gram_status (*prepare)(gram_context *ctx, gram_private_sketch *s);
    gram_status (*query)(gram_context *ctx, const gram_private_sketch *s, const double *Y, int64_t m,
                         double *out);
} gram__private_family;

extern const gram__private_family gram__private_kernels;   /* kernels.c: gaussian, exponential, cauchy */
/* kernels.c: the cauchy fit 1/(1 + t²) ≈ Σ_j a_j e^(-b_j t) on [0, diameter/σ] that a fit of s would
 * use (s->n_terms values each in a and b; max_err its max error on the check grid). For tests. */
gram_status gram__private_cauchy_coefficients(gram_context *ctx, const gram_private_sketch *s, double *a,
                                              double *b, double *max_err);
extern const gram__private_family gram__private_distances; /* distances.c: l1, l2, lpp */

/* Shared by private.c and serial.c: the similarity's name ("gaussian", ..., "lpp"; "?" if out of
 * range) and the checks of the public parameters that fit and load both make (n_components,
 * reduced_dim, n_terms, levels against the limits on what a family may allocate). where: NULL for
 * fit (GRAM_EINVAL), else the file's name (GRAM_EFORMAT). */
const char *gram__private_similarity_name(gram_private_similarity f);
gram_status gram__private_check_params(gram_context *ctx, const gram_private_sketch *s, const char *where);
/* X (n × d, finite) clipped onto the ball |x|₂ ≤ R (each row outside scaled towards 0 until its
 * norm, computed in long double, is ≤ R) or the box |x_j| ≤ R (clamped), into out (n × d float64 row-major); rows
 * inside are copied bit for bit. Returns the number of rows changed. */
int64_t gram__private_clip(const gram_array *X, gram_private_domain domain, double R, double *out);

/* Test hook (private.c): the family's exact statistic for X as the sketch's options and public
 * seed define it, after clipping. Used by the sensitivity tests; not in gram.h. */
GRAM_API gram_status gram__private_statistic(gram_context *ctx, const gram_private_sketch *s,
                                             const gram_array *X, gram__statistic *st);

#endif
