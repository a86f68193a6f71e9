import { createSocket } from 'node:dgram';
import { createServer, type AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { parseUdp } from '../../lib/net/user/udp.js';
import { GUEST_MAC, TestTcp, eth, ip, ipv4, parseUdpDgram, udp } from './guest-stack.js';
import { DNS, GUEST, GW, arpGateway, body, cleanups, rig, sha } from './user-rig.js';

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
