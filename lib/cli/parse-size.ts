import { UsageError } from './usage-error.js';

const UNITS: Record<string, number> = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 };

/**
 * Parse a size like "512M", "2G", "1048576" (bytes) or "64MiB". A bare number is taken in `defaultUnit`
 * (QEMU's -m takes MiB, qemu-img takes bytes), so callers state which.
 */
export function parseSize(text: string, option: string, defaultUnit: 'bytes' | 'MiB'): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?$/i.exec(text.trim());
  if (!m) throw new UsageError(`${option}: "${text}" is not a size (examples: 512M, 2G, 1048576)`);
  const unit = m[2]!.toLowerCase();
  const multiplier = unit === '' && defaultUnit === 'MiB' ? UNITS.m! : UNITS[unit]!;
  const bytes = Math.round(Number(m[1]) * multiplier);
  if (!Number.isSafeInteger(bytes) || bytes <= 0) throw new UsageError(`${option}: "${text}" is out of range`);
  return bytes;
}
