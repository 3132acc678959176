/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "explain.h"
#include "util.h"

static int fail(char *err, size_t errlen, int r, const char *fmt, ...) _printf_(4, 5);

static int fail(char *err, size_t errlen, int r, const char *fmt, ...)
{
	va_list ap;

	if (errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return r;
}

static const char *const allowed[] = {
	"family", "proto", "src", "dst", "sport", "dport", "icmp-type", "icmp-code",
	"tcp-flags", "ttl", "length", "dscp",
};

/* The rule key a field is spelt as, or NULL. */
static const char *field_key(const char *key)
{
	if (!strcmp(key, "flags"))
		return "tcp-flags";
	if (!strcmp(key, "len"))
		return "length";
	for (size_t i = 0; i < ARRAY_SIZE(allowed); i++)
		if (!strcmp(key, allowed[i]))
			return allowed[i];
	return NULL;
}

static bool full_prefix(const struct rule_prefix *pf, int family)
{
	return pf->len == (family == AF_INET6 ? 128 : 32);
}

static void put16(uint8_t *b, uint16_t v)
{
	b[0] = (uint8_t)(v >> 8);
	b[1] = (uint8_t)v;
}

int explain_packet(const struct rule_kv *kv, size_t n, uint8_t *buf, size_t cap,
		   struct pkt *p, char *err, size_t errlen)
{
	struct rule_kv k[RULE_KV_MAX + 1];
	struct rule *r = NULL;
	const struct rule_match *m;
	size_t nk = 0, bad, ip_hlen, l4_hlen, len;
	bool v6, have_dst = false, have_proto = false, have_dir = false;
	uint8_t dir = PKT_DIR_OUT;
	uint8_t *l4;
	int ret;

	if (cap < EXPLAIN_BUF_MAX)
		return fail(err, errlen, -EINVAL, "buffer too small");
	if (n > EXPLAIN_FIELDS_MAX)
		return fail(err, errlen, -E2BIG, "too many fields (at most %d)", EXPLAIN_FIELDS_MAX);
	for (size_t i = 0; i < n; i++) {
		const char *key = field_key(kv[i].key);

		/* The way the packet travels: which rules see it (direction=). */
		if (!strcmp(kv[i].key, "direction")) {
			if (have_dir)
				return fail(err, errlen, -EINVAL, "direction: given twice");
			have_dir = true;
			if (!strcasecmp(kv[i].value, "out"))
				dir = PKT_DIR_OUT;
			else if (!strcasecmp(kv[i].value, "in"))
				dir = PKT_DIR_IN;
			else
				return fail(err, errlen, -EINVAL, "direction=%s: expected out or in",
					    kv[i].value);
			continue;
		}
		if (!key)
			return fail(err, errlen, -EINVAL,
				    "'%s' is not a packet field (proto src dst sport dport flags "
				    "icmp-type icmp-code ttl dscp len family direction)", kv[i].key);
		have_dst |= !strcmp(key, "dst");
		have_proto |= !strcmp(key, "proto");
		k[nk++] = (struct rule_kv){ key, kv[i].value };
	}
	if (!have_dst)
		return fail(err, errlen, -EINVAL, "dst= is needed");
	if (!have_proto)
		return fail(err, errlen, -EINVAL, "proto= is needed");
	/* A rule must do something; the verdict is no field of the packet. */
	k[nk++] = (struct rule_kv){ "name", "explain" };
	k[nk++] = (struct rule_kv){ "verdict", "accept" };
	ret = rule_parse(k, nk, &r, &bad, err, errlen);
	if (ret < 0)
		return ret;
	m = &r->m;
	ret = -EINVAL;
	if (m->flags & (RULE_M_SRC_NOT | RULE_M_DST_NOT | RULE_M_SPORT_NOT | RULE_M_DPORT_NOT)) {
		fail(err, errlen, ret, "a field is one value: no '!'");
		goto out;
	}
	if (m->sport_lo != m->sport_hi || m->dport_lo != m->dport_hi || m->ttl_lo != m->ttl_hi ||
	    m->len_lo != m->len_hi) {
		fail(err, errlen, ret, "a field is one value: no range");
		goto out;
	}
	v6 = m->family == AF_INET6 || (m->flags & RULE_M_ICMP6_TYPE) ||
	     (m->proto == IPPROTO_ICMPV6 && m->family != AF_INET);
	if (!full_prefix(&m->dst, v6 ? AF_INET6 : AF_INET) ||
	    ((m->flags & RULE_M_SRC) && !full_prefix(&m->src, v6 ? AF_INET6 : AF_INET))) {
		fail(err, errlen, ret, "src= and dst= are addresses, not prefixes");
		goto out;
	}
	if ((m->flags & RULE_M_TCP_FLAGS) && m->tcp_mask != m->tcp_set) {
		fail(err, errlen, ret, "flags= lists the flags set, without '!'");
		goto out;
	}

	switch (m->proto) {
	case IPPROTO_TCP:
		l4_hlen = 20;
		break;
	case IPPROTO_UDP:
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		l4_hlen = 8;
		break;
	default:
		l4_hlen = 0;
		break;
	}
	ip_hlen = v6 ? 40 : 20;
	len = ip_hlen + l4_hlen;
	if (m->flags & RULE_M_LENGTH) {
		if (m->len_lo < len) {
			fail(err, errlen, ret, "len=%u: the headers alone are %zu bytes", m->len_lo, len);
			goto out;
		}
		len = m->len_lo;
	}
	memset(buf, 0, len);
	if (v6) {
		uint8_t tc = (uint8_t)(m->dscp << 2);

		buf[0] = (uint8_t)(0x60 | tc >> 4);
		buf[1] = (uint8_t)(tc << 4);
		put16(buf + 4, (uint16_t)(len - 40));
		buf[6] = m->proto;
		buf[7] = m->flags & RULE_M_TTL ? m->ttl_lo : 64;
		if (m->flags & RULE_M_SRC)
			memcpy(buf + 8, m->src.addr, 16);
		else
			inet_pton(AF_INET6, EXPLAIN_SRC6, buf + 8);
		memcpy(buf + 24, m->dst.addr, 16);
	} else {
		buf[0] = 0x45;
		buf[1] = (uint8_t)(m->dscp << 2);
		put16(buf + 2, (uint16_t)len);
		buf[6] = 0x40;	/* DF */
		buf[8] = m->flags & RULE_M_TTL ? m->ttl_lo : 64;
		buf[9] = m->proto;
		if (m->flags & RULE_M_SRC)
			memcpy(buf + 12, m->src.addr, 4);
		else
			inet_pton(AF_INET, EXPLAIN_SRC4, buf + 12);
		memcpy(buf + 16, m->dst.addr, 4);
	}
	l4 = buf + ip_hlen;
	switch (m->proto) {
	case IPPROTO_TCP:
	case IPPROTO_UDP:
		put16(l4, m->flags & RULE_M_SPORT ? m->sport_lo : 40000);
		put16(l4 + 2, m->flags & RULE_M_DPORT ? m->dport_lo : 80);
		if (m->proto == IPPROTO_UDP) {
			put16(l4 + 4, (uint16_t)(len - ip_hlen));
			break;
		}
		l4[7] = 1;		/* seq */
		l4[12] = 5 << 4;	/* data offset */
		l4[13] = m->flags & RULE_M_TCP_FLAGS ? m->tcp_set : 0x02;
		put16(l4 + 14, 65535);
		break;
	case IPPROTO_ICMP:
		l4[0] = m->flags & RULE_M_ICMP4_TYPE ? m->icmp_type[0] : 8;
		l4[1] = m->icmp_code;
		l4[5] = l4[7] = 1;	/* id, seq */
		break;
	case IPPROTO_ICMPV6:
		l4[0] = m->flags & RULE_M_ICMP6_TYPE ? m->icmp_type[1] : 128;
		l4[1] = m->icmp_code;
		l4[5] = l4[7] = 1;
		break;
	}
	*p = (struct pkt){ .data = buf, .len = len, .cap = cap, .dir = dir };
	ret = pkt_parse(p);
	if (ret != 0) {
		fail(err, errlen, -EINVAL, "the packet built does not parse (%s)",
		     pkt_class_name(ret));
		ret = -EINVAL;
		goto out;
	}
	pkt_csum_full(p);
	ret = 0;
out:
	rule_free(r);
	return ret;
}
