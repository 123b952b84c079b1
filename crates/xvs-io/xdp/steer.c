// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
//
// xvs steering program: sends to the AF_XDP socket of the receiving queue only the frames xvsd
// must handle; everything else (ARP, neighbour discovery, the director's own traffic) goes on
// to the host stack with XDP_PASS.
//
//   1. destination is a virtual service: (VIP, port, protocol) or the port-0 service
//      (VIP, 0, protocol) in vip_map; ICMP echo requests and ICMP errors to a VIP
//      ((VIP, 0, ICMP) in vip_map) but never neighbour discovery;
//   2. destination is a FullNAT local address (laddr_map);
//   3. source is a NAT real server (RIP, port, protocol) in rip_map, ICMP errors from a real
//      server ((RIP, 0, ICMP)), and the destination is not one of the director's own
//      addresses (local_map), so health-check replies still reach the host.
//
// Before a frame is handed to a socket, two admission checks, each counted apart:
//   - the queue's worker is behind (it says so in gate_map, which xvsd maps into its memory
//     and writes without a system call): the frame is dropped here, before the kernel copies
//     it into the UMEM;
//   - a TCP SYN (without ACK) to a virtual service beyond the queue's budget of new
//     connections (a token bucket, GCRA form, in syn_state; rate and burst in steer_cfg) is
//     dropped, so that established traffic keeps its share under a SYN flood.
//
// Addresses are 16 bytes, IPv4 in IPv4-mapped form (::ffff:a.b.c.d), as xvs's flow keys.
// Self-contained: declares the helpers it needs instead of including libbpf's headers.

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>

#define SEC(name) __attribute__((section(name), used))
#define __uint(name, val) int(*name)[val]
#define __type(name, val) typeof(val) *name

static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;
static long (*bpf_redirect_map)(void *map, __u64 key, __u64 flags) = (void *)51;
static __u64 (*bpf_ktime_get_ns)(void) = (void *)5;

struct svc_key {
	__u8 addr[16];
	__u16 port; // host byte order
	__u8 proto;
	__u8 pad;
};

struct addr_key {
	__u8 addr[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u32);
} xsks_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct svc_key);
	__type(value, __u32);
} vip_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct svc_key);
	__type(value, __u32);
} rip_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct addr_key);
	__type(value, __u32);
} laddr_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct addr_key);
	__type(value, __u32);
} local_map SEC(".maps");

// Packets steered, by rule (index 0..2), and dropped here: worker behind (3), SYN over the
// queue's budget (4); IPv6 packets whose extension headers could not be walked (5), passed to
// the host — read by xvsd for its statistics.
#define STAT_BEHIND 3
#define STAT_SYN_OVER_BUDGET 4
#define STAT_IPV6_UNPARSED 5
// Most IPv6 extension headers walked before the upper-layer header (as xvs-wire).
#define MAX_IPV6_EXT 6
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} steer_stats SEC(".maps");

// One cache line per receive queue, written by the queue's worker through a shared mapping.
struct queue_gate {
	__u32 behind; // non-zero: the worker is behind, drop instead of copying
	__u32 pad[15];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 64);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct queue_gate);
} gate_map SEC(".maps");

// New-connection budget: one SYN per interval_ns, bursts of up to tolerance_ns / interval_ns
// (interval_ns 0: no budget).
struct steer_cfg {
	__u64 syn_interval_ns;
	__u64 syn_tolerance_ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct steer_cfg);
} steer_cfg SEC(".maps");

// Per queue: the theoretical arrival time of the next SYN (GCRA). A queue's frames are
// received by one CPU at a time, so the plain read-modify-write needs no atomics.
struct syn_state {
	__u64 tat;
	__u64 pad[7];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, struct syn_state);
} syn_state SEC(".maps");

#define VLAN_HLEN 4
#define ETH_P_8021Q_ 0x8100
#define ETH_P_8021AD_ 0x88A8

static __attribute__((always_inline)) inline __u16 bswap16(__u16 x)
{
	return (__u16)((x << 8) | (x >> 8));
}

static __attribute__((always_inline)) inline void map4(__u8 *out, __u32 a)
{
	__builtin_memset(out, 0, 10);
	out[10] = 0xff;
	out[11] = 0xff;
	__builtin_memcpy(out + 12, &a, 4);
}

static __attribute__((always_inline)) inline void count(__u32 stat)
{
	__u64 *c = bpf_map_lookup_elem(&steer_stats, &stat);
	if (c)
		*c += 1;
}

static __attribute__((always_inline)) inline int steer(struct xdp_md *ctx, __u32 rule)
{
	__u32 q = ctx->rx_queue_index;
	struct queue_gate *g = bpf_map_lookup_elem(&gate_map, &q);
	if (g && *(volatile __u32 *)&g->behind) {
		count(STAT_BEHIND);
		return XDP_DROP;
	}
	count(rule);
	return bpf_redirect_map(&xsks_map, q, XDP_PASS);
}

// True if this SYN is within the queue's budget (and takes its share of it).
static __attribute__((always_inline)) inline int syn_admitted(struct xdp_md *ctx)
{
	__u32 zero = 0, q = ctx->rx_queue_index;
	struct steer_cfg *cfg = bpf_map_lookup_elem(&steer_cfg, &zero);
	if (!cfg || cfg->syn_interval_ns == 0)
		return 1;
	struct syn_state *st = bpf_map_lookup_elem(&syn_state, &q);
	if (!st)
		return 1;
	__u64 now = bpf_ktime_get_ns();
	__u64 tat = st->tat > now ? st->tat : now;
	if (tat - now > cfg->syn_tolerance_ns)
		return 0;
	st->tat = tat + cfg->syn_interval_ns;
	return 1;
}

static __attribute__((always_inline)) inline int is_icmp_to_steer(__u8 proto, __u8 type)
{
	if (proto == IPPROTO_ICMP)
		// echo request, destination unreachable, source quench, redirect, time exceeded,
		// parameter problem
		return type == 8 || type == 3 || type == 4 || type == 5 || type == 11 || type == 12;
	if (proto == IPPROTO_ICMPV6)
		// errors (< 128) and echo request; never neighbour discovery (133..137)
		return type < 128 || type == 128;
	return 0;
}

SEC("xdp")
int xvs_steer(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	__u64 off = sizeof(*eth);
	if (data + off > end)
		return XDP_PASS;
	__u16 proto = eth->h_proto;
	for (int i = 0; i < 2; i++) {
		if (proto != bswap16(ETH_P_8021Q_) && proto != bswap16(ETH_P_8021AD_))
			break;
		if (data + off + VLAN_HLEN > end)
			return XDP_PASS;
		proto = *(__u16 *)(data + off + 2);
		off += VLAN_HLEN;
	}

	struct svc_key dst = {}, src = {};
	struct addr_key dst_addr = {};
	__u8 l4proto;
	void *l4;
	int has_l4 = 1;
	if (proto == bswap16(ETH_P_IP)) {
		struct iphdr *ip = data + off;
		if ((void *)(ip + 1) > end)
			return XDP_PASS;
		l4proto = ip->protocol;
		l4 = (void *)ip + ip->ihl * 4;
		map4(dst.addr, ip->daddr);
		map4(src.addr, ip->saddr);
		// Later fragments carry no ports: leave them to the rules on addresses only.
		if (ip->frag_off & bswap16(0x1fff))
			has_l4 = 0;
	} else if (proto == bswap16(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = data + off;
		if ((void *)(ip6 + 1) > end)
			return XDP_PASS;
		l4proto = ip6->nexthdr;
		l4 = ip6 + 1;
		__builtin_memcpy(dst.addr, &ip6->daddr, 16);
		__builtin_memcpy(src.addr, &ip6->saddr, 16);
		// Hop-by-hop, routing, fragment, destination options and AH headers come before
		// the upper-layer header: walk them (bounded), as the forwarder does.
		for (int i = 0; i < MAX_IPV6_EXT; i++) {
			if (l4proto != 0 && l4proto != 43 && l4proto != 44 && l4proto != 60 &&
			    l4proto != 51)
				break;
			if (l4 + 8 > end) {
				count(STAT_IPV6_UNPARSED);
				return XDP_PASS;
			}
			__u8 next = *(__u8 *)l4;
			__u64 len;
			if (l4proto == 44) {
				// A later fragment carries no ports.
				if (bswap16(*(__u16 *)(l4 + 2)) & 0xfff8)
					has_l4 = 0;
				len = 8;
			} else if (l4proto == 51) {
				len = ((__u64)(*(__u8 *)(l4 + 1)) + 2) * 4;
			} else {
				len = ((__u64)(*(__u8 *)(l4 + 1)) + 1) * 8;
			}
			l4proto = next;
			l4 += len;
		}
		if (l4proto == 0 || l4proto == 43 || l4proto == 44 || l4proto == 60 || l4proto == 51) {
			count(STAT_IPV6_UNPARSED);
			return XDP_PASS;
		}
	} else {
		return XDP_PASS;
	}
	__builtin_memcpy(dst_addr.addr, dst.addr, 16);

	__u16 sport = 0, dport = 0;
	__u8 icmp_type = 255, tcp_flags = 0;
	if (!has_l4) {
		// no transport header
	} else if (l4proto == IPPROTO_TCP || l4proto == IPPROTO_UDP || l4proto == 132 /* SCTP */) {
		if (l4 + 4 <= end) {
			sport = bswap16(*(__u16 *)l4);
			dport = bswap16(*(__u16 *)(l4 + 2));
		}
		if (l4proto == IPPROTO_TCP && l4 + 14 <= end)
			tcp_flags = *(__u8 *)(l4 + 13);
	} else if (l4proto == IPPROTO_ICMP || l4proto == IPPROTO_ICMPV6) {
		if (l4 + 1 <= end)
			icmp_type = *(__u8 *)l4;
	}

	// 1. Virtual services.
	dst.proto = l4proto;
	if (l4proto == IPPROTO_ICMP || l4proto == IPPROTO_ICMPV6) {
		if (is_icmp_to_steer(l4proto, icmp_type) && bpf_map_lookup_elem(&vip_map, &dst))
			return steer(ctx, 0);
	} else {
		dst.port = dport;
		int hit = bpf_map_lookup_elem(&vip_map, &dst) != 0;
		if (!hit) {
			dst.port = 0;
			hit = bpf_map_lookup_elem(&vip_map, &dst) != 0;
		}
		if (hit) {
			// SYN without ACK: a new TCP connection.
			if ((tcp_flags & 0x12) == 0x02 && !syn_admitted(ctx)) {
				count(STAT_SYN_OVER_BUDGET);
				return XDP_DROP;
			}
			return steer(ctx, 0);
		}
	}

	// 2. FullNAT local addresses (replies from real servers come back to them).
	if (bpf_map_lookup_elem(&laddr_map, &dst_addr)) {
		if ((l4proto != IPPROTO_ICMP && l4proto != IPPROTO_ICMPV6) ||
		    is_icmp_to_steer(l4proto, icmp_type))
			return steer(ctx, 1);
	}

	// 3. Replies from NAT real servers to clients (not to the director itself).
	if (bpf_map_lookup_elem(&local_map, &dst_addr))
		return XDP_PASS;
	src.proto = l4proto;
	if (l4proto == IPPROTO_ICMP || l4proto == IPPROTO_ICMPV6) {
		if (icmp_type < 128 && icmp_type != 0 && icmp_type != 8 &&
		    bpf_map_lookup_elem(&rip_map, &src))
			return steer(ctx, 2);
	} else {
		src.port = sport;
		if (bpf_map_lookup_elem(&rip_map, &src))
			return steer(ctx, 2);
		// Real servers of firewall-mark services keep the client's port: (RIP, 0, proto).
		src.port = 0;
		if (bpf_map_lookup_elem(&rip_map, &src))
			return steer(ctx, 2);
	}
	return XDP_PASS;
}

char _license[] SEC("license") = "Dual BSD/GPL";
