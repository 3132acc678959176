// SPDX-License-Identifier: GPL-2.0-or-later
/* Host-name sets: a hash of lowercase names probed at label boundaries; see hostset.h. */
#include "hostset.h"
#include "listfile.h"
#include "util.h"

#define F_EXACT 1u	/* "name" */
#define F_SUFFIX 2u	/* "*.name": names strictly below it */

struct slot {
	uint32_t off;	/* into names; UINT32_MAX: empty */
	uint32_t hash;
	uint8_t len;
	uint8_t flags;
};

struct hostset {
	struct slot *slots;
	size_t mask;		/* slots - 1, a power of two minus one */
	char *names;		/* lowercase names, back to back, not terminated */
	size_t used;		/* bytes of names */
	size_t cap;
	uint64_t lines, exact, suffix;
	size_t entries;
};

static inline uint8_t lower(uint8_t c)
{
	return c >= 'A' && c <= 'Z' ? (uint8_t)(c | 0x20) : c;
}

/*
 * FNV-1a over the lowercase bytes from the last to the first: the state
 * after byte i is the hash of the suffix starting at i, so a lookup gets
 * every suffix's hash in one pass.
 */
#define FNV_BASIS 2166136261u
#define FNV_PRIME 16777619u

static inline uint32_t fnv_step(uint32_t h, uint8_t c)
{
	return (h ^ lower(c)) * FNV_PRIME;
}

static uint32_t hash_name(const char *s, size_t len)
{
	uint32_t h = FNV_BASIS;

	while (len)
		h = fnv_step(h, (uint8_t)s[--len]);
	return h;
}

/* Same bytes, ignoring ASCII case; STORED is already lowercase. */
static bool name_eq(const char *stored, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((uint8_t)stored[i] != lower((uint8_t)s[i]))
			return false;
	return true;
}

static struct slot *find(const struct hostset *s, const char *name, size_t len, uint32_t h)
{
	for (size_t i = h & s->mask;; i = (i + 1) & s->mask) {
		struct slot *sl = &s->slots[i];

		if (sl->off == UINT32_MAX)
			return sl;
		if (sl->hash == h && sl->len == len && name_eq(s->names + sl->off, name, len))
			return sl;
	}
}

static int rehash(struct hostset *s, size_t nslots)
{
	struct slot *old = s->slots, *ns;
	size_t omask = s->mask;

	ns = reallocarray(NULL, nslots, sizeof(*ns));
	if (!ns)
		return -ENOMEM;
	for (size_t i = 0; i < nslots; i++)
		ns[i].off = UINT32_MAX;
	s->slots = ns;
	s->mask = nslots - 1;
	if (old) {
		for (size_t i = 0; i <= omask; i++) {
			struct slot *sl;

			if (old[i].off == UINT32_MAX)
				continue;
			sl = find(s, s->names + old[i].off, old[i].len, old[i].hash);
			*sl = old[i];
		}
	}
	free(old);
	return 0;
}

static bool label_char(uint8_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_';
}

/* A name of labels: 0 or a reason. */
static const char *check_name(const char *p, size_t len)
{
	size_t label = 0;

	if (!len)
		return "empty name";
	if (len > HOSTSET_NAME_MAX)
		return "name longer than 253 bytes";
	for (size_t i = 0; i < len; i++) {
		uint8_t c = (uint8_t)p[i];

		if (c == '.') {
			if (!label)
				return "empty label";
			label = 0;
		} else if (label_char(c)) {
			if (++label > HOSTSET_LABEL_MAX)
				return "label longer than 63 bytes";
		} else if (c == '*') {
			return "'*' only as the whole first label (\"*.example.com\")";
		} else {
			return "not a host name character";
		}
	}
	if (!label)
		return "empty label";
	return NULL;
}

static int add_entry(void *ctx, const char *line, size_t len, char *err, size_t errlen)
{
	struct hostset *s = ctx;
	char quoted[80];
	const char *why;
	unsigned int flag = F_EXACT;
	struct slot *sl;
	uint32_t h;

	if (s->lines >= HOSTSET_MAX) {
		return err_set(err, errlen, -E2BIG, "more than %u names in one set", HOSTSET_MAX);
	}
	if (len >= 2 && line[0] == '*' && line[1] == '.') {
		flag = F_SUFFIX;
		line += 2;
		len -= 2;
	}
	if (len && line[len - 1] == '.')
		len--;
	why = check_name(line, len);
	if (why) {
		str_sanitize(quoted, sizeof(quoted), line);
		return err_set(err, errlen, -EINVAL, "%s: \"%s\"", why, quoted);
	}
	s->lines++;

	/* Keep the load factor at or below 1/2. */
	if ((s->entries + 1) * 2 > s->mask + 1 && rehash(s, (s->mask + 1) * 2) < 0)
		return -ENOMEM;
	h = hash_name(line, len);
	sl = find(s, line, len, h);
	if (sl->off == UINT32_MAX) {
		if (s->used + len > s->cap) {
			size_t ncap = s->cap * 2;
			char *p;

			while (ncap < s->used + len)
				ncap *= 2;
			p = realloc(s->names, ncap);
			if (!p)
				return -ENOMEM;
			s->names = p;
			s->cap = ncap;
		}
		for (size_t i = 0; i < len; i++)
			s->names[s->used + i] = (char)lower((uint8_t)line[i]);
		*sl = (struct slot){ .off = (uint32_t)s->used, .hash = h, .len = (uint8_t)len };
		s->used += len;
		s->entries++;
	}
	if (!(sl->flags & flag)) {
		sl->flags |= (uint8_t)flag;
		if (flag == F_EXACT)
			s->exact++;
		else
			s->suffix++;
	}
	return 0;
}

static struct hostset *hostset_new(void)
{
	struct hostset *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->cap = 4096;
	s->names = malloc(s->cap);
	if (!s->names || rehash(s, 1024) < 0)
		return hostset_free(s);
	return s;
}

static int build(struct hostset *s, int loaded, struct hostset **ret)
{
	char *p;

	if (loaded < 0) {
		hostset_free(s);
		return loaded;
	}
	/* Give back the arena's slack. */
	p = realloc(s->names, s->used ? s->used : 1);
	if (p) {
		s->names = p;
		s->cap = s->used ? s->used : 1;
	}
	*ret = s;
	return 0;
}

int hostset_load(const char *path, struct hostset **ret, char *err, size_t errlen)
{
	struct hostset *s = hostset_new();

	if (!s) {
		return err_set(err, errlen, -ENOMEM, "%s: out of memory", path);
	}
	return build(s, listfile_load(path, add_entry, s, err, errlen), ret);
}

int hostset_from_text(const char *buf, size_t len, const char *name, struct hostset **ret,
		      char *err, size_t errlen)
{
	struct hostset *s = hostset_new();

	if (!s) {
		return err_set(err, errlen, -ENOMEM, "%s: out of memory", name);
	}
	return build(s, listfile_text(buf, len, name, add_entry, s, err, errlen), ret);
}

bool hostset_contains(const struct hostset *s, const char *name, size_t len)
{
	uint32_t h = FNV_BASIS;

	if (len && name[len - 1] == '.')
		len--;
	if (!len || len > HOSTSET_NAME_MAX)
		return false;
	/*
	 * From the end: at each label start i (after a '.'), the suffix
	 * name[i..len) is probed for "*.suffix", which needs a label before it;
	 * the whole name, at i == 0, for "name".
	 */
	for (size_t i = len; i-- > 0;) {
		const struct slot *sl;

		h = fnv_step(h, (uint8_t)name[i]);
		if (i == 0) {
			sl = find(s, name, len, h);
			return sl->off != UINT32_MAX && (sl->flags & F_EXACT);
		}
		if (name[i - 1] != '.')
			continue;
		sl = find(s, name + i, len - i, h);
		/* "*.x" needs a non-empty label before the dot: i >= 2. */
		if (sl->off != UINT32_MAX && (sl->flags & F_SUFFIX) && i >= 2)
			return true;
	}
	return false;
}

void hostset_stats(const struct hostset *s, struct hostset_stats *st)
{
	*st = (struct hostset_stats){
		.names = s->lines,
		.exact = s->exact,
		.suffix = s->suffix,
		.bytes = sizeof(*s) + (s->mask + 1) * sizeof(*s->slots) + s->cap,
	};
}

struct hostset *hostset_free(struct hostset *s)
{
	if (s) {
		free(s->slots);
		free(s->names);
		free(s);
	}
	return NULL;
}
