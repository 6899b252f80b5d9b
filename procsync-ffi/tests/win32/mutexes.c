/* Mutexes: ownership, recursion, abandonment by thread exit and by process kill,
 * create/open rules and rights (MX, AB, CO-03, CO-09, AM-07, AM-09, AM-11). */
#include "shim.h"

static HANDLE mx;
static HANDLE go, done;

static DWORD try_from_other_thread(void *arg) {
    (void)arg;
    char b[32];
    DWORD r = WaitForSingleObject(mx, 0);
    printf("other thread wait(0): %s\n", wait_name(r, b));
    SetLastError(UNTOUCHED);
    BOOL ok = ReleaseMutex(mx);
    printf("other thread release: %s", ok ? "TRUE" : "FALSE");
    say_err();
    return 0;
}

static DWORD take_and_exit(void *arg) {
    (void)arg;
    char b[32];
    DWORD r = WaitForSingleObject(mx, INFINITE);
    printf("thread takes it: %s\n", wait_name(r, b));
    r = WaitForSingleObject(mx, INFINITE);
    printf("thread takes it again: %s\n", wait_name(r, b));
    fflush(stdout);
    return 0; /* exits owning it twice: abandoned (AB-01, AB-05) */
}

static int child(void) {
    HANDLE m = OpenMutexA(SYNCHRONIZE, FALSE, "mx-kill");
    HANDLE ready = OpenEventA(EVENT_MODIFY_STATE, FALSE, "mx-ready");
    if (!m || !ready) return 10;
    if (WaitForSingleObject(m, INFINITE) != WAIT_OBJECT_0) return 11;
    SetEvent(ready);
    Sleep(INFINITE); /* killed while owning it */
    return 12;
}

int main(int argc, char **argv) {
    HANDLE m2, x, ready;
    int i;
    DWORD r = 0;

    if (argc > 1 && strcmp(argv[1], "child") == 0) return child();

    /* MX-01, MX-03, MX-04, MX-14 */
    H(mx, "create unowned", CreateMutexA(NULL, FALSE, NULL));
    B("release unowned", ReleaseMutex(mx));
    WT("acquire", WaitForSingleObject(mx, 0));
    for (i = 0; i < 40; i++) r |= WaitForSingleObject(mx, i % 2 ? 0 : INFINITE);
    V("40 recursive acquisitions all WAIT_OBJECT_0 (0 = yes)", r);
    r = 0;
    for (i = 0; i < 41; i++) r += ReleaseMutex(mx) ? 1 : 0;
    V("successful releases", r);
    B("one release too many", ReleaseMutex(mx));

    /* MX-07: another thread can neither take nor release it */
    WT("acquire again", WaitForSingleObject(mx, 0));
    thread_join(thread_start(try_from_other_thread, NULL));
    B("owner releases", ReleaseMutex(mx));

    /* AB-01..AB-05: abandonment by thread exit */
    thread_join(thread_start(take_and_exit, NULL));
    WT("after owner thread exit", WaitForSingleObject(mx, 0));
    B("release once (recursion was dropped)", ReleaseMutex(mx));
    B("release again", ReleaseMutex(mx));
    WT("abandonment reported once", WaitForSingleObject(mx, 0));
    B("release", ReleaseMutex(mx));

    /* MX-02, CO-03 */
    H(m2, "create owned named", CreateMutexA(NULL, TRUE, "mx-named"));
    H(x, "create owned existing", CreateMutexA(NULL, TRUE, "mx-named"));
    B("release through second handle", ReleaseMutex(x));
    B("second release (no extra ownership)", ReleaseMutex(x));
    B("close", CloseHandle(x));

    /* AM-07, AM-09: open rights (CO-09 and AM-11, where Wine differs from Windows, are in spec_errors.c) */
    H(x, "open GENERIC_READ|GENERIC_WRITE", OpenMutexA(GENERIC_READ | GENERIC_WRITE, FALSE, "mx-named"));
    WT("wait without synchronize", WaitForSingleObject(x, 0));
    B("close", CloseHandle(x));
    H(x, "open GENERIC_EXECUTE", OpenMutexA(GENERIC_EXECUTE, FALSE, "mx-named"));
    WT("wait with generic execute", WaitForSingleObject(x, 0));
    B("close", CloseHandle(x));
    H(x, "open READ_CONTROL", OpenMutexA(READ_CONTROL, FALSE, "mx-named"));
    WT("owner acquires through the first handle", WaitForSingleObject(m2, 0));
    B("owner releases through a READ_CONTROL handle", ReleaseMutex(x));
    B("close", CloseHandle(x));

    /* HC-07: type-specific calls on a mutex */
    B("SetEvent on mutex", SetEvent(m2));
    B("ReleaseSemaphore on mutex", ReleaseSemaphore(m2, 1, NULL));
    B("close", CloseHandle(m2));

    /* AB-07: owner process killed */
    H(x, "create mx-kill", CreateMutexA(NULL, FALSE, "mx-kill"));
    H(ready, "create mx-ready", CreateEventA(NULL, FALSE, FALSE, "mx-ready"));
    {
        proc_t p = proc_spawn(argv[0], "child", FALSE);
        WT("child owns it", WaitForSingleObject(ready, INFINITE));
        WT("held by the child", WaitForSingleObject(x, 0));
        proc_kill(p);
    }
    WT("after the child was killed", WaitForSingleObject(x, INFINITE));
    WT("recursive acquire by new owner", WaitForSingleObject(x, 0));
    B("release", ReleaseMutex(x));
    B("release", ReleaseMutex(x));
    WT("clean after release", WaitForSingleObject(x, 0));
    B("release", ReleaseMutex(x));
    B("close", CloseHandle(x));
    B("close", CloseHandle(ready));
    B("close", CloseHandle(mx));
    (void)go;
    (void)done;
    return 0;
}
