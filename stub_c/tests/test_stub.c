/* test_stub.c - C unit tests of the client stub's local answers, linked with the stub's objects and run
 * by `make -C stub_c test` (under ASan/UBSan in `make asan-test`): versions, cuGetProcAddress version and
 * per-thread-stream selection, error names, calls before cuInit, and the handshake refusal path (a
 * fake daemon thread answers TFR1 with CUDA_ERROR_NOT_PERMITTED and cuInit must return it).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "stub.h"
#include "stub_calls.h"

#include "tf_unit_check.h"

static void test_versions_and_errors(void)
{
    int v = 0;
    CHECK(tfs_cuDriverGetVersion(&v) == CUDA_SUCCESS && v == CUDA_VERSION);
    CHECK(tfs_cuDriverGetVersion(NULL) == CUDA_ERROR_INVALID_VALUE);
    const char *s = NULL;
    CHECK(tfs_cuGetErrorName(CUDA_ERROR_INVALID_VALUE, &s) == CUDA_SUCCESS && strcmp(s, "CUDA_ERROR_INVALID_VALUE") == 0);
    CHECK(tfs_cuGetErrorString(CUDA_ERROR_OUT_OF_MEMORY, &s) == CUDA_SUCCESS && s && *s);
    CHECK(tfs_cuGetErrorName((CUresult)123456, &s) == CUDA_ERROR_INVALID_VALUE);
}

static void test_proc_address(void)
{
    void *fn = NULL;
    CUdriverProcAddressQueryResult st;
    CHECK(tfs_cuGetProcAddress_v2("cuMemAlloc", &fn, 13000, 0, &st) == CUDA_SUCCESS);
    CHECK(fn == (void *)&tfs_cuMemAlloc_v2 && st == CU_GET_PROC_ADDRESS_SUCCESS);
    CHECK(tfs_cuGetProcAddress_v2("cuGetProcAddress", &fn, 12000, 0, &st) == CUDA_SUCCESS);
    CHECK(fn == (void *)&tfs_cuGetProcAddress_v2);
    CHECK(tfs_cuGetProcAddress_v2("cuGetProcAddress", &fn, 11030, 0, &st) == CUDA_SUCCESS);
    CHECK(fn == (void *)&tfs_cuGetProcAddress);
    CHECK(tfs_cuGetProcAddress_v2("cuLaunchKernel", &fn, 13000, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM, &st) == 0);
    /* launches: cudart's flavour of the same call (a bad grid/block answers 9, see api_launch.c) */
    CHECK(fn == tf_launch_entry_for_runtime((void *)&tfs_cuLaunchKernel_ptsz) && fn != (void *)&tfs_cuLaunchKernel_ptsz);
    CHECK(tfs_cuGetProcAddress_v2("cuLaunchKernel", &fn, 13000, 0, &st) == 0 &&
          fn == tf_launch_entry_for_runtime((void *)&tfs_cuLaunchKernel) && fn != (void *)&tfs_cuLaunchKernel);
    /* no per-thread variant: the plain one even when asked for per-thread */
    CHECK(tfs_cuGetProcAddress_v2("cuMemAlloc", &fn, 13000, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM, &st) == 0);
    CHECK(fn == (void *)&tfs_cuMemAlloc_v2);
    CHECK(tfs_cuGetProcAddress_v2("cuNoSuchThing", &fn, 13000, 0, &st) == CUDA_ERROR_NOT_FOUND);
    CHECK(fn == NULL && st == CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND);
    /* every version cuda.h has is served: the legacy 32-bit cuMemAlloc answers NOT_SUPPORTED */
    CHECK(tfs_cuGetProcAddress_v2("cuMemAlloc", &fn, 2000, 0, &st) == CUDA_SUCCESS && st == CU_GET_PROC_ADDRESS_SUCCESS);
    CHECK(fn != NULL && fn != (void *)&tfs_cuMemAlloc_v2);
    CHECK(fn && ((CUresult (*)(void))fn)() == CUDA_ERROR_NOT_SUPPORTED);
    /* below the first version of a function: not sufficient */
    CHECK(tfs_cuGetProcAddress_v2("cuMemAddressReserve", &fn, 10000, 0, &st) == CUDA_ERROR_NOT_FOUND);
    CHECK(st == CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT);
    CHECK(tfs_cuGetProcAddress_v2("", &fn, 13000, 0, &st) == CUDA_ERROR_NOT_FOUND);
    CHECK(tfs_cuGetProcAddress_v2(NULL, &fn, 13000, 0, &st) == CUDA_ERROR_INVALID_VALUE);
    /* every probe name cudart asks for at startup that we provide resolves to a non-NULL function */
    for (size_t i = 0; i < tf_proc_count; i++) CHECK(tf_proc_table[i].fn != NULL);
}

static void test_before_init(void)
{
    int n;
    CUdevice d;
    CUdeviceptr p;
    CHECK(tfs_cuDeviceGetCount(&n) == CUDA_ERROR_NOT_INITIALIZED);
    CHECK(tfs_cuDeviceGet(&d, 0) == CUDA_ERROR_NOT_INITIALIZED);
    CHECK(tfs_cuMemAlloc_v2(&p, 16) == CUDA_ERROR_NOT_INITIALIZED);
}

static char g_sock[108];
static char g_token_seen[64];

static void *fake_daemon(void *arg)
{
    int ls = *(int *)arg;
    int c = accept(ls, NULL, NULL);
    if (c < 0) return NULL;
    tf_hello_hdr h;
    if (read(c, &h, sizeof h) == (ssize_t)sizeof h && memcmp(h.magic, "TFH1", 4) == 0 && h.token_len < sizeof g_token_seen) {
        if (read(c, g_token_seen, h.token_len) != (ssize_t)h.token_len) g_token_seen[0] = 0;
    }
    const char msg[] = "lease expired";
    tf_hello_reply r = {.status = CUDA_ERROR_NOT_PERMITTED, .msg_len = sizeof msg - 1};
    memcpy(r.magic, "TFR1", 4);
    if (write(c, &r, sizeof r) != (ssize_t)sizeof r || write(c, msg, sizeof msg - 1) < 0) perror("write");
    close(c);
    return NULL;
}

static void test_refused_handshake(void)
{
    snprintf(g_sock, sizeof g_sock, "/tmp/tf-stub-test-%d.sock", (int)getpid());
    int ls = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    strcpy(a.sun_path, g_sock);
    unlink(g_sock);
    CHECK(ls >= 0 && bind(ls, (struct sockaddr *)&a, sizeof a) == 0 && listen(ls, 1) == 0);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, fake_daemon, &ls) == 0);
    char spec[128];
    snprintf(spec, sizeof spec, "unix:%s", g_sock);
    setenv("TF_WORKER", spec, 1);
    setenv("TF_LEASE", "tok-123", 1);
    CHECK(tfs_cuInit(0) == CUDA_ERROR_NOT_PERMITTED);
    pthread_join(t, NULL);
    CHECK(strcmp(g_token_seen, "tok-123") == 0);
    CHECK(tfs_cuInit(0) == CUDA_ERROR_NOT_PERMITTED);  /* the first answer is kept */
    int n;
    CHECK(tfs_cuDeviceGetCount(&n) == CUDA_ERROR_NOT_INITIALIZED);
    close(ls);
    unlink(g_sock);
}

int main(void)
{
    test_versions_and_errors();
    test_proc_address();
    test_before_init();
    test_refused_handshake();
    if (failures) { fprintf(stderr, "test_stub: %d failure(s)\n", failures); return 1; }
    printf("test_stub: ok\n");
    return 0;
}
