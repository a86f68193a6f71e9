/** Locating the reference guest built by guest/build.sh ($cache/<hash>/bzImage-x86_64, ...). */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export function guestCacheRoot(): string {
  return process.env['NODEVMM_GUEST_CACHE'] ?? join(process.env['XDG_CACHE_HOME'] ?? join(homedir(), '.cache'), 'nodevmm', 'guest');
}

/** Newest artifact directory entry named `file`, or undefined when none has been built. */
export function findGuestArtifact(file: string): string | undefined {
  const root = guestCacheRoot();
  if (!existsSync(root)) return undefined;
  const hits = readdirSync(root)
    .map((d) => join(root, d, file))
    .filter((p) => existsSync(p))
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  return hits[0];
}
