/* jumptab.c - packet processing where a rarely used diagnostic handler
 * contains a dense switch (a jump table). Normal packets only go through the
 * hot checksum/route path; the diagnostic handler runs only when diagnostic
 * packets are generated (every K-th packet, K from the command line).
 *
 * usage: jumptab PACKETS DIAG_EVERY
 *   PACKETS     number of generated packets (1..100000)
 *   DIAG_EVERY  0 = never send diagnostic packets, otherwise every K-th
 * exits 3 if a diagnostic command reports a fault (sub-command 13).
 */
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

struct packet {
    uint8_t type;       /* 0..3 data, 7 diagnostic */
    uint8_t sub;        /* diagnostic sub-command */
    uint16_t len;
    uint8_t payload[32];
};

struct device {
    uint32_t regs[16];
    uint32_t counters[4];
    uint32_t route_hash;
    int faults;
    char log[64];
};

static uint32_t lfsr = 0xACE1u;

__attribute__((noinline)) static uint32_t rnd(void)
{
    lfsr = lfsr * 1664525u + 1013904223u;
    return lfsr >> 8;
}

__attribute__((noinline)) static void make_packet(struct packet *p, long i, long diag_every)
{
    uint32_t r = rnd();
    if (diag_every > 0 && i % diag_every == diag_every - 1) {
        p->type = 7;
        p->sub = (uint8_t)(r % 14);
    } else {
        p->type = (uint8_t)(r & 3);
        p->sub = 0;
    }
    p->len = (uint16_t)(8 + (r >> 4) % 24);
    for (int k = 0; k < p->len; k++)
        p->payload[k] = (uint8_t)(rnd() >> 3);
}

__attribute__((noinline)) static uint16_t checksum(const struct packet *p)
{
    uint32_t s = p->type;
    for (int k = 0; k < p->len; k += 2)
        s += (uint32_t)p->payload[k] << 8 | p->payload[k + 1];
    while (s >> 16)
        s = (s & 0xFFFF) + (s >> 16);
    return (uint16_t)~s;
}

__attribute__((noinline)) static void route(struct device *d, const struct packet *p, uint16_t sum)
{
    d->counters[p->type & 3]++;
    d->route_hash = (d->route_hash ^ sum) * 0x01000193u;
}

__attribute__((noinline)) static uint32_t popcount_slow(uint32_t x)
{
    uint32_t n = 0;
    while (x) {
        x &= x - 1;
        n++;
    }
    return n;
}

/* The cold function with the dense switch. */
__attribute__((noinline)) static int diag_command(struct device *d, const struct packet *p)
{
    uint32_t a = p->payload[0] & 15, b = p->payload[1];
    switch (p->sub) {
    case 0:                                   /* read register */
        d->regs[15] = d->regs[a];
        break;
    case 1:                                   /* write register */
        d->regs[a] = b | (uint32_t)p->payload[2] << 8;
        break;
    case 2:                                   /* add */
        d->regs[a] += b;
        break;
    case 3:                                   /* xor with payload word */
        d->regs[a] ^= (uint32_t)p->payload[2] << 16 | b;
        break;
    case 4:                                   /* shift left */
        d->regs[a] <<= (b & 7);
        break;
    case 5:                                   /* shift right */
        d->regs[a] >>= (b & 7);
        break;
    case 6:                                   /* population count */
        d->regs[15] = popcount_slow(d->regs[a]);
        break;
    case 7:                                   /* clear counters */
        memset(d->counters, 0, sizeof(d->counters));
        break;
    case 8:                                   /* swap two registers */
        {
            uint32_t t = d->regs[a];
            d->regs[a] = d->regs[b & 15];
            d->regs[b & 15] = t;
        }
        break;
    case 9:                                   /* log a message */
        snprintf(d->log, sizeof(d->log), "diag r%u=%08x", a, d->regs[a]);
        break;
    case 10:                                  /* multiply-accumulate */
        d->regs[15] += d->regs[a] * (b + 1);
        break;
    case 11:                                  /* reset route hash */
        d->route_hash = 2166136261u;
        break;
    case 12:                                  /* compare */
        d->regs[15] = d->regs[a] > d->regs[b & 15] ? 1 : d->regs[a] < d->regs[b & 15] ? 2 : 0;
        break;
    case 13:                                  /* self-test: fails when payload says so */
        if (b > 200) {
            d->faults++;
            snprintf(d->log, sizeof(d->log), "self-test fault %u", b);
            return -1;
        }
        break;
    default:
        return -2;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s PACKETS DIAG_EVERY\n", argv[0]);
        return 2;
    }
    long n = atol(argv[1]), every = atol(argv[2]);
    if (n < 1 || n > 100000 || every < 0) {
        fprintf(stderr, "bad arguments\n");
        return 2;
    }
    struct device d;
    memset(&d, 0, sizeof(d));
    d.route_hash = 2166136261u;
    long diag = 0, bad = 0;
    struct packet p;
    for (long i = 0; i < n; i++) {
        make_packet(&p, i, every);
        uint16_t sum = checksum(&p);
        if (p.type == 7) {
            diag++;
            if (diag_command(&d, &p) < 0)
                bad++;
        } else {
            route(&d, &p, sum);
        }
    }
    printf("packets=%ld diag=%ld failed=%ld route=%08x counters=%u,%u,%u,%u\n",
           n, diag, bad, d.route_hash, d.counters[0], d.counters[1], d.counters[2],
           d.counters[3]);
    uint32_t rs = 0;
    for (int k = 0; k < 16; k++)
        rs = rs * 31 + d.regs[k];
    printf("registers=%08x log=\"%s\"\n", rs, d.log);
    return d.faults ? 3 : 0;
}
