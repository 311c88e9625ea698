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
 */
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

int main(int argc, char **argv) {
	const char *name = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
	signal(SIGTERM, leave);
	signal(SIGINT, leave);
	if (!strcmp(name, "pause")) {
		for (;;)
			pause();
	}
	if (!strcmp(name, "nginx"))
		return serve(argc > 1 ? atoi(argv[1]) : 80);
	if (!strcmp(name, "nnp")) {
		printf("Effective uid: %d\n", (int)geteuid());
		return 0;
	}
	fprintf(stderr, "standin: run as pause, nginx or nnp, not %s\n", name);
	return 2;
}
