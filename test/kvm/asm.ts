/**
 * Tiny helpers for hand-assembled test guests: little-endian immediates and a byte builder with labels for
 * short jumps. Each test writes its instructions with the encoding spelled out in a comment.
 */

export const u16 = (v: number): number[] => [v & 0xff, (v >>> 8) & 0xff];
export const u32 = (v: number): number[] => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
export const u64 = (v: bigint): number[] => Array.from({ length: 8 }, (_, i) => Number((v >> BigInt(8 * i)) & 0xffn));

/** Accumulates code; `label()` marks a position, `rel8(label)` emits the displacement of a short jump to it. */
export class Code {
  readonly bytes: number[] = [];
  private readonly labels = new Map<string, number>();
  private readonly fixups: { at: number; label: string }[] = [];

  /** Appends instruction bytes. */
  emit(...bytes: (number | number[])[]): this {
    for (const b of bytes) {
      if (Array.isArray(b)) this.bytes.push(...b);
      else this.bytes.push(b);
    }
    return this;
  }

  label(name: string): this {
    this.labels.set(name, this.bytes.length);
    return this;
  }

  /** A rel8 placeholder resolved against `name` (the byte after it is the jump origin). */
  rel8(name: string): number {
    this.fixups.push({ at: this.bytes.length, label: name });
    return 0;
  }

  get length(): number { return this.bytes.length; }

  assemble(): Uint8Array {
    const out = Uint8Array.from(this.bytes);
    for (const f of this.fixups) {
      const target = this.labels.get(f.label);
      if (target === undefined) throw new Error(`asm: undefined label ${f.label}`);
      const disp = target - (f.at + 1);
      if (disp < -128 || disp > 127) throw new Error(`asm: jump to ${f.label} out of rel8 range`);
      out[f.at] = disp & 0xff;
    }
    return out;
  }
}
