/* sighandler.c - a signal handler that calls other functions, delivered while cold code
 * runs: the overlay manager must never load a cluster from inside the handler, or the
 * interrupted code would resume in a buffer that now holds another cluster.
 *
 * usage: sighandler ROUNDS EVERY
 *   runs ROUNDS rounds of a small mixing computation spread over several functions and
 *   sends itself SIGUSR1 every EVERY rounds with a system call made inside the
 *   computation, so the signal arrives while that code runs; the handler counts and
 *   formats through helpers of its own and writes a line with write(2) every 16th signal.
 *   Prints a checksum; exits with status 3 when the checksum's low byte is odd.
 */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t signals_seen;
static volatile uint32_t handler_mix = 0x9E3779B9u;

/* Called only from the handler. */
__attribute__((noinline)) static int format_decimal(char *out, uint32_t v)
{
    char tmp[12];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (int i = 0; i < n; i++) out[i] = tmp[n - 1 - i];
    return n;
}

__attribute__((noinline)) static uint32_t scramble(uint32_t v)
{
    v ^= v >> 15;
    v *= 0x2C1B3C6Du;
    v ^= v >> 12;
    return v;
}

__attribute__((noinline)) static void note_signal(int sig)
{
    signals_seen++;
    handler_mix = scramble(handler_mix + (uint32_t)sig + (uint32_t)signals_seen);
    if (signals_seen % 16 == 0) {
        /* Static, not on the stack: qemu-x86_64 7.2 can hand a handler a stack that is not
           16-byte aligned, and the compiler initialises a stack array with aligned SSE
           stores (a general-protection fault there). */
        static char line[48];
        memcpy(line, "handler: signal ", 16);
        int n = 16;
        n += format_decimal(line + n, (uint32_t)signals_seen);
        line[n++] = '\n';
        if (write(1, line, (size_t)n) < 0) { /* nothing to do */ }
    }
}

static void on_usr1(int sig)
{
    note_signal(sig);
}

/* The computation: a few functions so that it spreads over clusters. */
__attribute__((noinline)) static uint32_t step_a(uint32_t x, int i) { return (x << 5) ^ (x >> 27) ^ (uint32_t)i; }
__attribute__((noinline)) static uint32_t step_b(uint32_t x) { return x * 0x01000193u + 0x811C9DC5u; }
/* tkill(2) made right here, so the signal is delivered as the system call returns into
   this function's code (raise() would take it inside the C library instead). */
static void signal_self_here(void)
{
    long tid, r;
    __asm__ volatile("syscall" : "=a"(tid) : "a"(186L /* gettid */) : "rcx", "r11", "memory");
    __asm__ volatile("syscall" : "=a"(r) : "a"(200L /* tkill */), "D"(tid), "S"((long)SIGUSR1) : "rcx", "r11", "memory");
    (void)r;
}

__attribute__((noinline)) static uint32_t step_c(uint32_t x, int every, int i)
{
    if (i % every == 0) signal_self_here();
    return x ^ (x >> 7);
}

__attribute__((noinline)) static uint32_t round_of(uint32_t x, int i, int every)
{
    x = step_a(x, i);
    x = step_b(x);
    x = step_c(x, every, i);
    return x;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: sighandler ROUNDS EVERY\n");
        return 2;
    }
    int rounds = atoi(argv[1]), every = atoi(argv[2]);
    if (rounds < 1 || every < 1) {
        fprintf(stderr, "sighandler: ROUNDS and EVERY must be positive\n");
        return 2;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGUSR1, &sa, NULL) != 0) {
        perror("sigaction");
        return 1;
    }
    /* The mask is inherited: a parent that blocks SIGUSR1 would silence the handler. */
    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    sigprocmask(SIG_UNBLOCK, &usr1, NULL);
    uint32_t x = 1;
    for (int i = 1; i <= rounds; i++) x = round_of(x, i, every);
    uint32_t sum = x ^ handler_mix;
    printf("rounds %d, signals %d, checksum %08x\n", rounds, (int)signals_seen, (unsigned)sum);
    return (sum & 1) ? 3 : 0;
}
