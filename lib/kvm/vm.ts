/** A KVM virtual machine: memory slots, in-kernel irqchip/PIT (and their state), interrupt lines, eventfds, dirty log, clock. */
import { GuestMemory, type MemoryRegion } from '../machine/guest-memory.js';
import type { InterruptController, MsiSink } from '../machine/irq.js';
import { IoeventfdFlag, Irqchip, IrqfdFlag, MemFlag, PIT_SPEAKER_DUMMY } from './constants.js';
import { check, KvmError } from './errors.js';
import type { EventFd } from './eventfd.js';
import type { GuestRam } from './guest-ram.js';
import type { NativeAddon, NativeKvmVm } from './native.js';
import { CLOCK_DATA_SIZE, type ClockData, encodeGsiRouting, type GsiRoute } from './structs.js';
import { KvmVcpu } from './vcpu.js';

const PAGE_SIZE = 4096;

/** Bytes of the state union in struct kvm_irqchip (struct kvm_pic_state or kvm_ioapic_state, padded). */
export const IRQCHIP_STATE_SIZE = 512;
/** Bytes of struct kvm_pit_state2. */
export const PIT_STATE2_SIZE = 112;
/** An in-kernel interrupt controller chip id (KVM_IRQCHIP_PIC_MASTER, _PIC_SLAVE, _IOAPIC). */
export type IrqchipId = (typeof Irqchip)[keyof typeof Irqchip];

export interface MemoryRegionSpec {
  slot: number;
  guestAddress: number;
  ram: GuestRam;
  /** Offset into `ram` (page aligned). Default 0. */
  ramOffset?: number;
  /** Bytes (page aligned). Default: the rest of `ram` after ramOffset. */
  size?: number;
  /** KVM_MEM_READONLY: guest writes exit as MMIO. */
  readonly?: boolean;
  /** KVM_MEM_LOG_DIRTY_PAGES: track written pages for getDirtyLog. */
  logDirty?: boolean;
}

export interface MemoryRegionInfo {
  readonly slot: number;
  readonly guestAddress: number;
  readonly ram: GuestRam;
  readonly ramOffset: number;
  readonly size: number;
  readonly readonly: boolean;
  readonly logDirty: boolean;
}

export interface IoeventfdSpec {
  address: number;
  /** 0 (any width), 1, 2, 4 or 8. */
  length: number;
  eventFd: EventFd;
  /** Port I/O instead of MMIO. */
  pio?: boolean;
  /** Only signal when the written value equals this. */
  datamatch?: number | bigint;
}

/** Implements the machine's InterruptController (KVM_IRQ_LINE) and MsiSink (KVM_SIGNAL_MSI) contracts. */
export class KvmVm implements InterruptController, MsiSink {
  private readonly regions = new Map<number, MemoryRegionInfo>();
  private readonly vcpus = new Set<KvmVcpu>();
  private closed = false;

  /** @internal use Kvm.createVm */
  constructor(
    private readonly addon: NativeAddon,
    readonly native: NativeKvmVm,
    private readonly vcpuMmapSize: number,
  ) {}

  get fd(): number { return this.native.fd; }
  get isClosed(): boolean { return this.closed; }

  checkExtension(cap: number): number { return this.native.checkExtension(cap); }

  /** KVM_ENABLE_CAP on the VM. */
  enableCap(cap: number, ...args: (number | bigint)[]): void {
    this.native.enableCap(cap, args[0], args[1], args[2], args[3]);
  }

  /** Adds or replaces memory slot `slot`. */
  setMemoryRegion(spec: MemoryRegionSpec): void {
    const ramOffset = spec.ramOffset ?? 0;
    const size = spec.size ?? spec.ram.size - ramOffset;
    if (size <= 0) throw new RangeError(`memory slot ${spec.slot}: size must be positive (use removeMemoryRegion to delete)`);
    const flags = (spec.readonly ? MemFlag.READONLY : 0) | (spec.logDirty ? MemFlag.LOG_DIRTY_PAGES : 0);
    this.native.setMemoryRegion(spec.slot, flags, spec.guestAddress, spec.ram.native, ramOffset, size);
    this.regions.set(spec.slot, {
      slot: spec.slot, guestAddress: spec.guestAddress, ram: spec.ram, ramOffset, size,
      readonly: !!spec.readonly, logDirty: !!spec.logDirty,
    });
  }

  /** Deletes a memory slot (KVM_SET_USER_MEMORY_REGION with size 0). */
  removeMemoryRegion(slot: number): void {
    const r = this.regions.get(slot);
    if (!r) throw new RangeError(`memory slot ${slot} is not set`);
    this.native.setMemoryRegion(slot, 0, r.guestAddress, null, 0, 0);
    this.regions.delete(slot);
  }

  /** Changes a slot's size (KVM cannot resize in place: the slot is deleted and re-created). */
  resizeMemoryRegion(slot: number, size: number): void {
    const r = this.regions.get(slot);
    if (!r) throw new RangeError(`memory slot ${slot} is not set`);
    this.removeMemoryRegion(slot);
    this.setMemoryRegion({ ...r, size });
  }

  /** Also toggles dirty logging on an existing slot (KVM allows a flags-only update). */
  setDirtyLogging(slot: number, on: boolean): void {
    const r = this.regions.get(slot);
    if (!r) throw new RangeError(`memory slot ${slot} is not set`);
    this.setMemoryRegion({ ...r, logDirty: on });
  }

  get memoryRegions(): readonly MemoryRegionInfo[] {
    return [...this.regions.values()].sort((a, b) => a.guestAddress - b.guestAddress);
  }

  /** A bounds-checked GuestMemory over the current slots (a snapshot: rebuild after changing slots). */
  guestMemory(): GuestMemory {
    const regions: MemoryRegion[] = this.memoryRegions.map((r) => ({ guestAddress: r.guestAddress, bytes: r.ram.view(r.ramOffset, r.size) }));
    return new GuestMemory(regions);
  }

  setTssAddr(address: number): void { this.native.setTssAddr(address); }
  setIdentityMapAddr(address: number): void { this.native.setIdentityMapAddr(address); }
  /** In-kernel PIC + IOAPIC + per-vCPU LAPIC. Create before vCPUs. */
  createIrqchip(): void { this.native.createIrqchip(); }
  createPit2(options: { speakerDummy?: boolean } = {}): void { this.native.createPit2(options.speakerDummy ? PIT_SPEAKER_DUMMY : 0); }

  /** KVM_GET_IRQCHIP: one in-kernel chip's state, raw (lib/accel/kvm/platform-state.ts decodes it). */
  getIrqchip(chip: IrqchipId): Uint8Array {
    const b = new Uint8Array(IRQCHIP_STATE_SIZE);
    this.native.getIrqchip(chip, b);
    return b;
  }

  /** KVM_SET_IRQCHIP with a state as getIrqchip returned it. */
  setIrqchip(chip: IrqchipId, state: Uint8Array): void {
    if (state.length !== IRQCHIP_STATE_SIZE) throw new RangeError(`setIrqchip(${chip}): state must be ${IRQCHIP_STATE_SIZE} bytes, got ${state.length}`);
    this.native.setIrqchip(chip, state);
  }

  /** KVM_GET_PIT2: the in-kernel PIT's state (struct kvm_pit_state2), raw. */
  getPit2(): Uint8Array {
    const b = new Uint8Array(PIT_STATE2_SIZE);
    this.native.getPit2(b);
    return b;
  }

  /** KVM_SET_PIT2: reloads every channel from `state` (a channel in no valid mode has its timer stopped). */
  setPit2(state: Uint8Array): void {
    if (state.length !== PIT_STATE2_SIZE) throw new RangeError(`setPit2: state must be ${PIT_STATE2_SIZE} bytes, got ${state.length}`);
    this.native.setPit2(state);
  }

  /** Sets the level of an in-kernel irqchip input (GSI). Does not throw on the hot path unless KVM fails. */
  irqLine(gsi: number, level: boolean): void {
    const r = this.native.irqLine(gsi, level);
    if (r < 0) throw new KvmError(-r, 'ioctl(KVM_IRQ_LINE)', `gsi ${gsi}`);
  }

  /** InterruptController: same as irqLine. */
  setIrq(gsi: number, level: boolean): void { this.irqLine(gsi, level); }

  /** MsiSink: same as signalMsi (a message the guest has blocked is dropped, as on hardware). */
  sendMsi(address: number, data: number): void { this.signalMsi(address, data); }

  /** Writing `eventFd` raises `gsi` (edge); with resampleFd, level-triggered with EOI notification. */
  irqfd(spec: { eventFd: EventFd; gsi: number; resampleFd?: EventFd }): void {
    this.native.irqfd(spec.eventFd.fd, spec.gsi, spec.resampleFd ? IrqfdFlag.RESAMPLE : 0, spec.resampleFd?.fd ?? 0);
  }

  removeIrqfd(spec: { eventFd: EventFd; gsi: number }): void {
    this.native.irqfd(spec.eventFd.fd, spec.gsi, IrqfdFlag.DEASSIGN, 0);
  }

  /** A guest write to `address` signals `eventFd` without a userspace exit. */
  ioeventfd(spec: IoeventfdSpec): void {
    this.native.ioeventfd(spec.address, spec.length, spec.eventFd.fd, ioeventfdFlags(spec), spec.datamatch ?? 0);
  }

  removeIoeventfd(spec: IoeventfdSpec): void {
    this.native.ioeventfd(spec.address, spec.length, spec.eventFd.fd, ioeventfdFlags(spec) | IoeventfdFlag.DEASSIGN, spec.datamatch ?? 0);
  }

  /** KVM_GET_DIRTY_LOG: one bit per page of the slot (bit i of byte j = page 8j+i), cleared by the read. */
  getDirtyLog(slot: number): Uint8Array {
    const r = this.regions.get(slot);
    if (!r) throw new RangeError(`memory slot ${slot} is not set`);
    const pages = r.size / PAGE_SIZE;
    const bitmap = new Uint8Array(Math.ceil(pages / 64) * 8);
    this.native.getDirtyLog(slot, bitmap);
    return bitmap;
  }

  /** Guest physical addresses of the pages written since the last call, for a dirty-logging slot. */
  dirtyPages(slot: number): number[] {
    const r = this.regions.get(slot);
    if (!r) throw new RangeError(`memory slot ${slot} is not set`);
    const bitmap = this.getDirtyLog(slot);
    const out: number[] = [];
    for (let i = 0; i < bitmap.length; i++) {
      const b = bitmap[i]!;
      if (b === 0) continue;
      for (let bit = 0; bit < 8; bit++) if (b & (1 << bit)) out.push(r.guestAddress + (i * 8 + bit) * PAGE_SIZE);
    }
    return out;
  }

  getClock(): ClockData {
    const b = new Uint8Array(CLOCK_DATA_SIZE);
    this.native.getClock(b);
    const v = new DataView(b.buffer);
    return { clock: v.getBigUint64(0, true), flags: v.getUint32(8, true), realtime: v.getBigUint64(16, true), hostTsc: v.getBigUint64(24, true) };
  }

  /** Sets the kvmclock value (nanoseconds); other fields are optional inputs (flags selects realtime). */
  setClock(clock: bigint, flags = 0, realtime = 0n): void {
    const b = new Uint8Array(CLOCK_DATA_SIZE);
    const v = new DataView(b.buffer);
    v.setBigUint64(0, clock, true); v.setUint32(8, flags, true); v.setBigUint64(16, realtime, true);
    this.native.setClock(b);
  }

  /** Injects an MSI; returns false when the guest has it masked/blocked. */
  signalMsi(address: number, data: number): boolean {
    const lo = address % 0x1_0000_0000;
    const hi = Math.floor(address / 0x1_0000_0000);
    return check(this.native.signalMsi(lo, hi, data), 'ioctl(KVM_SIGNAL_MSI)') > 0;
  }

  /** Replaces the whole GSI routing table. */
  setGsiRouting(routes: readonly GsiRoute[]): void { this.native.setGsiRouting(encodeGsiRouting(routes)); }

  /** Creates vCPU `id` (with an in-kernel irqchip, after createIrqchip). */
  createVcpu(id: number): KvmVcpu {
    if (this.closed) throw new KvmError(9 /* EBADF */, 'ioctl(KVM_CREATE_VCPU)', 'VM is closed');
    const native = new this.addon.KvmVcpu(this.native, id, this.vcpuMmapSize);
    const vcpu = new KvmVcpu(this.addon, native, id, this, () => this.vcpus.delete(vcpu));
    this.vcpus.add(vcpu);
    return vcpu;
  }

  /** Closes every vCPU (kicking and joining running ones), then the VM fd. Guest RAM is the caller's to close. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const v of [...this.vcpus]) v.close();
    this.native.close();
    this.regions.clear();
  }
}

function ioeventfdFlags(spec: IoeventfdSpec): number {
  return (spec.pio ? IoeventfdFlag.PIO : 0) | (spec.datamatch !== undefined ? IoeventfdFlag.DATAMATCH : 0);
}
