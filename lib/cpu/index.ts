/** Public API of the x86 interpreter. */
export { Cpu, CpuStop, TripleFault, TSC_HZ, type CpuOptions, type PlatformMsrs, type StopReason, type CodeHook, type MemHook, type EventHook, type PortHook } from './cpu.js';
export { exportState, importState, stepExternal, STATE_MSRS, type CpuState, type RegsState, type SregsState, type SegmentState, type StepExternalOptions } from './state.js';
export { ExternalStepper, type ExternalStepperOptions, type ExternalStepInput, type ExternalStepResult } from './external-stepper.js';
export { getRegister, setRegister } from './registers.js';
export { StandaloneMachine, type MapPermissions } from './standalone.js';
export { decode, Insn } from './decoder/decode.js';
export { cpuid, type CpuidConfig } from './cpuid.js';
export { UnsupportedError } from './interrupts.js';
export { importBootState } from './boot-state.js';
