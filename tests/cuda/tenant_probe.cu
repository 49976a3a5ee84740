// tenant_probe.cu - what a hostile tenant tries with its own session (tests/test_tenant_isolation.py), one step
// per line on stdin: "w <MiB> <byte>" allocates <MiB>, fills it with <byte> and keeps it ("write=ok"); "r <MiB>"
// allocates <MiB> and counts its bytes that are not zero ("nonzero=<count>"; memory another session freed must
// not show through); "f" frees what "w" and "r" kept ("free=ok"); "h <MiB>" sets the device heap to <MiB>
// (cudaLimitMallocHeapSize) and prints "heap=<ok|error name>"; "m <MiB>" has one kernel thread malloc() 1 MiB
// blocks (writing each) until it has <MiB> or malloc returns NULL, then prints "device_malloc=<MiB got>";
// "g <MiB>" loads a PTX module with a <MiB> .global array through the driver API and touches its last byte
// ("global=<ok|error name>"); "c <MiB>" does the same in a context it creates and then destroys
// ("ctx_global=<ok|error name>"); "x <byte>" allocates 1 MiB filled with <byte> and prints its CUDA IPC handle
// ("handle=<128 hex digits>"); "o <hex>" opens such a handle and prints the first byte behind it
// ("opened=<byte>", or "opened=<error name>"); "q" quits.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <cuda.h>
#include <string>
#include <vector>

__global__ void malloc_blocks(unsigned want, unsigned *got, void **kept)
{
    unsigned n = 0;
    for (; n < want; n++) {
        char *p = (char *)malloc(1 << 20);
        if (!p) break;
        p[0] = 1;
        p[(1 << 20) - 1] = 1;
        kept[n] = p;
    }
    *got = n;
}

static void *driver_fn(const char *name, int version)
{
    void *fn = 0;
    cudaDriverEntryPointQueryResult q;
    return cudaGetDriverEntryPointByVersion(name, &fn, version, cudaEnableDefault, &q) == cudaSuccess ? fn : 0;
}

static const char *cu_name(CUresult r)
{
    static char buf[64];
    auto name = (CUresult(*)(CUresult, const char **))driver_fn("cuGetErrorName", 6000);
    const char *s = 0;
    if (name && name(r, &s) == CUDA_SUCCESS && s) return s;
    snprintf(buf, sizeof buf, "CUresult_%d", (int)r);
    return buf;
}

// A module holding one .global array of `mib` MiB and a kernel that writes its last byte.
static const char *global_step(size_t mib)
{
    auto load = (CUresult(*)(CUmodule *, const void *))driver_fn("cuModuleLoadData", 2000);
    auto get = (CUresult(*)(CUfunction *, CUmodule, const char *))driver_fn("cuModuleGetFunction", 2000);
    auto launch = (CUresult(*)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
                               CUstream, void **, void **))driver_fn("cuLaunchKernel", 4000);
    if (!load || !get || !launch) return "no_entry_points";
    std::string ptx = ".version 7.0\n.target sm_52\n.address_size 64\n.visible .global .align 8 .b8 big[" +
                      std::to_string(mib << 20) + "];\n.visible .entry touch_last()\n{\n.reg .b64 %rd<3>;\n"
                      ".reg .b16 %rs<2>;\nmov.u64 %rd1, big;\nadd.u64 %rd2, %rd1, " + std::to_string((mib << 20) - 1) +
                      ";\nmov.u16 %rs1, 1;\nst.global.u8 [%rd2], %rs1;\nret;\n}\n";
    CUmodule m = 0;
    CUfunction f = 0;
    CUresult r = load(&m, ptx.c_str());
    if (r == CUDA_SUCCESS) r = get(&f, m, "touch_last");
    if (r == CUDA_SUCCESS) r = launch(f, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0);
    if (r == CUDA_SUCCESS) r = (CUresult)cudaDeviceSynchronize();
    return r == CUDA_SUCCESS ? "ok" : cu_name(r);
}

int main()
{
    std::vector<void *> kept;
    char line[256];
    setvbuf(stdout, 0, _IOLBF, 0);
    if (cudaFree(0) != cudaSuccess) { printf("error=init\n"); return 1; }
    while (fgets(line, sizeof line, stdin)) {
        if (line[0] == 'w' || line[0] == 'r') {
            unsigned mib = 0, byte = 0;
            sscanf(line + 1, "%u %u", &mib, &byte);
            size_t bytes = (size_t)mib << 20;
            void *p = 0;
            cudaError_t e = cudaMalloc(&p, bytes);
            if (e == cudaSuccess) kept.push_back(p);
            if (e == cudaSuccess && line[0] == 'w') e = cudaMemset(p, (int)byte, bytes);
            if (e == cudaSuccess) e = cudaDeviceSynchronize();
            if (e != cudaSuccess) {
                cudaGetLastError();
                printf("%s=%s\n", line[0] == 'w' ? "write" : "nonzero", cudaGetErrorName(e));
            } else if (line[0] == 'w') {
                printf("write=ok\n");
            } else {
                std::vector<unsigned char> host(bytes);
                e = cudaMemcpy(host.data(), p, bytes, cudaMemcpyDeviceToHost);
                size_t nonzero = 0;
                for (unsigned char c : host) nonzero += c != 0;
                if (e == cudaSuccess) printf("nonzero=%zu\n", nonzero);
                else printf("nonzero=%s\n", cudaGetErrorName(e));
            }
        } else if (line[0] == 'f') {
            for (void *p : kept) cudaFree(p);
            kept.clear();
            printf("free=ok\n");
        } else if (line[0] == 'h') {
            cudaError_t e = cudaDeviceSetLimit(cudaLimitMallocHeapSize, (size_t)atoi(line + 1) << 20);
            cudaGetLastError();
            printf("heap=%s\n", e == cudaSuccess ? "ok" : cudaGetErrorName(e));
        } else if (line[0] == 'm') {
            unsigned want = (unsigned)atoi(line + 1), *got = 0;
            void **blocks = 0;
            cudaError_t e = cudaMallocManaged(&got, sizeof *got);
            if (e == cudaSuccess) e = cudaMalloc(&blocks, want * sizeof(void *) + 8);
            if (e == cudaSuccess) {
                malloc_blocks<<<1, 1>>>(want, got, blocks);
                e = cudaDeviceSynchronize();
            }
            cudaGetLastError();
            if (e == cudaSuccess) printf("device_malloc=%u\n", *got);
            else printf("device_malloc=%s\n", cudaGetErrorName(e));
        } else if (line[0] == 'g') {
            printf("global=%s\n", global_step((size_t)atoi(line + 1)));
        } else if (line[0] == 'c') {
            auto create = (CUresult(*)(CUcontext *, unsigned, CUdevice))driver_fn("cuCtxCreate", 3020);
            auto destroy = (CUresult(*)(CUcontext))driver_fn("cuCtxDestroy", 4000);
            auto set = (CUresult(*)(CUcontext))driver_fn("cuCtxSetCurrent", 4000);
            auto get = (CUresult(*)(CUcontext *))driver_fn("cuCtxGetCurrent", 4000);
            CUcontext prev = 0, made = 0;
            const char *r = "no_entry_points";
            if (create && destroy && set && get && get(&prev) == CUDA_SUCCESS && create(&made, 0, 0) == CUDA_SUCCESS) {
                r = global_step((size_t)atoi(line + 1));
                if (destroy(made) != CUDA_SUCCESS || set(prev) != CUDA_SUCCESS) r = "ctx_failed";
            }
            printf("ctx_global=%s\n", r);
        } else if (line[0] == 'x') {
            void *p = 0;
            cudaIpcMemHandle_t h;
            cudaError_t e = cudaMalloc(&p, 1 << 20);
            if (e == cudaSuccess) kept.push_back(p);
            if (e == cudaSuccess) e = cudaMemset(p, atoi(line + 1), 1 << 20);
            if (e == cudaSuccess) e = cudaIpcGetMemHandle(&h, p);
            cudaGetLastError();
            if (e != cudaSuccess) {
                printf("handle=%s\n", cudaGetErrorName(e));
                continue;
            }
            printf("handle=");
            for (size_t i = 0; i < sizeof h.reserved; i++) printf("%02x", (unsigned char)h.reserved[i]);
            printf("\n");
        } else if (line[0] == 'o') {
            cudaIpcMemHandle_t h;
            const char *hex = line + 2;
            for (size_t i = 0; i < sizeof h.reserved; i++) {
                unsigned v = 0;
                sscanf(hex + 2 * i, "%2x", &v);
                h.reserved[i] = (char)v;
            }
            void *p = 0;
            unsigned char first = 0;
            cudaError_t e = cudaIpcOpenMemHandle(&p, h, cudaIpcMemLazyEnablePeerAccess);
            if (e == cudaSuccess) e = cudaMemcpy(&first, p, 1, cudaMemcpyDeviceToHost);
            cudaGetLastError();
            if (e == cudaSuccess) printf("opened=%u\n", first);
            else printf("opened=%s\n", cudaGetErrorName(e));
        } else if (line[0] == 'q') {
            break;
        }
    }
    for (void *p : kept) cudaFree(p);
    return 0;
}
