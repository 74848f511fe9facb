/* fnptr.c - code pointers everywhere: a command dispatcher whose handlers
 * sit in a writable static table (.data), callbacks passed down through
 * other functions, and handler addresses taken in code and stored in a local
 * array before being called.
 *
 * usage: fnptr COMMANDS ROUNDS [EXPECT]
 *   COMMANDS  string of command letters, run in order ROUNDS times:
 *             i inc, d double, n negate, r rotate, s square-mod, c crc-step,
 *             m map (callback passed to a walker), p pipeline (local table),
 *             x install a replacement handler for 'i' at run time
 *   ROUNDS    repetitions (1..100000)
 *   EXPECT    optional expected final value (hex)
 * exits 3 on an unknown command letter or when the value differs from EXPECT.
 */
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

typedef uint32_t (*handler)(uint32_t);
typedef uint32_t (*binop)(uint32_t, uint32_t);

__attribute__((noinline)) static uint32_t h_inc(uint32_t v) { return v + 1; }
__attribute__((noinline)) static uint32_t h_double(uint32_t v) { return v * 2 + (v >> 31); }
__attribute__((noinline)) static uint32_t h_negate(uint32_t v) { return ~v + 1; }

__attribute__((noinline)) static uint32_t h_rotate(uint32_t v)
{
    return (v << 7) | (v >> 25);
}

__attribute__((noinline)) static uint32_t h_square(uint32_t v)
{
    uint64_t x = (uint64_t)(v % 65521u);
    return (uint32_t)((x * x) % 65521u) ^ (v & 0xFFFF0000u);
}

__attribute__((noinline)) static uint32_t h_crcstep(uint32_t v)
{
    for (int k = 0; k < 8; k++)
        v = (v >> 1) ^ (0x82F63B78u & (0u - (v & 1)));
    return v;
}

/* replacement for h_inc, installed by the 'x' command */
__attribute__((noinline)) static uint32_t h_inc_by_three(uint32_t v)
{
    return v + 3;
}

/* writable dispatch table: lives in .data, holds absolute code addresses */
static struct {
    char letter;
    handler fn;
} dispatch[] = {
    { 'i', h_inc },
    { 'd', h_double },
    { 'n', h_negate },
    { 'r', h_rotate },
    { 's', h_square },
    { 'c', h_crcstep },
};

#define NDISPATCH (sizeof(dispatch) / sizeof(dispatch[0]))

__attribute__((noinline)) static uint32_t op_xor(uint32_t a, uint32_t b) { return a ^ b; }
__attribute__((noinline)) static uint32_t op_add(uint32_t a, uint32_t b) { return a + b * 3; }

/* calls the callbacks it is handed */
__attribute__((noinline)) static uint32_t walk_array(const uint32_t *a, int n, handler f, binop combine,
                                                     uint32_t acc)
{
    for (int i = 0; i < n; i++)
        acc = combine(acc, f(a[i]));
    return acc;
}

/* passes the callback through one more level */
__attribute__((noinline)) static uint32_t map_reduce(uint32_t seed, handler f, binop combine)
{
    uint32_t a[8];
    for (int i = 0; i < 8; i++)
        a[i] = seed + (uint32_t)i * 0x9E3779B9u;
    return walk_array(a, 8, f, combine, seed);
}

__attribute__((noinline)) static handler pick_mapper(uint32_t v)
{
    return (v & 1) ? h_rotate : h_crcstep;
}

/* addresses taken in code and stored in a local array, then called */
__attribute__((noinline)) static uint32_t pipeline(uint32_t v)
{
    handler stages[4];
    stages[0] = &h_square;
    stages[1] = &h_negate;
    stages[2] = (v & 4) ? &h_double : &h_rotate;
    stages[3] = &h_crcstep;
    for (int i = 0; i < 4; i++)
        v = stages[i](v);
    return v;
}

__attribute__((noinline)) static handler lookup(char c)
{
    for (size_t i = 0; i < NDISPATCH; i++)
        if (dispatch[i].letter == c)
            return dispatch[i].fn;
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s COMMANDS ROUNDS [EXPECT]\n", argv[0]);
        return 2;
    }
    const char *cmds = argv[1];
    long rounds = atol(argv[2]);
    if (rounds < 1 || rounds > 100000) {
        fprintf(stderr, "ROUNDS out of range\n");
        return 2;
    }
    uint32_t v = 1;
    long counts[128];
    memset(counts, 0, sizeof(counts));
    for (long r = 0; r < rounds; r++) {
        for (const char *c = cmds; *c; c++) {
            unsigned char uc = (unsigned char)*c;
            if (uc >= 128) {
                printf("unknown command '\\x%02x'\n", uc);
                return 3;
            }
            counts[uc]++;
            if (uc == 'm') {
                v = map_reduce(v, pick_mapper(v), (v & 2) ? op_xor : op_add);
            } else if (uc == 'p') {
                v = pipeline(v);
            } else if (uc == 'x') {
                dispatch[0].fn = h_inc_by_three;
            } else {
                handler h = lookup(*c);
                if (!h) {
                    printf("unknown command '%c' at round %ld\n", *c, r);
                    return 3;
                }
                v = h(v);
            }
        }
    }
    printf("commands \"%s\" x %ld: value %08x\n", cmds, rounds, v);
    for (int k = 0; k < 128; k++)
        if (counts[k])
            printf("  %c: %ld\n", k, counts[k]);
    if (argc >= 4) {
        uint32_t want = (uint32_t)strtoul(argv[3], NULL, 16);
        if (want != v) {
            printf("expected %08x: MISMATCH\n", want);
            return 3;
        }
        printf("expected value: ok\n");
    }
    return 0;
}
