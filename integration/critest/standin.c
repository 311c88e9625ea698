/* The processes critest's images run, for the offline stand-ins that
 * integration/critest/run.sh builds on busybox (compiled static there):
 * one binary, chosen by the name it runs as.
 *
 *   pause          waits for SIGTERM or SIGINT, as the pod's sandbox does
 *   nginx [PORT]   writes its pid to /var/run/nginx.pid and answers every
 *                  HTTP request on PORT (80) with 200 and a page, as the
 *                  e2e nginx images do for critest (its process is named
 *                  nginx, for `pidof nginx`)
 *   nnp            prints "Effective uid: N" (installed setuid root, as in
 *                  the e2e nonewprivs image)
 *   pgrep NAME     the pids of the processes named NAME (Debian's busybox
 *                  has no pgrep)
 *   ipcs -m        the System V shared memory segments (nor ipcs)
 *
 * nginx's command line reads "nginx: master process", as nginx's does
 * (critest waits for it in /proc/1/cmdline); -p PORT changes the port.
 */
#include <dirent.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void leave(int sig) { (void)sig; _exit(0); }

static int serve(int port) {
	static const char page[] =
		"HTTP/1.0 200 OK\r\nContent-Type: text/html\r\nContent-Length: 58\r\n"
		"Connection: close\r\n\r\n"
		"<html><head><title>Welcome to nginx!</title></head></html>";
	FILE *pid = fopen("/var/run/nginx.pid", "w");
	if (pid) {
		fprintf(pid, "%d\n", (int)getpid());
		fclose(pid);
	}
	int s = socket(AF_INET6, SOCK_STREAM, 0), one = 1, zero = 0;
	struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons(port)};
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
	if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) || listen(s, 64)) {
		perror("nginx: listen");
		return 1;
	}
	for (;;) {
		int c = accept(s, NULL, NULL);
		if (c < 0)
			continue;
		char req[4096];
		ssize_t n = read(c, req, sizeof req); /* the request's head */
		(void)n;
		ssize_t w = write(c, page, sizeof page - 1);
		(void)w;
		close(c);
	}
}

static int pgrep(const char *want) {
	DIR *d = opendir("/proc");
	struct dirent *e;
	int found = 0;
	while (d && (e = readdir(d))) {
		char path[300], comm[64] = "";
		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof path, "/proc/%s/comm", e->d_name);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(comm, sizeof comm, f))
			comm[strcspn(comm, "\n")] = 0;
		fclose(f);
		if (!strcmp(comm, want) && atoi(e->d_name) != (int)getpid()) {
			printf("%s\n", e->d_name);
			found = 1;
		}
	}
	return found ? 0 : 1;
}

static int ipcs(void) {
	char line[512];
	FILE *f = fopen("/proc/sysvipc/shm", "r");
	printf("\n------ Shared Memory Segments --------\n"
	       "key        shmid      owner      perms      bytes      nattch     status\n");
	if (!f)
		return 0;
	if (!fgets(line, sizeof line, f)) /* the header */
		return 0;
	while (fgets(line, sizeof line, f)) {
		long key, id, perms, size, cpid, lpid, nattch, uid;
		if (sscanf(line, "%ld %ld %lo %ld %ld %ld %ld %ld", &key, &id, &perms, &size,
			   &cpid, &lpid, &nattch, &uid) == 8)
			printf("0x%08x %-10ld %-10ld %-10lo %-10ld %-10ld\n", (unsigned)key, id, uid, perms,
			       size, nattch);
	}
	fclose(f);
	return 0;
}

int main(int argc, char **argv) {
	const char *name = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
	signal(SIGTERM, leave);
	signal(SIGINT, leave);
	if (!strcmp(name, "pause")) {
		for (;;)
			pause();
	}
	if (!strcmp(name, "nginx")) {
		int port = 80;
		for (int i = 1; i + 1 < argc; i++)
			if (!strcmp(argv[i], "-p"))
				port = atoi(argv[i + 1]);
		/* The title, over the arguments' space (as long as they are). */
		char *end = argv[argc - 1] + strlen(argv[argc - 1]);
		const char *title = "nginx: master process nginx";
		if ((size_t)(end - argv[0]) >= strlen(title)) {
			memset(argv[0], 0, end - argv[0]);
			memcpy(argv[0], title, strlen(title));
		}
		return serve(port);
	}
	if (!strcmp(name, "pgrep") && argc == 2)
		return pgrep(argv[1]);
	if (!strcmp(name, "ipcs"))
		return ipcs();
	if (!strcmp(name, "nnp")) {
		printf("Effective uid: %d\n", (int)geteuid());
		return 0;
	}
	fprintf(stderr, "standin: run as pause, nginx, nnp, pgrep NAME or ipcs, not %s\n", name);
	return 2;
}
