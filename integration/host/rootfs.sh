#!/usr/bin/env bash
# Builds (once) the guest's Debian 12 root filesystem with mmdebstrap, cached
# under /var/tmp keyed by the package list and this script. Prints its path.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
PKGS=systemd-sysv,jq,umoci,skopeo,dbus,udev,kmod,iproute2,iptables,procps,busybox-static,linux-image-amd64,apparmor,docker.io,containerd,runc,podman,conmon,uidmap,slirp4netns,dbus-user-session,e2fsprogs,containernetworking-plugins,docker-registry,bats,gawk,sudo,util-linux,mmdebstrap,xz-utils,gcc,gcc-multilib,libc6-dev,libseccomp2,python3,curl,criu
key=$( (echo "$PKGS"; cat "$here/rootfs.sh") | sha256sum | cut -c1-16)
dir=/var/tmp/rt-host-$key
if [ ! -f "$dir/.done" ]; then
  rm -rf "$dir.tmp"; mkdir -p "$dir.tmp"
  echo "building the guest root filesystem in $dir (mmdebstrap, a few minutes, once)" >&2
  mmdebstrap --quiet --variant=minbase --include="$PKGS" \
    --components=main bookworm "$dir.tmp/root" \
    "deb http://deb.debian.org/debian bookworm main" \
    "deb http://deb.debian.org/debian bookworm-updates main" \
    "deb http://deb.debian.org/debian-security bookworm-security main" >&2
  r=$dir.tmp/root
  systemd-machine-id-setup --root="$r" >/dev/null 2>&1 || true
  chroot "$r" passwd -d root >/dev/null
  : > "$r/etc/resolv.conf"
  echo 'LABEL=root / ext4 rw 0 0' > "$r/etc/fstab"
  echo rthost > "$r/etc/hostname"
  for u in systemd-firstboot.service apt-daily.timer apt-daily-upgrade.timer fstrim.timer \
           e2scrub_all.timer e2scrub_reap.service man-db.timer dpkg-db-backup.timer \
           systemd-timesyncd.service podman-auto-update.timer podman-restart.service; do
    ln -sf /dev/null "$r/etc/systemd/system/$u"
  done
  mv "$dir.tmp" "$dir"
  touch "$dir/.done"
fi
echo "$dir"
