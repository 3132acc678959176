/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <linux/capability.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "caps.h"
#include "util.h"

int caps_drop(uint64_t mask)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
	unsigned int i;

	if (syscall(SYS_capget, &hdr, data) < 0)
		return negative_errno();
	for (i = 0; i < _LINUX_CAPABILITY_U32S_3; i++) {
		uint32_t keep = ~(uint32_t)(mask >> (32 * i));

		data[i].effective &= keep;
		data[i].permitted &= keep;
		data[i].inheritable &= keep;
	}
	if (syscall(SYS_capset, &hdr, data) < 0)
		return negative_errno();
	return 0;
}
