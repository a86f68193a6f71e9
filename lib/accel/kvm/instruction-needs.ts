/**
 * Which parts of the vCPU state one instruction can read or write beyond the general registers and the segment /
 * control registers: the x87/MMX/SSE state (KVM_GET_FPU) and the MSRs the interpreter carries (KVM_GET_MSRS).
 * Completing a failed emulation fetches those only when needed: each ioctl costs ~10-20 µs on kvm_pvm.
 *
 * Conservative by construction: an opcode is "plain" (needs neither) only when it is on the allow-lists below,
 * which hold integer and system instructions whose operation (Intel SDM vol. 2) involves no x87/SSE register,
 * MXCSR or MSR. Anything unknown, any VEX/EVEX/XOP encoding, and any byte sequence that cannot be parsed, needs
 * both. Exception and interrupt delivery need neither (IDT, TSS, stack and segment state only).
 */

export interface InstructionNeeds {
  /** x87 / MMX / SSE registers, MXCSR, FSW/FCW/FTW (kvm_fpu). */
  fpu: boolean;
  /** The MSRs in lib/cpu STATE_MSRS (SYSENTER_*, STAR/LSTAR/CSTAR/SFMASK, KERNEL_GS_BASE, TSC_AUX, PAT, MISC_ENABLE). */
  msrs: boolean;
}

const BOTH: InstructionNeeds = { fpu: true, msrs: true };
const PLAIN: InstructionNeeds = { fpu: false, msrs: false };
const FPU: InstructionNeeds = { fpu: true, msrs: false };
const MSRS: InstructionNeeds = { fpu: false, msrs: true };

const LEGACY_PREFIXES = new Set([0xf0, 0xf2, 0xf3, 0x2e, 0x36, 0x3e, 0x26, 0x64, 0x65, 0x66, 0x67]);

/**
 * One-byte opcodes that touch x87/SSE state or are escapes to encodings that may: D8-DF (x87), 9B (FWAIT checks
 * pending x87 exceptions), C4/C5/62/8F (VEX/EVEX/XOP where they are not LES/LDS/BOUND/POP r/m — not worth
 * telling apart here). 0F is the two-byte escape, handled separately.
 */
function oneByteNeedsFpu(op: number): boolean {
  return (op >= 0xd8 && op <= 0xdf) || op === 0x9b || op === 0xc4 || op === 0xc5 || op === 0x62 || op === 0x8f;
}

/** 0F xx opcodes with no x87/SSE/MSR involvement (system, cmov/jcc/setcc, bit ops, string of integer ops...). */
function twoBytePlain(op: number): boolean {
  return (op >= 0x00 && op <= 0x04) || op === 0x06 || op === 0x08 || op === 0x09 || op === 0x0b || op === 0x0d ||
    (op >= 0x18 && op <= 0x1f) || (op >= 0x20 && op <= 0x23) || op === 0x31 || op === 0x33 ||
    (op >= 0x40 && op <= 0x4f) || (op >= 0x80 && op <= 0xad) || (op >= 0xaf && op <= 0xc1) || (op >= 0xc8 && op <= 0xcf);
}

/** 0F xx opcodes that read or write the carried MSRs: WRMSR, RDMSR, SYSCALL, SYSRET, SYSENTER, SYSEXIT. */
function twoByteMsrs(op: number): boolean {
  return op === 0x30 || op === 0x32 || op === 0x05 || op === 0x07 || op === 0x34 || op === 0x35;
}

/**
 * What the instruction starting at bytes[0] needs. `longMode` is true in 64-bit code (CS.L with EFER.LMA), where
 * 0x40-0x4F are REX prefixes rather than INC/DEC.
 */
export function instructionNeeds(bytes: Uint8Array, longMode: boolean): InstructionNeeds {
  let i = 0;
  while (i < bytes.length && i < 15 && LEGACY_PREFIXES.has(bytes[i]!)) i++;
  if (longMode && i < bytes.length && (bytes[i]! & 0xf0) === 0x40) i++;
  if (i >= bytes.length) return BOTH;
  const op = bytes[i]!;
  if (op !== 0x0f) return oneByteNeedsFpu(op) ? FPU : PLAIN;
  if (i + 1 >= bytes.length) return BOTH;
  const op2 = bytes[i + 1]!;
  const modrm = i + 2 < bytes.length ? bytes[i + 2] : undefined;
  if (op2 === 0x01) {
    if (modrm === undefined) return BOTH;
    // SWAPGS (KERNEL_GS_BASE) and RDTSCP (TSC_AUX); XSAVE-family helpers XGETBV/XSETBV use XCR0 only.
    if (modrm === 0xf8 || modrm === 0xf9) return MSRS;
    return PLAIN;
  }
  if (twoByteMsrs(op2)) return MSRS;
  if (op2 === 0x38) {
    // MOVBE (0F 38 F0/F1) and CRC32 (F2 0F 38 F0/F1): integer only. The rest of the map is SSE/SHA/AES...
    const op3 = i + 2 < bytes.length ? bytes[i + 2]! : -1;
    return op3 === 0xf0 || op3 === 0xf1 ? PLAIN : FPU;
  }
  if (op2 === 0xae) {
    if (modrm === undefined) return BOTH;
    // Register forms: LFENCE/MFENCE/SFENCE and RD/WR FS/GS BASE. Memory /7: CLFLUSH(OPT). Others: FXSAVE,
    // FXRSTOR, LDMXCSR, STMXCSR, XSAVE, XRSTOR, XSAVEOPT — FPU state.
    return (modrm >> 6) === 3 || ((modrm >> 3) & 7) === 7 ? PLAIN : FPU;
  }
  if (op2 === 0xc7) {
    if (modrm === undefined) return BOTH;
    const reg = (modrm >> 3) & 7;
    if ((modrm >> 6) !== 3 && (reg === 3 || reg === 4 || reg === 5)) return FPU; // XRSTORS, XSAVEC, XSAVES
    if ((modrm >> 6) === 3 && reg === 7) return MSRS; // RDPID (TSC_AUX) / RDSEED
    return PLAIN; // CMPXCHG8B/16B, RDRAND
  }
  return twoBytePlain(op2) ? PLAIN : FPU;
}
