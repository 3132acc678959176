/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The unit tests' fixtures under tests/data: hex dumps of real messages
 * (a captured ClientHello, the RFC 9001/9369 QUIC Initials).  TESTDATA is the
 * directory, given by Makefile.am as the source tree's tests/data.
 */
#ifndef IPMODD_TESTDATA_H
#define IPMODD_TESTDATA_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "tap.h"

#ifndef TESTDATA
#define TESTDATA "tests/data"
#endif

/*
 * The bytes of tests/data/NAME, written as hex digits (anything else, white
 * space and comments, is skipped), into buf; their count, 0 when the file
 * cannot be read (said as a TAP diagnostic).
 */
static inline size_t testdata_hex(const char *name, uint8_t *buf, size_t cap)
{
	char path[512];
	size_t n = 0;
	int hi = -1, c, v;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", TESTDATA, name);
	f = fopen(path, "r");
	if (!f) {
		diag("cannot open %s", path);
		return 0;
	}
	while ((c = fgetc(f)) != EOF && n < cap) {
		if (c >= '0' && c <= '9')
			v = c - '0';
		else if (c >= 'a' && c <= 'f')
			v = c - 'a' + 10;
		else
			continue;
		if (hi < 0) {
			hi = v;
		} else {
			buf[n++] = (uint8_t)(hi << 4 | v);
			hi = -1;
		}
	}
	fclose(f);
	return n;
}

#endif
