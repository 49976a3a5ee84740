/* tf_spin_wait.h - brief busy-wait for a socket to become readable, used by both ends of the data plane
 * (stub_c/transport.c before it blocks for a reply, tfworker/executor before it blocks for the next
 * request).
 *
 * Why: on these VMs waking a thread that sleeps on another vCPU costs tens of microseconds (an IPI to a
 * halted vCPU), which made a synchronous call 10x a same-CPU round trip. A peer that keeps polling for a
 * short while is still running when the answer comes, so no wake-up is needed. Each poll is followed by
 * sched_yield(), so when both ends share one CPU the peer gets it at once. TF_SPIN_US sets the budget
 * (default 50 us; 0 turns spinning off).
 */
#ifndef TF_SPIN_WAIT_H
#define TF_SPIN_WAIT_H

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

static inline long tf_spin_budget_ns(void)
{
    static long budget = -1;
    if (budget < 0) {
        const char *s = getenv("TF_SPIN_US");
        long us = s && *s ? strtol(s, NULL, 10) : 50;
        budget = (us > 0 ? us : 0) * 1000L;
    }
    return budget;
}

static inline long tf_now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000L + t.tv_nsec;
}

/* Returns when fd has data (or EOF/error): 1, or when the budget is spent (or spinning is off): 0; the caller
 * then reads (blocking), or waits first when it must wake up for something else too (stub_c/transport.c). */
static inline int tf_spin_wait_readable(int fd)
{
    long budget = tf_spin_budget_ns();
    if (budget == 0) return 0;
    long deadline = tf_now_ns() + budget;
    char c;
    for (;;) {
        ssize_t k = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
        if (k >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) return 1;
        if (tf_now_ns() >= deadline) return 0;
        sched_yield();
    }
}

#endif
