/** Accelerator-neutral boot state and tables. */
export type { BootCpuState, CpuMode, GeneralRegisters, SegmentState, SystemRegisters, TableRegister } from './cpu-state.js';
export { buildBootGdt, decodeDescriptor, encodeDescriptor, writeDescriptorTables, BOOT_CS_SELECTOR, BOOT_DS_SELECTOR, BOOT_TSS_SELECTOR } from './gdt.js';
export { writeIdentityPageTables, translateLinear } from './page-tables.js';
export { setupLongModeEntry, BSP_APIC_BASE } from './long-mode.js';
export { setupProtectedModeEntry } from './protected-mode.js';
export { buildMpTable, writeMpTable, type MpTableInfo, type MpTableOptions } from './mptable.js';
export { bootMsrs, type BootMsr } from './msrs.js';
