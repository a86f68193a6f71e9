/**
 * instructionAtState (lib/kvm/guest-code.ts): the bytes at CS:RIP for registers already read, page by page
 * through the guest's page tables (long mode, 4 KiB pages) — an instruction split over two pages mapped to
 * unrelated physical pages, one running into an unmapped page, one running off the end of RAM.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { instructionAtState, type KvmVcpu, type Sregs } from '../../lib/kvm/index.js';
import { createTestVm, describeKvm, enterLongMode, type TestVm } from './harness.js';

const RAM = 0x200000;
const PD = 0xb000; // enterLongMode's first page directory (2 MiB pages)
const PT = 0x20000;

describeKvm('instructionAtState', () => {
  let t: TestVm;
  let vcpu: KvmVcpu;
  let paged: Sregs;

  beforeAll(() => {
    t = createTestVm({ ramSize: RAM });
    vcpu = t.createVcpu(0);
    enterLongMode(vcpu, t.ram, 0x1000, 0);
    // The first 2 MiB in 4 KiB pages: linear 0x10000 → 0x50000, 0x11000 → 0x30000, 0x12000 not present, the rest identity.
    const v = new DataView(t.ram.buffer);
    v.setBigUint64(PD, BigInt(PT | 3), true);
    for (let i = 0; i < 512; i++) v.setBigUint64(PT + i * 8, BigInt((i * 0x1000) | 3), true);
    v.setBigUint64(PT + 0x10 * 8, BigInt(0x50000 | 3), true);
    v.setBigUint64(PT + 0x11 * 8, BigInt(0x30000 | 3), true);
    v.setBigUint64(PT + 0x12 * 8, 0n, true);
    paged = vcpu.getSregs();
    for (let i = 0; i < 16; i++) { t.ram.bytes[0x50ff0 + i] = 0xa0 + i; t.ram.bytes[0x30000 + i] = 0xb0 + i; t.ram.bytes[0x30ff0 + i] = 0xc0 + i; }
  });
  afterAll(() => t.close());

  it('an instruction across two pages mapped to unrelated physical pages', () => {
    const at = instructionAtState(vcpu, t.vm.guestMemory(), 0x10ffan, paged);
    expect(at.mode).toBe('long');
    expect(at.linear).toBe(0x10ffan);
    expect([...at.bytes]).toEqual([0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf, 0xb0, 0xb1, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8]);
  });

  it('stops at a page that is not mapped', () => {
    const at = instructionAtState(vcpu, t.vm.guestMemory(), 0x11ffcn, paged);
    expect([...at.bytes]).toEqual([0xcc, 0xcd, 0xce, 0xcf]);
  });

  it('stops where RAM ends, and returns nothing for RIP outside RAM', () => {
    // enterLongMode identity-maps 4 GiB: past RAM the walk succeeds but no byte is in RAM.
    t.ram.bytes.set([1, 2, 3], RAM - 3);
    expect([...instructionAtState(vcpu, t.vm.guestMemory(), BigInt(RAM - 3), paged).bytes]).toEqual([1, 2, 3]);
    expect(instructionAtState(vcpu, t.vm.guestMemory(), BigInt(RAM + 0x100), paged).bytes.length).toBe(0);
  });
});
