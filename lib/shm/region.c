/* Guest-side regions: a sealed memfd, a mapped file or PCI BAR, and the
 * search for an ivshmem device in sysfs. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hxfr/shm.h>

HXFR_EXPORT int hxfr_shm_region_memfd(struct hxfr_shm_region *r, const char *name, size_t size)
{
    memset(r, 0, sizeof(*r));
    r->fd = -1;
    if (size == 0) {
        return -EINVAL;
    }
#ifndef __linux__
    /* Sealed memfds are Linux only; elsewhere only file regions work. */
    (void)name;
    return -ENOSYS;
#else
    int ret;
    int fd = memfd_create(name ? name : "hxfr-ring", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) {
        return -errno;
    }
    if (ftruncate(fd, (off_t)size) < 0) {
        ret = -errno;
        goto fail;
    }
    /* The host refuses a region that could shrink under its mapping. */
    if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
        ret = -errno;
        goto fail;
    }
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        ret = -errno;
        goto fail;
    }
    r->base = p;
    r->size = size;
    r->fd = fd;
    return 0;

fail:
    close(fd);
    return ret;
#endif
}

HXFR_EXPORT int hxfr_shm_region_open(struct hxfr_shm_region *r, const char *path)
{
    struct stat st;
    int ret;

    memset(r, 0, sizeof(*r));
    r->fd = -1;
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        return -errno;
    }
    if (fstat(fd, &st) < 0) {
        ret = -errno;
        goto out;
    }
    if (!S_ISREG(st.st_mode) || st.st_size <= 0) {
        ret = -EINVAL;
        goto out;
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        ret = -errno;
        goto out;
    }
    r->base = p;
    r->size = (size_t)st.st_size;
    ret = 0;

out:
    /* The mapping keeps the file alive; the fd is not needed any more. */
    close(fd);
    return ret;
}

HXFR_EXPORT void hxfr_shm_region_finish(struct hxfr_shm_region *r)
{
    if (r->base && r->size) {
        munmap(r->base, r->size);
    }
    if (r->fd > 0) {
        close(r->fd);
    }
    r->base = NULL;
    r->size = 0;
    r->fd = -1;
}

/* Reads a sysfs hex attribute such as "0x1af4". */
static long read_hex(const char *dir, const char *name)
{
    char path[512], buf[32];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "re");
    if (!f) {
        return -1;
    }
    long v = -1;
    if (fgets(buf, sizeof(buf), f)) {
        v = strtol(buf, NULL, 16);
    }
    fclose(f);
    return v;
}

HXFR_EXPORT int hxfr_shm_find_ivshmem(char *buf, size_t len)
{
    static const char root[] = "/sys/bus/pci/devices";
    int ret = -ENOENT;
    DIR *d = opendir(root);
    if (!d) {
        return -ENOENT;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') {
            continue;
        }
        char dir[300];
        snprintf(dir, sizeof(dir), "%s/%s", root, e->d_name);
        if (read_hex(dir, "vendor") != 0x1af4 || read_hex(dir, "device") != 0x1110) {
            continue;
        }
        int n = snprintf(buf, len, "%s/resource2", dir);
        ret = n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
        break;
    }
    closedir(d);
    return ret;
}
