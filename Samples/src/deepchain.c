/* deepchain.c - deep call chains that alternate between small, frequently
 * used helpers (the kind of code that would be kept resident) and thirty
 * distinct, rarely used functions:
 *     f1 -> step_a -> f2 -> step_b -> f3 -> step_a -> ... -> f30
 * step_a/step_b receive the next function as a pointer, and step_a calls
 * the cold audit() directly when the running value hits a pattern.
 * Every f<k> also calls the leaf helpers mix()/fold() directly.
 *
 * usage: deepchain DEPTH ROUNDS
 *   DEPTH   how far down the chain to go (1..30)
 *   ROUNDS  how many chains to run (1..100000)
 * exits 3 if the audit log overflowed (more than 64 audit hits).
 */
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>

typedef uint32_t (*chain_fn)(uint32_t, int);

static uint32_t audit_log[64];
static int audit_count;
static long helper_calls;

__attribute__((noinline)) static uint32_t mix(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x7feb352du;
    x ^= x >> 15;
    return x;
}

__attribute__((noinline)) static uint32_t fold(uint32_t x, uint32_t k)
{
    return (x ^ k) + (x >> 7) * 9u;
}

/* cold: only reached from step_a when the value matches a pattern */
__attribute__((noinline)) static void audit(uint32_t x, int left)
{
    if (audit_count < 64)
        audit_log[audit_count] = x ^ (uint32_t)left;
    audit_count++;
}

__attribute__((noinline)) static uint32_t step_a(uint32_t x, chain_fn next, int left)
{
    helper_calls++;
    if ((x & 0x3FF) == 0x155)
        audit(x, left);
    return next(x + 1, left) * 3u;
}

__attribute__((noinline)) static uint32_t step_b(uint32_t x, chain_fn next, int left)
{
    helper_calls++;
    uint32_t r = next(x ^ 0xA5A5u, left);
    return r + (r >> 11);
}

/* forward declarations: each f<k> hands f<k+1> to a helper */
typedef uint32_t chain_fn_t(uint32_t, int);
static chain_fn_t f2, f3, f4, f5, f6, f7;
static chain_fn_t f8, f9, f10, f11, f12, f13;
static chain_fn_t f14, f15, f16, f17, f18, f19;
static chain_fn_t f20, f21, f22, f23, f24, f25;
static chain_fn_t f26, f27, f28, f29, f30;

__attribute__((noinline)) static uint32_t f1(uint32_t x, int left)
{
    uint32_t y = fold(mix(x), 407u);
    if (y > 0x269e0d37u)
        y -= 0xf2a74de4u;
    else
        y = ~y;
    if (left <= 1)
        return y;
    return step_a(y, f2, left - 1) ^ 0x2b0537e6u;
}

__attribute__((noinline)) static uint32_t f2(uint32_t x, int left)
{
    uint32_t y = x;
    for (int i = 0; i < 2; i++)
        y = mix(y) + (uint32_t)i * 551u;
    if (left <= 1)
        return y;
    return step_b(y, f3, left - 1) ^ 0x9c653938u;
}

__attribute__((noinline)) static uint32_t f3(uint32_t x, int left)
{
    uint32_t y = mix(x) - 0x9531985du;
    y ^= y >> 8;
    y *= 0x0ed90475u | 1u;
    if (left <= 1)
        return y;
    return step_a(y, f4, left - 1) ^ 0x1df9fd78u;
}

__attribute__((noinline)) static uint32_t f4(uint32_t x, int left)
{
    uint32_t y = fold(x, 0x099950d8u);
    y += (y & 0xFF) * 447u;
    if (left <= 1)
        return y;
    return step_b(y, f5, left - 1) ^ 0x7e62aa0au;
}

__attribute__((noinline)) static uint32_t f5(uint32_t x, int left)
{
    uint32_t y = mix(x + 0x3d9c1724u) * 567u;
    if (y & 1)
        y ^= 0x1738f7d9u;
    if (left <= 1)
        return y;
    return step_a(y, f6, left - 1) ^ 0x0f17a300u;
}

__attribute__((noinline)) static uint32_t f6(uint32_t x, int left)
{
    uint32_t y = x ^ (x >> 3);
    y = fold(y, 0x90c192cfu) + mix(y ^ 129u);
    if (left <= 1)
        return y;
    return step_b(y, f7, left - 1) ^ 0x37dc76fbu;
}

__attribute__((noinline)) static uint32_t f7(uint32_t x, int left)
{
    uint32_t y = mix(x) - 0xa09f76b5u;
    y ^= y >> 13;
    y *= 0x953f48f1u | 1u;
    if (left <= 1)
        return y;
    return step_a(y, f8, left - 1) ^ 0xc4aaeac1u;
}

__attribute__((noinline)) static uint32_t f8(uint32_t x, int left)
{
    uint32_t y = mix(x ^ 0x95e60af5u);
    y = (y << 12) | (y >> 20);
    if (left <= 1)
        return y;
    return step_b(y, f9, left - 1) ^ 0x49952399u;
}

__attribute__((noinline)) static uint32_t f9(uint32_t x, int left)
{
    uint32_t y = mix(x + 0x8e81973eu) * 139u;
    if (y & 1)
        y ^= 0xdbc496cbu;
    if (left <= 1)
        return y;
    return step_a(y, f10, left - 1) ^ 0x211c70cfu;
}

__attribute__((noinline)) static uint32_t f10(uint32_t x, int left)
{
    uint32_t y = x;
    for (int i = 0; i < 4; i++)
        y = mix(y) + (uint32_t)i * 123u;
    if (left <= 1)
        return y;
    return step_b(y, f11, left - 1) ^ 0xbd0561e6u;
}

__attribute__((noinline)) static uint32_t f11(uint32_t x, int left)
{
    uint32_t y = mix(x);
    switch (y & 3) {
    case 0: y += 0x8f6d0558u; break;
    case 1: y ^= 701u; break;
    default: y = (y >> 7) | 1u; break;
    }
    if (left <= 1)
        return y;
    return step_a(y, f12, left - 1) ^ 0x3f63af83u;
}

__attribute__((noinline)) static uint32_t f12(uint32_t x, int left)
{
    uint32_t y = fold(x, 0x94e3bf91u);
    y += (y & 0xFF) * 657u;
    if (left <= 1)
        return y;
    return step_b(y, f13, left - 1) ^ 0x65dc9f50u;
}

__attribute__((noinline)) static uint32_t f13(uint32_t x, int left)
{
    uint32_t y = mix(x + 0x18f135d2u) * 731u;
    if (y & 1)
        y ^= 0x8c38fb29u;
    if (left <= 1)
        return y;
    return step_a(y, f14, left - 1) ^ 0x6415479cu;
}

__attribute__((noinline)) static uint32_t f14(uint32_t x, int left)
{
    uint32_t y = x ^ (x >> 12);
    y = fold(y, 0x9e7769b1u) + mix(y ^ 213u);
    if (left <= 1)
        return y;
    return step_b(y, f15, left - 1) ^ 0xeab477d2u;
}

__attribute__((noinline)) static uint32_t f15(uint32_t x, int left)
{
    uint32_t y = mix(x);
    switch (y & 3) {
    case 0: y += 0x881ed162u; break;
    case 1: y ^= 797u; break;
    default: y = (y >> 13) | 1u; break;
    }
    if (left <= 1)
        return y;
    return step_a(y, f16, left - 1) ^ 0xdf1582b0u;
}

__attribute__((noinline)) static uint32_t f16(uint32_t x, int left)
{
    uint32_t y = mix(x ^ 0x95e761d1u);
    y = (y << 10) | (y >> 22);
    if (left <= 1)
        return y;
    return step_b(y, f17, left - 1) ^ 0x7f1b103cu;
}

__attribute__((noinline)) static uint32_t f17(uint32_t x, int left)
{
    uint32_t y = fold(mix(x), 187u);
    if (y > 0xcb5c7427u)
        y -= 0x3f98e277u;
    else
        y = ~y;
    if (left <= 1)
        return y;
    return step_a(y, f18, left - 1) ^ 0x14a0f9e7u;
}

__attribute__((noinline)) static uint32_t f18(uint32_t x, int left)
{
    uint32_t y = x;
    for (int i = 0; i < 4; i++)
        y = mix(y) + (uint32_t)i * 309u;
    if (left <= 1)
        return y;
    return step_b(y, f19, left - 1) ^ 0x2a96fb1au;
}

__attribute__((noinline)) static uint32_t f19(uint32_t x, int left)
{
    uint32_t y = mix(x);
    switch (y & 3) {
    case 0: y += 0xe00902c7u; break;
    case 1: y ^= 749u; break;
    default: y = (y >> 10) | 1u; break;
    }
    if (left <= 1)
        return y;
    return step_a(y, f20, left - 1) ^ 0x72fdf202u;
}

__attribute__((noinline)) static uint32_t f20(uint32_t x, int left)
{
    uint32_t y = fold(x, 0x9be4bcfcu);
    y += (y & 0xFF) * 77u;
    if (left <= 1)
        return y;
    return step_b(y, f21, left - 1) ^ 0x66d22876u;
}

__attribute__((noinline)) static uint32_t f21(uint32_t x, int left)
{
    uint32_t y = fold(mix(x), 777u);
    if (y > 0x2a3af4d4u)
        y -= 0x6b0a18e8u;
    else
        y = ~y;
    if (left <= 1)
        return y;
    return step_a(y, f22, left - 1) ^ 0x8ca81811u;
}

__attribute__((noinline)) static uint32_t f22(uint32_t x, int left)
{
    uint32_t y = x ^ (x >> 5);
    y = fold(y, 0x7d2caf82u) + mix(y ^ 433u);
    if (left <= 1)
        return y;
    return step_b(y, f23, left - 1) ^ 0x4720771fu;
}

__attribute__((noinline)) static uint32_t f23(uint32_t x, int left)
{
    uint32_t y = mix(x) - 0x13deef86u;
    y ^= y >> 13;
    y *= 0xc3baea9eu | 1u;
    if (left <= 1)
        return y;
    return step_a(y, f24, left - 1) ^ 0xe2257159u;
}

__attribute__((noinline)) static uint32_t f24(uint32_t x, int left)
{
    uint32_t y = mix(x ^ 0x57124242u);
    y = (y << 8) | (y >> 24);
    if (left <= 1)
        return y;
    return step_b(y, f25, left - 1) ^ 0x230d977eu;
}

__attribute__((noinline)) static uint32_t f25(uint32_t x, int left)
{
    uint32_t y = fold(mix(x), 469u);
    if (y > 0xcc011cddu)
        y -= 0x9474031bu;
    else
        y = ~y;
    if (left <= 1)
        return y;
    return step_a(y, f26, left - 1) ^ 0xd1bc52d9u;
}

__attribute__((noinline)) static uint32_t f26(uint32_t x, int left)
{
    uint32_t y = x;
    for (int i = 0; i < 4; i++)
        y = mix(y) + (uint32_t)i * 487u;
    if (left <= 1)
        return y;
    return step_b(y, f27, left - 1) ^ 0x6e36aab0u;
}

__attribute__((noinline)) static uint32_t f27(uint32_t x, int left)
{
    uint32_t y = mix(x) - 0x10a3d6b2u;
    y ^= y >> 13;
    y *= 0x0f88080bu | 1u;
    if (left <= 1)
        return y;
    return step_a(y, f28, left - 1) ^ 0xdd2e1609u;
}

__attribute__((noinline)) static uint32_t f28(uint32_t x, int left)
{
    uint32_t y = fold(x, 0xa5aa3c81u);
    y += (y & 0xFF) * 699u;
    if (left <= 1)
        return y;
    return step_b(y, f29, left - 1) ^ 0x8cdb305fu;
}

__attribute__((noinline)) static uint32_t f29(uint32_t x, int left)
{
    uint32_t y = mix(x + 0xb774eb52u) * 911u;
    if (y & 1)
        y ^= 0x62c33a4fu;
    if (left <= 1)
        return y;
    return step_a(y, f30, left - 1) ^ 0x47469a4du;
}

__attribute__((noinline)) static uint32_t f30(uint32_t x, int left)
{
    uint32_t y = x ^ (x >> 8);
    y = fold(y, 0xf0ce5835u) + mix(y ^ 475u);
    (void)left;
    return y;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s DEPTH ROUNDS\n", argv[0]);
        return 2;
    }
    int depth = atoi(argv[1]);
    long rounds = atol(argv[2]);
    if (depth < 1 || depth > 30 || rounds < 1 || rounds > 100000) {
        fprintf(stderr, "bad arguments\n");
        return 2;
    }
    uint32_t acc = 0;
    for (long r = 0; r < rounds; r++)
        acc = acc * 31u + f1((uint32_t)r * 2654435761u, depth);
    printf("depth %d, %ld rounds: result %08x, %ld helper calls, %d audits\n",
           depth, rounds, acc, helper_calls, audit_count);
    for (int i = 0; i < audit_count && i < 8; i++)
        printf("  audit %d: %08x\n", i, audit_log[i]);
    if (audit_count > 64) {
        printf("audit log overflow\n");
        return 3;
    }
    return 0;
}
