/* Semaphores: counts, limits, previous counts, parameters, rights (SM, CO-05, AM-04). */
#include "shim.h"

static HANDLE sem;

static DWORD consumer(void *arg) {
    (void)arg;
    return WaitForSingleObject(sem, INFINITE);
}

int main(void) {
    HANDLE s, x;
    LONG prev;
    int i;
    DWORD r = 0;

    /* SM-01 */
    H(x, "initial > max", CreateSemaphoreA(NULL, 2, 1, NULL));
    H(x, "max 0", CreateSemaphoreA(NULL, 0, 0, NULL));
    H(x, "initial -1", CreateSemaphoreA(NULL, -1, 1, NULL));
    /* SM-02 */
    H(x, "(0, 0x7FFFFFFF)", CreateSemaphoreA(NULL, 0, 0x7FFFFFFF, NULL));
    /* SM-07 */
    prev = 12345;
    B("release 0x7FFFFFFF up to max", ReleaseSemaphore(x, 0x7FFFFFFF, &prev));
    V("previous", prev);
    B("release 1 past max", ReleaseSemaphore(x, 1, &prev));
    B("close", CloseHandle(x));

    /* SM-03 */
    H(s, "create (5, 5)", CreateSemaphoreA(NULL, 5, 5, "sem-one"));
    for (i = 0; i < 5; i++) r |= WaitForSingleObject(s, 0);
    V("five waits succeed (0 = yes)", r);
    WT("sixth wait", WaitForSingleObject(s, 0));

    /* SM-04, SM-05, SM-06, SM-08 */
    prev = 999;
    B("release 2", ReleaseSemaphore(s, 2, &prev));
    V("previous", prev);
    prev = 999;
    B("release 3 (to max)", ReleaseSemaphore(s, 3, &prev));
    V("previous", prev);
    prev = 999;
    B("release 1 past max", ReleaseSemaphore(s, 1, &prev));
    V("previous untouched", prev);
    B("release with NULL previous", ReleaseSemaphore(s, 1, NULL));

    /* CO-05: an existing semaphore keeps its count and maximum */
    H(x, "create existing with other counts", CreateSemaphoreA(NULL, 0, 10, "sem-one"));
    prev = 999;
    B("release 1 on full", ReleaseSemaphore(x, 1, &prev));
    B("close", CloseHandle(x));
    H(x, "create existing with bad counts", CreateSemaphoreA(NULL, 3, 1, "sem-one"));

    /* SM-09, SM-15: a blocked consumer is released */
    for (i = 0; i < 5; i++) WaitForSingleObject(s, 0);
    sem = s;
    {
        thread_t t = thread_start(consumer, NULL);
        B("release 1 for the consumer", ReleaseSemaphore(s, 1, NULL));
        thread_join(t);
    }
    WT("consumer took it", WaitForSingleObject(s, 0));

    /* AM-04, CO-10 */
    H(x, "open synchronize only", OpenSemaphoreA(SYNCHRONIZE, FALSE, "sem-one"));
    B("release without modify", ReleaseSemaphore(x, 1, NULL));
    B("close", CloseHandle(x));
    H(x, "open modify only", OpenSemaphoreA(SEMAPHORE_MODIFY_STATE, FALSE, "sem-one"));
    prev = 999;
    B("release with modify", ReleaseSemaphore(x, 1, &prev));
    V("previous", prev);
    WT("wait without synchronize", WaitForSingleObject(x, 0));
    B("close", CloseHandle(x));
    H(x, "CreateSemaphoreEx", CreateSemaphoreExA(NULL, 1, 2, "sem-ex", 0, SEMAPHORE_ALL_ACCESS));
    WT("Ex wait", WaitForSingleObject(x, 0));
    B("close", CloseHandle(x));
    H(x, "OpenSemaphore NULL name", OpenSemaphoreA(SYNCHRONIZE, FALSE, NULL));
    H(x, "OpenSemaphore missing", OpenSemaphoreA(SYNCHRONIZE, FALSE, "sem-missing"));

    /* HC-07 */
    B("ReleaseMutex on semaphore", ReleaseMutex(s));
    B("SetEvent on semaphore", SetEvent(s));
    B("close", CloseHandle(s));
    return 0;
}
