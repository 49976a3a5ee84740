/* fake_nvml.c - a stand-in libnvidia-ml.so.1 for test_limiter_nvml.py on hosts without NVIDIA's
 * driver: an 80 GiB device with 1 GiB used, and per-process utilization that reports the calling
 * process at FAKE_NVML_SM_UTIL percent (default 50) on device FAKE_NVML_INDEX only (default 0).
 * Only what the limiter's NVML hook and utilization source touch. */
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
typedef struct { unsigned long long total, free, used; } mem_v1;
typedef struct { unsigned int version; unsigned long long total, reserved, free, used; } mem_v2;

int nvmlInit_v2(void) { return 0; }
int nvmlDeviceGetHandleByIndex_v2(unsigned int i, void **dev)
{
    const char *want = getenv("FAKE_NVML_INDEX");
    if (want && (unsigned)atoi(want) != i) return 2; /* NVML_ERROR_INVALID_ARGUMENT */
    *dev = (void *)(unsigned long)(i + 1);
    return 0;
}

typedef struct { unsigned int pid; unsigned long long timeStamp; unsigned int smUtil, memUtil, encUtil, decUtil; } sample;

int nvmlDeviceGetProcessUtilization(void *dev, sample *s, unsigned int *count, unsigned long long last_seen)
{
    (void)dev; (void)last_seen;
    if (!count || *count < 1 || !s) return 7; /* NVML_ERROR_INSUFFICIENT_SIZE */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    const char *u = getenv("FAKE_NVML_SM_UTIL");
    s[0].pid = (unsigned)getpid();
    s[0].timeStamp = (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000;
    s[0].smUtil = u ? (unsigned)atoi(u) : 50;
    s[0].memUtil = s[0].encUtil = s[0].decUtil = 0;
    *count = 1;
    return 0;
}
int nvmlDeviceGetMemoryInfo(void *dev, mem_v1 *m)
{
    (void)dev;
    m->total = 80ull << 30; m->used = 1ull << 30; m->free = m->total - m->used;
    return 0;
}
int nvmlDeviceGetMemoryInfo_v2(void *dev, mem_v2 *m)
{
    (void)dev;
    m->total = 80ull << 30; m->reserved = 0; m->used = 1ull << 30; m->free = m->total - m->used;
    return 0;
}
