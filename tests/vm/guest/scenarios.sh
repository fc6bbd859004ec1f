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

# --- gpu: hxfr-gpu as the VM's GPU (tests/gpu/vm_gpu.py drives it). The
# host steers the phases through the virtio-serial port org.hxfr.ctl
# (opened once as fd 3): the guest prints "@@HXFR-GPU what?@@" and waits
# for the host's answer line. One boot checks fbcon, a DRM client, hot-plug
# and resize; the host resets the VM (QMP system_reset) and the rebooted
# guest checks fbcon and DRM again, then what it sees once hxfr-gpu is
# killed.

# gpu_ask WHAT: prints the question, reads the answer into $answer.
gpu_ask() {
    echo "@@HXFR-GPU $1?@@"
    answer=""
    read -r answer <&3 || return 1
}

# gpu_wait_connector NAME [STATE]: waits (about 30 s at most) until
# /sys/class/drm/card0-NAME/status says STATE (default connected).
gpu_wait_connector() {
    i=0
    while [ $i -lt 300 ]; do
        [ "$(cat "/sys/class/drm/card0-$1/status" 2>/dev/null)" = "${2:-connected}" ] && return 0
        sleep 0.1
        i=$((i + 1))
    done
    echo "scenario: connector $1 did not become ${2:-connected}"
    return 1
}

# gpu_wait_mode NAME WxH: waits until the connector's preferred (first) mode
# is WxH.
gpu_wait_mode() {
    i=0
    while [ $i -lt 300 ]; do
        [ "$(head -n 1 "/sys/class/drm/card0-$1/modes" 2>/dev/null)" = "$2" ] && return 0
        sleep 0.1
        i=$((i + 1))
    done
    echo "scenario: $1 offers $(head -n 1 "/sys/class/drm/card0-$1/modes"), not $2"
    return 1
}

# fbcon draws text; the guest hashes /dev/fb0 (packed RGB) and the host
# compares QMP screendumps with it.
gpu_fbcon() {
    echo 0 > /sys/class/graphics/fbcon/cursor_blink 2>/dev/null
    printf '\033[2J\033[Hhxfr-gpu: fbcon in phase %s\n' "$1" > /dev/tty1
    hxfr-gpu-guest fb-rgb > /tmp/fb.rgb 2> /tmp/fb.size || return 1
    echo "@@HXFR-GPU fb $(cat /tmp/fb.size) $(sha256sum /tmp/fb.rgb | cut -d' ' -f1)@@"
    gpu_ask fb-checked
}

# gpu_draw NAME SIZE FRAMES: a DRM client draws the desktop pattern and
# holds the mode while the host compares hxfr-gpu's view of the resource.
gpu_draw() {
    echo "@@HXFR-BEGIN@@"
    hxfr-gpu-guest draw "$1" "$2" "$3" /tmp/frame.raw --hold <&3 > /tmp/draw.json &
    pid=$!
    i=0
    while [ ! -s /tmp/draw.json ] && [ $i -lt 600 ]; do
        kill -0 $pid 2>/dev/null || break
        sleep 0.1
        i=$((i + 1))
    done
    cat /tmp/draw.json
    echo "@@HXFR-END 0@@"
    [ -s /tmp/draw.json ] || { wait $pid; return 1; }
    echo "@@HXFR-GPU drawn $(sha256sum /tmp/frame.raw | cut -d' ' -f1)@@"
    rc=0
    wait $pid || rc=$?
    rm -f /tmp/draw.json
    return $rc
}

scenario_gpu() {
    port_link org.hxfr.ctl || return 1
    exec 3< /dev/virtio-ports/org.hxfr.ctl
    gpu_ask phase || return 1
    phase=$answer
    gpu_wait_connector Virtual-1 || return 1
    echo "@@HXFR-GPU bound $(head -n 1 /sys/class/drm/card0-Virtual-1/modes)@@"
    gpu_fbcon "$phase" || return 1
    if [ "$phase" = a ]; then
        gpu_draw Virtual-1 preferred 3 || return 1
        gpu_ask hxfr || return 1
        gpuhxfr_checks || return 1
        gpu_ask hotplug || return 1
        gpu_wait_connector Virtual-2 || return 1
        echo "@@HXFR-GPU plugged $(head -n 1 /sys/class/drm/card0-Virtual-2/modes)@@"
        gpu_draw Virtual-2 1280x720 3 || return 1
        gpu_ask resize || return 1
        gpu_wait_mode Virtual-1 1024x768 || return 1
        gpu_draw Virtual-1 preferred 3 || return 1
        gpu_ask reboot
        sleep 600 # the host resets the VM now
        return 1
    fi
    gpu_draw Virtual-1 preferred 3 || return 1
    gpu_ask kill || return 1
    # hxfr-gpu is gone: record what a DRM client and the kernel see.
    hxfr-gpu-guest draw Virtual-1 preferred 100000 /tmp/k.raw --progress /tmp/k.progress \
        > /tmp/k.json 2> /tmp/k.err &
    pid=$!
    # At least 2 s, then until its frame count has stood still for 1 s (it
    # blocks once the control ring is full), 5 s at most.
    last=-1
    still=0
    i=0
    while { [ $still -lt 10 ] || [ $i -lt 20 ]; } && [ $i -lt 50 ]; do
        sleep 0.1
        now=$(cat /tmp/k.progress 2>/dev/null || echo 0)
        if [ "$now" = "$last" ]; then still=$((still + 1)); else still=0; fi
        last=$now
        i=$((i + 1))
    done
    state=gone
    [ -r /proc/$pid/stat ] && state=$(cut -d' ' -f3 /proc/$pid/stat)
    echo "@@HXFR-GPU after-kill frames=$(cat /tmp/k.progress 2>/dev/null || echo 0) state=$state@@"
    echo "@@HXFR-LOG-BEGIN dmesg@@"
    dmesg | grep -i -E "virtio|drm|gpu" | tail -n 5
    echo "@@HXFR-LOG-END dmesg 0@@"
    return 0
}

# --- hxfr-gpu as the VM's HXFR server, inside scenario_gpu's phase a
# (tests/gpu/vm_hxfr.py drives it from vm_gpu.py): pull (hxfr-send --source
# drm over virtio-serial, then over user-mode TCP), push (a DRM client draws
# on Virtual-1 with DIRTYFB while the host subscribes; the still screen
# afterwards), Helix's flow (Virtual-2 plugged in by the host's
# ENABLE_SCANOUT, drawn on, unplugged by DISABLE_SCANOUT).

gpuhxfr_checks() {
    port_link org.hxfr.0 || return 1
    rc=0
    for uri in serial:/dev/virtio-ports/org.hxfr.0 "tcp:10.0.2.2:$HXFR_PORT"; do
        case $uri in tcp:*) net_up || rc=1 ;; esac
        result hxfr-send --connect "$uri" --source drm --size "$HXFR_SIZE" \
            --frames "$HXFR_FRAMES" --fps 0 --window 2 --json --output /tmp/pull.h264 || rc=1
        send_output /tmp/pull.h264 || rc=1
    done
    [ $rc = 0 ] || return 1

    gpu_ask push || return 1
    gpu_draw Virtual-1 preferred "$HXFR_FRAMES" || return 1

    gpu_ask helix || return 1
    gpu_wait_connector Virtual-2 || return 1
    echo "@@HXFR-GPU plugged $(head -n 1 /sys/class/drm/card0-Virtual-2/modes)@@"
    gpu_draw Virtual-2 preferred "$HXFR_FRAMES" || return 1
    gpu_wait_connector Virtual-2 disconnected || return 1
    echo "@@HXFR-GPU unplugged Virtual-2@@"
}
