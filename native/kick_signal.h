// The signal used to kick a vCPU thread out of KVM_RUN. A real-time signal that Node and libuv do not use,
// with a handler (it sets immediate_exit on the thread's current kvm_run) installed without SA_RESTART, so a blocked
// KVM_RUN returns EINTR.
#pragma once

namespace nodevmm {

// Installs the handler once per process and returns the signal number.
int KickSignal();

}  // namespace nodevmm
