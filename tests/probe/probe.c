/* The test suite's probe: the calls no shell tool makes, one per subcommand, each
 * printing what happened ("ok ..." or the errno name) on stdout. Built statically by
 * the tests (tests/common/mod.rs), never shipped. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/keyctl.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

static int result(long r) {
    if (r < 0) {
        printf("%s\n", strerrorname_np(errno));
        return 1;
    }
    printf("ok %ld\n", r);
    return 0;
}

static int abstract_connect(const char *name) {
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    size_t n = strlen(name);
    if (s < 0 || n + 1 > sizeof a.sun_path)
        return result(-1);
    memcpy(a.sun_path + 1, name, n);
    return result(connect(s, (struct sockaddr *)&a, offsetof(struct sockaddr_un, sun_path) + 1 + n));
}

/* Receive one descriptor over the unix socket at `path`, then open `name` relative
 * to it and print the first line of what it holds. */
static int recv_fd_open(const char *path, const char *name) {
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    strncpy(a.sun_path, path, sizeof a.sun_path - 1);
    if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof a) < 0) {
        printf("connect %s\n", strerrorname_np(errno));
        return 1;
    }
    char byte, cbuf[CMSG_SPACE(sizeof(int))];
    struct iovec iov = {.iov_base = &byte, .iov_len = 1};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
    if (recvmsg(s, &m, 0) < 1 || !CMSG_FIRSTHDR(&m)) {
        printf("recvmsg %s\n", strerrorname_np(errno));
        return 1;
    }
    int dirfd;
    memcpy(&dirfd, CMSG_DATA(CMSG_FIRSTHDR(&m)), sizeof dirfd);
    int fd = openat(dirfd, name, O_RDONLY);
    if (fd < 0)
        return result(-1);
    char buf[256] = {0};
    ssize_t n = read(fd, buf, sizeof buf - 1);
    if (n < 0)
        return result(-1);
    buf[strcspn(buf, "\n")] = 0;
    printf("read %s\n", buf);
    return 0;
}

/* Stand in for a kernel without Landlock: landlock_create_ruleset answers ENOSYS
 * for CMD and everything it runs. */
static int without_landlock(char **cmd) {
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 444, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog p = {.len = sizeof f / sizeof f[0], .filter = f};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &p) < 0)
        return result(-1);
    execvp(cmd[0], cmd);
    return result(-1);
}

/* A fork bomb that settles: every process forks until fork fails, then waits for
 * stdin to close, so the population stops at whatever ceiling stopped it and can be
 * counted. The first process says which errno refused it. */
static int forkbomb(void) {
    pid_t first = getpid();
    while (fork() >= 0)
        ;
    if (getpid() == first)
        printf("refused %s\n", strerrorname_np(errno));
    char b;
    while (read(0, &b, 1) > 0)
        ;
    _exit(0);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    const char *c = argc > 1 ? argv[1] : "";
    if (!strcmp(c, "forkbomb"))
        return forkbomb();
#if defined(__x86_64__)
    if (!strcmp(c, "x32") && argc == 3)
        /* The same call through the x32 ABI: bit 30 set. */
        return result(syscall(0x40000000L | atol(argv[2])));
    if (!strcmp(c, "int80")) {
        /* getpid through the i386 entry (number 20 there). */
        long r = 20;
        __asm__ volatile("int $0x80" : "+a"(r) : : "memory");
        printf("survived %ld\n", r);
        return 0;
    }
#endif
    if (!strcmp(c, "abstract") && argc == 3)
        return abstract_connect(argv[2]);
    if (!strcmp(c, "kill") && argc == 4) {
        /* Ignored here, so that the probe lives to report on a group it belongs to. */
        if (atoi(argv[3]) > 0)
            signal(atoi(argv[3]), SIG_IGN);
        return result(kill(atoi(argv[2]), atoi(argv[3])));
    }
    if (!strcmp(c, "recvfd") && argc == 4)
        return recv_fd_open(argv[2], argv[3]);
    if (!strcmp(c, "addkey") && argc >= 5) {
        /* A fresh session keyring holding a key only its possessor can read, then CMD
         * (which inherits the keyring). The key's serial goes in SBX_TEST_KEY. */
        if (syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, NULL) < 0)
            return result(-1);
        long k = syscall(SYS_add_key, "user", argv[2], argv[3], strlen(argv[3]), KEY_SPEC_SESSION_KEYRING);
        if (k < 0)
            return result(-1);
        char s[32];
        snprintf(s, sizeof s, "%ld", k);
        setenv("SBX_TEST_KEY", s, 1);
        execvp(argv[4], argv + 4);
        return result(-1);
    }
    if (!strcmp(c, "readkey") && argc == 3) {
        char buf[128] = {0};
        long r = syscall(SYS_keyctl, KEYCTL_READ, atol(argv[2]), buf, sizeof buf - 1);
        if (r < 0)
            return result(-1);
        printf("read %s\n", buf);
        return 0;
    }
    if (!strcmp(c, "nolandlock") && argc >= 3)
        return without_landlock(argv + 2);
    fprintf(stderr, "probe: unknown or malformed subcommand %s\n", c);
    return 2;
}
