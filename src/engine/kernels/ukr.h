/* The microkernel contract (docs/kernels.md explains it in prose).
 *
 * The driver packs, tiles and threads; a microkernel table computes one tile: MR ≤ GRAM_MR query
 * rows against one chunk of n ≤ GRAM_KC packed data points (n a multiple of GRAM_PANEL).
 * Microkernels allocate nothing, spawn nothing, keep no state and never read outside the arrays
 * described here. Every table entry is required except fused_sum_f64/f32, which may be NULL.
 *
 * Layouts
 *   y    query rows, row-major, mr × D, scaled by the leaf's inv_scale (stride D).
 *   xp   packed data: n/GRAM_PANEL panels; panel p holds D × GRAM_PANEL values, coordinate-major
 *        (xp[p*D*PANEL + d*PANEL + lane]); scaled like y. Padding points repeat the last real
 *        point, so they are finite; the driver gives them weight 0 (log weight -inf).
 *   T    tile, mr rows of length ≥ n, row stride ldt (a multiple of GRAM_PANEL), 64-byte aligned.
 *   yy   |y_i|² of the scaled rows (mr values); xx |x_j|² of the scaled points (n values).
 *   W    weights of the chunk, row-major n × V (float64), LW their logs.
 */
#ifndef GRAM_UKR_H
#define GRAM_UKR_H

#include "../../kernel/kernel.h"

#define GRAM_PANEL 16 /* points per packed panel: one AVX-512 float32 vector */
#define GRAM_MR 8     /* query rows per tile */
#define GRAM_KC 256   /* data points per chunk: the unit of the fixed-order reduction */

typedef struct gram__ukr {
    const char *name;

    /* T[i][j] = statistic of structure s (SQDIST: Σ_d (y_id - x_jd)²; L1: Σ_d |y_id - x_jd|;
     * DOT: Σ_d y_id x_jd) for i < mr, j < n. */
    void (*stat_f64)(gram_structure s, int64_t mr, int64_t n, int64_t D, const double *y,
                     const double *xp, double *T, int64_t ldt);
    void (*stat_f32)(gram_structure s, int64_t mr, int64_t n, int64_t D, const float *y,
                     const float *xp, float *T, int64_t ldt);

    /* In place: T[i][j] ← f(T[i][j]) (logspace: log f) for the leaf's family. SQDIST and L1 leaves
     * read their statistic; DOT leaves also read yy, xx. CONST leaves are filled by the driver. */
    void (*apply_f64)(const gram__leaf *L, int logspace, int64_t mr, int64_t n, double *T,
                      int64_t ldt, const double *yy, const double *xx);
    void (*apply_f32)(const gram__leaf *L, int logspace, int64_t mr, int64_t n, float *T,
                      int64_t ldt, const float *yy, const float *xx);

    /* P[i][v] = Σ_{j<n} T[i][j] · W[j][v], written (not accumulated), P row-major mr × V. The order
     * of summation inside a chunk is the microkernel's own but fixed. */
    void (*sum_f64)(int64_t mr, int64_t n, const double *T, int64_t ldt, const double *W,
                    int64_t V, double *P);
    void (*sum_f32)(int64_t mr, int64_t n, const float *T, int64_t ldt, const double *W,
                    int64_t V, double *P);

    /* For log-values T and log-weights LW: MX[i][v] = max_j (T[i][j] + LW[j][v]) and
     * S[i][v] = Σ_j exp(T[i][j] + LW[j][v] - MX[i][v]); when MX is -inf, S is 0. */
    void (*logsum_f64)(int64_t mr, int64_t n, const double *T, int64_t ldt, const double *LW,
                       int64_t V, double *MX, double *S);
    void (*logsum_f32)(int64_t mr, int64_t n, const float *T, int64_t ldt, const double *LW,
                       int64_t V, double *MX, double *S);

    /* Elementwise exp, used by the above and exposed for tests: y[i] = exp(x[i]); y may be x (the
     * attention reduction exponentiates its tile in place). */
    void (*exp_f64)(int64_t n, const double *x, double *y);
    void (*exp_f32)(int64_t n, const float *x, float *y);

    /* Optional (NULL, or returning 0, where the table has no fused form): the partial sum of one
     * tile in one pass, with no tile in memory. For a leaf L of structure SQDIST it either returns
     * 0 and writes nothing that matters (P's contents are then unspecified and the driver runs
     * stat → apply → sum instead), or returns 1 having written
     *     P[i][v] = Σ_{j<n} f_L(max(0, Σ_d (y_id - x_jd)²)) · W[j][v]      (P row-major mr × V)
     * i.e. the P of stat + apply (not logspace) + sum, up to rounding: f_L may use a cheaper exp
     * (≤ 2 ulp, see vmath.inc) and the order of summation is the kernel's own, fixed. Whether it
     * returns 1 depends only on L, V and (float32) the chunk's weights, never on the caller's
     * thread, so results stay independent of the thread count. docs/kernels.md has the bounds. */
    int (*fused_sum_f64)(const gram__leaf *L, int64_t mr, int64_t n, int64_t D, const double *y,
                         const double *xp, const double *W, int64_t V, double *P);
    int (*fused_sum_f32)(const gram__leaf *L, int64_t mr, int64_t n, int64_t D, const float *y,
                         const float *xp, const double *W, int64_t V, double *P);

    /* Optional (NULL, or returning 0 where it declines): the log-sum partial of one tile in one
     * pass, for a leaf L of structure SQDIST. Returns 1 having written, for i < mr and v < V,
     *     MX[i][v], S[i][v]  with  Σ_{j<n} exp(log f_L(t_ij) + LW[j][v]) = exp(MX[i][v]) · S[i][v]
     * up to rounding (t_ij as for fused_sum), MX finite, or MX = -inf and S = 0 when every term is
     * exp(-inf); MX need not be the exact maximum (the driver's merge accepts any pair), but S is
     * then bounded so that nothing overflows. As for fused_sum, whether it returns 1 depends only
     * on L, V and the chunk's log-weights, never on the thread. */
    int (*fused_logsum_f64)(const gram__leaf *L, int64_t mr, int64_t n, int64_t D, const double *y,
                            const double *xp, const double *LW, int64_t V, double *MX, double *S);
    int (*fused_logsum_f32)(const gram__leaf *L, int64_t mr, int64_t n, int64_t D, const float *y,
                            const float *xp, const double *LW, int64_t V, double *MX, double *S);

    /* Optional (NULL, or returning 0 where it declines): kernel values of one block in one pass,
     * written straight to their destination, for a leaf L of structure SQDIST. With
     * v_ij = f_L(t_ij) (t_ij as for fused_sum; f_L may use the cheaper exp, ≤ 2 ulp) for rows
     * i < mr of y and points j < n of xp (n need not be a multiple of GRAM_PANEL: xp holds whole
     * panels), it writes the columns j0 ≤ j < n (0 ≤ j0 < n):
     *     T[i*ldt + (j - j0)] = v_ij   where T is not NULL   (the block)
     *     U[(j - j0)*ldu + i] = v_ij   where U is not NULL   (its transpose)
     * as float64 when flags & 1, else as float32 (rounded once, or widened exactly), and nothing
     * else. flags & 2 allows non-temporal stores of whole vectors at aligned addresses; the caller
     * then fences (sfence) before the results are read. Any mr ≥ 0, strides and 8- / 4-byte
     * aligned T, U. v_ij depends only on y_i and x_j, and t_ij is symmetric bit for bit, so a
     * symmetric call may write the transpose of one block as the block across the diagonal.
     * Whether it returns 1 depends only on L (a call with mr = 0 asks and writes nothing). */
#define GRAM__MX_F64 1    /* fused_matrix flags: the destination holds float64 (else float32) */
#define GRAM__MX_STREAM 2 /* aligned whole vectors may be stored non-temporally */
    int (*fused_matrix_f64)(const gram__leaf *L, int64_t mr, int64_t j0, int64_t n, int64_t D,
                            const double *y, const double *xp, void *T, int64_t ldt, void *U,
                            int64_t ldu, int flags);
    int (*fused_matrix_f32)(const gram__leaf *L, int64_t mr, int64_t j0, int64_t n, int64_t D,
                            const float *y, const float *xp, void *T, int64_t ldt, void *U,
                            int64_t ldu, int flags);

    /* Optional (NULL, or returning 0 where it declines): fused_sum's P for V = 1 with the squared
     * distance in the GEMM form |y|² + |x|² − 2 y·x (yy, xx: the norms of the tile's scaled rows
     * and the chunk's scaled points, as for apply), for large D. Each register block whose pairs do
     * not all satisfy t ≥ (|y|² + |x|²)/2 is recomputed in the difference form, so t's error stays
     * within twice the difference form's bound (ukr_bigd.inc). Deterministic as fused_sum. */
    int (*fused_sum_gemm_f64)(const gram__leaf *L, int64_t mr, int64_t n, int64_t D, const double *y,
                              const double *xp, const double *yy, const double *xx, const double *W,
                              int64_t V, double *P);
    int (*fused_sum_gemm_f32)(const gram__leaf *L, int64_t mr, int64_t n, int64_t D, const float *y,
                              const float *xp, const float *yy, const float *xx, const double *W,
                              int64_t V, double *P);
} gram__ukr;

/* The table for an architecture; NULL when it was not compiled in. */
const gram__ukr *gram__ukr_for(gram_arch arch);

extern const gram__ukr gram__ukr_ref;
#ifdef GRAM_HAVE_X86_KERNELS
extern const gram__ukr gram__ukr_avx2;
extern const gram__ukr gram__ukr_avx512;
#endif

#endif
