/* parleyctl doctor: checks the host against parleyd's configuration and
 * prints what is wrong and how to fix it. Part of parleyctl (not of the
 * server): it reads the configuration file itself and, when parleyd runs,
 * the server's pid from the control socket's greeting. */
#ifndef PARLEY_DOCTOR_H
#define PARLEY_DOCTOR_H

/* Runs every check: the file limit against lcores x max_conns, the clock's
 * synchronisation, free disk for the database and the compliance output,
 * the listen backlog against net.core.somaxconn, and with [io] backend =
 * dpdk hugepages and the port's driver. <config> may be NULL (the embedded
 * defaults); <socket> is the control socket's path. Prints one line per
 * check ("ok", "WARN" or "FAIL", then what was found; a "fix:" line under
 * each problem) on stdout. 0 when nothing is wrong, 1 otherwise, 2 when the
 * configuration cannot be read. */
int doctor_run(const char *config, const char *socket);

#endif
