/* tf_limiter_shm.h - THE layout of a session's limiter shared-memory region (/dev/shm/tf-<session>).
 * Written by the supervisor (tfworker/limits.py: limits) and by the limiter (limiter.c: usage); read by
 * both. Defined once here as a field table; tfworker/limits.py mirrors it and tests/limiter asserts the
 * offsets match (it compiles this header). Bump TF_SHM_VERSION on any layout change.
 *
 * Consistency: each half is a seqlock with ONE writer. The writer makes its seq odd, writes the
 * fields, makes it even again; a reader retries while seq is odd or changed under it. No torn reads.
 * All fields are little-endian and naturally aligned; the struct has no implicit padding. */
#ifndef TF_LIMITER_SHM_H
#define TF_LIMITER_SHM_H
#include <stdint.h>

#define TF_SHM_MAGIC   0x4D4C4654u /* "TFLM" in memory order */
#define TF_SHM_VERSION 1u

/* X(type, name, comment) - type is u32, u64 or f64 */
#define TF_SHM_FIELDS(X) \
    X(u32, magic,         "TF_SHM_MAGIC") \
    X(u32, version,       "TF_SHM_VERSION") \
    X(u32, size,          "sizeof(tf_shm_region) as written by the creator") \
    X(u32, flags,         "reserved, 0") \
    /* limits: written by the supervisor, re-read by the limiter at every refill and allocation */ \
    X(u64, limits_seq,    "seqlock of the limits half") \
    X(u64, vram_limit,    "VRAM cap in bytes, 0 = no cap") \
    X(f64, tflops_limit,  "compute limit in TFLOPS, 0 = no limit") \
    X(f64, device_tflops, "the device's TFLOPS; share = tflops_limit / device_tflops") \
    X(u64, limits_rsv0,   "reserved") \
    X(u64, limits_rsv1,   "reserved") \
    /* usage: written by the limiter in the session's GPU worker process */ \
    X(u64, usage_seq,     "seqlock of the usage half") \
    X(u64, vram_used,     "bytes charged now") \
    X(u64, vram_peak,     "max of vram_used") \
    X(u64, launches,      "kernel launches (graph launches count once)") \
    X(u64, throttled_ns,  "total time launching threads waited for tokens") \
    X(u64, busy_ns,       "device busy time of this process (emulator / NVML), 0 if unknown") \
    X(f64, refill_rate,   "current token refill rate (tokens/s), 0 = not limiting") \
    X(u64, limiter_pid,   "pid of the process writing usage") \
    X(u64, updated_ns,    "CLOCK_REALTIME ns of the last usage write") \
    X(u64, usage_rsv0,    "reserved")

#define TF_SHM_CTYPE_u32 uint32_t
#define TF_SHM_CTYPE_u64 uint64_t
#define TF_SHM_CTYPE_f64 double
#define TF_SHM_DECLARE(t, n, c) TF_SHM_CTYPE_##t n;
typedef struct tf_shm_region { TF_SHM_FIELDS(TF_SHM_DECLARE) } tf_shm_region;
#undef TF_SHM_DECLARE

_Static_assert(sizeof(tf_shm_region) == 144, "layout changed: bump TF_SHM_VERSION and update tfworker/limits.py");

#endif
