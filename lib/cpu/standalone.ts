/**
 * Standalone use without a machine (Unicorn-style): a CPU with its own RAM in 64-bit long mode, and map/unmap of
 * virtual ranges onto RAM through 4-level page tables kept in a reserved area at the top of RAM.
 */
import { Bus } from '../machine/bus.js';
import { GuestMemory } from '../machine/guest-memory.js';
import { Cpu } from './cpu.js';

export interface MapPermissions { write: boolean; exec: boolean; user: boolean }

export class StandaloneMachine {
  readonly memory: GuestMemory;
  readonly pio = new Bus('pio');
  readonly mmio = new Bus('mmio');
  readonly cpu: Cpu;
  private nextTable: number;
  private readonly tableBase: number;
  private nextFrame = 0x1000;
  private readonly pml4: number;

  /** `ramSize` bytes of RAM; the top `tableArea` bytes hold page tables. */
  constructor(ramSize: number, tableArea = 1 << 20) {
    if (ramSize % 4096 || tableArea % 4096 || tableArea >= ramSize) throw new RangeError('StandaloneMachine: ramSize/tableArea must be page multiples, tables smaller than RAM');
    this.memory = GuestMemory.ofSize(ramSize);
    this.tableBase = ramSize - tableArea;
    this.pml4 = this.tableBase;
    this.nextTable = this.tableBase + 4096;
    this.cpu = new Cpu({ memory: this.memory, pio: this.pio, mmio: this.mmio, mode: 'long64' });
    this.cpu.cr3 = this.pml4;
    this.cpu.cr4 |= 0x600; // OSFXSR | OSXMMEXCPT
    this.cpu.efer |= 0x800; // NXE
    this.cpu.exceptionsToHost = true;
    this.cpu.cr0 |= 1 << 16; // WP: supervisor writes honour read-only pages
  }

  private table(addr: number, index: number): number {
    const e = addr + index * 8;
    const lo = this.memory.readU32(e);
    if (lo & 1) return (lo & 0xfffff000) >>> 0;
    if (this.nextTable + 4096 > this.memory.size) throw new RangeError('StandaloneMachine: page-table area exhausted');
    const t = this.nextTable;
    this.nextTable += 4096;
    this.memory.fill(t, 4096, 0);
    this.memory.writeU32(e, t | 7);
    this.memory.writeU32(e + 4, 0);
    return t;
  }

  /**
   * Map `size` bytes at virtual `virt` (canonical, page aligned) onto fresh RAM frames (or onto `phys` when given).
   * Returns the physical address of the first page.
   */
  map(virt: bigint, size: number, perms: MapPermissions = { write: true, exec: true, user: true }, phys?: number): number {
    if (virt % 4096n || size % 4096) throw new RangeError('map: address and size must be page aligned');
    const pages = size / 4096;
    let frame = phys ?? this.nextFrame;
    if (phys === undefined) {
      if (this.nextFrame + size > this.tableBase) throw new RangeError('map: out of RAM');
      this.nextFrame += size;
    }
    const first = frame;
    for (let p = 0; p < pages; p++) {
      const v = BigInt.asUintN(48, virt + BigInt(p * 4096));
      const idx = (shift: bigint) => Number((v >> shift) & 511n);
      const pdpt = this.table(this.pml4, idx(39n));
      const pd = this.table(pdpt, idx(30n));
      const pt = this.table(pd, idx(21n));
      const e = pt + idx(12n) * 8;
      this.memory.writeU32(e, (frame | 1 | (perms.write ? 2 : 0) | (perms.user ? 4 : 0)) >>> 0);
      this.memory.writeU32(e + 4, perms.exec ? 0 : 0x80000000);
      frame += 4096;
    }
    this.cpu.flushTlb(true);
    return first;
  }

  unmap(virt: bigint, size: number): void {
    for (let p = 0; p < size / 4096; p++) {
      const v = BigInt.asUintN(48, virt + BigInt(p * 4096));
      const idx = (shift: bigint) => Number((v >> shift) & 511n);
      let t = this.pml4;
      let ok = true;
      for (const sh of [39n, 30n, 21n]) {
        const lo = this.memory.readU32(t + idx(sh) * 8);
        if (!(lo & 1)) { ok = false; break; }
        t = (lo & 0xfffff000) >>> 0;
      }
      if (ok) this.memory.writeU32(t + idx(12n) * 8, 0);
    }
    this.cpu.flushTlb(true);
  }

  /** Write bytes at a virtual address (through the page tables, as a supervisor). */
  writeVirtual(virt: bigint, data: Uint8Array): void {
    for (let k = 0; k < data.length; k++) this.memory.writeU8(this.cpu.physAddr(Number(BigInt.asIntN(64, virt + BigInt(k))), 0, true), data[k]!);
    this.cpu.invalidateAll();
  }

  readVirtual(virt: bigint, length: number): Uint8Array {
    const out = new Uint8Array(length);
    for (let k = 0; k < length; k++) out[k] = this.memory.readU8(this.cpu.physAddr(Number(BigInt.asIntN(64, virt + BigInt(k))), 0, true));
    return out;
  }
}
