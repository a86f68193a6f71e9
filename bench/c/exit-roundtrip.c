/*
 * Reference for bench/exit-roundtrip.ts: the raw cost of a userspace PIO exit, measured with a plain
 * KVM_RUN loop in C on the same guest bytes and vCPU state the TypeScript benchmark uses.
 *
 * usage: exit-roundtrip <guest.bin> <exits> <rounds>
 * The guest runs in real mode at 0x1000 with ECX = exits, DX = port; it executes `out dx, al` ECX times and
 * then `hlt`. Prints one line per round: "<microseconds per exit>".
 */
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define RAM_SIZE 0x200000
#define ENTRY 0x1000
#define PORT 0x80

static void die(const char *what) {
  perror(what);
  exit(1);
}

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s guest.bin exits rounds\n", argv[0]);
    return 2;
  }
  long exits = atol(argv[2]);
  int rounds = atoi(argv[3]);

  int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (kvm < 0) die("open /dev/kvm");
  int vm = ioctl(kvm, KVM_CREATE_VM, 0);
  if (vm < 0) die("KVM_CREATE_VM");
  if (ioctl(vm, KVM_SET_TSS_ADDR, 0xfffbd000) < 0) die("KVM_SET_TSS_ADDR");
  uint8_t *ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (ram == MAP_FAILED) die("mmap ram");
  struct kvm_userspace_memory_region region = {
      .slot = 0, .guest_phys_addr = 0, .memory_size = RAM_SIZE, .userspace_addr = (uint64_t)ram};
  if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0) die("KVM_SET_USER_MEMORY_REGION");

  FILE *f = fopen(argv[1], "rb");
  if (!f) die("open guest");
  size_t n = fread(ram + ENTRY, 1, 4096, f);
  fclose(f);
  if (n == 0) die("read guest");

  int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
  if (vcpu < 0) die("KVM_CREATE_VCPU");
  int mmap_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
  struct kvm_run *run = mmap(NULL, mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
  if (run == MAP_FAILED) die("mmap kvm_run");

  for (int r = 0; r < rounds; r++) {
    struct kvm_sregs sregs;
    if (ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0) die("KVM_GET_SREGS");
    struct kvm_segment *segs[] = {&sregs.cs, &sregs.ds, &sregs.es, &sregs.fs, &sregs.gs, &sregs.ss};
    for (int i = 0; i < 6; i++) {
      segs[i]->base = 0;
      segs[i]->selector = 0;
      segs[i]->limit = 0xffff;
    }
    if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0) die("KVM_SET_SREGS");
    struct kvm_regs regs;
    memset(&regs, 0, sizeof regs);
    regs.rip = ENTRY;
    regs.rflags = 2;
    regs.rcx = exits;
    regs.rdx = PORT;
    regs.rsp = 0x7000;
    if (ioctl(vcpu, KVM_SET_REGS, &regs) < 0) die("KVM_SET_REGS");

    uint64_t sum = 0;
    long seen = 0;
    double t0 = now_us();
    for (;;) {
      if (ioctl(vcpu, KVM_RUN, 0) < 0) die("KVM_RUN");
      if (run->exit_reason == KVM_EXIT_IO) {
        /* The "handler": consume the byte written, as the TS side does. */
        sum += *((uint8_t *)run + run->io.data_offset);
        seen++;
        continue;
      }
      if (run->exit_reason == KVM_EXIT_HLT) break;
      fprintf(stderr, "unexpected exit %u\n", run->exit_reason);
      return 1;
    }
    double t1 = now_us();
    if (seen != exits) {
      fprintf(stderr, "saw %ld exits, expected %ld\n", seen, exits);
      return 1;
    }
    printf("%.3f\n", (t1 - t0) / exits);
    fflush(stdout);
    (void)sum;
  }
  return 0;
}
