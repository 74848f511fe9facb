/* dijkstra.c - single-source shortest paths on a generated sparse graph,
 * stored as adjacency arrays (CSR), with a binary min-heap.
 *
 * usage: dijkstra NODES SEED [TARGET]
 *   NODES   number of vertices (2..100000)
 *   SEED    generator seed; seed 0 builds a graph with unreachable vertices
 *   TARGET  optional vertex to print a path for; exits 3 if unreachable
 */
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>

#define INF 0x3fffffff

struct graph {
    int n, m;
    int *start;   /* n+1 offsets into dst/w */
    int *dst;
    int *w;
};

struct heap {
    int size;
    int *node;
    int *key;
    int *pos;     /* position of node in heap, -1 if absent */
};

static uint32_t seed_state;

__attribute__((noinline)) static uint32_t lcg(void)
{
    seed_state = seed_state * 1103515245u + 12345u;
    return (seed_state >> 8) & 0xFFFFFF;
}

/* Each vertex gets a ring edge to the next vertex plus a few random edges.
 * With seed 0 the ring is cut in half, so the upper half is unreachable. */
__attribute__((noinline)) static void build_graph(struct graph *g, int n, uint32_t seed)
{
    int extra = 3;
    int split = (seed == 0);
    seed_state = seed ? seed : 7;
    g->n = n;
    g->start = malloc(sizeof(int) * (n + 1));
    g->dst = malloc(sizeof(int) * n * (extra + 1));
    g->w = malloc(sizeof(int) * n * (extra + 1));
    int m = 0;
    for (int v = 0; v < n; v++) {
        g->start[v] = m;
        int half = n / 2;
        if (!(split && v == half - 1)) {
            g->dst[m] = (v + 1) % n;
            g->w[m++] = 1 + (int)(lcg() % 50);
        }
        for (int k = 0; k < extra; k++) {
            int to = (int)(lcg() % (uint32_t)n);
            if (split && (v < half) != (to < half))
                continue;
            g->dst[m] = to;
            g->w[m++] = 5 + (int)(lcg() % 200);
        }
    }
    g->start[n] = m;
    g->m = m;
}

static void heap_swap(struct heap *h, int i, int j)
{
    int a = h->node[i], b = h->node[j];
    h->node[i] = b; h->node[j] = a;
    int k = h->key[i]; h->key[i] = h->key[j]; h->key[j] = k;
    h->pos[b] = i;
    h->pos[a] = j;
}

__attribute__((noinline)) static void heap_up(struct heap *h, int i)
{
    while (i > 0) {
        int p = (i - 1) / 2;
        if (h->key[p] <= h->key[i])
            break;
        heap_swap(h, i, p);
        i = p;
    }
}

__attribute__((noinline)) static void heap_down(struct heap *h, int i)
{
    for (;;) {
        int l = 2 * i + 1, r = l + 1, s = i;
        if (l < h->size && h->key[l] < h->key[s]) s = l;
        if (r < h->size && h->key[r] < h->key[s]) s = r;
        if (s == i)
            break;
        heap_swap(h, i, s);
        i = s;
    }
}

__attribute__((noinline)) static void heap_push_or_decrease(struct heap *h, int v, int key)
{
    int i = h->pos[v];
    if (i < 0) {
        i = h->size++;
        h->node[i] = v;
        h->pos[v] = i;
    }
    h->key[i] = key;
    heap_up(h, i);
}

__attribute__((noinline)) static int heap_pop(struct heap *h)
{
    int v = h->node[0];
    h->size--;
    if (h->size > 0) {
        heap_swap(h, 0, h->size);
        heap_down(h, 0);
    }
    h->pos[v] = -1;
    return v;
}

__attribute__((noinline)) static void dijkstra(const struct graph *g, int src, int *dist, int *prev)
{
    struct heap h;
    h.size = 0;
    h.node = malloc(sizeof(int) * g->n);
    h.key = malloc(sizeof(int) * g->n);
    h.pos = malloc(sizeof(int) * g->n);
    for (int v = 0; v < g->n; v++) {
        dist[v] = INF;
        prev[v] = -1;
        h.pos[v] = -1;
    }
    dist[src] = 0;
    heap_push_or_decrease(&h, src, 0);
    while (h.size > 0) {
        int u = heap_pop(&h);
        for (int e = g->start[u]; e < g->start[u + 1]; e++) {
            int v = g->dst[e];
            int nd = dist[u] + g->w[e];
            if (nd < dist[v]) {
                dist[v] = nd;
                prev[v] = u;
                heap_push_or_decrease(&h, v, nd);
            }
        }
    }
    free(h.node);
    free(h.key);
    free(h.pos);
}

__attribute__((noinline)) static int print_path(const int *prev, const int *dist, int target)
{
    if (dist[target] >= INF) {
        printf("path to %d: unreachable\n", target);
        return 3;
    }
    int len = 0;
    for (int v = target; v >= 0; v = prev[v])
        len++;
    int *path = malloc(sizeof(int) * len);
    int i = len;
    for (int v = target; v >= 0; v = prev[v])
        path[--i] = v;
    printf("path to %d (dist %d, %d hops):", target, dist[target], len - 1);
    for (i = 0; i < len; i++)
        printf(" %d", path[i]);
    printf("\n");
    free(path);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s NODES SEED [TARGET]\n", argv[0]);
        return 2;
    }
    int n = atoi(argv[1]);
    uint32_t seed = (uint32_t)strtoul(argv[2], NULL, 10);
    if (n < 2 || n > 100000) {
        fprintf(stderr, "NODES out of range\n");
        return 2;
    }
    struct graph g;
    build_graph(&g, n, seed);
    int *dist = malloc(sizeof(int) * n);
    int *prev = malloc(sizeof(int) * n);
    dijkstra(&g, 0, dist, prev);

    long long sum = 0;
    int reach = 0, maxd = 0, far = 0;
    for (int v = 0; v < n; v++) {
        if (dist[v] >= INF)
            continue;
        reach++;
        sum += dist[v];
        if (dist[v] > maxd) { maxd = dist[v]; far = v; }
    }
    printf("nodes=%d edges=%d reachable=%d sum=%lld max=%d (vertex %d)\n",
           n, g.m, reach, sum, maxd, far);

    int status = 0;
    if (argc >= 4) {
        int t = atoi(argv[3]);
        if (t < 0 || t >= n) {
            fprintf(stderr, "TARGET out of range\n");
            return 2;
        }
        status = print_path(prev, dist, t);
    }
    return status;
}
