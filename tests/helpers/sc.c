/* Test helper for tests/seccomp.rs, built static at test time.
 *   sc mkdir PATH           mkdir(PATH, 0755)
 *   sc raw NR [ARGS...]     syscall(NR, ARGS...) (x32 calls: NR | 0x40000000)
 *   sc trap NR [ARGS...]    the same with a SIGSYS handler that prints "trapped"
 *   sc int80 NR [ARGS...]   an i386 syscall through int 0x80
 *   sc thread NR [ARGS...]  the call from a second thread; the main thread
 *                           joins it and prints "survived" (the call's own
 *                           line shows only if the thread lived)
 * Prints "ret=R errno=E" and exits 0; numbers may be hex (0x...). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static void on_sigsys(int sig) {
    (void)sig;
    static const char msg[] = "trapped\n";
    write(1, msg, sizeof msg - 1);
    _exit(0);
}

static long num(const char *s) { return (long)strtoull(s, NULL, 0); }

static long call_nr, call_args[6];

static void *in_thread(void *unused) {
    (void)unused;
    long ret = syscall(call_nr, call_args[0], call_args[1], call_args[2], call_args[3],
                       call_args[4], call_args[5]);
    printf("ret=%ld errno=%d\n", ret, ret < 0 ? errno : 0);
    fflush(stdout);
    return NULL;
}

int main(int argc, char **argv) {
    long a[6] = {0};
    long ret;
    if (argc < 3) return 2;
    for (int i = 3; i < argc && i < 9; i++) a[i - 3] = num(argv[i]);
    errno = 0;
    if (!strcmp(argv[1], "mkdir")) {
        ret = mkdir(argv[2], 0755);
    } else if (!strcmp(argv[1], "raw") || !strcmp(argv[1], "trap")) {
        if (argv[1][0] == 't') signal(SIGSYS, on_sigsys);
        ret = syscall(num(argv[2]), a[0], a[1], a[2], a[3], a[4], a[5]);
    } else if (!strcmp(argv[1], "int80")) {
        /* i386 ABI: eax = nr, ebx, ecx, edx = args; the result is -errno. */
        __asm__ volatile("int $0x80"
                         : "=a"(ret)
                         : "a"(num(argv[2])), "b"(a[0]), "c"(a[1]), "d"(a[2])
                         : "memory");
        if (ret < 0 && ret > -4096) { errno = (int)-ret; ret = -1; }
    } else if (!strcmp(argv[1], "thread")) {
        pthread_t t;
        call_nr = num(argv[2]);
        memcpy(call_args, a, sizeof a);
        if (pthread_create(&t, NULL, in_thread, NULL)) return 3;
        pthread_join(t, NULL);
        printf("survived\n");
        return 0;
    } else {
        return 2;
    }
    printf("ret=%ld errno=%d\n", ret, ret < 0 ? errno : 0);
    return 0;
}
