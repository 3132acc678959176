/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The rule vocabulary: one key=value language shared by the config file, the
 * control protocol and ipmodctl (see ipmodd.conf(5), RULES).
 */
#ifndef IPMODD_RULE_H
#define IPMODD_RULE_H

#include <stddef.h>

#define RULE_NAME_MAX 32	/* including the terminating NUL */
#define RULE_KV_MAX 32		/* keys in one rule */

struct rule;

struct rule_kv {
	const char *key;
	const char *value;
};

/*
 * Parse one rule.  On failure returns -EINVAL (or -ENOMEM), stores in
 * *ret_bad the index of the offending pair (n when the problem is the rule as
 * a whole, such as two verdicts) and writes a message that names the key and
 * the value into err.  *ret is untouched on failure.
 */
int rule_parse(const struct rule_kv *kv, size_t n, struct rule **ret, size_t *ret_bad,
	       char *err, size_t errlen);
struct rule *rule_free(struct rule *r);
struct rule *rule_dup(const struct rule *r);
const char *rule_name(const struct rule *r);	/* "" when none was given */

/* The rule as "key=value key=value ..." that rule_parse() reads back. */
int rule_format(const struct rule *r, char *buf, size_t len);

#endif
