/* emu_managed_advice.c - what programs told the driver about managed memory, and cuMemRangeGetAttribute(s),
 * which asks it back. Managed memory on the emulated device is one copy that host and kernels both reach, so
 * an advice (cuMemAdvise) or a prefetch (cuMemPrefetchAsync) moves nothing; each is kept per 4 KiB page of
 * the allocation (the host's page: the memory is host memory) in the allocation's advice slot
 * (emu_memory.c), and a range query answers what CUDA documents for the pages of the range: read-mostly
 * if every page is, a preferred or last-prefetch location if every page has the same one (else
 * CU_DEVICE_INVALID / CU_MEM_LOCATION_TYPE_INVALID), the devices (then CU_DEVICE_CPU) every page is
 * accessed by. Host NUMA locations count as the host (one host node here). Called by emu_memory.c's advise
 * and prefetch calls.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "emu_internal.h"

enum { PAGE = 4096, LOC_NONE = -3 }; /* LOC_NONE: no location recorded (CU_DEVICE_CPU is -1) */

typedef struct page_state {
    signed char read_mostly;
    signed char preferred;    /* a device, CU_DEVICE_CPU or LOC_NONE */
    signed char prefetched;   /* same */
    unsigned char pad;
    unsigned accessed_by;     /* bit d: device d; bit EMU_MAX_DEVICES: the CPU */
} page_state;

CUmemLocation emu_advice_location_of(CUdevice dev)
{
    CUmemLocation l;
    l.type = dev == CU_DEVICE_CPU ? CU_MEM_LOCATION_TYPE_HOST : CU_MEM_LOCATION_TYPE_DEVICE;
    l.id = dev == CU_DEVICE_CPU ? 0 : dev;
    return l;
}

/* A location as a page keeps it, or CUDA_ERROR_INVALID_DEVICE. */
static CUresult loc_code(CUmemLocation l, int *out)
{
    switch (l.type) {
    case CU_MEM_LOCATION_TYPE_HOST:
    case CU_MEM_LOCATION_TYPE_HOST_NUMA:
    case CU_MEM_LOCATION_TYPE_HOST_NUMA_CURRENT:
        *out = CU_DEVICE_CPU;
        return CUDA_SUCCESS;
    case CU_MEM_LOCATION_TYPE_DEVICE:
        if (l.id < 0 || l.id >= g_emu.ndev)
            return CUDA_ERROR_INVALID_DEVICE;
        *out = l.id;
        return CUDA_SUCCESS;
    default:
        return CUDA_ERROR_INVALID_DEVICE;
    }
}

typedef struct change {
    uint64_t p;
    size_t n;
    int advice;   /* a CUmem_advise, or 0 for a prefetch */
    int loc;
} change;

static CUresult apply_locked(void **slot, uint64_t base, size_t size, void *arg)
{
    const change *c = arg;
    size_t npages = (size + PAGE - 1) / PAGE;
    if (!*slot) {
        page_state *ps = malloc(npages * sizeof(*ps));
        if (!ps)
            return CUDA_ERROR_OUT_OF_MEMORY;
        for (size_t i = 0; i < npages; i++)
            ps[i] = (page_state){0, LOC_NONE, LOC_NONE, 0, 0};
        *slot = ps;
    }
    page_state *ps = *slot;
    const unsigned bit = 1u << (c->loc == CU_DEVICE_CPU ? EMU_MAX_DEVICES : c->loc);
    for (size_t i = (c->p - base) / PAGE; i <= (c->p + c->n - 1 - base) / PAGE; i++) {
        switch (c->advice) {
        case 0: ps[i].prefetched = (signed char)c->loc; break;
        case CU_MEM_ADVISE_SET_READ_MOSTLY: ps[i].read_mostly = 1; break;
        case CU_MEM_ADVISE_UNSET_READ_MOSTLY: ps[i].read_mostly = 0; break;
        case CU_MEM_ADVISE_SET_PREFERRED_LOCATION: ps[i].preferred = (signed char)c->loc; break;
        case CU_MEM_ADVISE_UNSET_PREFERRED_LOCATION: ps[i].preferred = LOC_NONE; break;
        case CU_MEM_ADVISE_SET_ACCESSED_BY: ps[i].accessed_by |= bit; break;
        default: ps[i].accessed_by &= ~bit; break; /* CU_MEM_ADVISE_UNSET_ACCESSED_BY */
        }
    }
    return CUDA_SUCCESS;
}

/* Kept for managed memory; other memory the callers accept is left as it was (nothing to ask back). */
static CUresult record(const change *c)
{
    CUresult rc = emu_mem_managed_do(c->p, c->n, apply_locked, (void *)c);
    return rc == CUDA_ERROR_INVALID_VALUE ? CUDA_SUCCESS : rc;
}

CUresult emu_advice_apply(uint64_t p, size_t n, CUmem_advise advice, CUmemLocation loc)
{
    if (advice < CU_MEM_ADVISE_SET_READ_MOSTLY || advice > CU_MEM_ADVISE_UNSET_ACCESSED_BY)
        return CUDA_ERROR_INVALID_VALUE;
    change c = {p, n, advice, CU_DEVICE_CPU};
    /* the read-mostly advices and UNSET_PREFERRED_LOCATION ignore the location */
    if (advice == CU_MEM_ADVISE_SET_PREFERRED_LOCATION || advice == CU_MEM_ADVISE_SET_ACCESSED_BY ||
        advice == CU_MEM_ADVISE_UNSET_ACCESSED_BY) {
        CUresult rc = loc_code(loc, &c.loc);
        if (rc)
            return rc;
    }
    return n ? record(&c) : CUDA_SUCCESS;
}

CUresult emu_advice_prefetch(uint64_t p, size_t n, CUmemLocation loc)
{
    change c = {p, n, 0, 0};
    CUresult rc = loc_code(loc, &c.loc);
    if (rc)
        return rc;
    return n ? record(&c) : CUDA_SUCCESS;
}

/* ---- the query ---- */
typedef struct query {
    uint64_t p;
    size_t n;
    CUmem_range_attribute attr;
    void *data;
    size_t size;
} query;

/* The one location every page of the range has in the field at `off`, or LOC_NONE. */
static int common_loc(const page_state *ps, size_t first, size_t last, size_t off)
{
    if (!ps)
        return LOC_NONE;
    signed char loc = *((const signed char *)&ps[first] + off);
    for (size_t i = first + 1; i <= last && loc != LOC_NONE; i++)
        if (*((const signed char *)&ps[i] + off) != loc)
            loc = LOC_NONE;
    return loc;
}

static CUresult query_locked(void **slot, uint64_t base, size_t size, void *arg)
{
    (void)size;
    const query *q = arg;
    const page_state *ps = *slot;
    const size_t first = (q->p - base) / PAGE, last = (q->p + q->n - 1 - base) / PAGE;
    int *out = q->data;
    switch (q->attr) {
    case CU_MEM_RANGE_ATTRIBUTE_READ_MOSTLY: {
        int all = ps != NULL;
        for (size_t i = first; all && i <= last; i++)
            all = ps[i].read_mostly;
        *out = all;
        return CUDA_SUCCESS;
    }
    case CU_MEM_RANGE_ATTRIBUTE_ACCESSED_BY: {
        unsigned every = ps ? ~0u : 0;
        for (size_t i = first; ps && i <= last; i++)
            every &= ps[i].accessed_by;
        size_t k = 0, cap = q->size / sizeof(int);
        for (int d = 0; d < g_emu.ndev && k < cap; d++)
            if (every & (1u << d))
                out[k++] = d;
        if ((every & (1u << EMU_MAX_DEVICES)) && k < cap)
            out[k++] = CU_DEVICE_CPU; /* the host, as the legacy device argument names it (the stub does too) */
        while (k < cap)
            out[k++] = CU_DEVICE_INVALID;
        return CUDA_SUCCESS;
    }
    default: break;
    }
    const int preferred = q->attr == CU_MEM_RANGE_ATTRIBUTE_PREFERRED_LOCATION ||
                          q->attr == CU_MEM_RANGE_ATTRIBUTE_PREFERRED_LOCATION_TYPE ||
                          q->attr == CU_MEM_RANGE_ATTRIBUTE_PREFERRED_LOCATION_ID;
    const int loc = common_loc(ps, first, last, preferred ? offsetof(page_state, preferred)
                                                          : offsetof(page_state, prefetched));
    switch (q->attr) {
    case CU_MEM_RANGE_ATTRIBUTE_PREFERRED_LOCATION:
    case CU_MEM_RANGE_ATTRIBUTE_LAST_PREFETCH_LOCATION:
        *out = loc == LOC_NONE ? CU_DEVICE_INVALID : loc;
        break;
    case CU_MEM_RANGE_ATTRIBUTE_PREFERRED_LOCATION_TYPE:
    case CU_MEM_RANGE_ATTRIBUTE_LAST_PREFETCH_LOCATION_TYPE:
        *(CUmemLocationType *)q->data = loc == LOC_NONE        ? CU_MEM_LOCATION_TYPE_INVALID
                                      : loc == CU_DEVICE_CPU ? CU_MEM_LOCATION_TYPE_HOST
                                                             : CU_MEM_LOCATION_TYPE_DEVICE;
        break;
    default: /* the _ID attributes: a device ordinal where the type is a device; else to be ignored (0) */
        *out = loc >= 0 ? loc : 0;
        break;
    }
    return CUDA_SUCCESS;
}

/* INVALID_VALUE: no data, a size other than the attribute's (ACCESSED_BY: a non-zero multiple of 4), an
 * unknown attribute, a range that is not inside one managed allocation. */
static CUresult range_attr(void *data, size_t dataSize, CUmem_range_attribute attribute, CUdeviceptr devPtr,
                           size_t count)
{
    if (!data)
        return CUDA_ERROR_INVALID_VALUE;
    switch (attribute) {
    case CU_MEM_RANGE_ATTRIBUTE_ACCESSED_BY:
        if (!dataSize || dataSize % 4)
            return CUDA_ERROR_INVALID_VALUE;
        break;
    case CU_MEM_RANGE_ATTRIBUTE_PREFERRED_LOCATION_TYPE:
    case CU_MEM_RANGE_ATTRIBUTE_LAST_PREFETCH_LOCATION_TYPE:
        if (dataSize != sizeof(CUmemLocationType))
            return CUDA_ERROR_INVALID_VALUE;
        break;
    case CU_MEM_RANGE_ATTRIBUTE_READ_MOSTLY:
    case CU_MEM_RANGE_ATTRIBUTE_PREFERRED_LOCATION:
    case CU_MEM_RANGE_ATTRIBUTE_LAST_PREFETCH_LOCATION:
    case CU_MEM_RANGE_ATTRIBUTE_PREFERRED_LOCATION_ID:
    case CU_MEM_RANGE_ATTRIBUTE_LAST_PREFETCH_LOCATION_ID:
        if (dataSize != 4)
            return CUDA_ERROR_INVALID_VALUE;
        break;
    default:
        return CUDA_ERROR_INVALID_VALUE;
    }
    query q = {devPtr, count, attribute, data, dataSize};
    return emu_mem_managed_do(devPtr, count, query_locked, &q);
}

EMU_API CUresult cuMemRangeGetAttribute(void *data, size_t dataSize, CUmem_range_attribute attribute,
                                        CUdeviceptr devPtr, size_t count)
{
    EMU_ENTER(c);
    (void)c;
    return range_attr(data, dataSize, attribute, devPtr, count);
}

EMU_API CUresult cuMemRangeGetAttributes(void **data, size_t *dataSizes, CUmem_range_attribute *attributes,
                                         size_t numAttributes, CUdeviceptr devPtr, size_t count)
{
    EMU_ENTER(c);
    (void)c;
    if (!data || !dataSizes || !attributes || !numAttributes)
        return CUDA_ERROR_INVALID_VALUE;
    for (size_t i = 0; i < numAttributes; i++) {
        CUresult rc = range_attr(data[i], dataSizes[i], attributes[i], devPtr, count);
        if (rc)
            return rc;
    }
    return CUDA_SUCCESS;
}
