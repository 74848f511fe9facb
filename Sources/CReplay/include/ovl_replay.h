#ifndef OVL_REPLAY_H
#define OVL_REPLAY_H

// The inner scan of the cost model's replay (CostModel.replayStretch): which events of a
// trace's chain sequence enter overlay code at all. An event enters its chain's cluster
// map[chain]; a negative cluster is resident code, which neither loads nor evicts, and
// entering the cluster entered last (the last non-resident one) needs no look at the
// buffers. Every other event is an *entry*: the caller charges it as a load (one
// buffer) or hands it to the load rules (ovl_rules_enter).
//
// A trace of the Linux boot has 7.7 million events and 0.3 million loads: the scan is
// nearly all of a replay's time, and a branch per event on data the predictor cannot
// learn. With AVX-512 sixteen events are looked up at once (a gather from the map),
// the resident ones squeezed out, each compared with the one before it, and the chains
// of the entries squeezed into `out`, without a branch on the data.

#include <stddef.h>
#include <stdint.h>

// How the scan runs: OVL_REPLAY_SCALAR anywhere; OVL_REPLAY_AVX512 where the processor
// and the operating system allow AVX-512F (ovl_replay_vector_available), else it runs as
// OVL_REPLAY_SCALAR.
enum { OVL_REPLAY_SCALAR = 0, OVL_REPLAY_AVX512 = 1 };

// 1 when this processor and operating system run AVX-512F code, else 0. Read once.
int ovl_replay_vector_available(void);

// The entries among seq[0..<n] (chain numbers, two bytes each): their chains, in order,
// written to out (room for n + 16 values: the vector scan stores sixteen at a time), and
// their count returned. *last is the cluster entered last before seq[0] (-1 for none)
// and is left as the one entered last at seq[n - 1]. Chains must index map.
size_t ovl_replay_entries_u16(int mode, const uint16_t *seq, size_t n, const int32_t *map,
                              int32_t *last, int32_t *out);

// The same over chain numbers of four bytes (each below 2^31).
size_t ovl_replay_entries_i32(int mode, const int32_t *seq, size_t n, const int32_t *map,
                              int32_t *last, int32_t *out);

#endif
