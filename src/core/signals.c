/* signals.c: Ctrl-C / SIGTERM handlers that run on their own stack.
 *
 * oneDNN 2.6's JIT GEMM points rsp into the heap while it runs, so a signal
 * frame pushed there corrupted the heap (seen: 1 in 3 Ctrl-Cs aborted;
 * oneDNN issue #4845, fixed in 3.11). One alternate stack per process, set
 * by the thread that takes the signals. */
#define _XOPEN_SOURCE 700 /* sigaltstack and SA_ONSTACK are XSI, not plain POSIX */
#include <signal.h>
#include <string.h>

#include "metalearn/core.h"

void ml_catch_stop_signals(void (*handler)(int)) {
    static char alt_stack[1 << 16];
    stack_t alt = {.ss_sp = alt_stack, .ss_size = sizeof alt_stack, .ss_flags = 0};
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    if (sigaltstack(&alt, NULL) == 0) sa.sa_flags |= SA_ONSTACK;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}
