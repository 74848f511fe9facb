/* longjmp.c - error recovery with setjmp/longjmp: a recursive evaluator for
 * generated prefix expressions such as "(add 3 (mul 2 (neg 5)))" bails out
 * of deep recursion with longjmp() on an error and the statement loop
 * carries on with the next statement.
 *
 * usage: longjmp STATEMENTS DEPTH ERROR_EVERY
 *   STATEMENTS   number of generated statements (1..5000)
 *   DEPTH        nesting depth of every statement (1..200)
 *   ERROR_EVERY  0 = no errors; otherwise every K-th statement has an error
 *                deep inside (kind rotates: unknown operator, division by
 *                zero, missing ')', number too large)
 * exits 3 if any statement failed, 0 otherwise.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>

enum err { ERR_NONE, ERR_OPERATOR, ERR_DIVZERO, ERR_SYNTAX, ERR_RANGE };

static const char *const err_names[] = {
    "none", "unknown operator", "division by zero", "syntax", "number too large",
};

struct evaluator {
    const char *s;
    int pos;
    int depth, max_depth;
    jmp_buf recover;
};

__attribute__((noinline, noreturn)) static void fail(struct evaluator *e, enum err code)
{
    longjmp(e->recover, (int)code);
}

static long eval(struct evaluator *e);

__attribute__((noinline)) static void expect(struct evaluator *e, char c)
{
    if (e->s[e->pos] != c)
        fail(e, ERR_SYNTAX);
    e->pos++;
}

__attribute__((noinline)) static long eval_number(struct evaluator *e)
{
    long v = 0;
    int digits = 0;
    while (e->s[e->pos] >= '0' && e->s[e->pos] <= '9') {
        v = v * 10 + (e->s[e->pos++] - '0');
        if (++digits > 6)
            fail(e, ERR_RANGE);
    }
    if (digits == 0)
        fail(e, ERR_SYNTAX);
    return v;
}

__attribute__((noinline)) static int read_operator(struct evaluator *e, char *name)
{
    int n = 0;
    while (e->s[e->pos] >= 'a' && e->s[e->pos] <= 'z' && n < 7)
        name[n++] = e->s[e->pos++];
    name[n] = '\0';
    expect(e, ' ');
    return n;
}

__attribute__((noinline)) static long eval_list(struct evaluator *e)
{
    char op[8];
    expect(e, '(');
    if (++e->depth > e->max_depth)
        e->max_depth = e->depth;
    read_operator(e, op);
    long a = eval(e), r;
    if (strcmp(op, "neg") == 0) {
        r = -a;
    } else {
        expect(e, ' ');
        long b = eval(e);
        if (strcmp(op, "add") == 0)
            r = a + b;
        else if (strcmp(op, "sub") == 0)
            r = a - b;
        else if (strcmp(op, "mul") == 0)
            r = (a * b) % 1000000;
        else if (strcmp(op, "div") == 0) {
            if (b == 0)
                fail(e, ERR_DIVZERO);
            r = a / b;
        } else
            fail(e, ERR_OPERATOR);
    }
    expect(e, ')');
    e->depth--;
    return r;
}

static long eval(struct evaluator *e)
{
    return e->s[e->pos] == '(' ? eval_list(e) : eval_number(e);
}

/* operator of level k of statement i; the innermost level may be forced */
static const char *op_at(int i, int k, int depth, enum err error)
{
    static const char *const ops[] = { "add", "sub", "mul", "neg", "add", "div" };
    if (k == depth - 1 && error == ERR_OPERATOR)
        return "pow";
    if (k == depth - 1 && error == ERR_DIVZERO)
        return "div";
    return ops[(i + k) % 6];
}

/* statement i: nested operators; the innermost level carries the error */
__attribute__((noinline)) static void gen_statement(char *buf, int i, int depth, enum err error)
{
    int n = 0;
    for (int k = 0; k < depth; k++)
        n += sprintf(buf + n, "(%s ", op_at(i, k, depth, error));
    if (error == ERR_RANGE)
        n += sprintf(buf + n, "12345678");
    else
        n += sprintf(buf + n, "%d", i % 9 + 1);
    for (int k = depth - 1; k >= 0; k--) {
        if (op_at(i, k, depth, error)[0] != 'n') {
            int zero = error == ERR_DIVZERO && k == depth - 1;
            n += sprintf(buf + n, " %d", zero ? 0 : k % 4 + 1);
        }
        if (!(error == ERR_SYNTAX && k == depth / 2))
            buf[n++] = ')';
    }
    buf[n] = '\0';
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s STATEMENTS DEPTH ERROR_EVERY\n", argv[0]);
        return 2;
    }
    int count = atoi(argv[1]), depth = atoi(argv[2]), every = atoi(argv[3]);
    if (count < 1 || count > 5000 || depth < 1 || depth > 200 || every < 0) {
        fprintf(stderr, "bad arguments\n");
        return 2;
    }
    char *buf = malloc((size_t)depth * 12 + 32);
    static struct evaluator e;   /* static: stays valid across longjmp */
    volatile long total = 0;
    volatile int failed = 0, deepest_failure = 0;
    int nerr = 0;
    for (int i = 0; i < count; i++) {
        enum err inject = ERR_NONE;
        if (every > 0 && i % every == every - 1)
            inject = (enum err)(1 + nerr++ % 4);
        gen_statement(buf, i, depth, inject);
        e.s = buf;
        e.pos = 0;
        e.depth = e.max_depth = 0;
        int code = setjmp(e.recover);
        if (code == 0) {
            long v = eval(&e);
            if (e.s[e.pos] != '\0')
                fail(&e, ERR_SYNTAX);
            total += v;
        } else {
            failed++;
            if (e.depth > deepest_failure)
                deepest_failure = e.depth;
            printf("statement %d: %s at column %d, depth %d\n", i, err_names[code],
                   e.pos + 1, e.depth);
        }
    }
    printf("%d statements, %d failed, deepest failure at depth %d, total %ld\n",
           count, failed, deepest_failure, total);
    free(buf);
    return failed ? 3 : 0;
}
