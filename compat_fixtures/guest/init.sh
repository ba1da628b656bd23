#!/bin/busybox sh
# /init of the tiny initramfs that generate_live.py boots (busybox-static +
# the virtio driver modules of the Debian kernel package).
#
# Its only job is to make every virtio device do real work, so that the
# migration stream taken afterwards carries live virtio state: negotiated
# features, placed rings and moved ring indices.  It then prints the marker
# line that generate_live.py waits for, and idles forever (init must never
# exit: the kernel panics when PID 1 dies).

/bin/busybox mkdir -p /bin /sbin /dev /proc /sys /tmp
/bin/busybox --install -s /bin
export PATH=/bin

mount -t devtmpfs devtmpfs /dev
mount -t proc proc /proc
mount -t sysfs sysfs /sys

log() { echo "vmstate-forge-init: $*"; }

# /modules.list is written by generate_live.py: one .ko per line, already
# ordered so that every module comes after the modules it depends on
# (Debian's package ships no modules.dep; depmod runs at install time).
while read -r ko; do
    [ -n "$ko" ] || continue
    insmod "/lib/modules/$ko" || log "insmod $ko failed"
done < /modules.list

# Device nodes appear asynchronously (the SCSI scan in particular).
wait_for() {
    n=0
    while [ ! -e "$1" ] && [ "$n" -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
    [ -e "$1" ] || log "missing $1"
}

# virtio-blk and virtio-scsi: read the whole disk (request queues move).
for disk in /dev/vda /dev/sda; do
    wait_for "$disk"
    [ -e "$disk" ] && dd if="$disk" of=/dev/null bs=4096 2>/dev/null && log "read $disk"
done

# virtio-serial: open and write the named port.  The host side is a file
# chardev, not "null": a null chardev never reports "opened", the driver then
# sees the host disconnected and a blocking write would wait forever.
for port in /sys/class/virtio-ports/*; do
    [ -e "$port/name" ] || continue
    dev="/dev/$(basename "$port")"
    wait_for "$dev"
    echo "hello from $(cat "$port/name")" > "$dev" && log "wrote $dev"
done

# virtio-rng: read from the hardware RNG device.
wait_for /dev/hwrng
dd if=/dev/hwrng of=/dev/null bs=16 count=4 2>/dev/null && log "read /dev/hwrng"

# virtio-net: link up (the driver already posted its receive buffers; link up
# makes the kernel transmit, e.g. IPv6 neighbour discovery).
for nic in /sys/class/net/eth*; do
    [ -e "$nic" ] || continue
    ip link set "$(basename "$nic")" up && log "$(basename "$nic") up"
done

# virtio-balloon needs nothing: probing it already exchanged its queues.
sync
sleep 1
echo "VMSTATE-FORGE-READY"

while :; do sleep 3600; done
