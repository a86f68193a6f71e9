/** Differential testing of the interpreter against a KVM vCPU running the same code natively at CPL3. */
export { generateCase, POOL, EXCLUDED, Rng, type DiffCase, type GenInsn } from './generate.js';
export { KvmReference, InterpreterRun, type Outcome } from './run.js';
export { compareOutcomes } from './compare.js';
export { opcodeKey, disassemble, describeCase } from './report.js';
