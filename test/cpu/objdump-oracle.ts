/**
 * Runs `objdump -d -M intel` over an ELF file and compares every instruction's length and mnemonic with the
 * table-driven decoder. Used by decoder-oracle.test.ts (and runnable by hand with tsx for a mismatch listing).
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { decode, Insn } from '../../lib/cpu/decoder/decode.js';

const PREFIX_WORDS = new Set(['lock', 'rep', 'repz', 'repnz', 'repe', 'repne', 'data16', 'data32', 'addr32', 'addr16', 'cs', 'ds', 'es',
  'ss', 'fs', 'gs', 'notrack', 'bnd', 'xacquire', 'xrelease', 'rex', 'rex.W', 'rex.B', 'rex.X', 'rex.R', 'rex.WB', 'rex.WR', 'rex.WX', 'rex.RB', 'rex.XB', 'rex.WRB', 'rex.WXB', 'rex.RX', 'rex.RXB', 'rex.WRX', 'rex.WRXB']);

/** binutils spellings that name the same instruction class as the decoder's mnemonic. */
const ALIASES: Record<string, string> = {
  movabs: 'mov', cwde: 'cbw', cdqe: 'cbw', cdq: 'cwd', cqo: 'cwd', iretd: 'iret', iretq: 'iret', iretw: 'iret',
  pushfq: 'pushf', pushfd: 'pushf', pushfw: 'pushf', popfq: 'popf', popfd: 'popf', popfw: 'popf', pushad: 'pusha', pushaw: 'pusha',
  popad: 'popa', popaw: 'popa', retq: 'ret', retw: 'ret', retd: 'ret', lret: 'retf', lretq: 'retf', sysretq: 'sysret', sysretd: 'sysret',
  sysexitq: 'sysexit', movsb: 'movs', movsw: 'movs', movsq: 'movs', stosb: 'stos', stosw: 'stos', stosd: 'stos', stosq: 'stos',
  lodsb: 'lods', lodsw: 'lods', lodsd: 'lods', lodsq: 'lods', scasb: 'scas', scasw: 'scas', scasd: 'scas', scasq: 'scas',
  cmpsb: 'cmps', cmpsw: 'cmps', cmpsq: 'cmps', insb: 'ins', insw: 'ins', insd: 'ins', outsb: 'outs', outsw: 'outs', outsd: 'outs',
  movq: 'movd', jecxz: 'jrcxz', jcxz: 'jrcxz', icebp: 'int1', int1: 'int1', xlatb: 'xlat', sal: 'shl', ljmp: 'jmp', lcall: 'call',
  fstsw: 'fnstsw', fstcw: 'fnstcw', fstenv: 'fnstenv', fsave: 'fnsave', fclex: 'fnclex', finit: 'fninit', prefetch: 'prefetchw',
  xchg: 'xchg', setnae: 'setb', cmovnae: 'cmovb', fsubrp: 'fsubrp', fsubp: 'fsubp', fdivrp: 'fdivrp', fdivp: 'fdivp',
  jmpq: 'jmp', callq: 'call', lidtd: 'lidt', lgdtd: 'lgdt', sgdtd: 'sgdt', sidtd: 'sidt', lidtw: 'lidt', lgdtw: 'lgdt', sgdtw: 'sgdt', sidtw: 'sidt', retfq: 'retf', retfd: 'retf', retfw: 'retf', xrstor64: 'xrstor', xrstors64: 'xrstors', fxsave64: 'fxsave',
  fxrstor64: 'fxrstor', xsave64: 'xsave', xsaves64: 'xsaves', xsaveopt64: 'xsaveopt', xsavec64: 'xsavec',
  // The interpreter's CPUID has no WAITPKG, and a CPU without it runs 66 0F AE /6 (reg) as MFENCE (measured on the
  // KVM host); Linux executes TPAUSE only when CPUID reports WAITPKG.
  tpause: 'mfence',
};

function norm(m: string): string {
  return ALIASES[m] ?? m;
}

export interface OracleResult {
  total: number;
  vex: number;
  lengthMismatches: string[];
  mnemonicMismatches: string[];
  /** mnemonic -> count, of what the binary uses. */
  histogram: Map<string, number>;
}

interface Line { addr: number; bytes: number[]; mnem: string; text: string }

function parseLine(line: string): Line | null {
  const parts = line.split('\t');
  if (parts.length < 3) return null;
  const addrText = parts[0]!.trim();
  if (!addrText.endsWith(':')) return null;
  const bytes = parts[1]!.trim().split(/\s+/).filter(Boolean).map((h) => parseInt(h, 16));
  const words = parts[2]!.trim().split(/\s+/);
  let k = 0;
  while (k < words.length - 1 && PREFIX_WORDS.has(words[k]!)) k++;
  let mnem = words[k] ?? '';
  if (PREFIX_WORDS.has(mnem)) mnem = '(prefix)';
  return { addr: parseInt(addrText, 16), bytes, mnem, text: parts[2]!.trim() };
}

/** Decode a whole section stream given as objdump lines and compare. */
function compareSection(lines: Line[], mode: number, res: OracleResult): void {
  const total = lines.reduce((n, l) => n + l.bytes.length, 0);
  const stream = new Uint8Array(total + 16);
  const offsets: number[] = [];
  let o = 0;
  for (const l of lines) { offsets.push(o); stream.set(l.bytes, o); o += l.bytes.length; }
  const insn = new Insn();
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    if (l.mnem === '(bad)' || l.mnem === '(prefix)' || l.mnem === '') continue; // objdump itself could not decode
    const base = offsets[i]!;
    decode((k) => stream[base + k]!, mode, insn);
    res.total++;
    res.histogram.set(l.mnem, (res.histogram.get(l.mnem) ?? 0) + 1);
    const hex = l.bytes.map((b) => b.toString(16).padStart(2, '0')).join(' ');
    // objdump shows FWAIT + a no-wait x87 control instruction as one (finit, fstsw, ...); the CPU decodes two.
    if (l.bytes[0] === 0x9b && insn.len === 1 && l.bytes.length > 1 && /^f(init|clex|stsw|stcw|stenv|save)$/.test(l.mnem)) {
      decode((k) => stream[base + 1 + k]!, mode, insn);
      if (insn.len === l.bytes.length - 1 && norm(insn.mnemonic) === norm(l.mnem)) continue;
    }
    if (insn.len !== l.bytes.length) {
      res.lengthMismatches.push(`${l.addr.toString(16)}: ${hex} | objdump '${l.text}' len ${l.bytes.length}, decoder '${insn.mnemonic}' len ${insn.len}`);
      continue;
    }
    if (insn.vex) { res.vex++; continue; }
    const want = norm(l.mnem);
    const got = norm(insn.mnemonic);
    const nopXchg = got === 'nop' && want === 'xchg';
    if (want !== got && !nopXchg) res.mnemonicMismatches.push(`${l.addr.toString(16)}: ${hex} | objdump '${l.text}', decoder '${insn.mnemonic}'`);
  }
}

export async function runOracle(file: string, mode: number): Promise<OracleResult> {
  const res: OracleResult = { total: 0, vex: 0, lengthMismatches: [], mnemonicMismatches: [], histogram: new Map() };
  const proc = spawn('objdump', ['-d', '-M', 'intel', '--insn-width=16', '-w', file], { stdio: ['ignore', 'pipe', 'inherit'] });
  const rl = createInterface({ input: proc.stdout });
  let section: Line[] = [];
  let lastEnd = -1;
  for await (const raw of rl) {
    if (raw.startsWith('Disassembly of section')) { compareSection(section, mode, res); section = []; lastEnd = -1; continue; }
    const l = parseLine(raw);
    if (!l) continue;
    if (lastEnd >= 0 && l.addr !== lastEnd) { compareSection(section, mode, res); section = []; }
    section.push(l);
    lastEnd = l.addr + l.bytes.length;
  }
  compareSection(section, mode, res);
  const code = await new Promise<number>((r) => proc.on('close', (c) => r(c ?? -1)));
  if (code !== 0) throw new Error(`objdump -d ${file} exited with ${code}`);
  return res;
}

if (process.argv[1] && process.argv[1].endsWith('objdump-oracle.ts')) {
  const file = process.argv[2] ?? '/bin/busybox';
  const mode = Number(process.argv[3] ?? 64);
  const r = await runOracle(file, mode);
  console.log(`decoded ${r.total}, vex/evex ${r.vex}, length mismatches ${r.lengthMismatches.length}, mnemonic mismatches ${r.mnemonicMismatches.length}`);
  const show = Number(process.env.SHOW ?? 40);
  for (const m of r.lengthMismatches.slice(0, show)) console.log('LEN', m);
  const seen = new Map<string, number>();
  for (const m of r.mnemonicMismatches) { const k = m.split('|')[1]!.replace(/'[^']*'(,)/, (x) => x); const key = k.replace(/^ objdump '(\S+).*decoder '(\S+)'$/, '$1 -> $2'); seen.set(key, (seen.get(key) ?? 0) + 1); }
  for (const [k, n] of [...seen].sort((a, b) => b[1] - a[1]).slice(0, show)) console.log('MN', n, k);
}
