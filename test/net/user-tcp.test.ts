import { createHash } from 'node:crypto';
import { connect, createServer, type AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { F, TestTcp, ip, listen } from './guest-stack.js';
import { GW, arpGateway, body, cleanups, httpGet, httpServer, rig, sha } from './user-rig.js';

describe('user-mode network: TCP NAT to the host loopback via 10.0.2.2', () => {
  it('HTTP GET of a 1 MiB response arrives complete and in order', async () => {
    const big = body(1 << 20);
    const port = await httpServer((_req, res) => res.end(big));
    const { g } = await rig();
    await arpGateway(g);
    const { text, body: got, c } = await httpGet(g, port, '/big', {}, 40001);
    expect(text).toMatch(/^HTTP\/1\.1 200 OK/);
    expect(got.length).toBe(big.length);
    expect(sha(got)).toBe(sha(big));
    expect(c.maxSegment).toBeLessThanOrEqual(1460);
    expect(c.dupSegments).toBe(0);
  });

  it('a guest announcing MSS 0 gets small segments instead of a stalled (or spinning) connection', async () => {
    const data = body(20_000);
    const port = await httpServer((_req, res) => res.end(data));
    const { g } = await rig();
    await arpGateway(g);
    const { body: got, c } = await httpGet(g, port, '/mss0', { mss: 0 }, 40010);
    expect(sha(got)).toBe(sha(data));
    expect(c.maxSegment).toBe(64);
  });

  it('a slow reader with a 16 KiB buffer closes its window; the transfer pauses and completes', async () => {
    const big = body(1 << 20);
    const port = await httpServer((_req, res) => res.end(big));
    const { g } = await rig();
    await arpGateway(g);
    const { body: got, c } = await httpGet(g, port, '/slow', { rcvBuf: 16384, readIntervalMs: 2, readChunk: 4096 }, 40002);
    expect(sha(got)).toBe(sha(big));
    expect(c.windowClosed).toBeGreaterThan(10);
    // The network never sent beyond the advertised window (zero-window probes aside).
    expect(c.beyondWindow).toBe(0);
  });

  it('segments lost on the way to the guest are retransmitted until the data is complete', async () => {
    const big = body(256 * 1024);
    const port = await httpServer((_req, res) => res.end(big));
    const { g } = await rig({ tcp: { initialRtoMs: 50 } });
    await arpGateway(g);
    const { body: got, c } = await httpGet(g, port, '/lossy', { dropEvery: 13 }, 40003);
    expect(c.dropped).toBeGreaterThan(5);
    expect(sha(got)).toBe(sha(big));
  });

  it('window scaling: with the guest offering a shift, more than 64 KiB is in flight towards it', async () => {
    const big = body(1 << 20);
    const port = await httpServer((_req, res) => res.end(big));
    const { g } = await rig();
    await arpGateway(g);
    const synAcks: number[] = [];
    cleanups.push(g.addHandler((p) => {
      if (p.proto === 6 && (p.l4[13]! & 0x12) === 0x12) synAcks.push(p.l4.length);
      return false;
    }));
    // ACKs leave 5 ms late, so the sender's in-flight data shows how far the window let it go.
    const { body: got, c } = await httpGet(g, port, '/ws', { wscale: 4, rcvBuf: 512 * 1024, ackDelayMs: 5 }, 40012);
    expect(sha(got)).toBe(sha(big));
    expect(c.peerShift).toBe(5); // our SYN-ACK confirmed scaling with shift 5
    expect(c.maxPeerInFlight).toBeGreaterThan(65535); // not limited to an unscaled window
    expect(c.maxPeerInFlight).toBeLessThanOrEqual(128 * 1024); // but bounded by maxInFlight
    expect(c.maxPeerWin).toBeGreaterThan(65535); // and our own advertised window is scaled too
  });

  it('late ACKs (after our retransmission timeout fired and rewound) still count; the transfer and close complete', async () => {
    const big = body(300 * 1024);
    const port = await httpServer((_req, res) => res.end(big));
    const { g, net } = await rig({ tcp: { initialRtoMs: 10, maxRtoMs: 20, maxRetries: 50 } });
    await arpGateway(g);
    const { body: got, c } = await httpGet(g, port, '/late', { ackDelayMs: 40 }, 40011);
    expect(sha(got)).toBe(sha(big));
    expect(c.dupSegments).toBeGreaterThan(0); // the rewinds really happened
    await new Promise((r) => setTimeout(r, 100));
    expect(net.tcp.connectionCount).toBe(0);
  });

  it('guest → host upload of 512 KiB (host side reads slowly) arrives intact', async () => {
    const upload = body(512 * 1024);
    let receivedHash = '';
    let received = 0;
    const server = createServer((s) => {
      const h = createHash('sha256');
      s.pause();
      // Read in bursts so the host socket's buffer fills and our advertised window has to shrink.
      const t = setInterval(() => s.resume(), 20);
      s.on('data', (d) => { h.update(d); received += d.length; s.pause(); });
      s.on('end', () => { clearInterval(t); receivedHash = h.digest('hex'); s.end('done'); });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
    const { g } = await rig();
    await arpGateway(g);
    const c = new TestTcp(g, 40004, GW, (server.address() as AddressInfo).port);
    cleanups.push(() => c.dispose());
    await c.connect();
    c.write(upload);
    c.close();
    await c.until(() => c.finReceived && c.finAcked, 'the server to answer and close', 60_000);
    expect(received).toBe(upload.length);
    expect(receivedHash).toBe(sha(upload));
    expect(Buffer.from(c.data).toString()).toBe('done');
  });

  it('a connection to a closed host port is reset', async () => {
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const { g } = await rig();
    await arpGateway(g);
    const c = new TestTcp(g, 40005, GW, port);
    cleanups.push(() => c.dispose());
    await expect(c.connect()).rejects.toThrow(/refused/);
  });

  it('a segment for no connection gets a reset; destinations inside the virtual subnet are refused', async () => {
    const { g } = await rig();
    await arpGateway(g);
    g.sendTcp(GW, { sp: 40006, dp: 80, seq: 5, ack: 77, flags: F.ACK, win: 1000, data: new Uint8Array(0) });
    const r = await g.waitFor((p) => p.proto === 6, 2000, 'RST');
    expect(r.l4[13]! & F.RST).toBe(F.RST);
    const c = new TestTcp(g, 40007, ip('10.0.2.50'), 80);
    cleanups.push(() => c.dispose());
    await expect(c.connect()).rejects.toThrow(/refused/);
  });
});

describe('user-mode network: TCP failure paths', () => {
  it('guest → host segments lost on the way are recovered by the guest retransmitting', async () => {
    const upload = body(200 * 1024);
    let got = Buffer.alloc(0);
    const server = createServer((s) => {
      const parts: Buffer[] = [];
      s.on('data', (d) => parts.push(d));
      s.on('end', () => { got = Buffer.concat(parts); s.end(); });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
    const { g } = await rig();
    await arpGateway(g);
    const c = new TestTcp(g, 40100, GW, (server.address() as AddressInfo).port, { dropTxEvery: 9 });
    cleanups.push(() => c.dispose());
    await c.connect();
    c.write(upload);
    c.close();
    await c.until(() => c.finReceived && c.finAcked, 'the upload to complete', 60_000);
    expect(c.txDropped).toBeGreaterThan(5);
    expect(sha(got)).toBe(sha(upload));
  });

  it('a host reset mid-transfer resets the guest connection', async () => {
    const server = createServer((s) => {
      s.write(body(10_000));
      setTimeout(() => s.resetAndDestroy(), 50);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
    const { g, net } = await rig();
    await arpGateway(g);
    const c = new TestTcp(g, 40101, GW, (server.address() as AddressInfo).port);
    cleanups.push(() => c.dispose());
    await c.connect();
    await c.until(() => c.resetReceived, 'the RST');
    expect(c.receivedBytes).toBe(10_000);
    expect(net.tcp.connectionCount).toBe(0);
  });

  it('a guest reset closes the host socket', async () => {
    let hostClosed: () => void = () => {};
    const closed = new Promise<void>((r) => (hostClosed = r));
    const server = createServer((s) => {
      s.on('error', () => {});
      s.on('close', () => hostClosed());
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
    const { g, net } = await rig();
    await arpGateway(g);
    const c = new TestTcp(g, 40102, GW, (server.address() as AddressInfo).port);
    cleanups.push(() => c.dispose());
    await c.connect();
    g.sendTcp(GW, { sp: 40102, dp: c.remotePort, seq: c.sndNxt, ack: c.rcvNxt, flags: F.RST | F.ACK, win: 0, data: new Uint8Array(0) });
    await closed;
    expect(net.tcp.connectionCount).toBe(0);
  });

  it('a guest that stops acknowledging is reset after the retransmission limit, and the host socket closed', async () => {
    let hostClosed: () => void = () => {};
    const closed = new Promise<void>((r) => (hostClosed = r));
    const server = createServer((s) => {
      s.on('error', () => {});
      s.on('close', () => hostClosed());
      s.write(body(5000));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
    const { g, net, logs } = await rig({ tcp: { initialRtoMs: 20, maxRtoMs: 40, maxRetries: 3 } });
    await arpGateway(g);
    const c = new TestTcp(g, 40103, GW, (server.address() as AddressInfo).port, { dropEvery: 1 });
    cleanups.push(() => c.dispose());
    await c.connect();
    await closed;
    await c.until(() => c.resetReceived, 'the RST');
    expect(net.tcp.connectionCount).toBe(0);
    expect(logs.join('\n')).toMatch(/retransmission limit/);
  });

  it('hostfwd: the SYN into the guest is retransmitted until a listener answers', async () => {
    const { g, net } = await rig({
      hostForwards: [{ protocol: 'tcp', hostAddress: '127.0.0.1', hostPort: 0, guestAddress: undefined, guestPort: 7000 }],
      tcp: { initialRtoMs: 50 },
    });
    await arpGateway(g);
    const host = connect(net.forwardedPorts()[0]!.hostPort, '127.0.0.1');
    const answer = new Promise<string>((r) => host.on('data', (d) => r(d.toString())));
    await new Promise((r) => setTimeout(r, 120)); // the first SYN finds no listener (the stack ignores it)
    let conn: TestTcp | undefined;
    cleanups.push(listen(g, 7000, (c) => { conn = c; cleanups.push(() => c.dispose()); }));
    await new Promise<void>((r, j) => { const t = setInterval(() => { if (conn?.state === 'established') { clearInterval(t); r(); } }, 5); setTimeout(() => j(new Error('no connection')), 5000); });
    conn!.write(new TextEncoder().encode('hello from the guest'));
    expect(await answer).toBe('hello from the guest');
    host.destroy();
  });
});
