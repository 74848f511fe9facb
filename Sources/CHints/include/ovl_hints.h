#ifndef OVL_HINTS_H
#define OVL_HINTS_H

// Hints to the processor that Swift cannot spell: a prefetch of the cache line holding
// `p` for reading, so that a load the coalescer knows it will make several steps later
// does not wait for memory then. Only a hint: any address may be given, none is read.
static inline void ovl_prefetch(const void *p) {
    __builtin_prefetch(p, 0, 3);
}

// Asks the kernel to back [p, p + n) with huge pages when it first touches them (where
// transparent huge pages are on for regions that ask, as Debian's kernels have them):
// one fault and one TLB entry for 2 MB instead of 512. Only a hint: ignored where not
// supported.
#include <stddef.h>
#include <sys/mman.h>
static inline void ovl_advise_huge(void *p, size_t n) {
#ifdef MADV_HUGEPAGE
    (void)madvise(p, n, MADV_HUGEPAGE);
#endif
}

#endif
