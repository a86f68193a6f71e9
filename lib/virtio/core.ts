/**
 * The device status / feature negotiation / queue activation state machine of virtio 1.x (spec 3.1),
 * shared by every transport. Transports translate their registers into calls on this class and deliver
 * the interrupts it asks for.
 */
import type { GuestMemory } from '../machine/guest-memory.js';
import {
  F_EVENT_IDX,
  F_INDIRECT_DESC,
  F_VERSION_1,
  STATUS_DEVICE_NEEDS_RESET,
  STATUS_DRIVER_OK,
  STATUS_FEATURES_OK,
  featureBit,
  hasFeature,
} from './constants.js';
import type { VirtioDevice, VirtioDeviceContext } from './device.js';
import { Virtqueue } from './queue.js';

/** Ring features every device gets from the common virtqueue implementation. */
export const TRANSPORT_FEATURES = featureBit(F_VERSION_1) | featureBit(F_INDIRECT_DESC) | featureBit(F_EVENT_IDX);

export interface VirtioCoreOptions {
  /** Called when a queue has used buffers to signal (index) or the configuration changed ('config'). */
  signal(kind: 'queue' | 'config', queueIndex: number): void;
  /** Where device and protocol errors go (one line each). */
  log?: (message: string) => void;
  /** Name used in log lines, e.g. "virtio-blk@0xd0000000". */
  name?: string;
}

export class VirtioCore {
  readonly queues: Virtqueue[];
  readonly offeredFeatures: bigint;
  private statusValue = 0;
  private driverFeaturesValue = 0n;
  private generation = 0;
  /** Bumped on every reset so callbacks held by an old activation cannot affect a new one. */
  private session = 0;
  private readonly log: (message: string) => void;
  private readonly name: string;

  constructor(
    readonly device: VirtioDevice,
    readonly memory: GuestMemory,
    private readonly options: VirtioCoreOptions,
  ) {
    this.name = options.name ?? `virtio-${device.deviceId}`;
    this.log = options.log ?? ((m) => console.error(m));
    this.offeredFeatures = device.deviceFeatures | TRANSPORT_FEATURES;
    this.queues = device.queueMaxSizes.map((max, i) => new Virtqueue(i, max, memory));
  }

  get status(): number {
    return this.statusValue;
  }

  get driverFeatures(): bigint {
    return this.driverFeaturesValue;
  }

  get configGeneration(): number {
    return this.generation;
  }

  get isActive(): boolean {
    return (this.statusValue & (STATUS_DRIVER_OK | STATUS_DEVICE_NEEDS_RESET)) === STATUS_DRIVER_OK;
  }

  /** True while the driver may still change features and queue configuration. */
  get isConfigurable(): boolean {
    return (this.statusValue & STATUS_DRIVER_OK) === 0;
  }

  /** 32 bits of the offered features, `word` 0 = bits 0-31. */
  deviceFeatureWord(word: number): number {
    if (word < 0 || word > 1) return 0;
    return Number((this.offeredFeatures >> BigInt(32 * word)) & 0xffff_ffffn);
  }

  setDriverFeatureWord(word: number, value: number): void {
    // Features are fixed once FEATURES_OK is set (spec 3.1.1).
    if (word < 0 || word > 1 || (this.statusValue & STATUS_FEATURES_OK)) return;
    const shift = BigInt(32 * word);
    const mask = 0xffff_ffffn << shift;
    this.driverFeaturesValue = (this.driverFeaturesValue & ~mask) | (BigInt(value >>> 0) << shift);
  }

  writeStatus(value: number): void {
    value &= 0xff;
    if (value === 0) {
      this.reset();
      return;
    }
    const old = this.statusValue;
    // NEEDS_RESET belongs to the device: the driver can neither set nor clear it except by resetting.
    let next = (value & ~STATUS_DEVICE_NEEDS_RESET) | (old & STATUS_DEVICE_NEEDS_RESET);
    if ((next & STATUS_FEATURES_OK) && !(old & STATUS_FEATURES_OK) && !this.featuresAcceptable()) {
      next &= ~STATUS_FEATURES_OK;
    }
    if ((next & STATUS_DRIVER_OK) && !(next & STATUS_FEATURES_OK)) {
      // DRIVER_OK without accepted features is a driver error; refuse to start.
      this.statusValue = next & ~STATUS_DRIVER_OK;
      this.fail('driver set DRIVER_OK without FEATURES_OK');
      return;
    }
    this.statusValue = next;
    if ((next & STATUS_DRIVER_OK) && !(old & STATUS_DRIVER_OK)) this.activate();
  }

  /** The driver notified queue `index`. Never throws: device errors become NEEDS_RESET. */
  notify(index: number): void {
    if (!this.isActive || index < 0 || index >= this.queues.length) return;
    if (!this.queues[index]!.isActive) return;
    try {
      this.device.queueNotify(index);
    } catch (e) {
      this.fail(e instanceof Error ? e.message : String(e));
    }
  }

  /** The driver enabled a queue after DRIVER_OK (allowed by some transports): start it. */
  enableLateQueue(index: number): void {
    if (!this.isActive) return;
    const q = this.queues[index];
    if (!q || q.isActive) return;
    try {
      q.activate(this.queueFeatures(), () => this.options.signal('queue', index));
    } catch (e) {
      this.fail(e instanceof Error ? e.message : String(e));
    }
  }

  readConfig(offset: number, size: number): number {
    if (offset < 0 || offset + size > this.device.configSize) return 0;
    return this.device.readConfig(offset, size);
  }

  writeConfig(offset: number, size: number, value: number): void {
    if (offset < 0 || offset + size > this.device.configSize) return;
    try {
      this.device.writeConfig(offset, size, value);
    } catch (e) {
      this.fail(e instanceof Error ? e.message : String(e));
    }
  }

  reset(): void {
    this.session++;
    this.device.reset();
    for (const q of this.queues) q.reset();
    this.statusValue = 0;
    this.driverFeaturesValue = 0n;
  }

  /** Enter DEVICE_NEEDS_RESET (once until the next reset): log, stop the queues, tell the driver. */
  fail(reason: string): void {
    if (this.statusValue & STATUS_DEVICE_NEEDS_RESET) return;
    this.statusValue |= STATUS_DEVICE_NEEDS_RESET;
    for (const q of this.queues) q.halt();
    this.log(`${this.name}: ${reason}; device needs reset`);
    this.options.signal('config', -1);
  }

  configChanged(): void {
    this.generation = (this.generation + 1) >>> 0;
    if (this.statusValue & STATUS_DRIVER_OK) this.options.signal('config', -1);
  }

  private featuresAcceptable(): boolean {
    const f = this.driverFeaturesValue;
    if ((f & ~this.offeredFeatures) !== 0n) return false;
    if (!hasFeature(f, F_VERSION_1)) return false;
    return this.device.acceptFeatures ? this.device.acceptFeatures(f) : true;
  }

  private queueFeatures(): { indirect: boolean; eventIdx: boolean } {
    return {
      indirect: hasFeature(this.driverFeaturesValue, F_INDIRECT_DESC),
      eventIdx: hasFeature(this.driverFeaturesValue, F_EVENT_IDX),
    };
  }

  private activate(): void {
    try {
      const features = this.queueFeatures();
      for (const q of this.queues) {
        if (q.ready) q.activate(features, () => this.options.signal('queue', q.index));
      }
      const session = this.session;
      const context: VirtioDeviceContext = {
        memory: this.memory,
        features: this.driverFeaturesValue,
        queues: this.queues,
        fail: (reason) => {
          if (session === this.session) this.fail(reason);
        },
        configChanged: () => this.configChanged(),
        log: (message) => this.log(`${this.name}: ${message}`),
      };
      this.device.activate(context);
    } catch (e) {
      this.fail(e instanceof Error ? e.message : String(e));
    }
  }
}
