// flatnet-client: an optional native front for the flatnet CNI plugin's fast path (docs/cni.md, "Speed").
//
// Installed as <bin>/flatnet with the Bun binary beside it as <bin>/flatnet-bun. When the network configuration
// names the agent's CNI worker socket ("agentSocket") it forwards the call there exactly as cni/delegate.ts does
// (POST /v1/cni, {env: CNI_* only, stdin}), asking for the raw answer (body = the plugin's stdout, header
// X-Cni-Exit-Code), prints it and exits with that code. Everything else - VERSION, no agentSocket, nobody listening,
// an agent without the route, anything this file does not understand - execs flatnet-bun with the same argv,
// environment and stdin (re-fed through a memfd), which then does all of it. A process of this size starts in well
// under a millisecond; the Bun runtime takes 4.4-4.8 ms, which alone is most of the reference plugin's ADD.
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define MAX_STDIN (4u << 20)
// A plugin's answer is a CNI result or error of a few KiB; anything past this is not one (then: lost()).
#define MAX_ANSWER (1u << 20)
// The whole exchange with the worker, as cni/delegate.ts: FLATNET_CNI_TIMEOUT_MS overrides (docs/cni.md).
#define DEFAULT_TIMEOUT_MS 120000

static long long deadline_ms;

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

// Waits until fd is ready for `events` or the deadline passes; 0 when ready, -1 on timeout or error.
static int wait_ready(int fd, short events) {
  for (;;) {
    long long left = deadline_ms - now_ms();
    if (left <= 0) return -1;
    struct pollfd p = {.fd = fd, .events = events};
    int r = poll(&p, 1, left > 60000 ? 60000 : (int)left);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return -1;
    if (r > 0) return 0;
  }
}

static char *input;
static size_t input_len;

static void fallback(char **argv) {
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 16);
  if (n <= 0) goto fail;
  self[n] = 0;
  char *slash = strrchr(self, '/');
  if (slash == NULL) goto fail;
  strcpy(slash + 1, "flatnet-bun");
  int fd = memfd_create("cni-stdin", MFD_CLOEXEC);
  if (fd < 0) goto fail;
  for (size_t off = 0; off < input_len;) {
    ssize_t w = write(fd, input + off, input_len - off);
    if (w <= 0) goto fail;
    off += (size_t)w;
  }
  if (lseek(fd, 0, SEEK_SET) != 0 || dup2(fd, 0) != 0) goto fail;
  argv[0] = self;
  execve(self, argv, environ);
fail:
  // The runtime reads CNI error JSON on stdout; code 5 is "I/O failure".
  printf("{\"cniVersion\":\"1.1.0\",\"code\":5,\"msg\":\"flatnet-client cannot run flatnet-bun next to it: %s\"}\n", strerror(errno));
  exit(1);
}

static void read_stdin(void) {
  size_t cap = 65536;
  input = malloc(cap);
  if (input == NULL) exit(1);
  for (;;) {
    if (input_len == cap) {
      if (cap >= MAX_STDIN) {
        char extra;
        if (read(0, &extra, 1) > 0) {
          printf("{\"cniVersion\":\"1.1.0\",\"code\":6,\"msg\":\"the network configuration on stdin is larger than 4 MiB\"}\n");
          exit(1);
        }
        break;
      }
      cap *= 2;
      input = realloc(input, cap);
      if (input == NULL) exit(1);
    }
    ssize_t r = read(0, input + input_len, cap - input_len);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    input_len += (size_t)r;
  }
}

// ---- a JSON scan for one top-level string member; anything unusual answers "not found" (then: fallback) ----

static const char *skip_ws(const char *p, const char *end) {
  while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
  return p;
}

// Skips a JSON string starting at the quote; returns the position after it, or NULL. *plain: no escapes inside.
static const char *skip_string(const char *p, const char *end, int *plain) {
  if (p >= end || *p != '"') return NULL;
  *plain = 1;
  for (p++; p < end; p++) {
    if (*p == '\\') {
      *plain = 0;
      p++;
    } else if (*p == '"') {
      return p + 1;
    }
  }
  return NULL;
}

static const char *skip_value(const char *p, const char *end) {
  int plain;
  p = skip_ws(p, end);
  if (p >= end) return NULL;
  if (*p == '"') return skip_string(p, end, &plain);
  if (*p == '{' || *p == '[') {
    int depth = 0;
    while (p < end) {
      if (*p == '"') {
        p = skip_string(p, end, &plain);
        if (p == NULL) return NULL;
        continue;
      }
      if (*p == '{' || *p == '[') depth++;
      if (*p == '}' || *p == ']') {
        if (--depth == 0) return p + 1;
      }
      p++;
    }
    return NULL;
  }
  while (p < end && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\n' && *p != '\r' && *p != '\t') p++;
  return p;
}

// The value of the top-level member `key` when it is a string without escapes, copied to out; else 0.
static int top_level_string(const char *key, char *out, size_t out_len) {
  const char *p = skip_ws(input, input + input_len), *end = input + input_len;
  if (p >= end || *p != '{') return 0;
  p++;
  size_t klen = strlen(key);
  for (;;) {
    int plain;
    p = skip_ws(p, end);
    if (p < end && *p == '}') return 0;
    const char *k = p;
    p = skip_string(p, end, &plain);
    if (p == NULL) return 0;
    int match = plain && (size_t)(p - k) == klen + 2 && memcmp(k + 1, key, klen) == 0;
    p = skip_ws(p, end);
    if (p >= end || *p != ':') return 0;
    p = skip_ws(p + 1, end);
    if (match) {
      const char *v = p;
      p = skip_string(p, end, &plain);
      if (p == NULL || !plain || (size_t)(p - v - 2) >= out_len) return 0;
      memcpy(out, v + 1, (size_t)(p - v - 2));
      out[p - v - 2] = 0;
      return 1;
    }
    p = skip_value(p, end);
    if (p == NULL) return 0;
    p = skip_ws(p, end);
    if (p < end && *p == ',') {
      p++;
      continue;
    }
    return 0;
  }
}

// ---- the request ----

static char *req;
static size_t req_len, req_cap;

static void put(const char *s, size_t n) {
  if (req_len + n > req_cap) {
    req_cap = (req_len + n) * 2;
    req = realloc(req, req_cap);
    if (req == NULL) exit(1);
  }
  memcpy(req + req_len, s, n);
  req_len += n;
}

static void put_json_string(const char *s, size_t n) {
  put("\"", 1);
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') {
      char e[2] = {'\\', (char)c};
      put(e, 2);
    } else if (c < 0x20) {
      char e[8];
      snprintf(e, sizeof e, "\\u%04x", c);
      put(e, 6);
    } else {
      put((const char *)&s[i], 1);
    }
  }
  put("\"", 1);
}

// A socket is written with MSG_NOSIGNAL: a worker that goes away mid-request is EPIPE (then lost()), not a SIGPIPE
// that kills the client with nothing on stdout. SIGPIPE itself stays as it is: flatnet-bun inherits it on exec.
static int write_all(int fd, const char *p, size_t n, int is_socket) {
  while (n > 0) {
    if (is_socket && wait_ready(fd, POLLOUT) != 0) return -1; // the socket is non-blocking: bounded by the deadline
    ssize_t w = is_socket ? send(fd, p, n, MSG_NOSIGNAL) : write(fd, p, n);
    if (w < 0 && (errno == EINTR || (is_socket && errno == EAGAIN))) continue;
    if (w <= 0) return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static void lost(const char *command, char **argv, const char *why) {
  // The worker took the request and went away, or did not answer in time: an ADD may be half done, so "try again"
  // (11); the rest is idempotent and runs in-process.
  if (strcmp(command, "ADD") != 0) fallback(argv);
  char version[32];
  if (!top_level_string("cniVersion", version, sizeof version)) strcpy(version, "1.1.0");
  printf("{\"cniVersion\":\"%s\",\"code\":11,\"msg\":\"the flatnet agent %s during ADD; try again\"}\n", version, why);
  exit(1);
}

int main(int argc, char **argv) {
  (void)argc;
  read_stdin();
  const char *command = getenv("CNI_COMMAND");
  char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
  if (command == NULL || strcmp(command, "VERSION") == 0 || !top_level_string("agentSocket", path, sizeof path) || path[0] != '/') fallback(argv);

  const char *timeout = getenv("FLATNET_CNI_TIMEOUT_MS");
  long timeout_ms = timeout != NULL ? strtol(timeout, NULL, 10) : 0;
  deadline_ms = now_ms() + (timeout_ms > 0 ? timeout_ms : DEFAULT_TIMEOUT_MS);
  // Non-blocking: a unix connect to a worker whose backlog is full fails at once (EAGAIN) instead of waiting.
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  strcpy(addr.sun_path, path);
  if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) fallback(argv); // not listening or full: in-process

  put("{\"env\":{", 8);
  int first = 1;
  for (char **e = environ; *e != NULL; e++) {
    if (strncmp(*e, "CNI_", 4) != 0) continue;
    const char *eq = strchr(*e, '=');
    if (eq == NULL) continue;
    if (!first) put(",", 1);
    first = 0;
    put_json_string(*e, (size_t)(eq - *e));
    put(":", 1);
    put_json_string(eq + 1, strlen(eq + 1));
  }
  put("},\"stdin\":", 10);
  put_json_string(input, input_len);
  // CNI_NETNS as this process sees it: the worker acts only when its own stat agrees (another mount or PID namespace
  // names something else by the same path); unreadable here: no identity, the worker declines, flatnet-bun reports it.
  const char *netns = getenv("CNI_NETNS");
  struct stat st;
  if (netns != NULL && netns[0] != 0 && stat(netns, &st) == 0) {
    char id[96];
    int n = snprintf(id, sizeof id, ",\"netns\":{\"dev\":%llu,\"ino\":%llu}", (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
    put(id, (size_t)n);
  }
  put("}", 1);
  char head[256];
  int hlen = snprintf(head, sizeof head,
                      "POST /v1/cni HTTP/1.1\r\nHost: flatnet-agent\r\nContent-Type: application/json\r\nAccept: application/x-flatnet-cni-raw\r\n"
                      "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                      req_len);
  if (write_all(fd, head, (size_t)hlen, 1) != 0 || write_all(fd, req, req_len, 1) != 0) lost(command, argv, "did not take the request (gone or timed out)");

  size_t cap = 65536, len = 0;
  char *resp = malloc(cap);
  if (resp == NULL) exit(1);
  for (;;) {
    if (len == cap) {
      if (cap >= MAX_ANSWER) lost(command, argv, "sent an answer over 1 MiB"); // not a plugin's answer
      cap *= 2;
      resp = realloc(resp, cap);
      if (resp == NULL) exit(1);
    }
    if (wait_ready(fd, POLLIN) != 0) lost(command, argv, "did not answer in time (FLATNET_CNI_TIMEOUT_MS)");
    ssize_t r = read(fd, resp + len, cap - len);
    if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (r < 0) lost(command, argv, "went away");
    if (r == 0) break;
    len += (size_t)r;
  }
  close(fd);
  char *body = memmem(resp, len, "\r\n\r\n", 4);
  if (body == NULL) lost(command, argv, "went away");
  *body = 0;
  body += 4;
  size_t body_len = len - (size_t)(body - resp);
  if (strncmp(resp, "HTTP/1.1 200 ", 13) != 0 && strncmp(resp, "HTTP/1.0 200 ", 13) != 0) {
    // The agent did nothing (409: it cannot see CNI_NETNS as the runtime does): flatnet-bun works in-process at once.
    setenv("FLATNET_CNI_IN_PROCESS", "1", 1);
    fallback(argv);
  }
  const char *exit_header = strcasestr(resp, "\r\nX-Cni-Exit-Code: ");
  const char *length_header = strcasestr(resp, "\r\nContent-Length: ");
  if (exit_header == NULL || length_header == NULL || (size_t)strtoul(length_header + 18, NULL, 10) != body_len) lost(command, argv, "sent an unreadable answer");
  int code = atoi(exit_header + 19);
  if (write_all(1, body, body_len, 0) != 0) return 1;
  return code;
}
