// Package sealed reads and writes encrypted ("sealed") model files.
//
// Two formats are understood, recognized by content whatever the file is
// called:
//
//   - JWE compact serialization (starts "eyJ"), as KServe's confidential
//     model serving writes it: alg dir, A128KW, A192KW or A256KW with enc
//     A128GCM, A192GCM or A256GCM. AES-GCM authenticates the whole file, so a
//     wrong key or a single flipped bit is detected. This is the recommended
//     format and the one `veil seal` writes.
//   - openssl `enc -aes-256-cbc -pbkdf2` (or -aes-256-cfb) files (start
//     "Salted__"), as the CoCo demo scripts make them. These modes are NOT
//     authenticated: a wrong key or tampered file is only caught by PKCS#7
//     padding (CBC) and by checking that the plaintext is a well-formed ONNX
//     model. Support exists for compatibility; prefer JWE.
//
// Everything happens in memory: nothing here writes plaintext anywhere, and
// callers are expected to zero key material with Zero once done.
package sealed
