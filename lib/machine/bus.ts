/**
 * Port-I/O and MMIO address spaces. A device claims a range and sees accesses as (offset, size, value)
 * relative to the start of its range. The accelerator (KVM exit loop or interpreter) is the only caller.
 *
 * Access sizes are 1, 2 or 4 bytes; wider accesses (8-byte MMIO, `rep movs` into MMIO) are split by
 * readBytes/writeBytes into naturally sized little-endian pieces.
 */

export interface BusDevice {
  read(offset: number, size: number): number;
  write(offset: number, size: number, value: number): void;
}

interface Mapping {
  readonly base: number;
  readonly length: number;
  readonly device: BusDevice;
  readonly name: string;
}

export class Bus {
  private mappings: Mapping[] = [];
  /** Called once per unclaimed address so a misbehaving guest is visible without flooding the log. */
  onUnclaimed: ((kind: 'read' | 'write', address: number, size: number) => void) | undefined;
  private readonly reportedUnclaimed = new Set<number>();

  constructor(readonly kind: 'pio' | 'mmio') {}

  register(base: number, length: number, device: BusDevice, name: string): void {
    if (!Number.isSafeInteger(base) || !Number.isSafeInteger(length) || base < 0 || length <= 0) {
      throw new RangeError(`${this.kind} range for ${name}: bad base/length ${base}/${length}`);
    }
    for (const m of this.mappings) {
      if (base < m.base + m.length && m.base < base + length) {
        throw new RangeError(
          `${this.kind} range 0x${base.toString(16)}+0x${length.toString(16)} for ${name} overlaps ${m.name}`,
        );
      }
    }
    this.mappings.push({ base, length, device, name });
    this.mappings.sort((a, b) => a.base - b.base);
  }

  unregister(device: BusDevice): void {
    this.mappings = this.mappings.filter((m) => m.device !== device);
  }

  /** The mapping covering `address`, or undefined. */
  find(address: number): { device: BusDevice; offset: number; name: string } | undefined {
    // Few mappings and mostly hot at the front: a linear scan beats a tree here.
    for (const m of this.mappings) {
      if (address >= m.base && address < m.base + m.length) return { device: m.device, offset: address - m.base, name: m.name };
    }
    return undefined;
  }

  read(address: number, size: number): number {
    const hit = this.find(address);
    if (!hit) {
      this.unclaimed('read', address, size);
      return size >= 4 ? 0xffffffff : (1 << (size * 8)) - 1;
    }
    return hit.device.read(hit.offset, size);
  }

  write(address: number, size: number, value: number): void {
    const hit = this.find(address);
    if (!hit) {
      this.unclaimed('write', address, size);
      return;
    }
    hit.device.write(hit.offset, size, value);
  }

  /** Read `out.length` bytes (1..8, or any length for string I/O) in the largest naturally sized pieces. */
  readBytes(address: number, out: Uint8Array): void {
    let i = 0;
    while (i < out.length) {
      const size = pieceSize(out.length - i);
      const v = this.read(address + i, size);
      for (let b = 0; b < size; b++) out[i + b] = (v >>> (8 * b)) & 0xff;
      i += size;
    }
  }

  writeBytes(address: number, data: Uint8Array): void {
    let i = 0;
    while (i < data.length) {
      const size = pieceSize(data.length - i);
      let v = 0;
      for (let b = 0; b < size; b++) v |= data[i + b]! << (8 * b);
      this.write(address + i, size, v >>> 0);
      i += size;
    }
  }

  private unclaimed(kind: 'read' | 'write', address: number, size: number): void {
    if (!this.onUnclaimed || this.reportedUnclaimed.has(address)) return;
    this.reportedUnclaimed.add(address);
    this.onUnclaimed(kind, address, size);
  }
}

function pieceSize(remaining: number): number {
  return remaining >= 4 ? 4 : remaining >= 2 ? 2 : 1;
}
