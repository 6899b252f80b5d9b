/* Inheritance through fork + exec (HI-01..HI-04) with procsync_prepare_exec, the path
 * for code that starts children itself. Linux only (there is no fork on Windows). */
#include "shim.h"

extern char **environ;

static int child(HANDLE ev, HANDLE priv) {
    BOOL r;
    SetLastError(UNTOUCHED);
    r = SetEvent(ev);
    printf("child: SetEvent(inherited): %s\n", r ? "TRUE" : "FALSE");
    SetLastError(UNTOUCHED);
    r = SetEvent(priv);
    printf("child: SetEvent(not inheritable): %s err=%lu\n", r ? "TRUE" : "FALSE", (unsigned long)GetLastError());
    fflush(stdout);
    return 0;
}

static int fork_exec(const char *self, HANDLE ev, HANDLE priv, int prepare) {
    char a[32], b[32];
    int st = 0;
    pid_t pid;
    snprintf(a, sizeof a, "%llu", (unsigned long long)(ULONG_PTR)ev);
    snprintf(b, sizeof b, "%llu", (unsigned long long)(ULONG_PTR)priv);
    pid = fork();
    if (pid == 0) {
        char *args[] = {(char *)self, a, b, NULL};
        if (prepare && !procsync_prepare_exec()) _exit(20);
        execve(self, args, environ);
        _exit(21);
    }
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int main(int argc, char **argv) {
    SECURITY_ATTRIBUTES sa = {sizeof sa, NULL, TRUE};
    HANDLE ev, priv;
    if (argc == 3)
        return child((HANDLE)(ULONG_PTR)strtoull(argv[1], NULL, 0), (HANDLE)(ULONG_PTR)strtoull(argv[2], NULL, 0));
    ev = CreateEventA(&sa, TRUE, FALSE, NULL);
    priv = CreateEventA(NULL, TRUE, FALSE, NULL);
    V("fork + prepare_exec + exec: child exit", fork_exec(argv[0], ev, priv, 1));
    WT("the child's SetEvent is seen", WaitForSingleObject(ev, 0));
    WT("the private event is untouched", WaitForSingleObject(priv, 0));
    B("reset", ResetEvent(ev));
    V("fork + exec without prepare_exec: child exit", fork_exec(argv[0], ev, priv, 0));
    WT("nothing inherited", WaitForSingleObject(ev, 0));
    CloseHandle(ev);
    CloseHandle(priv);
    return 0;
}
