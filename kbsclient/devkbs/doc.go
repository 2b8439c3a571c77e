// Package devkbs is a DEVELOPMENT ONLY Key Broker Service speaking the
// server side of Trustee's RCAR protocol 0.4.0, for local runs and tests:
// /kbs/v0/auth, /kbs/v0/attest, resource GET (JWE to the session's TEE key),
// admin upload/delete with a bearer token, a path-scoped allow/deny policy,
// expiring sessions and Trustee's error JSON.
//
// It is not a production KBS: resources live only in memory, tokens are
// opaque random strings (not EAR JWTs), and tdx quotes are checked for their
// signature chain, REPORTDATA and (when init-data is sent) MRCONFIGID only:
// no PCS collateral, TCB level, event log replay or reference values. The sample TEE is accepted only with
// AllowInsecureSampleTEE.
package devkbs
