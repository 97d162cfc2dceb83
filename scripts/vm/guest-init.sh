#!/bin/sh
# /init of the test guest. Mounts the host's root read-only over 9p, sets up the devices for the
# suite named on the kernel command line (dmapool.guest=a|b), runs the host's node + mocha inside
# a chroot of it, and writes the log and exit status to the writable 9p export "out".
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
echo "dmapool-guest: up after $(cut -d' ' -f1 /proc/uptime)s"
for ko in $(cat /modules.order); do insmod /lib/modules/$ko 2>/dev/null || echo "insmod $ko failed"; done

arg() { tr ' ' '\n' < /proc/cmdline | sed -n "s/^dmapool\.$1=//p"; }
GUEST=$(arg guest)
REPO=$(arg repo)
mount -t 9p -o trans=virtio,version=9p2000.L,ro hostfs /mnt || { echo "dmapool-guest: 9p hostfs mount failed"; poweroff -f; }
mount -t 9p -o trans=virtio,version=9p2000.L,rw out /out || { echo "dmapool-guest: 9p out mount failed"; poweroff -f; }
for d in proc sys dev; do mount --bind /$d /mnt/$d; done
# Writable scratch on /run (a tmpfs over /mnt/tmp could hide the repo when it lives under /tmp)
mount -t tmpfs tmpfs /mnt/run
mkdir -p /mnt/run/tmp
mount -t tmpfs tmpfs /mnt/dev/shm 2>/dev/null
mkdir -p /mnt/dev/hugepages 2>/dev/null

edu=""
for d in /sys/bus/pci/devices/*; do
  [ "$(cat $d/vendor)" = 0x1234 ] && [ "$(cat $d/device)" = 0x11e8 ] && edu=$(basename $d)
done
echo "dmapool-guest: guest=$GUEST edu=$edu kernel=$(uname -r)"
echo 64 > /proc/sys/vm/nr_hugepages

run() { # run NAME ENV... -- COMMAND: chrooted into the host fs, logged to /out/NAME.log
  name=$1; shift
  echo "dmapool-guest: running $name"
  chroot /mnt /usr/bin/env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/run/tmp TMPDIR=/run/tmp CI=true DMAPOOL_EDU=$edu "$@" \
    > /out/$name.log 2>&1
  echo $? > /out/$name.status
  echo "dmapool-guest: $name exit $(cat /out/$name.status)"
}
# Suites of host-side code only (fixture trees, sim, the shim's argument checks, the fuzzers):
# the host run covers them; the guests run what needs a real device or kernel.
HOST_ONLY="cli bench kernel-bench jit fuzz-api fuzz-native native-safety provider-safety devices-safety pool-safety views-safety hygiene architecture scaling-chart native-count iommu-select doctor-paths"
MOCHA="node $REPO/node_modules/mocha/bin/mocha.js --config $REPO/.mocharc.json --no-color"
for t in $HOST_ONLY; do MOCHA="$MOCHA --ignore dist/test/$t.test.js"; done  # relative: suites run in $REPO
CLI="node $REPO/dist/lib/cli/main.js"
cd /
if [ -f /mnt$REPO/scripts/vm/guest-$GUEST.sh ]; then
  . /mnt$REPO/scripts/vm/guest-$GUEST.sh
else
  echo "dmapool-guest: /mnt$REPO/scripts/vm/guest-$GUEST.sh not found"
fi
sync
echo "dmapool-guest: done after $(cut -d' ' -f1 /proc/uptime)s"
poweroff -f
