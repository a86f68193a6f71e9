/**
 * The kvm_run page: decoding every exit reason into a discriminated union, and the raw accessors the hot
 * exit loop uses (no allocation for IO/MMIO exits handled inline).
 */
import { EMULATION_FLAG_INSTRUCTION_BYTES, ExitReason, InternalErrorSub } from './constants.js';
import type { RunLayout } from './native.js';

export type VcpuExit =
  /** Port I/O. `data` is a live view of the kvm_run data area (size * count bytes); for 'in', write the values there. */
  | { reason: 'io'; direction: 'in' | 'out'; port: number; size: number; count: number; data: Uint8Array }
  /** MMIO to an address with no memory slot. For reads, write `length` bytes into `data` before resuming. */
  | { reason: 'mmio'; address: number; length: number; isWrite: boolean; data: Uint8Array }
  | { reason: 'hlt' }
  | { reason: 'shutdown' }
  /** KVM could not handle the exit. For suberror EMULATION, `instructionBytes` holds the failing instruction when KVM reports it. */
  | { reason: 'internal-error'; suberror: number; data: bigint[]; instructionBytes: Uint8Array | undefined }
  | { reason: 'fail-entry'; hardwareEntryFailureReason: bigint; cpu: number }
  | { reason: 'system-event'; type: number; data: bigint[] }
  /** KVM_RUN was interrupted (a kick). */
  | { reason: 'intr' }
  | { reason: 'debug'; exception: number; pc: bigint; dr6: bigint; dr7: bigint }
  | { reason: 'irq-window-open' }
  | { reason: 'exception'; exception: number; errorCode: number }
  | { reason: 'hypercall'; nr: bigint; args: bigint[] }
  | { reason: 'unknown'; hardwareExitReason: bigint }
  | { reason: 'rdmsr' | 'wrmsr'; index: number; data: bigint; msrReason: number }
  | { reason: 'ioapic-eoi'; vector: number }
  | { reason: 'nmi' }
  /** Any other KVM_EXIT_* code. */
  | { reason: 'other'; exitReason: number };

export type VcpuExitReason = VcpuExit['reason'];

/** Typed views over one vCPU's kvm_run mapping. */
export class RunPage {
  readonly bytes: Uint8Array;
  readonly view: DataView;

  constructor(readonly buffer: ArrayBuffer, readonly layout: RunLayout) {
    this.bytes = new Uint8Array(buffer);
    this.view = new DataView(buffer);
  }

  get exitReason(): number { return this.view.getUint32(this.layout.exitReason, true); }

  get requestInterruptWindow(): boolean { return this.bytes[this.layout.requestInterruptWindow] !== 0; }
  set requestInterruptWindow(on: boolean) { this.bytes[this.layout.requestInterruptWindow] = on ? 1 : 0; }
  get readyForInterruptInjection(): boolean { return this.bytes[this.layout.readyForInterruptInjection] !== 0; }
  get ifFlag(): boolean { return this.bytes[this.layout.ifFlag] !== 0; }
  get cr8(): bigint { return this.view.getBigUint64(this.layout.cr8, true); }
  get apicBase(): bigint { return this.view.getBigUint64(this.layout.apicBase, true); }

  /** A view of `length` bytes at `offset`, checked against the mapping (offsets come from the kernel, but stay careful). */
  slice(offset: number, length: number): Uint8Array {
    if (offset < 0 || length < 0 || offset + length > this.bytes.length) {
      throw new RangeError(`kvm_run data range ${offset}+${length} is outside the ${this.bytes.length}-byte mapping`);
    }
    return this.bytes.subarray(offset, offset + length);
  }

  private u64s(offset: number, count: number): bigint[] {
    return Array.from({ length: count }, (_, i) => this.view.getBigUint64(offset + i * 8, true));
  }

  /** MMIO physical address as a Number (physical addresses fit in 52 bits). */
  get mmioAddress(): number {
    const o = this.layout.mmioPhysAddr;
    return this.view.getUint32(o, true) + this.view.getUint32(o + 4, true) * 0x1_0000_0000;
  }

  /** Decodes the current exit into a fresh object. */
  decode(): VcpuExit {
    const L = this.layout;
    const v = this.view;
    const reason = this.exitReason;
    switch (reason) {
      case ExitReason.IO: {
        const size = v.getUint8(L.ioSize);
        const count = v.getUint32(L.ioCount, true);
        const offset = Number(v.getBigUint64(L.ioDataOffset, true));
        return {
          reason: 'io', direction: v.getUint8(L.ioDirection) === 1 ? 'out' : 'in', port: v.getUint16(L.ioPort, true),
          size, count, data: this.slice(offset, size * count),
        };
      }
      case ExitReason.MMIO: {
        const length = Math.min(v.getUint32(L.mmioLen, true), 8);
        return { reason: 'mmio', address: this.mmioAddress, length, isWrite: v.getUint8(L.mmioIsWrite) !== 0, data: this.slice(L.mmioData, length) };
      }
      case ExitReason.HLT: return { reason: 'hlt' };
      case ExitReason.SHUTDOWN: return { reason: 'shutdown' };
      case ExitReason.INTR: return { reason: 'intr' };
      case ExitReason.IRQ_WINDOW_OPEN: return { reason: 'irq-window-open' };
      case ExitReason.NMI: return { reason: 'nmi' };
      case ExitReason.INTERNAL_ERROR: {
        const suberror = v.getUint32(L.internalSuberror, true);
        const ndata = Math.min(v.getUint32(L.internalNdata, true), 16);
        let instructionBytes: Uint8Array | undefined;
        if (suberror === InternalErrorSub.EMULATION && ndata >= 1) {
          const flags = v.getBigUint64(L.emulationFlags, true);
          if (flags & BigInt(EMULATION_FLAG_INSTRUCTION_BYTES)) {
            const n = Math.min(v.getUint8(L.emulationInsnSize), 15);
            instructionBytes = this.bytes.slice(L.emulationInsnBytes, L.emulationInsnBytes + n);
          }
        }
        return { reason: 'internal-error', suberror, data: this.u64s(L.internalData, ndata), instructionBytes };
      }
      case ExitReason.FAIL_ENTRY:
        return { reason: 'fail-entry', hardwareEntryFailureReason: v.getBigUint64(L.failEntryReason, true), cpu: v.getUint32(L.failEntryCpu, true) };
      case ExitReason.SYSTEM_EVENT: {
        // Older kernels report one u64 of flags and leave ndata at 0; report that word then.
        const ndata = Math.min(v.getUint32(L.systemEventNdata, true), 16);
        return { reason: 'system-event', type: v.getUint32(L.systemEventType, true), data: this.u64s(L.systemEventData, Math.max(ndata, 1)) };
      }
      case ExitReason.DEBUG:
        return {
          reason: 'debug', exception: v.getUint32(L.debugException, true), pc: v.getBigUint64(L.debugPc, true),
          dr6: v.getBigUint64(L.debugDr6, true), dr7: v.getBigUint64(L.debugDr7, true),
        };
      case ExitReason.EXCEPTION:
        return { reason: 'exception', exception: v.getUint32(L.exException, true), errorCode: v.getUint32(L.exErrorCode, true) };
      case ExitReason.HYPERCALL:
        return { reason: 'hypercall', nr: v.getBigUint64(L.hypercallNr, true), args: this.u64s(L.hypercallArgs, 6) };
      case ExitReason.UNKNOWN:
        return { reason: 'unknown', hardwareExitReason: v.getBigUint64(L.hwExitReason, true) };
      case ExitReason.X86_RDMSR:
      case ExitReason.X86_WRMSR:
        return {
          reason: reason === ExitReason.X86_RDMSR ? 'rdmsr' : 'wrmsr', index: v.getUint32(L.msrIndex, true),
          data: v.getBigUint64(L.msrData, true), msrReason: v.getUint32(L.msrReason, true),
        };
      case ExitReason.IOAPIC_EOI: return { reason: 'ioapic-eoi', vector: v.getUint8(L.eoiVector) };
      default: return { reason: 'other', exitReason: reason };
    }
  }
}
