/**
 * The CPU's view of the x87/SSE state. Semantics come from lib/cpu/simd (helper H10); this holds the state the
 * integer core must save, restore and expose (XMM registers, MXCSR, x87 control/status/tag words).
 */
export class SimdUnit {
  /** XMM0-15 as 4 little-endian dwords each. */
  readonly xmm = new Uint32Array(16 * 4);
  mxcsr = 0x1f80;
  /** x87 control word, status word, abridged tag word (FXSAVE layout) and the 8 registers as 80-bit images. */
  fcw = 0x37f;
  fsw = 0;
  ftw = 0;
  readonly st = new Uint8Array(8 * 16);

  reset(): void {
    this.xmm.fill(0);
    this.mxcsr = 0x1f80;
    this.fcw = 0x37f; this.fsw = 0; this.ftw = 0; this.st.fill(0);
  }
}
