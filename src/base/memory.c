#include "base.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Linux overcommits memory: a malloc far beyond what the machine can back succeeds, and the
 * process is killed by the OOM killer later, when the pages are first written. A library that
 * must never end its caller refuses such a block up front instead. Only blocks of at least
 * GRAM_BIG_ALLOC bytes are checked: reading /proc costs microseconds, which is nothing next to
 * filling a gigabyte, and small blocks cannot be what exhausts a machine on their own. */

/* One "Name:  value kB" field of /proc/meminfo-style text (or "name value" in bytes when kb is
 * 0), or -1 when absent. */
static long long field(const char *text, const char *name, int kb)
{
    size_t n = strlen(name);
    const char *p = text;
    while (*p) {
        if (strncmp(p, name, n) == 0 && (p[n] == ':' || p[n] == ' ')) {
            long long v = strtoll(p + n + 1, NULL, 10);
            return v < 0 ? -1 : kb ? (v > LLONG_MAX / 1024 ? LLONG_MAX : v * 1024) : v;
        }
        const char *nl = strchr(p, '\n');
        if (!nl) break;
        p = nl + 1;
    }
    return -1;
}

/* The first bytes of the small text file root + path, NUL-terminated; 0 when it cannot be read. */
static size_t slurp(const char *root, const char *path, char *buf, size_t size)
{
    char full[4400];
    if ((size_t)snprintf(full, sizeof full, "%s%s", root, path) >= sizeof full) return 0;
    FILE *f = fopen(full, "r");
    if (!f) return 0;
    size_t n = fread(buf, 1, size - 1, f);
    fclose(f);
    buf[n] = '\0';
    return n;
}

/* The memory a cgroup directory leaves: its limit less the usage it cannot reclaim (page cache
 * excluded), or -1 when it has no limit or its files cannot be read. */
static long long cgroup_dir_room(const char *root, const char *dir, int v2)
{
    char path[4300], buf[8192];
    long long limit, usage, cache;
    snprintf(path, sizeof path, "%s/%s", dir, v2 ? "memory.max" : "memory.limit_in_bytes");
    if (!slurp(root, path, buf, sizeof buf) || strncmp(buf, "max", 3) == 0) return -1;
    limit = strtoll(buf, NULL, 10);
    if (limit <= 0 || limit >= (1LL << 60)) return -1; /* v1 says "no limit" with a huge number */
    snprintf(path, sizeof path, "%s/%s", dir, v2 ? "memory.current" : "memory.usage_in_bytes");
    if (!slurp(root, path, buf, sizeof buf)) return -1;
    usage = strtoll(buf, NULL, 10);
    snprintf(path, sizeof path, "%s/memory.stat", dir);
    cache = slurp(root, path, buf, sizeof buf) ? field(buf, v2 ? "file" : "total_cache", 0) : 0;
    if (cache > 0 && cache < usage) usage -= cache;
    return limit > usage ? limit - usage : 0;
}

/* The least room under the memory limits of the process's cgroup and its ancestors (a container's
 * limit, a systemd slice's MemoryMax), or -1 when none is limited. The group comes from
 * /proc/self/cgroup: "0::/g" (v2, under /sys/fs/cgroup) or "N:...memory...:/g" (v1, under
 * /sys/fs/cgroup/memory). Where the hierarchy is mounted at the group itself (a cgroup namespace)
 * the walk up ends at the mount, which is then the group. */
static long long cgroup_room(const char *root)
{
    char buf[8192], group[4096] = "";
    int v2 = 0, have = 0;
    if (!slurp(root, "/proc/self/cgroup", buf, sizeof buf)) return -1;
    for (char *line = buf; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = '\0';
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (c2) {
            *c2 = '\0';
            int is_v2 = c1 == line + 1 && line[0] == '0' && c2 == c1 + 1;
            int is_v1 = !is_v2 && strstr(c1 + 1, "memory") != NULL;
            /* the v1 memory controller wins where both appear (a hybrid machine's "0::" line
             * has no memory controller behind it) */
            if (is_v1 || (is_v2 && !have)) {
                snprintf(group, sizeof group, "%s", c2 + 1);
                v2 = is_v2;
                have = 1 + is_v1;
            }
        }
        line = nl ? nl + 1 : NULL;
    }
    if (!have) return -1;
    const char *base = v2 ? "/sys/fs/cgroup" : "/sys/fs/cgroup/memory";
    long long best = -1;
    char dir[4200];
    size_t n = strlen(group);
    while (n > 0 && group[n - 1] == '/') group[--n] = '\0';
    for (;;) {
        snprintf(dir, sizeof dir, "%s%s", base, group);
        long long room = cgroup_dir_room(root, dir, v2);
        if (room >= 0 && (best < 0 || room < best)) best = room;
        char *slash = strrchr(group, '/');
        if (!slash) break;
        *slash = '\0';
    }
    return best;
}

long long gram__memory_available_in(const char *root)
{
    char buf[8192];
    if (!slurp(root, "/proc/meminfo", buf, sizeof buf)) return -1;
    long long avail = field(buf, "MemAvailable", 1), swap = field(buf, "SwapFree", 1);
    if (avail < 0) return -1; /* kernels before 3.14 lack MemAvailable: no estimate */
    if (swap > 0) avail = avail > LLONG_MAX - swap ? LLONG_MAX : avail + swap;
    long long room = cgroup_room(root);
    if (room >= 0 && room < avail) avail = room;
    return avail;
}

long long gram__memory_available(void) { return gram__memory_available_in(""); }

bool gram__memory_fits(size_t bytes)
{
    if (bytes < GRAM_BIG_ALLOC) return true;
    long long avail = gram__memory_available();
    return avail < 0 || (unsigned long long)bytes <= (unsigned long long)avail;
}

void *gram__alloc(size_t bytes)
{
    if (bytes == 0) return NULL;
    size_t rounded = (bytes + 63) & ~(size_t)63;
    if (rounded < bytes || !gram__memory_fits(rounded)) return NULL;
    return aligned_alloc(64, rounded);
}

void *gram__calloc(size_t count, size_t size)
{
    if (count == 0 || size == 0 || count > SIZE_MAX / size) return NULL;
    void *p = gram__alloc(count * size);
    if (p) {
        unsigned char *b = p;
        for (size_t i = 0; i < count * size; i++) b[i] = 0;
    }
    return p;
}

void gram__free(void *p) { free(p); }

bool gram__mul_i64(int64_t a, int64_t b, int64_t *out)
{
    if (a < 0 || b < 0) return false;
    if (a != 0 && b > INT64_MAX / a) return false;
    *out = a * b;
    return true;
}

bool gram__add_i64(int64_t a, int64_t b, int64_t *out)
{
    if (a < 0 || b < 0 || a > INT64_MAX - b) return false;
    *out = a + b;
    return true;
}

bool gram__bytes(int64_t count, size_t elem, size_t *out)
{
    if (count < 0) return false;
    if ((uint64_t)count > SIZE_MAX / elem) return false;
    *out = (size_t)count * elem;
    return true;
}
