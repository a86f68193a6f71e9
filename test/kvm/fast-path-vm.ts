/**
 * A test VM with the in-kernel irqchip, the PC GSI routes and (optionally) the KVM fast paths over them: the
 * common start of the virtio-mmio and virtio-pci fast-path rigs.
 */
import type { AcceleratorFastPaths } from '../../lib/accel/accelerator.js';
import { createKvmFastPaths, GsiRouter } from '../../lib/accel/kvm/fast-paths.js';
import { IOAPIC_PINS, pcGsiRouting } from '../../lib/accel/kvm/kvm-accelerator.js';
import { Cap } from '../../lib/kvm/index.js';
import { createTestVm, type TestVm } from './harness.js';

/** The caller owns `t` (close it); `fast` is undefined exactly when `withFastPaths` is false. */
export function createFastPathVm(withFastPaths: boolean): { t: TestVm; fast: AcceleratorFastPaths | undefined } {
  const t = createTestVm({ ramSize: 0x400000, irqchip: true });
  try {
    const routes = pcGsiRouting();
    t.vm.setGsiRouting(routes);
    const fast = withFastPaths
      ? createKvmFastPaths(t.kvm, t.vm, new GsiRouter(t.vm, routes, IOAPIC_PINS, t.vm.checkExtension(Cap.IRQ_ROUTING)))
      : undefined;
    if (withFastPaths && !fast) throw new Error('this KVM or addon lacks ioeventfd/irqfd/GSI routing/EventFd.watch');
    return { t, fast };
  } catch (e) {
    t.close();
    throw e;
  }
}
