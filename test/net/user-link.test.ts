import { describe, expect, it } from 'vitest';
import { dhcpMessage, dhcpOptions } from './dhcp-client.js';
import { GUEST_MAC, eth, ip, ipv4, parseUdpDgram, udp } from './guest-stack.js';
import { DNS, GUEST, GW, GW_MAC, arpGateway, arpRequest, rig } from './user-rig.js';

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
