/**
 * MSR values the VMM sets on every vCPU before the first instruction. Firmware would normally leave these
 * behind; with no firmware the VMM does it. Values are 64-bit, so they are bigints.
 */

export interface BootMsr {
  readonly index: number;
  readonly name: string;
  readonly value: bigint;
}

export const MSR_IA32_TSC = 0x10;
export const MSR_IA32_APIC_BASE = 0x1b;
export const MSR_IA32_SYSENTER_CS = 0x174;
export const MSR_IA32_SYSENTER_ESP = 0x175;
export const MSR_IA32_SYSENTER_EIP = 0x176;
export const MSR_IA32_MISC_ENABLE = 0x1a0;
export const MSR_IA32_PAT = 0x277;
export const MSR_MTRR_DEF_TYPE = 0x2ff;
export const MSR_EFER = 0xc000_0080;
export const MSR_STAR = 0xc000_0081;
export const MSR_LSTAR = 0xc000_0082;
export const MSR_CSTAR = 0xc000_0083;
export const MSR_SYSCALL_MASK = 0xc000_0084;
export const MSR_KERNEL_GS_BASE = 0xc000_0102;

/** IA32_MISC_ENABLE bit 0: fast string operations (rep movs/stos) enabled, as every BIOS leaves it. */
export const MISC_ENABLE_FAST_STRING = 1n;
/** Power-on PAT: WB, WT, UC-, UC repeated (Intel SDM vol. 3, "PAT initialization"). */
export const PAT_POWER_ON_DEFAULT = 0x0007_0406_0007_0406n;
/** MTRRs enabled (bit 11) with write-back (6) as the default type, so RAM is cacheable without MTRR setup. */
export const MTRR_DEF_TYPE_ENABLED_WB = (1n << 11n) | 6n;

export const APIC_BASE_ENABLE = 1 << 11;
export const APIC_BASE_BSP = 1 << 8;

/** The MSRs written on each vCPU at boot (the same list for the BSP and the APs). */
export function bootMsrs(): BootMsr[] {
  return [
    { index: MSR_IA32_SYSENTER_CS, name: 'IA32_SYSENTER_CS', value: 0n },
    { index: MSR_IA32_SYSENTER_ESP, name: 'IA32_SYSENTER_ESP', value: 0n },
    { index: MSR_IA32_SYSENTER_EIP, name: 'IA32_SYSENTER_EIP', value: 0n },
    { index: MSR_STAR, name: 'STAR', value: 0n },
    { index: MSR_CSTAR, name: 'CSTAR', value: 0n },
    { index: MSR_KERNEL_GS_BASE, name: 'KERNEL_GS_BASE', value: 0n },
    { index: MSR_SYSCALL_MASK, name: 'SYSCALL_MASK', value: 0n },
    { index: MSR_LSTAR, name: 'LSTAR', value: 0n },
    { index: MSR_IA32_TSC, name: 'IA32_TSC', value: 0n },
    { index: MSR_IA32_MISC_ENABLE, name: 'IA32_MISC_ENABLE', value: MISC_ENABLE_FAST_STRING },
    { index: MSR_IA32_PAT, name: 'IA32_PAT', value: PAT_POWER_ON_DEFAULT },
    { index: MSR_MTRR_DEF_TYPE, name: 'MTRRdefType', value: MTRR_DEF_TYPE_ENABLED_WB },
  ];
}
