/* test_driver.c - unit test of the emulated driver layer without kernels: init, cuGetProcAddress
 * version selection, export tables (incl. the integrity digest's determinism), error names,
 * contexts (primary/explicit, push/pop, sticky errors), memory table checks, copies, memsets,
 * streams, events, handle validation. Run by `make -C emu_c test` (ASan/UBSan with SANITIZE=1).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "emu_internal.h"
#include "cudart_export_tables.h"
#include <cudaProfiler.h>

#include "tf_unit_check.h"
#define OK(call) CHECK((call) == CUDA_SUCCESS)

static void test_init_and_proc_address(void)
{
    int v = 0;
    CUdevice dev;
    CHECK(cuDeviceGet(&dev, 0) == CUDA_ERROR_NOT_INITIALIZED);
    CHECK(cuInit(1) == CUDA_ERROR_INVALID_VALUE);
    OK(cuInit(0));
    OK(cuDriverGetVersion(&v));
    CHECK(v == 13020);
    void *fn = NULL;
    CUdriverProcAddressQueryResult st;
    OK(cuGetProcAddress_v2("cuMemAlloc", &fn, 12000, 0, &st));
    CHECK(fn == (void *)(uintptr_t)&cuMemAlloc_v2 && st == CU_GET_PROC_ADDRESS_SUCCESS);
    OK(cuGetProcAddress_v2("cuCtxCreate", &fn, 3020, 0, &st));
    CHECK(fn == (void *)(uintptr_t)&cuCtxCreate_v2);
    OK(cuGetProcAddress_v2("cuCtxCreate", &fn, 13000, 0, &st));
    CHECK(fn == (void *)(uintptr_t)&cuCtxCreate_v4);
    OK(cuGetProcAddress_v2("cuGetProcAddress", &fn, 11030, 0, &st));
    CHECK(fn == (void *)(uintptr_t)&cuGetProcAddress);
    OK(cuGetProcAddress_v2("cuGetProcAddress", &fn, 12000, 0, &st));
    CHECK(fn == (void *)(uintptr_t)&cuGetProcAddress_v2);
    /* cudart 13.1+ asks for cuStreamGetCtx at 12050: the three-argument _v2 */
    OK(cuGetProcAddress_v2("cuStreamGetCtx", &fn, 12050, 0, &st));
    CHECK(fn == (void *)(uintptr_t)&cuStreamGetCtx_v2);
    OK(cuGetProcAddress_v2("cuStreamGetCtx", &fn, 12040, 0, &st));
    CHECK(fn == (void *)(uintptr_t)&cuStreamGetCtx);
    /* per-thread default stream requests get the _ptds/_ptsz variant (its NULL stream is the thread's own) */
    void *ptds = NULL;
    OK(cuGetProcAddress_v2("cuMemcpyHtoD", &ptds, 7000, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM, &st));
    CHECK(ptds == (void *)(uintptr_t)&cuMemcpyHtoD_v2_ptds);
    void *plain = NULL; /* cudart's launch entry (emu_rt_cuLaunchKernel) has its own variant */
    OK(cuGetProcAddress_v2("cuLaunchKernel", &plain, 4000, 0, &st));
    OK(cuGetProcAddress_v2("cuLaunchKernel", &ptds, 4000, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM, &st));
    CHECK(plain && ptds && ptds != plain);
    OK(cuGetProcAddress_v2("cuDeviceGet", &ptds, 2000, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM, &st));
    CHECK(ptds == (void *)(uintptr_t)&cuDeviceGet); /* no stream: no variant */
    CHECK(cuGetProcAddress_v2("cuLaunchKernelEx", &fn, 11000, 0, &st) == CUDA_ERROR_NOT_FOUND);
    CHECK(st == CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT && fn == NULL);
    CHECK(cuGetProcAddress_v2("cuNoSuchThing", &fn, 13000, 0, &st) == CUDA_ERROR_NOT_FOUND);
    CHECK(st == CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND);
    CHECK(cuGetProcAddress_v2("", &fn, 0, 0, &st) == CUDA_ERROR_NOT_FOUND);
    CHECK(cuGetProcAddress(NULL, &fn, 13000, 0) == CUDA_ERROR_INVALID_VALUE);
}

static void test_errors_and_export_tables(void)
{
    const char *s = NULL;
    OK(cuGetErrorName(CUDA_ERROR_ILLEGAL_ADDRESS, &s));
    CHECK(s && strcmp(s, "CUDA_ERROR_ILLEGAL_ADDRESS") == 0);
    OK(cuGetErrorString(CUDA_ERROR_OUT_OF_MEMORY, &s));
    CHECK(s && strstr(s, "memory") != NULL);
    CHECK(cuGetErrorName((CUresult)12345, &s) == CUDA_ERROR_INVALID_VALUE && s == NULL);
    static const unsigned char cudart_if[16] = {0x6b, 0xd5, 0xfb, 0x6c, 0x5b, 0xf4, 0xe7, 0x4a,
                                                0x89, 0x87, 0xd9, 0x39, 0x12, 0xfd, 0x9d, 0xf9};
    static const unsigned char integrity[16] = {0xd4, 0x08, 0x20, 0x55, 0xbd, 0xe6, 0x70, 0x4b,
                                                0x8d, 0x34, 0xba, 0x12, 0x3c, 0x66, 0xe1, 0xf2};
    CUuuid id;
    const void *table = NULL;
    memcpy(id.bytes, cudart_if, 16);
    OK(cuGetExportTable(&table, &id));
    CHECK(table && ((const uintptr_t *)table)[0] == 13 * sizeof(void *));
    CUresult (*primary)(CUcontext *, CUdevice) = (CUresult(*)(CUcontext *, CUdevice))((void *const *)table)[2];
    CUcontext pc = NULL;
    OK(primary(&pc, 0));
    CHECK(pc == (CUcontext)&g_emu.primary[0]);
    /* slot 12: cudart 13.1+ (shared) calls it once at start-up and needs success */
    CUresult (*slot12)(void) = (CUresult(*)(void))((void *const *)table)[12];
    CHECK(slot12 && slot12() == CUDA_SUCCESS);
    OK(cuDevicePrimaryCtxRelease_v2(0));
    /* context identity (cudart 13.4+ needs the table): every slot present, each answers an error */
    static const unsigned char ctx_ident[16] = {0x21, 0x31, 0x8c, 0x60, 0x97, 0x14, 0x32, 0x48,
                                                0x8c, 0xa6, 0x41, 0xff, 0x73, 0x24, 0xc8, 0xf2};
    memcpy(id.bytes, ctx_ident, 16);
    OK(cuGetExportTable(&table, &id));
    size_t nslots = ((const uintptr_t *)table)[0] / sizeof(void *);
    CHECK(nslots > 51);
    for (size_t i = 1; i < nslots; i++)
        CHECK(((void *const *)table)[i] != NULL);
    /* cuBLAS: slot 51 = the stream a handle names (per-thread flag for a 0 handle), slot 39 = its id */
    CUresult (*slot51)(CUcontext, CUstream, CUstream *, int) =
        (CUresult(*)(CUcontext, CUstream, CUstream *, int))((void *const *)table)[51];
    CUresult (*slot39)(CUcontext, CUstream, unsigned long long *) =
        (CUresult(*)(CUcontext, CUstream, unsigned long long *))((void *const *)table)[39];
    CUstream named = (CUstream)&id;
    CHECK(slot51(NULL, NULL, &named, 1) == CUDA_SUCCESS && named == CU_STREAM_PER_THREAD);
    CHECK(slot51(NULL, NULL, &named, 0) == CUDA_SUCCESS && named == NULL);
    CUcontext sc;
    CUstream st;
    OK(cuCtxCreate_v2(&sc, 0, 0));
    OK(cuStreamCreate(&st, 0));
    CHECK(slot51(sc, st, &named, 0) == CUDA_SUCCESS && named == st);
    unsigned long long sid_table = 0, sid_api = 1;
    OK(slot39(sc, st, &sid_table));
    OK(cuStreamGetId(st, &sid_api));
    CHECK(sid_table == sid_api);
    OK(cuStreamDestroy_v2(st));
    OK(cuCtxDestroy_v2(sc));
    CHECK(((CUresult(*)(void))((void *const *)table)[50])() == CUDA_ERROR_NOT_SUPPORTED); /* unknown slots */
    memcpy(id.bytes, integrity, 16);
    OK(cuGetExportTable(&table, &id));
    CUresult (*digest)(uint32_t, uint64_t, uint64_t *) =
        (CUresult(*)(uint32_t, uint64_t, uint64_t *))((void *const *)table)[1];
    uint64_t a[2], b[2], c[2];
    OK(digest(13002, 1700000000, a));
    OK(digest(13002, 1700000000, b));
    OK(digest(13002, 1700000001, c));
    CHECK(a[0] == b[0] && a[1] == b[1]);
    CHECK(a[0] != c[0] || a[1] != c[1]);
    /* tools TLS: cublasLt calls slot 2 as CUresult fn(void **out); no slot may be NULL (a crash) */
    static const unsigned char tools_tls[16] = {0x42, 0xd8, 0x5a, 0x81, 0x23, 0xf6, 0xcb, 0x47,
                                                0x82, 0x98, 0xf6, 0xe7, 0x8a, 0x3a, 0xec, 0xdc};
    memcpy(id.bytes, tools_tls, 16);
    OK(cuGetExportTable(&table, &id));
    CHECK(((const uintptr_t *)table)[0] == 4 * sizeof(void *));
    for (size_t i = 1; i < 4; i += 2) {
        CUresult (*slot)(void **) = (CUresult(*)(void **))((void *const *)table)[i];
        void *state = &id;
        CHECK(slot && slot(&state) == CUDA_ERROR_NOT_SUPPORTED && state == NULL);
    }
    /* slot 2: the current context, whose id cublasLt then asks of table 21318c60 slot 4 (= cuCtxGetId) */
    CUcontext made, got = NULL;
    OK(cuCtxCreate_v2(&made, 0, 0));
    CUresult (*current)(CUcontext *) = (CUresult(*)(CUcontext *))((void *const *)table)[2];
    OK(current(&got));
    CHECK(got == made);
    memcpy(id.bytes, ctx_ident, 16);
    OK(cuGetExportTable(&table, &id));
    CUresult (*ctx_id)(CUcontext, unsigned long long *) =
        (CUresult(*)(CUcontext, unsigned long long *))((void *const *)table)[4];
    unsigned long long via_table = 0, via_api = 1;
    OK(ctx_id(made, &via_table));
    OK(cuCtxGetId(made, &via_api));
    CHECK(via_table == via_api);
    OK(cuCtxDestroy_v2(made));
    memset(id.bytes, 0x5a, 16);
    CHECK(cuGetExportTable(&table, &id) == CUDA_ERROR_NOT_SUPPORTED && table == NULL);
}

static void test_device_queries(void)
{
    int n = 0, v = 0;
    char name[128];
    size_t total = 0;
    OK(cuDeviceGetCount(&n));
    CHECK(n == 1);
    OK(cuDeviceGetName(name, sizeof(name), 0));
    CHECK(strstr(name, "Emulated") != NULL);
    CHECK(cuDeviceGetName(name, sizeof(name), 1) == CUDA_ERROR_INVALID_DEVICE);
    OK(cuDeviceTotalMem_v2(&total, 0));
    CHECK(total == (size_t)16384 << 20);
    /* default capability 12.1 (unless TF_EMU_CC says otherwise): what NVIDIA's libraries ship PTX for */
    int major = 0, minor = 0, want = 121;
    const char *cc_env = getenv("TF_EMU_CC");
    if (cc_env && *cc_env) { /* "9.0", "90", "sm_90"; anything else is ignored by the driver */
        const char *v = strncmp(cc_env, "sm_", 3) ? cc_env : cc_env + 3;
        int x = strchr(v, '.') ? (int)(strtod(v, NULL) * 10 + 0.5) : atoi(v);
        if (x == 75 || x == 80 || x == 86 || x == 89 || x == 90 || x == 100 || x == 120 || x == 121)
            want = x;
    }
    OK(cuDeviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, 0));
    OK(cuDeviceGetAttribute(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, 0));
    CHECK(major * 10 + minor == want);
    int ma2 = 0, mi2 = 0;
    OK(cuDeviceComputeCapability(&ma2, &mi2, 0));
    CHECK(ma2 == major && mi2 == minor);
    /* limits coherent with the capability: threads/SM and shared memory/SM bound blocks/SM sanely */
    int thr_sm = 0, smem_sm = 0, optin = 0, blk_sm = 0, sms = 0, warp = 0;
    OK(cuDeviceGetAttribute(&thr_sm, CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR, 0));
    OK(cuDeviceGetAttribute(&smem_sm, CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR, 0));
    OK(cuDeviceGetAttribute(&optin, CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN, 0));
    OK(cuDeviceGetAttribute(&blk_sm, CU_DEVICE_ATTRIBUTE_MAX_BLOCKS_PER_MULTIPROCESSOR, 0));
    OK(cuDeviceGetAttribute(&sms, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, 0));
    OK(cuDeviceGetAttribute(&warp, CU_DEVICE_ATTRIBUTE_WARP_SIZE, 0));
    CHECK(warp == 32 && sms > 0 && optin <= smem_sm && optin >= 48 * 1024 && blk_sm >= 16);
    if (want == 121)
        CHECK(thr_sm == 1536 && smem_sm == 102400 && optin == 101376 && blk_sm == 32);
    if (want == 90)
        CHECK(thr_sm == 2048 && smem_sm == 233472 && optin == 232448 && sms == 132);
    OK(cuDeviceGetAttribute(&v, CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK, 0));
    CHECK(v == 1024);
    CHECK(cuDeviceGetAttribute(&v, CU_DEVICE_ATTRIBUTE_MAX, 0) == CUDA_ERROR_INVALID_VALUE);
    char bus[32];
    CUdevice d = -1;
    OK(cuDeviceGetPCIBusId(bus, sizeof(bus), 0));
    OK(cuDeviceGetByPCIBusId(&d, bus));
    CHECK(d == 0);
}

static void test_contexts_and_memory(void)
{
    CUdeviceptr p;
    CHECK(cuMemAlloc_v2(&p, 16) == CUDA_ERROR_INVALID_CONTEXT); /* no current context yet */
    CUcontext ctx, cur, popped;
    OK(cuCtxCreate_v2(&ctx, 0, 0));
    OK(cuCtxGetCurrent(&cur));
    CHECK(cur == ctx);
    unsigned ver = 0;
    OK(cuCtxGetApiVersion(NULL, &ver));
    CHECK(ver == 3020);
    size_t free0, free1, total;
    OK(cuMemGetInfo_v2(&free0, &total));
    OK(cuMemAlloc_v2(&p, 1000));
    OK(cuMemGetInfo_v2(&free1, &total));
    CHECK(free0 - free1 == 1024); /* 256-byte granularity */
    CUdeviceptr base;
    size_t size;
    OK(cuMemGetAddressRange_v2(&base, &size, p + 500));
    CHECK(base == p && size == 1024);
    CHECK(cuMemGetAddressRange_v2(&base, &size, 0x10) == CUDA_ERROR_NOT_FOUND);
    unsigned char host[1024], back[1024];
    for (int i = 0; i < 1024; i++)
        host[i] = (unsigned char)i;
    OK(cuMemcpyHtoD_v2(p, host, 1024));
    CHECK(cuMemcpyHtoD_v2(p + 512, host, 1024) == CUDA_ERROR_INVALID_VALUE); /* runs past the end */
    CHECK(cuMemcpyHtoD_v2(0x1000, host, 16) == CUDA_ERROR_INVALID_VALUE);   /* no allocation */
    OK(cuMemsetD16_v2(p + 2, 0xbeef, 3));
    OK(cuMemcpyDtoH_v2(back, p, 1024));
    CHECK(back[0] == 0 && back[1] == 1 && back[2] == 0xef && back[3] == 0xbe && back[7] == 0xbe && back[8] == 8);
    OK(cuMemsetD2D32_v2(p, 256, 7, 4, 3));
    OK(cuMemcpyDtoH_v2(back, p, 1024));
    uint32_t w;
    memcpy(&w, back + 256 * 2 + 12, 4);
    CHECK(w == 7);
    CHECK(back[16] == 16);
    /* 2D copy host -> device with pitches */
    CUDA_MEMCPY2D c2 = {0};
    c2.srcMemoryType = CU_MEMORYTYPE_HOST;
    c2.srcHost = host;
    c2.srcPitch = 10;
    c2.dstMemoryType = CU_MEMORYTYPE_DEVICE;
    c2.dstDevice = p;
    c2.dstPitch = 100;
    c2.WidthInBytes = 10;
    c2.Height = 5;
    OK(cuMemcpy2D_v2(&c2));
    OK(cuMemcpyDtoH_v2(back, p, 1024));
    CHECK(back[400] == 40 && back[409] == 49);
    c2.Height = 20; /* 19 * 100 + 10 > 1024: outside the allocation */
    CHECK(cuMemcpy2D_v2(&c2) == CUDA_ERROR_INVALID_VALUE);
    /* host-mapped memory is a device address too */
    void *hp;
    CUdeviceptr hd;
    OK(cuMemHostAlloc(&hp, 64, CU_MEMHOSTALLOC_DEVICEMAP));
    OK(cuMemHostGetDevicePointer_v2(&hd, hp, 0));
    CHECK(hd == (CUdeviceptr)(uintptr_t)hp);
    OK(cuMemcpyDtoD_v2(hd, p, 64));
    CHECK(memcmp(hp, back, 64) == 0);
    OK(cuMemFreeHost(hp));
    CHECK(cuMemFreeHost(hp) == CUDA_ERROR_INVALID_VALUE);
    unsigned int attr_type = 0;
    OK(cuPointerGetAttribute(&attr_type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, p));
    CHECK(attr_type == CU_MEMORYTYPE_DEVICE);
    CHECK(cuMemFree_v2(p + 8) == CUDA_ERROR_INVALID_VALUE);
    OK(cuMemFree_v2(p));
    CHECK(cuMemFree_v2(p) == CUDA_ERROR_INVALID_VALUE);
    CHECK(cuMemAlloc_v2(&p, (size_t)1 << 50) == CUDA_ERROR_OUT_OF_MEMORY);
    /* push/pop and the primary context */
    CUcontext prim;
    OK(cuDevicePrimaryCtxRetain(&prim, 0));
    OK(cuCtxPushCurrent_v2(prim));
    OK(cuCtxGetCurrent(&cur));
    CHECK(cur == prim);
    OK(cuCtxPopCurrent_v2(&popped));
    CHECK(popped == prim);
    OK(cuCtxGetCurrent(&cur));
    CHECK(cur == ctx);
    unsigned flags;
    int active;
    OK(cuDevicePrimaryCtxGetState(0, &flags, &active));
    CHECK(active == 1);
    OK(cuDevicePrimaryCtxRelease_v2(0));
    OK(cuDevicePrimaryCtxGetState(0, &flags, &active));
    CHECK(active == 0);
    /* a sticky error poisons the context until it is destroyed */
    emu_ctx_set_sticky((emu_ctx *)ctx, CUDA_ERROR_ILLEGAL_ADDRESS);
    CHECK(cuMemAlloc_v2(&p, 16) == CUDA_ERROR_ILLEGAL_ADDRESS);
    CHECK(cuCtxSynchronize() == CUDA_ERROR_ILLEGAL_ADDRESS);
    OK(cuCtxGetApiVersion(ctx, &ver)); /* metadata still answers (cudaDeviceReset relies on it) */
    CUdevice d0 = -1;
    OK(cuCtxGetDevice(&d0));
    CHECK(d0 == 0);
    OK(cuCtxDestroy_v2(ctx));
    CHECK(cuCtxDestroy_v2(ctx) == CUDA_ERROR_INVALID_CONTEXT);
    CHECK(cuCtxPushCurrent_v2((CUcontext)(uintptr_t)0x1234) == CUDA_ERROR_INVALID_CONTEXT);
}

static void CUDA_CB host_fn(void *arg) { *(int *)arg += 1; }
static void CUDA_CB stream_cb(CUstream s, CUresult status, void *arg)
{
    (void)s;
    *(int *)arg = status == CUDA_SUCCESS ? 10 : -1;
}

/* Stream work runs on the stream's thread after the call returns (emu_stream_queue.c): a stream blocked on
 * a host flag answers NOT_READY, its host function has not run, the legacy NULL stream waits for it (a
 * non-blocking stream does not), and a stream destroyed with work pending still runs it. */
static void test_stream_work_is_asynchronous(void)
{
    CUcontext ctx;
    OK(cuCtxCreate_v2(&ctx, 0, 0));
    CUstream s, nb;
    OK(cuStreamCreate(&s, 0));
    OK(cuStreamCreate(&nb, CU_STREAM_NON_BLOCKING));
    volatile uint32_t *flag, *w;
    OK(cuMemAllocHost_v2((void **)&flag, 4));
    OK(cuMemAllocHost_v2((void **)&w, 4));
    *flag = 0;
    *w = 0;
    CUevent e;
    OK(cuEventCreate(&e, 0));
    OK(cuStreamWaitValue32(s, (CUdeviceptr)(uintptr_t)flag, 1, CU_STREAM_WAIT_VALUE_GEQ));
    int ran = 0, ran_nb = 0, ran_late = 0;
    OK(cuLaunchHostFunc(s, host_fn, &ran));
    OK(cuEventRecord(e, s));
    OK(cuStreamWriteValue32(NULL, (CUdeviceptr)(uintptr_t)w, 7, 0)); /* waits for s (legacy stream) */
    OK(cuLaunchHostFunc(nb, host_fn, &ran_nb));
    OK(cuStreamSynchronize(nb)); /* a non-blocking stream does not wait for s nor for the NULL stream */
    CHECK(ran_nb == 1);
    usleep(20000);
    CHECK(ran == 0 && *w == 0);
    CHECK(cuStreamQuery(s) == CUDA_ERROR_NOT_READY);
    CHECK(cuEventQuery(e) == CUDA_ERROR_NOT_READY);
    CHECK(cuStreamQuery(NULL) == CUDA_ERROR_NOT_READY);
    *flag = 1;
    OK(cuStreamSynchronize(s));
    CHECK(ran == 1);
    OK(cuEventQuery(e));
    OK(cuStreamSynchronize(NULL));
    CHECK(*w == 7);
    OK(cuStreamWaitValue32(s, (CUdeviceptr)(uintptr_t)flag, 2, CU_STREAM_WAIT_VALUE_GEQ));
    OK(cuLaunchHostFunc(s, host_fn, &ran_late));
    OK(cuStreamDestroy_v2(s)); /* returns at once; the queued work still runs */
    CHECK(ran_late == 0);
    *flag = 2;
    OK(cuCtxSynchronize());
    CHECK(ran_late == 1);
    OK(cuEventDestroy_v2(e));
    OK(cuStreamDestroy_v2(nb));
    OK(cuMemFreeHost((void *)flag));
    OK(cuMemFreeHost((void *)w));
    OK(cuCtxDestroy_v2(ctx));
}

static void test_streams_and_events(void)
{
    CUcontext ctx;
    OK(cuCtxCreate_v2(&ctx, 0, 0));
    CUstream s;
    OK(cuStreamCreateWithPriority(&s, CU_STREAM_NON_BLOCKING, -3));
    int prio = 0;
    unsigned flags = 0;
    OK(cuStreamGetPriority(s, &prio));
    OK(cuStreamGetFlags(s, &flags));
    CHECK(prio == -3 && flags == CU_STREAM_NON_BLOCKING);
    CUstreamAttrValue av;
    OK(cuStreamGetAttribute(s, CU_LAUNCH_ATTRIBUTE_PRIORITY, &av));
    CHECK(av.priority == -3);
    av.priority = -1;
    OK(cuStreamSetAttribute(s, CU_LAUNCH_ATTRIBUTE_PRIORITY, &av));
    OK(cuStreamGetPriority(s, &prio));
    CHECK(prio == -1);
    CUevent a, b, nt;
    OK(cuEventCreate(&a, 0));
    OK(cuEventCreate(&b, 0));
    OK(cuEventCreate(&nt, CU_EVENT_DISABLE_TIMING));
    float ms = -1;
    CHECK(cuEventElapsedTime_v2(&ms, a, b) == CUDA_ERROR_INVALID_HANDLE); /* not recorded yet */
    OK(cuEventRecord(a, s));
    usleep(20000);
    int ran = 0, cb = 0;
    OK(cuLaunchHostFunc(s, host_fn, &ran));
    OK(cuStreamAddCallback(s, stream_cb, &cb, 0));
    OK(cuEventRecord(b, s));
    OK(cuEventRecord(nt, s));
    OK(cuStreamWaitEvent(NULL, b, 0));
    OK(cuStreamSynchronize(s));
    OK(cuEventSynchronize(b));
    OK(cuEventElapsedTime_v2(&ms, a, b));
    CHECK(ms >= 15.0f && ms < 5000.0f);
    CHECK(cuEventElapsedTime_v2(&ms, a, nt) == CUDA_ERROR_INVALID_HANDLE);
    CHECK(ran == 1 && cb == 10);
    OK(cuStreamQuery(s));
    OK(cuStreamQuery(CU_STREAM_PER_THREAD));
    CHECK(cuStreamQuery((CUstream)(uintptr_t)0x4321) == CUDA_ERROR_INVALID_HANDLE);
    OK(cuEventDestroy_v2(a));
    OK(cuEventDestroy_v2(b));
    OK(cuEventDestroy_v2(nt));
    CHECK(cuEventQuery(a) == CUDA_ERROR_INVALID_HANDLE);
    OK(cuStreamDestroy_v2(s));
    CHECK(cuStreamDestroy_v2(s) == CUDA_ERROR_INVALID_HANDLE);
    for (int i = 0; i < 100000; i++) { /* handle churn: the registry must not grow without bound */
        CUevent e;
        OK(cuEventCreate(&e, 0));
        OK(cuEventDestroy_v2(e));
    }
    CHECK(emu_handle_capacity() <= 4096);
    /* a module image that is neither fatbin nor PTX is refused; bogus handles are not dereferenced */
    CUmodule m;
    CHECK(cuModuleLoadData(&m, "definitely not a module") == CUDA_ERROR_INVALID_IMAGE);
    char errlog[256] = "x";
    CUjit_option opts[] = {CU_JIT_ERROR_LOG_BUFFER, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES};
    void *vals[] = {errlog, (void *)(uintptr_t)sizeof(errlog)};
    /* an in-memory cubin has no length: the loader reads its 64-byte ELF header (e_flags), as the stub does */
    static const unsigned char sass_only[64] = {0x7f, 'E', 'L', 'F', 2, 1, 1, 0, 0, 0, 0, 0};
    CHECK(cuModuleLoadDataEx(&m, sass_only, 2, opts, vals) == CUDA_ERROR_NO_BINARY_FOR_GPU);
    CHECK(strstr(errlog, "PTX") != NULL && (size_t)(uintptr_t)vals[1] == strlen(errlog) + 1);
    CUfunction f;
    CHECK(cuModuleGetFunction(&f, (CUmodule)(uintptr_t)0x999, "k") == CUDA_ERROR_INVALID_HANDLE);
    CHECK(cuLaunchKernel((CUfunction)(uintptr_t)0x999, 1, 1, 1, 1, 1, 1, 0, NULL, NULL, NULL) != CUDA_SUCCESS);
    unsigned long long busy = 1;
    OK(tfEmuGetBusyTime(&busy));
    OK(cuCtxDestroy_v2(ctx));
}

static void test_destroy_frees_context_memory(void)
{
    CUcontext keep, gone;
    OK(cuCtxCreate_v2(&keep, 0, 0));
    size_t free0, free1, total;
    OK(cuMemGetInfo_v2(&free0, &total));
    CUdeviceptr kept;
    OK(cuMemAlloc_v2(&kept, 4096));
    OK(cuCtxCreate_v2(&gone, 0, 0));
    CUdeviceptr a, b;
    void *h;
    OK(cuMemAlloc_v2(&a, 1 << 20));
    OK(cuMemAllocManaged(&b, 1 << 20, CU_MEM_ATTACH_GLOBAL));
    OK(cuMemHostAlloc(&h, 100, 0));
    OK(cuCtxDestroy_v2(gone)); /* frees a, b, h; `keep` becomes current again */
    OK(cuMemGetInfo_v2(&free1, &total));
    CHECK(free0 - free1 == 4096);
    CHECK(cuMemFree_v2(a) == CUDA_ERROR_INVALID_VALUE);
    OK(cuMemFree_v2(kept));
    OK(cuMemGetInfo_v2(&free1, &total));
    CHECK(free1 == free0);
    OK(cuCtxDestroy_v2(keep));
}

/* The primary context's last release destroys it (CUDA: "automatically reset once the last reference to it
 * is released"): what was allocated in it is freed, as at a reset, and its handles are dead; an earlier
 * release only drops a reference. Releasing a context never retained is CUDA_ERROR_INVALID_CONTEXT; a
 * retain that a reset ended may still be released ("safe ... even after resetting the device"). */
static void test_primary_last_release_frees_its_memory(void)
{
    unsigned flags;
    int active;
    OK(cuDevicePrimaryCtxGetState(0, &flags, &active));
    CHECK(active == 0);
    CUcontext keep, prim, prim2, popped;
    OK(cuCtxCreate_v2(&keep, 0, 0)); /* current while the primary context comes and goes */
    size_t free0, free1, total;
    OK(cuMemGetInfo_v2(&free0, &total));
    OK(cuDevicePrimaryCtxRetain(&prim, 0));
    OK(cuDevicePrimaryCtxRetain(&prim2, 0));
    CHECK(prim == prim2);
    OK(cuCtxPushCurrent_v2(prim));
    CUdeviceptr a, m;
    void *h;
    OK(cuMemAlloc_v2(&a, 1 << 20));
    OK(cuMemAllocManaged(&m, 1 << 20, CU_MEM_ATTACH_GLOBAL));
    OK(cuMemHostAlloc(&h, 100, 0));
    OK(cuCtxPopCurrent_v2(&popped));
    OK(cuDevicePrimaryCtxRelease_v2(0)); /* one reference left: everything stays */
    OK(cuMemGetInfo_v2(&free1, &total));
    CHECK(free0 - free1 >= (size_t)1 << 20);
    OK(cuDevicePrimaryCtxGetState(0, &flags, &active));
    CHECK(active == 1);
    OK(cuDevicePrimaryCtxRelease_v2(0)); /* the last: the context and its memory go */
    OK(cuMemGetInfo_v2(&free1, &total));
    CHECK(free1 == free0);
    CHECK(cuMemFree_v2(a) == CUDA_ERROR_INVALID_VALUE);
    CHECK(cuMemFreeHost(h) == CUDA_ERROR_INVALID_VALUE);
    OK(cuDevicePrimaryCtxGetState(0, &flags, &active));
    CHECK(active == 0);
    CHECK(cuDevicePrimaryCtxRelease_v2(0) == CUDA_ERROR_INVALID_CONTEXT);
    OK(cuDevicePrimaryCtxRetain(&prim, 0));
    OK(cuDevicePrimaryCtxReset_v2(0));
    OK(cuDevicePrimaryCtxGetState(0, &flags, &active));
    CHECK(active == 0);
    OK(cuDevicePrimaryCtxRelease_v2(0));
    CHECK(cuDevicePrimaryCtxRelease_v2(0) == CUDA_ERROR_INVALID_CONTEXT);
    OK(cuCtxDestroy_v2(keep));
}

static void test_stream_capture_without_kernels(void)
{
    CUcontext ctx;
    OK(cuCtxCreate_v2(&ctx, 0, 0));
    CUstream s, s2;
    OK(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
    OK(cuStreamCreate(&s2, CU_STREAM_NON_BLOCKING));
    CUdeviceptr a, b;
    OK(cuMemAlloc_v2(&a, 64 * 4));
    OK(cuMemAlloc_v2(&b, 64 * 4));
    OK(cuMemsetD32_v2(a, 0, 64));
    CHECK(cuStreamBeginCapture_v2(NULL, CU_STREAM_CAPTURE_MODE_GLOBAL) == CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
    OK(cuStreamBeginCapture_v2(s, CU_STREAM_CAPTURE_MODE_GLOBAL));
    CHECK(cuStreamBeginCapture_v2(s, CU_STREAM_CAPTURE_MODE_GLOBAL) == CUDA_ERROR_ILLEGAL_STATE);
    CUstreamCaptureStatus st;
    OK(cuStreamIsCapturing(s, &st));
    CHECK(st == CU_STREAM_CAPTURE_STATUS_ACTIVE);
    OK(cuMemsetD32Async(a, 5, 64, s));
    CUevent fork;
    OK(cuEventCreate(&fork, CU_EVENT_DISABLE_TIMING));
    OK(cuEventRecord(fork, s));
    OK(cuStreamWaitEvent(s2, fork, 0)); /* s2 joins the capture */
    OK(cuStreamIsCapturing(s2, &st));
    CHECK(st == CU_STREAM_CAPTURE_STATUS_ACTIVE);
    OK(cuMemcpyDtoDAsync_v2(b, a, 64 * 4, s2));
    int calls = 0;
    OK(cuLaunchHostFunc(s2, host_fn, &calls));
    CHECK(cuStreamEndCapture(s2, &(CUgraph){0}) == CUDA_ERROR_STREAM_CAPTURE_UNMATCHED);
    CUgraph g;
    OK(cuStreamEndCapture(s, &g));
    OK(cuStreamIsCapturing(s2, &st)); /* the joined stream left with the end of the capture */
    CHECK(st == CU_STREAM_CAPTURE_STATUS_NONE);
    uint32_t host[64];
    OK(cuMemcpyDtoH_v2(host, a, sizeof(host)));
    CHECK(host[0] == 0 && calls == 0); /* nothing ran while capturing */
    size_t n = 0;
    OK(cuGraphGetNodes(g, NULL, &n));
    CHECK(n == 3); /* memset, copy, host: an event record in a capture is a join point, not a node */
    size_t ne = 0;
    OK(cuGraphGetEdges_v2(g, NULL, NULL, NULL, &ne));
    CHECK(ne == 2); /* memset -> copy (through the event) -> host */
    CUgraphExec x;
    OK(cuGraphInstantiateWithFlags(&x, g, 0));
    OK(cuGraphDestroy(g));
    OK(cuGraphLaunch(x, s));
    OK(cuStreamSynchronize(s)); /* s is non-blocking: the NULL stream's work does not wait for it */
    OK(cuGraphLaunch(x, NULL));
    OK(cuMemcpyDtoH_v2(host, b, sizeof(host)));
    CHECK(host[0] == 5 && host[63] == 5 && calls == 2);
    OK(cuGraphExecDestroy(x));
    CHECK(cuGraphLaunch(x, s) == CUDA_ERROR_INVALID_HANDLE);
    /* synchronizing a capturing stream is refused and invalidates the capture, as on a GPU */
    OK(cuStreamBeginCapture_v2(s, CU_STREAM_CAPTURE_MODE_GLOBAL));
    CHECK(cuStreamSynchronize(s) == CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
    OK(cuStreamIsCapturing(s, &st));
    CHECK(st == CU_STREAM_CAPTURE_STATUS_INVALIDATED);
    CHECK(cuMemsetD32Async(a, 1, 64, s) == CUDA_ERROR_STREAM_CAPTURE_INVALIDATED);
    g = (CUgraph)1;
    CHECK(cuStreamEndCapture(s, &g) == CUDA_ERROR_STREAM_CAPTURE_INVALIDATED && g == NULL);
    OK(cuStreamIsCapturing(s, &st));
    CHECK(st == CU_STREAM_CAPTURE_STATUS_NONE);
    OK(cuEventDestroy_v2(fork));
    OK(cuStreamDestroy_v2(s));
    OK(cuStreamDestroy_v2(s2));
    OK(cuCtxDestroy_v2(ctx));
}

/* Node parameters read back and changed without kernels (host, memset, memcpy, event, child graph nodes), in
 * graphs and executable graphs, the generic set calls and disabled nodes: under ASan/UBSan, the payloads the
 * updates replace and free. (tests/cuda/graph_node_params.cu covers the same with kernels, end to end.) */
static void count_fn(void *p) { ++*(int *)p; }

static void test_graph_node_params_and_exec_updates(void)
{
    CUcontext ctx;
    OK(cuCtxCreate_v2(&ctx, 0, 0));
    CUdeviceptr a, b;
    OK(cuMemAlloc_v2(&a, 64 * 4));
    OK(cuMemAlloc_v2(&b, 64 * 4));
    OK(cuMemsetD32_v2(a, 0, 64));
    OK(cuMemsetD32_v2(b, 0, 64));
    CUgraph g, child, child2;
    OK(cuGraphCreate(&g, 0));
    int calls_a = 0, calls_b = 0;
    CUDA_HOST_NODE_PARAMS hp = {count_fn, &calls_a}, hq = {count_fn, &calls_b}, got;
    CUDA_MEMSET_NODE_PARAMS mp = {a, 0, 3, 4, 64, 1}, mg;
    CUgraphNode ms, host, cp, en;
    OK(cuGraphAddMemsetNode(&ms, g, NULL, 0, &mp, ctx));
    OK(cuGraphAddHostNode(&host, g, &ms, 1, &hp));
    CUDA_MEMCPY3D c;
    memset(&c, 0, sizeof(c));
    c.srcMemoryType = c.dstMemoryType = CU_MEMORYTYPE_DEVICE;
    c.srcDevice = a, c.dstDevice = b, c.WidthInBytes = 64 * 4, c.Height = c.Depth = 1;
    OK(cuGraphAddMemcpyNode(&cp, g, &host, 1, &c, ctx));
    OK(cuGraphCreate(&child, 0));
    OK(cuGraphAddEmptyNode(&en, child, NULL, 0));
    CUgraphNode chn;
    OK(cuGraphAddChildGraphNode(&chn, g, &cp, 1, child));
    OK(cuGraphHostNodeGetParams(host, &got));
    CHECK(got.fn == count_fn && got.userData == &calls_a);
    CHECK(cuGraphHostNodeGetParams(ms, &got) == CUDA_ERROR_INVALID_VALUE);
    CHECK(cuGraphMemsetNodeSetParams(host, &mp) == CUDA_ERROR_INVALID_VALUE);
    mp.value = 4;
    OK(cuGraphMemsetNodeSetParams(ms, &mp));
    OK(cuGraphMemsetNodeGetParams(ms, &mg));
    CHECK(mg.value == 4 && mg.dst == a && mg.pitch == 64 * 4);
    CUgraphExec x;
    OK(cuGraphInstantiateWithFlags(&x, g, 0));
    OK(cuGraphLaunch(x, NULL));
    uint32_t h[64];
    OK(cuMemcpyDtoH_v2(h, b, sizeof(h)));
    CHECK(h[0] == 4 && h[63] == 4 && calls_a == 1);
    /* the executable graph's copies change; the graph's nodes stay */
    OK(cuGraphExecHostNodeSetParams(x, host, &hq));
    CUDA_MEMSET_NODE_PARAMS mx = {a, 0, 5, 4, 64, 1};
    OK(cuGraphExecMemsetNodeSetParams(x, ms, &mx, ctx));
    mx.height = 2;
    CHECK(cuGraphExecMemsetNodeSetParams(x, ms, &mx, ctx) == CUDA_ERROR_INVALID_VALUE);
    CHECK(cuGraphExecHostNodeSetParams(x, ms, &hq) == CUDA_ERROR_INVALID_VALUE);
    CHECK(cuGraphExecHostNodeSetParams((CUgraphExec)g, host, &hq) == CUDA_ERROR_INVALID_HANDLE);
    OK(cuGraphNodeSetEnabled(x, cp, 0));
    unsigned on = 1;
    OK(cuGraphNodeGetEnabled(x, cp, &on));
    CHECK(on == 0);
    CHECK(cuGraphNodeSetEnabled(x, host, 0) == CUDA_ERROR_INVALID_VALUE);
    OK(cuGraphLaunch(x, NULL));
    OK(cuMemcpyDtoH_v2(h, b, sizeof(h)));
    CHECK(h[0] == 4 && calls_a == 1 && calls_b == 1); /* the copy was disabled */
    OK(cuMemcpyDtoH_v2(h, a, sizeof(h)));
    CHECK(h[0] == 5);
    OK(cuGraphHostNodeGetParams(host, &got));
    CHECK(got.userData == &calls_a);
    /* a child graph of the same shape replaces the executable graph's copy; another shape is refused */
    OK(cuGraphCreate(&child2, 0));
    OK(cuGraphAddEmptyNode(&en, child2, NULL, 0));
    OK(cuGraphExecChildGraphNodeSetParams(x, chn, child2));
    OK(cuGraphAddEmptyNode(&en, child2, &en, 1));
    CHECK(cuGraphExecChildGraphNodeSetParams(x, chn, child2) == CUDA_ERROR_INVALID_VALUE);
    CHECK(cuGraphExecChildGraphNodeSetParams(x, host, child2) == CUDA_ERROR_INVALID_VALUE);
    /* the generic calls: the kind must match; alloc/free/conditional and a graph's child graph cannot change */
    CUgraphNodeParams np;
    size_t n2 = 0;
    memset(&np, 0, sizeof(np));
    np.type = CU_GRAPH_NODE_TYPE_HOST;
    np.host.fn = count_fn, np.host.userData = &calls_a;
    OK(cuGraphExecNodeSetParams(x, host, &np));
    OK(cuGraphNodeSetParams(host, &np));
    CHECK(cuGraphNodeSetParams(ms, &np) == CUDA_ERROR_INVALID_VALUE);
    np.type = CU_GRAPH_NODE_TYPE_GRAPH;
    np.graph.graph = child;
    OK(cuGraphExecNodeSetParams(x, chn, &np));
    np.graph.graph = child2; /* two nodes: any shape for the graph's own node */
    OK(cuGraphNodeSetParams(chn, &np));
    CUgraph owned;
    OK(cuGraphChildGraphNodeGetGraph(chn, &owned));
    OK(cuGraphGetNodes(owned, NULL, &n2));
    CHECK(n2 == 2);
    CHECK(cuGraphNodeSetParams(host, &np) == CUDA_ERROR_INVALID_VALUE);
    np.type = CU_GRAPH_NODE_TYPE_MEM_FREE;
    CHECK(cuGraphExecNodeSetParams(x, ms, &np) == CUDA_ERROR_NOT_SUPPORTED);
    /* event nodes */
    CUevent e1, e2, ev;
    OK(cuEventCreate(&e1, 0));
    OK(cuEventCreate(&e2, 0));
    CUgraphNode rec;
    OK(cuGraphAddEventRecordNode(&rec, g, NULL, 0, e1));
    OK(cuGraphEventRecordNodeSetEvent(rec, e2));
    OK(cuGraphEventRecordNodeGetEvent(rec, &ev));
    CHECK(ev == e2);
    CHECK(cuGraphEventWaitNodeGetEvent(rec, &ev) == CUDA_ERROR_INVALID_VALUE);
    CHECK(cuGraphEventRecordNodeSetEvent(rec, (CUevent)&ev) == CUDA_ERROR_INVALID_HANDLE);
    CHECK(cuGraphExecEventRecordNodeSetEvent(x, rec, e1) == CUDA_ERROR_INVALID_VALUE); /* not in x's graph */
    /* an update needs the same shape (the child graph node now has two nodes); it keeps disabled nodes disabled */
    CUgraphExecUpdateResultInfo info;
    OK(cuGraphDestroyNode(rec));
    CHECK(cuGraphExecUpdate_v2(x, g, &info) == CUDA_ERROR_GRAPH_EXEC_UPDATE_FAILURE);
    CHECK(info.result == CU_GRAPH_EXEC_UPDATE_ERROR_TOPOLOGY_CHANGED);
    np.type = CU_GRAPH_NODE_TYPE_GRAPH;
    np.graph.graph = child;
    OK(cuGraphNodeSetParams(chn, &np));
    OK(cuGraphExecUpdate_v2(x, g, &info));
    OK(cuMemsetD32_v2(b, 0, 64));
    OK(cuGraphLaunch(x, NULL));
    OK(cuCtxSynchronize());
    OK(cuMemcpyDtoH_v2(h, b, sizeof(h)));
    CHECK(h[0] == 0); /* the copy is still disabled */
    OK(cuMemcpyDtoH_v2(h, a, sizeof(h)));
    CHECK(h[0] == 4); /* the graph's memset value */
    OK(cuGraphExecDestroy(x));
    OK(cuGraphDestroy(g));
    OK(cuGraphDestroy(child));
    OK(cuGraphDestroy(child2));
    OK(cuEventDestroy_v2(e1));
    OK(cuEventDestroy_v2(e2));
    OK(cuMemFree_v2(a));
    OK(cuMemFree_v2(b));
    OK(cuCtxDestroy_v2(ctx));
}

static void test_virtual_memory_management(void)
{
    CUcontext ctx;
    OK(cuCtxCreate_v2(&ctx, 0, 0));
    CUmemAllocationProp prop;
    memset(&prop, 0, sizeof(prop));
    prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
    prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    prop.location.id = 0;
    size_t gran = 0, free0, free1, total;
    OK(cuMemGetAllocationGranularity(&gran, &prop, CU_MEM_ALLOC_GRANULARITY_MINIMUM));
    CHECK(gran == (size_t)2 << 20);
    OK(cuMemGetInfo_v2(&free0, &total));
    CUmemGenericAllocationHandle h;
    CHECK(cuMemCreate(&h, gran + 1, &prop, 0) == CUDA_ERROR_INVALID_VALUE);
    OK(cuMemCreate(&h, 2 * gran, &prop, 0));
    OK(cuMemGetInfo_v2(&free1, &total));
    CHECK(free0 - free1 == 2 * gran); /* charged at creation, like cuMemAlloc */
    CUdeviceptr va;
    OK(cuMemAddressReserve(&va, 4 * gran, 0, 0, 0));
    CHECK(va % gran == 0);
    CHECK(cuMemcpyHtoD_v2(va, "x", 1) == CUDA_ERROR_INVALID_VALUE); /* reserved, not mapped */
    OK(cuMemMap(va, 2 * gran, 0, h, 0));
    OK(cuMemMap(va + 2 * gran, gran, gran, h, 0)); /* second view of the handle's upper half */
    CHECK(cuMemMap(va, gran, 0, h, 0) == CUDA_ERROR_INVALID_VALUE); /* already mapped there */
    CUmemAccessDesc bad[2] = {{{CU_MEM_LOCATION_TYPE_DEVICE, 0}, CU_MEM_ACCESS_FLAGS_PROT_READ},
                              {{CU_MEM_LOCATION_TYPE_DEVICE, 0}, (CUmemAccess_flags)7}};
    CHECK(cuMemSetAccess(va, 3 * gran, bad, 2) == CUDA_ERROR_INVALID_VALUE); /* 7: no access flags */
    bad[1].flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
    bad[1].location.id = 99;
    CHECK(cuMemSetAccess(va, 3 * gran, bad, 2) == CUDA_ERROR_INVALID_DEVICE);
    bad[1].location.type = CU_MEM_LOCATION_TYPE_HOST;
    bad[1].location.id = 0;
    CHECK(cuMemSetAccess(va, 3 * gran, bad, 2) == CUDA_ERROR_INVALID_DEVICE);
    CUmemAccessDesc acc = {{CU_MEM_LOCATION_TYPE_DEVICE, 0}, CU_MEM_ACCESS_FLAGS_PROT_READWRITE};
    OK(cuMemSetAccess(va, 3 * gran, &acc, 1));
    OK(cuMemsetD32_v2(va + gran, 0x01020304u, 4));
    uint32_t w = 0;
    OK(cuMemcpyDtoH_v2(&w, va + 2 * gran, 4)); /* same physical page through the alias */
    CHECK(w == 0x01020304u);
    OK(cuMemRelease(h)); /* still mapped: memory stays */
    OK(cuMemcpyDtoH_v2(&w, va + gran, 4));
    CHECK(w == 0x01020304u);
    CHECK(cuMemAddressFree(va, 4 * gran) == CUDA_ERROR_INVALID_VALUE); /* unmap first */
    OK(cuMemUnmap(va, 2 * gran));
    OK(cuMemUnmap(va + 2 * gran, gran));
    OK(cuMemGetInfo_v2(&free1, &total));
    CHECK(free1 == free0); /* last mapping gone: physical memory returned */
    OK(cuMemAddressFree(va, 4 * gran));
    OK(cuCtxDestroy_v2(ctx));
}

static void test_memory_pools(void)
{
    CUcontext ctx;
    OK(cuCtxCreate_v2(&ctx, 0, 0));
    CUmemPoolProps props;
    memset(&props, 0, sizeof(props));
    props.allocType = CU_MEM_ALLOCATION_TYPE_PINNED;
    props.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    CUmemoryPool pool, def, cur;
    OK(cuMemPoolCreate(&pool, &props));
    OK(cuDeviceGetDefaultMemPool(&def, 0));
    CHECK(pool != def);
    CUstream s;
    OK(cuStreamCreate(&s, 0));
    CUdeviceptr p;
    OK(cuMemAllocFromPoolAsync(&p, 1000, pool, s));
    OK(cuMemsetD8Async(p, 1, 1000, s));
    OK(cuMemFreeAsync(p, s));
    OK(cuDeviceSetMemPool(0, pool));
    OK(cuDeviceGetMemPool(&cur, 0));
    CHECK(cur == pool);
    OK(cuMemPoolDestroy(pool));
    OK(cuDeviceGetMemPool(&cur, 0)); /* destroying the current pool falls back to the default */
    CHECK(cur == def);
    CHECK(cuMemAllocFromPoolAsync(&p, 1000, pool, s) == CUDA_ERROR_INVALID_VALUE);
    OK(cuStreamDestroy_v2(s));
    OK(cuCtxDestroy_v2(ctx));
}

static void test_jit_link_of_one_ptx_module(void)
{
    static const char ptx[] = ".version 8.0\n.target sm_80\n.address_size 64\n\n"
                              ".visible .entry noop()\n{\n\tret;\n}\n";
    CUcontext ctx;
    OK(cuCtxCreate_v2(&ctx, 0, 0));
    char errlog[256];
    CUjit_option opts[] = {CU_JIT_ERROR_LOG_BUFFER, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES};
    void *vals[] = {errlog, (void *)(uintptr_t)sizeof(errlog)};
    CUlinkState link;
    OK(cuLinkCreate_v2(2, opts, vals, &link));
    OK(cuLinkAddData_v2(link, CU_JIT_INPUT_PTX, (void *)ptx, sizeof(ptx), "noop.ptx", 0, NULL, NULL));
    OK(cuLinkAddData_v2(link, CU_JIT_INPUT_LIBRARY, (void *)"!<arch>", 7, "libcudadevrt.a", 0, NULL, NULL));
    void *cubin = NULL;
    size_t size = 0;
    OK(cuLinkComplete(link, &cubin, &size));
    CHECK(cubin && size == sizeof(ptx));
    CUmodule m;
    CUresult rc = cuModuleLoadData(&m, cubin);
    CHECK(rc == CUDA_SUCCESS || rc == CUDA_ERROR_NOT_SUPPORTED); /* NOT_SUPPORTED: no PTX executor linked */
    if (rc == CUDA_SUCCESS) {
        CUfunction f;
        OK(cuModuleGetFunction(&f, m, "noop"));
        OK(cuModuleUnload(m));
    }
    OK(cuLinkDestroy(link));
    /* two PTX modules cannot be linked together here: a clear error, not a bad module */
    OK(cuLinkCreate_v2(2, opts, vals, &link));
    OK(cuLinkAddData_v2(link, CU_JIT_INPUT_PTX, (void *)ptx, sizeof(ptx), "a.ptx", 0, NULL, NULL));
    OK(cuLinkAddData_v2(link, CU_JIT_INPUT_PTX, (void *)ptx, sizeof(ptx), "b.ptx", 0, NULL, NULL));
    CHECK(cuLinkComplete(link, &cubin, &size) == CUDA_ERROR_NOT_SUPPORTED);
    CHECK(strstr(errlog, "not emulated") != NULL);
    OK(cuLinkDestroy(link));
    CHECK(cuLinkDestroy(link) == CUDA_ERROR_INVALID_HANDLE);
    OK(cuCtxDestroy_v2(ctx));
}

/* PTX whose .target is above the device's capability never runs: PTX text fails as ptxas fails it,
 * a fatbin with only such PTX has no image for the device; PTX_VERSION / BINARY_VERSION of a
 * function are its module's target. */
static void test_ptx_target_against_capability(void)
{
    CUcontext ctx;
    OK(cuCtxCreate_v2(&ctx, 0, 0));
    CUmodule m;
    CUfunction f;
    int v = 0;
    static const char p80[] = ".version 8.0\n.target sm_80\n.address_size 64\n.visible .entry k()\n{\n\tret;\n}\n";
    CUresult rc = cuModuleLoadData(&m, p80);
    CHECK(rc == CUDA_SUCCESS || rc == CUDA_ERROR_NOT_SUPPORTED);
    if (rc == CUDA_SUCCESS) {
        OK(cuModuleGetFunction(&f, m, "k"));
        OK(cuFuncGetAttribute(&v, CU_FUNC_ATTRIBUTE_PTX_VERSION, f));
        CHECK(v == 80);
        OK(cuFuncGetAttribute(&v, CU_FUNC_ATTRIBUTE_BINARY_VERSION, f));
        CHECK(v == 80);
        OK(cuModuleUnload(m));
    }
    static const char p999[] = ".version 8.0\n.target sm_999\n.address_size 64\n.visible .entry k()\n{\n\tret;\n}\n";
    char errlog[512] = "";
    CUjit_option opts[] = {CU_JIT_ERROR_LOG_BUFFER, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES};
    void *vals[] = {errlog, (void *)(uintptr_t)sizeof(errlog)};
    CHECK(cuModuleLoadDataEx(&m, p999, 2, opts, vals) == CUDA_ERROR_INVALID_PTX);
    CHECK(strstr(errlog, "sm_999") != NULL);
    static const char pisa[] = ".version 99.0\n.target sm_80\n.address_size 64\n";
    CHECK(cuModuleLoadData(&m, pisa) == CUDA_ERROR_UNSUPPORTED_PTX_VERSION);
    static const char p90a[] = ".version 8.0\n.target sm_90a\n.address_size 64\n";
    int major = 0, minor = 0;
    OK(cuDeviceComputeCapability(&major, &minor, 0));
    rc = cuModuleLoadData(&m, p90a); /* arch-specific PTX runs on exactly that capability */
    if (major * 10 + minor == 90)
        CHECK(rc == CUDA_SUCCESS || rc == CUDA_ERROR_NOT_SUPPORTED);
    else
        CHECK(rc == CUDA_ERROR_INVALID_PTX);
    if (rc == CUDA_SUCCESS)
        OK(cuModuleUnload(m));
    /* a fatbin whose only PTX is compute_999 */
    static unsigned char fb[16 + 64 + sizeof(p999) + 8];
    memset(fb, 0, sizeof(fb));
    unsigned magic = FATBIN_MAGIC, hsz = 64, bits = 64, sm = 999;
    unsigned short one = 1, h16 = 16, kind = FATBIN_KIND_PTX, ver = 0x101;
    unsigned long long padded = (sizeof(p999) + 7) & ~7ull, total = 64 + padded;
    memcpy(fb, &magic, 4); memcpy(fb + 4, &one, 2); memcpy(fb + 6, &h16, 2); memcpy(fb + 8, &total, 8);
    unsigned char *e = fb + 16;
    memcpy(e, &kind, 2); memcpy(e + 2, &ver, 2); memcpy(e + 4, &hsz, 4); memcpy(e + 8, &padded, 8);
    memcpy(e + 20, &bits, 4); memcpy(e + 28, &sm, 4); memcpy(e + 64, p999, sizeof(p999));
    CHECK(cuModuleLoadData(&m, fb) == CUDA_ERROR_NO_BINARY_FOR_GPU);
    OK(cuCtxDestroy_v2(ctx));
}

/* Lazy loading, as CUDA's default CU_MODULE_LAZY_LOADING: a module loads without decoding its kernels;
 * cuModuleGetFunction loads the function (a body the JIT cannot compile is CUDA_ERROR_INVALID_PTX there, at every
 * call), a library's kernel loads at cuKernelGetFunction or its launch, and cuFuncIsLoaded says which. */
static void test_lazy_loading(void)
{
    CUcontext ctx;
    OK(cuCtxCreate_v2(&ctx, 0, 0));
    CUmoduleLoadingMode mode = 0;
    OK(cuModuleGetLoadingMode(&mode));
    CHECK(mode == CU_MODULE_LAZY_LOADING);
    static const char ptx[] = ".version 8.0\n.target sm_80\n.address_size 64\n"
                              ".visible .entry good(.param .u64 p)\n{\n .reg .u64 %rd<2>;\n .reg .u32 %r<2>;\n"
                              " ld.param.u64 %rd1, [p];\n mov.u32 %r1, 42;\n st.global.u32 [%rd1], %r1;\n ret;\n}\n"
                              ".visible .entry bad()\n{\n bra.uni NOWHERE;\n ret;\n}\n";
    CUmodule m;
    CHECK(cuModuleLoadData(&m, ptx) == CUDA_SUCCESS); /* the bad body is not read at load */
    unsigned count = 0;
    OK(cuModuleGetFunctionCount(&count, m));
    CHECK(count == 2);
    CUfunction fs[2] = {0, 0}, f;
    OK(cuModuleEnumerateFunctions(fs, 2, m));
    CUfunctionLoadingState st = CU_FUNCTION_LOADING_STATE_MAX;
    OK(cuFuncIsLoaded(&st, fs[0]));
    CHECK(st == CU_FUNCTION_LOADING_STATE_UNLOADED);
    size_t off = 1, size = 0;
    OK(cuFuncGetParamInfo(fs[0], 0, &off, &size)); /* parameters come from the header */
    CHECK(off == 0 && size == 8);
    OK(cuModuleGetFunction(&f, m, "good"));
    OK(cuFuncIsLoaded(&st, f));
    CHECK(st == CU_FUNCTION_LOADING_STATE_LOADED);
    CHECK(cuModuleGetFunction(&f, m, "bad") == CUDA_ERROR_INVALID_PTX);
    CHECK(cuModuleGetFunction(&f, m, "bad") == CUDA_ERROR_INVALID_PTX);
    const char *name = NULL;
    OK(cuFuncGetName(&name, fs[1]));
    CUfunction badf = name && !strcmp(name, "bad") ? fs[1] : fs[0];
    int v = 0;
    CHECK(cuFuncGetAttribute(&v, CU_FUNC_ATTRIBUTE_NUM_REGS, badf) == CUDA_ERROR_INVALID_PTX);
    CHECK(cuLaunchKernel(badf, 1, 1, 1, 1, 1, 1, 0, NULL, NULL, NULL) == CUDA_ERROR_INVALID_PTX);
    CHECK(cuFuncLoad(badf) == CUDA_ERROR_INVALID_PTX);
    OK(cuCtxSynchronize()); /* not a sticky error: the context is fine */
    OK(cuModuleUnload(m));
    /* a library's kernel: loaded by its first launch */
    CUlibrary lib;
    OK(cuLibraryLoadData(&lib, ptx, NULL, NULL, 0, NULL, NULL, 0));
    CUkernel k;
    OK(cuLibraryGetKernel(&k, lib, "good"));
    OK(cuFuncIsLoaded(&st, (CUfunction)k));
    CHECK(st == CU_FUNCTION_LOADING_STATE_UNLOADED);
    CUdeviceptr out;
    OK(cuMemAlloc_v2(&out, 4));
    void *args[] = {&out};
    OK(cuLaunchKernel((CUfunction)k, 1, 1, 1, 1, 1, 1, 0, NULL, args, NULL));
    unsigned got = 0;
    OK(cuMemcpyDtoH_v2(&got, out, 4));
    CHECK(got == 42);
    OK(cuFuncIsLoaded(&st, (CUfunction)k));
    CHECK(st == CU_FUNCTION_LOADING_STATE_LOADED);
    OK(cuLibraryGetKernel(&k, lib, "bad"));
    CHECK(cuKernelGetFunction(&f, k) == CUDA_ERROR_INVALID_PTX);
    OK(cuMemFree_v2(out));
    OK(cuLibraryUnload(lib));
    OK(cuCtxDestroy_v2(ctx));
}

/* NUM_REGS is bounded as ptxas bounds it (255, .maxnreg, and .minnctapersm blocks of .maxntid threads in 64K
 * registers), however many virtual registers the PTX declares: a block of the kernel's maximum size is
 * always resident (CUB sizes grids by the occupancy and divides by it). */
static void test_register_count_bounded_by_launch_bounds(void)
{
    CUcontext ctx;
    OK(cuCtxCreate_v2(&ctx, 0, 0));
    static const char ptx[] =
        ".version 8.0\n.target sm_80\n.address_size 64\n"
        ".visible .entry plain()\n{\n\t.reg .b32 %r<400>;\n\tmov.u32 %r1, 1;\n\tret;\n}\n"
        ".visible .entry bounded() .maxntid 512, 1, 1\n{\n\t.reg .b32 %r<400>;\n\tmov.u32 %r1, 1;\n\tret;\n}\n"
        ".visible .entry capped() .maxnreg 40\n{\n\t.reg .b32 %r<400>;\n\tmov.u32 %r1, 1;\n\tret;\n}\n"
        ".visible .entry two() .maxntid 256, 1, 1 .minnctapersm 2\n{\n\t.reg .b32 %r<400>;\n\tret;\n}\n"
        ".visible .entry small() .maxntid 128, 1, 1\n{\n\t.reg .b32 %r<12>;\n\tret;\n}\n";
    CUmodule m;
    OK(cuModuleLoadData(&m, ptx));
    static const struct { const char *name; int block, max_regs, min_blocks; } want[] = {
        {"plain", 1024, 64, 1}, {"bounded", 512, 128, 1}, {"capped", 1024, 40, 1}, {"two", 256, 128, 2},
        {"small", 128, 12, 1},
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        CUfunction f;
        int regs = 0, maxt = 0, blocks = 0;
        OK(cuModuleGetFunction(&f, m, want[i].name));
        OK(cuFuncGetAttribute(&regs, CU_FUNC_ATTRIBUTE_NUM_REGS, f));
        OK(cuFuncGetAttribute(&maxt, CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK, f));
        OK(cuOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, f, want[i].block, 0));
        CHECK(regs > 0 && regs <= want[i].max_regs);
        CHECK(maxt >= want[i].block);
        CHECK(blocks >= want[i].min_blocks);
        if (!strcmp(want[i].name, "small"))
            CHECK(regs == 12); /* few declared registers: the declared count */
    }
    OK(cuModuleUnload(m));
    OK(cuCtxDestroy_v2(ctx));
}

/* cuProfilerStart/Stop, the deprecated device queries, stream memory operations. */
static void *write_later(void *p)
{
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
    __atomic_store_n((uint32_t *)p, 5u, __ATOMIC_SEQ_CST);
    return NULL;
}

static void test_small_gaps(void)
{
    CUcontext ctx;
    OK(cuCtxCreate_v2(&ctx, 0, 0));
    OK(cuProfilerStart());
    OK(cuProfilerStop());
    CUdevprop prop;
    OK(cuDeviceGetProperties(&prop, 0));
    CHECK(prop.maxThreadsPerBlock == 1024 && prop.SIMDWidth == 32 && prop.sharedMemPerBlock == 48 * 1024 &&
          prop.clockRate > 0 && prop.maxGridSize[0] == 2147483647);
    CHECK(cuDeviceGetProperties(&prop, 1) == CUDA_ERROR_INVALID_DEVICE);
    void *fn = NULL;
    CUdriverProcAddressQueryResult st;
    const char *names[] = {"cuStreamWaitValue32", "cuStreamWaitValue64", "cuStreamWriteValue32",
                           "cuStreamWriteValue64", "cuStreamBatchMemOp", "cuProfilerStart", "cuProfilerStop",
                           "cuDeviceGetProperties", "cuMemExportToShareableHandle", "cuMemImportFromShareableHandle"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        fn = NULL;
        CHECK(cuGetProcAddress_v2(names[i], &fn, 12000, 0, &st) == CUDA_SUCCESS && fn != NULL);
    }
    int v = 0;
    OK(cuDeviceGetAttribute(&v, CU_DEVICE_ATTRIBUTE_CAN_USE_64_BIT_STREAM_MEM_OPS, 0));
    CHECK(v == 1);
    CUdeviceptr d;
    OK(cuMemAlloc_v2(&d, 64));
    CUstream s;
    OK(cuStreamCreate(&s, 0));
    OK(cuStreamWriteValue32_v2(s, d, 7, 0));
    OK(cuStreamWriteValue64_v2(s, d + 8, 0x1122334455667788ull, CU_STREAM_WRITE_VALUE_NO_MEMORY_BARRIER));
    uint64_t w[2] = {0, 0};
    OK(cuMemcpyDtoH_v2(w, d, 16));
    CHECK((uint32_t)w[0] == 7 && w[1] == 0x1122334455667788ull);
    OK(cuStreamWaitValue32_v2(s, d, 7, CU_STREAM_WAIT_VALUE_EQ));
    OK(cuStreamWaitValue32_v2(s, d, 6, CU_STREAM_WAIT_VALUE_GEQ));
    OK(cuStreamWaitValue32_v2(s, d, 4, CU_STREAM_WAIT_VALUE_AND));
    OK(cuStreamWaitValue32_v2(s, d, 0xfffffff0u, CU_STREAM_WAIT_VALUE_NOR)); /* ~(7 | 0xfffffff0) = 8 != 0 */
    OK(cuStreamWaitValue64_v2(s, d + 8, 0x1122334455667788ull, CU_STREAM_WAIT_VALUE_EQ));
    CHECK(cuStreamWaitValue32_v2(s, d + 2, 7, 0) == CUDA_ERROR_INVALID_VALUE);           /* misaligned */
    CHECK(cuStreamWaitValue32_v2(s, (CUdeviceptr)(uintptr_t)&v, 7, 0) == CUDA_ERROR_INVALID_VALUE); /* not device memory */
    CHECK(cuStreamWriteValue32_v2(s, d, 1, 0x80) == CUDA_ERROR_INVALID_VALUE);          /* unknown flag */
    /* a wait another thread satisfies later (GEQ is a cyclic comparison) */
    OK(cuStreamWriteValue32_v2(s, d + 16, 0xfffffff0u, 0));
    pthread_t th;
    pthread_create(&th, NULL, write_later, (void *)(uintptr_t)(d + 16));
    OK(cuStreamWaitValue32_v2(s, d + 16, 3, CU_STREAM_WAIT_VALUE_GEQ));
    pthread_join(th, NULL);
    CUstreamBatchMemOpParams ops[2];
    memset(ops, 0, sizeof(ops));
    ops[0].writeValue.operation = CU_STREAM_MEM_OP_WRITE_VALUE_32;
    ops[0].writeValue.address = d + 24;
    ops[0].writeValue.value = 9;
    ops[1].waitValue.operation = CU_STREAM_MEM_OP_WAIT_VALUE_32;
    ops[1].waitValue.address = d + 24;
    ops[1].waitValue.value = 9;
    ops[1].waitValue.flags = CU_STREAM_WAIT_VALUE_EQ;
    OK(cuStreamBatchMemOp_v2(s, 2, ops, 0));
    OK(cuStreamDestroy_v2(s));
    OK(cuMemFree_v2(d));
    OK(cuCtxDestroy_v2(ctx));
}

/* POSIX-fd shareable handles: export, import in this process (aliasing), and in another process. */
static int vmm_child(int fd, size_t size)
{
    CUcontext ctx;
    CUmemGenericAllocationHandle h;
    CUdeviceptr va;
    if (cuInit(0) || cuCtxCreate_v2(&ctx, 0, 0) || cuMemImportFromShareableHandle(&h, (void *)(intptr_t)fd,
                                                                              CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR))
        return 10;
    close(fd);
    CUmemAccessDesc acc = {{CU_MEM_LOCATION_TYPE_DEVICE, 0}, CU_MEM_ACCESS_FLAGS_PROT_READWRITE};
    if (cuMemAddressReserve(&va, size, 0, 0, 0) || cuMemMap(va, size, 0, h, 0) || cuMemSetAccess(va, size, &acc, 1))
        return 11;
    uint32_t w = 0;
    if (cuMemcpyDtoH_v2(&w, va, 4) || w != 0x5eed5eedu)
        return 12; /* the parent's data */
    if (cuMemsetD32_v2(va + 4, 0xc41dc41du, 1))
        return 13; /* the parent checks it */
    cuMemUnmap(va, size);
    cuMemRelease(h);
    return 0;
}

static void test_shareable_handles(const char *self)
{
    CUcontext ctx;
    OK(cuCtxCreate_v2(&ctx, 0, 0));
    CUmemAllocationProp prop;
    memset(&prop, 0, sizeof(prop));
    prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
    prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    size_t gran = (size_t)2 << 20;
    CUmemGenericAllocationHandle plain, h, h2;
    OK(cuMemCreate(&plain, gran, &prop, 0));
    int fd = -1;
    CHECK(cuMemExportToShareableHandle(&fd, plain, CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR, 0) ==
          CUDA_ERROR_INVALID_VALUE); /* not requested at creation */
    OK(cuMemRelease(plain));
    prop.requestedHandleTypes = CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR;
    OK(cuMemCreate(&h, gran, &prop, 0));
    OK(cuMemExportToShareableHandle(&fd, h, CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR, 0));
    CHECK(fd >= 0);
    size_t free0, free1, total;
    OK(cuMemGetInfo_v2(&free0, &total));
    OK(cuMemImportFromShareableHandle(&h2, (void *)(intptr_t)fd, CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR));
    OK(cuMemGetInfo_v2(&free1, &total));
    CHECK(free1 == free0); /* the same memory, not charged twice */
    CHECK(cuMemImportFromShareableHandle(&h2, (void *)(intptr_t)-1, CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR) ==
          CUDA_ERROR_INVALID_VALUE);
    CUdeviceptr a, b;
    CUmemAccessDesc acc = {{CU_MEM_LOCATION_TYPE_DEVICE, 0}, CU_MEM_ACCESS_FLAGS_PROT_READWRITE};
    OK(cuMemAddressReserve(&a, gran, 0, 0, 0));
    OK(cuMemAddressReserve(&b, gran, 0, 0, 0));
    OK(cuMemMap(a, gran, 0, h, 0));
    OK(cuMemMap(b, gran, 0, h2, 0));
    OK(cuMemSetAccess(a, gran, &acc, 1));
    OK(cuMemSetAccess(b, gran, &acc, 1));
    OK(cuMemsetD32_v2(a, 0x5eed5eedu, 1));
    uint32_t w = 0;
    OK(cuMemcpyDtoH_v2(&w, b, 4));
    CHECK(w == 0x5eed5eedu); /* imported mapping aliases the exported memory */
    /* another process on this host gets the descriptor (here: inherited across exec) */
    pid_t pid = fork();
    if (pid == 0) {
        char fds[16], sz[32];
        snprintf(fds, sizeof(fds), "%d", fd);
        snprintf(sz, sizeof(sz), "%zu", gran);
        execl(self, self, "--vmm-child", fds, sz, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    OK(cuMemcpyDtoH_v2(&w, a + 4, 4));
    CHECK(w == 0xc41dc41du); /* the other process wrote through its import */
    close(fd);
    OK(cuMemUnmap(a, gran));
    OK(cuMemUnmap(b, gran));
    OK(cuMemRelease(h));
    OK(cuMemRelease(h2));
    OK(cuMemAddressFree(a, gran));
    OK(cuMemAddressFree(b, gran));
    OK(cuCtxDestroy_v2(ctx));
}

/* A forked child cannot use the driver its parent initialised (NVIDIA's driver: NOT_INITIALIZED). */
static void test_fork_child_is_not_initialized(void)
{
    CUdeviceptr d;
    OK(cuCtxSetCurrent(NULL));
    CUcontext pctx;
    OK(cuDevicePrimaryCtxRetain(&pctx, 0));
    OK(cuCtxSetCurrent(pctx));
    OK(cuMemAlloc_v2(&d, 16));
    pid_t pid = fork();
    if (pid == 0) {
        int bad = 0;
        CUdeviceptr d2;
        int n = 0;
        bad |= cuInit(0) != CUDA_ERROR_NOT_INITIALIZED;
        bad |= cuMemAlloc_v2(&d2, 16) != CUDA_ERROR_NOT_INITIALIZED;
        bad |= cuMemsetD8_v2(d, 1, 16) != CUDA_ERROR_NOT_INITIALIZED;
        bad |= cuDeviceGetCount(&n) != CUDA_ERROR_NOT_INITIALIZED;
        bad |= cuCtxSynchronize() != CUDA_ERROR_NOT_INITIALIZED;
        _exit(bad ? 1 : 0);
    }
    int status = 0;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    OK(cuMemsetD8_v2(d, 1, 16)); /* the parent is unaffected */
    OK(cuMemFree_v2(d));
    OK(cuDevicePrimaryCtxRelease_v2(0));
}

/* An IPC memory pool imported in the same process: a second mapping of the arena, whose imported pointer
 * aliases the allocation; bad input gets CUDA's errors; the pool outlives cuMemPoolDestroy while used. */
static void test_mempool_ipc_in_one_process(void)
{
    CUcontext ctx;
    OK(cuCtxCreate_v2(&ctx, 0, 0));
    int types = 0;
    OK(cuDeviceGetAttribute(&types, CU_DEVICE_ATTRIBUTE_MEMPOOL_SUPPORTED_HANDLE_TYPES, 0));
    CHECK(types == CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR);
    CUmemPoolProps props;
    memset(&props, 0, sizeof(props));
    props.allocType = CU_MEM_ALLOCATION_TYPE_PINNED;
    props.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    props.maxSize = (size_t)1 << 20;
    CUmemoryPool plain, pool, imp;
    OK(cuMemPoolCreate(&plain, &props));
    int fd = -1;
    CHECK(cuMemPoolExportToShareableHandle(&fd, plain, CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR, 0) ==
          CUDA_ERROR_INVALID_VALUE);
    props.handleTypes = CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR;
    OK(cuMemPoolCreate(&pool, &props));
    CUstream s;
    OK(cuStreamCreate(&s, 0));
    CUdeviceptr a, b, big, onplain, got;
    OK(cuMemAllocFromPoolAsync(&a, 1000, pool, s));
    OK(cuMemAllocFromPoolAsync(&b, 5000, pool, s));
    CHECK(cuMemAllocFromPoolAsync(&big, (size_t)2 << 20, pool, s) == CUDA_ERROR_OUT_OF_MEMORY); /* over maxSize */
    OK(cuMemAllocFromPoolAsync(&onplain, 1000, plain, s));
    CUmemoryPool owner = NULL;
    OK(cuPointerGetAttribute(&owner, CU_POINTER_ATTRIBUTE_MEMPOOL_HANDLE, b));
    CHECK(owner == pool);
    OK(cuMemsetD32Async(b, 0x12345678u, 1250, s));
    OK(cuStreamSynchronize(s));
    CUmemPoolPtrExportData data, junk;
    CHECK(cuMemPoolExportPointer(&junk, onplain) == CUDA_ERROR_INVALID_VALUE);
    CHECK(cuMemPoolExportPointer(&junk, b + 4) == CUDA_ERROR_INVALID_VALUE);
    OK(cuMemPoolExportPointer(&data, b));
    OK(cuMemPoolExportToShareableHandle(&fd, pool, CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR, 0));
    CHECK(cuMemPoolImportFromShareableHandle(&imp, (void *)(intptr_t)fd, CU_MEM_HANDLE_TYPE_WIN32, 0) ==
          CUDA_ERROR_NOT_SUPPORTED);
    OK(cuMemPoolImportFromShareableHandle(&imp, (void *)(intptr_t)fd, CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR, 0));
    close(fd);
    CUmemGenericAllocationHandle vh;
    int fd2 = -1;
    OK(cuMemPoolExportToShareableHandle(&fd2, pool, CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR, 0));
    CHECK(cuMemImportFromShareableHandle(&vh, (void *)(intptr_t)fd2, CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR) ==
          CUDA_ERROR_INVALID_VALUE); /* a pool's descriptor is no VMM allocation */
    close(fd2);
    CHECK(cuMemPoolImportPointer(&got, pool, &data) == CUDA_ERROR_INVALID_VALUE); /* the exporting pool itself */
    CUmemPoolPtrExportData bad = data;
    bad.reserved[24] ^= 1; /* an offset off the page grid */
    CHECK(cuMemPoolImportPointer(&got, imp, &bad) == CUDA_ERROR_INVALID_VALUE);
    CHECK(cuMemAllocFromPoolAsync(&big, 4096, imp, s) == CUDA_ERROR_INVALID_VALUE);
    CHECK(cuDeviceSetMemPool(0, imp) == CUDA_ERROR_INVALID_VALUE);
    size_t free0, free1, total;
    OK(cuMemGetInfo_v2(&free0, &total));
    OK(cuMemPoolImportPointer(&got, imp, &data));
    OK(cuMemGetInfo_v2(&free1, &total));
    CHECK(free1 == free0); /* the exporter's bytes */
    CHECK(got != b);
    uint32_t w = 0;
    OK(cuMemcpyDtoH_v2(&w, got + 4996, 4));
    CHECK(w == 0x12345678u);
    OK(cuMemsetD32_v2(got, 0xabcdef01u, 1));
    OK(cuMemcpyDtoH_v2(&w, b, 4));
    CHECK(w == 0xabcdef01u);
    OK(cuMemFree_v2(got));
    CUdeviceptr cur, other;
    OK(cuDeviceSetMemPool(0, pool)); /* cuMemAllocAsync takes the current pool; a named plain pool stays plain */
    OK(cuMemAllocAsync(&cur, 100, s));
    OK(cuMemAllocFromPoolAsync(&other, 100, plain, s));
    OK(cuPointerGetAttribute(&owner, CU_POINTER_ATTRIBUTE_MEMPOOL_HANDLE, cur));
    CHECK(owner == pool);
    OK(cuPointerGetAttribute(&owner, CU_POINTER_ATTRIBUTE_MEMPOOL_HANDLE, other));
    CHECK(owner == NULL);
    OK(cuMemFreeAsync(cur, s));
    OK(cuMemFreeAsync(other, s));
    OK(cuMemPoolDestroy(imp));
    OK(cuMemPoolDestroy(pool)); /* a and b outstanding: the arena lives on */
    OK(cuMemsetD32_v2(a, 7, 250));
    OK(cuMemFreeAsync(a, s));
    OK(cuMemFree_v2(b));
    OK(cuMemFreeAsync(onplain, s));
    OK(cuStreamSynchronize(s));
    CHECK(cuMemPoolDestroy(pool) == CUDA_ERROR_INVALID_VALUE);
    OK(cuMemPoolDestroy(plain));
    OK(cuStreamDestroy_v2(s));
    OK(cuCtxDestroy_v2(ctx));
}

/* TF_EMU_DEVICES=2 (run in a child process of its own: the device count is read at cuInit): per-device
 * ordinals, primary contexts, memory accounting, peer access codes, pools, and the kernels' access rule
 * (emu_env_check with the launching context). */
static int two_devices_child(void)
{
    CHECK(setenv("TF_EMU_DEVICES", "2", 1) == 0);
    OK(cuInit(0));
    int n = 0;
    CUdevice d;
    OK(cuDeviceGetCount(&n));
    CHECK(n == 2);
    OK(cuDeviceGet(&d, 1));
    CHECK(d == 1);
    CHECK(cuDeviceGet(&d, 2) == CUDA_ERROR_INVALID_DEVICE);
    CUcontext p0, p1, c1;
    OK(cuDevicePrimaryCtxRetain(&p0, 0));
    OK(cuDevicePrimaryCtxRetain(&p1, 1));
    CHECK(p0 == (CUcontext)&g_emu.primary[0] && p1 == (CUcontext)&g_emu.primary[1]);
    CHECK(cuDevicePrimaryCtxRetain(&c1, 2) == CUDA_ERROR_INVALID_DEVICE);
    OK(cuCtxCreate_v2(&c1, 0, 1)); /* current now */
    CUdevice cd = -1;
    OK(cuCtxGetDevice(&cd));
    CHECK(cd == 1);
    size_t used0 = atomic_load(&g_emu.vram_used[0]), used1 = atomic_load(&g_emu.vram_used[1]);
    CUdeviceptr m1;
    OK(cuMemAlloc_v2(&m1, 1 << 20));
    CHECK(atomic_load(&g_emu.vram_used[1]) == used1 + (1 << 20) && atomic_load(&g_emu.vram_used[0]) == used0);
    CHECK(emu_mem_dev(m1) == 1);
    OK(cuMemFree_v2(m1));
    CHECK(atomic_load(&g_emu.vram_used[1]) == used1);
    OK(cuCtxDestroy_v2(c1));
    /* device 0 memory, seen by device 1's kernels */
    OK(cuCtxSetCurrent(p0));
    CUdeviceptr m0;
    OK(cuMemAlloc_v2(&m0, 4096));
    CHECK(emu_mem_dev(m0) == 0);
    CHECK(emu_env_check(NULL, m0, 16) == 1);          /* one-device rule: any live allocation */
    CHECK(emu_env_check(&g_emu.primary[0], m0, 16) == 1);
    CHECK(emu_env_check(&g_emu.primary[1], m0, 16) == 0); /* no peer access yet */
    OK(cuCtxSetCurrent(p1));
    CHECK(cuCtxDisablePeerAccess(p0) == CUDA_ERROR_PEER_ACCESS_NOT_ENABLED);
    OK(cuCtxEnablePeerAccess(p0, 0));
    CHECK(cuCtxEnablePeerAccess(p0, 0) == CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED);
    CHECK(cuCtxEnablePeerAccess(p1, 0) == CUDA_ERROR_INVALID_DEVICE);
    CHECK(emu_env_check(&g_emu.primary[1], m0, 16) == 1);
    CHECK(emu_env_check(&g_emu.primary[1], m0, 8192) == 0); /* still bounded by the allocation */
    OK(cuDevicePrimaryCtxReset_v2(0));                      /* device 0's context goes: so does access to it */
    CHECK((g_emu.primary[1].peers & 1u) == 0);
    OK(cuDevicePrimaryCtxRetain(&p0, 0));
    /* pools: one default pool per device; access granted to device 1 lets its kernels use the pool's memory */
    CUmemoryPool mp0, mp1;
    OK(cuDeviceGetDefaultMemPool(&mp0, 0));
    OK(cuDeviceGetDefaultMemPool(&mp1, 1));
    CHECK(mp0 != mp1);
    CHECK(cuDeviceSetMemPool(1, mp0) == CUDA_ERROR_INVALID_DEVICE);
    CUmemAccessDesc ad = {{CU_MEM_LOCATION_TYPE_DEVICE, 2}, CU_MEM_ACCESS_FLAGS_PROT_READWRITE};
    CHECK(cuMemPoolSetAccess(mp0, &ad, 1) == CUDA_ERROR_INVALID_DEVICE);
    CUdeviceptr pm;
    OK(cuMemAllocFromPoolAsync(&pm, 4096, mp0, NULL)); /* current: device 1's context */
    CHECK(emu_mem_dev(pm) == 0);
    CHECK(emu_env_check(&g_emu.primary[1], pm, 16) == 0);
    ad.location.id = 1;
    ad.flags = CU_MEM_ACCESS_FLAGS_PROT_READ;
    CHECK(cuMemPoolSetAccess(mp0, &ad, 1) == CUDA_ERROR_INVALID_VALUE); /* pools: no read-only access */
    ad.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
    OK(cuMemPoolSetAccess(mp0, &ad, 1));
    CUmemLocation l1 = {CU_MEM_LOCATION_TYPE_DEVICE, 1};
    CUmemAccess_flags f;
    OK(cuMemPoolGetAccess(&f, mp0, &l1));
    CHECK(f == CU_MEM_ACCESS_FLAGS_PROT_READWRITE);
    CHECK(emu_env_check(&g_emu.primary[1], pm, 16) == 1);
    OK(cuMemFreeAsync(pm, NULL));
    OK(cuCtxSynchronize());
    CHECK(emu_mem_dev(m0) == -1); /* freed by device 0's reset, with its context */
    if (failures)
        return 1;
    printf("test_driver --two-devices: ok\n");
    return 0;
}

static void test_two_devices(void)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        execl("/proc/self/exe", "/proc/self/exe", "--two-devices", (char *)NULL);
        _exit(127);
    }
    int status = 0;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* User objects (emu_user_object.c): a clone and a child graph's copy hold their own references, an executable
 * graph those of its graph and child graphs; the destructor runs once, on the destructor thread, after the
 * launch that held it. Edge queries (emu_graph.c) and managed-memory range attributes per page
 * (emu_managed_advice.c) ride along: no kernels needed. */
static atomic_int g_uo_runs, g_uo_host_done, g_uo_saw_host;

static void CUDA_CB uo_destroy(void *p)
{
    atomic_store(&g_uo_saw_host, atomic_load(&g_uo_host_done));
    atomic_fetch_add((atomic_int *)p, 1);
}

static void CUDA_CB uo_host(void *p)
{
    usleep(50 * 1000);
    atomic_store((atomic_int *)p, 1);
}

static void test_user_objects_edges_and_range_attributes(void)
{
    CUcontext ctx;
    OK(cuDevicePrimaryCtxRetain(&ctx, 0));
    OK(cuCtxSetCurrent(ctx));
    CUuserObject o;
    OK(cuUserObjectCreate(&o, &g_uo_runs, uo_destroy, 1, CU_USER_OBJECT_NO_DESTRUCTOR_SYNC));
    CUgraph g, child, clone;
    OK(cuGraphCreate(&g, 0));
    OK(cuGraphCreate(&child, 0));
    OK(cuGraphRetainUserObject(child, o, 2, 0));
    OK(cuGraphRetainUserObject(g, o, 1, CU_GRAPH_USER_OBJECT_MOVE)); /* the program holds none now */
    CUgraphNode a, b, c, h;
    CUDA_HOST_NODE_PARAMS hp = {uo_host, &g_uo_host_done};
    OK(cuGraphAddEmptyNode(&a, g, NULL, 0));
    OK(cuGraphAddChildGraphNode(&b, g, &a, 1, child));
    OK(cuGraphAddHostNode(&h, g, &b, 1, &hp));
    CUgraphNode ab[2] = {a, b};
    OK(cuGraphAddEmptyNode(&c, g, ab, 2));
    OK(cuGraphDestroy(child)); /* the child node's copy keeps two references */
    OK(cuGraphClone(&clone, g));
    CUgraphNode got[3] = {NULL, NULL, NULL};
    CUgraphEdgeData ed[3];
    size_t n = 3;
    OK(cuGraphNodeGetDependencies_v2(c, got, ed, &n));
    CHECK(n == 2 && got[0] == a && got[1] == b && got[2] == NULL && ed[0].type == 0);
    n = 3;
    OK(cuGraphNodeGetDependentNodes(a, got, &n));
    CHECK(n == 2 && got[0] == b && got[1] == c);
    CHECK(cuGraphNodeGetDependentNodes_v2(a, NULL, ed, &n) == CUDA_ERROR_INVALID_VALUE);
    CHECK(cuGraphReleaseUserObject(g, o, 2) == CUDA_ERROR_INVALID_VALUE); /* g itself holds one */
    CUgraphExec x;
    OK(cuGraphInstantiateWithFlags(&x, g, 0));
    OK(cuGraphDestroy(g));
    OK(cuGraphReleaseUserObject(clone, o, 1));
    OK(cuGraphDestroy(clone));
    CHECK(atomic_load(&g_uo_runs) == 0); /* the exec holds three */
    CUstream s;
    OK(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
    OK(cuGraphLaunch(x, s));
    OK(cuGraphExecDestroy(x));
    for (int i = 0; i < 500 && atomic_load(&g_uo_runs) == 0; i++)
        usleep(10 * 1000);
    usleep(50 * 1000);
    CHECK(atomic_load(&g_uo_runs) == 1 && atomic_load(&g_uo_saw_host) == 1);
    CHECK(cuUserObjectRetain(o, 1) == CUDA_ERROR_INVALID_VALUE); /* gone */
    OK(cuStreamDestroy_v2(s));

    /* range attributes per page: advice on the first page only */
    CUdeviceptr m;
    OK(cuMemAllocManaged(&m, 3 * 4096 + 100, CU_MEM_ATTACH_GLOBAL));
    OK(cuMemAdvise(m, 4096, CU_MEM_ADVISE_SET_PREFERRED_LOCATION, 0));
    OK(cuMemAdvise(m + 4096, 2 * 4096 + 100, CU_MEM_ADVISE_SET_ACCESSED_BY, CU_DEVICE_CPU));
    int v = 7, acc[2] = {7, 7};
    OK(cuMemRangeGetAttribute(&v, 4, CU_MEM_RANGE_ATTRIBUTE_PREFERRED_LOCATION, m, 4096));
    CHECK(v == 0);
    OK(cuMemRangeGetAttribute(&v, 4, CU_MEM_RANGE_ATTRIBUTE_PREFERRED_LOCATION, m, 4097));
    CHECK(v == CU_DEVICE_INVALID);
    OK(cuMemRangeGetAttribute(acc, sizeof acc, CU_MEM_RANGE_ATTRIBUTE_ACCESSED_BY, m + 3 * 4096, 100));
    CHECK(acc[0] == CU_DEVICE_CPU && acc[1] == CU_DEVICE_INVALID);
    CHECK(cuMemRangeGetAttribute(&v, 4, CU_MEM_RANGE_ATTRIBUTE_READ_MOSTLY, m, 1 << 20) ==
          CUDA_ERROR_INVALID_VALUE); /* past the allocation */
    CHECK(cuMemAdvise(m, 16, CU_MEM_ADVISE_SET_PREFERRED_LOCATION, 5) == CUDA_ERROR_INVALID_DEVICE);
    OK(cuMemFree_v2(m));
    OK(cuDevicePrimaryCtxRelease(0));
}

int main(int argc, char **argv)
{
    if (argc == 2 && !strcmp(argv[1], "--two-devices"))
        return two_devices_child();
    if (argc == 4 && !strcmp(argv[1], "--vmm-child"))
        return vmm_child(atoi(argv[2]), (size_t)strtoull(argv[3], NULL, 10));
    test_init_and_proc_address();
    test_errors_and_export_tables();
    test_device_queries();
    test_contexts_and_memory();
    test_streams_and_events();
    test_stream_work_is_asynchronous();
    test_destroy_frees_context_memory();
    test_primary_last_release_frees_its_memory();
    test_stream_capture_without_kernels();
    test_graph_node_params_and_exec_updates();
    test_virtual_memory_management();
    test_memory_pools();
    test_mempool_ipc_in_one_process();
    test_jit_link_of_one_ptx_module();
    test_ptx_target_against_capability();
    test_lazy_loading();
    test_register_count_bounded_by_launch_bounds();
    test_small_gaps();
    test_user_objects_edges_and_range_attributes();
    test_shareable_handles("/proc/self/exe");
    test_fork_child_is_not_initialized();
    test_two_devices();
    if (failures)
        return 1;
    printf("test_driver: ok\n");
    return 0;
}
