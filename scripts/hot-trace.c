// hot-trace BINARY COMMAND...: runs COMMAND under ptrace and single-steps
// every process that has exec'd BINARY, and the processes they clone until
// they exec something else. Prints, one per line in hex, the file offset of
// every distinct instruction executed in BINARY's executable mapping.
// scripts/hot-order.sh turns these into the linker's symbol order for rt.
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAXPROC 256

static pid_t procs[MAXPROC];
static int stepping[MAXPROC];
static int nprocs;

static int slot(pid_t p) {
	for (int i = 0; i < nprocs; i++)
		if (procs[i] == p)
			return i;
	if (nprocs == MAXPROC) {
		fprintf(stderr, "hot-trace: more than %d processes\n", MAXPROC);
		exit(1);
	}
	procs[nprocs] = p;
	// A process not seen before is a clone of a traced one: it runs
	// BINARY's code until it execs.
	stepping[nprocs] = 1;
	return nprocs++;
}

// The executable mapping of the binary whose path contains `name`.
static int text_of(pid_t p, const char *name, uint64_t *lo, uint64_t *hi, uint64_t *off) {
	char path[64], line[4096];
	snprintf(path, sizeof path, "/proc/%d/maps", p);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	int found = 0;
	while (!found && fgets(line, sizeof line, f)) {
		unsigned long a, b, o;
		char perm[8], file[4096] = "";
		if (sscanf(line, "%lx-%lx %7s %lx %*s %*s %4095s", &a, &b, perm, &o, file) >= 4 &&
		    perm[2] == 'x' && strstr(file, name)) {
			*lo = a, *hi = b, *off = o;
			found = 1;
		}
	}
	fclose(f);
	return found;
}

int main(int argc, char **argv) {
	if (argc < 3) {
		fprintf(stderr, "usage: hot-trace BINARY COMMAND...\n");
		return 2;
	}
	const char *name = argv[1];
	pid_t child = fork();
	if (child == 0) {
		ptrace(PTRACE_TRACEME, 0, 0, 0);
		raise(SIGSTOP);
		execvp(argv[2], argv + 2);
		_exit(127);
	}
	int st;
	waitpid(child, &st, 0);
	ptrace(PTRACE_SETOPTIONS, child, 0,
	       PTRACE_O_TRACECLONE | PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK |
		       PTRACE_O_TRACEEXEC | PTRACE_O_EXITKILL);
	stepping[slot(child)] = 0;
	uint64_t lo = 0, hi = 0, off = 0;
	unsigned char *seen = NULL;
	int status = 0;
	ptrace(PTRACE_CONT, child, 0, 0);
	for (;;) {
		pid_t p = waitpid(-1, &st, __WALL);
		if (p < 0)
			break;
		if (WIFEXITED(st) || WIFSIGNALED(st)) {
			if (p == child)
				status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
			continue;
		}
		int i = slot(p), sig = WSTOPSIG(st), event = st >> 16, deliver = 0;
		if (event == PTRACE_EVENT_EXEC) {
			char exe[64], target[4096] = "";
			snprintf(exe, sizeof exe, "/proc/%d/exe", p);
			if (readlink(exe, target, sizeof target - 1) < 0)
				target[0] = 0;
			stepping[i] = 0;
			if (!seen && strstr(target, name) && text_of(p, name, &lo, &hi, &off)) {
				seen = calloc(hi - lo, 1);
				stepping[i] = 1;
			}
		} else if (event == 0 && sig != SIGTRAP && sig != SIGSTOP) {
			deliver = sig;
		}
		if (seen && stepping[i]) {
			struct user_regs_struct r;
			ptrace(PTRACE_GETREGS, p, 0, &r);
			if (r.rip >= lo && r.rip < hi)
				seen[r.rip - lo] = 1;
			ptrace(PTRACE_SINGLESTEP, p, 0, deliver);
		} else {
			ptrace(PTRACE_CONT, p, 0, deliver);
		}
	}
	if (!seen) {
		fprintf(stderr, "hot-trace: no process exec'd %s\n", name);
		return 1;
	}
	for (uint64_t k = 0; k < hi - lo; k++)
		if (seen[k])
			printf("%lx\n", (unsigned long)(k + off));
	if (status)
		fprintf(stderr, "hot-trace: the command exited %d\n", status);
	return status ? 1 : 0;
}
