/* tf_limiter_shm.h - THE layout of an allocation's limiter shared-memory region (/dev/shm/tf-<tag>-<allocation>).
 * Written by the supervisor (tfworker/limits.py: limits) and by the limiter in EVERY process of the
 * allocation (limiter.c: usage, bucket, slots); read by both. Defined once here as a field table;
 * tfworker/limits.py mirrors it and tests/limiter asserts the offsets match (it compiles this header).
 * Bump TF_SHM_VERSION on any layout change.
 *
 * Consistency: the limits half is a seqlock with ONE writer (the supervisor): it makes limits_seq odd,
 * writes, makes it even; a reader retries while it is odd or changed under it. Everything else has
 * many writers (all processes of the allocation) and is only touched with 8-byte atomics:
 *  - vram_used is the allocation's charged bytes; a charge is a CAS from u to u + n only if u + n <= cap,
 *    so processes racing for the last bytes cannot together pass the cap;
 *  - cumulative counters (launches, throttled_ns, busy_ns, tokens) get each process's deltas added;
 *  - bucket_tat_ns is the shared token bucket (GCRA: one CAS per admitted launch), bucket_rate its rate;
 *  - slots[] is the per-process ledger: a process claims a slot (CAS pid 0 -> its pid) and adds to it what
 *    it charges, so the charges of a process that died without freeing (kill -9) are given back by
 *    whoever finds its slot dead (pid gone or reused: start time differs).
 * All fields are little-endian and naturally aligned; the struct has no implicit padding. */
#ifndef TF_LIMITER_SHM_H
#define TF_LIMITER_SHM_H
#include <stdint.h>

#define TF_SHM_MAGIC   0x4D4C4654u /* "TFLM" in memory order */
#define TF_SHM_VERSION 2u
#define TF_SHM_SLOTS   64u /* processes of one allocation at a time */

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
    /* usage of the whole allocation: atomics, written by every process of it */ \
    X(u64, oom_refusals,  "allocations refused for the VRAM cap (CUDA_ERROR_OUT_OF_MEMORY)") \
    X(u64, vram_used,     "bytes charged now by all processes (CAS against vram_limit)") \
    X(u64, vram_peak,     "max of vram_used") \
    X(u64, launches,      "kernel launches (graph launches count once)") \
    X(u64, throttled_ns,  "total time launching threads waited for tokens") \
    X(u64, busy_ns,       "device busy time of all processes (emulator / NVML), 0 if unknown") \
    X(f64, refill_rate,   "current token refill rate (tokens/s), 0 = not limiting") \
    X(u64, limiter_pid,   "pid of the process that wrote usage last") \
    X(u64, updated_ns,    "CLOCK_REALTIME ns of the last usage write") \
    X(u64, tokens,        "tokens (launched threads) admitted by the bucket") \
    /* the allocation's token bucket (GCRA), shared by its processes */ \
    X(u64, bucket_tat_ns, "theoretical arrival time, CLOCK_MONOTONIC ns; a launch waits while it is ahead of now + burst") \
    X(f64, bucket_rate,   "tokens per second of the shared bucket, 0 = off (set by the controllers)") \
    X(u64, slots_rsv0,    "reserved")

/* One process's share of the allocation: its pid (0 = free; top bit set = being reclaimed), its start
 * time (field 22 of /proc/<pid>/stat: a reused pid is not the same process) and the bytes it charged. */
typedef struct tf_shm_slot {
    uint64_t pid;
    uint64_t start;
    uint64_t vram;
    uint64_t rsv;
} tf_shm_slot;
#define TF_SHM_SLOT_RECLAIM (1ull << 63)

#define TF_SHM_CTYPE_u32 uint32_t
#define TF_SHM_CTYPE_u64 uint64_t
#define TF_SHM_CTYPE_f64 double
#define TF_SHM_DECLARE(t, n, c) TF_SHM_CTYPE_##t n;
typedef struct tf_shm_region { TF_SHM_FIELDS(TF_SHM_DECLARE) tf_shm_slot slots[TF_SHM_SLOTS]; } tf_shm_region;
#undef TF_SHM_DECLARE

_Static_assert(sizeof(tf_shm_region) == 168 + TF_SHM_SLOTS * sizeof(tf_shm_slot),
               "layout changed: bump TF_SHM_VERSION and update tfworker/limits.py");

#endif
