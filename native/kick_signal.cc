#include "kick_signal.h"

#include <signal.h>

#include <mutex>

#include "inline_run.h"

namespace nodevmm {

// Makes the interrupted thread's next (or current) KVM_RUN return EINTR even if the signal lands just before
// the ioctl is entered.
static void KickHandler(int) { MarkImmediateExitForSignal(); }

int KickSignal() {
  static int sig = -1;
  static std::once_flag once;
  std::call_once(once, [] {
    // Prefer SIGRTMIN+6; skip any real-time signal someone else in the process already handles.
    for (int s = SIGRTMIN + 6; s <= SIGRTMAX - 2; s++) {
      struct sigaction old {};
      if (sigaction(s, nullptr, &old) != 0) continue;
      bool handled = (old.sa_flags & SA_SIGINFO) ? old.sa_sigaction != nullptr
                                                 : (old.sa_handler != SIG_DFL && old.sa_handler != SIG_IGN);
      if (handled) continue;
      struct sigaction sa {};
      sa.sa_handler = KickHandler;
      sigemptyset(&sa.sa_mask);
      sa.sa_flags = 0;  // no SA_RESTART: KVM_RUN must come back with EINTR
      if (sigaction(s, &sa, nullptr) == 0) {
        sig = s;
        break;
      }
    }
  });
  return sig;
}

}  // namespace nodevmm
