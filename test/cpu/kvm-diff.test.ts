/**
 * The interpreter vs the real CPU: random user-mode instruction sequences drawn from the interpreter's own encoding
 * table run natively in a KVM vCPU at CPL3 and in the interpreter from the same state; final GPRs, RIP, RFLAGS
 * (minus undefined bits), x87/MMX, XMM, MXCSR, the data pages and exception vector / error code / CR2 must agree.
 * Long runs: bench/cpu-diff.ts.
 */
import { describe, expect, it } from 'vitest';
import { probeKvm } from '../../lib/kvm/index.js';
import { compareOutcomes, describeCase, generateCase, InterpreterRun, KvmReference, opcodeKey, POOL } from '../../lib/cpu/diff/index.js';

const probe = probeKvm();
if (!probe.usable) console.warn(`[kvm-diff skipped] KVM unusable: ${probe.reason}`);

const CASES = 6000;
const SEED = 20261121;

describe.skipIf(!probe.usable)(probe.usable ? 'interpreter vs KVM vCPU at CPL3' : `interpreter vs KVM vCPU (skipped: ${probe.reason})`, () => {
  it(`${CASES} random instruction sequences agree (fixed seed ${SEED})`, () => {
    const ref = new KvmReference(), interp = new InterpreterRun();
    const opcodes = new Set<string>();
    const failures: string[] = [];
    let mismatching = 0;
    try {
      for (let k = 0; k < CASES; k++) {
        const c = generateCase(SEED + k);
        for (const i of c.insns) opcodes.add(opcodeKey(i.enc));
        const d = compareOutcomes(c, ref.run(c), interp.run(c));
        if (d.length) { mismatching++; if (failures.length < 10) failures.push(describeCase(c, d)); }
      }
    } finally { ref.close(); }
    console.log(`kvm-diff: ${CASES} cases, ${opcodes.size} distinct opcodes (pool of ${POOL.length} encodings), ${mismatching} mismatching`);
    expect(failures.join('\n\n')).toBe('');
  }, 600_000);
});
