/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer target for the config loader: any text either loads into a
 * config whose every field is within its documented range, or fails with a
 * "fuzz.conf:..." message and no config.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "rule.h"

/* Far above a real file's worth of structure; keeps each run fast. */
#define INPUT_MAX (256u << 10)

#define check(cond)                    \
	do {                           \
		if (!(cond))           \
			abort();       \
	} while (0)

static void check_selector(const struct selector *s)
{
	check(s->family == AF_UNSPEC || s->family == AF_INET || s->family == AF_INET6);
	check(!s->has_from || s->from.family == s->family);
	check(!s->has_to || s->to.family == s->family);
	check(!s->match.has_uid || s->match.uid_start <= s->match.uid_end);
	check(!s->match.has_sport || s->match.sport_start <= s->match.sport_end);
	check(!s->match.has_dport || s->match.dport_start <= s->match.dport_end);
	check(!(s->match.has_sport || s->match.has_dport) || s->match.ipproto == 6 ||
	      s->match.ipproto == 17 || s->match.ipproto == 132);
	check(!s->match.has_fwmark || (s->match.fwmark & ~s->match.fwmask) == 0);
	check(s->line > 0);
}

static void check_config(const struct config *c)
{
	char buf[RULE_FORMAT_MAX];

	check(c->tun_name[0] != '\0' && strlen(c->tun_name) < sizeof(c->tun_name));
	check(c->mtu >= 576 && c->mtu <= 65535 && (!c->ipv6 || c->mtu >= 1280));
	check(c->table >= 1 && c->table <= 0xfffffffeu && (c->table < 253 || c->table > 255));
	check(c->priority >= 2 && c->priority <= 32765);
	check(c->ipv4 || c->ipv6);
	check(c->n_divert <= CONFIG_SELECTORS_MAX && c->n_exclude <= CONFIG_SELECTORS_MAX);
	for (size_t i = 0; i < c->n_divert; i++)
		check_selector(&c->divert[i]);
	for (size_t i = 0; i < c->n_exclude; i++)
		check_selector(&c->exclude[i]);
	check(c->control_socket[0] == '/');
	check(c->fastpath == FASTPATH_OFF || c->fastpath == FASTPATH_AUTO ||
	      c->fastpath == FASTPATH_ON);
	check(c->n_rules <= CONFIG_RULES_MAX);
	for (size_t i = 0; i < c->n_rules; i++) {
		check(c->rules[i]);
		check(rule_format(c->rules[i], buf, sizeof(buf)) > 0);
		for (size_t j = 0; j < i && j < 256 && rule_name(c->rules[i])[0]; j++)
			check(strcmp(rule_name(c->rules[i]), rule_name(c->rules[j])) != 0);
	}
}

/*
 * libconfig 1.5 leaks the string token pending when a syntax error stops
 * its parser (no bison %destructor).  Ours are found by their stack, which
 * has no libconfig frame in it.
 */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
	return "leak:libconfig.so\n";
}

const char *__lsan_default_options(void);
const char *__lsan_default_options(void)
{
	return "print_suppressions=0";
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config *cfg = NULL;
	char err[CONFIG_ERR_MAX];
	char *text;
	int r;

	if (size > INPUT_MAX)
		return 0;
	text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';

	r = config_parse_string(text, "fuzz.conf", &cfg, err, sizeof(err));
	if (r < 0) {
		check(cfg == NULL);
		check(strncmp(err, "fuzz.conf", 9) == 0);
	} else {
		check(r == 0 && cfg && err[0] == '\0');
		check_config(cfg);
	}
	config_free(cfg);
	free(text);
	return 0;
}
