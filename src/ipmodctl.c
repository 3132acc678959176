/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ipmodctl: query a running ipmodd over its control socket. */
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

#include "ctlproto.h"

#define DEFAULT_SOCKET RUNDIR "/ipmodd/control.sock"
#define TIMEOUT_SEC 5

enum {
	EXIT_OK = 0,
	EXIT_FAIL = 1,		/* the daemon answered an error, or could not be reached */
	EXIT_USAGE = 2,
};

static const char *socket_path = DEFAULT_SOCKET;
static bool json;

static int status_main(int argc, char **argv);
static int version_main(int argc, char **argv);
static int help_main(int argc, char **argv);

static const struct {
	const char *name;
	int (*main)(int argc, char **argv);
	const char *description;
} subcommands[] = {
	{ "status", status_main, "Show the daemon's state and counters (the default)" },
	{ "version", version_main, "Print the version of ipmodctl" },
	{ "help", help_main, "Show this help" },
};

static void usage(FILE *f)
{
	size_t i;

	fprintf(f, "Usage: ipmodctl [OPTIONS] [COMMAND]\n"
		   "Query a running ipmodd.\n\n"
		   "Commands:\n");
	for (i = 0; i < ARRAY_SIZE(subcommands); i++)
		fprintf(f, "  %-10s  %s\n", subcommands[i].name, subcommands[i].description);
	fprintf(f, "\nOptions:\n"
		   "  -s, --socket PATH   control socket (default " DEFAULT_SOCKET ")\n"
		   "      --json          print replies as a JSON object\n"
		   "  -V, --version       print the version and exit\n"
		   "  -h, --help          print this help and exit\n\n"
		   "See ipmodctl(8).\n");
}

/*
 * Options go before or after the command: parse argv up to its first
 * non-option.  Returns the index of that argument, or -1 after printing
 * why (*exit_code says how to exit).
 */
static int parse_options(int argc, char **argv, int *exit_code)
{
	enum { OPT_JSON = 0x100 };
	static const struct option options[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	int c;

	optind = 0;
	while ((c = getopt_long(argc, argv, "+s:Vh", options, NULL)) != -1) {
		switch (c) {
		case 's':
			socket_path = optarg;
			break;
		case OPT_JSON:
			json = true;
			break;
		case 'V':
			*exit_code = version_main(0, NULL);
			return -1;
		case 'h':
			usage(stdout);
			*exit_code = EXIT_OK;
			return -1;
		default:
			usage(stderr);
			*exit_code = EXIT_USAGE;
			return -1;
		}
	}
	return optind;
}

static int connect_daemon(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = TIMEOUT_SEC };
	int fd, e;

	if (strlen(socket_path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "ipmodctl: socket path too long: %s\n", socket_path);
		return -1;
	}
	memcpy(sa.sun_path, socket_path, strlen(socket_path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		fprintf(stderr, "ipmodctl: socket: %s\n", strerror(errno));
		return -1;
	}
	/* Bounds connect() (a full backlog) and send(). */
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
		return fd;

	e = errno;
	close(fd);
	if (e == EACCES || e == EPERM)
		fprintf(stderr, "ipmodctl: cannot connect to %s: permission denied "
				"(need root or the socket's group)\n", socket_path);
	else if (e == ENOENT || e == ECONNREFUSED)
		fprintf(stderr, "ipmodctl: cannot connect to %s: %s (is ipmodd running?)\n",
			socket_path, strerror(e));
	else if (e == EAGAIN)
		fprintf(stderr, "ipmodctl: cannot connect to %s: timed out (ipmodd is busy)\n",
			socket_path);
	else
		fprintf(stderr, "ipmodctl: cannot connect to %s: %s\n", socket_path, strerror(e));
	return -1;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* Read one reply into p within the deadline; prints why and returns -1 on failure. */
static int read_reply(int fd, struct ctl_parser *p)
{
	long long deadline = now_ms() + TIMEOUT_SEC * 1000LL;
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	char chunk[4096];
	unsigned int lineno;
	size_t used;
	ssize_t n;
	int r;

	for (;;) {
		long long left = deadline - now_ms();

		if (left <= 0 || (r = poll(&pfd, 1, (int)left)) == 0) {
			fprintf(stderr, "ipmodctl: no reply from ipmodd within %d s\n", TIMEOUT_SEC);
			return -1;
		}
		if (r < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "ipmodctl: poll: %s\n", strerror(errno));
			return -1;
		}
		n = recv(fd, chunk, sizeof(chunk), 0);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0) {
			fprintf(stderr, "ipmodctl: reading the reply: %s\n", strerror(errno));
			return -1;
		}
		if (n == 0) {
			fprintf(stderr, "ipmodctl: ipmodd closed the connection %s\n",
				ctl_parser_pending(p) ? "in the middle of its reply" : "without replying");
			return -1;
		}
		r = ctl_parser_feed(p, chunk, (size_t)n, &used);
		if (r > 0)
			return 0;
		if (r < 0) {
			const char *why = ctl_parser_error(p, &lineno);

			fprintf(stderr, "ipmodctl: malformed reply from ipmodd: line %u: %s\n", lineno,
				why);
			return -1;
		}
	}
}

/*
 * Send request and parse the reply into resp (pointing into p's storage).
 * Returns the exit code: EXIT_OK, or EXIT_FAIL after printing why.
 */
static int call(const char *request, struct ctl_parser *p, struct ctl_response *resp)
{
	size_t off = 0, len = strlen(request);
	ssize_t n;
	int fd, r;

	fd = connect_daemon();
	if (fd < 0)
		return EXIT_FAIL;
	while (off < len) {
		n = send(fd, request + off, len - off, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			/* A daemon turning us away has hung up, but its reply says why. */
			if (errno == EPIPE || errno == ECONNRESET)
				break;
			fprintf(stderr, "ipmodctl: sending to %s: %s\n", socket_path,
				errno == EAGAIN ? "timed out" : strerror(errno));
			close(fd);
			return EXIT_FAIL;
		}
		off += (size_t)n;
	}
	r = read_reply(fd, p);
	close(fd);
	if (r < 0)
		return EXIT_FAIL;
	if (ctl_parser_response(p, resp) < 0) {
		fprintf(stderr, "ipmodctl: malformed reply from ipmodd: no errno= line\n");
		return EXIT_FAIL;
	}
	if (resp->errnum) {
		fprintf(stderr, "ipmodctl: %s\n", resp->error ? resp->error : strerror(resp->errnum));
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

static bool is_json_number(const char *s)
{
	if (!*s || (s[0] == '0' && s[1]))
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

static void print_json_string(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char c = *s;

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static void print_pairs(const struct ctl_pair *pairs, size_t n)
{
	size_t i, width = 0;

	if (json) {
		printf("{");
		for (i = 0; i < n; i++) {
			printf("%s\n  ", i ? "," : "");
			print_json_string(pairs[i].key);
			printf(": ");
			if (is_json_number(pairs[i].value))
				printf("%s", pairs[i].value);
			else
				print_json_string(pairs[i].value);
		}
		printf("%s}\n", n ? "\n" : "");
		return;
	}
	for (i = 0; i < n; i++)
		if (strlen(pairs[i].key) > width)
			width = strlen(pairs[i].key);
	for (i = 0; i < n; i++)
		printf("  %s:%*s %s\n", pairs[i].key, (int)(width - strlen(pairs[i].key)), "",
		       pairs[i].value);
}

static int status_main(int argc, char **argv)
{
	struct ctl_response resp;
	struct ctl_parser p;
	struct ctl_pair *pairs;
	char *buf;
	int r;

	if (argc > 1) {
		fprintf(stderr, "ipmodctl: status takes no arguments\n");
		return EXIT_USAGE;
	}
	buf = malloc(CTL_REPLY_MAX);
	pairs = calloc(CTL_REPLY_KEYS_MAX, sizeof(*pairs));
	if (!buf || !pairs) {
		fprintf(stderr, "ipmodctl: out of memory\n");
		r = EXIT_FAIL;
		goto out;
	}
	ctl_parser_init(&p, buf, CTL_REPLY_MAX, pairs, CTL_REPLY_KEYS_MAX);
	r = call("get=status\n\n", &p, &resp);
	if (r == EXIT_OK)
		print_pairs(resp.pairs, resp.n);
out:
	free(pairs);
	free(buf);
	return r;
}

static int version_main(int argc, char **argv)
{
	printf("ipmodctl %s\n", PACKAGE_VERSION);
	return EXIT_OK;
}

static int help_main(int argc, char **argv)
{
	usage(stdout);
	return EXIT_OK;
}

int main(int argc, char **argv)
{
	char *status_argv[] = { "status", NULL }, *command;
	int exit_code, i, n;
	size_t j;

	i = parse_options(argc, argv, &exit_code);
	if (i < 0)
		return exit_code;
	argc -= i;
	argv += i;
	if (argc == 0) {
		argc = 1;
		argv = status_argv;
	}
	/* Options after the command: getopt skips argv[0] and names it in errors. */
	command = argv[0];
	argv[0] = "ipmodctl";
	n = parse_options(argc, argv, &exit_code);
	argv[0] = command;
	if (n < 0)
		return exit_code;
	if (n != 1) {
		/* getopt permuted nothing ("+"), so the options sat right after the command. */
		memmove(argv + 1, argv + n, (size_t)(argc - n + 1) * sizeof(*argv));
		argc -= n - 1;
	}

	for (j = 0; j < ARRAY_SIZE(subcommands); j++)
		if (strcmp(argv[0], subcommands[j].name) == 0)
			return subcommands[j].main(argc, argv);
	fprintf(stderr, "ipmodctl: unknown command '%s'\n", argv[0]);
	usage(stderr);
	return EXIT_USAGE;
}
