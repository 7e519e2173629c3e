/* The Pod sandbox's process, as Kubernetes' own pause does: it holds the
 * Pod's namespaces, reaps the children it inherits, and ends on SIGINT or
 * SIGTERM. Compiled static by plugproof (gcc -static), so that its image
 * needs nothing else. */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static void reap(int signal) {
    (void)signal;
    while (waitpid(-1, 0, WNOHANG) > 0) {
    }
}

static void quit(int signal) {
    (void)signal;
    _exit(0);
}

int main(void) {
    signal(SIGINT, quit);
    signal(SIGTERM, quit);
    signal(SIGCHLD, reap);
    for (;;) {
        pause();
    }
}
