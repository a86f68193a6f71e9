/** Memory slots: dirty logging, read-only slots, removal/resize, and GuestRam lifetime. */
import { afterEach, expect, it } from 'vitest';
import { u16 } from './asm.js';
import { createTestVm, describeKvm, enterRealMode, load, Recorder, type TestVm } from './harness.js';

describeKvm('KVM memory slots', () => {
  let t: TestVm | undefined;
  afterEach(() => { t?.close(); t = undefined; });

  it('dirty log lists exactly the pages the guest wrote', async () => {
    t = createTestVm({ logDirty: true });
    const vcpu = t.createVcpu(0);
    load(t.ram, 0x1000, [
      0xc6, 0x06, ...u16(0x3000), 0x11,  // mov byte [0x3000], 0x11
      0xc6, 0x06, ...u16(0x5000), 0x22,  // mov byte [0x5000], 0x22
      0xc6, 0x06, ...u16(0x5ffc), 0x33,  // mov byte [0x5ffc], 0x33  (same page)
      0xb8, ...u16(0x9000),              // mov ax, 0x9000
      0x8e, 0xd8,                        // mov ds, ax
      0xc6, 0x06, ...u16(0x0010), 0x44,  // mov byte [ds:0x10], 0x44  (0x90010)
      0xf4,                              // hlt
    ]);
    enterRealMode(vcpu, 0x1000);
    t.vm.dirtyPages(0); // clear whatever setup touched
    expect((await vcpu.runLoop({})).reason).toBe('hlt');
    expect(t.vm.dirtyPages(0)).toEqual([0x3000, 0x5000, 0x90000]);
    expect(t.vm.dirtyPages(0)).toEqual([]); // reading the log clears it
    expect(t.ram.bytes[0x90010]).toBe(0x44);
  });

  it('a read-only slot is readable, and guest writes to it exit as MMIO', async () => {
    t = createTestVm({ ramSize: 0x80000 });
    const rom = t.kvm.allocateRam(0x10000);
    rom.bytes[0x20] = 0x5a;
    t.vm.setMemoryRegion({ slot: 1, guestAddress: 0xe0000, ram: rom, readonly: true });
    const vcpu = t.createVcpu(0);
    load(t.ram, 0x1000, [
      0xb8, ...u16(0xe000),        // mov ax, 0xe000
      0x8e, 0xd8,                  // mov ds, ax
      0xa0, ...u16(0x20),          // mov al, [0x20]      (0xe0020, from the ROM)
      0xba, ...u16(0x90),          // mov dx, 0x90
      0xee,                        // out dx, al
      0xa2, ...u16(0x21),          // mov [0x21], al      (write to ROM -> MMIO exit)
      0xf4,                        // hlt
    ]);
    enterRealMode(vcpu, 0x1000);
    const pio = new Recorder();
    const mmio = new Recorder();
    expect((await vcpu.runLoop({ pio, mmio })).reason).toBe('hlt');
    expect(pio.log).toEqual([{ kind: 'write', address: 0x90, size: 1, value: 0x5a }]);
    expect(mmio.log).toEqual([{ kind: 'write', address: 0xe0021, size: 1, value: 0x5a }]);
    expect(rom.bytes[0x21]).toBe(0);
    t.vm.removeMemoryRegion(1);
    rom.close();
  });

  it('removing a slot turns its range into MMIO; resizing keeps the contents', async () => {
    t = createTestVm();
    const extra = t.kvm.allocateRam(0x20000);
    t.vm.setMemoryRegion({ slot: 2, guestAddress: 0x400000, ram: extra, size: 0x10000 });
    extra.bytes[0x18000] = 0x77;
    t.vm.resizeMemoryRegion(2, 0x20000);
    expect(t.vm.memoryRegions.find((r) => r.slot === 2)?.size).toBe(0x20000);
    expect(t.vm.guestMemory().view(0x418000, 1)[0]).toBe(0x77);
    t.vm.removeMemoryRegion(2);
    expect(t.vm.guestMemory().contains(0x400000, 1)).toBe(false);
    expect(() => t!.vm.removeMemoryRegion(2)).toThrow(/slot 2 is not set/);
    extra.close();
  });

  it('a closed GuestRam keeps existing views valid (zeros), so JS can never touch unmapped memory', () => {
    t = createTestVm();
    const ram = t.kvm.allocateRam(0x4000);
    const view = new Uint8Array(ram.buffer);
    view[100] = 9;
    ram.close();
    ram.close(); // idempotent
    expect(view[100]).toBe(0);
    view[100] = 1; // still writable private memory, not guest RAM
    expect(view[100]).toBe(1);
    expect(() => t!.vm.setMemoryRegion({ slot: 3, guestAddress: 0x800000, ram })).toThrow(/closed GuestRam/);
  });
});
