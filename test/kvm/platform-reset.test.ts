/**
 * Machine reset on KVM puts the in-kernel PIC pair, IOAPIC and PIT (and each vCPU's LAPIC) back to power-on:
 * a 32-bit guest programs them (ICWs, ELCR, IOAPIC ID and redirection entries, PIT channels 0 and 2, LAPIC
 * SVR/timer), KvmAccelerator.resetVcpus runs, and then (a) the state KVM reports equals the snapshot taken at
 * creation, and (b) a second guest program reading those registers sees exactly what the same program sees on
 * a freshly created accelerator, measured in the same run.
 */
import { afterEach, expect, it } from 'vitest';
import { KvmAccelerator } from '../../lib/accel/kvm/kvm-accelerator.js';
import { IOAPIC_REDIR_MASKED, type PlatformState } from '../../lib/accel/kvm/platform-state.js';
import { ManualClock, TimerGroup } from '../../lib/devices/platform-clock.js';
import { setupProtectedModeEntry } from '../../lib/machine/boot/protected-mode.js';
import type { BootCpuState } from '../../lib/machine/boot/cpu-state.js';
import { Bus } from '../../lib/machine/bus.js';
import type { GuestMemory } from '../../lib/machine/guest-memory.js';
import { u16, u32 } from './asm.js';
import { describeKvm } from './harness.js';

const CODE = 0x1000;
const RESULTS = 0x3000;
const SENTINEL = 0xd000_0000;
const IOAPIC = 0xfec0_0000;
const LAPIC = 0xfee0_0000;

// 32-bit instruction encodings used below.
const outImm = (port: number, value: number): number[] => [0xb0, value, 0xe6, port]; // mov al, v ; out port, al
const outDx = (port: number, value: number): number[] => [0x66, 0xba, ...u16(port), 0xb0, value, 0xee]; // mov dx, p ; mov al, v ; out dx, al
const store32 = (address: number, value: number): number[] => [0xc7, 0x05, ...u32(address), ...u32(value)]; // mov dword [a], v
const loadEax = (address: number): number[] => [0xa1, ...u32(address)]; // mov eax, [a]
const saveEax = (address: number): number[] => [0xa3, ...u32(address)]; // mov [a], eax
const inImmToEax = (port: number): number[] => [0xe4, port, 0x0f, 0xb6, 0xc0]; // in al, port ; movzx eax, al
const inDxToEax = (port: number): number[] => [0x66, 0xba, ...u16(port), 0xec, 0x0f, 0xb6, 0xc0]; // mov dx, p ; in al, dx ; movzx eax, al
const stopAndSpin = [...store32(SENTINEL, 1), 0xeb, 0xfe]; // sentinel write (ends run()) ; jmp $

/** IOAPIC redirection entry `pin`, low dword index. */
const redirLow = (pin: number): number => 0x10 + 2 * pin;

const PROGRAM_CHIPS_BODY = [
  // 8259 master: ICW1 (edge, cascade, ICW4), ICW2 vector base 0x30, ICW3 slave on IRQ2, ICW4 8086; OCW1 mask.
  ...outImm(0x20, 0x11), ...outImm(0x21, 0x30), ...outImm(0x21, 0x04), ...outImm(0x21, 0x01), ...outImm(0x21, 0xfa),
  // 8259 slave: base 0x38, cascade identity 2, 8086; mask all but IRQ 14.
  ...outImm(0xa0, 0x11), ...outImm(0xa1, 0x38), ...outImm(0xa1, 0x02), ...outImm(0xa1, 0x01), ...outImm(0xa1, 0xbf),
  // ELCR: IRQ 10 and 11 level-triggered.
  ...outDx(0x4d1, 0x0c),
  // PIT channel 0: lobyte/hibyte, mode 2, count 0x2e9c (100 Hz); channel 2: mode 3, count 0x1000.
  ...outImm(0x43, 0x34), ...outImm(0x40, 0x9c), ...outImm(0x40, 0x2e),
  ...outImm(0x43, 0xb6), ...outImm(0x42, 0x00), ...outImm(0x42, 0x10),
  // IOAPIC: ID 5; pin 5 vector 0x35 level-triggered unmasked; pin 2 vector 0x30 unmasked.
  ...store32(IOAPIC, 0), ...store32(IOAPIC + 0x10, 0x0500_0000),
  ...store32(IOAPIC, redirLow(5)), ...store32(IOAPIC + 0x10, 0x0000_a035),
  ...store32(IOAPIC, redirLow(2)), ...store32(IOAPIC + 0x10, 0x0000_0030),
  // LAPIC: software-enabled (SVR 0x1ff), periodic timer vector 0x40 with a large initial count.
  ...store32(LAPIC + 0xf0, 0x1ff), ...store32(LAPIC + 0x320, 0x2_0040), ...store32(LAPIC + 0x380, 0x0100_0000),
];
const PROGRAM_CHIPS = [...PROGRAM_CHIPS_BODY, ...stopAndSpin];

/** Reads what the chips show the guest, one dword per item at RESULTS. */
const REPORT_ITEMS: [string, number[]][] = [
  ['IOAPIC redirection 5', [...store32(IOAPIC, redirLow(5)), ...loadEax(IOAPIC + 0x10)]],
  ['IOAPIC redirection 2', [...store32(IOAPIC, redirLow(2)), ...loadEax(IOAPIC + 0x10)]],
  ['IOAPIC ID', [...store32(IOAPIC, 0), ...loadEax(IOAPIC + 0x10)]],
  ['PIC master IMR', inImmToEax(0x21)],
  ['PIC slave IMR', inImmToEax(0xa1)],
  ['ELCR slave', inDxToEax(0x4d1)],
  ['LAPIC SVR', loadEax(LAPIC + 0xf0)],
  ['LAPIC LVT timer', loadEax(LAPIC + 0x320)],
  ['LAPIC timer initial count', loadEax(LAPIC + 0x380)],
  ['PIT channel 0 status (read-back)', [...outImm(0x43, 0xe2), ...inImmToEax(0x40)]],
  ['PIT channel 2 status (read-back)', [...outImm(0x43, 0xe8), ...inImmToEax(0x42)]],
];
const REPORT = [...REPORT_ITEMS.flatMap(([, code], i) => [...code, ...saveEax(RESULTS + 4 * i)]), ...stopAndSpin];
/** Programs the chips, then reports what the guest sees (shows the report can tell programmed from power-on). */
const PROGRAM_THEN_REPORT = [...PROGRAM_CHIPS_BODY, ...REPORT];

interface Rig {
  accel: KvmAccelerator;
  memory: GuestMemory;
  boot: BootCpuState;
}

function createRig(program: number[]): Rig {
  const accel = new KvmAccelerator({ emulatingHost: false });
  try {
    const memory = accel.allocateMemory([{ guestAddress: 0, size: 0x200000 }]);
    const mmio = new Bus('mmio');
    mmio.register(SENTINEL, 0x1000, { read: () => 0, write: () => accel.requestStop() }, 'sentinel');
    accel.attach({ memory, pio: new Bus('pio'), mmio, clock: new ManualClock(), timers: new TimerGroup() });
    const boot = setupProtectedModeEntry(memory, { eip: CODE });
    memory.write(CODE, Uint8Array.from(program));
    accel.createVcpus(1, boot);
    return { accel, memory, boot };
  } catch (e) {
    accel.close();
    throw e;
  }
}

async function runReport(rig: Rig): Promise<Record<string, string>> {
  rig.memory.fill(RESULTS, REPORT_ITEMS.length * 4, 0xee);
  expect((await rig.accel.run()).kind).toBe('stopped');
  return Object.fromEntries(REPORT_ITEMS.map(([name], i) => [name, `0x${rig.memory.readU32(RESULTS + 4 * i).toString(16)}`]));
}

/** Host clock readings are not guest state: KVM_SET_PIT2 reloads the counters "now". */
function withoutLoadTimes(s: PlatformState): PlatformState {
  return { ...s, pit: { ...s.pit, channels: s.pit.channels.map((c) => ({ ...c, countLoadTime: 0n })) as PlatformState['pit']['channels'] } };
}

describeKvm('KVM machine reset: in-kernel PIC, IOAPIC, PIT and LAPIC back to power-on', () => {
  const rigs: Rig[] = [];
  afterEach(() => { for (const r of rigs.splice(0)) r.accel.close(); });

  it('a guest-programmed irqchip and PIT read back as the creation snapshot after resetVcpus', async () => {
    const rig = createRig(PROGRAM_CHIPS);
    rigs.push(rig);
    const powerOn = rig.accel.powerOnPlatformState;
    // The snapshot is the state KVM reports for an untouched VM.
    expect(withoutLoadTimes(rig.accel.platformState())).toEqual(withoutLoadTimes(powerOn));
    expect(powerOn.ioapic.redirection.every((e) => (e & IOAPIC_REDIR_MASKED) !== 0n)).toBe(true);

    expect((await rig.accel.run()).kind).toBe('stopped');
    const programmed = rig.accel.platformState();
    expect(programmed.picMaster.irqBase).toBe(0x30);
    expect(programmed.picMaster.imr).toBe(0xfa);
    expect(programmed.picSlave.irqBase).toBe(0x38);
    expect(programmed.picSlave.elcr).toBe(0x0c);
    expect(programmed.ioapic.id).toBe(5);
    expect(programmed.ioapic.redirection[5]).toBe(0xa035n);
    expect(programmed.ioapic.redirection[2]).toBe(0x30n);
    expect(programmed.pit.channels[0].mode).toBe(2);
    expect(programmed.pit.channels[0].count).toBe(0x2e9c);
    expect(programmed.pit.channels[2].mode).toBe(3);
    expect(programmed.pit.channels[2].count).toBe(0x1000);

    rig.accel.resetVcpus(rig.boot);
    expect(withoutLoadTimes(rig.accel.platformState())).toEqual(withoutLoadTimes(powerOn));
  });

  it('after a reset the guest sees the chips and the LAPIC exactly as on a freshly created machine', async () => {
    const fresh = createRig(REPORT);
    rigs.push(fresh);
    const reference = await runReport(fresh);
    // Sanity: the report really reads power-on values (masked IOAPIC pins, LAPIC timer idle).
    expect(Number(reference['IOAPIC redirection 5']) & 0x1_0000).not.toBe(0);
    expect(reference['LAPIC timer initial count']).toBe('0x0');

    const rebooted = createRig(PROGRAM_THEN_REPORT);
    rigs.push(rebooted);
    // First boot: the report after the programming shows it, so the final comparison can fail.
    const programmed = await runReport(rebooted);

    expect(programmed['IOAPIC redirection 5']).toBe('0xa035');
    expect(programmed['LAPIC timer initial count']).toBe('0x1000000');
    expect(programmed).not.toEqual(reference);

    // Reboot as the Machine does it: memory reloaded (here: only the report program), then the accelerator reset.
    rebooted.memory.write(CODE, Uint8Array.from(REPORT));
    rebooted.accel.resetVcpus(rebooted.boot);
    expect(await runReport(rebooted)).toEqual(reference);
  });
});
