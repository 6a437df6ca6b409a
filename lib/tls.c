/* TLS client contexts and error descriptions. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <dgw/dgw.h>

#include "tls.h"

static void openssl_reason(unsigned long e, char *buf, size_t size) {
  ERR_error_string_n(e, buf, size);
}

SSL_CTX *dgw_tls_client_ctx_new(const char *ca_file, char *reason,
                                size_t reason_size, int *err) {
  SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
  int ok;

  if (ctx == NULL) {
    openssl_reason(ERR_get_error(), reason, reason_size);
    goto fail;
  }
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
  SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  if (ca_file != NULL)
    ok = SSL_CTX_load_verify_locations(ctx, ca_file, NULL);
  else
    ok = SSL_CTX_set_default_verify_paths(ctx);
  if (ok != 1) {
    char detail[200];

    openssl_reason(ERR_get_error(), detail, sizeof(detail));
    snprintf(reason, reason_size, "cannot load CA certificates from %s: %s",
             ca_file != NULL ? ca_file : "the system store", detail);
    goto fail;
  }
  ERR_clear_error();
  return ctx;

fail:
  ERR_clear_error();
  SSL_CTX_free(ctx);
  if (err != NULL)
    *err = DGW_ERR_TLS;
  return NULL;
}

static int is_ip_literal(const char *host) {
  unsigned char addr[16];

  return inet_pton(AF_INET, host, addr) == 1 ||
         inet_pton(AF_INET6, host, addr) == 1;
}

int dgw_tls_prepare(SSL *ssl, const char *host) {
  /* Whatever the context says (an application's may have changed after
   * dgw checked it): this connection verifies the peer.  The context's
   * verify callback, if any, is kept. */
  SSL_set_verify(ssl, SSL_get_verify_mode(ssl) | SSL_VERIFY_PEER,
                 SSL_get_verify_callback(ssl));
  if (is_ip_literal(host)) {
    if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) != 1)
      return DGW_ERR_TLS;
    return DGW_OK;
  }
  if (SSL_set_tlsext_host_name(ssl, host) != 1 || SSL_set1_host(ssl, host) != 1)
    return DGW_ERR_TLS;
  /* Wildcards only as the whole left-most label (*.discord.gg). */
  SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  return DGW_OK;
}

int dgw_tls_describe_error(SSL *ssl, unsigned long openssl_err, char *buf,
                           size_t size, const char *fallback) {
  long vr = ssl != NULL ? SSL_get_verify_result(ssl) : X509_V_OK;
  unsigned long e = openssl_err != 0 ? openssl_err : ERR_get_error();

  ERR_clear_error();
  if (vr != X509_V_OK) {
    snprintf(buf, size, "TLS certificate verify failed: %s",
             X509_verify_cert_error_string(vr));
    return DGW_ERR_TLS_VERIFY;
  }
  if (e != 0) {
    char detail[200];

    openssl_reason(e, detail, sizeof(detail));
    snprintf(buf, size, "TLS failed: %s", detail);
    return DGW_ERR_TLS;
  }
  snprintf(buf, size, "%s", fallback);
  return DGW_ERR_TLS;
}

int dgw_tls_check_verified(SSL *ssl, char *buf, size_t size) {
  long vr = SSL_get_verify_result(ssl);

  if (vr == X509_V_OK && SSL_get0_peer_certificate(ssl) != NULL)
    return DGW_OK;
  snprintf(buf, size, "TLS certificate verify failed: %s",
           vr != X509_V_OK ? X509_verify_cert_error_string(vr)
                           : "the peer sent no certificate");
  return DGW_ERR_TLS_VERIFY;
}
