/*
 * Universal ("fat") macOS binaries from thin 64-bit Mach-O ones, laid
 * out byte for byte as `llvm-lipo -create` lays them out.
 */
#ifndef KILN_LIPO_H
#define KILN_LIPO_H

#include <stddef.h>

#define LIPO_MAX_INPUTS 32

/*
 * in_fds: n (1 to LIPO_MAX_INPUTS) regular files, each a thin 64-bit
 * Mach-O (MH_MAGIC_64, either byte order) of a distinct cputype;
 * names[i] (or "input i" when names or names[i] is NULL) in messages.
 * Writes the fat binary to out_fd sequentially (a pipe will do):
 * FAT_MAGIC, or FAT_MAGIC_64 when an offset or a size needs 64 bits;
 * slices in llvm-lipo's order (by alignment, arm64 last), each at
 * llvm-lipo's alignment (2^12 for x86, 2^14 for arm, else from the
 * segments), zeros between.  Inputs are streamed with pread and must
 * keep their size meanwhile.  0, or -1 with err naming the input that
 * is wrong: not Mach-O, 32-bit, universal already, a cputype given
 * twice, truncated (load commands or a segment past its end).
 */
int lipo_merge(int out_fd, const int *in_fds, const char *const *names,
    size_t n, char *err, size_t errsize);

#endif
