/**
 * Register access by name (Unicorn-style API): GPRs in every width (rax/eax/ax/al/ah, r8/r8d/r8w/r8b), rip/eip/ip,
 * rflags/eflags, segment selectors, control registers, EFER and FS/GS base. 64-bit values are BigInt; narrower
 * registers are Numbers.
 */
import { GPR_NAMES, SEG_NAMES } from './constants.js';
import type { Cpu } from './cpu.js';
import { writeCr0, writeCr3, writeCr4 } from './exec/system.js';
import { numberToU64 } from './msr.js';

const R32 = ['eax', 'ecx', 'edx', 'ebx', 'esp', 'ebp', 'esi', 'edi'];
const R16 = ['ax', 'cx', 'dx', 'bx', 'sp', 'bp', 'si', 'di'];
const R8 = ['al', 'cl', 'dl', 'bl', 'spl', 'bpl', 'sil', 'dil'];
const R8H = ['ah', 'ch', 'dh', 'bh'];

/** [register index, size in bytes] for a GPR name, or undefined. Index 16-19 = AH/CH/DH/BH. */
function gpr(name: string): [number, number] | undefined {
  let k = (GPR_NAMES as readonly string[]).indexOf(name);
  if (k >= 0) return [k, 8];
  if ((k = R32.indexOf(name)) >= 0) return [k, 4];
  if ((k = R16.indexOf(name)) >= 0) return [k, 2];
  if ((k = R8.indexOf(name)) >= 0) return [k, 1];
  if ((k = R8H.indexOf(name)) >= 0) return [16 + k, 1];
  const m = /^r(\d+)(d|w|b)?$/.exec(name);
  if (m && Number(m[1]) >= 8 && Number(m[1]) <= 15) return [Number(m[1]), m[2] === 'd' ? 4 : m[2] === 'w' ? 2 : m[2] === 'b' ? 1 : 8];
  return undefined;
}

export function getRegister(cpu: Cpu, name: string): number | bigint {
  const n = name.toLowerCase();
  const g = gpr(n);
  if (g) {
    const v = cpu.getReg(g[0], g[1]);
    return g[1] === 8 ? (BigInt(cpu.tHi >>> 0) << 32n) | BigInt(v >>> 0) : g[1] === 4 ? v >>> 0 : v;
  }
  const s = (SEG_NAMES as readonly string[]).indexOf(n);
  if (s >= 0) return cpu.segSel[s]!;
  switch (n) {
    case 'rip': return numberToU64(cpu.rip);
    case 'eip': return cpu.rip >>> 0;
    case 'ip': return cpu.rip & 0xffff;
    case 'rflags': return BigInt(cpu.getFlags() >>> 0);
    case 'eflags': return cpu.getFlags() >>> 0;
    case 'cr0': return cpu.cr0 >>> 0;
    case 'cr2': return numberToU64(cpu.cr2);
    case 'cr3': return BigInt(cpu.cr3);
    case 'cr4': return cpu.cr4 >>> 0;
    case 'cr8': return cpu.cr8;
    case 'efer': return cpu.efer >>> 0;
    case 'fs_base': return numberToU64(cpu.segBase[4]!);
    case 'gs_base': return numberToU64(cpu.segBase[5]!);
    case 'cpl': return cpu.cpl;
    default: throw new RangeError(`cpu: unknown register '${name}'`);
  }
}

export function setRegister(cpu: Cpu, name: string, value: number | bigint): void {
  const n = name.toLowerCase();
  const big = typeof value === 'bigint' ? BigInt.asUintN(64, value) : BigInt.asUintN(64, BigInt(Math.trunc(value)));
  const lo = Number(BigInt.asIntN(32, big)), hi = Number(BigInt.asIntN(32, big >> 32n));
  const g = gpr(n);
  if (g) { cpu.setReg(g[0], g[1], lo, hi); return; }
  const s = (SEG_NAMES as readonly string[]).indexOf(n);
  if (s >= 0) throw new RangeError(`cpu: set segment '${name}' through importState (hidden parts are needed)`);
  switch (n) {
    case 'rip': case 'eip': case 'ip': cpu.rip = cpu.mode === 64 ? Number(BigInt.asIntN(64, big)) : lo >>> 0; return;
    case 'rflags': case 'eflags': cpu.setFlags(lo); return;
    case 'cr0': writeCr0(cpu, lo); return;
    case 'cr2': cpu.cr2 = Number(BigInt.asIntN(64, big)); return;
    case 'cr3': writeCr3(cpu, Number(big & 0xfffffffffffffn)); return;
    case 'cr4': writeCr4(cpu, lo); return;
    case 'cr8': cpu.cr8 = lo & 15; return;
    case 'efer': cpu.efer = lo; cpu.updateMode(); cpu.flushTlb(true); return;
    case 'fs_base': cpu.segBase[4] = Number(BigInt.asIntN(64, big)); return;
    case 'gs_base': cpu.segBase[5] = Number(BigInt.asIntN(64, big)); return;
    default: throw new RangeError(`cpu: unknown register '${name}'`);
  }
}
