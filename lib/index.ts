/**
 * nodevmm's public API: build and run machines from TypeScript.
 *
 *   import { Machine, validateMachineConfig } from 'nodevmm';
 *   const m = await Machine.create(validateMachineConfig({ memoryMiB: 256, kernel: 'bzImage', serial: 'none' }));
 *   m.serial.addOutputListener((bytes) => process.stdout.write(bytes));
 *   m.start();
 *   const { status } = await m.wait();
 */
export { Machine, type MachineOptions, type MachineState } from './machine/machine.js';
export type { MachineExit, MachineExitReason } from './machine/exit-status.js';
export {
  validateMachineConfig, ConfigError, DEFAULT_CMDLINE, MAX_VCPUS, MIN_MEMORY_MIB, MAX_MEMORY_MIB,
  type MachineConfig, type MachineConfigInput, type SerialConfig, type DiskConfig, type Accel,
} from './machine/config.js';
export { LoaderError, detectKernelFormat, type KernelFormat, type KernelBootInfo } from './machine/loader/index.js';
export { GuestMemory, GuestMemoryError } from './machine/guest-memory.js';
export { Bus, type BusDevice } from './machine/bus.js';
export type { IrqLine, InterruptController, MsiSink } from './machine/irq.js';
export type { BootCpuState } from './machine/boot/cpu-state.js';

// Accelerators.
export type { Accelerator, AcceleratorFactory, AcceleratorOptions, AccelName, VcpuStop, MachineBuses, RamRegion } from './accel/accelerator.js';
export { selectAccelerator, AcceleratorUnavailableError, type SelectedAccelerator } from './accel/select.js';
export { probeKvmHost, type KvmHostProbe, type KvmHostModule } from './accel/probe.js';
export { KvmAccelerator, type KvmAcceleratorOptions } from './accel/kvm/index.js';
export { probeKvm, KvmError, type KvmProbe } from './kvm/index.js';

// Devices a user may want to drive or reuse.
export { Uart16550, COM1 } from './devices/serial/index.js';
export { formatBootMarker, type BootMarkerEvent } from './devices/boot-marker.js';
export { bindSerial, type SerialDestination } from './console/index.js';

// Disks and the reference guest.
export { openBlockBackend, createQcow2, BlockBackendError, type BlockBackend } from './block/index.js';
export {
  buildReferenceGuest, referenceGuestArch, referenceGuestDir, ReferenceGuestBuildError, type GuestArch,
} from './guest/reference-guest.js';

// The command line, for embedding.
export { runCli } from './cli/main.js';
