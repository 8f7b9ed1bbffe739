/* The vector primitives of the AVX2 + FMA microkernel table ("avx2"): 4 doubles or 8 floats per
 * vector.
 *
 * This file only says how the template's vector primitives map onto AVX2 intrinsics; the kernels
 * themselves are in ukr_simd.inc and the vector math in vmath.inc, shared with the AVX-512 table.
 * Included by the table's files (ukr_avx2.c, ukr_avx2_f64.c, ukr_avx2_f32.c), all compiled with
 * -mavx2 -mfma; the engine calls the table only where cpuid reports both. */
#ifndef GRAM_SIMD_AVX2_H
#define GRAM_SIMD_AVX2_H

#if !(defined(__AVX2__) && defined(__FMA__))
#error "the AVX2 table's files must be compiled with -mavx2 -mfma (see CMakeLists.txt)"
#endif

#include "../ukr.h"

#include <immintrin.h>

#define SIMD_BYTES 32
#define VDN 4 /* doubles per vector */
#define VFN 8 /* floats per vector */

typedef __m256d vd;
typedef __m256 vf;
typedef __m256d vdm; /* lane masks: all-ones / all-zeros lanes */
typedef __m256 vfm;

#define SIMD_INLINE static inline __attribute__((always_inline))

/* ---- double lanes ---- */
SIMD_INLINE vd vd_set1(double a) { return _mm256_set1_pd(a); }
SIMD_INLINE vd vd_zero(void) { return _mm256_setzero_pd(); }
SIMD_INLINE vd vd_load(const double *p) { return _mm256_load_pd(p); }
SIMD_INLINE vd vd_loadu(const double *p) { return _mm256_loadu_pd(p); }
SIMD_INLINE void vd_store(double *p, vd a) { _mm256_store_pd(p, a); }
SIMD_INLINE void vd_storeu(double *p, vd a) { _mm256_storeu_pd(p, a); }
/* VDN floats at p (16-byte aligned), widened exactly. */
SIMD_INLINE vd vd_load_f32(const float *p) { return _mm256_cvtps_pd(_mm_load_ps(p)); }
SIMD_INLINE vd vd_fma(vd a, vd b, vd c) { return _mm256_fmadd_pd(a, b, c); }   /* a·b + c */
SIMD_INLINE vd vd_fnma(vd a, vd b, vd c) { return _mm256_fnmadd_pd(a, b, c); } /* c - a·b */
/* min/max: where either operand is NaN the result is b (the x86 rule; callers rely on it). */
SIMD_INLINE vd vd_min(vd a, vd b) { return _mm256_min_pd(a, b); }
SIMD_INLINE vd vd_max(vd a, vd b) { return _mm256_max_pd(a, b); }
SIMD_INLINE vd vd_sqrt(vd a) { return _mm256_sqrt_pd(a); }
SIMD_INLINE vd vd_abs(vd a) { return _mm256_andnot_pd(_mm256_set1_pd(-0.0), a); }
SIMD_INLINE vdm vd_lt(vd a, vd b) { return _mm256_cmp_pd(a, b, _CMP_LT_OQ); }
SIMD_INLINE vdm vd_le(vd a, vd b) { return _mm256_cmp_pd(a, b, _CMP_LE_OQ); }
SIMD_INLINE vdm vd_eq(vd a, vd b) { return _mm256_cmp_pd(a, b, _CMP_EQ_OQ); }
SIMD_INLINE vdm vdm_not(vdm m) { return _mm256_xor_pd(m, _mm256_castsi256_pd(_mm256_set1_epi64x(-1))); }
SIMD_INLINE vdm vdm_or(vdm a, vdm b) { return _mm256_or_pd(a, b); }
SIMD_INLINE vd vd_sel(vdm m, vd a, vd b) { return _mm256_blendv_pd(b, a, m); } /* m ? a : b */
/* The first n lanes (0 < n ≤ VDN) of p; the others read as 0 and are not touched in memory. */
SIMD_INLINE __m256i vd_lanes_(int64_t n)
{
    return _mm256_cmpgt_epi64(_mm256_set1_epi64x(n), _mm256_setr_epi64x(0, 1, 2, 3));
}
SIMD_INLINE vd vd_loadn(const double *p, int64_t n) { return _mm256_maskload_pd(p, vd_lanes_(n)); }
SIMD_INLINE void vd_storen(double *p, vd a, int64_t n) { _mm256_maskstore_pd(p, vd_lanes_(n), a); }
/* Horizontal reductions in a fixed order: (a0 + a2) + (a1 + a3). */
SIMD_INLINE double vd_hsum(vd a)
{
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(a), _mm256_extractf128_pd(a, 1));
    return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}
SIMD_INLINE double vd_hmax(vd a)
{
    __m128d s = _mm_max_pd(_mm256_castpd256_pd128(a), _mm256_extractf128_pd(a, 1));
    return _mm_cvtsd_f64(_mm_max_sd(s, _mm_unpackhi_pd(s, s)));
}

/* ---- float lanes ---- */
SIMD_INLINE vf vf_set1(float a) { return _mm256_set1_ps(a); }
SIMD_INLINE vf vf_zero(void) { return _mm256_setzero_ps(); }
SIMD_INLINE vf vf_load(const float *p) { return _mm256_load_ps(p); }
SIMD_INLINE vf vf_loadu(const float *p) { return _mm256_loadu_ps(p); }
SIMD_INLINE void vf_store(float *p, vf a) { _mm256_store_ps(p, a); }
SIMD_INLINE void vf_storeu(float *p, vf a) { _mm256_storeu_ps(p, a); }
SIMD_INLINE vf vf_fma(vf a, vf b, vf c) { return _mm256_fmadd_ps(a, b, c); }
SIMD_INLINE vf vf_fnma(vf a, vf b, vf c) { return _mm256_fnmadd_ps(a, b, c); }
SIMD_INLINE vf vf_min(vf a, vf b) { return _mm256_min_ps(a, b); }
SIMD_INLINE vf vf_max(vf a, vf b) { return _mm256_max_ps(a, b); }
SIMD_INLINE vf vf_sqrt(vf a) { return _mm256_sqrt_ps(a); }
SIMD_INLINE vf vf_abs(vf a) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a); }
SIMD_INLINE vfm vf_lt(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }
SIMD_INLINE vfm vf_le(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_LE_OQ); }
SIMD_INLINE vfm vf_eq(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_EQ_OQ); }
SIMD_INLINE vfm vfm_not(vfm m) { return _mm256_xor_ps(m, _mm256_castsi256_ps(_mm256_set1_epi32(-1))); }
SIMD_INLINE vfm vfm_or(vfm a, vfm b) { return _mm256_or_ps(a, b); }
SIMD_INLINE vf vf_sel(vfm m, vf a, vf b) { return _mm256_blendv_ps(b, a, m); }
/* VFN doubles at p, rounded to float. */
SIMD_INLINE vf vf_load_f64(const double *p)
{
    return _mm256_set_m128(_mm256_cvtpd_ps(_mm256_loadu_pd(p + 4)), _mm256_cvtpd_ps(_mm256_loadu_pd(p)));
}
/* The low / high VDN lanes of a, widened exactly to doubles. */
SIMD_INLINE vd vf_widen_lo(vf a) { return _mm256_cvtps_pd(_mm256_castps256_ps128(a)); }
SIMD_INLINE vd vf_widen_hi(vf a) { return _mm256_cvtps_pd(_mm256_extractf128_ps(a, 1)); }

/* The names of this table's kernels (ukr_simd.h): gram__avx2_<entry>. */
#define SIMD_SYM_(name) gram__avx2_##name
#define SIMD_SYM(name) SIMD_SYM_(name)
#define SIMD_NAME "avx2"

#endif /* GRAM_SIMD_AVX2_H */
