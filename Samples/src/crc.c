/* crc.c - checksum workload: table-driven CRC-32, Adler-32 and FNV-1a
 * over a pseudo-random buffer.
 *
 * usage: crc KB [verify-hex]
 *   KB          size of the generated buffer in KiB (1..4096)
 *   verify-hex  optional expected CRC-32; on mismatch the program exits 3
 */
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

static uint32_t crc_table[256];

__attribute__((noinline)) static void crc_build_table(void)
{
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[n] = c;
    }
}

__attribute__((noinline)) static uint32_t crc32_update(uint32_t crc, const uint8_t *p, size_t len)
{
    crc = ~crc;
    while (len--)
        crc = crc_table[(crc ^ *p++) & 0xFF] ^ (crc >> 8);
    return ~crc;
}

/* Bitwise reference implementation, only used for the self-test. */
__attribute__((noinline)) static uint32_t crc32_bitwise(const uint8_t *p, size_t len)
{
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < len; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1)));
    }
    return ~crc;
}

__attribute__((noinline)) static uint32_t adler32(const uint8_t *p, size_t len)
{
    const uint32_t mod = 65521;
    uint32_t a = 1, b = 0;
    while (len > 0) {
        size_t chunk = len < 3800 ? len : 3800;
        len -= chunk;
        while (chunk--) {
            a += *p++;
            b += a;
        }
        a %= mod;
        b %= mod;
    }
    return (b << 16) | a;
}

__attribute__((noinline)) static uint32_t fnv1a(const uint8_t *p, size_t len)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 16777619u;
    }
    return h;
}

/* xorshift32 generator: deterministic test data */
static uint32_t rng_state = 0x12345678u;

__attribute__((noinline)) static uint32_t rng_next(void)
{
    uint32_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    rng_state = x;
    return x;
}

__attribute__((noinline)) static void fill_buffer(uint8_t *buf, size_t len)
{
    size_t i = 0;
    while (i + 4 <= len) {
        uint32_t r = rng_next();
        memcpy(buf + i, &r, 4);
        i += 4;
    }
    while (i < len)
        buf[i++] = (uint8_t)rng_next();
}

__attribute__((noinline)) static int self_test(void)
{
    static const char check[] = "123456789";
    uint32_t t = crc32_update(0, (const uint8_t *)check, 9);
    uint32_t b = crc32_bitwise((const uint8_t *)check, 9);
    uint32_t a = adler32((const uint8_t *)check, 9);
    printf("self-test: crc32=%08x bitwise=%08x adler32=%08x\n", t, b, a);
    if (t != 0xCBF43926u || b != t || a != 0x091E01DEu) {
        printf("self-test FAILED\n");
        return 0;
    }
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s KB [expected-crc-hex]\n", argv[0]);
        return 2;
    }
    long kb = strtol(argv[1], NULL, 10);
    if (kb < 1 || kb > 4096) {
        fprintf(stderr, "KB out of range\n");
        return 2;
    }
    crc_build_table();
    if (!self_test())
        return 4;

    size_t len = (size_t)kb * 1024;
    uint8_t *buf = malloc(len);
    if (!buf)
        return 5;
    fill_buffer(buf, len);

    /* whole-buffer checksums */
    uint32_t crc = crc32_update(0, buf, len);
    uint32_t adl = adler32(buf, len);
    uint32_t fnv = fnv1a(buf, len);

    /* incremental CRC over 1 KiB blocks must agree with the one-shot value */
    uint32_t inc = 0;
    for (size_t off = 0; off < len; off += 1024)
        inc = crc32_update(inc, buf + off, 1024);

    printf("bytes=%zu crc32=%08x adler32=%08x fnv1a=%08x incremental=%s\n",
           len, crc, adl, fnv, inc == crc ? "ok" : "MISMATCH");

    int status = 0;
    if (argc >= 3) {
        uint32_t want = (uint32_t)strtoul(argv[2], NULL, 16);
        if (want != crc) {
            printf("verify: expected %08x got %08x: MISMATCH\n", want, crc);
            status = 3;
        } else {
            printf("verify: ok\n");
        }
    }
    free(buf);
    return status;
}
