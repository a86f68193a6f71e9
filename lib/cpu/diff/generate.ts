/**
 * Random test cases from the interpreter's own encoding table (decoder/table.ts): 1-8 user-mode instructions
 * with random prefixes, ModRM/SIB/displacements and immediates, memory operands aimed at the data pages, random
 * GPRs / flags / x87 / MMX / XMM / MXCSR state, followed by a strip of end markers.
 */
import { A_I64, A_LOCK, A_SSE, A_X87, encodings, Imm, Pfx, type Encoding } from '../decoder/table.js';
import { bindHandler } from '../exec/registry.js';
import '../exec/index.js';
import type { RegsState } from '../state.js';
import type { KvmFpu } from '../simd/index.js';
import { CODE, DATA, DATA_SIZE, MARKER_PORT } from './layout.js';

export const CF = 1, PF = 4, AF = 0x10, ZF = 0x40, SF = 0x80, OF = 0x800;
const ARITH = CF | PF | AF | ZF | SF | OF;

/** Deterministic PRNG (xorshift128+ on 32-bit halves, fast in JS). */
export class Rng {
  private a: number; private b: number; private c: number; private d: number;
  constructor(seed: number) {
    this.a = seed | 0 || 1; this.b = 0x9e3779b9; this.c = 0x243f6a88; this.d = 0xb7e15162;
    for (let i = 0; i < 16; i++) this.u32();
  }
  u32(): number {
    let t = this.d;
    const s = this.a;
    this.d = this.c; this.c = this.b; this.b = s;
    t ^= t << 11; t ^= t >>> 8;
    this.a = (t ^ s ^ (s >>> 19)) >>> 0;
    return this.a;
  }
  int(n: number): number { return this.u32() % n; }
  bool(p = 0.5): boolean { return this.u32() / 4294967296 < p; }
  pick<T>(a: readonly T[]): T { return a[this.int(a.length)]!; }
  u64(): bigint { return (BigInt(this.u32()) << 32n) | BigInt(this.u32()); }
  /** Interesting 64-bit values: edges, small numbers, random. */
  value(): bigint {
    const r = this.int(8);
    if (r < 2) return this.pick(EDGES);
    if (r === 2) return BigInt(this.int(64));
    if (r === 3) return BigInt.asUintN(64, -BigInt(this.int(64)));
    if (r === 4) return BigInt(this.u32());
    return this.u64();
  }
}
const EDGES = [0n, 1n, 2n, 0x7fn, 0x80n, 0xffn, 0x7fffn, 0x8000n, 0xffffn, 0x7fffffffn, 0x80000000n, 0xffffffffn,
  0x7fffffffffffffffn, 0x8000000000000000n, 0xffffffffffffffffn, 0x100000000n];

/** Mnemonics excluded from generation, with the reason (printed in the coverage report). */
export const EXCLUDED: Record<string, string> = {};
function exclude(reason: string, names: string): void { for (const n of names.split(' ')) EXCLUDED[n] = reason; }
exclude('port I/O (ends the test on both sides)', 'in out ins outs');
exclude('result depends on the host (time, CPUID, descriptor tables as KVM keeps them)', 'rdtsc rdtscp rdpmc cpuid sgdt sidt sldt str smsw lar lsl verr verw');
exclude('segment register loads/stores depend on how KVM presents selectors', 'mov_seg push_seg pop_seg lfs lgs lss');
exclude('int3/int1 are not completed by this host\'s KVM (emulation failure); kvm_pvm takes INT n from CPL3 for itself (returns CPUID-like values)', 'int3 int1 int');
exclude('changes IF / system call path not usable at CPL3 on kvm_pvm', 'cli sti popf syscall sysenter sysret sysexit iret retf');
exclude('x87 transcendental: host precision beyond float64 (see lib/cpu/README)', 'fsin fcos fsincos fptan fpatan f2xm1 fyl2x fyl2xp1');
exclude('stores FPU environment (FIP/FDP/FOP not modelled bit-exactly)', 'fnstenv fnsave fxsave');
exclude('far transfers', 'call_far jmp_far');
exclude('C4/C5 are VEX prefixes in 64-bit mode (the host runs AVX; the interpreter has no AVX)', 'les lds');
exclude('vendor-specific: this AMD host clears FSW.TOP on EMMS (the SDM only empties the tag word)', 'emms');
exclude('kvm_pvm completes a misaligned FXRSTOR in its instruction emulator after the native #GP (no alignment check)', 'fxrstor');
exclude('feature the interpreter does not advertise in CPUID (the host CPU has it: F3 0F BC/BD run as BSF/BSR in the interpreter)',
  'movbe lzcnt tzcnt popcnt crc32 pcmpestri pcmpestrm pcmpistri pcmpistrm pcmpgtq rdrand rdseed rdpid xsave xrstor xsaveopt xsavec xsaves xrstors xgetbv xsetbv clac stac monitor mwait monitorx mwaitx xbegin xabort xend xtest clwb clflushopt tpause rdsspq incsspq serialize invpcid xstore-rng');

/** Operand-size sensitive instructions without explicit operands. */
const SIZED_NO_OPERANDS = new Set(['cbw', 'cwd', 'pushf', 'leave', 'ret']);
/** 66-prefixed near branches: AMD honours the 16-bit operand size in 64-bit mode, Intel ignores it (vendor-specific). */
const NEAR_BRANCH = new Set(['call', 'jmp', 'ret', 'jcc']);

/** Mnemonic placement: 'last' = must end the sequence (jumps; flag-dependent masks read the final flags). */
const LAST = new Set(['bsf', 'bsr', 'ret', 'loop', 'loope', 'loopne', 'jrcxz', 'jmp', 'call']);

function keyOf(e: Encoding): string {
  if (e.operands.some((o) => o === 'Sw' || o === 'ES' || o === 'CS' || o === 'SS' || o === 'DS' || o === 'FS' || o === 'GS')) {
    return e.mnemonic === 'mov' ? 'mov_seg' : e.mnemonic + '_seg';
  }
  if (e.operands.includes('Ap') || e.operands.includes('Mp')) return e.mnemonic + '_far';
  return e.mnemonic;
}

export function generatable(e: Encoding): boolean {
  if (EXCLUDED[keyOf(e)] || EXCLUDED[e.mnemonic]) return false;
  // 40-4F are REX prefixes in 64-bit mode: they merge with the next instruction (66+REX before a Jcc is vendor-specific)
  if (e.attrs & A_I64 && e.plusR) return false;
  if (e.attrs & A_I64) return true; // #UD in 64-bit mode on both sides
  return bindHandler(e) !== null;
}

/** Encodings the interpreter executes in 64-bit user mode that the generator uses. */
export const POOL: Encoding[] = encodings.filter(generatable);

export interface GenInsn { enc: Encoding; offset: number; length: number }
export interface DiffCase {
  seed: number;
  code: Uint8Array;
  insns: GenInsn[];
  regs: RegsState;
  fpu: KvmFpu;
  data: Uint8Array;
}

const GPR_ORDER = ['rax', 'rcx', 'rdx', 'rbx', 'rsp', 'rbp', 'rsi', 'rdi', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15'] as const;

function immBytes(imm: Imm, os: number): number {
  switch (imm) {
    case Imm.B: case Imm.J8: return 1;
    case Imm.W: return 2;
    case Imm.Z: return os === 2 ? 2 : 4;
    case Imm.V: return os;
    case Imm.JZ: return 4;
    case Imm.Moffs: return 8;
    case Imm.Enter: return 3;
    default: return 0;
  }
}

/** A random x87 register image: a float64-representable value (or special) in 80-bit form. */
function f80(rng: Rng, out: Uint8Array, at: number): void {
  const r = rng.int(10);
  const dv = new DataView(out.buffer, out.byteOffset);
  if (r === 0) { dv.setBigUint64(at, 0n, true); dv.setUint16(at + 8, rng.bool() ? 0x8000 : 0, true); return; }
  let x: number;
  if (r === 1) x = rng.int(200) - 100;
  else if (r === 2) x = rng.bool() ? Infinity : -Infinity;
  else if (r === 3) x = NaN;
  else { const f = new Float64Array(1); new Uint32Array(f.buffer).set([rng.u32(), (rng.u32() & 0x800fffff) | ((0x3c0 + rng.int(0x80)) << 20)]); x = f[0]!; }
  const f = new Float64Array([x]); const u = new BigUint64Array(f.buffer)[0]!;
  const sign = Number(u >> 63n), exp = Number((u >> 52n) & 0x7ffn), frac = u & 0xfffffffffffffn;
  let e80: number, m: bigint;
  if (exp === 0x7ff) { e80 = 0x7fff; m = (1n << 63n) | (frac << 11n); } else if (exp === 0 && frac === 0n) { e80 = 0; m = 0n; } else { e80 = exp - 1023 + 16383; m = (1n << 63n) | (frac << 11n); }
  dv.setBigUint64(at, m, true); dv.setUint16(at + 8, (sign << 15) | e80, true);
}

function randomFpu(rng: Rng): KvmFpu {
  const fpr = new Uint8Array(128);
  for (let i = 0; i < 8; i++) f80(rng, fpr, i * 16);
  const xmm = new Uint8Array(256);
  const xv = new DataView(xmm.buffer);
  for (let i = 0; i < 64; i++) {
    const k = rng.int(6);
    // mixes of float32/float64-looking lanes and raw integers
    if (k === 0) xv.setFloat32(i * 4, (rng.int(2000) - 1000) / 8, true);
    else if (k === 1 && i % 2 === 0) { xv.setFloat64(i * 4, (rng.int(2000) - 1000) / 16, true); i++; } else xv.setUint32(i * 4, rng.u32(), true);
  }
  let mxcsr = 0x1f80;
  if (rng.bool(0.3)) mxcsr = (mxcsr & ~0x6000) | (rng.int(4) << 13);
  if (rng.bool(0.1)) mxcsr |= 0x8040 & (rng.bool() ? 0x8000 : 0x40);
  if (rng.bool(0.05)) mxcsr &= ~(1 << (7 + rng.int(6)));
  let fcw = 0x27f; // double precision: the interpreter's x87 is float64 (README)
  if (rng.bool(0.3)) fcw = (fcw & ~0xc00) | (rng.int(4) << 10);
  const top = rng.int(8);
  return { fpr, fcw, fsw: top << 11, ftwx: rng.int(256), lastOpcode: 0, lastIp: 0, lastDp: 0, xmm, mxcsr };
}

interface Built { bytes: number[]; enc: Encoding }

/** Encode one instruction from `enc` at code offset `at`; memory operands aim at the data pages. */
function encodeOne(rng: Rng, enc: Encoding, at: number, regs: RegsState, last: boolean): Built {
  const pre: number[] = [];
  let os = 4, rexW = false;
  const sse = (enc.attrs & (A_SSE | A_X87)) !== 0;
  const hasV = enc.operands.some((o) => /^[EGMZ]v$|^rAX$|^Iz$|^Iv$|^Ev$|^Gv$|^[XY]v$|^[XY]z$/.test(o)) || SIZED_NO_OPERANDS.has(enc.mnemonic);
  if (enc.pfx === Pfx.Any) {
    if (sse) { if (enc.map > 0 && rng.bool()) pre.push(0x66); } else if (hasV) { const r = rng.int(4); if (r === 0) { pre.push(0x66); os = 2; } else if (r === 1) { rexW = true; os = 8; } }
  } else if (enc.pfx !== Pfx.None) pre.push(enc.pfx);
  if (enc.pfx !== Pfx.Any && rng.bool(0.3)) rexW = true; // Ey / Gy forms
  if (NEAR_BRANCH.has(enc.mnemonic) && os === 2) { pre.pop(); os = 4; }
  // 16-bit SHLD/SHRD with a count above 16: result and flags undefined (SDM), so only 32/64-bit forms.
  if ((enc.mnemonic === 'shld' || enc.mnemonic === 'shrd') && os === 2) { pre.pop(); os = 4; }
  if (!sse && /^(movs|cmps|stos|lods|scas)$/.test(enc.mnemonic) && rng.bool(0.6)) pre.unshift(rng.bool(0.7) ? 0xf3 : 0xf2);
  const wantMem = enc.mod === 0 || (enc.mod === -1 && rng.bool(0.5));
  if ((enc.attrs & A_LOCK) && wantMem && rng.bool(0.3)) pre.unshift(0xf0);
  if (enc.attrs & A_I64) rexW = false;
  let rex = rexW ? 8 : 0;
  const ops: number[] = [];
  if (enc.map >= 1) ops.push(0x0f);
  if (enc.map === 2) ops.push(0x38);
  if (enc.map === 3) ops.push(0x3a);
  let opcode = enc.opcode;
  ops.push(opcode);
  let modrm: number[] = [];
  let ripRelAt = -1, ripTarget = 0;
  if (enc.modrm) {
    let reg = enc.reg >= 0 ? enc.reg : rng.int(8);
    if (rng.bool(0.3)) rex |= 4; // REX.R
    if (enc.exact >= 0) { modrm = [enc.exact]; reg = (enc.exact >> 3) & 7; rex &= ~4; } else if (!wantMem) {
      const rm = rng.int(8);
      if (rng.bool(0.3)) rex |= 1;
      modrm = [0xc0 | (reg << 3) | rm];
    } else {
      const target = DATA + (rng.bool(0.05) ? DATA_SIZE - 1 - rng.int(16) : rng.int(DATA_SIZE - 64));
      const form = rng.int(3);
      if (form === 0) { // RIP-relative
        modrm = [(reg << 3) | 5, 0, 0, 0, 0]; ripRelAt = 1; ripTarget = target;
      } else if (form === 1) { // [disp32] through SIB with no base, no index
        modrm = [(reg << 3) | 4, 0x25]; const d = target; modrm.push(d & 0xff, (d >> 8) & 0xff, (d >> 16) & 0xff, d >>> 24);
      } else { // [base + index*scale + disp8]
        const base = rng.int(16), index = rng.int(16), scale = rng.int(4), disp = rng.int(256) - 128;
        const useIndex = index !== 4 && rng.bool(0.5);
        if (base & 8) rex |= 1;
        if (useIndex && (index & 8)) rex |= 2;
        const sib = (scale << 6) | ((useIndex ? index & 7 : 4) << 3) | (base & 7);
        modrm = [0x44 | (reg << 3), sib, disp & 0xff];
        const bName = GPR_ORDER[base]!;
        if (useIndex && index !== base) {
          const iv = BigInt(rng.int(32)); regs[GPR_ORDER[index]!] = iv;
          regs[bName] = BigInt(target - disp) - (iv << BigInt(scale));
        } else if (useIndex) {
          regs[bName] = BigInt(Math.floor((target - disp) / (1 + (1 << scale))));
        } else regs[bName] = BigInt(target - disp);
      }
    }
  } else if (enc.plusR) {
    ops[ops.length - 1] = (opcode & ~7) | rng.int(8);
    if (rng.bool(0.3)) rex |= 1;
    opcode = ops[ops.length - 1]!;
  }
  if (rex || rng.bool(0.1)) pre.push(0x40 | rex);
  const imm: number[] = [];
  for (const k of enc.imms) {
    const n = immBytes(k, rexW ? 8 : os);
    if (k === Imm.J8 || k === Imm.JZ) {
      const d = last ? 2 * rng.int(4) : 0;
      imm.push(d); for (let i = 1; i < n; i++) imm.push(0);
    } else if (k === Imm.Moffs) {
      const t = DATA + rng.int(DATA_SIZE - 16);
      for (let i = 0; i < 8; i++) imm.push(i < 4 ? (t >>> (8 * i)) & 0xff : 0);
    } else if (enc.mnemonic === 'enter' && imm.length === 0) {
      // a small frame: AMD probes [RSP - size] (Intel does not), so keep the new RSP inside the data pages
      imm.push(rng.int(256), 0, rng.int(256));
    } else for (let i = 0; i < n; i++) imm.push(rng.int(256));
  }
  const bytes = [...pre, ...ops, ...modrm, ...imm];
  if (ripRelAt >= 0) {
    const p = pre.length + ops.length + ripRelAt;
    const d = ripTarget - (CODE + at + bytes.length);
    for (let i = 0; i < 4; i++) bytes[p + i] = (d >>> (8 * i)) & 0xff;
  }
  return { bytes, enc };
}

/** One case: 1-8 instructions from POOL (or from `only`), random state. */
export function generateCase(seed: number, only?: readonly Encoding[]): DiffCase {
  const rng = new Rng(seed);
  const regs = {} as RegsState;
  for (const r of GPR_ORDER) regs[r] = rng.value();
  regs.rsp = BigInt(DATA + 0x800 + (rng.bool(0.8) ? rng.int(0x300) * 8 : rng.int(0x1800)));
  if (rng.bool(0.5)) { regs.rsi = BigInt(DATA + rng.int(DATA_SIZE)); regs.rdi = BigInt(DATA + rng.int(DATA_SIZE)); regs.rcx = BigInt(rng.int(10)); }
  regs.rip = BigInt(CODE);
  regs.rflags = BigInt(0x3202 | (rng.u32() & 0x8d5) | (rng.bool(0.2) ? 0x400 : 0));
  const pool = only ?? POOL;
  const n = 1 + (rng.bool(0.5) ? 0 : rng.int(8));
  const insns: GenInsn[] = [];
  const bytes: number[] = [];
  let dirtyFlags = false;
  for (let k = 0; k < n; k++) {
    let enc = rng.pick(pool);
    // Once a flag is undefined, no later instruction may consume flags (its result would be undefined too).
    for (let tries = 0; dirtyFlags && readsFlags(enc) && tries < 20; tries++) enc = rng.pick(pool);
    if (dirtyFlags && readsFlags(enc)) break;
    const isLast = k === n - 1;
    if (!isLast && (LAST.has(enc.mnemonic) || enc.cc >= 0 && enc.imms.length > 0)) {
      enc = rng.pick(pool);
      if (LAST.has(enc.mnemonic) || enc.imms.includes(Imm.J8) || enc.imms.includes(Imm.JZ)) { k = n - 1; }
    }
    if (dirtyFlags && readsFlags(enc)) break; // (the re-pick above may have drawn a flag reader)
    const last = k === n - 1;
    if (undefinedFlags(enc)) dirtyFlags = true;
    const b = encodeOne(rng, enc, bytes.length, regs, last);
    insns.push({ enc, offset: bytes.length, length: b.bytes.length });
    bytes.push(...b.bytes);
  }
  for (let k = 0; k < 4; k++) bytes.push(0xe6, MARKER_PORT + k);
  const data = new Uint8Array(DATA_SIZE);
  const words = new Uint32Array(data.buffer);
  for (let i = 0; i < words.length; i++) {
    const v = rng.u32();
    words[i] = (v & 7) === 0 ? 0 : (v & 7) === 1 ? 0xffffffff : v;
  }
  return { seed, code: new Uint8Array(bytes), insns, regs, fpu: randomFpu(rng), data };
}

const FLAG_READERS = new Set(['adc', 'sbb', 'rcl', 'rcr', 'pushf', 'lahf', 'cmc', 'jcc', 'setcc', 'cmovcc', 'loope', 'loopne',
  'fcmovb', 'fcmove', 'fcmovbe', 'fcmovu', 'fcmovnb', 'fcmovne', 'fcmovnbe', 'fcmovnu', 'into', 'salc']);
function readsFlags(e: Encoding): boolean {
  return FLAG_READERS.has(e.mnemonic) || e.cc >= 0;
}

/** RFLAGS bits the SDM leaves undefined after this instruction (given the final flags, for BSF/BSR). */
export function undefinedFlags(e: Encoding): number {
  const m = e.mnemonic;
  if (['and', 'or', 'xor', 'test'].includes(m)) return AF;
  if (['shl', 'shr', 'sar', 'sal'].includes(m)) return AF | (e.opcode === 0xd0 || e.opcode === 0xd1 ? 0 : OF);
  if (['rol', 'ror', 'rcl', 'rcr'].includes(m)) return e.opcode === 0xd0 || e.opcode === 0xd1 ? 0 : OF;
  if (m === 'shld' || m === 'shrd') return AF | OF | CF; // CF undefined when count > size (16-bit forms)
  if (m === 'mul' || m === 'imul') return SF | ZF | AF | PF;
  if (m === 'div' || m === 'idiv') return ARITH;
  if (m === 'bt' || m === 'bts' || m === 'btr' || m === 'btc') return OF | SF | AF | PF;
  if (m === 'bsf' || m === 'bsr') return CF | OF | SF | AF | PF;
  return 0;
}
