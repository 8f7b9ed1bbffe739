/* csprng: the generator every private noise value is drawn from — ChaCha20 (RFC 8439 §2.3) keyed
 * with 32 bytes from the operating system.
 *
 * Why ChaCha20 and not the library's Philox: noise must be unpredictable to whoever holds the
 * released sketch, and Philox is a statistical generator with a 64-bit key that the sketch's
 * public seed would reveal. ChaCha20 with a 256-bit key nobody sees is a stream cipher's keystream.
 *
 * The stream is block(key, 0, nonce), block(key, 1, nonce), ... with the nonce starting at zero;
 * when the 32-bit block counter wraps the nonce is incremented as a 96-bit number, so no (key,
 * counter, nonce) triple is ever used twice by one generator (2^128 blocks before that would
 * repeat). A fresh key per generator makes a zero nonce safe. */
#define _POSIX_C_SOURCE 200809L /* O_CLOEXEC, read, close */
#include "private.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#if defined(__linux__)
#include <sys/random.h>
#define HAVE_GETRANDOM 1
#endif

/* Stores the compiler may not drop because the buffer is dead afterwards. */
static void wipe_words(uint32_t *w, size_t n)
{
    volatile uint32_t *p = w;
    for (size_t i = 0; i < n; i++) p[i] = 0;
}

static uint32_t rotl32(uint32_t x, int n) { return (x << n) | (x >> (32 - n)); }

#define QUARTER(a, b, c, d)                                                                        \
    do {                                                                                           \
        a += b, d ^= a, d = rotl32(d, 16);                                                         \
        c += d, b ^= c, b = rotl32(b, 12);                                                         \
        a += b, d ^= a, d = rotl32(d, 8);                                                          \
        c += d, b ^= c, b = rotl32(b, 7);                                                          \
    } while (0)

void gram__chacha20_block(const uint32_t key[8], uint32_t counter, const uint32_t nonce[3],
                          uint32_t out[16])
{
    /* RFC 8439 §2.3: the constant "expand 32-byte k" as four little-endian words, the key, the
     * counter and the nonce; 20 rounds as 10 column/diagonal pairs; then the input added back. */
    uint32_t in[16] = {0x61707865u, 0x3320646eu, 0x79622d32u, 0x6b206574u,
                       key[0],      key[1],      key[2],      key[3],
                       key[4],      key[5],      key[6],      key[7],
                       counter,     nonce[0],    nonce[1],    nonce[2]};
    uint32_t x[16];
    memcpy(x, in, sizeof x);
    for (int i = 0; i < 10; i++) {
        QUARTER(x[0], x[4], x[8], x[12]);
        QUARTER(x[1], x[5], x[9], x[13]);
        QUARTER(x[2], x[6], x[10], x[14]);
        QUARTER(x[3], x[7], x[11], x[15]);
        QUARTER(x[0], x[5], x[10], x[15]);
        QUARTER(x[1], x[6], x[11], x[12]);
        QUARTER(x[2], x[7], x[8], x[13]);
        QUARTER(x[3], x[4], x[9], x[14]);
    }
    for (int i = 0; i < 16; i++) out[i] = x[i] + in[i];
    wipe_words(x, 16);
    wipe_words(in, 16);
}

static void wipe_bytes(unsigned char *b, size_t n)
{
    volatile unsigned char *p = b;
    for (size_t i = 0; i < n; i++) p[i] = 0;
}

static void key_from_bytes(gram__csprng *r, const unsigned char b[32])
{
    for (int i = 0; i < 8; i++)
        r->key[i] = (uint32_t)b[4 * i] | (uint32_t)b[4 * i + 1] << 8 | (uint32_t)b[4 * i + 2] << 16 |
                    (uint32_t)b[4 * i + 3] << 24;
    r->nonce[0] = r->nonce[1] = r->nonce[2] = 0;
    r->counter = 0;
    r->used = 16;
}

/* Fills b from /dev/urandom (kernels without getrandom); 0 or an errno. */
static int read_urandom(unsigned char *b, size_t n)
{
    int fd;
    do fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    if (fd < 0) return errno ? errno : EIO;
    size_t got = 0;
    while (got < n) {
        ssize_t k = read(fd, b + got, n - got);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            int e = k < 0 ? errno : EIO;
            close(fd);
            return e;
        }
        got += (size_t)k;
    }
    close(fd);
    return 0;
}

static int os_random(unsigned char *b, size_t n)
{
#ifdef HAVE_GETRANDOM
    size_t got = 0;
    while (got < n) {
        /* flags 0: blocks until the kernel's pool is initialised, never returns weak bytes. A
         * request of ≤ 256 bytes is not cut short once it is, but a signal may interrupt it. */
        ssize_t k = getrandom(b + got, n - got, 0);
        if (k < 0) {
            if (errno == EINTR) continue;
            if (errno == ENOSYS) return read_urandom(b, n);
            return errno ? errno : EIO;
        }
        got += (size_t)k;
    }
    return 0;
#else
    return read_urandom(b, n);
#endif
}

gram_status gram__csprng_init_os(gram_context *ctx, gram__csprng *r)
{
    memset(r, 0, sizeof *r);
    unsigned char b[32];
    int e = os_random(b, sizeof b);
    if (e) {
        wipe_bytes(b, sizeof b);
        return gram__fail(ctx, GRAM_EIO, "private: the operating system gave no randomness (%s)",
                          strerror(e));
    }
    key_from_bytes(r, b);
    wipe_bytes(b, sizeof b);
    r->seeded = 0;
    return GRAM_OK;
}

void gram__csprng_init_seed(gram__csprng *r, uint64_t seed)
{
    /* The key is the first 8 words of a block keyed by the seed (and a nonce spelling "test"), so
     * nearby seeds give unrelated keys. Anyone who knows the seed knows every noise value: tests
     * only. */
    uint32_t k[8] = {(uint32_t)seed, (uint32_t)(seed >> 32), 0, 0, 0, 0, 0, 0};
    static const uint32_t tag[3] = {0x74736574u, 0, 0};
    uint32_t blk[16];
    memset(r, 0, sizeof *r);
    gram__chacha20_block(k, 0, tag, blk);
    memcpy(r->key, blk, sizeof r->key);
    r->nonce[0] = r->nonce[1] = r->nonce[2] = 0;
    r->counter = 0;
    r->used = 16;
    r->seeded = 1;
    wipe_words(blk, 16);
}

uint32_t gram__csprng_u32(gram__csprng *r)
{
    if (r->used >= 16) {
        gram__chacha20_block(r->key, r->counter, r->nonce, r->block);
        if (++r->counter == 0 && ++r->nonce[0] == 0 && ++r->nonce[1] == 0) ++r->nonce[2];
        r->used = 0;
    }
    uint32_t w = r->block[r->used];
    r->block[r->used++] = 0; /* a returned word is not kept */
    return w;
}

/* The first word in the low half. */
uint64_t gram__csprng_u64(gram__csprng *r)
{
    uint64_t lo = gram__csprng_u32(r);
    uint64_t hi = gram__csprng_u32(r);
    return lo | hi << 32;
}

uint64_t gram__csprng_below(gram__csprng *r, uint64_t n)
{
    if (n <= 1) return 0;
    /* 2^64 mod n words at the bottom are refused: the rest, [2^64 mod n, 2^64), holds a whole
     * number of copies of {0, ..., n - 1}, so x mod n is exactly uniform. At most half the range
     * is refused, so the expected number of draws is below 2. */
    uint64_t floor_ = (0 - n) % n;
    uint64_t x;
    do x = gram__csprng_u64(r);
    while (x < floor_);
    return x % n;
}

void gram__csprng_wipe(gram__csprng *r)
{
    volatile unsigned char *p = (volatile unsigned char *)r;
    for (size_t i = 0; i < sizeof *r; i++) p[i] = 0;
}
