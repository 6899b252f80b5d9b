/* DuplicateHandle: within the process, into another process, out of another process
 * (HD-01..HD-05, HD-07, HD-09, HD-11, HD-12, HC-09). */
#include "shim.h"

static int child_target(void) {
    HANDLE go = OpenEventA(SYNCHRONIZE, FALSE, "dup-go");
    HANDLE ready = OpenEventA(EVENT_MODIFY_STATE, FALSE, "dup-ready");
    HANDLE ev;
    DWORD flags = 0;
    child_open("target");
    SetEvent(ready);
    WaitForSingleObject(go, INFINITE);
    ev = (HANDLE)(ULONG_PTR)get_value("dup.val");
    C("SetEvent(duplicated value): %s", SetEvent(ev) ? "TRUE" : "FALSE");
    C("GetHandleInformation: %s flags=%lu", GetHandleInformation(ev, &flags) ? "TRUE" : "FALSE", (unsigned long)flags);
    C("CloseHandle: %s", CloseHandle(ev) ? "TRUE" : "FALSE");
    CloseHandle(go);
    CloseHandle(ready);
    return 0;
}

static int child_source(void) {
    HANDLE go = OpenEventA(SYNCHRONIZE, FALSE, "dup-go");
    HANDLE ready = OpenEventA(EVENT_MODIFY_STATE, FALSE, "dup-ready");
    HANDLE sem = CreateSemaphoreA(NULL, 0, 3, NULL);
    char b[32];
    child_open("source");
    put_value("src.val", (ULONG_PTR)sem);
    SetEvent(ready);
    WaitForSingleObject(go, INFINITE); /* the parent pulls and releases meanwhile */
    C("the parent's release through its duplicate: %s", wait_name(WaitForSingleObject(sem, 0), b));
    CloseHandle(go);
    CloseHandle(ready);
    return 0; /* exits holding sem: the parent's duplicate keeps it alive (HD-12) */
}

int main(int argc, char **argv) {
    HANDLE ev, d, d2, go, ready, hp;
    DWORD flags;
    proc_t p;

    if (argc > 1 && strcmp(argv[1], "target") == 0) return child_target();
    if (argc > 1 && strcmp(argv[1], "source") == 0) return child_source();

    /* HD-01, HD-02 */
    H(ev, "create event", CreateEventA(NULL, TRUE, FALSE, NULL));
    B("duplicate, same access", DuplicateHandle(GetCurrentProcess(), ev, GetCurrentProcess(), &d, 0, FALSE, DUPLICATE_SAME_ACCESS));
    V("different value", d != ev);
    B("set through the duplicate", SetEvent(d));
    WT("seen through the original", WaitForSingleObject(ev, 0));
    B("close duplicate", CloseHandle(d));
    B("original still works", ResetEvent(ev));

    /* HD-03: reduced access */
    B("duplicate with SYNCHRONIZE only", DuplicateHandle(GetCurrentProcess(), ev, GetCurrentProcess(), &d, SYNCHRONIZE, FALSE, 0));
    B("SetEvent via it", SetEvent(d));
    WT("wait via it", WaitForSingleObject(d, 0));
    B("duplicate of it with SAME_ACCESS", DuplicateHandle(GetCurrentProcess(), d, GetCurrentProcess(), &d2, 0, FALSE, DUPLICATE_SAME_ACCESS));
    B("SetEvent via that", SetEvent(d2));
    CloseHandle(d2);
    CloseHandle(d);

    /* HD-09 */
    B("duplicate inheritable", DuplicateHandle(GetCurrentProcess(), ev, GetCurrentProcess(), &d, 0, TRUE, DUPLICATE_SAME_ACCESS));
    flags = 99;
    GetHandleInformation(d, &flags);
    V("flags", flags);

    /* HD-05 */
    B("duplicate with CLOSE_SOURCE", DuplicateHandle(GetCurrentProcess(), d, GetCurrentProcess(), &d2, 0, FALSE, DUPLICATE_SAME_ACCESS | DUPLICATE_CLOSE_SOURCE));
    B("the new one works", SetEvent(d2)); /* HD-06: it may have the source's value */
    CloseHandle(d2);
    ResetEvent(ev);

    /* HD-11 */
    B("invalid source", DuplicateHandle(GetCurrentProcess(), (HANDLE)(ULONG_PTR)0xdeadbee0, GetCurrentProcess(), &d, 0, FALSE, DUPLICATE_SAME_ACCESS));
    B("an event as the process", DuplicateHandle(ev, ev, GetCurrentProcess(), &d, 0, FALSE, DUPLICATE_SAME_ACCESS));

    /* HD-07: into another process */
    go = CreateEventA(NULL, FALSE, FALSE, "dup-go");
    ready = CreateEventA(NULL, FALSE, FALSE, "dup-ready");
    p = proc_spawn(argv[0], "target", FALSE);
    WT("target ready", WaitForSingleObject(ready, INFINITE));
    H(hp, "OpenProcess(PROCESS_DUP_HANDLE)", OpenProcess(PROCESS_DUP_HANDLE, FALSE, p.pid));
    B("duplicate into the target", DuplicateHandle(GetCurrentProcess(), ev, hp, &d, 0, FALSE, DUPLICATE_SAME_ACCESS));
    put_value("dup.val", (ULONG_PTR)d);
    SetEvent(go);
    V("target exit", proc_wait(p));
    child_print("target");
    WT("the target's SetEvent is seen here", WaitForSingleObject(ev, 0));
    B("close the process handle", CloseHandle(hp));

    /* HD-08: out of another process */
    p = proc_spawn(argv[0], "source", FALSE);
    WT("source ready", WaitForSingleObject(ready, INFINITE));
    H(hp, "OpenProcess(PROCESS_DUP_HANDLE)", OpenProcess(PROCESS_DUP_HANDLE, FALSE, p.pid));
    V("duplicate out of the source", DuplicateHandle(hp, (HANDLE)(ULONG_PTR)get_value("src.val"), GetCurrentProcess(), &d, 0, FALSE, DUPLICATE_SAME_ACCESS));
    B("release through it", ReleaseSemaphore(d, 1, NULL));
    SetEvent(go);
    V("source exit", proc_wait(p));
    child_print("source");
    B("release again after the source exited", ReleaseSemaphore(d, 2, NULL));
    WT("wait", WaitForSingleObject(d, 0));
    B("close", CloseHandle(d));
    B("close the process handle", CloseHandle(hp));

    H(hp, "OpenProcess of a pid that does not exist", OpenProcess(PROCESS_DUP_HANDLE, FALSE, 0x7FFFFFF0));

    CloseHandle(go);
    CloseHandle(ready);
    CloseHandle(ev);
    return 0;
}
