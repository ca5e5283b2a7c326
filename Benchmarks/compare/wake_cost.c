// What a thread hand-off costs on this machine: two threads pass a token back and forth through
// eventfds (each side blocks in read until the other writes), N times. GAP_US > 0 makes the
// sender busy-wait that long before each round trip, so that the peer's CPU has gone idle (a
// lone request's pattern: each step of it starts on a CPU that was idle).
// Usage: wake_cost ROUND_TRIPS GAP_US  -> prints the mean round trip (two hand-offs) in µs
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>
static int to_peer, to_main, n = 20000, gap_us = 0;
static double now_us(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e6 + t.tv_nsec / 1e3; }
static void *peer(void *arg) {
  (void)arg; uint64_t v;
  for (int i = 0; i < n; i++) { if (read(to_peer, &v, 8) != 8 || write(to_main, &v, 8) != 8) exit(1); }
  return 0;
}
int main(int argc, char **argv) {
  if (argc > 1) n = atoi(argv[1]);
  if (argc > 2) gap_us = atoi(argv[2]);
  to_peer = eventfd(0, 0); to_main = eventfd(0, 0);
  pthread_t t; pthread_create(&t, 0, peer, 0);
  uint64_t v = 1; double total = 0;
  for (int i = 0; i < n; i++) {
    if (gap_us) { double s = now_us(); while (now_us() - s < gap_us) ; }
    double s = now_us();
    if (write(to_peer, &v, 8) != 8 || read(to_main, &v, 8) != 8) return 1;
    total += now_us() - s;
  }
  pthread_join(t, 0);
  printf("%.1f\n", total / n);
  return 0;
}
