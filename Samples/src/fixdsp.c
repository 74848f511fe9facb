/* fixdsp.c - fixed-point signal processing on a generated test signal:
 * Q15 FIR low-pass, Q14 IIR biquad, and a 64-point Q15 radix-2 FFT.
 *
 * usage: fixdsp SAMPLES [MODE]
 *   SAMPLES  number of input samples (64..65536)
 *   MODE     all (default) | fir | iir | fft
 *          | hot (full-scale square wave into the FIR with 1.5x make-up gain)
 * exits 3 if the FIR output saturated (happens in "hot" mode).
 */
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#define TAPS 15
#define FFT_N 64
#define FFT_LOG2 6

static int16_t sine_tab[256];          /* one period, Q15 */
static int16_t fir_coef[TAPS];
static long saturations;

/* sine table by the recurrence s[k+1] = 2cos(w)s[k] - s[k-1] */
__attribute__((noinline)) static void build_sine(void)
{
    const double c = 0.9996988186962042, s1 = 0.024541228522912288;
    double prev = 0.0, cur = s1;
    sine_tab[0] = 0;
    for (int k = 1; k < 256; k++) {
        double v = cur * 32767.0;
        sine_tab[k] = (int16_t)(v < 0 ? v - 0.5 : v + 0.5);
        double next = 2.0 * c * cur - prev;
        prev = cur;
        cur = next;
    }
}

/* symmetric triangular-window low-pass; DC gain = gain_q8 / 256 */
__attribute__((noinline)) static void build_fir(int32_t gain_q8)
{
    int32_t raw[TAPS], total = 0;
    for (int k = 0; k < TAPS; k++) {
        raw[k] = (k + 1) * (TAPS - k);
        total += raw[k];
    }
    for (int k = 0; k < TAPS; k++)
        fir_coef[k] = (int16_t)((raw[k] * 32767 / 256 * gain_q8 + total / 2) / total);
}

static inline int16_t sat16(int32_t x)
{
    if (x > 32767) { saturations++; return 32767; }
    if (x < -32768) { saturations++; return -32768; }
    return (int16_t)x;
}

/* two tones (bins 4 and 19 of a 64-point frame) plus pseudo-random noise */
__attribute__((noinline)) static void gen_signal(int16_t *x, int n, int hot)
{
    uint32_t r = 1u;
    for (int i = 0; i < n; i++) {
        if (hot) {
            x[i] = (i & 16) ? 32767 : -32768;
            continue;
        }
        r = r * 1103515245u + 12345u;
        int32_t noise = (int32_t)((r >> 16) & 0x7FF) - 1024;
        int32_t v = sine_tab[(i * 16) & 255] / 2 + sine_tab[(i * 76) & 255] / 4 + noise;
        x[i] = sat16(v);
    }
}

__attribute__((noinline)) static void fir_filter(const int16_t *x, int16_t *y, int n)
{
    for (int i = 0; i < n; i++) {
        int64_t acc = 0;
        for (int k = 0; k < TAPS; k++) {
            int idx = i - k;
            if (idx >= 0)
                acc += (int32_t)fir_coef[k] * x[idx];
        }
        y[i] = sat16((int32_t)((acc + (1 << 14)) >> 15));
    }
}

/* Direct form I biquad, Q14 coefficients (RBJ low-pass, fc = 0.05 fs) */
__attribute__((noinline)) static void iir_biquad(const int16_t *x, int16_t *y, int n)
{
    const int32_t b0 = 329, b1 = 658, b2 = 329, a1 = -25576, a2 = 10508;
    int32_t x1 = 0, x2 = 0, y1 = 0, y2 = 0;
    for (int i = 0; i < n; i++) {
        int64_t acc = (int64_t)b0 * x[i] + (int64_t)b1 * x1 + (int64_t)b2 * x2
                    - (int64_t)a1 * y1 - (int64_t)a2 * y2;
        int16_t out = sat16((int32_t)((acc + (1 << 13)) >> 14));
        x2 = x1; x1 = x[i];
        y2 = y1; y1 = out;
        y[i] = out;
    }
}

static inline int16_t qmul(int16_t a, int16_t b)
{
    return (int16_t)(((int32_t)a * b + (1 << 14)) >> 15);
}

/* in-place radix-2 decimation-in-time FFT, halving at every stage */
__attribute__((noinline)) static void fft64(int16_t *re, int16_t *im)
{
    for (int i = 1, j = 0; i < FFT_N; i++) {
        int bit = FFT_N >> 1;
        for (; j & bit; bit >>= 1)
            j ^= bit;
        j |= bit;
        if (i < j) {
            int16_t t = re[i]; re[i] = re[j]; re[j] = t;
            t = im[i]; im[i] = im[j]; im[j] = t;
        }
    }
    for (int len = 2; len <= FFT_N; len <<= 1) {
        int step = 256 / len;
        for (int i = 0; i < FFT_N; i += len) {
            for (int k = 0; k < len / 2; k++) {
                int16_t wr = sine_tab[(k * step + 64) & 255];   /* cos */
                int16_t wi = (int16_t)-sine_tab[(k * step) & 255];
                int a = i + k, b = i + k + len / 2;
                int16_t tr = (int16_t)(qmul(re[b], wr) - qmul(im[b], wi));
                int16_t ti = (int16_t)(qmul(re[b], wi) + qmul(im[b], wr));
                re[b] = (int16_t)((re[a] - tr) >> 1);
                im[b] = (int16_t)((im[a] - ti) >> 1);
                re[a] = (int16_t)((re[a] + tr) >> 1);
                im[a] = (int16_t)((im[a] + ti) >> 1);
            }
        }
    }
}

__attribute__((noinline)) static void spectrum(const int16_t *x, int n)
{
    static int64_t power[FFT_N / 2];
    int16_t re[FFT_N], im[FFT_N];
    int frames = 0;
    memset(power, 0, sizeof(power));
    for (int off = 0; off + FFT_N <= n; off += FFT_N) {
        for (int i = 0; i < FFT_N; i++) {
            re[i] = x[off + i];
            im[i] = 0;
        }
        fft64(re, im);
        for (int b = 0; b < FFT_N / 2; b++)
            power[b] += (int32_t)re[b] * re[b] + (int32_t)im[b] * im[b];
        frames++;
    }
    int best = 1, second = 1;
    for (int b = 1; b < FFT_N / 2; b++) {
        if (power[b] > power[best]) {
            second = best;
            best = b;
        } else if (b != best && power[b] > power[second]) {
            second = b;
        }
    }
    printf("fft: %d frames, peak bins %d (%lld) and %d (%lld)\n", frames,
           best, (long long)(power[best] / frames), second, (long long)(power[second] / frames));
}

__attribute__((noinline)) static void report(const char *what, const int16_t *y, int n)
{
    int64_t energy = 0;
    uint32_t sum = 0;
    int16_t lo = 32767, hi = -32768;
    for (int i = 0; i < n; i++) {
        energy += (int32_t)y[i] * y[i];
        sum = sum * 31 + (uint16_t)y[i];
        if (y[i] < lo) lo = y[i];
        if (y[i] > hi) hi = y[i];
    }
    printf("%s: energy/sample=%lld min=%d max=%d checksum=%08x\n", what,
           (long long)(energy / n), lo, hi, sum);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s SAMPLES [all|fir|iir|fft|hot]\n", argv[0]);
        return 2;
    }
    int n = atoi(argv[1]);
    const char *mode = argc >= 3 ? argv[2] : "all";
    if (n < 64 || n > 65536) {
        fprintf(stderr, "SAMPLES out of range\n");
        return 2;
    }
    int all = strcmp(mode, "all") == 0, hot = strcmp(mode, "hot") == 0;
    int do_fir = all || hot || strcmp(mode, "fir") == 0;
    int do_iir = all || strcmp(mode, "iir") == 0;
    int do_fft = all || strcmp(mode, "fft") == 0;
    if (!do_fir && !do_iir && !do_fft) {
        fprintf(stderr, "unknown mode '%s'\n", mode);
        return 2;
    }
    build_sine();
    int16_t *x = malloc(sizeof(int16_t) * n);
    int16_t *y = malloc(sizeof(int16_t) * n);
    gen_signal(x, n, hot);
    report("input", x, n);
    saturations = 0;
    int status = 0;
    if (do_fir) {
        build_fir(hot ? 384 : 256);
        fir_filter(x, y, n);
        report("fir", y, n);
        if (saturations) {
            printf("fir: %ld samples saturated\n", saturations);
            status = 3;
        }
    }
    if (do_iir) {
        iir_biquad(x, y, n);
        report("iir", y, n);
    }
    if (do_fft)
        spectrum(x, n);
    free(x);
    free(y);
    return status;
}
