/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * surgery-apply -F: the set-field table's field names, one a line.
 * surgery-apply [-s SEED] [-m SNI_OFF,SNI_LEN,HOST_OFF,HOST_LEN] KEY=VALUE... <PACKET >OUT
 *
 * Applies a rule's surgery keys (src/surgery.c) to one raw IP packet read
 * from stdin and writes the output packets to stdout, each as a 4-byte
 * big-endian length and the bytes.  On stderr: "skipped=0x..." (SURG_SKIP_*).
 * Exit 2 for a key error (the message on stderr), 1 for an apply error.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "packet.h"
#include "surgery.h"

static uint8_t in[PKT_MAX + 1];
static uint8_t arena[SURG_ARENA_SIZE(PKT_MAX)];
static struct rule_surgery s;

int main(int argc, char **argv)
{
	struct surg_marks mk = { -1, -1, -1, -1 };
	struct surg_out o = { .buf = arena, .cap = sizeof(arena) };
	unsigned long long seed = 1;
	char err[512];
	size_t len;
	int i, r;

	surgery_init(&s);
	for (i = 1; i < argc; i++) {
		const char *eq = strchr(argv[i], '=');
		size_t k;

		if (!strcmp(argv[i], "-F")) {
			for (size_t f = 0; f < surgery_nfield_names(); f++)
				printf("%s\n", surgery_field_name(f));
			return 0;
		}
		if (!strcmp(argv[i], "-s") && i + 1 < argc) {
			seed = strtoull(argv[++i], NULL, 0);
			continue;
		}
		if (!strcmp(argv[i], "-m") && i + 1 < argc) {
			if (sscanf(argv[++i], "%d,%d,%d,%d", &mk.sni_off, &mk.sni_len, &mk.host_off,
				   &mk.host_len) != 4) {
				fprintf(stderr, "-m: SNI_OFF,SNI_LEN,HOST_OFF,HOST_LEN\n");
				return 2;
			}
			continue;
		}
		if (!eq) {
			fprintf(stderr, "%s: not KEY=VALUE\n", argv[i]);
			return 2;
		}
		for (k = 0; k < surgery_nkeys; k++)
			if (strlen(surgery_keys[k].name) == (size_t)(eq - argv[i]) &&
			    !strncmp(surgery_keys[k].name, argv[i], (size_t)(eq - argv[i])))
				break;
		if (k == surgery_nkeys) {
			fprintf(stderr, "%.*s: not a surgery key\n", (int)(eq - argv[i]), argv[i]);
			return 2;
		}
		if (surgery_keys[k].parse(&s, eq + 1, err, sizeof(err))) {
			fprintf(stderr, "%s\n", err);
			return 2;
		}
	}
	if (surgery_check(&s, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		return 2;
	}
	len = fread(in, 1, sizeof(in), stdin);
	if (len > PKT_MAX) {
		fprintf(stderr, "packet longer than %d bytes\n", PKT_MAX);
		return 1;
	}
	r = surgery_apply(&s, in, len, &mk, seed, &o);
	surgery_release(&s);	/* the output is in arena: fake's payload no longer needed */
	if (r) {
		fprintf(stderr, "surgery_apply: %s\n", strerror(-r));
		return 1;
	}
	fprintf(stderr, "skipped=0x%x\n", o.skipped);
	for (unsigned int n = 0; n < o.n; n++) {
		uint32_t l = o.pkt[n].len;
		uint8_t hdr[4] = { (uint8_t)(l >> 24), (uint8_t)(l >> 16), (uint8_t)(l >> 8), (uint8_t)l };

		if (fwrite(hdr, 1, 4, stdout) != 4 || fwrite(o.buf + o.pkt[n].off, 1, l, stdout) != l)
			return 1;
	}
	return fflush(stdout) ? 1 : 0;
}
