// <linux/kvm.h> for C++. The uapi headers declare flexible arrays through __DECLARE_FLEX_ARRAY, which in C++
// wraps them in a struct holding an empty struct (size 1 in C++, 0 in C). That changes sizeof() of
// kvm_cpuid2, kvm_msrs, kvm_xsave, kvm_irq_routing... and with it the ioctl numbers (_IOWR encodes the size),
// so the kernel would reject them with EINVAL. Redefine the macro as a plain flexible array member (a GNU C++
// extension with C layout) before the KVM headers use it.
#pragma once

#include <linux/stddef.h>

#undef __DECLARE_FLEX_ARRAY
#define __DECLARE_FLEX_ARRAY(TYPE, NAME) TYPE NAME[0]

#include <linux/kvm.h>

// C sizes of the structures whose size is encoded in an ioctl number.
static_assert(sizeof(struct kvm_cpuid2) == 8, "kvm_cpuid2 header must have its C size");
static_assert(sizeof(struct kvm_msrs) == 8, "kvm_msrs header must have its C size");
static_assert(sizeof(struct kvm_msr_list) == 4, "kvm_msr_list header must have its C size");
static_assert(sizeof(struct kvm_xsave) == 4096, "kvm_xsave must have its C size");
static_assert(sizeof(struct kvm_irq_routing) == 8, "kvm_irq_routing header must have its C size");
static_assert(sizeof(struct kvm_regs) == 144, "kvm_regs");
static_assert(sizeof(struct kvm_sregs) == 312, "kvm_sregs");
static_assert(sizeof(struct kvm_run) <= 4096, "kvm_run");
