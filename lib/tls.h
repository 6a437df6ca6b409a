/*
 * TLS client contexts for wss:// connections.  Internal to dgw.
 *
 * One SSL_CTX is shared by every connection of a client: loading the CA
 * store is the expensive part, and a shared context keeps thousands of
 * shards lean.
 */
#ifndef DGW_TLS_H
#define DGW_TLS_H

#include <stddef.h>

#include <openssl/ssl.h>

/*
 * Creates a client SSL_CTX: TLS 1.2 at least, peer verification on, the
 * system trust store (or only `ca_file`, a PEM bundle, when not NULL),
 * OpenSSL 3's unexpected-EOF treated as a plain EOF (the WebSocket close
 * handshake, not TLS close_notify, tells a clean end from a lost one), and
 * idle read/write buffers released.  Returns the context (free with
 * SSL_CTX_free) or NULL with *err = DGW_ERR_TLS and a sentence in `reason`.
 */
SSL_CTX *dgw_tls_client_ctx_new(const char *ca_file, char *reason,
                                size_t reason_size, int *err);

/*
 * Prepares `ssl` to connect to `host`: peer verification on
 * (SSL_VERIFY_PEER added to the context's mode, its verify callback
 * kept), SNI (host names only, never an IP
 * literal, per RFC 6066) and host-name or IP verification of the peer's
 * certificate.  Returns DGW_OK or DGW_ERR_TLS.
 */
int dgw_tls_prepare(SSL *ssl, const char *host);

/*
 * After a handshake that libevent reported as done: DGW_OK when the peer
 * sent a certificate that verified (X509_V_OK), else DGW_ERR_TLS_VERIFY
 * with a sentence in `buf`.  Catches an application's verify callback
 * that accepted a certificate OpenSSL found bad.
 */
int dgw_tls_check_verified(SSL *ssl, char *buf, size_t size);

/*
 * Describes why TLS failed on `ssl` into `buf`: the certificate
 * verification error when there is one ("certificate verify failed:
 * hostname mismatch"), else the OpenSSL error queue (drained here), else
 * `fallback`.  Returns DGW_ERR_TLS_VERIFY for a verification failure and
 * DGW_ERR_TLS otherwise.  `openssl_err` is an error code already taken
 * from the queue (e.g. by bufferevent_get_openssl_error), or 0.
 */
int dgw_tls_describe_error(SSL *ssl, unsigned long openssl_err, char *buf,
                           size_t size, const char *fallback);

#endif /* DGW_TLS_H */
