/*
 * Socket options Node's net module does not expose, for BGP sessions: the TTL / hop
 * limit we send with (eBGP multihop, GTSM's 255) and the minimum TTL we accept
 * (GTSM, RFC 5082). tcpSocket() creates the socket so the TTL is set before the SYN;
 * net.Socket({ fd }) then connects it. setMd5() adds or removes a TCP-MD5 key for one
 * peer address (RFC 2385, Linux TCP_MD5SIG): on a listener, accepted connections from that
 * address inherit it; on our own socket it must be set before the SYN.
 */
#include <node_api.h>
#include <errno.h>
#include <stdio.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef IP_MINTTL
#define IP_MINTTL 21
#endif
#ifndef IPV6_MINHOPCOUNT
#define IPV6_MINHOPCOUNT 73
#endif

static napi_value fail(napi_env env, const char *what) {
  char msg[160];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(errno));
  napi_throw_error(env, NULL, msg);
  return NULL;
}

static int args(napi_env env, napi_callback_info info, size_t n, int32_t *out) {
  napi_value argv[3];
  size_t argc = 3;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < n) return -1;
  for (size_t i = 0; i < n; i++)
    if (napi_get_value_int32(env, argv[i], &out[i]) != napi_ok) return -1;
  return 0;
}

/* tcpSocket(family: 4 | 6): fd */
static napi_value tcp_socket(napi_env env, napi_callback_info info) {
  int32_t a[1];
  if (args(env, info, 1, a)) return napi_throw_type_error(env, NULL, "tcpSocket(family)"), NULL;
  int fd = socket(a[0] == 6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return fail(env, "socket");
  napi_value r;
  napi_create_int32(env, fd, &r);
  return r;
}

/* setTtl(fd, family, ttl): outgoing TTL (IPv4, also for v4-mapped peers) or hop limit */
static napi_value set_ttl(napi_env env, napi_callback_info info) {
  int32_t a[3];
  if (args(env, info, 3, a)) return napi_throw_type_error(env, NULL, "setTtl(fd, family, ttl)"), NULL;
  int v = a[2];
  if (a[1] == 6) {
    if (setsockopt(a[0], IPPROTO_IPV6, IPV6_UNICAST_HOPS, &v, sizeof v) < 0) return fail(env, "IPV6_UNICAST_HOPS");
    setsockopt(a[0], IPPROTO_IP, IP_TTL, &v, sizeof v); /* dual-stack socket: v4-mapped peers */
  } else if (setsockopt(a[0], IPPROTO_IP, IP_TTL, &v, sizeof v) < 0) {
    return fail(env, "IP_TTL");
  }
  return NULL;
}

/* setMinTtl(fd, family, minTtl): drop segments that arrive with a lower TTL / hop limit */
static napi_value set_min_ttl(napi_env env, napi_callback_info info) {
  int32_t a[3];
  if (args(env, info, 3, a)) return napi_throw_type_error(env, NULL, "setMinTtl(fd, family, minTtl)"), NULL;
  int v = a[2];
  if (a[1] == 6) {
    if (setsockopt(a[0], IPPROTO_IPV6, IPV6_MINHOPCOUNT, &v, sizeof v) < 0) return fail(env, "IPV6_MINHOPCOUNT");
    setsockopt(a[0], IPPROTO_IP, IP_MINTTL, &v, sizeof v);
  } else if (setsockopt(a[0], IPPROTO_IP, IP_MINTTL, &v, sizeof v) < 0) {
    return fail(env, "IP_MINTTL");
  }
  return NULL;
}

/* setMd5(fd, family, address, key): key "" removes the address's key */
static napi_value set_md5(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  size_t argc = 4;
  int32_t fd, family;
  char addr[64], key[TCP_MD5SIG_MAXKEYLEN + 1];
  size_t addrLen, keyLen;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok ||
      napi_get_value_int32(env, argv[1], &family) != napi_ok ||
      napi_get_value_string_utf8(env, argv[2], addr, sizeof addr, &addrLen) != napi_ok ||
      napi_get_value_string_utf8(env, argv[3], key, sizeof key, &keyLen) != napi_ok)
    return napi_throw_type_error(env, NULL, "setMd5(fd, family, address, key)"), NULL;
  if (keyLen > TCP_MD5SIG_MAXKEYLEN)
    return napi_throw_range_error(env, NULL, "a TCP-MD5 key is at most 80 bytes"), NULL;
  struct tcp_md5sig sig;
  memset(&sig, 0, sizeof sig);
  if (family == 6) {
    /* a dual-stack socket keys IPv4 peers by their v4-mapped address */
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&sig.tcpm_addr;
    a->sin6_family = AF_INET6;
    char mapped[80];
    snprintf(mapped, sizeof mapped, strchr(addr, ':') ? "%s" : "::ffff:%s", addr);
    if (inet_pton(AF_INET6, mapped, &a->sin6_addr) != 1)
      return napi_throw_type_error(env, NULL, "setMd5: not an address"), NULL;
  } else {
    struct sockaddr_in *a = (struct sockaddr_in *)&sig.tcpm_addr;
    a->sin_family = AF_INET;
    if (inet_pton(AF_INET, addr, &a->sin_addr) != 1)
      return napi_throw_type_error(env, NULL, "setMd5: not an IPv4 address"), NULL;
  }
  sig.tcpm_keylen = (uint16_t)keyLen;
  memcpy(sig.tcpm_key, key, keyLen);
  /* removing a key the socket does not have is no error */
  if (setsockopt(fd, IPPROTO_TCP, TCP_MD5SIG, &sig, sizeof sig) < 0 && !(keyLen == 0 && errno == ENOENT))
    return fail(env, "TCP_MD5SIG");
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"tcpSocket", NULL, tcp_socket, NULL, NULL, NULL, napi_default, NULL},
      {"setTtl", NULL, set_ttl, NULL, NULL, NULL, napi_default, NULL},
      {"setMinTtl", NULL, set_min_ttl, NULL, NULL, NULL, napi_default, NULL},
      {"setMd5", NULL, set_md5, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, 4, props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
