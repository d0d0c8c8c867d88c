/* How a reader's way of waiting changes the cost of a loopback download.
 *
 *   reads PORT PATH BUFFER MODE
 *
 * GETs http://127.0.0.1:PORT/PATH, reads the response into a BUFFER-byte
 * buffer and writes it to standard output, as a download tool does.
 * MODE says how the socket is read:
 *   blocking   recv on a blocking socket
 *   lowat      the same with SO_RCVLOWAT at half the buffer
 *   poll       non-blocking recv; when the socket is empty, poll(2)
 *   peek       non-blocking recv; when the socket is empty, a blocking
 *              one-byte recv(MSG_PEEK) (what partfetch does: std has no
 *              poll, see src/http/socket.rs)
 * Prints the bytes, recv calls and waits to standard error.
 * Built and run by bench/reads.sh. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

static void set_nonblocking(int fd, int on) {
  if (ioctl(fd, FIONBIO, &on) != 0) {
    perror("ioctl");
    exit(1);
  }
}

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: reads PORT PATH BUFFER blocking|lowat|poll|peek\n");
    return 2;
  }
  int port = atoi(argv[1]);
  const char *path = argv[2];
  size_t size = (size_t)atol(argv[3]);
  const char *mode = argv[4];
  int waits_in_poll = strcmp(mode, "poll") == 0;
  int waits_in_peek = strcmp(mode, "peek") == 0;

  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in addr = {0};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = inet_addr("127.0.0.1");
  if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
    perror("connect");
    return 1;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (strcmp(mode, "lowat") == 0) {
    int lowat = (int)(size / 2);
    setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &lowat, sizeof lowat);
  }
  char request[1024];
  int n = snprintf(request, sizeof request,
                   "GET /%s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", path);
  if (write(fd, request, (size_t)n) != n) {
    perror("write");
    return 1;
  }
  if (waits_in_poll || waits_in_peek) set_nonblocking(fd, 1);

  char *buf = malloc(size);
  long long total = 0, calls = 0, waits = 0;
  for (;;) {
    ssize_t got = recv(fd, buf, size, 0);
    calls++;
    if (got == 0) break;
    if (got < 0) {
      if (!(waits_in_poll || waits_in_peek)) {
        perror("recv");
        return 1;
      }
      waits++;
      if (waits_in_poll) {
        struct pollfd p = {fd, POLLIN, 0};
        poll(&p, 1, -1);
      } else {
        char byte;
        set_nonblocking(fd, 0);
        recv(fd, &byte, 1, MSG_PEEK);
        set_nonblocking(fd, 1);
      }
      continue;
    }
    total += got;
    if (write(1, buf, (size_t)got) != got) {
      perror("write");
      return 1;
    }
  }
  fprintf(stderr, "%lld bytes, %lld recv calls, %lld waits\n", total, calls, waits);
  return 0;
}
