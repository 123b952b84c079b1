// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
//
// Benchmark sink: counts every IPv4/IPv6 packet that is not ICMP (the generator's UDP and
// TCP frames, whatever a director did to them: rewritten, NATed, IPIP-encapsulated) in a
// per-CPU array and drops it, or, when sink_cfg[0] is 1, hands it to the AF_XDP socket of the
// receiving queue so userspace can read the timestamp it carries. ARP, neighbour discovery
// and ICMP go on to the host stack, so the director can resolve the sink's address.

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

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u32);
} sink_xsks SEC(".maps");

// [0] = 1: redirect counted packets to sink_xsks instead of dropping them.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} sink_cfg SEC(".maps");

// [0] packets, [1] bytes, [2] UDP packets, [3] TCP packets (by the outermost IP header's
// protocol: an IPIP-encapsulated packet is neither).
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} sink_stats SEC(".maps");

SEC("xdp")
int xvs_sink(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if (data + sizeof(*eth) > end)
		return XDP_PASS;
	__u8 proto;
	if (eth->h_proto == __builtin_bswap16(ETH_P_IP)) {
		struct iphdr *ip = data + sizeof(*eth);
		if ((void *)(ip + 1) > end || ip->protocol == IPPROTO_ICMP)
			return XDP_PASS;
		proto = ip->protocol;
	} else if (eth->h_proto == __builtin_bswap16(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = data + sizeof(*eth);
		if ((void *)(ip6 + 1) > end || ip6->nexthdr == IPPROTO_ICMPV6)
			return XDP_PASS;
		proto = ip6->nexthdr;
	} else {
		return XDP_PASS;
	}
	__u32 k = 0;
	__u64 *c = bpf_map_lookup_elem(&sink_stats, &k);
	if (c)
		*c += 1;
	k = 1;
	c = bpf_map_lookup_elem(&sink_stats, &k);
	if (c)
		*c += (__u64)(end - data);
	k = proto == IPPROTO_UDP ? 2 : proto == IPPROTO_TCP ? 3 : 4;
	c = bpf_map_lookup_elem(&sink_stats, &k);
	if (c)
		*c += 1;
	k = 0;
	__u32 *redirect = bpf_map_lookup_elem(&sink_cfg, &k);
	if (redirect && *redirect)
		return bpf_redirect_map(&sink_xsks, ctx->rx_queue_index, XDP_DROP);
	return XDP_DROP;
}

char _license[] SEC("license") = "Dual BSD/GPL";
