#!/usr/bin/env bash
# The xvs lab: network namespaces joined by veth pairs, with real servers.
#
#   tools/lab.sh up   SHAPE [--prefix P] [--queues N] [--reals N]
#   tools/lab.sh down [--prefix P]
#   tools/lab.sh exec [--prefix P] NODE CMD...   (NODE: cl, dir, rs1, ...)
#
# SHAPE is one-armed (DR/TUN: client, director and real servers on one segment), two-armed
# (NAT/FullNAT: client on the director's ext0, real servers behind its int0, default route via
# the director), ha (one-armed with a second director, dir2, for VRRP: neither director
# holds the VIP until VRRP gives it one), or ha-two-armed (two-armed with dir and dir2 side by
# side: the client's segment through the switch swx, the real servers' through sw; the VIP
# 198.18.0.10 and the real servers' gateway 198.18.1.1 held by VRRP; directors .2 and .3 on
# both sides), or scale-out (N active directors behind a router: the client 198.19.0.100 behind
# the router rt (198.19.0.1 on its side, 198.18.0.1 on the segment), directors dir, dir2, dir3
# and dir4 at 198.18.0.2-5 and the real servers on the segment, the VIPs 198.18.2.10 and
# 198.18.2.11 on no link: the router learns them from the directors by BGP and spreads flows
# over them by ECMP, hashing ports too; DR real servers hold both VIPs on lo and answer through
# the router). Namespaces are named ${P}cl, ${P}dir, ${P}sw (the switch: a bridge), ${P}rs1..N.
# Addresses (benchmarking range 198.18.0.0/15 and documentation IPv6):
#   one-armed   segment 198.18.0.0/24, 2001:db8:0::/64
#               client .100 / ::100, director ext0 .2 / ::2, RSn .1n / ::1n
#               VIP 198.18.0.10 / 2001:db8::10 on the director and on every RS's lo
#               (arp_ignore=1, arp_announce=2 on the RSs, as in the classic LVS-DR recipe)
#   two-armed   client side 198.18.0.0/24 (client .100, director ext0 .2, VIP .10 on ext0),
#               server side 198.18.1.0/24 (director int0 .1, RSn .1n, default route via .1),
#               IPv6 2001:db8::/64 and 2001:db8:1::/64 likewise; FullNAT local address
#               198.18.1.100 / 2001:db8:1::100 on int0
# Every real server runs an HTTP server on :80 and :8080 answering "rsN", and TCP and UDP echo
# on :7. TX checksum offload is off on every interface that sends towards the director (veth
# leaves checksums to be finished by the receiver, which frames crossing AF_XDP never are).
set -euo pipefail

usage() { sed -n '2,8p' "$0" >&2; exit 2; }
cmd=${1:-}; shift || true
shape=""; prefix=${XVS_LAB:-xl$$-}; queues=1; reals=3
while [ $# -gt 0 ]; do
  case "$1" in
    one-armed|two-armed|ha|ha-two-armed|scale-out) shape=$1 ;;
    --prefix) prefix=$2; shift ;;
    --queues) queues=$2; shift ;;
    --reals) reals=$2; shift ;;
    --) shift; break ;;
    *) [ "$cmd" = exec ] && break; echo "lab: unknown argument $1" >&2; usage ;;
  esac
  shift
done

need() { command -v "$1" >/dev/null || { echo "lab: $1 is required ($2)" >&2; exit 1; }; }
ns() { local n=$1; shift; ip netns exec "$prefix$n" "$@"; }

down() {
  for n in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$prefix" || true); do
    # Stop anything still running in the namespace, then delete it.
    for pid in $(ip netns pids "$n" 2>/dev/null); do kill -TERM "$pid" 2>/dev/null || true; done
  done
  sleep 0.2
  for n in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$prefix" || true); do
    for pid in $(ip netns pids "$n" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
    ip netns del "$n" 2>/dev/null || true
  done
  rm -rf "/tmp/$prefix"lab
}

veth() { # veth NAME_A NS_A NAME_B NS_B (created directly in the namespaces)
  ip link add "$1" netns "$prefix$2" numtxqueues "$queues" numrxqueues "$queues" type veth \
    peer name "$3" netns "$prefix$4" numtxqueues "$queues" numrxqueues "$queues"
}

offload_off() { ns "$1" ethtool -K "$2" tx off >/dev/null 2>&1 || true; }

real_server() { # real_server N
  local n=$1 dir="/tmp/${prefix}lab/rs$1"
  mkdir -p "$dir"
  echo "rs$n" > "$dir/index.html"
  ns "rs$n" ip link set lo up
  ns "rs$n" python3 -m http.server 80 --bind :: --directory "$dir" >/dev/null 2>&1 &
  ns "rs$n" python3 -m http.server 8080 --bind :: --directory "$dir" >/dev/null 2>&1 &
  ns "rs$n" socat TCP6-LISTEN:7,ipv6only=0,reuseaddr,fork EXEC:cat >/dev/null 2>&1 &
  # UDP echo answering from the address the datagram was sent to (the VIP under DR/TUN), as
  # a real UDP service must: IP_PKTINFO / IPV6_PKTINFO on receive and send.
  ns "rs$n" python3 -c '
import select, socket
IP_PKTINFO, IPV6_RECVPKTINFO, IPV6_PKTINFO = 8, 49, 50
s4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s4.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
s4.bind(("0.0.0.0", 7))
s6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
s6.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVPKTINFO, 1)
s6.bind(("::", 7))
while True:
    for s in select.select([s4, s6], [], [])[0]:
        d, anc, _, a = s.recvmsg(65535, 256)
        out = []
        for lvl, typ, data in anc:
            if s is s4 and typ == IP_PKTINFO:
                out = [(socket.IPPROTO_IP, IP_PKTINFO, bytes(4) + data[8:12] + bytes(4))]
            elif s is s6 and typ == IPV6_PKTINFO:
                out = [(socket.IPPROTO_IPV6, IPV6_PKTINFO, data[:16] + bytes(4))]
        s.sendmsg([d], out, 0, a)
' >/dev/null 2>&1 &
}

wait_listening() { # every RS listens on :80
  local i n
  for i in $(seq 1 100); do
    local ok=1
    for n in $(seq 1 "$reals"); do
      ns "rs$n" ss -ltn 2>/dev/null | grep -q ':80 ' || ok=0
      ns "rs$n" ss -ltn 2>/dev/null | grep -q ':7 ' || ok=0
      ns "rs$n" ss -lun 2>/dev/null | grep -q ':7 ' || ok=0
    done
    [ $ok = 1 ] && return 0
    sleep 0.1
  done
  echo "lab: real servers did not start listening" >&2
  return 1
}

up() {
  need ip iproute2; need python3 python3; need socat socat; need ethtool ethtool
  [ -n "$shape" ] || usage
  down
  mkdir -p "/tmp/${prefix}lab"
  local nodes="cl dir sw"
  [ "$shape" = ha ] && nodes="cl dir dir2 sw"
  [ "$shape" = ha-two-armed ] && nodes="cl dir dir2 sw swx"
  [ "$shape" = scale-out ] && nodes="cl rt dir dir2 dir3 dir4 sw"
  for n in $nodes $(seq -f 'rs%g' 1 "$reals"); do ip netns add "$prefix$n"; done
  for n in $nodes $(seq -f 'rs%g' 1 "$reals"); do ns "$n" ip link set lo up; done
  ns sw ip link add br0 type bridge
  ns sw ip link set br0 up
  ns sw sysctl -qw net.ipv6.conf.all.disable_ipv6=1 || true
  local n
  if [ "$shape" = one-armed ] || [ "$shape" = ha ]; then
    # Everyone on one segment through the switch.
    veth eth0 cl c0 sw; veth ext0 dir d0 sw
    ns cl ip addr add 198.18.0.100/24 dev eth0
    ns cl ip -6 addr add 2001:db8::100/64 dev eth0 nodad
    ns dir ip addr add 198.18.0.2/24 dev ext0
    ns dir ip -6 addr add 2001:db8::2/64 dev ext0 nodad
    if [ "$shape" = ha ]; then
      # The second director; the VIP comes and goes with VRRP mastership.
      veth ext0 dir2 d2 sw
      ns dir2 ip addr add 198.18.0.3/24 dev ext0
      ns dir2 ip -6 addr add 2001:db8::3/64 dev ext0 nodad
      ns sw ip link set d2 master br0 up
      ns dir2 ip link set ext0 up
    else
      ns dir ip addr add 198.18.0.10/32 dev ext0
      ns dir ip -6 addr add 2001:db8::10/128 dev ext0 nodad
    fi
    for n in $(seq 1 "$reals"); do
      veth eth0 "rs$n" "r$n" sw
      ns "rs$n" ip addr add "198.18.0.1$n/24" dev eth0
      ns "rs$n" ip -6 addr add "2001:db8::1$n/64" dev eth0 nodad
      ns "rs$n" ip addr add 198.18.0.10/32 dev lo
      ns "rs$n" ip -6 addr add 2001:db8::10/128 dev lo
      for k in all lo eth0; do
        ns "rs$n" sysctl -qw "net.ipv4.conf.$k.arp_ignore=1" "net.ipv4.conf.$k.arp_announce=2"
      done
    done
    for p in c0 d0 $(seq -f 'r%g' 1 "$reals"); do ns sw ip link set "$p" master br0 up; done
    ns cl ip link set eth0 up; ns dir ip link set ext0 up
    offload_off cl eth0
    for n in $(seq 1 "$reals"); do ns "rs$n" ip link set eth0 up; offload_off "rs$n" eth0; real_server "$n"; done
  elif [ "$shape" = ha-two-armed ]; then
    ns swx ip link add br0 type bridge
    ns swx ip link set br0 up
    ns swx sysctl -qw net.ipv6.conf.all.disable_ipv6=1 || true
    veth eth0 cl c0 swx; veth ext0 dir x1 swx; veth ext0 dir2 x2 swx
    veth int0 dir d1 sw; veth int0 dir2 d2 sw
    ns cl ip addr add 198.18.0.100/24 dev eth0
    ns cl ip -6 addr add 2001:db8::100/64 dev eth0 nodad
    local d i
    for d in dir dir2; do
      i=2; [ "$d" = dir2 ] && i=3
      ns "$d" ip addr add "198.18.0.$i/24" dev ext0
      ns "$d" ip -6 addr add "2001:db8::$i/64" dev ext0 nodad
      ns "$d" ip addr add "198.18.1.$i/24" dev int0
      ns "$d" ip -6 addr add "2001:db8:1::$i/64" dev int0 nodad
      ns "$d" ip link set ext0 up; ns "$d" ip link set int0 up
    done
    for n in $(seq 1 "$reals"); do
      veth eth0 "rs$n" "r$n" sw
      ns "rs$n" ip addr add "198.18.1.1$n/24" dev eth0
      ns "rs$n" ip -6 addr add "2001:db8:1::1$n/64" dev eth0 nodad
    done
    for p in c0 x1 x2; do ns swx ip link set "$p" master br0 up; done
    for p in d1 d2 $(seq -f 'r%g' 1 "$reals"); do ns sw ip link set "$p" master br0 up; done
    ns cl ip link set eth0 up
    offload_off cl eth0
    for n in $(seq 1 "$reals"); do
      ns "rs$n" ip link set eth0 up
      ns "rs$n" ip route add default via 198.18.1.1 dev eth0
      offload_off "rs$n" eth0
      real_server "$n"
    done
  elif [ "$shape" = scale-out ]; then
    veth eth0 cl eth1 rt
    ns cl ip addr add 198.19.0.100/24 dev eth0
    ns rt ip addr add 198.19.0.1/24 dev eth1
    veth eth0 rt t0 sw
    ns rt ip addr add 198.18.0.1/24 dev eth0
    ns rt sysctl -qw net.ipv4.ip_forward=1 net.ipv4.fib_multipath_hash_policy=1
    local i=2 d
    for d in dir dir2 dir3 dir4; do
      veth ext0 "$d" "x$i" sw
      ns "$d" ip addr add "198.18.0.$i/24" dev ext0
      ns "$d" ip link set ext0 up
      ns sw ip link set "x$i" master br0 up
      i=$((i + 1))
    done
    for n in $(seq 1 "$reals"); do
      veth eth0 "rs$n" "r$n" sw
      ns "rs$n" ip addr add "198.18.0.1$n/24" dev eth0
      ns "rs$n" ip addr add 198.18.2.10/32 dev lo
      ns "rs$n" ip addr add 198.18.2.11/32 dev lo
      for k in all lo eth0; do
        ns "rs$n" sysctl -qw "net.ipv4.conf.$k.arp_ignore=1" "net.ipv4.conf.$k.arp_announce=2"
      done
      ns sw ip link set "r$n" master br0 up
    done
    ns sw ip link set t0 master br0 up
    ns cl ip link set eth0 up; ns rt ip link set eth0 up; ns rt ip link set eth1 up
    ns cl ip route add default via 198.19.0.1
    offload_off cl eth0; offload_off rt eth0
    for n in $(seq 1 "$reals"); do
      ns "rs$n" ip link set eth0 up
      ns "rs$n" ip route add default via 198.18.0.1
      offload_off "rs$n" eth0
      real_server "$n"
    done
  elif [ "$shape" = two-armed ]; then
    veth eth0 cl ext0 dir
    ns cl ip addr add 198.18.0.100/24 dev eth0
    ns cl ip -6 addr add 2001:db8::100/64 dev eth0 nodad
    ns dir ip addr add 198.18.0.2/24 dev ext0
    ns dir ip -6 addr add 2001:db8::2/64 dev ext0 nodad
    ns dir ip addr add 198.18.0.10/32 dev ext0
    ns dir ip -6 addr add 2001:db8::10/128 dev ext0 nodad
    veth int0 dir d1 sw
    ns dir ip addr add 198.18.1.1/24 dev int0
    ns dir ip -6 addr add 2001:db8:1::1/64 dev int0 nodad
    ns dir ip addr add 198.18.1.100/32 dev int0
    ns dir ip -6 addr add 2001:db8:1::100/128 dev int0 nodad
    for n in $(seq 1 "$reals"); do
      veth eth0 "rs$n" "r$n" sw
      ns "rs$n" ip addr add "198.18.1.1$n/24" dev eth0
      ns "rs$n" ip -6 addr add "2001:db8:1::1$n/64" dev eth0 nodad
    done
    ns sw ip link set d1 master br0 up
    for n in $(seq 1 "$reals"); do ns sw ip link set "r$n" master br0 up; done
    ns cl ip link set eth0 up; ns dir ip link set ext0 up; ns dir ip link set int0 up
    offload_off cl eth0
    for n in $(seq 1 "$reals"); do
      ns "rs$n" ip link set eth0 up
      ns "rs$n" ip route add default via 198.18.1.1
      ns "rs$n" ip -6 route add default via 2001:db8:1::1
      offload_off "rs$n" eth0
      real_server "$n"
    done
  else
    usage
  fi
  wait_listening
  echo "lab: $shape up with prefix $prefix ($reals real servers, $queues queue(s))"
}

case "$cmd" in
  up) up ;;
  down) down ;;
  exec) node=$1; shift; ns "$node" "$@" ;;
  *) usage ;;
esac
