/* libFuzzer target: the gram command's option values, through cli_main(argc, argv, 1) (parse
 * only: options parsed and checked, nothing read, written or computed).
 *
 * The input is the command line after "gram", its arguments separated by NUL or newline bytes
 * ("kde\ndata.csv\n--bandwidth\n0.5"), each copied into a buffer of its exact length + 1 so ASan
 * sees reads past an argument's end. Invariants:
 *   - the exit code is 0 (a valid command line, or --help / --version) or 2 (a usage error);
 *   - parsing leaves the process as it found it: no descriptor left open, SIGINT's disposition
 *     unchanged, stdout and stderr usable, and the working directory's entries unchanged (parse-only
 *     creates, opens and writes no file; relative output names land there; fuzz/README.md says
 *     how the whole corpus was also checked under strace).
 * The command's messages and help go to /dev/null while it runs (set GRAM_FUZZ_VERBOSE=1 to see
 * them when replaying one input). */
#define _GNU_SOURCE 1

#include "fuzz_common.h"

#include "cli.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ARGS 64

static int g_quiet = -1, g_null = -1;

/* Sanitizer reports go to a copy of the real stderr, so a crash inside the quiet call is seen. */
void __sanitizer_set_report_fd(void *fd) __attribute__((weak));

/* The entries of the working directory, as a count and a hash of their names: a parse that
 * created (or removed) a file there changes them. */
static uint64_t cwd_listing(void)
{
    DIR *d = opendir(".");
    FUZZ_ASSERT(d != NULL);
    uint64_t count = 0, hash = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        uint64_t h = 1469598103934665603u;
        for (const char *c = e->d_name; *c; c++) h = (h ^ (unsigned char)*c) * 1099511628211u;
        hash += h;
        count++;
    }
    closedir(d);
    return hash + (count << 48);
}

/* The lowest free descriptor: the same before and after a call that leaks none. */
static int lowest_free_fd(void)
{
    int fd = dup(0);
    FUZZ_ASSERT(fd >= 0);
    close(fd);
    return fd;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096) return 0;
    if (g_quiet < 0) {
        const char *v = getenv("GRAM_FUZZ_VERBOSE");
        g_quiet = !(v && *v && strcmp(v, "0"));
        if (g_quiet) {
            g_null = open("/dev/null", O_WRONLY | O_CLOEXEC);
            FUZZ_ASSERT(g_null >= 0);
            int report = fcntl(2, F_DUPFD_CLOEXEC, 100);
            if (report >= 0 && __sanitizer_set_report_fd) __sanitizer_set_report_fd((void *)(intptr_t)report);
        }
    }

    char *argv[MAX_ARGS + 2];
    int argc = 0;
    static char prog[] = "gram";
    argv[argc++] = prog;
    size_t start = 0;
    for (size_t i = 0; i <= size && argc < MAX_ARGS + 1; i++) {
        if (i < size && data[i] != '\0' && data[i] != '\n') continue;
        if (i == size && start == size) break; /* a trailing separator ends the line */
        size_t len = i - start;
        char *arg = malloc(len + 1);
        FUZZ_ASSERT(arg != NULL);
        memcpy(arg, data + start, len);
        arg[len] = '\0';
        argv[argc++] = arg;
        start = i + 1;
    }
    argv[argc] = NULL;

    struct sigaction before, after;
    FUZZ_ASSERT(sigaction(SIGINT, NULL, &before) == 0);
    int free_fd = lowest_free_fd();
    uint64_t listing = cwd_listing();
    int out = -1, err = -1;
    if (g_quiet) {
        fflush(stdout);
        fflush(stderr);
        out = dup(1);
        err = dup(2);
        FUZZ_ASSERT(out >= 0 && err >= 0 && dup2(g_null, 1) == 1 && dup2(g_null, 2) == 2);
    }
    int rc = cli_main(argc, argv, 1);
    if (g_quiet) {
        fflush(stdout);
        fflush(stderr);
        FUZZ_ASSERT(dup2(out, 1) == 1 && dup2(err, 2) == 2);
        close(out);
        close(err);
    }
    if (rc != CLI_EXIT_OK && rc != CLI_EXIT_USAGE) fprintf(stderr, "cli_main returned %d in parse-only mode\n", rc);
    FUZZ_ASSERT(rc == CLI_EXIT_OK || rc == CLI_EXIT_USAGE);
    FUZZ_ASSERT(lowest_free_fd() == free_fd);
    FUZZ_ASSERT(cwd_listing() == listing);
    FUZZ_ASSERT(sigaction(SIGINT, NULL, &after) == 0);
    FUZZ_ASSERT(after.sa_handler == before.sa_handler);
    FUZZ_ASSERT(!ferror(stdout) && !ferror(stderr));

    for (int i = 1; i < argc; i++) free(argv[i]);
    return 0;
}
