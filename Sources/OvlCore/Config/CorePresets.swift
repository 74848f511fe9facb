/// The built-in core sets: code that has to stay in memory for the program to work, or
/// that runs so early or so often that overlaying it makes no sense. The README lists
/// them with the reasons; `section:NAME` entries pin every function of a section.
public enum CorePresets {
    public struct Entry: Sendable {
        public let pattern: String
        public let why: String
    }

    /// Statically linked programs (musl and glibc).
    public static let staticProgram: [Entry] = [
        Entry(pattern: "_start", why: "entry point"),
        Entry(pattern: "_start_c", why: "entry point (musl)"),
        Entry(pattern: "__libc_start_main", why: "start-up"),
        Entry(pattern: "libc_start_main_stage2", why: "start-up (musl)"),
        Entry(pattern: "__libc_start_call_main", why: "start-up (glibc)"),
        Entry(pattern: "__init_libc", why: "start-up (musl)"),
        Entry(pattern: "__init_tls", why: "start-up: thread-local storage (musl)"),
        Entry(pattern: "__libc_setup_tls", why: "start-up: thread-local storage (glibc)"),
        Entry(pattern: "_dl_relocate_static_pie", why: "start-up (glibc)"),
        Entry(pattern: "apply_irel", why: "start-up: IRELATIVE relocations run IFUNC resolvers (glibc)"),
        Entry(pattern: "_init", why: "start-up: .init"),
        Entry(pattern: "_fini", why: "exit: .fini"),
        Entry(pattern: "_Exit", why: "exit: the rewritten image's overlay manager writes its load counters here"),
        Entry(pattern: "_exit", why: "exit: the rewritten image's overlay manager writes its load counters here"),
        Entry(pattern: "__restore_rt", why: "signal return trampoline"),
        Entry(pattern: "__restore", why: "signal return trampoline"),
        Entry(pattern: "section:.init", why: "section .init runs before main"),
        Entry(pattern: "section:.fini", why: "section .fini runs at exit"),
        Entry(pattern: "section:.plt", why: "PLT stubs (IRELATIVE slots)"),
        Entry(pattern: "section:.iplt", why: "PLT stubs (IRELATIVE slots)"),
    ]

    /// Linux kernels: the scheduler and context switch, entry, trap and interrupt paths,
    /// page-fault handling (the paper's core), and the sections the kernel itself keeps
    /// apart because their code must not be instrumented or moved.
    public static let linux: [Entry] = [
        Entry(pattern: "section:.entry.text", why: "system call and interrupt entry"),
        Entry(pattern: "section:.noinstr.text", why: "non-instrumentable entry code"),
        Entry(pattern: "section:.cpuidle.text", why: "idle loop"),
        Entry(pattern: "section:.sched.text", why: "scheduler core"),
        Entry(pattern: "section:.spinlock.text", why: "spinlocks (run with interrupts off)"),
        Entry(pattern: "section:.lock.text", why: "lock slow paths"),
        Entry(pattern: "section:.irqentry.text", why: "interrupt entry"),
        Entry(pattern: "section:.softirqentry.text", why: "softirq entry"),
        Entry(pattern: "section:.head.text", why: "early boot"),
        Entry(pattern: "schedule*", why: "scheduler"),
        Entry(pattern: "__schedule", why: "scheduler"),
        Entry(pattern: "context_switch", why: "context switch"),
        Entry(pattern: "__switch_to*", why: "context switch"),
        Entry(pattern: "finish_task_switch*", why: "context switch"),
        Entry(pattern: "pick_next_task*", why: "scheduler"),
        Entry(pattern: "ret_from_fork*", why: "new tasks start here"),
        Entry(pattern: "entry_*", why: "system call entry"),
        Entry(pattern: "asm_exc_*", why: "exception entry"),
        Entry(pattern: "asm_sysvec_*", why: "interrupt entry"),
        Entry(pattern: "asm_common_interrupt", why: "interrupt entry"),
        Entry(pattern: "exc_*", why: "exception handlers"),
        Entry(pattern: "sysvec_*", why: "system vector interrupts"),
        Entry(pattern: "common_interrupt", why: "interrupt dispatch"),
        Entry(pattern: "handle_irq*", why: "interrupt dispatch"),
        Entry(pattern: "__handle_irq*", why: "interrupt dispatch"),
        Entry(pattern: "irq_exit*", why: "interrupt exit"),
        Entry(pattern: "irq_enter*", why: "interrupt entry"),
        Entry(pattern: "__do_softirq", why: "softirq processing"),
        Entry(pattern: "do_softirq*", why: "softirq processing"),
        Entry(pattern: "tick_*", why: "timer interrupt"),
        Entry(pattern: "hrtimer_interrupt", why: "timer interrupt"),
        Entry(pattern: "do_user_addr_fault", why: "page fault"),
        Entry(pattern: "do_kern_addr_fault", why: "page fault"),
        Entry(pattern: "handle_mm_fault", why: "page fault"),
        Entry(pattern: "__handle_mm_fault", why: "page fault"),
        Entry(pattern: "handle_pte_fault", why: "page fault"),
        Entry(pattern: "do_page_fault", why: "page fault"),
        Entry(pattern: "fixup_exception", why: "exception tables are searched from faults"),
        Entry(pattern: "search_exception_tables", why: "exception tables are searched from faults"),
        Entry(pattern: "native_*", why: "paravirt native operations (low-level CPU state)"),
        Entry(pattern: "__x86_indirect_thunk_*", why: "retpoline thunks"),
        Entry(pattern: "__x86_return_thunk", why: "return thunk"),
        Entry(pattern: "memcpy", why: "used while a cluster is copied into the buffer"),
        Entry(pattern: "memmove", why: "string primitive used everywhere"),
        Entry(pattern: "memset", why: "string primitive used everywhere"),
        Entry(pattern: "start_kernel", why: "boot entry"),
        Entry(pattern: "x86_64_start_kernel", why: "boot entry"),
        Entry(pattern: "secondary_startup_64*", why: "boot entry"),
        Entry(pattern: "do_idle", why: "idle loop"),
        Entry(pattern: "default_idle*", why: "idle loop"),
    ]

    /// The preset that applies to a program.
    public static func entries(_ preset: CorePreset, program: Program) -> [Entry] {
        switch preset {
        case .none: return []
        case .static: return staticProgram
        case .linux: return linux
        case .auto: return isLinuxKernel(program) ? linux : staticProgram
        }
    }

    public static func isLinuxKernel(_ p: Program) -> Bool {
        p.elf.symbols.contains { $0.name == "start_kernel" && $0.isFunction }
    }
}
