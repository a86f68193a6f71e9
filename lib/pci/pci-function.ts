/**
 * One PCI function (type 0 header): a 256-byte configuration space with per-byte write masks, memory BARs
 * that follow the sizing protocol (write all ones, read back the size mask) and decode on the MMIO bus only
 * while the command register's memory-space bit is set, and a capability list.
 *
 * There is no firmware: the VMM assigns BAR addresses up front (setBarAddress) and enables memory decoding,
 * as a BIOS would have; the guest may move BARs and the mapping on the bus follows.
 */
import type { Bus, BusDevice } from '../machine/bus.js';
import type { IrqLine } from '../machine/irq.js';
import {
  PCI_BAR0,
  PCI_BAR_COUNT,
  PCI_BAR_MEM_PREFETCH,
  PCI_BAR_MEM_TYPE_64,
  PCI_CACHE_LINE_SIZE,
  PCI_CAPABILITIES_START,
  PCI_CAPABILITY_LIST,
  PCI_CLASS_PROG,
  PCI_COMMAND,
  PCI_COMMAND_INTX_DISABLE,
  PCI_COMMAND_MASTER,
  PCI_COMMAND_MEMORY,
  PCI_COMMAND_WRITABLE,
  PCI_CONFIG_SPACE_SIZE,
  PCI_DEVICE_ID,
  PCI_HEADER_TYPE,
  PCI_INTERRUPT_LINE,
  PCI_INTERRUPT_PIN,
  PCI_LATENCY_TIMER,
  PCI_REVISION_ID,
  PCI_STATUS,
  PCI_STATUS_CAP_LIST,
  PCI_STATUS_INTERRUPT,
  PCI_SUBSYSTEM_ID,
  PCI_SUBSYSTEM_VENDOR_ID,
  PCI_VENDOR_ID,
} from './constants.js';

export interface PciFunctionIdentity {
  vendorId: number;
  deviceId: number;
  /** 24-bit class code: class << 16 | subclass << 8 | programming interface. */
  classCode: number;
  revision?: number;
  subsystemVendorId?: number;
  subsystemId?: number;
  /** INTx pin: 0 = none, 1..4 = INTA#..INTD#. */
  interruptPin?: number;
  /** Value of the interrupt line register (the IRQ the platform routes the pin to; 0xff = unknown). */
  interruptLine?: number;
}

export interface PciBarSpec {
  /** BAR register index 0..5; a 64-bit BAR also uses index + 1. */
  index: number;
  kind: 'mem32' | 'mem64';
  /** Power of two, at least 4 KiB (the guest may map BARs into pages of their own). */
  size: number;
  prefetchable?: boolean;
  /** Accesses inside the BAR, with offsets relative to its start. */
  device: BusDevice;
  name: string;
}

/** Hooks for a capability whose registers are more than stored bytes (offsets relative to the capability). */
export interface PciCapabilityHooks {
  read?(offset: number, size: number): number | undefined;
  /** Called after the masked bytes were stored. */
  afterWrite?(offset: number, size: number, value: number): void;
}

interface Capability {
  offset: number;
  length: number;
  hooks: PciCapabilityHooks;
}

interface Bar {
  spec: PciBarSpec;
  /** Where the BAR is currently decoded on the MMIO bus, if at all. */
  mappedAt: number | undefined;
  /** The object registered on the bus (one per BAR so it can be unregistered on its own). */
  proxy: BusDevice;
}

const TWO_POW_32 = 0x1_0000_0000;
/** Highest BAR end we map: beyond this a Number address would lose precision (and no guest RAM is there). */
const MAX_BAR_END = 2 ** 52;

export class PciFunction {
  private readonly bytes = new Uint8Array(PCI_CONFIG_SPACE_SIZE);
  private readonly writable = new Uint8Array(PCI_CONFIG_SPACE_SIZE);
  private readonly bars: (Bar | undefined)[] = new Array<Bar | undefined>(PCI_BAR_COUNT).fill(undefined);
  private readonly capabilities: Capability[] = [];
  private nextCapability = PCI_CAPABILITIES_START;
  private lastCapability = -1;
  private mmio: Bus | undefined;
  /** Power-on values of the writable registers (BARs as the VMM assigned them), for reset(). */
  private initialBytes: Uint8Array | undefined;
  private readonly log: (message: string) => void;
  /** Where INTx# goes (the platform's line for this slot and pin), if the function has a pin. */
  private intxLine: IrqLine | undefined;
  /** Level last driven on intxLine, so the line only sees changes. */
  private intxOutput = false;
  /** Conditions that keep INTx# de-asserted whatever the function wants (MSI-X enabled, PCI 3.0 §6.8.2). */
  private readonly intxInhibitors: (() => boolean)[] = [];

  constructor(readonly name: string, identity: PciFunctionIdentity, options: { log?: (message: string) => void } = {}) {
    this.log = options.log ?? ((m) => console.error(m));
    check16(identity.vendorId, 'vendorId');
    check16(identity.deviceId, 'deviceId');
    if (identity.vendorId === 0xffff) throw new RangeError(`${name}: vendorId 0xffff means "no device"`);
    if (!Number.isInteger(identity.classCode) || identity.classCode < 0 || identity.classCode > 0xffffff) {
      throw new RangeError(`${name}: classCode must be a 24-bit value, got ${identity.classCode}`);
    }
    const pin = identity.interruptPin ?? 0;
    if (!Number.isInteger(pin) || pin < 0 || pin > 4) throw new RangeError(`${name}: interruptPin must be 0..4, got ${pin}`);
    this.set16(PCI_VENDOR_ID, identity.vendorId);
    this.set16(PCI_DEVICE_ID, identity.deviceId);
    this.set8(PCI_REVISION_ID, identity.revision ?? 0);
    this.set8(PCI_CLASS_PROG, identity.classCode & 0xff);
    this.set16(PCI_CLASS_PROG + 1, identity.classCode >>> 8);
    this.set8(PCI_HEADER_TYPE, 0);
    this.set16(PCI_SUBSYSTEM_VENDOR_ID, identity.subsystemVendorId ?? 0);
    this.set16(PCI_SUBSYSTEM_ID, identity.subsystemId ?? 0);
    this.set8(PCI_INTERRUPT_PIN, pin);
    this.set8(PCI_INTERRUPT_LINE, identity.interruptLine ?? (pin ? 0xff : 0));
    this.setWritable(PCI_COMMAND, 2, PCI_COMMAND_WRITABLE);
    this.setWritable(PCI_CACHE_LINE_SIZE, 1, 0xff);
    this.setWritable(PCI_LATENCY_TIMER, 1, 0xff);
    this.setWritable(PCI_INTERRUPT_LINE, 1, 0xff);
  }

  // ---- construction (VMM side) ---------------------------------------------------------------------

  /** Declare a memory BAR. Its address is 0 (not decoded) until setBarAddress or the guest assigns one. */
  addBar(spec: PciBarSpec): void {
    const { index, size, kind } = spec;
    const last = kind === 'mem64' ? index + 1 : index;
    if (!Number.isInteger(index) || index < 0 || last >= PCI_BAR_COUNT) {
      throw new RangeError(`${this.name}: BAR index ${index} (${kind}) does not fit in BAR0..BAR5`);
    }
    if (this.bars[index] || (kind === 'mem64' && this.bars[index + 1]) || this.isHighHalf(index)) {
      throw new RangeError(`${this.name}: BAR${index} is already in use`);
    }
    if (!isPowerOfTwo(size) || size < 4096 || size > (kind === 'mem32' ? 2 ** 31 : 2 ** 40)) {
      throw new RangeError(`${this.name}: BAR${index} size ${size} must be a power of two >= 4096`);
    }
    const bar: Bar = { spec, mappedAt: undefined, proxy: { read: (o, s) => spec.device.read(o, s), write: (o, s, v) => spec.device.write(o, s, v) } };
    this.bars[index] = bar;
    const flags = (kind === 'mem64' ? PCI_BAR_MEM_TYPE_64 : 0) | (spec.prefetchable ? PCI_BAR_MEM_PREFETCH : 0);
    this.set32(PCI_BAR0 + 4 * index, flags);
    // Address bits below the size are hard-wired to zero; that is the whole sizing protocol.
    this.setWritable(PCI_BAR0 + 4 * index, 4, size >= TWO_POW_32 ? 0 : (~(size - 1) & ~0xf) >>> 0);
    if (kind === 'mem64') {
      const highMask = size > TWO_POW_32 ? (~(size / TWO_POW_32 - 1)) >>> 0 : 0xffffffff;
      this.setWritable(PCI_BAR0 + 4 * (index + 1), 4, highMask);
    }
  }

  /** VMM-side BAR placement (what firmware would do). The address must be aligned to the BAR size. */
  setBarAddress(index: number, address: number): void {
    const bar = this.bars[index];
    if (!bar) throw new RangeError(`${this.name}: BAR${index} is not implemented`);
    const { size, kind } = bar.spec;
    if (!Number.isSafeInteger(address) || address < 0 || address % size !== 0 || address + size > MAX_BAR_END) {
      throw new RangeError(`${this.name}: BAR${index} address 0x${address.toString(16)} is not aligned to its size 0x${size.toString(16)}`);
    }
    if (kind === 'mem32' && address + size > TWO_POW_32) {
      throw new RangeError(`${this.name}: 32-bit BAR${index} cannot be placed at 0x${address.toString(16)}`);
    }
    const low = PCI_BAR0 + 4 * index;
    this.set32(low, ((address % TWO_POW_32) | (this.get32(low) & 0xf)) >>> 0);
    if (kind === 'mem64') this.set32(low + 4, Math.floor(address / TWO_POW_32));
    this.updateMappings();
  }

  /**
   * Append a capability of `length` bytes (including the 2-byte ID/next header) to the list; returns its
   * offset. `writeMask` gives the writable bits of each byte (relative offsets); the rest is read-only.
   */
  addCapability(id: number, length: number, init: { bytes?: Uint8Array; writeMask?: Uint8Array; hooks?: PciCapabilityHooks } = {}): number {
    if (length < 2) throw new RangeError(`${this.name}: capability 0x${id.toString(16)} is shorter than its header`);
    const offset = (this.nextCapability + 3) & ~3;
    if (offset + length > PCI_CONFIG_SPACE_SIZE) throw new RangeError(`${this.name}: no room for capability 0x${id.toString(16)}`);
    if (init.bytes) this.bytes.set(init.bytes.subarray(0, length), offset);
    this.bytes[offset] = id;
    this.bytes[offset + 1] = 0;
    if (init.writeMask) this.writable.set(init.writeMask.subarray(0, length), offset);
    this.writable[offset] = this.writable[offset + 1] = 0;
    if (this.lastCapability < 0) this.set8(PCI_CAPABILITY_LIST, offset);
    else this.bytes[this.lastCapability + 1] = offset;
    this.set16(PCI_STATUS, this.get16(PCI_STATUS) | PCI_STATUS_CAP_LIST);
    this.lastCapability = offset;
    this.nextCapability = offset + length;
    this.capabilities.push({ offset, length, hooks: init.hooks ?? {} });
    return offset;
  }

  /**
   * Connect the BARs to the MMIO bus and (optionally) turn memory decoding on, as firmware leaves it.
   * Call after the BARs have addresses.
   */
  attach(mmio: Bus, options: { enableMemory?: boolean } = {}): void {
    this.mmio = mmio;
    if (options.enableMemory ?? true) this.set16(PCI_COMMAND, this.get16(PCI_COMMAND) | PCI_COMMAND_MEMORY);
    this.initialBytes = this.bytes.slice();
    this.updateMappings();
  }

  /** Power-on state: registers back to what attach() saw (BARs at their assigned addresses). */
  reset(): void {
    if (this.initialBytes) this.bytes.set(this.initialBytes);
    // Power-on: no interrupt pending (the snapshot may have been taken with one).
    this.set16(PCI_STATUS, this.get16(PCI_STATUS) & ~PCI_STATUS_INTERRUPT);
    this.updateMappings();
    this.refreshIntx();
  }

  /** Remove every BAR from the bus. */
  detach(): void {
    for (const bar of this.bars) if (bar && bar.mappedAt !== undefined) this.unmap(bar);
    this.mmio = undefined;
  }

  // ---- INTx (PCI 3.0 §6.2.2, §6.2.3) -------------------------------------------------------------------

  /**
   * Connect INTx# to the platform's line for this slot. The function must have an interrupt pin. The line is
   * driven with logical levels (true = asserted), whatever electrical polarity the platform announces.
   */
  connectIntx(line: IrqLine): void {
    if (this.get8(PCI_INTERRUPT_PIN) === 0) throw new RangeError(`${this.name}: no interrupt pin to connect INTx to`);
    this.intxLine = line;
    this.intxOutput = false;
    this.refreshIntx();
  }

  /**
   * Keep INTx# de-asserted while `inhibited()` is true (MSI-X uses this: an enabled MSI-X function must not use
   * INTx). Call refreshIntx() when its answer may have changed.
   */
  addIntxInhibitor(inhibited: () => boolean): void {
    this.intxInhibitors.push(inhibited);
    this.refreshIntx();
  }

  /**
   * The function's internal interrupt state, i.e. the Interrupt Status bit. INTx# follows it unless
   * COMMAND.Interrupt-Disable is set or an inhibitor holds it off; the status bit reflects it either way.
   */
  setIntxLevel(level: boolean): void {
    const status = this.get16(PCI_STATUS);
    this.set16(PCI_STATUS, level ? status | PCI_STATUS_INTERRUPT : status & ~PCI_STATUS_INTERRUPT);
    this.refreshIntx();
  }

  /** Interrupt Status (status register bit 3): the function wants an interrupt. */
  get intxPending(): boolean {
    return (this.get16(PCI_STATUS) & PCI_STATUS_INTERRUPT) !== 0;
  }

  /** What INTx# carries right now (pending, not disabled, not inhibited, and connected). */
  get intxAsserted(): boolean {
    return this.intxOutput;
  }

  /** Re-evaluate INTx# after something that gates it changed. */
  refreshIntx(): void {
    const want = this.intxLine !== undefined && this.intxPending &&
      (this.command & PCI_COMMAND_INTX_DISABLE) === 0 && !this.intxInhibitors.some((inhibited) => inhibited());
    if (want === this.intxOutput) return;
    this.intxOutput = want;
    this.intxLine?.set(want);
  }

  // ---- state ---------------------------------------------------------------------------------------

  get command(): number {
    return this.get16(PCI_COMMAND);
  }

  get memoryEnabled(): boolean {
    return (this.command & PCI_COMMAND_MEMORY) !== 0;
  }

  get busMasterEnabled(): boolean {
    return (this.command & PCI_COMMAND_MASTER) !== 0;
  }

  /** Current BAR address (0 when unassigned). */
  barAddress(index: number): number {
    const bar = this.bars[index];
    if (!bar) return 0;
    const low = this.get32(PCI_BAR0 + 4 * index) & ~0xf;
    const high = bar.spec.kind === 'mem64' ? this.get32(PCI_BAR0 + 4 * index + 4) : 0;
    return high * TWO_POW_32 + (low >>> 0);
  }

  /** Where BAR `index` is decoded on the MMIO bus right now, or undefined. */
  barMapping(index: number): number | undefined {
    return this.bars[index]?.mappedAt;
  }

  /** The BAR's device (for config-space windows such as virtio's PCI_CFG capability). */
  barDevice(index: number): { device: BusDevice; size: number } | undefined {
    const bar = this.bars[index];
    return bar ? { device: bar.spec.device, size: bar.spec.size } : undefined;
  }

  // ---- configuration accesses (from the host bridge) -----------------------------------------------

  /** Little-endian read of 1, 2 or 4 bytes at `offset` (must not cross the end of the space). */
  readConfig(offset: number, size: number): number {
    if (!validAccess(offset, size)) return size === 4 ? 0xffffffff : (1 << (8 * size)) - 1;
    const cap = this.capabilityAt(offset, size);
    if (cap?.hooks.read) {
      const v = cap.hooks.read(offset - cap.offset, size);
      if (v !== undefined) return v >>> 0;
    }
    let v = 0;
    for (let i = 0; i < size; i++) v |= this.bytes[offset + i]! << (8 * i);
    return v >>> 0;
  }

  writeConfig(offset: number, size: number, value: number): void {
    if (!validAccess(offset, size)) return;
    let touchesMapping = false;
    for (let i = 0; i < size; i++) {
      const at = offset + i;
      const mask = this.writable[at]!;
      if (mask === 0) continue;
      const byte = (value >>> (8 * i)) & 0xff;
      this.bytes[at] = (this.bytes[at]! & ~mask) | (byte & mask);
      if ((at >= PCI_BAR0 && at < PCI_BAR0 + 4 * PCI_BAR_COUNT) || at === PCI_COMMAND) touchesMapping = true;
    }
    if (touchesMapping) this.updateMappings();
    // Interrupt Disable lives in the command register's high byte.
    if (offset <= PCI_COMMAND + 1 && offset + size > PCI_COMMAND + 1) this.refreshIntx();
    const cap = this.capabilityAt(offset, size);
    cap?.hooks.afterWrite?.(offset - cap.offset, size, value >>> 0);
  }

  // ---- raw register helpers (for capabilities built on top) -----------------------------------------

  get8(offset: number): number {
    return this.bytes[offset]!;
  }
  get16(offset: number): number {
    return this.bytes[offset]! | (this.bytes[offset + 1]! << 8);
  }
  get32(offset: number): number {
    return (this.get16(offset) | (this.get16(offset + 2) << 16)) >>> 0;
  }
  set8(offset: number, v: number): void {
    this.bytes[offset] = v & 0xff;
  }
  set16(offset: number, v: number): void {
    this.bytes[offset] = v & 0xff;
    this.bytes[offset + 1] = (v >>> 8) & 0xff;
  }
  set32(offset: number, v: number): void {
    this.set16(offset, v & 0xffff);
    this.set16(offset + 2, v >>> 16);
  }

  // ---- internals -----------------------------------------------------------------------------------

  private setWritable(offset: number, length: number, mask: number): void {
    for (let i = 0; i < length; i++) this.writable[offset + i] = (mask >>> (8 * i)) & 0xff;
  }

  private isHighHalf(index: number): boolean {
    const below = index > 0 ? this.bars[index - 1] : undefined;
    return below?.spec.kind === 'mem64';
  }

  private capabilityAt(offset: number, size: number): Capability | undefined {
    for (const c of this.capabilities) {
      if (offset >= c.offset && offset + size <= c.offset + c.length) return c;
    }
    return undefined;
  }

  /** Bring the bus mappings in line with the BAR registers and the memory-space enable bit. */
  private updateMappings(): void {
    if (!this.mmio) return;
    for (const [index, bar] of this.bars.entries()) {
      if (!bar) continue;
      const address = this.barAddress(index);
      const want = this.memoryEnabled && address !== 0 && address + bar.spec.size <= MAX_BAR_END ? address : undefined;
      if (want === bar.mappedAt) continue;
      if (bar.mappedAt !== undefined) this.unmap(bar);
      if (want !== undefined) this.map(bar, index, want);
    }
  }

  private map(bar: Bar, index: number, address: number): void {
    try {
      this.mmio!.register(address, bar.spec.size, bar.proxy, `${this.name} BAR${index} (${bar.spec.name})`);
      bar.mappedAt = address;
    } catch (e) {
      // A guest may program overlapping BARs; such a BAR stays undecoded instead of taking over another device.
      this.log(`${this.name}: BAR${index} at 0x${address.toString(16)} not decoded: ${(e as Error).message}`);
    }
  }

  private unmap(bar: Bar): void {
    this.mmio?.unregister(bar.proxy);
    bar.mappedAt = undefined;
  }
}

function validAccess(offset: number, size: number): boolean {
  return (size === 1 || size === 2 || size === 4) && Number.isInteger(offset) && offset >= 0 &&
    offset + size <= PCI_CONFIG_SPACE_SIZE && offset % size === 0;
}

function isPowerOfTwo(n: number): boolean {
  return Number.isSafeInteger(n) && n > 0 && 2 ** Math.round(Math.log2(n)) === n;
}

function check16(v: number, field: string): void {
  if (!Number.isInteger(v) || v < 0 || v > 0xffff) throw new RangeError(`PCI ${field} must be a 16-bit value, got ${v}`);
}
