/* fake_nvml.c - a stand-in libnvidia-ml.so.1 for test_limiter_nvml.py on hosts without NVIDIA's
 * driver: an 80 GiB device with 1 GiB used. Only what the NVML memory-info hook touches. */
typedef struct { unsigned long long total, free, used; } mem_v1;
typedef struct { unsigned int version; unsigned long long total, reserved, free, used; } mem_v2;

int nvmlInit_v2(void) { return 0; }
int nvmlDeviceGetHandleByIndex_v2(unsigned int i, void **dev) { *dev = (void *)(unsigned long)(i + 1); return 0; }
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
