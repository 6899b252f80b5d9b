/* Objects shared by name between processes (NM-17, EV-14, CO-14, SM-14, MX-16, AB-08). */
#include "shim.h"

#define RACERS 4

static int child(const char *role) {
    if (strcmp(role, "set") == 0) { /* NM-17, EV-14 */
        HANDLE e = OpenEventA(EVENT_MODIFY_STATE, FALSE, "p-ev");
        return e && SetEvent(e) ? 0 : 1;
    }
    if (strcmp(role, "race") == 0) { /* CO-14 */
        HANDLE start = OpenEventA(SYNCHRONIZE, FALSE, "p-start");
        HANDLE done = OpenSemaphoreA(SEMAPHORE_MODIFY_STATE, FALSE, "p-done");
        HANDLE leave = OpenEventA(SYNCHRONIZE, FALSE, "p-leave");
        HANDLE m;
        DWORD e;
        WaitForSingleObject(start, INFINITE);
        m = CreateMutexA(NULL, FALSE, "p-race");
        e = GetLastError();
        ReleaseSemaphore(done, 1, NULL);
        WaitForSingleObject(leave, INFINITE);
        CloseHandle(m);
        return !m ? 2 : e == ERROR_ALREADY_EXISTS ? 1 : 0;
    }
    if (strcmp(role, "pong") == 0) { /* SM-14 */
        HANDLE a = OpenSemaphoreA(SEMAPHORE_ALL_ACCESS, FALSE, "p-sem-a");
        HANDLE b = OpenSemaphoreA(SEMAPHORE_ALL_ACCESS, FALSE, "p-sem-b");
        int i;
        for (i = 0; i < 10; i++) {
            if (WaitForSingleObject(b, INFINITE) != WAIT_OBJECT_0) return 1;
            if (!ReleaseSemaphore(a, 1, NULL)) return 2;
        }
        return 0;
    }
    if (strcmp(role, "count") == 0) { /* MX-16 */
        HANDLE m = OpenMutexA(SYNCHRONIZE, FALSE, "p-count");
        int i;
        for (i = 0; i < 10; i++) {
            unsigned long long v;
            if (WaitForSingleObject(m, INFINITE) != WAIT_OBJECT_0) return 1;
            v = get_value("counter.val");
            put_value("counter.val", v + 1);
            if (!ReleaseMutex(m)) return 2;
        }
        return 0;
    }
    if (strcmp(role, "exit-owning") == 0) { /* AB-08 */
        HANDLE m = OpenMutexA(SYNCHRONIZE, FALSE, "p-abandon");
        return WaitForSingleObject(m, INFINITE) == WAIT_OBJECT_0 ? 0 : 1;
    }
    return 99;
}

int main(int argc, char **argv) {
    HANDLE e, start, done, leave, a, b, m;
    proc_t p[RACERS];
    int i, created = 0, existing = 0, failed = 0;

    if (argc > 1) return child(argv[1]);

    H(e, "create named event", CreateEventA(NULL, FALSE, FALSE, "p-ev"));
    p[0] = proc_spawn(argv[0], "set", FALSE);
    WT("set by another process", WaitForSingleObject(e, INFINITE));
    V("child exit", proc_wait(p[0]));
    B("close", CloseHandle(e));

    start = CreateEventA(NULL, TRUE, FALSE, "p-start");
    done = CreateSemaphoreA(NULL, 0, RACERS, "p-done");
    leave = CreateEventA(NULL, TRUE, FALSE, "p-leave");
    for (i = 0; i < RACERS; i++) p[i] = proc_spawn(argv[0], "race", FALSE);
    B("start the race", SetEvent(start));
    for (i = 0; i < RACERS; i++) WaitForSingleObject(done, INFINITE);
    SetEvent(leave);
    for (i = 0; i < RACERS; i++) {
        int r = proc_wait(p[i]);
        created += r == 0;
        existing += r == 1;
        failed += r > 1;
    }
    V("racers that created the mutex", created);
    V("racers that opened it (ERROR_ALREADY_EXISTS)", existing);
    V("racers that failed", failed);
    CloseHandle(start);
    CloseHandle(done);
    CloseHandle(leave);

    a = CreateSemaphoreA(NULL, 1, 1, "p-sem-a");
    b = CreateSemaphoreA(NULL, 0, 1, "p-sem-b");
    p[0] = proc_spawn(argv[0], "pong", FALSE);
    for (i = 0; i < 10; i++) {
        if (WaitForSingleObject(a, INFINITE) != WAIT_OBJECT_0 || !ReleaseSemaphore(b, 1, NULL)) break;
    }
    V("ping-pong rounds", i);
    V("child exit", proc_wait(p[0]));
    CloseHandle(a);
    CloseHandle(b);

    m = CreateMutexA(NULL, FALSE, "p-count");
    put_value("counter.val", 0);
    p[0] = proc_spawn(argv[0], "count", FALSE);
    p[1] = proc_spawn(argv[0], "count", FALSE);
    V("child exit", proc_wait(p[0]));
    V("child exit", proc_wait(p[1]));
    V("counter incremented under the mutex", get_value("counter.val"));
    CloseHandle(m);

    H(m, "create mutex", CreateMutexA(NULL, FALSE, "p-abandon"));
    p[0] = proc_spawn(argv[0], "exit-owning", FALSE);
    V("child exit", proc_wait(p[0]));
    WT("owner exited without releasing", WaitForSingleObject(m, INFINITE));
    B("release", ReleaseMutex(m));
    B("close", CloseHandle(m));
    return 0;
}
