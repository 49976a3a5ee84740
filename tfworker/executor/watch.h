/* watch.h - the client-socket watcher of tf-executor (watch.c), started by main.c. */
#ifndef TF_EXECUTOR_WATCH_H
#define TF_EXECUTOR_WATCH_H
#include <stdint.h>

/* Starts a detached thread that _exits the process once the client socket `fd` hangs up or fails.
 * Returns 0, or -1 if the thread cannot start (the caller must not serve then: fail closed). */
int tf_watch_client(int fd);

#endif
