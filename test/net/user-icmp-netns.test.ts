/**
 * Both host ICMP socket kinds, end to end through UserNetwork, in fresh network namespaces (the child sets
 * net.ipv4.ping_group_range and icmp_echo_ignore_all there, never on the host): replies with the guest's ids and
 * sequence numbers, unanswered requests expiring from the table, a bounded table, and "no route" answered with
 * destination unreachable. Needs root and unshare(1), sysctl(8), ip(8); otherwise skipped with the reason.
 */
import { execFile, execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { loadNative } from '../../lib/kvm/native.js';

const run = promisify(execFile);
const CHILD = fileURLToPath(new URL('./user-icmp-netns-child.ts', import.meta.url));

function skipReason(): string | null {
  if (process.getuid?.() !== 0) return 'not running as root (unshare -n needs CAP_SYS_ADMIN)';
  try {
    if (typeof loadNative().IcmpSocket !== 'function') return 'the native addon has no IcmpSocket (rebuild it: npm run build:native)';
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
  for (const tool of ['unshare', 'sysctl', 'ip']) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    } catch {
      return `${tool} is not installed`;
    }
  }
  try {
    execFileSync('unshare', ['-n', 'true'], { stdio: 'ignore' });
  } catch (e) {
    return `unshare -n fails here: ${e instanceof Error ? e.message : String(e)}`;
  }
  return null;
}
const reason = skipReason();
if (reason) console.warn(`skipping ICMP socket tests in network namespaces: ${reason}`);

interface ChildReport {
  socketKind: string | null;
  replies: Array<{ id: number; seq: number; src: string; dataOk: boolean }>;
  pendingAfterSend: number;
  drained: boolean;
  expired: number;
  strayReplies: number;
  unreachable: { src: string; code: number; quotesDst: string };
  bounded: { pending: number; evicted: number; forwarded: number };
  stats: Record<string, number>;
  closedKind: string | null;
  guestErrors: string[];
  logs: string[];
}

describe.skipIf(reason !== null)('ICMP echo forwarding in a fresh network namespace', () => {
  for (const kind of ['dgram', 'raw'] as const) {
    it(`${kind} socket: replies, expiry, bounded table, no route`, async () => {
      const { stdout } = await run('unshare', ['-n', process.execPath, '--import', 'tsx', CHILD, kind], { timeout: 60_000 });
      const r = JSON.parse(stdout.trim().split('\n').pop()!) as ChildReport;
      expect(r.guestErrors).toEqual([]);
      expect(r.socketKind).toBe(kind);
      expect(r.replies).toEqual([
        { id: 0x4242, seq: 1, src: 'target', dataOk: true },
        { id: 0x4242, seq: 2, src: 'target', dataOk: true },
        { id: 0x4242, seq: 3, src: 'target', dataOk: true },
        { id: 0x4343, seq: 1, src: 'target', dataOk: true },
        { id: 0x4343, seq: 2, src: 'target', dataOk: true },
      ]);
      expect(r.pendingAfterSend).toBe(3);
      expect(r.drained).toBe(true);
      expect(r.expired).toBe(3);
      expect(r.strayReplies).toBe(0);
      expect(r.unreachable).toEqual({ src: 'gateway', code: 0, quotesDst: '203.0.113.9' });
      expect(r.bounded).toEqual({ pending: 4, evicted: 6, forwarded: 10 });
      expect(r.stats.icmpForwarded).toBe(8);
      expect(r.stats.icmpRepliesForwarded).toBe(5);
      expect(r.stats.icmpUnreachable).toBe(1);
      expect(r.closedKind).toBeNull();
      expect(r.logs).toEqual([]);
    }, 90_000);
  }
});
