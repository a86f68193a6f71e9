/**
 * Opening a Linux TAP device needs ioctl(TUNSETIFF), which Node cannot do: the native addon provides it as
 * `openTap(ifname)`. This module is the only place that asks the addon for it, and explains clearly when the
 * addon in use does not have it (or is not built).
 *
 * Native contract (native/): `openTap(ifname: string): { fd: number; ifname: string }` opens /dev/net/tun
 * (O_RDWR | O_CLOEXEC, blocking), TUNSETIFF with IFF_TAP | IFF_NO_PI and the given name (empty: the kernel picks
 * tapN; an existing persistent TAP is attached), and returns the fd and the kernel's interface name. Failures
 * throw a Node-style Error with code/errno/syscall ('open' or 'ioctl'), e.g. EPERM without CAP_NET_ADMIN.
 *
 * Frames then move through the addon's `PacketFd` (uv_poll on the JS thread's loop, see lib/net/tap.ts), which
 * every TAP backend needs, also one whose fd comes from an opener set with setTapOpener(). There is no fallback
 * to fs reads on the libuv pool: an addon without PacketFd makes TAP unavailable, with that reason.
 */
import { loadNative, type NativePacketFd } from '../kvm/native.js';

export interface TapHandle {
  fd: number;
  ifname: string;
}

export type TapOpener = (ifname: string) => TapHandle;

export class TapUnavailableError extends Error {
  readonly code = 'ENOTAP';
  constructor(reason: string) {
    super(`tap networking is not available: ${reason}`);
    this.name = 'TapUnavailableError';
  }
}

let override: TapOpener | undefined;

/** Replace the opener (embedders with their own privileged helper; tests). undefined restores the addon's. */
export function setTapOpener(opener: TapOpener | undefined): void {
  override = opener;
}

/**
 * Why TAP cannot be used here, or null when an opener and the addon's PacketFd exist (opening may still fail,
 * e.g. EPERM).
 */
export function tapUnavailableReason(): string | null {
  try {
    const native = loadNative();
    if (typeof native.PacketFd !== 'function') return 'the native addon has no PacketFd (rebuild it: npm run build:native)';
    if (!override && typeof native.openTap !== 'function') return 'the native addon has no openTap() (rebuild it: npm run build:native)';
    return null;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}

/**
 * Wrap a TAP fd in the addon's PacketFd (non-blocking, read from the event loop). The PacketFd owns the fd once
 * this returns; if it throws, the fd is untouched and still the caller's.
 */
export function openPacketFd(fd: number, maxFrameBytes: number): NativePacketFd {
  let PacketFd: ReturnType<typeof loadNative>['PacketFd'];
  try {
    PacketFd = loadNative().PacketFd;
  } catch (e) {
    throw new TapUnavailableError(e instanceof Error ? e.message : String(e));
  }
  if (typeof PacketFd !== 'function') throw new TapUnavailableError('the native addon has no PacketFd (rebuild it: npm run build:native)');
  return new PacketFd(fd, maxFrameBytes);
}

export function openTapFd(ifname: string): TapHandle {
  if (override) return override(ifname);
  const reason = tapUnavailableReason();
  if (reason) throw new TapUnavailableError(reason);
  const nativeOpen = loadNative().openTap;
  if (!nativeOpen) throw new TapUnavailableError('the native addon has no openTap()');
  const h = nativeOpen(ifname);
  if (!h || !Number.isInteger(h.fd) || h.fd < 0 || typeof h.ifname !== 'string') {
    throw new TapUnavailableError('the native openTap() returned an unexpected value');
  }
  return h;
}
