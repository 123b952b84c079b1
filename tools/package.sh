#!/usr/bin/env bash
# Builds the Debian package of xvs: xvsd and xvsadm (release, stripped), the systemd unit,
# man pages xvsd(8), xvsadm(8) and xvsd.yaml(5) and bash/zsh/fish completions generated from
# the code (xvs-docs), /etc/xvs/xvsd.yaml as a conffile, xvsadm-save and xvsadm-restore.
#
#   bash tools/package.sh [OUTDIR]     (default target/deb; prints the .deb's path)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-target/deb}
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
debver="$version-1"
arch=$(dpkg --print-architecture)
cargo build --release --quiet -p xvsd -p xvsadm -p xvs-docs
root="$out/xvs_${debver}_$arch"
rm -rf "$root"
install -d "$root/DEBIAN" "$root/usr/sbin" "$root/lib/systemd/system" "$root/etc/xvs" \
  "$root/usr/share/man/man8" "$root/usr/share/man/man5" "$root/usr/share/doc/xvs" \
  "$root/usr/share/bash-completion/completions" "$root/usr/share/zsh/vendor-completions" \
  "$root/usr/share/fish/vendor_completions.d"
for b in xvsd xvsadm; do
  install -m 0755 "target/release/$b" "$root/usr/sbin/$b"
  strip --strip-unneeded --remove-section=.comment --remove-section=.note "$root/usr/sbin/$b"
done
install -m 0755 packaging/xvsadm-save packaging/xvsadm-restore "$root/usr/sbin/"
install -m 0644 packaging/xvsd.service "$root/lib/systemd/system/xvsd.service"
install -m 0644 config/xvsd.yaml "$root/etc/xvs/xvsd.yaml"
gen=$(mktemp -d)
trap 'rm -rf "$gen"' EXIT
target/release/xvs-docs man "$gen/man"
target/release/xvs-docs completions "$gen/comp"
# Man pages of the save/restore scripts: short ones, as ipvsadm-save(8) is.
for s in save restore; do
  cat > "$gen/man/xvsadm-$s.8" <<MAN
.TH XVSADM-${s^^} 8 "" "xvs $version" "xvs"
.SH NAME
xvsadm-$s \\- $( [ $s = save ] && echo "print the running xvs rules" || echo "apply saved xvs rules" )
.SH SYNOPSIS
.B xvsadm-$s
$( [ $s = save ] && echo "[\\-n]" || echo "[\\-\\-if\\-present] [FILE]" )
.SH DESCRIPTION
$( [ $s = save ] && echo "Prints the rules of the running xvsd in the form xvsadm \\-R reads, as ipvsadm\\-save does; \\-n keeps addresses numeric." || echo "Applies rules saved with xvsadm\\-save, from FILE or standard input, as ipvsadm\\-restore does. The xvsd service restores /etc/xvs/rules at start this way (\\-\\-if\\-present: nothing when the file is missing or empty)." )
.SH SEE ALSO
.BR xvsadm (8)
MAN
done
for m in "$gen"/man/*.8; do gzip -9n < "$m" > "$root/usr/share/man/man8/$(basename "$m").gz"; done
gzip -9n < "$gen/man/xvsd.yaml.5" > "$root/usr/share/man/man5/xvsd.yaml.5.gz"
for b in xvsd xvsadm; do
  install -m 0644 "$gen/comp/$b" "$root/usr/share/bash-completion/completions/$b"
  install -m 0644 "$gen/comp/_$b" "$root/usr/share/zsh/vendor-completions/_$b"
  install -m 0644 "$gen/comp/$b.fish" "$root/usr/share/fish/vendor_completions.d/$b.fish"
done
install -m 0644 packaging/copyright "$root/usr/share/doc/xvs/copyright"
install -d "$root/usr/share/lintian/overrides"
install -m 0644 packaging/lintian-overrides "$root/usr/share/lintian/overrides/xvs"
cat > "$gen/changelog" <<CL
xvs ($debver) unstable; urgency=medium

  * Package built from the xvs source tree (tools/package.sh).

 -- xvs developers <xvs@example.org>  $(date -R -d @"${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}")
CL
gzip -9n < "$gen/changelog" > "$root/usr/share/doc/xvs/changelog.Debian.gz"
echo /etc/xvs/xvsd.yaml > "$root/DEBIAN/conffiles"
# Shared libraries the binaries link, as dpkg-shlibdeps would find them.
depends=$(for b in xvsd xvsadm; do objdump -p "$root/usr/sbin/$b" | awk '/NEEDED/ {print $2}'; done \
  | sort -u | while read -r lib; do dpkg -S "*/$lib" 2>/dev/null | head -1 | cut -d: -f1; done \
  | sort -u | paste -sd, | sed 's/,/, /g')
size=$(du -sk "$root" | cut -f1)
cat > "$root/DEBIAN/control" <<CTL
Package: xvs
Version: $debver
Architecture: $arch
Maintainer: xvs developers <xvs@example.org>
Installed-Size: $size
Depends: $depends
Recommends: bird2, keepalived
Section: net
Priority: optional
Homepage: https://example.org/xvs
Description: Linux Virtual Server on AF_XDP (director dataplane)
 xvs is the Linux Virtual Server (kernel IPVS, ipvsadm and keepalived's VRRP
 and health checks) rebuilt as a userspace dataplane on AF_XDP: per-core
 workers forward DR, NAT, TUN and FullNAT traffic with IPVS's fourteen
 schedulers, driven by xvsadm, which speaks ipvsadm's command line.
 .
 This package has the daemon xvsd with its systemd unit, xvsadm, and
 xvsadm-save/xvsadm-restore.
CTL
(cd "$root" && find . -type f ! -path './DEBIAN/*' -printf '%P\n' | sort | xargs md5sum) > "$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/conffiles" "$root/DEBIAN/md5sums"
deb="$out/xvs_${debver}_$arch.deb"
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"
