import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile, open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BlockBackend } from '../../lib/block/backend.js';
import { openBlockBackend } from '../../lib/block/open.js';
import { createQcow2 } from '../../lib/block/qcow2/create.js';
import { T_DISCARD, T_FLUSH, T_IN, T_OUT, T_WRITE_ZEROES, blkRequest, blkRig, pattern, segment } from '../virtio/blk-helpers.js';

const qemuImg = spawnSync('qemu-img', ['--version'], { encoding: 'utf8' });
const haveQemuImg = qemuImg.status === 0;
if (!haveQemuImg) console.warn('qemu-img not found (apt-get install qemu-utils): skipping qemu-img interop checks');

let dir: string;
const opened: BlockBackend[] = [];
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nodevmm-qcow2-'));
});
afterAll(async () => {
  for (const b of opened) await b.close();
  await rm(dir, { recursive: true, force: true });
});

async function openImg(path: string, readOnly = false): Promise<BlockBackend> {
  const b = await openBlockBackend(path, { readOnly });
  opened.push(b);
  return b;
}

function sha(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

function qemuCheck(path: string): { clean: boolean; output: string } {
  const r = spawnSync('qemu-img', ['check', '--output=json', path], { encoding: 'utf8' });
  const info = JSON.parse(r.stdout || '{}') as Record<string, unknown>;
  const clean = r.status === 0 && !info['corruptions'] && !info['leaks'] && !info['check-errors'];
  return { clean, output: r.stdout + r.stderr };
}

async function qemuConvertToRaw(path: string): Promise<Buffer> {
  const out = join(dir, `convert-${Math.random().toString(36).slice(2)}.raw`);
  execFileSync('qemu-img', ['convert', '-O', 'raw', path, out]);
  return readFile(out);
}

const MiB = 1 << 20;

describe('qcow2 overlay on a raw base', () => {
  it('reads through to the base, copies on write, and never touches the base', async () => {
    const base = pattern(4 * MiB, 42);
    const basePath = join(dir, 'base.raw');
    await writeFile(basePath, base);
    const baseHash = sha(await readFile(basePath));
    const overlay = join(dir, 'overlay.qcow2');
    await createQcow2(overlay, { backingFile: 'base.raw', backingFormat: 'raw' });
    if (haveQemuImg) expect(qemuCheck(overlay).clean).toBe(true);

    const backend = await openImg(overlay);
    expect(backend.size).toBe(4 * MiB);
    const rig = blkRig(backend);
    const expected = Buffer.from(base);

    // Unwritten areas come from the base.
    const r0 = await blkRequest(rig, T_IN, 100, { inLength: 8192 });
    expect(r0.status).toBe(0);
    expect(Buffer.from(r0.data).equals(expected.subarray(100 * 512, 100 * 512 + 8192))).toBe(true);

    // Partial-cluster write in the middle of cluster 1 (64 KiB clusters): the rest of the cluster is COW'd.
    const w1 = pattern(1024, 1);
    expect((await blkRequest(rig, T_OUT, 130, { out: w1 })).status).toBe(0);
    expected.set(w1, 130 * 512);
    // A write spanning a cluster boundary, in several descriptors.
    const w2 = pattern(96 * 1024, 2);
    expect((await blkRequest(rig, T_OUT, 300, { out: w2, split: true })).status).toBe(0);
    expected.set(w2, 300 * 512);
    // Whole-cluster write.
    const w3 = pattern(65536, 3);
    expect((await blkRequest(rig, T_OUT, 2048, { out: w3 })).status).toBe(0);
    expected.set(w3, 2048 * 512);
    // Overwrite inside an already allocated cluster.
    const w4 = pattern(512, 4);
    expect((await blkRequest(rig, T_OUT, 131, { out: w4 })).status).toBe(0);
    expected.set(w4, 131 * 512);
    expect((await blkRequest(rig, T_FLUSH, 0)).status).toBe(0);

    const all = await blkRequest(rig, T_IN, 0, { inLength: 4 * MiB });
    expect(all.status).toBe(0);
    expect(sha(all.data)).toBe(sha(expected));
    expect(sha(await readFile(basePath))).toBe(baseHash);

    if (haveQemuImg) {
      const check = qemuCheck(overlay);
      expect(check.clean, check.output).toBe(true);
      expect(sha(await qemuConvertToRaw(overlay))).toBe(sha(expected));
    }
  });

  it('write-zeroes and discard read back as zeros (whole and partial clusters)', async () => {
    const base = pattern(2 * MiB, 7);
    const basePath = join(dir, 'zbase.raw');
    await writeFile(basePath, base);
    const overlay = join(dir, 'zoverlay.qcow2');
    await createQcow2(overlay, { backingFile: basePath });
    const rig = blkRig(await openImg(overlay));
    const expected = Buffer.from(base);
    // Whole clusters 2..3 plus part of cluster 4 (sectors 256..639 + 640..699).
    expect((await blkRequest(rig, T_WRITE_ZEROES, 0, { out: segment(256, 444) })).status).toBe(0);
    expected.fill(0, 256 * 512, 700 * 512);
    // Discard of a whole allocated cluster: becomes zeros.
    expect((await blkRequest(rig, T_OUT, 1024, { out: pattern(65536, 9) })).status).toBe(0);
    expect((await blkRequest(rig, T_DISCARD, 0, { out: segment(1024, 128) })).status).toBe(0);
    expected.fill(0, 1024 * 512, 1152 * 512);
    const all = await blkRequest(rig, T_IN, 0, { inLength: 2 * MiB });
    expect(sha(all.data)).toBe(sha(expected));
    expect((await readFile(basePath)).equals(Buffer.from(base))).toBe(true);
    if (haveQemuImg) {
      const check = qemuCheck(overlay);
      expect(check.clean, check.output).toBe(true);
      expect(sha(await qemuConvertToRaw(overlay))).toBe(sha(expected));
    }
  });

  it('random writes and reads match a reference model; qemu-img agrees', async () => {
    const size = 8 * MiB;
    const base = pattern(6 * MiB, 77); // shorter than the overlay: the tail reads as zeros
    const basePath = join(dir, 'mbase.raw');
    await writeFile(basePath, base);
    const overlay = join(dir, 'moverlay.qcow2');
    await createQcow2(overlay, { backingFile: 'mbase.raw', size, clusterBits: 12 });
    const img = await openImg(overlay);
    const model = Buffer.alloc(size);
    model.set(base);
    let seed = 12345;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return seed % n;
    };
    for (let i = 0; i < 300; i++) {
      const sector = rand(size / 512 - 64);
      const len = (1 + rand(63)) * 512;
      const op = rand(10);
      if (op < 6) {
        const data = pattern(len, i + 1);
        await img.write(sector * 512, [data.subarray(0, 100), data.subarray(100)]);
        model.set(data, sector * 512);
      } else if (op < 8) {
        await img.writeZeroes(sector * 512, len);
        model.fill(0, sector * 512, sector * 512 + len);
      } else {
        const out = new Uint8Array(len);
        await img.read(sector * 512, [out]);
        expect(Buffer.from(out).equals(model.subarray(sector * 512, sector * 512 + len))).toBe(true);
      }
    }
    const all = new Uint8Array(size);
    await img.read(0, [all]);
    expect(sha(all)).toBe(sha(model));
    await img.flush();
    if (haveQemuImg) {
      const check = qemuCheck(overlay);
      expect(check.clean, check.output).toBe(true);
      expect(sha(await qemuConvertToRaw(overlay))).toBe(sha(model));
    }
  });

  it('concurrent reads and writes to distinct ranges all land', async () => {
    const base = pattern(4 * MiB, 31);
    await writeFile(join(dir, 'cbase.raw'), base);
    const path = join(dir, 'concurrent.qcow2');
    await createQcow2(path, { backingFile: 'cbase.raw', clusterBits: 12 });
    const img = await openImg(path);
    const expected = Buffer.from(base);
    const ops: Promise<void>[] = [];
    const reads: Array<[number, Uint8Array]> = [];
    for (let i = 0; i < 64; i++) {
      const off = i * 32768 + (i % 7) * 512; // partial clusters, distinct ranges, all below 2 MiB
      const data = pattern(3000 + i * 10, i + 100);
      ops.push(img.write(off, [data]));
      expected.set(data, off);
      const r = new Uint8Array(8192);
      const roff = 2 * MiB + i * 16384; // read-only area: must equal the base whatever the interleaving
      reads.push([roff, r]);
      ops.push(img.read(roff, [r]));
    }
    await Promise.all(ops);
    for (const [roff, r] of reads) expect(Buffer.from(r).equals(Buffer.from(base.subarray(roff, roff + 8192)))).toBe(true);
    const all = new Uint8Array(4 * MiB);
    await img.read(0, [all]);
    expect(sha(all)).toBe(sha(expected));
    await img.flush();
    if (haveQemuImg) {
      const check = qemuCheck(path);
      expect(check.clean, check.output).toBe(true);
    }
  });

  it('grows the refcount table when the image outgrows it (512-byte clusters)', async () => {
    const size = 10 * MiB; // one 512-byte refcount-table cluster maps 8 MiB
    const path = join(dir, 'grow.qcow2');
    await createQcow2(path, { size, clusterBits: 9 });
    const img = await openImg(path);
    const data = pattern(size, 5);
    for (let off = 0; off < size; off += MiB) await img.write(off, [data.subarray(off, off + MiB)]);
    const back = new Uint8Array(size);
    await img.read(0, [back]);
    expect(sha(back)).toBe(sha(data));
    await img.flush();
    const hdr = new DataView((await readFile(path)).buffer);
    expect(hdr.getUint32(56)).toBeGreaterThan(1); // refcount_table_clusters grew
    expect(Number(hdr.getBigUint64(48))).toBeGreaterThan(512); // and the table moved
    if (haveQemuImg) {
      const check = qemuCheck(path);
      expect(check.clean, check.output).toBe(true);
      expect(sha(await qemuConvertToRaw(path))).toBe(sha(data));
    }
  });

  it('chains qcow2 on qcow2 on raw', async () => {
    const base = pattern(MiB, 8);
    await writeFile(join(dir, 'c0.raw'), base);
    await createQcow2(join(dir, 'c1.qcow2'), { backingFile: 'c0.raw' });
    const mid = await openImg(join(dir, 'c1.qcow2'));
    await mid.write(0, [new Uint8Array(4096).fill(1)]);
    await mid.close();
    await createQcow2(join(dir, 'c2.qcow2'), { backingFile: 'c1.qcow2', backingFormat: 'qcow2' });
    const top = await openImg(join(dir, 'c2.qcow2'));
    await top.write(65536 + 512, [new Uint8Array(512).fill(2)]);
    const expected = Buffer.from(base);
    expected.fill(1, 0, 4096);
    expected.fill(2, 65536 + 512, 65536 + 1024);
    const all = new Uint8Array(MiB);
    await top.read(0, [all]);
    expect(sha(all)).toBe(sha(expected));
    if (haveQemuImg) expect(sha(await qemuConvertToRaw(join(dir, 'c2.qcow2')))).toBe(sha(expected));
  });
});

describe.skipIf(!haveQemuImg)('qcow2 images made by qemu-img', () => {
  it('reads and writes an overlay created by qemu-img create -b base.raw -F raw', async () => {
    const base = pattern(3 * MiB, 99);
    const basePath = join(dir, 'qbase.raw');
    await writeFile(basePath, base);
    const overlay = join(dir, 'qoverlay.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', basePath, '-F', 'raw', overlay]);
    const rig = blkRig(await openImg(overlay));
    const expected = Buffer.from(base);
    const r = await blkRequest(rig, T_IN, 17, { inLength: 70000 - (70000 % 512) });
    expect(Buffer.from(r.data).equals(expected.subarray(17 * 512, 17 * 512 + r.data.length))).toBe(true);
    for (let i = 0; i < 20; i++) {
      const data = pattern(512 * (i + 1), i);
      const sector = (i * 997) % (3 * 2048 - 40);
      expect((await blkRequest(rig, T_OUT, sector, { out: data })).status).toBe(0);
      expected.set(data, sector * 512);
    }
    expect((await blkRequest(rig, T_FLUSH, 0)).status).toBe(0);
    const all = await blkRequest(rig, T_IN, 0, { inLength: 3 * MiB });
    expect(sha(all.data)).toBe(sha(expected));
    expect((await readFile(basePath)).equals(Buffer.from(base))).toBe(true);
    const check = qemuCheck(overlay);
    expect(check.clean, check.output).toBe(true);
    expect(sha(await qemuConvertToRaw(overlay))).toBe(sha(expected));
  });

  it('reads and writes a version 2 (compat=0.10) overlay', async () => {
    const base = pattern(MiB, 55);
    const basePath = join(dir, 'v2base.raw');
    await writeFile(basePath, base);
    const overlay = join(dir, 'v2.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-o', 'compat=0.10', '-b', basePath, '-F', 'raw', overlay]);
    const img = await openImg(overlay);
    const expected = Buffer.from(base);
    await img.write(1000 * 512, [pattern(3000, 1).subarray(0, 2560)]);
    expected.set(pattern(3000, 1).subarray(0, 2560), 1000 * 512);
    await img.writeZeroes(65536, 65536); // no zero flag in v2: real zeros are written
    expected.fill(0, 65536, 131072);
    const all = new Uint8Array(MiB);
    await img.read(0, [all]);
    expect(sha(all)).toBe(sha(expected));
    await img.flush();
    const check = qemuCheck(overlay);
    expect(check.clean, check.output).toBe(true);
    expect(sha(await qemuConvertToRaw(overlay))).toBe(sha(expected));
  });

  it('reads a standalone image written by qemu-img convert (with zero areas)', async () => {
    const data = pattern(2 * MiB, 3);
    data.fill(0, MiB, MiB + 200000);
    await writeFile(join(dir, 'src.raw'), data);
    const q = join(dir, 'conv.qcow2');
    execFileSync('qemu-img', ['convert', '-O', 'qcow2', join(dir, 'src.raw'), q]);
    const img = await openImg(q, true);
    const all = new Uint8Array(2 * MiB);
    await img.read(0, [all]);
    expect(sha(all)).toBe(sha(data));
  });

  it('refuses compressed clusters with a clear error', async () => {
    await writeFile(join(dir, 'csrc.raw'), Buffer.alloc(MiB, 'compressible text '));
    const q = join(dir, 'compressed.qcow2');
    execFileSync('qemu-img', ['convert', '-c', '-O', 'qcow2', join(dir, 'csrc.raw'), q]);
    const img = await openImg(q, true);
    await expect(img.read(0, [new Uint8Array(512)])).rejects.toThrow(/compressed/);
  });
});

describe('qcow2 header checks', () => {
  async function patched(name: string, patch: (dv: DataView) => void): Promise<string> {
    const p = join(dir, name);
    await createQcow2(p, { size: MiB });
    const fh = await open(p, 'r+');
    const hdr = new Uint8Array(112);
    await fh.read(hdr, 0, 112, 0);
    patch(new DataView(hdr.buffer));
    await fh.write(hdr, 0, 112, 0);
    await fh.close();
    return p;
  }

  it('rejects encryption, unknown incompatible features, and writable opens of dirty/corrupt images', async () => {
    await expect(openBlockBackend(await patched('enc.qcow2', (dv) => dv.setUint32(32, 1)))).rejects.toThrow(/encrypted/);
    await expect(openBlockBackend(await patched('unk.qcow2', (dv) => dv.setBigUint64(72, 1n << 40n)))).rejects.toThrow(/unknown/);
    const dirty = await patched('dirty.qcow2', (dv) => dv.setBigUint64(72, 1n));
    await expect(openBlockBackend(dirty)).rejects.toThrow(/dirty/);
    const ro = await openImg(dirty, true);
    expect(ro.readOnly).toBe(true);
    const corrupt = await patched('corrupt.qcow2', (dv) => dv.setBigUint64(72, 2n));
    await expect(openBlockBackend(corrupt)).rejects.toThrow(/corrupt/);
    await expect(openBlockBackend(await patched('cb.qcow2', (dv) => dv.setUint32(20, 30)))).rejects.toThrow(/cluster_bits/);
    await expect(openBlockBackend(await patched('ver.qcow2', (dv) => dv.setUint32(4, 4)))).rejects.toThrow(/version 4/);
    await expect(createQcow2(join(dir, 'nosize.qcow2'))).rejects.toThrow(/size is required/);
  });
});
