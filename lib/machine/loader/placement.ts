/** Checks and placement shared by the loaders: does guest memory match the layout, where does an initrd go. */

import type { GuestMemory } from '../guest-memory.js';
import { LayoutError, lowRamEnd, ramRegions } from '../layout.js';
import { MAX_VCPUS } from '../config.js';
import { hex, LoaderError, mib } from './errors.js';

export const PAGE_SIZE = 4096;

/** Validates memoryBytes and that `mem` backs every RAM region of the layout; returns RAM end below the hole. */
export function checkGuestMemory(mem: GuestMemory, memoryBytes: number): number {
  let low: number;
  try {
    low = lowRamEnd(memoryBytes);
  } catch (e) {
    if (e instanceof LayoutError) throw new LoaderError(e.message, undefined, 'memory');
    throw e;
  }
  for (const r of ramRegions(memoryBytes)) {
    if (!mem.contains(r.guestAddress, r.size)) {
      throw new LoaderError(
        `memory: guest RAM does not back [${hex(r.guestAddress)}, ${hex(r.guestAddress + r.size)}) of a ${mib(memoryBytes)} machine; allocate ramRegions(memoryBytes)`,
        undefined,
        'memory',
      );
    }
  }
  return low;
}

export interface Placement {
  address: number;
  size: number;
}

/**
 * The highest page-aligned address at which `size` bytes end at or below min(maxEnd, ramEnd) and start at or
 * above `floor` (the end of everything the kernel needs). Throws LoaderError naming the initrd when it
 * cannot fit.
 */
export function placeInitrd(
  size: number,
  opts: { path: string; floor: number; maxEnd: number; ramEnd: number; memoryBytes: number },
): Placement {
  const top = Math.min(opts.maxEnd, opts.ramEnd);
  const address = Math.floor((top - size) / PAGE_SIZE) * PAGE_SIZE;
  if (size > top || address < opts.floor) {
    const room = Math.max(0, top - opts.floor);
    throw new LoaderError(
      `initrd ${opts.path} (${mib(size)}) does not fit in guest memory (${mib(opts.memoryBytes)}): ` +
        `${mib(room)} free between the kernel's end ${hex(opts.floor)} and ${hex(top)}`,
      opts.path,
      'initrd',
    );
  }
  return { address, size };
}

/** Encodes the command line; rejects NULs and lengths above `limit` (bytes, excluding the terminating NUL). */
export function encodeCmdline(cmdline: string, limit: number, limitSource: string): Uint8Array {
  if (cmdline.includes('\0')) throw new LoaderError('cmdline: the command line must not contain NUL characters', undefined, 'cmdline');
  const bytes = new TextEncoder().encode(cmdline);
  if (bytes.length > limit) {
    throw new LoaderError(
      `cmdline: the command line is ${bytes.length} bytes; ${limitSource} accepts at most ${limit}`,
      undefined,
      'cmdline',
    );
  }
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  return out;
}

/** vCPU count for the MP table: 1..MAX_VCPUS (xAPIC IDs 0..253, IOAPIC 254). */
export function checkCpus(cpus: number): number {
  if (!Number.isInteger(cpus) || cpus < 1 || cpus > MAX_VCPUS) {
    throw new LoaderError(`cpus: expected an integer from 1 to ${MAX_VCPUS}, got ${cpus}`, undefined, 'cpus');
  }
  return cpus;
}
