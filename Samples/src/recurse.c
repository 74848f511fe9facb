/* recurse.c - mutual recursion: a recursive-descent expression evaluator
 * (expr -> term -> factor -> unary -> primary -> expr ...) over a generated,
 * deeply nested expression, and Hofstadter's Female/Male sequences.
 *
 * usage: recurse MODE N
 *   expr N   evaluate an expression nested N levels deep (N <= 2000)
 *   bad N    same, but the expression has a missing ')': exits 3
 *   hof N    Hofstadter F(i), M(i) for i < N (mutually recursive)
 *   depth N  Ackermann-like pair ping(n) / pong(n) recursing N levels
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct parser {
    const char *s;
    int pos;
    int depth, max_depth;
    int error;
};

static long parse_expr(struct parser *p);

__attribute__((noinline)) static void skip_space(struct parser *p)
{
    while (p->s[p->pos] == ' ')
        p->pos++;
}

__attribute__((noinline)) static long parse_primary(struct parser *p)
{
    skip_space(p);
    char c = p->s[p->pos];
    if (c == '(') {
        p->pos++;
        if (++p->depth > p->max_depth)
            p->max_depth = p->depth;
        long v = parse_expr(p);
        skip_space(p);
        if (p->s[p->pos] != ')') {
            if (!p->error)
                p->error = p->pos + 1;
            return 0;
        }
        p->pos++;
        p->depth--;
        return v;
    }
    if (c >= '0' && c <= '9') {
        long v = 0;
        while (p->s[p->pos] >= '0' && p->s[p->pos] <= '9')
            v = v * 10 + (p->s[p->pos++] - '0');
        return v;
    }
    if (!p->error)
        p->error = p->pos + 1;
    return 0;
}

__attribute__((noinline)) static long parse_unary(struct parser *p)
{
    skip_space(p);
    if (p->s[p->pos] == '-') {
        p->pos++;
        return -parse_unary(p);
    }
    return parse_primary(p);
}

__attribute__((noinline)) static long parse_term(struct parser *p)
{
    long v = parse_unary(p);
    for (;;) {
        skip_space(p);
        char c = p->s[p->pos];
        if (c != '*' && c != '/' && c != '%')
            return v;
        p->pos++;
        long r = parse_unary(p);
        if (c == '*')
            v = (v * r) % 1000003;
        else if (r == 0)
            v = 0;                 /* defined result for x/0 and x%0 */
        else if (c == '/')
            v /= r;
        else
            v %= r;
    }
}

static long parse_expr(struct parser *p)
{
    long v = parse_term(p);
    for (;;) {
        skip_space(p);
        char c = p->s[p->pos];
        if (c != '+' && c != '-')
            return v;
        p->pos++;
        long r = parse_term(p);
        v = c == '+' ? v + r : v - r;
    }
}

/* Level k is "(k+2 op <level k+1> + k+1)" for + - *, and
 * "(<level k+1> op k+3 + k+1)" for / and %, so that no level collapses the
 * value of the levels below it. Every 5th level gets a unary minus. */
__attribute__((noinline)) static int gen_expr(char *buf, int depth, int drop_paren)
{
    static const char ops[] = "+-*+%-*/";
    int n = 0;
    for (int k = 0; k < depth; k++) {
        char op = ops[k & 7];
        const char *neg = (k % 5 == 3) ? "-" : "";
        if (op == '/' || op == '%')
            n += sprintf(buf + n, "%s(", neg);
        else
            n += sprintf(buf + n, "%s(%d %c ", neg, k + 2, op);
    }
    n += sprintf(buf + n, "7");
    for (int k = depth - 1; k >= 0; k--) {
        char op = ops[k & 7];
        if (op == '/' || op == '%')
            n += sprintf(buf + n, " %c %d", op, k + 3);
        n += sprintf(buf + n, (drop_paren && k == depth / 2) ? " + %d" : " + %d)", k + 1);
    }
    return n;
}

/* Hofstadter Female and Male sequences */
static int hof_m(int n);

__attribute__((noinline)) static int hof_f(int n)
{
    return n == 0 ? 1 : n - hof_m(hof_f(n - 1));
}

__attribute__((noinline)) static int hof_m(int n)
{
    return n == 0 ? 0 : n - hof_f(hof_m(n - 1));
}

/* three-way mutual recursion: ping -> pong -> pang -> ping ... */
static unsigned pong(int n, unsigned acc);
static unsigned pang(int n, unsigned acc);

__attribute__((noinline)) static unsigned ping(int n, unsigned acc)
{
    if (n <= 0)
        return acc;
    unsigned r = pong(n - 1, acc * 3 + 1);
    return r ^ (unsigned)n;
}

__attribute__((noinline)) static unsigned pong(int n, unsigned acc)
{
    if (n <= 0)
        return acc + 7;
    unsigned r = (n & 1) ? pang(n - 1, acc + (unsigned)n) : ping(n - 1, acc ^ 0x55u);
    return r + 1;
}

__attribute__((noinline)) static unsigned pang(int n, unsigned acc)
{
    if (n <= 0)
        return acc * 5;
    unsigned r = ping(n - 1, (acc << 1) | 1);
    return r * 3;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s expr|bad|hof|depth N\n", argv[0]);
        return 2;
    }
    int n = atoi(argv[2]);
    if (n < 1 || n > 2000) {
        fprintf(stderr, "N out of range\n");
        return 2;
    }
    if (strcmp(argv[1], "expr") == 0 || strcmp(argv[1], "bad") == 0) {
        char *buf = malloc((size_t)n * 32 + 16);
        int len = gen_expr(buf, n, argv[1][0] == 'b');
        struct parser p = { buf, 0, 0, 0, 0 };
        long v = parse_expr(&p);
        skip_space(&p);
        if (!p.error && p.s[p.pos] != '\0')
            p.error = p.pos + 1;
        if (p.error) {
            printf("syntax error at column %d of %d (nesting reached %d)\n",
                   p.error, len, p.max_depth);
            free(buf);
            return 3;
        }
        printf("expression of %d chars, nesting %d, value %ld\n", len, p.max_depth, v);
        free(buf);
    } else if (strcmp(argv[1], "hof") == 0) {
        long sf = 0, sm = 0;
        for (int i = 0; i < n; i++) {
            sf += hof_f(i);
            sm += hof_m(i);
        }
        printf("hofstadter: F(%d)=%d M(%d)=%d sumF=%ld sumM=%ld\n",
               n - 1, hof_f(n - 1), n - 1, hof_m(n - 1), sf, sm);
    } else if (strcmp(argv[1], "depth") == 0) {
        unsigned total = 0;
        for (int i = 1; i <= n; i++)
            total += ping(i, 1);
        printf("ping/pong/pang depth %d: %08x\n", n, total);
    } else {
        fprintf(stderr, "unknown mode '%s'\n", argv[1]);
        return 2;
    }
    return 0;
}
