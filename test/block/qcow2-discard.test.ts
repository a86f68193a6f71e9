/**
 * qcow2 discard frees host space: whole clusters become zero clusters (as before) and the host clusters under
 * them are punched out of the image file, checked against st_blocks. The clusters stay mapped, so a later
 * write reuses them; write-zeroes without unmap keeps the space; qemu-img check stays clean and qemu-img
 * convert reads the same bytes as our reader.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nativeFallocate } from '../../lib/block/fallocate.js';
import { createQcow2 } from '../../lib/block/qcow2/create.js';
import { Qcow2Backend } from '../../lib/block/qcow2/image.js';
import { pattern } from '../virtio/blk-helpers.js';

const MiB = 1 << 20;
const SLACK = 256 * 1024;
const fallocate = nativeFallocate();
const skip = fallocate === null ? 'the native addon has no fallocate (not built, or built before native/fallocate.cc)' : undefined;
if (skip) console.warn(`[qcow2-discard] skipped: ${skip}`);
const haveQemuImg = spawnSync('qemu-img', ['--version']).status === 0;
if (!haveQemuImg) console.warn('[qcow2-discard] qemu-img not found (apt-get install qemu-utils): its check/convert steps are skipped');

function allocated(path: string): number {
  return statSync(path).blocks * 512;
}

function qemuCheckClean(path: string): boolean {
  const r = spawnSync('qemu-img', ['check', '--output=json', path], { encoding: 'utf8' });
  const info = JSON.parse(r.stdout || '{}') as Record<string, unknown>;
  if (r.status !== 0 || info['corruptions'] || info['leaks'] || info['check-errors']) {
    console.log(r.stdout + r.stderr);
    return false;
  }
  return true;
}

describe.skipIf(skip !== undefined)('qcow2 discard punches the host clusters it zeroes', () => {
  let dir: string;
  let seq = 0;
  const data = pattern(8 * MiB, 11);

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'nodevmm-qcow2-discard-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** A 64 MiB qcow2 (64 KiB clusters) with 8 MiB of data at guest offset 4 MiB. */
  async function image(logs: string[] = []): Promise<{ path: string; img: Qcow2Backend }> {
    const path = join(dir, `img-${seq++}.qcow2`);
    await createQcow2(path, { size: 64 * MiB });
    const img = await Qcow2Backend.open(path, { fallocate, log: (l) => logs.push(l) });
    await img.write(4 * MiB, [data]);
    await img.flush();
    return { path, img };
  }

  async function readBack(img: Qcow2Backend, offset: number, length: number): Promise<Buffer> {
    const b = new Uint8Array(length);
    await img.read(offset, [b]);
    return Buffer.from(b);
  }

  it('discard of 4 MiB frees ~4 MiB of the file; reads zeros; rewriting the range works', async () => {
    const { path, img } = await image();
    const before = allocated(path);
    await img.discard(6 * MiB, 4 * MiB);
    await img.flush();
    const afterDiscard = allocated(path);
    console.log(`[qcow2-discard] discard 4 MiB: file allocated ${(before / MiB).toFixed(2)} -> ${(afterDiscard / MiB).toFixed(2)} MiB`);
    expect(before - afterDiscard).toBeGreaterThanOrEqual(4 * MiB - SLACK);
    expect((await readBack(img, 6 * MiB, 4 * MiB)).every((b) => b === 0)).toBe(true);
    expect((await readBack(img, 4 * MiB, 2 * MiB)).equals(Buffer.from(data.subarray(0, 2 * MiB)))).toBe(true);

    // The discarded clusters are reused in place: the data comes back and the file does not grow past before.
    const again = pattern(4 * MiB, 12);
    await img.write(6 * MiB, [again]);
    await img.flush();
    expect((await readBack(img, 6 * MiB, 4 * MiB)).equals(Buffer.from(again))).toBe(true);
    expect(allocated(path)).toBeLessThan(before + SLACK);
    expect(statSync(path).size).toBeLessThanOrEqual(before + SLACK);
    await img.close();
    if (haveQemuImg) {
      expect(qemuCheckClean(path)).toBe(true);
      const out = join(dir, `convert-${seq++}.raw`);
      execFileSync('qemu-img', ['convert', '-O', 'raw', path, out]);
      const raw = await readFile(out);
      expect(raw.subarray(6 * MiB, 10 * MiB).equals(Buffer.from(again))).toBe(true);
      expect(raw.subarray(10 * MiB, 12 * MiB).equals(Buffer.from(data.subarray(6 * MiB)))).toBe(true);
    }
  });

  it('write-zeroes keeps the host space unless unmap is allowed; discarding zero clusters later frees it', async () => {
    const { path, img } = await image();
    const before = allocated(path);
    await img.writeZeroes(4 * MiB, 2 * MiB);
    expect(Math.abs(allocated(path) - before)).toBeLessThan(SLACK);
    await img.writeZeroes(6 * MiB, 2 * MiB, { unmap: true });
    expect(before - allocated(path)).toBeGreaterThanOrEqual(2 * MiB - SLACK);
    // The first range is now preallocated zero clusters still holding old bytes: discard frees them too.
    await img.discard(4 * MiB, 2 * MiB);
    expect(before - allocated(path)).toBeGreaterThanOrEqual(4 * MiB - SLACK);
    expect((await readBack(img, 4 * MiB, 4 * MiB)).every((b) => b === 0)).toBe(true);
    expect((await readBack(img, 8 * MiB, 4 * MiB)).equals(Buffer.from(data.subarray(4 * MiB)))).toBe(true);
    await img.close();
    if (haveQemuImg) expect(qemuCheckClean(path)).toBe(true);
  });

  it('partial clusters keep their data on discard; without fallocate nothing is punched', async () => {
    const { path, img } = await image();
    const before = allocated(path);
    await img.discard(4 * MiB + 512, 64 * 1024 - 1024); // inside one cluster
    expect((await readBack(img, 4 * MiB, 64 * 1024)).equals(Buffer.from(data.subarray(0, 64 * 1024)))).toBe(true);
    await img.close();

    const plain = await Qcow2Backend.open(path, { fallocate: null });
    await plain.discard(6 * MiB, 2 * MiB);
    expect((await readBack(plain, 6 * MiB, 2 * MiB)).every((b) => b === 0)).toBe(true);
    await plain.close();
    expect(Math.abs(allocated(path) - before)).toBeLessThan(SLACK);
  });
});
