import { describe, expect, it } from 'vitest';
import { ConfigError, MAX_VCPUS, validateMachineConfig } from '../../lib/machine/config.js';

const base = { memoryMiB: 128, kernel: '/boot/bzImage' };

function errorOf(input: unknown): ConfigError {
  try {
    validateMachineConfig(input);
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error('expected a ConfigError');
}

describe('validateMachineConfig', () => {
  it('fills in defaults for a minimal config', () => {
    expect(validateMachineConfig(base)).toEqual({
      memoryMiB: 128, cpus: 1, kernel: '/boot/bzImage', cmdline: 'console=ttyS0', accel: 'auto', serial: 'stdio',
      disks: [], nets: [],
    });
  });

  it('accepts a full config', () => {
    const c = validateMachineConfig({
      ...base, cpus: 4, initrd: '/boot/initrd', cmdline: 'console=ttyS0 quiet', accel: 'interp', serial: { file: '/tmp/s.log' },
      disks: [{ path: '/tmp/a.img' }, { path: '/tmp/b.img', readOnly: true }], nets: ['tap,ifname=tap0', 'user,hostfwd=tcp:127.0.0.1:2222-:22'],
    });
    expect(c.cpus).toBe(4);
    expect(c.initrd).toBe('/boot/initrd');
    expect(c.serial).toEqual({ file: '/tmp/s.log' });
    expect(c.disks).toEqual([{ path: '/tmp/a.img', readOnly: false }, { path: '/tmp/b.img', readOnly: true }]);
    expect(c.nets).toEqual(['tap,ifname=tap0', 'user,hostfwd=tcp:127.0.0.1:2222-:22']);
  });

  it.each([
    [{ ...base, cpus: 0 }, 'cpus', /at least 1 vCPU, got 0/],
    [{ ...base, cpus: -2 }, 'cpus', /at least 1 vCPU, got -2/],
    [{ ...base, cpus: 1.5 }, 'cpus', /must be an integer, got 1.5/],
    [{ ...base, cpus: '2' }, 'cpus', /must be an integer, got "2"/],
    [{ ...base, cpus: MAX_VCPUS + 1 }, 'cpus', /at most 254 vCPUs/],
    [{ ...base, memoryMiB: 8 }, 'memoryMiB', /8 MiB is too small.*at least 16 MiB/],
    [{ ...base, memoryMiB: 0 }, 'memoryMiB', /too small/],
    [{ ...base, memoryMiB: 64.5 }, 'memoryMiB', /whole number of MiB, got 64.5/],
    [{ kernel: 'k' }, 'memoryMiB', /required/],
    [{ memoryMiB: 64 }, 'kernel', /required/],
    [{ ...base, kernel: '' }, 'kernel', /non-empty string/],
    [{ ...base, accel: 'hvf' }, 'accel', /kvm, interp, auto/],
    [{ ...base, serial: 'tty' }, 'serial', /"stdio", "none" or \{ file/],
    [{ ...base, serial: { file: '' } }, 'serial.file', /non-empty string/],
    [{ ...base, cmdline: 'a\0b' }, 'cmdline', /NUL/],
    [{ ...base, disks: [{ path: '/x', readOnly: 'yes' }] }, 'disks[0].readOnly', /boolean/],
    [{ ...base, disks: [{}] }, 'disks[0].path', /non-empty string/],
    [{ ...base, nets: [''] }, 'nets[0]', /non-empty string/],
    [{ ...base, memory: 64 }, 'memory', /unknown configuration field/],
    [null, 'config', /expected an object/],
  ])('rejects %j naming %s', (input, field, message) => {
    const e = errorOf(input);
    expect(e.field).toBe(field);
    expect(e.message).toMatch(message);
    expect(e.message.startsWith(`${field}: `)).toBe(true);
  });

  it('lets extensions declare their own fields', () => {
    expect(() => validateMachineConfig({ ...base, vsock: 3 }, ['vsock'])).not.toThrow();
  });
});
