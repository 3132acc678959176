/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Packet surgery: the values of the surgery keys and surgery_apply().
 *
 * Choices made here (documented in ipmodd.conf(5)):
 * - split parts of an IPv4 packet get IDs id, id+1, ... in sequence order
 *   (as the kernel's GSO does); the fragments of one part share its ID.
 * - fake-badseq moves the decoy's sequence number SURG_BADSEQ_DELTA back.
 * - fake-badsum XORs the correct L4 checksum with 0x5555 (never the other
 *   ones' complement zero of the right one).
 * - ipfrag copies every IPv4 option into both fragments.
 * - outputs of split, ipfrag and fake get their checksums computed from
 *   scratch; set-field and strip-tcp-option update them incrementally
 *   (RFC 1624), so a packet whose checksum was wrong stays wrong there.
 */
#include <fcntl.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "packet.h"
#include "surgery.h"

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_PSH 0x08
#define TCP_URG 0x20

/* ---- field table ---------------------------------------------------------- */

enum fld_layer { L_IP4, L_IP6, L_TCP, L_UDP, L_ICMP };
enum fld_csum {
	C_HDR,		/* IPv4 header checksum (IPv6: none) */
	C_PSEUDO,	/* IPv4 header checksum and the L4 pseudo-header */
	C_L4,		/* the L4 checksum */
};

struct field {
	const char *name;
	uint8_t layer;		/* enum fld_layer */
	uint8_t off;		/* of the big-endian word holding the field, from the header */
	uint8_t bytes;		/* 1, 2, 4, or 16 (an address) */
	uint8_t width;		/* bits */
	uint8_t shift;		/* of the field's lowest bit in the word */
	uint8_t csum;		/* enum fld_csum */
};

static const struct field fields[] = {
	{ "ip.tos", L_IP4, 1, 1, 8, 0, C_HDR },
	{ "ip.dscp", L_IP4, 1, 1, 6, 2, C_HDR },
	{ "ip.ecn", L_IP4, 1, 1, 2, 0, C_HDR },
	{ "ip.id", L_IP4, 4, 2, 16, 0, C_HDR },
	{ "ip.df", L_IP4, 6, 2, 1, 14, C_HDR },
	{ "ip.mf", L_IP4, 6, 2, 1, 13, C_HDR },
	{ "ip.ttl", L_IP4, 8, 1, 8, 0, C_HDR },
	{ "ip.proto", L_IP4, 9, 1, 8, 0, C_HDR },
	{ "ip.src", L_IP4, 12, 4, 32, 0, C_PSEUDO },
	{ "ip.dst", L_IP4, 16, 4, 32, 0, C_PSEUDO },
	{ "ip6.tc", L_IP6, 0, 4, 8, 20, C_HDR },
	{ "ip6.dscp", L_IP6, 0, 4, 6, 22, C_HDR },
	{ "ip6.ecn", L_IP6, 0, 4, 2, 20, C_HDR },
	{ "ip6.flowlabel", L_IP6, 0, 4, 20, 0, C_HDR },
	{ "ip6.hlim", L_IP6, 7, 1, 8, 0, C_HDR },
	{ "ip6.nxt", L_IP6, 6, 1, 8, 0, C_HDR },
	{ "ip6.src", L_IP6, 8, 16, 128, 0, C_PSEUDO },
	{ "ip6.dst", L_IP6, 24, 16, 128, 0, C_PSEUDO },
	{ "tcp.sport", L_TCP, 0, 2, 16, 0, C_L4 },
	{ "tcp.dport", L_TCP, 2, 2, 16, 0, C_L4 },
	{ "tcp.seq", L_TCP, 4, 4, 32, 0, C_L4 },
	{ "tcp.ack", L_TCP, 8, 4, 32, 0, C_L4 },
	{ "tcp.flags", L_TCP, 13, 1, 8, 0, C_L4 },
	{ "tcp.window", L_TCP, 14, 2, 16, 0, C_L4 },
	{ "tcp.urg", L_TCP, 18, 2, 16, 0, C_L4 },
	{ "udp.sport", L_UDP, 0, 2, 16, 0, C_L4 },
	{ "udp.dport", L_UDP, 2, 2, 16, 0, C_L4 },
	{ "icmp.type", L_ICMP, 0, 1, 8, 0, C_L4 },
	{ "icmp.code", L_ICMP, 1, 1, 8, 0, C_L4 },
	{ "icmp.id", L_ICMP, 4, 2, 16, 0, C_L4 },
	{ "icmp.seq", L_ICMP, 6, 2, 16, 0, C_L4 },
};

size_t surgery_nfield_names(void)
{
	return ARRAY_SIZE(fields);
}

const char *surgery_field_name(size_t i)
{
	return i < ARRAY_SIZE(fields) ? fields[i].name : NULL;
}

static const struct {
	const char *name;
	uint8_t kind;
} tcpopts[] = {
	{ "mss", 2 }, { "wscale", 3 }, { "sack-perm", 4 }, { "sack", 5 },
	{ "timestamp", 8 }, { "md5sig", 19 }, { "fastopen", 34 },
};

const char *surgery_tcpopt_name(size_t i)
{
	return i < ARRAY_SIZE(tcpopts) ? tcpopts[i].name : NULL;
}

/* ---- parsing helpers -------------------------------------------------------- */

_printf_(3, 4) static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

/* A decimal or 0x-hex number in [min, max] filling all of s[0..n). */
static bool parse_num(const char *s, size_t n, uint64_t min, uint64_t max, uint64_t *v)
{
	char tmp[32], *end;
	unsigned long long x;

	if (!n || n >= sizeof(tmp) || !isdigit((unsigned char)s[0]))
		return false;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	errno = 0;
	x = strtoull(tmp, &end, tmp[0] == '0' && (tmp[1] == 'x' || tmp[1] == 'X') ? 16 : 10);
	if (errno || *end || x < min || x > max)
		return false;
	*v = x;
	return true;
}

static int parse_bool(bool *b, const char *key, const char *value, char *err, size_t errlen)
{
	if (!strcmp(value, "true") || !strcmp(value, "yes") || !strcmp(value, "1"))
		*b = true;
	else if (!strcmp(value, "false") || !strcmp(value, "no") || !strcmp(value, "0"))
		*b = false;
	else
		return fail(err, errlen, "%s: \"%s\" is not true or false", key, value);
	return 0;
}

void surgery_init(struct rule_surgery *s)
{
	memset(s, 0, sizeof(*s));
	s->fake_repeats = 1;
}

void surgery_ref(const struct rule_surgery *s)
{
	struct surg_fake *f = (struct surg_fake *)s->fake_data;

	if (f)
		__atomic_add_fetch(&f->refs, 1, __ATOMIC_RELAXED);
}

static void fake_unref(const struct surg_fake *fake)
{
	struct surg_fake *f = (struct surg_fake *)fake;

	if (f && __atomic_sub_fetch(&f->refs, 1, __ATOMIC_ACQ_REL) == 0)
		free(f);
}

void surgery_unref(const struct rule_surgery *s)
{
	fake_unref(s->fake_data);
}

void surgery_release(struct rule_surgery *s)
{
	fake_unref(s->fake_data);
	surgery_init(s);
}

/* A new payload of len bytes (one reference), or NULL. */
static struct surg_fake *fake_new(const uint8_t *data, size_t len, const char *path)
{
	struct surg_fake *f = malloc(sizeof(*f) + len);

	if (!f)
		return NULL;
	f->refs = 1;
	f->len = (uint16_t)len;
	snprintf(f->path, sizeof(f->path), "%s", path);
	memcpy(f->data, data, len);
	return f;
}

bool surgery_active(const struct rule_surgery *s)
{
	return s->keys != 0;
}

/* ---- split ------------------------------------------------------------------ */

int surgery_parse_split(struct rule_surgery *s, const char *value, char *err, size_t errlen)
{
	struct surg_pos pos[SURG_SPLIT_MAX];
	const char *p = value;
	unsigned int n = 0;

	if (!*value)
		return fail(err, errlen, "split: empty value");
	for (;;) {
		size_t len = strcspn(p, ",");
		const char *base = NULL;
		uint64_t v;

		if (n == SURG_SPLIT_MAX)
			return fail(err, errlen, "split: more than %d positions", SURG_SPLIT_MAX);
		memset(&pos[n], 0, sizeof(pos[n]));
		if (len >= 3 && !strncmp(p, "sni", 3)) {
			pos[n].kind = SURG_POS_SNI;
			base = p + 3;
		} else if (len >= 4 && !strncmp(p, "host", 4)) {
			pos[n].kind = SURG_POS_HOST;
			base = p + 4;
		} else if (len == 6 && !strncmp(p, "midsld", 6)) {
			pos[n].kind = SURG_POS_MIDSLD;
			base = p + 6;
		}
		if (base) {
			size_t rest = len - (size_t)(base - p);

			if (rest) {
				if (pos[n].kind == SURG_POS_MIDSLD || *base != '+' ||
				    !parse_num(base + 1, rest - 1, 1, PKT_MAX, &v))
					return fail(err, errlen,
						    "split: \"%.*s\" is not sni, sni+N, host, host+N or midsld (N 1..%d)",
						    (int)len, p, PKT_MAX);
				pos[n].off = (int32_t)v;
			}
		} else if (len && *p == '-') {
			if (!parse_num(p + 1, len - 1, 1, PKT_MAX, &v))
				return fail(err, errlen, "split: \"%.*s\" is not a position (1..%d or -1..-%d)",
					    (int)len, p, PKT_MAX, PKT_MAX);
			pos[n].off = -(int32_t)v;
		} else if (!parse_num(p, len, 1, PKT_MAX, &v)) {
			return fail(err, errlen, "split: \"%.*s\" is not a position (1..%d, -1..-%d, sni, sni+N, host, midsld)",
				    (int)len, p, PKT_MAX, PKT_MAX);
		} else {
			pos[n].off = (int32_t)v;
		}
		for (unsigned int i = 0; i < n; i++)
			if (pos[i].kind == pos[n].kind && pos[i].off == pos[n].off)
				return fail(err, errlen, "split: \"%.*s\" given twice", (int)len, p);
		n++;
		if (!p[len])
			break;
		p += len + 1;
	}
	memcpy(s->split, pos, sizeof(pos[0]) * n);
	s->nsplit = (uint8_t)n;
	s->keys |= SURG_K_SPLIT;
	return 0;
}

void surgery_print_split(struct strbuf *b, const struct rule_surgery *s)
{
	static const char *const names[] = { "", "sni", "host", "midsld" };

	for (unsigned int i = 0; i < s->nsplit; i++) {
		const struct surg_pos *p = &s->split[i];

		strbuf_printf(b, "%s", i ? "," : "");
		if (p->kind == SURG_POS_ABS)
			strbuf_printf(b, "%d", (int)p->off);
		else if (p->off)
			strbuf_printf(b, "%s+%d", names[p->kind], (int)p->off);
		else
			strbuf_printf(b, "%s", names[p->kind]);
	}
}

/* ---- disorder, ipfrag ------------------------------------------------------- */

int surgery_parse_disorder(struct rule_surgery *s, const char *value, char *err, size_t errlen)
{
	int r = parse_bool(&s->disorder, "disorder", value, err, errlen);

	if (!r)
		s->keys |= SURG_K_DISORDER;
	return r;
}

void surgery_print_disorder(struct strbuf *b, const struct rule_surgery *s)
{
	strbuf_printf(b, "%s", s->disorder ? "true" : "false");
}

int surgery_parse_ipfrag(struct rule_surgery *s, const char *value, char *err, size_t errlen)
{
	uint64_t v;

	if (!parse_num(value, strlen(value), 8, 65528, &v) || v % 8)
		return fail(err, errlen, "ipfrag: \"%s\" is not a payload offset (a multiple of 8, 8..65528)", value);
	s->ipfrag = (uint16_t)v;
	s->keys |= SURG_K_IPFRAG;
	return 0;
}

void surgery_print_ipfrag(struct strbuf *b, const struct rule_surgery *s)
{
	strbuf_printf(b, "%u", (unsigned int)s->ipfrag);
}

/* ---- fake and its companions ------------------------------------------------ */

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)tolower((unsigned char)c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int surgery_parse_fake(struct rule_surgery *s, const char *value, char *err, size_t errlen)
{
	uint8_t data[SURG_FAKE_MAX];	/* s changes only when the whole value is right */
	struct surg_fake *f = NULL;

	if (!strcmp(value, "zero")) {
		s->fake = SURG_FAKE_ZERO;
	} else if (!strcmp(value, "random")) {
		s->fake = SURG_FAKE_RANDOM;
	} else if (!strncmp(value, "hex:", 4)) {
		const char *h = value + 4;
		size_t n = strlen(h);

		if (!n || n % 2)
			return fail(err, errlen, "fake: \"%s\": an even number of hex digits is needed", h);
		if (n / 2 > SURG_FAKE_MAX)
			return fail(err, errlen, "fake: hex payload of %zu bytes, at most %d", n / 2, SURG_FAKE_MAX);
		for (size_t i = 0; i < n; i += 2) {
			int hi = hexval(h[i]), lo = hexval(h[i + 1]);

			if (hi < 0 || lo < 0)
				return fail(err, errlen, "fake: \"%.2s\" at hex digit %zu is not hex", h + i, i + 1);
			data[i / 2] = (uint8_t)(hi << 4 | lo);
		}
		f = fake_new(data, n / 2, "");
		if (!f) {
			fail(err, errlen, "fake: out of memory");
			return -ENOMEM;
		}
		s->fake = SURG_FAKE_HEX;
	} else if (value[0] == '@') {
		const char *path = value + 1;
		uint8_t extra;
		ssize_t r;
		size_t got = 0;
		int fd, e;

		if (path[0] != '/')
			return fail(err, errlen, "fake: \"%s\" is not an absolute path", path);
		struct stat st;

		if (strlen(path) >= SURG_FAKE_PATH_MAX)
			return fail(err, errlen, "fake: path longer than %d bytes", SURG_FAKE_PATH_MAX - 1);
		/* The path goes into messages and into a rule's text as one word. */
		for (const char *c = path; *c; c++)
			if (*c <= ' ' || *c > '~' || *c == '"' || *c == '\\')
				return fail(err, errlen, "fake: the path must be printable ASCII without "
					    "spaces, quotes or backslashes");
		/* Never blocking (a FIFO), never a device: a regular file. */
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
		if (fd < 0) {
			e = errno;
			fail(err, errlen, "fake: %s: %s", path, strerror(e));
			return -e;
		}
		if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
			close(fd);
			return fail(err, errlen, "fake: %s: not a regular file", path);
		}
		while (got < SURG_FAKE_MAX) {
			r = read(fd, data + got, SURG_FAKE_MAX - got);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				break;
			got += (size_t)r;
		}
		e = errno;
		r = got == SURG_FAKE_MAX ? read(fd, &extra, 1) : 0;
		close(fd);
		if (r < 0) {
			fail(err, errlen, "fake: %s: %s", path, strerror(e));
			return -e;
		}
		if (r > 0)
			return fail(err, errlen, "fake: %s: longer than %d bytes", path, SURG_FAKE_MAX);
		if (!got)
			return fail(err, errlen, "fake: %s: empty file", path);
		f = fake_new(data, got, path);
		if (!f) {
			fail(err, errlen, "fake: out of memory");
			return -ENOMEM;
		}
		s->fake = SURG_FAKE_FILE;
	} else {
		return fail(err, errlen, "fake: \"%s\" is not zero, random, @/path or hex:DIGITS", value);
	}
	/* A fake given again replaces the payload of the first. */
	fake_unref(s->fake_data);
	s->fake_data = f;
	s->keys |= SURG_K_FAKE;
	return 0;
}

void surgery_print_fake(struct strbuf *b, const struct rule_surgery *s)
{
	switch (s->fake) {
	case SURG_FAKE_ZERO:
		strbuf_printf(b, "zero");
		break;
	case SURG_FAKE_RANDOM:
		strbuf_printf(b, "random");
		break;
	case SURG_FAKE_FILE:
		if (s->fake_data)
			strbuf_printf(b, "@%s", s->fake_data->path);
		break;
	case SURG_FAKE_HEX:
		strbuf_printf(b, "hex:");
		for (unsigned int i = 0; s->fake_data && i < s->fake_data->len; i++)
			strbuf_printf(b, "%02x", s->fake_data->data[i]);
		break;
	}
}

int surgery_parse_fake_ttl(struct rule_surgery *s, const char *value, char *err, size_t errlen)
{
	uint64_t v;

	if (!parse_num(value, strlen(value), 1, 255, &v))
		return fail(err, errlen, "fake-ttl: \"%s\" is not 1..255", value);
	s->fake_ttl = (uint8_t)v;
	s->keys |= SURG_K_FAKE_TTL;
	return 0;
}

void surgery_print_fake_ttl(struct strbuf *b, const struct rule_surgery *s)
{
	strbuf_printf(b, "%u", (unsigned int)s->fake_ttl);
}

#define BOOL_KEY(fn, key, member, bit)                                                       \
	int surgery_parse_##fn(struct rule_surgery *s, const char *value, char *err, size_t errlen) \
	{                                                                                    \
		int r = parse_bool(&s->member, key, value, err, errlen);                     \
		if (!r)                                                                      \
			s->keys |= bit;                                                      \
		return r;                                                                    \
	}                                                                                    \
	void surgery_print_##fn(struct strbuf *b, const struct rule_surgery *s)              \
	{                                                                                    \
		strbuf_printf(b, "%s", s->member ? "true" : "false");                        \
	}

BOOL_KEY(fake_badsum, "fake-badsum", fake_badsum, SURG_K_FAKE_BADSUM)
BOOL_KEY(fake_badseq, "fake-badseq", fake_badseq, SURG_K_FAKE_BADSEQ)
BOOL_KEY(fake_md5sig, "fake-md5sig", fake_md5sig, SURG_K_FAKE_MD5SIG)

int surgery_parse_fake_repeats(struct rule_surgery *s, const char *value, char *err, size_t errlen)
{
	uint64_t v;

	if (!parse_num(value, strlen(value), 1, SURG_REPEATS_MAX, &v))
		return fail(err, errlen, "fake-repeats: \"%s\" is not 1..%d", value, SURG_REPEATS_MAX);
	s->fake_repeats = (uint8_t)v;
	s->keys |= SURG_K_FAKE_REPEATS;
	return 0;
}

void surgery_print_fake_repeats(struct strbuf *b, const struct rule_surgery *s)
{
	strbuf_printf(b, "%u", (unsigned int)s->fake_repeats);
}

/* ---- set-field -------------------------------------------------------------- */

int surgery_parse_set_field(struct rule_surgery *s, const char *value, char *err, size_t errlen)
{
	struct surg_field_set set[SURG_FIELDS_MAX];
	const char *p = value;
	unsigned int n = 0;

	for (;;) {
		size_t len, nlen, fi;
		const char *eq, *v;
		char tmp[INET6_ADDRSTRLEN + 1];
		uint64_t x;

		p += strspn(p, " \t,");
		if (!*p)
			break;
		len = strcspn(p, " \t,");
		eq = memchr(p, '=', len);
		if (!eq)
			return fail(err, errlen, "set-field: \"%.*s\" is not FIELD=VALUE", (int)len, p);
		nlen = (size_t)(eq - p);
		for (fi = 0; fi < ARRAY_SIZE(fields); fi++)
			if (strlen(fields[fi].name) == nlen && !strncmp(fields[fi].name, p, nlen))
				break;
		if (fi == ARRAY_SIZE(fields))
			return fail(err, errlen, "set-field: unknown field \"%.*s\"", (int)nlen, p);
		if (n == SURG_FIELDS_MAX)
			return fail(err, errlen, "set-field: more than %d fields", SURG_FIELDS_MAX);
		for (unsigned int i = 0; i < n; i++)
			if (set[i].field == fi)
				return fail(err, errlen, "set-field: %s given twice", fields[fi].name);
		memset(&set[n], 0, sizeof(set[n]));
		set[n].field = (uint8_t)fi;
		v = eq + 1;
		if (fields[fi].bytes == 4 && fields[fi].width == 32 && fields[fi].layer == L_IP4) {
			size_t vl = len - nlen - 1;

			if (vl >= sizeof(tmp))
				return fail(err, errlen, "set-field: %s: \"%.*s\" is not an IPv4 address",
					    fields[fi].name, (int)vl, v);
			memcpy(tmp, v, vl);
			tmp[vl] = '\0';
			if (inet_pton(AF_INET, tmp, set[n].addr) != 1)
				return fail(err, errlen, "set-field: %s: \"%s\" is not an IPv4 address",
					    fields[fi].name, tmp);
		} else if (fields[fi].bytes == 16) {
			size_t vl = len - nlen - 1;

			if (vl >= sizeof(tmp))
				return fail(err, errlen, "set-field: %s: \"%.*s\" is not an IPv6 address",
					    fields[fi].name, (int)vl, v);
			memcpy(tmp, v, vl);
			tmp[vl] = '\0';
			if (inet_pton(AF_INET6, tmp, set[n].addr) != 1)
				return fail(err, errlen, "set-field: %s: \"%s\" is not an IPv6 address",
					    fields[fi].name, tmp);
		} else {
			uint64_t max = (1ull << fields[fi].width) - 1;

			if (!parse_num(v, len - nlen - 1, 0, max, &x))
				return fail(err, errlen, "set-field: %s: \"%.*s\" is not 0..%llu",
					    fields[fi].name, (int)(len - nlen - 1), v, (unsigned long long)max);
			set[n].value = (uint32_t)x;
		}
		n++;
		p += len;
	}
	if (!n)
		return fail(err, errlen, "set-field: no FIELD=VALUE given");
	memcpy(s->fields, set, sizeof(set[0]) * n);
	s->nfields = (uint8_t)n;
	s->keys |= SURG_K_SET_FIELD;
	return 0;
}

void surgery_print_set_field(struct strbuf *b, const struct rule_surgery *s)
{
	for (unsigned int i = 0; i < s->nfields; i++) {
		const struct surg_field_set *f = &s->fields[i];
		const struct field *d = &fields[f->field];
		char a[INET6_ADDRSTRLEN];

		strbuf_printf(b, "%s%s=", i ? " " : "", d->name);
		if (d->layer == L_IP4 && d->width == 32)
			strbuf_printf(b, "%s", inet_ntop(AF_INET, f->addr, a, sizeof(a)));
		else if (d->bytes == 16)
			strbuf_printf(b, "%s", inet_ntop(AF_INET6, f->addr, a, sizeof(a)));
		else
			strbuf_printf(b, "%u", f->value);
	}
}

/* ---- strip-tcp-option ------------------------------------------------------- */

int surgery_parse_strip_tcp_option(struct rule_surgery *s, const char *value, char *err, size_t errlen)
{
	uint8_t map[32] = { 0 };
	const char *p = value;
	bool any = false;

	for (;;) {
		size_t len = strcspn(p, ",");
		unsigned int kind = 0;
		uint64_t v;

		for (size_t i = 0; i < ARRAY_SIZE(tcpopts); i++)
			if (strlen(tcpopts[i].name) == len && !strncmp(tcpopts[i].name, p, len))
				kind = tcpopts[i].kind;
		if (!kind) {
			if (!parse_num(p, len, 2, 254, &v))
				return fail(err, errlen,
					    "strip-tcp-option: \"%.*s\" is not mss, wscale, sack-perm, sack, timestamp, md5sig, fastopen or 2..254",
					    (int)len, p);
			kind = (unsigned int)v;
		}
		map[kind / 8] |= (uint8_t)(1u << (kind % 8));
		any = true;
		if (!p[len])
			break;
		p += len + 1;
	}
	if (!any)
		return fail(err, errlen, "strip-tcp-option: empty value");
	memcpy(s->strip, map, sizeof(map));
	s->keys |= SURG_K_STRIP;
	return 0;
}

static bool strip_has(const struct rule_surgery *s, unsigned int kind)
{
	return s->strip[kind / 8] & (1u << (kind % 8));
}

void surgery_print_strip_tcp_option(struct strbuf *b, const struct rule_surgery *s)
{
	bool first = true;

	for (unsigned int k = 2; k < 255; k++) {
		const char *name = NULL;

		if (!strip_has(s, k))
			continue;
		for (size_t i = 0; i < ARRAY_SIZE(tcpopts); i++)
			if (tcpopts[i].kind == k)
				name = tcpopts[i].name;
		if (name)
			strbuf_printf(b, "%s%s", first ? "" : ",", name);
		else
			strbuf_printf(b, "%s%u", first ? "" : ",", k);
		first = false;
	}
}

/* ---- the keys together ------------------------------------------------------ */

const struct surgery_key surgery_keys[] = {
	{ "split", SURG_K_SPLIT, surgery_parse_split, surgery_print_split },
	{ "disorder", SURG_K_DISORDER, surgery_parse_disorder, surgery_print_disorder },
	{ "ipfrag", SURG_K_IPFRAG, surgery_parse_ipfrag, surgery_print_ipfrag },
	{ "fake", SURG_K_FAKE, surgery_parse_fake, surgery_print_fake },
	{ "fake-ttl", SURG_K_FAKE_TTL, surgery_parse_fake_ttl, surgery_print_fake_ttl },
	{ "fake-badsum", SURG_K_FAKE_BADSUM, surgery_parse_fake_badsum, surgery_print_fake_badsum },
	{ "fake-badseq", SURG_K_FAKE_BADSEQ, surgery_parse_fake_badseq, surgery_print_fake_badseq },
	{ "fake-md5sig", SURG_K_FAKE_MD5SIG, surgery_parse_fake_md5sig, surgery_print_fake_md5sig },
	{ "fake-repeats", SURG_K_FAKE_REPEATS, surgery_parse_fake_repeats, surgery_print_fake_repeats },
	{ "set-field", SURG_K_SET_FIELD, surgery_parse_set_field, surgery_print_set_field },
	{ "strip-tcp-option", SURG_K_STRIP, surgery_parse_strip_tcp_option, surgery_print_strip_tcp_option },
};
const size_t surgery_nkeys = ARRAY_SIZE(surgery_keys);

void surgery_format(struct strbuf *b, const struct rule_surgery *s)
{
	bool first = true;

	for (size_t i = 0; i < surgery_nkeys; i++) {
		const struct surgery_key *k = &surgery_keys[i];
		bool quote = k->bit == SURG_K_SET_FIELD;

		if (!(s->keys & k->bit))
			continue;
		strbuf_printf(b, "%s%s=%s", first ? "" : " ", k->name, quote ? "\"" : "");
		k->print(b, s);
		if (quote)
			strbuf_printf(b, "\"");
		first = false;
	}
}

/* Payloads compare by content (two parses of one file are two objects). */
static bool fake_equal(const struct surg_fake *a, const struct surg_fake *b)
{
	if (a == b)
		return true;
	if (!a || !b)
		return false;
	return a->len == b->len && !strcmp(a->path, b->path) && !memcmp(a->data, b->data, a->len);
}

bool surgery_equal(const struct rule_surgery *a, const struct rule_surgery *b)
{
	if (a->keys != b->keys || a->nsplit != b->nsplit || a->disorder != b->disorder ||
	    a->ipfrag != b->ipfrag || a->fake != b->fake || a->fake_ttl != b->fake_ttl ||
	    a->fake_badsum != b->fake_badsum || a->fake_badseq != b->fake_badseq ||
	    a->fake_md5sig != b->fake_md5sig || a->fake_repeats != b->fake_repeats ||
	    a->nfields != b->nfields || memcmp(a->strip, b->strip, sizeof(a->strip)) ||
	    !fake_equal(a->fake_data, b->fake_data))
		return false;
	for (unsigned int i = 0; i < a->nsplit; i++)
		if (a->split[i].kind != b->split[i].kind || a->split[i].off != b->split[i].off)
			return false;
	for (unsigned int i = 0; i < a->nfields; i++)
		if (a->fields[i].field != b->fields[i].field || a->fields[i].value != b->fields[i].value ||
		    memcmp(a->fields[i].addr, b->fields[i].addr, 16))
			return false;
	return true;
}

int surgery_check(const struct rule_surgery *s, char *err, size_t errlen)
{
	static const struct {
		uint32_t bit;
		const char *name;
	} fakes[] = {
		{ SURG_K_FAKE_TTL, "fake-ttl" }, { SURG_K_FAKE_BADSUM, "fake-badsum" },
		{ SURG_K_FAKE_BADSEQ, "fake-badseq" }, { SURG_K_FAKE_MD5SIG, "fake-md5sig" },
		{ SURG_K_FAKE_REPEATS, "fake-repeats" },
	};

	if (s->disorder && !(s->keys & (SURG_K_SPLIT | SURG_K_IPFRAG)))
		return fail(err, errlen, "disorder needs split or ipfrag");
	if (!(s->keys & SURG_K_FAKE))
		for (size_t i = 0; i < ARRAY_SIZE(fakes); i++)
			if (s->keys & fakes[i].bit)
				return fail(err, errlen, "%s needs fake", fakes[i].name);
	return 0;
}

/* ---- apply: helpers --------------------------------------------------------- */

static uint16_t rd16(const uint8_t *b)
{
	return (uint16_t)(b[0] << 8 | b[1]);
}

static void wr16(uint8_t *b, uint16_t v)
{
	b[0] = (uint8_t)(v >> 8);
	b[1] = (uint8_t)v;
}

static uint32_t rd32(const uint8_t *b)
{
	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static void wr32(uint8_t *b, uint32_t v)
{
	wr16(b, (uint16_t)(v >> 16));
	wr16(b + 2, (uint16_t)v);
}

struct arena {
	struct surg_out *o;
	size_t used;
};

static uint8_t *arena_take(struct arena *a, size_t len, uint32_t *off)
{
	if (len > a->o->cap - a->used)
		return NULL;
	*off = (uint32_t)a->used;
	a->used += len;
	return a->o->buf + *off;
}

/* Set the IP length fields of a packet of len bytes and parse it. */
static int set_len_parse(struct pkt *p, uint8_t *d, size_t len)
{
	if (len > PKT_MAX)
		return -EMSGSIZE;
	if ((d[0] >> 4) == 4)
		wr16(d + 2, (uint16_t)len);
	else
		wr16(d + 4, (uint16_t)(len - 40));
	memset(p, 0, sizeof(*p));
	p->data = d;
	p->len = len;
	p->cap = len;
	return pkt_parse(p) == PKT_OK ? 0 : -EINVAL;
}

/* ---- set-field and strip (in place, incremental checksums) ----------------- */

/*
 * Fix the checksums after bytes d[from..to) of the packet changed; old holds
 * their previous values.  Word alignment: from and to are even relative to the
 * header start, and IP/L4 headers start at even offsets.
 */
static void fix_csums(struct pkt *p, size_t from, size_t to, const uint8_t *old, uint8_t csum)
{
	for (size_t i = from; i < to; i += 2) {
		uint16_t o = rd16(old + (i - from)), n = rd16(p->data + i);

		if (o == n)
			continue;
		if (csum != C_L4 && p->family == AF_INET)
			wr16(p->data + 10, csum_replace2(rd16(p->data + 10), o, n));
		if (csum == C_PSEUDO || csum == C_L4)
			pkt_l4_csum_replace2(p, o, n, csum == C_PSEUDO);
	}
}

static bool field_applies(const struct pkt *p, const struct field *f)
{
	switch (f->layer) {
	case L_IP4:
		return p->family == AF_INET;
	case L_IP6:
		return p->family == AF_INET6;
	case L_TCP:
		return p->l4_complete && p->first_fragment && p->l4proto == IPPROTO_TCP;
	case L_UDP:
		return p->l4_complete && p->first_fragment && p->l4proto == IPPROTO_UDP;
	case L_ICMP:
		return p->l4_complete && p->first_fragment &&
		       ((p->family == AF_INET && p->l4proto == IPPROTO_ICMP) ||
			(p->family == AF_INET6 && p->l4proto == IPPROTO_ICMPV6)) &&
		       (f->off < 4 || p->len >= (size_t)p->l4off + 8);
	}
	return false;
}

static void apply_fields(const struct rule_surgery *s, struct pkt *p, unsigned int *skipped)
{
	for (unsigned int i = 0; i < s->nfields; i++) {
		const struct surg_field_set *fs = &s->fields[i];
		const struct field *f = &fields[fs->field];
		size_t base = f->layer == L_IP4 || f->layer == L_IP6 ? 0 : p->l4off;
		size_t at = base + f->off, from = at & ~(size_t)1, to;
		uint8_t old[18];

		if (!field_applies(p, f)) {
			*skipped |= SURG_SKIP_FIELD;
			continue;
		}
		to = (at + f->bytes + 1) & ~(size_t)1;
		memcpy(old, p->data + from, to - from);
		if (f->width == 32 && f->layer == L_IP4) {
			memcpy(p->data + at, fs->addr, 4);
		} else if (f->bytes == 16) {
			memcpy(p->data + at, fs->addr, 16);
		} else {
			uint32_t w = 0, mask = (uint32_t)(((1ull << f->width) - 1) << f->shift);

			for (unsigned int k = 0; k < f->bytes; k++)
				w = w << 8 | p->data[at + k];
			w = (w & ~mask) | ((fs->value << f->shift) & mask);
			for (unsigned int k = f->bytes; k-- > 0; w >>= 8)
				p->data[at + k] = (uint8_t)w;
		}
		fix_csums(p, from, to, old, f->csum);
		if (f->layer == L_TCP && f->off == 13)
			p->tcp_flags = p->data[at];
	}
}

static void apply_strip(const struct rule_surgery *s, struct pkt *p, unsigned int *skipped)
{
	size_t start, end, i;
	uint8_t old[40];

	if (p->l4proto != IPPROTO_TCP || !p->l4_complete || !p->first_fragment) {
		*skipped |= SURG_SKIP_STRIP;
		return;
	}
	start = p->l4off + 20u;
	end = p->l4off + (size_t)(p->data[p->l4off + 12] >> 4) * 4;
	memcpy(old, p->data + start, end - start);
	for (i = start; i < end;) {
		uint8_t kind = p->data[i];
		size_t olen;

		if (kind == 0)
			break;
		if (kind == 1) {
			i++;
			continue;
		}
		if (i + 1 >= end || p->data[i + 1] < 2 || i + p->data[i + 1] > end)
			break;
		olen = p->data[i + 1];
		if (strip_has(s, kind))
			memset(p->data + i, 1, olen);
		i += olen;
	}
	fix_csums(p, start, end, old, C_L4);
}

unsigned int surgery_rewrite(const struct rule_surgery *s, struct pkt *p)
{
	unsigned int skipped = 0;
	struct pkt before = *p;

	if (s->nfields)
		apply_fields(s, p, &skipped);
	if (s->keys & SURG_K_STRIP)
		apply_strip(s, p, &skipped);
	if (s->nfields) {
		/* What the header says now (ports, flags, protocol), with what was read about it. */
		struct pkt q = *p;

		if (pkt_parse(&q) == PKT_OK) {
			q.needs_csum = before.needs_csum;
			q.segs = before.segs;
			q.seg_hlen = before.seg_hlen;
			q.dir = before.dir;
			*p = q;
		}
	}
	return skipped;
}

/* ---- split ------------------------------------------------------------------ */

static int midsld(const uint8_t *name, int32_t len)
{
	int32_t last = -1, prev = -1;

	for (int32_t i = 0; i < len; i++)
		if (name[i] == '.') {
			prev = last;
			last = i;
		}
	if (last <= 0 || last == len - 1)
		return -1;
	/* the second-level label is name(prev, last) */
	return prev + 1 + (last - prev - 1) / 2;
}

/* Resolve the positions into sorted distinct offsets in 1..plen-1; 0: none. */
static unsigned int resolve(const struct rule_surgery *s, const struct surg_marks *mk,
			    const uint8_t *pl, uint32_t plen, uint32_t *at)
{
	unsigned int n = 0;

	for (unsigned int i = 0; i < s->nsplit; i++) {
		const struct surg_pos *sp = &s->split[i];
		int64_t v;

		switch (sp->kind) {
		case SURG_POS_ABS:
			v = sp->off > 0 ? sp->off : (int64_t)plen + sp->off;
			break;
		case SURG_POS_SNI:
			if (!mk || mk->sni_off < 0)
				return 0;
			v = (int64_t)mk->sni_off + sp->off;
			break;
		case SURG_POS_HOST:
			if (!mk || mk->host_off < 0)
				return 0;
			v = (int64_t)mk->host_off + sp->off;
			break;
		default: {
			int32_t o = -1, l = 0;
			int m;

			if (mk && mk->sni_off >= 0) {
				o = mk->sni_off;
				l = mk->sni_len;
			} else if (mk && mk->host_off >= 0) {
				o = mk->host_off;
				l = mk->host_len;
			}
			if (o < 0 || l <= 0 || (int64_t)o + l > plen)
				return 0;
			m = midsld(pl + o, l);
			if (m < 0)
				return 0;
			v = (int64_t)o + m;
			break;
		}
		}
		if (v <= 0 || v >= plen)
			return 0;
		at[n++] = (uint32_t)v;
	}
	/* insertion sort, then drop duplicates */
	for (unsigned int i = 1; i < n; i++)
		for (unsigned int j = i; j > 0 && at[j - 1] > at[j]; j--) {
			uint32_t t = at[j];

			at[j] = at[j - 1];
			at[j - 1] = t;
		}
	unsigned int m = 0;

	for (unsigned int i = 0; i < n; i++)
		if (!m || at[m - 1] != at[i])
			at[m++] = at[i];
	return m;
}

struct part {
	uint32_t off, len;
};

/* Cut the TCP packet w (parsed as p) at the offsets; the parts go to parts[]. */
static int do_split(const struct pkt *p, const uint32_t *at, unsigned int nat,
		    struct arena *a, struct part *parts)
{
	size_t hl = p->l4off + (size_t)(p->data[p->l4off + 12] >> 4) * 4;
	uint32_t plen = (uint32_t)(p->len - hl), seq = rd32(p->data + p->l4off + 4);
	uint16_t id = p->family == AF_INET ? rd16(p->data + 4) : 0;

	for (unsigned int i = 0; i <= nat; i++) {
		uint32_t from = i ? at[i - 1] : 0, to = i < nat ? at[i] : plen;
		size_t len = hl + (to - from);
		struct pkt q;
		uint8_t *d = arena_take(a, len, &parts[i].off);
		uint8_t *tcp;

		if (!d)
			return -ENOSPC;
		parts[i].len = (uint32_t)len;
		memcpy(d, p->data, hl);
		memcpy(d + hl, p->data + hl + from, to - from);
		tcp = d + p->l4off;
		wr32(tcp + 4, seq + from);
		if (i < nat)
			tcp[13] &= (uint8_t)~(TCP_PSH | TCP_FIN);
		if (p->family == AF_INET)
			wr16(d + 4, (uint16_t)(id + i));
		if (set_len_parse(&q, d, len))
			return -EINVAL;
		pkt_csum_full(&q);
	}
	return (int)nat + 1;
}

/* ---- ipfrag ----------------------------------------------------------------- */

/* Length of the IPv6 unfragmentable part and the offset of the next-header byte that ends it. */
static int ip6_unfrag(const uint8_t *d, size_t len, size_t *ulen, size_t *nxt_at)
{
	size_t off = 40, at = 6;
	uint8_t nxt = d[6];

	for (int i = 0; i < 8; i++) {
		bool take = nxt == 0 || nxt == 43;

		if (nxt == 60 && off + 2 <= len) {
			/* destination options before a routing header belong to it */
			size_t l = ((size_t)d[off + 1] + 1) * 8;

			take = off + l < len && d[off] == 43;
		}
		if (!take)
			break;
		if (off + 2 > len)
			return -EINVAL;
		at = off;
		nxt = d[off];
		off += ((size_t)d[off + 1] + 1) * 8;
		if (off > len)
			return -EINVAL;
	}
	*ulen = off;
	*nxt_at = at;
	return 0;
}

/* Fragment the packet at src[0..len) at payload offset fo; 1 or 2 packets out. */
/*
 * chain_end: where the IPv6 header chain (extension headers and the fixed
 * TCP/UDP/ICMPv6 header) ends; the first fragment must hold all of it
 * (RFC 7112, RFC 8200 4.5: receivers drop such first fragments).
 * frag_hdr: the IPv6 chain has a Fragment header already (pkt_parse()), an
 * atomic one too; a second would make the packet invalid (RFC 8200 4.1).
 */
static int do_frag(const uint8_t *src, size_t len, uint16_t fo, uint32_t ident, size_t chain_end,
		   bool frag_hdr, struct arena *a, struct part *out, unsigned int *skipped)
{
	if ((src[0] >> 4) == 4) {
		size_t hl = (size_t)(src[0] & 0xf) * 4;

		if ((rd16(src + 6) & 0x3fff) || hl + fo >= len) {
			*skipped |= SURG_SKIP_IPFRAG;
			goto whole;
		}
		for (int k = 0; k < 2; k++) {
			size_t from = k ? fo : 0, to = k ? len - hl : fo, plen = hl + (to - from);
			uint8_t *d = arena_take(a, plen, &out[k].off);

			if (!d)
				return -ENOSPC;
			out[k].len = (uint32_t)plen;
			memcpy(d, src, hl);
			memcpy(d + hl, src + hl + from, to - from);
			wr16(d + 6, (uint16_t)(k ? from / 8 : 0x2000));
			wr16(d + 2, (uint16_t)plen);
			wr16(d + 10, 0);
			wr16(d + 10, csum_fold(csum_partial(d, hl, 0)));
		}
		return 2;
	} else {
		size_t ulen, nxt_at;
		uint8_t nxt;

		if (frag_hdr || ip6_unfrag(src, len, &ulen, &nxt_at) ||
		    ulen + fo >= len || ulen + fo < chain_end || len + 16 > PKT_MAX) {
			*skipped |= SURG_SKIP_IPFRAG;
			goto whole;
		}
		nxt = src[nxt_at];
		for (int k = 0; k < 2; k++) {
			size_t from = k ? fo : 0, to = k ? len - ulen : fo, plen = ulen + 8 + (to - from);
			uint8_t *d = arena_take(a, plen, &out[k].off);

			if (!d)
				return -ENOSPC;
			out[k].len = (uint32_t)plen;
			memcpy(d, src, ulen);
			d[nxt_at] = 44;
			d[ulen] = nxt;
			d[ulen + 1] = 0;
			wr16(d + ulen + 2, (uint16_t)(from | (k ? 0 : 1)));
			wr32(d + ulen + 4, ident);
			memcpy(d + ulen + 8, src + ulen + from, to - from);
			wr16(d + 4, (uint16_t)(plen - 40));
		}
		return 2;
	}
whole:
	{
		uint8_t *d = arena_take(a, len, &out[0].off);

		if (!d)
			return -ENOSPC;
		memcpy(d, src, len);
		out[0].len = (uint32_t)len;
		return 1;
	}
}

/* ---- fake ------------------------------------------------------------------- */

static int make_decoy(const struct rule_surgery *s, const struct pkt *p, uint64_t *rng,
		      struct arena *a, struct part *dec, unsigned int *skipped)
{
	size_t hl, plen, dlen, extra = 0;
	uint8_t *d, *l4;
	struct pkt q;
	int r;

	if ((p->l4proto != IPPROTO_TCP && p->l4proto != IPPROTO_UDP) || !p->l4_complete ||
	    p->fragment) {
		*skipped |= SURG_SKIP_FAKE;
		return 0;
	}
	hl = p->l4off + (p->l4proto == IPPROTO_TCP ? (size_t)(p->data[p->l4off + 12] >> 4) * 4 : 8u);
	plen = p->len - hl;
	dlen = s->fake_data ? s->fake_data->len : plen;
	if (s->fake_md5sig) {
		if (p->l4proto != IPPROTO_TCP || hl - p->l4off + 20 > 60)
			*skipped |= SURG_SKIP_MD5SIG;
		else
			extra = 20;
	}
	if (hl + extra + dlen > PKT_MAX) {
		*skipped |= SURG_SKIP_FAKE;
		return 0;
	}
	d = arena_take(a, hl + extra + dlen, &dec->off);
	if (!d)
		return -ENOSPC;
	dec->len = (uint32_t)(hl + extra + dlen);
	memcpy(d, p->data, hl);
	l4 = d + p->l4off;
	if (extra) {
		static const uint8_t md5[20] = { 19, 18, [18] = 1, [19] = 1 };

		memcpy(d + hl, md5, sizeof(md5));
		l4[12] = (uint8_t)((l4[12] & 0x0f) | (((hl - p->l4off + 20) / 4) << 4));
	}
	switch (s->fake) {
	case SURG_FAKE_RANDOM:
		for (size_t i = 0; i < dlen; i += 8) {
			uint64_t x = splitmix64(rng);

			for (size_t k = 0; k < 8 && i + k < dlen; k++, x >>= 8)
				d[hl + extra + i + k] = (uint8_t)x;
		}
		break;
	case SURG_FAKE_FILE:
	case SURG_FAKE_HEX:
		if (s->fake_data)
			memcpy(d + hl + extra, s->fake_data->data, dlen);
		else
			memset(d + hl + extra, 0, dlen);
		break;
	default:
		memset(d + hl + extra, 0, dlen);
		break;
	}
	if (s->fake_ttl)
		d[p->family == AF_INET ? 8 : 7] = s->fake_ttl;
	if (s->fake_badseq) {
		if (p->l4proto == IPPROTO_TCP)
			wr32(l4 + 4, rd32(l4 + 4) - SURG_BADSEQ_DELTA);
		else
			*skipped |= SURG_SKIP_BADSEQ;
	}
	if (p->l4proto == IPPROTO_UDP)
		wr16(l4 + 4, (uint16_t)(8 + dlen));
	r = set_len_parse(&q, d, dec->len);
	if (r)
		return r;
	/* an IPv4 UDP checksum of 0 ("none") stays 0 */
	pkt_csum_full(&q);
	if (s->fake_badsum) {
		size_t co = p->l4proto == IPPROTO_TCP ? 16 : 6;

		wr16(l4 + co, rd16(l4 + co) ^ 0x5555);
	}
	return 1;
}

/* ---- apply ------------------------------------------------------------------ */

int surgery_apply(const struct rule_surgery *s, const uint8_t *pkt, size_t len,
		  const struct surg_marks *mk, uint64_t rnd_seed, struct surg_out *out)
{
	struct arena a = { .o = out, .used = 0 };
	struct part real[SURG_OUT_MAX], parts[SURG_SPLIT_MAX + 1];
	unsigned int nreal = 0, nparts = 0;
	uint64_t rng = rnd_seed;
	struct pkt p;
	uint32_t woff;
	uint8_t *w;
	int r;

	out->n = 0;
	out->skipped = 0;
	if (len == 0 || len > PKT_MAX)
		return -EINVAL;
	w = arena_take(&a, len, &woff);
	if (!w)
		return -ENOSPC;
	memcpy(w, pkt, len);
	memset(&p, 0, sizeof(p));
	p.data = w;
	p.len = len;
	p.cap = len;
	if (pkt_parse(&p) != PKT_OK)
		return -EINVAL;

	/* 1. set-field and strip-tcp-option, in place */
	if (s->nfields)
		apply_fields(s, &p, &out->skipped);
	if (s->keys & SURG_K_STRIP)
		apply_strip(s, &p, &out->skipped);
	if (s->nfields && pkt_parse(&p) != PKT_OK) {
		/* a field made the packet unparsable (ip.proto, ip6.nxt): send it as is */
		out->pkt[0].off = woff;
		out->pkt[0].len = (uint32_t)len;
		out->n = 1;
		return 0;
	}

	/* 2. the decoys */
	if (s->fake) {
		struct part dec;

		r = make_decoy(s, &p, &rng, &a, &dec, &out->skipped);
		if (r < 0)
			return r;
		for (unsigned int i = 0; r && i < s->fake_repeats; i++) {
			struct part c = dec;

			/* the repeats are copies of the one decoy */
			if (i) {
				uint8_t *d = arena_take(&a, dec.len, &c.off);

				if (!d)
					return -ENOSPC;
				memcpy(d, out->buf + dec.off, dec.len);
			}
			out->pkt[out->n].off = c.off;
			out->pkt[out->n].len = c.len;
			out->n++;
		}
	}

	/* 3. split */
	parts[0].off = woff;
	parts[0].len = (uint32_t)len;
	nparts = 1;
	if (s->nsplit) {
		uint32_t at[SURG_SPLIT_MAX];
		unsigned int nat = 0;

		if (p.l4proto == IPPROTO_UDP) {
			out->skipped |= SURG_SKIP_SPLIT_UDP;
		} else if (p.l4proto != IPPROTO_TCP || !p.l4_complete || p.fragment ||
			   (p.tcp_flags & (TCP_SYN | TCP_RST | TCP_URG))) {
			out->skipped |= SURG_SKIP_SPLIT;
		} else {
			size_t hl = p.l4off + (size_t)(w[p.l4off + 12] >> 4) * 4;

			nat = resolve(s, mk, w + hl, (uint32_t)(len - hl), at);
			if (!nat)
				out->skipped |= SURG_SKIP_SPLIT;
		}
		if (nat) {
			r = do_split(&p, at, nat, &a, parts);
			if (r < 0)
				return r;
			nparts = (unsigned int)r;
		}
	}

	/* 4. ipfrag */
	if (s->ipfrag) {
		uint32_t ident = (uint32_t)splitmix64(&rng);
		size_t chain_end = p.l4off;

		/* the fixed L4 header, as Linux checks it (ipv6_frag_thdr_truncated()) */
		if (p.l4proto == IPPROTO_TCP)
			chain_end += 20;
		else if (p.l4proto == IPPROTO_UDP || p.l4proto == IPPROTO_ICMPV6)
			chain_end += 8;

		for (unsigned int i = 0; i < nparts; i++) {
			r = do_frag(out->buf + parts[i].off, parts[i].len, s->ipfrag, ident + i, chain_end,
				    p.frag_hdr, &a, real + nreal, &out->skipped);
			if (r < 0)
				return r;
			nreal += (unsigned int)r;
		}
	} else {
		memcpy(real, parts, sizeof(parts[0]) * nparts);
		nreal = nparts;
	}

	if (out->n + nreal > SURG_OUT_MAX)
		return -ENOSPC;
	for (unsigned int i = 0; i < nreal; i++) {
		unsigned int k = s->disorder ? nreal - 1 - i : i;

		out->pkt[out->n].off = real[k].off;
		out->pkt[out->n].len = real[k].len;
		out->n++;
	}
	return 0;
}

bool surgery_whole(const struct rule_surgery *s, const struct pkt *p, unsigned int parts,
		   unsigned int fragments, unsigned int decoys)
{
	bool tcp_data = false, udp = false;
	size_t hl;

	if (!p->l4_complete || p->fragment)
		return false;
	if (p->l4proto == IPPROTO_TCP) {
		hl = p->l4off + (size_t)(p->data[p->l4off + 12] >> 4) * 4;
		tcp_data = p->len > hl && !(p->tcp_flags & (TCP_SYN | TCP_RST | TCP_URG));
	} else if (p->l4proto == IPPROTO_UDP) {
		udp = true;
	}
	if (s->nsplit && tcp_data && parts <= 1)
		return true;
	if (s->ipfrag && (tcp_data || udp) && !fragments)
		return true;
	if (s->fake && (tcp_data || (udp && p->len > (size_t)p->l4off + 8)) && !decoys)
		return true;
	return false;
}
