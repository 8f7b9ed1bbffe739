/* The AVX2 table's float64 kernels: ukr_simd.inc over the primitives of simd_avx2.h (the table
 * itself is in ukr_avx2.c). */
#if defined(GRAM_HAVE_X86_KERNELS)
#include "simd_avx2.h"

#define SIMD_F32 0
#include "ukr_simd.inc"

#else
typedef int gram__avx2_f64_unavailable;
#endif
