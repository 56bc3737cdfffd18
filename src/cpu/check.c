/* Start-up check of the CPU against the instruction set this binary was built for.
 *
 * A binary built with `-C target-cpu=x86-64-v3` (or `native`) may execute AVX2 instructions
 * anywhere, even inside a check written in Rust (`is_x86_feature_detected!` folds to `true` in
 * such a build). This file is therefore C, compiled by build.rs for baseline x86-64, and runs as
 * an early constructor, before any Rust code: on a CPU that lacks a required feature it prints
 * what the binary needs, what the CPU has and how to get a binary for it, then exits with 1
 * instead of dying later with SIGILL.
 *
 * PTR_REQUIRED (from build.rs) lists the features the build enabled, as a bit mask over
 * FEATURES below; PTR_TARGET_CPU names the level (`x86-64-v3`, `native`, ...). */
#include <cpuid.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#ifndef PTR_REQUIRED
#define PTR_REQUIRED 0ULL
#endif
#ifndef PTR_TARGET_CPU
#define PTR_TARGET_CPU "x86-64"
#endif

enum reg { EAX, EBX, ECX, EDX };
enum os_state { NONE, AVX_STATE, AVX512_STATE };

struct feature {
    const char *name; /* rustc's target-feature name */
    unsigned leaf, subleaf;
    enum reg reg;
    unsigned bit;
    enum os_state os; /* register state the OS must save (XGETBV) */
};

/* The order is the bit order of the masks; build.rs keeps the same list. */
static const struct feature FEATURES[] = {
    {"sse3", 1, 0, ECX, 0, NONE},          {"ssse3", 1, 0, ECX, 9, NONE},
    {"fma", 1, 0, ECX, 12, AVX_STATE},     {"sse4.1", 1, 0, ECX, 19, NONE},
    {"sse4.2", 1, 0, ECX, 20, NONE},       {"movbe", 1, 0, ECX, 22, NONE},
    {"popcnt", 1, 0, ECX, 23, NONE},       {"aes", 1, 0, ECX, 25, NONE},
    {"avx", 1, 0, ECX, 28, AVX_STATE},     {"f16c", 1, 0, ECX, 29, AVX_STATE},
    {"pclmulqdq", 1, 0, ECX, 1, NONE},     {"bmi1", 7, 0, EBX, 3, NONE},
    {"avx2", 7, 0, EBX, 5, AVX_STATE},     {"bmi2", 7, 0, EBX, 8, NONE},
    {"avx512f", 7, 0, EBX, 16, AVX512_STATE}, {"avx512dq", 7, 0, EBX, 17, AVX512_STATE},
    {"avx512ifma", 7, 0, EBX, 21, AVX512_STATE}, {"avx512cd", 7, 0, EBX, 28, AVX512_STATE},
    {"sha", 7, 0, EBX, 29, NONE},          {"avx512bw", 7, 0, EBX, 30, AVX512_STATE},
    {"avx512vl", 7, 0, EBX, 31, AVX512_STATE}, {"avx512vbmi", 7, 0, ECX, 1, AVX512_STATE},
    {"avx512vbmi2", 7, 0, ECX, 6, AVX512_STATE}, {"gfni", 7, 0, ECX, 8, NONE},
    {"vaes", 7, 0, ECX, 9, AVX_STATE},     {"vpclmulqdq", 7, 0, ECX, 10, AVX_STATE},
    {"avx512vnni", 7, 0, ECX, 11, AVX512_STATE}, {"avx512bitalg", 7, 0, ECX, 12, AVX512_STATE},
    {"avx512vpopcntdq", 7, 0, ECX, 14, AVX512_STATE}, {"avx512fp16", 7, 0, EDX, 23, AVX512_STATE},
    {"avxvnni", 7, 1, EAX, 4, AVX_STATE},  {"avx512bf16", 7, 1, EAX, 5, AVX512_STATE},
    {"lzcnt", 0x80000001u, 0, ECX, 5, NONE},
};
#define N_FEATURES (sizeof FEATURES / sizeof FEATURES[0])

/* The name of feature bit `i`, or NULL past the end. */
const char *ptr_cpu_feature_name(unsigned i) {
    return i < N_FEATURES ? FEATURES[i].name : NULL;
}

/* The features this build requires, as a mask. */
uint64_t ptr_cpu_required(void) { return PTR_REQUIRED; }

/* The level this build targets (rustc's target-cpu). */
const char *ptr_cpu_target(void) { return PTR_TARGET_CPU; }

static uint64_t xgetbv0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

/* The features this CPU has and the OS enables, as a mask. */
uint64_t ptr_cpu_features(void) {
    unsigned r[4], max_leaf = __get_cpuid_max(0, 0), max_ext = __get_cpuid_max(0x80000000u, 0);
    int osxsave = 0, avx_os = 0, avx512_os = 0;
    if (max_leaf >= 1) {
        __cpuid_count(1, 0, r[EAX], r[EBX], r[ECX], r[EDX]);
        osxsave = (r[ECX] >> 27) & 1;
    }
    if (osxsave) {
        uint64_t xcr0 = xgetbv0();
        avx_os = (xcr0 & 0x6) == 0x6;          /* XMM and YMM state */
        avx512_os = avx_os && (xcr0 & 0xe0) == 0xe0; /* opmask, ZMM hi256, hi16 ZMM */
    }
    uint64_t have = 0;
    for (unsigned i = 0; i < N_FEATURES; i++) {
        const struct feature *f = &FEATURES[i];
        unsigned max = f->leaf >= 0x80000000u ? max_ext : max_leaf;
        if (f->leaf > max)
            continue;
        __cpuid_count(f->leaf, f->subleaf, r[EAX], r[EBX], r[ECX], r[EDX]);
        if (!((r[f->reg] >> f->bit) & 1))
            continue;
        if ((f->os == AVX_STATE && !avx_os) || (f->os == AVX512_STATE && !avx512_os))
            continue;
        have |= 1ULL << i;
    }
    return have;
}

/* Writes the refusal message into `buf` when `have` lacks some of `required`; returns how many
 * features are missing (0: nothing written). Pure, so tests can inject any CPU. */
int ptr_cpu_report(uint64_t required, uint64_t have, const char *target, char *buf, size_t len) {
    uint64_t missing = required & ~have;
    if (!missing || !len)
        return 0;
    int n = 0;
    size_t at = 0;
    at += snprintf(buf + at, len - at,
                   "ptr-server: this binary was built for x86-64 CPUs of level `%s` and this CPU "
                   "lacks:", target);
    for (unsigned i = 0; i < N_FEATURES && at < len; i++)
        if ((missing >> i) & 1) {
            at += snprintf(buf + at, len - at, " %s", FEATURES[i].name);
            n++;
        }
    if (at < len)
        at += snprintf(buf + at, len - at, "\n  required:");
    for (unsigned i = 0; i < N_FEATURES && at < len; i++)
        if ((required >> i) & 1)
            at += snprintf(buf + at, len - at, " %s", FEATURES[i].name);
    if (at < len)
        at += snprintf(buf + at, len - at, "\n  this CPU has:");
    for (unsigned i = 0; i < N_FEATURES && at < len; i++)
        if ((have >> i) & 1)
            at += snprintf(buf + at, len - at, " %s", FEATURES[i].name);
    if (at < len)
        snprintf(buf + at, len - at,
                 "\nBuild ptr-server on this machine (`make build`: the repository's "
                 ".cargo/config.toml targets the CPU it builds on), or build a portable binary "
                 "with RUSTFLAGS=\"-C target-cpu=x86-64\" (runs on any x86-64 CPU, several times "
                 "slower: candle's quantized SIMD kernels need AVX2).\n");
    return n;
}

/* Runs before Rust's runtime and before constructors of default priority. */
__attribute__((constructor(101))) static void ptr_cpu_check(void) {
    char buf[2048];
    if (ptr_cpu_report(ptr_cpu_required(), ptr_cpu_features(), ptr_cpu_target(), buf,
                       sizeof buf) > 0) {
        ssize_t ignored = write(2, buf, strlen(buf));
        (void)ignored;
        _exit(1);
    }
}
