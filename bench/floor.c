/* The kernel's floor for `run /bin/true`: the namespaces rt's default
 * config asks for, the root's mounts and an exec, with nothing else (no
 * config, no state, no cgroup, no /dev nodes, no pivot_root). Built and
 * run by bench.py through the same wrapper as the runtimes. */
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

static void must(int ok, const char *what) {
    if (!ok) { perror(what); _exit(1); }
}

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: floor ROOTFS\n"); return 2; }
    const char *r = argv[1];
    char p[4096];
    must(unshare(CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC |
                 CLONE_NEWUTS | CLONE_NEWCGROUP) == 0, "unshare");
    pid_t pid = fork();
    must(pid >= 0, "fork");
    if (pid == 0) {
        must(mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) == 0, "rslave /");
        must(mount(r, r, NULL, MS_BIND | MS_REC, NULL) == 0, "bind root");
        snprintf(p, sizeof p, "%s/proc", r);
        must(mount("proc", p, "proc", 0, NULL) == 0, "proc");
        snprintf(p, sizeof p, "%s/dev", r);
        must(mount("tmpfs", p, "tmpfs", MS_NOSUID, "mode=755") == 0, "dev");
        snprintf(p, sizeof p, "%s/sys", r);
        must(mount("sysfs", p, "sysfs", MS_RDONLY, NULL) == 0, "sys");
        must(chroot(r) == 0 && chdir("/") == 0, "chroot");
        execl("/bin/true", "true", (char *)NULL);
        perror("exec");
        _exit(127);
    }
    int status;
    must(waitpid(pid, &status, 0) == pid, "wait");
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
