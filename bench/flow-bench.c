/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The flow table's cost per packet: flow_lookup_or_add() + flow_account()
 * on existing flows picked at random, with 1k (1,024: the smallest table),
 * 10k, 100k and 1M live flows in a table sized for them (the larger tables
 * miss the CPU caches: that is the point), and the cost of a new flow in a
 * full table (an eviction each).  Keys are made beforehand so that only the
 * table is timed.  Five rounds each, the median and the quickest (the
 * quietest round on a shared machine), and the median against 1k's.  A
 * measurement, not a test: no threshold.
 *
 *   make bench/flow-bench && ./bench/flow-bench [--tsv] [lookups]
 *
 *   lookups  operations per round and size, 1..100,000,000 (1,000,000)
 *   --tsv    one tab-separated "flows" line per size for bench/run (live
 *            flows, hit ns median, hit ns min, new+evict ns median,
 *            new+evict ns min, evicted); every other line starts with '#'
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

struct row {
	double hit, hit_min, add, add_min;	/* ns: medians, quickest rounds */
	uint64_t evicted;
};

static int run(uint32_t live, uint32_t lookups, struct row *ret)
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
	*ret = (struct row){ .hit = hit[ROUNDS / 2], .hit_min = hit[0], .add = add[ROUNDS / 2],
			     .add_min = add[0], .evicted = st.evicted };
	if (st.entries != prm.max_entries || sum == 0) {
		fprintf(stderr, "flow-bench: unexpected: %" PRIu64 " entries of %u\n", st.entries,
			prm.max_entries);
		r = -EPROTO;
		goto out;
	}
	r = 0;
out:
	free(keys);
	free(order);
	flow_table_free(t);
	return r;
}

int main(int argc, char **argv)
{
	static const uint32_t sizes[] = { 1024, 10000, 100000, 1000000 };
	uint32_t lookups = 1000000;
	bool tsv = false;
	struct row w;
	double hit1k = 0;
	int r;

	for (int i = 1; i < argc; i++) {
		char *end;
		unsigned long v;

		if (!strcmp(argv[i], "--tsv")) {
			tsv = true;
			continue;
		}
		v = strtoul(argv[i], &end, 10);
		if (*end || !v || v > 100000000) {
			fprintf(stderr, "usage: flow-bench [--tsv] [lookups: 1..100000000]\n");
			return 2;
		}
		lookups = (uint32_t)v;
	}
	printf("%sflow table: %zu bytes per entry; %d rounds of %u operations per size, ns each\n%s\n",
	       tsv ? "# " : "", sizeof(struct flow), ROUNDS, lookups, tsv ? "#" : "");
	if (tsv)
		printf("# flows\thit_ns_median\thit_ns_min\tnew_ns_median\tnew_ns_min\tevicted\n");
	else
		printf("| live flows | hit ns (median) | hit ns (min) | x of 1k (median) "
		       "| M hits/s (median) | new+evict ns (median) | new+evict ns (min) | evicted |\n"
		       "|--:|--:|--:|--:|--:|--:|--:|--:|\n");
	for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
		r = run(sizes[i], lookups, &w);
		if (r < 0) {
			fprintf(stderr, "flow-bench: %s at %u flows\n", strerror(-r), sizes[i]);
			return 1;
		}
		if (!i)
			hit1k = w.hit;
		if (tsv)
			printf("flows\t%u\t%.2f\t%.2f\t%.2f\t%.2f\t%" PRIu64 "\n", sizes[i], w.hit,
			       w.hit_min, w.add, w.add_min, w.evicted);
		else
			printf("| %u | %.1f | %.1f | %.2f | %.2f | %.1f | %.1f | %" PRIu64 " |\n",
			       sizes[i], w.hit, w.hit_min, w.hit / hit1k, 1e3 / w.hit, w.add,
			       w.add_min, w.evicted);
		fflush(stdout);
	}
	return 0;
}
