/**
 * Guest physical memory as seen by the VMM: one or more RAM regions, each backed by a Uint8Array
 * (on KVM, an external ArrayBuffer over the addon's mmap; on the interpreter, a plain ArrayBuffer).
 *
 * Every address that comes from the guest goes through `view`/`check`: an access that is not entirely
 * inside one region throws GuestMemoryError and never touches host memory outside guest RAM.
 */

export class GuestMemoryError extends Error {
  readonly code = 'EGUESTADDR';
  constructor(readonly address: number, readonly length: number) {
    super(`guest physical range 0x${address.toString(16)}+0x${length.toString(16)} is outside guest RAM`);
    this.name = 'GuestMemoryError';
  }
}

export interface MemoryRegion {
  /** Guest physical address of the first byte. */
  readonly guestAddress: number;
  readonly bytes: Uint8Array;
}

export class GuestMemory {
  readonly regions: readonly MemoryRegion[];
  private readonly dataViews: DataView[];

  constructor(regions: MemoryRegion[]) {
    const sorted = [...regions].sort((a, b) => a.guestAddress - b.guestAddress);
    for (let i = 1; i < sorted.length; i++) {
      const prev = sorted[i - 1]!;
      if (prev.guestAddress + prev.bytes.length > sorted[i]!.guestAddress) {
        throw new RangeError(`memory regions overlap at 0x${sorted[i]!.guestAddress.toString(16)}`);
      }
    }
    this.regions = sorted;
    this.dataViews = sorted.map((r) => new DataView(r.bytes.buffer, r.bytes.byteOffset, r.bytes.byteLength));
  }

  /** Convenience: a single region of `size` bytes at guest address 0. */
  static ofSize(size: number): GuestMemory {
    return new GuestMemory([{ guestAddress: 0, bytes: new Uint8Array(size) }]);
  }

  /** Total bytes of RAM over all regions. */
  get size(): number {
    return this.regions.reduce((n, r) => n + r.bytes.length, 0);
  }

  /** End (exclusive) of the highest region. */
  get end(): number {
    const last = this.regions[this.regions.length - 1];
    return last ? last.guestAddress + last.bytes.length : 0;
  }

  private regionIndex(address: number, length: number): number {
    if (!Number.isSafeInteger(address) || !Number.isSafeInteger(length) || address < 0 || length < 0) return -1;
    for (let i = 0; i < this.regions.length; i++) {
      const r = this.regions[i]!;
      if (address >= r.guestAddress && address + length <= r.guestAddress + r.bytes.length) return i;
    }
    return -1;
  }

  /** True when [address, address+length) lies entirely within one RAM region. */
  contains(address: number, length: number): boolean {
    return this.regionIndex(address, length) >= 0;
  }

  /** Throws GuestMemoryError unless [address, address+length) is RAM. */
  check(address: number, length: number): void {
    if (this.regionIndex(address, length) < 0) throw new GuestMemoryError(address, length);
  }

  /** A live view (no copy) of guest RAM. Writes to it are guest-visible. */
  view(address: number, length: number): Uint8Array {
    const i = this.regionIndex(address, length);
    if (i < 0) throw new GuestMemoryError(address, length);
    const r = this.regions[i]!;
    return r.bytes.subarray(address - r.guestAddress, address - r.guestAddress + length);
  }

  /** A copy of guest RAM. */
  read(address: number, length: number): Uint8Array {
    return this.view(address, length).slice();
  }

  write(address: number, data: Uint8Array): void {
    this.view(address, data.length).set(data);
  }

  fill(address: number, length: number, value = 0): void {
    this.view(address, length).fill(value);
  }

  private dv(address: number, length: number): [DataView, number] {
    const i = this.regionIndex(address, length);
    if (i < 0) throw new GuestMemoryError(address, length);
    return [this.dataViews[i]!, address - this.regions[i]!.guestAddress];
  }

  readU8(a: number): number { const [d, o] = this.dv(a, 1); return d.getUint8(o); }
  readU16(a: number): number { const [d, o] = this.dv(a, 2); return d.getUint16(o, true); }
  readU32(a: number): number { const [d, o] = this.dv(a, 4); return d.getUint32(o, true); }
  readU64(a: number): bigint { const [d, o] = this.dv(a, 8); return d.getBigUint64(o, true); }
  writeU8(a: number, v: number): void { const [d, o] = this.dv(a, 1); d.setUint8(o, v); }
  writeU16(a: number, v: number): void { const [d, o] = this.dv(a, 2); d.setUint16(o, v, true); }
  writeU32(a: number, v: number): void { const [d, o] = this.dv(a, 4); d.setUint32(o, v >>> 0, true); }
  writeU64(a: number, v: bigint): void { const [d, o] = this.dv(a, 8); d.setBigUint64(o, BigInt.asUintN(64, v), true); }
}
