/* The allocator's guard against overcommit (src/base/memory.c): a block the system cannot provide
 * is refused at once instead of being granted by Linux and ending the process in the OOM killer
 * when it is filled. The sizes asked for are never touched, so the test allocates nothing large. */
#define _POSIX_C_SOURCE 200809L
#include "check.h"

#include "base/base.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* MemAvailable + SwapFree from /proc/meminfo, read here independently; -1 when unknown. */
static long long meminfo_available(void)
{
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f) return -1;
    char line[256];
    long long avail = -1, swap = 0, v;
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "MemAvailable: %lld kB", &v) == 1) avail = v * 1024;
        if (sscanf(line, "SwapFree: %lld kB", &v) == 1) swap = v * 1024;
    }
    fclose(f);
    return avail < 0 ? -1 : avail + swap;
}

/* ---- the rule on fake /proc and /sys trees ----------------------------------------------------- */

static char root[256];

/* Writes `text` to root + rel, creating the directories on the way. */
static void put(const char *rel, const char *text)
{
    char path[1024];
    snprintf(path, sizeof path, "%s%s", root, rel);
    for (char *p = path + strlen(root) + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            mkdir(path, 0755);
            *p = '/';
        }
    check_put_file(path, text, strlen(text));
}

static const char *MEMINFO = "MemTotal:       16000000 kB\nMemFree:         1000000 kB\n"
                             "MemAvailable:    8000000 kB\nSwapTotal:       4000000 kB\nSwapFree:        3000000 kB\n";

static void test_rule(void)
{
    snprintf(root, sizeof root, "%s", "/tmp/gram-test-memory-XXXXXX");
    if (!mkdtemp(root)) {
        CHECK(0, "mkdtemp failed");
        return;
    }
    const long long kB = 1024;
    /* nothing at all: unknown */
    CHECK(gram__memory_available_in(root) == -1, "no /proc/meminfo: unknown");
    /* a kernel without MemAvailable (before 3.14): unknown, not a guess */
    put("/proc/meminfo", "MemTotal:       16000000 kB\nMemFree:         1000000 kB\n");
    CHECK(gram__memory_available_in(root) == -1, "no MemAvailable: unknown");
    /* MemAvailable + SwapFree; no cgroup file */
    put("/proc/meminfo", MEMINFO);
    CHECK(gram__memory_available_in(root) == 11000000 * kB, "meminfo: %lld", gram__memory_available_in(root));
    /* cgroup v2: the group /a/b is unlimited, its parent /a has 2 GB of which 1.5 GB used, 0.4 GB
     * of it page cache: room 0.9 GB */
    put("/proc/self/cgroup", "0::/a/b\n");
    put("/sys/fs/cgroup/cgroup.controllers", "cpu memory\n");
    put("/sys/fs/cgroup/a/b/memory.max", "max\n");
    put("/sys/fs/cgroup/a/b/memory.current", "100000000\n");
    put("/sys/fs/cgroup/a/memory.max", "2000000000\n");
    put("/sys/fs/cgroup/a/memory.current", "1500000000\n");
    put("/sys/fs/cgroup/a/memory.stat", "anon 1100000000\nfile 400000000\nfile_mapped 5\n");
    CHECK(gram__memory_available_in(root) == 900000000LL, "v2 parent limit: %lld", gram__memory_available_in(root));
    /* a tighter limit on the group itself wins */
    put("/sys/fs/cgroup/a/b/memory.max", "300000000\n");
    CHECK(gram__memory_available_in(root) == 200000000LL, "v2 own limit: %lld", gram__memory_available_in(root));
    /* a limit above what the machine has changes nothing */
    put("/sys/fs/cgroup/a/b/memory.max", "90000000000\n");
    put("/sys/fs/cgroup/a/memory.max", "max\n");
    CHECK(gram__memory_available_in(root) == 11000000 * kB, "loose v2 limit: %lld", gram__memory_available_in(root));
    /* usage over the limit: no room */
    put("/sys/fs/cgroup/a/b/memory.max", "50000000\n");
    CHECK(gram__memory_available_in(root) == 0, "over the limit: %lld", gram__memory_available_in(root));
    /* cgroup v1 (a hybrid machine: the memory controller's line wins over "0::"); v1's
     * "unlimited" is a huge number */
    put("/proc/self/cgroup", "5:cpu,cpuacct:/x\n4:memory:/docker/abc\n0::/\n");
    put("/sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes", "9223372036854771712\n");
    put("/sys/fs/cgroup/memory/docker/abc/memory.usage_in_bytes", "5\n");
    CHECK(gram__memory_available_in(root) == 11000000 * kB, "v1 unlimited: %lld", gram__memory_available_in(root));
    put("/sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes", "1000000000\n");
    put("/sys/fs/cgroup/memory/docker/abc/memory.usage_in_bytes", "700000000\n");
    put("/sys/fs/cgroup/memory/docker/abc/memory.stat", "cache 1\ntotal_cache 200000000\n");
    CHECK(gram__memory_available_in(root) == 500000000LL, "v1 limit: %lld", gram__memory_available_in(root));
    /* a namespaced container sees its group at the mount: "4:memory:/" and the files there */
    put("/proc/self/cgroup", "4:memory:/\n");
    put("/sys/fs/cgroup/memory/memory.limit_in_bytes", "800000000\n");
    put("/sys/fs/cgroup/memory/memory.usage_in_bytes", "100000000\n");
    CHECK(gram__memory_available_in(root) == 700000000LL, "v1 at the mount: %lld", gram__memory_available_in(root));
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    CHECK(system(cmd) == 0, "cleanup");
}

int main(void)
{
    test_rule();
    const size_t GiB = (size_t)1 << 30;
    long long sys = meminfo_available(), lib = gram__memory_available();
    if (sys < 0) {
        CHECK(lib == -1, "no /proc/meminfo: the library has no estimate either (%lld)", lib);
        CHECK(gram__memory_fits((size_t)1 << 62), "unknown availability refuses nothing");
    } else {
        /* The library's figure is this one, or lower under a cgroup limit; both move a little
         * as other processes run, so only the order of magnitude is compared. */
        CHECK(lib > 0 && lib <= sys + sys / 4 + (long long)GiB, "available %lld vs /proc/meminfo %lld", lib, sys);
        size_t too_big = (size_t)lib + 2 * GiB;
        CHECK(!gram__memory_fits(too_big), "%zu bytes exceed the %lld available", too_big, lib);
        /* Linux would hand this out (it is below RAM + swap on most machines): the guard must not */
        void *p = gram__alloc(too_big);
        CHECK(p == NULL, "gram__alloc(%zu) beyond what the system can provide returned a block", too_big);
        gram__free(p);
        p = gram__calloc(too_big / 8, 8);
        CHECK(p == NULL, "gram__calloc beyond what the system can provide returned a block");
        gram__free(p);
    }
    /* Below 1 GiB nothing is checked, and ordinary blocks still work. */
    CHECK(gram__memory_fits(GiB - 64), "blocks under 1 GiB always pass the guard");
    unsigned char *q = gram__alloc(1 << 20);
    CHECK(q != NULL && ((uintptr_t)q & 63) == 0, "a 1 MiB block, 64-byte aligned");
    if (q) memset(q, 1, 1 << 20);
    gram__free(q);
    CHECK(gram__alloc(0) == NULL && gram__calloc(0, 8) == NULL && gram__calloc((size_t)-1, 16) == NULL,
          "zero sizes and overflowing products give NULL");
    return check_done();
}
