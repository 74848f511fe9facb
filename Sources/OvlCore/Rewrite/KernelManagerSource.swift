/// The overlay manager of a rewritten Linux kernel (x86-64, one CPU), as freestanding C
/// compiled with `-mcmodel=kernel` together with `Sources/COverlayRules/rules.c`, the file
/// the cost model's replay links: one definition of when a cluster is loaded.
///
/// It keeps the user-space manager's entry points and thunk formats (`_dynamic_call`,
/// `_dynamic_jmp`, `_dynamic_call_ind`, `_ovl_return`), so the clusters are the ones the
/// rewriter writes for programs. What differs is where state lives and what can interrupt:
///
/// - **Everything of the manager lives in the kernel's own text** (the int3 fill of
///   `.text`), which the kernel maps writable during boot and read-only once
///   `mark_rodata_ro` has run (`kernel_set_to_readonly`). At the first write after that,
///   the manager splits the 2 MB mapping that holds it into 4 KB pages (a page table in
///   its own region, written once with CR0.WP clear and interrupts off) and makes only its
///   own pages — the manager, its tables and the code buffer — writable; every other page
///   keeps the kernel's protection. (When the mapping cannot be split, e.g. with 5-level
///   paging, each write clears CR0.WP for its duration instead.)
/// - **Return records live on the stack they describe.** A call from buffer code goes
///   through `_dynamic_call`, which puts `_ovl_return` in place of its return address and
///   records (slot, cluster, offset). A kernel has one stack per task, plus the interrupt
///   stack, and tasks switch inside `schedule()` with such calls in flight, so the
///   records are kept at the base of the 16 KB-aligned stack that holds the slot (task
///   stacks and the IRQ stack are THREAD_SIZE-aligned). A task that sleeps inside cold
///   code therefore finds its own records when it resumes, and its cluster is loaded again
///   by rule 1 when another task replaced it meanwhile.
/// - **Interrupts and exceptions**: every handler entered through the IDT (but NMI,
///   #DB, #MC and #DF, which run on the entry area's exception stacks) calls
///   `irqentry_enter(regs)` and `irqentry_exit(regs, state)`; the rewriter sends those
///   calls through `ovl_irqentry_enter`/`ovl_irqentry_exit`. When the interrupted
///   context was running buffer code, entry records which cluster the buffer held, and
///   exit loads it again if the handler (or a softirq it ran, or a task that ran while an
///   exception slept) replaced it. Interrupted buffer code thus always resumes on its own
///   code. The exception-stack contexts (NMI, #DB, #MC, #DF) may interrupt the manager
///   itself and have no THREAD_SIZE-aligned stack: a load or a call from cold code there
///   stops the kernel with a message naming the function.
/// - At restart, halt or power-off the load counters are printed on the console
///   (`ovl: loads …`, one `ovl: cluster-loads` line per 12 clusters loaded).
enum KernelManagerSource {
    static let text = #"""
#include <stdint.h>
#include "ovl_rules.h"

typedef struct { int16_t cluster; uint16_t stays; uint32_t value; } ovl_entry;

/* Filled in by the rewriter (KernelRewriter, `fields`): keep the order in step. */
struct ovl_image {
    uint64_t magic;
    uint64_t buffer, buffer_size;
    uint64_t entries, entry_count;
    uint64_t jthunk_lo, jthunk_hi, cthunk_lo, cthunk_hi;
    uint64_t cluster_count, cluster_addr;      /* per cluster: its address in the store, its size */
    uint64_t counters;                         /* uint64 loads[count], bytes[count] */
    uint64_t return_entry;                     /* _ovl_return */
    uint64_t entry_origin;                     /* uint64 original address of each entry */
    uint64_t cluster_origin;                   /* uint64 original address of each cluster's first function */
    uint64_t preempt_count;                    /* &__preempt_count (unused) */
    uint64_t rw_lo, rw_hi;                     /* the manager, its tables and the buffer: the
                                                  pages made writable after mark_rodata_ro */
    uint64_t pte_page;                         /* a 4 KB page for splitting their 2 MB mapping */
};
__attribute__((used, section(".data"))) struct ovl_image ovl_image = { 0x4c4e524b4c564fULL };

/* Mutable state: written only with interrupts off (see `writable`). */
static ovl_buffer_state state;
static int inited, dying, split;

extern int kernel_set_to_readonly;
extern uint64_t page_offset_base, phys_base;

extern void panic(const char *fmt, ...);
extern int _printk(const char *fmt, ...);
extern uint64_t irqentry_enter(void *regs);
extern void irqentry_exit(void *regs, uint64_t st);

static inline uint64_t wp_off(void) {
    uint64_t cr0;
    __asm__ volatile("mov %%cr0, %0" : "=r"(cr0));
    __asm__ volatile("mov %0, %%cr0" : : "r"(cr0 & ~0x10000ULL) : "memory");
    return cr0;
}
static inline void wp_on(uint64_t cr0) { __asm__ volatile("mov %0, %%cr0" : : "r"(cr0) : "memory"); }
static inline uint64_t irq_save(void) { uint64_t f; __asm__ volatile("pushfq; pop %0; cli" : "=r"(f) : : "memory"); return f; }
static inline void irq_restore(uint64_t f) { __asm__ volatile("push %0; popfq" : : "r"(f) : "memory", "cc"); }

static void copy(void *dst, const void *src, uint64_t n) {
    uint64_t q = n >> 3, r = n & 7;
    __asm__ volatile("rep movsq" : "+D"(dst), "+S"(src), "+c"(q) : : "memory");
    __asm__ volatile("rep movsb" : "+D"(dst), "+S"(src), "+c"(r) : : "memory");
}

/* The kernel maps its text writable during boot and read-only from mark_rodata_ro() on
   (which runs once system_state has reached SYSTEM_FREEING_INITMEM). From then on each
   write looks at the mapping of the manager's pages; once kernel_set_to_readonly says
   the kernel has finished changing it, the 2 MB mapping that holds the manager, its
   tables and the buffer is split into 4 KB pages (a page table in the manager's own
   region, built once with CR0.WP clear) with only those pages writable, so later loads
   write with no change of CR0, whose every change costs a TLB flush. Until then, or when
   the mapping cannot be split (5-level paging), a write clears CR0.WP for its duration.
   Interrupts are off throughout. */
extern int system_state;
static inline uint64_t *phys_to_virt(uint64_t pa) { return (uint64_t *)(pa + page_offset_base); }
#define PFN_MASK 0x000ffffffffff000ULL
/* The PMD entry mapping va, or 0. */
static uint64_t *pmd_of(uint64_t va) {
    uint64_t cr4, cr3;
    __asm__ volatile("mov %%cr4, %0" : "=r"(cr4));
    if (cr4 & (1ULL << 12)) return 0;
    __asm__ volatile("mov %%cr3, %0" : "=r"(cr3));
    uint64_t e = phys_to_virt(cr3 & PFN_MASK)[(va >> 39) & 511];
    if (!(e & 1)) return 0;
    e = phys_to_virt(e & PFN_MASK)[(va >> 30) & 511];
    if (!(e & 1) || (e & 0x80)) return 0;
    return phys_to_virt(e & PFN_MASK) + ((va >> 21) & 511);
}
/* Whether the manager's pages are writable now (1), not (0), or unknown (-1). */
static int our_pages_writable(void) {
    uint64_t *pmd = pmd_of(ovl_image.rw_lo);
    if (!pmd || !(*pmd & 1)) return -1;
    if (*pmd & 0x80) return (*pmd & 2) != 0;
    if (!(*pmd & 2)) return 0;
    uint64_t pte = phys_to_virt(*pmd & PFN_MASK)[(ovl_image.rw_lo >> 12) & 511];
    return (pte & 3) == 3;
}
static void make_writable(void) {
    uint64_t va = ovl_image.rw_lo, lo = ovl_image.rw_lo & ~0xfffULL, hi = ovl_image.rw_hi;
    uint64_t w = wp_off();
    split = 1;
    uint64_t *pmd = (va >> 21) == ((hi - 1) >> 21) ? pmd_of(va) : 0;
    if (pmd && (*pmd & 1) && (*pmd & 0x80)) {
        uint64_t e = *pmd, *pte = (uint64_t *)ovl_image.pte_page;
        uint64_t base = e & 0x000fffffffe00000ULL, flags = e & (0x8000000000000fffULL & ~0x80ULL);
        uint64_t region = va & ~0x1fffffULL;
        for (int i = 0; i < 512; i++) {
            uint64_t at = region + ((uint64_t)i << 12);
            pte[i] = (base + ((uint64_t)i << 12)) | flags | (at >= lo && at < hi ? 2 : 0);
        }
        *pmd = (ovl_image.pte_page - 0xffffffff80000000ULL + phys_base) | 0x63;
        for (int i = 0; i < 512; i++) __asm__ volatile("invlpg (%0)" : : "r"(region + ((uint64_t)i << 12)) : "memory");
    } else if (pmd && (*pmd & 1)) {
        uint64_t *pte = phys_to_virt(*pmd & PFN_MASK);
        for (uint64_t at = lo; at < hi; at += 4096) {
            pte[(at >> 12) & 511] |= 2;
            __asm__ volatile("invlpg (%0)" : : "r"(at) : "memory");
        }
    }
    wp_on(w);
}

/* Makes the manager's pages writable; returns the CR0 to restore (0: nothing to restore). */
static inline uint64_t writable(void) {
    if (*(volatile int *)&system_state < 2) return 0;
    if (our_pages_writable() == 1) return 0;
    if (*(volatile int *)&kernel_set_to_readonly && !split) {
        make_writable();
        if (our_pages_writable() == 1) return 0;
    }
    return wp_off();
}
static inline void done(uint64_t w) { if (w) wp_on(w); }
void *memcpy(void *d, const void *s, unsigned long n) { copy(d, s, n); return d; }
void *memset(void *d, int c, unsigned long n) {
    unsigned char *p = d;
    while (n--) *p++ = (unsigned char)c;
    return d;
}

/* Stops the kernel, naming the function (its original address, which kallsyms knows). */
static void __attribute__((noreturn)) die(const char *why, uint64_t origin) {
    if (!dying) { uint64_t w = writable(); dying = 1; done(w); panic("ovl: %s: %pS\n", why, (void *)origin); }
    for (;;) __asm__ volatile("cli; hlt");
}

/* NMI, #DB, #MC and #DF run on the exception stacks of the CPU entry area (IST): they
   do not go through irqentry_enter, may interrupt the manager itself, and their stacks
   are no 16 KB-aligned ones to keep records in. Cold code must not run there. (int3 is
   NMI-like for the kernel but runs on the interrupted stack: it may load.) */
static inline int on_exception_stack(uint64_t a) { return a - 0xfffffe0000000000ULL < 0x10000000000ULL; }
static inline uint64_t stack_pointer(void) { uint64_t sp; __asm__ volatile("mov %%rsp, %0" : "=r"(sp)); return sp; }

static inline uint64_t cluster_origin(int32_t k) { return ((const uint64_t *)ovl_image.cluster_origin)[k]; }

/* Copies cluster k into the buffer (the one buffer a kernel image has). Interrupts are off. */
static void load(int32_t k) {
    if (on_exception_stack(stack_pointer())) die("a cluster load in NMI, debug or machine-check context", cluster_origin(k));
    const uint64_t *at = (const uint64_t *)ovl_image.cluster_addr;
    uint64_t n = at[2 * k + 1];
    uint64_t w = writable();
    copy((void *)ovl_image.buffer, (const void *)at[2 * k], n);
    uint64_t *counters = (uint64_t *)ovl_image.counters;
    counters[k] += 1;
    counters[ovl_image.cluster_count + k] += n;
    done(w);
}

/* Rule 1 and the rules' bookkeeping; loads when needed. Interrupts are off. */
static uint64_t enter(int32_t k, uint32_t offset) {
    uint64_t w = writable();
    if (!inited) { ovl_rules_init(&state, 1); inited = 1; }
    int32_t b = ovl_rules_enter(&state, k);
    done(w);
    if (b >= 0) load(k);
    return ovl_image.buffer + offset;
}

/* What a thunk pushed: a resident address (negative: the kernel's), a cluster and offset
   (bit 30 set), or an entry id. */
static uint64_t resolve(uint64_t id) {
    if ((int64_t)id < 0) return id;
    if (id & 0x40000000u) return enter((int32_t)((id >> 16) & 0x3fff), (uint32_t)(id & 0xffff));
    if (id >= ovl_image.entry_count) die("a thunk names no entry", 0);
    const ovl_entry *e = (const ovl_entry *)ovl_image.entries + id;
    if (e->cluster < 0) return ((const uint64_t *)ovl_image.entry_origin)[id];
    return enter(e->cluster, e->value);
}

static uint64_t resolve_pointer(uint64_t x) {
    if (x >= ovl_image.jthunk_lo && x < ovl_image.jthunk_hi) return resolve(*(const uint32_t *)(x + 6));
    if (x >= ovl_image.cthunk_lo && x < ovl_image.cthunk_hi) return resolve(*(const uint32_t *)(x + 1));
    return x;
}

/* Return records at the base of the stack that holds the slot: [0] the kernel's
   STACK_END_MAGIC, [1] our mark (so a fresh stack's garbage is never read as records),
   [2] how many, then records of three words. */
#define STACK_BYTES 16384ULL
#define AREA_WORDS 192
#define AREA_MARK 0x4f564c5245434f52ULL
#define KIND_BUFFER 0ULL
#define KIND_IRQ 1ULL
typedef struct { uint64_t slot, key, value; } ovl_record;

static inline uint64_t *area_of(uint64_t slot) {
    uint64_t *a = (uint64_t *)(slot & ~(STACK_BYTES - 1));
    if (a[1] != (AREA_MARK ^ (uint64_t)a)) { a[1] = AREA_MARK ^ (uint64_t)a; a[2] = 0; }
    return a;
}
#define RECORDS(a) ((ovl_record *)&(a)[3])
#define CAPACITY ((AREA_WORDS - 3) / 3)

static void push_record(uint64_t slot, uint64_t key, uint64_t value, uint64_t origin) {
    if (on_exception_stack(slot)) die("a call from cold code in NMI, debug or machine-check context", origin);
    uint64_t *a = area_of(slot);
    ovl_record *r = RECORDS(a);
    /* Records at or below this slot belong to frames already unwound. */
    while (a[2] > 0 && r[a[2] - 1].slot <= slot) a[2]--;
    if (a[2] == CAPACITY) {
        /* Keep only records whose slot still holds _ovl_return (or, for interrupt
           records, whose frame is above this one). */
        uint64_t n = 0;
        for (uint64_t i = 0; i < a[2]; i++)
            if ((r[i].key >> 32) == KIND_IRQ || *(uint64_t *)r[i].slot == ovl_image.return_entry) r[n++] = r[i];
        a[2] = n;
        if (n == CAPACITY) die("more calls from cold code in flight on one stack than its return records hold", origin);
    }
    r[a[2]].slot = slot; r[a[2]].key = key; r[a[2]].value = value;
    a[2]++;
}

/* Finds and removes the record for `slot`, dropping records of frames below it. */
static int pop_record(uint64_t slot, ovl_record *out) {
    uint64_t *a = area_of(slot);
    ovl_record *r = RECORDS(a);
    while (a[2] > 0 && r[a[2] - 1].slot < slot) a[2]--;
    if (a[2] == 0 || r[a[2] - 1].slot != slot) return 0;
    *out = r[--a[2]];
    return 1;
}

static inline int in_buffer(uint64_t ret) { return ret - ovl_image.buffer < ovl_image.buffer_size; }

/* The callee about to run will return through *slot: from buffer code, that return goes
   through _ovl_return and the record. */
static void protect_return(uint64_t *slot, uint64_t origin) {
    uint64_t ret = *slot;
    if (!in_buffer(ret)) return;
    push_record((uint64_t)slot, ((uint64_t)KIND_BUFFER << 32) | (uint32_t)state.holds[0], ret - ovl_image.buffer, origin);
    *slot = ovl_image.return_entry;
}

/* What a failure names: the entry's function. */
static uint64_t origin_of(uint64_t id) {
    if ((int64_t)id < 0) return id;
    if (id & 0x40000000u) return cluster_origin((int32_t)((id >> 16) & 0x3fff));
    return id < ovl_image.entry_count ? ((const uint64_t *)ovl_image.entry_origin)[id] : 0;
}

void ovl_on_jmp(uint64_t *frame) { frame[0] = resolve(frame[0]); }
void ovl_on_call(uint64_t *frame) { protect_return(&frame[1], origin_of(frame[0])); frame[0] = resolve(frame[0]); }
void ovl_on_call_ind(uint64_t *frame) {
    uint64_t x = frame[1];
    frame[1] = frame[0];
    protect_return(&frame[1], x);
    frame[0] = resolve_pointer(x);
}
void ovl_on_return(uint64_t *frame) {
    ovl_record r;
    if (!pop_record((uint64_t)frame, &r) || (r.key >> 32) != KIND_BUFFER)
        die("a return through the overlay manager that it has no record of", 0);
    frame[0] = enter((int32_t)(uint32_t)r.key, (uint32_t)r.value);
}

/* Interrupt and exception entry and exit (the rewriter sends the kernel's calls here).
   An interrupted context depends on the buffer's contents when it runs buffer code, and
   also when it is in a thunk or at the manager's first instruction: a call from buffer
   code has just pushed a return address into the buffer, which the manager will record
   with the cluster the buffer holds. */
#define REGS_IP 16
#define REGS_CS 17
static inline int needs_buffer(uint64_t *regs) {
    uint64_t ip = regs[REGS_IP];
    return (regs[REGS_CS] & 3) == 0 && (in_buffer(ip) || ip - ovl_image.rw_lo < ovl_image.cthunk_hi - ovl_image.rw_lo);
}
uint64_t ovl_irqentry_enter(uint64_t *regs) {
    uint64_t f = irq_save();
    if (needs_buffer(regs) && inited)
        push_record((uint64_t)regs, ((uint64_t)KIND_IRQ << 32) | (uint32_t)state.holds[0], 0, 0);
    irq_restore(f);
    return irqentry_enter(regs);
}
void ovl_irqentry_exit(uint64_t *regs, uint64_t st) {
    irqentry_exit(regs, st);
    if (!needs_buffer(regs)) return;
    uint64_t f = irq_save();
    ovl_record r;
    if (pop_record((uint64_t)regs, &r) && (r.key >> 32) == KIND_IRQ) {
        int32_t k = (int32_t)(uint32_t)r.key;
        if (k >= 0 && state.holds[0] != k) enter(k, 0);
    }
    irq_restore(f);
}

/* Fast paths: nothing to load, room for the record. Return 0 for the slow path. */
#define OVL_FAST __attribute__((used, no_caller_saved_registers))
static inline __attribute__((always_inline)) uint64_t fast_target(uint64_t id) {
    if (!inited) return 0;
    if ((int64_t)id < 0) return id;
    if (id & 0x40000000u) {
        if (state.holds[0] != (int32_t)((id >> 16) & 0x3fff)) return 0;
        return ovl_image.buffer + (id & 0xffff);
    }
    if (id >= ovl_image.entry_count) return 0;
    const ovl_entry *e = (const ovl_entry *)ovl_image.entries + id;
    if (e->cluster < 0) return ((const uint64_t *)ovl_image.entry_origin)[id];
    return state.holds[0] == e->cluster ? ovl_image.buffer + e->value : 0;
}
static inline __attribute__((always_inline)) int room(uint64_t slot) {
    if (on_exception_stack(slot)) return 0;
    uint64_t *a = (uint64_t *)(slot & ~(STACK_BYTES - 1));
    return a[1] == (AREA_MARK ^ (uint64_t)a) && a[2] < CAPACITY - 1;
}
OVL_FAST uint64_t ovl_fast_call(uint64_t *frame) {
    if (in_buffer(frame[1]) && !room((uint64_t)&frame[1])) return 0;
    uint64_t t = fast_target(frame[0]);
    if (!t) return 0;
    frame[0] = t;
    protect_return(&frame[1], 0);
    return 1;
}
OVL_FAST uint64_t ovl_fast_jmp(uint64_t *frame) {
    uint64_t t = fast_target(frame[0]);
    if (!t) return 0;
    frame[0] = t;
    return 1;
}
OVL_FAST uint64_t ovl_fast_call_ind(uint64_t *frame) {
    uint64_t x = frame[1], id = ~0ULL;
    if (x >= ovl_image.jthunk_lo && x < ovl_image.jthunk_hi) id = *(const uint32_t *)(x + 6);
    else if (x >= ovl_image.cthunk_lo && x < ovl_image.cthunk_hi) id = *(const uint32_t *)(x + 1);
    if (in_buffer(frame[0]) && !room((uint64_t)&frame[1])) return 0;
    uint64_t t = id != ~0ULL ? fast_target(id) : x;
    if (!t) return 0;
    frame[1] = frame[0];
    frame[0] = t;
    protect_return(&frame[1], 0);
    return 1;
}
OVL_FAST uint64_t ovl_fast_return(uint64_t *frame) {
    if (on_exception_stack((uint64_t)frame)) return 0;
    uint64_t *a = (uint64_t *)((uint64_t)frame & ~(STACK_BYTES - 1));
    if (a[1] != (AREA_MARK ^ (uint64_t)a) || a[2] == 0) return 0;
    ovl_record *r = &RECORDS(a)[a[2] - 1];
    if (r->slot != (uint64_t)frame || (r->key >> 32) != KIND_BUFFER || state.holds[0] != (int32_t)(uint32_t)r->key) return 0;
    frame[0] = ovl_image.buffer + r->value;
    a[2]--;
    return 1;
}

/* The counters on the console: at the phase mark (sync) and at restart, halt or power-off. */
static void report(const char *tag) {
    const uint64_t *c = (const uint64_t *)ovl_image.counters;
    uint64_t k, loads = 0, bytes = 0, count = ovl_image.cluster_count, used = 0;
    for (k = 0; k < count; k++) { loads += c[k]; bytes += c[count + k]; if (c[k]) used++; }
    _printk("\001" "4ovl: %s loads %llu bytes %llu clusters %llu loaded %llu\n", tag,
            (unsigned long long)loads, (unsigned long long)bytes, (unsigned long long)count, (unsigned long long)used);
    char line[400];
    int n = 0, items = 0;
    for (k = 0; k <= count; k++) {
        if (k < count && c[k] == 0) continue;
        if (k == count || items == 12) {
            if (items) { line[n] = 0; _printk("\001" "4ovl: %s cluster-loads%s\n", tag, line); }
            n = 0; items = 0;
            if (k == count) break;
        }
        char t[48]; int i = 0;
        uint64_t v = c[k];
        do { t[i++] = (char)('0' + v % 10); v /= 10; } while (v);
        t[i++] = ':';
        v = k;
        do { t[i++] = (char)('0' + v % 10); v /= 10; } while (v);
        line[n++] = ' ';
        while (i) line[n++] = t[--i];
        items++;
    }
}

void ovl_report(void) { report("end"); }
void ovl_report_mark(void) { report("mark"); }

#define OVL_SAVE \
    "pushfq\n cli\n push %rax\n push %rcx\n push %rdx\n push %rsi\n push %rdi\n" \
    " push %r8\n push %r9\n push %r10\n push %r11\n push %rbx\n cld\n"
#define OVL_CALL(h) \
    " lea 88(%rsp), %rdi\n mov %rsp, %rbx\n and $-16, %rsp\n call " h "\n mov %rbx, %rsp\n"
/* Leaves with the caller's flags and EXIT (a `ret` to the address the manager chose).
   That address is only right while no interrupt can run in between (a handler may load
   another cluster), so when the caller had interrupts on they come back with `sti`,
   whose one-instruction shadow covers the `ret`. */
#define OVL_LEAVE(exit) \
    " btrq $9, (%rsp)\n jnc 9f\n popfq\n sti\n " exit "\n9:\n popfq\n " exit "\n"
#define OVL_FAST_PATH(fn, exit) \
    "pushfq\n cli\n push %rax\n push %rdi\n lea 24(%rsp), %rdi\n call " fn "\n test %rax, %rax\n" \
    " pop %rdi\n pop %rax\n jz 1f\n" OVL_LEAVE(exit) "1:\n popfq\n"
#define OVL_RESTORE(exit) \
    " pop %rbx\n pop %r11\n pop %r10\n pop %r9\n pop %r8\n pop %rdi\n pop %rsi\n" \
    " pop %rdx\n pop %rcx\n pop %rax\n" OVL_LEAVE(exit)

/* An interrupt may push its frame right below %rsp at any moment, so the manager never
   leaves a word it still needs below the stack pointer: it leaves with `ret`. */
__asm__(
    ".text\n"
    ".globl _dynamic_jmp\n.type _dynamic_jmp,@function\n_dynamic_jmp:\n"
    OVL_FAST_PATH("ovl_fast_jmp", "ret $128")
    OVL_SAVE OVL_CALL("ovl_on_jmp") OVL_RESTORE("ret $128")
    ".size _dynamic_jmp, .-_dynamic_jmp\n"
    ".globl _dynamic_call\n.type _dynamic_call,@function\n_dynamic_call:\n"
    OVL_FAST_PATH("ovl_fast_call", "ret")
    OVL_SAVE OVL_CALL("ovl_on_call") OVL_RESTORE("ret")
    ".size _dynamic_call, .-_dynamic_call\n"
    ".globl _dynamic_call_ind\n.type _dynamic_call_ind,@function\n_dynamic_call_ind:\n"
    OVL_FAST_PATH("ovl_fast_call_ind", "ret")
    OVL_SAVE OVL_CALL("ovl_on_call_ind") OVL_RESTORE("ret")
    ".size _dynamic_call_ind, .-_dynamic_call_ind\n"
    ".globl _ovl_return\n.type _ovl_return,@function\n_ovl_return:\n"
    " lea -8(%rsp), %rsp\n"
    OVL_FAST_PATH("ovl_fast_return", "ret")
    OVL_SAVE OVL_CALL("ovl_on_return") OVL_RESTORE("ret")
    ".size _ovl_return, .-_ovl_return\n"
    /* machine_restart/halt/power_off(arg): print the counters first. */
    ".globl ovl_hook_machine_restart\novl_hook_machine_restart:\n push %rdi\n call ovl_report\n pop %rdi\n jmp machine_restart\n"
    ".globl ovl_hook_machine_halt\novl_hook_machine_halt:\n push %rdi\n call ovl_report\n pop %rdi\n jmp machine_halt\n"
    ".globl ovl_hook_machine_power_off\novl_hook_machine_power_off:\n push %rdi\n call ovl_report\n pop %rdi\n jmp machine_power_off\n"
    ".globl ovl_hook_sys_sync\novl_hook_sys_sync:\n push %rdi\n call ovl_report_mark\n pop %rdi\n jmp __x64_sys_sync\n"
);
"""#
}
