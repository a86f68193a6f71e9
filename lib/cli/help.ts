/** Help texts, kept next to each other so the CLI reads as one document. */

export const MAIN_HELP = `nodevmm — a virtual machine monitor for Node.js (KVM, or a TypeScript x86 interpreter)

Usage:
  nodevmm run [options]             boot a guest (the reference guest when no --kernel is given)
  nodevmm guest build [options]     build the reference guest (kernels, initramfs, rootfs) into the cache
  nodevmm guest path                print where the reference guest is (or would be) cached
  nodevmm img create [options] FILE [SIZE]
                                    create a disk image (raw or qcow2, optionally over a backing file)
  nodevmm help [COMMAND]            show help for a command
  nodevmm --version

Run 'nodevmm help run' for the boot options.
Environment: NODEVMM_CACHE (default ~/.cache/nodevmm), NODEVMM_DEBUG=1 (print stack traces on errors).
`;

export const RUN_HELP = `Usage: nodevmm run [options]

Boot a Linux (x86 boot protocol: bzImage or vmlinux ELF) or multiboot v1 kernel.
With no --kernel, boots the reference guest (building it first if it is not cached).

Machine:
  -k, --kernel PATH        kernel image: bzImage, vmlinux ELF64/ELF32, or a multiboot v1 ELF32
  -i, --initrd PATH        initial ramdisk (for multiboot kernels: loaded as module 0)
  -a, --append STRING      kernel command line (default for the reference guest: console=ttyS0 ...)
  -m, --memory SIZE        guest RAM, in MiB unless suffixed: 256, 512M, 2G (default 256M)
  -c, --cpus N             number of vCPUs (default 1)
      --accel ACCEL        kvm | interp | auto (default auto: KVM only where it runs guest
                           supervisor code natively; otherwise the TypeScript interpreter)
      --arch ARCH          reference guest to boot when --kernel is absent: x86_64 | i386 (default x86_64)

Devices:
      --serial DEST        stdio | file:PATH | none (default stdio). On stdio the terminal is in raw
                           mode: press Ctrl-A x to quit, Ctrl-A h for help.
      --disk PATH[,ro]     attach a virtio-blk disk (raw or qcow2); repeatable
      --net SPEC           user[,hostfwd=tcp:127.0.0.1:HOSTPORT-:GUESTPORT] | tap,ifname=NAME |
                           socket,listen=HOST:PORT | socket,connect=HOST:PORT; repeatable. A virtio-net
                           device each; tap needs CAP_NET_ADMIN (or an existing TAP you may open); socket
                           joins two VMs (QEMU -netdev socket framing). Add ,mac=52:54:00:xx:xx:xx to
                           set the NIC's address (default: 52:54:00:12:34:56+index for user, random
                           for tap and socket, which can join other VMs)
      --rng                attach a virtio-rng device (host CSPRNG)
      --virtio-transport T mmio | pci (default mmio): virtio-mmio slots announced on the kernel
                           command line, or modern virtio-pci devices on PCI bus 0 (ports
                           0xcf8/0xcfc, BARs preassigned at 0xe0000000, MSI-X interrupts)

Output:
  -q, --quiet              do not print nodevmm's own status lines (boot marker, exit reason)

A guest reboot restarts the machine (memory cleared, kernel reloaded).

Exit status: the guest's isa-debug-exit code as (code << 1) | 1 when it wrote port 0xf4 (modulo 256);
0 after a clean guest power-off or Ctrl-A x; 1 on a VMM error or guest crash (triple fault, emulation
failure); 2 on bad usage; 130 / 143 when stopped by SIGINT / SIGTERM.

Examples:
  nodevmm run                                    boot the reference guest to a shell
  nodevmm run --accel interp --cpus 2            ... on the interpreter, with 2 vCPUs
  nodevmm run -k bzImage -i initrd.gz -a "console=ttyS0" -m 512M
  nodevmm run -k test.elf --serial file:out.log  a multiboot test kernel, output to a file
`;

export const GUEST_HELP = `Usage: nodevmm guest build [--arch x86_64|i386|all] [--force] [--jobs N]
       nodevmm guest path

Builds the reference guest from Debian packages (linux-source-6.1, busybox-static, e2fsprogs):
a minimal x86_64 kernel, an i386 kernel, busybox initramfs images and an ext4 rootfs.
Artifacts are cached in $NODEVMM_CACHE/guest/<hash of the build inputs>/ (default ~/.cache/nodevmm);
a build is skipped when the cache already holds it. Missing apt packages are installed (needs root or sudo).
A full build takes about 8 minutes on 2 cores.
`;

export const IMG_HELP = `Usage: nodevmm img create [-f raw|qcow2] [-b BACKING [-F raw|qcow2]] FILE [SIZE]

Create a disk image. With -b, FILE is a qcow2 (v3) copy-on-write overlay of BACKING: guest writes land in
FILE and BACKING is never modified (like 'qemu-img create -f qcow2 -b BACKING -F FMT FILE').
SIZE is in bytes unless suffixed (K, M, G, T); it defaults to the backing file's size.

  -f FORMAT     raw or qcow2 (default qcow2 with -b, otherwise raw)
  -b BACKING    backing file
  -F FORMAT     format of the backing file (default: detected)
`;
