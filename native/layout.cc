#include "layout.h"

#include "kvm_headers.h"

#include <cstddef>

namespace nodevmm {

#define FIELD(name, expr) o.Set(name, Napi::Number::New(env, static_cast<double>(offsetof(kvm_run, expr))))

Napi::Object RunLayout(Napi::Env env) {
  Napi::Object o = Napi::Object::New(env);
  FIELD("requestInterruptWindow", request_interrupt_window);
  FIELD("immediateExit", immediate_exit);
  FIELD("exitReason", exit_reason);
  FIELD("readyForInterruptInjection", ready_for_interrupt_injection);
  FIELD("ifFlag", if_flag);
  FIELD("flags", flags);
  FIELD("cr8", cr8);
  FIELD("apicBase", apic_base);
  FIELD("hwExitReason", hw.hardware_exit_reason);
  FIELD("failEntryReason", fail_entry.hardware_entry_failure_reason);
  FIELD("failEntryCpu", fail_entry.cpu);
  FIELD("exException", ex.exception);
  FIELD("exErrorCode", ex.error_code);
  FIELD("ioDirection", io.direction);
  FIELD("ioSize", io.size);
  FIELD("ioPort", io.port);
  FIELD("ioCount", io.count);
  FIELD("ioDataOffset", io.data_offset);
  FIELD("debugException", debug.arch.exception);
  FIELD("debugPc", debug.arch.pc);
  FIELD("debugDr6", debug.arch.dr6);
  FIELD("debugDr7", debug.arch.dr7);
  FIELD("mmioPhysAddr", mmio.phys_addr);
  FIELD("mmioData", mmio.data);
  FIELD("mmioLen", mmio.len);
  FIELD("mmioIsWrite", mmio.is_write);
  FIELD("hypercallNr", hypercall.nr);
  FIELD("hypercallArgs", hypercall.args);
  FIELD("hypercallRet", hypercall.ret);
  FIELD("internalSuberror", internal.suberror);
  FIELD("internalNdata", internal.ndata);
  FIELD("internalData", internal.data);
  FIELD("emulationFlags", emulation_failure.flags);
  FIELD("emulationInsnSize", emulation_failure.insn_size);
  FIELD("emulationInsnBytes", emulation_failure.insn_bytes);
  FIELD("systemEventType", system_event.type);
  FIELD("systemEventNdata", system_event.ndata);
  FIELD("systemEventData", system_event.data);
  FIELD("msrError", msr.error);
  FIELD("msrReason", msr.reason);
  FIELD("msrIndex", msr.index);
  FIELD("msrData", msr.data);
  FIELD("eoiVector", eoi.vector);
  o.Set("size", Napi::Number::New(env, static_cast<double>(sizeof(kvm_run))));
  return o;
}

#undef FIELD
#define SIZE(name, type) o.Set(name, Napi::Number::New(env, static_cast<double>(sizeof(type))))

Napi::Object StructSizes(Napi::Env env) {
  Napi::Object o = Napi::Object::New(env);
  SIZE("regs", kvm_regs);
  SIZE("sregs", kvm_sregs);
  SIZE("segment", kvm_segment);
  SIZE("dtable", kvm_dtable);
  SIZE("fpu", kvm_fpu);
  SIZE("lapic", kvm_lapic_state);
  SIZE("vcpuEvents", kvm_vcpu_events);
  SIZE("mpState", kvm_mp_state);
  SIZE("xcrs", kvm_xcrs);
  SIZE("debugRegs", kvm_debugregs);
  SIZE("xsave", kvm_xsave);
  SIZE("translation", kvm_translation);
  SIZE("guestDebug", kvm_guest_debug);
  SIZE("msrsHeader", kvm_msrs);
  SIZE("msrEntry", kvm_msr_entry);
  SIZE("cpuidHeader", kvm_cpuid2);
  SIZE("cpuidEntry", kvm_cpuid_entry2);
  SIZE("clockData", kvm_clock_data);
  SIZE("irqRoutingHeader", kvm_irq_routing);
  SIZE("irqRoutingEntry", kvm_irq_routing_entry);
  return o;
}

#undef SIZE

}  // namespace nodevmm
