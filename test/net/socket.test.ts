import { spawn, spawnSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { connect, createServer, type AddressInfo } from 'node:net';
import { SocketBackend } from '../../lib/net/socket.js';
import { createNetBackend } from '../../lib/net/create.js';
import type { NetBackend } from '../../lib/net/backend.js';

const open: NetBackend[] = [];
afterEach(async () => {
  for (const b of open.splice(0)) await b.close();
});

function frame(n: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (i * 13 + seed) & 255);
}

function collect(b: NetBackend): Uint8Array[] {
  const got: Uint8Array[] = [];
  b.onFrame((f) => got.push(f));
  return got;
}

async function until(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('socket backend', () => {
  it('two backends over loopback exchange frames both ways, in order, with QEMU framing', async () => {
    const logs: string[] = [];
    const a = await SocketBackend.listen('127.0.0.1', 0, { log: (m) => logs.push(m) });
    open.push(a);
    const b = (await createNetBackend(`socket,connect=127.0.0.1:${a.port}`, { log: (m) => logs.push(m) })) as SocketBackend;
    open.push(b);
    const atA = collect(a);
    const atB = collect(b);
    await until(() => a.connected, 'the listener to accept');
    const sizes = [14, 60, 1514, 9000, 65549];
    sizes.forEach((n, i) => a.send(frame(n, i)));
    sizes.forEach((n, i) => b.send(frame(n, 100 + i)));
    await until(() => atA.length === sizes.length && atB.length === sizes.length, 'all frames');
    // Buffer.equals: vitest's deep equality is slow on 64 KiB arrays.
    expect(atB.map((f, i) => Buffer.from(f).equals(frame(sizes[i]!, i)))).toEqual(sizes.map(() => true));
    expect(atA.map((f, i) => Buffer.from(f).equals(frame(sizes[i]!, 100 + i)))).toEqual(sizes.map(() => true));
    expect(a.stats.framesSent).toBe(5);
    expect(b.stats.framesReceived).toBe(5);
  });

  it('is compatible with a raw peer using 4-byte big-endian lengths; a bogus length drops the peer', async () => {
    const logs: string[] = [];
    const a = await SocketBackend.listen('127.0.0.1', 0, { log: (m) => logs.push(m) });
    open.push(a);
    const got = collect(a);
    const raw = connect(a.port, '127.0.0.1');
    await new Promise<void>((r) => raw.on('connect', r));
    const f = frame(100, 7);
    const msg = Buffer.alloc(4 + f.length);
    msg.writeUInt32BE(f.length, 0);
    msg.set(f, 4);
    // Split the message across writes, including inside the length prefix.
    raw.write(msg.subarray(0, 2));
    await new Promise((r) => setTimeout(r, 10));
    raw.write(msg.subarray(2, 50));
    await new Promise((r) => setTimeout(r, 10));
    raw.write(msg.subarray(50));
    await until(() => got.length === 1, 'the frame');
    expect(got[0]).toEqual(f);
    const rawGot: Buffer[] = [];
    raw.on('data', (d) => rawGot.push(d));
    a.send(frame(20, 1));
    await until(() => Buffer.concat(rawGot).length === 24, 'the frame at the raw peer');
    expect(Buffer.concat(rawGot).readUInt32BE(0)).toBe(20);
    const closed = new Promise<void>((r) => raw.on('close', () => r()));
    raw.write(Buffer.from([0xff, 0xff, 0xff, 0xff]));
    await closed;
    expect(logs.join('\n')).toMatch(/frame length of 4294967295 bytes/);
    await until(() => !a.connected, 'the listener to drop the peer');
  });

  it('drops frames while no peer is connected; the connecting side reconnects when the listener comes back', async () => {
    const logs: string[] = [];
    const a = await SocketBackend.listen('127.0.0.1', 0, { log: (m) => logs.push(m) });
    const port = a.port;
    const b = await SocketBackend.connect('127.0.0.1', port, { log: (m) => logs.push(m), reconnectDelayMs: 50 });
    open.push(b);
    await until(() => a.connected, 'accept');
    await a.close();
    await until(() => !b.connected, 'the disconnect to be seen');
    b.send(frame(60, 1));
    expect(b.stats.droppedNoPeer).toBe(1);
    const a2 = await SocketBackend.listen('127.0.0.1', port, { log: (m) => logs.push(m) });
    open.push(a2);
    const got = collect(a2);
    await until(() => b.connected && a2.connected, 'the reconnection');
    b.send(frame(60, 2));
    await until(() => got.length === 1, 'a frame after reconnecting');
    expect(got[0]).toEqual(frame(60, 2));
    expect(logs.join('\n')).toMatch(/reconnecting[\s\S]*reconnected/);
  });

  it('a second peer is refused while one is connected', async () => {
    const logs: string[] = [];
    const a = await SocketBackend.listen('127.0.0.1', 0, { log: (m) => logs.push(m) });
    open.push(a);
    const b = await SocketBackend.connect('127.0.0.1', a.port, { log: () => {} });
    open.push(b);
    await until(() => a.connected, 'accept');
    const extra = connect(a.port, '127.0.0.1');
    await new Promise<void>((r) => extra.on('close', () => r()));
    expect(logs.join('\n')).toMatch(/refusing a second peer/);
  });

  it('connect errors name the spec and hint at the listener', async () => {
    const s = createServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const port = (s.address() as AddressInfo).port;
    await new Promise<void>((r) => s.close(() => r()));
    await expect(createNetBackend(`socket,connect=127.0.0.1:${port}`)).rejects.toThrow(
      new RegExp(`socket,connect=127.0.0.1:${port}: cannot connect \\(ECONNREFUSED\\); is the listening side running\\?`),
    );
  });
});

const qemu = spawnSync('qemu-system-x86_64', ['--version'], { encoding: 'utf8' });
const qemuReason = qemu.error ? `qemu-system-x86_64 not available (${qemu.error.message})` : null;
if (qemuReason) console.warn(`skipping the QEMU socket interop test: ${qemuReason}`);

describe.skipIf(qemuReason !== null)('socket backend interoperates with QEMU -netdev socket', () => {
  it('frames cross a QEMU hub joining two of our listening backends, both ways', { timeout: 30_000 }, async () => {
    const a = await SocketBackend.listen('127.0.0.1', 0, { log: () => {} });
    const b = await SocketBackend.listen('127.0.0.1', 0, { log: () => {} });
    open.push(a, b);
    const atA = collect(a);
    const atB = collect(b);
    // A machine without CPUs: QEMU only runs its network hub between the two socket netdevs.
    const q = spawn('qemu-system-x86_64', [
      '-machine', 'none', '-nodefaults', '-display', 'none',
      '-netdev', `socket,id=a,connect=127.0.0.1:${a.port}`, '-netdev', `socket,id=b,connect=127.0.0.1:${b.port}`,
      '-netdev', 'hubport,id=h0,hubid=0,netdev=a', '-netdev', 'hubport,id=h1,hubid=0,netdev=b',
    ], { stdio: 'ignore' });
    const exited = new Promise<void>((r) => q.on('exit', () => r()));
    try {
      await until(() => a.connected && b.connected, 'QEMU to connect to both');
      const fa = frame(1514, 3);
      fa.fill(0xff, 0, 6);
      const fb = frame(60, 4);
      fb.fill(0xff, 0, 6);
      a.send(fa);
      b.send(fb);
      await until(() => atB.length >= 1 && atA.length >= 1, 'frames through QEMU');
      expect(atB[0]).toEqual(fa);
      expect(atA[0]).toEqual(fb);
    } finally {
      q.kill();
      await exited;
    }
  });
});
