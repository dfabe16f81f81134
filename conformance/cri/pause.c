/* The pod sandbox's process, as Kubernetes' pause: hold the pod's
 * namespaces, reap the zombies of a shared PID namespace, exit on
 * SIGINT or SIGTERM. Built static into the suite's pause image. */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static void quit(int sig) { (void)sig; _exit(0); }

static void reap(int sig)
{
    (void)sig;
    while (waitpid(-1, 0, WNOHANG) > 0)
        ;
}

int main(void)
{
    struct sigaction q = {.sa_handler = quit}, r = {.sa_handler = reap, .sa_flags = SA_NOCLDSTOP | SA_RESTART};
    sigaction(SIGINT, &q, 0);
    sigaction(SIGTERM, &q, 0);
    sigaction(SIGCHLD, &r, 0);
    for (;;)
        pause();
}
