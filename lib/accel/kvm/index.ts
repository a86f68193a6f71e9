export { KvmAccelerator, type KvmAcceleratorOptions } from './kvm-accelerator.js';
export { baseCpuid, perVcpuCpuid, maskedFeatureNames, type CpuidPolicy } from './cpuid.js';
export { EmulationCompleter, type EmulationOutcome } from './emulation.js';
export { applyBootState } from './boot-state.js';
export {
  PlatformSnapshot, readPlatformState, decodePicState, decodeIoapicState, decodePitState, IOAPIC_REDIR_MASKED, KVM_IOAPIC_PINS,
  type PlatformState, type PicState, type IoapicState, type PitState, type PitChannelState,
} from './platform-state.js';
