/**
 * Long-run differential test: the interpreter vs a KVM vCPU running the same instruction sequences natively at CPL3.
 *   npx tsx bench/cpu-diff.ts --cases 1000000 --seed 1 [--show 20] [--coverage]
 * Prints cases/s, distinct opcodes, per-mnemonic mismatch counts and the first mismatches in full.
 */
import { probeKvm } from '../lib/kvm/index.js';
import { compareOutcomes, describeCase, EXCLUDED, generateCase, InterpreterRun, KvmReference, opcodeKey, POOL } from '../lib/cpu/diff/index.js';
import { encodings } from '../lib/cpu/decoder/table.js';

const args = process.argv.slice(2);
const arg = (name: string, def: number): number => { const i = args.indexOf(name); return i >= 0 ? Number(args[i + 1]) : def; };
const cases = arg('--cases', 100000), seed = arg('--seed', 1), show = arg('--show', 10);
const probe = probeKvm();
if (!probe.usable) { console.log(`cpu-diff: KVM unusable (${probe.reason}); nothing to compare against`); process.exit(0); }

const ref = new KvmReference(), interp = new InterpreterRun();
const opcodes = new Set<string>(), mnemonics = new Set<string>();
const badByMnemonic = new Map<string, number>();
let bad = 0, shown = 0;
const t0 = performance.now();
let tKvm = 0, tInterp = 0;
for (let k = 0; k < cases; k++) {
  const c = generateCase(seed * 1_000_003 + k);
  for (const i of c.insns) { opcodes.add(opcodeKey(i.enc)); mnemonics.add(i.enc.mnemonic); }
  const a0 = performance.now();
  const r = ref.run(c);
  const a1 = performance.now();
  const g = interp.run(c);
  tInterp += performance.now() - a1; tKvm += a1 - a0;
  const d = compareOutcomes(c, r, g);
  if (d.length) {
    bad++;
    const key = c.insns.map((i) => i.enc.mnemonic).join('+');
    for (const i of c.insns) badByMnemonic.set(i.enc.mnemonic, (badByMnemonic.get(i.enc.mnemonic) ?? 0) + 1);
    if (shown++ < show) console.log(describeCase(c, d) + '\n');
    void key;
  }
  if ((k + 1) % 50000 === 0) console.log(`  ${k + 1} cases, ${bad} mismatches, ${((k + 1) / ((performance.now() - t0) / 1000)).toFixed(0)} cases/s`);
}
const secs = (performance.now() - t0) / 1000;
console.log(`cases ${cases}, mismatching cases ${bad}, distinct opcodes ${opcodes.size}, mnemonics ${mnemonics.size}`);
console.log(`${(cases / secs).toFixed(0)} cases/s (${secs.toFixed(1)} s: KVM ${(tKvm / 1000).toFixed(1)} s, interpreter ${(tInterp / 1000).toFixed(1)} s)`);
if (badByMnemonic.size) console.log('mismatch count by mnemonic (cases containing it):', [...badByMnemonic].sort((a, b) => b[1] - a[1]).slice(0, 40).map(([m, n]) => `${m}:${n}`).join(' '));
if (args.includes('--coverage')) {
  const all = [...new Set(encodings.map((e) => e.mnemonic))].sort();
  const pool = new Set(POOL.map((e) => e.mnemonic));
  const notGen = all.filter((m) => !mnemonics.has(m));
  console.log(`mnemonics in the decoder table ${all.length}, in the generator pool ${pool.size}, covered ${mnemonics.size}`);
  for (const m of notGen) console.log(`  not covered: ${m}${pool.has(m) ? ' (in pool, not drawn)' : ''}${EXCLUDED[m] ? ` — ${EXCLUDED[m]}` : ''}`);
}
ref.close();
