/**
 * Model-specific registers without a home elsewhere in the CPU state. EFER and FS/GS base live in Cpu (they are
 * on hot paths); RDMSR/WRMSR (exec/system.ts) route those.
 */
export class CpuMsrs {
  star = 0n;
  lstar = 0;
  cstar = 0;
  sfmask = 0;
  kernelGsBase = 0;
  sysenterCs = 0;
  sysenterEsp = 0;
  sysenterEip = 0;
  tscAux = 0;
  /** Added to the clock so that WRMSR TSC works. */
  tscOffset = 0n;
  pat = 0x0007040600070406n;
  miscEnable = 1n; // fast strings
  mtrrDefType = 0n;
  apicBase: bigint | undefined;

  constructor(private readonly platformApicBase: bigint | undefined) {
    this.apicBase = platformApicBase;
  }

  reset(): void {
    this.star = 0n; this.lstar = 0; this.cstar = 0; this.sfmask = 0; this.kernelGsBase = 0;
    this.sysenterCs = 0; this.sysenterEsp = 0; this.sysenterEip = 0; this.tscAux = 0; this.tscOffset = 0n;
    this.pat = 0x0007040600070406n; this.miscEnable = 1n; this.mtrrDefType = 0n; this.apicBase = this.platformApicBase;
  }
}

/** 64-bit MSR value (BigInt) → canonical signed Number form used for linear addresses. */
export function canonicalNumber(v: bigint): number {
  return Number(BigInt.asIntN(64, v));
}

/** Is v (BigInt) a canonical 48-bit address? */
export function isCanonical(v: bigint): boolean {
  const s = BigInt.asIntN(64, v);
  return s >= -(1n << 47n) && s < 1n << 47n;
}

/** Canonical signed Number → unsigned 64-bit BigInt. */
export function numberToU64(v: number): bigint {
  return BigInt.asUintN(64, BigInt(v));
}
