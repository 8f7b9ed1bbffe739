/* The vector primitives of the AVX-512 microkernel table ("avx512"): 8 doubles or 16 floats per
 * vector (one packed panel of float32 per vector).
 *
 * This file only says how the template's vector primitives map onto AVX-512F/DQ intrinsics; the
 * kernels are in ukr_simd.inc and the vector math in vmath.inc, shared with the AVX2 table (which
 * exercises the same template on machines without AVX-512). Included by the table's files
 * (ukr_avx512.c, ukr_avx512_f64.c, ukr_avx512_f32.c), all compiled with -mavx512f -mavx512dq
 * -mavx512vl; the engine calls the table only where cpuid and XCR0 report AVX-512F and DQ. */
#ifndef GRAM_SIMD_AVX512_H
#define GRAM_SIMD_AVX512_H

#if !(defined(__AVX512F__) && defined(__AVX512DQ__))
#error "the AVX-512 table's files must be compiled with -mavx512f -mavx512dq -mavx512vl (see CMakeLists.txt)"
#endif

#include "../ukr.h"

#include <immintrin.h>

#define SIMD_BYTES 64
#define VDN 8
#define VFN 16

typedef __m512d vd;
typedef __m512 vf;
typedef __mmask8 vdm;
typedef __mmask16 vfm;

#define SIMD_INLINE static inline __attribute__((always_inline))

/* ---- double lanes ---- */
SIMD_INLINE vd vd_set1(double a) { return _mm512_set1_pd(a); }
SIMD_INLINE vd vd_zero(void) { return _mm512_setzero_pd(); }
SIMD_INLINE vd vd_load(const double *p) { return _mm512_load_pd(p); }
SIMD_INLINE vd vd_loadu(const double *p) { return _mm512_loadu_pd(p); }
SIMD_INLINE void vd_store(double *p, vd a) { _mm512_store_pd(p, a); }
SIMD_INLINE void vd_storeu(double *p, vd a) { _mm512_storeu_pd(p, a); }
/* VDN floats at p (32-byte aligned), widened exactly. */
SIMD_INLINE vd vd_load_f32(const float *p) { return _mm512_cvtps_pd(_mm256_load_ps(p)); }
SIMD_INLINE vd vd_fma(vd a, vd b, vd c) { return _mm512_fmadd_pd(a, b, c); }
SIMD_INLINE vd vd_fnma(vd a, vd b, vd c) { return _mm512_fnmadd_pd(a, b, c); }
/* min/max: where either operand is NaN the result is b (the x86 rule; callers rely on it). */
SIMD_INLINE vd vd_min(vd a, vd b) { return _mm512_min_pd(a, b); }
SIMD_INLINE vd vd_max(vd a, vd b) { return _mm512_max_pd(a, b); }
SIMD_INLINE vd vd_sqrt(vd a) { return _mm512_sqrt_pd(a); }
SIMD_INLINE vd vd_abs(vd a) { return _mm512_abs_pd(a); }
SIMD_INLINE vdm vd_lt(vd a, vd b) { return _mm512_cmp_pd_mask(a, b, _CMP_LT_OQ); }
SIMD_INLINE vdm vd_le(vd a, vd b) { return _mm512_cmp_pd_mask(a, b, _CMP_LE_OQ); }
SIMD_INLINE vdm vd_eq(vd a, vd b) { return _mm512_cmp_pd_mask(a, b, _CMP_EQ_OQ); }
SIMD_INLINE vdm vdm_not(vdm m) { return (vdm)~m; }
SIMD_INLINE vdm vdm_or(vdm a, vdm b) { return (vdm)(a | b); }
SIMD_INLINE vd vd_sel(vdm m, vd a, vd b) { return _mm512_mask_blend_pd(m, b, a); } /* m ? a : b */
SIMD_INLINE vd vd_loadn(const double *p, int64_t n)
{
    return _mm512_maskz_loadu_pd((__mmask8)((1u << n) - 1u), p);
}
SIMD_INLINE void vd_storen(double *p, vd a, int64_t n)
{
    _mm512_mask_storeu_pd(p, (__mmask8)((1u << n) - 1u), a);
}
/* Horizontal reductions in a fixed order (halves, then quarters, then pairs). */
SIMD_INLINE double vd_hsum(vd a)
{
    __m256d h = _mm256_add_pd(_mm512_castpd512_pd256(a), _mm512_extractf64x4_pd(a, 1));
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(h), _mm256_extractf128_pd(h, 1));
    return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}
SIMD_INLINE double vd_hmax(vd a)
{
    __m256d h = _mm256_max_pd(_mm512_castpd512_pd256(a), _mm512_extractf64x4_pd(a, 1));
    __m128d s = _mm_max_pd(_mm256_castpd256_pd128(h), _mm256_extractf128_pd(h, 1));
    return _mm_cvtsd_f64(_mm_max_sd(s, _mm_unpackhi_pd(s, s)));
}

/* ---- float lanes ---- */
SIMD_INLINE vf vf_set1(float a) { return _mm512_set1_ps(a); }
SIMD_INLINE vf vf_zero(void) { return _mm512_setzero_ps(); }
SIMD_INLINE vf vf_load(const float *p) { return _mm512_load_ps(p); }
SIMD_INLINE vf vf_loadu(const float *p) { return _mm512_loadu_ps(p); }
SIMD_INLINE void vf_store(float *p, vf a) { _mm512_store_ps(p, a); }
SIMD_INLINE void vf_storeu(float *p, vf a) { _mm512_storeu_ps(p, a); }
SIMD_INLINE vf vf_fma(vf a, vf b, vf c) { return _mm512_fmadd_ps(a, b, c); }
SIMD_INLINE vf vf_fnma(vf a, vf b, vf c) { return _mm512_fnmadd_ps(a, b, c); }
SIMD_INLINE vf vf_min(vf a, vf b) { return _mm512_min_ps(a, b); }
SIMD_INLINE vf vf_max(vf a, vf b) { return _mm512_max_ps(a, b); }
SIMD_INLINE vf vf_sqrt(vf a) { return _mm512_sqrt_ps(a); }
SIMD_INLINE vf vf_abs(vf a) { return _mm512_abs_ps(a); }
SIMD_INLINE vfm vf_lt(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
SIMD_INLINE vfm vf_le(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_LE_OQ); }
SIMD_INLINE vfm vf_eq(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_EQ_OQ); }
SIMD_INLINE vfm vfm_not(vfm m) { return (vfm)~m; }
SIMD_INLINE vfm vfm_or(vfm a, vfm b) { return (vfm)(a | b); }
SIMD_INLINE vf vf_sel(vfm m, vf a, vf b) { return _mm512_mask_blend_ps(m, b, a); }
/* VFN doubles at p, rounded to float. */
SIMD_INLINE vf vf_load_f64(const double *p)
{
    return _mm512_insertf32x8(_mm512_castps256_ps512(_mm512_cvtpd_ps(_mm512_loadu_pd(p))),
                              _mm512_cvtpd_ps(_mm512_loadu_pd(p + 8)), 1);
}
/* The low / high VDN lanes of a, widened exactly to doubles. */
SIMD_INLINE vd vf_widen_lo(vf a) { return _mm512_cvtps_pd(_mm512_castps512_ps256(a)); }
SIMD_INLINE vd vf_widen_hi(vf a)
{
    return _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a), 1)));
}

/* The names of this table's kernels (ukr_simd.h): gram__avx512_<entry>. */
#define SIMD_SYM_(name) gram__avx512_##name
#define SIMD_SYM(name) SIMD_SYM_(name)
#define SIMD_NAME "avx512"

#endif /* GRAM_SIMD_AVX512_H */
