// Linux's epoll(7), eventfd(2), prctl(2), gettid(2), pipe2(2) and posix_spawn's closefrom, which the Glibc module does not export. No library to link:
// the calls are in libc.
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>

// Names the calling thread (the kernel keeps 15 bytes), as `top -H` and debuggers show it.
static inline int cepoll_set_thread_name(const char *name) {
    return prctl(PR_SET_NAME, (unsigned long)name, 0, 0, 0);
}

#include <sys/syscall.h>
#include <unistd.h>

// The calling thread's kernel ID (as in /proc/self/task).
static inline int cepoll_gettid(void) {
    return (int)syscall(SYS_gettid);
}

#include <spawn.h>

// Declared by glibc only under _GNU_SOURCE, which the Glibc module is built without. Used to
// start child processes (tests) with close-on-exec pipes and no other inherited descriptor.
extern int pipe2(int pipedes[2], int flags);
extern int posix_spawn_file_actions_addclosefrom_np(posix_spawn_file_actions_t *actions, int from);
