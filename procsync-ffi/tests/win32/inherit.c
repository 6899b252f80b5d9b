/* Inheritance into child processes (HI-01..HI-07, HI-09, CO-11, CO-12): the child gets
 * inheritable handles under the same values, and nothing else. Values reach the child
 * out of band (a file), as HI-09 describes. */
#include "shim.h"

static int child(const char *role) {
    HANDLE ev = (HANDLE)(ULONG_PTR)get_value("ev.val");
    HANDLE sem = (HANDLE)(ULONG_PTR)get_value("sem.val");
    HANDLE mx = (HANDLE)(ULONG_PTR)get_value("mx.val");
    BOOL r;
    DWORD e;
    char b[32];
    child_open(role);
    SetLastError(UNTOUCHED);
    r = SetEvent(ev);
    e = GetLastError();
    C("SetEvent(inherited value): %s err=%lu", r ? "TRUE" : "FALSE", r ? 0ul : (unsigned long)e);
    SetLastError(UNTOUCHED);
    r = ReleaseSemaphore(sem, 1, NULL);
    e = GetLastError();
    C("ReleaseSemaphore(value): %s err=%lu", r ? "TRUE" : "FALSE", r ? 0ul : (unsigned long)e);
    if (mx) {
        C("wait(0) on the parent's mutex: %s", wait_name(WaitForSingleObject(mx, 0), b));
        SetLastError(UNTOUCHED);
        r = ReleaseMutex(mx);
        e = GetLastError();
        C("ReleaseMutex: %s err=%lu", r ? "TRUE" : "FALSE", (unsigned long)e);
    }
    return 0;
}

int main(int argc, char **argv) {
    SECURITY_ATTRIBUTES sa;
    HANDLE ev, sem, mx, x;
    DWORD flags;
    proc_t p;

    if (argc > 1) return child(argv[1]);

    sa.nLength = sizeof sa;
    sa.lpSecurityDescriptor = NULL;
    sa.bInheritHandle = TRUE;
    H(ev, "create inheritable event", CreateEventA(&sa, FALSE, FALSE, NULL));
    H(sem, "create non-inheritable semaphore", CreateSemaphoreA(NULL, 0, 5, NULL));
    H(mx, "create inheritable mutex, owned", CreateMutexA(&sa, TRUE, NULL));
    flags = 99;
    GetHandleInformation(ev, &flags);
    V("event flags", flags);
    GetHandleInformation(sem, &flags);
    V("semaphore flags", flags);

    /* HI-01, HI-02, HI-03, HI-06, HI-07 */
    put_value("ev.val", (ULONG_PTR)ev);
    put_value("sem.val", (ULONG_PTR)sem);
    put_value("mx.val", (ULONG_PTR)mx);
    p = proc_spawn(argv[0], "inherit", TRUE);
    V("child exit", proc_wait(p));
    child_print("inherit");
    WT("the child's SetEvent woke us", WaitForSingleObject(ev, 0));
    WT("semaphore untouched", WaitForSingleObject(sem, 0));
    B("still the mutex owner", ReleaseMutex(mx));

    /* HI-04: bInheritHandles = FALSE */
    put_value("ev.val", (ULONG_PTR)ev);
    put_value("sem.val", (ULONG_PTR)sem);
    put_value("mx.val", 0);
    p = proc_spawn(argv[0], "none", FALSE);
    V("child exit", proc_wait(p));
    child_print("none");
    WT("event not set", WaitForSingleObject(ev, 0));

    /* HI-05: flags toggled before spawning */
    B("semaphore inheritable now", SetHandleInformation(sem, HANDLE_FLAG_INHERIT, HANDLE_FLAG_INHERIT));
    B("event not inheritable now", SetHandleInformation(ev, HANDLE_FLAG_INHERIT, 0));
    put_value("ev.val", (ULONG_PTR)ev);
    put_value("sem.val", (ULONG_PTR)sem);
    put_value("mx.val", 0);
    p = proc_spawn(argv[0], "toggled", TRUE);
    V("child exit", proc_wait(p));
    child_print("toggled");
    WT("event not set", WaitForSingleObject(ev, 0));
    WT("semaphore released by the child", WaitForSingleObject(sem, 0));

    /* CO-11: OpenX(bInheritHandle) */
    x = CreateEventA(NULL, FALSE, FALSE, "inh-named");
    H(ev, "open inheritable", OpenEventA(EVENT_ALL_ACCESS, TRUE, "inh-named"));
    GetHandleInformation(ev, &flags);
    V("flags", flags);
    B("close", CloseHandle(ev));
    H(ev, "open non-inheritable", OpenEventA(EVENT_ALL_ACCESS, FALSE, "inh-named"));
    GetHandleInformation(ev, &flags);
    V("flags", flags);
    B("close", CloseHandle(ev));
    B("close", CloseHandle(x));
    B("close", CloseHandle(sem));
    B("close", CloseHandle(mx));
    return 0;
}
