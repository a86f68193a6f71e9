import { createHash } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { connect, createServer, type AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { UserNetwork, type UserNetworkOptions } from '../../lib/net/user/user-network.js';
import { parseUdp } from '../../lib/net/user/udp.js';
import { dhcpMessage, dhcpOptions } from './dhcp-client.js';
import { BCAST, F, GuestStack, GUEST_MAC, TestTcp, eth, ip, ipv4, listen, parseUdpDgram, udp, type TestTcpOptions } from './guest-stack.js';

const GW = ip('10.0.2.2');
const DNS = ip('10.0.2.3');
const GUEST = ip('10.0.2.15');
const GW_MAC = [0x52, 0x55, 10, 0, 2, 2];

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function rig(options: UserNetworkOptions = {}): Promise<{ net: UserNetwork; g: GuestStack; logs: string[] }> {
  const logs: string[] = [];
  const net = await UserNetwork.create({ dnsServers: [], log: (m) => logs.push(m), ...options });
  cleanups.push(() => net.close());
  const g = new GuestStack(net);
  cleanups.push(() => expect(g.errors).toEqual([]));
  return { net, g, logs };
}

function arpRequest(targetIp: number): Uint8Array {
  const t = [targetIp >>> 24, (targetIp >>> 16) & 255, (targetIp >>> 8) & 255, targetIp & 255];
  return eth(BCAST, GUEST_MAC, 0x0806, Uint8Array.from([0, 1, 8, 0, 6, 4, 0, 1, ...GUEST_MAC, 10, 0, 2, 15, 0, 0, 0, 0, 0, 0, ...t]));
}

/** Resolve the gateway MAC like a guest would, then TCP from then on. */
async function arpGateway(g: GuestStack): Promise<void> {
  g.sendFrame(arpRequest(GW));
  const r = await g.waitFor((p) => p.type === 0x0806, 2000, 'ARP reply');
  g.gwMac = r.frame.slice(22, 28);
}

async function httpServer(handler: Parameters<typeof createHttpServer>[1]): Promise<number> {
  const server: HttpServer = createHttpServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }));
  return (server.address() as AddressInfo).port;
}

function body(size: number): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = (i * 31 + (i >>> 11)) & 255;
  return b;
}

const sha = (d: Uint8Array): string => createHash('sha256').update(d).digest('hex');

async function httpGet(g: GuestStack, port: number, path: string, opts: TestTcpOptions, localPort: number): Promise<{ c: TestTcp; text: string; body: Uint8Array }> {
  const c = new TestTcp(g, localPort, GW, port, opts);
  cleanups.push(() => c.dispose());
  await c.connect();
  c.write(new TextEncoder().encode(`GET ${path} HTTP/1.1\r\nHost: 10.0.2.2\r\nConnection: close\r\n\r\n`));
  await c.until(() => c.finReceived, 'the end of the response', 60_000);
  c.close();
  await c.until(() => c.finAcked, 'our FIN to be acknowledged');
  const data = c.data;
  const split = Buffer.from(data).indexOf('\r\n\r\n');
  return { c, text: Buffer.from(data.subarray(0, split)).toString(), body: data.subarray(split + 4) };
}

describe('user-mode network: link and addressing', () => {
  it('answers ARP for the gateway and the DNS address, not for others', async () => {
    const { g } = await rig();
    g.sendFrame(arpRequest(GW));
    const r = await g.waitFor((p) => p.type === 0x0806, 2000, 'ARP reply');
    expect(Array.from(r.dstMac)).toEqual(Array.from(GUEST_MAC));
    const a = r.frame.subarray(14);
    expect(Array.from(a.subarray(6, 8))).toEqual([0, 2]); // reply
    expect(Array.from(a.subarray(8, 14))).toEqual(GW_MAC);
    expect(Array.from(a.subarray(14, 18))).toEqual([10, 0, 2, 2]);
    expect(Array.from(a.subarray(18, 24))).toEqual(Array.from(GUEST_MAC));
    expect(Array.from(a.subarray(24, 28))).toEqual([10, 0, 2, 15]);
    g.sendFrame(arpRequest(DNS));
    const d = await g.waitFor((p) => p.type === 0x0806, 2000, 'ARP reply for DNS');
    expect(Array.from(d.frame.subarray(28, 32))).toEqual([10, 0, 2, 3]);
    g.sendFrame(arpRequest(ip('10.0.2.77')));
    g.sendFrame(arpRequest(ip('8.8.8.8')));
    await new Promise((r) => setTimeout(r, 50));
    expect(g.received.filter((p) => p.type === 0x0806)).toHaveLength(0);
  });

  it('DHCP: DISCOVER → OFFER, REQUEST → ACK with mask, router, DNS and lease; a wrong REQUEST gets NAK', async () => {
    const { g, net } = await rig();
    const zero = 0;
    g.sendUdp(0xffffffff, 68, 67, dhcpMessage(1, 0x1234), zero);
    const offer = await g.waitFor((p) => p.proto === 17 && parseUdpDgram(p.l4).dp === 68, 2000, 'OFFER');
    const om = parseUdpDgram(offer.l4).data;
    expect(offer.src).toBe(GW);
    expect(Array.from(om.subarray(4, 8))).toEqual([0, 0, 0x12, 0x34]);
    expect(Array.from(om.subarray(16, 20))).toEqual([10, 0, 2, 15]); // yiaddr
    const o = dhcpOptions(om);
    expect(o.get(53)).toEqual([2]);
    expect(o.get(54)).toEqual([10, 0, 2, 2]);
    expect(o.get(1)).toEqual([255, 255, 255, 0]);
    expect(o.get(3)).toEqual([10, 0, 2, 2]);
    expect(o.get(6)).toEqual([10, 0, 2, 3]);
    expect(o.get(51)).toEqual([0, 1, 0x51, 0x80]); // 86400 s

    g.sendUdp(0xffffffff, 68, 67, dhcpMessage(3, 0x1235, [50, 4, 10, 0, 2, 15, 54, 4, 10, 0, 2, 2]), zero);
    const ack = await g.waitFor((p) => p.proto === 17 && parseUdpDgram(p.l4).dp === 68, 2000, 'ACK');
    const am = parseUdpDgram(ack.l4).data;
    expect(dhcpOptions(am).get(53)).toEqual([5]);
    expect(Array.from(am.subarray(16, 20))).toEqual([10, 0, 2, 15]);
    expect(dhcpOptions(am).get(3)).toEqual([10, 0, 2, 2]);
    expect(net.dhcp.leaseOf(GUEST_MAC)).toBe(GUEST);

    g.sendUdp(0xffffffff, 68, 67, dhcpMessage(3, 0x1236, [50, 4, 10, 0, 2, 99, 54, 4, 10, 0, 2, 2]), zero);
    const nak = await g.waitFor((p) => p.proto === 17 && parseUdpDgram(p.l4).dp === 68, 2000, 'NAK');
    expect(dhcpOptions(parseUdpDgram(nak.l4).data).get(53)).toEqual([6]);
  });

  it('DHCP renewal (REQUEST from a bound client with ciaddr) is acknowledged by unicast; a second client gets the next address', async () => {
    const { g, net } = await rig();
    g.sendUdp(0xffffffff, 68, 67, dhcpMessage(3, 0x77, [50, 4, 10, 0, 2, 15]), 0);
    await g.waitFor((p) => p.proto === 17 && parseUdpDgram(p.l4).dp === 68, 2000, 'ACK');
    g.gwMac = Uint8Array.from(GW_MAC);
    g.sendUdp(GW, 68, 67, dhcpMessage(3, 0x78, [], [10, 0, 2, 15]));
    const renew = await g.waitFor((p) => p.proto === 17 && parseUdpDgram(p.l4).dp === 68, 2000, 'renewal ACK');
    expect(renew.dst).toBe(GUEST);
    expect(Array.from(renew.dstMac)).toEqual(Array.from(GUEST_MAC));
    expect(dhcpOptions(parseUdpDgram(renew.l4).data).get(53)).toEqual([5]);
    const other = dhcpMessage(1, 0x79);
    other.set([0x52, 0x54, 0, 0xaa, 0xbb, 0xcc], 28);
    g.sendUdp(0xffffffff, 68, 67, other, 0);
    const offer = await g.waitFor((p) => p.proto === 17 && parseUdpDgram(p.l4).dp === 68, 2000, 'OFFER for the second client');
    expect(Array.from(parseUdpDgram(offer.l4).data.subarray(16, 20))).toEqual([10, 0, 2, 16]);
    expect(net.dhcp.stats.acks).toBe(2);
  });

  it('ICMP echo to the gateway is answered with the same id, sequence and data', async () => {
    const { g, net } = await rig();
    await arpGateway(g);
    const payload = Uint8Array.from({ length: 56 }, (_, i) => i);
    const icmp = Uint8Array.from([8, 0, 0, 0, 0x12, 0x34, 0, 7, ...payload]);
    let s = 0;
    for (let i = 0; i < icmp.length; i += 2) s += (icmp[i]! << 8) | icmp[i + 1]!;
    while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
    icmp[2] = (~s >>> 8) & 255;
    icmp[3] = ~s & 255;
    g.sendIp(GW, 1, icmp);
    const r = await g.waitFor((p) => p.proto === 1, 2000, 'echo reply');
    expect(r.src).toBe(GW);
    expect(r.dst).toBe(GUEST);
    expect(r.l4[0]).toBe(0);
    expect(Array.from(r.l4.subarray(4, 8))).toEqual([0x12, 0x34, 0, 7]);
    expect(r.l4.subarray(8)).toEqual(payload);
    expect(net.stats.icmpEchoReplies).toBe(1);
  });

  it('a packet for an outside address with TTL 1 gets ICMP time exceeded from the gateway', async () => {
    const { g, net } = await rig();
    await arpGateway(g);
    const pkt = ipv4(GUEST, ip('192.0.2.1'), 17, udp(GUEST, ip('192.0.2.1'), 33434, 33435, new Uint8Array(12)), { ttl: 1 });
    g.sendFrame(eth(g.gwMac, GUEST_MAC, 0x0800, pkt));
    const r = await g.waitFor((p) => p.proto === 1, 2000, 'time exceeded');
    expect(r.src).toBe(GW);
    expect(r.l4[0]).toBe(11);
    expect(r.l4[1]).toBe(0);
    expect(r.l4.subarray(8, 8 + 28)).toEqual(pkt.subarray(0, 28));
    expect(net.stats.ttlExceeded).toBe(1);
    expect(net.udp.flowCount).toBe(0);
  });

  it('counts IPv4 fragments and drops bad header checksums with a counter', async () => {
    const { g, net } = await rig();
    g.sendFrame(eth(Uint8Array.from(GW_MAC), GUEST_MAC, 0x0800, ipv4(GUEST, GW, 17, new Uint8Array(16), { flagsFrag: 0x2000 })));
    const bad = ipv4(GUEST, GW, 17, new Uint8Array(16));
    bad[10]! ^= 0xff;
    g.sendFrame(eth(Uint8Array.from(GW_MAC), GUEST_MAC, 0x0800, bad));
    expect(net.stats.fragments).toBe(1);
    expect(net.stats.badIpv4).toBe(1);
  });
});

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

describe('user-mode network: hostfwd', () => {
  it('tcp: a host connection reaches a guest listener; data both ways; close both ways', async () => {
    const { g, net } = await rig({ hostForwards: [{ protocol: 'tcp', hostAddress: '127.0.0.1', hostPort: 0, guestAddress: undefined, guestPort: 8080 }] });
    await arpGateway(g);
    const [fwd] = net.forwardedPorts();
    expect(fwd).toMatchObject({ protocol: 'tcp', hostAddress: '127.0.0.1', guestAddress: '10.0.2.15', guestPort: 8080 });
    let guestConn: TestTcp | undefined;
    const stop = listen(g, 8080, (c) => {
      guestConn = c;
      cleanups.push(() => c.dispose());
    });
    cleanups.push(stop);
    const host = connect(fwd!.hostPort, '127.0.0.1');
    const fromGuest: Buffer[] = [];
    host.on('data', (d) => fromGuest.push(d));
    const hostEnded = new Promise<void>((r) => host.on('end', r));
    await new Promise<void>((r) => host.on('connect', r));
    const up = body(100_000);
    host.write(up);
    host.end();
    await new Promise<void>((r, j) => { const t = setInterval(() => { if (guestConn?.finReceived) { clearInterval(t); r(); } }, 5); setTimeout(() => j(new Error('guest never got the FIN')), 20000); });
    const c = guestConn!;
    expect(c.remoteIp).toBe(GW);
    expect(sha(c.data)).toBe(sha(up));
    const down = body(70_000).reverse();
    c.write(down);
    c.close();
    await hostEnded;
    expect(sha(Buffer.concat(fromGuest))).toBe(sha(down));
    await c.until(() => c.finAcked, 'the FIN to be acknowledged');
    await new Promise((r) => setTimeout(r, 20));
    expect(net.tcp.connectionCount).toBe(0);
  });

  it('tcp: a guest with nothing listening resets; the host connection is closed', async () => {
    const { g, net } = await rig({ hostForwards: [{ protocol: 'tcp', hostAddress: '127.0.0.1', hostPort: 0, guestAddress: undefined, guestPort: 9999 }] });
    await arpGateway(g);
    // The guest stack answers SYNs to unknown ports with RST|ACK like a kernel does.
    cleanups.push(g.addHandler((p) => {
      if (p.proto !== 6) return false;
      const seq = ((p.l4[4]! << 24) | (p.l4[5]! << 16) | (p.l4[6]! << 8) | p.l4[7]!) >>> 0;
      g.sendTcp(p.src, { sp: 9999, dp: (p.l4[0]! << 8) | p.l4[1]!, seq: 0, ack: (seq + 1) >>> 0, flags: F.RST | F.ACK, win: 0, data: new Uint8Array(0) });
      return true;
    }));
    const host = connect(net.forwardedPorts()[0]!.hostPort, '127.0.0.1');
    host.on('error', () => {});
    await new Promise<void>((r) => host.on('close', () => r()));
    expect(net.tcp.connectionCount).toBe(0);
  });

  it('udp: host datagrams reach the guest port and replies go back to the host client', async () => {
    const { g, net } = await rig({ hostForwards: [{ protocol: 'udp', hostAddress: '127.0.0.1', hostPort: 0, guestAddress: undefined, guestPort: 5353 }] });
    await arpGateway(g);
    cleanups.push(g.addHandler((p) => {
      if (p.proto !== 17) return false;
      const d = parseUdpDgram(p.l4);
      if (d.dp !== 5353) return false;
      g.sendUdp(p.src, 5353, d.sp, Uint8Array.from([...d.data].reverse()));
      return true;
    }));
    const client = createSocket('udp4');
    cleanups.push(() => new Promise<void>((r) => client.close(() => r())));
    const reply = new Promise<Buffer>((r) => client.once('message', r));
    client.send(Buffer.from('hello guest'), net.forwardedPorts()[0]!.hostPort, '127.0.0.1');
    expect((await reply).toString()).toBe('tseug olleh');
  });

  it('reports a host port that cannot be listened on, naming the forward', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise<void>((r) => blocker.close(() => r())));
    const port = (blocker.address() as AddressInfo).port;
    await expect(UserNetwork.create({ hostForwards: [{ protocol: 'tcp', hostAddress: '127.0.0.1', hostPort: port, guestAddress: undefined, guestPort: 22 }] }))
      .rejects.toThrow(new RegExp(`hostfwd=tcp:127.0.0.1:${port}-:22: .*EADDRINUSE`));
  });
});

describe('user-mode network: UDP NAT and DNS', () => {
  it('UDP to 10.0.2.2:PORT reaches a loopback echo server; the reply comes from 10.0.2.2:PORT', async () => {
    const echo = createSocket('udp4');
    echo.on('message', (m, r) => echo.send(Buffer.concat([Buffer.from('echo:'), m]), r.port, r.address));
    await new Promise<void>((r) => echo.bind(0, '127.0.0.1', r));
    cleanups.push(() => new Promise<void>((r) => echo.close(() => r())));
    const port = echo.address().port;
    const { g, net } = await rig();
    await arpGateway(g);
    for (let i = 0; i < 3; i++) g.sendUdp(GW, 33000, port, new TextEncoder().encode(`ping${i}`));
    for (let i = 0; i < 3; i++) {
      const r = await g.waitFor((p) => p.proto === 17 && parseUdpDgram(p.l4).dp === 33000, 2000, 'UDP reply');
      const d = parseUdpDgram(r.l4);
      expect(r.src).toBe(GW);
      expect(d.sp).toBe(port);
      expect(Buffer.from(d.data).toString()).toMatch(/^echo:ping\d$/);
    }
    expect(net.udp.flowCount).toBe(1);
  });

  it('a UDP reply larger than the MTU reaches the guest as IPv4 fragments that reassemble to the datagram', async () => {
    const big = body(4000);
    const server = createSocket('udp4');
    server.on('message', (_m, r) => server.send(big, r.port, r.address));
    await new Promise<void>((r) => server.bind(0, '127.0.0.1', r));
    cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
    const { g, net } = await rig();
    await arpGateway(g);
    g.sendUdp(GW, 33100, server.address().port, Uint8Array.of(1));
    const frags: Array<{ off: number; more: boolean; data: Uint8Array; id: number }> = [];
    while (!frags.some((f) => !f.more)) {
      const p = await g.waitFor((x) => x.proto === 17, 2000, 'fragments');
      const ipHdr = p.frame.subarray(14, 34);
      expect(p.frame.length).toBeLessThanOrEqual(1514);
      const ff = (ipHdr[6]! << 8) | ipHdr[7]!;
      frags.push({ off: (ff & 0x1fff) * 8, more: (ff & 0x2000) !== 0, data: p.l4.slice(), id: (ipHdr[4]! << 8) | ipHdr[5]! });
    }
    expect(frags).toHaveLength(3);
    expect(new Set(frags.map((f) => f.id)).size).toBe(1);
    const whole = new Uint8Array(8 + big.length);
    for (const f of frags) whole.set(f.data, f.off);
    const d = parseUdpDgram(whole);
    expect(d.dp).toBe(33100);
    expect(parseUdp(whole, GW, GUEST)).not.toBeNull(); // the reassembled datagram's checksum verifies
    expect(sha(d.data)).toBe(sha(big));
    expect(net.link.fragmentedPackets).toBe(1);
  });

  it('a fragmented UDP datagram from the guest is reassembled and sent as one datagram', async () => {
    const got: Buffer[] = [];
    const server = createSocket('udp4');
    server.on('message', (m) => got.push(m));
    await new Promise<void>((r) => server.bind(0, '127.0.0.1', r));
    cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
    const { g, net } = await rig();
    await arpGateway(g);
    const data = body(3000);
    const dgram = udp(GUEST, GW, 33200, server.address().port, data);
    // Three fragments, sent last-first.
    const cuts = [[0, 1480], [1480, 2960], [2960, dgram.length]] as const;
    for (const [from, to] of [...cuts].reverse()) {
      const more = to < dgram.length ? 0x2000 : 0;
      g.sendFrame(eth(g.gwMac, GUEST_MAC, 0x0800, ipv4(GUEST, GW, 17, dgram.subarray(from, to), { flagsFrag: more | (from / 8) })));
    }
    await new Promise<void>((r, j) => { const t = setInterval(() => { if (got.length) { clearInterval(t); r(); } }, 5); setTimeout(() => j(new Error('no datagram')), 3000); });
    expect(got).toHaveLength(1);
    expect(sha(got[0]!)).toBe(sha(data));
    expect(net.reassembler.stats.reassembled).toBe(1);
  });

  it('DNS queries to 10.0.2.3 are forwarded to the configured server and answered', async () => {
    const fake = createSocket('udp4');
    const seen: Buffer[] = [];
    fake.on('message', (m, r) => {
      seen.push(m);
      const resp = Buffer.from(m);
      resp[2] = 0x81;
      resp[3] = 0x80;
      fake.send(Buffer.concat([resp, Buffer.from([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1])]), r.port, r.address);
    });
    await new Promise<void>((r) => fake.bind(0, '127.0.0.1', r));
    cleanups.push(() => new Promise<void>((r) => fake.close(() => r())));
    const { g } = await rig({ dnsServers: [`127.0.0.1:${fake.address().port}`] });
    await arpGateway(g);
    const query = Uint8Array.from([0xab, 0xcd, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 7, ...Buffer.from('example'), 3, ...Buffer.from('com'), 0, 0, 1, 0, 1]);
    g.sendUdp(DNS, 40053, 53, query);
    const r = await g.waitFor((p) => p.proto === 17 && parseUdpDgram(p.l4).dp === 40053, 3000, 'DNS answer');
    const d = parseUdpDgram(r.l4);
    expect(r.src).toBe(DNS);
    expect(d.sp).toBe(53);
    expect(Array.from(d.data.subarray(0, 4))).toEqual([0xab, 0xcd, 0x81, 0x80]);
    expect(Array.from(d.data.subarray(-4))).toEqual([192, 0, 2, 1]);
    expect(Buffer.from(seen[0]!)).toEqual(Buffer.from(query));
  });

  it('DNS over TCP to 10.0.2.3:53 reaches the first upstream nameserver', async () => {
    const tcpDns = createServer((s) => s.end('tcp-dns-answer'));
    await new Promise<void>((r) => tcpDns.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise<void>((r) => tcpDns.close(() => r())));
    const { g } = await rig({ dnsServers: [`127.0.0.1:${(tcpDns.address() as AddressInfo).port}`] });
    await arpGateway(g);
    const c = new TestTcp(g, 40060, DNS, 53);
    cleanups.push(() => c.dispose());
    await c.connect();
    await c.until(() => c.finReceived, 'the answer');
    expect(Buffer.from(c.data).toString()).toBe('tcp-dns-answer');
  });

  it('restrict: the host loopback stays reachable, outside addresses do not', async () => {
    const echo = createSocket('udp4');
    echo.on('message', (m, r) => echo.send(m, r.port, r.address));
    await new Promise<void>((r) => echo.bind(0, '127.0.0.1', r));
    cleanups.push(() => new Promise<void>((r) => echo.close(() => r())));
    const { g, net } = await rig({ restrict: true });
    await arpGateway(g);
    g.sendUdp(ip('192.0.2.1'), 33001, 9, new Uint8Array(4));
    g.sendUdp(GW, 33002, echo.address().port, Uint8Array.of(1, 2, 3));
    await g.waitFor((p) => p.proto === 17 && parseUdpDgram(p.l4).dp === 33002, 2000, 'loopback reply');
    expect(net.udp.stats.dropped).toBe(1);
    const c = new TestTcp(g, 40061, ip('192.0.2.1'), 80);
    cleanups.push(() => c.dispose());
    await expect(c.connect()).rejects.toThrow(/refused/);
  });

  it('DNS answers SERVFAIL promptly when there is no nameserver or it is unreachable', async () => {
    const closed = createSocket('udp4');
    await new Promise<void>((r) => closed.bind(0, '127.0.0.1', r));
    const deadPort = closed.address().port;
    await new Promise<void>((r) => closed.close(() => r()));
    for (const servers of [[], [`127.0.0.1:${deadPort}`]]) {
      const { g } = await rig({ dnsServers: servers, dnsTimeoutMs: 10_000 });
      await arpGateway(g);
      const query = Uint8Array.from([0x11, 0x22, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1, 1, 0x61, 0, 0, 1, 0, 1, 0, 0, 41, 16, 0, 0, 0, 0, 0, 0, 0]);
      const t0 = Date.now();
      g.sendUdp(DNS, 40054, 53, query);
      const r = await g.waitFor((p) => p.proto === 17 && parseUdpDgram(p.l4).dp === 40054, 3000, 'SERVFAIL');
      const d = parseUdpDgram(r.l4).data;
      // "Promptly": well before the 10 s per-server timeout configured above.
      expect(Date.now() - t0).toBeLessThan(5000);
      expect(Array.from(d.subarray(0, 12))).toEqual([0x11, 0x22, 0x81, 0x82, 0, 1, 0, 0, 0, 0, 0, 0]);
      expect(Array.from(d.subarray(12))).toEqual([1, 0x61, 0, 0, 1, 0, 1]);
    }
  });
});
