/* Events, names and namespaces, create/open rules, access rights (EV, PU, NM, CO, AM). */
#include "shim.h"

static HANDLE auto_ev;

static DWORD waiter(void *arg) {
    (void)arg;
    /* Blocks until the main thread sets the event. */
    return WaitForSingleObject(auto_ev, INFINITE);
}

int main(void) {
    HANDLE a, m, b, o, x;

    /* EV-01, EV-06, EV-07, EV-10: auto-reset */
    H(a, "create auto unnamed", CreateEventA(NULL, FALSE, FALSE, NULL));
    WT("auto wait(0) unset", WaitForSingleObject(a, 0));
    B("auto set", SetEvent(a));
    B("auto set again", SetEvent(a));
    WT("auto wait(0) consumes", WaitForSingleObject(a, 0));
    WT("auto wait(0) again", WaitForSingleObject(a, 0));

    /* EV-02, EV-05: manual-reset */
    H(m, "create manual set", CreateEventA(NULL, TRUE, TRUE, NULL));
    WT("manual wait(0) 1", WaitForSingleObject(m, 0));
    WT("manual wait(0) 2", WaitForSingleObject(m, 0));
    B("manual reset", ResetEvent(m));
    WT("manual wait(0) after reset", WaitForSingleObject(m, 0));
    B("manual reset again", ResetEvent(m));

    /* PU-03, PU-04: pulse without waiters leaves it unset */
    B("set", SetEvent(m));
    B("pulse", PulseEvent(m));
    WT("wait(0) after pulse", WaitForSingleObject(m, 0));

    /* EV-08 / W1-07: a blocked waiter in another thread is released */
    auto_ev = a;
    {
        thread_t t = thread_start(waiter, NULL);
        B("set for blocked thread", SetEvent(a));
        thread_join(t);
        WT("auto after handing over or not", WaitForSingleObject(a, 0));
    }

    /* CO-01, CO-02, CO-04: names */
    H(b, "create named", CreateEventA(NULL, TRUE, FALSE, "ev-one"));
    H(o, "create same name", CreateEventA(NULL, FALSE, TRUE, "ev-one"));
    WT("existing kept its state", WaitForSingleObject(o, 0));
    B("set through second", SetEvent(o));
    WT("seen through first", WaitForSingleObject(b, 0));
    B("close second", CloseHandle(o));

    /* NM-01: case-sensitive */
    H(x, "open other case", OpenEventA(EVENT_ALL_ACCESS, FALSE, "EV-ONE"));
    H(x, "create other case", CreateEventA(NULL, FALSE, FALSE, "EV-ONE"));
    B("close it", CloseHandle(x));

    /* NM-06, NM-07, NM-08: namespaces */
    H(x, "open Local\\ spelling", OpenEventA(SYNCHRONIZE, FALSE, "Local\\ev-one"));
    WT("Local\\ is the same object", WaitForSingleObject(x, 0));
    B("close", CloseHandle(x));
    H(x, "open Global\\ spelling", OpenEventA(SYNCHRONIZE, FALSE, "Global\\ev-one"));
    H(x, "create Global\\", CreateEventA(NULL, TRUE, FALSE, "Global\\ev-one"));
    WT("Global\\ is another object", WaitForSingleObject(x, 0));
    H(o, "reopen Global\\", OpenEventA(SYNCHRONIZE, FALSE, "Global\\ev-one"));
    B("close", CloseHandle(o));
    B("close", CloseHandle(x));

    /* W names */
    {
        static const WCHAR wname[] = {'e', 'v', '-', 'o', 'n', 'e', 0};
        static const WCHAR wnew[] = {'e', 'v', '-', 'w', 0xE9, 0};
        H(x, "open W", OpenEventW(EVENT_ALL_ACCESS, FALSE, wname));
        WT("W open is the same object", WaitForSingleObject(x, 0));
        B("close", CloseHandle(x));
        H(x, "create W non-ASCII", CreateEventW(NULL, TRUE, TRUE, wnew));
        H(o, "open it as W", OpenEventW(SYNCHRONIZE, FALSE, wnew));
        WT("same object", WaitForSingleObject(o, 0));
        B("close", CloseHandle(o));
        B("close", CloseHandle(x));
    }

    /* NM-03, NM-04: another type's name */
    H(x, "create mutex on event name", CreateMutexA(NULL, FALSE, "ev-one"));
    H(x, "open mutex on event name", OpenMutexA(SYNCHRONIZE, FALSE, "ev-one"));
    H(x, "create semaphore on event name", CreateSemaphoreA(NULL, 1, 1, "ev-one"));

    /* NM-13, CO-08, CO-09 */
    H(x, "open NULL name", OpenEventA(EVENT_ALL_ACCESS, FALSE, NULL));
    H(x, "open missing", OpenEventA(EVENT_ALL_ACCESS, FALSE, "no-such-event"));

    /* NM-11: NULL name never reports ALREADY_EXISTS */
    H(x, "create NULL name", CreateEventA(NULL, FALSE, FALSE, NULL));
    B("close", CloseHandle(x));

    /* AM-02, AM-03, CO-10: rights per handle */
    H(x, "open synchronize only", OpenEventA(SYNCHRONIZE, FALSE, "ev-one"));
    B("set without modify", SetEvent(x));
    B("reset without modify", ResetEvent(x));
    B("pulse without modify", PulseEvent(x));
    WT("wait with synchronize", WaitForSingleObject(x, 0));
    B("close", CloseHandle(x));
    H(x, "open modify only", OpenEventA(EVENT_MODIFY_STATE, FALSE, "ev-one"));
    B("set with modify", SetEvent(x));
    WT("wait without synchronize", WaitForSingleObject(x, 0));
    B("close", CloseHandle(x));

    /* CO-13: Ex variants */
    H(x, "CreateEventEx manual+set", CreateEventExA(NULL, NULL, CREATE_EVENT_MANUAL_RESET | CREATE_EVENT_INITIAL_SET, EVENT_ALL_ACCESS));
    WT("Ex wait 1", WaitForSingleObject(x, 0));
    WT("Ex wait 2 (manual)", WaitForSingleObject(x, 0));
    B("close", CloseHandle(x));
    H(x, "CreateEventEx synchronize only", CreateEventExA(NULL, "ev-ex", 0, SYNCHRONIZE));
    B("set without modify", SetEvent(x));
    H(o, "CreateEventEx existing", CreateEventExA(NULL, "ev-ex", 0, EVENT_ALL_ACCESS));
    B("set", SetEvent(o));
    WT("auto consumed", WaitForSingleObject(x, 0));
    B("close", CloseHandle(o));
    B("close", CloseHandle(x));

    /* HC-07: type-specific calls on an event */
    B("ReleaseMutex on event", ReleaseMutex(b));
    B("ReleaseSemaphore on event", ReleaseSemaphore(b, 1, NULL));
    B("CancelWaitableTimer on event", CancelWaitableTimer(b));

    /* LT-01, NM-16: last close frees the name */
    B("close named", CloseHandle(b));
    H(x, "open after last close", OpenEventA(SYNCHRONIZE, FALSE, "ev-one"));
    H(x, "create again is new", CreateEventA(NULL, TRUE, FALSE, "ev-one"));
    WT("fresh state", WaitForSingleObject(x, 0));
    B("close", CloseHandle(x));

    B("close a", CloseHandle(a));
    B("close m", CloseHandle(m));
    return 0;
}
