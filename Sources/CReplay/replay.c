#include "ovl_replay.h"

// The plain scan, the definition every other one must equal.
#define OVL_SCALAR_SCAN(TYPE)                                                        \
    do {                                                                             \
        const TYPE *s = (const TYPE *)seq_;                                          \
        int32_t l = *last;                                                           \
        size_t m = 0;                                                                \
        for (size_t i = 0; i < n; i++) {                                             \
            int32_t c = (int32_t)s[i];                                               \
            int32_t k = map[c];                                                      \
            if (k < 0 || k == l) continue;                                           \
            l = k;                                                                   \
            out[m++] = c;                                                            \
        }                                                                            \
        *last = l;                                                                   \
        return m;                                                                    \
    } while (0)

static size_t scalar_u16(const void *seq_, size_t n, const int32_t *map, int32_t *last, int32_t *out) {
    OVL_SCALAR_SCAN(uint16_t);
}

static size_t scalar_i32(const void *seq_, size_t n, const int32_t *map, int32_t *last, int32_t *out) {
    OVL_SCALAR_SCAN(int32_t);
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#include <immintrin.h>

int ovl_replay_vector_available(void) {
    // CPUID traps to the hypervisor in a virtual machine (microseconds): asked once.
    static int known = -1;
    int k = __atomic_load_n(&known, __ATOMIC_RELAXED);
    if (k >= 0) return k;
    unsigned a, b, c, d;
    int ok = 0;
    // CPUID.1: OSXSAVE (ECX 27); CPUID.7.0: AVX512F (EBX 16); XCR0: the SSE, AVX,
    // opmask and both halves of the ZMM state saved by the operating system (bits 1, 2, 5-7).
    if (__get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 27)) && __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & (1u << 16))) {
        unsigned lo, hi;
        __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
        ok = (lo & 0xe6) == 0xe6;
    }
    __atomic_store_n(&known, ok, __ATOMIC_RELAXED);
    return ok;
}

// One block of sixteen events, chains in `c`. The clusters are gathered from the map and
// the resident events squeezed out (`kc`, `cc`); each cluster left is compared with the
// one before it, the first with the last cluster entered (`*lastv`, in every lane), and
// the chains of those that differ are stored at out + m, sixteen lanes at a time. The last
// non-resident cluster of the block becomes *lastv: every step depends on the block's own
// data, and the blocks are chained by one masked move.
__attribute__((target("avx512f"))) static inline size_t block16(__m512i c, const int32_t *map, __m512i *lastv, int32_t *out, size_t m) {
    __m512i k = _mm512_i32gather_epi32(c, (const void *)map, 4);
    __mmask16 nr = _mm512_cmpge_epi32_mask(k, _mm512_setzero_si512());
    __m512i kc = _mm512_maskz_compress_epi32(nr, k);
    __m512i cc = _mm512_maskz_compress_epi32(nr, c);
    __m512i prev = _mm512_alignr_epi32(kc, *lastv, 15);
    unsigned count = (unsigned)__builtin_popcount(nr);
    __mmask16 entering = _mm512_mask_cmpneq_epi32_mask((__mmask16)((1u << count) - 1), kc, prev);
    _mm512_storeu_si512((void *)(out + m), _mm512_maskz_compress_epi32(entering, cc));
    unsigned top = 31u - (unsigned)__builtin_clz(nr | 1u);
    *lastv = _mm512_mask_mov_epi32(*lastv, (__mmask16)(nr ? 0xffff : 0), _mm512_permutexvar_epi32(_mm512_set1_epi32((int)top), k));
    return m + (size_t)__builtin_popcount(entering);
}

__attribute__((target("avx512f"))) static size_t vector_u16(const void *seq_, size_t n, const int32_t *map, int32_t *last, int32_t *out) {
    const uint16_t *seq = (const uint16_t *)seq_;
    __m512i lastv = _mm512_set1_epi32(*last);
    size_t m = 0, i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512i c = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(const void *)(seq + i)));
        m = block16(c, map, &lastv, out, m);
    }
    *last = _mm_cvtsi128_si32(_mm512_castsi512_si128(lastv));
    return m + scalar_u16(seq + i, n - i, map, last, out + m);
}

__attribute__((target("avx512f"))) static size_t vector_i32(const void *seq_, size_t n, const int32_t *map, int32_t *last, int32_t *out) {
    const int32_t *seq = (const int32_t *)seq_;
    __m512i lastv = _mm512_set1_epi32(*last);
    size_t m = 0, i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512i c = _mm512_loadu_si512((const void *)(seq + i));
        m = block16(c, map, &lastv, out, m);
    }
    *last = _mm_cvtsi128_si32(_mm512_castsi512_si128(lastv));
    return m + scalar_i32(seq + i, n - i, map, last, out + m);
}

size_t ovl_replay_entries_u16(int mode, const uint16_t *seq, size_t n, const int32_t *map, int32_t *last, int32_t *out) {
    if (mode == OVL_REPLAY_AVX512 && ovl_replay_vector_available()) return vector_u16(seq, n, map, last, out);
    return scalar_u16(seq, n, map, last, out);
}

size_t ovl_replay_entries_i32(int mode, const int32_t *seq, size_t n, const int32_t *map, int32_t *last, int32_t *out) {
    if (mode == OVL_REPLAY_AVX512 && ovl_replay_vector_available()) return vector_i32(seq, n, map, last, out);
    return scalar_i32(seq, n, map, last, out);
}

#else

int ovl_replay_vector_available(void) { return 0; }

size_t ovl_replay_entries_u16(int mode, const uint16_t *seq, size_t n, const int32_t *map, int32_t *last, int32_t *out) {
    (void)mode;
    return scalar_u16(seq, n, map, last, out);
}

size_t ovl_replay_entries_i32(int mode, const int32_t *seq, size_t n, const int32_t *map, int32_t *last, int32_t *out) {
    (void)mode;
    return scalar_i32(seq, n, map, last, out);
}

#endif
