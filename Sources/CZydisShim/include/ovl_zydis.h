// A narrow C interface over Zydis for ovl. Swift cannot call Zydis' function-like
// macros (ZYAN_SUCCESS and friends) and does not need most of its structures, so the
// decoder hands back one flat record per instruction.
#ifndef OVL_ZYDIS_H
#define OVL_ZYDIS_H

#include <stddef.h>
#include <stdint.h>

/// How an instruction transfers control. The values are shared with Swift's
/// `TransferKind`; keep them in step.
enum {
    OVL_FLOW_NONE = 0,     ///< falls through to the next instruction
    OVL_FLOW_JMP = 1,      ///< direct unconditional jump (rel8/rel32)
    OVL_FLOW_JCC = 2,      ///< direct conditional jump, loop, jrcxz
    OVL_FLOW_CALL = 3,     ///< direct call (rel32)
    OVL_FLOW_RET = 4,      ///< ret, iret, sysret, sysexit
    OVL_FLOW_IJMP = 5,     ///< jump through a register or memory operand
    OVL_FLOW_ICALL = 6,    ///< call through a register or memory operand
    OVL_FLOW_STOP = 7,     ///< ud2, hlt: control does not run on to the next instruction
    OVL_FLOW_FAR = 8,      ///< far jumps and calls: unknown target, treated as indirect
};

typedef struct {
    uint8_t length;        ///< instruction length in bytes (0 when undecodable)
    uint8_t flow;          ///< one of OVL_FLOW_*
    uint8_t is_padding;    ///< nop forms and int3: what compilers put between functions
    uint8_t is_rep_string; ///< rep/repe/repne-prefixed string instruction (QEMU logs each iteration)
    uint8_t imm_offset;    ///< offset of the relative immediate in the instruction (branches)
    uint8_t imm_size;      ///< its size in bytes (1, 2 or 4); 0 when there is none
    uint8_t disp_offset;   ///< offset of the memory displacement; 0 when there is none
    uint8_t disp_size;     ///< its size in bytes
    uint8_t mem_rip;       ///< the memory operand is RIP-relative
    uint8_t mem_has_index; ///< the memory operand has an index register (table lookups)
    uint8_t has_modrm_mem; ///< there is a memory operand (ModRM.mod != 3)
    uint8_t is_privileged; ///< privileged or system instruction (kernel code)
    int64_t target;        ///< absolute target of a direct branch
    int64_t disp;          ///< memory displacement value
} ovl_insn;

/// Decodes one 64-bit instruction at `addr` from `buf[0..<len]`. Returns 1 on success,
/// 0 when the bytes are not a valid instruction (out->length is then 0).
int ovl_decode(const uint8_t *buf, size_t len, uint64_t addr, ovl_insn *out);

/// Formats one instruction in AT&T syntax into `text` (NUL-terminated). Returns its
/// length in bytes, or 0 when undecodable.
int ovl_format(const uint8_t *buf, size_t len, uint64_t addr, char *text, size_t text_size);

#endif
