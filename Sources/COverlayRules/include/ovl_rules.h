// The overlay manager's rules, written once. The cost model's replay calls these
// functions for every cluster entry in a trace; the rewriter compiles the same file into
// the overlay manager of the image it writes. So the number of loads the model predicts
// and the number the rewritten program counts come from one definition.
//
// Rules:
//  1. Control entering a cluster (a call, a jump, or a return through a restore stub)
//     loads it only when no code buffer holds it already.
//  2. Resident code never loads anything and never evicts anything.
//  3. With several buffers, the least recently entered cluster's buffer is reused.
#ifndef OVL_RULES_H
#define OVL_RULES_H

#include <stdint.h>

/* The most buffers a state can hold. The cost model is built with 64; the rewriter builds
   the manager with the image's own number of buffers, so its state is no larger than it
   needs (the rules are the same). */
#ifndef OVL_MAX_BUFFERS
#define OVL_MAX_BUFFERS 64
#endif

typedef struct {
    int32_t buffers;                    ///< number of code buffers in use (1..OVL_MAX_BUFFERS)
    int32_t holds[OVL_MAX_BUFFERS];     ///< cluster in each buffer, -1 when empty
    uint64_t used[OVL_MAX_BUFFERS];     ///< when each buffer's cluster was last entered
    uint64_t clock;
} ovl_buffer_state;

/// Empties every buffer.
void ovl_rules_init(ovl_buffer_state *s, int32_t buffers);

/// Control enters `cluster`. Returns the buffer that must be loaded with it, or -1 when a
/// buffer holds it already. The state records the cluster as loaded either way.
int32_t ovl_rules_enter(ovl_buffer_state *s, int32_t cluster);

/// The buffer holding `cluster`, or -1.
int32_t ovl_rules_find(const ovl_buffer_state *s, int32_t cluster);

#endif
