/**
 * What CPUID says on the interpreter, per vCPU: lib/cpu's own table (exactly the instructions it implements) plus
 * the platform the accelerator wires up: the local APIC, TSC-deadline when the LAPIC timer accepts it, the vCPU's
 * initial APIC ID (leaf 1 EBX[31:24]) and a one-core-per-package topology. No hypervisor leaves (0x40000000+):
 * nothing paravirtual is implemented, so a guest must not look for kvm-clock or PV features. No x2APIC.
 */

export type CpuidResult = [number, number, number, number];

export interface InterpCpuidPlatform {
  apicId: number;
  /** The LAPIC timer accepts TSC-deadline mode (CPUID.1:ECX[24]). */
  tscDeadline: boolean;
}

const L1C_X2APIC = 1 << 21;
const L1C_TSC_DEADLINE = 1 << 24;
const L1C_HYPERVISOR = 1 << 31;
const L1D_APIC = 1 << 9;
const L1D_HTT = 1 << 28;
/** Leaves 0x15/0x16 (TSC/crystal frequency) are hidden: Linux then calibrates the TSC against the PIT. */
const HIDDEN_LEAVES = new Set([0x15, 0x16]);

/** Returns the filter a Cpu applies to its built-in CPUID results. */
export function interpCpuidFilter(platform: InterpCpuidPlatform): (leaf: number, subleaf: number, r: CpuidResult) => CpuidResult {
  const apicId = platform.apicId & 0xff;
  return (leaf, _subleaf, r) => {
    if (HIDDEN_LEAVES.has(leaf) || (leaf >= 0x4000_0000 && leaf < 0x5000_0000)) return [0, 0, 0, 0];
    if (leaf === 0) return [Math.min(r[0], 0xd), r[1], r[2], r[3]];
    if (leaf !== 1) return r;
    // EBX: [31:24] initial APIC ID, [23:16] logical processors per package (1), [15:8] CLFLUSH size.
    const ebx = ((r[1] & 0x0000ffff) | (1 << 16) | (apicId << 24)) >>> 0;
    let ecx = r[2] & ~(L1C_X2APIC | L1C_HYPERVISOR | L1C_TSC_DEADLINE);
    if (platform.tscDeadline) ecx |= L1C_TSC_DEADLINE;
    const edx = (r[3] | L1D_APIC) & ~L1D_HTT;
    return [r[0], ebx, ecx >>> 0, edx >>> 0];
  };
}
