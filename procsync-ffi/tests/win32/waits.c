/* Wait-any, wait-all, SignalObjectAndWait, the current-process pseudo-handle, bad
 * handles and handle flags (WY, WL, SW, HC). */
#include "shim.h"

static HANDLE ev_a, ev_b;

static DWORD set_both_later(void *arg) {
    (void)arg;
    SetEvent(ev_a);
    SetEvent(ev_b);
    return 0;
}

int main(void) {
    HANDLE e[64], h[4], sem, mx, man, aut, x;
    DWORD flags, r;
    LONG prev;
    int i;

    /* WY-01, WY-02, WL-13 */
    for (i = 0; i < 64; i++) e[i] = CreateEventA(NULL, i == 0, FALSE, NULL);
    WT("wait-any of 0", WaitForMultipleObjects(0, e, FALSE, 0));
    WT("wait-any of 65", WaitForMultipleObjects(65, e, FALSE, 0));
    WT("wait-all of 0", WaitForMultipleObjects(0, e, TRUE, 0));
    WT("wait-any of 64, none set", WaitForMultipleObjects(64, e, FALSE, 0));

    /* WY-03, WY-04 */
    for (i = 0; i < 64; i++) SetEvent(e[i]);
    WT("all set: lowest index", WaitForMultipleObjects(64, e, FALSE, 0));
    WT("manual event 0 stays", WaitForMultipleObjects(64, e, FALSE, 0));
    ResetEvent(e[0]);
    WT("next", WaitForMultipleObjects(64, e, FALSE, 0));
    WT("next", WaitForMultipleObjects(64, e, FALSE, 0));
    WT("next", WaitForMultipleObjects(64, e, FALSE, 0));
    for (i = 0; i < 60; i++) WaitForMultipleObjects(64, e, FALSE, 0);
    WT("after all consumed", WaitForMultipleObjects(64, e, FALSE, 0));
    WT("wait-all of 64 manual+auto all unset", WaitForMultipleObjects(64, e, TRUE, 0));
    for (i = 0; i < 64; i++) SetEvent(e[i]);
    WT("wait-all of 64 all set", WaitForMultipleObjects(64, e, TRUE, 0));
    WT("auto events were reset", WaitForMultipleObjects(63, e + 1, FALSE, 0));
    WT("manual event stays", WaitForSingleObject(e[0], 0));
    for (i = 0; i < 64; i++) CloseHandle(e[i]);

    /* WY-05, WY-08, SM-11 */
    sem = CreateSemaphoreA(NULL, 2, 3, NULL);
    mx = CreateMutexA(NULL, FALSE, NULL);
    h[0] = sem;
    h[1] = mx;
    WT("[sem 2, mutex] any", WaitForMultipleObjects(2, h, FALSE, 0));
    WT("[sem 1, mutex] any", WaitForMultipleObjects(2, h, FALSE, 0));
    WT("[sem 0, mutex] any", WaitForMultipleObjects(2, h, FALSE, 0));
    WT("[sem 0, own mutex] any", WaitForMultipleObjects(2, h, FALSE, 0));
    B("release mutex", ReleaseMutex(mx));
    B("release mutex", ReleaseMutex(mx));
    B("release mutex (not owned)", ReleaseMutex(mx));
    ReleaseSemaphore(sem, 1, NULL);
    h[1] = sem;
    WT("same semaphore twice, any", WaitForMultipleObjects(2, h, FALSE, 0));
    prev = -1;
    ReleaseSemaphore(sem, 1, &prev);
    V("decremented once (count before release)", prev);

    /* WL-05, WL-04 */
    h[0] = sem;
    h[1] = mx;
    WT("[sem 1, mutex] all", WaitForMultipleObjects(2, h, TRUE, 0));
    WT("[sem 0, own mutex] all", WaitForMultipleObjects(2, h, TRUE, 0));
    prev = -1;
    ReleaseSemaphore(sem, 1, &prev);
    V("timed-out wait-all took nothing (count)", prev);
    B("release mutex", ReleaseMutex(mx));
    B("release mutex (not owned: wait-all took it once)", ReleaseMutex(mx));
    /* WL-07 (Wine's server crashes on it) is in spec_errors.c */

    /* WL-02, WL-08: a blocked wait-all completes when the last object is set */
    ev_a = CreateEventA(NULL, FALSE, FALSE, NULL);
    ev_b = CreateEventA(NULL, TRUE, FALSE, NULL);
    h[0] = ev_a;
    h[1] = ev_b;
    {
        thread_t t = thread_start(set_both_later, NULL);
        WT("blocked wait-all", WaitForMultipleObjects(2, h, TRUE, INFINITE));
        thread_join(t);
    }
    WT("auto reset by wait-all", WaitForSingleObject(ev_a, 0));
    WT("manual stays", WaitForSingleObject(ev_b, 0));

    /* SW-01..SW-08 */
    aut = CreateEventA(NULL, FALSE, FALSE, NULL);
    man = CreateEventA(NULL, TRUE, TRUE, NULL);
    WT("SOAW NULL signal", SignalObjectAndWait(NULL, man, 0, FALSE));
    WT("SOAW NULL wait", SignalObjectAndWait(aut, NULL, 0, FALSE));
    WT("signal not done", WaitForSingleObject(aut, 0));
    WT("SOAW signal auto, wait manual", SignalObjectAndWait(aut, man, 0, FALSE));
    WT("auto was signaled", WaitForSingleObject(aut, 0));
    WT("SOAW same auto event", SignalObjectAndWait(aut, aut, 0, FALSE));
    WT("ends unsignaled", WaitForSingleObject(aut, 0));
    ResetEvent(man);
    WT("SOAW wait on unset, timeout 0", SignalObjectAndWait(aut, man, 0, FALSE));
    WT("signal stays", WaitForSingleObject(aut, 0));
    {
        HANDLE s0 = CreateSemaphoreA(NULL, 0, 1, NULL), s1 = CreateSemaphoreA(NULL, 1, 1, NULL);
        WT("SOAW sem0 -> sem1", SignalObjectAndWait(s0, s1, 0, FALSE));
        WT("again: sem0 at max", SignalObjectAndWait(s0, s1, 0, FALSE));
        WT("sem1 was not waited on", WaitForSingleObject(s1, 0));
        CloseHandle(s0);
        CloseHandle(s1);
    }
    WT("SOAW mutex not owned", SignalObjectAndWait(mx, man, 0, FALSE));
    WaitForSingleObject(mx, 0);
    WT("SOAW owned mutex on itself", SignalObjectAndWait(mx, mx, 0, FALSE));
    B("still owner", ReleaseMutex(mx));
    B("released", ReleaseMutex(mx));
    {
        HANDLE tm = CreateWaitableTimerA(NULL, TRUE, NULL);
        WT("SOAW timer as signal", SignalObjectAndWait(tm, man, 0, FALSE));
        CloseHandle(tm);
    }

    /* HC-09: the current-process pseudo-handle */
    WT("wait on GetCurrentProcess()", WaitForSingleObject(GetCurrentProcess(), 0));
    h[0] = GetCurrentProcess();
    h[1] = aut;
    SetEvent(aut);
    WT("wait-any [process, set event]", WaitForMultipleObjects(2, h, FALSE, 0));
    WT("wait-any [process, unset event]", WaitForMultipleObjects(2, h, FALSE, 0));
    B("CloseHandle(GetCurrentProcess())", CloseHandle(GetCurrentProcess()));
    WT("wait on INVALID_HANDLE_VALUE (the same value)", WaitForSingleObject(INVALID_HANDLE_VALUE, 0));
    WT("wait on GetCurrentThread()", WaitForSingleObject(GetCurrentThread(), 0));

    /* HC-08: low bits ignored, garbage refused */
    SetEvent(aut);
    WT("handle | 1", WaitForSingleObject((HANDLE)((ULONG_PTR)aut | 1), 0));
    SetEvent(aut);
    WT("handle | 3", WaitForSingleObject((HANDLE)((ULONG_PTR)aut | 3), 0));
    V("handle is a multiple of 4", (ULONG_PTR)aut % 4);
    V("handle fits in 32 bits", (ULONG_PTR)aut <= 0xFFFFFFFFu);
    WT("NULL handle", WaitForSingleObject(NULL, 0));
    WT("garbage handle", WaitForSingleObject((HANDLE)(ULONG_PTR)0xdeadbee0, 0));
    B("SetEvent on garbage", SetEvent((HANDLE)(ULONG_PTR)0x7ff0));
    h[0] = aut;
    h[1] = (HANDLE)(ULONG_PTR)0xdeadbee0;
    SetEvent(aut);
    WT("wait-any with one bad handle", WaitForMultipleObjects(2, h, FALSE, 0));
    WT("the good one was not consumed", WaitForSingleObject(aut, 0));

    /* HC-01..HC-06 */
    x = CreateEventA(NULL, FALSE, FALSE, NULL);
    flags = 99;
    B("GetHandleInformation", GetHandleInformation(x, &flags));
    V("flags", flags);
    B("protect from close", SetHandleInformation(x, HANDLE_FLAG_PROTECT_FROM_CLOSE, HANDLE_FLAG_PROTECT_FROM_CLOSE));
    B("set inherit", SetHandleInformation(x, HANDLE_FLAG_INHERIT, HANDLE_FLAG_INHERIT));
    GetHandleInformation(x, &flags);
    V("flags", flags);
    B("clear inherit only", SetHandleInformation(x, HANDLE_FLAG_INHERIT, 0));
    GetHandleInformation(x, &flags);
    V("flags", flags);
    B("close protected", CloseHandle(x));
    B("still usable", SetEvent(x));
    B("unprotect", SetHandleInformation(x, HANDLE_FLAG_PROTECT_FROM_CLOSE, 0));
    B("close", CloseHandle(x));
    B("close again", CloseHandle(x));
    WT("wait on closed", WaitForSingleObject(x, 0));
    B("SetEvent on closed", SetEvent(x));
    B("GetHandleInformation on closed", GetHandleInformation(x, &flags));
    B("SetHandleInformation on closed", SetHandleInformation(x, HANDLE_FLAG_INHERIT, 0));

    CloseHandle(sem);
    CloseHandle(mx);
    CloseHandle(aut);
    CloseHandle(man);
    CloseHandle(ev_a);
    CloseHandle(ev_b);
    r = 0;
    (void)r;
    return 0;
}
