/* The entries of a SIMD microkernel table (ukr.h's gram__ukr) as functions: entry e of the table
 * whose file includes simd_<isa>.h is SIMD_SYM(e), e.g. gram__avx2_stat_f64, declared here with
 * the type of the table's member. ukr_simd.inc defines one element type's entries (the table's
 * files ukr_<isa>_f64.c, ukr_<isa>_f32.c: two translation units, which build in parallel) and
 * ukr_<isa>.c collects them with SIMD_DEFINE_TABLE. Hidden: internal to libgram. */
#ifndef GRAM_UKR_SIMD_H
#define GRAM_UKR_SIMD_H

#include "../ukr.h"

#define SIMD_DECLARE(e)                                                                            \
    extern __attribute__((visibility("hidden"))) __typeof__(*((const gram__ukr *)0)->e) SIMD_SYM(e)

SIMD_DECLARE(stat_f64);
SIMD_DECLARE(stat_f32);
SIMD_DECLARE(apply_f64);
SIMD_DECLARE(apply_f32);
SIMD_DECLARE(sum_f64);
SIMD_DECLARE(sum_f32);
SIMD_DECLARE(logsum_f64);
SIMD_DECLARE(logsum_f32);
SIMD_DECLARE(exp_f64);
SIMD_DECLARE(exp_f32);
SIMD_DECLARE(fused_sum_f64);
SIMD_DECLARE(fused_sum_f32);
SIMD_DECLARE(fused_logsum_f64);
SIMD_DECLARE(fused_logsum_f32);
SIMD_DECLARE(fused_matrix_f64);
SIMD_DECLARE(fused_matrix_f32);
SIMD_DECLARE(fused_sum_gemm_f64);
SIMD_DECLARE(fused_sum_gemm_f32);

#define SIMD_DEFINE_TABLE(table)                                                                   \
    const gram__ukr table = {                                                                      \
        SIMD_NAME,                  SIMD_SYM(stat_f64),         SIMD_SYM(stat_f32),                \
        SIMD_SYM(apply_f64),        SIMD_SYM(apply_f32),        SIMD_SYM(sum_f64),                 \
        SIMD_SYM(sum_f32),          SIMD_SYM(logsum_f64),       SIMD_SYM(logsum_f32),              \
        SIMD_SYM(exp_f64),          SIMD_SYM(exp_f32),          SIMD_SYM(fused_sum_f64),           \
        SIMD_SYM(fused_sum_f32),    SIMD_SYM(fused_logsum_f64), SIMD_SYM(fused_logsum_f32),        \
        SIMD_SYM(fused_matrix_f64), SIMD_SYM(fused_matrix_f32), SIMD_SYM(fused_sum_gemm_f64),      \
        SIMD_SYM(fused_sum_gemm_f32),                                                              \
    }

#endif /* GRAM_UKR_SIMD_H */
