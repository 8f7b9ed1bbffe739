/* The AVX-512 table's float32 kernels: ukr_simd.inc over the primitives of simd_avx512.h (the table
 * itself is in ukr_avx512.c). */
#if defined(GRAM_HAVE_X86_KERNELS)
#include "simd_avx512.h"

#define SIMD_F32 1
#include "ukr_simd.inc"

#else
typedef int gram__avx512_f32_unavailable;
#endif
