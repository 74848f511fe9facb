#ifndef OVL_HINTS_H
#define OVL_HINTS_H

// Hints to the processor that Swift cannot spell: a prefetch of the cache line holding
// `p` for reading, so that a load the coalescer knows it will make several steps later
// does not wait for memory then. Only a hint: any address may be given, none is read.
static inline void ovl_prefetch(const void *p) {
    __builtin_prefetch(p, 0, 3);
}

#endif
