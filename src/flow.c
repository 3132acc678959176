// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The flow table: a chained hash over an index array (heads[] of entry
 * indices, power of two >= entries), the entries in one array with an
 * intrusive LRU list and a free list, and a pool of reassembly buffers.
 * Everything is allocated by flow_table_new(); calloc() of the large arrays
 * is backed by untouched pages until flows use them.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>

#include "flow.h"
#include "hello.h"
#include "packet.h"
#include "util.h"

#define NIL UINT32_MAX
#define NS_PER_S 1000000000ull

#define FLOW_TCP_SYN 0x01	/* SYN without ACK from the original side */
#define FLOW_TCP_SYNACK 0x02	/* SYN+ACK from the reply side */
#define FLOW_TCP_MIDSTREAM 0x04	/* first packet was no SYN: picked up mid-connection */

#define TCPF_FIN 0x01
#define TCPF_SYN 0x02
#define TCPF_RST 0x04
#define TCPF_ACK 0x10

static const uint32_t timeout_default[FLOW_TO_MAX] = {
	[FLOW_TO_TCP_NEW] = 60,
	[FLOW_TO_TCP_ESTABLISHED] = 7200,
	[FLOW_TO_TCP_CLOSING] = 10,
	[FLOW_TO_UDP_NEW] = 30,
	[FLOW_TO_UDP_ESTABLISHED] = 120,
	[FLOW_TO_ICMP] = 30,
};

struct flow_table {
	struct flow *e;
	uint32_t *heads;
	uint32_t nmax, hmask;
	uint32_t free_head;	/* through hnext: entries used once and freed */
	uint32_t fresh;		/* entries [fresh, nmax) were never used (pages not touched) */
	uint32_t lru_head, lru_tail;	/* most / least recently used */
	uint32_t hand;		/* flow_expire()'s sweep position */
	uint64_t sipkey[2];
	uint64_t timeout_ns[FLOW_TO_MAX];

	uint8_t *rbufs;		/* nrbufs * FLOW_RBUF_SIZE */
	uint16_t *rfree;	/* stack of free buffer indices */
	uint32_t nrbufs, nrfree;

	struct flow_stats st;
};

int flow_params_check(const struct flow_params *p, char *err, size_t errlen)
{
	if (p->max_entries && (p->max_entries < FLOW_MAX_MIN || p->max_entries > FLOW_MAX_MAX)) {
		snprintf(err, errlen, "flow entries %u not in %u..%u", p->max_entries, FLOW_MAX_MIN,
			 FLOW_MAX_MAX);
		return -ERANGE;
	}
	if (p->rbufs > FLOW_RBUFS_MAX) {
		snprintf(err, errlen, "reassembly buffers %u not in 1..%u", p->rbufs, FLOW_RBUFS_MAX);
		return -ERANGE;
	}
	for (size_t i = 0; i < FLOW_TO_MAX; i++) {
		if (p->timeout_s[i] > FLOW_TIMEOUT_MAX) {
			snprintf(err, errlen, "flow timeout %u s not in 1..%u", p->timeout_s[i],
				 FLOW_TIMEOUT_MAX);
			return -ERANGE;
		}
	}
	if (errlen)
		err[0] = '\0';
	return 0;
}

struct flow_table *flow_table_free(struct flow_table *t)
{
	if (!t)
		return NULL;
	free(t->e);
	free(t->heads);
	free(t->rbufs);
	free(t->rfree);
	free(t);
	return NULL;
}

/*
 * Ask for transparent huge pages over a large array: a lookup touches
 * random entries of up to hundreds of MiB, and with 4 KiB pages nearly
 * every one is a TLB miss.  Advice only; its failure changes nothing.
 */
static void advise_huge(void *p, size_t len)
{
	uintptr_t a = ((uintptr_t)p + 4095) & ~(uintptr_t)4095;
	uintptr_t z = ((uintptr_t)p + len) & ~(uintptr_t)4095;

	if (len >= (4u << 20) && z > a)
		(void)madvise((void *)a, z - a, MADV_HUGEPAGE);
}

int flow_table_new(const struct flow_params *params, struct flow_table **ret)
{
	static const struct flow_params none;
	const struct flow_params *p = params ? params : &none;
	struct flow_table *t;
	char err[96];
	uint32_t hsize;
	int r;

	r = flow_params_check(p, err, sizeof(err));
	if (r < 0)
		return r;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->nmax = p->max_entries ? p->max_entries : FLOW_MAX_DEFAULT;
	t->nrbufs = p->rbufs ? p->rbufs : FLOW_RBUFS_DEFAULT;
	for (hsize = 1; hsize < t->nmax; hsize <<= 1)
		;
	t->hmask = hsize - 1;
	t->e = calloc(t->nmax, sizeof(*t->e));
	t->heads = malloc((size_t)hsize * sizeof(*t->heads));
	t->rbufs = calloc(t->nrbufs, FLOW_RBUF_SIZE);
	t->rfree = calloc(t->nrbufs, sizeof(*t->rfree));
	if (!t->e || !t->heads || !t->rbufs || !t->rfree) {
		r = -ENOMEM;
		goto fail;
	}
	advise_huge(t->e, (size_t)t->nmax * sizeof(*t->e));
	advise_huge(t->heads, (size_t)hsize * sizeof(*t->heads));
	memset(t->heads, 0xff, (size_t)hsize * sizeof(*t->heads));
	/* Entries are taken in order as needed: the memory is touched as the table fills. */
	t->free_head = NIL;
	t->fresh = 0;
	t->lru_head = t->lru_tail = NIL;
	for (uint32_t i = 0; i < t->nrbufs; i++)
		t->rfree[i] = (uint16_t)(t->nrbufs - 1 - i);
	t->nrfree = t->nrbufs;
	for (size_t i = 0; i < FLOW_TO_MAX; i++)
		t->timeout_ns[i] = (uint64_t)(p->timeout_s[i] ? p->timeout_s[i] : timeout_default[i]) *
				   NS_PER_S;
	if (p->seed) {
		uint64_t x = p->seed;

		t->sipkey[0] = splitmix64(&x);
		t->sipkey[1] = splitmix64(&x);
	} else if (getrandom(t->sipkey, sizeof(t->sipkey), GRND_NONBLOCK) != sizeof(t->sipkey)) {
		r = -EAGAIN;	/* no entropy yet: refuse rather than hash predictably */
		goto fail;
	}
	t->st.max_entries = t->nmax;
	t->st.rbufs_max = t->nrbufs;
	*ret = t;
	return 0;
fail:
	flow_table_free(t);
	return r;
}

/* ---- keys ------------------------------------------------------------------ */

int flow_key_from_pkt(const struct pkt *p, struct flow_key *k, unsigned int *side)
{
	size_t alen = p->family == AF_INET ? 4 : 16;
	const uint8_t *sa = pkt_saddr(p), *da = pkt_daddr(p);
	uint16_t sp = 0, dp = 0;
	int c;

	if (!p->first_fragment)
		return -EINVAL;
	switch (p->l4proto) {
	case IPPROTO_TCP:
	case IPPROTO_UDP:
		if (!p->l4_complete)
			return -EINVAL;
		sp = p->sport;
		dp = p->dport;
		break;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		if ((p->l4proto == IPPROTO_ICMP) != (p->family == AF_INET))
			break;	/* ICMP in IPv6 or ICMPv6 in IPv4: an unknown protocol */
		if (!p->l4_complete || p->l4off + 8u > p->len)
			return -EINVAL;
		if (!pkt_icmp_is_echo(p->family, p->icmp_type))
			return -ENOENT;
		sp = dp = get_be16(p->data + p->l4off + 4);
		break;
	default:
		break;
	}

	memset(k, 0, sizeof(*k));
	k->family = (uint8_t)p->family;
	k->proto = p->l4proto;
	c = memcmp(sa, da, alen);
	if (c < 0 || (c == 0 && sp <= dp)) {
		memcpy(k->addr[0], sa, alen);
		memcpy(k->addr[1], da, alen);
		k->port[0] = sp;
		k->port[1] = dp;
		*side = 0;
	} else {
		memcpy(k->addr[0], da, alen);
		memcpy(k->addr[1], sa, alen);
		k->port[0] = dp;
		k->port[1] = sp;
		*side = 1;
	}
	return 0;
}

size_t flow_pkt_payload_len(const struct pkt *p)
{
	size_t end = pkt_ip_len(p), hl = 0;

	if (!p->l4_complete || end > p->len)
		end = p->len;
	switch (p->l4proto) {
	case IPPROTO_TCP:
		if (p->l4_complete)
			hl = (size_t)(p->data[p->l4off + 12] >> 4) * 4;
		break;
	case IPPROTO_UDP:
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		hl = 8;
		break;
	}
	if (!p->l4_complete || p->l4off + hl > end)
		return 0;
	return end - p->l4off - hl;
}

/*
 * SipHash-1-3 of the key's five 64-bit words under a secret key, as the
 * kernel's conntrack hashes its tuples: the addresses and ports are the
 * peer's to choose, and a hash they could predict would let them pile
 * flows into one chain.
 */
#define ROTL(x, b) (((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND(v0, v1, v2, v3)                                                      \
	do {                                                                          \
		v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32);             \
		v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2;                                \
		v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0;                                \
		v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32);             \
	} while (0)

static uint32_t key_hash(const struct flow_table *t, const struct flow_key *k)
{
	uint64_t w[sizeof(*k) / 8];
	uint64_t v0 = t->sipkey[0] ^ 0x736f6d6570736575ull, v1 = t->sipkey[1] ^ 0x646f72616e646f6dull;
	uint64_t v2 = t->sipkey[0] ^ 0x6c7967656e657261ull, v3 = t->sipkey[1] ^ 0x7465646279746573ull;
	uint64_t b = (uint64_t)sizeof(*k) << 56;

	memcpy(w, k, sizeof(w));
	for (size_t i = 0; i < ARRAY_SIZE(w); i++) {
		v3 ^= w[i];
		SIPROUND(v0, v1, v2, v3);
		v0 ^= w[i];
	}
	v3 ^= b;
	SIPROUND(v0, v1, v2, v3);
	v0 ^= b;
	v2 ^= 0xff;
	SIPROUND(v0, v1, v2, v3);
	SIPROUND(v0, v1, v2, v3);
	SIPROUND(v0, v1, v2, v3);
	b = v0 ^ v1 ^ v2 ^ v3;
	return (uint32_t)(b ^ b >> 32) & t->hmask;
}

/* ---- lists ----------------------------------------------------------------- */

static void lru_unlink(struct flow_table *t, uint32_t i)
{
	struct flow *f = &t->e[i];

	if (f->lru_prev != NIL)
		t->e[f->lru_prev].lru_next = f->lru_next;
	else
		t->lru_head = f->lru_next;
	if (f->lru_next != NIL)
		t->e[f->lru_next].lru_prev = f->lru_prev;
	else
		t->lru_tail = f->lru_prev;
}

static void lru_push_head(struct flow_table *t, uint32_t i)
{
	struct flow *f = &t->e[i];

	f->lru_prev = NIL;
	f->lru_next = t->lru_head;
	if (t->lru_head != NIL)
		t->e[t->lru_head].lru_prev = i;
	else
		t->lru_tail = i;
	t->lru_head = i;
}

static void lru_touch(struct flow_table *t, uint32_t i)
{
	if (t->lru_head == i)
		return;
	lru_unlink(t, i);
	lru_push_head(t, i);
}

/* Take entry i out of the table: hash chain, LRU, its buffer; onto the free list. */
static void flow_remove(struct flow_table *t, uint32_t i)
{
	struct flow *f = &t->e[i];
	uint32_t *pp = &t->heads[key_hash(t, &f->key)];

	while (*pp != i)
		pp = &t->e[*pp].hnext;
	*pp = f->hnext;
	lru_unlink(t, i);
	flow_rbuf_release(t, f);
	f->used = 0;
	f->hnext = t->free_head;
	t->free_head = i;
	t->st.entries--;
}

static bool flow_expired(const struct flow *f, uint64_t now_ns)
{
	return f->expires_ns <= now_ns;
}

static uint64_t flow_timeout(const struct flow_table *t, const struct flow *f)
{
	switch (f->key.proto) {
	case IPPROTO_TCP:
		if (f->state == FLOW_STATE_CLOSING)
			return t->timeout_ns[FLOW_TO_TCP_CLOSING];
		if (f->state == FLOW_STATE_ESTABLISHED)
			return t->timeout_ns[FLOW_TO_TCP_ESTABLISHED];
		return t->timeout_ns[FLOW_TO_TCP_NEW];
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		if ((f->key.proto == IPPROTO_ICMP) == (f->key.family == AF_INET))
			return t->timeout_ns[FLOW_TO_ICMP];
		break;
	}
	if (f->state == FLOW_STATE_ESTABLISHED)
		return t->timeout_ns[FLOW_TO_UDP_ESTABLISHED];
	return t->timeout_ns[FLOW_TO_UDP_NEW];
}

/* (Re)start entry f as a new flow opened by side. */
static void flow_init(struct flow_table *t, struct flow *f, unsigned int side, uint64_t now_ns)
{
	flow_rbuf_release(t, f);
	f->opener = (uint8_t)side;
	f->state = FLOW_STATE_NEW;
	f->tcp_seen = 0;
	f->pkts[0] = f->pkts[1] = 0;
	f->bytes[0] = f->bytes[1] = 0;
	f->first_ns = f->last_ns = now_ns;
	f->host[0] = '\0';
	f->host_kind = 0;
	f->host_done = 0;
	f->host_seq = 0;
	f->fp_gen = 0;
	f->expires_ns = now_ns + flow_timeout(t, f);
	t->st.created++;
}

/* ---- lookup ---------------------------------------------------------------- */

static uint32_t find_index(const struct flow_table *t, const struct flow_key *k, uint32_t h)
{
	for (uint32_t i = t->heads[h]; i != NIL; i = t->e[i].hnext) {
		if (!memcmp(&t->e[i].key, k, sizeof(*k)))
			return i;
	}
	return NIL;
}

struct flow *flow_find(struct flow_table *t, const struct flow_key *k, uint64_t now_ns)
{
	uint32_t i = find_index(t, k, key_hash(t, k));

	if (i == NIL || flow_expired(&t->e[i], now_ns))
		return NULL;
	return &t->e[i];
}

void flow_lookup_or_add(struct flow_table *t, const struct flow_key *k, unsigned int side,
			uint64_t now_ns, struct flow **ret, bool *is_new)
{
	uint32_t h = key_hash(t, k), i = find_index(t, k, h);
	struct flow *f;

	if (i != NIL) {
		f = &t->e[i];
		lru_touch(t, i);
		*is_new = flow_expired(f, now_ns);
		if (*is_new) {
			t->st.expired++;
			flow_init(t, f, side, now_ns);
		}
		*ret = f;
		return;
	}

	if (t->free_head == NIL && t->fresh < t->nmax) {
		t->e[t->fresh].hnext = NIL;
		t->free_head = t->fresh++;
	} else if (t->free_head == NIL) {
		/* Full: the least recently used goes, expired or not. */
		i = t->lru_tail;
		if (flow_expired(&t->e[i], now_ns))
			t->st.expired++;
		else
			t->st.evicted++;
		flow_remove(t, i);
	}
	i = t->free_head;
	f = &t->e[i];
	t->free_head = f->hnext;
	f->key = *k;
	f->used = 1;
	f->rbuf = 0;
	f->rbuf_len = 0;
	f->hnext = t->heads[h];
	t->heads[h] = i;
	lru_push_head(t, i);
	t->st.entries++;
	flow_init(t, f, side, now_ns);
	*is_new = true;
	*ret = f;
}

int flow_lookup_pkt(struct flow_table *t, const struct pkt *p, uint64_t now_ns, struct flow **ret,
		    enum flow_dir *dir, bool *is_new)
{
	struct flow_key k;
	unsigned int side;
	struct flow *f;
	int r;

	r = flow_key_from_pkt(p, &k, &side);
	if (r < 0)
		return r;
	flow_lookup_or_add(t, &k, side, now_ns, &f, is_new);
	if (!*is_new && p->l4proto == IPPROTO_TCP && f->state == FLOW_STATE_CLOSING &&
	    (p->tcp_flags & (TCPF_SYN | TCPF_ACK)) == TCPF_SYN) {
		flow_init(t, f, side, now_ns);
		*is_new = true;
	}
	*dir = flow_dir_of(f, side);
	*ret = f;
	return 0;
}

/* ---- accounting ------------------------------------------------------------ */

static void tcp_advance(struct flow *f, enum flow_dir dir, uint8_t flags)
{
	if (f->state == FLOW_STATE_CLOSING)
		return;
	if (flags & (TCPF_RST | TCPF_FIN)) {
		f->state = FLOW_STATE_CLOSING;
		return;
	}
	if (f->state == FLOW_STATE_ESTABLISHED)
		return;
	/* A flow not opened by a bare SYN was picked up mid-connection. */
	if (f->pkts[0] + f->pkts[1] == 1 && (flags & (TCPF_SYN | TCPF_ACK)) != TCPF_SYN)
		f->tcp_seen |= FLOW_TCP_MIDSTREAM;
	if (f->tcp_seen & FLOW_TCP_MIDSTREAM) {
		/* Like conntrack's loose pickup: established once both sides spoke. */
		if (f->pkts[0] && f->pkts[1])
			f->state = FLOW_STATE_ESTABLISHED;
		return;
	}
	if (dir == FLOW_DIR_ORIGINAL && (flags & (TCPF_SYN | TCPF_ACK)) == TCPF_SYN)
		f->tcp_seen |= FLOW_TCP_SYN;
	else if (dir == FLOW_DIR_REPLY && (flags & (TCPF_SYN | TCPF_ACK)) == (TCPF_SYN | TCPF_ACK) &&
		 (f->tcp_seen & FLOW_TCP_SYN))
		f->tcp_seen |= FLOW_TCP_SYNACK;
	else if (dir == FLOW_DIR_ORIGINAL && (flags & (TCPF_SYN | TCPF_ACK)) == TCPF_ACK &&
		 (f->tcp_seen & FLOW_TCP_SYNACK))
		f->state = FLOW_STATE_ESTABLISHED;
}

uint64_t flow_account(struct flow_table *t, struct flow *f, enum flow_dir dir, size_t payload_len,
		      uint8_t tcp_flags, uint64_t now_ns, uint64_t *bytes_before)
{
	unsigned int d = dir == FLOW_DIR_REPLY;
	uint64_t pos;

	if (bytes_before)
		*bytes_before = f->bytes[d];
	pos = ++f->pkts[d];
	f->bytes[d] += payload_len;
	if (now_ns > f->last_ns)
		f->last_ns = now_ns;
	if (f->key.proto == IPPROTO_TCP)
		tcp_advance(f, dir, tcp_flags);
	else if (f->pkts[0] && f->pkts[1])
		f->state = FLOW_STATE_ESTABLISHED;
	f->expires_ns = f->last_ns + flow_timeout(t, f);
	return pos;
}

unsigned int flow_expire(struct flow_table *t, uint64_t now_ns, unsigned int budget)
{
	unsigned int removed = 0;

	/* The LRU tail first: the idlest flows, often expired in a row. */
	while (budget && t->lru_tail != NIL && flow_expired(&t->e[t->lru_tail], now_ns)) {
		flow_remove(t, t->lru_tail);
		t->st.expired++;
		removed++;
		budget--;
	}
	/*
	 * Then a sweep over the slots: a short timeout (closing TCP) can
	 * expire a flow that is not at the tail.
	 */
	for (; budget && t->st.entries; budget--) {
		uint32_t i = t->hand;

		t->hand = i + 1 < t->fresh ? i + 1 : 0;
		if (t->e[i].used && flow_expired(&t->e[i], now_ns)) {
			flow_remove(t, i);
			t->st.expired++;
			removed++;
		}
	}
	return removed;
}

/* ---- host name, reassembly ------------------------------------------------- */

int flow_set_host(struct flow *f, const char *name, size_t len)
{
	if (!len || len > FLOW_HOST_MAX || memchr(name, '\0', len))
		return -EINVAL;
	memcpy(f->host, name, len);
	f->host[len] = '\0';
	return 0;
}

int flow_rbuf_append(struct flow_table *t, struct flow *f, const void *data, size_t len)
{
	size_t room;

	if (!f->rbuf) {
		if (!t->nrfree) {
			t->st.pool_exhausted++;
			return -ENOBUFS;
		}
		f->rbuf = (uint16_t)(t->rfree[--t->nrfree] + 1);
		f->rbuf_len = 0;
		t->st.rbufs_used++;
	}
	room = FLOW_RBUF_SIZE - f->rbuf_len;
	if (len > room)
		len = room;
	memcpy(t->rbufs + (size_t)(f->rbuf - 1) * FLOW_RBUF_SIZE + f->rbuf_len, data, len);
	f->rbuf_len = (uint16_t)(f->rbuf_len + len);
	return f->rbuf_len;
}

const uint8_t *flow_rbuf_data(const struct flow_table *t, const struct flow *f, size_t *len)
{
	*len = 0;
	if (!f->rbuf)
		return NULL;
	*len = f->rbuf_len;
	return t->rbufs + (size_t)(f->rbuf - 1) * FLOW_RBUF_SIZE;
}

void flow_rbuf_release(struct flow_table *t, struct flow *f)
{
	if (!f->rbuf)
		return;
	t->rfree[t->nrfree++] = (uint16_t)(f->rbuf - 1);
	t->st.rbufs_used--;
	f->rbuf = 0;
	f->rbuf_len = 0;
}

/* ---- the host name a flow's client asks for -------------------------------- */

/*
 * (tls-sni, http-host, quic-sni):
 * looked for in the first client bytes, then remembered in the flow (and
 * its search ended) for every later packet.  f->host_done: 0 nothing seen
 * yet, HOST_SYN a TCP SYN gave the first sequence number (f->host_seq is
 * the next byte wanted), HOST_DONE the search ended.
 */
enum { HOST_NONE, HOST_SYN, HOST_DONE };

bool flow_host_decided(const struct flow *f)
{
	return f->host_done == HOST_DONE;
}
#define HOST_QUIC_TRIES 3	/* client datagrams tried for a QUIC Initial */

static void host_found(struct flow_table *t, struct flow *f, uint8_t kind, const char *name,
		       size_t len)
{
	char low[FLOW_HOST_MAX];

	if (len && len <= FLOW_HOST_MAX) {
		for (size_t i = 0; i < len; i++)
			low[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] + 32 : name[i]);
		if (flow_set_host(f, low, len) == 0)
			f->host_kind = kind;
	}
	f->host_done = HOST_DONE;
	flow_rbuf_release(t, f);
}

/* The stream's first bytes so far (data, len): found, given up, or wait for more. */
static void host_stream(struct flow_table *t, struct flow *f, const uint8_t *data, size_t len)
{
	uint32_t off = 0, nlen = 0;
	size_t need = 0;
	int r;

	if (data[0] == 0x16) {
		r = hello_tls_sni(data, len, &off, &nlen, &need);
		if (r == 0)
			host_found(t, f, PKT_NAME_TLS, (const char *)data + off, nlen);
	} else {
		r = hello_http_host(data, len, &off, &nlen);
		if (r == 0)
			host_found(t, f, PKT_NAME_HTTP, (const char *)data + off, nlen);
	}
	if (r == -EAGAIN && len < FLOW_RBUF_SIZE)
		return;
	if (r != 0) {
		f->host_done = HOST_DONE;
		flow_rbuf_release(t, f);
	}
}

void flow_host_feed(struct flow_table *t, struct flow *f, enum flow_dir dir, const struct pkt *p)
{
	size_t len = flow_pkt_payload_len(p), held;
	const uint8_t *data, *buf;
	uint32_t seq, want;
	char name[HELLO_NAME_MAX + 1];
	int r;

	if (f->host_done == HOST_DONE || dir != FLOW_DIR_ORIGINAL || !p->l4_complete)
		return;
	if (p->l4proto == IPPROTO_UDP) {
		if (!len)
			return;
		data = p->data + p->l4off + 8;
		/* A QUIC long header (Initial or not: hello_quic_sni() says). */
		r = (data[0] & 0xc0) == 0xc0 ? hello_quic_sni(data, len, name, sizeof(name)) : -ENOENT;
		if (r == 0)
			host_found(t, f, PKT_NAME_QUIC, name, strnlen(name, sizeof(name)));
		else if (r != -EAGAIN || f->pkts[FLOW_DIR_ORIGINAL] + 1 >= HOST_QUIC_TRIES)
			f->host_done = HOST_DONE;
		return;
	}
	if (p->l4proto != IPPROTO_TCP) {
		f->host_done = HOST_DONE;
		return;
	}
	seq = (uint32_t)p->data[p->l4off + 4] << 24 | (uint32_t)p->data[p->l4off + 5] << 16 |
	      (uint32_t)p->data[p->l4off + 6] << 8 | p->data[p->l4off + 7];
	if ((p->tcp_flags & (0x02 | 0x10)) == 0x02) {	/* SYN without ACK */
		f->host_seq = seq + 1;
		f->host_done = HOST_SYN;
		return;
	}
	/* Picked up in the middle: where the stream starts is not known. */
	if (f->host_done != HOST_SYN) {
		f->host_done = HOST_DONE;
		return;
	}
	if (!len)
		return;
	data = p->data + p->l4off + (size_t)(p->data[p->l4off + 12] >> 4) * 4;
	buf = flow_rbuf_data(t, f, &held);
	want = f->host_seq + (uint32_t)held;
	/* Bytes before want were seen (a retransmission); after it, a gap: wait for it. */
	if ((int32_t)(seq - want) > 0)
		return;
	if ((uint32_t)(want - seq) >= len)
		return;
	data += want - seq;
	len -= want - seq;
	if (!buf) {
		/* The common case: the whole hello in the first segment, read in place. */
		host_stream(t, f, data, len);
		if (f->host_done == HOST_DONE)
			return;
	}
	r = flow_rbuf_append(t, f, data, len);
	if (r < 0) {
		f->host_done = HOST_DONE;	/* the pool is empty: counted, given up */
		return;
	}
	/* The first segment was looked at in place already. */
	if (!buf)
		return;
	buf = flow_rbuf_data(t, f, &held);
	host_stream(t, f, buf, held);
}

/* ---- listing --------------------------------------------------------------- */

/* host is suffix or ends in "." suffix, case-insensitively. */
static bool host_suffix(const char *host, const char *suffix)
{
	size_t hl = strlen(host), sl = strlen(suffix);

	if (sl > hl || strcasecmp(host + hl - sl, suffix))
		return false;
	return sl == hl || host[hl - sl - 1] == '.' || suffix[0] == '.';
}

static bool filter_match(const struct flow *f, const struct flow_filter *flt)
{
	size_t alen = f->key.family == AF_INET ? 4 : 16;

	if (!flt)
		return true;
	if (flt->family && flt->family != f->key.family)
		return false;
	if (flt->proto && flt->proto != f->key.proto)
		return false;
	if (flt->state_mask && !(flt->state_mask & (1u << f->state)))
		return false;
	if (flt->port && flt->port != f->key.port[0] && flt->port != f->key.port[1])
		return false;
	if (flt->has_addr && memcmp(flt->addr, f->key.addr[0], alen) &&
	    memcmp(flt->addr, f->key.addr[1], alen))
		return false;
	if (flt->host && !host_suffix(f->host, flt->host))
		return false;
	return true;
}

int flow_foreach(struct flow_table *t, const struct flow_filter *flt, uint64_t now_ns,
		 int (*cb)(const struct flow *f, void *arg), void *arg)
{
	for (uint32_t i = t->lru_head; i != NIL; i = t->e[i].lru_next) {
		const struct flow *f = &t->e[i];
		int r;

		if (flow_expired(f, now_ns) || !filter_match(f, flt))
			continue;
		r = cb(f, arg);
		if (r)
			return r;
	}
	return 0;
}

void flow_table_stats(const struct flow_table *t, struct flow_stats *s)
{
	*s = t->st;
}

const char *flow_state_name(enum flow_state s)
{
	static const char *const names[FLOW_STATE_MAX] = {
		[FLOW_STATE_NEW] = "new",
		[FLOW_STATE_ESTABLISHED] = "established",
		[FLOW_STATE_CLOSING] = "closing",
	};

	return (unsigned int)s < FLOW_STATE_MAX ? names[s] : "?";
}

static const char *proto_name(uint8_t proto, char *buf, size_t len)
{
	switch (proto) {
	case IPPROTO_TCP:
		return "tcp";
	case IPPROTO_UDP:
		return "udp";
	case IPPROTO_ICMP:
		return "icmp";
	case IPPROTO_ICMPV6:
		return "icmp6";
	}
	snprintf(buf, len, "proto-%u", proto);
	return buf;
}

int flow_format(const struct flow *f, uint64_t now_ns, char *buf, size_t len)
{
	struct strbuf b = { .buf = buf, .size = len };
	unsigned int o = f->opener, r = !f->opener;
	char a[INET6_ADDRSTRLEN], z[INET6_ADDRSTRLEN], pn[16];
	uint64_t age = now_ns > f->first_ns ? now_ns - f->first_ns : 0;
	bool v6 = f->key.family == AF_INET6;
	bool ports = f->key.proto == IPPROTO_TCP || f->key.proto == IPPROTO_UDP;
	bool echo = (f->key.proto == IPPROTO_ICMP && !v6) || (f->key.proto == IPPROTO_ICMPV6 && v6);
	char host[FLOW_HOST_MAX + 5];

	if (!len)
		return -ENOSPC;
	buf[0] = '\0';
	inet_ntop(f->key.family, f->key.addr[o], a, sizeof(a));
	inet_ntop(f->key.family, f->key.addr[r], z, sizeof(z));
	strbuf_printf(&b, "%s ", proto_name(f->key.proto, pn, sizeof(pn)));
	if (ports)
		strbuf_printf(&b, v6 ? "[%s]:%u -> [%s]:%u" : "%s:%u -> %s:%u", a, f->key.port[o], z,
			      f->key.port[r]);
	else
		strbuf_printf(&b, "%s -> %s", a, z);
	if (echo)
		strbuf_printf(&b, " id %u", f->key.port[0]);
	strbuf_printf(&b, " %s orig %" PRIu64 "/%" PRIu64 " reply %" PRIu64 "/%" PRIu64
		      " age %" PRIu64 ".%03" PRIu64,
		      flow_state_name(f->state), f->pkts[0], f->bytes[0], f->pkts[1], f->bytes[1],
		      (uint64_t)(age / NS_PER_S), (uint64_t)(age % NS_PER_S / 1000000));
	if (f->host[0]) {
		str_sanitize(host, sizeof(host), f->host);
		strbuf_printf(&b, " host %s", host);
	}
	if (b.overflow)
		return -ENOSPC;
	return (int)b.len;
}
