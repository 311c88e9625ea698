#!/usr/bin/env bash
# make-bundle.sh DIR [RT]: a busybox bundle in DIR (rootfs from Debian's
# busybox-static, config.json from `rt spec`).
set -euo pipefail
dir=${1:?usage: make-bundle.sh DIR [RT]}
rt=${2:-rt}
bb=/bin/busybox
[ -x "$bb" ] || { echo "make-bundle: $bb missing (apt-get install busybox-static)" >&2; exit 1; }
mkdir -p "$dir/rootfs"/{bin,etc,tmp,proc,sys,dev,root}
cp "$bb" "$dir/rootfs/bin/busybox"
for a in $("$bb" --list); do
  [ "$a" = busybox ] || ln -sf busybox "$dir/rootfs/bin/$a"
done
echo 'root:x:0:0:root:/root:/bin/sh' > "$dir/rootfs/etc/passwd"
echo 'root:x:0:' > "$dir/rootfs/etc/group"
rm -f "$dir/config.json"
"$rt" spec -b "$dir"
