export { KvmAccelerator, type KvmAcceleratorOptions } from './kvm-accelerator.js';
export { baseCpuid, perVcpuCpuid, maskedFeatureNames, type CpuidPolicy } from './cpuid.js';
export { EmulationCompleter, type EmulationOutcome } from './emulation.js';
export { applyBootState } from './boot-state.js';
