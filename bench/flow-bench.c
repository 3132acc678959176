/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The flow table's cost per packet: flow_lookup_or_add() + flow_account()
 * on existing flows picked at random, with 1k, 100k and 1M live flows in a
 * table sized for them (the larger tables miss the CPU caches: that is the
 * point), and the cost of a new flow in a full table (an eviction each).
 * Keys are made beforehand so that only the table is timed.  Five rounds
 * each, the median and the quickest (the quietest round on a shared
 * machine).  A measurement, not a test: no threshold.
 *
 *   make bench/flow-bench && ./bench/flow-bench [lookups]
 */
#include <inttypes.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "flow.h"
#include "util.h"

#define SEC 1000000000ull
#define T0 (1000 * SEC)
#define ROUNDS 5

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * SEC + (uint64_t)ts.tv_nsec;
}

static uint64_t rnd(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void key_n(struct flow_key *k, uint32_t n)
{
	memset(k, 0, sizeof(*k));
	k->family = AF_INET;
	k->proto = IPPROTO_TCP;
	put_be32(k->addr[0], 0x0a000000 | (n >> 8));
	put_be32(k->addr[1], 0xc0000200 | (n & 0xff));
	k->port[0] = (uint16_t)(1024 + (n & 0x3fff));
	k->port[1] = 443;
}

static int run(uint32_t live, uint32_t lookups)
{
	struct flow_params prm = { .max_entries = live < FLOW_MAX_MIN ? FLOW_MAX_MIN : live };
	struct flow_table *t = NULL;
	struct flow_key *keys;
	uint32_t *order;
	struct flow *f;
	struct flow_stats st;
	uint64_t s = 42, t0, sum = 0;
	double hit[ROUNDS], add[ROUNDS];
	bool is_new;
	int r;

	r = flow_table_new(&prm, &t);
	if (r < 0)
		return r;
	keys = calloc(live, sizeof(*keys));
	order = calloc(lookups, sizeof(*order));
	if (!keys || !order) {
		r = -ENOMEM;
		goto out;
	}
	for (uint32_t i = 0; i < live; i++) {
		key_n(&keys[i], i);
		flow_lookup_or_add(t, &keys[i], 0, T0, &f, &is_new);
	}
	for (uint32_t i = 0; i < lookups; i++)
		order[i] = (uint32_t)(rnd(&s) % live);

	for (unsigned int k = 0; k < ROUNDS; k++) {
		t0 = now_ns();
		for (uint32_t i = 0; i < lookups; i++) {
			flow_lookup_or_add(t, &keys[order[i]], i & 1, T0 + i, &f, &is_new);
			sum += flow_account(t, f, flow_dir_of(f, i & 1), 100, 0x10, T0 + i, NULL);
		}
		hit[k] = (double)(now_ns() - t0) / lookups;
	}
	/* New flows into the full table: each one evicts the least recently used. */
	for (unsigned int k = 0; k < ROUNDS; k++) {
		t0 = now_ns();
		for (uint32_t i = 0; i < lookups; i++) {
			struct flow_key key;

			key_n(&key, live + k * lookups + i);
			flow_lookup_or_add(t, &key, 0, T0 + (k + 1) * (uint64_t)lookups + i, &f, &is_new);
		}
		add[k] = (double)(now_ns() - t0) / lookups;
	}
	flow_table_stats(t, &st);
	qsort(hit, ROUNDS, sizeof(hit[0]), cmp_double);
	qsort(add, ROUNDS, sizeof(add[0]), cmp_double);
	printf("| %u | %.1f | %.1f | %.2f | %.1f | %.1f | %" PRIu64 " |\n", live, hit[ROUNDS / 2], hit[0],
	       1e3 / hit[ROUNDS / 2], add[ROUNDS / 2], add[0], st.evicted);
	if (st.entries != prm.max_entries || sum == 0)
		printf("unexpected: %" PRIu64 " entries\n", st.entries);
	r = 0;
out:
	free(keys);
	free(order);
	flow_table_free(t);
	return r;
}

int main(int argc, char **argv)
{
	static const uint32_t sizes[] = { 1024, 100000, 1000000 };
	uint32_t lookups = argc > 1 ? (uint32_t)strtoul(argv[1], NULL, 10) : 1000000;

	if (!lookups || lookups > 100000000) {
		fprintf(stderr, "lookups: 1..100000000\n");
		return 2;
	}
	printf("flow table: %zu bytes per entry; %d rounds of %u operations per size, ns each\n\n",
	       sizeof(struct flow), ROUNDS, lookups);
	printf("| live flows | hit ns (median) | hit ns (min) | M hits/s (median) "
	       "| new+evict ns (median) | new+evict ns (min) | evicted |\n");
	printf("|--:|--:|--:|--:|--:|--:|--:|\n");
	for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
		if (run(sizes[i], lookups) < 0) {
			fprintf(stderr, "flow-bench: out of memory at %u flows\n", sizes[i]);
			return 1;
		}
	}
	return 0;
}
