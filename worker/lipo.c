/*
 * Universal Mach-O binaries (lipo.h), the way llvm-lipo writes them, so
 * that a release built here has the hash the same merge has elsewhere.
 *
 * llvm-lipo (llvm/lib/Object/MachOUniversalWriter.cpp and
 * tools/llvm-lipo) puts the fat header and one fat_arch per slice
 * first, big-endian, then each slice whole at an offset rounded up to
 * 2^align, zeros in between.  align is 12 (4 KiB pages) for x86 and
 * PowerPC, 14 (16 KiB pages) for ARM; for other cputypes it is the
 * smallest alignment of a segment's vmaddr (for an object file the
 * largest alignment of its sections), between 2 and 15.  The slices
 * are ordered by alignment, stable, except that arm64 goes last (as
 * cctools' lipo does); among one cputype by cpusubtype, which cannot
 * happen here since each cputype comes once.
 *
 * The inputs come from builds, so every field read is bounded by the
 * file's size: a load command or segment that runs past the end is a
 * truncated file, not a read past the end.  Nothing is held whole in
 * memory: slices are copied a block at a time.
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lipo.h"

#define MH_MAGIC_64	0xfeedfacfu
#define MH_CIGAM_64	0xcffaedfeu
#define MH_MAGIC	0xfeedfaceu
#define MH_CIGAM	0xcefaedfeu
#define FAT_MAGIC	0xcafebabeu
#define FAT_MAGIC_64	0xcafebabfu
#define MH_OBJECT	1u
#define LC_SEGMENT_64	0x19u

#define CPU_ARCH_ABI64		0x01000000u
#define CPU_ARCH_ABI64_32	0x02000000u
#define CPU_TYPE_X86		7u
#define CPU_TYPE_ARM		12u
#define CPU_TYPE_POWERPC	18u
#define CPU_TYPE_X86_64		(CPU_TYPE_X86 | CPU_ARCH_ABI64)
#define CPU_TYPE_ARM64		(CPU_TYPE_ARM | CPU_ARCH_ABI64)
#define CPU_TYPE_ARM64_32	(CPU_TYPE_ARM | CPU_ARCH_ABI64_32)
#define CPU_TYPE_POWERPC64	(CPU_TYPE_POWERPC | CPU_ARCH_ABI64)

#define HEADER_SIZE	32	/* mach_header_64 */
#define SEGMENT_SIZE	72	/* segment_command_64 */
#define SECTION_SIZE	80	/* section_64 */
#define MAX_ALIGN	15	/* MachOUniversalBinary::MaxSectionAlignment */
#define COPY_BLOCK	(64 * 1024)

struct slice {
	int fd;
	size_t index;
	uint32_t cputype, cpusubtype, align;
	uint64_t size, offset;
};

static const char *
input_name(const char *const *names, size_t i, char *buf, size_t size)
{
	if (names != NULL && names[i] != NULL)
		return names[i];
	snprintf(buf, size, "input %zu", i);
	return buf;
}

static uint32_t
get32(const unsigned char *p, int swap)
{
	if (swap)
		return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
		    (uint32_t)p[2] << 8 | p[3];
	return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[1] << 8 | p[0];
}

static uint64_t
get64(const unsigned char *p, int swap)
{
	uint64_t lo = get32(p, swap), hi = get32(p + 4, swap);

	return swap ? lo << 32 | hi : hi << 32 | lo;
}

static void
put32be(unsigned char *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}

static void
put64be(unsigned char *p, uint64_t v)
{
	put32be(p, v >> 32);
	put32be(p + 4, (uint32_t)v);
}

/* pread all of len bytes at off: 0, or -1 (errno set; 0 when short). */
static int
read_at(int fd, void *buf, size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t r = pread(fd, (char *)buf + done, len - done,
		    (off_t)(off + done));

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			if (r == 0)
				errno = 0;
			return -1;
		}
		done += (size_t)r;
	}
	return 0;
}

static unsigned
ctz64(uint64_t v)
{
	return v == 0 ? 64 : (unsigned)__builtin_ctzll(v);
}

/*
 * Read and check one input's header and load commands; fill s.  0, or
 * -1 with why (a short reason).
 */
static int
inspect(struct slice *s, char *why, size_t size)
{
	unsigned char h[HEADER_SIZE], lc[SEGMENT_SIZE];
	uint32_t magic, filetype, ncmds, sizeofcmds, i;
	uint64_t off, end, minalign = MAX_ALIGN;
	struct stat st;
	int swap;

	if (fstat(s->fd, &st) != 0)
		return snprintf(why, size, "fstat: %s", strerror(errno)), -1;
	if (!S_ISREG(st.st_mode))
		return snprintf(why, size, "not a regular file"), -1;
	s->size = (uint64_t)st.st_size;
	if (s->size < 4)
		return snprintf(why, size, "not a Mach-O file (too short)"), -1;
	if (read_at(s->fd, h, 4, 0) != 0)
		return snprintf(why, size, "read: %s", errno ? strerror(errno) :
		    "the file shrank"), -1;
	magic = get32(h, 0);
	if (magic == MH_MAGIC || magic == MH_CIGAM)
		return snprintf(why, size, "a 32-bit Mach-O file (only 64-bit "
		    "ones are merged)"), -1;
	if (get32(h, 1) == FAT_MAGIC || get32(h, 1) == FAT_MAGIC_64)
		return snprintf(why, size, "a universal (fat) file already"), -1;
	if (magic != MH_MAGIC_64 && magic != MH_CIGAM_64)
		return snprintf(why, size, "not a Mach-O file (magic %02x%02x%02x%02x)",
		    h[0], h[1], h[2], h[3]), -1;
	swap = magic == MH_CIGAM_64;
	if (s->size < HEADER_SIZE || read_at(s->fd, h, HEADER_SIZE, 0) != 0)
		return snprintf(why, size, "truncated (no whole Mach-O header)"), -1;
	s->cputype = get32(h + 4, swap);
	s->cpusubtype = get32(h + 8, swap);
	filetype = get32(h + 12, swap);
	ncmds = get32(h + 16, swap);
	sizeofcmds = get32(h + 20, swap);
	end = HEADER_SIZE + (uint64_t)sizeofcmds;
	if (end > s->size)
		return snprintf(why, size, "truncated (load commands end at %llu, "
		    "the file at %llu)", (unsigned long long)end,
		    (unsigned long long)s->size), -1;
	off = HEADER_SIZE;
	for (i = 0; i < ncmds; i++) {
		uint32_t cmd, cmdsize, nsects, j;
		uint64_t vmaddr, fileoff, filesize, cur;

		if (off + 8 > end || read_at(s->fd, lc, 8, off) != 0)
			return snprintf(why, size, "load command %u past the load "
			    "commands' end", i), -1;
		cmd = get32(lc, swap);
		cmdsize = get32(lc + 4, swap);
		if (cmdsize < 8 || cmdsize % 8 != 0 || off + cmdsize > end)
			return snprintf(why, size, "load command %u: bad size %u",
			    i, cmdsize), -1;
		if (cmd != LC_SEGMENT_64) {
			off += cmdsize;
			continue;
		}
		if (cmdsize < SEGMENT_SIZE || read_at(s->fd, lc, SEGMENT_SIZE, off) != 0)
			return snprintf(why, size, "load command %u: short "
			    "segment command", i), -1;
		vmaddr = get64(lc + 24, swap);
		fileoff = get64(lc + 40, swap);
		filesize = get64(lc + 48, swap);
		nsects = get32(lc + 64, swap);
		if (fileoff > s->size || filesize > s->size - fileoff)
			return snprintf(why, size, "truncated (a segment ends at "
			    "%llu, the file at %llu)",
			    (unsigned long long)(fileoff + filesize),
			    (unsigned long long)s->size), -1;
		if ((uint64_t)nsects * SECTION_SIZE > cmdsize - SEGMENT_SIZE)
			return snprintf(why, size, "load command %u: %u sections "
			    "do not fit", i, nsects), -1;
		if (filetype == MH_OBJECT) {
			cur = nsects ? 2 : MAX_ALIGN;
			for (j = 0; j < nsects; j++) {
				unsigned char a[4];
				uint32_t al;

				/* section_64's align is at byte 52. */
				if (read_at(s->fd, a, 4, off + SEGMENT_SIZE +
				    (uint64_t)j * SECTION_SIZE + 52) != 0)
					return snprintf(why, size, "load command "
					    "%u: short section %u", i, j), -1;
				al = get32(a, swap);
				if (al > cur)
					cur = al;
			}
		} else
			cur = ctz64(vmaddr);
		if (cur < minalign)
			minalign = cur;
		off += cmdsize;
	}
	switch (s->cputype) {
	case CPU_TYPE_X86:
	case CPU_TYPE_X86_64:
	case CPU_TYPE_POWERPC:
	case CPU_TYPE_POWERPC64:
		s->align = 12;
		break;
	case CPU_TYPE_ARM:
	case CPU_TYPE_ARM64:
	case CPU_TYPE_ARM64_32:
		s->align = 14;
		break;
	default:
		s->align = minalign < 2 ? 2 : (uint32_t)minalign;
		break;
	}
	return 0;
}

/* llvm-lipo's order: Slice's operator< under a stable sort. */
static int
slice_before(const struct slice *a, const struct slice *b)
{
	if (a->cputype == b->cputype)
		return a->cpusubtype < b->cpusubtype;
	if (a->cputype == CPU_TYPE_ARM64)
		return 0;
	if (b->cputype == CPU_TYPE_ARM64)
		return 1;
	return a->align < b->align;
}

/* Offsets from the header's size; 1 when one needs more than 32 bits. */
static int
layout(struct slice *s, size_t n, int fat64)
{
	uint64_t off = 8 + (uint64_t)n * (fat64 ? 32 : 20);
	int big = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		uint64_t a = (uint64_t)1 << s[i].align;

		off = (off + a - 1) & ~(a - 1);
		s[i].offset = off;
		if (off > UINT32_MAX || s[i].size > UINT32_MAX)
			big = 1;
		off += s[i].size;
	}
	return big;
}

static int
write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t w = write(fd, p, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			if (w == 0)
				errno = EIO;
			return -1;
		}
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

int
lipo_merge(int out_fd, const int *in_fds, const char *const *names,
    size_t n, char *err, size_t errsize)
{
	struct slice s[LIPO_MAX_INPUTS];
	unsigned char hdr[8 + LIPO_MAX_INPUTS * 32];
	char *buf = NULL, why[160], nb[32], nb2[32];
	uint64_t pos;
	size_t i, j, hlen;
	int fat64, rc = -1;

	if (n < 1 || n > LIPO_MAX_INPUTS) {
		snprintf(err, errsize, "lipo: %zu inputs (1 to %d)", n,
		    LIPO_MAX_INPUTS);
		return -1;
	}
	for (i = 0; i < n; i++) {
		memset(&s[i], 0, sizeof s[i]);
		s[i].fd = in_fds[i];
		s[i].index = i;
		if (inspect(&s[i], why, sizeof why) != 0) {
			snprintf(err, errsize, "lipo: %s: %s",
			    input_name(names, i, nb, sizeof nb), why);
			return -1;
		}
		for (j = 0; j < i; j++)
			if (s[j].cputype == s[i].cputype) {
				snprintf(err, errsize, "lipo: %s: cputype %#x "
				    "(subtype %#x) is also %s's",
				    input_name(names, i, nb, sizeof nb),
				    s[i].cputype, s[i].cpusubtype,
				    input_name(names, j, nb2, sizeof nb2));
				return -1;
			}
	}
	/* Insertion sort: stable, as llvm-lipo's stable_sort; n is small. */
	for (i = 1; i < n; i++) {
		struct slice t = s[i];

		for (j = i; j > 0 && slice_before(&t, &s[j - 1]); j--)
			s[j] = s[j - 1];
		s[j] = t;
	}
	fat64 = layout(s, n, 0);
	if (fat64)
		layout(s, n, 1);
	put32be(hdr, fat64 ? FAT_MAGIC_64 : FAT_MAGIC);
	put32be(hdr + 4, (uint32_t)n);
	hlen = 8;
	for (i = 0; i < n; i++) {
		unsigned char *p = hdr + hlen;

		put32be(p, s[i].cputype);
		put32be(p + 4, s[i].cpusubtype);
		if (fat64) {
			put64be(p + 8, s[i].offset);
			put64be(p + 16, s[i].size);
			put32be(p + 24, s[i].align);
			put32be(p + 28, 0);
			hlen += 32;
		} else {
			put32be(p + 8, (uint32_t)s[i].offset);
			put32be(p + 12, (uint32_t)s[i].size);
			put32be(p + 16, s[i].align);
			hlen += 20;
		}
	}
	if ((buf = calloc(1, COPY_BLOCK)) == NULL) {
		snprintf(err, errsize, "lipo: out of memory");
		return -1;
	}
	if (write_all(out_fd, hdr, hlen) != 0)
		goto write_error;
	pos = hlen;
	for (i = 0; i < n; i++) {
		uint64_t off = 0;

		/* Zeros up to the slice's aligned offset: buf starts zeroed. */
		memset(buf, 0, COPY_BLOCK);
		while (pos < s[i].offset) {
			size_t k = s[i].offset - pos < COPY_BLOCK ?
			    (size_t)(s[i].offset - pos) : COPY_BLOCK;

			if (write_all(out_fd, buf, k) != 0)
				goto write_error;
			pos += k;
		}
		while (off < s[i].size) {
			size_t k = s[i].size - off < COPY_BLOCK ?
			    (size_t)(s[i].size - off) : COPY_BLOCK;

			if (read_at(s[i].fd, buf, k, off) != 0) {
				snprintf(err, errsize, "lipo: %s: %s",
				    input_name(names, s[i].index, nb, sizeof nb),
				    errno ? strerror(errno) :
				    "the file shrank while it was read");
				goto out;
			}
			if (write_all(out_fd, buf, k) != 0)
				goto write_error;
			off += k;
			pos += k;
		}
	}
	rc = 0;
	goto out;
write_error:
	snprintf(err, errsize, "lipo: write: %s", strerror(errno));
out:
	free(buf);
	return rc;
}
