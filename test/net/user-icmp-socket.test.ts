/**
 * The addon's IcmpSocket on its own, against this host's kernel (raw socket: needs CAP_NET_RAW; the ping-socket
 * kind is exercised in user-icmp-netns.test.ts): argument checks, an echo round trip with the IP header stripped,
 * batching, close semantics, no socket left behind by close() or by a worker that ends with the socket started.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { loadNative, type NativeIcmpReply, type NativeIcmpSocket } from '../../lib/kvm/native.js';
import { icmpEcho, ip } from './guest-stack.js';
import { ownIcmpSockets } from './user-rig.js';

const run = promisify(execFile);
const REPO = fileURLToPath(new URL('../..', import.meta.url));
const hostAddress = Object.values(networkInterfaces())
  .flat()
  .find((a) => a !== undefined && a.family === 'IPv4' && !a.internal)?.address;

function skipReason(): string | null {
  try {
    const ctor = loadNative().IcmpSocket;
    if (typeof ctor !== 'function') return 'the native addon has no IcmpSocket (rebuild it: npm run build:native)';
    new ctor('raw').close();
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
  return hostAddress ? null : 'this host has no non-loopback IPv4 address to ping';
}
const reason = skipReason();
if (reason) console.warn(`skipping IcmpSocket tests: ${reason}`);
const TARGET = hostAddress ? ip(hostAddress) : 0;

async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe.skipIf(reason !== null)('native IcmpSocket', () => {
  const open: NativeIcmpSocket[] = [];
  const socket = (kind: 'raw' | 'auto' = 'raw'): NativeIcmpSocket => {
    const s = new (loadNative().IcmpSocket!)(kind);
    open.push(s);
    return s;
  };
  afterAll(() => {
    for (const s of open) s.close();
  });

  it('rejects a bad kind, a short message and a bad address, naming them', () => {
    const Ctor = loadNative().IcmpSocket!;
    expect(() => new Ctor('icmp' as 'raw')).toThrow(/kind must be 'auto', 'dgram' or 'raw', not 'icmp'/);
    expect(() => new Ctor(5 as unknown as 'raw')).toThrow(TypeError);
    const s = socket();
    expect(() => s.send(TARGET, new Uint8Array(7))).toThrow(/icmpMessage is shorter than an ICMP header/);
    expect(() => s.send(-1, icmpEcho(8, 1, 1, new Uint8Array(0)))).toThrow(/dstIPv4/);
    expect(() => s.send(2 ** 32, icmpEcho(8, 1, 1, new Uint8Array(0)))).toThrow(/dstIPv4/);
    expect(() => s.start(undefined as unknown as () => void)).toThrow(/onReplies must be a function/);
  });

  it('an echo round trip: the reply comes from the target with our id, sequence and data, IP header stripped', async () => {
    const s = socket();
    expect(s.kind).toBe('raw');
    expect(s.fd).toBeGreaterThan(2);
    const got: NativeIcmpReply[] = [];
    s.start((replies, error) => {
      expect(error).toBe(0);
      got.push(...replies);
    });
    const data = Uint8Array.from({ length: 40 }, (_, i) => i ^ 0x5a);
    expect(s.send(TARGET, icmpEcho(8, 0x7e57, 42, data))).toBe(48);
    await until(() => got.some((r) => r.message.readUInt16BE(4) === 0x7e57), 'the echo reply');
    const r = got.find((x) => x.message.readUInt16BE(4) === 0x7e57)!;
    expect(r.source).toBe(TARGET);
    expect(r.ttl).toBeGreaterThan(0);
    expect(r.message.length).toBe(48);
    expect([r.message[0], r.message[1], r.message.readUInt16BE(6)]).toEqual([0, 0, 42]);
    expect(new Uint8Array(r.message.subarray(8))).toEqual(data);
  });

  it('delivers a burst in batches of at most 64 replies', async () => {
    const s = socket();
    const batches: number[] = [];
    let ours = 0;
    s.start((replies) => {
      batches.push(replies.length);
      ours += replies.filter((r) => r.message.readUInt16BE(4) === 0x0b0b).length;
    });
    // All 150 sends happen within this loop turn, so their replies queue up before the first read.
    for (let seq = 0; seq < 150; seq++) expect(s.send(TARGET, icmpEcho(8, 0x0b0b, seq, new Uint8Array(8)))).toBe(16);
    await until(() => ours >= 150, 'all 150 replies');
    expect(Math.max(...batches)).toBe(64);
    expect(batches.length).toBeGreaterThanOrEqual(3);
  });

  it('start twice throws; close() from inside the callback stops delivery; after close send is -EBADF and fd -1', async () => {
    const s = socket();
    let calls = 0;
    s.start(() => {
      calls++;
      s.close();
    });
    expect(() => s.start(() => {})).toThrow(/already started/);
    for (let seq = 0; seq < 3; seq++) s.send(TARGET, icmpEcho(8, 0x0c0c, seq, new Uint8Array(8)));
    await until(() => calls > 0, 'the first callback');
    await new Promise((r) => setTimeout(r, 50));
    expect(calls).toBe(1);
    expect(s.fd).toBe(-1);
    expect(s.send(TARGET, icmpEcho(8, 1, 1, new Uint8Array(0)))).toBe(-9);
    expect(() => s.start(() => {})).toThrow(/closed/);
    s.close();
  });

  it('close() leaves no ICMP socket open in the process', () => {
    const before = ownIcmpSockets();
    const s = socket();
    s.start(() => {});
    expect(ownIcmpSockets()).toBe(before + 1);
    s.close();
    expect(ownIcmpSockets()).toBe(before);
  });

  it('a worker that ends with a started socket (terminated, or returning) closes it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nodevmm-icmp-'));
    try {
      const addonPath = (createRequire(import.meta.url)('node-gyp-build') as { path(dir: string): string }).path(REPO);
      writeFileSync(join(dir, 'worker.cjs'), `
        const { parentPort, workerData } = require('node:worker_threads');
        const { IcmpSocket } = require(workerData.addonPath);
        const s = new IcmpSocket('raw');
        s.start(() => {});
        const alive = setInterval(() => {}, 1000);
        parentPort.postMessage(s.fd);
        // 'return': nothing keeps the loop alive any more (the watcher is unref'd), so the worker ends started.
        if (workerData.how === 'return') clearInterval(alive);
      `);
      writeFileSync(join(dir, 'main.mjs'), `
        import { Worker } from 'node:worker_threads';
        import { readlinkSync } from 'node:fs';
        const [workerFile, addonPath] = process.argv.slice(2);
        for (const how of ['terminate', 'return']) {
          const w = new Worker(workerFile, { workerData: { addonPath, how } });
          const exited = new Promise((r) => w.once('exit', r));
          const fd = await new Promise((r) => w.once('message', r));
          if (how === 'terminate') await w.terminate();
          await exited;
          let open = true;
          try { readlinkSync('/proc/self/fd/' + fd); } catch { open = false; }
          console.log(how + ' fd-open=' + open);
        }
      `);
      const r = await run(process.execPath, [join(dir, 'main.mjs'), join(dir, 'worker.cjs'), addonPath], { timeout: 30_000 });
      expect(r.stdout.trim().split('\n')).toEqual(['terminate fd-open=false', 'return fd-open=false']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
