/**
 * Opening a Linux TAP device needs ioctl(TUNSETIFF), which Node cannot do: the native addon provides it as
 * `openTap(ifname)`. This module is the only place that asks the addon for it, and explains clearly when the
 * addon in use does not have it (or is not built).
 *
 * Native contract (native/): `openTap(ifname: string): { fd: number; ifname: string }` opens /dev/net/tun
 * (O_RDWR | O_CLOEXEC, blocking), TUNSETIFF with IFF_TAP | IFF_NO_PI and the given name (empty: the kernel picks
 * tapN; an existing persistent TAP is attached), and returns the fd and the kernel's interface name. Failures
 * throw a Node-style Error with code/errno/syscall ('open' or 'ioctl'), e.g. EPERM without CAP_NET_ADMIN.
 */
import { loadNative } from '../kvm/native.js';

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

/** Why TAP cannot be used here, or null when an opener exists (opening may still fail, e.g. EPERM). */
export function tapUnavailableReason(): string | null {
  if (override) return null;
  try {
    if (typeof loadNative().openTap !== 'function') return 'the native addon has no openTap() (rebuild it from a version that provides it)';
    return null;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
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
