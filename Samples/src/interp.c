/* interp.c - a small stack-machine bytecode interpreter with a dense opcode
 * switch, running one of its built-in programs.
 *
 * usage: interp PROGRAM N
 *   primes N   count and sum the primes below N (trial division)
 *   fib N      print Fibonacci numbers F(0..N) modulo 1000000007
 *   collatz N  longest Collatz chain for starting values below N
 *   gcd N      sum of gcd(i, N) for i = 1..N
 *   div N      divides 1000 by N-k for k = 0..; traps on division by zero
 * A VM trap (division by zero, stack fault, bad opcode) exits with status 3.
 */
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

enum op {
    OP_HALT, OP_PUSH, OP_LOAD, OP_STORE, OP_ADD, OP_SUB, OP_MUL, OP_DIV,
    OP_MOD, OP_LT, OP_EQ, OP_JMP, OP_JZ, OP_JNZ, OP_DUP, OP_DROP,
    OP_SWAP, OP_PRINT, OP_INC, OP_DEC, OP_AND, OP_SHR, OP_OVER, OP_NOT,
};

#define NVARS 16
#define STACK 64

struct vm {
    const int32_t *code;
    int ncode;
    int64_t stack[STACK];
    int sp;
    int64_t vars[NVARS];
    long steps;
    const char *trap;
};

__attribute__((noinline)) static int vm_run(struct vm *m)
{
    int pc = 0;
    int64_t a, b;
    for (;;) {
        if (pc < 0 || pc >= m->ncode) { m->trap = "pc out of range"; return -1; }
        int32_t op = m->code[pc++];
        m->steps++;
        switch (op) {
        case OP_HALT:
            return 0;
        case OP_PUSH:
            if (m->sp >= STACK) goto overflow;
            m->stack[m->sp++] = m->code[pc++];
            break;
        case OP_LOAD:
            if (m->sp >= STACK) goto overflow;
            m->stack[m->sp++] = m->vars[m->code[pc++] & (NVARS - 1)];
            break;
        case OP_STORE:
            if (m->sp < 1) goto underflow;
            m->vars[m->code[pc++] & (NVARS - 1)] = m->stack[--m->sp];
            break;
        case OP_ADD:
            if (m->sp < 2) goto underflow;
            b = m->stack[--m->sp]; m->stack[m->sp - 1] += b;
            break;
        case OP_SUB:
            if (m->sp < 2) goto underflow;
            b = m->stack[--m->sp]; m->stack[m->sp - 1] -= b;
            break;
        case OP_MUL:
            if (m->sp < 2) goto underflow;
            b = m->stack[--m->sp]; m->stack[m->sp - 1] *= b;
            break;
        case OP_DIV:
            if (m->sp < 2) goto underflow;
            b = m->stack[--m->sp];
            if (b == 0) { m->trap = "division by zero"; return -1; }
            m->stack[m->sp - 1] /= b;
            break;
        case OP_MOD:
            if (m->sp < 2) goto underflow;
            b = m->stack[--m->sp];
            if (b == 0) { m->trap = "modulo by zero"; return -1; }
            m->stack[m->sp - 1] %= b;
            break;
        case OP_LT:
            if (m->sp < 2) goto underflow;
            b = m->stack[--m->sp]; a = m->stack[m->sp - 1];
            m->stack[m->sp - 1] = a < b;
            break;
        case OP_EQ:
            if (m->sp < 2) goto underflow;
            b = m->stack[--m->sp]; a = m->stack[m->sp - 1];
            m->stack[m->sp - 1] = a == b;
            break;
        case OP_JMP:
            pc = m->code[pc];
            break;
        case OP_JZ:
            if (m->sp < 1) goto underflow;
            pc = m->stack[--m->sp] == 0 ? m->code[pc] : pc + 1;
            break;
        case OP_JNZ:
            if (m->sp < 1) goto underflow;
            pc = m->stack[--m->sp] != 0 ? m->code[pc] : pc + 1;
            break;
        case OP_DUP:
            if (m->sp < 1) goto underflow;
            if (m->sp >= STACK) goto overflow;
            m->stack[m->sp] = m->stack[m->sp - 1]; m->sp++;
            break;
        case OP_DROP:
            if (m->sp < 1) goto underflow;
            m->sp--;
            break;
        case OP_SWAP:
            if (m->sp < 2) goto underflow;
            a = m->stack[m->sp - 1];
            m->stack[m->sp - 1] = m->stack[m->sp - 2];
            m->stack[m->sp - 2] = a;
            break;
        case OP_PRINT:
            if (m->sp < 1) goto underflow;
            printf("%lld\n", (long long)m->stack[--m->sp]);
            break;
        case OP_INC:
            m->vars[m->code[pc++] & (NVARS - 1)]++;
            break;
        case OP_DEC:
            m->vars[m->code[pc++] & (NVARS - 1)]--;
            break;
        case OP_AND:
            if (m->sp < 2) goto underflow;
            b = m->stack[--m->sp]; m->stack[m->sp - 1] &= b;
            break;
        case OP_SHR:
            if (m->sp < 2) goto underflow;
            b = m->stack[--m->sp]; m->stack[m->sp - 1] >>= (b & 63);
            break;
        case OP_OVER:
            if (m->sp < 2) goto underflow;
            if (m->sp >= STACK) goto overflow;
            m->stack[m->sp] = m->stack[m->sp - 2]; m->sp++;
            break;
        case OP_NOT:
            if (m->sp < 1) goto underflow;
            m->stack[m->sp - 1] = !m->stack[m->sp - 1];
            break;
        default:
            m->trap = "bad opcode";
            return -1;
        }
    }
overflow:
    m->trap = "stack overflow";
    return -1;
underflow:
    m->trap = "stack underflow";
    return -1;
}

/* Built-in programs. v0 holds N (set by the host); jump operands are
 * absolute code indices (the label comments mark the targets). */

/* primes: count and sum p < N; d runs from 2 while d*d <= p and p % d != 0 */
static const int32_t prog_primes[] = {
    /*  0 */ OP_PUSH, 2, OP_STORE, 1,
    /*  4 */ OP_PUSH, 0, OP_STORE, 2,
    /*  8 */ OP_PUSH, 0, OP_STORE, 3,
    /* outer: */
    /* 12 */ OP_LOAD, 1, OP_LOAD, 0, OP_LT, OP_JZ, 57,
    /* 19 */ OP_PUSH, 2, OP_STORE, 4,
    /* inner: */
    /* 23 */ OP_LOAD, 4, OP_DUP, OP_MUL, OP_LOAD, 1, OP_SWAP, OP_LT, OP_JNZ, 44,
    /* 33 */ OP_LOAD, 1, OP_LOAD, 4, OP_MOD, OP_JZ, 53,
    /* 40 */ OP_INC, 4, OP_JMP, 23,
    /* prime: */
    /* 44 */ OP_INC, 2, OP_LOAD, 3, OP_LOAD, 1, OP_ADD, OP_STORE, 3,
    /* next: */
    /* 53 */ OP_INC, 1, OP_JMP, 12,
    /* done: */
    /* 57 */ OP_LOAD, 2, OP_PRINT, OP_LOAD, 3, OP_PRINT, OP_HALT,
};

/* fib: print F(0..N) mod 1000000007 */
static const int32_t prog_fib[] = {
    /*  0 */ OP_PUSH, 0, OP_STORE, 1, OP_PUSH, 1, OP_STORE, 2, OP_PUSH, 0, OP_STORE, 3,
    /* loop: */
    /* 12 */ OP_LOAD, 0, OP_LOAD, 3, OP_LT, OP_JNZ, 40,
    /* 19 */ OP_LOAD, 1, OP_PRINT,
    /* 22 */ OP_LOAD, 1, OP_LOAD, 2, OP_ADD, OP_PUSH, 1000000007, OP_MOD,
    /* 30 */ OP_LOAD, 2, OP_STORE, 1, OP_STORE, 2,
    /* 36 */ OP_INC, 3, OP_JMP, 12,
    /* done: */
    /* 40 */ OP_HALT,
};

/* collatz: longest chain for start values 1..N-1; prints start, length */
static const int32_t prog_collatz[] = {
    /*  0 */ OP_PUSH, 1, OP_STORE, 1, OP_PUSH, 0, OP_STORE, 5, OP_PUSH, 0, OP_STORE, 6,
    /* outer: */
    /* 12 */ OP_LOAD, 1, OP_LOAD, 0, OP_LT, OP_JZ, 83,
    /* 19 */ OP_LOAD, 1, OP_STORE, 2, OP_PUSH, 0, OP_STORE, 3,
    /* inner: */
    /* 27 */ OP_LOAD, 2, OP_PUSH, 1, OP_EQ, OP_JNZ, 64,
    /* 34 */ OP_INC, 3,
    /* 36 */ OP_LOAD, 2, OP_PUSH, 1, OP_AND, OP_JZ, 55,
    /* 43 */ OP_LOAD, 2, OP_PUSH, 3, OP_MUL, OP_PUSH, 1, OP_ADD, OP_STORE, 2, OP_JMP, 27,
    /* even: */
    /* 55 */ OP_LOAD, 2, OP_PUSH, 1, OP_SHR, OP_STORE, 2, OP_JMP, 27,
    /* endinner: */
    /* 64 */ OP_LOAD, 5, OP_LOAD, 3, OP_LT, OP_JZ, 79,
    /* 71 */ OP_LOAD, 3, OP_STORE, 5, OP_LOAD, 1, OP_STORE, 6,
    /* next: */
    /* 79 */ OP_INC, 1, OP_JMP, 12,
    /* done: */
    /* 83 */ OP_LOAD, 6, OP_PRINT, OP_LOAD, 5, OP_PRINT, OP_HALT,
};

/* gcd: sum of gcd(i, N) for i = 1..N (Euclid on the stack) */
static const int32_t prog_gcd[] = {
    /*  0 */ OP_PUSH, 0, OP_STORE, 3, OP_LOAD, 0, OP_STORE, 1,
    /* loop: */
    /*  8 */ OP_LOAD, 1, OP_NOT, OP_JNZ, 36,
    /* 13 */ OP_LOAD, 1, OP_LOAD, 0,
    /* g: */
    /* 17 */ OP_DUP, OP_NOT, OP_JNZ, 26,
    /* 21 */ OP_SWAP, OP_OVER, OP_MOD, OP_JMP, 17,
    /* gdone: */
    /* 26 */ OP_DROP, OP_LOAD, 3, OP_ADD, OP_STORE, 3,
    /* 32 */ OP_DEC, 1, OP_JMP, 8,
    /* done: */
    /* 36 */ OP_LOAD, 3, OP_PRINT, OP_HALT,
};

/* div: print 1000 / (N - k) for k = 0, 1, ...: traps when k reaches N */
static const int32_t prog_div[] = {
    /*  0 */ OP_PUSH, 0, OP_STORE, 1,
    /* loop: */
    /*  4 */ OP_PUSH, 1000, OP_LOAD, 0, OP_LOAD, 1, OP_SUB, OP_DIV, OP_PRINT,
    /* 13 */ OP_INC, 1, OP_LOAD, 1, OP_PUSH, 100000, OP_LT, OP_JNZ, 4,
    /* 22 */ OP_HALT,
};

struct program {
    const char *name;
    const int32_t *code;
    int ncode;
};

#define PROG(n, c) { n, c, (int)(sizeof(c) / sizeof(c[0])) }
static const struct program programs[] = {
    PROG("primes", prog_primes),
    PROG("fib", prog_fib),
    PROG("collatz", prog_collatz),
    PROG("gcd", prog_gcd),
    PROG("div", prog_div),
};

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s primes|fib|collatz|gcd|div N\n", argv[0]);
        return 2;
    }
    const struct program *p = NULL;
    for (size_t i = 0; i < sizeof(programs) / sizeof(programs[0]); i++)
        if (strcmp(argv[1], programs[i].name) == 0)
            p = &programs[i];
    if (!p) {
        fprintf(stderr, "unknown program '%s'\n", argv[1]);
        return 2;
    }
    struct vm m;
    memset(&m, 0, sizeof(m));
    m.code = p->code;
    m.ncode = p->ncode;
    m.vars[0] = strtol(argv[2], NULL, 10);
    int rc = vm_run(&m);
    if (rc != 0) {
        printf("trap: %s after %ld steps\n", m.trap, m.steps);
        return 3;
    }
    printf("%s(%lld): %ld steps, sp=%d\n", p->name, (long long)m.vars[0], m.steps, m.sp);
    return 0;
}
