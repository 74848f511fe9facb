/* strsearch.c - find every occurrence of a pattern in generated text with
 * three algorithms (naive, Knuth-Morris-Pratt, Boyer-Moore-Horspool) and
 * check that they agree.
 *
 * usage: strsearch PATTERN SIZE [ALGO]
 *   PATTERN  string to look for (1..64 characters)
 *   SIZE     length of the generated text in bytes (1..1000000)
 *   ALGO     all (default) | naive | kmp | bmh
 * exits 3 when the pattern does not occur, 4 if the algorithms disagree.
 */
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#define MAXPAT 64

/* Text from a tiny word list, so natural-looking patterns occur. */
__attribute__((noinline)) static void gen_text(char *t, size_t n)
{
    static const char *words[] = {
        "sensor", "reading", "valve", "open", "closed", "pump", "flow",
        "alarm", "reset", "level", "high", "low", "motor", "stop", "start",
        "timer", "tick", "fault", "ok", "status",
    };
    uint32_t s = 0xC0FFEEu;
    size_t i = 0;
    while (i < n) {
        s = s * 1664525u + 1013904223u;
        const char *w = words[(s >> 16) % 20];
        while (*w && i < n)
            t[i++] = *w++;
        if (i < n)
            t[i++] = ((s >> 8) & 7) == 0 ? '\n' : ' ';
    }
}

__attribute__((noinline)) static long search_naive(const char *t, size_t n, const char *p, size_t m,
                                                   uint32_t *hash)
{
    long count = 0;
    for (size_t i = 0; i + m <= n; i++) {
        size_t j = 0;
        while (j < m && t[i + j] == p[j])
            j++;
        if (j == m) {
            count++;
            *hash = *hash * 33 + (uint32_t)i;
        }
    }
    return count;
}

__attribute__((noinline)) static void kmp_prefix(const char *p, size_t m, int *fail)
{
    fail[0] = 0;
    size_t k = 0;
    for (size_t i = 1; i < m; i++) {
        while (k > 0 && p[i] != p[k])
            k = fail[k - 1];
        if (p[i] == p[k])
            k++;
        fail[i] = (int)k;
    }
}

__attribute__((noinline)) static long search_kmp(const char *t, size_t n, const char *p, size_t m,
                                                 uint32_t *hash)
{
    int fail[MAXPAT];
    kmp_prefix(p, m, fail);
    long count = 0;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        while (k > 0 && t[i] != p[k])
            k = fail[k - 1];
        if (t[i] == p[k])
            k++;
        if (k == m) {
            count++;
            *hash = *hash * 33 + (uint32_t)(i + 1 - m);
            k = fail[k - 1];
        }
    }
    return count;
}

__attribute__((noinline)) static long search_bmh(const char *t, size_t n, const char *p, size_t m,
                                                 uint32_t *hash)
{
    size_t shift[256];
    for (int c = 0; c < 256; c++)
        shift[c] = m;
    for (size_t j = 0; j + 1 < m; j++)
        shift[(unsigned char)p[j]] = m - 1 - j;
    long count = 0;
    size_t i = 0;
    while (i + m <= n) {
        unsigned char last = (unsigned char)t[i + m - 1];
        if (last == (unsigned char)p[m - 1] && memcmp(t + i, p, m - 1) == 0) {
            count++;
            *hash = *hash * 33 + (uint32_t)i;
        }
        i += shift[last];
    }
    return count;
}

/* line number and column of the first match, computed the slow way */
__attribute__((noinline)) static void first_location(const char *t, size_t n, const char *p, size_t m)
{
    const char *hit = NULL;
    for (size_t i = 0; i + m <= n && !hit; i++)
        if (memcmp(t + i, p, m) == 0)
            hit = t + i;
    if (!hit)
        return;
    long line = 1;
    const char *ls = t;
    for (const char *c = t; c < hit; c++)
        if (*c == '\n') {
            line++;
            ls = c + 1;
        }
    printf("first match: line %ld column %ld\n", line, (long)(hit - ls) + 1);
}

typedef long (*search_fn)(const char *, size_t, const char *, size_t, uint32_t *);

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s PATTERN SIZE [all|naive|kmp|bmh]\n", argv[0]);
        return 2;
    }
    const char *pat = argv[1];
    size_t m = strlen(pat);
    long sz = atol(argv[2]);
    const char *algo = argc >= 4 ? argv[3] : "all";
    if (m < 1 || m > MAXPAT || sz < 1 || sz > 1000000) {
        fprintf(stderr, "bad pattern or size\n");
        return 2;
    }
    static const struct { const char *name; search_fn fn; } algos[] = {
        { "naive", search_naive }, { "kmp", search_kmp }, { "bmh", search_bmh },
    };
    size_t n = (size_t)sz;
    char *text = malloc(n);
    gen_text(text, n);

    long ref = -1;
    uint32_t refhash = 0;
    int ran = 0, disagree = 0;
    for (size_t a = 0; a < 3; a++) {
        if (strcmp(algo, "all") != 0 && strcmp(algo, algos[a].name) != 0)
            continue;
        uint32_t h = 5381;
        long c = algos[a].fn(text, n, pat, m, &h);
        printf("%-5s: %ld matches, hash %08x\n", algos[a].name, c, h);
        if (ref < 0) {
            ref = c;
            refhash = h;
        } else if (c != ref || h != refhash) {
            disagree = 1;
        }
        ran++;
    }
    if (!ran) {
        fprintf(stderr, "unknown algorithm '%s'\n", algo);
        free(text);
        return 2;
    }
    int status = 0;
    if (disagree) {
        printf("algorithms DISAGREE\n");
        status = 4;
    } else if (ref == 0) {
        printf("pattern '%s' not found\n", pat);
        status = 3;
    } else {
        first_location(text, n, pat, m);
    }
    free(text);
    return status;
}
