/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Run a program whose kernel refuses one ioctl: a seccomp filter answers
 * ioctl(fd, REQUEST, arg) with -ERRNO, only when arg has a bit of MASK set
 * (MASK 0: always), so a test sees what the program does on a kernel
 * without that feature.  The filter is inherited by the program it execs.
 *
 *   refuse-ioctl REQUEST MASK ERRNO PROGRAM [ARGS...]
 *
 * REQUEST and MASK are numbers (0x... allowed), ERRNO a number.
 */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__x86_64__)
#define ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define ARCH AUDIT_ARCH_AARCH64
#else
#error "refuse-ioctl: add this architecture's AUDIT_ARCH"
#endif

#define ARG_LO(n) (offsetof(struct seccomp_data, args[n]))

static int number(const char *s, unsigned long long *ret)
{
	char *end;

	errno = 0;
	*ret = strtoull(s, &end, 0);
	return errno || !*s || *end ? -1 : 0;
}

int main(int argc, char **argv)
{
	unsigned long long req, mask, err;

	if (argc < 5 || number(argv[1], &req) || number(argv[2], &mask) ||
	    number(argv[3], &err) || req > UINT32_MAX || mask > UINT32_MAX || err > 4095) {
		fprintf(stderr, "usage: refuse-ioctl REQUEST MASK ERRNO PROGRAM [ARGS...]\n");
		return 2;
	}

	/* Little-endian: the low 32 bits of an argument come first. */
	struct sock_filter filter[] = {
		/* 0 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		/* 1 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ARCH, 0, 7),
		/* 2 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		/* 3 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_ioctl, 0, 5),
		/* 4 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG_LO(1)),
		/* 5 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)req, 0, 3),
		/* 6 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG_LO(2)),
		/* 7 */ BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, (uint32_t)mask, 0, 1),
		/* 8 */ BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (uint32_t)err),
		/* 9 */ BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { .len = sizeof(filter) / sizeof(filter[0]), .filter = filter };

	/* MASK 0: refused whatever the argument. */
	if (!mask)
		filter[7] = (struct sock_filter)BPF_STMT(BPF_JMP | BPF_JA, 0);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0) {
		perror("refuse-ioctl: seccomp");
		return 1;
	}
	execvp(argv[4], argv + 4);
	perror("refuse-ioctl: exec");
	return 127;
}
