// tortie-cni as the container runtime execs it: a small forwarder. A runtime starts one
// plugin process per pod, and a Node.js process costs ~40 ms of CPU before it runs a
// line, which under a burst of pods on a small node is most of the ADD. So this binary
// only sends the command to the node agent's socket (the config's "agent_socket"), where
// the TypeScript plugin runs on the agent's datastore connection, and prints the answer.
// When no agent answers it execs the full TypeScript plugin with the same stdin and
// environment: tortie-cni.d/cli.js with tortie-cni.d/node beside it where install-cni put
// them on a host (fallback-tree.ts), else cli.js beside it with NODE_BINARY.
//
// Wire format (agent-server.ts): request {"env":{CNI_*...},"input":"<stdin>"} then EOF;
// answer "<exit code>\n" followed by the bytes for stdout.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#ifndef NODE_BINARY
#define NODE_BINARY "/usr/bin/node"
#endif

extern char **environ;

typedef struct {
  char *p;
  size_t len, cap;
} buf_t;

static void put(buf_t *b, const char *s, size_t n) {
  if (b->len + n + 1 > b->cap) {
    b->cap = (b->len + n + 1) * 2;
    b->p = realloc(b->p, b->cap);
    if (!b->p) exit(70);
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = 0;
}

static void put_json_string(buf_t *b, const char *s, size_t n) {
  put(b, "\"", 1);
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    char esc[8];
    if (c == '"' || c == '\\') {
      esc[0] = '\\', esc[1] = (char)c;
      put(b, esc, 2);
    } else if (c < 0x20) {
      snprintf(esc, sizeof esc, "\\u%04x", c);
      put(b, esc, 6);
    } else {
      put(b, (const char *)&s[i], 1);
    }
  }
  put(b, "\"", 1);
}

static int read_all(int fd, buf_t *b) {
  char chunk[65536];
  for (;;) {
    ssize_t n = read(fd, chunk, sizeof chunk);
    if (n == 0) return 0;
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    put(b, chunk, (size_t)n);
  }
}

static int write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += w, n -= (size_t)w;
  }
  return 0;
}

// The value of "agent_socket" in the config, when it is a plain JSON string. Anything
// unusual (escapes other than \" \\ \/, too long) returns 0: the full plugin then decides.
static int agent_socket(const char *conf, char *out, size_t cap) {
  const char *k = strstr(conf, "\"agent_socket\"");
  if (!k) return 0;
  k += strlen("\"agent_socket\"");
  while (*k == ' ' || *k == '\t' || *k == '\n' || *k == '\r') k++;
  if (*k++ != ':') return 0;
  while (*k == ' ' || *k == '\t' || *k == '\n' || *k == '\r') k++;
  if (*k++ != '"') return 0;
  size_t n = 0;
  for (; *k && *k != '"'; k++) {
    char c = *k;
    if (c == '\\') {
      c = *++k;
      if (c != '"' && c != '\\' && c != '/') return 0;
    }
    if (n + 1 >= cap) return 0;
    out[n++] = c;
  }
  out[n] = 0;
  return *k == '"' && n > 0;
}

static const char *cni_version(const char *conf, char *out, size_t cap) {
  const char *k = strstr(conf, "\"cniVersion\"");
  snprintf(out, cap, "1.0.0");
  if (k && (k = strchr(k + 12, '"'))) {
    const char *end = strchr(++k, '"');
    if (end && (size_t)(end - k) < cap && end > k) {
      memcpy(out, k, (size_t)(end - k));
      out[end - k] = 0;
    }
  }
  return out;
}

// Runs the command in the agent. Returns the exit code, or -1 when the agent could not be
// reached (nothing was sent, so the command may still run here).
static int via_agent(const char *path, const buf_t *input) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof sa.sun_path) return close(fd), -1;
  strcpy(sa.sun_path, path);
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) return close(fd), -1;

  buf_t req = {0};
  put(&req, "{\"env\":{", 8);
  int first = 1;
  for (char **e = environ; *e; e++) {
    const char *eq = strchr(*e, '=');
    if (strncmp(*e, "CNI_", 4) != 0 || !eq) continue;
    if (!first) put(&req, ",", 1);
    first = 0;
    put_json_string(&req, *e, (size_t)(eq - *e));
    put(&req, ":", 1);
    put_json_string(&req, eq + 1, strlen(eq + 1));
  }
  put(&req, "},\"input\":", 10);
  put_json_string(&req, input->p ? input->p : "", input->len);
  put(&req, "}\n", 2);

  buf_t ans = {0};
  int ok = write_all(fd, req.p, req.len) == 0 && shutdown(fd, SHUT_WR) == 0 &&
           read_all(fd, &ans) == 0;
  close(fd);
  char *nl = ans.p ? memchr(ans.p, '\n', ans.len) : NULL;
  if (!ok || !nl) {
    char v[32];
    printf("{\"cniVersion\":\"%s\",\"code\":11,\"msg\":\"the node agent on %s did not answer the command\"}\n",
           cni_version(input->p ? input->p : "", v, sizeof v), path);
    return 1;
  }
  *nl = 0;
  int code = atoi(ans.p);
  write_all(1, nl + 1, ans.len - (size_t)(nl + 1 - ans.p));
  return code;
}

// No agent: the TypeScript plugin runs here, reading the same stdin from a pipe.
static int run_plugin_here(const buf_t *input) {
  char self[PATH_MAX], cli[PATH_MAX + 32];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n < 0) return perror("tortie-cni: /proc/self/exe"), 1;
  self[n] = 0;
  char *slash = strrchr(self, '/');
  *slash = 0;
  // installed on a host: the fallback install-cni copied beside this binary, with its
  // own Node; in a checkout or the image: cli.js beside it
  char node_here[PATH_MAX + 32], loader[PATH_MAX + 32], libs[PATH_MAX + 32];
  snprintf(cli, sizeof cli, "%s/tortie-cni.d/cli.js", self);
  snprintf(node_here, sizeof node_here, "%s/tortie-cni.d/node", self);
  snprintf(loader, sizeof loader, "%s/tortie-cni.d/ld.so", self);
  snprintf(libs, sizeof libs, "%s/tortie-cni.d/lib", self);
  const char *node = getenv("TORTIE_NODE_BINARY");
  int own_libs = 0;
  if (access(cli, R_OK) == 0) {
    if ((!node || !*node) && access(node_here, X_OK) == 0) {
      node = node_here;
      // Node's libraries from the image, through their own loader: the host's may differ
      own_libs = access(loader, X_OK) == 0;
    }
  } else {
    snprintf(cli, sizeof cli, "%s/cli.js", self);
  }
  if (!node || !*node) node = NODE_BINARY;
  int p[2];
  if (pipe(p) < 0) return perror("tortie-cni: pipe"), 1;
  // the config is small; grow the pipe so it is written whole before the exec
  if (input->len > 60000) fcntl(p[1], F_SETPIPE_SZ, (int)input->len + 4096);
  if (input->len && write_all(p[1], input->p, input->len) < 0)
    return perror("tortie-cni: config larger than a pipe"), 1;
  close(p[1]);
  dup2(p[0], 0);
  close(p[0]);
  if (own_libs) execl(loader, loader, "--library-path", libs, node, cli, (char *)NULL);
  else execl(node, node, cli, (char *)NULL);
  fprintf(stderr, "tortie-cni: cannot run %s %s: %s\n", own_libs ? loader : node, cli,
          strerror(errno));
  return 1;
}

int main(void) {
  buf_t input = {0};
  if (read_all(0, &input) < 0) return perror("tortie-cni: stdin"), 1;
  const char *cmd = getenv("CNI_COMMAND");
  char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
  if (cmd && strcmp(cmd, "VERSION") != 0 && input.p && agent_socket(input.p, path, sizeof path)) {
    int code = via_agent(path, &input);
    if (code >= 0) return code;
  }
  return run_plugin_here(&input);
}
