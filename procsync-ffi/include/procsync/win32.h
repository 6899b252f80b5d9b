/*
 * procsync/win32.h — the Win32 synchronization API on Linux, over procsync.
 *
 * Every function is exported as procsync_<Win32 name> (procsync_CreateEventW, ...);
 * this header maps the Win32 names onto them (#define CreateEventW procsync_CreateEventW)
 * unless PROCSYNC_NO_WIN32_NAMES is defined before including it. The generic names
 * (CreateEvent, OpenMutex, ...) choose the W spelling when UNICODE is defined, else A.
 *
 * A names are UTF-8; W names are UTF-16 (WCHAR is 16 bits: compile with -fshort-wchar
 * if you write L"..." literals). Link with -lprocsync (pkg-config procsync).
 * See docs/PORTING.md for what differs from Windows.
 */
#ifndef PROCSYNC_WIN32_H
#define PROCSYNC_WIN32_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef PROCSYNC_NO_WIN32_TYPES
#ifndef WINAPI
#define WINAPI
#endif
#ifndef CALLBACK
#define CALLBACK
#endif
#ifndef VOID
#define VOID void
#endif

typedef void *HANDLE, **PHANDLE, **LPHANDLE;
typedef int BOOL, *PBOOL, *LPBOOL;
typedef uint32_t DWORD, *PDWORD, *LPDWORD;
typedef int32_t LONG, *PLONG, *LPLONG;
typedef uint32_t ULONG, *PULONG;
typedef void *PVOID, *LPVOID;
typedef const void *LPCVOID;
typedef uintptr_t ULONG_PTR, DWORD_PTR, *PULONG_PTR;
typedef intptr_t LONG_PTR;
typedef unsigned char BYTE, BOOLEAN;
typedef uint16_t WORD;
typedef unsigned int UINT;
typedef int INT;
typedef size_t SIZE_T;
typedef int64_t LONGLONG;
typedef uint64_t ULONGLONG;
typedef char CHAR;
typedef CHAR *LPSTR;
typedef const CHAR *LPCSTR;
#if defined(__SIZEOF_WCHAR_T__) && __SIZEOF_WCHAR_T__ == 2
typedef wchar_t WCHAR;
#else
typedef uint16_t WCHAR;
#endif
typedef WCHAR *LPWSTR;
typedef const WCHAR *LPCWSTR;

#if defined(__GNUC__) && !defined(__cplusplus)
#define PROCSYNC_ANONYMOUS __extension__
#else
#define PROCSYNC_ANONYMOUS
#endif
typedef union _LARGE_INTEGER {
    PROCSYNC_ANONYMOUS struct {
        DWORD LowPart;
        LONG HighPart;
    };
    struct {
        DWORD LowPart;
        LONG HighPart;
    } u;
    LONGLONG QuadPart;
} LARGE_INTEGER, *PLARGE_INTEGER;

typedef struct _SECURITY_ATTRIBUTES {
    DWORD nLength;
    LPVOID lpSecurityDescriptor; /* ignored: procsync has no ACLs */
    BOOL bInheritHandle;
} SECURITY_ATTRIBUTES, *PSECURITY_ATTRIBUTES, *LPSECURITY_ATTRIBUTES;

typedef struct _FILETIME {
    DWORD dwLowDateTime;
    DWORD dwHighDateTime;
} FILETIME, *PFILETIME, *LPFILETIME;

typedef void *PREASON_CONTEXT; /* ignored */
typedef VOID (CALLBACK *PTIMERAPCROUTINE)(LPVOID lpArgToCompletionRoutine,
                                          DWORD dwTimerLowValue, DWORD dwTimerHighValue);
typedef VOID (CALLBACK *PAPCFUNC)(ULONG_PTR dwParam);

#ifndef TRUE
#define TRUE 1
#endif
#ifndef FALSE
#define FALSE 0
#endif
#define INVALID_HANDLE_VALUE ((HANDLE)(LONG_PTR)-1)

#define WAIT_OBJECT_0 0x00000000UL
#define WAIT_ABANDONED 0x00000080UL
#define WAIT_ABANDONED_0 0x00000080UL
#define WAIT_IO_COMPLETION 0x000000C0UL
#define WAIT_TIMEOUT 0x00000102UL
#define WAIT_FAILED ((DWORD)0xFFFFFFFF)
#define INFINITE 0xFFFFFFFFUL
#define MAXIMUM_WAIT_OBJECTS 64

#define ERROR_SUCCESS 0L
#define NO_ERROR 0L
#define ERROR_FILE_NOT_FOUND 2L
#define ERROR_PATH_NOT_FOUND 3L
#define ERROR_TOO_MANY_OPEN_FILES 4L
#define ERROR_ACCESS_DENIED 5L
#define ERROR_INVALID_HANDLE 6L
#define ERROR_NOT_ENOUGH_MEMORY 8L
#define ERROR_GEN_FAILURE 31L
#define ERROR_NOT_SUPPORTED 50L
#define ERROR_INVALID_PARAMETER 87L
#define ERROR_INVALID_NAME 123L
#define ERROR_ALREADY_EXISTS 183L
#define ERROR_FILENAME_EXCED_RANGE 206L
#define ERROR_NOT_OWNER 288L
#define ERROR_TOO_MANY_POSTS 298L
#define ERROR_MUTANT_LIMIT_EXCEEDED 587L
#define ERROR_PRIVILEGE_NOT_HELD 1314L
#define ERROR_INTERNAL_ERROR 1359L

#define DELETE 0x00010000L
#define READ_CONTROL 0x00020000L
#define WRITE_DAC 0x00040000L
#define WRITE_OWNER 0x00080000L
#define SYNCHRONIZE 0x00100000L
#define STANDARD_RIGHTS_REQUIRED 0x000F0000L
#define STANDARD_RIGHTS_READ READ_CONTROL
#define STANDARD_RIGHTS_WRITE READ_CONTROL
#define STANDARD_RIGHTS_EXECUTE READ_CONTROL
#define STANDARD_RIGHTS_ALL 0x001F0000L
#define ACCESS_SYSTEM_SECURITY 0x01000000L
#define MAXIMUM_ALLOWED 0x02000000L
#define GENERIC_READ 0x80000000UL
#define GENERIC_WRITE 0x40000000L
#define GENERIC_EXECUTE 0x20000000L
#define GENERIC_ALL 0x10000000L

#define EVENT_QUERY_STATE 0x0001
#define EVENT_MODIFY_STATE 0x0002
#define EVENT_ALL_ACCESS (STANDARD_RIGHTS_REQUIRED | SYNCHRONIZE | 0x3)
#define MUTANT_QUERY_STATE 0x0001
#define MUTEX_MODIFY_STATE MUTANT_QUERY_STATE
#define MUTEX_ALL_ACCESS (STANDARD_RIGHTS_REQUIRED | SYNCHRONIZE | MUTANT_QUERY_STATE)
#define SEMAPHORE_QUERY_STATE 0x0001
#define SEMAPHORE_MODIFY_STATE 0x0002
#define SEMAPHORE_ALL_ACCESS (STANDARD_RIGHTS_REQUIRED | SYNCHRONIZE | 0x3)
#define TIMER_QUERY_STATE 0x0001
#define TIMER_MODIFY_STATE 0x0002
#define TIMER_ALL_ACCESS (STANDARD_RIGHTS_REQUIRED | SYNCHRONIZE | TIMER_QUERY_STATE | TIMER_MODIFY_STATE)
#define PROCESS_DUP_HANDLE 0x0040
#define PROCESS_ALL_ACCESS (STANDARD_RIGHTS_REQUIRED | SYNCHRONIZE | 0xFFFF)

#define HANDLE_FLAG_INHERIT 0x00000001
#define HANDLE_FLAG_PROTECT_FROM_CLOSE 0x00000002
#define DUPLICATE_CLOSE_SOURCE 0x00000001
#define DUPLICATE_SAME_ACCESS 0x00000002
#define CREATE_EVENT_MANUAL_RESET 0x00000001
#define CREATE_EVENT_INITIAL_SET 0x00000002
#define CREATE_MUTEX_INITIAL_OWNER 0x00000001
#define CREATE_WAITABLE_TIMER_MANUAL_RESET 0x00000001
#define CREATE_WAITABLE_TIMER_HIGH_RESOLUTION 0x00000002
#endif /* PROCSYNC_NO_WIN32_TYPES */

/* Events */
HANDLE procsync_CreateEventA(LPSECURITY_ATTRIBUTES, BOOL bManualReset, BOOL bInitialState, LPCSTR lpName);
HANDLE procsync_CreateEventW(LPSECURITY_ATTRIBUTES, BOOL bManualReset, BOOL bInitialState, LPCWSTR lpName);
HANDLE procsync_CreateEventExA(LPSECURITY_ATTRIBUTES, LPCSTR lpName, DWORD dwFlags, DWORD dwDesiredAccess);
HANDLE procsync_CreateEventExW(LPSECURITY_ATTRIBUTES, LPCWSTR lpName, DWORD dwFlags, DWORD dwDesiredAccess);
HANDLE procsync_OpenEventA(DWORD dwDesiredAccess, BOOL bInheritHandle, LPCSTR lpName);
HANDLE procsync_OpenEventW(DWORD dwDesiredAccess, BOOL bInheritHandle, LPCWSTR lpName);
BOOL procsync_SetEvent(HANDLE hEvent);
BOOL procsync_ResetEvent(HANDLE hEvent);
BOOL procsync_PulseEvent(HANDLE hEvent);

/* Mutexes */
HANDLE procsync_CreateMutexA(LPSECURITY_ATTRIBUTES, BOOL bInitialOwner, LPCSTR lpName);
HANDLE procsync_CreateMutexW(LPSECURITY_ATTRIBUTES, BOOL bInitialOwner, LPCWSTR lpName);
HANDLE procsync_CreateMutexExA(LPSECURITY_ATTRIBUTES, LPCSTR lpName, DWORD dwFlags, DWORD dwDesiredAccess);
HANDLE procsync_CreateMutexExW(LPSECURITY_ATTRIBUTES, LPCWSTR lpName, DWORD dwFlags, DWORD dwDesiredAccess);
HANDLE procsync_OpenMutexA(DWORD dwDesiredAccess, BOOL bInheritHandle, LPCSTR lpName);
HANDLE procsync_OpenMutexW(DWORD dwDesiredAccess, BOOL bInheritHandle, LPCWSTR lpName);
BOOL procsync_ReleaseMutex(HANDLE hMutex);

/* Semaphores */
HANDLE procsync_CreateSemaphoreA(LPSECURITY_ATTRIBUTES, LONG lInitialCount, LONG lMaximumCount, LPCSTR lpName);
HANDLE procsync_CreateSemaphoreW(LPSECURITY_ATTRIBUTES, LONG lInitialCount, LONG lMaximumCount, LPCWSTR lpName);
HANDLE procsync_CreateSemaphoreExA(LPSECURITY_ATTRIBUTES, LONG lInitialCount, LONG lMaximumCount, LPCSTR lpName, DWORD dwFlags, DWORD dwDesiredAccess);
HANDLE procsync_CreateSemaphoreExW(LPSECURITY_ATTRIBUTES, LONG lInitialCount, LONG lMaximumCount, LPCWSTR lpName, DWORD dwFlags, DWORD dwDesiredAccess);
HANDLE procsync_OpenSemaphoreA(DWORD dwDesiredAccess, BOOL bInheritHandle, LPCSTR lpName);
HANDLE procsync_OpenSemaphoreW(DWORD dwDesiredAccess, BOOL bInheritHandle, LPCWSTR lpName);
BOOL procsync_ReleaseSemaphore(HANDLE hSemaphore, LONG lReleaseCount, LPLONG lpPreviousCount);

/* Waitable timers */
HANDLE procsync_CreateWaitableTimerA(LPSECURITY_ATTRIBUTES, BOOL bManualReset, LPCSTR lpTimerName);
HANDLE procsync_CreateWaitableTimerW(LPSECURITY_ATTRIBUTES, BOOL bManualReset, LPCWSTR lpTimerName);
HANDLE procsync_CreateWaitableTimerExA(LPSECURITY_ATTRIBUTES, LPCSTR lpTimerName, DWORD dwFlags, DWORD dwDesiredAccess);
HANDLE procsync_CreateWaitableTimerExW(LPSECURITY_ATTRIBUTES, LPCWSTR lpTimerName, DWORD dwFlags, DWORD dwDesiredAccess);
HANDLE procsync_OpenWaitableTimerA(DWORD dwDesiredAccess, BOOL bInheritHandle, LPCSTR lpTimerName);
HANDLE procsync_OpenWaitableTimerW(DWORD dwDesiredAccess, BOOL bInheritHandle, LPCWSTR lpTimerName);
BOOL procsync_SetWaitableTimer(HANDLE hTimer, const LARGE_INTEGER *lpDueTime, LONG lPeriod,
                               PTIMERAPCROUTINE pfnCompletionRoutine, LPVOID lpArgToCompletionRoutine, BOOL fResume);
BOOL procsync_SetWaitableTimerEx(HANDLE hTimer, const LARGE_INTEGER *lpDueTime, LONG lPeriod,
                                 PTIMERAPCROUTINE pfnCompletionRoutine, LPVOID lpArgToCompletionRoutine,
                                 PREASON_CONTEXT WakeContext, ULONG TolerableDelay);
BOOL procsync_CancelWaitableTimer(HANDLE hTimer);

/* Waits */
DWORD procsync_WaitForSingleObject(HANDLE hHandle, DWORD dwMilliseconds);
DWORD procsync_WaitForSingleObjectEx(HANDLE hHandle, DWORD dwMilliseconds, BOOL bAlertable);
DWORD procsync_WaitForMultipleObjects(DWORD nCount, const HANDLE *lpHandles, BOOL bWaitAll, DWORD dwMilliseconds);
DWORD procsync_WaitForMultipleObjectsEx(DWORD nCount, const HANDLE *lpHandles, BOOL bWaitAll, DWORD dwMilliseconds, BOOL bAlertable);
DWORD procsync_SignalObjectAndWait(HANDLE hObjectToSignal, HANDLE hObjectToWaitOn, DWORD dwMilliseconds, BOOL bAlertable);
DWORD procsync_SleepEx(DWORD dwMilliseconds, BOOL bAlertable);
void procsync_Sleep(DWORD dwMilliseconds);
DWORD procsync_QueueUserAPC(PAPCFUNC pfnAPC, HANDLE hThread, ULONG_PTR dwData); /* hThread: GetCurrentThread() only */

/* Handles and processes */
BOOL procsync_CloseHandle(HANDLE hObject);
BOOL procsync_DuplicateHandle(HANDLE hSourceProcessHandle, HANDLE hSourceHandle, HANDLE hTargetProcessHandle,
                              LPHANDLE lpTargetHandle, DWORD dwDesiredAccess, BOOL bInheritHandle, DWORD dwOptions);
BOOL procsync_GetHandleInformation(HANDLE hObject, LPDWORD lpdwFlags);
BOOL procsync_SetHandleInformation(HANDLE hObject, DWORD dwMask, DWORD dwFlags);
HANDLE procsync_GetCurrentProcess(void);
DWORD procsync_GetCurrentProcessId(void);
HANDLE procsync_OpenProcess(DWORD dwDesiredAccess, BOOL bInheritHandle, DWORD dwProcessId);
HANDLE procsync_GetCurrentThread(void);
DWORD procsync_GetCurrentThreadId(void);
DWORD procsync_GetLastError(void);
void procsync_SetLastError(DWORD dwErrCode);

/* Not Win32: starting children that inherit handles (see docs/PORTING.md).
 * procsync_spawn: CreateProcess(bInheritHandles) of this port; returns the pid (reap it
 * with waitpid) or 0 with GetLastError() set. argv is NULL-terminated, argv[0] the name.
 * procsync_prepare_exec: call in a forked child right before exec*(environ): inheritable
 * handles survive the exec under the same values. */
DWORD procsync_spawn(const char *path, const char *const argv[], BOOL bInheritHandles);
BOOL procsync_prepare_exec(void);

#ifndef PROCSYNC_NO_WIN32_NAMES
#define CreateEventA procsync_CreateEventA
#define CreateEventW procsync_CreateEventW
#define CreateEventExA procsync_CreateEventExA
#define CreateEventExW procsync_CreateEventExW
#define OpenEventA procsync_OpenEventA
#define OpenEventW procsync_OpenEventW
#define SetEvent procsync_SetEvent
#define ResetEvent procsync_ResetEvent
#define PulseEvent procsync_PulseEvent
#define CreateMutexA procsync_CreateMutexA
#define CreateMutexW procsync_CreateMutexW
#define CreateMutexExA procsync_CreateMutexExA
#define CreateMutexExW procsync_CreateMutexExW
#define OpenMutexA procsync_OpenMutexA
#define OpenMutexW procsync_OpenMutexW
#define ReleaseMutex procsync_ReleaseMutex
#define CreateSemaphoreA procsync_CreateSemaphoreA
#define CreateSemaphoreW procsync_CreateSemaphoreW
#define CreateSemaphoreExA procsync_CreateSemaphoreExA
#define CreateSemaphoreExW procsync_CreateSemaphoreExW
#define OpenSemaphoreA procsync_OpenSemaphoreA
#define OpenSemaphoreW procsync_OpenSemaphoreW
#define ReleaseSemaphore procsync_ReleaseSemaphore
#define CreateWaitableTimerA procsync_CreateWaitableTimerA
#define CreateWaitableTimerW procsync_CreateWaitableTimerW
#define CreateWaitableTimerExA procsync_CreateWaitableTimerExA
#define CreateWaitableTimerExW procsync_CreateWaitableTimerExW
#define OpenWaitableTimerA procsync_OpenWaitableTimerA
#define OpenWaitableTimerW procsync_OpenWaitableTimerW
#define SetWaitableTimer procsync_SetWaitableTimer
#define SetWaitableTimerEx procsync_SetWaitableTimerEx
#define CancelWaitableTimer procsync_CancelWaitableTimer
#define WaitForSingleObject procsync_WaitForSingleObject
#define WaitForSingleObjectEx procsync_WaitForSingleObjectEx
#define WaitForMultipleObjects procsync_WaitForMultipleObjects
#define WaitForMultipleObjectsEx procsync_WaitForMultipleObjectsEx
#define SignalObjectAndWait procsync_SignalObjectAndWait
#define SleepEx procsync_SleepEx
#define Sleep procsync_Sleep
#define QueueUserAPC procsync_QueueUserAPC
#define CloseHandle procsync_CloseHandle
#define DuplicateHandle procsync_DuplicateHandle
#define GetHandleInformation procsync_GetHandleInformation
#define SetHandleInformation procsync_SetHandleInformation
#define GetCurrentProcess procsync_GetCurrentProcess
#define GetCurrentProcessId procsync_GetCurrentProcessId
#define OpenProcess procsync_OpenProcess
#define GetCurrentThread procsync_GetCurrentThread
#define GetCurrentThreadId procsync_GetCurrentThreadId
#define GetLastError procsync_GetLastError
#define SetLastError procsync_SetLastError

#ifdef UNICODE
#define CreateEvent CreateEventW
#define CreateEventEx CreateEventExW
#define OpenEvent OpenEventW
#define CreateMutex CreateMutexW
#define CreateMutexEx CreateMutexExW
#define OpenMutex OpenMutexW
#define CreateSemaphore CreateSemaphoreW
#define CreateSemaphoreEx CreateSemaphoreExW
#define OpenSemaphore OpenSemaphoreW
#define CreateWaitableTimer CreateWaitableTimerW
#define CreateWaitableTimerEx CreateWaitableTimerExW
#define OpenWaitableTimer OpenWaitableTimerW
#else
#define CreateEvent CreateEventA
#define CreateEventEx CreateEventExA
#define OpenEvent OpenEventA
#define CreateMutex CreateMutexA
#define CreateMutexEx CreateMutexExA
#define OpenMutex OpenMutexA
#define CreateSemaphore CreateSemaphoreA
#define CreateSemaphoreEx CreateSemaphoreExA
#define OpenSemaphore OpenSemaphoreA
#define CreateWaitableTimer CreateWaitableTimerA
#define CreateWaitableTimerEx CreateWaitableTimerExA
#define OpenWaitableTimer OpenWaitableTimerA
#endif
#endif /* PROCSYNC_NO_WIN32_NAMES */

#ifdef __cplusplus
}
#endif

#endif /* PROCSYNC_WIN32_H */
