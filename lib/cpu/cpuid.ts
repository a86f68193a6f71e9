/**
 * CPUID: reports exactly what the interpreter implements. Vendor "NodeVMMx86TS" (unknown to guests, so Linux and
 * glibc take their generic paths). TSC frequency is reported through leaves 0x15/0x16 (1 GHz, see TSC_HZ).
 */

export interface CpuidConfig {
  /** The platform has a local APIC (sets CPUID.1:EDX.APIC). */
  apic: boolean;
  /** SIMD features implemented by lib/cpu/simd and wired into the executor. */
  sse3: boolean;
  ssse3: boolean;
  sse41: boolean;
}

const VENDOR = 'NodeVMMx86TS';
const BRAND = 'NodeVMM TypeScript x86-64 interpreter';

function str4(s: string, k: number): number {
  let v = 0;
  for (let b = 0; b < 4; b++) v |= (s.charCodeAt(k + b) || 0) << (8 * b);
  return v >>> 0;
}

/** [eax, ebx, ecx, edx] for leaf/subleaf. */
export function cpuid(cfg: CpuidConfig, leaf: number, subleaf: number): [number, number, number, number] {
  void subleaf;
  switch (leaf >>> 0) {
    case 0: return [0x16, str4(VENDOR, 0), str4(VENDOR, 8), str4(VENDOR, 4)];
    case 1: {
      const eax = 0x000006f1; // family 6, model 15, stepping 1
      const ebx = (8 << 8) | (1 << 16); // CLFLUSH line 64 bytes, 1 logical processor, APIC ID 0
      const ecx = (cfg.sse3 ? 1 : 0) | (cfg.ssse3 ? 1 << 9 : 0) | (1 << 13) /* CX16 */ | (cfg.sse41 ? 1 << 19 : 0) | (1 << 23) /* POPCNT */;
      const edx = (1 << 0) /* FPU */ | (1 << 3) /* PSE */ | (1 << 4) /* TSC */ | (1 << 5) /* MSR */ | (1 << 6) /* PAE */ | (1 << 8) /* CX8 */ |
        (cfg.apic ? 1 << 9 : 0) | (1 << 11) /* SEP */ | (1 << 13) /* PGE */ | (1 << 15) /* CMOV */ | (1 << 16) /* PAT */ | (1 << 17) /* PSE36 */ |
        (1 << 19) /* CLFSH */ | (1 << 23) /* MMX */ | (1 << 24) /* FXSR */ | (1 << 25) /* SSE */ | (1 << 26) /* SSE2 */;
      return [eax, ebx, ecx >>> 0, edx >>> 0];
    }
    case 0x15: return [1, 1, 1_000_000_000, 0]; // TSC = crystal (1 GHz) × 1/1
    case 0x16: return [1000, 1000, 100, 0]; // base/max MHz, bus MHz
    case 0x80000000: return [0x80000008, 0, 0, 0];
    case 0x80000001: return [0, 0, 1 /* LAHF/SAHF in 64-bit mode */, ((1 << 11) /* SYSCALL */ | (1 << 20) /* NX */ | (1 << 27) /* RDTSCP */ | (1 << 29) /* LM */) >>> 0];
    case 0x80000002: case 0x80000003: case 0x80000004: {
      const k = (leaf - 0x80000002) * 16;
      return [str4(BRAND, k), str4(BRAND, k + 4), str4(BRAND, k + 8), str4(BRAND, k + 12)];
    }
    case 0x80000007: return [0, 0, 0, 1 << 8]; // invariant TSC
    case 0x80000008: return [40 | (48 << 8), 0, 0, 0];
    default: return [0, 0, 0, 0];
  }
}
