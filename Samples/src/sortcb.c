/* sortcb.c - sorting sensor records: qsort() with comparators chosen from a
 * function-pointer table, checked against a hand-written merge sort.
 *
 * usage: sortcb COUNT KEY
 *   COUNT  number of records (1..200000)
 *   KEY    id | temp | name | multi   (which comparator to use)
 * exits 3 if KEY is unknown, 4 if qsort and merge sort disagree.
 */
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

struct record {
    uint32_t id;
    int16_t temp;      /* tenths of a degree */
    uint8_t station;
    char name[9];
};

typedef int (*cmp_fn)(const void *, const void *);

__attribute__((noinline)) static int cmp_id(const void *a, const void *b)
{
    const struct record *x = a, *y = b;
    return (x->id > y->id) - (x->id < y->id);
}

__attribute__((noinline)) static int cmp_temp(const void *a, const void *b)
{
    const struct record *x = a, *y = b;
    if (x->temp != y->temp)
        return x->temp < y->temp ? -1 : 1;
    return cmp_id(a, b);
}

__attribute__((noinline)) static int cmp_name(const void *a, const void *b)
{
    const struct record *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : cmp_id(a, b);
}

/* station ascending, then temperature descending, then id */
__attribute__((noinline)) static int cmp_multi(const void *a, const void *b)
{
    const struct record *x = a, *y = b;
    if (x->station != y->station)
        return x->station < y->station ? -1 : 1;
    if (x->temp != y->temp)
        return x->temp > y->temp ? -1 : 1;
    return cmp_id(a, b);
}

static const struct {
    const char *name;
    cmp_fn fn;
} comparators[] = {
    { "id", cmp_id },
    { "temp", cmp_temp },
    { "name", cmp_name },
    { "multi", cmp_multi },
};

static uint32_t rs = 2463534242u;

__attribute__((noinline)) static uint32_t rnd(void)
{
    rs ^= rs << 13;
    rs ^= rs >> 17;
    rs ^= rs << 5;
    return rs;
}

__attribute__((noinline)) static void make_records(struct record *r, int n)
{
    static const char syll[][3] = { "ka", "lo", "mi", "ne", "ru", "ta", "zo", "be" };
    for (int i = 0; i < n; i++) {
        uint32_t x = rnd();
        r[i].id = (uint32_t)(((uint64_t)(i + 1) * 741457u) % 1000003u);  /* unique: 1000003 is prime */
        r[i].temp = (int16_t)((int)(rnd() % 900) - 300);
        r[i].station = (uint8_t)(x >> 24) % 12;
        for (int k = 0; k < 4; k++)
            memcpy(r[i].name + 2 * k, syll[(x >> (3 * k)) & 7], 2);
        r[i].name[8] = '\0';
    }
}

__attribute__((noinline)) static void merge_sort(struct record *a, struct record *tmp, int n, cmp_fn cmp)
{
    if (n < 2)
        return;
    int mid = n / 2;
    merge_sort(a, tmp, mid, cmp);
    merge_sort(a + mid, tmp, n - mid, cmp);
    int i = 0, j = mid, k = 0;
    while (i < mid && j < n)
        tmp[k++] = cmp(&a[j], &a[i]) < 0 ? a[j++] : a[i++];
    while (i < mid)
        tmp[k++] = a[i++];
    while (j < n)
        tmp[k++] = a[j++];
    memcpy(a, tmp, sizeof(*a) * n);
}

__attribute__((noinline)) static uint32_t digest(const struct record *r, int n)
{
    uint32_t h = 0;
    for (int i = 0; i < n; i++)
        h = h * 31 + r[i].id + (uint32_t)(r[i].temp * 7) + r[i].station;
    return h;
}

__attribute__((noinline)) static void show(const struct record *r, int n, int count)
{
    for (int i = 0; i < n && i < count; i++)
        printf("  #%d id=%u temp=%s%d.%d st=%u name=%s\n", i, r[i].id,
               r[i].temp < 0 ? "-" : "", abs(r[i].temp) / 10, abs(r[i].temp) % 10,
               r[i].station, r[i].name);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s COUNT id|temp|name|multi\n", argv[0]);
        return 2;
    }
    int n = atoi(argv[1]);
    if (n < 1 || n > 200000) {
        fprintf(stderr, "COUNT out of range\n");
        return 2;
    }
    cmp_fn cmp = NULL;
    for (size_t i = 0; i < sizeof(comparators) / sizeof(comparators[0]); i++)
        if (strcmp(argv[2], comparators[i].name) == 0)
            cmp = comparators[i].fn;
    if (!cmp) {
        printf("unknown key '%s'\n", argv[2]);
        return 3;
    }

    struct record *a = malloc(sizeof(*a) * n);
    struct record *b = malloc(sizeof(*b) * n);
    struct record *tmp = malloc(sizeof(*tmp) * n);
    make_records(a, n);
    memcpy(b, a, sizeof(*a) * n);

    qsort(a, n, sizeof(*a), cmp);
    merge_sort(b, tmp, n, cmp);

    int bad = 0;
    for (int i = 1; i < n; i++)
        if (cmp(&a[i - 1], &a[i]) > 0)
            bad++;
    uint32_t da = digest(a, n), db = digest(b, n);
    printf("sorted %d records by %s: qsort=%08x merge=%08x order-errors=%d\n",
           n, argv[2], da, db, bad);
    show(a, n, 3);
    free(a);
    free(b);
    free(tmp);
    if (bad || da != db) {
        printf("MISMATCH\n");
        return 4;
    }
    return 0;
}
