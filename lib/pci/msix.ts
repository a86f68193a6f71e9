/**
 * MSI-X (PCI 3.0 §6.8.2): a capability in configuration space (message control: table size, function mask,
 * enable) pointing at a vector table and a pending-bit array (PBA) in a memory BAR. Each table entry holds a
 * message address, data and a per-vector mask. A device asks for vector n with notify(n); a masked vector
 * sets its pending bit instead, and is sent when it is unmasked. Messages go to an MsiSink (KVM_SIGNAL_MSI on
 * KVM, the TypeScript interrupt router on the interpreter).
 */
import type { BusDevice } from '../machine/bus.js';
import type { MsiSink } from '../machine/irq.js';
import { PCI_CAP_ID_MSIX } from './constants.js';
import type { PciFunction } from './pci-function.js';

/** Most vectors one table may have (11-bit table size field). */
export const MSIX_MAX_VECTORS = 2048;
const ENTRY_SIZE = 16;
const CONTROL_ENABLE = 0x8000;
const CONTROL_FUNCTION_MASK = 0x4000;
const VECTOR_MASKED = 1;
const TWO_POW_32 = 0x1_0000_0000;

export interface MsixOptions {
  vectors: number;
  /** BAR index that holds the table and the PBA (the BAR's device must forward to `barDevice`). */
  bar: number;
  /** Offset of the table in that BAR (8-byte aligned). The PBA follows the table, 8-byte aligned. */
  tableOffset?: number;
  msi: MsiSink;
}

export class MsixCapability {
  readonly vectors: number;
  readonly capabilityOffset: number;
  readonly tableOffset: number;
  readonly pbaOffset: number;
  /** Bytes the table and PBA take in their BAR (from tableOffset). */
  readonly regionSize: number;
  private readonly table: Uint32Array;
  private readonly pending: Uint8Array;
  /** Messages sent, for diagnostics and tests. */
  sent = 0;
  /** Messages dropped because their address is not representable (above 2^53). */
  dropped = 0;
  /** Accesses to the table and PBA, routed here by the BAR that holds them (offsets relative to that BAR). */
  readonly barDevice: BusDevice;

  constructor(private readonly fn: PciFunction, private readonly options: MsixOptions) {
    const n = options.vectors;
    if (!Number.isInteger(n) || n < 1 || n > MSIX_MAX_VECTORS) {
      throw new RangeError(`${fn.name}: MSI-X vector count must be 1..${MSIX_MAX_VECTORS}, got ${n}`);
    }
    if (!Number.isInteger(options.bar) || options.bar < 0 || options.bar > 5) {
      throw new RangeError(`${fn.name}: MSI-X BAR index must be 0..5, got ${options.bar}`);
    }
    this.vectors = n;
    this.tableOffset = options.tableOffset ?? 0;
    if (this.tableOffset % 8 !== 0) throw new RangeError(`${fn.name}: MSI-X table offset must be 8-byte aligned`);
    this.pbaOffset = this.tableOffset + align8(ENTRY_SIZE * n);
    this.regionSize = this.pbaOffset - this.tableOffset + 8 * Math.ceil(n / 64);
    this.table = new Uint32Array(4 * n);
    this.pending = new Uint8Array(n);
    this.resetTable();

    // Capability: ID, next, message control (16), table offset/BIR (32), PBA offset/BIR (32) = 12 bytes.
    const bytes = new Uint8Array(12);
    const dv = new DataView(bytes.buffer);
    dv.setUint16(2, n - 1, true);
    dv.setUint32(4, (this.tableOffset | options.bar) >>> 0, true);
    dv.setUint32(8, (this.pbaOffset | options.bar) >>> 0, true);
    const writeMask = new Uint8Array(12);
    writeMask[3] = (CONTROL_ENABLE | CONTROL_FUNCTION_MASK) >>> 8;
    this.capabilityOffset = fn.addCapability(PCI_CAP_ID_MSIX, 12, {
      bytes,
      writeMask,
      hooks: {
        afterWrite: () => {
          this.deliverPending();
          fn.refreshIntx();
        },
      },
    });
    // An MSI-X-enabled function must not use INTx# (PCI 3.0 §6.8.2): enabling it drops an asserted line.
    fn.addIntxInhibitor(() => this.enabled);
    this.barDevice = {
      read: (offset, size) => this.readRegion(offset - this.tableOffset, size),
      write: (offset, size, value) => this.writeRegion(offset - this.tableOffset, size, value),
    };
  }

  private get control(): number {
    return this.fn.get16(this.capabilityOffset + 2);
  }

  /** MSI-X enable bit of message control. While clear, the device uses INTx. */
  get enabled(): boolean {
    return (this.control & CONTROL_ENABLE) !== 0;
  }

  get functionMasked(): boolean {
    return (this.control & CONTROL_FUNCTION_MASK) !== 0;
  }

  isMasked(vector: number): boolean {
    return (this.table[4 * vector + 3]! & VECTOR_MASKED) !== 0;
  }

  isPending(vector: number): boolean {
    return this.pending[vector] === 1;
  }

  /**
   * Signal `vector`. Returns false when MSI-X is disabled (the caller falls back to INTx). A masked vector
   * (or function) records a pending bit and is delivered on unmask.
   */
  notify(vector: number): boolean {
    if (!this.enabled) return false;
    if (!Number.isInteger(vector) || vector < 0 || vector >= this.vectors) return true;
    if (this.functionMasked || this.isMasked(vector) || !this.fn.busMasterEnabled) {
      // Without bus mastering the function cannot write the message; keep it pending like a masked vector.
      this.pending[vector] = 1;
      return true;
    }
    this.send(vector);
    return true;
  }

  /** Power-on state: every vector masked, nothing pending (control lives in config space: PciFunction.reset). */
  reset(): void {
    this.resetTable();
  }

  private resetTable(): void {
    this.table.fill(0);
    for (let v = 0; v < this.vectors; v++) this.table[4 * v + 3] = VECTOR_MASKED;
    this.pending.fill(0);
  }

  private send(vector: number): void {
    this.pending[vector] = 0;
    const address = this.table[4 * vector + 1]! * TWO_POW_32 + this.table[4 * vector]!;
    // An address beyond 2^53 cannot be a Number exactly, and no interrupt controller lives there: drop it
    // (on x86 only 0xFEEx_xxxx is an interrupt; the sink judges everything else it can represent).
    if (!Number.isSafeInteger(address)) {
      this.dropped++;
      return;
    }
    this.sent++;
    this.options.msi.sendMsi(address, this.table[4 * vector + 2]!);
  }

  private deliverPending(): void {
    if (!this.enabled || this.functionMasked || !this.fn.busMasterEnabled) return;
    for (let v = 0; v < this.vectors; v++) {
      if (this.pending[v] && !this.isMasked(v)) this.send(v);
    }
  }

  private readRegion(offset: number, size: number): number {
    if (offset < 0 || offset + size > this.regionSize) return 0;
    let value = 0;
    for (let i = 0; i < size; i++) value |= this.readByte(offset + i) << (8 * i);
    return value >>> 0;
  }

  private readByte(offset: number): number {
    const pba = this.pbaOffset - this.tableOffset;
    if (offset < ENTRY_SIZE * this.vectors) return (this.table[offset >>> 2]! >>> (8 * (offset & 3))) & 0xff;
    if (offset >= pba) {
      let byte = 0;
      for (let bit = 0; bit < 8; bit++) {
        const v = 8 * (offset - pba) + bit;
        if (v < this.vectors && this.pending[v]) byte |= 1 << bit;
      }
      return byte;
    }
    return 0;
  }

  private writeRegion(offset: number, size: number, value: number): void {
    // The PBA is read-only; only the table takes writes. Byte and word writes merge into their dword.
    if (offset < 0 || offset + size > ENTRY_SIZE * this.vectors) return;
    const word = offset >>> 2;
    if (((offset + size - 1) >>> 2) !== word) return;
    const shift = 8 * (offset & 3);
    const mask = size === 4 ? 0xffffffff : (((1 << (8 * size)) - 1) << shift) >>> 0;
    const wasMasked = this.isMasked(word >>> 2);
    this.table[word] = ((this.table[word]! & ~mask) | ((value << shift) & mask)) >>> 0;
    const vector = word >>> 2;
    if (wasMasked && !this.isMasked(vector) && this.pending[vector]) this.deliverPending();
  }
}

function align8(n: number): number {
  return (n + 7) & ~7;
}
