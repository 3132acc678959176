/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ipmodd: divert outbound IP traffic through a tun device, run it through a
 * rule chain and write it back.  Runs in the foreground (systemd style).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caps.h"
#include "config.h"
#include "hello.h"
#include "log.h"
#include "manager.h"
#include "routing.h"

#define DEFAULT_CONFIG SYSCONFDIR "/ipmodd.conf"

enum {
	EXIT_OK = 0,
	EXIT_FAIL = 1,		/* bad configuration, or setup failed */
	EXIT_USAGE = 2,
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: ipmodd [OPTIONS]\n"
		"Divert IP traffic (outbound, and inbound of listed interfaces) through tun devices and rewrite it by rules.\n\n"
		"  -c, --config FILE   configuration file (default " DEFAULT_CONFIG ")\n"
		"      --check-config  validate the configuration and exit\n"
		"      --cleanup       remove rules, routes and a persistent tun left behind\n"
		"                      (with failure = \"closed\", the blocking rules stay)\n"
		"      --unblock       like --cleanup, and remove the fail-closed block too\n"
		"  -v, --verbose       debug logging\n"
		"  -V, --version       print the version and exit\n"
		"  -h, --help          print this help and exit\n\n"
		"See ipmodd(8) and ipmodd.conf(5).\n");
}

static int do_cleanup(const struct config *cfg, bool unblock)
{
	char err[CONFIG_ERR_MAX];
	int r;

	r = unblock ? routing_cleanup_all(cfg, err, sizeof(err))
		    : routing_cleanup(cfg, err, sizeof(err));
	if (r < 0) {
		log_errno(LOG_ERR, r, "cleanup: %s", err);
		return EXIT_FAIL;
	}
	log_info("cleanup: removed %d entr%s", r, r == 1 ? "y" : "ies");
	/* Whatever the failure mode: a closed inbound filter would cut the host off. */
	r = inbound_cleanup(err, sizeof(err));
	if (r < 0) {
		log_errno(LOG_ERR, r, "cleanup: inbound filters: %s", err);
		return EXIT_FAIL;
	}
	if (r > 0)
		log_info("cleanup: removed %d inbound tc filter%s", r, r == 1 ? "" : "s");
	if (cfg->fail_closed && !unblock)
		log_notice("failure = \"closed\": the blocking rules and unreachable routes stay; "
			   "\"ipmodd --unblock\" removes them");
	return EXIT_OK;
}

int main(int argc, char **argv)
{
	enum { OPT_CHECK = 0x100, OPT_CLEANUP, OPT_UNBLOCK };
	static const struct option options[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", no_argument, NULL, OPT_CHECK },
		{ "cleanup", no_argument, NULL, OPT_CLEANUP },
		{ "unblock", no_argument, NULL, OPT_UNBLOCK },
		{ "verbose", no_argument, NULL, 'v' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	const char *path = DEFAULT_CONFIG;
	bool check = false, cleanup = false, unblock = false;
	struct manager *m = NULL;
	struct config *cfg = NULL;
	char err[CONFIG_ERR_MAX];
	int level = LOG_INFO;
	int c, r;

	while ((c = getopt_long(argc, argv, "c:vVh", options, NULL)) != -1) {
		switch (c) {
		case 'c':
			path = optarg;
			break;
		case OPT_CHECK:
			check = true;
			break;
		case OPT_CLEANUP:
			cleanup = true;
			break;
		case OPT_UNBLOCK:
			cleanup = unblock = true;
			break;
		case 'v':
			level = LOG_DEBUG;
			break;
		case 'V':
			printf("ipmodd %s\n", PACKAGE_VERSION);
			printf("quic: %s\n", hello_quic_support());
			return EXIT_OK;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "ipmodd: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return EXIT_USAGE;
	}
	if (check && cleanup) {
		fprintf(stderr, "ipmodd: --check-config excludes --cleanup and --unblock\n");
		return EXIT_USAGE;
	}
	log_setup(level);
	/* Checking a file needs no privilege (ExecStartPre= runs with the unit's). */
	if (check) {
		r = caps_drop(CAPS_ALL);
		if (r < 0) {
			log_errno(LOG_ERR, r, "dropping capabilities");
			return EXIT_FAIL;
		}
	}

	r = config_load(path, &cfg, err, sizeof(err));
	if (r < 0) {
		log_error("%s", err);
		return EXIT_FAIL;
	}
	if (check) {
		printf("%s: OK\n", path);
		config_free(cfg);
		return EXIT_OK;
	}
	if (cleanup) {
		r = do_cleanup(cfg, unblock);
		config_free(cfg);
		return r;
	}

	r = manager_new(cfg, &m);
	if (r < 0) {
		log_errno(LOG_ERR, r, "startup");
		return EXIT_FAIL;
	}
	r = manager_start(m);
	if (r >= 0)
		r = manager_run(m);
	manager_free(m);
	return r < 0 ? EXIT_FAIL : EXIT_OK;
}
