/*
 * An rtnetlink socket for Node: open(nsFd) creates a NETLINK_ROUTE socket (or, asked for,
 * a NETLINK_NETFILTER one: nftables batches) inside a
 * network namespace (setns on this thread and straight back; the socket stays bound to
 * the namespace it was made in), exchange(fd, buf) sends a batch of requests built by
 * the TypeScript side and collects the kernel's answers off the main thread. sysctl(nsFd,
 * paths, values) writes /proc/sys files inside a namespace the same way (no process).
 *
 * Messages carry consecutive sequence numbers. They are sent in chunks of up to 256
 * messages in one sendmsg (the kernel processes a chunk in order); only the last of a
 * chunk is sent with NLM_F_ACK forced, so successes cost no ack and the chunk is known
 * done when that ack (or its dump's NLMSG_DONE) arrives. Errors always come back, in
 * order, with the failing message's sequence number and the kernel's extended-ack text.
 */
#define _GNU_SOURCE
#include <node_api.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <linux/netlink.h>

#ifndef NETLINK_EXT_ACK
#define NETLINK_EXT_ACK 11
#endif
#ifndef NETLINK_CAP_ACK
#define NETLINK_CAP_ACK 10
#endif
#ifndef NLM_F_ACK_TLVS
#define NLM_F_ACK_TLVS 0x200
#endif
#ifndef NLMSGERR_ATTR_MSG
#define NLMSGERR_ATTR_MSG 1
#endif

#define NFNL_MSG_BATCH_BEGIN NLMSG_MIN_TYPE

#define CHUNK_MSGS 256
#define CHUNK_BYTES (64 * 1024)
#define RECV_BYTES (1 << 20)

static napi_value throw_errno(napi_env env, const char *what, int err) {
  char msg[200];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  napi_value code, text, e;
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &text);
  napi_create_error(env, NULL, text, &e);
  napi_create_int32(env, err, &code);
  napi_set_named_property(env, e, "errno", code);
  napi_throw(env, e);
  return NULL;
}

/* open(nsFd: number, protocol?: number): fd of a netlink socket (NETLINK_ROUTE unless
   protocol says otherwise: NETLINK_NETFILTER for nftables) in that namespace (nsFd < 0:
   this one) */
static napi_value nl_open(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t nsfd = -1, protocol = NETLINK_ROUTE;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      napi_get_value_int32(env, argv[0], &nsfd) != napi_ok ||
      (argc > 1 && napi_get_value_int32(env, argv[1], &protocol) != napi_ok))
    return napi_throw_type_error(env, NULL, "open(nsFd, protocol?)"), NULL;
  if (protocol != NETLINK_ROUTE && protocol != NETLINK_NETFILTER)
    return napi_throw_range_error(env, NULL, "open: protocol must be NETLINK_ROUTE or NETLINK_NETFILTER"), NULL;
  int self = -1;
  if (nsfd >= 0) {
    self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (self < 0) return throw_errno(env, "open /proc/thread-self/ns/net", errno);
    if (setns(nsfd, CLONE_NEWNET) < 0) {
      int e = errno;
      close(self);
      return throw_errno(env, "setns into the network namespace", e);
    }
  }
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol);
  int sockerr = errno;
  if (self >= 0) {
    if (setns(self, CLONE_NEWNET) < 0) {
      /* this thread would stay in the wrong namespace: nothing sane can follow */
      fprintf(stderr, "tortie-netlink: cannot return to the original network namespace: %s\n",
              strerror(errno));
      abort();
    }
    close(self);
  }
  if (fd < 0) return throw_errno(env, "socket(AF_NETLINK)", sockerr);
  int one = 1, big = 4 << 20;
  setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one);
  setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big) < 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
  struct timeval tv = {.tv_sec = 10};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    int e = errno;
    close(fd);
    return throw_errno(env, "bind(AF_NETLINK)", e);
  }
  napi_value r;
  napi_create_int32(env, fd, &r);
  return r;
}

static napi_value nl_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok)
    return napi_throw_type_error(env, NULL, "close(fd)"), NULL;
  close(fd);
  return NULL;
}

struct exchange {
  napi_async_work work;
  napi_deferred deferred;
  int fd;
  unsigned char *req;
  size_t reqlen;
  uint32_t first_seq;
  uint32_t count;
  int32_t *errors;   /* per message: 0 or a positive errno */
  char **messages;   /* per message: the kernel's extended-ack text, or NULL */
  unsigned char *replies;
  size_t replen, repcap;
  int fail_errno;    /* the exchange itself failed (send/recv) */
  const char *fail_what;
  int nfbatch;       /* an nftables batch on a NETLINK_NETFILTER socket (see execute) */
  uint32_t data_answered; /* nfbatch: answers to messages between BEGIN and END */
  int data_failed;   /* nfbatch: one of them was refused */
};

static int append(struct exchange *x, const void *p, size_t n) {
  if (x->replen + n > x->repcap) {
    size_t cap = x->repcap ? x->repcap * 2 : 65536;
    while (cap < x->replen + n) cap *= 2;
    unsigned char *r = realloc(x->replies, cap);
    if (!r) return -1;
    x->replies = r;
    x->repcap = cap;
  }
  memcpy(x->replies + x->replen, p, n);
  x->replen += n;
  return 0;
}

/* Reads answers until message `last` (an index) is complete. */
static int await_chunk(struct exchange *x, unsigned char *buf, uint32_t last) {
  for (;;) {
    ssize_t n = recv(x->fd, buf, RECV_BYTES, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      x->fail_errno = errno;
      x->fail_what = errno == EAGAIN || errno == EWOULDBLOCK ? "no answer from the kernel within 10 s"
                     : errno == ENOBUFS ? "answers lost (receive buffer full)"
                                        : "recv";
      return -1;
    }
    int done = 0;
    size_t len = (size_t)n;
    for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
      uint32_t i = h->nlmsg_seq - x->first_seq;
      if (h->nlmsg_seq < x->first_seq || i >= x->count) continue; /* not ours (stale) */
      if (h->nlmsg_type == NLMSG_ERROR) {
        struct nlmsgerr *e = NLMSG_DATA(h);
        if (e->error) {
          x->errors[i] = -e->error;
          if (h->nlmsg_flags & NLM_F_ACK_TLVS) {
            /* CAP_ACK: the request's header only, then attributes */
            unsigned char *a = (unsigned char *)e + sizeof *e;
            unsigned char *end = (unsigned char *)h + h->nlmsg_len;
            while (a + sizeof(struct nlattr) <= end) {
              struct nlattr *at = (struct nlattr *)a;
              if (at->nla_len < sizeof *at || a + at->nla_len > end) break;
              if ((at->nla_type & NLA_TYPE_MASK) == NLMSGERR_ATTR_MSG && !x->messages[i])
                x->messages[i] = strndup((char *)a + NLA_HDRLEN, at->nla_len - NLA_HDRLEN);
              a += NLA_ALIGN(at->nla_len);
            }
          }
        }
        if (i == last) done = 1;
        if (x->nfbatch) {
          /* the batch itself refused (or its commit failed): nothing else comes */
          if (i == 0 && e->error) done = 1;
          if (i > 0 && i < x->count - 1) {
            x->data_answered++;
            if (e->error) x->data_failed = 1;
          }
          /* an aborted batch's end is never acknowledged */
          if (x->data_answered == x->count - 2 && x->data_failed) done = 1;
        }
      } else if (h->nlmsg_type == NLMSG_DONE) {
        if (h->nlmsg_len >= NLMSG_LENGTH(sizeof(int))) {
          int err = *(int *)NLMSG_DATA(h);
          if (err < 0) x->errors[i] = -err;
        }
        if (i == last) done = 1;
      } else if (h->nlmsg_type >= NLMSG_MIN_TYPE) {
        if (append(x, h, h->nlmsg_len) < 0) {
          x->fail_errno = ENOMEM;
          x->fail_what = "collecting answers";
          return -1;
        }
      }
    }
    if (done) return 0;
  }
}

static void execute(napi_env env, void *data) {
  (void)env;
  struct exchange *x = data;
  unsigned char *buf = malloc(RECV_BYTES);
  if (!buf) {
    x->fail_errno = ENOMEM;
    x->fail_what = "receive buffer";
    return;
  }
  size_t off = 0;
  uint32_t idx = 0;
  if (x->nfbatch) {
    /* One nftables batch (BEGIN, messages, END), sent whole: the kernel commits or aborts
       it as one transaction. Every message asks for an answer; the END is acknowledged
       only when the batch committed (kernels from 6.10 on), so the exchange is over at
       that ack, at a refusal of the batch itself, or once every message is answered with
       one of them refused. */
    for (size_t o = 0; o < x->reqlen;) {
      struct nlmsghdr *h = (struct nlmsghdr *)(x->req + o);
      if (o > 0) h->nlmsg_flags |= NLM_F_ACK;
      o += NLMSG_ALIGN(h->nlmsg_len);
    }
    struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
    ssize_t s;
    do s = sendto(x->fd, x->req, x->reqlen, 0, (struct sockaddr *)&kernel, sizeof kernel);
    while (s < 0 && errno == EINTR);
    if (s < 0) {
      x->fail_errno = errno;
      x->fail_what = "send";
    } else
      await_chunk(x, buf, x->count - 1);
    free(buf);
    return;
  }
  while (off < x->reqlen) {
    size_t start = off;
    uint32_t n = 0;
    struct nlmsghdr *lasth = NULL;
    while (off < x->reqlen && n < CHUNK_MSGS) {
      struct nlmsghdr *h = (struct nlmsghdr *)(x->req + off);
      size_t ml = NLMSG_ALIGN(h->nlmsg_len);
      if (n > 0 && off - start + ml > CHUNK_BYTES) break;
      lasth = h;
      off += ml;
      n++;
    }
    /* a dump ends with NLMSG_DONE; anything else gets an ack (the same flag bits mean
       REPLACE/EXCL on NEW requests: only a GET, type % 4 == 2, can be a dump) */
    if (!((lasth->nlmsg_flags & NLM_F_DUMP) == NLM_F_DUMP && (lasth->nlmsg_type & 3) == 2))
      lasth->nlmsg_flags |= NLM_F_ACK;
    struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
    ssize_t s;
    do s = sendto(x->fd, x->req + start, off - start, 0, (struct sockaddr *)&kernel, sizeof kernel);
    while (s < 0 && errno == EINTR);
    if (s < 0) {
      x->fail_errno = errno;
      x->fail_what = "send";
      break;
    }
    idx += n;
    if (await_chunk(x, buf, idx - 1) < 0) break;
  }
  free(buf);
}

/* The answer object, or an error (returned in *err) when the exchange itself failed. */
static napi_value make_result(napi_env env, struct exchange *x, int failed, napi_value *err) {
  napi_value result = NULL;
  *err = NULL;
  if (failed || x->fail_errno) {
    char msg[200];
    snprintf(msg, sizeof msg, "netlink %s: %s", x->fail_what ? x->fail_what : "exchange",
             strerror(x->fail_errno ? x->fail_errno : EIO));
    napi_value text, code;
    napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &text);
    napi_create_error(env, NULL, text, err);
    napi_create_int32(env, x->fail_errno ? x->fail_errno : EIO, &code);
    napi_set_named_property(env, *err, "errno", code);
    return NULL;
  }
  napi_value errors, messages, replies, ab;
  void *p;
  napi_create_arraybuffer(env, x->count * sizeof(int32_t), &p, &ab);
  memcpy(p, x->errors, x->count * sizeof(int32_t));
  napi_create_typedarray(env, napi_int32_array, x->count, ab, 0, &errors);
  napi_create_array(env, &messages);
  for (uint32_t i = 0; i < x->count; i++) {
    if (!x->messages[i]) continue;
    napi_value s;
    napi_create_string_utf8(env, x->messages[i], NAPI_AUTO_LENGTH, &s);
    napi_set_element(env, messages, i, s);
  }
  napi_create_buffer_copy(env, x->replen, x->replies ? (void *)x->replies : (void *)"", &p, &replies);
  napi_create_object(env, &result);
  napi_set_named_property(env, result, "errors", errors);
  napi_set_named_property(env, result, "messages", messages);
  napi_set_named_property(env, result, "replies", replies);
  return result;
}

static void free_exchange(struct exchange *x) {
  for (uint32_t i = 0; i < x->count; i++) free(x->messages[i]);
  free(x->messages);
  free(x->errors);
  free(x->replies);
  free(x->req);
  free(x);
}

static void complete(napi_env env, napi_status status, void *data) {
  struct exchange *x = data;
  napi_value err, result = make_result(env, x, status != napi_ok, &err);
  if (err) napi_reject_deferred(env, x->deferred, err);
  else napi_resolve_deferred(env, x->deferred, result);
  napi_delete_async_work(env, x->work);
  free_exchange(x);
}

/* Checks the framing and copies the requests; NULL (with a JS exception) when malformed. */
static struct exchange *prepare(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t fd;
  void *data;
  size_t len;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok ||
      napi_get_buffer_info(env, argv[1], &data, &len) != napi_ok)
    return napi_throw_type_error(env, NULL, "exchange(fd, requests)"), NULL;
  uint32_t count = 0, first = 0;
  for (size_t off = 0; off < len;) {
    struct nlmsghdr *h = (struct nlmsghdr *)((unsigned char *)data + off);
    if (len - off < sizeof *h || h->nlmsg_len < sizeof *h || h->nlmsg_len > len - off)
      return napi_throw_range_error(env, NULL, "exchange: malformed netlink message framing"), NULL;
    if (count == 0) first = h->nlmsg_seq;
    else if (h->nlmsg_seq != first + count)
      return napi_throw_range_error(env, NULL, "exchange: sequence numbers must be consecutive"), NULL;
    count++;
    off += NLMSG_ALIGN(h->nlmsg_len);
  }
  struct exchange *x = calloc(1, sizeof *x);
  x->fd = fd;
  x->reqlen = len;
  x->req = malloc(len ? len : 1);
  memcpy(x->req, data, len);
  x->first_seq = first;
  x->count = count;
  x->errors = calloc(count ? count : 1, sizeof(int32_t));
  x->messages = calloc(count ? count : 1, sizeof(char *));
  int proto = 0;
  socklen_t pl = sizeof proto;
  x->nfbatch = count >= 3 && getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &pl) == 0 &&
               proto == NETLINK_NETFILTER &&
               ((struct nlmsghdr *)data)->nlmsg_type == NFNL_MSG_BATCH_BEGIN;
  return x;
}

/* exchange(fd, requests: Buffer): Promise<{ errors: Int32Array, messages: string[], replies: Buffer }> */
static napi_value nl_exchange(napi_env env, napi_callback_info info) {
  struct exchange *x = prepare(env, info);
  if (!x) return NULL;
  napi_value promise, name;
  napi_create_promise(env, &x->deferred, &promise);
  napi_create_string_utf8(env, "tortie-netlink", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, execute, complete, x, &x->work);
  napi_queue_async_work(env, x->work);
  return promise;
}

/* exchangeSync(fd, requests): the same answer, on this thread (a few requests: the kernel
   answers within the send, so a thread-pool hop would cost more than the work) */
static napi_value nl_exchange_sync(napi_env env, napi_callback_info info) {
  struct exchange *x = prepare(env, info);
  if (!x) return NULL;
  execute(env, x);
  napi_value err, result = make_result(env, x, 0, &err);
  free_exchange(x);
  if (err) {
    napi_throw(env, err);
    return NULL;
  }
  return result;
}

/* sysctl(nsFd, paths: string[], values: string[]): Int32Array, per entry 0 or a positive
   errno. Writes each value to its /proc/sys file inside the network namespace (nsFd < 0:
   this one): /proc/sys/net resolves to the namespace of the thread that opens the file,
   so this thread enters it (setns), opens and writes, and returns at once, as open()
   does for sockets. No process per sysctl. */
static napi_value nl_sysctl(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  int32_t nsfd = -1;
  uint32_t n = 0, nv = 0;
  bool isarr = false, isarr2 = false;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3 ||
      napi_get_value_int32(env, argv[0], &nsfd) != napi_ok ||
      napi_is_array(env, argv[1], &isarr) != napi_ok || !isarr ||
      napi_is_array(env, argv[2], &isarr2) != napi_ok || !isarr2 ||
      napi_get_array_length(env, argv[1], &n) != napi_ok ||
      napi_get_array_length(env, argv[2], &nv) != napi_ok || n != nv)
    return napi_throw_type_error(env, NULL, "sysctl(nsFd, paths[], values[])"), NULL;
  /* copy the strings first: nothing may throw while this thread is in another namespace */
  char **paths = calloc(n ? n : 1, sizeof(char *));
  char **values = calloc(n ? n : 1, sizeof(char *));
  int32_t *errs = calloc(n ? n : 1, sizeof(int32_t));
  napi_value ret = NULL;
  for (uint32_t i = 0; i < n; i++) {
    napi_value p, v;
    size_t pl, vl;
    if (napi_get_element(env, argv[1], i, &p) != napi_ok ||
        napi_get_element(env, argv[2], i, &v) != napi_ok ||
        napi_get_value_string_utf8(env, p, NULL, 0, &pl) != napi_ok ||
        napi_get_value_string_utf8(env, v, NULL, 0, &vl) != napi_ok) {
      napi_throw_type_error(env, NULL, "sysctl: paths and values must be strings");
      goto out;
    }
    paths[i] = malloc(pl + 1);
    values[i] = malloc(vl + 1);
    napi_get_value_string_utf8(env, p, paths[i], pl + 1, &pl);
    napi_get_value_string_utf8(env, v, values[i], vl + 1, &vl);
    if (strncmp(paths[i], "/proc/sys/", 10) != 0 || strstr(paths[i], "..")) {
      napi_throw_range_error(env, NULL, "sysctl: every path must be under /proc/sys/");
      goto out;
    }
  }
  int self = -1;
  if (nsfd >= 0) {
    self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (self < 0) {
      throw_errno(env, "open /proc/thread-self/ns/net", errno);
      goto out;
    }
    if (setns(nsfd, CLONE_NEWNET) < 0) {
      int e = errno;
      close(self);
      throw_errno(env, "setns into the network namespace", e);
      goto out;
    }
  }
  for (uint32_t i = 0; i < n; i++) {
    int fd = open(paths[i], O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
      errs[i] = errno;
      continue;
    }
    size_t len = strlen(values[i]);
    ssize_t w;
    do w = write(fd, values[i], len);
    while (w < 0 && errno == EINTR);
    if (w < 0) errs[i] = errno;
    else if ((size_t)w != len) errs[i] = EIO;
    close(fd);
  }
  if (self >= 0) {
    if (setns(self, CLONE_NEWNET) < 0) {
      fprintf(stderr, "tortie-netlink: cannot return to the original network namespace: %s\n",
              strerror(errno));
      abort();
    }
    close(self);
  }
  {
    void *data;
    napi_value ab;
    napi_create_arraybuffer(env, n * sizeof(int32_t), &data, &ab);
    if (n) memcpy(data, errs, n * sizeof(int32_t));
    napi_create_typedarray(env, napi_int32_array, n, ab, 0, &ret);
  }
out:
  for (uint32_t i = 0; i < n; i++) {
    free(paths[i]);
    free(values[i]);
  }
  free(paths);
  free(values);
  free(errs);
  return ret;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor d[] = {
      {"open", NULL, nl_open, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, nl_close, NULL, NULL, NULL, napi_default, NULL},
      {"exchange", NULL, nl_exchange, NULL, NULL, NULL, napi_default, NULL},
      {"exchangeSync", NULL, nl_exchange_sync, NULL, NULL, NULL, napi_default, NULL},
      {"sysctl", NULL, nl_sysctl, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof d / sizeof d[0], d);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
