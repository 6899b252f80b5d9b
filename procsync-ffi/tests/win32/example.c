/* example.c — Win32 synchronization between two Linux processes with procsync.
 *
 * The parent creates two inheritable auto-reset events and a named mutex, starts a copy
 * of itself that inherits the events (procsync_spawn is this port's
 * CreateProcess(bInheritHandles=TRUE)), and the two play ping-pong with
 * SignalObjectAndWait. The child learns the handle values on its command line.
 *
 *   cc example.c $(pkg-config --cflags --libs procsync) -o example && ./example
 */
#include <procsync/win32.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

static int child(HANDLE ping, HANDLE pong) {
    HANDLE mx = OpenMutexA(SYNCHRONIZE, FALSE, "example-mutex");
    int i;
    for (i = 1; i <= 3; i++) {
        if (WaitForSingleObject(ping, INFINITE) != WAIT_OBJECT_0) return 1;
        printf("child:  pong %d\n", i);
        fflush(stdout);
        SetEvent(pong);
    }
    /* The parent still owns the mutex: a try fails. */
    printf("child:  mutex %s\n", WaitForSingleObject(mx, 0) == WAIT_TIMEOUT ? "busy" : "free?");
    fflush(stdout);
    CloseHandle(mx);
    return 0;
}

int main(int argc, char **argv) {
    SECURITY_ATTRIBUTES sa = {sizeof sa, NULL, TRUE};
    HANDLE ping, pong, mx;
    char a[32], b[32];
    const char *args[5];
    DWORD pid;
    int i, st = 0;

    if (argc == 3)
        return child((HANDLE)strtoull(argv[1], NULL, 0), (HANDLE)strtoull(argv[2], NULL, 0));

    ping = CreateEventA(&sa, FALSE, FALSE, NULL);
    pong = CreateEventA(&sa, FALSE, FALSE, NULL);
    mx = CreateMutexA(NULL, TRUE, "example-mutex");
    if (!ping || !pong || !mx) {
        fprintf(stderr, "create failed: error %lu\n", (unsigned long)GetLastError());
        return 1;
    }
    snprintf(a, sizeof a, "%llu", (unsigned long long)(ULONG_PTR)ping);
    snprintf(b, sizeof b, "%llu", (unsigned long long)(ULONG_PTR)pong);
    args[0] = argv[0];
    args[1] = a;
    args[2] = b;
    args[3] = NULL;
    pid = procsync_spawn(argv[0], args, TRUE);
    if (!pid) {
        fprintf(stderr, "spawn failed: error %lu\n", (unsigned long)GetLastError());
        return 1;
    }
    for (i = 1; i <= 3; i++) {
        printf("parent: ping %d\n", i);
        fflush(stdout);
        if (SignalObjectAndWait(ping, pong, INFINITE, FALSE) != WAIT_OBJECT_0) return 1;
    }
    waitpid((pid_t)pid, &st, 0);
    printf("parent: child exited with %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    ReleaseMutex(mx);
    CloseHandle(mx);
    CloseHandle(ping);
    CloseHandle(pong);
    return 0;
}
