/**
 * The CPUID table nodevmm gives a KVM guest: KVM_GET_SUPPORTED_CPUID, minus what nodevmm does not support,
 * minus (on an emulating host such as kvm_pvm) what that host's in-kernel instruction emulator cannot run at
 * CPL0, plus per-vCPU APIC IDs and topology.
 */
import type { CpuidEntry } from '../../kvm/index.js';

const bit = (n: number): number => (1 << n) >>> 0;

// Leaf 1 ECX.
const L1C_MONITOR = bit(3);
const L1C_CX16 = bit(13);
const L1C_MOVBE = bit(22);
const L1C_POPCNT = bit(23);
const L1C_XSAVE = bit(26);
const L1C_OSXSAVE = bit(27);
const L1C_AVX = bit(28);
const L1C_F16C = bit(29);
const L1C_RDRAND = bit(30);
const L1C_FMA = bit(12);
// Leaf 7.0 EBX / ECX / EDX.
const L7B_FSGSBASE = bit(0);
const L7B_AVX2 = bit(5);
const L7B_SMAP = bit(20);
const L7B_RDSEED = bit(18);
/** AVX512F, DQ, IFMA, PF, ER, CD, BW, VL. */
const L7B_AVX512 = bit(16) | bit(17) | bit(21) | bit(26) | bit(27) | bit(28) | bit(30) | bit(31);
/** AVX512_VBMI, VBMI2, VNNI, BITALG, VPOPCNTDQ; VAES/VPCLMULQDQ need AVX too. */
const L7C_AVX512 = bit(1) | bit(6) | bit(9) | bit(10) | bit(11) | bit(12) | bit(14);
const L7D_AVX512 = bit(2) | bit(3) | bit(8) | bit(23);
// Leaf 0x80000001 ECX.
const LX1C_ABM = bit(5); // LZCNT (and POPCNT on AMD's description)

export const KVM_CPUID_SIGNATURE = 0x4000_0000;
export const KVM_CPUID_FEATURES = 0x4000_0001;
const XSAVE_LEAF = 0xd;

export interface CpuidPolicy {
  /** The host KVM emulates guest supervisor code (kvm_pvm): hide what its emulator cannot complete. */
  emulatingHost: boolean;
  cpus: number;
}

/** What is hidden and why, for the accelerator's description and the report. */
export function maskedFeatureNames(policy: CpuidPolicy): string[] {
  return policy.emulatingHost
    ? ['cx16', 'popcnt', 'movbe', 'xsave', 'osxsave', 'avx', 'avx2', 'avx-512', 'fma', 'f16c', 'smap', 'rdrand', 'rdseed',
      'fsgsbase', 'kvm-paravirt features']
    : [];
}

/** The table for every vCPU (apply perVcpuCpuid for each vCPU's APIC ID). */
export function baseCpuid(supported: readonly CpuidEntry[], policy: CpuidPolicy): CpuidEntry[] {
  const out: CpuidEntry[] = [];
  for (const src of supported) {
    const e = { ...src };
    if (e.function === 1) {
      e.ecx &= ~L1C_MONITOR; // no MWAIT emulation
      if (policy.emulatingHost) {
        e.ecx &= ~(L1C_CX16 | L1C_MOVBE | L1C_POPCNT | L1C_XSAVE | L1C_OSXSAVE | L1C_AVX | L1C_F16C | L1C_FMA | L1C_RDRAND);
      }
      e.ecx >>>= 0;
    } else if (e.function === 7 && e.index === 0 && policy.emulatingHost) {
      e.ebx = (e.ebx & ~(L7B_FSGSBASE | L7B_AVX2 | L7B_AVX512 | L7B_SMAP | L7B_RDSEED)) >>> 0;
      e.ecx = (e.ecx & ~L7C_AVX512) >>> 0;
      e.edx = (e.edx & ~L7D_AVX512) >>> 0;
    } else if (e.function === XSAVE_LEAF && policy.emulatingHost) {
      continue; // no XSAVE: the state-component leaf must not advertise any
    } else if (e.function === KVM_CPUID_FEATURES && policy.emulatingHost) {
      // kvm-clock and the other paravirt features make Linux take paths (e.g. pv spinlocks, async PF) this host's
      // emulator trips over; the plain PIT/TSC path works.
      e.eax = 0;
      e.edx = 0;
    } else if (e.function === 0x8000_0001 && policy.emulatingHost) {
      e.ecx = (e.ecx & ~LX1C_ABM) >>> 0;
    }
    out.push(e);
  }
  return out;
}

/** APIC ID and topology for vCPU `apicId` (one core per package, one thread per core: the simplest truthful topology). */
export function perVcpuCpuid(base: readonly CpuidEntry[], apicId: number): CpuidEntry[] {
  return base.map((src) => {
    const e = { ...src };
    if (e.function === 1) {
      // EBX[31:24] initial APIC ID, [23:16] logical processors per package (1), HTT off.
      e.ebx = ((e.ebx & 0x0000ffff) | (1 << 16) | ((apicId & 0xff) << 24)) >>> 0;
      e.edx = (e.edx & ~bit(28)) >>> 0;
    } else if (e.function === 0xb || e.function === 0x1f) {
      // x2APIC topology: level 0 = SMT (1 thread), level 1 = core (1 core); EDX = x2APIC ID on every subleaf.
      if (e.index === 0) { e.eax = 0; e.ebx = 1; e.ecx = (1 << 8) | 0; }
      else if (e.index === 1) { e.eax = 0; e.ebx = 1; e.ecx = (2 << 8) | 1; }
      else { e.eax = 0; e.ebx = 0; e.ecx = e.index; }
      e.edx = apicId >>> 0;
    } else if (e.function === 4) {
      // Cores per package - 1 in EAX[31:26]: 0; threads sharing the cache - 1 in EAX[25:14]: 0.
      e.eax = (e.eax & 0x3fff) >>> 0;
    }
    return e;
  });
}
