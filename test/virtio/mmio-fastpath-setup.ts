/**
 * Shared setup for the virtio-mmio fast-path tests and bench: a KVM VM with the in-kernel irqchip and the KVM
 * fast paths, one virtio-mmio transport on the MMIO bus (interrupt on GSI 5 through KVM_IRQ_LINE) initialised by
 * the host-side test driver, and a CPL3 long-mode guest that writes QueueNotify in phases (`count` 32-bit writes
 * of `value` each), optionally spins until the device has used a buffer on queue 0, then writes SENTINEL
 * (which kicks the vCPU out of runLoop / runInline).
 */
import type { AcceleratorFastPaths } from '../../lib/accel/accelerator.js';
import type { KvmVcpu } from '../../lib/kvm/index.js';
import { Bus } from '../../lib/machine/bus.js';
import type { VirtioDevice } from '../../lib/virtio/device.js';
import { MMIO, VIRTIO_MMIO_SIZE, VirtioMmioTransport } from '../../lib/virtio/mmio.js';
import { VirtioRng } from '../../lib/virtio/rng/device.js';
import { Code, u32 } from '../kvm/asm.js';
import { enterLongMode, load, type TestVm } from '../kvm/harness.js';
import { createFastPathVm } from '../kvm/fast-path-vm.js';
import { GuestAllocator, RecordingIrq, TestDriver } from './driver.js';

export const MMIO_BASE = 0xd000_1000;
export const SENTINEL = 0xd000_0000;
export const NOTIFY_ADDRESS = MMIO_BASE + MMIO.QueueNotify;
export const VIRTIO_GSI = 5;
const CODE = 0x1000;

/** `count` QueueNotify writes of `value` (a queue index, or any number). */
export interface NotifyPhase {
  value: number;
  count: number;
}

export interface MmioRigOptions {
  /** Default: a virtio-rng. */
  device?: VirtioDevice;
  /** Spin until queue 0's used index moves before the sentinel write. */
  waitForUsed?: boolean;
  /** Release the fast path right after registering it (the writes must exit again). */
  releaseBeforeRun?: boolean;
  /** The transport's log (fast-path registration failures land here). */
  log?: (message: string) => void;
}

export interface MmioFastPathRig {
  t: TestVm;
  vcpu: KvmVcpu;
  mmio: Bus;
  fast: AcceleratorFastPaths | undefined;
  transport: VirtioMmioTransport;
  driver: TestDriver;
  irq: RecordingIrq;
  /** Addresses of the MMIO writes that reached userspace (KVM_EXIT_MMIO). */
  mmioExits: number[];
  run(model?: 'thread' | 'inline'): Promise<string>;
  close(): void;
}

/**
 * The IrqLine the transport drives: recorded for the test driver, and really set in KVM (KVM_IRQ_LINE) until the
 * VM closes (the rng may complete a request from the libuv pool after a test ended).
 */
class KvmRecordingIrq extends RecordingIrq {
  constructor(private readonly vm: TestVm['vm'], private readonly gsi: number) { super(); }
  override set(level: boolean): void {
    if (!this.vm.isClosed) this.vm.irqLine(this.gsi, level);
    super.set(level);
  }
}

function guestProgram(phases: readonly NotifyPhase[], usedIdx: number | undefined): Uint8Array {
  const c = new Code();
  c.emit(0xbb, u32(NOTIFY_ADDRESS));                        // mov ebx, QueueNotify
  phases.forEach((p, i) => {
    if (!Number.isInteger(p.count) || p.count < 1) throw new RangeError(`phase ${i}: count must be >= 1`);
    c.emit(0xb9, u32(p.count));                              // mov ecx, count
    c.label(`again${i}`);
    c.emit(0xc7, 0x03, u32(p.value));                         // mov dword [rbx], value
    c.emit(0xff, 0xc9);                                       // dec ecx
    c.emit(0x75).emit(c.rel8(`again${i}`));                   // jnz again (rel8 after the opcode byte)
  });
  if (usedIdx !== undefined) {
    c.label('wait');
    c.emit(0x66, 0x83, 0x3c, 0x25, u32(usedIdx), 0x00);       // cmp word [usedIdx], 0
    c.emit(0x74).emit(c.rel8('wait'));                        // je wait
  }
  c.emit(0xbb, u32(SENTINEL), 0x89, 0x03);                    // mov ebx, SENTINEL ; mov [rbx], eax
  c.label('spin');
  c.emit(0xeb).emit(c.rel8('spin'));                          // jmp $
  return c.assemble();
}

/** `withFastPaths: false` builds the same machine with every QueueNotify write through the MMIO bus. */
export function createMmioRig(phases: readonly NotifyPhase[], withFastPaths: boolean, options: MmioRigOptions = {}): MmioFastPathRig {
  const { t, fast } = createFastPathVm(withFastPaths);
  try {
    const vcpu = t.createVcpu(0);
    const mmio = new Bus('mmio');
    const memory = t.vm.guestMemory();
    const irq = new KvmRecordingIrq(t.vm, VIRTIO_GSI);
    const transport = new VirtioMmioTransport(options.device ?? new VirtioRng(), memory, irq, { log: options.log ?? (() => {}), name: 'virtio-test' });
    mmio.register(MMIO_BASE, VIRTIO_MMIO_SIZE, transport, 'virtio-test');
    if (fast) transport.enableNotifyFastPath(fast, MMIO_BASE);
    if (options.releaseBeforeRun) transport.closeFastPaths();
    const driver = new TestDriver(transport, memory, irq, new GuestAllocator(0x100000, 0x400000));
    driver.init();
    const usedIdx = options.waitForUsed ? driver.queues[0]!.used + 2 : undefined;
    load(t.ram, CODE, guestProgram(phases, usedIdx));
    enterLongMode(vcpu, t.ram, CODE, 3);
    mmio.register(SENTINEL, 0x1000, { read: () => 0, write: () => vcpu.kick() }, 'sentinel');
    const mmioExits: number[] = [];
    const handlers = {
      pio: { read: () => 0xff, write: () => {} },
      mmio: {
        read: (a: number, s: number) => mmio.read(a, s),
        write: (a: number, s: number, v: number) => { mmioExits.push(a); mmio.write(a, s, v); },
      },
    };
    return {
      t, vcpu, mmio, fast, transport, driver, irq, mmioExits,
      run: async (model = 'thread') => (await (model === 'inline' ? vcpu.runInline(handlers) : vcpu.runLoop(handlers))).reason,
      close: () => { transport.closeFastPaths(); t.close(); },
    };
  } catch (e) {
    t.close();
    throw e;
  }
}
