/**
 * fallocate(2) for image backends: free a range (punch a hole) or zero it in place (ZERO_RANGE), so discard and
 * write-zeroes cost metadata updates instead of data writes. Needs the native addon's `fallocate`; an addon
 * built before it, or no addon at all, makes every call report "unsupported" and callers keep their old path.
 */
import { loadNative, type NativeFallocate } from '../kvm/native.js';

/** 'punch-hole': deallocate, reads return zeros. 'zero-range': reads return zeros, space stays allocated. */
export type SpaceOp = 'punch-hole' | 'zero-range';

/** The addon's fallocate, or null when the addon is missing or predates it. */
export function nativeFallocate(): NativeFallocate | null {
  try {
    return loadNative().fallocate ?? null;
  } catch {
    return null;
  }
}

/** errno codes meaning "this file (system) cannot do that mode", as opposed to an I/O failure. */
const UNSUPPORTED = new Set(['EOPNOTSUPP', 'ENOTSUP', 'ENOSYS']);

/**
 * Applies `op` to [offset, offset+length) of `fd` without changing the file size. Resolves true when done,
 * false when `fallocate` is null or the filesystem refuses the mode; rejects on any other error (EIO, ENOSPC...).
 */
export async function fallocateRange(
  fallocate: NativeFallocate | null,
  fd: number,
  op: SpaceOp,
  offset: number,
  length: number,
): Promise<boolean> {
  if (fallocate === null) return false;
  const mode = fallocate.KEEP_SIZE | (op === 'punch-hole' ? fallocate.PUNCH_HOLE : fallocate.ZERO_RANGE);
  try {
    await fallocate(fd, mode, offset, length);
    return true;
  } catch (e) {
    if (UNSUPPORTED.has((e as NodeJS.ErrnoException).code ?? '')) return false;
    throw e;
  }
}
