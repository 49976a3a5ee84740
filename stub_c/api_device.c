/* api_device.c - the client stub's hand-written entry points for device facts cached at cuInit (name, memory,
 * attributes, UUID), answered locally.
 * Rows of proto/calls.tbl marked `local` or `stub=hand` in this area; exported under the CUDA names
 * through the tfs_* prototypes of the generated stub_calls.h. The list of areas is in stub.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stub.h"
#include "tf_devprop.h"
#include "stub_calls.h"

/* ------------------------------------------------------------------------------- devices */
const tf_dev_info *tf_dev_info_of(CUdevice dev)
{
    const tf_session_info *s = tf_session();
    return (dev >= 0 && dev < s->dev_count) ? &s->devs[dev] : NULL;
}

CUresult tfs_cuDeviceGet(CUdevice *device, int ordinal)
{
    NEED_INIT();
    if (!device) return CUDA_ERROR_INVALID_VALUE;
    if (!tf_dev_info_of(ordinal)) return CUDA_ERROR_INVALID_DEVICE;
    *device = ordinal;
    return CUDA_SUCCESS;
}

CUresult tfs_cuDeviceGetCount(int *count)
{
    NEED_INIT();
    if (!count) return CUDA_ERROR_INVALID_VALUE;
    *count = tf_session()->dev_count;
    return CUDA_SUCCESS;
}

CUresult tfs_cuDeviceGetName(char *name, int len, CUdevice dev)
{
    NEED_INIT();
    const tf_dev_info *d = tf_dev_info_of(dev);
    if (!d) return CUDA_ERROR_INVALID_DEVICE;
    if (!name || len <= 0) return CUDA_ERROR_INVALID_VALUE;
    size_t n = strnlen(d->name, sizeof d->name);
    if (n >= (size_t)len) n = (size_t)len - 1;
    memcpy(name, d->name, n);
    name[n] = 0;
    return CUDA_SUCCESS;
}

CUresult tfs_cuDeviceTotalMem_v2(size_t *bytes, CUdevice dev)
{
    NEED_INIT();
    const tf_dev_info *d = tf_dev_info_of(dev);
    if (!d) return CUDA_ERROR_INVALID_DEVICE;
    if (!bytes) return CUDA_ERROR_INVALID_VALUE;
    *bytes = (size_t)d->total_mem;
    return CUDA_SUCCESS;
}

CUresult tfs_cuDeviceGetAttribute(int *pi, CUdevice_attribute attrib, CUdevice dev)
{
    NEED_INIT();
    const tf_dev_info *d = tf_dev_info_of(dev);
    if (!d) return CUDA_ERROR_INVALID_DEVICE;
    if (!pi || (int)attrib <= 0 || (int)attrib >= TF_MAX_ATTR || !d->attr_ok[attrib]) return CUDA_ERROR_INVALID_VALUE;
    *pi = d->attr[attrib];
    /* the pool handle types that travel (api_vmm.c): a POSIX fd on the worker's host only, no other type */
    if (attrib == CU_DEVICE_ATTRIBUTE_MEMPOOL_SUPPORTED_HANDLE_TYPES)
        *pi &= tf_conn_is_unix() ? (int)CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR : 0;
    return CUDA_SUCCESS;
}

/* The deprecated compute-capability and CUdevprop views of the cached attributes. */
CUresult tfs_cuDeviceComputeCapability(int *major, int *minor, CUdevice dev)
{
    NEED_INIT();
    const tf_dev_info *d = tf_dev_info_of(dev);
    if (!d) return CUDA_ERROR_INVALID_DEVICE;
    if (!major || !minor) return CUDA_ERROR_INVALID_VALUE;
    *major = d->attr[CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR];
    *minor = d->attr[CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR];
    return CUDA_SUCCESS;
}

static int devprop_attr(void *ctx, CUdevice_attribute a)
{
    const tf_dev_info *d = ctx;
    return (int)a > 0 && (int)a < TF_MAX_ATTR && d->attr_ok[a] ? d->attr[a] : 0;
}

CUresult tfs_cuDeviceGetProperties(CUdevprop *prop, CUdevice dev)
{
    NEED_INIT();
    const tf_dev_info *d = tf_dev_info_of(dev);
    if (!d) return CUDA_ERROR_INVALID_DEVICE;
    if (!prop) return CUDA_ERROR_INVALID_VALUE;
    tf_devprop_fill(prop, devprop_attr, (void *)d);
    return CUDA_SUCCESS;
}

CUresult tfs_cuDeviceGetUuid(CUuuid *uuid, CUdevice dev)
{
    NEED_INIT();
    const tf_dev_info *d = tf_dev_info_of(dev);
    if (!d) return CUDA_ERROR_INVALID_DEVICE;
    if (!uuid) return CUDA_ERROR_INVALID_VALUE;
    *uuid = d->uuid;
    return CUDA_SUCCESS;
}

CUresult tfs_cuDeviceGetUuid_v2(CUuuid *uuid, CUdevice dev) { return tfs_cuDeviceGetUuid(uuid, dev); }
