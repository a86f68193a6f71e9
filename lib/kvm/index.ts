/** Public API of the KVM layer. Only lib/kvm touches the native addon. */
export { Kvm, probeKvm, DEFAULT_KVM_PATH, type KvmProbe } from './system.js';
export { KvmVm, type MemoryRegionSpec, type MemoryRegionInfo, type IoeventfdSpec } from './vm.js';
export { KvmVcpu, type ExitHandlers, type PioHandler, type MmioHandler, type RunResult } from './vcpu.js';
export { GuestRam } from './guest-ram.js';
export { SyncedRegisters } from './sync-regs.js';
export { EventFd } from './eventfd.js';
export { RunPage, type VcpuExit, type VcpuExitReason } from './exits.js';
export { KvmError, errnoName } from './errors.js';
export { instructionAt, instructionAtState, walkPageTables, linearRip, cpuMode, type CpuMode, type InstructionAt } from './guest-code.js';
export * from './constants.js';
export type {
  Regs, Sregs, Segment, DescriptorTable, Fpu, VcpuEvents, DebugRegs, Xcr, CpuidEntry, MsrEntry, Translation,
  ClockData, GsiRoute,
} from './structs.js';
export { REG_NAMES } from './structs.js';
