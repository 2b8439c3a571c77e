// Package protocol holds the wire format of the Trustee KBS attestation
// protocol (RCAR, protocol version 0.4.0): message types, bounded decoders for
// every KBS reply, the canonical runtime-data digest that binds a TEE key to
// the hardware evidence, resource ids, and the typed errors a KBS answers with.
//
// It has no network code, so both the client (package kbsclient) and the
// development server (package devkbs) share exactly one definition of the
// protocol. Message shapes follow Trustee's kbs-types 0.18 as used by Trustee
// v0.14–v0.21 and guest-components of the same releases.
package protocol
