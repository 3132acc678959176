/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Run a program whose kernel refuses one system call: a seccomp filter
 * answers it with -ERRNO, as a kernel without it (ENOSYS) or a service's
 * SystemCallFilter= (EPERM) would.  The filter is inherited by the program
 * it execs.  tests/netns/tunio.sh refuses io_uring_setup with it.
 *
 *   refuse-syscall NR ERRNO PROGRAM [ARGS...]
 *
 * NR and ERRNO are numbers (0x... allowed); NR is this architecture's.
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
#include <unistd.h>

#if defined(__x86_64__)
#define ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define ARCH AUDIT_ARCH_AARCH64
#else
#error "refuse-syscall: add this architecture's AUDIT_ARCH"
#endif

static int number(const char *s, unsigned long long *ret)
{
	char *end;

	errno = 0;
	*ret = strtoull(s, &end, 0);
	return errno || !*s || *end ? -1 : 0;
}

int main(int argc, char **argv)
{
	unsigned long long nr, err;

	if (argc < 4 || number(argv[1], &nr) || number(argv[2], &err) || nr > 4095 ||
	    err > 4095) {
		fprintf(stderr, "usage: refuse-syscall NR ERRNO PROGRAM [ARGS...]\n");
		return 2;
	}

	struct sock_filter filter[] = {
		/* 0 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		/* 1 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ARCH, 0, 3),
		/* 2 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		/* 3 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)nr, 0, 1),
		/* 4 */ BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (uint32_t)err),
		/* 5 */ BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { .len = sizeof(filter) / sizeof(filter[0]), .filter = filter };

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0) {
		perror("refuse-syscall: seccomp");
		return 1;
	}
	execvp(argv[3], argv + 3);
	perror("refuse-syscall: exec");
	return 127;
}
