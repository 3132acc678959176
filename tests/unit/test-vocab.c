/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The rule vocabulary's table (src/rule.c RULE_KEYS) against what the code
 * does with it: every key has a sample here that parses, prints in its row
 * and reads back; two values of a key are told apart; the key's kind decides
 * what rule_format_actions() prints; impairment keys are refused with
 * verdict=drop; and the fast-path column agrees with the fast path's own
 * decision, fastpath_rule_why_not().  A key added to the table without a
 * sample here fails the first test.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fastpath.h"
#include "rule.h"
#include "ruleline.h"
#include "tap.h"

struct sample {
	const char *key;
	const char *line;	/* a rule with the key, otherwise carried by the fast path when it can be */
	const char *other;	/* the same with another value of the key */
};

/* sets (issue 14): the lines name list files main() writes into a temp directory. */
static char set_dir[64], set_line[6][200];

static const struct sample samples[] = {
	{ "name", "name=a verdict=drop", "name=b verdict=drop" },
	{ "direction", "direction=in verdict=drop", "direction=both verdict=drop" },
	{ "family", "family=ip verdict=drop", "family=ip6 verdict=drop" },
	{ "proto", "proto=tcp verdict=drop", "proto=udp verdict=drop" },
	{ "src", "src=10.0.0.0/8 verdict=drop", "src=!10.0.0.0/8 verdict=drop" },
	{ "dst", "dst=2001:db8::/32 verdict=drop", "dst=2001:db8::/48 verdict=drop" },
	{ "sport", "proto=tcp sport=80 verdict=drop", "proto=tcp sport=80-81 verdict=drop" },
	{ "dport", "proto=udp dport=53 verdict=drop", "proto=udp dport=!53 verdict=drop" },
	{ "icmp-type", "proto=icmp icmp-type=echo-request verdict=drop",
	  "proto=icmp icmp-type=echo-reply verdict=drop" },
	{ "icmp-code", "proto=icmp icmp-type=3 icmp-code=1 verdict=drop",
	  "proto=icmp icmp-type=3 icmp-code=2 verdict=drop" },
	{ "tcp-flags", "proto=tcp tcp-flags=syn,!ack verdict=drop",
	  "proto=tcp tcp-flags=syn,ack verdict=drop" },
	{ "ttl", "ttl=64 verdict=drop", "ttl=1-64 verdict=drop" },
	{ "length", "length=100-200 verdict=drop", "length=100 verdict=drop" },
	{ "dscp", "dscp=ef verdict=drop", "dscp=cs1 verdict=drop" },
	{ "src-set", set_line[0], set_line[1] },
	{ "dst-set", set_line[2], set_line[3] },
	{ "host-set", set_line[4], set_line[5] },
	{ "probability", "probability=0.5 verdict=drop", "probability=0.25 verdict=drop" },
	{ "set-ttl", "set-ttl=64", "set-ttl=-1" },
	{ "set-dscp", "set-dscp=af11", "set-dscp=0" },
	{ "set-ecn", "set-ecn=ce", "set-ecn=ect0" },
	{ "clamp-mss", "proto=tcp clamp-mss=1200", "proto=tcp clamp-mss=1300" },
	{ "verdict", "verdict=accept", "verdict=drop" },
	{ "reject-with", "verdict=reject reject-with=tcp-reset proto=tcp",
	  "verdict=reject reject-with=admin-prohibited proto=tcp" },
	{ "split", "proto=tcp split=1", "proto=tcp split=sni+2,midsld" },
	{ "disorder", "split=1 disorder=true", "split=1 disorder=false" },
	{ "ipfrag", "ipfrag=8", "ipfrag=24" },
	{ "fake", "fake=zero", "fake=hex:16030100" },
	{ "fake-ttl", "fake=zero fake-ttl=3", "fake=zero fake-ttl=4" },
	{ "fake-badsum", "fake=random fake-badsum=true", "fake=random fake-badsum=false" },
	{ "fake-badseq", "fake=random fake-badseq=true", "fake=random fake-badseq=false" },
	{ "fake-md5sig", "fake=random fake-md5sig=true", "fake=random fake-md5sig=false" },
	{ "fake-repeats", "fake=zero fake-repeats=2", "fake=zero fake-repeats=10" },
	{ "set-field", "set-field=tcp.window=1024,ip.df=1", "set-field=ip6.dst=2001:db8::1" },
	{ "strip-tcp-option", "strip-tcp-option=timestamp,sack-perm", "strip-tcp-option=wscale" },
	{ "delay", "delay=50", "delay=0.5" },
	{ "jitter", "delay=50 jitter=10", "delay=50 jitter=11" },
	{ "distribution", "delay=50 jitter=10 distribution=normal",
	  "delay=50 jitter=10 distribution=pareto" },
	{ "delay-corr", "delay=50 jitter=10 delay-corr=0.25", "delay=50 jitter=10 delay-corr=0.5" },
	{ "loss", "loss=0.1", "loss=gemodel:0.1,0.2" },
	{ "loss-corr", "loss=0.1 loss-corr=0.5", "loss=0.1 loss-corr=0.25" },
	{ "loss-ecn", "loss=0.1 loss-ecn=true", "loss=0.1 loss-ecn=false" },
	{ "duplicate", "duplicate=0.1", "duplicate=0.2" },
	{ "duplicate-corr", "duplicate=0.1 duplicate-corr=0.5", "duplicate=0.1 duplicate-corr=0.25" },
	{ "reorder", "delay=10 reorder=0.1", "delay=10 reorder=0.2" },
	{ "reorder-corr", "delay=10 reorder=0.1 reorder-corr=0.5",
	  "delay=10 reorder=0.1 reorder-corr=0.25" },
	{ "gap", "delay=10 reorder=0.1 gap=5", "delay=10 reorder=0.1 gap=6" },
	{ "corrupt", "corrupt=0.1", "corrupt=0.01" },
	{ "corrupt-corr", "corrupt=0.1 corrupt-corr=0.5", "corrupt=0.1 corrupt-corr=0.25" },
	{ "rate", "rate=1mbit", "rate=1000pps" },
	{ "overhead", "rate=1mbit overhead=14", "rate=1mbit overhead=-4" },
	{ "cellsize", "rate=1mbit cellsize=53", "rate=1mbit cellsize=48" },
	{ "cell-overhead", "rate=1mbit cellsize=53 cell-overhead=5",
	  "rate=1mbit cellsize=53 cell-overhead=6" },
	{ "slot", "slot=10", "slot=10,20" },
	{ "limit", "delay=10 limit=100", "delay=10 limit=101" },
	{ "queue", "rate=@/tmp/x.trace queue=100", "rate=@/tmp/x.trace queue=50" },
	{ "queue-bytes", "rate=@/tmp/x.trace queue-bytes=3000", "rate=@/tmp/x.trace queue-bytes=4000" },
	{ "aqm", "rate=@/tmp/x.trace aqm=codel", "rate=@/tmp/x.trace aqm=droptail" },
	{ "codel-target", "rate=@/tmp/x.trace aqm=codel codel-target=3",
	  "rate=@/tmp/x.trace aqm=codel codel-target=4" },
	{ "codel-interval", "rate=@/tmp/x.trace aqm=codel codel-interval=50",
	  "rate=@/tmp/x.trace aqm=codel codel-interval=60" },
	{ "seed", "loss=0.1 seed=1", "loss=0.1 seed=2" },
	{ "expire", "expire=10s verdict=drop", "expire=11s verdict=drop" },
};

static const struct sample *sample_of(const char *key)
{
	for (size_t i = 0; i < ARRAY_SIZE(samples); i++)
		if (strcmp(samples[i].key, key) == 0)
			return &samples[i];
	return NULL;
}

static bool key_printed(const char *text, const char *key)
{
	size_t l = strlen(key);

	for (const char *p = text; (p = strstr(p, key)); p += l)
		if ((p == text || p[-1] == ' ') && p[l] == '=')
			return true;
	return false;
}

static const struct rule_keyinfo *info_of(const struct rule_keyinfo *all, size_t n, const char *key,
					  size_t keylen)
{
	for (size_t i = 0; i < n; i++)
		if (strlen(all[i].name) == keylen && strncmp(all[i].name, key, keylen) == 0)
			return &all[i];
	return NULL;
}

/* rule_format_actions() prints exactly the words of the action and impairment rows. */
static bool actions_by_kind(const struct rule *r, const struct rule_keyinfo *all, size_t n)
{
	char full[RULE_FORMAT_MAX], want[RULE_FORMAT_MAX], got[RULE_FORMAT_MAX];
	size_t wl = 0;

	if (rule_format(r, full, sizeof(full)) < 0 || rule_format_actions(r, got, sizeof(got)) < 0)
		return false;
	want[0] = '\0';
	for (char *w = full; *w;) {
		size_t l = strcspn(w, " ");
		const struct rule_keyinfo *ki = info_of(all, n, w, strcspn(w, "="));

		if (!ki)
			return false;
		if (strcmp(ki->kind, "action") == 0 || strcmp(ki->kind, "impair") == 0)
			wl += (size_t)snprintf(want + wl, sizeof(want) - wl, "%s%.*s", wl ? " " : "",
					       (int)l, w);
		w += l + (w[l] == ' ');
	}
	return strcmp(want, got) == 0;
}

static void write_file(const char *dir, const char *name, const char *text)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

static void set_files(bool make)
{
	static const char *const names[] = { "a.list", "b.list", "h.list", "i.list" };
	const char *tmp = getenv("TMPDIR");
	char path[128];

	if (!make) {
		for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
			snprintf(path, sizeof(path), "%s/%s", set_dir, names[i]);
			unlink(path);
		}
		rmdir(set_dir);
		return;
	}
	snprintf(set_dir, sizeof(set_dir), "%s/ipmodd-vocab.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(set_dir))
		return;
	write_file(set_dir, "a.list", "10.0.0.0/8\n2001:db8::/32\n");
	write_file(set_dir, "b.list", "192.0.2.0/24\n");
	write_file(set_dir, "h.list", "example.com\n*.example.org\n");
	write_file(set_dir, "i.list", "example.net\n");
	snprintf(set_line[0], sizeof(set_line[0]), "src-set=@%s/a.list verdict=drop", set_dir);
	snprintf(set_line[1], sizeof(set_line[1]), "src-set=@%s/b.list verdict=drop", set_dir);
	snprintf(set_line[2], sizeof(set_line[2]), "dst-set=@%s/a.list verdict=drop", set_dir);
	snprintf(set_line[3], sizeof(set_line[3]), "dst-set=!@%s/a.list verdict=drop", set_dir);
	snprintf(set_line[4], sizeof(set_line[4]), "host-set=@%s/h.list verdict=drop", set_dir);
	snprintf(set_line[5], sizeof(set_line[5]), "host-set=@%s/i.list verdict=drop", set_dir);
}

int main(void)
{
	/* The rows, however many: more than one rule's keys (RULE_KV_MAX) may exist. */
	struct rule_keyinfo all[128];
	size_t n = 0;

	set_files(true);

	while (n < ARRAY_SIZE(all) && rule_key_info((unsigned int)n, &all[n]) == 0)
		n++;
	ok(n > 40 && rule_key_info((unsigned int)n, &all[0]) == -ENOENT && rule_key_info((unsigned int)n - 1, &all[n - 1]) == 0,
	   "rule_key_info: %zu rows, then -ENOENT", n);

	for (size_t i = 0; i < n; i++) {
		const struct rule_keyinfo *ki = &all[i];
		const struct sample *s = sample_of(ki->name);
		char out[RULE_FORMAT_MAX];
		struct rule *r, *o, *back;
		const char *why;

		is_str(rule_key_name((unsigned int)i), ki->name, "row %zu: rule_key_name agrees", i);
		ok(ki->range && ki->range[0] && ki->kind && ki->kind[0], "%s: kind %s, range '%s'",
		   ki->name, ki->kind, ki->range ? ki->range : "(none)");
		if (!ok(s, "%s: has a sample in test-vocab.c", ki->name))
			continue;
		r = rule_of(s->line);
		o = rule_of(s->other);
		if (!ok(r && o, "%s: '%s' and '%s' parse", ki->name, s->line, s->other)) {
			rule_free(r);
			rule_free(o);
			continue;
		}
		back = NULL;
		ok(rule_format(r, out, sizeof(out)) > 0 && key_printed(out, ki->name),
		   "%s: printed in '%s'", ki->name, out);
		ok(rule_round_trips(r, out, sizeof(out), &back) && rule_equal(r, back),
		   "%s: '%s' reads back equal", ki->name, out);
		rule_free(back);
		ok(!rule_equal(r, o) && rule_equal(r, r) && rule_equal(o, o),
		   "%s: '%s' and '%s' are told apart", ki->name, s->line, s->other);
		ok(actions_by_kind(r, all, n) && actions_by_kind(o, all, n),
		   "%s: rule_format_actions prints the action and impair rows", ki->name);

		if (ki->not_with_drop) {
			char line[256];
			struct rule *d = NULL;
			char err[256];
			size_t bad;

			snprintf(line, sizeof(line), "%s verdict=drop", s->line);
			ok(rule_parse_line(line, &d, &bad, err, sizeof(err)) == -EINVAL &&
			   strstr(err, "not drop"), "%s: refused with verdict=drop (%s)", ki->name, err);
			rule_free(d);
		}

		why = fastpath_rule_why_not(r);
		switch (ki->fast_path) {
		case RULE_FP_YES:
			ok(!why && !fastpath_rule_why_not(o), "%s: fast path yes: '%s' is carried",
			   ki->name, s->line);
			break;
		case RULE_FP_NO:
			ok(why && fastpath_rule_why_not(o), "%s: fast path no: '%s' is not (%s)",
			   ki->name, s->line, why ? why : "carried");
			break;
		case RULE_FP_PARTIAL: {
			unsigned int yes = 0, no = 0;
			const char *v;

			/* Each named value alone (with a proto for reject-like verdicts). */
			for (unsigned int j = 0; (v = rule_key_value(ki->name, j)); j++) {
				char line[128];
				struct rule *x;

				snprintf(line, sizeof(line), "proto=tcp %s=%s", ki->name, v);
				x = rule_of(line);
				if (!x)
					continue;
				if (fastpath_rule_why_not(x))
					no++;
				else
					yes++;
				rule_free(x);
			}
			ok(yes && no, "%s: fast path partial: %u values carried, %u not", ki->name,
			   yes, no);
			break;
		}
		default:
			ok(false, "%s: fast path column %d", ki->name, ki->fast_path);
		}
		rule_free(r);
		rule_free(o);
	}
	for (size_t i = 0; i < ARRAY_SIZE(samples); i++)
		ok(info_of(all, n, samples[i].key, strlen(samples[i].key)),
		   "sample '%s' names a row of the table", samples[i].key);
	set_files(false);
	return tap_done();
}
