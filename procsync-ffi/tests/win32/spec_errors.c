/* Behaviours where Wine differs from Windows, or that crash on Windows (bad pointers),
 * or that are procsync's own (UTF-8 A names). Not regenerated under Wine: the expected
 * transcript, spec_errors.txt, is written from SEMANTICS.md item by item (ids below).
 * Linux only: it uses procsync_spawn-free calls, but the pointer cases would fault on
 * Windows. */
#include "shim.h"

int main(int argc, char **argv) {
    HANDLE m, e, s, t, x, h[2];
    LONG prev;
    DWORD flags;
    LARGE_INTEGER due;

    if (argc > 1) {
        HANDLE go = OpenEventA(SYNCHRONIZE, FALSE, "spec-go");
        WaitForSingleObject(go, INFINITE);
        CloseHandle(go);
        return 0;
    }

    /* CO-09, AM-11 */
    m = CreateMutexA(NULL, FALSE, "spec-mx");
    H(x, "OpenMutex(0) [CO-09]", OpenMutexA(0, FALSE, "spec-mx"));
    H(x, "OpenMutex(undefined bit 0x2) [AM-11]", OpenMutexA(0x2, FALSE, "spec-mx"));
    H(x, "OpenMutex(ACCESS_SYSTEM_SECURITY) [AM-11]", OpenMutexA(ACCESS_SYSTEM_SECURITY, FALSE, "spec-mx"));
    H(x, "OpenMutex(MAXIMUM_ALLOWED) [AM-11]", OpenMutexA(MAXIMUM_ALLOWED, FALSE, "spec-mx"));
    WT("wait through it", WaitForSingleObject(x, 0));
    B("release", ReleaseMutex(x));
    B("close", CloseHandle(x));
    e = CreateEventA(NULL, FALSE, FALSE, "spec-ev");
    H(x, "OpenEvent(0) [CO-09]", OpenEventA(0, FALSE, "spec-ev"));

    /* SM-06 */
    s = CreateSemaphoreA(NULL, 1, 5, NULL);
    B("ReleaseSemaphore(0) [SM-06]", ReleaseSemaphore(s, 0, NULL));
    B("ReleaseSemaphore(-1) [SM-06]", ReleaseSemaphore(s, -1, NULL));

    /* TM-07, TM-22 */
    t = CreateWaitableTimerA(NULL, TRUE, NULL);
    due.QuadPart = -1;
    B("SetWaitableTimer period -1 [TM-07]", SetWaitableTimer(t, &due, -1, NULL, NULL, FALSE));
    WT("timer unchanged", WaitForSingleObject(t, 0));
    B("SetWaitableTimer fResume [TM-22]", SetWaitableTimer(t, &due, 0, NULL, NULL, TRUE));
    WT("it was armed", WaitForSingleObject(t, INFINITE));

    /* WL-07 */
    h[0] = s;
    h[1] = s;
    WT("wait-all, same handle twice [WL-07]", WaitForMultipleObjects(2, h, TRUE, 0));
    DuplicateHandle(GetCurrentProcess(), s, GetCurrentProcess(), &h[1], 0, FALSE, DUPLICATE_SAME_ACCESS);
    WT("wait-all, two handles of one object [WL-07, HD-13]", WaitForMultipleObjects(2, h, TRUE, 0));
    CloseHandle(h[1]);
    prev = -1;
    ReleaseSemaphore(s, 1, &prev);
    V("nothing was acquired (count)", prev);

    /* NULL and misaligned pointers: ERROR_INVALID_PARAMETER, never a crash */
    B("ReleaseSemaphore, misaligned previous", ReleaseSemaphore(s, 1, (LONG *)((char *)&prev + 1)));
    B("GetHandleInformation, NULL flags", GetHandleInformation(s, NULL));
    B("GetHandleInformation, misaligned flags", GetHandleInformation(s, (DWORD *)((char *)&flags + 2)));
    WT("WaitForMultipleObjects, NULL array", WaitForMultipleObjects(2, NULL, FALSE, 0));
    WT("WaitForMultipleObjects, misaligned array", WaitForMultipleObjects(1, (HANDLE *)((char *)h + 4), FALSE, 0));
    B("SetWaitableTimer, NULL due time", SetWaitableTimer(t, NULL, 0, NULL, NULL, FALSE));
    B("DuplicateHandle, misaligned target", DuplicateHandle(GetCurrentProcess(), s, GetCurrentProcess(), (HANDLE *)((char *)h + 1), 0, FALSE, DUPLICATE_SAME_ACCESS));
    H(x, "CreateEventW, misaligned name", CreateEventW(NULL, FALSE, FALSE, (const WCHAR *)((const char *)L"ab" + 1)));

    /* A names are UTF-8; W names UTF-16 */
    {
        static const WCHAR wname[] = {'s', 'p', 'e', 'c', '-', 0xE9, 0x4E2D, 0};
        HANDLE w;
        H(w, "CreateEventW non-ASCII", CreateEventW(NULL, TRUE, TRUE, wname));
        H(x, "OpenEventA of its UTF-8 spelling", OpenEventA(SYNCHRONIZE, FALSE, "spec-\xC3\xA9\xE4\xB8\xAD"));
        WT("the same object", WaitForSingleObject(x, 0));
        B("close", CloseHandle(x));
        B("close", CloseHandle(w));
        H(x, "CreateEventA invalid UTF-8", CreateEventA(NULL, TRUE, TRUE, "spec-\xFF"));
    }

    /* NM-09 (procsync: ERROR_INVALID_NAME), unknown prefix */
    H(x, "backslash after the prefix [NM-09]", CreateEventA(NULL, FALSE, FALSE, "Local\\a\\b"));
    H(x, "unknown prefix", CreateEventA(NULL, FALSE, FALSE, "Session\\x"));
    H(x, "slash is ordinary [NM-10]", CreateEventA(NULL, FALSE, FALSE, "a/b"));
    B("close", CloseHandle(x));

    /* Process handles: waitable alone with SYNCHRONIZE */
    {
        HANDLE go = CreateEventA(NULL, FALSE, FALSE, "spec-go"), hp;
        proc_t p = proc_spawn(argv[0], "child", FALSE);
        H(hp, "OpenProcess(SYNCHRONIZE)", OpenProcess(SYNCHRONIZE, FALSE, p.pid));
        WT("running", WaitForSingleObject(hp, 0));
        h[0] = hp;
        h[1] = e;
        WT("process handle in a multiple wait (procsync: unsupported)", WaitForMultipleObjects(2, h, FALSE, 0));
        x = OpenProcess(PROCESS_DUP_HANDLE, FALSE, p.pid);
        WT("wait without SYNCHRONIZE", WaitForSingleObject(x, 0));
        CloseHandle(x);
        SetEvent(go);
        WT("exited", WaitForSingleObject(hp, INFINITE));
        V("child exit", proc_wait(p));
        B("close", CloseHandle(hp));
        CloseHandle(go);
    }

    CloseHandle(t);
    CloseHandle(s);
    CloseHandle(e);
    CloseHandle(m);
    return 0;
}
