/**
 * Fuzzes virtio-blk (raw and qcow2) and virtio-rng with random and malformed descriptor chains.
 * CI: 10,000 chains per device, fixed seed. Longer runs: NODEVMM_FUZZ_CHAINS=1000000 (and NODEVMM_FUZZ_SEED).
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BlockBackend } from '../../lib/block/backend.js';
import { openBlockBackend } from '../../lib/block/open.js';
import { createQcow2 } from '../../lib/block/qcow2/create.js';
import { VirtioBlk } from '../../lib/virtio/blk/device.js';
import { VirtioRng } from '../../lib/virtio/rng/device.js';
import { fuzzDevice, type FuzzStats, type RequestMaker } from './fuzz-harness.js';
import { pattern } from './blk-helpers.js';

const CHAINS = Number(process.env['NODEVMM_FUZZ_CHAINS'] ?? 10_000);
const SEED = Number(process.env['NODEVMM_FUZZ_SEED'] ?? 0x5eed1234);
const TIMEOUT = Math.max(120_000, CHAINS * 20);

let dir: string;
const backends: BlockBackend[] = [];
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nodevmm-fuzz-'));
});
afterAll(async () => {
  for (const b of backends) await b.close();
  await rm(dir, { recursive: true, force: true });
});

const DISK_SECTORS = 2048; // 1 MiB

const blkRequest: RequestMaker = (rng, dataAddr, mem) => {
  const type = rng.pick([0, 0, 0, 1, 1, 1, 4, 8, 11, 13, rng.u32()]);
  const hdr = dataAddr();
  mem.writeU32(hdr, type);
  mem.writeU32(hdr + 4, rng.chance(0.9) ? 0 : rng.u32());
  const sector = rng.chance(0.9) ? rng.int(DISK_SECTORS) : rng.pick([DISK_SECTORS - 1, DISK_SECTORS, 2 ** 32, 2 ** 52]);
  mem.writeU64(hdr + 8, BigInt(sector));
  const bufs = [{ addr: hdr, len: 16, write: false }];
  const pieces = rng.int(4);
  const write = type === 0 || type === 8;
  if (type === 11 || type === 13) {
    const seg = dataAddr();
    mem.writeU64(seg, BigInt(rng.int(DISK_SECTORS + 8)));
    mem.writeU32(seg + 8, rng.chance(0.9) ? rng.int(256) : rng.u32());
    mem.writeU32(seg + 12, rng.chance(0.8) ? 0 : rng.int(4));
    bufs.push({ addr: seg, len: 16 * (1 + (rng.chance(0.1) ? rng.int(40) : 0)), write: false });
  } else {
    for (let i = 0; i < pieces; i++) bufs.push({ addr: dataAddr(), len: rng.chance(0.9) ? 512 * (1 + rng.int(8)) : 1 + rng.int(2000), write });
  }
  bufs.push({ addr: dataAddr(), len: 1, write: true });
  return bufs;
};

const rngRequest: RequestMaker = (rng, dataAddr) => {
  const bufs = [];
  if (rng.chance(0.1)) bufs.push({ addr: dataAddr(), len: 1 + rng.int(64), write: false });
  for (let i = 1 + rng.int(3); i > 0; i--) bufs.push({ addr: dataAddr(), len: 1 + rng.int(8192), write: true });
  return bufs;
};

function report(name: string, s: FuzzStats, seed: number): void {
  console.log(
    `fuzz ${name}: ${s.chains} chains in ${s.rounds} rounds (seed 0x${seed.toString(16)}): ${s.completed} completed, ` +
      `${s.needsReset} NEEDS_RESET, ${s.logLines} log lines, views ${s.viewsGranted} granted / ${s.viewsRefused} refused, ` +
      `escapes ${s.escapes.length}, hangs ${s.hangs}, out-of-RAM ${s.violations.length}, canaries damaged ${s.damagedCanaries}`,
  );
}

function expectClean(s: FuzzStats): void {
  expect(s.escapes.slice(0, 3)).toEqual([]);
  expect(s.hangs).toBe(0);
  expect(s.violations.slice(0, 3)).toEqual([]);
  expect(s.damagedCanaries).toBe(0);
  expect(s.chains).toBeGreaterThanOrEqual(CHAINS);
  // The fuzzer must exercise both outcomes, or it is not testing much.
  expect(s.completed).toBeGreaterThan(s.chains / 10);
  expect(s.needsReset).toBeGreaterThan(10);
}

describe('virtio fuzzing with malformed descriptor chains', () => {
  it(`virtio-blk on a raw file survives ${CHAINS} chains`, { timeout: TIMEOUT }, async () => {
    const path = join(dir, 'fuzz.raw');
    await writeFile(path, pattern(DISK_SECTORS * 512, 1));
    const backend = await openBlockBackend(path, { format: 'raw' });
    backends.push(backend);
    const s = await fuzzDevice(() => new VirtioBlk(backend, { serial: 'fuzz', queueSize: 64 }), blkRequest, {
      seed: SEED,
      chains: CHAINS,
      maxQueueSize: 64,
    });
    report('blk-raw', s, SEED);
    expectClean(s);
  });

  it(`virtio-blk on a qcow2 overlay survives ${CHAINS} chains`, { timeout: TIMEOUT }, async () => {
    const base = join(dir, 'fuzz-base.raw');
    await writeFile(base, pattern(DISK_SECTORS * 512, 2));
    const overlay = join(dir, 'fuzz.qcow2');
    await createQcow2(overlay, { backingFile: base, backingFormat: 'raw', clusterBits: 12 });
    const backend = await openBlockBackend(overlay, { format: 'qcow2' });
    backends.push(backend);
    const s = await fuzzDevice(() => new VirtioBlk(backend, { queueSize: 64 }), blkRequest, {
      seed: SEED + 1,
      chains: CHAINS,
      maxQueueSize: 64,
    });
    report('blk-qcow2', s, SEED + 1);
    expectClean(s);
    // Whatever the guest did, the image's metadata must still be consistent.
    await backend.flush();
    const check = spawnSync('qemu-img', ['check', overlay], { encoding: 'utf8' });
    if (check.error) console.warn(`qemu-img not available (${check.error.message}): skipping the post-fuzz image check`);
    else expect(check.status, check.stdout + check.stderr).toBe(0);
  });

  it(`virtio-rng survives ${CHAINS} chains`, { timeout: TIMEOUT }, async () => {
    const s = await fuzzDevice(() => new VirtioRng({ queueSize: 64 }), rngRequest, {
      seed: SEED + 2,
      chains: CHAINS,
      maxQueueSize: 64,
    });
    report('rng', s, SEED + 2);
    expectClean(s);
  });
});
