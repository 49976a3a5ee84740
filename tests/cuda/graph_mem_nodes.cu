// graph_mem_nodes.cu - graph memory built by hand: cudaGraphAddMemAllocNode / cudaGraphAddMemFreeNode (a
// temporary allocated and freed inside the graph, launched several times with new inputs; an allocation
// the graph leaves to the stream, freed after it with cudaFreeAsync), their parameters read back, the
// device's graph-memory attributes and cudaDeviceGraphMemTrim, and the parameters the driver refuses.
// Usage: graph_mem_nodes N LAUNCHES [BIG_BYTES]. With BIG_BYTES, also asks for an alloc node of that size
// (the limiter's VRAM cap test) and prints its error name. stdout: key=value lines.
#include "tf_test_io.h"

__global__ void affine(const float *x, float *y, int n, float a, float b)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        y[i] = x[i] * a + b;
}

static const char *name(cudaError_t e) { return cudaGetErrorName(e); }

static unsigned long long attr(cudaGraphMemAttributeType a)
{
    unsigned long long v = 0;
    CK(cudaDeviceGetGraphMemAttribute(0, a, &v));
    return v;
}

static cudaMemAllocNodeParams alloc_params(size_t bytes, cudaMemAccessDesc *desc)
{
    cudaMemAllocNodeParams p = {};
    p.poolProps.allocType = cudaMemAllocationTypePinned;
    p.poolProps.location.type = cudaMemLocationTypeDevice;
    p.poolProps.location.id = 0;
    p.bytesize = bytes;
    if (desc) {
        desc->location.type = cudaMemLocationTypeDevice;
        desc->location.id = 0;
        desc->flags = cudaMemAccessFlagsProtReadWrite;
        p.accessDescs = desc;
        p.accessDescCount = 1;
    }
    return p;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        printf("usage: graph_mem_nodes N LAUNCHES [BIG_BYTES]\n");
        return 2;
    }
    const int n = atoi(argv[1]), launches = atoi(argv[2]);
    const size_t bytes = n * sizeof(float);
    cudaStream_t s;
    CK(cudaStreamCreate(&s));
    float *dx, *dy;
    CK(cudaMalloc(&dx, bytes));
    CK(cudaMalloc(&dy, bytes));
    std::vector<float> h(n);
    dim3 grid((n + 255) / 256), block(256);

    // ---- 1. alloc -> kernel (x -> tmp) -> kernel (tmp -> y) -> free, launched with new inputs
    cudaGraph_t g;
    CK(cudaGraphCreate(&g, 0));
    cudaMemAccessDesc desc;
    cudaMemAllocNodeParams ap = alloc_params(bytes, &desc);
    cudaGraphNode_t na, k1, k2, nf;
    CK(cudaGraphAddMemAllocNode(&na, g, nullptr, 0, &ap));
    float *tmp = (float *)ap.dptr;
    float a1 = 2.0f, b1 = 1.0f, a2 = 3.0f, b2 = 0.0f;
    int nn = n;
    void *args1[] = {&dx, &tmp, &nn, &a1, &b1}, *args2[] = {&tmp, &dy, &nn, &a2, &b2};
    cudaKernelNodeParams kp = {};
    kp.func = (void *)affine;
    kp.gridDim = grid;
    kp.blockDim = block;
    kp.kernelParams = args1;
    CK(cudaGraphAddKernelNode(&k1, g, &na, 1, &kp));
    kp.kernelParams = args2;
    CK(cudaGraphAddKernelNode(&k2, g, &k1, 1, &kp));
    CK(cudaGraphAddMemFreeNode(&nf, g, &k2, 1, tmp));
    cudaMemAllocNodeParams back = {};
    CK(cudaGraphMemAllocNodeGetParams(na, &back));
    void *freed = nullptr;
    CK(cudaGraphMemFreeNodeGetParams(nf, &freed));
    cudaGraphNodeType ta, tf;
    CK(cudaGraphNodeGetType(na, &ta));
    CK(cudaGraphNodeGetType(nf, &tf));
    printf("alloc_addr_nonzero=%d\nget_bytesize_ok=%d\nget_dptr_ok=%d\nget_descs=%zu\nget_desc_ok=%d\n"
           "free_dptr_ok=%d\nalloc_type=%d\nfree_type=%d\n",
           tmp != nullptr, back.bytesize == bytes, back.dptr == (void *)tmp, back.accessDescCount,
           back.accessDescCount == 1 && back.accessDescs[0].flags == cudaMemAccessFlagsProtReadWrite &&
               back.accessDescs[0].location.type == cudaMemLocationTypeDevice,
           freed == (void *)tmp, (int)ta, (int)tf);
    cudaGraphExec_t x;
    CK(cudaGraphInstantiate(&x, g, 0));
    int launch_ok = 0;
    for (int r = 0; r < launches; r++) {
        for (int i = 0; i < n; i++)
            h[i] = (float)i + (float)r;
        CK(cudaMemcpy(dx, h.data(), bytes, cudaMemcpyHostToDevice));
        CK(cudaGraphLaunch(x, s));
        CK(cudaStreamSynchronize(s));
        CK(cudaMemcpy(h.data(), dy, bytes, cudaMemcpyDeviceToHost));
        bool ok = true;
        for (int i = 0; i < n; i++)
            ok = ok && h[i] == (((float)i + (float)r) * 2.0f + 1.0f) * 3.0f;
        launch_ok += ok;
    }
    printf("launch_ok=%d\n", launch_ok);
    // freed inside the graph: the memory stays associated with graphs after the launch (the footprint)
    printf("used_after_freeing_graph=%llu\nreserved_after_freeing_graph=%llu\nreserved_high_covers=%d\n",
           attr(cudaGraphMemAttrUsedMemCurrent), attr(cudaGraphMemAttrReservedMemCurrent),
           attr(cudaGraphMemAttrReservedMemHigh) >= bytes);

    // ---- 2. an allocation the graph leaves to the stream: usable after the launch, freed with cudaFreeAsync
    cudaGraph_t g2;
    CK(cudaGraphCreate(&g2, 0));
    cudaMemAllocNodeParams ap2 = alloc_params(bytes, nullptr);
    cudaGraphNode_t na2, k3;
    CK(cudaGraphAddMemAllocNode(&na2, g2, nullptr, 0, &ap2));
    float *out2 = (float *)ap2.dptr;
    void *args3[] = {&dx, &out2, &nn, &a1, &b1};
    kp.kernelParams = args3;
    CK(cudaGraphAddKernelNode(&k3, g2, &na2, 1, &kp));
    cudaGraphExec_t x2;
    CK(cudaGraphInstantiate(&x2, g2, 0));
    for (int i = 0; i < n; i++)
        h[i] = (float)i;
    CK(cudaMemcpy(dx, h.data(), bytes, cudaMemcpyHostToDevice));
    CK(cudaGraphLaunch(x2, s));
    CK(cudaStreamSynchronize(s));
    unsigned long long used_live = attr(cudaGraphMemAttrUsedMemCurrent);
    CK(cudaMemcpy(h.data(), out2, bytes, cudaMemcpyDeviceToHost));
    bool ok2 = true;
    for (int i = 0; i < n; i++)
        ok2 = ok2 && h[i] == (float)i * 2.0f + 1.0f;
    CK(cudaFreeAsync(out2, s));
    CK(cudaStreamSynchronize(s));
    printf("unfreed_result_ok=%d\nused_while_allocated=%llu\nused_after_free_async=%llu\nused_high_covers=%d\n", ok2,
           used_live, attr(cudaGraphMemAttrUsedMemCurrent), attr(cudaGraphMemAttrUsedMemHigh) >= bytes);
    // the graph allocates it again at its next launch, wherever it was freed (cudaFreeAsync, cudaFree)
    int relaunch_ok = 0;
    for (int r = 0; r < 2; r++) {
        CK(cudaGraphLaunch(x2, s));
        CK(cudaStreamSynchronize(s));
        CK(cudaMemcpy(h.data(), out2, bytes, cudaMemcpyDeviceToHost));
        bool ok = true;
        for (int i = 0; i < n; i++)
            ok = ok && h[i] == (float)i * 2.0f + 1.0f;
        relaunch_ok += ok;
        CK(cudaFree(out2));
    }
    printf("relaunch_after_free_ok=%d\n", relaunch_ok);

    // ---- 3. trim gives back the memory of allocations that are not outstanding; the attributes that can be
    // set (the high-water marks, to 0 only)
    unsigned long long before_trim = attr(cudaGraphMemAttrUsedMemCurrent);
    cudaError_t e_trim = cudaDeviceGraphMemTrim(0);
    printf("used_before_trim=%llu\nused_after_trim=%llu\n", before_trim, attr(cudaGraphMemAttrUsedMemCurrent));
    unsigned long long zero = 0, five = 5;
    cudaError_t e_reset = cudaDeviceSetGraphMemAttribute(0, cudaGraphMemAttrUsedMemHigh, &zero);
    unsigned long long high_after_reset = attr(cudaGraphMemAttrUsedMemHigh);
    cudaError_t e_set_current = cudaDeviceSetGraphMemAttribute(0, cudaGraphMemAttrUsedMemCurrent, &zero);
    (void)cudaGetLastError();
    cudaError_t e_set_five = cudaDeviceSetGraphMemAttribute(0, cudaGraphMemAttrReservedMemHigh, &five);
    (void)cudaGetLastError();
    printf("reset_high=%s\nused_high_after_reset=%llu\nset_current=%s\nset_high_nonzero=%s\ntrim=%s\n", name(e_reset),
           high_after_reset, name(e_set_current), name(e_set_five), name(e_trim));

    // ---- 4. what the driver refuses
    cudaGraph_t g3;
    CK(cudaGraphCreate(&g3, 0));
    cudaGraphNode_t nb;
    cudaMemAllocNodeParams zero_bytes = alloc_params(0, nullptr);
    cudaError_t e_zero = cudaGraphAddMemAllocNode(&nb, g3, nullptr, 0, &zero_bytes);
    (void)cudaGetLastError();
    cudaMemAllocNodeParams bad_type = alloc_params(bytes, nullptr);
    bad_type.poolProps.allocType = cudaMemAllocationTypeInvalid;
    cudaError_t e_type = cudaGraphAddMemAllocNode(&nb, g3, nullptr, 0, &bad_type);
    (void)cudaGetLastError();
    cudaError_t e_free_plain = cudaGraphAddMemFreeNode(&nb, g3, nullptr, 0, dx);  // not graph memory
    (void)cudaGetLastError();
    printf("zero_bytes=%s\nbad_alloc_type=%s\nfree_of_plain_memory=%s\n", name(e_zero), name(e_type),
           name(e_free_plain));
    if (argc > 3) {
        cudaMemAllocNodeParams big = alloc_params((size_t)strtoull(argv[3], nullptr, 10), nullptr);
        cudaError_t e_big = cudaGraphAddMemAllocNode(&nb, g3, nullptr, 0, &big);
        (void)cudaGetLastError();
        printf("big_alloc=%s\n", name(e_big));
    }
    CK(cudaGraphDestroy(g3));
    CK(cudaGraphExecDestroy(x));
    CK(cudaGraphExecDestroy(x2));
    CK(cudaGraphDestroy(g));
    CK(cudaGraphDestroy(g2));
    CK(cudaFree(dx));
    CK(cudaFree(dy));
    CK(cudaStreamDestroy(s));
    printf("done=1\n");
    return 0;
}
