/*
 * shim.h — the little the Win32 test programs need beyond the synchronization API:
 * threads, child processes, a clock, passing a value to another process, and the
 * transcript macros. Windows (MinGW, run under Wine) uses CreateThread/CreateProcess;
 * Linux uses pthreads and procsync_spawn. Everything under test goes through the Win32
 * API in both builds.
 *
 * Transcript lines: `label: RESULT err=E`, where E is GetLastError() after the call
 * (the macros set it to 0xBEEF first, so `err=-` means "the call left it alone").
 */
#ifndef SHIM_H
#define SHIM_H

#ifdef _WIN32
#include <windows.h>
#else
#include <procsync/win32.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define UNTOUCHED 0xBEEFu

static void say_err(void) {
    DWORD e = GetLastError();
    if (e == UNTOUCHED)
        printf(" err=-\n");
    else
        printf(" err=%lu\n", (unsigned long)e);
    fflush(stdout);
}

static const char *wait_name(DWORD r, char *buf) {
    if (r == WAIT_TIMEOUT) return "WAIT_TIMEOUT";
    if (r == WAIT_FAILED) return "WAIT_FAILED";
    if (r == WAIT_IO_COMPLETION) return "WAIT_IO_COMPLETION";
    if (r >= WAIT_ABANDONED_0 && r < WAIT_ABANDONED_0 + 64) {
        sprintf(buf, "WAIT_ABANDONED_0+%lu", (unsigned long)(r - WAIT_ABANDONED_0));
        return buf;
    }
    if (r < 64) {
        sprintf(buf, "WAIT_OBJECT_0+%lu", (unsigned long)r);
        return buf;
    }
    sprintf(buf, "0x%lx", (unsigned long)r);
    return buf;
}

/* A BOOL-returning call. */
#define B(label, call)                                                   \
    do {                                                                 \
        SetLastError(UNTOUCHED);                                         \
        BOOL r_ = (call);                                                \
        printf("%s: %s", label, r_ ? "TRUE" : "FALSE");                  \
        say_err();                                                       \
    } while (0)

/* A HANDLE-returning call, stored in `var`. */
#define H(var, label, call)                                              \
    do {                                                                 \
        SetLastError(UNTOUCHED);                                         \
        var = (call);                                                    \
        printf("%s: %s", label, var ? "handle" : "NULL");                \
        say_err();                                                       \
    } while (0)

/* A wait. */
#define WT(label, call)                                                  \
    do {                                                                 \
        char b_[32];                                                     \
        SetLastError(UNTOUCHED);                                         \
        DWORD r_ = (call);                                               \
        printf("%s: %s", label, wait_name(r_, b_));                      \
        say_err();                                                       \
    } while (0)

/* A value. */
#define V(label, value)                                                  \
    do {                                                                 \
        printf("%s: %ld\n", label, (long)(value));                       \
        fflush(stdout);                                                  \
    } while (0)

/* ---- threads ---- */
typedef DWORD (*thread_fn)(void *);
#ifdef _WIN32
typedef HANDLE thread_t;
struct tstart { thread_fn fn; void *arg; };
static DWORD WINAPI tramp(LPVOID p) {
    struct tstart s = *(struct tstart *)p;
    free(p);
    return s.fn(s.arg);
}
static thread_t thread_start(thread_fn fn, void *arg) {
    struct tstart *s = malloc(sizeof *s);
    s->fn = fn;
    s->arg = arg;
    return CreateThread(NULL, 0, tramp, s, 0, NULL);
}
static void thread_join(thread_t t) {
    WaitForSingleObject(t, INFINITE);
    CloseHandle(t);
}
#else
typedef pthread_t thread_t;
struct tstart { thread_fn fn; void *arg; };
static void *tramp(void *p) {
    struct tstart s = *(struct tstart *)p;
    free(p);
    s.fn(s.arg);
    return NULL;
}
static thread_t thread_start(thread_fn fn, void *arg) {
    pthread_t t;
    struct tstart *s = malloc(sizeof *s);
    s->fn = fn;
    s->arg = arg;
    pthread_create(&t, NULL, tramp, s);
    return t;
}
static void thread_join(thread_t t) { pthread_join(t, NULL); }
#endif

/* ---- child processes: the same program, started with a role argument ---- */
#ifdef _WIN32
typedef struct { HANDLE h; DWORD pid; } proc_t;
static proc_t proc_spawn(const char *self, const char *role, BOOL inherit) {
    char cmd[1024];
    STARTUPINFOA si;
    PROCESS_INFORMATION pi;
    proc_t p = {0, 0};
    memset(&si, 0, sizeof si);
    si.cb = sizeof si;
    snprintf(cmd, sizeof cmd, "\"%s\" %s", self, role);
    if (CreateProcessA(NULL, cmd, NULL, NULL, inherit, 0, NULL, NULL, &si, &pi)) {
        CloseHandle(pi.hThread);
        p.h = pi.hProcess;
        p.pid = pi.dwProcessId;
    }
    return p;
}
static int proc_wait(proc_t p) {
    DWORD code = 255;
    WaitForSingleObject(p.h, INFINITE);
    GetExitCodeProcess(p.h, &code);
    CloseHandle(p.h);
    return (int)code;
}
static void proc_kill(proc_t p) {
    TerminateProcess(p.h, 9);
    WaitForSingleObject(p.h, INFINITE);
    CloseHandle(p.h);
}
static void now_filetime(LARGE_INTEGER *li) {
    FILETIME ft;
    GetSystemTimeAsFileTime(&ft);
    li->LowPart = ft.dwLowDateTime;
    li->HighPart = (LONG)ft.dwHighDateTime;
}
#else
typedef struct { DWORD pid; } proc_t;
static proc_t proc_spawn(const char *self, const char *role, BOOL inherit) {
    const char *argv[] = {self, role, NULL};
    proc_t p;
    p.pid = procsync_spawn(self, argv, inherit);
    return p;
}
static int proc_wait(proc_t p) {
    int st = 0;
    waitpid((pid_t)p.pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}
static void proc_kill(proc_t p) {
    int st;
    kill((pid_t)p.pid, SIGKILL);
    waitpid((pid_t)p.pid, &st, 0);
}
static void now_filetime(LARGE_INTEGER *li) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    li->QuadPart = (LONGLONG)ts.tv_sec * 10000000 + ts.tv_nsec / 100 + 116444736000000000LL;
}
#endif

/* ---- values passed to another process through a file in the working directory ---- */
static void put_value(const char *file, unsigned long long v) {
    FILE *f = fopen(file, "w");
    fprintf(f, "%llu\n", v);
    fclose(f);
}
static unsigned long long get_value(const char *file) {
    unsigned long long v = 0;
    FILE *f = fopen(file, "r");
    if (f) {
        if (fscanf(f, "%llu", &v) != 1) v = 0;
        fclose(f);
    }
    remove(file);
    return v;
}

/* A child's transcript goes to a file the parent prints after the child exits, so the
 * two never interleave. */
static FILE *child_log;
#define C(...)                                                           \
    do {                                                                 \
        fprintf(child_log, __VA_ARGS__);                                 \
        fprintf(child_log, "\n");                                        \
        fflush(child_log);                                               \
    } while (0)
static void child_open(const char *role) {
    char name[128];
    snprintf(name, sizeof name, "child-%s.log", role);
    child_log = fopen(name, "w");
}
static void child_print(const char *role) {
    char name[128], line[512];
    FILE *f;
    snprintf(name, sizeof name, "child-%s.log", role);
    f = fopen(name, "r");
    if (!f) {
        printf("  child %s: no transcript\n", role);
        return;
    }
    while (fgets(line, sizeof line, f)) printf("  child %s| %s", role, line);
    fclose(f);
    remove(name);
    fflush(stdout);
}
#endif
