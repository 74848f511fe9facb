/*
 * A second workload for the traced Linux boot (`Samples/linux/run.sh --workload alt`),
 * unlike init.c's on purpose: a configuration trained on init.c's boot and workload is
 * judged on this one, whose kernel paths it never saw. Static (musl-gcc -static), PID 1.
 *
 *   tree     a process tree: each of 3 children forks 2 grandchildren, waited for with
 *            waitpid in reverse order; getrusage, times
 *   fds      dup, dup2, fcntl(F_DUPFD, F_GETFL/F_SETFL O_NONBLOCK), a pipe read until
 *            EAGAIN, poll and select on pipes, close ranges of descriptors
 *   paths    symlink, readlink, link, chmod, utimensat, truncate, mkdir -p style nests,
 *            chdir/getcwd, a walk of /proc/self/fd and /sys with getdents
 *   io       lseek, pread/pwrite, readv/writev, O_APPEND, fsync, /proc/self/stat and
 *            /proc/meminfo read line by line
 *   memory   brk growth through malloc/free of large blocks, mremap, madvise, mprotect
 *            faults caught with a handler that fixes the protection
 *   time     clock_gettime of three clocks, nanosleep, sched_yield, uname
 *
 * It calls workload_begin() first, like init.c, so run.sh splits the trace there.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/stat.h>
#include <sys/times.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ROUNDS 3

static const char *tmp = "/tmp";
static unsigned long checksum;

static void say(const char *fmt, ...) {
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n > 0 && write(1, buf, n < (int)sizeof buf ? (size_t)n : sizeof buf - 1) < 0) { /* nothing to do */ }
}

static void mix(unsigned long v) { checksum = checksum * 1000003UL ^ v; }

static double seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* The symbol run.sh splits the trace at. */
__attribute__((noinline, used)) void workload_begin(void) { __asm__ volatile("" ::: "memory"); }

static void tree(int round) {
    pid_t kids[3];
    for (int i = 0; i < 3; i++) {
        kids[i] = fork();
        if (kids[i] == 0) {
            pid_t g[2];
            for (int j = 0; j < 2; j++) {
                g[j] = fork();
                if (g[j] == 0) _exit(10 + i * 2 + j);
            }
            int sum = 0;
            for (int j = 1; j >= 0; j--) {
                int st;
                if (waitpid(g[j], &st, 0) == g[j] && WIFEXITED(st)) sum += WEXITSTATUS(st);
            }
            _exit(sum);
        }
    }
    for (int i = 2; i >= 0; i--) {
        int st;
        if (kids[i] > 0 && waitpid(kids[i], &st, 0) == kids[i] && WIFEXITED(st)) mix((unsigned long)WEXITSTATUS(st) + round);
    }
    struct rusage ru;
    if (getrusage(RUSAGE_CHILDREN, &ru) == 0) mix(1);
    struct tms t;
    times(&t);
}

static void fds(void) {
    int p[2];
    if (pipe(p) != 0) return;
    int d = dup(p[0]);
    int d2 = fcntl(p[1], F_DUPFD, 20);
    if (dup2(p[1], 30) == 30) close(30);
    int fl = fcntl(p[0], F_GETFL);
    fcntl(p[0], F_SETFL, fl | O_NONBLOCK);
    char buf[64];
    for (int i = 0; i < 5; i++) {
        if (write(d2 >= 0 ? d2 : p[1], "abcdefgh", 8) != 8) break;
    }
    struct pollfd pf = { .fd = p[0], .events = POLLIN };
    if (poll(&pf, 1, 0) == 1) mix((unsigned long)pf.revents);
    ssize_t r;
    while ((r = read(p[0], buf, sizeof buf)) > 0) mix((unsigned long)r);
    if (r < 0 && errno == EAGAIN) mix(2);
    fd_set rs;
    FD_ZERO(&rs);
    FD_SET(p[0], &rs);
    struct timeval tv = { 0, 0 };
    mix((unsigned long)select(p[0] + 1, &rs, NULL, NULL, &tv));
    close(p[0]); close(p[1]);
    if (d >= 0) close(d);
    if (d2 >= 0) close(d2);
}

static void walk(const char *dir, int depth) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d)) && n < 40) {
        n++;
        mix((unsigned long)e->d_type);
        if (depth > 0 && e->d_type == DT_DIR && e->d_name[0] != '.') {
            char sub[256];
            snprintf(sub, sizeof sub, "%s/%s", dir, e->d_name);
            walk(sub, depth - 1);
        }
    }
    closedir(d);
}

static void paths(int round) {
    char a[64], b[64], c[64], nest[96], cwd[128];
    snprintf(a, sizeof a, "%s/alt%d", tmp, round);
    snprintf(b, sizeof b, "%s/alt%d.sym", tmp, round);
    snprintf(c, sizeof c, "%s/alt%d.lnk", tmp, round);
    int fd = open(a, O_CREAT | O_WRONLY | O_TRUNC, 0644);
    if (fd < 0) return;
    if (write(fd, "0123456789", 10) != 10) { /* checked below through the size */ }
    close(fd);
    if (symlink(a, b) == 0) {
        char t[64];
        ssize_t n = readlink(b, t, sizeof t);
        mix((unsigned long)n);
    }
    if (link(a, c) == 0) {
        struct stat st;
        if (stat(c, &st) == 0) mix((unsigned long)st.st_nlink * 7 + (unsigned long)st.st_size);
    }
    chmod(a, 0600);
    struct timespec ts[2] = { { 1000, 0 }, { 2000, 0 } };
    utimensat(AT_FDCWD, a, ts, 0);
    truncate(a, 4);
    snprintf(nest, sizeof nest, "%s/n%d", tmp, round);
    mkdir(nest, 0755);
    strncat(nest, "/deeper", sizeof nest - strlen(nest) - 1);
    mkdir(nest, 0755);
    if (chdir(nest) == 0 && getcwd(cwd, sizeof cwd)) mix(strlen(cwd));
    if (chdir("/") != 0) { /* stays where it is */ }
    rmdir(nest);
    nest[strlen(nest) - strlen("/deeper")] = 0;
    rmdir(nest);
    unlink(b); unlink(c); unlink(a);
    walk("/proc/self/fd", 0);
    walk("/sys", 1);
}

static void io(int round) {
    char name[64];
    snprintf(name, sizeof name, "%s/io%d", tmp, round);
    int fd = open(name, O_CREAT | O_RDWR | O_TRUNC, 0600);
    if (fd < 0) return;
    char block[512];
    memset(block, 'a' + round, sizeof block);
    for (int i = 0; i < 8; i++) if (pwrite(fd, block, sizeof block, (off_t)i * 1024) < 0) break;
    mix((unsigned long)lseek(fd, 0, SEEK_END));
    char x[100], y[200];
    struct iovec v[2] = { { x, sizeof x }, { y, sizeof y } };
    lseek(fd, 0, SEEK_SET);
    mix((unsigned long)readv(fd, v, 2));
    mix((unsigned long)pread(fd, x, sizeof x, 3000));
    fsync(fd);
    close(fd);
    fd = open(name, O_WRONLY | O_APPEND);
    if (fd >= 0) {
        struct iovec w[2] = { { "tail", 4 }, { "-end", 4 } };
        mix((unsigned long)writev(fd, w, 2));
        close(fd);
    }
    unlink(name);
    for (const char *p = "/proc/self/stat"; p; p = strcmp(p, "/proc/self/stat") == 0 ? "/proc/meminfo" : NULL) {
        FILE *f = fopen(p, "r");
        if (!f) continue;
        char line[160];
        int lines = 0;
        while (fgets(line, sizeof line, f)) lines++;
        fclose(f);
        mix((unsigned long)lines);
    }
}

static sigjmp_buf fault_jump;
static char *guarded;
static void on_fault(int sig) {
    (void)sig;
    mprotect(guarded, 4096, PROT_READ | PROT_WRITE);
}

static void memory(int round) {
    void *big[4];
    for (int i = 0; i < 4; i++) {
        big[i] = malloc((size_t)(64 + 32 * i) * 1024);
        if (big[i]) memset(big[i], i, 4096);
    }
    for (int i = 3; i >= 0; i--) free(big[i]);
    char *m = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return;
    m[0] = (char)round;
    char *r = mremap(m, 8192, 32768, MREMAP_MAYMOVE);
    if (r != MAP_FAILED) {
        m = r;
        m[20000] = 1;
        madvise(m, 32768, MADV_DONTNEED);
        mix((unsigned long)(unsigned char)m[0]);
    }
    munmap(m, r != MAP_FAILED ? 32768 : 8192);
    guarded = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (guarded == MAP_FAILED) return;
    struct sigaction sa = { 0 };
    sa.sa_handler = on_fault;
    sigaction(SIGSEGV, &sa, NULL);
    if (sigsetjmp(fault_jump, 1) == 0) {
        guarded[100] = 42;   /* faults once; the handler makes it writable */
        mix((unsigned long)guarded[100]);
    }
    signal(SIGSEGV, SIG_DFL);
    munmap(guarded, 4096);
}

static void timing(void) {
    struct timespec t;
    clockid_t clocks[3] = { CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_PROCESS_CPUTIME_ID };
    for (int i = 0; i < 3; i++) if (clock_gettime(clocks[i], &t) == 0) mix(1);
    struct timespec d = { 0, 200000 };
    nanosleep(&d, NULL);
    sched_yield();
    struct utsname u;
    if (uname(&u) == 0) mix(strlen(u.sysname));
}

static void workload(void) {
    for (int r = 0; r < ROUNDS; r++) {
        tree(r);
        fds();
        paths(r);
        io(r);
        memory(r);
        timing();
    }
}

int main(void) {
    if (getpid() != 1) {
        say("ovl-init-alt: run me as init (PID 1)\n");
        return 2;
    }
    if (mount("proc", "/proc", "proc", 0, NULL) != 0) say("ovl-init-alt: mount /proc failed\n");
    if (mount("sysfs", "/sys", "sysfs", 0, NULL) != 0) say("ovl-init-alt: mount /sys failed\n");
    if (mount("tmpfs", "/tmp", "tmpfs", 0, "size=8m") != 0) say("ovl-init-alt: mount /tmp failed\n");
    say("ovl-init: boot done, workload begins\n");
    double t0 = seconds();
    /* The phase mark of an overlaid kernel (ovl rewrite): its manager prints its load
       counters when sync() is entered, so they split at the same point as the trace. */
    sync();
    workload_begin();
    workload();
    double t1 = seconds();
    say("ovl-init: workload done in %.6f s (guest clock), checksum %lx\n", t1 - t0, checksum);
    sync();
    reboot(RB_AUTOBOOT);
    return 1;
}
