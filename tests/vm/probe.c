/* hxfr-vm-probe: a small guest-side program that checks the VM plumbing the
 * end-to-end tests rely on, without any hxfr code: a byte stream through a
 * virtio-serial port, TCP through QEMU's user-mode network, AF_VSOCK
 * loopback inside the guest, and the ivshmem BAR. It is copied into the
 * test initramfs and also useful by hand in scripts/vm-shell.sh.
 *
 *   hxfr-vm-probe echo URI COUNT SIZE OUT   send COUNT blocks of SIZE bytes
 *                                           to an echo peer at URI, check
 *                                           every echoed byte, write what
 *                                           came back to OUT
 *   hxfr-vm-probe echo-server vsock:PORT    echo one connection, then exit
 *   hxfr-vm-probe ivshmem OUT               find the ivshmem device, check
 *                                           the host's greeting at offset 0,
 *                                           answer at offset 4096
 *
 * URI is serial:PATH, tcp:IPV4:PORT or vsock:CID:PORT. Results are one JSON
 * line on stdout; the exit status is 0 only if every check passed. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/vm_sockets.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define PROBE_MAX_BLOCK   (1u << 20)
#define IVSHMEM_VENDOR    0x1af4u
#define IVSHMEM_DEVICE    0x1110u
#define IVSHMEM_GREETING  "hxfr-ivshmem-host"
#define IVSHMEM_ANSWER    "hxfr-ivshmem-guest"
#define IVSHMEM_ANSWER_AT 4096u

/* The byte at position i of block n: cheap, and different for every block,
 * so a dropped, repeated or reordered block is caught. */
static uint8_t pattern_byte(uint32_t block, uint32_t i)
{
    return (uint8_t)((i * 31u) ^ (block * 131u) ^ (i >> 8));
}

static int parse_u32(const char *s, uint32_t max, uint32_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v > max) {
        return -EINVAL;
    }
    *out = (uint32_t)v;
    return 0;
}

/* Opens URI in blocking mode. Returns the fd or -errno. */
static int open_uri(const char *uri)
{
    int fd = -1;
    int ret = 0;

    if (strncmp(uri, "serial:", 7) == 0) {
        fd = open(uri + 7, O_RDWR | O_CLOEXEC | O_NOCTTY);
        return fd < 0 ? -errno : fd;
    }
    if (strncmp(uri, "tcp:", 4) == 0) {
        char host[64];
        const char *colon = strrchr(uri + 4, ':');
        uint32_t port = 0;
        struct sockaddr_in sa = {.sin_family = AF_INET};
        size_t hlen = colon ? (size_t)(colon - (uri + 4)) : 0;

        if (colon == NULL || hlen == 0 || hlen >= sizeof(host) ||
            parse_u32(colon + 1, 65535, &port) < 0) {
            return -EINVAL;
        }
        memcpy(host, uri + 4, hlen);
        host[hlen] = '\0';
        if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
            return -EINVAL;
        }
        sa.sin_port = htons((uint16_t)port);
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            return -errno;
        }
        int one = 1;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
            ret = -errno;
            close(fd);
            return ret;
        }
        return fd;
    }
    if (strncmp(uri, "vsock:", 6) == 0) {
        char cid_s[16];
        const char *colon = strrchr(uri + 6, ':');
        uint32_t cid = 0;
        uint32_t port = 0;
        size_t clen = colon ? (size_t)(colon - (uri + 6)) : 0;
        struct sockaddr_vm sa = {.svm_family = AF_VSOCK};

        if (colon == NULL || clen == 0 || clen >= sizeof(cid_s)) {
            return -EINVAL;
        }
        memcpy(cid_s, uri + 6, clen);
        cid_s[clen] = '\0';
        if (parse_u32(cid_s, UINT32_MAX, &cid) < 0 || parse_u32(colon + 1, UINT32_MAX, &port) < 0) {
            return -EINVAL;
        }
        sa.svm_cid = cid;
        sa.svm_port = port;
        fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            return -errno;
        }
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
            ret = -errno;
            close(fd);
            return ret;
        }
        return fd;
    }
    return -EPROTONOSUPPORT;
}

static int write_all(int fd, const uint8_t *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return n < 0 ? -errno : -EIO;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Reads exactly len bytes. Returns 0, -EPIPE on end of stream, or -errno. */
static int read_all(int fd, uint8_t *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = read(fd, buf, len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return -errno;
        }
        if (n == 0) {
            return -EPIPE;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Sends one block and waits for its echo before the next: the probe checks
 * the byte path, not throughput, and stop-and-wait cannot deadlock on full
 * buffers in either direction. */
static int cmd_echo(const char *uri, const char *count_s, const char *size_s, const char *out)
{
    uint32_t count = 0;
    uint32_t size = 0;
    uint32_t received = 0;
    uint64_t mismatches = 0;
    uint8_t *tx = NULL;
    uint8_t *rx = NULL;
    int fd = -1;
    int out_fd = -1;
    int ret = 0;

    if (parse_u32(count_s, 100000, &count) < 0 || parse_u32(size_s, PROBE_MAX_BLOCK, &size) < 0 ||
        size == 0) {
        fprintf(stderr, "probe: bad COUNT or SIZE\n");
        return 2;
    }
    tx = malloc(size);
    rx = malloc(size);
    if (tx == NULL || rx == NULL) {
        ret = -ENOMEM;
        goto out;
    }
    fd = open_uri(uri);
    if (fd < 0) {
        ret = fd;
        fprintf(stderr, "probe: cannot open %s: %s\n", uri, strerror(-ret));
        goto out;
    }
    out_fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out_fd < 0) {
        ret = -errno;
        fprintf(stderr, "probe: cannot open %s: %s\n", out, strerror(-ret));
        goto out;
    }
    for (uint32_t b = 0; b < count; b++) {
        for (uint32_t i = 0; i < size; i++) {
            tx[i] = pattern_byte(b, i);
        }
        ret = write_all(fd, tx, size);
        if (ret == 0) {
            ret = read_all(fd, rx, size);
        }
        if (ret < 0) {
            fprintf(stderr, "probe: block %" PRIu32 ": %s\n", b, strerror(-ret));
            goto out;
        }
        for (uint32_t i = 0; i < size; i++) {
            mismatches += rx[i] != tx[i];
        }
        ret = write_all(out_fd, rx, size);
        if (ret < 0) {
            fprintf(stderr, "probe: writing %s: %s\n", out, strerror(-ret));
            goto out;
        }
        received++;
    }
out:
    printf("{\"mode\":\"echo\",\"uri\":\"%s\",\"sent\":%" PRIu32 ",\"received\":%" PRIu32
           ",\"block\":%" PRIu32 ",\"mismatches\":%" PRIu64 ",\"error\":%d}\n",
           uri, count, received, size, mismatches, ret);
    if (out_fd >= 0) {
        close(out_fd);
    }
    if (fd >= 0) {
        close(fd);
    }
    free(rx);
    free(tx);
    return ret == 0 && mismatches == 0 && received == count ? 0 : 1;
}

static int cmd_echo_server(const char *uri)
{
    uint32_t port = 0;
    struct sockaddr_vm sa = {.svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY};
    uint8_t buf[65536];
    int lfd = -1;
    int cfd = -1;
    int ret = 1;

    if (strncmp(uri, "vsock:", 6) != 0 || parse_u32(uri + 6, UINT32_MAX, &port) < 0) {
        fprintf(stderr, "probe: echo-server wants vsock:PORT\n");
        return 2;
    }
    sa.svm_port = port;
    lfd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 1) < 0) {
        fprintf(stderr, "probe: vsock listen on %" PRIu32 ": %s\n", port, strerror(errno));
        goto out;
    }
    /* The parent waits for this line before it connects. */
    printf("listening\n");
    fflush(stdout);
    cfd = accept(lfd, NULL, NULL);
    if (cfd < 0) {
        fprintf(stderr, "probe: accept: %s\n", strerror(errno));
        goto out;
    }
    for (;;) {
        ssize_t n = read(cfd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            ret = n == 0 ? 0 : 1;
            break;
        }
        if (write_all(cfd, buf, (size_t)n) < 0) {
            break;
        }
    }
out:
    if (cfd >= 0) {
        close(cfd);
    }
    if (lfd >= 0) {
        close(lfd);
    }
    return ret;
}

static int read_hex_file(const char *path, unsigned *out)
{
    char buf[32] = {0};
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return -errno;
    }
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0) {
        return -EIO;
    }
    *out = (unsigned)strtoul(buf, NULL, 16);
    return 0;
}

/* Finds the first PCI device with the ivshmem vendor/device ids and stores
 * its sysfs name (e.g. 0000:00:04.0). */
static int find_ivshmem(char *name, size_t len)
{
    DIR *dir = opendir("/sys/bus/pci/devices");
    struct dirent *de;
    int ret = -ENODEV;

    if (dir == NULL) {
        return -errno;
    }
    while ((de = readdir(dir)) != NULL) {
        char path[PATH_MAX];
        unsigned vendor = 0;
        unsigned device = 0;

        if (de->d_name[0] == '.') {
            continue;
        }
        snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/vendor", de->d_name);
        if (read_hex_file(path, &vendor) < 0) {
            continue;
        }
        snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/device", de->d_name);
        if (read_hex_file(path, &device) < 0) {
            continue;
        }
        if (vendor == IVSHMEM_VENDOR && device == IVSHMEM_DEVICE) {
            snprintf(name, len, "%s", de->d_name);
            ret = 0;
            break;
        }
    }
    closedir(dir);
    return ret;
}

static int cmd_ivshmem(const char *out)
{
    char dev[256] = "";
    char path[PATH_MAX];
    struct stat st;
    uint8_t *map = MAP_FAILED;
    size_t size = 0;
    bool greeting_ok = false;
    int fd = -1;
    int ret = find_ivshmem(dev, sizeof(dev));

    if (ret < 0) {
        fprintf(stderr, "probe: no ivshmem device: %s\n", strerror(-ret));
        goto out;
    }
    snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/resource2", dev);
    fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) < 0) {
        ret = -errno;
        fprintf(stderr, "probe: %s: %s\n", path, strerror(-ret));
        goto out;
    }
    size = (size_t)st.st_size;
    if (size < IVSHMEM_ANSWER_AT + 64) {
        ret = -ERANGE;
        fprintf(stderr, "probe: BAR 2 of %s is only %zu bytes\n", dev, size);
        goto out;
    }
    map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) {
        ret = -errno;
        fprintf(stderr, "probe: mmap %s: %s\n", path, strerror(-ret));
        goto out;
    }
    greeting_ok = memcmp(map, IVSHMEM_GREETING, sizeof(IVSHMEM_GREETING)) == 0;
    memcpy(map + IVSHMEM_ANSWER_AT, IVSHMEM_ANSWER, sizeof(IVSHMEM_ANSWER));
    if (msync(map, size, MS_SYNC) < 0) {
        ret = -errno;
    }
    if (out != NULL) {
        int ofd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (ofd < 0 || write_all(ofd, map, 64) < 0) {
            ret = -EIO;
        }
        if (ofd >= 0) {
            close(ofd);
        }
    }
out:
    printf("{\"mode\":\"ivshmem\",\"device\":\"%s\",\"size\":%zu,\"greeting_ok\":%s,"
           "\"error\":%d}\n",
           dev, size, greeting_ok ? "true" : "false", ret);
    if (map != MAP_FAILED) {
        munmap(map, size);
    }
    if (fd >= 0) {
        close(fd);
    }
    return ret == 0 && greeting_ok ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc == 6 && strcmp(argv[1], "echo") == 0) {
        return cmd_echo(argv[2], argv[3], argv[4], argv[5]);
    }
    if (argc == 3 && strcmp(argv[1], "echo-server") == 0) {
        return cmd_echo_server(argv[2]);
    }
    if ((argc == 2 || argc == 3) && strcmp(argv[1], "ivshmem") == 0) {
        return cmd_ivshmem(argc == 3 ? argv[2] : NULL);
    }
    fprintf(stderr, "usage: hxfr-vm-probe echo URI COUNT SIZE OUT\n"
                    "       hxfr-vm-probe echo-server vsock:PORT\n"
                    "       hxfr-vm-probe ivshmem [OUT]\n");
    return 2;
}
