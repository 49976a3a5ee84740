/* tf_log_line.h - one diagnostic line on stderr, "<who>: <message>" or "<who>[<pid>]: <message>", the message
 * formatted first so that the line goes out whole: the logs of the client stub (tf_log, tf_debug in
 * stub_c/transport.c), the GPU worker process (tfx_log, tfworker/executor/executor.c), the limiter (tfl_log,
 * limiter_c/limiter.c) and the emulated device (emu_log, emu_c/emu_init.c). */
#ifndef TF_LOG_LINE_H
#define TF_LOG_LINE_H
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

static inline void tf_log_line(const char *who, int with_pid, const char *fmt, va_list ap)
{
    char buf[1024];
    vsnprintf(buf, sizeof buf, fmt, ap);
    if (with_pid)
        fprintf(stderr, "%s[%d]: %s\n", who, (int)getpid(), buf);
    else
        fprintf(stderr, "%s: %s\n", who, buf);
}
#endif
