import { describe, expect, it } from 'vitest';
import { NetSpecError, parseNetSpec } from '../../lib/net/spec.js';

describe('parseNetSpec', () => {
  it('user with defaults, net= and hostfwd (tcp and udp, defaults for the addresses)', () => {
    expect(parseNetSpec('user')).toEqual({ kind: 'user', network: '10.0.2.0', prefixLength: 24, hostForwards: [], restrict: false });
    expect(parseNetSpec('user,restrict=on')).toMatchObject({ restrict: true });
    expect(parseNetSpec('user,net=192.168.77.9/24,hostfwd=tcp:127.0.0.1:2222-:22,hostfwd=udp::5353-10.0.2.20:53,hostfwd=:8080-:80')).toEqual({
      kind: 'user',
      network: '192.168.77.0',
      prefixLength: 24,
      restrict: false,
      hostForwards: [
        { protocol: 'tcp', hostAddress: '127.0.0.1', hostPort: 2222, guestAddress: undefined, guestPort: 22 },
        { protocol: 'udp', hostAddress: '127.0.0.1', hostPort: 5353, guestAddress: '10.0.2.20', guestPort: 53 },
        { protocol: 'tcp', hostAddress: '127.0.0.1', hostPort: 8080, guestAddress: undefined, guestPort: 80 },
      ],
    });
  });

  it('tap and socket forms', () => {
    expect(parseNetSpec('tap,ifname=tap0')).toEqual({ kind: 'tap', ifname: 'tap0' });
    expect(parseNetSpec('socket,listen=127.0.0.1:1234')).toEqual({ kind: 'socket', mode: 'listen', host: '127.0.0.1', port: 1234 });
    expect(parseNetSpec('socket,connect=localhost:1234')).toEqual({ kind: 'socket', mode: 'connect', host: 'localhost', port: 1234 });
    expect(parseNetSpec('socket,connect=[::1]:99')).toEqual({ kind: 'socket', mode: 'connect', host: '::1', port: 99 });
  });

  it('mac= on every kind, normalised to lower-case colon form', () => {
    expect(parseNetSpec('tap,mac=52-54-00-AB-CD-EF,ifname=tap0')).toEqual({ kind: 'tap', ifname: 'tap0', mac: '52:54:00:ab:cd:ef' });
    expect(parseNetSpec('socket,connect=h:1,mac=52:54:00:00:00:02')).toMatchObject({ kind: 'socket', mac: '52:54:00:00:00:02' });
    expect(parseNetSpec('user,mac=02:00:00:00:00:01')).toMatchObject({ kind: 'user', mac: '02:00:00:00:00:01' });
    expect(parseNetSpec('user')).not.toHaveProperty('mac');
  });

  const bad: Array<[string, string, RegExp]> = [
    ['user,mac=52:54:00:00:00:01,mac=52:54:00:00:00:02', 'mac', /given more than once/],
    ['tap,ifname=t,mac=zz:54:00:00:00:01', 'mac', /not a MAC address/],
    ['socket,listen=:1,mac=33:33:00:00:00:01', 'mac', /multicast/],
    ['bridge', 'type', /unknown network type "bridge"/],
    ['user,foo=1', 'foo', /unknown option for user/],
    ['user,restrict=maybe', 'restrict', /not on or off/],
    ['user,net=10.0.2.0/30', 'net', /prefix \/30/],
    ['user,net=300.1.1.1/24', 'net', /not ADDRESS\/PREFIX/],
    ['user,hostfwd=tcp:127.0.0.1:70000-:22', 'hostfwd', /host port "70000"/],
    ['user,hostfwd=tcp:127.0.0.1:22-:0', 'hostfwd', /guest port "0"/],
    ['user,hostfwd=sctp::1-:2', 'hostfwd', /is not \[tcp\|udp\]/],
    ['user,hostfwd=tcp:example.com:1-:2', 'hostfwd', /host address "example.com"/],
    ['user,hostfwd', 'hostfwd', /expected KEY=VALUE/],
    ['tap', 'ifname', /tap needs ifname/],
    ['tap,ifname=way-too-long-interface-name', 'ifname', /not a valid interface name/],
    ['tap,name=x', 'name', /unknown option for tap/],
    ['socket', 'listen/connect', /exactly one of/],
    ['socket,listen=1234', 'listen', /not HOST:PORT/],
    ['socket,connect=127.0.0.1:0', 'connect', /port "0"/],
    ['socket,listen=127.0.0.1:1,connect=127.0.0.1:2', 'listen', /exactly one of/],
  ];
  for (const [spec, field, message] of bad) {
    it(`rejects "${spec}" naming ${field}`, () => {
      let err: unknown;
      try {
        parseNetSpec(spec);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(NetSpecError);
      expect((err as NetSpecError).field).toBe(field);
      expect((err as Error).message).toMatch(message);
      expect((err as Error).message).toContain(`network "${spec}": ${field}:`);
    });
  }
});
