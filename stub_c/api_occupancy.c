/* api_occupancy.c - the client stub's hand-written occupancy calculators.
 *
 * cuOccupancyMaxPotentialBlockSize(WithFlags) may take blockSizeToDynamicSMemSize, a function of the
 * client: the worker cannot call it. Without one the call is forwarded as is. With one, the stub runs
 * the search CUDA documents (and cuda_occupancy.h spells out) itself: for every block size from the
 * largest allowed (the function's and the device's maximum threads per block, and blockSizeLimit when
 * given) down by one warp, it asks the callback for that size's dynamic shared memory and the worker
 * for cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags (one round trip each, at most 32 on a
 * 1024-thread device); the block size with the most active threads per multiprocessor wins (the
 * largest on ties), *minGridSize = its blocks per multiprocessor x the multiprocessor count.
 * The cluster calculators send the CUlaunchConfig with its attributes beside it (tfOccupancyCluster).
 * Rows of proto/calls.tbl marked `local` or `stub=hand` in this area; the list of areas is in stub.h.
 */
#include "stub.h"
#include "stub_calls.h"

static CUresult potential_block_size(int *minGridSize, int *blockSize, CUfunction func, CUoccupancyB2DSize b2smem,
                                     int blockSizeLimit, unsigned int flags)
{
    CUdevice dev;
    int dev_max = 0, warp = 0, sms = 0, func_max = 0;
    CUresult rc = tfs_cuCtxGetDevice(&dev);
    if (rc == CUDA_SUCCESS) rc = tfs_cuDeviceGetAttribute(&dev_max, CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK, dev);
    if (rc == CUDA_SUCCESS) rc = tfs_cuDeviceGetAttribute(&warp, CU_DEVICE_ATTRIBUTE_WARP_SIZE, dev);
    if (rc == CUDA_SUCCESS) rc = tfs_cuDeviceGetAttribute(&sms, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, dev);
    if (rc == CUDA_SUCCESS) rc = tfs_cuFuncGetAttribute(&func_max, CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK, func);
    if (rc != CUDA_SUCCESS) return rc;
    if (warp <= 0 || dev_max <= 0) return CUDA_ERROR_INVALID_VALUE;
    int limit = dev_max < func_max || func_max <= 0 ? dev_max : func_max;
    if (blockSizeLimit > 0 && blockSizeLimit < limit) limit = blockSizeLimit;
    int best = 0, best_blocks = 0;
    long best_threads = 0;
    for (int aligned = (limit + warp - 1) / warp * warp; aligned > 0; aligned -= warp) {
        int bs = aligned < limit ? aligned : limit;
        size_t smem = b2smem(bs);
        int blocks = 0;
        rc = tfs_cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(&blocks, func, bs, smem, flags);
        if (rc != CUDA_SUCCESS) return rc;
        if ((long)blocks * bs > best_threads) {
            best_threads = (long)blocks * bs;
            best = bs;
            best_blocks = blocks;
        }
    }
    *minGridSize = best_blocks * sms;
    *blockSize = best;
    return CUDA_SUCCESS;
}

CUresult tfs_cuOccupancyMaxPotentialBlockSizeWithFlags(int *minGridSize, int *blockSize, CUfunction func,
                                                       CUoccupancyB2DSize blockSizeToDynamicSMemSize,
                                                       size_t dynamicSMemSize, int blockSizeLimit, unsigned int flags)
{
    NEED_INIT();
    if (!minGridSize || !blockSize || !func) return CUDA_ERROR_INVALID_VALUE;
    if (!blockSizeToDynamicSMemSize)
        return rpc_cuOccupancyMaxPotentialBlockSizeWithFlags(minGridSize, blockSize, func, NULL, dynamicSMemSize,
                                                             blockSizeLimit, flags);
    return potential_block_size(minGridSize, blockSize, func, blockSizeToDynamicSMemSize, blockSizeLimit, flags);
}

CUresult tfs_cuOccupancyMaxPotentialBlockSize(int *minGridSize, int *blockSize, CUfunction func,
                                              CUoccupancyB2DSize blockSizeToDynamicSMemSize, size_t dynamicSMemSize,
                                              int blockSizeLimit)
{
    NEED_INIT();
    if (!minGridSize || !blockSize || !func) return CUDA_ERROR_INVALID_VALUE;
    if (!blockSizeToDynamicSMemSize)
        return rpc_cuOccupancyMaxPotentialBlockSize(minGridSize, blockSize, func, NULL, dynamicSMemSize, blockSizeLimit);
    return potential_block_size(minGridSize, blockSize, func, blockSizeToDynamicSMemSize, blockSizeLimit, 0);
}

CUresult tfs_cuOccupancyMaxPotentialClusterSize(int *clusterSize, CUfunction func, const CUlaunchConfig *config)
{
    NEED_INIT();
    if (!clusterSize || !config || (config->numAttrs && !config->attrs)) return CUDA_ERROR_INVALID_VALUE;
    return rpc_tfOccupancyCluster(clusterSize, func, config, config->numAttrs, config->attrs, 0);
}

CUresult tfs_cuOccupancyMaxActiveClusters(int *numClusters, CUfunction func, const CUlaunchConfig *config)
{
    NEED_INIT();
    if (!numClusters || !config || (config->numAttrs && !config->attrs)) return CUDA_ERROR_INVALID_VALUE;
    return rpc_tfOccupancyCluster(numClusters, func, config, config->numAttrs, config->attrs, 1);
}
