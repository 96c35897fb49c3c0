// What the AVX-512 kernels need and Swift cannot express. Non-temporal (streaming) stores: a store
// that writes whole cache lines to memory without reading them first. A kernel writing an output
// larger than the caches otherwise reads every line of it from memory before overwriting it (a
// 16->16 convolution at 64^3 writes 16 MB: a third of its memory traffic was those reads). Software
// prefetches, for reading and for writing. And two-source permutes (`vpermt2ps`), which Swift's SIMD
// `evenHalf`/`oddHalf` do not compile to, and lane masks (Swift's masked `replace` goes lane by lane).
//
// Inline: Swift's clang importer compiles these into the calling module, where they become
// `vmovntps`, `prefetchw` and `vpermt2ps` (VoxelTensorAVX512, built for AVX-512) and `prefetcht0`
// (there, and in VoxelTensor's padded copy). One function is not: `vx_usable_cpus` (CStream.c), which
// needs the C library's CPU affinity calls.
#ifndef VOXPLAIN_CSTREAM_H
#define VOXPLAIN_CSTREAM_H

#include <stdint.h>

typedef float vx_float4 __attribute__((ext_vector_type(4)));
typedef float vx_float16 __attribute__((ext_vector_type(16)));

/// Stores 16 floats at `p` (at least 16-byte aligned) without reading its cache lines: one 64-byte
/// streaming store where `p` is 64-byte aligned, else four 16-byte ones.
static inline __attribute__((always_inline)) void vx_stream16(float *p, vx_float16 v) {
    if (((uintptr_t)p & 63) == 0) {
        __builtin_nontemporal_store(v, (vx_float16 *)p);
    } else {
        __builtin_nontemporal_store(v.s0123, (vx_float4 *)p);
        __builtin_nontemporal_store(v.s4567, (vx_float4 *)(p + 4));
        __builtin_nontemporal_store(v.s89ab, (vx_float4 *)(p + 8));
        __builtin_nontemporal_store(v.scdef, (vx_float4 *)(p + 12));
    }
}

/// Orders this thread's streaming stores before its later stores (call before the work is handed
/// back: streaming stores are weakly ordered).
static inline __attribute__((always_inline)) void vx_store_fence(void) {
#if defined(__x86_64__)
    __builtin_ia32_sfence();
#else
    __atomic_thread_fence(__ATOMIC_RELEASE);
#endif
}

/// Asks for the cache line holding `p` to be brought into the caches (`prefetcht0`): a hint that
/// never faults and never waits, so the one-channel kernel can fetch its driver's next source plane
/// from memory while it computes on this one. (Into L1 measured 34.0-34.3 ms on the stem's input
/// gradient, into L2 34.4-35.5, none 36.6-36.7.)
static inline __attribute__((always_inline)) void vx_prefetch(const void *p) {
    __builtin_prefetch(p, 0, 3);
}

/// Asks for the cache line holding `p` in a writable state (`prefetchw`): the W-vectorised kernel
/// fetches the lines its next micro-tile will store while this one computes, so the stores to an
/// output larger than the caches do not wait for their lines.
static inline __attribute__((always_inline)) void vx_prefetch_write(const void *p) {
    __builtin_prefetch(p, 1, 3);
}

/// Interleaves `even` and `odd` (the even and odd columns of 16 pairs) into the 32 consecutive columns
/// at `out`. Two `vpermt2ps` on AVX-512 (the stores fold away once inlined into a register result);
/// Swift's `evenHalf`/`oddHalf` unzips, which the Winograd kernel used before, compiled to a dozen
/// shuffles of ymm and xmm halves.
static inline __attribute__((always_inline)) void vx_zip16(vx_float16 even, vx_float16 odd, float *out) {
    vx_float16 lo = __builtin_shufflevector(even, odd, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    vx_float16 hi = __builtin_shufflevector(even, odd, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    __builtin_memcpy(out, &lo, sizeof lo);
    __builtin_memcpy(out + 16, &hi, sizeof hi);
}

/// The even lanes of the 32 floats at `p` (`p[0], p[2], ..., p[30]`): one 64-byte-pair load and a
/// `vpermt2ps` (Swift's `evenHalf` of a loaded SIMD32 compiled to 16 scalar loads and inserts).
static inline __attribute__((always_inline)) vx_float16 vx_even16(const float *p) {
    vx_float16 a, b;
    __builtin_memcpy(&a, p, sizeof a);
    __builtin_memcpy(&b, p + 16, sizeof b);
    return __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
}

typedef int32_t vx_int16 __attribute__((ext_vector_type(16)));

/// `v` with lanes outside `[lo, hi)` set to +0: a compare into a mask register and a masked move
/// (Swift's `replace(with:where:)` built the mask lane by lane through the stack).
static inline __attribute__((always_inline)) vx_float16 vx_keep16(vx_float16 v, int lo, int hi) {
    const vx_int16 lane = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    vx_int16 keep = (lane >= lo) & (lane < hi);
    return (vx_float16)((vx_int16)v & keep);
}

#if defined(__x86_64__)
typedef float vx_gcc_float16 __attribute__((vector_size(64)));
typedef int32_t vx_gcc_int16 __attribute__((vector_size(64)));

/// Stores the 32 floats `lo`, `hi` at `d`, which lies `m` (1-15) floats past the start of a 64-byte
/// line and is not 16-byte aligned (rows whose width is not a multiple of 4): the whole line among them
/// with one streaming store, the partial lines at either end (their other floats belong to the
/// neighbouring tile vectors) with masked plain stores, all from registers (three `vpermt2ps`, two
/// `vmovups` under a mask). Each masked store is aimed at its own line's start and shifted into place,
/// so it touches no other line: masked stores straddling into the line being streamed made a batch of
/// 16 at 16->16, 64^3 four times slower (486 ms against 119). It replaced a staging of the vectors
/// through the stack (a store, scalar copies of the partial lines, an unaligned reload across the two
/// stores): 142.2 ms against 149.8 on that batch (medians of 6), in a slow phase. For AVX-512 callers only.
static inline __attribute__((always_inline)) void vx_stream32_at(float *d, vx_float16 lo, vx_float16 hi, int m) {
    const vx_int16 lane = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    unsigned short head = (unsigned short)(0xffffu << m);        /* lanes m..15 of the first line */
    vx_float16 first = (vx_float16)__builtin_ia32_vpermi2varps512((vx_gcc_float16)lo, (vx_gcc_int16)((lane - m) & 15),
                                                                  (vx_gcc_float16)lo);
    __builtin_ia32_storeups512_mask(d - m, (vx_gcc_float16)first, head);
    vx_float16 mid = (vx_float16)__builtin_ia32_vpermi2varps512((vx_gcc_float16)lo, (vx_gcc_int16)(lane + (16 - m)),
                                                                (vx_gcc_float16)hi);
    __builtin_nontemporal_store(mid, (vx_float16 *)(d + 16 - m));
    vx_float16 last = (vx_float16)__builtin_ia32_vpermi2varps512((vx_gcc_float16)hi, (vx_gcc_int16)((lane + (16 - m)) & 15),
                                                                 (vx_gcc_float16)hi);
    __builtin_ia32_storeups512_mask(d + 32 - m, (vx_gcc_float16)last, (unsigned short)~head);
}
#else
/// Elsewhere (the AVX-512 module builds on every architecture but runs only on x86-64): plain stores.
static inline __attribute__((always_inline)) void vx_stream32_at(float *d, vx_float16 lo, vx_float16 hi, int m) {
    (void)m;
    __builtin_memcpy(d, &lo, sizeof lo);
    __builtin_memcpy(d + 16, &hi, sizeof hi);
}
#endif

/// Stores 16 channels x 4 consecutive columns held as one vector per column (`a`..`d`, lane l =
/// channel l): channel l's four values go to `dst + l * stride` (16 bytes each). A 4x4 transpose
/// within each 128-bit lane (8 two-source shuffles) and 16 stores instead of 64 scalar stores: the
/// store of the channel-vectorised kernel, whose vectors run across channels.
static inline __attribute__((always_inline)) void vx_store4x16(vx_float16 a, vx_float16 b, vx_float16 c,
                                                              vx_float16 d, float *dst, long stride) {
    vx_float16 ab0 = __builtin_shufflevector(a, b, 0, 16, 1, 17, 4, 20, 5, 21, 8, 24, 9, 25, 12, 28, 13, 29);
    vx_float16 ab1 = __builtin_shufflevector(a, b, 2, 18, 3, 19, 6, 22, 7, 23, 10, 26, 11, 27, 14, 30, 15, 31);
    vx_float16 cd0 = __builtin_shufflevector(c, d, 0, 16, 1, 17, 4, 20, 5, 21, 8, 24, 9, 25, 12, 28, 13, 29);
    vx_float16 cd1 = __builtin_shufflevector(c, d, 2, 18, 3, 19, 6, 22, 7, 23, 10, 26, 11, 27, 14, 30, 15, 31);
    /* r[j]'s 128-bit lane i holds channel 4i + j: (a, b, c, d) of it. */
    vx_float16 r[4];
    r[0] = __builtin_shufflevector(ab0, cd0, 0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29);
    r[1] = __builtin_shufflevector(ab0, cd0, 2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31);
    r[2] = __builtin_shufflevector(ab1, cd1, 0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29);
    r[3] = __builtin_shufflevector(ab1, cd1, 2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31);
    for (int j = 0; j < 4; j++) {
        for (int i = 0; i < 4; i++) {
            __builtin_memcpy(dst + (4 * i + j) * stride, (const float *)&r[j] + 4 * i, 16);
        }
    }
}

typedef float vx_float8 __attribute__((ext_vector_type(8)));

/// Splits the 32 floats at `p` by index mod 4: `p[4i + r]` goes to `out[r] + i` (8 floats each).
/// Two-source shuffles (the stride-2 Winograd kernel's source rows have four phases); Swift's nested
/// `evenHalf`/`oddHalf` went lane by lane.
static inline __attribute__((always_inline)) void vx_split4x8(const float *p, float *out0, float *out1,
                                                             float *out2, float *out3) {
    vx_float16 a, b;
    __builtin_memcpy(&a, p, sizeof a);
    __builtin_memcpy(&b, p + 16, sizeof b);
    vx_float16 r01 = __builtin_shufflevector(a, b, 0, 4, 8, 12, 16, 20, 24, 28, 1, 5, 9, 13, 17, 21, 25, 29);
    vx_float16 r23 = __builtin_shufflevector(a, b, 2, 6, 10, 14, 18, 22, 26, 30, 3, 7, 11, 15, 19, 23, 27, 31);
    vx_float8 q0 = r01.lo, q1 = r01.hi, q2 = r23.lo, q3 = r23.hi;
    __builtin_memcpy(out0, &q0, sizeof q0);
    __builtin_memcpy(out1, &q1, sizeof q1);
    __builtin_memcpy(out2, &q2, sizeof q2);
    __builtin_memcpy(out3, &q3, sizeof q3);
}

/// Interleaves four vectors of 16 (columns 4t, 4t + 1, 4t + 2, 4t + 3 of 16 tiles t) into the 64
/// consecutive columns at `out`: eight `vpermt2ps`. The store of the stride-2 Winograd input gradient,
/// whose tiles are four columns wide.
static inline __attribute__((always_inline)) void vx_zip4x16(vx_float16 a, vx_float16 b, vx_float16 c,
                                                            vx_float16 d, float *out) {
    vx_float16 ab0 = __builtin_shufflevector(a, b, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    vx_float16 ab1 = __builtin_shufflevector(a, b, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    vx_float16 cd0 = __builtin_shufflevector(c, d, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    vx_float16 cd1 = __builtin_shufflevector(c, d, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    vx_float16 r0 = __builtin_shufflevector(ab0, cd0, 0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23);
    vx_float16 r1 = __builtin_shufflevector(ab0, cd0, 8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31);
    vx_float16 r2 = __builtin_shufflevector(ab1, cd1, 0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23);
    vx_float16 r3 = __builtin_shufflevector(ab1, cd1, 8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31);
    __builtin_memcpy(out, &r0, sizeof r0);
    __builtin_memcpy(out + 16, &r1, sizeof r1);
    __builtin_memcpy(out + 32, &r2, sizeof r2);
    __builtin_memcpy(out + 48, &r3, sizeof r3);
}

/// Splits the 32 floats at `p` by index parity: `p[2i]` to `even + i`, `p[2i + 1]` to `odd + i`
/// (16 floats each): two `vpermt2ps`. The stride-1 Winograd kernel's source rows.
static inline __attribute__((always_inline)) void vx_split2x16(const float *p, float *even, float *odd) {
    vx_float16 a, b;
    __builtin_memcpy(&a, p, sizeof a);
    __builtin_memcpy(&b, p + 16, sizeof b);
    vx_float16 e = __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    vx_float16 o = __builtin_shufflevector(a, b, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    __builtin_memcpy(even, &e, sizeof e);
    __builtin_memcpy(odd, &o, sizeof o);
}

/// CPUs this process may run on: the online CPUs, fewer when the affinity mask (taskset, SLURM,
/// `docker --cpuset-cpus`) or a cgroup CPU quota (`docker --cpus`, rounded up) allows fewer.
/// Defined in CStream.c.
int vx_usable_cpus(void);

#endif
