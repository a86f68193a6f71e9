import { createSocket } from 'node:dgram';
import { connect, createServer, type AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { UserNetwork } from '../../lib/net/user/user-network.js';
import { F, TestTcp, listen, parseUdpDgram } from './guest-stack.js';
import { GW, arpGateway, body, cleanups, rig, sha } from './user-rig.js';

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
