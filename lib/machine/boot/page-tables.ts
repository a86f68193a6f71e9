/**
 * Identity page tables for entering a kernel directly in long mode.
 *
 * We map all RAM below the MMIO hole (rounded up to 2 MiB) with 2 MiB pages: the boot protocol wants the
 * kernel, its decompression buffer (init_size), the zero page, the command line and the initrd identity
 * mapped, and the loader may put any of these anywhere in low RAM (the initrd goes to the top of it). A fixed
 * 1 GiB map (Firecracker's choice) would leave an initrd above 1 GiB unmapped. The MMIO hole itself is left
 * unmapped so nothing treats device registers as cacheable memory. One page directory maps 1 GiB; at most
 * four are needed because low RAM ends below 4 GiB. Cost: 4 KiB per GiB of low RAM.
 */

import type { GuestMemory } from '../guest-memory.js';
import { GiB, MAX_PAGE_DIRECTORIES, MiB, PD_ADDR, PDPT_ADDR, PML4_ADDR } from '../layout.js';

export const PTE_PRESENT = 1;
export const PTE_WRITABLE = 2;
/** PS in a page-directory entry: the entry maps a 2 MiB page. */
export const PTE_LARGE = 0x80;
export const LARGE_PAGE_SIZE = 2 * MiB;
const PAGE = 4096;

export interface IdentityMap {
  /** Value for CR3 (the PML4 address; PCD/PWT clear). */
  cr3: number;
  /** Bytes identity-mapped from address 0 (a multiple of 2 MiB). */
  mappedBytes: number;
}

/** Writes PML4/PDPT/PDs at PML4_ADDR.. identity-mapping [0, mapBytes rounded up to 2 MiB). */
export function writeIdentityPageTables(mem: GuestMemory, mapBytes: number): IdentityMap {
  const mappedBytes = Math.ceil(mapBytes / LARGE_PAGE_SIZE) * LARGE_PAGE_SIZE;
  const directories = Math.ceil(mappedBytes / GiB);
  if (mappedBytes <= 0 || directories > MAX_PAGE_DIRECTORIES) {
    throw new RangeError(`identity map of ${mapBytes} bytes needs 1..${MAX_PAGE_DIRECTORIES} page directories`);
  }
  mem.fill(PML4_ADDR, PAGE, 0);
  mem.fill(PDPT_ADDR, PAGE, 0);
  mem.fill(PD_ADDR, MAX_PAGE_DIRECTORIES * PAGE, 0);
  mem.writeU64(PML4_ADDR, BigInt(PDPT_ADDR | PTE_PRESENT | PTE_WRITABLE));
  for (let d = 0; d < directories; d++) {
    mem.writeU64(PDPT_ADDR + d * 8, BigInt((PD_ADDR + d * PAGE) | PTE_PRESENT | PTE_WRITABLE));
  }
  const pages = mappedBytes / LARGE_PAGE_SIZE;
  for (let i = 0; i < pages; i++) {
    const phys = BigInt(i) * BigInt(LARGE_PAGE_SIZE);
    mem.writeU64(PD_ADDR + i * 8, phys | BigInt(PTE_PRESENT | PTE_WRITABLE | PTE_LARGE));
  }
  return { cr3: PML4_ADDR, mappedBytes };
}

/**
 * Walks the 4-level tables the way the MMU would for a 2 MiB-page identity map and returns the physical
 * address for `linear`, or undefined when it is not mapped. Used by tests and by debugging tools.
 */
export function translateLinear(mem: GuestMemory, cr3: number, linear: number): number | undefined {
  const l = BigInt(linear);
  const addrMask = 0x000f_ffff_ffff_f000n;
  const pml4e = mem.readU64(cr3 + Number((l >> 39n) & 0x1ffn) * 8);
  if ((pml4e & 1n) === 0n) return undefined;
  const pdpte = mem.readU64(Number(pml4e & addrMask) + Number((l >> 30n) & 0x1ffn) * 8);
  if ((pdpte & 1n) === 0n) return undefined;
  if ((pdpte & 0x80n) !== 0n) return Number((pdpte & 0x000f_ffff_c000_0000n) | (l & 0x3fff_ffffn));
  const pde = mem.readU64(Number(pdpte & addrMask) + Number((l >> 21n) & 0x1ffn) * 8);
  if ((pde & 1n) === 0n) return undefined;
  if ((pde & 0x80n) !== 0n) return Number((pde & 0x000f_ffff_ffe0_0000n) | (l & 0x1f_ffffn));
  const pte = mem.readU64(Number(pde & addrMask) + Number((l >> 12n) & 0x1ffn) * 8);
  if ((pte & 1n) === 0n) return undefined;
  return Number((pte & addrMask) | (l & 0xfffn));
}
