/* qsortcb.c - a parts catalogue looked up either by linear scan or by
 * qsort() + bsearch(). The comparator callbacks are handed to the C library
 * and are only ever called in "sorted" mode, so they are cold in "scan" mode.
 *
 * usage: qsortcb MODE COUNT [PART]
 *   MODE   scan | sorted
 *   COUNT  number of catalogue entries (1..50000)
 *   PART   optional part number to look up; exits 3 if it is not listed
 */
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

struct part {
    uint32_t number;
    uint16_t stock;
    uint16_t price;     /* cents */
};

/* qsort comparator: by part number, then stock, then price */
__attribute__((noinline)) static int cmp_part(const void *a, const void *b)
{
    const struct part *x = a, *y = b;
    if (x->number != y->number)
        return x->number < y->number ? -1 : 1;
    if (x->stock != y->stock)
        return (int)x->stock - (int)y->stock;
    return (int)x->price - (int)y->price;
}

/* bsearch comparator: key is a bare part number */
__attribute__((noinline)) static int cmp_key(const void *key, const void *elem)
{
    uint32_t k = *(const uint32_t *)key;
    const struct part *e = elem;
    return (k > e->number) - (k < e->number);
}

__attribute__((noinline)) static void make_catalogue(struct part *c, int n)
{
    uint32_t s = 99991u;
    for (int i = 0; i < n; i++) {
        s = s * 22695477u + 1u;
        c[i].number = 100000u + (s >> 9) % 900000u;
        c[i].stock = (uint16_t)((s >> 3) % 500);
        c[i].price = (uint16_t)(99 + (s >> 12) % 20000);
    }
}

__attribute__((noinline)) static const struct part *find_scan(const struct part *c, int n, uint32_t num)
{
    const struct part *best = NULL;
    for (int i = 0; i < n; i++)
        if (c[i].number == num && (!best || c[i].stock < best->stock ||
                                   (c[i].stock == best->stock && c[i].price < best->price)))
            best = &c[i];
    return best;
}

__attribute__((noinline)) static const struct part *find_sorted(const struct part *c, int n, uint32_t num)
{
    const struct part *hit = bsearch(&num, c, (size_t)n, sizeof(*c), cmp_key);
    /* bsearch may land on any duplicate: step back to the first (smallest
     * stock, then price), which is the entry find_scan() picks as well */
    while (hit && hit > c && hit[-1].number == num)
        hit--;
    return hit;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s scan|sorted COUNT [PART]\n", argv[0]);
        return 2;
    }
    int sorted = strcmp(argv[1], "sorted") == 0;
    if (!sorted && strcmp(argv[1], "scan") != 0) {
        fprintf(stderr, "unknown mode '%s'\n", argv[1]);
        return 2;
    }
    int n = atoi(argv[2]);
    if (n < 1 || n > 50000) {
        fprintf(stderr, "COUNT out of range\n");
        return 2;
    }
    struct part *c = malloc(sizeof(*c) * n);
    make_catalogue(c, n);

    /* queries: every 7th catalogue entry, and neighbours that may be absent;
     * chosen before sorting so both modes answer the same questions */
    int queries = (n + 6) / 7, found = 0;
    uint32_t *want = malloc(sizeof(*want) * queries);
    for (int q = 0; q < queries; q++)
        want[q] = c[q * 7].number + ((q & 1) ? 0 : 1);

    if (sorted)
        qsort(c, (size_t)n, sizeof(*c), cmp_part);

    uint64_t value = 0;
    for (int q = 0; q < queries; q++) {
        const struct part *p = sorted ? find_sorted(c, n, want[q]) : find_scan(c, n, want[q]);
        if (p) {
            found++;
            value += (uint64_t)p->stock * p->price;
        }
    }
    printf("%s: %d entries, %d queries, %d found, stock value %llu.%02llu\n",
           argv[1], n, queries, found, (unsigned long long)(value / 100),
           (unsigned long long)(value % 100));

    int status = 0;
    if (argc >= 4) {
        uint32_t num = (uint32_t)strtoul(argv[3], NULL, 10);
        const struct part *p = sorted ? find_sorted(c, n, num) : find_scan(c, n, num);
        if (p) {
            printf("part %u: stock %u, price %u.%02u\n", p->number, p->stock,
                   p->price / 100, p->price % 100);
        } else {
            printf("part %u: not found\n", num);
            status = 3;
        }
    }
    free(want);
    free(c);
    return status;
}
