// graph_conditional.cu - conditional graph nodes (CUDA 12.4+): IF with an ELSE body, WHILE whose handle is
// reset to its default at each launch (cudaGraphCondAssignDefault), SWITCH (including a value with no
// body), each driven by a kernel that calls cudaGraphSetConditional, built with cudaGraphAddNode (kernel
// and conditional nodes alike) and launched several times with new device inputs; plus the parameters
// the driver refuses; a body node copying host memory (per backend). Usage: graph_conditional. stdout: key=value lines.
#include "tf_test_io.h"

__global__ void set_from(cudaGraphConditionalHandle h, const int *v) { cudaGraphSetConditional(h, (unsigned)*v); }

__global__ void store(int *p, int v) { *p = v; }

// one WHILE iteration: counts itself and keeps looping while the counter is above zero
__global__ void loop_body(cudaGraphConditionalHandle h, int *counter, int *iters)
{
    (*iters)++;
    (*counter)--;
    cudaGraphSetConditional(h, *counter > 0 ? 1u : 0u);
}

static const char *name(cudaError_t e) { return cudaGetErrorName(e); }

static cudaGraphNode_t add_kernel(cudaGraph_t g, const cudaGraphNode_t *deps, size_t n, void *fn, void **args)
{
    cudaGraphNodeParams p = {cudaGraphNodeTypeKernel};
    p.kernel.func = fn;
    p.kernel.gridDim = dim3(1);
    p.kernel.blockDim = dim3(1);
    p.kernel.kernelParams = args;
    cudaGraphNode_t node;
    CK(cudaGraphAddNode(&node, g, deps, nullptr, n, &p));
    return node;
}

static int read_int(const int *d)
{
    int v = 0;
    CK(cudaMemcpy(&v, d, sizeof v, cudaMemcpyDeviceToHost));
    return v;
}

static void write_int(int *d, int v) { CK(cudaMemcpy(d, &v, sizeof v, cudaMemcpyHostToDevice)); }

int main()
{
    int *dv, *dout, *dcounter, *diters;
    CK(cudaMalloc(&dv, sizeof(int)));
    CK(cudaMalloc(&dout, sizeof(int)));
    CK(cudaMalloc(&dcounter, sizeof(int)));
    CK(cudaMalloc(&diters, sizeof(int)));
    cudaStream_t s;
    CK(cudaStreamCreate(&s));

    // ---- IF / ELSE: out = 1 when v != 0, 2 when v == 0
    cudaGraph_t g;
    CK(cudaGraphCreate(&g, 0));
    cudaGraphConditionalHandle h;
    CK(cudaGraphConditionalHandleCreate(&h, g));
    void *set_args[] = {&h, &dv};
    cudaGraphNode_t ks = add_kernel(g, nullptr, 0, (void *)set_from, set_args);
    cudaGraphNodeParams cp = {cudaGraphNodeTypeConditional};
    cp.conditional.handle = h;
    cp.conditional.type = cudaGraphCondTypeIf;
    cp.conditional.size = 2;
    cudaGraphNode_t cn;
    CK(cudaGraphAddNode(&cn, g, &ks, nullptr, 1, &cp));
    int one = 1, two = 2;
    void *then_args[] = {&dout, &one}, *else_args[] = {&dout, &two};
    add_kernel(cp.conditional.phGraph_out[0], nullptr, 0, (void *)store, then_args);
    add_kernel(cp.conditional.phGraph_out[1], nullptr, 0, (void *)store, else_args);
    cudaGraphNodeType t;
    CK(cudaGraphNodeGetType(cn, &t));
    cudaGraphExec_t x;
    CK(cudaGraphInstantiate(&x, g, 0));
    int if_results[3];
    const int if_inputs[3] = {0, 7, 0};
    for (int r = 0; r < 3; r++) {
        write_int(dv, if_inputs[r]);
        write_int(dout, -1);
        CK(cudaGraphLaunch(x, s));
        CK(cudaStreamSynchronize(s));
        if_results[r] = read_int(dout);
    }
    printf("cond_type=%d\nif_results=%d,%d,%d\n", (int)t, if_results[0], if_results[1], if_results[2]);
    CK(cudaGraphExecDestroy(x));
    CK(cudaGraphDestroy(g));

    // ---- WHILE with a default of 1 assigned at each launch: the body runs `counter` times
    CK(cudaGraphCreate(&g, 0));
    CK(cudaGraphConditionalHandleCreate(&h, g, 1, cudaGraphCondAssignDefault));
    cp = {cudaGraphNodeTypeConditional};
    cp.conditional.handle = h;
    cp.conditional.type = cudaGraphCondTypeWhile;
    cp.conditional.size = 1;
    CK(cudaGraphAddNode(&cn, g, nullptr, nullptr, 0, &cp));
    void *loop_args[] = {&h, &dcounter, &diters};
    add_kernel(cp.conditional.phGraph_out[0], nullptr, 0, (void *)loop_body, loop_args);
    CK(cudaGraphInstantiate(&x, g, 0));
    int while_iters[2];
    const int counts[2] = {5, 3};
    for (int r = 0; r < 2; r++) {
        write_int(dcounter, counts[r]);
        write_int(diters, 0);
        CK(cudaGraphLaunch(x, s));
        CK(cudaStreamSynchronize(s));
        while_iters[r] = read_int(diters);
    }
    printf("while_iters=%d,%d\n", while_iters[0], while_iters[1]);
    CK(cudaGraphExecDestroy(x));
    CK(cudaGraphDestroy(g));

    // ---- SWITCH over 3 bodies: out = 10 + v; v = 3 has no body (out unchanged)
    CK(cudaGraphCreate(&g, 0));
    CK(cudaGraphConditionalHandleCreate(&h, g));
    ks = add_kernel(g, nullptr, 0, (void *)set_from, set_args);
    cp = {cudaGraphNodeTypeConditional};
    cp.conditional.handle = h;
    cp.conditional.type = cudaGraphCondTypeSwitch;
    cp.conditional.size = 3;
    CK(cudaGraphAddNode(&cn, g, &ks, nullptr, 1, &cp));
    int vals[3] = {10, 11, 12};
    void *case_args[3][2] = {{&dout, &vals[0]}, {&dout, &vals[1]}, {&dout, &vals[2]}};
    for (int i = 0; i < 3; i++)
        add_kernel(cp.conditional.phGraph_out[i], nullptr, 0, (void *)store, case_args[i]);
    CK(cudaGraphInstantiate(&x, g, 0));
    int sw[4];
    for (int v = 0; v < 4; v++) {
        write_int(dv, v);
        write_int(dout, -1);
        CK(cudaGraphLaunch(x, s));
        CK(cudaStreamSynchronize(s));
        sw[v] = read_int(dout);
    }
    printf("switch_results=%d,%d,%d,%d\n", sw[0], sw[1], sw[2], sw[3]);
    CK(cudaGraphExecDestroy(x));

    // ---- refused: a WHILE with two bodies, an IF with three, a bogus handle, unknown handle flags
    cudaGraphNode_t bad;
    cp = {cudaGraphNodeTypeConditional};
    cp.conditional.handle = h;
    cp.conditional.type = cudaGraphCondTypeWhile;
    cp.conditional.size = 2;
    cudaError_t e_while2 = cudaGraphAddNode(&bad, g, nullptr, nullptr, 0, &cp);
    (void)cudaGetLastError();
    cp.conditional.type = cudaGraphCondTypeIf;
    cp.conditional.size = 3;
    cudaError_t e_if3 = cudaGraphAddNode(&bad, g, nullptr, nullptr, 0, &cp);
    (void)cudaGetLastError();
    cp.conditional.size = 1;
    cp.conditional.handle = 0x12345678;
    cudaError_t e_bogus = cudaGraphAddNode(&bad, g, nullptr, nullptr, 0, &cp);
    (void)cudaGetLastError();
    cudaGraphConditionalHandle h2;
    cudaError_t e_flags = cudaGraphConditionalHandleCreate(&h2, g, 0, 0x80);
    (void)cudaGetLastError();
    cp.conditional.handle = h;
    cp.conditional.size = 1;
    CK(cudaGraphAddNode(&bad, g, nullptr, nullptr, 0, &cp));
    cudaError_t e_body = cudaGraphDestroy(cp.conditional.phGraph_out[0]);  // owned by the node
    (void)cudaGetLastError();
    printf("destroy_body=%s\n", name(e_body));
    // a body copying this process's host memory (the emulated device directly runs it; through the stub the
    // copy is refused: the launch carries its top graph's host ranges only)
    static int hbuf[4];
    cudaGraphNode_t hcopy;
    cudaError_t e_host_body = cudaGraphAddMemcpyNode1D(&hcopy, cp.conditional.phGraph_out[0], nullptr, 0, dout, hbuf,
                                                       sizeof(int), cudaMemcpyHostToDevice);
    (void)cudaGetLastError();
    printf("host_copy_in_body=%s\n", name(e_host_body));
    printf("while_two_bodies=%s\nif_three_bodies=%s\nbogus_handle=%s\nbad_flags=%s\n", name(e_while2), name(e_if3),
           name(e_bogus), name(e_flags));
    CK(cudaGraphDestroy(g));
    CK(cudaFree(dv));
    CK(cudaFree(dout));
    CK(cudaFree(dcounter));
    CK(cudaFree(diters));
    CK(cudaStreamDestroy(s));
    printf("done=1\n");
    return 0;
}
