#include "ovl_rules.h"

// Freestanding: no libc, so the rewriter can place this code in an image as it is.

void ovl_rules_init(ovl_buffer_state *s, int32_t buffers) {
    if (buffers < 1) buffers = 1;
    if (buffers > OVL_MAX_BUFFERS) buffers = OVL_MAX_BUFFERS;
    s->buffers = buffers;
    s->clock = 0;
    for (int32_t i = 0; i < OVL_MAX_BUFFERS; i++) {
        s->holds[i] = -1;
        s->used[i] = 0;
    }
}

int32_t ovl_rules_find(const ovl_buffer_state *s, int32_t cluster) {
    for (int32_t i = 0; i < s->buffers; i++)
        if (s->holds[i] == cluster) return i;
    return -1;
}

int32_t ovl_rules_enter(ovl_buffer_state *s, int32_t cluster) {
    s->clock++;
    // Rule 1: already there, no load.
    if (s->holds[0] == cluster) {
        s->used[0] = s->clock;
        return -1;
    }
    int32_t victim = 0;
    for (int32_t i = 1; i < s->buffers; i++) {
        if (s->holds[i] == cluster) {
            s->used[i] = s->clock;
            return -1;
        }
        // Rule 3: an empty buffer first, else the least recently entered.
        if (s->holds[victim] != -1 && (s->holds[i] == -1 || s->used[i] < s->used[victim])) victim = i;
    }
    s->holds[victim] = cluster;
    s->used[victim] = s->clock;
    return victim;
}
