#include "ovl_zydis.h"

#include <string.h>
#include <Zydis/Zydis.h>

static ZydisDecoder decoder64;
static ZydisFormatter formatter;
static int initialised = 0;

static void init_once(void) {
    if (initialised) return;
    ZydisDecoderInit(&decoder64, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);
    ZydisFormatterInit(&formatter, ZYDIS_FORMATTER_STYLE_ATT);
    initialised = 1;
}

__attribute__((constructor)) static void ovl_zydis_ctor(void) { init_once(); }

static int is_padding(const ZydisDecodedInstruction *in) {
    switch (in->mnemonic) {
    case ZYDIS_MNEMONIC_NOP:
    case ZYDIS_MNEMONIC_INT3:
        return 1;
    case ZYDIS_MNEMONIC_XCHG:
        // 66 90 is `xchg %ax,%ax`, the two-byte nop.
        return in->opcode == 0x90;
    default:
        return 0;
    }
}

int ovl_decode(const uint8_t *buf, size_t len, uint64_t addr, ovl_insn *out) {
    ZydisDecodedInstruction in;
    memset(out, 0, sizeof(*out));
    if (!ZYAN_SUCCESS(ZydisDecoderDecodeInstruction(&decoder64, NULL, buf, len, &in))) {
        return 0;
    }
    out->length = in.length;
    out->is_padding = (uint8_t)is_padding(&in);
    out->is_rep_string = (in.attributes & (ZYDIS_ATTRIB_HAS_REP | ZYDIS_ATTRIB_HAS_REPE |
                                           ZYDIS_ATTRIB_HAS_REPNE)) != 0 &&
                         in.meta.category == ZYDIS_CATEGORY_STRINGOP;
    out->is_privileged = (in.attributes & ZYDIS_ATTRIB_IS_PRIVILEGED) != 0;
    if (in.attributes & ZYDIS_ATTRIB_HAS_MODRM) {
        out->has_modrm_mem = in.raw.modrm.mod != 3;
        out->mem_rip = in.raw.modrm.mod == 0 && in.raw.modrm.rm == 5 &&
                       !(in.attributes & ZYDIS_ATTRIB_HAS_SIB);
        out->mem_has_index = (in.attributes & ZYDIS_ATTRIB_HAS_SIB) && in.raw.sib.index != 4;
    }
    if (in.raw.disp.size) {
        out->disp_offset = in.raw.disp.offset;
        out->disp_size = (uint8_t)(in.raw.disp.size / 8);
        out->disp = in.raw.disp.value;
    }

    const int relative = in.raw.imm[0].is_relative;
    if (relative) {
        out->imm_offset = in.raw.imm[0].offset;
        out->imm_size = (uint8_t)(in.raw.imm[0].size / 8);
        out->target = (int64_t)(addr + in.length) + in.raw.imm[0].value.s;
    }
    switch (in.meta.category) {
    case ZYDIS_CATEGORY_UNCOND_BR:
        if (in.mnemonic == ZYDIS_MNEMONIC_JMP && relative) out->flow = OVL_FLOW_JMP;
        else if (in.mnemonic == ZYDIS_MNEMONIC_JMP && in.opcode == 0xEA) out->flow = OVL_FLOW_FAR;
        else if (in.mnemonic == ZYDIS_MNEMONIC_JMP && in.raw.modrm.reg == 5 && in.opcode == 0xFF) out->flow = OVL_FLOW_FAR;
        else out->flow = OVL_FLOW_IJMP;
        break;
    case ZYDIS_CATEGORY_COND_BR:
        out->flow = relative ? OVL_FLOW_JCC : OVL_FLOW_IJMP;
        break;
    case ZYDIS_CATEGORY_CALL:
        if (relative) out->flow = OVL_FLOW_CALL;
        else if (in.opcode == 0xFF && in.raw.modrm.reg == 3) out->flow = OVL_FLOW_FAR;
        else if (in.opcode == 0x9A) out->flow = OVL_FLOW_FAR;
        else out->flow = OVL_FLOW_ICALL;
        break;
    case ZYDIS_CATEGORY_RET:
        out->flow = OVL_FLOW_RET;
        break;
    case ZYDIS_CATEGORY_SYSRET:
        out->flow = OVL_FLOW_RET;
        break;
    default:
        switch (in.mnemonic) {
        case ZYDIS_MNEMONIC_IRET:
        case ZYDIS_MNEMONIC_IRETD:
        case ZYDIS_MNEMONIC_IRETQ:
        case ZYDIS_MNEMONIC_SYSEXIT:
        case ZYDIS_MNEMONIC_SYSRET:
            out->flow = OVL_FLOW_RET;
            break;
        case ZYDIS_MNEMONIC_HLT:  // resumes only after an interrupt; never in user code
        case ZYDIS_MNEMONIC_UD2:
        case ZYDIS_MNEMONIC_UD0:
        case ZYDIS_MNEMONIC_UD1:
            out->flow = OVL_FLOW_STOP;
            break;
        default:
            out->flow = OVL_FLOW_NONE;
        }
    }
    return 1;
}

int ovl_format(const uint8_t *buf, size_t len, uint64_t addr, char *text, size_t text_size) {
    ZydisDecodedInstruction in;
    ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
    if (!ZYAN_SUCCESS(ZydisDecoderDecodeFull(&decoder64, buf, len, &in, ops))) {
        if (text_size) text[0] = 0;
        return 0;
    }
    if (!ZYAN_SUCCESS(ZydisFormatterFormatInstruction(&formatter, &in, ops, in.operand_count_visible,
                                                      text, text_size, addr, NULL))) {
        if (text_size) text[0] = 0;
    }
    return in.length;
}
