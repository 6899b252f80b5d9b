/* Bad-handle fuzzing at the boundary (HC-02, HC-03, HC-08): pseudo-random HANDLE values
 * that name nothing, through every function that takes a handle, from several threads
 * at once. Each call must fail with its Win32 failure value and ERROR_INVALID_HANDLE,
 * and never crash. Not run under Wine: on Windows a random value may name a real
 * handle of the process. */
#include "shim.h"

#define ROUNDS 3000
static HANDLE valid[3];

static int is_valid(HANDLE h) {
    ULONG_PTR v = (ULONG_PTR)h & ~(ULONG_PTR)3;
    int i;
    if ((ULONG_PTR)h >= (ULONG_PTR)-2) return 1; /* pseudo-handles */
    for (i = 0; i < 3; i++)
        if (v == ((ULONG_PTR)valid[i] & ~(ULONG_PTR)3)) return 1;
    return 0;
}

static DWORD fuzz(void *arg) {
    unsigned long long x = (unsigned long long)(ULONG_PTR)arg * 0x9E3779B97F4A7C15ull + 1;
    long bad = 0;
    int i;
    for (i = 0; i < ROUNDS; i++) {
        HANDLE h, d, hs[2];
        LONG prev = 0;
        DWORD flags = 0;
        LARGE_INTEGER due;
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        switch (i % 4) {
        case 0: h = (HANDLE)(ULONG_PTR)(x >> 32); break;          /* 32-bit garbage */
        case 1: h = (HANDLE)(ULONG_PTR)((x >> 40) & 0xFFFC); break; /* small multiples of 4 */
        case 2: h = (HANDLE)(ULONG_PTR)x; break;                  /* 64-bit garbage */
        default: h = (HANDLE)(ULONG_PTR)((x >> 50) | 1); break;   /* tiny, odd */
        }
        if (is_valid(h) || h == NULL) continue;
        due.QuadPart = -1;
#define EXPECT(call, fail)                                             \
        do {                                                           \
            SetLastError(0);                                           \
            if ((call) != (fail) || GetLastError() != ERROR_INVALID_HANDLE) bad++; \
        } while (0)
        EXPECT(SetEvent(h), FALSE);
        EXPECT(ResetEvent(h), FALSE);
        EXPECT(PulseEvent(h), FALSE);
        EXPECT(ReleaseMutex(h), FALSE);
        EXPECT(ReleaseSemaphore(h, 1, &prev), FALSE);
        EXPECT(SetWaitableTimer(h, &due, 0, NULL, NULL, FALSE), FALSE);
        EXPECT(CancelWaitableTimer(h), FALSE);
        EXPECT(WaitForSingleObject(h, 0), WAIT_FAILED);
        EXPECT(WaitForSingleObjectEx(h, 0, TRUE), WAIT_FAILED);
        hs[0] = valid[0];
        hs[1] = h;
        EXPECT(WaitForMultipleObjects(2, hs, FALSE, 0), WAIT_FAILED);
        EXPECT(WaitForMultipleObjects(2, hs, TRUE, 0), WAIT_FAILED);
        EXPECT(SignalObjectAndWait(h, valid[0], 0, FALSE), WAIT_FAILED);
        EXPECT(SignalObjectAndWait(valid[0], h, 0, FALSE), WAIT_FAILED);
        EXPECT(GetHandleInformation(h, &flags), FALSE);
        EXPECT(SetHandleInformation(h, HANDLE_FLAG_INHERIT, 0), FALSE);
        EXPECT(DuplicateHandle(GetCurrentProcess(), h, GetCurrentProcess(), &d, 0, FALSE, DUPLICATE_SAME_ACCESS), FALSE);
        EXPECT(DuplicateHandle(h, valid[0], GetCurrentProcess(), &d, 0, FALSE, DUPLICATE_SAME_ACCESS), FALSE);
        EXPECT(CloseHandle(h), FALSE);
    }
    return (DWORD)bad;
}

static long results[4];
static DWORD run(void *arg) {
    results[(ULONG_PTR)arg] = (long)fuzz(arg);
    return 0;
}

int main(void) {
    thread_t t[4];
    int i;
    valid[0] = CreateEventA(NULL, TRUE, FALSE, NULL);
    valid[1] = CreateMutexA(NULL, FALSE, NULL);
    valid[2] = CreateSemaphoreA(NULL, 0, 1, NULL);
    for (i = 0; i < 4; i++) t[i] = thread_start(run, (void *)(ULONG_PTR)i);
    for (i = 0; i < 4; i++) thread_join(t[i]);
    for (i = 0; i < 4; i++) V("thread: calls that did not fail with ERROR_INVALID_HANDLE", results[i]);
    WT("the real objects are untouched: event", WaitForSingleObject(valid[0], 0));
    WT("mutex free", WaitForSingleObject(valid[1], 0));
    B("release", ReleaseMutex(valid[1]));
    WT("semaphore empty", WaitForSingleObject(valid[2], 0));
    for (i = 0; i < 3; i++) B("close", CloseHandle(valid[i]));
    return 0;
}
