/* What a cgroup leaf adds to a launch, on a host whose cgroup v2 hierarchy offers
 * no controllers to take a real sbx --memory launch (a hybrid layout): per round,
 * mkdir the leaf, write one limit-sized file, open it, clone3 a child straight into
 * it (CLONE_INTO_CGROUP), wait, rmdir; against a plain fork and wait. Prints the
 * median microseconds of each over N rounds, interleaved. Run as root on a cgroup v2
 * directory (bench/compare.sh makes and removes one). Built by bench/compare.sh. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void die(const char *what) {
    perror(what);
    exit(1);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: cgroup_leaf CGROUP_V2_DIR ROUNDS\n");
        return 2;
    }
    int n = atoi(argv[2]);
    double *leaf = calloc(n, sizeof *leaf), *plain = calloc(n, sizeof *plain);
    char dir[4096], file[4200];
    snprintf(dir, sizeof dir, "%s/sbx-bench-leaf", argv[1]);
    snprintf(file, sizeof file, "%s/cgroup.max.depth", dir);
    for (int i = 0; i < n; i++) {
        double t = now_us();
        pid_t p = fork();
        if (p == 0)
            _exit(0);
        waitpid(p, NULL, 0);
        plain[i] = now_us() - t;

        t = now_us();
        if (mkdir(dir, 0755))
            die("mkdir");
        int f = open(file, O_WRONLY | O_CLOEXEC);
        if (f < 0 || write(f, "1", 1) != 1)
            die("write");
        close(f);
        int cg = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (cg < 0)
            die("open");
        struct clone_args a;
        memset(&a, 0, sizeof a);
        a.flags = CLONE_INTO_CGROUP;
        a.exit_signal = SIGCHLD;
        a.cgroup = cg;
        p = syscall(SYS_clone3, &a, sizeof a);
        if (p == 0)
            _exit(0);
        if (p < 0)
            die("clone3");
        waitpid(p, NULL, 0);
        close(cg);
        if (rmdir(dir))
            die("rmdir");
        leaf[i] = now_us() - t;
    }
    qsort(leaf, n, sizeof *leaf, cmp);
    qsort(plain, n, sizeof *plain, cmp);
    printf("  %8.1f us median  fork + wait\n", plain[n / 2]);
    printf("  %8.1f us median  mkdir leaf + write a limit + clone3 into it + wait + rmdir\n", leaf[n / 2]);
    printf("  %8.1f us         added by the leaf (target: <= 1000 us)\n", leaf[n / 2] - plain[n / 2]);
    return 0;
}
