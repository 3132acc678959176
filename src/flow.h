/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The flow table (issue 14): one entry per 5-tuple, both directions of a
 * connection mapping to the same entry.  Library module: no logging, and
 * no allocation after flow_table_new() (entries, hash index and the pool
 * of reassembly buffers are allocated there; per packet nothing is).
 *
 * Entries are bounded (FLOW_MAX_MIN..FLOW_MAX_MAX, default FLOW_MAX_DEFAULT):
 * a new flow in a full table evicts the least recently used one (counted).
 * Idle flows expire by protocol and state (FLOW_TO_*); flow_expire() removes
 * them a bounded number of entries per call, and a lookup never returns an
 * expired flow (it starts a new one in its place), so correctness does not
 * depend on how often flow_expire() runs.
 *
 * Not thread-safe: one table per worker, or the caller's lock.  Listing
 * (flow_foreach) walks every entry: it is for the control socket, not
 * the packet path.
 */
#ifndef IPMODD_FLOW_H
#define IPMODD_FLOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pkt;

#define FLOW_MAX_DEFAULT 262144u
#define FLOW_MAX_MIN 1024u
#define FLOW_MAX_MAX 4194304u
#define FLOW_RBUFS_DEFAULT 64u
#define FLOW_RBUFS_MAX 4096u
#define FLOW_RBUF_SIZE 16384u	/* a flow's first client bytes kept for reassembly */
#define FLOW_HOST_MAX 253u	/* a DNS name in text form */
#define FLOW_TIMEOUT_MAX 864000u	/* seconds: 10 days */
#define FLOW_LINE_MAX 512u	/* flow_format() never needs more */

/* Idle timeouts, seconds; a flow expires this long after its last packet. */
enum flow_timeout {
	FLOW_TO_TCP_NEW,	/* 60: handshake not complete */
	FLOW_TO_TCP_ESTABLISHED,	/* 7200 */
	FLOW_TO_TCP_CLOSING,	/* 10: grace after a FIN or RST */
	FLOW_TO_UDP_NEW,	/* 30: one direction seen (also other protocols) */
	FLOW_TO_UDP_ESTABLISHED,	/* 120: both directions seen */
	FLOW_TO_ICMP,		/* 30: echo request/reply, keyed by the echo id */
	FLOW_TO_MAX,
};

enum flow_state {
	FLOW_STATE_NEW,
	FLOW_STATE_ESTABLISHED,
	FLOW_STATE_CLOSING,
	FLOW_STATE_MAX,
};

/* Which side sent a packet: the one that opened the flow, or the other. */
enum flow_dir {
	FLOW_DIR_ORIGINAL = 0,
	FLOW_DIR_REPLY = 1,
};

/*
 * A flow's identity in canonical order: side 0 is the smaller of the two
 * (address, port) ends, so both directions build the same key.  ICMP and
 * ICMPv6 echo use the echo id as both ports.  Zeroed padding: keys compare
 * with memcmp().
 */
struct flow_key {
	uint8_t addr[2][16];	/* network order; IPv4 in the first 4 bytes */
	uint16_t port[2];	/* host order */
	uint8_t family;		/* AF_INET, AF_INET6 */
	uint8_t proto;		/* IPPROTO_* */
	uint8_t pad[2];
};

/*
 * An entry: what a lookup reads (key, chain, LRU links, expiry) fills the
 * first cache line, the counters the second; the host name comes last.
 */
struct flow {
	struct flow_key key;
	uint32_t hnext;		/* hash chain, or the free list */
	uint32_t lru_prev, lru_next;	/* towards more / less recently used */
	uint8_t used;
	uint8_t opener;		/* key side that sent the first packet */
	uint8_t state;		/* enum flow_state */
	uint8_t tcp_seen;	/* handshake progress (flow.c) */
	uint64_t expires_ns;
	uint64_t pkts[2], bytes[2];	/* by enum flow_dir; bytes: L4 payload */
	uint64_t first_ns, last_ns;
	uint16_t rbuf;		/* reassembly buffer index + 1, 0: none */
	uint16_t rbuf_len;
	/* The caller's, zeroed when the flow starts: how its host name search goes. */
	uint8_t host_kind;	/* where host came from (packet.h's enum pkt_name_kind) */
	uint8_t host_done;	/* the search ended (found, none, malformed, too long) */
	uint32_t host_seq;	/* TCP: the sequence number of the next client byte wanted */
	uint32_t fp_gen;	/* the caller's: the fast path generation its decision was written for, + 1 */
	char host[FLOW_HOST_MAX + 1];	/* "" until a host name was found */
} __attribute__((aligned(64)));

struct flow_params {
	uint32_t max_entries;	/* 0: FLOW_MAX_DEFAULT */
	uint32_t rbufs;		/* reassembly buffers at once; 0: FLOW_RBUFS_DEFAULT */
	uint32_t timeout_s[FLOW_TO_MAX];	/* 0: the default */
	uint64_t seed;		/* hash key (tests, benchmarks); 0: a random one */
};

struct flow_stats {
	uint64_t entries, max_entries;
	uint64_t created;	/* flows started (new, or replacing an expired one) */
	uint64_t evicted;	/* removed to make room while still live */
	uint64_t expired;	/* removed or replaced after their timeout */
	uint64_t rbufs_used, rbufs_max;
	uint64_t pool_exhausted;	/* a flow asked for a buffer and none was free */
};

/* What flow_foreach() lists; zero fields match everything. */
struct flow_filter {
	uint8_t family;		/* 0 or AF_INET / AF_INET6 */
	uint8_t proto;		/* 0 or IPPROTO_* */
	uint8_t state_mask;	/* 0 or bits 1 << enum flow_state */
	uint16_t port;		/* 0 or a port on either side */
	bool has_addr;
	uint8_t addr[16];	/* with has_addr: an address on either side (of family) */
	const char *host;	/* NULL, or the host name or a domain it is in (case-insensitive) */
};

struct flow_table;

int flow_table_new(const struct flow_params *params, struct flow_table **ret);
struct flow_table *flow_table_free(struct flow_table *t);
/* 0, or -ERANGE with the reason in err when a field of p is out of its bounds. */
int flow_params_check(const struct flow_params *p, char *err, size_t errlen);

/*
 * The key of a parsed packet and the side (0/1) of the key it was sent
 * from.  -EINVAL: no L4 header to key on (non-first fragment, cut short);
 * -ENOENT: an ICMP message that is not an echo (errors belong to the flow
 * they quote, not to a flow of their own).  Other protocols than TCP, UDP
 * and ICMP echo are keyed with ports 0.
 */
int flow_key_from_pkt(const struct pkt *p, struct flow_key *k, unsigned int *side);
/* L4 payload bytes of a parsed packet (what flow_account() counts). */
size_t flow_pkt_payload_len(const struct pkt *p);

/*
 * Find the flow of k, or start one (opened by side) when there is none or
 * it expired; in a full table the least recently used flow makes room.
 * The flow becomes the most recently used.  Never fails for a valid key.
 */
void flow_lookup_or_add(struct flow_table *t, const struct flow_key *k, unsigned int side,
			uint64_t now_ns, struct flow **ret, bool *is_new);
/*
 * The same from a parsed packet, also returning its direction.  A TCP SYN
 * without ACK on a closing flow starts the flow again (port reuse).
 * Returns flow_key_from_pkt()'s errors.
 */
int flow_lookup_pkt(struct flow_table *t, const struct pkt *p, uint64_t now_ns, struct flow **ret,
		    enum flow_dir *dir, bool *is_new);
/* The flow of k if there is a live one; does not touch the LRU order. */
struct flow *flow_find(struct flow_table *t, const struct flow_key *k, uint64_t now_ns);
static inline enum flow_dir flow_dir_of(const struct flow *f, unsigned int side)
{
	return side == f->opener ? FLOW_DIR_ORIGINAL : FLOW_DIR_REPLY;
}

/*
 * Count one packet of f in direction dir carrying payload_len L4 bytes
 * (tcp_flags: the TCP flags byte, 0 for other protocols), advance the state
 * and the expiry.  Returns the packet's position in its direction, from 1;
 * *bytes_before (may be NULL): payload bytes of that direction before it.
 * One call is one packet: a GSO super-packet is pkt_segs() packets, and a
 * caller that matches positions accounts each segment.
 */
uint64_t flow_account(struct flow_table *t, struct flow *f, enum flow_dir dir, size_t payload_len,
		      uint8_t tcp_flags, uint64_t now_ns, uint64_t *bytes_before);

/*
 * Remove expired flows, examining at most budget entries.  Returns how
 * many were removed.
 */
unsigned int flow_expire(struct flow_table *t, uint64_t now_ns, unsigned int budget);

/*
 * Look for the host name f's client asks for in p, a packet of f in
 * direction dir, before it is counted (the daemon calls it for every
 * packet): the TCP stream's first client bytes in sequence order (read in
 * place when the first segment holds the whole hello, else gathered in a
 * reassembly buffer, up to FLOW_RBUF_SIZE; a segment after a gap waits for
 * the retransmission, one already seen is skipped) for a TLS ClientHello's
 * server_name or an HTTP/1.x Host, or the first client UDP datagrams (up
 * to 3) for a QUIC Initial's.  Found: f->host (lowercase) and f->host_kind
 * (packet.h's PKT_NAME_*) set and the search ended; none, malformed, cut,
 * a flow picked up after its SYN, or the pool empty: ended without a name.
 * Never allocates.
 */
void flow_host_feed(struct flow_table *t, struct flow *f, enum flow_dir dir, const struct pkt *p);

/* Whether f's host name search ended (a name found or not). */
bool flow_host_decided(const struct flow *f);

/* Remember the host name found in f (1..FLOW_HOST_MAX bytes, no NUL in it). */
int flow_set_host(struct flow *f, const char *name, size_t len);

/*
 * The reassembly buffer of f: append bytes (borrowing a buffer from the
 * pool on the first call).  Returns the bytes now held (at most
 * FLOW_RBUF_SIZE: what does not fit is cut), or -ENOBUFS when the pool is
 * empty (counted in pool_exhausted).
 */
int flow_rbuf_append(struct flow_table *t, struct flow *f, const void *data, size_t len);
/* The bytes held, or NULL with *len 0 when f holds no buffer. */
const uint8_t *flow_rbuf_data(const struct flow_table *t, const struct flow *f, size_t *len);
/* Give f's buffer back to the pool (no-op without one). */
void flow_rbuf_release(struct flow_table *t, struct flow *f);

/*
 * Call cb for every live flow the filter matches, most recently used
 * first; a non-zero return from cb stops the walk and is returned.
 */
int flow_foreach(struct flow_table *t, const struct flow_filter *flt, uint64_t now_ns,
		 int (*cb)(const struct flow *f, void *arg), void *arg);

void flow_table_stats(const struct flow_table *t, struct flow_stats *s);

const char *flow_state_name(enum flow_state s);

/*
 * One line for "ipmodctl flows":
 *   tcp 192.0.2.1:40000 -> 198.51.100.7:443 established orig 3/517 reply 2/1400 age 1.250 host a.test
 * (original direction's source first; IPv6 addresses in brackets; ICMP as
 * "icmp A -> B id N").  Returns the length, or -ENOSPC when it does not fit.
 */
int flow_format(const struct flow *f, uint64_t now_ns, char *buf, size_t len);

#endif
