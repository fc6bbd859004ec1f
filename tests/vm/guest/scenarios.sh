# Guest side of the VM scenarios, sourced by /init. Each scenario_NAME runs
# with the HXFR_* variables taken from the kernel command line (HXFR_PORT,
# HXFR_FRAMES, HXFR_SIZE, HXFR_BLOCK, ...), prints the JSON summary of the
# program under test between @@HXFR-BEGIN@@ and @@HXFR-END@@, and sends
# the bytes it received back to the host through the virtio-serial port
# org.hxfr.out (a file on the host), announcing their size and SHA-256 so
# that the host can tell a complete copy from a truncated one.

# Runs a command with its stdout between the result markers; returns its
# exit status.
result() {
    echo "@@HXFR-BEGIN@@"
    rc=0
    "$@" || rc=$?
    echo "@@HXFR-END $rc@@"
    return $rc
}

# Copies FILE to the host through org.hxfr.out.
send_output() {
    port_link org.hxfr.out || return 1
    [ -f "$1" ] || { echo "scenario: no output file $1"; return 1; }
    cat "$1" > /dev/virtio-ports/org.hxfr.out || return 1
    echo "@@HXFR-OUT $(wc -c < "$1") $(sha256sum "$1" | cut -d' ' -f1)@@"
}

# QEMU user-mode networking: the guest is 10.0.2.15, the host 10.0.2.2.
net_up() {
    ip link set lo up
    ip link set eth0 up || return 1
    ip addr add 10.0.2.15/24 dev eth0 || return 1
    ip route add default via 10.0.2.2
}

# Starts a guest-side server in the background and waits until it prints
# the line PATTERN (it says so once it listens), at most about 20 s.
# Stores its pid in bg_pid and its output in /tmp/bg.log.
start_bg() {
    pattern=$1
    shift
    "$@" > /tmp/bg.log 2>&1 &
    bg_pid=$!
    i=0
    while [ $i -lt 200 ]; do
        grep -q "$pattern" /tmp/bg.log 2>/dev/null && return 0
        kill -0 $bg_pid 2>/dev/null || break
        sleep 0.1
        i=$((i + 1))
    done
    echo "scenario: background server did not start:"
    cat /tmp/bg.log
    return 1
}

# Path of BAR 2 (the shared memory) of the first ivshmem device: PCI vendor
# 0x1af4 (Red Hat, Inc.), device 0x1110 (Inter-VM shared memory).
ivshmem_bar() {
    for d in /sys/bus/pci/devices/*; do
        if [ "$(cat "$d/vendor")" = 0x1af4 ] && [ "$(cat "$d/device")" = 0x1110 ]; then
            echo "$d/resource2"
            return 0
        fi
    done
    echo "scenario: no ivshmem device" >&2
    return 1
}

# --- plumbing: the transports and the shared memory, with hxfr-vm-probe
# (no hxfr code), all in one boot. Each check runs even if one before it
# failed, so the host sees every result.

scenario_plumbing() {
    rc=0
    port_link org.hxfr.0 || rc=1
    result hxfr-vm-probe echo serial:/dev/virtio-ports/org.hxfr.0 \
        "$HXFR_FRAMES" "$HXFR_BLOCK" /tmp/serial.bin || rc=1
    send_output /tmp/serial.bin || rc=1

    net_up || rc=1
    result hxfr-vm-probe echo "tcp:10.0.2.2:$HXFR_PORT" \
        "$HXFR_FRAMES" "$HXFR_BLOCK" /tmp/tcp.bin || rc=1
    send_output /tmp/tcp.bin || rc=1

    if start_bg listening hxfr-vm-probe echo-server "vsock:$HXFR_VSOCK_PORT"; then
        result hxfr-vm-probe echo "vsock:1:$HXFR_VSOCK_PORT" \
            "$HXFR_FRAMES" "$HXFR_BLOCK" /tmp/vsock.bin || rc=1
        wait $bg_pid || { echo "scenario: echo server failed"; cat /tmp/bg.log; rc=1; }
    else
        rc=1
    fi
    send_output /tmp/vsock.bin || rc=1

    result hxfr-vm-probe ivshmem /tmp/ivshmem.bin || rc=1
    send_output /tmp/ivshmem.bin || rc=1
    return $rc
}

# --- hxfr end to end: hxfr-send in the guest, hxfrd on the host (or in
# the guest for vsock loopback), the returned H.264 goes to the host.

# hxfr_send URI [extra hxfr-send options]: streams HXFR_FRAMES pattern
# frames of HXFR_SIZE as fast as the host takes them into /tmp/out.h264.
hxfr_send() {
    uri=$1
    shift
    result hxfr-send --connect "$uri" --source pattern --size "$HXFR_SIZE" \
        --frames "$HXFR_FRAMES" --fps 0 --output /tmp/out.h264 --json "$@"
}

scenario_serial() {
    port_link org.hxfr.0 || return 1
    hxfr_send serial:/dev/virtio-ports/org.hxfr.0 || return 1
    send_output /tmp/out.h264
}

scenario_tcp() {
    net_up || return 1
    hxfr_send "tcp:10.0.2.2:$HXFR_PORT" || return 1
    send_output /tmp/out.h264
}

# The pixels go through a ring in the ivshmem BAR that hxfr-send sets up in
# region HXFR_REGION (hxfrd --shm NAME=PATH on the host); hxfr-send finds
# the BAR itself (hxfr_shm_find_ivshmem), the same one ivshmem_bar names.
scenario_ivshmem() {
    bar=$(ivshmem_bar) || return 1
    echo "scenario: ivshmem BAR $bar ($(stat -c %s "$bar") bytes)"
    port_link org.hxfr.0 || return 1
    hxfr_send serial:/dev/virtio-ports/org.hxfr.0 --shm-region "$HXFR_REGION" || return 1
    send_output /tmp/out.h264
}

# Both ends inside the guest: hxfrd listens on AF_VSOCK, hxfr-send reaches
# it through vsock_loopback (CID 1). hxfrd's log is printed for the host.
scenario_vsock() {
    # hxfrd writes its endpoint to --ready-fd once it listens; reading the
    # fifo waits for that (or for EOF if hxfrd exits first).
    mkfifo /tmp/hxfrd.ready
    hxfrd --listen "vsock:$HXFR_PORT" --ready-fd 3 3> /tmp/hxfrd.ready > /tmp/hxfrd.log 2>&1 &
    hxfrd_pid=$!
    rc=0
    ready=""
    read -r ready < /tmp/hxfrd.ready
    echo "scenario: guest hxfrd ready: $ready"
    if [ -n "$ready" ]; then
        hxfr_send "vsock:1:$HXFR_PORT" || rc=1
    else
        rc=1
    fi
    kill $hxfrd_pid 2>/dev/null
    hxfrd_rc=0
    wait $hxfrd_pid || hxfrd_rc=$?
    echo "@@HXFR-LOG-BEGIN hxfrd@@"
    cat /tmp/hxfrd.log
    echo "@@HXFR-LOG-END hxfrd $hxfrd_rc@@"
    [ $rc -eq 0 ] || return 1
    send_output /tmp/out.h264
}
