// Builds test/cpu/simd/oracle/oracle.c with the host C compiler and runs batches of single instructions on the
// host CPU, giving ground truth for the differential tests. Unavailable (with a reason) when there is no C
// compiler, the host is not x86-64, or it lacks SSE4.1.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface OracleResult {
  r: number[];
  status: number;
  aux: bigint;
  fault: boolean;
}

export interface Oracle {
  run(lines: string[]): OracleResult[];
}

function why(): string | null {
  if (process.arch !== 'x64') return `host is ${process.arch}, not x64`;
  let cpuinfo = '';
  try {
    cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    return '/proc/cpuinfo unreadable';
  }
  if (!/\bsse4_1\b/.test(cpuinfo)) return 'host CPU lacks SSE4.1';
  const cc = spawnSync('cc', ['--version']);
  if (cc.status !== 0) return 'no C compiler (cc) on PATH';
  return null;
}

export const oracleUnavailable = why();

let cached: Oracle | null = null;

export function getOracle(): Oracle {
  if (oracleUnavailable) throw new Error(oracleUnavailable);
  if (cached) return cached;
  const here = dirname(fileURLToPath(import.meta.url));
  const dir = mkdtempSync(join(tmpdir(), 'simd-oracle-'));
  const bin = join(dir, 'oracle');
  execFileSync('cc', ['-O1', '-msse4.1', '-o', bin, join(here, 'oracle', 'oracle.c')]);
  cached = {
    run(lines: string[]): OracleResult[] {
      const out = execFileSync(bin, { input: lines.join('\n') + '\n', maxBuffer: 64 << 20 }).toString().trim();
      const rows = out.length ? out.split('\n') : [];
      if (rows.length !== lines.length) throw new Error(`oracle returned ${rows.length} rows for ${lines.length}`);
      return rows.map((row, i) => {
        if (row.startsWith('unknown')) throw new Error(`oracle does not know op in: ${lines[i]}`);
        const f = row.split(' ');
        return {
          r: f.slice(0, 4).map((x) => parseInt(x, 16) >>> 0),
          status: parseInt(f[4]!, 16) >>> 0,
          aux: BigInt('0x' + f[5]!),
          fault: f[6] === '1',
        };
      });
    },
  };
  return cached;
}

export const hex = (v: number): string => (v >>> 0).toString(16);

/** Deterministic PRNG (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0);
  };
}
