// The original destination of a connection that iptables REDIRECTed to the proxy: getsockopt(SO_ORIGINAL_DST)
// on the accepted socket's fd (IPv4: SOL_IP; IPv6: SOL_IPV6 / IP6T_SO_ORIGINAL_DST, both option 80), read by
// proxy/original-dst.ts. Node has no binding for it, so this is a Node-API addon: Node-API is ABI-stable across
// Node versions, and the few functions it uses are declared below instead of including node_api.h, so it builds
// with a plain C compiler and no Node headers (none can be downloaded on the build machines). scripts/
// build-native.mjs compiles it; Node resolves the napi_* symbols from its own binary when it loads the file.
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#ifndef SO_ORIGINAL_DST
#define SO_ORIGINAL_DST 80 // <linux/netfilter_ipv4.h>
#endif
#ifndef IP6T_SO_ORIGINAL_DST
#define IP6T_SO_ORIGINAL_DST 80 // <linux/netfilter_ipv6/ip6_tables.h>
#endif

// --- The Node-API subset used (js_native_api.h / node_api.h, Node-API version 1) ---
typedef struct napi_env__ *napi_env;
typedef struct napi_value__ *napi_value;
typedef struct napi_callback_info__ *napi_callback_info;
typedef int napi_status; // napi_ok is 0
typedef napi_value (*napi_callback)(napi_env env, napi_callback_info info);
#define NAPI_AUTO_LENGTH ((size_t)-1)
#define NAPI_EXTERN __attribute__((visibility("default")))

extern napi_status napi_get_cb_info(napi_env, napi_callback_info, size_t *argc, napi_value *argv, napi_value *this_arg,
                                    void **data);
extern napi_status napi_get_value_int32(napi_env, napi_value, int32_t *result);
extern napi_status napi_create_string_latin1(napi_env, const char *str, size_t length, napi_value *result);
extern napi_status napi_create_int32(napi_env, int32_t value, napi_value *result);
extern napi_status napi_get_undefined(napi_env, napi_value *result);
extern napi_status napi_create_function(napi_env, const char *name, size_t length, napi_callback cb, void *data,
                                        napi_value *result);
extern napi_status napi_set_named_property(napi_env, napi_value object, const char *name, napi_value value);
extern napi_status napi_throw_type_error(napi_env, const char *code, const char *msg);

// originalDst(fd) → "10.96.0.10:80" | "[fd00::1]:80" (the key proxy/original-dst.ts looks up) or, when the
// socket has none (not redirected: ENOENT; not a socket: ENOTSOCK; …), the errno as a negative number.
static napi_value original_dst(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd = -1;
  napi_value result;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != 0 || argc < 1 ||
      napi_get_value_int32(env, argv[0], &fd) != 0 || fd < 0) {
    napi_throw_type_error(env, NULL, "originalDst(fd): fd must be a non-negative integer");
    return NULL;
  }
  char text[INET6_ADDRSTRLEN];
  char out[INET6_ADDRSTRLEN + 16];
  int n;
  // IPv4 first: one syscall for the usual case (an AF_INET socket, or an IPv4 client on a dual-stack one, whose
  // NAT entry is an IPv4 one). No getsockname to learn the family first: it would be a second syscall each time.
  struct sockaddr_in dst;
  socklen_t len = sizeof dst;
  memset(&dst, 0, sizeof dst);
  if (getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &dst, &len) == 0 && dst.sin_family == AF_INET) {
    inet_ntop(AF_INET, &dst.sin_addr, text, sizeof text);
    n = snprintf(out, sizeof out, "%s:%u", text, (unsigned)ntohs(dst.sin_port));
  } else {
    int err4 = errno;
    struct sockaddr_in6 dst6;
    socklen_t len6 = sizeof dst6;
    memset(&dst6, 0, sizeof dst6);
    if (getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &dst6, &len6) != 0 || dst6.sin6_family != AF_INET6) {
      // Not redirected (ENOENT), or not a TCP socket at all: the IPv4 answer says which.
      napi_create_int32(env, -(err4 != 0 ? err4 : ENOENT), &result);
      return result;
    }
    inet_ntop(AF_INET6, &dst6.sin6_addr, text, sizeof text);
    n = snprintf(out, sizeof out, "[%s]:%u", text, (unsigned)ntohs(dst6.sin6_port));
  }
  napi_create_string_latin1(env, out, (size_t)n, &result);
  return result;
}

// Found by name when the file is loaded (Node-API's NAPI_MODULE_INIT without the header).
NAPI_EXTERN napi_value napi_register_module_v1(napi_env env, napi_value exports) {
  napi_value fn;
  if (napi_create_function(env, "originalDst", NAPI_AUTO_LENGTH, original_dst, NULL, &fn) != 0) return NULL;
  if (napi_set_named_property(env, exports, "originalDst", fn) != 0) return NULL;
  return exports;
}

NAPI_EXTERN int32_t node_api_module_get_api_version_v1(void) { return 1; }
