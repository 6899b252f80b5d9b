/* Waitable timers: relative, absolute, periodic, cancel, manual vs synchronization,
 * completion routines as APCs on the setting thread (TM, W1-09). No line depends on how
 * long anything takes: "not yet" checks use due times minutes away, "fired" checks
 * wait without a timeout. */
#include "shim.h"

static int apc_calls;
static void CALLBACK on_timer(LPVOID arg, DWORD low, DWORD high) {
    (void)low;
    (void)high;
    *(int *)arg += 1;
    apc_calls++;
}

static ULONG_PTR user_apc_data;
static void CALLBACK user_apc(ULONG_PTR data) { user_apc_data = data; }

int main(void) {
    HANDLE t, m, x;
    LARGE_INTEGER due;
    int hits = 0;

    /* TM-01 */
    H(t, "create sync timer", CreateWaitableTimerA(NULL, FALSE, NULL));
    WT("new timer is unsignaled", WaitForSingleObject(t, 0));

    /* TM-02, TM-08, TM-11: relative one-shot */
    due.QuadPart = -1; /* 100 ns from now */
    B("set relative", SetWaitableTimer(t, &due, 0, NULL, NULL, FALSE));
    WT("fires", WaitForSingleObject(t, INFINITE));
    WT("sync timer consumed by the wait", WaitForSingleObject(t, 0));

    /* TM-15, TM-17: far due time, cancel */
    due.QuadPart = -600LL * 10000000; /* ten minutes */
    B("set ten minutes out", SetWaitableTimer(t, &due, 0, NULL, NULL, FALSE));
    WT("not yet", WaitForSingleObject(t, 0));
    B("cancel", CancelWaitableTimer(t));
    B("cancel inactive", CancelWaitableTimer(t));
    WT("still unsignaled", WaitForSingleObject(t, 0));

    /* TM-04, TM-06: absolute due times */
    due.QuadPart = 0;
    B("set absolute 0 (past)", SetWaitableTimer(t, &due, 0, NULL, NULL, FALSE));
    WT("fires at once", WaitForSingleObject(t, INFINITE));
    now_filetime(&due);
    due.QuadPart -= 10000000; /* a second ago */
    B("set absolute in the past", SetWaitableTimer(t, &due, 0, NULL, NULL, FALSE));
    WT("fires", WaitForSingleObject(t, INFINITE));
    now_filetime(&due);
    due.QuadPart += 600LL * 10000000;
    B("set absolute ten minutes ahead", SetWaitableTimer(t, &due, 0, NULL, NULL, FALSE));
    WT("not yet", WaitForSingleObject(t, 0));

    /* TM-09, TM-18: periodic */
    due.QuadPart = -1;
    B("set periodic 5 ms", SetWaitableTimer(t, &due, 5, NULL, NULL, FALSE));
    WT("period 1", WaitForSingleObject(t, INFINITE));
    WT("period 2", WaitForSingleObject(t, INFINITE));
    WT("period 3", WaitForSingleObject(t, INFINITE));
    B("cancel periodic", CancelWaitableTimer(t));

    /* TM-23 (TM-07, where Wine differs from Windows, is in spec_errors.c) */
    due.QuadPart = 10000;
    B("absolute +10000 with period", SetWaitableTimer(t, &due, 500, NULL, NULL, FALSE));
    due.QuadPart = -10000;
    B("relative -10000 with period", SetWaitableTimer(t, &due, 500, NULL, NULL, FALSE));
    B("cancel", CancelWaitableTimer(t));

    /* TM-10, TM-16: manual-reset timer */
    H(m, "create manual timer", CreateWaitableTimerA(NULL, TRUE, "tm-manual"));
    due.QuadPart = -1;
    B("set", SetWaitableTimer(m, &due, 0, NULL, NULL, FALSE));
    WT("fires", WaitForSingleObject(m, INFINITE));
    WT("stays signaled", WaitForSingleObject(m, 0));
    due.QuadPart = -600LL * 10000000;
    B("set again resets it", SetWaitableTimer(m, &due, 0, NULL, NULL, FALSE));
    WT("unsignaled after set", WaitForSingleObject(m, 0));
    B("cancel", CancelWaitableTimer(m));

    /* CO-06, names, rights */
    H(x, "create existing (ignores manual flag)", CreateWaitableTimerA(NULL, FALSE, "tm-manual"));
    B("close", CloseHandle(x));
    H(x, "open synchronize only", OpenWaitableTimerA(SYNCHRONIZE, FALSE, "tm-manual"));
    due.QuadPart = -1;
    B("set without modify", SetWaitableTimer(x, &due, 0, NULL, NULL, FALSE));
    B("cancel without modify", CancelWaitableTimer(x));
    B("close", CloseHandle(x));
    H(x, "CreateWaitableTimerEx manual", CreateWaitableTimerExA(NULL, NULL, CREATE_WAITABLE_TIMER_MANUAL_RESET, TIMER_ALL_ACCESS));
    B("set", SetWaitableTimer(x, &due, 0, NULL, NULL, FALSE));
    WT("fires", WaitForSingleObject(x, INFINITE));
    WT("manual: stays", WaitForSingleObject(x, 0));
    B("close", CloseHandle(x));
    H(x, "open missing", OpenWaitableTimerA(TIMER_ALL_ACCESS, FALSE, "tm-missing"));
    H(x, "open NULL name", OpenWaitableTimerA(TIMER_ALL_ACCESS, FALSE, NULL));

    /* HC-07 */
    B("SetEvent on timer", SetEvent(t));
    x = CreateEventA(NULL, FALSE, FALSE, "tm-ev");
    B("SetWaitableTimer on event", SetWaitableTimer(x, &due, 0, NULL, NULL, FALSE));
    B("close", CloseHandle(x));

    /* TM-24, W1-09: completion routine as an APC on this thread */
    due.QuadPart = -1;
    B("set with completion routine", SetWaitableTimer(t, &due, 0, on_timer, &hits, FALSE));
    WT("non-alertable wait sees the timer", WaitForSingleObject(t, INFINITE));
    V("routine has not run yet", hits);
    WT("alertable SleepEx(0) runs it", SleepEx(0, TRUE));
    V("routine ran", hits);
    WT("nothing queued: SleepEx(0) times out", SleepEx(0, TRUE));
    B("set with routine again", SetWaitableTimer(t, &due, 0, on_timer, &hits, FALSE));
    WT("alertable infinite SleepEx", SleepEx(INFINITE, TRUE));
    V("routine ran", hits);
    WT("the timer itself is still signaled", WaitForSingleObject(t, 0));
    due.QuadPart = -600LL * 10000000;
    B("set with routine ten minutes out", SetWaitableTimer(t, &due, 0, on_timer, &hits, FALSE));
    WT("alertable wait(0) on the timer", WaitForSingleObjectEx(t, 0, TRUE));
    B("cancel drops the routine", CancelWaitableTimer(t));
    WT("alertable SleepEx(0)", SleepEx(0, TRUE));
    V("APC calls in all", apc_calls);

    /* QueueUserAPC to this thread */
    B("QueueUserAPC", QueueUserAPC(user_apc, GetCurrentThread(), 42) != 0);
    WT("non-alertable wait does not run it", WaitForSingleObject(m, 0));
    V("data before", user_apc_data);
    WT("alertable wait runs it", WaitForSingleObjectEx(m, INFINITE, TRUE));
    V("data after", user_apc_data);
    B("QueueUserAPC", QueueUserAPC(user_apc, GetCurrentThread(), 7) != 0);
    {
        HANDLE two[2];
        two[0] = m;
        two[1] = t;
        WT("alertable wait-any runs it", WaitForMultipleObjectsEx(2, two, FALSE, INFINITE, TRUE));
        V("data", user_apc_data);
        B("QueueUserAPC", QueueUserAPC(user_apc, GetCurrentThread(), 9) != 0);
        WT("alertable wait-all runs it", WaitForMultipleObjectsEx(2, two, TRUE, INFINITE, TRUE));
        V("data", user_apc_data);
    }

    B("close", CloseHandle(t));
    B("close", CloseHandle(m));
    return 0;
}
