// CStream's kernels are header-only (include/CStream.h); this file holds what needs the C library
// with GNU extensions: how many CPUs the process may use.
#define _GNU_SOURCE
#include "CStream.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#if defined(__linux__)
/// `ceil(quota / period)` from a cgroup's CPU bandwidth limit, or 0 when there is none. cgroup v2
/// writes "max 100000" or "150000 100000" to cpu.max; v1 splits it over two files.
static long vx_cgroup_cpu_limit(void) {
    long quota = -1, period = 0;
    FILE *f = fopen("/sys/fs/cgroup/cpu.max", "r");
    if (f) {
        char first[32] = {0};
        if (fscanf(f, "%31s %ld", first, &period) == 2 && first[0] != 'm') {
            char *end = NULL;
            quota = strtol(first, &end, 10);
            if (end == first) quota = -1;
        }
        fclose(f);
    } else {
        FILE *q = fopen("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "r");
        FILE *p = fopen("/sys/fs/cgroup/cpu/cpu.cfs_period_us", "r");
        if (q && p && (fscanf(q, "%ld", &quota) != 1 || fscanf(p, "%ld", &period) != 1)) quota = -1;
        if (q) fclose(q);
        if (p) fclose(p);
    }
    if (quota <= 0 || period <= 0) return 0;
    return (quota + period - 1) / period;
}
#endif

int vx_usable_cpus(void) {
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    long count = online > 0 ? online : 1;
#if defined(__linux__)
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int allowed = CPU_COUNT(&set);
        if (allowed > 0 && allowed < count) count = allowed;
    }
    long limit = vx_cgroup_cpu_limit();
    if (limit > 0 && limit < count) count = limit;
#endif
    return (int)count;
}
