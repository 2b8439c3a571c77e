// Package coldstart turns a sealed model into model bytes at runtime start:
// it fetches the model key after attestation (through the Confidential Data
// Hub or directly from a KBS, see kbsclient), decrypts the model in memory
// (runtime/sealed), hands the plaintext to the caller that creates the
// onnxruntime session, and zeroes key and plaintext afterwards.
//
// Every phase is timed (evidence, attest, fetch, decrypt, session, total)
// into Prometheus metrics, and each cold start ends with exactly one log
// line that carries all phases, whether it succeeded or not. Neither the
// key nor model bytes are ever logged or written anywhere.
//
// Configuration follows KServe's confidential model serving: the resource id
// comes from CONFIDENTIAL_RESOURCE_ID or --resource_id.
package coldstart
