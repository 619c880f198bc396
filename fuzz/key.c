/*
 * fuzz/key: key and JWT loading. fuzz/key.lua drives core.b64url and core.rs256(pem, data) with
 * the input (and with the seed key plus the input). Aborts (see fuzz/key.lua) when b64url's
 * output is not unpadded base64url of the input, when rs256 raises, or returns anything but a
 * signature or nil and a short reason without key material. OpenSSL asking for a pass phrase
 * is a finding too: the pass-phrase readers are replaced here by functions that abort.
 */
#include "fuzz.h"

/* OpenSSL's default PEM pass-phrase callback reads the terminal through these */
int EVP_read_pw_string(char *buf, int len, const char *prompt, int verify);
int EVP_read_pw_string_min(char *buf, int minlen, int maxlen, const char *prompt, int verify);
int EVP_read_pw_string(char *buf, int len, const char *prompt, int verify) {
  (void)buf, (void)len, (void)verify;
  fz_fail("pass phrase prompt", prompt);
  return -1;
}
int EVP_read_pw_string_min(char *buf, int minlen, int maxlen, const char *prompt, int verify) {
  (void)buf, (void)minlen, (void)maxlen, (void)verify;
  fz_fail("pass phrase prompt", prompt);
  return -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fz_drive(fz_state(FUZZ_DIR "/key.lua"), data, size);
  return 0;
}
