#!/usr/bin/env bash
# Builds the Debian package and checks it: its contents are what docs/deployment.md lists,
# lintian reports no error, systemd accepts the unit, and once installed the programs run and
# the shipped configuration checks. The package is removed again (purged) in every case.
set -euo pipefail
cd "$(dirname "$0")/.."
deb=$(bash tools/package.sh)
echo "package: $deb ($(du -h "$deb" | cut -f1))"
contents=$(dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./|/|')
for f in /usr/sbin/xvsd /usr/sbin/xvsadm /usr/sbin/xvsadm-save /usr/sbin/xvsadm-restore \
  /lib/systemd/system/xvsd.service /etc/xvs/xvsd.yaml \
  /usr/share/man/man8/xvsd.8.gz /usr/share/man/man8/xvsadm.8.gz \
  /usr/share/man/man8/xvsadm-save.8.gz /usr/share/man/man8/xvsadm-restore.8.gz \
  /usr/share/man/man5/xvsd.yaml.5.gz \
  /usr/share/bash-completion/completions/xvsd /usr/share/bash-completion/completions/xvsadm \
  /usr/share/zsh/vendor-completions/_xvsd /usr/share/zsh/vendor-completions/_xvsadm \
  /usr/share/fish/vendor_completions.d/xvsd.fish /usr/share/fish/vendor_completions.d/xvsadm.fish \
  /usr/share/doc/xvs/copyright /usr/share/doc/xvs/changelog.Debian.gz; do
  grep -qx "$f" <<<"$contents" || { echo "package: $f missing" >&2; exit 1; }
done
[ "$(dpkg-deb -f "$deb" Package)" = xvs ] || { echo "package: wrong name" >&2; exit 1; }
dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles | grep -qx /etc/xvs/xvsd.yaml \
  || { echo "package: /etc/xvs/xvsd.yaml is not a conffile" >&2; exit 1; }
for b in xvsd xvsadm; do
  dpkg-deb --fsys-tarfile "$deb" | tar -xO "./usr/sbin/$b" > "/tmp/xvs-pkg-$b"
  if file "/tmp/xvs-pkg-$b" | grep -q "not stripped"; then echo "package: $b not stripped" >&2; exit 1; fi
  rm -f "/tmp/xvs-pkg-$b"
done
echo "== lintian"
rc=0
out=$(lintian --fail-on error --tag-display-limit 0 "$deb" 2>&1) || rc=$?
grep -v "running with root privileges is not recommended" <<<"$out" || true
[ "$rc" = 0 ] || { echo "package: lintian reports an error (exit $rc)" >&2; exit 1; }
echo "== installed"
trap 'dpkg --purge xvs >/dev/null 2>&1 || true' EXIT
dpkg -i "$deb" >/dev/null
systemd-analyze verify /lib/systemd/system/xvsd.service
xvsadm -v
xvsd --version
xvsd --check-config /etc/xvs/xvsd.yaml
man -w xvsd.yaml >/dev/null 2>&1 || zcat /usr/share/man/man5/xvsd.yaml.5.gz | grep -q '^\.TH XVSD.YAML 5'
xvsd --help | grep -q 'default: /run/xvs/xvsd.sock' || { echo "package: --help does not show the defaults" >&2; exit 1; }
dpkg --purge xvs >/dev/null
echo "package: OK"
