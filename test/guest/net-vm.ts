/**
 * Boots the reference guest on the interpreter with virtio-net interfaces (`--net` specs) for the network
 * tests: a GuestConsole on COM1 to type commands, progress lines with elapsed time, and the guest-side network
 * setup the tests share (a udhcpc script, static addresses).
 */
import { InterpAccelerator } from '../../lib/accel/interp/index.js';
import { initCmdline, REFERENCE_GUEST_CMDLINE } from '../../lib/guest/guest-protocol.js';
import { validateMachineConfig } from '../../lib/machine/config.js';
import type { MachineExit } from '../../lib/machine/exit-status.js';
import { Machine, type MachineOptions } from '../../lib/machine/machine.js';
import { GuestConsole } from '../interp/guest-console.js';
import { guestFilesFor, type GuestFiles } from '../interp/guest-files.js';

/** The x86_64 guest (reference build, else the newest complete one, else a test-made initramfs), or why not. */
export function netGuestFiles(): GuestFiles | { skip: string } {
  return guestFilesFor('x86_64');
}

export interface NetGuestOptions {
  /** Label for progress lines. */
  label: string;
  /** `--net` specifications, in order (eth0, eth1, ...). */
  nets: string[];
  userNet?: MachineOptions['userNet'];
  memoryMiB?: number;
}

export class NetGuest {
  readonly console: GuestConsole;
  readonly exit: Promise<MachineExit>;
  private readonly startedAt = performance.now();

  private constructor(readonly machine: Machine, readonly accelerator: InterpAccelerator, private readonly label: string) {
    this.console = new GuestConsole(
      (bytes) => machine.serial.receive(bytes),
      process.env.NODEVMM_TEST_ECHO ? (s) => process.stdout.write(s) : undefined,
    );
    machine.serial.addOutputListener((chunk) => this.console.push(chunk));
    this.exit = machine.wait();
  }

  static async boot(files: GuestFiles, options: NetGuestOptions): Promise<NetGuest> {
    const accelerator = new InterpAccelerator();
    const machine = await Machine.create(validateMachineConfig({
      kernel: files.kernel,
      initrd: files.initrd,
      memoryMiB: options.memoryMiB ?? 256,
      accel: 'interp',
      serial: 'none',
      cmdline: [REFERENCE_GUEST_CMDLINE, initCmdline({})].filter((s) => s !== '').join(' '),
      nets: options.nets,
    }), {
      accelerator,
      bindSerial: false,
      ...(options.userNet ? { userNet: options.userNet } : {}),
      log: (line) => console.log(`[${options.label}] vmm: ${line}`),
    });
    const vm = new NetGuest(machine, accelerator, options.label);
    machine.start();
    vm.progress(`booting ${files.origin} with --net ${options.nets.join(' --net ')}`);
    return vm;
  }

  elapsed(): string {
    return ((performance.now() - this.startedAt) / 1000).toFixed(1);
  }

  progress(line: string): void {
    console.log(`[${this.label}] ${this.elapsed()} s: ${line}`);
  }

  /** Waits for /init's shell prompt; returns the seconds it took. */
  async shell(timeoutMs = 600_000): Promise<number> {
    await this.console.waitFor(/nodevmm-init: starting shell[\s\S]*# /, timeoutMs);
    this.progress(`shell prompt (${(this.accelerator.instructionsRetired / 1e6).toFixed(0)} M instructions)`);
    return (performance.now() - this.startedAt) / 1000;
  }

  /** Runs a shell command; resolves with its output (stdout and stderr, as the console shows them). */
  run(command: string, timeoutMs = 180_000): Promise<string> {
    return this.console.run(command, timeoutMs);
  }

  /** Runs `command` and returns its exit status with the output. */
  async status(command: string, timeoutMs = 180_000): Promise<{ status: number; output: string }> {
    const out = await this.run(`${command}; echo "rc=$?"`, timeoutMs);
    const m = /rc=(\d+)\s*$/.exec(out);
    if (!m) throw new Error(`no exit status in output of ${JSON.stringify(command)}: ${out}`);
    return { status: Number(m[1]), output: out.slice(0, m.index) };
  }

  /** Runs `command`, throwing with its output when it fails; returns the output. */
  async ok(command: string, timeoutMs = 180_000): Promise<string> {
    const r = await this.status(command, timeoutMs);
    if (r.status !== 0) throw new Error(`[${this.label}] ${JSON.stringify(command)} exited with ${r.status}:\n${r.output}`);
    return r.output;
  }

  /**
   * Brings `ifname` up with udhcpc. The initramfs has no /usr/share/udhcpc/default.script, so the test writes a
   * small one that applies the lease (address, mask, router, DNS) the way the stock script does.
   */
  async dhcp(ifname = 'eth0'): Promise<string> {
    await this.ok([
      'mkdir -p /etc',
      `printf '%s\\n' '#!/bin/sh' 'echo "lease: $1 ip=$ip subnet=$subnet router=$router dns=$dns lease=$lease"'`
        + ` '[ "$1" = bound ] || [ "$1" = renew ] || exit 0' 'ifconfig $interface $ip netmask $subnet up'`
        + ` 'for r in $router; do route add default gw $r dev $interface; done'`
        + ` ': > /etc/resolv.conf' 'for d in $dns; do echo "nameserver $d" >> /etc/resolv.conf; done' > /tmp/udhcpc.script`,
      'chmod +x /tmp/udhcpc.script',
      // udhcpc does not bring the link up itself; without this every read fails with "Network is down".
      `ip link set lo up && ip link set ${ifname} up`,
    ].join(' && '));
    return this.ok(`udhcpc -i ${ifname} -n -q -t 5 -T 3 -s /tmp/udhcpc.script 2>&1`, 120_000);
  }

  /** `poweroff` and wait for the machine to end. */
  async powerOff(timeoutMs = 180_000): Promise<MachineExit> {
    this.machine.serial.receive(Buffer.from('poweroff\n'));
    let timer: NodeJS.Timeout | undefined;
    const exit = await Promise.race([
      this.exit,
      new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`no power-off after ${timeoutMs} ms`)), timeoutMs); }),
    ]).finally(() => clearTimeout(timer));
    this.progress(exit.message);
    return exit;
  }

  async kill(): Promise<void> {
    if (this.machine.state !== 'stopped') await this.machine.stop();
  }
}
